//! One test (or table row) per semantic rule of NetworkPolicy evaluation.
//!
//! Every case runs on the same small cluster:
//!
//! | pod | namespace labels | pod labels | container ports |
//! |---|---|---|---|
//! | `a/web` | team=x | app=web, tier=front | http 8080/TCP, dns 53/UDP, sig 9000/SCTP |
//! | `a/db` | team=x | app=db | pg 5432/TCP |
//! | `b/web` | team=y | app=web | http 9090/TCP |
//! | `c/tool` | (undeclared) | app=tool, tier=ops | none |
//!
//! Size: one table-driven test module for one evaluator, on one small shared cluster.

use super::*;
use crate::inventory::Pod;
use crate::inventory::{Namespace, PolicyObject};
use crate::objects::{ContainerPort, Labels, NetworkPolicy, ObjectMeta, Protocol};

fn mk_labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn mk_ns(inv: &mut Inventory, name: &str, labels: &[(&str, &str)]) {
    inv.namespaces.insert(
        name.to_string(),
        Namespace {
            name: name.to_string(),
            labels: mk_labels(labels),
            declared: true,
        },
    );
}

fn mk_pod(
    inv: &mut Inventory,
    ns: &str,
    name: &str,
    labels: &[(&str, &str)],
    ports: &[(&str, i32, Protocol)],
) {
    inv.pods.push(Pod {
        metadata: ObjectMeta {
            name: name.to_string(),
            namespace: Some(ns.to_string()),
            labels: mk_labels(labels),
            ..Default::default()
        },
        ports: ports
            .iter()
            .map(|&(n, p, protocol)| ContainerPort {
                name: Some(n.to_string()),
                container_port: p,
                protocol,
            })
            .collect(),
        ..Default::default()
    });
}

/// A policy from its `spec` written as YAML (flow style keeps table rows short).
fn mk_policy(ns: &str, name: &str, spec: &str) -> PolicyObject {
    let spec = serde_yaml::from_str(spec).unwrap_or_else(|e| panic!("bad spec {spec}: {e}"));
    PolicyObject {
        origin: Default::default(),
        policy: NetworkPolicy {
            api_version: NetworkPolicy::api_version(),
            kind: NetworkPolicy::kind(),
            metadata: ObjectMeta {
                name: name.to_string(),
                namespace: Some(ns.to_string()),
                ..Default::default()
            },
            spec,
        },
    }
}

fn mk_cluster(policies: &[(&str, &str)]) -> Inventory {
    let mut inv = Inventory::default();
    mk_ns(&mut inv, "a", &[("team", "x")]);
    mk_ns(&mut inv, "b", &[("team", "y")]);
    mk_pod(
        &mut inv,
        "a",
        "web",
        &[("app", "web"), ("tier", "front")],
        &[
            ("http", 8080, Protocol::Tcp),
            ("dns", 53, Protocol::Udp),
            ("sig", 9000, Protocol::Sctp),
        ],
    );
    mk_pod(
        &mut inv,
        "a",
        "db",
        &[("app", "db")],
        &[("pg", 5432, Protocol::Tcp)],
    );
    mk_pod(
        &mut inv,
        "b",
        "web",
        &[("app", "web")],
        &[("http", 9090, Protocol::Tcp)],
    );
    mk_pod(
        &mut inv,
        "c",
        "tool",
        &[("app", "tool"), ("tier", "ops")],
        &[],
    );
    for (i, spec) in policies.iter().enumerate() {
        inv.network_policies
            .push(mk_policy(spec.0, &format!("p{i}"), spec.1));
    }
    inv.finish();
    inv
}

fn peer(text: &str) -> Peer {
    match Ipv4Range::parse(text) {
        Some(r) if !text.contains('/') || text.contains('.') => Peer::External(r),
        _ => {
            let (ns, name) = text.split_once('/').expect("ns/name");
            Peer::Workload(WorkloadId::new(ns, name, Some("Pod")))
        }
    }
}

/// The connections from `src` to `dst` (`ns/pod` or an IPv4 address), as the txt format prints
/// them. An address is looked up in the external piece that contains it.
fn conns(c: &Connectivity, src: &str, dst: &str) -> String {
    let find = |p: &Peer, other: &Peer, flip: bool| -> Option<Conns> {
        c.connections
            .iter()
            .find(|x| {
                let (me, them) = if flip {
                    (&x.dst, &x.src)
                } else {
                    (&x.src, &x.dst)
                };
                let me_ok = match (me, p) {
                    (Peer::External(r), Peer::External(q)) => r.contains(q.first),
                    (a, b) => a == b,
                };
                me_ok && them == other
            })
            .map(|x| x.conns.clone())
    };
    let (s, d) = (peer(src), peer(dst));
    let found = match (&s, &d) {
        (Peer::External(_), _) => find(&s, &d, false),
        (_, Peer::External(_)) => find(&d, &s, true),
        _ => c.get(&s, &d).cloned(),
    };
    found.unwrap_or_default().to_string()
}

const NONE: &str = "No Connections";
const ALL: &str = "All Connections";

struct Case {
    name: &'static str,
    policies: &'static [(&'static str, &'static str)],
    want: &'static [(&'static str, &'static str, &'static str)],
}

const CASES: &[Case] = &[
    Case {
        name: "without policies everything is allowed",
        policies: &[],
        want: &[
            ("a/web", "a/db", ALL),
            ("c/tool", "b/web", ALL),
            ("8.8.8.8", "a/db", ALL),
            ("a/db", "8.8.8.8", ALL),
        ],
    },
    Case {
        name: "an empty ingress policy isolates its pods for ingress only",
        policies: &[(
            "a",
            "{podSelector: {matchLabels: {app: db}}, policyTypes: [Ingress]}",
        )],
        want: &[
            ("a/web", "a/db", NONE),
            ("8.8.8.8", "a/db", NONE),
            ("a/db", "a/web", ALL),
            ("a/db", "8.8.8.8", ALL),
        ],
    },
    Case {
        name: "an egress-only policy isolates its pods for egress only",
        policies: &[(
            "a",
            "{podSelector: {matchLabels: {app: db}}, policyTypes: [Egress]}",
        )],
        want: &[
            ("a/db", "a/web", NONE),
            ("a/db", "8.8.8.8", NONE),
            ("a/web", "a/db", ALL),
        ],
    },
    Case {
        name: "without policyTypes, egress rules make the policy isolate both directions",
        policies: &[(
            "a",
            "{podSelector: {matchLabels: {app: db}}, egress: [{to: [{podSelector: {}}]}]}",
        )],
        want: &[
            ("a/web", "a/db", NONE),
            ("a/db", "a/web", ALL),
            ("a/db", "b/web", NONE),
        ],
    },
    Case {
        name: "an empty podSelector selects every pod of the policy's namespace and no other",
        policies: &[("a", "{podSelector: {}, policyTypes: [Ingress]}")],
        want: &[
            ("b/web", "a/web", NONE),
            ("b/web", "a/db", NONE),
            ("a/web", "b/web", ALL),
        ],
    },
    Case {
        name: "a podSelector peer matches pods of the policy's namespace only",
        policies: &[(
            "a",
            "{podSelector: {matchLabels: {app: db}}, ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]}",
        )],
        want: &[
            ("a/web", "a/db", ALL),
            ("b/web", "a/db", NONE),
            ("c/tool", "a/db", NONE),
        ],
    },
    Case {
        name: "a namespaceSelector peer matches every pod of the selected namespaces",
        policies: &[(
            "a",
            "{podSelector: {matchLabels: {app: db}}, ingress: [{from: [{namespaceSelector: {matchLabels: {team: y}}}]}]}",
        )],
        want: &[
            ("b/web", "a/db", ALL),
            ("a/web", "a/db", NONE),
            ("c/tool", "a/db", NONE),
        ],
    },
    Case {
        name: "undeclared namespaces carry only their name label",
        policies: &[(
            "a",
            "{podSelector: {matchLabels: {app: db}}, ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: c}}}, {namespaceSelector: {matchExpressions: [{key: team, operator: DoesNotExist}]}}]}]}",
        )],
        want: &[("c/tool", "a/db", ALL), ("b/web", "a/db", NONE)],
    },
    Case {
        name: "podSelector and namespaceSelector in one peer must both match",
        policies: &[(
            "a",
            "{podSelector: {matchLabels: {app: db}}, ingress: [{from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: web}}}]}]}",
        )],
        want: &[
            ("a/web", "a/db", ALL),
            ("b/web", "a/db", ALL),
            ("c/tool", "a/db", NONE),
        ],
    },
    Case {
        name: "matchExpressions In and NotIn",
        policies: &[(
            "a",
            "{podSelector: {matchLabels: {app: db}}, ingress: [{from: [{namespaceSelector: {}, podSelector: {matchExpressions: [{key: app, operator: In, values: [web, tool]}, {key: tier, operator: NotIn, values: [front]}]}}]}]}",
        )],
        want: &[
            ("c/tool", "a/db", ALL),
            ("b/web", "a/db", ALL),
            ("a/web", "a/db", NONE),
        ],
    },
    Case {
        name: "matchExpressions Exists and DoesNotExist",
        policies: &[(
            "a",
            "{podSelector: {matchExpressions: [{key: tier, operator: DoesNotExist}]}, ingress: [{from: [{namespaceSelector: {}, podSelector: {matchExpressions: [{key: tier, operator: Exists}]}}]}]}",
        )],
        want: &[
            ("a/web", "a/db", ALL),
            ("c/tool", "a/db", ALL),
            ("b/web", "a/db", NONE),
            ("c/tool", "a/web", ALL),
        ],
    },
    Case {
        name: "an ipBlock never matches pods, even with 0.0.0.0/0",
        policies: &[(
            "a",
            "{podSelector: {matchLabels: {app: db}}, ingress: [{from: [{ipBlock: {cidr: 0.0.0.0/0}}]}]}",
        )],
        want: &[("a/web", "a/db", NONE), ("8.8.8.8", "a/db", ALL)],
    },
    Case {
        name: "an ipBlock matches its cidr minus its excepts",
        policies: &[(
            "a",
            "{podSelector: {matchLabels: {app: db}}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}]}]}",
        )],
        want: &[
            ("10.2.3.4", "a/db", ALL),
            ("10.1.3.4", "a/db", NONE),
            ("11.0.0.1", "a/db", NONE),
        ],
    },
    Case {
        name: "an egress ipBlock admits external destinations only",
        policies: &[(
            "a",
            "{podSelector: {matchLabels: {app: db}}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: 192.168.0.0/16}}], ports: [{port: 443}]}]}",
        )],
        want: &[
            ("a/db", "192.168.1.1", "TCP 443"),
            ("a/db", "8.8.8.8", NONE),
            ("a/db", "a/web", NONE),
        ],
    },
    Case {
        name: "an empty from admits every pod and every external address",
        policies: &[(
            "a",
            "{podSelector: {matchLabels: {app: db}}, ingress: [{ports: [{port: 5432}]}]}",
        )],
        want: &[
            ("b/web", "a/db", "TCP 5432"),
            ("c/tool", "a/db", "TCP 5432"),
            ("1.2.3.4", "a/db", "TCP 5432"),
        ],
    },
    Case {
        name: "ports: protocol defaults to TCP, endPort makes a range, a protocol alone means all its ports",
        policies: &[(
            "a",
            "{podSelector: {matchLabels: {app: db}}, ingress: [{ports: [{port: 80}, {port: 8000, endPort: 8100, protocol: UDP}, {protocol: SCTP}]}]}",
        )],
        want: &[("a/web", "a/db", "SCTP 1-65535,TCP 80,UDP 8000-8100")],
    },
    Case {
        name: "named ports resolve against the destination with a matching protocol",
        policies: &[(
            "a",
            "{podSelector: {}, ingress: [{ports: [{port: http}, {port: dns, protocol: UDP}, {port: pg, protocol: UDP}, {port: sig, protocol: SCTP}]}]}",
        )],
        want: &[
            ("b/web", "a/web", "SCTP 9000,TCP 8080,UDP 53"),
            ("b/web", "a/db", NONE),
            ("a/db", "a/web", "SCTP 9000,TCP 8080,UDP 53"),
        ],
    },
    Case {
        name: "named ports in egress resolve against each destination, never for external ones",
        policies: &[(
            "b",
            "{podSelector: {}, policyTypes: [Egress], egress: [{ports: [{port: http}, {port: pg}]}]}",
        )],
        want: &[
            ("b/web", "a/web", "TCP 8080"),
            ("b/web", "a/db", "TCP 5432"),
            ("b/web", "c/tool", NONE),
            ("b/web", "8.8.8.8", NONE),
        ],
    },
    Case {
        name: "policies selecting the same pod are unioned",
        policies: &[
            (
                "a",
                "{podSelector: {matchLabels: {app: db}}, ingress: [{from: [{podSelector: {}}], ports: [{port: 5432}]}]}",
            ),
            (
                "a",
                "{podSelector: {}, ingress: [{from: [{podSelector: {}}], ports: [{port: 9187}]}]}",
            ),
        ],
        want: &[
            ("a/web", "a/db", "TCP 5432,9187"),
            ("a/db", "a/web", "TCP 9187"),
        ],
    },
    Case {
        name: "a connection needs the source's egress and the destination's ingress",
        policies: &[
            (
                "a",
                "{podSelector: {matchLabels: {app: web}}, policyTypes: [Egress], egress: [{ports: [{port: 5000, endPort: 5500}]}]}",
            ),
            (
                "a",
                "{podSelector: {matchLabels: {app: db}}, ingress: [{ports: [{port: 5400, endPort: 6000}]}]}",
            ),
        ],
        want: &[
            ("a/web", "a/db", "TCP 5400-5500"),
            ("b/web", "a/db", "TCP 5400-6000"),
            ("a/web", "b/web", "TCP 5000-5500"),
        ],
    },
    Case {
        name: "a rule's peers and ports combine within the rule, rules combine by union",
        policies: &[(
            "a",
            "{podSelector: {matchLabels: {app: db}}, ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: 1}]}, {from: [{namespaceSelector: {}}], ports: [{port: 2}]}]}",
        )],
        want: &[("a/web", "a/db", "TCP 1-2"), ("b/web", "a/db", "TCP 2")],
    },
    Case {
        name: "invalid ports and addresses admit nothing rather than everything",
        policies: &[(
            "a",
            "{podSelector: {matchLabels: {app: db}}, ingress: [{from: [{ipBlock: {cidr: not-an-ip}}]}, {ports: [{port: 70000}, {port: 90, endPort: 80}]}]}",
        )],
        want: &[("a/web", "a/db", NONE), ("8.8.8.8", "a/db", NONE)],
    },
];

#[test]
fn evaluates_every_semantic_rule() {
    for case in CASES {
        let inv = mk_cluster(case.policies);
        let c = evaluate(&inv, Naming::DirectOwner);
        for &(src, dst, want) in case.want {
            assert_eq!(conns(&c, src, dst), want, "{}: {src} => {dst}", case.name);
        }
    }
}

#[test]
fn invalid_policy_fields_are_reported() {
    let inv = mk_cluster(&[(
        "a",
        "{podSelector: {}, ingress: [{from: [{ipBlock: {cidr: not-an-ip}}, {}]}, {ports: [{port: 70000}]}]}",
    )]);
    let eval = Evaluator::new(&inv);
    let fields: Vec<&str> = eval
        .diagnostics()
        .iter()
        .map(|d| d.field.as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "spec.ingress[0].from[0].ipBlock",
            "spec.ingress[0].from[1]",
            "spec.ingress[1].ports[0].port"
        ]
    );
    assert!(
        eval.diagnostics()
            .iter()
            .all(|d| d.object == "NetworkPolicy a/p0")
    );
}

#[test]
fn external_peers_are_the_pieces_cut_at_every_ip_block_boundary() {
    let inv = mk_cluster(&[(
        "a",
        "{podSelector: {matchLabels: {app: db}}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}]}]}",
    )]);
    let eval = Evaluator::new(&inv);
    let pieces: Vec<String> = eval
        .external_pieces()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        pieces,
        [
            "0.0.0.0-9.255.255.255",
            "10.0.0.0-10.0.255.255",
            "10.1.0.0-10.1.255.255",
            "10.2.0.0-10.255.255.255",
            "11.0.0.0-255.255.255.255"
        ]
    );
    let c = eval.connectivity(Naming::DirectOwner);
    let into_db: Vec<String> = c
        .connections
        .iter()
        .filter(|x| x.dst == peer("a/db"))
        .map(|x| x.src.to_string())
        .filter(|s| s.ends_with("[External]"))
        .collect();
    assert_eq!(
        into_db,
        [
            "10.0.0.0-10.0.255.255[External]",
            "10.2.0.0-10.255.255.255[External]"
        ]
    );
    // Pieces are never paired with each other.
    assert!(
        c.connections
            .iter()
            .all(|x| x.src.workload().is_some() || x.dst.workload().is_some())
    );
}

#[test]
fn replicas_collapse_and_self_pairs_are_left_out() {
    let mut inv = Inventory::default();
    for (pod, labels) in [("api-1", "v1"), ("api-2", "v2")] {
        mk_pod(
            &mut inv,
            "a",
            pod,
            &[("app", "api"), ("version", labels)],
            &[],
        );
        inv.pods.last_mut().unwrap().metadata.owner_references =
            vec![crate::objects::OwnerReference {
                kind: "ReplicaSet".into(),
                name: "api-7c9".into(),
                controller: Some(true),
                ..Default::default()
            }];
    }
    mk_pod(&mut inv, "a", "client", &[("app", "client")], &[]);
    // Only the v2 pod admits the client: the workload's connections are the union over its pods.
    inv.network_policies.push(mk_policy(
        "a",
        "v2-only",
        "{podSelector: {matchLabels: {version: v1}}, policyTypes: [Ingress]}",
    ));
    inv.finish();
    let c = evaluate(&inv, Naming::DirectOwner);
    let rs = Peer::Workload(WorkloadId::new("a", "api-7c9", Some("ReplicaSet")));
    let client = Peer::Workload(WorkloadId::new("a", "client", Some("Pod")));
    assert_eq!(c.get(&client, &rs), Some(&Conns::all()));
    assert_eq!(c.get(&rs, &rs), None);
    assert_eq!(c.workloads.len(), 2);
}

#[test]
fn naming_chooses_direct_owner_or_root_workload() {
    let text = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: a}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: api-7c9
  namespace: a
  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: api, controller: true}]
---
apiVersion: v1
kind: Pod
metadata:
  name: api-7c9-x
  namespace: a
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: api-7c9, controller: true}]
---
apiVersion: v1
kind: Pod
metadata: {name: lone, namespace: a}
"#;
    let (inv, _) = crate::load(&[crate::Source::new("x.yaml", text)]);
    let names = |n: Naming| -> Vec<String> {
        evaluate(&inv, n)
            .workloads
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    assert_eq!(
        names(Naming::DirectOwner),
        ["a/api-7c9[ReplicaSet]", "a/lone[Pod]"]
    );
    assert_eq!(
        names(Naming::Workload),
        ["a/api[Deployment]", "a/lone[Pod]"]
    );
}

#[test]
fn explains_which_policies_isolate_and_which_rules_admit() {
    let inv = mk_cluster(&[
        (
            "a",
            "{podSelector: {matchLabels: {app: db}}, ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: pg}]}]}",
        ),
        ("a", "{podSelector: {}, policyTypes: [Ingress]}"),
        (
            "a",
            "{podSelector: {matchLabels: {app: web}}, policyTypes: [Egress], egress: [{ports: [{port: 53, protocol: UDP}]}, {to: [{podSelector: {matchLabels: {app: db}}}]}]}",
        ),
    ]);
    let eval = Evaluator::new(&inv);
    let e = eval
        .explain(&peer("a/web"), &peer("a/db"), Naming::DirectOwner)
        .unwrap();
    assert_eq!(e.allowed.to_string(), "TCP 5432");
    let names = |s: &SideExplanation| {
        s.isolated_by
            .iter()
            .map(|p| p.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&e.ingress), ["p0", "p1"]);
    assert_eq!(names(&e.egress), ["p2"]);
    let admitted = |s: &SideExplanation| {
        s.admitted_by
            .iter()
            .map(|a| format!("{} {}", a.rule, a.conns))
            .collect::<Vec<_>>()
    };
    assert_eq!(admitted(&e.ingress), ["a/p0 ingress[0] TCP 5432"]);
    assert_eq!(
        admitted(&e.egress),
        ["a/p2 egress[0] UDP 53", "a/p2 egress[1] All Connections"]
    );

    let denied = eval
        .explain(&peer("b/web"), &peer("a/db"), Naming::DirectOwner)
        .unwrap();
    assert!(denied.allowed.is_empty());
    assert!(!denied.egress.isolated() && denied.ingress.isolated());
    assert!(denied.ingress.admitted_by.is_empty());

    let outside = eval
        .explain(&peer("8.8.8.8"), &peer("b/web"), Naming::DirectOwner)
        .unwrap();
    assert!(outside.allowed.is_all());
    assert!(
        eval.explain(&peer("a/nope"), &peer("a/db"), Naming::DirectOwner)
            .is_none()
    );
}

#[test]
fn explanation_agrees_with_the_connectivity_list() {
    let inv = mk_cluster(&[
        (
            "a",
            "{podSelector: {matchLabels: {app: db}}, ingress: [{from: [{namespaceSelector: {}}], ports: [{port: pg}, {port: 9000, protocol: UDP}]}]}",
        ),
        (
            "b",
            "{podSelector: {}, policyTypes: [Egress, Ingress], egress: [{to: [{namespaceSelector: {matchLabels: {team: x}}}]}]}",
        ),
    ]);
    let eval = Evaluator::new(&inv);
    let c = eval.connectivity(Naming::DirectOwner);
    for src in &c.workloads {
        for dst in &c.workloads {
            if src == dst {
                continue;
            }
            let (s, d) = (Peer::Workload(src.clone()), Peer::Workload(dst.clone()));
            let e = eval.explain(&s, &d, Naming::DirectOwner).unwrap();
            assert_eq!(
                c.get(&s, &d).cloned().unwrap_or_default(),
                e.allowed,
                "{src} => {dst}"
            );
        }
    }
}

mod diffs {
    use super::*;
    use crate::evaluate::diff::{ChangeKind, diff};

    fn lines(old: &[(&str, &str)], new: &[(&str, &str)]) -> Vec<String> {
        let a = evaluate(&mk_cluster(old), Naming::DirectOwner);
        let b = evaluate(&mk_cluster(new), Naming::DirectOwner);
        diff(&a, &b)
            .iter()
            .map(|c| {
                format!(
                    "{:?} {} => {} : {} -> {}",
                    c.kind, c.src, c.dst, c.old, c.new
                )
            })
            .collect()
    }

    #[test]
    fn identical_inputs_have_no_changes() {
        let p = [(
            "a",
            "{podSelector: {matchLabels: {app: db}}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}}]}]}",
        )];
        assert!(lines(&p, &p).is_empty());
    }

    #[test]
    fn reports_removed_and_changed_pairs() {
        let old = [(
            "a",
            "{podSelector: {matchLabels: {app: db}}, ingress: [{from: [{namespaceSelector: {}}], ports: [{port: 5432}]}]}",
        )];
        let new = [(
            "a",
            "{podSelector: {matchLabels: {app: db}}, ingress: [{from: [{podSelector: {}}], ports: [{port: 5432}, {port: 9187}]}]}",
        )];
        assert_eq!(
            lines(&old, &new),
            [
                "Changed a/web[Pod] => a/db[Pod] : TCP 5432 -> TCP 5432,9187",
                "Removed b/web[Pod] => a/db[Pod] : TCP 5432 -> No Connections",
                "Removed c/tool[Pod] => a/db[Pod] : TCP 5432 -> No Connections",
            ]
        );
    }

    #[test]
    fn external_ranges_are_compared_over_both_cuts() {
        let old = [(
            "a",
            "{podSelector: {matchLabels: {app: db}}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}}]}]}",
        )];
        let new = [(
            "a",
            "{podSelector: {matchLabels: {app: db}}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}, {ipBlock: {cidr: 172.16.0.0/12}}]}]}",
        )];
        let got = lines(&old, &new);
        assert_eq!(
            got,
            [
                "Removed 10.1.0.0-10.1.255.255[External] => a/db[Pod] : All Connections -> No Connections",
                "Added 172.16.0.0-172.31.255.255[External] => a/db[Pod] : No Connections -> All Connections",
            ]
        );
        let a = evaluate(&mk_cluster(&old), Naming::DirectOwner);
        let b = evaluate(&mk_cluster(&new), Naming::DirectOwner);
        let d = diff(&a, &b);
        assert_eq!(d[0].kind, ChangeKind::Removed);
        assert_eq!(d[0].lost().to_string(), ALL);
        assert!(d[1].gained().is_all());
    }
}

mod admin {
    //! AdminNetworkPolicy and BaselineAdminNetworkPolicy layering.

    use super::*;
    use crate::inventory::AdminPolicyObject;
    use crate::objects::AdminNetworkPolicy;

    /// `("anp" | "banp", spec)` admin policies and `(namespace, spec)` NetworkPolicies.
    fn mk_layered(admin: &[(&str, &str)], policies: &[(&str, &str)]) -> Inventory {
        let mut inv = mk_cluster(policies);
        for (i, (kind, spec)) in admin.iter().enumerate() {
            let spec =
                serde_yaml::from_str(spec).unwrap_or_else(|e| panic!("bad spec {spec}: {e}"));
            inv.admin_policies.push(AdminPolicyObject {
                origin: Default::default(),
                baseline: *kind == "banp",
                policy: AdminNetworkPolicy {
                    metadata: ObjectMeta {
                        name: format!("{kind}{i}"),
                        ..Default::default()
                    },
                    spec,
                },
            });
        }
        inv
    }

    struct AdminCase {
        name: &'static str,
        admin: &'static [(&'static str, &'static str)],
        policies: &'static [(&'static str, &'static str)],
        want: &'static [(&'static str, &'static str, &'static str)],
    }

    const DB_INGRESS_ONLY_FROM_WEB: (&str, &str) = (
        "a",
        "{podSelector: {matchLabels: {app: db}}, ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]}",
    );

    const CASES: &[AdminCase] = &[
        AdminCase {
            name: "an admin Deny wins over a NetworkPolicy that allows",
            admin: &[(
                "anp",
                "{priority: 1, subject: {namespaces: {matchLabels: {team: x}}}, ingress: [{action: Deny, from: [{namespaces: {matchLabels: {team: x}}}], ports: [{portNumber: {port: 5432}}]}]}",
            )],
            policies: &[DB_INGRESS_ONLY_FROM_WEB],
            want: &[
                (
                    "a/web",
                    "a/db",
                    "SCTP 1-65535,TCP 1-5431,5433-65535,UDP 1-65535",
                ),
                ("b/web", "a/db", NONE),
            ],
        },
        AdminCase {
            name: "an admin Allow wins over NetworkPolicy isolation",
            admin: &[(
                "anp",
                "{priority: 1, subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: db}}}}, ingress: [{action: Allow, from: [{namespaces: {matchLabels: {team: y}}}], ports: [{portRange: {protocol: UDP, start: 1000, end: 2000}}]}]}",
            )],
            policies: &[DB_INGRESS_ONLY_FROM_WEB],
            want: &[
                ("b/web", "a/db", "UDP 1000-2000"),
                ("c/tool", "a/db", NONE),
                ("a/web", "a/db", ALL),
            ],
        },
        AdminCase {
            name: "Pass delegates to NetworkPolicies, and without them to the baseline",
            admin: &[
                (
                    "anp",
                    "{priority: 5, subject: {namespaces: {}}, ingress: [{action: Pass, from: [{namespaces: {}}]}]}",
                ),
                (
                    "banp",
                    "{subject: {namespaces: {}}, ingress: [{action: Deny, from: [{namespaces: {matchLabels: {team: y}}}]}]}",
                ),
            ],
            policies: &[DB_INGRESS_ONLY_FROM_WEB],
            want: &[
                ("a/web", "a/db", ALL),
                ("b/web", "a/db", NONE),
                ("b/web", "a/web", NONE),
                ("c/tool", "a/web", ALL),
                ("a/web", "b/web", ALL),
            ],
        },
        AdminCase {
            name: "the lower priority number takes precedence",
            admin: &[
                (
                    "anp",
                    "{priority: 20, subject: {namespaces: {}}, egress: [{action: Allow, to: [{namespaces: {}}]}]}",
                ),
                (
                    "anp",
                    "{priority: 10, subject: {namespaces: {}}, egress: [{action: Deny, to: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: tool}}}}]}]}",
                ),
            ],
            policies: &[],
            want: &[("a/web", "c/tool", NONE), ("a/web", "a/db", ALL)],
        },
        AdminCase {
            name: "within a policy the first matching rule decides each port",
            admin: &[(
                "anp",
                "{priority: 1, subject: {namespaces: {matchLabels: {team: y}}}, egress: [{action: Allow, to: [{namespaces: {}}], ports: [{namedPort: http}]}, {action: Deny, to: [{namespaces: {}}]}]}",
            )],
            policies: &[],
            want: &[
                ("b/web", "a/web", "TCP 8080"),
                ("b/web", "a/db", NONE),
                ("b/web", "8.8.8.8", ALL),
            ],
        },
        AdminCase {
            name: "the baseline applies only where no NetworkPolicy isolates",
            admin: &[(
                "banp",
                "{subject: {namespaces: {}}, ingress: [{action: Deny, from: [{namespaces: {}}]}]}",
            )],
            policies: &[DB_INGRESS_ONLY_FROM_WEB],
            want: &[
                ("a/web", "a/db", ALL),
                ("a/db", "a/web", NONE),
                ("8.8.8.8", "a/web", ALL),
            ],
        },
        AdminCase {
            name: "networks peers match external addresses in egress",
            admin: &[(
                "anp",
                "{priority: 1, subject: {namespaces: {}}, egress: [{action: Deny, to: [{networks: [10.0.0.0/8]}]}]}",
            )],
            policies: &[],
            want: &[
                ("a/web", "10.1.2.3", NONE),
                ("a/web", "11.1.2.3", ALL),
                ("a/web", "a/db", ALL),
            ],
        },
    ];

    #[test]
    fn evaluates_admin_policy_layers() {
        for case in CASES {
            let inv = mk_layered(case.admin, case.policies);
            let c = evaluate(&inv, Naming::DirectOwner);
            for &(src, dst, want) in case.want {
                assert_eq!(conns(&c, src, dst), want, "{}: {src} => {dst}", case.name);
            }
        }
    }

    /// A patch (a pod relabelled, a policy removed or one added) applied to the compiled form
    /// evaluates as compiling the changed inventory does, admin layers included.
    #[test]
    fn a_patched_evaluator_equals_compiling_the_changed_inventory() {
        let relabels: [&[(&str, &str)]; 3] = [
            &[("app", "web")],
            &[("app", "db"), ("tier", "front")],
            &[("app", "tool"), ("tier", "ops")],
        ];
        let added = mk_policy(
            "a",
            "added",
            "{podSelector: {matchLabels: {app: web}}, ingress: [{from: [{namespaceSelector: {matchLabels: {team: y}}}, {podSelector: {matchLabels: {tier: front}}}]}], egress: [{to: [{podSelector: {matchLabels: {app: db}}}], ports: [{port: pg}]}]}",
        );
        let mut checked = 0;
        let mut differed = 0;
        for case in CASES {
            let inv = mk_layered(case.admin, case.policies);
            let prepared = Prepared::new(&inv);
            let before = prepared.evaluator(&inv).connectivity(Naming::Workload);
            assert_eq!(before, evaluate(&inv, Naming::Workload), "{}", case.name);
            for pod in 0..inv.pods.len() {
                for (k, labels) in relabels.iter().enumerate() {
                    let patch = Patch {
                        removed: if k == 0 && !inv.network_policies.is_empty() {
                            vec![0]
                        } else {
                            Vec::new()
                        },
                        added: if k == 1 {
                            vec![added.clone()]
                        } else {
                            Vec::new()
                        },
                        relabelled: vec![(pod, mk_labels(labels))],
                    };
                    let mut after = inv.clone();
                    after.pods[pod].metadata.labels = mk_labels(labels);
                    after.network_policies = inv
                        .network_policies
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| !patch.removed.contains(i))
                        .map(|(_, p)| p.clone())
                        .chain(patch.added.iter().cloned())
                        .collect();
                    let want = evaluate(&after, Naming::Workload).connections;
                    let got = prepared
                        .patched(&inv, &patch)
                        .connectivity(Naming::Workload)
                        .connections;
                    assert_eq!(got, want, "{}: pod {pod}, patch {k}", case.name);
                    checked += 1;
                    differed += usize::from(want != before.connections);
                }
            }
        }
        assert_eq!(checked, CASES.len() * 4 * 3);
        assert!(
            differed * 2 > checked,
            "{differed} of {checked} patches changed access"
        );
    }

    #[test]
    fn explanation_names_the_deciding_admin_rules() {
        let inv = mk_layered(
            &[(
                "anp",
                "{priority: 1, subject: {namespaces: {matchLabels: {team: y}}}, egress: [{name: web-only, action: Allow, to: [{namespaces: {}}], ports: [{namedPort: http}]}, {name: rest, action: Deny, to: [{namespaces: {}}]}]}",
            )],
            &[],
        );
        let eval = Evaluator::new(&inv);
        let e = eval
            .explain(&peer("b/web"), &peer("a/web"), Naming::DirectOwner)
            .unwrap();
        assert_eq!(e.allowed.to_string(), "TCP 8080");
        let decisions: Vec<String> = e.egress.admin.iter().map(ToString::to_string).collect();
        assert_eq!(
            decisions,
            [
                "AdminNetworkPolicy anp0 egress[0] (web-only): Allow TCP 8080",
                "AdminNetworkPolicy anp0 egress[1] (rest): Deny SCTP 1-65535,TCP 1-8079,8081-65535,UDP 1-65535"
            ]
        );
        assert!(e.ingress.admin.is_empty() && !e.ingress.isolated());
    }
}

#[test]
fn ingress_controller_reaches_the_ports_ingresses_and_routes_expose() {
    let text = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, ports: [{name: http, containerPort: 8080}, {containerPort: 9090}, {containerPort: 7070}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: main, port: 80, targetPort: http}, {name: admin, port: 9090}, {name: debug, port: 7070}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: shop}
spec:
  rules: [{http: {paths: [{path: /, backend: {service: {name: web, port: {number: 80}}}}]}}]
---
apiVersion: route.openshift.io/v1
kind: Route
metadata: {name: admin, namespace: shop}
spec: {to: {kind: Service, name: web}, port: {targetPort: admin}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: shop}
spec:
  podSelector: {}
  ingress:
    - from: [{namespaceSelector: {}}]
      ports: [{port: 8080}]
    - from: [{namespaceSelector: {matchLabels: {team: ops}}}]
      ports: [{port: 9090}]
"#;
    let (inv, diags) = crate::load(&[crate::Source::new("x.yaml", text)]);
    assert!(diags.is_empty(), "{diags:?}");
    let c = evaluate(&inv, Naming::Workload);
    let web = Peer::Workload(WorkloadId::new("shop", "web", Some("Deployment")));
    // 80 → http (8080) is exposed and admitted from any namespace; the Route exposes 9090, but
    // only namespaces labelled team=ops may use it, and the controller's namespace is unknown.
    assert_eq!(
        c.get(&Peer::IngressController, &web)
            .map(ToString::to_string)
            .as_deref(),
        Some("TCP 8080")
    );
    let eval = Evaluator::new(&inv);
    let e = eval
        .explain(&Peer::IngressController, &web, Naming::Workload)
        .unwrap();
    assert_eq!(e.allowed.to_string(), "TCP 8080");
    assert_eq!(Peer::IngressController.to_string(), "{ingress-controller}");
}

mod agreement {
    //! The connectivity list takes shortcuts (unlisted endpoints share one verdict); the
    //! explanation evaluates each pair rule by rule. For any mix of policies they must agree.

    use super::*;
    use proptest::prelude::*;

    const NETWORK_POLICIES: &[(&str, &str)] = &[
        (
            "a",
            "{podSelector: {matchLabels: {app: db}}, ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: pg}]}]}",
        ),
        ("a", "{podSelector: {}, policyTypes: [Ingress]}"),
        (
            "a",
            "{podSelector: {matchLabels: {app: web}}, policyTypes: [Egress], egress: [{ports: [{port: 53, protocol: UDP}]}, {to: [{podSelector: {matchLabels: {app: db}}}]}]}",
        ),
        (
            "b",
            "{podSelector: {}, ingress: [{from: [{namespaceSelector: {}}], ports: [{port: http}]}]}",
        ),
        (
            "b",
            "{podSelector: {}, policyTypes: [Egress], egress: [{to: [{namespaceSelector: {matchLabels: {team: x}}}], ports: [{port: http}, {port: pg}]}]}",
        ),
        (
            "c",
            "{podSelector: {}, policyTypes: [Egress], egress: [{to: [{namespaceSelector: {}}]}, {to: [{ipBlock: {cidr: 10.0.0.0/8}}]}]}",
        ),
        (
            "c",
            "{podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 0.0.0.0/0}}]}, {from: [{namespaceSelector: {matchLabels: {team: y}}}], ports: [{port: 1, endPort: 100, protocol: SCTP}]}]}",
        ),
        (
            "a",
            "{podSelector: {matchExpressions: [{key: tier, operator: Exists}]}, ingress: [{}]}",
        ),
        (
            "c",
            "{podSelector: {}, policyTypes: [Egress], egress: [{to: [{namespaceSelector: {matchLabels: {team: x}}}], ports: [{port: 8080}, {port: 5432}]}]}",
        ),
    ];

    const ADMIN_POLICIES: &[(&str, &str)] = &[
        (
            "anp",
            "{priority: 3, subject: {namespaces: {}}, ingress: [{action: Pass, from: [{namespaces: {matchLabels: {team: x}}}], ports: [{portNumber: {port: 5432}}]}, {action: Deny, from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: tool}}}}]}]}",
        ),
        (
            "anp",
            "{priority: 1, subject: {pods: {namespaceSelector: {matchLabels: {team: y}}, podSelector: {}}}, egress: [{action: Allow, to: [{namespaces: {}}], ports: [{namedPort: http}]}, {action: Deny, to: [{networks: [0.0.0.0/0]}]}]}",
        ),
        (
            "banp",
            "{subject: {namespaces: {}}, ingress: [{action: Deny, from: [{namespaces: {matchLabels: {team: y}}}]}], egress: [{action: Allow, to: [{namespaces: {}}], ports: [{portRange: {protocol: TCP, start: 1, end: 1024}}]}, {action: Deny, to: [{namespaces: {}}]}]}",
        ),
    ];

    fn check(nps: &[(&str, &str)], admins: &[(&str, &str)]) {
        let mut inv = mk_cluster(nps);
        for (i, (kind, spec)) in admins.iter().enumerate() {
            inv.admin_policies
                .push(crate::inventory::AdminPolicyObject {
                    origin: Default::default(),
                    baseline: *kind == "banp",
                    policy: crate::objects::AdminNetworkPolicy {
                        metadata: ObjectMeta {
                            name: format!("{kind}{i}"),
                            ..Default::default()
                        },
                        spec: serde_yaml::from_str(spec).unwrap(),
                    },
                });
        }
        let eval = Evaluator::new(&inv);
        let c = eval.connectivity(Naming::DirectOwner);
        for src in &c.workloads {
            for dst in &c.workloads {
                if src == dst {
                    continue;
                }
                let (s, d) = (Peer::Workload(src.clone()), Peer::Workload(dst.clone()));
                let e = eval.explain(&s, &d, Naming::DirectOwner).unwrap();
                assert_eq!(
                    c.get(&s, &d).cloned().unwrap_or_default(),
                    e.allowed,
                    "{src} => {dst} with {nps:?} {admins:?}"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn connectivity_list_agrees_with_pairwise_explanation(
            nps in proptest::sample::subsequence(NETWORK_POLICIES, 0..=NETWORK_POLICIES.len()),
            admins in proptest::sample::subsequence(ADMIN_POLICIES, 0..=ADMIN_POLICIES.len()),
        ) {
            check(&nps, &admins);
        }
    }
}

#[test]
fn primary_user_defined_networks_isolate_their_namespaces() {
    let text = r#"
apiVersion: v1
kind: Namespace
metadata: {name: blue, labels: {k8s.ovn.org/primary-user-defined-network: ""}}
---
apiVersion: k8s.ovn.org/v1
kind: UserDefinedNetwork
metadata: {name: net, namespace: blue}
spec: {topology: Layer2, layer2: {role: Primary, subnets: [10.10.0.0/16]}}
---
apiVersion: v1
kind: Namespace
metadata: {name: red, labels: {k8s.ovn.org/primary-user-defined-network: "", color: warm}}
---
apiVersion: v1
kind: Namespace
metadata: {name: orange, labels: {k8s.ovn.org/primary-user-defined-network: "", color: warm}}
---
apiVersion: v1
kind: Namespace
metadata: {name: yellow, labels: {color: warm}}
---
apiVersion: k8s.ovn.org/v1
kind: ClusterUserDefinedNetwork
metadata: {name: warm}
spec:
  namespaceSelector: {matchLabels: {color: warm}}
  network: {topology: Layer2, layer2: {role: Primary, subnets: [10.20.0.0/16]}}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: blue}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: blue}
---
apiVersion: v1
kind: Pod
metadata: {name: r, namespace: red}
---
apiVersion: v1
kind: Pod
metadata: {name: o, namespace: orange}
---
apiVersion: v1
kind: Pod
metadata: {name: y, namespace: yellow}
---
apiVersion: v1
kind: Pod
metadata: {name: d, namespace: default}
"#;
    let (inv, diags) = crate::load(&[crate::Source::new("x.yaml", text)]);
    assert!(diags.is_empty(), "{diags:?}");
    let c = evaluate(&inv, Naming::DirectOwner);
    let get = |s: &str, d: &str| c.get(&peer(s), &peer(d)).is_some();
    assert!(get("blue/a", "blue/b"));
    assert!(get("red/r", "orange/o"), "one CUDN spans its namespaces");
    assert!(!get("blue/a", "red/r") && !get("red/r", "blue/a"));
    // Without the namespace label, yellow stays on the pod network with default.
    assert!(get("yellow/y", "default/d") && !get("yellow/y", "red/r"));
    assert!(!get("default/d", "blue/a"));
    assert_eq!(conns(&c, "blue/a", "8.8.8.8"), ALL);
    let nets: Vec<String> = c
        .networks
        .iter()
        .map(|(w, n)| format!("{w} {}", n.title()))
        .collect();
    assert_eq!(
        nets,
        [
            "blue/a[Pod] primary UDN blue",
            "blue/b[Pod] primary UDN blue",
            "orange/o[Pod] primary CUDN warm",
            "red/r[Pod] primary CUDN warm"
        ]
    );
}
