//! `nft -j list ruleset` read as tables of rules: the tables nft users write themselves
//! (`inet filter`, `ip guard`). The iptables-compatible tables (family ip: filter, raw, mangle,
//! nat, security) are read from iptables-nft-save instead, which prints their rules whichever
//! tool added them.

use serde_json::Value;

use super::{Chain, Cond, Net, PortSet, Rule, Table, Target};

const IPTABLES_TABLES: [&str; 5] = ["filter", "raw", "mangle", "nat", "security"];

/// `nft -a list ruleset`: each rule's text by (family, table, chain, handle), for messages.
pub(crate) fn rule_texts(text: &str) -> std::collections::HashMap<(String, String, String, u64), String> {
    let mut out = std::collections::HashMap::new();
    let (mut table, mut chain) = (None::<(String, String)>, None::<String>);
    for line in text.lines() {
        let line = line.trim();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["table", family, name, "{", ..] => table = Some((family.to_string(), name.to_string())),
            ["chain", name, "{", ..] => chain = Some(name.to_string()),
            _ => {
                if let (Some((family, name)), Some(chain), Some((rule, handle))) =
                    (&table, &chain, line.rsplit_once(" # handle "))
                    && let Ok(handle) = handle.trim().parse()
                {
                    out.insert((family.clone(), name.clone(), chain.clone(), handle), rule.trim().to_string());
                }
            }
        }
    }
    out
}

pub(crate) fn parse(text: &str, shown: &str) -> Result<Vec<Table>, String> {
    let texts = rule_texts(shown);
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("nft -j list ruleset is not JSON: {e}"))?;
    let items = doc.get("nftables").and_then(Value::as_array).ok_or("nft -j printed no \"nftables\" list")?;
    let mut tables: Vec<(String, String, Table)> = Vec::new();
    let mut base: Vec<(String, String, String, i64, u8)> = Vec::new();
    let mut sets: Vec<(String, String, String, Vec<Value>)> = Vec::new();
    for item in items {
        if let Some(t) = item.get("table") {
            let (family, name) = (text_of(t, "family"), text_of(t, "name"));
            if !matches!(family.as_str(), "ip" | "inet") || (family == "ip" && IPTABLES_TABLES.contains(&name.as_str()))
            {
                continue;
            }
            let label = format!("nft {family} {name}");
            tables.push((family, name, Table { label, chains: Vec::new(), entry: Vec::new(), marks_only: false }));
        } else if let Some(s) = item.get("set") {
            let elems = s.get("elem").and_then(Value::as_array).cloned().unwrap_or_default();
            sets.push((text_of(s, "family"), text_of(s, "table"), text_of(s, "name"), elems));
        }
    }
    for item in items {
        if let Some(c) = item.get("chain") {
            let (family, table, name) = (text_of(c, "family"), text_of(c, "table"), text_of(c, "name"));
            let Some((_, _, t)) = tables.iter_mut().find(|(f, n, _)| *f == family && *n == table) else {
                continue;
            };
            let hook = text_of(c, "hook");
            let policy = if hook.is_empty() { None } else { Some(text_of(c, "policy") != "drop") };
            if matches!(hook.as_str(), "prerouting" | "input") && text_of(c, "type") != "nat" {
                let prio = c.get("prio").and_then(Value::as_i64).unwrap_or(0);
                let order = if hook == "prerouting" { 0 } else { 1 };
                base.push((family.clone(), table.clone(), name.clone(), prio, order));
            }
            t.chains.push(Chain { name, rules: Vec::new(), policy });
        }
    }
    for item in items {
        if let Some(r) = item.get("rule") {
            let (family, table, chain) = (text_of(r, "family"), text_of(r, "table"), text_of(r, "chain"));
            let Some((_, _, t)) = tables.iter_mut().find(|(f, n, _)| *f == family && *n == table) else {
                continue;
            };
            let lookup = |name: &str| {
                sets.iter()
                    .find(|(f, tb, n, _)| *f == family && *tb == table && n == name)
                    .map(|(_, _, _, e)| e.clone())
            };
            let mut rule = parse_rule(r, &lookup);
            let handle = r.get("handle").and_then(Value::as_u64).unwrap_or_default();
            if let Some(text) = texts.get(&(family.clone(), table.clone(), chain.clone(), handle)) {
                rule.shown = text.clone();
            }
            if let Some(c) = t.chains.iter_mut().find(|c| c.name == chain) {
                c.rules.push(rule);
            }
        }
    }
    // Packets meet base chains by hook, then priority.
    base.sort_by_key(|(_, _, _, prio, order)| (*order, *prio));
    let mut out = Vec::new();
    for (family, table, chain, _, _) in base {
        if let Some((_, _, t)) = tables.iter().find(|(f, n, _)| *f == family && *n == table) {
            let mut one = t.clone();
            one.entry = vec![chain];
            out.push(one);
        }
    }
    Ok(out)
}

fn text_of(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// nft's one-line form of a rule, close enough to `nft list` for a message.
fn show(expr: &[Value]) -> String {
    expr.iter()
        .map(|e| {
            let text = e.to_string();
            text.replace(['{', '}', '"'], "").replace(":null", "")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn parse_rule(rule: &Value, lookup: &dyn Fn(&str) -> Option<Vec<Value>>) -> Rule {
    let expr = rule.get("expr").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut conds = Vec::new();
    let mut target = Target::Continue;
    for e in &expr {
        let Some((key, body)) = e.as_object().and_then(|o| o.iter().next()) else { continue };
        match key.as_str() {
            "match" => conds.push(parse_match(body, lookup)),
            "accept" => target = Target::Accept,
            "drop" | "reject" => target = Target::Drop,
            "return" => target = Target::Return,
            "jump" => target = Target::Jump(text_of(body, "target")),
            "goto" => target = Target::Goto(text_of(body, "target")),
            "mangle" if body.pointer("/key/meta/key").and_then(Value::as_str) == Some("mark") => {
                target = Target::SetsMark
            }
            "counter" | "log" | "limit" | "notrack" | "ct helper" | "quota" => {
                if key == "limit" || key == "quota" {
                    conds.push(Cond::Unknown(format!("a {key}")));
                }
            }
            "dnat" | "redirect" | "queue" | "tproxy" | "snat" | "masquerade" => target = Target::Other(key.clone()),
            "xt" => conds.push(Cond::Unknown("an iptables extension (xt)".into())),
            other => conds.push(Cond::Unknown(format!("the nft statement {other}"))),
        }
        // A verdict ends the rule; statements after it never run.
        if !matches!(target, Target::Continue | Target::SetsMark) {
            break;
        }
    }
    Rule { shown: show(&expr), conds, target }
}

/// The values a match's right side stands for: one value, an anonymous set, a named set.
fn values(right: &Value, lookup: &dyn Fn(&str) -> Option<Vec<Value>>) -> Option<Vec<Value>> {
    match right {
        Value::String(s) if s.starts_with('@') => lookup(&s[1..]).map(|elems| {
            elems.into_iter().map(|e| e.get("elem").and_then(|x| x.get("val")).cloned().unwrap_or(e)).collect()
        }),
        Value::Object(o) if o.contains_key("set") => o.get("set").and_then(Value::as_array).cloned(),
        Value::Array(a) => Some(a.clone()),
        other => Some(vec![other.clone()]),
    }
}

fn port_set(values: &[Value]) -> Option<PortSet> {
    let mut ranges = Vec::new();
    for v in values {
        match v {
            Value::Number(n) => {
                let p = u16::try_from(n.as_u64()?).ok()?;
                ranges.push((p, p));
            }
            Value::Object(o) if o.contains_key("range") => {
                let r = o.get("range")?.as_array()?;
                let low = u16::try_from(r.first()?.as_u64()?).ok()?;
                let high = u16::try_from(r.get(1)?.as_u64()?).ok()?;
                ranges.push((low, high));
            }
            Value::String(s) => ranges.extend(PortSet::parse(s)?.0),
            _ => return None,
        }
    }
    Some(PortSet(ranges))
}

fn net_list(values: &[Value]) -> Option<Vec<Net>> {
    values
        .iter()
        .map(|v| match v {
            Value::String(s) => Net::parse(s),
            Value::Object(o) => {
                let p = o.get("prefix")?;
                Net::parse(&format!("{}/{}", p.get("addr")?.as_str()?, p.get("len")?.as_u64()?))
            }
            _ => None,
        })
        .collect()
}

fn strings(values: &[Value]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| match v {
            Value::String(s) => vec![s.to_ascii_lowercase()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).map(str::to_ascii_lowercase).collect(),
            _ => vec![],
        })
        .collect()
}

fn parse_match(body: &Value, lookup: &dyn Fn(&str) -> Option<Vec<Value>>) -> Cond {
    let op = body.get("op").and_then(Value::as_str).unwrap_or("==");
    let left = body.get("left").cloned().unwrap_or(Value::Null);
    let right = body.get("right").cloned().unwrap_or(Value::Null);
    let unknown = || Cond::Unknown(format!("the match {}", show(std::slice::from_ref(body))));
    let negated = match op {
        "==" | "in" => false,
        "!=" => true,
        _ => return unknown(),
    };
    let Some(vals) = values(&right, lookup) else { return unknown() };
    let cond = if let Some(meta) = left.pointer("/meta/key").and_then(Value::as_str) {
        match meta {
            "l4proto" => Cond::Tcp(vals.iter().any(|v| v == "tcp" || v == 6)),
            "nfproto" => {
                if vals.iter().any(|v| v == "ipv4") {
                    return if negated { Cond::NotIpv4 } else { Cond::Tcp(true) };
                }
                Cond::NotIpv4
            }
            "iifname" | "iif" => Cond::InInterface(strings(&vals)),
            "mark" => match vals.first().and_then(Value::as_u64) {
                Some(v) => Cond::Mark { value: v as u32, mask: u32::MAX },
                None => unknown(),
            },
            "iiftype" => return if vals.iter().any(|v| v == "loopback") { Cond::Tcp(negated) } else { unknown() },
            _ => unknown(),
        }
    } else if let Some(payload) = left.get("payload") {
        let protocol = text_of(payload, "protocol");
        let field = text_of(payload, "field");
        match (protocol.as_str(), field.as_str()) {
            ("tcp" | "th", "dport") => match port_set(&vals) {
                Some(set) => {
                    let ports = Cond::DestPort(set);
                    if protocol == "tcp" {
                        // `tcp dport` also means the protocol is TCP, even negated.
                        let c = if negated { Cond::Not(Box::new(ports)) } else { ports };
                        return and_tcp(c);
                    }
                    ports
                }
                None => unknown(),
            },
            ("tcp" | "th", "sport") => Cond::SourcePort(show(std::slice::from_ref(&right))),
            ("tcp", _) => return and_tcp(unknown()),
            ("udp" | "sctp" | "icmp" | "udplite" | "dccp", _) => return Cond::Tcp(false),
            ("ip6" | "arp", _) => return Cond::NotIpv4,
            ("ip", "saddr") => net_list(&vals).map(Cond::Source).unwrap_or_else(unknown),
            ("ip", "daddr") => net_list(&vals).map(Cond::Dest).unwrap_or_else(unknown),
            ("ip", "protocol") => Cond::Tcp(vals.iter().any(|v| v == "tcp" || v == 6)),
            _ => unknown(),
        }
    } else if left.pointer("/ct/key").and_then(Value::as_str) == Some("state") {
        Cond::State(strings(&vals))
    } else if left.get("fib").is_some() && text_of(&left["fib"], "result") == "type" {
        let flags = left.pointer("/fib/flags").map(|f| strings(std::slice::from_ref(f))).unwrap_or_default();
        if flags.iter().any(|f| f == "saddr") {
            Cond::SourceType(strings(&vals))
        } else {
            Cond::DestType(strings(&vals))
        }
    } else {
        unknown()
    };
    if negated { Cond::Not(Box::new(cond)) } else { cond }
}

/// A tcp header match implies the protocol is TCP.
fn and_tcp(cond: Cond) -> Cond {
    // Encoded as a one-element conjunction the walker reads: the rule gets both conditions.
    Cond::All(vec![Cond::Tcp(true), cond])
}
