//! `hubble observe -o jsonpb` lines (and the Hubble exporter's `events.log`, which has the same
//! shape): one `GetFlowsResponse` per line in protobuf's JSON mapping, with proto field names
//! (`pod_name`, `IP`, `Type`) as Hubble writes them; the JSON names protobuf also accepts
//! (`podName`, `sourceNames`) are read too. Lines are read into the generated messages, then
//! converted by [`super::convert`], so both sources share one path.

use std::io::BufRead;

use serde::Deserialize;

use super::convert::{self, Event};
use super::proto::flow as pb;
use accord_policy::observed::parse_rfc3339;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("line {line}: {source}")]
    Json {
        line: usize,
        source: serde_json::Error,
    },
    #[error("reading flows: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An enum as protobuf JSON writes it: its name, or (accepted on input) its number.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum EnumValue {
    Name(String),
    Number(i32),
}

impl EnumValue {
    fn number(&self, from_name: impl Fn(&str) -> Option<i32>) -> i32 {
        match self {
            EnumValue::Name(n) => from_name(n).unwrap_or(0),
            EnumValue::Number(n) => *n,
        }
    }
}

/// 64-bit integers are strings in protobuf JSON; numbers are accepted too.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum U64 {
    Text(String),
    Number(u64),
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Line {
    flow: Option<JsonFlow>,
    #[serde(alias = "lostEvents")]
    lost_events: Option<JsonLost>,
    #[serde(alias = "nodeName")]
    node_name: String,
    time: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct JsonFlow {
    time: Option<String>,
    verdict: Option<EnumValue>,
    #[serde(rename = "IP")]
    ip: Option<JsonIp>,
    l4: Option<JsonL4>,
    source: Option<JsonEndpoint>,
    destination: Option<JsonEndpoint>,
    #[serde(rename = "Type")]
    flow_type: Option<EnumValue>,
    #[serde(alias = "nodeName")]
    node_name: String,
    #[serde(alias = "sourceNames")]
    source_names: Vec<String>,
    #[serde(alias = "destinationNames")]
    destination_names: Vec<String>,
    reply: bool,
    #[serde(alias = "trafficDirection")]
    traffic_direction: Option<EnumValue>,
    #[serde(alias = "isReply")]
    is_reply: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct JsonIp {
    source: String,
    destination: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct JsonL4 {
    #[serde(rename = "TCP")]
    tcp: Option<JsonPorts>,
    #[serde(rename = "UDP")]
    udp: Option<JsonPorts>,
    #[serde(rename = "SCTP")]
    sctp: Option<JsonPorts>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct JsonPorts {
    #[serde(alias = "sourcePort")]
    source_port: u32,
    #[serde(alias = "destinationPort")]
    destination_port: u32,
    flags: Option<JsonFlags>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct JsonFlags {
    #[serde(rename = "FIN")]
    fin: bool,
    #[serde(rename = "SYN")]
    syn: bool,
    #[serde(rename = "RST")]
    rst: bool,
    #[serde(rename = "ACK")]
    ack: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct JsonEndpoint {
    identity: u32,
    namespace: String,
    labels: Vec<String>,
    #[serde(alias = "podName")]
    pod_name: String,
    workloads: Vec<JsonWorkload>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct JsonWorkload {
    name: String,
    kind: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct JsonLost {
    #[serde(alias = "numEventsLost")]
    num_events_lost: Option<U64>,
}

fn time(s: Option<&str>) -> Option<prost_types::Timestamp> {
    s.and_then(parse_rfc3339).map(convert::timestamp)
}

fn endpoint(e: JsonEndpoint) -> pb::Endpoint {
    pb::Endpoint {
        id: 0,
        identity: e.identity,
        namespace: e.namespace,
        labels: e.labels,
        pod_name: e.pod_name,
        workloads: e
            .workloads
            .into_iter()
            .map(|w| pb::Workload {
                name: w.name,
                kind: w.kind,
            })
            .collect(),
    }
}

fn ports(p: JsonPorts) -> (u32, u32, Option<pb::TcpFlags>) {
    let flags = p.flags.map(|f| pb::TcpFlags {
        fin: f.fin,
        syn: f.syn,
        rst: f.rst,
        ack: f.ack,
    });
    (p.source_port, p.destination_port, flags)
}

fn message(f: JsonFlow) -> pb::Flow {
    let l4 = f.l4.map(|l4| {
        let protocol = if let Some(t) = l4.tcp {
            let (source_port, destination_port, flags) = ports(t);
            Some(pb::layer4::Protocol::Tcp(pb::Tcp {
                source_port,
                destination_port,
                flags,
            }))
        } else if let Some(u) = l4.udp {
            let (source_port, destination_port, _) = ports(u);
            Some(pb::layer4::Protocol::Udp(pb::Udp {
                source_port,
                destination_port,
            }))
        } else if let Some(s) = l4.sctp {
            let (source_port, destination_port, _) = ports(s);
            Some(pb::layer4::Protocol::Sctp(pb::Sctp {
                source_port,
                destination_port,
            }))
        } else {
            None
        };
        pb::Layer4 { protocol }
    });
    pb::Flow {
        time: time(f.time.as_deref()),
        verdict: f.verdict.map_or(0, |v| {
            v.number(|n| pb::Verdict::from_str_name(n).map(|v| v as i32))
        }),
        ip: f.ip.map(|ip| pb::Ip {
            source: ip.source,
            destination: ip.destination,
        }),
        l4,
        source: f.source.map(endpoint),
        destination: f.destination.map(endpoint),
        r#type: f.flow_type.map_or(0, |v| {
            v.number(|n| pb::FlowType::from_str_name(n).map(|v| v as i32))
        }),
        node_name: f.node_name,
        source_names: f.source_names,
        destination_names: f.destination_names,
        reply: f.reply,
        traffic_direction: f.traffic_direction.map_or(0, |v| {
            v.number(|n| pb::TrafficDirection::from_str_name(n).map(|v| v as i32))
        }),
        is_reply: f.is_reply,
    }
}

/// One line → an event. Blank lines and responses Accord does not read (node status) give
/// `None`.
pub fn decode_line(line: &str) -> serde_json::Result<Option<Event>> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let l: Line = serde_json::from_str(line)?;
    let response_types = if let Some(f) = l.flow {
        Some(super::proto::observer::get_flows_response::ResponseTypes::Flow(message(f)))
    } else {
        l.lost_events.map(|lost| {
            let count = match lost.num_events_lost {
                Some(U64::Text(t)) => t.parse().unwrap_or(0),
                Some(U64::Number(n)) => n,
                None => 0,
            };
            super::proto::observer::get_flows_response::ResponseTypes::LostEvents(pb::LostEvent {
                source: 0,
                num_events_lost: count,
            })
        })
    };
    Ok(convert::response(
        super::proto::observer::GetFlowsResponse {
            response_types,
            node_name: l.node_name,
            time: time(l.time.as_deref()),
        },
    ))
}

/// Every event of a reader, in order. A malformed line is an error naming its number.
pub fn read(reader: impl BufRead, mut each: impl FnMut(Event)) -> Result<()> {
    for (i, line) in reader.lines().enumerate() {
        let line = line?;
        match decode_line(&line) {
            Ok(Some(event)) => each(event),
            Ok(None) => {}
            Err(source) => {
                return Err(Error::Json {
                    line: i + 1,
                    source,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use accord_policy::observed::{FlowType, L4, TrafficDirection, Verdict};

    use super::*;

    #[test]
    fn reads_hubble_proto_names_and_protobuf_json_names_alike() {
        let proto_names = r#"{"flow":{"time":"2026-11-30T05:00:01.5Z","verdict":"DROPPED","IP":{"source":"10.0.0.1","destination":"10.0.0.2"},"l4":{"TCP":{"source_port":40000,"destination_port":8443,"flags":{"SYN":true}}},"source":{"identity":1234,"namespace":"shop","labels":["k8s:app=web"],"pod_name":"web-1","workloads":[{"name":"web","kind":"Deployment"}]},"destination":{"identity":2,"labels":["reserved:world"]},"Type":"L3_L4","traffic_direction":"EGRESS","is_reply":false,"destination_names":["api.example.com"]},"node_name":"n1","time":"2026-11-30T05:00:01.5Z"}"#;
        let json_names = r#"{"flow":{"time":"2026-11-30T05:00:01.5Z","verdict":2,"IP":{"source":"10.0.0.1","destination":"10.0.0.2"},"l4":{"TCP":{"sourcePort":40000,"destinationPort":8443,"flags":{"SYN":true}}},"source":{"identity":1234,"namespace":"shop","labels":["k8s:app=web"],"podName":"web-1","workloads":[{"name":"web","kind":"Deployment"}]},"destination":{"identity":2,"labels":["reserved:world"]},"Type":1,"trafficDirection":2,"isReply":false,"destinationNames":["api.example.com"]},"nodeName":"n1","time":"2026-11-30T05:00:01.5Z"}"#;
        let a = decode_line(proto_names).unwrap().unwrap();
        let b = decode_line(json_names).unwrap().unwrap();
        assert_eq!(a, b);
        let Event::Flow(f) = a else { panic!("a flow") };
        assert_eq!(f.time, 1_796_014_801_500_000_000);
        assert_eq!(f.verdict, Verdict::Dropped);
        assert_eq!(f.flow_type, FlowType::L3L4);
        assert_eq!(f.traffic_direction, TrafficDirection::Egress);
        assert_eq!(f.is_reply, Some(false));
        assert!(matches!(
            f.l4,
            Some(L4::Tcp {
                destination_port: 8443,
                flags: Some(flags),
                ..
            }) if flags.syn && !flags.ack
        ));
        assert_eq!(f.source.unwrap().pod_name, "web-1");
        assert_eq!(f.destination_names, ["api.example.com"]);
        assert_eq!(f.node_name, "n1");
    }

    #[test]
    fn lost_events_carry_their_count_as_protobuf_writes_64_bit_integers() {
        let line = r#"{"lost_events":{"source":"HUBBLE_RING_BUFFER","num_events_lost":"4095","cpu":{"value":1}},"node_name":"n2","time":"2026-11-30T05:00:00Z"}"#;
        assert_eq!(
            decode_line(line).unwrap(),
            Some(Event::Lost {
                time: 1_796_014_800_000_000_000,
                count: 4095,
                node: "n2".into()
            })
        );
        // Node status events and blank lines are not read.
        assert_eq!(
            decode_line(r#"{"node_status":{"state_change":"NODE_CONNECTED"}}"#).unwrap(),
            None
        );
        assert_eq!(decode_line("  ").unwrap(), None);
    }

    #[test]
    fn a_flow_without_is_reply_keeps_it_unknown() {
        let line = r#"{"flow":{"verdict":"FORWARDED","l4":{"UDP":{"source_port":5353,"destination_port":53}},"Type":"L3_L4"}}"#;
        let Some(Event::Flow(f)) = decode_line(line).unwrap() else {
            panic!("a flow")
        };
        assert_eq!(f.is_reply, None);
        assert_eq!(f.time, 0);
        assert!(matches!(
            f.l4,
            Some(L4::Udp {
                destination_port: 53,
                ..
            })
        ));
    }
}
