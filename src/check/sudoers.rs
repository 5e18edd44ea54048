//! A sudoers file's user specifications as data: one grant per user, host, run-as user and
//! command, with aliases expanded and the run-as list and tags carried along a command list as
//! sudo carries them.
//!
//! `deploy ALL=(ALL) NOPASSWD: /usr/bin/systemctl restart kubelet, /usr/bin/journalctl` gives
//! two grants for `deploy`, both run as `ALL` and NOPASSWD. A check that deploy may run one
//! command and nothing else reads `$.grants[?@.user == 'deploy'].command`.
//!
//! Not modelled: `Defaults` (listed, not interpreted), `#include`/`@include` (listed, not
//! followed), several `host = commands` parts joined by `:` on one line (only the first is read),
//! and per-command options such as `CWD=` (skipped).

use std::collections::BTreeMap;

use serde_json::{Value, json};

const TAGS: [&str; 14] = [
    "NOPASSWD",
    "PASSWD",
    "NOEXEC",
    "EXEC",
    "SETENV",
    "NOSETENV",
    "LOG_INPUT",
    "NOLOG_INPUT",
    "LOG_OUTPUT",
    "NOLOG_OUTPUT",
    "MAIL",
    "NOMAIL",
    "FOLLOW",
    "NOFOLLOW",
];

/// Per-command options sudo takes before a command; skipped.
const OPTIONS: [&str; 7] = ["CWD=", "CHROOT=", "ROLE=", "TYPE=", "NOTBEFORE=", "NOTAFTER=", "TIMEOUT="];

/// A tag by its positive name, and whether it is on: `NOPASSWD` is PASSWD off.
fn tag(word: &str) -> Option<(&'static str, bool)> {
    let known = *TAGS.iter().find(|t| **t == word)?;
    match known.strip_prefix("NO") {
        Some(positive) if TAGS.contains(&positive) => Some((positive, false)),
        _ => Some((known, true)),
    }
}

/// Joins continued lines and drops comments (a `#` followed by a digit is a uid, not one).
fn logical_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for raw in text.lines() {
        let line = strip_comment(raw);
        if let Some(head) = line.trim_end().strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        current.push_str(&line);
        let done = std::mem::take(&mut current);
        if !done.trim().is_empty() {
            lines.push(done.trim().to_string());
        }
    }
    if !current.trim().is_empty() {
        lines.push(current.trim().to_string());
    }
    lines
}

fn strip_comment(line: &str) -> String {
    let trimmed = line.trim_start();
    if trimmed.starts_with("#include") {
        return trimmed.to_string();
    }
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'#' && !(i > 0 && bytes[i - 1] == b'\\') && !bytes.get(i + 1).is_some_and(|n| n.is_ascii_digit()) {
            return line[..i].to_string();
        }
    }
    line.to_string()
}

/// Splits on commas that are not escaped with a backslash; items trimmed.
fn split_list(text: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&',') => {
                current.push(',');
                chars.next();
            }
            ',' => items.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    items.push(current);
    items.into_iter().map(|i| i.trim().to_string()).filter(|i| !i.is_empty()).collect()
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Default)]
struct Aliases {
    user: BTreeMap<String, Vec<String>>,
    runas: BTreeMap<String, Vec<String>>,
    host: BTreeMap<String, Vec<String>>,
    cmnd: BTreeMap<String, Vec<String>>,
}

/// Expands alias names (recursively, with a bound against loops) in a list.
fn expand(items: &[String], table: &BTreeMap<String, Vec<String>>, depth: usize) -> Vec<String> {
    let mut out = Vec::new();
    for item in items {
        let (negated, name) = match item.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, item.as_str()),
        };
        match table.get(name) {
            Some(members) if depth < 8 => {
                for m in expand(members, table, depth + 1) {
                    // A negated alias negates each member (a double negation cancels).
                    out.push(match (negated, m.strip_prefix('!')) {
                        (true, Some(rest)) => rest.to_string(),
                        (true, None) => format!("!{m}"),
                        (false, _) => m,
                    });
                }
            }
            _ => out.push(item.clone()),
        }
    }
    out
}

pub fn parse(text: &str) -> Value {
    let mut aliases = Aliases::default();
    let mut defaults = Vec::new();
    let mut includes = Vec::new();
    let mut specs: Vec<(Vec<String>, Vec<String>, String)> = Vec::new();
    let mut problems = Vec::new();
    for line in logical_lines(text) {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.starts_with("Defaults") {
            defaults.push(line.clone());
            continue;
        }
        if matches!(first, "#include" | "#includedir" | "@include" | "@includedir") {
            includes.push(line.clone());
            continue;
        }
        let table = match first {
            "User_Alias" => Some(&mut aliases.user),
            "Runas_Alias" => Some(&mut aliases.runas),
            "Host_Alias" => Some(&mut aliases.host),
            "Cmnd_Alias" | "Cmd_Alias" => Some(&mut aliases.cmnd),
            _ => None,
        };
        if let Some(table) = table {
            // NAME = members [: NAME = members]...
            for part in line[first.len()..].split(':') {
                if let Some((name, members)) = part.split_once('=') {
                    table.insert(name.trim().to_string(), split_list(members));
                }
            }
            continue;
        }
        let Some((who, commands)) = line.split_once('=') else {
            problems.push(format!("not a user specification: {line}"));
            continue;
        };
        // Users are a comma list (spaces allowed after commas), then the host list.
        let who = who.replace(", ", ",").replace(" ,", ",");
        let mut parts = who.split_whitespace();
        let (Some(users), Some(hosts)) = (parts.next(), parts.next()) else {
            problems.push(format!("no user and host before '=': {line}"));
            continue;
        };
        // A second `host = commands` part: only the first is read.
        let commands = match commands.find(" : ") {
            Some(i) if commands[i + 3..].contains('=') => &commands[..i],
            _ => commands,
        };
        specs.push((split_list(users), split_list(hosts), commands.to_string()));
    }

    let mut grants = Vec::new();
    for (users, hosts, commands) in specs {
        let users = expand(&users, &aliases.user, 0);
        let hosts = expand(&hosts, &aliases.host, 0);
        let mut runas_users = vec!["root".to_string()];
        let mut runas_groups: Vec<String> = Vec::new();
        let mut tags: BTreeMap<&str, bool> = BTreeMap::new();
        for item in split_list(&commands) {
            let mut rest = item.as_str();
            if let Some(after) = rest.strip_prefix('(')
                && let Some((spec, tail)) = after.split_once(')')
            {
                let (u, g) = spec.split_once(':').unwrap_or((spec, ""));
                runas_users = expand(&split_list(u), &aliases.runas, 0);
                runas_groups = expand(&split_list(g), &aliases.runas, 0);
                // `(:group)` runs as the invoking user with another group.
                if runas_users.is_empty() && !runas_groups.is_empty() {
                    runas_users = vec!["(self)".to_string()];
                } else if runas_users.is_empty() {
                    runas_users = vec!["root".to_string()];
                }
                rest = tail.trim_start();
            }
            // Tags (`NOPASSWD:`, also written without the space) and options (`CWD=/tmp`).
            loop {
                let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                let word = &rest[..word_end];
                if let Some((name, _)) = word.split_once(':')
                    && let Some((tag, on)) = tag(name)
                {
                    tags.insert(tag, on);
                    rest = rest[name.len() + 1..].trim_start();
                } else if OPTIONS.iter().any(|o| word.starts_with(o)) {
                    rest = rest[word_end..].trim_start();
                } else {
                    break;
                }
            }
            let nopasswd = tags.get("PASSWD").is_some_and(|on| !on);
            let tag_list: Vec<String> =
                tags.iter().map(|(name, on)| if *on { name.to_string() } else { format!("NO{name}") }).collect();
            for command in expand(&[collapse(rest)], &aliases.cmnd, 0) {
                let (negated, command) = match command.strip_prefix('!') {
                    Some(c) => (true, collapse(c)),
                    None => (false, collapse(&command)),
                };
                for user in &users {
                    for host in &hosts {
                        for runas in &runas_users {
                            grants.push(json!({
                                "user": user,
                                "host": host,
                                "runas_user": runas,
                                "runas_groups": runas_groups,
                                "command": command,
                                "negated": negated,
                                "nopasswd": nopasswd,
                                "tags": tag_list,
                            }));
                        }
                    }
                }
            }
        }
    }
    json!({"grants": grants, "defaults": defaults, "includes": includes, "problems": problems})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(text: &str) -> Vec<(String, String, String, bool)> {
        parse(text)["grants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g["user"].as_str().unwrap().to_string(),
                    g["runas_user"].as_str().unwrap().to_string(),
                    g["command"].as_str().unwrap().to_string(),
                    g["nopasswd"].as_bool().unwrap(),
                )
            })
            .collect()
    }

    fn one(user: &str, runas: &str, command: &str, nopasswd: bool) -> (String, String, String, bool) {
        (user.into(), runas.into(), command.into(), nopasswd)
    }

    #[test]
    fn the_broad_rule() {
        assert_eq!(grants("deploy ALL=(ALL) NOPASSWD: ALL\n"), [one("deploy", "ALL", "ALL", true)]);
        assert_eq!(grants("deploy ALL=(ALL:ALL) ALL"), [one("deploy", "ALL", "ALL", false)]);
    }

    #[test]
    fn every_spelling_of_one_narrow_command() {
        let want = [one("deploy", "root", "/usr/bin/systemctl restart kubelet", true)];
        for text in [
            "deploy ALL=(root) NOPASSWD: /usr/bin/systemctl restart kubelet",
            "deploy ALL = NOPASSWD:/usr/bin/systemctl   restart kubelet",
            "deploy\tALL=(root)\\\n    NOPASSWD: /usr/bin/systemctl restart kubelet # only this\n",
            "Cmnd_Alias KUBELET = /usr/bin/systemctl restart kubelet\ndeploy ALL=NOPASSWD: KUBELET",
            "User_Alias OPS = deploy\nOPS ALL=(root) NOPASSWD: /usr/bin/systemctl restart kubelet",
            "Defaults:deploy !requiretty\ndeploy ALL=(root) NOPASSWD: /usr/bin/systemctl restart kubelet",
        ] {
            assert_eq!(grants(text), want, "{text}");
        }
    }

    #[test]
    fn near_misses_keep_more() {
        // Any arguments to systemctl, another run-as user, a second command.
        assert_eq!(
            grants("deploy ALL=(root) NOPASSWD: /usr/bin/systemctl"),
            [one("deploy", "root", "/usr/bin/systemctl", true)]
        );
        assert_eq!(
            grants("deploy ALL=(ALL) NOPASSWD: /usr/bin/systemctl restart kubelet"),
            [one("deploy", "ALL", "/usr/bin/systemctl restart kubelet", true)]
        );
        assert_eq!(grants("deploy ALL=(root) NOPASSWD: /usr/bin/systemctl restart kubelet, /bin/bash").len(), 2);
        // A blacklist next to ALL still grants ALL.
        let g = parse("deploy ALL=(ALL) NOPASSWD: ALL, !/bin/bash");
        assert_eq!(g["grants"][0]["command"], "ALL");
        assert_eq!(g["grants"][1]["negated"], true);
    }

    #[test]
    fn run_as_and_tags_carry_along_the_list() {
        assert_eq!(
            grants("ops ALL=(www) NOPASSWD: /bin/a, PASSWD: /bin/b, (root) /bin/c"),
            [
                one("ops", "www", "/bin/a", true),
                one("ops", "www", "/bin/b", false),
                one("ops", "root", "/bin/c", false)
            ]
        );
    }

    #[test]
    fn lists_and_escapes() {
        let g = grants("alice, bob ALL=(root) /usr/bin/printf a\\,b");
        assert_eq!(
            g,
            [one("alice", "root", "/usr/bin/printf a,b", false), one("bob", "root", "/usr/bin/printf a,b", false)]
        );
        assert_eq!(grants("%admin ALL=(ALL) ALL")[0].0, "%admin");
        assert_eq!(grants("#1001 ALL=(root) /bin/true")[0].0, "#1001");
        assert!(grants("# deploy ALL=(ALL) NOPASSWD: ALL\n").is_empty());
    }
}
