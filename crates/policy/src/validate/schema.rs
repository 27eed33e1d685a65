//! The structure of the kinds Accord reads, as the API server's strict decoding checks it: the
//! fields each object has and the type of each. A field outside its object's list is an
//! `unknown-field` error (with the closest known name), a value of the wrong type an
//! `invalid-value` error, as `kubectl apply` (strict field validation) reports them.
//!
//! Parts Accord does not read are `Any`: their fields are the API server's business, and a list
//! kept here would go stale with every Kubernetes release.

use serde_json::Value;

use super::{Check, type_name};
use crate::diagnostic::DiagnosticCode;

/// The expected shape of a value.
#[derive(Clone, Copy)]
pub enum Shape {
    /// Anything (a part Accord does not read).
    Any,
    Str,
    Int,
    Bool,
    /// A port: a number or a name.
    IntOrStr,
    /// A mapping of strings to strings (labels, annotations, a Service's selector).
    StrMap,
    List(&'static Shape),
    /// A mapping with these fields.
    Obj(&'static [(&'static str, Shape)]),
    /// A part whose unknown fields and wrong types are warnings (errors with `--strict`): pod
    /// specs, which in manifests in use (the conformance kit's) carry misspelt fields that
    /// other tools ignore.
    Lenient(&'static Shape),
}

use Shape::{Any, Bool, Int, IntOrStr, Lenient, List, Obj, Str, StrMap};

const STRINGS: Shape = List(&Str);

pub const OWNER_REFERENCE: Shape = Obj(&[
    ("apiVersion", Str),
    ("kind", Str),
    ("name", Str),
    ("uid", Str),
    ("controller", Bool),
    ("blockOwnerDeletion", Bool),
]);

pub const METADATA: Shape = Obj(&[
    ("name", Str),
    ("namespace", Str),
    ("labels", StrMap),
    ("annotations", StrMap),
    ("uid", Str),
    ("resourceVersion", Str),
    ("generation", Int),
    ("creationTimestamp", Any),
    ("deletionTimestamp", Any),
    ("deletionGracePeriodSeconds", Int),
    ("generateName", Str),
    ("ownerReferences", List(&OWNER_REFERENCE)),
    ("finalizers", STRINGS),
    ("managedFields", Any),
    ("selfLink", Str),
]);

pub const SELECTOR: Shape = Obj(&[
    ("matchLabels", StrMap),
    (
        "matchExpressions",
        List(&Obj(&[
            ("key", Str),
            ("operator", Str),
            ("values", STRINGS),
        ])),
    ),
]);

/// An object of a kind whose `spec` has the shape `spec`.
macro_rules! object {
    ($spec:expr) => {
        Obj(&[
            ("apiVersion", Str),
            ("kind", Str),
            ("metadata", METADATA),
            ("spec", $spec),
            ("status", Any),
        ])
    };
}

const CONTAINER_PORT: Shape = Obj(&[
    ("name", Str),
    ("hostPort", Int),
    ("containerPort", Int),
    ("protocol", Str),
    ("hostIP", Str),
]);

/// A container: its ports are read, the rest is the API server's (but its field names are
/// checked, since a misspelt `ports` would hide the ports named policies resolve against).
const CONTAINER: Shape = Obj(&[
    ("name", Str),
    ("image", Str),
    ("command", STRINGS),
    ("args", STRINGS),
    ("workingDir", Str),
    ("ports", List(&CONTAINER_PORT)),
    ("envFrom", Any),
    ("env", Any),
    ("resources", Any),
    ("resizePolicy", Any),
    ("restartPolicy", Str),
    ("restartPolicyRules", Any),
    ("volumeMounts", Any),
    ("volumeDevices", Any),
    ("livenessProbe", Any),
    ("readinessProbe", Any),
    ("startupProbe", Any),
    ("lifecycle", Any),
    ("terminationMessagePath", Str),
    ("terminationMessagePolicy", Str),
    ("imagePullPolicy", Str),
    ("securityContext", Any),
    ("stdin", Bool),
    ("stdinOnce", Bool),
    ("tty", Bool),
]);

/// PodSpec's fields as of Kubernetes 1.36.
pub const POD_SPEC: Shape = Lenient(&Obj(&[
    ("volumes", Any),
    ("initContainers", List(&CONTAINER)),
    ("containers", List(&CONTAINER)),
    ("ephemeralContainers", Any),
    ("restartPolicy", Str),
    ("terminationGracePeriodSeconds", Int),
    ("activeDeadlineSeconds", Int),
    ("dnsPolicy", Str),
    ("nodeSelector", StrMap),
    ("serviceAccountName", Str),
    ("serviceAccount", Str),
    ("automountServiceAccountToken", Bool),
    ("nodeName", Str),
    ("hostNetwork", Bool),
    ("hostPID", Bool),
    ("hostIPC", Bool),
    ("shareProcessNamespace", Bool),
    ("securityContext", Any),
    ("imagePullSecrets", Any),
    ("hostname", Str),
    ("subdomain", Str),
    ("affinity", Any),
    ("schedulerName", Str),
    ("tolerations", Any),
    ("hostAliases", Any),
    ("priorityClassName", Str),
    ("priority", Int),
    ("dnsConfig", Any),
    ("readinessGates", Any),
    ("runtimeClassName", Str),
    ("enableServiceLinks", Bool),
    ("preemptionPolicy", Str),
    ("overhead", Any),
    ("topologySpreadConstraints", Any),
    ("setHostnameAsFQDN", Bool),
    ("os", Any),
    ("hostUsers", Bool),
    ("schedulingGates", Any),
    ("resourceClaims", Any),
    ("resources", Any),
    ("hostnameOverride", Str),
    ("schedulingGroup", Any),
]));

pub const POD_TEMPLATE: Shape = Obj(&[("metadata", METADATA), ("spec", POD_SPEC)]);

pub const POD: Shape = object!(POD_SPEC);

pub const DEPLOYMENT: Shape = object!(Obj(&[
    ("replicas", Int),
    ("selector", SELECTOR),
    ("template", POD_TEMPLATE),
    ("strategy", Any),
    ("minReadySeconds", Int),
    ("revisionHistoryLimit", Int),
    ("paused", Bool),
    ("progressDeadlineSeconds", Int),
]));

pub const STATEFUL_SET: Shape = object!(Obj(&[
    ("replicas", Int),
    ("selector", SELECTOR),
    ("template", POD_TEMPLATE),
    ("volumeClaimTemplates", Any),
    ("serviceName", Str),
    ("podManagementPolicy", Str),
    ("updateStrategy", Any),
    ("revisionHistoryLimit", Int),
    ("minReadySeconds", Int),
    ("persistentVolumeClaimRetentionPolicy", Any),
    ("ordinals", Any),
]));

pub const DAEMON_SET: Shape = object!(Obj(&[
    ("selector", SELECTOR),
    ("template", POD_TEMPLATE),
    ("updateStrategy", Any),
    ("minReadySeconds", Int),
    ("revisionHistoryLimit", Int),
]));

pub const REPLICA_SET: Shape = object!(Obj(&[
    ("replicas", Int),
    ("minReadySeconds", Int),
    ("selector", SELECTOR),
    ("template", POD_TEMPLATE),
]));

pub const REPLICATION_CONTROLLER: Shape = object!(Obj(&[
    ("replicas", Int),
    ("minReadySeconds", Int),
    ("selector", StrMap),
    ("template", POD_TEMPLATE),
]));

const JOB_SPEC: Shape = Obj(&[
    ("parallelism", Int),
    ("completions", Int),
    ("activeDeadlineSeconds", Int),
    ("podFailurePolicy", Any),
    ("successPolicy", Any),
    ("backoffLimit", Int),
    ("backoffLimitPerIndex", Int),
    ("maxFailedIndexes", Int),
    ("selector", SELECTOR),
    ("manualSelector", Bool),
    ("template", POD_TEMPLATE),
    ("ttlSecondsAfterFinished", Int),
    ("completionMode", Str),
    ("suspend", Bool),
    ("podReplacementPolicy", Str),
    ("managedBy", Str),
]);

pub const JOB: Shape = object!(JOB_SPEC);

pub const CRON_JOB: Shape = object!(Obj(&[
    ("schedule", Str),
    ("timeZone", Str),
    ("startingDeadlineSeconds", Int),
    ("concurrencyPolicy", Str),
    ("suspend", Bool),
    (
        "jobTemplate",
        Obj(&[("metadata", METADATA), ("spec", JOB_SPEC)])
    ),
    ("successfulJobsHistoryLimit", Int),
    ("failedJobsHistoryLimit", Int),
]));

pub const SERVICE: Shape = object!(Obj(&[
    (
        "ports",
        List(&Obj(&[
            ("name", Str),
            ("protocol", Str),
            ("appProtocol", Str),
            ("port", Int),
            ("targetPort", IntOrStr),
            ("nodePort", Int),
        ])),
    ),
    ("selector", StrMap),
    ("clusterIP", Str),
    ("clusterIPs", STRINGS),
    ("type", Str),
    ("externalIPs", STRINGS),
    ("sessionAffinity", Str),
    ("loadBalancerIP", Str),
    ("loadBalancerSourceRanges", STRINGS),
    ("externalName", Str),
    ("externalTrafficPolicy", Str),
    ("healthCheckNodePort", Int),
    ("publishNotReadyAddresses", Bool),
    ("sessionAffinityConfig", Any),
    ("ipFamilies", STRINGS),
    ("ipFamilyPolicy", Str),
    ("allocateLoadBalancerNodePorts", Bool),
    ("loadBalancerClass", Str),
    ("internalTrafficPolicy", Str),
    ("trafficDistribution", Str),
]));

const NAMESPACED_PODS: Shape = Obj(&[("namespaceSelector", SELECTOR), ("podSelector", SELECTOR)]);

const ADMIN_PORTS: Shape = List(&Obj(&[
    ("portNumber", Obj(&[("protocol", Str), ("port", Int)])),
    ("namedPort", Str),
    (
        "portRange",
        Obj(&[("protocol", Str), ("start", Int), ("end", Int)]),
    ),
]));

const ADMIN_INGRESS: Shape = Obj(&[
    ("name", Str),
    ("action", Str),
    (
        "from",
        List(&Obj(&[("namespaces", SELECTOR), ("pods", NAMESPACED_PODS)])),
    ),
    ("ports", ADMIN_PORTS),
]);

const ADMIN_EGRESS: Shape = Obj(&[
    ("name", Str),
    ("action", Str),
    (
        "to",
        List(&Obj(&[
            ("namespaces", SELECTOR),
            ("pods", NAMESPACED_PODS),
            ("nodes", SELECTOR),
            ("networks", STRINGS),
            ("domainNames", STRINGS),
        ])),
    ),
    ("ports", ADMIN_PORTS),
]);

const ADMIN_SUBJECT: Shape = Obj(&[("namespaces", SELECTOR), ("pods", NAMESPACED_PODS)]);

pub const ADMIN_NETWORK_POLICY: Shape = object!(Obj(&[
    ("priority", Int),
    ("subject", ADMIN_SUBJECT),
    ("ingress", List(&ADMIN_INGRESS)),
    ("egress", List(&ADMIN_EGRESS)),
]));

pub const BASELINE_ADMIN_NETWORK_POLICY: Shape = object!(Obj(&[
    ("subject", ADMIN_SUBJECT),
    ("ingress", List(&ADMIN_INGRESS)),
    ("egress", List(&ADMIN_EGRESS)),
]));

// ClientIntents, by version. Accord's CRD keeps unknown target fields (upstream's schema is
// open there), but a misspelt field silently widens access (`prots` → every port), so the
// fields of every target kind upstream defines are listed and anything else is refused.

const HTTP: Shape = List(&Obj(&[("path", Str), ("methods", STRINGS)]));
const TARGET_PORTS: Shape = List(&Obj(&[("port", Int), ("endPort", Int), ("protocol", Str)]));
const TOPICS: Shape = List(&Obj(&[("name", Str), ("operations", STRINGS)]));
const PRIVILEGES: Shape = List(&Obj(&[
    ("databaseName", Str),
    ("table", Str),
    ("operations", STRINGS),
]));
const INTERNET: Shape = Obj(&[
    ("domains", STRINGS),
    ("ips", STRINGS),
    ("ports", List(&Int)),
]);
const WORKLOAD: Shape = Obj(&[("name", Str), ("kind", Str)]);

const TARGET: Shape = Obj(&[
    (
        "kubernetes",
        Obj(&[
            ("name", Str),
            ("kind", Str),
            ("http", HTTP),
            ("ports", TARGET_PORTS),
        ]),
    ),
    (
        "service",
        Obj(&[("name", Str), ("http", HTTP), ("ports", TARGET_PORTS)]),
    ),
    ("kafka", Obj(&[("name", Str), ("topics", TOPICS)])),
    ("sql", Obj(&[("name", Str), ("privileges", PRIVILEGES)])),
    ("internet", INTERNET),
    ("aws", Obj(&[("arn", Str), ("actions", STRINGS)])),
    ("gcp", Obj(&[("resource", Str), ("permissions", STRINGS)])),
    (
        "azure",
        Obj(&[
            ("scope", Str),
            ("actions", STRINGS),
            ("dataActions", STRINGS),
            ("roles", STRINGS),
            ("keyVaultPolicy", Any),
        ]),
    ),
]);

pub const INTENTS_V2: Shape = object!(Obj(&[("workload", WORKLOAD), ("targets", List(&TARGET))]));

/// The fields of a v1 call (all types share one shape); `http` and `topics` name the version's
/// keys for HTTP resources and Kafka topics.
macro_rules! call {
    ($http:literal, $topics:literal) => {
        Obj(&[
            ("name", Str),
            ("type", Str),
            ("kind", Str),
            ($http, HTTP),
            ($topics, TOPICS),
            ("databaseResources", PRIVILEGES),
            ("awsActions", STRINGS),
            ("gcpPermissions", STRINGS),
            ("azureRoles", STRINGS),
            ("azureActions", STRINGS),
            ("azureDataActions", STRINGS),
            ("azureKeyVaultPolicy", Any),
            ("internet", INTERNET),
        ])
    };
}

pub const INTENTS_V1ALPHA2: Shape = object!(Obj(&[
    ("service", WORKLOAD),
    ("calls", List(&call!("resources", "topics"))),
]));

pub const INTENTS_V1: Shape = object!(Obj(&[
    ("service", WORKLOAD),
    ("calls", List(&call!("HTTPResources", "kafkaTopics"))),
]));

/// Check `value` against `shape`: unknown fields and wrong types, every one reported.
/// `null` stands for "not set" wherever it appears, as the API server reads it.
pub(super) fn check(c: &mut Check, path: &str, value: &Value, shape: &Shape) {
    let wrong = |c: &mut Check, want: &str| {
        c.error(
            DiagnosticCode::InvalidValue,
            path,
            format!("expected {want}, found {}", type_name(value)),
        )
    };
    match (shape, value) {
        (Lenient(inner), _) => {
            let was = std::mem::replace(&mut c.lenient, true);
            check(c, path, value, inner);
            c.lenient = was;
        }
        (Any, _) | (_, Value::Null) => {}
        (Str, Value::String(_))
        | (Bool, Value::Bool(_))
        | (IntOrStr, Value::String(_))
        | (Int | IntOrStr, Value::Number(_)) => {
            if let Value::Number(n) = value
                && n.as_i64().is_none()
            {
                wrong(c, "an integer");
            }
        }
        (Str, _) => wrong(c, "a string"),
        (Int, _) => wrong(c, "an integer"),
        (Bool, _) => wrong(c, "a boolean"),
        (IntOrStr, _) => wrong(c, "a number or a name"),
        (StrMap, Value::Object(map)) => {
            for (k, v) in map {
                if !v.is_string() && !v.is_null() {
                    c.error(
                        DiagnosticCode::InvalidValue,
                        &super::join(path, k),
                        format!("expected a string, found {}", type_name(v)),
                    );
                }
            }
        }
        (StrMap, _) => wrong(c, "a mapping of strings"),
        (List(item), _) => {
            for (ipath, v) in c.list(path, Some(value)) {
                check(c, &ipath, v, item);
            }
        }
        (Obj(fields), _) => {
            let known: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
            let Some(map) = c.fields(path, value, &known) else {
                return;
            };
            for (k, shape) in fields.iter() {
                if let Some(v) = map.get(*k) {
                    check(c, &super::join(path, k), v, shape);
                }
            }
        }
    }
}
