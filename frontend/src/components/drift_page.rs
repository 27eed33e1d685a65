//! Drift review: items grouped by namespace, with severity, explanation, suggested fix (YAML
//! with copy) and a link to the graph focused on the edge.

use accord_api::{DriftItem, DriftSeverity};
use leptos::prelude::*;

use super::code_block::CodeBlock;
use super::loading::{ErrorBox, Loading};
use crate::api;
use crate::app::use_state;

fn graph_link(item: &DriftItem) -> Option<String> {
    let enc = api::encode;
    match (&item.source, &item.target) {
        (Some(s), Some(t)) => Some(format!(
            "/graph?focus={}&sel={}&edge={}",
            enc(s),
            enc(s),
            enc(&format!("{s}->{t}"))
        )),
        _ => item
            .workload
            .as_ref()
            .map(|w| format!("/graph?focus={}&sel={}", enc(w), enc(w))),
    }
}

fn kind_label(item: &DriftItem) -> String {
    serde_json::to_value(item.kind)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('-', " ")))
        .unwrap_or_default()
}

#[component]
fn Item(item: DriftItem) -> impl IntoView {
    let sev = match item.severity {
        DriftSeverity::Critical => "critical",
        DriftSeverity::Warning => "warning",
        DriftSeverity::Info => "info",
    };
    let link = graph_link(&item);
    let subject = match (&item.source, &item.target) {
        (Some(s), Some(t)) => format!("{s} → {t}"),
        _ => item
            .workload
            .clone()
            .or_else(|| {
                item.object
                    .as_ref()
                    .map(|o| format!("{} {}/{}", o.kind, o.namespace, o.name))
            })
            .unwrap_or_default(),
    };
    let yaml = item.fix.yaml.clone();
    view! {
        <article class=format!("drift-item sev-{sev}") data-testid="drift-item" data-kind=kind_label(&item)>
            <header>
                <span class=format!("sev {sev}")>{sev}</span>
                <span class="kind">{kind_label(&item)}</span>
                <code class="subject">{subject}</code>
                {link.map(|href| view! { <a class="btn small ghost" href=href data-testid="drift-graph-link">"Show in graph →"</a> })}
            </header>
            <p class="explanation">{item.explanation.clone()}</p>
            <div class="fix">
                <span class="fix-title">"Suggested fix"</span>
                <p>{item.fix.description.clone()}</p>
                {(!yaml.is_empty()).then(|| view! { <CodeBlock code=Signal::derive(move || yaml.clone()) testid="fix-yaml"/> })}
            </div>
        </article>
    }
}

/// The generation settings in words, e.g. "egress rules, separate policies, shadow mode
/// (enforced in payments)".
fn settings_summary(s: &accord_api::GenerateOptions) -> String {
    let mut parts = vec![
        if s.egress {
            "ingress and egress rules"
        } else {
            "ingress rules only"
        }
        .to_string(),
    ];
    if s.separate_policies {
        parts.push("separate ingress/egress policies".into());
    }
    if s.shadow {
        if s.enforced_namespaces.is_empty() {
            parts.push("shadow mode (no namespace enforced)".into());
        } else {
            let ns: Vec<&str> = s.enforced_namespaces.iter().map(String::as_str).collect();
            parts.push(format!("shadow mode (enforced in {})", ns.join(", ")));
        }
    }
    parts.join(", ")
}

#[component]
pub fn DriftPage() -> impl IntoView {
    let state = use_state();
    let report = LocalResource::new(move || {
        state.refresh.track();
        api::drift()
    });
    let status = LocalResource::new(move || {
        state.refresh.track();
        api::status()
    });
    view! {
        <section class="page drift-page" data-testid="drift-page">
            <div class="page-head">
                <h1>"Drift"</h1>
                <p class="muted">"Where what the intents declare and what the cluster enforces have come apart."</p>
                {move || status.get().and_then(Result::ok).map(|st| view! {
                    <p class="muted settings" data-testid="drift-settings">
                        "Compared with what Accord generates with "{settings_summary(&st.settings)}
                        ". Settings: "{st.settings_source.clone()}"."
                    </p>
                })}
            </div>
            {move || match report.get() {
                None => view! { <Loading label="Loading drift…"/> }.into_any(),
                Some(Err(e)) => view! { <ErrorBox message=e/> }.into_any(),
                Some(Ok(r)) if r.total == 0 => view! { <p class="empty">"No drift: everything declared is enforced."</p> }.into_any(),
                Some(Ok(r)) => view! {
                    <p class="summary" data-testid="drift-total">{format!("{} items in {} namespaces", r.total, r.namespaces.len())}</p>
                    {r.namespaces.into_iter().map(|ns| {
                        let crit = ns.items.iter().filter(|i| i.severity == DriftSeverity::Critical).count();
                        view! {
                            <section class="ns-group" data-testid=format!("drift-ns-{}", ns.namespace)>
                                <h2>
                                    {ns.namespace.clone()}
                                    <span class="count">{ns.items.len()}</span>
                                    {(crit > 0).then(|| view! { <span class="sev critical">{format!("{crit} critical")}</span> })}
                                </h2>
                                {ns.items.into_iter().map(|i| view! { <Item item=i/> }).collect_view()}
                            </section>
                        }
                    }).collect_view()}
                }.into_any(),
            }}
        </section>
    }
}
