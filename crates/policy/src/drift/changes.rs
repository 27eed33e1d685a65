//! What changed between two analyses of the same cluster: one comparison, used by the
//! dashboard's history (a sync pass against the stored one) and the what-if (the cluster now
//! against the cluster with a draft applied).

use serde::{Deserialize, Serialize};

use super::{EdgeReport, EdgeState};

/// What an analysis says of one client→server pair: enough to tell whether access changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairFacts {
    pub state: EdgeState,
    /// Whether the declared (or any) access is allowed: false for a blocked call even when some
    /// of its ports are admitted.
    pub allowed: bool,
    /// What the policies allow, as text (`TCP 8080`, `All Connections`); empty when nothing.
    pub ports: String,
    /// What the intents declare, as text; empty when undeclared.
    pub declared_ports: String,
}

impl PairFacts {
    pub fn of(e: &EdgeReport) -> PairFacts {
        PairFacts {
            state: e.state,
            allowed: e.state != EdgeState::Blocked && e.is_allowed(),
            ports: if e.allowed.is_empty() {
                String::new()
            } else {
                e.allowed.to_string()
            },
            declared_ports: if e.declared_by.is_empty() {
                String::new()
            } else {
                e.declared.to_string()
            },
        }
    }
}

/// What happened to a pair between two analyses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// Access became allowed (the pair appeared, or went from denied to allowed).
    Granted,
    /// Access was taken away (the pair disappeared or became blocked).
    Revoked,
    /// Same access, another state (e.g. `open` → `enforced`) or other ports.
    StateChanged,
    /// The first analysis of a source: every pair appeared at once, recorded as one entry
    /// rather than one per pair.
    InitialSync,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 4] = [
        ChangeKind::Granted,
        ChangeKind::Revoked,
        ChangeKind::StateChanged,
        ChangeKind::InitialSync,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Granted => "granted",
            ChangeKind::Revoked => "revoked",
            ChangeKind::StateChanged => "state-changed",
            ChangeKind::InitialSync => "initial-sync",
        }
    }

    pub fn parse(s: &str) -> Option<ChangeKind> {
        ChangeKind::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The change of one pair from `before` to `after` (`None`: the pair is not in that
    /// analysis); `None` when nothing changed.
    pub fn between(before: Option<&PairFacts>, after: Option<&PairFacts>) -> Option<ChangeKind> {
        let was = before.is_some_and(|b| b.allowed);
        let is = after.is_some_and(|a| a.allowed);
        match (was, is) {
            (false, true) => Some(ChangeKind::Granted),
            (true, false) => Some(ChangeKind::Revoked),
            _ => (before != after).then_some(ChangeKind::StateChanged),
        }
    }
}

/// One pair that changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairChange<K> {
    pub key: K,
    pub before: Option<PairFacts>,
    pub after: Option<PairFacts>,
    pub kind: ChangeKind,
}

/// Every pair whose facts differ between two analyses, in key order. Both sides are given as
/// key → facts maps (or anything iterable in key order).
pub fn changes<K: Ord + Clone>(
    before: impl IntoIterator<Item = (K, PairFacts)>,
    after: impl IntoIterator<Item = (K, PairFacts)>,
) -> Vec<PairChange<K>> {
    let mut before: Vec<(K, PairFacts)> = before.into_iter().collect();
    let mut after: Vec<(K, PairFacts)> = after.into_iter().collect();
    before.sort_by(|a, b| a.0.cmp(&b.0));
    after.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::new();
    let (mut b, mut a) = (before.into_iter().peekable(), after.into_iter().peekable());
    loop {
        let order = match (b.peek(), a.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => x.0.cmp(&y.0),
        };
        let (key, before, after) = match order {
            std::cmp::Ordering::Less => {
                let (k, v) = b.next().expect("peeked");
                (k, Some(v), None)
            }
            std::cmp::Ordering::Greater => {
                let (k, v) = a.next().expect("peeked");
                (k, None, Some(v))
            }
            std::cmp::Ordering::Equal => {
                let (k, x) = b.next().expect("peeked");
                let (_, y) = a.next().expect("peeked");
                (k, Some(x), Some(y))
            }
        };
        if let Some(kind) = ChangeKind::between(before.as_ref(), after.as_ref()) {
            out.push(PairChange {
                key,
                before,
                after,
                kind,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(state: EdgeState, allowed: bool) -> PairFacts {
        PairFacts {
            state,
            allowed,
            ports: if allowed {
                "All Connections".into()
            } else {
                String::new()
            },
            declared_ports: String::new(),
        }
    }

    #[test]
    fn classifies_granted_revoked_and_state_changes_in_key_order() {
        let before = vec![
            ("a", facts(EdgeState::Open, true)),
            ("b", facts(EdgeState::Enforced, true)),
            ("c", facts(EdgeState::Open, true)),
            ("e", facts(EdgeState::Blocked, false)),
        ];
        let after = vec![
            ("e", facts(EdgeState::Enforced, true)),
            ("a", facts(EdgeState::Open, true)),
            ("b", facts(EdgeState::Blocked, false)),
            ("c", facts(EdgeState::Enforced, true)),
            ("d", facts(EdgeState::Undeclared, true)),
        ];
        let got: Vec<(&str, ChangeKind)> = changes(before, after)
            .into_iter()
            .map(|c| (c.key, c.kind))
            .collect();
        assert_eq!(
            got,
            vec![
                ("b", ChangeKind::Revoked),
                ("c", ChangeKind::StateChanged),
                ("d", ChangeKind::Granted),
                ("e", ChangeKind::Granted),
            ]
        );
        assert_eq!(
            ChangeKind::between(Some(&facts(EdgeState::Open, true)), None),
            Some(ChangeKind::Revoked)
        );
        assert_eq!(
            ChangeKind::between(Some(&facts(EdgeState::Blocked, false)), None),
            Some(ChangeKind::StateChanged)
        );
    }
}
