#!/usr/bin/env bash
# Set up and run Accord on this machine. With no arguments it builds the `accord` binary and the
# dashboard and runs `accord serve` on http://127.0.0.1:8080 (the bundled demo shop, or a live
# cluster with ACCORD_CLUSTER=1). Any arguments are passed to
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
# The dashboard: a live cluster when ACCORD_CLUSTER=1 (KUBECONFIG, ~/.kube/config or in-cluster),
# else the bundled demo shop. Ctrl-C stops it.
serve_args=(serve --listen "${ACCORD_LISTEN:-127.0.0.1:8080}")
if [[ "${ACCORD_CLUSTER:-}" == 1 ]]; then
    serve_args+=(--cluster)
    step "accord serve --cluster: open http://${ACCORD_LISTEN:-127.0.0.1:8080}"
else
    step "accord serve (the demo shop): open http://${ACCORD_LISTEN:-127.0.0.1:8080}"
fi
echo "(target/release/accord --help lists every command; scripts/run.sh ARGS... runs accord ARGS...)" >&2
exec target/release/accord "${serve_args[@]}"
