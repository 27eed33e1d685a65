//! Evaluation: any set of `networking.k8s.io/v1` NetworkPolicies over an inventory → the allowed
//! connections between workloads and external IPv4 ranges, per protocol and port, with the
//! policies and rules that isolate or admit each pair.
//!
//! Semantics follow Kubernetes, with the decisions recorded in DESIGN.md: an `ipBlock` matches
//! external addresses only, never pods; named ports resolve against the destination pod's
//! container ports (an unresolvable name admits nothing); a pod is isolated for a direction when
//! some policy selecting it has that policy type, and then only the union of those policies'
//! rules admits traffic. A connection is allowed when the source's egress and the
//! destination's ingress both allow it.
//!
//! Beyond NetworkPolicy, three things netpol-analyzer models are evaluated too:
//! AdminNetworkPolicy / BaselineAdminNetworkPolicy (`policy.networking.k8s.io/v1alpha1`), layered
//! around NetworkPolicies per port; Ingress and Route objects, which make the
//! `{ingress-controller}` a source; and OVN-Kubernetes primary user-defined networks, which
//! split the cluster into networks whose pods cannot reach each other.
//!
//! The evaluator works on pods. Outputs name them by a [`Naming`]: the connectivity-list format
//! uses the direct controller owner, everything else the root workload identity.
//!
//! Entry points: [`evaluate`] for the whole list, or [`Evaluator::new`] once and then
//! [`Evaluator::connectivity`] and [`Evaluator::explain`] (per pair, with the deciding policies
//! and rules); [`diff::diff`] compares two connectivities.

mod compile;
pub mod diff;
mod explain;
pub mod ipranges;
pub mod ports;
mod types;

pub use types::*;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use crate::diagnostic::Diagnostic;
use crate::identity::WorkloadId;
use crate::inventory::{Inventory, PolicyObject};
use crate::objects::AdminAction;

pub use compile::Patch;
use compile::{Compiled, Endpoint, compile};
pub use ipranges::Ipv4Range;
pub use ports::{Conns, PortRanges};

/// An end of a pair inside the evaluator: an endpoint (a group of identical pods) or an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Endpoint(u32),
    Ip(u32),
    IngressController,
    /// Any endpoint that no rule lists by name (only `all` and every-pod peers match it).
    Unlisted,
}

/// Compiled policies over one inventory; build once, then ask for the connectivity or explain
/// pairs.
pub struct Evaluator<'a> {
    inv: &'a Inventory,
    c: Cow<'a, Compiled>,
    /// The per-endpoint defaults of [`Evaluator::endpoint_pairs`], when kept.
    tables: Option<Cow<'a, Tables>>,
    /// The workload names of each endpoint ([`Naming::Workload`]), when kept.
    names: Option<Cow<'a, Names>>,
    /// Policies a [`Patch`] added (compiled as sources past the inventory's policies).
    added: &'a [PolicyObject],
}

/// Per endpoint: what the rules that apply to it list and admit by default, the inputs of
/// every pair's evaluation (see [`Evaluator::endpoint_pairs`]).
#[derive(Clone)]
struct Tables {
    /// The sources the ingress rules of each destination list.
    listed_in: Vec<Vec<u32>>,
    /// What each destination's ingress admits from a source it does not list.
    in_default: Vec<Conns>,
    /// The destinations the egress rules of each source list.
    listed_out: Vec<Vec<u32>>,
    /// What each source's egress admits towards a destination it does not list; `None`: it
    /// depends on each destination's named ports.
    out_default: Vec<Option<Conns>>,
    /// Sources that may reach a destination they do not list.
    open_out: Vec<u32>,
    /// Per destination: the other sources that list it.
    rev_out: Vec<Vec<u32>>,
}

/// The peer names of each endpoint, as indices into a sorted table.
#[derive(Clone)]
struct Names {
    table: Vec<WorkloadId>,
    per_endpoint: Vec<Vec<u32>>,
}

/// An inventory's policies compiled with the per-endpoint tables evaluation starts from: built
/// once (per sync pass) and shared, so that evaluating a change of the inventory (a what-if)
/// patches the few policies and endpoints the change touches instead of compiling everything.
pub struct Prepared {
    c: Compiled,
    tables: Tables,
    names: Names,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("endpoints", &self.c.endpoints.len())
            .field("policies", &self.c.policies.len())
            .finish_non_exhaustive()
    }
}

impl Prepared {
    pub fn new(inv: &Inventory) -> Prepared {
        let mut e = Evaluator::new(inv);
        let tables = e.compute_tables();
        let names = e.compute_names(Naming::Workload);
        e.tables = None;
        Prepared {
            c: e.c.into_owned(),
            tables,
            names,
        }
    }

    /// An evaluator of `inv`, which must be the inventory this was prepared from.
    pub fn evaluator<'a>(&'a self, inv: &'a Inventory) -> Evaluator<'a> {
        Evaluator {
            inv,
            c: Cow::Borrowed(&self.c),
            tables: Some(Cow::Borrowed(&self.tables)),
            names: Some(Cow::Borrowed(&self.names)),
            added: &[],
        }
    }

    /// An evaluator of `inv` (the inventory this was prepared from) changed by `patch`: only
    /// the policies and endpoints the patch touches are compiled again.
    pub fn patched<'a>(&'a self, inv: &'a Inventory, patch: &'a Patch) -> Evaluator<'a> {
        let (c, dirty) = self.c.patched(inv, patch);
        let mut e = Evaluator {
            inv,
            c: Cow::Owned(c),
            tables: None,
            names: None,
            added: &patch.added,
        };
        let tables = e.patch_tables(&self.tables, &dirty);
        let mut names = self.names.clone();
        let moved: BTreeSet<u32> = patch
            .relabelled
            .iter()
            .map(|(p, _)| self.c.pod_endpoint[*p])
            .chain(
                dirty
                    .iter()
                    .copied()
                    .filter(|&d| d as usize >= self.c.endpoints.len()),
            )
            .collect();
        names.per_endpoint.resize(e.c.endpoints.len(), Vec::new());
        for d in moved {
            names.per_endpoint[d as usize] = e.endpoint_names(&names.table, d, Naming::Workload);
        }
        e.tables = Some(Cow::Owned(tables));
        e.names = Some(Cow::Owned(names));
        e
    }

    /// How many endpoints (groups of pods policies cannot tell apart) there are.
    pub fn endpoints(&self) -> usize {
        self.c.endpoints.len()
    }

    /// About how many bytes this holds (endpoints, rules and tables), to budget what a patch
    /// may copy.
    pub fn approx_bytes(&self) -> usize {
        let endpoints = self.c.endpoints.len();
        let listed: usize = self.tables.listed_in.iter().map(Vec::len).sum::<usize>()
            + self.tables.listed_out.iter().map(Vec::len).sum::<usize>()
            + self.tables.rev_out.iter().map(Vec::len).sum::<usize>();
        endpoints * 512 + self.c.policies.len() * 64 + listed * 4 + self.c.pod_endpoint.len() * 4
    }
}

/// Evaluate every NetworkPolicy of the inventory, naming peers by `naming`.
pub fn evaluate(inv: &Inventory, naming: Naming) -> Connectivity {
    Evaluator::new(inv).connectivity(naming)
}

impl<'a> Evaluator<'a> {
    pub fn new(inv: &'a Inventory) -> Self {
        Evaluator {
            inv,
            c: Cow::Owned(compile(inv)),
            tables: None,
            names: None,
            added: &[],
        }
    }

    pub fn inventory(&self) -> &'a Inventory {
        self.inv
    }

    /// Problems found while compiling the policies.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.c.diagnostics
    }

    /// The pieces the IPv4 space is cut into by the policies' ipBlocks.
    pub fn external_pieces(&self) -> Vec<Ipv4Range> {
        ipranges::pieces(self.c.ip_boundaries.clone())
    }

    /// The primary network of an endpoint (0: the pod network).
    fn network(&self, e: u32) -> u32 {
        self.c.network_of_ns[self.endpoint(e).ns as usize]
    }

    fn network_name(&self, e: u32) -> Network {
        match self.network(e) {
            0 => Network::Pod,
            n => {
                let net = &self.inv.primary_networks[n as usize - 1];
                match net.scope {
                    crate::inventory::NetworkScope::Namespace(_) => Network::Udn(net.name.clone()),
                    crate::inventory::NetworkScope::Namespaces(_) => {
                        Network::Cudn(net.name.clone())
                    }
                }
            }
        }
    }

    fn endpoint(&self, e: u32) -> &Endpoint {
        &self.c.endpoints[e as usize]
    }

    fn policy_ref(&self, compiled: u32) -> PolicyRef {
        let source = self.c.policies[compiled as usize].source;
        let live = self.inv.network_policies.len();
        let p = match source.checked_sub(live) {
            Some(k) => &self.added[k].policy,
            None => &self.inv.network_policies[source].policy,
        };
        PolicyRef {
            namespace: p.namespace().to_string(),
            name: p.metadata.name.clone(),
        }
    }

    /// Whether `end` is among a rule's peers.
    fn hits(peers: &compile::Peers, end: End) -> bool {
        match end {
            End::Endpoint(e) => peers.has_endpoint(e),
            End::Ip(a) => peers.has_ip(a),
            End::IngressController => peers.has_ingress_controller(),
            End::Unlisted => peers.has_unlisted(),
        }
    }

    /// The destination whose container ports resolve named ports for a pair.
    fn target(&self, direction: Direction, selected: u32, other: End) -> Option<&Endpoint> {
        match (direction, other) {
            (Direction::Ingress, _) => Some(self.endpoint(selected)),
            (Direction::Egress, End::Endpoint(d)) => Some(self.endpoint(d)),
            (Direction::Egress, End::Ip(_) | End::IngressController | End::Unlisted) => None,
        }
    }

    /// What the NetworkPolicies of `selected` admit in `direction` with `other`, or `None` when
    /// none isolates it in that direction.
    fn np_conns(&self, direction: Direction, selected: u32, other: End) -> Option<Conns> {
        let policies = match direction {
            Direction::Ingress => &self.c.ingress_of[selected as usize],
            Direction::Egress => &self.c.egress_of[selected as usize],
        };
        if policies.is_empty() {
            return None;
        }
        let target = self.target(direction, selected, other);
        let mut acc = Conns::none();
        for &p in policies {
            for rule in self.c.policies[p as usize]
                .rules(direction)
                .into_iter()
                .flatten()
            {
                if Self::hits(&rule.peers, other) {
                    rule.ports.add_to(&mut acc, target);
                }
            }
        }
        Some(acc)
    }

    /// What one side (the destination's ingress, or the source's egress) allows, through the
    /// three layers: AdminNetworkPolicies in precedence order (the first rule matching a port
    /// decides it: Allow, Deny, or Pass to the next layer), then NetworkPolicies if any isolates
    /// the pod, else the BaselineAdminNetworkPolicy, else allowed. With `trace`, the admin rules
    /// that decided ports are recorded.
    fn side_conns(
        &self,
        direction: Direction,
        selected: u32,
        other: End,
        mut trace: Option<&mut Vec<AdminDecision>>,
    ) -> Conns {
        let admins = &self.c.admin_of[selected as usize];
        let baselines = &self.c.baseline_of[selected as usize];
        if admins.is_empty() && baselines.is_empty() {
            return self
                .np_conns(direction, selected, other)
                .unwrap_or_else(Conns::all);
        }
        let target = self.target(direction, selected, other);
        let mut record = |a: u32, index: usize, action: AdminAction, conns: &Conns| {
            if let Some(t) = trace.as_deref_mut() {
                let obj = &self.inv.admin_policies[self.c.admins[a as usize].source];
                t.push(AdminDecision {
                    policy: obj.policy.metadata.name.clone(),
                    baseline: obj.baseline,
                    direction,
                    index,
                    rule_name: match direction {
                        Direction::Ingress => &obj.policy.spec.ingress,
                        Direction::Egress => &obj.policy.spec.egress,
                    }[index]
                        .name
                        .clone(),
                    action,
                    conns: conns.clone(),
                });
            }
        };
        let mut undecided = Conns::all();
        let mut allowed = Conns::none();
        let mut passed = Conns::none();
        'admins: for &a in admins {
            for (index, rule) in self.c.admins[a as usize]
                .rules(direction)
                .iter()
                .enumerate()
            {
                if !Self::hits(&rule.peers, other) {
                    continue;
                }
                let decided = rule.ports.resolve(target).intersection(&undecided);
                if decided.is_empty() {
                    continue;
                }
                undecided = undecided.difference(&decided);
                match rule.action {
                    AdminAction::Allow => allowed.union_with(&decided),
                    AdminAction::Deny => {}
                    AdminAction::Pass => passed.union_with(&decided),
                }
                record(a, index, rule.action, &decided);
                if undecided.is_empty() {
                    break 'admins;
                }
            }
        }
        let mut rest = undecided;
        rest.union_with(&passed);
        if let Some(np) = self.np_conns(direction, selected, other) {
            allowed.union_with(&np.intersection(&rest));
            return allowed;
        }
        for &b in baselines {
            for (index, rule) in self.c.admins[b as usize]
                .rules(direction)
                .iter()
                .enumerate()
            {
                if rest.is_empty() || !Self::hits(&rule.peers, other) {
                    continue;
                }
                let decided = rule.ports.resolve(target).intersection(&rest);
                if decided.is_empty() {
                    continue;
                }
                rest = rest.difference(&decided);
                if rule.action == AdminAction::Allow {
                    allowed.union_with(&decided);
                }
                record(b, index, rule.action, &decided);
            }
        }
        allowed.union_with(&rest);
        allowed
    }

    /// What the ingress side of `dst` admits from `src`.
    fn ingress_conns(&self, src: End, dst: u32) -> Conns {
        self.side_conns(Direction::Ingress, dst, src, None)
    }

    /// What the egress side of `src` admits towards `dst`.
    fn egress_conns(&self, src: u32, dst: End) -> Conns {
        self.side_conns(Direction::Egress, src, dst, None)
    }

    /// Calls `f` with the peers and ports of every rule (admin, NetworkPolicy, baseline) that
    /// applies to endpoint `e` in `direction`.
    fn for_each_rule(
        &self,
        direction: Direction,
        e: u32,
        mut f: impl FnMut(&compile::Peers, &compile::RulePorts),
    ) {
        let policies = match direction {
            Direction::Ingress => &self.c.ingress_of[e as usize],
            Direction::Egress => &self.c.egress_of[e as usize],
        };
        for &p in policies {
            for rule in self.c.policies[p as usize]
                .rules(direction)
                .into_iter()
                .flatten()
            {
                f(&rule.peers, &rule.ports);
            }
        }
        for &a in self.c.admin_of[e as usize]
            .iter()
            .chain(&self.c.baseline_of[e as usize])
        {
            for rule in self.c.admins[a as usize].rules(direction) {
                f(&rule.peers, &rule.ports);
            }
        }
    }

    /// The [`Tables`] entries of endpoint `e`: the sources its ingress rules list, what its
    /// ingress admits from others, the destinations its egress rules list, and what its egress
    /// admits towards others (`None` when named ports make that depend on the destination).
    fn table_entry(&self, e: u32) -> (Vec<u32>, Conns, Vec<u32>, Option<Conns>) {
        let listed = |direction: Direction| {
            let mut out: Vec<u32> = Vec::new();
            self.for_each_rule(direction, e, |peers, _| out.extend(&peers.endpoints));
            out.sort_unstable();
            out.dedup();
            out
        };
        let mut per_destination = false;
        self.for_each_rule(Direction::Egress, e, |_, ports| {
            per_destination |= ports.depends_on_destination()
        });
        (
            listed(Direction::Ingress),
            self.side_conns(Direction::Ingress, e, End::Unlisted, None),
            listed(Direction::Egress),
            (!per_destination).then(|| self.side_conns(Direction::Egress, e, End::Unlisted, None)),
        )
    }

    fn compute_tables(&self) -> Tables {
        let n = self.c.endpoints.len();
        let mut t = Tables {
            listed_in: Vec::with_capacity(n),
            in_default: Vec::with_capacity(n),
            listed_out: Vec::with_capacity(n),
            out_default: Vec::with_capacity(n),
            open_out: Vec::new(),
            rev_out: vec![Vec::new(); n],
        };
        for e in 0..n as u32 {
            let (li, id, lo, od) = self.table_entry(e);
            t.listed_in.push(li);
            t.in_default.push(id);
            t.listed_out.push(lo);
            t.out_default.push(od);
        }
        for s in 0..n as u32 {
            if opens_out(&t.out_default[s as usize]) {
                t.open_out.push(s);
            } else {
                for &d in &t.listed_out[s as usize] {
                    t.rev_out[d as usize].push(s);
                }
            }
        }
        t
    }

    /// `base` (the tables before a patch) with the entries of the `dirty` endpoints computed
    /// again over this (patched) evaluator.
    fn patch_tables(&self, base: &Tables, dirty: &[u32]) -> Tables {
        let n = self.c.endpoints.len();
        let mut t = base.clone();
        t.listed_in.resize(n, Vec::new());
        t.in_default.resize(n, Conns::none());
        t.listed_out.resize(n, Vec::new());
        t.out_default.resize(n, Some(Conns::none()));
        t.rev_out.resize(n, Vec::new());
        for &s in dirty {
            if !opens_out(&t.out_default[s as usize]) {
                for &d in &t.listed_out[s as usize] {
                    t.rev_out[d as usize].retain(|&x| x != s);
                }
            }
        }
        for &e in dirty {
            let (li, id, lo, od) = self.table_entry(e);
            t.listed_in[e as usize] = li;
            t.in_default[e as usize] = id;
            t.listed_out[e as usize] = lo;
            t.out_default[e as usize] = od;
        }
        for &s in dirty {
            if !opens_out(&t.out_default[s as usize]) {
                for &d in &t.listed_out[s as usize] {
                    let v = &mut t.rev_out[d as usize];
                    if let Err(i) = v.binary_search(&s) {
                        v.insert(i, s);
                    }
                }
            }
        }
        t.open_out = (0..n as u32)
            .filter(|&s| opens_out(&t.out_default[s as usize]))
            .collect();
        t
    }

    /// Every allowed endpoint pair.
    ///
    /// A rule tells endpoints apart only by listing them, so all endpoints that no rule of a
    /// destination's ingress lists get the same ingress verdict, computed once (likewise for a
    /// source's egress, unless named ports make it depend on the destination). A destination
    /// whose default admits nothing is then only paired with the sources its rules list; one
    /// whose default admits something, with the sources whose egress is open by default or
    /// lists it. So the work follows the number of allowed pairs plus the rules' peer lists,
    /// not the square of the number of endpoints, with or without admin policies.
    ///
    /// Only destinations `keep` marks are paired with every source, and sources `keep_src`
    /// marks with every destination `to` marks; `extra` endpoint pairs are examined on their
    /// own.
    fn endpoint_pairs(
        &self,
        keep: &[bool],
        keep_src: &[bool],
        to: &[bool],
        extra: &[(u32, u32)],
    ) -> Vec<(u32, u32, Conns)> {
        let n = self.c.endpoints.len();
        let computed;
        let t: &Tables = match &self.tables {
            Some(t) => t,
            None => {
                computed = self.compute_tables();
                &computed
            }
        };

        // The connections from `s` to `d` (empty when none).
        let pair = |s: u32, d: u32| -> Conns {
            if self.network(s) != self.network(d) {
                return Conns::none();
            }
            let ingress = if t.listed_in[d as usize].binary_search(&s).is_ok() {
                self.side_conns(Direction::Ingress, d, End::Endpoint(s), None)
            } else {
                t.in_default[d as usize].clone()
            };
            if ingress.is_empty() {
                return ingress;
            }
            let egress = match &t.out_default[s as usize] {
                Some(c) if t.listed_out[s as usize].binary_search(&d).is_err() => c.clone(),
                _ => self.side_conns(Direction::Egress, s, End::Endpoint(d), None),
            };
            if egress.is_all() {
                ingress
            } else {
                ingress.intersection(&egress)
            }
        };

        let mut out = Vec::new();
        for d in 0..n as u32 {
            if !keep[d as usize] {
                continue;
            }
            let candidates = if t.in_default[d as usize].is_empty() {
                t.listed_in[d as usize].clone()
            } else {
                merge_sorted(&t.open_out, &t.rev_out[d as usize])
            };
            for s in candidates {
                let conns = pair(s, d);
                if !conns.is_empty() {
                    out.push((s, d, conns));
                }
            }
        }
        for s in 0..n as u32 {
            if !keep_src[s as usize] {
                continue;
            }
            for d in 0..n as u32 {
                if keep[d as usize] || !to[d as usize] {
                    continue;
                }
                let conns = pair(s, d);
                if !conns.is_empty() {
                    out.push((s, d, conns));
                }
            }
        }
        for &(s, d) in extra {
            if keep[d as usize] || (keep_src[s as usize] && to[d as usize]) {
                continue;
            }
            let conns = pair(s, d);
            if !conns.is_empty() {
                out.push((s, d, conns));
            }
        }
        out
    }

    /// The names of endpoint `e`'s pods under `naming`, as indices into `table`.
    fn endpoint_names(&self, table: &[WorkloadId], e: u32, naming: Naming) -> Vec<u32> {
        let mut ids: Vec<u32> = self.c.endpoints[e as usize]
            .pods
            .iter()
            .map(|&p| {
                let name = naming.name(&self.inv.pods[p as usize]);
                table
                    .binary_search(&name)
                    .expect("every pod's name is in the table") as u32
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    fn compute_names(&self, naming: Naming) -> Names {
        let table: BTreeSet<WorkloadId> = self.inv.pods.iter().map(|p| naming.name(p)).collect();
        let table: Vec<WorkloadId> = table.into_iter().collect();
        let per_endpoint = (0..self.c.endpoints.len() as u32)
            .map(|e| self.endpoint_names(&table, e, naming))
            .collect();
        Names {
            table,
            per_endpoint,
        }
    }

    /// The peer names of each endpoint under `naming`.
    fn names(&self, naming: Naming) -> Cow<'_, Names> {
        match &self.names {
            Some(n) if naming == Naming::Workload => Cow::Borrowed(n),
            _ => Cow::Owned(self.compute_names(naming)),
        }
    }

    /// Endpoint pairs lifted to pairs of names (`emit` chooses which), merged and sorted.
    fn name_pairs(
        &self,
        table: &[WorkloadId],
        names: &[Vec<u32>],
        endpoint_pairs: Vec<(u32, u32, Conns)>,
        emit: impl Fn(u32, u32) -> bool,
    ) -> Vec<Connection> {
        let mut pairs: Vec<(u32, u32, Conns)> = Vec::new();
        for (s, d, conns) in endpoint_pairs {
            for &ks in &names[s as usize] {
                for &kd in &names[d as usize] {
                    if ks != kd && emit(ks, kd) {
                        pairs.push((ks, kd, conns.clone()));
                    }
                }
            }
        }
        pairs.sort_unstable_by_key(|&(s, d, _)| (s, d));
        let mut connections: Vec<Connection> = Vec::with_capacity(pairs.len());
        let mut last: Option<(u32, u32)> = None;
        for (s, d, conns) in pairs {
            if last == Some((s, d)) {
                connections
                    .last_mut()
                    .expect("a previous pair")
                    .conns
                    .union_with(&conns);
                continue;
            }
            last = Some((s, d));
            connections.push(Connection {
                src: Peer::Workload(table[s as usize].clone()),
                dst: Peer::Workload(table[d as usize].clone()),
                conns,
            });
        }
        connections
    }

    /// The allowed connections between workloads whose destination `keep_dst` accepts, plus
    /// those among the `extra` pairs, sorted; no external ranges or ingress controller. The work
    /// follows the pairs examined, so leaving out destinations that admit every caller keeps a
    /// cluster with few policies from costing the square of its workloads.
    pub fn workload_connections(
        &self,
        naming: Naming,
        keep_dst: impl Fn(&WorkloadId) -> bool,
        extra: &BTreeSet<(&WorkloadId, &WorkloadId)>,
    ) -> Vec<Connection> {
        self.workload_connections_around(naming, keep_dst, |_| false, |_| false, extra)
    }

    /// As [`Evaluator::workload_connections`], plus the connections from a source `keep_src`
    /// accepts to a destination `to` accepts.
    pub fn workload_connections_around(
        &self,
        naming: Naming,
        keep_dst: impl Fn(&WorkloadId) -> bool,
        keep_src: impl Fn(&WorkloadId) -> bool,
        to: impl Fn(&WorkloadId) -> bool,
        extra: &BTreeSet<(&WorkloadId, &WorkloadId)>,
    ) -> Vec<Connection> {
        let n = self.names(naming);
        let (table, names) = (&n.table, &n.per_endpoint);
        let keep_name: Vec<bool> = table.iter().map(&keep_dst).collect();
        let src_name: Vec<bool> = table.iter().map(&keep_src).collect();
        let to_name: Vec<bool> = table.iter().map(&to).collect();
        let any = |flags: &[bool]| -> Vec<bool> {
            names
                .iter()
                .map(|ks| ks.iter().any(|&k| flags[k as usize]))
                .collect()
        };
        let keep = any(&keep_name);
        let keep_src = any(&src_name);
        let to = any(&to_name);
        let mut endpoints_of: Vec<Vec<u32>> = vec![Vec::new(); table.len()];
        for (e, ks) in names.iter().enumerate() {
            for &k in ks {
                endpoints_of[k as usize].push(e as u32);
            }
        }
        let index = |id: &WorkloadId| table.binary_search(id).ok().map(|i| i as u32);
        let mut wanted: std::collections::HashSet<(u32, u32)> = Default::default();
        let mut extra_endpoints: Vec<(u32, u32)> = Vec::new();
        for (s, d) in extra {
            let (Some(ks), Some(kd)) = (index(s), index(d)) else {
                continue;
            };
            if keep_name[kd as usize] || !wanted.insert((ks, kd)) {
                continue;
            }
            for &es in &endpoints_of[ks as usize] {
                for &ed in &endpoints_of[kd as usize] {
                    extra_endpoints.push((es, ed));
                }
            }
        }
        extra_endpoints.sort_unstable();
        extra_endpoints.dedup();
        let pairs = self.endpoint_pairs(&keep, &keep_src, &to, &extra_endpoints);
        self.name_pairs(table, names, pairs, |ks, kd| {
            keep_name[kd as usize]
                || (src_name[ks as usize] && to_name[kd as usize])
                || wanted.contains(&(ks, kd))
        })
    }

    /// Every allowed connection between workloads, and between workloads and external ranges.
    pub fn connectivity(&self, naming: Naming) -> Connectivity {
        let n = self.names(naming);
        let (table, names) = (&n.table, &n.per_endpoint);
        let keep = vec![true; self.c.endpoints.len()];
        let none = vec![false; keep.len()];
        let mut connections = self.name_pairs(
            table,
            names,
            self.endpoint_pairs(&keep, &none, &none, &[]),
            |_, _| true,
        );

        // External ranges: a piece's connections depend only on the endpoint at the other end.
        let pieces = self.external_pieces();
        let mut external: BTreeMap<(Peer, Peer), Conns> = BTreeMap::new();
        for e in 0..self.c.endpoints.len() as u32 {
            for piece in &pieces {
                let inbound = self.ingress_conns(End::Ip(piece.first), e);
                let outbound = self.egress_conns(e, End::Ip(piece.first));
                for &k in &names[e as usize] {
                    let w = Peer::Workload(table[k as usize].clone());
                    let x = Peer::External(*piece);
                    if !inbound.is_empty() {
                        external
                            .entry((x.clone(), w.clone()))
                            .or_default()
                            .union_with(&inbound);
                    }
                    if !outbound.is_empty() {
                        external.entry((w, x)).or_default().union_with(&outbound);
                    }
                }
            }
        }
        connections.extend(external.into_iter().map(|((src, dst), conns)| Connection {
            src,
            dst,
            conns,
        }));
        let mut from_controller: BTreeMap<u32, Conns> = BTreeMap::new();
        for (e, exposed) in self.exposed() {
            let conns = self
                .ingress_conns(End::IngressController, e)
                .intersection(&exposed);
            if conns.is_empty() {
                continue;
            }
            for &k in &names[e as usize] {
                from_controller.entry(k).or_default().union_with(&conns);
            }
        }
        connections.extend(from_controller.into_iter().map(|(k, conns)| Connection {
            src: Peer::IngressController,
            dst: Peer::Workload(table[k as usize].clone()),
            conns,
        }));
        connections.sort_unstable_by(|a, b| (&a.src, &a.dst).cmp(&(&b.src, &b.dst)));
        let mut networks = BTreeMap::new();
        for (e, ids) in names.iter().enumerate() {
            let network = self.network_name(e as u32);
            if network != Network::Pod {
                for &k in ids {
                    networks.insert(table[k as usize].clone(), network.clone());
                }
            }
        }
        Connectivity {
            connections,
            workloads: table.clone(),
            networks,
            diagnostics: self.c.diagnostics.clone(),
        }
    }
}

/// Whether a source with this default egress may reach destinations it does not list.
fn opens_out(out_default: &Option<Conns>) -> bool {
    out_default.as_ref().is_none_or(|c| !c.is_empty())
}

/// The sorted union of two sorted, disjoint lists.
fn merge_sorted(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if j == b.len() || (i < a.len() && a[i] < b[j]) {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests;
