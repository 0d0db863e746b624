//! Enforcing keys in front of a service: the pieces `keysmith gate` is made of, for a Rust
//! service to mount in-process instead (feature `http`).
//!
//! An [`Enforcer`] takes a request's method, target, headers and client address, and decides
//! with the library's own functions: the key from `Authorization: Bearer` or `X-Api-Key`
//! ([`extract_key`]), the [`Verifier`] (with its verified-token cache), the first matching route
//! ([`Routes`]), the path decoded once and checked by [`Grant::authorize`], and for upload
//! routes [`Grant::authorize_upload`] (the key's size and type limits against the request's
//! length and `Content-Type`) and the key's upload counters in a [`LimitStore`]. Every refusal is a [`Refusal`], mapped
//! in one place to a status, a problem+json body and `WWW-Authenticate`/`Retry-After`.
//!
//! Mount it as a tower layer ([`EnforceLayer`]) or take [`Authorized`] as an axum extractor;
//! both decide from the request head, before the body is read. See
//! `examples/upload_service.rs`.

mod key;
mod refusal;
mod routes;

pub use key::{KeyError, PresentedKey, X_API_KEY, extract_key};
pub use refusal::{CODE_HEADER, Refusal};
pub use routes::{DirFrom, Matched, RouteError, RouteSpec, Routes};

use crate::limits::{LimitStore, MemoryStore, UploadAttempt, UploadDecision};
use crate::policy::dir_scope::normalise_path;
use crate::policy::ip::{ForwardedHeader, IpRules, client_ip};
use crate::token::dangerous::{ClaimedType, claimed_type};
use crate::verify::{Denied, Grant, Verifier};
use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

/// The headers an allowed request carries to the upstream. Any the client sent under these
/// names is removed first.
pub const AUTHORIZED_HEADERS: [&str; 4] =
    ["x-keysmith-subject", "x-keysmith-jti", "x-keysmith-scope", "x-keysmith-project"];

/// What to do when the limit store cannot decide.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnStoreError {
    /// Refuse the upload with 503 `limit_store_unavailable` (the default: fail closed).
    #[default]
    Deny,
    /// Let the upload through uncounted, and log it.
    Allow,
}

/// Who an allowed request acts as: passed to the upstream as `X-Keysmith-*` headers, and to
/// handlers as an extension or extractor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    /// The template (`sub`) of an access token, or the id of a permanent key.
    pub subject: String,
    /// The key's `jti`.
    pub jti: String,
    /// The permissions the key carries, space-separated.
    pub scope: String,
    /// The project (audience) the key is for, space-separated when several.
    pub project: String,
    /// The client address the decision used.
    pub client: IpAddr,
}

impl Authorized {
    /// The `X-Keysmith-*` headers, in the order of [`AUTHORIZED_HEADERS`].
    ///
    /// # Errors
    ///
    /// [`Refusal::Invalid`] when a verified value cannot be a header value (control characters).
    pub fn headers(&self) -> Result<[(HeaderName, HeaderValue); 4], Refusal> {
        let value = |v: &str| {
            HeaderValue::from_str(v).map_err(|_| {
                Refusal::Invalid(crate::verify::VerifyError::InvalidClaims("a claim cannot be a header value".into()))
            })
        };
        Ok([
            (HeaderName::from_static(AUTHORIZED_HEADERS[0]), value(&self.subject)?),
            (HeaderName::from_static(AUTHORIZED_HEADERS[1]), value(&self.jti)?),
            (HeaderName::from_static(AUTHORIZED_HEADERS[2]), value(&self.scope)?),
            (HeaderName::from_static(AUTHORIZED_HEADERS[3]), value(&self.project)?),
        ])
    }
}

/// Decides requests: verifies the key, matches the route, checks the directory, address and
/// upload limits. Cheap to share (`Arc<Enforcer>`).
pub struct Enforcer {
    verifier: Verifier,
    routes: Routes,
    store: Arc<dyn LimitStore>,
    on_store_error: OnStoreError,
    trusted_proxies: IpRules,
}

impl std::fmt::Debug for Enforcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enforcer")
            .field("verifier", &self.verifier)
            .field("routes", &self.routes)
            .field("on_store_error", &self.on_store_error)
            .finish_non_exhaustive()
    }
}

impl Enforcer {
    /// An enforcer for `routes` with `verifier`. Defaults: a [`MemoryStore`] for the upload
    /// limits, [`OnStoreError::Deny`], and no trusted proxies (the socket peer is the client).
    pub fn new(verifier: Verifier, routes: Routes) -> Self {
        Self {
            verifier,
            routes,
            store: Arc::new(MemoryStore::default()),
            on_store_error: OnStoreError::Deny,
            trusted_proxies: IpRules::new(Vec::new()),
        }
    }

    /// Keeps upload counters in `store` (a `RedisStore` shares them between replicas).
    pub fn limit_store(mut self, store: Arc<dyn LimitStore>) -> Self {
        self.store = store;
        self
    }

    /// What to do when the store cannot decide. Defaults to [`OnStoreError::Deny`]; `Allow`
    /// lets uploads through uncounted while the store is away.
    pub fn on_store_error(mut self, policy: OnStoreError) -> Self {
        self.on_store_error = policy;
        self
    }

    /// Peers whose `X-Forwarded-For` is believed. Defaults to none.
    pub fn trusted_proxies(mut self, proxies: IpRules) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// The verifier (to plug in refreshers, or to read its revocation list).
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The client's address: `peer`, or from `X-Forwarded-For` when `peer` is a trusted proxy.
    ///
    /// # Errors
    ///
    /// [`Refusal::ClientAddress`] when a trusted proxy sent a malformed header.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> Result<IpAddr, Refusal> {
        // Every value, as bytes: one that is not text is refused, never skipped (skipping
        // would let a client's own value stand in for the one the proxy appended).
        let values = headers.get_all("x-forwarded-for").iter().map(HeaderValue::as_bytes);
        client_ip(peer, ForwardedHeader::XForwardedFor, values, &self.trusted_proxies)
            .map_err(|_| Refusal::ClientAddress)
    }

    /// Decides one request described by a proxy (a forward-auth subrequest): `method` and
    /// `target` (its path and query, as sent) with the key in `headers`, from `client`, at
    /// `now`. For an upload route the length is [`X_ORIGINAL_CONTENT_LENGTH`] when present
    /// (the subrequest carries no body), else `Content-Length`; the type is `Content-Type`.
    /// An allowed upload is counted.
    ///
    /// # Errors
    ///
    /// A [`Refusal`] saying why.
    pub async fn authorize(
        &self,
        method: &Method,
        target: &str,
        headers: &HeaderMap,
        client: IpAddr,
        now: SystemTime,
    ) -> Result<Authorized, Refusal> {
        let upload = UploadHead::from_headers(headers, LengthFrom::Proxied);
        self.decide(method, target, headers, upload, client, now).await
    }

    async fn decide(
        &self,
        method: &Method,
        target: &str,
        headers: &HeaderMap,
        upload: UploadHead<'_>,
        client: IpAddr,
        now: SystemTime,
    ) -> Result<Authorized, Refusal> {
        let key = extract_key(headers)?;
        // The key first: an unauthenticated caller learns nothing about the routes.
        let verified = match key {
            PresentedKey::Bearer(token) if claimed_type(token) != Some(ClaimedType::ApiKey) => {
                Verified::Access(self.verifier.verify(token, now)?)
            }
            PresentedKey::Bearer(key) | PresentedKey::ApiKey(key) => {
                Verified::ApiKey(self.verifier.verify_api_key(key, now)?)
            }
        };
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        if !path.starts_with('/') {
            return Err(Refusal::InvalidTarget);
        }
        // Decoded once; a `%` left after that (double encoding) is refused by the scope check.
        let path = routes::decode(path).map_err(|()| Refusal::InvalidTarget)?;
        let matched = self.routes.find(method, &path, query).map_err(|()| Refusal::InvalidTarget)?;
        let matched = matched.ok_or(Refusal::NoRoute)?;
        match &verified {
            Verified::Access(grant) if matched.upload => grant.authorize_upload(
                &matched.permission,
                matched.dir.as_deref(),
                Some(client),
                upload.length,
                upload.content_type,
            )?,
            Verified::Access(grant) => grant.authorize(&matched.permission, matched.dir.as_deref(), Some(client))?,
            Verified::ApiKey(grant) => {
                if !grant.has_permission(&matched.permission) {
                    return Err(Denied::PermissionMissing(matched.permission).into());
                }
                // A permanent key has no directory scope; the path must still be sound.
                if let Some(dir) = &matched.dir {
                    normalise_path(dir).map_err(Denied::InvalidPath)?;
                }
            }
        }
        if let (true, Verified::Access(grant)) = (matched.upload, &verified) {
            match self.store.check_upload(UploadAttempt::from_grant(grant, client, now)).await {
                Ok(UploadDecision::Allowed) => {}
                Ok(UploadDecision::Refused { limit, retry_after }) => {
                    return Err(Refusal::Limited { limit, retry_after });
                }
                Err(e) => match self.on_store_error {
                    OnStoreError::Deny => return Err(Refusal::StoreUnavailable),
                    OnStoreError::Allow => {
                        tracing::warn!(error = %e, "limit store unavailable; upload let through uncounted (on_store_error = allow)");
                    }
                },
            }
        }
        Ok(verified.authorized(client))
    }

    /// Decides the request whose head is `parts`, with the client from its `ConnectInfo`. The
    /// body follows this head, so an upload's length is its own `Content-Length` only
    /// ([`X_ORIGINAL_CONTENT_LENGTH`] from a client is ignored here).
    ///
    /// # Errors
    ///
    /// A [`Refusal`]; [`Refusal::ClientAddress`] when the server was not started with
    /// `into_make_service_with_connect_info::<SocketAddr>()`.
    pub async fn authorize_parts(&self, parts: &Parts) -> Result<Authorized, Refusal> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().ok_or(Refusal::ClientAddress)?.0.ip();
        let client = self.client_ip(peer, &parts.headers)?;
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let upload = UploadHead::from_headers(&parts.headers, LengthFrom::Request);
        self.decide(&parts.method, target, &parts.headers, upload, client, SystemTime::now()).await
    }
}

/// The header a proxy sets to the original request's `Content-Length` when its forward-auth
/// subrequest carries no body (nginx: `proxy_set_header X-Original-Content-Length $content_length;`).
pub const X_ORIGINAL_CONTENT_LENGTH: &str = "x-original-content-length";

/// Where an upload's length is read from.
#[derive(Debug, Clone, Copy)]
enum LengthFrom {
    /// A proxy's description: `X-Original-Content-Length` when present, else `Content-Length`.
    Proxied,
    /// The request itself, whose body follows: `Content-Length` only.
    Request,
}

/// The length and type of an upload, from the request head.
#[derive(Debug, Clone, Copy)]
struct UploadHead<'a> {
    length: Option<u64>,
    content_type: Option<&'a str>,
}

impl<'a> UploadHead<'a> {
    fn from_headers(headers: &'a HeaderMap, from: LengthFrom) -> Self {
        let length = match from {
            LengthFrom::Proxied if headers.contains_key(X_ORIGINAL_CONTENT_LENGTH) => {
                single(headers, X_ORIGINAL_CONTENT_LENGTH).and_then(parse_length)
            }
            LengthFrom::Proxied | LengthFrom::Request => {
                single(headers, http::header::CONTENT_LENGTH.as_str()).and_then(parse_length)
            }
        };
        Self { length, content_type: single(headers, http::header::CONTENT_TYPE.as_str()) }
    }
}

/// The one value of `name`, as text; `None` when absent, repeated or not visible ASCII.
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut all = headers.get_all(name).iter();
    match (all.next(), all.next()) {
        (Some(value), None) => value.to_str().ok(),
        _ => None,
    }
}

/// A length as RFC 9110 §8.6 writes it: one or more digits, nothing else (no sign, no spaces,
/// no list); `None` otherwise or beyond `u64`.
fn parse_length(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[allow(clippy::large_enum_variant)] // one short-lived value per request, never stored
enum Verified {
    Access(Grant),
    ApiKey(crate::verify::ApiKeyGrant),
}

impl Verified {
    fn authorized(self, client: IpAddr) -> Authorized {
        match self {
            Self::Access(grant) => {
                let claims = grant.claims();
                let project = match &claims.aud {
                    crate::token::claims::Audience::One(a) => a.clone(),
                    crate::token::claims::Audience::Many(all) => all.join(" "),
                };
                Authorized {
                    subject: claims.sub.clone(),
                    jti: claims.jti.clone(),
                    scope: grant.permissions().join(" "),
                    project,
                    client,
                }
            }
            Self::ApiKey(grant) => Authorized {
                subject: grant.id().to_owned(),
                jti: grant.claims().jti.clone(),
                scope: grant.permissions().join(" "),
                project: grant.projects().join(" "),
                client,
            },
        }
    }
}

/// Replaces any `X-Keysmith-*` header in `headers` with those of `authorized`.
///
/// # Errors
///
/// As [`Authorized::headers`].
pub fn set_authorized_headers(headers: &mut HeaderMap, authorized: &Authorized) -> Result<(), Refusal> {
    let ours = authorized.headers()?;
    for name in AUTHORIZED_HEADERS {
        headers.remove(name);
    }
    for (name, value) in ours {
        headers.insert(name, value);
    }
    Ok(())
}

/// A tower layer that lets a request through only when its [`Enforcer`] allows it, before the
/// body is read. The inner service sees the [`Authorized`] extension and `X-Keysmith-*`
/// headers set by the enforcer (never the client's).
#[derive(Debug, Clone)]
pub struct EnforceLayer(Arc<Enforcer>);

impl EnforceLayer {
    /// A layer deciding with `enforcer`.
    pub fn new(enforcer: Arc<Enforcer>) -> Self {
        Self(enforcer)
    }
}

impl<S> tower::Layer<S> for EnforceLayer {
    type Service = Enforce<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Enforce { enforcer: Arc::clone(&self.0), inner }
    }
}

/// The service [`EnforceLayer`] wraps around another.
#[derive(Debug, Clone)]
pub struct Enforce<S> {
    enforcer: Arc<Enforcer>,
    inner: S,
}

impl<S, B> tower::Service<Request<B>> for Enforce<S>
where
    S: tower::Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone that was polled ready serves this request (tower's documented pattern).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let enforcer = Arc::clone(&self.enforcer);
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let decided = match enforcer.authorize_parts(&parts).await {
                Ok(authorized) => set_authorized_headers(&mut parts.headers, &authorized).map(|()| authorized),
                Err(refusal) => Err(refusal),
            };
            match decided {
                Ok(authorized) => {
                    parts.extensions.insert(authorized);
                    inner.call(Request::from_parts(parts, body)).await
                }
                Err(refusal) => Ok(refusal.into_response()),
            }
        })
    }
}

impl<S> FromRequestParts<S> for Authorized
where
    Arc<Enforcer>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // Already decided by an `EnforceLayer` in front: do not count an upload twice.
        if let Some(authorized) = parts.extensions.get::<Authorized>() {
            return Ok(authorized.clone());
        }
        let enforcer = Arc::<Enforcer>::from_ref(state);
        let authorized = enforcer.authorize_parts(parts).await?;
        parts.extensions.insert(authorized.clone());
        Ok(authorized)
    }
}
