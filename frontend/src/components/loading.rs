//! The loading indicator and the error box.

use leptos::prelude::*;

#[component]
pub fn Loading(#[prop(into, default = "Loading…".to_string())] label: String) -> impl IntoView {
    view! {
        <div class="loading" data-testid="loading" role="status">
            <span class="spinner"></span>
            <span>{label}</span>
        </div>
    }
}

#[component]
pub fn ErrorBox(message: String) -> impl IntoView {
    view! { <div class="error-box" role="alert">{message}</div> }
}
