//! Suggested intents: per client, the ClientIntents that would declare what it was observed
//! calling, merged with its current ClientIntents (every current target kept as written; only
//! what no current target covers is added). Nothing is suggested for a client whose observed
//! calls are all declared, nor for workloads without observed calls.

use std::collections::{BTreeMap, HashMap};

use super::aggregate::{Aggregate, Class, Key, Party};
use crate::ClientIntents;
use crate::evaluate::Ipv4Range;
use crate::identity::WorkloadId;
use crate::intents::{Target, TargetKind, TargetPort, WorkloadRef};
use crate::inventory::{Inventory, Pod};
use crate::objects::Protocol;
use crate::objects::Service;

/// One client's suggestion: its current ClientIntents (if any) and the merged one.
#[derive(Clone, Debug, PartialEq)]
pub struct Suggestion {
    pub client: WorkloadId,
    pub current: Option<ClientIntents>,
    pub suggested: ClientIntents,
    /// The targets added (also in `suggested`), with the observations behind each: what a
    /// reviewer reads first.
    pub added: Vec<Added>,
}

/// One observed call that no current target declares.
#[derive(Clone, Debug, PartialEq)]
pub struct Added {
    pub server: Party,
    pub protocol: Protocol,
    pub port: u16,
    pub aggregate: Aggregate,
}

/// The inventory indexed for checking many calls: a client's intents, a Service, a workload's
/// pods, each found without scanning the whole estate.
pub struct Lookup<'a> {
    intents: HashMap<(&'a str, &'a str), Vec<&'a ClientIntents>>,
    services: HashMap<(&'a str, &'a str), &'a Service>,
    pods: HashMap<(&'a str, &'a str), Vec<&'a Pod>>,
}

impl<'a> Lookup<'a> {
    pub fn new(inventory: &'a Inventory) -> Lookup<'a> {
        let mut out = Lookup {
            intents: HashMap::new(),
            services: HashMap::new(),
            pods: HashMap::new(),
        };
        for ci in &inventory.intents {
            out.intents
                .entry((ci.namespace.as_str(), ci.workload.name.as_str()))
                .or_default()
                .push(ci);
        }
        for s in &inventory.services {
            out.services
                .entry((s.namespace(), s.metadata.name.as_str()))
                .or_insert(s);
        }
        for p in &inventory.pods {
            out.pods
                .entry((p.workload.namespace.as_str(), p.workload.name.as_str()))
                .or_default()
                .push(p);
        }
        out
    }

    /// The client's ClientIntents, in the inventory's order.
    fn intents_of<'b>(
        &'b self,
        client: &'b WorkloadId,
    ) -> impl Iterator<Item = &'a ClientIntents> + 'b {
        self.intents
            .get(&(client.namespace.as_str(), client.name.as_str()))
            .into_iter()
            .flatten()
            .copied()
            .filter(move |ci| ci.workload.kind.is_none() || ci.workload.kind == client.kind)
    }

    fn pods_of<'b>(&'b self, id: &'b WorkloadId) -> impl Iterator<Item = &'a Pod> + 'b {
        self.pods
            .get(&(id.namespace.as_str(), id.name.as_str()))
            .into_iter()
            .flatten()
            .copied()
            .filter(move |p| id.matches(&p.workload))
    }
}

/// Suggestions for every client with an undeclared observed call, sorted by client. `since`
/// (nanoseconds) leaves out observations last seen before it.
pub fn suggest<'a>(
    observations: impl IntoIterator<Item = (&'a Key, &'a Aggregate)>,
    inventory: &Inventory,
    since: i64,
) -> Vec<Suggestion> {
    let mut by_client: BTreeMap<&WorkloadId, Vec<(&Key, &Aggregate)>> = BTreeMap::new();
    for (key, agg) in observations {
        if key.class != Class::Call || agg.last_seen < since {
            continue;
        }
        let Some(client) = key.client.workload() else {
            continue;
        };
        if !matches!(key.server, Party::Workload { .. } | Party::External { .. }) {
            continue;
        }
        by_client.entry(client).or_default().push((key, agg));
    }
    let mut out = Vec::new();
    let lookup = Lookup::new(inventory);
    let inventory = &lookup;
    for (client, mut calls) in by_client {
        calls.sort_by(|a, b| a.0.cmp(b.0));
        let current = inventory.intents_of(client).next().cloned();
        let mut suggested = current.clone().unwrap_or_else(|| ClientIntents {
            api_version: "k8s.otterize.com/v2beta1".to_string(),
            name: client.name.clone(),
            namespace: client.namespace.clone(),
            workload: WorkloadRef {
                name: client.name.clone(),
                kind: client.kind.clone(),
            },
            ..ClientIntents::default()
        });
        let mut added = Vec::new();
        for (key, agg) in calls {
            let covered = current
                .as_ref()
                .is_some_and(|ci| ci.targets.iter().any(|t| covers(t, key, inventory)));
            // The suggestion so far may already hold it (a second port merged into a target).
            if covered || suggested.targets.iter().any(|t| covers(t, key, inventory)) {
                if !covered {
                    added.push(Added {
                        server: key.server.clone(),
                        protocol: key.protocol,
                        port: key.port,
                        aggregate: *agg,
                    });
                }
                continue;
            }
            add_target(&mut suggested, key);
            added.push(Added {
                server: key.server.clone(),
                protocol: key.protocol,
                port: key.port,
                aggregate: *agg,
            });
        }
        if !added.is_empty() {
            out.push(Suggestion {
                client: client.clone(),
                current,
                suggested,
                added,
            });
        }
    }
    out
}

/// Whether the client's current intents declare an observed call.
pub fn declares(inventory: &Inventory, key: &Key) -> bool {
    declares_in(&Lookup::new(inventory), key)
}

/// [`declares`] for many calls: the inventory indexed once.
pub fn declares_in(lookup: &Lookup<'_>, key: &Key) -> bool {
    let Some(client) = key.client.workload() else {
        return false;
    };
    lookup
        .intents_of(client)
        .any(|ci| ci.targets.iter().any(|t| covers(t, key, lookup)))
}

fn port_listed(ports: &[TargetPort], protocol: Protocol, port: u16) -> bool {
    let port = i32::from(port);
    ports.is_empty()
        || ports.iter().any(|p| {
            p.protocol == protocol && p.port <= port && port <= p.end_port.unwrap_or(p.port)
        })
}

/// Whether a written target declares the observed call.
fn covers(target: &Target, key: &Key, inventory: &Lookup<'_>) -> bool {
    match (&target.kind, &key.server) {
        (
            TargetKind::Workload {
                name,
                namespace,
                kind,
                ports,
                ..
            },
            Party::Workload { workload },
        ) => {
            WorkloadId::new(namespace, name, kind.as_deref()).matches(workload)
                && port_listed(ports, key.protocol, key.port)
        }
        (
            TargetKind::Service {
                name,
                namespace,
                ports,
            },
            Party::Workload { workload },
        ) => {
            let Some((service, selector)) = inventory
                .services
                .get(&(namespace.as_str(), name.as_str()))
                .and_then(|s| Some((*s, s.selector.as_ref()?)))
            else {
                return false;
            };
            namespace == &workload.namespace
                && inventory.pods_of(workload).any(|pod| {
                    selector
                        .iter()
                        .all(|(k, v)| pod.metadata.labels.get(k) == Some(v))
                        // Without ports, a Service target declares the ports the Service
                        // forwards to (what the generated policy admits), not every port.
                        && if ports.is_empty() {
                            service_forwards_to(service, pod, key.protocol, key.port)
                        } else {
                            port_listed(ports, key.protocol, key.port)
                        }
                })
        }
        (
            TargetKind::Internet {
                ips,
                domains,
                ports,
            },
            Party::External { address },
        ) => {
            let port_ok = ports.is_empty() || ports.contains(&i32::from(key.port));
            let addr_ok = domains.iter().any(|d| domain_matches(d, address))
                || ips.iter().any(|ip| {
                    ip == address
                        || (Ipv4Range::parse(ip).zip(parse_ipv4(address)))
                            .is_some_and(|(r, a)| r.contains(a))
                });
            port_ok && addr_ok
        }
        _ => false,
    }
}

/// Whether traffic to one of `service`'s ports reaches `pod` on `port` (its target port, by
/// number or by the pod's named container port).
fn service_forwards_to(service: &Service, pod: &Pod, protocol: Protocol, port: u16) -> bool {
    service.ports.iter().any(|p| {
        p.protocol == protocol
            && match p.effective_target_port() {
                crate::objects::IntOrString::Int(n) => n == i32::from(port),
                crate::objects::IntOrString::String(name) => {
                    pod.named_port(&name, protocol) == Some(i32::from(port))
                }
            }
    })
}

/// `*.example.com` covers subdomains; other names match exactly (case-insensitively).
fn domain_matches(pattern: &str, name: &str) -> bool {
    let name = name.trim_end_matches('.');
    match pattern.strip_prefix("*.") {
        Some(suffix) => name
            .to_ascii_lowercase()
            .ends_with(&format!(".{}", suffix.to_ascii_lowercase())),
        None => pattern.eq_ignore_ascii_case(name),
    }
}

fn parse_ipv4(s: &str) -> Option<u32> {
    s.parse::<std::net::Ipv4Addr>().ok().map(u32::from)
}

fn add_target(ci: &mut ClientIntents, key: &Key) {
    let field = format!("spec.targets[{}]", ci.targets.len());
    match &key.server {
        Party::Workload { workload } => {
            let port = TargetPort {
                port: i32::from(key.port),
                end_port: None,
                protocol: key.protocol,
            };
            // Another port of a target already port-restricted: the port joins its list.
            let same = ci.targets.iter_mut().find_map(|t| match &mut t.kind {
                TargetKind::Workload {
                    name,
                    namespace,
                    kind,
                    ports,
                    ..
                } if name == &workload.name
                    && namespace == &workload.namespace
                    && (kind.is_none() || kind == &workload.kind)
                    && !ports.is_empty() =>
                {
                    Some(ports)
                }
                _ => None,
            });
            match same {
                Some(ports) => {
                    ports.push(port);
                    ports.sort();
                }
                None => ci.targets.push(Target {
                    field,
                    kind: TargetKind::Workload {
                        name: workload.name.clone(),
                        namespace: workload.namespace.clone(),
                        kind: workload.kind.clone(),
                        ports: vec![port],
                        kafka: false,
                    },
                }),
            }
        }
        Party::External { address } => {
            let is_ip = address.parse::<std::net::IpAddr>().is_ok();
            let port = i32::from(key.port);
            // Another port of an address already suggested: the port joins its target.
            let same = ci.targets.iter_mut().find_map(|t| match &mut t.kind {
                TargetKind::Internet {
                    ips,
                    domains,
                    ports,
                } if !ports.is_empty()
                    && (ips.len() + domains.len() == 1)
                    && (ips.contains(address) || domains.contains(address)) =>
                {
                    Some(ports)
                }
                _ => None,
            });
            match same {
                Some(ports) => {
                    ports.push(port);
                    ports.sort_unstable();
                }
                None => ci.targets.push(Target {
                    field,
                    kind: TargetKind::Internet {
                        ips: if is_ip { vec![address.clone()] } else { vec![] },
                        domains: if is_ip { vec![] } else { vec![address.clone()] },
                        ports: vec![port],
                    },
                }),
            }
        }
        Party::Host | Party::Unresolved { .. } => {}
    }
}
