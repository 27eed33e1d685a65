//! `GET /api/observed`: observed callers (of one server, or all), assessed by Accord's own
//! evaluation; the window and its coverage; declared calls not observed (claimed only under full
//! coverage); and suggested intents for undeclared callers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use accord_api as api;
use accord_api::observed as o;
use accord_policy::WorkloadId;
use accord_policy::evaluate::Prepared;
use accord_policy::observed::{self, Aggregate, Class, Key, Party, format_rfc3339, parse_rfc3339};
use axum::Json;
use axum::extract::{Query, State};

use super::super::SharedState;
use super::super::store::ObservedQuery;
use super::super::sync::View;
use super::error::{Error, Result};

fn time(t: i64) -> String {
    format_rfc3339(t)
}

fn now_nanos() -> i64 {
    crate::observed::hubble::now_nanos()
}

fn call(k: &Key, a: &Aggregate) -> o::ObservedCall {
    o::ObservedCall {
        class: k.class.as_str().to_string(),
        client: k.client.to_string(),
        server: k.server.to_string(),
        protocol: k.protocol.as_str().to_string(),
        port: k.port,
        count: a.count,
        forwarded: a.forwarded,
        dropped: a.dropped,
        audit: a.audit,
        first_seen: time(a.first_seen),
        last_seen: time(a.last_seen),
        ..o::ObservedCall::default()
    }
}

pub(super) async fn observed(
    State(state): State<SharedState>,
    Query(q): Query<o::ObservedQuery>,
) -> Result<Json<o::Observed>> {
    compute(&state, &q).await.map(Json)
}

/// `GET /api/observed/panel?server=…`: the same, as the side panel's lines.
pub(super) async fn panel(
    State(state): State<SharedState>,
    Query(q): Query<o::ObservedQuery>,
) -> Result<Json<o::ObservedPanel>> {
    if q.server.is_none() {
        return Err(Error::BadRequest("server= is required".into()));
    }
    let o = compute(&state, &q).await?;
    Ok(Json(panel_of(o)))
}

/// What `/api/observed/edges` answers for: the whole estate, one namespace, one workload's
/// neighbourhood, or the namespace pairs only (the overview's).
struct EdgeScope {
    namespace: Option<String>,
    workload: Option<String>,
    pairs_only: bool,
}

impl EdgeScope {
    fn of(q: &o::ObservedQuery) -> Result<EdgeScope> {
        let workload = match &q.workload {
            Some(w) => Some(
                WorkloadId::parse(w, "default")
                    .ok_or_else(|| {
                        Error::BadRequest(format!("workload={w:?} is not namespace/name[Kind]"))
                    })?
                    .to_string(),
            ),
            None => None,
        };
        if workload.is_some() && q.namespace.is_some() {
            return Err(Error::BadRequest(
                "workload= and namespace= are two scopes: give one".into(),
            ));
        }
        Ok(EdgeScope {
            namespace: q.namespace.clone(),
            workload,
            pairs_only: q.pairs_only,
        })
    }

    /// The namespace the answer is about: the one asked, or the workload's.
    fn namespace(&self) -> Option<&str> {
        self.namespace
            .as_deref()
            .or_else(|| self.workload.as_deref().and_then(|w| w.split('/').next()))
    }

    /// Whether an edge between these namespaces (and, asked only for a workload's scope,
    /// these workload ids) is answered for.
    fn edge(&self, from_ns: &str, to_ns: &str, ids: impl FnOnce() -> (String, String)) -> bool {
        if self.pairs_only {
            return false;
        }
        if let Some(ns) = &self.namespace {
            return from_ns == ns || to_ns == ns;
        }
        match &self.workload {
            Some(w) => {
                let (a, b) = ids();
                &a == w || &b == w
            }
            None => true,
        }
    }
}

/// `GET /api/observed/edges?since=…&namespace=…|workload=…|pairs_only=true`: every observed
/// call between workloads, per edge (those with an end in `namespace` or at `workload`, when
/// given; none with `pairs_only`), and the namespace pairs in words.
pub(super) async fn edges(
    State(state): State<SharedState>,
    Query(q): Query<o::ObservedQuery>,
) -> Result<Json<o::ObservedEdges>> {
    if q.server.is_some() {
        return Err(Error::BadRequest(
            "server= is not a filter of the edges; use /api/observed".into(),
        ));
    }
    let since = parse_since(q.since.as_deref())?;
    let scope = EdgeScope::of(&q)?;
    let status = state.observed.read().expect("observed status lock").clone();
    let all = assessed(&state).await?;
    let assessment = all.describe(&state);
    let view = state.view();
    tokio::task::spawn_blocking(move || {
        let window = o::ObservedWindow {
            assessment,
            ..window(&status)
        };
        fn ns_of(id: &str) -> &str {
            id.split('/').next().unwrap_or_default()
        }
        let claimed = unused_claimed(&status, since);
        let from = match since {
            0 => window.from.clone(),
            t => Some(time(t)),
        };
        // The namespace pairs are the same for every scope: computed once per assessment and
        // query (at 15,000 workloads, tens of thousands of pairs).
        let key = (since, claimed, from.clone());
        let cached = all.namespaces_of(&key);
        let mut pairs: BTreeMap<(&str, &str), NamespacePair> = BTreeMap::new();
        let mut calls = Vec::new();
        // With the pairs known, one namespace's calls are all that is looked at.
        let positions: Box<dyn Iterator<Item = usize>> = match (&cached, scope.namespace()) {
            (Some(_), Some(ns)) => Box::new(
                all.by_namespace
                    .get(ns)
                    .map_or(&[][..], |v| &v[..])
                    .iter()
                    .copied(),
            ),
            _ => Box::new(0..all.rows.len()),
        };
        for i in positions {
            let ((k, a), s) = (&all.rows[i], &all.assessed[i]);
            let (Class::Call, true, Some(s)) = (k.class, a.last_seen >= since, s) else {
                continue;
            };
            let (Some(c), Some(t)) = (k.client.workload(), k.server.workload()) else {
                continue;
            };
            if cached.is_none() {
                let p = pairs
                    .entry((c.namespace.as_str(), t.namespace.as_str()))
                    .or_default();
                p.calls += 1;
                match s.state {
                    o::ObservedState::Declared => p.declared += 1,
                    o::ObservedState::Undeclared => p.undeclared += 1,
                    o::ObservedState::Dropped => p.dropped += 1,
                }
            }
            if scope.edge(&c.namespace, &t.namespace, || {
                (c.to_string(), t.to_string())
            }) {
                calls.push(o::ObservedCall {
                    state: Some(s.state),
                    declared: s.declared,
                    allowed_now: s.allowed_now,
                    allowed_when_protected: s.allowed_when_protected,
                    corroborated: s.corroborated,
                    ..call(k, a)
                });
            }
        }
        let workload_edges = || {
            view.edges
                .iter()
                .filter(|e| e.source.contains('/') && e.target.contains('/'))
        };
        let (namespaces, unused) = match cached {
            Some(namespaces) => {
                let unused = if claimed {
                    let edges = workload_edges().filter(|e| {
                        scope.edge(ns_of(&e.source), ns_of(&e.target), || {
                            (e.source.clone(), e.target.clone())
                        })
                    });
                    unused(&all, edges, since)
                } else {
                    Vec::new()
                };
                (namespaces, unused)
            }
            None => {
                let every = if claimed {
                    unused(&all, workload_edges(), since)
                } else {
                    Vec::new()
                };
                for u in &every {
                    pairs
                        .entry((ns_of(&u.client), ns_of(&u.server)))
                        .or_default()
                        .unused += 1;
                }
                let namespaces: Arc<Vec<[String; 3]>> = Arc::new(
                    pairs
                        .iter()
                        .map(|((c, t), p)| p.mark(c, t, from.as_deref()))
                        .collect(),
                );
                all.keep_namespaces(key, namespaces.clone());
                let unused = every
                    .into_iter()
                    .filter(|u| {
                        scope.edge(ns_of(&u.client), ns_of(&u.server), || {
                            (u.client.clone(), u.server.clone())
                        })
                    })
                    .collect();
                (namespaces, unused)
            }
        };
        // Scoped to a namespace (or a workload's), only the pairs it is an end of (a
        // namespace's drawing marks its own bundles; at 15,000 workloads every pair is ~2 MB).
        let namespaces = match scope.namespace() {
            None => Arc::unwrap_or_clone(namespaces),
            Some(ns) => namespaces
                .iter()
                .filter(|p| {
                    p[0].split_once("->")
                        .is_some_and(|(a, b)| a == ns || b == ns)
                })
                .cloned()
                .collect(),
        };
        o::ObservedEdges {
            namespaces,
            ..edges_of(o::Observed {
                window,
                calls,
                unused,
                unused_claimed: claimed,
                ..o::Observed::default()
            })
        }
    })
    .await
    .map(Json)
    .map_err(|e| Error::Internal(e.to_string()))
}

/// The observed calls from one namespace to another, counted by state.
#[derive(Default)]
struct NamespacePair {
    calls: u64,
    declared: u64,
    undeclared: u64,
    dropped: u64,
    /// Declared calls (client to server) not observed.
    unused: u64,
}

impl NamespacePair {
    /// `[src->dst, mark, words]`, the mark the worst of its calls.
    fn mark(&self, from: &str, to: &str, since: Option<&str>) -> [String; 3] {
        let mark = if self.dropped > 0 {
            o::ObservedState::Dropped.as_str()
        } else if self.undeclared > 0 {
            o::ObservedState::Undeclared.as_str()
        } else if self.declared > 0 {
            o::ObservedState::Declared.as_str()
        } else {
            "unused"
        };
        let plural = |n: u64| if n == 1 { "" } else { "s" };
        let mut words = String::new();
        if self.calls > 0 {
            let bad: Vec<String> = [(self.undeclared, "undeclared"), (self.dropped, "dropped")]
                .iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, what)| format!("{n} {what}"))
                .collect();
            words = format!("observed {} call{}", self.calls, plural(self.calls));
            if !bad.is_empty() {
                words += &format!(" ({})", bad.join(", "));
            }
        }
        if self.unused > 0 {
            if !words.is_empty() {
                words += "; ";
            }
            words += &format!(
                "{} declared call{} not observed",
                self.unused,
                plural(self.unused)
            );
        }
        if let Some(t) = since {
            words += &format!(" since {} UTC", day_time(t));
        }
        [format!("{from}->{to}"), mark.to_string(), words]
    }
}

/// Whether the window since `since` was observed completely (declared calls not observed are
/// claimed only then).
fn unused_claimed(status: &crate::observed::collector::Status, since: i64) -> bool {
    let end = if status.connected {
        now_nanos()
    } else {
        status.coverage.span().map_or(0, |(_, b)| b)
    };
    let start = since.max(status.coverage.span().map_or(0, |(a, _)| a));
    // A window after the observed span was not observed at all.
    status.coverage.span().is_some() && start < end && status.coverage.complete(start, end)
}

/// The declared ones of `edges` with no call observed since `since`.
fn unused<'e>(
    all: &Assessed,
    edges: impl Iterator<Item = &'e api::Edge>,
    since: i64,
) -> Vec<o::DeclaredUnused> {
    edges
        .filter(|e| {
            e.declared
                && all
                    .pair_seen
                    .get(e.source.as_str())
                    .and_then(|m| m.get(e.target.as_str()))
                    .is_none_or(|&t| t < since)
        })
        .map(|e| o::DeclaredUnused {
            client: e.source.clone(),
            server: e.target.clone(),
            ports: e.declared_ports.clone(),
        })
        .collect()
}

/// `since=`: an RFC 3339 time or hours or days back from now; 0 without it.
fn parse_since(since: Option<&str>) -> Result<i64> {
    match since {
        Some(s) => parse_rfc3339(s)
            .or_else(|| ago(s, now_nanos()))
            .ok_or_else(|| {
                Error::BadRequest(format!(
                    "since={s:?} is neither an RFC 3339 time nor hours or days ago (1h, 7d)"
                ))
            }),
        None => Ok(0),
    }
}

fn edges_of(o: o::Observed) -> o::ObservedEdges {
    let rank = |s: o::ObservedState| match s {
        o::ObservedState::Dropped => 2,
        o::ObservedState::Undeclared => 1,
        o::ObservedState::Declared => 0,
    };
    /// An edge so far, and its ports by protocol.
    type Building = (o::ObservedEdge, BTreeMap<String, Vec<u16>>);
    let mut by_edge: BTreeMap<(String, String), Building> = BTreeMap::new();
    for c in o.calls {
        let (Some(state), true, true) = (c.state, c.client.contains('/'), c.server.contains('/'))
        else {
            continue;
        };
        let entry = by_edge
            .entry((c.client.clone(), c.server.clone()))
            .or_insert_with(|| {
                (
                    o::ObservedEdge {
                        source: c.client.clone(),
                        target: c.server.clone(),
                        state,
                        ports: String::new(),
                        count: 0,
                        dropped: 0,
                        last_seen: String::new(),
                        note: String::new(),
                    },
                    BTreeMap::new(),
                )
            });
        let (e, ports) = entry;
        if rank(state) > rank(e.state) {
            e.state = state;
        }
        e.count += c.count;
        e.dropped += c.dropped;
        if c.last_seen > e.last_seen {
            e.last_seen = c.last_seen.clone();
        }
        ports.entry(c.protocol.clone()).or_default().push(c.port);
        if c.state == Some(o::ObservedState::Undeclared) && c.allowed_when_protected == Some(false)
        {
            e.note = "blocked once the server is protected".into();
        }
    }
    let edges: Vec<o::ObservedEdge> = by_edge
        .into_values()
        .map(|(mut e, ports)| {
            e.ports = ports
                .into_iter()
                .map(|(proto, mut list)| {
                    list.sort_unstable();
                    list.dedup();
                    let list: Vec<String> = list.iter().map(u16::to_string).collect();
                    format!("{proto} {}", list.join(","))
                })
                .collect::<Vec<_>>()
                .join("; ");
            let what = match e.state {
                o::ObservedState::Declared => "declared".to_string(),
                o::ObservedState::Undeclared if e.note.is_empty() => {
                    "undeclared, allowed".to_string()
                }
                o::ObservedState::Undeclared => format!("undeclared: {}", e.note),
                o::ObservedState::Dropped => format!("{} dropped now", e.dropped),
            };
            e.note = format!(
                "observed {} {}, last {} UTC · {what}",
                observed::calls_in_words(e.count),
                e.ports,
                day_time(&e.last_seen)
            );
            e
        })
        .collect();
    let summary = panel_of(o::Observed {
        window: o.window.clone(),
        ..o::Observed::default()
    })
    .window;
    let unused = if o.unused_claimed {
        o.unused
    } else {
        Vec::new()
    };
    let mut marks: Vec<[String; 3]> = edges
        .iter()
        .map(|e: &o::ObservedEdge| {
            [
                format!("{}->{}", e.source, e.target),
                e.state.as_str().to_string(),
                e.note.clone(),
            ]
        })
        .chain(unused.iter().map(|u| {
            [
                format!("{}->{}", u.client, u.server),
                "unused".to_string(),
                format!("declared {}, not observed", u.ports),
            ]
        }))
        .collect();
    marks.sort();
    o::ObservedEdges {
        window: o.window,
        edges,
        unused,
        summary,
        marks,
        namespaces: Vec::new(),
    }
}

fn day_time(t: &str) -> String {
    t.get(..19).unwrap_or(t).replace('T', " ")
}

fn panel_of(o: o::Observed) -> o::ObservedPanel {
    let w = &o.window;
    if w.source.is_empty() {
        return o::ObservedPanel::default();
    }
    let mut window = match (&w.from, &w.to) {
        (Some(f), Some(t)) => format!(
            "Observed {} – {} UTC ({}), {} events lost. ",
            day_time(f),
            day_time(t),
            w.source,
            w.lost_events
        ),
        _ => format!("Nothing observed yet ({}). ", w.source),
    };
    window += &match &w.complete_since {
        Some(t) => format!("Complete since {} UTC.", day_time(t)),
        None => "Not complete: the collector is disconnected or events were lost.".to_string(),
    };
    let callers = o
        .calls
        .iter()
        .map(|c| {
            let state = c.state.map(|s| s.as_str()).unwrap_or_default();
            let what = match c.state {
                Some(o::ObservedState::Declared) => "declared".to_string(),
                Some(o::ObservedState::Undeclared) => {
                    if c.allowed_when_protected == Some(false) {
                        "undeclared: blocked once protected".to_string()
                    } else {
                        "undeclared".to_string()
                    }
                }
                Some(o::ObservedState::Dropped) => format!("{} dropped now", c.dropped),
                None => String::new(),
            };
            [
                format!(
                    "{} {}/{} · {} · last {} · {what}",
                    c.client,
                    c.protocol,
                    c.port,
                    observed::calls_in_words(c.count),
                    day_time(&c.last_seen)
                ),
                state.to_string(),
            ]
        })
        .collect();
    let mut notes = Vec::new();
    if !o.other.is_empty() {
        let n: u64 = o.other.iter().map(|c| c.count).sum();
        notes.push(format!(
            "Also {n} connections of kubelet probes, DNS or host-network pods (not calls)."
        ));
    }
    if o.unused_claimed {
        notes.push(if o.unused.is_empty() {
            "Every declared caller was observed.".to_string()
        } else {
            format!(
                "Declared but not observed: {}.",
                o.unused
                    .iter()
                    .map(|u| u.client.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        });
    }
    let suggestions = o
        .suggestions
        .into_iter()
        .map(|s| o::PanelSuggestion {
            label: format!(
                "Suggested intents for {}: adds {}",
                s.client,
                s.added.join(", ")
            ),
            draft: s.draft,
            yaml: s.yaml,
        })
        .collect();
    o::ObservedPanel {
        window,
        callers,
        notes,
        suggestions,
    }
}

/// Every stored observation assessed for one view and one observed-data generation, with the
/// observed drift items computed from them. Requests filter it.
pub struct Assessed {
    view: Weak<View>,
    generation: u64,
    /// When it finished (nanoseconds since the epoch) and how long it took.
    at: i64,
    took: Duration,
    /// Every stored observation, sorted by key.
    rows: Vec<(Key, Aggregate)>,
    /// Parallel to `rows`: the assessment of each call (`None` for other classes, and for
    /// everything before the first sync).
    assessed: Vec<Option<observed::Assessment>>,
    /// The observed drift items, worst first, with their owners (parallel).
    pub drift: Vec<api::DriftItem>,
    pub drift_core: Vec<accord_policy::drift::DriftItem>,
    pub drift_owners: Vec<String>,
    /// The last time each workload pair's calls were seen (declared calls not observed are
    /// looked up here rather than against every call).
    pair_seen: HashMap<String, HashMap<String, i64>>,
    /// The calls between workloads by namespace (either end's), as positions in `rows`.
    by_namespace: HashMap<String, Vec<usize>>,
    /// `/api/observed/edges`' namespace pairs, by (since, unused claimed, window start): the
    /// same for every namespace scope.
    namespaces: std::sync::Mutex<Vec<(NamespacesKey, Arc<Namespaces>)>>,
}

type NamespacesKey = (i64, bool, Option<String>);
type Namespaces = Vec<[String; 3]>;

/// How many answers of namespace pairs an assessment keeps.
const NAMESPACES_KEPT: usize = 8;

impl Assessed {
    fn namespaces_of(&self, key: &NamespacesKey) -> Option<Arc<Vec<[String; 3]>>> {
        let kept = self.namespaces.lock().expect("namespaces lock");
        kept.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    fn keep_namespaces(&self, key: NamespacesKey, value: Arc<Vec<[String; 3]>>) {
        let mut kept = self.namespaces.lock().expect("namespaces lock");
        if kept.len() >= NAMESPACES_KEPT {
            kept.remove(0);
        }
        kept.push((key, value));
    }

    /// Computed for this view and this generation of the observed data.
    fn fresh_for(&self, view: &Arc<View>, generation: u64) -> bool {
        self.generation == generation && std::ptr::eq(self.view.as_ptr(), Arc::as_ptr(view))
    }

    /// What answers say of it: when it finished, how long it took, and whether a newer one is
    /// under way. `None` without a collector.
    pub fn describe(&self, state: &SharedState) -> Option<o::ObservedAssessment> {
        let (source, generation) = {
            let s = state.observed.read().expect("observed status lock");
            (s.source.is_empty(), s.generation)
        };
        if source {
            return None;
        }
        Some(o::ObservedAssessment {
            at: time(self.at),
            took_ms: u64::try_from(self.took.as_millis()).unwrap_or(u64::MAX),
            assessing: !self.fresh_for(&state.view(), generation),
        })
    }
}

/// When the last assessment took less than this, a request waits for the next one (up to
/// [`WAIT_FOR_QUICK`]) rather than show an older one: small estates answer as they are now.
/// Larger ones never wait (an assessment at 1,500 workloads takes about 100 ms).
const QUICK: Duration = Duration::from_millis(50);
const WAIT_FOR_QUICK: Duration = Duration::from_secs(10);
/// After an assessment, the next one waits as long as it took (so assessing takes at most
/// half of one core however often the collector writes), but never longer than this.
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// The observed calls assessed in the background whenever the view or the observed data
/// change: requests are answered from the last complete assessment meanwhile (saying how old it
/// is), so none waits for a whole assessment (seconds at 15,000 workloads).
pub struct Assessor {
    current: std::sync::RwLock<Option<Arc<Assessed>>>,
    wake: Arc<tokio::sync::Notify>,
    /// Counts completed assessments (requests waiting for one watch it).
    done: tokio::sync::watch::Sender<u64>,
    started: AtomicBool,
    /// Assessments that took less than this are waited for by requests ([`QUICK`]).
    pub quick: Duration,
    /// Held by tests to keep the next assessment from starting.
    #[cfg(test)]
    hold: tokio::sync::Mutex<()>,
}

impl Default for Assessor {
    fn default() -> Self {
        Assessor {
            current: Default::default(),
            wake: Default::default(),
            done: tokio::sync::watch::channel(0).0,
            started: AtomicBool::new(false),
            quick: QUICK,
            #[cfg(test)]
            hold: Default::default(),
        }
    }
}

impl Assessor {
    /// Something changed: assess again (once the pause after the last assessment is over).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// What the collector tells after each write of new observations.
    pub fn waker(&self) -> Arc<tokio::sync::Notify> {
        self.wake.clone()
    }

    /// The last complete assessment.
    pub fn current(&self) -> Option<Arc<Assessed>> {
        self.current.read().expect("assessment lock").clone()
    }

    fn install(&self, a: Arc<Assessed>) {
        *self.current.write().expect("assessment lock") = Some(a);
        self.done.send_modify(|n| *n += 1);
    }
}

/// The assessed observations to answer with: the current ones when up to date; else the last
/// complete assessment while a newer one is computed (after waiting for it when assessments are
/// quick); before the first one, the first one.
pub(crate) async fn assessed(state: &SharedState) -> Result<Arc<Assessed>> {
    start(state);
    let assessor = &state.observed_cache;
    let mut done = assessor.done.subscribe();
    let started = std::time::Instant::now();
    loop {
        let view = state.view();
        let generation = state
            .observed
            .read()
            .expect("observed status lock")
            .generation;
        let current = assessor.current();
        if let Some(a) = &current {
            if a.fresh_for(&view, generation) {
                return Ok(a.clone());
            }
            assessor.wake();
            if a.took >= assessor.quick || started.elapsed() >= WAIT_FOR_QUICK {
                return Ok(a.clone());
            }
        } else {
            assessor.wake();
        }
        drop(view);
        let _ = tokio::time::timeout(WAIT_FOR_QUICK, done.changed()).await;
    }
}

/// Start the background assessor of `state` (once).
pub fn start(state: &SharedState) {
    let assessor = &state.observed_cache;
    if assessor.started.swap(true, Ordering::AcqRel) {
        return;
    }
    let weak = Arc::downgrade(state);
    let wake = assessor.wake.clone();
    tokio::spawn(async move {
        let mut memo = Memo::default();
        let mut next = tokio::time::Instant::now();
        loop {
            tokio::time::sleep_until(next).await;
            let Some(state) = weak.upgrade() else {
                return;
            };
            #[cfg(test)]
            let held = state.observed_cache.hold.lock().await;
            let view = state.view();
            let status = state.observed.read().expect("observed status lock").clone();
            let previous = state.observed_cache.current();
            if previous
                .as_ref()
                .is_some_and(|a| a.fresh_for(&view, status.generation))
            {
                #[cfg(test)]
                drop(held);
                drop((state, view, previous));
                // Woken by a new view (`publish`), a collector's write or a request.
                wake.notified().await;
                continue;
            }
            let clock = std::time::Instant::now();
            let rows = match stored_rows(&state).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "reading observations to assess");
                    next = tokio::time::Instant::now() + Duration::from_secs(1);
                    continue;
                }
            };
            let read = clock.elapsed();
            let owner_label = state.owner_label.clone();
            let mut m = std::mem::take(&mut memo);
            let joined = tokio::task::spawn_blocking(move || {
                let out = assess_all(&mut m, view, status, rows, owner_label);
                (out, m)
            })
            .await;
            let Ok((mut out, m)) = joined else {
                tracing::error!("the assessment of observed calls panicked; trying again");
                next = tokio::time::Instant::now() + MAX_PAUSE;
                continue;
            };
            memo = m;
            out.took = clock.elapsed();
            out.at = now_nanos();
            tracing::debug!(
                calls = out.assessed.iter().flatten().count(),
                read_seconds = read.as_secs_f64(),
                seconds = out.took.as_secs_f64(),
                "observed: assessment installed"
            );
            let out = Arc::new(out);
            state.observed_cache.install(out.clone());
            let changed = previous.as_ref().map_or(!out.drift.is_empty(), |p| {
                p.drift.len() != out.drift.len()
                    || p.drift
                        .iter()
                        .zip(&out.drift)
                        .any(|(a, b)| a.key != b.key || a.fingerprint != b.fingerprint)
            });
            // Open dashboards reload on sync events: the observed drift items changed.
            if changed && state.ready.load(Ordering::Acquire) {
                let view = state.view();
                let _ = state.events.send(api::SyncEvent {
                    run: view.run,
                    synced_at: view.synced_at.clone().unwrap_or_default(),
                    changed: 0,
                    observed_drift: Some(u32::try_from(out.drift.len()).unwrap_or(u32::MAX)),
                });
            }
            next = tokio::time::Instant::now() + out.took.min(MAX_PAUSE);
        }
    });
}

/// Every stored observation, sorted by key: from the collector's copy in memory when it keeps
/// one, else from SQLite.
async fn stored_rows(state: &SharedState) -> super::super::store::Result<Vec<(Key, Aggregate)>> {
    let mut kept = state.observed_rows.lock().await;
    if !kept.kept {
        drop(kept);
        return state.store.observations(&ObservedQuery::default()).await;
    }
    let rows = match &mut kept.rows {
        Some(rows) => rows,
        None => {
            let read = state.store.observations(&ObservedQuery::default()).await?;
            kept.rows.insert(read.into_iter().collect())
        }
    };
    Ok(rows.iter().map(|(k, a)| (k.clone(), *a)).collect())
}

/// What an assessment of a call keeps for the next of the same view: declared, allowed now,
/// allowed once its server is protected.
type Verdict = (bool, Option<bool>, Option<bool>);

/// What an assessment keeps for the next ones of the same view: the verdicts of the calls
/// evaluated (a new generation evaluates only calls not seen before), and the inventory with
/// every workload protected, compiled.
#[derive(Default)]
struct Memo {
    view: Weak<View>,
    protected: Option<(accord_policy::Inventory, Prepared)>,
    /// Per call: declared, allowed now, allowed once its server is protected.
    verdicts: HashMap<Key, Verdict>,
    /// The view's declared calls, parsed.
    declared: Option<Vec<observed::DeclaredEdge>>,
}

fn assess_all(
    memo: &mut Memo,
    view: Arc<View>,
    status: crate::observed::collector::Status,
    rows: Vec<(Key, Aggregate)>,
    owner_label: Option<String>,
) -> Assessed {
    let clock = std::time::Instant::now();
    let mut out = Assessed {
        view: Arc::downgrade(&view),
        generation: status.generation,
        at: 0,
        took: Duration::ZERO,
        assessed: vec![None; rows.len()],
        rows: Vec::new(),
        drift: Vec::new(),
        drift_core: Vec::new(),
        drift_owners: Vec::new(),
        pair_seen: HashMap::new(),
        by_namespace: HashMap::new(),
        namespaces: Default::default(),
    };
    for (i, (k, a)) in rows.iter().enumerate() {
        if let (Class::Call, Some(c), Some(s)) = (k.class, k.client.workload(), k.server.workload())
        {
            out.by_namespace
                .entry(c.namespace.clone())
                .or_default()
                .push(i);
            if s.namespace != c.namespace {
                out.by_namespace
                    .entry(s.namespace.clone())
                    .or_default()
                    .push(i);
            }
            let seen = out
                .pair_seen
                .entry(c.to_string())
                .or_default()
                .entry(s.to_string())
                .or_insert(a.last_seen);
            *seen = (*seen).max(a.last_seen);
        }
    }
    let calls: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].0.class == Class::Call)
        .collect();
    // Nothing to assess (no collector, nothing observed yet): no evaluation at all.
    let (Some(inv), false) = (view.inventory.as_deref(), calls.is_empty()) else {
        out.rows = rows;
        return out;
    };
    let pairs: Vec<(&Key, &Aggregate)> = calls.iter().map(|&i| (&rows[i].0, &rows[i].1)).collect();
    let keys: Vec<&Key> = pairs.iter().map(|(k, _)| *k).collect();
    if !std::ptr::eq(memo.view.as_ptr(), Arc::as_ptr(&view)) {
        *memo = Memo {
            view: Arc::downgrade(&view),
            ..Memo::default()
        };
    }
    let missing: Vec<&Key> = keys
        .iter()
        .copied()
        .filter(|k| !memo.verdicts.contains_key(*k))
        .collect();
    let mut phases = [Duration::ZERO; 4];
    if !missing.is_empty() {
        let t = std::time::Instant::now();
        let prepared = view
            .prepared
            .get_or_init(|| Arc::new(accord_policy::evaluate::Prepared::new(inv)));
        let now = observed::allowed(&prepared.evaluator(inv), &missing);
        phases[0] = t.elapsed();
        let later = match view.generated.as_deref() {
            Some(generated) => {
                let t = std::time::Instant::now();
                let (protected, compiled) = memo.protected.get_or_insert_with(|| {
                    let protected = observed::protected_everywhere(inv, generated);
                    let compiled = Prepared::new(&protected);
                    (protected, compiled)
                });
                phases[1] = t.elapsed();
                let t = std::time::Instant::now();
                let later = observed::allowed(&compiled.evaluator(protected), &missing);
                phases[2] = t.elapsed();
                later
            }
            None => vec![None; missing.len()],
        };
        // Calls gone (retention) are forgotten once they outnumber the current ones.
        if memo.verdicts.len() > 2 * keys.len() {
            let current: std::collections::HashSet<&Key> = keys.iter().copied().collect();
            memo.verdicts.retain(|k, _| current.contains(k));
        }
        let t = std::time::Instant::now();
        let declared = observed::declared(inv, &missing);
        phases[3] = t.elapsed();
        for (((k, d), n), l) in missing.iter().zip(declared).zip(now).zip(later) {
            memo.verdicts.insert((*k).clone(), (d, n, l));
        }
    }
    let t = std::time::Instant::now();
    let mut declared = Vec::with_capacity(keys.len());
    let mut now = Vec::with_capacity(keys.len());
    let mut later = Vec::with_capacity(keys.len());
    for k in &keys {
        let (d, n, l) = memo.verdicts[*k];
        declared.push(d);
        now.push(n);
        later.push(l);
    }
    let assessed = observed::assess_declared(&pairs, &declared, &now, &later);
    phases[3] += t.elapsed();

    // The drift items.
    let t = std::time::Instant::now();
    let with: Vec<(&Key, &Aggregate, &observed::Assessment)> = pairs
        .iter()
        .zip(&assessed)
        .map(|((k, a), s)| (*k, *a, s))
        .collect();
    // Suggestions are the fixes of undeclared items: only for their clients (a client's
    // suggestion depends on its own calls alone).
    let undeclared: BTreeSet<&WorkloadId> = with
        .iter()
        .filter(|(_, _, s)| {
            s.state == o::ObservedState::Undeclared
                && !s.declared
                && s.allowed_when_protected == Some(false)
        })
        .filter_map(|(k, _, _)| k.client.workload())
        .collect();
    let suggestions = observed::suggest(
        pairs
            .iter()
            .copied()
            .filter(|(k, _)| k.client.workload().is_some_and(|c| undeclared.contains(c))),
        inv,
        0,
    );
    let suggested = t.elapsed();
    let parse = |s: &str| WorkloadId::parse(s, "default");
    let declared = memo.declared.get_or_insert_with(|| {
        view.edges
            .iter()
            .filter(|e| e.declared)
            .filter_map(|e| {
                Some(observed::DeclaredEdge {
                    client: parse(&e.source)?,
                    server: parse(&e.target)?,
                    state: e.state,
                })
            })
            .collect()
    });
    let edge_state = |c: &WorkloadId, s: &WorkloadId| {
        let (c, s) = (c.to_string(), s.to_string());
        view.in_edges
            .get(&s)
            .into_iter()
            .flatten()
            .map(|&i| &view.edges[i])
            .find(|e| e.source == c)
            .map(|e| e.state)
    };
    let end = if status.connected {
        now_nanos()
    } else {
        status.coverage.span().map_or(0, |(_, b)| b)
    };
    let complete_window = status
        .coverage
        .span()
        .and_then(|_| status.coverage.complete_since(end))
        .filter(|&from| from < end)
        .map(|from| (from, end));
    let items = observed::drift_items(&observed::ObservedInput {
        calls: &with,
        edge_state: &edge_state,
        suggestions: &suggestions,
        declared,
        complete_window,
    });
    for (core, first) in items {
        let mut d = crate::serve::sync::drift_item_to_api(&core);
        d.first_seen = Some(time(first));
        out.drift.push(d);
        out.drift_core.push(core);
    }
    out.drift_owners = super::drift::owners_of(&view, owner_label.as_deref(), &out.drift);
    tracing::debug!(
        calls = keys.len(),
        evaluated = missing.len(),
        now_seconds = phases[0].as_secs_f64(),
        protect_seconds = phases[1].as_secs_f64(),
        protected_seconds = phases[2].as_secs_f64(),
        assess_seconds = phases[3].as_secs_f64(),
        suggest_seconds = suggested.as_secs_f64(),
        drift_seconds = (t.elapsed() - suggested).as_secs_f64(),
        seconds = clock.elapsed().as_secs_f64(),
        "observed: calls assessed"
    );
    for (i, s) in calls.into_iter().zip(assessed) {
        out.assessed[i] = Some(s);
    }
    out.rows = rows;
    out
}

/// `GET /api/observed` and its panel: the calls (of one server, or all), the window, suggestions
/// and, for one server, its declared callers not observed.
async fn compute(state: &SharedState, q: &o::ObservedQuery) -> Result<o::Observed> {
    let since = parse_since(q.since.as_deref())?;
    let server = match &q.server {
        Some(s) => Some(
            WorkloadId::parse(s, "default")
                .filter(|_| s.contains('/'))
                .ok_or_else(|| Error::BadRequest(format!("server={s:?} is not ns/name[Kind]")))?,
        ),
        None => None,
    };
    let status = state.observed.read().expect("observed status lock").clone();
    let all = assessed(state).await?;
    let assessment = all.describe(state);
    let view = state.view();
    tokio::task::spawn_blocking(move || {
        let mut out = o::Observed {
            window: o::ObservedWindow {
                assessment,
                ..window(&status)
            },
            ..o::Observed::default()
        };
        let chosen: Vec<usize> = (0..all.rows.len())
            .filter(|&i| {
                let (k, a) = &all.rows[i];
                a.last_seen >= since
                    && server
                        .as_ref()
                        .is_none_or(|s| k.server.workload() == Some(s))
            })
            .collect();
        let (calls, other): (Vec<usize>, Vec<usize>) = chosen
            .into_iter()
            .partition(|&i| all.rows[i].0.class == Class::Call);
        out.other = other
            .iter()
            .map(|&i| call(&all.rows[i].0, &all.rows[i].1))
            .collect();
        let inv = view.inventory.as_deref();
        let pairs: Vec<(&Key, &Aggregate)> = calls
            .iter()
            .map(|&i| (&all.rows[i].0, &all.rows[i].1))
            .collect();
        out.calls = calls
            .iter()
            .map(|&i| {
                let (k, a) = &all.rows[i];
                match &all.assessed[i] {
                    Some(s) => o::ObservedCall {
                        state: Some(s.state),
                        declared: s.declared,
                        allowed_now: s.allowed_now,
                        allowed_when_protected: s.allowed_when_protected,
                        corroborated: s.corroborated,
                        ..call(k, a)
                    },
                    None => call(k, a),
                }
            })
            .collect();
        let Some(inv) = inv else {
            return out;
        };
        // Suggestions for the clients with an undeclared call here.
        let undeclared: BTreeSet<&Party> = calls
            .iter()
            .filter(|&&i| all.assessed[i].as_ref().is_some_and(|s| !s.declared))
            .map(|&i| &all.rows[i].0.client)
            .collect();
        // A client's suggestion depends on its own calls alone.
        let theirs = pairs
            .iter()
            .copied()
            .filter(|(k, _)| undeclared.contains(&k.client));
        out.suggestions = observed::suggest(theirs, inv, since)
            .into_iter()
            .map(|s| o::ObservedSuggestion {
                client: s.client.to_string(),
                merged_with: s
                    .current
                    .as_ref()
                    .map(|c| format!("{}/{}", c.namespace, c.name)),
                added: s
                    .added
                    .iter()
                    .map(|a| format!("{} {}/{}", a.server, a.protocol.as_str(), a.port))
                    .collect(),
                yaml: accord_policy::render::intents_yaml(std::slice::from_ref(&s.suggested)),
                diff: accord_policy::drift::line_diff(
                    &s.current
                        .as_ref()
                        .map(|c| accord_policy::render::intents_yaml(std::slice::from_ref(c)))
                        .unwrap_or_default(),
                    &accord_policy::render::intents_yaml(std::slice::from_ref(&s.suggested)),
                ),
                draft: super::drift::form_of(&s.suggested),
            })
            .collect();
        // Declared but not observed: only for one server, and only claimed when the window
        // since `since` was observed completely.
        if let Some(server) = &server {
            out.unused_claimed = unused_claimed(&status, since);
            if out.unused_claimed {
                let edges = view
                    .in_edges
                    .get(&server.to_string())
                    .into_iter()
                    .flatten()
                    .map(|&i| &view.edges[i]);
                out.unused = unused(&all, edges, since);
            }
        }
        out
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))
}

/// `since` as a time back from `now` (ns): `1h`, `24h`, `7d`.
fn ago(s: &str, now: i64) -> Option<i64> {
    const HOUR: i64 = 3_600_000_000_000;
    let (n, unit) = match s.strip_suffix('h') {
        Some(n) => (n, HOUR),
        None => (s.strip_suffix('d')?, 24 * HOUR),
    };
    let n: i64 = n.parse().ok().filter(|n| (1..=3660).contains(n))?;
    Some(now - n * unit)
}

fn window(s: &crate::observed::collector::Status) -> o::ObservedWindow {
    let span = s.coverage.span();
    let end = if s.connected {
        now_nanos()
    } else {
        span.map_or(0, |(_, b)| b)
    };
    o::ObservedWindow {
        source: s.source.clone(),
        connected: s.connected,
        from: span.map(|(a, _)| time(a)),
        to: span.map(|_| time(end)),
        complete_since: span.and_then(|_| s.coverage.complete_since(end)).map(time),
        intervals: s
            .coverage
            .intervals
            .iter()
            .map(|&(a, b)| [time(a), time(b)])
            .collect(),
        lost_events: s.coverage.lost_total(),
        error: s.last_error.clone(),
        assessment: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::demo;
    use accord_policy::objects::Protocol;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    /// 2026-11-29T05:00:00Z
    const T0: i64 = 1_795_928_400_000_000_000;
    /// Every assessment of the demo is quick enough to be waited for (even in a debug build on
    /// a busy machine).
    const WAITED: Duration = Duration::from_secs(10);
    const SECOND: i64 = 1_000_000_000;

    fn key(client: &str, server: &str, port: u16) -> Key {
        let w = |id: &str| Party::Workload {
            workload: WorkloadId::parse(id, "default").unwrap(),
        };
        Key {
            class: Class::Call,
            client: w(client),
            server: w(server),
            protocol: Protocol::Tcp,
            port,
        }
    }

    fn agg(at: i64, count: u64, dropped: u64) -> Aggregate {
        Aggregate {
            first_seen: at,
            last_seen: at,
            count,
            forwarded: count - dropped,
            dropped,
            audit: 0,
        }
    }

    /// The demo synced, with a collector of recorded flows (nothing stored yet); requests wait
    /// for assessments that took less than `quick`.
    async fn fixture(quick: Duration) -> (tempfile::TempDir, SharedState) {
        let (dir, state) =
            super::super::tests::synced(|s| s.observed_cache.quick = quick, demo::objects()).await;
        state.observed.write().unwrap().source = "flows test.jsonl".into();
        (dir, state)
    }

    /// Store `batch` as the collector does: written with the window covered up to `to`, then
    /// the generation bumped.
    async fn ingest(state: &SharedState, batch: &[(Key, Aggregate)], to: i64) {
        let mut coverage = state.observed.read().unwrap().coverage.clone();
        coverage.connected(T0, to);
        state
            .store
            .write_observations(batch, &coverage, to, None)
            .await
            .unwrap();
        let mut s = state.observed.write().unwrap();
        s.coverage = coverage;
        s.latest = to;
        s.generation += 1;
        drop(s);
        state.observed_cache.wake();
    }

    async fn get<T: serde::de::DeserializeOwned>(state: &SharedState, uri: &str) -> T {
        let res = super::super::router(state.clone())
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }

    const WEB: &str = "storefront/web[Deployment]";
    const CATALOG: &str = "storefront/catalog[Deployment]";
    const CHECKOUT: &str = "checkout/checkout[Deployment]";
    const PAYMENTS: &str = "checkout/payments[Deployment]";
    const CART: &str = "storefront/cart[Deployment]";
    const AUTH: &str = "platform/auth[Deployment]";

    #[tokio::test]
    async fn a_request_during_a_recomputation_gets_the_previous_assessment_then_the_new_one() {
        // As on a large estate: requests never wait for an assessment under way.
        let (_dir, state) = fixture(Duration::ZERO).await;
        ingest(
            &state,
            &[(key(WEB, CATALOG, 8080), agg(T0, 6, 0))],
            T0 + SECOND,
        )
        .await;
        // The first assessment is waited for (there is no other to show).
        let first: o::ObservedEdges = get(&state, "/api/observed/edges").await;
        assert_eq!(first.edges.len(), 1, "{first:#?}");
        assert_eq!(first.edges[0].state, o::ObservedState::Declared);
        let a1 = first.window.assessment.clone().expect("an assessment");
        assert!(!a1.assessing, "{a1:?}");

        // New observed data while the next assessment cannot finish.
        let held = state.observed_cache.hold.lock().await;
        ingest(
            &state,
            &[(key(CHECKOUT, PAYMENTS, 9090), agg(T0 + 2 * SECOND, 1, 0))],
            T0 + 3 * SECOND,
        )
        .await;
        let during: o::ObservedEdges = get(&state, "/api/observed/edges").await;
        assert_eq!(during.edges, first.edges, "the previous assessment");
        let a2 = during.window.assessment.clone().unwrap();
        assert!(a2.assessing, "a newer one is under way: {a2:?}");
        assert_eq!(a2.at, a1.at, "the previous one's time");
        let report: api::DriftReport = get(&state, "/api/drift").await;
        assert_eq!(report.observed, Some(a2.clone()));

        // Once it finishes, the next request gets it.
        let mut done = state.observed_cache.done.subscribe();
        drop(held);
        tokio::time::timeout(Duration::from_secs(30), done.changed())
            .await
            .expect("the assessment finishes")
            .unwrap();
        let after: o::ObservedEdges = get(&state, "/api/observed/edges").await;
        let a3 = after.window.assessment.clone().unwrap();
        assert!(!a3.assessing, "{a3:?}");
        assert!(a3.at >= a1.at);
        let pay = after
            .edges
            .iter()
            .find(|e| e.source == CHECKOUT && e.target == PAYMENTS)
            .unwrap_or_else(|| panic!("{after:#?}"));
        assert_eq!(pay.state, o::ObservedState::Undeclared);
        assert_eq!(after.edges.len(), 2);
    }

    #[tokio::test]
    async fn quick_assessments_are_waited_for_so_small_estates_answer_as_they_are_now() {
        let (_dir, state) = fixture(WAITED).await;
        ingest(
            &state,
            &[(key(WEB, CATALOG, 8080), agg(T0, 6, 0))],
            T0 + SECOND,
        )
        .await;
        let first: o::ObservedEdges = get(&state, "/api/observed/edges").await;
        assert_eq!(first.edges.len(), 1);
        ingest(
            &state,
            &[(key(CHECKOUT, PAYMENTS, 9090), agg(T0 + 2 * SECOND, 1, 0))],
            T0 + 3 * SECOND,
        )
        .await;
        let next: o::ObservedEdges = get(&state, "/api/observed/edges").await;
        assert_eq!(next.edges.len(), 2, "{next:#?}");
        assert!(!next.window.assessment.unwrap().assessing);
    }

    #[tokio::test]
    async fn observed_edges_of_one_namespace_and_every_namespace_pair_in_words() {
        let (_dir, state) = fixture(WAITED).await;
        ingest(
            &state,
            &[
                (key(WEB, CATALOG, 8080), agg(T0 + SECOND, 6, 0)),
                (key(CHECKOUT, PAYMENTS, 8443), agg(T0 + SECOND, 1, 0)),
                (key(CHECKOUT, PAYMENTS, 9090), agg(T0 + SECOND, 1, 0)),
                (key(CART, AUTH, 8443), agg(T0 + SECOND, 2, 2)),
            ],
            T0 + 10 * SECOND,
        )
        .await;
        let all: o::ObservedEdges = get(&state, "/api/observed/edges").await;
        let scoped: o::ObservedEdges = get(&state, "/api/observed/edges?namespace=platform").await;
        // Only the edges with an end in platform: cart → auth.
        assert_eq!(scoped.edges.len(), 1, "{scoped:#?}");
        assert_eq!(
            (
                scoped.edges[0].source.as_str(),
                scoped.edges[0].target.as_str()
            ),
            (CART, AUTH)
        );
        assert!(all.edges.len() > scoped.edges.len());
        let touches = |a: &str, b: &str| a.starts_with("platform/") || b.starts_with("platform/");
        assert!(
            !scoped.unused.is_empty(),
            "the window is complete: {scoped:#?}"
        );
        assert!(scoped.unused.iter().all(|u| touches(&u.client, &u.server)));
        assert!(all.unused.iter().any(|u| !touches(&u.client, &u.server)));
        assert!(scoped.marks.iter().all(|m| {
            let (a, b) = m[0].split_once("->").unwrap();
            touches(a, b)
        }));
        // Scoped, the namespace pairs are those the namespace is an end of, as listed for the
        // whole estate, sorted by key.
        let touching: Vec<&[String; 3]> = all
            .namespaces
            .iter()
            .filter(|p| {
                let (a, b) = p[0].split_once("->").unwrap();
                touches(&format!("{a}/x"), &format!("{b}/x"))
            })
            .collect();
        assert!(!touching.is_empty());
        assert!(
            touching.len() < all.namespaces.len(),
            "{:#?}",
            all.namespaces
        );
        assert_eq!(scoped.namespaces.iter().collect::<Vec<_>>(), touching);
        let keys: Vec<&str> = all.namespaces.iter().map(|n| n[0].as_str()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        let pair = |k: &str| {
            all.namespaces
                .iter()
                .find(|n| n[0] == k)
                .cloned()
                .unwrap_or_else(|| panic!("no {k} in {:#?}", all.namespaces))
        };
        let sp = pair("storefront->platform");
        assert_eq!(sp[1], "dropped", "{sp:?}");
        assert!(sp[2].starts_with("observed 1 call (1 dropped)"), "{sp:?}");
        let since = format!("since {} UTC", day_time(&time(T0)));
        assert!(sp[2].ends_with(&since), "{sp:?}");
        let cc = pair("checkout->checkout");
        assert_eq!(cc[1], "undeclared", "{cc:?}");
        assert!(
            cc[2].starts_with("observed 2 calls (1 undeclared)"),
            "{cc:?}"
        );
        let ss = pair("storefront->storefront");
        assert!(ss[1] == "declared" || ss[1] == "undeclared", "{ss:?}");
        // A pair with declared calls only, none observed.
        let unused_only: Vec<&[String; 3]> =
            all.namespaces.iter().filter(|n| n[1] == "unused").collect();
        assert!(!unused_only.is_empty(), "{:#?}", all.namespaces);
        assert!(
            unused_only
                .iter()
                .all(|n| n[2].contains("not observed") && !n[2].contains("observed 1"))
        );
        // Since after every call: nothing observed, so only declared calls not observed.
        let later: o::ObservedEdges = get(
            &state,
            "/api/observed/edges?since=2026-11-29T05:00:05Z&namespace=platform",
        )
        .await;
        assert!(later.edges.is_empty());
        assert!(!later.namespaces.is_empty());
        assert!(
            later.namespaces.iter().all(|n| n[1] == "unused"),
            "{later:#?}"
        );

        // A neighbourhood's drawing: only the edges at the workload, the pairs of its
        // namespace.
        let at_auth: o::ObservedEdges = get(
            &state,
            "/api/observed/edges?workload=platform/auth%5BDeployment%5D",
        )
        .await;
        assert!(!at_auth.marks.is_empty(), "{at_auth:#?}");
        assert!(at_auth.marks.iter().all(|m| {
            let (a, b) = m[0].split_once("->").unwrap();
            a == AUTH || b == AUTH
        }));
        assert!(at_auth.edges.iter().any(|e| e.source == CART));
        assert_eq!(at_auth.namespaces, scoped.namespaces);
        // The overview: the pairs for the whole estate, no edges.
        let overview: o::ObservedEdges = get(&state, "/api/observed/edges?pairs_only=true").await;
        assert!(overview.edges.is_empty() && overview.marks.is_empty());
        assert!(overview.unused.is_empty());
        assert_eq!(overview.namespaces, all.namespaces);
        assert_eq!(overview.summary, all.summary);
    }

    #[tokio::test]
    async fn observed_drift_reaches_the_drift_summary_and_an_event_tells_dashboards() {
        let (_dir, state) = fixture(WAITED).await;
        let before: api::DriftReport = get(&state, "/api/drift").await;
        let total = |r: &api::DriftReport| r.summary.by_severity.values().sum::<u32>();
        let mut events = state.events.subscribe();
        ingest(
            &state,
            &[
                (key(CHECKOUT, PAYMENTS, 9090), agg(T0 + SECOND, 1, 0)),
                (key(CART, AUTH, 8443), agg(T0 + SECOND, 2, 2)),
            ],
            T0 + 10 * SECOND,
        )
        .await;
        // No request: the background assessment sees the new data and tells listeners.
        let event = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let e = events.recv().await.unwrap();
                if e.observed_drift.is_some() {
                    return e;
                }
            }
        })
        .await
        .expect("an event for the observed drift");
        assert_eq!(event.run, state.view().run);
        let n = event.observed_drift.unwrap();
        assert!(n >= 2, "{event:?}");
        let after: api::DriftReport = get(&state, "/api/drift").await;
        assert_eq!(total(&after), total(&before) + n, "{:#?}", after.summary);
        let high = |r: &api::DriftReport| {
            r.summary
                .by_severity
                .get(&api::DriftSeverity::High)
                .copied()
                .unwrap_or(0)
        };
        assert!(high(&after) > high(&before), "the dropped call is high");
        let kinds = get::<api::DriftReport>(
            &state,
            "/api/drift?kind=observed-undeclared,observed-dropped&per_page=500",
        )
        .await;
        assert_eq!(kinds.total, 2, "{:#?}", kinds.items);
        // Nothing changed since: no other event.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(events.try_recv().is_err());
    }

    #[test]
    fn since_may_be_hours_or_days_back_from_now() {
        let now = 10 * 86_400_000_000_000;
        assert_eq!(ago("1h", now), Some(now - 3_600_000_000_000));
        assert_eq!(ago("7d", now), Some(3 * 86_400_000_000_000));
        assert_eq!(ago("0h", now), None);
        assert_eq!(ago("forever", now), None);
        assert_eq!(ago("h", now), None);
    }
}
