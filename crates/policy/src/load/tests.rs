use super::*;

#[test]
fn deeply_nested_yaml_is_refused_in_milliseconds() {
    let depth = 100_000;
    let flow = format!("a: {}1{}\n", "{a: ".repeat(depth), "}".repeat(depth));
    let seq = format!("{}x\n", "- ".repeat(depth));
    let brackets = format!("a:\n  {}{}\n", "[".repeat(depth), "]".repeat(depth));
    for text in [flow, seq, brackets] {
        let t = std::time::Instant::now();
        let mut diags = Vec::new();
        let docs = documents(&Source::new("deep.yaml", text), &mut diags);
        let took = t.elapsed();
        assert!(docs.is_empty());
        // (A text opening with a bracket is read as JSON, whose parser has its own limit.)
        let m = &diags[0].message;
        assert!(
            m.contains("nested more than") || m.contains("recursion limit"),
            "{diags:?}"
        );
        assert!(took < std::time::Duration::from_millis(500), "{took:?}");
    }
    // Deep JSON is refused by serde_json's own limit, as quickly.
    let json = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let t = std::time::Instant::now();
    let mut diags = Vec::new();
    assert!(documents(&Source::new("deep.json", json), &mut diags).is_empty());
    assert!(diags[0].message.contains("recursion limit"), "{diags:?}");
    assert!(t.elapsed() < std::time::Duration::from_millis(500));
}

#[test]
fn brackets_in_quotes_comments_and_ordinary_nesting_are_fine() {
    let deep_but_allowed = format!(
        "a: {}1{}\n",
        "[".repeat(MAX_DEPTH - 1),
        "]".repeat(MAX_DEPTH - 1)
    );
    let many = "[".repeat(MAX_DEPTH * 2);
    for text in [
        deep_but_allowed,
        format!("a: '{many}'\nb: \"{many} \\\" {many}\"\n# {many}\nc: x # {many}\n"),
        "metadata: {name: a, labels: {app: web}}\nspec: {ports: [{port: 80}]}\n".to_string(),
    ] {
        assert_eq!(too_deep(&text), None, "{text}");
        let mut diags = Vec::new();
        let docs = documents(&Source::new("ok.yaml", text.clone()), &mut diags);
        assert_eq!(docs.len(), 1, "{text}: {diags:?}");
    }
    assert_eq!(too_deep(&format!("x: 1\ny: {}", "[".repeat(200))), Some(2));
}

#[test]
fn reads_multi_document_yaml_and_lists() {
    let text = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: a}}
---
apiVersion: v1
kind: List
items:
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web, namespace: shop}
    spec:
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec: {containers: [{name: c, ports: [{containerPort: 80, name: http}]}]}
---
kind: PodList
items:
  - metadata: {name: lone}
---
just: a config file
"#;
    let (inv, diags) = load(&[Source::new("in.yaml", text)]);
    // What is not a Kubernetes object is reported (a warning).
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].code, DiagnosticCode::NotAnObject);
    assert_eq!(diags[0].origin.document, 4);
    assert_eq!(inv.namespaces["shop"].labels["team"], "a");
    assert_eq!(
        inv.namespaces["shop"].labels["kubernetes.io/metadata.name"],
        "shop"
    );
    assert!(!inv.namespaces["default"].declared);
    assert_eq!(inv.pods.len(), 2);
    let web = inv.pods.iter().find(|p| p.from_template).unwrap();
    assert_eq!(web.workload.to_string(), "shop/web[Deployment]");
    assert_eq!(
        web.named_port("http", crate::objects::Protocol::Tcp),
        Some(80)
    );
    let lone = inv.pods.iter().find(|p| !p.from_template).unwrap();
    assert_eq!(lone.workload.to_string(), "default/lone[Pod]");
}

#[test]
fn bad_documents_are_reported_with_their_field_and_the_rest_is_kept() {
    let text = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: bad, namespace: a}
spec:
  podSelector: {}
  ingress:
    - ports: [{port: 80, protocol: HTTP}]
---
apiVersion: v1
kind: Pod
metadata: {name: fine, namespace: a}
"#;
    let (inv, diags) = load(&[Source::new("np.yaml", text)]);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].object, "NetworkPolicy a/bad");
    assert_eq!(diags[0].field, "spec.ingress[0].ports[0].protocol");
    assert_eq!(diags[0].origin.document, 1);
    assert_eq!(inv.pods.len(), 1);
}

#[test]
fn splits_streams_into_numbered_documents() {
    let text = "# header comment\n---\na: 1\n---\n# only a comment\n--- \nb: |\n  text\n---\n";
    let docs: Vec<(usize, &str)> = split_yaml_documents(text);
    let numbers: Vec<usize> = docs.iter().map(|d| d.0).collect();
    assert_eq!(numbers, [1, 2, 3, 4]);
    assert_eq!(docs[2].1, "--- \nb: |\n  text\n");
    // Without a leading marker the first document starts at the top.
    assert_eq!(split_yaml_documents("a: 1\n---\nb: 2\n").len(), 2);
    assert!(split_yaml_documents("").is_empty());
}

#[test]
fn a_syntax_error_loses_only_its_own_document() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\nkind: [oops\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: c}\n";
    let (inv, diags) = load(&[Source::new("s.yaml", text)]);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].origin.document, 2);
    assert_eq!(inv.pods.len(), 2);
}

#[test]
fn invalid_yaml_names_the_file() {
    let (_, diags) = load(&[Source::new("broken.yaml", "a: [1, 2\n")]);
    assert_eq!(diags.len(), 1);
    assert!(
        diags[0]
            .to_string()
            .starts_with("error[syntax]: broken.yaml"),
        "{}",
        diags[0]
    );
}

#[test]
fn pods_resolve_through_replicasets_to_their_deployment() {
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
metadata:
  name: named
  namespace: a
  annotations: {intents.otterize.com/workload-name: legacy.name}
"#;
    let (inv, diags) = load(&[Source::new("x.yaml", text)]);
    assert!(diags.is_empty(), "{diags:?}");
    let ids: Vec<String> = inv.pods.iter().map(|p| p.workload.to_string()).collect();
    // The Deployment has a real pod, so no template pod stands in for it.
    assert_eq!(ids, ["a/api[Deployment]", "a/legacy_name"]);
    assert_eq!(
        inv.pods[0].direct_owner(),
        ("api-7c9".to_string(), "ReplicaSet".to_string())
    );
}

#[test]
fn syntax_errors_give_the_line_in_the_file() {
    // Document 2 starts at line 4; its error is at line 6 of the file (line 3 of the document).
    let text =
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: [Pod\n";
    let (_, diags) = load(&[Source::new("f.yaml", text)]);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].origin.document, 2);
    assert!(
        diags[0].message.contains("at line 7 column 1")
            && diags[0].message.contains("at line 6 column 7"),
        "{}",
        diags[0].message
    );
    // The same through the server's parallel loader is checked in manifests.rs; here the
    // translation of positions alone.
    assert_eq!(
        super::text::yaml_documents(text)
            .iter()
            .map(|(_, line, _)| *line)
            .collect::<Vec<_>>(),
        [1, 4]
    );
}
