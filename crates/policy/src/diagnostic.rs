//! Diagnostics: what is wrong with the input, and where.
//!
//! The core never panics on bad input. Every problem becomes a [`Diagnostic`] that names the
//! file (and document), the object and the field, and processing goes on with the rest.
//!
//! Every diagnostic carries a stable [`DiagnosticCode`]. Everything downstream (operator status
//! conditions, the what-if, the dashboard's field errors, tests) keys on the code, never on the
//! message, which is for people and may be reworded. The codes are listed in one table in
//! ARCHITECTURE.md ("Diagnostic codes"); a test keeps that table and [`DiagnosticCode::ALL`] equal.

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

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// What a diagnostic is about: a stable code, serialized in kebab-case (`target-not-found`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiagnosticCode {
    /// A file or document could not be parsed as YAML or JSON.
    Syntax,
    /// A file could not be read (permissions, not UTF-8, not a regular file).
    Unreadable,
    /// A document is not a Kubernetes object Accord can use (no kind, not a mapping).
    NotAnObject,
    /// The object's `apiVersion` is not one Accord serves for its kind.
    UnsupportedVersion,
    /// A required field is absent.
    MissingField,
    /// A field has a value or type the Kubernetes API server would reject.
    InvalidValue,
    /// A field the kind does not have.
    UnknownField,
    /// Two objects of the same kind, namespace and name.
    DuplicateObject,
    /// A second ClientIntents for a workload (and kind) that already has one.
    DuplicateIntents,
    /// The client workload of a ClientIntents does not exist (yet).
    ClientNotFound,
    /// An intents target resolves to no workload.
    TargetNotFound,
    /// An intents target names a Service that does not exist.
    ServiceNotFound,
    /// An intents target names a Service without a selector.
    ServiceWithoutSelector,
    /// Addresses a policy needs are not known (the API server's, unresolved domains).
    AddressesUnknown,
    /// A policy, rule, peer or port that has no effect or is partly ignored.
    IneffectivePolicy,
    /// Default-allow (open) edges were not listed because there are too many.
    OpenEdgesNotListed,
    /// A draft holds something other than ClientIntents, or nothing.
    InvalidDraft,
}

impl DiagnosticCode {
    pub const ALL: [DiagnosticCode; 17] = [
        DiagnosticCode::Syntax,
        DiagnosticCode::Unreadable,
        DiagnosticCode::NotAnObject,
        DiagnosticCode::UnsupportedVersion,
        DiagnosticCode::MissingField,
        DiagnosticCode::InvalidValue,
        DiagnosticCode::UnknownField,
        DiagnosticCode::DuplicateObject,
        DiagnosticCode::DuplicateIntents,
        DiagnosticCode::ClientNotFound,
        DiagnosticCode::TargetNotFound,
        DiagnosticCode::ServiceNotFound,
        DiagnosticCode::ServiceWithoutSelector,
        DiagnosticCode::AddressesUnknown,
        DiagnosticCode::IneffectivePolicy,
        DiagnosticCode::OpenEdgesNotListed,
        DiagnosticCode::InvalidDraft,
    ];

    /// The code as written in JSON, status conditions and the README's table.
    pub fn as_str(self) -> &'static str {
        match self {
            DiagnosticCode::Syntax => "syntax",
            DiagnosticCode::Unreadable => "unreadable",
            DiagnosticCode::NotAnObject => "not-an-object",
            DiagnosticCode::UnsupportedVersion => "unsupported-version",
            DiagnosticCode::MissingField => "missing-field",
            DiagnosticCode::InvalidValue => "invalid-value",
            DiagnosticCode::UnknownField => "unknown-field",
            DiagnosticCode::DuplicateObject => "duplicate-object",
            DiagnosticCode::DuplicateIntents => "duplicate-intents",
            DiagnosticCode::ClientNotFound => "client-not-found",
            DiagnosticCode::TargetNotFound => "target-not-found",
            DiagnosticCode::ServiceNotFound => "service-not-found",
            DiagnosticCode::ServiceWithoutSelector => "service-without-selector",
            DiagnosticCode::AddressesUnknown => "addresses-unknown",
            DiagnosticCode::IneffectivePolicy => "ineffective-policy",
            DiagnosticCode::OpenEdgesNotListed => "open-edges-not-listed",
            DiagnosticCode::InvalidDraft => "invalid-draft",
        }
    }

    /// The Kubernetes-condition-style reason (`TargetNotFound`) for status conditions.
    pub fn reason(self) -> String {
        self.as_str()
            .split('-')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect()
    }
}

impl fmt::Display for DiagnosticCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
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
    /// Last, so that diagnostics sort by file, object and field (derived `Ord`).
    pub code: DiagnosticCode,
}

impl Diagnostic {
    pub fn error(
        code: DiagnosticCode,
        origin: &Origin,
        object: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            origin: origin.clone(),
            object: object.into(),
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn warning(
        code: DiagnosticCode,
        origin: &Origin,
        object: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, origin, object, field, message)
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}[{}]: {}",
            self.severity.as_str(),
            self.code,
            self.origin
        )?;
        if !self.object.is_empty() {
            write!(f, ": {}", self.object)?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_kebab_case_and_documented_once() {
        let architecture = include_str!("../../../ARCHITECTURE.md");
        for code in DiagnosticCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, code.as_str(), "serde and as_str agree");
            let back: DiagnosticCode = serde_json::from_value(json).unwrap();
            assert_eq!(back, code);
            let row = format!("| `{}` |", code.as_str());
            assert_eq!(
                architecture.matches(&row).count(),
                1,
                "ARCHITECTURE.md's diagnostic code table has one row {row}"
            );
        }
    }

    #[test]
    fn reasons_are_upper_camel_case() {
        assert_eq!(DiagnosticCode::TargetNotFound.reason(), "TargetNotFound");
        assert_eq!(DiagnosticCode::Syntax.reason(), "Syntax");
    }
}
