//! The inventory: every object the core reasons about, with pods resolved to their workloads.
//!
//! An inventory is built from parsed documents ([`crate::load`]) or, in the server, from watch
//! events. [`Inventory::finish`] derives what the rest of the core needs: namespaces referenced but
//! not declared, pods standing in for workload manifests that have no real pods, and each pod's
//! workload identity.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::diagnostic::Origin;
use crate::identity::{self, WorkloadId};
use crate::intents::ClientIntents;
use crate::objects::{
    AdminNetworkPolicy, ContainerPort, Labels, NetworkPolicy, ObjectMeta, OwnerReference, Service,
};

/// The label every namespace carries with its own name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Kinds that own pods and whose manifests stand for their pods.
pub const WORKLOAD_KINDS: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
    "CronJob",
    "VirtualMachine",
];

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Namespace {
    pub name: String,
    pub labels: Labels,
    /// False for a namespace that objects refer to but that no manifest declares.
    pub declared: bool,
}

/// A pod template: what a workload's pods will look like.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodTemplate {
    pub labels: Labels,
    pub annotations: Labels,
    pub ports: Vec<ContainerPort>,
}

/// A pod-owning object: Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job
/// or CronJob.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Workload {
    pub origin: Origin,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub template: PodTemplate,
}

impl Workload {
    pub fn namespace(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or("default")
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pod {
    pub origin: Origin,
    pub metadata: ObjectMeta,
    pub ports: Vec<ContainerPort>,
    /// True for a pod made up from a workload manifest's template.
    pub from_template: bool,
    /// The workload identity (root owner or annotation), set by [`Inventory::finish`].
    pub workload: WorkloadId,
}

impl Pod {
    pub fn namespace(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or("default")
    }

    /// The name the connectivity-list format uses: the direct controller owner, else the pod.
    pub fn direct_owner(&self) -> (String, String) {
        self.metadata
            .owner_references
            .iter()
            .find(|o| o.controller == Some(true) && o.kind != "Node")
            .map(|o| (o.name.clone(), o.kind.clone()))
            .unwrap_or_else(|| (self.metadata.name.clone(), "Pod".to_string()))
    }

    /// Resolve a port given by name against this pod's container ports.
    pub fn named_port(&self, name: &str, protocol: crate::objects::Protocol) -> Option<i32> {
        self.ports
            .iter()
            .find(|p| p.name.as_deref() == Some(name) && p.protocol == protocol)
            .map(|p| p.container_port)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProtectedService {
    pub origin: Origin,
    pub name: String,
    pub namespace: String,
    /// `spec.name`: the server workload that must be protected.
    pub service_name: String,
}

/// A NetworkPolicy and where it was read from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyObject {
    pub origin: Origin,
    pub policy: NetworkPolicy,
}

/// An AdminNetworkPolicy or BaselineAdminNetworkPolicy and where it was read from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdminPolicyObject {
    pub origin: Origin,
    /// True for a BaselineAdminNetworkPolicy.
    pub baseline: bool,
    pub policy: AdminNetworkPolicy,
}

/// A Service exposed outside the cluster by an Ingress or an OpenShift Route: traffic from the
/// ingress controller reaches the Service's pods.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngressBackend {
    pub origin: Origin,
    pub namespace: String,
    pub service: String,
    /// The Service port (by number or name; for a Route, also its target port), or `None` for
    /// every port of the Service.
    pub port: Option<crate::objects::IntOrString>,
}

/// Which namespaces an OVN-Kubernetes primary user-defined network covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetworkScope {
    /// A UserDefinedNetwork: its own namespace.
    Namespace(String),
    /// A ClusterUserDefinedNetwork: the namespaces its selector selects.
    Namespaces(crate::objects::LabelSelector),
}

/// A primary UserDefinedNetwork or ClusterUserDefinedNetwork: pods in its namespaces reach only
/// each other (and addresses outside the cluster), not the default pod network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrimaryNetwork {
    pub origin: Origin,
    pub name: String,
    pub scope: NetworkScope,
}

#[derive(Clone, Debug, Default)]
pub struct Inventory {
    pub namespaces: BTreeMap<String, Namespace>,
    pub workloads: Vec<Workload>,
    pub pods: Vec<Pod>,
    pub services: Vec<Service>,
    pub network_policies: Vec<PolicyObject>,
    /// AdminNetworkPolicies and BaselineAdminNetworkPolicies (evaluation only).
    pub admin_policies: Vec<AdminPolicyObject>,
    /// Services exposed by Ingress and Route objects (evaluation only).
    pub ingress_backends: Vec<IngressBackend>,
    /// Primary user-defined networks (evaluation only).
    pub primary_networks: Vec<PrimaryNetwork>,
    pub intents: Vec<ClientIntents>,
    pub protected_services: Vec<ProtectedService>,
}

impl Inventory {
    /// Append the objects of another (unfinished) inventory, as if they had been loaded after
    /// this one's. Lets callers load parts of the input independently, e.g. in parallel.
    pub fn merge(&mut self, other: Inventory) {
        self.namespaces.extend(other.namespaces);
        self.workloads.extend(other.workloads);
        self.pods
            .extend(other.pods.into_iter().filter(|p| !p.from_template));
        self.services.extend(other.services);
        self.network_policies.extend(other.network_policies);
        self.admin_policies.extend(other.admin_policies);
        self.ingress_backends.extend(other.ingress_backends);
        self.primary_networks.extend(other.primary_networks);
        self.intents.extend(other.intents);
        self.protected_services.extend(other.protected_services);
    }

    /// Derive namespaces, template pods and identities. Call once after all objects are added;
    /// calling it again recomputes the derived parts.
    pub fn finish(&mut self) {
        self.pods.retain(|p| !p.from_template);
        for ns in self.namespaces.values_mut() {
            ns.labels
                .insert(NAMESPACE_NAME_LABEL.to_string(), ns.name.clone());
        }
        let owners: HashMap<(String, String, String), usize> = self
            .workloads
            .iter()
            .enumerate()
            .map(|(i, w)| {
                (
                    (
                        w.namespace().to_string(),
                        w.kind.clone(),
                        w.metadata.name.clone(),
                    ),
                    i,
                )
            })
            .collect();
        let owned_by_present = |meta: &ObjectMeta, ns: &str| {
            meta.owner_references
                .iter()
                .any(|o| owners.contains_key(&(ns.to_string(), o.kind.clone(), o.name.clone())))
        };

        // Workloads whose real pods we have: every object on the owner chain of a real pod.
        let mut covered = BTreeSet::new();
        for pod in &self.pods {
            let mut meta = &pod.metadata;
            let mut guard = 0;
            while let Some(owner) = meta.owner_references.first() {
                let key = (
                    pod.namespace().to_string(),
                    owner.kind.clone(),
                    owner.name.clone(),
                );
                let Some(&i) = owners.get(&key) else { break };
                if !covered.insert(i) || guard > 16 {
                    break;
                }
                guard += 1;
                meta = &self.workloads[i].metadata;
            }
        }
        let mut template_pods = Vec::new();
        for (i, w) in self.workloads.iter().enumerate() {
            if covered.contains(&i) || owned_by_present(&w.metadata, w.namespace()) {
                continue;
            }
            template_pods.push(Pod {
                origin: w.origin.clone(),
                metadata: ObjectMeta {
                    name: w.metadata.name.clone(),
                    namespace: Some(w.namespace().to_string()),
                    uid: None,
                    labels: w.template.labels.clone(),
                    annotations: w.template.annotations.clone(),
                    owner_references: vec![OwnerReference {
                        api_version: String::new(),
                        kind: w.kind.clone(),
                        name: w.metadata.name.clone(),
                        uid: String::new(),
                        controller: Some(true),
                        block_owner_deletion: None,
                    }],
                },
                ports: w.template.ports.clone(),
                from_template: true,
                workload: WorkloadId::default(),
            });
        }
        self.pods.extend(template_pods);

        let mut identities = Vec::with_capacity(self.pods.len());
        for pod in &self.pods {
            identities.push(identity::resolve(pod, |ns, kind, name| {
                owners
                    .get(&(ns.to_string(), kind.to_string(), name.to_string()))
                    .map(|&i| &self.workloads[i].metadata)
            }));
        }
        for (pod, id) in self.pods.iter_mut().zip(identities) {
            pod.workload = id;
        }

        let mut referenced: BTreeSet<String> = BTreeSet::new();
        referenced.extend(self.pods.iter().map(|p| p.namespace().to_string()));
        referenced.extend(self.services.iter().map(|s| s.namespace().to_string()));
        referenced.extend(
            self.network_policies
                .iter()
                .map(|p| p.policy.namespace().to_string()),
        );
        referenced.extend(self.intents.iter().map(|i| i.namespace.clone()));
        for intents in &self.intents {
            for t in &intents.targets {
                if let Some(ns) = t.namespace() {
                    referenced.insert(ns.to_string());
                }
            }
        }
        for name in referenced {
            self.namespaces
                .entry(name.clone())
                .or_insert_with(|| Namespace {
                    labels: Labels::from([(NAMESPACE_NAME_LABEL.to_string(), name.clone())]),
                    name,
                    declared: false,
                });
        }
    }

    pub fn service(&self, namespace: &str, name: &str) -> Option<&Service> {
        self.services
            .iter()
            .find(|s| s.namespace() == namespace && s.metadata.name == name)
    }

    /// Every distinct workload identity that has pods, sorted.
    pub fn workload_ids(&self) -> BTreeSet<&WorkloadId> {
        self.pods.iter().map(|p| &p.workload).collect()
    }

    /// The pods of a workload identity. A `kind` of `None` in `id` matches any kind.
    pub fn pods_of<'a>(&'a self, id: &'a WorkloadId) -> impl Iterator<Item = &'a Pod> + 'a {
        self.pods.iter().filter(move |p| id.matches(&p.workload))
    }
}
