//! Reading manifest files and directories from disk into core [`Source`]s.

use std::path::{Path, PathBuf};

use accord_policy::load as core_load;
use accord_policy::{Diagnostic, Inventory, Origin, Source};

/// What reading manifest paths gave: the files read, and a diagnostic for each path that could
/// not be (missing, unreadable, not a regular file, not UTF-8 text). One bad file never stops
/// the others from being read.
#[derive(Debug, Default)]
pub struct Reading {
    pub sources: Vec<Source>,
    pub diagnostics: Vec<Diagnostic>,
    /// The paths behind `diagnostics` (files, or paths named on the command line).
    pub failed: Vec<String>,
}

impl Reading {
    fn fail(&mut self, path: &Path, message: impl Into<String>) {
        let name = path.display().to_string();
        self.diagnostics.push(Diagnostic::error(
            accord_policy::DiagnosticCode::Unreadable,
            &Origin::new(name.clone(), 0),
            "",
            "",
            message,
        ));
        self.failed.push(name);
    }
}

/// Files larger than this are refused unread.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// What a walk has already seen, by canonical path: a directory reached twice (a symlink loop,
/// or two links to one tree) is walked once, a file reached twice is read once.
#[derive(Default)]
struct Seen {
    dirs: std::collections::HashSet<PathBuf>,
    files: std::collections::HashSet<PathBuf>,
}

fn walk(dir: &Path, seen: &mut Seen, out: &mut Vec<PathBuf>, problems: &mut Reading) {
    match std::fs::canonicalize(dir) {
        Ok(real) => {
            if !seen.dirs.insert(real) {
                return;
            }
        }
        Err(e) => return problems.fail(dir, e.to_string()),
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => return problems.fail(dir, e.to_string()),
    };
    let mut paths: Vec<PathBuf> = Vec::new();
    for e in entries {
        match e {
            Ok(e) => paths.push(e.path()),
            Err(e) => problems.fail(dir, e.to_string()),
        }
    }
    paths.sort();
    for path in paths {
        // Follows symbolic links; a dangling one has no metadata.
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                if is_manifest(&path) {
                    let dangling =
                        std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
                    problems.fail(
                        &path,
                        if dangling {
                            "a symbolic link to nothing; skipped".to_string()
                        } else {
                            e.to_string()
                        },
                    );
                }
                continue;
            }
        };
        if meta.is_dir() {
            walk(&path, seen, out, problems);
        } else if !is_manifest(&path) {
        } else if !meta.is_file() {
            // A FIFO would block the reader forever, a device could be endless.
            problems.fail(
                &path,
                "not a regular file (a FIFO, socket or device); skipped",
            );
        } else if let Ok(real) = std::fs::canonicalize(&path)
            && seen.files.insert(real)
        {
            out.push(path);
        }
    }
}

/// The manifest files named by `paths`: files as given (any extension, pipes included, as from
/// `<(command)`), directories searched recursively for regular `*.yaml`, `*.yml` and `*.json`
/// files, in sorted order. Paths that cannot be listed become diagnostics in the `Reading`.
pub fn files(paths: &[PathBuf]) -> (Vec<PathBuf>, Reading) {
    let mut out = Vec::new();
    let mut problems = Reading::default();
    let mut seen = Seen::default();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(p.clone());
        } else if p.is_dir() {
            walk(p, &mut seen, &mut out, &mut problems);
        } else if p.exists() {
            out.push(p.clone());
        } else {
            problems.fail(p, "no such file or directory");
        }
    }
    (out, problems)
}

/// A file's bytes as text: a UTF-8 byte-order mark is dropped; anything else that is not UTF-8
/// is refused with what it looks like.
pub fn decode(bytes: Vec<u8>) -> Result<String, String> {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err("the file is UTF-16 text; manifests must be UTF-8".into());
    }
    match String::from_utf8(bytes) {
        Ok(mut text) => {
            if text.starts_with('\u{feff}') {
                text.drain(..'\u{feff}'.len_utf8());
            }
            Ok(text)
        }
        Err(e) => Err(format!(
            "not UTF-8 text (binary?): invalid byte at offset {}",
            e.utf8_error().valid_up_to()
        )),
    }
}

fn read_file(path: &Path) -> Result<String, String> {
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).map_err(|e| e.to_string())?;
        return decode(bytes);
    }
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > MAX_FILE_BYTES {
        return Err(format!(
            "{len} bytes is over the limit of {MAX_FILE_BYTES}; skipped"
        ));
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_FILE_BYTES + 1),
        &mut bytes,
    )
    .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("over the limit of {MAX_FILE_BYTES} bytes; skipped"));
    }
    decode(bytes)
}

/// Read every manifest under `paths` (`-` reads standard input). A file that cannot be read is
/// a diagnostic; the others are read.
pub fn read(paths: &[PathBuf]) -> Reading {
    let (files, mut reading) = files(paths);
    for path in files {
        let name = if path.as_os_str() == "-" {
            "<stdin>".to_string()
        } else {
            path.display().to_string()
        };
        match read_file(&path) {
            Ok(text) => reading.sources.push(Source::new(name, text)),
            Err(message) => reading.fail(Path::new(&name), message),
        }
    }
    reading
}

/// A path named on the command line that does not exist: a usage error, unlike a file in a
/// directory that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: no such file or directory")]
pub struct NotFound {
    pub path: String,
}

/// [`read`] for the CLI: every path named must exist.
pub fn read_named(paths: &[PathBuf]) -> Result<Reading, NotFound> {
    if let Some(p) = paths
        .iter()
        .find(|p| p.as_os_str() != "-" && !p.exists() && std::fs::symlink_metadata(p).is_err())
    {
        return Err(NotFound {
            path: p.display().to_string(),
        });
    }
    Ok(read(paths))
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
            line: usize,
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
            for (number, line, text) in core_load::yaml_documents(&s.text) {
                tasks.push(Task::Yaml {
                    path: &s.path,
                    number,
                    line,
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
                Task::Yaml {
                    path,
                    number,
                    line,
                    text,
                } => {
                    core_load::load_yaml_document(&mut inv, path, *number, *line, text, &mut diags)
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
    core_load::reject_duplicates(&mut inv, &mut diags);
    inv.finish();
    (inv, diags)
}

#[cfg(test)]
mod tests {
    use accord_policy::synthetic::{self, Spec};

    const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: a}\n";

    #[test]
    fn fifos_dangling_links_and_bad_text_are_diagnostics_and_the_rest_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("good.yaml"), POD).unwrap();
        std::fs::write(d.join("binary.yaml"), b"kind: \xff\xfe\x00 x").unwrap();
        std::fs::write(d.join("utf16.yaml"), b"\xff\xfek\x00").unwrap();
        std::fs::write(
            d.join("bom.yaml"),
            format!("\u{feff}{POD}").replace("name: p", "name: q"),
        )
        .unwrap();
        std::os::unix::fs::symlink(d.join("nowhere.yaml"), d.join("dangling.yaml")).unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(d.join("fifo.yaml"))
            .status()
            .unwrap();
        assert!(status.success());
        // A directory link to its parent: a loop.
        std::os::unix::fs::symlink(".", d.join("self")).unwrap();

        let t = std::time::Instant::now();
        let reading = super::read(&[d.to_path_buf()]);
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
        let names: Vec<&str> = reading.sources.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(
            names.len(),
            2,
            "each file once, through the loop too: {names:?}"
        );
        assert!(names[0].ends_with("bom.yaml") && names[1].ends_with("good.yaml"));
        assert!(!reading.sources[0].text.starts_with('\u{feff}'));
        let problem = |file: &str| {
            reading
                .diagnostics
                .iter()
                .find(|d| d.origin.file.ends_with(file))
                .unwrap_or_else(|| panic!("no diagnostic for {file}: {:?}", reading.diagnostics))
                .message
                .clone()
        };
        assert!(problem("binary.yaml").contains("not UTF-8"));
        assert!(problem("utf16.yaml").contains("UTF-16"));
        assert!(problem("dangling.yaml").contains("symbolic link"));
        assert!(problem("fifo.yaml").contains("not a regular file"));
        assert_eq!(reading.diagnostics.len(), 4, "{:?}", reading.diagnostics);
        assert_eq!(reading.failed.len(), 4);

        let (inv, diags) = super::load(&reading.sources);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(inv.pods.len(), 2);
    }

    #[test]
    fn a_missing_path_is_a_diagnostic() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("good.yaml"), POD).unwrap();
        let reading = super::read(&[dir.path().join("gone"), dir.path().join("good.yaml")]);
        assert_eq!(reading.sources.len(), 1);
        assert!(reading.diagnostics[0].message.contains("no such file"));
    }

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
