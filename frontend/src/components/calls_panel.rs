//! The panel of a namespace edge: the calls behind it, worst first, each opening its client's
//! panel at that call.

use std::collections::BTreeSet;

use accord_api::{EdgeState, Graph, filter};
use leptos::prelude::*;

use crate::scene::{colour, severity};

/// Whether a call's end is the scene node `id` (a workload id, or a whole namespace).
fn matches(end: &str, id: &str) -> bool {
    if id.contains('/') {
        end == id
    } else {
        filter::namespace_of(end) == id
    }
}

#[component]
pub fn CallsPanel(
    #[prop(into)] graph: Signal<Option<Graph>>,
    source: String,
    target: String,
    #[prop(into)] states: Signal<BTreeSet<EdgeState>>,
    on_close: Callback<()>,
    on_pick: Callback<(String, String)>,
) -> impl IntoView {
    let (src, dst) = (source.clone(), target.clone());
    let calls = Memo::new(move |_| {
        let states = states.get();
        let mut v: Vec<(String, String, EdgeState, String)> = graph.with(|g| {
            g.iter()
                .flat_map(|g| &g.edges)
                .filter(|e| states.contains(&e.state))
                .filter(|e| matches(&e.source, &src) && matches(&e.target, &dst))
                .map(|e| (e.source.clone(), e.target.clone(), e.state, e.ports.clone()))
                .collect()
        });
        v.sort_by(|a, b| {
            severity(b.2)
                .cmp(&severity(a.2))
                .then_with(|| (&a.0, &a.1).cmp(&(&b.0, &b.1)))
        });
        v
    });
    view! {
        <aside class="side-panel" data-testid="calls-panel" aria-label="Calls">
            <button class="btn icon ghost close" aria-label="Close" on:click=move |_| on_close.run(())>"×"</button>
            <div class="panel-head">
                <h2 data-testid="panel-title">{format!("{source} → {target}")}</h2>
                <p class="muted">{move || format!("{} calls, worst first", calls.with(Vec::len))}</p>
            </div>
            <ul class="edges-list">
                {move || calls.get().into_iter().map(|(s, t, st, ports)| {
                    let (s2, t2) = (s.clone(), t.clone());
                    view! {
                        <li class="edge-row" data-testid=format!("call-{s}->{t}") data-state=st.as_str()>
                            <button class="call-row" on:click=move |_| on_pick.run((s2.clone(), t2.clone()))>
                                <span class="pill" style=format!("--c:{}", colour(st))>{st.as_str()}</span>
                                <span class="edge-other">{format!("{s} → {t}")}</span>
                                <span class="muted">{ports}</span>
                            </button>
                        </li>
                    }
                }).collect_view()}
            </ul>
        </aside>
    }
}
