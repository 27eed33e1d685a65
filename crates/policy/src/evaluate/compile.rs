//! Compiling an inventory's NetworkPolicies into indexed form for evaluation.
//!
//! Pods are grouped into *endpoints*: pods with the same namespace, labels and container ports
//! are indistinguishable to NetworkPolicy, so replicas are evaluated once. Each policy's
//! `podSelector` is matched only against its own namespace's endpoints, and each rule's peer set
//! is computed once (with an `all` flag for an empty `from`/`to`), so evaluating a pair never
//! rescans the policies.
//!
//! Size: compiling is one pass over the policies sharing the selector and endpoint caches; the
//! three policy kinds (NetworkPolicy, Admin, Baseline) are compiled into the same tables here.

use std::collections::HashMap;
use std::sync::Arc;

use crate::diagnostic::{Diagnostic, DiagnosticCode};
use crate::inventory::{Inventory, NAMESPACE_NAME_LABEL, NetworkScope, PolicyObject};
use crate::objects::{
    AdminAction, AdminPeer, AdminPort, ContainerPort, IntOrString, LabelSelector, Labels,
    NetworkPolicyPeer, NetworkPolicyPort, Protocol,
};

use super::Direction;
use super::ipranges::{IpSet, block_boundaries, ip_block_set};
use super::ports::{Conns, MAX_PORT};

/// Pods that NetworkPolicy cannot tell apart: same namespace, labels and container ports.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub ns: u32,
    pub labels: Labels,
    pub ports: Vec<ContainerPort>,
    /// Indices into `Inventory::pods`.
    pub pods: Vec<u32>,
}

impl Endpoint {
    /// Resolve a named port against this endpoint's container ports: the ports of that name
    /// and protocol (of any protocol when `protocol` is `None`, as admin policies name ports).
    pub fn named_ports<'s>(
        &'s self,
        name: &'s str,
        protocol: Option<Protocol>,
    ) -> impl Iterator<Item = (Protocol, u16)> + 's {
        self.ports
            .iter()
            .filter(move |p| {
                p.name.as_deref() == Some(name) && protocol.is_none_or(|want| p.protocol == want)
            })
            .filter_map(|p| {
                Some((
                    p.protocol,
                    u16::try_from(p.container_port).ok().filter(|&n| n >= 1)?,
                ))
            })
    }
}

/// The peers a rule admits.
#[derive(Clone, Default)]
pub(crate) struct Peers {
    /// An empty `from`/`to`: every pod in every namespace and every external address.
    pub all: bool,
    /// A peer selecting every pod of every namespace (`namespaceSelector: {}`), which also
    /// admits the ingress controller, a pod in some namespace Accord does not see. The
    /// endpoints are then not listed, so such rules cost nothing per pair.
    pub every_pod: bool,
    /// Sorted endpoint indices (besides `all` and `every_pod`).
    pub endpoints: Vec<u32>,
    pub ips: IpSet,
}

impl Peers {
    pub fn has_endpoint(&self, e: u32) -> bool {
        self.all || self.every_pod || self.endpoints.binary_search(&e).is_ok()
    }
    /// Whether the rule admits an endpoint that no rule lists by name.
    pub fn has_unlisted(&self) -> bool {
        self.all || self.every_pod
    }
    pub fn has_ip(&self, addr: u32) -> bool {
        self.all || self.ips.contains(addr)
    }
    pub fn has_ingress_controller(&self) -> bool {
        self.all || self.every_pod
    }
}

/// The ports a rule admits, with named ports left to resolve against each destination.
#[derive(Clone, Default)]
pub(crate) struct RulePorts {
    /// An empty `ports`: every port of every protocol.
    pub any: bool,
    pub fixed: Conns,
    /// Named ports, with their protocol (`None`: any protocol).
    pub named: Vec<(Option<Protocol>, String)>,
}

impl RulePorts {
    /// Whether what the rule admits depends on the destination (through named ports).
    pub fn depends_on_destination(&self) -> bool {
        !self.any && !self.named.is_empty()
    }
}

impl RulePorts {
    /// Add what this rule admits towards `dst` (`None` for an external destination, where a
    /// named port cannot be resolved and so admits nothing).
    pub fn add_to(&self, acc: &mut Conns, dst: Option<&Endpoint>) {
        if self.any {
            *acc = Conns::all();
            return;
        }
        acc.union_with(&self.fixed);
        if let Some(dst) = dst {
            for (protocol, name) in &self.named {
                for (protocol, p) in dst.named_ports(name, *protocol) {
                    acc.add(protocol, p, p);
                }
            }
        }
    }

    pub fn resolve(&self, dst: Option<&Endpoint>) -> Conns {
        let mut c = Conns::none();
        self.add_to(&mut c, dst);
        c
    }
}

#[derive(Clone)]
pub(crate) struct Rule {
    pub peers: Peers,
    pub ports: RulePorts,
}

#[derive(Clone)]
pub(crate) struct CompiledPolicy {
    /// Index into `Inventory::network_policies` (past its end: into the policies a patch added).
    pub source: usize,
    /// The policy's namespace.
    pub ns: u32,
    /// The endpoints its `podSelector` selects, sorted.
    pub selects: Vec<u32>,
    /// `None` when the policy does not isolate for ingress.
    pub ingress: Option<Vec<Rule>>,
    pub egress: Option<Vec<Rule>>,
}

impl CompiledPolicy {
    pub fn rules(&self, direction: Direction) -> Option<&[Rule]> {
        match direction {
            Direction::Ingress => self.ingress.as_deref(),
            Direction::Egress => self.egress.as_deref(),
        }
    }
}

/// A rule of an AdminNetworkPolicy or BaselineAdminNetworkPolicy.
#[derive(Clone)]
pub(crate) struct AdminRule {
    pub action: AdminAction,
    pub peers: Peers,
    pub ports: RulePorts,
}

#[derive(Clone)]
pub(crate) struct CompiledAdmin {
    /// Index into `Inventory::admin_policies`.
    pub source: usize,
    pub ingress: Vec<AdminRule>,
    pub egress: Vec<AdminRule>,
}

impl CompiledAdmin {
    pub fn rules(&self, direction: Direction) -> &[AdminRule] {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }
}

/// An inventory's policies compiled; owned, and cheap to clone (policies and endpoints are
/// shared), so that a patch copies only what it changes.
#[derive(Clone)]
pub(crate) struct Compiled {
    pub endpoints: Vec<Arc<Endpoint>>,
    /// Namespace names, indexed like `Endpoint::ns`.
    pub namespace_names: Vec<String>,
    /// Namespace labels (with the name label), indexed like `Endpoint::ns`.
    pub namespace_labels: Vec<Labels>,
    /// Endpoints of each namespace.
    pub ns_endpoints: Vec<Vec<u32>>,
    /// Per namespace: 0 for the pod network, else 1 + the index of its primary network in
    /// `Inventory::primary_networks`.
    pub network_of_ns: Vec<u32>,
    /// Endpoint of each pod.
    pub pod_endpoint: Vec<u32>,
    pub policies: Vec<Arc<CompiledPolicy>>,
    /// Per endpoint: the policies that select it and isolate it for ingress (resp. egress).
    pub ingress_of: Vec<Vec<u32>>,
    pub egress_of: Vec<Vec<u32>>,
    pub admins: Vec<CompiledAdmin>,
    /// Per endpoint: the AdminNetworkPolicies whose subject it is, in precedence order.
    pub admin_of: Vec<Vec<u32>>,
    /// Per endpoint: the BaselineAdminNetworkPolicies whose subject it is.
    pub baseline_of: Vec<Vec<u32>>,
    /// First addresses of the pieces the IPv4 space is cut into.
    pub ip_boundaries: Vec<u32>,
    pub diagnostics: Vec<Diagnostic>,
}

struct Selectors<'a> {
    namespaces: &'a [Labels],
    ns_endpoints: &'a [Vec<u32>],
    endpoints: &'a [Arc<Endpoint>],
    /// Whether `by_label` and `ns_by_label` are filled; otherwise selectors scan (patching a
    /// few policies costs less than indexing every endpoint).
    indexed: bool,
    /// Endpoints by label, to avoid scanning every pod for selectors with `matchLabels`.
    by_label: HashMap<(&'a str, &'a str), Vec<u32>>,
    /// Namespaces by label key, then value: most namespace selectors name one namespace by its
    /// `kubernetes.io/metadata.name`, and scanning every namespace for each would make compiling
    /// quadratic in the number of namespaces.
    ns_by_label: HashMap<String, HashMap<String, Vec<u32>>>,
    ns_cache: HashMap<LabelSelector, Vec<u32>>,
}

impl<'a> Selectors<'a> {
    fn namespaces_matching(&mut self, sel: &LabelSelector) -> Vec<u32> {
        if let Some(hit) = self.ns_cache.get(sel) {
            return hit.clone();
        }
        let shortest = sel
            .match_labels
            .iter()
            .filter(|_| self.indexed)
            .map(|(k, v)| {
                self.ns_by_label
                    .get(k)
                    .and_then(|m| m.get(v))
                    .map_or(&[][..], Vec::as_slice)
            })
            .min_by_key(|l| l.len());
        let out: Vec<u32> = match shortest {
            Some(candidates) => candidates
                .iter()
                .copied()
                .filter(|&i| sel.matches(&self.namespaces[i as usize]))
                .collect(),
            None => (0..self.namespaces.len() as u32)
                .filter(|&i| sel.matches(&self.namespaces[i as usize]))
                .collect(),
        };
        self.ns_cache.insert(sel.clone(), out.clone());
        out
    }

    /// Endpoints in the sorted namespace list `ns` that `sel` selects, sorted.
    fn endpoints_matching(&self, ns: &[u32], sel: &LabelSelector) -> Vec<u32> {
        let shortest = sel
            .match_labels
            .iter()
            .filter(|_| self.indexed)
            .map(|(k, v)| {
                self.by_label
                    .get(&(k.as_str(), v.as_str()))
                    .map_or(&[][..], Vec::as_slice)
            })
            .min_by_key(|l| l.len());
        let mut out: Vec<u32> = match shortest {
            Some(candidates) => candidates
                .iter()
                .copied()
                .filter(|&e| {
                    let ep = &self.endpoints[e as usize];
                    ns.binary_search(&ep.ns).is_ok() && sel.matches(&ep.labels)
                })
                .collect(),
            None => ns
                .iter()
                .flat_map(|&n| &self.ns_endpoints[n as usize])
                .copied()
                .filter(|&e| sel.matches(&self.endpoints[e as usize].labels))
                .collect(),
        };
        out.sort_unstable();
        out
    }
}

pub(crate) fn compile(inv: &Inventory) -> Compiled {
    let mut ns_index: HashMap<String, u32> = HashMap::new();
    let mut namespaces: Vec<Labels> = Vec::new();
    for (name, ns) in &inv.namespaces {
        ns_index.insert(name.clone(), namespaces.len() as u32);
        let mut labels = ns.labels.clone();
        labels.insert(NAMESPACE_NAME_LABEL.to_string(), name.clone());
        namespaces.push(labels);
    }
    // An unfinished inventory may miss namespaces that pods or policies are in; they exist with
    // only their name label, as undeclared namespaces do.
    let mut ns_of = |name: &str| -> u32 {
        if let Some(&i) = ns_index.get(name) {
            return i;
        }
        let i = namespaces.len() as u32;
        namespaces.push(Labels::from([(
            NAMESPACE_NAME_LABEL.to_string(),
            name.to_string(),
        )]));
        ns_index.insert(name.to_string(), i);
        i
    };

    let mut endpoints: Vec<Endpoint> = Vec::new();
    let mut pod_endpoint = Vec::with_capacity(inv.pods.len());
    let mut by_key: HashMap<(u32, &Labels, &[ContainerPort]), u32> = HashMap::new();
    for (i, pod) in inv.pods.iter().enumerate() {
        let ns = ns_of(pod.namespace());
        let key = (ns, &pod.metadata.labels, pod.ports.as_slice());
        let e = *by_key.entry(key).or_insert_with(|| {
            endpoints.push(Endpoint {
                ns,
                labels: pod.metadata.labels.clone(),
                ports: pod.ports.clone(),
                pods: Vec::new(),
            });
            (endpoints.len() - 1) as u32
        });
        endpoints[e as usize].pods.push(i as u32);
        pod_endpoint.push(e);
    }
    let endpoints: Vec<Arc<Endpoint>> = endpoints.into_iter().map(Arc::new).collect();
    let policy_ns: Vec<u32> = inv
        .network_policies
        .iter()
        .map(|p| ns_of(p.policy.namespace()))
        .collect();

    let mut namespace_names = vec![String::new(); namespaces.len()];
    for (name, &i) in &ns_index {
        namespace_names[i as usize] = name.clone();
    }
    let mut ns_endpoints = vec![Vec::new(); namespaces.len()];
    let mut by_label: HashMap<(&str, &str), Vec<u32>> = HashMap::new();
    for (i, e) in endpoints.iter().enumerate() {
        ns_endpoints[e.ns as usize].push(i as u32);
        for (k, v) in &e.labels {
            by_label
                .entry((k.as_str(), v.as_str()))
                .or_default()
                .push(i as u32);
        }
    }
    // OVN-Kubernetes only gives a namespace a primary user-defined network when the namespace
    // carries this label (set at creation); otherwise its pods stay on the pod network.
    const PRIMARY_UDN_LABEL: &str = "k8s.ovn.org/primary-user-defined-network";
    let network_of_ns: Vec<u32> = (0..namespaces.len())
        .map(|i| {
            if !namespaces[i].contains_key(PRIMARY_UDN_LABEL) {
                return 0;
            }
            inv.primary_networks
                .iter()
                .position(|n| match &n.scope {
                    NetworkScope::Namespace(ns) => *ns == namespace_names[i],
                    NetworkScope::Namespaces(sel) => sel.matches(&namespaces[i]),
                })
                .map_or(0, |p| p as u32 + 1)
        })
        .collect();
    let mut ns_by_label: HashMap<String, HashMap<String, Vec<u32>>> = HashMap::new();
    for (i, labels) in namespaces.iter().enumerate() {
        for (k, v) in labels {
            ns_by_label
                .entry(k.clone())
                .or_default()
                .entry(v.clone())
                .or_default()
                .push(i as u32);
        }
    }
    let mut sel = Selectors {
        ns_by_label,
        namespaces: &namespaces,
        ns_endpoints: &ns_endpoints,
        endpoints: &endpoints,
        indexed: true,
        by_label,
        ns_cache: HashMap::new(),
    };

    let mut diagnostics = Vec::new();
    let mut ip_boundaries = Vec::new();
    let mut policies = Vec::with_capacity(inv.network_policies.len());
    let mut ingress_of = vec![Vec::new(); endpoints.len()];
    let mut egress_of = vec![Vec::new(); endpoints.len()];
    for (source, obj) in inv.network_policies.iter().enumerate() {
        let compiled = compile_policy(
            &mut sel,
            policy_ns[source],
            source,
            obj,
            &mut ip_boundaries,
            &mut diagnostics,
        );
        let index = policies.len() as u32;
        for &e in &compiled.selects {
            if compiled.ingress.is_some() {
                ingress_of[e as usize].push(index);
            }
            if compiled.egress.is_some() {
                egress_of[e as usize].push(index);
            }
        }
        policies.push(Arc::new(compiled));
    }
    let (admins, admin_of, baseline_of) =
        compile_admins(inv, &mut sel, &mut ip_boundaries, &mut diagnostics);
    drop(sel);
    Compiled {
        endpoints,
        namespace_names,
        namespace_labels: namespaces,
        ns_endpoints,
        network_of_ns,
        pod_endpoint,
        policies,
        ingress_of,
        egress_of,
        admins,
        admin_of,
        baseline_of,
        ip_boundaries,
        diagnostics,
    }
}

/// One NetworkPolicy compiled against the endpoints `sel` knows.
fn compile_policy(
    sel: &mut Selectors,
    ns: u32,
    source: usize,
    obj: &PolicyObject,
    ip_boundaries: &mut Vec<u32>,
    diagnostics: &mut Vec<Diagnostic>,
) -> CompiledPolicy {
    {
        let p = &obj.policy;
        let object = format!("NetworkPolicy {}/{}", p.namespace(), p.metadata.name);
        let mut diag = |field: String, msg: String| {
            diagnostics.push(Diagnostic::warning(
                DiagnosticCode::IneffectivePolicy,
                &obj.origin,
                object.clone(),
                field,
                msg,
            ))
        };
        let selected = sel.endpoints_matching(&[ns], &p.spec.pod_selector);
        let (is_ingress, is_egress) = p.spec.effective_types();
        let ingress = is_ingress.then(|| {
            let rules = p.spec.ingress.as_deref().unwrap_or_default();
            rules
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let field = format!("spec.ingress[{i}]");
                    Rule {
                        peers: compile_peers(
                            sel,
                            ns,
                            &r.from,
                            &format!("{field}.from"),
                            ip_boundaries,
                            &mut diag,
                        ),
                        ports: compile_ports(&r.ports, &format!("{field}.ports"), &mut diag),
                    }
                })
                .collect::<Vec<_>>()
        });
        let egress = is_egress.then(|| {
            let rules = p.spec.egress.as_deref().unwrap_or_default();
            rules
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let field = format!("spec.egress[{i}]");
                    Rule {
                        peers: compile_peers(
                            sel,
                            ns,
                            &r.to,
                            &format!("{field}.to"),
                            ip_boundaries,
                            &mut diag,
                        ),
                        ports: compile_ports(&r.ports, &format!("{field}.ports"), &mut diag),
                    }
                })
                .collect::<Vec<_>>()
        });
        CompiledPolicy {
            source,
            ns,
            selects: selected,
            ingress,
            egress,
        }
    }
}

type AdminIndex = (Vec<CompiledAdmin>, Vec<Vec<u32>>, Vec<Vec<u32>>);

fn compile_admins(
    inv: &Inventory,
    sel: &mut Selectors,
    boundaries: &mut Vec<u32>,
    diagnostics: &mut Vec<Diagnostic>,
) -> AdminIndex {
    let n = sel.endpoints.len();
    let mut admins = Vec::new();
    let mut admin_of = vec![Vec::new(); n];
    let mut baseline_of = vec![Vec::new(); n];
    // Precedence: lower priority first; ties (undefined upstream) are broken by name.
    let mut order: Vec<usize> = (0..inv.admin_policies.len()).collect();
    order.sort_by_key(|&i| {
        let p = &inv.admin_policies[i];
        (
            p.baseline,
            p.policy.spec.priority,
            p.policy.metadata.name.clone(),
        )
    });
    for source in order {
        let obj = &inv.admin_policies[source];
        let kind = if obj.baseline {
            "BaselineAdminNetworkPolicy"
        } else {
            "AdminNetworkPolicy"
        };
        let object = format!("{kind} {}", obj.policy.metadata.name);
        let mut diag = |field: String, msg: String| {
            diagnostics.push(Diagnostic::warning(
                DiagnosticCode::IneffectivePolicy,
                &obj.origin,
                object.clone(),
                field,
                msg,
            ))
        };
        let spec = &obj.policy.spec;
        let subject = match (&spec.subject.namespaces, &spec.subject.pods) {
            (Some(ns), None) => {
                let ns = sel.namespaces_matching(ns);
                sel.endpoints_matching(&ns, &LabelSelector::default())
            }
            (None, Some(pods)) => {
                let ns = sel.namespaces_matching(&pods.namespace_selector);
                sel.endpoints_matching(&ns, &pods.pod_selector)
            }
            _ => {
                diag(
                    "spec.subject".to_string(),
                    "set exactly one of namespaces and pods; the policy applies to nothing"
                        .to_string(),
                );
                Vec::new()
            }
        };
        let mut rules = |list: &[crate::objects::AdminRule],
                         what: &str,
                         diag: &mut dyn FnMut(String, String)|
         -> Vec<AdminRule> {
            list.iter()
                .enumerate()
                .map(|(i, r)| {
                    let field = format!("spec.{what}[{i}]");
                    if obj.baseline && r.action == AdminAction::Pass {
                        diag(
                            format!("{field}.action"),
                            "Pass is not allowed in a baseline policy; treated as Deny".to_string(),
                        );
                    }
                    AdminRule {
                        action: if obj.baseline && r.action == AdminAction::Pass {
                            AdminAction::Deny
                        } else {
                            r.action
                        },
                        peers: compile_admin_peers(sel, &r.peers, &field, boundaries, diag),
                        ports: compile_admin_ports(
                            r.ports.as_deref(),
                            &format!("{field}.ports"),
                            diag,
                        ),
                    }
                })
                .collect()
        };
        let ingress = rules(&spec.ingress, "ingress", &mut diag);
        let egress = rules(&spec.egress, "egress", &mut diag);
        let index = admins.len() as u32;
        for &e in &subject {
            if obj.baseline {
                baseline_of[e as usize].push(index);
            } else {
                admin_of[e as usize].push(index);
            }
        }
        admins.push(CompiledAdmin {
            source,
            ingress,
            egress,
        });
    }
    (admins, admin_of, baseline_of)
}

fn compile_admin_peers(
    sel: &mut Selectors,
    peers: &[AdminPeer],
    field: &str,
    boundaries: &mut Vec<u32>,
    diag: &mut dyn FnMut(String, String),
) -> Peers {
    let mut out = Peers::default();
    if peers.is_empty() {
        diag(
            field.to_string(),
            "a rule without peers matches nothing".to_string(),
        );
    }
    for peer in peers {
        if let Some(ns) = &peer.namespaces {
            if ns.is_empty() {
                out.every_pod = true;
            } else {
                let ns = sel.namespaces_matching(ns);
                out.endpoints
                    .extend(sel.endpoints_matching(&ns, &LabelSelector::default()));
            }
        }
        if let Some(pods) = &peer.pods {
            if pods.namespace_selector.is_empty() && pods.pod_selector.is_empty() {
                out.every_pod = true;
            } else {
                let ns = sel.namespaces_matching(&pods.namespace_selector);
                out.endpoints
                    .extend(sel.endpoints_matching(&ns, &pods.pod_selector));
            }
        }
        for cidr in peer.networks.iter().flatten() {
            let block = crate::objects::IpBlock {
                cidr: cidr.clone(),
                except: Vec::new(),
            };
            match ip_block_set(&block) {
                Ok(set) => {
                    block_boundaries(&block, boundaries);
                    for r in set.ranges() {
                        out.ips.insert(*r);
                    }
                }
                Err(e) => diag(
                    format!("{field}.networks"),
                    format!("{e}; it matches nothing"),
                ),
            }
        }
    }
    out.endpoints.sort_unstable();
    out.endpoints.dedup();
    out
}

fn compile_admin_ports(
    ports: Option<&[AdminPort]>,
    field: &str,
    diag: &mut dyn FnMut(String, String),
) -> RulePorts {
    let Some(ports) = ports.filter(|p| !p.is_empty()) else {
        return RulePorts {
            any: true,
            ..RulePorts::default()
        };
    };
    let mut out = RulePorts::default();
    let valid = |n: i32| u16::try_from(n).ok().filter(|&n| n >= 1);
    for (i, p) in ports.iter().enumerate() {
        if let Some(n) = &p.port_number {
            match valid(n.port) {
                Some(port) => out.fixed.add(n.protocol, port, port),
                None => diag(
                    format!("{field}[{i}].portNumber"),
                    format!("port {} is outside 1-65535", n.port),
                ),
            }
        }
        if let Some(r) = &p.port_range {
            match (valid(r.start), valid(r.end)) {
                (Some(lo), Some(hi)) if lo <= hi => out.fixed.add(r.protocol, lo, hi),
                _ => diag(
                    format!("{field}[{i}].portRange"),
                    format!("invalid range {}-{}", r.start, r.end),
                ),
            }
        }
        if let Some(name) = &p.named_port {
            out.named.push((None, name.clone()));
        }
    }
    out
}

fn compile_peers(
    sel: &mut Selectors,
    policy_ns: u32,
    peers: &[NetworkPolicyPeer],
    field: &str,
    boundaries: &mut Vec<u32>,
    diag: &mut impl FnMut(String, String),
) -> Peers {
    let mut out = Peers {
        all: peers.is_empty(),
        ..Peers::default()
    };
    for (i, peer) in peers.iter().enumerate() {
        let field = format!("{field}[{i}]");
        match (&peer.pod_selector, &peer.namespace_selector, &peer.ip_block) {
            (_, _, Some(block)) => {
                if peer.pod_selector.is_some() || peer.namespace_selector.is_some() {
                    diag(
                        field.clone(),
                        "ipBlock cannot be combined with podSelector or namespaceSelector; only the ipBlock is used".to_string(),
                    );
                }
                match ip_block_set(block) {
                    Ok(set) => {
                        block_boundaries(block, boundaries);
                        for r in set.ranges() {
                            out.ips.insert(*r);
                        }
                    }
                    Err(e) => diag(
                        format!("{field}.ipBlock"),
                        format!("{e}; the peer matches nothing"),
                    ),
                }
            }
            (None, None, None) => diag(field, "empty peer: it matches nothing".to_string()),
            (pods, None, None) => {
                let pods = pods
                    .as_ref()
                    .map_or_else(LabelSelector::default, Clone::clone);
                out.endpoints
                    .extend(sel.endpoints_matching(&[policy_ns], &pods));
            }
            (pods, Some(nss), None)
                if nss.is_empty() && pods.as_ref().is_none_or(LabelSelector::is_empty) =>
            {
                out.every_pod = true;
            }
            (pods, Some(nss), None) => {
                let ns = sel.namespaces_matching(nss);
                let pods = pods
                    .as_ref()
                    .map_or_else(LabelSelector::default, Clone::clone);
                out.endpoints.extend(sel.endpoints_matching(&ns, &pods));
            }
        }
    }
    out.endpoints.sort_unstable();
    out.endpoints.dedup();
    out
}

fn compile_ports(
    ports: &[NetworkPolicyPort],
    field: &str,
    diag: &mut impl FnMut(String, String),
) -> RulePorts {
    let mut out = RulePorts {
        any: ports.is_empty(),
        ..RulePorts::default()
    };
    for (i, p) in ports.iter().enumerate() {
        let field = format!("{field}[{i}]");
        let protocol = p.protocol.unwrap_or_default();
        let number = match &p.port {
            None => {
                out.fixed.add_protocol(protocol);
                continue;
            }
            Some(IntOrString::Int(n)) => *n,
            // A quoted number is read as the number; anything else names a container port.
            Some(IntOrString::String(s)) => match s.parse::<i32>() {
                Ok(n) => n,
                Err(_) => {
                    if p.end_port.is_some() {
                        diag(
                            field.clone(),
                            "endPort cannot be used with a named port; it is ignored".to_string(),
                        );
                    }
                    out.named.push((Some(protocol), s.clone()));
                    continue;
                }
            },
        };
        let Some(lo) = u16::try_from(number).ok().filter(|&n| n >= 1) else {
            diag(
                format!("{field}.port"),
                format!("port {number} is outside 1-65535; the entry admits nothing"),
            );
            continue;
        };
        let hi = match p.end_port {
            None => lo,
            Some(end) if end >= i32::from(lo) => u16::try_from(end).unwrap_or(MAX_PORT),
            Some(end) => {
                diag(
                    format!("{field}.endPort"),
                    format!("endPort {end} is below port {lo}; the entry admits nothing"),
                );
                continue;
            }
        };
        out.fixed.add(protocol, lo, hi);
    }
    out
}

/// A change of an inventory's policies and pod labels (what a draft applied would do).
#[derive(Clone, Debug, Default)]
pub struct Patch {
    /// Indices into `Inventory::network_policies` of policies that go.
    pub removed: Vec<usize>,
    /// Policies that come (after the inventory's, in this order).
    pub added: Vec<PolicyObject>,
    /// Pods (indices into `Inventory::pods`) whose labels become these.
    pub relabelled: Vec<(usize, Labels)>,
}

/// Whether a NetworkPolicy peer lists endpoint `e` by selectors (not through `all` or
/// `every_pod`, which match every endpoint without listing it).
fn peer_lists(peer: &NetworkPolicyPeer, policy_ns: u32, c: &Compiled, e: &Endpoint) -> bool {
    let pods_match =
        |pods: &Option<LabelSelector>| pods.as_ref().is_none_or(|s| s.matches(&e.labels));
    match (&peer.pod_selector, &peer.namespace_selector, &peer.ip_block) {
        (_, _, Some(_)) | (None, None, None) => false,
        (pods, None, None) => e.ns == policy_ns && pods_match(pods),
        (pods, Some(nss), None) => {
            !(nss.is_empty() && pods.as_ref().is_none_or(LabelSelector::is_empty))
                && nss.matches(&c.namespace_labels[e.ns as usize])
                && pods_match(pods)
        }
    }
}

/// Whether an admin policy peer lists endpoint `e` (see [`peer_lists`]).
fn admin_peer_lists(peer: &AdminPeer, c: &Compiled, e: &Endpoint) -> bool {
    let ns_labels = &c.namespace_labels[e.ns as usize];
    peer.namespaces
        .as_ref()
        .is_some_and(|ns| !ns.is_empty() && ns.matches(ns_labels))
        || peer.pods.as_ref().is_some_and(|pods| {
            !(pods.namespace_selector.is_empty() && pods.pod_selector.is_empty())
                && pods.namespace_selector.matches(ns_labels)
                && pods.pod_selector.matches(&e.labels)
        })
}

impl Compiled {
    /// The compiled form of `inv` changed by `patch`, sharing every policy and endpoint it
    /// leaves alone (`self` is `inv` compiled). Also returns the endpoints whose rules may
    /// have changed: those selected by a removed, added or re-listed policy, and new ones.
    pub fn patched(&self, inv: &Inventory, patch: &Patch) -> (Compiled, Vec<u32>) {
        let mut c = self.clone();
        let mut dirty: Vec<u32> = Vec::new();
        let live = inv.network_policies.len();

        for &r in &patch.removed {
            let old = c.policies[r].clone();
            for &e in &old.selects {
                c.ingress_of[e as usize].retain(|&p| p as usize != r);
                c.egress_of[e as usize].retain(|&p| p as usize != r);
                dirty.push(e);
            }
            c.policies[r] = Arc::new(CompiledPolicy {
                source: old.source,
                ns: old.ns,
                selects: Vec::new(),
                ingress: None,
                egress: None,
            });
        }

        // Relabelled pods move to new endpoints (pods with equal labels share one).
        let first_new = c.endpoints.len() as u32;
        let mut new_of: HashMap<(u32, &Labels, &[ContainerPort]), u32> = HashMap::new();
        for (p, labels) in &patch.relabelled {
            let pod = &inv.pods[*p];
            let old = c.pod_endpoint[*p];
            Arc::make_mut(&mut c.endpoints[old as usize])
                .pods
                .retain(|&x| x as usize != *p);
            let ns = c.endpoints[old as usize].ns;
            let next = c.endpoints.len() as u32;
            let e = *new_of
                .entry((ns, labels, pod.ports.as_slice()))
                .or_insert(next);
            if e == next {
                c.endpoints.push(Arc::new(Endpoint {
                    ns,
                    labels: labels.clone(),
                    ports: pod.ports.clone(),
                    pods: Vec::new(),
                }));
                c.ns_endpoints[ns as usize].push(e);
                c.ingress_of.push(Vec::new());
                c.egress_of.push(Vec::new());
                c.admin_of.push(Vec::new());
                c.baseline_of.push(Vec::new());
                dirty.push(e);
            }
            Arc::make_mut(&mut c.endpoints[e as usize])
                .pods
                .push(*p as u32);
            c.pod_endpoint[*p] = e;
        }
        let new_endpoints = first_new..c.endpoints.len() as u32;
        if !new_endpoints.is_empty() {
            // The live policies that select a new endpoint, and the rules that list it.
            for i in 0..c.policies.len() {
                let compiled = &c.policies[i];
                if compiled.ingress.is_none() && compiled.egress.is_none() {
                    continue;
                }
                let spec = &inv.network_policies[compiled.source].policy.spec;
                let mut selects = Vec::new();
                let mut listed: Vec<(bool, usize, u32)> = Vec::new();
                for e in new_endpoints.clone() {
                    let ep = &c.endpoints[e as usize];
                    if ep.ns == compiled.ns && spec.pod_selector.matches(&ep.labels) {
                        selects.push(e);
                    }
                    for (ingress, rules) in [(true, &compiled.ingress), (false, &compiled.egress)] {
                        for (j, rule) in rules.iter().flatten().enumerate() {
                            if rule.peers.all || rule.peers.every_pod {
                                continue;
                            }
                            let peers = if ingress {
                                spec.ingress
                                    .as_deref()
                                    .and_then(|r| r.get(j))
                                    .map(|r| &r.from)
                            } else {
                                spec.egress.as_deref().and_then(|r| r.get(j)).map(|r| &r.to)
                            };
                            if peers
                                .into_iter()
                                .flatten()
                                .any(|peer| peer_lists(peer, compiled.ns, &c, ep))
                            {
                                listed.push((ingress, j, e));
                            }
                        }
                    }
                }
                if selects.is_empty() && listed.is_empty() {
                    continue;
                }
                let has_ingress = compiled.ingress.is_some();
                let has_egress = compiled.egress.is_some();
                dirty.extend(&compiled.selects);
                dirty.extend(&selects);
                for &e in &selects {
                    if has_ingress {
                        c.ingress_of[e as usize].push(i as u32);
                    }
                    if has_egress {
                        c.egress_of[e as usize].push(i as u32);
                    }
                }
                let m = Arc::make_mut(&mut c.policies[i]);
                m.selects.extend(selects);
                for (ingress, j, e) in listed {
                    let rules = if ingress {
                        &mut m.ingress
                    } else {
                        &mut m.egress
                    };
                    if let Some(rule) = rules.as_mut().and_then(|r| r.get_mut(j)) {
                        rule.peers.endpoints.push(e);
                    }
                }
            }
            // Admin policies: subjects and listed peers.
            for a in 0..c.admins.len() {
                let obj = &inv.admin_policies[c.admins[a].source];
                let spec = &obj.policy.spec;
                let mut touched = false;
                for e in new_endpoints.clone() {
                    let ep = c.endpoints[e as usize].clone();
                    let ns_labels = &c.namespace_labels[ep.ns as usize];
                    let subject = match (&spec.subject.namespaces, &spec.subject.pods) {
                        (Some(ns), None) => ns.matches(ns_labels),
                        (None, Some(pods)) => {
                            pods.namespace_selector.matches(ns_labels)
                                && pods.pod_selector.matches(&ep.labels)
                        }
                        _ => false,
                    };
                    if subject {
                        let of = if obj.baseline {
                            &mut c.baseline_of[e as usize]
                        } else {
                            &mut c.admin_of[e as usize]
                        };
                        of.push(a as u32);
                        of.sort_unstable();
                    }
                    for (ingress, list) in [(true, &spec.ingress), (false, &spec.egress)] {
                        for (j, r) in list.iter().enumerate() {
                            if r.peers.iter().any(|peer| admin_peer_lists(peer, &c, &ep)) {
                                let rules = if ingress {
                                    &mut c.admins[a].ingress
                                } else {
                                    &mut c.admins[a].egress
                                };
                                rules[j].peers.endpoints.push(e);
                                touched = true;
                            }
                        }
                    }
                }
                if touched {
                    let a = a as u32;
                    for (e, (admins, baselines)) in
                        c.admin_of.iter().zip(&c.baseline_of).enumerate()
                    {
                        if admins.contains(&a) || baselines.contains(&a) {
                            dirty.push(e as u32);
                        }
                    }
                }
            }
        }

        // Added policies, compiled against the endpoints as they now are.
        if !patch.added.is_empty() {
            let mut ns_index: HashMap<&str, u32> = c
                .namespace_names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.as_str(), i as u32))
                .collect();
            let mut namespaces: Vec<u32> = Vec::new();
            let mut fresh: Vec<String> = Vec::new();
            for obj in &patch.added {
                let name = obj.policy.namespace();
                let next = (c.namespace_names.len() + fresh.len()) as u32;
                let i = *ns_index.entry(name).or_insert_with(|| {
                    fresh.push(name.to_string());
                    next
                });
                namespaces.push(i);
            }
            for name in fresh {
                c.namespace_labels.push(Labels::from([(
                    NAMESPACE_NAME_LABEL.to_string(),
                    name.clone(),
                )]));
                c.namespace_names.push(name);
                c.ns_endpoints.push(Vec::new());
                c.network_of_ns.push(0);
            }
            let mut compiled = Vec::with_capacity(patch.added.len());
            {
                let mut sel = Selectors {
                    namespaces: &c.namespace_labels,
                    ns_endpoints: &c.ns_endpoints,
                    endpoints: &c.endpoints,
                    indexed: false,
                    by_label: HashMap::new(),
                    ns_by_label: HashMap::new(),
                    ns_cache: HashMap::new(),
                };
                for (k, obj) in patch.added.iter().enumerate() {
                    compiled.push(compile_policy(
                        &mut sel,
                        namespaces[k],
                        live + k,
                        obj,
                        &mut c.ip_boundaries,
                        &mut c.diagnostics,
                    ));
                }
            }
            for p in compiled {
                let index = c.policies.len() as u32;
                for &e in &p.selects {
                    if p.ingress.is_some() {
                        c.ingress_of[e as usize].push(index);
                    }
                    if p.egress.is_some() {
                        c.egress_of[e as usize].push(index);
                    }
                    dirty.push(e);
                }
                c.policies.push(Arc::new(p));
            }
        }
        dirty.sort_unstable();
        dirty.dedup();
        (c, dirty)
    }
}
