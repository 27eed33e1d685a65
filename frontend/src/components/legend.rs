//! The legend of edge colours, doubling as the state filter.

use accord_api::{EdgeState, StateCounts};
use leptos::prelude::*;

use crate::scene::colour;

pub fn describe(state: EdgeState) -> &'static str {
    match state {
        EdgeState::Enforced => "declared and enforced",
        EdgeState::Blocked => "declared but denied",
        EdgeState::Unprotected => "declared, server not isolated",
        EdgeState::Undeclared => "allowed without an intent",
        EdgeState::Open => "default-allow, undeclared",
    }
}

/// One toggle per state; `on_toggle` flips a state in the filter.
#[component]
pub fn Legend(
    #[prop(into)] active: Signal<Vec<EdgeState>>,
    #[prop(into)] counts: Signal<StateCounts>,
    on_toggle: Callback<EdgeState>,
) -> impl IntoView {
    view! {
        <div class="legend" data-testid="legend" role="group" aria-label="Edge states">
            {EdgeState::ALL
                .into_iter()
                .map(|s| {
                    view! {
                        <button
                            class="legend-item"
                            class:off=move || !active.get().contains(&s)
                            data-testid=format!("legend-{s}")
                            title=describe(s)
                            aria-pressed=move || active.get().contains(&s).to_string()
                            on:click=move |_| on_toggle.run(s)
                        >
                            <span class="swatch" style=format!("background:{}", colour(s))></span>
                            <span class="legend-name">{s.as_str()}</span>
                            <span class="count">{move || counts.get().get(s)}</span>
                        </button>
                    }
                })
                .collect_view()}
        </div>
    }
}

/// The observed-traffic marks and their window; shown only when there is observed data.
pub fn observed_legend(summary: Signal<String>) -> impl IntoView {
    view! {
        <div class="legend obs-legend" data-testid="observed-legend" hidden=move || summary.get().is_empty()>
            {crate::scene::MARKS
                .into_iter()
                .map(|(m, text)| view! {
                    <span class="legend-item" data-testid=format!("obs-legend-{m}")>
                        <span class=format!("swatch obs-swatch obs-{m}")>{crate::scene::badge(m)}</span>
                        {text}
                    </span>
                })
                .collect_view()}
            <span class="muted obs-window" data-testid="observed-summary">{summary}</span>
        </div>
    }
}
