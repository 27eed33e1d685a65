//! Reading manifests: text in, [`Inventory`] and diagnostics out.
//!
//! A source is a file's name and contents (the caller does the reading). Each source may hold
//! several YAML documents, or JSON; `kind: List` (and `PodList`, `NamespaceList`, …) is expanded.
//! Kinds Accord does not use are skipped quietly; documents that are not Kubernetes objects (no
//! `kind`, a scalar) are warnings (errors with `--strict`).

pub(crate) mod text;

pub use text::{
    MAX_DEPTH, documents, load_yaml_document, parse_yaml_document, split_yaml_documents, too_deep,
    yaml_documents,
};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::diagnostic::{Diagnostic, DiagnosticCode, Origin};
use crate::intents;
use crate::inventory::IngressBackend;
use crate::inventory::Pod;
use crate::inventory::{
    AdminPolicyObject, Inventory, Namespace, PodTemplate, PolicyObject, ProtectedService,
    WORKLOAD_KINDS, Workload,
};
use crate::inventory::{NetworkScope, PrimaryNetwork};
use crate::objects::IntOrString;
use crate::objects::LabelSelector;
use crate::objects::{
    AdminNetworkPolicy, ContainerPort, Labels, NetworkPolicy, ObjectMeta, Service, ServicePort,
};
use crate::validate::kinds;

/// One input file.
#[derive(Clone, Debug)]
pub struct Source {
    pub path: String,
    pub text: String,
}

impl Source {
    pub fn new(path: impl Into<String>, text: impl Into<String>) -> Self {
        Source {
            path: path.into(),
            text: text.into(),
        }
    }
}

/// Load every source into a finished inventory.
pub fn load(sources: &[Source]) -> (Inventory, Vec<Diagnostic>) {
    let mut inv = Inventory::default();
    let mut diags = Vec::new();
    for s in sources {
        load_into(&mut inv, s, &mut diags);
    }
    reject_duplicates(&mut inv, &mut diags);
    inv.finish();
    (inv, diags)
}

/// Add the objects of one source to an inventory (call [`Inventory::finish`] afterwards).
pub fn load_into(inv: &mut Inventory, source: &Source, diags: &mut Vec<Diagnostic>) {
    for (origin, doc) in documents(source, diags) {
        add_object(inv, &origin, &doc, None, diags);
    }
}

/// Two objects of one kind with the same namespace and name cannot both exist: the API server
/// keeps one. The first read is kept; each later one is an error naming both places, and left
/// out. (Two ClientIntents for one workload are the generator's `duplicate-intents`.)
pub fn reject_duplicates(inv: &mut Inventory, diags: &mut Vec<Diagnostic>) {
    fn dedup<T>(
        items: &mut Vec<T>,
        key: impl Fn(&T) -> (String, String, String),
        origin: impl Fn(&T) -> &Origin,
        diags: &mut Vec<Diagnostic>,
    ) {
        let mut first: std::collections::HashMap<(String, String, String), Origin> =
            std::collections::HashMap::new();
        items.retain(|item| {
            let (kind, ns, name) = key(item);
            let object = if ns.is_empty() {
                format!("{kind} {name}")
            } else {
                format!("{kind} {ns}/{name}")
            };
            match first.entry((kind, ns, name)) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(origin(item).clone());
                    true
                }
                std::collections::hash_map::Entry::Occupied(o) => {
                    diags.push(Diagnostic::error(
                        DiagnosticCode::DuplicateObject,
                        origin(item),
                        object,
                        "metadata.name",
                        format!("defined twice: also in {}; this one is left out", o.get()),
                    ));
                    false
                }
            }
        });
    }
    let ns = |m: &crate::objects::ObjectMeta| m.namespace.clone().unwrap_or_default();
    dedup(
        &mut inv.workloads,
        |w| (w.kind.clone(), ns(&w.metadata), w.metadata.name.clone()),
        |w| &w.origin,
        diags,
    );
    dedup(
        &mut inv.pods,
        |p| ("Pod".into(), ns(&p.metadata), p.metadata.name.clone()),
        |p| &p.origin,
        diags,
    );
    dedup(
        &mut inv.services,
        |s| ("Service".into(), ns(&s.metadata), s.metadata.name.clone()),
        |s| &s.origin,
        diags,
    );
    dedup(
        &mut inv.network_policies,
        |p| {
            let m = &p.policy.metadata;
            ("NetworkPolicy".into(), ns(m), m.name.clone())
        },
        |p| &p.origin,
        diags,
    );
    dedup(
        &mut inv.admin_policies,
        |p| {
            let kind = if p.baseline {
                "BaselineAdminNetworkPolicy"
            } else {
                "AdminNetworkPolicy"
            };
            (kind.into(), String::new(), p.policy.metadata.name.clone())
        },
        |p| &p.origin,
        diags,
    );
}

fn object_label(kind: &str, doc: &Value) -> String {
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>");
    match doc.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

fn typed<T: DeserializeOwned>(
    origin: &Origin,
    kind: &str,
    doc: &Value,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(doc) {
        Ok(v) => Some(v),
        Err(e) => {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            let message = e.into_inner().to_string();
            // serde's messages are the only place these two cases are told apart.
            let code = if message.starts_with("missing field") {
                DiagnosticCode::MissingField
            } else if message.starts_with("unknown field") {
                DiagnosticCode::UnknownField
            } else {
                DiagnosticCode::InvalidValue
            };
            diags.push(Diagnostic::error(
                code,
                origin,
                object_label(kind, doc),
                path,
                message,
            ));
            None
        }
    }
}

/// Add one document. `list_item_kind` is the kind implied by an enclosing `XList`.
pub fn add_object(
    inv: &mut Inventory,
    origin: &Origin,
    doc: &Value,
    list_item_kind: Option<&str>,
    diags: &mut Vec<Diagnostic>,
) {
    // Not an object: a warning (an error with --strict), since manifest trees often hold other
    // YAML and JSON (tool output, chart values) that kubectl would refuse but that is no mistake.
    let Some(obj) = doc.as_object() else {
        diags.push(Diagnostic::warning(
            DiagnosticCode::NotAnObject,
            origin,
            "",
            "",
            format!(
                "a Kubernetes object is a mapping, not {}",
                match doc {
                    Value::Array(_) => "a list",
                    Value::String(_) => "a string",
                    Value::Number(_) => "a number",
                    Value::Bool(_) => "a boolean",
                    _ => "null",
                }
            ),
        ));
        return;
    };
    let kind = obj
        .get("kind")
        .and_then(Value::as_str)
        .or(list_item_kind)
        .unwrap_or("");
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if kind.ends_with("List") {
        let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty());
        for item in obj
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            add_object(inv, origin, item, item_kind, diags);
        }
        return;
    }
    match kind {
        "Namespace" => {
            if kinds::other(origin, &object_label(kind, doc), kind, doc, diags) {
                return;
            }
            if let Some(meta) = typed::<Meta>(origin, kind, doc, diags) {
                let name = meta.metadata.name.clone();
                if name.is_empty() {
                    diags.push(Diagnostic::error(
                        DiagnosticCode::MissingField,
                        origin,
                        "Namespace",
                        "metadata.name",
                        "missing name",
                    ));
                    return;
                }
                inv.namespaces.insert(
                    name.clone(),
                    Namespace {
                        name,
                        labels: meta.metadata.labels,
                        declared: true,
                    },
                );
            }
        }
        "Pod" => {
            if kinds::workload(origin, &object_label(kind, doc), kind, doc, diags) {
                return;
            }
            if let Some(p) = typed::<PodDoc>(origin, kind, doc, diags) {
                let mut metadata = p.metadata;
                let ns = metadata
                    .namespace
                    .take()
                    .unwrap_or_else(|| "default".to_string());
                metadata.namespace = Some(ns);
                inv.pods.push(Pod {
                    origin: origin.clone(),
                    metadata,
                    ports: p.spec.ports(),
                    from_template: false,
                    workload: Default::default(),
                });
            }
        }
        "Service" if api_version == "v1" || api_version.is_empty() => {
            if kinds::service(origin, &object_label(kind, doc), doc, diags) {
                return;
            }
            if let Some(s) = typed::<ServiceDoc>(origin, kind, doc, diags) {
                let mut metadata = s.metadata;
                metadata
                    .namespace
                    .get_or_insert_with(|| "default".to_string());
                inv.services.push(Service {
                    origin: origin.clone(),
                    metadata,
                    selector: s.spec.selector.filter(|sel| !sel.is_empty()),
                    ports: s.spec.ports,
                    service_type: s.spec.service_type,
                });
            }
        }
        "NetworkPolicy"
            if api_version.starts_with("networking.k8s.io") || api_version.is_empty() =>
        {
            // One the API server would refuse could not be in a cluster: it is left out.
            if crate::validate::network_policy(origin, &object_label(kind, doc), doc, diags) {
                return;
            }
            if let Some(mut policy) = typed::<NetworkPolicy>(origin, kind, doc, diags) {
                policy
                    .metadata
                    .namespace
                    .get_or_insert_with(|| "default".to_string());
                inv.network_policies.push(PolicyObject {
                    origin: origin.clone(),
                    policy,
                });
            }
        }
        "AdminNetworkPolicy" | "BaselineAdminNetworkPolicy"
            if api_version.starts_with("policy.networking.k8s.io") =>
        {
            let baseline = kind == "BaselineAdminNetworkPolicy";
            if kinds::admin_network_policy(origin, &object_label(kind, doc), baseline, doc, diags) {
                return;
            }
            if let Some(policy) = typed::<AdminNetworkPolicy>(origin, kind, doc, diags) {
                inv.admin_policies.push(AdminPolicyObject {
                    origin: origin.clone(),
                    baseline,
                    policy,
                });
            }
        }
        "Ingress" if api_version.starts_with("networking.k8s.io") => {
            inv.ingress_backends.extend(ingress_backends(origin, doc));
        }
        "Route" if api_version.starts_with("route.openshift.io") => {
            inv.ingress_backends.extend(route_backends(origin, doc));
        }
        // Secondary networks do not change pod-network connectivity, so only primary ones count.
        "UserDefinedNetwork"
            if api_version.starts_with("k8s.ovn.org") && is_primary(doc.get("spec")) =>
        {
            let namespace = namespace_of(doc);
            inv.primary_networks.push(PrimaryNetwork {
                origin: origin.clone(),
                name: namespace.clone(),
                scope: NetworkScope::Namespace(namespace),
            });
        }
        "ClusterUserDefinedNetwork"
            if api_version.starts_with("k8s.ovn.org")
                && is_primary(doc.pointer("/spec/network")) =>
        {
            let selector = doc
                .pointer("/spec/namespaceSelector")
                .and_then(|s| serde_json::from_value::<LabelSelector>(s.clone()).ok());
            match selector {
                Some(selector) => inv.primary_networks.push(PrimaryNetwork {
                    origin: origin.clone(),
                    name: doc
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    scope: NetworkScope::Namespaces(selector),
                }),
                None => diags.push(Diagnostic::error(
                    DiagnosticCode::MissingField,
                    origin,
                    object_label(kind, doc),
                    "spec.namespaceSelector",
                    "missing or invalid namespace selector",
                )),
            }
        }
        "ClientIntents" => {
            if let Some(i) = intents::parse(origin, doc, diags) {
                inv.intents.push(i);
            }
        }
        "ProtectedService" => {
            if kinds::other(origin, &object_label(kind, doc), kind, doc, diags) {
                return;
            }
            let Some(meta) = typed::<Meta>(origin, kind, doc, diags) else {
                return;
            };
            let namespace = meta
                .metadata
                .namespace
                .unwrap_or_else(|| "default".to_string());
            let object = format!("ProtectedService {namespace}/{}", meta.metadata.name);
            match doc
                .pointer("/spec/name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            {
                Some(service_name) => inv.protected_services.push(ProtectedService {
                    origin: origin.clone(),
                    name: meta.metadata.name,
                    namespace,
                    // The protected server is a workload identity, whose dots are underscores.
                    service_name: crate::identity::normalize_name(service_name),
                }),
                None => diags.push(Diagnostic::error(
                    DiagnosticCode::MissingField,
                    origin,
                    object,
                    "spec.name",
                    "missing: the protected server must be named",
                )),
            }
        }
        k if WORKLOAD_KINDS.contains(&k) => {
            if !workload_api_version_ok(k, api_version) {
                diags.push(Diagnostic::error(
                    DiagnosticCode::UnsupportedVersion,
                    origin,
                    object_label(kind, doc),
                    "apiVersion",
                    format!("{api_version:?} does not serve {k}"),
                ));
                return;
            }
            if kinds::workload(origin, &object_label(kind, doc), k, doc, diags) {
                return;
            }
            if let Some(w) = typed::<WorkloadDoc>(origin, kind, doc, diags) {
                let mut metadata = w.metadata;
                metadata
                    .namespace
                    .get_or_insert_with(|| "default".to_string());
                let template = w.spec.pod_template();
                inv.workloads.push(Workload {
                    origin: origin.clone(),
                    kind: k.to_string(),
                    metadata,
                    template,
                });
            }
        }
        "" => diags.push(Diagnostic::warning(
            DiagnosticCode::NotAnObject,
            origin,
            "",
            "kind",
            "missing: every Kubernetes object names its kind",
        )),
        // Kinds Accord does not read are skipped, but one that differs from a kind Accord
        // reads only by case or a typo is a mistake.
        other => {
            // Case, or one letter off in a long name: short kinds (Role, Node) are too close to
            // one another for a guess.
            let close = READ_KINDS.iter().chain(WORKLOAD_KINDS).find(|k| {
                **k != other && k.eq_ignore_ascii_case(other)
                    || (other.len() >= 8 && crate::validate::edit_distance(other, k) == 1)
            });
            if let Some(close) = close {
                diags.push(Diagnostic::error(
                    DiagnosticCode::NotAnObject,
                    origin,
                    object_label(kind, doc),
                    "kind",
                    format!("unknown kind {other:?}; did you mean {close:?}?"),
                ));
            }
        }
    }
}

/// Kinds read besides the workload kinds.
const READ_KINDS: &[&str] = &[
    "Namespace",
    "Pod",
    "Service",
    "NetworkPolicy",
    "AdminNetworkPolicy",
    "BaselineAdminNetworkPolicy",
    "ClientIntents",
    "ProtectedService",
    "Ingress",
    "Route",
    "UserDefinedNetwork",
    "ClusterUserDefinedNetwork",
];

/// Whether `api_version` serves the workload kind `kind` (empty: not given, accepted).
fn workload_api_version_ok(kind: &str, api_version: &str) -> bool {
    match kind {
        "Pod" | "ReplicationController" => matches!(api_version, "" | "v1"),
        "CronJob" | "Job" => matches!(api_version, "" | "batch/v1" | "batch/v1beta1"),
        "VirtualMachine" | "VirtualMachineInstance" => {
            api_version.is_empty() || api_version.starts_with("kubevirt.io/")
        }
        _ => matches!(
            api_version,
            "" | "apps/v1" | "apps/v1beta1" | "apps/v1beta2" | "extensions/v1beta1"
        ),
    }
}

/// Whether a (Cluster)UserDefinedNetwork network spec has the Primary role in its topology.
fn is_primary(spec: Option<&Value>) -> bool {
    ["layer2", "layer3"].iter().any(|t| {
        spec.and_then(|s| s.pointer(&format!("/{t}/role")))
            .and_then(Value::as_str)
            == Some("Primary")
    })
}

fn namespace_of(doc: &Value) -> String {
    doc.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string()
}

/// The Services an Ingress sends traffic to: its default backend and every path's backend.
fn ingress_backends(origin: &Origin, doc: &Value) -> Vec<IngressBackend> {
    let namespace = namespace_of(doc);
    let mut services: Vec<&Value> = doc
        .pointer("/spec/defaultBackend/service")
        .into_iter()
        .collect();
    for rule in doc
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for path in rule
            .pointer("/http/paths")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            services.extend(path.pointer("/backend/service"));
        }
    }
    services
        .into_iter()
        .filter_map(|s| {
            let service = s.get("name")?.as_str()?.to_string();
            let port = match (
                s.pointer("/port/number").and_then(Value::as_i64),
                s.pointer("/port/name").and_then(Value::as_str),
            ) {
                (Some(n), _) => Some(IntOrString::Int(n as i32)),
                (None, Some(name)) => Some(IntOrString::String(name.to_string())),
                (None, None) => None,
            };
            Some(IngressBackend {
                origin: origin.clone(),
                namespace: namespace.clone(),
                service,
                port,
            })
        })
        .collect()
}

/// The Services an OpenShift Route sends traffic to: `to` and `alternateBackends`.
fn route_backends(origin: &Origin, doc: &Value) -> Vec<IngressBackend> {
    let namespace = namespace_of(doc);
    let port = doc.pointer("/spec/port/targetPort").and_then(|p| match p {
        Value::Number(n) => n.as_i64().map(|n| IntOrString::Int(n as i32)),
        Value::String(s) => Some(IntOrString::String(s.clone())),
        _ => None,
    });
    let targets = doc.pointer("/spec/to").into_iter().chain(
        doc.pointer("/spec/alternateBackends")
            .and_then(Value::as_array)
            .into_iter()
            .flatten(),
    );
    targets
        .filter(|t| {
            t.get("kind")
                .and_then(Value::as_str)
                .is_none_or(|k| k == "Service")
        })
        .filter_map(|t| {
            Some(IngressBackend {
                origin: origin.clone(),
                namespace: namespace.clone(),
                service: t.get("name")?.as_str()?.to_string(),
                port: port.clone(),
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct Meta {
    #[serde(default)]
    metadata: ObjectMeta,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PodSpecDoc {
    #[serde(default)]
    containers: Vec<ContainerDoc>,
    #[serde(default)]
    init_containers: Vec<ContainerDoc>,
}

impl PodSpecDoc {
    fn ports(self) -> Vec<ContainerPort> {
        let mut ports: Vec<ContainerPort> = self
            .containers
            .into_iter()
            .chain(self.init_containers)
            .flat_map(|c| c.ports)
            .collect();
        ports.sort();
        ports.dedup();
        ports
    }
}

#[derive(Deserialize, Default)]
struct ContainerDoc {
    #[serde(default)]
    ports: Vec<ContainerPort>,
}

#[derive(Deserialize)]
struct PodDoc {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: PodSpecDoc,
}

#[derive(Deserialize, Default)]
struct ServiceSpecDoc {
    #[serde(default)]
    selector: Option<Labels>,
    #[serde(default)]
    ports: Vec<ServicePort>,
    #[serde(default, rename = "type")]
    service_type: Option<String>,
}

#[derive(Deserialize)]
struct ServiceDoc {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: ServiceSpecDoc,
}

#[derive(Deserialize, Default)]
struct TemplateDoc {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: PodSpecDoc,
}

#[derive(Deserialize, Default)]
struct JobTemplateDoc {
    #[serde(default)]
    spec: Option<Box<WorkloadSpecDoc>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WorkloadSpecDoc {
    #[serde(default)]
    template: Option<TemplateDoc>,
    #[serde(default)]
    job_template: Option<JobTemplateDoc>,
}

impl WorkloadSpecDoc {
    fn pod_template(self) -> PodTemplate {
        if let Some(t) = self.template {
            return PodTemplate {
                labels: t.metadata.labels,
                annotations: t.metadata.annotations,
                ports: t.spec.ports(),
            };
        }
        self.job_template
            .and_then(|j| j.spec)
            .map(|s| s.pod_template())
            .unwrap_or_default()
    }
}

#[derive(Deserialize)]
struct WorkloadDoc {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: WorkloadSpecDoc,
}

#[cfg(test)]
mod tests;
