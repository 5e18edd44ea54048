//! The `firewall` probe: a node's packet filter read as data (iptables-save, nft's JSON) and
//! judged per TCP port over every connection attempt that can reach the node from another
//! machine, not over one sample.
//!
//! The class of packets judged for a port P: the SYN of a new IPv4 TCP connection to P,
//! arriving on the node's uplink (the interface of its default route), from any source address
//! that is not the node's own, to any of the node's own non-loopback addresses, with no
//! firewall mark set yet. Each rule is read as "matches none of that class", "all of it" or
//! "some of it" (a source, a destination, a match ckslab does not model). A port is closed only
//! when some base chain drops or rejects the whole class before anything accepts part of it; a
//! rule that drops only some sources leaves the port open to the rest, and says so.

mod iptables;
mod nft;

use std::net::Ipv4Addr;

use crate::backend::Backend;
use crate::scenario::{FirewallProbe, NodeRef};

use super::{Finding, resolve_nodes};

/// How much of the judged class a rule's conditions cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reach {
    None,
    All,
    /// Part of it: the words say which part ("packets from 172.18.0.3/32").
    Some(String),
}

impl Reach {
    fn and(self, other: Reach) -> Reach {
        match (self, other) {
            (Reach::None, _) | (_, Reach::None) => Reach::None,
            (Reach::All, r) | (r, Reach::All) => r,
            (Reach::Some(a), Reach::Some(b)) => Reach::Some(format!("{a} and {b}")),
        }
    }

    fn negate(self, what: &str) -> Reach {
        match self {
            Reach::None => Reach::All,
            Reach::All => Reach::None,
            Reach::Some(_) => Reach::Some(format!("packets not {what}")),
        }
    }
}

/// One condition of a rule, in the terms both iptables and nft rules reduce to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cond {
    /// The layer-4 protocol is TCP (`tcp: false`: some other protocol).
    Tcp(bool),
    /// Not IPv4 at all (an ip6 or arp match in an inet table).
    NotIpv4,
    DestPort(PortSet),
    /// Either port is in the set (`-m multiport --ports`).
    AnyPort(PortSet),
    /// The source port: the client's, unknown in advance.
    SourcePort(String),
    Source(Vec<Net>),
    Dest(Vec<Net>),
    InInterface(Vec<String>),
    /// Conntrack states the rule matches (lowercase: new, established, related, invalid, ...).
    State(Vec<String>),
    /// The TCP flags under `mask` equal `set` (a new connection's first packet is SYN alone).
    TcpFlags {
        mask: Vec<String>,
        set: Vec<String>,
    },
    /// The destination address type is one of these (`-m addrtype`, nft `fib daddr type`).
    DestType(Vec<String>),
    SourceType(Vec<String>),
    /// The firewall mark, masked, equals a value.
    Mark {
        value: u32,
        mask: u32,
    },
    /// A condition ckslab does not model: it may match part of the class.
    Unknown(String),
    /// Negation of the inner condition.
    Not(Box<Cond>),
    /// Every one of these (an nft `tcp dport` match also says the protocol is TCP).
    All(Vec<Cond>),
}

/// What a rule does with the packets it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Accept,
    Drop,
    Return,
    Jump(String),
    Goto(String),
    /// Sets the firewall mark (later mark matches can no longer be decided).
    SetsMark,
    /// Goes on to the next rule (LOG, counter, a comment-only rule).
    Continue,
    /// Sends the packet somewhere else (DNAT, REDIRECT, a queue): its fate is not modelled.
    Other(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rule {
    /// The rule as the tool prints it, for messages.
    pub shown: String,
    pub conds: Vec<Cond>,
    pub target: Target,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Chain {
    pub name: String,
    pub rules: Vec<Rule>,
    /// A base chain's policy (`true`: accept); none for a chain only reached by jumps.
    pub policy: Option<bool>,
}

/// The chains of one table, and which of them packets for the node enter, in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Table {
    /// "iptables filter", "nft inet guard".
    pub label: String,
    pub chains: Vec<Chain>,
    pub entry: Vec<String>,
    /// A table that cannot drop (nat): walked only for the marks it sets.
    pub marks_only: bool,
}

impl Table {
    fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }
}

/// A set of ports written as single ports and ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PortSet(pub Vec<(u16, u16)>);

impl PortSet {
    /// `22`, `1000:2000`, `22,80,1000:2000` (iptables), `1000-2000` (nft text).
    pub fn parse(text: &str) -> Option<PortSet> {
        let mut ranges = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            let (low, high) = match part.split_once([':', '-']) {
                Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
                None => {
                    let p = part.parse().ok()?;
                    (p, p)
                }
            };
            ranges.push((low, high));
        }
        Some(PortSet(ranges))
    }

    fn contains(&self, port: u16) -> bool {
        self.0.iter().any(|(low, high)| (*low..=*high).contains(&port))
    }
}

/// An IPv4 network (`10.0.0.0/8`, an address alone is /32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Net {
    pub addr: Ipv4Addr,
    pub len: u8,
}

impl Net {
    pub fn parse(text: &str) -> Option<Net> {
        let (addr, len) = match text.split_once('/') {
            Some((a, l)) => (a, l.parse().ok()?),
            None => (text, 32),
        };
        let addr: Ipv4Addr = addr.parse().ok()?;
        (len <= 32).then_some(Net { addr, len })
    }

    fn mask(self) -> u32 {
        if self.len == 0 { 0 } else { u32::MAX << (32 - self.len) }
    }

    fn contains(self, ip: Ipv4Addr) -> bool {
        (u32::from(ip) & self.mask()) == (u32::from(self.addr) & self.mask())
    }

    /// Every address in this net is in 127.0.0.0/8.
    fn is_loopback(self) -> bool {
        self.len >= 8 && self.addr.octets()[0] == 127
    }
}

fn shown_nets(nets: &[Net]) -> String {
    nets.iter().map(|n| format!("{}/{}", n.addr, n.len)).collect::<Vec<_>>().join(",")
}

/// What is known of the node: where packets from other machines come in, and its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub uplinks: Vec<String>,
    /// Its own non-loopback IPv4 addresses (a packet from another machine may be sent to any).
    pub addresses: Vec<Ipv4Addr>,
    /// The pod CIDRs of this node: addresses of its own pods, which no other machine has.
    pub pod_nets: Vec<Net>,
}

impl Node {
    /// A source address another machine cannot have: loopback, the node's own, its pods'.
    fn is_own(&self, net: Net) -> bool {
        net.is_loopback()
            || (net.len == 32 && self.addresses.contains(&net.addr))
            || self.pod_nets.iter().any(|p| p.len <= net.len && p.contains(net.addr))
    }
}

/// Matches an interface name against an iptables (`eth+`) or nft (`eth*`) pattern.
fn interface_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('+').or_else(|| pattern.strip_suffix('*')) {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// How much of the class for `port` one condition covers.
fn reach(cond: &Cond, port: u16, node: &Node, mark_zero: bool) -> Reach {
    match cond {
        Cond::Tcp(tcp) => {
            if *tcp {
                Reach::All
            } else {
                Reach::None
            }
        }
        Cond::NotIpv4 => Reach::None,
        Cond::DestPort(set) => {
            if set.contains(port) {
                Reach::All
            } else {
                Reach::None
            }
        }
        Cond::AnyPort(set) => {
            if set.contains(port) {
                Reach::All
            } else {
                Reach::Some("packets whose source port is listed".into())
            }
        }
        Cond::SourcePort(ports) => Reach::Some(format!("packets from source port {ports}")),
        Cond::Source(nets) => {
            if nets.iter().any(|n| n.len == 0) {
                Reach::All
            } else if nets.iter().all(|n| node.is_own(*n)) {
                // Packets from other machines never carry the node's own or its pods' source.
                Reach::None
            } else {
                Reach::Some(format!("packets from {}", shown_nets(nets)))
            }
        }
        Cond::Dest(nets) => {
            let hit: Vec<_> = node.addresses.iter().filter(|a| nets.iter().any(|n| n.contains(**a))).collect();
            if hit.is_empty() {
                Reach::None
            } else if hit.len() == node.addresses.len() {
                Reach::All
            } else {
                let missed: Vec<String> =
                    node.addresses.iter().filter(|a| !hit.contains(a)).map(|a| a.to_string()).collect();
                Reach::Some(format!("packets to {} (the node also answers on {})", shown_nets(nets), missed.join(", ")))
            }
        }
        Cond::InInterface(patterns) => {
            let hit = node.uplinks.iter().filter(|u| patterns.iter().any(|p| interface_matches(p, u))).count();
            if hit == 0 {
                Reach::None
            } else if hit == node.uplinks.len() {
                Reach::All
            } else {
                Reach::Some(format!("packets arriving on {}", patterns.join(",")))
            }
        }
        Cond::State(states) => {
            if states.iter().any(|s| s == "new") {
                Reach::All
            } else {
                Reach::None
            }
        }
        Cond::TcpFlags { mask, set } => {
            // The first packet of a connection carries SYN alone.
            let ok = mask.iter().all(|flag| set.contains(flag) == (flag == "syn"));
            if ok { Reach::All } else { Reach::None }
        }
        Cond::DestType(types) => {
            if types.iter().any(|t| t == "local") {
                Reach::All
            } else {
                Reach::None
            }
        }
        Cond::SourceType(types) => {
            if types.iter().any(|t| t == "unicast") {
                Reach::All
            } else if types.iter().all(|t| matches!(t.as_str(), "local" | "broadcast" | "multicast")) {
                Reach::None
            } else {
                Reach::Some(format!("packets whose source type is {}", types.join(",")))
            }
        }
        Cond::Mark { value, mask } => {
            if mark_zero {
                if value & mask == 0 { Reach::All } else { Reach::None }
            } else {
                Reach::Some(format!("packets marked {value:#x}/{mask:#x} by an earlier rule"))
            }
        }
        Cond::All(conds) => conds.iter().fold(Reach::All, |acc, c| acc.and(reach(c, port, node, mark_zero))),
        Cond::Unknown(what) => Reach::Some(format!("packets {what} matches (a match ckslab does not model)")),
        Cond::Not(inner) => {
            let what = match inner.as_ref() {
                Cond::Source(nets) => format!("from {}", shown_nets(nets)),
                Cond::Dest(nets) => format!("to {}", shown_nets(nets)),
                Cond::InInterface(p) => format!("arriving on {}", p.join(",")),
                other => format!("matching {other:?}"),
            };
            reach(inner, port, node, mark_zero).negate(&what)
        }
    }
}

fn rule_reach(rule: &Rule, port: u16, node: &Node, mark_zero: bool) -> Reach {
    rule.conds.iter().fold(Reach::All, |acc, c| acc.and(reach(c, port, node, mark_zero)))
}

/// What a walk through a chain found for the class.
#[derive(Debug, Default, Clone, PartialEq)]
struct Fate {
    /// The verdict for the traffic no narrower rule took (`true`: accepted), and the rule.
    rest: Option<(bool, String)>,
    /// Narrower rules that accept part of the class, with the part.
    accepted_some: Vec<String>,
    dropped_some: Vec<String>,
    /// Rules whose effect is not modelled (a DNAT, an unknown target).
    unmodelled: Vec<String>,
}

impl Fate {
    fn absorb(&mut self, other: Fate) {
        self.accepted_some.extend(other.accepted_some);
        self.dropped_some.extend(other.dropped_some);
        self.unmodelled.extend(other.unmodelled);
    }
}

const MAX_DEPTH: usize = 32;

struct Walk<'a> {
    table: &'a Table,
    port: u16,
    node: &'a Node,
    mark_zero: bool,
}

impl Walk<'_> {
    fn chain(&mut self, name: &str, depth: usize) -> Fate {
        let mut fate = Fate::default();
        let Some(chain) = self.table.chain(name) else {
            fate.unmodelled.push(format!("a jump to chain {name}, which {} does not have", self.table.label));
            return fate;
        };
        if depth > MAX_DEPTH {
            fate.unmodelled.push(format!("chain {name}: jumps nested deeper than {MAX_DEPTH}"));
            return fate;
        }
        for rule in &chain.rules {
            let reach = rule_reach(rule, self.port, self.node, self.mark_zero);
            let shown = format!("`{}` ({} {})", rule.shown, self.table.label, chain.name);
            let part = match reach {
                Reach::None => continue,
                Reach::All => None,
                Reach::Some(part) => Some(part),
            };
            let verdict = match &rule.target {
                Target::Accept => Some(true),
                Target::Drop => Some(false),
                Target::Continue => None,
                Target::SetsMark => {
                    self.mark_zero = false;
                    None
                }
                Target::Other(what) => {
                    fate.unmodelled.push(format!("{shown} ({what})"));
                    None
                }
                Target::Return => {
                    match part.clone() {
                        // The rest of the chain is skipped for everything: back to the caller
                        // (for a base chain, to its policy).
                        None => break,
                        // That part skips the rest of this chain, whatever it would drop.
                        Some(part) => fate.accepted_some.push(format!("{part}: {shown} returns them early")),
                    }
                    None
                }
                Target::Jump(to) | Target::Goto(to) => {
                    let goto = matches!(rule.target, Target::Goto(_));
                    let mut sub = self.chain(to, depth + 1);
                    let rest = sub.rest.take();
                    fate.absorb(sub);
                    match (part.clone(), rest) {
                        (None, Some(rest)) => {
                            fate.rest = Some(rest);
                            return fate;
                        }
                        (None, None) if goto => break,
                        (None, None) => {}
                        (Some(part), Some((true, by))) => fate.accepted_some.push(format!("{part}: {by}")),
                        (Some(part), Some((false, by))) => fate.dropped_some.push(format!("{part}: {by}")),
                        (Some(part), None) if goto => {
                            fate.accepted_some.push(format!("{part}: {shown} leaves this chain for them"))
                        }
                        (Some(_), None) => {}
                    }
                    None
                }
            };
            match (verdict, part) {
                (None, _) => {}
                (Some(accept), None) => {
                    fate.rest = Some((accept, shown));
                    return fate;
                }
                (Some(true), Some(part)) => fate.accepted_some.push(format!("{part}: {shown}")),
                (Some(false), Some(part)) => fate.dropped_some.push(format!("{part}: {shown}")),
            }
        }
        if let Some(policy) = chain.policy {
            let by = format!("the policy {} of {} {}", if policy { "ACCEPT" } else { "DROP" }, self.table.label, name);
            fate.rest = Some((policy, by));
        }
        fate
    }
}

/// The verdict for one port over the whole class.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PortVerdict {
    pub port: u16,
    /// The rule that drops every connection attempt, if one does.
    pub closed_by: Option<String>,
    /// Rules that drop only part (when not closed), and parts accepted before a drop.
    pub dropped_some: Vec<String>,
    pub accepted_some: Vec<String>,
    pub unmodelled: Vec<String>,
}

impl PortVerdict {
    fn open_to_all(&self) -> bool {
        self.closed_by.is_none() && self.dropped_some.is_empty()
    }

    fn describe(&self) -> String {
        let mut words = if let Some(by) = &self.closed_by {
            format!("tcp/{}: closed to every source by {by}", self.port)
        } else if self.dropped_some.is_empty() {
            format!("tcp/{}: open, nothing drops or rejects new connections to it", self.port)
        } else {
            format!(
                "tcp/{}: closed only in part, the rest gets through; dropped: {}",
                self.port,
                self.dropped_some.join("; ")
            )
        };
        if self.closed_by.is_none() && !self.accepted_some.is_empty() {
            words.push_str(&format!(" (accepted: {})", self.accepted_some.join("; ")));
        }
        if !self.unmodelled.is_empty() {
            words.push_str(&format!(" (not modelled: {})", self.unmodelled.join("; ")));
        }
        words
    }
}

/// Judges one port across every table. Each of the node's addresses and uplinks is judged on
/// its own (there are few), so two rules that each drop the port on some of them add up; only
/// the source address stays a space judged as a whole.
pub(crate) fn judge_port(tables: &[Table], node: &Node, port: u16) -> PortVerdict {
    let mut parts = Vec::new();
    for address in &node.addresses {
        for uplink in &node.uplinks {
            let focus = Node { uplinks: vec![uplink.clone()], addresses: vec![*address], ..node.clone() };
            parts.push((format!("to {address} via {uplink}"), judge_focused(tables, &focus, port)));
        }
    }
    let all_closed = parts.iter().all(|(_, v)| v.closed_by.is_some());
    let count = parts.len();
    // Each finding once, with the places it holds for unless it holds for all of them.
    let mut dropped: Vec<(String, Vec<String>)> = Vec::new();
    let mut accepted: Vec<(String, Vec<String>)> = Vec::new();
    let mut closed_by: Vec<String> = Vec::new();
    let mut unmodelled: Vec<String> = Vec::new();
    let note = |list: &mut Vec<(String, Vec<String>)>, item: String, place: &str| match list
        .iter_mut()
        .find(|(i, _)| *i == item)
    {
        Some((_, places)) => places.push(place.to_string()),
        None => list.push((item, vec![place.to_string()])),
    };
    for (place, part) in &parts {
        match &part.closed_by {
            Some(by) if all_closed => {
                if !closed_by.contains(by) {
                    closed_by.push(by.clone())
                }
            }
            Some(by) => note(&mut dropped, format!("every packet: {by}"), place),
            None if part.dropped_some.is_empty() => note(&mut dropped, "nothing".into(), place),
            None => {
                for d in &part.dropped_some {
                    note(&mut dropped, d.clone(), place);
                }
            }
        }
        for a in &part.accepted_some {
            note(&mut accepted, a.clone(), place);
        }
        for u in &part.unmodelled {
            if !unmodelled.contains(u) {
                unmodelled.push(u.clone());
            }
        }
    }
    let placed = |list: Vec<(String, Vec<String>)>| -> Vec<String> {
        list.into_iter()
            .map(|(item, places)| match (item.as_str(), places.len() == count) {
                ("nothing", _) => format!("nothing for packets {}", places.join(", ")),
                (_, true) => item,
                (_, false) => format!("{} ({item})", places.join(", ")),
            })
            .collect()
    };
    let open_everywhere = dropped.len() == 1 && dropped[0].0 == "nothing" && dropped[0].1.len() == count;
    PortVerdict {
        port,
        closed_by: all_closed.then(|| closed_by.join("; and ")),
        dropped_some: if all_closed || open_everywhere { Vec::new() } else { placed(dropped) },
        accepted_some: placed(accepted),
        unmodelled,
    }
}

/// Judges one port for packets to one address on one uplink, across every table, in the order
/// packets meet them.
fn judge_focused(tables: &[Table], node: &Node, port: u16) -> PortVerdict {
    let mut verdict =
        PortVerdict { port, closed_by: None, dropped_some: vec![], accepted_some: vec![], unmodelled: vec![] };
    let mut mark_zero = true;
    for table in tables {
        for entry in &table.entry {
            let mut walk = Walk { table, port, node, mark_zero };
            let fate = walk.chain(entry, 0);
            mark_zero = walk.mark_zero;
            if table.marks_only {
                continue;
            }
            verdict.unmodelled.extend(fate.unmodelled);
            match fate.rest {
                Some((false, by)) if fate.accepted_some.is_empty() => {
                    if verdict.closed_by.is_none() {
                        verdict.closed_by = Some(by);
                    }
                }
                Some((false, by)) => {
                    verdict.dropped_some.push(format!("everything else: {by}"));
                    verdict.accepted_some.extend(fate.accepted_some);
                }
                _ => verdict.accepted_some.extend(fate.accepted_some),
            }
            verdict.dropped_some.extend(fate.dropped_some);
        }
    }
    verdict
}

/// Reads `ip -4 -o addr show` and `ip -4 -o route show default`, with the Node's pod CIDRs.
pub(crate) fn parse_node(addr: &str, route: &str, pod_cidrs: &[String]) -> Node {
    let mut addresses = Vec::new();
    for line in addr.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let Some(i) = words.iter().position(|w| *w == "inet")
            && let Some(net) = words.get(i + 1).and_then(|w| Net::parse(w))
            && !net.is_loopback()
        {
            addresses.push(net.addr);
        }
    }
    let mut uplinks: Vec<String> = route
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            words.iter().position(|w| *w == "dev").and_then(|i| words.get(i + 1)).map(|d| d.to_string())
        })
        .collect();
    uplinks.dedup();
    let pod_nets = pod_cidrs.iter().filter_map(|c| Net::parse(c)).collect();
    Node { uplinks, addresses, pod_nets }
}

/// What the node's tools printed, split by the markers of [`GATHER`].
pub(crate) fn sections(output: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in output.lines() {
        if let Some(name) = line.strip_prefix("==== ckslab ") {
            out.push((name.trim().to_string(), String::new()));
        } else if let Some((_, text)) = out.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    out
}

/// One shell run on the node: its addresses, uplink and every ruleset, each under a marker.
const GATHER: &str = r#"echo '==== ckslab addr'; ip -4 -o addr show
echo '==== ckslab route'; ip -4 -o route show default
for s in iptables-nft-save iptables-legacy-save; do
  if command -v "$s" >/dev/null 2>&1; then echo "==== ckslab $s"; "$s" 2>/dev/null; fi
done
if command -v nft >/dev/null 2>&1; then
  echo '==== ckslab nft'; nft -j list ruleset 2>/dev/null
  echo '==== ckslab nft-text'; nft -a list ruleset 2>/dev/null
fi
true"#;

/// Every table of every ruleset found, in the order packets meet them.
pub(crate) fn tables_from(sections: &[(String, String)]) -> Result<Vec<Table>, String> {
    let mut tables = Vec::new();
    let mut seen_any = false;
    for (name, text) in sections {
        match name.as_str() {
            "iptables-nft-save" | "iptables-legacy-save" => {
                seen_any = true;
                let tool = name.trim_end_matches("-save");
                tables.extend(iptables::parse(text, tool)?);
            }
            "nft" => {
                seen_any = true;
                if !text.trim().is_empty() {
                    let shown = sections.iter().find(|(n, _)| n == "nft-text").map(|(_, t)| t.as_str());
                    tables.extend(nft::parse(text, shown.unwrap_or_default())?);
                }
            }
            _ => {}
        }
    }
    if !seen_any {
        return Err("the node has neither iptables-save nor nft".into());
    }
    Ok(tables)
}

fn ports(list: &[crate::scenario::TemplatedNumber]) -> Result<Vec<u16>, String> {
    list.iter().map(|p| p.get::<u16>()).collect()
}

pub async fn firewall(probe: &FirewallProbe, backend: &dyn Backend) -> Finding {
    let node_ref = probe.node.clone().unwrap_or(NodeRef::ControlPlane);
    let Some(node_name) = resolve_nodes(&node_ref, backend).into_iter().next() else {
        return Finding::error("the cluster has no such node", "a node");
    };
    let (closed, open) = match (ports(&probe.closed), ports(&probe.open)) {
        (Ok(c), Ok(o)) => (c, o),
        (Err(e), _) | (_, Err(e)) => return Finding::error(format!("a port of the check: {e}"), "port numbers"),
    };
    let argv = vec!["sh".to_string(), "-c".to_string(), GATHER.to_string()];
    let output = match backend.exec(&node_name, &argv).await {
        Ok(o) if o.code == 0 => o,
        Ok(o) => {
            return Finding::error(
                format!("reading the packet filter on {node_name} exited {}: {}", o.code, o.stderr.trim()),
                "iptables-save or nft output",
            );
        }
        Err(e) => return Finding::error(format!("reading the packet filter on {node_name}: {e}"), "a node to run on"),
    };
    let sections = sections(&output.stdout);
    let find = |name: &str| sections.iter().find(|(n, _)| n == name).map(|(_, t)| t.as_str()).unwrap_or("");
    let node = parse_node(find("addr"), find("route"), &pod_cidrs(backend, &node_name).await);
    if node.uplinks.is_empty() || node.addresses.is_empty() {
        return Finding::error(
            format!("{node_name} shows no default route or no IPv4 address (`ip -4 addr`, `ip -4 route`)"),
            "a node on a network",
        );
    }
    let tables = match tables_from(&sections) {
        Ok(t) => t,
        Err(e) => return Finding::error(format!("reading the packet filter on {node_name}: {e}"), "a ruleset"),
    };
    judge(&node_name, &node, &tables, &closed, &open)
}

/// The node's pod CIDRs from the API (none if it cannot say: then its pods' addresses count
/// as another machine's, which only makes closing harder, never easier).
async fn pod_cidrs(backend: &dyn Backend, node_name: &str) -> Vec<String> {
    use k8s_openapi::api::core::v1::Node as KubeNode;
    let Ok(client) = backend.client().await else { return Vec::new() };
    match kube::Api::<KubeNode>::all(client).get(node_name).await {
        Ok(node) => {
            let spec = node.spec.unwrap_or_default();
            spec.pod_cidrs.or(spec.pod_cidr.map(|c| vec![c])).unwrap_or_default()
        }
        Err(e) => {
            tracing::debug!(node = node_name, error = %e, "no pod CIDRs for the firewall probe");
            Vec::new()
        }
    }
}

fn judge(node_name: &str, node: &Node, tables: &[Table], closed: &[u16], open: &[u16]) -> Finding {
    let mut bad = Vec::new();
    let mut good = Vec::new();
    for &port in closed {
        let v = judge_port(tables, node, port);
        if v.closed_by.is_some() { good.push(v.describe()) } else { bad.push(v.describe()) }
    }
    for &port in open {
        let v = judge_port(tables, node, port);
        if v.open_to_all() { good.push(v.describe()) } else { bad.push(v.describe()) }
    }
    let space = format!(
        "new TCP connections to {} from other machines (arriving on {})",
        node.addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", "),
        node.uplinks.join(", ")
    );
    let mut expected = Vec::new();
    if !closed.is_empty() {
        expected.push(format!("tcp/{} dropped or rejected for all {space}", join_ports(closed)));
    }
    if !open.is_empty() {
        expected.push(format!("tcp/{} dropped for none of them", join_ports(open)));
    }
    let expected = format!("on {node_name}: {}", expected.join("; "));
    if bad.is_empty() { Finding::pass(good.join("; "), expected) } else { Finding::fail(bad.join("; "), expected) }
}

fn join_ports(ports: &[u16]) -> String {
    ports.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", tcp/")
}

#[cfg(test)]
mod tests;
