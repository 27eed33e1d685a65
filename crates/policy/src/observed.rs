//! Observed traffic: flows (as Hubble reports them) → observations keyed by workload identity,
//! aggregated with first and last seen, counts and verdicts, over an observation window whose
//! coverage says when the collector was connected and how many events were lost.
//!
//! In: [`Flow`]s, plain structs that the server decodes from Hubble's gRPC stream or from
//! `hubble observe -o jsonpb` lines, and the pod IP history ([`IpHistory`]) for flows whose
//! endpoints carry no workload. Out: [`Observations`] (memory bounded by the number of distinct
//! keys, not by the number of flows) and, from them, suggested ClientIntents ([`suggest`]).
//!
//! Classification, in order: non-L3/L4 events and replies are not calls (counted apart); a source
//! that is the node itself (`reserved:host`, `reserved:remote-node`) is a host probe (kubelet
//! health checks), or a host-network pod when Hubble named one; calls to the cluster resolver on
//! port 53 are DNS; a destination outside the cluster is kept per DNS name (when Hubble knew
//! one) or per IP; everything else is a call between workloads.

mod aggregate;
mod assess;
mod connections;
mod drift;
mod flow;
mod ips;
mod suggest;
#[cfg(test)]
mod tests;

pub use aggregate::{
    Aggregate, Class, Coverage, Ingested, Key, Observations, Party, Skipped, calls_in_words,
};
pub use assess::{
    Assessment, ObservedState, allowed, assess, assess_declared, declared, is_workload_call,
    protected_everywhere, protected_inventory,
};
pub use drift::{Dated, DeclaredEdge, ObservedInput, drift_items};
pub use flow::{
    Endpoint, EndpointWorkload, Flow, FlowType, L4, TcpFlags, TrafficDirection, Verdict,
};
pub use ips::{IpHistory, PodLifetime, civil_date_time, format_rfc3339, parse_rfc3339};
pub use suggest::{Added, Suggestion, declares, suggest};
