//! Explanations: for one pair of peers, which policies isolate each side and which rules (and
//! admin policy decisions) admit what — the "why" behind an edge, asked for the few edges a user
//! looks at rather than computed for all.

use super::*;
use crate::identity::WorkloadId;
use crate::objects::IntOrString;
use std::collections::{BTreeMap, BTreeSet};

impl<'a> Evaluator<'a> {
    /// The endpoints whose pods are named `id` (a kind-less `id` matches any kind).
    fn endpoints_named(&self, id: &WorkloadId, naming: Naming) -> Vec<u32> {
        let mut out: Vec<u32> = self
            .inv
            .pods
            .iter()
            .enumerate()
            .filter(|(_, p)| id.matches(&naming.name(p)))
            .map(|(i, _)| self.c.pod_endpoint[i])
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    fn ends(&self, peer: &Peer, naming: Naming) -> Vec<End> {
        match peer {
            Peer::Workload(id) => self
                .endpoints_named(id, naming)
                .into_iter()
                .map(End::Endpoint)
                .collect(),
            Peer::External(r) => vec![End::Ip(r.first)],
            Peer::IngressController => vec![End::IngressController],
        }
    }

    /// The ports Ingress and Route objects expose on each endpoint: the target ports of the
    /// Service ports they name (all of the Service's ports when they name none).
    pub(super) fn exposed(&self) -> BTreeMap<u32, Conns> {
        let mut out: BTreeMap<u32, Conns> = BTreeMap::new();
        for b in &self.inv.ingress_backends {
            let Some(svc) = self.inv.service(&b.namespace, &b.service) else {
                continue;
            };
            let Some(selector) = &svc.selector else {
                continue;
            };
            let ports: Vec<_> = svc
                .ports
                .iter()
                .filter(|sp| match &b.port {
                    None => true,
                    Some(IntOrString::Int(n)) => {
                        sp.port == *n || sp.effective_target_port() == IntOrString::Int(*n)
                    }
                    Some(IntOrString::String(name)) => {
                        sp.name.as_deref() == Some(name.as_str())
                            || sp.effective_target_port() == IntOrString::String(name.clone())
                    }
                })
                .collect();
            for (e, endpoint) in self.c.endpoints.iter().enumerate() {
                if self.c.namespace_names[endpoint.ns as usize] != b.namespace
                    || !selector
                        .iter()
                        .all(|(k, v)| endpoint.labels.get(k) == Some(v))
                {
                    continue;
                }
                let acc = out.entry(e as u32).or_default();
                for sp in &ports {
                    match sp.effective_target_port() {
                        IntOrString::Int(n) => {
                            if let Some(p) = u16::try_from(n).ok().filter(|&p| p >= 1) {
                                acc.add(sp.protocol, p, p);
                            }
                        }
                        IntOrString::String(name) => {
                            for (protocol, p) in endpoint.named_ports(&name, Some(sp.protocol)) {
                                acc.add(protocol, p, p);
                            }
                        }
                    }
                }
            }
        }
        out
    }

    fn explain_side(
        &self,
        direction: Direction,
        selected: u32,
        other: End,
        out: &mut SideExplanation,
    ) {
        let policies = match direction {
            Direction::Ingress => &self.c.ingress_of[selected as usize],
            Direction::Egress => &self.c.egress_of[selected as usize],
        };
        let target = self.target(direction, selected, other);
        for &p in policies {
            out.isolated_by.push(self.policy_ref(p));
            for (index, rule) in self.c.policies[p as usize]
                .rules(direction)
                .into_iter()
                .flatten()
                .enumerate()
            {
                if !Self::hits(&rule.peers, other) {
                    continue;
                }
                out.admitted_by.push(Admission {
                    rule: RuleRef {
                        policy: self.policy_ref(p),
                        direction,
                        index,
                    },
                    conns: rule.ports.resolve(target),
                });
            }
        }
        out.allowed = self.side_conns(direction, selected, other, Some(&mut out.admin));
    }

    /// Explain what `src` may open to `dst`. Workloads are named by `naming` (a kind-less name
    /// matches any kind); an external peer stands for its first address. Returns `None` when a
    /// workload has no pods. When a workload's pods differ, the parts of the explanation are
    /// merged over every pair of pods.
    pub fn explain(&self, src: &Peer, dst: &Peer, naming: Naming) -> Option<Explanation> {
        let srcs = self.ends(src, naming);
        let dsts = self.ends(dst, naming);
        if srcs.is_empty() || dsts.is_empty() {
            return None;
        }
        let mut allowed = Conns::none();
        let mut egress_parts: Vec<SideExplanation> = Vec::new();
        let mut ingress_parts: Vec<SideExplanation> = Vec::new();
        for &s in &srcs {
            for &d in &dsts {
                // Only pairs with a pod at one end are connections, and pods in different
                // primary networks cannot reach each other at all.
                if !matches!((s, d), (End::Endpoint(_), _) | (_, End::Endpoint(_))) {
                    continue;
                }
                if let (End::Endpoint(se), End::Endpoint(de)) = (s, d)
                    && self.network(se) != self.network(de)
                {
                    continue;
                }
                let mut egress = SideExplanation::default();
                match s {
                    End::Endpoint(se) => self.explain_side(Direction::Egress, se, d, &mut egress),
                    // The ingress controller only opens the ports Ingress and Route objects
                    // expose.
                    End::IngressController => {
                        egress.allowed = match d {
                            End::Endpoint(de) => self.exposed().remove(&de).unwrap_or_default(),
                            _ => Conns::none(),
                        }
                    }
                    End::Ip(_) | End::Unlisted => egress.allowed = Conns::all(),
                }
                let mut ingress = SideExplanation::default();
                match d {
                    End::Endpoint(de) => self.explain_side(Direction::Ingress, de, s, &mut ingress),
                    End::Ip(_) | End::IngressController | End::Unlisted => {
                        ingress.allowed = Conns::all()
                    }
                }
                allowed.union_with(&egress.allowed.intersection(&ingress.allowed));
                egress_parts.push(egress);
                ingress_parts.push(ingress);
            }
        }
        Some(Explanation {
            src: src.clone(),
            dst: dst.clone(),
            allowed,
            egress: merge_sides(egress_parts),
            ingress: merge_sides(ingress_parts),
        })
    }
}

fn merge_sides(parts: Vec<SideExplanation>) -> SideExplanation {
    let mut isolated: BTreeSet<PolicyRef> = BTreeSet::new();
    let mut admitted: BTreeMap<RuleRef, Conns> = BTreeMap::new();
    let mut allowed = Conns::none();
    let mut admin: Vec<AdminDecision> = Vec::new();
    for p in parts {
        for d in p.admin {
            match admin.iter_mut().find(|a| {
                (&a.policy, a.baseline, a.index, a.action)
                    == (&d.policy, d.baseline, d.index, d.action)
            }) {
                Some(a) => a.conns.union_with(&d.conns),
                None => admin.push(d),
            }
        }
        isolated.extend(p.isolated_by);
        for a in p.admitted_by {
            admitted.entry(a.rule).or_default().union_with(&a.conns);
        }
        allowed.union_with(&p.allowed);
    }
    SideExplanation {
        isolated_by: isolated.into_iter().collect(),
        admin,
        admitted_by: admitted
            .into_iter()
            .map(|(rule, conns)| Admission { rule, conns })
            .collect(),
        allowed,
    }
}
