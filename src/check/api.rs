//! Probes that ask the Kubernetes API: objects, SubjectAccessReviews, admission dry-runs.

use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use regex::Regex;
use serde_json::Value;

use super::{Finding, api_error, client_or_finding, fields};
use crate::backend::Backend;
use crate::scenario::{
    AdmissionProbe, AllowedRule, CanIProbe, EffectiveRulesProbe, ObjectProbe, ObjectsProbe, ServerVersionProbe,
};

pub fn gvk(api_version: &str, kind: &str) -> GroupVersionKind {
    match api_version.split_once('/') {
        Some((group, version)) => GroupVersionKind::gvk(group, version, kind),
        None => GroupVersionKind::gvk("", api_version, kind),
    }
}

/// An `Api` for a kind, resolved through discovery (so CRDs work too).
pub async fn dynamic_api(
    client: &kube::Client,
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
) -> Result<(Api<DynamicObject>, ApiResource), kube::Error> {
    let (resource, caps) = kube::discovery::pinned_kind(client, &gvk(api_version, kind)).await?;
    let api = match (caps.scope, namespace) {
        (kube::discovery::Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &resource),
        (kube::discovery::Scope::Namespaced, None) => Api::all_with(client.clone(), &resource),
        (kube::discovery::Scope::Cluster, _) => Api::all_with(client.clone(), &resource),
    };
    Ok((api, resource))
}

fn describe_target(kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

pub async fn object(probe: &ObjectProbe, backend: &dyn Backend) -> Finding {
    let target = &probe.target;
    let subject = describe_target(&target.kind, target.namespace.as_deref(), &target.name);
    let client = match client_or_finding(backend).await {
        Ok(c) => c,
        Err(f) => return f,
    };
    let api = match dynamic_api(&client, &target.api_version, &target.kind, target.namespace.as_deref()).await {
        Ok((api, _)) => api,
        Err(kube::Error::Api(status)) if status.code == 404 => {
            // The kind itself is unknown (e.g. a CRD not installed): the object cannot exist.
            let observed = format!("the API has no kind {} in {}", target.kind, target.api_version);
            return Finding::passed_if(probe.absent, observed, format!("{subject} to exist"));
        }
        Err(err) => return api_error(err, backend, &format!("looking up {}", target.kind)).await,
    };
    let found = match api.get_opt(&target.name).await {
        Ok(found) => found,
        Err(err) => return api_error(err, backend, &format!("reading {subject}")).await,
    };
    match (found, probe.absent) {
        (None, true) => Finding::pass(format!("{subject} is absent"), format!("{subject} absent")),
        (Some(_), true) => Finding::fail(format!("{subject} exists"), format!("{subject} absent")),
        (None, false) => Finding::fail(format!("{subject} does not exist"), format!("{subject} to exist")),
        (Some(object), false) => {
            let document = serde_json::to_value(&object).unwrap_or(Value::Null);
            if probe.fields.is_empty() {
                Finding::pass(format!("{subject} exists"), format!("{subject} to exist"))
            } else {
                fields::evaluate_all(&document, &probe.fields, &subject)
            }
        }
    }
}

/// What the API server itself says it runs (`GET /version`): after an upgrade, the new
/// kube-apiserver answering, not a manifest that names its image.
pub async fn server_version(probe: &ServerVersionProbe, backend: &dyn Backend) -> Finding {
    let expected = format!("GET /version reports gitVersion {}", probe.equals);
    let client = match client_or_finding(backend).await {
        Ok(client) => client,
        Err(finding) => return finding,
    };
    match client.apiserver_version().await {
        Ok(info) => Finding::passed_if(
            info.git_version == probe.equals,
            format!("GET /version reports gitVersion {}", info.git_version),
            expected,
        ),
        Err(err) => api_error(err, backend, "GET /version").await,
    }
}

pub async fn objects(probe: &ObjectsProbe, backend: &dyn Backend) -> Finding {
    let scope = probe.namespace.as_deref().map(|ns| format!(" in {ns}")).unwrap_or_default();
    let subject = format!("{}{scope}", probe.kind);
    let client = match client_or_finding(backend).await {
        Ok(c) => c,
        Err(f) => return f,
    };
    let api = match dynamic_api(&client, &probe.api_version, &probe.kind, probe.namespace.as_deref()).await {
        Ok((api, _)) => api,
        Err(err) => return api_error(err, backend, &format!("looking up {}", probe.kind)).await,
    };
    let mut params = ListParams::default();
    if let Some(selector) = &probe.selector {
        params = params.labels(selector);
    }
    let mut list = match api.list(&params).await {
        Ok(list) => list,
        Err(err) => return api_error(err, backend, &format!("listing {subject}")).await,
    };
    // An object being deleted (a pod terminating after a rollout, on real nodes for up to its
    // grace period) is on its way out: it is not part of the answer.
    list.items.retain(|item| item.metadata.deletion_timestamp.is_none());
    let expected = format!("at least {} {subject}, each with {}", probe.min, fields::describe_all(&probe.fields));
    if list.items.len() < probe.min {
        return Finding::fail(format!("{} {subject} found", list.items.len()), expected);
    }
    for item in &list.items {
        let name = item.metadata.name.clone().unwrap_or_default();
        let document = serde_json::to_value(item).unwrap_or(Value::Null);
        let finding = fields::evaluate_all(&document, &probe.fields, &format!("{} {name}", probe.kind));
        // (an empty list with min 0 passes below: "no object contradicts")
        if finding.outcome != super::Outcome::Pass {
            return Finding { expected, ..finding };
        }
    }
    Finding::pass(format!("all {} {subject} match", list.items.len()), expected)
}

/// The groups the API server gives a user: a service account's, and system:authenticated.
fn groups_of(user: &str, groups: &[String]) -> Vec<String> {
    let mut groups = groups.to_vec();
    if let Some(rest) = user.strip_prefix("system:serviceaccount:") {
        let namespace = rest.split(':').next().unwrap_or_default();
        groups.push("system:serviceaccounts".into());
        groups.push(format!("system:serviceaccounts:{namespace}"));
    }
    groups.push("system:authenticated".into());
    groups
}

/// What every authenticated user may do (system:basic-user), which no task takes away.
fn granted_to_everyone(group: &str, resource: &str, verb: &str) -> bool {
    verb == "create"
        && matches!(
            (group, resource),
            ("authorization.k8s.io", "selfsubjectaccessreviews" | "selfsubjectrulesreviews")
                | ("authentication.k8s.io", "selfsubjectreviews")
        )
}

fn covered(allow: &[AllowedRule], group: &str, resource: &str, verb: &str) -> bool {
    allow.iter().any(|rule| {
        rule.api_groups.iter().any(|g| g == group)
            && rule.resources.iter().any(|r| r == resource)
            && rule.verbs.iter().any(|v| v == verb)
    })
}

/// Each (verb, group, resource) a rules review grants beyond `allow`, wildcards kept as `*`.
pub fn beyond(rules: &Value, allow: &[AllowedRule]) -> Vec<String> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect()).unwrap_or_default()
    };
    let mut extra: Vec<(String, Vec<String>)> = Vec::new();
    for rule in rules.as_array().into_iter().flatten() {
        let groups = strings(&rule["apiGroups"]);
        let groups = if groups.is_empty() { vec![String::new()] } else { groups };
        for group in &groups {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    if granted_to_everyone(group, &resource, &verb) || covered(allow, group, &resource, &verb) {
                        continue;
                    }
                    let shown = if group.is_empty() { resource.clone() } else { format!("{resource}.{group}") };
                    let names = strings(&rule["resourceNames"]);
                    let named = if names.is_empty() { String::new() } else { format!(" ({})", names.join(", ")) };
                    let what = format!("{shown}{named}");
                    match extra.iter_mut().find(|(w, _): &&mut (String, Vec<String>)| *w == what) {
                        Some((_, verbs)) if !verbs.contains(&verb) => verbs.push(verb),
                        Some(_) => {}
                        None => extra.push((what, vec![verb])),
                    }
                }
            }
        }
    }
    extra.into_iter().map(|(what, verbs)| format!("{} {what}", verbs.join(", "))).collect()
}

pub async fn effective_rules(probe: &EffectiveRulesProbe, backend: &dyn Backend) -> Finding {
    let client = match client_or_finding(backend).await {
        Ok(c) => c,
        Err(f) => return f,
    };
    let allowed: Vec<String> =
        probe.allow.iter().map(|r| format!("{} {}", r.verbs.join(","), r.resources.join(","))).collect();
    let expected = format!(
        "{} may {} in {}, and nothing else{}",
        probe.user,
        allowed.join("; "),
        probe.namespace,
        if probe.nothing_in.is_empty() {
            String::new()
        } else {
            format!(" (nothing at all in {})", probe.nothing_in.join(", "))
        }
    );
    let mut observed = Vec::new();
    let places = std::iter::once((&probe.namespace, probe.allow.as_slice()))
        .chain(probe.nothing_in.iter().map(|ns| (ns, &[][..])));
    for (namespace, allow) in places {
        let review = serde_json::json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectRulesReview",
            "spec": {"namespace": namespace},
        });
        let url = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews";
        let request = kube::core::Request::new(url)
            .create(&PostParams::default(), serde_json::to_vec(&review).unwrap_or_default());
        let mut request = match request {
            Ok(r) => r,
            Err(e) => return Finding::error(format!("building the request: {e}"), expected),
        };
        let headers = request.headers_mut();
        let Ok(user) = http::HeaderValue::from_str(&probe.user) else {
            return Finding::error(format!("user {:?} is not a valid header value", probe.user), expected);
        };
        headers.insert("Impersonate-User", user);
        for group in groups_of(&probe.user, &probe.groups) {
            if let Ok(value) = http::HeaderValue::from_str(&group) {
                headers.append("Impersonate-Group", value);
            }
        }
        let answer = match client.request::<Value>(request).await {
            Ok(answer) => answer,
            Err(err) => {
                return api_error(err, backend, &format!("reviewing the rules of {} in {namespace}", probe.user)).await;
            }
        };
        let status = &answer["status"];
        if status["incomplete"].as_bool() == Some(true) {
            return Finding::error(
                format!(
                    "the API server could not list every rule of {} in {namespace}: {}",
                    probe.user,
                    status["evaluationError"].as_str().unwrap_or("incomplete")
                ),
                expected,
            );
        }
        let extra = beyond(&status["resourceRules"], allow);
        if !extra.is_empty() {
            return Finding::fail(format!("{} may also {} in {namespace}", probe.user, extra.join("; ")), expected);
        }
        observed.push(format!("nothing more in {namespace}"));
    }
    Finding::pass(format!("{}: {}", probe.user, observed.join(", ")), expected)
}

pub async fn can_i(probe: &CanIProbe, backend: &dyn Backend) -> Finding {
    let client = match client_or_finding(backend).await {
        Ok(c) => c,
        Err(f) => return f,
    };
    let mut groups = probe.groups.clone();
    // The API server adds these for real service account tokens; a review must say them.
    if let Some(rest) = probe.user.strip_prefix("system:serviceaccount:") {
        let namespace = rest.split(':').next().unwrap_or_default();
        groups.push("system:serviceaccounts".into());
        groups.push(format!("system:serviceaccounts:{namespace}"));
    }
    groups.push("system:authenticated".into());
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(probe.user.clone()),
            groups: Some(groups),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(probe.verb.clone()),
                resource: Some(probe.resource.clone()),
                group: probe.group.clone(),
                subresource: probe.subresource.clone(),
                namespace: probe.namespace.clone(),
                name: probe.name.clone(),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SubjectAccessReview> = Api::all(client);
    let question = format!(
        "{} {} {}{}{}",
        probe.user,
        probe.verb,
        probe.resource,
        probe.subresource.as_deref().map(|s| format!("/{s}")).unwrap_or_default(),
        probe.namespace.as_deref().map(|ns| format!(" in {ns}")).unwrap_or_else(|| " cluster-wide".into()),
    );
    match api.create(&PostParams::default(), &review).await {
        Ok(answer) => {
            let status = answer.status.unwrap_or_default();
            let allowed = status.allowed;
            let why = status.reason.filter(|r| !r.is_empty()).map(|r| format!(" ({r})")).unwrap_or_default();
            let word = |a: bool| if a { "allowed" } else { "denied" };
            Finding::passed_if(
                allowed == probe.allowed,
                format!("can {question}: {}{why}", word(allowed)),
                word(probe.allowed).to_string(),
            )
        }
        Err(err) => api_error(err, backend, "creating a SubjectAccessReview").await,
    }
}

pub async fn admission(probe: &AdmissionProbe, backend: &dyn Backend) -> Finding {
    let object: Value = match serde_saphyr::from_str(&probe.object) {
        Ok(v) => v,
        Err(e) => return Finding::error(format!("the probe's object does not parse: {e}"), "a valid object"),
    };
    let api_version = object["apiVersion"].as_str().unwrap_or("v1").to_string();
    let kind = object["kind"].as_str().unwrap_or_default().to_string();
    let namespace = object["metadata"]["namespace"].as_str().map(String::from);
    let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let subject = describe_target(&kind, namespace.as_deref(), &name);
    let client = match client_or_finding(backend).await {
        Ok(c) => c,
        Err(f) => return f,
    };
    let api = match dynamic_api(&client, &api_version, &kind, namespace.as_deref()).await {
        Ok((api, _)) => api,
        Err(err) => return api_error(err, backend, &format!("looking up {kind}")).await,
    };
    let params = PostParams { dry_run: true, ..Default::default() };
    let request =
        kube::core::Request::new(api.resource_url()).create(&params, serde_json::to_vec(&object).unwrap_or_default());
    let mut request = match request {
        Ok(r) => r,
        Err(e) => return Finding::error(format!("building the request: {e}"), "a request"),
    };
    if let Some(user) = &probe.as_user {
        match http::HeaderValue::from_str(user) {
            Ok(value) => {
                request.headers_mut().insert("Impersonate-User", value);
            }
            Err(_) => return Finding::error(format!("user {user:?} is not a valid header value"), "a user name"),
        }
    }
    let expected = match (probe.allowed, &probe.reason) {
        (true, _) => format!("creating {subject} (dry run) to be admitted"),
        (false, Some(reason)) => format!("creating {subject} (dry run) to be denied with a reason matching /{reason}/"),
        (false, None) => format!("creating {subject} (dry run) to be denied"),
    };
    match client.request::<Value>(request).await {
        Ok(_) => Finding::passed_if(probe.allowed, format!("{subject} was admitted"), expected),
        Err(kube::Error::Api(status)) if matches!(status.code, 400 | 403 | 422 | 500) => {
            let observed = format!("denied ({}): {}", status.code, status.message);
            if probe.allowed {
                return Finding::fail(observed, expected);
            }
            match &probe.reason {
                None => Finding::pass(observed, expected),
                Some(pattern) => match Regex::new(pattern) {
                    Ok(re) => Finding::passed_if(re.is_match(&status.message), observed, expected),
                    Err(e) => Finding::error(format!("bad reason pattern: {e}"), expected),
                },
            }
        }
        Err(err) => api_error(err, backend, &format!("dry-run creating {subject}")).await,
    }
}
