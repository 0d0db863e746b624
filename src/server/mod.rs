//! The HTTP service: mint keys, publish the JWKS, report health.
//!
//! Handlers are thin: they extract, call [`Issuer::mint`], and respond. Every error is an
//! [`ApiError`] (`application/problem+json` with a stable `code`).

mod error;
mod routes;

pub use error::ApiError;

use crate::issue::Issuer;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::IntoResponse as _;
use axum::routing::get;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

/// Largest request body accepted on the mint endpoint, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Shared state of the handlers.
#[derive(Clone)]
pub(crate) struct AppState {
    issuer: Arc<Issuer>,
    jwks: Arc<routes::JwksBody>,
}

/// The router for `issuer`, with CORS for its configured origins, a body limit, request
/// tracing and panic recovery.
pub fn router(issuer: Issuer) -> Router {
    let cors = cors(&issuer.config().server.cors_origins);
    let jwks = Arc::new(routes::JwksBody::new(&issuer));
    let state = AppState {
        issuer: Arc::new(issuer),
        jwks,
    };
    Router::new()
        .route(
            "/{project}/v1/key/{template}",
            get(routes::mint).post(routes::mint),
        )
        .route("/.well-known/jwks.json", get(routes::jwks))
        .route("/healthz", get(routes::healthz))
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(cors)
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal().into_response()
        }))
}

fn cors(origins: &[String]) -> CorsLayer {
    // Origins were validated with the config; one that is still not a header value is dropped.
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static("x-api-key"),
        ])
        .max_age(Duration::from_secs(600))
}

/// Serves `issuer` on `listener` until `shutdown` resolves, then drains in-flight requests.
///
/// # Errors
///
/// The I/O error that stopped the server.
pub async fn serve(
    listener: TcpListener,
    issuer: Issuer,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(issuer).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
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
