//! Probes of who may reach the API server at all: a request with no credentials, the bindings
//! that give anonymous users rights, and what a node's kubelet identity may change.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::Value;

use super::{Finding, api_down_message, api_error, client_or_finding, resolve_nodes};
use crate::backend::{Backend, config_from_kubeconfig};
use crate::scenario::{AnonymousGrantsProbe, AnonymousRequestProbe, NodeRef, NodeWriteProbe};

/// What a status code of an unauthenticated request says about the API server's set-up.
fn anonymous_meaning(code: u16) -> &'static str {
    match code {
        401 => "anonymous requests are not authenticated (anonymous auth is off)",
        403 => "the request was authenticated as system:anonymous and only lacked permission (anonymous auth is on)",
        200..=299 => "anonymous users may read it",
        _ => "an unexpected answer",
    }
}

pub async fn anonymous_request(probe: &AnonymousRequestProbe, backend: &dyn Backend) -> Finding {
    let expected = format!(
        "GET {} without credentials answered {} ({})",
        probe.path,
        probe.status,
        anonymous_meaning(probe.status)
    );
    let mut config = match config_from_kubeconfig(&backend.kubeconfig_path(), backend.name()).await {
        Ok(config) => config,
        Err(e) => return Finding::error(format!("no kubeconfig: {e}"), expected),
    };
    // Keep the server and the CA that verifies it; drop every credential (client certificate,
    // token, exec plugin) so the API server sees a request from nobody.
    config.auth_info = Default::default();
    let client = match kube::Client::try_from(config) {
        Ok(client) => client,
        Err(e) => return Finding::error(format!("building a client without credentials: {e}"), expected),
    };
    let request = match http::Request::get(probe.path.as_str()).body(kube::client::Body::empty()) {
        Ok(r) => r,
        Err(e) => return Finding::error(format!("path {:?} is not a request path: {e}", probe.path), expected),
    };
    let response = match client.send(request).await {
        Ok(response) => response,
        Err(e) => {
            return Finding::error(api_down_message(backend, &format!("GET {}: {e}", probe.path)).await, expected);
        }
    };
    let code = response.status().as_u16();
    let observed = format!("GET {} without credentials answered {code}: {}", probe.path, anonymous_meaning(code));
    Finding::passed_if(code == probe.status, observed, expected)
}

/// ClusterRoles' rules by name.
pub type ClusterRoleRules = BTreeMap<String, Vec<PolicyRule>>;
/// Roles' rules by (namespace, name).
pub type RoleRules = BTreeMap<(String, String), Vec<PolicyRule>>;

/// A binding, reduced to what grading needs.
#[derive(Debug, Clone)]
pub struct Binding {
    /// "ClusterRoleBinding x" or "RoleBinding ns/x".
    pub shown: String,
    pub namespace: Option<String>,
    pub role_ref: RoleRef,
    pub subjects: Vec<Subject>,
}

/// The anonymous subject a binding names, if any: the user every unauthenticated request
/// becomes, or the group it is put in.
fn anonymous_subject(subjects: &[Subject]) -> Option<String> {
    subjects.iter().find_map(|s| match (s.kind.as_str(), s.name.as_str()) {
        ("User", "system:anonymous") => Some("user system:anonymous".to_string()),
        ("Group", "system:unauthenticated") => Some("group system:unauthenticated".to_string()),
        _ => None,
    })
}

/// What a list of rules grants beyond GETs of the public URLs, in words; empty when nothing.
fn granted(rules: &[PolicyRule], public_urls: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for rule in rules {
        if rule.verbs.is_empty() {
            continue;
        }
        let verbs = rule.verbs.join(",");
        if let Some(resources) = rule.resources.as_ref().filter(|r| !r.is_empty()) {
            out.push(format!("{verbs} {}", resources.join(",")));
        }
        let urls: Vec<&String> = rule
            .non_resource_urls
            .iter()
            .flatten()
            .filter(|url| !(public_urls.contains(url) && rule.verbs.iter().all(|v| v == "get")))
            .collect();
        if !urls.is_empty() {
            out.push(format!("{verbs} {}", urls.iter().map(|u| u.as_str()).collect::<Vec<_>>().join(",")));
        }
    }
    out
}

/// Every binding that gives an anonymous subject more than the public URLs, in words.
pub fn anonymous_grants_of(
    bindings: &[Binding],
    cluster_roles: &ClusterRoleRules,
    roles: &RoleRules,
    public_urls: &[String],
) -> Vec<String> {
    let mut found = Vec::new();
    for binding in bindings {
        let Some(subject) = anonymous_subject(&binding.subjects) else { continue };
        let role = &binding.role_ref;
        // A binding to a role that does not exist grants nothing (yet): RBAC resolves it on
        // each request, so it is reported only once the role is there.
        let rules = match (role.kind.as_str(), &binding.namespace) {
            ("ClusterRole", _) => cluster_roles.get(&role.name),
            ("Role", Some(ns)) => roles.get(&(ns.clone(), role.name.clone())),
            _ => None,
        };
        let what = granted(rules.map(Vec::as_slice).unwrap_or_default(), public_urls);
        if !what.is_empty() {
            found.push(format!(
                "{} gives {subject} the {} {} ({})",
                binding.shown,
                role.kind,
                role.name,
                what.join("; ")
            ));
        }
    }
    found
}

pub async fn anonymous_grants(probe: &AnonymousGrantsProbe, backend: &dyn Backend) -> Finding {
    let expected = format!(
        "no RoleBinding or ClusterRoleBinding gives system:anonymous or system:unauthenticated anything beyond GET {}",
        probe.public_urls.join(" ")
    );
    let client = match client_or_finding(backend).await {
        Ok(c) => c,
        Err(f) => return f,
    };
    let params = ListParams::default();
    let crbs = match Api::<ClusterRoleBinding>::all(client.clone()).list(&params).await {
        Ok(list) => list.items,
        Err(e) => return api_error(e, backend, "listing ClusterRoleBindings").await,
    };
    let rbs = match Api::<RoleBinding>::all(client.clone()).list(&params).await {
        Ok(list) => list.items,
        Err(e) => return api_error(e, backend, "listing RoleBindings").await,
    };
    let cluster_roles: ClusterRoleRules = match Api::<ClusterRole>::all(client.clone()).list(&params).await {
        Ok(list) => {
            list.items.into_iter().map(|r| (r.metadata.name.unwrap_or_default(), r.rules.unwrap_or_default())).collect()
        }
        Err(e) => return api_error(e, backend, "listing ClusterRoles").await,
    };
    let roles: RoleRules = match Api::<Role>::all(client).list(&params).await {
        Ok(list) => list
            .items
            .into_iter()
            .map(|r| {
                (
                    (r.metadata.namespace.unwrap_or_default(), r.metadata.name.unwrap_or_default()),
                    r.rules.unwrap_or_default(),
                )
            })
            .collect(),
        Err(e) => return api_error(e, backend, "listing Roles").await,
    };
    let mut bindings: Vec<Binding> = crbs
        .into_iter()
        .map(|b| Binding {
            shown: format!("ClusterRoleBinding {}", b.metadata.name.unwrap_or_default()),
            namespace: None,
            role_ref: b.role_ref,
            subjects: b.subjects.unwrap_or_default(),
        })
        .collect();
    bindings.extend(rbs.into_iter().map(|b| {
        let namespace = b.metadata.namespace.unwrap_or_default();
        Binding {
            shown: format!("RoleBinding {namespace}/{}", b.metadata.name.unwrap_or_default()),
            namespace: Some(namespace),
            role_ref: b.role_ref,
            subjects: b.subjects.unwrap_or_default(),
        }
    }));
    let found = anonymous_grants_of(&bindings, &cluster_roles, &roles, &probe.public_urls);
    if found.is_empty() {
        Finding::pass("no binding gives anonymous users anything beyond the public endpoints", expected)
    } else {
        Finding::fail(found.join("; "), expected)
    }
}

fn one_node(node: &NodeRef, backend: &dyn Backend) -> Option<String> {
    resolve_nodes(node, backend).into_iter().next()
}

pub async fn node_write(probe: &NodeWriteProbe, backend: &dyn Backend) -> Finding {
    let (Some(actor), Some(target)) = (one_node(&probe.as_node, backend), one_node(&probe.target, backend)) else {
        return Finding::error("the backend has no such node", "a node for as-node and for target");
    };
    let whose = if actor == target { "its own Node".to_string() } else { format!("Node {target}") };
    let user = format!("system:node:{actor}");
    let word = if probe.allowed { "allowed" } else { "denied" };
    let expected = format!("{user} labelling {whose} (dry run): {word}");
    let client = match client_or_finding(backend).await {
        Ok(c) => c,
        Err(f) => return f,
    };
    // A label no admission plugin reserves: NodeRestriction lets a kubelet set it on its own
    // Node, so a denial of the own-node change means authorization, not the label, said no.
    let patch = serde_json::json!({"metadata": {"labels": {"ckslab.io/node-write-probe": "dry-run"}}});
    let params = PatchParams { dry_run: true, ..Default::default() };
    let mut request = match kube::core::Request::new("/api/v1/nodes").patch(&target, &params, &Patch::Merge(&patch)) {
        Ok(r) => r,
        Err(e) => return Finding::error(format!("building the request: {e}"), expected),
    };
    let headers = request.headers_mut();
    for (name, value) in [
        ("Impersonate-User", user.as_str()),
        ("Impersonate-Group", "system:nodes"),
        ("Impersonate-Group", "system:authenticated"),
    ] {
        match http::HeaderValue::from_str(value) {
            Ok(value) => {
                headers.append(name, value);
            }
            Err(_) => return Finding::error(format!("{value:?} is not a valid header value"), expected),
        }
    }
    match client.request::<Value>(request).await {
        Ok(_) => Finding::passed_if(probe.allowed, format!("{user} may label {whose}"), expected),
        Err(kube::Error::Api(status)) if status.code == 403 => Finding::passed_if(
            !probe.allowed,
            format!("{user} labelling {whose}: denied: {}", status.message),
            expected,
        ),
        Err(err) => api_error(err, backend, &format!("labelling {whose} as {user}")).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(verbs: &[&str], resources: &[&str], urls: &[&str]) -> PolicyRule {
        let list = |items: &[&str]| (!items.is_empty()).then(|| items.iter().map(|s| s.to_string()).collect());
        PolicyRule {
            verbs: verbs.iter().map(|s| s.to_string()).collect(),
            resources: list(resources),
            non_resource_urls: list(urls),
            ..Default::default()
        }
    }

    fn binding(shown: &str, namespace: Option<&str>, role_kind: &str, role: &str, subject: (&str, &str)) -> Binding {
        Binding {
            shown: shown.into(),
            namespace: namespace.map(String::from),
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: role_kind.into(),
                name: role.into(),
            },
            subjects: vec![Subject { kind: subject.0.into(), name: subject.1.into(), ..Default::default() }],
        }
    }

    fn public() -> Vec<String> {
        ["/healthz", "/livez", "/readyz", "/version", "/version/"].iter().map(|s| s.to_string()).collect()
    }

    fn roles() -> (ClusterRoleRules, RoleRules) {
        let mut cluster = BTreeMap::new();
        cluster.insert(
            "system:public-info-viewer".to_string(),
            vec![rule(&["get"], &[], &["/healthz", "/livez", "/readyz", "/version", "/version/"])],
        );
        cluster.insert("view".to_string(), vec![rule(&["get", "list", "watch"], &["pods"], &[])]);
        cluster.insert("metrics".to_string(), vec![rule(&["get"], &[], &["/metrics"])]);
        let mut namespaced = BTreeMap::new();
        namespaced.insert(("status".to_string(), "cm-reader".to_string()), vec![rule(&["get"], &["configmaps"], &[])]);
        (cluster, namespaced)
    }

    #[test]
    fn the_default_public_binding_grants_nothing_to_grade() {
        let (cluster, namespaced) = roles();
        let b = binding(
            "ClusterRoleBinding system:public-info-viewer",
            None,
            "ClusterRole",
            "system:public-info-viewer",
            ("Group", "system:unauthenticated"),
        );
        assert!(anonymous_grants_of(&[b], &cluster, &namespaced, &public()).is_empty());
    }

    #[test]
    fn any_binding_name_and_either_subject_is_found() {
        let (cluster, namespaced) = roles();
        let bindings = [
            binding("ClusterRoleBinding harmless-looking", None, "ClusterRole", "view", ("User", "system:anonymous")),
            binding(
                "RoleBinding status/page",
                Some("status"),
                "Role",
                "cm-reader",
                ("Group", "system:unauthenticated"),
            ),
            binding("ClusterRoleBinding scrape", None, "ClusterRole", "metrics", ("Group", "system:unauthenticated")),
            // Bindings for other subjects and to roles that do not exist grant anonymous nothing.
            binding("ClusterRoleBinding admins", None, "ClusterRole", "view", ("Group", "system:authenticated")),
            binding("RoleBinding status/ghost", Some("status"), "Role", "missing", ("User", "system:anonymous")),
        ];
        let found = anonymous_grants_of(&bindings, &cluster, &namespaced, &public());
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].contains("harmless-looking") && found[0].contains("get,list,watch pods"));
        assert!(found[1].contains("status/page") && found[1].contains("group system:unauthenticated"));
        assert!(found[2].contains("/metrics"));
    }

    #[test]
    fn a_public_url_with_more_than_get_is_a_grant() {
        let mut cluster = BTreeMap::new();
        cluster.insert("post-health".to_string(), vec![rule(&["get", "post"], &[], &["/healthz"])]);
        let b = binding("ClusterRoleBinding x", None, "ClusterRole", "post-health", ("User", "system:anonymous"));
        assert_eq!(anonymous_grants_of(&[b], &cluster, &BTreeMap::new(), &public()).len(), 1);
    }

    #[test]
    fn status_codes_are_explained() {
        assert!(anonymous_meaning(401).contains("off"));
        assert!(anonymous_meaning(403).contains("on"));
        assert!(anonymous_meaning(200).contains("may read"));
    }
}
