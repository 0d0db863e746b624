//! The HTTP service: mint keys, publish the JWKS, report health.
//!
//! Handlers are thin: they extract, call [`Issuer::mint`], and respond. Every error is an
//! [`ApiError`] (`application/problem+json` with a stable `code`). The issuer sits behind an
//! [`IssuerHandle`], so a reload swaps config, keys and GeoIP database atomically: a request
//! sees the old issuer or the new one, never a mix.

mod audit;
mod error;
mod reload;
mod routes;

pub use error::ApiError;
#[cfg(unix)]
pub use reload::reload_on_sighup;
pub use reload::{Rejection, ReloadOutcome, Source, watch};

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

/// A shared, atomically replaceable issuer, with where it came from and how reloads went.
#[derive(Clone)]
pub struct IssuerHandle {
    live: Arc<ArcSwap<Live>>,
    source: Option<Arc<Source>>,
    state: Arc<Mutex<reload::ReloadState>>,
    reloading: Arc<Mutex<()>>,
}

impl IssuerHandle {
    /// A handle serving `issuer`.
    ///
    /// # Errors
    ///
    /// When the configured `server.audit_log` cannot be opened for appending.
    pub fn new(issuer: Issuer) -> std::io::Result<Self> {
        let audit = audit::AuditLog::open(issuer.config().server.audit_log.as_deref())?;
        let state = reload::ReloadState { loaded_at: reload::now_rfc3339(), ..Default::default() };
        Ok(Self {
            live: Arc::new(ArcSwap::from_pointee(Live::new(issuer, audit))),
            source: None,
            state: Arc::new(Mutex::new(state)),
            reloading: Arc::default(),
        })
    }

    fn with_source(mut self, source: Source) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    fn source(&self) -> Option<Source> {
        self.source.as_deref().cloned()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, reload::ReloadState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn reload_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.reloading.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The last rejected reload, if any.
    pub fn last_rejected(&self) -> Option<Rejection> {
        self.state().last_rejected.clone()
    }

    /// Replaces the issuer; requests already running finish with the old one.
    ///
    /// # Errors
    ///
    /// When the new config's `server.audit_log` cannot be opened; the running issuer stays.
    pub fn replace(&self, issuer: Issuer) -> std::io::Result<()> {
        let audit = audit::AuditLog::open(issuer.config().server.audit_log.as_deref())?;
        self.live.store(Arc::new(Live::new(issuer, audit)));
        Ok(())
    }

    /// The current config version.
    pub fn config_version(&self) -> u64 {
        self.live.load().issuer.config().version
    }

    pub(crate) fn live(&self) -> Arc<Live> {
        self.live.load_full()
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
        .route("/v1/status", get(routes::status))
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
