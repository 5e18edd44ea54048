#!/usr/bin/env bash
# Builds the local backend's binaries (Kubernetes control plane, kubectl, etcd, etcdctl, kwok)
# from the Go module proxy into a cache outside the repo, and reuses what is already there.
#
#   scripts/build-k8s.sh            # build what is missing, print the bin dir on the last line
#   CKSLAB_CACHE=/path scripts/build-k8s.sh
#   scripts/build-k8s.sh --node     # also kubelet, kubeadm, kube-proxy (the kind node image's)
#   scripts/build-k8s.sh --upgrade-from  # v1.33.13's node set (control plane, kubectl, kubelet,
#                                        # kubeadm, kube-proxy): the upgrade lab's starting point
#
# The wrapper modules live in tools/k8s-bin/: see the go.mod files for why they exist.
set -euo pipefail

K8S_VERSION=v1.34.4
UPGRADE_FROM=v1.33.13
ETCD_VERSION=v3.6.4
KWOK_VERSION=v0.7.0

node="" old=""
case ${1:-} in
  --node) node=1 ;;
  --upgrade-from) node=1 old=1 ;;
  "") ;;
  *) echo "usage: $0 [--node | --upgrade-from]" >&2; exit 2 ;;
esac
# Each minor version has its own wrapper module (its staging modules are pinned to its v0.x.y).
k8s_dir=kubernetes
if [[ -n $old ]]; then
  K8S_VERSION=$UPGRADE_FROM
  k8s_dir=kubernetes-${K8S_VERSION%.*}
fi
minor=${K8S_VERSION#v1.}
minor=${minor%%.*}

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${CKSLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ckslab}
bin="$cache/bin/$K8S_VERSION"
mkdir -p "$bin"


export CGO_ENABLED=0 GOFLAGS=-trimpath

# -s -w: no symbol tables; these are tools, not something we debug, and it halves link time.
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

step=0
total=7
[[ -z $node ]] || total=10
[[ -z $old ]] || total=7
build() { # name module-dir package ldflags
  local name=$1 dir=$2 pkg=$3 ldflags=$4
  step=$((step + 1))
  if [[ -x "$bin/$name" ]]; then
    echo "[$step/$total] $name: cached"
    return
  fi
  if ! command -v go >/dev/null 2>&1; then
    echo "build-k8s: 'go' is not installed; install Go 1.24 or newer (https://go.dev/dl), or fetch the official binaries with \`ckslab fetch-binaries\`" >&2
    exit 2
  fi
  echo "[$step/$total] $name: building $pkg (several minutes on a cold cache)..."
  local start=$SECONDS
  (cd "$repo/tools/k8s-bin/$dir" && go build -ldflags "$ldflags" -o "$bin/$name.tmp" "$pkg")
  mv "$bin/$name.tmp" "$bin/$name"
  echo "[$step/$total] $name: built in $((SECONDS - start))s"
}

build kube-apiserver "$k8s_dir" k8s.io/kubernetes/cmd/kube-apiserver "$k8s_ldflags"
build kube-controller-manager "$k8s_dir" k8s.io/kubernetes/cmd/kube-controller-manager "$k8s_ldflags"
build kube-scheduler "$k8s_dir" k8s.io/kubernetes/cmd/kube-scheduler "$k8s_ldflags"
build kubectl "$k8s_dir" k8s.io/kubernetes/cmd/kubectl "$k8s_ldflags"
if [[ -z $old ]]; then # the older version runs on kind only, with the node image's etcd
  build etcd etcd go.etcd.io/etcd/server/v3 "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION"
  build etcdctl etcd go.etcd.io/etcd/etcdctl/v3 "-s -w"
  build kwok kwok sigs.k8s.io/kwok/cmd/kwok "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"
fi
if [[ -n $node ]]; then
  build kubelet "$k8s_dir" k8s.io/kubernetes/cmd/kubelet "$k8s_ldflags"
  build kubeadm "$k8s_dir" k8s.io/kubernetes/cmd/kubeadm "$k8s_ldflags"
  build kube-proxy "$k8s_dir" k8s.io/kubernetes/cmd/kube-proxy "$k8s_ldflags"
fi

echo "$bin"
