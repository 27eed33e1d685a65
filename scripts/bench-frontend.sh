#!/usr/bin/env bash
# Measure the dashboard in headless Chromium on synthetic estates of 1,500 and 15,000 workloads
# (ACCORD_BROWSER_SCALE=large: 1,500 only): WASM size, the first useful view (the overview), the
# worst namespace's drawing, a neighbourhood, label size and pan/zoom frame times. Prints the
# figures; fails when the three broken namespaces do not rank first or the WASM exceeds 400 KiB
# gzipped.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

ensure_apt chromium chromium chromedriver chromium-driver
scripts/build-frontend.sh
export ACCORD_REQUIRE_BROWSER=1
step "browser performance (server/tests/browser.rs, ignored test; accord built in release so the server is not what is measured)"
cargo test --locked --release -p accord-server --test browser -- --ignored --nocapture --test-threads 1 \
    graph_at_scale_overview_namespace_and_frame_times
