#!/usr/bin/env bash
# Installs what ckslab needs on a fresh Debian/Ubuntu machine and builds the local backend's
# binaries into ~/.cache/ckslab (reused on later runs). Safe to run again.
#   scripts/setup.sh            # bubblewrap, vim, bash-completion + Kubernetes binaries + node
#                               # tools (kubesec, syft)
#   scripts/setup.sh --e2e      # also Chromium and the browser test's npm packages
#   scripts/setup.sh --no-k8s   # leave the Kubernetes binaries out (scripts/lab.sh fetches them)
#   scripts/setup.sh --packages-only  # only the Debian and npm packages (scripts/test.sh builds
#                               # the Go binaries beside the Rust build)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
e2e="" k8s=1 tools=1
for arg in "$@"; do
  case $arg in
    --e2e) e2e=1 ;;
    --no-k8s) k8s="" ;;
    --packages-only) k8s="" tools="" ;;
    *) echo "usage: $0 [--e2e] [--no-k8s | --packages-only]" >&2; exit 2 ;;
  esac
done

need_apt=()
command -v bwrap >/dev/null 2>&1 || need_apt+=(bubblewrap)
# scripts/fetch-prebuilt.sh (lab.sh with a mirror) and its tests download with curl.
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
# The web UI's terminal pane: vim and kubectl's bash completion, as on the exam desktop.
command -v vim >/dev/null 2>&1 || need_apt+=(vim)
[[ -r /usr/share/bash-completion/bash_completion ]] || need_apt+=(bash-completion)
if [[ -n $e2e ]]; then
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
fi
if ((${#need_apt[@]})); then
  echo "setup: installing ${need_apt[*]} (apt-get)"
  if [[ $(id -u) -eq 0 ]]; then sudo=(); else sudo=(sudo); fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

command -v cargo >/dev/null 2>&1 || { echo "setup: Rust is missing: install it from https://rustup.rs" >&2; exit 2; }
[[ -z $k8s ]] || "$repo/scripts/build-k8s.sh" >&2
# kubesec and syft, which scenarios put on a node's PATH (~/.cache/ckslab/node-tools).
[[ -z $tools ]] || "$repo/scripts/build-tools.sh" >&2

if [[ -n $e2e && -f "$repo/tests/e2e/package.json" ]]; then
  (cd "$repo/tests/e2e" && npm ci --no-audit --no-fund --loglevel=error)
fi
