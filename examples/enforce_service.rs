//! A small upload service that enforces keysmith keys in-process, with the same decisions as
//! `keysmith gate` and without the proxy hop.
//!
//! ```sh
//! cargo run --example enforce_service -- jwks.json http://localhost:8080 demo 127.0.0.1:3000
//! curl -T photo.jpg -H "Authorization: Bearer $KEY" http://127.0.0.1:3000/files/uploads/photo.jpg
//! ```
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

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
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
