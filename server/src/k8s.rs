//! The `k8s.otterize.com` custom resources as Rust types, and the CRDs generated from them.
//!
//! The operator reads ClientIntents as untyped JSON and parses them with the core
//! (`accord_policy::intents`), so that a malformed object is reported on its status rather than
//! breaking the watch. These types exist for what the API server needs to know: the CRD schema
//! (`accord crd`, committed under `deploy/crds/`) and the status the operator writes.
//!
//! Served versions: ClientIntents `v2alpha1` (storage) and `v2beta1`, which have identical
//! schemas as upstream, and `v1beta1`, `v1alpha3`, `v1alpha2` (`service` + `calls`), which the
//! API server converts through the operator's conversion webhook (`accord operator
//! --webhook-listen`; the conversion itself is `accord_policy::intents::convert`). The CRD
//! names the webhook's Service; the operator patches in its CA bundle at run time.
//! ProtectedService has the same schema (`spec.name`) in every version, so all five versions
//! are served without conversion.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition, ServiceReference, WebhookClientConfig,
    WebhookConversion,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResourceExt;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

pub const GROUP: &str = "k8s.otterize.com";
/// The version the API server stores ClientIntents in (as upstream).
pub const STORAGE_VERSION: &str = "v2alpha1";
/// The ClientIntents CRD's name.
pub const CLIENT_INTENTS_CRD: &str = "clientintents.k8s.otterize.com";
/// The Service in front of the operator's webhooks, and its namespace (as in `deploy/`).
pub const WEBHOOK_SERVICE: &str = "accord-operator-webhook";
pub const WEBHOOK_NAMESPACE: &str = "accord-system";
/// The ValidatingWebhookConfiguration's name (as in `deploy/webhook.yaml`).
pub const VALIDATING_WEBHOOK: &str = "accord-operator";
/// Paths of the conversion and validation webhooks.
pub const CONVERT_PATH: &str = "/convert";
pub const VALIDATE_PATH: &str = "/validate-clientintents";

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

fn any_object_list(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
        },
    })
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

macro_rules! client_intents_v1_version {
    ($module:ident, $version:literal) => {
        pub mod $module {
            use kube::CustomResource;
            use schemars::JsonSchema;
            use serde::{Deserialize, Serialize};

            /// The calls a client service makes (the v1 shape; converted to v2 for storage).
            #[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
            #[kube(
                group = "k8s.otterize.com",
                version = $version,
                kind = "ClientIntents",
                plural = "clientintents",
                namespaced,
                status = "super::ClientIntentsStatus",
                printcolumn(name = "Service", type_ = "string", json_path = ".spec.service.name"),
                printcolumn(name = "UpToDate", type_ = "boolean", json_path = ".status.upToDate")
            )]
            pub struct ClientIntentsSpec {
                pub service: super::Workload,
                /// The calls, kept as written (the operator's validating webhook checks them).
                #[serde(default, skip_serializing_if = "Vec::is_empty")]
                #[schemars(schema_with = "super::any_object_list")]
                pub calls: Vec<serde_json::Value>,
            }
        }
    };
}

client_intents_v1_version!(v1beta1, "v1beta1");
client_intents_v1_version!(v1alpha3, "v1alpha3");
client_intents_v1_version!(v1alpha2, "v1alpha2");

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
    let mut intents = merge_crds(
        vec![
            v2alpha1::ClientIntents::crd(),
            v2beta1::ClientIntents::crd(),
            v1beta1::ClientIntents::crd(),
            v1alpha3::ClientIntents::crd(),
            v1alpha2::ClientIntents::crd(),
        ],
        STORAGE_VERSION,
    )
    .expect("the ClientIntents versions share names and scope");
    // The API server sends every conversion to the operator's webhook, through its Service;
    // the operator patches in the CA bundle (or a URL, outside a cluster) when it starts.
    intents.spec.conversion = Some(CustomResourceConversion {
        strategy: "Webhook".into(),
        webhook: Some(WebhookConversion {
            conversion_review_versions: vec!["v1".into()],
            client_config: Some(WebhookClientConfig {
                service: Some(ServiceReference {
                    namespace: WEBHOOK_NAMESPACE.into(),
                    name: WEBHOOK_SERVICE.into(),
                    path: Some(CONVERT_PATH.into()),
                    port: Some(443),
                }),
                ..Default::default()
            }),
        }),
    });
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

/// The ClientIntents resource at the storage version: what the operator and the dashboard watch,
/// so that neither depends on the conversion webhook to read.
pub fn client_intents_resource() -> kube::api::ApiResource {
    client_intents_resource_at(STORAGE_VERSION)
}

/// The ClientIntents resource at one served version (an object is applied at its own).
pub fn client_intents_resource_at(version: &str) -> kube::api::ApiResource {
    kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk(GROUP, version, "ClientIntents"),
        "clientintents",
    )
}

/// The ProtectedService resource at the storage version.
pub fn protected_service_resource() -> kube::api::ApiResource {
    kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk(GROUP, STORAGE_VERSION, "ProtectedService"),
        "protectedservices",
    )
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

    fn version<'a>(
        crd: &'a CustomResourceDefinition,
        name: &str,
    ) -> &'a k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinitionVersion{
        crd.spec
            .versions
            .iter()
            .find(|v| v.name == name)
            .unwrap_or_else(|| panic!("version {name} missing"))
    }

    #[test]
    fn client_intents_v2_versions_share_one_schema_and_store_v2alpha1() {
        let crd = &crds()[0];
        let versions = &crd.spec.versions;
        let mut names: Vec<&str> = versions.iter().map(|v| v.name.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            ["v1alpha2", "v1alpha3", "v1beta1", "v2alpha1", "v2beta1"]
        );
        assert_eq!(
            version(crd, "v2alpha1").schema,
            version(crd, "v2beta1").schema
        );
        assert!(versions.iter().all(|v| v.storage == (v.name == "v2alpha1")));
        assert!(versions.iter().all(|v| v.served));
    }

    #[test]
    fn client_intents_v1_versions_share_one_schema_and_convert_through_the_webhook() {
        let crd = &crds()[0];
        let v1 = &version(crd, "v1beta1").schema;
        assert_eq!(v1, &version(crd, "v1alpha3").schema);
        assert_eq!(v1, &version(crd, "v1alpha2").schema);
        assert_ne!(v1, &version(crd, "v2alpha1").schema);
        let conversion = crd.spec.conversion.as_ref().expect("conversion");
        assert_eq!(conversion.strategy, "Webhook");
        let webhook = conversion.webhook.as_ref().expect("webhook");
        assert_eq!(webhook.conversion_review_versions, ["v1"]);
        let service = webhook
            .client_config
            .as_ref()
            .and_then(|c| c.service.as_ref())
            .expect("service reference");
        assert_eq!(
            (
                service.namespace.as_str(),
                service.name.as_str(),
                service.path.as_deref()
            ),
            (WEBHOOK_NAMESPACE, WEBHOOK_SERVICE, Some(CONVERT_PATH))
        );
        // ProtectedService needs no conversion: one schema in every version.
        assert!(crds()[1].spec.conversion.is_none());
    }
}
