//! All SQL of the dashboard: SQLite through sqlx, schema in `migrations/`.
//!
//! A sync pass is written in one transaction ([`Store::write_pass`]), so a crash mid-sync leaves
//! the previous pass intact. The database is a cache of the source plus history (`changes`),
//! drafts and sync runs.
//!
//! Size: by design every SQL statement of the dashboard is in this one module (see STYLE.md,
//! `store`), so the schema and its queries are read and changed together.

use std::collections::HashMap;
use std::str::FromStr;

mod observed;
pub use observed::ObservedQuery;

use accord_api as api;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, FromRow, QueryBuilder, Sqlite, SqlitePool};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("creating the database directory {0}: {1}")]
    Dir(String, std::io::Error),
    /// A stored value that names nothing Accord knows: the cache is damaged (and rebuildable).
    #[error("stored value {0:?} in column {1} is not valid")]
    Corrupt(String, &'static str),
    #[error("the database is corrupt: {0}")]
    CorruptFile(String),
    #[error("moving the corrupt database {0} aside: {1}")]
    MoveAside(String, std::io::Error),
}

impl Error {
    /// Whether SQLite found the file damaged or not a database at all.
    pub fn is_corruption(&self) -> bool {
        let sql = match self {
            Error::Corrupt(..) | Error::CorruptFile(_) => return true,
            Error::Sql(e) => e,
            Error::Migrate(sqlx::migrate::MigrateError::Execute(e)) => e,
            _ => return false,
        };
        let sqlx::Error::Database(db) = sql else {
            return false;
        };
        // SQLITE_CORRUPT (11) and SQLITE_NOTADB (26), with their extended codes.
        db.code()
            .and_then(|c| c.parse::<i64>().ok())
            .is_some_and(|c| matches!(c & 0xff, 11 | 26))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Rows per multi-row INSERT: one statement per chunk instead of per row (at most 10 columns,
/// so well under SQLite's limit of 32,766 bound parameters).
const ROWS_PER_INSERT: usize = 500;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// An inventory object's key: kind, namespace ("" for cluster-scoped), name.
pub use crate::cluster::ObjectKey;

/// An edge as stored, without its explanation.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct EdgeRow {
    pub source: String,
    pub target: String,
    #[sqlx(try_from = "String")]
    pub state: api::EdgeState,
    pub ports: String,
    pub declared_ports: String,
    pub declared: bool,
    pub allowed: bool,
    pub first_seen: String,
    pub last_changed: String,
}

/// One change-log entry to insert.
#[derive(Clone, Debug)]
pub struct ChangeRow {
    pub workload: String,
    pub source: String,
    pub target: String,
    pub change: api::ChangeKind,
    pub before: Option<api::EdgeState>,
    pub after: Option<api::EdgeState>,
    pub by: Vec<String>,
}

/// Everything one sync pass writes.
#[derive(Debug, Default)]
pub struct Pass {
    pub started_at: String,
    pub finished_at: String,
    pub source: String,
    pub objects: u32,
    /// Objects whose content changed (or appeared): key, hash, origin. Their JSON comes from
    /// [`PassTexts::object`].
    pub objects_upsert: Vec<(ObjectKey, i64, String)>,
    pub objects_delete: Vec<ObjectKey>,
    /// Every workload, replacing the stored set: (id, namespace, node JSON, detail JSON).
    pub workloads: Vec<(String, String, String, String)>,
    /// Edges that appeared or changed, as positions given to [`PassTexts::edge`].
    pub edges_upsert: Vec<usize>,
    pub edges_delete: Vec<(String, String)>,
    /// Every drift item, replacing the stored set: (namespace, workload, item JSON).
    pub drift: Vec<(String, Option<String>, String)>,
    /// Every drift item's (key, fingerprint): first-seen times are kept per key, and
    /// acknowledgements whose item is gone or changed are deleted.
    pub drift_keys: Vec<(String, String)>,
    pub changes: Vec<ChangeRow>,
    pub edges_total: u32,
    pub diagnostics: Vec<api::Diagnostic>,
}

/// Where a pass's large texts come from: every changed object's JSON and every changed edge's
/// row and explanation. They are made one chunk of rows at a time while the pass is written, so
/// a first pass over a large estate (15,000 workloads: 70,000 objects, 145,000 edges) never holds
/// them all at once.
pub trait PassTexts: Sync {
    /// The JSON of an object of [`Pass::objects_upsert`].
    fn object(&self, key: &ObjectKey) -> String;
    /// The row and explanation JSON of an edge of [`Pass::edges_upsert`].
    fn edge(&self, position: usize) -> (EdgeRow, String);
}

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

#[derive(FromRow)]
struct DraftRow {
    id: i64,
    name: String,
    yaml: String,
    created: String,
    updated: String,
}

impl From<DraftRow> for api::Draft {
    fn from(r: DraftRow) -> Self {
        api::Draft {
            id: r.id,
            name: r.name,
            yaml: r.yaml,
            created: r.created,
            updated: r.updated,
        }
    }
}

#[derive(FromRow)]
struct ChangeDbRow {
    id: i64,
    time: String,
    workload: String,
    source: String,
    target: String,
    change: String,
    state_before: Option<String>,
    state_after: Option<String>,
    changed_by: String,
}

fn parse_state(s: Option<String>) -> Result<Option<api::EdgeState>> {
    s.map(|s| s.parse().map_err(|_| Error::Corrupt(s, "state")))
        .transpose()
}

/// The stored graph, as the API serves it.
#[derive(Debug, Default)]
pub struct StoredView {
    pub nodes: Vec<(String, String)>,
    pub edges: Vec<(EdgeRow, String)>,
    pub drift: Vec<String>,
    /// First-seen time of each drift item, by key.
    pub drift_seen: HashMap<String, String>,
    pub run: Option<(i64, String)>,
}

impl Store {
    /// Open (creating if needed) the database at `path`, or an in-memory one for `:memory:`,
    /// and run the migrations. The database is a cache that the source can rebuild: a corrupt
    /// one is moved aside (its drafts and history stay in the moved file) and a new one made.
    pub async fn open(path: &str) -> Result<Store> {
        match Store::open_checked(path).await {
            Err(e) if path != ":memory:" && e.is_corruption() => {
                let secs = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let aside = format!("{path}.corrupt-{secs}");
                tracing::warn!(
                    path,
                    moved_to = %aside,
                    error = %e,
                    "the database is corrupt; moved aside, rebuilding it from the source"
                );
                std::fs::rename(path, &aside).map_err(|e| Error::MoveAside(path.into(), e))?;
                for suffix in ["-wal", "-shm"] {
                    let from = format!("{path}{suffix}");
                    if std::path::Path::new(&from).exists() {
                        std::fs::rename(&from, format!("{aside}{suffix}"))
                            .map_err(|e| Error::MoveAside(from.clone(), e))?;
                    }
                }
                Store::open_checked(path).await
            }
            r => r,
        }
    }

    /// Open, migrate and check the database (`PRAGMA quick_check`: every page readable).
    async fn open_checked(path: &str) -> Result<Store> {
        let store = Store::open_unchecked(path, None).await?;
        let check: Vec<String> = sqlx::query_scalar("PRAGMA quick_check")
            .fetch_all(&store.pool)
            .await?;
        if check != ["ok"] {
            store.pool.close().await;
            return Err(Error::CorruptFile(check.join("; ")));
        }
        Ok(store)
    }

    /// A database that cannot grow past `pages` pages: writes beyond fail as on a full disk.
    #[cfg(test)]
    pub async fn open_with_max_pages(path: &str, pages: u64) -> Result<Store> {
        Store::open_unchecked(path, Some(pages)).await
    }

    async fn open_unchecked(path: &str, max_pages: Option<u64>) -> Result<Store> {
        let memory = path == ":memory:";
        let options = if memory {
            SqliteConnectOptions::from_str("sqlite::memory:")?
        } else {
            if let Some(dir) = std::path::Path::new(path).parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::Dir(dir.display().to_string(), e))?;
            }
            SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
        }
        .foreign_keys(true)
        // A pass writes one large transaction; with SQLite's default 2 MiB page cache its dirty
        // pages spill to the log again and again. 32 MiB per connection keeps them in memory.
        .pragma("cache_size", "-32768")
        .busy_timeout(std::time::Duration::from_secs(10))
        // A pass runs thousands of statements; logging each would drown the sync's own logs.
        .disable_statement_logging();
        let options = match max_pages {
            Some(pages) => options.pragma("max_page_count", pages.to_string()),
            None => options,
        };
        // An in-memory database exists once per connection: keep exactly one, forever.
        let pool = if memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await?
        } else {
            SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await?
        };
        if let Err(e) = MIGRATOR.run(&pool).await {
            pool.close().await;
            return Err(e.into());
        }
        Ok(Store { pool })
    }

    /// The database's size in pages.
    #[cfg(test)]
    pub async fn page_count(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Close every connection (the last one checkpoints the write-ahead log into the file).
    #[cfg(test)]
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The hashes of the stored inventory objects, to write only what changed.
    pub async fn object_hashes(&self) -> Result<HashMap<ObjectKey, i64>> {
        let rows: Vec<(String, String, String, i64)> =
            sqlx::query_as("SELECT kind, namespace, name, hash FROM inventory_objects")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(k, ns, n, h)| ((k, ns, n), h))
            .collect())
    }

    /// Every stored edge, without explanations.
    pub async fn edges(&self) -> Result<Vec<EdgeRow>> {
        Ok(sqlx::query_as(
            "SELECT source, target, state, ports, declared_ports, declared, allowed, first_seen, last_changed FROM edges",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// The stored graph, drift and last run, to serve before the first sync of this process.
    pub async fn view(&self) -> Result<StoredView> {
        let nodes: Vec<(String, String)> =
            sqlx::query_as("SELECT node, detail FROM workloads ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        #[derive(FromRow)]
        struct Row {
            #[sqlx(flatten)]
            edge: EdgeRow,
            explanation: String,
        }
        let edges: Vec<Row> = sqlx::query_as(
            "SELECT source, target, state, ports, declared_ports, declared, allowed, first_seen, last_changed, explanation FROM edges ORDER BY source, target",
        )
        .fetch_all(&self.pool)
        .await?;
        let drift: Vec<(String,)> = sqlx::query_as("SELECT item FROM drift_items ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        let run: Option<(i64, String)> =
            sqlx::query_as("SELECT id, finished_at FROM sync_runs ORDER BY id DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await?;
        Ok(StoredView {
            nodes,
            edges: edges.into_iter().map(|r| (r.edge, r.explanation)).collect(),
            drift: drift.into_iter().map(|(d,)| d).collect(),
            drift_seen: self.drift_seen().await?,
            run,
        })
    }

    /// The first-seen time of every current drift item, by key.
    pub async fn drift_seen(&self) -> Result<HashMap<String, String>> {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT key, first_seen FROM drift_seen")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().collect())
    }

    /// Every acknowledgement: key → (fingerprint, acknowledgement).
    pub async fn drift_acks(&self) -> Result<HashMap<String, (String, api::Acknowledgement)>> {
        let rows: Vec<(String, String, String, String)> =
            sqlx::query_as("SELECT key, fingerprint, reason, acked_at FROM drift_acks")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(key, fp, reason, at)| (key, (fp, api::Acknowledgement { reason, at })))
            .collect())
    }

    /// Acknowledge the drift item `key` as it is now (`fingerprint`).
    pub async fn ack_drift(
        &self,
        key: &str,
        fingerprint: &str,
        reason: &str,
        at: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO drift_acks (key, fingerprint, reason, acked_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (key) DO UPDATE SET fingerprint = excluded.fingerprint, reason = excluded.reason, acked_at = excluded.acked_at",
        )
        .bind(key)
        .bind(fingerprint)
        .bind(reason)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Withdraw the acknowledgement of `key`; false when there was none.
    pub async fn unack_drift(&self, key: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM drift_acks WHERE key = ?")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Write one sync pass in one transaction; returns the run id.
    pub async fn write_pass(&self, pass: &Pass, texts: &dyn PassTexts) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        let run_id: i64 = sqlx::query_scalar(
            "INSERT INTO sync_runs (started_at, finished_at, source, objects, workloads, edges, changed, diagnostics) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&pass.started_at)
        .bind(&pass.finished_at)
        .bind(&pass.source)
        .bind(pass.objects)
        .bind(pass.workloads.len() as u32)
        .bind(pass.edges_total)
        .bind(pass.changes.len() as u32)
        .bind(serde_json::to_string(&pass.diagnostics)?)
        .fetch_one(&mut *tx)
        .await?;
        for (k, ns, n) in &pass.objects_delete {
            sqlx::query(
                "DELETE FROM inventory_objects WHERE kind = ? AND namespace = ? AND name = ?",
            )
            .bind(k)
            .bind(ns)
            .bind(n)
            .execute(&mut *tx)
            .await?;
        }
        for chunk in pass.objects_upsert.chunks(ROWS_PER_INSERT) {
            let json: Vec<String> = chunk.iter().map(|(key, ..)| texts.object(key)).collect();
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO inventory_objects (kind, namespace, name, hash, origin, object, updated_at) ",
            );
            q.push_values(
                chunk.iter().zip(&json),
                |mut b, (((k, ns, n), hash, origin), json)| {
                    b.push_bind(k)
                        .push_bind(ns)
                        .push_bind(n)
                        .push_bind(hash)
                        .push_bind(origin)
                        .push_bind(json)
                        .push_bind(&pass.finished_at);
                },
            );
            q.push(
                " ON CONFLICT (kind, namespace, name) DO UPDATE SET hash = excluded.hash, origin = excluded.origin, object = excluded.object, updated_at = excluded.updated_at",
            );
            q.build().execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM workloads")
            .execute(&mut *tx)
            .await?;
        for chunk in pass.workloads.chunks(ROWS_PER_INSERT) {
            let mut q =
                QueryBuilder::<Sqlite>::new("INSERT INTO workloads (id, namespace, node, detail) ");
            q.push_values(chunk, |mut b, (id, ns, node, detail)| {
                b.push_bind(id)
                    .push_bind(ns)
                    .push_bind(node)
                    .push_bind(detail);
            });
            q.build().execute(&mut *tx).await?;
        }
        for (s, t) in &pass.edges_delete {
            sqlx::query("DELETE FROM edges WHERE source = ? AND target = ?")
                .bind(s)
                .bind(t)
                .execute(&mut *tx)
                .await?;
        }
        for chunk in pass.edges_upsert.chunks(ROWS_PER_INSERT) {
            let rows: Vec<(EdgeRow, String)> = chunk.iter().map(|&i| texts.edge(i)).collect();
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO edges (source, target, state, ports, declared_ports, declared, allowed, explanation, first_seen, last_changed) ",
            );
            q.push_values(&rows, |mut b, (e, explanation)| {
                b.push_bind(&e.source)
                    .push_bind(&e.target)
                    .push_bind(e.state.as_str())
                    .push_bind(&e.ports)
                    .push_bind(&e.declared_ports)
                    .push_bind(e.declared)
                    .push_bind(e.allowed)
                    .push_bind(explanation)
                    .push_bind(&e.first_seen)
                    .push_bind(&e.last_changed);
            });
            q.push(
                " ON CONFLICT (source, target) DO UPDATE SET state = excluded.state, ports = excluded.ports, declared_ports = excluded.declared_ports,
                 declared = excluded.declared, allowed = excluded.allowed, explanation = excluded.explanation, last_changed = excluded.last_changed",
            );
            q.build().execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM drift_items")
            .execute(&mut *tx)
            .await?;
        for chunk in pass.drift.chunks(ROWS_PER_INSERT) {
            let mut q =
                QueryBuilder::<Sqlite>::new("INSERT INTO drift_items (namespace, workload, item) ");
            q.push_values(chunk, |mut b, (ns, workload, item)| {
                b.push_bind(ns).push_bind(workload).push_bind(item);
            });
            q.build().execute(&mut *tx).await?;
        }
        // First-seen times survive as long as the cause (the key) does; acknowledgements as long
        // as the cause is unchanged (same fingerprint).
        sqlx::query("CREATE TEMP TABLE IF NOT EXISTS pass_drift (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL)")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM pass_drift")
            .execute(&mut *tx)
            .await?;
        for chunk in pass.drift_keys.chunks(ROWS_PER_INSERT) {
            let mut q =
                QueryBuilder::<Sqlite>::new("INSERT OR IGNORE INTO pass_drift (key, fingerprint) ");
            q.push_values(chunk, |mut b, (key, fp)| {
                b.push_bind(key).push_bind(fp);
            });
            q.build().execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM drift_seen WHERE key NOT IN (SELECT key FROM pass_drift)")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO drift_seen (key, fingerprint, first_seen) SELECT key, fingerprint, ? FROM pass_drift WHERE true
             ON CONFLICT (key) DO UPDATE SET fingerprint = excluded.fingerprint",
        )
        .bind(&pass.finished_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM drift_acks WHERE NOT EXISTS (SELECT 1 FROM pass_drift p WHERE p.key = drift_acks.key AND p.fingerprint = drift_acks.fingerprint)",
        )
        .execute(&mut *tx)
        .await?;
        for chunk in pass.changes.chunks(ROWS_PER_INSERT) {
            let by: Vec<String> = chunk
                .iter()
                .map(|c| serde_json::to_string(&c.by))
                .collect::<Result<_, _>>()?;
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO changes (run_id, time, workload, source, target, change, state_before, state_after, changed_by) ",
            );
            q.push_values(chunk.iter().zip(&by), |mut b, (c, by)| {
                b.push_bind(run_id)
                    .push_bind(&pass.finished_at)
                    .push_bind(&c.workload)
                    .push_bind(&c.source)
                    .push_bind(&c.target)
                    .push_bind(c.change.as_str())
                    .push_bind(c.before.map(|s| s.as_str()))
                    .push_bind(c.after.map(|s| s.as_str()))
                    .push_bind(by);
            });
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(run_id)
    }

    /// Change-log entries, newest first.
    pub async fn history(&self, q: &api::HistoryQuery) -> Result<api::HistoryPage> {
        let limit = q.limit.unwrap_or(100).clamp(1, 1000) as i64;
        let before = q.before.unwrap_or(i64::MAX);
        let rows: Vec<ChangeDbRow> = match &q.workload {
            Some(w) => {
                sqlx::query_as(
                    "SELECT * FROM (
                       SELECT id, time, workload, source, target, change, state_before, state_after, changed_by FROM changes WHERE source = ?1 AND id < ?2
                       UNION SELECT id, time, workload, source, target, change, state_before, state_after, changed_by FROM changes WHERE target = ?1 AND id < ?2)
                     ORDER BY id DESC LIMIT ?3",
                )
                .bind(w)
                .bind(before)
                .bind(limit + 1)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query_as(
                    "SELECT id, time, workload, source, target, change, state_before, state_after, changed_by FROM changes WHERE id < ? ORDER BY id DESC LIMIT ?",
                )
                .bind(before)
                .bind(limit + 1)
                .fetch_all(&self.pool)
                .await?
            }
        };
        let more = rows.len() as i64 > limit;
        let entries = rows
            .into_iter()
            .take(limit as usize)
            .map(|r| {
                Ok(api::HistoryEntry {
                    id: r.id,
                    time: r.time,
                    workload: r.workload,
                    source: r.source,
                    target: r.target,
                    change: api::ChangeKind::parse(&r.change)
                        .ok_or_else(|| Error::Corrupt(r.change.clone(), "change"))?,
                    before: parse_state(r.state_before)?,
                    after: parse_state(r.state_after)?,
                    by: serde_json::from_str(&r.changed_by)?,
                })
            })
            .collect::<Result<Vec<api::HistoryEntry>>>()?;
        let next_before = if more {
            entries.last().map(|e| e.id)
        } else {
            None
        };
        Ok(api::HistoryPage {
            entries,
            next_before,
        })
    }

    #[cfg(test)]
    pub async fn sync_runs(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM sync_runs")
            .fetch_one(&self.pool)
            .await?)
    }

    // Writes that return rows run in an explicit transaction: SQLite commits an autocommit
    // statement only when it is stepped to its end, after the row has been returned, and a
    // failure then (a full disk) would be lost. `commit` reports it.
    pub async fn create_draft(&self, d: &api::NewDraft, now: &str) -> Result<api::Draft> {
        let mut tx = self.pool.begin().await?;
        let row: DraftRow = sqlx::query_as(
            "INSERT INTO drafts (name, yaml, created, updated) VALUES (?, ?, ?, ?) RETURNING id, name, yaml, created, updated",
        )
        .bind(&d.name)
        .bind(&d.yaml)
        .bind(now)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row.into())
    }

    pub async fn update_draft(
        &self,
        id: i64,
        d: &api::NewDraft,
        now: &str,
    ) -> Result<Option<api::Draft>> {
        let mut tx = self.pool.begin().await?;
        let row: Option<DraftRow> = sqlx::query_as(
            "UPDATE drafts SET name = ?, yaml = ?, updated = ? WHERE id = ? RETURNING id, name, yaml, created, updated",
        )
        .bind(&d.name)
        .bind(&d.yaml)
        .bind(now)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row.map(Into::into))
    }

    pub async fn drafts(&self) -> Result<Vec<api::Draft>> {
        let rows: Vec<DraftRow> =
            sqlx::query_as("SELECT id, name, yaml, created, updated FROM drafts ORDER BY id DESC")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn draft(&self, id: i64) -> Result<Option<api::Draft>> {
        let row: Option<DraftRow> =
            sqlx::query_as("SELECT id, name, yaml, created, updated FROM drafts WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(Into::into))
    }

    /// Whether a draft was deleted.
    pub async fn delete_draft(&self, id: i64) -> Result<bool> {
        let r = sqlx::query("DELETE FROM drafts WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(s: &str, t: &str, state: api::EdgeState) -> EdgeRow {
        EdgeRow {
            source: s.into(),
            target: t.into(),
            state,
            ports: "All Connections".into(),
            declared_ports: String::new(),
            declared: false,
            allowed: true,
            first_seen: "2026-01-01T00:00:00Z".into(),
            last_changed: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[tokio::test]
    async fn a_corrupt_database_is_moved_aside_and_rebuilt() {
        for garbage_from in [4096u64, 0] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("accord.db");
            let p = path.to_str().unwrap();
            let store = Store::open(p).await.unwrap();
            let draft = api::NewDraft {
                name: "kept aside".into(),
                yaml: "x".repeat(20_000),
            };
            store.create_draft(&draft, "now").await.unwrap();
            store.close().await;
            // Pages overwritten (from the second page on, or the header too).
            let len = std::fs::metadata(&path).unwrap().len();
            let mut bytes = std::fs::read(&path).unwrap();
            for b in &mut bytes[garbage_from as usize..len as usize] {
                *b = 0xA5;
            }
            std::fs::write(&path, bytes).unwrap();

            let store = Store::open(p)
                .await
                .expect("a corrupt cache is rebuilt, not fatal");
            assert!(store.drafts().await.unwrap().is_empty());
            store.create_draft(&draft, "now").await.unwrap();
            let aside: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .filter(|n| n.starts_with("accord.db.corrupt-"))
                .collect();
            // One database moved aside; its write-ahead log, when SQLite had made one before
            // finding the damage, goes with it (`…-wal`), never left beside the new database.
            let databases: Vec<&String> = aside
                .iter()
                .filter(|n| !n.ends_with("-wal") && !n.ends_with("-shm"))
                .collect();
            assert_eq!(databases.len(), 1, "{aside:?}");
            assert!(
                aside.iter().all(|n| n.starts_with(databases[0].as_str())),
                "{aside:?}"
            );
        }
    }

    /// The texts of a test pass: these edges, explained by `{}`.
    struct Edges(Vec<EdgeRow>);

    impl PassTexts for Edges {
        fn object(&self, _: &ObjectKey) -> String {
            "{}".into()
        }

        fn edge(&self, position: usize) -> (EdgeRow, String) {
            (self.0[position].clone(), "{}".into())
        }
    }

    async fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accord.db");
        let store = Store::open(path.to_str().unwrap()).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn pass_writes_edges_and_changes_and_history_pages_newest_first() {
        let (_dir, store) = temp_store().await;
        for i in 0..3 {
            let texts = Edges(vec![edge("a/x", &format!("a/y{i}"), api::EdgeState::Open)]);
            let pass = Pass {
                started_at: "t".into(),
                finished_at: format!("2026-01-01T00:00:0{i}Z"),
                source: "test".into(),
                edges_upsert: vec![0],
                changes: vec![ChangeRow {
                    workload: format!("a/y{i}"),
                    source: "a/x".into(),
                    target: format!("a/y{i}"),
                    change: api::ChangeKind::Granted,
                    before: None,
                    after: Some(api::EdgeState::Open),
                    by: vec!["NetworkPolicy a/p".into()],
                }],
                ..Pass::default()
            };
            store.write_pass(&pass, &texts).await.unwrap();
        }
        assert_eq!(store.edges().await.unwrap().len(), 3);
        let page = store
            .history(&api::HistoryQuery {
                limit: Some(2),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.entries.len(), 2);
        assert_eq!(page.entries[0].target, "a/y2");
        let next = store
            .history(&api::HistoryQuery {
                before: page.next_before,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(next.entries.len(), 1);
        assert_eq!(next.entries[0].target, "a/y0");
        assert_eq!(next.next_before, None);
        let by_workload = store
            .history(&api::HistoryQuery {
                workload: Some("a/y1".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(by_workload.entries.len(), 1);
        assert_eq!(by_workload.entries[0].by, vec!["NetworkPolicy a/p"]);
    }

    #[tokio::test]
    async fn failed_pass_leaves_the_previous_one_intact() {
        let (_dir, store) = temp_store().await;
        let texts = Edges(vec![edge("a/x", "a/y", api::EdgeState::Open)]);
        let pass = Pass {
            edges_upsert: vec![0],
            ..Pass::default()
        };
        store.write_pass(&pass, &texts).await.unwrap();
        // Make the pass fail after its edge deletion ran inside the transaction.
        sqlx::query("CREATE TRIGGER fail BEFORE INSERT ON drift_items BEGIN SELECT RAISE(ABORT, 'boom'); END")
            .execute(&store.pool)
            .await
            .unwrap();
        let bad = Pass {
            edges_delete: vec![("a/x".into(), "a/y".into())],
            drift: vec![("a".into(), None, "{}".into())],
            ..Pass::default()
        };
        assert!(store.write_pass(&bad, &texts).await.is_err());
        assert_eq!(store.edges().await.unwrap().len(), 1);
        assert_eq!(store.sync_runs().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn drafts_round_trip() {
        let store = Store::open(":memory:").await.unwrap();
        let d = store
            .create_draft(
                &api::NewDraft {
                    name: "n".into(),
                    yaml: "y".into(),
                },
                "now",
            )
            .await
            .unwrap();
        assert_eq!(store.draft(d.id).await.unwrap().unwrap().yaml, "y");
        let u = store
            .update_draft(
                d.id,
                &api::NewDraft {
                    name: "n2".into(),
                    yaml: "y2".into(),
                },
                "later",
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!((u.name.as_str(), u.updated.as_str()), ("n2", "later"));
        assert_eq!(store.drafts().await.unwrap().len(), 1);
        assert!(store.delete_draft(d.id).await.unwrap());
        assert!(!store.delete_draft(d.id).await.unwrap());
        assert!(store.draft(d.id).await.unwrap().is_none());
    }
}
