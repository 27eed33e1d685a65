//! Shared by the evaluation commands: loading manifests into an inventory, and resolving the
//! workload names users type (`ns/name` or `ns/name[Kind]`) with helpful errors.

use std::path::PathBuf;

use accord_policy::evaluate::Ipv4Range;
use accord_policy::validate::edit_distance;
use accord_policy::{Inventory, Naming, Peer, WorkloadId};

use super::report;
use crate::manifests;

/// Why a name given on the command line could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0:?} is not a workload name: write ns/name, ns/name[Kind] or an IPv4 address")]
    Invalid(String),
    #[error("no workload {name} in the manifests{}", suggestions(.close))]
    Unknown { name: String, close: Vec<String> },
    #[error("{name} is ambiguous: it names {}; add the kind, e.g. {}", .matches.join(", "), .matches[0])]
    Ambiguous { name: String, matches: Vec<String> },
}

fn suggestions(close: &[String]) -> String {
    if close.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", close.join(", "))
    }
}

/// Read and load manifests, printing load diagnostics to standard error. The flag says whether
/// any object could not be read (it is then missing from the inventory, so answers may be
/// wrong), or with `strict`, whether there was any diagnostic at all.
pub fn load(paths: &[PathBuf], strict: bool) -> anyhow::Result<(Inventory, bool)> {
    let reading = manifests::read_named(paths)?;
    let (inv, mut diagnostics) = crate::manifests::load(&reading.sources);
    diagnostics.splice(0..0, reading.diagnostics);
    let failed = report(&diagnostics, strict);
    Ok((inv, failed))
}

/// Resolve a command-line name to a peer: an IPv4 address or range, or a workload known under
/// `naming`. A name without a kind must designate one workload.
pub fn resolve(text: &str, known: &[WorkloadId]) -> Result<Peer, Error> {
    if text == "{ingress-controller}" {
        return Ok(Peer::IngressController);
    }
    // An address, CIDR or range: digits, dots, and a slash or dash at most.
    let looks_like_ip = text.contains('.')
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || "./-".contains(c));
    if looks_like_ip && let Some(r) = Ipv4Range::parse(text) {
        return Ok(Peer::External(r));
    }
    let id = WorkloadId::parse(text, "default")
        .filter(|_| text.contains('/'))
        .ok_or_else(|| Error::Invalid(text.to_string()))?;
    let matches: Vec<&WorkloadId> = known.iter().filter(|k| id.matches(k)).collect();
    match matches.as_slice() {
        [one] => Ok(Peer::Workload((*one).clone())),
        [] => {
            let wanted = id.to_string();
            let mut scored: Vec<(usize, String)> = known
                .iter()
                .map(|k| {
                    let full = k.to_string();
                    let plain = format!("{}/{}", k.namespace, k.name);
                    (
                        edit_distance(&wanted, &full).min(edit_distance(&wanted, &plain)),
                        full,
                    )
                })
                .filter(|(d, _)| *d <= (wanted.len() / 3).max(3))
                .collect();
            scored.sort();
            Err(Error::Unknown {
                name: wanted,
                close: scored.into_iter().take(5).map(|(_, n)| n).collect(),
            })
        }
        many => Err(Error::Ambiguous {
            name: id.to_string(),
            matches: many.iter().map(ToString::to_string).collect(),
        }),
    }
}

/// The workload names of an inventory under `naming`, sorted.
pub fn known(inv: &Inventory, naming: Naming) -> Vec<WorkloadId> {
    let set: std::collections::BTreeSet<WorkloadId> =
        inv.pods.iter().map(|p| naming.name(p)).collect();
    set.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn unknown_names_suggest_close_matches() {
        let known = vec![
            WorkloadId::new("shop", "frontend", Some("Deployment")),
            WorkloadId::new("shop", "backend", Some("Deployment")),
            WorkloadId::new("db", "postgres", Some("StatefulSet")),
        ];
        let err = resolve("shop/frontnd", &known).unwrap_err().to_string();
        assert!(
            err.contains("did you mean shop/frontend[Deployment]"),
            "{err}"
        );
        assert_eq!(
            resolve("shop/backend", &known).unwrap(),
            Peer::Workload(WorkloadId::new("shop", "backend", Some("Deployment")))
        );
        assert!(matches!(
            resolve("shop/backend[StatefulSet]", &known),
            Err(Error::Unknown { .. })
        ));
        assert!(matches!(resolve("10.0.0.1", &known), Ok(Peer::External(_))));
        assert!(matches!(
            resolve("frontend", &known),
            Err(Error::Invalid(_))
        ));
    }
}
