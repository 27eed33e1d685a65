//! Generated protobuf messages → the core's flow model. The one place that knows the gRPC
//! shape; `jsonpb` reads the same messages from text.

use accord_policy::observed::{
    Endpoint, EndpointWorkload, Flow, FlowType, L4, TcpFlags, TrafficDirection, Verdict,
};

use super::proto::flow as pb;
use super::proto::observer::GetFlowsResponse;
use super::proto::observer::get_flows_response::ResponseTypes;

/// One decoded event of a flow stream.
// Nearly every event is a flow: boxing it would cost an allocation per flow to save space on
// the rare lost-events report.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Flow(Flow),
    /// Hubble dropped `count` events (ring buffer overrun, slow reader): observation was not
    /// complete around `time`.
    Lost {
        time: i64,
        count: u64,
        node: String,
    },
}

pub fn nanos(t: &prost_types::Timestamp) -> i64 {
    t.seconds
        .saturating_mul(1_000_000_000)
        .saturating_add(i64::from(t.nanos))
}

pub fn timestamp(nanos: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: nanos.div_euclid(1_000_000_000),
        nanos: nanos.rem_euclid(1_000_000_000) as i32,
    }
}

fn port(p: u32) -> u16 {
    u16::try_from(p).unwrap_or(0)
}

fn endpoint(e: pb::Endpoint) -> Endpoint {
    Endpoint {
        identity: e.identity,
        namespace: e.namespace,
        labels: e.labels,
        pod_name: e.pod_name,
        workloads: e
            .workloads
            .into_iter()
            .map(|w| EndpointWorkload {
                name: w.name,
                kind: w.kind,
            })
            .collect(),
    }
}

pub fn flow(f: pb::Flow) -> Flow {
    let (source_ip, destination_ip) =
        f.ip.map(|ip| (ip.source, ip.destination))
            .unwrap_or_default();
    let l4 = f.l4.map(|l4| match l4.protocol {
        Some(pb::layer4::Protocol::Tcp(t)) => L4::Tcp {
            source_port: port(t.source_port),
            destination_port: port(t.destination_port),
            flags: t.flags.map(|f| TcpFlags {
                syn: f.syn,
                ack: f.ack,
                fin: f.fin,
                rst: f.rst,
            }),
        },
        Some(pb::layer4::Protocol::Udp(u)) => L4::Udp {
            source_port: port(u.source_port),
            destination_port: port(u.destination_port),
        },
        Some(pb::layer4::Protocol::Sctp(s)) => L4::Sctp {
            source_port: port(s.source_port),
            destination_port: port(s.destination_port),
        },
        None => L4::Other,
    });
    Flow {
        time: f.time.as_ref().map_or(0, nanos),
        verdict: Verdict::from_number(f.verdict),
        flow_type: FlowType::from_number(f.r#type),
        source_ip,
        destination_ip,
        l4,
        source: f.source.map(endpoint),
        destination: f.destination.map(endpoint),
        is_reply: f.is_reply,
        reply: f.reply,
        traffic_direction: TrafficDirection::from_number(f.traffic_direction),
        source_names: f.source_names,
        destination_names: f.destination_names,
        node_name: f.node_name,
    }
}

/// A stream response → an event; `None` for responses Accord does not read (node status).
pub fn response(r: GetFlowsResponse) -> Option<Event> {
    let time = r.time.as_ref().map_or(0, nanos);
    match r.response_types? {
        ResponseTypes::Flow(f) => {
            let mut flow = flow(f);
            if flow.time == 0 {
                flow.time = time;
            }
            if flow.node_name.is_empty() {
                flow.node_name = r.node_name;
            }
            Some(Event::Flow(flow))
        }
        ResponseTypes::LostEvents(l) => Some(Event::Lost {
            time,
            count: l.num_events_lost,
            node: r.node_name,
        }),
    }
}
