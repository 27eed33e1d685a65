//! Sync: the index's objects → the core's drift analysis → SQLite and the in-memory view.
//!
//! A pass builds the inventory from a snapshot of the index, runs [`drift::analyze`], compares
//! the edges with the stored ones (keeping `first_seen`, moving `last_changed`, logging access
//! granted or revoked and by which changed objects), and writes everything in one transaction.
//! Only after the commit does the in-memory state move on, so a failed or interrupted pass is
//! simply redone from the source.
//!
//! Size: a pass is one computation (inventory, analysis, edge comparison, change attribution,
//! view) whose parts share the pass's snapshot; the SQL is in `store.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use accord_api as api;
use accord_policy::drift::changes::{ChangeKind, PairFacts};
use accord_policy::drift::{self, EdgeReport, Report};
use accord_policy::{Inventory, WorkloadId};
use serde::{Deserialize, Serialize};

use super::metrics::Phases;
use super::now_rfc3339;
use super::store::{self, ChangeRow, EdgeRow, ObjectKey, Pass, Store};
use crate::cluster::Index;
use crate::settings;

/// What the API knows about a workload beyond its node.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WorkloadExtra {
    pub policies: Vec<api::ObjectRef>,
    pub intents: Vec<api::ObjectRef>,
    pub labels: BTreeMap<String, String>,
}

/// The current graph, drift and inventory, as the HTTP API serves them.
#[derive(Debug, Default)]
pub struct View {
    /// Sorted by id.
    pub nodes: Vec<api::Node>,
    pub extras: Vec<WorkloadExtra>,
    /// Sorted by (source, target).
    pub edges: Vec<api::Edge>,
    /// Parallel to `edges`.
    pub explanations: Vec<api::EdgeExplanation>,
    /// Edge indices by source and by target node id.
    pub out_edges: HashMap<String, Vec<usize>>,
    pub in_edges: HashMap<String, Vec<usize>>,
    pub drift: Vec<api::DriftItem>,
    /// The core's drift items (with the drafts their fixes apply), parallel to `drift`; empty
    /// when the view was loaded from the database.
    pub drift_core: Vec<drift::DriftItem>,
    /// What generation produced in the pass (absent when loaded from the database).
    pub generated: Option<Arc<accord_policy::generate::Generated>>,
    /// Each drift item's owner, computed on first request (parallel to `drift`).
    pub drift_owners: std::sync::OnceLock<Vec<String>>,
    /// Verdicts of the fixes checked so far, by item key.
    pub fix_verdicts: std::sync::Mutex<HashMap<String, api::FixVerdict>>,
    pub run: i64,
    pub synced_at: Option<String>,
    pub diagnostics: Vec<api::Diagnostic>,
    /// The objects of the last pass (absent when the view was loaded from the database).
    pub index: Option<Arc<Index>>,
    pub inventory: Option<Arc<Inventory>>,
    /// The inventory's policies compiled, on the first what-if of the pass (what-ifs patch them
    /// instead of compiling again); not during the pass, whose peak memory it would raise.
    pub prepared: std::sync::OnceLock<Arc<accord_policy::evaluate::Prepared>>,
    /// The generation settings the pass compared with, and where they came from.
    pub settings: settings::InUse,
    /// The unfiltered graph as JSON, serialized on first request.
    pub default_graph: std::sync::OnceLock<axum::body::Bytes>,
    /// The unfiltered graph aggregated to namespaces as JSON, serialized on first request.
    pub namespace_graph: std::sync::OnceLock<axum::body::Bytes>,
    /// Other graph queries' JSON, by normalized query (at most [`GRAPH_CACHE_LIMIT`]).
    pub graph_cache: std::sync::Mutex<HashMap<String, axum::body::Bytes>>,
    /// Graph answers compressed, by query key and content encoding: the graph is compressed
    /// once per pass, not on every request (30 MB of JSON at 15,000 workloads).
    pub compressed_graphs: std::sync::Mutex<HashMap<(String, &'static str), axum::body::Bytes>>,
}

/// How many filtered graph queries a pass keeps serialized.
pub const GRAPH_CACHE_LIMIT: usize = 64;

/// A graph query in one form whatever the order, repetition or spacing of its lists.
pub fn graph_key(q: &api::GraphQuery, level: &str) -> String {
    let list = |v: &Option<String>| -> String {
        v.as_deref().map_or_else(
            || "-".to_string(),
            |s| {
                let set: BTreeSet<&str> = s.split(',').map(str::trim).collect();
                set.into_iter().collect::<Vec<_>>().join(",")
            },
        )
    };
    format!(
        "{level}|{}|{}|{}|{}",
        list(&q.namespace),
        list(&q.state),
        q.workload.as_deref().unwrap_or("-"),
        if q.workload.is_some() {
            q.depth.unwrap_or(1).min(10)
        } else {
            0
        }
    )
}

impl View {
    /// The JSON of a graph query, from the cache of this pass or computed by `make` (and kept,
    /// while the cache has room; errors are not kept).
    pub fn cached_graph<E>(
        &self,
        q: &api::GraphQuery,
        level: &str,
        make: impl FnOnce() -> Result<axum::body::Bytes, E>,
    ) -> Result<axum::body::Bytes, E> {
        let key = graph_key(q, level);
        let lock = |c: &std::sync::Mutex<HashMap<String, axum::body::Bytes>>| {
            c.lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&key)
                .cloned()
        };
        if let Some(b) = lock(&self.graph_cache) {
            return Ok(b);
        }
        let bytes = make()?;
        let mut cache = self.graph_cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() < GRAPH_CACHE_LIMIT {
            cache.insert(key, bytes.clone());
        }
        Ok(bytes)
    }

    /// `bytes` (the graph answer under `key`) compressed with `encoding`, computed once per
    /// pass (for at most twice [`GRAPH_CACHE_LIMIT`] answers; later ones are compressed anew).
    pub fn compressed_graph(
        &self,
        key: String,
        encoding: &'static str,
        compress: impl FnOnce() -> axum::body::Bytes,
    ) -> axum::body::Bytes {
        let cache = || {
            self.compressed_graphs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
        };
        if let Some(b) = cache().get(&(key.clone(), encoding)) {
            return b.clone();
        }
        let bytes = compress();
        let mut cache = cache();
        if cache.len() < 2 * GRAPH_CACHE_LIMIT {
            cache.insert((key, encoding), bytes.clone());
        }
        bytes
    }

    pub fn node(&self, id: &str) -> Option<usize> {
        self.nodes.binary_search_by(|n| n.id.as_str().cmp(id)).ok()
    }

    fn link(&mut self) {
        self.out_edges.clear();
        self.in_edges.clear();
        for (i, e) in self.edges.iter().enumerate() {
            self.out_edges.entry(e.source.clone()).or_default().push(i);
            self.in_edges.entry(e.target.clone()).or_default().push(i);
        }
    }

    /// The view stored by an earlier process, served until this one's first pass.
    pub fn from_stored(v: store::StoredView) -> View {
        let mut nodes = Vec::new();
        let mut extras = Vec::new();
        for (node, detail) in v.nodes {
            if let Ok(n) = serde_json::from_str::<api::Node>(&node) {
                nodes.push(n);
                extras.push(serde_json::from_str(&detail).unwrap_or_default());
            }
        }
        let mut edges = Vec::new();
        let mut explanations = Vec::new();
        for (row, expl) in v.edges {
            edges.push(api::Edge {
                source: row.source,
                target: row.target,
                state: row.state,
                ports: row.ports,
                declared_ports: row.declared_ports,
                declared: row.declared,
                allowed: row.allowed,
                first_seen: Some(row.first_seen),
                last_changed: Some(row.last_changed),
            });
            explanations.push(serde_json::from_str(&expl).unwrap_or_default());
        }
        let mut view = View {
            nodes,
            extras,
            edges,
            explanations,
            drift: v
                .drift
                .iter()
                .filter_map(|d| serde_json::from_str::<api::DriftItem>(d).ok())
                .map(|mut d| {
                    d.first_seen = v.drift_seen.get(&d.key).cloned();
                    d
                })
                .collect(),
            run: v.run.as_ref().map(|r| r.0).unwrap_or(0),
            synced_at: v.run.map(|r| r.1),
            ..View::default()
        };
        view.link();
        view
    }
}

/// The API's edge and explanation of a report's edge, which it consumes (a pass converts
/// 145,000 edges at 15,000 workloads: each report edge is freed as it is converted).
pub fn edge_to_api(e: EdgeReport) -> (api::Edge, api::EdgeExplanation) {
    // The facts the history compares are the edge's own fields: one definition of them.
    let facts = PairFacts::of(&e);
    let declared = e.is_declared();
    let edge = api::Edge {
        source: e.source.to_string(),
        target: e.target.to_string(),
        state: facts.state,
        ports: facts.ports,
        declared_ports: facts.declared_ports,
        declared,
        allowed: facts.allowed,
        first_seen: None,
        last_changed: None,
    };
    let explanation = api::EdgeExplanation {
        summary: e.summary,
        declared_by: e.declared_by.into_iter().map(|d| d.intents).collect(),
        ingress_isolated_by: e
            .ingress_isolated_by
            .iter()
            .map(|p| p.to_string())
            .collect(),
        ..Default::default()
    };
    (edge, explanation)
}

pub fn drift_item_to_api(i: &drift::DriftItem) -> api::DriftItem {
    api::DriftItem {
        key: i.key.clone(),
        kind: i.kind,
        severity: i.severity,
        rule: i.rule.clone(),
        namespace: i.namespace.clone(),
        workload: i.workload.as_ref().map(WorkloadId::to_string),
        source: i.source.as_ref().map(WorkloadId::to_string),
        target: i.target.as_ref().map(WorkloadId::to_string),
        object: i.object.clone(),
        explanation: i.explanation.clone(),
        fix: match &i.fix {
            Some(f) => api::SuggestedFix {
                description: f.description.clone(),
                kind: Some(f.kind),
                yaml: f.yaml.clone(),
                diff: f.diff.clone(),
                ..Default::default()
            },
            None => api::SuggestedFix {
                description: i.advice.clone(),
                ..Default::default()
            },
        },
        edge_counts: i.edge_counts(),
        edges: i
            .edges
            .iter()
            .map(|e| api::AffectedEdge {
                source: e.source.to_string(),
                target: e.target.to_string(),
                state: e.state,
                denied_once_applied: e.denied_once_applied,
            })
            .collect(),
        owner: String::new(),
        first_seen: None,
        acknowledged: None,
        fingerprint: i.fingerprint.clone(),
    }
}

/// The workloads a drift item concerns: its workload and every end of its edges.
pub fn drift_item_workloads(i: &api::DriftItem) -> BTreeSet<&str> {
    let mut out: BTreeSet<&str> = [&i.workload, &i.source, &i.target]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    for e in &i.edges {
        out.insert(&e.source);
        out.insert(&e.target);
    }
    out
}

/// Build the view of a report (without timestamps, which the pass fills in), consuming it so
/// that the report and the view are never both whole in memory.
pub fn view_of(report: Report) -> View {
    let Report {
        workloads,
        edges,
        items,
        generated,
        diagnostics,
    } = report;
    let drift: Vec<api::DriftItem> = items.iter().map(drift_item_to_api).collect();
    let mut drift_count: HashMap<&str, u32> = HashMap::new();
    for i in &drift {
        for w in drift_item_workloads(i) {
            *drift_count.entry(w).or_default() += 1;
        }
    }
    // Workload ids sort as WorkloadId, which may differ from their string order.
    let mut workloads = workloads;
    workloads.sort_by_cached_key(|w| w.id.to_string());
    let mut nodes = Vec::with_capacity(workloads.len());
    let mut extras = Vec::with_capacity(workloads.len());
    for w in workloads {
        let id = w.id.to_string();
        nodes.push(api::Node {
            ingress_isolated: !w.ingress_isolated_by.is_empty(),
            has_intents: !w.intents.is_empty(),
            pods: w.pods,
            drift: drift_count.get(id.as_str()).copied().unwrap_or(0),
            kind: w.id.kind.unwrap_or_default(),
            namespace: w.id.namespace,
            name: w.id.name,
            id,
        });
        extras.push(WorkloadExtra {
            policies: w
                .selected_by
                .iter()
                .map(|p| api::ObjectRef {
                    kind: "NetworkPolicy".into(),
                    namespace: p.namespace.clone(),
                    name: p.name.clone(),
                    ..Default::default()
                })
                .collect(),
            intents: w.intents,
            labels: w.labels,
        });
    }

    let mut pairs: Vec<(api::Edge, api::EdgeExplanation)> =
        edges.into_iter().map(edge_to_api).collect();
    pairs.sort_by(|a, b| (&a.0.source, &a.0.target).cmp(&(&b.0.source, &b.0.target)));
    let (edges, explanations) = pairs.into_iter().unzip();
    let mut view = View {
        nodes,
        extras,
        edges,
        explanations,
        drift,
        drift_core: items,
        generated: Some(Arc::new(generated)),
        diagnostics,
        ..View::default()
    };
    view.link();
    view
}

/// A hash of an object's JSON form, computed without building the text. It is stored in
/// SQLite and compared across processes and builds, so it is FNV-1a (64-bit), fixed by its
/// definition, never std's `DefaultHasher`, whose algorithm may change between Rust releases.
fn hash_object(object: &serde_json::Value) -> i64 {
    struct Fnv1a(u64);
    impl std::io::Write for Fnv1a {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            for b in buf {
                self.0 ^= u64::from(*b);
                self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = Fnv1a(0xcbf2_9ce4_8422_2325);
    // Writing JSON into a hasher cannot fail.
    let _ = serde_json::to_writer(&mut w, object);
    w.0 as i64
}

/// The objects changed by a pass, indexed so that attributing an edge costs only the objects its
/// explanation names and those of its two namespaces (a first pass changes every object).
struct Changed {
    /// "Kind namespace/name" in change order.
    names: Vec<String>,
    position: HashMap<String, usize>,
    /// Positions of the objects in a namespace, and of the Namespace objects themselves.
    by_namespace: HashMap<String, Vec<usize>>,
    namespaces: HashMap<String, usize>,
}

/// At most this many objects are named per change-log entry.
const CHANGED_BY_LIMIT: usize = 8;

impl Changed {
    fn new(keys: &[&ObjectKey]) -> Changed {
        let mut c = Changed {
            names: Vec::with_capacity(keys.len()),
            position: HashMap::with_capacity(keys.len()),
            by_namespace: HashMap::new(),
            namespaces: HashMap::new(),
        };
        for (i, k) in keys.iter().enumerate() {
            let name = format!("{} {}/{}", k.0, k.1, k.2);
            c.position.insert(name.clone(), i);
            c.names.push(name);
            c.by_namespace.entry(k.1.clone()).or_default().push(i);
            if k.0 == "Namespace" {
                c.namespaces.insert(k.2.clone(), i);
            }
        }
        c
    }

    /// The objects that plausibly decided an edge: those its explanation names, else the
    /// objects changed in either end's namespace (and those namespaces), in change order.
    fn of(&self, edge: &api::Edge, explanation: Option<&api::EdgeExplanation>) -> Vec<String> {
        if self.names.is_empty() {
            return Vec::new();
        }
        let mut hits: Vec<usize> = Vec::new();
        if let Some(x) = explanation {
            let named = x
                .declared_by
                .iter()
                .map(|o| format!("{} {}/{}", o.kind, o.namespace, o.name))
                .chain(
                    x.ingress_isolated_by
                        .iter()
                        .map(|p| format!("NetworkPolicy {p}")),
                );
            hits.extend(named.filter_map(|n| self.position.get(&n).copied()));
        }
        if hits.is_empty() {
            let ns = |id: &str| id.split('/').next().unwrap_or("").to_string();
            let (sn, tn) = (ns(&edge.source), ns(&edge.target));
            let mut spaces = vec![sn.as_str()];
            if tn != sn {
                spaces.push(tn.as_str());
            }
            for n in spaces {
                let objects = self.by_namespace.get(n).map_or(&[][..], |v| &v[..]);
                hits.extend(objects.iter().take(CHANGED_BY_LIMIT).copied());
                hits.extend(self.namespaces.get(n).copied());
            }
        }
        hits.sort_unstable();
        hits.dedup();
        hits.truncate(CHANGED_BY_LIMIT);
        hits.into_iter().map(|i| self.names[i].clone()).collect()
    }
}

/// The facts of a stored edge, to compare with a new analysis.
fn stored_facts(row: &EdgeRow) -> PairFacts {
    PairFacts {
        state: row.state,
        allowed: row.allowed,
        ports: row.ports.clone(),
        declared_ports: row.declared_ports.clone(),
    }
}

/// The facts of an edge of this pass.
fn edge_facts(e: &api::Edge) -> PairFacts {
    PairFacts {
        state: e.state,
        allowed: e.allowed,
        ports: e.ports.clone(),
        declared_ports: e.declared_ports.clone(),
    }
}

/// The one history entry of a database's first pass: no pair, `by` says how many calls were
/// found.
fn initial_sync_entry(calls: usize) -> ChangeRow {
    ChangeRow {
        workload: String::new(),
        source: String::new(),
        target: String::new(),
        change: ChangeKind::InitialSync,
        before: None,
        after: None,
        by: vec![format!("{calls} calls found")],
    }
}

/// The outcome of computing a pass, before it is written.
pub struct Computed {
    pub pass: Pass,
    pub view: View,
    pub edges: HashMap<(String, String), EdgeRow>,
    pub hashes: HashMap<ObjectKey, i64>,
    /// How long inventory, analysis and comparison took (`write` is zero until written).
    pub phases: Phases,
}

/// Compute a pass: pure apart from the clock. `edges` and `hashes` are what the database holds.
pub fn compute(
    index: Arc<Index>,
    prev_edges: &HashMap<(String, String), EdgeRow>,
    prev_hashes: &HashMap<ObjectKey, i64>,
    settings: &settings::Source,
    source: &str,
) -> Computed {
    let started_at = now_rfc3339();
    let clock = std::time::Instant::now();
    let configmap = settings
        .operator_namespace
        .as_deref()
        .and_then(|ns| index.get("ConfigMap", ns, settings::CONFIGMAP));
    let in_use = settings.resolve(configmap);
    let opts = &in_use.options;
    let (inv, mut diags) = index.inventory();
    let inventory_done = clock.elapsed();
    tracing::info!(
        pods = inv.pods.len(),
        intents = inv.intents.len(),
        policies = inv.network_policies.len(),
        seconds = clock.elapsed().as_secs_f64(),
        "sync: inventory built"
    );
    let report = drift::analyze(&inv, opts);
    let analysis_done = clock.elapsed();
    tracing::info!(
        edges = report.edges.len(),
        drift = report.items.len(),
        seconds = clock.elapsed().as_secs_f64(),
        "sync: access analyzed"
    );
    let mut view = view_of(report);
    diags.append(&mut view.diagnostics);
    view.diagnostics = diags;
    let now = now_rfc3339();

    // Objects: write what changed since the stored pass.
    let mut hashes = HashMap::with_capacity(index.len());
    let mut upsert = Vec::new();
    for (key, entry) in index.iter() {
        let h = hash_object(&entry.object);
        if prev_hashes.get(key) != Some(&h) {
            upsert.push((key.clone(), h, entry.origin.to_string()));
        }
        hashes.insert(key.clone(), h);
    }
    let deleted: Vec<ObjectKey> = prev_hashes
        .keys()
        .filter(|k| !hashes.contains_key(*k))
        .cloned()
        .collect();
    let changed_keys: Vec<&ObjectKey> = upsert.iter().map(|u| &u.0).chain(&deleted).collect();
    let changed = Changed::new(&changed_keys);

    // Edges: keep first_seen, move last_changed, log changes.
    let mut edges: HashMap<(String, String), EdgeRow> = HashMap::with_capacity(view.edges.len());
    let mut edges_upsert = Vec::new();
    let mut changes = Vec::new();
    // The first pass of a database sees every pair appear: one "initial sync" entry says so,
    // rather than one entry per pair, each "by" every object of the source (so no pair's
    // attribution is worked out).
    let initial = prev_edges.is_empty() && prev_hashes.is_empty();
    let mut initial_calls = 0;
    for (position, (e, x)) in view.edges.iter_mut().zip(&view.explanations).enumerate() {
        let key = (e.source.clone(), e.target.clone());
        let before = prev_edges.get(&key);
        let kind = ChangeKind::between(before.map(stored_facts).as_ref(), Some(&edge_facts(e)));
        let first_seen = before.map_or_else(|| now.clone(), |b| b.first_seen.clone());
        let last_changed = match (before, kind) {
            (Some(b), None) => b.last_changed.clone(),
            _ => now.clone(),
        };
        e.first_seen = Some(first_seen);
        e.last_changed = Some(last_changed);
        let row = edge_row(e);
        match kind {
            Some(_) if initial => initial_calls += 1,
            Some(change) => changes.push(ChangeRow {
                workload: e.target.clone(),
                source: e.source.clone(),
                target: e.target.clone(),
                change,
                before: before.map(|b| b.state),
                after: Some(e.state),
                by: changed.of(e, Some(x)),
            }),
            None => {}
        }
        // The explanation text can change without the state (a renamed file): rewrite the row
        // whenever it is new or anything stored differs.
        if before != Some(&row) || kind.is_some() {
            edges_upsert.push(position);
        }
        edges.insert(key, row);
    }
    let mut edges_delete = Vec::new();
    for (key, b) in prev_edges {
        if edges.contains_key(key) {
            continue;
        }
        edges_delete.push(key.clone());
        let gone = api::Edge {
            source: key.0.clone(),
            target: key.1.clone(),
            state: b.state,
            ports: String::new(),
            declared_ports: String::new(),
            declared: false,
            allowed: false,
            first_seen: None,
            last_changed: None,
        };
        let Some(change) = ChangeKind::between(Some(&stored_facts(b)), None) else {
            continue;
        };
        changes.push(ChangeRow {
            workload: key.1.clone(),
            source: key.0.clone(),
            target: key.1.clone(),
            change,
            before: Some(b.state),
            after: None,
            by: changed.of(&gone, None),
        });
    }
    changes.sort_by(|a, b| (&a.target, &a.source).cmp(&(&b.target, &b.source)));
    if initial_calls > 0 {
        changes = vec![initial_sync_entry(initial_calls)];
    }

    let pass = Pass {
        started_at,
        finished_at: now.clone(),
        source: source.to_string(),
        objects: index.len() as u32,
        objects_upsert: upsert,
        objects_delete: deleted,
        workloads: view
            .nodes
            .iter()
            .zip(&view.extras)
            .map(|(n, x)| {
                (
                    n.id.clone(),
                    n.namespace.clone(),
                    serde_json::to_string(n).unwrap_or_default(),
                    serde_json::to_string(x).unwrap_or_default(),
                )
            })
            .collect(),
        edges_upsert,
        edges_delete,
        drift: view
            .drift
            .iter()
            .map(|d| {
                (
                    d.namespace.clone(),
                    d.workload.clone(),
                    serde_json::to_string(d).unwrap_or_default(),
                )
            })
            .collect(),
        drift_keys: view
            .drift
            .iter()
            .map(|d| (d.key.clone(), d.fingerprint.clone()))
            .collect(),
        changes,
        edges_total: view.edges.len() as u32,
        diagnostics: view.diagnostics.clone(),
    };
    let phases = Phases {
        inventory: inventory_done,
        analysis: analysis_done - inventory_done,
        comparison: clock.elapsed() - analysis_done,
        write: Duration::ZERO,
    };
    tracing::info!(
        objects_changed = pass.objects_upsert.len() + pass.objects_delete.len(),
        edges_changed = pass.edges_upsert.len() + pass.edges_delete.len(),
        seconds = clock.elapsed().as_secs_f64(),
        "sync: compared with the stored pass"
    );
    view.synced_at = Some(now);
    view.inventory = Some(Arc::new(inv));
    view.index = Some(index);
    view.settings = in_use;
    Computed {
        pass,
        view,
        edges,
        hashes,
        phases,
    }
}

/// The stored row of a view's edge.
fn edge_row(e: &api::Edge) -> EdgeRow {
    EdgeRow {
        source: e.source.clone(),
        target: e.target.clone(),
        state: e.state,
        ports: e.ports.clone(),
        declared_ports: e.declared_ports.clone(),
        declared: e.declared,
        allowed: e.allowed,
        first_seen: e.first_seen.clone().unwrap_or_default(),
        last_changed: e.last_changed.clone().unwrap_or_default(),
    }
}

/// A computed view is where its pass's texts come from: objects from its index snapshot, edges
/// and explanations from its own lists.
impl store::PassTexts for View {
    fn object(&self, (kind, namespace, name): &ObjectKey) -> String {
        self.index
            .as_ref()
            .and_then(|i| i.get(kind, namespace, name))
            .map(|o| serde_json::to_string(o).unwrap_or_default())
            .unwrap_or_default()
    }

    fn edge(&self, position: usize) -> (EdgeRow, String) {
        let explanation = serde_json::to_string(&self.explanations[position]).unwrap_or_default();
        (edge_row(&self.edges[position]), explanation)
    }
}

/// Runs passes against one store, remembering what the store holds.
pub struct Syncer {
    store: Store,
    edges: HashMap<(String, String), EdgeRow>,
    hashes: HashMap<ObjectKey, i64>,
    settings: settings::Source,
    source: String,
}

/// What a completed pass reports.
pub struct Outcome {
    pub view: View,
    pub changed: u32,
    pub seconds: f64,
    pub phases: Phases,
}

impl Syncer {
    pub async fn new(
        store: Store,
        source: &str,
        settings: settings::Source,
    ) -> store::Result<Syncer> {
        let edges = store
            .edges()
            .await?
            .into_iter()
            .map(|e| ((e.source.clone(), e.target.clone()), e))
            .collect();
        let hashes = store.object_hashes().await?;
        Ok(Syncer {
            store,
            edges,
            hashes,
            settings,
            source: source.to_string(),
        })
    }

    /// Compute and write one pass over `index`.
    pub async fn pass(&mut self, index: Arc<Index>) -> store::Result<Outcome> {
        let t = std::time::Instant::now();
        let prev_edges = std::mem::take(&mut self.edges);
        let prev_hashes = std::mem::take(&mut self.hashes);
        let settings = self.settings.clone();
        let source = self.source.clone();
        let (computed, prev_edges, prev_hashes) = tokio::task::spawn_blocking(move || {
            let c = compute(index, &prev_edges, &prev_hashes, &settings, &source);
            (c, prev_edges, prev_hashes)
        })
        .await
        .expect("the sync computation does not panic");
        let mut computed = computed;
        let writing = std::time::Instant::now();
        match self.store.write_pass(&computed.pass, &computed.view).await {
            Ok(run) => {
                self.edges = computed.edges;
                self.hashes = computed.hashes;
                computed.view.run = run;
                if let Ok(seen) = self.store.drift_seen().await {
                    for d in &mut computed.view.drift {
                        d.first_seen = seen.get(&d.key).cloned();
                    }
                }
                let changed = computed.pass.changes.len() as u32;
                Ok(Outcome {
                    view: computed.view,
                    changed,
                    seconds: t.elapsed().as_secs_f64(),
                    phases: Phases {
                        write: writing.elapsed(),
                        ..computed.phases
                    },
                })
            }
            Err(e) => {
                self.edges = prev_edges;
                self.hashes = prev_hashes;
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_hashes_are_fixed_by_definition_not_by_the_toolchain() {
        // FNV-1a 64 of the compact JSON text `{"kind":"Pod","n":[1,2]}`, computed independently.
        let object = serde_json::json!({"kind": "Pod", "n": [1, 2]});
        assert_eq!(hash_object(&object), 4_704_788_889_540_313_065);
    }
}
