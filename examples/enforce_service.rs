//! A small upload service that enforces keysmith keys in-process, with the same decisions as
//! `keysmith gate` and without the proxy hop.
//!
//! From a checkout, next to `keysmith serve` on the shipped `config.toml` (which listens on
//! `127.0.0.1:8080`): the service reads the JWKS from a file, once, at start, and takes the
//! issuer (the `issuer` of `config.toml`: a name compared with each key's `iss`, not fetched),
//! the project and its listen address. In one terminal:
//!
//! ```sh
//! curl -s http://localhost:8080/.well-known/jwks.json -o jwks.json
//! cargo run --example enforce_service -- jwks.json http://localhost:8080 demo 127.0.0.1:3000
//! ```
//!
//! and in a second one (each `# →` line is what the command before it prints; `…` stands for
//! what changes from key to key):
//!
//! ```sh
//! KEY=$(curl -s http://localhost:8080/demo/v1/key/upload-widget | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
//! curl -s -X PUT -H "Authorization: Bearer $KEY" --data-binary 'hello' http://127.0.0.1:3000/files/uploads/photo.jpg
//! # → stored 5 bytes at /uploads/photo.jpg for upload-widget (…)
//! curl -s -H "Authorization: Bearer $KEY" http://127.0.0.1:3000/list/uploads
//! # → listing /uploads
//! curl -s -X PUT -H "Authorization: Bearer $KEY" --data-binary 'hello' http://127.0.0.1:3000/files/etc/photo.jpg
//! # → {…"status":403,…"code":"outside_scope"…}
//! curl -s -X PUT --data-binary 'hello' http://127.0.0.1:3000/files/uploads/photo.jpg
//! # → {…"status":401,…"code":"key_missing"…}
//! ```
//!
//! `tests/example.rs` runs these steps as written (addresses replaced) against a live server.
//!
//! `PUT /files/{*file}` needs `FILE_UPLOAD` on the file's directory and counts against the
//! key's upload limits; `GET /list/{*dir}` needs `OBJECTS_LIST` on the directory. The key is
//! checked by the layer before the body is read.

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::routing::{get, put};
use keysmith::enforce::{Authorized, EnforceLayer, Enforcer, RouteSpec, Routes};
use keysmith::{DEFAULT_CACHE_CAPACITY, KeySet, Verifier};
use std::net::SocketAddr;
use std::sync::Arc;

fn route(methods: &[&str], path: &str, permission: &str, dir: &str, upload: bool) -> RouteSpec {
    RouteSpec {
        methods: methods.iter().map(|m| (*m).to_owned()).collect(),
        path: path.to_owned(),
        permission: permission.to_owned(),
        dir: Some(dir.to_owned()),
        upload,
    }
}

async fn upload(Path(file): Path<String>, axum::Extension(who): axum::Extension<Authorized>, body: Bytes) -> String {
    format!("stored {} bytes at /{file} for {} ({})\n", body.len(), who.subject, who.jti)
}

async fn list(Path(dir): Path<String>) -> String {
    format!("listing /{dir}\n")
}

/// Runs the service with the command line's arguments (`JWKS_FILE ISSUER PROJECT LISTEN`, each
/// with a default) until it fails.
///
/// # Errors
///
/// When the JWKS file cannot be read or parsed, the address is invalid or cannot be bound.
pub async fn run(args: impl IntoIterator<Item = String>) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut args = args.into_iter();
    let jwks = std::fs::read(args.next().unwrap_or_else(|| "jwks.json".into()))?;
    let issuer = args.next().unwrap_or_else(|| "http://localhost:8080".into());
    let project = args.next().unwrap_or_else(|| "demo".into());
    let listen: SocketAddr = args.next().unwrap_or_else(|| "127.0.0.1:3000".into()).parse()?;

    let verifier =
        Verifier::new(KeySet::from_jwks_json(&jwks)?, issuer, project).cache_verified(DEFAULT_CACHE_CAPACITY);
    let routes = Routes::new(&[
        route(&["PUT", "POST"], "/files/{*file}", "FILE_UPLOAD", "parent:file", true),
        route(&["GET"], "/list/{*dir}", "OBJECTS_LIST", "capture:dir", false),
    ])?;
    let enforcer = Arc::new(Enforcer::new(verifier, routes));

    let app = Router::new()
        .route("/files/{*file}", put(upload).post(upload))
        .route("/list/{*dir}", get(list))
        .layer(EnforceLayer::new(enforcer));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    // The enforcer reads the client address from `ConnectInfo`.
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    run(std::env::args().skip(1)).await
}
