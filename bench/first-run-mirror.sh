#!/usr/bin/env bash
# The download half of a first run, simulated with a local mirror (this machine has no
# internet): serves already-built binaries in the official layout (release/v1.34.4/bin/linux/
# amd64/<name> + .sha512, etcd's release tarball + SHA256SUMS, kwok + checksums.txt) on
# 127.0.0.1, then from an empty cache times `ckslab fetch-binaries --mirror` and
# `ckslab serve --up` to the first answered page. Hold the local-cluster lock around it
# (FETCH_ONLY=1 stops after the download and needs no lock).
#
# FULL=1 times a whole first run instead: CKSLAB (which must be a build of HEAD) is published
# into the mirror too (scripts/publish-prebuilt.sh), and from a fresh clone of HEAD with empty
# caches `CKSLAB_MIRROR=... scripts/lab.sh` downloads and verifies it and every binary, brings
# up the local backend and serves the web UI; the time is to the first answered page.
#
#   bench/first-run-mirror.sh [CKSLAB] [SOURCE_BIN_DIR]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
ckslab=$(realpath "${1:-$repo/target/lab/ckslab}")
src=${2:-${XDG_CACHE_HOME:-$HOME/.cache}/ckslab/bin/v1.34.4}
work=$(mktemp -d)
server="" serve_pid=""
cleanup() {
  [[ -z $serve_pid ]] || kill "$serve_pid" 2>/dev/null || true
  CKSLAB_HOME=$work/home CKSLAB_CACHE=$work/cache "$ckslab" down --backend local >/dev/null 2>&1 || true
  [[ -z $server ]] || kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

m=$work/mirror
k8s=$m/release/v1.34.4/bin/linux/amd64
etcd=$m/etcd-io/etcd/releases/download/v3.6.5
kwok=$m/kubernetes-sigs/kwok/releases/download/v0.7.0
mkdir -p "$k8s" "$etcd/etcd-v3.6.5-linux-amd64" "$kwok"
for name in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  cp "$src/$name" "$k8s/"
  sha512sum "$k8s/$name" | cut -d' ' -f1 >"$k8s/$name.sha512"
done
cp "$src/etcd" "$src/etcdctl" "$etcd/etcd-v3.6.5-linux-amd64/"
tar -C "$etcd" -czf "$etcd/etcd-v3.6.5-linux-amd64.tar.gz" etcd-v3.6.5-linux-amd64
rm -r "$etcd/etcd-v3.6.5-linux-amd64"
(cd "$etcd" && sha256sum etcd-v3.6.5-linux-amd64.tar.gz >SHA256SUMS)
cp "$src/kwok" "$kwok/kwok-linux-amd64"
(cd "$kwok" && sha256sum kwok-linux-amd64 >checksums.txt)
echo "mirror: $(du -sh "$m" | cut -f1)"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$m" "$port" >/dev/null 2>&1 &
server=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done

export CKSLAB_HOME=$work/home CKSLAB_CACHE=$work/cache
unset CKSLAB_BIN_DIR
if [[ -n ${FULL:-} ]]; then
  git clone -q "$repo" "$work/clone"
  "$work/clone/scripts/publish-prebuilt.sh" "$m" "$ckslab" >/dev/null
  echo "mirror with the prebuilt ckslab: $(du -sh "$m" | cut -f1)"
  ui_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  start=$(date +%s.%N)
  # No Docker engine for this run (DOCKER_HOST unset): the local backend, as where Docker is absent.
  (cd "$work/clone" && env -u DOCKER_HOST CKSLAB_MIRROR="http://127.0.0.1:$port" \
    scripts/lab.sh --no-open --backend local --port "$ui_port") >"$work/lab.log" 2>&1 &
  serve_pid=$!
  ckslab="$work/clone/target/prebuilt/$(git -C "$work/clone" rev-parse HEAD)/ckslab"
  until curl -fs "http://127.0.0.1:$ui_port/" >/dev/null; do
    kill -0 "$serve_pid" 2>/dev/null || { cat "$work/lab.log"; exit 1; }
    sleep 0.2
  done
  ready=$(date +%s.%N)
  grep -h '^fetch-prebuilt:\|^lab:' "$work/lab.log" || true
  printf 'FIRSTRUN-FULL fresh clone, scripts/lab.sh to the first page %.1fs, no Rust build (load %s)\n' \
    "$(echo "$ready - $start" | bc)" "$(cut -d' ' -f1 /proc/loadavg)"
  exit 0
fi
start=$(date +%s.%N)
"$ckslab" fetch-binaries --mirror "http://127.0.0.1:$port"
fetched=$(date +%s.%N)
if [[ -n ${FETCH_ONLY:-} ]]; then
  printf 'FETCH %.1fs (load %s)\n' "$(echo "$fetched - $start" | bc)" "$(cut -d' ' -f1 /proc/loadavg)"
  exit 0
fi
ui_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$ckslab" serve --up --no-open --backend local --port "$ui_port" >"$work/serve.log" 2>&1 &
serve_pid=$!
until curl -fs "http://127.0.0.1:$ui_port/" >/dev/null; do
  kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.log"; exit 1; }
  sleep 0.2
done
ready=$(date +%s.%N)
printf 'FIRSTRUN fetch %.1fs, serve --up to the first page %.1fs, total %.1fs (load %s)\n' \
  "$(echo "$fetched - $start" | bc)" "$(echo "$ready - $fetched" | bc)" "$(echo "$ready - $start" | bc)" \
  "$(cut -d' ' -f1 /proc/loadavg)"
