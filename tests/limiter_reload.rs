//! The per-address rate limiter survives a reload that leaves its settings alone: a client that
//! spent its budget is still refused after an unrelated config change, and gets a fresh budget
//! only when the limit itself changes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

mod common;

use common::TestServer;
use reqwest::StatusCode;
use serde_json::Value;

fn config(version: u64, description: &str, burst: u32) -> String {
    format!(
        r#"
version = {version}
issuer = "https://keys.test"
[server]
# One request back every 10 s: a loaded test machine cannot refill a budget during this test.
rate_limit_per_minute = 6
rate_limit_burst = {burst}
[projects.demo]
description = "{description}"
[[templates]]
id = "widget"
project = "demo"
permissions = ["OBJECTS_LIST"]
"#
    )
}

async fn mint(server: &TestServer) -> reqwest::Response {
    reqwest::get(server.url("/demo/v1/key/widget")).await.unwrap()
}

#[tokio::test]
async fn a_spent_budget_stays_spent_across_a_reload() {
    let server = TestServer::start(&config(1, "first", 2)).await;
    let path = server.dir.path().join("config.toml");
    for _ in 0..2 {
        assert_eq!(mint(&server).await.status(), StatusCode::OK);
    }
    assert_eq!(mint(&server).await.status(), StatusCode::TOO_MANY_REQUESTS);

    // An unrelated change with a version bump: the budget is still spent.
    std::fs::write(&path, config(2, "second", 2)).unwrap();
    server.reload();
    let refused = mint(&server).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS, "a reload must not refill the budget");
    assert_eq!(refused.json::<Value>().await.unwrap()["code"], "rate_limited");

    // A change of the limit itself starts a limiter with the new settings.
    std::fs::write(&path, config(3, "second", 3)).unwrap();
    server.reload();
    assert_eq!(mint(&server).await.status(), StatusCode::OK, "new limits, new budget");
}
