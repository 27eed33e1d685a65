//! The access graph page: toolbar (search, filters, view, export), then either the overview
//! (namespaces ranked by problem calls, at any size) or a drawing of a readable set (one
//! namespace, a workload's neighbourhood, or every workload of a small estate), with the side
//! panel. Each view, filter and selection is a URL and a browser history entry.
//!
//! The page fetches what it draws (`/api/graph/overview`, `/api/graph?namespace=…`,
//! `/api/graph?workload=…`), never the whole estate unless it is small.

use std::collections::BTreeSet;

use crate::nav::{NavigateOptions, use_navigate, use_query_map};
use accord_api::{EdgeState, StateCounts};
use leptos::prelude::*;

use super::calls_panel::CallsPanel;
use super::graph_canvas::GraphCanvas;
use super::legend::{Legend, observed_legend};
use super::loading::{ErrorBox, Loading};
use super::overview::OverviewTable;
use super::search::Search;
use super::side_panel::SidePanel;
use crate::api;
use crate::app::use_state;
use crate::dom;
use crate::scene::{self, LARGE_CLUSTER, ViewParams};

/// Which view the URL asks for (`level=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Overview,
    Workload,
}

/// What the page shows.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Mode {
    Overview,
    /// The namespaces' workloads, other namespaces aggregated.
    Namespaces(BTreeSet<String>),
    /// One workload and its direct callers and callees.
    Focus(String),
    /// Every workload (small estates).
    All,
}

/// The length of a `since` window in ms.
fn window_ms(s: &str) -> Option<f64> {
    match s {
        "1h" => Some(3_600_000.0),
        "24h" => Some(86_400_000.0),
        "7d" => Some(604_800_000.0),
        _ => None,
    }
}

/// What the page's body shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    Loading,
    Overview,
    Drawing,
}

impl Mode {
    /// The graph query fetching what this mode draws (`None`: the overview's own).
    fn fetch(&self) -> Option<String> {
        match self {
            Mode::Overview => None,
            Mode::Namespaces(ns) => Some(format!(
                "namespace={}",
                api::encode(&ns.iter().map(String::as_str).collect::<Vec<_>>().join(","))
            )),
            Mode::Focus(f) => Some(format!("workload={}&depth=1", api::encode(f))),
            Mode::All => Some(String::new()),
        }
    }
}

/// The URL's view of the page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Query {
    params: ViewParams,
    /// `Some` when the URL says which view to show.
    level: Option<Level>,
    selected: Option<String>,
    edge: Option<String>,
    /// Only calls that appeared or changed within this window: `1h`, `24h` or `7d`.
    since: Option<String>,
    /// Observed traffic marked on the edges: only that seen within `1h`, `24h` or `7d`.
    seen: Option<String>,
}

fn split(v: Option<String>) -> BTreeSet<String> {
    v.map(|s| {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect()
    })
    .unwrap_or_default()
}

fn join<'a>(it: impl IntoIterator<Item = &'a str>) -> String {
    it.into_iter().collect::<Vec<_>>().join(",")
}

impl Query {
    fn to_url(&self) -> String {
        let mut q: Vec<(String, String)> = Vec::new();
        let p = &self.params;
        if !p.namespaces.is_empty() {
            q.push(("ns".into(), join(p.namespaces.iter().map(String::as_str))));
        }
        if p.states != ViewParams::default_states() {
            q.push(("state".into(), join(p.states.iter().map(|s| s.as_str()))));
        }
        if let Some(f) = &p.focus {
            q.push(("focus".into(), f.clone()));
        }
        if let Some(l) = self.level {
            q.push((
                "level".into(),
                match l {
                    Level::Overview => "overview",
                    Level::Workload => "workload",
                }
                .into(),
            ));
        }
        if !p.expanded.is_empty() {
            q.push(("expand".into(), join(p.expanded.iter().map(String::as_str))));
        }
        if let Some(s) = &self.selected {
            q.push(("sel".into(), s.clone()));
        }
        if let Some(s) = &self.since {
            q.push(("since".into(), s.clone()));
        }
        if let Some(s) = &self.seen {
            q.push(("seen".into(), s.clone()));
        }
        if let Some(e) = &self.edge {
            q.push(("edge".into(), e.clone()));
        }
        let qs: Vec<String> = q
            .into_iter()
            .map(|(k, v)| format!("{k}={}", crate::api::encode(&v)))
            .collect();
        if qs.is_empty() {
            "/graph".into()
        } else {
            format!("/graph?{}", qs.join("&"))
        }
    }

    fn mode(&self, large: bool) -> Mode {
        if let Some(f) = &self.params.focus {
            return Mode::Focus(f.clone());
        }
        if !self.params.namespaces.is_empty() {
            return Mode::Namespaces(self.params.namespaces.clone());
        }
        match self.level {
            Some(Level::Overview) => Mode::Overview,
            Some(Level::Workload) if !large => Mode::All,
            None if !large => Mode::All,
            _ => Mode::Overview,
        }
    }
}

/// The update toast: how many calls on screen changed, the first three as buttons opening
/// them (`src->dst`, and the state now or `None` when gone).
fn toast_html(list: &[(&String, Option<EdgeState>)]) -> String {
    use std::fmt::Write;
    let n = list.len();
    let mut h = format!(
        "Updated from the cluster: {n} call{} on screen changed: ",
        if n == 1 { "" } else { "s" }
    );
    for (i, (k, st)) in list.iter().take(3).enumerate() {
        if i > 0 {
            h += "; ";
        }
        let (a, b) = k.split_once("->").unwrap_or((k, k));
        let (a, b) = (scene::esc(a), scene::esc(b));
        let _ = match st {
            Some(st) => write!(
                h,
                r#"<button class="linkish toast-call" data-testid="toast-call" data-source="{a}" data-target="{b}">{a} → {b} now {st}</button>"#
            ),
            None => write!(
                h,
                r#"<span class="toast-call" data-testid="toast-call">{a} → {b} gone</span>"#
            ),
        };
    }
    if n > 3 {
        h += "…";
    }
    h
}

/// A time window filter: "{what}: any time", the last hour, 24 h or 7 days (`1h`, `24h`, `7d`;
/// `None` for any time).
fn window_select(
    what: &'static str,
    testid: &'static str,
    hidden: Signal<bool>,
    value: Signal<String>,
    set: impl Fn(Option<String>) + 'static,
) -> impl IntoView {
    view! {
        <select class="input" hidden=move || hidden.get() data-testid=testid
            aria-label=format!("{what} within") prop:value=move || value.get()
            on:change=move |ev| {
                let v = event_target_value(&ev);
                set((!v.is_empty()).then_some(v));
            }>
            {[("", "any time"), ("1h", "last hour"), ("24h", "last 24 h"), ("7d", "last 7 days")]
                .map(|(v, words)| view! { <option value=v>{format!("{what}: {words}")}</option> })
                .collect_view()}
        </select>
    }
}

#[component]
pub fn GraphPage() -> impl IntoView {
    let state = use_state();
    let query_map = use_query_map();
    let navigate = use_navigate();

    let query = Memo::new(move |_| {
        let q = query_map.get();
        let states = q
            .get("state")
            .map(|s| {
                s.split(',')
                    .filter_map(|s| s.parse::<EdgeState>().ok())
                    .collect()
            })
            .unwrap_or_else(ViewParams::default_states);
        Query {
            params: ViewParams {
                namespaces: split(q.get("ns")),
                states,
                focus: q.get("focus").filter(|s| !s.is_empty()),
                aggregate: false,
                expanded: split(q.get("expand")),
            },
            level: q.get("level").map(|l| {
                if l == "workload" {
                    Level::Workload
                } else {
                    Level::Overview
                }
            }),
            selected: q.get("sel").filter(|s| !s.is_empty()),
            edge: q.get("edge").filter(|s| !s.is_empty()),
            since: q.get("since").filter(|s| window_ms(s).is_some()),
            seen: q.get("seen").filter(|s| window_ms(s).is_some()),
        }
    });
    // Every change of view or selection is a history entry: Back and Forward walk them.
    let go = StoredValue::new(move |q: Query| {
        navigate(
            &q.to_url(),
            NavigateOptions {
                scroll: false,
                ..NavigateOptions::default()
            },
        )
    });
    let update = move |f: &dyn Fn(&mut Query)| {
        let mut q = query.get_untracked();
        f(&mut q);
        if q != query.get_untracked() {
            go.with_value(|g| g(q));
        }
    };

    let sort = RwSignal::new("worst");
    let overview = LocalResource::new(move || {
        state.refresh.track();
        let s = sort.get();
        async move { api::overview(s).await }
    });
    // Plain closures rather than memos where recomputing is cheap: each memo type costs WASM.
    let overview_ok = move || overview.get().and_then(|r| r.ok());
    let large = move || {
        overview.with(|o| {
            o.as_ref()
                .and_then(|r| r.as_ref().ok())
                .map(|o| o.workloads as usize >= LARGE_CLUSTER)
        })
    };
    let mode = move || large().map(|l| query.get().mode(l));
    let fetch = Memo::new(move |_| mode().and_then(|m| m.fetch()));
    let part = LocalResource::new(move || {
        state.refresh.track();
        let q = fetch.get();
        async move {
            match q {
                Some(q) => api::graph_part(&q).await.map(Some),
                None => Ok(None),
            }
        }
    });
    let graph = Memo::new(move |_| part.get().and_then(|r| r.ok()).flatten());
    let error = Memo::new(move |_| {
        overview
            .get()
            .and_then(|r| r.err())
            .or_else(|| part.get().and_then(|r| r.err()))
    });
    // When an update changes calls on screen, say so for a few seconds, and mark them in the
    // drawing: `changed` holds the scene edge ids they are drawn as (a workload, or its
    // namespace's box, at either end). The toast is HTML (its names are buttons, clicks handled
    // on the toast): cheaper in WASM than a view per name.
    let seen = StoredValue::new((
        None::<String>,
        std::collections::BTreeMap::<String, EdgeState>::new(),
    ));
    let toast = RwSignal::new(None::<String>);
    let changed = RwSignal::new(Vec::<String>::new());
    let updates = StoredValue::new(0u32);
    Effect::new(move |_| {
        let key = fetch.get();
        let now: std::collections::BTreeMap<String, EdgeState> = graph.with(|g| {
            g.iter()
                .flat_map(|g| &g.edges)
                .map(|e| (format!("{}->{}", e.source, e.target), e.state))
                .collect()
        });
        if now.is_empty() {
            return;
        }
        let (last_key, last) = seen.get_value();
        if last_key == key && !last.is_empty() {
            let mut list: Vec<(&String, Option<EdgeState>)> = now
                .iter()
                .filter(|(k, s)| last.get(*k) != Some(*s))
                .map(|(k, s)| (k, Some(*s)))
                .collect();
            list.extend(
                last.keys()
                    .filter(|k| !now.contains_key(*k))
                    .map(|k| (k, None)),
            );
            // Only calls on screen (in a shown state before or after), worst first.
            let shown = query.get_untracked().params.states;
            list.retain(|(k, st)| {
                st.is_some_and(|s| shown.contains(&s))
                    || last.get(*k).is_some_and(|s| shown.contains(s))
            });
            let rank = |i: usize| list[i].1.map_or(0, |s| 1 + scene::severity(s));
            let mut order: Vec<usize> = (0..list.len()).collect();
            scene::isort(&mut order, &|a, b| rank(a) > rank(b));
            let list: Vec<(&String, Option<EdgeState>)> =
                order.into_iter().map(|i| list[i]).collect();
            if !list.is_empty() {
                let ns = |id: &str| accord_api::filter::namespace_of(id).to_string();
                let mut ids = Vec::new();
                for (k, _) in &list {
                    let (a, b) = k.split_once("->").unwrap_or((k, k));
                    for x in [a.to_string(), ns(a)] {
                        for y in [b.to_string(), ns(b)] {
                            ids.push(format!("{x}->{y}"));
                        }
                    }
                }
                changed.set(ids);
                toast.set(Some(toast_html(&list)));
                updates.update_value(|u| *u += 1);
                let this = updates.get_value();
                set_timeout(
                    move || {
                        if updates.try_get_value() == Some(this) {
                            toast.set(None);
                            changed.set(Vec::new());
                        }
                    },
                    std::time::Duration::from_secs(8),
                );
            }
        }
        seen.set_value((key, now));
    });
    // Layout of every state (`open` only when shown: default-allow pairs are many and would
    // spread the drawing out), so that toggling a state changes what is visible, never where
    // things are.
    let laid_out = Memo::new(move |_| {
        let m = mode();
        let mut p = query.get().params;
        let open = p.states.contains(&EdgeState::Open);
        p.states = EdgeState::ALL
            .into_iter()
            .filter(|s| *s != EdgeState::Open || open)
            .collect();
        p.aggregate = matches!(m, Some(Mode::Namespaces(_)));
        if let Some(Mode::Namespaces(ns)) = &m {
            p.expanded.extend(ns.iter().cloned());
        }
        let since = query.get().since.as_deref().and_then(window_ms);
        graph.with(|g| {
            g.as_ref()
                .map(|g| match since {
                    // The time filter: calls whose state began within the window.
                    Some(ms) => {
                        let from = js_sys::Date::now() - ms;
                        let mut g = g.clone();
                        g.edges.retain(|e| {
                            e.last_changed
                                .as_deref()
                                .is_some_and(|t| js_sys::Date::parse(t) >= from)
                        });
                        scene::build(&g, &p)
                    }
                    None => scene::build(g, &p),
                })
                .unwrap_or_default()
        })
    });
    // Observed traffic (`--flows`, `--hubble`), marked on the workload edges.
    let seen = Memo::new(move |_| query.get().seen);
    // (The server reads `1h`, `24h`, `7d` as back from now.) A signal set by a task: cheaper
    // in WASM than another resource type.
    let observed = RwSignal::new(api::ObservedMarks::default());
    // Each view asks only for what it draws: the overview the namespace pairs, a namespace's
    // drawing the edges with an end in it, a neighbourhood its workload's edges.
    let obs_scope = Memo::new(move |_| match mode() {
        Some(Mode::Overview) => Some(("pairs_only", "true".to_string())),
        Some(Mode::Namespaces(ns)) if ns.len() == 1 => {
            ns.into_iter().next().map(|n| ("namespace", n))
        }
        Some(Mode::Focus(w)) => Some(("workload", w)),
        _ => None,
    });
    Effect::new(move |_| {
        state.refresh.track();
        let since = seen.get();
        let scope = obs_scope.get();
        leptos::task::spawn_local(async move {
            if let Ok(m) = api::observed_edges(since.clone(), scope.clone()).await
                && seen.get_untracked() == since
                && obs_scope.get_untracked() == scope
            {
                observed.set(m);
            }
        });
    });
    let summary = Signal::derive(move || observed.with(|o| o.summary.clone()));
    let scene = Memo::new(move |_| {
        let states = query.get().params.states;
        let mut s = laid_out.with(|s| scene::only_states(s, &states));
        observed.with(|o| scene::observe(&mut s, &o.marks, &o.namespaces));
        s
    });
    let namespaces = Signal::derive(move || {
        overview.with(|o| {
            o.as_ref()
                .and_then(|r| r.as_ref().ok())
                .map(|o| {
                    o.namespaces
                        .iter()
                        .map(|n| n.namespace.clone())
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    });
    // The search box completes workload ids too, fetched when it is first used.
    let want_ids = StoredValue::new(false);
    let ids = RwSignal::new(Vec::<String>::new());
    let load_ids = move || {
        if !want_ids.get_value() {
            want_ids.set_value(true);
            leptos::task::spawn_local(async move {
                ids.set(api::workload_ids().await.unwrap_or_default());
            });
        }
    };
    let options = Signal::derive(move || {
        let mut v = namespaces.get();
        v.extend(ids.get());
        v
    });
    let counts = Signal::derive(move || {
        let p = query.get().params;
        if matches!(mode(), Some(Mode::Overview)) {
            return overview.with(|o| {
                o.as_ref()
                    .and_then(|r| r.as_ref().ok())
                    .map(|o| o.calls.clone())
                    .unwrap_or_default()
            });
        }
        let mut c = StateCounts::default();
        graph.with(|g| {
            if let Some(g) = g {
                let all = ViewParams {
                    states: EdgeState::ALL.into_iter().collect(),
                    namespaces: BTreeSet::new(),
                    ..p
                };
                // Within the time filter's window, as drawn.
                let from = query
                    .get()
                    .since
                    .as_deref()
                    .and_then(window_ms)
                    .map(|ms| js_sys::Date::now() - ms);
                for e in scene::visible_edges(g, &all) {
                    if from.is_none_or(|from| {
                        e.last_changed
                            .as_deref()
                            .is_some_and(|t| js_sys::Date::parse(t) >= from)
                    }) {
                        c.add(e.state, 1);
                    }
                }
            }
        });
        c
    });

    let on_pick = Callback::new(move |id: String| {
        update(&|q| {
            if id.contains('/') {
                q.params.focus = Some(id.clone());
                q.selected = Some(id.clone());
            } else {
                q.params.focus = None;
                q.params.namespaces = [id.clone()].into();
                q.selected = None;
            }
            q.edge = None;
        })
    });
    let on_namespace = Callback::new(move |(ns, st): (String, Option<EdgeState>)| {
        update(&|q| {
            q.params.focus = None;
            q.params.namespaces = [ns.clone()].into();
            q.params.expanded.clear();
            if let Some(st) = st {
                q.params.states = [st].into();
            }
            q.selected = None;
            q.edge = None;
        })
    });
    let on_node = Callback::new(move |id: String| {
        if id.contains('/') {
            update(&|q| {
                q.selected = Some(id.clone());
                q.edge = None;
            })
        } else {
            on_namespace.run((id, None));
        }
    });
    let on_edge = Callback::new(move |(src, dst): (String, String)| {
        update(&|q| {
            // A call between workloads opens its client's panel at that call; a namespace
            // edge lists the calls behind it.
            q.selected = (src.contains('/') && dst.contains('/')).then(|| src.clone());
            q.edge = Some(format!("{src}->{dst}"));
        })
    });
    let on_toggle = Callback::new(move |s: EdgeState| {
        update(&|q| {
            if !q.params.states.remove(&s) {
                q.params.states.insert(s);
            }
        })
    });
    let close_panel = Callback::new(move |()| {
        update(&|q| {
            q.selected = None;
            q.edge = None;
        })
    });
    let focus_on = Callback::new(move |id: String| {
        update(&|q| {
            q.params.focus = Some(id.clone());
        })
    });
    let to_overview = move || {
        update(&|q| {
            *q = Query {
                level: Some(Level::Overview),
                ..Query::default()
            };
            q.params.states = ViewParams::default_states();
        })
    };

    // Escape closes the panel, then leaves focus mode.
    let handle = window_event_listener(leptos::ev::keydown, move |ev| {
        if ev.key() == "Escape" {
            let q = query.get_untracked();
            if q.selected.is_some() || q.edge.is_some() {
                close_panel.run(());
            } else if q.params.focus.is_some() {
                update(&|q| q.params.focus = None);
            }
        }
    });
    on_cleanup(move || handle.remove());

    let selected = Memo::new(move |_| query.get().selected);
    // A namespace edge (one end a namespace) lists its calls.
    let ns_edge = move || {
        let q = query.get();
        q.edge.filter(|_| q.selected.is_none()).and_then(|e| {
            e.split_once("->")
                .map(|(a, b)| (a.to_string(), b.to_string()))
        })
    };
    let active_states = Signal::derive(move || query.get().params.states.into_iter().collect());
    let is_overview = Memo::new(move |_| matches!(mode(), Some(Mode::Overview)));
    // What the body shows, as a memo: a new selection or filter must not rebuild the drawing.
    let body = Memo::new(move |_| match mode() {
        None => Body::Loading,
        Some(Mode::Overview) => Body::Overview,
        Some(_) if graph.with(Option::is_none) => Body::Loading,
        Some(_) => Body::Drawing,
    });

    view! {
        <section class="page graph-page" data-testid="graph-page">
            <div class="toolbar">
                <div class="search-wrap" on:focusin=move |_| load_ids()>
                    <Search options=options on_pick=on_pick/>
                </div>
                <label class="field inline">
                    <span>"Namespace"</span>
                    <select
                        class="input"
                        data-testid="ns-filter"
                        aria-label="Namespace"
                        on:change=move |ev| {
                            let v = event_target_value(&ev);
                            if v.is_empty() { to_overview() } else { on_namespace.run((v, None)) }
                        }
                        prop:value=move || query.get().params.namespaces.into_iter().next().unwrap_or_default()
                    >
                        <option value="">"All namespaces"</option>
                        // Options arriving after the view is set select it themselves.
                        {move || {
                            let cur = query.get_untracked().params.namespaces.into_iter().next();
                            namespaces.get().into_iter().map(|ns| view! { <option value=ns.clone() selected=cur.as_ref() == Some(&ns)>{ns.clone()}</option> }).collect_view()
                        }}
                    </select>
                </label>
                <div class="segmented" role="group" aria-label="View">
                    <button
                        class:active=move || is_overview.get()
                        data-testid="level-overview"
                        title="Namespaces ranked by problem calls"
                        on:click=move |_| to_overview()
                    >"Overview"</button>
                    <button
                        class:active=move || matches!(mode(), Some(Mode::All))
                        data-testid="level-workload"
                        disabled=move || large().unwrap_or(true)
                        title=move || if large().unwrap_or(true) {
                            format!("Too many workloads to draw at once (≥ {LARGE_CLUSTER}): pick a namespace or search a workload")
                        } else {
                            "Every workload".to_string()
                        }
                        on:click=move |_| update(&|q| { q.level = Some(Level::Workload); q.params.namespaces.clear(); q.params.focus = None; })
                    >"All workloads"</button>
                </div>
                {window_select("Changed", "since-filter", Signal::derive(|| false),
                    Signal::derive(move || query.get().since.unwrap_or_default()),
                    move |v| update(&|q| q.since = v.clone()))}
                {window_select("Observed", "seen-filter", Signal::derive(move || summary.get().is_empty()),
                    Signal::derive(move || query.get().seen.unwrap_or_default()),
                    move |v| update(&|q| q.seen = v.clone()))}
                <div class="spacer"></div>
                <button class="btn ghost" data-testid="export-svg" disabled=move || is_overview.get() on:click=move |_| dom::download("accord-graph.svg", "image/svg+xml", &scene::to_svg(&scene.get_untracked()))>"Export SVG"</button>
                <button class="btn ghost" data-testid="export-json" disabled=move || is_overview.get() on:click=move |_| dom::download("accord-graph.json", "application/json", &scene::to_json(&scene.get_untracked()))>"Export JSON"</button>
            </div>
            <div class="subbar">
                <Legend active=active_states counts=counts on_toggle=on_toggle/>
                {observed_legend(summary)}
                {move || (!is_overview.get() && large() == Some(true)).then(|| view! {
                    <button class="chip" data-testid="back-to-overview" on:click=move |_| to_overview()>"← Overview"</button>
                })}
                {move || query.get().params.focus.map(|f| view! {
                    <span class="chip focus-chip" data-testid="focus-chip">
                        "Focused on "<strong>{f}</strong>
                        <button class="chip-x" aria-label="Leave focus mode" on:click=move |_| update(&|q| q.params.focus = None)>"×"</button>
                    </span>
                })}
                {move || match mode() {
                    Some(Mode::Namespaces(ns)) => Some(view! {
                        <span class="chip" data-testid="ns-chip">
                            "Namespace "<strong>{ns.into_iter().collect::<Vec<_>>().join(", ")}</strong>
                            ": its workloads, other namespaces as one box each"
                        </span>
                    }),
                    _ => None,
                }}
            </div>
            {move || toast.get().map(|t| view! {
                <div
                    class="toast"
                    role="status"
                    data-testid="update-toast"
                    inner_html=t
                    on:click=move |ev| {
                        if let Some(ends) = super::graph_canvas::ends_at(ev.target()) {
                            on_edge.run(ends);
                        }
                    }
                ></div>
            })}
            <div class="graph-body">
                {move || match (body.get(), error.get()) {
                    (_, Some(e)) => view! { <ErrorBox message=e/> }.into_any(),
                    (Body::Loading, None) => view! { <Loading label="Loading the access graph…"/> }.into_any(),
                    (Body::Overview, None) => (move || match overview_ok() {
                        Some(o) => view! { <OverviewTable overview=o sort=sort on_pick=on_namespace observed=observed/> }.into_any(),
                        None => view! { <Loading label="Loading the overview…"/> }.into_any(),
                    }).into_any(),
                    (Body::Drawing, None) => view! {
                        <GraphCanvas
                            scene=scene
                            selected=Signal::derive(move || query.get().selected)
                            highlight_edge=Signal::derive(move || query.get().edge)
                            changed=changed
                            on_node=on_node
                            on_edge=on_edge
                        />
                        {move || scene.with(|s| s.nodes.is_empty()).then(|| view! {
                            <p class="empty overlay">"No workloads match these filters."</p>
                        })}
                    }.into_any(),
                }}
                {move || selected.get().map(|id| view! {
                    <SidePanel id=id edge=Signal::derive(move || query.get().edge) on_close=close_panel on_focus=focus_on/>
                })}
                {move || ns_edge().map(|(src, dst)| view! {
                    <CallsPanel
                        graph=graph
                        source=src
                        target=dst
                        states=Signal::derive(move || query.get().params.states)
                        on_close=close_panel
                        on_pick=Callback::new(move |(s, t): (String, String)| update(&|q| {
                            q.selected = Some(s.clone());
                            q.edge = Some(format!("{s}->{t}"));
                        }))
                    />
                })}
            </div>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_windows_are_an_hour_a_day_or_a_week() {
        assert_eq!(window_ms("1h"), Some(3_600_000.0));
        assert_eq!(window_ms("7d"), Some(7.0 * 86_400_000.0));
        assert_eq!(window_ms("forever"), None);
    }

    #[test]
    fn a_large_estate_opens_on_the_overview_and_a_namespace_on_its_drawing() {
        let q = Query::default();
        assert_eq!(q.mode(true), Mode::Overview);
        assert_eq!(q.mode(false), Mode::All);
        let mut q = Query::default();
        q.params.namespaces.insert("team-0042".into());
        assert_eq!(
            q.mode(true),
            Mode::Namespaces(["team-0042".to_string()].into())
        );
        q.params.focus = Some("a/b[Deployment]".into());
        assert!(matches!(q.mode(true), Mode::Focus(_)));
        // The whole estate is drawn only when it is small.
        let q = Query {
            level: Some(Level::Workload),
            ..Query::default()
        };
        assert_eq!(q.mode(true), Mode::Overview);
        assert_eq!(q.mode(false), Mode::All);
    }
}
