//! The panel of a namespace edge: the calls behind it, worst first, each opening its client's
//! panel at that call.

use std::collections::BTreeSet;

use accord_api::{EdgeState, Graph, filter};
use leptos::prelude::*;

use wasm_bindgen::JsCast;

use crate::scene::{colour, esc};

/// The states in the order of `accord_api::filter::severity`, worst first.
const WORST_FIRST: [EdgeState; 5] = [
    EdgeState::Blocked,
    EdgeState::Undeclared,
    EdgeState::Unprotected,
    EdgeState::Enforced,
    EdgeState::Open,
];

/// Whether a call's end is the scene node `id` (a workload id, or a whole namespace).
fn matches(end: &str, id: &str) -> bool {
    if id.contains('/') {
        end == id
    } else {
        filter::namespace_of(end) == id
    }
}

/// The list's rows as HTML (one string, not a view per row); clicks are handled on the list.
fn rows_html(calls: &[(String, String, EdgeState, String)]) -> String {
    use std::fmt::Write;
    let mut h = String::new();
    for (s, t, st, ports) in calls {
        let (s, t) = (esc(s), esc(t));
        let _ = write!(
            h,
            r#"<li class="edge-row" data-testid="call-{s}->{t}" data-state="{st}"><button class="call-row" data-source="{s}" data-target="{t}"><span class="pill" style="--c:{}">{st}</span><span class="edge-other">{s} → {t}</span><span class="muted">{}</span></button></li>"#,
            colour(*st),
            esc(ports)
        );
    }
    h
}

/// The call of the row a click landed on.
fn picked(ev: &leptos::ev::MouseEvent) -> Option<(String, String)> {
    let el: web_sys::Element = ev.target()?.dyn_into().ok()?;
    let button = el.closest("button[data-source]").ok()??;
    Some((
        button.get_attribute("data-source")?,
        button.get_attribute("data-target")?,
    ))
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
    // Worst first without a sort: one pass per state, in the order of severity.
    let calls = move || {
        let states = states.get();
        graph.with(|g| {
            let edges = g.iter().flat_map(|g| &g.edges);
            let mut v: Vec<(String, String, EdgeState, String)> = Vec::new();
            for st in WORST_FIRST.into_iter().filter(|s| states.contains(s)) {
                v.extend(
                    edges
                        .clone()
                        .filter(|e| e.state == st)
                        .filter(|e| matches(&e.source, &src) && matches(&e.target, &dst))
                        .map(|e| (e.source.clone(), e.target.clone(), e.state, e.ports.clone())),
                );
            }
            v
        })
    };
    view! {
        <aside class="side-panel" data-testid="calls-panel" aria-label="Calls">
            <button class="btn icon ghost close" aria-label="Close" on:click=move |_| on_close.run(())>"×"</button>
            <div class="panel-head">
                <h2 data-testid="panel-title">{format!("{source} → {target}")}</h2>
            </div>
            {move || {
                let v = calls();
                view! {
                    <p class="muted">{format!("{} calls, worst first", v.len())}</p>
                    <ul class="edges-list" inner_html=rows_html(&v) on:click=move |ev| {
                        if let Some(p) = picked(&ev) {
                            on_pick.run(p);
                        }
                    }></ul>
                }
            }}
        </aside>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_first_follows_the_severity_ranking() {
        let ranks: Vec<u8> = WORST_FIRST.iter().map(|s| filter::severity(*s)).collect();
        assert!(ranks.windows(2).all(|w| w[0] > w[1]), "{ranks:?}");
        assert_eq!(WORST_FIRST.len(), EdgeState::ALL.len());
    }

    #[test]
    fn a_namespace_end_matches_every_workload_in_it() {
        assert!(matches("storefront/cart[Deployment]", "storefront"));
        assert!(!matches("storefront/cart[Deployment]", "platform"));
        assert!(matches(
            "storefront/cart[Deployment]",
            "storefront/cart[Deployment]"
        ));
    }
}
