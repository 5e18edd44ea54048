#!/usr/bin/env bash
# Builds the tools scenarios put on a node's PATH (kubesec, syft) from the Go module proxy into
# a cache outside the repo, and reuses what is already there.
#
#   scripts/build-tools.sh          # build what is missing, print the tools dir on the last line
#   CKSLAB_CACHE=/path scripts/build-tools.sh
#
# A scenario step `install-tool: {tool: kubesec}` copies the cached binary to the node's
# /usr/local/bin; ckslab finds it in this folder (or in $CKSLAB_NODE_TOOLS_DIR). The wrapper
# modules live in tools/node-tools/: see their go.mod files for why they exist. The versions
# here and in src/tools.rs (NODE_TOOLS) must agree: the folder name carries them.
set -euo pipefail

KUBESEC_VERSION=v2.14.2
SYFT_VERSION=v1.57.1

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${CKSLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ckslab}
tools="$cache/node-tools"
mkdir -p "$tools"

[[ $# -eq 0 ]] || { echo "usage: $0" >&2; exit 2; }

if ! command -v go >/dev/null 2>&1; then
  echo "build-tools: 'go' is not installed; install Go 1.26 or newer (https://go.dev/dl) and run again" >&2
  exit 2
fi

export CGO_ENABLED=0 GOFLAGS=-trimpath

step=0
total=2
build() { # name version module-dir package ldflags
  local name=$1 version=$2 dir=$3 pkg=$4 ldflags=$5
  local out="$tools/$name-$version/$name"
  step=$((step + 1))
  if [[ -x $out ]]; then
    echo "[$step/$total] $name: cached"
    return
  fi
  echo "[$step/$total] $name: building $pkg $version (minutes on a cold cache)..."
  local start=$SECONDS
  mkdir -p "$(dirname "$out")"
  (cd "$repo/tools/node-tools/$dir" && go build -ldflags "$ldflags" -o "$out.tmp" "$pkg")
  mv "$out.tmp" "$out"
  echo "[$step/$total] $name: built in $((SECONDS - start))s"
}

build kubesec "$KUBESEC_VERSION" kubesec ckslab.local/node-tools/kubesec \
  "-s -w -X github.com/controlplaneio/kubesec/v2/cmd.version=$KUBESEC_VERSION"
# syft's version stays "[not provided]": with a version set, every run first asks the internet
# for a newer release with no timeout, and a lab node has no network (the version shows as
# GitDescription in `syft version`).
build syft "$SYFT_VERSION" syft github.com/anchore/syft/cmd/syft \
  "-s -w -X main.gitDescription=$SYFT_VERSION"

echo "$tools"
