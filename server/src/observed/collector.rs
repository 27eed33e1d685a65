//! The collector: events from a source (Hubble or recorded flows) → the core's aggregates →
//! SQLite in batches. Memory holds only the aggregates since the last write (bounded by the
//! distinct keys), the coverage intervals and the pod IP history.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use accord_policy::observed::{Aggregate, Coverage, IpHistory, Key, Observations};
use tokio::sync::mpsc;

use super::convert::Event;
use super::hubble::now_nanos;
use crate::serve::store::Store;

/// What a source tells the collector.
// As with `Event`: nearly every input is a flow; boxing it would cost an allocation per flow.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Input {
    Event(Event),
    /// The source is connected and streaming from this wall-clock time.
    Connected(i64),
    /// The source lost its connection at this time.
    Disconnected(i64),
    /// A recording covered this span (its first to its last event).
    Covered(i64, i64),
}

/// Where observed flows come from.
#[derive(Clone, Debug)]
pub enum Source {
    Hubble(super::hubble::Config),
    Recorded(Vec<PathBuf>),
}

impl Source {
    pub fn describe(&self) -> String {
        match self {
            Source::Hubble(c) => format!("hubble {}", c.address),
            Source::Recorded(p) => format!(
                "flows {}",
                p.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// Observed-traffic settings of `accord serve`.
#[derive(Clone, Debug)]
pub struct Config {
    pub source: Source,
    /// Observations last seen longer ago than this are forgotten.
    pub retention: Duration,
    /// How often aggregates are written.
    pub flush_every: Duration,
}

/// What the API reads besides the stored aggregates: the window and the collector's health.
#[derive(Clone, Debug, Default)]
pub struct Status {
    pub source: String,
    pub connected: bool,
    pub coverage: Coverage,
    /// The latest flow time stored.
    pub latest: i64,
    /// Flows and lost-event reports received since start.
    pub flows: u64,
    pub lost_reports: u64,
    /// Bumped at every write: caches keyed on it see new observations.
    pub generation: u64,
    pub last_error: Option<String>,
}

pub type SharedStatus = Arc<RwLock<Status>>;

/// The stored observations kept in memory by the collector's writes, once the assessor has read
/// them: an assessment then copies them instead of reading every row back from SQLite (seconds
/// at 15,000 workloads).
#[derive(Debug, Default)]
pub struct StoredRows {
    /// A collector runs: its writes keep `rows` as SQLite holds them.
    pub kept: bool,
    /// By key, as `Store::observations` returns them (`None` until first read).
    pub rows: Option<std::collections::BTreeMap<Key, Aggregate>>,
}

pub type SharedRows = Arc<tokio::sync::Mutex<StoredRows>>;

/// The pod IP history, which the cluster source keeps up to date while flows are resolved.
pub type SharedIps = Arc<RwLock<IpHistory>>;

/// Run a source and the collector until the source ends (recordings) or forever (Hubble).
pub async fn run(
    config: Config,
    store: Store,
    ips: SharedIps,
    status: SharedStatus,
    rows: SharedRows,
    written: Arc<tokio::sync::Notify>,
) -> anyhow::Result<()> {
    *rows.lock().await = StoredRows {
        kept: true,
        rows: None,
    };
    let (coverage, latest) = store.observation_window().await?;
    {
        let mut s = status.write().expect("observed status lock");
        s.source = config.source.describe();
        s.coverage = coverage.clone();
        s.latest = latest;
    }
    let (tx, rx) = mpsc::channel(16 * 1024);
    let source = config.source.clone();
    let producer = tokio::spawn(async move {
        match source {
            Source::Hubble(h) => super::hubble::follow(h, latest, tx)
                .await
                .map_err(anyhow::Error::from),
            Source::Recorded(paths) => tokio::task::spawn_blocking(move || {
                let mut span: Option<(i64, i64)> = None;
                let r = super::recorded::read(&paths, |event| {
                    let t = match &event {
                        Event::Flow(f) => f.time,
                        Event::Lost { time, .. } => *time,
                    };
                    if t != 0 {
                        span = Some(span.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
                    }
                    let _ = tx.blocking_send(Input::Event(event));
                });
                if let Some((a, b)) = span {
                    let _ = tx.blocking_send(Input::Covered(a, b));
                }
                r.map_err(anyhow::Error::from)
            })
            .await
            .map_err(anyhow::Error::from)
            .and_then(|r| r),
        }
    });
    let recorded = matches!(config.source, Source::Recorded(_));
    let collector = Collector {
        recorded,
        store,
        ips,
        delta: Observations::new(),
        coverage,
        connected_since: None,
        latest,
        retention: config.retention,
        status,
        rows,
        written,
    };
    collector.run(rx, config.flush_every).await?;
    producer.await??;
    Ok(())
}

/// How late (nanoseconds) a flow may reach the collector after its time: the relay buffers and
/// sorts the nodes' events before sending them.
const RELAY_DELAY: i64 = 30_000_000_000;

struct Collector {
    /// A recording's retention counts back from its last flow, not from now.
    recorded: bool,
    store: Store,
    ips: SharedIps,
    delta: Observations,
    coverage: Coverage,
    connected_since: Option<i64>,
    latest: i64,
    retention: Duration,
    status: SharedStatus,
    rows: SharedRows,
    /// Told after each write that stored new observations (the assessor waits on it).
    written: Arc<tokio::sync::Notify>,
}

impl Collector {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Input>,
        flush_every: Duration,
    ) -> anyhow::Result<()> {
        let mut tick = tokio::time::interval(flush_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut buf = Vec::with_capacity(1024);
        let (mut flows, mut lost_reports) = (0u64, 0u64);
        loop {
            tokio::select! {
                n = rx.recv_many(&mut buf, 1024) => {
                    if n == 0 {
                        // The input ended: calls waiting for their other end count now.
                        self.delta.settle();
                        self.flush().await?;
                        return Ok(());
                    }
                    let ips = self.ips.read().expect("ip history lock");
                    for input in buf.drain(..) {
                        match input {
                            Input::Event(Event::Flow(f)) => {
                                flows += 1;
                                self.delta.ingest(&f, &ips);
                            }
                            Input::Event(Event::Lost { time, count, node }) => {
                                lost_reports += 1;
                                tracing::warn!(count, %node, "Hubble reported lost events");
                                let at = if time == 0 { now_nanos() } else { time };
                                self.coverage.lost(at, count);
                            }
                            Input::Connected(t) => self.connected_since = Some(t),
                            Input::Disconnected(t) => {
                                if let Some(a) = self.connected_since.take() {
                                    self.coverage.connected(a, t);
                                }
                            }
                            Input::Covered(a, b) => self.coverage.connected(a, b),
                        }
                    }
                    drop(ips);
                    let mut s = self.status.write().expect("observed status lock");
                    s.flows = flows;
                    s.lost_reports = lost_reports;
                    s.connected = self.connected_since.is_some();
                }
                _ = tick.tick() => self.flush().await?,
            }
        }
    }

    /// Write the aggregates since the last write, the coverage so far and the resume point.
    async fn flush(&mut self) -> anyhow::Result<()> {
        let now = now_nanos();
        if let Some(a) = self.connected_since {
            self.coverage.connected(a, now);
        }
        self.latest = self.latest.max(self.delta.latest);
        let end = if self.recorded { self.latest } else { now };
        // Calls that waited for their other end's report past the pairing window count now:
        // by the clock when live (so an idle stream settles too), allowing the relay's delay.
        self.delta.settle_before(if self.recorded {
            end
        } else {
            end.saturating_sub(RELAY_DELAY)
        });
        let horizon =
            end.saturating_sub(i64::try_from(self.retention.as_nanos()).unwrap_or(i64::MAX));
        self.coverage.forget_before(horizon);
        // Pods deleted before the horizon can no longer name a stored flow's ends.
        self.ips
            .write()
            .expect("ip history lock")
            .forget_before(horizon);
        let batch = self.delta.drain();
        // The copy in memory changes with the table, in one step for readers.
        let mut rows = self.rows.lock().await;
        let written = self
            .store
            .write_observations(&batch, &self.coverage, self.latest, Some(horizon))
            .await;
        if let (Ok(()), Some(rows)) = (&written, rows.rows.as_mut()) {
            for (k, a) in &batch {
                rows.entry(k.clone()).or_default().merge(a);
            }
            rows.retain(|_, a| a.last_seen >= horizon);
        }
        drop(rows);
        let mut s = self.status.write().expect("observed status lock");
        match written {
            Ok(()) => {
                s.coverage = self.coverage.clone();
                s.latest = self.latest;
                s.last_error = None;
                if !batch.is_empty() {
                    s.generation += 1;
                    self.written.notify_one();
                }
            }
            Err(e) => {
                // Keep the batch for the next write rather than lose it.
                tracing::warn!(error = %e, "writing observations");
                s.last_error = Some(e.to_string());
                for (k, a) in batch {
                    self.delta.merge(k, &a);
                }
            }
        }
        Ok(())
    }
}
