//! `accord-frontend`: Accord's dashboard, a Leptos client-side app.
//!
//! In: the JSON of `accord serve`'s `/api` (types from `accord-api`) and its `/api/events`
//! stream. Out: the access graph, drift review, intent drafting and history pages. `api.rs` does
//! all HTTP; `layout.rs`, `scene.rs` and `draft.rs` are pure and tested natively; each component
//! lives in its own file under `components/`.

mod api;
mod app;
mod components;
mod dom;
mod draft;
mod json;
mod layout;
mod nav;
mod scene;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
