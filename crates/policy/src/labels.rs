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
