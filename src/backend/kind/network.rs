//! Pod networking for node images that ship no default CNI (ckslab's offline image): a bridge
//! with host-local addresses from each node's `.spec.podCIDR`, and a route on every node to
//! every other node's pod range through that node's address. kindnetd does the same plus
//! NetworkPolicy; this does not enforce NetworkPolicy, so the cluster does not claim it.

use serde_json::{Value, json};

/// Where the kubelet's CRI (containerd) reads CNI configs on a kind node.
pub const CONFLIST_PATH: &str = "/etc/cni/net.d/10-ckslab-bridge.conflist";

/// The CNI config of one node. No masquerade: pod addresses stay visible between nodes, as
/// NetworkPolicy and audit records expect; the lab has no outside network to reach.
pub fn conflist(pod_cidr: &str) -> String {
    let config = json!({
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
                    "ranges": [[{"subnet": pod_cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}]
                }
            },
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    });
    serde_json::to_string_pretty(&config).expect("JSON serializes")
}

/// One node's place in the pod network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeNet {
    pub name: String,
    pub address: String,
    pub pod_cidr: String,
}

/// kind's default pod range (its kubeadm config's podSubnet), which each node's range is in.
pub const POD_SUBNET: &str = "10.244.0.0/16";

/// What a node needs before pods on the bridge can reach Services and other nodes: forwarding,
/// bridged traffic through iptables (kube-proxy's and kube-router's rules), and masquerade for
/// pod traffic leaving the pod range (to node addresses), never between pods.
pub fn prepare_script(node: &NodeNet) -> String {
    let cidr = &node.pod_cidr;
    format!(
        "set -e\nmodprobe br_netfilter 2>/dev/null || true\nsysctl -qw net.ipv4.ip_forward=1\n\
         sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || echo 'no net.bridge.bridge-nf-call-iptables: same-node Service traffic may fail' >&2\n\
         iptables -t nat -C POSTROUTING -s {cidr} ! -d {POD_SUBNET} -j MASQUERADE 2>/dev/null || \
         iptables -t nat -A POSTROUTING -s {cidr} ! -d {POD_SUBNET} -j MASQUERADE\n"
    )
}

/// The `ip route replace` commands to run on `node`: one per other node.
pub fn routes_for(node: &NodeNet, all: &[NodeNet]) -> Vec<Vec<String>> {
    all.iter()
        .filter(|other| other.name != node.name)
        .map(|other| {
            ["ip", "route", "replace", &other.pod_cidr, "via", &other.address].map(String::from).into_iter().collect()
        })
        .collect()
}

/// The cluster config for `image`: every node on that image, no default CNI when ckslab
/// brings its own, and etcd's image tag pinned when given (a cluster at an older version
/// runs the etcd its node image carries).
pub fn cluster_config(
    base: &str,
    image: Option<&str>,
    own_cni: bool,
    etcd_image_tag: Option<&str>,
) -> Result<String, String> {
    let mut config: Value = serde_saphyr::from_str(base).map_err(|e| format!("the kind config does not parse: {e}"))?;
    if let Some(image) = image {
        for node in config["nodes"].as_array_mut().into_iter().flatten() {
            node["image"] = json!(image);
        }
    }
    if own_cni {
        config["networking"]["disableDefaultCNI"] = json!(true);
    }
    if let Some(tag) = etcd_image_tag {
        let patch = format!("kind: ClusterConfiguration\netcd:\n  local:\n    imageTag: {tag}\n");
        let control_plane = config["nodes"]
            .as_array_mut()
            .and_then(|nodes| nodes.iter_mut().find(|n| n["role"] == "control-plane"))
            .ok_or("the kind config has no control-plane node")?;
        match control_plane["kubeadmConfigPatches"].as_array_mut() {
            Some(patches) => patches.push(json!(patch)),
            None => control_plane["kubeadmConfigPatches"] = json!([patch]),
        }
    }
    serde_saphyr::to_string(&config).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_node_routes_to_every_other_pod_range() {
        let nodes = vec![
            NodeNet { name: "cp".into(), address: "172.18.0.2".into(), pod_cidr: "10.244.0.0/24".into() },
            NodeNet { name: "w".into(), address: "172.18.0.3".into(), pod_cidr: "10.244.1.0/24".into() },
        ];
        assert_eq!(
            routes_for(&nodes[0], &nodes),
            vec![["ip", "route", "replace", "10.244.1.0/24", "via", "172.18.0.3"]]
        );
        assert_eq!(
            routes_for(&nodes[1], &nodes),
            vec![["ip", "route", "replace", "10.244.0.0/24", "via", "172.18.0.2"]]
        );
        let conf: Value = serde_json::from_str(&conflist("10.244.1.0/24")).unwrap();
        let prepare = prepare_script(&nodes[1]);
        assert!(prepare.contains("-s 10.244.1.0/24 ! -d 10.244.0.0/16 -j MASQUERADE"), "{prepare}");
        assert!(prepare.contains("net.ipv4.ip_forward=1"), "{prepare}");
        assert_eq!(conf["plugins"][0]["ipam"]["ranges"][0][0]["subnet"], "10.244.1.0/24");
    }

    #[test]
    fn the_config_takes_the_image_and_drops_the_default_cni() {
        let out = cluster_config(super::super::CLUSTER_CONFIG, Some("ckslab/kind-node:v1.34.4"), true, None).unwrap();
        let config: Value = serde_saphyr::from_str(&out).unwrap();
        assert_eq!(config["networking"]["disableDefaultCNI"], true);
        for node in config["nodes"].as_array().unwrap() {
            assert_eq!(node["image"], "ckslab/kind-node:v1.34.4");
        }
        assert!(config["nodes"][0]["kubeadmConfigPatches"].is_array(), "the rest of the config is kept");
        let upstream: Value =
            serde_saphyr::from_str(&cluster_config(super::super::CLUSTER_CONFIG, None, false, None).unwrap()).unwrap();
        assert!(upstream["networking"].is_null());
        assert!(upstream["nodes"][0]["image"].as_str().unwrap().starts_with("kindest/node:"));
        assert!(upstream["nodes"][0]["extraMounts"].is_null());
    }

    #[test]
    fn an_etcd_tag_is_one_more_patch_of_the_control_plane_only() {
        let out =
            cluster_config(super::super::CLUSTER_CONFIG, Some("ckslab/kind-node:v1.33.13"), true, Some("3.6.5-0"))
                .unwrap();
        let config: Value = serde_saphyr::from_str(&out).unwrap();
        let nodes = config["nodes"].as_array().unwrap();
        let patches = nodes[0]["kubeadmConfigPatches"].as_array().unwrap();
        assert_eq!(patches.len(), 2, "the lab's own patch is kept: {out}");
        let etcd: Value = serde_saphyr::from_str(patches[1].as_str().unwrap()).unwrap();
        assert_eq!(etcd["kind"], "ClusterConfiguration");
        assert_eq!(etcd["etcd"]["local"]["imageTag"], "3.6.5-0");
        assert_eq!(nodes[1]["role"], "worker");
        assert!(nodes[1]["kubeadmConfigPatches"].is_null(), "{out}");
    }
}
