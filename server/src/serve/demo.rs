//! The demo shop of `assets/demo/`, embedded in the binary so `accord serve` works offline.

use accord_policy::{Origin, Source};

/// Every file of the demo, by its path in the repository.
pub const FILES: &[(&str, &str)] = &[
    (
        "assets/demo/namespaces.yaml",
        include_str!("../../../assets/demo/namespaces.yaml"),
    ),
    (
        "assets/demo/checkout/intents/checkout.yaml",
        include_str!("../../../assets/demo/checkout/intents/checkout.yaml"),
    ),
    (
        "assets/demo/checkout/intents/orders.yaml",
        include_str!("../../../assets/demo/checkout/intents/orders.yaml"),
    ),
    (
        "assets/demo/checkout/intents/payments.yaml",
        include_str!("../../../assets/demo/checkout/intents/payments.yaml"),
    ),
    (
        "assets/demo/checkout/intents/shipping.yaml",
        include_str!("../../../assets/demo/checkout/intents/shipping.yaml"),
    ),
    (
        "assets/demo/checkout/policies.yaml",
        include_str!("../../../assets/demo/checkout/policies.yaml"),
    ),
    (
        "assets/demo/checkout/workloads.yaml",
        include_str!("../../../assets/demo/checkout/workloads.yaml"),
    ),
    (
        "assets/demo/platform/intents/auth.yaml",
        include_str!("../../../assets/demo/platform/intents/auth.yaml"),
    ),
    (
        "assets/demo/platform/policies.yaml",
        include_str!("../../../assets/demo/platform/policies.yaml"),
    ),
    (
        "assets/demo/platform/protected.yaml",
        include_str!("../../../assets/demo/platform/protected.yaml"),
    ),
    (
        "assets/demo/platform/workloads.yaml",
        include_str!("../../../assets/demo/platform/workloads.yaml"),
    ),
    (
        "assets/demo/storefront/intents/cart.yaml",
        include_str!("../../../assets/demo/storefront/intents/cart.yaml"),
    ),
    (
        "assets/demo/storefront/intents/recommendations.yaml",
        include_str!("../../../assets/demo/storefront/intents/recommendations.yaml"),
    ),
    (
        "assets/demo/storefront/intents/search.yaml",
        include_str!("../../../assets/demo/storefront/intents/search.yaml"),
    ),
    (
        "assets/demo/storefront/intents/web.yaml",
        include_str!("../../../assets/demo/storefront/intents/web.yaml"),
    ),
    (
        "assets/demo/storefront/policies.yaml",
        include_str!("../../../assets/demo/storefront/policies.yaml"),
    ),
    (
        "assets/demo/storefront/workloads.yaml",
        include_str!("../../../assets/demo/storefront/workloads.yaml"),
    ),
];

/// The demo's objects, as index entries.
pub fn objects() -> Vec<(Origin, serde_json::Value)> {
    let mut diags = Vec::new();
    let mut out = Vec::new();
    for (path, text) in FILES {
        out.extend(accord_policy::load::documents(
            &Source::new(*path, *text),
            &mut diags,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn embeds_every_demo_manifest() {
        // Every manifest file under assets/demo is embedded, by its repository path, with the
        // same text.
        fn walk(dir: &std::path::Path, rel: &str, out: &mut Vec<(String, String)>) {
            for entry in std::fs::read_dir(dir).expect("readable directory") {
                let path = entry.expect("entry").path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                let rel = format!("{rel}/{name}");
                if path.is_dir() {
                    walk(&path, &rel, out);
                } else if ["yaml", "yml", "json"]
                    .iter()
                    .any(|x| name.ends_with(&format!(".{x}")))
                {
                    out.push((rel, std::fs::read_to_string(&path).expect("readable file")));
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/demo");
        let mut on_disk = Vec::new();
        walk(&root, "assets/demo", &mut on_disk);
        on_disk.sort();
        let mut embedded: Vec<(String, String)> = super::FILES
            .iter()
            .map(|(path, text)| (path.to_string(), text.to_string()))
            .collect();
        embedded.sort();
        assert_eq!(
            embedded.iter().map(|f| &f.0).collect::<Vec<_>>(),
            on_disk.iter().map(|f| &f.0).collect::<Vec<_>>(),
            "the embedded files are exactly the manifests under assets/demo"
        );
        assert!(
            embedded == on_disk,
            "an embedded text differs from assets/demo"
        );
        let objects = super::objects();
        assert!(objects.len() > 30, "{}", objects.len());
    }
}
