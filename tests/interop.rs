//! Keys minted by the running server verify in other JOSE implementations using the served
//! JWKS alone: PyJWT (Python), Node's crypto, and the jsonwebtoken crate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

mod common;

use common::TestServer;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const CONFIG: &str = r#"
version = 12
issuer = "https://keys.interop.test"
[projects.media]
[[templates]]
id = "uploader"
project = "media"
permissions = ["FILE_UPLOAD", "OBJECTS_LIST"]
expiration_duration = 300
[templates.upload]
dir_scope = "/in/*"
limit_per_source_ip = 3
"#;

async fn mint(server: &TestServer) -> (String, String) {
    let minted: Value = reqwest::get(server.url("/media/v1/key/uploader")).await.unwrap().json().await.unwrap();
    let jwks = reqwest::get(server.url("/.well-known/jwks.json")).await.unwrap().text().await.unwrap();
    (minted["key"].as_str().unwrap().to_owned(), jwks)
}

fn tampered(token: &str) -> String {
    // Flip one claim character inside the payload; the signature no longer matches.
    let (h, rest) = token.split_once('.').unwrap();
    let (p, s) = rest.split_once('.').unwrap();
    let mut p = p.as_bytes().to_vec();
    p[10] = if p[10] == b'A' { b'B' } else { b'A' };
    format!("{h}.{}.{s}", String::from_utf8(p).unwrap())
}

fn script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop").join(name).display().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn pyjwt_verifies_with_the_served_jwks() {
    let server = TestServer::start(CONFIG).await;
    let (token, _) = mint(&server).await;
    let jwks_url = server.url("/.well-known/jwks.json");
    let run = |token: String, audience: &'static str| {
        let jwks_url = jwks_url.clone();
        tokio::task::spawn_blocking(move || {
            Command::new("python3")
                .args([script("pyjwt_verify.py"), jwks_url, token, "https://keys.interop.test".into(), audience.into()])
                .output()
                .expect("python3 runs")
        })
    };
    let out = run(token.clone(), "media").await.unwrap();
    assert!(
        out.status.success(),
        "PyJWT refused a valid key (is PyJWT installed? run scripts/test-deps.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verified: Value = serde_json::from_slice(&out.stdout).unwrap();
    let claims = &verified["claims"];
    assert_eq!(claims["iss"], "https://keys.interop.test");
    assert_eq!(claims["aud"], "media");
    assert_eq!(claims["sub"], "uploader");
    assert_eq!(claims["scope"], "FILE_UPLOAD OBJECTS_LIST");
    assert_eq!(claims["ver"], 12);
    assert_eq!(claims["upload_dirs"], serde_json::json!(["/in/*"]));
    assert_eq!(claims["limits"], serde_json::json!({"per_source_ip": 3}));
    assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 300);

    let wrong_audience = run(token.clone(), "other").await.unwrap();
    assert!(!wrong_audience.status.success());
    assert!(String::from_utf8_lossy(&wrong_audience.stderr).contains("InvalidAudience"));
    let forged = run(tampered(&token), "media").await.unwrap();
    assert!(!forged.status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn node_crypto_verifies_with_the_jwks() {
    let server = TestServer::start(CONFIG).await;
    let (token, jwks) = mint(&server).await;
    let jwks_file = server.dir.path().join("jwks.json");
    std::fs::write(&jwks_file, jwks).unwrap();
    let run = |token: &str| {
        Command::new("node").arg(script("node_verify.mjs")).arg(&jwks_file).arg(token).output().expect("node runs")
    };
    let out = run(&token);
    assert!(out.status.success(), "node refused a valid key: {}", String::from_utf8_lossy(&out.stderr));
    let claims: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(claims["client_id"], "uploader");
    assert!(!run(&tampered(&token)).status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn jsonwebtoken_crate_verifies_with_the_jwks() {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header, jwk::JwkSet};
    let server = TestServer::start(CONFIG).await;
    let (token, jwks) = mint(&server).await;
    let set: JwkSet = serde_json::from_str(&jwks).unwrap();
    let header = decode_header(&token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let jwk = set.find(header.kid.as_deref().unwrap()).unwrap();
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["media"]);
    validation.set_issuer(&["https://keys.interop.test"]);
    validation.validate_nbf = true;
    let data = decode::<Value>(&token, &key, &validation).unwrap();
    assert_eq!(data.claims["sub"], "uploader");
    assert!(decode::<Value>(&tampered(&token), &key, &validation).is_err());
}
