//! History: a timeline of access changes, filterable by workload (in the URL).

use crate::nav::{NavigateOptions, use_navigate, use_query_map};
use accord_api::{ChangeKind, HistoryEntry};
use leptos::prelude::*;

use super::loading::{ErrorBox, Loading};
use super::workload_input::WorkloadInput;
use crate::api;
use crate::app::use_state;
use crate::scene::colour;

/// The graph URL showing an entry's call: its client's neighbourhood with the call open.
fn edge_url(e: &HistoryEntry) -> String {
    format!(
        "/graph?focus={}&sel={}&edge={}",
        api::encode(&e.source),
        api::encode(&e.source),
        api::encode(&format!("{}->{}", e.source, e.target))
    )
}

fn entry_view(e: HistoryEntry) -> impl IntoView {
    let (label, class) = match e.change {
        ChangeKind::Granted => ("granted", "granted"),
        ChangeKind::Revoked => ("revoked", "revoked"),
        ChangeKind::StateChanged => ("changed", "changed"),
        ChangeKind::InitialSync => ("initial sync", "initial"),
    };
    let state = |s: Option<accord_api::EdgeState>| match s {
        Some(s) => {
            view! { <span class="pill" style=format!("--c:{}", colour(s))>{s.as_str()}</span> }
                .into_any()
        }
        None => view! { <span class="muted">"none"</span> }.into_any(),
    };
    let time = e.time.replace('T', " ").trim_end_matches('Z').to_string();
    if e.change == ChangeKind::InitialSync {
        return view! {
            <li class=format!("tl-item {class}") data-testid="history-entry">
                <span class="tl-dot"></span>
                <div class="tl-body">
                    <div class="tl-line">
                        <span class=format!("change {class}")>{label}</span>
                        <span>{format!("Accord's first look at this source: {}", e.by.join(", "))}</span>
                    </div>
                    <div class="tl-line small"><time class="muted">{time}</time></div>
                </div>
            </li>
        }
        .into_any();
    }
    let href = edge_url(&e);
    view! {
        <li class=format!("tl-item {class}") data-testid="history-entry">
            <span class="tl-dot"></span>
            <div class="tl-body">
                <div class="tl-line">
                    <span class=format!("change {class}")>{label}</span>
                    <a href=href data-testid="history-edge-link" title="Show this call in the graph"><code>{format!("{} → {}", e.source, e.target)}</code></a>
                </div>
                <div class="tl-line small">
                    {state(e.before)}<span class="muted">"→"</span>{state(e.after)}
                    <time class="muted">{time}</time>
                    {(!e.by.is_empty()).then(|| view! { <span class="muted">{format!("by {}", e.by.join(", "))}</span> })}
                </div>
            </div>
        </li>
    }
    .into_any()
}

#[component]
pub fn HistoryPage() -> impl IntoView {
    let state = use_state();
    let query = use_query_map();
    let navigate = use_navigate();
    let workload = Memo::new(move |_| query.get().get("workload").unwrap_or_default());
    let input = RwSignal::new(workload.get_untracked());
    let page = LocalResource::new(move || {
        state.refresh.track();
        let w = workload.get();
        async move { api::history(Some(&w)).await }
    });
    let ids = Signal::derive(move || {
        state
            .graph
            .get()
            .and_then(|r| r.ok())
            .map(|g| g.nodes.into_iter().map(|n| n.id).collect())
            .unwrap_or_default()
    });
    let nav = StoredValue::new(navigate);
    let set_filter = move |w: String| {
        let url = if w.is_empty() {
            "/history".to_string()
        } else {
            format!("/history?workload={}", api::encode(&w))
        };
        nav.with_value(|n| {
            n(
                &url,
                NavigateOptions {
                    replace: true,
                    ..NavigateOptions::default()
                },
            )
        });
    };
    view! {
        <section class="page history-page" data-testid="history-page">
            <div class="page-head">
                <h1>"History"</h1>
                <p class="muted">"Access granted, revoked or changed, newest first."</p>
            </div>
            <div class="toolbar">
                <WorkloadInput value=input options=ids on_pick=Callback::new(set_filter) placeholder="Filter by workload" testid="history-filter"/>
                {move || (!workload.get().is_empty()).then(|| view! {
                    <button class="chip" on:click=move |_| { input.set(String::new()); set_filter(String::new()); }>"Clear filter ×"</button>
                })}
            </div>
            {move || match page.get() {
                None => view! { <Loading label="Loading history…"/> }.into_any(),
                Some(Err(e)) => view! { <ErrorBox message=e/> }.into_any(),
                Some(Ok(p)) if p.entries.is_empty() => view! { <p class="empty">"No access changes recorded yet."</p> }.into_any(),
                Some(Ok(p)) => view! {
                    <ol class="timeline">{p.entries.into_iter().map(entry_view).collect_view()}</ol>
                }.into_any(),
            }}
        </section>
    }
}
