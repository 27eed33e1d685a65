//! Recorded flows: `--flows PATH` reads `hubble observe -o jsonpb` output and the Hubble
//! exporter's `events.log` (and its rotated, possibly gzipped, files) from files, directories
//! (recursively, in name order: `*.json`, `*.jsonl`, `*.log` and their `.gz`) and standard
//! input (`-`).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use accord_policy::observed::{IpHistory, Observations};

use super::convert::Event;
use super::jsonpb;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Decode { path: String, source: jsonpb::Error },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn is_flow_file(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let name = name.strip_suffix(".gz").unwrap_or(name);
    !name.starts_with('.')
        && [".json", ".jsonl", ".log"]
            .iter()
            .any(|ext| name.ends_with(ext))
}

/// The files named, directories expanded (sorted, regular files only).
fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(p.clone());
            continue;
        }
        let meta = std::fs::metadata(p).map_err(|source| Error::Read {
            path: p.display().to_string(),
            source,
        })?;
        if meta.is_dir() {
            let mut stack = vec![p.clone()];
            let mut found = Vec::new();
            while let Some(dir) = stack.pop() {
                let entries = std::fs::read_dir(&dir).map_err(|source| Error::Read {
                    path: dir.display().to_string(),
                    source,
                })?;
                for e in entries.flatten() {
                    let Ok(t) = e.file_type() else { continue };
                    if t.is_dir() {
                        stack.push(e.path());
                    } else if t.is_file() && is_flow_file(&e.path()) {
                        found.push(e.path());
                    }
                }
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn open(path: &Path) -> Result<Box<dyn BufRead>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(BufReader::new(std::io::stdin())));
    }
    let file = File::open(path).map_err(|source| Error::Read {
        path: path.display().to_string(),
        source,
    })?;
    if path.extension().is_some_and(|e| e == "gz") {
        Ok(Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(
            file,
        ))))
    } else {
        Ok(Box::new(BufReader::with_capacity(1 << 16, file)))
    }
}

/// Every event of the paths, in order.
pub fn read(paths: &[PathBuf], mut each: impl FnMut(Event)) -> Result<()> {
    for path in expand(paths)? {
        let reader = open(&path)?;
        jsonpb::read(reader, &mut each).map_err(|source| Error::Decode {
            path: path.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

/// Read recorded flows into observations. A recording counts as connected from its first event
/// to its last (it cannot say more); the lost events it reports are kept, so "not observed"
/// claims over a recording with losses are refused.
pub fn observe(paths: &[PathBuf], ips: &IpHistory) -> Result<Observations> {
    let mut obs = Observations::new();
    let mut span: Option<(i64, i64)> = None;
    read(paths, |event| {
        let t = match &event {
            Event::Flow(f) => {
                obs.ingest(f, ips);
                f.time
            }
            Event::Lost { time, count, .. } => {
                obs.coverage.lost(*time, *count);
                *time
            }
        };
        if t != 0 {
            span = Some(span.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
        }
    })?;
    if let Some((a, b)) = span {
        obs.coverage.connected(a, b);
    }
    // The recording has ended: calls still waiting for their other end's report count now.
    obs.settle();
    Ok(obs)
}
