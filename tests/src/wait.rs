//! Waiting on conditions with a timeout. Tests synchronise on what the cluster reports,
//! never on a bare sleep; a timeout turns a missing outcome into an error that says what
//! was awaited.

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use kube::runtime::wait::{Condition, await_condition};
use kube::{Api, Resource};
use serde_json::Value;

/// The timeout for waits in tests: generous, because the machines running them are busy.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The first interval between polls; it doubles up to [`MAX_POLL_INTERVAL`].
const FIRST_POLL_INTERVAL: Duration = Duration::from_millis(50);
const MAX_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Polls `check` until it returns `Some`, or fails after `timeout` naming `what`. An error
/// from `check` counts as "not yet" (the API server may be restarting) and is reported if the
/// wait times out.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let mut last_error = None;
    let polling = async {
        let mut interval = FIRST_POLL_INTERVAL;
        loop {
            match check().await {
                Ok(Some(value)) => return value,
                Ok(None) => last_error = None,
                Err(error) => last_error = Some(error),
            }
            tokio::time::sleep(interval).await;
            interval = (interval * 2).min(MAX_POLL_INTERVAL);
        }
    };
    match tokio::time::timeout(timeout, polling).await {
        Ok(value) => Ok(value),
        Err(_) => Err(match last_error {
            Some(error) => error.context(format!("timed out after {timeout:?} waiting for {what}")),
            None => anyhow!("timed out after {timeout:?} waiting for {what}"),
        }),
    }
}

/// Watches the object `name` until `condition` holds, and returns it. The object may not
/// exist yet. Conditions from `kube::runtime::wait::conditions` or closures `Fn(Option<&K>)
/// -> bool` both work.
pub async fn wait_for_object<K>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
    condition: impl Condition<K>,
) -> Result<K>
where
    K: Resource + Clone + Debug + Send + serde::de::DeserializeOwned + 'static,
    <K as Resource>::DynamicType: Default,
{
    let kind = K::kind(&Default::default()).into_owned();
    let watched = tokio::time::timeout(timeout, await_condition(api.clone(), name, condition))
        .await
        .map_err(|_| anyhow!("timed out after {timeout:?} waiting for {kind} {name}"))?
        .with_context(|| format!("watching {kind} {name}"))?;
    watched.with_context(|| format!("{kind} {name} was deleted while waiting for it"))
}

/// Waits until `name` is gone (deleted and finalized).
pub async fn wait_for_deletion<K>(api: &Api<K>, name: &str, timeout: Duration) -> Result<()>
where
    K: Resource + Clone + Debug + Send + serde::de::DeserializeOwned + 'static,
    <K as Resource>::DynamicType: Default,
{
    let kind = K::kind(&Default::default()).into_owned();
    wait_until(&format!("{kind} {name} to be deleted"), timeout, || async {
        Ok(api.get_opt(name).await?.is_none().then_some(()))
    })
    .await
}

/// Reads a status condition's `status` field (`"True"`, `"False"`, `"Unknown"`) from any
/// object by its JSON form, for resources whose conditions are not typed here.
pub fn condition_status(object: &impl serde::Serialize, condition_type: &str) -> Option<String> {
    let value = serde_json::to_value(object).ok()?;
    value
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|condition| condition.get("type").and_then(Value::as_str) == Some(condition_type))?
        .get("status")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::condition_status;
    use serde_json::json;

    #[test]
    fn condition_status_reads_the_named_condition() {
        let crd = json!({ "status": { "conditions": [
            { "type": "NamesAccepted", "status": "True" },
            { "type": "Established", "status": "False" },
        ] } });
        assert_eq!(
            condition_status(&crd, "Established").as_deref(),
            Some("False")
        );
        assert_eq!(
            condition_status(&crd, "NamesAccepted").as_deref(),
            Some("True")
        );
        assert_eq!(condition_status(&crd, "Terminating"), None);
        assert_eq!(
            condition_status(&json!({ "spec": {} }), "Established"),
            None
        );
    }
}
