//! Drafting intents: pick the client, add targets, and see live the ClientIntents YAML, the
//! NetworkPolicies it would produce and the what-if result (debounced POST); save drafts.

use std::collections::BTreeSet;

use accord_api::{EdgeState, NewDraft, WhatIfResponse};
use leptos::prelude::*;

use super::code_block::CodeBlock;
use super::loading::{ErrorBox, Loading};
use super::workload_input::WorkloadInput;
use crate::api;
use crate::app::use_state;
use crate::draft::{self, Form, Target, TargetKind};
use crate::scene::colour;

const DEBOUNCE_MS: u64 = 350;

#[derive(Clone, Debug, PartialEq)]
enum WhatIf {
    Idle,
    Pending,
    Done(WhatIfResponse),
    Failed(String),
}

fn field_error(errors: Memo<Vec<draft::FieldError>>, field: String) -> impl IntoView {
    move || {
        errors
            .get()
            .into_iter()
            .find(|e| e.field == field)
            .map(|e| view! { <span class="field-error" role="alert">{e.message}</span> })
    }
}

#[component]
fn TargetRow(
    id: u32,
    initial: Target,
    targets: RwSignal<Vec<(u32, Target)>>,
    index: Signal<usize>,
    errors: Memo<Vec<draft::FieldError>>,
) -> impl IntoView {
    let edit = move |f: &dyn Fn(&mut Target)| {
        targets.update(|ts| {
            if let Some((_, t)) = ts.iter_mut().find(|(i, _)| *i == id) {
                f(t);
            }
        })
    };
    let err = move |f: &'static str| {
        let field = Signal::derive(move || format!("targets[{}].{f}", index.get()));
        move || {
            let field = field.get();
            errors
                .get()
                .into_iter()
                .find(|e| e.field == field)
                .map(|e| view! { <span class="field-error" role="alert">{e.message}</span> })
        }
    };
    let invalid = move |f: &'static str| {
        move || {
            let field = format!("targets[{}].{f}", index.get());
            errors.get().iter().any(|e| e.field == field)
        }
    };
    view! {
        <div class="target-row" data-testid="target-row">
            <label class="field">
                <span>"Kind"</span>
                <select class="input" on:change=move |ev| {
                    let v = event_target_value(&ev);
                    edit(&|t| t.kind = if v == "service" { TargetKind::Service } else { TargetKind::Workload });
                }>
                    <option value="workload" selected=initial.kind == TargetKind::Workload>"Workload"</option>
                    <option value="service" selected=initial.kind == TargetKind::Service>"Service"</option>
                </select>
            </label>
            <label class="field grow">
                <span>"Name"</span>
                <input class="input" class:invalid=invalid("name") list="draft-names" data-testid="target-name" placeholder="auth"
                    prop:value=initial.name.clone()
                    on:input=move |ev| { let v = event_target_value(&ev); edit(&|t| t.name = v.clone()); }/>
                {err("name")}
            </label>
            <label class="field">
                <span>"Namespace"</span>
                <input class="input" class:invalid=invalid("namespace") list="draft-namespaces" data-testid="target-namespace" placeholder="same as client"
                    prop:value=initial.namespace.clone()
                    on:input=move |ev| { let v = event_target_value(&ev); edit(&|t| t.namespace = v.clone()); }/>
                {err("namespace")}
            </label>
            <label class="field">
                <span>"Ports (optional)"</span>
                <input class="input" class:invalid=invalid("ports") data-testid="target-ports" placeholder="8080, 53/UDP"
                    prop:value=initial.ports.clone()
                    on:input=move |ev| { let v = event_target_value(&ev); edit(&|t| t.ports = v.clone()); }/>
                {err("ports")}
            </label>
            <button class="btn icon remove" aria-label="Remove target" on:click=move |_| targets.update(|ts| ts.retain(|(i, _)| *i != id))>"×"</button>
        </div>
    }
}

#[component]
fn WhatIfView(result: WhatIf) -> impl IntoView {
    match result {
        WhatIf::Idle => view! { <p class="muted">"Complete the form — a client and valid targets — to see what would change."</p> }.into_any(),
        WhatIf::Pending => view! { <Loading label="Evaluating…"/> }.into_any(),
        WhatIf::Failed(e) => view! { <ErrorBox message=e/> }.into_any(),
        WhatIf::Done(r) => {
            let allowed: Vec<_> = r.changes.iter().filter(|c| c.after.is_some_and(|s| !matches!(s, EdgeState::Blocked | EdgeState::Open))).cloned().collect();
            let opened: Vec<_> = r.changes.iter().filter(|c| c.after == Some(EdgeState::Open)).cloned().collect();
            let blocked: Vec<_> = r.changes.iter().filter(|c| c.after == Some(EdgeState::Blocked)).cloned().collect();
            let removed: Vec<_> = r.changes.iter().filter(|c| c.after.is_none()).cloned().collect();
            let list = |items: Vec<accord_api::EdgeChange>, testid: &'static str| {
                view! {
                    <ul class="changes" data-testid=testid>
                        {items.into_iter().map(|c| {
                            let after = c.after;
                            view! {
                                <li>
                                    <code>{format!("{} → {}", c.source, c.target)}</code>
                                    <span class="muted">{c.before.map_or("new".to_string(), |s| s.to_string())}" → "</span>
                                    {after.map(|s| view! { <span class="pill" style=format!("--c:{}", colour(s))>{s.as_str()}</span> })}
                                    {(!c.ports_after.is_empty()).then(|| view! { <span class="muted">{c.ports_after.clone()}</span> })}
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }
            };
            let policies = r.policies_yaml.clone();
            view! {
                <div class="whatif" data-testid="whatif">
                    {(!r.diagnostics.is_empty()).then(|| view! {
                        <ul class="diagnostics" data-testid="whatif-diagnostics">
                            {r.diagnostics.iter().map(|d| view! {
                                <li class=format!("diag {}", d.severity.as_str())>
                                    <strong>{d.severity.as_str()}</strong>" "
                                    {(!d.field.is_empty()).then(|| view! { <code>{d.field.clone()}</code> })}" "{d.message.clone()}
                                </li>
                            }).collect_view()}
                        </ul>
                    })}
                    <h3>"Becomes allowed"<span class="count">{allowed.len()}</span></h3>
                    {if allowed.is_empty() { view! { <p class="muted">"No call changes to allowed."</p> }.into_any() } else { list(allowed, "whatif-allowed").into_any() }}
                    <h3>"Stays or becomes blocked"<span class="count">{blocked.len()}</span></h3>
                    {if blocked.is_empty() { view! { <p class="muted">"Nothing declared stays blocked."</p> }.into_any() } else { list(blocked, "whatif-blocked").into_any() }}
                    {(!opened.is_empty()).then(|| view! {
                        <h3>"Open to anyone"<span class="count">{opened.len()}</span></h3>
                        <p class="muted">"These servers would no longer be isolated: the draft replaces the workload's current ClientIntents, so calls it no longer declares stop protecting their servers."</p>
                        {list(opened, "whatif-opened")}
                    })}
                    {(!removed.is_empty()).then(|| view! {
                        <h3>"No longer an edge"</h3>
                        {list(removed, "whatif-removed")}
                    })}
                    <h3>"NetworkPolicies it would produce"</h3>
                    {if policies.is_empty() {
                        view! { <p class="muted">"None."</p> }.into_any()
                    } else {
                        view! { <CodeBlock code=Signal::derive(move || policies.clone()) testid="whatif-policies"/> }.into_any()
                    }}
                </div>
            }.into_any()
        }
    }
}

#[component]
pub fn DraftPage() -> impl IntoView {
    let state = use_state();
    let client = RwSignal::new(String::new());
    let next_id = StoredValue::new(1u32);
    let empty = || Target {
        kind: TargetKind::Workload,
        name: String::new(),
        namespace: String::new(),
        ports: String::new(),
    };
    let targets = RwSignal::new(vec![(0u32, empty())]);
    // A drift fix opened here: its merged ClientIntents fill the form.
    if let Some(seed) = state.draft_seed.try_update(Option::take).flatten() {
        client.set(seed.client);
        let rows: Vec<(u32, Target)> = seed
            .targets
            .into_iter()
            .zip(0u32..)
            .map(|(t, i)| (i, t))
            .collect();
        next_id.set_value(rows.len() as u32 + 1);
        targets.set(rows);
    }
    let form = Memo::new(move |_| Form {
        client: client.get(),
        targets: targets.get().into_iter().map(|(_, t)| t).collect(),
    });
    let yaml = Memo::new(move |_| draft::to_yaml(&form.get()));
    let errors = Memo::new(move |_| draft::validate(&form.get()));
    let touched = RwSignal::new(false);
    let shown_errors = Memo::new(move |_| {
        if touched.get() {
            errors.get()
        } else {
            Vec::new()
        }
    });

    // The what-if, debounced: only the latest request's answer is shown.
    let result = RwSignal::new(WhatIf::Idle);
    let seq = StoredValue::new(0u64);
    Effect::new(move |_| {
        let y = yaml.get();
        let ok = errors.with(|e| e.is_empty());
        seq.update_value(|s| *s += 1);
        let mine = seq.get_value();
        if !ok {
            result.set(WhatIf::Idle);
            return;
        }
        set_timeout(
            move || {
                if seq.get_value() != mine {
                    return;
                }
                result.set(WhatIf::Pending);
                leptos::task::spawn_local(async move {
                    let r = api::what_if(y).await;
                    if seq.get_value() == mine {
                        result.set(match r {
                            Ok(r) => WhatIf::Done(r),
                            Err(e) => WhatIf::Failed(e),
                        });
                    }
                });
            },
            std::time::Duration::from_millis(DEBOUNCE_MS),
        );
    });

    let graph = Memo::new(move |_| state.graph.get().and_then(|r| r.ok()));
    let ids = Signal::derive(move || {
        graph.with(|g| {
            g.as_ref()
                .map(|g| g.nodes.iter().map(|n| n.id.clone()).collect())
                .unwrap_or_default()
        })
    });
    let names = Signal::derive(move || {
        graph.with(|g| {
            g.as_ref()
                .map(|g| {
                    g.nodes
                        .iter()
                        .map(|n| n.name.clone())
                        .collect::<BTreeSet<_>>()
                })
                .unwrap_or_default()
        })
    });
    let namespaces = Signal::derive(move || {
        graph.with(|g| {
            g.as_ref()
                .map(|g| {
                    g.nodes
                        .iter()
                        .map(|n| n.namespace.clone())
                        .collect::<BTreeSet<_>>()
                })
                .unwrap_or_default()
        })
    });

    // Saved drafts.
    let saved = RwSignal::new(0u32);
    let drafts = LocalResource::new(move || {
        saved.track();
        api::drafts()
    });
    let draft_name = RwSignal::new(String::new());
    let save_msg = RwSignal::new(None::<Result<String, String>>);
    let save = move |_| {
        touched.set(true);
        if !errors.get_untracked().is_empty() {
            save_msg.set(Some(Err("Fix the errors above before saving.".into())));
            return;
        }
        let name = match draft_name.get_untracked().trim() {
            "" => format!("intents for {}", client.get_untracked()),
            n => n.to_string(),
        };
        let body = NewDraft {
            name,
            yaml: yaml.get_untracked(),
        };
        leptos::task::spawn_local(async move {
            match api::save_draft(body).await {
                Ok(d) => {
                    save_msg.set(Some(Ok(format!("Saved “{}”.", d.name))));
                    saved.update(|n| *n += 1);
                }
                Err(e) => save_msg.set(Some(Err(e))),
            }
        });
    };
    let add_target = move |_| {
        let id = next_id.get_value();
        next_id.set_value(id + 1);
        targets.update(|ts| ts.push((id, empty())));
    };
    let client_name = Signal::derive(move || {
        draft::parse_workload_id(&client.get())
            .map(|id| id.name)
            .unwrap_or_else(|| "intents".into())
    });

    view! {
        <section class="page draft-page" data-testid="draft-page">
            <div class="page-head">
                <h1>"Draft intents"</h1>
                <p class="muted">"Declare what a workload calls and see what would change before anything is applied."</p>
            </div>
            <datalist id="draft-names">{move || names.get().into_iter().map(|n| view! { <option value=n></option> }).collect_view()}</datalist>
            <datalist id="draft-namespaces">{move || namespaces.get().into_iter().map(|n| view! { <option value=n></option> }).collect_view()}</datalist>
            <div class="draft-grid">
                <div class="card form" on:focusout=move |_| touched.set(true)>
                    <h2>"Client"</h2>
                    <label class="field">
                        <span>"Workload"</span>
                        <WorkloadInput value=client options=ids on_pick=Callback::new(move |_| ()) placeholder="e.g. storefront/cart" testid="draft-client"
                            invalid=Signal::derive(move || shown_errors.get().iter().any(|e| e.field == "client"))/>
                        {field_error(shown_errors, "client".into())}
                    </label>
                    <h2>"Targets"</h2>
                    <For
                        each=move || targets.get()
                        key=|(id, _)| *id
                        children=move |(id, t)| {
                            let index = Signal::derive(move || targets.get().iter().position(|(i, _)| *i == id).unwrap_or(0));
                            view! { <TargetRow id=id initial=t targets=targets index=index errors=shown_errors/> }
                        }
                    />
                    {field_error(shown_errors, "targets".into())}
                    <button class="btn ghost" data-testid="add-target" on:click=add_target>"+ Add target"</button>
                    <div class="save-row">
                        <input class="input" placeholder="Draft name" data-testid="draft-name" prop:value=move || draft_name.get() on:input=move |ev| draft_name.set(event_target_value(&ev))/>
                        <button class="btn primary" data-testid="save-draft" on:click=save>"Save draft"</button>
                    </div>
                    {move || save_msg.get().map(|m| match m {
                        Ok(t) => view! { <p class="ok-msg" role="status">{t}</p> }.into_any(),
                        Err(e) => view! { <p class="field-error" role="alert">{e}</p> }.into_any(),
                    })}
                </div>
                <div class="card">
                    <h2>"ClientIntents"</h2>
                    <CodeBlock code=Signal::derive(move || yaml.get()) download=format!("{}-intents.yaml", client_name.get_untracked()) testid="draft-yaml"/>
                    <h2>"What if"</h2>
                    {move || view! { <WhatIfView result=result.get()/> }}
                </div>
            </div>
            <div class="card drafts">
                <h2>"Saved drafts"</h2>
                {move || match drafts.get() {
                    None => view! { <Loading/> }.into_any(),
                    Some(Err(e)) => view! { <ErrorBox message=e/> }.into_any(),
                    Some(Ok(l)) if l.drafts.is_empty() => view! { <p class="muted">"No drafts yet."</p> }.into_any(),
                    Some(Ok(l)) => view! {
                        <ul class="draft-list" data-testid="draft-list">
                            {l.drafts.into_iter().map(|d| {
                                let y = d.yaml.clone();
                                view! {
                                    <li>
                                        <details>
                                            <summary><strong>{d.name.clone()}</strong><span class="muted">{d.updated.clone().max(d.created.clone()).replace('T', " ")}</span></summary>
                                            <CodeBlock code=Signal::derive(move || y.clone()) download=format!("{}.yaml", d.name.replace(' ', "-"))/>
                                        </details>
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                }}
            </div>
        </section>
    }
}
