#!/usr/bin/env bash
# Time `accord connlist` end to end (read files, parse, compile the policies, list every allowed
# pair) on synthetic clusters as Accord's operator leaves them (generated labels and policies):
# the large estate (1,500 workloads, ~2,600 policies, ~13,800 allowed pairs) and ten times that
# (15,000 workloads, ~26,000 policies, ~145,000 pairs). Prints wall time, peak RSS and the
# number of pairs listed per size (best of 3). In-process figures, and how the cost grows with
# workloads and policies: `cargo bench -p accord-policy --bench evaluate [-- scaling]`.
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
    "$bench" write-applied "$size" "$work/$size"
    best=""
    for _ in 1 2 3; do
        out="$( { /usr/bin/time -f '%e %M' "$target/release/accord" connlist "$work/$size" >"$work/out.txt"; } 2>&1 | tail -1)"
        read -r secs kib <<<"$out"
        if [[ -z "$best" ]] || awk "BEGIN{exit !($secs < ${best%% *})}"; then best="$secs $kib"; fi
    done
    read -r secs kib <<<"$best"
    pairs="$(grep -c ' => ' "$work/out.txt" || true)"
    printf 'accord connlist, %s: %s s wall, peak RSS %d MiB, %s connections listed (best of 3, %s cores)\n' \
        "$size" "$secs" "$((kib / 1024))" "$pairs" "$(nproc)"
done
