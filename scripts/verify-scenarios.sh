#!/usr/bin/env bash
# Proves every scenario on a fresh local cluster: broken state fails, each solution passes,
# each wrong attempt fails the checks it names; then the moving-on chain. Writes JUnit XML to
# target/verify.xml and target/verify-chain.xml.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
ckslab=target/debug/ckslab
[[ -x $ckslab ]] || cargo build --locked
export CKSLAB_HOME=${CKSLAB_VERIFY_HOME:-$repo/target/verify-home}
export CKSLAB_BACKEND=local
"$ckslab" down >/dev/null 2>&1 || true
trap '"$ckslab" down >/dev/null 2>&1 || true' EXIT
"$ckslab" up
"$ckslab" verify --all --junit target/verify.xml
# Moving on: every scenario after every other (solved, then each wrong attempt) on one cluster.
"$ckslab" verify --all --chain --junit target/verify-chain.xml
