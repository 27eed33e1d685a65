//! Properties of ClientIntents conversion: any version → any version → back gives the object
//! it started from, and conversion never changes what the intents mean (the normalized model
//! the operator acts on).

use accord_policy::Origin;
use accord_policy::intents::convert::convert;
use accord_policy::intents::{self, ClientIntents, TargetKind};
use proptest::prelude::*;
use serde_json::{Value, json};

const VERSIONS: &[&str] = &["v1alpha2", "v1alpha3", "v1beta1", "v2alpha1", "v2beta1"];

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,6}",
        "[a-z][a-z0-9-]{0,6}\\.[a-z][a-z0-9-]{0,6}"
    ]
}

fn kind() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        Just("Deployment".to_string()),
        Just("StatefulSet".to_string()),
        Just("Service".to_string()),
    ])
}

fn http() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(
        prop::collection::vec(("/[a-z]{0,4}", prop::bool::ANY), 1..3).prop_map(|rs| {
            Value::Array(
                rs.into_iter()
                    .map(|(path, get)| {
                        if get {
                            json!({"path": path, "methods": ["GET"]})
                        } else {
                            json!({"path": path})
                        }
                    })
                    .collect(),
            )
        }),
    )
}

/// One v1 call in any form Accord reads, with the version's field names.
fn call(alpha2: bool) -> impl Strategy<Value = Value> {
    let (http_key, topics_key) = if alpha2 {
        ("resources", "topics")
    } else {
        ("HTTPResources", "kafkaTopics")
    };
    let typ = prop::option::of(Just("http"));
    prop_oneof![
        (name(), kind(), typ, http()).prop_map(move |(n, k, t, h)| {
            let mut c = json!({"name": n});
            if let Some(k) = k {
                c["kind"] = json!(k);
            }
            if let Some(t) = t {
                c["type"] = json!(t);
            }
            if let Some(h) = h {
                c[http_key] = h;
            }
            c
        }),
        (name(), http()).prop_map(move |(n, h)| {
            let mut c = json!({"name": format!("svc:{n}")});
            if let Some(h) = h {
                c[http_key] = h;
            }
            c
        }),
        (name(), prop::option::of("[a-z]{1,5}")).prop_map(move |(n, t)| {
            let mut c = json!({"name": n, "type": "kafka"});
            if let Some(t) = t {
                c[topics_key] = json!([{"name": t, "operations": ["consume"]}]);
            }
            c
        }),
        name().prop_map(
            |n| json!({"name": n, "type": "database", "databaseResources": [{"databaseName": "d"}]})
        ),
        prop::collection::vec("10\\.0\\.[0-9]\\.[0-9]", 1..3)
            .prop_map(|ips| json!({"type": "internet", "internet": {"ips": ips, "ports": [443]}})),
    ]
}

/// One v2 target in any form Accord reads, including its `ports` addition.
fn target() -> impl Strategy<Value = Value> {
    prop_oneof![
        (name(), kind(), http(), prop::option::of(1..65535i32)).prop_map(|(n, k, h, p)| {
            let mut b = json!({"name": n});
            if let Some(k) = k {
                b["kind"] = json!(k);
            }
            if let Some(h) = h {
                b["http"] = h;
            }
            if let Some(p) = p {
                b["ports"] = json!([{"port": p}]);
            }
            json!({"kubernetes": b})
        }),
        (name(), http()).prop_map(|(n, h)| {
            let mut b = json!({"name": n});
            if let Some(h) = h {
                b["http"] = h;
            }
            json!({"service": b})
        }),
        name().prop_map(|n| json!({"kafka": {"name": n, "topics": [{"name": "t"}]}})),
        name().prop_map(|n| json!({"sql": {"name": n}})),
        Just(json!({"aws": {"arn": "arn:aws:s3:::b", "actions": ["s3:GetObject"]}})),
        prop::collection::vec("[a-z]{1,6}\\.com", 1..3)
            .prop_map(|d| json!({"internet": {"domains": d}})),
    ]
}

fn workload() -> impl Strategy<Value = Value> {
    ("[a-z][a-z0-9-]{0,6}", kind()).prop_map(|(n, k)| match k {
        Some(k) => json!({"name": n, "kind": k}),
        None => json!({"name": n}),
    })
}

fn object(version: &str, spec: Value) -> Value {
    json!({
        "apiVersion": format!("k8s.otterize.com/{version}"),
        "kind": "ClientIntents",
        "metadata": {"name": "intents", "namespace": "ns"},
        "spec": spec,
    })
}

/// Any valid-shaped object of any version.
fn any_object() -> impl Strategy<Value = Value> {
    let v1 = |version: &'static str| {
        let alpha2 = version == "v1alpha2";
        (workload(), prop::collection::vec(call(alpha2), 0..5))
            .prop_map(move |(w, calls)| object(version, json!({"service": w, "calls": calls})))
    };
    let v2 = |version: &'static str| {
        (workload(), prop::collection::vec(target(), 0..5)).prop_map(move |(w, targets)| {
            object(version, json!({"workload": w, "targets": targets}))
        })
    };
    prop_oneof![
        v1("v1alpha2"),
        v1("v1alpha3"),
        v1("v1beta1"),
        v2("v2alpha1"),
        v2("v2beta1"),
    ]
}

fn parsed(o: &Value) -> Option<ClientIntents> {
    intents::parse(&Origin::default(), o, &mut Vec::new())
}

/// What the intents mean, independent of the version and field names they were written with.
fn meaning(i: &ClientIntents) -> (String, Option<String>, Vec<TargetKind>) {
    (
        i.workload.name.clone(),
        i.workload.kind.clone(),
        i.targets.iter().map(|t| t.kind.clone()).collect(),
    )
}

proptest! {
    #[test]
    fn round_trip_through_any_version_gives_the_original(o in any_object(), via in 0..VERSIONS.len()) {
        let from = o["apiVersion"].as_str().unwrap().to_string();
        let there = convert(&o, &format!("k8s.otterize.com/{}", VERSIONS[via])).unwrap();
        let back = convert(&there, &from).unwrap();
        prop_assert_eq!(back, o);
    }

    #[test]
    fn conversion_keeps_the_meaning(o in any_object(), to in 0..VERSIONS.len()) {
        let converted = convert(&o, &format!("k8s.otterize.com/{}", VERSIONS[to])).unwrap();
        let (a, b) = (parsed(&o).unwrap(), parsed(&converted).unwrap());
        // A v1 form that v2 reads differently would change access: the normalized targets
        // must be equal, except Accord's v2-only port restrictions, which v1 cannot carry.
        let strip_ports = |m: (String, Option<String>, Vec<TargetKind>)| {
            let targets: Vec<TargetKind> = m.2.into_iter().map(|t| match t {
                TargetKind::Workload { name, namespace, kind, kafka, .. } => TargetKind::Workload { name, namespace, kind, ports: vec![], kafka },
                TargetKind::Service { name, namespace, .. } => TargetKind::Service { name, namespace, ports: vec![] },
                // v1 calls a SQL target `database`; these targets make no NetworkPolicy rule and
                // their names are kept as written (v1 splits `name.namespace`, v2 does not).
                TargetKind::NonNetwork { kind, .. } if kind == "database" => TargetKind::NonNetwork { kind: "sql".into(), name: String::new() },
                TargetKind::NonNetwork { kind, .. } => TargetKind::NonNetwork { kind, name: String::new() },
                other => other,
            }).collect();
            (m.0, m.1, targets)
        };
        prop_assert_eq!(strip_ports(meaning(&a)), strip_ports(meaning(&b)));
    }

    #[test]
    fn chains_of_conversions_end_where_a_direct_one_does(o in any_object(), path in prop::collection::vec(0..VERSIONS.len(), 1..5)) {
        let from = o["apiVersion"].as_str().unwrap().to_string();
        let mut current = o.clone();
        for v in path {
            current = convert(&current, &format!("k8s.otterize.com/{}", VERSIONS[v])).unwrap();
        }
        prop_assert_eq!(convert(&current, &from).unwrap(), o);
    }
}
