//! The in-memory index of the cluster's (or a manifest tree's) objects, keyed by (kind,
//! namespace, name).
//!
//! Watch events and manifest reads feed it synchronously (`apply`, `delete`, `reset` of one
//! kind, as linkerd's policy controller does). The dashboard's sync pass takes a snapshot and
//! builds the core [`Inventory`] from it; the operator reads the keys changed since it last
//! looked ([`Index::take_changed`]) and updates its planner from their new versions. Objects are
//! kept as JSON, so a malformed object becomes a diagnostic of the core parser, never an error
//! here.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use accord_policy::{Diagnostic, Inventory, Origin, load};
use serde_json::Value;

/// Kind, namespace (empty for cluster-scoped objects) and name.
pub type ObjectKey = (String, String, String);

/// One object and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub origin: Origin,
    pub object: Value,
}

/// Cloning an index (a sync pass's snapshot) shares its entries.
#[derive(Clone, Debug, Default)]
pub struct Index {
    objects: BTreeMap<ObjectKey, Arc<Entry>>,
    /// Keys changed since the last [`Index::take_changed`].
    changed: BTreeSet<ObjectKey>,
    /// Bumped on every change, so a sync loop can tell whether anything happened.
    version: u64,
    /// Pods' addresses, kept beside the objects (whose status is dropped): an address that
    /// changes is no change of the object, so it never starts a sync pass nor reaches the
    /// operator's planner, but it feeds the observed traffic's IP history.
    pod_addresses: Arc<BTreeMap<(String, String), PodAddress>>,
    /// Pods deleted since the last [`Index::take_ended_pods`], with when.
    ended_pods: Vec<PodAddress>,
    /// Bumped when `pod_addresses` or `ended_pods` change.
    address_version: u64,
    /// Whether pods' addresses are kept (by whoever takes the ended ones: the dashboard with
    /// a cluster source; never the operator).
    track_addresses: bool,
}

/// What the IP history needs of one pod: its addresses and tenure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodAddress {
    pub namespace: String,
    pub name: String,
    /// `status.podIPs` (and `status.podIP`), empty until the pod has one.
    pub ips: Vec<String>,
    pub host_network: bool,
    /// `metadata.creationTimestamp` (RFC 3339).
    pub created: Option<String>,
    /// `metadata.deletionTimestamp`, or when the deletion was seen (RFC 3339).
    pub deleted: Option<String>,
}

impl PodAddress {
    fn of(object: &Value) -> Option<PodAddress> {
        if object.get("kind").and_then(Value::as_str) != Some("Pod") {
            return None;
        }
        let meta = object.get("metadata")?;
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let status = object.get("status");
        let mut ips: Vec<String> = status
            .and_then(|s| s.get("podIPs"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|x| text(x.get("ip")))
            .collect();
        if let Some(ip) = text(status.and_then(|s| s.get("podIP")))
            && !ips.contains(&ip)
        {
            ips.push(ip);
        }
        Some(PodAddress {
            namespace: text(meta.get("namespace")).unwrap_or_else(|| "default".to_string()),
            name: text(meta.get("name"))?,
            ips,
            host_network: object
                .pointer("/spec/hostNetwork")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            created: text(meta.get("creationTimestamp")),
            deleted: text(meta.get("deletionTimestamp")),
        })
    }

    /// The pod as the IP history reads Pod objects.
    pub fn to_pod_object(&self) -> Value {
        let ips: Vec<Value> = self
            .ips
            .iter()
            .map(|ip| serde_json::json!({ "ip": ip }))
            .collect();
        serde_json::json!({
            "kind": "Pod",
            "metadata": {
                "namespace": self.namespace,
                "name": self.name,
                "creationTimestamp": self.created,
                "deletionTimestamp": self.deleted,
            },
            "spec": { "hostNetwork": self.host_network },
            "status": { "podIPs": ips },
        })
    }
}

/// The key of an object: kind, namespace (empty when absent) and name.
pub fn key_of(object: &Value) -> Option<ObjectKey> {
    let kind = object.get("kind")?.as_str()?;
    let meta = object.get("metadata")?;
    let name = meta.get("name")?.as_str()?;
    let ns = meta.get("namespace").and_then(Value::as_str).unwrap_or("");
    Some((kind.to_string(), ns.to_string(), name.to_string()))
}

/// Drop fields that change all the time without meaning anything to Accord, so they don't
/// count as changes. A ClientIntents keeps its status, generation and resourceVersion: the
/// operator reports on them (`observedGeneration`) and writes its finalizer against them.
fn strip_noise(object: &mut Value) {
    let intents = object.get("kind").and_then(Value::as_str) == Some("ClientIntents");
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        if !intents {
            meta.remove("resourceVersion");
            meta.remove("generation");
        }
        if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
    if !intents && let Some(o) = object.as_object_mut() {
        o.remove("status");
    }
}

impl Index {
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Add or replace an object. Objects without kind or name are ignored, and so is a new
    /// version that differs only in noise (a resourceVersion bump, managed fields).
    pub fn apply(&mut self, origin: Origin, mut object: Value) {
        if self.track_addresses
            && let Some(address) = PodAddress::of(&object)
        {
            let key = (address.namespace.clone(), address.name.clone());
            if self.pod_addresses.get(&key) != Some(&address) {
                Arc::make_mut(&mut self.pod_addresses).insert(key, address);
                self.address_version += 1;
            }
        }
        strip_noise(&mut object);
        let Some(key) = key_of(&object) else { return };
        let entry = Entry { origin, object };
        if self.objects.get(&key).is_some_and(|e| **e == entry) {
            return;
        }
        self.objects.insert(key.clone(), Arc::new(entry));
        self.changed.insert(key);
        self.version += 1;
    }

    /// Apply one change of the watch set.
    pub fn apply_change(&mut self, change: super::Change) {
        match change {
            super::Change::Reset {
                kind,
                scope,
                objects,
            } => self.reset(&kind, scope.as_deref(), objects),
            super::Change::Apply { origin, object } => self.apply(origin, object),
            super::Change::Delete {
                kind,
                namespace,
                name,
            } => self.delete(&kind, &namespace, &name),
            super::Change::Synced | super::Change::Health { .. } => {}
        }
    }

    pub fn delete(&mut self, kind: &str, namespace: &str, name: &str) {
        let key = (kind.to_string(), namespace.to_string(), name.to_string());
        if self.objects.remove(&key).is_some() {
            self.changed.insert(key);
            self.version += 1;
        }
        if kind == "Pod"
            && let Some(mut address) = Arc::make_mut(&mut self.pod_addresses)
                .remove(&(namespace.to_string(), name.to_string()))
        {
            // The pod's tenure of its addresses ends now (or when its deletion began).
            if address.deleted.is_none() {
                address.deleted = Some(crate::serve::now_rfc3339());
            }
            self.ended_pods.push(address);
            self.address_version += 1;
        }
    }

    /// Keep pods' addresses from now on; the caller takes the ended ones
    /// ([`Index::take_ended_pods`]).
    pub fn track_pod_addresses(&mut self) {
        self.track_addresses = true;
    }

    /// Changes of pods' addresses (and deletions) bump this; objects' changes do not.
    pub fn address_version(&self) -> u64 {
        self.address_version
    }

    /// Every existing pod's addresses (shared, not copied).
    pub fn pod_addresses(&self) -> Arc<BTreeMap<(String, String), PodAddress>> {
        self.pod_addresses.clone()
    }

    /// The pods deleted since the last call, with their deletion times.
    pub fn take_ended_pods(&mut self) -> Vec<PodAddress> {
        std::mem::take(&mut self.ended_pods)
    }

    /// Replace every object of `kind` with `objects` (a watch's initial list, or its list
    /// after a reconnect: what was not listed again is gone). With a `scope`, only the objects
    /// in that namespace are replaced (a cluster-scoped kind watched for one namespace: the
    /// object named like it).
    pub fn reset(&mut self, kind: &str, scope: Option<&str>, objects: Vec<(Origin, Value)>) {
        let in_scope = |k: &ObjectKey| match scope {
            None => true,
            Some(ns) => k.1 == ns || (k.1.is_empty() && k.2 == ns),
        };
        let gone: Vec<ObjectKey> = self
            .objects
            .keys()
            .filter(|k| k.0 == kind && in_scope(k))
            .cloned()
            .collect();
        let mut fresh = BTreeSet::new();
        for (origin, object) in objects {
            if let Some(k) = key_of(&object) {
                fresh.insert(k);
            }
            self.apply(origin, object);
        }
        for k in gone {
            if !fresh.contains(&k) {
                self.delete(&k.0, &k.1, &k.2);
            }
        }
    }

    /// Replace everything (a manifest tree read again).
    pub fn reset_all(&mut self, objects: Vec<(Origin, Value)>) {
        let mut fresh = BTreeSet::new();
        for (origin, object) in objects {
            if let Some(k) = key_of(&object) {
                fresh.insert(k);
            }
            self.apply(origin, object);
        }
        let gone: Vec<ObjectKey> = self
            .objects
            .keys()
            .filter(|k| !fresh.contains(*k))
            .cloned()
            .collect();
        for k in gone {
            self.delete(&k.0, &k.1, &k.2);
        }
    }

    /// One object, by kind, namespace and name.
    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&(kind.to_string(), namespace.to_string(), name.to_string()))
            .map(|e| &e.object)
    }

    /// The keys changed since the last call.
    pub fn take_changed(&mut self) -> BTreeSet<ObjectKey> {
        std::mem::take(&mut self.changed)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&ObjectKey, &Entry)> {
        self.objects.iter().map(|(k, e)| (k, &**e))
    }

    /// The core inventory of every object, with the parser's diagnostics.
    pub fn inventory(&self) -> (Inventory, Vec<Diagnostic>) {
        let mut inv = Inventory::default();
        let mut diags = Vec::new();
        for e in self.objects.values() {
            load::add_object(&mut inv, &e.origin, &e.object, None, &mut diags);
        }
        inv.finish();
        (inv, diags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cm(ns: &str, name: &str, v: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, "resourceVersion": v}})
    }

    #[test]
    fn apply_ignores_noise_and_reset_deletes_what_is_gone() {
        let mut idx = Index::default();
        idx.apply(Origin::default(), cm("a", "x", "1"));
        idx.apply(Origin::default(), cm("a", "y", "1"));
        let v = idx.version();
        idx.apply(Origin::default(), cm("a", "x", "2"));
        assert_eq!(idx.version(), v, "a resourceVersion bump is not a change");
        idx.take_changed();
        idx.reset(
            "ConfigMap",
            None,
            vec![(Origin::default(), cm("a", "x", "3"))],
        );
        assert_eq!(idx.len(), 1);
        let changed = idx.take_changed();
        assert!(changed.contains(&("ConfigMap".into(), "a".into(), "y".into())));
        assert_eq!(changed.len(), 1);
    }

    #[test]
    fn a_scoped_reset_replaces_only_that_namespace() {
        let mut idx = Index::default();
        idx.apply(Origin::default(), cm("a", "x", "1"));
        idx.apply(Origin::default(), cm("b", "y", "1"));
        idx.apply(
            Origin::default(),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}),
        );
        idx.apply(
            Origin::default(),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "b"}}),
        );
        idx.take_changed();
        idx.reset("ConfigMap", Some("a"), vec![]);
        idx.reset("Namespace", Some("a"), vec![]);
        let changed = idx.take_changed();
        let expected: BTreeSet<ObjectKey> = [
            ("ConfigMap".into(), "a".into(), "x".into()),
            ("Namespace".into(), "".into(), "a".into()),
        ]
        .into();
        assert_eq!(changed, expected);
        assert!(idx.get("ConfigMap", "b", "y").is_some());
        assert!(idx.get("Namespace", "", "b").is_some());
    }

    #[test]
    fn client_intents_keep_what_the_operator_reports_on() {
        let mut idx = Index::default();
        let doc = json!({"apiVersion": "k8s.otterize.com/v2alpha1", "kind": "ClientIntents",
            "metadata": {"name": "c", "namespace": "a", "resourceVersion": "7", "generation": 2,
                         "managedFields": [{}]},
            "status": {"observedGeneration": 1}});
        idx.apply(Origin::default(), doc);
        let kept = idx.get("ClientIntents", "a", "c").expect("indexed");
        assert_eq!(kept.pointer("/metadata/resourceVersion"), Some(&json!("7")));
        assert_eq!(kept.pointer("/metadata/generation"), Some(&json!(2)));
        assert_eq!(kept.pointer("/status/observedGeneration"), Some(&json!(1)));
        assert!(kept.pointer("/metadata/managedFields").is_none());
    }

    #[test]
    fn malformed_objects_become_diagnostics_not_errors() {
        let mut idx = Index::default();
        idx.apply(
            Origin::new("cluster", 0),
            json!({"apiVersion": "k8s.otterize.com/v2beta1", "kind": "ClientIntents",
                   "metadata": {"name": "bad", "namespace": "a"}, "spec": {"workload": 7}}),
        );
        let (inv, diags) = idx.inventory();
        assert!(inv.intents.is_empty());
        assert!(diags.iter().any(|d| d.is_error()), "{diags:?}");
    }

    fn pod(name: &str, ip: Option<&str>, rv: &str) -> Value {
        let mut p = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "shop", "resourceVersion": rv,
                         "creationTimestamp": "2026-11-30T05:00:00Z",
                         "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Pending"}
        });
        if let Some(ip) = ip {
            p["status"] = json!({"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]});
        }
        p
    }

    #[test]
    fn pod_addresses_are_kept_beside_objects_and_their_churn_changes_nothing() {
        let mut untracked = Index::default();
        untracked.apply(Origin::default(), pod("web-1", Some("10.0.0.7"), "1"));
        untracked.delete("Pod", "shop", "web-1");
        assert!(
            untracked.take_ended_pods().is_empty(),
            "the operator keeps none"
        );

        let mut idx = Index::default();
        idx.track_pod_addresses();
        idx.apply(Origin::default(), pod("web-1", None, "1"));
        assert_eq!(idx.take_changed().len(), 1);
        let (version, addresses) = (idx.version(), idx.address_version());
        assert!(
            idx.pod_addresses()[&("shop".into(), "web-1".into())]
                .ips
                .is_empty()
        );

        // The pod gets its address, its phase moves: no change of the object, no pass, nothing
        // for the operator; the address is known.
        idx.apply(Origin::default(), pod("web-1", Some("10.0.0.7"), "2"));
        assert_eq!(idx.version(), version);
        assert!(idx.take_changed().is_empty());
        assert!(idx.address_version() > addresses);
        let a = &idx.pod_addresses()[&("shop".into(), "web-1".into())];
        assert_eq!(a.ips, vec!["10.0.0.7".to_string()]);
        assert_eq!(a.created.as_deref(), Some("2026-11-30T05:00:00Z"));
        // The object itself still has no status.
        assert!(
            idx.get("Pod", "shop", "web-1")
                .unwrap()
                .get("status")
                .is_none()
        );
        // The same address again is nothing new.
        let seen = idx.address_version();
        idx.apply(Origin::default(), pod("web-1", Some("10.0.0.7"), "3"));
        assert_eq!(idx.address_version(), seen);

        // Deleted: the tenure ends, with a time.
        idx.delete("Pod", "shop", "web-1");
        assert!(idx.pod_addresses().is_empty());
        let ended = idx.take_ended_pods();
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].ips, vec!["10.0.0.7".to_string()]);
        assert!(ended[0].deleted.is_some());
        assert!(idx.take_ended_pods().is_empty());

        // A reset that no longer lists a pod ends it too.
        idx.apply(Origin::default(), pod("web-2", Some("10.0.0.8"), "4"));
        idx.reset("Pod", None, vec![]);
        assert_eq!(idx.take_ended_pods()[0].name, "web-2");
    }
}
