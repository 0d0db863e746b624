//! The accept loop of `keysmith::server::serve_router` on a real loopback port, with a tiny
//! router: what the gate and the issuer both get from it (keep-alive for the exempt peers,
//! separate connection pools, problem documents that keep their headers).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests stop at the first failure

use axum::Router;
use axum::routing::get;
use keysmith::server::ConnectionLimits;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The proxy in these tests: the one exempt peer.
const PROXY: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

/// Serves a router with `GET /x` (and `GET /busy`, a plain-text `503`) on a free loopback port with `limits`, `127.0.0.1` exempt.
async fn serve(limits: ConnectionLimits) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = Router::new().route("/x", get(|| async { "ok" })).route(
        "/busy",
        get(|| async {
            (axum::http::StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "7"), ("x-note", "kept")], "busy\n")
        }),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(keysmith::server::serve_router(listener, app, limits, |ip| ip == IpAddr::V4(PROXY), async move {
        let _ = stopped.await;
    }));
    (address, stop)
}

/// A connection to `to` from the loopback address `from`.
async fn connect(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    socket.connect(to).await.unwrap()
}

/// Sends `request` on `stream` (kept alive) and reads one response with a `content-length`:
/// the head and the body, or `None` when the connection ends (or stalls) first.
async fn exchange(stream: &mut TcpStream, request: &str) -> Option<(String, String)> {
    if stream.write_all(request.as_bytes()).await.is_err() {
        return None;
    }
    let mut buf = Vec::new();
    let read = async {
        loop {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).into_owned();
            let Some((head, body)) = text.split_once("\r\n\r\n") else { continue };
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= length {
                return Some((head.to_owned(), body.to_owned()));
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read).await.ok().flatten()
}

const GET_X: &str = "GET /x HTTP/1.1\r\nHost: t\r\n\r\n";

/// Proxies pool their upstream connections for a minute or more: a connection of an exempt
/// peer stays usable after idling longer than the header read timeout, while any other peer's
/// idle connection and slow request head are still cut off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exempt_peer_keeps_its_idle_connection_others_are_cut_off() {
    let limits = ConnectionLimits { header_read_timeout: Duration::from_millis(300), ..ConnectionLimits::default() };
    let (address, _stop) = serve(limits).await;
    let mut proxy = connect(PROXY, address).await;
    let mut other = connect(Ipv4Addr::new(127, 0, 0, 2), address).await;
    let first = exchange(&mut proxy, GET_X).await.expect("the proxy's first request");
    assert!(first.0.starts_with("HTTP/1.1 200"), "{first:?}");
    let first = exchange(&mut other, GET_X).await.expect("the other peer's first request");
    assert!(first.0.starts_with("HTTP/1.1 200"), "{first:?}");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let again = exchange(&mut proxy, GET_X).await;
    assert!(
        again.as_ref().is_some_and(|(head, _)| head.starts_with("HTTP/1.1 200")),
        "idle proxy connection: {again:?}"
    );
    assert_eq!(exchange(&mut other, GET_X).await, None, "another peer's idle connection was kept past the timeout");
    // Slowloris from another peer: a head that never ends is cut off.
    let mut slow = connect(Ipv4Addr::new(127, 0, 0, 2), address).await;
    slow.write_all(b"GET /x HTTP/1.1\r\nHost: t\r\nX-Slow: ").await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(3), slow.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "a slow request head from another peer was not cut off");
}

/// Other peers draw from their own pool: filling it (from two addresses, under the
/// per-address cap) leaves the proxy served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_peers_cannot_take_the_proxies_connections() {
    let limits = ConnectionLimits {
        max_connections: 4,
        max_other_connections: 4,
        header_read_timeout: Duration::from_secs(10),
        ..ConnectionLimits::default()
    };
    let (address, _stop) = serve(limits).await;
    let mut held = Vec::new();
    for source in [Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3)] {
        for _ in 0..2 {
            let mut stream = connect(source, address).await;
            // Served, so the connection is surely accepted and holds its slot.
            assert!(exchange(&mut stream, GET_X).await.is_some());
            held.push(stream);
        }
    }
    let mut fifth = connect(Ipv4Addr::new(127, 0, 0, 3), address).await;
    assert_eq!(exchange(&mut fifth, GET_X).await, None, "the fifth connection of other peers was served");
    for _ in 0..4 {
        let mut proxy = connect(PROXY, address).await;
        let answer = exchange(&mut proxy, GET_X).await;
        assert!(answer.as_ref().is_some_and(|(head, _)| head.starts_with("HTTP/1.1 200")), "proxy: {answer:?}");
        held.push(proxy);
    }
    // The proxies' pool holds too.
    let mut over = connect(PROXY, address).await;
    assert_eq!(exchange(&mut over, GET_X).await, None, "the proxies' pool is not capped");
}

/// A bare error (a framework's `405`, a handler's plain-text `503`) becomes a problem
/// document and keeps its headers (`Allow`, `Retry-After`, the handler's own).
#[tokio::test]
async fn bare_errors_become_problems_and_keep_their_headers() {
    let (address, _stop) = serve(ConnectionLimits::default()).await;
    let mut stream = connect(Ipv4Addr::new(127, 0, 0, 2), address).await;
    let (head, body) =
        exchange(&mut stream, "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n").await.expect("an answer");
    assert!(head.starts_with("HTTP/1.1 405"), "{head}");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("content-type: application/problem+json"), "{head}");
    assert!(head.contains("\r\nallow: get,head"), "the Allow header was dropped: {head}");
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["code"], "method_not_allowed", "{body}");
    assert_eq!(head.matches("content-length:").count(), 1, "{head}");
    let (head, body) = exchange(&mut stream, "GET /busy HTTP/1.1\r\nHost: t\r\n\r\n").await.expect("an answer");
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("content-type: application/problem+json"), "{head}");
    assert!(head.contains("\r\nretry-after: 7"), "Retry-After was dropped: {head}");
    assert!(head.contains("\r\nx-note: kept"), "the handler's header was dropped: {head}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["code"], "unavailable", "{body}");
    assert_eq!(head.matches("content-length:").count(), 1, "{head}");
}
