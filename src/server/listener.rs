//! Our own accept loop: connection caps (global and per address), header and request
//! timeouts, request-size checks and a graceful drain. See `DESIGN.md` for why it is ours.

use crate::server::escape;
use crate::server::problem::ApiError;
use crate::server::router::{Throttle, ensure_problem, router};
use crate::server::state::{IssuerHandle, source_key};
use axum::response::{IntoResponse as _, Response};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::TcpListener;

/// ConnectionLimits that protect the service from slow, large and numerous requests.
///
/// Peers come in two kinds: the *exempt* ones (the issuer's `server.trusted_proxies`, the
/// gate's `allowed_callers`: proxies that carry every client behind them) and every other peer.
/// Each kind has its own pool of connections, so other peers cannot take the proxies' slots.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time a client has to send its request headers, and how long a kept-alive connection may
    /// wait for its next request. Defaults to 10 s (slowloris). Exempt peers have none: a proxy
    /// pools its upstream connections for a minute or more and would otherwise reuse one that
    /// was just closed (and answer its client with a `502`); their requests still have
    /// [`request_timeout`](Self::request_timeout).
    pub header_read_timeout: Duration,
    /// Time a request may take, body included. Defaults to 30 s.
    pub request_timeout: Duration,
    /// Open connections at once from exempt peers (the proxies); more are closed on accept.
    /// Defaults to 1024. With HTTP/1.1 this also caps their requests in flight.
    pub max_connections: usize,
    /// Open connections at once from every other peer, a pool apart from the exempt peers'.
    /// Defaults to 1024 (the issuer's direct clients); the gate's default is 128, since they
    /// only get `403`, `/healthz` and `/metrics` there.
    pub max_other_connections: usize,
    /// Open connections from one address (IPv6: one /64) at once, so one client cannot take
    /// every slot of [`max_other_connections`](Self::max_other_connections). Exempt peers have
    /// no such cap (they carry every client behind them). Defaults to 64.
    pub max_connections_per_address: usize,
    /// Longest request line URI, in bytes. Defaults to 4096 (the gate's, 16 KiB).
    pub max_uri_bytes: usize,
    /// Largest request header block, in bytes. Defaults to 32 KiB (the gate's, 64 KiB).
    pub max_header_bytes: usize,
    /// How long shutdown waits for in-flight requests. Defaults to 20 s.
    pub drain_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_other_connections: 1024,
            max_connections_per_address: 64,
            max_uri_bytes: 4096,
            max_header_bytes: 32 * 1024,
            drain_timeout: Duration::from_secs(20),
        }
    }
}

impl ConnectionLimits {
    /// The limits of `keysmith gate`: as the default, with 128 connections for peers other than
    /// its callers, and room for forwarded requests: a 16 KiB URI (Envoy's `ext_authz` puts the
    /// original path in it) and 64 KiB of headers (nginx and Caddy pass on every header of the
    /// client, cookies included).
    pub fn gate() -> Self {
        Self { max_other_connections: 128, max_uri_bytes: 16 * 1024, max_header_bytes: 64 * 1024, ..Self::default() }
    }
}

/// Serves `/metrics` of `handle` alone on `listener` (the `server.metrics_listen` address)
/// until `shutdown` resolves.
///
/// # Errors
///
/// The I/O error that stopped the server.
pub async fn serve_metrics(
    listener: TcpListener,
    handle: IssuerHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The same accept loop and limits as the service (no peer exempt): a scraper that holds
    // slow connections cannot exhaust the process's descriptors.
    serve_router(
        listener,
        crate::server::router::metrics_router(handle),
        ConnectionLimits::default(),
        |_| false,
        shutdown,
    )
    .await
}

/// Serves `handle` on `listener` with the default [`ConnectionLimits`] until `shutdown` resolves, then
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
    serve_with(listener, handle, ConnectionLimits::default(), shutdown).await
}

/// As [`serve`], with explicit limits.
///
/// # Errors
///
/// The I/O error that stopped the server.
pub async fn serve_with(
    listener: TcpListener,
    handle: IssuerHandle,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let trusted = handle.clone();
    let metrics = handle.clone();
    let peers = Peers {
        // A trusted proxy carries every client behind it: it has its own pool of connections,
        // and the rate limit applies to the client address it names.
        exempt: Box::new(move |ip| trusted.serving().issuer.config().server.trusted_proxies.contains(ip)),
        opened: Box::new(move || Box::new(metrics.metrics().connection_opened())),
    };
    accept(listener, router(handle), limits, peers, shutdown).await
}

/// Serves `app` (which may extract `ConnectInfo<SocketAddr>`) on `listener` with `limits`
/// until `shutdown` resolves, then drains: the accept loop of [`serve_with`] for another
/// service, such as `keysmith gate`. Peers for which `exempt` holds (the proxies that carry
/// every client behind them) draw from their own pool of connections, have no per-address cap
/// and no header read timeout (see [`ConnectionLimits`]).
///
/// # Errors
///
/// The I/O error that stopped the server.
pub async fn serve_router(
    listener: TcpListener,
    app: axum::Router,
    limits: ConnectionLimits,
    exempt: impl Fn(std::net::IpAddr) -> bool + Send + Sync + 'static,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let peers = Peers { exempt: Box::new(exempt), opened: Box::new(|| Box::new(())) };
    accept(listener, app, limits, peers, shutdown).await
}

/// What the accept loop asks about a peer: whether it is exempt from the per-address cap, and
/// what to hold while its connection is open (a gauge's guard).
struct Peers {
    exempt: Box<dyn Fn(std::net::IpAddr) -> bool + Send + Sync>,
    opened: Box<dyn Fn() -> Box<dyn Send> + Send + Sync>,
}

async fn accept(
    listener: TcpListener,
    app: axum::Router,
    limits: ConnectionLimits,
    peers: Peers,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt as _;

    let app = app
        .layer(axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| {
            check_request_size(req, next, limits)
        }))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        // The timeout answers with a bare status: make it a problem document too.
        .layer(axum::middleware::map_response(ensure_problem));
    // Two pools: the exempt peers' (the proxies) and everyone else's, so other peers cannot
    // take the slots of the proxies.
    let exempt_pool = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let other_pool = Arc::new(tokio::sync::Semaphore::new(limits.max_other_connections));
    let per_address: Arc<Mutex<std::collections::HashMap<std::net::IpAddr, usize>>> = Arc::default();
    // A client can cause these warnings at will: one a minute, saying how many were held back.
    let full = Throttle::default();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // Room above the header limit, so the check below answers with a problem document
        // while hyper still bounds what one connection may buffer.
        .max_buf_size((limits.max_header_bytes + limits.max_uri_bytes).saturating_mul(2).max(8192))
        .keep_alive(true);
    // hyper's header read timeout also runs while a kept-alive connection waits for its next
    // request. Proxies keep idle upstream connections for a minute or more (nginx 60 s, Envoy
    // 1 h): for them, none.
    let mut exempt_http = http.clone();
    exempt_http.header_read_timeout(None);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(target: "keysmith::server", error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let exempt = (peers.exempt)(peer.ip());
        let (pool, max, kind) = if exempt {
            (&exempt_pool, limits.max_connections, "exempt peers")
        } else {
            (&other_pool, limits.max_other_connections, "other peers")
        };
        let Ok(permit) = Arc::clone(pool).try_acquire_owned() else {
            warn_full(&full, peer, max, kind);
            continue;
        };
        let source = if exempt { None } else { Some(source_key(peer.ip())) };
        if let Some(source) = source {
            let mut open = per_address.lock().unwrap_or_else(PoisonError::into_inner);
            let count = open.entry(source).or_insert(0);
            if *count >= limits.max_connections_per_address {
                drop(open);
                warn_full(&full, peer, limits.max_connections_per_address, "one address");
                continue;
            }
            *count += 1;
        }
        let per_address = Arc::clone(&per_address);
        let open = (peers.opened)();
        let service = app.clone().map_request(move |mut request: axum::extract::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            request
        });
        let builder = if exempt { &exempt_http } else { &http };
        let connection =
            builder.serve_connection(TokioIo::new(stream), hyper_util::service::TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(target: "keysmith::server", %peer, error = %escape::Escaped(&e), "connection closed with an error");
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
            drop(open);
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.drain_timeout) => tracing::warn!(target: "keysmith::server", "drain timed out; closing remaining connections"),
    }
    Ok(())
}

/// Logs that a connection from `peer` was closed because the limit of `max` connections of
/// `kind` is reached, at most once per [`Throttle::EVERY`] (the rest at the debug level).
fn warn_full(throttle: &Throttle, peer: std::net::SocketAddr, max: usize, kind: &'static str) {
    match throttle.allow(std::time::Instant::now()) {
        Some(held_back) => tracing::warn!(target: "keysmith::server",
            %peer,
            max,
            kind,
            held_back,
            "connection limit reached; closing (one warning a minute, held_back since the last)"),
        None => tracing::debug!(target: "keysmith::server", %peer, max, kind, "connection limit reached; closing"),
    }
}

/// Refuses over-long URIs (`414`) and header blocks (`431`) as problem documents.
async fn check_request_size(
    request: axum::extract::Request,
    next: axum::middleware::Next,
    limits: ConnectionLimits,
) -> Response {
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
    tracing::info!(target: "keysmith::server", "shutdown signal received; draining in-flight requests");
}
