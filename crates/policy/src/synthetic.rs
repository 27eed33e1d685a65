//! Synthetic clusters for benchmarks and load tests.
//!
//! [`manifests`] writes a deterministic cluster (same spec and seed, same bytes) as YAML sources:
//! namespaces, one Deployment and one Service per workload, and one ClientIntents per client.
//! Calls stay inside their namespace most of the time and cross namespaces otherwise; a fifth of
//! them target the Service rather than the workload, as real estates mix both.

use std::fmt::Write as _;

use crate::intents::{ClientIntents, Target, TargetKind, WorkloadRef};
use crate::load::Source;

/// The shape of a synthetic cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    pub workloads: usize,
    pub namespaces: usize,
    /// Declared calls in total (client → target pairs, distinct).
    pub calls: usize,
    /// Percentage of calls that leave the client's namespace.
    pub cross_namespace_percent: u32,
    /// Percentage of calls written as Service targets.
    pub service_target_percent: u32,
    pub seed: u64,
}

impl Spec {
    /// A large real microservice estate: 1,500 workloads in 150 namespaces, ~9,300 calls.
    pub const LARGE: Spec = Spec {
        workloads: 1_500,
        namespaces: 150,
        calls: 9_300,
        cross_namespace_percent: 30,
        service_target_percent: 20,
        seed: 7,
    };

    /// Ten times [`Spec::LARGE`]: 15,000 workloads in 1,500 namespaces, 100,000 calls.
    pub const TEN_X: Spec = Spec {
        workloads: 15_000,
        namespaces: 1_500,
        calls: 100_000,
        cross_namespace_percent: 30,
        service_target_percent: 20,
        seed: 7,
    };
}

/// SplitMix64: tiny, deterministic and good enough to spread synthetic calls.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn percent(&mut self, p: u32) -> bool {
        self.below(100) < p as usize
    }
}

fn namespace_of(spec: &Spec, workload: usize) -> usize {
    workload % spec.namespaces.max(1)
}

fn workload_name(i: usize) -> String {
    format!("svc-{i:05}")
}

fn namespace_name(i: usize) -> String {
    format!("team-{i:04}")
}

/// The declared calls: (client index, server index, as a Service target), distinct pairs.
pub fn calls(spec: &Spec) -> Vec<(usize, usize, bool)> {
    let mut rng = Rng(spec.seed);
    let n = spec.workloads.max(2);
    let ns = spec.namespaces.max(1);
    let per_ns = n.div_ceil(ns);
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(spec.calls);
    let mut attempts = 0;
    while out.len() < spec.calls && attempts < spec.calls * 20 {
        attempts += 1;
        let client = rng.below(n);
        let server = if rng.percent(spec.cross_namespace_percent) || per_ns < 2 {
            rng.below(n)
        } else {
            // Workload i lives in namespace i % ns, so same-namespace peers are i ± k·ns.
            let home = namespace_of(spec, client);
            let k = rng.below(per_ns);
            let s = home + k * ns;
            if s >= n { continue } else { s }
        };
        if server == client || !seen.insert((client, server)) {
            continue;
        }
        out.push((client, server, rng.percent(spec.service_target_percent)));
    }
    out
}

/// The cluster as YAML sources: `namespaces.yaml`, `workloads.yaml` and `intents.yaml`.
pub fn manifests(spec: &Spec) -> Vec<Source> {
    let mut namespaces = String::new();
    for i in 0..spec.namespaces.max(1) {
        let _ = write!(
            namespaces,
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {}\n  labels:\n    tier: t{}\n---\n",
            namespace_name(i),
            i % 3
        );
    }
    let mut workloads = String::new();
    for i in 0..spec.workloads {
        let (name, ns) = (workload_name(i), namespace_name(namespace_of(spec, i)));
        let _ = write!(
            workloads,
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n        - name: main\n          image: example/{name}:1\n          ports:\n            - name: http\n              containerPort: 8080\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {ns}\n  uid: uid-{i}\nspec:\n  selector:\n    app: {name}\n  ports:\n    - port: 80\n      targetPort: http\n---\n"
        );
    }
    let mut by_client: Vec<Vec<(usize, bool)>> = vec![Vec::new(); spec.workloads];
    for (c, s, svc) in calls(spec) {
        by_client[c].push((s, svc));
    }
    let intents: Vec<ClientIntents> = by_client
        .iter()
        .enumerate()
        .filter(|(_, targets)| !targets.is_empty())
        .map(|(c, targets)| {
            let (name, ns) = (workload_name(c), namespace_name(namespace_of(spec, c)));
            ClientIntents {
                name: name.clone(),
                namespace: ns,
                workload: WorkloadRef {
                    name,
                    kind: Some("Deployment".into()),
                },
                targets: targets
                    .iter()
                    .map(|&(s, svc)| {
                        let (name, namespace) =
                            (workload_name(s), namespace_name(namespace_of(spec, s)));
                        let kind = if svc {
                            TargetKind::Service {
                                name,
                                namespace,
                                ports: Vec::new(),
                            }
                        } else {
                            TargetKind::Workload {
                                name,
                                namespace,
                                kind: None,
                                ports: Vec::new(),
                                kafka: false,
                            }
                        };
                        Target {
                            field: String::new(),
                            kind,
                        }
                    })
                    .collect(),
                ..ClientIntents::default()
            }
        })
        .collect();
    let intents = crate::render::intents_yaml(&intents);
    vec![
        Source::new("synthetic/namespaces.yaml", namespaces),
        Source::new("synthetic/workloads.yaml", workloads),
        Source::new("synthetic/intents.yaml", intents),
    ]
}

/// The inventory of [`applied_manifests`], built directly: the generated pod labels applied and
/// the generated policies live.
pub fn applied_inventory(spec: &Spec) -> crate::Inventory {
    let (mut inv, _) = crate::load(&manifests(spec));
    let generated = crate::generate(&inv, &Default::default());
    crate::apply_pod_labels(&mut inv, &generated);
    inv.network_policies = generated
        .policies
        .into_iter()
        .map(|policy| crate::inventory::PolicyObject {
            origin: Default::default(),
            policy,
        })
        .collect();
    inv
}

/// The cluster as Accord's operator leaves it: [`manifests`] with the generated labels in each
/// Deployment's pod template and the generated NetworkPolicies in `policies.yaml`, so servers
/// are isolated and declared calls allowed (as in a cluster, where benchmarks of evaluation and
/// sync should run; without policies every pair would be allowed).
pub fn applied_manifests(spec: &Spec) -> Vec<Source> {
    let mut sources = manifests(spec);
    let (inv, _) = crate::load(&sources);
    let generated = crate::generate(&inv, &Default::default());
    for source in &mut sources {
        if !source.path.ends_with("workloads.yaml") {
            continue;
        }
        let mut out = String::with_capacity(source.text.len() * 2);
        for doc in source.text.split_inclusive("---\n") {
            let field = |key: &str| doc.lines().find_map(|l| l.strip_prefix(key));
            let (Some(name), Some(ns)) = (field("  name: "), field("  namespace: ")) else {
                out.push_str(doc);
                continue;
            };
            if !doc.contains("kind: Deployment") {
                out.push_str(doc);
                continue;
            }
            let labels =
                generated.labels_for(&crate::WorkloadId::new(ns, name, Some("Deployment")));
            let anchor = format!("    metadata:\n      labels:\n        app: {name}\n");
            let mut with = anchor.clone();
            for (k, v) in &labels {
                let _ = writeln!(with, "        {k}: \"{v}\"");
            }
            out.push_str(&doc.replacen(&anchor, &with, 1));
        }
        source.text = out;
    }
    let policies = crate::render::policies_yaml(&generated.policies).unwrap_or_default();
    sources.push(Source::new("synthetic/policies.yaml", policies));
    sources
}

/// A realistic draft for benchmarks: the inventory's first ClientIntents with one more target,
/// a workload the client does not call yet (and not itself).
pub fn draft_with_one_more_target(inv: &crate::Inventory) -> ClientIntents {
    let mut intents = inv.intents[0].clone();
    let declared: std::collections::BTreeSet<String> = intents
        .targets
        .iter()
        .map(|t| format!("{:?}", t.kind))
        .collect();
    let server = inv
        .workload_ids()
        .into_iter()
        .map(|w| Target {
            field: String::new(),
            kind: TargetKind::Workload {
                name: w.name.clone(),
                namespace: w.namespace.clone(),
                kind: None,
                ports: Vec::new(),
                kafka: false,
            },
        })
        .find(|t| {
            !declared.contains(&format!("{:?}", t.kind))
                && !matches!(&t.kind, TargetKind::Workload { name, .. } if *name == intents.workload.name)
        })
        .expect("a workload the client does not call yet");
    intents.targets.push(server);
    intents
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Spec = Spec {
        workloads: 60,
        namespaces: 6,
        calls: 200,
        ..Spec::LARGE
    };

    #[test]
    fn applied_cluster_enforces_every_declared_call_without_drift() {
        let sources = applied_manifests(&SMALL);
        let (inv, diags) = crate::load(&sources);
        assert!(diags.is_empty(), "{diags:?}");
        assert!(!inv.network_policies.is_empty());
        let policies = |i: &crate::Inventory| {
            i.network_policies
                .iter()
                .map(|p| p.policy.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(policies(&inv), policies(&applied_inventory(&SMALL)));
        let report = crate::drift::analyze(&inv, &Default::default());
        assert!(report.items.is_empty(), "{:?}", report.items);
        let declared: Vec<_> = report.edges.iter().filter(|e| e.is_declared()).collect();
        assert!(declared.len() >= 190, "{} declared edges", declared.len());
        assert!(
            declared
                .iter()
                .all(|e| e.state == crate::drift::EdgeState::Enforced)
        );
    }

    #[test]
    fn synthetic_cluster_is_deterministic_and_loads_cleanly() {
        let a = manifests(&SMALL);
        let b = manifests(&SMALL);
        assert_eq!(a[2].text, b[2].text);
        let (inv, diags) = crate::load(&a);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(inv.workload_ids().len(), 60);
        let declared: usize = inv.intents.iter().map(|i| i.targets.len()).sum();
        assert_eq!(declared, 200);
        let g = crate::generate(&inv, &Default::default());
        assert!(g.diagnostics.is_empty(), "{:?}", g.diagnostics);
        assert!(!g.policies.is_empty());
    }
}
