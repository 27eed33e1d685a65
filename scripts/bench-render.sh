#!/usr/bin/env bash
# Time `accord render` end to end (read files, parse, generate, write YAML) on synthetic clusters:
# the large estate (1,500 workloads, 9,300 calls) and ten times that (15,000 workloads in 1,500
# namespaces, 100,000 calls). Prints wall time and peak RSS per run (best of 3).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
target="${CARGO_TARGET_DIR:-$ROOT/target}"
cargo build --release --locked -p accord-server >&2
cargo bench --locked -p accord-policy --bench render --no-run >&2 2>/dev/null
bench="$(ls -t "$target"/release/deps/render-* | grep -v '\.d$' | head -1)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for size in large 10x; do
    "$bench" write "$size" "$work/$size"
    best=""
    for _ in 1 2 3; do
        out="$( { /usr/bin/time -f '%e %M' "$target/release/accord" render "$work/$size" >/dev/null; } 2>&1 | tail -1)"
        read -r secs kib <<<"$out"
        if [[ -z "$best" ]] || awk "BEGIN{exit !($secs < ${best%% *})}"; then best="$secs $kib"; fi
    done
    read -r secs kib <<<"$best"
    printf 'accord render, %s: %s s wall, peak RSS %d MiB (best of 3, %s cores)\n' "$size" "$secs" "$((kib / 1024))" "$(nproc)"
done
