#!/usr/bin/env bash
# Times `ckslab grade` against a shell script that checks the same things the way peers'
# verify scripts do (one kubectl process per check, grep on its output), on the same cluster.
# Needs a running lab cluster (`ckslab up`); uses the rbac-least-privilege and
# psa-restricted-namespace scenarios in their solved state.
#   bench/grade-vs-kubectl.sh [rounds]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
ckslab=${CKSLAB:-$repo/target/release/ckslab}
[[ -x $ckslab ]] || (cd "$repo" && cargo build --release --locked)
rounds=${1:-10}
kubeconfig=$("$ckslab" status --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["kubeconfig"])')
export KUBECONFIG=$kubeconfig
kubectl=${KUBECTL:-$(command -v kubectl || echo "${CKSLAB_BIN_DIR:-$HOME/.cache/ckslab/bin/v1.34.4}/kubectl")}

for id in rbac-least-privilege psa-restricted-namespace; do
  "$ckslab" start "$id" >/dev/null
  "$ckslab" solve "$id" >/dev/null
done

sa=system:serviceaccount:payments:report-reader
# The same 9 checks as ckslab's two scenarios, one kubectl call each (the peers' way).
peer_checks() {
  local ok=0
  [[ $("$kubectl" auth can-i list configmaps -n payments --as $sa) == yes ]] && ok=$((ok+1))
  [[ $("$kubectl" auth can-i watch configmaps -n payments --as $sa) == yes ]] && ok=$((ok+1))
  [[ $("$kubectl" auth can-i get secrets -n payments --as $sa 2>/dev/null) == no ]] && ok=$((ok+1))
  [[ $("$kubectl" auth can-i delete configmaps -n payments --as $sa 2>/dev/null) == no ]] && ok=$((ok+1))
  [[ $("$kubectl" auth can-i list configmaps -n kube-system --as $sa 2>/dev/null) == no ]] && ok=$((ok+1))
  [[ $("$kubectl" auth can-i list nodes --as $sa 2>/dev/null) == no ]] && ok=$((ok+1))
  # (kubectl exits non-zero on a denial, so its output is captured before grep sees it)
  grep -q 'violates PodSecurity "restricted' <<<"$("$kubectl" run p1 -n tenant-a --image=busybox --dry-run=server --privileged 2>&1)" && ok=$((ok+1))
  grep -q 'violates PodSecurity "restricted' <<<"$("$kubectl" run p2 -n tenant-a --image=busybox --dry-run=server 2>&1)" && ok=$((ok+1))
  "$kubectl" run p3 -n tenant-a --image=busybox --dry-run=server --overrides='{"spec":{"securityContext":{"runAsNonRoot":true,"runAsUser":1000,"seccompProfile":{"type":"RuntimeDefault"}},"containers":[{"name":"p3","image":"busybox","securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}}}]}}' >/dev/null 2>&1 && ok=$((ok+1))
  echo $ok
}

now_ms() { date +%s%3N; }
[[ $(peer_checks) == 9 ]] || { echo "bench: the kubectl script does not see the solved state" >&2; exit 1; }

start=$(now_ms)
for _ in $(seq "$rounds"); do
  "$ckslab" grade rbac-least-privilege --format json >/dev/null
  "$ckslab" grade psa-restricted-namespace --format json >/dev/null
done
ckslab_ms=$(( $(now_ms) - start ))

start=$(now_ms)
for _ in $(seq "$rounds"); do peer_checks >/dev/null; done
peer_ms=$(( $(now_ms) - start ))

for id in rbac-least-privilege psa-restricted-namespace; do "$ckslab" reset "$id" >/dev/null; done
echo "rounds: $rounds (9 checks each)"
echo "ckslab grade:      $((ckslab_ms / rounds)) ms per round"
echo "kubectl + grep:    $((peer_ms / rounds)) ms per round"
python3 -c "print(f'ratio: ckslab is {$peer_ms/$ckslab_ms:.1f}x faster')"
