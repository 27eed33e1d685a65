//! Benchmark of the operator against the real control plane (not a timed test: it prints
//! figures). Run with `scripts/bench-operator.sh`, or
//! `cargo test --release -p accord-server --test operator_bench -- --ignored --nocapture`.
//!
//! From cold, the operator converges `Spec::LARGE` (1,500 workloads in 150 namespaces, about
//! 1,500 ClientIntents with ~9,300 calls); then single intents changes are timed until the
//! policy they produce is seen through a watch.
//!
//! Pods are created directly (one per workload, named by the `intents.otterize.com/workload-name`
//! annotation) instead of through Deployments: the controller-manager would need minutes to
//! create 1,500 ReplicaSets and Pods at its default client rate, which would measure it rather
//! than the operator. The intents are the synthetic ones without `kind: Deployment`, so client
//! and server identities are kind-less (legacy) ones, as annotated pods are.

#[path = "support/operator.rs"]
mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use accord_policy::synthetic::{Spec, manifests};
use accord_policy::{GenerateOptions, Source, generate, load};
use accord_tests::{ControlPlane, TestNamespace, wait_until};
use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{ListParams, PostParams};
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Api, Client};
use serde::Deserialize;
use serde_json::{Value, json};
use support::*;

const CONCURRENCY: usize = 48;

fn docs(sources: &[Source]) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for s in sources {
        for d in serde_yaml::Deserializer::from_str(&s.text) {
            let v = Value::deserialize(d)?;
            if !v.is_null() {
                out.push(v);
            }
        }
    }
    Ok(out)
}

/// The benchmark's cluster: namespaces, one pod and one Service per workload, the intents.
/// Namespaces, pods, Services, ClientIntents.
type Cluster = (Vec<Value>, Vec<Value>, Vec<Value>, Vec<Value>);

fn cluster() -> Result<Cluster> {
    let mut sources = manifests(&Spec::LARGE);
    for s in &mut sources {
        s.text = s.text.replace("    kind: Deployment\n", "");
    }
    let (mut namespaces, mut pods, mut services, mut intents) = (vec![], vec![], vec![], vec![]);
    for mut d in docs(&sources)? {
        match d["kind"].as_str().unwrap_or_default() {
            "Namespace" => namespaces.push(d),
            "Deployment" => {
                let name = d["metadata"]["name"].as_str().context("name")?.to_owned();
                pods.push(json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {
                        "name": format!("{name}-0"),
                        "namespace": d["metadata"]["namespace"],
                        "labels": {"app": name},
                        "annotations": {"intents.otterize.com/workload-name": name},
                    },
                    "spec": {"containers": [{"name": "main", "image": "example.invalid/app:1",
                        "ports": [{"name": "http", "containerPort": 8080}]}]},
                }));
            }
            "Service" => {
                d["metadata"]
                    .as_object_mut()
                    .context("metadata")?
                    .remove("uid");
                // Headless: the test control plane's Service IP range is far smaller than 1,500.
                d["spec"]["clusterIP"] = json!("None");
                services.push(d);
            }
            "ClientIntents" => intents.push(d),
            _ => {}
        }
    }
    Ok((namespaces, pods, services, intents))
}

async fn create_all<K>(client: &Client, items: &[Value]) -> Result<()>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    futures::stream::iter(items.iter().map(Ok::<_, anyhow::Error>))
        .try_for_each_concurrent(CONCURRENCY, |v| async move {
            let ns = v["metadata"]["namespace"].as_str().context("namespace")?;
            let obj: K = serde_json::from_value(v.clone())?;
            Api::<K>::namespaced(client.clone(), ns)
                .create(&PostParams::default(), &obj)
                .await?;
            Ok(())
        })
        .await
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The moment every wanted pod label and policy is in the cluster, seen through watches.
async fn outputs_in_place(
    client: Client,
    pod_labels: HashMap<(String, String), BTreeMap<String, String>>,
    policy_names: HashSet<(String, String)>,
) -> Instant {
    enum Seen {
        Pod(Box<Pod>),
        Policy(Box<NetworkPolicy>),
    }
    let key = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        (
            m.namespace.clone().unwrap_or_default(),
            m.name.clone().unwrap_or_default(),
        )
    };
    fn applied<K>(e: Result<Event<K>, watcher::Error>) -> Option<K> {
        match e {
            Ok(Event::Apply(k) | Event::InitApply(k)) => Some(k),
            _ => None,
        }
    }
    let pods = watcher(Api::<Pod>::all(client.clone()), watcher::Config::default())
        .map(|e| applied(e).map(|p| Seen::Pod(Box::new(p))));
    let policies = watcher(
        Api::<NetworkPolicy>::all(client),
        watcher::Config::default().labels("intents.otterize.com/network-policy"),
    )
    .map(|e| applied(e).map(|p| Seen::Policy(Box::new(p))));
    let mut events = futures::stream::select(pods.boxed(), policies.boxed());
    let (mut labelled, mut present) = (HashSet::new(), HashSet::new());
    while let Some(seen) = events.next().await {
        let Some(seen) = seen else {
            continue;
        };
        match seen {
            Seen::Pod(p) => {
                let k = key(&p.metadata);
                let have = p.metadata.labels.unwrap_or_default();
                if pod_labels
                    .get(&k)
                    .is_some_and(|want| want.iter().all(|(l, v)| have.get(l) == Some(v)))
                {
                    labelled.insert(k);
                }
            }
            Seen::Policy(p) => {
                let k = key(&p.metadata);
                if policy_names.contains(&k) {
                    present.insert(k);
                }
            }
        }
        if labelled.len() == pod_labels.len() && present.len() == policy_names.len() {
            return Instant::now();
        }
    }
    Instant::now()
}

#[tokio::test]
#[ignore = "a benchmark: run with --ignored --nocapture (scripts/bench-operator.sh)"]
async fn bench_operator_on_the_large_synthetic_cluster() -> Result<()> {
    let control_plane = ControlPlane::start().await?;
    let home = TestNamespace::create(&control_plane).await?;
    let client = home.client();
    install_crds(&home).await?;
    let account = operator_account(&home).await?;
    let (namespaces, pods, services, intents) = cluster()?;
    let calls: usize = intents
        .iter()
        .map(|i| i["spec"]["targets"].as_array().map_or(0, Vec::len))
        .sum();
    println!(
        "cluster: {} namespaces, {} pods, {} Services, {} ClientIntents with {calls} calls",
        namespaces.len(),
        pods.len(),
        services.len(),
        intents.len()
    );

    // What the core generates for the same objects: the policies to expect.
    let all: Vec<String> = [&namespaces, &pods, &services, &intents]
        .iter()
        .flat_map(|v| v.iter().map(Value::to_string))
        .collect();
    let (inv, _) = load(&[Source::new("bench.json", all.join("\n"))]);
    let generated = generate(&inv, &GenerateOptions::default());
    let expected = generated.policies.len();
    // The labels every pod must carry, by (namespace, name).
    let desired = generated.pod_labels(&inv);
    let pod_labels: HashMap<(String, String), BTreeMap<String, String>> = inv
        .pods
        .iter()
        .map(|p| {
            let key = (
                p.metadata.namespace.clone().unwrap_or_default(),
                p.metadata.name.clone(),
            );
            (key, desired.get(&p.workload).cloned().unwrap_or_default())
        })
        .collect();
    let policy_names: HashSet<(String, String)> = generated
        .policies
        .iter()
        .map(|p| {
            (
                p.metadata.namespace.clone().unwrap_or_default(),
                p.metadata.name.clone(),
            )
        })
        .collect();

    let setup = Instant::now();
    let ns_api: Api<Namespace> = Api::all(client.clone());
    futures::stream::iter(namespaces.iter().map(Ok::<_, anyhow::Error>))
        .try_for_each_concurrent(CONCURRENCY, |v| {
            let ns_api = ns_api.clone();
            async move {
                ns_api
                    .create(&PostParams::default(), &serde_json::from_value(v.clone())?)
                    .await?;
                Ok(())
            }
        })
        .await?;
    for v in &namespaces {
        let ns = v["metadata"]["name"].as_str().context("name")?;
        let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
        wait_until(
            "default ServiceAccounts",
            Duration::from_secs(120),
            || async { Ok(sa.get_opt("default").await?) },
        )
        .await?;
    }
    create_all::<Pod>(&client, &pods).await?;
    create_all::<Service>(&client, &services).await?;
    futures::stream::iter(intents.iter().map(Ok::<_, anyhow::Error>))
        .try_for_each_concurrent(CONCURRENCY, |v| {
            let client = client.clone();
            async move { apply_value(&client, v).await }
        })
        .await?;
    println!(
        "setup (creating the objects): {:.1} s",
        setup.elapsed().as_secs_f64()
    );

    // Cold start to convergence: when every generated policy and every pod's labels are in
    // the cluster (seen through watches), and when the operator says it is ready (statuses,
    // finalizers and Events written too).
    let outputs = tokio::spawn(outputs_in_place(client.clone(), pod_labels, policy_names));
    let started = Instant::now();
    let operator = Operator::start(&account, &[], &[])?;
    wait_until(
        "the operator to converge",
        Duration::from_secs(600),
        || async {
            let (_, body) = operator.http_get("/metrics").await?;
            Ok(body.contains("reconcile_ready 1").then_some(()))
        },
    )
    .await
    .with_context(|| operator.logs())?;
    let converged = started.elapsed();
    let in_place = tokio::time::timeout(Duration::from_secs(60), outputs)
        .await
        .context("policies and labels never all in place")??
        .duration_since(started);
    println!(
        "cold start: every policy and pod label in place {:.1} s after the start",
        in_place.as_secs_f64()
    );
    let policies: Api<NetworkPolicy> = Api::all(client.clone());
    // Only the synthetic cluster's namespaces: the webhook operator's probe intents live in a
    // namespace of their own (and the operator under test reconciles them too).
    let bench_namespaces: std::collections::BTreeSet<&str> = namespaces
        .iter()
        .filter_map(|v| v["metadata"]["name"].as_str())
        .collect();
    let live = policies
        .list(&ListParams::default().labels("intents.otterize.com/network-policy"))
        .await?
        .items
        .iter()
        .filter(|p| bench_namespaces.contains(p.metadata.namespace.as_deref().unwrap_or("")))
        .count();
    let (_, body) = operator.http_get("/metrics").await?;
    let cold_requests = metric(&body, "reconcile_api_requests_total");
    println!(
        "cold start: ready (statuses, finalizers, Events too) in {:.1} s (target < 60 s); {live} policies live, {expected} expected; {cold_requests} API requests ({:.0} per ClientIntents)",
        converged.as_secs_f64(),
        cold_requests / intents.len() as f64
    );
    assert_eq!(live, expected, "every generated policy is in the cluster");

    // Let the echoes of the cold start (watch events of the operator's own writes) settle.
    let subjects = |body: &str| metric(body, "reconcile_subjects_total");
    let mut previous = -1.0;
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = subjects(&operator.http_get("/metrics").await?.1);
        if now == previous {
            break;
        }
        previous = now;
    }
    println!(
        "settled {:.1} s after the start",
        started.elapsed().as_secs_f64()
    );

    // Single changes: each creates intents for a new client targeting a new server, then
    // changes that intents' target; the time is until a watch sees the resulting policy.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let watched = policies.clone();
    let watch = tokio::spawn(async move {
        let mut stream = watcher(
            watched,
            watcher::Config::default().labels("intents.otterize.com/network-policy"),
        )
        .boxed();
        while let Some(Ok(event)) = stream.next().await {
            if let Event::Apply(p) | Event::InitApply(p) = event {
                let _ = tx.send((p.metadata.name.unwrap_or_default(), Instant::now()));
            }
        }
    });
    let ns = namespaces[0]["metadata"]["name"]
        .as_str()
        .context("name")?
        .to_owned();
    let (_, before) = operator.http_get("/metrics").await?;
    let mut latencies = Vec::new();
    for i in 0..100 {
        let (client_name, server) = (format!("probe-{}", i / 2), format!("probe-server-{i}"));
        let t0 = Instant::now();
        create_intents(&client, &ns, &client_name, json!({"workload": {"name": client_name}, "targets": [{"kubernetes": {"name": server}}]}))
            .await?;
        let want = format!("{server}-access");
        loop {
            let (name, at) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .with_context(|| {
                    format!(
                        "waiting for the policy; operator log tail:\n{}",
                        tail(&operator.logs())
                    )
                })?
                .context("watch ended")?;
            if name == want {
                latencies.push(at.duration_since(t0));
                break;
            }
        }
    }
    let (_, after) = operator.http_get("/metrics").await?;
    watch.abort();
    latencies.sort();
    let requests = metric(&after, "reconcile_api_requests_total")
        - metric(&before, "reconcile_api_requests_total");
    let batches =
        metric(&after, "reconcile_batches_total") - metric(&before, "reconcile_batches_total");
    println!(
        "single change → policy: median {:.0} ms, p99 {:.0} ms, max {:.0} ms over {} changes (targets: median < 200 ms, p99 < 1 s)",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        latencies.len()
    );
    println!(
        "API requests per change: {:.1} ({requests} requests in {batches} reconcile batches: {:.1} per batch)",
        requests / latencies.len() as f64,
        requests / batches.max(1.0)
    );
    drop(operator);
    Ok(())
}
