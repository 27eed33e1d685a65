//! Diagnostics: what is wrong with the input, and where.
//!
//! The core never panics on bad input. Every problem becomes a [`Diagnostic`] that names the
//! file (and document), the object and the field, and processing goes on with the rest.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The input is invalid; the object (or field) was ignored.
    Error,
    /// The input is valid but something it refers to is missing or has no effect.
    Warning,
}

/// Where an object came from: a file and the index of the YAML document in it.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Origin {
    pub file: String,
    /// 1-based index of the YAML document within the file (0 when not applicable).
    pub document: usize,
}

impl Origin {
    pub fn new(file: impl Into<String>, document: usize) -> Self {
        Origin {
            file: file.into(),
            document,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.document > 0 {
            write!(f, "{} (document {})", self.file, self.document)
        } else {
            f.write_str(&self.file)
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub origin: Origin,
    /// The object, as `Kind namespace/name` (empty when the document could not be read at all).
    pub object: String,
    /// A path into the object such as `spec.targets[1]` (empty when it concerns the whole object).
    pub field: String,
    pub message: String,
}

impl Diagnostic {
    pub fn error(
        origin: &Origin,
        object: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Error,
            origin: origin.clone(),
            object: object.into(),
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn warning(
        origin: &Origin,
        object: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(origin, object, field, message)
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: {}", self.origin)?;
        if !self.object.is_empty() {
            write!(f, ": {}", self.object)?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Collects diagnostics while parsing or generating.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.0.sort();
        self.0.dedup();
        self.0
    }
}
