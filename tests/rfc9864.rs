//! RFC 9864: the fully-specified algorithm name `Ed25519` next to the polymorphic `EdDSA`. The
//! issuer writes the name `jws_alg` chooses (default `EdDSA`), in token headers and, unless
//! `jwks_alg_member = false`, in the JWKS; keysmith's verifier accepts both names for Ed25519
//! keys and nothing else; node `jose` verifies keys under either name.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

mod common;

use common::TestServer;
use keysmith::{KeySet, Verifier};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

const ISSUER: &str = "https://keys.rfc9864.test";

fn config(settings: &str) -> String {
    format!(
        "version = 1\nissuer = \"{ISSUER}\"\n{settings}\n[projects.media]\n[[templates]]\nid = \"uploader\"\n\
         project = \"media\"\npermissions = [\"FILE_UPLOAD\"]\nexpiration_duration = 300\n"
    )
}

/// A minted token, its header, and the served JWKS.
async fn mint(settings: &str) -> (String, Value, String) {
    let server = TestServer::start(&config(settings)).await;
    let minted: Value = reqwest::get(server.url("/media/v1/key/uploader")).await.unwrap().json().await.unwrap();
    let token = minted["key"].as_str().unwrap().to_owned();
    let jwks = reqwest::get(server.url("/.well-known/jwks.json")).await.unwrap().text().await.unwrap();
    let header = serde_json::from_slice(&common::unb64(token.split('.').next().unwrap())).unwrap();
    (token, header, jwks)
}

fn jose(jwks: &str, token: &str, alg: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    std::fs::write(&file, jwks).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/jose_alg.mjs");
    Command::new("node").arg(script).arg(&file).args([token, alg, ISSUER, "media"]).output().expect("node runs")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_name_is_eddsa_and_jose_verifies_it() {
    let (token, header, jwks) = mint("").await;
    assert_eq!(header["alg"], "EdDSA");
    let jwks: Value = serde_json::from_str(&jwks).unwrap();
    assert_eq!(jwks["keys"][0]["alg"], "EdDSA");
    let out = jose(&jwks.to_string(), &token, "EdDSA");
    assert!(out.status.success(), "jose: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn jws_alg_ed25519_is_written_and_jose_and_keysmith_verify_it() {
    let (token, header, jwks) = mint("jws_alg = \"Ed25519\"").await;
    assert_eq!(header["alg"], "Ed25519");
    let parsed: Value = serde_json::from_str(&jwks).unwrap();
    assert_eq!(parsed["keys"][0]["alg"], "Ed25519", "the JWKS names the algorithm the issuer writes");
    let out = jose(&jwks, &token, "Ed25519");
    assert!(out.status.success(), "jose: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Ed25519");
    // A verifier that allows only the old name refuses it: the name is part of the contract.
    assert!(!jose(&jwks, &token, "EdDSA").status.success());
    // keysmith's own verifier accepts the JWKS and the token.
    let verifier = Verifier::new(KeySet::from_jwks_json(jwks.as_bytes()).unwrap(), ISSUER, "media");
    verifier.verify(&token, SystemTime::now()).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_alg_member_the_jwks_serves_either_name() {
    let (token, header, jwks) = mint("jwks_alg_member = false").await;
    assert_eq!(header["alg"], "EdDSA");
    let parsed: Value = serde_json::from_str(&jwks).unwrap();
    assert!(parsed["keys"][0].get("alg").is_none(), "{jwks}");
    let out = jose(&jwks, &token, "EdDSA");
    assert!(out.status.success(), "jose: {}", String::from_utf8_lossy(&out.stderr));
    let verifier = Verifier::new(KeySet::from_jwks_json(jwks.as_bytes()).unwrap(), ISSUER, "media");
    verifier.verify(&token, SystemTime::now()).unwrap();
}
