//! Observed traffic at the edge: Hubble flows in (a live Observer stream or recorded
//! `hubble observe -o jsonpb` lines), decoded into the core's [`accord_policy::observed::Flow`].
//!
//! `jsonpb` reads recorded lines, `proto` is the generated gRPC code of Accord's own subset of the
//! Observer contract (`server/proto/`), `hubble` the client that follows a relay.

pub mod collector;
pub mod convert;
pub mod hubble;
pub mod jsonpb;
pub mod recorded;

/// Generated from `server/proto/` (see `build.rs`).
#[allow(clippy::all, clippy::pedantic)]
pub mod proto {
    pub mod flow {
        tonic::include_proto!("flow");
    }
    pub mod observer {
        tonic::include_proto!("observer");
    }
}
