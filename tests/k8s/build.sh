#!/usr/bin/env bash
# Builds the control plane that accord-tests runs: kube-apiserver and kube-controller-manager
# from k8s.io/kubernetes, and etcd from go.etcd.io/etcd/server/v3, all through the Go module
# proxy. The versions are the ones pinned in kubernetes/go.mod and etcd/go.mod beside this file.
#
# Output: $ACCORD_CACHE_DIR/k8s-<kubernetes version>/ (default ~/.cache/accord/k8s-v1.36.3)
# holding kube-apiserver, kube-controller-manager, etcd and a `stamp` file. When the stamp
# matches the pinned versions the build is skipped. The last line printed on stdout is the
# output directory; progress goes to stderr.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${ACCORD_CACHE_DIR:-$HOME/.cache/accord}"

# Versions come straight from the go.mod files so that they are pinned in one place only.
module_version() { awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2; exit }' "$1"; }
k8s_version="$(module_version "$here/kubernetes/go.mod" k8s.io/kubernetes)"
etcd_version="$(module_version "$here/etcd/go.mod" go.etcd.io/etcd/server/v3)"
if [[ -z "$k8s_version" || -z "$etcd_version" ]]; then
    echo "build.sh: cannot read the pinned versions from $here/*/go.mod" >&2
    exit 1
fi

out="$cache/k8s-$k8s_version"
sums="$(cat "$here/kubernetes/go.mod" "$here/kubernetes/go.sum" "$here/etcd/go.mod" "$here/etcd/go.sum" \
    | sha256sum | cut -d' ' -f1)"
stamp="kubernetes $k8s_version
etcd $etcd_version
modules $sums"

up_to_date() {
    [[ -x "$out/kube-apiserver" && -x "$out/kube-controller-manager" && -x "$out/etcd" ]] &&
        [[ -f "$out/stamp" && "$(cat "$out/stamp")" == "$stamp" ]]
}

if up_to_date; then
    echo "$out"
    exit 0
fi

mkdir -p "$cache"
# Test binaries started in parallel may all ask for a build: the first builds, the others wait.
exec 9>"$cache/k8s-$k8s_version.lock"
if ! flock -n 9; then
    echo "build.sh: waiting for another build of $out" >&2
    flock 9
fi
if up_to_date; then
    echo "$out"
    exit 0
fi

export GOTOOLCHAIN=local
export GOCACHE="$cache/go-build"
export GOFLAGS="-trimpath -mod=readonly -buildvcs=false"
# The release binaries of Kubernetes and etcd are static; so are these.
export CGO_ENABLED=0

version_pkg() { printf -- "-X %s.%s=%s " \
    "k8s.io/component-base/version" gitVersion "$k8s_version" \
    "k8s.io/component-base/version" gitMajor "$(cut -d. -f1 <<<"${k8s_version#v}")" \
    "k8s.io/component-base/version" gitMinor "$(cut -d. -f2 <<<"$k8s_version")" \
    "k8s.io/component-base/version" gitTreeState clean \
    "k8s.io/client-go/pkg/version" gitVersion "$k8s_version" \
    "k8s.io/client-go/pkg/version" gitMajor "$(cut -d. -f1 <<<"${k8s_version#v}")" \
    "k8s.io/client-go/pkg/version" gitMinor "$(cut -d. -f2 <<<"$k8s_version")" \
    "k8s.io/client-go/pkg/version" gitTreeState clean; }
k8s_ldflags="-s -w $(version_pkg)"

staging="$out.partial"
rm -rf "$staging"
mkdir -p "$staging"

# Runs `go build -v` and reports every 20 s how many packages it has compiled, so a cold
# build (many minutes on two cores) shows it is alive without printing thousands of lines.
build() {
    local name="$1" dir="$2" pkg="$3" ldflags="$4"
    local log="$staging/$name.log" start=$SECONDS
    echo "build.sh: building $name ($pkg)" >&2
    (cd "$dir" && go build -v -ldflags="$ldflags" -o "$staging/$name" "$pkg") >"$log" 2>&1 &
    local pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        sleep 20 & wait $! || true
        if kill -0 "$pid" 2>/dev/null; then
            echo "build.sh:   $name: $(grep -vc '^#' "$log" || true) packages compiled, $((SECONDS - start)) s" >&2
        fi
    done
    if ! wait "$pid"; then
        echo "build.sh: building $name failed; last lines of $log:" >&2
        tail -n 40 "$log" >&2
        exit 1
    fi
    echo "build.sh: built $name in $((SECONDS - start)) s" >&2
}

total=$SECONDS
build etcd "$here/etcd" go.etcd.io/etcd/server/v3 "-s -w"
build kube-apiserver "$here/kubernetes" k8s.io/kubernetes/cmd/kube-apiserver "$k8s_ldflags"
build kube-controller-manager "$here/kubernetes" k8s.io/kubernetes/cmd/kube-controller-manager "$k8s_ldflags"

printf '%s\n' "$stamp" >"$staging/stamp"
rm -f "$staging"/*.log
rm -rf "$out"
mv "$staging" "$out"
echo "build.sh: control plane built in $((SECONDS - total)) s into $out ($(du -sh "$out" | cut -f1))" >&2
echo "$out"
