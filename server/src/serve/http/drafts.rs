//! Drafts: what-if previews of draft intents, saved drafts, and applying one to the cluster.

use accord_api as api;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::super::{SharedState, now_rfc3339, what_if};
use super::security::{bearer_matches, content_type};
use super::{Error, Result, yaml_download};

/// Content types a what-if accepts besides `application/json`. None of them is one a form can
/// send, so a cross-site page cannot post them without a CORS preflight, which is refused.
const YAML_TYPES: [&str; 4] = [
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "text/x-yaml",
];

/// Refuse a body that is not JSON (or, where `yaml` allows it, YAML).
fn require_content_type(headers: &HeaderMap, yaml: bool) -> Result<()> {
    match content_type(headers) {
        Some(t) if t == "application/json" => Ok(()),
        Some(t) if yaml && YAML_TYPES.contains(&t.as_str()) => Ok(()),
        other => Err(Error::UnsupportedMediaType(format!(
            "expected Content-Type application/json{}, not {}",
            if yaml { " or application/yaml" } else { "" },
            other.map_or("none".to_string(), |t| format!("{t:?}"))
        ))),
    }
}

/// A draft body: `{"yaml": "..."}` as JSON, or the YAML/JSON text itself.
fn draft_text(headers: &HeaderMap, body: &Bytes) -> Result<String> {
    require_content_type(headers, true)?;
    let text =
        std::str::from_utf8(body).map_err(|_| Error::BadRequest("the body is not UTF-8".into()))?;
    let is_json = content_type(headers).is_some_and(|t| t == "application/json");
    if is_json && let Ok(req) = serde_json::from_str::<api::WhatIfRequest>(text) {
        return Ok(req.yaml);
    }
    Ok(text.to_string())
}

pub(super) async fn post_what_if(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<api::WhatIfResponse>> {
    let text = draft_text(&headers, &body)?;
    // What-ifs are the heaviest requests (a whole evaluation each): a bounded number at once,
    // the rest told to come back. The permit lives as long as the evaluation.
    let permit =
        state
            .what_ifs
            .clone()
            .try_acquire_owned()
            .map_err(|_| Error::TooManyRequests {
                message: "too many what-ifs are being evaluated; try again shortly".into(),
                retry_after: 2,
            })?;
    let view = state.view();
    if view.inventory.is_none() {
        return Err(Error::Unavailable(
            "the first sync has not finished yet; try again shortly".into(),
        ));
    }
    let budget = state.what_if_memory.clone();
    let memory = budget.clone();
    let r = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        what_if::what_if_within(&view, &text, &budget)
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
    .map_err(|over| Error::TooManyRequests {
        message: format!(
            "the what-ifs being evaluated hold {} of {} MiB of working memory, too much for this one (about {} MiB more); try again shortly",
            memory.used() >> 20,
            memory.limit() >> 20,
            over.needed.div_ceil(1 << 20)
        ),
        retry_after: 2,
    })?;
    if !r.ok {
        return Err(Error::Unprocessable(r.diagnostics));
    }
    Ok(Json(r))
}

fn parse_new_draft(headers: &HeaderMap, body: &Bytes) -> Result<api::NewDraft> {
    require_content_type(headers, false)?;
    let d: api::NewDraft = serde_json::from_slice(body)
        .map_err(|e| Error::BadRequest(format!("expected {{\"name\", \"yaml\"}}: {e}")))?;
    if d.name.trim().is_empty() {
        return Err(Error::Unprocessable(vec![api::Diagnostic::error(
            api::DiagnosticCode::MissingField,
            &api::Origin::default(),
            "",
            "name",
            "a draft needs a name",
        )]));
    }
    Ok(d)
}

pub(super) async fn list_drafts(State(state): State<SharedState>) -> Result<Json<api::DraftList>> {
    Ok(Json(api::DraftList {
        drafts: state.store.drafts().await?,
    }))
}

pub(super) async fn create_draft(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<api::Draft>)> {
    let d = parse_new_draft(&headers, &body)?;
    Ok((
        StatusCode::CREATED,
        Json(state.store.create_draft(&d, &now_rfc3339()).await?),
    ))
}

pub(super) async fn get_draft(
    State(state): State<SharedState>,
    Path(id): Path<i64>,
) -> Result<Json<api::Draft>> {
    state
        .store
        .draft(id)
        .await?
        .map(Json)
        .ok_or_else(|| Error::NotFound(format!("no draft {id}")))
}

pub(super) async fn update_draft(
    State(state): State<SharedState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<api::Draft>> {
    let d = parse_new_draft(&headers, &body)?;
    state
        .store
        .update_draft(id, &d, &now_rfc3339())
        .await?
        .map(Json)
        .ok_or_else(|| Error::NotFound(format!("no draft {id}")))
}

pub(super) async fn delete_draft(
    State(state): State<SharedState>,
    Path(id): Path<i64>,
) -> Result<StatusCode> {
    if state.store.delete_draft(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::NotFound(format!("no draft {id}")))
    }
}

pub(super) async fn export_draft(
    State(state): State<SharedState>,
    Path(id): Path<i64>,
) -> Result<Response> {
    let d = state
        .store
        .draft(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no draft {id}")))?;
    let safe: String = d
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok(yaml_download(d.yaml, &format!("{safe}.yaml")))
}

pub(super) async fn apply_draft(
    State(state): State<SharedState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Json<api::ApplyResult>> {
    let Some(apply) = &state.apply else {
        return Err(Error::Forbidden(
            "applying drafts is disabled; start accord serve with --cluster --allow-apply and --apply-token-file (or ACCORD_APPLY_TOKEN)".into(),
        ));
    };
    if !bearer_matches(&headers, &apply.token) {
        return Err(Error::Unauthorized(
            "a valid bearer token is required".into(),
        ));
    }
    let Some(client) = &state.kube else {
        return Err(Error::Forbidden(
            "applying drafts needs a cluster source (--cluster)".into(),
        ));
    };
    let d = state
        .store
        .draft(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no draft {id}")))?;
    let (objects, diags) = what_if::parse_draft(&d.yaml);
    if diags.iter().any(|d| d.is_error()) {
        return Err(Error::Unprocessable(diags));
    }
    let mut applied = Vec::new();
    for (_, doc) in objects {
        // Applied at the version the draft is written in (the API server converts).
        let version = doc
            .get("apiVersion")
            .and_then(|v| v.as_str())
            .and_then(|v| v.strip_prefix("k8s.otterize.com/"))
            .unwrap_or(crate::k8s::STORAGE_VERSION)
            .to_string();
        let ar = crate::k8s::client_intents_resource_at(&version);
        let ns = doc
            .pointer("/metadata/namespace")
            .and_then(|v| v.as_str())
            .unwrap_or("default")
            .to_string();
        let name = doc
            .pointer("/metadata/name")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let api: kube::Api<kube::api::DynamicObject> =
            kube::Api::namespaced_with(client.clone(), &ns, &ar);
        api.patch(
            &name,
            &kube::api::PatchParams::apply("accord-dashboard").force(),
            &kube::api::Patch::Apply(&doc),
        )
        .await
        .map_err(|e| Error::Internal(format!("applying ClientIntents {ns}/{name}: {e}")))?;
        tracing::info!(%ns, %name, draft = id, "applied draft");
        applied.push(format!("{ns}/{name}"));
    }
    Ok(Json(api::ApplyResult { applied }))
}

/// `GET /api/drafts/{id}/form`: a saved draft as the draft form holds it (422 when the form
/// cannot hold it: several ClientIntents, or a target other than a workload or a Service).
pub(super) async fn draft_form(
    State(state): State<SharedState>,
    Path(id): Path<i64>,
) -> Result<Json<api::DraftIntents>> {
    let d = state
        .store
        .draft(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no draft {id}")))?;
    form_of_yaml(&d.yaml)
        .map(Json)
        .map_err(Error::Unprocessable)
}

/// The one ClientIntents of `yaml` as the form holds it, or why not.
pub(super) fn form_of_yaml(yaml: &str) -> Result<api::DraftIntents, Vec<api::Diagnostic>> {
    let (objects, mut diags) = what_if::parse_draft(yaml);
    let mut parsed: Vec<accord_policy::ClientIntents> = objects
        .iter()
        .filter_map(|(origin, doc)| accord_policy::intents::parse(origin, doc, &mut diags))
        .collect();
    if diags.iter().any(|d| d.is_error()) {
        return Err(diags);
    }
    let cannot = |message: String| {
        vec![api::Diagnostic::error(
            api::DiagnosticCode::InvalidDraft,
            &api::Origin::new(what_if::DRAFT_FILE, 0),
            "ClientIntents",
            "",
            message,
        )]
    };
    if parsed.len() != 1 {
        return Err(cannot(format!(
            "the form holds one ClientIntents; this draft has {}: edit its YAML instead",
            parsed.len()
        )));
    }
    let i = parsed.remove(0);
    super::drift::form_fields(&i).ok_or_else(|| {
        cannot("the form holds workload, Service and internet targets with single ports; this draft has others: edit its YAML instead".into())
    })
}

#[derive(serde::Deserialize)]
pub(super) struct ClientQuery {
    client: String,
}

/// `GET /api/intents?client=ns/name[Kind]`: the client's current ClientIntents from the synced
/// model, as the draft form starts from them (the draft adds to or removes from them).
pub(super) async fn current_intents(
    State(state): State<SharedState>,
    Query(q): Query<ClientQuery>,
) -> Result<Json<api::CurrentIntents>> {
    let view = state.view();
    let Some(live) = view.inventory.as_deref() else {
        return Err(Error::Unavailable(
            "the first sync has not finished yet; try again shortly".into(),
        ));
    };
    Ok(Json(current_of(live, &q.client).ok_or_else(|| {
        Error::BadRequest(format!(
            "{:?} is not a workload id (namespace/name[Kind])",
            q.client
        ))
    })?))
}

/// The current intents of `client` in `live`; `None` when `client` is not a workload id.
pub(super) fn current_of(
    live: &accord_policy::Inventory,
    client: &str,
) -> Option<api::CurrentIntents> {
    let id = accord_policy::WorkloadId::parse(client, "")?;
    let mut mine: Vec<&accord_policy::ClientIntents> = live
        .intents
        .iter()
        .filter(|i| {
            i.namespace == id.namespace
                && i.workload.name == id.name
                && (i.workload.kind.is_none() || id.kind.is_none() || i.workload.kind == id.kind)
        })
        .collect();
    mine.sort_by(|a, b| a.name.cmp(&b.name));
    let Some(first) = mine.first() else {
        return Some(api::CurrentIntents {
            client: id.to_string(),
            ..Default::default()
        });
    };
    Some(api::CurrentIntents {
        client: id.to_string(),
        name: first.name.clone(),
        form: super::drift::form_fields(first).map(|mut f| {
            f.client = id.to_string();
            f
        }),
        yaml: accord_policy::render::intents_yaml(&[(*first).clone()]),
        others: mine[1..].iter().map(|i| i.name.clone()).collect(),
    })
}

/// `GET /api/targets`: every workload (with its containers' ports) and every Service (with its
/// ports), for the draft form's suggestions.
pub(super) async fn targets(State(state): State<SharedState>) -> Result<Json<api::TargetOptions>> {
    let view = state.view();
    let Some(live) = view.inventory.as_deref() else {
        return Err(Error::Unavailable(
            "the first sync has not finished yet; try again shortly".into(),
        ));
    };
    Ok(Json(target_options(live)))
}

pub(super) fn target_options(live: &accord_policy::Inventory) -> api::TargetOptions {
    use std::collections::{BTreeMap, BTreeSet};
    let mut workloads: BTreeMap<(String, String), BTreeSet<(i32, &str)>> = BTreeMap::new();
    for p in &live.pods {
        let ports = workloads
            .entry((p.workload.namespace.clone(), p.workload.name.clone()))
            .or_default();
        for c in &p.ports {
            if c.container_port > 0 {
                ports.insert((c.container_port, c.protocol.as_str()));
            }
        }
    }
    let text = |ports: BTreeSet<(i32, &str)>| -> Vec<String> {
        ports
            .into_iter()
            .map(|(p, proto)| format!("{p}/{proto}"))
            .collect()
    };
    let mut targets: Vec<api::TargetOption> = workloads
        .into_iter()
        .map(|((namespace, name), ports)| api::TargetOption {
            service: false,
            namespace,
            name,
            ports: text(ports),
        })
        .collect();
    for s in &live.services {
        let ports: BTreeSet<(i32, &str)> = s
            .ports
            .iter()
            .filter(|p| p.port > 0)
            .map(|p| (p.port, p.protocol.as_str()))
            .collect();
        targets.push(api::TargetOption {
            service: true,
            namespace: s.namespace().to_string(),
            name: s.metadata.name.clone(),
            ports: text(ports),
        });
    }
    api::TargetOptions { targets }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> accord_policy::Inventory {
        let mut idx = crate::cluster::Index::default();
        idx.reset_all(super::super::super::demo::objects());
        let view = super::super::super::sync::compute(
            std::sync::Arc::new(idx),
            &Default::default(),
            &Default::default(),
            &Default::default(),
            "test",
        )
        .view;
        view.inventory.as_deref().cloned().expect("an inventory")
    }

    #[test]
    fn current_intents_are_the_form_s_starting_point() {
        let live = demo();
        let c = current_of(&live, "storefront/web[Deployment]").expect("a workload id");
        assert_eq!(c.name, "web");
        let form = c.form.expect("web's intents fit the form");
        let targets: Vec<(bool, &str, &str)> = form
            .targets
            .iter()
            .map(|t| (t.service, t.name.as_str(), t.namespace.as_str()))
            .collect();
        assert_eq!(targets.len(), 6, "{targets:?}");
        assert!(
            targets.contains(&(false, "auth", "platform")),
            "{targets:?}"
        );
        assert!(
            targets.contains(&(true, "checkout", "checkout")),
            "{targets:?}"
        );
        assert!(c.yaml.contains("name: web"), "{}", c.yaml);
        // A workload without intents starts empty; a bare name is not an id.
        let none = current_of(&live, "platform/ledger-db[StatefulSet]").expect("an id");
        assert!(none.name.is_empty() && none.form.is_none());
        assert!(current_of(&live, "web").is_none());
    }

    #[test]
    fn a_saved_draft_opens_in_the_form_when_the_form_can_hold_it() {
        let f = form_of_yaml("apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata: {name: web-intents, namespace: storefront}\nspec:\n  workload: {name: web, kind: Deployment}\n  targets:\n    - kubernetes: {name: auth.platform, ports: [{port: 8080}]}\n    - service: {name: checkout.checkout}\n")
            .expect("the form holds it");
        assert_eq!(f.client, "storefront/web[Deployment]");
        assert_eq!(f.name, "web-intents");
        let t: Vec<(bool, &str, &str, &str)> = f
            .targets
            .iter()
            .map(|t| {
                (
                    t.service,
                    t.name.as_str(),
                    t.namespace.as_str(),
                    t.ports.as_str(),
                )
            })
            .collect();
        assert_eq!(
            t,
            vec![
                (false, "auth", "platform", "8080/TCP"),
                (true, "checkout", "checkout", "")
            ]
        );
        let two = "apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata: {name: a, namespace: x}\nspec: {workload: {name: a}}\n---\napiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata: {name: b, namespace: x}\nspec: {workload: {name: b}}\n";
        let err = form_of_yaml(two).expect_err("two objects");
        assert!(err[0].message.contains("has 2"), "{err:?}");
        // Internet targets are rows of their own: domains and addresses in the name.
        let internet = "apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata: {name: a, namespace: x}\nspec:\n  workload: {name: a}\n  targets:\n    - internet: {ips: [1.2.3.4], domains: [api.example.com], ports: [443]}\n";
        let f = form_of_yaml(internet).expect("an internet row");
        assert_eq!(f.targets.len(), 1);
        assert!(f.targets[0].internet && !f.targets[0].service);
        assert_eq!(
            (f.targets[0].name.as_str(), f.targets[0].ports.as_str()),
            ("api.example.com, 1.2.3.4", "443")
        );
        // What the form cannot hold (a port range) is refused with the reason.
        let range = "apiVersion: k8s.otterize.com/v2beta1\nkind: ClientIntents\nmetadata: {name: a, namespace: x}\nspec:\n  workload: {name: a}\n  targets:\n    - kubernetes: {name: b, ports: [{port: 8000, endPort: 8010}]}\n";
        let err = form_of_yaml(range).expect_err("a port range");
        assert!(err[0].message.contains("edit its YAML"), "{err:?}");
    }

    #[test]
    fn target_options_carry_service_and_container_ports() {
        let opts = target_options(&demo()).targets;
        let payments = |service: bool| {
            opts.iter()
                .find(|o| o.service == service && o.namespace == "checkout" && o.name == "payments")
                .unwrap_or_else(|| panic!("{opts:?}"))
        };
        assert_eq!(payments(true).ports, vec!["8443/TCP"]);
        assert!(!payments(false).ports.is_empty());
    }
}
