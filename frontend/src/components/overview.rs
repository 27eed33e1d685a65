//! The graph page's overview: where the problems are, at any size. One row per namespace, worst
//! first (the server ranks them: blocked calls, then unprotected and undeclared ones), each count
//! a link to the namespace's drawing filtered to that state. A table, not a drawing: at 1,500
//! namespaces a drawing is a band, a ranked list is read in seconds.

use accord_api::{EdgeState, NamespaceSummary, Overview};
use leptos::prelude::*;

use super::legend::describe;
use crate::scene::colour;

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

/// What the table is sorted by: the server's ranking, or one column (largest first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sort {
    Worst,
    State(EdgeState),
    Workloads,
    Internal,
    Peers,
}

fn sort_key(n: &NamespaceSummary, s: Sort) -> u32 {
    match s {
        Sort::Worst => 0,
        Sort::State(st) => n.all().get(st),
        Sort::Workloads => n.workloads,
        Sort::Internal => n.internal.total(),
        Sort::Peers => n.peers,
    }
}

fn plural(n: u32, one: &str) -> String {
    format!("{n} {one}{}", if n == 1 { "" } else { "s" })
}

#[component]
pub fn OverviewTable(
    overview: Overview,
    /// A namespace picked, with the state to show (`None`: every state).
    on_pick: Callback<(String, Option<EdgeState>)>,
) -> impl IntoView {
    let sort = RwSignal::new(Sort::Worst);
    let all = RwSignal::new(false);
    let total = overview.namespaces.len();
    let calls = overview.calls.clone();
    let problem_ns = overview
        .namespaces
        .iter()
        .filter(|n| {
            let (b, r, _) = n.badness();
            b + r > 0
        })
        .count();
    let max_problems = overview
        .namespaces
        .iter()
        .map(|n| {
            let (b, r, _) = n.badness();
            b + r
        })
        .max()
        .unwrap_or(0)
        .max(1);
    let namespaces = StoredValue::new(overview.namespaces);
    let rows = move || {
        let s = sort.get();
        let mut v: Vec<NamespaceSummary> = namespaces.get_value();
        if s != Sort::Worst {
            v.sort_by(|a, b| {
                sort_key(b, s)
                    .cmp(&sort_key(a, s))
                    .then_with(|| a.namespace.cmp(&b.namespace))
            });
        }
        if !all.get() {
            v.truncate(FIRST_ROWS);
        }
        v.into_iter()
            .enumerate()
            .map(|(rank, n)| {
                let c = n.all();
                let (b, r, _) = n.badness();
                let ns = n.namespace.clone();
                let ns2 = ns.clone();
                let bar = f64::from(b + r) / f64::from(max_problems) * 100.0;
                view! {
                    <tr data-testid=format!("ov-row-{}", n.namespace) class:clean=b + r == 0>
                        <td class="num muted">{rank + 1}</td>
                        <th scope="row">
                            <button
                                class="link ns-link"
                                title=format!("Draw the calls of {}", n.namespace)
                                on:click=move |_| on_pick.run((ns.clone(), None))
                            >{n.namespace.clone()}</button>
                            <span class="ov-bar" style=format!("width:{bar:.0}%")></span>
                        </th>
                        {COLUMNS
                            .into_iter()
                            .map(|st| {
                                let k = c.get(st);
                                let ns = ns2.clone();
                                let title = format!(
                                    "{k} {st} ({}): {} in, {} out, {} internal",
                                    describe(st),
                                    n.inbound.get(st),
                                    n.outbound.get(st),
                                    n.internal.get(st)
                                );
                                view! {
                                    <td class="num" data-state=st.as_str()>
                                        {(k > 0).then(|| view! {
                                            <button
                                                class="count-link"
                                                style=format!("--c:{}", colour(st))
                                                title=title
                                                data-testid=format!("ov-{}-{st}", ns)
                                                on:click=move |_| on_pick.run((ns.clone(), Some(st)))
                                            >{k}</button>
                                        })}
                                    </td>
                                }
                            })
                            .collect_view()}
                        <td class="num muted" title="calls between its own workloads">{n.internal.total()}</td>
                        <td class="num muted">{n.workloads}</td>
                        <td class="num muted" title="namespaces it calls or is called by">{n.peers}</td>
                    </tr>
                }
            })
            .collect_view()
    };
    let head = move |label: &'static str, s: Sort, title: &'static str| {
        view! {
            <th scope="col" class="num" aria-sort=move || if sort.get() == s { "descending" } else { "none" }>
                <button class="link" title=title on:click=move |_| sort.set(s)>{label}</button>
            </th>
        }
    };
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
                            <button class="link" on:click=move |_| sort.set(Sort::Worst) title="Blocked calls first, then unprotected and undeclared">"Namespace (worst first)"</button>
                        </th>
                        {COLUMNS
                            .into_iter()
                            .map(|st| head(st.as_str(), Sort::State(st), describe(st)))
                            .collect_view()}
                        {head("internal", Sort::Internal, "calls between its own workloads")}
                        {head("workloads", Sort::Workloads, "workloads in the namespace")}
                        {head("peers", Sort::Peers, "namespaces it calls or is called by")}
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
            {move || (!all.get() && total > FIRST_ROWS).then(|| view! {
                <button class="btn ghost" data-testid="ov-show-all" on:click=move |_| all.set(true)>
                    {format!("Show all {total} namespaces")}
                </button>
            })}
        </div>
    }
}
