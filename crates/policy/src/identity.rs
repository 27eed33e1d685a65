//! Workload identities: how a pod is named, and how names are formatted into label keys.
//!
//! A pod's identity is its root owner (Pod → ReplicaSet → Deployment, Job → CronJob, …), unless
//! the pod carries an override annotation; dots in names become underscores. Label keys and
//! values embed a *formatted* identity: truncated parts plus a short MD5 so they stay within
//! Kubernetes' 63-character limit and remain unique.

use std::fmt;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::inventory::Pod;
use crate::objects::ObjectMeta;

/// Annotation that names a pod's workload, overriding the owner chain.
pub const WORKLOAD_NAME_ANNOTATION: &str = "intents.otterize.com/workload-name";
/// The deprecated form of [`WORKLOAD_NAME_ANNOTATION`].
pub const SERVICE_NAME_ANNOTATION: &str = "intents.otterize.com/service-name";

/// A workload: namespace, name and kind. A `kind` of `None` is a "legacy" identity, named by
/// annotation or declared in intents without a kind; it matches workloads of any kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WorkloadId {
    pub namespace: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

impl WorkloadId {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>, kind: Option<&str>) -> Self {
        WorkloadId {
            namespace: namespace.into(),
            name: name.into(),
            kind: kind.map(str::to_string),
        }
    }

    /// Whether `other` (a resolved identity) is the workload this one designates. A kind-less
    /// identity matches any kind.
    pub fn matches(&self, other: &WorkloadId) -> bool {
        self.namespace == other.namespace
            && self.name == other.name
            && (self.kind.is_none() || self.kind == other.kind)
    }

    /// Parse `ns/name`, `ns/name[Kind]` or `name` (in `default_namespace`).
    pub fn parse(text: &str, default_namespace: &str) -> Option<WorkloadId> {
        let text = text.trim();
        let (rest, kind) = match text.strip_suffix(']') {
            Some(r) => {
                let (rest, kind) = r.rsplit_once('[')?;
                (rest, Some(kind))
            }
            None => (text, None),
        };
        let (ns, name) = match rest.split_once('/') {
            Some((ns, name)) => (ns, name),
            None => (default_namespace, rest),
        };
        if ns.is_empty() || name.is_empty() || name.contains('/') || kind == Some("") {
            return None;
        }
        Some(WorkloadId::new(ns, name, kind))
    }
}

impl fmt::Display for WorkloadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)?;
        if let Some(kind) = &self.kind {
            write!(f, "[{kind}]")?;
        }
        Ok(())
    }
}

/// Names may not contain dots inside label values; they become underscores.
pub fn normalize_name(name: &str) -> String {
    name.replace('.', "_")
}

/// Kinds that are the top of almost every owner chain. When one is referenced but its object is
/// not known (not read yet, not readable, not in the manifests), the reference stands in for it:
/// the pod is named after it, never after the ReplicaSet or Job below it, so an identity does not
/// flap while watches fill in and is the same whatever a reader could see.
pub const ROOT_KINDS: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "CronJob",
    "ReplicationController",
];

/// Resolve a pod's identity: the one owner-chain walk of Accord (the operator, the dashboard
/// and the CLI all name workloads through it). `owner` looks up a workload's metadata by
/// (namespace, kind, name); the walk stops at the last owner that could be found, or at a
/// referenced root kind ([`ROOT_KINDS`]) that could not.
pub fn resolve<'a>(
    pod: &'a Pod,
    owner: impl Fn(&str, &str, &str) -> Option<&'a ObjectMeta>,
) -> WorkloadId {
    let ns = pod.namespace();
    for key in [WORKLOAD_NAME_ANNOTATION, SERVICE_NAME_ANNOTATION] {
        if let Some(name) = pod.metadata.annotations.get(key).filter(|n| !n.is_empty()) {
            return WorkloadId::new(ns, normalize_name(name), None);
        }
    }
    let mut name = pod.metadata.name.as_str();
    let mut kind = "Pod";
    let mut meta = &pod.metadata;
    // Owner chains are short; the bound protects against cycles in hand-written manifests.
    for _ in 0..16 {
        let Some(reference) = meta.owner_references.first() else {
            break;
        };
        let Some(next) = owner(ns, &reference.kind, &reference.name) else {
            if ROOT_KINDS.contains(&reference.kind.as_str()) {
                name = &reference.name;
                kind = &reference.kind;
            }
            break;
        };
        name = &next.name;
        kind = &reference.kind;
        meta = next;
    }
    WorkloadId::new(ns, normalize_name(name), Some(kind))
}

fn md5_prefix(s: &str) -> String {
    md5_hex(s, 6)
}

/// The first `n` (even, at most 32) hex characters of the MD5 of `s`.
pub fn md5_hex(s: &str, n: usize) -> String {
    let digest = Md5::digest(s.as_bytes());
    digest
        .iter()
        .take(n / 2)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The formatted identity used in label keys and values.
///
/// Without a kind: `trunc(name,20)-trunc(ns,20)-md5(name-ns)[:6]`; with a kind:
/// `trunc(name,19)-trunc(ns,19)-lower(trunc(kind,5))-md5(name-ns-Kind)[:6]`.
pub fn formatted(name: &str, namespace: &str, kind: Option<&str>) -> String {
    match kind {
        None => format!(
            "{}-{}-{}",
            truncate(name, 20),
            truncate(namespace, 20),
            md5_prefix(&format!("{name}-{namespace}"))
        ),
        Some(kind) => format!(
            "{}-{}-{}-{}",
            truncate(name, 19),
            truncate(namespace, 19),
            truncate(kind, 5).to_lowercase(),
            md5_prefix(&format!("{name}-{namespace}-{kind}"))
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_identities_like_the_upstream_operator() {
        let cases = [
            (
                "test-server",
                "test-namespace",
                None,
                "test-server-test-namespace-8ddecb",
            ),
            (
                "client",
                "otterize-tutorial-npol",
                None,
                "client-otterize-tutorial-np-699302",
            ),
            (
                "server",
                "otterize-tutorial-npol",
                None,
                "server-otterize-tutorial-np-7e16db",
            ),
            (
                "server",
                "otterize-tutorial-npol",
                Some("Service"),
                "server-otterize-tutorial-n-servi-7dac8c",
            ),
        ];
        for (name, ns, kind, want) in cases {
            assert_eq!(formatted(name, ns, kind), want, "{name} {ns} {kind:?}");
        }
    }

    #[test]
    fn parses_workload_names_with_and_without_kind() {
        assert_eq!(
            WorkloadId::parse("shop/cart[Deployment]", "default"),
            Some(WorkloadId::new("shop", "cart", Some("Deployment")))
        );
        assert_eq!(
            WorkloadId::parse("shop/cart", "default"),
            Some(WorkloadId::new("shop", "cart", None))
        );
        assert_eq!(
            WorkloadId::parse("cart", "default"),
            Some(WorkloadId::new("default", "cart", None))
        );
        assert_eq!(WorkloadId::parse("a/b/c", "default"), None);
        assert_eq!(WorkloadId::parse("shop/", "default"), None);
    }

    #[test]
    fn a_root_owner_not_known_stands_in_by_its_reference() {
        use crate::objects::OwnerReference;
        let owned_by = |kind: &str, name: &str| ObjectMeta {
            name: format!("{name}-x"),
            namespace: Some("ns".into()),
            owner_references: vec![OwnerReference {
                kind: kind.into(),
                name: name.into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let rs = ObjectMeta {
            name: "web-abc".into(),
            ..owned_by("Deployment", "web")
        };
        let pod = Pod {
            metadata: owned_by("ReplicaSet", "web-abc"),
            ..Default::default()
        };
        // The ReplicaSet is known, its Deployment is not: named after the Deployment.
        let id = resolve(&pod, |_, kind, name| {
            (kind == "ReplicaSet" && name == "web-abc").then_some(&rs)
        });
        assert_eq!(id, WorkloadId::new("ns", "web", Some("Deployment")));
        // An unknown owner of another kind ends the walk at the last known object.
        let job_pod = Pod {
            metadata: owned_by("Job", "batch-1"),
            ..Default::default()
        };
        let id = resolve(&job_pod, |_, _, _| None);
        assert_eq!(id, WorkloadId::new("ns", "batch-1-x", Some("Pod")));
    }

    #[test]
    fn kindless_identity_matches_any_kind() {
        let legacy = WorkloadId::new("ns", "api", None);
        assert!(legacy.matches(&WorkloadId::new("ns", "api", Some("Deployment"))));
        assert!(
            !WorkloadId::new("ns", "api", Some("StatefulSet")).matches(&WorkloadId::new(
                "ns",
                "api",
                Some("Deployment")
            ))
        );
        assert!(!legacy.matches(&WorkloadId::new("other", "api", Some("Deployment"))));
    }
}
