#!/usr/bin/env bash
# Builds the Kubernetes control plane the tests run (internal/k8stest): etcd,
# kube-apiserver and kube-controller-manager, from the Go module proxy alone
# (hack/etcd and hack/k8s are their throw-away modules; see
# docs/architecture.md). The binaries go to
#   ${WEFT_K8S_CACHE:-$HOME/.cache/weft-k8s}/<kubernetes version>/
# outside the clone, so later runs and other clones reuse them; a binary that is
# already there and reports the expected version is not built again. Prints the
# directory on stdout; progress and errors go to stderr.
#
# Needs only Go (the go command, or $GO). A cold build takes about 6 minutes
# on 2 cores.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
k8s_mod=$root/hack/k8s
etcd_mod=$root/hack/etcd

say() { echo "k8s-env: $*" >&2; }
die() { say "error: $*"; exit 1; }

GO=${GO:-go}
command -v "$GO" >/dev/null || die "$GO is not on PATH (need Go 1.26: https://go.dev/dl/)"

# The versions come from the modules' go.mod files, so that nothing here can
# drift from what they build.
mod_version() { # go.mod module-path
  awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2; exit }
                 $1 == "require" && $2 == m { print $3; exit }' "$1"
}
k8s_version=$(mod_version "$k8s_mod/go.mod" k8s.io/kubernetes)
etcd_version=$(mod_version "$etcd_mod/go.mod" go.etcd.io/etcd/server/v3)
[ -n "$k8s_version" ] || die "no k8s.io/kubernetes version in $k8s_mod/go.mod"
[ -n "$etcd_version" ] || die "no go.etcd.io/etcd/server/v3 version in $etcd_mod/go.mod"

cache=${WEFT_K8S_CACHE:-${HOME:?HOME is not set; set WEFT_K8S_CACHE}/.cache/weft-k8s}
dir=$cache/$k8s_version
mkdir -p "$dir" || die "cannot create $dir (set WEFT_K8S_CACHE to a writable directory)"

# Static binaries (no C toolchain needed), built from the committed go.sum
# only, whatever go.work or GOFLAGS the caller has.
export CGO_ENABLED=0 GOWORK=off GOFLAGS=-mod=readonly

# Kubernetes' own build stamps the version (hack/lib/version.sh); without it
# the binaries call themselves v0.0.0-master.
minor=${k8s_version#v1.}
minor=${minor%%.*}
k8s_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean"
done

# valid BINARY WANT: the binary runs and its --version output contains WANT.
valid() {
  [ -x "$1" ] || return 1
  local out
  out=$("$1" --version 2>&1) || return 1
  [[ $out == *"$2"* ]]
}

# The binary being built, removed if the script stops before it is renamed.
tmp=""
trap 'rm -f "$tmp"' EXIT

# build NAME WANT MODULE-DIR PACKAGE LDFLAGS
build() {
  local name=$1 want=$2 mod=$3 pkg=$4 ldflags=$5
  local bin=$dir/$name
  if valid "$bin" "$want"; then
    say "$name: present ($want)"
    return
  fi
  say "building $name ($want; up to a few minutes on 2 cores)"
  local start
  tmp=$(mktemp "$dir/.$name.XXXXXX")
  start=$SECONDS
  if ! "$GO" build -C "$mod" -trimpath -buildvcs=false -ldflags "-s -w$ldflags" -o "$tmp" "$pkg"; then
    rm -f "$tmp"
    die "building $name from $mod failed (see the go output above; the module proxy must be reachable for a cold build)"
  fi
  if ! valid "$tmp" "$want"; then
    local out
    out=$("$tmp" --version 2>&1 || true)
    rm -f "$tmp"
    die "the $name just built does not report $want on --version: $out"
  fi
  mv -f "$tmp" "$bin"
  tmp=""
  say "built $name in $((SECONDS - start))s"
}

build etcd "etcd Version: ${etcd_version#v}" "$etcd_mod" . ""
build kube-apiserver "Kubernetes $k8s_version" "$k8s_mod" k8s.io/kubernetes/cmd/kube-apiserver "$k8s_ldflags"
build kube-controller-manager "Kubernetes $k8s_version" "$k8s_mod" k8s.io/kubernetes/cmd/kube-controller-manager "$k8s_ldflags"

say "ready in $dir"

echo "$dir"
