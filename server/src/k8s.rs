//! The `k8s.otterize.com` custom resources as Rust types, and the CRDs generated from them.
//!
//! The operator reads ClientIntents as untyped JSON and parses them with the core
//! (`accord_policy::intents`), so that a malformed object is reported on its status rather than
//! breaking the watch. These types exist for what the API server needs to know: the CRD schema
//! (`accord crd`, committed under `deploy/crds/`) and the status the operator writes.
//!
//! Served versions: ClientIntents `v2alpha1` (storage) and `v2beta1`, which have identical
//! schemas as upstream. ProtectedService has the same schema (`spec.name`) in every version, so
//! all five versions are served without conversion.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResourceExt;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

pub const GROUP: &str = "k8s.otterize.com";
/// The version the API server stores ClientIntents in (as upstream).
pub const STORAGE_VERSION: &str = "v2alpha1";

/// The client workload that declares the calls.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Workload {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// One target: exactly one of its keys is set. The bodies are kept as written (the operator
/// validates them and reports problems by field on the status).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Target {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object")]
    pub kubernetes: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object")]
    pub service: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object")]
    pub kafka: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object")]
    pub sql: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object")]
    pub internet: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object")]
    pub aws: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object")]
    pub gcp: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object")]
    pub azure: Option<serde_json::Value>,
}

fn any_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// Addresses resolved for an internet target's domain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResolvedIps {
    pub dns: String,
    #[serde(default)]
    pub ips: Vec<String>,
}

/// What the operator reports. `upToDate` is only true when the current generation's policies
/// and labels were all applied; the conditions say why not.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientIntentsStatus {
    #[serde(default)]
    pub up_to_date: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, rename = "resolvedIPs", skip_serializing_if = "Vec::is_empty")]
    pub resolved_ips: Vec<ResolvedIps>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

macro_rules! client_intents_version {
    ($module:ident, $version:literal) => {
        pub mod $module {
            use kube::CustomResource;
            use schemars::JsonSchema;
            use serde::{Deserialize, Serialize};

            /// The calls a client workload makes.
            #[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
            #[kube(
                group = "k8s.otterize.com",
                version = $version,
                kind = "ClientIntents",
                plural = "clientintents",
                namespaced,
                status = "super::ClientIntentsStatus",
                printcolumn(name = "Workload", type_ = "string", json_path = ".spec.workload.name"),
                printcolumn(name = "UpToDate", type_ = "boolean", json_path = ".status.upToDate")
            )]
            pub struct ClientIntentsSpec {
                pub workload: super::Workload,
                #[serde(default)]
                pub targets: Vec<super::Target>,
            }
        }
    };
}

client_intents_version!(v2alpha1, "v2alpha1");
client_intents_version!(v2beta1, "v2beta1");

macro_rules! protected_service_version {
    ($module:ident, $version:literal) => {
        pub mod $module {
            use kube::CustomResource;
            use schemars::JsonSchema;
            use serde::{Deserialize, Serialize};

            /// A server that gets a default-deny ingress policy (shadow mode enforces it).
            #[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
            #[kube(group = "k8s.otterize.com", version = $version, kind = "ProtectedService", namespaced)]
            pub struct ProtectedServiceSpec {
                pub name: String,
            }
        }
    };
}

pub mod protected_service {
    protected_service_version!(v1alpha2, "v1alpha2");
    protected_service_version!(v1alpha3, "v1alpha3");
    protected_service_version!(v1beta1, "v1beta1");
    protected_service_version!(v2alpha1, "v2alpha1");
    protected_service_version!(v2beta1, "v2beta1");
}

/// The CRDs, in a stable order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    use kube::core::crd::merge_crds;
    let intents = merge_crds(
        vec![
            v2alpha1::ClientIntents::crd(),
            v2beta1::ClientIntents::crd(),
        ],
        STORAGE_VERSION,
    )
    .expect("the ClientIntents versions share names and scope");
    let protected = merge_crds(
        vec![
            protected_service::v1alpha2::ProtectedService::crd(),
            protected_service::v1alpha3::ProtectedService::crd(),
            protected_service::v1beta1::ProtectedService::crd(),
            protected_service::v2alpha1::ProtectedService::crd(),
            protected_service::v2beta1::ProtectedService::crd(),
        ],
        STORAGE_VERSION,
    )
    .expect("the ProtectedService versions share names and scope");
    vec![intents, protected]
}

/// The CRDs as one multi-document YAML stream (what `accord crd` prints and `deploy/crds/`
/// holds).
pub fn crds_yaml() -> String {
    let mut out =
        String::from("# Generated by `accord crd` from server/src/k8s.rs; do not edit.\n");
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&crd).expect("CRDs serialize"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_crds_match_the_rust_types() {
        let committed = include_str!("../../deploy/crds/k8s.otterize.com.yaml");
        assert!(
            committed == crds_yaml(),
            "deploy/crds/k8s.otterize.com.yaml is stale: run `accord crd > deploy/crds/k8s.otterize.com.yaml`"
        );
    }

    #[test]
    fn client_intents_v2_versions_share_one_schema_and_store_v2alpha1() {
        let crd = &crds()[0];
        let versions = &crd.spec.versions;
        assert_eq!(
            versions.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
            ["v2alpha1", "v2beta1"]
        );
        assert_eq!(versions[0].schema, versions[1].schema);
        assert!(versions[0].storage && !versions[1].storage);
        assert!(versions.iter().all(|v| v.served));
    }
}
