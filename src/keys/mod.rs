//! Signing keys: the key store on disk and the rotation lifecycle (next → active → retired).

pub mod lifecycle;
pub mod store;
