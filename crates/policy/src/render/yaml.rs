//! A small block-style YAML writer for the objects Accord renders.
//!
//! Rendering tens of thousands of policies through a generic YAML serializer dominated `accord
//! render` on large clusters, so policies are written directly. The output is plain block YAML in
//! the layout `kubectl` users know; strings are quoted whenever YAML could read them as anything
//! but the same string.

use crate::objects::{
    IntOrString, LabelSelector, Labels, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort,
    OwnerReference,
};

/// A YAML node borrowing from the object being rendered.
pub(crate) enum Node<'a> {
    Map(Vec<(&'a str, Node<'a>)>),
    Seq(Vec<Node<'a>>),
    Str(&'a str),
    /// A string made while rendering (e.g. `name.namespace`).
    String(String),
    Int(i64),
    Bool(bool),
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn is_empty_collection(node: &Node) -> Option<&'static str> {
    match node {
        Node::Map(m) if m.is_empty() => Some("{}"),
        Node::Seq(s) if s.is_empty() => Some("[]"),
        _ => None,
    }
}

fn write_scalar(out: &mut String, node: &Node) {
    match node {
        Node::Str(s) => write_str(out, s),
        Node::String(s) => write_str(out, s),
        Node::Int(i) => out.push_str(&i.to_string()),
        Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Node::Map(_) | Node::Seq(_) => unreachable!("collections are not scalars"),
    }
}

fn write_map(out: &mut String, entries: &[(&str, Node)], at: usize, first_inline: bool) {
    for (i, (key, value)) in entries.iter().enumerate() {
        if i > 0 || !first_inline {
            indent(out, at);
        }
        write_str(out, key);
        out.push(':');
        write_value(out, value, at, false);
    }
}

/// Write what follows `key:` (or `- `, when `in_seq`).
fn write_value(out: &mut String, value: &Node, at: usize, in_seq: bool) {
    if let Some(empty) = is_empty_collection(value) {
        if !in_seq {
            out.push(' ');
        }
        out.push_str(empty);
        out.push('\n');
        return;
    }
    match value {
        Node::Map(m) if in_seq => write_map(out, m, at + 2, true),
        Node::Map(m) => {
            out.push('\n');
            write_map(out, m, at + 2, false);
        }
        Node::Seq(items) => {
            if in_seq {
                // A sequence directly inside a sequence item: `- - a`.
                write_seq(out, items, at + 2, true);
            } else {
                out.push('\n');
                write_seq(out, items, at, false);
            }
        }
        scalar => {
            if !in_seq {
                out.push(' ');
            }
            write_scalar(out, scalar);
            out.push('\n');
        }
    }
}

fn write_seq(out: &mut String, items: &[Node], at: usize, first_inline: bool) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 || !first_inline {
            indent(out, at);
        }
        out.push_str("- ");
        write_value(out, item, at, true);
    }
}

/// Write a document (a map at the top level).
pub(crate) fn write_document(out: &mut String, root: &Node) {
    match root {
        Node::Map(m) if !m.is_empty() => write_map(out, m, 0, false),
        other => {
            write_value(out, other, 0, true);
        }
    }
}

/// Whether a plain scalar would be read back as this same string (by YAML 1.1 and 1.2 readers).
fn plain_is_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphanumeric() || first == '_' || first == '/' || first == '.') {
        return false;
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c))
    {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    const SPECIAL: &[&str] = &[
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", ".inf", ".nan",
    ];
    !(SPECIAL.contains(&lower.as_str()) || looks_numeric(&lower) || looks_like_date(s))
}

/// Integers and floats in any notation YAML 1.1 or 1.2 accepts (underscores allowed in 1.1).
fn looks_numeric(lower: &str) -> bool {
    let t = lower.replace('_', "");
    let digits = t.strip_prefix(['-', '+']).unwrap_or(&t);
    parses_as_f64(&t)
        || ["0x", "0o", "0b"].iter().any(|p| digits.starts_with(p))
        || (!digits.is_empty()
            && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
            && digits.matches('.').count() <= 1)
}

/// Whether `s` is what `str::parse::<f64>` accepts: a sign, then `inf`, `infinity` or `nan`
/// (any case), or digits with at most one `.` (at least one digit) and an optional exponent.
/// Checked by its syntax rather than by parsing: the parser's tables are ~10 KiB of the
/// dashboard's WASM, which writes intents with this module.
fn parses_as_f64(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    if ["inf", "infinity", "nan"]
        .iter()
        .any(|w| body.eq_ignore_ascii_case(w))
    {
        return true;
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

fn looks_like_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 8 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-'
}

fn write_str(out: &mut String, s: &str) {
    if plain_is_safe(s) {
        out.push_str(s);
    } else if s.chars().all(|c| !c.is_control()) {
        out.push('\'');
        out.push_str(&s.replace('\'', "''"));
        out.push('\'');
    } else {
        // JSON strings are valid double-quoted YAML scalars.
        out.push_str(&serde_json::to_string(s).unwrap_or_default());
    }
}

fn labels(l: &Labels) -> Node<'_> {
    Node::Map(l.iter().map(|(k, v)| (k.as_str(), Node::Str(v))).collect())
}

fn selector(s: &LabelSelector) -> Node<'_> {
    let mut m = Vec::new();
    if !s.match_labels.is_empty() {
        m.push(("matchLabels", labels(&s.match_labels)));
    }
    if !s.match_expressions.is_empty() {
        let exprs = s
            .match_expressions
            .iter()
            .map(|r| {
                let mut e = vec![
                    ("key", Node::Str(&r.key)),
                    ("operator", Node::Str(operator(r.operator))),
                ];
                if !r.values.is_empty() {
                    e.push((
                        "values",
                        Node::Seq(r.values.iter().map(|v| Node::Str(v)).collect()),
                    ));
                }
                Node::Map(e)
            })
            .collect();
        m.push(("matchExpressions", Node::Seq(exprs)));
    }
    Node::Map(m)
}

fn operator(op: crate::objects::SelectorOperator) -> &'static str {
    use crate::objects::SelectorOperator::*;
    match op {
        In => "In",
        NotIn => "NotIn",
        Exists => "Exists",
        DoesNotExist => "DoesNotExist",
    }
}

fn port(p: &NetworkPolicyPort) -> Node<'_> {
    let mut m = Vec::new();
    match &p.port {
        Some(IntOrString::Int(i)) => m.push(("port", Node::Int(i64::from(*i)))),
        Some(IntOrString::String(s)) => m.push(("port", Node::Str(s))),
        None => {}
    }
    if let Some(e) = p.end_port {
        m.push(("endPort", Node::Int(i64::from(e))));
    }
    if let Some(proto) = p.protocol {
        m.push(("protocol", Node::Str(proto.as_str())));
    }
    Node::Map(m)
}

fn peer(p: &NetworkPolicyPeer) -> Node<'_> {
    let mut m = Vec::new();
    if let Some(s) = &p.pod_selector {
        m.push(("podSelector", selector(s)));
    }
    if let Some(s) = &p.namespace_selector {
        m.push(("namespaceSelector", selector(s)));
    }
    if let Some(b) = &p.ip_block {
        let mut ib = vec![("cidr", Node::Str(&b.cidr))];
        if !b.except.is_empty() {
            ib.push((
                "except",
                Node::Seq(b.except.iter().map(|e| Node::Str(e)).collect()),
            ));
        }
        m.push(("ipBlock", Node::Map(ib)));
    }
    Node::Map(m)
}

fn owner(o: &OwnerReference) -> Node<'_> {
    let mut m = vec![
        ("apiVersion", Node::Str(&o.api_version)),
        ("kind", Node::Str(&o.kind)),
        ("name", Node::Str(&o.name)),
    ];
    if !o.uid.is_empty() {
        m.push(("uid", Node::Str(&o.uid)));
    }
    if let Some(c) = o.controller {
        m.push(("controller", Node::Bool(c)));
    }
    if let Some(b) = o.block_owner_deletion {
        m.push(("blockOwnerDeletion", Node::Bool(b)));
    }
    Node::Map(m)
}

fn rule<'a>(
    ports: &'a [NetworkPolicyPort],
    peers_key: &'static str,
    peers: &'a [NetworkPolicyPeer],
) -> Node<'a> {
    let mut m = Vec::new();
    if !ports.is_empty() {
        m.push(("ports", Node::Seq(ports.iter().map(port).collect())));
    }
    if !peers.is_empty() {
        m.push((peers_key, Node::Seq(peers.iter().map(peer).collect())));
    }
    Node::Map(m)
}

fn target_ports(ports: &[crate::intents::TargetPort]) -> Node<'_> {
    Node::Seq(
        ports
            .iter()
            .map(|p| {
                let mut m = vec![("port", Node::Int(i64::from(p.port)))];
                if let Some(end) = p.end_port {
                    m.push(("endPort", Node::Int(i64::from(end))));
                }
                m.push(("protocol", Node::Str(p.protocol.as_str())));
                Node::Map(m)
            })
            .collect(),
    )
}

fn strings(v: &[String]) -> Node<'_> {
    Node::Seq(v.iter().map(|s| Node::Str(s)).collect())
}

/// The YAML node of a ClientIntents, as `k8s.otterize.com/v2beta1`.
pub(crate) fn intents(ci: &crate::ClientIntents) -> Node<'_> {
    use crate::intents::TargetKind;
    let full = |name: &str, namespace: &str| {
        if namespace == ci.namespace || namespace.is_empty() {
            Node::String(name.to_string())
        } else {
            Node::String(format!("{name}.{namespace}"))
        }
    };
    let targets = ci
        .targets
        .iter()
        .map(|t| match &t.kind {
            TargetKind::Workload {
                name,
                namespace,
                kind,
                ports,
                kafka,
            } => {
                let mut m = vec![("name", full(name, namespace))];
                if let Some(kind) = kind {
                    m.push(("kind", Node::Str(kind)));
                }
                if !ports.is_empty() {
                    m.push(("ports", target_ports(ports)));
                }
                let key = if *kafka { "kafka" } else { "kubernetes" };
                Node::Map(vec![(key, Node::Map(m))])
            }
            TargetKind::Service {
                name,
                namespace,
                ports,
            } => {
                let mut m = vec![("name", full(name, namespace))];
                if !ports.is_empty() {
                    m.push(("ports", target_ports(ports)));
                }
                Node::Map(vec![("service", Node::Map(m))])
            }
            TargetKind::Internet {
                ips,
                domains,
                ports,
            } => {
                let mut m = Vec::new();
                if !ips.is_empty() {
                    m.push(("ips", strings(ips)));
                }
                if !domains.is_empty() {
                    m.push(("domains", strings(domains)));
                }
                if !ports.is_empty() {
                    m.push((
                        "ports",
                        Node::Seq(ports.iter().map(|p| Node::Int(i64::from(*p))).collect()),
                    ));
                }
                Node::Map(vec![("internet", Node::Map(m))])
            }
            TargetKind::NonNetwork { kind, name } => Node::Map(vec![(
                kind.as_str(),
                Node::Map(vec![("name", Node::Str(name))]),
            )]),
        })
        .collect();
    let mut workload = vec![("name", Node::Str(&ci.workload.name))];
    if let Some(kind) = &ci.workload.kind {
        workload.push(("kind", Node::Str(kind)));
    }
    let mut meta = vec![("name", Node::Str(&ci.name))];
    if !ci.namespace.is_empty() {
        meta.push(("namespace", Node::Str(&ci.namespace)));
    }
    Node::Map(vec![
        ("apiVersion", Node::Str("k8s.otterize.com/v2beta1")),
        ("kind", Node::Str("ClientIntents")),
        ("metadata", Node::Map(meta)),
        (
            "spec",
            Node::Map(vec![
                ("workload", Node::Map(workload)),
                ("targets", Node::Seq(targets)),
            ]),
        ),
    ])
}

/// The YAML node of a NetworkPolicy, fields in the order the API documents them.
pub(crate) fn policy(p: &NetworkPolicy) -> Node<'_> {
    let md = &p.metadata;
    let mut meta = Vec::new();
    if !md.name.is_empty() {
        meta.push(("name", Node::Str(&md.name)));
    }
    if let Some(ns) = &md.namespace {
        meta.push(("namespace", Node::Str(ns)));
    }
    if let Some(uid) = &md.uid {
        meta.push(("uid", Node::Str(uid)));
    }
    if !md.labels.is_empty() {
        meta.push(("labels", labels(&md.labels)));
    }
    if !md.annotations.is_empty() {
        meta.push(("annotations", labels(&md.annotations)));
    }
    if !md.owner_references.is_empty() {
        meta.push((
            "ownerReferences",
            Node::Seq(md.owner_references.iter().map(owner).collect()),
        ));
    }
    let s = &p.spec;
    let mut spec = vec![("podSelector", selector(&s.pod_selector))];
    if !s.policy_types.is_empty() {
        let types = s
            .policy_types
            .iter()
            .map(|t| {
                Node::Str(match t {
                    crate::objects::PolicyType::Ingress => "Ingress",
                    crate::objects::PolicyType::Egress => "Egress",
                })
            })
            .collect();
        spec.push(("policyTypes", Node::Seq(types)));
    }
    if let Some(ingress) = &s.ingress {
        spec.push((
            "ingress",
            Node::Seq(
                ingress
                    .iter()
                    .map(|r| rule(&r.ports, "from", &r.from))
                    .collect(),
            ),
        ));
    }
    if let Some(egress) = &s.egress {
        spec.push((
            "egress",
            Node::Seq(egress.iter().map(|r| rule(&r.ports, "to", &r.to)).collect()),
        ));
    }
    Node::Map(vec![
        ("apiVersion", Node::Str(&p.api_version)),
        ("kind", Node::Str(&p.kind)),
        ("metadata", Node::Map(meta)),
        ("spec", Node::Map(spec)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_strings_that_yaml_would_read_as_something_else() {
        let cases = [
            ("server", "server"),
            (
                "intents.otterize.com/service",
                "intents.otterize.com/service",
            ),
            ("true", "'true'"),
            ("No", "'No'"),
            ("1", "'1'"),
            ("0x1f", "'0x1f'"),
            ("1e3", "'1e3'"),
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("1.5", "'1.5'"),
            (".5", "'.5'"),
            ("2024-01-02", "'2024-01-02'"),
            ("1_000", "'1_000'"),
            ("", "''"),
            ("a b", "'a b'"),
            ("it's", "'it''s'"),
            ("-x", "'-x'"),
            ("line\nbreak", "\"line\\nbreak\""),
            ("abc123", "abc123"),
            ("123abc", "123abc"),
        ];
        for (s, want) in cases {
            let mut out = String::new();
            write_str(&mut out, s);
            assert_eq!(out, want, "{s:?}");
            let back: String = serde_yaml::from_str(&out).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn the_float_syntax_check_agrees_with_the_float_parser() {
        let alphabet = [
            "", "0", "1", "9", ".", "e", "E", "-", "+", "_", "x", "inf", "nan",
        ];
        let mut cases: Vec<String> = [
            "infinity",
            "-Infinity",
            "+NaN",
            "INF",
            "infin",
            "nan1",
            "1.e5",
            ".e5",
            "1e",
            "1e+",
            "1e-7",
            "--1",
            "+-1",
            "1..2",
            "0x10",
            " 1",
            "1 ",
            "١",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Every string of up to four pieces of the alphabet.
        let mut level = vec![String::new()];
        for _ in 0..4 {
            level = level
                .iter()
                .flat_map(|p| alphabet.iter().map(move |a| format!("{p}{a}")))
                .collect();
            cases.extend(level.iter().cloned());
        }
        for s in &cases {
            assert_eq!(parses_as_f64(s), s.parse::<f64>().is_ok(), "{s:?}");
        }
    }
}
