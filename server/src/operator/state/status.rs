//! ClientIntents status: the conditions (`Valid`, `Unique`, `TargetsResolved`,
//! `PoliciesApplied`) and `upToDate`, chosen by diagnostic codes and written as the typed status.

use std::collections::{BTreeSet, HashSet};

use accord_policy::diagnostic::{Diagnostic, DiagnosticCode};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::k8s::ClientIntentsStatus;

use super::*;

/// What a status is computed from, after the writes are done.
#[derive(Clone, Debug)]
pub struct StatusInput {
    pub key: Key,
    pub subjects: BTreeSet<Key>,
    pub generation: Option<i64>,
    pub parse_diagnostics: Vec<Diagnostic>,
    pub generate_diagnostics: Vec<Diagnostic>,
    pub current: ClientIntentsStatus,
    /// `namespace/name` of the policies generated for the intents' subjects.
    pub policies: BTreeSet<String>,
}

/// The conditions and `upToDate` of a ClientIntents, as a status merge patch, or `None` when
/// the object already shows them. `failed` holds the subjects whose writes failed.
pub fn status_patch(
    input: &StatusInput,
    failed: &HashSet<Key>,
    now: &Time,
) -> Option<ClientIntentsStatus> {
    let cond = |kind: &str, ok: bool, reason: &str, message: String| Condition {
        type_: kind.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        reason: reason.to_string(),
        message,
        last_transition_time: now.clone(),
        observed_generation: input.generation,
    };
    let errors: Vec<String> = input
        .parse_diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{}: {}", d.field, d.message))
        .collect();
    // Conditions are chosen by the diagnostics' codes: a second ClientIntents for one workload
    // makes `Unique` false; anything else generation reports is a target that does not resolve.
    let duplicates: Vec<String> = input
        .generate_diagnostics
        .iter()
        .filter(|d| d.code == DiagnosticCode::DuplicateIntents)
        .map(|d| format!("{}: {}", d.field, d.message))
        .collect();
    let unresolved_codes: BTreeSet<DiagnosticCode> = input
        .generate_diagnostics
        .iter()
        .filter(|d| d.code != DiagnosticCode::DuplicateIntents)
        .map(|d| d.code)
        .collect();
    let unresolved: Vec<String> = input
        .generate_diagnostics
        .iter()
        .filter(|d| d.code != DiagnosticCode::DuplicateIntents)
        .map(|d| format!("{}: {}", d.field, d.message))
        .collect();
    let write_failures: Vec<String> = input
        .subjects
        .iter()
        .filter(|s| failed.contains(*s))
        .map(|s| format!("{}/{}", s.0, s.1))
        .collect();
    let mut conditions = vec![
        if errors.is_empty() {
            cond("Valid", true, "Valid", "the intents are valid".into())
        } else {
            cond("Valid", false, "InvalidIntents", errors.join("; "))
        },
        if duplicates.is_empty() {
            cond(
                "Unique",
                true,
                "Unique",
                "no other ClientIntents declares this workload's calls".into(),
            )
        } else {
            cond("Unique", false, "DuplicateIntents", duplicates.join("; "))
        },
        if unresolved.is_empty() {
            cond(
                "TargetsResolved",
                true,
                "Resolved",
                "every target resolves".into(),
            )
        } else {
            // One reason for the condition, the most specific first: a Service without a
            // selector; then anything that resolves to nothing (a workload, a Service or the
            // client itself) as `TargetNotFound`; then addresses not known yet.
            let reason = if unresolved_codes.contains(&DiagnosticCode::ServiceWithoutSelector) {
                DiagnosticCode::ServiceWithoutSelector.reason()
            } else if unresolved_codes.iter().any(|c| {
                matches!(
                    c,
                    DiagnosticCode::TargetNotFound
                        | DiagnosticCode::ServiceNotFound
                        | DiagnosticCode::ClientNotFound
                )
            }) {
                DiagnosticCode::TargetNotFound.reason()
            } else {
                unresolved_codes
                    .first()
                    .map_or_else(String::new, |c| c.reason())
            };
            cond("TargetsResolved", false, &reason, unresolved.join("; "))
        },
        if write_failures.is_empty() {
            let msg = if input.policies.is_empty() {
                "no NetworkPolicy is needed; pod labels applied".to_string()
            } else {
                format!(
                    "applied {}",
                    input
                        .policies
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            cond("PoliciesApplied", true, "Applied", msg)
        } else {
            cond(
                "PoliciesApplied",
                false,
                "ApplyFailed",
                format!("writes failed for {}; retrying", write_failures.join(", ")),
            )
        },
    ];
    let up_to_date = errors.is_empty() && duplicates.is_empty() && write_failures.is_empty();
    // Keep the transition time of conditions whose status did not change.
    let current = &input.current;
    for c in &mut conditions {
        if let Some(old) = current.conditions.iter().find(|o| o.type_ == c.type_)
            && old.status == c.status
        {
            c.last_transition_time = old.last_transition_time.clone();
        }
    }
    let shown = |c: &Condition| {
        (
            c.type_.clone(),
            c.status.clone(),
            c.reason.clone(),
            c.message.clone(),
        )
    };
    let same = current.up_to_date == up_to_date
        && current.observed_generation == input.generation
        && current
            .conditions
            .iter()
            .map(shown)
            .eq(conditions.iter().map(shown));
    // `resolvedIPs` stays out of the patch, so the merge leaves it as it is.
    (!same).then(|| ClientIntentsStatus {
        up_to_date,
        observed_generation: input.generation,
        resolved_ips: Vec::new(),
        conditions,
    })
}
