//! A code block with a copy button (and optionally a download button).

use leptos::prelude::*;

use crate::dom;

#[component]
pub fn CodeBlock(
    #[prop(into)] code: Signal<String>,
    #[prop(into, optional)] download: Option<String>,
    #[prop(into, default = "code".to_string())] testid: String,
) -> impl IntoView {
    let copied = RwSignal::new(false);
    let dl = download.map(|name| {
        view! {
            <button
                class="btn small ghost"
                on:click=move |_| dom::download(&name, "application/yaml", &code.get_untracked())
            >
                "Download"
            </button>
        }
    });
    view! {
        <div class="code">
            <div class="code-actions">
                <button
                    class="btn small ghost"
                    on:click=move |_| {
                        dom::copy(&code.get_untracked());
                        copied.set(true);
                    }
                >
                    {move || if copied.get() { "Copied" } else { "Copy" }}
                </button>
                {dl}
            </div>
            <pre data-testid=testid><code>{move || code.get()}</code></pre>
        </div>
    }
}
