#!/usr/bin/env bash
# Build the dashboard (frontend/, a Leptos client-side app) into $CARGO_TARGET_DIR/site (default
# target/site), which `accord serve` serves. Installs what it needs itself, pinned and cached
# under ~/.cache/accord: the wasm32 target, wasm-bindgen-cli 0.2.130 (must equal the library's
# version in Cargo.lock) and binaryen 132's wasm-opt from npm (Debian's binaryen 108 silently
# breaks wasm-bindgen's output: a blank page).
#
#   scripts/build-frontend.sh            release build: size profile + wasm-opt -Oz
#   scripts/build-frontend.sh --dev      debug build, no wasm-opt (faster)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

WASM_BINDGEN_VERSION=0.2.130
BINARYEN_VERSION=132.0.0
profile=wasm-release
[[ "${1:-}" == "--dev" ]] && profile=dev

target_dir="${CARGO_TARGET_DIR:-$ROOT/target}"
site="$target_dir/site"
tools="$ACCORD_CACHE_DIR/tools"
npm_prefix="$ACCORD_CACHE_DIR/npm"

ensure_rust

if [[ "$("$tools/bin/wasm-bindgen" --version 2>/dev/null)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]]; then
    step "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION (once, into $tools)"
    cargo install --root "$tools" wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi
wasm_opt="$npm_prefix/node_modules/.bin/wasm-opt"
if [[ "$profile" != dev ]] && ! "$wasm_opt" --version 2>/dev/null | grep -q "version ${BINARYEN_VERSION%%.*}"; then
    ensure_apt npm npm
    step "npm install binaryen@$BINARYEN_VERSION (once, into $npm_prefix)"
    mkdir -p "$npm_prefix"
    npm install --silent --no-audit --no-fund --prefix "$npm_prefix" "binaryen@$BINARYEN_VERSION"
fi

step "cargo build -p accord-frontend --target wasm32-unknown-unknown --profile $profile"
cargo build --locked -p accord-frontend --target wasm32-unknown-unknown --profile "$profile" >&2
out_dir="$profile"
[[ "$profile" == dev ]] && out_dir=debug
wasm="$target_dir/wasm32-unknown-unknown/$out_dir/accord-frontend.wasm"

step "wasm-bindgen --target web → $site"
rm -rf "$site.tmp"
mkdir -p "$site.tmp/pkg"
"$tools/bin/wasm-bindgen" --target web --no-typescript --out-dir "$site.tmp/pkg" --out-name accord "$wasm"
if [[ "$profile" != dev ]]; then
    # --low-memory-unused: Rust's data starts at 1 MiB and its stack grows down from there, so
    # the low 1 KiB is never addressed, which lets offsets fold into loads and stores;
    # --merge-similar-functions: one body for functions that differ only in constants (many
    # generic instances do; most are alike only once -Oz has run, hence -Oz on both sides).
    # Together 2 KiB off the gzipped WASM. The producers and target-features sections only
    # describe the build; browsers ignore them.
    step "wasm-opt -Oz"
    "$wasm_opt" --low-memory-unused -Oz --merge-similar-functions -Oz \
        --strip-producers --strip-target-features \
        --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
        --enable-mutable-globals --enable-reference-types --enable-multivalue \
        "$site.tmp/pkg/accord_bg.wasm" -o "$site.tmp/pkg/accord_bg.opt.wasm"
    mv "$site.tmp/pkg/accord_bg.opt.wasm" "$site.tmp/pkg/accord_bg.wasm"
fi
cp frontend/boot.js "$site.tmp/pkg/"

# Content-hashed names for what the page loads, so `accord serve` can let browsers cache them
# for good (Cache-Control: immutable) while index.html, which names them, is always revalidated.
pkg_hash=$(cat "$site.tmp"/pkg/* | sha256sum | cut -c1-16)
css_hash=$(sha256sum frontend/style.css | cut -c1-16)
mv "$site.tmp/pkg" "$site.tmp/pkg-$pkg_hash"
cp frontend/style.css "$site.tmp/style-$css_hash.css"
sed -e "s|\"/pkg/|\"/pkg-$pkg_hash/|g" -e "s|\"/style.css\"|\"/style-$css_hash.css\"|g" \
    frontend/index.html >"$site.tmp/index.html"
grep -q "/pkg-$pkg_hash/boot.js" "$site.tmp/index.html" && grep -q "/style-$css_hash.css" "$site.tmp/index.html" \
    || { echo "build-frontend.sh: index.html no longer names /pkg/boot.js and /style.css" >&2; exit 1; }

# Precompressed copies beside each file; accord serve sends them to clients that accept them.
# gzip's format from zopfli, whose deflate search is exhaustive: the WASM's .gz is ~5% smaller
# than `gzip -9` writes, and every browser reads it (it is still Content-Encoding: gzip).
ensure_apt brotli brotli
ensure_apt zopfli zopfli
step "precompress (zopfli's gzip, brotli -q 11)"
find "$site.tmp" -type f \( -name '*.html' -o -name '*.js' -o -name '*.css' -o -name '*.wasm' \) \
    -exec zopfli --gzip {} \; -exec brotli -q 11 -k {} \;

rm -rf "$site"
mv "$site.tmp" "$site"

wasm_file="$site/pkg-$pkg_hash/accord_bg.wasm"
raw=$(stat -c %s "$wasm_file")
gz=$(stat -c %s "$wasm_file.gz")
br=$(stat -c %s "$wasm_file.br")
step "dashboard built in $site: wasm $((raw / 1024)) KiB raw, $((gz / 1024)) KiB gzipped, $((br / 1024)) KiB brotli"
