//! `docs/otterize-compat.md` stays true: every label and annotation key Accord's code knows has a
//! row in its tables, and every test a row names exists.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// The `intents.otterize.com/…` string constants declared in a source file.
fn key_constants(source: &str) -> Vec<String> {
    source
        .lines()
        .filter(|l| l.trim_start().starts_with("pub const") && l.contains(": &str = \""))
        .filter_map(|l| l.split('"').nth(1))
        .filter(|v| v.starts_with("intents.otterize.com/"))
        .map(str::to_string)
        .collect()
}

/// The first cell of every table row of the document.
fn first_cells(doc: &str) -> Vec<String> {
    doc.lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| l.split('|').nth(1))
        .map(|c| c.trim().to_string())
        .collect()
}

#[test]
fn every_label_and_annotation_key_has_a_row() {
    let doc = read("docs/otterize-compat.md");
    let cells = first_cells(&doc);
    let mut keys = Vec::new();
    for file in [
        "crates/policy/src/labels.rs",
        "crates/policy/src/identity.rs",
        "crates/policy/src/intents/convert.rs",
    ] {
        keys.extend(key_constants(&read(file)));
    }
    assert!(keys.len() >= 10, "found only {keys:?}");
    for key in keys {
        // A prefix constant (`…/access-`) is documented with its placeholder.
        let found = cells.iter().any(|c| {
            c.strip_prefix('`').is_some_and(|c| {
                c.starts_with(&key) && (key.ends_with('-') || c[key.len()..].starts_with('`'))
            })
        });
        assert!(found, "{key} has no row in docs/otterize-compat.md");
    }
}

#[test]
fn every_test_the_tables_name_exists() {
    let doc = read("docs/otterize-compat.md");
    let mut sources = String::new();
    // Every Rust file under these directories, subdirectories included (modules split into
    // files keep their tests there).
    let mut dirs: Vec<std::path::PathBuf> = [
        "crates/policy/tests",
        "crates/policy/src",
        "server/tests",
        "server/src/operator",
    ]
    .iter()
    .map(|d| root().join(d))
    .collect();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("a readable directory") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                sources.push_str(&std::fs::read_to_string(&path).expect("source"));
            }
        }
    }
    let mut named = 0;
    for line in doc.lines().filter(|l| l.starts_with("| `")) {
        let Some(last) = line.trim_end_matches('|').rsplit('|').next() else {
            continue;
        };
        for (i, part) in last.split('`').enumerate() {
            // Backticked, snake_case with at least two underscores: a test name (possibly
            // `module::tests::name`).
            let name = part.rsplit("::").next().unwrap_or(part);
            let is_test = i % 2 == 1
                && name.matches('_').count() >= 2
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if is_test {
                named += 1;
                assert!(
                    sources.contains(&format!("fn {name}(")),
                    "docs/otterize-compat.md names the test {name}, which does not exist"
                );
            }
        }
    }
    assert!(named >= 10, "only {named} tests named");
}
