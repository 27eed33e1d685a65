//! The workload panel: callers and callees, declared vs effective access, the policies and
//! intents involved, and why each edge is in its state.

use accord_api::{ExplainedEdge, ObjectRef, WorkloadDetail};
use leptos::prelude::*;

use super::legend::describe;
use super::loading::{ErrorBox, Loading};
use crate::api;
use crate::app::use_state;
use crate::scene::{colour, short_name};

fn obj(o: &ObjectRef) -> String {
    let mut s = format!("{} {}/{}", o.kind, o.namespace, o.name);
    if !o.field.is_empty() {
        s += &format!(" · {}", o.field);
    }
    s
}

/// A ClientIntents or policy name that shows its YAML below it when clicked.
#[component]
fn ObjLink(kind: &'static str, namespace: String, name: String, label: String) -> impl IntoView {
    let yaml = RwSignal::new(None::<api::Result<String>>);
    let open = RwSignal::new(false);
    let click = move |_| {
        open.update(|o| *o = !*o);
        if yaml.with_untracked(Option::is_none) {
            let (ns, n) = (namespace.clone(), name.clone());
            leptos::task::spawn_local(async move {
                yaml.set(Some(api::object_yaml(kind, &ns, &n).await));
            });
        }
    };
    view! {
        <button class="linkish" data-testid="obj-link" aria-expanded=move || open.get().to_string() on:click=click><code>{label}</code></button>
        {move || open.get().then(|| match yaml.get() {
            None => view! { <p class="muted">"Loading…"</p> }.into_any(),
            Some(Err(e)) => view! { <p class="field-error">{e}</p> }.into_any(),
            Some(Ok(y)) => view! { <super::code_block::CodeBlock code=Signal::derive(move || y.clone()) testid="obj-yaml"/> }.into_any(),
        })}
    }
}

type Named = (&'static str, String, String, String);

fn named(o: &ObjectRef) -> Named {
    let kind = match o.kind.as_str() {
        "ClientIntents" => "ClientIntents",
        "NetworkPolicy" => "NetworkPolicy",
        _ => "",
    };
    (kind, o.namespace.clone(), o.name.clone(), obj(o))
}

/// A name opening its YAML, or plain text when it has no kind the server shows.
fn link((kind, namespace, name, label): Named) -> AnyView {
    if kind.is_empty() {
        view! { <code>{label}</code> }.into_any()
    } else {
        view! { <ObjLink kind=kind namespace=namespace name=name label=label/> }.into_any()
    }
}

/// An edge's ports (`TCP 8080,8443; UDP 53`) as the draft form writes them (`8080/TCP,
/// 8443/TCP, 53/UDP`); empty for `All Connections` or none.
fn form_ports(ports: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for part in ports.split(';') {
        let Some((proto, list)) = part.trim().split_once(' ') else {
            continue;
        };
        if !matches!(proto, "TCP" | "UDP" | "SCTP") {
            continue;
        }
        out.extend(
            list.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| format!("{p}/{proto}")),
        );
    }
    out.join(", ")
}

/// The sentence `text` cut into plain text and the `names` it mentions (`(kind, ns/name)`),
/// so that each name can open its YAML.
fn name_parts<'a>(
    text: &'a str,
    names: &'a [(&'static str, String)],
) -> Vec<(&'static str, &'a str)> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        let next = names
            .iter()
            .filter(|(_, n)| !n.is_empty())
            // Not a workload id's `ns/name[Kind]`, which only looks like an intents name.
            .filter_map(|(k, n)| {
                rest.match_indices(n.as_str())
                    .find(|(i, _)| !rest[i + n.len()..].starts_with('['))
                    .map(|(i, _)| (i, n.len(), *k))
            })
            .min_by_key(|&(i, len, _)| (i, std::cmp::Reverse(len)));
        let Some((i, len, kind)) = next else {
            out.push(("", rest));
            return out;
        };
        out.push(("", &rest[..i]));
        out.push((kind, &rest[i..i + len]));
        rest = &rest[i + len..];
    }
}

/// A call's client with the call (its target and ports) added to its current intents, for the
/// draft form; `None` when the client has intents the form cannot show.
async fn draft_with(source: &str, target: &str, ports: &str) -> Option<crate::draft::Form> {
    let current = api::current_intents(source).await.ok()?;
    let mut form = match current.form {
        Some(d) => crate::draft::from_draft_intents(&d),
        None if current.yaml.is_empty() => crate::draft::Form::default(),
        None => return None,
    };
    form.client = current.client;
    let (ns, rest) = target.split_once('/')?;
    let name = rest.split('[').next().unwrap_or(rest);
    let client_ns = source.split_once('/').map(|(n, _)| n).unwrap_or_default();
    form.targets.push(crate::draft::Target {
        kind: crate::draft::TargetKind::Workload,
        name: name.to_string(),
        namespace: if ns == client_ns {
            String::new()
        } else {
            ns.to_string()
        },
        ports: form_ports(ports),
    });
    Some(form)
}

#[component]
fn EdgeRow(
    e: ExplainedEdge,
    outgoing: bool,
    #[prop(into)] highlighted: Signal<Option<String>>,
) -> impl IntoView {
    let other = if outgoing {
        e.edge.target.clone()
    } else {
        e.edge.source.clone()
    };
    let key = format!("{}->{}", e.edge.source, e.edge.target);
    let key2 = key.clone();
    let x = e.explanation;
    let declared = if e.edge.declared {
        if e.edge.declared_ports.is_empty() {
            "yes".to_string()
        } else {
            e.edge.declared_ports.clone()
        }
    } else {
        "no".to_string()
    };
    let effective = if e.edge.allowed {
        if e.edge.ports.is_empty() {
            "allowed".to_string()
        } else {
            e.edge.ports.clone()
        }
    } else {
        "denied".to_string()
    };
    let open = Memo::new(move |_| highlighted.get().as_deref() == Some(key.as_str()));
    // (kind, namespace, name, label): a name opening its YAML; no kind: plain text.
    let np = |p: &str, rest: String| {
        let (ns, name) = p.split_once('/').unwrap_or(("", p));
        (
            "NetworkPolicy",
            ns.to_string(),
            name.to_string(),
            format!("{p}{rest}"),
        )
    };
    let details = [
        (
            "Declared by",
            x.declared_by.iter().map(named).collect::<Vec<_>>(),
        ),
        (
            "Server isolated by",
            x.ingress_isolated_by
                .iter()
                .map(|p| np(p, String::new()))
                .collect(),
        ),
        (
            "Admitted by (ingress)",
            x.ingress_admitted_by
                .iter()
                .map(|r| np(&r.policy, format!(" · ingress[{}] {}", r.index, r.ports)))
                .collect(),
        ),
        (
            "Client isolated by",
            x.egress_isolated_by
                .iter()
                .map(|p| np(p, String::new()))
                .collect(),
        ),
        (
            "Admitted by (egress)",
            x.egress_admitted_by
                .iter()
                .map(|r| np(&r.policy, format!(" · egress[{}] {}", r.index, r.ports)))
                .collect(),
        ),
        (
            "Admin policies",
            x.admin
                .iter()
                .map(|a| ("", String::new(), String::new(), a.clone()))
                .collect(),
        ),
    ];
    // The why sentence, its intents and policy names opening their YAML.
    let mentioned: Vec<(&'static str, String)> = x
        .declared_by
        .iter()
        .filter(|o| o.kind == "ClientIntents")
        .map(|o| ("ClientIntents", format!("{}/{}", o.namespace, o.name)))
        .chain(
            x.ingress_isolated_by
                .iter()
                .chain(x.ingress_admitted_by.iter().map(|r| &r.policy))
                .map(|p| ("NetworkPolicy", p.clone())),
        )
        .collect();
    let text = if x.in_words.is_empty() {
        x.summary.clone()
    } else {
        x.in_words.clone()
    };
    let why = name_parts(&text, &mentioned)
        .into_iter()
        .map(|(kind, part)| {
            let (ns, name) = part.split_once('/').unwrap_or(("", part));
            if kind.is_empty() {
                part.to_string().into_any()
            } else {
                link((kind, ns.to_string(), name.to_string(), part.to_string()))
            }
        })
        .collect_view();
    let state = use_state();
    let navigate = crate::nav::use_navigate();
    let (source, target, ports) = (
        e.edge.source.clone(),
        e.edge.target.clone(),
        e.edge.ports.clone(),
    );
    let draft_msg = RwSignal::new(None::<&'static str>);
    let draft = (!e.edge.declared).then(|| {
        view! {
            <button class="btn small" data-testid="draft-call" on:click=move |_| {
                let (source, target, ports, navigate) = (source.clone(), target.clone(), ports.clone(), navigate.clone());
                leptos::task::spawn_local(async move {
                    match draft_with(&source, &target, &ports).await {
                        Some(f) => {
                            state.draft_seed.set(Some(f));
                            navigate("/drafts", Default::default());
                        }
                        None => draft_msg.set(Some("This client's intents hold targets the draft form cannot show; edit its YAML instead.")),
                    }
                });
            }>"Draft this call"</button>
            <span class="muted small">{move || draft_msg.get()}</span>
        }
    });
    view! {
        <li class="edge-row" class:hl=open data-testid=format!("panel-edge-{key2}") data-state=e.edge.state.as_str()>
            <details open=move || open.get()>
                <summary>
                    <span class="pill" style=format!("--c:{}", colour(e.edge.state)) title=describe(e.edge.state)>
                        {e.edge.state.as_str()}
                    </span>
                    <span class="arrow">{if outgoing { "→" } else { "←" }}</span>
                    <span class="edge-other" title=other.clone()>{short_name(&other).to_string()}</span>
                    <span class="muted">{other.split_once('/').map(|(n, _)| n.to_string()).unwrap_or_default()}</span>
                </summary>
                <dl class="kv">
                    <dt>"Declared"</dt><dd>{declared}</dd>
                    <dt>"Effective"</dt><dd>{effective}</dd>
                </dl>
                <p class="why" data-testid="why">{why}</p>
                {x.cause.clone().map(|k| view! {
                    <a class="btn small" data-testid="fix-link" href=format!("/drift?q={}", api::encode(&k))>"Open the cause and its fix"</a>
                })}
                {draft}
                <details class="policy-detail">
                    <summary class="muted">"Policy detail"</summary>
                    <p class="small">{x.summary.clone()}</p>
                    {details
                        .into_iter()
                        .filter(|(_, v)| !v.is_empty())
                        .map(|(k, v)| view! {
                            <div class="refs">
                                <span class="refs-title">{k}</span>
                                <ul>{v.into_iter().map(|n| view! { <li>{link(n)}</li> }).collect_view()}</ul>
                            </div>
                        })
                        .collect_view()}
                </details>
            </details>
        </li>
    }
}

#[component]
fn Detail(
    d: WorkloadDetail,
    #[prop(into)] edge: Signal<Option<String>>,
    on_focus: Callback<String>,
) -> impl IntoView {
    let n = d.node;
    let id = n.id.clone();
    let refs = |title: &'static str, list: Vec<ObjectRef>| {
        (!list.is_empty()).then(|| view! {
            <section class="panel-section">
                <h3>{title}</h3>
                <ul class="plain">{list.iter().map(|o| view! { <li>{link(named(o))}</li> }).collect_view()}</ul>
            </section>
        })
    };
    let edges = |title: &'static str,
                 list: Vec<ExplainedEdge>,
                 outgoing: bool,
                 testid: &'static str| {
        view! {
            <section class="panel-section" data-testid=testid>
                <h3>{title}<span class="count">{list.len()}</span></h3>
                {if list.is_empty() {
                    view! { <p class="muted">"None."</p> }.into_any()
                } else {
                    view! {
                        <ul class="edges-list">
                            {list.into_iter().map(|e| view! { <EdgeRow e=e outgoing=outgoing highlighted=edge/> }).collect_view()}
                        </ul>
                    }.into_any()
                }}
            </section>
        }
    };
    view! {
        <div class="panel-head">
            <div>
                <h2 data-testid="panel-title">{n.name.clone()}</h2>
                <p class="muted">{format!("{} · {}", n.namespace, if n.kind.is_empty() { "workload" } else { &n.kind })}</p>
            </div>
        </div>
        <div class="badges">
            {if n.ingress_isolated {
                view! { <span class="badge good">"Ingress isolated"</span> }.into_any()
            } else {
                view! { <span class="badge warn">"Not isolated"</span> }.into_any()
            }}
            {if n.has_intents {
                view! { <span class="badge">"Has intents"</span> }.into_any()
            } else {
                view! { <span class="badge muted">"No intents"</span> }.into_any()
            }}
            {(n.drift > 0).then(|| view! { <span class="badge bad">{format!("{} drift", n.drift)}</span> })}
        </div>
        <button class="btn small" data-testid="focus-btn" on:click=move |_| on_focus.run(id.clone())>"Focus neighbourhood"</button>
        {edges("Calls", d.callees, true, "callees")}
        {edges("Called by", d.callers, false, "callers")}
        <super::observed_section::ObservedSection id=n.id.clone()/>
        {refs("Intents of this workload", d.intents)}
        {refs("Intents declaring calls to it", d.declared_callers)}
        {refs("NetworkPolicies selecting it", d.policies)}
        {(!d.drift.is_empty()).then(|| view! {
            <section class="panel-section">
                <h3>"Drift"</h3>
                <ul class="plain">{d.drift.into_iter().map(|i| view! { <li>{i.explanation}</li> }).collect_view()}</ul>
            </section>
        })}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edge_s_ports_become_the_form_s() {
        assert_eq!(
            form_ports("TCP 8080,8443; UDP 53"),
            "8080/TCP, 8443/TCP, 53/UDP"
        );
        assert_eq!(form_ports("All Connections"), "");
        assert_eq!(form_ports(""), "");
    }

    #[test]
    fn names_in_a_sentence_are_cut_out_for_their_links() {
        let names = [
            ("ClientIntents", "storefront/cart".to_string()),
            ("NetworkPolicy", "platform/auth-ingress".to_string()),
        ];
        let parts = name_parts(
            "cart cannot call platform/auth, although its intents storefront/cart declare it: platform/auth only admits the clients its policies (platform/auth-ingress) select. Why: the pods of storefront/cart[Deployment] lack the label.",
            &names,
        );
        let linked: Vec<(&str, &str)> = parts.iter().filter(|p| !p.0.is_empty()).copied().collect();
        assert_eq!(
            linked,
            [
                ("ClientIntents", "storefront/cart"),
                ("NetworkPolicy", "platform/auth-ingress")
            ]
        );
        assert!(
            parts
                .iter()
                .map(|p| p.1)
                .collect::<String>()
                .starts_with("cart cannot call platform/auth, although")
        );
    }
}

#[component]
pub fn SidePanel(
    id: String,
    #[prop(into)] edge: Signal<Option<String>>,
    on_close: Callback<()>,
    on_focus: Callback<String>,
) -> impl IntoView {
    let state = use_state();
    let key = id.clone();
    let detail = LocalResource::new(move || {
        state.refresh.track();
        let id = key.clone();
        async move { api::workload(&id).await }
    });
    view! {
        <aside class="side-panel" data-testid="side-panel" aria-label=format!("Workload {id}")>
            <button class="btn icon close" aria-label="Close panel (Escape)" data-testid="panel-close" on:click=move |_| on_close.run(())>"×"</button>
            {move || match detail.get() {
                None => view! { <Loading label="Loading workload…"/> }.into_any(),
                Some(Err(e)) => view! { <ErrorBox message=e/> }.into_any(),
                Some(Ok(d)) => view! { <Detail d=d edge=edge on_focus=on_focus/> }.into_any(),
            }}
        </aside>
    }
}
