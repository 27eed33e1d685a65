//! Generation and evaluation agree: for random inventories and intents, once the generated pod
//! labels are on the pods and the generated policies are in place,
//!
//! 1. every declared call is allowed (on the declared ports, or on every port when the target
//!    names none), and
//! 2. no workload reaches a server those policies protect unless one of its intents declares
//!    that server (directly, or through a Service that selects it).
//!
//! Property 2 is about pairs; that a port-level target does not inherit another client's
//! port-less access is a table test in `generate.rs`.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use accord_policy::evaluate::{Conns, Peer};
use accord_policy::inventory::PolicyObject;
use accord_policy::objects::Protocol;
use accord_policy::{
    Inventory, Naming, Source, WorkloadId, apply_pod_labels, evaluate, generate, load,
};
use proptest::prelude::*;

/// Container ports a workload may have: (name, port, protocol).
const PORTS: [(&str, u16, Protocol); 3] = [
    ("http", 8080, Protocol::Tcp),
    ("grpc", 9090, Protocol::Tcp),
    ("dns", 53, Protocol::Udp),
];
const KINDS: [&str; 2] = ["Deployment", "StatefulSet"];

#[derive(Clone, Debug)]
struct Workload {
    ns: usize,
    kind: usize,
    ports: Vec<usize>,
    /// A Service in front of it: 0 maps port 80 to the named port `http`, 1 maps UDP 53 to 53.
    service: Option<usize>,
}

#[derive(Clone, Debug)]
struct Call {
    client: usize,
    server: usize,
    via_service: bool,
    client_kind: bool,
    server_kind: bool,
    /// Port-level target: one port (or a range of ten) of one protocol.
    ports: Option<(u16, bool, Protocol)>,
}

#[derive(Clone, Debug)]
struct Cluster {
    namespaces: usize,
    workloads: Vec<Workload>,
    calls: Vec<Call>,
}

fn workload() -> impl Strategy<Value = Workload> {
    (
        0..3usize,
        0..2usize,
        proptest::sample::subsequence(vec![0, 1, 2], 0..=3),
        proptest::option::of(0..2usize),
    )
        .prop_map(|(ns, kind, ports, service)| Workload {
            ns,
            kind,
            ports,
            service,
        })
}

fn call() -> impl Strategy<Value = Call> {
    let ports = proptest::option::of((
        prop_oneof![Just(53u16), Just(80), Just(8080), Just(9090)],
        any::<bool>(),
        prop_oneof![Just(Protocol::Tcp), Just(Protocol::Udp)],
    ));
    (
        0..8usize,
        0..8usize,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        ports,
    )
        .prop_map(
            |(client, server, via_service, client_kind, server_kind, ports)| Call {
                client,
                server,
                via_service,
                client_kind,
                server_kind,
                ports,
            },
        )
}

fn cluster() -> impl Strategy<Value = Cluster> {
    (
        1..=3usize,
        proptest::collection::vec(workload(), 2..8),
        proptest::collection::vec(call(), 0..12),
    )
        .prop_map(|(namespaces, mut workloads, calls)| {
            for w in &mut workloads {
                w.ns %= namespaces;
            }
            let n = workloads.len();
            let calls = calls
                .into_iter()
                .map(|c| Call {
                    client: c.client % n,
                    server: c.server % n,
                    ..c
                })
                .filter(|c| c.client != c.server)
                .collect();
            Cluster {
                namespaces,
                workloads,
                calls,
            }
        })
}

impl Cluster {
    fn id(&self, i: usize) -> WorkloadId {
        let w = &self.workloads[i];
        WorkloadId::new(format!("ns{}", w.ns), format!("w{i}"), Some(KINDS[w.kind]))
    }

    /// The calls that count: a Service target needs a Service.
    fn effective_calls(&self) -> Vec<&Call> {
        let mut seen = BTreeSet::new();
        self.calls
            .iter()
            .filter(|c| !c.via_service || self.workloads[c.server].service.is_some())
            // One ClientIntents lists each target once.
            .filter(|c| seen.insert((c.client, c.server, c.via_service)))
            .collect()
    }

    fn manifests(&self) -> Vec<Source> {
        let mut y = String::new();
        for ns in 0..self.namespaces {
            writeln!(
                y,
                "apiVersion: v1\nkind: Namespace\nmetadata: {{name: ns{ns}}}\n---"
            )
            .unwrap();
        }
        for (i, w) in self.workloads.iter().enumerate() {
            let ports: Vec<String> = w
                .ports
                .iter()
                .map(|&p| {
                    format!(
                        "{{name: {}, containerPort: {}, protocol: {}}}",
                        PORTS[p].0, PORTS[p].1, PORTS[p].2
                    )
                })
                .collect();
            writeln!(
                y,
                "apiVersion: apps/v1\nkind: {}\nmetadata: {{name: w{i}, namespace: ns{}}}\nspec:\n  template:\n    metadata: {{labels: {{app: w{i}}}}}\n    spec: {{containers: [{{name: c, ports: [{}]}}]}}\n---",
                KINDS[w.kind],
                w.ns,
                ports.join(", ")
            )
            .unwrap();
            if let Some(variant) = w.service {
                let port = if variant == 0 {
                    "{port: 80, targetPort: http}"
                } else {
                    "{port: 53, targetPort: 53, protocol: UDP}"
                };
                writeln!(
                    y,
                    "apiVersion: v1\nkind: Service\nmetadata: {{name: s{i}, namespace: ns{}, uid: u{i}}}\nspec: {{selector: {{app: w{i}}}, ports: [{port}]}}\n---",
                    w.ns
                )
                .unwrap();
            }
        }
        let calls = self.effective_calls();
        let clients: BTreeSet<usize> = calls.iter().map(|c| c.client).collect();
        for client in clients {
            let mine: Vec<&&Call> = calls.iter().filter(|c| c.client == client).collect();
            let w = &self.workloads[client];
            let kind = if mine[0].client_kind {
                format!(", kind: {}", KINDS[w.kind])
            } else {
                String::new()
            };
            writeln!(
                y,
                "apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata: {{name: w{client}, namespace: ns{}}}\nspec:\n  workload: {{name: w{client}{kind}}}\n  targets:",
                w.ns
            )
            .unwrap();
            for c in mine {
                let s = &self.workloads[c.server];
                let ports = match c.ports {
                    Some((p, range, protocol)) => {
                        let end = if range {
                            format!(", endPort: {}", p + 9)
                        } else {
                            String::new()
                        };
                        format!(", ports: [{{port: {p}{end}, protocol: {protocol}}}]")
                    }
                    None => String::new(),
                };
                if c.via_service {
                    writeln!(
                        y,
                        "    - service: {{name: s{}.ns{}{ports}}}",
                        c.server, s.ns
                    )
                    .unwrap();
                } else {
                    let kind = if c.server_kind {
                        format!(", kind: {}", KINDS[s.kind])
                    } else {
                        String::new()
                    };
                    writeln!(
                        y,
                        "    - kubernetes: {{name: w{}.ns{}{kind}{ports}}}",
                        c.server, s.ns
                    )
                    .unwrap();
                }
            }
            writeln!(y, "---").unwrap();
        }
        vec![Source::new("cluster.yaml", y)]
    }

    /// What a declared call should allow to the server's pods.
    fn declared(&self, c: &Call) -> Conns {
        let mut out = Conns::none();
        if let Some((p, range, protocol)) = c.ports {
            out.add(protocol, p, if range { p + 9 } else { p });
            return out;
        }
        if !c.via_service {
            return Conns::all();
        }
        // A Service target without ports admits the Service's target ports, as resolved on the pod.
        let w = &self.workloads[c.server];
        match w.service {
            Some(0) => {
                if w.ports.contains(&0) {
                    out.add(Protocol::Tcp, 8080, 8080);
                }
            }
            _ => out.add(Protocol::Udp, 53, 53),
        }
        out
    }
}

/// Load, generate, label the pods and put the generated policies in place.
fn enforce(cluster: &Cluster) -> Inventory {
    let (mut inv, diags) = load(&cluster.manifests());
    assert!(diags.is_empty(), "{diags:?}");
    let g = generate(&inv, &Default::default());
    assert!(
        g.diagnostics.iter().all(|d| !d.is_error()),
        "{:?}",
        g.diagnostics
    );
    apply_pod_labels(&mut inv, &g);
    inv.network_policies = g
        .policies
        .into_iter()
        .map(|policy| PolicyObject {
            origin: Default::default(),
            policy,
        })
        .collect();
    inv
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn generated_policies_allow_exactly_the_declared_calls(cluster in cluster()) {
        let inv = enforce(&cluster);
        let connectivity = evaluate(&inv, Naming::Workload);
        let calls = cluster.effective_calls();
        let get = |s: usize, d: usize| {
            connectivity
                .get(&Peer::Workload(cluster.id(s)), &Peer::Workload(cluster.id(d)))
                .cloned()
                .unwrap_or_default()
        };

        for c in &calls {
            let want = cluster.declared(c);
            let got = get(c.client, c.server);
            prop_assert_eq!(
                got.intersection(&want), want.clone(),
                "declared call w{} -> w{} ({:?}) must allow {} but allows {}", c.client, c.server, c, want, got
            );
        }

        // A server is protected when some generated policy selects its pods for ingress.
        let protected: BTreeSet<WorkloadId> = inv
            .pods
            .iter()
            .filter(|p| {
                inv.network_policies.iter().any(|np| {
                    np.policy.namespace() == p.namespace()
                        && np.policy.spec.effective_types().0
                        && np.policy.spec.pod_selector.matches(&p.metadata.labels)
                })
            })
            .map(|p| p.workload.clone())
            .collect();
        for s in 0..cluster.workloads.len() {
            for d in 0..cluster.workloads.len() {
                if s == d || !protected.contains(&cluster.id(d)) {
                    continue;
                }
                let got = get(s, d);
                let declared = calls.iter().any(|c| c.client == s && c.server == d);
                prop_assert!(
                    got.is_empty() || declared,
                    "w{s} reaches protected w{d} ({got}) without declaring it"
                );
            }
        }
    }
}
