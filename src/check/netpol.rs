//! The network-access probe: would the NetworkPolicies let one connection through? Decided from
//! the policies and the namespaces' labels with the semantics the API documents, so a check
//! grades the same on a backend whose network enforces policies (kind) and on one that has
//! none (local), and every policy set with the same effect passes.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Pod, PodTemplateSpec};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, ListParams};

use super::{Finding, api_error, client_or_finding};
use crate::backend::Backend;
use crate::scenario::{Flow, NetworkAccessProbe, NetworkEndpoint, TemplatedNumber};

pub type Labels = BTreeMap<String, String>;

/// One end of a connection: a pod (its namespace, its labels, its namespace's labels) or an
/// address outside the cluster.
#[derive(Debug, Clone, PartialEq)]
pub enum End {
    Pod {
        namespace: String,
        labels: Labels,
        namespace_labels: Labels,
        /// The pod's declared container ports, against which a policy's named ports resolve.
        ports: Vec<ContainerPort>,
    },
    Ip(IpAddr),
}

/// A declared container port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ContainerPort {
    pub name: Option<String>,
    pub port: u16,
    pub protocol: String,
}

#[derive(Debug, Clone)]
pub struct Connection {
    pub from: End,
    pub to: End,
    pub port: u16,
    pub protocol: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    pub why: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "Ingress",
            Direction::Egress => "Egress",
        }
    }
}

/// One rule of a policy: its peers (from or to) and its ports; missing lists match everything.
type Rule<'a> = (Option<&'a Vec<NetworkPolicyPeer>>, Option<&'a Vec<NetworkPolicyPort>>);

/// What the policies of one side say about the connection.
enum Side {
    /// No policy selects the pod for this direction: everything is allowed.
    Unrestricted,
    AllowedBy(String),
    /// Selected by these policies, and no rule of theirs admits the connection.
    DeniedBy(Vec<String>),
}

/// Decides a connection: egress must be allowed at the source pod and ingress at the
/// destination pod. `policies` must hold every NetworkPolicy of the namespaces involved.
pub fn decide(policies: &[NetworkPolicy], c: &Connection) -> Decision {
    let egress = match &c.from {
        End::Pod { namespace, labels, .. } => side(policies, namespace, labels, Direction::Egress, c),
        End::Ip(_) => Side::Unrestricted,
    };
    let ingress = match &c.to {
        End::Pod { namespace, labels, .. } => side(policies, namespace, labels, Direction::Ingress, c),
        End::Ip(_) => Side::Unrestricted,
    };
    let what = format!("{} -> {} on {}/{}", describe(&c.from), describe(&c.to), c.protocol, c.port);
    let say = |direction: &str, at: &End, side: &Side| match side {
        Side::Unrestricted => format!("{direction} at {} is not restricted", describe(at)),
        Side::AllowedBy(name) => format!("{direction} at {} is allowed by policy {name}", describe(at)),
        Side::DeniedBy(names) => format!(
            "{direction} at {} is selected by {} and no rule of {} admits it",
            describe(at),
            names.join(", "),
            if names.len() == 1 { "it" } else { "them" }
        ),
    };
    let denied = |s: &Side| matches!(s, Side::DeniedBy(_));
    let mut reasons = Vec::new();
    if matches!(c.from, End::Pod { .. }) {
        reasons.push(say("egress", &c.from, &egress));
    }
    if matches!(c.to, End::Pod { .. }) {
        reasons.push(say("ingress", &c.to, &ingress));
    }
    let allowed = !denied(&egress) && !denied(&ingress);
    let verdict = if allowed { "allowed" } else { "denied" };
    Decision { allowed, why: format!("{what}: {verdict} ({})", reasons.join("; ")) }
}

fn side(policies: &[NetworkPolicy], namespace: &str, labels: &Labels, direction: Direction, c: &Connection) -> Side {
    let selecting: Vec<&NetworkPolicy> = policies
        .iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(namespace))
        .filter(|p| affects(p, direction))
        .filter(|p| selector_matches(p.spec.as_ref().and_then(|s| s.pod_selector.as_ref()), labels))
        .collect();
    if selecting.is_empty() {
        return Side::Unrestricted;
    }
    let peer = match direction {
        Direction::Ingress => &c.from,
        Direction::Egress => &c.to,
    };
    for policy in &selecting {
        let Some(spec) = &policy.spec else { continue };
        let rules: Vec<Rule> = match direction {
            Direction::Ingress => spec.ingress.iter().flatten().map(|r| (r.from.as_ref(), r.ports.as_ref())).collect(),
            Direction::Egress => spec.egress.iter().flatten().map(|r| (r.to.as_ref(), r.ports.as_ref())).collect(),
        };
        for (peers, ports) in rules {
            // An empty or missing list matches everything.
            let peer_ok =
                peers.is_none_or(|list| list.is_empty() || list.iter().any(|p| peer_matches(p, namespace, peer)));
            let port_ok = ports.is_none_or(|list| list.is_empty() || list.iter().any(|p| port_matches(p, c)));
            if peer_ok && port_ok {
                return Side::AllowedBy(name(policy));
            }
        }
    }
    Side::DeniedBy(selecting.iter().map(|p| name(p)).collect())
}

fn name(policy: &NetworkPolicy) -> String {
    policy.metadata.name.clone().unwrap_or_default()
}

/// policyTypes, or its default: every policy affects ingress, and egress when it has egress rules.
fn affects(policy: &NetworkPolicy, direction: Direction) -> bool {
    let Some(spec) = &policy.spec else { return direction == Direction::Ingress };
    match &spec.policy_types {
        Some(types) => types.iter().any(|t| t == direction.as_str()),
        None => direction == Direction::Ingress || spec.egress.is_some(),
    }
}

fn peer_matches(peer: &NetworkPolicyPeer, policy_namespace: &str, end: &End) -> bool {
    if let Some(block) = &peer.ip_block {
        return match end {
            End::Ip(ip) => {
                cidr_contains(&block.cidr, *ip)
                    && !block.except.iter().flatten().any(|except| cidr_contains(except, *ip))
            }
            // Pod addresses are not known here; a catch-all block includes them, as CNIs do.
            End::Pod { .. } => block.cidr == "0.0.0.0/0" || block.cidr == "::/0",
        };
    }
    let End::Pod { namespace, labels, namespace_labels, .. } = end else { return false };
    if peer.pod_selector.is_none() && peer.namespace_selector.is_none() {
        return false;
    }
    let namespace_ok = match &peer.namespace_selector {
        Some(selector) => selector_matches(Some(selector), namespace_labels),
        None => namespace == policy_namespace,
    };
    namespace_ok && selector_matches(peer.pod_selector.as_ref(), labels)
}

fn port_matches(port: &NetworkPolicyPort, c: &Connection) -> bool {
    if !port.protocol.as_deref().unwrap_or("TCP").eq_ignore_ascii_case(&c.protocol) {
        return false;
    }
    match &port.port {
        None => true,
        Some(IntOrString::Int(first)) => match port.end_port {
            Some(last) => (*first..=last).contains(&(c.port as i32)),
            None => *first == c.port as i32,
        },
        // A named port is the destination pod's container port of that name and protocol; a
        // destination without one (or an address) is not matched by it.
        Some(IntOrString::String(name)) => match &c.to {
            End::Pod { ports, .. } => ports
                .iter()
                .any(|p| p.name.as_deref() == Some(name.as_str()) && p.port == c.port && p.protocol == c.protocol),
            End::Ip(_) => false,
        },
    }
}

/// A missing or empty selector matches everything.
pub fn selector_matches(selector: Option<&LabelSelector>, labels: &Labels) -> bool {
    let Some(selector) = selector else { return true };
    let labels_ok = selector.match_labels.iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
    let expressions_ok = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            _ => false,
        }
    });
    labels_ok && expressions_ok
}

fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    let Some((network, bits)) = cidr.split_once('/') else { return false };
    let (Ok(network), Ok(bits)) = (network.parse::<IpAddr>(), bits.parse::<u32>()) else { return false };
    match (network, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) if bits <= 32 => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) if bits <= 128 => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

fn describe(end: &End) -> String {
    match end {
        End::Ip(ip) => ip.to_string(),
        End::Pod { namespace, labels, .. } if labels.is_empty() => format!("{namespace}/(any pod)"),
        End::Pod { namespace, labels, .. } => {
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{namespace}/{{{}}}", labels.join(","))
        }
    }
}

/// The container ports of a pod object.
fn declared_ports(pod: &Pod) -> Vec<ContainerPort> {
    let mut ports: Vec<ContainerPort> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()))
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            Some(ContainerPort {
                name: p.name.clone(),
                port: u16::try_from(p.container_port).ok()?,
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()).to_ascii_uppercase(),
            })
        })
        .collect();
    ports.sort();
    ports.dedup();
    ports
}

/// What a probe needs from the API: namespace labels, the policies and pods of namespaces.
struct Cluster {
    namespaces: Vec<Namespace>,
    policies: Vec<NetworkPolicy>,
    pods: BTreeMap<String, Vec<Pod>>,
}

impl Cluster {
    async fn load(client: &kube::Client, backend: &dyn Backend, namespaces: &[String]) -> Result<Cluster, Finding> {
        let all = match Api::<Namespace>::all(client.clone()).list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(err) => return Err(api_error(err, backend, "listing namespaces").await),
        };
        let mut cluster = Cluster { namespaces: all, policies: Vec::new(), pods: BTreeMap::new() };
        for namespace in namespaces {
            if cluster.pods.contains_key(namespace) {
                continue;
            }
            match Api::<NetworkPolicy>::namespaced(client.clone(), namespace).list(&ListParams::default()).await {
                Ok(list) => cluster.policies.extend(list.items),
                Err(err) => {
                    return Err(api_error(err, backend, &format!("listing NetworkPolicies in {namespace}")).await);
                }
            }
            let mut pods: Vec<Pod> =
                match Api::<Pod>::namespaced(client.clone(), namespace).list(&ListParams::default()).await {
                    Ok(list) => list.items.into_iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect(),
                    Err(err) => return Err(api_error(err, backend, &format!("listing pods in {namespace}")).await),
                };
            pods.extend(workload_pods(client, backend, namespace).await?);
            cluster.pods.insert(namespace.clone(), pods);
        }
        Ok(cluster)
    }

    fn namespace_labels(&self, name: &str) -> Labels {
        let mut labels: Labels = self
            .namespaces
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(name))
            .and_then(|n| n.metadata.labels.clone())
            .unwrap_or_default();
        // The API server sets this on every namespace; a namespace not created yet has it too.
        labels.insert("kubernetes.io/metadata.name".into(), name.to_string());
        labels
    }

    /// A pod with these labels in this namespace, with the ports the namespace's pods that have
    /// these labels declare (a pod the probe imagines has the ports its peers have).
    fn pod(&self, namespace: &str, labels: &Labels) -> End {
        // (a pod with no labels is a new one: it declares nothing)
        let mut ports: Vec<ContainerPort> = self
            .pods
            .get(namespace)
            .into_iter()
            .flatten()
            .filter(|p| {
                let own = p.metadata.labels.clone().unwrap_or_default();
                !labels.is_empty() && labels.iter().all(|(k, v)| own.get(k) == Some(v))
            })
            .flat_map(declared_ports)
            .collect();
        ports.sort();
        ports.dedup();
        End::Pod {
            namespace: namespace.to_string(),
            labels: labels.clone(),
            namespace_labels: self.namespace_labels(namespace),
            ports,
        }
    }

    fn resolve(&self, end: &NetworkEndpoint) -> Result<End, String> {
        match (&end.namespace, &end.ip) {
            (Some(namespace), None) => Ok(self.pod(namespace, &end.labels)),
            (None, Some(ip)) => ip.parse().map(End::Ip).map_err(|e| format!("{ip}: {e}")),
            _ => Err("an endpoint is a pod (namespace and labels) or an ip, not both or neither".into()),
        }
    }
}

/// The pods the namespace's workloads run, from their templates: the pods a controller has not
/// made yet (a rollout under way, a node slow to start them) declare the same named ports and
/// carry the same labels, so a grade never depends on how far a rollout has got.
async fn workload_pods(client: &kube::Client, backend: &dyn Backend, namespace: &str) -> Result<Vec<Pod>, Finding> {
    async fn templates<K>(
        client: &kube::Client,
        backend: &dyn Backend,
        namespace: &str,
        what: &str,
        template: fn(K) -> Option<PodTemplateSpec>,
    ) -> Result<Vec<Pod>, Finding>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        match Api::<K>::namespaced(client.clone(), namespace).list(&ListParams::default()).await {
            Ok(list) => Ok(list.items.into_iter().filter_map(template).map(template_pod).collect()),
            Err(err) => Err(api_error(err, backend, &format!("listing {what} in {namespace}")).await),
        }
    }
    let mut pods =
        templates::<Deployment>(client, backend, namespace, "Deployments", |d| d.spec.map(|s| s.template)).await?;
    pods.extend(
        templates::<StatefulSet>(client, backend, namespace, "StatefulSets", |d| d.spec.map(|s| s.template)).await?,
    );
    pods.extend(
        templates::<DaemonSet>(client, backend, namespace, "DaemonSets", |d| d.spec.map(|s| s.template)).await?,
    );
    // (a Deployment's ReplicaSets are its template, and its old revisions run nothing)
    pods.extend(
        templates::<ReplicaSet>(client, backend, namespace, "ReplicaSets", |r| {
            if r.metadata.owner_references.as_ref().is_some_and(|o| !o.is_empty()) {
                return None;
            }
            r.spec.and_then(|s| s.template)
        })
        .await?,
    );
    Ok(pods)
}

/// Labels a controller adds to the pods it makes; no policy or flow means them.
const CONTROLLER_LABELS: [&str; 3] = ["pod-template-hash", "controller-revision-hash", "pod-template-generation"];

fn without_controller_labels(mut labels: Labels) -> Labels {
    for label in CONTROLLER_LABELS {
        labels.remove(label);
    }
    labels
}

/// A pod as a template describes it (labels and containers; nothing the controller adds).
fn template_pod(template: PodTemplateSpec) -> Pod {
    let labels = without_controller_labels(template.metadata.and_then(|m| m.labels).unwrap_or_default());
    Pod {
        metadata: kube::api::ObjectMeta { labels: Some(labels), ..Default::default() },
        spec: template.spec,
        status: None,
    }
}

/// A probe's port: a number, or a name the destination's container ports resolve.
fn port_number(port: &TemplatedNumber, protocol: &str, to: &End) -> Result<u16, String> {
    let Some(name) = port.name() else { return port.get::<u16>().map_err(|e| format!("port: {e}")) };
    let End::Pod { ports, .. } = to else {
        return Err(format!("port {name:?} is a name, and an address has no named ports"));
    };
    ports
        .iter()
        .find(|p| p.name.as_deref() == Some(name) && p.protocol == protocol)
        .map(|p| p.port)
        .ok_or_else(|| format!("no pod {} declares a {protocol} container port named {name:?}", describe(to)))
}

pub async fn network_access(probe: &NetworkAccessProbe, backend: &dyn Backend) -> Finding {
    let client = match client_or_finding(backend).await {
        Ok(c) => c,
        Err(f) => return f,
    };
    if let (Some(namespace), Some(flows)) = (&probe.namespace, &probe.only) {
        return only_these_flows(namespace, flows, &client, backend).await;
    }
    let (Some(from), Some(to), Some(port), Some(allowed)) = (&probe.from, &probe.to, &probe.port, probe.allowed) else {
        return Finding::error("the probe needs from, to, port and allowed (or namespace and only)", "a valid probe");
    };
    let namespaces: Vec<String> = [from, to].iter().filter_map(|e| e.namespace.clone()).collect();
    let cluster = match Cluster::load(&client, backend, &namespaces).await {
        Ok(c) => c,
        Err(f) => return f,
    };
    let (from, to) = match (cluster.resolve(from), cluster.resolve(to)) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(e), _) | (_, Err(e)) => return Finding::error(e, "a valid connection"),
    };
    let protocol = probe.protocol.to_ascii_uppercase();
    let port = match port_number(port, &protocol, &to) {
        Ok(port) => port,
        Err(e) => return Finding::error(e, "a port number, or a port name the destination declares"),
    };
    let connection = Connection { from, to, port, protocol };
    let decision = decide(&cluster.policies, &connection);
    let expected = format!(
        "{} -> {} on {}/{} to be {}",
        describe(&connection.from),
        describe(&connection.to),
        connection.protocol,
        connection.port,
        if allowed { "allowed" } else { "denied" }
    );
    Finding::passed_if(decision.allowed == allowed, decision.why, expected)
}

/// Addresses outside the cluster every flow check tries: the internet, a DNS resolver, the
/// cloud metadata service, a private address.
const SAMPLE_ADDRESSES: [&str; 4] = ["1.1.1.1", "8.8.8.8", "169.254.169.254", "10.255.255.1"];

/// Does a flow endpoint pattern cover a concrete end?
fn covers(pattern: &NetworkEndpoint, end: &End) -> bool {
    match (end, &pattern.ip) {
        (End::Ip(ip), Some(want)) => want.parse::<IpAddr>().is_ok_and(|w| w == *ip),
        (End::Pod { namespace, labels, .. }, None) => {
            pattern.namespace.as_deref() == Some(namespace.as_str())
                && pattern.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
        }
        _ => false,
    }
}

/// Every flow that touches `namespace`, between its pods (those running and a new one), sample
/// pods of the namespaces the flows name (with and without the flows' labels), the same labels
/// in a namespace no flow names, and sample addresses; on each destination pod's declared ports,
/// the flows' ports, DNS and one port nothing declares. Allowed must be exactly the flows listed.
pub fn judge_flows(
    namespace: &str,
    flows: &[Flow],
    policies: &[NetworkPolicy],
    endpoints: &[End],
) -> Result<Finding, String> {
    let in_namespace = |e: &End| matches!(e, End::Pod { namespace: n, .. } if n == namespace);
    let mut mismatches = Vec::new();
    let mut tried = 0usize;
    for from in endpoints {
        for to in endpoints {
            if from == to || !(in_namespace(from) || in_namespace(to)) {
                continue;
            }
            if matches!((from, to), (End::Ip(_), End::Ip(_))) {
                continue;
            }
            // The ports to try: declared, named by the flows, DNS, and one nobody declares.
            let mut ports: Vec<(u16, String)> = vec![(53, "UDP".into()), (53, "TCP".into()), (443, "TCP".into())];
            if let End::Pod { ports: declared, .. } = to {
                ports.extend(declared.iter().map(|p| (p.port, p.protocol.clone())));
            }
            for flow in flows {
                let protocol = flow.protocol.to_ascii_uppercase();
                if covers(&flow.to, to)
                    && let Ok(port) = port_number(&flow.port, &protocol, to)
                {
                    ports.push((port, protocol));
                }
            }
            let undeclared = (40000..).find(|n| !ports.iter().any(|(p, _)| p == n)).unwrap_or(40000);
            ports.push((undeclared, "TCP".into()));
            ports.sort();
            ports.dedup();
            for (port, protocol) in ports {
                let connection = Connection { from: from.clone(), to: to.clone(), port, protocol: protocol.clone() };
                let matching: Vec<&Flow> = flows
                    .iter()
                    .filter(|f| {
                        f.protocol.eq_ignore_ascii_case(&protocol)
                            && covers(&f.from, from)
                            && covers(&f.to, to)
                            && port_number(&f.port, &protocol, to).is_ok_and(|p| p == port)
                    })
                    .collect();
                let decision = decide(policies, &connection);
                tried += 1;
                let required = matching.iter().any(|f| !f.optional);
                let permitted = !matching.is_empty();
                if decision.allowed && !permitted {
                    mismatches.push(format!("allowed but not asked for: {}", decision.why));
                } else if !decision.allowed && required {
                    mismatches.push(format!("asked for but denied: {}", decision.why));
                }
            }
        }
    }
    // Every required flow must have been tried on some pair (a flow naming nothing is a typo).
    for flow in flows.iter().filter(|f| !f.optional) {
        let tried_it = endpoints.iter().any(|a| covers(&flow.from, a))
            && endpoints.iter().any(|b| {
                covers(&flow.to, b) && port_number(&flow.port, &flow.protocol.to_ascii_uppercase(), b).is_ok()
            });
        if !tried_it {
            return Err(format!("a flow to port {:?} matches no endpoint or port the probe knows", flow.port));
        }
    }
    let expected = format!("exactly the {} flow(s) the task allows touching {namespace}", flows.len());
    if mismatches.is_empty() {
        Ok(Finding::pass(format!("{tried} connections tried, each allowed exactly when the task allows it"), expected))
    } else {
        let shown: Vec<String> = mismatches.iter().take(4).cloned().collect();
        let more = if mismatches.len() > 4 { format!("; and {} more", mismatches.len() - 4) } else { String::new() };
        Ok(Finding::fail(format!("{}{more}", shown.join("; ")), expected))
    }
}

async fn only_these_flows(namespace: &str, flows: &[Flow], client: &kube::Client, backend: &dyn Backend) -> Finding {
    let mut named: Vec<String> = vec![namespace.to_string()];
    for flow in flows {
        for end in [&flow.from, &flow.to] {
            if let Some(ns) = &end.namespace
                && !named.contains(ns)
            {
                named.push(ns.clone());
            }
        }
    }
    let cluster = match Cluster::load(client, backend, &named).await {
        Ok(c) => c,
        Err(f) => return f,
    };
    let mut endpoints: Vec<End> = Vec::new();
    let mut add = |end: End| {
        if !endpoints.contains(&end) {
            endpoints.push(end);
        }
    };
    // The namespace's pods as they run (minus the labels only their controllers care about).
    for pod in cluster.pods.get(namespace).into_iter().flatten() {
        let labels = without_controller_labels(pod.metadata.labels.clone().unwrap_or_default());
        add(cluster.pod(namespace, &labels));
    }
    // A new pod of each namespace involved, and the pods the flows name; and the same labels
    // in a namespace no flow names.
    for ns in &named {
        add(cluster.pod(ns, &Labels::new()));
    }
    let elsewhere = (0..).map(|i| format!("ckslab-elsewhere-{i}")).find(|n| !named.contains(n)).unwrap_or_default();
    for flow in flows {
        for end in [&flow.from, &flow.to] {
            match (&end.namespace, &end.ip) {
                (Some(ns), None) => {
                    add(cluster.pod(ns, &end.labels));
                    add(cluster.pod(&elsewhere, &end.labels));
                }
                (None, Some(ip)) => match ip.parse() {
                    Ok(ip) => add(End::Ip(ip)),
                    Err(e) => return Finding::error(format!("{ip}: {e}"), "a valid flow"),
                },
                _ => return Finding::error("a flow endpoint is a pod (namespace and labels) or an ip", "a valid flow"),
            }
        }
    }
    for ip in SAMPLE_ADDRESSES {
        add(End::Ip(ip.parse().expect("a valid address")));
    }
    match judge_flows(namespace, flows, &cluster.policies, &endpoints) {
        Ok(finding) => finding,
        Err(e) => Finding::error(e, "flows that name pods and ports the probe can try"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(yaml: &str) -> NetworkPolicy {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn pod(namespace: &str, labels: &[(&str, &str)], namespace_labels: &[(&str, &str)]) -> End {
        let mut ns: Labels = namespace_labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ns.insert("kubernetes.io/metadata.name".into(), namespace.into());
        End::Pod {
            namespace: namespace.into(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            namespace_labels: ns,
            ports: vec![],
        }
    }

    fn conn(from: End, to: End, port: u16) -> Connection {
        Connection { from, to, port, protocol: "TCP".into() }
    }

    const DENY_ALL: &str = "
metadata: {name: default-deny, namespace: payments}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}";

    const DB_FROM_API: &str = "
metadata: {name: db-from-api, namespace: payments}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: api}}}]
    ports: [{port: 5432}]";

    const API_TO_DB: &str = "
metadata: {name: api-to-db, namespace: payments}
spec:
  podSelector: {matchLabels: {app: api}}
  policyTypes: [Egress]
  egress:
  - to: [{podSelector: {matchLabels: {app: db}}}]
    ports: [{protocol: TCP, port: 5432}]";

    #[test]
    fn a_workload_template_declares_its_named_ports_before_its_pods_exist() {
        let template: PodTemplateSpec = serde_saphyr::from_str(
            "
metadata: {labels: {app: api, pod-template-hash: 5d8f}}
spec:
  containers: [{name: api, image: nginx, ports: [{name: http, containerPort: 8080}]}]",
        )
        .unwrap();
        let cluster = Cluster {
            namespaces: Vec::new(),
            policies: Vec::new(),
            pods: BTreeMap::from([("payments".to_string(), vec![template_pod(template)])]),
        };
        let api = cluster.pod("payments", &Labels::from([("app".to_string(), "api".to_string())]));
        let End::Pod { ports, .. } = &api else { panic!("{api:?}") };
        assert_eq!(ports, &[ContainerPort { name: Some("http".into()), port: 8080, protocol: "TCP".into() }]);
        assert_eq!(port_number(&serde_saphyr::from_str("http").unwrap(), "TCP", &api), Ok(8080));
        // (the hash label is the controller's, not the workload's)
        let hashed = Labels::from([("pod-template-hash".to_string(), "5d8f".to_string())]);
        let End::Pod { ports, .. } = cluster.pod("payments", &hashed) else { unreachable!() };
        assert!(ports.is_empty());
    }

    #[test]
    fn no_policy_allows_everything() {
        let d = decide(&[], &conn(pod("a", &[], &[]), pod("b", &[], &[]), 80));
        assert!(d.allowed, "{}", d.why);
        assert!(d.why.contains("ingress at b/(any pod) is not restricted"), "{}", d.why);
    }

    #[test]
    fn default_deny_with_exceptions_in_both_directions() {
        let policies = [policy(DENY_ALL), policy(DB_FROM_API), policy(API_TO_DB)];
        let api = pod("payments", &[("app", "api")], &[]);
        let db = pod("payments", &[("app", "db")], &[]);
        let web = pod("payments", &[("app", "web")], &[]);
        assert!(decide(&policies, &conn(api.clone(), db.clone(), 5432)).allowed);
        let wrong_port = decide(&policies, &conn(api.clone(), db.clone(), 22));
        assert!(!wrong_port.allowed);
        assert!(
            wrong_port.why.contains("egress at payments/{app=api} is selected by default-deny, api-to-db"),
            "{}",
            wrong_port.why
        );
        assert!(!decide(&policies, &conn(web.clone(), db.clone(), 5432)).allowed);
        // Without the egress exception the ingress one alone does not help.
        let only_ingress = [policy(DENY_ALL), policy(DB_FROM_API)];
        let d = decide(&only_ingress, &conn(api, db, 5432));
        assert!(!d.allowed);
        assert!(d.why.contains("ingress at payments/{app=db} is allowed by policy db-from-api"), "{}", d.why);
    }

    #[test]
    fn namespace_and_pod_selectors_combine_in_one_peer_and_alternate_in_two() {
        let and = policy(
            "
metadata: {name: and, namespace: payments}
spec:
  podSelector: {}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: shop}}, podSelector: {matchLabels: {app: web}}}]",
        );
        let or = policy(
            "
metadata: {name: or, namespace: payments}
spec:
  podSelector: {}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: shop}}}, {podSelector: {matchLabels: {app: web}}}]",
        );
        let target = pod("payments", &[("app", "db")], &[]);
        let shop_web = pod("shop", &[("app", "web")], &[("team", "shop")]);
        let shop_cart = pod("shop", &[("app", "cart")], &[("team", "shop")]);
        let local_web = pod("payments", &[("app", "web")], &[]);
        assert!(decide(std::slice::from_ref(&and), &conn(shop_web.clone(), target.clone(), 80)).allowed);
        assert!(!decide(std::slice::from_ref(&and), &conn(shop_cart.clone(), target.clone(), 80)).allowed);
        assert!(!decide(std::slice::from_ref(&and), &conn(local_web.clone(), target.clone(), 80)).allowed);
        assert!(decide(std::slice::from_ref(&or), &conn(shop_cart, target.clone(), 80)).allowed);
        assert!(decide(std::slice::from_ref(&or), &conn(local_web, target, 80)).allowed);
    }

    #[test]
    fn expressions_port_ranges_protocols_and_named_ports() {
        let p = policy(
            "
metadata: {name: p, namespace: n}
spec:
  podSelector: {matchExpressions: [{key: tier, operator: In, values: [backend]}]}
  ingress:
  - from: [{podSelector: {matchExpressions: [{key: app, operator: NotIn, values: [untrusted]}]}}]
    ports: [{port: 8000, endPort: 8100}, {protocol: UDP, port: 53}, {port: metrics}]",
        );
        let target = pod("n", &[("tier", "backend")], &[]);
        let client = pod("n", &[("app", "web")], &[]);
        let policies = [p];
        assert!(decide(&policies, &conn(client.clone(), target.clone(), 8050)).allowed);
        assert!(!decide(&policies, &conn(client.clone(), target.clone(), 8101)).allowed);
        assert!(!decide(&policies, &conn(client.clone(), target.clone(), 53)).allowed, "53 is UDP only");
        let mut udp = conn(client.clone(), target.clone(), 53);
        udp.protocol = "UDP".into();
        assert!(decide(&policies, &udp).allowed);
        let with_metrics = match target.clone() {
            End::Pod { namespace, labels, namespace_labels, .. } => End::Pod {
                namespace,
                labels,
                namespace_labels,
                ports: vec![ContainerPort { name: Some("metrics".into()), port: 9090, protocol: "TCP".into() }],
            },
            other => other,
        };
        assert!(decide(&policies, &conn(client.clone(), with_metrics.clone(), 9090)).allowed);
        // The name resolves on the destination only: another port number, or a pod without it, is not matched.
        assert!(!decide(&policies, &conn(client.clone(), with_metrics, 9091)).allowed);
        assert!(!decide(&policies, &conn(client.clone(), target.clone(), 9090)).allowed);
        assert!(!decide(&policies, &conn(pod("n", &[("app", "untrusted")], &[]), target.clone(), 8050)).allowed);
        // A pod the policy does not select is unaffected.
        assert!(decide(&policies, &conn(client, pod("n", &[("tier", "frontend")], &[]), 1)).allowed);
    }

    #[test]
    fn ip_blocks_with_exceptions_decide_external_egress() {
        let p = policy(
            "
metadata: {name: egress, namespace: n}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 0.0.0.0/0, except: [169.254.169.254/32]}}]",
        );
        let from = pod("n", &[("app", "x")], &[]);
        let policies = [p];
        let metadata = decide(&policies, &conn(from.clone(), End::Ip("169.254.169.254".parse().unwrap()), 80));
        assert!(!metadata.allowed, "{}", metadata.why);
        assert!(decide(&policies, &conn(from.clone(), End::Ip("8.8.8.8".parse().unwrap()), 443)).allowed);
        // A catch-all block includes pods too.
        assert!(decide(&policies, &conn(from, pod("m", &[], &[]), 80)).allowed);
    }

    #[test]
    fn policy_types_default_from_the_rules() {
        // No policyTypes and no egress section: affects ingress only, so egress stays open.
        let p = policy("metadata: {name: ingress-only, namespace: n}\nspec: {podSelector: {}}");
        let from = pod("n", &[], &[]);
        assert!(
            decide(std::slice::from_ref(&p), &conn(from.clone(), End::Ip("10.0.0.1".parse().unwrap()), 80)).allowed
        );
        assert!(!decide(std::slice::from_ref(&p), &conn(from.clone(), pod("n", &[], &[]), 80)).allowed);
    }
}
