//! One model of the cluster, shared by the operator and the dashboard.
//!
//! [`watch`] is the single watch set: every kind either side needs, each watched the same way
//! (ClientIntents and ProtectedServices at the storage version and untyped, Namespaces as
//! metadata, finished pods left out). Its [`Change`]s feed one pure [`Index`] with `apply`,
//! `delete` and `reset`; the dashboard's sync builds the core inventory from the index, and
//! the operator's planner derives its per-subject state from the index's changed keys. Identity
//! resolution (pod → root owner) is the core's (`accord_policy::identity`).

mod index;
mod watch;

pub use index::{Index, ObjectKey, PodAddress, key_of};
pub use watch::{Change, Options, client, watch};
