//! Benchmark: evaluate the NetworkPolicies generated for a synthetic cluster, printing figures.
//!
//! `cargo bench -p accord-policy --bench evaluate` runs the large estate (1,500 workloads, 9,300
//! calls) and ten times that (15,000 workloads in 1,500 namespaces, 100,000 calls). The generated
//! policies (one per protected workload) and pod labels are applied to the inventory first, as the
//! operator would in a cluster; then the timed part compiles the policies and lists every allowed
//! connection. Each size runs in its own process so the peak resident memory reported is that
//! size's alone (it includes loading and generation, which happen before evaluation).
//!
//! The `-admin` sizes add an AdminNetworkPolicy and a BaselineAdminNetworkPolicy whose subject
//! is every pod.
//!
//! `… --bench evaluate -- scaling` also prints how the cost grows with workloads and policies.

mod support;

use std::time::Instant;

use accord_policy::evaluate::Peer;
use accord_policy::inventory::PolicyObject;
use accord_policy::synthetic::{self, Spec};
use accord_policy::{Evaluator, Inventory, Naming};

use support::{disable_transparent_huge_pages, ms, peak_rss_mib};

struct Figures {
    compile: f64,
    list: f64,
    workload_pairs: usize,
    external_lines: usize,
}

fn measure(inv: &Inventory, rounds: usize) -> Figures {
    let mut best = Figures {
        compile: f64::INFINITY,
        list: f64::INFINITY,
        workload_pairs: 0,
        external_lines: 0,
    };
    for _ in 0..rounds {
        let t0 = Instant::now();
        let eval = Evaluator::new(inv);
        let t1 = Instant::now();
        let c = eval.connectivity(Naming::Workload);
        let t2 = Instant::now();
        best.compile = best.compile.min(ms(t1 - t0));
        best.list = best.list.min(ms(t2 - t1));
        best.workload_pairs = c
            .connections
            .iter()
            .filter(|c| matches!((&c.src, &c.dst), (Peer::Workload(_), Peer::Workload(_))))
            .count();
        best.external_lines = c.connections.len() - best.workload_pairs;
        std::hint::black_box(c);
    }
    best
}

/// Admin policies on top: a BaselineAdminNetworkPolicy denying ingress from every namespace
/// (where no NetworkPolicy decides) and an AdminNetworkPolicy letting the first namespace (a
/// monitoring team) scrape every pod on 9090. Every pod is the subject of both.
fn add_admin_policies(inv: &mut Inventory) {
    let first = inv.namespaces.keys().next().cloned().unwrap_or_default();
    let specs = [
        (
            false,
            format!(
                "{{priority: 10, subject: {{namespaces: {{}}}}, ingress: [{{action: Allow, from: [{{namespaces: {{matchLabels: {{kubernetes.io/metadata.name: {first}}}}}}}], ports: [{{portNumber: {{protocol: TCP, port: 9090}}}}]}}]}}"
            ),
        ),
        (
            true,
            "{subject: {namespaces: {}}, ingress: [{action: Deny, from: [{namespaces: {}}]}]}"
                .to_string(),
        ),
    ];
    for (i, (baseline, spec)) in specs.into_iter().enumerate() {
        let mut policy: accord_policy::objects::AdminNetworkPolicy = Default::default();
        policy.metadata.name = format!("admin-{i}");
        policy.spec = serde_yaml::from_str(&spec).expect("valid spec");
        inv.admin_policies
            .push(accord_policy::inventory::AdminPolicyObject {
                origin: Default::default(),
                baseline,
                policy,
            });
    }
}

fn run(label: &str, spec: &Spec, rounds: usize, admin: bool) {
    let mut inv = synthetic::applied_inventory(spec);
    if admin {
        add_admin_policies(&mut inv);
    }
    let f = measure(&inv, rounds);
    println!(
        "{label}: {} workloads, {} namespaces, {} policies, {} admin policies -> {} allowed workload pairs (+{} external lines)",
        spec.workloads,
        spec.namespaces,
        inv.network_policies.len(),
        inv.admin_policies.len(),
        f.workload_pairs,
        f.external_lines
    );
    println!(
        "  best of {rounds}: compile {:.0} ms, connectivity list {:.0} ms, total {:.0} ms; peak RSS {:.0} MiB",
        f.compile,
        f.list,
        f.compile + f.list,
        peak_rss_mib()
    );
}

/// Vary one dimension at a time: workloads (with calls per workload fixed) and policies (with
/// workloads fixed, by dropping generated policies).
fn scaling() {
    println!("scaling with workloads (6.2 calls per workload, 10 per namespace):");
    for n in [1_500, 3_000, 6_000, 12_000] {
        let spec = Spec {
            workloads: n,
            namespaces: n / 10,
            calls: n * 62 / 10,
            ..Spec::LARGE
        };
        let inv = synthetic::applied_inventory(&spec);
        let f = measure(&inv, 2);
        println!(
            "  {n:>6} workloads, {:>6} policies: {:>7.0} ms ({} pairs)",
            inv.network_policies.len(),
            f.compile + f.list,
            f.workload_pairs
        );
    }
    println!("scaling with policies (6,000 workloads; extra policies each admit one more caller):");
    let base = synthetic::applied_inventory(&Spec {
        workloads: 6_000,
        namespaces: 600,
        calls: 37_200,
        ..Spec::LARGE
    });
    for extra in [0, 6_000, 12_000, 24_000] {
        let mut inv = base.clone();
        add_extra_policies(&mut inv, extra);
        let f = measure(&inv, 2);
        println!(
            "  {:>6} policies: {:>7.0} ms ({} pairs)",
            inv.network_policies.len(),
            f.compile + f.list,
            f.workload_pairs
        );
    }
}

/// Time the drift analysis (generation, evaluation, declared versus allowed, drift items) that
/// `accord serve` runs on every sync pass.
fn drift(label: &str, spec: &Spec) {
    let inv = synthetic::applied_inventory(spec);
    let mut times = Vec::new();
    let mut edges = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let report = accord_policy::drift::analyze(&inv, &Default::default());
        times.push(t.elapsed());
        edges = report.edges.len();
    }
    times.sort();
    println!(
        "drift {label}: {} workloads, {} policies: analyze median {:.0} ms (min {:.0} ms), {edges} edges, peak RSS {:.0} MiB",
        spec.workloads,
        inv.network_policies.len(),
        ms(times[times.len() / 2]),
        ms(times[0]),
        peak_rss_mib()
    );
}

/// Add `n` policies, each selecting one workload's pods by their `app` label and admitting one
/// other workload on one port (chosen deterministically).
fn add_extra_policies(inv: &mut Inventory, n: usize) {
    let pods: Vec<(String, String)> = inv
        .pods
        .iter()
        .filter_map(|p| {
            Some((
                p.namespace().to_string(),
                p.metadata.labels.get("app")?.clone(),
            ))
        })
        .collect();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = |m: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % m as u64) as usize
    };
    for i in 0..n {
        let (ns, app) = &pods[next(pods.len())];
        let (cns, capp) = &pods[next(pods.len())];
        let spec = format!(
            "{{podSelector: {{matchLabels: {{app: {app}}}}}, ingress: [{{from: [{{namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {cns}}}}}, podSelector: {{matchLabels: {{app: {capp}}}}}}}], ports: [{{port: {}}}]}}]}}",
            9000 + i % 100
        );
        let mut policy: accord_policy::objects::NetworkPolicy = Default::default();
        policy.metadata.name = format!("extra-{i}");
        policy.metadata.namespace = Some(ns.clone());
        policy.spec = serde_yaml::from_str(&spec).expect("valid spec");
        inv.network_policies.push(PolicyObject {
            origin: Default::default(),
            policy,
        });
    }
}

fn main() {
    disable_transparent_huge_pages();
    // `cargo bench` passes `--bench`; a size argument selects one size (used for per-size RSS).
    let size = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    match size.as_deref() {
        Some("large") => run("large estate", &Spec::LARGE, 5, false),
        Some("10x") => run("ten times larger", &Spec::TEN_X, 3, false),
        Some("large-admin") => run("large estate with admin policies", &Spec::LARGE, 5, true),
        Some("10x-admin") => run(
            "ten times larger with admin policies",
            &Spec::TEN_X,
            3,
            true,
        ),
        Some("scaling") => scaling(),
        Some("10x-drift") => drift("ten times larger", &Spec::TEN_X),
        Some("large-drift") => drift("large estate", &Spec::LARGE),
        _ => {
            let exe = std::env::current_exe().expect("own path");
            for size in [
                "large",
                "10x",
                "large-admin",
                "10x-admin",
                "large-drift",
                "10x-drift",
            ] {
                let status = std::process::Command::new(&exe)
                    .arg(size)
                    .status()
                    .expect("run bench");
                assert!(status.success());
            }
        }
    }
}
