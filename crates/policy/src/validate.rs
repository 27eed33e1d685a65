//! Validation of objects as the Kubernetes API server validates them, before they are read:
//! fields a kind does not have (with the closest one it does), and values the API server would
//! refuse (CIDRs, ports, protocols, selector operators, label keys and values). An object with
//! an error here could not exist in a cluster, so the loader leaves it out.
//!
//! Size: a table of the API server's validation rules for the kinds Accord reads, one small
//! function per rule; splitting them would scatter one table.

use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::diagnostic::{Diagnostic, DiagnosticCode, Origin};

pub mod kinds;
pub mod schema;

/// Levenshtein distance, for "did you mean".
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The known name closest to `name`, if it is close enough to be a typo.
pub fn did_you_mean<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&lower, &k.to_ascii_lowercase()), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4) && *d < k.len())
        .min()
        .map(|(_, k)| k)
}

/// Where diagnostics of one object go.
struct Check<'a> {
    origin: &'a Origin,
    object: String,
    diags: &'a mut Vec<Diagnostic>,
    errors: usize,
    /// Report errors as warnings (errors with `--strict`): set for the parts of an object where
    /// manifests in use (the conformance kit's among them) break rules that do not change how
    /// Accord reads them.
    lenient: bool,
}

impl Check<'_> {
    /// A warning: a rule the API server enforces, but the object is still read.
    fn warn(&mut self, code: DiagnosticCode, field: &str, message: String) {
        self.diags.push(Diagnostic::warning(
            code,
            self.origin,
            self.object.clone(),
            field,
            message,
        ));
    }

    fn error(&mut self, code: DiagnosticCode, field: &str, message: String) {
        if self.lenient {
            return self.warn(code, field, message);
        }
        self.errors += 1;
        self.diags.push(Diagnostic::error(
            code,
            self.origin,
            self.object.clone(),
            field,
            message,
        ));
    }

    /// `value` must be a mapping with only `known` keys.
    fn fields<'v>(
        &mut self,
        path: &str,
        value: &'v Value,
        known: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let Some(map) = value.as_object() else {
            if !value.is_null() {
                self.error(
                    DiagnosticCode::InvalidValue,
                    path,
                    format!("expected a mapping, found {}", type_name(value)),
                );
            }
            return None;
        };
        for key in map.keys() {
            if !known.contains(&key.as_str()) {
                let hint = did_you_mean(key, known)
                    .map(|k| format!("; did you mean {k:?}?"))
                    .unwrap_or_default();
                self.error(
                    DiagnosticCode::UnknownField,
                    &join(path, key),
                    format!("unknown field {key:?}{hint}"),
                );
            }
        }
        Some(map)
    }

    /// `value` must be a list; its items with their paths.
    fn list<'v>(&mut self, path: &str, value: Option<&'v Value>) -> Vec<(String, &'v Value)> {
        match value {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{path}[{i}]"), v))
                .collect(),
            Some(v) => {
                self.error(
                    DiagnosticCode::InvalidValue,
                    path,
                    format!("expected a list, found {}", type_name(v)),
                );
                Vec::new()
            }
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

const OBJECT: &[&str] = &["apiVersion", "kind", "metadata", "spec", "status"];
const NP_SPEC: &[&str] = &["podSelector", "ingress", "egress", "policyTypes"];
const INGRESS: &[&str] = &["from", "ports"];
const EGRESS: &[&str] = &["to", "ports"];
const PEER: &[&str] = &["podSelector", "namespaceSelector", "ipBlock"];
const IP_BLOCK: &[&str] = &["cidr", "except"];
const PORT: &[&str] = &["protocol", "port", "endPort"];
const SELECTOR: &[&str] = &["matchLabels", "matchExpressions"];
const REQUIREMENT: &[&str] = &["key", "operator", "values"];

/// Whether a label key is valid: an optional DNS-subdomain prefix and `/`, then a name of at
/// most 63 alphanumerics, `-`, `_` or `.`, starting and ending alphanumeric.
pub fn valid_label_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            })
    });
    prefix_ok && !name.is_empty() && valid_label_value(name)
}

/// Whether a label value is valid: empty, or at most 63 alphanumerics, `-`, `_` or `.`,
/// starting and ending alphanumeric.
pub fn valid_label_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && v.as_bytes()[0].is_ascii_alphanumeric()
            && v.as_bytes()[v.len() - 1].is_ascii_alphanumeric())
}

/// Whether a named port is valid (IANA service name): 1–15 lowercase alphanumerics or `-`,
/// with a letter, no leading, trailing or doubled `-`.
pub fn valid_port_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 15
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && n.bytes().any(|b| b.is_ascii_lowercase())
        && !n.starts_with('-')
        && !n.ends_with('-')
        && !n.contains("--")
}

/// A CIDR as the API server accepts it: an address and a prefix length within its family.
fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = s.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((addr, len))
}

/// Whether the `inner` CIDR lies within `outer` (same family, longer or equal prefix).
fn contains(outer: (IpAddr, u8), inner: (IpAddr, u8)) -> bool {
    // Both families as the top bits of a u128, so that a prefix length masks the same way.
    let bits = |a: IpAddr| match a {
        IpAddr::V4(a) => u128::from(u32::from(a)) << 96,
        IpAddr::V6(a) => u128::from(a),
    };
    if outer.0.is_ipv4() != inner.0.is_ipv4() || inner.1 < outer.1 {
        return false;
    }
    let mask = match outer.1 {
        0 => 0,
        n => u128::MAX << (128 - u32::from(n)),
    };
    bits(outer.0) & mask == bits(inner.0) & mask
}

fn selector(c: &mut Check, path: &str, value: &Value) {
    let Some(map) = c.fields(path, value, SELECTOR) else {
        return;
    };
    match map.get("matchLabels") {
        None | Some(Value::Null | Value::Object(_)) => {}
        Some(v) => c.error(
            DiagnosticCode::InvalidValue,
            &join(path, "matchLabels"),
            format!("expected a mapping, found {}", type_name(v)),
        ),
    }
    if let Some(Value::Object(labels)) = map.get("matchLabels") {
        for (k, v) in labels {
            let field = format!("{path}.matchLabels.{k}");
            if !valid_label_key(k) {
                c.error(
                    DiagnosticCode::InvalidValue,
                    &field,
                    format!("{k:?} is not a valid label key"),
                );
            }
            match v.as_str() {
                Some(v) if valid_label_value(v) => {}
                Some(v) => c.error(
                    DiagnosticCode::InvalidValue,
                    &field,
                    format!("{v:?} is not a valid label value"),
                ),
                None => c.error(
                    DiagnosticCode::InvalidValue,
                    &field,
                    format!("a label value must be a string, found {}", type_name(v)),
                ),
            }
        }
    }
    for (rpath, req) in c.list(&join(path, "matchExpressions"), map.get("matchExpressions")) {
        let Some(r) = c.fields(&rpath, req, REQUIREMENT) else {
            continue;
        };
        match r.get("key").and_then(Value::as_str) {
            Some(k) if valid_label_key(k) => {}
            Some(k) => c.error(
                DiagnosticCode::InvalidValue,
                &join(&rpath, "key"),
                format!("{k:?} is not a valid label key"),
            ),
            None => c.error(
                DiagnosticCode::MissingField,
                &join(&rpath, "key"),
                "a requirement needs a key".into(),
            ),
        }
        let values = r
            .get("values")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        match r.get("operator").and_then(Value::as_str) {
            Some("In" | "NotIn") if values == 0 => c.error(
                DiagnosticCode::InvalidValue,
                &join(&rpath, "values"),
                "must be non-empty for the operators In and NotIn".into(),
            ),
            Some("Exists" | "DoesNotExist") if values > 0 => c.error(
                DiagnosticCode::InvalidValue,
                &join(&rpath, "values"),
                "must be empty for the operators Exists and DoesNotExist".into(),
            ),
            Some("In" | "NotIn" | "Exists" | "DoesNotExist") => {}
            Some(op) => {
                let hint = did_you_mean(op, &["In", "NotIn", "Exists", "DoesNotExist"])
                    .map(|k| format!("; did you mean {k:?}?"))
                    .unwrap_or_default();
                c.error(
                    DiagnosticCode::InvalidValue,
                    &join(&rpath, "operator"),
                    format!("unknown operator {op:?}{hint}"),
                )
            }
            None => c.error(
                DiagnosticCode::MissingField,
                &join(&rpath, "operator"),
                "a requirement needs an operator".into(),
            ),
        }
    }
}

fn port(c: &mut Check, path: &str, value: &Value) {
    let Some(p) = c.fields(path, value, PORT) else {
        return;
    };
    if let Some(proto) = p.get("protocol")
        && !matches!(proto.as_str(), Some("TCP" | "UDP" | "SCTP"))
    {
        c.error(
            DiagnosticCode::InvalidValue,
            &join(path, "protocol"),
            format!("{proto} is not a protocol: use TCP, UDP or SCTP"),
        );
    }
    let number = match p.get("port") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(n) if (1..=65535).contains(&n) => Some(n),
            _ => {
                c.error(
                    DiagnosticCode::InvalidValue,
                    &join(path, "port"),
                    format!("{n} is not a port number: use 1-65535"),
                );
                None
            }
        },
        Some(Value::String(name)) => {
            if !valid_port_name(name) {
                c.error(
                    DiagnosticCode::InvalidValue,
                    &join(path, "port"),
                    format!(
                        "{name:?} is not a valid port name: 1-15 lowercase letters, digits \
                         and single '-', with a letter"
                    ),
                );
            }
            None
        }
        Some(v) => {
            c.error(
                DiagnosticCode::InvalidValue,
                &join(path, "port"),
                format!("a port is a number or a name, not {}", type_name(v)),
            );
            None
        }
    };
    if let Some(end) = p.get("endPort").filter(|v| !v.is_null()) {
        let field = join(path, "endPort");
        match (end.as_i64(), number) {
            (Some(e), _) if !(1..=65535).contains(&e) => c.error(
                DiagnosticCode::InvalidValue,
                &field,
                format!("{e} is not a port number: use 1-65535"),
            ),
            (Some(e), Some(port)) if e < port => c.error(
                DiagnosticCode::InvalidValue,
                &field,
                format!("must be at least port ({port})"),
            ),
            (Some(_), Some(_)) => {}
            (Some(_), None) => c.error(
                DiagnosticCode::InvalidValue,
                &field,
                "may only be set with a numeric port".into(),
            ),
            (None, _) => c.error(
                DiagnosticCode::InvalidValue,
                &field,
                format!("must be a number, not {}", type_name(end)),
            ),
        }
    }
}

fn peer(c: &mut Check, path: &str, value: &Value) {
    let Some(p) = c.fields(path, value, PEER) else {
        return;
    };
    if let Some(sel) = p.get("podSelector") {
        selector(c, &join(path, "podSelector"), sel);
    }
    if let Some(sel) = p.get("namespaceSelector") {
        selector(c, &join(path, "namespaceSelector"), sel);
    }
    let Some(block) = p.get("ipBlock") else {
        return;
    };
    let bpath = join(path, "ipBlock");
    if p.contains_key("podSelector") || p.contains_key("namespaceSelector") {
        c.error(
            DiagnosticCode::InvalidValue,
            &bpath,
            "may not be combined with podSelector or namespaceSelector in one peer".into(),
        );
    }
    let Some(b) = c.fields(&bpath, block, IP_BLOCK) else {
        return;
    };
    let cidr = match b.get("cidr").and_then(Value::as_str) {
        Some(s) => {
            let parsed = parse_cidr(s);
            if parsed.is_none() {
                c.error(
                    DiagnosticCode::InvalidValue,
                    &join(&bpath, "cidr"),
                    format!("{s:?} is not a valid CIDR"),
                );
            }
            parsed
        }
        None => {
            c.error(
                DiagnosticCode::MissingField,
                &join(&bpath, "cidr"),
                "an ipBlock needs a cidr".into(),
            );
            None
        }
    };
    for (epath, e) in c.list(&join(&bpath, "except"), b.get("except")) {
        match e.as_str().map(|s| (s, parse_cidr(s))) {
            Some((_, Some(inner))) => {
                if let Some(outer) = cidr
                    && !contains(outer, inner)
                {
                    c.error(
                        DiagnosticCode::InvalidValue,
                        &epath,
                        "must be within the ipBlock's cidr".into(),
                    );
                }
            }
            _ => c.error(
                DiagnosticCode::InvalidValue,
                &epath,
                format!("{e} is not a valid CIDR"),
            ),
        }
    }
}

/// Check a NetworkPolicy document; returns whether it has errors.
pub fn network_policy(
    origin: &Origin,
    object: &str,
    doc: &Value,
    diags: &mut Vec<Diagnostic>,
) -> bool {
    let mut c = Check {
        origin,
        object: object.to_string(),
        diags,
        errors: 0,
        lenient: false,
    };
    let Some(top) = c.fields("", doc, OBJECT) else {
        return true;
    };
    if let Some(meta) = top.get("metadata") {
        schema::check(&mut c, "metadata", meta, &schema::METADATA);
    }
    if c.errors == 0 {
        kinds::metadata_of(&mut c, top.get("metadata"));
    }
    let Some(spec) = top.get("spec").and_then(|s| c.fields("spec", s, NP_SPEC)) else {
        return c.errors > 0;
    };
    if let Some(sel) = spec.get("podSelector") {
        selector(&mut c, "spec.podSelector", sel);
    }
    for (path, t) in c.list("spec.policyTypes", spec.get("policyTypes")) {
        if !matches!(t.as_str(), Some("Ingress" | "Egress")) {
            c.error(
                DiagnosticCode::InvalidValue,
                &path,
                format!("{t} is not a policy type: use Ingress or Egress"),
            );
        }
    }
    for (dir, peers_key, known) in [("ingress", "from", INGRESS), ("egress", "to", EGRESS)] {
        for (rpath, rule) in c.list(&format!("spec.{dir}"), spec.get(dir)) {
            let Some(r) = c.fields(&rpath, rule, known) else {
                continue;
            };
            for (ppath, p) in c.list(&join(&rpath, peers_key), r.get(peers_key)) {
                peer(&mut c, &ppath, p);
            }
            for (ppath, p) in c.list(&join(&rpath, "ports"), r.get("ports")) {
                port(&mut c, &ppath, p);
            }
        }
    }
    c.errors > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn np(spec: &str) -> Value {
        serde_yaml::from_str(&format!(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: p, namespace: a}}\nspec: {spec}\n"
        ))
        .unwrap()
    }

    /// Each case: a spec, and the field and message part of its one error (None: valid).
    #[test]
    fn network_policies_are_validated_as_the_api_server_does() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            ("{podSelector: {}, policyTypes: [Ingress]}", None),
            (
                "{podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}], ports: [{port: 80, endPort: 90}, {port: http}, {protocol: UDP}]}]}",
                None,
            ),
            (
                "{podSelector: {}, egress: [{to: [{ipBlock: {cidr: 'fd00::/8'}}]}]}",
                None,
            ),
            (
                "{podSelector: {}, ingress: [{prots: [{port: 80}]}]}",
                Some(("spec.ingress[0].prots", "did you mean \"ports\"")),
            ),
            (
                "{podSelecter: {}}",
                Some(("spec.podSelecter", "did you mean \"podSelector\"")),
            ),
            (
                "{podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/33}}]}]}",
                Some(("spec.ingress[0].from[0].ipBlock.cidr", "not a valid CIDR")),
            ),
            (
                "{podSelector: {}, ingress: [{from: [{ipBlock: {cidr: foo}}]}]}",
                Some(("spec.ingress[0].from[0].ipBlock.cidr", "not a valid CIDR")),
            ),
            (
                "{podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/16]}}]}]}",
                Some(("spec.ingress[0].from[0].ipBlock.except[0]", "within")),
            ),
            (
                "{podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]}]}",
                Some(("spec.ingress[0].from[0].ipBlock", "may not be combined")),
            ),
            (
                "{podSelector: {}, ingress: [{ports: [{port: 0}]}]}",
                Some(("spec.ingress[0].ports[0].port", "1-65535")),
            ),
            (
                "{podSelector: {}, ingress: [{ports: [{port: 70000}]}]}",
                Some(("spec.ingress[0].ports[0].port", "1-65535")),
            ),
            (
                "{podSelector: {}, ingress: [{ports: [{port: -5}]}]}",
                Some(("spec.ingress[0].ports[0].port", "1-65535")),
            ),
            (
                "{podSelector: {}, ingress: [{ports: [{port: 90, endPort: 80}]}]}",
                Some(("spec.ingress[0].ports[0].endPort", "at least port")),
            ),
            (
                "{podSelector: {}, ingress: [{ports: [{port: 90, endPort: 70000}]}]}",
                Some(("spec.ingress[0].ports[0].endPort", "1-65535")),
            ),
            (
                "{podSelector: {}, ingress: [{ports: [{port: http, endPort: 90}]}]}",
                Some(("spec.ingress[0].ports[0].endPort", "numeric port")),
            ),
            (
                "{podSelector: {}, ingress: [{ports: [{port: Web_Port}]}]}",
                Some(("spec.ingress[0].ports[0].port", "not a valid port name")),
            ),
            (
                "{podSelector: {}, ingress: [{ports: [{port: 80, protocol: tcp}]}]}",
                Some(("spec.ingress[0].ports[0].protocol", "TCP, UDP or SCTP")),
            ),
            (
                "{podSelector: {matchExpressions: [{key: app, operator: In}]}}",
                Some(("spec.podSelector.matchExpressions[0].values", "non-empty")),
            ),
            (
                "{podSelector: {matchExpressions: [{key: app, operator: Exists, values: [a]}]}}",
                Some((
                    "spec.podSelector.matchExpressions[0].values",
                    "must be empty",
                )),
            ),
            (
                "{podSelector: {matchExpressions: [{key: app, operator: Exist}]}}",
                Some((
                    "spec.podSelector.matchExpressions[0].operator",
                    "did you mean \"Exists\"",
                )),
            ),
            (
                "{podSelector: {matchLabels: {'-bad key': x}}}",
                Some((
                    "spec.podSelector.matchLabels.-bad key",
                    "not a valid label key",
                )),
            ),
            (
                "{podSelector: {matchLabels: {app: 'a b'}}}",
                Some((
                    "spec.podSelector.matchLabels.app",
                    "not a valid label value",
                )),
            ),
            (
                "{podSelector: {}, policyTypes: [ingress]}",
                Some(("spec.policyTypes[0]", "Ingress or Egress")),
            ),
            (
                "{podSelector: {}, ingress: {from: []}}",
                Some(("spec.ingress", "expected a list")),
            ),
        ];
        for (spec, want) in cases {
            let mut diags = Vec::new();
            let failed = network_policy(
                &Origin::new("p.yaml", 1),
                "NetworkPolicy a/p",
                &np(spec),
                &mut diags,
            );
            match want {
                None => assert!(!failed && diags.is_empty(), "{spec}: {diags:?}"),
                Some((field, message)) => {
                    assert!(failed, "{spec}");
                    assert_eq!(diags.len(), 1, "{spec}: {diags:?}");
                    assert_eq!(diags[0].field, *field, "{spec}");
                    assert!(diags[0].message.contains(message), "{spec}: {diags:?}");
                }
            }
        }
    }
}

#[cfg(test)]
mod intents_tests {
    use crate::{Source, load};

    #[test]
    fn a_misspelt_target_field_is_an_error_not_an_all_ports_policy() {
        let text = "apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata: {name: a, namespace: x}\nspec:\n  workload: {name: a}\n  targets:\n    - kubernetes: {name: s, prots: [{port: 80}]}\n";
        let (inv, diags) = load(&[Source::new("i.yaml", text)]);
        let d = diags
            .iter()
            .find(|d| d.field == "spec.targets[0].kubernetes.prots")
            .unwrap_or_else(|| panic!("{diags:?}"));
        assert!(d.is_error());
        assert!(d.message.contains("did you mean \"ports\""), "{d:?}");
        let generated = crate::generate(&inv, &Default::default());
        assert!(generated.policies.is_empty(), "{:?}", generated.policies);
    }
}
