//! Reading manifest files and directories from disk into core [`Source`]s.

use std::path::{Path, PathBuf};

use accord_policy::load as core_load;
use accord_policy::{Diagnostic, Inventory, Source};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: no such file or directory")]
    NotFound { path: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let io = |source| Error::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out)?;
        } else if is_manifest(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// The manifest files named by `paths`: files as given (any extension), directories searched
/// recursively for `*.yaml`, `*.yml` and `*.json`, in sorted order.
pub fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else if p.exists() || p.as_os_str() == "-" {
            out.push(p.clone());
        } else {
            return Err(Error::NotFound {
                path: p.display().to_string(),
            });
        }
    }
    Ok(out)
}

/// Read every manifest under `paths` (`-` reads standard input).
pub fn read(paths: &[PathBuf]) -> Result<Vec<Source>> {
    files(paths)?
        .into_iter()
        .map(|path| {
            let text = if path.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())
            } else {
                std::fs::read_to_string(&path)
            };
            let name = if path.as_os_str() == "-" {
                "<stdin>".to_string()
            } else {
                path.display().to_string()
            };
            text.map(|t| Source::new(name.clone(), t))
                .map_err(|source| Error::Io { path: name, source })
        })
        .collect()
}

/// Load sources into a finished inventory, parsing YAML documents on every core.
///
/// Parsing dominates on large inputs, and documents are independent, so they are split into
/// contiguous groups of similar size, each parsed into its own inventory on its own thread, then
/// merged in input order: the result is the same as [`accord_policy::load`]'s.
pub fn load(sources: &[Source]) -> (Inventory, Vec<Diagnostic>) {
    enum Task<'a> {
        Yaml {
            path: &'a str,
            number: usize,
            text: &'a str,
        },
        Whole(&'a Source),
    }
    let mut tasks = Vec::new();
    for s in sources {
        let t = s.text.trim_start();
        if s.path.ends_with(".json") || t.starts_with('{') || t.starts_with('[') {
            tasks.push(Task::Whole(s));
        } else {
            for (number, text) in core_load::split_yaml_documents(&s.text) {
                tasks.push(Task::Yaml {
                    path: &s.path,
                    number,
                    text,
                });
            }
        }
    }
    let size = |t: &Task| match t {
        Task::Yaml { text, .. } => text.len(),
        Task::Whole(s) => s.text.len(),
    };
    let total: usize = tasks.iter().map(size).sum();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    // Small inputs are not worth a thread.
    let groups = if total < 256 * 1024 { 1 } else { threads };
    let per_group = total.div_ceil(groups).max(1);
    let mut chunks: Vec<&[Task]> = Vec::new();
    let (mut start, mut acc) = (0, 0);
    for (i, t) in tasks.iter().enumerate() {
        acc += size(t);
        if acc >= per_group {
            chunks.push(&tasks[start..=i]);
            start = i + 1;
            acc = 0;
        }
    }
    if start < tasks.len() {
        chunks.push(&tasks[start..]);
    }
    let run = |chunk: &[Task]| {
        let mut inv = Inventory::default();
        let mut diags = Vec::new();
        for t in chunk {
            match t {
                Task::Yaml { path, number, text } => {
                    core_load::load_yaml_document(&mut inv, path, *number, text, &mut diags)
                }
                Task::Whole(s) => core_load::load_into(&mut inv, s, &mut diags),
            }
        }
        (inv, diags)
    };
    let parts: Vec<(Inventory, Vec<Diagnostic>)> = if chunks.len() <= 1 {
        chunks.iter().map(|c| run(c)).collect()
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = chunks.iter().map(|c| scope.spawn(|| run(c))).collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("manifest parser thread panicked"))
                .collect()
        })
    };
    let mut inv = Inventory::default();
    let mut diags = Vec::new();
    for (part, d) in parts {
        inv.merge(part);
        diags.extend(d);
    }
    inv.finish();
    (inv, diags)
}

#[cfg(test)]
mod tests {
    use accord_policy::synthetic::{self, Spec};

    #[test]
    fn parallel_load_matches_the_core_loader() {
        let spec = Spec {
            workloads: 900,
            namespaces: 30,
            calls: 3000,
            ..Spec::LARGE
        };
        let mut sources = synthetic::manifests(&spec);
        sources.push(accord_policy::Source::new(
            "broken.yaml",
            "a: [1\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\n",
        ));
        let (a, da) = accord_policy::load(&sources);
        let (b, db) = super::load(&sources);
        assert_eq!(da, db);
        assert_eq!(da.len(), 1);
        assert_eq!(a.pods, b.pods);
        assert_eq!(a.workloads, b.workloads);
        assert_eq!(a.intents, b.intents);
        assert_eq!(a.namespaces, b.namespaces);
        assert_eq!(a.services, b.services);
    }
}
