//! Drift triage: one item per root cause, worst first, with the summary (how bad, where, since
//! when, who owns it), filters, sort, search and paging. An item expands to its affected edges
//! and its fix, which the server has checked with the what-if engine; a fix opens in the draft
//! form or downloads as a file; an item can be acknowledged with a reason.

use crate::nav::use_navigate;
use accord_api::{DriftItem, DriftKind, DriftReport, DriftSeverity, EdgeState, FixKind};
use leptos::prelude::*;

use super::code_block::CodeBlock;
use super::loading::{ErrorBox, Loading};
use crate::api;
use crate::app::use_state;

const PER_PAGE: u32 = 25;

fn kind_label(k: DriftKind) -> String {
    k.as_str().replace('-', " ")
}

fn counts_text(item: &DriftItem) -> String {
    let parts: Vec<String> = item
        .edge_counts
        .iter()
        .map(|(s, n)| format!("{n} {}", s.as_str()))
        .collect();
    if parts.is_empty() {
        "no call affected".into()
    } else {
        parts.join(" · ")
    }
}

fn subject(item: &DriftItem) -> String {
    item.object
        .as_ref()
        .map(|o| {
            if o.namespace.is_empty() {
                format!("{} {}", o.kind, o.name)
            } else {
                format!("{} {}/{}", o.kind, o.namespace, o.name)
            }
        })
        .or_else(|| item.workload.clone())
        .unwrap_or_default()
}

fn day(t: &Option<String>) -> String {
    t.as_deref()
        .map(|t| t.get(..16).unwrap_or(t).replace('T', " "))
        .unwrap_or_default()
}

fn edge_link(s: &str, t: &str) -> String {
    let enc = api::encode;
    format!(
        "/graph?focus={}&sel={}&edge={}",
        enc(s),
        enc(s),
        enc(&format!("{s}->{t}"))
    )
}

/// An expanded item: every edge, the checked fix, acknowledging.
#[component]
fn Detail(key: String, on_ack: Callback<()>) -> impl IntoView {
    let state = use_state();
    let navigate = use_navigate();
    let k = key.clone();
    let item = LocalResource::new(move || {
        let k = k.clone();
        async move { api::drift_item(&k).await }
    });
    let reason = RwSignal::new(String::new());
    let ack_msg = RwSignal::new(None::<Result<String, String>>);
    let ack = move |_| {
        let r = reason.get_untracked();
        let key = key.clone();
        leptos::task::spawn_local(async move {
            match api::acknowledge(key, r).await {
                Ok(_) => {
                    ack_msg.set(Some(Ok("Acknowledged.".into())));
                    on_ack.run(());
                }
                Err(e) => ack_msg.set(Some(Err(e))),
            }
        });
    };
    view! {
        {move || match item.get() {
            None => view! { <Loading label="Checking the fix with the what-if engine…"/> }.into_any(),
            Some(Err(e)) => view! { <ErrorBox message=e/> }.into_any(),
            Some(Ok(d)) => {
                let navigate = navigate.clone();
                let fix = d.fix.clone();
                let file = format!("{}.yaml", d.key.replace(['/', '[', ']'], "-"));
                let verdict = fix.verdict.clone().map(|v| {
                    let mut s = if v.safe {
                        "Checked with the what-if engine: applied as the operator would, it resolves this item and blocks or opens nothing.".to_string()
                    } else {
                        "Not offered: the what-if engine found that applying it would not resolve this item safely.".to_string()
                    };
                    if !v.revoked.is_empty() {
                        s.push_str(&format!(" It also takes away {} undeclared access(es): {}.", v.revoked.len(), v.revoked.join(", ")));
                    }
                    (v.safe, s)
                });
                let forms = fix.forms.clone();
                let diff = fix.diff.clone();
                let yaml = if fix.draft.is_empty() || fix.kind != Some(FixKind::Intents) { fix.yaml.clone() } else { fix.draft.clone() };
                view! {
                    <div class="drift-detail" data-testid="drift-detail">
                        <h3>"Affected edges"</h3>
                        <ul class="plain edges" data-testid="drift-edges">
                            {d.edges.iter().map(|e| view! {
                                <li><a href=edge_link(&e.source, &e.target) data-testid="drift-graph-link">{format!(
                                    "{}{}: {} → {}",
                                    e.state.as_str(),
                                    if e.denied_once_applied { ", denied once applied" } else { "" },
                                    e.source,
                                    e.target
                                )}</a></li>
                            }).collect_view()}
                        </ul>
                        <div class="fix" data-testid="drift-fix">
                            <span class="fix-title">{if fix.kind.is_some() { "Fix" } else { "What to do" }}</span>
                            <p>{fix.description.clone()}</p>
                            {verdict.map(|(safe, s)| view! { <p class=if safe { "ok-msg" } else { "field-error" } data-testid="fix-verdict">{s}</p> })}
                            {(!diff.is_empty()).then(|| view! { <CodeBlock code=Signal::derive(move || diff.clone()) testid="fix-diff"/> })}
                            {(!yaml.is_empty()).then(|| view! { <CodeBlock code=Signal::derive(move || yaml.clone()) download=file testid="fix-yaml"/> })}
                            {forms.into_iter().map(|f| {
                                let navigate = navigate.clone();
                                let label = format!("Open {}'s intents in the draft form", f.client);
                                view! {
                                    <button class="btn small" data-testid="drift-open-draft" on:click=move |_| {
                                        state.draft_seed.set(Some(crate::draft::from_draft_intents(&f)));
                                        navigate("/drafts", Default::default());
                                    }>{label}</button>
                                }
                            }).collect_view()}
                        </div>
                        {d.acknowledged.clone().map(|a| view! { <p class="muted">{format!("Acknowledged {}: {}", day(&Some(a.at)), a.reason)}</p> })}
                        <div class="save-row">
                            <input class="input" placeholder="Why this is acceptable (kept until the cause changes)" data-testid="drift-ack-reason"
                                prop:value=move || reason.get() on:input=move |ev| reason.set(event_target_value(&ev))/>
                            <button class="btn ghost" data-testid="drift-ack" on:click=ack.clone()>"Acknowledge"</button>
                        </div>
                        <p class="muted" role="status">{move || ack_msg.get().map(|m| m.unwrap_or_else(|e| e))}</p>
                    </div>
                }.into_any()
            }
        }}
    }
}

#[component]
fn Item(item: DriftItem, on_ack: Callback<()>) -> impl IntoView {
    let sev = item.severity.as_str();
    let open = RwSignal::new(false);
    let key = item.key.clone();
    view! {
        <article class=format!("drift-item sev-{sev}") data-testid="drift-item" data-key=item.key.clone() data-severity=sev>
            <header on:click=move |_| open.update(|o| *o = !*o) data-testid="drift-expand">
                <span class=format!("sev {sev}")>{sev}</span>
                <span class="kind">{kind_label(item.kind)}</span>
                <code class="subject">{subject(&item)}</code>
                <span class="muted">{format!("{} · owner {} · since {}", counts_text(&item), item.owner, day(&item.first_seen))}</span>
                <span class="chev">{move || if open.get() { "▾" } else { "▸" }}</span>
            </header>
            <p class="explanation">{item.explanation.clone()}</p>
            {move || open.get().then(|| view! { <Detail key=key.clone() on_ack=on_ack/> })}
        </article>
    }
}

fn summary_text(r: &DriftReport) -> (String, String) {
    let s = &r.summary;
    let sev = DriftSeverity::ALL
        .iter()
        .map(|sev| {
            format!(
                "{} {}",
                s.by_severity.get(sev).copied().unwrap_or(0),
                sev.as_str()
            )
        })
        .collect::<Vec<_>>()
        .join(" · ");
    let edges = [
        EdgeState::Blocked,
        EdgeState::Unprotected,
        EdgeState::Undeclared,
    ]
    .iter()
    .filter_map(|st| s.edges.get(st).map(|n| format!("{n} {}", st.as_str())))
    .collect::<Vec<_>>()
    .join(", ");
    let list = |v: &[accord_api::DriftCount]| {
        v.iter()
            .take(5)
            .map(|c| format!("{} ({})", c.name, c.items))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut first = format!(
        "{sev}. Calls at stake: {}.",
        if edges.is_empty() {
            "none".into()
        } else {
            edges
        }
    );
    if let Some(t) = &s.worst_since {
        first.push_str(&format!(
            " Critical or high since {}.",
            day(&Some(t.clone()))
        ));
    }
    let mut second = format!(
        "Where: {}. Owners: {}.",
        list(&s.namespaces),
        list(&s.owners)
    );
    if s.acknowledged > 0 {
        second.push_str(&format!(" {} acknowledged (hidden).", s.acknowledged));
    }
    (first, second)
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
    let severity = RwSignal::new(String::new());
    let kind = RwSignal::new(String::new());
    let namespace = RwSignal::new(String::new());
    let owner = RwSignal::new(String::new());
    // `?q=` seeds the search (the graph's side panel links a call's cause this way).
    let search = RwSignal::new(
        crate::nav::use_query_map()
            .get_untracked()
            .get("q")
            .unwrap_or_default(),
    );
    let sort = RwSignal::new("severity".to_string());
    let page = RwSignal::new(1u32);
    let acked = RwSignal::new(0u32);
    let query = Memo::new(move |_| {
        let mut q = format!(
            "per_page={PER_PAGE}&page={}&sort={}",
            page.get(),
            sort.get()
        );
        for (k, v) in [
            ("severity", severity.get()),
            ("kind", kind.get()),
            ("namespace", namespace.get()),
            ("owner", owner.get()),
            ("q", search.get()),
        ] {
            if !v.trim().is_empty() {
                q.push_str(&format!("&{k}={}", api::encode(v.trim())));
            }
        }
        q
    });
    // A new filter starts at the first page.
    Effect::new(move |_| {
        for filter in [severity, kind, namespace, owner, search, sort] {
            filter.track();
        }
        page.set(1);
    });
    let report = LocalResource::new(move || {
        state.refresh.track();
        acked.track();
        let q = query.get();
        async move { api::drift(&q).await }
    });
    let on_ack = Callback::new(move |_| acked.update(|n| *n += 1));
    let status = LocalResource::new(move || {
        state.refresh.track();
        api::status()
    });
    let select = |value: RwSignal<String>, testid: &'static str, options: Vec<(String, String)>| {
        view! {
            <select class="input" data-testid=testid prop:value=move || value.get() on:change=move |ev| value.set(event_target_value(&ev))>
                {options.into_iter().map(|(v, l)| view! { <option value=v>{l}</option> }).collect_view()}
            </select>
        }
    };
    let severities = std::iter::once((String::new(), "Any severity".to_string()))
        .chain(
            DriftSeverity::ALL
                .iter()
                .map(|s| (s.as_str().to_string(), s.as_str().to_string())),
        )
        .collect();
    let kinds = std::iter::once((String::new(), "Any kind".to_string()))
        .chain(
            DriftKind::ALL
                .iter()
                .map(|k| (k.as_str().to_string(), kind_label(*k))),
        )
        .collect();
    let sorts = [
        ("severity", "Worst first"),
        ("edges", "Most edges"),
        ("namespace", "Namespace"),
        ("owner", "Owner"),
        ("first_seen", "Oldest first"),
        ("-first_seen", "Newest first"),
    ]
    .iter()
    .map(|(v, l)| (v.to_string(), l.to_string()))
    .collect();
    let text = |value: RwSignal<String>, testid: &'static str, placeholder: &'static str| {
        view! {
            <input class="input" data-testid=testid placeholder=placeholder
                prop:value=move || value.get() on:change=move |ev| value.set(event_target_value(&ev))/>
        }
    };
    view! {
        <section class="page drift-page" data-testid="drift-page">
            <div class="page-head">
                <h1>"Drift"</h1>
                <p class="muted">"What to fix first: one item per cause, worst first. A call that works and is protected is never critical."</p>
                {move || status.get().and_then(Result::ok).map(|st| view! {
                    <p class="muted settings" data-testid="drift-settings">
                        "Compared with what Accord generates with "{settings_summary(&st.settings)}
                        ". Settings: "{st.settings_source.clone()}"."
                    </p>
                })}
            </div>
            <div class="drift-filters">
                {select(severity, "drift-severity", severities)}
                {select(kind, "drift-kind", kinds)}
                {text(namespace, "drift-namespace", "Namespace")}
                {text(owner, "drift-owner", "Owner")}
                {text(search, "drift-search", "Search")}
                {select(sort, "drift-sort", sorts)}
            </div>
            {move || match report.get() {
                None => view! { <Loading label="Loading drift…"/> }.into_any(),
                Some(Err(e)) => view! { <ErrorBox message=e/> }.into_any(),
                Some(Ok(r)) => {
                    let pages = r.total.div_ceil(r.per_page.max(1)).max(1);
                    let current = r.page;
                    let (first, second) = summary_text(&r);
                    view! {
                        <div class="card drift-summary" data-testid="drift-summary"><p>{first}</p><p class="muted">{second}</p></div>
                        <p class="summary" data-testid="drift-total">{format!("{} items match; page {current} of {pages}", r.total)}</p>
                        {(r.total == 0).then(|| view! { <p class="empty">"No drift matches."</p> })}
                        {r.items.into_iter().map(|i| view! { <Item item=i on_ack=on_ack/> }).collect_view()}
                        <div class="pager">
                            <button class="btn ghost" data-testid="drift-prev" disabled=current <= 1 on:click=move |_| page.set(current - 1)>"← Previous"</button>
                            <button class="btn ghost" data-testid="drift-next" disabled=current >= pages on:click=move |_| page.set(current + 1)>"Next →"</button>
                        </div>
                    }.into_any()
                }
            }}
        </section>
    }
}
