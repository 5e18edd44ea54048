#!/usr/bin/env bash
# Puts a ckslab binary into a mirror's layout for scripts/fetch-prebuilt.sh (and so for
# scripts/lab.sh): DIR/ckslab/<commit>/ckslab-linux-<arch> and its .sha256. Serve DIR over
# HTTP (`python3 -m http.server --directory DIR`) and point CKSLAB_MIRROR at it; the same
# mirror serves the Kubernetes binaries `ckslab fetch-binaries` downloads.
#
#   scripts/publish-prebuilt.sh DIR [BINARY]   # BINARY: default a release build of HEAD
#
# The binary is filed under HEAD's commit, so the checkout must have no uncommitted changes
# to tracked files (a binary of other sources would be filed under the wrong name).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
if (($# < 1 || $# > 2)); then
  echo "usage: $0 DIR [BINARY]" >&2
  exit 2
fi
dir=$1
if [[ -n $(git status --porcelain --untracked-files=no) ]]; then
  echo "publish-prebuilt: the checkout has uncommitted changes; commit them first" >&2
  exit 1
fi
commit=$(git rev-parse HEAD)
bin=${2:-}
if [[ -z $bin ]]; then
  cargo build --release --locked
  bin=target/release/ckslab
fi
dest="$dir/ckslab/$commit"
mkdir -p "$dest"
name="ckslab-linux-$(uname -m)"
cp "$bin" "$dest/$name.part"
mv -f "$dest/$name.part" "$dest/$name"
(cd "$dest" && sha256sum "$name" >"$name.sha256")
echo "publish-prebuilt: $dest/$name ($(du -h "$dest/$name" | cut -f1)), $(cut -d' ' -f1 "$dest/$name.sha256")"
