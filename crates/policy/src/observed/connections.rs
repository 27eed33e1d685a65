//! One connection, counted once. Hubble reports a call between two pods at both ends: at the
//! client's endpoint as it leaves (`EGRESS`) and at the server's endpoint as it arrives
//! (`INGRESS`), each with the verdict of its own end. Counting both would double every call and
//! count a connection dropped by the server's ingress policy as forwarded *and* dropped.
//!
//! So the two reports of a connection (the same protocol, addresses and ports, opposite
//! directions, within [`PAIR_WINDOW`]) are one call. A forwarded report at the client's end waits
//! for its other end, whose verdict is the final one (it may drop the call); if the other end
//! never reports (the server is not a Cilium endpoint, or its node's events were lost), it is
//! counted as forwarded once the window has passed. Reports whose other end cannot report (an
//! external client or server, the node) are counted at once.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use super::aggregate::Key;
use super::flow::{Flow, L4, TrafficDirection, Verdict};
use crate::objects::Protocol;

/// How far apart (in flow time, nanoseconds) the two reports of one connection may be.
pub const PAIR_WINDOW: i64 = 5_000_000_000;

/// At most this many reports wait for their other end; beyond it the oldest is settled early
/// (memory stays bounded whatever the flow rate).
const MAX_WAITING: usize = 262_144;

/// A connection's identity on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Conn {
    protocol: Protocol,
    source: IpAddr,
    source_port: u16,
    destination: IpAddr,
    destination_port: u16,
}

impl Conn {
    fn of(flow: &Flow) -> Option<Conn> {
        let (protocol, source_port, destination_port) = match flow.l4? {
            L4::Tcp {
                source_port,
                destination_port,
                ..
            } => (Protocol::Tcp, source_port, destination_port),
            L4::Udp {
                source_port,
                destination_port,
            } => (Protocol::Udp, source_port, destination_port),
            L4::Sctp {
                source_port,
                destination_port,
            } => (Protocol::Sctp, source_port, destination_port),
            L4::Other => return None,
        };
        Some(Conn {
            protocol,
            source: flow.source_ip.parse().ok()?,
            source_port,
            destination: flow.destination_ip.parse().ok()?,
            destination_port,
        })
    }
}

/// A report remembered for its other end.
#[derive(Clone, Debug)]
struct Seen {
    seq: u64,
    time: i64,
    direction: TrafficDirection,
    /// Not counted yet: the key and verdict to count it under if its other end never reports.
    waiting: Option<(Key, Verdict)>,
}

/// What to do with one report of a connection's opening.
#[derive(Debug, PartialEq, Eq)]
pub enum Arrival {
    /// Count it now, at this time with this verdict.
    Count { time: i64, verdict: Verdict },
    /// Its other end was counted, or it completes a waiting report: count this (the waiting
    /// report's first time, the final verdict) and nothing else.
    Completes {
        key: Key,
        time: i64,
        verdict: Verdict,
    },
    /// The other end of a connection already counted.
    OtherEnd,
    /// Kept until its other end reports or the window passes.
    Waiting,
}

/// Reports waiting for, or remembered against, their other end.
#[derive(Clone, Debug, Default)]
pub struct Connections {
    seen: HashMap<Conn, Seen>,
    order: VecDeque<(u64, i64, Conn)>,
    seq: u64,
}

impl Connections {
    /// How many reports are remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// One report of a connection's opening, classified under `key`. `client_reports` /
    /// `server_reports`: whether that end is a pod whose endpoint reports its own side.
    pub fn arrive(
        &mut self,
        flow: &Flow,
        key: &Key,
        client_reports: bool,
        server_reports: bool,
        settled: &mut Vec<(Key, i64, Verdict)>,
    ) -> Arrival {
        let now = Arrival::Count {
            time: flow.time,
            verdict: flow.verdict,
        };
        let direction = flow.traffic_direction;
        // Only a call between two reporting pods is seen twice.
        let other_end_reports = match direction {
            TrafficDirection::Egress => server_reports,
            TrafficDirection::Ingress => client_reports,
            TrafficDirection::Unknown => false,
        };
        if !other_end_reports {
            return now;
        }
        let Some(conn) = Conn::of(flow) else {
            return now;
        };
        if let Some(s) = self.seen.get(&conn)
            && s.direction != direction
            && (flow.time - s.time).abs() <= PAIR_WINDOW
        {
            let s = self.seen.remove(&conn).expect("just found");
            return match s.waiting {
                Some((key, first)) => Arrival::Completes {
                    key,
                    time: s.time.min(flow.time),
                    verdict: final_verdict(first, flow.verdict),
                },
                None => Arrival::OtherEnd,
            };
        }
        // A new connection, or a retransmission reported at the same end: what was waiting
        // under the same address and ports is a call of its own.
        if let Some(old) = self.seen.remove(&conn)
            && let Some((key, verdict)) = old.waiting
        {
            settled.push((key, old.time, verdict));
        }
        // A drop is final wherever it is reported; a forwarded report at the client's end waits
        // for the server's end, which may still drop it.
        let waits = direction == TrafficDirection::Egress && !is_drop(flow.verdict);
        self.seq += 1;
        self.seen.insert(
            conn,
            Seen {
                seq: self.seq,
                time: flow.time,
                direction,
                waiting: waits.then(|| (key.clone(), flow.verdict)),
            },
        );
        self.order.push_back((self.seq, flow.time, conn));
        while self.seen.len() > MAX_WAITING {
            self.settle_oldest(settled);
        }
        // Completed pairs leave their place in the order behind; drop those places once they
        // outnumber the reports remembered (amortised: memory follows what is remembered).
        if self.order.len() > 2 * self.seen.len() + 1024 {
            let seen = &self.seen;
            self.order
                .retain(|(seq, _, conn)| seen.get(conn).is_some_and(|s| s.seq == *seq));
        }
        if waits { Arrival::Waiting } else { now }
    }

    /// Settle every report older than `before` (flow time): a waiting one is counted as it was
    /// reported.
    pub fn settle_before(&mut self, before: i64, settled: &mut Vec<(Key, i64, Verdict)>) {
        while self.order.front().is_some_and(|&(_, t, _)| t < before) {
            self.settle_oldest(settled);
        }
    }

    /// Settle everything (the end of a recording or of the stream).
    pub fn settle_all(&mut self, settled: &mut Vec<(Key, i64, Verdict)>) {
        while !self.order.is_empty() {
            self.settle_oldest(settled);
        }
    }

    fn settle_oldest(&mut self, settled: &mut Vec<(Key, i64, Verdict)>) {
        let Some((seq, _, conn)) = self.order.pop_front() else {
            return;
        };
        // The entry may have been completed or replaced since.
        if self.seen.get(&conn).is_some_and(|s| s.seq == seq)
            && let Some(s) = self.seen.remove(&conn)
            && let Some((key, verdict)) = s.waiting
        {
            settled.push((key, s.time, verdict));
        }
    }
}

fn is_drop(v: Verdict) -> bool {
    matches!(v, Verdict::Dropped | Verdict::Error)
}

/// The verdict of a connection reported at both ends: the server's end has the last word (it
/// may drop or audit what the client's end forwarded).
fn final_verdict(client_end: Verdict, server_end: Verdict) -> Verdict {
    if server_end == Verdict::Unknown {
        client_end
    } else {
        server_end
    }
}
