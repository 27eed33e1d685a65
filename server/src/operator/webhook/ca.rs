//! CA injection: keeping the generated CA in the CA bundles of the ClientIntents CRD's
//! conversion webhook and of Accord's ValidatingWebhookConfiguration.

use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::k8s::{CLIENT_INTENTS_CRD, CONVERT_PATH, VALIDATE_PATH, VALIDATING_WEBHOOK};

use super::*;

/// The PEM certificates of a bundle, each normalized to end with a newline.
pub(super) fn pem_blocks(bundle: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    bundle
        .split_inclusive(END)
        .filter_map(|b| {
            let start = b.find("-----BEGIN CERTIFICATE-----")?;
            b.ends_with(END).then(|| format!("{}\n", &b[start..]))
        })
        .collect()
}

/// `ca` first, then the most recent others of `current`: a bundle that trusts every replica.
pub fn merged_bundle(current: &[u8], ca: &str) -> Vec<u8> {
    let ours = pem_blocks(ca);
    let mut out = ours.clone();
    for block in pem_blocks(&String::from_utf8_lossy(current)) {
        if out.len() >= MAX_BUNDLED_CAS.max(ours.len()) {
            break;
        }
        if !out.contains(&block) {
            out.push(block);
        }
    }
    out.concat().into_bytes()
}

/// The client configuration a webhook should have: `caBundle` (when Accord generated the CA)
/// and `url` (when given), as a JSON merge patch of `clientConfig`, or `None` when `current`
/// already has it.
pub(super) fn client_config_patch(
    current: Option<&Value>,
    ca: Option<&str>,
    url: Option<&str>,
) -> Option<Value> {
    let current = current.cloned().unwrap_or(json!({}));
    let mut patch = serde_json::Map::new();
    if let Some(ca) = ca {
        let have: Vec<u8> = current
            .get("caBundle")
            .cloned()
            .and_then(|b| serde_json::from_value::<ByteString>(b).ok())
            .map(|b| b.0)
            .unwrap_or_default();
        if !pem_blocks(&String::from_utf8_lossy(&have)).contains(&pem_blocks(ca)[0]) {
            let bundle = ByteString(merged_bundle(&have, ca));
            patch.insert(
                "caBundle".into(),
                serde_json::to_value(bundle).unwrap_or_default(),
            );
        }
    }
    if let Some(url) = url
        && (current.get("url").and_then(Value::as_str) != Some(url)
            || current.get("service").is_some())
    {
        patch.insert("url".into(), json!(url));
        patch.insert("service".into(), Value::Null);
    }
    (!patch.is_empty()).then_some(Value::Object(patch))
}

/// Keep this replica's CA (and `url`) in the conversion webhook of the ClientIntents CRD and in
/// the ValidatingWebhookConfiguration, checking every [`INJECT_INTERVAL`]. Runs until the
/// process ends; a missing object or a conflict is retried.
pub async fn keep_injected(client: Client, ca: Option<String>, base_url: Option<String>) {
    if ca.is_none() && base_url.is_none() {
        return;
    }
    let base = base_url.map(|u| u.trim_end_matches('/').to_string());
    let convert_url = base.as_ref().map(|b| format!("{b}{CONVERT_PATH}"));
    let validate_url = base.as_ref().map(|b| format!("{b}{VALIDATE_PATH}"));
    let mut interval = Duration::from_secs(1);
    loop {
        let crd = inject_crd(&client, ca.as_deref(), convert_url.as_deref()).await;
        let vwc = inject_validating(&client, ca.as_deref(), validate_url.as_deref()).await;
        for (what, r) in [("CRD conversion", &crd), ("validating webhook", &vwc)] {
            if let Err(e) = r {
                warn!(error = %e, "keeping the {what} CA bundle failed; retrying");
            }
        }
        // Retry soon until both are in place, then only check now and then.
        interval = if crd.is_ok() && vwc.is_ok() {
            INJECT_INTERVAL
        } else {
            (interval * 2).min(INJECT_INTERVAL)
        };
        tokio::time::sleep(interval).await;
    }
}

async fn inject_crd(client: &Client, ca: Option<&str>, url: Option<&str>) -> kube::Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = api.get(CLIENT_INTENTS_CRD).await?;
    let current = crd
        .spec
        .conversion
        .as_ref()
        .and_then(|c| c.webhook.as_ref())
        .and_then(|w| w.client_config.as_ref())
        .and_then(|c| serde_json::to_value(c).ok());
    let Some(patch) = client_config_patch(current.as_ref(), ca, url) else {
        return Ok(());
    };
    // Guarded by the resourceVersion: another replica's CA added meanwhile is not lost.
    let body = json!({
        "metadata": {"resourceVersion": crd.metadata.resource_version},
        "spec": {"conversion": {
            "strategy": "Webhook",
            "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": patch},
        }},
    });
    api.patch(
        CLIENT_INTENTS_CRD,
        &PatchParams::default(),
        &Patch::Merge(&body),
    )
    .await?;
    info!("CA bundle of the ClientIntents conversion webhook updated");
    Ok(())
}

async fn inject_validating(
    client: &Client,
    ca: Option<&str>,
    url: Option<&str>,
) -> kube::Result<()> {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let vwc = api.get(VALIDATING_WEBHOOK).await?;
    let mut webhooks: Vec<Value> = vwc
        .webhooks
        .iter()
        .flatten()
        .filter_map(|w| serde_json::to_value(w).ok())
        .collect();
    let mut changed = false;
    for w in &mut webhooks {
        if let Some(patch) = client_config_patch(w.get("clientConfig"), ca, url) {
            let config = w.get_mut("clientConfig").and_then(Value::as_object_mut);
            if let (Some(config), Value::Object(patch)) = (config, patch) {
                for (k, v) in patch {
                    if v.is_null() {
                        config.remove(&k);
                    } else {
                        config.insert(k, v);
                    }
                }
                changed = true;
            }
        }
    }
    if !changed {
        return Ok(());
    }
    // A merge patch replaces the list as a whole; the resourceVersion guards it.
    let body = json!({
        "metadata": {"resourceVersion": vwc.metadata.resource_version},
        "webhooks": webhooks,
    });
    api.patch(
        VALIDATING_WEBHOOK,
        &PatchParams::default(),
        &Patch::Merge(&body),
    )
    .await?;
    info!("CA bundle of the validating webhook updated");
    Ok(())
}
