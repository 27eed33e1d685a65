//! The API server's rules for each kind, as a table of documents and the diagnostic each gives.

use crate::diagnostic::Severity;
use crate::{Source, load};

const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: a}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: c, ports: [{containerPort: 80, name: http}]}]}\n";
const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: a}\nspec: {selector: {app: web}, ports: [{port: 80, targetPort: http}]}\n";
const ANP: &str = "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {name: p}\nspec: {priority: 10, subject: {namespaces: {}}, ingress: [{name: r, action: Allow, from: [{namespaces: {}}], ports: [{portNumber: {port: 80, protocol: TCP}}]}]}\n";
const INTENTS: &str = "apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata: {name: i, namespace: a}\nspec:\n  workload: {name: web}\n  targets: [{kubernetes: {name: api, ports: [{port: 80}]}}, {service: {name: db}}, {internet: {ips: [10.0.0.0/8]}}, {kafka: {name: k, topics: [{name: t}]}}]\n";
const INTENTS_V1: &str = "apiVersion: k8s.otterize.com/v1alpha3\nkind: ClientIntents\nmetadata: {name: i, namespace: a}\nspec:\n  service: {name: web}\n  calls: [{name: api, HTTPResources: [{path: /}]}, {name: k, type: kafka, kafkaTopics: [{name: t}]}]\n";

/// Each case: a document, the text replaced in it, and the severity, field and message
/// part of its one diagnostic (None: valid). Built from the API server's rules for the
/// kind (apps/core validation, the ANP CRD's schema, the ClientIntents CRD and webhook).
#[test]
fn objects_are_validated_as_the_api_server_does() {
    use Severity::{Error, Warning};
    type Case = (
        String,
        (&'static str, &'static str),
        Option<(Severity, &'static str, &'static str)>,
    );
    let cases: Vec<Case> = vec![
        // Workloads.
        (DEPLOY.to_string(), ("", ""), None),
        (DEPLOY.to_string(), ("  selector:", "  replicas: 1\n  selector:"), None),
        (
            DEPLOY.to_string(),
            ("  selector:", "  replicas: 1\n  selectr:"),
            Some((Error, "spec.selectr", "did you mean \"selector\"")),
        ),
        (
            DEPLOY.to_string(),
            ("name: web,", "name: Web_1,"),
            Some((Error, "metadata.name", "not a valid name")),
        ),
        (
            DEPLOY.to_string(),
            ("namespace: a}", "namespace: A}"),
            Some((Error, "metadata.namespace", "not a valid namespace")),
        ),
        (
            DEPLOY.to_string(),
            ("metadata: {labels: {app: web}}", "metadata: {lables: {app: web}}"),
            Some((Error, "spec.template.metadata.lables", "did you mean \"labels\"")),
        ),
        (
            DEPLOY.to_string(),
            ("metadata: {labels: {app: web}}", "metadata: {labels: {app: web, tier: 'a b'}}"),
            Some((Error, "spec.template.metadata.labels.tier", "not a valid label value")),
        ),
        (
            DEPLOY.to_string(),
            ("metadata: {labels: {app: web}}", "metadata: {labels: {app: web, tier: 12}}"),
            Some((Error, "spec.template.metadata.labels.tier", "expected a string")),
        ),
        (
            DEPLOY.to_string(),
            ("{matchLabels: {app: web}}", "{matchLabels: {app: api}}"),
            Some((Warning, "spec.selector", "does not match the template's labels")),
        ),
        (
            DEPLOY.to_string(),
            ("{matchLabels: {app: web}}", "{}"),
            Some((Warning, "spec.selector", "empty selector")),
        ),
        (
            DEPLOY.to_string(),
            ("{matchLabels: {app: web}}", "{matchExpressions: [{key: app, operator: In}]}"),
            Some((Error, "spec.selector.matchExpressions[0].values", "non-empty")),
        ),
        (
            DEPLOY.to_string(),
            ("containerPort: 80", "containerPort: 0"),
            Some((Error, "spec.template.spec.containers[0].ports[0].containerPort", "1-65535")),
        ),
        (
            DEPLOY.to_string(),
            ("name: http}", "name: HTTP_port}"),
            Some((Error, "spec.template.spec.containers[0].ports[0].name", "not a valid port name")),
        ),
        (
            DEPLOY.to_string(),
            ("containerPort: 80,", "containerPort: 80, protocol: tcp,"),
            Some((Error, "spec.template.spec.containers[0].ports[0].protocol", "TCP, UDP or SCTP")),
        ),
        (
            DEPLOY.to_string(),
            ("containerPort: 80,", "containerPort: 80, hostPrt: 8080,"),
            Some((Warning, "spec.template.spec.containers[0].ports[0].hostPrt", "did you mean \"hostPort\"")),
        ),
        (
            DEPLOY.to_string(),
            ("spec: {containers", "spec: {restartPolicy: Never, containers"),
            Some((Warning, "spec.template.spec.restartPolicy", "use Always")),
        ),
        (
            DEPLOY.replace("apps/v1\nkind: Deployment", "batch/v1\nkind: Job").replace("  selector: {matchLabels: {app: web}}\n", ""),
            ("", ""),
            Some((Warning, "spec.template.spec.restartPolicy", "OnFailure or Never")),
        ),
        (
            DEPLOY.replace("kind: Deployment", "kind: StatefulSet"),
            ("selector:", "serviceNme: web\n  selector:"),
            Some((Error, "spec.serviceNme", "did you mean \"serviceName\"")),
        ),
        (
            DEPLOY.replace("apps/v1\nkind: Deployment", "v1\nkind: ReplicationController").replace("{matchLabels: {app: web}}", "{app: api}"),
            ("", ""),
            Some((Warning, "spec.selector", "does not match")),
        ),
        (
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec: {schedule: '* * * * *', jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: c}]}}}}}\n".to_string(),
            ("", ""),
            None,
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, ports: [{containerPort: 70000}]}]}\n".to_string(),
            ("", ""),
            Some((Error, "spec.containers[0].ports[0].containerPort", "1-65535")),
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, ports: [{containerPort: 80, name: a}, {containerPort: 81, name: a}]}]}\n".to_string(),
            ("", ""),
            Some((Error, "spec.containers[0].ports[1].name", "duplicate port name")),
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {namespace: a}\n".to_string(),
            ("", ""),
            Some((Error, "metadata.name", "missing")),
        ),
        // Services.
        (SERVICE.to_string(), ("", ""), None),
        (
            SERVICE.to_string(),
            ("name: web,", "name: 1web,"),
            Some((Error, "metadata.name", "starting with a letter")),
        ),
        (
            SERVICE.to_string(),
            ("{selector:", "{type: NodePrt, selector:"),
            Some((Error, "spec.type", "did you mean \"NodePort\"")),
        ),
        (
            SERVICE.to_string(),
            ("{selector:", "{selectr:"),
            Some((Error, "spec.selectr", "did you mean \"selector\"")),
        ),
        (
            SERVICE.to_string(),
            ("port: 80,", "port: 65536,"),
            Some((Error, "spec.ports[0].port", "1-65535")),
        ),
        (
            SERVICE.to_string(),
            ("targetPort: http", "targetPort: Http_1"),
            Some((Error, "spec.ports[0].targetPort", "not a valid port name")),
        ),
        (
            SERVICE.to_string(),
            ("targetPort: http", "targetPort: 0"),
            Some((Error, "spec.ports[0].targetPort", "1-65535")),
        ),
        (
            SERVICE.to_string(),
            ("targetPort: http", "targetPort: http, nodePort: 30000"),
            Some((Warning, "spec.ports[0].nodePort", "ClusterIP")),
        ),
        (
            SERVICE.to_string(),
            ("targetPort: http}", "targetPort: http, name: web}, {port: 81}"),
            Some((Warning, "spec.ports[1].name", "has a name")),
        ),
        (
            SERVICE.to_string(),
            ("{app: web}", "{'app/': web}"),
            Some((Error, "spec.selector.app/", "not a valid label key")),
        ),
        (
            SERVICE.to_string(),
            ("ports: [{port: 80, targetPort: http}]", "ports: {port: 80}"),
            Some((Error, "spec.ports", "expected a list")),
        ),
        // Admin policies.
        (ANP.to_string(), ("", ""), None),
        (
            ANP.to_string(),
            ("priority: 10", "priority: 1001"),
            Some((Error, "spec.priority", "0-1000")),
        ),
        (
            ANP.to_string(),
            ("priority: 10, ", ""),
            Some((Error, "spec.priority", "missing")),
        ),
        (
            ANP.to_string(),
            ("action: Allow", "action: allow"),
            Some((Error, "spec.ingress[0].action", "Allow, Deny, Pass")),
        ),
        (
            ANP.to_string(),
            ("subject: {namespaces: {}}", "subject: {}"),
            Some((Error, "spec.subject", "set one of")),
        ),
        (
            ANP.to_string(),
            ("from: [{namespaces: {}}]", "from: [{namespaces: {}, pods: {podSelector: {}}}]"),
            Some((Error, "spec.ingress[0].from[0]", "exactly one")),
        ),
        (
            ANP.to_string(),
            ("from: [{namespaces: {}}]", "from: []"),
            Some((Error, "spec.ingress[0].from", "1-100 peers")),
        ),
        (
            ANP.to_string(),
            ("portNumber: {port: 80, protocol: TCP}", "portRange: {start: 90, end: 80}"),
            Some((Error, "spec.ingress[0].ports[0].portRange.end", "at least start")),
        ),
        (
            ANP.to_string(),
            ("ingress: [{name: r, action: Allow, from: [{namespaces: {}}]", "egress: [{name: r, action: Deny, to: [{networks: [10.0.0.0/33]}]"),
            Some((Error, "spec.egress[0].to[0].networks[0]", "not a valid CIDR")),
        ),
        (
            ANP.to_string(),
            ("ingress:", "ingres:"),
            Some((Error, "spec.ingres", "did you mean \"ingress\"")),
        ),
        (
            ANP.replace("kind: AdminNetworkPolicy\nmetadata: {name: p}", "kind: BaselineAdminNetworkPolicy\nmetadata: {name: default}").replace("priority: 10, ", ""),
            ("action: Allow", "action: Pass"),
            Some((Error, "spec.ingress[0].action", "Allow, Deny")),
        ),
        (
            ANP.replace("kind: AdminNetworkPolicy", "kind: BaselineAdminNetworkPolicy").replace("priority: 10, ", ""),
            ("", ""),
            Some((Error, "metadata.name", "named \"default\"")),
        ),
        // ClientIntents.
        (INTENTS.to_string(), ("", ""), None),
        (INTENTS_V1.to_string(), ("", ""), None),
        (
            INTENTS.to_string(),
            ("workload: {name: web}", "workload: {name: 12}"),
            Some((Error, "spec.workload.name", "expected a string, found a number")),
        ),
        (
            INTENTS.to_string(),
            ("workload: {name: web}", "workload: {nme: web}"),
            Some((Error, "spec.workload.nme", "did you mean \"name\"")),
        ),
        (
            INTENTS.to_string(),
            ("targets: [{kubernetes: {name: api, ports: [{port: 80}]}}, {service: {name: db}}, {internet: {ips: [10.0.0.0/8]}}, {kafka: {name: k, topics: [{name: t}]}}]", "targets: {kubernetes: {name: api}}"),
            Some((Error, "spec.targets", "expected a list, found a mapping")),
        ),
        (
            INTENTS.to_string(),
            ("{service: {name: db}}", "{service: {name: db, prots: [{port: 5432}]}}"),
            Some((Error, "spec.targets[1].service.prots", "did you mean \"ports\"")),
        ),
        (
            INTENTS.to_string(),
            ("{name: api, ports: [{port: 80}]}", "{name: api, ports: [{port: '80'}]}"),
            Some((Error, "spec.targets[0].kubernetes.ports[0].port", "expected an integer")),
        ),
        (
            INTENTS.to_string(),
            ("{internet: {ips:", "{internet: {ip:"),
            Some((Error, "spec.targets[2].internet.ip", "did you mean \"ips\"")),
        ),
        (
            INTENTS.to_string(),
            ("topics: [{name: t}]", "topic: [{name: t}]"),
            Some((Error, "spec.targets[3].kafka.topic", "did you mean \"topics\"")),
        ),
        (
            INTENTS.to_string(),
            ("{kubernetes:", "{kubernetis:"),
            Some((Error, "spec.targets[0].kubernetis", "did you mean \"kubernetes\"")),
        ),
        (
            INTENTS.to_string(),
            ("metadata: {name: i,", "metadata: {name: I,"),
            Some((Error, "metadata.name", "not a valid name")),
        ),
        (
            INTENTS.to_string(),
            ("spec:\n", "spec:\n  workloads: []\n"),
            Some((Error, "spec.workloads", "did you mean \"workload\"")),
        ),
        (
            INTENTS_V1.to_string(),
            ("HTTPResources", "resources"),
            Some((Error, "spec.calls[0].resources", "unknown field")),
        ),
        (
            INTENTS_V1.to_string(),
            ("service: {name: web}", "service: {name: web, knd: Deployment}"),
            Some((Error, "spec.service.knd", "did you mean \"kind\"")),
        ),
    ];
    for (doc, (from, to), want) in &cases {
        assert!(doc.contains(from), "{from:?} not in {doc}");
        let text = doc.replacen(from, to, 1);
        let (inv, diags) = load(&[Source::new("k.yaml", text.as_str())]);
        let read = inv.workloads.len()
            + inv.pods.iter().filter(|p| !p.from_template).count()
            + inv.services.len()
            + inv.admin_policies.len()
            + inv.intents.len();
        match want {
            None => {
                assert!(diags.is_empty(), "{text}: {diags:?}");
                assert_eq!(read, 1, "{text}");
            }
            Some((severity, field, message)) => {
                assert_eq!(diags.len(), 1, "{text}: {diags:?}");
                let d = &diags[0];
                assert_eq!(d.severity, *severity, "{text}: {d:?}");
                assert_eq!(d.field, *field, "{text}: {d:?}");
                assert!(d.message.contains(message), "{text}: {d:?}");
                // An error leaves the object out; a warning keeps it.
                assert_eq!(read, usize::from(*severity == Warning), "{text}");
            }
        }
    }
}
