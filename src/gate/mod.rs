//! `keysmith gate`: the enforcement point as a forward-auth service for a reverse proxy
//! (Caddy `forward_auth`, nginx `auth_request`, Traefik `ForwardAuth`, Envoy `ext_authz`).
//!
//! A thin service around [`crate::enforce`]: `gate.toml` ([`GateConfig`]) builds one
//! [`Enforcer`]; the JWKS and the revocation list are refreshed on background threads by
//! [`crate::refresh`] (never a call to the issuer per request), or a JWKS file is re-read when
//! it changes; `/v1/authorize` reads the
//! original request from the proxy's headers and answers with the enforcer's decision;
//! `/healthz` says whether the gate can decide; `/metrics` counts decisions (on the main
//! listener, or on `metrics_listen` when set). See `docs/gate.md`.

mod config;
mod jwks_file;
mod metrics;

pub use config::{DEFAULT_GATE_LISTEN, DEFAULT_REFRESH_SECONDS, GateConfig, RequestHeaders, StoreSetting};
pub use jwks_file::{JwksFileError, MAX_JWKS_FILE_BYTES};

use crate::enforce::{Authorized, Enforcer, Refusal};
use crate::limits::throttle::Throttle;
use crate::limits::{LimitStore, MemoryStore, RedisStore, StoreError};
use crate::policy::ip::IpRules;
use crate::refresh::{JwksRefresher, RefreshStatus, RevocationRefresher};
use crate::token::jwk::KeySet;
use crate::verify::Verifier;
use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Why the gate could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GateError {
    /// The JWKS file could not be read, is not trusted (others can change it), or is not a
    /// valid key set.
    #[error(transparent)]
    JwksFile(#[from] JwksFileError),
    /// The limit store address is invalid.
    #[error("limits.store")]
    Store(#[from] StoreError),
}

/// How often a JWKS file is looked at for a new version.
pub const JWKS_FILE_POLL: Duration = Duration::from_secs(1);

/// Where the gate's keys come from.
enum Jwks {
    /// An `http(s)://` JWKS, fetched in the background.
    Remote(JwksRefresher),
    /// A file, looked at every [`JWKS_FILE_POLL`] and re-read when it changes.
    File(jwks_file::JwksFile),
}

impl Jwks {
    fn status(&self) -> RefreshStatus {
        match self {
            Self::Remote(refresher) => refresher.status(),
            Self::File(file) => file.status(),
        }
    }
}

/// A running gate: the enforcer and the refreshers that keep its keys and list fresh.
pub struct Gate {
    enforcer: Arc<Enforcer>,
    jwks: Jwks,
    revocations: Option<RevocationRefresher>,
    wants_revocations: bool,
    metrics: metrics::GateMetrics,
    metrics_listen: Option<SocketAddr>,
    /// Peers that may ask `/v1/authorize`.
    allowed_callers: IpRules,
    /// Which headers describe the original request.
    request_headers: RequestHeaders,
    /// The warning for a peer not in `allowed_callers`, which any host that reaches the gate
    /// can cause at will: one a minute (the metric counts every refusal).
    refused_callers: Throttle,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate").field("enforcer", &self.enforcer).finish_non_exhaustive()
    }
}

impl Gate {
    /// Builds the enforcer and starts the background refreshers. Must run inside a tokio
    /// runtime when the store is Redis.
    ///
    /// # Errors
    ///
    /// A [`GateError`].
    pub fn start(config: GateConfig) -> Result<Self, GateError> {
        let remote = config.jwks.starts_with("http://") || config.jwks.starts_with("https://");
        let verifier = Verifier::new(KeySet::default(), config.issuer, config.audience)
            .scope_rules(config.rules)
            .cache_verified(config.cache_capacity);
        let jwks = if remote {
            Jwks::Remote(JwksRefresher::spawn(
                verifier.clone(),
                config.jwks.clone(),
                config.refresh,
                Duration::from_secs(1),
            ))
        } else {
            Jwks::File(jwks_file::JwksFile::start(&verifier, Path::new(&config.jwks), JWKS_FILE_POLL)?)
        };
        let revocations = config
            .revocations
            .as_ref()
            .map(|url| RevocationRefresher::spawn(verifier.clone(), url.clone(), config.refresh));
        let store: Arc<dyn LimitStore> = match &config.store {
            StoreSetting::Memory => {
                let store = MemoryStore::new(config.max_entries.unwrap_or(MemoryStore::DEFAULT_MAX_ENTRIES));
                Arc::new(match config.max_keys_per_source {
                    Some(max) => store.with_max_keys_per_source(max),
                    None => store,
                })
            }
            StoreSetting::Redis(url) => Arc::new(RedisStore::connect(url)?),
        };
        if config.allowed_callers.ranges().iter().any(|range| range.net().prefix_len() == 0) {
            tracing::warn!(
                allowed_callers = ?config.allowed_callers.to_strings(),
                "allowed_callers covers every address of a family: any peer that reaches the gate may describe \
                 requests to it; list the proxies that call it instead"
            );
        } else if let Some(wide) = config.allowed_callers.ranges().iter().find(|range| is_wide(range.net())) {
            // `trusted_proxies` (the default) often holds a load balancer's whole range so that
            // multi-hop `X-Forwarded-For` can be walked; every host in it may then ask the gate.
            tracing::warn!(
                range = %wide,
                "allowed_callers (by default trusted_proxies) includes a range wider than /24 (IPv4) or /64 \
                 (IPv6): every host in it may ask the gate and spend keys' upload counters; list only the \
                 proxies that call the gate in allowed_callers"
            );
        }
        let metrics = metrics::GateMetrics::new();
        let enforcer = Enforcer::new(verifier, config.routes)
            .limit_store(metrics.counting(store))
            .on_store_error(config.on_store_error)
            .trusted_proxies(config.trusted_proxies);
        Ok(Self {
            enforcer: Arc::new(enforcer),
            jwks,
            revocations,
            wants_revocations: config.revocations.is_some(),
            metrics,
            metrics_listen: config.metrics_listen,
            allowed_callers: config.allowed_callers,
            request_headers: config.request_headers,
            refused_callers: Throttle::default(),
        })
    }

    /// The enforcer deciding for this gate.
    pub fn enforcer(&self) -> &Arc<Enforcer> {
        &self.enforcer
    }

    /// Whether the gate can decide: it holds a JWKS and, when `revocations` is set, a list that
    /// is still fresh.
    pub fn is_ready(&self, now: SystemTime) -> bool {
        let keys = self.jwks.status().last_success.is_some();
        let list = !self.wants_revocations
            || self.enforcer.verifier().revocations().is_some_and(|l| l.is_fresh(crate::verify::unix_seconds(now)));
        keys && list
    }

    /// The gate's HTTP routes: `/v1/authorize` (any method), also `/v1/authorize/` and under
    /// `/v1/authorize/…` (Envoy's `ext_authz` puts its `path_prefix` before the original path,
    /// `/` included; the decision still reads only the forwarded method and URI headers), `/healthz`, and `/metrics` unless
    /// `metrics_listen` moves it to [`Gate::metrics_router`]. Serve them with
    /// `into_make_service_with_connect_info::<SocketAddr>()`.
    pub fn router(self: Arc<Self>) -> Router {
        let router = Router::new()
            .route("/v1/authorize", any(authorize))
            // `{*original}` needs at least one character: Envoy asks `/v1/authorize/` for `/`.
            .route("/v1/authorize/", any(authorize))
            .route("/v1/authorize/{*original}", any(authorize))
            .route("/healthz", get(healthz));
        let router = if self.metrics_listen.is_none() { router.route("/metrics", get(metrics)) } else { router };
        router.with_state(self)
    }

    /// `/metrics` alone, for the `metrics_listen` address.
    pub fn metrics_router(self: Arc<Self>) -> Router {
        Router::new().route("/metrics", get(metrics)).with_state(self)
    }

    /// Where `/metrics` is served apart from the main listener (`metrics_listen`), if anywhere.
    pub fn metrics_listen(&self) -> Option<SocketAddr> {
        self.metrics_listen
    }

    /// The OpenMetrics exposition of this gate at `now`.
    ///
    /// # Errors
    ///
    /// When the text cannot be written (not expected: the encoder writes to a `String`).
    pub fn render_metrics(&self, now: SystemTime) -> Result<String, std::fmt::Error> {
        let verifier = self.enforcer.verifier();
        let jwks = self.jwks.status();
        let held = metrics::Held {
            jwks_loaded: jwks.last_success,
            jwks_failures: jwks.failures_total,
            revocations_iat: verifier.revocations().map(|list| list.claims().iat),
            cache: verifier.cache_stats(),
            ready: self.is_ready(now),
        };
        self.metrics.render(&held, now)
    }

    /// Whether a revocation refresher runs (for status output).
    pub fn refreshes_revocations(&self) -> bool {
        self.revocations.is_some()
    }
}

/// Wider than one IPv4 /24 or one IPv6 /64: more hosts than a set of proxies.
fn is_wide(net: ipnet::IpNet) -> bool {
    match net {
        ipnet::IpNet::V4(v4) => v4.prefix_len() < 24,
        ipnet::IpNet::V6(v6) => v6.prefix_len() < 64,
    }
}

/// The original request as the proxy describes it: `X-Forwarded-Method` + `X-Forwarded-Uri`
/// (Caddy, Traefik, Envoy) or `X-Original-Method` + `X-Original-URI` (nginx). Without them the
/// request to `/v1/authorize` itself is not a description of anything: refused.
///
/// A proxy sets one kind and passes the client's other headers along (nginx's subrequest
/// does), so a client can add the other kind: every description header present must appear
/// once, and where both kinds name the method (or the target) they must agree. Otherwise the
/// description is refused rather than one kind believed.
fn original_request(headers: &HeaderMap, kind: RequestHeaders) -> Option<(Method, String)> {
    let forwarded = || pair(headers, "x-forwarded-method", "x-forwarded-uri");
    let original = || pair(headers, "x-original-method", "x-original-uri");
    let (method, uri) = match kind {
        RequestHeaders::XForwarded => forwarded()?.into_complete()?,
        RequestHeaders::XOriginal => original()?.into_complete()?,
        // Both halves from one kind: a method of one kind and a target of the other is no
        // description (a proxy that sets only one header would let the client add the other).
        RequestHeaders::Either => match (forwarded()?, original()?) {
            (Pair::Complete(a, b), Pair::Complete(c, d)) if a == c && b == d => (a, b),
            (Pair::Complete(m, u), Pair::Absent) | (Pair::Absent, Pair::Complete(m, u)) => (m, u),
            _ => return None,
        },
    };
    Some((Method::from_bytes(method.as_bytes()).ok()?, uri.to_owned()))
}

/// A method and target header pair as sent.
#[derive(Debug, PartialEq, Eq)]
enum Pair<'a> {
    Complete(&'a str, &'a str),
    Partial,
    Absent,
}

impl<'a> Pair<'a> {
    fn into_complete(self) -> Option<(&'a str, &'a str)> {
        match self {
            Self::Complete(m, u) => Some((m, u)),
            Self::Partial | Self::Absent => None,
        }
    }
}

/// The pair `method` + `target` in `headers`; `None` (refused) when either is repeated or not
/// text.
fn pair<'a>(headers: &'a HeaderMap, method: &str, target: &str) -> Option<Pair<'a>> {
    let one = |name: &str| -> Option<Option<&'a str>> {
        let mut all = headers.get_all(name).iter();
        match (all.next(), all.next()) {
            (None, _) => Some(None),
            (Some(v), None) => v.to_str().ok().map(Some),
            (Some(_), Some(_)) => None,
        }
    };
    Some(match (one(method)?, one(target)?) {
        (Some(m), Some(u)) => Pair::Complete(m, u),
        (None, None) => Pair::Absent,
        _ => Pair::Partial,
    })
}

async fn authorize(
    State(gate): State<Arc<Gate>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let decided = async {
        // Before any header is read: only an allowed caller's description of a request counts.
        if !gate.allowed_callers.contains(peer.ip()) {
            let code = Refusal::CallerNotAllowed.code();
            match gate.refused_callers.allow(Instant::now()) {
                Some(held_back) => tracing::warn!(code, peer = %peer.ip(), held_back, "refused"),
                None => tracing::debug!(code, peer = %peer.ip(), "refused"),
            }
            return Err(Refusal::CallerNotAllowed);
        }
        let (method, uri) = original_request(&headers, gate.request_headers).ok_or(Refusal::InvalidTarget)?;
        let client = gate.enforcer.client_ip(peer.ip(), &headers)?;
        let authorized = gate.enforcer.authorize(&method, &uri, &headers, client, SystemTime::now()).await;
        if let Err(refusal) = &authorized {
            // Client-controlled text is escaped by the log writer (one line per event).
            tracing::info!(code = refusal.code(), %method, uri = %uri, %client, "refused");
        }
        authorized
    }
    .await;
    let decided = decided.and_then(|a| allowed(&a).map(|response| (a, response)));
    gate.metrics.decided(decided.as_ref().map(|(a, _)| a));
    match decided.map(|(_, response)| response) {
        Ok(response) => response,
        Err(refusal) => refusal.into_response(),
    }
}

/// `200` with the `X-Keysmith-*` headers, and nothing else the client sent.
fn allowed(authorized: &Authorized) -> Result<Response, Refusal> {
    let mut response = StatusCode::OK.into_response();
    let headers = response.headers_mut();
    for (name, value) in authorized.headers()? {
        headers.insert(name, value);
    }
    headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn healthz(State(gate): State<Arc<Gate>>) -> Response {
    if gate.is_ready(SystemTime::now()) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        let problem = serde_json::json!({
            "type": "about:blank",
            "title": "Service Unavailable",
            "status": 503,
            "detail": "not ready: no JWKS yet, or the revocation list is not fresh",
            "code": "not_ready",
        });
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(http::header::CONTENT_TYPE, "application/problem+json"), (http::header::CACHE_CONTROL, "no-store")],
            problem.to_string(),
        )
            .into_response()
    }
}

async fn metrics(State(gate): State<Arc<Gate>>) -> Response {
    match gate.render_metrics(SystemTime::now()) {
        Ok(text) => {
            ([(http::header::CONTENT_TYPE, metrics::CONTENT_TYPE), (http::header::CACHE_CONTROL, "no-store")], text)
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot encode the metrics");
            let body = r#"{"type":"about:blank","title":"Internal error","status":500,"code":"internal_error"}"#;
            (StatusCode::INTERNAL_SERVER_ERROR, [(http::header::CONTENT_TYPE, "application/problem+json")], body)
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn either_kind_of_description_alone_is_read() {
        for pairs in [
            [("x-forwarded-method", "PUT"), ("x-forwarded-uri", "/files/a")],
            [("x-original-method", "PUT"), ("x-original-uri", "/files/a")],
        ] {
            let described = original_request(&headers(&pairs), RequestHeaders::Either);
            assert_eq!(described, Some((Method::PUT, "/files/a".into())));
        }
    }

    /// nginx sets `X-Original-*` and passes a client's `X-Forwarded-*` (Caddy the reverse):
    /// a client's headers of the other kind must not replace or complete the proxy's.
    #[test]
    fn descriptions_of_both_kinds_must_agree() {
        let proxy = [("x-original-method", "PUT"), ("x-original-uri", "/files/secret/a")];
        for client in [
            &[("x-forwarded-method", "PUT"), ("x-forwarded-uri", "/files/uploads/a")][..],
            &[("x-forwarded-uri", "/files/uploads/a")][..],
            &[("x-forwarded-method", "POST")][..],
            &[("x-forwarded-method", "put")][..],
            // Even agreeing, half a description beside a whole one is refused.
            &[("x-forwarded-method", "PUT")][..],
        ] {
            let both: Vec<_> = proxy.iter().chain(client).copied().collect();
            assert_eq!(original_request(&headers(&both), RequestHeaders::Either), None, "{client:?}");
        }
        let same = [proxy[0], proxy[1], ("x-forwarded-method", "PUT"), ("x-forwarded-uri", "/files/secret/a")];
        assert_eq!(
            original_request(&headers(&same), RequestHeaders::Either),
            Some((Method::PUT, "/files/secret/a".into()))
        );
    }

    /// A proxy that sets only one header of a kind (a misconfigured nginx without
    /// `X-Original-Method`) must not let the client supply the other half in the other kind.
    #[test]
    fn a_method_of_one_kind_and_a_target_of_the_other_is_no_description() {
        let mixed = [("x-original-uri", "/files/uploads/a"), ("x-forwarded-method", "PUT")];
        assert_eq!(original_request(&headers(&mixed), RequestHeaders::Either), None);
    }

    /// With `request_headers` set, only that kind is read and the other ignored: behind nginx
    /// with an edge proxy that also sets `X-Forwarded-*`, two honest but different descriptions
    /// (a stripped prefix) no longer conflict.
    #[test]
    fn a_chosen_kind_is_read_alone() {
        let chained = [
            ("x-original-method", "PUT"),
            ("x-original-uri", "/files/uploads/a"),
            ("x-forwarded-method", "PUT"),
            ("x-forwarded-uri", "/api/files/uploads/a"),
        ];
        assert_eq!(original_request(&headers(&chained), RequestHeaders::Either), None);
        let nginx = original_request(&headers(&chained), RequestHeaders::XOriginal);
        assert_eq!(nginx, Some((Method::PUT, "/files/uploads/a".into())));
        let edge = original_request(&headers(&chained), RequestHeaders::XForwarded);
        assert_eq!(edge, Some((Method::PUT, "/api/files/uploads/a".into())));
        // The chosen kind must be complete; the other never fills in.
        let half = [("x-original-uri", "/files/uploads/a"), ("x-forwarded-method", "PUT")];
        assert_eq!(original_request(&headers(&half), RequestHeaders::XOriginal), None);
        assert_eq!(original_request(&headers(&half), RequestHeaders::XForwarded), None);
    }

    /// A description header that is not text, or a method that is no HTTP token, is refused
    /// in every mode, never skipped in favour of the other kind.
    #[test]
    fn a_description_that_is_not_text_is_refused() {
        for kind in [RequestHeaders::Either, RequestHeaders::XOriginal] {
            let mut map = headers(&[("x-original-method", "PUT"), ("x-forwarded-method", "PUT")]);
            map.append("x-original-uri", HeaderValue::from_bytes(b"/files/\xff").unwrap());
            map.append("x-forwarded-uri", HeaderValue::from_static("/files/uploads/a"));
            assert_eq!(original_request(&map, kind), None, "{kind:?}");
            let bad_method = headers(&[("x-original-method", "P(T"), ("x-original-uri", "/files/a")]);
            assert_eq!(original_request(&bad_method, kind), None, "{kind:?}");
        }
    }

    #[test]
    fn a_repeated_or_missing_description_is_refused() {
        let repeated = [("x-forwarded-method", "PUT"), ("x-forwarded-uri", "/a"), ("x-forwarded-uri", "/b")];
        for kind in [RequestHeaders::Either, RequestHeaders::XForwarded] {
            assert_eq!(original_request(&headers(&repeated), kind), None);
            assert_eq!(original_request(&headers(&[("x-forwarded-method", "PUT")]), kind), None);
            assert_eq!(original_request(&HeaderMap::new(), kind), None);
        }
    }

    /// A gate reading its JWKS from a file in `dir`, asked by `127.0.0.1` only.
    fn gate(dir: &Path) -> Arc<Gate> {
        let jwks = dir.join("jwks.json");
        let key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key();
        let set = crate::token::jwk::Jwks { keys: vec![crate::token::jwk::PublicJwk::from_key(&key)] };
        std::fs::write(&jwks, serde_json::to_string(&set).unwrap()).unwrap();
        let toml = format!(
            "issuer = \"https://iss\"\naudience = \"demo\"\njwks = {:?}\nallowed_callers = [\"127.0.0.1/32\"]\n\
             [[routes]]\nmethods = [\"PUT\"]\npath = \"/files/{{*file}}\"\npermission = \"FILE_UPLOAD\"\n",
            jwks.display().to_string()
        );
        Arc::new(Gate::start(GateConfig::from_toml(&toml).unwrap()).unwrap())
    }

    /// Asks `path` of the gate's router from `peer` for an upload to `/files/a`, without a key:
    /// the status, the content type and the problem's `code`.
    async fn ask(gate: &Arc<Gate>, path: &str, peer: [u8; 4]) -> (StatusCode, String, serde_json::Value) {
        use tower::ServiceExt as _;
        let mut request = http::Request::get(path)
            .header("x-forwarded-method", "PUT")
            .header("x-forwarded-uri", "/files/a")
            .body(axum::body::Body::empty())
            .unwrap();
        request.extensions_mut().insert(ConnectInfo(SocketAddr::from((peer, 40000))));
        let response = Arc::clone(gate).router().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap();
        let problem = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        (status, content_type, problem["code"].clone())
    }

    /// Envoy's `ext_authz` asks `path_prefix` + the original path: `/v1/authorize/` for a
    /// request to `/`. Every form gets the same decision, never a bare `404`.
    #[tokio::test]
    async fn authorize_answers_under_every_path_envoy_asks() {
        let dir = tempfile::tempdir().unwrap();
        let gate = gate(dir.path());
        let plain = ask(&gate, "/v1/authorize", [127, 0, 0, 1]).await;
        assert_eq!(plain.1, "application/problem+json", "{plain:?}");
        assert_eq!(plain.0, StatusCode::UNAUTHORIZED, "{plain:?}");
        for path in ["/v1/authorize/", "/v1/authorize/files/a", "/v1/authorize//"] {
            assert_eq!(ask(&gate, path, [127, 0, 0, 1]).await, plain, "{path}");
        }
        let refused = ask(&gate, "/v1/authorize/", [10, 0, 0, 1]).await;
        assert_eq!((refused.0, refused.2), (StatusCode::FORBIDDEN, "caller_not_allowed".into()));
    }

    /// Before it holds a JWKS the gate's `/healthz` is a `503` problem document of its own
    /// (`not_ready`), not a plain text the listener would have to replace.
    #[tokio::test]
    async fn healthz_not_ready_is_a_problem_document() {
        use tower::ServiceExt as _;
        let toml = "issuer = \"https://iss\"\naudience = \"demo\"\njwks = \"http://127.0.0.1:9/jwks.json\"\n\
                    allowed_callers = [\"127.0.0.1/32\"]\n[[routes]]\nmethods = [\"PUT\"]\npath = \"/files/{*file}\"\n\
                    permission = \"FILE_UPLOAD\"\n";
        let gate = Arc::new(Gate::start(GateConfig::from_toml(toml).unwrap()).unwrap());
        let request = http::Request::get("/healthz").body(axum::body::Body::empty()).unwrap();
        let response = gate.router().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[http::header::CONTENT_TYPE], "application/problem+json");
        let body = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["code"], "not_ready", "{problem}");
        assert_eq!(problem["status"], 503, "{problem}");
        assert_eq!(problem["detail"], "not ready: no JWKS yet, or the revocation list is not fresh", "{problem}");
    }

    /// Counts the warnings logged under `keysmith::gate`.
    struct CountWarnings(Arc<std::sync::atomic::AtomicUsize>);

    impl tracing::Subscriber for CountWarnings {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let meta = event.metadata();
            if *meta.level() == tracing::Level::WARN && meta.target().starts_with("keysmith::gate") {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    /// A host on the network cannot flood the log: many refused peers are one warning (the
    /// metric counts each of them).
    #[tokio::test(flavor = "current_thread")]
    async fn refused_callers_are_one_warning_and_every_one_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let gate = gate(dir.path());
        let warnings = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let _log = tracing::subscriber::set_default(CountWarnings(Arc::clone(&warnings)));
        for i in 0..50u8 {
            let refused = ask(&gate, "/v1/authorize", [10, 0, 0, i]).await;
            assert_eq!(refused.2, "caller_not_allowed", "{refused:?}");
        }
        assert_eq!(warnings.load(std::sync::atomic::Ordering::SeqCst), 1);
        let metrics = gate.render_metrics(SystemTime::now()).unwrap();
        assert!(metrics.contains("keysmith_gate_decisions_total{code=\"caller_not_allowed\"} 50"), "{metrics}");
    }
}
