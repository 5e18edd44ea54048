#!/usr/bin/env bash
# Sets up ckslab and opens the lab: builds it, brings up the lab cluster on the best backend
# this machine offers (kind where a Docker engine runs, else the local backend) and serves the
# web UI on http://127.0.0.1:7878. Extra arguments go to `ckslab serve` (e.g. --no-open).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
if ! docker info >/dev/null 2>&1; then
  scripts/setup.sh
  export CKSLAB_BIN_DIR=${CKSLAB_BIN_DIR:-$(scripts/build-k8s.sh 2>/dev/null | tail -n 1)}
elif [[ -z ${CKSLAB_KIND_NODE_IMAGE:-} ]] && docker image inspect ckslab/kind-node:v1.34.4 >/dev/null 2>&1; then
  # An offline machine that built ckslab's node image (scripts/build-kind-node.sh) uses it.
  export CKSLAB_KIND_NODE_IMAGE=ckslab/kind-node:v1.34.4
fi
cargo build --release --locked
exec target/release/ckslab serve --up "$@"
