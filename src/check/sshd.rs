//! sshd_config as sshd reads it, turned into data for field conditions.
//!
//! What sshd does that text matching gets wrong, and this follows:
//! - keywords are case-insensitive, and `Keyword value`, `Keyword=value` and `Keyword = value`
//!   are the same line; a token starting with `#` ends the line;
//! - the first value a keyword gets is the one that counts, so an `Include`d drop-in read before
//!   the main file's line (Debian's `Include /etc/ssh/sshd_config.d/*.conf` comes first) wins;
//! - everything after a `Match` line belongs to that block until the next `Match` or the end of
//!   the file, so a line appended after a `Match` block applies to matching connections only;
//! - for a connection, the first matching block that sets a keyword overrides the global value.
//!
//! The document has `global` (keyword: first value), `match` (each block's criteria and
//! settings) and `possible`: for each keyword, every value some connection can end up with
//! (sshd's default included when no global line sets it). A check that no connection may have
//! root login reads `$.possible.permitrootlogin` and wants nothing there but `no`.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use serde_json::{Value, json};

use crate::backend::Backend;

/// sshd's limit on nested Include.
const MAX_DEPTH: usize = 16;

/// One directive with the Match block it belongs to (None: global).
#[derive(Debug, Clone, PartialEq)]
pub struct Directive {
    pub keyword: String,
    pub value: String,
    pub block: Option<usize>,
}

/// The Match blocks' criteria, by index, and every directive in reading order.
#[derive(Debug, Default)]
pub struct Config {
    pub blocks: Vec<String>,
    pub directives: Vec<Directive>,
    pub files: Vec<String>,
    pub problems: Vec<String>,
}

/// Reads the file and everything it includes from the node, then resolves it.
pub async fn resolve(backend: &dyn Backend, node: &str, path: &Path, text: &str) -> Value {
    let mut config = Config::default();
    let mut reader = |p: PathBuf| -> Files<'_> { Box::pin(read_matching(backend, node, p)) };
    read_into(&mut config, path, text, None, 0, &mut reader).await;
    document(&config)
}

/// The files an Include pattern names, with their text, read as a future.
type Files<'r> = Pin<Box<dyn Future<Output = Result<Vec<(PathBuf, String)>, String>> + Send + 'r>>;

type Reader<'r> = dyn FnMut(PathBuf) -> Files<'r> + Send + 'r;

/// Files matching an Include pattern (`*` and `?` in the file name), sorted as glob(3) sorts.
async fn read_matching(backend: &dyn Backend, node: &str, pattern: PathBuf) -> Result<Vec<(PathBuf, String)>, String> {
    let name = pattern.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let paths = if name.contains(['*', '?']) {
        let folder = pattern.parent().unwrap_or(Path::new("/")).to_path_buf();
        let mut names = backend.list_dir(node, &folder).await.map_err(|e| e.to_string())?.unwrap_or_default();
        names.retain(|n| !n.starts_with('.') && glob_match(&name, n));
        names.sort();
        names.into_iter().map(|n| folder.join(n)).collect()
    } else {
        vec![pattern]
    };
    let mut out = Vec::new();
    for path in paths {
        match backend.read_file(node, &path).await {
            Ok(Some(bytes)) => out.push((path, String::from_utf8_lossy(&bytes).into_owned())),
            Ok(None) => {}
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        }
    }
    Ok(out)
}

/// Shell-style `*` and `?` over one file name.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some(('?', rest)) => !n.is_empty() && go(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    go(&pattern.chars().collect::<Vec<_>>(), &name.chars().collect::<Vec<_>>())
}

/// Adds one file's directives, following Include in place. An included file starts in the
/// including line's context, and a Match it opens ends with it.
fn read_into<'a>(
    config: &'a mut Config,
    path: &'a Path,
    text: &'a str,
    context: Option<usize>,
    depth: usize,
    reader: &'a mut Reader<'_>,
) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
    Box::pin(async move {
        config.files.push(path.display().to_string());
        let mut block = context;
        for line in text.lines() {
            let Some((keyword, args)) = tokenize(line) else { continue };
            match keyword.as_str() {
                "match" => {
                    config.blocks.push(args.join(" "));
                    block = Some(config.blocks.len() - 1);
                }
                "include" => {
                    if depth >= MAX_DEPTH {
                        config.problems.push(format!("{}: Include nested deeper than {MAX_DEPTH}", path.display()));
                        continue;
                    }
                    for arg in args {
                        let target =
                            if arg.starts_with('/') { PathBuf::from(&arg) } else { Path::new("/etc/ssh").join(&arg) };
                        match reader(target).await {
                            Ok(files) => {
                                for (included, text) in files {
                                    read_into(config, &included, &text, block, depth + 1, reader).await;
                                }
                            }
                            Err(e) => config.problems.push(e),
                        }
                    }
                }
                _ => {
                    let keyword = canonical(&keyword).to_string();
                    let value = normalize(&keyword, &args.join(" "));
                    config.directives.push(Directive { keyword, value, block });
                }
            }
        }
    })
}

/// The keyword (lowercase) and arguments of a line, as sshd splits it; None for blanks and
/// comments.
pub fn tokenize(line: &str) -> Option<(String, Vec<String>)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let end = line.find(|c: char| c.is_whitespace() || c == '=').unwrap_or(line.len());
    let keyword = line[..end].to_ascii_lowercase();
    let mut rest = line[end..].trim_start();
    if let Some(after) = rest.strip_prefix('=') {
        rest = after.trim_start();
    }
    let mut args = Vec::new();
    let mut chars = rest.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '#' {
            break;
        }
        let mut arg = String::new();
        if c == '"' {
            chars.next();
            for c in chars.by_ref() {
                if c == '"' {
                    break;
                }
                arg.push(c);
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                arg.push(c);
                chars.next();
            }
        }
        args.push(arg);
    }
    Some((keyword, args))
}

/// Deprecated names sshd still accepts for the same setting.
fn canonical(keyword: &str) -> &str {
    match keyword {
        "challengeresponseauthentication" => "kbdinteractiveauthentication",
        "dsaauthentication" => "pubkeyauthentication",
        other => other,
    }
}

/// Keywords whose values sshd compares without case (yes/no and named states).
const FLAG_KEYWORDS: [&str; 12] = [
    "permitrootlogin",
    "passwordauthentication",
    "kbdinteractiveauthentication",
    "pubkeyauthentication",
    "permitemptypasswords",
    "usepam",
    "x11forwarding",
    "allowtcpforwarding",
    "allowagentforwarding",
    "permittunnel",
    "hostbasedauthentication",
    "gssapiauthentication",
];

fn normalize(keyword: &str, value: &str) -> String {
    if !FLAG_KEYWORDS.contains(&keyword) {
        return value.to_string();
    }
    match value.to_ascii_lowercase().as_str() {
        // The old name of prohibit-password.
        "without-password" => "prohibit-password".into(),
        other => other.to_string(),
    }
}

/// sshd's defaults (OpenSSH 9) for the keywords hardening tasks ask about.
fn default_value(keyword: &str) -> Option<&'static str> {
    Some(match keyword {
        "permitrootlogin" => "prohibit-password",
        "passwordauthentication" => "yes",
        "kbdinteractiveauthentication" => "yes",
        "pubkeyauthentication" => "yes",
        "permitemptypasswords" => "no",
        "authenticationmethods" => "any",
        "usepam" => "no",
        "x11forwarding" => "no",
        _ => return None,
    })
}

const DEFAULTED: [&str; 8] = [
    "permitrootlogin",
    "passwordauthentication",
    "kbdinteractiveauthentication",
    "pubkeyauthentication",
    "permitemptypasswords",
    "authenticationmethods",
    "usepam",
    "x11forwarding",
];

/// The resolved configuration as data.
pub fn document(config: &Config) -> Value {
    let mut global: BTreeMap<String, String> = BTreeMap::new();
    let mut blocks: Vec<BTreeMap<String, String>> = vec![BTreeMap::new(); config.blocks.len()];
    for d in &config.directives {
        let settings = match d.block {
            None => &mut global,
            Some(i) => &mut blocks[i],
        };
        settings.entry(d.keyword.clone()).or_insert_with(|| d.value.clone());
    }
    let mut keywords: Vec<String> = DEFAULTED.iter().map(|k| k.to_string()).collect();
    keywords.extend(global.keys().cloned());
    keywords.extend(blocks.iter().flat_map(|b| b.keys().cloned()));
    keywords.sort();
    keywords.dedup();
    let mut possible = serde_json::Map::new();
    for keyword in keywords {
        let mut values: Vec<String> = Vec::new();
        let mut always_overridden = false;
        for (criteria, settings) in config.blocks.iter().zip(&blocks) {
            if let Some(v) = settings.get(&keyword) {
                values.push(v.clone());
                // A block every connection matches decides for all that get this far.
                if criteria.eq_ignore_ascii_case("all") {
                    always_overridden = true;
                    break;
                }
            }
        }
        if !always_overridden
            && let Some(v) = global.get(&keyword).cloned().or_else(|| default_value(&keyword).map(String::from))
        {
            values.push(v);
        }
        let mut seen = Vec::new();
        for v in values {
            if !seen.contains(&v) {
                seen.push(v);
            }
        }
        possible.insert(keyword, json!(seen));
    }
    json!({
        "global": global,
        "match": config.blocks.iter().zip(&blocks).map(|(c, s)| json!({"criteria": c, "settings": s})).collect::<Vec<_>>(),
        "possible": possible,
        "files": config.files,
        "problems": config.problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resolves a main file whose Include patterns are served from `files` (path, text).
    fn resolved(main: &str, files: &[(&str, &str)]) -> Value {
        let files: Vec<(String, String)> = files.iter().map(|(p, t)| (p.to_string(), t.to_string())).collect();
        let mut reader = move |pattern: PathBuf| -> Files<'static> {
            let pattern = pattern.display().to_string();
            let (folder, name) = pattern.rsplit_once('/').unwrap();
            let mut found: Vec<(PathBuf, String)> = files
                .iter()
                .filter(|(p, _)| p.rsplit_once('/').is_some_and(|(f, n)| f == folder && glob_match(name, n)))
                .map(|(p, t)| (PathBuf::from(p), t.clone()))
                .collect();
            found.sort();
            Box::pin(async move { Ok(found) })
        };
        let mut config = Config::default();
        futures::executor::block_on(read_into(
            &mut config,
            Path::new("/etc/ssh/sshd_config"),
            main,
            None,
            0,
            &mut reader,
        ));
        document(&config)
    }

    fn possible(doc: &Value, keyword: &str) -> Vec<String> {
        doc["possible"][keyword].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
    }

    #[test]
    fn every_spelling_of_a_line() {
        for line in [
            "PermitRootLogin no",
            "permitrootlogin NO",
            "PermitRootLogin=no",
            "  PermitRootLogin = no",
            "PermitRootLogin\t\"no\"",
            "PermitRootLogin no # not for root",
        ] {
            let doc = resolved(line, &[]);
            assert_eq!(possible(&doc, "permitrootlogin"), ["no"], "{line}");
        }
    }

    #[test]
    fn first_value_wins_and_defaults_fill_in() {
        let doc = resolved("PasswordAuthentication no\nPasswordAuthentication yes\n#PermitRootLogin no\n", &[]);
        assert_eq!(possible(&doc, "passwordauthentication"), ["no"]);
        assert_eq!(possible(&doc, "permitrootlogin"), ["prohibit-password"]);
        assert_eq!(
            possible(&resolved("PermitRootLogin without-password", &[]), "permitrootlogin"),
            ["prohibit-password"]
        );
    }

    #[test]
    fn the_old_keyword_sets_keyboard_interactive() {
        let doc = resolved("ChallengeResponseAuthentication no", &[]);
        assert_eq!(possible(&doc, "kbdinteractiveauthentication"), ["no"]);
    }

    #[test]
    fn an_earlier_include_wins_over_the_main_file() {
        let main = "Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication no\n";
        let drop_in = [
            ("/etc/ssh/sshd_config.d/50-cloud-init.conf", "PasswordAuthentication yes\n"),
            ("/etc/ssh/sshd_config.d/README", "PermitRootLogin yes\n"),
        ];
        let doc = resolved(main, &drop_in);
        assert_eq!(possible(&doc, "passwordauthentication"), ["yes"]);
        assert_eq!(possible(&doc, "permitrootlogin"), ["prohibit-password"], "only *.conf is included");
        // Relative patterns are under /etc/ssh; a drop-in sorted first decides.
        let doc = resolved(
            "Include sshd_config.d/*.conf\nPasswordAuthentication yes\n",
            &[
                ("/etc/ssh/sshd_config.d/50-cloud-init.conf", "PasswordAuthentication yes\n"),
                ("/etc/ssh/sshd_config.d/00-hardening.conf", "PasswordAuthentication no\n"),
            ],
        );
        assert_eq!(possible(&doc, "passwordauthentication"), ["no"]);
    }

    #[test]
    fn a_line_after_match_belongs_to_the_block() {
        let doc = resolved("PermitRootLogin yes\nMatch User backup\n  X11Forwarding no\nPermitRootLogin no\n", &[]);
        assert_eq!(possible(&doc, "permitrootlogin"), ["no", "yes"]);
        assert_eq!(doc["global"]["permitrootlogin"], "yes");
        assert_eq!(doc["match"][0]["criteria"], "User backup");
    }

    #[test]
    fn a_match_block_can_reopen_passwords() {
        let doc = resolved("PasswordAuthentication no\nMatch Address 10.0.0.0/8\n PasswordAuthentication yes\n", &[]);
        assert_eq!(possible(&doc, "passwordauthentication"), ["yes", "no"]);
    }

    #[test]
    fn match_all_decides_for_everyone() {
        let doc = resolved("PermitRootLogin yes\nMatch all\nPermitRootLogin no\n", &[]);
        assert_eq!(possible(&doc, "permitrootlogin"), ["no"]);
    }

    #[test]
    fn a_match_in_a_drop_in_ends_with_it() {
        let doc = resolved(
            "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin no\n",
            &[("/etc/ssh/sshd_config.d/10-sftp.conf", "Match Group sftp\n ForceCommand internal-sftp\n")],
        );
        assert_eq!(doc["global"]["permitrootlogin"], "no");
        assert_eq!(possible(&doc, "permitrootlogin"), ["no"]);
    }

    #[test]
    fn glob_is_shell_like() {
        assert!(glob_match("*.conf", "50-cloud-init.conf"));
        assert!(!glob_match("*.conf", "50-cloud-init.conf.bak"));
        assert!(glob_match("0?-x", "01-x"));
        assert!(!glob_match("0?-x", "0-x"));
    }
}
