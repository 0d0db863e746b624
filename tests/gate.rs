//! `keysmith gate` behind a real reverse proxy: Debian's nginx (`auth_request`) in front of a
//! small upload backend, the gate binary as its forward-auth target, and a real
//! `redis-server` shared by two gates. Every part is started by the test on free loopback
//! ports; a missing tool fails the test with a message naming `scripts/test-deps.sh`.

#![cfg(feature = "gate")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

mod common;
#[path = "common/metrics.rs"]
mod metrics;
#[path = "common/redis.rs"]
mod redis_server;
use metrics::samples;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use keysmith::issuer::{Caller, NewApiKey};
use keysmith::{Config, Issuer, Keyring, MintRequest, SigningKey};
use redis_server::RedisServer;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

const ISSUER: &str = "https://keys.test";

fn config(version: u32, extra: &str) -> String {
    format!(
        r#"
version = {version}
issuer = "{ISSUER}"
revocations_max_age = 300
[projects.demo]
[projects.other]
[[templates]]
id = "up"
project = "demo"
permissions = ["FILE_UPLOAD", "OBJECTS_LIST"]
[templates.upload]
dir_scope = "/uploads/*"
[[templates]]
id = "burst"
project = "demo"
permissions = ["FILE_UPLOAD"]
[templates.upload]
dir_scope = "/uploads/*"
limit_per_min = 4
[[templates]]
id = "per_ip"
project = "demo"
permissions = ["FILE_UPLOAD"]
[templates.upload]
dir_scope = "/uploads/*"
limit_per_min = 100
limit_per_source_ip = 3
[[templates]]
id = "office"
project = "demo"
permissions = ["FILE_UPLOAD"]
[templates.upload]
dir_scope = "/uploads/*"
[templates.restrict]
whitelist_ip_ranges = ["10.0.0.0/8"]
[[templates]]
id = "elsewhere"
project = "other"
permissions = ["FILE_UPLOAD"]
{extra}
"#
    )
}

fn issuer(text: &str) -> Issuer {
    let config = Config::from_toml(text, Path::new(".")).unwrap();
    let key = SigningKey::new(&ed25519_dalek::SigningKey::from_bytes(&[7; 32]));
    Issuer::from_parts(config, Keyring::single(key), None)
}

fn mint(issuer: &Issuer, project: &str, template: &str) -> String {
    let caller = Caller::at("10.9.9.9".parse().unwrap());
    issuer.mint(project, template, &MintRequest::default(), caller, SystemTime::now()).unwrap().token
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port()
}

/// The documents the gate fetches (JWKS, revocation list), swappable by the test.
#[derive(Clone)]
struct Documents {
    jwks: Arc<Mutex<String>>,
    revocations: Arc<Mutex<String>>,
}

/// The upload backend and the issuer's documents, on one in-process server. The backend
/// answers `201` with the `X-Keysmith-Subject` values it received.
async fn start_backend(docs: Documents) -> u16 {
    async fn upload(headers: HeaderMap) -> (StatusCode, String) {
        let subjects: Vec<_> =
            headers.get_all("x-keysmith-subject").iter().map(|v| v.to_str().unwrap_or("?")).collect();
        (StatusCode::CREATED, format!("stored for subject={}", subjects.join(",")))
    }
    let app = Router::new()
        .route(
            "/.well-known/jwks.json",
            get(|State(d): State<Documents>| async move { d.jwks.lock().unwrap().clone() }),
        )
        .route(
            "/v1/revocations",
            get(|State(d): State<Documents>| async move { d.revocations.lock().unwrap().clone() }),
        )
        .fallback(upload)
        .with_state(docs);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// A `keysmith gate` process, killed on drop.
struct GateProcess {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl GateProcess {
    async fn start(backend: u16, store: &str, on_store_error: &str) -> Self {
        Self::start_with(backend, store, on_store_error, "").await
    }

    /// As [`GateProcess::start`], with `extra` top-level keys in `gate.toml`.
    async fn start_with(backend: u16, store: &str, on_store_error: &str, extra: &str) -> Self {
        Self::spawn(&gate_toml(backend, store, on_store_error, extra), Stdio::inherit()).await
    }

    /// A gate with this `gate.toml`, its log to `stderr`, once `/healthz` answers `200`.
    async fn spawn(toml: &str, stderr: Stdio) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let path = dir.path().join("gate.toml");
        std::fs::write(&path, toml).unwrap();
        let child = common::keysmith()
            .args(["gate", "--listen", &format!("127.0.0.1:{port}"), "--config"])
            .arg(&path)
            .env("KEYSMITH_LOG", "warn")
            .stdin(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut gate = Self { port, child, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if request(port, "GET", "/healthz", &[]).is_ok_and(|r| r.status == 200) {
                return gate;
            }
            if let Some(status) = gate.child.try_wait().unwrap() {
                panic!("the gate on port {port} exited: {status}");
            }
            assert!(Instant::now() < deadline, "the gate on port {port} did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the gate and returns what it logged (when started with `Stdio::piped()`).
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let mut log = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            stderr.read_to_string(&mut log).unwrap();
        }
        log
    }
}

/// The `gate.toml` of the tests: the backend's JWKS and revocation list, nginx's address
/// (`127.0.0.1`) as the trusted proxy, and `extra` top-level keys.
fn gate_toml(backend: u16, store: &str, on_store_error: &str, extra: &str) -> String {
    format!(
        r#"
issuer = "{ISSUER}"
audience = "demo"
jwks = "http://127.0.0.1:{backend}/.well-known/jwks.json"
revocations = "http://127.0.0.1:{backend}/v1/revocations"
trusted_proxies = ["127.0.0.1/32"]
refresh_seconds = 1
{extra}

[limits]
store = "{store}"
on_store_error = "{on_store_error}"

[[routes]]
methods = ["PUT", "POST"]
path = "/files/{{*file}}"
permission = "FILE_UPLOAD"
dir = "parent:file"
upload = true

[[routes]]
methods = ["GET"]
path = "/list/{{*dir}}"
permission = "OBJECTS_LIST"
dir = "capture:dir"
"#
    )
}

impl Drop for GateProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The nginx configuration the tests use, also shown in `docs/gate.md`: `auth_request` to the
/// gate, the gate's `X-Keysmith-*` headers to the upstream (replacing the client's), and the
/// statuses nginx does not pass from `auth_request` (411, 413, 415, 429, 503) mapped back with `error_page`.
fn nginx_conf(dir: &Path, port: u16, gate: u16, backend: u16) -> String {
    let dir = dir.display();
    format!(
        r#"
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream keysmith_gate {{ server 127.0.0.1:{gate}; }}
    upstream uploads {{ server 127.0.0.1:{backend}; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            auth_request /_keysmith;
            auth_request_set $ks_status $upstream_status;
            auth_request_set $ks_code $upstream_http_x_keysmith_code;
            auth_request_set $ks_retry $upstream_http_retry_after;
            auth_request_set $ks_www $upstream_http_www_authenticate;
            auth_request_set $ks_subject $upstream_http_x_keysmith_subject;
            auth_request_set $ks_jti $upstream_http_x_keysmith_jti;
            auth_request_set $ks_scope $upstream_http_x_keysmith_scope;
            auth_request_set $ks_project $upstream_http_x_keysmith_project;
            error_page 401 403 500 = @keysmith_refused;
            proxy_set_header X-Keysmith-Subject $ks_subject;
            proxy_set_header X-Keysmith-Jti $ks_jti;
            proxy_set_header X-Keysmith-Scope $ks_scope;
            proxy_set_header X-Keysmith-Project $ks_project;
            proxy_pass http://uploads;
        }}
        location = /_keysmith {{
            internal;
            proxy_pass http://keysmith_gate/v1/authorize;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-Content-Length $content_length;
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Forwarded-For $remote_addr;
        }}
        location @keysmith_refused {{
            default_type application/problem+json;
            add_header X-Keysmith-Code $ks_code always;
            add_header Retry-After $ks_retry always;
            add_header WWW-Authenticate $ks_www always;
            if ($ks_status = 401) {{ return 401 '{{"status":401,"code":"$ks_code"}}'; }}
            if ($ks_status = 403) {{ return 403 '{{"status":403,"code":"$ks_code"}}'; }}
            if ($ks_status = 411) {{ return 411 '{{"status":411,"code":"$ks_code"}}'; }}
            if ($ks_status = 413) {{ return 413 '{{"status":413,"code":"$ks_code"}}'; }}
            if ($ks_status = 415) {{ return 415 '{{"status":415,"code":"$ks_code"}}'; }}
            if ($ks_status = 429) {{ return 429 '{{"status":429,"code":"$ks_code"}}'; }}
            if ($ks_status = 503) {{ return 503 '{{"status":503,"code":"$ks_code"}}'; }}
            return 500 '{{"status":500,"code":"internal_error"}}';
        }}
    }}
}}
"#
    )
}

/// Debian's nginx on a free loopback port, killed on drop.
struct Nginx {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Nginx {
    async fn start(gate: u16, backend: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, nginx_conf(dir.path(), port, gate, backend)).unwrap();
        let binary = ["/usr/sbin/nginx", "nginx"].into_iter().find(|b| Path::new(b).exists()).unwrap_or("nginx");
        let child =
            match Command::new(binary).arg("-p").arg(dir.path()).arg("-c").arg(&conf).stdin(Stdio::null()).spawn() {
                Ok(child) => child,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    panic!("nginx is not installed: run scripts/test-deps.sh (installs Debian's nginx)")
                }
                Err(e) => panic!("cannot start nginx: {e}"),
            };
        let nginx = Self { port, child, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not listen on {port}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        nginx
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: the master then stops its workers (a killed master orphans them).
        let stopped = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        if !stopped.is_ok_and(|s| s.success()) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    fn code(&self) -> String {
        self.header("x-keysmith-code").unwrap_or_default()
    }
}

/// One HTTP/1.1 request over a raw socket, so the target is sent byte for byte (a URL library
/// would resolve `..` and `%2e%2e` before sending).
fn request(port: u16, method: &str, target: &str, headers: &[(&str, &str)]) -> std::io::Result<Reply> {
    request_with_body(port, method, target, headers, "hello")
}

/// As [`request`], with `body` (and its `Content-Length`).
fn request_with_body(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<Reply> {
    exchange(TcpStream::connect(("127.0.0.1", port))?, method, target, headers, body)
}

/// As [`request`], from the loopback address `source` (`127.0.0.2` is "another host" to a
/// gate on `127.0.0.1`).
async fn request_from(source: Ipv4Addr, port: u16, method: &str, target: &str, headers: &[(&str, &str)]) -> Reply {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((source, 0).into()).unwrap();
    let stream = socket.connect((Ipv4Addr::LOCALHOST, port).into()).await.unwrap();
    let stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    tokio::task::block_in_place(|| exchange(stream, method, target, headers, "hello")).unwrap()
}

/// One request on `stream`, and its reply.
fn exchange(
    mut stream: TcpStream,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<Reply> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let length = body.len();
    let mut text =
        format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {length}\r\n");
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    stream.write_all(text.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok(Reply { status, head: head.to_owned(), body: body.to_owned() })
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
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
    let docs = Documents {
        jwks: Arc::new(Mutex::new(serde_json::to_string(&first.keyring().jwks()).unwrap())),
        revocations: Arc::new(Mutex::new(issuer(&recorded).revocation_list(SystemTime::now()).unwrap().token)),
    };
    let backend = start_backend(docs.clone()).await;
    let gate = GateProcess::start(backend, "memory", "deny").await;
    let nginx = Nginx::start(gate.port, backend).await;
    let port = nginx.port;
    let up = mint(&first, "demo", "up");
    let auth = bearer(&up);

    // Inside the scope: passes, and the upstream sees the gate's subject, not the client's.
    let ok = request(port, "PUT", "/files/uploads/a.txt", &[("Authorization", &auth), ("X-Keysmith-Subject", "admin")])
        .unwrap();
    assert_eq!(ok.status, 201, "{}", ok.head);
    assert_eq!(ok.body, "stored for subject=up");
    let list = request(port, "GET", "/list/uploads", &[("Authorization", &auth)]).unwrap();
    assert_eq!(list.status, 201);

    let refused = |method: &'static str, target: &'static str, headers: Vec<(&'static str, String)>| {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        request(port, method, target, &headers).unwrap()
    };
    type Case = (&'static str, &'static str, Vec<(&'static str, String)>, u16, &'static str);
    let cases: Vec<Case> = vec![
        ("PUT", "/files/uploads2/a.txt", vec![("Authorization", auth.clone())], 403, "outside_scope"),
        ("PUT", "/files/uploads/../etc/a.txt", vec![("Authorization", auth.clone())], 403, "invalid_path"),
        ("PUT", "/files/uploads/%2e%2e/%2e%2e/etc/a.txt", vec![("Authorization", auth.clone())], 403, "invalid_path"),
        ("PUT", "/files/uploads/%252e%252e/a.txt", vec![("Authorization", auth.clone())], 403, "invalid_path"),
        ("DELETE", "/files/uploads/a.txt", vec![("Authorization", auth.clone())], 403, "no_route"),
        ("PUT", "/files/uploads/a.txt", vec![], 401, "key_missing"),
        ("PUT", "/files/uploads/a.txt", vec![("Authorization", bearer(&tamper(&up)))], 401, "bad_signature"),
        (
            "PUT",
            "/files/uploads/a.txt",
            vec![("Authorization", bearer(&mint(&first, "other", "elsewhere")))],
            401,
            "wrong_audience",
        ),
        (
            "PUT",
            "/files/uploads/a.txt",
            vec![("Authorization", bearer(&mint(&first, "demo", "office")))],
            403,
            "ip_not_allowed",
        ),
    ];
    for (method, target, headers, status, code) in cases {
        let r = refused(method, target, headers);
        assert_eq!((r.status, r.code().as_str()), (status, code), "{method} {target}: {}\n{}", r.head, r.body);
        assert!(r.body.contains(code), "{}", r.body);
        if status == 401 {
            let www = r.header("www-authenticate").unwrap_or_default();
            assert!(www.starts_with("Bearer"), "{www}");
            assert!(www.contains("error=\"invalid_token\""), "{www}");
        }
    }

    // Limits through nginx: 429 with Retry-After reaches the client.
    let burst = bearer(&mint(&first, "demo", "burst"));
    for _ in 0..4 {
        assert_eq!(request(port, "PUT", "/files/uploads/b.txt", &[("Authorization", &burst)]).unwrap().status, 201);
    }
    let limited = request(port, "PUT", "/files/uploads/b.txt", &[("Authorization", &burst)]).unwrap();
    assert_eq!((limited.status, limited.code().as_str()), (429, "limit_per_min"), "{}", limited.head);
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");

    // Revocations: a template and a permanent key, both working until the gate holds the list
    // that revokes them (fetched in the background, never per request).
    let doomed = bearer(&mint(&first, "demo", "up"));
    assert_eq!(request(port, "PUT", "/files/uploads/c.txt", &[("Authorization", &doomed)]).unwrap().status, 201);
    let key_header = [("X-Api-Key", api_key.secret.as_str())];
    assert_eq!(request(port, "PUT", "/files/uploads/c.txt", &key_header).unwrap().status, 201);
    let as_bearer = bearer(&api_key.secret);
    assert_eq!(request(port, "PUT", "/files/uploads/c.txt", &[("Authorization", &as_bearer)]).unwrap().status, 201);
    let revoking = config(
        2,
        &format!(
            "[[api_keys]]\nid = \"{}\"\npermissions = [\"FILE_UPLOAD\"]\nprojects = [\"demo\"]\nactive = false\n",
            api_key.id
        ),
    )
    .replacen("id = \"up\"\nproject = \"demo\"", "id = \"up\"\nproject = \"demo\"\nactive = false", 1);
    *docs.revocations.lock().unwrap() = issuer(&revoking).revocation_list(SystemTime::now()).unwrap().token;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = request(port, "PUT", "/files/uploads/c.txt", &[("Authorization", &doomed)]).unwrap();
        if r.status == 403 {
            assert_eq!(r.code(), "revoked");
            break;
        }
        assert_eq!(r.status, 201, "{}", r.head);
        assert!(Instant::now() < deadline, "the revoked template was still accepted after 15 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for headers in [&key_header[..], &[("Authorization", as_bearer.as_str())][..]] {
        let r = request(port, "PUT", "/files/uploads/c.txt", headers).unwrap();
        assert_eq!((r.status, r.code().as_str()), (403, "revoked"), "{}", r.head);
    }
}

/// `upload.max_file_size` and `upload.content_types` decided by the gate from the original
/// request's length and type: nginx's subrequest carries no body (its `Content-Length` is
/// cleared), so the length travels as `X-Original-Content-Length`; 413 and 415 reach the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_nginx_upload_size_and_type_limits_reach_the_client() {
    let sized = "[[templates]]\nid = \"sized\"\nproject = \"demo\"\npermissions = [\"FILE_UPLOAD\"]\n\
                 [templates.upload]\ndir_scope = \"/uploads/*\"\nmax_file_size = 10\ncontent_types = [\"image/png\"]\n";
    let first = issuer(&config(1, sized));
    let docs = Documents {
        jwks: Arc::new(Mutex::new(serde_json::to_string(&first.keyring().jwks()).unwrap())),
        revocations: Arc::new(Mutex::new(first.revocation_list(SystemTime::now()).unwrap().token)),
    };
    let backend = start_backend(docs).await;
    let gate = GateProcess::start(backend, "memory", "deny").await;
    let nginx = Nginx::start(gate.port, backend).await;
    let auth = bearer(&mint(&first, "demo", "sized"));
    let send = |content_type: &str, body: &str| {
        let headers = [("Authorization", auth.as_str()), ("Content-Type", content_type)];
        request_with_body(nginx.port, "PUT", "/files/uploads/a.png", &headers, body).unwrap()
    };

    let ok = send("image/png", "0123456789");
    assert_eq!(ok.status, 201, "{}\n{}", ok.head, ok.body);
    let ok = send("image/PNG; charset=x", "hello");
    assert_eq!(ok.status, 201, "{}\n{}", ok.head, ok.body);
    let large = send("image/png", "0123456789a");
    assert_eq!((large.status, large.code().as_str()), (413, "file_too_large"), "{}", large.head);
    assert!(large.body.contains("file_too_large"), "{}", large.body);
    let wrong = send("text/plain", "hello");
    assert_eq!((wrong.status, wrong.code().as_str()), (415, "content_type_not_allowed"), "{}", wrong.head);
    assert!(wrong.body.contains("content_type_not_allowed"), "{}", wrong.body);
    // Templates without upload limits are untouched by the length and type.
    let up = bearer(&mint(&first, "demo", "up"));
    let headers = [("Authorization", up.as_str()), ("Content-Type", "text/plain")];
    assert_eq!(
        request_with_body(nginx.port, "PUT", "/files/uploads/a.txt", &headers, "0123456789abc").unwrap().status,
        201
    );
}

fn tamper(token: &str) -> String {
    let (rest, sig) = token.rsplit_once('.').unwrap();
    let mut sig = common::unb64(sig);
    sig[0] ^= 1;
    format!("{rest}.{}", common::b64(sig))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gates_share_one_redis_budget_and_survive_a_redis_restart() {
    let mut redis = RedisServer::start();
    let first = issuer(&config(1, ""));
    let docs = Documents {
        jwks: Arc::new(Mutex::new(serde_json::to_string(&first.keyring().jwks()).unwrap())),
        revocations: Arc::new(Mutex::new(first.revocation_list(SystemTime::now()).unwrap().token)),
    };
    let backend = start_backend(docs).await;
    let a = GateProcess::start(backend, &redis.url(), "deny").await;
    let b = GateProcess::start(backend, &redis.url(), "deny").await;
    let open = GateProcess::start(backend, &redis.url(), "allow").await;
    let nginx = Nginx::start(a.port, backend).await;
    let ask = |port: u16, token: &str, from: &str| {
        let auth = bearer(token);
        let headers = [
            ("Authorization", auth.as_str()),
            ("X-Forwarded-Method", "PUT"),
            ("X-Forwarded-Uri", "/files/uploads/x.bin"),
            ("X-Forwarded-For", from),
        ];
        request(port, "GET", "/v1/authorize", &headers).unwrap()
    };

    // limit_per_min = 4, between both gates.
    let burst = mint(&first, "demo", "burst");
    let statuses: Vec<u16> =
        (0..8).map(|i| ask(if i % 2 == 0 { a.port } else { b.port }, &burst, "198.51.100.1").status).collect();
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429, 429, 429]);
    let r = ask(b.port, &burst, "198.51.100.1");
    assert_eq!(r.code(), "limit_per_min");
    assert!(r.header("retry-after").is_some());
    assert!(r.header("x-keysmith-subject").is_none());

    // limit_per_source_ip = 3 per address, between both gates.
    let per_ip = mint(&first, "demo", "per_ip");
    for from in ["198.51.100.1", "198.51.100.2"] {
        let statuses: Vec<u16> =
            (0..5).map(|i| ask(if i % 2 == 0 { a.port } else { b.port }, &per_ip, from).status).collect();
        assert_eq!(statuses, [200, 200, 200, 429, 429], "{from}");
        assert_eq!(ask(a.port, &per_ip, from).code(), "limit_per_source_ip");
    }

    // Redis stopped: `deny` answers 503 (through nginx too), `allow` lets the upload through.
    redis.stop();
    let fresh = mint(&first, "demo", "burst");
    let r = ask(a.port, &fresh, "198.51.100.3");
    assert_eq!((r.status, r.code().as_str()), (503, "limit_store_unavailable"), "{}", r.head);
    let auth = bearer(&fresh);
    let through = request(nginx.port, "PUT", "/files/uploads/x.bin", &[("Authorization", &auth)]).unwrap();
    assert_eq!((through.status, through.code().as_str()), (503, "limit_store_unavailable"), "{}", through.head);
    assert_eq!(ask(open.port, &fresh, "198.51.100.3").status, 200);

    // Redis back: the same gate recovers without a restart.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = ask(a.port, &fresh, "198.51.100.3").status;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        assert!(Instant::now() < deadline, "the gate did not recover after Redis came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let through = request(nginx.port, "PUT", "/files/uploads/x.bin", &[("Authorization", &auth)]).unwrap();
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

fn scrape(port: u16) -> (Reply, std::collections::BTreeMap<String, f64>) {
    let reply = request(port, "GET", "/metrics", &[]).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let parsed = samples(&reply.body);
    (reply, parsed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gate_metrics_parse_and_count_allowed_and_refused_decisions() {
    let first = issuer(&config(1, ""));
    let docs = Documents {
        jwks: Arc::new(Mutex::new(serde_json::to_string(&first.keyring().jwks()).unwrap())),
        revocations: Arc::new(Mutex::new(first.revocation_list(SystemTime::now()).unwrap().token)),
    };
    let backend = start_backend(docs).await;
    let gate = GateProcess::start(backend, "memory", "deny").await;
    let (reply, before) = scrape(gate.port);
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
    let auth = bearer(&token);
    let upload =
        [("X-Forwarded-Method", "PUT"), ("X-Forwarded-Uri", "/files/uploads/x.bin"), ("X-Forwarded-For", "10.1.2.3")];
    let with_key = [upload[0], upload[1], upload[2], ("Authorization", auth.as_str())];
    assert_eq!(request(gate.port, "GET", "/v1/authorize", &with_key).unwrap().status, 200);
    assert_eq!(request(gate.port, "GET", "/v1/authorize", &with_key).unwrap().status, 200);
    assert_eq!(request(gate.port, "GET", "/v1/authorize", &upload).unwrap().code(), "key_missing");
    // Hostile text in the request never becomes a label.
    let odd = [("X-Forwarded-Method", "PUT"), ("X-Forwarded-Uri", "/nope\"}evil"), ("X-Forwarded-For", "10.1.2.3")];
    assert_eq!(request(gate.port, "GET", "/v1/authorize", &odd).unwrap().status, 401);
    let (_, after) = scrape(gate.port);
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
    let docs = Documents {
        jwks: Arc::new(Mutex::new(serde_json::to_string(&first.keyring().jwks()).unwrap())),
        revocations: Arc::new(Mutex::new(first.revocation_list(SystemTime::now()).unwrap().token)),
    };
    let backend = start_backend(docs).await;
    let metrics = free_port();
    let gate =
        GateProcess::start_with(backend, "memory", "deny", &format!("metrics_listen = \"127.0.0.1:{metrics}\"")).await;
    assert_eq!(request(gate.port, "GET", "/metrics", &[]).unwrap().status, 404);
    let deadline = Instant::now() + Duration::from_secs(10);
    let parsed = loop {
        match request(metrics, "GET", "/metrics", &[]) {
            Ok(reply) if reply.status == 200 => break samples(&reply.body),
            _ => assert!(Instant::now() < deadline, "nothing serves /metrics on {metrics}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(parsed.contains_key("keysmith_gate_cache_entries{}"), "{parsed:?}");
}

/// The documents of [`config`]`(1, "")`'s issuer, served by a backend.
async fn backend_for(issuer: &Issuer) -> u16 {
    let docs = Documents {
        jwks: Arc::new(Mutex::new(serde_json::to_string(&issuer.keyring().jwks()).unwrap())),
        revocations: Arc::new(Mutex::new(issuer.revocation_list(SystemTime::now()).unwrap().token)),
    };
    start_backend(docs).await
}

const OTHER_HOST: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// Only `allowed_callers` (by default `trusted_proxies`) may ask `/v1/authorize`: another host
/// is refused with `caller_not_allowed` however valid its key and its description of the
/// request, and counted; `/healthz` and `/metrics` stay open to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_outside_allowed_callers_is_refused_whatever_it_sends() {
    let first = issuer(&config(1, ""));
    let backend = backend_for(&first).await;
    let gate = GateProcess::start(backend, "memory", "deny").await;
    let auth = bearer(&mint(&first, "demo", "up"));
    let forwarded = [
        ("Authorization", auth.as_str()),
        ("X-Forwarded-Method", "PUT"),
        ("X-Forwarded-Uri", "/files/uploads/x.bin"),
        ("X-Forwarded-For", "10.1.2.3"),
    ];
    let original = [
        ("Authorization", auth.as_str()),
        ("X-Original-Method", "PUT"),
        ("X-Original-URI", "/files/uploads/x.bin"),
        ("X-Original-Content-Length", "5"),
        ("X-Forwarded-For", "10.1.2.3"),
    ];
    let (_, before) = scrape(gate.port);

    for headers in [&forwarded[..], &original[..]] {
        let inside = request_from(Ipv4Addr::LOCALHOST, gate.port, "GET", "/v1/authorize", headers).await;
        assert_eq!(inside.status, 200, "{}\n{}", inside.head, inside.body);
        let outside = request_from(OTHER_HOST, gate.port, "GET", "/v1/authorize", headers).await;
        assert_eq!((outside.status, outside.code().as_str()), (403, "caller_not_allowed"), "{}", outside.head);
        assert_eq!(outside.header("content-type").as_deref(), Some("application/problem+json"));
        assert!(outside.body.contains(r#""code":"caller_not_allowed""#), "{}", outside.body);
        assert!(outside.header("x-keysmith-subject").is_none(), "{}", outside.head);
    }
    assert_eq!(request_from(OTHER_HOST, gate.port, "GET", "/healthz", &[]).await.status, 200);
    let metrics = request_from(OTHER_HOST, gate.port, "GET", "/metrics", &[]).await;
    assert_eq!(metrics.status, 200);
    let after = samples(&metrics.body);
    let moved = |key: &str| after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0);
    assert_eq!(moved(r#"keysmith_gate_decisions_total{code="caller_not_allowed"}"#), 2.0, "{after:?}");
    assert_eq!(moved(r#"keysmith_gate_decisions_total{code="allowed"}"#), 2.0, "{after:?}");
    drop(gate);

    // Set, allowed_callers replaces the default; loopback is not added to it.
    let gate = GateProcess::start_with(backend, "memory", "deny", r#"allowed_callers = ["127.0.0.2/32"]"#).await;
    let inside = request_from(OTHER_HOST, gate.port, "GET", "/v1/authorize", &forwarded).await;
    assert_eq!(inside.status, 200, "{}\n{}", inside.head, inside.body);
    let outside = request_from(Ipv4Addr::LOCALHOST, gate.port, "GET", "/v1/authorize", &forwarded).await;
    assert_eq!((outside.status, outside.code().as_str()), (403, "caller_not_allowed"), "{}", outside.head);
}

/// `allowed_callers = ["0.0.0.0/0", "::/0"]` is the explicit opt-out: every peer may ask, and
/// the gate says so in its log at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_callers_everywhere_lets_any_peer_ask_and_warns_at_start() {
    let first = issuer(&config(1, ""));
    let backend = backend_for(&first).await;
    let toml = gate_toml(backend, "memory", "deny", r#"allowed_callers = ["0.0.0.0/0", "::/0"]"#);
    let gate = GateProcess::spawn(&toml, Stdio::piped()).await;
    let auth = bearer(&mint(&first, "demo", "up"));
    let headers =
        [("Authorization", auth.as_str()), ("X-Forwarded-Method", "PUT"), ("X-Forwarded-Uri", "/files/uploads/x")];
    assert_eq!(request_from(OTHER_HOST, gate.port, "GET", "/v1/authorize", &headers).await.status, 200);
    let log = gate.stop();
    assert!(log.contains("WARN") && log.contains("allowed_callers covers every address"), "{log}");
}

/// A gate nobody may ask does not start: `trusted_proxies = []` without `allowed_callers`
/// (the default), or an empty `allowed_callers`, is a config error naming both keys.
#[test]
fn the_gate_refuses_to_start_when_no_peer_may_ask() {
    for (trusted, callers) in [("[]", ""), ("[\"127.0.0.1/32\"]", "allowed_callers = []")] {
        let toml = gate_toml(9, "memory", "deny", callers)
            .replace(r#"trusted_proxies = ["127.0.0.1/32"]"#, &format!("trusted_proxies = {trusted}"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gate.toml");
        std::fs::write(&path, toml).unwrap();
        let mut child = common::keysmith()
            .args(["gate", "--listen", &format!("127.0.0.1:{}", free_port()), "--config"])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the gate started with trusted_proxies = {trusted} and {callers:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        assert!(!status.success(), "{stderr}");
        assert!(stderr.contains("allowed_callers") && stderr.contains("trusted_proxies"), "{stderr}");
    }
}

/// An issuer signing with the key of `seed` (the tests' usual one is 7).
fn issuer_with_key(text: &str, seed: u8) -> Issuer {
    let config = Config::from_toml(text, Path::new(".")).unwrap();
    let key = SigningKey::new(&ed25519_dalek::SigningKey::from_bytes(&[seed; 32]));
    Issuer::from_parts(config, Keyring::single(key), None)
}

fn jwks_of(issuer: &Issuer) -> String {
    serde_json::to_string(&issuer.keyring().jwks()).unwrap()
}

/// A gate whose `jwks` is the file `jwks` (no revocation list), its log captured.
async fn gate_with_jwks_file(jwks: &Path) -> GateProcess {
    let toml = gate_toml(9, "memory", "deny", "")
        .replace(
            "jwks = \"http://127.0.0.1:9/.well-known/jwks.json\"",
            &format!("jwks = {:?}", jwks.display().to_string()),
        )
        .replace("revocations = \"http://127.0.0.1:9/v1/revocations\"\n", "");
    assert!(toml.contains(&jwks.display().to_string()) && !toml.contains("revocations"), "{toml}");
    GateProcess::spawn(&toml, Stdio::piped()).await
}

/// `/v1/authorize` for an upload with `token`, as nginx asks it.
fn ask_upload(port: u16, token: &str) -> Reply {
    let auth = bearer(token);
    let headers = [
        ("Authorization", auth.as_str()),
        ("X-Forwarded-Method", "PUT"),
        ("X-Forwarded-Uri", "/files/uploads/x.bin"),
        ("X-Forwarded-For", "10.1.2.3"),
    ];
    request(port, "GET", "/v1/authorize", &headers).unwrap()
}

/// Waits up to `seconds` for `ok`.
async fn eventually(what: &str, seconds: u64, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !ok() {
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
    assert_eq!(ask_upload(gate.port, &old_token).status, 200);
    assert_eq!(ask_upload(gate.port, &new_token).status, 401);

    volume.publish(&jwks_of(&new));
    let port = gate.port;
    eventually("the new key allowed", 5, || ask_upload(port, &new_token).status == 200).await;
    let refused = ask_upload(gate.port, &old_token);
    assert_eq!(refused.status, 401, "{}", refused.head);
    let (_, metrics) = scrape(gate.port);
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
    let old_token = mint(&old, "demo", "up");
    assert_eq!(ask_upload(gate.port, &old_token).status, 200);
    let (_, before) = scrape(gate.port);
    assert_eq!(before["keysmith_gate_jwks_load_failures_total{}"], 0.0, "{before:?}");

    // Rewritten in place (same inode), as an editor or `cp` would.
    std::fs::write(&path, "{\"keys\": [{\"kty\": \"garbage\"").unwrap();
    let port = gate.port;
    let failures = move || scrape(port).1["keysmith_gate_jwks_load_failures_total{}"];
    eventually("the failed load counted", 5, || failures() >= 1.0).await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let (_, after) = scrape(gate.port);
    assert_eq!(after["keysmith_gate_jwks_load_failures_total{}"], 1.0, "one version, one failure: {after:?}");
    assert!(after["keysmith_gate_jwks_age_seconds{}"] >= 3.0, "{after:?}");
    assert_eq!(after["keysmith_gate_ready{}"], 1.0, "{after:?}");
    assert_eq!(ask_upload(gate.port, &old_token).status, 200);

    // A valid file again: loaded, the age back near zero, no further failure.
    let both = format!(
        "{{\"keys\": [{}, {}]}}",
        serde_json::to_value(old.keyring().jwks()).unwrap()["keys"][0],
        serde_json::to_value(new.keyring().jwks()).unwrap()["keys"][0]
    );
    std::fs::write(&path, both).unwrap();
    let new_token = mint(&new, "demo", "up");
    eventually("the repaired file loaded", 5, || ask_upload(port, &new_token).status == 200).await;
    assert_eq!(ask_upload(gate.port, &old_token).status, 200);
    let (_, repaired) = scrape(gate.port);
    assert_eq!(repaired["keysmith_gate_jwks_load_failures_total{}"], 1.0, "{repaired:?}");
    assert!(repaired["keysmith_gate_jwks_age_seconds{}"] <= 2.0, "{repaired:?}");
    let log = gate.stop();
    assert_eq!(log.matches("JWKS file not loaded").count(), 1, "{log}");
    assert!(log.contains(&path.display().to_string()), "{log}");
}
