//! Abuse and resource limits on the real server: per-address rate limiting, URI and header
//! size limits, slow clients, a connection cap.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

mod common;

use common::TestServer;
use keysmith::server::ConnectionLimits as Limits;
use reqwest::StatusCode;
use serde_json::Value;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
version = 1
issuer = "https://keys.test"
[server]
trusted_proxies = ["127.0.0.1"]
# One request back every 10 s: slow enough that a loaded test machine cannot refill a budget
# between two requests of this test.
rate_limit_per_minute = 6
rate_limit_burst = 3
[projects.demo]
[[templates]]
id = "widget"
project = "demo"
permissions = ["OBJECTS_LIST"]
"#;

async fn server(limits: Limits) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), CONFIG).unwrap();
    keysmith::keys::generate_key_file(&dir.path().join("keys"), chrono::Utc::now()).unwrap();
    TestServer::start_with(dir, limits).await
}

#[tokio::test]
async fn minting_is_rate_limited_per_source_address() {
    let server = server(Limits::default()).await;
    let client = reqwest::Client::new();
    let url = server.url("/demo/v1/key/widget");
    let from = |ip: &'static str| client.get(&url).header("x-forwarded-for", ip).send();
    for _ in 0..3 {
        assert_eq!(from("203.0.113.1").await.unwrap().status(), StatusCode::OK);
    }
    let limited = from("203.0.113.1").await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry), "a request returns every 10 s: {retry}");
    assert_eq!(limited.headers()["content-type"], "application/problem+json");
    assert_eq!(limited.json::<Value>().await.unwrap()["code"], "rate_limited");
    // Another address has its own budget; the JWKS and health are not limited.
    assert_eq!(from("203.0.113.2").await.unwrap().status(), StatusCode::OK);
    // IPv6 clients count per /64: rotating the interface id does not buy a new budget.
    for _ in 0..3 {
        assert_eq!(from("2001:db8:1:2::1").await.unwrap().status(), StatusCode::OK);
    }
    for host in ["2001:db8:1:2::2", "2001:db8:1:2:ffff::9"] {
        assert_eq!(from(host).await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS, "{host}");
    }
    assert_eq!(from("2001:db8:1:3::1").await.unwrap().status(), StatusCode::OK, "another /64");
    for _ in 0..10 {
        assert_eq!(client.get(server.url("/healthz")).send().await.unwrap().status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn oversized_uris_and_headers_are_refused_as_problems() {
    let limits = Limits { max_uri_bytes: 256, max_header_bytes: 8 * 1024, ..Limits::default() };
    let server = server(limits).await;
    let client = reqwest::Client::new();
    let long = client.get(server.url(&format!("/demo/v1/key/{}", "w".repeat(300)))).send().await.unwrap();
    assert_eq!(long.status(), StatusCode::URI_TOO_LONG);
    assert_eq!(long.json::<Value>().await.unwrap()["code"], "uri_too_long");
    let mut request = client.get(server.url("/healthz"));
    for i in 0..10 {
        request = request.header(format!("x-pad-{i}"), "p".repeat(1000));
    }
    let big = request.send().await.unwrap();
    assert_eq!(big.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(big.json::<Value>().await.unwrap()["code"], "headers_too_large");
}

/// Reads until the server closes the connection or `limit` passes; returns what was read and
/// whether the server closed it.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&out).into_owned(), true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            // A reset is the server closing a connection it did not read from.
            Err(e) => {
                let reset =
                    matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted);
                return (String::from_utf8_lossy(&out).into_owned(), reset);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_clients_are_cut_off() {
    let limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    // From 127.0.0.1, which this config does not trust: a trusted proxy has no header read
    // timeout (it keeps idle connections for its next requests).
    let server = server_behind_a_proxy(limits).await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        // Slowloris: headers that never end.
        let mut slow = TcpStream::connect(addr).unwrap();
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").unwrap();
        let start = Instant::now();
        let (_, closed) = read_until_closed(&mut slow, Duration::from_secs(5));
        assert!(closed, "the server closes a connection whose headers never end");
        assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());

        // A body that never arrives: the request times out with a problem document.
        let mut stalled = TcpStream::connect(addr).unwrap();
        stalled
            .write_all(b"POST /demo/v1/key/widget HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.7\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
            .unwrap();
        let (response, _) = read_until_closed(&mut stalled, Duration::from_secs(5));
        assert!(response.starts_with("HTTP/1.1 408"), "{response}");
        assert!(response.contains("application/problem+json") && response.contains("request_timeout"), "{response}");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_are_capped() {
    let limits = Limits {
        max_connections: 2,
        max_connections_per_address: 100,
        header_read_timeout: Duration::from_secs(5),
        ..Limits::default()
    };
    let server = server(limits).await;
    let addr = server.addr;
    let url = server.url("/healthz");
    tokio::task::spawn_blocking(move || {
        let held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
        std::thread::sleep(Duration::from_millis(200));
        let mut third = TcpStream::connect(addr).unwrap();
        third.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").ok();
        let (response, closed) = read_until_closed(&mut third, Duration::from_secs(3));
        assert!(closed && response.is_empty(), "over the cap a connection is closed unanswered: {response:?}");
        drop(held);
    })
    .await
    .unwrap();
    // Once the held connections are gone, service resumes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(reqwest::get(url).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_address_cannot_take_every_connection() {
    let limits =
        Limits { max_connections_per_address: 2, header_read_timeout: Duration::from_secs(5), ..Limits::default() };
    // Connecting from 127.0.0.1, which this config does not trust: trusted proxies are exempt.
    let server = server_behind_a_proxy(limits).await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
        std::thread::sleep(Duration::from_millis(200));
        let mut third = TcpStream::connect(addr).unwrap();
        third.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").ok();
        let (response, closed) = read_until_closed(&mut third, Duration::from_secs(3));
        assert!(closed && response.is_empty(), "a third connection from the same address is closed: {response:?}");
        drop(held);
        std::thread::sleep(Duration::from_millis(200));
        let mut again = TcpStream::connect(addr).unwrap();
        again.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let (response, _) = read_until_closed(&mut again, Duration::from_secs(3));
        assert!(response.starts_with("HTTP/1.1 200"), "slots are given back: {response}");
    })
    .await
    .unwrap();
}

/// Opens `n` connections to `addr` from the loopback address `from`, each sending the start of
/// a mint request whose headers do not end yet: slow clients behind a proxy.
async fn slow_requests(addr: std::net::SocketAddr, from: [u8; 4], n: usize) -> Vec<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt as _;
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(std::net::SocketAddr::from((from, 0))).unwrap();
        let mut stream = socket.connect(addr).await.unwrap();
        let start = format!(
            "GET /demo/v1/key/widget HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.{}.{}\r\n",
            i / 250,
            i % 250 + 1
        );
        stream.write_all(start.as_bytes()).await.unwrap();
        held.push(stream);
    }
    held
}

/// Ends a request begun by [`slow_requests`] and returns the status line, or `""` when the
/// server had closed the connection.
async fn finish(mut stream: tokio::net::TcpStream) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    if stream.write_all(b"Connection: close\r\n\r\n").await.is_err() {
        return String::new();
    }
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await;
    assert!(read.is_ok(), "no answer within 10 s");
    String::from_utf8_lossy(&response).lines().next().unwrap_or_default().to_owned()
}

const BEHIND_A_PROXY: &str = r#"
version = 1
issuer = "https://keys.test"
[server]
trusted_proxies = ["127.0.0.2"]
rate_limit_per_minute = 6
rate_limit_burst = 3
[projects.demo]
[[templates]]
id = "widget"
project = "demo"
permissions = ["OBJECTS_LIST"]
"#;

async fn server_behind_a_proxy(limits: Limits) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), BEHIND_A_PROXY).unwrap();
    keysmith::keys::generate_key_file(&dir.path().join("keys"), chrono::Utc::now()).unwrap();
    TestServer::start_with(dir, limits).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trusted_proxy_is_not_held_to_the_per_address_cap() {
    // The default per-address cap (64); 100 slow requests arrive through the trusted proxy.
    let limits = Limits { header_read_timeout: Duration::from_secs(20), ..Limits::default() };
    assert_eq!(limits.max_connections_per_address, 64);
    let server = server_behind_a_proxy(limits).await;
    let held = slow_requests(server.addr, [127, 0, 0, 2], 100).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Meanwhile another client is served.
    let other = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    // Every request through the proxy is answered; each resolved client has its own rate.
    let answers = futures_join_all(held.into_iter().map(finish)).await;
    let ok = answers.iter().filter(|line| line.starts_with("HTTP/1.1 200")).count();
    assert_eq!(ok, 100, "{answers:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trusted_proxy_still_counts_against_the_global_cap() {
    let limits = Limits { max_connections: 8, header_read_timeout: Duration::from_secs(20), ..Limits::default() };
    let server = server_behind_a_proxy(limits).await;
    let held = slow_requests(server.addr, [127, 0, 0, 2], 12).await;
    // Long enough for the server to accept (and close) all four over the cap before any held
    // request finishes and gives its slot back.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let answers = futures_join_all(held.into_iter().map(finish)).await;
    let ok = answers.iter().filter(|line| line.starts_with("HTTP/1.1 200")).count();
    assert_eq!(ok, 8, "the proxies' own pool is capped too: {answers:?}");
}

/// Runs futures concurrently on the runtime and collects their outputs in order.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let tasks: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}
