//! Generation: intents + inventory → the NetworkPolicies and pod labels that enforce them.
//!
//! The output matches the `k8s.otterize.com` operator for the same input (policy names, label
//! keys and values, selectors, rule shapes), so a cluster can switch between the two. Accord's one
//! addition, port-level targets, only changes the output of intents that use it; and where
//! upstream would name an object in a way the API server rejects, Accord names it validly
//! ([`object_name`]). `docs/otterize-compat.md` compares the two, row by row.
//!
//! Size: one generator walks one inventory (targets resolved, per-server rules and egress built in
//! shared builder state); names, exposure and the final assembly are in `generate/`.

mod exposure;
mod finish;
mod names;

use exposure::external_access_policy;
pub use exposure::{EXTERNAL_ACCESS_PREFIX, called_by, called_by_intents};
pub use names::{
    DEFAULT_DENY_PREFIX, MAX_OBJECT_NAME, is_valid_object_name, object_name, policy_base_name,
};

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::diagnostic::{Diagnostic, DiagnosticCode};
use crate::identity::{WorkloadId, formatted};
use crate::intents::{ClientIntents, Target, TargetKind, TargetPort};
use crate::inventory::{Inventory, NAMESPACE_NAME_LABEL, Pod};
use crate::labels;
use crate::net::parse_cidr_or_ip;
use crate::objects::{
    IntOrString, IpBlock, LabelSelector, Labels, NetworkPolicy, NetworkPolicyEgressRule,
    NetworkPolicyPeer, NetworkPolicyPort, OwnerReference, Protocol, Service,
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
    /// Workloads (as declared: a kind-less identity matches any kind) that intents refer to:
    /// every client and every workload target. (Every pod gets the `service` and `owner-kind`
    /// labels, in scope or not.)
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
        // Every pod gets its identity labels, whether or not intents name it (as upstream
        // does, so that tools and policies written against them see every workload); a
        // workload named by the override annotation has an empty owner kind.
        out.insert(
            labels::SERVICE.to_string(),
            formatted(&workload.name, &workload.namespace, None),
        );
        out.insert(
            labels::OWNER_KIND.to_string(),
            workload.kind.clone().unwrap_or_default(),
        );
        for f in &forms {
            if let Some(l) = self.client_labels.get(f) {
                out.extend(l.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        out
    }

    /// The desired labels of every workload in the inventory.
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
    /// The server answers DNS: its policy also admits port 53 from anywhere.
    dns_server: bool,
    /// The Services (by name, in the server's namespace) that expose the server outside the
    /// cluster; computed once per server.
    exposed_by: Option<BTreeSet<String>>,
}

/// Names of the cluster DNS server's workloads and Service (CoreDNS and its `kube-dns` Service).
const DNS_SERVER_NAMES: &[&str] = &["coredns", "kube-dns"];

/// Whether a server is a DNS server, whose policy must keep admitting DNS from every pod:
/// protecting the cluster's DNS must not cut the cluster off from it. A DNS server is named
/// `coredns` or `kube-dns`, or is in `kube-system` behind a Service with port 53 (the cluster DNS
/// of distributions that name it otherwise). Elsewhere a Service on port 53 proves nothing and
/// opens nothing.
fn is_dns_server(namespace: &str, name: &str, front: &[&Service]) -> bool {
    DNS_SERVER_NAMES.contains(&name)
        || (namespace == "kube-system"
            && front.iter().any(|s| s.ports.iter().any(|p| p.port == 53)))
}

/// Port 53 over UDP and TCP, the ports of DNS.
fn dns_ports() -> Vec<NetworkPolicyPort> {
    [Protocol::Udp, Protocol::Tcp]
        .into_iter()
        .map(|protocol| NetworkPolicyPort {
            port: Some(IntOrString::Int(53)),
            end_port: None,
            protocol: Some(protocol),
        })
        .collect()
}

struct Generator<'a> {
    inv: &'a Inventory,
    /// Kinds of the workloads present, by (namespace, name).
    present: HashMap<(&'a str, &'a str), BTreeSet<Option<&'a str>>>,
    services: HashMap<(&'a str, &'a str), &'a Service>,
    /// Services by namespace, sorted by name.
    services_by_ns: HashMap<&'a str, Vec<&'a Service>>,
    /// Pods by (namespace, workload name), and by namespace.
    pods_by_name: HashMap<(&'a str, &'a str), Vec<&'a Pod>>,
    pods_by_ns: HashMap<&'a str, Vec<&'a Pod>>,
    /// Services an Ingress (or Route) sends traffic to, by (namespace, name).
    ingress_backends: HashSet<(&'a str, &'a str)>,
    /// Formatted identities already computed: each costs an MD5 and a few allocations, and the
    /// same servers appear in many intents.
    formatted: HashMap<(&'a str, &'a str, Option<&'a str>), String>,
    opts: &'a GenerateOptions,
    builders: BTreeMap<WorkloadId, PolicyBuilder>,
    /// Clients already reported missing: a client named by its ClientIntents and by a server's
    /// called-by annotation is reported once.
    missing_clients: BTreeSet<(String, String)>,
    out: Generated,
}

/// Generate the NetworkPolicies and pod labels for every ClientIntents in the inventory.
pub fn generate(inv: &Inventory, opts: &GenerateOptions) -> Generated {
    let mut present: HashMap<(&str, &str), BTreeSet<Option<&str>>> = HashMap::new();
    let mut pods_by_name: HashMap<(&str, &str), Vec<&Pod>> = HashMap::new();
    let mut pods_by_ns: HashMap<&str, Vec<&Pod>> = HashMap::new();
    for p in &inv.pods {
        let key = (p.workload.namespace.as_str(), p.workload.name.as_str());
        present
            .entry(key)
            .or_default()
            .insert(p.workload.kind.as_deref());
        pods_by_name.entry(key).or_default().push(p);
        pods_by_ns.entry(p.namespace()).or_default().push(p);
    }
    let services = inv
        .services
        .iter()
        .map(|s| ((s.namespace(), s.metadata.name.as_str()), s))
        .collect();
    let mut services_by_ns: HashMap<&str, Vec<&Service>> = HashMap::new();
    for s in &inv.services {
        services_by_ns.entry(s.namespace()).or_default().push(s);
    }
    for v in services_by_ns.values_mut() {
        v.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        v.dedup_by(|a, b| a.metadata.name == b.metadata.name);
    }
    let ingress_backends = inv
        .ingress_backends
        .iter()
        .map(|b| (b.namespace.as_str(), b.service.as_str()))
        .collect();
    let declared_by_servers = called_by_intents(inv);
    let mut g = Generator {
        inv,
        present,
        services,
        services_by_ns,
        pods_by_name,
        pods_by_ns,
        ingress_backends,
        formatted: HashMap::new(),
        opts,
        builders: BTreeMap::new(),
        missing_clients: BTreeSet::new(),
        out: Generated::default(),
    };
    let mut intents: Vec<&ClientIntents> = inv.intents.iter().collect();
    intents.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    for i in g.check_duplicates(intents) {
        g.add_intents(i);
    }
    // Callers named by servers' annotations, after the declared intents (a caller may have
    // both; its labels and rules add up).
    for i in &declared_by_servers {
        g.add_intents(i);
    }
    g.finish()
}

impl<'a> Generator<'a> {
    /// The Services of the workload's namespace whose selector selects one of its pods (a
    /// kind-less identity stands for pods of any kind), sorted by name.
    fn services_in_front_of_workload(&self, id: &WorkloadId) -> Vec<&'a Service> {
        let pods: Vec<&Pod> = self
            .pods_by_name
            .get(&(id.namespace.as_str(), id.name.as_str()))
            .into_iter()
            .flatten()
            .filter(|p| id.matches(&p.workload))
            .copied()
            .collect();
        self.services_selecting(&id.namespace, &pods)
    }

    /// The Services that select one of the pods a Service target selects (itself among them).
    fn services_in_front_of_service(&self, service: &'a Service) -> Vec<&'a Service> {
        let pods: Vec<&Pod> = self
            .pods_by_ns
            .get(service.namespace())
            .into_iter()
            .flatten()
            .filter(|p| service.selects(&p.metadata.labels))
            .copied()
            .collect();
        let mut out = self.services_selecting(service.namespace(), &pods);
        if !out.iter().any(|s| std::ptr::eq(*s, service)) {
            out.push(service);
            out.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        }
        out
    }

    fn services_selecting(&self, namespace: &str, pods: &[&Pod]) -> Vec<&'a Service> {
        if pods.is_empty() {
            return Vec::new();
        }
        self.services_by_ns
            .get(namespace)
            .into_iter()
            .flatten()
            .filter(|s| pods.iter().any(|p| s.selects(&p.metadata.labels)))
            .copied()
            .collect()
    }

    fn exposure_unknown(&self, server: &WorkloadId) -> bool {
        self.builders
            .get(server)
            .is_none_or(|b| b.exposed_by.is_none())
    }

    /// Of the Services in front of a server, those that take traffic from outside the cluster:
    /// NodePort and LoadBalancer Services, and the backends of Ingresses.
    fn exposing(&self, front: &[&'a Service]) -> BTreeSet<String> {
        front
            .iter()
            .filter(|s| {
                s.is_exposed_outside()
                    || self
                        .ingress_backends
                        .contains(&(s.namespace(), s.metadata.name.as_str()))
            })
            .map(|s| s.metadata.name.clone())
            .collect()
    }

    fn formatted(&mut self, name: &'a str, namespace: &'a str, kind: Option<&'a str>) -> String {
        self.formatted
            .entry((name, namespace, kind))
            .or_insert_with(|| formatted(name, namespace, kind))
            .clone()
    }

    /// Report every ClientIntents for a workload (and kind) that an earlier one already
    /// declares, and leave it out: the API server's admission refuses it, so it grants nothing.
    fn check_duplicates(&mut self, intents: Vec<&'a ClientIntents>) -> Vec<&'a ClientIntents> {
        let mut seen: BTreeMap<(String, String, Option<String>), &ClientIntents> = BTreeMap::new();
        let mut kept = Vec::with_capacity(intents.len());
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
                kept.push(i);
            }
        }
        kept
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

    /// Whether clients get egress rules: only with egress on and enforcement on by default.
    /// Shadow mode writes no egress at all (as upstream does), even for clients in enforced
    /// namespaces: shadow mode blocks nothing, and an egress policy blocks every call the client does not
    /// declare.
    fn egress(&self) -> bool {
        self.opts.egress && !self.opts.shadow
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
        if !self.exists(&client)
            && self
                .missing_clients
                .insert((client.namespace.clone(), client.name.clone()))
        {
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
        if self.egress() {
            egress.push(NetworkPolicyEgressRule {
                ports: dns_ports(),
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
            if self.egress() {
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
                    let probed = self.exposure_unknown(&server).then(|| {
                        let front = self.services_in_front_of_workload(&server);
                        (
                            self.exposing(&front),
                            is_dns_server(namespace, name, &front),
                        )
                    });
                    let b = builder(&mut self.builders, &server);
                    if let Some((exposed, dns)) = probed {
                        b.exposed_by = Some(exposed);
                        b.dns_server = dns;
                    }
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
                if !self.egress() {
                    return;
                }
                // Before the target, each Service in front of it by the Service's own selector,
                // as upstream does for CNIs that match egress on those labels only (the AWS VPC
                // CNI among them).
                for svc in self.services_in_front_of_workload(&server) {
                    if let Some(selector) = &svc.selector {
                        egress.push(NetworkPolicyEgressRule {
                            ports: np_ports.clone(),
                            to: vec![NetworkPolicyPeer {
                                pod_selector: Some(LabelSelector {
                                    match_labels: selector.clone(),
                                    match_expressions: Vec::new(),
                                }),
                                namespace_selector: Some(namespace_selector(namespace)),
                                ip_block: None,
                            }],
                        });
                    }
                }
                // Egress selects the target by its service label alone, whatever its kind (as
                // upstream does): the ingress side already tells kinds apart.
                egress.push(NetworkPolicyEgressRule {
                    ports: np_ports,
                    to: vec![NetworkPolicyPeer {
                        pod_selector: Some(LabelSelector::labels([(
                            labels::SERVICE,
                            self.formatted(name, namespace, None),
                        )])),
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
                    service_target_ports(service)
                } else {
                    target_ports(ports)
                };
                if self.enforced(&server) {
                    let probed = self.exposure_unknown(&server).then(|| {
                        let front = self.services_in_front_of_service(service);
                        (
                            self.exposing(&front),
                            is_dns_server(namespace, name, &front),
                        )
                    });
                    let b = builder(&mut self.builders, &server);
                    if let Some((exposed, dns)) = probed {
                        b.exposed_by = Some(exposed);
                        b.dns_server = dns;
                    }
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
                if !self.egress() {
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
                        None if self.egress() => self.warn(
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

/// The ports a Service forwards to (its target ports, each with its protocol), in order, once.
pub(super) fn service_target_ports(service: &Service) -> Vec<NetworkPolicyPort> {
    let mut ports: Vec<NetworkPolicyPort> = service
        .ports
        .iter()
        .map(|p| NetworkPolicyPort {
            port: Some(p.effective_target_port()),
            end_port: None,
            protocol: Some(p.protocol),
        })
        .collect();
    dedup_keep_order(&mut ports);
    ports
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
