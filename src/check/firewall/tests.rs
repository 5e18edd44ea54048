use super::*;

/// The control plane of a kind cluster: eth0 on the kind network, the pod gateway on a veth.
const ADDR: &str = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
2: eth0    inet 172.18.0.2/16 brd 172.18.255.255 scope global eth0\\       valid_lft forever preferred_lft forever
3: veth1a2b3c4d    inet 10.244.0.1/32 scope global veth1a2b3c4d\\       valid_lft forever preferred_lft forever
";
const ROUTE: &str = "default via 172.18.0.1 dev eth0 \n";

/// What kube-proxy (iptables mode) and kube-router's network policy controller leave in the
/// filter and nat tables: their jumps come first in INPUT, and kube-router accepts marked
/// packets there (only packets its pod chains marked).
const KUBE_FILTER: &str = r#"*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-ROUTER-INPUT - [0:0]
:KUBE-POD-FW-ABC - [0:0]
-A INPUT -m comment --comment "kube-router netpol - 4IA2OSFRMVNDXBVV" -j KUBE-ROUTER-INPUT
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS
-A INPUT -j KUBE-FIREWALL
-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
-A KUBE-ROUTER-INPUT -d 10.96.0.0/12 -m comment --comment "allow traffic to primary/secondary cluster IP range" -j RETURN
-A KUBE-ROUTER-INPUT -p tcp -m comment --comment "allow LOCAL TCP traffic to node ports" -m addrtype --dst-type LOCAL -m multiport --dports 30000:32767 -j RETURN
-A KUBE-ROUTER-INPUT -s 10.244.0.5/32 -m comment --comment "pod fw" -j KUBE-POD-FW-ABC
-A KUBE-ROUTER-INPUT -m comment --comment "accept marked" -m mark --mark 0x20000/0x20000 -j ACCEPT
-A KUBE-POD-FW-ABC -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A KUBE-POD-FW-ABC -j MARK --set-xmark 0x10000/0x10000
"#;

const KUBE_NAT: &str = r#"*nat
:PREROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-SVC-NPX46M4PTMTKRN6Y - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment "default/kubernetes:https cluster IP" -m tcp --dport 443 -j KUBE-SVC-NPX46M4PTMTKRN6Y
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-SVC-NPX46M4PTMTKRN6Y ! -s 10.244.0.0/16 -d 10.96.0.1/32 -p tcp -j KUBE-MARK-MASQ
COMMIT
"#;

fn node() -> Node {
    parse_node(ADDR, ROUTE, &["10.244.0.0/24".to_string()])
}

/// iptables-save text: kube's tables with the learner's lines added to filter.
fn saved(extra_filter: &str) -> String {
    format!("{KUBE_FILTER}{extra_filter}\nCOMMIT\n{KUBE_NAT}")
}

fn tables(iptables: &str, nft_json: Option<&str>) -> Vec<Table> {
    let mut text = format!("==== ckslab iptables-nft-save\n{iptables}");
    if let Some(json) = nft_json {
        text.push_str(&format!("==== ckslab nft\n{json}\n"));
    }
    tables_from(&sections(&text)).expect("rulesets parse")
}

fn closed(tables: &[Table], port: u16) -> bool {
    judge_port(tables, &node(), port).closed_by.is_some()
}

#[test]
fn the_node_is_its_uplink_and_every_address_but_loopback() {
    let n = node();
    assert_eq!(n.uplinks, vec!["eth0"]);
    assert_eq!(n.addresses, vec![Ipv4Addr::new(172, 18, 0, 2), Ipv4Addr::new(10, 244, 0, 1)]);
}

#[test]
fn with_only_kubernetes_rules_every_port_is_open() {
    let t = tables(&saved(""), None);
    for port in [22, 6443, 8888] {
        let v = judge_port(&t, &node(), port);
        assert!(v.open_to_all(), "{port}: {v:?}");
    }
}

#[test]
fn a_drop_appended_after_kubernetes_own_jumps_closes_the_port() {
    // kube-router's "accept marked" rule comes first, but a packet from another machine carries
    // no mark: its pod chains only mark packets from its own pods.
    let t = tables(&saved("-A INPUT -p tcp -m tcp --dport 8888 -j DROP"), None);
    assert!(closed(&t, 8888), "{:?}", judge_port(&t, &node(), 8888));
    assert!(judge_port(&t, &node(), 6443).open_to_all());
}

#[test]
fn multiport_reject_in_a_chain_of_ones_own_closes_each_listed_port() {
    let extra = ":GUARD - [0:0]\n-A INPUT ! -i lo -j GUARD\n-A GUARD -p tcp -m multiport --dports 8888,9000:9010 -j REJECT --reject-with tcp-reset";
    let t = tables(&saved(extra), None);
    assert!(closed(&t, 8888));
    assert!(closed(&t, 9005));
    assert!(!closed(&t, 9011));
}

#[test]
fn a_drop_for_one_source_leaves_the_port_open_to_every_other() {
    let t = tables(&saved("-A INPUT -s 172.18.0.3/32 -p tcp -m tcp --dport 8888 -j DROP"), None);
    let v = judge_port(&t, &node(), 8888);
    assert!(v.closed_by.is_none(), "{v:?}");
    assert!(v.describe().contains("packets from 172.18.0.3/32"), "{}", v.describe());
}

#[test]
fn a_drop_to_one_address_leaves_the_nodes_other_addresses_open() {
    let t = tables(&saved("-A INPUT -d 172.18.0.2/32 -p tcp -m tcp --dport 8888 -j DROP"), None);
    let v = judge_port(&t, &node(), 8888);
    assert!(v.closed_by.is_none(), "{v:?}");
    assert!(v.describe().contains("10.244.0.1"), "{}", v.describe());
}

#[test]
fn a_drop_on_the_uplink_or_off_loopback_covers_every_machine() {
    for rule in [
        "-A INPUT -i eth0 -p tcp -m tcp --dport 8888 -j DROP",
        "-A INPUT -i eth+ -p tcp -m tcp --dport 8888 -m conntrack --ctstate NEW -j DROP",
        "-A INPUT ! -i lo -p tcp -m tcp --dport 8888 --tcp-flags FIN,SYN,RST,ACK SYN -j DROP",
        "-A INPUT -s 0.0.0.0/0 -d 172.18.0.0/16 -p tcp --dport 8888 -j DROP\n-A INPUT -d 10.244.0.0/16 -p tcp --dport 8888 -j DROP",
    ] {
        let t = tables(&saved(rule), None);
        assert!(closed(&t, 8888), "{rule}: {:?}", judge_port(&t, &node(), 8888));
    }
    for rule in [
        "-A INPUT -i lo -p tcp --dport 8888 -j DROP",
        "-A INPUT -i veth+ -p tcp --dport 8888 -j DROP",
        "-A INPUT -p udp --dport 8888 -j DROP",
        "-A INPUT -p tcp --dport 8888 -m conntrack --ctstate ESTABLISHED -j DROP",
        "-A INPUT -p tcp --dport 8888 ! --syn -j DROP",
    ] {
        let t = tables(&saved(rule), None);
        assert!(judge_port(&t, &node(), 8888).open_to_all(), "{rule}");
    }
}

#[test]
fn an_accept_for_part_of_the_class_before_the_drop_leaves_that_part_open() {
    let extra = "-A INPUT -s 10.0.0.0/8 -p tcp --dport 8888 -j ACCEPT\n-A INPUT -p tcp --dport 8888 -j DROP";
    let t = tables(&saved(extra), None);
    let v = judge_port(&t, &node(), 8888);
    assert!(v.closed_by.is_none(), "{v:?}");
    assert!(v.describe().contains("accepted: packets from 10.0.0.0/8"), "{}", v.describe());
}

#[test]
fn a_drop_policy_closes_what_is_not_accepted_and_keeps_what_is() {
    let text = saved(
        "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A INPUT -p tcp -m multiport --dports 6443,10250 -j ACCEPT",
    )
    .replace(":INPUT ACCEPT [0:0]", ":INPUT DROP [0:0]");
    let t = tables(&text, None);
    let v = judge_port(&t, &node(), 8888);
    assert!(v.closed_by.as_deref().unwrap_or_default().contains("policy DROP"), "{v:?}");
    assert!(judge_port(&t, &node(), 6443).closed_by.is_none());
    // 6443 is accepted, so nothing drops it: open.
    assert!(judge_port(&t, &node(), 6443).open_to_all(), "{:?}", judge_port(&t, &node(), 6443));
}

#[test]
fn a_match_ckslab_does_not_model_never_closes_a_port_alone() {
    let t = tables(&saved("-A INPUT -p tcp --dport 8888 -m recent --rcheck --seconds 60 -j DROP"), None);
    let v = judge_port(&t, &node(), 8888);
    assert!(v.closed_by.is_none());
    assert!(v.describe().contains("--rcheck"), "{}", v.describe());
}

const NFT_GUARD: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.9", "release_name": "Old Doc Yak #3", "json_schema_version": 1}},
 {"table": {"family": "ip", "name": "filter", "handle": 1}},
 {"chain": {"family": "ip", "table": "filter", "name": "INPUT", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}},
 {"table": {"family": "inet", "name": "guard", "handle": 9}},
 {"chain": {"family": "inet", "table": "guard", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}},
 {"set": {"family": "inet", "name": "closed", "table": "guard", "type": "inet_service", "handle": 2, "elem": [8888, 9999]}},
 {"rule": {"family": "inet", "table": "guard", "chain": "input", "handle": 3, "expr": [
   {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "lo"}}, {"accept": null}]}},
 {"rule": {"family": "inet", "table": "guard", "chain": "input", "handle": 4, "expr": [
   {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": "@closed"}}, {"counter": {"packets": 0, "bytes": 0}}, {"drop": null}]}},
 {"rule": {"family": "inet", "table": "guard", "chain": "input", "handle": 5, "expr": [
   {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "172.18.0.3"}},
   {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": {"set": [7000, {"range": [7100, 7200]}]}}}, {"reject": null}]}}
]}"#;

#[test]
fn nftables_tables_of_ones_own_are_judged_with_named_and_anonymous_sets() {
    let t = tables(&saved(""), Some(NFT_GUARD));
    // iptables' own table in the nft list is skipped (read from iptables-nft-save instead).
    assert!(t.iter().all(|t| t.label != "nft ip filter"), "{:?}", t.iter().map(|t| &t.label).collect::<Vec<_>>());
    assert!(closed(&t, 8888));
    assert!(closed(&t, 9999));
    let v = judge_port(&t, &node(), 7150);
    assert!(v.closed_by.is_none() && !v.dropped_some.is_empty(), "{v:?}");
    assert!(judge_port(&t, &node(), 6443).open_to_all());
}

#[test]
fn an_nft_drop_policy_closes_every_port_not_accepted_first() {
    let json = r#"{"nftables": [{"table": {"family": "inet", "name": "f", "handle": 1}},
 {"chain": {"family": "inet", "table": "f", "name": "in", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}},
 {"rule": {"family": "inet", "table": "f", "chain": "in", "handle": 2, "expr": [
   {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, {"accept": null}]}},
 {"rule": {"family": "inet", "table": "f", "chain": "in", "handle": 3, "expr": [
   {"match": {"op": "!=", "left": {"meta": {"key": "iifname"}}, "right": "eth0"}}, {"accept": null}]}},
 {"rule": {"family": "inet", "table": "f", "chain": "in", "handle": 4, "expr": [
   {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": {"set": [6443, 10250]}}}, {"accept": null}]}}
]}"#;
    let t = tables(&saved(""), Some(json));
    assert!(closed(&t, 8888), "{:?}", judge_port(&t, &node(), 8888));
    assert!(judge_port(&t, &node(), 10250).open_to_all());
}

#[test]
fn the_check_names_each_port_that_is_not_as_asked() {
    let t = tables(&saved("-A INPUT -p tcp -m multiport --dports 8888,10250 -j DROP"), None);
    let finding = judge("cp", &node(), &t, &[8888, 9999], &[6443, 10250]);
    assert_eq!(finding.outcome, super::super::Outcome::Fail);
    assert!(finding.observed.contains("tcp/9999: open"), "{}", finding.observed);
    assert!(finding.observed.contains("tcp/10250: closed to every source"), "{}", finding.observed);
    assert!(!finding.observed.contains("tcp/8888"), "{}", finding.observed);
    let good = tables(&saved("-A INPUT -p tcp -m multiport --dports 8888,9999 -j DROP"), None);
    assert_eq!(judge("cp", &node(), &good, &[8888, 9999], &[6443, 10250]).outcome, super::super::Outcome::Pass);
}

#[test]
fn a_rule_with_unbalanced_quotes_is_an_error_that_names_the_line() {
    let err = iptables::parse(
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m comment --comment \"open -j DROP\nCOMMIT\n",
        "iptables-nft",
    )
    .unwrap_err();
    assert!(err.contains("line 3"), "{err}");
}

#[test]
fn nft_rules_are_shown_as_nft_prints_them() {
    let text = "table inet guard { # handle 9\n\tset closed { # handle 2\n\t\ttype inet_service\n\t\telements = { 8888, 9999 }\n\t}\n\tchain input { # handle 1\n\t\ttype filter hook input priority filter; policy accept;\n\t\tiifname \"lo\" accept # handle 3\n\t\ttcp dport @closed counter packets 0 bytes 0 drop # handle 4\n\t}\n}\n";
    let input = format!(
        "==== ckslab iptables-nft-save\n{}==== ckslab nft\n{NFT_GUARD}\n==== ckslab nft-text\n{text}",
        saved("")
    );
    let t = tables_from(&sections(&input)).expect("rulesets parse");
    let v = judge_port(&t, &node(), 8888);
    assert!(
        v.closed_by
            .as_deref()
            .unwrap_or_default()
            .contains("`tcp dport @closed counter packets 0 bytes 0 drop` (nft inet guard input)"),
        "{v:?}"
    );
}
