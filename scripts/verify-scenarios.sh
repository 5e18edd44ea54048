#!/usr/bin/env bash
# Proves scenarios on a fresh cluster: broken state fails, each solution passes, each wrong
# attempt fails the checks it names.
#
#   scripts/verify-scenarios.sh              # local backend: every scenario, one after another
#                                            # (each moving on from the one before, solved), then
#                                            # each again in reverse order; JUnit in target/verify.xml
#   scripts/verify-scenarios.sh kind [IDS]   # kind backend (needs DOCKER_HOST and
#                                            # CKSLAB_KIND_NODE_IMAGE, as scripts/test.sh sets):
#                                            # the scenarios that need real nodes; target/verify-kind.xml
#   CKSLAB_VERIFY_SKIP="a b" scripts/verify-scenarios.sh kind   # the default list but these
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
ckslab=${CKSLAB:-target/debug/ckslab}
[[ -x $ckslab ]] || cargo build --locked
backend=${1:-local}
shift || true

case $backend in
  local)
    export CKSLAB_HOME=${CKSLAB_VERIFY_HOME:-$repo/target/verify-home}
    export CKSLAB_BACKEND=local
    "$ckslab" down >/dev/null 2>&1 || true
    trap '"$ckslab" down >/dev/null 2>&1 || true' EXIT
    "$ckslab" up
    start=$SECONDS
    # One pass proves each scenario and moving on: no undo between scenarios, then the reverse.
    "$ckslab" verify --all --chain --junit target/verify.xml
    echo "verify-scenarios: local, every scenario and the reverse chain, in $((SECONDS - start))s"
    ;;
  kind)
    export CKSLAB_HOME=${CKSLAB_VERIFY_HOME:-$repo/target/verify-kind-home}
    export CKSLAB_BACKEND=kind
    ids=("$@")
    if ((${#ids[@]} == 0)); then
      # What the local backend cannot prove (real containers, a kubelet, kube-router, the CSR
      # signer, a token file that is really absent, a syscall a Localhost seccomp profile denies,
      # a write a read-only root refuses, a node's systemd and dpkg, its packet filter, what processes do on a node), and the scenarios that edit
      # the API server's manifest for admission, audit and encryption (every edit and restore is
      # a ~20 s restart on kind). The others pass on kind too; name them to run them
      # (scripts/verify-scenarios.sh kind api-server-access api-server-tls).
      ids=(host-os-footprint external-network-access behavioral-analytics detect-threats seccomp-runtime-default seccomp-localhost-profile network-policy-lockdown
        mtls-certificates sa-token-automount immutability audit-policy image-policy-webhook etcd-encryption
        kubeadm-upgrade)
      # kubeadm-upgrade goes last: each of its cases is a fresh cluster at v1.33.13 (about a
      # minute), and the proof after it would start with one more, back at the default version.
      for skip in ${CKSLAB_VERIFY_SKIP:-}; do
        for i in "${!ids[@]}"; do [[ ${ids[$i]} != "$skip" ]] || unset 'ids[i]'; done
      done
      ids=("${ids[@]}")
    fi
    "$ckslab" down >/dev/null 2>&1 || true
    trap '"$ckslab" down >/dev/null 2>&1 || true' EXIT
    start=$SECONDS
    "$ckslab" up --backend kind
    echo "verify-scenarios: kind up in $((SECONDS - start))s"
    failed=()
    # Each proof's output is kept: a CI log that shows only its end still gets the failures'
    # details from target/verify-kind-ID.failure (one per proof that failed in its last run),
    # which scripts/test.sh prints last.
    for id in "${ids[@]}"; do
      start=$SECONDS
      rm -f "target/verify-kind-$id.failure"
      "$ckslab" verify "$id" --junit "target/verify-kind-$id.xml" 2>&1 | tee "target/verify-kind-$id.log" && ok=1 || ok=0
      if [[ $ok == 0 ]]; then
        { echo "== $id on kind: the end of its output (all of it in target/verify-kind-$id.log)"
          grep -v '^\(cleanup\|setup\|break\|solution\|wrong attempt\) [^:]*[0-9]/[0-9]' "target/verify-kind-$id.log" | tail -n 60; } >"target/verify-kind-$id.failure"
      fi
      echo "verify-scenarios: $id on kind: $([[ $ok == 1 ]] && echo proven || echo NOT proven) in $((SECONDS - start))s"
      [[ $ok == 1 ]] || failed+=("$id")
    done
    if ((${#failed[@]})); then
      echo "verify-scenarios: not proven on kind: ${failed[*]}" >&2
      exit 1
    fi
    ;;
  *) echo "usage: $0 [local | kind [IDS...]]" >&2; exit 2 ;;
esac
