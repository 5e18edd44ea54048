#!/usr/bin/env bash
# End-to-end proof of the offline kind path, with timings, through ckslab's own kind backend:
#   engine (scripts/docker-engine.sh) -> node image (build-kind-node.sh) -> kube-router image
#   (kind-netpol.sh) -> stand-ins -> `ckslab --backend kind up` (2 nodes, ckslab's bridge pod
#   network, kube-router, images loaded) -> busybox pod on each node pings / wgets the other,
#   DNS and a Service work, a NetworkPolicy is enforced -> kube-apiserver manifest edit, time
#   until /readyz answers from the new instance -> `ckslab down`; the engine is stopped again
#   if this script started it.
#
#   scripts/kind-e2e.sh                    # uses target/release/ckslab (or CKSLAB=path)
#   KEEP=1 scripts/kind-e2e.sh             # leave the cluster (and engine) up
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${CKSLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ckslab}
bin="$cache/bin/v1.34.4"
ckslab=${CKSLAB:-$repo/target/release/ckslab}
[[ -x $ckslab ]] || { echo "e2e: $ckslab missing: cargo build --release (or set CKSLAB)" >&2; exit 1; }
# A home of its own, so the run never touches a learner's lab (and `down` deletes only this).
export CKSLAB_HOME=${CKSLAB_HOME:-$(mktemp -d /tmp/ckslab-e2e-home.XXXXXX)}
kubeconfig=""
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
if docker ps -a --format '{{.Names}}' | grep -qx ckslab-control-plane; then
  echo "e2e: a kind cluster named ckslab exists already (a learner's lab?); not touching it" >&2
  exit 1
fi

cleanup() {
  local rc=$?
  if [[ -z ${KEEP:-} ]]; then
    "$ckslab" --backend kind down >/dev/null 2>&1 || true
    [[ -z $started_engine ]] || "$repo/scripts/docker-engine.sh" stop || true
  fi
  exit "$rc"
}
trap cleanup EXIT

t=$(ts)
CKSLAB_KIND_NODE_IMAGE=$("$repo/scripts/build-kind-node.sh" | tail -n1)
export CKSLAB_KIND_NODE_IMAGE
echo "e2e: node image $CKSLAB_KIND_NODE_IMAGE ready in $(el "$t")s"
t=$(ts)
"$repo/scripts/kind-netpol.sh" >/dev/null
CKSLAB_KIND_LOAD_IMAGES=$("$repo/scripts/build-stand-in-images.sh" | tr '\n' ' ')
export CKSLAB_KIND_LOAD_IMAGES
echo "e2e: kube-router and stand-ins ready in $(el "$t")s"
export PATH="$bin:$PATH" # kind v0.33

t0=$(ts)
up_out=$("$ckslab" --backend kind up | tee /dev/stderr)
kubeconfig=$(sed -n 's/^export KUBECONFIG=//p' <<<"$up_out" | tail -n1)
[[ -n $kubeconfig ]] || { echo "e2e: ckslab up printed no KUBECONFIG" >&2; exit 1; }
echo "e2e: ckslab up -> 2 nodes and kube-system Ready, images loaded: $(el "$t0")s"
k -n kube-system wait --for=condition=Ready pod --all --timeout=180s >/dev/null

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
# NetworkPolicy (kube-router's firewall, installed by ckslab up): web1 admits only bb0.
t=$(ts)
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
echo "e2e: NetworkPolicy enforced $(el "$t")s after it was applied: bb1 -> web1 blocked"
check "NetworkPolicy: bb0 -> web1 (allowed, other node)" bb0 "http://$(podip web1)/"
check "NetworkPolicy: bb1 -> web0 (no policy)" bb1 "http://$(podip web0)/"
k delete networkpolicy web1-only-from-bb0 >/dev/null
k exec bb1 -- nslookup kubernetes.default.svc.cluster.local | grep -A1 'Name:' | tail -1

# kube-apiserver restart after a manifest edit (what a learner does): add a harmless flag.
cp_node=ckslab-control-plane
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
