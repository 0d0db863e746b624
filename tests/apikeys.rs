//! Permanent API keys end to end: created with the CLI or over HTTP, used for `api_key`
//! templates and downstream, deactivated with the CLI, carried by the signed revocation list,
//! refused everywhere, reactivated.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

mod common;

use common::TestServer;
use keysmith::refresh::RevocationRefresher;
use keysmith::{KeySet, Verifier, VerifyError};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant, SystemTime};

const CONFIG: &str = r#"# Backend access.
version = 1
issuer = "https://keys.test"
revocations_max_age = 60

[server]
audit_log = "audit.jsonl"

[projects.demo]
[projects.other]

# Only holders of a permanent key may mint from this one.
[[templates]]
id = "backend-upload"
project = "demo"
access = "api_key"
permissions = ["FILE_UPLOAD", "OBJECTS_LIST", "FILE_DELETE"]

[[templates]]
id = "public-list"
project = "demo"
permissions = ["OBJECTS_LIST"]
"#;

fn keysmith(dir: &Path, args: &[&str]) -> Output {
    common::keysmith()
        .args(args)
        .arg("--config")
        .arg(dir.join("config.toml"))
        .env("KEYSMITH_KEYS", dir.join("keys"))
        .output()
        .unwrap()
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), CONFIG).unwrap();
    keysmith::keys::generate_key_file(&dir.path().join("keys"), chrono::Utc::now()).unwrap();
    dir
}

/// `keysmith apikey create`; returns (id, secret).
fn create(dir: &Path, permissions: &str, project: &str) -> (String, String) {
    let out = keysmith(
        dir,
        &["apikey", "create", "--description", "nightly import", "--permissions", permissions, "--project", project],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let secret = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let id = stderr.split_whitespace().skip_while(|w| *w != "key").nth(1).unwrap().to_owned();
    (id, secret)
}

async fn mint(server: &TestServer, template: &str, key: Option<&str>, body: Option<Value>) -> reqwest::Response {
    let client = reqwest::Client::new();
    let mut request = client.post(server.url(&format!("/demo/v1/key/{template}")));
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

async fn code(response: reqwest::Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    response.json::<Value>().await.unwrap()["code"].as_str().unwrap().to_owned()
}

async fn downstream(server: &TestServer) -> Verifier {
    let jwks = reqwest::get(server.url("/.well-known/jwks.json")).await.unwrap().bytes().await.unwrap();
    let list = reqwest::get(server.url("/v1/revocations")).await.unwrap().text().await.unwrap();
    Verifier::new(KeySet::from_jwks_json(&jwks).unwrap(), "https://keys.test", "demo")
        .with_revocations(&list, SystemTime::now())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn create_use_deactivate_reactivate() {
    let dir = setup();
    let (id, secret) = create(dir.path(), "FILE_UPLOAD,OBJECTS_LIST", "demo");
    let text = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
    assert!(text.starts_with("# Backend access.\nversion = 2\n"), "comments kept, version bumped:\n{text}");
    let (_, other_project) = create(dir.path(), "OBJECTS_LIST", "other");
    assert!(text.contains(&format!("id = \"{id}\"")) && !text.contains(&secret), "metadata only, never the secret");
    let listed = keysmith(dir.path(), &["apikey", "list"]);
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(
        listed.contains(&id) && listed.contains("nightly import") && listed.contains("FILE_UPLOAD,OBJECTS_LIST"),
        "{listed}"
    );

    let server = TestServer::start_in(dir).await;
    let dir = server.dir.path().to_owned();

    // The template needs a key; the minted permissions are template ∩ key.
    let missing = mint(&server, "backend-upload", None, None).await;
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    assert_eq!(code(missing, StatusCode::UNAUTHORIZED).await, "api_key_required");
    let ok = mint(&server, "backend-upload", Some(&secret), None).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.json::<Value>().await.unwrap()["permissions"], json!(["FILE_UPLOAD", "OBJECTS_LIST"]));
    let bearer = reqwest::Client::new()
        .get(server.url("/demo/v1/key/backend-upload"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::OK, "Authorization: Bearer works too");
    let wider = mint(&server, "backend-upload", Some(&secret), Some(json!({"permissions": ["FILE_DELETE"]}))).await;
    assert_eq!(code(wider, StatusCode::FORBIDDEN).await, "permission_not_in_api_key");
    // A short-lived key is not a permanent one.
    let short: Value = mint(&server, "public-list", None, None).await.json().await.unwrap();
    let short = short["key"].as_str().unwrap();
    assert_eq!(
        code(mint(&server, "backend-upload", Some(short), None).await, StatusCode::UNAUTHORIZED).await,
        "api_key_invalid"
    );
    assert_eq!(
        code(mint(&server, "backend-upload", Some("garbage"), None).await, StatusCode::UNAUTHORIZED).await,
        "api_key_invalid"
    );

    // Downstream, with the JWKS and the revocation list only.
    let verifier = downstream(&server).await;
    let grant = verifier.verify_api_key(&secret, SystemTime::now()).unwrap();
    assert_eq!(grant.id(), id);
    assert!(grant.has_permission("FILE_UPLOAD") && !grant.has_permission("FILE_DELETE"));
    assert_eq!(verifier.verify(&secret, SystemTime::now()).unwrap_err(), VerifyError::WrongType { expected: "at+jwt" });
    assert!(matches!(verifier.verify_api_key(short, SystemTime::now()), Err(VerifyError::WrongType { .. })));

    // Deactivate with the CLI, reload: the list carries the id, every verifier refuses it.
    let out = keysmith(&dir, &["apikey", "deactivate", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    server.reload();
    let list = reqwest::get(server.url("/v1/revocations")).await.unwrap();
    assert!(list.headers()["cache-control"].to_str().unwrap().starts_with("public, max-age="));
    assert!(list.headers().contains_key("etag"));
    let list = list.text().await.unwrap();
    let claims: Value = serde_json::from_slice(&common::unb64(list.split('.').nth(1).unwrap())).unwrap();
    assert_eq!(claims["revoked_api_keys"], json!([id]));
    assert_eq!(claims["ver"], 4, "two creations and one deactivation after version 1");
    assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 60);
    let verifier = downstream(&server).await;
    assert_eq!(verifier.verify_api_key(&secret, SystemTime::now()).unwrap_err(), VerifyError::Revoked);
    assert_eq!(
        code(mint(&server, "backend-upload", Some(&secret), None).await, StatusCode::UNAUTHORIZED).await,
        "api_key_revoked"
    );
    // A public template needs no key, but a permanent key presented to it must be valid: the
    // holder of a revoked one is told so, not served as if it had sent none. What is no claim
    // to be a permanent key (an old access token resent as Bearer, a gateway's own token,
    // garbage) is ignored there.
    assert_eq!(
        code(mint(&server, "public-list", Some(&secret), None).await, StatusCode::UNAUTHORIZED).await,
        "api_key_revoked"
    );
    for ignored in ["garbage", short] {
        let response = mint(&server, "public-list", Some(ignored), None).await;
        assert_eq!(response.status(), StatusCode::OK, "{ignored}");
        let resent = reqwest::Client::new()
            .get(server.url("/demo/v1/key/public-list"))
            .bearer_auth(ignored)
            .send()
            .await
            .unwrap();
        assert_eq!(resent.status(), StatusCode::OK, "Bearer {ignored}");
    }
    // A forged permanent key (its header says so, its signature does not verify) is refused.
    let (header, rest) = secret.split_once('.').unwrap();
    let forged = format!("{header}.{}", rest.replacen('e', "f", 1));
    assert_eq!(
        code(mint(&server, "public-list", Some(&forged), None).await, StatusCode::UNAUTHORIZED).await,
        "api_key_invalid"
    );
    assert_eq!(mint(&server, "public-list", None, None).await.status(), StatusCode::OK);
    // Another project's valid key says nothing about this one: ignored on a public template.
    assert_eq!(mint(&server, "public-list", Some(&other_project), None).await.status(), StatusCode::OK);

    // Reactivate: it passes again.
    assert!(keysmith(&dir, &["apikey", "activate", &id]).status.success());
    server.reload();
    assert!(downstream(&server).await.verify_api_key(&secret, SystemTime::now()).is_ok());
    assert_eq!(mint(&server, "backend-upload", Some(&secret), None).await.status(), StatusCode::OK);
    assert_eq!(mint(&server, "public-list", Some(&secret), None).await.status(), StatusCode::OK);
}

#[test]
fn cli_refuses_bad_edits_and_changes_nothing() {
    let dir = setup();
    let path = dir.path().join("config.toml");
    for args in [
        vec!["apikey", "create", "--description", "x", "--permissions", "FILE_TELEPORT", "--project", "demo"],
        vec!["apikey", "create", "--description", "x", "--permissions", "FILE_UPLOAD", "--project", "nope"],
        vec!["apikey", "deactivate", "ak_unknown"],
        vec!["apikey", "activate", "ak_unknown"],
    ] {
        let out = keysmith(dir.path(), &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(out.stdout.is_empty(), "no secret printed for a refused request");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), CONFIG, "{args:?} changed the config");
    }
    std::fs::write(&path, CONFIG.replace("version = 1", "version = 0")).unwrap();
    let out = keysmith(
        dir.path(),
        &["apikey", "create", "--description", "x", "--permissions", "FILE_UPLOAD", "--project", "demo"],
    );
    assert_eq!(out.status.code(), Some(1), "an invalid config is not edited");
}

#[tokio::test(flavor = "multi_thread")]
async fn http_creation_checks_the_creator_and_audits() {
    let dir = setup();
    let (admin_id, admin) = create(dir.path(), "ACCESS_MANAGE,FILE_UPLOAD,OBJECTS_LIST", "demo");
    let (_, plain) = create(dir.path(), "FILE_UPLOAD", "demo");
    let server = TestServer::start_in(dir).await;
    let client = reqwest::Client::new();
    let url = server.url("/demo/v1/api-keys");
    let post = |key: Option<&str>, body: Value| {
        let mut request = client.post(&url).json(&body);
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        request.send()
    };

    let response = post(Some(&admin), json!({"name": "ci uploader", "permissions": ["FILE_UPLOAD"]})).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    let api_key = &created["apiKey"];
    assert_eq!(api_key["name"], "ci uploader");
    assert_eq!(api_key["permissions"], json!(["FILE_UPLOAD"]));
    assert!(api_key["createdAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(api_key["createdAt"], api_key["updatedAt"]);
    let child_id = api_key["id"].as_str().unwrap().to_owned();
    let child = created["secret"].as_str().unwrap().to_owned();
    let minted: Value = mint(&server, "backend-upload", Some(&child), None).await.json().await.unwrap();
    assert_eq!(minted["permissions"], json!(["FILE_UPLOAD"]));

    let escalate = post(Some(&admin), json!({"permissions": ["FILE_DELETE"]})).await.unwrap();
    assert_eq!(code(escalate, StatusCode::FORBIDDEN).await, "permission_escalation");
    let not_admin = post(Some(&plain), json!({"permissions": ["FILE_UPLOAD"]})).await.unwrap();
    assert_eq!(code(not_admin, StatusCode::FORBIDDEN).await, "permission_missing");
    assert_eq!(
        code(post(None, json!({"permissions": ["FILE_UPLOAD"]})).await.unwrap(), StatusCode::UNAUTHORIZED).await,
        "api_key_required"
    );
    assert_eq!(
        code(post(Some(&admin), json!({"permissions": []})).await.unwrap(), StatusCode::BAD_REQUEST).await,
        "empty_permissions"
    );
    assert_eq!(
        code(post(Some(&admin), json!({"permissions": ["NOPE"]})).await.unwrap(), StatusCode::BAD_REQUEST).await,
        "unknown_permission"
    );
    assert_eq!(
        code(post(Some(&admin), json!({"perms": []})).await.unwrap(), StatusCode::BAD_REQUEST).await,
        "invalid_body"
    );
    let other = client
        .post(server.url("/other/v1/api-keys"))
        .header("x-api-key", &admin)
        .json(&json!({"permissions": ["FILE_UPLOAD"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(code(other, StatusCode::FORBIDDEN).await, "api_key_wrong_project");

    // The audit log has the creation, never a secret.
    let audit = std::fs::read_to_string(server.dir.path().join("audit.jsonl")).unwrap();
    let lines: Vec<Value> = audit.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{audit}");
    assert_eq!(lines[0]["event"], "api_key_created");
    assert_eq!(lines[0]["id"], child_id.as_str());
    assert_eq!(lines[0]["name"], "ci uploader");
    assert_eq!(lines[0]["permissions"], "FILE_UPLOAD");
    assert_eq!(lines[0]["created_by"], admin_id.as_str());
    assert!(!audit.contains(&child) && !audit.contains(&admin));

    // Deactivating the creator revokes what it created.
    let dir = server.dir.path().to_owned();
    assert!(keysmith(&dir, &["apikey", "deactivate", &admin_id]).status.success());
    server.reload();
    assert_eq!(
        code(mint(&server, "backend-upload", Some(&child), None).await, StatusCode::UNAUTHORIZED).await,
        "api_key_revoked"
    );
    assert_eq!(downstream(&server).await.verify_api_key(&child, SystemTime::now()).unwrap_err(), VerifyError::Revoked);
}

#[tokio::test(flavor = "multi_thread")]
async fn refresher_keeps_verifiers_current() {
    let dir = setup();
    let (id, secret) = create(dir.path(), "FILE_UPLOAD", "demo");
    let server = TestServer::start_in(dir).await;
    let jwks = reqwest::get(server.url("/.well-known/jwks.json")).await.unwrap().bytes().await.unwrap();
    let verifier = Verifier::new(KeySet::from_jwks_json(&jwks).unwrap(), "https://keys.test", "demo");
    assert_eq!(verifier.verify_api_key(&secret, SystemTime::now()).unwrap_err(), VerifyError::RevocationsMissing);

    let refresher =
        RevocationRefresher::spawn(verifier.clone(), server.url("/v1/revocations"), Duration::from_millis(100));
    let until = |ok: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ok() {
            assert!(Instant::now() < deadline, "timed out");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    until(&|| verifier.verify_api_key(&secret, SystemTime::now()).is_ok());
    assert!(refresher.status().last_success.is_some());

    let dir = server.dir.path().to_owned();
    assert!(keysmith(&dir, &["apikey", "deactivate", &id]).status.success());
    server.reload();
    let revoked_at = Instant::now();
    until(&|| verifier.verify_api_key(&secret, SystemTime::now()).err() == Some(VerifyError::Revoked));
    assert!(revoked_at.elapsed() < Duration::from_secs(5), "picked up within seconds");
    drop(refresher);

    // Against a dead URL it backs off, reports the error, and the verifier keeps its last list.
    let dead =
        RevocationRefresher::spawn(verifier.clone(), "http://127.0.0.1:9/v1/revocations", Duration::from_secs(1));
    until(&|| dead.status().failures >= 2);
    assert!(dead.status().last_error.is_some());
    assert_eq!(verifier.verify_api_key(&secret, SystemTime::now()).unwrap_err(), VerifyError::Revoked);
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_verifies_permanent_keys_with_the_revocation_list() {
    let dir = setup();
    let out = keysmith(
        dir.path(),
        &[
            "apikey",
            "create",
            "--description",
            "x",
            "--permissions",
            "FILE_UPLOAD",
            "--project",
            "demo",
            "--expires-at",
            "2099-01-01T00:00:00Z",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let secret = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let text = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
    assert!(text.contains("expires_at = 2099-01-01T00:00:00Z"), "{text}");
    let past = keysmith(
        dir.path(),
        &[
            "apikey",
            "create",
            "--description",
            "x",
            "--permissions",
            "FILE_UPLOAD",
            "--project",
            "demo",
            "--expires-at",
            "2001-01-01T00:00:00Z",
        ],
    );
    assert_eq!(past.status.code(), Some(1));

    let server = TestServer::start_in(dir).await;
    let (jwks, list) = (server.url("/.well-known/jwks.json"), server.url("/v1/revocations"));
    let dir = server.dir.path().to_owned();
    let verify = move |extra: Vec<String>| {
        let dir = dir.clone();
        let secret = secret.clone();
        let jwks = jwks.clone();
        std::thread::spawn(move || {
            let mut args = vec!["verify".to_owned(), secret, "--jwks".into(), jwks, "--audience".into(), "demo".into()];
            args.extend(extra);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = keysmith(&dir, &args);
            (out.status.code(), serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null))
        })
        .join()
        .unwrap()
    };
    let (code, report) =
        verify(vec!["--revocations".into(), list.clone(), "--permission".into(), "FILE_UPLOAD".into()]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["kind"], "api_key");
    assert_eq!(report["claims"]["exp"], 4_070_908_800u64);
    assert_eq!(report["decision"]["allowed"], true);
    let (code, report) = verify(vec!["--revocations".into(), list, "--permission".into(), "FILE_DELETE".into()]);
    assert_eq!((code, &report["decision"]["allowed"]), (Some(1), &Value::Bool(false)));
    let (code, report) = verify(vec![]);
    assert_eq!((code, report["code"].as_str()), (Some(1), Some("revocations_missing")));
}

fn claims_of(token: &str) -> Value {
    serde_json::from_slice(&common::unb64(token.split('.').nth(1).unwrap())).unwrap()
}

async fn create_over_http(server: &TestServer, creator: &str, permissions: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.url("/demo/v1/api-keys"))
        .header("x-api-key", creator)
        .json(&json!({ "name": "child", "permissions": permissions }))
        .send()
        .await
        .unwrap()
}

async fn secret_of(response: reqwest::Response) -> (String, String) {
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    (body["apiKey"]["id"].as_str().unwrap().to_owned(), body["secret"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn http_created_keys_stay_under_the_config() {
    let dir = setup();
    let out = keysmith(
        dir.path(),
        &[
            "apikey",
            "create",
            "--description",
            "admin",
            "--permissions",
            "ACCESS_MANAGE,FILE_UPLOAD,OBJECTS_LIST,FILE_DELETE",
            "--project",
            "demo",
            "--expires-at",
            "2099-01-01T00:00:00Z",
        ],
    );
    assert!(out.status.success());
    let admin = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let admin_id = claims_of(&admin)["jti"].as_str().unwrap().to_owned();
    let server = TestServer::start_in(dir).await;
    let dir = server.dir.path().to_owned();

    // A child never outlives its creator.
    let (child_id, child) =
        secret_of(create_over_http(&server, &admin, json!(["FILE_UPLOAD", "FILE_DELETE"])).await).await;
    assert_eq!(claims_of(&child)["exp"], claims_of(&admin)["exp"]);
    assert_eq!(claims_of(&child)["created_by"], json!([admin_id]));
    let (manager_id, manager) =
        secret_of(create_over_http(&server, &admin, json!(["ACCESS_MANAGE", "FILE_UPLOAD"])).await).await;
    let (_, grandchild) = secret_of(create_over_http(&server, &manager, json!(["FILE_UPLOAD"])).await).await;
    assert_eq!(claims_of(&grandchild)["created_by"], json!([admin_id, manager_id]));

    // The config's record of the root key bounds everything beneath it.
    let path = dir.join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let narrowed = text
        .replace(
            "\"ACCESS_MANAGE\",\n    \"FILE_UPLOAD\",\n    \"OBJECTS_LIST\",\n    \"FILE_DELETE\",\n",
            "\"ACCESS_MANAGE\", \"FILE_UPLOAD\", \"OBJECTS_LIST\",\n",
        )
        .replace(
            "permissions = [\"ACCESS_MANAGE\", \"FILE_UPLOAD\", \"OBJECTS_LIST\", \"FILE_DELETE\"]",
            "permissions = [\"ACCESS_MANAGE\", \"FILE_UPLOAD\", \"OBJECTS_LIST\"]",
        )
        .replacen("version = 2", "version = 3", 1);
    assert_ne!(narrowed, text, "the record was narrowed");
    std::fs::write(&path, narrowed).unwrap();
    server.reload();
    let wider = mint(&server, "backend-upload", Some(&child), Some(json!({"permissions": ["FILE_DELETE"]}))).await;
    assert_eq!(code(wider, StatusCode::FORBIDDEN).await, "permission_not_in_api_key");
    let minted: Value = mint(&server, "backend-upload", Some(&child), None).await.json().await.unwrap();
    assert_eq!(minted["permissions"], json!(["FILE_UPLOAD"]));
    let access = minted["key"].as_str().unwrap().to_owned();
    assert_eq!(claims_of(&access)["api_keys"], json!([admin_id, child_id]));

    // One HTTP-created key is revoked on its own; its siblings and their branch live on.
    let out = keysmith(&dir, &["apikey", "deactivate", &manager_id]);
    assert_eq!(out.status.code(), Some(1), "unknown ids are refused without --unlisted");
    let out = keysmith(&dir, &["apikey", "deactivate", "--unlisted", &manager_id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    server.reload();
    assert_eq!(
        code(mint(&server, "backend-upload", Some(&grandchild), None).await, StatusCode::UNAUTHORIZED).await,
        "api_key_revoked"
    );
    assert_eq!(mint(&server, "backend-upload", Some(&child), None).await.status(), StatusCode::OK);

    // Access keys minted through a key die with it, downstream too.
    assert!(downstream(&server).await.verify(&access, SystemTime::now()).is_ok());
    assert!(keysmith(&dir, &["apikey", "deactivate", "--unlisted", &child_id]).status.success());
    server.reload();
    assert_eq!(downstream(&server).await.verify(&access, SystemTime::now()).unwrap_err(), VerifyError::Revoked);

    // A key this issuer signed but the config does not know is refused.
    let issuer = keysmith::Issuer::load(&path, &dir.join("keys")).unwrap();
    let new = keysmith::issuer::NewApiKey {
        projects: vec!["demo".into()],
        permissions: vec!["FILE_UPLOAD".into()],
        ..Default::default()
    };
    let stray = issuer.create_api_key(&new, SystemTime::now()).unwrap().secret;
    assert_eq!(
        code(mint(&server, "backend-upload", Some(&stray), None).await, StatusCode::UNAUTHORIZED).await,
        "api_key_unknown"
    );

    // A revoked creator creates nothing.
    assert!(keysmith(&dir, &["apikey", "deactivate", &admin_id]).status.success());
    server.reload();
    assert_eq!(
        code(create_over_http(&server, &admin, json!(["FILE_UPLOAD"])).await, StatusCode::UNAUTHORIZED).await,
        "api_key_revoked"
    );
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn an_unauditable_creation_hands_out_no_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        CONFIG.replace("audit_log = \"audit.jsonl\"", "audit_log = \"/dev/full\""),
    )
    .unwrap();
    keysmith::keys::generate_key_file(&dir.path().join("keys"), chrono::Utc::now()).unwrap();
    let (_, admin) = create(dir.path(), "ACCESS_MANAGE,FILE_UPLOAD", "demo");
    let server = TestServer::start_in(dir).await;
    let response = create_over_http(&server, &admin, json!(["FILE_UPLOAD"])).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "audit_failed");
    assert!(body.get("secret").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_credentials_are_refused_cleanly() {
    let dir = setup();
    let server = TestServer::start_in(dir).await;
    let url = server.url("/demo/v1/key/backend-upload");
    let client = reqwest::Client::new();
    let non_utf8 = reqwest::header::HeaderValue::from_bytes(b"ak\xff\xfe").unwrap();
    let cases: Vec<(&str, reqwest::header::HeaderValue)> = vec![
        ("x-api-key", non_utf8.clone()),
        ("x-api-key", reqwest::header::HeaderValue::from_static("")),
        ("x-api-key", reqwest::header::HeaderValue::from_str(&"a.".repeat(5000)).unwrap()),
        ("authorization", non_utf8),
        ("authorization", reqwest::header::HeaderValue::from_static("Bearer")),
        ("authorization", reqwest::header::HeaderValue::from_static("Basic dXNlcjpwYXNz")),
    ];
    for (name, value) in cases {
        let response = client.get(&url).header(name, value.clone()).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: {value:?}");
        assert!(["api_key_invalid", "api_key_required"].contains(&body["code"].as_str().unwrap()), "{body}");
    }
}

fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    chrono::DateTime::from_timestamp(i64::try_from(secs).unwrap(), 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Rewrites the config: `expires_at` of the record `id` set (or replaced) and `version` bumped.
fn set_record_expiry(dir: &Path, id: &str, expires_at: &str) {
    let path = dir.join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    let mut in_record = false;
    for line in text.lines() {
        if line.starts_with("expires_at") && in_record {
            continue;
        }
        if let Some(v) = line.strip_prefix("version = ") {
            out.push_str(&format!("version = {}\n", v.trim().parse::<u64>().unwrap() + 1));
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if line.starts_with("id = ") {
            in_record = line == format!("id = \"{id}\"");
            if in_record {
                out.push_str(&format!("expires_at = {expires_at}\n"));
            }
        }
    }
    std::fs::write(&path, out).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn permanent_keys_expire_and_nothing_outlives_them() {
    let dir = setup();
    let now = SystemTime::now();
    // A key with its own `exp`, created by the CLI: its `ver` is the version the CLI wrote.
    let key_exp = now + Duration::from_secs(120);
    let out = keysmith(
        dir.path(),
        &[
            "apikey",
            "create",
            "--description",
            "expiring",
            "--permissions",
            "FILE_UPLOAD",
            "--project",
            "demo",
            "--expires-at",
            &rfc3339(key_exp),
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let own_exp = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let claims = claims_of(&own_exp);
    assert_eq!(claims["exp"], unix(key_exp));
    let text = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
    assert!(text.contains("\nversion = 2\n"), "{text}");
    assert_eq!(claims["ver"], 2, "the key carries the config version that records it");

    // A key without `exp` whose record expires: the record bounds it and every key it makes.
    let (admin_id, admin) = create(dir.path(), "ACCESS_MANAGE,FILE_UPLOAD", "demo");
    assert_eq!(claims_of(&admin)["ver"], 3);
    let record_exp = now + Duration::from_secs(90);
    set_record_expiry(dir.path(), &admin_id, &rfc3339(record_exp));
    let listed = String::from_utf8(keysmith(dir.path(), &["apikey", "list"]).stdout).unwrap();
    assert!(listed.lines().next().unwrap().contains("EXPIRES_AT"), "{listed}");
    assert!(listed.contains(&rfc3339(key_exp)) && listed.contains(&rfc3339(record_exp)), "{listed}");
    assert!(!listed.contains("expired"), "{listed}");

    let server = TestServer::start_in(dir).await;
    let dir = server.dir.path().to_owned();
    // Short-lived keys minted through a permanent key end with it, not later.
    let minted: Value = mint(&server, "backend-upload", Some(&own_exp), None).await.json().await.unwrap();
    assert_eq!(claims_of(minted["key"].as_str().unwrap())["exp"], unix(key_exp), "{minted}");
    assert!(minted["expires_in"].as_u64().unwrap() <= 120, "{minted}");
    let minted: Value = mint(&server, "backend-upload", Some(&admin), None).await.json().await.unwrap();
    assert_eq!(claims_of(minted["key"].as_str().unwrap())["exp"], unix(record_exp), "{minted}");
    // A key created over HTTP never outlives its root's record either.
    let (_, child) = secret_of(create_over_http(&server, &admin, json!(["FILE_UPLOAD"])).await).await;
    assert_eq!(claims_of(&child)["exp"], unix(record_exp));

    // Once the record has passed, the key and everything beneath it are refused.
    set_record_expiry(&dir, &admin_id, &rfc3339(now - Duration::from_secs(10)));
    server.reload();
    for key in [&admin, &child] {
        assert_eq!(
            code(mint(&server, "backend-upload", Some(key), None).await, StatusCode::UNAUTHORIZED).await,
            "api_key_expired"
        );
    }
    assert_eq!(
        code(create_over_http(&server, &admin, json!(["FILE_UPLOAD"])).await, StatusCode::UNAUTHORIZED).await,
        "api_key_expired"
    );
    let listed = String::from_utf8(keysmith(&dir, &["apikey", "list"]).stdout).unwrap();
    let row = listed.lines().find(|l| l.contains(&admin_id)).unwrap();
    assert!(row.contains("expired"), "{listed}");
    assert!(!listed.lines().find(|l| l.contains("expiring")).unwrap().contains("expired"), "{listed}");
    server.stop().await.unwrap();
}

#[test]
fn a_key_past_its_own_exp_is_refused_by_the_issuer() {
    use keysmith::issuer::{Caller, MintError, NewApiKey};
    use keysmith::{Config, Issuer, Keyring, MintRequest, SigningKey};
    let t0 = std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let issuer_for = |text: &str| {
        let config = Config::from_toml(text, Path::new(".")).unwrap();
        Issuer::from_parts(
            config,
            Keyring::single(SigningKey::new(&ed25519_dalek::SigningKey::from_bytes(&[3; 32]))),
            None,
        )
    };
    let base = CONFIG.replace("[server]\naudit_log = \"audit.jsonl\"\n", "");
    let new = NewApiKey {
        projects: vec!["demo".into()],
        permissions: vec!["FILE_UPLOAD".into()],
        expires_at: Some(unix(t0) + 100),
        ..NewApiKey::default()
    };
    let created = issuer_for(&base).create_api_key(&new, t0).unwrap();
    let issuer = issuer_for(&format!(
        "{base}\n[[api_keys]]\nid = \"{}\"\npermissions = [\"FILE_UPLOAD\"]\nprojects = [\"demo\"]\n",
        created.id
    ));
    let mint_at = |t: SystemTime| {
        issuer.mint(
            "demo",
            "backend-upload",
            &MintRequest::default(),
            Caller::default().with_api_key(&created.secret),
            t,
        )
    };
    let minted = mint_at(t0 + Duration::from_secs(50)).unwrap();
    assert_eq!((minted.expires_in, minted.expires_at.timestamp()), (50, 1_800_000_100));
    for late in [100, 101, 3600] {
        let refused = mint_at(t0 + Duration::from_secs(late)).unwrap_err();
        assert!(matches!(refused, MintError::ApiKeyExpired), "{late}: {refused:?}");
        assert_eq!(refused.code(), "api_key_expired");
    }
}

fn kid_of(token: &str) -> String {
    let header: Value = serde_json::from_slice(&common::unb64(token.split('.').next().unwrap())).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

/// Right after a forced rotation makes a key active that verifiers may not have yet, the CLI
/// chooses the signer as the server does: `keysmith apikey create` and `keysmith mint` sign
/// with the key that signed before (published for `jwks_max_age`), and the config records that
/// key as the API key's signer.
#[test]
fn cli_signs_only_with_a_key_published_for_the_cache_lifetime() {
    let dir = setup();
    let config = CONFIG.replace("revocations_max_age = 60", "revocations_max_age = 60\njwks_max_age = 1");
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    let rotate = |force: bool| {
        let mut args = vec!["keys", "rotate"];
        if force {
            args.push("--force");
        }
        let out = keysmith(dir.path(), &args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
        text.split_whitespace().skip_while(|w| *w != "active").nth(1).map(str::to_owned)
    };
    rotate(false); // publishes a next key
    std::thread::sleep(Duration::from_millis(1100));
    let previous = rotate(false).unwrap(); // it signs; a new next key is published
    let unpublished = rotate(true).unwrap(); // ...and made active at once
    assert_ne!(previous, unpublished);

    let (id, secret) = create(dir.path(), "FILE_UPLOAD", "demo");
    assert_eq!(kid_of(&secret), previous, "apikey create signs with the published key");
    let text = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
    let recorded = text.split("[[api_keys]]").nth(1).unwrap();
    assert!(
        recorded.contains(&format!("id = \"{id}\"")) && recorded.contains(&format!("kid = \"{previous}\"")),
        "{text}"
    );

    let out = keysmith(dir.path(), &["mint", "--project", "demo", "--template", "public-list"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(kid_of(String::from_utf8_lossy(&out.stdout).trim()), previous, "mint signs with the published key");
}

/// `revoke-before` through the CLI under a running service: keys minted earlier (from the
/// template, or through the permanent key) are refused downstream, keys minted afterwards pass,
/// and the cut-offs survive later reloads.
#[tokio::test(flavor = "multi_thread")]
async fn cut_offs_void_earlier_keys_and_survive_reloads() {
    let dir = setup();
    let (id, secret) = create(dir.path(), "FILE_UPLOAD,OBJECTS_LIST", "demo");
    let server = TestServer::start_in(dir).await;
    let key_of = |r: Value| r["key"].as_str().unwrap().to_owned();
    let public_before = key_of(mint(&server, "public-list", None, None).await.json().await.unwrap());
    let through_before = key_of(mint(&server, "backend-upload", Some(&secret), None).await.json().await.unwrap());
    assert!(downstream(&server).await.verify(&public_before, SystemTime::now()).is_ok());
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let dir = server.dir.path();
    assert!(keysmith(dir, &["template", "revoke-before", "public-list"]).status.success());
    assert!(keysmith(dir, &["apikey", "revoke-before", &id]).status.success());
    server.reload();
    let refused = |v: Verifier, token: String| v.verify(&token, SystemTime::now()).unwrap_err() == VerifyError::Revoked;
    assert!(refused(downstream(&server).await, public_before.clone()), "minted from the template before");
    assert!(refused(downstream(&server).await, through_before.clone()), "minted through the key before");
    assert!(downstream(&server).await.verify_api_key(&secret, SystemTime::now()).is_ok(), "the key itself lives");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let public_after = key_of(mint(&server, "public-list", None, None).await.json().await.unwrap());
    let through_after = key_of(mint(&server, "backend-upload", Some(&secret), None).await.json().await.unwrap());
    assert!(downstream(&server).await.verify(&public_after, SystemTime::now()).is_ok());
    assert!(downstream(&server).await.verify(&through_after, SystemTime::now()).is_ok());

    // An unrelated edit and reload keeps them.
    let path = dir.join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let version = keysmith::Config::from_toml(&text, dir).unwrap().version;
    let edited = text
        .replacen(&format!("version = {version}"), &format!("version = {}", version + 1), 1)
        .replace("[projects.other]", "[projects.other]\ndescription = \"edited\"");
    assert_ne!(edited, text);
    std::fs::write(&path, edited).unwrap();
    server.reload();
    assert!(refused(downstream(&server).await, public_before), "after another reload");
    assert!(refused(downstream(&server).await, through_before));
    assert!(downstream(&server).await.verify(&public_after, SystemTime::now()).is_ok());
}
