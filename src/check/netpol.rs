//! The network-access probe: would the NetworkPolicies let one connection through? Decided from
//! the policies and the namespaces' labels with the semantics the API documents, so a check
//! grades the same on a backend whose network enforces policies (kind) and on one that has
//! none (local), and every policy set with the same effect passes.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, ListParams};

use super::{Finding, api_error, client_or_finding};
use crate::backend::Backend;
use crate::scenario::{NetworkAccessProbe, NetworkEndpoint};

pub type Labels = BTreeMap<String, String>;

/// One end of a connection: a pod (its namespace, its labels, its namespace's labels) or an
/// address outside the cluster.
#[derive(Debug, Clone)]
pub enum End {
    Pod { namespace: String, labels: Labels, namespace_labels: Labels },
    Ip(IpAddr),
}

#[derive(Debug, Clone)]
pub struct Connection {
    pub from: End,
    pub to: End,
    pub port: u16,
    pub protocol: String,
    /// The destination container's name for `port`, for policies that name ports.
    pub port_name: Option<String>,
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
    let End::Pod { namespace, labels, namespace_labels } = end else { return false };
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
        Some(IntOrString::String(name)) => c.port_name.as_deref() == Some(name.as_str()),
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

pub async fn network_access(probe: &NetworkAccessProbe, backend: &dyn Backend) -> Finding {
    let client = match client_or_finding(backend).await {
        Ok(c) => c,
        Err(f) => return f,
    };
    let namespaces = match Api::<Namespace>::all(client.clone()).list(&ListParams::default()).await {
        Ok(list) => list.items,
        Err(err) => return api_error(err, backend, "listing namespaces").await,
    };
    let namespace_labels = |name: &str| -> Labels {
        let mut labels: Labels = namespaces
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(name))
            .and_then(|n| n.metadata.labels.clone())
            .unwrap_or_default();
        // The API server sets this on every namespace; a namespace not created yet has it too.
        labels.insert("kubernetes.io/metadata.name".into(), name.to_string());
        labels
    };
    let resolve = |end: &NetworkEndpoint| -> Result<End, String> {
        match (&end.namespace, &end.ip) {
            (Some(namespace), None) => Ok(End::Pod {
                namespace: namespace.clone(),
                labels: end.labels.clone(),
                namespace_labels: namespace_labels(namespace),
            }),
            (None, Some(ip)) => ip.parse().map(End::Ip).map_err(|e| format!("{ip}: {e}")),
            _ => Err("an endpoint is a pod (namespace and labels) or an ip, not both or neither".into()),
        }
    };
    let (from, to) = match (resolve(&probe.from), resolve(&probe.to)) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(e), _) | (_, Err(e)) => return Finding::error(e, "a valid connection"),
    };
    let mut policies = Vec::new();
    let mut seen = Vec::new();
    for end in [&from, &to] {
        let End::Pod { namespace, .. } = end else { continue };
        if seen.contains(namespace) {
            continue;
        }
        seen.push(namespace.clone());
        match Api::<NetworkPolicy>::namespaced(client.clone(), namespace).list(&ListParams::default()).await {
            Ok(list) => policies.extend(list.items),
            Err(err) => return api_error(err, backend, &format!("listing NetworkPolicies in {namespace}")).await,
        }
    }
    let port = match probe.port.get::<u16>() {
        Ok(port) => port,
        Err(e) => return Finding::error(format!("port: {e}"), "a port number"),
    };
    let connection = Connection {
        from,
        to,
        port,
        protocol: probe.protocol.to_ascii_uppercase(),
        port_name: probe.port_name.clone(),
    };
    let decision = decide(&policies, &connection);
    let expected = format!(
        "{} -> {} on {}/{} to be {}",
        describe(&connection.from),
        describe(&connection.to),
        connection.protocol,
        connection.port,
        if probe.allowed { "allowed" } else { "denied" }
    );
    Finding::passed_if(decision.allowed == probe.allowed, decision.why, expected)
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
        }
    }

    fn conn(from: End, to: End, port: u16) -> Connection {
        Connection { from, to, port, protocol: "TCP".into(), port_name: None }
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
        let mut named = conn(client.clone(), target.clone(), 9090);
        named.port_name = Some("metrics".into());
        assert!(decide(&policies, &named).allowed);
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
