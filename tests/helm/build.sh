#!/usr/bin/env bash
# Builds the helm CLI that the chart tests run (server/tests/chart.rs), from helm.sh/helm/v3
# through the Go module proxy, at the version pinned in go.mod beside this file (with go.sum),
# and kubectl (kubectl/main.go) from the k8s.io/kubectl module helm itself depends on, for the
# test of `kubectl accord …`.
#
# Output: $ACCORD_CACHE_DIR/helm-<version>/ (default ~/.cache/accord/helm-v3.22.0/) holding
# helm, kubectl and a `stamp` file. When the stamp matches go.mod, go.sum and kubectl/main.go
# the build is skipped. The last line printed on stdout is the helm binary's path (kubectl is
# beside it); progress goes to stderr.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${ACCORD_CACHE_DIR:-$HOME/.cache/accord}"

module_version() { awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2; exit }' "$1"; }
helm_version="$(module_version "$here/go.mod" helm.sh/helm/v3)"
client_go="$(module_version "$here/go.mod" k8s.io/client-go)"
if [[ -z "$helm_version" || -z "$client_go" ]]; then
    echo "build.sh: cannot read the pinned versions from $here/go.mod" >&2
    exit 1
fi

out="$cache/helm-$helm_version"
stamp="helm $helm_version
modules $(cat "$here/go.mod" "$here/go.sum" "$here/kubectl/main.go" | sha256sum | cut -d' ' -f1)"

up_to_date() {
    [[ -x "$out/helm" && -x "$out/kubectl" && -f "$out/stamp" && "$(cat "$out/stamp")" == "$stamp" ]]
}

if up_to_date; then
    echo "$out/helm"
    exit 0
fi

mkdir -p "$cache"
# Test binaries started in parallel may all ask for a build: the first builds, the others wait.
exec 9>"$cache/helm-$helm_version.lock"
if ! flock -n 9; then
    echo "build.sh: waiting for another build of $out" >&2
    flock 9
fi
if up_to_date; then
    echo "$out/helm"
    exit 0
fi

export GOTOOLCHAIN=local
export GOCACHE="$cache/go-build"
export GOFLAGS="-trimpath -mod=readonly -buildvcs=false"
export CGO_ENABLED=0

# What helm's own Makefile stamps in: its version, and the Kubernetes version its client-go
# modules speak (v0.X.Y is Kubernetes 1.X), which `helm template` reports as
# .Capabilities.KubeVersion and `helm lint` checks deprecated APIs against.
k8s_minor="$(cut -d. -f2 <<<"$client_go")"
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
done

staging="$out.partial"
rm -rf "$staging"
mkdir -p "$staging"
start=$SECONDS
build() {
    local name="$1" pkg="$2" flags="$3"
    echo "build.sh: building $name ($pkg)" >&2
    if ! (cd "$here" && go build -ldflags="$flags" -o "$staging/$name" "$pkg") >"$staging/build.log" 2>&1; then
        echo "build.sh: building $name failed; last lines of $staging/build.log:" >&2
        tail -n 40 "$staging/build.log" >&2
        exit 1
    fi
}
build helm helm.sh/helm/v3/cmd/helm "$ldflags"
build kubectl ./kubectl "-s -w"
printf '%s\n' "$stamp" >"$staging/stamp"
rm -f "$staging/build.log"
rm -rf "$out"
mv "$staging" "$out"
echo "build.sh: built helm and kubectl in $((SECONDS - start)) s into $out" >&2
echo "$out/helm"
