//! Graph filtering and aggregation: the one definition of which edges a state and namespace
//! filter keeps, how bad a state is, and how edges add up per namespace pair. The server's
//! `/api/graph` and the dashboard's view both use it, so they never disagree.

use std::collections::{BTreeMap, BTreeSet};

use crate::{Edge, EdgeState, StateCounts};

/// The namespace of a workload id `namespace/name[Kind]`.
pub fn namespace_of(id: &str) -> &str {
    id.split_once('/').map_or("", |(ns, _)| ns)
}

/// Every state but `open`, which is default-allow and hidden unless asked for.
pub fn default_states() -> BTreeSet<EdgeState> {
    EdgeState::ALL
        .into_iter()
        .filter(|s| *s != EdgeState::Open)
        .collect()
}

/// The states a `state=` query names: absent → [`default_states`]; `all`; or a comma-separated
/// list. An unknown state is an error naming it.
pub fn parse_states(query: Option<&str>) -> Result<BTreeSet<EdgeState>, String> {
    let Some(text) = query else {
        return Ok(default_states());
    };
    let parts: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if parts.contains(&"all") {
        return Ok(EdgeState::ALL.into_iter().collect());
    }
    parts
        .into_iter()
        .map(|p| {
            p.parse::<EdgeState>()
                .map_err(|e| format!("{e}; or use all"))
        })
        .collect()
}

/// How bad a state is, for the colour of an aggregated edge (the worst wins).
pub fn severity(state: EdgeState) -> u8 {
    match state {
        EdgeState::Blocked => 4,
        EdgeState::Undeclared => 3,
        EdgeState::Unprotected => 2,
        EdgeState::Enforced => 1,
        EdgeState::Open => 0,
    }
}

/// Which edges a view keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EdgeFilter {
    pub states: BTreeSet<EdgeState>,
    /// Only edges with either end in one of these namespaces; empty: all.
    pub namespaces: BTreeSet<String>,
}

impl EdgeFilter {
    pub fn in_namespaces(&self, id: &str) -> bool {
        self.namespaces.is_empty() || self.namespaces.contains(namespace_of(id))
    }

    pub fn keeps(&self, e: &Edge) -> bool {
        self.states.contains(&e.state)
            && (self.in_namespaces(&e.source) || self.in_namespaces(&e.target))
    }
}

/// Edges counted by state per (source namespace, target namespace).
pub fn namespace_pairs<'e>(
    edges: impl IntoIterator<Item = &'e Edge>,
) -> BTreeMap<(String, String), StateCounts> {
    let mut out: BTreeMap<(String, String), StateCounts> = BTreeMap::new();
    for e in edges {
        out.entry((
            namespace_of(&e.source).to_string(),
            namespace_of(&e.target).to_string(),
        ))
        .or_default()
        .add(e.state, 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(s: &str, t: &str, state: EdgeState) -> Edge {
        Edge {
            source: s.into(),
            target: t.into(),
            state,
            ports: String::new(),
            declared_ports: String::new(),
            declared: false,
            allowed: true,
            first_seen: None,
            last_changed: None,
        }
    }

    #[test]
    fn filters_by_state_and_either_end_namespace() {
        let f = EdgeFilter {
            states: parse_states(Some("blocked, enforced")).unwrap(),
            namespaces: ["b".to_string()].into(),
        };
        assert!(f.keeps(&edge("a/x", "b/y", EdgeState::Blocked)));
        assert!(f.keeps(&edge("b/x", "c/y", EdgeState::Enforced)));
        assert!(!f.keeps(&edge("a/x", "c/y", EdgeState::Blocked)));
        assert!(!f.keeps(&edge("a/x", "b/y", EdgeState::Open)));
        assert_eq!(parse_states(None).unwrap(), default_states());
        assert_eq!(parse_states(Some("all")).unwrap().len(), 5);
        assert!(parse_states(Some("nope")).unwrap_err().contains("nope"));
    }

    #[test]
    fn counts_edges_per_namespace_pair() {
        let edges = [
            edge("a/x", "b/y", EdgeState::Blocked),
            edge("a/z", "b/y", EdgeState::Enforced),
            edge("b/y", "b/w", EdgeState::Open),
        ];
        let pairs = namespace_pairs(&edges);
        assert_eq!(pairs[&("a".into(), "b".into())].total(), 2);
        assert_eq!(pairs[&("a".into(), "b".into())].blocked, 1);
        assert_eq!(pairs[&("b".into(), "b".into())].open, 1);
    }
}
