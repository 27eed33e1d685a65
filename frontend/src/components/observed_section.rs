//! The side panel's observed traffic: who actually calls this workload, which callers are
//! undeclared (blocked once it is protected) or dropped, for how long observation has been
//! complete, and each undeclared caller's suggested intents, openable as a draft. The server
//! writes every line (`/api/observed/panel`); this only draws them.

use accord_api::observed::ObservedPanel;
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use super::drift_page::form_of;
use crate::api;
use crate::app::use_state;

#[component]
fn Body(p: ObservedPanel) -> impl IntoView {
    let state = use_state();
    let navigate = use_navigate();
    view! {
        <p class="muted" data-testid="observed-window">{p.window}</p>
        <ul class="plain">
            {p.callers.into_iter().map(|c| view! {
                <li data-testid="observed-caller" data-state=c.state>{c.text}</li>
            }).collect_view()}
        </ul>
        {p.notes.into_iter().map(|n| view! { <p class="muted">{n}</p> }).collect_view()}
        {p.suggestions.into_iter().map(|s| {
            let navigate = navigate.clone();
            let open = s.draft.map(|d| view! {
                <button class="btn small" data-testid="observed-open-draft" on:click=move |_| {
                    state.draft_seed.set(Some(form_of(&d)));
                    navigate("/drafts", Default::default());
                }>"Open as draft"</button>
            });
            let yaml = open.is_none().then(|| view! { <pre class="code">{s.yaml}</pre> });
            view! {
                <div class="refs" data-testid="observed-suggestion">
                    <span class="refs-title">{s.label}</span>
                    {open}
                    {yaml}
                </div>
            }
        }).collect_view()}
    }
}

/// Shown when the server observes traffic (`--hubble` or `--flows`).
#[component]
pub fn ObservedSection(id: String) -> impl IntoView {
    let state = use_state();
    let data = LocalResource::new(move || {
        state.refresh.track();
        let id = id.clone();
        async move { api::observed_panel(&id).await }
    });
    move || match data.get() {
        Some(Ok(p)) if !p.window.is_empty() => Some(view! {
            <section class="panel-section" data-testid="observed">
                <h3>"Observed callers"<span class="count">{p.callers.len()}</span></h3>
                <Body p=p/>
            </section>
        }),
        _ => None,
    }
}
