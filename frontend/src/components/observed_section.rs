//! The side panel's observed traffic: who actually calls this workload, which callers are
//! undeclared (blocked once it is protected) or dropped, for how long observation has been
//! complete, and each undeclared caller's suggested intents, openable as a draft. The server
//! writes every line (`/api/observed/panel`); this only draws them.

use crate::nav::use_navigate;
use leptos::prelude::*;

use crate::api;
use crate::app::use_state;

/// Shown when the server observes traffic (`--hubble` or `--flows`).
#[component]
pub fn ObservedSection(id: String) -> impl IntoView {
    let state = use_state();
    let navigate = use_navigate();
    let data = LocalResource::new(move || {
        state.refresh.track();
        let id = id.clone();
        async move { api::observed_panel(&id).await }
    });
    move || {
        let p = data.get()?.ok().filter(|p| !p.window.is_empty())?;
        let navigate = navigate.clone();
        Some(view! {
            <section class="panel-section" data-testid="observed">
                <h3>"Observed callers"<span class="count">{p.callers.len()}</span></h3>
                <p class="muted" data-testid="observed-window">{p.window}</p>
                <ul class="plain">
                    {p.callers.into_iter().map(|[text, s]| view! {
                        <li data-testid="observed-caller" data-state=s>{text}</li>
                    }).collect_view()}
                </ul>
                {p.notes.into_iter().map(|n| view! { <p class="muted">{n}</p> }).collect_view()}
                {p.suggestions.into_iter().map(|s| {
                    let navigate = navigate.clone();
                    let draft = s.draft;
                    let yaml = s.yaml;
                    view! {
                        <div class="refs" data-testid="observed-suggestion">
                            <span class="refs-title">{s.label}</span>
                            {match draft {
                                Some(d) => view! {
                                    <button class="btn small" data-testid="observed-open-draft" on:click=move |_| {
                                        state.draft_seed.set(Some(crate::draft::from_draft_intents(&d)));
                                        navigate("/drafts", Default::default());
                                    }>"Open as draft"</button>
                                }.into_any(),
                                None => view! { <pre class="code">{yaml}</pre> }.into_any(),
                            }}
                        </div>
                    }
                }).collect_view()}
            </section>
        })
    }
}
