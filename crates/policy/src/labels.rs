//! Every label key and annotation Accord reads or writes, in one place.
//!
//! The keys are those of the `k8s.otterize.com` operator so that clusters can switch between the
//! two without relabelling.

/// On every pod of a workload in scope: the workload's formatted identity (without kind).
pub const SERVICE: &str = "intents.otterize.com/service";
/// On every pod of a workload in scope: the kind of its root owner.
pub const OWNER_KIND: &str = "intents.otterize.com/owner-kind";
/// On client pods: the client's formatted identity (without kind).
pub const CLIENT: &str = "intents.otterize.com/client";
/// Prefix of the label a client pod carries for each workload (or kafka) target.
pub const ACCESS_PREFIX: &str = "intents.otterize.com/access-";
/// Prefix of the label a client pod carries for each Service target.
pub const SVC_ACCESS_PREFIX: &str = "intents.otterize.com/svc-access-";
/// On generated NetworkPolicies: the formatted identity of the workload they protect. Only
/// policies with this label are ever updated or deleted.
pub const NETWORK_POLICY: &str = "intents.otterize.com/network-policy";
/// On the default-deny policy a ProtectedService creates (which also carries
/// [`NETWORK_POLICY`] with the protected server's formatted identity).
pub const DEFAULT_DENY: &str = "intents.otterize.com/network-policy-service-default-deny";
/// On the `external-access-to-<Service>` policy that admits traffic from outside the cluster to
/// a protected server exposed by a NodePort or LoadBalancer Service or an Ingress: the formatted
/// identity of the server (which the policy's [`NETWORK_POLICY`] label carries too).
pub const EXTERNAL_TRAFFIC: &str = "intents.otterize.com/network-policy-external-traffic";
/// Pod annotation by which a server declares its callers, for callers that declare nothing
/// themselves: each caller is admitted and labelled as if its ClientIntents named the server
/// (see [`crate::generate::called_by`] for the forms the value may take).
pub const CALLED_BY: &str = "intents.otterize.com/called-by";
/// Pod annotation: `"true"` on the pods of a client whose ClientIntents were all deleted. Their
/// client and access labels are kept (see docs/otterize-compat.md) so that a client rolled back to
/// a version without intents keeps working.
pub const ALL_INTENTS_REMOVED: &str = "intents.otterize.com/all-intents-removed";

/// Whether a pod label key is one Accord manages (and may therefore remove).
pub fn is_managed_pod_label(key: &str) -> bool {
    key == SERVICE
        || key == OWNER_KIND
        || key == CLIENT
        || key.starts_with(ACCESS_PREFIX)
        || key.starts_with(SVC_ACCESS_PREFIX)
}

/// Whether a managed label is one a client carries (its client label and its access labels).
pub fn is_client_label(key: &str) -> bool {
    key == CLIENT || key.starts_with(ACCESS_PREFIX) || key.starts_with(SVC_ACCESS_PREFIX)
}

/// What Accord changes on one pod's labels: the one rule that the operator applies and that
/// `accord render --labels` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodLabelChange {
    /// Labels to set (absent or with another value).
    pub set: crate::objects::Labels,
    /// Managed labels to remove.
    pub remove: Vec<String>,
    /// The pod is no client (any more) but carries client labels: they are kept, and the pod
    /// is annotated [`ALL_INTENTS_REMOVED`].
    pub keeps_client_labels: bool,
}

impl PodLabelChange {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }
}

/// The change that gives a pod with labels `have` Accord's `want` labels among the managed
/// ones. A workload that is no client (no ClientIntents declares its calls, or they were
/// deleted) keeps the client and access labels it carries, as upstream does: a client rolled
/// back to a version without intents must keep reaching the servers it called. A client whose
/// intents drop a target loses that target's access label.
pub fn pod_label_change(
    have: &crate::objects::Labels,
    want: &crate::objects::Labels,
) -> PodLabelChange {
    let is_client = want.contains_key(CLIENT);
    let mut change = PodLabelChange {
        set: want
            .iter()
            .filter(|(k, v)| have.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        ..PodLabelChange::default()
    };
    for k in have.keys() {
        if !is_managed_pod_label(k) || want.contains_key(k) {
            continue;
        }
        if !is_client && is_client_label(k) {
            change.keeps_client_labels = true;
        } else {
            change.remove.push(k.clone());
        }
    }
    change
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> crate::objects::Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_former_client_keeps_its_client_labels_and_a_client_loses_a_dropped_target() {
        let access_a = format!("{ACCESS_PREFIX}a-ns-1");
        let access_b = format!("{ACCESS_PREFIX}b-ns-2");
        let have = labels(&[
            ("app", "web"),
            (SERVICE, "web-ns-3"),
            (CLIENT, "true"),
            (&access_a, "true"),
            (&access_b, "true"),
        ]);
        // Still a client, calling only a: b's label goes, nothing else.
        let want = labels(&[(SERVICE, "web-ns-3"), (CLIENT, "true"), (&access_a, "true")]);
        let c = pod_label_change(&have, &want);
        assert_eq!(c.remove, [access_b]);
        assert!(c.set.is_empty() && !c.keeps_client_labels);
        // No client any more: every client label is kept, and said so.
        let want = labels(&[(SERVICE, "web-ns-3"), (OWNER_KIND, "Deployment")]);
        let c = pod_label_change(&have, &want);
        assert!(c.remove.is_empty(), "{c:?}");
        assert!(c.keeps_client_labels);
        assert_eq!(c.set, labels(&[(OWNER_KIND, "Deployment")]));
        // A managed label that is no client label (an old identity) is removed either way.
        let have = labels(&[(SERVICE, "old-ns-1")]);
        let c = pod_label_change(&have, &labels(&[]));
        assert_eq!(c.remove, [SERVICE.to_string()]);
    }
}
