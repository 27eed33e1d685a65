//! Observed traffic in SQLite: aggregates upserted in batches (counts add up, first and last
//! seen widen), the coverage of the observation window, the resume point, and retention.

use accord_policy::objects::Protocol;
use accord_policy::observed::{Aggregate, Class, Coverage, Key, Party};
use sqlx::{FromRow, QueryBuilder, Sqlite};

use super::{Error, Result, Store};

#[derive(FromRow)]
struct ObservationRow {
    class: String,
    client: String,
    server: String,
    protocol: String,
    port: i64,
    first_seen: i64,
    last_seen: i64,
    count: i64,
    forwarded: i64,
    dropped: i64,
    audit: i64,
}

impl ObservationRow {
    fn parse(self) -> Result<(Key, Aggregate)> {
        let class = Class::parse(&self.class).ok_or(Error::Corrupt(self.class, "class"))?;
        let client = Party::parse(&self.client).ok_or(Error::Corrupt(self.client, "client"))?;
        let server = Party::parse(&self.server).ok_or(Error::Corrupt(self.server, "server"))?;
        let protocol = match self.protocol.as_str() {
            "TCP" => Protocol::Tcp,
            "UDP" => Protocol::Udp,
            "SCTP" => Protocol::Sctp,
            _ => return Err(Error::Corrupt(self.protocol, "protocol")),
        };
        let port =
            u16::try_from(self.port).map_err(|_| Error::Corrupt(self.port.to_string(), "port"))?;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok((
            Key {
                class,
                client,
                server,
                protocol,
                port,
            },
            Aggregate {
                first_seen: self.first_seen,
                last_seen: self.last_seen,
                count: n(self.count),
                forwarded: n(self.forwarded),
                dropped: n(self.dropped),
                audit: n(self.audit),
            },
        ))
    }
}

/// Which observations to read.
#[derive(Clone, Debug, Default)]
pub struct ObservedQuery<'a> {
    /// Only those last seen at or after this time.
    pub since: i64,
    /// Only those with this server (as [`Party`] prints it).
    pub server: Option<&'a str>,
    /// Only this class.
    pub class: Option<Class>,
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Store {
    /// Add a batch of aggregates (deltas since the last write), and store the window's coverage
    /// and the resume point, in one transaction. With `horizon`, forget observations last seen
    /// before it (retention).
    pub async fn write_observations(
        &self,
        batch: &[(Key, Aggregate)],
        coverage: &Coverage,
        latest: i64,
        horizon: Option<i64>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // 11 parameters a row; SQLite allows 32,766 per statement.
        for chunk in batch.chunks(2000) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO observations (class, client, server, protocol, port, first_seen, \
                 last_seen, count, forwarded, dropped, audit) ",
            );
            q.push_values(chunk, |mut b, (k, a)| {
                b.push_bind(k.class.as_str())
                    .push_bind(k.client.to_string())
                    .push_bind(k.server.to_string())
                    .push_bind(k.protocol.as_str())
                    .push_bind(i64::from(k.port))
                    .push_bind(a.first_seen)
                    .push_bind(a.last_seen)
                    .push_bind(to_i64(a.count))
                    .push_bind(to_i64(a.forwarded))
                    .push_bind(to_i64(a.dropped))
                    .push_bind(to_i64(a.audit));
            });
            q.push(
                " ON CONFLICT (class, client, server, protocol, port) DO UPDATE SET \
                 first_seen = min(first_seen, excluded.first_seen), \
                 last_seen = max(last_seen, excluded.last_seen), \
                 count = count + excluded.count, \
                 forwarded = forwarded + excluded.forwarded, \
                 dropped = dropped + excluded.dropped, \
                 audit = audit + excluded.audit",
            );
            q.build().execute(&mut *tx).await?;
        }
        if let Some(h) = horizon {
            sqlx::query("DELETE FROM observations WHERE last_seen < ?")
                .bind(h)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM observation_coverage")
            .execute(&mut *tx)
            .await?;
        for &(from, to) in &coverage.intervals {
            sqlx::query(
                "INSERT INTO observation_coverage (connected_from, connected_to) VALUES (?, ?)",
            )
            .bind(from)
            .bind(to)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM observation_lost")
            .execute(&mut *tx)
            .await?;
        for (&minute, &count) in &coverage.lost {
            sqlx::query("INSERT INTO observation_lost (minute, count) VALUES (?, ?)")
                .bind(minute)
                .bind(to_i64(count))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO observation_resume (id, latest) VALUES (1, ?) \
             ON CONFLICT (id) DO UPDATE SET latest = max(latest, excluded.latest)",
        )
        .bind(latest)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The stored coverage and resume point (the latest flow time stored; 0 when none).
    pub async fn observation_window(&self) -> Result<(Coverage, i64)> {
        let mut coverage = Coverage::default();
        let intervals: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT connected_from, connected_to FROM observation_coverage ORDER BY connected_from",
        )
        .fetch_all(&self.pool)
        .await?;
        for (a, b) in intervals {
            coverage.connected(a, b);
        }
        let lost: Vec<(i64, i64)> = sqlx::query_as("SELECT minute, count FROM observation_lost")
            .fetch_all(&self.pool)
            .await?;
        for (minute, count) in lost {
            coverage.lost(minute, u64::try_from(count).unwrap_or(0));
        }
        let latest: Option<i64> =
            sqlx::query_scalar("SELECT latest FROM observation_resume WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?;
        Ok((coverage, latest.unwrap_or(0)))
    }

    /// Stored observations, sorted by key.
    pub async fn observations(&self, q: &ObservedQuery<'_>) -> Result<Vec<(Key, Aggregate)>> {
        let mut b = QueryBuilder::<Sqlite>::new(
            "SELECT class, client, server, protocol, port, first_seen, last_seen, count, \
             forwarded, dropped, audit FROM observations WHERE last_seen >= ",
        );
        b.push_bind(q.since);
        if let Some(server) = q.server {
            b.push(" AND server = ").push_bind(server);
        }
        if let Some(class) = q.class {
            b.push(" AND class = ").push_bind(class.as_str());
        }
        let rows: Vec<ObservationRow> = b.build_query_as().fetch_all(&self.pool).await?;
        let mut out = rows
            .into_iter()
            .map(ObservationRow::parse)
            .collect::<Result<Vec<_>>>()?;
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use accord_policy::identity::WorkloadId;

    fn key(client: &str, port: u16) -> Key {
        Key {
            class: Class::Call,
            client: Party::Workload {
                workload: WorkloadId::new("shop", client, Some("Deployment")),
            },
            server: Party::External {
                address: "api.example.com".into(),
            },
            protocol: Protocol::Tcp,
            port,
        }
    }

    fn agg(first: i64, last: i64, count: u64, dropped: u64) -> Aggregate {
        Aggregate {
            first_seen: first,
            last_seen: last,
            count,
            forwarded: count - dropped,
            dropped,
            audit: 0,
        }
    }

    #[tokio::test]
    async fn batches_add_up_and_retention_forgets_old_observations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accord.db");
        let store = Store::open(path.to_str().unwrap()).await.unwrap();
        let mut cov = Coverage::default();
        cov.connected(0, 100);
        store
            .write_observations(&[(key("web", 443), agg(10, 20, 3, 1))], &cov, 20, None)
            .await
            .unwrap();
        cov.lost(50, 7);
        store
            .write_observations(
                &[
                    (key("web", 443), agg(5, 40, 2, 0)),
                    (key("cart", 443), agg(1, 2, 1, 0)),
                ],
                &cov,
                40,
                None,
            )
            .await
            .unwrap();
        let all = store.observations(&ObservedQuery::default()).await.unwrap();
        assert_eq!(all.len(), 2);
        let web = all.iter().find(|(k, _)| *k == key("web", 443)).unwrap();
        assert_eq!(web.1, agg(5, 40, 5, 1));
        let (stored_cov, latest) = store.observation_window().await.unwrap();
        assert_eq!(stored_cov, cov);
        assert_eq!(latest, 40);
        // Retention: cart was last seen at 2.
        store
            .write_observations(&[], &cov, 40, Some(10))
            .await
            .unwrap();
        let left = store.observations(&ObservedQuery::default()).await.unwrap();
        assert_eq!(left.len(), 1);
        let since = store
            .observations(&ObservedQuery {
                since: 41,
                ..ObservedQuery::default()
            })
            .await
            .unwrap();
        assert!(since.is_empty());
    }
}
