#!/usr/bin/env bash
# Pod networking for a kind cluster created with `networking.disableDefaultCNI: true` (no
# kindnetd: it is not on the Go module proxy and its image cannot be pulled offline).
#
#   scripts/kind-pod-network.sh CLUSTER_NAME     # run after `kind create cluster`, from the host
#
# Per node, everything is done with `docker exec` from the host, because a node's kubelet
# credentials can read only its own Node object:
#   1. wait until the Node has .spec.podCIDR (kube-controller-manager allocates one per node
#      from kubeadm's podSubnet, kind's default 10.244.0.0/16):
#        docker exec CP kubectl --kubeconfig=/etc/kubernetes/admin.conf get node N -o jsonpath='{.spec.podCIDR}'
#   2. sysctls: net.ipv4.ip_forward=1, net.bridge.bridge-nf-call-iptables=1 (kube-proxy must
#      see same-node pod-to-service replies crossing the bridge; `modprobe br_netfilter` first)
#   3. /etc/cni/net.d/10-ckslab.conflist: bridge cni0 (isGateway, hairpin) with host-local IPAM
#      on the node's podCIDR, then portmap; containerd picks it up, the node turns Ready.
#      ipMasq is off so pod-to-pod traffic keeps its source IP (NetworkPolicy needs it);
#      instead: iptables -t nat -A POSTROUTING -s PODCIDR ! -d POD_SUBNET -j MASQUERADE
#   4. for every other node M: ip route replace PODCIDR_M via NODE_IP_M (the kind network)
# Idempotent: running it again rewrites the same files, rules and routes. Run it again after a
# node is added or a node container restarts (routes live in the node's network namespace).
set -euo pipefail

cluster=${1:?usage: $0 CLUSTER_NAME}

mapfile -t nodes < <(docker ps --filter "label=io.x-k8s.kind.cluster=$cluster" --format '{{.Names}}' | sort)
((${#nodes[@]})) || { echo "kind-pod-network: no nodes for kind cluster $cluster" >&2; exit 1; }
cp=""
for n in "${nodes[@]}"; do
  if [[ $(docker inspect -f '{{index .Config.Labels "io.x-k8s.kind.role"}}' "$n") == control-plane ]]; then cp=$n; break; fi
done
[[ -n $cp ]] || { echo "kind-pod-network: no control-plane node in $cluster" >&2; exit 1; }
kc() { docker exec "$cp" kubectl --kubeconfig=/etc/kubernetes/admin.conf "$@"; }

pod_subnet=$(kc -n kube-system get cm kubeadm-config -o jsonpath='{.data.ClusterConfiguration}' | awk '/podSubnet:/ {print $2}')
pod_subnet=${pod_subnet:-10.244.0.0/16}

declare -A cidr ip
for n in "${nodes[@]}"; do
  c=""
  for _ in $(seq 1 120); do
    c=$(kc get node "$n" -o jsonpath='{.spec.podCIDR}' 2>/dev/null || true)
    [[ -n $c ]] && break
    sleep 0.5
  done
  [[ -n $c ]] || { echo "kind-pod-network: node $n has no podCIDR after 60s" >&2; exit 1; }
  cidr[$n]=$c
  ip[$n]=$(docker inspect -f '{{with index .NetworkSettings.Networks "kind"}}{{.IPAddress}}{{end}}' "$n")
  [[ -n ${ip[$n]} ]] || ip[$n]=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$n" | awk '{print $1}')
done

for n in "${nodes[@]}"; do
  conf=$(printf '{
  "cniVersion": "0.4.0",
  "name": "ckslab",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "%s"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}' "${cidr[$n]}")
  routes=""
  for m in "${nodes[@]}"; do
    [[ $m == "$n" ]] && continue
    routes+="ip route replace ${cidr[$m]} via ${ip[$m]}; "
  done
  docker exec -i "$n" sh -c "
    set -e
    modprobe br_netfilter 2>/dev/null || true
    sysctl -qw net.ipv4.ip_forward=1
    sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || echo 'kind-pod-network: $n: no net.bridge.bridge-nf-call-iptables (br_netfilter missing); same-node service traffic may fail' >&2
    iptables -t nat -C POSTROUTING -s ${cidr[$n]} ! -d $pod_subnet -j MASQUERADE 2>/dev/null ||
      iptables -t nat -A POSTROUTING -s ${cidr[$n]} ! -d $pod_subnet -j MASQUERADE
    $routes
    mkdir -p /etc/cni/net.d
    cat > /etc/cni/net.d/.10-ckslab.conflist.tmp
    mv /etc/cni/net.d/.10-ckslab.conflist.tmp /etc/cni/net.d/10-ckslab.conflist
  " <<<"$conf"
  echo "kind-pod-network: $n ${ip[$n]} pods ${cidr[$n]}"
done
