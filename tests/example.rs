//! The upload service in `examples/upload_service.rs`, run against a live keysmith: a key is
//! allowed in its scope, refused outside it and without one, and refused once its template is
//! deactivated (through the signed revocation list).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

mod common;

#[path = "../examples/upload_service.rs"]
#[allow(dead_code)] // its `main` is not used here
mod upload_service;

use common::TestServer;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
version = 1
issuer = "https://keys.test"
revocations_max_age = 10
[server]
rate_limit_per_minute = 0
[projects.demo]
[[templates]]
id = "upload-widget"
project = "demo"
permissions = ["FILE_UPLOAD"]
[templates.upload]
dir_scope = "/uploads/*"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn the_example_service_allows_refuses_and_revokes() {
    let server = TestServer::start(CONFIG).await;
    let settings = upload_service::Settings {
        keysmith_url: server.url(""),
        issuer: "https://keys.test".into(),
        project: "demo".into(),
    };
    let (router, refresher) =
        tokio::task::spawn_blocking(move || upload_service::app(&settings)).await.unwrap().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        async move { axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await },
    );

    let minted: serde_json::Value =
        reqwest::get(server.url("/demo/v1/key/upload-widget")).await.unwrap().json().await.unwrap();
    let key = minted["key"].as_str().unwrap().to_owned();
    let client = reqwest::Client::new();
    let put = |path: &str, key: Option<&str>| {
        let mut request = client.put(format!("http://{addr}/files{path}")).body("hello");
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };

    let (status, text) = put("/uploads/a/photo.jpg", Some(&key)).await;
    assert_eq!(status, 201, "{text}");
    assert!(text.contains("stored 5 bytes at /uploads/a/photo.jpg"), "{text}");
    assert_eq!(put("/etc/photo.jpg", Some(&key)).await, (403, "outside_scope".into()));
    assert_eq!(put("/photo.jpg", Some(&key)).await, (403, "outside_scope".into()));
    assert_eq!(put("/uploads/a.jpg", None).await, (401, "token_malformed".into()));

    // Deactivating the template revokes its keys through the signed list, within its refresh.
    let config = server.dir.path().join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let edited =
        text.replace("version = 1", "version = 2").replace("project = \"demo\"", "project = \"demo\"\nactive = false");
    std::fs::write(&config, edited).unwrap();
    server.reload();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match put("/uploads/a/photo.jpg", Some(&key)).await {
            (401, code) if code == "revoked" => break,
            (201, _) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
            other => panic!("not revoked in time: {other:?}, {:?}", refresher.revocations_status()),
        }
    }
    assert_eq!(refresher.jwks_status().fetches, 1, "the JWKS was fetched once");
}
