//! The HTTP service: mint keys, publish the JWKS, report health.
//!
//! Handlers are thin: they extract, call [`Issuer::mint`], and respond. Every error is an
//! [`ApiError`] (`application/problem+json` with a stable `code`). The issuer sits behind an
//! [`IssuerHandle`], so a reload swaps config, keys and GeoIP database atomically: a request
//! sees the old issuer or the new one, never a mix.

mod audit;
mod error;
mod routes;

pub use error::ApiError;

use crate::issue::{Issuer, SignedRevocations};
use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

/// Largest request body accepted on the mint endpoint, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// An issuer and what is derived from it once, swapped as a unit.
pub(crate) struct Live {
    issuer: Issuer,
    jwks: routes::JwksBody,
    audit: audit::AuditLog,
    /// The last signed revocation list and its ETag, re-signed when half-used.
    revocations: Mutex<Option<(SignedRevocations, String)>>,
}

/// A shared, atomically replaceable issuer.
#[derive(Clone)]
pub struct IssuerHandle(Arc<ArcSwap<Live>>);

impl IssuerHandle {
    /// A handle serving `issuer`.
    ///
    /// # Errors
    ///
    /// When the configured `server.audit_log` cannot be opened for appending.
    pub fn new(issuer: Issuer) -> std::io::Result<Self> {
        let audit = audit::AuditLog::open(issuer.config().server.audit_log.as_deref())?;
        Ok(Self(Arc::new(ArcSwap::from_pointee(Live::new(issuer, audit)))))
    }

    /// Replaces the issuer; requests already running finish with the old one.
    ///
    /// # Errors
    ///
    /// When the new config's `server.audit_log` cannot be opened; the running issuer stays.
    pub fn replace(&self, issuer: Issuer) -> std::io::Result<()> {
        let audit = audit::AuditLog::open(issuer.config().server.audit_log.as_deref())?;
        self.0.store(Arc::new(Live::new(issuer, audit)));
        Ok(())
    }

    /// The current config version.
    pub fn config_version(&self) -> u64 {
        self.0.load().issuer.config().version
    }

    pub(crate) fn live(&self) -> Arc<Live> {
        self.0.load_full()
    }
}

impl Live {
    fn new(issuer: Issuer, audit: audit::AuditLog) -> Self {
        let jwks = routes::JwksBody::new(&issuer);
        Self { issuer, jwks, audit, revocations: Mutex::new(None) }
    }

    /// The signed revocation list, its ETag and how long (seconds) it may be cached: until
    /// half its freshness is used, when it is signed anew.
    fn revocations(&self, now: std::time::SystemTime) -> (String, String, u64) {
        let secs = crate::verify::unix_seconds(now);
        let half = u64::from(self.issuer.config().revocations_max_age) / 2;
        let mut held = self.revocations.lock().unwrap_or_else(PoisonError::into_inner);
        let renew_at = |list: &SignedRevocations| list.iat + half;
        if held.as_ref().is_none_or(|(list, _)| secs >= renew_at(list) || secs < list.iat) {
            let list = self.issuer.revocation_list(now);
            let etag = routes::etag(list.token.as_bytes());
            *held = Some((list, etag));
        }
        match held.as_ref() {
            Some((list, etag)) => (list.token.clone(), etag.clone(), renew_at(list).saturating_sub(secs)),
            None => (String::new(), String::new(), 0),
        }
    }
}

/// The router for `handle`, with CORS for the configured origins (read at start), a body
/// limit, request tracing, panic recovery, and problem documents for every error.
pub fn router(handle: IssuerHandle) -> Router {
    let cors = cors(&handle.live().issuer.config().server.cors_origins);
    Router::new()
        .route("/{project}/v1/key/{template}", get(routes::mint).post(routes::mint))
        .route("/{project}/v1/api-keys", axum::routing::post(routes::create_api_key))
        .route("/v1/revocations", get(routes::revocations))
        .route("/.well-known/jwks.json", get(routes::jwks))
        .route("/healthz", get(routes::healthz))
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .with_state(handle)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(ensure_problem))
        .layer(CatchPanicLayer::custom(|_| ApiError::internal().into_response()))
        .layer(cors)
        .layer(TraceLayer::new_for_http())
}

/// Turns any error response that is not yet a problem document (an extractor's plain-text
/// rejection, a timeout) into one, so clients always get the same shape.
async fn ensure_problem(response: Response) -> Response {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    ApiError::from_status(status).into_response()
}

fn cors(origins: &[String]) -> CorsLayer {
    // Origins were validated with the config; one that is still not a header value is dropped.
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION, HeaderName::from_static("x-api-key")])
        .max_age(Duration::from_secs(600))
}

/// Serves `handle` on `listener` until `shutdown` resolves, then drains in-flight requests.
///
/// # Errors
///
/// The I/O error that stopped the server.
pub async fn serve(
    listener: TcpListener,
    handle: IssuerHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(handle).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// Reloads config, keys and GeoIP database from disk into `handle` when the process receives
/// SIGHUP. A load that fails is logged and the running issuer keeps serving.
#[cfg(unix)]
pub async fn reload_on_sighup(handle: IssuerHandle, config: std::path::PathBuf, keys: std::path::PathBuf) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot listen for SIGHUP; reload by restarting");
        return;
    };
    while hangups.recv().await.is_some() {
        let running = handle.config_version();
        match Issuer::load(&config, &keys) {
            Ok(issuer) => {
                let version = issuer.config().version;
                let kid = issuer.keyring().signing().kid().to_owned();
                match handle.replace(issuer) {
                    Ok(()) => tracing::info!(config_version = version, previous_version = running, %kid, "reloaded"),
                    Err(e) => tracing::error!(error = %e, "reload rejected: cannot open the audit log"),
                }
            }
            Err(e) => {
                tracing::error!(config_version = running, error = %e, "reload rejected; keeping the running config")
            }
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; draining in-flight requests");
}
