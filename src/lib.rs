//! keysmith issues short-lived, Ed25519-signed access tokens from *security templates* and
//! verifies them offline.
//!
//! Frontends (an upload widget, a mobile app) never hold a permanent secret: they ask keysmith
//! for a key minted from a template in `config.toml`. The key is a JWT (RFC 9068 access-token
//! shape) signed with EdDSA that carries everything a downstream service needs to decide:
//! permissions, upload and listing directory scopes, allowed IP ranges and countries, upload
//! limits and expiry. Downstream services verify it with the public keys (JWKS) alone.
//!
//! # Design overview
//!
//! ```text
//! config.toml ──► Config (validated) ──► Issuer::mint ──► compact JWS ──► Verifier::verify ──► Grant::authorize
//!   templates        all errors at once     narrowing only     EdDSA, at+jwt     offline, JWKS only    permission, dir, ip
//! ```
//!
//! 1. [`Config`] parses `config.toml` with unknown keys refused, then validates the whole file
//!    and reports every problem with its TOML path.
//! 2. [`Issuer::mint`] checks the caller against the template (active, IP ranges, countries),
//!    applies an optional request that may only *narrow* the template, and signs the claims
//!    with the pre-expanded Ed25519 key of the [`Keyring`].
//! 3. [`Verifier::verify`] checks a token against a [`KeySet`] loaded from a JWKS and returns a
//!    [`Grant`]; [`Grant::authorize`] decides one operation with a typed [`Denied`] reason.
//! 4. Backends hold permanent API keys ([`Verifier::verify_api_key`]), accepted only while the
//!    verifier holds a fresh signed revocation list ([`RevocationList`]). Signing keys rotate through
//!    next → active → retired (`lifecycle`), and the `refresh` feature keeps a verifier's JWKS
//!    and revocation list current.
//!
//! The crate is layered, lowest first: `token` (claims and the one JWS path, [`jws`]) →
//! `policy` (directory scopes, IP ranges) → `verify` ([`Verifier`]) → [`refresh`] →
//! [`config`] → [`keys`] → [`issuer`] → [`review`] → [`server`]. Each layer uses only the
//! ones below it; `DESIGN.md` shows the diagram.
//!
//! # Security model
//!
//! The verifier trusts only the keys it was given. It pins `alg` to Ed25519 (named `EdDSA` or,
//! after RFC 9864, `Ed25519`) before any signature work, requires `typ` `at+jwt` and a known
//! `kid`, refuses `crit`, `b64` and `zip`, never follows `jku`, `x5u` or an embedded `jwk`,
//! verifies with strict Ed25519 (`verify_strict`), refuses weak (small-order) public keys when
//! a JWKS is loaded, checks `iss`, `aud`, `exp`, `nbf` and `iat`, bounds the token's size
//! before decoding it, and decodes claims into typed structs. Only the verifier can construct
//! a [`Grant`].
//!
//! The issuer fails closed: a template that restricts countries cannot be loaded without a
//! GeoIP database, an address the database does not know is refused, and the caller's address
//! is the socket peer unless a trusted proxy vouches for another.
//!
//! ## Non-goals
//!
//! - Revoking short-lived keys one by one: they expire; keep `expiration_duration` short.
//! - Hiding token contents: a JWS is signed, not encrypted. Put no secrets in templates.
//!
//! # Crate features
//!
//! - `issuer` (default, via `cli`): config loading, private keys, GeoIP and minting.
//! - `server` (default, via `cli`): the axum HTTP service on top of `issuer`.
//! - `refresh` (default, via `cli`): `refresh::Refresher` keeps a verifier's JWKS and
//!   revocation list fresh on a thread of its own (no async runtime), through a pluggable
//!   `refresh::Fetch`; the default client (ureq) speaks plain HTTP only. 13 crates over the
//!   lean verifier.
//! - `refresh-rustls` (default, via `cli`): `refresh` with HTTPS (rustls, ring, webpki roots).
//!   22 crates over the lean verifier.
//! - `limits` (default, via `cli`): upload limits with an in-process store; no extra crate.
//! - `redis` (default, via `cli`): the Redis limit store shared by replicas (tokio, redis).
//! - `http` (default, via `cli`): [`enforce`], enforcing keys in front of a service in-process
//!   (key extraction, routes, upload limits, a tower layer and an axum extractor).
//! - `gate` (default, via `cli`): `keysmith gate`, the same decisions as a forward-auth service.
//! - `cli` (default): the `keysmith` binary.
//!
//! With `default-features = false` the crate is the verifier alone: no tokio, axum or hyper.
//!
//! # Getting started
//!
//! Verify a key offline with the JWKS a keysmith server publishes, then decide one operation:
//!
//! ```no_run
//! use keysmith::permission::FILE_UPLOAD;
//! use keysmith::{KeySet, Verifier};
//! use std::time::SystemTime;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let jwks = std::fs::read("jwks.json")?;
//! // The issuer is the `issuer` of keysmith's config.toml (the `iss` of every key it mints);
//! // "demo" is this service's project, the `aud` of the keys meant for it.
//! let verifier = Verifier::new(KeySet::from_jwks_json(&jwks)?, "https://keys.example.com", "demo");
//! let grant = verifier.verify("eyJhbGciOiJFZERTQSIs…", SystemTime::now())?;
//! // A file: the path is normalised, `.`/`..`/empty names are refused, its directory is checked.
//! grant.authorize_file(FILE_UPLOAD, "/uploads/avatars/me.png", Some("203.0.113.7".parse()?))?;
//! # Ok(())
//! # }
//! ```
//!
//! A long-running service bootstraps and keeps its keys fresh with
//! `refresh::Refresher::start` (feature `refresh`). `examples/upload_service.rs` is a complete
//! upload service built on both, in under 80 lines.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(unreachable_pub)]

// The Rust snippets of the README and the guides compile (and run unless marked `no_run`) as
// doctests of the default build, which has every feature they use. `tests/docs.rs` checks that
// every Markdown file with a Rust snippet is listed here.
#[cfg(all(doctest, feature = "cli"))]
#[doc = include_str!("../README.md")]
struct ReadmeSnippets;
#[cfg(all(doctest, feature = "cli"))]
#[doc = include_str!("../docs/limits.md")]
struct LimitsGuideSnippets;

// Layers, lowest first (see DESIGN.md; `tests/layers.rs` checks that each uses only the ones
// below it). The modules are private: the public API is what this file re-exports.
mod policy;
mod token;
mod verify;

#[cfg(feature = "refresh")]
#[cfg_attr(docsrs, doc(cfg(feature = "refresh")))]
pub mod refresh;

#[cfg(feature = "issuer")]
#[cfg_attr(docsrs, doc(cfg(feature = "issuer")))]
pub mod admin;
#[cfg(feature = "issuer")]
#[cfg_attr(docsrs, doc(cfg(feature = "issuer")))]
pub mod config;
#[cfg(feature = "issuer")]
#[cfg_attr(docsrs, doc(cfg(feature = "issuer")))]
pub mod issuer;
#[cfg(feature = "issuer")]
#[cfg_attr(docsrs, doc(cfg(feature = "issuer")))]
pub mod keys;
#[cfg(feature = "limits")]
#[cfg_attr(docsrs, doc(cfg(feature = "limits")))]
pub mod limits {
    //! Upload limits and keyed rate checks, kept in a store shared by whoever enforces them.
    //!
    //! A key minted from a template with `limit_per_min` or `limit_per_source_ip` carries them in its
    //! `limits` claim ([`crate::Limits`]); this module enforces them for the uploads made with it.
    //!
    //! - `per_min`: the uploads a key may make in **any** 60-second window. It is a sliding window
    //!   over the accepted uploads themselves: a key may upload `per_min` files at once, and each
    //!   upload frees its slot 60 seconds after it was accepted. Never a calendar minute (which lets
    //!   `2 × per_min` through around a minute boundary), never one upload every `60 / per_min` s.
    //! - `per_source_ip`: the uploads a key may make from one source address over its whole life.
    //!
    //! Counters are keyed by the key's `jti` (and the address: IPv4, or an IPv6 /64), and are
    //! kept until the key's `exp` plus a retention ([`DEFAULT_RETENTION`]: the verifiers' leeway
    //! and a margin): callers pass its `exp`. Both limits are checked before either is counted, so a refused attempt
    //! consumes nothing: an attempt refused by `per_min` does not use `per_source_ip` budget and
    //! vice versa. When both would refuse, `per_source_ip` is reported: it never recovers for that
    //! address, so a `Retry-After` would be a false promise.
    //!
    //! [`LimitStore::check_rate`] is a generic keyed rate check (GCRA: a rate per minute with a
    //! burst) on the same store, for budgets such as the issuer's per-address mint limit.
    //!
    //! Two stores implement [`LimitStore`]: [`MemoryStore`] for one process, and (with the `redis`
    //! feature) `RedisStore`, with which every replica of a service shares one budget; each decision
    //! is one atomic Lua script there. Time is always a parameter (`now`), so tests control the clock.
    //!
    //! See `docs/limits.md` for the algorithms, the Redis keys and their TTLs, and failure behaviour.
    //!
    //! ```
    //! use keysmith::Limits;
    //! use keysmith::limits::{Limit, MemoryStore, UploadAttempt, UploadDecision};
    //! use std::time::{Duration, SystemTime};
    //!
    //! # fn main() -> Result<(), Box<dyn std::error::Error>> {
    //! let store = MemoryStore::default();
    //! let now = SystemTime::now();
    //! let attempt = UploadAttempt {
    //!     jti: "6f1c…",
    //!     source: "203.0.113.7".parse()?,
    //!     limits: Limits { per_min: Some(2), per_source_ip: None },
    //!     expires_at: now + Duration::from_secs(600),
    //!     now,
    //! };
    //! assert_eq!(store.upload(attempt)?, UploadDecision::Allowed);
    //! assert_eq!(store.upload(attempt)?, UploadDecision::Allowed);
    //! // The third upload within 60 s is refused until the first leaves the window.
    //! let refused = store.upload(attempt)?;
    //! assert_eq!(refused, UploadDecision::Refused { limit: Limit::PerMin, retry_after: Some(Duration::from_secs(60)) });
    //! # Ok(())
    //! # }
    //! ```

    mod memory;
    #[cfg(feature = "redis")]
    mod redis;
    mod store;
    // Throttles the log lines a client can cause, for the server and the gate.
    #[cfg(any(feature = "server", feature = "gate"))]
    pub(crate) mod throttle;

    pub use memory::MemoryStore;
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub use redis::{RedisOptions, RedisStore};
    pub use store::*;
}
#[cfg(feature = "issuer")]
#[cfg_attr(docsrs, doc(cfg(feature = "issuer")))]
pub mod review;

#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod enforce;

#[cfg(feature = "gate")]
#[cfg_attr(docsrs, doc(cfg(feature = "gate")))]
pub mod gate;

#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub mod server;

// The verifier: always built, no async runtime.
pub use policy::dir_scope::{DirScope, ScopeError, ScopeSet, ScopeSetError};
pub use policy::ip::{IpRange, IpRangeError, IpRules, IpRulesError};
pub use policy::media::{MediaRange, MediaRangeError, MediaType, media_type_of};
pub use policy::scope_rules::{SCALEFLEX_PERMISSIONS, ScopeKind, ScopeRules, permission};
pub use token::claims::{
    ACCESS_TOKEN_TYP, API_KEY_TYP, AccessClaims, ApiKeyClaims, Audience, Limits, REVOCATIONS_TYP, RevocationClaims,
    scope_claim,
};
pub use token::jwk::{JwkError, Jwks, KeySet, MAX_JWKS_KEYS, MAX_KID_LEN, PublicJwk};
pub use verify::revocation::{MAX_REVOCATION_ENTRIES, MAX_REVOCATIONS_LEN, RevocationList};
pub use verify::{
    ApiKeyGrant, CacheStats, DEFAULT_CACHE_CAPACITY, DEFAULT_LEEWAY, DEFAULT_MAX_LIFETIME, DEFAULT_MAX_TOKEN_LEN,
    Denied, Grant, KeySource, MAX_LIST_ENTRIES, RevocationSource, Revocations, Verifier, VerifyError,
};

/// Compact JWS, the wire format: the typed header encoder and the checked decoder that every
/// keysmith token goes through.
pub mod jws {
    pub use crate::token::jws::{
        EncodeError, JwsAlg, JwsError, Signer, TokenType, decode, encode, encode_header, encode_header_with,
    };
}

/// JSON Web Keys: RFC 7638 thumbprints (keysmith's `kid`) and strict Ed25519 verification.
pub mod jwk {
    pub use crate::token::jwk::{JwkError, Jwks, KeySet, PublicJwk, thumbprint, verify_ed25519};
}

/// Directory paths as the verifier compares them.
pub mod scope {
    pub use crate::policy::dir_scope::{MAX_PATH_LEN, file_directory, normalise_path};
}

/// Finding the caller's address behind trusted proxies.
pub mod ip {
    pub use crate::policy::ip::{
        ForwardedError, ForwardedHeader, IpRange, IpRangeError, IpRules, IpRulesError, MAX_FORWARDED_HOPS, client_ip,
    };
}

/// Reading a token **without verifying it**, for tools that must decide which check to run,
/// and signing under arbitrary headers for hostile test tokens. Nothing here says a token is
/// genuine: only [`Verifier`] does.
pub mod dangerous {
    pub use crate::token::dangerous::{ClaimedType, SignAnyHeader, claimed_type};
}

#[cfg(feature = "issuer")]
pub use config::{Config, ConfigError};
#[cfg(feature = "issuer")]
pub use issuer::{Issuer, LoadError, MintError, MintRequest, Minted};
#[cfg(feature = "issuer")]
pub use keys::{Keyring, SigningKey};
