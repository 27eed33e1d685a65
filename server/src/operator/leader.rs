//! Leader election on a `coordination.k8s.io` Lease.
//!
//! Every write to the Lease is a replace guarded by the `resourceVersion` that was read, so two
//! replicas racing for it cannot both win: the loser gets a conflict and reads again. As in
//! client-go, expiry is judged by the local clock from when *this* replica last saw the lease
//! record change, so clock skew between replicas does not matter.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tracing::{debug, info, warn};

#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub duration: Duration,
}

impl LeaseConfig {
    /// How often the holder renews and a standby retries.
    pub fn retry_period(&self) -> Duration {
        self.duration / 3
    }
}

/// What identifies a lease record: its holder and renew time.
type Record = (Option<String>, Option<String>);

pub struct Elector {
    api: Api<Lease>,
    config: LeaseConfig,
    /// The last record seen (holder, renew time, resourceVersion) and when it was first seen.
    observed: Option<(Record, Instant)>,
}

pub enum Outcome {
    /// This replica holds the lease (and has just renewed it).
    Leading,
    /// Another replica holds an unexpired lease.
    Standby(String),
}

impl Elector {
    pub fn new(client: Client, config: LeaseConfig) -> Self {
        Elector {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
        }
    }

    fn now() -> MicroTime {
        MicroTime(Timestamp::now())
    }

    /// One attempt to acquire or renew the lease.
    pub async fn try_acquire_or_renew(&mut self) -> Result<Outcome, kube::Error> {
        let me = self.config.identity.clone();
        let duration_secs = self.config.duration.as_secs().max(1) as i32;
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me.clone()),
                    lease_duration_seconds: Some(duration_secs),
                    acquire_time: Some(Self::now()),
                    renew_time: Some(Self::now()),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => {
                    info!(lease = %self.config.name, identity = %me, "created the lease; leading");
                    Ok(Outcome::Leading)
                }
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    Ok(Outcome::Standby("(just created by another replica)".into()))
                }
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let record = (
            holder.clone(),
            spec.renew_time.as_ref().map(|t| t.0.to_string()),
        );
        let now = Instant::now();
        let first_seen = match &self.observed {
            Some((r, at)) if *r == record => *at,
            _ => {
                self.observed = Some((record, now));
                now
            }
        };
        let lease_duration =
            Duration::from_secs(spec.lease_duration_seconds.unwrap_or(duration_secs).max(1) as u64);
        let held_by_me = holder.as_deref() == Some(me.as_str());
        let expired = holder.is_none() || now.duration_since(first_seen) > lease_duration;
        if !held_by_me && !expired {
            return Ok(Outcome::Standby(holder.unwrap_or_default()));
        }
        let mut new_spec = spec.clone();
        new_spec.holder_identity = Some(me.clone());
        new_spec.lease_duration_seconds = Some(duration_secs);
        new_spec.renew_time = Some(Self::now());
        if !held_by_me {
            new_spec.acquire_time = Some(Self::now());
            new_spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        lease.spec = Some(new_spec);
        // `replace` sends the resourceVersion read above: a concurrent change makes it fail.
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                if !held_by_me {
                    info!(lease = %self.config.name, identity = %me, previous = ?holder, "acquired the lease; leading");
                }
                debug!(lease = %self.config.name, "renewed the lease");
                Ok(Outcome::Leading)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                Ok(Outcome::Standby("(changed concurrently)".into()))
            }
            Err(e) => Err(e),
        }
    }

    /// Wait until this replica holds the lease.
    pub async fn acquire(&mut self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Outcome::Leading) => return,
                Ok(Outcome::Standby(holder)) => debug!(%holder, "standing by"),
                Err(e) => warn!(error = %e, "reading the lease failed"),
            }
            tokio::time::sleep(self.config.retry_period()).await;
        }
    }

    /// Renew the lease until it cannot be renewed within its duration; then return (leadership
    /// is lost, and the caller must stop acting).
    pub async fn keep_renewing(&mut self) {
        let mut last_renewed = Instant::now();
        loop {
            tokio::time::sleep(self.config.retry_period()).await;
            match self.try_acquire_or_renew().await {
                Ok(Outcome::Leading) => last_renewed = Instant::now(),
                Ok(Outcome::Standby(holder)) => {
                    warn!(%holder, "another replica holds the lease");
                    return;
                }
                Err(e) => warn!(error = %e, "renewing the lease failed"),
            }
            // Stop a margin before the lease could expire for the others.
            if last_renewed.elapsed() > self.config.duration.mul_f32(0.8) {
                warn!("could not renew the lease in time");
                return;
            }
        }
    }

    /// Give the lease up (on shutdown), so that a standby takes over at once.
    pub async fn release(&mut self) {
        if let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await
            && let Some(spec) = lease.spec.as_mut()
            && spec.holder_identity.as_deref() == Some(self.config.identity.as_str())
        {
            spec.holder_identity = None;
            let _ = self
                .api
                .replace(&self.config.name, &PostParams::default(), &lease)
                .await;
            info!(lease = %self.config.name, "released the lease");
        }
    }
}
