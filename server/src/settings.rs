//! Generation settings: one type (the core's [`GenerateOptions`]), one set of flags shared by
//! `render`, `operator` and `serve`, and the ConfigMap in which the operator publishes the
//! settings it runs with, so that `accord serve --cluster` compares the cluster with what this
//! operator generates rather than with the defaults.
//!
//! The ConfigMap is `accord-operator-settings` in the operator's namespace (`accord-system` by
//! default), key `settings.json`: the operator's [`GenerateOptions`] as JSON plus the
//! namespaces it watches. It is written by server-side apply when the operator starts leading.

use accord_policy::GenerateOptions;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The name of the ConfigMap the operator publishes its settings in.
pub const CONFIGMAP: &str = "accord-operator-settings";
/// The namespace `accord serve` reads it from unless told otherwise.
pub const DEFAULT_NAMESPACE: &str = "accord-system";
/// The ConfigMap's data key.
pub const DATA_KEY: &str = "settings.json";

/// What the operator publishes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Published {
    #[serde(flatten)]
    pub generation: GenerateOptions,
    /// The namespaces the operator watches; empty means all.
    #[serde(default)]
    pub watched_namespaces: Vec<String>,
}

impl Published {
    /// The ConfigMap holding these settings, for server-side apply.
    pub fn configmap(&self, namespace: &str) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": CONFIGMAP,
                "namespace": namespace,
                "labels": {
                    "app.kubernetes.io/name": "accord",
                    "app.kubernetes.io/component": "operator",
                },
            },
            "data": { DATA_KEY: serde_json::to_string_pretty(self).unwrap_or_default() },
        })
    }

    /// The settings in a ConfigMap (as JSON), or why they cannot be read.
    pub fn from_configmap(object: &Value) -> Result<Published, String> {
        let text = object
            .pointer(&format!("/data/{DATA_KEY}"))
            .and_then(Value::as_str)
            .ok_or_else(|| format!("the ConfigMap has no data key {DATA_KEY}"))?;
        serde_json::from_str(text).map_err(|e| format!("{DATA_KEY}: {e}"))
    }
}

/// Where `accord serve` takes its settings from: the operator's ConfigMap (when watching a
/// cluster), then the flags given to `accord serve`.
#[derive(Clone, Debug, Default)]
pub struct Source {
    /// The namespace of the operator's ConfigMap; `None` for sources without an operator (the
    /// demo, manifests), which use the defaults.
    pub operator_namespace: Option<String>,
    pub overrides: GenerationOverrides,
}

/// The settings a sync pass compares with, and where they came from (shown by the dashboard).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InUse {
    pub options: GenerateOptions,
    pub source: String,
}

impl Source {
    /// The settings in force given the operator's ConfigMap, when there is one.
    pub fn resolve(&self, configmap: Option<&Value>) -> InUse {
        let (base, mut source) = match (&self.operator_namespace, configmap) {
            (Some(ns), Some(cm)) => match Published::from_configmap(cm) {
                Ok(p) => (
                    p.generation,
                    format!("published by the operator in ConfigMap {ns}/{CONFIGMAP}"),
                ),
                Err(e) => (
                    GenerateOptions::default(),
                    format!(
                        "defaults: the operator's ConfigMap {ns}/{CONFIGMAP} is unreadable ({e})"
                    ),
                ),
            },
            (Some(ns), None) => (
                GenerateOptions::default(),
                format!("defaults: no operator has published ConfigMap {ns}/{CONFIGMAP}"),
            ),
            (None, _) => (
                GenerateOptions::default(),
                "Accord's defaults (no operator publishes settings for this source)".to_string(),
            ),
        };
        if self.overrides.any() {
            source.push_str(", overridden by accord serve's flags");
        }
        InUse {
            options: self.overrides.apply(base),
            source,
        }
    }
}

/// Flags of `accord render` and `accord operator`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct GenerationArgs {
    /// Also generate egress rules for clients (DNS is allowed as well).
    #[arg(long, env = "ACCORD_EGRESS")]
    pub egress: bool,

    /// Write ingress and egress into separate `-ingress` / `-egress` policies instead of one
    /// `-access` policy per workload.
    #[arg(long, env = "ACCORD_SEPARATE_POLICIES")]
    pub separate_policies: bool,

    /// Shadow mode: only servers in an enforced namespace, or named by a ProtectedService, get
    /// policies (pods are still labelled).
    #[arg(long, env = "ACCORD_SHADOW")]
    pub shadow: bool,

    /// A namespace whose servers are protected in shadow mode (repeatable, or comma-separated).
    #[arg(
        long = "enforced-namespace",
        value_name = "NS",
        value_delimiter = ',',
        env = "ACCORD_ENFORCED_NAMESPACES"
    )]
    pub enforced_namespaces: Vec<String>,
}

impl GenerationArgs {
    pub fn options(&self) -> GenerateOptions {
        GenerateOptions {
            egress: self.egress,
            separate_policies: self.separate_policies,
            shadow: self.shadow,
            enforced_namespaces: self.enforced_namespaces.iter().cloned().collect(),
            api_server_ips: Vec::new(),
        }
    }
}

/// Flags of `accord serve`: each overrides one setting of those the operator publishes (or the
/// defaults, when no operator publishes any). `--egress` alone means `--egress=true`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct GenerationOverrides {
    /// Compare with egress rules generated for clients (overrides the operator's setting).
    #[arg(long, env = "ACCORD_EGRESS", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub egress: Option<bool>,

    /// Compare with separate `-ingress` / `-egress` policies (overrides the operator's setting).
    #[arg(long, env = "ACCORD_SEPARATE_POLICIES", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub separate_policies: Option<bool>,

    /// Compare in shadow mode (overrides the operator's setting).
    #[arg(long, env = "ACCORD_SHADOW", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub shadow: Option<bool>,

    /// Namespaces enforced in shadow mode (repeatable, or comma-separated; overrides the
    /// operator's list).
    #[arg(
        long = "enforced-namespace",
        value_name = "NS",
        value_delimiter = ',',
        env = "ACCORD_ENFORCED_NAMESPACES"
    )]
    pub enforced_namespaces: Option<Vec<String>>,
}

impl GenerationOverrides {
    /// Whether any flag was given.
    pub fn any(&self) -> bool {
        self.egress.is_some()
            || self.separate_policies.is_some()
            || self.shadow.is_some()
            || self.enforced_namespaces.is_some()
    }

    /// `base` with every given flag applied.
    pub fn apply(&self, mut base: GenerateOptions) -> GenerateOptions {
        if let Some(v) = self.egress {
            base.egress = v;
        }
        if let Some(v) = self.separate_policies {
            base.separate_policies = v;
        }
        if let Some(v) = self.shadow {
            base.shadow = v;
        }
        if let Some(v) = &self.enforced_namespaces {
            base.enforced_namespaces = v.iter().cloned().collect();
        }
        base
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn published_settings_round_trip_through_the_configmap() {
        let p = Published {
            generation: GenerateOptions {
                egress: true,
                separate_policies: true,
                shadow: true,
                enforced_namespaces: ["x".to_string()].into(),
                api_server_ips: vec!["10.0.0.1".into()],
            },
            watched_namespaces: vec!["x".into(), "y".into()],
        };
        let cm = p.configmap("accord-system");
        assert_eq!(cm["metadata"]["name"], CONFIGMAP);
        assert_eq!(Published::from_configmap(&cm), Ok(p.clone()));
        let source = Source {
            operator_namespace: Some("accord-system".into()),
            overrides: GenerationOverrides::default(),
        };
        let used = source.resolve(Some(&cm));
        assert_eq!(used.options, p.generation);
        assert!(
            used.source
                .contains("accord-system/accord-operator-settings"),
            "{}",
            used.source
        );
        let missing = source.resolve(None);
        assert_eq!(missing.options, GenerateOptions::default());
        assert!(
            missing.source.starts_with("defaults: no operator"),
            "{}",
            missing.source
        );
    }

    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        o: GenerationOverrides,
    }

    #[test]
    fn serve_flags_override_only_what_they_name() {
        let base = GenerateOptions {
            egress: true,
            shadow: true,
            enforced_namespaces: ["a".to_string()].into(),
            ..GenerateOptions::default()
        };
        let none = Serve::try_parse_from(["serve"]).unwrap().o;
        assert!(!none.any());
        assert_eq!(none.apply(base.clone()), base);
        let some = Serve::try_parse_from(["serve", "--egress=false", "--separate-policies"])
            .unwrap()
            .o;
        let got = some.apply(base.clone());
        assert!(!got.egress && got.separate_policies && got.shadow);
        assert_eq!(got.enforced_namespaces, base.enforced_namespaces);
    }
}
