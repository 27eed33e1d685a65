//! The evaluator's vocabulary: peers and how they are named, connections and connectivity,
//! and the references (policies, rules, admin decisions) that explanations are made of.

use super::*;
use crate::diagnostic::Diagnostic;
use crate::identity::WorkloadId;
use crate::inventory::Pod;
use crate::objects::AdminAction;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// How pods are named (and so grouped) as peers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Naming {
    /// The root owner identity ([`Pod::workload`]): graph, drift, can-reach, diff.
    #[default]
    Workload,
    /// The direct controller owner ([`Pod::direct_owner`]), as the connectivity-list format does.
    DirectOwner,
}

impl Naming {
    pub fn name(self, pod: &Pod) -> WorkloadId {
        match self {
            Naming::Workload => pod.workload.clone(),
            Naming::DirectOwner => {
                let (name, kind) = pod.direct_owner();
                // An owner reference without a kind still names the peer; netpol-analyzer
                // then calls it a Pod.
                let kind = if kind.is_empty() {
                    "Pod"
                } else {
                    kind.as_str()
                };
                WorkloadId::new(pod.namespace(), name, Some(kind))
            }
        }
    }
}

/// A traffic direction, as seen by the pod a policy selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Ingress,
    Egress,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        })
    }
}

/// One end of a connection.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Peer {
    Workload(WorkloadId),
    External(Ipv4Range),
    /// The cluster's ingress controller, present when Ingress or Route objects expose Services.
    IngressController,
}

impl Peer {
    pub fn workload(&self) -> Option<&WorkloadId> {
        match self {
            Peer::Workload(w) => Some(w),
            Peer::External(_) | Peer::IngressController => None,
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Workload(w) => write!(f, "{w}"),
            Peer::External(r) => write!(f, "{r}[External]"),
            Peer::IngressController => f.write_str("{ingress-controller}"),
        }
    }
}

/// A primary network. Pods reach only pods of their own primary network (and external
/// addresses).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// The default pod network.
    Pod,
    /// A UserDefinedNetwork, named by its namespace.
    Udn(String),
    /// A ClusterUserDefinedNetwork, by name.
    Cudn(String),
}

impl Network {
    /// The section title netpol-analyzer prints above the network's connections.
    pub fn title(&self) -> String {
        match self {
            Network::Pod => "Pod network".to_string(),
            Network::Udn(ns) => format!("primary UDN {ns}"),
            Network::Cudn(name) => format!("primary CUDN {name}"),
        }
    }
}

/// What one source may open to one destination.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Connection {
    pub src: Peer,
    pub dst: Peer,
    pub conns: Conns,
}

/// Every allowed connection, sorted by source then destination. Denied pairs and self pairs are
/// absent; external-to-external pairs are never listed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Connectivity {
    pub connections: Vec<Connection>,
    /// Every workload peer, whether or not it has connections (sorted).
    pub workloads: Vec<WorkloadId>,
    /// The primary network of every workload outside the default pod network. Empty when the
    /// inventory declares no primary user-defined networks.
    pub networks: BTreeMap<WorkloadId, Network>,
    /// Problems found in the policies (invalid CIDRs, ports out of range, …).
    pub diagnostics: Vec<Diagnostic>,
}

impl Connectivity {
    /// The connections from `src` to `dst`, if any are allowed.
    pub fn get(&self, src: &Peer, dst: &Peer) -> Option<&Conns> {
        self.connections
            .binary_search_by(|c| (&c.src, &c.dst).cmp(&(src, dst)))
            .ok()
            .map(|i| &self.connections[i].conns)
    }
}

/// A policy, by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PolicyRef {
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for PolicyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A rule of a policy: `spec.ingress[index]` or `spec.egress[index]`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RuleRef {
    pub policy: PolicyRef,
    pub direction: Direction,
    pub index: usize,
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}[{}]", self.policy, self.direction, self.index)
    }
}

/// A rule that admits a pair, and the connections it admits for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admission {
    pub rule: RuleRef,
    pub conns: Conns,
}

/// An admin policy rule that decided some ports of a pair (the first matching rule in
/// precedence order decides each port).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminDecision {
    pub policy: String,
    /// True for the BaselineAdminNetworkPolicy.
    pub baseline: bool,
    pub direction: Direction,
    pub index: usize,
    pub rule_name: String,
    pub action: AdminAction,
    /// The ports this rule decided.
    pub conns: Conns,
}

impl fmt::Display for AdminDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.baseline {
            "BaselineAdminNetworkPolicy"
        } else {
            "AdminNetworkPolicy"
        };
        write!(
            f,
            "{kind} {} {}[{}]",
            self.policy, self.direction, self.index
        )?;
        if !self.rule_name.is_empty() {
            write!(f, " ({})", self.rule_name)?;
        }
        write!(f, ": {:?} {}", self.action, self.conns)
    }
}

/// One direction of an explanation: the destination's ingress, or the source's egress.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideExplanation {
    /// The policies that select the pod for this direction. Empty: not isolated, all allowed.
    pub isolated_by: Vec<PolicyRef>,
    /// The rules of those policies that admit the other end, with what each admits.
    pub admitted_by: Vec<Admission>,
    /// Admin policy rules that allowed, denied or passed ports, before and after the
    /// NetworkPolicies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admin: Vec<AdminDecision>,
    /// What this direction allows (all connections when not isolated).
    pub allowed: Conns,
}

impl SideExplanation {
    pub fn isolated(&self) -> bool {
        !self.isolated_by.is_empty()
    }
}

/// Why a source may (or may not) reach a destination.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    pub src: Peer,
    pub dst: Peer,
    /// `egress.allowed ∩ ingress.allowed`.
    pub allowed: Conns,
    pub egress: SideExplanation,
    pub ingress: SideExplanation,
}
