#!/usr/bin/env bash
# Measure the dashboard in headless Chromium on a synthetic cluster of 1,500 workloads and 9,300
# calls: WASM size (raw and gzipped), first graph paint, and pan/zoom frame times. Prints the
# figures; fails when a budget is exceeded (400 KiB gzipped, 2 s first paint, 33 ms a frame).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

ensure_apt chromium chromium chromedriver chromium-driver
scripts/build-frontend.sh
export ACCORD_REQUIRE_BROWSER=1
step "browser performance (server/tests/browser.rs, ignored test; accord built in release so the server is not what is measured)"
cargo test --locked --release -p accord-server --test browser -- --ignored --nocapture --test-threads 1 \
    graph_at_scale_overview_namespace_and_frame_times
