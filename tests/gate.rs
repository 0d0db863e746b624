//! `keysmith gate` behind a real reverse proxy: Debian's nginx (`auth_request`) with the
//! configuration of `docs/gate.md` in front of a small upload backend, the gate binary as its
//! forward-auth target, and a real `redis-server` shared by two gates; and the gate asked
//! directly, as a proxy asks it. Every part is started by the test on free loopback ports
//! (`tests/common/gate.rs`); a missing tool fails the test with a message naming
//! `scripts/test-deps.sh`.

#![cfg(feature = "gate")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

mod common;
#[path = "common/gate.rs"]
mod gate_parts;
#[path = "common/metrics.rs"]
mod metrics;
#[path = "common/redis.rs"]
mod redis_server;

use gate_parts::{
    Documents, Gate, GateConfig, ISSUER, Reply, Request, free_port, issuer, issuer_with_key, jwks_of, mint, nginx,
    start_backend, tampered,
};
use keysmith::issuer::NewApiKey;
use metrics::samples;
use redis_server::RedisServer;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

/// The templates of the proxy cases in config `version`, `burst` allowing 4 uploads a minute
/// and `per_ip` 3 per client address, with `extra` TOML after them.
fn config(version: u32, extra: &str) -> String {
    gate_parts::issuer_config(version, 4, 3, extra)
}

/// `GET /v1/authorize` with the 5-byte body of [`Request::new`], as the tests ask the gate
/// directly.
fn authorize() -> Request {
    Request::new("GET", "/v1/authorize")
}

/// [`authorize`] as a proxy asks it about `PUT /files/uploads/x.bin` from `client`.
fn asking_about_upload(client: &str) -> Request {
    authorize()
        .header("X-Forwarded-Method", "PUT")
        .header("X-Forwarded-Uri", "/files/uploads/x.bin")
        .header("X-Forwarded-For", client)
}

/// The gate on `port`'s answer to [`asking_about_upload`] from `client` with `token`.
async fn ask_upload(port: u16, token: &str, client: &str) -> Reply {
    asking_about_upload(client).bearer(token).send(port).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_nginx_each_request_gets_the_right_status_and_code() {
    let first = issuer(&config(1, ""));
    let api_key = first
        .create_api_key(
            &NewApiKey {
                projects: vec!["demo".into()],
                permissions: vec!["FILE_UPLOAD".into()],
                ..NewApiKey::default()
            },
            SystemTime::now(),
        )
        .unwrap();
    // The config records the permanent key as active: the signed list names it, and verifiers
    // accept a permanent key only while it does.
    let recorded = config(
        1,
        &format!("[[api_keys]]\nid = \"{}\"\npermissions = [\"FILE_UPLOAD\"]\nprojects = [\"demo\"]\n", api_key.id),
    );
    let docs = Documents::of(&first);
    docs.publish_revocations(&issuer(&recorded));
    let backend = start_backend(docs.clone()).await;
    let gate = Gate::start(backend).await;
    let nginx = nginx(gate.port, backend).await;
    let port = nginx.port;
    let up = mint(&first, "demo", "up");
    let put = |target: &str| Request::new("PUT", target);

    // Inside the scope: passes, and the upstream sees the gate's subject, not the client's.
    let ok = put("/files/uploads/a.txt").bearer(&up).header("X-Keysmith-Subject", "admin").send(port).await.unwrap();
    assert_eq!(ok.status, 201, "{}", ok.head);
    let subjects: Vec<&str> = ok.body.lines().filter_map(|l| l.strip_prefix("x-keysmith-subject: ")).collect();
    assert_eq!(subjects.join(","), "up", "{}", ok.body);
    let list = Request::get("/list/uploads").bearer(&up).send(port).await.unwrap();
    assert_eq!(list.status, 201);

    let cases = [
        (put("/files/uploads2/a.txt").bearer(&up), 403, "outside_scope"),
        (put("/files/uploads/../etc/a.txt").bearer(&up), 403, "invalid_path"),
        (put("/files/uploads/%2e%2e/%2e%2e/etc/a.txt").bearer(&up), 403, "invalid_path"),
        (put("/files/uploads/%252e%252e/a.txt").bearer(&up), 403, "invalid_path"),
        (Request::new("DELETE", "/files/uploads/a.txt").bearer(&up), 403, "no_route"),
        (put("/files/uploads/a.txt"), 401, "key_missing"),
        (put("/files/uploads/a.txt").bearer(&tampered(&up)), 401, "bad_signature"),
        (put("/files/uploads/a.txt").bearer(&mint(&first, "other", "elsewhere")), 401, "wrong_audience"),
        (put("/files/uploads/a.txt").bearer(&mint(&first, "demo", "office")), 403, "ip_not_allowed"),
    ];
    for (request, status, code) in cases {
        let r = request.send(port).await.unwrap();
        assert_eq!((r.status, r.code().as_str()), (status, code), "{request:?}: {}\n{}", r.head, r.body);
        assert!(r.body.contains(code), "{}", r.body);
        if status == 401 {
            let www = r.header("www-authenticate").unwrap_or_default();
            assert!(www.starts_with("Bearer"), "{www}");
            assert!(www.contains("error=\"invalid_token\""), "{www}");
        }
    }

    // Limits through nginx: 429 with Retry-After reaches the client.
    let burst = mint(&first, "demo", "burst");
    for _ in 0..4 {
        assert_eq!(put("/files/uploads/b.txt").bearer(&burst).send(port).await.unwrap().status, 201);
    }
    let limited = put("/files/uploads/b.txt").bearer(&burst).send(port).await.unwrap();
    assert_eq!((limited.status, limited.code().as_str()), (429, "limit_per_min"), "{}", limited.head);
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");

    // Revocations: a template and a permanent key, both working until the gate holds the list
    // that revokes them (fetched in the background, never per request).
    let doomed = mint(&first, "demo", "up");
    assert_eq!(put("/files/uploads/c.txt").bearer(&doomed).send(port).await.unwrap().status, 201);
    let key_header = || put("/files/uploads/c.txt").header("X-Api-Key", &api_key.secret);
    assert_eq!(key_header().send(port).await.unwrap().status, 201);
    let as_bearer = || put("/files/uploads/c.txt").bearer(&api_key.secret);
    assert_eq!(as_bearer().send(port).await.unwrap().status, 201);
    let revoking = config(
        2,
        &format!(
            "[[api_keys]]\nid = \"{}\"\npermissions = [\"FILE_UPLOAD\"]\nprojects = [\"demo\"]\nactive = false\n",
            api_key.id
        ),
    )
    .replacen("id = \"up\"\nproject = \"demo\"", "id = \"up\"\nproject = \"demo\"\nactive = false", 1);
    docs.publish_revocations(&issuer(&revoking));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = put("/files/uploads/c.txt").bearer(&doomed).send(port).await.unwrap();
        if r.status == 403 {
            assert_eq!(r.code(), "revoked");
            break;
        }
        assert_eq!(r.status, 201, "{}", r.head);
        assert!(Instant::now() < deadline, "the revoked template was still accepted after 15 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for request in [key_header(), as_bearer()] {
        let r = request.send(port).await.unwrap();
        assert_eq!((r.status, r.code().as_str()), (403, "revoked"), "{}", r.head);
    }
}

/// `upload.max_file_size` and `upload.content_types` decided by the gate from the original
/// request's length and type: nginx's subrequest carries no body (its `Content-Length` is
/// cleared), so the length travels as `X-Original-Content-Length`; 413 and 415 reach the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_nginx_upload_size_and_type_limits_reach_the_client() {
    // The template `sized`: max_file_size = 10, content_types = ["image/png"].
    let first = issuer(&config(1, ""));
    let backend = start_backend(Documents::of(&first)).await;
    let gate = Gate::start(backend).await;
    let nginx = nginx(gate.port, backend).await;
    let sized = mint(&first, "demo", "sized");
    let send = async |content_type: &str, body: &str| {
        let request = Request::new("PUT", "/files/uploads/a.png").bearer(&sized).header("Content-Type", content_type);
        request.body(body).send(nginx.port).await.unwrap()
    };

    let ok = send("image/png", "0123456789").await;
    assert_eq!(ok.status, 201, "{}\n{}", ok.head, ok.body);
    let ok = send("image/PNG; charset=x", "hello").await;
    assert_eq!(ok.status, 201, "{}\n{}", ok.head, ok.body);
    let large = send("image/png", "0123456789a").await;
    assert_eq!((large.status, large.code().as_str()), (413, "file_too_large"), "{}", large.head);
    assert!(large.body.contains("file_too_large"), "{}", large.body);
    let wrong = send("text/plain", "hello").await;
    assert_eq!((wrong.status, wrong.code().as_str()), (415, "content_type_not_allowed"), "{}", wrong.head);
    assert!(wrong.body.contains("content_type_not_allowed"), "{}", wrong.body);
    // Templates without upload limits are untouched by the length and type.
    let up = mint(&first, "demo", "up");
    let plain = Request::new("PUT", "/files/uploads/a.txt").bearer(&up).header("Content-Type", "text/plain");
    assert_eq!(plain.body("0123456789abc").send(nginx.port).await.unwrap().status, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gates_share_one_redis_budget_and_survive_a_redis_restart() {
    let mut redis = RedisServer::start();
    let first = issuer(&config(1, ""));
    let backend = start_backend(Documents::of(&first)).await;
    let a = GateConfig::new(backend).limits(&redis.url(), "deny").start().await;
    let b = GateConfig::new(backend).limits(&redis.url(), "deny").start().await;
    let open = GateConfig::new(backend).limits(&redis.url(), "allow").start().await;
    let nginx = nginx(a.port, backend).await;
    let either = |i: usize| if i.is_multiple_of(2) { a.port } else { b.port };

    // limit_per_min = 4, between both gates.
    let burst = mint(&first, "demo", "burst");
    let mut statuses = Vec::new();
    for i in 0..8 {
        statuses.push(ask_upload(either(i), &burst, "198.51.100.1").await.status);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429, 429, 429]);
    let r = ask_upload(b.port, &burst, "198.51.100.1").await;
    assert_eq!(r.code(), "limit_per_min");
    assert!(r.header("retry-after").is_some());
    assert!(r.header("x-keysmith-subject").is_none());

    // limit_per_source_ip = 3 per address, between both gates.
    let per_ip = mint(&first, "demo", "per_ip");
    for from in ["198.51.100.1", "198.51.100.2"] {
        let mut statuses = Vec::new();
        for i in 0..5 {
            statuses.push(ask_upload(either(i), &per_ip, from).await.status);
        }
        assert_eq!(statuses, [200, 200, 200, 429, 429], "{from}");
        assert_eq!(ask_upload(a.port, &per_ip, from).await.code(), "limit_per_source_ip");
    }

    // Redis stopped: `deny` answers 503 (through nginx too), `allow` lets the upload through.
    redis.stop();
    let fresh = mint(&first, "demo", "burst");
    let r = ask_upload(a.port, &fresh, "198.51.100.3").await;
    assert_eq!((r.status, r.code().as_str()), (503, "limit_store_unavailable"), "{}", r.head);
    let upload = || Request::new("PUT", "/files/uploads/x.bin").bearer(&fresh);
    let through = upload().send(nginx.port).await.unwrap();
    assert_eq!((through.status, through.code().as_str()), (503, "limit_store_unavailable"), "{}", through.head);
    assert_eq!(ask_upload(open.port, &fresh, "198.51.100.3").await.status, 200);

    // Redis back: the same gate recovers without a restart.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = ask_upload(a.port, &fresh, "198.51.100.3").await.status;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        assert!(Instant::now() < deadline, "the gate did not recover after Redis came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let through = upload().send(nginx.port).await.unwrap();
    assert_eq!(through.status, 201, "{}", through.head);
}

/// `server.rate_limit_store`: two issuers (two `keysmith serve` replicas) share one per-address
/// mint budget through one Redis instead of each allowing the whole budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_issuers_share_one_mint_budget_through_redis() {
    let mut redis = RedisServer::start();
    let config = format!(
        "version = 1\nissuer = \"{ISSUER}\"\n[server]\nrate_limit_per_minute = 6\nrate_limit_burst = 3\nrate_limit_store = \"{}\"\n[projects.demo]\n[[templates]]\nid = \"up\"\nproject = \"demo\"\npermissions = [\"FILE_UPLOAD\"]\n",
        redis.url()
    );
    let a = common::TestServer::start(&config).await;
    let b = common::TestServer::start(&config).await;
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for i in 0..6 {
        let server = if i % 2 == 0 { &a } else { &b };
        statuses.push(client.get(server.url("/demo/v1/key/up")).send().await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429]);
    // The store gone: refused, never a fresh local budget.
    redis.stop();
    let r = client.get(a.url("/demo/v1/key/up")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.text().await.unwrap().contains("limit_store_unavailable"));
}

/// The gate on `port`'s `/metrics`, and its samples.
async fn scrape(port: u16) -> (Reply, BTreeMap<String, f64>) {
    let reply = Request::get("/metrics").send(port).await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let parsed = samples(&reply.body);
    (reply, parsed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gate_metrics_parse_and_count_allowed_and_refused_decisions() {
    let first = issuer(&config(1, ""));
    let backend = start_backend(Documents::of(&first)).await;
    let gate = Gate::start(backend).await;
    let (reply, before) = scrape(gate.port).await;
    assert!(reply.header("content-type").unwrap().starts_with("application/openmetrics-text"), "{}", reply.head);
    for family in [
        "keysmith_gate_cache_entries{}",
        "keysmith_gate_limit_store_errors_total{}",
        "keysmith_gate_jwks_age_seconds{}",
        "keysmith_gate_revocation_list_age_seconds{}",
    ] {
        assert!(before.contains_key(family), "{family} missing: {before:?}");
    }
    assert!(before["keysmith_gate_jwks_age_seconds{}"] < 60.0, "{before:?}");
    let token = mint(&first, "demo", "up");
    assert_eq!(ask_upload(gate.port, &token, "10.1.2.3").await.status, 200);
    assert_eq!(ask_upload(gate.port, &token, "10.1.2.3").await.status, 200);
    assert_eq!(asking_about_upload("10.1.2.3").send(gate.port).await.unwrap().code(), "key_missing");
    // Hostile text in the request never becomes a label.
    let odd = authorize()
        .header("X-Forwarded-Method", "PUT")
        .header("X-Forwarded-Uri", "/nope\"}evil")
        .header("X-Forwarded-For", "10.1.2.3");
    assert_eq!(odd.send(gate.port).await.unwrap().status, 401);
    let (_, after) = scrape(gate.port).await;
    let moved = |key: &str| after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0);
    assert_eq!(moved(r#"keysmith_gate_decisions_total{code="allowed"}"#), 2.0, "{after:?}");
    // The first use of the token verified its signature; the second was a cache hit.
    assert_eq!(moved("keysmith_gate_cache_misses_total{}"), 1.0, "{after:?}");
    assert_eq!(moved("keysmith_gate_cache_hits_total{}"), 1.0, "{after:?}");
    assert_eq!(moved(r#"keysmith_gate_decisions_total{code="key_missing"}"#), 2.0, "{after:?}");
    assert_eq!(after["keysmith_gate_cache_entries{}"], 1.0, "{after:?}");
    assert!(after.keys().all(|k| !k.contains("evil")), "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gate_metrics_listen_moves_metrics_off_the_main_listener() {
    let first = issuer(&config(1, ""));
    let backend = start_backend(Documents::of(&first)).await;
    let metrics = free_port();
    let gate = GateConfig::new(backend).with(&format!("metrics_listen = \"127.0.0.1:{metrics}\"")).start().await;
    assert_eq!(Request::get("/metrics").send(gate.port).await.unwrap().status, 404);
    let deadline = Instant::now() + Duration::from_secs(10);
    let parsed = loop {
        match Request::get("/metrics").send(metrics).await {
            Ok(reply) if reply.status == 200 => break samples(&reply.body),
            _ => assert!(Instant::now() < deadline, "nothing serves /metrics on {metrics}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(parsed.contains_key("keysmith_gate_cache_entries{}"), "{parsed:?}");
    // The metrics listener is the same accept loop: its errors are problem documents too.
    let wrong = Request::new("POST", "/metrics").send(metrics).await.unwrap();
    assert_eq!(wrong.status, 405, "{}\n{}", wrong.head, wrong.body);
    assert_eq!(wrong.header("content-type").as_deref(), Some("application/problem+json"), "{}", wrong.head);
    assert_eq!(wrong.header("allow").as_deref(), Some("GET,HEAD"), "{}", wrong.head);
}

/// [`ask_upload`] from `10.1.2.3` with the client's `cookie` passed on.
async fn ask_upload_with(port: u16, token: &str, cookie: &str) -> Reply {
    asking_about_upload("10.1.2.3").bearer(token).header("Cookie", cookie).send(port).await.unwrap()
}

/// Forwarded requests are bigger than direct ones: Envoy asks with the original path in the
/// URI, nginx and Caddy pass on every header of the client (cookies). The gate takes a 12 KiB
/// URI and 48 KiB of headers, past the issuer's 4 KiB / 32 KiB, and still refuses beyond its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_takes_forwarded_uris_and_headers_larger_than_the_issuers() {
    let first = issuer(&config(1, ""));
    let backend = start_backend(Documents::of(&first)).await;
    let gate = Gate::start(backend).await;
    let token = mint(&first, "demo", "up");
    // As Envoy asks: `path_prefix` + the original path, and the description in the headers.
    let asking_at = |target: &str| {
        Request::new("GET", target)
            .header("X-Forwarded-Method", "PUT")
            .header("X-Forwarded-Uri", "/files/uploads/x.bin")
            .header("X-Forwarded-For", "10.1.2.3")
            .bearer(&token)
    };
    let long = format!("/v1/authorize/files/{}", "a".repeat(12 * 1024));
    let asked = asking_at(&long).send(gate.port).await.unwrap();
    assert_eq!(asked.status, 200, "{}\n{}", asked.head, asked.body);
    let cookie = "c".repeat(48 * 1024);
    let asked = ask_upload_with(gate.port, &token, &cookie).await;
    assert_eq!(asked.status, 200, "{}\n{}", asked.head, asked.body);
    let too_long = format!("/v1/authorize/files/{}", "a".repeat(17 * 1024));
    let refused = asking_at(&too_long).send(gate.port).await.unwrap();
    assert_eq!(refused.status, 414, "{}\n{}", refused.head, refused.body);
}

/// Another host, to a gate on `127.0.0.1`.
const OTHER_HOST: &str = "127.0.0.2";

/// Only `allowed_callers` (by default `trusted_proxies`) may ask `/v1/authorize`: another host
/// is refused with `caller_not_allowed` however valid its key and its description of the
/// request, and counted; `/healthz` and `/metrics` stay open to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_outside_allowed_callers_is_refused_whatever_it_sends() {
    let first = issuer(&config(1, ""));
    let backend = start_backend(Documents::of(&first)).await;
    let gate = Gate::start(backend).await;
    let token = mint(&first, "demo", "up");
    let forwarded = asking_about_upload("10.1.2.3").bearer(&token);
    let original = authorize()
        .bearer(&token)
        .header("X-Original-Method", "PUT")
        .header("X-Original-URI", "/files/uploads/x.bin")
        .header("X-Original-Content-Length", "5")
        .header("X-Forwarded-For", "10.1.2.3");
    let (_, before) = scrape(gate.port).await;

    for request in [&forwarded, &original] {
        let inside = request.clone().from("127.0.0.1").send(gate.port).await.unwrap();
        assert_eq!(inside.status, 200, "{}\n{}", inside.head, inside.body);
        let outside = request.clone().from(OTHER_HOST).send(gate.port).await.unwrap();
        assert_eq!((outside.status, outside.code().as_str()), (403, "caller_not_allowed"), "{}", outside.head);
        assert_eq!(outside.header("content-type").as_deref(), Some("application/problem+json"));
        assert!(outside.body.contains(r#""code":"caller_not_allowed""#), "{}", outside.body);
        assert!(outside.header("x-keysmith-subject").is_none(), "{}", outside.head);
    }
    assert_eq!(Request::get("/healthz").from(OTHER_HOST).send(gate.port).await.unwrap().status, 200);
    let metrics = Request::get("/metrics").from(OTHER_HOST).send(gate.port).await.unwrap();
    assert_eq!(metrics.status, 200);
    let after = samples(&metrics.body);
    let moved = |key: &str| after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0);
    assert_eq!(moved(r#"keysmith_gate_decisions_total{code="caller_not_allowed"}"#), 2.0, "{after:?}");
    assert_eq!(moved(r#"keysmith_gate_decisions_total{code="allowed"}"#), 2.0, "{after:?}");
    drop(gate);

    // Set, allowed_callers replaces the default; loopback is not added to it.
    let gate = GateConfig::new(backend).with(r#"allowed_callers = ["127.0.0.2/32"]"#).start().await;
    let inside = forwarded.clone().from(OTHER_HOST).send(gate.port).await.unwrap();
    assert_eq!(inside.status, 200, "{}\n{}", inside.head, inside.body);
    let outside = forwarded.from("127.0.0.1").send(gate.port).await.unwrap();
    assert_eq!((outside.status, outside.code().as_str()), (403, "caller_not_allowed"), "{}", outside.head);
}

/// `allowed_callers = ["0.0.0.0/0", "::/0"]` is the explicit opt-out: every peer may ask, and
/// the gate says so in its log at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_callers_everywhere_lets_any_peer_ask_and_warns_at_start() {
    let first = issuer(&config(1, ""));
    let backend = start_backend(Documents::of(&first)).await;
    let gate = GateConfig::new(backend).with(r#"allowed_callers = ["0.0.0.0/0", "::/0"]"#).start().await;
    let request = authorize()
        .bearer(&mint(&first, "demo", "up"))
        .header("X-Forwarded-Method", "PUT")
        .header("X-Forwarded-Uri", "/files/uploads/x");
    assert_eq!(request.from(OTHER_HOST).send(gate.port).await.unwrap().status, 200);
    let log = gate.log();
    assert!(log.contains("WARN") && log.contains("allowed_callers covers every address"), "{log}");
    drop(gate);

    // A wide `trusted_proxies` (a load balancer's whole range), the default `allowed_callers`:
    // warned about too; a narrow one is not.
    let wide = GateConfig::new(backend).trusted_proxies(r#"["127.0.0.0/8"]"#).start().await;
    let log = wide.log();
    assert!(log.contains("WARN") && log.contains("wider than /24"), "{log}");
    let narrow = GateConfig::new(backend).start().await;
    assert!(!narrow.log().contains("wider than /24"), "{}", narrow.log());
}

/// A gate nobody may ask does not start: `trusted_proxies = []` without `allowed_callers`
/// (the default), or an empty `allowed_callers`, is a config error naming both keys.
#[test]
fn the_gate_refuses_to_start_when_no_peer_may_ask() {
    for (trusted, callers) in [("[]", ""), ("[\"127.0.0.1/32\"]", "allowed_callers = []")] {
        let toml = GateConfig::new(9).trusted_proxies(trusted).with(callers).toml();
        let mut gate = Gate::launch(&toml);
        let Some(status) = gate.exited(Duration::from_secs(10)) else {
            panic!("the gate started with trusted_proxies = {trusted} and {callers:?}");
        };
        let stderr = gate.log();
        assert!(!status.success(), "{stderr}");
        assert!(stderr.contains("allowed_callers") && stderr.contains("trusted_proxies"), "{stderr}");
    }
}

/// A gate whose `jwks` is the file `jwks` (no revocation list).
async fn gate_with_jwks_file(jwks: &Path) -> Gate {
    let toml = GateConfig::new(9).jwks_only(&jwks.display().to_string()).toml();
    assert!(toml.contains(&jwks.display().to_string()) && !toml.contains("revocations"), "{toml}");
    Gate::launch(&toml).ready().await
}

/// Waits up to `seconds` for `ok`.
async fn eventually(what: &str, seconds: u64, ok: impl AsyncFn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !ok().await {
        assert!(Instant::now() < deadline, "{what}: not within {seconds} s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A directory laid out as Kubernetes mounts a ConfigMap: `jwks.json -> ..data/jwks.json`,
/// `..data -> ..<version>`; a new version is a new directory and an atomic swap of `..data`.
#[cfg(unix)]
struct ConfigMapVolume {
    dir: tempfile::TempDir,
    version: u32,
}

#[cfg(unix)]
impl ConfigMapVolume {
    fn new(jwks: &str) -> Self {
        let mut volume = Self { dir: tempfile::tempdir().unwrap(), version: 0 };
        volume.publish(jwks);
        std::os::unix::fs::symlink("..data/jwks.json", volume.dir.path().join("jwks.json")).unwrap();
        volume
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("jwks.json")
    }

    /// Writes `jwks` as a new version, swaps `..data` to it, and removes the old version.
    fn publish(&mut self, jwks: &str) {
        let dir = self.dir.path();
        self.version += 1;
        let version = format!("..v{}", self.version);
        std::fs::create_dir(dir.join(&version)).unwrap();
        std::fs::write(dir.join(&version).join("jwks.json"), jwks).unwrap();
        std::os::unix::fs::symlink(&version, dir.join("..data_tmp")).unwrap();
        std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
        if self.version > 1 {
            std::fs::remove_dir_all(dir.join(format!("..v{}", self.version - 1))).unwrap();
        }
    }
}

/// A JWKS file is re-read when it changes, here as a ConfigMap changes (its `..data` symlink
/// swapped): a token of the new key is allowed within a few seconds, and the old key, no
/// longer in the file, is refused.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_jwks_file_is_reloaded_through_the_configmap_symlink() {
    let (old, new) = (issuer(&config(1, "")), issuer_with_key(&config(1, ""), 8));
    let mut volume = ConfigMapVolume::new(&jwks_of(&old));
    let gate = gate_with_jwks_file(&volume.path()).await;
    let (old_token, new_token) = (mint(&old, "demo", "up"), mint(&new, "demo", "up"));
    let port = gate.port;
    assert_eq!(ask_upload(port, &old_token, "10.1.2.3").await.status, 200);
    assert_eq!(ask_upload(port, &new_token, "10.1.2.3").await.status, 401);

    volume.publish(&jwks_of(&new));
    eventually("the new key allowed", 5, async || ask_upload(port, &new_token, "10.1.2.3").await.status == 200).await;
    let refused = ask_upload(port, &old_token, "10.1.2.3").await;
    assert_eq!(refused.status, 401, "{}", refused.head);
    let (_, metrics) = scrape(port).await;
    assert_eq!(metrics["keysmith_gate_jwks_load_failures_total{}"], 0.0, "{metrics:?}");
    assert!(metrics["keysmith_gate_jwks_age_seconds{}"] <= 2.0, "{metrics:?}");
}

/// A JWKS file that does not parse keeps the last good keys; the failure is logged and counted
/// once for that version of the file, and the JWKS age keeps growing from the last good load.
/// A valid file again is loaded again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_jwks_file_keeps_the_last_good_keys_and_shows_in_metrics() {
    let (old, new) = (issuer(&config(1, "")), issuer_with_key(&config(1, ""), 8));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks_of(&old)).unwrap();
    let gate = gate_with_jwks_file(&path).await;
    let port = gate.port;
    let old_token = mint(&old, "demo", "up");
    assert_eq!(ask_upload(port, &old_token, "10.1.2.3").await.status, 200);
    let (_, before) = scrape(port).await;
    assert_eq!(before["keysmith_gate_jwks_load_failures_total{}"], 0.0, "{before:?}");

    // Rewritten in place (same inode), as an editor or `cp` would.
    std::fs::write(&path, "{\"keys\": [{\"kty\": \"garbage\"").unwrap();
    let failures = async || scrape(port).await.1["keysmith_gate_jwks_load_failures_total{}"];
    eventually("the failed load counted", 5, async || failures().await >= 1.0).await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let (_, after) = scrape(port).await;
    assert_eq!(after["keysmith_gate_jwks_load_failures_total{}"], 1.0, "one version, one failure: {after:?}");
    assert!(after["keysmith_gate_jwks_age_seconds{}"] >= 3.0, "{after:?}");
    assert_eq!(after["keysmith_gate_ready{}"], 1.0, "{after:?}");
    assert_eq!(ask_upload(port, &old_token, "10.1.2.3").await.status, 200);

    // A valid file again: loaded, the age back near zero, no further failure.
    let both = format!(
        "{{\"keys\": [{}, {}]}}",
        serde_json::to_value(old.keyring().jwks()).unwrap()["keys"][0],
        serde_json::to_value(new.keyring().jwks()).unwrap()["keys"][0]
    );
    std::fs::write(&path, both).unwrap();
    let new_token = mint(&new, "demo", "up");
    eventually("the repaired file loaded", 5, async || ask_upload(port, &new_token, "10.1.2.3").await.status == 200)
        .await;
    assert_eq!(ask_upload(port, &old_token, "10.1.2.3").await.status, 200);
    let (_, repaired) = scrape(port).await;
    assert_eq!(repaired["keysmith_gate_jwks_load_failures_total{}"], 1.0, "{repaired:?}");
    assert!(repaired["keysmith_gate_jwks_age_seconds{}"] <= 2.0, "{repaired:?}");
    let log = gate.log();
    assert_eq!(log.matches("JWKS file not loaded").count(), 1, "{log}");
    assert!(log.contains(&path.display().to_string()), "{log}");
}

/// The gate's listener caps connections per address, as the issuer's does: a host holding
/// many idle connections (here 127.0.0.2, not an allowed caller) gets no more than 64, while
/// the proxy that may ask (127.0.0.1) is exempt and keeps being served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_caps_connections_per_address_but_not_for_its_callers() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let first = issuer(&config(1, ""));
    let backend = start_backend(Documents::of(&first)).await;
    let gate = Gate::start(backend).await;
    let connect_from = |source: &'static str| async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        socket.connect(format!("127.0.0.1:{}", gate.port).parse().unwrap()).await.unwrap()
    };
    let mut held = Vec::new();
    for _ in 0..64 {
        held.push(connect_from(OTHER_HOST).await);
    }
    // The 65th from that address is closed at once: a read sees the end without a response.
    let mut extra = connect_from(OTHER_HOST).await;
    let _ = extra.write_all(b"GET /healthz HTTP/1.1\r\nHost: gate\r\n\r\n").await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), extra.read_to_end(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "the 65th connection from one address was served: {buf:?}");
    // The allowed caller, holding as many connections, is still served.
    let mut callers = Vec::new();
    for _ in 0..70 {
        callers.push(connect_from("127.0.0.1").await);
    }
    let token = mint(&first, "demo", "up");
    let asked = asking_about_upload("10.1.2.3").bearer(&token).from("127.0.0.1").send(gate.port).await.unwrap();
    assert_eq!(asked.status, 200, "{}\n{}", asked.head, asked.body);
    drop((held, callers));
}

/// The memory store's bound on new keys per source, set in `gate.toml`: once the store is more
/// than half full, a source that already started `max_keys_per_source` live keys gets `429
/// limit_keys_per_source` for a new one, while other sources and the keys it holds go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_cannot_fill_the_gates_memory_store() {
    let first = issuer(&config(1, ""));
    let backend = start_backend(Documents::of(&first)).await;
    let gate = GateConfig::new(backend).with_limits("max_entries = 4\nmax_keys_per_source = 1").start().await;
    // Keys with `limit_per_min`: one entry each, 1, 2, 3 of 4 (no pressure before the third).
    let key = || mint(&first, "demo", "burst");
    let held = key();
    for (token, client) in [(&held, "10.1.1.1"), (&key(), "10.2.2.2"), (&key(), "10.3.3.3")] {
        let reply = ask_upload(gate.port, token, client).await;
        assert_eq!(reply.status, 200, "{}\n{}", reply.head, reply.body);
    }
    let refused = ask_upload(gate.port, &key(), "10.1.1.1").await;
    assert_eq!((refused.status, refused.code().as_str()), (429, "limit_keys_per_source"), "{}", refused.head);
    assert_eq!(ask_upload(gate.port, &held, "10.1.1.1").await.status, 200, "a key it holds");
    assert_eq!(ask_upload(gate.port, &key(), "10.4.4.4").await.status, 200, "another source");
}
