#!/usr/bin/env bash
# Sets up ckslab and opens the lab: builds it, brings up the lab cluster on the best backend
# this machine offers (kind where a Docker engine runs, else the local backend) and serves the
# web UI on http://127.0.0.1:7878. Extra arguments go to `ckslab serve` (e.g. --no-open).
#
# The local backend's binaries are downloaded from the official releases and verified against
# their published checksums (`ckslab fetch-binaries`; CKSLAB_MIRROR=URL for a classroom
# mirror); what cannot be fetched and verified is built from the Go module proxy instead.
# With CKSLAB_MIRROR set, ckslab itself comes prebuilt from the mirror too, for this commit
# and verified by SHA-256 (scripts/fetch-prebuilt.sh); else, or if the mirror has none, it
# builds with Cargo's `lab` profile (opt-level 1, incremental; Cargo.toml): measured on 2
# cores, a full build 9.7 min and a rebuild after a one-line change 5.4 s, against 42 min and
# 14 min for release (README Speed). CKSLAB_PROFILE=release for the fully optimized build.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
profile=${CKSLAB_PROFILE:-lab}
docker=""
docker info >/dev/null 2>&1 && docker=1
[[ -n $docker ]] || scripts/setup.sh --no-k8s
# Where a mirror serves the prebuilt ckslab of this very commit (scripts/publish-prebuilt.sh),
# download and verify it instead of building: a first run then needs no Rust toolchain.
exe=""
commit=$(git rev-parse HEAD 2>/dev/null || true)
if [[ -n ${CKSLAB_MIRROR:-} && -n $commit ]]; then
  prebuilt="target/prebuilt/$commit/ckslab"
  if [[ -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]]; then
    echo "lab: the checkout has changes, so the prebuilt ckslab of $commit is not its build; building" >&2
  elif [[ -x $prebuilt ]] || scripts/fetch-prebuilt.sh "$CKSLAB_MIRROR" "$commit" "$prebuilt"; then
    exe=$prebuilt
  else
    echo "lab: no verified prebuilt ckslab of $commit at $CKSLAB_MIRROR; building it" >&2
  fi
fi
if [[ -z $exe ]]; then
  cargo build --profile "$profile" --locked
  exe="target/$profile/ckslab"
fi
if [[ -z $docker ]]; then
  if [[ -z ${CKSLAB_BIN_DIR:-} ]]; then
    "$exe" fetch-binaries ||
      echo "lab: not every binary could be fetched and verified; building the rest from the Go module proxy" >&2
    CKSLAB_BIN_DIR=$(scripts/build-k8s.sh 2>/dev/null | tail -n 1)
    export CKSLAB_BIN_DIR
  fi
else
  # ckslab takes the node image, kube-router and the stand-ins from their archives in the cache
  # (built here, or installed from a classroom bundle) and loads what the engine lacks.
  if [[ -z ${CKSLAB_KIND_NODE_IMAGE:-} ]] && docker image inspect ckslab/kind-node:v1.34.4 >/dev/null 2>&1; then
    # An offline machine that built ckslab's node image (scripts/build-kind-node.sh) uses it.
    export CKSLAB_KIND_NODE_IMAGE=ckslab/kind-node:v1.34.4
  fi
fi
exec "$exe" serve --up "$@"
