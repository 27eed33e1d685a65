//! The application shell: shared state, the header and the routes.

use accord_api::Graph;
use leptos::prelude::*;

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
    crate::nav::provide();
    // The page shown: rebuilt when the path changes, never when only the query does.
    let path = crate::nav::use_location().pathname;
    let page = Memo::new(move |_| {
        path.with(|p| match p.trim_end_matches('/') {
            "" | "/graph" => "graph",
            "/drift" => "drift",
            "/drafts" => "drafts",
            "/history" => "history",
            _ => "",
        })
    });

    view! {
        <GraphDemand wanted=graph_wanted/>
        <Header/>
        <SourceBanner/>
        <main class="main">
            {move || match page.get() {
                "graph" => view! { <GraphPage/> }.into_any(),
                "drift" => view! { <DriftPage/> }.into_any(),
                "drafts" => view! { <DraftPage/> }.into_any(),
                "history" => view! { <HistoryPage/> }.into_any(),
                _ => view! { <p class="empty">"Page not found."</p> }.into_any(),
            }}
        </main>
    }
}

/// Wants the whole graph on every page but the graph page (which fetches what it draws).
#[component]
fn GraphDemand(wanted: RwSignal<bool>) -> impl IntoView {
    let location = crate::nav::use_location();
    Effect::new(move |_| {
        let path = location.pathname.get();
        wanted.set(path != "/" && path != "/graph");
    });
}
