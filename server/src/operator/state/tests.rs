use super::plan::Plan;
use super::*;
use accord_policy::identity::formatted;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

fn at(time: &str) -> Time {
    Time(time.parse::<Timestamp>().expect("a timestamp"))
}

fn intents(name: &str, workload: &str, target: &str) -> Value {
    json!({
        "apiVersion": "k8s.otterize.com/v2beta1",
        "kind": "ClientIntents",
        "metadata": {"name": name, "namespace": "ns", "generation": 1},
        "spec": {"workload": {"name": workload}, "targets": [{"kubernetes": {"name": target}}]},
    })
}

fn meta(name: &str, owner: Option<(&str, &str)>) -> ObjectMeta {
    serde_json::from_value(json!({
        "name": name,
        "namespace": "ns",
        "ownerReferences": owner
            .map(|(kind, name)| vec![json!({"apiVersion": "apps/v1", "kind": kind, "name": name})])
            .unwrap_or_default(),
    }))
    .expect("metadata")
}

fn condition<'a>(status: &'a Value, kind: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
        .unwrap_or(&Value::Null)
}

fn status_of(plan: &Plan, name: &str) -> Value {
    let input = plan
        .statuses
        .iter()
        .find(|s| s.key.1 == name)
        .unwrap_or_else(|| panic!("no status planned for {name}"));
    let status =
        status_patch(input, &HashSet::new(), &at("2026-01-01T00:00:00Z")).expect("a status");
    serde_json::to_value(status).expect("a status serializes")
}

#[test]
fn status_is_written_in_the_crd_shape_and_only_when_it_changes() {
    let mut state = State::default();
    state.apply_intents(&intents("c", "client", "server"));
    let plan = state.plan();
    let input = plan.statuses.first().expect("a status").clone();
    let written =
        status_patch(&input, &HashSet::new(), &at("2026-01-01T00:00:00Z")).expect("a first status");
    let json = serde_json::to_value(&written).expect("a status serializes");
    // The merge patch names exactly these fields: `resolvedIPs` is left to whoever sets it.
    let mut keys: Vec<&str> = json
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["conditions", "observedGeneration", "upToDate"]);
    assert_eq!(json["upToDate"], true);
    assert_eq!(json["observedGeneration"], 1);
    assert_eq!(
        condition(&json, "Valid"),
        &json!({
            "type": "Valid",
            "status": "True",
            "reason": "Valid",
            "message": "the intents are valid",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
            "observedGeneration": 1,
        })
    );
    assert_eq!(condition(&json, "TargetsResolved")["status"], "False");

    // The object now shows it (read back from the cluster's JSON): nothing to write.
    let shown: ClientIntentsStatus = serde_json::from_value(json).expect("a status parses");
    let again = StatusInput {
        current: shown.clone(),
        ..input.clone()
    };
    assert_eq!(
        status_patch(&again, &HashSet::new(), &at("2026-01-02T00:00:00Z")),
        None
    );

    // A failed write flips one condition: only that one gets a new transition time.
    let failed: HashSet<Key> = input.subjects.iter().cloned().collect();
    let next =
        status_patch(&again, &failed, &at("2026-01-02T00:00:00Z")).expect("a changed status");
    assert!(!next.up_to_date);
    let time = |kind: &str| {
        let c = next
            .conditions
            .iter()
            .find(|c| c.type_ == kind)
            .expect("the condition");
        (c.status.as_str(), c.last_transition_time.clone())
    };
    assert_eq!(
        time("PoliciesApplied"),
        ("False", at("2026-01-02T00:00:00Z"))
    );
    assert_eq!(time("Valid"), ("True", at("2026-01-01T00:00:00Z")));
}

#[test]
fn duplicate_intents_have_a_condition_of_their_own_whichever_changes() {
    let mut state = State::default();
    state.apply_intents(&intents("first", "client", "a"));
    state.apply_intents(&intents("second", "client", "b"));
    let plan = state.plan();
    let second = status_of(&plan, "second");
    let unique = condition(&second, "Unique");
    assert_eq!(unique["status"], "False");
    assert_eq!(unique["reason"], "DuplicateIntents");
    assert!(
        unique["message"]
            .as_str()
            .unwrap_or_default()
            .contains("ClientIntents ns/first"),
        "{unique}"
    );
    // The duplicate is no longer reported as an unresolved target (the targets here do not
    // exist, which is what that condition is for).
    let resolved = condition(&second, "TargetsResolved");
    assert!(
        !resolved["message"]
            .as_str()
            .unwrap_or_default()
            .contains("already has intents"),
        "{resolved}"
    );
    assert_eq!(second["upToDate"], false);
    assert_eq!(
        condition(&status_of(&plan, "first"), "Unique")["status"],
        "True"
    );

    // A change that touches only the duplicate's own target still sees the first intents.
    state.apply_pod(meta("b-1", None));
    state.mark_dirty(("ns".into(), "b".into()));
    let plan = state.plan();
    assert_eq!(
        condition(&status_of(&plan, "second"), "Unique")["status"],
        "False"
    );
}

#[test]
fn owner_chains_go_above_root_kinds_and_follow_their_changes() {
    let mut state = State::default();
    let pod = meta("web-7d4-abc", Some(("ReplicaSet", "web-7d4")));
    state.apply_pod(pod.clone());
    // Until the ReplicaSet is known, the chain stops at the last owner that could be read.
    assert_eq!(state.pods[&key_of(&pod)].workload.name, "web-7d4-abc");
    state.apply_owner("ReplicaSet", meta("web-7d4", Some(("Deployment", "web"))));
    // A Deployment not seen yet stands in by its name.
    let w = &state.pods[&key_of(&pod)].workload;
    assert_eq!(
        (w.name.as_str(), w.kind.as_deref()),
        ("web", Some("Deployment"))
    );
    // A Deployment that is itself owned: the chain goes on to the root.
    state.apply_owner("Deployment", meta("web", Some(("StatefulSet", "platform"))));
    state.apply_owner("StatefulSet", meta("platform", None));
    let w = &state.pods[&key_of(&pod)].workload;
    assert_eq!(
        (w.name.as_str(), w.kind.as_deref()),
        ("platform", Some("StatefulSet"))
    );
    // The Deployment orphaned from its owner re-resolves the pods two levels below.
    state.apply_owner("Deployment", meta("web", None));
    let w = &state.pods[&key_of(&pod)].workload;
    assert_eq!(
        (w.name.as_str(), w.kind.as_deref()),
        ("web", Some("Deployment"))
    );
}

#[test]
fn a_client_without_intents_keeps_its_labels_and_is_marked() {
    let mut state = State::default();
    state.apply_intents(&intents("c", "client", "server"));
    let mut pod = meta("client", None);
    state.apply_pod(pod.clone());
    let plan = state.plan();
    let Some(Write::PatchPodLabels {
        labels: set,
        annotations,
        ..
    }) = plan
        .writes
        .iter()
        .find(|w| matches!(w, Write::PatchPodLabels { name, .. } if name == "client"))
    else {
        panic!("no label patch for the client: {:?}", plan.writes);
    };
    assert!(set.contains_key(labels::CLIENT), "{set:?}");
    assert!(annotations.is_empty(), "{annotations:?}");
    pod.labels = set
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect();
    state.apply_pod(pod.clone());
    assert!(state.plan().writes.is_empty(), "the echo is settled");

    // The intents are deleted: the labels stay, the pod is marked.
    state.delete_intents(&("ns".to_string(), "c".to_string()));
    state.mark_dirty(("ns".into(), "client".into()));
    let want = Labels::from([
        (labels::SERVICE.to_string(), formatted("client", "ns", None)),
        (labels::OWNER_KIND.to_string(), "Pod".to_string()),
    ]);
    let (set, annotations) = pod_patch(&pod, &want).expect("a patch");
    assert!(set.is_empty(), "no label is removed: {set:?}");
    assert_eq!(
        annotations,
        BTreeMap::from([(labels::ALL_INTENTS_REMOVED.to_string(), json!("true"))])
    );
    pod.annotations
        .insert(labels::ALL_INTENTS_REMOVED.to_string(), "true".to_string());
    assert_eq!(pod_patch(&pod, &want), None, "marked once");

    // Intents again: the mark goes, and dropped targets lose their access labels.
    let mut client_want = want.clone();
    client_want.insert(labels::CLIENT.to_string(), "x".to_string());
    let (set, annotations) = pod_patch(&pod, &client_want).expect("a patch");
    assert_eq!(
        annotations,
        BTreeMap::from([(labels::ALL_INTENTS_REMOVED.to_string(), Value::Null)])
    );
    assert!(
        set.iter()
            .any(|(k, v)| k.starts_with(labels::ACCESS_PREFIX) && v.is_null()),
        "{set:?}"
    );
}

#[test]
fn namespace_label_changes_recompute_its_subjects_only() {
    let mut state = State::default();
    state.apply_intents(&intents("c", "client", "server"));
    let _ = state.plan();
    let mut ns = meta("ns", None);
    ns.namespace = None;
    ns.labels = [("team".to_string(), "a".to_string())].into();
    state.apply_namespace(ns.clone());
    assert!(state.has_dirty());
    let plan = state.plan();
    assert!(
        plan.subjects
            .contains(&("ns".to_string(), "server".to_string()))
    );
    assert_eq!(state.namespaces["ns"]["team"], "a");
    // The same labels again: nothing to do.
    state.apply_namespace(ns);
    assert!(!state.has_dirty());
}
