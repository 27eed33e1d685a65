//! The top bar: product name, navigation, live indicator.

use crate::nav::A;
use leptos::prelude::*;

use crate::api::Link;
use crate::app::use_state;

#[component]
pub fn Header() -> impl IntoView {
    let state = use_state();
    view! {
        <header class="header">
            <a class="brand" href="/graph" aria-label="Accord home">
                <svg class="logo" viewBox="0 0 24 24" width="22" height="22" aria-hidden="true">
                    <circle cx="6" cy="12" r="3.2" fill="#38bdf8"></circle>
                    <circle cx="18" cy="6" r="3.2" fill="#a78bfa"></circle>
                    <circle cx="18" cy="18" r="3.2" fill="#34d399"></circle>
                    <path d="M8.8 10.8 15.2 7.2M8.8 13.2l6.4 3.6" stroke="#e2e8f0" stroke-width="1.6"></path>
                </svg>
                <span>"Accord"</span>
            </a>
            <nav class="nav" aria-label="Main">
                <A href="/graph" exact=true>"Access graph"</A>
                <A href="/drift">"Drift"</A>
                <A href="/drafts">"Draft intents"</A>
                <A href="/history">"History"</A>
            </nav>
            <span
                class="live"
                class:on=move || state.live.get() == Link::Live
                class:off=move || state.live.get() == Link::Offline
                data-testid="live"
                data-state=move || format!("{:?}", state.live.get()).to_ascii_lowercase()
                title=move || match state.live.get() {
                    Link::Live => "Updates arrive from the cluster as they happen",
                    Link::Connecting => "Connecting to the server for updates",
                    Link::Reconnecting => "The connection to the server dropped; retrying",
                    Link::Offline => "No connection to the server: what is shown may be out of date",
                }
            >
                <span class="dot"></span>
                {move || match state.live.get() {
                    Link::Live => "Live",
                    Link::Connecting => "Connecting…",
                    Link::Reconnecting => "Reconnecting…",
                    Link::Offline => "Offline",
                }}
            </span>
        </header>
    }
}
