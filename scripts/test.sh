#!/usr/bin/env bash
# Run every check and test of the project: formatting, lints, the core's wasm32 build, unit,
# snapshot and property tests, the CLI tests, the conformance kit, and the tests against a real
# Kubernetes control plane (built from upstream sources on first use and cached).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

# Snapshots are reviewed by people; a test run never accepts them.
export INSTA_UPDATE=no
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

ensure_rust
ensure_apt python3 python3
ensure_control_plane
ensure_helm
# Headless Chromium and its WebDriver for the dashboard's browser tests (server/tests/browser.rs).
ensure_apt chromium chromium chromedriver chromium-driver

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (warnings are errors)"
cargo clippy --locked --workspace --all-targets -- -D warnings

step "accord-policy builds for wasm32-unknown-unknown"
cargo check --locked -p accord-policy --target wasm32-unknown-unknown

step "the dashboard: clippy for wasm32, then the release build into target/site"
cargo clippy --locked -p accord-frontend --target wasm32-unknown-unknown -- -D warnings
scripts/build-frontend.sh
# A missing browser or site fails the browser tests instead of skipping them.
export ACCORD_REQUIRE_BROWSER=1

step "cargo test"
cargo test --locked --workspace

step "conformance kit"
scripts/conformance.sh
