//! The router: every route with its middleware (problem documents, panic recovery, body
//! limit, `Host` check, CORS, tracing).

use crate::server::escape;
use crate::server::extract::MAX_BODY_BYTES;
use crate::server::problem::ApiError;
use crate::server::routes;
use crate::server::state::IssuerHandle;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use std::time::Duration;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every route the service serves, with its handler and its OpenAPI operation: the one table
/// from which both the router and `/openapi.json` are built, so neither can list a route the
/// other lacks. Add a route to one of its two halves (with `#[utoipa::path]` on its handler),
/// never with `Router::route`.
pub(crate) fn table() -> OpenApiRouter<IssuerHandle> {
    private_table().merge(public_table())
}

/// The routes with CORS for the configured origins only: minting, API keys, health and status.
fn private_table() -> OpenApiRouter<IssuerHandle> {
    // `HEAD` would otherwise run the `GET` handler and mint; it answers 405 instead.
    let (schemas, paths, mint) = routes!(routes::mint::mint_get, routes::mint::mint_post);
    let mint = (schemas, paths, mint.head(routes::mint::mint_head));
    OpenApiRouter::with_openapi(crate::server::openapi::base())
        .routes(mint)
        .routes(routes!(routes::api_keys::create_api_key))
        .routes(routes!(routes::health::healthz))
        .routes(routes!(routes::probes::livez))
        .routes(routes!(routes::probes::readyz))
        .routes(routes!(routes::health::status))
        .routes(routes!(routes::metrics::metrics))
        .routes(routes!(routes::openapi::openapi))
}

/// The public documents, readable from any origin: the JWKS, the revocation list and the
/// discovery metadata.
fn public_table() -> OpenApiRouter<IssuerHandle> {
    OpenApiRouter::new()
        .routes(routes!(routes::revocations::revocations))
        .routes(routes!(routes::jwks::jwks))
        .routes(routes!(routes::discovery::discovery))
        .routes(routes!(routes::discovery::discovery_for_path))
}

/// The router for `handle`: the mint and API-key endpoints with CORS for the configured
/// origins (read per request), the public documents with CORS for any origin; a body limit,
/// request tracing, panic recovery, and problem documents for every error.
pub fn router(handle: IssuerHandle) -> Router {
    let (private, _) = private_table().split_for_parts();
    let (public, _) = public_table().split_for_parts();
    let private = private
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(cors(handle.clone()));
    let public = public.method_not_allowed_fallback(|| async { ApiError::method_not_allowed() }).layer(public_cors());
    layered(private.merge(public), handle)
}

/// The router of the separate `server.metrics_listen` listener: `/metrics` only.
pub(crate) fn metrics_router(handle: IssuerHandle) -> Router {
    Router::new()
        .route("/metrics", get(routes::metrics::metrics_private))
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .with_state(handle)
        .layer(CatchPanicLayer::custom(|_| ApiError::internal().into_response()))
}

/// The middleware every route gets: problem documents for every error, panic recovery, the
/// body limit, the `Host` check and tracing (the request path escaped). CORS is per route
/// group, in [`router`].
fn layered(routes: Router<IssuerHandle>, handle: IssuerHandle) -> Router {
    let hosts = handle.clone();
    let refused_hosts = std::sync::Arc::new(Throttle::default());
    routes
        .with_state(handle)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| {
            check_host(hosts.clone(), std::sync::Arc::clone(&refused_hosts), req, next)
        }))
        .layer(axum::middleware::map_response(ensure_problem))
        .layer(CatchPanicLayer::custom(|_| ApiError::internal().into_response()))
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
///
/// The warning is rate-limited (one per [`Throttle::EVERY`], saying how many were held back;
/// the rest go to the debug level), so one client cannot flood the log.
async fn check_host(
    handle: IssuerHandle,
    warnings: std::sync::Arc<Throttle>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    // An absolute-form request target names the host; otherwise the Host header does.
    let host = match request.uri().authority() {
        Some(authority) => Some(authority.as_str()),
        None => request.headers().get(header::HOST).map(|v| v.to_str().unwrap_or("\u{fffd}")),
    };
    if handle.serving().issuer.config().server.allows_host(host) {
        return next.run(request).await;
    }
    let shown = request.headers().get(header::HOST).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let shown = escape::Escaped(shown.as_deref().or(host).unwrap_or(""));
    match warnings.allow(std::time::Instant::now()) {
        Some(held_back) => tracing::warn!(target: "keysmith::server",
            host = %shown,
            held_back,
            "request for a host not in server.allowed_hosts refused"
        ),
        None => tracing::debug!(target: "keysmith::server",
            host = %shown,
            "request for a host not in server.allowed_hosts refused"
        ),
    }
    ApiError::new(
        axum::http::StatusCode::MISDIRECTED_REQUEST,
        "misdirected_request",
        "this service does not answer for that host",
    )
    .into_response()
}

/// Turns any error response that is not yet a problem document (an extractor's plain-text
/// rejection, a timeout, a handler's plain-text error) into one, so clients always get the
/// same shape. The original headers (`Allow`, `Retry-After`, …) are kept, but for those that
/// describe the replaced body.
pub(crate) async fn ensure_problem(response: Response) -> Response {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let mut problem = ApiError::from_status(status).into_response();
    let (parts, _body) = response.into_parts();
    // Headers that describe the replaced body, and the problem's `no-store`, are not carried.
    let replaced = [
        header::CONTENT_TYPE,
        header::CONTENT_LENGTH,
        header::CONTENT_ENCODING,
        header::CONTENT_RANGE,
        header::TRANSFER_ENCODING,
        header::ETAG,
        header::LAST_MODIFIED,
        header::CACHE_CONTROL,
    ];
    for name in parts.headers.keys() {
        if replaced.contains(name) {
            continue;
        }
        // The original's values win over the problem's (a `WWW-Authenticate` with details).
        problem.headers_mut().remove(name);
        for value in parts.headers.get_all(name) {
            problem.headers_mut().append(name.clone(), value.clone());
        }
    }
    problem
}

/// CORS for the origins of the config in use, read per request so a reload applies at once.
fn cors(handle: IssuerHandle) -> CorsLayer {
    let allowed = AllowOrigin::predicate(move |origin: &HeaderValue, _| {
        handle.serving().issuer.config().server.cors_origins.iter().any(|o| o.as_bytes() == origin.as_bytes())
    });
    CorsLayer::new()
        .allow_origin(allowed)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION, HeaderName::from_static("x-api-key")])
        .max_age(Duration::from_secs(600))
}

/// The log throttle, shared with the gate (it lives in `limits`, below both).
pub(crate) use crate::limits::throttle::Throttle;

/// CORS for the public documents (JWKS, revocation list, discovery metadata): any origin may
/// read them, revalidate with `If-None-Match` and see the `ETag`, so a verifier in a browser or
/// at the edge can load them. No credentials: the documents are the same for everyone.
fn public_cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::HEAD])
        .allow_headers([header::IF_NONE_MATCH])
        .expose_headers([header::ETAG])
        .max_age(Duration::from_secs(600))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt as _;

    fn handle() -> IssuerHandle {
        let config = crate::config::Config::from_toml(
            // With a path, so the discovery route under the issuer's path answers.
            "version = 1\nissuer = \"https://keys.example/t\"\n",
            std::path::Path::new("."),
        )
        .unwrap();
        let keys = crate::keys::store::Keyring::single(crate::keys::store::SigningKey::generate());
        IssuerHandle::new(crate::issuer::Issuer::from_parts(config, keys, None)).unwrap()
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

    /// The methods an OpenAPI path item can hold, as the router sees them (`OPTIONS` is the
    /// CORS layer's, for every path; `HEAD` follows `GET`, or is refused on the mint route).
    const METHODS: [&str; 6] = ["GET", "POST", "PUT", "DELETE", "PATCH", "TRACE"];

    #[tokio::test]
    async fn the_router_serves_exactly_the_documented_operations() {
        let (_, openapi) = table().split_for_parts();
        let document = serde_json::to_value(&openapi).unwrap();
        let paths = document["paths"].as_object().unwrap();
        assert!(paths.len() >= 8, "{paths:?}");
        let app = router(handle());
        for (path, item) in paths {
            let uri = path.replace("{project}", "demo").replace("{template}", "widget").replace("{*issuer_path}", "t");
            for method in METHODS {
                let documented = item.get(method.to_ascii_lowercase()).is_some();
                let request = Request::builder()
                    .method(method)
                    .uri(&uri)
                    .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 1))))
                    .body(Body::empty())
                    .unwrap();
                let response = app.clone().oneshot(request).await.unwrap();
                let status = response.status();
                let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
                let code = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["code"].as_str().map(str::to_owned));
                let routed = !matches!(code.as_deref(), Some("not_found" | "method_not_allowed"));
                assert_eq!(routed, documented, "{method} {path}: {status} {code:?}");
            }
        }
        // Paths that are not documented are not served.
        for path in ["/", "/v1", "/v2/status", "/demo/v1/key", "/demo/v1/keys/widget", "/openapi.yaml"] {
            let response = app.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        }
    }

    #[test]
    fn routes_are_added_only_through_the_table() {
        // The router is built from `table()`; a `Router::route` call elsewhere in the server
        // would serve a path the OpenAPI document does not list.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/server");
        let mut files = vec![dir];
        let mut calls = Vec::new();
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for line in code.lines().filter(|l| l.contains(".route(") || l.contains(".nest(") || l.contains(".merge("))
            {
                calls.push(format!("{}: {}", path.display(), line.trim()));
            }
        }
        // The exceptions: the two halves of the table joined (each with its own CORS), and the
        // separate metrics listener, which serves `/metrics` alone.
        let allowed = [
            "private_table().merge(public_table())",
            "layered(private.merge(public), handle)",
            "routes::metrics::metrics_private",
        ];
        let unexpected: Vec<_> = calls.iter().filter(|call| !allowed.iter().any(|a| call.contains(a))).collect();
        assert!(unexpected.is_empty(), "{unexpected:#?}");
        assert_eq!(calls.len(), allowed.len(), "{calls:#?}");
    }
}
