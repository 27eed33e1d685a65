//! Manifest text → documents: multi-document YAML split at `---` markers, JSON streams, and a
//! linear nesting-depth scan that refuses hostile input before the YAML parser sees it.

use serde_json::Value;

use super::*;
use crate::diagnostic::{Diagnostic, DiagnosticCode, Origin};
use crate::inventory::Inventory;

/// Split a source into documents (as JSON values). A document that cannot be parsed produces a
/// diagnostic and is skipped; the following documents are still read.
pub fn documents(source: &Source, diags: &mut Vec<Diagnostic>) -> Vec<(Origin, Value)> {
    let mut out = Vec::new();
    // A UTF-8 byte-order mark is not content.
    let text = source.text.strip_prefix('\u{feff}').unwrap_or(&source.text);
    let trimmed = text.trim_start();
    if source.path.ends_with(".json") || trimmed.starts_with('{') || trimmed.starts_with('[') {
        let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
        let mut n = 0;
        loop {
            n += 1;
            match stream.next() {
                None => break,
                Some(Ok(v)) => out.push((Origin::new(&source.path, n), v)),
                Some(Err(e)) => {
                    diags.push(Diagnostic::error(
                        DiagnosticCode::Syntax,
                        &Origin::new(&source.path, n),
                        "",
                        "",
                        format!("invalid JSON: {e}"),
                    ));
                    break;
                }
            }
        }
        return out;
    }
    for (number, line, chunk) in yaml_documents(text) {
        parse_yaml_document(&source.path, number, line, chunk, &mut out, diags);
    }
    out
}

/// A parser message with its `line N` positions, counted within one document that starts at
/// line `first_line` of its file, counted within the file instead.
fn file_lines(message: &str, first_line: usize) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find("line ") {
        out.push_str(&rest[..i + 5]);
        rest = &rest[i + 5..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + first_line).saturating_sub(1).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// Whether a line starts a new YAML document (`---` at column 0, alone or followed by a space).
pub(super) fn is_document_marker(line: &str) -> bool {
    let line = line.trim_end_matches(['\r', '\n']);
    line == "---" || line.starts_with("--- ") || line.starts_with("---\t")
}

/// Split a YAML stream into its documents' texts, each with its 1-based number in the stream.
///
/// A `---` at column 0 always starts a document in YAML (even inside a block scalar), so splitting
/// on those lines is exact. Text before the first marker is a document only if it holds more
/// than comments and blank lines. Documents can then be parsed independently: a syntax error
/// in one does not lose the others, and large streams can be parsed in parallel by the caller.
pub fn split_yaml_documents(text: &str) -> Vec<(usize, &str)> {
    yaml_documents(text)
        .into_iter()
        .map(|(number, _, chunk)| (number, chunk))
        .collect()
}

/// [`split_yaml_documents`] with the line of the file at which each document starts, counted in
/// the same pass (linear in the file, however many documents it holds).
pub fn yaml_documents(text: &str) -> Vec<(usize, usize, &str)> {
    // (byte offset, line) of each document's start.
    let mut starts = vec![(0, 1)];
    let (mut offset, mut line_no) = (0, 1);
    for line in text.split_inclusive('\n') {
        if offset > 0 && is_document_marker(line) {
            starts.push((offset, line_no));
        }
        offset += line.len();
        line_no += 1;
    }
    starts.push((text.len(), line_no));
    let mut out = Vec::with_capacity(starts.len());
    let mut number = 0;
    for w in starts.windows(2) {
        let chunk = &text[w[0].0..w[1].0];
        let explicit = chunk.lines().next().is_some_and(is_document_marker);
        let has_content = chunk.lines().any(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#')
        });
        if explicit || has_content {
            number += 1;
            out.push((number, w[0].1, chunk));
        }
    }
    out
}

/// Parse one YAML document's text (as returned by [`yaml_documents`]).
pub fn parse_yaml_document(
    path: &str,
    number: usize,
    first_line: usize,
    text: &str,
    out: &mut Vec<(Origin, Value)>,
    diags: &mut Vec<Diagnostic>,
) {
    let origin = Origin::new(path, number);
    if let Some(line) = too_deep(text) {
        let line = (line + first_line).saturating_sub(1);
        diags.push(Diagnostic::error(
            DiagnosticCode::Syntax,
            &origin,
            "",
            "",
            format!(
                "invalid YAML: nested more than {MAX_DEPTH} levels deep at line {line}; \
                 refused without parsing"
            ),
        ));
        return;
    }
    match serde_yaml::from_str::<Value>(text) {
        Ok(Value::Null) => {}
        Ok(v) => out.push((origin, v)),
        Err(e) => diags.push(Diagnostic::error(
            DiagnosticCode::Syntax,
            &origin,
            "",
            "",
            file_lines(&format!("invalid YAML: {e}"), first_line),
        )),
    }
}

/// The deepest nesting of collections a document may have. Kubernetes objects stay far below
/// it; serde_json refuses JSON deeper than this too.
pub const MAX_DEPTH: usize = 128;

/// The line at which a YAML document nests collections deeper than [`MAX_DEPTH`], if it does.
///
/// The YAML parser takes time quadratic in the nesting of flow collections (100,000 levels of
/// `{a: ` took 47 s), so this linear scan runs first. It counts flow brackets outside quoted
/// scalars and comments, and block sequences opened on one line (`- - - x`); indentation cannot
/// nest deeply in a text of bounded size. A bracket inside a block scalar or a plain scalar is
/// counted too, which errs toward refusing only texts with over a hundred unclosed brackets.
pub fn too_deep(text: &str) -> Option<usize> {
    let mut flow: usize = 0;
    for (n, line) in text.lines().enumerate() {
        let body = line.trim_start_matches(' ');
        let mut compact = 0;
        let mut rest = body;
        while let Some(r) = rest
            .strip_prefix("- ")
            .or_else(|| rest.strip_prefix("? "))
            .or_else(|| rest.strip_prefix("-\t"))
        {
            compact += 1;
            rest = r.trim_start_matches([' ', '\t']);
        }
        if compact > MAX_DEPTH {
            return Some(n + 1);
        }
        let mut prev = ' ';
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '#' if prev == ' ' || prev == '\t' => break,
                '[' | '{' => {
                    flow += 1;
                    if flow > MAX_DEPTH {
                        return Some(n + 1);
                    }
                }
                ']' | '}' => flow = flow.saturating_sub(1),
                // A quoted scalar starts a token; skip it (to the end of the line at most, which
                // undercounts nothing that could matter: brackets inside are text).
                '\'' | '"' if matches!(prev, ' ' | '\t' | '[' | '{' | ',' | ':') => {
                    let quote = c;
                    let mut escaped = false;
                    for q in chars.by_ref() {
                        if quote == '"' && q == '\\' && !escaped {
                            escaped = true;
                            continue;
                        }
                        if q == quote && !escaped {
                            break;
                        }
                        escaped = false;
                    }
                }
                _ => {}
            }
            prev = c;
        }
    }
    None
}

/// Add one YAML document's objects to an inventory (call [`Inventory::finish`] afterwards).
pub fn load_yaml_document(
    inv: &mut Inventory,
    path: &str,
    number: usize,
    first_line: usize,
    text: &str,
    diags: &mut Vec<Diagnostic>,
) {
    let mut docs = Vec::with_capacity(1);
    parse_yaml_document(path, number, first_line, text, &mut docs, diags);
    for (origin, doc) in docs {
        add_object(inv, &origin, &doc, None, diags);
    }
}
