# Shared setup steps for run.sh and test.sh. Each step is idempotent and cheap when already done;
# heavy builds are cached under $ACCORD_CACHE_DIR (default ~/.cache/accord).

ACCORD_CACHE_DIR="${ACCORD_CACHE_DIR:-$HOME/.cache/accord}"
export ACCORD_CACHE_DIR
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

step() { printf '\n==> %s\n' "$*" >&2; }

have() { command -v "$1" >/dev/null 2>&1; }

# Rust toolchain pieces: rustfmt and clippy for checks, the wasm32 target for the core's
# browser build (and the dashboard).
ensure_rust() {
    if ! have cargo; then
        echo "cargo not found: install Rust with rustup first (https://rustup.rs)" >&2
        exit 1
    fi
    local installed
    installed="$(rustup component list --installed 2>/dev/null || true)"
    for c in rustfmt clippy; do
        if ! grep -q "^$c" <<<"$installed"; then
            step "rustup component add $c"
            rustup component add "$c"
        fi
    done
    if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
        step "rustup target add wasm32-unknown-unknown"
        rustup target add wasm32-unknown-unknown
    fi
}

# Debian packages, installed only when a command they provide is missing.
ensure_apt() {
    local missing=()
    while (($#)); do
        local cmd="$1" pkg="$2"
        shift 2
        have "$cmd" || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    step "apt-get install ${missing[*]}"
    local sudo=""
    [[ "$(id -u)" == 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
}

# The upstream control plane (kube-apiserver, kube-controller-manager, etcd) for cluster tests.
ensure_control_plane() {
    if ! have go; then
        echo "go not found: the cluster tests build kube-apiserver and etcd from the Go module proxy" >&2
        exit 1
    fi
    step "control plane (built once into $ACCORD_CACHE_DIR)"
    "$ROOT/tests/k8s/build.sh" >/dev/null
}

# helm for the chart tests (server/tests/chart.rs), built once from the Go module proxy.
ensure_helm() {
    if ! have go; then
        echo "go not found: the chart tests build helm from the Go module proxy" >&2
        exit 1
    fi
    step "helm (built once into $ACCORD_CACHE_DIR)"
    "$ROOT/tests/helm/build.sh" >/dev/null
}
