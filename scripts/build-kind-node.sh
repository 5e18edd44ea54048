#!/usr/bin/env bash
# Builds the kind node image ckslab/kind-node:v1.34.4 offline (no container registry): every part
# is built here from Debian packages and the Go module proxy, the way kind's own base and node
# images are put together. See /work/shared/kind-offline.md for why each step is what it is.
#
#   export "$(scripts/docker-engine.sh start | tail -n1)"   # or any engine: DOCKER_HOST
#   scripts/build-kind-node.sh          # last stdout line: the image reference
#   scripts/build-kind-node.sh --parts  # only steps 2-7 (no Kubernetes build, no images)
#   scripts/build-kind-node.sh --upgrade-from  # ckslab/kind-node:v1.33.13, the upgrade lab's:
#       v1.33.13 runs, and v1.34.4's packages and images wait on the node (see below)
#
# Parts (each cached under ${CKSLAB_CACHE:-~/.cache/ckslab}, rebuilt only when its inputs change):
#   bin/v1.34.4/{kube-*,kubelet,kubeadm,kubectl}   scripts/build-k8s.sh --node
#   bin/v1.34.4/kind                               kind v0.33.0 CLI (tools/kind-bin/kind)
#   kind/bin/{etcd,etcdctl,coredns,crictl,pause}   tools/kind-bin/*, pause.c from k8s.io/kubernetes
#   kind/rootfs-bookworm.tar                       debootstrap --variant=minbase bookworm
#   kind/images/*.tar                              component images, `docker save` archives, under
#                                                  the names `kubeadm config images list` prints
#   kind/kind-node-v1.34.4.tar (+ .inputs)         the node image; a fresh engine `docker load`s it
#
# The upgrade image (--upgrade-from) is the same node at v1.33.13, as an exam node before a
# `kubeadm upgrade`: kubeadm, kubelet and kubectl are installed from .debs and held, and an apt
# repository on the node (/opt/ckslab/apt, file: source, no network) serves both versions'
# packages, so `apt-get install kubeadm=1.34.4-1.1` works as it does against pkgs.k8s.io. Both
# versions' component images are preloaded; etcd is v1.34's 3.6.5 from the start (ckslab's kind
# config pins its imageTag for this image, which kubeadm keeps across the upgrade), and the
# sandbox is v1.34's pause 3.10.1 (containerd's sandbox_image).
#
# Needs root (debootstrap, chroot), go, gcc with a static libc, curl; installs debootstrap,
# busybox-static, libcap2-bin, containerd and jq with apt-get when missing.
set -euo pipefail

K8S_VERSION=v1.34.4
KIND_VERSION=v0.33.0
ETCD_VERSION=v3.6.5
ETCD_TAG=3.6.5-0
COREDNS_TAG=v1.12.1 # kubeadm v1.34's; the binary is CoreDNS 1.14.7 (the oldest the proxy serves is 1.14.3)
CRICTL_VERSION=v1.34.0
PAUSE_TAG=3.10.1
SUITE=bookworm
MIRROR=${CKSLAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
UPGRADE_FROM=v1.33.13
COREDNS_FROM_TAG=v1.12.0 # kubeadm v1.33's: the same CoreDNS build as COREDNS_TAG
IMAGE=ckslab/kind-node:$K8S_VERSION

repo=$(cd "$(dirname "$0")/.." && pwd)
self="$repo/scripts/build-kind-node.sh"
cache=${CKSLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ckslab}
bin="$cache/bin/$K8S_VERSION"
kc="$cache/kind"
kbin="$kc/bin"
mkdir -p "$bin" "$kbin" "$kc/images"

parts_only="" upgrade=""
case ${1:-} in
  --parts) parts_only=1 ;;
  --upgrade-from) upgrade=1 ;;
  "") ;;
  *) echo "usage: $0 [--parts | --upgrade-from]" >&2; exit 2 ;;
esac
# The version the node runs (and names the image) and the dir of its kubelet, kubeadm, kubectl.
NODE_VERSION=$K8S_VERSION
if [[ -n $upgrade ]]; then
  NODE_VERSION=$UPGRADE_FROM
  IMAGE=ckslab/kind-node:$UPGRADE_FROM
fi
node_bin="$cache/bin/$NODE_VERSION"

if [[ $(id -u) != 0 ]]; then echo "build-kind-node: needs root (debootstrap, chroot)" >&2; exit 2; fi
if [[ -z ${DOCKER_HOST:-} ]] && [[ ! -S /var/run/docker.sock ]]; then
  echo "build-kind-node: no Docker engine; run: export \"\$(scripts/docker-engine.sh start | tail -n1)\"" >&2
  exit 2
fi
docker version --format '{{.Server.Version}}' >/dev/null || { echo "build-kind-node: the Docker engine does not answer" >&2; exit 2; }

need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
[[ -x /bin/busybox ]] && /bin/busybox --list 2>/dev/null | grep -qx httpd || need+=(busybox-static)
command -v setcap >/dev/null || need+=(libcap2-bin)
command -v containerd >/dev/null || need+=(containerd)
command -v jq >/dev/null || need+=(jq)
if ((${#need[@]})); then
  echo "build-kind-node: installing ${need[*]} (apt-get)..."
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } >&2
fi
BUSYBOX=/bin/busybox

sha() { sha256sum "$@" | awk '{print $1}' | sha256sum | cut -c1-16; }
strsha() { sha256sum | cut -c1-16; }

step=0
total=9
say() { echo "[$step/$total] $*"; }
next() { step=$((step + 1)); }

cleanup_dirs=()
cleanup() {
  local d
  for d in "${cleanup_dirs[@]}"; do
    [[ -n $d && -d $d ]] || continue
    # never follow into a mounted /proc of a chroot
    umount -l "$d/root/proc" 2>/dev/null || true
    rm -rf --one-file-system "$d"
  done
  if [[ -n ${ctrd_pid:-} ]]; then kill "$ctrd_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

# gobuild NAME MODULE-DIR PACKAGE LDFLAGS OUT: go build into OUT unless OUT exists and was built
# from the same go.mod/go.sum/ldflags (recorded in OUT.inputs).
gobuild() {
  local name=$1 dir=$2 pkg=$3 ldflags=$4 out=$5 key
  key=$( { cat "$dir/go.mod" "$dir/go.sum"; echo "$pkg $ldflags"; } | strsha)
  if [[ -x $out && $(cat "$out.inputs" 2>/dev/null) == "$key" ]]; then
    say "$name: cached"
    return
  fi
  say "$name: building $pkg..."
  local start=$SECONDS
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -trimpath" go build -ldflags "$ldflags" -o "$out.tmp" "$pkg")
  mv "$out.tmp" "$out"
  echo "$key" >"$out.inputs"
  say "$name: built in $((SECONDS - start))s"
}

# 1. Kubernetes binaries (control plane, kubectl, kubelet, kubeadm, kube-proxy).
next
if [[ -z $parts_only ]]; then
  say "kubernetes $K8S_VERSION binaries: scripts/build-k8s.sh --node"
  start=$SECONDS
  "$repo/scripts/build-k8s.sh" --node | sed -u 's/^/      /'
  [[ -z $upgrade ]] || "$repo/scripts/build-k8s.sh" --upgrade-from | sed -u 's/^/      /'
  say "kubernetes binaries: ready in $((SECONDS - start))s"
fi

# 2-5. Go binaries from their wrapper modules.
next
gobuild "etcd $ETCD_VERSION" "$repo/tools/kind-bin/etcd" go.etcd.io/etcd/server/v3 \
  "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION" "$kbin/etcd"
gobuild "etcdctl $ETCD_VERSION" "$repo/tools/kind-bin/etcd" go.etcd.io/etcd/etcdctl/v3 "-s -w" "$kbin/etcdctl"
next
gobuild "coredns (tag $COREDNS_TAG)" "$repo/tools/kind-bin/coredns" github.com/coredns/coredns \
  "-s -w -X github.com/coredns/coredns/coremain.GitCommit=ckslab" "$kbin/coredns"
next
gobuild "crictl $CRICTL_VERSION" "$repo/tools/kind-bin/crictl" sigs.k8s.io/cri-tools/cmd/crictl \
  "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" "$kbin/crictl"
next
gobuild "kind $KIND_VERSION" "$repo/tools/kind-bin/kind" sigs.k8s.io/kind "-s -w" "$bin/kind"

# kind's base image files come from the same module.
kind_dir=$(cd "$repo/tools/kind-bin/kind" && go list -m -f '{{.Dir}}' sigs.k8s.io/kind)
[[ -n $kind_dir && -d $kind_dir/images/base/files ]] || (cd "$repo/tools/kind-bin/kind" && go mod download sigs.k8s.io/kind)
kind_dir=$(cd "$repo/tools/kind-bin/kind" && go list -m -f '{{.Dir}}' sigs.k8s.io/kind)
base_files="$kind_dir/images/base/files"

# 6. pause, from kubernetes' C source, static.
next
k8s_dir=$(cd "$repo/tools/k8s-bin/kubernetes" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)
pause_c="$k8s_dir/build/pause/linux/pause.c"
key=$( { cat "$pause_c"; echo "$PAUSE_TAG"; gcc --version | head -1; } | strsha)
if [[ -x $kbin/pause && $(cat "$kbin/pause.inputs" 2>/dev/null) == "$key" ]]; then
  say "pause $PAUSE_TAG: cached"
else
  start=$SECONDS
  gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_TAG-ckslab" -o "$kbin/pause.tmp" "$pause_c"
  strip "$kbin/pause.tmp"
  mv "$kbin/pause.tmp" "$kbin/pause"
  echo "$key" >"$kbin/pause.inputs"
  say "pause $PAUSE_TAG: built in $((SECONDS - start))s"
fi

# 7. Debian root file system (what kind's base Dockerfile installs, plus Debian's containerd,
# runc and CNI plugins instead of kind's own builds; jq for mount-product-files.sh), and the
# tools an exam node has for the runtime tasks: vim, strace, lsof, psmisc (fuser), netcat.
# SPARE_PKGS are installed to pull in their dependencies, then purged, their .debs kept in
# /opt/ckslab/debs: a scenario installs one (a service the workload does not need) and the
# learner removes it; the next setup can install it again offline.
next
PKGS=systemd,systemd-sysv,dbus,containerd,runc,containernetworking-plugins,iptables,nftables,iproute2,ca-certificates,procps,kmod,mount,util-linux,conntrack,ethtool,socat,ebtables,libseccomp2,jq,bash,curl,iputils-ping,less,pigz,vim,strace,lsof,psmisc,netcat-openbsd
SPARE_PKGS=(vsftpd)
rootfs="$kc/rootfs-$SUITE.tar"
key=$(echo "$SUITE $MIRROR $PKGS ${SPARE_PKGS[*]}" | strsha)
if [[ -f $rootfs && $(cat "$rootfs.inputs" 2>/dev/null) == "$key" ]]; then
  say "rootfs $SUITE: cached"
else
  say "rootfs $SUITE: debootstrap (a few minutes)..."
  start=$SECONDS
  w=$(mktemp -d "$kc/debootstrap.XXXXXX")
  cleanup_dirs+=("$w")
  debootstrap --variant=minbase --include="$PKGS,$(IFS=,; echo "${SPARE_PKGS[*]}")" "$SUITE" "$w/root" "$MIRROR" >"$kc/debootstrap.log" 2>&1 ||
    { tail -n 20 "$kc/debootstrap.log" >&2; exit 1; }
  mkdir -p "$w/root/opt/ckslab/debs"
  for p in "${SPARE_PKGS[@]}"; do
    cp "$w/root/var/cache/apt/archives/${p}_"*.deb "$w/root/opt/ckslab/debs/" ||
      { echo "build-kind-node: debootstrap kept no .deb of $p" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive chroot "$w/root" dpkg --purge "$p" >>"$kc/debootstrap.log" 2>&1
  done
  rm -rf "$w/root/var/cache/apt/archives/"*.deb "$w/root/var/lib/apt/lists/"*
  tar -C "$w/root" --numeric-owner --xattrs --xattrs-include='*' -cf "$rootfs.tmp" .
  mv "$rootfs.tmp" "$rootfs"
  echo "$key" >"$rootfs.inputs"
  rm -rf --one-file-system "$w"
  say "rootfs $SUITE: built in $((SECONDS - start))s ($(du -m "$rootfs" | cut -f1) MB)"
fi

[[ -z $parts_only ]] || exit 0

# 8. Component images, under the names kubeadm asks for.
next
images=(
  "registry.k8s.io/kube-apiserver:$K8S_VERSION"
  "registry.k8s.io/kube-controller-manager:$K8S_VERSION"
  "registry.k8s.io/kube-scheduler:$K8S_VERSION"
  "registry.k8s.io/kube-proxy:$K8S_VERSION"
  "registry.k8s.io/coredns/coredns:$COREDNS_TAG"
  "registry.k8s.io/pause:$PAUSE_TAG"
  "registry.k8s.io/etcd:$ETCD_TAG"
)
want=$("$bin/kubeadm" config images list --kubernetes-version "$K8S_VERSION" 2>/dev/null)
if [[ -n $upgrade ]]; then
  images+=(
    "registry.k8s.io/kube-apiserver:$UPGRADE_FROM"
    "registry.k8s.io/kube-controller-manager:$UPGRADE_FROM"
    "registry.k8s.io/kube-scheduler:$UPGRADE_FROM"
    "registry.k8s.io/kube-proxy:$UPGRADE_FROM"
    "registry.k8s.io/coredns/coredns:$COREDNS_FROM_TAG"
  )
  # etcd and pause stay v1.34's (see the top of this file), so kubeadm v1.33's are not wanted.
  want+=$'\n'$("$node_bin/kubeadm" config images list --kubernetes-version "$UPGRADE_FROM" 2>/dev/null |
    grep -v -e '/etcd:' -e '/pause:')
fi
want=$(echo "$want" | sort)
have=$(printf '%s\n' "${images[@]}" | sort)
if [[ $want != "$have" ]]; then
  echo "build-kind-node: kubeadm wants images this script does not build:" >&2
  diff <(echo "$have") <(echo "$want") >&2 || true
  exit 1
fi
tarname() { echo "$kc/images/$(echo "$1" | tr '/:' '__').tar"; }

# Writes a minimal root (busybox optional) into DIR.
minimal_root() { # DIR with-busybox
  local d=$1
  mkdir -p "$d"/{etc,tmp,run,var/run,usr/local/bin,usr/sbin,bin}
  chmod 1777 "$d/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$d/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$d/etc/group"
  echo 'hosts: files dns' >"$d/etc/nsswitch.conf"
  if [[ $2 == 1 ]]; then
    cp "$BUSYBOX" "$d/bin/busybox"
    local a
    for a in $("$BUSYBOX" --list); do [[ -e $d/bin/$a ]] || ln -s busybox "$d/bin/$a"; done
  fi
}

# import_image REF DIR KEY CHANGES...: tar DIR (keeping file capabilities) into REF, save to cache.
import_image() {
  local ref=$1 dir=$2 key=$3
  shift 3
  local changes=(--change "LABEL ckslab.inputs=$key") built=()
  local c
  # `docker import --change` takes no STOPSIGNAL: that one goes through a one-line build.
  for c in "$@"; do
    if [[ $c == STOPSIGNAL* ]]; then built+=("$c"); else changes+=(--change "$c"); fi
  done
  tar -C "$dir" --numeric-owner --xattrs --xattrs-include='*' -c . | docker import "${changes[@]}" - "$ref" >/dev/null
  if ((${#built[@]})); then
    printf 'FROM %s\n%s\n' "$ref" "$(printf '%s\n' "${built[@]}")" | DOCKER_BUILDKIT=0 docker build -q -t "$ref" - >/dev/null
  fi
  docker save -o "$(tarname "$ref").tmp" "$ref"
  mv "$(tarname "$ref").tmp" "$(tarname "$ref")"
  echo "$key" >"$(tarname "$ref").inputs"
}

# Rootfs pieces for kube-proxy: iptables (nft and legacy), conntrack and their libraries.
proxy_extra() { # DIR
  local d=$1 r
  r=$(mktemp -d "$kc/proxyroot.XXXXXX")
  cleanup_dirs+=("$r")
  tar -C "$r" -xf "$rootfs"
  local bins=(/usr/sbin/xtables-nft-multi /usr/sbin/xtables-legacy-multi /usr/sbin/conntrack /usr/sbin/ipset /usr/sbin/nft)
  local b libs=()
  for b in "${bins[@]}"; do
    [[ -e $r$b ]] || continue
    cp -a "$r$b" "$d$b"
    # libraries: resolve with the root file system's own loader paths
    while read -r lib; do libs+=("$lib"); done < <(chroot "$r" /usr/bin/ldd "$b" 2>/dev/null | awk '/=> \// {print $3} /^\t\// {print $1}')
  done
  # iptables' match/target modules are dlopen()ed: copy them and their libraries too (libm...).
  local xt=/usr/lib/x86_64-linux-gnu/xtables
  if [[ -d $r$xt ]]; then
    mkdir -p "$d$xt"
    cp -a "$r$xt/." "$d$xt/"
    while read -r lib; do libs+=("$lib"); done < <(chroot "$r" /bin/sh -c "for m in $xt/*.so; do /usr/bin/ldd \$m; done" 2>/dev/null | awk '/=> \// {print $3} /^\t\// {print $1}')
  fi
  local l
  for l in $(printf '%s\n' "${libs[@]}" | sort -u); do
    mkdir -p "$d$(dirname "$l")"
    cp -L "$r$l" "$d$l"
  done
  rm -rf --one-file-system "$r"
  # The node's iptables mode (nft or legacy) is chosen by kind's entrypoint from the host's rules;
  # pick the same in the pod, as upstream's iptables-wrapper does (kubelet's hint chains first).
  cat >"$d/usr/sbin/iptables-wrapper" <<'WRAP'
#!/bin/sh
count() { ( xtables-$1-multi iptables-save; xtables-$1-multi ip6tables-save ) 2>/dev/null | grep -c "$2"; }
mode=nft
if [ "$(count legacy 'KUBE-IPTABLES-HINT\|KUBE-KUBELET-CANARY')" -gt 0 ]; then mode=legacy
elif [ "$(count nft 'KUBE-IPTABLES-HINT\|KUBE-KUBELET-CANARY')" -gt 0 ]; then mode=nft
elif [ "$(count legacy '^-')" -gt "$(count nft '^-')" ]; then mode=legacy
fi
for c in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
  ln -sf xtables-$mode-multi /usr/sbin/$c
done
exec "/usr/sbin/$(basename "$0")" "$@"
WRAP
  chmod 755 "$d/usr/sbin/iptables-wrapper"
  for c in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
    ln -sf iptables-wrapper "$d/usr/sbin/$c"
  done
}

PATH_ENV="ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
img_start=$SECONDS
built_imgs=0
for ref in "${images[@]}"; do
  name=${ref#registry.k8s.io/}
  name=${name%%:*}
  name=${name##*/}
  case $name in
    kube-apiserver | kube-controller-manager | kube-scheduler | kube-proxy) inputs=("$cache/bin/${ref##*:}/$name") ;;
    etcd) inputs=("$kbin/etcd" "$kbin/etcdctl") ;;
    coredns) inputs=("$kbin/coredns") ;;
    pause) inputs=("$kbin/pause") ;;
  esac
  [[ $name == kube-proxy ]] && inputs+=("$rootfs.inputs")
  key=$( { sha "${inputs[@]}" "$self" "$BUSYBOX"; echo "$ref"; } | strsha)
  t=$(tarname "$ref")
  if [[ -f $t && $(cat "$t.inputs" 2>/dev/null) == "$key" ]]; then continue; fi
  d=$(mktemp -d "$kc/img.XXXXXX")
  cleanup_dirs+=("$d")
  case $name in
    kube-apiserver | kube-controller-manager | kube-scheduler)
      # distroless like the real ones: no shell
      minimal_root "$d" 0
      cp "${inputs[0]}" "$d/usr/local/bin/$name"
      stop=()
      # On SIGTERM a kube-apiserver stops answering at once but lingers until the kubelet's
      # grace (kubeadm's 30 s) runs out, and its replacement waits for it: every manifest edit
      # took 42-45 s on kind. containerd stops a container with its image's STOPSIGNAL, so this
      # image is killed at once (it keeps no state; etcd does) and the learner's manifest stays
      # exactly kubeadm's.
      [[ $name == kube-apiserver ]] && stop=("STOPSIGNAL SIGKILL")
      import_image "$ref" "$d" "$key" "$PATH_ENV" "${stop[@]}" "ENTRYPOINT [\"/usr/local/bin/$name\"]"
      ;;
    kube-proxy)
      minimal_root "$d" 1
      mkdir -p "$d/lib/modules"
      cp "${inputs[0]}" "$d/usr/local/bin/kube-proxy"
      proxy_extra "$d"
      import_image "$ref" "$d" "$key" "$PATH_ENV" 'ENTRYPOINT ["/usr/local/bin/kube-proxy"]'
      ;;
    etcd)
      minimal_root "$d" 1
      mkdir -p "$d/var/lib/etcd"
      cp "$kbin/etcd" "$kbin/etcdctl" "$d/usr/local/bin/"
      import_image "$ref" "$d" "$key" "$PATH_ENV" 'ENTRYPOINT ["/usr/local/bin/etcd"]'
      ;;
    coredns)
      minimal_root "$d" 0
      cp "$kbin/coredns" "$d/coredns"
      # CoreDNS runs as 65532 and binds :53: it needs the file capability (tar --xattrs keeps it).
      setcap cap_net_bind_service=+ep "$d/coredns"
      import_image "$ref" "$d" "$key" "$PATH_ENV" "USER 65532:65532" 'EXPOSE 53 53/udp' 'ENTRYPOINT ["/coredns"]'
      ;;
    pause)
      mkdir -p "$d"
      cp "$kbin/pause" "$d/pause"
      import_image "$ref" "$d" "$key" 'USER 65535:65535' 'ENTRYPOINT ["/pause"]'
      ;;
  esac
  rm -rf --one-file-system "$d"
  built_imgs=$((built_imgs + 1))
done
if ((built_imgs)); then
  say "component images: built $built_imgs of ${#images[@]} in $((SECONDS - img_start))s"
else
  say "component images: cached"
fi

# make_deb NAME VERSION BINARY OUTDIR: a package like pkgs.k8s.io's (NAME_1.34.4-1.1_amd64.deb)
# holding BINARY as /usr/bin/NAME. kind's own systemd unit runs the kubelet, so none is shipped.
make_deb() {
  local name=$1 version=${2#v} binary=$3 out=$4 d
  d=$(mktemp -d "$kc/deb.XXXXXX")
  cleanup_dirs+=("$d")
  mkdir -p "$d/DEBIAN" "$d/usr/bin"
  install -m 755 "$binary" "$d/usr/bin/$name"
  cat >"$d/DEBIAN/control" <<EOF
Package: $name
Version: $version-1.1
Architecture: amd64
Maintainer: ckslab <ckslab@localhost>
Installed-Size: $(du -k "$binary" | cut -f1)
Section: admin
Priority: optional
Homepage: https://kubernetes.io
Description: Kubernetes $name v$version
 Built by ckslab from the Go module proxy, packaged as pkgs.k8s.io names its packages.
EOF
  dpkg-deb --root-owner-group -Zgzip -z1 --build "$d" "$out/${name}_$version-1.1_amd64.deb" >/dev/null
  rm -rf "$d"
}

# apt_index DIR: the Packages file of a flat repository (what dpkg-scanpackages writes).
apt_index() {
  local dir=$1 deb
  : >"$dir/Packages"
  for deb in "$dir"/*.deb; do
    {
      dpkg-deb -f "$deb"
      echo "Filename: ./$(basename "$deb")"
      echo "Size: $(stat -c %s "$deb")"
      echo "SHA256: $(sha256sum "$deb" | cut -d' ' -f1)"
      echo
    } >>"$dir/Packages"
  done
}

# 9. The node image.
next
node_tar="$kc/kind-node-$NODE_VERSION.tar"
node_bins=("$node_bin/kubelet" "$node_bin/kubeadm" "$node_bin/kubectl" "$kbin/crictl")
[[ -z $upgrade ]] || node_bins+=("$bin/kubelet" "$bin/kubeadm" "$bin/kubectl")
key=$( {
  sha "$self" "${node_bins[@]}"
  cat "$rootfs.inputs"
  for ref in "${images[@]}"; do cat "$(tarname "$ref").inputs"; done
  (cd "$base_files" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
} | strsha)
if [[ -f $node_tar && $(cat "$node_tar.inputs" 2>/dev/null) == "$key" ]]; then
  if [[ $(docker image inspect -f '{{index .Config.Labels "ckslab.inputs"}}' "$IMAGE" 2>/dev/null) == "$key" ]]; then
    say "node image $IMAGE: cached"
  else
    start=$SECONDS
    docker load -i "$node_tar" >/dev/null
    say "node image $IMAGE: cached, loaded in $((SECONDS - start))s"
  fi
  echo "$IMAGE"
  exit 0
fi

say "node image $IMAGE: assembling..."
start=$SECONDS
w=$(mktemp -d "$kc/node.XXXXXX")
cleanup_dirs+=("$w")
r="$w/root"
mkdir -p "$r"
tar -C "$r" --numeric-owner --xattrs --xattrs-include='*' -xf "$rootfs"

# kind's base files, with the modes its Dockerfile gives them.
install -d -m 755 "$r/kind" "$r/kind/bin"
install -m 755 "$base_files"/usr/local/bin/* "$r/usr/local/bin/"
install -m 644 "$base_files"/kind/README.txt "$r/kind/" 2>/dev/null || true
install -m 755 "$base_files"/kind/bin/* "$r/kind/bin/"
install -m 644 "$base_files"/etc/crictl.yaml "$r/etc/"
install -d "$r/etc/containerd" "$r/etc/default" "$r/etc/sysctl.d" "$r/etc/systemd/system/kubelet.service.d"
install -m 644 "$base_files"/etc/containerd/* "$r/etc/containerd/"
install -m 644 "$base_files"/etc/default/* "$r/etc/default/"
install -m 644 "$base_files"/etc/sysctl.d/* "$r/etc/sysctl.d/"
find "$base_files/etc/systemd/system" -maxdepth 1 -type f -exec install -m 644 {} "$r/etc/systemd/system/" \;
install -m 644 "$base_files"/etc/systemd/system/kubelet.service.d/* "$r/etc/systemd/system/kubelet.service.d/"

# The systemd clean-up of kind's base Dockerfile.
find "$r/lib/systemd/system/sysinit.target.wants/" -name systemd-tmpfiles-setup.service -delete
rm -f "$r"/lib/systemd/system/multi-user.target.wants/* "$r"/etc/systemd/system/*.wants/* \
  "$r"/lib/systemd/system/local-fs.target.wants/* "$r"/lib/systemd/system/sockets.target.wants/*udev* \
  "$r"/lib/systemd/system/sockets.target.wants/*initctl* "$r"/lib/systemd/system/basic.target.wants/*
echo "ReadKMsg=no" >>"$r/etc/systemd/journald.conf"
ln -sf /usr/lib/systemd/systemd "$r/sbin/init"
chroot "$r" systemctl enable kubelet.service containerd.service undo-mount-hacks.service 2>&1 | grep -v '^Created symlink' >&2 || true
chroot "$r" systemctl mask systemd-binfmt.service 2>&1 | grep -v '^Created symlink' >&2 || true
[[ -L $r/etc/systemd/system/multi-user.target.wants/kubelet.service ]] || { echo "build-kind-node: systemctl enable failed in the root" >&2; exit 1; }
mkdir -p "$r/etc/kubernetes/manifests"

# Debian's containerd where kind's units expect it; CNI plugins where kubelet/containerd look.
for b in containerd containerd-shim-runc-v2 ctr; do ln -sf "/usr/bin/$b" "$r/usr/local/bin/$b"; done
mkdir -p "$r/opt/cni/bin"
for p in "$r"/usr/lib/cni/*; do ln -sf "/usr/lib/cni/$(basename "$p")" "$r/opt/cni/bin/$(basename "$p")"; done
chroot "$r" ctr oci spec |
  jq '.hooks.createContainer[.hooks.createContainer | length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' |
  jq 'del(.process.rlimits)' >"$r/etc/containerd/cri-base.json"

# containerd: the pause we preload; restrict_oom_score_adj (no CAP_SYS_RESOURCE in some sandboxes:
# without it every pod sandbox fails with "can't get final child's PID from pipe: EOF").
sed -i -e "s|^\( *sandbox_image = \).*|\1\"registry.k8s.io/pause:$PAUSE_TAG\"|" \
  -e 's|^\( *restrict_oom_score_adj = \).*|\1true|' "$r/etc/containerd/config.toml"
grep -q "pause:$PAUSE_TAG" "$r/etc/containerd/config.toml" && grep -q 'restrict_oom_score_adj = true' "$r/etc/containerd/config.toml" ||
  { echo "build-kind-node: could not set sandbox_image/restrict_oom_score_adj in config.toml" >&2; exit 1; }

# Kubernetes binaries: copied in, or for the upgrade image installed from packages (see the top).
install -m 755 "$kbin/crictl" "$r/usr/local/bin/"
if [[ -z $upgrade ]]; then
  install -m 755 "$bin/kubelet" "$bin/kubeadm" "$bin/kubectl" "$r/usr/bin/"
else
  apt_dir="$r/opt/ckslab/apt"
  mkdir -p "$apt_dir"
  for v in "$UPGRADE_FROM" "$K8S_VERSION"; do
    for p in kubeadm kubelet kubectl; do make_deb "$p" "$v" "$cache/bin/$v/$p" "$apt_dir"; done
  done
  apt_index "$apt_dir"
  # The node has no network: the local repository is its only source.
  echo "# no network here: the only package source is /etc/apt/sources.list.d/kubernetes.list" >"$r/etc/apt/sources.list"
  echo "deb [trusted=yes] file:/opt/ckslab/apt ./" >"$r/etc/apt/sources.list.d/kubernetes.list"
  chroot "$r" dpkg -i $(for p in kubeadm kubelet kubectl; do echo "/opt/ckslab/apt/${p}_${UPGRADE_FROM#v}-1.1_amd64.deb"; done) >/dev/null
  chroot "$r" apt-mark hold kubeadm kubelet kubectl >/dev/null
  chroot "$r" apt-get update -qq 2>&1 | grep -v '^$' >&2 || true
  [[ $("$r/usr/bin/kubeadm" version -o short) == "$UPGRADE_FROM" ]] || { echo "build-kind-node: kubeadm $UPGRADE_FROM did not install" >&2; exit 1; }
fi
echo "$NODE_VERSION" >"$r/kind/version"
rm -f "$r/etc/machine-id" "$r/var/lib/dbus/machine-id"
: >"$r/etc/machine-id"

# Preload the component images into the node's containerd (namespace k8s.io), with a containerd
# run here on the host against the node's /var/lib/containerd: same content store, no container.
st=$(mktemp -d /run/ckslab-kindbuild.XXXXXX)
cleanup_dirs+=("$st")
cat >"$st/config.toml" <<EOF
version = 2
root = "$r/var/lib/containerd"
state = "$st/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$st/c.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$st/opt"
EOF
containerd --config "$st/config.toml" >"$st/containerd.log" 2>&1 &
ctrd_pid=$!
for _ in $(seq 1 50); do [[ -S $st/c.sock ]] && ctr --address "$st/c.sock" version >/dev/null 2>&1 && break; sleep 0.2; done
for ref in "${images[@]}"; do
  ctr --address "$st/c.sock" -n k8s.io images import --no-unpack --digests "$(tarname "$ref")" >/dev/null
  ctr --address "$st/c.sock" -n k8s.io images label "$ref" io.cri-containerd.pinned=pinned >/dev/null
done
n=$(ctr --address "$st/c.sock" -n k8s.io images ls -q | grep -c '^registry.k8s.io/' || true)
kill "$ctrd_pid"
wait "$ctrd_pid" 2>/dev/null || true
ctrd_pid=""
((n >= ${#images[@]})) || { echo "build-kind-node: preloaded $n images, expected ${#images[@]}" >&2; cat "$st/containerd.log" >&2; exit 1; }

# Import as one layer with kind's ENTRYPOINT. (docker 20.10 refuses STOPSIGNAL in --change;
# kind removes nodes with `docker rm -f`, so SIGRTMIN+3 is not needed.)
tar -C "$r" --numeric-owner --xattrs --xattrs-include='*' -c . |
  docker import --change 'ENV container=docker' --change "LABEL ckslab.inputs=$key" \
    --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' - "$IMAGE" >/dev/null
rm -rf --one-file-system "$w"
say "node image $IMAGE: built in $((SECONDS - start))s; saving..."
start=$SECONDS
docker save -o "$node_tar.tmp" "$IMAGE"
mv "$node_tar.tmp" "$node_tar"
echo "$key" >"$node_tar.inputs"
say "node image $IMAGE: saved to $node_tar ($(du -m "$node_tar" | cut -f1) MB) in $((SECONDS - start))s"
echo "$IMAGE"
