//! The drift report: a page of drift items (filtered, sorted), its summary, one item with its
//! fix checked by the what-if engine, and acknowledgements.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use accord_api as api;
use accord_policy::drift;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::super::sync::View;
use super::super::{SharedState, now_rfc3339};
use super::error::{Error, Result};
use super::graph::split_list;

/// Items on a page unless asked otherwise, and at most.
pub const DEFAULT_PER_PAGE: u32 = 25;
pub const MAX_PER_PAGE: u32 = 500;

/// Each item's owner (parallel to `view.drift`): the owner label of its workload's pods, else
/// that of its namespace, else the namespace.
fn owners<'v>(view: &'v View, owner_label: Option<&str>) -> &'v [String] {
    view.drift_owners
        .get_or_init(|| owners_of(view, owner_label, &view.drift))
}

/// The owners of `items` (parallel), as [`owners`] decides them.
pub(super) fn owners_of(
    view: &View,
    owner_label: Option<&str>,
    items: &[api::DriftItem],
) -> Vec<String> {
    let namespace_owner: BTreeMap<&str, &str> = match (owner_label, view.inventory.as_deref()) {
        (Some(label), Some(inv)) => inv
            .namespaces
            .values()
            .filter_map(|n| n.labels.get(label).map(|v| (n.name.as_str(), v.as_str())))
            .collect(),
        _ => BTreeMap::new(),
    };
    items
        .iter()
        .map(|d| {
            let from_workload = owner_label.and_then(|label| {
                let w = d.workload.as_deref().or(d.target.as_deref())?;
                let i = view.node(w)?;
                view.extras.get(i)?.labels.get(label).cloned()
            });
            from_workload
                .or_else(|| {
                    namespace_owner
                        .get(d.namespace.as_str())
                        .map(|s| s.to_string())
                })
                .unwrap_or_else(|| d.namespace.clone())
        })
        .collect()
}

/// The report's items and the observed ones (computed per sync pass and observed-data
/// generation, see ARCHITECTURE.md, "Observed drift"), with their owners and core items.
struct AllItems {
    view: Arc<View>,
    observed: Arc<super::observed::Assessed>,
}

impl AllItems {
    async fn get(state: &SharedState) -> Result<AllItems> {
        let observed = super::observed::assessed(state).await?;
        Ok(AllItems {
            view: state.view(),
            observed,
        })
    }

    fn len(&self) -> usize {
        self.view.drift.len() + self.observed.drift.len()
    }

    fn item(&self, i: usize) -> &api::DriftItem {
        let n = self.view.drift.len();
        if i < n {
            &self.view.drift[i]
        } else {
            &self.observed.drift[i - n]
        }
    }

    fn core(&self, i: usize) -> Option<&drift::DriftItem> {
        let n = self.view.drift.len();
        if i < n {
            (self.view.drift_core.len() == n).then(|| &self.view.drift_core[i])
        } else {
            self.observed.drift_core.get(i - n)
        }
    }

    fn owners(&self, owner_label: Option<&str>) -> Vec<&str> {
        owners(&self.view, owner_label)
            .iter()
            .chain(&self.observed.drift_owners)
            .map(String::as_str)
            .collect()
    }

    fn position(&self, key: &str) -> Option<usize> {
        (0..self.len()).find(|&i| self.item(i).key == key)
    }
}

/// The acknowledgement of an item, if it holds for the item as it is now.
fn ack_of(state: &SharedState, d: &api::DriftItem) -> Option<api::Acknowledgement> {
    let acks = state.acks.read().expect("acks lock");
    acks.get(&d.key)
        .filter(|(fp, _)| *fp == d.fingerprint)
        .map(|(_, a)| a.clone())
}

fn words(d: &api::DriftItem, owner: &str) -> String {
    let mut text = format!(
        "{} {} {} {} {}",
        d.key, d.explanation, d.namespace, owner, d.fix.description
    );
    for w in [&d.workload, &d.source, &d.target].into_iter().flatten() {
        text.push(' ');
        text.push_str(w);
    }
    if let Some(o) = &d.object {
        text.push(' ');
        text.push_str(&o.to_string());
    }
    for e in &d.edges {
        text.push(' ');
        text.push_str(&e.source);
        text.push(' ');
        text.push_str(&e.target);
    }
    text.to_lowercase()
}

pub(super) async fn list(
    State(state): State<SharedState>,
    Query(q): Query<api::DriftQuery>,
) -> Result<Json<api::DriftReport>> {
    let all = AllItems::get(&state).await?;
    let view = &all.view;
    let severities: Option<BTreeSet<api::DriftSeverity>> = split_list(&q.severity)
        .map(|s| {
            s.iter()
                .map(|x| {
                    api::DriftSeverity::parse(x).ok_or_else(|| {
                        Error::BadRequest(format!(
                            "{x:?} is not a severity (critical, high, medium, low, info)"
                        ))
                    })
                })
                .collect()
        })
        .transpose()?;
    let kinds: Option<BTreeSet<api::DriftKind>> = split_list(&q.kind)
        .map(|s| {
            s.iter()
                .map(|x| {
                    api::DriftKind::parse(x)
                        .ok_or_else(|| Error::BadRequest(format!("{x:?} is not a drift kind")))
                })
                .collect()
        })
        .transpose()?;
    let namespaces = split_list(&q.namespace);
    let owner_filter = split_list(&q.owner);
    let terms: Vec<String> =
        q.q.as_deref()
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
    let (sort_key, reverse) = match q.sort.as_deref().unwrap_or("severity") {
        s if s.starts_with('-') => (&s[1..], true),
        s => (s, false),
    };
    if !["severity", "edges", "namespace", "owner", "first_seen"].contains(&sort_key) {
        return Err(Error::BadRequest(format!(
            "{sort_key:?} is not a sort key (severity, edges, namespace, owner, first_seen)"
        )));
    }
    let per_page = q
        .per_page
        .unwrap_or(DEFAULT_PER_PAGE)
        .clamp(1, MAX_PER_PAGE);
    let page = q.page.unwrap_or(1).max(1);
    let with_acked = q.acknowledged.unwrap_or(false);

    let owners = all.owners(state.owner_label.as_deref());
    let acks: Vec<Option<api::Acknowledgement>> = (0..all.len())
        .map(|i| ack_of(&state, all.item(i)))
        .collect();

    // The summary: every unacknowledged item, whatever the filter.
    let mut summary = api::DriftSummary::default();
    let mut by_ns: BTreeMap<&str, api::DriftCount> = BTreeMap::new();
    let mut by_owner: BTreeMap<&str, api::DriftCount> = BTreeMap::new();
    for i in 0..all.len() {
        let d = all.item(i);
        if acks[i].is_some() {
            summary.acknowledged += 1;
            continue;
        }
        *summary.by_severity.entry(d.severity).or_default() += 1;
        for (state, n) in &d.edge_counts {
            *summary.edges.entry(*state).or_default() += n;
        }
        for (map, name) in [
            (&mut by_ns, d.namespace.as_str()),
            (&mut by_owner, owners[i]),
        ] {
            let c = map.entry(name).or_insert_with(|| api::DriftCount {
                name: name.to_string(),
                ..Default::default()
            });
            c.items += 1;
            c.worst = c.worst.max(Some(d.severity));
        }
        if d.severity >= api::DriftSeverity::High
            && let Some(t) = &d.first_seen
            && summary.worst_since.as_ref().is_none_or(|w| t < w)
        {
            summary.worst_since = Some(t.clone());
        }
    }
    let top = |m: BTreeMap<&str, api::DriftCount>| {
        let mut v: Vec<api::DriftCount> = m.into_values().collect();
        v.sort_by(|a, b| {
            b.worst
                .cmp(&a.worst)
                .then(b.items.cmp(&a.items))
                .then_with(|| a.name.cmp(&b.name))
        });
        v.truncate(10);
        v
    };
    summary.namespaces = top(by_ns);
    summary.owners = top(by_owner);

    // The page.
    let mut matching: Vec<usize> = (0..all.len())
        .filter(|&i| {
            let d = all.item(i);
            (with_acked || acks[i].is_none())
                && severities.as_ref().is_none_or(|s| s.contains(&d.severity))
                && kinds.as_ref().is_none_or(|k| k.contains(&d.kind))
                && namespaces.as_ref().is_none_or(|n| {
                    n.contains(&d.namespace)
                        || d.edges.iter().any(|e| {
                            [&e.source, &e.target]
                                .iter()
                                .any(|w| w.split('/').next().is_some_and(|ns| n.contains(ns)))
                        })
                })
                && owner_filter
                    .as_ref()
                    .is_none_or(|o| o.iter().any(|x| x == owners[i]))
                && (terms.is_empty() || {
                    let text = words(d, owners[i]);
                    terms.iter().all(|t| text.contains(t.as_str()))
                })
        })
        .collect();
    // The view's items and the observed ones are each worst first already (then by affected
    // edges, then key): the severity order merges them.
    match sort_key {
        "edges" => matching.sort_by(|&a, &b| {
            all.item(b)
                .edges
                .len()
                .cmp(&all.item(a).edges.len())
                .then(a.cmp(&b))
        }),
        "namespace" => matching.sort_by(|&a, &b| {
            all.item(a)
                .namespace
                .cmp(&all.item(b).namespace)
                .then(a.cmp(&b))
        }),
        "owner" => matching.sort_by(|&a, &b| owners[a].cmp(owners[b]).then(a.cmp(&b))),
        "first_seen" => matching.sort_by(|&a, &b| {
            all.item(a)
                .first_seen
                .cmp(&all.item(b).first_seen)
                .then(a.cmp(&b))
        }),
        _ => matching.sort_by(|&a, &b| {
            let (x, y) = (all.item(a), all.item(b));
            y.severity
                .cmp(&x.severity)
                .then(y.edges.len().cmp(&x.edges.len()))
                .then_with(|| x.key.cmp(&y.key))
        }),
    }
    if reverse {
        matching.reverse();
    }
    let total = matching.len() as u32;
    let items = matching
        .iter()
        .skip(((page - 1) * per_page) as usize)
        .take(per_page as usize)
        .map(|&i| {
            let mut d = all.item(i).clone();
            d.edges.truncate(api::DRIFT_EDGES_LISTED);
            // Lists carry what the fix is; the item's own endpoint carries it checked.
            d.fix.yaml.clear();
            d.fix.diff.clear();
            d.owner = owners[i].to_string();
            d.acknowledged = acks[i].clone();
            d
        })
        .collect();
    Ok(Json(api::DriftReport {
        summary,
        items,
        total,
        page,
        per_page,
        synced_at: view.synced_at.clone(),
        observed: all.observed.describe(&state),
    }))
}

#[derive(Debug, Deserialize)]
pub(super) struct KeyQuery {
    key: String,
}

fn verdict_of(check: &drift::FixCheck) -> api::FixVerdict {
    let text = |v: &[(String, String)]| v.iter().map(|(s, t)| format!("{s} → {t}")).collect();
    api::FixVerdict {
        safe: check.safe(),
        resolved: check.resolved,
        blocked: text(&check.blocked),
        newly_open: text(&check.newly_open),
        revoked: text(&check.revoked),
    }
}

/// ClientIntents as the draft form holds them, when it can hold them whole: named after the
/// client, every target a workload or a Service (the form writes nothing else, so anything
/// more would be dropped: a replacement, never offered).
pub(super) fn form_of(i: &accord_policy::ClientIntents) -> Option<api::DraftIntents> {
    if i.name != i.workload.name {
        return None;
    }
    form_fields(i)
}

/// ClientIntents as the draft form holds them (named anything), when every target is a
/// workload, a Service or internet addresses, with plain ports.
pub(super) fn form_fields(i: &accord_policy::ClientIntents) -> Option<api::DraftIntents> {
    use accord_policy::intents::TargetKind;
    let ports = |ports: &[accord_policy::intents::TargetPort]| -> Option<String> {
        ports
            .iter()
            .map(|p| {
                p.end_port
                    .is_none()
                    .then(|| format!("{}/{}", p.port, p.protocol.as_str()))
            })
            .collect::<Option<Vec<_>>>()
            .map(|v| v.join(", "))
    };
    let targets = i
        .targets
        .iter()
        .map(|t| match &t.kind {
            TargetKind::Workload {
                name,
                namespace,
                ports: p,
                kafka: false,
                ..
            } => Some(api::DraftTarget {
                service: false,
                name: name.clone(),
                namespace: namespace.clone(),
                ports: ports(p)?,
                ..Default::default()
            }),
            TargetKind::Service {
                name,
                namespace,
                ports: p,
            } => Some(api::DraftTarget {
                service: true,
                name: name.clone(),
                namespace: namespace.clone(),
                ports: ports(p)?,
                ..Default::default()
            }),
            TargetKind::Internet {
                ips,
                domains,
                ports: p,
            } => Some(api::DraftTarget {
                internet: true,
                name: domains
                    .iter()
                    .chain(ips)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                ports: p.iter().map(i32::to_string).collect::<Vec<_>>().join(", "),
                ..Default::default()
            }),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some(api::DraftIntents {
        client: accord_policy::WorkloadId::new(
            &i.namespace,
            &i.workload.name,
            i.workload.kind.as_deref(),
        )
        .to_string(),
        name: i.name.clone(),
        targets,
    })
}

/// `GET /api/drift/item?key=…`: one item with every affected edge, and its fix once the what-if
/// engine has shown it safe (withheld, with the verdict saying why, otherwise).
pub(super) async fn item(
    State(state): State<SharedState>,
    Query(q): Query<KeyQuery>,
) -> Result<Json<api::DriftItem>> {
    let all = AllItems::get(&state).await?;
    let view = all.view.clone();
    let Some(i) = all.position(&q.key) else {
        return Err(Error::NotFound(format!("no drift item {:?}", q.key)));
    };
    let owners = all.owners(state.owner_label.as_deref());
    let mut d = all.item(i).clone();
    d.owner = owners[i].to_string();
    d.acknowledged = ack_of(&state, &d);
    if d.fix.kind.is_none() {
        return Ok(Json(d));
    }
    // Observed items change between passes: their verdicts are kept per content.
    let verdict_key = if i < view.drift.len() {
        d.key.clone()
    } else {
        format!("{}#{}", d.key, d.fingerprint)
    };
    let core = all.core(i).cloned();
    let cached = view
        .fix_verdicts
        .lock()
        .expect("verdict lock")
        .get(&verdict_key)
        .cloned();
    let verdict =
        match (cached, core.clone()) {
            (Some(v), _) => Some(v),
            (None, Some(core)) if view.inventory.is_some() => {
                let permit = state.what_ifs.clone().try_acquire_owned().map_err(|_| {
                    Error::TooManyRequests {
                        message: "too many what-ifs are being evaluated; try again shortly".into(),
                        retry_after: 2,
                    }
                })?;
                let v2 = view.clone();
                let verdict = tokio::task::spawn_blocking(move || {
                    let _permit = permit;
                    let inv = v2.inventory.as_deref().expect("checked");
                    let generated = v2.generated.as_deref().cloned().unwrap_or_default();
                    drift::check_fix(inv, &*v2, &generated, &v2.settings.options, &core)
                        .map(|c| verdict_of(&c))
                })
                .await
                .map_err(|e| Error::Internal(e.to_string()))?;
                if let Some(v) = &verdict {
                    view.fix_verdicts
                        .lock()
                        .expect("verdict lock")
                        .insert(verdict_key, v.clone());
                }
                verdict
            }
            _ => None,
        };
    match verdict {
        Some(v) if v.safe => {
            if let Some(core) = core.as_ref().and_then(|c| c.fix.as_ref()) {
                d.fix.draft = accord_policy::render::intents_yaml(&core.draft);
                if core.kind == accord_policy::drift::FixKind::Intents {
                    d.fix.forms = core.draft.iter().filter_map(form_of).collect();
                }
            }
            d.fix.verdict = Some(v);
        }
        other => {
            // Not shown safe (or not checkable before this process's first sync): withheld.
            d.fix = api::SuggestedFix {
                description: match &other {
                    Some(_) => format!(
                        "{} (No fix is offered: applied as the operator would, the suggested one does not resolve this safely.)",
                        core.as_ref().map_or(String::new(), |c| c.advice.clone())
                    ),
                    None => "A fix is offered once the first sync of this process has finished and the what-if engine has checked it.".to_string(),
                },
                verdict: other,
                ..Default::default()
            };
        }
    }
    Ok(Json(d))
}

/// `POST /api/drift/ack`: acknowledge an item with a reason, kept until its cause changes.
pub(super) async fn ack(
    State(state): State<SharedState>,
    Json(req): Json<api::AckRequest>,
) -> Result<Json<api::DriftItem>> {
    let reason = req.reason.trim();
    if reason.is_empty() {
        return Err(Error::BadRequest(
            "an acknowledgement needs a reason".to_string(),
        ));
    }
    if reason.len() > 2000 {
        return Err(Error::BadRequest(
            "the reason is longer than 2000 bytes".to_string(),
        ));
    }
    let all = AllItems::get(&state).await?;
    let Some(mut d) = all.position(&req.key).map(|i| all.item(i).clone()) else {
        return Err(Error::NotFound(format!("no drift item {:?}", req.key)));
    };
    let at = now_rfc3339();
    state
        .store
        .ack_drift(&d.key, &d.fingerprint, reason, &at)
        .await?;
    let ack = api::Acknowledgement {
        reason: reason.to_string(),
        at,
    };
    state
        .acks
        .write()
        .expect("acks lock")
        .insert(d.key.clone(), (d.fingerprint.clone(), ack.clone()));
    d.acknowledged = Some(ack);
    Ok(Json(d))
}

/// `DELETE /api/drift/ack?key=…`: withdraw an acknowledgement.
pub(super) async fn unack(
    State(state): State<SharedState>,
    Query(q): Query<KeyQuery>,
) -> Result<StatusCode> {
    let removed = state.store.unack_drift(&q.key).await?;
    state.acks.write().expect("acks lock").remove(&q.key);
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::NotFound(format!(
            "no acknowledgement of {:?}",
            q.key
        )))
    }
}
