//! One file per route. Each handler extracts, makes one library call, and responds; the
//! shared extraction (caller address, body, credentials) is in [`extract`](super::extract).

pub(crate) mod api_keys;
pub(crate) mod discovery;
pub(crate) mod health;
pub(crate) mod jwks;
pub(crate) mod metrics;
pub(crate) mod mint;
pub(crate) mod openapi;
pub(crate) mod probes;
pub(crate) mod revocations;
