//! Property: rendered policies parse back to the same policies.

use accord_policy::objects::{
    IntOrString, IpBlock, LabelSelector, LabelSelectorRequirement, Labels, NetworkPolicy,
    NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec, ObjectMeta, PolicyType, Protocol, SelectorOperator,
};
use accord_policy::{Source, load, render};
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,10}[a-z0-9]"
}

fn labels() -> impl Strategy<Value = Labels> {
    // Values that YAML could read as another type ("true", "1", "null") must survive too.
    let value = prop_oneof![
        "[a-z0-9]{0,6}",
        Just("true".to_string()),
        Just("1".to_string()),
        Just("null".to_string())
    ];
    prop::collection::btree_map("([a-z]{1,5}\\.io/)?[a-z]{1,8}", value, 0..3)
}

fn selector() -> impl Strategy<Value = LabelSelector> {
    let op = prop_oneof![
        Just(SelectorOperator::In),
        Just(SelectorOperator::NotIn),
        Just(SelectorOperator::Exists),
        Just(SelectorOperator::DoesNotExist)
    ];
    let req = (
        "[a-z]{1,6}",
        op,
        prop::collection::vec("[a-z0-9]{1,4}", 0..3),
    )
        // Only what the API server accepts: In and NotIn with values, the others without.
        .prop_map(|(key, operator, mut values)| {
            match operator {
                SelectorOperator::In | SelectorOperator::NotIn if values.is_empty() => {
                    values.push("v".into())
                }
                SelectorOperator::Exists | SelectorOperator::DoesNotExist => values.clear(),
                _ => {}
            }
            LabelSelectorRequirement {
                key,
                operator,
                values,
            }
        });
    (labels(), prop::collection::vec(req, 0..2)).prop_map(|(match_labels, match_expressions)| {
        LabelSelector {
            match_labels,
            match_expressions,
        }
    })
}

fn port() -> impl Strategy<Value = NetworkPolicyPort> {
    let p = prop_oneof![
        (1..65535i32).prop_map(IntOrString::Int),
        "[a-z]{1,8}".prop_map(IntOrString::String)
    ];
    let proto = prop_oneof![
        Just(None),
        Just(Some(Protocol::Tcp)),
        Just(Some(Protocol::Udp)),
        Just(Some(Protocol::Sctp))
    ];
    (prop::option::of(p), prop::option::of(1..65535i32), proto).prop_map(
        |(port, end_port, protocol)| NetworkPolicyPort {
            // endPort only after a numeric port, and not below it (as the API server requires).
            end_port: match (&port, end_port) {
                (Some(IntOrString::Int(p)), Some(e)) => Some(e.max(*p)),
                _ => None,
            },
            port,
            protocol,
        },
    )
}

fn peer() -> impl Strategy<Value = NetworkPolicyPeer> {
    let block = (
        (0u8..=255, 0u8..=255, 0u8..=32),
        prop::collection::vec((0u8..=255, 24u8..=32), 0..2),
    )
        .prop_map(|((a, b, n), ex)| IpBlock {
            cidr: format!("{a}.{b}.0.0/{n}"),
            // Each exception within the block, as the API server requires: the third octet
            // keeps only the bits the block's prefix leaves free, the prefix is no shorter.
            except: ex
                .into_iter()
                .map(|(c, m)| {
                    let free = 24u8.saturating_sub(n.max(16)) as u32;
                    let c = u32::from(c) & ((1u32 << free) - 1);
                    format!("{a}.{b}.{c}.0/{}", m.max(n))
                })
                .collect(),
        });
    (
        prop::option::of(selector()),
        prop::option::of(selector()),
        prop::option::of(block),
    )
        .prop_map(
            // An ipBlock stands alone in a peer (the API server refuses it with selectors).
            |(pod_selector, namespace_selector, ip_block)| match ip_block {
                Some(block) => NetworkPolicyPeer {
                    pod_selector: None,
                    namespace_selector: None,
                    ip_block: Some(block),
                },
                None => NetworkPolicyPeer {
                    pod_selector,
                    namespace_selector,
                    ip_block: None,
                },
            },
        )
}

fn policy() -> impl Strategy<Value = NetworkPolicy> {
    let ingress = prop::collection::vec(
        (
            prop::collection::vec(port(), 0..3),
            prop::collection::vec(peer(), 0..3),
        )
            .prop_map(|(ports, from)| NetworkPolicyIngressRule { ports, from }),
        0..3,
    );
    let egress = prop::collection::vec(
        (
            prop::collection::vec(port(), 0..3),
            prop::collection::vec(peer(), 0..3),
        )
            .prop_map(|(ports, to)| NetworkPolicyEgressRule { ports, to }),
        0..3,
    );
    let types = prop_oneof![
        Just(vec![]),
        Just(vec![PolicyType::Ingress]),
        Just(vec![PolicyType::Egress]),
        Just(vec![PolicyType::Ingress, PolicyType::Egress])
    ];
    (
        name(),
        name(),
        labels(),
        selector(),
        types,
        prop::option::of(ingress),
        prop::option::of(egress),
    )
        .prop_map(
            |(name, namespace, labels, pod_selector, policy_types, ingress, egress)| {
                NetworkPolicy {
                    api_version: NetworkPolicy::api_version(),
                    kind: NetworkPolicy::kind(),
                    metadata: ObjectMeta {
                        name,
                        namespace: Some(namespace),
                        labels,
                        ..Default::default()
                    },
                    spec: NetworkPolicySpec {
                        pod_selector,
                        policy_types,
                        ingress,
                        egress,
                    },
                }
            },
        )
}

proptest! {
    #[test]
    fn rendered_yaml_parses_back_to_the_same_policies(policies in prop::collection::vec(policy(), 0..4)) {
        let text = render::policies_yaml(&policies).unwrap();
        let (inv, diags) = load(&[Source::new("rendered.yaml", text.clone())]);
        prop_assert!(diags.is_empty(), "{diags:?}\n{text}");
        let back: Vec<NetworkPolicy> = inv.network_policies.into_iter().map(|p| p.policy).collect();
        prop_assert_eq!(back, policies);
    }

    #[test]
    fn rendered_json_parses_back_to_the_same_policies(policies in prop::collection::vec(policy(), 0..4)) {
        let text = render::policies_json(&policies).unwrap();
        let (inv, diags) = load(&[Source::new("rendered.json", text)]);
        prop_assert!(diags.is_empty(), "{diags:?}");
        let back: Vec<NetworkPolicy> = inv.network_policies.into_iter().map(|p| p.policy).collect();
        prop_assert_eq!(back, policies);
    }
}
