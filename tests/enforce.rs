//! The in-process enforcement pieces (feature `http`) on a real loopback server: the tower
//! layer and the axum extractor decide from the request head, before the body is read, and
//! the upstream handler sees the enforcer's `X-Keysmith-*` headers, never the client's.

#![cfg(feature = "http")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::put;
use keysmith::enforce::{Authorized, EnforceLayer, Enforcer, RouteSpec, Routes};
use keysmith::issuer::Caller;
use keysmith::{Config, Issuer, Keyring, MintRequest, SigningKey};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const CONFIG: &str = r#"
version = 1
issuer = "https://keys.test"
[projects.demo]
[[templates]]
id = "up"
project = "demo"
permissions = ["FILE_UPLOAD"]
[templates.upload]
dir_scope = "/uploads/*"
limit_per_min = 2
[[templates]]
id = "sized"
project = "demo"
permissions = ["FILE_UPLOAD"]
[templates.upload]
dir_scope = "/uploads/*"
max_file_size = 4
content_types = ["image/png"]
"#;

fn setup() -> (String, Arc<Enforcer>) {
    let config = Config::from_toml(CONFIG, Path::new(".")).unwrap();
    let key = SigningKey::new(&ed25519_dalek::SigningKey::from_bytes(&[9; 32]));
    let issuer = Issuer::from_parts(config, Keyring::single(key), None);
    let token = issuer.mint("demo", "up", &MintRequest::default(), Caller::default(), SystemTime::now()).unwrap().token;
    let routes = Routes::new(&[RouteSpec {
        methods: vec!["PUT".into()],
        path: "/files/{*file}".into(),
        permission: "FILE_UPLOAD".into(),
        dir: Some("parent:file".into()),
        upload: true,
    }])
    .unwrap();
    let verifier = issuer.verifier("demo").cache_verified(100);
    (token, Arc::new(Enforcer::new(verifier, routes)))
}

async fn serve(app: Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await });
    port
}

/// Sends a request head announcing a body of `announced` bytes, then `body` (possibly less),
/// and reads the response; the socket stays open, so a server waiting for the body would time
/// out here instead of answering.
fn send(port: u16, target: &str, headers: &[(&str, &str)], announced: usize, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut head = format!("PUT {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {announced}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = [0u8; 4096];
    let n = stream.read(&mut raw).expect("no answer within 5 s: was the body awaited before deciding?");
    let text = String::from_utf8_lossy(&raw[..n]).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

async fn stored(headers: HeaderMap, body: Bytes) -> String {
    let subjects: Vec<_> =
        headers.get_all("x-keysmith-subject").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    format!("stored {} bytes for {}", body.len(), subjects.join(","))
}

async fn stored_by(who: Authorized, body: Bytes) -> String {
    format!("stored {} bytes for {}", body.len(), who.subject)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_and_the_extractor_decide_before_the_body_is_read() {
    let (token, enforcer) = setup();
    let auth = format!("Bearer {token}");
    let layered =
        serve(Router::new().route("/files/{*file}", put(stored)).layer(EnforceLayer::new(Arc::clone(&enforcer)))).await;
    let extracted =
        serve(Router::new().route("/files/{*file}", put(stored_by)).with_state(Arc::clone(&enforcer))).await;

    for port in [layered, extracted] {
        // Refused from the head alone: the announced megabyte never arrives.
        let (status, text) = send(port, "/files/uploads/a", &[], 1 << 20, b"");
        assert_eq!(status, 401, "{text}");
        assert!(text.contains("application/problem+json") && text.contains("key_missing"), "{text}");
        let (status, text) = send(port, "/files/uploads2/a", &[("Authorization", &auth)], 1 << 20, b"");
        assert_eq!(status, 403, "{text}");
        assert!(text.contains("outside_scope"), "{text}");
        // Allowed: the handler reads the body and sees the enforcer's subject only.
        let (status, text) =
            send(port, "/files/uploads/a", &[("Authorization", &auth), ("X-Keysmith-Subject", "admin")], 5, b"hello");
        assert_eq!(status, 200, "{text}");
        assert!(text.ends_with("stored 5 bytes for up"), "{text}");
    }
    // limit_per_min = 2 is shared by both routers (one enforcer, one memory store).
    let (status, text) = send(layered, "/files/uploads/a", &[("Authorization", &auth)], 0, b"");
    assert_eq!(status, 429, "{text}");
    assert!(text.to_ascii_lowercase().contains("retry-after:"), "{text}");
}

/// Upload routes decide with `Grant::authorize_upload`: the size and type limits of the key
/// against the request's `Content-Length` and `Content-Type` (`X-Original-Content-Length` first
/// when the request is a proxy's description of another). A missing, malformed or repeated
/// length is no length: 411 where the key limits size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_routes_enforce_the_size_and_type_limits() {
    let (_, enforcer) = setup();
    let config = Config::from_toml(CONFIG, Path::new(".")).unwrap();
    let key = SigningKey::new(&ed25519_dalek::SigningKey::from_bytes(&[9; 32]));
    let issuer = Issuer::from_parts(config, Keyring::single(key), None);
    let token =
        issuer.mint("demo", "sized", &MintRequest::default(), Caller::default(), SystemTime::now()).unwrap().token;
    let auth = format!("Bearer {token}");
    let decide = |extra: &[(&str, &str)]| {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", auth.parse().unwrap());
        for (k, v) in extra {
            headers.append(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        let enforcer = Arc::clone(&enforcer);
        async move {
            let method = axum::http::Method::PUT;
            let client = "127.0.0.1".parse().unwrap();
            enforcer.authorize(&method, "/files/uploads/a.png", &headers, client, SystemTime::now()).await
        }
    };
    let code =
        |r: Result<Authorized, keysmith::enforce::Refusal>| r.map(|_| 200).map_err(|e| (e.status().as_u16(), e.code()));
    let png = ("content-type", "image/png");
    assert_eq!(code(decide(&[("content-length", "4"), png]).await), Ok(200));
    assert_eq!(code(decide(&[("content-length", "3"), ("content-type", "image/PNG; charset=x")]).await), Ok(200));
    assert_eq!(code(decide(&[("content-length", "5"), png]).await), Err((413, "file_too_large")));
    assert_eq!(
        code(decide(&[("content-length", "4"), ("content-type", "text/plain")]).await),
        Err((415, "content_type_not_allowed"))
    );
    assert_eq!(code(decide(&[("content-length", "4")]).await), Err((415, "content_type_not_allowed")));
    assert_eq!(code(decide(&[png]).await), Err((411, "length_required")));
    for bad in [
        &[("content-length", "4"), ("content-length", "4")][..],
        &[("content-length", "+4")],
        &[("content-length", "x")],
    ] {
        let mut with_type = bad.to_vec();
        with_type.push(png);
        assert_eq!(code(decide(&with_type).await), Err((411, "length_required")), "{bad:?}");
    }
    // A proxy's subrequest has no body: the original length comes first.
    let proxied = [("content-length", "0"), ("x-original-content-length", "5"), png];
    assert_eq!(code(decide(&proxied).await), Err((413, "file_too_large")));
    let proxied = [("x-original-content-length", "4"), png];
    assert_eq!(code(decide(&proxied).await), Ok(200));
    let malformed = [("content-length", "4"), ("x-original-content-length", "four"), png];
    assert_eq!(code(decide(&malformed).await), Err((411, "length_required")));

    // In process the body follows the head: only its own Content-Length counts, and a client's
    // X-Original-Content-Length cannot shrink it.
    let layered =
        serve(Router::new().route("/files/{*file}", put(stored)).layer(EnforceLayer::new(Arc::clone(&enforcer)))).await;
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "image/png"), ("X-Original-Content-Length", "1")];
    let (status, text) = send(layered, "/files/uploads/a.png", &headers, 5, b"hello");
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("file_too_large"), "{text}");
    let (status, text) = send(layered, "/files/uploads/a.png", &headers[..2], 4, b"four");
    assert_eq!(status, 200, "{text}");
}

/// Behind a trusted proxy, an `X-Forwarded-For` value that is not text is refused, not skipped:
/// skipping it would let a client's own value stand in for the address the proxy appended.
#[test]
fn a_forwarded_for_value_that_is_not_text_is_refused_not_skipped() {
    use axum::http::HeaderValue;
    use keysmith::enforce::Refusal;
    let (_, enforcer) = setup();
    let proxy: std::net::IpAddr = "10.0.0.1".parse().unwrap();
    let enforcer =
        Arc::try_unwrap(enforcer).unwrap().trusted_proxies(keysmith::IpRules::parse(&["10.0.0.1/32"]).unwrap());
    let mut headers = HeaderMap::new();
    headers.append("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
    assert_eq!(enforcer.client_ip(proxy, &headers).unwrap(), "203.0.113.9".parse::<std::net::IpAddr>().unwrap());
    headers.append("x-forwarded-for", HeaderValue::from_bytes(b"198.51.100.7\xff").unwrap());
    assert!(matches!(enforcer.client_ip(proxy, &headers), Err(Refusal::ClientAddress)));
}
