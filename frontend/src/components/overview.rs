//! The graph page's overview: where the problems are, at any size. One row per namespace, worst
//! first (the server ranks them: blocked calls, then unprotected and undeclared ones), each count
//! a link to the namespace's drawing filtered to that state. A table, not a drawing: at 1,500
//! namespaces a drawing is a band, a ranked list is read in seconds.

use accord_api::{EdgeState, NamespaceSummary, Overview};
use leptos::prelude::*;

use super::legend::describe;
use wasm_bindgen::JsCast;

use crate::scene::{colour, esc};

/// Per namespace: the namespace pairs it is part of that are observed undeclared, and dropped
/// (a list: a map type costs more WASM, and few namespaces have any).
pub type Observed = Vec<(String, u32, u32)>;

/// [`Observed`] from the observed marks per namespace pair (`[a->b, mark, words]`).
pub fn observed_of(pairs: &[[String; 3]]) -> Observed {
    let mut m = Observed::new();
    for [key, mark, _] in pairs {
        let (u, d) = match mark.as_str() {
            "undeclared" => (1, 0),
            "dropped" => (0, 1),
            _ => continue,
        };
        let (a, b) = key.split_once("->").unwrap_or((key, key));
        // A pair inside one namespace counts once.
        let ends = [a, b];
        for ns in &ends[..if a == b { 1 } else { 2 }] {
            match m.iter_mut().find(|e| e.0 == *ns) {
                Some(e) => {
                    e.1 += u;
                    e.2 += d;
                }
                None => m.push((ns.to_string(), u, d)),
            }
        }
    }
    m
}

/// Rows shown before "Show all".
const FIRST_ROWS: usize = 40;

/// The problem states, worst first, then the rest.
const COLUMNS: [EdgeState; 5] = [
    EdgeState::Blocked,
    EdgeState::Unprotected,
    EdgeState::Undeclared,
    EdgeState::Open,
    EdgeState::Enforced,
];

fn plural(n: u32, one: &str) -> String {
    format!("{n} {one}{}", if n == 1 { "" } else { "s" })
}

/// The table's rows as HTML: one string rather than a view per cell keeps the WASM small and
/// draws 1,500 rows at once. Clicks are handled once, on the table body ([`picked`]).
fn rows_html(rows: &[NamespaceSummary], max_problems: u32, obs: &Observed) -> String {
    use std::fmt::Write;
    let mut h = String::new();
    for (rank, n) in rows.iter().enumerate() {
        let c = n.all();
        let (b, r, _) = n.badness();
        let ns = esc(&n.namespace);
        let bar = f64::from(b + r) / f64::from(max_problems) * 100.0;
        let _ = write!(
            h,
            r#"<tr data-testid="ov-row-{ns}"{}><td class="num muted">{}</td><th scope="row"><button class="link ns-link" data-ns="{ns}" title="Draw the calls of {ns}">{ns}</button><span class="ov-bar" style="width:{bar:.0}%"></span>"#,
            if b + r == 0 { r#" class="clean""# } else { "" },
            rank + 1
        );
        // Observed traffic the declarations do not cover, as `?` undeclared and `✕` dropped
        // namespace pairs.
        if let Some((_, u, d)) = obs.iter().find(|o| o.0 == n.namespace) {
            let (u, d) = (*u, *d);
            let _ = write!(
                h,
                r#"<span class="ov-obs" data-testid="ov-obs-{ns}" title="observed: {u} undeclared, {d} dropped namespace pair(s)">{}{}</span>"#,
                if u > 0 {
                    format!("?{u} ")
                } else {
                    String::new()
                },
                if d > 0 {
                    format!("✕{d}")
                } else {
                    String::new()
                }
            );
        }
        h.push_str("</th>");
        for st in COLUMNS {
            let k = c.get(st);
            let _ = write!(h, r#"<td class="num" data-state="{st}">"#);
            if k > 0 {
                let _ = write!(
                    h,
                    r#"<button class="count-link" style="--c:{}" data-testid="ov-{ns}-{st}" data-ns="{ns}" data-state="{st}" title="{k} {st} ({}): {} in, {} out, {} internal">{k}</button>"#,
                    colour(st),
                    describe(st),
                    n.inbound.get(st),
                    n.outbound.get(st),
                    n.internal.get(st)
                );
            }
            h.push_str("</td>");
        }
        let _ = write!(
            h,
            r#"<td class="num muted">{}</td><td class="num muted">{}</td><td class="num muted">{}</td></tr>"#,
            n.internal.total(),
            n.workloads,
            n.peers
        );
    }
    h
}

/// The namespace (and state) of the button a click landed on.
fn picked(ev: &leptos::ev::MouseEvent) -> Option<(String, Option<EdgeState>)> {
    let el: web_sys::Element = ev.target()?.dyn_into().ok()?;
    let button = el.closest("button[data-ns]").ok()??;
    let ns = button.get_attribute("data-ns")?;
    let state = button
        .get_attribute("data-state")
        .and_then(|s| s.parse().ok());
    Some((ns, state))
}

#[component]
pub fn OverviewTable(
    overview: Overview,
    /// What the server sorted by (`worst`, a state, `internal`, `workloads`, `peers`); a click
    /// on a column heading sets it.
    sort: RwSignal<&'static str>,
    /// A namespace picked, with the state to show (`None`: every state).
    on_pick: Callback<(String, Option<EdgeState>)>,
    /// Observed traffic (its marks per namespace pair are counted per namespace).
    observed: RwSignal<crate::api::ObservedMarks>,
) -> impl IntoView {
    let all = RwSignal::new(false);
    let total = overview.namespaces.len();
    let calls = overview.calls.clone();
    let problems = |n: &NamespaceSummary| {
        let (b, r, _) = n.badness();
        b + r
    };
    let problem_ns = overview
        .namespaces
        .iter()
        .filter(|n| problems(n) > 0)
        .count();
    let max_problems = overview
        .namespaces
        .iter()
        .map(problems)
        .max()
        .unwrap_or(0)
        .max(1);
    let namespaces = StoredValue::new(overview.namespaces);
    let body = move || {
        let shown = if all.get() { total } else { FIRST_ROWS };
        let o = observed.with(|o| observed_of(&o.namespaces));
        namespaces.with_value(|v| rows_html(&v[..shown.min(v.len())], max_problems, &o))
    };
    let head = move |label: &'static str, s: &'static str, title: &'static str| {
        view! {
            <th scope="col" class="num" aria-sort=move || if sort.get() == s { "descending" } else { "none" }>
                <button class="link" title=title on:click=move |_| sort.set(s)>{label}</button>
            </th>
        }
    };
    crate::dom::mark_next_frame("accord-overview-painted");
    view! {
        <div class="overview" data-testid="overview">
            <p class="ov-summary">
                <strong>{plural(problem_ns as u32, "namespace")}</strong>
                {format!(
                    " of {total} have problem calls: {} blocked, {} unprotected, {} undeclared (of {} calls). Worst first; pick a namespace to see its calls.",
                    calls.blocked,
                    calls.unprotected,
                    calls.undeclared,
                    calls.total()
                )}
            </p>
            <table class="ov-table">
                <thead>
                    <tr>
                        <th scope="col" class="num">"#"</th>
                        <th scope="col">
                            <button class="link" on:click=move |_| sort.set("worst") title="Blocked calls first, then unprotected and undeclared">"Namespace (worst first)"</button>
                        </th>
                        {COLUMNS
                            .into_iter()
                            .map(|st| head(st.as_str(), st.as_str(), describe(st)))
                            .collect_view()}
                        {head("internal", "internal", "calls between its own workloads")}
                        {head("workloads", "workloads", "workloads in the namespace")}
                        {head("peers", "peers", "namespaces it calls or is called by")}
                    </tr>
                </thead>
                <tbody
                    inner_html=body
                    on:click=move |ev| {
                        if let Some(p) = picked(&ev) {
                            on_pick.run(p);
                        }
                    }
                ></tbody>
            </table>
            {move || (!all.get() && total > FIRST_ROWS).then(|| view! {
                <button class="btn ghost" data-testid="ov-show-all" on:click=move |_| all.set(true)>
                    {format!("Show all {total} namespaces")}
                </button>
            })}
        </div>
    }
}
