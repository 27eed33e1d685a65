//! The side panel's observed traffic: who actually calls this workload (counts, last seen), which
//! callers are undeclared and would be blocked once it is protected, which were dropped, for how
//! long observation has been complete, and each undeclared caller's suggested intents, openable
//! as a draft. Everything is computed by the server; this only draws it.

use accord_api::observed::{Observed, ObservedCall, ObservedState};
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use super::drift_page::form_of;
use crate::api;
use crate::app::use_state;

fn state_text(c: &ObservedCall) -> &'static str {
    match c.state {
        Some(ObservedState::Declared) => "declared",
        Some(ObservedState::Undeclared) => "undeclared: blocked once protected",
        Some(ObservedState::Dropped) => "dropped now",
        None => "",
    }
}

fn day_time(t: &str) -> String {
    t.get(..19).unwrap_or(t).replace('T', " ")
}

#[component]
fn Body(o: Observed) -> impl IntoView {
    let state = use_state();
    let navigate = use_navigate();
    let w = o.window;
    let window = match (&w.from, &w.to) {
        (Some(f), Some(t)) => format!(
            "Observed {} – {} ({}), {} events lost.",
            day_time(f),
            day_time(t),
            w.source,
            w.lost_events
        ),
        _ => format!("Nothing observed yet ({}).", w.source),
    };
    let complete = match &w.complete_since {
        Some(t) => format!("Complete since {}.", day_time(t)),
        None => "Not complete: the collector is disconnected or events were lost.".to_string(),
    };
    let unused = o.unused_claimed.then(|| {
        o.unused
            .iter()
            .map(|u| format!("{} ({})", u.client, if u.ports.is_empty() { "all ports" } else { &u.ports }))
            .collect::<Vec<_>>()
    });
    view! {
        <p class="muted" data-testid="observed-window">{window}" "{complete}</p>
        {if o.calls.is_empty() {
            view! { <p class="muted">"No observed callers."</p> }.into_any()
        } else {
            view! {
                <ul class="plain" data-testid="observed-callers">
                    {o.calls.iter().map(|c| view! {
                        <li data-testid="observed-caller" data-state=c.state.map(|s| s.as_str()).unwrap_or_default()>
                            <code>{c.client.clone()}</code>
                            {format!(" {}/{} · {} flows · last {} · ", c.protocol, c.port, c.count, day_time(&c.last_seen))}
                            <strong>{state_text(c)}</strong>
                        </li>
                    }).collect_view()}
                </ul>
            }.into_any()
        }}
        {(!o.other.is_empty()).then(|| view! {
            <p class="muted">{format!("Also: {} probe, DNS or host-network observations (not calls).", o.other.len())}</p>
        })}
        {unused.map(|u| view! {
            <p class="muted" data-testid="observed-unused">{if u.is_empty() {
                "Every declared caller was observed.".to_string()
            } else {
                format!("Declared but not observed: {}.", u.join(", "))
            }}</p>
        })}
        {o.suggestions.into_iter().map(|s| {
            let navigate = navigate.clone();
            let label = format!("Suggested intents for {}: {}", s.client, s.added.join(", "));
            let draft = s.draft.clone();
            view! {
                <div class="refs" data-testid="observed-suggestion">
                    <span class="refs-title">{label}</span>
                    {match draft {
                        Some(d) => view! {
                            <button class="btn small" data-testid="observed-open-draft" on:click=move |_| {
                                state.draft_seed.set(Some(form_of(&d)));
                                navigate("/drafts", Default::default());
                            }>"Open as draft"</button>
                        }.into_any(),
                        None => view! { <pre class="code">{s.yaml.clone()}</pre> }.into_any(),
                    }}
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
        async move { api::observed(&id).await }
    });
    move || match data.get() {
        Some(Ok(o)) if !o.window.source.is_empty() => Some(view! {
            <section class="panel-section" data-testid="observed">
                <h3>"Observed callers"<span class="count">{o.calls.len()}</span></h3>
                <Body o=o/>
            </section>
        }),
        _ => None,
    }
}
