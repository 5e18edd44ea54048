#!/usr/bin/env bash
# End-to-end proof of the offline kind path, with timings:
#   engine (scripts/docker-engine.sh) -> node image (build-kind-node.sh) -> stand-ins ->
#   kind create (2 nodes, no kindnetd) -> kind-pod-network.sh -> nodes Ready -> CoreDNS Ready ->
#   busybox pod on each node pings / wgets the other, DNS and a Service work ->
#   kube-apiserver manifest edit, time until /readyz answers from the new instance ->
#   kind delete; the engine is stopped again if this script started it.
#
#   scripts/kind-e2e.sh [CLUSTER_NAME]     # default ckslab-e2e
#   KEEP=1 scripts/kind-e2e.sh             # leave the cluster (and engine) up
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
name=${1:-ckslab-e2e}
cache=${CKSLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ckslab}
bin="$cache/bin/v1.34.4"
kind="$bin/kind"
kubeconfig=$(mktemp /tmp/ckslab-e2e-kubeconfig.XXXXXX)
k() { "$bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }
ts() { date +%s.%N; }
el() { awk -v a="$1" -v b="$(ts)" 'BEGIN {printf "%.1f", b - a}'; }

started_engine=""
if ! scripts_env=$("$repo/scripts/docker-engine.sh" env) || ! DOCKER_HOST=${scripts_env#DOCKER_HOST=} docker version >/dev/null 2>&1; then
  started_engine=1
fi
t=$(ts)
export "$("$repo/scripts/docker-engine.sh" start | tail -n1)"
echo "e2e: engine ready in $(el "$t")s"

cleanup() {
  local rc=$?
  if [[ -z ${KEEP:-} ]]; then
    "$kind" delete cluster --name "$name" >/dev/null 2>&1 || true
    [[ -z $started_engine ]] || "$repo/scripts/docker-engine.sh" stop || true
  fi
  rm -f "$kubeconfig"
  exit "$rc"
}
trap cleanup EXIT

t=$(ts)
build_out=$(mktemp)
"$repo/scripts/build-kind-node.sh" | tee "$build_out" >&2
image=$(tail -n1 "$build_out")
rm -f "$build_out"
echo "e2e: node image $image ready in $(el "$t")s"
t=$(ts)
"$repo/scripts/build-stand-in-images.sh" >/dev/null
echo "e2e: stand-ins ready in $(el "$t")s"

"$kind" delete cluster --name "$name" >/dev/null 2>&1 || true
t0=$(ts)
"$kind" create cluster --name "$name" --config "$repo/kind-configs/offline-two-node.yaml" \
  --image "$image" --kubeconfig "$kubeconfig" --retain
echo "e2e: kind create returned after $(el "$t0")s"
"$repo/scripts/kind-pod-network.sh" "$name"
k wait --for=condition=Ready node --all --timeout=120s >/dev/null
echo "e2e: kind create -> 2 nodes Ready: $(el "$t0")s"
k -n kube-system wait --for=condition=Ready pod -l k8s-app=kube-dns --timeout=180s >/dev/null
echo "e2e: kind create -> CoreDNS Ready: $(el "$t0")s"
k -n kube-system wait --for=condition=Ready pod --all --timeout=180s >/dev/null
echo "e2e: kind create -> all kube-system pods Ready: $(el "$t0")s"

t=$(ts)
"$repo/scripts/build-stand-in-images.sh" --kind-load "$name" >/dev/null
echo "e2e: stand-ins loaded into the nodes in $(el "$t")s"

mapfile -t nodes < <(k get nodes -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
i=0
for n in "${nodes[@]}"; do
  k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: bb$i, labels: {app: bb$i}}
spec:
  nodeName: $n
  containers:
  - {name: bb, image: busybox:1.36, command: [sleep, "3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: web$i, labels: {app: web$i}}
spec:
  nodeName: $n
  containers:
  - {name: web, image: nginx:1.27}
---
apiVersion: v1
kind: Service
metadata: {name: web$i}
spec:
  selector: {app: web$i}
  ports: [{port: 80}]
EOF
  i=$((i + 1))
done
k wait --for=condition=Ready pod bb0 bb1 web0 web1 --timeout=120s >/dev/null
k get pods -o wide
podip() { k get pod "$1" -o jsonpath='{.status.podIP}'; }
k exec bb0 -- ping -c 2 -W 2 "$(podip bb1)" | tail -2
k exec bb1 -- ping -c 2 -W 2 "$(podip bb0)" | tail -2
check() { # DESCRIPTION POD URL
  if k exec "$2" -- wget -q -T 5 -O - "$3" | grep -q 'Welcome to nginx'; then echo "e2e: $1: ok"; else echo "e2e: $1: FAILED" >&2; exit 1; fi
}
check "bb0 -> web1 (other node) by pod IP" bb0 "http://$(podip web1)/"
check "bb1 -> web0 (other node) by pod IP" bb1 "http://$(podip web0)/"
check "bb0 -> Service web0 (same node) by DNS name" bb0 http://web0/
check "bb0 -> Service web1 (other node) by FQDN" bb0 http://web1.default.svc.cluster.local/
check "bb1 -> Service web1 (same node) by DNS name" bb1 http://web1/
# NetworkPolicy (kube-router firewall): web1 admits only bb0.
t=$(ts)
"$repo/scripts/kind-netpol.sh" "$name" >/dev/null
k apply -f - >/dev/null <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web1-only-from-bb0}
spec:
  podSelector: {matchLabels: {app: web1}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: bb0}}}]
EOF
blocked=""
for _ in $(seq 1 20); do
  if ! k exec bb1 -- wget -q -T 3 -O /dev/null "http://$(podip web1)/" 2>/dev/null; then blocked=1; break; fi
  sleep 1
done
[[ -n $blocked ]] || { echo "e2e: NetworkPolicy: bb1 -> web1 still open" >&2; exit 1; }
echo "e2e: NetworkPolicy enforced $(el "$t")s after installing kube-router: bb1 -> web1 blocked"
check "NetworkPolicy: bb0 -> web1 (allowed, other node)" bb0 "http://$(podip web1)/"
check "NetworkPolicy: bb1 -> web0 (no policy)" bb1 "http://$(podip web0)/"
k delete networkpolicy web1-only-from-bb0 >/dev/null
k exec bb1 -- nslookup kubernetes.default.svc.cluster.local | grep -A1 'Name:' | tail -1

# kube-apiserver restart after a manifest edit (what a learner does): add a harmless flag.
cp_node="$name-control-plane"
old=$(docker exec "$cp_node" crictl ps --name kube-apiserver -q | head -1)
t=$(ts)
docker exec "$cp_node" sed -i 's|^    - --profiling=false|    - --profiling=false\n    - --event-ttl=1h1m0s|' /etc/kubernetes/manifests/kube-apiserver.yaml
seen_new="" last_ok="" first_fail="" started=""
for _ in $(seq 1 300); do
  cur=$(docker exec "$cp_node" crictl ps --name kube-apiserver --state running -q 2>/dev/null | head -1 || true)
  [[ -z $started && -n $cur && $cur != "$old" ]] && started=$(el "$t")
  if k get --raw /readyz >/dev/null 2>&1; then
    if [[ -n $started ]]; then seen_new=$(el "$t"); break; fi
    last_ok=$(el "$t")
  else
    [[ -n $first_fail ]] || first_fail=$(el "$t")
  fi
  sleep 0.5
done
echo "e2e: apiserver edit: /readyz ok until ${last_ok:-0}s, failing from ${first_fail:-?}s; new container running at ${started:-?}s; new instance answers /readyz at ${seen_new:-never (150s)}s"
docker exec "$cp_node" ps -eo args | grep -q 'event-ttl=1h1m0s' && echo "e2e: the new kube-apiserver runs with the edited flag"
[[ -n $seen_new ]]
echo "e2e: ok"
