#!/usr/bin/env bash
# Time the `accord` CLI end to end on synthetic clusters: the large estate (1,500 workloads,
# 9,300 calls) and ten times that (15,000 workloads in 1,500 namespaces, 100,000 calls).
#   render    read, parse, generate, write YAML, on the clusters as declared;
#   connlist  read, parse, compile the policies, list every allowed pair, on the clusters as
#             Accord's operator leaves them (generated labels and policies: ~2,600 and ~26,000
#             policies, ~13,800 and ~145,000 workload pairs).
# Prints wall time and peak RSS per size (best of 3), and the lines connlist listed.
# `scripts/bench-cli.sh render` or `… connlist` runs one. In-process figures, and how the cost
# grows: `cargo bench -p accord-policy --bench render|evaluate [-- scaling]`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ensure_rust
# GNU time, for the peak memory (`%M`); not in a minimal Debian.
ensure_apt /usr/bin/time time
target="${CARGO_TARGET_DIR:-$ROOT/target}"
cargo build --release --locked -p accord-server >&2
cargo bench --locked -p accord-policy --bench render --no-run >&2 2>/dev/null
bench="$(ls -t "$target"/release/deps/render-* | grep -v '\.d$' | head -1)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
commands=("$@")
((${#commands[@]})) || commands=(render connlist)
for command in "${commands[@]}"; do
    case "$command" in
        render) write=write ;;
        connlist) write=write-applied ;;
        *) echo "usage: $0 [render|connlist]..." >&2; exit 2 ;;
    esac
    for size in large 10x; do
        dir="$work/$write-$size"
        [[ -d "$dir" ]] || "$bench" "$write" "$size" "$dir"
        best=""
        for _ in 1 2 3; do
            out="$( { /usr/bin/time -f '%e %M' "$target/release/accord" "$command" "$dir" >"$work/out.txt"; } 2>&1 | tail -1)"
            read -r secs kib <<<"$out"
            if [[ -z "$best" ]] || awk "BEGIN{exit !($secs < ${best%% *})}"; then best="$secs $kib"; fi
        done
        read -r secs kib <<<"$best"
        listed=""
        [[ "$command" == connlist ]] && listed=", $(grep -c ' => ' "$work/out.txt" || true) connections listed"
        printf 'accord %s, %s: %s s wall, peak RSS %d MiB%s (best of 3, %s cores)\n' \
            "$command" "$size" "$secs" "$((kib / 1024))" "$listed" "$(nproc)"
    done
done
