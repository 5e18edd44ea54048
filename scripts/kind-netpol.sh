#!/usr/bin/env bash
# NetworkPolicy enforcement for the offline kind clusters: kube-router v2.1.0 with only its
# firewall (--run-firewall; no routing, no service proxy), built from the Go module proxy into
# ckslab/kube-router:v2.1.0 (kube-proxy's image + kube-router + Debian's ipset) and cached as a
# saved tar under ${CKSLAB_CACHE:-~/.cache/ckslab}/kind/.
#
#   scripts/kind-netpol.sh               # build (cached); last line: the image reference
#
# Needs the component images from scripts/build-kind-node.sh and DOCKER_HOST. `ckslab up
# --backend kind` loads it and applies kind-configs/kube-router-netpol.yaml when the image is in
# the engine; it works with ckslab's bridge pod network (src/backend/kind/network.rs: pod source
# IPs are kept, no masquerade between pods). Denied connections are REJECTed
# (icmp-port-unreachable), not dropped.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${CKSLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ckslab}
kc="$cache/kind"
IMAGE=ckslab/kube-router:v2.1.0
out="$kc/bin/kube-router"
mod="$repo/tools/kind-bin/kube-router"
tar_path="$kc/images/ckslab_kube-router_v2.1.0.tar"
base_tar="$kc/images/registry.k8s.io_kube-proxy_v1.34.4.tar"
mkdir -p "$kc/bin" "$kc/images"

key=$( { cat "$mod/go.mod" "$mod/go.sum"; } | sha256sum | cut -c1-16)
if [[ -x $out && $(cat "$out.inputs" 2>/dev/null) == "$key" ]]; then
  echo "kube-router: cached"
else
  echo "kube-router: building (a few minutes on a cold cache)..."
  s=$SECONDS
  (cd "$mod" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.tmp" github.com/cloudnativelabs/kube-router/v2/cmd/kube-router)
  mv "$out.tmp" "$out"
  echo "$key" >"$out.inputs"
  echo "kube-router: built in $((SECONDS - s))s"
fi

[[ -f $base_tar ]] || { echo "kind-netpol: $base_tar missing; run scripts/build-kind-node.sh first" >&2; exit 1; }
ikey=$(sha256sum "$out" "$base_tar.inputs" "$0" | sha256sum | cut -c1-16)
if [[ -f $tar_path && $(cat "$tar_path.inputs" 2>/dev/null) == "$ikey" ]]; then
  echo "kube-router image: cached"
else
  s=$SECONDS
  w=$(mktemp -d)
  trap 'rm -rf "$w"' EXIT
  (cd "$w" && apt-get download ipset libipset13 >/dev/null 2>&1) ||
    { apt-get update -qq >&2 && (cd "$w" && apt-get download ipset libipset13 >/dev/null); }
  mkdir -p "$w/debs" "$w/root"
  for deb in "$w"/*.deb; do dpkg-deb -x "$deb" "$w/debs"; done
  docker image inspect registry.k8s.io/kube-proxy:v1.34.4 >/dev/null 2>&1 || docker load -i "$base_tar" >/dev/null
  cid=$(docker create registry.k8s.io/kube-proxy:v1.34.4)
  docker export "$cid" | tar -C "$w/root" -x
  docker rm "$cid" >/dev/null
  cp "$out" "$w/root/usr/local/bin/kube-router"
  cp "$w/debs/usr/sbin/ipset" "$w/root/usr/sbin/"
  cp -L "$w/debs/usr/lib/x86_64-linux-gnu/libipset.so.13" "$w/root/lib/x86_64-linux-gnu/"
  tar -C "$w/root" --numeric-owner -c . | docker import --change "LABEL ckslab.inputs=$ikey" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENTRYPOINT ["/usr/local/bin/kube-router"]' - "$IMAGE" >/dev/null
  docker save -o "$tar_path.tmp" "$IMAGE"
  mv "$tar_path.tmp" "$tar_path"
  echo "$ikey" >"$tar_path.inputs"
  echo "kube-router image: built in $((SECONDS - s))s"
fi

echo "$IMAGE"
