//! The access graph page: toolbar (search, filters, level, export), the canvas and the side
//! panel. The filters, the focus and the selection live in the URL.

use std::collections::BTreeSet;

use accord_api::{EdgeState, Graph, StateCounts};
use leptos::prelude::*;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_query_map};

use super::graph_canvas::GraphCanvas;
use super::legend::Legend;
use super::loading::{ErrorBox, Loading};
use super::search::Search;
use super::side_panel::SidePanel;
use crate::app::use_state;
use crate::dom;
use crate::scene::{self, LARGE_CLUSTER, ViewParams};

/// The URL's view of the page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Query {
    params: ViewParams,
    /// `Some` when the URL says which level to show.
    level: Option<bool>,
    selected: Option<String>,
    edge: Option<String>,
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
                if l { "namespace" } else { "workload" }.into(),
            ));
        }
        if !p.expanded.is_empty() {
            q.push(("expand".into(), join(p.expanded.iter().map(String::as_str))));
        }
        if let Some(s) = &self.selected {
            q.push(("sel".into(), s.clone()));
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
            level: q.get("level").map(|l| l == "namespace"),
            selected: q.get("sel").filter(|s| !s.is_empty()),
            edge: q.get("edge").filter(|s| !s.is_empty()),
        }
    });
    let go = StoredValue::new(move |q: Query| {
        navigate(
            &q.to_url(),
            NavigateOptions {
                replace: true,
                scroll: false,
                ..NavigateOptions::default()
            },
        )
    });
    let update = move |f: &dyn Fn(&mut Query)| {
        let mut q = query.get_untracked();
        f(&mut q);
        go.with_value(|g| g(q));
    };

    let graph = Memo::new(move |_| state.graph.get().and_then(|r| r.ok()));
    let error = Memo::new(move |_| state.graph.get().and_then(|r| r.err()));
    let aggregate = Memo::new(move |_| {
        let q = query.get();
        q.level.unwrap_or_else(|| {
            graph.with(|g| g.as_ref().is_some_and(|g| g.nodes.len() >= LARGE_CLUSTER))
        })
    });
    let scene = Memo::new(move |_| {
        let mut p = query.get().params;
        p.aggregate = aggregate.get();
        graph.with(|g| g.as_ref().map(|g| scene::build(g, &p)).unwrap_or_default())
    });
    let ids = Signal::derive(move || {
        graph.with(|g| {
            g.as_ref()
                .map(|g| g.nodes.iter().map(|n| n.id.clone()).collect())
                .unwrap_or_default()
        })
    });
    let namespaces = Signal::derive(move || {
        graph.with(|g| {
            g.as_ref()
                .map(|g: &Graph| {
                    g.nodes
                        .iter()
                        .map(|n| n.namespace.clone())
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    });
    let counts = Signal::derive(move || {
        let p = query.get().params;
        let mut c = StateCounts::default();
        graph.with(|g| {
            if let Some(g) = g {
                let all = ViewParams {
                    states: EdgeState::ALL.into_iter().collect(),
                    ..p
                };
                for e in scene::visible_edges(g, &all) {
                    c.add(e.state, 1);
                }
            }
        });
        c
    });

    let on_pick = Callback::new(move |id: String| {
        update(&|q| {
            q.params.focus = Some(id.clone());
            q.selected = Some(id.clone());
            q.edge = None;
        })
    });
    let on_node = Callback::new(move |id: String| {
        let is_ns = !id.contains('/');
        update(&|q| {
            if is_ns {
                q.params.expanded.insert(id.clone());
            } else {
                q.selected = Some(id.clone());
                q.edge = None;
            }
        })
    });
    let on_edge = Callback::new(move |(src, dst): (String, String)| {
        if src.contains('/') {
            update(&|q| {
                q.selected = Some(src.clone());
                q.edge = Some(format!("{src}->{dst}"));
            })
        }
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

    // Escape closes the panel, then leaves focus mode.
    let handle = window_event_listener(leptos::ev::keydown, move |ev| {
        if ev.key() == "Escape" {
            let q = query.get_untracked();
            if q.selected.is_some() {
                close_panel.run(());
            } else if q.params.focus.is_some() {
                update(&|q| q.params.focus = None);
            }
        }
    });
    on_cleanup(move || handle.remove());

    let selected = Memo::new(move |_| query.get().selected);
    let active_states = Signal::derive(move || query.get().params.states.into_iter().collect());

    view! {
        <section class="page graph-page" data-testid="graph-page">
            <div class="toolbar">
                <Search options=ids on_pick=on_pick/>
                <label class="field inline">
                    <span>"Namespace"</span>
                    <select
                        class="input"
                        data-testid="ns-filter"
                        aria-label="Namespace filter"
                        on:change=move |ev| {
                            let v = event_target_value(&ev);
                            update(&|q| {
                                q.params.namespaces = if v.is_empty() { BTreeSet::new() } else { [v.clone()].into() };
                            })
                        }
                        prop:value=move || query.get().params.namespaces.into_iter().next().unwrap_or_default()
                    >
                        <option value="">"All namespaces"</option>
                        {move || namespaces.get().into_iter().map(|ns| view! { <option value=ns.clone()>{ns.clone()}</option> }).collect_view()}
                    </select>
                </label>
                <div class="segmented" role="group" aria-label="Level">
                    <button
                        class:active=move || aggregate.get()
                        data-testid="level-namespace"
                        on:click=move |_| update(&|q| { q.level = Some(true); q.params.expanded.clear(); })
                    >"Namespaces"</button>
                    <button
                        class:active=move || !aggregate.get()
                        data-testid="level-workload"
                        on:click=move |_| update(&|q| q.level = Some(false))
                    >"Workloads"</button>
                </div>
                <div class="spacer"></div>
                <button class="btn ghost" data-testid="export-svg" on:click=move |_| dom::download("accord-graph.svg", "image/svg+xml", &scene::to_svg(&scene.get_untracked()))>"Export SVG"</button>
                <button class="btn ghost" data-testid="export-json" on:click=move |_| dom::download("accord-graph.json", "application/json", &scene::to_json(&scene.get_untracked()))>"Export JSON"</button>
            </div>
            <div class="subbar">
                <Legend active=active_states counts=counts on_toggle=on_toggle/>
                {move || query.get().params.focus.map(|f| view! {
                    <span class="chip focus-chip" data-testid="focus-chip">
                        "Focused on "<strong>{f}</strong>
                        <button class="chip-x" aria-label="Leave focus mode" on:click=move |_| update(&|q| q.params.focus = None)>"×"</button>
                    </span>
                })}
                {move || (!query.get().params.expanded.is_empty()).then(|| view! {
                    <button class="chip" on:click=move |_| update(&|q| q.params.expanded.clear())>"Collapse namespaces"</button>
                })}
            </div>
            <div class="graph-body">
                {move || match (graph.get().is_some(), error.get()) {
                    (_, Some(e)) => view! { <ErrorBox message=e/> }.into_any(),
                    (false, None) => view! { <Loading label="Loading the access graph…"/> }.into_any(),
                    (true, None) => view! {
                        <GraphCanvas
                            scene=scene
                            selected=Signal::derive(move || query.get().selected)
                            highlight_edge=Signal::derive(move || query.get().edge)
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
            </div>
        </section>
    }
}
