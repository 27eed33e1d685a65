//! A text input with autocomplete over workload ids (arrow keys, Enter, Escape).

use leptos::html;
use leptos::prelude::*;

const MAX_SUGGESTIONS: usize = 8;

/// Suggestions for `query`: ids containing every word of it, prefix matches of the name first.
pub fn suggest(options: &[String], query: &str) -> Vec<String> {
    let q = query.trim().to_ascii_lowercase();
    if q.is_empty() {
        return Vec::new();
    }
    let words: Vec<&str> = q.split_whitespace().collect();
    // Each hit as its rank's digit and the id: sorted as strings, that is by rank, then id
    // (and a sort of strings is in the WASM already, where one of pairs would be added).
    let mut hits: Vec<String> = options
        .iter()
        .filter(|o| {
            let l = o.to_ascii_lowercase();
            words.iter().all(|w| l.contains(w))
        })
        .map(|o| {
            let name = crate::scene::short_name(o).to_ascii_lowercase();
            let rank = if name == q {
                '0'
            } else if name.starts_with(&q) {
                '1'
            } else {
                '2'
            };
            format!("{rank}{o}")
        })
        .collect();
    hits.sort();
    hits.into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|h| h[1..].to_string())
        .collect()
}

#[component]
pub fn WorkloadInput(
    value: RwSignal<String>,
    #[prop(into)] options: Signal<Vec<String>>,
    on_pick: Callback<String>,
    #[prop(into, default = "Search workloads".to_string())] placeholder: String,
    #[prop(into, default = "workload-input".to_string())] testid: String,
    #[prop(optional)] node_ref: Option<NodeRef<html::Input>>,
    #[prop(into, default = "input".to_string())] class: String,
    #[prop(into, optional)] invalid: Signal<bool>,
) -> impl IntoView {
    let open = RwSignal::new(false);
    let active = RwSignal::new(0usize);
    let node_ref = node_ref.unwrap_or_default();
    let list = Memo::new(move |_| suggest(&options.get(), &value.get()));
    let pick = move |id: String| {
        value.set(id.clone());
        open.set(false);
        on_pick.run(id);
    };
    let list_id = format!("{testid}-list");
    view! {
        <div class="autocomplete">
            <input
                class=class
                class:invalid=move || invalid.get()
                type="search"
                role="combobox"
                aria-autocomplete="list"
                aria-controls=list_id.clone()
                aria-expanded=move || (open.get() && !list.get().is_empty()).to_string()
                autocomplete="off"
                spellcheck="false"
                placeholder=placeholder
                data-testid=testid.clone()
                node_ref=node_ref
                prop:value=move || value.get()
                on:input=move |ev| {
                    value.set(event_target_value(&ev));
                    active.set(0);
                    open.set(true);
                }
                on:focus=move |_| open.set(true)
                on:blur=move |_| open.set(false)
                on:keydown=move |ev| {
                    let n = list.get_untracked().len();
                    match ev.key().as_str() {
                        "ArrowDown" if n > 0 => {
                            ev.prevent_default();
                            open.set(true);
                            active.update(|a| *a = (*a + 1) % n);
                        }
                        "ArrowUp" if n > 0 => {
                            ev.prevent_default();
                            active.update(|a| *a = (*a + n - 1) % n);
                        }
                        "Enter" => {
                            ev.prevent_default();
                            let l = list.get_untracked();
                            let exact = value.get_untracked();
                            if let Some(id) = l.get(active.get_untracked()).cloned() {
                                pick(id);
                            } else if options.get_untracked().contains(&exact) {
                                pick(exact);
                            }
                        }
                        "Escape" => open.set(false),
                        _ => {}
                    }
                }
            />
            <Show when=move || open.get() && !list.get().is_empty()>
                <ul class="suggestions" role="listbox" id=list_id.clone() data-testid=format!("{testid}-suggestions")>
                    {move || {
                        list.get()
                            .into_iter()
                            .enumerate()
                            .map(|(i, id)| {
                                let id2 = id.clone();
                                let name = crate::scene::short_name(&id).to_string();
                                let ns = id.split_once('/').map(|(n, _)| n.to_string()).unwrap_or_default();
                                view! {
                                    <li
                                        role="option"
                                        class:active=move || active.get() == i
                                        aria-selected=move || (active.get() == i).to_string()
                                        on:mousedown=move |ev| {
                                            ev.prevent_default();
                                            pick(id2.clone());
                                        }
                                    >
                                        <span class="s-name">{name}</span>
                                        <span class="s-ns">{ns}</span>
                                    </li>
                                }
                            })
                            .collect_view()
                    }}
                </ul>
            </Show>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_matches_of_the_name_come_first() {
        let opts: Vec<String> = [
            "checkout/cart-sync[Job]",
            "storefront/cart[Deployment]",
            "x/webcart[Deployment]",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(
            suggest(&opts, "cart"),
            vec![
                "storefront/cart[Deployment]",
                "checkout/cart-sync[Job]",
                "x/webcart[Deployment]"
            ]
        );
        assert_eq!(
            suggest(&opts, "store cart"),
            vec!["storefront/cart[Deployment]"]
        );
        assert!(suggest(&opts, "  ").is_empty());
    }
}
