//! A Dockerfile as data: parsed with the `dockerfile-parser` crate (instructions, line
//! continuations, exec and shell forms, ARG substitution in FROM), then each stage's RUN
//! commands read as shell so that package installs and cache cleanups are found however they
//! are written.
//!
//! The document has `stages` (in order) and `final`, the stage a plain `docker build` produces.
//! Each stage has:
//! - `base`: `text` as written after substitution, `repository` (Docker Hub's `library/` and
//!   registry name dropped), `tag`, `digest`, `pinned` (a tag other than `latest`, or a
//!   digest), `stage` (the earlier stage it builds on, if any);
//! - `user`: the user the image runs as (`USER` in it or in the stage it builds on; none means
//!   root), with `name` (before any `:group`) and `non_root`;
//! - `runs`: each RUN's `command`, `form`, `installs` (packages), `updates` (it refreshes
//!   package lists), `cleans_cache` (it removes what the package manager downloaded: apt's
//!   lists, `apk --no-cache`, dnf/yum's cache) in that same RUN;
//! - `installed`: every package this stage's RUNs, and those of the stages it builds on,
//!   install.
//!
//! What gets into an image is decided per layer, so `cleans_cache` is per RUN: a later RUN that
//! deletes the lists leaves them in the earlier layer.

use std::collections::HashMap;

use dockerfile_parser::{Dockerfile, Instruction, ShellOrExecExpr};
use serde_json::{Value, json};

pub fn parse(text: &str) -> Result<Value, String> {
    let dockerfile = Dockerfile::parse(text).map_err(|e| e.to_string())?;
    let mut global_args: HashMap<String, String> = HashMap::new();
    for arg in &dockerfile.global_args {
        if let Some(value) = &arg.value {
            global_args.insert(arg.name.as_ref().to_string(), unquote(value.as_ref()));
        }
    }
    let mut stages: Vec<Value> = Vec::new();
    let mut names: Vec<Option<String>> = Vec::new();
    let mut current: Option<StageBuilder> = None;
    let mut started = false;
    for instruction in &dockerfile.instructions {
        match instruction {
            Instruction::From(from) => {
                started = true;
                if let Some(done) = current.take() {
                    stages.push(done.finish());
                }
                let written = from.image.as_ref().to_string();
                let text = substitute(&written, &global_args);
                let alias = from.alias.as_ref().map(|a| a.as_ref().to_ascii_lowercase());
                let parent = names.iter().position(|n| n.as_deref() == Some(text.to_ascii_lowercase().as_str()));
                let parent = parent.or_else(|| text.parse::<usize>().ok().filter(|i| *i < stages.len()));
                let mut builder = StageBuilder::new(stages.len(), alias.clone(), base(&text, parent));
                if let Some(p) = parent {
                    builder.user = stages[p]["user"]["raw"].as_str().map(String::from);
                    builder.installed = stages[p]["installed"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|v| v.as_str())
                        .map(String::from)
                        .collect();
                }
                builder.vars = global_args.clone();
                names.push(alias);
                current = Some(builder);
            }
            _ if !started => {}
            Instruction::Arg(arg) => {
                if let Some(stage) = current.as_mut() {
                    let name = arg.name.as_ref().to_string();
                    match &arg.value {
                        Some(v) => {
                            stage.vars.insert(name, unquote(v.as_ref()));
                        }
                        // `ARG NAME` alone brings a global default into the stage.
                        None => {
                            if let Some(v) = global_args.get(&name) {
                                stage.vars.insert(name, v.clone());
                            }
                        }
                    }
                }
            }
            Instruction::Env(env) => {
                if let Some(stage) = current.as_mut() {
                    for var in &env.vars {
                        let value = substitute(&unquote(&var.value.to_string()), &stage.vars);
                        stage.vars.insert(var.key.as_ref().to_string(), value);
                    }
                }
            }
            Instruction::Run(run) => {
                if let Some(stage) = current.as_mut() {
                    let (form, command) = match &run.expr {
                        ShellOrExecExpr::Shell(s) => ("shell", s.to_string()),
                        ShellOrExecExpr::Exec(a) => {
                            let argv: Vec<&str> = a.as_str_vec();
                            // ["sh", "-c", "..."] is a shell line too.
                            match argv.as_slice() {
                                [sh, c, line, ..] if is_shell(sh) && *c == "-c" => ("exec", line.to_string()),
                                _ => ("exec", argv.iter().map(|s| shell_quote(s)).collect::<Vec<_>>().join(" ")),
                            }
                        }
                    };
                    stage.add_run(form, command);
                }
            }
            Instruction::Misc(misc) if misc.instruction.as_ref().eq_ignore_ascii_case("user") => {
                if let Some(stage) = current.as_mut() {
                    let raw = misc.arguments.to_string().trim().to_string();
                    stage.user = Some(substitute(&unquote(&raw), &stage.vars));
                }
            }
            _ => {}
        }
    }
    if let Some(done) = current.take() {
        stages.push(done.finish());
    }
    let Some(last) = stages.last().cloned() else {
        return Err("no FROM instruction".into());
    };
    Ok(json!({"stages": stages, "final": last}))
}

struct StageBuilder {
    index: usize,
    name: Option<String>,
    base: Value,
    user: Option<String>,
    runs: Vec<Value>,
    installed: Vec<String>,
    vars: HashMap<String, String>,
}

impl StageBuilder {
    fn new(index: usize, name: Option<String>, base: Value) -> Self {
        StageBuilder { index, name, base, user: None, runs: Vec::new(), installed: Vec::new(), vars: HashMap::new() }
    }

    fn add_run(&mut self, form: &str, command: String) {
        let facts = shell_facts(&command);
        for p in &facts.installs {
            if !self.installed.contains(p) {
                self.installed.push(p.clone());
            }
        }
        self.runs.push(json!({
            "command": command.split_whitespace().collect::<Vec<_>>().join(" "),
            "form": form,
            "installs": facts.installs,
            "updates": facts.updates,
            "cleans_cache": facts.cleans_cache,
        }));
    }

    fn finish(self) -> Value {
        let user = match &self.user {
            None => json!({"raw": null, "name": "root", "non_root": false}),
            Some(raw) => {
                let name = raw.split(':').next().unwrap_or("").trim().to_string();
                let non_root = !name.is_empty() && name != "root" && !name.trim_start_matches('0').is_empty();
                json!({"raw": raw, "name": name, "non_root": non_root})
            }
        };
        json!({
            "index": self.index,
            "name": self.name,
            "base": self.base,
            "user": user,
            "runs": self.runs,
            "installed": self.installed,
        })
    }
}

fn is_shell(program: &str) -> bool {
    matches!(program.rsplit('/').next(), Some("sh" | "bash" | "dash" | "ash"))
}

fn shell_quote(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:+@%,*".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return s[1..s.len() - 1].to_string();
        }
    }
    s.to_string()
}

/// `$NAME`, `${NAME}`, `${NAME:-default}` as the builder substitutes them; unknown names become
/// empty, as they do in a build without `--build-arg`.
pub fn substitute(text: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && chars.get(i + 1) == Some(&'$') {
            out.push('$');
            i += 2;
            continue;
        }
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        if chars.get(i + 1) == Some(&'{') {
            let Some(end) = chars[i + 2..].iter().position(|c| *c == '}') else {
                out.push(c);
                i += 1;
                continue;
            };
            let inner: String = chars[i + 2..i + 2 + end].iter().collect();
            let (name, modifier) = match inner.find(':') {
                Some(p) => (&inner[..p], Some(&inner[p..])),
                None => (inner.as_str(), None),
            };
            let value = vars.get(name).filter(|v| !v.is_empty());
            out.push_str(&match (value, modifier) {
                (Some(_), Some(m)) if m.starts_with(":+") => m[2..].to_string(),
                (Some(v), _) => v.clone(),
                (None, Some(m)) if m.starts_with(":-") => m[2..].to_string(),
                (None, _) => String::new(),
            });
            i += 3 + end;
        } else {
            let name: String = chars[i + 1..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == '_').collect();
            if name.is_empty() {
                out.push(c);
                i += 1;
                continue;
            }
            out.push_str(vars.get(&name).map(String::as_str).unwrap_or(""));
            i += 1 + name.len();
        }
    }
    out
}

/// A base image reference as data.
fn base(text: &str, stage: Option<usize>) -> Value {
    if let Some(index) = stage {
        return json!({"text": text, "stage": index, "repository": null, "tag": null, "digest": null, "pinned": true});
    }
    let (rest, digest) = match text.split_once('@') {
        Some((r, d)) => (r, Some(d.to_string())),
        None => (text, None),
    };
    // A tag follows the last ':' after the last '/' (a registry may have a port).
    let slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (path, tag) = match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], Some(rest[slash + i + 1..].to_string())),
        None => (rest, None),
    };
    let mut parts: Vec<&str> = path.split('/').collect();
    if parts.len() > 1 && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost") {
        let registry = parts.remove(0);
        if !matches!(registry, "docker.io" | "index.docker.io" | "registry-1.docker.io") {
            parts.insert(0, registry);
        }
    }
    if parts.len() == 2 && parts[0] == "library" {
        parts.remove(0);
    }
    let repository = parts.join("/").to_ascii_lowercase();
    let pinned = digest.is_some() || tag.as_deref().is_some_and(|t| t != "latest" && !t.is_empty());
    json!({"text": text, "stage": null, "repository": repository, "tag": tag, "digest": digest, "pinned": pinned})
}

#[derive(Debug, Default, PartialEq)]
pub struct ShellFacts {
    pub installs: Vec<String>,
    pub updates: bool,
    pub cleans_cache: bool,
}

/// Splits a shell line into simple commands (quotes kept together, `&&`, `||`, `;`, `|`, `&`
/// and newlines between them), each as its words.
pub fn simple_commands(line: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    let end_word = |words: &mut Vec<String>, word: &mut String, in_word: &mut bool| {
        if *in_word {
            words.push(std::mem::take(word));
            *in_word = false;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    word.push(c);
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(n) = chars.next() {
                                word.push(n);
                            }
                        }
                        _ => word.push(c),
                    }
                }
            }
            '\\' => {
                if let Some(n) = chars.next()
                    && n != '\n'
                {
                    word.push(n);
                    in_word = true;
                }
            }
            '#' if !in_word => {
                // A comment runs to the end of the line.
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                end_word(&mut words, &mut word, &mut in_word);
                if !words.is_empty() {
                    commands.push(std::mem::take(&mut words));
                }
            }
            ';' | '&' | '|' | '\n' | '(' | ')' | '{' | '}' if !(matches!(c, '{' | '}') && in_word) => {
                end_word(&mut words, &mut word, &mut in_word);
                if !words.is_empty() {
                    commands.push(std::mem::take(&mut words));
                }
            }
            c if c.is_whitespace() => end_word(&mut words, &mut word, &mut in_word),
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    end_word(&mut words, &mut word, &mut in_word);
    if !words.is_empty() {
        commands.push(words);
    }
    commands
}

/// Options of package managers that take a value as the next word.
const VALUE_OPTIONS: [&str; 8] =
    ["-o", "-t", "--option", "--target-release", "-c", "--config-file", "--repository", "-X"];

/// What the commands of one RUN do to packages.
pub fn shell_facts(line: &str) -> ShellFacts {
    let mut facts = ShellFacts::default();
    for words in simple_commands(line) {
        // Leading variable assignments and wrappers do not change the program.
        let mut words: &[String] = &words;
        while let Some((first, rest)) = words.split_first() {
            let is_assignment = first.contains('=') && !first.starts_with('-') && !first.starts_with('/');
            if is_assignment || matches!(first.as_str(), "sudo" | "env" | "exec" | "command" | "nice" | "time") {
                words = rest;
            } else {
                break;
            }
        }
        let Some((program, args)) = words.split_first() else { continue };
        let program = program.rsplit('/').next().unwrap_or(program);
        let (options, operands) = split_options(args);
        let sub = operands.first().map(String::as_str);
        match program {
            "apt-get" | "apt" | "aptitude" => match sub {
                Some("install") => facts.installs.extend(packages(&operands[1..])),
                Some("update") => facts.updates = true,
                _ => {}
            },
            "apk" => match sub {
                Some("add") => {
                    facts.installs.extend(packages(&operands[1..]));
                    if options.iter().any(|o| o == "--no-cache") {
                        facts.cleans_cache = true;
                    }
                }
                Some("update") => facts.updates = true,
                Some("cache") if operands.get(1).is_some_and(|s| s == "clean" || s == "purge") => {
                    facts.cleans_cache = true
                }
                _ => {}
            },
            "dnf" | "yum" | "microdnf" | "tdnf" => match sub {
                Some("install") => facts.installs.extend(packages(&operands[1..])),
                Some("makecache") => facts.updates = true,
                Some("clean") if operands.get(1).is_some_and(|s| s == "all" || s == "packages" || s == "metadata") => {
                    facts.cleans_cache = true
                }
                _ => {}
            },
            "rm" => {
                let recursive = options.iter().any(|o| {
                    o == "--recursive"
                        || (o.starts_with('-') && !o.starts_with("--") && (o.contains('r') || o.contains('R')))
                });
                let cache_dirs = ["/var/lib/apt/lists", "/var/cache/apk", "/var/cache/dnf", "/var/cache/yum"];
                if recursive
                    && operands.iter().any(|p| {
                        let p = p.trim_end_matches(['*', '/']);
                        cache_dirs.contains(&p)
                    })
                {
                    facts.cleans_cache = true;
                }
            }
            _ => {}
        }
    }
    facts
}

/// Options and operands of a command line (`--opt=value`, `-y`, and `-o value` pairs).
fn split_options(args: &[String]) -> (Vec<String>, Vec<String>) {
    let mut options = Vec::new();
    let mut operands = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg.starts_with('-') && arg.len() > 1 {
            options.push(arg.clone());
            if VALUE_OPTIONS.contains(&arg.as_str())
                && let Some(value) = iter.next()
            {
                options.push(value.clone());
            }
        } else {
            operands.push(arg.clone());
        }
    }
    (options, operands)
}

/// Package names without versions (`curl=8.5.0-2`), architectures (`curl:amd64`) or releases
/// (`curl/bookworm-backports`).
fn packages(operands: &[String]) -> Vec<String> {
    operands
        .iter()
        .map(|p| p.split(['=', ':', '/']).next().unwrap_or(p).to_ascii_lowercase())
        .filter(|p| !p.is_empty() && !p.starts_with('$'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn final_of(text: &str) -> Value {
        parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"))["final"].clone()
    }

    #[test]
    fn base_references() {
        for (text, repo, tag, pinned) in [
            ("FROM debian:12.8-slim", "debian", Some("12.8-slim"), true),
            ("FROM docker.io/library/debian:12.8-slim", "debian", Some("12.8-slim"), true),
            ("FROM debian", "debian", None, false),
            ("FROM debian:latest", "debian", None::<&str>.or(Some("latest")), false),
            (
                "FROM registry.example:5000/team/debian:12.8-slim AS run",
                "registry.example:5000/team/debian",
                Some("12.8-slim"),
                true,
            ),
        ] {
            let f = final_of(text);
            assert_eq!(f["base"]["repository"], repo, "{text}");
            assert_eq!(f["base"]["tag"].as_str(), tag, "{text}");
            assert_eq!(f["base"]["pinned"], pinned, "{text}");
        }
        let digest = format!("sha256:{}", "a".repeat(64));
        let f = final_of(&format!("FROM debian:12.8-slim@{digest}"));
        assert_eq!(
            (f["base"]["tag"].as_str(), f["base"]["digest"].as_str()),
            (Some("12.8-slim"), Some(digest.as_str()))
        );
        let f = final_of(&format!("FROM debian@{digest}"));
        assert_eq!(f["base"]["pinned"], true);
        assert_eq!(f["base"]["tag"], Value::Null);
    }

    #[test]
    fn arg_substituted_base() {
        let f = final_of("ARG DEBIAN=12.8\nARG FLAVOUR=slim\nFROM debian:${DEBIAN}-$FLAVOUR\n");
        assert_eq!(f["base"]["tag"], "12.8-slim");
        let f = final_of("ARG TAG\nFROM debian:${TAG:-12.8-slim}\n");
        assert_eq!(f["base"]["tag"], "12.8-slim");
    }

    #[test]
    fn users() {
        for (text, name, non_root) in [
            ("FROM debian:12.8-slim\nUSER app", "app", true),
            ("FROM debian:12.8-slim\nUSER 10001:10001", "10001", true),
            ("FROM debian:12.8-slim\nUSER app:root", "app", true),
            ("FROM debian:12.8-slim\nARG UID=10001\nUSER ${UID}", "10001", true),
            ("FROM debian:12.8-slim\nENV APP_USER=svc\nUSER $APP_USER", "svc", true),
            ("FROM debian:12.8-slim", "root", false),
            ("FROM debian:12.8-slim\nUSER root", "root", false),
            ("FROM debian:12.8-slim\nUSER 0", "0", false),
            ("FROM debian:12.8-slim\nUSER 0:0", "0", false),
            ("FROM debian:12.8-slim\nUSER 000", "000", false),
            ("FROM debian:12.8-slim\nUSER app\nUSER root", "root", false),
        ] {
            let f = final_of(text);
            assert_eq!(
                (f["user"]["name"].as_str().unwrap(), f["user"]["non_root"].as_bool().unwrap()),
                (name, non_root),
                "{text}"
            );
        }
        // The final stage inherits the user of the stage it builds on, and only that.
        let f = final_of("FROM debian:12.8-slim AS base\nUSER app\nFROM base\nRUN true\n");
        assert_eq!(f["user"]["non_root"], true);
        let f = final_of("FROM debian:12.8-slim AS build\nUSER app\nFROM debian:12.8-slim\n");
        assert_eq!(f["user"]["non_root"], false);
    }

    fn facts(line: &str) -> (Vec<String>, bool, bool) {
        let f = shell_facts(line);
        (f.installs, f.updates, f.cleans_cache)
    }

    #[test]
    fn installs_and_cleanups_in_any_spelling() {
        let want = (vec!["python3".to_string(), "ca-certificates".to_string()], true, true);
        for line in [
            "apt-get update && apt-get install -y python3 ca-certificates && rm -rf /var/lib/apt/lists/*",
            "apt-get update \\\n && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 ca-certificates \\\n && rm -rf /var/lib/apt/lists",
            "set -eux; apt-get update; apt-get -y -o Dpkg::Options::=--force-confnew install python3=3.11.2-1+b1 ca-certificates; apt-get clean; rm -fr /var/lib/apt/lists/",
            "apt update && apt install -y python3 ca-certificates && rm -Rf /var/lib/apt/lists/* # tidy",
        ] {
            assert_eq!(facts(line), want, "{line}");
        }
        assert_eq!(facts("apk add --no-cache python3"), (vec!["python3".to_string()], false, true));
    }

    #[test]
    fn near_misses() {
        // apt-get clean leaves the lists.
        assert!(!facts("apt-get update && apt-get install -y python3 && apt-get clean").2);
        // Not recursive, or another folder.
        assert!(!facts("apt-get install -y python3 && rm -f /var/lib/apt/lists/lock").2);
        assert!(!facts("apt-get install -y python3 && rm -rf /var/cache/apt/archives").2);
        // Quoted text and echo are not installs.
        assert!(facts("echo 'apt-get install -y curl'").0.is_empty());
        assert_eq!(facts("apt-get install -y curl=8.5.0-2 wget:amd64").0, ["curl", "wget"]);
    }

    #[test]
    fn runs_in_exec_form_and_per_stage() {
        let f = final_of(
            "FROM debian:12.8-slim AS fetch\nRUN apt-get update && apt-get install -y curl\n\
             FROM debian:12.8-slim\nRUN [\"/bin/sh\", \"-c\", \"apt-get update && apt-get install -y python3 && rm -rf /var/lib/apt/lists/*\"]\n",
        );
        assert_eq!(f["installed"], json!(["python3"]), "curl stays in the fetch stage");
        assert_eq!(f["runs"][0]["form"], "exec");
        assert_eq!(f["runs"][0]["cleans_cache"], true);
        // Building on a stage keeps what it installed.
        let f = final_of("FROM debian:12.8-slim AS base\nRUN apt-get install -y curl\nFROM base\n");
        assert_eq!(f["installed"], json!(["curl"]));
    }

    #[test]
    fn not_a_dockerfile() {
        assert!(parse("RUN true\n").is_err());
        assert!(parse("FROM debian@sha256:abc\n").is_err());
    }
}
