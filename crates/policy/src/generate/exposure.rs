//! Who reaches a server besides declared clients: callers a server names itself
//! (`intents.otterize.com/called-by`), and traffic from outside the cluster to a protected server
//! exposed by a NodePort/LoadBalancer Service or an Ingress (`external-access-to-…` policies).

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::identity::WorkloadId;
use crate::intents::{ClientIntents, Target, TargetKind};
use crate::inventory::Inventory;
use crate::labels;
use crate::objects::{
    LabelSelector, Labels, NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicySpec, ObjectMeta,
    OwnerReference, PolicyType, Service,
};

/// The callers a server's `intents.otterize.com/called-by` annotation names, with the server's
/// namespace as the default. The value is a JSON list of names or of objects
/// `{name, namespace?, kind?}`, or names separated by commas or spaces; a name is `name` or
/// `name.namespace`, as in v1 intents. Names that are no identity are skipped.
pub fn called_by(value: &str, server_namespace: &str) -> Vec<WorkloadId> {
    let one = |text: &str, kind: Option<&str>| -> Option<WorkloadId> {
        let text = text.trim();
        let (name, namespace) = match text.split_once('.') {
            Some((name, ns)) => (name, ns),
            None => (text, server_namespace),
        };
        (!name.is_empty() && !namespace.is_empty() && !namespace.contains('.'))
            .then(|| WorkloadId::new(namespace, name, kind.filter(|k| !k.is_empty())))
    };
    let value = value.trim();
    if value.starts_with('[') {
        let Ok(items) = serde_json::from_str::<Vec<serde_json::Value>>(value) else {
            return Vec::new();
        };
        return items
            .iter()
            .filter_map(|item| match item {
                serde_json::Value::String(s) => one(s, None),
                serde_json::Value::Object(m) => {
                    let name = m.get("name")?.as_str()?;
                    let kind = m.get("kind").and_then(serde_json::Value::as_str);
                    match m.get("namespace").and_then(serde_json::Value::as_str) {
                        Some(ns) => one(&format!("{name}.{ns}"), kind),
                        None => one(name, kind),
                    }
                }
                _ => None,
            })
            .collect();
    }
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .filter_map(|s| one(s, None))
        .collect()
}

/// ClientIntents standing for the `called-by` annotations of the inventory's pods: one per
/// caller, targeting each server that names it (kind-less, as a v1 call names a server).
pub fn called_by_intents(inv: &Inventory) -> Vec<ClientIntents> {
    let mut callers: BTreeMap<WorkloadId, BTreeSet<(String, String)>> = BTreeMap::new();
    let mut origins: BTreeMap<WorkloadId, crate::diagnostic::Origin> = BTreeMap::new();
    for pod in &inv.pods {
        let Some(value) = pod.metadata.annotations.get(labels::CALLED_BY) else {
            continue;
        };
        for caller in called_by(value, pod.namespace()) {
            origins
                .entry(caller.clone())
                .or_insert_with(|| pod.origin.clone());
            callers
                .entry(caller)
                .or_default()
                .insert((pod.workload.namespace.clone(), pod.workload.name.clone()));
        }
    }
    callers
        .into_iter()
        .map(|(caller, servers)| ClientIntents {
            origin: origins.remove(&caller).unwrap_or_default(),
            api_version: "k8s.otterize.com/v2beta1".to_string(),
            name: format!("{}-called-by", caller.name),
            namespace: caller.namespace.clone(),
            workload: crate::intents::WorkloadRef {
                name: caller.name.clone(),
                kind: caller.kind.clone(),
            },
            targets: servers
                .into_iter()
                .map(|(namespace, name)| Target {
                    field: format!("metadata.annotations[{}]", labels::CALLED_BY),
                    kind: TargetKind::Workload {
                        name,
                        namespace,
                        kind: None,
                        ports: Vec::new(),
                        kafka: false,
                    },
                })
                .collect(),
            ..Default::default()
        })
        .collect()
}

/// The prefix of the policy that keeps a protected server reachable from outside the cluster.
pub const EXTERNAL_ACCESS_PREFIX: &str = "external-access-to-";

/// The policy admitting traffic from anywhere (outside the cluster, ingress controllers, load
/// balancers' health checks) to the target ports of a Service that exposes a protected server:
/// `external-access-to-<Service>`, selecting the Service's pods, owned by the Service so that it
/// goes with it. `ownership` is the protected server's formatted identity. `None` for a Service
/// without a selector.
pub(super) fn external_access_policy(service: &Service, ownership: &str) -> Option<NetworkPolicy> {
    let selector = service.selector.clone()?;
    let ports = service_target_ports(service);
    Some(NetworkPolicy {
        api_version: NetworkPolicy::api_version(),
        kind: NetworkPolicy::kind(),
        metadata: ObjectMeta {
            name: object_name(EXTERNAL_ACCESS_PREFIX, &service.metadata.name, ""),
            namespace: Some(service.namespace().to_string()),
            labels: Labels::from([
                (labels::EXTERNAL_TRAFFIC.to_string(), ownership.to_string()),
                (labels::NETWORK_POLICY.to_string(), ownership.to_string()),
            ]),
            owner_references: service
                .metadata
                .uid
                .as_ref()
                .map(|uid| OwnerReference {
                    api_version: "v1".to_string(),
                    kind: "Service".to_string(),
                    name: service.metadata.name.clone(),
                    uid: uid.clone(),
                    controller: None,
                    block_owner_deletion: None,
                })
                .into_iter()
                .collect(),
            ..Default::default()
        },
        spec: NetworkPolicySpec {
            pod_selector: LabelSelector {
                match_labels: selector,
                match_expressions: Vec::new(),
            },
            policy_types: vec![PolicyType::Ingress],
            ingress: Some(vec![NetworkPolicyIngressRule {
                ports,
                from: Vec::new(),
            }]),
            egress: None,
        },
    })
}
