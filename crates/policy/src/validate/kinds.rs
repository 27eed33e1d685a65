//! The API server's value rules for the kinds Accord reads besides NetworkPolicy: object names
//! and labels, workload selectors and the labels of their pod templates, container ports,
//! Services, AdminNetworkPolicies and BaselineAdminNetworkPolicies, and ClientIntents.
//! Each public function checks one kind's structure ([`schema`]) and values, reports what it
//! finds, and returns whether the object has errors (the caller then leaves it out).
//!
//! Size: one function per kind over shared rules (names, labels, ports, selectors); the table
//! test of them all is in `kinds/tests.rs`.
//!
//! Severity: what would make Accord read the object wrongly (an unknown or misspelt field, a
//! value of the wrong type, an invalid name, label, port or selector) is an error. A rule the
//! API server enforces on a part Accord does not read (containers without names, a workload
//! whose selector misses its template's labels, restart policies, unnamed ports of a
//! multi-port Service, unknown fields inside pod specs) is a warning, an error with `--strict`:
//! manifests in use, the conformance kit's among them, break those rules and are otherwise
//! read correctly. Two rules are not checked at all, for the same reason: an absent workload
//! selector (apps/v1 requires one; Accord reads the template's labels), and everything in the
//! spec of a workload, Pod or Service manifest that has none (a stub, as test data and examples
//! write them, which the API server would refuse for its missing containers or ports).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::schema::{self, Shape};
use super::{
    Check, join, parse_cidr, selector, valid_label_key, valid_label_value, valid_port_name,
};
use crate::diagnostic::{Diagnostic, DiagnosticCode, Origin};
use crate::objects::{LabelSelector, Labels};

/// A DNS-1123 label: 1–63 lowercase alphanumerics or `-`, starting and ending alphanumeric.
pub fn dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A DNS-1123 subdomain: at most 253 characters, dot-separated parts of lowercase
/// alphanumerics or `-`, each starting and ending alphanumeric (of any length).
pub fn dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !p.starts_with('-')
                && !p.ends_with('-')
        })
}

/// A DNS-1035 label (Service names): a DNS label that starts with a letter.
fn dns1035_label(s: &str) -> bool {
    dns_label(s) && s.as_bytes()[0].is_ascii_lowercase()
}

/// How a kind's names are checked.
#[derive(Clone, Copy)]
enum Name {
    Subdomain,
    Label,
    Label1035,
}

impl<'a> Check<'a> {
    fn new(origin: &'a Origin, object: &str, diags: &'a mut Vec<Diagnostic>) -> Self {
        Check {
            origin,
            object: object.to_string(),
            diags,
            errors: 0,
            lenient: false,
        }
    }
}

fn str_at<'v>(map: &'v Map<String, Value>, key: &str) -> Option<&'v str> {
    map.get(key).and_then(Value::as_str)
}

fn obj_at<'v>(v: Option<&'v Value>, key: &str) -> Option<&'v Map<String, Value>> {
    v?.get(key)?.as_object()
}

fn labels_of(v: Option<&Value>) -> Labels {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Label keys and values (a `StrMap` already checked for types).
fn label_map(c: &mut Check, path: &str, value: Option<&Value>, values_too: bool) {
    let Some(map) = value.and_then(Value::as_object) else {
        return;
    };
    for (k, v) in map {
        let field = join(path, k);
        if !valid_label_key(k) {
            c.error(
                DiagnosticCode::InvalidValue,
                &field,
                format!("{k:?} is not a valid label key"),
            );
        }
        if values_too
            && let Some(v) = v.as_str()
            && !valid_label_value(v)
        {
            c.error(
                DiagnosticCode::InvalidValue,
                &field,
                format!("{v:?} is not a valid label value"),
            );
        }
    }
}

/// `metadata`: the name (checked by `name`'s rule; `None` for a template), namespace, labels, annotation
/// keys. Types and unknown fields are the schema's.
fn metadata(c: &mut Check, path: &str, meta: Option<&Value>, name: Option<Name>) {
    let m = meta.and_then(Value::as_object);
    let field = |k: &str| join(path, k);
    if let Some(rule) = name {
        match m.and_then(|m| str_at(m, "name")) {
            Some(n) => {
                let (ok, what) = match rule {
                    Name::Subdomain => (
                        dns_subdomain(n),
                        "lowercase letters, digits, '-' and '.', starting and ending with a \
                         letter or digit, at most 253",
                    ),
                    Name::Label => (
                        dns_label(n),
                        "lowercase letters, digits and '-', starting and ending with a letter \
                         or digit, at most 63",
                    ),
                    Name::Label1035 => (
                        dns1035_label(n),
                        "lowercase letters, digits and '-', starting with a letter and ending \
                         with a letter or digit, at most 63",
                    ),
                };
                if !ok {
                    c.error(
                        DiagnosticCode::InvalidValue,
                        &field("name"),
                        format!("{n:?} is not a valid name: {what}"),
                    );
                }
            }
            None if m.and_then(|m| str_at(m, "generateName")).is_some() => {}
            None => c.error(
                DiagnosticCode::MissingField,
                &field("name"),
                "missing: every object has a name".into(),
            ),
        }
    }
    let Some(m) = m else { return };
    if let Some(ns) = str_at(m, "namespace")
        && !dns_label(ns)
    {
        c.error(
            DiagnosticCode::InvalidValue,
            &field("namespace"),
            format!("{ns:?} is not a valid namespace name"),
        );
    }
    label_map(c, &field("labels"), m.get("labels"), true);
    label_map(c, &field("annotations"), m.get("annotations"), false);
}

/// A NetworkPolicy's metadata (a namespaced object named by a DNS subdomain).
pub(super) fn metadata_of(c: &mut Check, meta: Option<&Value>) {
    metadata(c, "metadata", meta, Some(Name::Subdomain));
}

/// Run the schema and the metadata checks every kind shares; `None` when the document is not a
/// mapping (reported).
fn start<'v>(
    c: &mut Check,
    doc: &'v Value,
    shape: &Shape,
    name: Name,
) -> Option<&'v Map<String, Value>> {
    schema::check(c, "", doc, shape);
    let top = doc.as_object()?;
    metadata(c, "metadata", top.get("metadata"), Some(name));
    Some(top)
}

/// A port number field: 1–65535 (0 allowed when `zero_ok`, meaning unset).
fn port_number(c: &mut Check, path: &str, v: Option<&Value>, zero_ok: bool) {
    if let Some(n) = v.and_then(Value::as_i64)
        && !((1..=65535).contains(&n) || zero_ok && n == 0)
    {
        c.error(
            DiagnosticCode::InvalidValue,
            path,
            format!("{n} is not a port number: use 1-65535"),
        );
    }
}

fn protocol(c: &mut Check, path: &str, v: Option<&Value>) {
    if let Some(p) = v.and_then(Value::as_str)
        && !matches!(p, "TCP" | "UDP" | "SCTP")
    {
        c.error(
            DiagnosticCode::InvalidValue,
            path,
            format!("{p:?} is not a protocol: use TCP, UDP or SCTP"),
        );
    }
}

/// Containers of a pod spec: names, and ports (numbers, protocols, names unique in the pod).
fn pod_spec(c: &mut Check, path: &str, spec: Option<&Value>) {
    let Some(spec) = spec.and_then(Value::as_object) else {
        c.warn(
            DiagnosticCode::MissingField,
            path,
            "missing: a pod needs a spec with containers".into(),
        );
        return;
    };
    if spec
        .get("containers")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        c.warn(
            DiagnosticCode::MissingField,
            &join(path, "containers"),
            "missing: a pod needs at least one container".into(),
        );
    }
    let mut names = BTreeSet::new();
    let mut port_names = BTreeSet::new();
    for key in ["containers", "initContainers"] {
        for (cpath, ctr) in c.list(&join(path, key), spec.get(key)) {
            let Some(ctr) = ctr.as_object() else { continue };
            match str_at(ctr, "name") {
                Some(n) if !dns_label(n) => c.error(
                    DiagnosticCode::InvalidValue,
                    &join(&cpath, "name"),
                    format!("{n:?} is not a valid container name (a DNS label)"),
                ),
                Some(n) if !names.insert(n.to_string()) => c.warn(
                    DiagnosticCode::InvalidValue,
                    &join(&cpath, "name"),
                    format!("duplicate container name {n:?}"),
                ),
                Some(_) => {}
                None => c.warn(
                    DiagnosticCode::MissingField,
                    &join(&cpath, "name"),
                    "missing: every container has a name".into(),
                ),
            }
            for (ppath, p) in c.list(&join(&cpath, "ports"), ctr.get("ports")) {
                let Some(p) = p.as_object() else { continue };
                if p.get("containerPort").is_none_or(Value::is_null) {
                    c.warn(
                        DiagnosticCode::MissingField,
                        &join(&ppath, "containerPort"),
                        "missing: a container port needs its number".into(),
                    );
                }
                port_number(
                    c,
                    &join(&ppath, "containerPort"),
                    p.get("containerPort"),
                    false,
                );
                port_number(c, &join(&ppath, "hostPort"), p.get("hostPort"), true);
                protocol(c, &join(&ppath, "protocol"), p.get("protocol"));
                if let Some(n) = str_at(p, "name") {
                    if !valid_port_name(n) {
                        c.error(
                            DiagnosticCode::InvalidValue,
                            &join(&ppath, "name"),
                            format!("{n:?} is not a valid port name"),
                        );
                    } else if !port_names.insert(n.to_string()) {
                        c.error(
                            DiagnosticCode::InvalidValue,
                            &join(&ppath, "name"),
                            format!("duplicate port name {n:?} in the pod"),
                        );
                    }
                }
            }
        }
    }
}

/// A pod template and the restart policies its owner kind allows.
fn template(c: &mut Check, path: &str, t: Option<&Value>, restart: &[&str]) {
    let Some(t) = t.filter(|t| t.is_object()) else {
        c.warn(
            DiagnosticCode::MissingField,
            path,
            "missing: the pod template".into(),
        );
        return;
    };
    metadata(c, &join(path, "metadata"), t.get("metadata"), None);
    // A template without a spec is a stub, as a manifest without one is (see `workload`).
    if t.get("spec").is_none_or(Value::is_null) {
        return;
    }
    let spath = join(path, "spec");
    pod_spec(c, &spath, t.get("spec"));
    let policy = t
        .pointer("/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("Always");
    if !restart.contains(&policy) {
        c.warn(
            DiagnosticCode::InvalidValue,
            &join(&spath, "restartPolicy"),
            format!(
                "{policy:?} is not allowed here: use {}",
                restart.join(" or ")
            ),
        );
    }
}

/// A workload's `spec.selector` (a label selector) against its template's labels.
fn selector_matches(c: &mut Check, path: &str, sel: Option<&Value>, labels: &Labels) {
    // An absent selector is not reported: apps/v1 requires one, but manifests written for
    // analysis (Accord's synthetic clusters and examples among them) leave it out, and Accord
    // reads the template's labels.
    let Some(sel) = sel.filter(|s| !s.is_null()) else {
        return;
    };
    let before = c.errors;
    selector(c, path, sel);
    if c.errors > before {
        return;
    }
    let Ok(parsed) = serde_json::from_value::<LabelSelector>(sel.clone()) else {
        return;
    };
    if parsed.is_empty() {
        c.warn(
            DiagnosticCode::InvalidValue,
            path,
            "an empty selector is invalid: it would select every pod".into(),
        );
    } else if !parsed.matches(labels) {
        // A warning: the conformance kit has such workloads, read by their template's labels.
        c.warn(
            DiagnosticCode::InvalidValue,
            path,
            "does not match the template's labels (spec.template.metadata.labels)".into(),
        );
    }
}

/// Check a workload document (Deployment, StatefulSet, DaemonSet, ReplicaSet,
/// ReplicationController, Job, CronJob or Pod); returns whether it has errors. Other kinds
/// (VirtualMachine) get the shared checks only.
pub fn workload(
    origin: &Origin,
    object: &str,
    kind: &str,
    doc: &Value,
    diags: &mut Vec<Diagnostic>,
) -> bool {
    let mut c = Check::new(origin, object, diags);
    let shape = match kind {
        "Pod" => schema::POD,
        "Deployment" => schema::DEPLOYMENT,
        "StatefulSet" => schema::STATEFUL_SET,
        "DaemonSet" => schema::DAEMON_SET,
        "ReplicaSet" => schema::REPLICA_SET,
        "ReplicationController" => schema::REPLICATION_CONTROLLER,
        "Job" => schema::JOB,
        "CronJob" => schema::CRON_JOB,
        _ => {
            metadata(
                &mut c,
                "metadata",
                doc.get("metadata"),
                Some(Name::Subdomain),
            );
            return c.errors > 0;
        }
    };
    if start(&mut c, doc, &shape, Name::Subdomain).is_none() {
        return true;
    }
    // Type errors make the value rules below guess; report those alone.
    if c.errors > 0 {
        return true;
    }
    // A manifest without a spec is an inventory stub (a pod or workload named for analysis,
    // as test data and hand-written examples have): nothing of its spec to check.
    let Some(spec) = doc.get("spec").filter(|s| !s.is_null()) else {
        return false;
    };
    let spec = Some(spec);
    match kind {
        "Pod" => pod_spec(&mut c, "spec", spec),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => {
            let t = spec.and_then(|s| s.get("template"));
            let labels = labels_of(t.and_then(|t| t.pointer("/metadata/labels")));
            selector_matches(
                &mut c,
                "spec.selector",
                spec.and_then(|s| s.get("selector")),
                &labels,
            );
            template(&mut c, "spec.template", t, &["Always"]);
        }
        "ReplicationController" => {
            let t = spec.and_then(|s| s.get("template"));
            let labels = labels_of(t.and_then(|t| t.pointer("/metadata/labels")));
            let sel = spec.and_then(|s| s.get("selector"));
            label_map(&mut c, "spec.selector", sel, true);
            // An absent selector defaults to the template's labels.
            let sel = labels_of(sel);
            let sel = if sel.is_empty() { labels.clone() } else { sel };
            if sel.is_empty() {
                c.warn(
                    DiagnosticCode::MissingField,
                    "spec.selector",
                    "missing: the selector of the pods (or labels on the template)".into(),
                );
            } else if !sel.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                c.warn(
                    DiagnosticCode::InvalidValue,
                    "spec.selector",
                    "does not match the template's labels (spec.template.metadata.labels)".into(),
                );
            }
            template(&mut c, "spec.template", t, &["Always"]);
        }
        "Job" => job_spec(&mut c, "spec", spec),
        "CronJob" => {
            let s = spec.and_then(Value::as_object);
            if s.and_then(|s| str_at(s, "schedule"))
                .is_none_or(str::is_empty)
            {
                c.warn(
                    DiagnosticCode::MissingField,
                    "spec.schedule",
                    "missing: a CronJob needs a schedule".into(),
                );
            }
            let jt = spec.and_then(|s| s.get("jobTemplate"));
            metadata(
                &mut c,
                "spec.jobTemplate.metadata",
                jt.and_then(|j| j.get("metadata")),
                None,
            );
            job_spec(
                &mut c,
                "spec.jobTemplate.spec",
                jt.and_then(|j| j.get("spec")),
            );
        }
        _ => {}
    }
    c.errors > 0
}

fn job_spec(c: &mut Check, path: &str, spec: Option<&Value>) {
    let manual = spec
        .and_then(|s| s.get("manualSelector"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let t = spec.and_then(|s| s.get("template"));
    let sel = spec
        .and_then(|s| s.get("selector"))
        .filter(|s| !s.is_null());
    if let Some(sel) = sel {
        if manual {
            let labels = labels_of(t.and_then(|t| t.pointer("/metadata/labels")));
            selector_matches(c, &join(path, "selector"), Some(sel), &labels);
        } else {
            c.warn(
                DiagnosticCode::InvalidValue,
                &join(path, "selector"),
                "is generated by the API server: set manualSelector: true to give one".into(),
            );
        }
    }
    template(c, &join(path, "template"), t, &["OnFailure", "Never"]);
}

/// Check a Service document; returns whether it has errors.
pub fn service(origin: &Origin, object: &str, doc: &Value, diags: &mut Vec<Diagnostic>) -> bool {
    let mut c = Check::new(origin, object, diags);
    if start(&mut c, doc, &schema::SERVICE, Name::Label1035).is_none() || c.errors > 0 {
        return true;
    }
    // A Service without a spec is a stub, as a workload without one is (see `workload`).
    let Some(spec) = doc.get("spec").and_then(Value::as_object) else {
        return false;
    };
    let ty = str_at(spec, "type").unwrap_or("ClusterIP");
    if !matches!(
        ty,
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
    ) {
        let hint = super::did_you_mean(
            ty,
            &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"],
        )
        .map(|k| format!("; did you mean {k:?}?"))
        .unwrap_or_default();
        c.error(
            DiagnosticCode::InvalidValue,
            "spec.type",
            format!("{ty:?} is not a Service type: use ClusterIP, NodePort, LoadBalancer or ExternalName{hint}"),
        );
    }
    if ty == "ExternalName" && str_at(spec, "externalName").is_none_or(str::is_empty) {
        c.warn(
            DiagnosticCode::MissingField,
            "spec.externalName",
            "missing: an ExternalName Service names its target".into(),
        );
    }
    label_map(&mut c, "spec.selector", spec.get("selector"), true);
    let ports = c.list("spec.ports", spec.get("ports"));
    let headless = str_at(spec, "clusterIP") == Some("None");
    if ports.is_empty() && ty != "ExternalName" && !headless {
        c.warn(
            DiagnosticCode::MissingField,
            "spec.ports",
            "missing: a Service needs at least one port".into(),
        );
    }
    let many = ports.len() > 1;
    let mut names = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for (ppath, p) in ports {
        let Some(p) = p.as_object() else { continue };
        match str_at(p, "name") {
            None | Some("") if many => c.warn(
                DiagnosticCode::MissingField,
                &join(&ppath, "name"),
                "missing: every port of a Service with several ports has a name".into(),
            ),
            Some(n) if !n.is_empty() && !dns_label(n) => c.error(
                DiagnosticCode::InvalidValue,
                &join(&ppath, "name"),
                format!("{n:?} is not a valid port name (a DNS label)"),
            ),
            Some(n) if !n.is_empty() && !names.insert(n.to_string()) => c.error(
                DiagnosticCode::InvalidValue,
                &join(&ppath, "name"),
                format!("duplicate port name {n:?}"),
            ),
            _ => {}
        }
        match p.get("port").filter(|v| !v.is_null()) {
            None => c.error(
                DiagnosticCode::MissingField,
                &join(&ppath, "port"),
                "missing: the Service port number".into(),
            ),
            v => port_number(&mut c, &join(&ppath, "port"), v, false),
        }
        protocol(&mut c, &join(&ppath, "protocol"), p.get("protocol"));
        let key = (
            p.get("port").and_then(Value::as_i64),
            str_at(p, "protocol").unwrap_or("TCP").to_string(),
        );
        if !seen.insert(key) {
            c.warn(
                DiagnosticCode::InvalidValue,
                &ppath,
                "duplicate port and protocol".into(),
            );
        }
        match p.get("targetPort") {
            Some(Value::String(n)) if !valid_port_name(n) => c.error(
                DiagnosticCode::InvalidValue,
                &join(&ppath, "targetPort"),
                format!("{n:?} is not a valid port name"),
            ),
            v @ Some(Value::Number(_)) => {
                port_number(&mut c, &join(&ppath, "targetPort"), v, false)
            }
            _ => {}
        }
        if let Some(n) = p
            .get("nodePort")
            .and_then(Value::as_i64)
            .filter(|n| *n != 0)
        {
            if !matches!(ty, "NodePort" | "LoadBalancer") {
                c.warn(
                    DiagnosticCode::InvalidValue,
                    &join(&ppath, "nodePort"),
                    format!("may not be used when type is {ty:?}"),
                );
            } else {
                port_number(
                    &mut c,
                    &join(&ppath, "nodePort"),
                    Some(&Value::from(n)),
                    false,
                );
            }
        }
    }
    c.errors > 0
}

/// Check an AdminNetworkPolicy (`baseline` false) or BaselineAdminNetworkPolicy document;
/// returns whether it has errors.
pub fn admin_network_policy(
    origin: &Origin,
    object: &str,
    baseline: bool,
    doc: &Value,
    diags: &mut Vec<Diagnostic>,
) -> bool {
    let mut c = Check::new(origin, object, diags);
    let shape = if baseline {
        schema::BASELINE_ADMIN_NETWORK_POLICY
    } else {
        schema::ADMIN_NETWORK_POLICY
    };
    if start(&mut c, doc, &shape, Name::Subdomain).is_none() || c.errors > 0 {
        return true;
    }
    if baseline && doc.pointer("/metadata/name").and_then(Value::as_str) != Some("default") {
        c.error(
            DiagnosticCode::InvalidValue,
            "metadata.name",
            "a BaselineAdminNetworkPolicy must be named \"default\"".into(),
        );
    }
    let Some(spec) = doc.get("spec").and_then(Value::as_object) else {
        c.error(DiagnosticCode::MissingField, "spec", "missing spec".into());
        return true;
    };
    if !baseline {
        match spec.get("priority").and_then(Value::as_i64) {
            None => c.error(
                DiagnosticCode::MissingField,
                "spec.priority",
                "missing: an AdminNetworkPolicy has a priority".into(),
            ),
            Some(p) if !(0..=1000).contains(&p) => c.error(
                DiagnosticCode::InvalidValue,
                "spec.priority",
                format!("{p} is not a priority: use 0-1000"),
            ),
            Some(_) => {}
        }
    }
    one_of(
        &mut c,
        "spec.subject",
        spec.get("subject"),
        &["namespaces", "pods"],
        true,
    );
    for (sel_path, sel) in selectors_in(spec.get("subject"), "spec.subject") {
        selector(&mut c, &sel_path, sel);
    }
    let actions: &[&str] = if baseline {
        &["Allow", "Deny"]
    } else {
        &["Allow", "Deny", "Pass"]
    };
    for (dir, peers_key, kinds) in [
        ("ingress", "from", &["namespaces", "pods"][..]),
        (
            "egress",
            "to",
            &["namespaces", "pods", "nodes", "networks", "domainNames"][..],
        ),
    ] {
        let rules = c.list(&format!("spec.{dir}"), spec.get(dir));
        if rules.len() > 100 {
            c.error(
                DiagnosticCode::InvalidValue,
                &format!("spec.{dir}"),
                format!("{} rules; at most 100 are allowed", rules.len()),
            );
        }
        for (rpath, rule) in rules {
            let Some(r) = rule.as_object() else { continue };
            if str_at(r, "name").is_some_and(|n| n.len() > 100) {
                c.error(
                    DiagnosticCode::InvalidValue,
                    &join(&rpath, "name"),
                    "longer than 100 characters".into(),
                );
            }
            match str_at(r, "action") {
                Some(a) if actions.contains(&a) => {}
                Some(a) => c.error(
                    DiagnosticCode::InvalidValue,
                    &join(&rpath, "action"),
                    format!("{a:?} is not an action here: use {}", actions.join(", ")),
                ),
                None => c.error(
                    DiagnosticCode::MissingField,
                    &join(&rpath, "action"),
                    "missing: a rule has an action".into(),
                ),
            }
            let peers = c.list(&join(&rpath, peers_key), r.get(peers_key));
            if peers.is_empty() || peers.len() > 100 {
                c.error(
                    DiagnosticCode::InvalidValue,
                    &join(&rpath, peers_key),
                    "must list 1-100 peers".into(),
                );
            }
            for (ppath, peer) in peers {
                one_of(&mut c, &ppath, Some(peer), kinds, true);
                for (sel_path, sel) in selectors_in(Some(peer), &ppath) {
                    selector(&mut c, &sel_path, sel);
                }
                for (npath, n) in c.list(&join(&ppath, "networks"), peer.get("networks")) {
                    if n.as_str().and_then(parse_cidr).is_none() {
                        c.error(
                            DiagnosticCode::InvalidValue,
                            &npath,
                            format!("{n} is not a valid CIDR"),
                        );
                    }
                }
            }
            for (ppath, port) in c.list(&join(&rpath, "ports"), r.get("ports")) {
                one_of(
                    &mut c,
                    &ppath,
                    Some(port),
                    &["portNumber", "namedPort", "portRange"],
                    true,
                );
                if let Some(n) = obj_at(Some(port), "portNumber") {
                    let p = join(&ppath, "portNumber");
                    port_number(&mut c, &join(&p, "port"), n.get("port"), false);
                    protocol(&mut c, &join(&p, "protocol"), n.get("protocol"));
                }
                if let Some(r) = obj_at(Some(port), "portRange") {
                    let p = join(&ppath, "portRange");
                    port_number(&mut c, &join(&p, "start"), r.get("start"), false);
                    port_number(&mut c, &join(&p, "end"), r.get("end"), false);
                    protocol(&mut c, &join(&p, "protocol"), r.get("protocol"));
                    if let (Some(s), Some(e)) = (
                        r.get("start").and_then(Value::as_i64),
                        r.get("end").and_then(Value::as_i64),
                    ) && e < s
                    {
                        c.error(
                            DiagnosticCode::InvalidValue,
                            &join(&p, "end"),
                            "must be at least start".into(),
                        );
                    }
                }
                if let Some(n) = port.get("namedPort").and_then(Value::as_str)
                    && !valid_port_name(n)
                {
                    c.error(
                        DiagnosticCode::InvalidValue,
                        &join(&ppath, "namedPort"),
                        format!("{n:?} is not a valid port name"),
                    );
                }
            }
        }
    }
    c.errors > 0
}

/// Exactly one of `keys` set in the mapping at `path` (`required`: one must be).
fn one_of(c: &mut Check, path: &str, v: Option<&Value>, keys: &[&str], required: bool) {
    let set: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| v.and_then(|v| v.get(k)).is_some_and(|x| !x.is_null()))
        .collect();
    if set.len() > 1 {
        c.error(
            DiagnosticCode::InvalidValue,
            path,
            format!(
                "set exactly one of {}, not {}",
                keys.join(", "),
                set.join(" and ")
            ),
        );
    } else if set.is_empty() && required {
        c.error(
            DiagnosticCode::MissingField,
            path,
            format!("missing: set one of {}", keys.join(", ")),
        );
    }
}

/// The label selectors in an admin policy's subject or peer, with their paths.
fn selectors_in<'v>(v: Option<&'v Value>, path: &str) -> Vec<(String, &'v Value)> {
    let mut out = Vec::new();
    let Some(v) = v else { return out };
    for key in ["namespaces", "nodes"] {
        if let Some(s) = v.get(key).filter(|s| !s.is_null()) {
            out.push((join(path, key), s));
        }
    }
    if let Some(p) = v.get("pods") {
        for key in ["namespaceSelector", "podSelector"] {
            if let Some(s) = p.get(key).filter(|s| !s.is_null()) {
                out.push((join(&join(path, "pods"), key), s));
            }
        }
    }
    out
}

/// Check a ClientIntents document's structure for its version (`v1alpha2` … `v2beta1`) and its
/// metadata; returns whether it has errors. The intents' own rules are `intents::parse`'s.
pub fn client_intents(
    origin: &Origin,
    object: &str,
    version: &str,
    doc: &Value,
    diags: &mut Vec<Diagnostic>,
) -> bool {
    let mut c = Check::new(origin, object, diags);
    let shape = match version {
        "v1alpha2" => schema::INTENTS_V1ALPHA2,
        v if v.starts_with("v1") => schema::INTENTS_V1,
        _ => schema::INTENTS_V2,
    };
    start(&mut c, doc, &shape, Name::Subdomain);
    c.errors > 0
}

/// Check the metadata of an object of another kind Accord reads (Namespace, ProtectedService):
/// structure and name.
pub fn other(
    origin: &Origin,
    object: &str,
    kind: &str,
    doc: &Value,
    diags: &mut Vec<Diagnostic>,
) -> bool {
    let mut c = Check::new(origin, object, diags);
    let Some(top) = doc.as_object() else {
        return false;
    };
    if let Some(meta) = top.get("metadata") {
        schema::check(&mut c, "metadata", meta, &schema::METADATA);
    }
    if c.errors == 0 {
        let name = if kind == "Namespace" {
            Name::Label
        } else {
            Name::Subdomain
        };
        metadata(&mut c, "metadata", top.get("metadata"), Some(name));
    }
    c.errors > 0
}

#[cfg(test)]
mod tests;
