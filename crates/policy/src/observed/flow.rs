//! One flow as Accord reads it: the fields of Hubble's `flow.Flow` that classification needs, in
//! plain Rust types. The server fills it from the gRPC messages or from jsonpb text; nothing
//! here knows either encoding.

use crate::objects::Protocol;

/// Hubble's verdict of a flow (`flow.Verdict`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Verdict {
    #[default]
    Unknown,
    Forwarded,
    Dropped,
    Error,
    Audit,
    Redirected,
    Traced,
    Translated,
}

impl Verdict {
    /// From the protobuf enum number (`flow.Verdict`, Cilium 1.16).
    pub fn from_number(n: i32) -> Verdict {
        match n {
            1 => Verdict::Forwarded,
            2 => Verdict::Dropped,
            3 => Verdict::Error,
            4 => Verdict::Audit,
            5 => Verdict::Redirected,
            6 => Verdict::Traced,
            7 => Verdict::Translated,
            _ => Verdict::Unknown,
        }
    }

    /// From the enum name as jsonpb writes it (`FORWARDED`, `DROPPED`, …).
    pub fn from_name(s: &str) -> Verdict {
        match s {
            "FORWARDED" => Verdict::Forwarded,
            "DROPPED" => Verdict::Dropped,
            "ERROR" => Verdict::Error,
            "AUDIT" => Verdict::Audit,
            "REDIRECTED" => Verdict::Redirected,
            "TRACED" => Verdict::Traced,
            "TRANSLATED" => Verdict::Translated,
            _ => Verdict::Unknown,
        }
    }
}

/// `flow.FlowType`: only L3/L4 events are counted (an L7 event repeats a connection already
/// seen at L3/L4; socket events are translations).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FlowType {
    #[default]
    Unknown,
    L3L4,
    L7,
    Sock,
}

impl FlowType {
    pub fn from_number(n: i32) -> FlowType {
        match n {
            1 => FlowType::L3L4,
            2 => FlowType::L7,
            3 => FlowType::Sock,
            _ => FlowType::Unknown,
        }
    }

    pub fn from_name(s: &str) -> FlowType {
        match s {
            "L3_L4" => FlowType::L3L4,
            "L7" => FlowType::L7,
            "SOCK" => FlowType::Sock,
            _ => FlowType::Unknown,
        }
    }
}

/// `flow.TrafficDirection`: at which end of the connection the event was observed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TrafficDirection {
    #[default]
    Unknown,
    Ingress,
    Egress,
}

impl TrafficDirection {
    pub fn from_number(n: i32) -> TrafficDirection {
        match n {
            1 => TrafficDirection::Ingress,
            2 => TrafficDirection::Egress,
            _ => TrafficDirection::Unknown,
        }
    }

    pub fn from_name(s: &str) -> TrafficDirection {
        match s {
            "INGRESS" => TrafficDirection::Ingress,
            "EGRESS" => TrafficDirection::Egress,
            _ => TrafficDirection::Unknown,
        }
    }
}

/// The TCP flags that tell a connection's opening from its answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpFlags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
}

/// The transport layer: protocol, ports and, for TCP, flags. ICMP and other protocols have no
/// port and are not calls Accord models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4 {
    Tcp {
        source_port: u16,
        destination_port: u16,
        flags: Option<TcpFlags>,
    },
    Udp {
        source_port: u16,
        destination_port: u16,
    },
    Sctp {
        source_port: u16,
        destination_port: u16,
    },
    Other,
}

impl L4 {
    /// Protocol and destination port, for the protocols NetworkPolicies speak of.
    pub fn destination(&self) -> Option<(Protocol, u16)> {
        match *self {
            L4::Tcp {
                destination_port, ..
            } => Some((Protocol::Tcp, destination_port)),
            L4::Udp {
                destination_port, ..
            } => Some((Protocol::Udp, destination_port)),
            L4::Sctp {
                destination_port, ..
            } => Some((Protocol::Sctp, destination_port)),
            L4::Other => None,
        }
    }
}

/// One workload of an endpoint as Hubble names it (`flow.Workload`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointWorkload {
    pub name: String,
    pub kind: String,
}

/// One end of a flow (`flow.Endpoint`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoint {
    /// Cilium's security identity; 1–10 are reserved (host, world, health, remote-node, …).
    pub identity: u32,
    pub namespace: String,
    /// Labels as Cilium writes them: `source:key=value`, e.g. `k8s:app=web`, `reserved:host`.
    pub labels: Vec<String>,
    pub pod_name: String,
    pub workloads: Vec<EndpointWorkload>,
}

impl Endpoint {
    fn has_label(&self, label: &str) -> bool {
        self.labels.iter().any(|l| l == label)
    }

    /// The node itself (or another node): kubelet probes and host-network pods come from here.
    pub fn is_host(&self) -> bool {
        matches!(self.identity, 1 | 6)
            || self.has_label("reserved:host")
            || self.has_label("reserved:remote-node")
    }

    /// Outside the cluster (`reserved:world`, identities 2, 9 and 10).
    pub fn is_world(&self) -> bool {
        matches!(self.identity, 2 | 9 | 10)
            || self.labels.iter().any(|l| l.starts_with("reserved:world"))
    }

    /// Cilium's own health endpoints and other reserved identities that are no workload.
    pub fn is_reserved_other(&self) -> bool {
        matches!(self.identity, 3 | 4 | 5 | 8)
            || self.has_label("reserved:health")
            || self.has_label("reserved:init")
            || self.has_label("reserved:unmanaged")
            || self.has_label("reserved:ingress")
    }

    /// The cluster DNS resolver (kube-dns / CoreDNS in kube-system).
    pub fn is_cluster_dns(&self) -> bool {
        self.namespace == "kube-system"
            && (self.has_label("k8s:k8s-app=kube-dns")
                || self
                    .workloads
                    .iter()
                    .any(|w| w.name == "coredns" || w.name == "kube-dns"))
    }
}

/// One flow, decoded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Flow {
    /// Nanoseconds since the Unix epoch; 0 when the flow had no time.
    pub time: i64,
    pub verdict: Verdict,
    pub flow_type: FlowType,
    pub source_ip: String,
    pub destination_ip: String,
    pub l4: Option<L4>,
    pub source: Option<Endpoint>,
    pub destination: Option<Endpoint>,
    /// `is_reply` (a `BoolValue`): `None` when Hubble could not tell.
    pub is_reply: Option<bool>,
    /// The deprecated `reply` field, used only when `is_reply` is absent.
    pub reply: bool,
    pub traffic_direction: TrafficDirection,
    pub source_names: Vec<String>,
    pub destination_names: Vec<String>,
    pub node_name: String,
}

impl Flow {
    /// Whether this event is the answer of a connection rather than a call: `is_reply` when
    /// Hubble knew it, else the deprecated `reply`, else a TCP SYN+ACK. `None` when nothing tells
    /// (a mid-connection TCP segment or a UDP packet without connection tracking).
    pub fn reply_state(&self) -> Option<bool> {
        if let Some(r) = self.is_reply {
            return Some(r);
        }
        if self.reply {
            return Some(true);
        }
        match self.l4 {
            Some(L4::Tcp { flags: Some(f), .. }) if f.syn => Some(f.ack),
            _ => None,
        }
    }
}
