//! `iptables-save` output read as tables of rules. Options are read by name whatever module
//! brought them in (`-m tcp --dport`, `-m multiport --dports`); an option ckslab does not know
//! makes its rule an unknown "some of the class", so it is never taken to close a port alone.

use super::{Chain, Cond, Net, PortSet, Rule, Table, Target};

/// The base chains a packet addressed to the node passes, per table, in order (nat is walked
/// only for the marks it may set).
fn entry_chains(table: &str) -> &'static [&'static str] {
    match table {
        "raw" => &["PREROUTING"],
        "mangle" => &["PREROUTING", "INPUT"],
        "nat" => &["PREROUTING"],
        "filter" => &["INPUT"],
        _ => &[],
    }
}

const TABLE_ORDER: [&str; 4] = ["raw", "mangle", "nat", "filter"];

pub(crate) fn parse(text: &str, tool: &str) -> Result<Vec<Table>, String> {
    let mut tables: Vec<(String, Vec<Chain>)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line == "COMMIT" {
            continue;
        }
        let at = || format!("{tool}-save line {}", n + 1);
        if let Some(name) = line.strip_prefix('*') {
            tables.push((name.to_string(), Vec::new()));
            continue;
        }
        let Some((_, chains)) = tables.last_mut() else {
            return Err(format!("{}: a rule before any table: {line}", at()));
        };
        if let Some(decl) = line.strip_prefix(':') {
            let mut words = decl.split_whitespace();
            let name = words.next().unwrap_or_default().to_string();
            let policy = match words.next() {
                Some("ACCEPT") => Some(true),
                Some("DROP") => Some(false),
                _ => None,
            };
            chains.push(Chain { name, rules: Vec::new(), policy });
            continue;
        }
        let words = shlex::split(line).ok_or_else(|| format!("{}: unbalanced quotes: {line}", at()))?;
        if words.first().map(String::as_str) != Some("-A") || words.len() < 2 {
            return Err(format!("{}: not a rule (-A CHAIN ...): {line}", at()));
        }
        let rule = parse_rule(&words[2..], line);
        match chains.iter_mut().find(|c| c.name == words[1]) {
            Some(chain) => chain.rules.push(rule),
            None => chains.push(Chain { name: words[1].clone(), rules: vec![rule], policy: None }),
        }
    }
    let mut out = Vec::new();
    for name in TABLE_ORDER {
        if let Some((_, chains)) = tables.iter().find(|(t, _)| t == name) {
            out.push(Table {
                label: format!("{tool} {name}"),
                chains: chains.clone(),
                entry: entry_chains(name).iter().map(|s| s.to_string()).collect(),
                marks_only: name == "nat",
            });
        }
    }
    Ok(out)
}

fn list(value: &str) -> Vec<String> {
    value.split(',').map(|s| s.trim().to_ascii_lowercase()).collect()
}

fn nets(value: &str) -> Cond {
    let parsed: Option<Vec<Net>> = value.split(',').map(Net::parse).collect();
    match parsed {
        Some(nets) => Cond::Source(nets),
        None => Cond::Unknown(format!("address {value}")),
    }
}

fn ports(value: &str, make: fn(PortSet) -> Cond) -> Cond {
    match PortSet::parse(value) {
        Some(set) => make(set),
        // A service name (`--dport ssh`): iptables-save prints numbers, so this is rare.
        None => Cond::Unknown(format!("port {value}")),
    }
}

fn mark(value: &str) -> Cond {
    let parse = |t: &str| {
        let t = t.trim();
        match t.strip_prefix("0x") {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => t.parse().ok(),
        }
    };
    let (v, m) = value.split_once('/').unwrap_or((value, "0xffffffff"));
    match (parse(v), parse(m)) {
        (Some(value), Some(mask)) => Cond::Mark { value, mask },
        _ => Cond::Unknown(format!("mark {value}")),
    }
}

fn target(name: &str) -> Target {
    match name {
        "ACCEPT" => Target::Accept,
        "DROP" | "REJECT" => Target::Drop,
        "RETURN" => Target::Return,
        "MARK" | "CONNMARK" => Target::SetsMark,
        "LOG" | "NFLOG" | "ULOG" | "CT" | "NOTRACK" | "TRACE" | "AUDIT" | "CONNSECMARK" | "SECMARK" | "TCPMSS" => {
            Target::Continue
        }
        "DNAT" | "REDIRECT" | "SNAT" | "MASQUERADE" | "NFQUEUE" | "QUEUE" | "TPROXY" | "TEE" => {
            Target::Other(name.to_string())
        }
        // Anything else is a chain of the same table (checked when the chain is walked).
        chain => Target::Jump(chain.to_string()),
    }
}

/// One rule's words after `-A CHAIN`.
fn parse_rule(words: &[String], shown: &str) -> Rule {
    let mut conds = Vec::new();
    let mut target_ = Target::Continue;
    let mut negate = false;
    let mut i = 0;
    let value = |i: usize| words.get(i + 1).cloned().unwrap_or_default();
    while i < words.len() {
        let word = words[i].as_str();
        let mut cond = None;
        let mut used = 2;
        match word {
            "!" => {
                negate = true;
                i += 1;
                continue;
            }
            "-p" | "--protocol" => {
                let p = value(i).to_ascii_lowercase();
                if !matches!(p.as_str(), "all" | "0") {
                    cond = Some(Cond::Tcp(matches!(p.as_str(), "tcp" | "6")));
                }
            }
            "-s" | "--source" | "--src" => cond = Some(nets(&value(i))),
            "-d" | "--destination" | "--dst" => {
                cond = Some(match nets(&value(i)) {
                    Cond::Source(n) => Cond::Dest(n),
                    other => other,
                })
            }
            "-i" | "--in-interface" => cond = Some(Cond::InInterface(vec![value(i)])),
            "-o" | "--out-interface" | "-m" | "--match" | "--comment" | "-c" | "--set-counters" => {
                if word == "-c" || word == "--set-counters" {
                    used = 3;
                }
            }
            "-f" | "--fragment" => {
                // Only non-first fragments: a SYN is never one.
                cond = Some(Cond::Tcp(false));
                used = 1;
            }
            "--dport" | "--destination-port" | "--dports" | "--destination-ports" => {
                cond = Some(ports(&value(i).replace(':', "-"), Cond::DestPort))
            }
            "--sport" | "--source-port" | "--sports" | "--source-ports" => {
                cond = Some(Cond::SourcePort(value(i)));
            }
            "--ports" => cond = Some(ports(&value(i).replace(':', "-"), Cond::AnyPort)),
            "--ctstate" | "--state" => cond = Some(Cond::State(list(&value(i)))),
            "--syn" => {
                cond = Some(Cond::TcpFlags { mask: list("syn,rst,ack,fin"), set: list("syn") });
                used = 1;
            }
            "--tcp-flags" => {
                cond = Some(Cond::TcpFlags {
                    mask: expand_flags(&value(i)),
                    set: expand_flags(&words.get(i + 2).cloned().unwrap_or_default()),
                });
                used = 3;
            }
            "--dst-type" => cond = Some(Cond::DestType(list(&value(i)))),
            "--src-type" => cond = Some(Cond::SourceType(list(&value(i)))),
            "--limit-iface-in" | "--limit-iface-out" => used = 1,
            "--mark" => cond = Some(mark(&value(i))),
            "-j" | "--jump" => {
                target_ = target(&value(i));
                // What follows are the target's own options (--reject-with, --set-xmark).
                break;
            }
            "-g" | "--goto" => {
                target_ = Target::Goto(value(i));
                break;
            }
            other if other.starts_with('-') => {
                // An option of a match ckslab does not model: it and its values.
                let mut j = i + 1;
                while j < words.len() && !words[j].starts_with('-') && words[j] != "!" {
                    j += 1;
                }
                cond = Some(Cond::Unknown(words[i..j].join(" ")));
                used = j - i;
            }
            _ => used = 1,
        }
        if let Some(c) = cond {
            conds.push(if negate { Cond::Not(Box::new(c)) } else { c });
        }
        negate = false;
        i += used;
    }
    Rule { shown: shown.to_string(), conds, target: target_ }
}

fn expand_flags(text: &str) -> Vec<String> {
    match text.to_ascii_lowercase().as_str() {
        "all" => list("syn,ack,fin,rst,urg,psh"),
        "none" => Vec::new(),
        other => list(other),
    }
}
