//! Conversion of ClientIntents objects between the served versions, for the API server's
//! conversion webhook.
//!
//! In: a ClientIntents object of any version (as JSON) and the version wanted. Out: the same
//! object in that version. The v2 shape (`workload` + `targets`) is the hub; v1 objects
//! (`service` + `calls`) go through it. Versions of one family (v1alpha3/v1beta1,
//! v2alpha1/v2beta1) have identical schemas, so between them only `apiVersion` changes.
//!
//! | v1 call | v2 target |
//! |---|---|
//! | `{name, kind?, resources\|HTTPResources?}` (no type, or `http`) | `kubernetes{name, kind?, http?}` |
//! | `{name: "svc:N", resources?}` | `service{name: N, http?}` |
//! | `{name, type: kafka, topics\|kafkaTopics?}` | `kafka{name, topics?}` |
//! | `{name, type: database, databaseResources?}` | `sql{name, privileges?}` |
//! | `{name, type: aws, awsActions?}` | `aws{arn, actions?}` |
//! | `{name, type: gcp, gcpPermissions?}` | `gcp{resource, permissions?}` |
//! | `{name, type: azure, azureRoles?, azureKeyVaultPolicy?}` | `azure{scope, roles?, keyVaultPolicy?}` |
//! | `{type: internet, internet{...}}` | `internet{...}` |
//!
//! v1alpha2 names HTTP resources `resources` and Kafka topics `topics`; v1alpha3 and v1beta1
//! name them `HTTPResources` and `kafkaTopics`.
//!
//! **Conversion is lossless.** Some forms have no exact counterpart in the other shape (an
//! explicit `type: http`, Accord's `ports` on a v2 target, fields the table does not list).
//! When converting would lose something, the original spec is kept in the annotation
//! [`CONVERTED_FROM`] of the converted object, and further conversions carry it along;
//! converting back to that version restores it exactly, as long as the spec was not changed in
//! between (then the structural conversion applies and the stale annotation is dropped). The API server allows a conversion webhook
//! to change annotations, and nothing else of the metadata.

use serde_json::{Map, Value, json};

use super::{GROUP, VERSIONS};

/// Annotation holding `{"apiVersion": ..., "spec": ...}` of the version an object was
/// converted from, when the conversion could not express all of it.
pub const CONVERTED_FROM: &str = "intents.otterize.com/accord-converted-from";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("not a ClientIntents version served here: {0:?} (served: {versions})", versions = VERSIONS.join(", "))]
    UnknownVersion(String),
    #[error("the object is not a JSON object")]
    NotAnObject,
}

/// The two shapes of the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// `service` + `calls`; `alpha2` selects v1alpha2's field names.
    V1 { alpha2: bool },
    /// `workload` + `targets`.
    V2,
}

fn shape(api_version: &str) -> Result<Shape, ConvertError> {
    let version = api_version
        .strip_prefix(GROUP)
        .and_then(|v| v.strip_prefix('/'))
        .filter(|v| VERSIONS.contains(v))
        .ok_or_else(|| ConvertError::UnknownVersion(api_version.to_string()))?;
    Ok(match version {
        "v1alpha2" => Shape::V1 { alpha2: true },
        "v1alpha3" | "v1beta1" => Shape::V1 { alpha2: false },
        _ => Shape::V2,
    })
}

/// Convert a ClientIntents object to `desired_api_version` (e.g. `k8s.otterize.com/v1alpha2`).
/// Metadata other than the [`CONVERTED_FROM`] annotation, and the status, are kept as they are.
pub fn convert(object: &Value, desired_api_version: &str) -> Result<Value, ConvertError> {
    let obj = object.as_object().ok_or(ConvertError::NotAnObject)?;
    let from_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let from = shape(from_version)?;
    let to = shape(desired_api_version)?;
    let mut out = obj.clone();
    out.insert("apiVersion".into(), json!(desired_api_version));
    if from_version == desired_api_version {
        return Ok(Value::Object(out));
    }
    let stashed = take_annotation(&mut out);
    let Some(spec) = obj.get("spec").and_then(Value::as_object) else {
        return Ok(Value::Object(out));
    };
    // The spec as first written: the annotation's, while it still describes this spec (a
    // chain of conversions keeps it), or else this one.
    let (origin_version, origin_shape, origin) = stashed
        .and_then(|s| {
            let version = s.get("apiVersion")?.as_str()?.to_string();
            let original = s.get("spec")?.as_object()?.clone();
            let shape = shape(&version).ok()?;
            (&structural(&original, shape, from) == spec).then_some((version, shape, original))
        })
        .unwrap_or_else(|| (from_version.to_string(), from, spec.clone()));
    let converted = if origin_version == desired_api_version {
        origin.clone()
    } else {
        structural(&origin, origin_shape, to)
    };
    if structural(&converted, to, origin_shape) != origin {
        let annotations = out
            .entry("metadata")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .map(|m| m.entry("annotations").or_insert_with(|| json!({})));
        if let Some(Value::Object(a)) = annotations {
            let stash = json!({"apiVersion": origin_version, "spec": origin});
            a.insert(CONVERTED_FROM.into(), json!(stash.to_string()));
        }
    }
    out.insert("spec".into(), Value::Object(converted));
    Ok(Value::Object(out))
}

/// Removes the [`CONVERTED_FROM`] annotation (and an annotations map it leaves empty), and
/// returns what it held.
fn take_annotation(object: &mut Map<String, Value>) -> Option<Map<String, Value>> {
    let meta = object.get_mut("metadata")?.as_object_mut()?;
    let annotations = meta.get_mut("annotations")?.as_object_mut()?;
    let raw = annotations.remove(CONVERTED_FROM)?;
    if annotations.is_empty() {
        meta.remove("annotations");
    }
    match serde_json::from_str::<Value>(raw.as_str()?).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// The field-by-field conversion of a spec, without the annotation.
fn structural(spec: &Map<String, Value>, from: Shape, to: Shape) -> Map<String, Value> {
    match (from, to) {
        (a, b) if a == b => spec.clone(),
        (Shape::V2, Shape::V1 { alpha2 }) => from_hub(spec, alpha2),
        (Shape::V1 { alpha2 }, Shape::V2) => to_hub(spec, alpha2),
        (Shape::V1 { alpha2: a }, Shape::V1 { alpha2: b }) => from_hub(&to_hub(spec, a), b),
        (Shape::V2, Shape::V2) => spec.clone(),
    }
}

/// v1 field names of HTTP resources and Kafka topics.
fn v1_keys(alpha2: bool) -> (&'static str, &'static str) {
    if alpha2 {
        ("resources", "topics")
    } else {
        ("HTTPResources", "kafkaTopics")
    }
}

/// Copy `from[src]` into `to[dst]` when present.
fn copy(from: &Map<String, Value>, src: &str, to: &mut Map<String, Value>, dst: &str) {
    if let Some(v) = from.get(src) {
        to.insert(dst.to_string(), v.clone());
    }
}

/// v1 spec → v2 spec.
fn to_hub(spec: &Map<String, Value>, alpha2: bool) -> Map<String, Value> {
    reshape(spec, ("service", "workload"), ("calls", "targets"), |c| {
        call_to_target(c, alpha2)
    })
}

/// v2 spec → v1 spec.
fn from_hub(spec: &Map<String, Value>, alpha2: bool) -> Map<String, Value> {
    reshape(spec, ("workload", "service"), ("targets", "calls"), |t| {
        target_to_call(t, alpha2)
    })
}

/// Rename a spec's workload key and its list key (`(from, to)` each), converting every list item
/// with `item`. Keys of the target shape already present are dropped (they belong to the other
/// shape); every other key is kept as it is.
fn reshape(
    spec: &Map<String, Value>,
    workload: (&str, &str),
    list: (&str, &str),
    item: impl Fn(&Map<String, Value>) -> Map<String, Value>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in spec {
        if k == workload.0 {
            out.insert(workload.1.into(), v.clone());
        } else if k == list.0 {
            let converted = match v.as_array() {
                Some(items) => Value::Array(
                    items
                        .iter()
                        .map(|i| match i.as_object() {
                            Some(i) => Value::Object(item(i)),
                            None => json!({}),
                        })
                        .collect(),
                ),
                None => v.clone(),
            };
            out.insert(list.1.into(), converted);
        } else if k != workload.1 && k != list.1 {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

fn call_to_target(call: &Map<String, Value>, alpha2: bool) -> Map<String, Value> {
    let (http_key, topics_key) = v1_keys(alpha2);
    let name = call.get("name").and_then(Value::as_str);
    let mut body = Map::new();
    let key = match call.get("type").and_then(Value::as_str) {
        Some("kafka") => {
            copy(call, "name", &mut body, "name");
            copy(call, topics_key, &mut body, "topics");
            "kafka"
        }
        Some("database") => {
            copy(call, "name", &mut body, "name");
            copy(call, "databaseResources", &mut body, "privileges");
            "sql"
        }
        Some("aws") => {
            copy(call, "name", &mut body, "arn");
            copy(call, "awsActions", &mut body, "actions");
            "aws"
        }
        Some("gcp") => {
            copy(call, "name", &mut body, "resource");
            copy(call, "gcpPermissions", &mut body, "permissions");
            "gcp"
        }
        Some("azure") => {
            copy(call, "name", &mut body, "scope");
            copy(call, "azureRoles", &mut body, "roles");
            copy(call, "azureKeyVaultPolicy", &mut body, "keyVaultPolicy");
            "azure"
        }
        Some("internet") => {
            if let Some(Value::Object(i)) = call.get("internet") {
                body = i.clone();
            }
            "internet"
        }
        // HTTP (the default), and unknown types, which validation rejects.
        _ => match name.and_then(|n| n.strip_prefix("svc:")) {
            Some(service) => {
                body.insert("name".into(), json!(service));
                copy(call, http_key, &mut body, "http");
                "service"
            }
            None => {
                copy(call, "name", &mut body, "name");
                copy(call, "kind", &mut body, "kind");
                copy(call, http_key, &mut body, "http");
                "kubernetes"
            }
        },
    };
    Map::from_iter([(key.to_string(), Value::Object(body))])
}

fn target_to_call(target: &Map<String, Value>, alpha2: bool) -> Map<String, Value> {
    let (http_key, topics_key) = v1_keys(alpha2);
    let mut call = Map::new();
    let mut entries = target.iter();
    let (Some((key, Value::Object(body))), None) = (entries.next(), entries.next()) else {
        // Not exactly one key: invalid, and kept only through the annotation.
        return call;
    };
    let typed = |call: &mut Map<String, Value>, t: &str| {
        call.insert("type".into(), json!(t));
    };
    match key.as_str() {
        "kubernetes" => {
            copy(body, "name", &mut call, "name");
            copy(body, "kind", &mut call, "kind");
            copy(body, "http", &mut call, http_key);
        }
        "service" => {
            if let Some(name) = body.get("name").and_then(Value::as_str) {
                call.insert("name".into(), json!(format!("svc:{name}")));
            }
            copy(body, "http", &mut call, http_key);
        }
        "kafka" => {
            copy(body, "name", &mut call, "name");
            typed(&mut call, "kafka");
            copy(body, "topics", &mut call, topics_key);
        }
        "sql" => {
            copy(body, "name", &mut call, "name");
            typed(&mut call, "database");
            copy(body, "privileges", &mut call, "databaseResources");
        }
        "aws" => {
            copy(body, "arn", &mut call, "name");
            typed(&mut call, "aws");
            copy(body, "actions", &mut call, "awsActions");
        }
        "gcp" => {
            copy(body, "resource", &mut call, "name");
            typed(&mut call, "gcp");
            copy(body, "permissions", &mut call, "gcpPermissions");
        }
        "azure" => {
            copy(body, "scope", &mut call, "name");
            typed(&mut call, "azure");
            copy(body, "roles", &mut call, "azureRoles");
            copy(body, "keyVaultPolicy", &mut call, "azureKeyVaultPolicy");
        }
        "internet" => {
            typed(&mut call, "internet");
            call.insert("internet".into(), Value::Object(body.clone()));
        }
        _ => {}
    }
    call
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(version: &str, spec: Value) -> Value {
        json!({
            "apiVersion": format!("k8s.otterize.com/{version}"),
            "kind": "ClientIntents",
            "metadata": {"name": "client-intents", "namespace": "ns", "uid": "u1"},
            "spec": spec,
            "status": {"upToDate": true},
        })
    }

    fn to(version: &str, o: &Value) -> Value {
        convert(o, &format!("k8s.otterize.com/{version}")).expect("converts")
    }

    #[test]
    fn smallest_v1alpha2_file_becomes_a_kubernetes_target_without_annotation() {
        let v1 = obj(
            "v1alpha2",
            json!({"service": {"name": "client"}, "calls": [{"name": "server"}]}),
        );
        let v2 = to("v2beta1", &v1);
        assert_eq!(
            v2,
            obj(
                "v2beta1",
                json!({"workload": {"name": "client"}, "targets": [{"kubernetes": {"name": "server"}}]})
            )
        );
        assert_eq!(to("v1alpha2", &v2), v1);
    }

    #[test]
    fn every_call_form_maps_to_its_target() {
        let v1 = obj(
            "v1alpha3",
            json!({"service": {"name": "client", "kind": "Deployment"}, "calls": [
                {"name": "a.other", "kind": "StatefulSet", "HTTPResources": [{"path": "/x", "methods": ["GET"]}]},
                {"name": "svc:b"},
                {"name": "c", "kind": "Service"},
                {"name": "k", "type": "kafka", "kafkaTopics": [{"name": "t", "operations": ["consume"]}]},
                {"name": "db", "type": "database", "databaseResources": [{"databaseName": "d", "table": "t", "operations": ["SELECT"]}]},
                {"name": "arn:aws:s3:::b", "type": "aws", "awsActions": ["s3:GetObject"]},
                {"name": "projects/p", "type": "gcp", "gcpPermissions": ["storage.buckets.get"]},
                {"name": "/subscriptions/s", "type": "azure", "azureRoles": ["Reader"]},
                {"type": "internet", "internet": {"domains": ["example.com"], "ports": [443]}},
            ]}),
        );
        let v2 = to("v2alpha1", &v1);
        assert_eq!(
            v2["spec"],
            json!({"workload": {"name": "client", "kind": "Deployment"}, "targets": [
                {"kubernetes": {"name": "a.other", "kind": "StatefulSet", "http": [{"path": "/x", "methods": ["GET"]}]}},
                {"service": {"name": "b"}},
                {"kubernetes": {"name": "c", "kind": "Service"}},
                {"kafka": {"name": "k", "topics": [{"name": "t", "operations": ["consume"]}]}},
                {"sql": {"name": "db", "privileges": [{"databaseName": "d", "table": "t", "operations": ["SELECT"]}]}},
                {"aws": {"arn": "arn:aws:s3:::b", "actions": ["s3:GetObject"]}},
                {"gcp": {"resource": "projects/p", "permissions": ["storage.buckets.get"]}},
                {"azure": {"scope": "/subscriptions/s", "roles": ["Reader"]}},
                {"internet": {"domains": ["example.com"], "ports": [443]}},
            ]})
        );
        assert!(v2.pointer("/metadata/annotations").is_none(), "{v2}");
        assert_eq!(to("v1alpha3", &v2), v1);
    }

    #[test]
    fn v1alpha2_and_v1alpha3_differ_in_field_names_only() {
        let v1alpha2 = obj(
            "v1alpha2",
            json!({"service": {"name": "c"}, "calls": [
                {"name": "s", "resources": [{"path": "/a"}]},
                {"name": "k", "type": "kafka", "topics": [{"name": "t"}]},
            ]}),
        );
        let v1alpha3 = to("v1alpha3", &v1alpha2);
        assert_eq!(
            v1alpha3["spec"]["calls"],
            json!([
                {"name": "s", "HTTPResources": [{"path": "/a"}]},
                {"name": "k", "type": "kafka", "kafkaTopics": [{"name": "t"}]},
            ])
        );
        assert_eq!(to("v1alpha2", &v1alpha3), v1alpha2);
    }

    #[test]
    fn explicit_http_type_survives_a_round_trip_through_v2() {
        let v1 = obj(
            "v1alpha2",
            json!({"service": {"name": "client"}, "calls": [{"name": "server", "type": "http"}]}),
        );
        let v2 = to("v2alpha1", &v1);
        assert_eq!(
            v2["spec"]["targets"],
            json!([{"kubernetes": {"name": "server"}}])
        );
        let stash = v2["metadata"]["annotations"][CONVERTED_FROM]
            .as_str()
            .expect("annotation");
        assert!(stash.contains("v1alpha2"), "{stash}");
        assert_eq!(to("v2beta1", &v2)["spec"], v2["spec"]);
        assert_eq!(to("v1alpha2", &v2), v1);
    }

    #[test]
    fn v2_ports_survive_a_round_trip_through_v1() {
        let v2 = obj(
            "v2beta1",
            json!({"workload": {"name": "client"}, "targets": [{"kubernetes": {"name": "server", "ports": [{"port": 80}]}}]}),
        );
        let v1 = to("v1beta1", &v2);
        assert_eq!(v1["spec"]["calls"], json!([{"name": "server"}]));
        assert_eq!(to("v2beta1", &v1), v2);
    }

    #[test]
    fn an_edit_after_conversion_wins_over_the_stale_annotation() {
        let v1 = obj(
            "v1alpha2",
            json!({"service": {"name": "client"}, "calls": [{"name": "server", "type": "http"}]}),
        );
        let mut v2 = to("v2alpha1", &v1);
        v2["spec"]["targets"] = json!([{"kubernetes": {"name": "other"}}]);
        let back = to("v1alpha2", &v2);
        assert_eq!(back["spec"]["calls"], json!([{"name": "other"}]));
        assert!(back.pointer("/metadata/annotations").is_none(), "{back}");
    }

    #[test]
    fn metadata_and_status_are_kept() {
        let mut v1 = obj(
            "v1alpha2",
            json!({"service": {"name": "c"}, "calls": [{"name": "s"}]}),
        );
        v1["metadata"]["annotations"] = json!({"team": "a"});
        v1["metadata"]["labels"] = json!({"app": "c"});
        let v2 = to("v2beta1", &v1);
        assert_eq!(v2["metadata"], v1["metadata"]);
        assert_eq!(v2["status"], v1["status"]);
    }

    #[test]
    fn unknown_versions_are_errors() {
        let o = obj("v2beta1", json!({}));
        assert!(matches!(
            convert(&o, "k8s.otterize.com/v3"),
            Err(ConvertError::UnknownVersion(_))
        ));
        assert!(matches!(
            convert(&json!({"apiVersion": "v1"}), "k8s.otterize.com/v2beta1"),
            Err(ConvertError::UnknownVersion(_))
        ));
        assert_eq!(
            convert(&json!([]), "k8s.otterize.com/v2beta1"),
            Err(ConvertError::NotAnObject)
        );
    }
}
