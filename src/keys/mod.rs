//! Signing keys: the key store on disk and the rotation lifecycle (next → active → retired).

mod dir;
mod error;
pub mod lifecycle;
mod signing;
pub mod store;
