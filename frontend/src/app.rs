//! The application shell: shared state, the header and the routes.

use accord_api::Graph;
use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

use crate::api;
use crate::components::{
    draft_page::DraftPage, drift_page::DriftPage, graph_page::GraphPage, header::Header,
    history_page::HistoryPage, source_banner::SourceBanner,
};

/// State every page shares: the graph (workload inventory), reloaded on every sync event.
#[derive(Clone, Copy)]
pub struct AppState {
    /// Bumped by each `sync` event; resources that depend on it reload.
    pub refresh: RwSignal<u64>,
    /// The event stream's state.
    pub live: RwSignal<api::Link>,
    /// Every workload and call. Loaded only while a page that needs it is shown (the graph
    /// page loads the parts it draws): at 15,000 workloads it is tens of megabytes.
    pub graph: LocalResource<api::Result<Graph>>,
    /// A form the draft page starts from (a drift fix opened in the draft form).
    pub draft_seed: RwSignal<Option<crate::draft::Form>>,
}

pub fn use_state() -> AppState {
    expect_context::<AppState>()
}

#[component]
pub fn App() -> impl IntoView {
    let refresh = RwSignal::new(0u64);
    let live = RwSignal::new(api::Link::Connecting);
    let graph_wanted = RwSignal::new(false);
    let graph = LocalResource::new(move || {
        refresh.track();
        let wanted = graph_wanted.get();
        async move {
            if !wanted {
                // Pages that need it read it with `.ok()`; it loads once one is shown.
                return Err(String::from("not loaded on the graph page"));
            }
            api::graph().await
        }
    });
    provide_context(AppState {
        refresh,
        live,
        graph,
        draft_seed: RwSignal::new(None),
    });
    api::subscribe(move || refresh.update(|n| *n += 1), move |l| live.set(l));

    view! {
        <Router>
            <GraphDemand wanted=graph_wanted/>
            <Header/>
            <SourceBanner/>
            <main class="main">
                <Routes fallback=|| view! { <p class="empty">"Page not found."</p> }>
                    <Route path=path!("/") view=GraphPage/>
                    <Route path=path!("/graph") view=GraphPage/>
                    <Route path=path!("/drift") view=DriftPage/>
                    <Route path=path!("/drafts") view=DraftPage/>
                    <Route path=path!("/history") view=HistoryPage/>
                </Routes>
            </main>
        </Router>
    }
}

/// Wants the whole graph on every page but the graph page (which fetches what it draws).
#[component]
fn GraphDemand(wanted: RwSignal<bool>) -> impl IntoView {
    let location = leptos_router::hooks::use_location();
    Effect::new(move |_| {
        let path = location.pathname.get();
        wanted.set(path != "/" && path != "/graph");
    });
}
