//! The answer-file probe: what the learner found out (an identity, a pod), written into a node
//! file as `key: value` lines and compared normalized, so the spelling of a right answer never
//! decides. Messages name what is wrong, never the right value.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Finding, resolve_nodes};
use crate::backend::Backend;
use crate::scenario::{Answer, AnswerFileProbe, AnswerKind};

/// The `key: value` (or `key = value`) lines of an answer file: keys lower-cased and trimmed,
/// values trimmed and unquoted; blank lines and `#` comments skipped. A key given twice with
/// different values is an error (which one is the answer?), as is a line that is not `key: value`.
pub fn parse(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut answers: BTreeMap<String, String> = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim().trim_start_matches('\u{feff}');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The first `:` or `=` separates: a value such as system:serviceaccount:a:b keeps its own.
        let Some(at) = line.find([':', '=']) else {
            return Err(format!("line {} ({line:?}) is not `key: value`", index + 1));
        };
        let key = line[..at].trim().to_lowercase();
        let value = unquote(line[at + 1..].trim()).to_string();
        if key.is_empty() {
            return Err(format!("line {} ({line:?}) has no key before the value", index + 1));
        }
        match answers.get(&key) {
            Some(earlier) if *earlier != value => {
                return Err(format!("`{key}` is given twice, as {earlier:?} and {value:?}"));
            }
            _ => {
                answers.insert(key, value);
            }
        }
    }
    Ok(answers)
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(quote).and_then(|v| v.strip_suffix(quote)) {
            return inner.trim();
        }
    }
    value
}

/// One canonical spelling of an answer of this kind, or why the text is not one.
pub fn normalize(kind: AnswerKind, value: &str, namespace: Option<&str>) -> Result<String, String> {
    match kind {
        AnswerKind::Text => Ok(value.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()),
        AnswerKind::ServiceAccount => {
            // Kubernetes names are lower-case DNS labels: whitespace and case carry nothing.
            let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_lowercase();
            let (ns, name) = if let Some(rest) = compact.strip_prefix("system:serviceaccount:") {
                rest.split_once(':').ok_or_else(|| format!("{value:?} has no name after the namespace"))?
            } else if let Some((ns, name)) = compact.split_once('/') {
                (ns, name)
            } else {
                return Err(format!(
                    "{value:?} is not a ServiceAccount as system:serviceaccount:<namespace>:<name> or <namespace>/<name>"
                ));
            };
            if ns.is_empty() || name.is_empty() || name.contains([':', '/']) {
                return Err(format!("{value:?} is not one ServiceAccount"));
            }
            Ok(format!("{ns}/{name}"))
        }
        AnswerKind::Pod | AnswerKind::Deployment => {
            // The resource word kubectl takes before a name (`pod/x`, `deploy/x`) is not part of it.
            let words: &[&str] = match kind {
                AnswerKind::Pod => &["pod", "pods", "po"],
                _ => &["deployment", "deployments", "deploy", "deployment.apps", "deployments.apps"],
            };
            let what = if kind == AnswerKind::Pod { "pod" } else { "Deployment" };
            let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_lowercase();
            let parts: Vec<&str> = compact.split('/').collect();
            let (ns, name) = match parts.as_slice() {
                [name] => (namespace.map(str::to_lowercase), *name),
                [word, name] if words.contains(word) => (namespace.map(str::to_lowercase), *name),
                [ns, word, name] if words.contains(word) => (Some(ns.to_string()), *name),
                [ns, name] => (Some(ns.to_string()), *name),
                _ => return Err(format!("{value:?} is not a {what} as <name> or <namespace>/<name>")),
            };
            if name.is_empty() || ns.as_deref() == Some("") {
                return Err(format!("{value:?} is not a {what} name"));
            }
            Ok(match ns {
                Some(ns) => format!("{ns}/{name}"),
                None => name.to_string(),
            })
        }
    }
}

fn format_hint(kind: AnswerKind) -> &'static str {
    match kind {
        AnswerKind::Text => "",
        AnswerKind::ServiceAccount => " (system:serviceaccount:<namespace>:<name> or <namespace>/<name>)",
        AnswerKind::Pod | AnswerKind::Deployment => " (<name> or <namespace>/<name>)",
    }
}

/// Every answer against the parsed file; the first wrong or missing one decides.
pub fn judge(answers: &BTreeMap<String, String>, wanted: &[Answer], subject: &str) -> Finding {
    let mut right = Vec::new();
    for answer in wanted {
        let key = answer.key.trim().to_lowercase();
        let what = answer.what.clone().unwrap_or_else(|| "the answer".into());
        let expected = format!("`{key}:` naming {what}{}", format_hint(answer.kind));
        let Some(given) = answers.get(&key) else {
            return Finding::fail(format!("{subject} has no `{key}:` line"), expected);
        };
        if given.is_empty() {
            return Finding::fail(format!("{subject} leaves `{key}:` empty"), expected);
        }
        let want = match normalize(answer.kind, &answer.equals, answer.namespace.as_deref()) {
            Ok(w) => w,
            Err(e) => return Finding::error(format!("the check's own answer: {e}"), "a valid check"),
        };
        let got = match normalize(answer.kind, given, answer.namespace.as_deref()) {
            Ok(g) => g,
            Err(e) => return Finding::fail(format!("{subject}: `{key}:` {e}"), expected),
        };
        if got != want {
            return Finding::fail(format!("{subject}: `{key}: {given}` names something else"), expected);
        }
        right.push(format!("`{key}: {given}`"));
    }
    Finding::pass(format!("{subject} gives {}", right.join(" and ")), "the right answers")
}

pub async fn answer_file(probe: &AnswerFileProbe, backend: &dyn Backend) -> Finding {
    let Some(node) = resolve_nodes(&probe.node, backend).into_iter().next() else {
        return Finding::error("the cluster has no such node", format!("{:?}", probe.node));
    };
    let subject = format!("{node}:{}", probe.path);
    let expected = format!("the answer file {} on {node}", probe.path);
    let text = match backend.read_file(&node, Path::new(&probe.path)).await {
        Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        Ok(None) => return Finding::fail(format!("{subject} does not exist"), expected),
        Err(e) => return Finding::error(format!("reading {subject}: {e}"), expected),
    };
    match parse(&text) {
        Ok(answers) => judge(&answers, &probe.answers, &subject),
        Err(e) => Finding::fail(format!("{subject}: {e}"), "one `key: value` line per answer"),
    }
}

/// What lint reports about an answer-file probe before any cluster is involved.
pub fn problems(probe: &AnswerFileProbe) -> Vec<String> {
    let mut problems = Vec::new();
    if !probe.path.starts_with('/') {
        problems.push(format!("answer-file path {:?} is not an absolute node path", probe.path));
    }
    if probe.answers.is_empty() {
        problems.push("answer-file needs at least one answer".into());
    }
    let mut keys = std::collections::BTreeSet::new();
    for answer in &probe.answers {
        let key = answer.key.trim().to_lowercase();
        if key.is_empty() || key.contains([':', '=', '#']) {
            problems.push(format!("answer key {:?} cannot be written as `key: value`", answer.key));
        }
        if !keys.insert(key.clone()) {
            problems.push(format!("answer key {key:?} is asked twice"));
        }
        if let Err(e) = normalize(answer.kind, &answer.equals, answer.namespace.as_deref()) {
            problems.push(format!("answer {key:?}: {e}"));
        }
        let named = matches!(answer.kind, AnswerKind::Pod | AnswerKind::Deployment);
        if named && answer.namespace.is_none() {
            problems
                .push(format!("answer {key:?} is a namespaced name: give its namespace, so a bare name can be read"));
        }
        if !named && answer.namespace.is_some() {
            problems.push(format!("answer {key:?}: namespace is only read for kinds pod and deployment"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Outcome;

    fn wanted() -> Vec<Answer> {
        vec![
            Answer {
                key: "identity".into(),
                kind: AnswerKind::ServiceAccount,
                equals: "payments/report-gen".into(),
                namespace: None,
                what: Some("the identity that read the Secrets".into()),
            },
            Answer {
                key: "pod".into(),
                kind: AnswerKind::Pod,
                equals: "report-gen-5c7d9".into(),
                namespace: Some("payments".into()),
                what: Some("the pod its token was bound to".into()),
            },
        ]
    }

    fn grade(text: &str) -> Finding {
        match parse(text) {
            Ok(answers) => judge(&answers, &wanted(), "node:/opt/a.txt"),
            Err(e) => Finding::fail(e, "lines"),
        }
    }

    #[test]
    fn every_spelling_of_the_right_answer_passes() {
        for text in [
            "identity: system:serviceaccount:payments:report-gen\npod: report-gen-5c7d9\n",
            "identity: payments/report-gen\npod: payments/report-gen-5c7d9",
            "# found in the audit log\n\n  IDENTITY =  System:ServiceAccount:Payments:Report-Gen  \r\nPod = \"pod/report-gen-5c7d9\"\n",
            "identity: 'payments / report-gen'\npod: payments/pods/report-gen-5c7d9\npod: payments/pods/report-gen-5c7d9\n",
            "\u{feff}pod:report-gen-5c7d9\nidentity:system:serviceaccount:payments:report-gen\nnote: found at 10:42\n",
        ] {
            let finding = grade(text);
            assert_eq!(finding.outcome, Outcome::Pass, "{text:?}: {finding:?}");
        }
    }

    #[test]
    fn near_misses_fail_without_giving_the_answer_away() {
        for (text, says) in [
            ("identity: payments/vault-sync\npod: report-gen-5c7d9", "names something else"),
            ("identity: payments/report-gen\npod: report-gen-k2x8p", "names something else"),
            ("identity: payments/report-gen\npod: tools/report-gen-5c7d9", "names something else"),
            ("identity: system:serviceaccount:tools:report-gen\npod: report-gen-5c7d9", "names something else"),
            ("identity: report-gen\npod: report-gen-5c7d9", "not a ServiceAccount"),
            ("identity: system:serviceaccount:payments\npod: report-gen-5c7d9", "no name after the namespace"),
            ("identity: payments/report-gen", "no `pod:` line"),
            ("identity: payments/report-gen\npod:", "leaves `pod:` empty"),
            ("identity: payments/report-gen\npod: a\npod: b", "given twice"),
            ("system:serviceaccount:payments:report-gen\npod: report-gen-5c7d9", "no `identity:` line"),
            ("payments/report-gen\nreport-gen-5c7d9", "is not `key: value`"),
        ] {
            let finding = grade(text);
            assert_eq!(finding.outcome, Outcome::Fail, "{text:?}: {finding:?}");
            assert!(finding.observed.contains(says), "{text:?}: {}", finding.observed);
            assert!(!finding.expected.contains("report-gen"), "the expectation leaks the answer: {}", finding.expected);
        }
    }

    #[test]
    fn a_deployment_reads_the_same_in_every_kubectl_spelling() {
        for text in [
            "pricing",
            "Warehouse/Pricing",
            "deploy/pricing",
            "deployment/pricing",
            "warehouse/deployments.apps/pricing",
        ] {
            assert_eq!(
                normalize(AnswerKind::Deployment, text, Some("warehouse")).unwrap(),
                "warehouse/pricing",
                "{text}"
            );
        }
        assert_eq!(normalize(AnswerKind::Deployment, "shop/pricing", Some("warehouse")).unwrap(), "shop/pricing");
        assert!(normalize(AnswerKind::Deployment, "a/b/c", Some("warehouse")).is_err());
        // (a pod's word is not a Deployment's)
        assert_eq!(normalize(AnswerKind::Deployment, "pod/pricing", Some("warehouse")).unwrap(), "pod/pricing");
    }

    #[test]
    fn kinds_normalize_to_one_spelling() {
        assert_eq!(normalize(AnswerKind::Text, "  Hello   World ", None).unwrap(), "hello world");
        assert_eq!(
            normalize(AnswerKind::ServiceAccount, "system:serviceaccount:a:b", None).unwrap(),
            normalize(AnswerKind::ServiceAccount, "A/B", None).unwrap()
        );
        assert_eq!(normalize(AnswerKind::Pod, "x", None).unwrap(), "x");
        assert_eq!(normalize(AnswerKind::Pod, "pods/x", Some("n")).unwrap(), "n/x");
        assert!(normalize(AnswerKind::Pod, "a/b/c/d", Some("n")).is_err());
    }

    #[test]
    fn lint_finds_probes_that_cannot_work() {
        let probe =
            |answers: Vec<Answer>, path: &str| AnswerFileProbe { node: Default::default(), path: path.into(), answers };
        assert!(problems(&probe(wanted(), "/opt/incident/answer.txt")).is_empty());
        let mut bad = wanted();
        bad[0].equals = "report-gen".into();
        bad[1].namespace = None;
        bad.push(bad[0].clone());
        let found = problems(&probe(bad, "answer.txt")).join("\n");
        for says in ["not an absolute node path", "is not a ServiceAccount", "give its namespace", "asked twice"] {
            assert!(found.contains(says), "{says}: {found}");
        }
        assert!(problems(&probe(vec![], "/a")).join("").contains("at least one answer"));
    }
}
