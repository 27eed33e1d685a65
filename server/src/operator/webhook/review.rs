//! The review handlers: ConversionReview (convert ClientIntents between versions) and
//! AdmissionReview (validate them, naming the field), as pure functions behind axum routes.

use accord_policy::Origin;
use accord_policy::diagnostic::Diagnostic;
use accord_policy::intents::{self, convert};
use axum::Json;
use axum::extract::State as AxumState;
use axum::routing::post;
use kube::api::{DynamicObject, ListParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use tracing::{debug, warn};

use crate::k8s::{CONVERT_PATH, VALIDATE_PATH};

/// The webhook routes. `client` reads sibling ClientIntents for the duplicate check.
pub fn router(client: Client) -> axum::Router {
    axum::Router::new()
        .route(
            CONVERT_PATH,
            post(|Json(review): Json<Value>| async move { Json(review_conversion(&review)) }),
        )
        .route(VALIDATE_PATH, post(validate))
        .with_state(client)
}

async fn validate(AxumState(client): AxumState<Client>, Json(review): Json<Value>) -> Json<Value> {
    let namespace = review
        .pointer("/request/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    // Others in the namespace, in the storage version (reading it needs no conversion).
    let api = Api::<DynamicObject>::namespaced_with(
        client,
        &namespace,
        &crate::k8s::client_intents_resource(),
    );
    let siblings = match api.list(&ListParams::default()).await {
        Ok(list) => list
            .items
            .into_iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .collect(),
        Err(e) => {
            // The operator reports duplicates on the status too; a failed list must not block
            // every write.
            warn!(ns = %namespace, error = %e, "listing ClientIntents for the duplicate check failed");
            Vec::new()
        }
    };
    Json(review_admission(&review, &siblings))
}

/// Answer a `ConversionReview`: every object converted to `desiredAPIVersion`, or a failure
/// naming the first object that could not be.
pub fn review_conversion(review: &Value) -> Value {
    let request = &review["request"];
    let uid = request.get("uid").cloned().unwrap_or(Value::Null);
    let desired = request["desiredAPIVersion"].as_str().unwrap_or_default();
    let objects = request["objects"].as_array().cloned().unwrap_or_default();
    let converted: Result<Vec<Value>, String> = objects
        .iter()
        .map(|o| {
            convert::convert(o, desired).map_err(|e| {
                let name = o.pointer("/metadata/name").and_then(Value::as_str);
                format!("ClientIntents {}: {e}", name.unwrap_or("?"))
            })
        })
        .collect();
    let response = match converted {
        Ok(objects) => json!({
            "uid": uid,
            "convertedObjects": objects,
            "result": {"status": "Success"},
        }),
        Err(message) => {
            warn!(%message, "conversion failed");
            json!({
                "uid": uid,
                "convertedObjects": [],
                "result": {"status": "Failure", "message": message},
            })
        }
    };
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "response": response,
    })
}

/// Answer an `AdmissionReview` for ClientIntents: deny what upstream rejects (see
/// `accord_policy::intents`) and a second ClientIntents for the same workload, naming the field.
/// `siblings` are the ClientIntents of the namespace (any version).
pub fn review_admission(review: &Value, siblings: &[Value]) -> Value {
    let request = &review["request"];
    let uid = request.get("uid").cloned().unwrap_or(Value::Null);
    let problems = admission_problems(request, siblings);
    let response = if problems.is_empty() {
        json!({"uid": uid, "allowed": true})
    } else {
        let message = problems.join("; ");
        debug!(%message, "denied ClientIntents");
        json!({
            "uid": uid,
            "allowed": false,
            "status": {"code": 422, "reason": "Invalid", "message": message},
        })
    };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": response,
    })
}

fn admission_problems(request: &Value, siblings: &[Value]) -> Vec<String> {
    let object = &request["object"];
    if request["operation"] == "DELETE" || !object.is_object() {
        return Vec::new();
    }
    // Objects being deleted must be able to lose their finalizers; an update that leaves the
    // spec alone (finalizers, labels) is allowed even for intents that predate validation.
    if object.pointer("/metadata/deletionTimestamp").is_some()
        || (request["operation"] == "UPDATE" && request["oldObject"]["spec"] == object["spec"])
    {
        return Vec::new();
    }
    let mut diags = Vec::new();
    let parsed = intents::parse(&Origin::default(), object, &mut diags);
    let mut problems: Vec<String> = diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d: &Diagnostic| format!("{}: {}", d.field, d.message))
        .collect();
    let Some(parsed) = parsed else {
        return problems;
    };
    let workload_field = if object["spec"].get("service").is_some() {
        "spec.service.name"
    } else {
        "spec.workload.name"
    };
    for other in siblings {
        if other.pointer("/metadata/name") == object.pointer("/metadata/name")
            || other.pointer("/metadata/deletionTimestamp").is_some()
        {
            continue;
        }
        let Some(o) = intents::parse(&Origin::default(), other, &mut Vec::new()) else {
            continue;
        };
        if o.workload == parsed.workload {
            problems.push(format!(
                "{workload_field}: ClientIntents {} already declares the calls of workload {:?}{}; \
                 a workload has at most one ClientIntents",
                o.name,
                parsed.workload.name,
                parsed
                    .workload
                    .kind
                    .as_deref()
                    .map(|k| format!(" (kind {k})"))
                    .unwrap_or_default(),
            ));
        }
    }
    problems
}
