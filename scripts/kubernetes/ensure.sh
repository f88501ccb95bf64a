#!/usr/bin/env bash
# Builds the Kubernetes control plane the tests run against (kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl, etcd) from the Go modules pinned in
# go.mod/go.sum beside this script, once per machine, and prints the directory holding the
# binaries:
#
#   scripts/kubernetes/ensure.sh            # build if missing or stale, print the bin dir
#   scripts/kubernetes/ensure.sh --check    # print the bin dir if built, else exit 1
#
# The build goes to ${TESSERA_CACHE:-~/.cache/tessera}/kubernetes/<version>/: bin/kube is
# one binary holding all five commands (main.go), bin/<component> are symlinks to it, and
# stamp records a hash of the inputs, so a warm run only hashes four files. A cold run
# downloads the modules (~800 MB in the Go module cache) and compiles; its output goes to
# build.log there. Two runs at once build once (flock).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

version="$(awk '$1 == "k8s.io/kubernetes" { print $2 }' go.mod)"
[ -n "$version" ] || { echo "ensure.sh: no k8s.io/kubernetes requirement in $here/go.mod" >&2; exit 1; }
cache="${TESSERA_CACHE:-$HOME/.cache/tessera}/kubernetes/$version"
bin="$cache/bin"
components=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd)
# The same hash test/helpers/kubernetes/binaries.ts computes: sha256 of these files' bytes.
stamp="$(cat go.mod go.sum main.go ensure.sh | sha256sum | cut -d' ' -f1)"

built() {
  [ -x "$bin/kube" ] && [ "$(cat "$cache/stamp" 2>/dev/null)" = "$stamp" ] || return 1
  for c in "${components[@]}"; do [ -x "$bin/$c" ] || return 1; done
}

if built; then echo "$bin"; exit 0; fi
if [ "${1:-}" = "--check" ]; then
  echo "ensure.sh: Kubernetes $version is not built in $cache (run scripts/kubernetes/ensure.sh)" >&2
  exit 1
fi
command -v go >/dev/null || { echo "ensure.sh: go is not installed; it is needed to build Kubernetes $version" >&2; exit 1; }

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if built; then echo "$bin"; exit 0; fi # another run built it while this one waited

log="$cache/build.log"
echo "ensure.sh: building Kubernetes $version into $bin (first run on this machine; log: $log)" >&2
start=$SECONDS
{
  echo "# $(date -u +%FT%TZ) $(go version) $(nproc) cores"
  # -mod=readonly: go.sum is complete, and a build must never rewrite it.
  export GOFLAGS="-mod=readonly -buildvcs=false"
  echo "# go mod download"
  t=$SECONDS
  go mod download -x
  echo "# downloaded in $((SECONDS - t))s"
  t=$SECONDS
  echo "# go build"
  rm -rf "$cache/bin.new"
  mkdir -p "$cache/bin.new"
  # The version the release's own build stamps (hack/lib/version.sh): kubectl and the
  # servers report it, and kubectl refuses to parse the unstamped default.
  minor="${version#v1.}"
  minor="${minor%%.*}"
  stampflags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    stampflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    stampflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  go build -trimpath -ldflags="-s -w$stampflags" -o "$cache/bin.new/kube" .
  echo "# built in $((SECONDS - t))s"
} >"$log" 2>&1 || {
  echo "ensure.sh: the build failed after $((SECONDS - start))s; the end of $log:" >&2
  tail -n 30 "$log" >&2
  exit 1
}
for c in "${components[@]}"; do ln -s kube "$cache/bin.new/$c"; done
rm -rf "$bin"
mv "$cache/bin.new" "$bin"
echo "$stamp" >"$cache/stamp"
echo "# total $((SECONDS - start))s" >>"$log"
echo "ensure.sh: built Kubernetes $version in $((SECONDS - start))s" >&2
echo "$bin"
