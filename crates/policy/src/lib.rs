//! `accord-policy`: Accord's pure policy core.
//!
//! In: manifest text (ClientIntents of every served version, and the Kubernetes objects they
//! refer to). Out: an [`Inventory`] with workload identities, the NetworkPolicies and pod labels
//! that enforce the intents ([`generate`]), and [`Diagnostic`]s for everything wrong with the
//! input.
//!
//! **This crate does no I/O**: no filesystem, network, clock or async runtime. Inputs and time
//! arrive as arguments, outputs are deterministic, and it builds for `wasm32-unknown-unknown`:
//! the dashboard links it for the shared vocabulary (through `accord-api`), the workload-id
//! parser and the ClientIntents writer of its draft form. What a draft would change is evaluated
//! by the server (`POST /api/what-if`), against the cluster it syncs.

pub mod diagnostic;
pub mod drift;
pub mod evaluate;
pub mod generate;
pub mod identity;
pub mod intents;
pub mod inventory;
pub mod labels;
pub mod load;
pub mod net;
pub mod objects;
pub mod observed;
pub mod render;
pub mod synthetic;
pub mod validate;

pub use diagnostic::{Diagnostic, DiagnosticCode, Origin, Severity};
pub use evaluate::{Connectivity, Evaluator, Naming, Peer, evaluate};
pub use generate::{GenerateOptions, Generated, apply_pod_labels, generate};
pub use identity::WorkloadId;
pub use intents::ClientIntents;
pub use inventory::Inventory;
pub use load::{Source, load};
