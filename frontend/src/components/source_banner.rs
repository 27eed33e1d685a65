//! The banner under the header when the source is degraded: which files or documents could not
//! be read or parsed (with the line, when the parser gave one), what is served from its last
//! good version, and a storage failure. Shown on every page; reloaded on every sync event.

use accord_api::{Severity, Status};
use leptos::prelude::*;

use crate::api;
use crate::app::use_state;

/// The problems worth a banner: errors (the source's unreadable files and syntax errors among
/// them); warnings stay on the pages they concern.
fn problems(status: &Status) -> Vec<String> {
    status
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| {
            let mut where_ = d.origin.to_string();
            for part in [&d.object, &d.field] {
                if !part.is_empty() {
                    where_.push_str(": ");
                    where_.push_str(part);
                }
            }
            format!("{where_}: {}", d.message)
        })
        .collect()
}

#[component]
pub fn SourceBanner() -> impl IntoView {
    let state = use_state();
    let status = LocalResource::new(move || {
        state.refresh.track();
        api::status()
    });
    move || {
        let st = status.get().and_then(Result::ok).filter(|s| s.degraded)?;
        let problems = problems(&st);
        Some(view! {
            <section class="source-banner" role="alert" data-testid="source-banner">
                <strong>"The source is degraded: "</strong>
                {if st.stale.is_empty() {
                    "what could not be read is left out.".to_string()
                } else {
                    "what could not be read is served from its last good version.".to_string()
                }}
                {st.storage_error.clone().map(|e| view! {
                    <p data-testid="source-storage">"Storage: "{e}" — the last pass was not saved."</p>
                })}
                <ul>
                    {problems.into_iter().map(|p| view! {
                        <li class="mono" data-testid="source-problem">{p}</li>
                    }).collect_view()}
                </ul>
                {(!st.stale.is_empty()).then(|| view! {
                    <p data-testid="source-stale">
                        "Last good version served for: "
                        <span class="mono">{st.stale.join(", ")}</span>
                    </p>
                })}
            </section>
        })
    }
}
