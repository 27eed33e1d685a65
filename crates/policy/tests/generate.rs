//! Generation rules, one table entry or test per rule of the compatibility contract.
//!
//! Size: one test binary of table-driven rules of one contract (compiled once).

use accord_policy::generate::GenerateOptions;
use accord_policy::objects::NetworkPolicy;
use accord_policy::{Diagnostic, Severity, Source, WorkloadId, generate, load, render};

const NS: &str = "otterize-tutorial-npol";

fn mk_namespace(name: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n")
}

fn mk_deployment(ns: &str, name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec: {{containers: [{{name: main, image: x, ports: [{{name: http, containerPort: 80}}]}}]}}\n"
    )
}

fn mk_service(ns: &str, name: &str, target_port: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}, uid: uid-of-{name}}}\nspec:\n  selector: {{app: {name}}}\n  ports: [{{port: 80, targetPort: {target_port}, protocol: TCP}}]\n"
    )
}

fn mk_intents(ns: &str, client: &str, targets: &str) -> String {
    format!(
        "apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata: {{name: {client}, namespace: {ns}}}\nspec:\n  workload: {{name: {client}}}\n  targets:\n{targets}"
    )
}

/// The worked example's cluster: client and server Deployments and the server Service.
fn tutorial(extra: &[String]) -> Vec<Source> {
    let mut docs = vec![
        mk_namespace(NS),
        mk_deployment(NS, "client"),
        mk_deployment(NS, "server"),
        mk_service(NS, "server", "80"),
    ];
    docs.extend(extra.iter().cloned());
    vec![Source::new("cluster.yaml", docs.join("---\n"))]
}

fn run(
    sources: &[Source],
    opts: &GenerateOptions,
) -> (
    Vec<NetworkPolicy>,
    Vec<Diagnostic>,
    accord_policy::Generated,
    accord_policy::Inventory,
) {
    let (inv, mut diags) = load(sources);
    let g = generate(&inv, opts);
    diags.extend(g.diagnostics.clone());
    (g.policies.clone(), diags, g, inv)
}

fn yaml(policies: &[NetworkPolicy]) -> String {
    render::policies_yaml(policies).unwrap()
}

#[test]
fn worked_example_with_a_service_target_is_reproduced_exactly() {
    let (policies, diags, g, inv) = run(
        &tutorial(&[mk_intents(NS, "client", "    - service: {name: server}\n")]),
        &Default::default(),
    );
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(
        yaml(&policies),
        r#"apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: server-service-access
  namespace: otterize-tutorial-npol
  labels:
    intents.otterize.com/network-policy: server-otterize-tutorial-n-servi-7dac8c
  ownerReferences:
  - apiVersion: v1
    kind: Service
    name: server
    uid: uid-of-server
spec:
  podSelector:
    matchLabels:
      app: server
  policyTypes:
  - Ingress
  ingress:
  - ports:
    - port: 80
      protocol: TCP
    from:
    - podSelector:
        matchLabels:
          intents.otterize.com/svc-access-server-otterize-tutorial-n-servi-7dac8c: 'true'
      namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: otterize-tutorial-npol
"#
    );
    let labels = g.pod_labels(&inv);
    let client = &labels[&WorkloadId::new(NS, "client", Some("Deployment"))];
    let want: Vec<(&str, &str)> = vec![
        (
            "intents.otterize.com/client",
            "client-otterize-tutorial-np-699302",
        ),
        ("intents.otterize.com/owner-kind", "Deployment"),
        (
            "intents.otterize.com/service",
            "client-otterize-tutorial-np-699302",
        ),
        (
            "intents.otterize.com/svc-access-server-otterize-tutorial-n-servi-7dac8c",
            "true",
        ),
    ];
    assert_eq!(
        client
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
        want
    );
    // The server behind a Service target gets its identity labels, as every pod does, and no
    // client labels.
    let server = &labels[&WorkloadId::new(NS, "server", Some("Deployment"))];
    assert_eq!(
        server.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "intents.otterize.com/owner-kind",
            "intents.otterize.com/service"
        ]
    );
}

#[test]
fn worked_example_with_a_workload_target_is_reproduced_exactly() {
    let (policies, diags, g, inv) = run(
        &tutorial(&[mk_intents(
            NS,
            "client",
            "    - kubernetes: {name: server}\n",
        )]),
        &Default::default(),
    );
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(
        yaml(&policies),
        r#"apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: server-access
  namespace: otterize-tutorial-npol
  labels:
    intents.otterize.com/network-policy: server-otterize-tutorial-np-7e16db
spec:
  podSelector:
    matchLabels:
      intents.otterize.com/service: server-otterize-tutorial-np-7e16db
  policyTypes:
  - Ingress
  ingress:
  - from:
    - podSelector:
        matchLabels:
          intents.otterize.com/access-server-otterize-tutorial-np-7e16db: 'true'
      namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: otterize-tutorial-npol
"#
    );
    let labels = g.pod_labels(&inv);
    assert_eq!(
        labels[&WorkloadId::new(NS, "client", Some("Deployment"))]["intents.otterize.com/access-server-otterize-tutorial-np-7e16db"],
        "true"
    );
    let server = &labels[&WorkloadId::new(NS, "server", Some("Deployment"))];
    assert_eq!(
        server["intents.otterize.com/service"],
        "server-otterize-tutorial-np-7e16db"
    );
    assert_eq!(server["intents.otterize.com/owner-kind"], "Deployment");
    assert!(!server.contains_key("intents.otterize.com/client"));
}

#[test]
fn smallest_v1alpha2_file_protects_the_server_in_the_default_namespace() {
    let text = "apiVersion: k8s.otterize.com/v1alpha2\nkind: ClientIntents\nmetadata:\n  name: client-intents\nspec:\n  service:\n    name: client\n  calls:\n    - name: server\n";
    let (policies, diags, ..) = run(&[Source::new("intents.yaml", text)], &Default::default());
    // The workloads are not in the input: generation still works, with warnings.
    assert!(
        diags.iter().all(|d| d.severity == Severity::Warning),
        "{diags:?}"
    );
    assert_eq!(policies.len(), 1);
    assert_eq!(policies[0].metadata.name, "server-access");
    assert_eq!(policies[0].namespace(), "default");
}

#[test]
fn policy_names_selectors_and_access_labels_per_target_form() {
    // (target as written, policy name, podSelector labels, access label key)
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            "kubernetes: {name: server}",
            "server-access",
            &[(
                "intents.otterize.com/service",
                "server-otterize-tutorial-np-7e16db",
            )],
            "intents.otterize.com/access-server-otterize-tutorial-np-7e16db",
        ),
        (
            "kubernetes: {name: server, kind: Deployment}",
            "server-deployment-access",
            &[
                ("intents.otterize.com/owner-kind", "Deployment"),
                (
                    "intents.otterize.com/service",
                    "server-otterize-tutorial-np-7e16db",
                ),
            ],
            "intents.otterize.com/access-server-otterize-tutorial-n-deplo-",
        ),
        (
            "kubernetes: {name: server, kind: Service}",
            "server-service-access",
            &[("app", "server")],
            "intents.otterize.com/svc-access-server-otterize-tutorial-n-servi-7dac8c",
        ),
        (
            "kafka: {name: server, topics: [{name: orders, operations: [consume]}]}",
            "server-access",
            &[(
                "intents.otterize.com/service",
                "server-otterize-tutorial-np-7e16db",
            )],
            "intents.otterize.com/access-server-otterize-tutorial-np-7e16db",
        ),
    ];
    for (target, name, selector, access) in cases {
        let (policies, diags, ..) = run(
            &tutorial(&[mk_intents(NS, "client", &format!("    - {target}\n"))]),
            &Default::default(),
        );
        assert!(diags.is_empty(), "{target}: {diags:?}");
        assert_eq!(policies.len(), 1, "{target}");
        let p = &policies[0];
        assert_eq!(p.metadata.name, *name, "{target}");
        let got: Vec<(&str, &str)> = p
            .spec
            .pod_selector
            .match_labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, *selector, "{target}");
        let from = &p.spec.ingress.as_ref().unwrap()[0].from[0];
        let key = from
            .pod_selector
            .as_ref()
            .unwrap()
            .match_labels
            .keys()
            .next()
            .unwrap();
        assert!(key.starts_with(access), "{target}: {key}");
    }
}

#[test]
fn targets_without_network_rules_generate_nothing() {
    for target in [
        "kubernetes: {name: kubernetes.default}",
        "service: {name: kubernetes.default}",
        "sql: {name: ledger, privileges: [{databaseName: ledger, operations: [SELECT]}]}",
        "aws: {arn: 'arn:aws:s3:::bucket'}",
        "gcp: {resource: projects/x}",
        "azure: {scope: /subscriptions/x}",
        "internet: {ips: [1.2.3.4]}",
    ] {
        let (policies, diags, ..) = run(
            &tutorial(&[mk_intents(NS, "client", &format!("    - {target}\n"))]),
            &Default::default(),
        );
        assert!(diags.iter().all(|d| !d.is_error()), "{target}: {diags:?}");
        assert!(policies.is_empty(), "{target} generated {policies:?}");
    }
}

#[test]
fn clients_from_several_namespaces_share_one_policy_with_a_rule_per_namespace() {
    let docs = vec![
        mk_namespace("a"),
        mk_namespace("b"),
        mk_deployment("b", "c2"),
        mk_deployment("a", "c1"),
        mk_intents(
            "b",
            "c2",
            &format!("    - kubernetes: {{name: server.{NS}}}\n"),
        ),
        mk_intents(
            "a",
            "c1",
            &format!("    - kubernetes: {{name: server.{NS}}}\n"),
        ),
        mk_intents(NS, "client", "    - kubernetes: {name: server}\n"),
    ];
    let (policies, diags, ..) = run(&tutorial(&docs), &Default::default());
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(policies.len(), 1);
    let namespaces: Vec<&str> = policies[0].spec.ingress.as_ref().unwrap().iter()
        .map(|r| r.from[0].namespace_selector.as_ref().unwrap().match_labels["kubernetes.io/metadata.name"].as_str())
        .collect();
    assert_eq!(namespaces, ["a", "b", NS]);
}

#[test]
fn service_target_ports_keep_named_target_ports() {
    let mut sources = vec![
        mk_namespace(NS),
        mk_deployment(NS, "client"),
        mk_deployment(NS, "server"),
        mk_service(NS, "server", "http"),
    ];
    sources.push(mk_intents(NS, "client", "    - service: {name: server}\n"));
    let (policies, ..) = run(
        &[Source::new("c.yaml", sources.join("---\n"))],
        &Default::default(),
    );
    let ports = &policies[0].spec.ingress.as_ref().unwrap()[0].ports;
    assert_eq!(
        serde_json::to_string(ports).unwrap(),
        r#"[{"port":"http","protocol":"TCP"}]"#
    );
}

#[test]
fn unresolved_targets_and_selectorless_services_are_reported_by_field() {
    let selectorless = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: external, namespace: {NS}}}\nspec:\n  type: ExternalName\n  externalName: db.example.com\n"
    );
    let intents = mk_intents(
        NS,
        "client",
        "    - service: {name: external}\n    - service: {name: missing}\n    - kubernetes: {name: ghost}\n    - kubernetes: {name: server}\n",
    );
    let (policies, diags, ..) = run(&tutorial(&[selectorless, intents]), &Default::default());
    let fields: Vec<(&str, &str)> = diags
        .iter()
        .map(|d| (d.field.as_str(), d.message.as_str()))
        .collect();
    assert_eq!(diags.len(), 3, "{fields:?}");
    assert!(diags.iter().all(
        |d| d.severity == Severity::Warning && d.object == format!("ClientIntents {NS}/client")
    ));
    assert!(
        fields[0].0 == "spec.targets[0].service" && fields[0].1.contains("has no selector"),
        "{fields:?}"
    );
    assert!(
        fields[1].0 == "spec.targets[1].service" && fields[1].1.contains("resolves to nothing"),
        "{fields:?}"
    );
    assert!(
        fields[2].0 == "spec.targets[2].kubernetes"
            && fields[2].1.contains("resolves to no workload"),
        "{fields:?}"
    );
    // The valid targets are still processed (ghost's policy is label-based and still generated).
    let names: Vec<&str> = policies.iter().map(|p| p.metadata.name.as_str()).collect();
    assert_eq!(names, ["ghost-access", "server-access"]);
}

#[test]
fn invalid_intents_are_reported_and_the_rest_of_the_input_is_kept() {
    let bad_docs = [
        (
            "apiVersion: k8s.otterize.com/v3\nkind: ClientIntents\nmetadata: {name: a, namespace: x}\nspec: {workload: {name: a}}\n",
            "apiVersion",
            "unknown ClientIntents version",
        ),
        (
            "apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata: {name: b, namespace: x}\nspec:\n  workload: {name: b}\n  targets:\n    - {kubernetes: {name: s}, service: {name: s}}\n",
            "spec.targets[0]",
            "exactly one key",
        ),
        (
            "apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata: {name: c, namespace: x}\nspec: {workload: {name: c.d}}\n",
            "spec.workload.name",
            "contains a dot",
        ),
        (
            "apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata: {name: d, namespace: x}\nspec:\n  workload: {name: d}\n  targets: [{kubernetes: {name: s, http: [{methods: [GET]}]}}]\n",
            "spec.targets[0].kubernetes.http[0].path",
            "needs a path",
        ),
        (
            "apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata: {name: e, namespace: x}\nspec:\n  workload: {name: e}\n  targets: [{internet: {ports: [443]}}]\n",
            "spec.targets[0].internet",
            "needs ips or domains",
        ),
        (
            "apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata: {name: f, namespace: x}\nspec:\n  workload: {name: f}\n  targets: [{kubernetes: {name: a.b.c}}]\n",
            "spec.targets[0].kubernetes.name",
            "more than one dot",
        ),
        (
            "apiVersion: k8s.otterize.com/v1alpha3\nkind: ClientIntents\nmetadata: {name: g, namespace: x}\nspec:\n  service: {name: g}\n  calls: [{name: s, type: carrier-pigeon}]\n",
            "spec.calls[0].type",
            "unknown call type",
        ),
    ];
    for (doc, field, message) in bad_docs {
        let good = mk_intents("x", "ok", "    - kubernetes: {name: fine}\n");
        let (policies, diags, ..) = run(
            &[Source::new("bad.yaml", format!("{doc}---\n{good}"))],
            &Default::default(),
        );
        let errors: Vec<&Diagnostic> = diags.iter().filter(|d| d.is_error()).collect();
        assert_eq!(errors.len(), 1, "{doc}: {diags:?}");
        assert_eq!(errors[0].origin.file, "bad.yaml");
        assert_eq!(errors[0].origin.document, 1);
        assert_eq!(errors[0].field, field, "{doc}");
        assert!(errors[0].message.contains(message), "{}", errors[0].message);
        assert!(
            policies.iter().any(|p| p.metadata.name == "fine-access"),
            "{doc}: the valid document must still be processed"
        );
    }
}

#[test]
fn two_intents_for_one_workload_are_an_error() {
    let a = mk_intents(NS, "client", "    - kubernetes: {name: server}\n");
    let b = a.replace("name: client, namespace", "name: client-2, namespace");
    let (_, diags, ..) = run(&tutorial(&[a, b]), &Default::default());
    let errors: Vec<&Diagnostic> = diags.iter().filter(|d| d.is_error()).collect();
    assert_eq!(errors.len(), 1, "{diags:?}");
    assert_eq!(errors[0].object, format!("ClientIntents {NS}/client-2"));
    assert!(errors[0].message.contains("at most one ClientIntents"));
}

#[test]
fn v1_call_forms_name_namespaces_and_services() {
    let text = format!(
        "apiVersion: k8s.otterize.com/v1alpha3\nkind: ClientIntents\nmetadata: {{name: client, namespace: {NS}}}\nspec:\n  service: {{name: client}}\n  calls:\n    - name: svc:server.{NS}\n    - name: other.elsewhere\n    - name: server\n      kind: Service\n    - name: db\n      type: database\n"
    );
    let (inv, _) = load(&tutorial(&[text]));
    let kinds: Vec<String> = inv.intents[0]
        .targets
        .iter()
        .map(|t| serde_json::to_string(&t.kind).unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            format!(r#"{{"type":"service","name":"server","namespace":"{NS}","ports":[]}}"#),
            r#"{"type":"workload","name":"other","namespace":"elsewhere","kind":null,"ports":[],"kafka":false}"#.to_string(),
            format!(r#"{{"type":"service","name":"server","namespace":"{NS}","ports":[]}}"#),
            r#"{"type":"nonNetwork","kind":"database","name":"db"}"#.to_string(),
        ]
    );
}

#[test]
fn every_served_version_normalizes_to_the_same_model() {
    let forms = [
        (
            "v1alpha2",
            "service: {name: client}\n  calls: [{name: server}]",
        ),
        (
            "v1alpha3",
            "service: {name: client}\n  calls: [{name: server, type: http}]",
        ),
        (
            "v1beta1",
            "service: {name: client}\n  calls: [{name: server}]",
        ),
        (
            "v2alpha1",
            "workload: {name: client}\n  targets: [{kubernetes: {name: server}}]",
        ),
        (
            "v2beta1",
            "workload: {name: client}\n  targets: [{kubernetes: {name: server}}]",
        ),
    ];
    let mut outputs = Vec::new();
    for (version, spec) in forms {
        let text = format!(
            "apiVersion: k8s.otterize.com/{version}\nkind: ClientIntents\nmetadata: {{name: client, namespace: {NS}}}\nspec:\n  {spec}\n"
        );
        let (policies, diags, ..) = run(&tutorial(&[text]), &Default::default());
        assert!(diags.is_empty(), "{version}: {diags:?}");
        outputs.push(yaml(&policies));
    }
    assert!(outputs.windows(2).all(|w| w[0] == w[1]), "{outputs:#?}");
}

#[test]
fn port_level_targets_restrict_the_rule_to_those_ports_and_that_client() {
    let intents = mk_intents(
        NS,
        "client",
        "    - kubernetes:\n        name: server\n        ports: [{port: 8080}, {port: 9000, endPort: 9010, protocol: UDP}]\n",
    );
    let (policies, diags, ..) = run(&tutorial(&[intents]), &Default::default());
    assert!(diags.is_empty(), "{diags:?}");
    let rule = &policies[0].spec.ingress.as_ref().unwrap()[0];
    assert_eq!(
        serde_json::to_string(&rule.ports).unwrap(),
        r#"[{"port":8080,"protocol":"TCP"},{"port":9000,"endPort":9010,"protocol":"UDP"}]"#
    );
    let sel = &rule.from[0].pod_selector.as_ref().unwrap().match_labels;
    let sel: Vec<(&str, &str)> = sel.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        sel,
        [(
            "intents.otterize.com/client",
            "client-otterize-tutorial-np-699302"
        )]
    );
}

#[test]
fn a_port_restricted_client_does_not_inherit_another_clients_unrestricted_access() {
    let docs = vec![
        mk_deployment(NS, "other"),
        mk_intents(
            NS,
            "client",
            "    - kubernetes:\n        name: server\n        ports: [{port: 8080}]\n",
        ),
        mk_intents(NS, "other", "    - kubernetes: {name: server}\n"),
    ];
    let (policies, diags, g, inv) = run(&tutorial(&docs), &Default::default());
    assert!(diags.is_empty(), "{diags:?}");
    let access = "intents.otterize.com/access-server-otterize-tutorial-np-7e16db";
    let labels = g.pod_labels(&inv);
    assert!(!labels[&WorkloadId::new(NS, "client", Some("Deployment"))].contains_key(access));
    assert_eq!(
        labels[&WorkloadId::new(NS, "other", Some("Deployment"))][access],
        "true"
    );
    let rules = policies[0].spec.ingress.as_ref().unwrap();
    assert_eq!(rules.len(), 2);
    // The unrestricted rule admits the access label; the port rule admits only `client`.
    let selectors: Vec<Vec<&str>> = rules
        .iter()
        .map(|r| {
            r.from[0]
                .pod_selector
                .as_ref()
                .unwrap()
                .match_labels
                .keys()
                .map(String::as_str)
                .collect()
        })
        .collect();
    assert_eq!(
        selectors,
        [vec![access], vec!["intents.otterize.com/client"]]
    );
    assert!(rules[0].ports.is_empty());
    assert_eq!(rules[1].ports.len(), 1);
}

#[test]
fn egress_mode_adds_dns_workload_service_and_internet_rules() {
    let intents = mk_intents(
        NS,
        "client",
        "    - kubernetes: {name: server}\n    - service: {name: server}\n    - internet: {ips: [203.0.113.7, 198.51.100.0/24], ports: [443]}\n",
    );
    let opts = GenerateOptions {
        egress: true,
        ..Default::default()
    };
    let (policies, diags, ..) = run(&tutorial(&[intents]), &opts);
    assert!(diags.is_empty(), "{diags:?}");
    let client = policies
        .iter()
        .find(|p| p.metadata.name == "client-access")
        .expect("client policy");
    assert_eq!(
        serde_json::to_string(&client.spec.policy_types).unwrap(),
        r#"["Egress"]"#
    );
    // The workload target comes after the Service in front of it (the next test); then the
    // Service target, the internet target and DNS.
    let egress = client.spec.egress.as_ref().unwrap();
    assert_eq!(egress.len(), 5, "{egress:#?}");
    assert_eq!(
        serde_json::to_string(&egress[1].to[0].pod_selector).unwrap(),
        r#"{"matchLabels":{"intents.otterize.com/service":"server-otterize-tutorial-np-7e16db"}}"#
    );
    assert_eq!(
        serde_json::to_string(&egress[2].ports).unwrap(),
        r#"[{"port":80,"protocol":"TCP"}]"#
    );
    assert_eq!(
        serde_json::to_string(&egress[3]).unwrap(),
        r#"{"ports":[{"port":443,"protocol":"TCP"}],"to":[{"ipBlock":{"cidr":"198.51.100.0/24"}},{"ipBlock":{"cidr":"203.0.113.7/32"}}]}"#
    );
    assert_eq!(
        serde_json::to_string(&egress[4]).unwrap(),
        r#"{"ports":[{"port":53,"protocol":"UDP"},{"port":53,"protocol":"TCP"}]}"#
    );
    let separate = GenerateOptions {
        egress: true,
        separate_policies: true,
        ..Default::default()
    };
    let (policies, ..) = run(
        &tutorial(&[mk_intents(
            NS,
            "client",
            "    - kubernetes: {name: server}\n",
        )]),
        &separate,
    );
    let names: Vec<&str> = policies.iter().map(|p| p.metadata.name.as_str()).collect();
    assert_eq!(names, ["client-egress", "server-ingress"]);
}

#[test]
fn shadow_mode_protects_only_enforced_namespaces_and_protected_services() {
    let docs = vec![
        mk_namespace("enforced"),
        mk_deployment("enforced", "api"),
        mk_intents(
            NS,
            "client",
            "    - kubernetes: {name: server}\n    - kubernetes: {name: api.enforced}\n",
        ),
    ];
    let shadow = GenerateOptions {
        shadow: true,
        enforced_namespaces: ["enforced".to_string()].into(),
        ..Default::default()
    };
    let (policies, ..) = run(&tutorial(&docs), &shadow);
    let names: Vec<&str> = policies.iter().map(|p| p.metadata.name.as_str()).collect();
    assert_eq!(names, ["api-access"]);

    let protected = format!(
        "apiVersion: k8s.otterize.com/v2beta1\nkind: ProtectedService\nmetadata: {{name: server, namespace: {NS}}}\nspec: {{name: server}}\n"
    );
    let mut docs = docs;
    docs.push(protected);
    let (policies, ..) = run(&tutorial(&docs), &shadow);
    let names: Vec<&str> = policies.iter().map(|p| p.metadata.name.as_str()).collect();
    assert_eq!(
        names,
        ["api-access", "default-deny-server", "server-access"]
    );
    let deny = policies
        .iter()
        .find(|p| p.metadata.name == "default-deny-server")
        .unwrap();
    assert_eq!(
        yaml(std::slice::from_ref(deny)),
        r#"apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-server
  namespace: otterize-tutorial-npol
  labels:
    intents.otterize.com/network-policy: server-otterize-tutorial-np-7e16db
    intents.otterize.com/network-policy-service-default-deny: 'true'
spec:
  podSelector:
    matchLabels:
      intents.otterize.com/service: server-otterize-tutorial-np-7e16db
  policyTypes:
  - Ingress
  ingress: []
"#
    );
}

#[test]
fn annotation_names_the_workload_and_dots_become_underscores() {
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p-1\n  namespace: {NS}\n  annotations: {{intents.otterize.com/service-name: my.server}}\n"
    );
    let (inv, _) = load(&[Source::new("p.yaml", pod)]);
    assert_eq!(inv.pods[0].workload, WorkloadId::new(NS, "my_server", None));
}

#[test]
fn label_changes_keep_a_former_clients_labels_as_the_operator_does() {
    let labelled = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: client-1\n  namespace: {NS}\n  labels:\n    app: client\n    intents.otterize.com/client: client-otterize-tutorial-np-699302\n    intents.otterize.com/access-server-otterize-tutorial-np-7e16db: 'true'\n"
    );
    let (inv, _) = load(&[Source::new("p.yaml", labelled)]);
    let g = generate(&inv, &Default::default());
    let desired = g.pod_labels(&inv);
    let current: std::collections::BTreeMap<_, _> = inv
        .pods
        .iter()
        .map(|p| (&p.workload, &p.metadata.labels))
        .collect();
    let changes =
        render::label_changes(&desired, |id| current.get(id).copied(), inv.workload_ids());
    assert_eq!(changes.len(), 1);
    // No ClientIntents declare its calls any more: the client keeps its labels (a client
    // rolled back must keep working) and is marked, as the operator does.
    assert!(changes[0].remove.is_empty(), "{:?}", changes[0]);
    assert_eq!(
        changes[0].annotate,
        [(
            "intents.otterize.com/all-intents-removed".to_string(),
            "true".to_string()
        )]
        .into()
    );
    // The pod keeps (gets) its identity labels, as every pod does.
    assert_eq!(
        changes[0]
            .set
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        [
            "intents.otterize.com/owner-kind",
            "intents.otterize.com/service"
        ]
    );
}

fn mk_pod(ns: &str, name: &str, annotations: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {ns}\n  annotations: {{{annotations}}}\n  labels: {{app: {name}}}\n"
    )
}

#[test]
fn dotted_workload_names_give_the_policy_names_upstream_gives() {
    // Deployment `api.v2` has the identity `api_v2`; the policies are named after the
    // Deployment's own name, which the API server accepts.
    let intents = mk_intents(
        NS,
        "client",
        "    - kubernetes: {name: api_v2}\n    - kubernetes: {name: api_v2, kind: Deployment}\n",
    );
    let (policies, diags, g, inv) = run(
        &tutorial(&[mk_deployment(NS, "api.v2"), intents]),
        &GenerateOptions {
            egress: true,
            separate_policies: true,
            ..Default::default()
        },
    );
    assert!(diags.is_empty(), "{diags:?}");
    let names: Vec<&str> = policies.iter().map(|p| p.metadata.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "api.v2-deployment-ingress",
            "api.v2-ingress",
            "client-egress"
        ]
    );
    assert!(
        names
            .iter()
            .all(|n| accord_policy::generate::is_valid_object_name(n))
    );
    // Labels keep the identity's underscore (label values may hold one; formatted identities
    // are what the selectors use).
    let labels = g.pod_labels(&inv);
    assert_eq!(
        labels[&WorkloadId::new(NS, "api_v2", Some("Deployment"))]["intents.otterize.com/service"],
        accord_policy::identity::formatted("api_v2", NS, None)
    );
    // A ProtectedService naming the Deployment (dot or underscore) gets `default-deny-api.v2`.
    for written in ["api.v2", "api_v2"] {
        let protected = format!(
            "apiVersion: k8s.otterize.com/v2beta1\nkind: ProtectedService\nmetadata: {{name: p, namespace: {NS}}}\nspec: {{name: {written}}}\n"
        );
        let (policies, ..) = run(&tutorial(&[protected]), &Default::default());
        assert_eq!(
            policies[0].metadata.name, "default-deny-api.v2",
            "{written}"
        );
        assert_eq!(
            policies[0].spec.pod_selector.match_labels["intents.otterize.com/service"],
            accord_policy::identity::formatted("api_v2", NS, None)
        );
    }
}

#[test]
fn every_generated_object_name_is_one_the_api_server_accepts() {
    use accord_policy::generate::{MAX_OBJECT_NAME, is_valid_object_name, object_name};
    let longest = "a".repeat(253);
    // (prefix, base, suffix, the name when it is kept as upstream writes it)
    let cases: &[(&str, &str, &str, Option<&str>)] = &[
        ("", "server", "-access", Some("server-access")),
        (
            "",
            "api_v2-deployment",
            "-access",
            Some("api.v2-deployment-access"),
        ),
        ("default-deny-", "api_v2", "", Some("default-deny-api.v2")),
        ("", &"b".repeat(246), "-access", None),
        ("", &"b".repeat(247), "-access", None),
        ("", &format!("{longest}-deployment"), "-access", None),
        (
            "",
            &format!("{}-statefulset", "c".repeat(63)),
            "-ingress",
            None,
        ),
        ("default-deny-", &longest, "", None),
        ("", "Billing_API", "-access", None),
        ("", "_edge_", "-egress", None),
        ("", "a__b", "-access", None),
        ("", "über-dienst", "-access", None),
        ("", "___", "-access", None),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for (prefix, base, suffix, kept) in cases {
        let name = object_name(prefix, base, suffix);
        assert!(is_valid_object_name(&name), "{base:?} → {name:?}");
        assert!(
            name.len() <= MAX_OBJECT_NAME,
            "{base:?} → {} chars",
            name.len()
        );
        assert!(name.starts_with(prefix) && name.ends_with(suffix), "{name}");
        if let Some(kept) = kept {
            assert_eq!(&name, kept);
        }
        assert!(seen.insert(name.clone()), "two bases share {name}");
    }
    // At the limit the upstream name is kept (246 + "-access" = 253 characters).
    assert_eq!(object_name("", &"b".repeat(246), "-access").len(), 253);
    assert_eq!(
        object_name("", &"b".repeat(246), "-access"),
        format!("{}-access", "b".repeat(246))
    );
    for bad in ["", "-a", "a-", "a..b", "A", "a_b", &"a".repeat(254), "a.-b"] {
        assert!(!is_valid_object_name(bad), "{bad:?}");
    }
}

#[test]
fn the_longest_workload_names_get_valid_policy_names() {
    // A bare pod may have a 253-character name; its policy name would be 264 characters.
    let name = "p".repeat(253);
    let (policies, diags, ..) = run(
        &tutorial(&[
            // Its `app` label cannot be its name (label values are at most 63 characters).
            mk_pod(NS, &name, "").replace(&format!("app: {name}"), "app: long"),
            mk_intents(
                NS,
                "client",
                &format!("    - kubernetes: {{name: {name}, kind: Pod}}\n"),
            ),
        ]),
        &Default::default(),
    );
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(policies.len(), 1);
    let got = &policies[0].metadata.name;
    assert!(
        accord_policy::generate::is_valid_object_name(got),
        "{got} ({} chars)",
        got.len()
    );
    assert!(got.ends_with("-access"));
    // The suggested ClientIntents of a fix is named after the workload, validly too.
    let yaml = accord_policy::drift::intents_yaml(
        &WorkloadId::new(NS, "api_v2", Some("Deployment")),
        &[&WorkloadId::new(NS, "server", None)],
    );
    assert!(yaml.contains("metadata:\n  name: api.v2\n"), "{yaml}");
}

#[test]
fn every_pod_gets_its_service_and_owner_kind_labels() {
    // No intents name `idle`; a pod named by the override annotation has an empty owner kind.
    let (inv, _) = load(&tutorial(&[
        mk_deployment(NS, "idle"),
        mk_pod(NS, "legacy-1", "intents.otterize.com/workload-name: legacy"),
    ]));
    let g = generate(&inv, &Default::default());
    let labels = g.pod_labels(&inv);
    let idle = &labels[&WorkloadId::new(NS, "idle", Some("Deployment"))];
    assert_eq!(
        idle.iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
        [
            ("intents.otterize.com/owner-kind", "Deployment"),
            (
                "intents.otterize.com/service",
                accord_policy::identity::formatted("idle", NS, None).as_str()
            ),
        ]
    );
    let legacy = &labels[&WorkloadId::new(NS, "legacy", None)];
    assert_eq!(legacy["intents.otterize.com/owner-kind"], "");
    assert_eq!(
        legacy["intents.otterize.com/service"],
        accord_policy::identity::formatted("legacy", NS, None)
    );
    // Every workload of the inventory is labelled.
    assert_eq!(labels.len(), inv.workload_ids().len());
}

#[test]
fn egress_selects_kind_specific_targets_by_service_label_alone() {
    let (policies, ..) = run(
        &tutorial(&[mk_intents(
            NS,
            "client",
            "    - kubernetes: {name: server, kind: Deployment}\n",
        )]),
        &GenerateOptions {
            egress: true,
            ..Default::default()
        },
    );
    let client = policies
        .iter()
        .find(|p| p.metadata.name == "client-access")
        .expect("client policy");
    // After the rule for the Service in front of it.
    let to = &client.spec.egress.as_ref().unwrap()[1].to[0];
    assert_eq!(
        serde_json::to_string(&to.pod_selector).unwrap(),
        r#"{"matchLabels":{"intents.otterize.com/service":"server-otterize-tutorial-np-7e16db"}}"#
    );
    // The server's own policy still tells kinds apart.
    let server = policies
        .iter()
        .find(|p| p.metadata.name == "server-deployment-access")
        .expect("server policy");
    assert_eq!(
        server.spec.pod_selector.match_labels["intents.otterize.com/owner-kind"],
        "Deployment"
    );
}

#[test]
fn shadow_mode_with_egress_writes_no_egress() {
    let docs = [
        mk_namespace("enforced"),
        mk_deployment("enforced", "api"),
        mk_deployment("enforced", "caller"),
        mk_intents(NS, "client", "    - kubernetes: {name: server}\n"),
        mk_intents("enforced", "caller", "    - kubernetes: {name: api}\n"),
    ];
    let opts = GenerateOptions {
        egress: true,
        shadow: true,
        enforced_namespaces: ["enforced".to_string()].into(),
        ..Default::default()
    };
    let (policies, ..) = run(&tutorial(&docs), &opts);
    let names: Vec<&str> = policies.iter().map(|p| p.metadata.name.as_str()).collect();
    assert_eq!(names, ["api-access"]);
    assert!(
        policies
            .iter()
            .all(|p| p.spec.egress.is_none()
                && !format!("{:?}", p.spec.policy_types).contains("Egress")),
        "{policies:#?}"
    );
}

#[test]
fn a_dns_server_target_admits_port_53_from_anywhere() {
    let coredns = [
        mk_namespace("kube-system"),
        mk_deployment("kube-system", "coredns"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: kube-dns, namespace: kube-system, uid: u}\nspec:\n  selector: {app: coredns}\n  ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}]\n".to_string(),
    ];
    let dns_service = |ns: &str, name: &str, app: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}, uid: u-{name}}}\nspec:\n  selector: {{app: {app}}}\n  ports: [{{name: dns, port: 53, protocol: UDP}}]\n"
        )
    };
    let mut coredns = coredns.to_vec();
    coredns.extend([
        mk_deployment("kube-system", "rke2-coredns"),
        dns_service("kube-system", "rke2-dns", "rke2-coredns"),
        mk_deployment(NS, "resolver"),
        dns_service(NS, "resolver", "resolver"),
    ]);
    let dns_rule = r#"{"ports":[{"port":53,"protocol":"UDP"},{"port":53,"protocol":"TCP"}]}"#;
    for target in [
        "kubernetes: {name: coredns.kube-system}",
        "kubernetes: {name: coredns.kube-system, kind: Deployment}",
        "service: {name: kube-dns.kube-system}",
        "kubernetes: {name: rke2-coredns.kube-system}",
        "service: {name: rke2-dns.kube-system}",
    ] {
        let mut docs = coredns.clone();
        docs.push(mk_intents(NS, "client", &format!("    - {target}\n")));
        let (policies, diags, ..) = run(&tutorial(&docs), &Default::default());
        assert!(diags.is_empty(), "{target}: {diags:?}");
        assert_eq!(policies.len(), 1, "{target}");
        let rules: Vec<String> = policies[0]
            .spec
            .ingress
            .iter()
            .flatten()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect();
        assert_eq!(rules.len(), 2, "{target}: {rules:?}");
        assert!(rules.iter().any(|r| r == dns_rule), "{target}: {rules:?}");
    }
    // Any other server gets no such rule, even behind a Service on port 53 outside kube-system.
    for target in [
        "kubernetes: {name: server}",
        "kubernetes: {name: resolver}",
        "service: {name: resolver}",
    ] {
        let mut docs = coredns.clone();
        docs.push(mk_intents(NS, "client", &format!("    - {target}\n")));
        let (policies, ..) = run(&tutorial(&docs), &Default::default());
        assert_eq!(policies.len(), 1, "{target}");
        assert_eq!(
            policies[0].spec.ingress.as_ref().unwrap().len(),
            1,
            "{target}"
        );
    }
}

#[test]
fn egress_admits_the_services_in_front_of_a_workload_target_before_it() {
    let (policies, ..) = run(
        &tutorial(&[mk_intents(
            NS,
            "client",
            "    - kubernetes: {name: server}\n",
        )]),
        &GenerateOptions {
            egress: true,
            ..Default::default()
        },
    );
    let client = policies
        .iter()
        .find(|p| p.metadata.name == "client-access")
        .expect("client policy");
    let rules: Vec<String> = client
        .spec
        .egress
        .iter()
        .flatten()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    assert_eq!(
        rules,
        [
            format!(
                r#"{{"to":[{{"podSelector":{{"matchLabels":{{"app":"server"}}}},"namespaceSelector":{{"matchLabels":{{"kubernetes.io/metadata.name":"{NS}"}}}}}}]}}"#
            ),
            format!(
                r#"{{"to":[{{"podSelector":{{"matchLabels":{{"intents.otterize.com/service":"server-otterize-tutorial-np-7e16db"}}}},"namespaceSelector":{{"matchLabels":{{"kubernetes.io/metadata.name":"{NS}"}}}}}}]}}"#
            ),
            r#"{"ports":[{"port":53,"protocol":"UDP"},{"port":53,"protocol":"TCP"}]}"#.to_string(),
        ]
    );
}

#[test]
fn a_protected_server_exposed_outside_the_cluster_gets_external_access_policies() {
    let node_port = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: server-public, namespace: {NS}, uid: uid-public}}\nspec:\n  type: NodePort\n  selector: {{app: server}}\n  ports: [{{port: 80, targetPort: http, protocol: TCP}}]\n"
    );
    let ingress = format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: web, namespace: {NS}}}\nspec:\n  rules:\n  - http:\n      paths:\n      - path: /\n        pathType: Prefix\n        backend: {{service: {{name: server, port: {{number: 80}}}}}}\n"
    );
    let intents = mk_intents(NS, "client", "    - kubernetes: {name: server}\n");
    let (policies, diags, ..) = run(
        &tutorial(&[node_port.clone(), ingress.clone(), intents.clone()]),
        &Default::default(),
    );
    assert!(diags.is_empty(), "{diags:?}");
    let names: Vec<&str> = policies.iter().map(|p| p.metadata.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "external-access-to-server",
            "external-access-to-server-public",
            "server-access"
        ]
    );
    assert_eq!(
        yaml(std::slice::from_ref(&policies[1])),
        r#"apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: external-access-to-server-public
  namespace: otterize-tutorial-npol
  labels:
    intents.otterize.com/network-policy: server-otterize-tutorial-np-7e16db
    intents.otterize.com/network-policy-external-traffic: server-otterize-tutorial-np-7e16db
  ownerReferences:
  - apiVersion: v1
    kind: Service
    name: server-public
    uid: uid-public
spec:
  podSelector:
    matchLabels:
      app: server
  policyTypes:
  - Ingress
  ingress:
  - ports:
    - port: http
      protocol: TCP
"#
    );
    // A Service target exposed by its Ingress gets one too.
    let (policies, ..) = run(
        &tutorial(&[
            ingress.clone(),
            mk_intents(NS, "client", "    - service: {name: server}\n"),
        ]),
        &Default::default(),
    );
    let names: Vec<&str> = policies.iter().map(|p| p.metadata.name.as_str()).collect();
    assert_eq!(
        names,
        ["external-access-to-server", "server-service-access"]
    );
    // An unprotected server (no intents, or shadow mode) gets none.
    let (policies, ..) = run(
        &tutorial(&[node_port.clone(), ingress.clone()]),
        &Default::default(),
    );
    assert!(policies.is_empty(), "{policies:#?}");
    let (policies, ..) = run(
        &tutorial(&[node_port, ingress, intents]),
        &GenerateOptions {
            shadow: true,
            ..Default::default()
        },
    );
    assert!(policies.is_empty(), "{policies:#?}");
}

#[test]
fn a_server_declares_its_callers_by_annotation() {
    use accord_policy::generate::called_by;
    // The forms of the value.
    let want = vec![
        WorkloadId::new("ns", "a", None),
        WorkloadId::new("other", "b", None),
    ];
    assert_eq!(called_by("a, b.other", "ns"), want);
    assert_eq!(called_by("a b.other", "ns"), want);
    assert_eq!(called_by(r#"["a", "b.other"]"#, "ns"), want);
    assert_eq!(
        called_by(
            r#"[{"name": "a"}, {"name": "b", "namespace": "other", "kind": "Deployment"}]"#,
            "ns"
        ),
        vec![
            WorkloadId::new("ns", "a", None),
            WorkloadId::new("other", "b", Some("Deployment")),
        ]
    );
    assert!(called_by("[not json", "ns").is_empty());

    // The server `server` names `client` as its caller; `client` declares nothing.
    let server = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: server-0\n  namespace: {NS}\n  labels: {{app: server-0}}\n  annotations: {{intents.otterize.com/called-by: client}}\n"
    );
    let (policies, diags, g, inv) = run(&tutorial(&[server]), &Default::default());
    assert!(diags.is_empty(), "{diags:?}");
    let names: Vec<&str> = policies.iter().map(|p| p.metadata.name.as_str()).collect();
    assert_eq!(names, ["server-0-access"]);
    let access = format!(
        "intents.otterize.com/access-{}",
        accord_policy::identity::formatted("server-0", NS, None)
    );
    let rule = &policies[0].spec.ingress.as_ref().unwrap()[0].from[0];
    assert_eq!(
        rule.pod_selector.as_ref().unwrap().match_labels[&access],
        "true"
    );
    let labels = g.pod_labels(&inv);
    assert_eq!(
        labels[&WorkloadId::new(NS, "client", Some("Deployment"))][&access],
        "true"
    );
}
