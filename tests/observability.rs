//! What operators and client generators read: `/metrics` (parsed by the reference Python
//! Prometheus parser) and `/openapi.json`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

mod common;
#[path = "common/metrics.rs"]
mod metrics;
use metrics::samples;

use common::TestServer;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};

const CONFIG: &str = r#"
version = 7
issuer = "https://keys.test"
[server]
{extra}
[projects.demo]
[[templates]]
id = "widget"
project = "demo"
permissions = ["OBJECTS_LIST"]
[[templates]]
id = "office-only"
project = "demo"
permissions = ["OBJECTS_LIST"]
[templates.restrict]
whitelist_ip_ranges = ["10.20.0.0/16"]
"#;

fn config(extra: &str) -> String {
    CONFIG.replace("{extra}", extra)
}

/// Runs `script` with `python3`, `input` on its standard input; its standard output.
fn python(script: &str, input: &str) -> String {
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (scripts/test-deps.sh installs what these tests need)");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed (run scripts/test-deps.sh):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn scrape(url: &str) -> (String, String) {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    (content_type, response.text().await.unwrap())
}

fn value(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    samples.get(key).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_parse_and_count_mints_and_refusals() {
    let server = TestServer::start(&config("")).await;
    let (content_type, before) = scrape(&server.url("/metrics")).await;
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    let before = samples(&before);
    assert_eq!(value(&before, "keysmith_config_version{}"), 7.0);

    let ok = reqwest::get(server.url("/demo/v1/key/widget")).await.unwrap();
    assert_eq!(ok.status(), 200);
    let refused = reqwest::get(server.url("/demo/v1/key/office-only")).await.unwrap();
    assert_eq!(refused.status(), 403);
    // Ids the config does not declare, and one that is no id: one `_unknown` series each.
    for path in ["/nope/v1/key/widget", "/another/v1/key/x", "/demo/v1/key/absent"] {
        assert_eq!(reqwest::get(server.url(path)).await.unwrap().status(), 404, "{path}");
    }

    let (_, after) = scrape(&server.url("/metrics")).await;
    let after = samples(&after);
    let minted = r#"keysmith_mints_total{project="demo",template="widget"}"#;
    assert_eq!(value(&after, minted) - value(&before, minted), 1.0, "{after:#?}");
    let ip = r#"keysmith_mint_refusals_total{code="ip_not_allowed",project="demo",template="office-only"}"#;
    assert_eq!(value(&after, ip), 1.0, "{after:#?}");
    let unknown = r#"keysmith_mint_refusals_total{code="unknown_project",project="_unknown",template="_unknown"}"#;
    assert_eq!(value(&after, unknown), 2.0, "{after:#?}");
    let absent = r#"keysmith_mint_refusals_total{code="unknown_template",project="demo",template="_unknown"}"#;
    assert_eq!(value(&after, absent), 1.0, "{after:#?}");
    assert!(
        !after.keys().any(|k| k.contains("nope") || k.contains("another") || k.contains("absent")),
        "no label from the request path: {after:#?}"
    );
    assert!(value(&after, "keysmith_mint_duration_seconds_count{}") >= 1.0, "{after:#?}");
    assert!(value(&after, "keysmith_open_connections{}") >= 1.0, "this scrape's own connection");
    let signing = after.keys().find(|k| k.starts_with("keysmith_key_age_seconds{") && k.contains(r#"role="signing""#));
    assert!(signing.is_some(), "{after:#?}");

    // A rejected reload is counted by its code.
    std::fs::write(server.dir.path().join("config.toml"), config("").replace("version = 7", "version = 3")).unwrap();
    assert!(matches!(server.try_reload(), keysmith::server::ReloadOutcome::Rejected(_)));
    let (_, text) = scrape(&server.url("/metrics")).await;
    let reloads = samples(&text);
    assert_eq!(value(&reloads, r#"keysmith_reloads_total{code="rollback_refused",outcome="rejected"}"#), 1.0);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_listen_moves_metrics_off_the_main_listener() {
    // A free port for the private listener.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = TestServer::start(&config(&format!("metrics_listen = \"127.0.0.1:{port}\""))).await;
    let main = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(main.status(), 404);
    assert_eq!(main.headers()["content-type"], "application/problem+json");

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(keysmith::server::serve_metrics(listener, server.handle.clone(), async move {
        let _ = rx.await;
    }));
    let (_, text) = scrape(&format!("http://127.0.0.1:{port}/metrics")).await;
    assert_eq!(value(&samples(&text), "keysmith_config_version{}"), 7.0);
    let other = reqwest::get(format!("http://127.0.0.1:{port}/.well-known/jwks.json")).await.unwrap();
    assert_eq!(other.status(), 404, "the private listener serves /metrics only");
    tx.send(()).unwrap();
    task.await.unwrap().unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn openapi_document_validates_and_names_every_route_and_code() {
    let server = TestServer::start(&config("")).await;
    let response = reqwest::get(server.url("/openapi.json")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let text = response.text().await.unwrap();
    // The reference validator, for the OpenAPI version the document declares.
    let verdict = python(
        "import json, sys\nfrom openapi_spec_validator import validate\nvalidate(json.load(sys.stdin))\nprint('valid')",
        &text,
    );
    assert_eq!(verdict.trim(), "valid");

    let document: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"), "{}", document["openapi"]);
    let paths: Vec<&str> = document["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    for path in [
        "/{project}/v1/key/{template}",
        "/{project}/v1/api-keys",
        "/v1/revocations",
        "/.well-known/jwks.json",
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-authorization-server/{issuer_path}",
        "/healthz",
        "/v1/status",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(paths.contains(&path), "{path} missing from {paths:?}");
    }
    let mint = &document["paths"]["/{project}/v1/key/{template}"];
    assert!(mint["get"].is_object() && mint["post"].is_object(), "{mint}");
    assert!(mint["post"]["requestBody"]["content"]["application/json"].is_object(), "{mint}");
    let create = &document["paths"]["/{project}/v1/api-keys"]["post"];
    assert!(create["requestBody"]["content"]["application/json"].is_object(), "{create}");

    // Codes the server answers are in the problem schema's enum.
    let codes: Vec<&str> = document["components"]["schemas"]["ProblemDocument"]["properties"]["code"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for (path, method) in [
        ("/demo/v1/key/office-only", reqwest::Method::GET),
        ("/nope/v1/key/widget", reqwest::Method::GET),
        ("/Bad!/v1/key/widget", reqwest::Method::GET),
        ("/no/such/endpoint", reqwest::Method::GET),
        ("/healthz", reqwest::Method::DELETE),
        ("/demo/v1/api-keys", reqwest::Method::POST),
    ] {
        let response = reqwest::Client::new().request(method, server.url(path)).send().await.unwrap();
        let problem: serde_json::Value = response.json().await.unwrap();
        let code = problem["code"].as_str().unwrap();
        assert!(codes.contains(&code), "{path}: {code} is not in {codes:?}");
    }
    server.stop().await.unwrap();
}

/// `revocation_list_entries` counts what the served list names: deactivated API keys, API keys
/// whose record has expired, and deactivated templates.
#[tokio::test(flavor = "multi_thread")]
async fn revocation_list_entries_count_expired_api_key_records() {
    let records = "[[api_keys]]\nid = \"ak_expired\"\npermissions = [\"OBJECTS_LIST\"]\nprojects = [\"demo\"]\n\
                   expires_at = \"2020-01-01T00:00:00Z\"\n\
                   [[api_keys]]\nid = \"ak_off\"\nactive = false\npermissions = [\"OBJECTS_LIST\"]\nprojects = [\"demo\"]\n\
                   [[api_keys]]\nid = \"ak_good\"\npermissions = [\"OBJECTS_LIST\"]\nprojects = [\"demo\"]\n";
    let server = TestServer::start(&format!("{}{records}", config(""))).await;
    let list = reqwest::get(server.url("/v1/revocations")).await.unwrap();
    assert_eq!(list.status(), 200);
    let (_, text) = scrape(&server.url("/metrics")).await;
    assert_eq!(value(&samples(&text), "keysmith_revocation_list_entries{}"), 2.0, "{text}");
    server.stop().await.unwrap();
}
