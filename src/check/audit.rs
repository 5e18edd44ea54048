//! The audit-log probe: make requests, then read the events the API server wrote for them.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Finding, client_or_finding, node::read_manifest};
use crate::backend::Backend;
use crate::scenario::{AuditLogProbe, AuditMatch, AuditTrigger};

/// The node path of the audit log, from kube-apiserver's flags and mounts.
async fn audit_log_path(backend: &dyn Backend) -> Result<String, Finding> {
    let manifest = read_manifest(backend, "kube-apiserver").await?;
    let expected = "--audit-log-path naming a file on a hostPath volume";
    let Some(path) = manifest.flag("audit-log-path").and_then(|f| f.value) else {
        return Err(Finding::fail("kube-apiserver has no --audit-log-path", expected));
    };
    if path == "-" {
        return Err(Finding::fail("kube-apiserver writes audit events to stdout (--audit-log-path=-)", expected));
    }
    manifest.host_path_for(&path).ok_or_else(|| {
        Finding::fail(
            format!("--audit-log-path={path}, but no volume mount covers it, so the log stays inside the container"),
            expected,
        )
    })
}

fn resource_url(trigger: &AuditTrigger) -> String {
    let (prefix, resource) = match trigger.resource.split_once('.') {
        // `deployments.apps` style: plural.group, v1 assumed.
        Some((plural, group)) => (format!("/apis/{group}/v1"), plural.to_string()),
        None => ("/api/v1".to_string(), trigger.resource.clone()),
    };
    let mut url = prefix;
    if let Some(ns) = &trigger.namespace {
        url.push_str(&format!("/namespaces/{ns}"));
    }
    url.push_str(&format!("/{resource}"));
    if let Some(name) = &trigger.name {
        url.push_str(&format!("/{name}"));
    }
    url
}

async fn fire(client: &kube::Client, trigger: &AuditTrigger) -> Result<(), String> {
    let method = match trigger.verb.as_str() {
        "get" | "list" => http::Method::GET,
        "delete" => http::Method::DELETE,
        other => return Err(format!("trigger verb {other} is not supported (get, list, delete)")),
    };
    let mut request = http::Request::builder().method(method).uri(resource_url(trigger));
    if let Some(user) = &trigger.as_user {
        request = request.header("Impersonate-User", user);
    }
    let request = request.body(Vec::new()).map_err(|e| e.to_string())?;
    // Denied or missing objects are still audited; only transport errors matter here.
    match client.request_text(request).await {
        Ok(_) | Err(kube::Error::Api(_)) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

pub fn event_matches(event: &Value, matcher: &AuditMatch) -> bool {
    let field = |pointer: &str| event.pointer(pointer).and_then(Value::as_str);
    let same = |want: &Option<String>, pointer: &str| want.as_ref().is_none_or(|w| field(pointer) == Some(w.as_str()));
    same(&matcher.verb, "/verb")
        && same(&matcher.resource, "/objectRef/resource")
        && same(&matcher.namespace, "/objectRef/namespace")
        && same(&matcher.name, "/objectRef/name")
        && same(&matcher.user, "/user/username")
}

fn describe(matcher: &AuditMatch) -> String {
    let parts: Vec<String> = [
        ("verb", &matcher.verb),
        ("resource", &matcher.resource),
        ("namespace", &matcher.namespace),
        ("name", &matcher.name),
        ("user", &matcher.user),
    ]
    .iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
    .collect();
    if parts.is_empty() { "any request".into() } else { parts.join(" ") }
}

/// Events in `log` that match, received at or after `since` (RFC 3339 text compares in order).
pub fn matching_events(log: &str, matcher: &AuditMatch, since: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["requestReceivedTimestamp"].as_str().is_some_and(|t| t >= since))
        .filter(|event| event_matches(event, matcher))
        .collect()
}

/// Judges the matching events against the probe's expectations.
pub fn judge(events: &[Value], probe: &AuditLogProbe) -> Finding {
    let what = describe(&probe.matcher);
    if !probe.present {
        return Finding::passed_if(
            events.is_empty(),
            format!("{} audit event(s) for {what}", events.len()),
            format!("no audit event for {what}"),
        );
    }
    let mut expected = format!("audit events for {what}");
    if let Some(level) = &probe.level {
        expected.push_str(&format!(" at level {level}"));
    }
    if events.is_empty() {
        return Finding::fail(format!("no audit event for {what}"), expected);
    }
    if let Some(level) = &probe.level
        && let Some(wrong) = events.iter().find(|e| e["level"].as_str() != Some(level.as_str()))
    {
        return Finding::fail(
            format!("an event for {what} at level {}", wrong["level"].as_str().unwrap_or("?")),
            expected,
        );
    }
    if let Some(secret) = &probe.never_contains
        && events.iter().any(|e| e.to_string().contains(secret.as_str()))
    {
        return Finding::fail(
            format!("an event for {what} contains the secret value"),
            format!("{expected}, never containing the value"),
        );
    }
    Finding::pass(format!("{} audit event(s) for {what}", events.len()), expected)
}

pub async fn audit_log(probe: &AuditLogProbe, backend: &dyn Backend) -> Finding {
    let path = match audit_log_path(backend).await {
        Ok(p) => p,
        Err(f) => return f,
    };
    let client = match client_or_finding(backend).await {
        Ok(c) => c,
        Err(f) => return f,
    };
    // Audit timestamps have microseconds; a second of slack covers clock rounding.
    let lookback = probe.lookback.unwrap_or(1).max(1) as i64;
    let since =
        (chrono::Utc::now() - chrono::Duration::seconds(lookback)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    for trigger in &probe.trigger {
        if let Err(e) = fire(&client, trigger).await {
            return Finding::error(
                format!("making the {} {} request: {e}", trigger.verb, trigger.resource),
                "the request to be made",
            );
        }
    }
    let node = backend.control_plane();
    // Wait for the events to reach the file; an absence is judged after a short grace period.
    let deadline = Instant::now() + if probe.present { Duration::from_secs(4) } else { Duration::from_millis(800) };
    loop {
        let log = match backend.read_file(&node, Path::new(&path)).await {
            Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            Ok(None) => String::new(),
            Err(e) => return Finding::error(format!("reading {path}: {e}"), "the audit log readable"),
        };
        let events = matching_events(&log, &probe.matcher, &since);
        let finding = judge(&events, probe);
        if finding.outcome == super::Outcome::Pass && probe.present || Instant::now() >= deadline {
            if log.is_empty() && probe.present {
                return Finding::fail(format!("the audit log {path} is empty or missing on {node}"), finding.expected);
            }
            return finding;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Outcome;

    const LOG: &str = r#"{"kind":"Event","level":"Metadata","verb":"get","user":{"username":"admin"},"objectRef":{"resource":"secrets","namespace":"a","name":"s"},"requestReceivedTimestamp":"2026-01-01T00:00:05.000000Z"}
{"kind":"Event","level":"RequestResponse","verb":"get","user":{"username":"admin"},"objectRef":{"resource":"configmaps","namespace":"a","name":"c"},"responseObject":{"data":{"k":"v"}},"requestReceivedTimestamp":"2026-01-01T00:00:06.000000Z"}
{"kind":"Event","level":"Metadata","verb":"get","user":{"username":"old"},"objectRef":{"resource":"secrets","namespace":"a","name":"s"},"requestReceivedTimestamp":"2025-12-31T00:00:00.000000Z"}"#;

    fn probe(matcher: AuditMatch, present: bool, level: Option<&str>) -> AuditLogProbe {
        AuditLogProbe {
            trigger: vec![],
            matcher,
            present,
            level: level.map(String::from),
            never_contains: None,
            lookback: None,
        }
    }

    #[test]
    fn events_are_matched_by_field_and_time() {
        let secrets = AuditMatch { resource: Some("secrets".into()), ..Default::default() };
        let events = matching_events(LOG, &secrets, "2026-01-01T00:00:00.000000Z");
        assert_eq!(events.len(), 1, "the 2025 event is before the window");
        assert_eq!(judge(&events, &probe(secrets.clone(), true, Some("Metadata"))).outcome, Outcome::Pass);
        assert_eq!(judge(&events, &probe(secrets, true, Some("RequestResponse"))).outcome, Outcome::Fail);
    }

    #[test]
    fn absence_and_leaks_are_detected() {
        let noisy = AuditMatch { user: Some("old".into()), ..Default::default() };
        let events = matching_events(LOG, &noisy, "2026-01-01T00:00:00.000000Z");
        assert_eq!(judge(&events, &probe(noisy, false, None)).outcome, Outcome::Pass);
        let cms = AuditMatch { resource: Some("configmaps".into()), ..Default::default() };
        let events = matching_events(LOG, &cms, "2026-01-01T00:00:00.000000Z");
        let mut leak = probe(cms, true, None);
        leak.never_contains = Some("\"k\":\"v\"".into());
        assert_eq!(judge(&events, &leak).outcome, Outcome::Fail);
    }

    #[test]
    fn trigger_urls() {
        let t = AuditTrigger {
            verb: "get".into(),
            resource: "secrets".into(),
            namespace: Some("a".into()),
            name: Some("s".into()),
            as_user: None,
        };
        assert_eq!(resource_url(&t), "/api/v1/namespaces/a/secrets/s");
        let t = AuditTrigger {
            verb: "list".into(),
            resource: "deployments.apps".into(),
            namespace: None,
            name: None,
            as_user: None,
        };
        assert_eq!(resource_url(&t), "/apis/apps/v1/deployments");
    }
}
