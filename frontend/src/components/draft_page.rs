//! Drafting intents: pick the client, start from its current ClientIntents, add or remove
//! targets, and see live the YAML and what would change against the cluster as it runs (a
//! debounced what-if), losses first; save, load, share, export and apply drafts.

use crate::nav::{use_navigate, use_query_map};
use accord_api::{CurrentIntents, Draft, EdgeChange, EdgeState, Impact, NewDraft, WhatIfResponse};
use leptos::prelude::*;

use super::code_block::CodeBlock;
use super::loading::{ErrorBox, Loading};
use super::workload_input::WorkloadInput;
use crate::api;
use crate::app::use_state;
use crate::draft::{self, Form, Target, TargetKind};
use crate::scene::{colour, short_name};

const DEBOUNCE_MS: u64 = 350;
/// Where the form is kept across reloads.
const STORAGE_KEY: &str = "accord.draft-form";
const MAX_NAME_SUGGESTIONS: usize = 40;

#[derive(Clone, Debug, PartialEq)]
enum WhatIf {
    Idle,
    Pending,
    Done(WhatIfResponse),
    Failed(String),
}

/// A message on a field: a client-side validation error or a diagnostic of the what-if.
#[derive(Clone, Debug, PartialEq)]
struct FieldMsg {
    field: String,
    message: String,
    /// `error` or `warning`.
    severity: &'static str,
}

fn empty_target() -> Target {
    Target {
        kind: TargetKind::Workload,
        name: String::new(),
        namespace: String::new(),
        ports: String::new(),
    }
}

/// A target as compared with the current intents: kind, name and namespace (the client's when
/// blank), ports as written.
fn target_key(t: &Target, client_ns: &str) -> (&'static str, String, String, String) {
    let (name, ns) = match draft::split_qualified(&t.name) {
        Some((n, ns)) if t.namespace.trim().is_empty() => (n, ns),
        _ => (t.name.trim().to_string(), t.namespace.trim().to_string()),
    };
    let ns = if ns.is_empty() {
        client_ns.to_string()
    } else {
        ns
    };
    let mut ports: Vec<String> = draft::parse_ports(&t.ports)
        .unwrap_or_default()
        .into_iter()
        .map(|(p, proto)| format!("{p}/{proto}"))
        .collect();
    ports.sort();
    (t.kind.as_str(), name, ns, ports.join(","))
}

/// The form as kept in the browser's storage.
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    form: accord_api::DraftIntents,
    name: String,
    id: Option<i64>,
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

fn msg_view(m: Option<FieldMsg>) -> impl IntoView {
    m.map(|m| {
        let class = if m.severity == "error" {
            "field-error"
        } else {
            "field-warning"
        };
        view! { <span class=class role="alert" data-testid="field-msg">{m.message}</span> }
    })
}

#[component]
fn TargetRow(
    id: u32,
    targets: RwSignal<Vec<(u32, Target)>>,
    index: Signal<usize>,
    msgs: Memo<Vec<FieldMsg>>,
    options: Signal<Vec<accord_api::TargetOption>>,
    client_ns: Signal<String>,
    /// Whether this row is one of the client's current targets (else the draft adds it).
    current: Signal<bool>,
) -> impl IntoView {
    let row = move || {
        targets.with(|ts| {
            ts.iter()
                .find(|(i, _)| *i == id)
                .map(|(_, t)| t.clone())
                .unwrap_or_else(empty_target)
        })
    };
    let edit = move |f: &dyn Fn(&mut Target)| {
        targets.update(|ts| {
            if let Some((_, t)) = ts.iter_mut().find(|(i, _)| *i == id) {
                f(t);
            }
        })
    };
    let msg = move |f: &'static str| {
        move || {
            let field = format!("targets[{}].{f}", index.get());
            msgs.with(|m| m.iter().find(|e| e.field == field).cloned())
        }
    };
    let hint = RwSignal::new(None::<String>);
    // Names to suggest: the kind's workloads or Services in the row's namespace (the client's
    // when blank), then, while the namespace is blank, those elsewhere as `name.namespace`.
    let list_id = format!("draft-target-names-{id}");
    let suggestions = Memo::new(move |_| {
        let t = row();
        if t.kind == TargetKind::Internet {
            return Vec::new();
        }
        let service = t.kind == TargetKind::Service;
        let ns = match t.namespace.trim() {
            "" => client_ns.get(),
            ns => ns.to_string(),
        };
        options.with(|opts| {
            let mut here: Vec<(String, String)> = Vec::new();
            let mut elsewhere: Vec<(String, String)> = Vec::new();
            for o in opts.iter().filter(|o| o.service == service) {
                let ports = o.ports.join(", ");
                if o.namespace == ns {
                    here.push((o.name.clone(), ports));
                } else if t.namespace.trim().is_empty() {
                    elsewhere.push((format!("{}.{}", o.name, o.namespace), ports));
                }
            }
            here.extend(elsewhere);
            here.truncate(MAX_NAME_SUGGESTIONS);
            here
        })
    });
    // Ports of the named target: its Service's, or its containers'.
    let suggested_ports = Memo::new(move |_| {
        let t = row();
        let service = t.kind == TargetKind::Service;
        let (name, ns) = match draft::split_qualified(&t.name) {
            Some((n, ns)) if t.namespace.trim().is_empty() => (n, ns),
            _ => (t.name.trim().to_string(), t.namespace.trim().to_string()),
        };
        let ns = if ns.is_empty() { client_ns.get() } else { ns };
        options.with(|opts| {
            opts.iter()
                .find(|o| o.service == service && o.name == name && o.namespace == ns)
                .map(|o| o.ports.clone())
                .unwrap_or_default()
        })
    });
    let invalid = move |f: &'static str| move || msg(f)().is_some_and(|m| m.severity == "error");
    let warned = move |f: &'static str| move || msg(f)().is_some_and(|m| m.severity != "error");
    view! {
        <div class="target-row" class:new-target=move || !current.get() data-testid="target-row"
            data-current=move || current.get().to_string()>
            <span class="row-tag" data-testid="row-tag"></span>
            <label class="field">
                <span>"Kind"</span>
                <select class="input" prop:value=move || row().kind.as_str()
                    on:change=move |ev| {
                        let v = event_target_value(&ev);
                        edit(&|t| t.kind = TargetKind::parse(&v));
                    }>
                    <option value="workload">"Workload"</option>
                    <option value="service">"Service"</option>
                    <option value="internet">"Internet"</option>
                </select>
            </label>
            <label class="field grow">
                <span>"Name"</span>
                <input class="input" class:invalid=invalid("name") class:warned=warned("name") list=list_id.clone() data-testid="target-name" placeholder="auth"
                    prop:value=move || row().name
                    on:input=move |ev| { let v = event_target_value(&ev); edit(&|t| t.name = v.clone()); }
                    on:change=move |ev| {
                        // Otterize's `auth.platform`: the namespace goes in its own field.
                        let v = event_target_value(&ev);
                        if let Some((n, ns)) = draft::split_qualified(&v) && row().namespace.trim().is_empty() && row().kind != TargetKind::Internet {
                            edit(&|t| { t.name = n.clone(); t.namespace = ns.clone(); });
                            hint.set(Some(format!("From `{v}`: the namespace goes here.")));
                        }
                    }/>
                <datalist id=list_id.clone()>
                    {move || suggestions.get().into_iter().map(|(v, ports)| view! { <option value=v>{ports}</option> }).collect_view()}
                </datalist>
                {msg_view_dyn(msg("name"))}
            </label>
            <label class="field">
                <span>"Namespace"</span>
                <input class="input" class:invalid=invalid("namespace") list="draft-namespaces" data-testid="target-namespace"
                    placeholder=move || match client_ns.get() { ns if ns.is_empty() => "same as client".to_string(), ns => ns }
                    prop:value=move || row().namespace
                    on:input=move |ev| { let v = event_target_value(&ev); edit(&|t| t.namespace = v.clone()); }/>
                {msg_view_dyn(msg("namespace"))}
                {move || hint.get().map(|h| view! { <span class="field-hint" data-testid="split-hint">{h}</span> })}
            </label>
            <label class="field">
                <span>"Ports (optional)"</span>
                <input class="input" class:invalid=invalid("ports") data-testid="target-ports"
                    placeholder="every port"
                    prop:value=move || row().ports
                    on:input=move |ev| { let v = event_target_value(&ev); edit(&|t| t.ports = v.clone()); }/>
                {move || {
                    let ports = suggested_ports.get();
                    (!current.get() && row().ports.trim().is_empty() && !ports.is_empty()).then(|| view! {
                        <span class="port-suggestions">
                            {ports.into_iter().map(|p| {
                                let p2 = p.clone();
                                view! { <button class="btn small ghost" data-testid="port-suggestion" on:click=move |_| edit(&|t| t.ports = p2.clone())>{p}</button> }
                            }).collect_view()}
                        </span>
                    })
                }}
                {msg_view_dyn(msg("ports"))}
            </label>
            <button class="btn icon remove" aria-label="Remove target" data-testid="remove-target" on:click=move |_| targets.update(|ts| ts.retain(|(i, _)| *i != id))>"×"</button>
        </div>
    }
}

fn msg_view_dyn(m: impl Fn() -> Option<FieldMsg> + Send + Sync + 'static) -> impl IntoView {
    move || msg_view(m())
}

/// One change, with its why; the states, ports and a link to the edge's policies a click away.
fn change_row(c: EdgeChange) -> impl IntoView {
    let state = |s: Option<EdgeState>| match s {
        Some(s) => {
            view! { <span class="pill" style=format!("--c:{}", colour(s))>{s.as_str()}</span> }
                .into_any()
        }
        None => view! { <span class="muted">"no access"</span> }.into_any(),
    };
    let link = format!(
        "/graph?focus={}&sel={}&edge={}",
        api::encode(&c.source),
        api::encode(&c.source),
        api::encode(&format!("{}->{}", c.source, c.target))
    );
    let ports = |p: &str| {
        if p.is_empty() {
            "—".to_string()
        } else {
            p.to_string()
        }
    };
    view! {
        <li data-testid="change" data-impact=c.impact.as_str()>
            <details>
                <summary>
                    <code>{format!("{} → {}", c.source, c.target)}</code>
                    " "{state(c.before)}<span class="muted">" → "</span>{state(c.after)}
                    <span class="why" data-testid="change-why">{c.why.clone()}</span>
                </summary>
                <div class="change-detail">
                    <div>"Ports allowed now: "<code>{ports(&c.ports_before)}</code>"; after: "<code>{ports(&c.ports_after)}</code></div>
                    <a href=link>"The policies that decide it now, in the graph →"</a>
                </div>
            </details>
        </li>
    }
}

/// Rows of one section; calls to a server that would no longer be protected are one row per
/// server ("anyone → server"), not one per possible caller.
fn section_rows(items: Vec<EdgeChange>) -> impl IntoView {
    let mut open_by_target: Vec<(String, usize, EdgeChange)> = Vec::new();
    let mut rows = Vec::new();
    for c in items {
        if c.after == Some(EdgeState::Open) && c.before.is_none() {
            match open_by_target.iter_mut().find(|(t, _, _)| *t == c.target) {
                Some(e) => e.1 += 1,
                None => open_by_target.push((c.target.clone(), 1, c)),
            }
        } else {
            rows.push(c);
        }
    }
    view! {
        <ul class="changes">
            {open_by_target.into_iter().map(|(target, n, c)| view! {
                <li data-testid="change" data-impact=c.impact.as_str()>
                    <code>{format!("anyone → {target}")}</code>
                    <span class="pill" style=format!("--c:{}", colour(EdgeState::Open))>"open"</span>
                    <div class="why" data-testid="change-why">{format!("{} ({n} workloads could newly call it.)", c.why)}</div>
                </li>
            }).collect_view()}
            {rows.into_iter().map(change_row).collect_view()}
        </ul>
    }
}

fn heading(impact: Impact) -> (&'static str, &'static str) {
    match impact {
        Impact::LosesAccess => ("Loses access", "Calls that work now and would be denied."),
        Impact::NewlyAllowed => ("Newly allowed", "Calls denied now that would be allowed."),
        Impact::PortsChange => (
            "Ports change",
            "Calls allowed before and after, on other ports.",
        ),
        Impact::Protection => (
            "Newly protected or unprotected",
            "Same calls allowed; the server's isolation changes.",
        ),
        Impact::Declaration => (
            "Declared, same access",
            "Whether an intent declares the call changes; nothing changes at runtime.",
        ),
    }
}

#[component]
fn WhatIfView(result: WhatIf, form: Form) -> impl IntoView {
    match result {
        WhatIf::Idle => view! { <p class="muted">"Complete the form — a client and valid targets — to see what would change."</p> }.into_any(),
        WhatIf::Pending => view! { <Loading label="Evaluating…"/> }.into_any(),
        WhatIf::Failed(e) => view! { <ErrorBox message=e/> }.into_any(),
        WhatIf::Done(r) => {
            // Diagnostics of a field are shown on it; the others here.
            let general: Vec<_> = r
                .diagnostics
                .iter()
                .filter(|d| draft::field_of_diagnostic(&form, &d.field).is_none())
                .cloned()
                .collect();
            let sections = Impact::ALL.into_iter().filter_map(|impact| {
                let items: Vec<EdgeChange> = r.changes.iter().filter(|c| c.impact == impact).cloned().collect();
                (!items.is_empty()).then(|| {
                    let (title, note) = heading(impact);
                    let n = items.len();
                    view! {
                        <section class=format!("whatif-section {}", impact.as_str()) data-testid=format!("whatif-{}", impact.as_str())>
                            <h3>{title}<span class="count">{n}</span></h3>
                            <p class="muted small">{note}</p>
                            {section_rows(items)}
                        </section>
                    }
                })
            }).collect_view();
            let nothing = r.changes.is_empty();
            let also = r.also_fixed.clone();
            let unchanged = r.unchanged.clone();
            let labels = r.labels_yaml.clone();
            let policies = r.policies_yaml.clone();
            view! {
                <div class="whatif" data-testid="whatif">
                    {(!general.is_empty()).then(|| view! {
                        <ul class="diagnostics" data-testid="whatif-diagnostics">
                            {general.into_iter().map(|d| view! {
                                <li class=format!("diag {}", d.severity.as_str())>
                                    <strong>{d.severity.as_str()}</strong>" "
                                    {(!d.field.is_empty()).then(|| view! { <code>{d.field.clone()}</code> })}" "{d.message.clone()}
                                </li>
                            }).collect_view()}
                        </ul>
                    })}
                    {nothing.then(|| view! { <p class="muted" data-testid="whatif-nothing">"The draft itself changes no call."</p> })}
                    {sections}
                    {(!also.is_empty()).then(|| {
                        let n = also.len();
                        view! {
                            <section class="whatif-section also-fixed" data-testid="whatif-also-fixed">
                                <h3>"Also fixed when applied"<span class="count">{n}</span></h3>
                                <p class="muted small">"The operator makes these changes to the same workloads whatever the draft says (it restores what has drifted); they happen when the draft is applied."</p>
                                {section_rows(also)}
                            </section>
                        }
                    })}
                    {(!unchanged.is_empty()).then(|| {
                        let n = unchanged.len();
                        view! {
                            <details class="whatif-section" data-testid="whatif-unchanged">
                                <summary><h3>"Unchanged"<span class="count">{n}</span></h3></summary>
                                <ul class="changes">
                                    {unchanged.into_iter().map(|c| view! {
                                        <li><code>{format!("{} → {}", c.source, c.target)}</code>
                                            {c.after.map(|s| view! { <span class="pill" style=format!("--c:{}", colour(s))>{s.as_str()}</span> })}</li>
                                    }).collect_view()}
                                </ul>
                            </details>
                        }
                    })}
                    <h3>"Pod labels it would set"</h3>
                    {if labels.is_empty() {
                        view! { <p class="muted">"None change."</p> }.into_any()
                    } else {
                        view! { <CodeBlock code=Signal::derive(move || labels.clone()) testid="whatif-labels"/> }.into_any()
                    }}
                    <h3>"NetworkPolicies it would write"</h3>
                    {if policies.is_empty() {
                        view! { <p class="muted">"None change."</p> }.into_any()
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
    let query = use_query_map();
    let navigate = use_navigate();
    let client = RwSignal::new(String::new());
    let intents_name = RwSignal::new(String::new());
    let next_id = StoredValue::new(1u32);
    let targets = RwSignal::new(vec![(0u32, empty_target())]);
    // The client's current targets (what the draft adds to and removes from), once loaded.
    let base = RwSignal::new(None::<(String, Vec<Target>)>);
    let base_note = RwSignal::new(None::<String>);
    // A form loaded whole (a drift fix, a saved draft, the last session) keeps its rows when
    // the client's current intents arrive.
    let keep_rows = StoredValue::new(None::<String>);
    let draft_id = RwSignal::new(None::<i64>);
    let draft_name = RwSignal::new(String::new());

    let set_form = move |f: Form| {
        let mut rows: Vec<(u32, Target)> = f
            .targets
            .into_iter()
            .zip(0u32..)
            .map(|(t, i)| (i, t))
            .collect();
        if rows.is_empty() {
            rows.push((0, empty_target()));
        }
        next_id.set_value(rows.len() as u32 + 1);
        keep_rows.set_value(Some(f.client.clone()));
        intents_name.set(f.intents_name);
        targets.set(rows);
        client.set(f.client);
    };
    // A drift fix opened here: its merged ClientIntents fill the form.
    let seeded = state.draft_seed.try_update(Option::take).flatten();
    let from_url = query.with_untracked(|q| q.get("id").and_then(|v| v.parse::<i64>().ok()));
    if let Some(seed) = seeded {
        set_form(seed);
    } else if from_url.is_none()
        && let Some(saved) = storage().and_then(|s| s.get_item(STORAGE_KEY).ok().flatten())
        && let Ok(v) = crate::json::from_str::<Stored>(&saved)
    {
        // The form as it was before a reload.
        set_form(draft::from_draft_intents(&v.form));
        draft_name.set(v.name);
        draft_id.set(v.id);
    }

    let form = Memo::new(move |_| Form {
        client: client.get(),
        targets: targets.get().into_iter().map(|(_, t)| t).collect(),
        intents_name: intents_name.get(),
    });
    let yaml = Memo::new(move |_| draft::to_yaml(&form.get()));
    let errors = Memo::new(move |_| draft::validate(&form.get()));
    let touched = RwSignal::new(false);
    let client_ns = Signal::derive(move || {
        draft::parse_workload_id(&client.get())
            .map(|id| id.namespace)
            .unwrap_or_default()
    });

    // Keep the form across reloads.
    Effect::new(move |_| {
        let f = form.get();
        if f.client.trim().is_empty() {
            return;
        }
        let v = Stored {
            form: draft::to_draft_intents(&f),
            name: draft_name.get(),
            id: draft_id.get(),
        };
        if let (Some(s), Ok(text)) = (storage(), serde_json::to_string(&v)) {
            let _ = s.set_item(STORAGE_KEY, &text);
        }
    });

    // A client picked: start from its current ClientIntents.
    let graph = Memo::new(move |_| state.graph.get().and_then(|r| r.ok()));
    let ids = Signal::derive(move || {
        graph.with(|g| {
            g.as_ref()
                .map(|g| g.nodes.iter().map(|n| n.id.clone()).collect::<Vec<_>>())
                .unwrap_or_default()
        })
    });
    Effect::new(move |_| {
        let c = client.get();
        // A workload id, or `namespace/name` of the one workload of that name.
        let known = ids.with(|ids| {
            let prefix = format!("{c}[");
            ids.contains(&c) || ids.iter().filter(|i| i.starts_with(&prefix)).count() == 1
        });
        if !known || base.with_untracked(|b| b.as_ref().is_some_and(|(id, _)| *id == c)) {
            return;
        }
        leptos::task::spawn_local(async move {
            let Ok(CurrentIntents {
                client: id,
                name,
                form: current,
                yaml: whole,
                others,
            }) = api::current_intents(&c).await
            else {
                return;
            };
            if client.get_untracked() != c {
                return;
            }
            let keep = keep_rows.get_value().as_deref() == Some(c.as_str());
            let short = short_name(&id).to_string();
            match current {
                Some(d) => {
                    let f = draft::from_draft_intents(&d);
                    base_note.set(Some(if others.is_empty() {
                        format!("Starting from {short}'s current ClientIntents “{name}” ({} target{}): the draft adds to them or removes from them.", f.targets.len(), if f.targets.len() == 1 { "" } else { "s" })
                    } else {
                        format!("Starting from {short}'s ClientIntents “{name}”; the operator also merges {} for it, which the draft leaves as they are.", others.join(", "))
                    }));
                    if !keep {
                        intents_name.set(f.intents_name.clone());
                        // The rows typed so far that are not current targets stay, as additions.
                        let ns = client_ns.get_untracked();
                        let typed: Vec<Target> = targets
                            .get_untracked()
                            .into_iter()
                            .map(|(_, t)| t)
                            .filter(|t| {
                                !t.name.trim().is_empty()
                                    && !f
                                        .targets
                                        .iter()
                                        .any(|b| target_key(b, &ns) == target_key(t, &ns))
                            })
                            .collect();
                        let mut rows: Vec<(u32, Target)> = f
                            .targets
                            .iter()
                            .cloned()
                            .chain(typed)
                            .zip(0u32..)
                            .map(|(t, i)| (i, t))
                            .collect();
                        let n = rows.len() as u32;
                        rows.push((n, empty_target()));
                        next_id.set_value(n + 1);
                        targets.set(rows);
                    }
                    base.set(Some((c, f.targets)));
                }
                None if !whole.is_empty() => {
                    base_note.set(Some(format!("{short}'s current ClientIntents “{name}” hold targets this form cannot show; a draft from this form replaces them whole. Their YAML:\n{whole}")));
                    base.set(Some((c, Vec::new())));
                }
                None => {
                    base_note.set(Some(format!(
                        "{short} declares no ClientIntents yet: the draft is its first."
                    )));
                    base.set(Some((c, Vec::new())));
                }
            }
        });
    });
    let is_current = move |id: u32| {
        Signal::derive(move || {
            let ns = client_ns.get();
            let Some(t) =
                targets.with(|ts| ts.iter().find(|(i, _)| *i == id).map(|(_, t)| t.clone()))
            else {
                return false;
            };
            base.with(|b| {
                b.as_ref().is_some_and(|(_, bs)| {
                    bs.iter().any(|b| target_key(b, &ns) == target_key(&t, &ns))
                })
            })
        })
    };
    // Current targets the draft removes.
    let removed = Memo::new(move |_| {
        let ns = client_ns.get();
        let rows: Vec<Target> = targets.get().into_iter().map(|(_, t)| t).collect();
        base.with(|b| {
            b.as_ref()
                .map(|(_, bs)| {
                    bs.iter()
                        .filter(|b| {
                            !rows
                                .iter()
                                .any(|t| target_key(t, &ns) == target_key(b, &ns))
                        })
                        .cloned()
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    });
    let replace_all = move |_| {
        targets.set(vec![(next_id.get_value(), empty_target())]);
        next_id.update_value(|n| *n += 1);
    };

    // The what-if, debounced: only the latest request's answer is shown.
    let result = RwSignal::new(WhatIf::Idle);
    let seq = StoredValue::new(0u64);
    Effect::new(move |_| {
        let y = yaml.get();
        // Again after each sync: the answer is about the cluster as it runs now.
        state.refresh.track();
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
    // Messages on fields: the form's own errors (once touched), then the what-if's diagnostics.
    let msgs = Memo::new(move |_| {
        let mut out: Vec<FieldMsg> = Vec::new();
        if touched.get() {
            out.extend(errors.get().into_iter().map(|e| FieldMsg {
                field: e.field,
                message: e.message,
                severity: "error",
            }));
        }
        if let WhatIf::Done(r) = result.get() {
            let f = form.get();
            for d in &r.diagnostics {
                if let Some(field) = draft::field_of_diagnostic(&f, &d.field) {
                    out.push(FieldMsg {
                        field,
                        message: d.message.clone(),
                        severity: if d.is_error() { "error" } else { "warning" },
                    });
                }
            }
        }
        out
    });

    // Suggestions and whether applying is enabled: fetched once, with the page.
    let options = RwSignal::new(Vec::<accord_api::TargetOption>::new());
    let apply_enabled = RwSignal::new(false);
    leptos::task::spawn_local(async move {
        if let Ok(o) = api::targets().await {
            options.set(o.targets);
        }
        if let Ok(s) = api::status().await {
            apply_enabled.set(s.apply_enabled);
        }
    });
    let options = Signal::from(options);
    let namespaces = Signal::derive(move || {
        graph.with(|g| {
            g.as_ref()
                .map(|g| {
                    g.nodes
                        .iter()
                        .map(|n| n.namespace.clone())
                        .collect::<std::collections::BTreeSet<_>>()
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
    let token = RwSignal::new(String::new());
    let save_msg = RwSignal::new(None::<Result<String, String>>);
    let list_msg = RwSignal::new(None::<Result<String, String>>);
    let navigate = StoredValue::new_local(navigate);
    let show_draft = move |id: i64| {
        navigate.with_value(|nav| nav(&format!("/drafts?id={id}"), Default::default()))
    };
    // A draft in the URL: load it into the form.
    Effect::new(move |_| {
        let Some(id) = query.with(|q| q.get("id").and_then(|v| v.parse::<i64>().ok())) else {
            return;
        };
        if draft_id.get_untracked() == Some(id) && !client.get_untracked().is_empty() {
            return;
        }
        leptos::task::spawn_local(async move {
            match api::draft(id).await {
                Ok(d) => match api::draft_form(id).await {
                    Ok(f) => {
                        draft_id.set(Some(d.id));
                        draft_name.set(d.name.clone());
                        set_form(draft::from_draft_intents(&f));
                        list_msg.set(Some(Ok(format!("Loaded “{}”.", d.name))));
                    }
                    Err(e) => list_msg.set(Some(Err(format!("“{}”: {e}", d.name)))),
                },
                Err(e) => list_msg.set(Some(Err(e))),
            }
        });
    });

    let save_with = move |as_new: bool| {
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
        let id = if as_new {
            None
        } else {
            draft_id.get_untracked()
        };
        let show = show_draft;
        leptos::task::spawn_local(async move {
            let r = match id {
                Some(id) => api::update_draft(id, body).await,
                None => api::save_draft(body).await,
            };
            match r {
                Ok(d) => {
                    save_msg.set(Some(Ok(format!(
                        "Saved “{}”. Its link: {}/drafts?id={}",
                        d.name,
                        origin(),
                        d.id
                    ))));
                    draft_id.set(Some(d.id));
                    draft_name.set(d.name.clone());
                    saved.update(|n| *n += 1);
                    show(d.id);
                }
                Err(e) => save_msg.set(Some(Err(e))),
            }
        });
    };
    let add_target = move |_| {
        let id = next_id.get_value();
        next_id.set_value(id + 1);
        targets.update(|ts| ts.push((id, empty_target())));
    };
    let client_name = Signal::derive(move || {
        draft::parse_workload_id(&client.get())
            .map(|id| id.name)
            .unwrap_or_else(|| "intents".into())
    });
    let new_form = {
        move |_| {
            draft_id.set(None);
            draft_name.set(String::new());
            base.set(None);
            base_note.set(None);
            keep_rows.set_value(None);
            intents_name.set(String::new());
            targets.set(vec![(next_id.get_value(), empty_target())]);
            next_id.update_value(|n| *n += 1);
            client.set(String::new());
            if let Some(s) = storage() {
                let _ = s.remove_item(STORAGE_KEY);
            }
            navigate.with_value(|nav| nav("/drafts", Default::default()));
        }
    };

    // The saved drafts' buttons, handled in one place (`data-action`, `data-id`).
    let act = move |ev: web_sys::MouseEvent| {
        use wasm_bindgen::JsCast;
        let Some(el) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        else {
            return;
        };
        let (Some(action), Some(id)) = (
            el.get_attribute("data-action"),
            el.get_attribute("data-id")
                .and_then(|v| v.parse::<i64>().ok()),
        ) else {
            return;
        };
        let t = token.get_untracked();
        leptos::task::spawn_local(async move {
            let r: Result<String, String> = match action.as_str() {
                "duplicate" => match api::draft(id).await {
                    Ok(d) => api::save_draft(NewDraft {
                        name: format!("copy of {}", d.name),
                        yaml: d.yaml,
                    })
                    .await
                    .map(|d| {
                        show_draft(d.id);
                        format!("Duplicated as “{}”.", d.name)
                    }),
                    Err(e) => Err(e),
                },
                "delete" => api::delete_draft(id).await.map(|()| {
                    if draft_id.get_untracked() == Some(id) {
                        draft_id.set(None);
                    }
                    "Deleted.".to_string()
                }),
                _ => api::apply_draft(id, &t).await.map(|r| {
                    format!(
                        "Applied ClientIntents {} to the cluster.",
                        r.applied.join(", ")
                    )
                }),
            };
            saved.update(|n| *n += 1);
            list_msg.set(Some(r));
        });
    };
    let draft_item = move |d: Draft| {
        let id = d.id;
        view! {
            <li data-testid="draft-item" data-id=id.to_string() class:current-draft=move || draft_id.get() == Some(id)>
                <strong>{d.name.clone()}</strong>
                <span class="muted">{d.updated.clone().max(d.created.clone()).replace('T', " ")}</span>
                <span class="draft-actions">
                    <a class="btn small" data-testid="draft-load" href=format!("/drafts?id={id}")>"Load"</a>
                    <button class="btn small ghost" data-testid="draft-duplicate" data-action="duplicate" data-id=id>"Duplicate"</button>
                    <a class="btn small ghost" data-testid="draft-export" href=format!("/api/drafts/{id}/export") download="">"Export"</a>
                    <Show when=move || apply_enabled.get()>
                        <button class="btn small primary" data-testid="draft-apply" data-action="apply" data-id=id>"Apply"</button>
                    </Show>
                    <button class="btn small ghost danger" data-testid="draft-delete" data-action="delete" data-id=id>"Delete"</button>
                </span>
            </li>
        }
    };

    view! {
        <section class="page draft-page" data-testid="draft-page">
            <div class="page-head">
                <h1>"Draft intents"</h1>
                <p class="muted">"Start from what a workload declares, add or remove a call, and see what would change in the cluster as it runs — before anything is applied."</p>
            </div>
            <datalist id="draft-namespaces">{move || namespaces.get().into_iter().map(|n| view! { <option value=n></option> }).collect_view()}</datalist>
            <div class="draft-grid">
                <div class="card form" on:focusout=move |_| touched.set(true)>
                    <div class="form-head">
                        <h2>{move || match (draft_id.get(), draft_name.get()) {
                            (Some(id), n) if !n.is_empty() => format!("Draft #{id}: {n}"),
                            _ => "New draft".to_string(),
                        }}</h2>
                        <button class="btn small ghost" data-testid="new-draft" on:click=new_form>"New draft"</button>
                    </div>
                    <h2>"Client"</h2>
                    <label class="field">
                        <span>"Workload"</span>
                        <WorkloadInput value=client options=ids on_pick=Callback::new(move |_| ()) placeholder="e.g. storefront/cart" testid="draft-client"
                            invalid=Signal::derive(move || msgs.get().iter().any(|e| e.field == "client" && e.severity == "error"))/>
                        {msg_view_dyn(move || msgs.with(|m| m.iter().find(|e| e.field == "client").cloned()))}
                    </label>
                    {move || base_note.get().map(|n| view! { <p class="base-note" data-testid="base-note">{n}</p> })}
                    <h2>"Targets"</h2>
                    <For
                        each=move || targets.get()
                        key=|(id, _)| *id
                        children=move |(id, _)| {
                            let index = Signal::derive(move || targets.get().iter().position(|(i, _)| *i == id).unwrap_or(0));
                            view! { <TargetRow id=id targets=targets index=index msgs=msgs options=options client_ns=client_ns current=is_current(id)/> }
                        }
                    />
                    {move || {
                        let gone = removed.get();
                        (!gone.is_empty()).then(|| view! {
                            <p class="removed-note" data-testid="removed-targets">"Removed from the current intents: "
                                {gone.iter().map(|t| if t.namespace.is_empty() { t.name.clone() } else { format!("{}.{}", t.name, t.namespace) }).collect::<Vec<_>>().join(", ")}
                            </p>
                        })
                    }}
                    {msg_view_dyn(move || msgs.with(|m| m.iter().find(|e| e.field == "targets").cloned()))}
                    <div class="row-actions">
                        <button class="btn ghost" data-testid="add-target" on:click=add_target>"+ Add target"</button>
                        <Show when=move || base.with(|b| b.as_ref().is_some_and(|(_, t)| !t.is_empty()))>
                            <button class="btn ghost small" data-testid="replace-all" title="The draft then replaces every current target" on:click=replace_all>"Replace everything…"</button>
                        </Show>
                    </div>
                    <div class="save-row">
                        <input class="input" placeholder="Draft name" data-testid="draft-name" prop:value=move || draft_name.get() on:input=move |ev| draft_name.set(event_target_value(&ev))/>
                        <button class="btn primary" data-testid="save-draft" on:click=move |_| save_with(false)>
                            {move || if draft_id.get().is_some() { "Save changes" } else { "Save draft" }}
                        </button>
                        <Show when=move || draft_id.get().is_some()>
                            <button class="btn ghost" data-testid="save-as-new" on:click=move |_| save_with(true)>"Save as new"</button>
                        </Show>
                    </div>
                    {move || save_msg.get().map(|m| match m {
                        Ok(t) => view! { <p class="ok-msg" role="status" data-testid="save-msg">{t}</p> }.into_any(),
                        Err(e) => view! { <p class="field-error" role="alert">{e}</p> }.into_any(),
                    })}
                </div>
                <div class="card">
                    <h2>"What would change"</h2>
                    <p class="muted small">"Before: the access the cluster's policies give now (every policy, not only Accord's). After: once the operator applied this draft."</p>
                    {move || view! { <WhatIfView result=result.get() form=form.get_untracked()/> }}
                    <h2>"ClientIntents"</h2>
                    <CodeBlock code=Signal::derive(move || yaml.get()) download=format!("{}-intents.yaml", client_name.get_untracked()) testid="draft-yaml"/>
                </div>
            </div>
            <div class="card drafts">
                <h2>"Saved drafts"</h2>
                <Show when=move || apply_enabled.get()>
                    <label class="field apply-token">
                        <span>"Apply token"</span>
                        <input class="input" type="password" data-testid="apply-token" prop:value=move || token.get() on:input=move |ev| token.set(event_target_value(&ev))/>
                    </label>
                </Show>
                {move || list_msg.get().map(|m| match m {
                    Ok(t) => view! { <p class="ok-msg" role="status" data-testid="list-msg">{t}</p> }.into_any(),
                    Err(e) => view! { <p class="field-error" role="alert" data-testid="list-msg">{e}</p> }.into_any(),
                })}
                {move || match drafts.get() {
                    None => view! { <Loading/> }.into_any(),
                    Some(Err(e)) => view! { <ErrorBox message=e/> }.into_any(),
                    Some(Ok(l)) if l.drafts.is_empty() => view! { <p class="muted">"No drafts yet."</p> }.into_any(),
                    Some(Ok(l)) => view! {
                        <ul class="draft-list" data-testid="draft-list" on:click=act>
                            {l.drafts.into_iter().map(draft_item).collect_view()}
                        </ul>
                    }.into_any(),
                }}
            </div>
        </section>
    }
}

/// `scheme://host` of the page, for links to share.
fn origin() -> String {
    web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default()
}
