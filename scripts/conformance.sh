#!/usr/bin/env bash
# Score `accord connlist` against the netpol-analyzer conformance kit.
#
# core-netpol must pass in full (this script's exit status is the scorer's); the other
# categories (anp-banp, ingress-controller, multinet) are scored for information only.
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

echo "== core-netpol (must pass)"
status=0
python3 "$kit/score.py" --cmd "$cmd" --category core-netpol --jobs "$jobs" "$@" || status=$?

echo
echo "== all categories (informational)"
python3 "$kit/score.py" --cmd "$cmd" --jobs "$jobs" | sed -n '/^category/,$p' || true

exit "$status"
