//! ClientIntents of every served version, normalized to one model (the v2 shape).
//!
//! | version | shape |
//! |---|---|
//! | v1alpha2, v1alpha3, v1beta1 | `spec.service{name, kind?}` + `spec.calls[]` |
//! | v2alpha1, v2beta1 | `spec.workload{name, kind?}` + `spec.targets[]`, one key per target |
//!
//! Parsing first checks the object's fields and their types for its version
//! ([`crate::validate::kinds::client_intents`]: an unknown or misspelt field, or a value of the
//! wrong type, refuses the whole object, as the API server would), then validates what the
//! upstream admission webhook validates and reports each problem as a [`Diagnostic`] naming the
//! field; a target with such a problem is dropped and the rest of the object is kept.
//!
//! Size: one normalizing parser for all five served versions; each version's shape is a few
//! functions over the same context (diagnostics, field paths), kept together so they stay alike.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::diagnostic::{Diagnostic, DiagnosticCode, Origin};
use crate::objects::{ObjectMeta, Protocol};

pub mod convert;

pub const GROUP: &str = "k8s.otterize.com";
pub const VERSIONS: &[&str] = &["v1alpha2", "v1alpha3", "v1beta1", "v2alpha1", "v2beta1"];

/// The client workload that declares the calls.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// A port restriction on a target (Accord's addition; upstream targets have no ports).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetPort {
    pub port: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_port: Option<i32>,
    #[serde(default)]
    pub protocol: Protocol,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum TargetKind {
    /// A workload (`kubernetes` with a kind other than Service, or `kafka`).
    Workload {
        name: String,
        namespace: String,
        kind: Option<String>,
        ports: Vec<TargetPort>,
        /// True when written as a `kafka` target.
        kafka: bool,
    },
    /// A Kubernetes Service (`service`, or `kubernetes` with `kind: Service`).
    Service {
        name: String,
        namespace: String,
        ports: Vec<TargetPort>,
    },
    /// Addresses outside the cluster.
    Internet {
        ips: Vec<String>,
        domains: Vec<String>,
        ports: Vec<i32>,
    },
    /// sql, aws, gcp, azure: no NetworkPolicy rule of their own.
    NonNetwork { kind: String, name: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Where the target was written, e.g. `spec.targets[2]` or `spec.calls[0]`.
    pub field: String,
    pub kind: TargetKind,
}

impl Target {
    /// The namespace of a workload or Service target.
    pub fn namespace(&self) -> Option<&str> {
        match &self.kind {
            TargetKind::Workload { namespace, .. } | TargetKind::Service { namespace, .. } => {
                Some(namespace)
            }
            _ => None,
        }
    }

    /// `(name, namespace, kind)` of a workload or Service target (kind `Service` for the
    /// latter); `None` for targets outside the cluster.
    pub fn workload_ref(&self) -> Option<(&str, &str, Option<&str>)> {
        match &self.kind {
            TargetKind::Workload {
                name,
                namespace,
                kind,
                ..
            } => Some((name, namespace, kind.as_deref())),
            TargetKind::Service {
                name, namespace, ..
            } => Some((name, namespace, Some("Service"))),
            _ => None,
        }
    }

    /// True for the Kubernetes API server (`kubernetes.default`), which gets no ingress rule.
    pub fn is_api_server(&self) -> bool {
        match &self.kind {
            TargetKind::Workload {
                name, namespace, ..
            }
            | TargetKind::Service {
                name, namespace, ..
            } => name == "kubernetes" && namespace == "default",
            _ => false,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientIntents {
    pub origin: Origin,
    /// The version the object was written in.
    pub api_version: String,
    pub name: String,
    pub namespace: String,
    pub uid: Option<String>,
    pub generation: Option<i64>,
    pub workload: WorkloadRef,
    pub targets: Vec<Target>,
    /// `status.resolvedIPs`: addresses the operator resolved for internet domains.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resolved_ips: BTreeMap<String, Vec<String>>,
}

impl ClientIntents {
    /// `ClientIntents ns/name`, as diagnostics name the object.
    pub fn object_name(&self) -> String {
        format!("ClientIntents {}/{}", self.namespace, self.name)
    }

    /// The subjects of the intents as `(namespace, name)`: the client and every workload or
    /// Service target. A change to the intents changes the policies and labels of these only
    /// (the operator's planner and the what-if both recompute exactly them).
    pub fn subjects(&self) -> std::collections::BTreeSet<(String, String)> {
        let mut out = std::collections::BTreeSet::from([(
            self.namespace.clone(),
            self.workload.name.clone(),
        )]);
        for t in &self.targets {
            if let Some((name, namespace, _)) = t.workload_ref() {
                out.insert((namespace.to_string(), name.to_string()));
            }
        }
        out
    }
}

/// Split `name` or `name.namespace` (v1 call names and v2 target names).
fn split_target_name(full: &str, default_namespace: &str) -> (String, String, usize) {
    let dots = full.matches('.').count();
    match full.split_once('.') {
        Some((name, rest)) => {
            let ns = rest.split('.').next().unwrap_or(rest);
            (name.to_string(), ns.to_string(), dots)
        }
        None => (full.to_string(), default_namespace.to_string(), 0),
    }
}

fn str_field<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    m.get(key).and_then(Value::as_str)
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

struct Ctx<'a> {
    origin: &'a Origin,
    object: String,
    diags: &'a mut Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn error(&mut self, code: DiagnosticCode, field: impl Into<String>, msg: impl Into<String>) {
        self.diags.push(Diagnostic::error(
            code,
            self.origin,
            self.object.clone(),
            field,
            msg,
        ));
    }
    fn warning(&mut self, code: DiagnosticCode, field: impl Into<String>, msg: impl Into<String>) {
        self.diags.push(Diagnostic::warning(
            code,
            self.origin,
            self.object.clone(),
            field,
            msg,
        ));
    }
}

/// Parse a ClientIntents object of any served version. Returns `None` when the object is unusable
/// (the reason is in `diags`).
pub fn parse(origin: &Origin, doc: &Value, diags: &mut Vec<Diagnostic>) -> Option<ClientIntents> {
    let api_version = doc
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let meta: ObjectMeta = doc
        .get("metadata")
        .cloned()
        .and_then(|m| serde_json::from_value(m).ok())
        .unwrap_or_default();
    let namespace = meta
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_string());
    let mut ctx = Ctx {
        origin,
        object: format!("ClientIntents {namespace}/{}", meta.name),
        diags,
    };
    let version = api_version.strip_prefix("k8s.otterize.com/").unwrap_or("");
    if !VERSIONS.contains(&version) {
        ctx.error(
            DiagnosticCode::UnsupportedVersion,
            "apiVersion",
            format!(
                "unknown ClientIntents version {api_version:?}; served versions are {}",
                VERSIONS.join(", ")
            ),
        );
        return None;
    }
    // Fields the version does not have, values of the wrong type, an invalid name: the API
    // server refuses the whole object.
    if crate::validate::kinds::client_intents(origin, &ctx.object, version, doc, ctx.diags) {
        return None;
    }
    let Some(spec) = doc.get("spec").and_then(Value::as_object) else {
        ctx.error(DiagnosticCode::MissingField, "spec", "missing spec");
        return None;
    };
    let mut intents = ClientIntents {
        origin: origin.clone(),
        api_version: api_version.to_string(),
        name: meta.name.clone(),
        namespace: namespace.clone(),
        uid: meta.uid.clone(),
        generation: doc.pointer("/metadata/generation").and_then(Value::as_i64),
        ..Default::default()
    };
    let workload_key = if version.starts_with("v1") {
        "service"
    } else {
        "workload"
    };
    let Some(workload) = spec.get(workload_key).and_then(Value::as_object) else {
        ctx.error(
            DiagnosticCode::MissingField,
            format!("spec.{workload_key}"),
            "missing: the client workload must be named",
        );
        return None;
    };
    let Some(name) = str_field(workload, "name").filter(|n| !n.is_empty()) else {
        ctx.error(
            DiagnosticCode::MissingField,
            format!("spec.{workload_key}.name"),
            "missing: the client workload must be named",
        );
        return None;
    };
    if name.contains('.') {
        ctx.error(DiagnosticCode::InvalidValue,
            format!("spec.{workload_key}.name"),
            format!("{name:?} contains a dot; a workload name must not (the namespace is the object's own)"),
        );
        return None;
    }
    intents.workload = WorkloadRef {
        name: name.to_string(),
        kind: str_field(workload, "kind")
            .filter(|k| !k.is_empty())
            .map(str::to_string),
    };
    for entry in doc
        .pointer("/status/resolvedIPs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(dns) = entry.get("dns").and_then(Value::as_str) {
            intents
                .resolved_ips
                .insert(dns.to_string(), string_list(entry.get("ips")));
        }
    }
    if version.starts_with("v1") {
        let http_key = if version == "v1alpha2" {
            "resources"
        } else {
            "HTTPResources"
        };
        parse_v1_calls(spec, &namespace, http_key, &mut intents.targets, &mut ctx);
    } else {
        parse_v2_targets(spec, &namespace, &mut intents.targets, &mut ctx);
    }
    Some(intents)
}

fn parse_ports(v: Option<&Value>, field: &str, ctx: &mut Ctx) -> Vec<TargetPort> {
    let Some(v) = v else { return Vec::new() };
    let Some(items) = v.as_array() else {
        ctx.error(
            DiagnosticCode::InvalidValue,
            field,
            "must be a list of {port, protocol?, endPort?}",
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let port = item.get("port").and_then(Value::as_i64);
        let Some(port) = port.filter(|p| (1..=65535).contains(p)) else {
            ctx.error(
                DiagnosticCode::InvalidValue,
                format!("{f}.port"),
                "must be a port number between 1 and 65535",
            );
            continue;
        };
        let protocol = match item.get("protocol").and_then(Value::as_str) {
            None => Protocol::Tcp,
            Some(p) => match Protocol::parse(p) {
                Some(p) => p,
                None => {
                    ctx.error(
                        DiagnosticCode::InvalidValue,
                        format!("{f}.protocol"),
                        format!("{p:?} is not TCP, UDP or SCTP"),
                    );
                    continue;
                }
            },
        };
        let end_port = match item.get("endPort").and_then(Value::as_i64) {
            Some(e) if e < port || e > 65535 => {
                ctx.error(
                    DiagnosticCode::InvalidValue,
                    format!("{f}.endPort"),
                    "must be between port and 65535",
                );
                continue;
            }
            e => e.map(|e| e as i32),
        };
        out.push(TargetPort {
            port: port as i32,
            end_port,
            protocol,
        });
    }
    out.sort();
    out.dedup();
    out
}

fn check_http(v: Option<&Value>, field: &str, ctx: &mut Ctx) {
    for (i, item) in v
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if item
            .get("path")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            ctx.error(
                DiagnosticCode::MissingField,
                format!("{field}[{i}].path"),
                "an HTTP target needs a path",
            );
        }
    }
}

const V2_TARGET_KEYS: &[&str] = &[
    "kubernetes",
    "service",
    "kafka",
    "sql",
    "internet",
    "aws",
    "gcp",
    "azure",
];

fn parse_v2_targets(
    spec: &Map<String, Value>,
    namespace: &str,
    out: &mut Vec<Target>,
    ctx: &mut Ctx,
) {
    let Some(targets) = spec.get("targets") else {
        return;
    };
    let Some(targets) = targets.as_array() else {
        ctx.error(
            DiagnosticCode::InvalidValue,
            "spec.targets",
            "must be a list",
        );
        return;
    };
    for (i, t) in targets.iter().enumerate() {
        let field = format!("spec.targets[{i}]");
        let Some(obj) = t.as_object() else {
            ctx.error(
                DiagnosticCode::InvalidValue,
                field,
                "a target must be an object with exactly one key",
            );
            continue;
        };
        let keys: Vec<&str> = obj
            .keys()
            .map(String::as_str)
            .filter(|k| V2_TARGET_KEYS.contains(k))
            .collect();
        let unknown: Vec<&str> = obj
            .keys()
            .map(String::as_str)
            .filter(|k| !V2_TARGET_KEYS.contains(k))
            .collect();
        if !unknown.is_empty() {
            ctx.error(
                DiagnosticCode::UnknownField,
                &field,
                format!(
                    "unknown target key(s) {}; expected one of {}",
                    unknown.join(", "),
                    V2_TARGET_KEYS.join(", ")
                ),
            );
            continue;
        }
        if keys.len() != 1 {
            ctx.error(DiagnosticCode::InvalidValue,
                &field,
                if keys.is_empty() {
                    "a target must set exactly one of kubernetes, service, kafka, sql, internet, aws, gcp, azure".to_string()
                } else {
                    format!("a target must set exactly one key, but sets {}", keys.join(" and "))
                },
            );
            continue;
        }
        let key = keys[0];
        let field = format!("{field}.{key}");
        let body = obj
            .get(key)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(t) = parse_v2_target(key, &body, namespace, &field, ctx) {
            out.push(Target { field, kind: t });
        }
    }
}

fn parse_v2_target(
    key: &str,
    body: &Map<String, Value>,
    namespace: &str,
    field: &str,
    ctx: &mut Ctx,
) -> Option<TargetKind> {
    let named = |ctx: &mut Ctx| -> Option<(String, String)> {
        let Some(full) = str_field(body, "name").filter(|n| !n.is_empty()) else {
            ctx.error(
                DiagnosticCode::MissingField,
                format!("{field}.name"),
                "missing target name",
            );
            return None;
        };
        let (name, ns, dots) = split_target_name(full, namespace);
        if dots > 1 {
            ctx.error(
                DiagnosticCode::InvalidValue,
                format!("{field}.name"),
                format!("{full:?} has more than one dot; write name or name.namespace"),
            );
            return None;
        }
        Some((name, ns))
    };
    match key {
        "kubernetes" | "service" => {
            // Unknown fields (a misspelt `prots`, which would widen a one-port target to all
            // ports) were refused with the whole object by the schema check.
            let (name, ns) = named(ctx)?;
            check_http(body.get("http"), &format!("{field}.http"), ctx);
            let ports = parse_ports(body.get("ports"), &format!("{field}.ports"), ctx);
            let kind = str_field(body, "kind").filter(|k| !k.is_empty());
            if key == "service" || kind == Some("Service") {
                Some(TargetKind::Service {
                    name,
                    namespace: ns,
                    ports,
                })
            } else {
                Some(TargetKind::Workload {
                    name,
                    namespace: ns,
                    kind: kind.map(str::to_string),
                    ports,
                    kafka: false,
                })
            }
        }
        "kafka" => {
            let (name, ns) = named(ctx)?;
            Some(TargetKind::Workload {
                name,
                namespace: ns,
                kind: None,
                ports: Vec::new(),
                kafka: true,
            })
        }
        "internet" => parse_internet(body, field, ctx),
        other => Some(TargetKind::NonNetwork {
            kind: other.to_string(),
            name: str_field(body, "name").unwrap_or_default().to_string(),
        }),
    }
}

fn parse_internet(body: &Map<String, Value>, field: &str, ctx: &mut Ctx) -> Option<TargetKind> {
    let ips = string_list(body.get("ips"));
    let domains = string_list(body.get("domains"));
    if ips.is_empty() && domains.is_empty() {
        ctx.error(
            DiagnosticCode::MissingField,
            field,
            "an internet target needs ips or domains",
        );
        return None;
    }
    let mut ports = Vec::new();
    for (i, p) in body
        .get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        match p.as_i64().filter(|p| (1..=65535).contains(p)) {
            Some(p) => ports.push(p as i32),
            None => ctx.error(
                DiagnosticCode::InvalidValue,
                format!("{field}.ports[{i}]"),
                "must be a port number between 1 and 65535",
            ),
        }
    }
    for (i, ip) in ips.iter().enumerate() {
        if crate::net::parse_cidr_or_ip(ip).is_none() {
            ctx.error(
                DiagnosticCode::InvalidValue,
                format!("{field}.ips[{i}]"),
                format!("{ip:?} is not an IP address or CIDR"),
            );
        }
    }
    Some(TargetKind::Internet {
        ips,
        domains,
        ports,
    })
}

fn parse_v1_calls(
    spec: &Map<String, Value>,
    namespace: &str,
    http_key: &str,
    out: &mut Vec<Target>,
    ctx: &mut Ctx,
) {
    let Some(calls) = spec.get("calls") else {
        return;
    };
    let Some(calls) = calls.as_array() else {
        ctx.error(DiagnosticCode::InvalidValue, "spec.calls", "must be a list");
        return;
    };
    for (i, call) in calls.iter().enumerate() {
        let field = format!("spec.calls[{i}]");
        let Some(obj) = call.as_object() else {
            ctx.error(
                DiagnosticCode::InvalidValue,
                field,
                "a call must be an object",
            );
            continue;
        };
        let call_type = str_field(obj, "type").unwrap_or("http");
        if call_type == "internet" {
            let body = obj
                .get("internet")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if let Some(t) = parse_internet(&body, &format!("{field}.internet"), ctx) {
                out.push(Target { field, kind: t });
            }
            continue;
        }
        let Some(full) = str_field(obj, "name").filter(|n| !n.is_empty()) else {
            ctx.error(
                DiagnosticCode::MissingField,
                format!("{field}.name"),
                "missing call name",
            );
            continue;
        };
        let (full, svc_prefix) = match full.strip_prefix("svc:") {
            Some(rest) => (rest, true),
            None => (full, false),
        };
        let (name, ns, dots) = split_target_name(full, namespace);
        if dots > 1 {
            ctx.warning(
                DiagnosticCode::InvalidValue,
                format!("{field}.name"),
                format!(
                    "{full:?} has more than one dot; read as name {name:?} in namespace {ns:?}"
                ),
            );
        }
        let kind = str_field(obj, "kind").filter(|k| !k.is_empty());
        if call_type == "http" {
            check_http(obj.get(http_key), &format!("{field}.{http_key}"), ctx);
        }
        let kind = match call_type {
            "http" | "kafka" => {
                if svc_prefix || kind == Some("Service") {
                    TargetKind::Service {
                        name,
                        namespace: ns,
                        ports: Vec::new(),
                    }
                } else {
                    TargetKind::Workload {
                        name,
                        namespace: ns,
                        kind: kind.map(str::to_string),
                        ports: Vec::new(),
                        kafka: call_type == "kafka",
                    }
                }
            }
            "database" | "aws" | "gcp" | "azure" => TargetKind::NonNetwork {
                kind: call_type.to_string(),
                name,
            },
            other => {
                ctx.error(DiagnosticCode::InvalidValue, format!("{field}.type"), format!("unknown call type {other:?}; expected http, kafka, database, aws, gcp, azure or internet"));
                continue;
            }
        };
        out.push(Target { field, kind });
    }
}
