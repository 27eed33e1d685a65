//! Generation: intents + inventory → the NetworkPolicies and pod labels that enforce them.
//!
//! The output matches the `k8s.otterize.com` operator for the same input (policy names, label
//! keys and values, selectors, rule shapes), so a cluster can switch between the two. Accord's one
//! addition, port-level targets, only changes the output of intents that use it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::diagnostic::{Diagnostic, DiagnosticCode};
use crate::identity::{WorkloadId, formatted};
use crate::intents::{ClientIntents, Target, TargetKind, TargetPort};
use crate::inventory::{Inventory, NAMESPACE_NAME_LABEL};
use crate::labels;
use crate::net::parse_cidr_or_ip;
use crate::objects::{
    IntOrString, IpBlock, LabelSelector, Labels, NetworkPolicy, NetworkPolicyEgressRule,
    NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec, ObjectMeta,
    OwnerReference, PolicyType, Protocol,
};

/// Generation options; the defaults match the upstream operator's defaults (ingress policies
/// only, enforcement on everywhere). The one settings type of `render`, the operator, `accord
/// serve` and the what-if; the operator publishes it (as camelCase JSON) for the dashboard.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GenerateOptions {
    /// Also generate egress rules for clients (with DNS allowed).
    pub egress: bool,
    /// Put ingress and egress in separate `-ingress` / `-egress` policies instead of one
    /// `-access` policy per workload.
    pub separate_policies: bool,
    /// Shadow mode: only servers in `enforced_namespaces` or named by a ProtectedService get
    /// policies.
    pub shadow: bool,
    pub enforced_namespaces: BTreeSet<String>,
    /// Addresses of the Kubernetes API server, for egress to `kubernetes.default`.
    pub api_server_ips: Vec<String>,
}

/// Everything generation produces.
#[derive(Clone, Debug, Default)]
pub struct Generated {
    /// Sorted by namespace, then name.
    pub policies: Vec<NetworkPolicy>,
    /// Workloads (as declared: a kind-less identity matches any kind) whose pods get the
    /// `service` and `owner-kind` labels: every client and every workload target.
    pub in_scope: BTreeSet<WorkloadId>,
    /// The client and access labels per declared client.
    pub client_labels: BTreeMap<WorkloadId, Labels>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Generated {
    /// The declared identities that designate a resolved workload: itself, and its kind-less form.
    fn declared_forms(workload: &WorkloadId) -> [WorkloadId; 2] {
        [
            workload.clone(),
            WorkloadId {
                kind: None,
                ..workload.clone()
            },
        ]
    }

    /// The labels Accord wants on the pods of a (resolved) workload. Empty when the workload is
    /// not in scope.
    pub fn labels_for(&self, workload: &WorkloadId) -> Labels {
        let mut out = Labels::new();
        let forms = Self::declared_forms(workload);
        if forms.iter().any(|f| self.in_scope.contains(f)) {
            out.insert(
                labels::SERVICE.to_string(),
                formatted(&workload.name, &workload.namespace, None),
            );
            if let Some(kind) = &workload.kind {
                out.insert(labels::OWNER_KIND.to_string(), kind.clone());
            }
        }
        for f in &forms {
            if let Some(l) = self.client_labels.get(f) {
                out.extend(l.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        out
    }

    /// The desired labels of every workload in the inventory that gets any.
    pub fn pod_labels(&self, inv: &Inventory) -> BTreeMap<WorkloadId, Labels> {
        inv.workload_ids()
            .into_iter()
            .map(|id| (id.clone(), self.labels_for(id)))
            .filter(|(_, l)| !l.is_empty())
            .collect()
    }
}

/// Put the generated labels on the inventory's pods, as the operator does in a cluster, so that
/// evaluating the generated policies sees the labels they select on. Accord-managed labels the
/// pods no longer should carry are removed.
pub fn apply_pod_labels(inv: &mut Inventory, generated: &Generated) {
    let mut cache: HashMap<WorkloadId, Labels> = HashMap::new();
    for pod in &mut inv.pods {
        let want = cache
            .entry(pod.workload.clone())
            .or_insert_with(|| generated.labels_for(&pod.workload));
        pod.metadata
            .labels
            .retain(|k, _| !labels::is_managed_pod_label(k));
        pod.metadata
            .labels
            .extend(want.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

/// The pod selector that picks a workload's pods by the labels Accord puts on them.
pub fn workload_selector(id: &WorkloadId) -> LabelSelector {
    let mut sel =
        LabelSelector::labels([(labels::SERVICE, formatted(&id.name, &id.namespace, None))]);
    if let Some(kind) = &id.kind {
        sel.match_labels
            .insert(labels::OWNER_KIND.to_string(), kind.clone());
    }
    sel
}

/// The base of a generated policy's name: `name` or `name-kind`.
pub fn policy_base_name(id: &WorkloadId) -> String {
    match &id.kind {
        None => id.name.clone(),
        Some(kind) => format!("{}-{}", id.name, kind.to_lowercase()),
    }
}

fn namespace_selector(ns: &str) -> LabelSelector {
    LabelSelector::labels([(NAMESPACE_NAME_LABEL, ns)])
}

fn target_ports(ports: &[TargetPort]) -> Vec<NetworkPolicyPort> {
    ports
        .iter()
        .map(|p| NetworkPolicyPort {
            port: Some(IntOrString::Int(p.port)),
            end_port: p.end_port,
            protocol: Some(p.protocol),
        })
        .collect()
}

/// One ingress rule: which namespace's clients, through which ports, and (for port-level
/// targets) which client.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct IngressKey {
    namespace: String,
    client: Option<String>,
    ports: Vec<NetworkPolicyPort>,
}

#[derive(Default)]
struct PolicyBuilder {
    selector: LabelSelector,
    owner: Option<OwnerReference>,
    access_label: String,
    ingress: BTreeSet<IngressKey>,
    egress: Vec<NetworkPolicyEgressRule>,
    wants_ingress: bool,
}

struct Generator<'a> {
    inv: &'a Inventory,
    /// Kinds of the workloads present, by (namespace, name).
    present: HashMap<(&'a str, &'a str), BTreeSet<Option<&'a str>>>,
    services: HashMap<(&'a str, &'a str), &'a crate::objects::Service>,
    /// Formatted identities already computed: each costs an MD5 and a few allocations, and the
    /// same servers appear in many intents.
    formatted: HashMap<(&'a str, &'a str, Option<&'a str>), String>,
    opts: &'a GenerateOptions,
    builders: BTreeMap<WorkloadId, PolicyBuilder>,
    out: Generated,
}

/// Generate the NetworkPolicies and pod labels for every ClientIntents in the inventory.
pub fn generate(inv: &Inventory, opts: &GenerateOptions) -> Generated {
    let mut present: HashMap<(&str, &str), BTreeSet<Option<&str>>> = HashMap::new();
    for p in &inv.pods {
        present
            .entry((p.workload.namespace.as_str(), p.workload.name.as_str()))
            .or_default()
            .insert(p.workload.kind.as_deref());
    }
    let services = inv
        .services
        .iter()
        .map(|s| ((s.namespace(), s.metadata.name.as_str()), s))
        .collect();
    let mut g = Generator {
        inv,
        present,
        services,
        formatted: HashMap::new(),
        opts,
        builders: BTreeMap::new(),
        out: Generated::default(),
    };
    let mut intents: Vec<&ClientIntents> = inv.intents.iter().collect();
    intents.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    g.check_duplicates(&intents);
    for i in intents {
        g.add_intents(i);
    }
    g.finish()
}

impl<'a> Generator<'a> {
    fn formatted(&mut self, name: &'a str, namespace: &'a str, kind: Option<&'a str>) -> String {
        self.formatted
            .entry((name, namespace, kind))
            .or_insert_with(|| formatted(name, namespace, kind))
            .clone()
    }

    fn check_duplicates(&mut self, intents: &[&ClientIntents]) {
        let mut seen: BTreeMap<(String, String, Option<String>), &ClientIntents> = BTreeMap::new();
        for i in intents {
            let key = (
                i.namespace.clone(),
                i.workload.name.clone(),
                i.workload.kind.clone(),
            );
            if let Some(first) = seen.get(&key) {
                self.out.diagnostics.push(Diagnostic::error(
                    DiagnosticCode::DuplicateIntents,
                    &i.origin,
                    i.object_name(),
                    "spec.workload",
                    format!(
                        "workload {:?} already has intents in {} ({}); at most one ClientIntents per workload and kind is allowed",
                        i.workload.name,
                        first.object_name(),
                        first.origin
                    ),
                ));
            } else {
                seen.insert(key, i);
            }
        }
    }

    fn enforced(&self, id: &WorkloadId) -> bool {
        !self.opts.shadow
            || self.opts.enforced_namespaces.contains(&id.namespace)
            || self
                .inv
                .protected_services
                .iter()
                .any(|p| p.namespace == id.namespace && p.service_name == id.name)
    }

    fn exists(&self, id: &WorkloadId) -> bool {
        self.present
            .get(&(id.namespace.as_str(), id.name.as_str()))
            .is_some_and(|kinds| id.kind.is_none() || kinds.contains(&id.kind.as_deref()))
    }

    fn warn(&mut self, code: DiagnosticCode, intents: &ClientIntents, field: &str, msg: String) {
        self.out.diagnostics.push(Diagnostic::warning(
            code,
            &intents.origin,
            intents.object_name(),
            field,
            msg,
        ));
    }

    fn add_intents(&mut self, intents: &'a ClientIntents) {
        let client = WorkloadId::new(
            &intents.namespace,
            &intents.workload.name,
            intents.workload.kind.as_deref(),
        );
        if !self.exists(&client) {
            self.warn(
                DiagnosticCode::ClientNotFound,
                intents,
                "spec.workload",
                format!("no workload {client} found; its pods will be labelled once they exist"),
            );
        }
        self.out.in_scope.insert(client.clone());
        let mut client_labels = Labels::new();
        client_labels.insert(
            labels::CLIENT.to_string(),
            formatted(&client.name, &client.namespace, None),
        );
        let formatted_client = formatted(&client.name, &client.namespace, None);
        let mut egress = Vec::new();
        for target in &intents.targets {
            self.add_target(
                intents,
                &client,
                &formatted_client,
                target,
                &mut client_labels,
                &mut egress,
            );
        }
        self.out
            .client_labels
            .entry(client.clone())
            .or_default()
            .extend(client_labels);
        if self.opts.egress && self.enforced(&client) {
            egress.push(NetworkPolicyEgressRule {
                ports: [Protocol::Udp, Protocol::Tcp]
                    .into_iter()
                    .map(|protocol| NetworkPolicyPort {
                        port: Some(IntOrString::Int(53)),
                        end_port: None,
                        protocol: Some(protocol),
                    })
                    .collect(),
                to: Vec::new(),
            });
            let b = self.builders.entry(client.clone()).or_default();
            b.selector = workload_selector(&client);
            for rule in egress {
                if !b.egress.contains(&rule) {
                    b.egress.push(rule);
                }
            }
        }
    }

    fn add_target(
        &mut self,
        intents: &'a ClientIntents,
        client: &WorkloadId,
        formatted_client: &str,
        target: &'a Target,
        client_labels: &mut Labels,
        egress: &mut Vec<NetworkPolicyEgressRule>,
    ) {
        if target.is_api_server() {
            if self.opts.egress {
                let to: Vec<NetworkPolicyPeer> = self
                    .opts
                    .api_server_ips
                    .iter()
                    .filter_map(|ip| parse_cidr_or_ip(ip))
                    .map(|c| ip_peer(crate::net::Cidr::host_block(c.addr).to_string()))
                    .collect();
                if to.is_empty() {
                    self.warn(
 DiagnosticCode::AddressesUnknown,
                        intents,
                        &target.field,
                        "egress to the Kubernetes API server needs its addresses, which are only known in a live cluster".to_string(),
                    );
                } else {
                    egress.push(NetworkPolicyEgressRule {
                        ports: Vec::new(),
                        to,
                    });
                }
            }
            return;
        }
        match &target.kind {
            TargetKind::Workload {
                name,
                namespace,
                kind,
                ports,
                ..
            } => {
                let server = WorkloadId::new(namespace, name, kind.as_deref());
                if !self.exists(&server) {
                    self.warn(
                        DiagnosticCode::TargetNotFound,
                        intents,
                        &target.field,
                        format!("target {server} resolves to no workload"),
                    );
                }
                if !self.out.in_scope.contains(&server) {
                    self.out.in_scope.insert(server.clone());
                }
                let access = format!(
                    "{}{}",
                    labels::ACCESS_PREFIX,
                    self.formatted(name, namespace, kind.as_deref())
                );
                // A port-restricted target is admitted by the client's own label instead of the
                // shared access label: another client of the same server without ports would
                // otherwise open every port to every pod carrying that label.
                if ports.is_empty() {
                    client_labels.insert(access.clone(), "true".to_string());
                }
                let np_ports = target_ports(ports);
                if self.enforced(&server) {
                    let b = builder(&mut self.builders, &server);
                    if b.selector.is_empty() {
                        b.selector = workload_selector(&server);
                    }
                    b.wants_ingress = true;
                    b.access_label = access;
                    b.ingress.insert(IngressKey {
                        namespace: client.namespace.clone(),
                        client: (!ports.is_empty()).then(|| formatted_client.to_string()),
                        ports: np_ports.clone(),
                    });
                }
                if !self.opts.egress {
                    return;
                }
                egress.push(NetworkPolicyEgressRule {
                    ports: np_ports,
                    to: vec![NetworkPolicyPeer {
                        pod_selector: Some(workload_selector(&server)),
                        namespace_selector: Some(namespace_selector(namespace)),
                        ip_block: None,
                    }],
                });
            }
            TargetKind::Service {
                name,
                namespace,
                ports,
            } => {
                let access = format!(
                    "{}{}",
                    labels::SVC_ACCESS_PREFIX,
                    self.formatted(name, namespace, Some("Service"))
                );
                if ports.is_empty() {
                    client_labels.insert(access.clone(), "true".to_string());
                }
                let Some(service) = self
                    .services
                    .get(&(namespace.as_str(), name.as_str()))
                    .copied()
                else {
                    self.warn(
 DiagnosticCode::ServiceNotFound,
                        intents,
                        &target.field,
                        format!("target Service {namespace}/{name} resolves to nothing; no policy is generated for it"),
                    );
                    return;
                };
                let Some(selector) = service.selector.clone() else {
                    self.warn(
 DiagnosticCode::ServiceWithoutSelector,
                        intents,
                        &target.field,
                        format!("Service {namespace}/{name} has no selector; no policy is generated for it"),
                    );
                    return;
                };
                let server = WorkloadId::new(namespace, name, Some("Service"));
                let ingress_ports: Vec<NetworkPolicyPort> = if ports.is_empty() {
                    let mut v: Vec<NetworkPolicyPort> = service
                        .ports
                        .iter()
                        .map(|p| NetworkPolicyPort {
                            port: Some(p.effective_target_port()),
                            end_port: None,
                            protocol: Some(p.protocol),
                        })
                        .collect();
                    dedup_keep_order(&mut v);
                    v
                } else {
                    target_ports(ports)
                };
                if self.enforced(&server) {
                    let b = builder(&mut self.builders, &server);
                    b.selector = LabelSelector {
                        match_labels: selector.clone(),
                        match_expressions: Vec::new(),
                    };
                    b.wants_ingress = true;
                    b.access_label = access;
                    b.owner = service.metadata.uid.as_ref().map(|uid| OwnerReference {
                        api_version: "v1".to_string(),
                        kind: "Service".to_string(),
                        name: name.clone(),
                        uid: uid.clone(),
                        controller: None,
                        block_owner_deletion: None,
                    });
                    b.ingress.insert(IngressKey {
                        namespace: client.namespace.clone(),
                        client: (!ports.is_empty()).then(|| formatted_client.to_string()),
                        ports: ingress_ports.clone(),
                    });
                }
                if !self.opts.egress {
                    return;
                }
                let egress_ports: Vec<NetworkPolicyPort> = if ports.is_empty() {
                    let mut v: Vec<NetworkPolicyPort> = service
                        .ports
                        .iter()
                        .flat_map(|p| {
                            [IntOrString::Int(p.port), p.effective_target_port()].map(|port| {
                                NetworkPolicyPort {
                                    port: Some(port),
                                    end_port: None,
                                    protocol: Some(p.protocol),
                                }
                            })
                        })
                        .collect();
                    dedup_keep_order(&mut v);
                    v
                } else {
                    ingress_ports
                };
                egress.push(NetworkPolicyEgressRule {
                    ports: egress_ports,
                    to: vec![NetworkPolicyPeer {
                        pod_selector: Some(LabelSelector {
                            match_labels: selector,
                            match_expressions: Vec::new(),
                        }),
                        namespace_selector: Some(namespace_selector(namespace)),
                        ip_block: None,
                    }],
                });
            }
            TargetKind::Internet {
                ips,
                domains,
                ports,
            } => {
                let mut addrs: Vec<String> = ips.clone();
                for domain in domains {
                    match intents.resolved_ips.get(domain) {
                        Some(resolved) => addrs.extend(resolved.iter().cloned()),
                        None if self.opts.egress => self.warn(
 DiagnosticCode::AddressesUnknown,
                            intents,
                            &target.field,
                            format!("domain {domain:?} has no resolved addresses yet; it is allowed once the operator resolves it"),
                        ),
                        None => {}
                    }
                }
                let mut to: Vec<NetworkPolicyPeer> = addrs
                    .iter()
                    .filter_map(|a| parse_cidr_or_ip(a))
                    .map(|c| ip_peer(c.to_string()))
                    .collect();
                to.sort();
                to.dedup();
                if !to.is_empty() {
                    egress.push(NetworkPolicyEgressRule {
                        ports: ports
                            .iter()
                            .map(|&p| NetworkPolicyPort {
                                port: Some(IntOrString::Int(p)),
                                end_port: None,
                                protocol: Some(Protocol::Tcp),
                            })
                            .collect(),
                        to,
                    });
                }
            }
            TargetKind::NonNetwork { .. } => {}
        }
    }

    fn finish(mut self) -> Generated {
        let separate = self.opts.separate_policies;
        for (id, b) in std::mem::take(&mut self.builders) {
            let base = policy_base_name(&id);
            let ownership = formatted(&id.name, &id.namespace, id.kind.as_deref());
            let ingress: Vec<NetworkPolicyIngressRule> = b
                .ingress
                .iter()
                .map(|k| {
                    let pod_sel = match &k.client {
                        Some(client) => LabelSelector::labels([(labels::CLIENT, client.as_str())]),
                        None => LabelSelector::labels([(b.access_label.as_str(), "true")]),
                    };
                    NetworkPolicyIngressRule {
                        ports: k.ports.clone(),
                        from: vec![NetworkPolicyPeer {
                            pod_selector: Some(pod_sel),
                            namespace_selector: Some(namespace_selector(&k.namespace)),
                            ip_block: None,
                        }],
                    }
                })
                .collect();
            let has_ingress = b.wants_ingress;
            let has_egress = !b.egress.is_empty();
            let make = |suffix: &str,
                        ingress: Option<Vec<NetworkPolicyIngressRule>>,
                        egress: Option<Vec<NetworkPolicyEgressRule>>| {
                let mut types = Vec::new();
                if ingress.is_some() {
                    types.push(PolicyType::Ingress);
                }
                if egress.is_some() {
                    types.push(PolicyType::Egress);
                }
                NetworkPolicy {
                    api_version: NetworkPolicy::api_version(),
                    kind: NetworkPolicy::kind(),
                    metadata: ObjectMeta {
                        name: format!("{base}-{suffix}"),
                        namespace: Some(id.namespace.clone()),
                        labels: Labels::from([(
                            labels::NETWORK_POLICY.to_string(),
                            ownership.clone(),
                        )]),
                        owner_references: b.owner.clone().into_iter().collect(),
                        ..Default::default()
                    },
                    spec: NetworkPolicySpec {
                        pod_selector: b.selector.clone(),
                        policy_types: types,
                        ingress,
                        egress,
                    },
                }
            };
            if separate {
                if has_ingress {
                    self.out.policies.push(make("ingress", Some(ingress), None));
                }
                if has_egress {
                    self.out
                        .policies
                        .push(make("egress", None, Some(b.egress.clone())));
                }
            } else if has_ingress || has_egress {
                let policy = make(
                    "access",
                    has_ingress.then_some(ingress),
                    has_egress.then(|| b.egress.clone()),
                );
                self.out.policies.push(policy);
            }
        }
        for p in &self.inv.protected_services {
            self.out.policies.push(NetworkPolicy {
                api_version: NetworkPolicy::api_version(),
                kind: NetworkPolicy::kind(),
                metadata: ObjectMeta {
                    name: format!("default-deny-{}", p.service_name),
                    namespace: Some(p.namespace.clone()),
                    labels: Labels::from([(labels::DEFAULT_DENY.to_string(), "true".to_string())]),
                    ..Default::default()
                },
                spec: NetworkPolicySpec {
                    pod_selector: LabelSelector::labels([(
                        labels::SERVICE,
                        formatted(&p.service_name, &p.namespace, None),
                    )]),
                    policy_types: vec![PolicyType::Ingress],
                    ingress: Some(Vec::new()),
                    egress: None,
                },
            });
        }
        self.out.policies.sort_by(|a, b| {
            (a.namespace(), &a.metadata.name).cmp(&(b.namespace(), &b.metadata.name))
        });
        self.out
            .policies
            .dedup_by(|a, b| a.namespace() == b.namespace() && a.metadata.name == b.metadata.name);
        self.out.diagnostics.sort();
        self.out
    }
}

/// The builder of a workload's policy, created on first use (looked up first so that the key is
/// only cloned once per workload, not once per target).
fn builder<'b>(
    builders: &'b mut BTreeMap<WorkloadId, PolicyBuilder>,
    id: &WorkloadId,
) -> &'b mut PolicyBuilder {
    if !builders.contains_key(id) {
        builders.insert(id.clone(), PolicyBuilder::default());
    }
    builders.get_mut(id).expect("inserted above")
}

fn ip_peer(cidr: String) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        pod_selector: None,
        namespace_selector: None,
        ip_block: Some(IpBlock {
            cidr,
            except: Vec::new(),
        }),
    }
}

fn dedup_keep_order<T: PartialEq + Clone>(v: &mut Vec<T>) {
    let mut out: Vec<T> = Vec::with_capacity(v.len());
    for x in v.drain(..) {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    *v = out;
}
