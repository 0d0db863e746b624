//! The HTTP service: mint keys, publish the JWKS, report health.
//!
//! Handlers are thin: they extract, call [`Issuer::mint`], and respond. Every error is an
//! [`ApiError`] (`application/problem+json` with a stable `code`). The issuer sits behind an
//! [`IssuerHandle`], so a reload swaps config, keys and GeoIP database atomically: a request
//! sees the old issuer or the new one, never a mix.

mod audit;
mod escape;
mod problem;
mod reload;
mod routes;

pub use escape::OneLineWriter;
pub use problem::ApiError;
#[cfg(unix)]
pub use reload::reload_on_sighup;
pub use reload::{Rejection, ReloadOutcome, SigningKeySource, Source, watch};

use crate::issuer::{Issuer, SignedRevocations};
use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use std::future::Future;
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
    /// The per-address limiter and the settings it was built with; shared with the next `Live`
    /// when a reload keeps the settings, so a reload never refills a spent budget.
    limiter: Option<(crate::config::RateLimit, Arc<governor::DefaultKeyedRateLimiter<std::net::IpAddr>>)>,
    /// Checks since the limiter was last pruned.
    limiter_checks: std::sync::atomic::AtomicU32,
    issuer: Issuer,
    jwks: routes::Document,
    audit: audit::AuditLog,
    /// The last signed revocation list, encoded for serving, re-signed when half-used.
    revocations: Mutex<Option<(SignedRevocations, routes::Document)>>,
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
            live: Arc::new(ArcSwap::from_pointee(Live::new(issuer, audit, None))),
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

    /// Replaces the issuer; requests already running finish with the old one. The per-address
    /// rate limiter, with what every address has spent, carries over unless the new config
    /// changes its settings.
    ///
    /// # Errors
    ///
    /// When the new config's `server.audit_log` cannot be opened; the running issuer stays.
    pub fn replace(&self, issuer: Issuer) -> std::io::Result<()> {
        let audit = audit::AuditLog::open(issuer.config().server.audit_log.as_deref())?;
        let previous = self.live.load();
        self.live.store(Arc::new(Live::new(issuer, audit, Some(&previous))));
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
    /// The derived state of `issuer`, keeping the rate limiter of `previous` when its
    /// settings are the same.
    fn new(issuer: Issuer, audit: audit::AuditLog, previous: Option<&Live>) -> Self {
        let jwks = routes::jwks_document(&issuer);
        let kept = |limit: crate::config::RateLimit| {
            previous
                .and_then(|p| p.limiter.as_ref())
                .filter(|(settings, _)| *settings == limit)
                .map(|(_, limiter)| Arc::clone(limiter))
        };
        let limiter = issuer.config().server.rate_limit.map(|limit| {
            let limiter = kept(limit).unwrap_or_else(|| {
                Arc::new(governor::RateLimiter::keyed(
                    governor::Quota::per_minute(limit.per_minute).allow_burst(limit.burst),
                ))
            });
            (limit, limiter)
        });
        Self { limiter, limiter_checks: Default::default(), issuer, jwks, audit, revocations: Mutex::new(None) }
    }

    /// Counts a request from `ip` against the per-source rate; `429` with `Retry-After` when
    /// it is spent. IPv6 sources count per /64, which one client typically holds whole.
    fn rate_limit(&self, ip: std::net::IpAddr) -> Result<(), ApiError> {
        let Some((_, limiter)) = &self.limiter else { return Ok(()) };
        // Every 4096 checks, forget sources whose budget is full again: memory stays bounded by
        // the sources active within one refill period, at an amortised cost.
        if self.limiter_checks.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 4096 == 4095 {
            limiter.retain_recent();
        }
        limiter.check_key(&source_key(ip)).map_err(|not_until| {
            use governor::clock::Clock as _;
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests from this address; retry later",
            )
            .retry_after(seconds.max(1))
        })
    }

    /// The signed revocation list, ready to serve with its ETag, cacheable until half its
    /// freshness is used, when it is signed anew. Cloning it is a reference count, not a copy.
    ///
    /// # Errors
    ///
    /// [`EncodeError`](crate::token::jws::EncodeError) when a new list cannot be signed; the
    /// list held before, if any, is kept for the next request.
    fn revocations(&self, now: std::time::SystemTime) -> Result<routes::Document, crate::token::jws::EncodeError> {
        let secs = crate::verify::unix_seconds(now);
        let half = u64::from(self.issuer.config().revocations_max_age) / 2;
        let mut held = self.revocations.lock().unwrap_or_else(PoisonError::into_inner);
        let renew_at = |list: &SignedRevocations| list.iat + half;
        let stale = held.as_ref().is_none_or(|(list, _)| secs >= renew_at(list) || secs < list.iat);
        let (list, document) = match held.take() {
            Some(current) if !stale => current,
            previous => match self.issuer.revocation_list(now) {
                Ok(list) => {
                    let document = routes::Document::new(list.token.clone().into_bytes(), "application/jwt", 0);
                    (list, document)
                }
                Err(e) => {
                    *held = previous;
                    return Err(e);
                }
            },
        };
        let served = document.clone().max_age(renew_at(&list).saturating_sub(secs));
        *held = Some((list, document));
        Ok(served)
    }
}

/// The router for `handle`, with CORS for the configured origins (read at start), a body
/// limit, request tracing, panic recovery, and problem documents for every error.
pub fn router(handle: IssuerHandle) -> Router {
    let routes = Router::new()
        .route("/{project}/v1/key/{template}", get(routes::mint).post(routes::mint).head(routes::mint_head))
        .route("/{project}/v1/api-keys", axum::routing::post(routes::create_api_key))
        .route("/v1/revocations", get(routes::revocations))
        .route("/.well-known/jwks.json", get(routes::jwks))
        .route("/healthz", get(routes::healthz))
        .route("/v1/status", get(routes::status));
    layered(routes, handle)
}

/// The middleware every route gets: problem documents for every error, panic recovery, the
/// body limit, the `Host` check, CORS and tracing (the request path escaped).
fn layered(routes: Router<IssuerHandle>, handle: IssuerHandle) -> Router {
    let cors = cors(handle.clone());
    let hosts = handle.clone();
    routes
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .with_state(handle)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| {
            check_host(hosts.clone(), req, next)
        }))
        .layer(axum::middleware::map_response(ensure_problem))
        .layer(CatchPanicLayer::custom(|_| ApiError::internal().into_response()))
        .layer(cors)
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::extract::Request| {
            tracing::debug_span!(
                "request",
                method = %escape::Escaped(request.method()),
                uri = %escape::Escaped(request.uri()),
            )
        }))
}

/// `421 misdirected_request` for a request naming a host that `server.allowed_hosts` does not
/// list (read per request, so a reload applies at once): a browser led to this service by a
/// rebound DNS name sends that name.
async fn check_host(handle: IssuerHandle, request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    // An absolute-form request target names the host; otherwise the Host header does.
    let host = match request.uri().authority() {
        Some(authority) => Some(authority.as_str()),
        None => request.headers().get(header::HOST).map(|v| v.to_str().unwrap_or("\u{fffd}")),
    };
    if handle.live().issuer.config().server.allows_host(host) {
        return next.run(request).await;
    }
    let shown = request.headers().get(header::HOST).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    tracing::warn!(
        host = %escape::Escaped(shown.as_deref().or(host).unwrap_or("")),
        "request for a host not in server.allowed_hosts refused"
    );
    ApiError::new(
        axum::http::StatusCode::MISDIRECTED_REQUEST,
        "misdirected_request",
        "this service does not answer for that host",
    )
    .into_response()
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

/// CORS for the origins of the config in use, read per request so a reload applies at once.
fn cors(handle: IssuerHandle) -> CorsLayer {
    let allowed = AllowOrigin::predicate(move |origin: &HeaderValue, _| {
        handle.live().issuer.config().server.cors_origins.iter().any(|o| o.as_bytes() == origin.as_bytes())
    });
    CorsLayer::new()
        .allow_origin(allowed)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION, HeaderName::from_static("x-api-key")])
        .max_age(Duration::from_secs(600))
}

/// The rate-limit and connection-cap key of an address: IPv4 as is, IPv6 by its /64.
pub(crate) fn source_key(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip.to_canonical() {
        std::net::IpAddr::V6(v6) => {
            let segments = v6.segments();
            std::net::IpAddr::V6(std::net::Ipv6Addr::new(
                segments[0],
                segments[1],
                segments[2],
                segments[3],
                0,
                0,
                0,
                0,
            ))
        }
        v4 => v4,
    }
}

/// Limits that protect the service from slow, large and numerous requests.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time a client has to send its request headers. Defaults to 10 s (slowloris).
    pub header_read_timeout: Duration,
    /// Time a request may take, body included. Defaults to 30 s.
    pub request_timeout: Duration,
    /// Open connections at once; more are closed on accept. Defaults to 1024. With HTTP/1.1
    /// this also caps requests in flight.
    pub max_connections: usize,
    /// Open connections from one address (IPv6: one /64) at once, so one client cannot take
    /// every slot. Peers in `server.trusted_proxies` are exempt (they carry every client behind
    /// them; the global cap still holds them). Defaults to 64.
    pub max_connections_per_address: usize,
    /// Longest request line URI, in bytes. Defaults to 4096.
    pub max_uri_bytes: usize,
    /// Largest request header block, in bytes. Defaults to 32 KiB.
    pub max_header_bytes: usize,
    /// How long shutdown waits for in-flight requests. Defaults to 20 s.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_connections_per_address: 64,
            max_uri_bytes: 4096,
            max_header_bytes: 32 * 1024,
            drain_timeout: Duration::from_secs(20),
        }
    }
}

/// Serves `handle` on `listener` with the default [`Limits`] until `shutdown` resolves, then
/// drains in-flight requests.
///
/// # Errors
///
/// The I/O error that stopped the server.
pub async fn serve(
    listener: TcpListener,
    handle: IssuerHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, handle, Limits::default(), shutdown).await
}

/// As [`serve`], with explicit limits.
///
/// # Errors
///
/// The I/O error that stopped the server.
pub async fn serve_with(
    listener: TcpListener,
    handle: IssuerHandle,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt as _;

    let trusted = handle.clone();
    let app = router(handle)
        .layer(axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| {
            check_request_size(req, next, limits)
        }))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        // The timeout answers with a bare status: make it a problem document too.
        .layer(axum::middleware::map_response(ensure_problem));
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let per_address: Arc<Mutex<std::collections::HashMap<std::net::IpAddr, usize>>> = Arc::default();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // Room above the header limit, so the check below answers with a problem document
        // while hyper still bounds what one connection may buffer.
        .max_buf_size((limits.max_header_bytes + limits.max_uri_bytes).saturating_mul(2).max(8192))
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            tracing::warn!(%peer, max = limits.max_connections, "connection limit reached; closing");
            continue;
        };
        // A trusted proxy carries every client behind it: it is held to the global cap only, and
        // the rate limit applies to the client address it names.
        let source = if trusted.live().issuer.config().server.trusted_proxies.contains(peer.ip()) {
            None
        } else {
            Some(source_key(peer.ip()))
        };
        if let Some(source) = source {
            let mut open = per_address.lock().unwrap_or_else(PoisonError::into_inner);
            let count = open.entry(source).or_insert(0);
            if *count >= limits.max_connections_per_address {
                tracing::warn!(%peer, max = limits.max_connections_per_address, "per-address connection limit reached; closing");
                continue;
            }
            *count += 1;
        }
        let per_address = Arc::clone(&per_address);
        let service = app.clone().map_request(move |mut request: axum::extract::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            request
        });
        let connection =
            http.serve_connection(TokioIo::new(stream), hyper_util::service::TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %escape::Escaped(&e), "connection closed with an error");
            }
            if let Some(source) = source {
                let mut open = per_address.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(count) = open.get_mut(&source) {
                    *count -= 1;
                    if *count == 0 {
                        open.remove(&source);
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.drain_timeout) => tracing::warn!("drain timed out; closing remaining connections"),
    }
    Ok(())
}

/// Refuses over-long URIs (`414`) and header blocks (`431`) as problem documents.
async fn check_request_size(request: axum::extract::Request, next: axum::middleware::Next, limits: Limits) -> Response {
    use axum::http::StatusCode;
    let uri = request.uri();
    let uri_len =
        uri.path_and_query().map_or(0, |p| p.as_str().len()) + uri.authority().map_or(0, |a| a.as_str().len());
    if uri_len > limits.max_uri_bytes {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the URI is longer than {} bytes", limits.max_uri_bytes),
        )
        .into_response();
    }
    let header_bytes: usize = request.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if header_bytes > limits.max_header_bytes {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!("the request headers are larger than {} bytes", limits.max_header_bytes),
        )
        .into_response();
    }
    next.run(request).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt as _;

    fn handle() -> IssuerHandle {
        let config =
            crate::config::Config::from_toml("version = 1\nissuer = \"i\"\n", std::path::Path::new(".")).unwrap();
        let keys = crate::keys::store::Keyring::single(crate::keys::store::SigningKey::generate());
        IssuerHandle::new(Issuer::from_parts(config, keys, None)).unwrap()
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_500_problem_and_the_service_lives_on() {
        #[allow(clippy::panic)] // the point of the test
        async fn boom() -> &'static str {
            panic!("handler bug")
        }
        let app = layered(Router::new().route("/boom", get(boom)).route("/ok", get(|| async { "ok" })), handle());
        let response = app.clone().oneshot(Request::get("/boom").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()["content-type"], "application/problem+json");
        let body = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "internal_error");
        assert!(!body.to_string().contains("handler bug"), "no internals in the response");
        let again = app.oneshot(Request::get("/ok").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(again.status(), StatusCode::OK);
    }
}
