//! `accord-tests`: a real Kubernetes control plane for Accord's cluster tests.
//!
//! In: the etcd, kube-apiserver and kube-controller-manager binaries that
//! `tests/k8s/build.sh` builds from upstream sources (see `tests/k8s/README.md`), or an
//! existing cluster (`KUBECONFIG` with `ACCORD_TEST_USE_EXISTING_CLUSTER=1`).
//! Out: a [`ControlPlane`] on loopback with admin credentials and a kubeconfig, a fresh
//! [`TestNamespace`] per test, clients acting as a ServiceAccount, and waits with timeouts.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use accord_tests::{DEFAULT_TIMEOUT, TestNamespace, wait_until};
//! use k8s_openapi::api::core::v1::ConfigMap;
//!
//! let namespace = TestNamespace::new().await?; // starts the shared control plane once
//! let config_maps = namespace.api::<ConfigMap>();
//! wait_until("kube-root-ca.crt", DEFAULT_TIMEOUT, || async {
//!     Ok(config_maps.get_opt("kube-root-ca.crt").await?)
//! })
//! .await?;
//! # Ok(())
//! # }
//! ```
//!
//! A control plane started here stops when it is dropped and, through a watchdog per
//! process, also when the test binary ends for any reason, including a panic or Ctrl-C.
//! Each one has its own temporary directory and free ports, so test binaries run in
//! parallel without colliding.

mod binaries;
mod control_plane;
mod namespace;
mod pki;
mod process;
mod wait;

pub use binaries::{BIN_DIR_ENV, Binaries};
pub use control_plane::{
    ControlPlane, KEEP_DIR_ENV, USE_EXISTING_CLUSTER_ENV, shared, use_existing_cluster,
};
pub use namespace::{
    KEEP_NAMESPACES_ENV, NAMESPACE_LABEL, ServiceAccountCredentials, TestNamespace, random_name,
    service_account_credentials,
};
pub use process::Watchdog;
pub use wait::{DEFAULT_TIMEOUT, condition_status, wait_for_deletion, wait_for_object, wait_until};
