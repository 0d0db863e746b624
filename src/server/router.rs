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

/// The router for `handle`: the mint and API-key endpoints with CORS for the configured
/// origins (read per request), the public documents with CORS for any origin; a body limit,
/// request tracing, panic recovery, and problem documents for every error.
pub fn router(handle: IssuerHandle) -> Router {
    let private = Router::new()
        .route(
            "/{project}/v1/key/{template}",
            get(routes::mint::mint).post(routes::mint::mint).head(routes::mint::mint_head),
        )
        .route("/{project}/v1/api-keys", axum::routing::post(routes::api_keys::create_api_key))
        .route("/healthz", get(routes::health::healthz))
        .route("/livez", get(routes::probes::livez))
        .route("/readyz", get(routes::probes::readyz))
        .route("/v1/status", get(routes::health::status))
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(cors(handle.clone()));
    let public = Router::new()
        .route("/v1/revocations", get(routes::revocations::revocations))
        .route("/.well-known/jwks.json", get(routes::jwks::jwks))
        .route("/.well-known/oauth-authorization-server", get(routes::discovery::discovery))
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(public_cors());
    layered(private.merge(public), handle)
}

/// The middleware every route gets: problem documents for every error, panic recovery, the
/// body limit, the `Host` check and tracing (the request path escaped). CORS is per route
/// group, in [`router`].
fn layered(routes: Router<IssuerHandle>, handle: IssuerHandle) -> Router {
    let hosts = handle.clone();
    routes
        .with_state(handle)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| {
            check_host(hosts.clone(), req, next)
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
async fn check_host(handle: IssuerHandle, request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    // An absolute-form request target names the host; otherwise the Host header does.
    let host = match request.uri().authority() {
        Some(authority) => Some(authority.as_str()),
        None => request.headers().get(header::HOST).map(|v| v.to_str().unwrap_or("\u{fffd}")),
    };
    if handle.serving().issuer.config().server.allows_host(host) {
        return next.run(request).await;
    }
    let shown = request.headers().get(header::HOST).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    tracing::warn!(target: "keysmith::server",
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
pub(crate) async fn ensure_problem(response: Response) -> Response {
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
        handle.serving().issuer.config().server.cors_origins.iter().any(|o| o.as_bytes() == origin.as_bytes())
    });
    CorsLayer::new()
        .allow_origin(allowed)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION, HeaderName::from_static("x-api-key")])
        .max_age(Duration::from_secs(600))
}

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
        let config =
            crate::config::Config::from_toml("version = 1\nissuer = \"i\"\n", std::path::Path::new(".")).unwrap();
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
}
