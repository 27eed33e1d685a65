//! Rendering: policies and labels as YAML or JSON text, deterministically.

mod yaml;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::identity::WorkloadId;
use crate::objects::{Labels, NetworkPolicy};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not serialize to YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("could not serialize to JSON: {0}")]
    Json(#[from] serde_json::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Policies as a multi-document YAML stream (`---` between documents).
pub fn policies_yaml(policies: &[NetworkPolicy]) -> Result<String> {
    let mut out = String::with_capacity(policies.len() * 900);
    for (i, p) in policies.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        yaml::write_document(&mut out, &yaml::policy(p));
    }
    Ok(out)
}

/// ClientIntents as a multi-document YAML stream of `k8s.otterize.com/v2beta1` objects: the one
/// ClientIntents writer of Accord (fix suggestions, the draft form, synthetic clusters, exports).
/// Target names in the client's own namespace are written `name`, others `name.namespace`;
/// HTTP resources and the details of non-network targets are not part of the normalized model and
/// are not written.
pub fn intents_yaml(intents: &[crate::ClientIntents]) -> String {
    let mut out = String::new();
    for (i, ci) in intents.iter().enumerate() {
        if i > 0 {
            out.push_str(
                "---
",
            );
        }
        yaml::write_document(&mut out, &yaml::intents(ci));
    }
    out
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct List<'a, T> {
    api_version: &'static str,
    kind: &'static str,
    items: &'a [T],
}

/// Policies as one JSON `List` object.
pub fn policies_json(policies: &[NetworkPolicy]) -> Result<String> {
    let list = List {
        api_version: "v1",
        kind: "List",
        items: policies,
    };
    Ok(serde_json::to_string_pretty(&list)? + "\n")
}

/// A label change for one workload: labels to set, Accord-managed labels to remove, and
/// annotations to set (as the operator does: [`crate::labels::pod_label_change`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LabelChange {
    pub workload: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub set: Labels,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
    /// `intents.otterize.com/all-intents-removed: "true"` on a workload that is no client any
    /// more and keeps its client labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotate: Labels,
}

/// The label changes that bring each workload's pods from their current labels to the desired
/// ones. `current` is the workload's present pod labels.
pub fn label_changes<'a>(
    desired: &BTreeMap<WorkloadId, Labels>,
    current: impl Fn(&WorkloadId) -> Option<&'a Labels>,
    all: impl IntoIterator<Item = &'a WorkloadId>,
) -> Vec<LabelChange> {
    let mut out = Vec::new();
    let empty = Labels::new();
    for id in all {
        let want = desired.get(id).unwrap_or(&empty);
        let have = current(id).unwrap_or(&empty);
        let change = crate::labels::pod_label_change(have, want);
        let mut annotate = Labels::new();
        if change.keeps_client_labels {
            annotate.insert(
                crate::labels::ALL_INTENTS_REMOVED.to_string(),
                "true".to_string(),
            );
        }
        if !change.is_empty() || !annotate.is_empty() {
            out.push(LabelChange {
                workload: id.to_string(),
                set: change.set,
                remove: change.remove,
                annotate,
            });
        }
    }
    out
}

/// Label changes as YAML: a list of `{workload, set, remove}`.
pub fn label_changes_yaml(changes: &[LabelChange]) -> Result<String> {
    if changes.is_empty() {
        return Ok("[]\n".to_string());
    }
    Ok(serde_yaml::to_string(changes)?)
}

pub fn label_changes_json(changes: &[LabelChange]) -> Result<String> {
    Ok(serde_json::to_string_pretty(changes)? + "\n")
}
