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
        let on_disk =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/demo")).is_ok();
        assert!(on_disk);
        let objects = super::objects();
        assert!(objects.len() > 30, "{}", objects.len());
    }
}
