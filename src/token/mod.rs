//! The wire contract: token claims, the one JWS encode/decode path, JWK and key sets.
//!
//! Everything a token is on the wire is defined here and nowhere else. The layers above
//! (policy, verify, issuer) only ever hand claims to this module and get claims back.

pub(crate) mod b64;
pub(crate) mod claims;
pub(crate) mod dangerous;
pub(crate) mod jwk;
pub(crate) mod jws;
