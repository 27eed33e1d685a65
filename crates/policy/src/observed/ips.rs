//! Pod IP history: which pod (and so which workload) held an address at a given time.
//!
//! A pod owns its IP only between its creation and its deletion; clusters reuse addresses as
//! soon as they are free. A flow whose endpoint carries no workload is resolved by its address
//! *at the flow's time*, so an address reused by another workload never resolves to the wrong
//! one, and an address nobody held at that time resolves to nothing.

use std::collections::HashMap;

use crate::identity::WorkloadId;

/// One pod's tenure of one address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodLifetime {
    pub ip: String,
    pub namespace: String,
    pub pod: String,
    pub workload: WorkloadId,
    /// The pod shares its node's network namespace (and address).
    pub host_network: bool,
    /// Creation time, nanoseconds since the Unix epoch.
    pub from: i64,
    /// Deletion time; `None` while the pod exists.
    pub until: Option<i64>,
}

impl PodLifetime {
    fn holds_at(&self, at: i64) -> bool {
        self.from <= at && self.until.is_none_or(|u| at < u)
    }
}

/// Every known tenure, by address and by pod name. Memory is bounded by the pods recorded;
/// [`IpHistory::forget_before`] drops the pods and tenures that ended before the retention
/// horizon (a cluster's pods churn with every rollout).
#[derive(Clone, Debug, Default)]
pub struct IpHistory {
    by_ip: HashMap<String, Vec<PodLifetime>>,
    by_pod: HashMap<(String, String), PodEntry>,
}

/// What a pod's name resolves to.
#[derive(Clone, Debug)]
struct PodEntry {
    workload: WorkloadId,
    host_network: bool,
    /// Deletion time; `None` while the pod exists.
    until: Option<i64>,
}

impl IpHistory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Record a pod's tenure. Recording the same pod and address again updates its end (a pod
    /// seen again when it is deleted).
    pub fn record(&mut self, lifetime: PodLifetime) {
        let key = (lifetime.namespace.clone(), lifetime.pod.clone());
        self.by_pod.insert(
            key,
            PodEntry {
                workload: lifetime.workload.clone(),
                host_network: lifetime.host_network,
                until: lifetime.until,
            },
        );
        if lifetime.ip.is_empty() || lifetime.host_network {
            // A host-network pod's address is its node's: it identifies no pod.
            return;
        }
        let tenures = self.by_ip.entry(lifetime.ip.clone()).or_default();
        match tenures
            .iter_mut()
            .find(|t| t.namespace == lifetime.namespace && t.pod == lifetime.pod)
        {
            Some(t) => {
                t.from = t.from.min(lifetime.from);
                t.until = lifetime.until;
                t.workload = lifetime.workload;
            }
            None => tenures.push(lifetime),
        }
    }

    /// The workload whose pod held `ip` at `at` (nanoseconds). A flow without a time resolves
    /// only when one pod ever held the address.
    pub fn resolve_ip(&self, ip: &str, at: i64) -> Option<&WorkloadId> {
        let tenures = self.by_ip.get(ip)?;
        if at == 0 {
            return match tenures.as_slice() {
                [only] => Some(&only.workload),
                _ => None,
            };
        }
        tenures.iter().find(|t| t.holds_at(at)).map(|t| &t.workload)
    }

    /// The workload of a pod known by namespace and name (the identity Accord gives it: root
    /// owner or the override annotation).
    pub fn resolve_pod(&self, namespace: &str, pod: &str) -> Option<&WorkloadId> {
        self.by_pod
            .get(&(namespace.to_string(), pod.to_string()))
            .map(|p| &p.workload)
    }

    /// Whether the named pod runs in its node's network namespace.
    pub fn is_host_network(&self, namespace: &str, pod: &str) -> bool {
        self.by_pod
            .get(&(namespace.to_string(), pod.to_string()))
            .is_some_and(|p| p.host_network)
    }

    /// Drop the pods and tenures that ended before `horizon`.
    pub fn forget_before(&mut self, horizon: i64) {
        let ended = |until: Option<i64>| until.is_some_and(|u| u < horizon);
        self.by_ip.retain(|_, tenures| {
            tenures.retain(|t| !ended(t.until));
            !tenures.is_empty()
        });
        self.by_pod.retain(|_, p| !ended(p.until));
    }

    /// Tenures known (one per pod and address).
    pub fn len(&self) -> usize {
        self.by_ip.values().map(Vec::len).sum()
    }

    /// Pods known by name.
    pub fn pods(&self) -> usize {
        self.by_pod.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }

    /// Tenures read from Pod objects (live or from manifests): `status.podIP`/`podIPs`,
    /// `metadata.creationTimestamp` and `deletionTimestamp` (RFC 3339), `spec.hostNetwork`.
    /// `workload` names each pod's identity (the core's owner walk, done by the caller).
    pub fn record_pod_object(
        &mut self,
        pod: &serde_json::Value,
        workload: WorkloadId,
    ) -> Option<()> {
        let meta = pod.get("metadata")?;
        let namespace = meta
            .get("namespace")
            .and_then(|v| v.as_str())
            .unwrap_or("default")
            .to_string();
        let name = meta.get("name")?.as_str()?.to_string();
        let from = meta
            .get("creationTimestamp")
            .and_then(|v| v.as_str())
            .and_then(parse_rfc3339)
            .unwrap_or(0);
        let until = meta
            .get("deletionTimestamp")
            .and_then(|v| v.as_str())
            .and_then(parse_rfc3339);
        let host_network = pod
            .pointer("/spec/hostNetwork")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let status = pod.get("status");
        let mut ips: Vec<String> = status
            .and_then(|s| s.get("podIPs"))
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.get("ip").and_then(|v| v.as_str()).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(ip) = status.and_then(|s| s.get("podIP")).and_then(|v| v.as_str())
            && !ips.iter().any(|i| i == ip)
        {
            ips.push(ip.to_string());
        }
        if ips.is_empty() {
            ips.push(String::new());
        }
        for ip in ips {
            self.record(PodLifetime {
                ip,
                namespace: namespace.clone(),
                pod: name.clone(),
                workload: workload.clone(),
                host_network,
                from,
                until,
            });
        }
        Some(())
    }
}

/// `2026-11-30T06:00:00Z` or with fractional seconds and an offset → nanoseconds since the
/// epoch. The core has no clock or date library; this is the one date parser it needs.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let mut n: i64 = 0;
        for (i, d) in frac[..digits].bytes().enumerate() {
            if i < 9 {
                n = n * 10 + i64::from(d - b'0');
            }
        }
        for _ in digits..9 {
            n *= 10;
        }
        nanos = n;
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let h: i64 = rest.get(1..3)?.parse().ok()?;
            let m: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    // Days from the civil date (proleptic Gregorian), as in Howard Hinnant's algorithm.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(secs * 1_000_000_000 + nanos)
}

/// Seconds since the epoch → `YYYY-MM-DDTHH:MM:SS` in UTC (civil from days, proleptic
/// Gregorian, as in Howard Hinnant's algorithm): the one date formatter, which callers end with
/// their own fraction and `Z`.
pub fn civil_date_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Nanoseconds since the epoch → RFC 3339 in UTC with the precision the value has (to the
/// second when it is whole, else to the nanosecond, trailing zeros trimmed).
pub fn format_rfc3339(t: i64) -> String {
    let nanos = t.rem_euclid(1_000_000_000);
    let mut out = civil_date_time(t.div_euclid(1_000_000_000));
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

impl IpHistory {
    /// The tenures of the Pod objects in manifests (a snapshot of `kubectl get pods -o yaml`):
    /// each pod named by the identity the inventory gave it.
    pub fn from_manifests(sources: &[crate::Source], inventory: &crate::Inventory) -> IpHistory {
        let identities: HashMap<(&str, &str), &WorkloadId> = inventory
            .pods
            .iter()
            .filter(|p| !p.from_template)
            .map(|p| ((p.namespace(), p.metadata.name.as_str()), &p.workload))
            .collect();
        let mut history = IpHistory::new();
        let mut ignored = Vec::new();
        for source in sources {
            for (_, doc) in crate::load::text::documents(source, &mut ignored) {
                let items = match doc.get("kind").and_then(|k| k.as_str()) {
                    Some("List") | Some("PodList") => doc
                        .get("items")
                        .and_then(|i| i.as_array())
                        .cloned()
                        .unwrap_or_default(),
                    Some("Pod") => vec![doc],
                    _ => continue,
                };
                for pod in items {
                    if pod.get("kind").and_then(|k| k.as_str()) != Some("Pod") {
                        continue;
                    }
                    let ns = pod
                        .pointer("/metadata/namespace")
                        .and_then(|v| v.as_str())
                        .unwrap_or("default");
                    let Some(name) = pod.pointer("/metadata/name").and_then(|v| v.as_str()) else {
                        continue;
                    };
                    if let Some(w) = identities.get(&(ns, name)) {
                        let w = (*w).clone();
                        history.record_pod_object(&pod, w);
                    }
                }
            }
        }
        history
    }
}
