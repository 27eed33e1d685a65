//! Semantic diff of two connectivities: connections added, removed and changed.
//!
//! Two manifest sets usually cut the IPv4 space differently (their ipBlocks differ), so external
//! peers are compared piece by piece over the union of both cuts, and adjacent pieces with the
//! same change are merged back into one range.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Connection, Connectivity, Conns, Ipv4Range, Peer};
use crate::identity::WorkloadId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

/// A pair whose allowed connections differ. `old` is empty for an added pair, `new` for a
/// removed one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionChange {
    pub kind: ChangeKind,
    pub src: Peer,
    pub dst: Peer,
    pub old: Conns,
    pub new: Conns,
}

impl ConnectionChange {
    fn new(src: Peer, dst: Peer, old: Conns, new: Conns) -> Self {
        let kind = match (old.is_empty(), new.is_empty()) {
            (true, _) => ChangeKind::Added,
            (_, true) => ChangeKind::Removed,
            _ => ChangeKind::Changed,
        };
        ConnectionChange {
            kind,
            src,
            dst,
            old,
            new,
        }
    }

    /// What the new side allows that the old did not.
    pub fn gained(&self) -> Conns {
        self.new.difference(&self.old)
    }

    /// What the old side allowed that the new does not.
    pub fn lost(&self) -> Conns {
        self.old.difference(&self.new)
    }
}

/// Whether the workload is the source (egress towards the range) or destination.
type ExternalKey = (WorkloadId, bool);
/// Workload-to-workload connections by (source, destination).
type Pairs<'a> = BTreeMap<(&'a Peer, &'a Peer), &'a Conns>;
/// Connections with external ranges, per workload and direction.
type Externals<'a> = BTreeMap<ExternalKey, Vec<(Ipv4Range, &'a Conns)>>;

fn split(c: &Connectivity) -> (Pairs<'_>, Externals<'_>) {
    let mut pairs = BTreeMap::new();
    let mut external: BTreeMap<ExternalKey, Vec<(Ipv4Range, &Conns)>> = BTreeMap::new();
    for Connection { src, dst, conns } in &c.connections {
        match (src, dst) {
            (Peer::Workload(w), Peer::External(r)) => external
                .entry((w.clone(), true))
                .or_default()
                .push((*r, conns)),
            (Peer::External(r), Peer::Workload(w)) => external
                .entry((w.clone(), false))
                .or_default()
                .push((*r, conns)),
            (Peer::External(_), _) | (_, Peer::External(_)) => {}
            _ => {
                pairs.insert((src, dst), conns);
            }
        }
    }
    (pairs, external)
}

/// The connections at `addr` among sorted, disjoint ranges.
fn at<'a>(ranges: &[(Ipv4Range, &'a Conns)], addr: u32) -> Option<&'a Conns> {
    let i = ranges.partition_point(|(r, _)| r.first <= addr);
    (i > 0 && ranges[i - 1].0.last >= addr).then(|| ranges[i - 1].1)
}

/// Every pair whose connections differ between `old` and `new`, sorted by source then
/// destination.
pub fn diff(old: &Connectivity, new: &Connectivity) -> Vec<ConnectionChange> {
    let (old_pairs, old_ext) = split(old);
    let (new_pairs, new_ext) = split(new);
    let none = Conns::none();
    let mut out = Vec::new();
    let keys: std::collections::BTreeSet<(&Peer, &Peer)> =
        old_pairs.keys().chain(new_pairs.keys()).copied().collect();
    for (src, dst) in keys {
        let o = old_pairs.get(&(src, dst)).copied().unwrap_or(&none);
        let n = new_pairs.get(&(src, dst)).copied().unwrap_or(&none);
        if o != n {
            out.push(ConnectionChange::new(
                src.clone(),
                dst.clone(),
                o.clone(),
                n.clone(),
            ));
        }
    }

    let empty = Vec::new();
    let ext_keys: std::collections::BTreeSet<&ExternalKey> =
        old_ext.keys().chain(new_ext.keys()).collect();
    for key in ext_keys {
        let mut o = old_ext.get(key).unwrap_or(&empty).clone();
        let mut n = new_ext.get(key).unwrap_or(&empty).clone();
        o.sort_by_key(|(r, _)| *r);
        n.sort_by_key(|(r, _)| *r);
        let mut cuts: Vec<u32> = vec![0];
        for (r, _) in o.iter().chain(&n) {
            cuts.push(r.first);
            if let Some(next) = r.last.checked_add(1) {
                cuts.push(next);
            }
        }
        let pieces = super::ipranges::pieces(cuts);
        // Merge adjacent pieces with the same (old, new) so a re-cut alone shows nothing.
        let mut runs: Vec<(Ipv4Range, &Conns, &Conns)> = Vec::new();
        for p in pieces {
            let a = at(&o, p.first).unwrap_or(&none);
            let b = at(&n, p.first).unwrap_or(&none);
            match runs.last_mut() {
                Some((r, ra, rb)) if *ra == a && *rb == b => r.last = p.last,
                _ => runs.push((p, a, b)),
            }
        }
        let (workload, outbound) = key;
        for (range, a, b) in runs {
            if a == b {
                continue;
            }
            let (w, x) = (Peer::Workload(workload.clone()), Peer::External(range));
            let (src, dst) = if *outbound { (w, x) } else { (x, w) };
            out.push(ConnectionChange::new(src, dst, a.clone(), b.clone()));
        }
    }
    out.sort_by(|a, b| (&a.src, &a.dst).cmp(&(&b.src, &b.dst)));
    out
}
