#!/usr/bin/env bash
# Score `accord connlist` against the netpol-analyzer conformance kit.
#
# core-netpol must pass in full (this script's exit status is the scorer's, and its total is the
# last line printed); the other categories (multinet, anp-banp, ingress-controller) are scored
# for information only and printed before it.
# The kit lives in ../shared relative to the repository root (CI clones the repo with shared/
# beside it); set SHARED to use another location.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shared="${SHARED:-$root/../shared}"
kit="$shared/conformance/netpol-analyzer"
jobs="${JOBS:-2}"

if [[ ! -f "$kit/score.py" ]]; then
    echo "conformance kit not found at $kit (set SHARED)" >&2
    exit 2
fi

cargo build --manifest-path "$root/Cargo.toml" -p accord-server --bin accord
accord="$root/target/debug/accord"
cmd="'$accord' connlist {dir} 2>/dev/null"

score() { python3 "$kit/score.py" --cmd "$cmd" --jobs "$jobs" "$@"; }

# The informational categories come first and show only their summary table, so that the last
# line this script prints is the total of the category it is scored on.
echo "== multinet (informational: secondary pod networks, which Accord does not model)"
score --category multinet | sed -n '/^category/,$p' || true

echo
echo "== anp-banp, ingress-controller (informational)"
score --category anp-banp --category ingress-controller | sed -n '/^category/,$p' || true

echo
echo "== core-netpol (scored: must pass)"
status=0
score --category core-netpol "$@" || status=$?
exit "$status"
