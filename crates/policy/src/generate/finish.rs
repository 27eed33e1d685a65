//! The end of generation: per-server builders become NetworkPolicies (one `-access` policy, or
//! separate `-ingress`/`-egress` ones), with the pod labels of every client and workload in scope.

use super::*;
use crate::identity::formatted;
use crate::labels;
use crate::objects::{
    LabelSelector, Labels, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule,
    NetworkPolicyPeer, NetworkPolicySpec, ObjectMeta, PolicyType,
};

impl<'a> Generator<'a> {
    pub(super) fn finish(mut self) -> Generated {
        let separate = self.opts.separate_policies;
        for (id, b) in std::mem::take(&mut self.builders) {
            let base = policy_base_name(&id);
            let ownership = formatted(&id.name, &id.namespace, id.kind.as_deref());
            let mut ingress: Vec<NetworkPolicyIngressRule> = b
                .ingress
                .iter()
                .map(|k| {
                    let pod_sel = match &k.client {
                        Some(client) => LabelSelector::labels([(labels::CLIENT, client.as_str())]),
                        None => LabelSelector::labels([(b.access_label.as_str(), "true")]),
                    };
                    NetworkPolicyIngressRule {
                        ports: k.ports.clone(),
                        from: vec![NetworkPolicyPeer {
                            pod_selector: Some(pod_sel),
                            namespace_selector: Some(namespace_selector(&k.namespace)),
                            ip_block: None,
                        }],
                    }
                })
                .collect();
            if b.dns_server {
                ingress.push(NetworkPolicyIngressRule {
                    ports: dns_ports(),
                    from: Vec::new(),
                });
            }
            let has_ingress = b.wants_ingress;
            let has_egress = !b.egress.is_empty();
            let make = |suffix: &str,
                        ingress: Option<Vec<NetworkPolicyIngressRule>>,
                        egress: Option<Vec<NetworkPolicyEgressRule>>| {
                let mut types = Vec::new();
                if ingress.is_some() {
                    types.push(PolicyType::Ingress);
                }
                if egress.is_some() {
                    types.push(PolicyType::Egress);
                }
                NetworkPolicy {
                    api_version: NetworkPolicy::api_version(),
                    kind: NetworkPolicy::kind(),
                    metadata: ObjectMeta {
                        name: object_name("", &base, &format!("-{suffix}")),
                        namespace: Some(id.namespace.clone()),
                        labels: Labels::from([(
                            labels::NETWORK_POLICY.to_string(),
                            ownership.clone(),
                        )]),
                        owner_references: b.owner.clone().into_iter().collect(),
                        ..Default::default()
                    },
                    spec: NetworkPolicySpec {
                        pod_selector: b.selector.clone(),
                        policy_types: types,
                        ingress,
                        egress,
                    },
                }
            };
            if separate {
                if has_ingress {
                    self.out.policies.push(make("ingress", Some(ingress), None));
                }
                if has_egress {
                    self.out
                        .policies
                        .push(make("egress", None, Some(b.egress.clone())));
                }
            } else if has_ingress || has_egress {
                let policy = make(
                    "access",
                    has_ingress.then_some(ingress),
                    has_egress.then(|| b.egress.clone()),
                );
                self.out.policies.push(policy);
            }
            if has_ingress {
                for name in b.exposed_by.iter().flatten() {
                    if let Some(service) =
                        self.services.get(&(id.namespace.as_str(), name.as_str()))
                    {
                        self.out
                            .policies
                            .extend(external_access_policy(service, &ownership));
                    }
                }
            }
        }
        for p in &self.inv.protected_services {
            self.out.policies.push(NetworkPolicy {
                api_version: NetworkPolicy::api_version(),
                kind: NetworkPolicy::kind(),
                metadata: ObjectMeta {
                    name: object_name(DEFAULT_DENY_PREFIX, &p.service_name, ""),
                    namespace: Some(p.namespace.clone()),
                    labels: Labels::from([
                        (labels::DEFAULT_DENY.to_string(), "true".to_string()),
                        (
                            labels::NETWORK_POLICY.to_string(),
                            formatted(&p.service_name, &p.namespace, None),
                        ),
                    ]),
                    ..Default::default()
                },
                spec: NetworkPolicySpec {
                    pod_selector: LabelSelector::labels([(
                        labels::SERVICE,
                        formatted(&p.service_name, &p.namespace, None),
                    )]),
                    policy_types: vec![PolicyType::Ingress],
                    ingress: Some(Vec::new()),
                    egress: None,
                },
            });
        }
        self.out.policies.sort_by(|a, b| {
            (a.namespace(), &a.metadata.name).cmp(&(b.namespace(), &b.metadata.name))
        });
        self.out
            .policies
            .dedup_by(|a, b| a.namespace() == b.namespace() && a.metadata.name == b.metadata.name);
        self.out.diagnostics.sort();
        self.out
    }
}
