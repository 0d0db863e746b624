//! The HTTP service: mint keys, publish the JWKS, report health.
//!
//! Handlers are thin: they extract, call [`Issuer::mint`](crate::Issuer::mint), and respond. Every error is an
//! [`ApiError`] (`application/problem+json` with a stable `code`). The issuer sits behind an
//! [`IssuerHandle`], so a reload swaps config, keys and GeoIP database atomically: a request
//! sees the old issuer or the new one, never a mix.

mod audit;
mod document;
mod escape;
mod extract;
mod listener;
mod metrics;
mod openapi;
mod problem;
mod reload;
mod router;
mod routes;
mod source;
mod state;

pub use escape::OneLineWriter;
pub use extract::MAX_BODY_BYTES;
pub use listener::{ConnectionLimits, serve, serve_metrics, serve_router, serve_with, shutdown_signal};
pub use problem::ApiError;
#[cfg(unix)]
pub use reload::reload_on_sighup;
pub use reload::watch;
pub use router::router;
pub use source::{Rejection, ReloadOutcome, SigningKeySource, Source};
pub use state::IssuerHandle;
