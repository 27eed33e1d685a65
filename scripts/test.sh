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

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (warnings are errors)"
cargo clippy --locked --workspace --all-targets -- -D warnings

step "accord-policy builds for wasm32-unknown-unknown"
cargo check --locked -p accord-policy --target wasm32-unknown-unknown

step "cargo test"
cargo test --locked --workspace

step "conformance kit"
scripts/conformance.sh
