// Starts the dashboard: an external module rather than an inline script, so the
// Content-Security-Policy can forbid inline scripts. scripts/build-frontend.sh puts it beside
// the wasm-bindgen output, in a directory named after the content's hash.
import init from "./accord.js";

init({ module_or_path: new URL("accord_bg.wasm", import.meta.url) });
