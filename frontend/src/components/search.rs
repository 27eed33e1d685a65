//! The graph's search box: autocomplete over workloads; `/` anywhere focuses it.

use leptos::html;
use leptos::prelude::*;

use super::workload_input::WorkloadInput;

#[component]
pub fn Search(
    #[prop(into)] options: Signal<Vec<String>>,
    on_pick: Callback<String>,
) -> impl IntoView {
    let value = RwSignal::new(String::new());
    let input = NodeRef::<html::Input>::new();
    let handle = window_event_listener(leptos::ev::keydown, move |ev| {
        if ev.key() != "/" {
            return;
        }
        let typing = ev
            .target()
            .and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(t).ok())
            .is_some_and(|el| matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"));
        if !typing && let Some(el) = input.get() {
            ev.prevent_default();
            let _ = el.focus();
        }
    });
    on_cleanup(move || handle.remove());
    view! {
        <div class="search" role="search">
            <WorkloadInput
                value=value
                options=options
                on_pick=on_pick
                placeholder="Search workloads  ( / )"
                testid="search"
                node_ref=input
            />
        </div>
    }
}
