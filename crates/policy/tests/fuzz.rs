//! A bounded fuzz target over the manifest loader and the ClientIntents parser (proptest, so it
//! runs in CI within `cargo test`: 256 inputs a property by default, `PROPTEST_CASES` for more).
//!
//! Inputs are built from pieces of real manifests — YAML and JSON syntax, Kubernetes keys,
//! ClientIntents of every version, values of every JSON type in every place — so that the
//! generator reaches deep into the parsers rather than failing at the first byte. The properties:
//! nothing panics, every diagnostic names the file, and loading is deterministic.

use accord_policy::intents;
use accord_policy::{Origin, Source, load};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Fragments of manifest text, glued together at random.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("apiVersion: k8s.otterize.com/v2beta1\n".to_string()),
        Just("apiVersion: k8s.otterize.com/v1alpha2\n".to_string()),
        Just("apiVersion: networking.k8s.io/v1\n".to_string()),
        Just("kind: ClientIntents\n".to_string()),
        Just("kind: NetworkPolicy\n".to_string()),
        Just("kind: Deployment\n".to_string()),
        Just("kind: List\nitems:\n".to_string()),
        Just("metadata: {name: a, namespace: b}\n".to_string()),
        Just("spec:\n".to_string()),
        Just("  workload: {name: c, kind: Deployment}\n".to_string()),
        Just("  service: {name: c}\n".to_string()),
        Just("  targets:\n".to_string()),
        Just("  calls:\n".to_string()),
        Just(
            "    - kubernetes: {name: s.ns, kind: StatefulSet, ports: [{port: 80}]}\n".to_string()
        ),
        Just("    - service: {name: svc}\n".to_string()),
        Just("    - {name: x, type: http}\n".to_string()),
        Just("  podSelector: {matchLabels: {app: a}}\n".to_string()),
        Just(
            "  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}}], ports: [{port: 80}]}]\n"
                .to_string()
        ),
        Just("---\n".to_string()),
        Just("- ".to_string()),
        Just("  ".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(": ".to_string()),
        Just(", ".to_string()),
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("<<: *a\n".to_string()),
        Just("!!binary ".to_string()),
        Just("|\n".to_string()),
        Just("# comment\n".to_string()),
        Just("\u{feff}".to_string()),
        Just("\t".to_string()),
        Just("\n".to_string()),
        "[a-zA-Z0-9./_-]{1,12}",
        any::<String>(),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..40).prop_map(|parts| parts.concat())
}

/// Any JSON value, small.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "[a-zA-Z0-9./_:-]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("name".to_string()),
                    Just("kind".to_string()),
                    Just("namespace".to_string()),
                    Just("ports".to_string()),
                    Just("port".to_string()),
                    Just("kubernetes".to_string()),
                    Just("service".to_string()),
                    Just("internet".to_string()),
                    Just("type".to_string()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A ClientIntents of some version whose parts are sometimes replaced by arbitrary values.
fn intents_doc() -> impl Strategy<Value = Value> {
    let version = prop_oneof![
        Just("k8s.otterize.com/v1alpha2"),
        Just("k8s.otterize.com/v1alpha3"),
        Just("k8s.otterize.com/v1beta1"),
        Just("k8s.otterize.com/v2alpha1"),
        Just("k8s.otterize.com/v2beta1"),
    ];
    (
        version,
        prop::option::of(value()),
        prop::option::of(value()),
        prop::option::of(value()),
        prop::option::of(value()),
    )
        .prop_map(|(version, metadata, workload, targets, extra)| {
            let mut doc = json!({
                "apiVersion": version,
                "kind": "ClientIntents",
                "metadata": {"name": "a", "namespace": "b"},
                "spec": {
                    "workload": {"name": "c", "kind": "Deployment"},
                    "service": {"name": "c"},
                    "targets": [{"kubernetes": {"name": "s"}}],
                    "calls": [{"name": "s"}],
                },
            });
            if let Some(m) = metadata {
                doc["metadata"] = m;
            }
            if let Some(w) = workload {
                doc["spec"]["workload"] = w.clone();
                doc["spec"]["service"] = w;
            }
            if let Some(t) = targets {
                doc["spec"]["targets"] = t.clone();
                doc["spec"]["calls"] = t;
            }
            if let Some(e) = extra {
                doc["spec"]["x"] = e;
            }
            doc
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
    ))]

    #[test]
    fn the_loader_never_panics_and_names_the_file(text in text()) {
        let sources = [Source::new("fuzz.yaml", text.clone()), Source::new("fuzz.json", text)];
        let (inv, diags) = load(&sources);
        for d in &diags {
            prop_assert!(d.origin.file.starts_with("fuzz."), "{d:?}");
        }
        let (again, diags_again) = load(&sources);
        prop_assert_eq!(inv.pods, again.pods);
        prop_assert_eq!(diags, diags_again);
    }

    #[test]
    fn the_intents_parser_never_panics(doc in intents_doc()) {
        let mut diags = Vec::new();
        let parsed = intents::parse(&Origin::new("fuzz.yaml", 1), &doc, &mut diags);
        prop_assert!(parsed.is_some() || diags.iter().any(|d| d.is_error()), "{doc}");
        // The loader reaches the same parser through text.
        let text = serde_json::to_string(&doc).unwrap();
        let _ = load(&[Source::new("fuzz.json", text)]);
    }
}
