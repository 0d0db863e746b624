//! A downstream upload service that accepts keysmith keys: `PUT /files/<path>` stores a file
//! when the key in `Authorization: Bearer` grants `FILE_UPLOAD` for the file's directory to the
//! caller's address. Run it from a checkout next to `keysmith serve` on the shipped
//! `config.toml` (`127.0.0.1:8080`); it fetches the JWKS and the revocation list from
//! `KEYSMITH_URL` (default `http://localhost:8080`) and listens on `LISTEN` (default
//! `127.0.0.1:3000`). In one terminal:
//!
//! ```sh
//! cargo run --example upload_service    # a downstream crate needs the `refresh` feature
//! ```
//!
//! and in a second one (each `# →` line is what the command before it prints; `…` stands for
//! what changes from key to key):
//!
//! ```sh
//! KEY=$(curl -s http://localhost:8080/demo/v1/key/upload-widget | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
//! curl -s -X PUT -H "Authorization: Bearer $KEY" --data-binary 'hello' http://127.0.0.1:3000/files/uploads/photo.jpg
//! # → stored 5 bytes at /uploads/photo.jpg for key …
//! curl -s -X PUT -H "Authorization: Bearer $KEY" --data-binary 'hello' http://127.0.0.1:3000/files/etc/photo.jpg
//! # → outside_scope
//! ```
//!
//! `tests/example.rs` runs these steps as written (addresses replaced) against a live server.

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::{Router, routing::put};
use keysmith::permission::FILE_UPLOAD;
use keysmith::refresh::{FetchError, RefreshOptions, Refresher};
use keysmith::{KeySet, Verifier};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

/// Where keys come from.
pub struct Settings {
    /// The keysmith service's base URL, for its JWKS and revocation list.
    pub keysmith_url: String,
    /// The `issuer` of keysmith's `config.toml`: the `iss` of every key it mints. By
    /// convention its public URL, so it defaults to `KEYSMITH_URL`.
    pub issuer: String,
    /// This service's project in keysmith's config: the `aud` its keys must carry.
    pub project: String,
}

/// Loads the keys (returns once the JWKS is in; blocking), starts keeping them and the
/// revocation list fresh, and builds the router. Keep the `Refresher` alive.
pub fn app(settings: &Settings) -> Result<(Router, Refresher), FetchError> {
    // The first key signed after a rotation waits up to 2 s for the JWKS refetch.
    let verifier =
        Verifier::new(KeySet::default(), &settings.issuer, &settings.project).unknown_kid_wait(Duration::from_secs(2));
    let base = settings.keysmith_url.trim_end_matches('/');
    let jwks = format!("{base}/.well-known/jwks.json");
    let refresher =
        Refresher::start(&verifier, jwks, Some(format!("{base}/v1/revocations")), RefreshOptions::default())?;
    Ok((Router::new().route("/files/{*path}", put(upload)).with_state(verifier), refresher))
}

async fn upload(
    State(verifier): State<Verifier>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()?.strip_prefix("Bearer "));
    let token = bearer.unwrap_or_default().to_owned();
    // `verify` may wait for a JWKS refetch: keep it off the async workers.
    let grant = match tokio::task::spawn_blocking(move || verifier.verify(&token, SystemTime::now())).await {
        Ok(Ok(grant)) => grant,
        Ok(Err(refused)) => return (StatusCode::UNAUTHORIZED, refused.code().to_owned()),
        Err(_) => return (StatusCode::INTERNAL_SERVER_ERROR, "internal".to_owned()),
    };
    // Behind a reverse proxy, find the caller with `keysmith::ip::client_ip` instead.
    let path = format!("/{path}");
    if let Err(denied) = grant.authorize_file(FILE_UPLOAD, &path, Some(peer.ip())) {
        return (StatusCode::FORBIDDEN, denied.code().to_owned());
    }
    // A real service stores `body` at `path` here.
    (StatusCode::CREATED, format!("stored {} bytes at {path} for key {}", body.len(), grant.jti()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let keysmith_url = env("KEYSMITH_URL", "http://localhost:8080");
    let settings =
        Settings { issuer: env("KEYSMITH_ISSUER", &keysmith_url), project: env("PROJECT", "demo"), keysmith_url };
    let (router, _refresher) = tokio::task::spawn_blocking(move || app(&settings)).await??;
    let listener = tokio::net::TcpListener::bind(env("LISTEN", "127.0.0.1:3000")).await?;
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}
