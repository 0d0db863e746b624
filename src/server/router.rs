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
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

/// The router for `handle`, with CORS for the configured origins (read at start), a body
/// limit, request tracing, panic recovery, and problem documents for every error.
pub fn router(handle: IssuerHandle) -> Router {
    let routes = Router::new()
        .route(
            "/{project}/v1/key/{template}",
            get(routes::mint::mint).post(routes::mint::mint).head(routes::mint::mint_head),
        )
        .route("/{project}/v1/api-keys", axum::routing::post(routes::api_keys::create_api_key))
        .route("/v1/revocations", get(routes::revocations::revocations))
        .route("/.well-known/jwks.json", get(routes::jwks::jwks))
        .route("/healthz", get(routes::health::healthz))
        .route("/v1/status", get(routes::health::status));
    layered(routes, handle)
}

/// The middleware every route gets: problem documents for every error, panic recovery, the
/// body limit, the `Host` check, CORS and tracing (the request path escaped).
fn layered(routes: Router<IssuerHandle>, handle: IssuerHandle) -> Router {
    let cors = cors(handle.clone());
    let hosts = handle.clone();
    let refused_hosts = std::sync::Arc::new(Throttle::default());
    routes
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .with_state(handle)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| {
            check_host(hosts.clone(), std::sync::Arc::clone(&refused_hosts), req, next)
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

/// Lets one event through per [`Throttle::EVERY`] and counts the ones held back since.
#[derive(Debug, Default)]
struct Throttle {
    state: std::sync::Mutex<(Option<std::time::Instant>, u64)>,
}

impl Throttle {
    /// At most one warning this often.
    const EVERY: Duration = Duration::from_secs(60);

    /// `Some(held back since the last one)` when an event may be logged at `now`, else `None`.
    fn allow(&self, now: std::time::Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (last, held_back) = &mut *state;
        if last.is_none_or(|at| now.saturating_duration_since(at) >= Self::EVERY) {
            *last = Some(now);
            Some(std::mem::take(held_back))
        } else {
            *held_back = held_back.saturating_add(1);
            None
        }
    }
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

    #[test]
    fn one_warning_a_minute() {
        let throttle = Throttle::default();
        let t0 = std::time::Instant::now();
        assert_eq!(throttle.allow(t0), Some(0));
        assert_eq!(throttle.allow(t0 + Duration::from_secs(1)), None);
        assert_eq!(throttle.allow(t0 + Duration::from_secs(59)), None);
        assert_eq!(throttle.allow(t0 + Duration::from_secs(60)), Some(2));
    }
}
