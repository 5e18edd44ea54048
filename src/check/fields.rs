//! Field conditions over structured data (objects, parsed config files). Pure functions.

use jsonpath_rust::JsonPath;
use regex::Regex;
use serde_json::Value;

use super::Finding;
use crate::scenario::{Expectation, FieldCondition};

/// Evaluates every condition; the first that does not hold decides the finding.
pub fn evaluate_all(document: &Value, conditions: &[FieldCondition], subject: &str) -> Finding {
    let mut observed = Vec::new();
    for condition in conditions {
        let finding = evaluate(document, condition);
        if finding.outcome != super::Outcome::Pass {
            return Finding { observed: format!("{subject}: {}", finding.observed), ..finding };
        }
        observed.push(finding.observed);
    }
    Finding::pass(format!("{subject}: {}", observed.join("; ")), describe_all(conditions))
}

pub fn describe_all(conditions: &[FieldCondition]) -> String {
    conditions.iter().map(describe).collect::<Vec<_>>().join("; ")
}

pub fn describe(condition: &FieldCondition) -> String {
    if let Some(label) = &condition.label {
        match condition.expect {
            Expectation::Absent(true) | Expectation::Present(false) => return format!("no {label}"),
            Expectation::Absent(false) | Expectation::Present(true) => return format!("some {label}"),
            _ => {}
        }
    }
    let quantifier = if condition.any { "some" } else { "every" };
    let what = match &condition.expect {
        Expectation::Equals(v) => format!("equals {}", compact(v)),
        Expectation::OneOf(vs) => format!("is one of {}", vs.iter().map(compact).collect::<Vec<_>>().join(", ")),
        Expectation::Matches(re) => format!("matches /{re}/"),
        Expectation::Contains(v) => format!("contains {}", compact(v)),
        Expectation::AtLeast(v) => format!("is at least {}", text(v)),
        Expectation::Absent(true) | Expectation::Present(false) => return format!("{} is absent", condition.path),
        Expectation::Absent(false) | Expectation::Present(true) => return format!("{} is set", condition.path),
    };
    match &condition.label {
        // A label names the value already; "every" would read oddly before it.
        Some(label) if !condition.any => format!("{label} {what}"),
        Some(label) => format!("one of {label} {what}"),
        None => format!("{quantifier} {} {what}", condition.path),
    }
}

pub fn evaluate(document: &Value, condition: &FieldCondition) -> Finding {
    let expected = describe(condition);
    let matches: Vec<&Value> = match document.query(&condition.path) {
        Ok(found) => found.into_iter().filter(|v| !v.is_null()).collect(),
        Err(err) => return Finding::error(format!("bad path {}: {err}", condition.path), expected),
    };
    let absence_wanted = matches!(condition.expect, Expectation::Absent(_) | Expectation::Present(_));
    let shown = || {
        let values = matches.iter().map(|v| compact(v)).collect::<Vec<_>>().join(", ");
        match (&condition.label, matches.is_empty()) {
            (Some(label), true) if absence_wanted => format!("no {label}"),
            (Some(label), true) => format!("{label}: not set"),
            (Some(label), false) => format!("{label}: {values}"),
            (None, true) => format!("{} not set", condition.path),
            (None, false) => format!("{} = {values}", condition.path),
        }
    };
    let wants_absent = match condition.expect {
        Expectation::Absent(absent) => Some(absent),
        Expectation::Present(present) => Some(!present),
        _ => None,
    };
    if let Some(absent) = wants_absent {
        return Finding::passed_if(matches.is_empty() == absent, shown(), expected);
    }
    if matches.is_empty() {
        return Finding::fail(shown(), expected);
    }
    let test = |value: &Value| -> Result<bool, String> {
        Ok(match &condition.expect {
            Expectation::Equals(want) => same(value, want),
            Expectation::OneOf(wants) => wants.iter().any(|w| same(value, w)),
            Expectation::Matches(pattern) => {
                let re = Regex::new(pattern).map_err(|e| format!("bad pattern /{pattern}/: {e}"))?;
                re.is_match(&text(value))
            }
            Expectation::Contains(item) => match value {
                Value::Array(items) => items.iter().any(|i| same(i, item)),
                other => text(other).contains(&text(item)),
            },
            Expectation::AtLeast(bound) => {
                let bound = number(bound).ok_or_else(|| format!("at-least needs a number, got {}", compact(bound)))?;
                number(value).is_some_and(|n| n >= bound)
            }
            Expectation::Absent(_) | Expectation::Present(_) => unreachable!("handled above"),
        })
    };
    let mut results = Vec::with_capacity(matches.len());
    for value in &matches {
        match test(value) {
            Ok(ok) => results.push(ok),
            Err(message) => return Finding::error(message, expected),
        }
    }
    let ok = if condition.any { results.iter().any(|r| *r) } else { results.iter().all(|r| *r) };
    Finding::passed_if(ok, shown(), expected)
}

/// Equal as data, except that scalars compare by their text (YAML `true` vs `"true"`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => a == b,
        _ => text(a) == text(b),
    }
}

/// A number, or text that reads as one (a rendered template); anything else is not a number.
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn compact(value: &Value) -> String {
    let shown = match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    if shown.chars().count() > 120 { format!("{}…", shown.chars().take(117).collect::<String>()) } else { shown }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Outcome;
    use serde_json::json;

    fn cond(path: &str, expect: Expectation, any: bool) -> FieldCondition {
        FieldCondition { path: path.into(), label: None, expect, any }
    }

    #[test]
    fn a_label_says_in_words_what_a_filter_path_selects() {
        let pod = json!({"spec": {"containers": [{"name": "app"}, {"name": "sidecar", "securityContext": {"allowPrivilegeEscalation": false}}]}});
        let mut condition = cond(
            "$.spec.containers[?@.securityContext.allowPrivilegeEscalation != false].name",
            Expectation::Absent(true),
            false,
        );
        condition.label = Some("containers that allow privilege escalation".into());
        let finding = evaluate(&pod, &condition);
        assert_eq!(finding.outcome, Outcome::Fail);
        assert_eq!(finding.observed, r#"containers that allow privilege escalation: "app""#);
        assert_eq!(finding.expected, "no containers that allow privilege escalation");
        let hardened =
            json!({"spec": {"containers": [{"name": "app", "securityContext": {"allowPrivilegeEscalation": false}}]}});
        assert_eq!(evaluate(&hardened, &condition).observed, "no containers that allow privilege escalation");
        let mut profile =
            cond("$.spec.securityContext.seccompProfile.type", Expectation::Equals(json!("RuntimeDefault")), false);
        profile.label = Some("the pod's seccomp profile".into());
        let finding = evaluate(&pod, &profile);
        assert_eq!(
            (finding.observed.as_str(), finding.expected.as_str()),
            ("the pod's seccomp profile: not set", r#"the pod's seccomp profile equals "RuntimeDefault""#)
        );
    }

    #[test]
    fn every_match_must_hold_unless_any() {
        let pod = json!({"spec": {"containers": [{"image": "registry.local/a"}, {"image": "docker.io/b"}]}});
        let re = Expectation::Matches("^registry\\.local/".into());
        assert_eq!(evaluate(&pod, &cond("$.spec.containers[*].image", re.clone(), false)).outcome, Outcome::Fail);
        assert_eq!(evaluate(&pod, &cond("$.spec.containers[*].image", re, true)).outcome, Outcome::Pass);
    }

    #[test]
    fn scalars_compare_by_text_and_missing_fails() {
        let doc = json!({"a": true, "n": 3});
        assert_eq!(evaluate(&doc, &cond("$.a", Expectation::Equals(json!("true")), false)).outcome, Outcome::Pass);
        assert_eq!(
            evaluate(&doc, &cond("$.n", Expectation::OneOf(vec![json!(1), json!(3)]), false)).outcome,
            Outcome::Pass
        );
        let missing = evaluate(&doc, &cond("$.b", Expectation::Equals(json!(false)), false));
        assert_eq!(missing.outcome, Outcome::Fail);
        assert!(missing.observed.contains("not set"), "{}", missing.observed);
        assert_eq!(evaluate(&doc, &cond("$.b", Expectation::Absent(true), false)).outcome, Outcome::Pass);
        assert_eq!(evaluate(&doc, &cond("$.a", Expectation::Present(true), false)).outcome, Outcome::Pass);
    }

    #[test]
    fn contains_works_on_lists_and_text() {
        let doc = json!({"verbs": ["get", "list"], "s": "Node,RBAC"});
        assert_eq!(
            evaluate(&doc, &cond("$.verbs", Expectation::Contains(json!("list")), false)).outcome,
            Outcome::Pass
        );
        assert_eq!(
            evaluate(&doc, &cond("$.verbs", Expectation::Contains(json!("delete")), false)).outcome,
            Outcome::Fail
        );
        assert_eq!(evaluate(&doc, &cond("$.s", Expectation::Contains(json!("RBAC")), false)).outcome, Outcome::Pass);
    }

    #[test]
    fn bad_pattern_is_an_error_not_a_fail() {
        let doc = json!({"a": "x"});
        assert_eq!(evaluate(&doc, &cond("$.a", Expectation::Matches("(".into()), false)).outcome, Outcome::Error);
    }
}

#[cfg(test)]
mod at_least_tests {
    use super::*;
    use crate::check::Outcome;
    use serde_json::json;

    fn at_least(path: &str, bound: Value) -> FieldCondition {
        FieldCondition { path: path.into(), label: None, expect: Expectation::AtLeast(bound), any: false }
    }

    #[test]
    fn at_least_compares_numbers_and_rendered_numbers_and_never_text() {
        let report = json!([{"score": 5}, {"score": "7"}]);
        assert_eq!(evaluate(&report, &at_least("$[0].score", json!(5))).outcome, Outcome::Pass);
        assert_eq!(evaluate(&report, &at_least("$[0].score", json!("5"))).outcome, Outcome::Pass);
        assert_eq!(evaluate(&report, &at_least("$[0].score", json!(6))).outcome, Outcome::Fail);
        // Every match must reach the bound.
        let fail = evaluate(&report, &at_least("$[*].score", json!(6)));
        assert_eq!(fail.outcome, Outcome::Fail, "{fail:?}");
        assert_eq!(fail.expected, "every $[*].score is at least 6");
        assert_eq!(evaluate(&json!({"score": -39}), &at_least("$.score", json!(0))).outcome, Outcome::Fail);
        assert_eq!(evaluate(&json!({"score": "high"}), &at_least("$.score", json!(0))).outcome, Outcome::Fail);
        assert_eq!(evaluate(&json!({}), &at_least("$.score", json!(0))).outcome, Outcome::Fail);
        let bad = evaluate(&report, &at_least("$[0].score", json!("five")));
        assert_eq!(bad.outcome, Outcome::Error, "{bad:?}");
    }
}
