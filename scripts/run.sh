#!/usr/bin/env bash
# Set up and run Accord on this machine. With no arguments it builds the `accord` binary and
# renders the NetworkPolicies of the bundled demo shop (assets/demo). Any arguments are passed to
# `accord` instead, e.g. `scripts/run.sh connlist assets/demo`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

ensure_rust
step "cargo build --release (first build takes a few minutes)"
cargo build --release --locked -p accord-server >&2
step "dashboard (scripts/build-frontend.sh → target/site, served by accord serve)"
scripts/build-frontend.sh

if (($#)); then
    exec target/release/accord "$@"
fi
step "accord render assets/demo"
target/release/accord render assets/demo
step "done: target/release/accord --help lists every command"
