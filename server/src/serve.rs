//! `accord serve`: the dashboard backend.
//!
//! A source (the bundled demo, a manifest tree polled for changes, or a live cluster watched
//! through the shared watch set of [`crate::cluster`]) feeds the in-memory index; a sync loop coalesces bursts of changes,
//! runs the core's drift analysis ([`sync`]) and writes the result to SQLite ([`store`]) in one
//! transaction per pass; the [`http`] router serves the JSON API (types from `accord-api`),
//! server-sent events, metrics and the built frontend.
//!
//! Size: the backend's wiring (sources, the feed, the sync loop, the server and its shutdown) is
//! kept in one place so the process lifecycle (start, degrade, stop) reads top to bottom.

pub mod demo;
pub mod http;
pub mod metrics;
pub mod store;
pub mod sync;
pub mod what_if;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use accord_api as api;
use accord_policy::Origin;
use futures::StreamExt;
use tokio::sync::{Notify, Semaphore, broadcast, watch};

use crate::cluster::{self, Index};
use store::Store;
use sync::{Syncer, View};

/// Where the objects come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// The demo shop bundled in the binary.
    Demo,
    /// Manifest files or directories, read again when they change.
    Manifests(Vec<PathBuf>),
    /// A live cluster: a kubeconfig file, or the default (KUBECONFIG / in-cluster).
    Cluster { kubeconfig: Option<PathBuf> },
}

impl Source {
    pub fn describe(&self) -> String {
        match self {
            Source::Demo => "demo".to_string(),
            Source::Manifests(p) => format!(
                "manifests:{}",
                p.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Source::Cluster { .. } => "cluster".to_string(),
        }
    }
}

/// Applying drafts to the cluster: off unless configured.
#[derive(Clone, Debug)]
pub struct ApplyConfig {
    pub token: String,
}

/// Everything `accord serve` needs.
#[derive(Clone, Debug)]
pub struct Config {
    pub source: Source,
    pub db: String,
    pub listen: SocketAddr,
    pub assets: Option<PathBuf>,
    pub apply: Option<ApplyConfig>,
    /// Coalesce changes arriving within this window into one pass.
    pub debounce: Duration,
    /// URLs the dashboard is also reached under (names checked against `Host` and `Origin`).
    pub public_urls: Vec<http::PublicUrl>,
    /// What-ifs evaluated at once; more are answered 429.
    pub max_what_ifs: usize,
    /// Bytes of working memory the what-ifs in flight may hold together; beyond, 429.
    pub what_if_memory: usize,
    /// How long a connection may be idle, or take to send a request head.
    pub read_timeout: Duration,
    /// How long a request may take before it is answered 503 (server-sent events excepted).
    pub request_timeout: Duration,
    /// How often the event stream pings the dashboard, which shows Offline after ~2.7 pings'
    /// worth of silence.
    pub events_ping: Duration,
    /// Where the generation settings come from.
    pub settings: crate::settings::Source,
    /// The pod or namespace label naming a drift item's owning team (else: its namespace).
    pub owner_label: Option<String>,
    /// Observed traffic (Hubble or recorded flows), when asked for.
    pub observed: Option<crate::observed::collector::Config>,
}

/// State shared by the sync loop and the HTTP handlers.
pub struct AppState {
    pub store: Store,
    view: RwLock<Arc<View>>,
    pub ready: AtomicBool,
    pub syncs: AtomicU64,
    pub events: broadcast::Sender<api::SyncEvent>,
    pub metrics: metrics::Metrics,
    pub source: String,
    pub assets: Option<PathBuf>,
    pub apply: Option<ApplyConfig>,
    /// A client for applying drafts (cluster source with apply enabled only).
    pub kube: Option<kube::Client>,
    /// The hosts and origins the web layer answers.
    pub web: http::WebConfig,
    /// Permits for concurrent what-ifs.
    pub what_ifs: Arc<Semaphore>,
    /// The working memory what-ifs in flight hold.
    pub what_if_memory: Arc<MemoryBudget>,
    /// How long a request may take before it is answered 503 with the JSON error body.
    pub request_timeout: Duration,
    /// How often `/api/events` pings (the dashboard's liveness watchdog follows it).
    pub events_ping: Duration,
    /// Set to true when the server shuts down: long-lived responses (`/api/events`) end.
    pub shutdown: watch::Sender<bool>,
    source_health: RwLock<SourceHealth>,
    /// Why the last sync pass could not be stored, until one is.
    pub storage_error: RwLock<Option<String>>,
    /// The label naming a drift item's owning team.
    pub owner_label: Option<String>,
    /// Drift acknowledgements: key → (fingerprint they hold for, acknowledgement).
    pub acks: RwLock<std::collections::HashMap<String, (String, api::Acknowledgement)>>,
    /// The observed-traffic collector's window and health (default: no collector).
    pub observed: crate::observed::collector::SharedStatus,
    /// Observations assessed for the current view and observed data (`/api/observed`, drift).
    pub observed_cache: http::observed::Assessor,
    /// The stored observations in memory, kept by the collector (see `StoredRows`).
    pub observed_rows: crate::observed::collector::SharedRows,
}

/// What-ifs evaluated at once by default.
pub const DEFAULT_MAX_WHAT_IFS: usize = 2;

/// Working memory (MiB) the what-ifs in flight may hold together, by default.
pub const DEFAULT_WHAT_IF_MEMORY_MIB: usize = 512;

/// A budget of bytes shared by the what-ifs in flight: each reserves its estimated working
/// memory before evaluating and gives it back when done.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: std::sync::Mutex<usize>,
}

/// Bytes reserved from a [`MemoryBudget`], given back on drop.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    bytes: usize,
}

impl MemoryBudget {
    pub fn new(limit: usize) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            limit,
            used: std::sync::Mutex::new(0),
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        *self.used.lock().expect("budget lock")
    }

    /// Reserve `bytes`, or `None` when the reservations in flight and these would exceed the
    /// limit. With nothing in flight a reservation is always granted, so that a budget smaller
    /// than one what-if slows what-ifs down to one at a time instead of refusing them all.
    pub fn try_reserve(self: &Arc<Self>, bytes: usize) -> Option<Reservation> {
        let mut used = self.used.lock().expect("budget lock");
        if *used > 0 && used.saturating_add(bytes) > self.limit {
            return None;
        }
        *used += bytes;
        Some(Reservation {
            budget: self.clone(),
            bytes,
        })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        *self.budget.used.lock().expect("budget lock") -= self.bytes;
    }
}

pub type SharedState = Arc<AppState>;

impl AppState {
    pub fn new(store: Store, source: String) -> AppState {
        AppState {
            store,
            view: RwLock::new(Arc::new(View::default())),
            ready: AtomicBool::new(false),
            syncs: AtomicU64::new(0),
            events: broadcast::channel(64).0,
            metrics: metrics::Metrics::default(),
            source,
            assets: None,
            apply: None,
            kube: None,
            web: http::WebConfig::default(),
            what_ifs: Arc::new(Semaphore::new(DEFAULT_MAX_WHAT_IFS)),
            what_if_memory: MemoryBudget::new(DEFAULT_WHAT_IF_MEMORY_MIB << 20),
            request_timeout: http::REQUEST_TIMEOUT,
            events_ping: http::EVENTS_PING,
            shutdown: watch::channel(false).0,
            source_health: RwLock::new(SourceHealth::default()),
            storage_error: RwLock::new(None),
            owner_label: None,
            acks: RwLock::new(Default::default()),
            observed: Default::default(),
            observed_cache: Default::default(),
            observed_rows: Default::default(),
        }
    }

    pub fn source_health(&self) -> SourceHealth {
        self.source_health.read().expect("health lock").clone()
    }

    pub fn set_source_health(&self, health: SourceHealth) {
        self.metrics.set_source_degraded(health.degraded);
        let changed = {
            let mut current = self.source_health.write().expect("health lock");
            let changed = *current != health;
            *current = health;
            changed
        };
        // A file that breaks or is repaired while its objects stay as they were starts no
        // pass; dashboards reload the status on sync events, so tell them (nothing changed).
        if changed && self.ready.load(Ordering::Acquire) {
            let view = self.view();
            let _ = self.events.send(api::SyncEvent {
                run: view.run,
                synced_at: view.synced_at.clone().unwrap_or_default(),
                changed: 0,
                observed_drift: None,
            });
        }
    }

    pub fn view(&self) -> Arc<View> {
        self.view.read().expect("view lock").clone()
    }

    pub fn set_view(&self, view: View) {
        *self.view.write().expect("view lock") = Arc::new(view);
    }

    /// Install the result of a pass and tell listeners.
    pub fn publish(&self, outcome: sync::Outcome) {
        let event = api::SyncEvent {
            run: outcome.view.run,
            synced_at: outcome.view.synced_at.clone().unwrap_or_default(),
            changed: outcome.changed,
            observed_drift: None,
        };
        self.metrics.record_sync(
            outcome.seconds,
            &outcome.phases,
            outcome.view.nodes.len(),
            outcome.view.edges.len(),
            outcome.changed,
        );
        self.set_view(outcome.view);
        // The observed calls are assessed anew for the new view, in the background.
        self.observed_cache.wake();
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.ready.store(true, Ordering::Release);
        let _ = self.events.send(event);
    }
}

/// The current time as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_millis())
}

/// Seconds since the epoch as RFC 3339 with milliseconds.
pub fn rfc3339(secs: i64, millis: u32) -> String {
    format!(
        "{}.{millis:03}Z",
        accord_policy::observed::civil_date_time(secs)
    )
}

/// The default database path: `$XDG_DATA_HOME/accord/accord.db` or
/// `~/.local/share/accord/accord.db`.
pub fn default_db() -> String {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("accord/accord.db").display().to_string()
}

/// The default assets directory: `<exe dir>/../site` (e.g. `target/site` next to
/// `target/release/accord`), else `<exe dir>/../share/accord/site`.
pub fn default_assets() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?.parent()?;
    [dir.join("site"), dir.join("share/accord/site")]
        .into_iter()
        .find(|p| p.join("index.html").is_file())
}

/// How the source is doing: a problem with part of it (a file that cannot be read or parsed, a
/// directory gone) leaves that part at its last good state, reported here.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SourceHealth {
    /// Some part of the source could not be read and is served from its last good state (or
    /// is missing, if it never was read).
    pub degraded: bool,
    /// The problems, per file (and document).
    pub diagnostics: Vec<api::Diagnostic>,
    /// Files or documents served from their last good version.
    pub stale: Vec<String>,
}

/// A cluster source's health from its failing watches (kind → error): each is served from the
/// last state its watch saw until it works again.
fn watch_health(failing: &std::collections::BTreeMap<String, String>) -> SourceHealth {
    SourceHealth {
        degraded: !failing.is_empty(),
        diagnostics: failing
            .iter()
            .map(|(kind, error)| {
                accord_policy::Diagnostic::error(
                    accord_policy::diagnostic::DiagnosticCode::Unreadable,
                    &Origin::new(format!("cluster:{kind}"), 0),
                    "",
                    "",
                    format!(
                        "cannot watch {kind}s ({error}); showing the last state seen, retrying"
                    ),
                )
            })
            .collect(),
        stale: failing.keys().map(|k| format!("cluster:{k}")).collect(),
    }
}

/// The manifest source's memory: each file's objects from its last good read, by document, as
/// compact JSON text. Kept as text, not as parsed values: the index holds the parsed objects,
/// and a second parsed copy of every object of a large estate cost gigabytes.
#[derive(Debug, Default)]
pub struct ManifestState {
    files: std::collections::BTreeMap<String, std::collections::BTreeMap<usize, Vec<String>>>,
}

/// Whether `file` is `path` or lies under it.
fn is_under(file: &str, path: &str) -> bool {
    file == path
        || file
            .strip_prefix(path)
            .is_some_and(|rest| rest.starts_with('/') || path.ends_with('/'))
}

/// Read the manifests again, keeping the last good version of whatever cannot be read or
/// parsed now; returns the objects as index entries and the source's health.
pub fn read_manifests(
    paths: &[PathBuf],
    state: &mut ManifestState,
) -> (Vec<(Origin, serde_json::Value)>, SourceHealth) {
    use std::collections::{BTreeMap, BTreeSet};

    let reading = crate::manifests::read(paths);
    let mut health = SourceHealth::default();
    let mut diags: Vec<api::Diagnostic> = reading.diagnostics.clone();
    let mut files: BTreeMap<String, BTreeMap<usize, Vec<String>>> = BTreeMap::new();
    let mut out = Vec::new();
    let revive = |file: &str, n: usize, texts: &[String], out: &mut Vec<_>| {
        for text in texts {
            if let Ok(doc) = serde_json::from_str(text) {
                flatten_lists(Origin::new(file, n), doc, out);
            }
        }
    };
    // Files that failed to be read, or that lie under a path that failed (a directory gone):
    // their last good objects stay.
    for (file, docs) in &state.files {
        if reading.failed.iter().any(|f| is_under(file, f)) {
            for (n, texts) in docs {
                revive(file, *n, texts, &mut out);
            }
            files.insert(file.clone(), docs.clone());
            health.stale.push(file.clone());
        }
    }
    for source in &reading.sources {
        let mut doc_diags = Vec::new();
        let docs = accord_policy::load::documents(source, &mut doc_diags);
        let mut now: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for (origin, doc) in docs {
            now.entry(origin.document)
                .or_default()
                .push(doc.to_string());
            flatten_lists(
                Origin::new(source.path.clone(), origin.document),
                doc,
                &mut out,
            );
        }
        // A document that no longer parses keeps its last good objects. A JSON stream stops at
        // its first error, so everything from there on is kept.
        let failed: BTreeSet<usize> = doc_diags.iter().map(|d| d.origin.document).collect();
        let json_stop = source
            .path
            .ends_with(".json")
            .then(|| failed.iter().next().copied())
            .flatten();
        if let Some(last) = state.files.get(&source.path) {
            for (n, texts) in last {
                let lost = failed.contains(n) || json_stop.is_some_and(|stop| *n >= stop);
                if lost && !now.contains_key(n) {
                    revive(&source.path, *n, texts, &mut out);
                    now.insert(*n, texts.clone());
                    health
                        .stale
                        .push(Origin::new(source.path.clone(), *n).to_string());
                }
            }
        }
        diags.extend(doc_diags);
        files.insert(source.path.clone(), now);
    }
    state.files = files;
    // In file and document order, as the files were read.
    out.sort_by(|(a, _), (b, _)| (&a.file, a.document).cmp(&(&b.file, b.document)));
    // Two objects with one kind, namespace and name cannot both exist (the index would keep
    // one silently): the first read is kept, each later one is an error naming both places.
    let mut first: BTreeMap<store::ObjectKey, Origin> = BTreeMap::new();
    out.retain(|(origin, object)| {
        let Some(key) = cluster::key_of(object) else {
            return true;
        };
        if let Some(earlier) = first.get(&key) {
            let (kind, ns, name) = &key;
            let object = if ns.is_empty() {
                format!("{kind} {name}")
            } else {
                format!("{kind} {ns}/{name}")
            };
            diags.push(api::Diagnostic::error(
                api::DiagnosticCode::DuplicateObject,
                origin,
                object,
                "metadata.name",
                format!("defined twice: also in {earlier}; this one is left out"),
            ));
            return false;
        }
        first.insert(key, origin.clone());
        true
    });
    health.degraded = !diags.is_empty();
    health.diagnostics = diags;
    (out, health)
}

/// `List` documents hold their objects in `items`: index each item on its own.
fn flatten_lists(
    origin: Origin,
    doc: serde_json::Value,
    out: &mut Vec<(Origin, serde_json::Value)>,
) {
    let kind = doc.get("kind").and_then(|k| k.as_str()).unwrap_or("");
    if let Some(item_kind) = kind.strip_suffix("List") {
        let item_kind = item_kind.to_string();
        let api_version = doc.get("apiVersion").cloned();
        if let Some(items) = doc.get("items").and_then(|i| i.as_array()) {
            for item in items {
                let mut item = item.clone();
                if let Some(o) = item.as_object_mut() {
                    if !o.contains_key("kind") && !item_kind.is_empty() {
                        o.insert("kind".into(), item_kind.clone().into());
                    }
                    if !o.contains_key("apiVersion")
                        && let Some(v) = &api_version
                    {
                        o.insert("apiVersion".into(), v.clone());
                    }
                }
                flatten_lists(origin.clone(), item, out);
            }
        }
        return;
    }
    out.push((origin, doc));
}

/// The modification times of every manifest file, to notice changes.
fn manifest_stamp(paths: &[PathBuf]) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    crate::manifests::files(paths)
        .0
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p).ok();
            (
                p,
                meta.as_ref().and_then(|m| m.modified().ok()),
                meta.map(|m| m.len()).unwrap_or(0),
            )
        })
        .collect()
}

/// Shared between a source and the sync loop.
pub struct Feed {
    pub index: Mutex<Index>,
    pub notify: Notify,
    /// Set once the source has delivered its initial state.
    pub initialized: AtomicBool,
}

impl Feed {
    pub fn new() -> Arc<Feed> {
        Arc::new(Feed {
            index: Mutex::new(Index::default()),
            notify: Notify::new(),
            initialized: AtomicBool::new(false),
        })
    }

    pub fn update(&self, f: impl FnOnce(&mut Index)) {
        f(&mut self.index.lock().expect("index lock"));
        self.notify.notify_one();
    }

    pub fn set_initialized(&self) {
        self.initialized.store(true, Ordering::Release);
        self.notify.notify_one();
    }
}

/// Feed the index from the source until the process ends.
async fn run_source(
    source: Source,
    feed: Arc<Feed>,
    settings_namespace: Option<String>,
    state: SharedState,
) -> anyhow::Result<()> {
    match source {
        Source::Demo => {
            feed.update(|idx| idx.reset_all(demo::objects()));
            feed.set_initialized();
            // The demo never changes; keep serving.
            std::future::pending().await
        }
        Source::Manifests(paths) => {
            let mut last = None;
            let memory = Arc::new(Mutex::new(ManifestState::default()));
            loop {
                let stamp = {
                    let paths = paths.clone();
                    tokio::task::spawn_blocking(move || manifest_stamp(&paths)).await?
                };
                if last.as_ref() != Some(&stamp) {
                    let paths2 = paths.clone();
                    let memory2 = memory.clone();
                    let (objects, health) = tokio::task::spawn_blocking(move || {
                        read_manifests(&paths2, &mut memory2.lock().expect("manifest state"))
                    })
                    .await?;
                    for d in &health.diagnostics {
                        tracing::warn!(origin = %d.origin, object = %d.object, field = %d.field, "{}", d.message);
                    }
                    if !health.stale.is_empty() {
                        tracing::warn!(stale = ?health.stale, "serving the last good version of what cannot be read now");
                    }
                    tracing::info!(objects = objects.len(), "manifests read");
                    state.set_source_health(health);
                    feed.update(|idx| idx.reset_all(objects));
                    feed.set_initialized();
                    last = Some(stamp);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        Source::Cluster { kubeconfig } => {
            let client = cluster::client(kubeconfig.as_deref()).await?;
            let options = cluster::Options {
                settings_namespace,
                ..cluster::Options::default()
            };
            // Pods' addresses feed the observed traffic's IP history.
            feed.update(|idx| idx.track_pod_addresses());
            let mut changes = cluster::watch(client, options).await;
            let mut failing = std::collections::BTreeMap::new();
            while let Some(change) = changes.next().await {
                match change {
                    cluster::Change::Synced => feed.set_initialized(),
                    cluster::Change::Health { kind, error } => {
                        match error {
                            Some(e) => failing.insert(kind, e),
                            None => failing.remove(&kind),
                        };
                        state.set_source_health(watch_health(&failing));
                    }
                    change => feed.update(|idx| idx.apply_change(change)),
                }
            }
            Ok(())
        }
    }
}

/// Keep the observed traffic's IP history up to date with the cluster's pods: their addresses
/// (kept by the index beside the objects, so that address churn starts no sync pass) and their
/// deletions, which end a tenure. A pod is recorded once a pass has named its workload.
async fn follow_pod_addresses(
    feed: Arc<Feed>,
    state: SharedState,
    ips: crate::observed::collector::SharedIps,
) {
    let mut seen: Option<(u64, std::sync::Weak<View>)> = None;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let view = state.view();
        let (addresses, ended) = {
            let mut idx = feed.index.lock().expect("index lock");
            let version = idx.address_version();
            if seen
                .as_ref()
                .is_some_and(|(v, w)| *v == version && w.ptr_eq(&Arc::downgrade(&view)))
            {
                continue;
            }
            seen = Some((version, Arc::downgrade(&view)));
            (idx.pod_addresses(), idx.take_ended_pods())
        };
        record_pod_addresses(&ips, view.inventory.as_deref(), &addresses, ended);
    }
}

/// Record pods' addresses (and the ends of deleted pods' tenures) in the IP history, each
/// pod under the workload the inventory names (or, for a pod gone from it, the one it was
/// recorded under).
pub fn record_pod_addresses(
    ips: &crate::observed::collector::SharedIps,
    inventory: Option<&accord_policy::Inventory>,
    addresses: &std::collections::BTreeMap<(String, String), cluster::PodAddress>,
    ended: Vec<cluster::PodAddress>,
) {
    let workloads: std::collections::HashMap<(&str, &str), &accord_policy::WorkloadId> = inventory
        .map(|inv| {
            inv.pods
                .iter()
                .map(|p| ((p.namespace(), p.metadata.name.as_str()), &p.workload))
                .collect()
        })
        .unwrap_or_default();
    let mut history = ips.write().expect("ip history lock");
    for a in addresses.values().chain(&ended) {
        let workload = workloads
            .get(&(a.namespace.as_str(), a.name.as_str()))
            .map(|w| (*w).clone())
            .or_else(|| history.resolve_pod(&a.namespace, &a.name).cloned());
        if let Some(w) = workload {
            history.record_pod_object(&a.to_pod_object(), w);
        }
    }
}

/// Run passes whenever the index changes, coalescing bursts.
async fn run_sync(
    state: SharedState,
    feed: Arc<Feed>,
    mut syncer: Syncer,
    debounce: Duration,
) -> anyhow::Result<()> {
    let mut last_version = None;
    loop {
        feed.notify.notified().await;
        if !feed.initialized.load(Ordering::Acquire) {
            continue;
        }
        // Coalesce a burst: wait until no change arrived for the debounce window.
        loop {
            tokio::select! {
                _ = feed.notify.notified() => continue,
                _ = tokio::time::sleep(debounce) => break,
            }
        }
        let snapshot = {
            let mut idx = feed.index.lock().expect("index lock");
            if last_version == Some(idx.version()) {
                continue;
            }
            idx.take_changed();
            Arc::new(idx.clone())
        };
        let version = snapshot.version();
        tracing::info!(objects = snapshot.len(), "sync pass starting");
        match syncer.pass(snapshot).await {
            Ok(outcome) => {
                tracing::info!(
                    run = outcome.view.run,
                    workloads = outcome.view.nodes.len(),
                    edges = outcome.view.edges.len(),
                    changed = outcome.changed,
                    seconds = outcome.seconds,
                    "sync pass done"
                );
                last_version = Some(version);
                *state.storage_error.write().expect("storage lock") = None;
                state.publish(outcome);
                // The pass dropped acknowledgements whose cause changed.
                if let Ok(acks) = state.store.drift_acks().await {
                    *state.acks.write().expect("acks lock") = acks;
                }
            }
            Err(e) => {
                state.metrics.record_sync_failure();
                tracing::error!(error = %e, "sync pass failed; retrying");
                *state.storage_error.write().expect("storage lock") = Some(e.to_string());
                tokio::time::sleep(Duration::from_secs(1)).await;
                feed.notify.notify_one();
            }
        }
    }
}

/// Run the dashboard backend until Ctrl-C or SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let store = Store::open(&config.db).await?;
    let source_name = config.source.describe();
    let mut state = AppState::new(store.clone(), source_name.clone());
    state.set_view(View::from_stored(store.view().await?));
    *state.acks.write().expect("acks lock") = store.drift_acks().await?;
    state.owner_label = config.owner_label.clone();
    state.assets = config.assets.clone();
    state.what_ifs = Arc::new(Semaphore::new(config.max_what_ifs.max(1)));
    state.what_if_memory = MemoryBudget::new(config.what_if_memory);
    state.request_timeout = config.request_timeout;
    state.events_ping = config.events_ping;
    if let (Some(apply), Source::Cluster { kubeconfig }) = (&config.apply, &config.source) {
        state.apply = Some(apply.clone());
        state.kube = Some(cluster::client(kubeconfig.as_deref()).await?);
    }
    let syncer = Syncer::new(store, &source_name, config.settings.clone()).await?;
    let feed = Feed::new();

    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    state.web = http::WebConfig {
        listen: addr,
        public_urls: config.public_urls.clone(),
    };
    tracing::info!(%addr, source = %source_name, db = %config.db, "serving");
    eprintln!(
        "accord serve: http://{addr} (source: {source_name}, database: {})",
        config.db
    );

    let state = Arc::new(state);
    if config.observed.is_some() {
        // Assessed in the background from the start: open dashboards hear of observed drift.
        http::observed::start(&state);
    }

    let source_task = tokio::spawn(run_source(
        config.source.clone(),
        feed.clone(),
        config.settings.operator_namespace.clone(),
        state.clone(),
    ));
    let feed_for_ips = feed.clone();
    let sync_task = tokio::spawn(run_sync(state.clone(), feed, syncer, config.debounce));
    if let Some(observed) = config.observed.clone() {
        // Flows without workload fields are named through the pods' IP history: a manifest
        // source gives it once (Pods with status.podIP and creation/deletion times), a cluster
        // source as pods come, get addresses and go.
        let ips = match &config.source {
            Source::Manifests(paths) => {
                let reading = crate::manifests::read(paths);
                let (inv, _) = crate::manifests::load(&reading.sources);
                accord_policy::observed::IpHistory::from_manifests(&reading.sources, &inv)
            }
            _ => accord_policy::observed::IpHistory::new(),
        };
        let ips = Arc::new(std::sync::RwLock::new(ips));
        if matches!(config.source, Source::Cluster { .. }) {
            tokio::spawn(follow_pod_addresses(
                feed_for_ips.clone(),
                state.clone(),
                ips.clone(),
            ));
        }
        let (store, status) = (state.store.clone(), state.observed.clone());
        let rows = state.observed_rows.clone();
        let written = state.observed_cache.waker();
        // A recording ends when it is read; Hubble is followed until the server stops.
        tokio::spawn(async move {
            if let Err(e) =
                crate::observed::collector::run(observed, store, ips, status.clone(), rows, written)
                    .await
            {
                tracing::error!(error = %e, "observed traffic collector stopped");
                status.write().expect("observed status lock").last_error = Some(e.to_string());
            }
        });
    }
    let server = serve_http(listener, state, config.read_timeout, shutdown());
    tokio::select! {
        r = server => r?,
        r = source_task => r??,
        r = sync_task => r??,
    }
    Ok(())
}

/// Idle connections (no request head under way) are closed after this long by default, as are
/// clients that take longer to send a request head.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// After the shutdown signal, connections get this long to finish before the server exits
/// anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serve the router on `listener` until `signal`: HTTP/1.1 through hyper, with a read
/// timeout for request heads (which closes idle keep-alive connections too), then a graceful
/// shutdown in which server-sent event streams end at once.
async fn serve_http(
    listener: tokio::net::TcpListener,
    state: SharedState,
    read_timeout: Duration,
    signal: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let app = http::router(state.clone());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // HTTP/1.1 only: telling HTTP/2 from HTTP/1 means waiting for the first bytes, a wait that
    // the read timeout does not cover; browsers speak HTTP/2 only over TLS, which a proxy in
    // front terminates.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(read_timeout);
    tokio::pin!(signal);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down");
    let _ = state.shutdown.send(true);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; exiting anyway");
        }
    }
    Ok(())
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = ctrl_c => {},
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_pods_addresses_feed_the_ip_history_and_a_reused_ip_keeps_its_owners_apart() {
        use accord_policy::observed::parse_rfc3339;
        let pod = |name: &str, app: &str, created: &str, deleted: Option<&str>| {
            let mut p = serde_json::json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "shop", "creationTimestamp": created,
                             "labels": {"app": app}},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
                "status": {"podIP": "10.0.0.9", "podIPs": [{"ip": "10.0.0.9"}]}
            });
            if let Some(d) = deleted {
                p["metadata"]["deletionTimestamp"] = d.into();
            }
            p
        };
        let ips: crate::observed::collector::SharedIps = Default::default();
        let mut idx = Index::default();
        idx.track_pod_addresses();
        idx.apply(
            Origin::default(),
            pod("web-1", "web", "2026-11-30T05:00:00Z", None),
        );
        let (inv, _) = idx.inventory();
        record_pod_addresses(
            &ips,
            Some(&inv),
            &idx.pod_addresses(),
            idx.take_ended_pods(),
        );
        let at = |t: &str| parse_rfc3339(t).unwrap();
        let web = ips
            .read()
            .unwrap()
            .resolve_ip("10.0.0.9", at("2026-11-30T05:05:00Z"))
            .cloned()
            .expect("the live pod's address resolves");
        assert_eq!(web.name, "web-1");

        // web-1 ends; db-1 gets the address later. A pass has not run since: the deleted pod
        // keeps the workload it was recorded under.
        idx.apply(
            Origin::default(),
            pod(
                "web-1",
                "web",
                "2026-11-30T05:00:00Z",
                Some("2026-11-30T05:10:00Z"),
            ),
        );
        idx.delete("Pod", "shop", "web-1");
        idx.apply(
            Origin::default(),
            pod("db-1", "db", "2026-11-30T05:20:00Z", None),
        );
        record_pod_addresses(
            &ips,
            Some(&inv),
            &idx.pod_addresses(),
            idx.take_ended_pods(),
        );
        // db-1 is not in the inventory yet: not recorded until a pass names its workload.
        assert_eq!(
            ips.read()
                .unwrap()
                .resolve_ip("10.0.0.9", at("2026-11-30T05:25:00Z")),
            None
        );
        let (inv, _) = idx.inventory();
        record_pod_addresses(
            &ips,
            Some(&inv),
            &idx.pod_addresses(),
            idx.take_ended_pods(),
        );
        let h = ips.read().unwrap();
        assert_eq!(
            h.resolve_ip("10.0.0.9", at("2026-11-30T05:05:00Z")),
            Some(&web)
        );
        // Between the tenures, nobody held it.
        assert_eq!(h.resolve_ip("10.0.0.9", at("2026-11-30T05:15:00Z")), None);
        assert_eq!(
            h.resolve_ip("10.0.0.9", at("2026-11-30T05:25:00Z"))
                .map(|w| w.name.as_str()),
            Some("db-1")
        );
    }

    fn names(objects: &[(Origin, serde_json::Value)]) -> Vec<String> {
        let mut n: Vec<String> = objects
            .iter()
            .map(|(_, o)| o["metadata"]["name"].as_str().unwrap_or("").to_string())
            .collect();
        n.sort();
        n
    }

    fn deployment(name: &str) -> String {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: a}}\nspec:\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n"
        )
    }

    #[test]
    fn a_failing_source_keeps_its_last_good_state_and_says_so() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("m");
        std::fs::create_dir(&dir).unwrap();
        let a = dir.join("a.yaml");
        let b = dir.join("b.yaml");
        std::fs::write(&a, deployment("one")).unwrap();
        std::fs::write(
            &b,
            format!("{}---\n{}", deployment("two"), deployment("three")),
        )
        .unwrap();
        let paths = [dir.clone()];
        let mut memory = ManifestState::default();
        let (objects, health) = read_manifests(&paths, &mut memory);
        assert_eq!(names(&objects), ["one", "three", "two"]);
        assert!(!health.degraded);

        // A file that is no longer UTF-8 keeps its objects, and the source says so.
        std::fs::write(&a, b"kind: \xff").unwrap();
        let (objects, health) = read_manifests(&paths, &mut memory);
        assert_eq!(names(&objects), ["one", "three", "two"]);
        assert!(health.degraded);
        assert_eq!(health.stale, [a.display().to_string()]);
        assert!(health.diagnostics[0].message.contains("UTF-8"));

        // A syntax error in one document keeps that document's last good object only.
        std::fs::write(&b, format!("{}---\n{}", deployment("two"), "a: [\n")).unwrap();
        let (objects, health) = read_manifests(&paths, &mut memory);
        assert_eq!(names(&objects), ["one", "three", "two"]);
        assert!(
            health
                .stale
                .contains(&format!("{} (document 2)", b.display())),
            "{:?}",
            health.stale
        );
        // A repaired document gives its new content.
        std::fs::write(
            &b,
            format!("{}---\n{}", deployment("two"), deployment("four")),
        )
        .unwrap();
        let (objects, _) = read_manifests(&paths, &mut memory);
        assert_eq!(names(&objects), ["four", "one", "two"]);

        // The whole directory gone: nothing is wiped.
        std::fs::rename(&dir, root.path().join("elsewhere")).unwrap();
        let (objects, health) = read_manifests(&paths, &mut memory);
        assert_eq!(names(&objects), ["four", "one", "two"]);
        assert!(health.degraded);
        assert!(health.diagnostics[0].message.contains("no such file"));

        // Back, with a.yaml deleted for real: its object goes.
        std::fs::rename(root.path().join("elsewhere"), &dir).unwrap();
        std::fs::remove_file(&a).unwrap();
        let (objects, health) = read_manifests(&paths, &mut memory);
        assert_eq!(names(&objects), ["four", "two"]);
        assert!(!health.degraded, "{health:?}");
    }

    #[test]
    fn a_duplicate_in_the_manifests_is_an_error_naming_both_files_and_the_first_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yaml");
        let b = dir.path().join("b.yaml");
        std::fs::write(&a, deployment("web")).unwrap();
        std::fs::write(
            &b,
            deployment("web").replace("app: web}}\n", "app: web, v: b}}\n"),
        )
        .unwrap();
        let (objects, health) =
            read_manifests(&[dir.path().to_path_buf()], &mut ManifestState::default());
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].0.file, a.display().to_string());
        assert!(health.degraded);
        let d = &health.diagnostics[0];
        assert_eq!(d.code, api::DiagnosticCode::DuplicateObject);
        assert_eq!(d.origin.file, b.display().to_string());
        assert_eq!(d.object, "Deployment a/web");
        assert!(
            d.message.contains(&format!("{} (document 1)", a.display())),
            "{d:?}"
        );
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(1_795_000_000, 0), "2026-11-18T11:06:40.000Z");
    }
}
