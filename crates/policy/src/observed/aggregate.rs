//! Observations: flows classified and aggregated per key, and the window they cover.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::connections::{Arrival, Connections, PAIR_WINDOW};
use super::flow::{Endpoint, Flow, FlowType, L4, Verdict};
use super::ips::IpHistory;
use crate::identity::WorkloadId;
use crate::objects::Protocol;

/// One side of an observation.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Party {
    /// A workload of the cluster, by identity.
    Workload { workload: WorkloadId },
    /// Outside the cluster: the DNS name Hubble knew for it, else its IP.
    External { address: String },
    /// A node (the local host or another node): kubelet probes, node agents.
    Host,
    /// An in-cluster address that no known pod held at the time of the flow.
    Unresolved { ip: String },
}

impl Party {
    /// Read back what [`Party`]'s `Display` wrote (`ns/name[Kind]`, `external:…`, `host`,
    /// `unresolved:…`).
    pub fn parse(s: &str) -> Option<Party> {
        if s.contains('/') {
            return WorkloadId::parse(s, "default").map(|workload| Party::Workload { workload });
        }
        if s == "host" {
            return Some(Party::Host);
        }
        if let Some(address) = s.strip_prefix("external:") {
            return Some(Party::External {
                address: address.to_string(),
            });
        }
        s.strip_prefix("unresolved:")
            .map(|ip| Party::Unresolved { ip: ip.to_string() })
    }

    pub fn workload(&self) -> Option<&WorkloadId> {
        match self {
            Party::Workload { workload } => Some(workload),
            _ => None,
        }
    }
}

impl fmt::Display for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Party::Workload { workload } => write!(f, "{workload}"),
            Party::External { address } => write!(f, "external:{address}"),
            Party::Host => f.write_str("host"),
            Party::Unresolved { ip } => write!(f, "unresolved:{ip}"),
        }
    }
}

/// What kind of traffic an observation is; only [`Class::Call`] is a call between parties that
/// intents declare. The others are shown apart, never mixed into calls.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// A workload calling a workload or an external peer (or an external client calling in).
    #[default]
    Call,
    /// From a node into a pod: kubelet liveness and readiness probes, node agents.
    HostProbe,
    /// A lookup at the cluster resolver (kube-dns, port 53).
    Dns,
    /// To or from a pod that runs in its node's network namespace (it has the node's address, so
    /// NetworkPolicies do not see it as a pod).
    HostNetwork,
    /// A side could not be named: an in-cluster address no known pod held at the time.
    Unresolved,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Call => "call",
            Class::HostProbe => "host-probe",
            Class::Dns => "dns",
            Class::HostNetwork => "host-network",
            Class::Unresolved => "unresolved",
        }
    }

    pub fn parse(s: &str) -> Option<Class> {
        [
            Class::Call,
            Class::HostProbe,
            Class::Dns,
            Class::HostNetwork,
            Class::Unresolved,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// What an observation is keyed by.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Key {
    pub class: Class,
    pub client: Party,
    pub server: Party,
    pub protocol: Protocol,
    pub port: u16,
}

/// The aggregate of every flow with one key. Times are nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aggregate {
    pub first_seen: i64,
    pub last_seen: i64,
    /// Calls counted: connections opened (a TCP SYN; for UDP and SCTP, each flow Hubble
    /// reports), each once although Hubble reports it at both ends (see `connections`). Later
    /// segments of a connection only move `last_seen`; 0 when only those were seen (a
    /// connection already open when observation began).
    pub count: u64,
    pub forwarded: u64,
    pub dropped: u64,
    pub audit: u64,
}

impl Aggregate {
    /// Nothing seen.
    pub fn is_empty(&self) -> bool {
        self.count == 0 && self.first_seen == 0 && self.last_seen == 0
    }

    /// Seen without counting a call (a later segment of an open connection).
    fn touch(&mut self, time: i64) {
        if self.is_empty() || time < self.first_seen {
            self.first_seen = time;
        }
        self.last_seen = self.last_seen.max(time);
    }

    fn add(&mut self, time: i64, verdict: Verdict) {
        self.touch(time);
        self.count += 1;
        match verdict {
            Verdict::Forwarded | Verdict::Redirected | Verdict::Translated | Verdict::Traced => {
                self.forwarded += 1
            }
            Verdict::Dropped | Verdict::Error => self.dropped += 1,
            Verdict::Audit => self.audit += 1,
            Verdict::Unknown => {}
        }
    }

    /// Fold another aggregate of the same key in (stored + new).
    pub fn merge(&mut self, other: &Aggregate) {
        if other.is_empty() {
            return;
        }
        if self.is_empty() {
            *self = *other;
            return;
        }
        self.first_seen = self.first_seen.min(other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
        self.count += other.count;
        self.forwarded += other.forwarded;
        self.dropped += other.dropped;
        self.audit += other.audit;
    }
}

/// When the collector was connected, and how many events Hubble reported lost. A claim that
/// something was *not* observed holds only for an interval that was connected throughout and had
/// no lost events.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    /// Connected intervals `(from, to)`, sorted and disjoint.
    pub intervals: Vec<(i64, i64)>,
    /// Lost events reported, by the minute they were reported in (nanoseconds, floored).
    pub lost: BTreeMap<i64, u64>,
}

const MINUTE: i64 = 60 * 1_000_000_000;

impl Coverage {
    /// The collector was connected from `from` to `to`.
    pub fn connected(&mut self, from: i64, to: i64) {
        if to < from {
            return;
        }
        self.intervals.push((from, to));
        self.intervals.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(self.intervals.len());
        for (a, b) in self.intervals.drain(..) {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        self.intervals = merged;
    }

    /// Hubble reported `count` events lost at `at`.
    pub fn lost(&mut self, at: i64, count: u64) {
        *self.lost.entry(at.div_euclid(MINUTE) * MINUTE).or_default() += count;
    }

    pub fn lost_total(&self) -> u64 {
        self.lost.values().sum()
    }

    /// Lost events reported in `[from, to]` (to the minute).
    pub fn lost_between(&self, from: i64, to: i64) -> u64 {
        self.lost
            .range(from.div_euclid(MINUTE) * MINUTE..=to)
            .map(|(_, n)| n)
            .sum()
    }

    /// Whether `[from, to]` was observed completely: inside one connected interval, with no
    /// lost events.
    pub fn complete(&self, from: i64, to: i64) -> bool {
        self.intervals.iter().any(|&(a, b)| a <= from && to <= b)
            && self.lost_between(from, to) == 0
    }

    /// Since when observation has been complete up to `now`: the start of the connected
    /// interval that reaches `now`, moved past the last loss in it. `None` when the collector is
    /// not connected at `now`.
    pub fn complete_since(&self, now: i64) -> Option<i64> {
        let &(a, _) = self
            .intervals
            .iter()
            .find(|&&(a, b)| a <= now && now <= b)?;
        let last_loss = self
            .lost
            .range(a.div_euclid(MINUTE) * MINUTE..=now)
            .filter(|(_, n)| **n > 0)
            .map(|(t, _)| t + MINUTE)
            .next_back();
        Some(last_loss.map_or(a, |l| l.max(a)))
    }

    /// The first and last instant covered.
    pub fn span(&self) -> Option<(i64, i64)> {
        Some((self.intervals.first()?.0, self.intervals.last()?.1))
    }

    /// Forget what ended before `horizon`.
    pub fn forget_before(&mut self, horizon: i64) {
        self.intervals.retain(|&(_, b)| b >= horizon);
        if let Some(first) = self.intervals.first_mut() {
            first.0 = first.0.max(horizon);
        }
        self.lost = self.lost.split_off(&(horizon.div_euclid(MINUTE) * MINUTE));
    }
}

/// What ingesting one flow did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ingested {
    /// A call, counted now or once its other end reports (or the pairing window passes).
    Counted(Class),
    /// The other end's report of a call already counted.
    OtherEnd(Class),
    /// A later segment of an open connection: seen, not a new call.
    Continued(Class),
    /// The answer of a connection: not a call.
    Reply,
    /// An L7 or socket event (the connection is counted at L3/L4).
    NotL3L4,
    /// Neither the flow nor its TCP flags say which side called.
    NoDirection,
    /// ICMP or another protocol without ports.
    NoPort,
    /// Cilium's own traffic (health checks) or a flow without endpoints or addresses.
    Reserved,
}

/// Counts of flows that were not counted as observations, and why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub replies: u64,
    /// Reports of a call at its second end, and later segments of open connections.
    #[serde(default)]
    pub same_call: u64,
    pub not_l3l4: u64,
    pub no_direction: u64,
    pub no_port: u64,
    pub reserved: u64,
}

/// Aggregates by key plus the window's coverage. Memory grows with the distinct keys, never
/// with the number of flows.
#[derive(Clone, Debug, Default)]
pub struct Observations {
    edges: HashMap<Key, Aggregate>,
    /// Reports waiting for their connection's other end.
    connections: Connections,
    settled: Vec<(Key, i64, Verdict)>,
    pub skipped: Skipped,
    pub coverage: Coverage,
    /// The latest flow time ingested (where a reconnecting collector resumes).
    pub latest: i64,
}

impl Observations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.edges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.edges.is_empty()
    }

    pub fn get(&self, key: &Key) -> Option<&Aggregate> {
        self.edges.get(key)
    }

    /// Every observation, sorted by key.
    pub fn sorted(&self) -> Vec<(&Key, &Aggregate)> {
        let mut v: Vec<_> = self.edges.iter().collect();
        v.sort_unstable_by(|a, b| a.0.cmp(b.0));
        v
    }

    /// Calls waiting for their other end's report.
    pub fn waiting(&self) -> usize {
        self.connections.len()
    }

    /// Count every report still waiting for its other end (the input ended).
    pub fn settle(&mut self) {
        self.connections.settle_all(&mut self.settled);
        self.count_settled();
    }

    /// Count the reports that waited for their other end longer than the pairing window before
    /// `now` (flow time; a live collector passes the clock, so an idle stream settles too).
    pub fn settle_before(&mut self, now: i64) {
        self.connections
            .settle_before(now.saturating_sub(PAIR_WINDOW), &mut self.settled);
        self.count_settled();
    }

    fn count_settled(&mut self) {
        for (key, time, verdict) in self.settled.drain(..) {
            self.edges.entry(key).or_default().add(time, verdict);
        }
    }

    /// Take the aggregates out (e.g. to write them to storage), leaving none. Calls still
    /// waiting for their other end stay (see [`Observations::settle`]).
    pub fn drain(&mut self) -> Vec<(Key, Aggregate)> {
        let mut v: Vec<_> = self.edges.drain().collect();
        v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Fold a stored aggregate in.
    pub fn merge(&mut self, key: Key, aggregate: &Aggregate) {
        self.latest = self.latest.max(aggregate.last_seen);
        self.edges.entry(key).or_default().merge(aggregate);
    }

    /// Classify one flow and count it.
    pub fn ingest(&mut self, flow: &Flow, ips: &IpHistory) -> Ingested {
        let outcome = Self::classify(flow, ips);
        match outcome {
            Err(skip) => {
                match skip {
                    Ingested::OtherEnd(_) | Ingested::Continued(_) => self.skipped.same_call += 1,
                    Ingested::Reply => self.skipped.replies += 1,
                    Ingested::NotL3L4 => self.skipped.not_l3l4 += 1,
                    Ingested::NoDirection => self.skipped.no_direction += 1,
                    Ingested::NoPort => self.skipped.no_port += 1,
                    _ => self.skipped.reserved += 1,
                }
                skip
            }
            Ok((key, client_reports, server_reports)) => {
                let class = key.class;
                self.latest = self.latest.max(flow.time);
                if !self.connections.is_empty() {
                    self.settle_before(flow.time);
                }
                if continues(flow) {
                    self.edges.entry(key).or_default().touch(flow.time);
                    self.skipped.same_call += 1;
                    return Ingested::Continued(class);
                }
                let arrival = self.connections.arrive(
                    flow,
                    &key,
                    client_reports,
                    server_reports,
                    &mut self.settled,
                );
                self.count_settled();
                match arrival {
                    Arrival::Count { time, verdict } => {
                        self.edges.entry(key).or_default().add(time, verdict);
                        Ingested::Counted(class)
                    }
                    Arrival::Completes { key, time, verdict } => {
                        self.edges.entry(key).or_default().add(time, verdict);
                        self.skipped.same_call += 1;
                        Ingested::OtherEnd(class)
                    }
                    Arrival::OtherEnd => {
                        self.edges.entry(key).or_default().touch(flow.time);
                        self.skipped.same_call += 1;
                        Ingested::OtherEnd(class)
                    }
                    Arrival::Waiting => Ingested::Counted(class),
                }
            }
        }
    }

    /// The key a flow counts under (or why it counts under none), and whether the client's and
    /// the server's ends are pods that report their own side of a call (Cilium endpoints: not
    /// the node, the world or a host-network pod).
    fn classify(flow: &Flow, ips: &IpHistory) -> Result<(Key, bool, bool), Ingested> {
        if flow.flow_type != FlowType::L3L4 && flow.flow_type != FlowType::Unknown {
            return Err(Ingested::NotL3L4);
        }
        match flow.reply_state() {
            Some(true) => return Err(Ingested::Reply),
            Some(false) => {}
            // A dropped packet without connection state is a connection's first packet: a policy
            // denies new connections, and replies of admitted ones pass.
            None if flow.verdict == Verdict::Dropped => {}
            None => return Err(Ingested::NoDirection),
        }
        let Some((protocol, port)) = flow.l4.and_then(|l4| l4.destination()) else {
            return Err(Ingested::NoPort);
        };
        let src = flow.source.as_ref();
        let dst = flow.destination.as_ref();
        if src.is_some_and(Endpoint::is_reserved_other)
            || dst.is_some_and(Endpoint::is_reserved_other)
        {
            return Err(Ingested::Reserved);
        }
        let (client, client_hostnet) =
            party(src, &flow.source_ip, &flow.source_names, flow.time, ips)
                .ok_or(Ingested::Reserved)?;
        let (server, server_hostnet) = party(
            dst,
            &flow.destination_ip,
            &flow.destination_names,
            flow.time,
            ips,
        )
        .ok_or(Ingested::Reserved)?;
        let dns_server = dst.is_some_and(Endpoint::is_cluster_dns)
            || server.workload().is_some_and(|w| {
                w.namespace == "kube-system" && (w.name == "coredns" || w.name == "kube-dns")
            });
        let class = if port == 53 && dns_server {
            Class::Dns
        } else if client_hostnet || server_hostnet {
            Class::HostNetwork
        } else if client == Party::Host {
            Class::HostProbe
        } else if matches!(client, Party::Unresolved { .. })
            || matches!(server, Party::Unresolved { .. })
        {
            Class::Unresolved
        } else {
            Class::Call
        };
        let client_reports = !client_hostnet && client.workload().is_some();
        let server_reports = !server_hostnet && server.workload().is_some();
        Ok((
            Key {
                class,
                client,
                server,
                protocol,
                port,
            },
            client_reports,
            server_reports,
        ))
    }
}

/// Name one end of a flow, and whether it is a host-network pod. Order: the node or the world
/// by Cilium's reserved identities; the pod by name in the history (Accord's identity, override
/// annotations included); the workload Hubble names; the address in the pod IP history at the
/// flow's time.
fn party(
    ep: Option<&Endpoint>,
    ip: &str,
    names: &[String],
    time: i64,
    ips: &IpHistory,
) -> Option<(Party, bool)> {
    if let Some(ep) = ep {
        if ep.is_world() {
            let address = names.first().map(String::as_str).unwrap_or(ip);
            return Some((
                Party::External {
                    address: address.trim_end_matches('.').to_string(),
                },
                false,
            ));
        }
        let by_pod = (!ep.pod_name.is_empty())
            .then(|| ips.resolve_pod(&ep.namespace, &ep.pod_name))
            .flatten();
        let hostnet = !ep.pod_name.is_empty()
            && (ep.is_host() || ips.is_host_network(&ep.namespace, &ep.pod_name));
        if let Some(w) = by_pod {
            return Some((
                Party::Workload {
                    workload: w.clone(),
                },
                hostnet,
            ));
        }
        if let Some(w) = ep.workloads.first().filter(|_| !ep.namespace.is_empty()) {
            let kind = (!w.kind.is_empty()).then_some(w.kind.as_str());
            return Some((
                Party::Workload {
                    workload: WorkloadId::new(&ep.namespace, &w.name, kind),
                },
                hostnet,
            ));
        }
        if ep.is_host() {
            return Some((Party::Host, false));
        }
    }
    if ip.is_empty() {
        return None;
    }
    match ips.resolve_ip(ip, time) {
        Some(w) => Some((
            Party::Workload {
                workload: w.clone(),
            },
            false,
        )),
        None => Some((Party::Unresolved { ip: ip.to_string() }, false)),
    }
}

/// A count of calls in words: "1 call", "12 calls", or, when only later segments of open
/// connections were seen, "open connections only".
pub fn calls_in_words(count: u64) -> String {
    match count {
        0 => "open connections only".to_string(),
        1 => "1 call".to_string(),
        n => format!("{n} calls"),
    }
}

/// A later segment of a connection the client opened: TCP flags known, no SYN, not dropped.
fn continues(flow: &Flow) -> bool {
    matches!(flow.l4, Some(L4::Tcp { flags: Some(f), .. }) if !f.syn)
        && !matches!(flow.verdict, Verdict::Dropped | Verdict::Error)
}
