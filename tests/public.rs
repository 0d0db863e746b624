//! The public documents (JWKS, revocation list, RFC 8414 discovery metadata) and the health
//! endpoints: what they say, how they cache, and that an OAuth resource-server middleware
//! configured with only the issuer URL finds the keys through the metadata.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

mod common;

use common::TestServer;
use reqwest::StatusCode;
use serde_json::Value;
use std::path::Path;

const TEMPLATES: &str = r#"
[projects.media]
[projects.billing]
[[templates]]
id = "uploader"
project = "media"
permissions = ["FILE_UPLOAD", "OBJECTS_LIST"]
expiration_duration = 300
[[templates]]
id = "invoices"
project = "billing"
permissions = ["OBJECTS_LIST"]
expiration_duration = 300
"#;

/// A server whose configured issuer is its own loopback URL, as a deployment's would be.
async fn start() -> (TestServer, String) {
    let server = TestServer::start(&format!("version = 1\nissuer = \"https://placeholder.test\"\n{TEMPLATES}")).await;
    let issuer = server.url("");
    std::fs::write(server.dir.path().join("config.toml"), format!("version = 2\nissuer = \"{issuer}\"\n{TEMPLATES}"))
        .unwrap();
    server.reload();
    (server, issuer)
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_metadata_names_the_issuer_and_its_jwks_and_caches() {
    let (server, issuer) = start().await;
    let response = reqwest::get(server.url("/.well-known/oauth-authorization-server")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    assert!(response.headers()["cache-control"].to_str().unwrap().starts_with("public, max-age="));
    let metadata: Value = response.json().await.unwrap();
    assert_eq!(metadata["issuer"], issuer.as_str());
    assert_eq!(metadata["jwks_uri"], format!("{issuer}/.well-known/jwks.json"));
    // RFC 8414 requires `response_types_supported`; keysmith has no authorization endpoint, so
    // it supports none, and no OAuth grant either (the default would claim two).
    assert_eq!(metadata["response_types_supported"], serde_json::json!([]));
    assert_eq!(metadata["grant_types_supported"], serde_json::json!([]));
    assert!(metadata.get("authorization_endpoint").is_none() && metadata.get("token_endpoint").is_none());

    let client = reqwest::Client::new();
    for tag in [etag.clone(), format!("W/{etag}")] {
        let cached = client
            .get(server.url("/.well-known/oauth-authorization-server"))
            .header("if-none-match", tag)
            .send()
            .await
            .unwrap();
        assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    }
}

/// An issuer with a path (`https://h/t`): RFC 8414 §3.1 clients insert the well-known segment
/// between host and path (`/.well-known/oauth-authorization-server/t`). Both that route and the
/// plain one answer; `jwks_uri` names the JWKS where this server serves it (the host's root),
/// and it is fetchable. Another path suffix is `404`.
#[tokio::test(flavor = "multi_thread")]
async fn discovery_for_an_issuer_with_a_path_follows_rfc_8414() {
    let server = TestServer::start(&format!("version = 1\nissuer = \"https://placeholder.test\"\n{TEMPLATES}")).await;
    let issuer = server.url("/tenant/a");
    std::fs::write(server.dir.path().join("config.toml"), format!("version = 2\nissuer = \"{issuer}\"\n{TEMPLATES}"))
        .unwrap();
    server.reload();
    for path in ["/.well-known/oauth-authorization-server/tenant/a", "/.well-known/oauth-authorization-server"] {
        let response = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let metadata: Value = response.json().await.unwrap();
        assert_eq!(metadata["issuer"], issuer.as_str(), "{path}");
        assert_eq!(metadata["jwks_uri"], server.url("/.well-known/jwks.json"), "{path}");
        let jwks = reqwest::get(metadata["jwks_uri"].as_str().unwrap()).await.unwrap();
        assert_eq!(jwks.status(), StatusCode::OK, "{path}: jwks_uri");
    }
    for other in ["/.well-known/oauth-authorization-server/tenant", "/.well-known/oauth-authorization-server/x/a"] {
        let response = reqwest::get(server.url(other)).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{other}");
        assert_eq!(response.headers()["content-type"], "application/problem+json", "{other}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_is_absent_when_the_issuer_is_not_an_https_or_http_url() {
    let server = TestServer::start(&format!("version = 1\nissuer = \"urn:keysmith:test\"\n{TEMPLATES}")).await;
    let response = reqwest::get(server.url("/.well-known/oauth-authorization-server")).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
}

async fn mint(server: &TestServer, project: &str, template: &str) -> String {
    let minted: Value =
        reqwest::get(server.url(&format!("/{project}/v1/key/{template}"))).await.unwrap().json().await.unwrap();
    minted["key"].as_str().unwrap().to_owned()
}

/// `token` with its claims changed by `edit`, signed again with the server's own key.
fn resigned(server: &TestServer, token: &str, edit: impl FnOnce(&mut Value)) -> String {
    use ed25519_dalek::Signer as _;
    use ed25519_dalek::pkcs8::DecodePrivateKey as _;
    let keys = server.dir.path().join("keys");
    let file = std::fs::read_dir(&keys)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "pem"));
    let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&std::fs::read_to_string(file.unwrap()).unwrap()).unwrap();
    let mut parts = token.split('.');
    let header = parts.next().unwrap();
    let mut claims: Value = serde_json::from_slice(&common::unb64(parts.next().unwrap())).unwrap();
    edit(&mut claims);
    let input = format!("{header}.{}", common::b64(serde_json::to_vec(&claims).unwrap()));
    format!("{input}.{}", common::b64(key.sign(input.as_bytes()).to_bytes()))
}

#[tokio::test(flavor = "multi_thread")]
async fn express_oauth2_jwt_bearer_with_only_the_issuer_url_finds_the_keys() {
    let (server, issuer) = start().await;
    let valid = mint(&server, "media", "uploader").await;
    let other_audience = mint(&server, "billing", "invoices").await;
    let expired = resigned(&server, &valid, |claims| {
        let iat = claims["iat"].as_u64().unwrap();
        claims["iat"] = (iat - 3600).into();
        claims["nbf"] = (iat - 3600).into();
        claims["exp"] = (iat - 1800).into();
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/express_discovery.mjs");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(script)
            .args([issuer.as_str(), "media", &valid, &other_audience, &expired])
            .env_remove("ISSUER_BASE_URL")
            .env_remove("AUDIENCE")
            .output()
            .expect("node runs (scripts/test-deps.sh installs the npm packages)")
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let statuses: Vec<u16> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(statuses, [200, 401, 401], "valid, another audience, expired");
}

#[tokio::test(flavor = "multi_thread")]
async fn livez_and_readyz_answer_and_healthz_stays() {
    let (server, _) = start().await;
    for path in ["/livez", "/readyz", "/healthz"] {
        let response = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "ok", "{path}");
    }
    let ready: Value = reqwest::get(server.url("/readyz")).await.unwrap().json().await.unwrap();
    assert_eq!(ready["config_version"], 2);
    assert_eq!(ready["checks"]["config"], "ok");
    assert_eq!(ready["checks"]["signing_key"], "ok");
    assert_eq!(ready["checks"]["revocations"], "ok");
}
