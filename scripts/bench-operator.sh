#!/usr/bin/env bash
# Benchmark the operator against a real control plane: cold convergence of the large synthetic
# cluster (1,500 workloads, ~1,500 ClientIntents, ~9,300 calls), then the latency of single
# intents changes and the API requests per change. Prints figures; asserts only correctness.
set -euo pipefail
cd "$(dirname "$0")/.."
tests/k8s/build.sh >/dev/null
exec cargo test --release -p accord-server --test operator_bench -- --ignored --nocapture "$@"
