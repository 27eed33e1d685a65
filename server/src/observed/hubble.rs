//! The Hubble client: `GetFlows` with `follow` against Hubble Relay (or one agent), over plain
//! HTTP/2 or TLS (CA, client certificate, server name), reconnecting with backoff and resuming
//! from the last flow time it delivered (`since`).

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::collector::Input;
use super::convert::{self, Event};
use super::proto::observer::GetFlowsRequest;
use super::proto::observer::observer_client::ObserverClient;

/// Where and how to reach Hubble.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// `host:port`, `http://host:port` or `https://host:port`.
    pub address: String,
    /// PEM CA bundle that signs the server's certificate (enables TLS).
    pub ca: Option<PathBuf>,
    /// PEM client certificate and key for mutual TLS (Hubble Relay's default when TLS is on).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The name to check the server's certificate against (default: the address's host).
    pub server_name: Option<String>,
    /// Longest wait between reconnection attempts.
    pub max_backoff: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid Hubble address {0:?}: {1}")]
    Address(String, String),
    #[error("reading {0}: {1}")]
    Read(String, std::io::Error),
    #[error("TLS settings: {0}")]
    Tls(tonic::transport::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Config {
    fn tls(&self) -> bool {
        self.address.starts_with("https://")
            || self.ca.is_some()
            || self.cert.is_some()
            || self.server_name.is_some()
    }

    /// The channel endpoint (validated once, before the first connection).
    pub fn endpoint(&self) -> Result<Endpoint> {
        let tls = self.tls();
        let uri = if self.address.contains("://") {
            self.address.clone()
        } else if tls {
            format!("https://{}", self.address)
        } else {
            format!("http://{}", self.address)
        };
        let mut ep = Endpoint::from_shared(uri)
            .map_err(|e| Error::Address(self.address.clone(), e.to_string()))?
            .connect_timeout(Duration::from_secs(10))
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(20));
        if tls {
            let read =
                |p: &PathBuf| std::fs::read(p).map_err(|e| Error::Read(p.display().to_string(), e));
            let mut t = ClientTlsConfig::new();
            if let Some(ca) = &self.ca {
                t = t.ca_certificate(Certificate::from_pem(read(ca)?));
            }
            match (&self.cert, &self.key) {
                (Some(c), Some(k)) => t = t.identity(Identity::from_pem(read(c)?, read(k)?)),
                (None, None) => {}
                _ => {
                    return Err(Error::Address(
                        self.address.clone(),
                        "a client certificate needs its key, and a key its certificate".into(),
                    ));
                }
            }
            if let Some(name) = &self.server_name {
                t = t.domain_name(name.clone());
            }
            ep = ep.tls_config(t).map_err(Error::Tls)?;
        }
        Ok(ep)
    }
}

pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Follow Hubble until `tx` closes: connect, stream, and on any error or end of stream report
/// the disconnection, wait (1 s doubling to `max_backoff`) and resume after the last flow time
/// delivered. `resume` is where the previous run stopped (0: from now on).
pub async fn follow(config: Config, mut resume: i64, tx: mpsc::Sender<Input>) -> Result<()> {
    let endpoint = config.endpoint()?;
    let max_backoff = if config.max_backoff.is_zero() {
        Duration::from_secs(30)
    } else {
        config.max_backoff
    };
    let mut backoff = Duration::from_secs(1);
    loop {
        let mut delivered = false;
        match stream_once(&endpoint, &mut resume, &tx, &mut delivered).await {
            Ok(Ended::Closed) => return Ok(()),
            Ok(Ended::Stream) => {
                tracing::warn!(address = %config.address, "Hubble ended the flow stream; reconnecting");
            }
            Err(e) => {
                tracing::warn!(address = %config.address, error = %e, retry_in = ?backoff, "Hubble connection failed");
            }
        }
        if tx.send(Input::Disconnected(now_nanos())).await.is_err() {
            return Ok(());
        }
        // A connection that delivered flows was healthy: the next attempt starts over.
        if delivered {
            backoff = Duration::from_secs(1);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(max_backoff);
    }
}

enum Ended {
    /// The collector went away.
    Closed,
    /// The server ended the stream.
    Stream,
}

async fn stream_once(
    endpoint: &Endpoint,
    resume: &mut i64,
    tx: &mpsc::Sender<Input>,
    delivered: &mut bool,
) -> Result<Ended, tonic::Status> {
    let channel: Channel = endpoint
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(format!("connecting: {e}")))?;
    let mut client = ObserverClient::new(channel).max_decoding_message_size(16 << 20);
    let request = GetFlowsRequest {
        follow: true,
        // Resume just after the last flow delivered; Hubble then replays what its ring buffer
        // still holds from there on, and follows.
        since: (*resume > 0).then(|| convert::timestamp(*resume + 1)),
        ..GetFlowsRequest::default()
    };
    let mut stream = client.get_flows(request).await?.into_inner();
    if tx.send(Input::Connected(now_nanos())).await.is_err() {
        return Ok(Ended::Closed);
    }
    tracing::info!("following Hubble flows");
    while let Some(response) = stream.message().await? {
        let Some(event) = convert::response(response) else {
            continue;
        };
        if let Event::Flow(f) = &event {
            *resume = (*resume).max(f.time);
            *delivered = true;
        }
        // Waiting here (rather than dropping) pushes back on the stream: nothing Hubble
        // delivered is lost to a slow writer.
        if tx.send(Input::Event(event)).await.is_err() {
            return Ok(Ended::Closed);
        }
    }
    Ok(Ended::Stream)
}
