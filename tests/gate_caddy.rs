//! `keysmith gate` behind Debian's Caddy (`forward_auth`), with the Caddyfile taken from
//! `docs/gate.md` (only its addresses replaced), so the documented configuration is the tested
//! one. Every part is real and on free loopback ports: Caddy, the gate binary and an upload
//! backend that reports the `X-Keysmith-*` headers and the body it received. Every case is
//! asserted from the client's side of Caddy. A missing Caddy fails the test with a message
//! naming `scripts/test-deps.sh`.

#![cfg(feature = "gate")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

mod common;
#[path = "common/gate.rs"]
mod gate_parts;

use gate_parts::{Documents, Gate, ISSUER, Reply, Request, doc_block, free_port, gate_doc, issuer, mint, substitute};
use keysmith::Issuer;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn config() -> String {
    format!(
        r#"
version = 1
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
limit_per_min = 2
[[templates]]
id = "per_ip"
project = "demo"
permissions = ["FILE_UPLOAD"]
[templates.upload]
dir_scope = "/uploads/*"
limit_per_min = 100
limit_per_source_ip = 1
[[templates]]
id = "office"
project = "demo"
permissions = ["FILE_UPLOAD"]
[templates.upload]
dir_scope = "/uploads/*"
[templates.restrict]
whitelist_ip_ranges = ["10.0.0.0/8"]
[[templates]]
id = "near"
project = "demo"
permissions = ["FILE_UPLOAD"]
[templates.upload]
dir_scope = "/uploads/*"
[templates.restrict]
whitelist_ip_ranges = ["127.0.0.2/32"]
[[templates]]
id = "sized"
project = "demo"
permissions = ["FILE_UPLOAD"]
[templates.upload]
dir_scope = "/uploads/*"
max_file_size = 10
content_types = ["image/png"]
[[templates]]
id = "elsewhere"
project = "other"
permissions = ["FILE_UPLOAD"]
"#
    )
}

/// Debian's Caddy on a free loopback port, killed on drop. Its Caddyfile is the one in
/// `docs/gate.md`, with the site address and the two upstream addresses replaced, after global
/// options that keep the test to itself: no admin endpoint, no HTTPS, loopback only, and its
/// storage (and the config autosave that Caddy 2.6 cannot turn off) in a temporary directory.
struct Caddy {
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Caddy {
    async fn start(gate: u16, backend: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let site = doc_block(&gate_doc(), "## Caddy", "caddyfile");
        let site = substitute(&site, "uploads.example.com", &format!("http://127.0.0.1:{port}"));
        let site = substitute(&site, "127.0.0.1:9090", &format!("127.0.0.1:{gate}"));
        let site = substitute(&site, "127.0.0.1:3000", &format!("127.0.0.1:{backend}"));
        let storage = dir.path().join("storage");
        let caddyfile = format!(
            "{{\n    admin off\n    auto_https off\n    default_bind 127.0.0.1\n    storage file_system {{\n        root {}\n    }}\n}}\n\n{site}",
            storage.display()
        );
        let path = dir.path().join("Caddyfile");
        std::fs::write(&path, &caddyfile).unwrap();
        let log = std::fs::File::create(dir.path().join("caddy.log")).unwrap();
        let binary = ["/usr/bin/caddy"].into_iter().find(|b| Path::new(b).exists()).unwrap_or("caddy");
        let spawned = Command::new(binary)
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&path)
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!("caddy is not installed: run scripts/test-deps.sh (installs Debian's caddy)")
            }
            Err(e) => panic!("cannot start caddy: {e}"),
        };
        let mut caddy = Self { port, child, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            let exited = caddy.child.try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "caddy did not listen on {port} ({exited:?}):\n{}\n--- Caddyfile:\n{caddyfile}",
                caddy.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        caddy
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("caddy.log")).unwrap_or_default()
    }

    async fn send(&self, request: Request) -> Reply {
        request.send(self.port).await.unwrap()
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The issuer, the backend, the gate and Caddy in front of them.
struct Stack {
    issuer: Issuer,
    caddy: Caddy,
    _gate: Gate,
}

impl Stack {
    async fn start() -> Self {
        let issuer = issuer(&config());
        let backend = gate_parts::start_backend(Documents::of(&issuer)).await;
        let gate = Gate::start(backend).await;
        let caddy = Caddy::start(gate.port, backend).await;
        Self { issuer, caddy, _gate: gate }
    }

    fn key(&self, template: &str) -> String {
        mint(&self.issuer, "demo", template)
    }

    async fn send(&self, request: Request) -> Reply {
        self.caddy.send(request).await
    }
}

/// A refusal as the client sees it: the gate's status, `application/problem+json` with the
/// code in the body and in `X-Keysmith-Code`; every 401 with `WWW-Authenticate: Bearer`.
#[track_caller]
fn assert_refused(reply: &Reply, status: u16, code: &str) {
    let seen = (reply.status, reply.code());
    assert_eq!((seen.0, seen.1.as_str()), (status, code), "{}\n\n{}", reply.head, reply.body);
    assert_eq!(reply.header("content-type").as_deref(), Some("application/problem+json"), "{}", reply.head);
    assert!(reply.body.contains(&format!("\"code\":\"{code}\"")), "{}", reply.body);
    if status == 401 {
        let www = reply.header("www-authenticate").unwrap_or_default();
        assert!(www.starts_with("Bearer") && www.contains("error=\"invalid_token\""), "{}", reply.head);
    }
    assert!(!reply.body.contains("body-bytes"), "a refused request reached the backend: {}", reply.body);
}

/// The backend's report: the `X-Keysmith-*` lines and the body length it received.
fn backend_saw(reply: &Reply) -> Vec<&str> {
    reply.body.lines().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_caddy_an_allowed_upload_reaches_the_backend_with_only_the_gates_headers() {
    let stack = Stack::start().await;
    let minted = gate_parts::minted(&stack.issuer, "demo", "up");
    let (key, jti) = (minted.token, minted.jti);
    let body = vec![b'x'; 256 * 1024];
    let forged = Request::new("PUT", "/files/uploads/a.bin")
        .bearer(&key)
        .header("X-Keysmith-Subject", "admin")
        .header("x-keysmith-scope", "FILE_UPLOAD OBJECTS_LIST ADMIN")
        .header("X-Keysmith-Jti", "forged")
        .header("X-Keysmith-Project", "other")
        .header("X-Keysmith-Project", "other")
        .header("X-Keysmith-Admin", "true")
        .body(body.clone());
    let ok = stack.send(forged).await;
    assert_eq!(ok.status, 201, "{}\n{}", ok.head, ok.body);
    assert_eq!(
        backend_saw(&ok),
        [
            "x-keysmith-jti: ".to_owned() + &jti,
            "x-keysmith-project: demo".to_owned(),
            "x-keysmith-scope: FILE_UPLOAD OBJECTS_LIST".to_owned(),
            "x-keysmith-subject: up".to_owned(),
            format!("body-bytes: {}", body.len()),
        ],
        "the backend must see the gate's four headers, none of the client's, and the whole body"
    );

    // Chunked, and a listing (GET, no body): both pass with the gate's headers.
    let chunked =
        stack.send(Request::new("POST", "/files/uploads/b.bin").bearer(&key).chunked().body(body.clone())).await;
    assert_eq!(chunked.status, 201, "{}\n{}", chunked.head, chunked.body);
    assert!(chunked.body.contains(&format!("body-bytes: {}", body.len())), "{}", chunked.body);
    let list = stack.send(Request::get("/list/uploads").bearer(&key).header("X-Keysmith-Subject", "admin")).await;
    assert_eq!(list.status, 201, "{}\n{}", list.head, list.body);
    assert!(list.body.contains("x-keysmith-subject: up\n") && !list.body.contains("admin"), "{}", list.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_caddy_every_refusal_reaches_the_client_with_the_gates_status_and_problem() {
    let stack = Stack::start().await;
    let up = stack.key("up");
    let tampered = {
        let (rest, sig) = up.rsplit_once('.').unwrap();
        let mut sig = common::unb64(sig);
        sig[0] ^= 1;
        format!("{rest}.{}", common::b64(sig))
    };
    let sized = stack.key("sized");
    let put = |target: &str| Request::new("PUT", target);
    let cases = [
        (put("/files/uploads/a.txt"), 401, "key_missing"),
        (put("/files/uploads/a.txt").header("Authorization", "Basic dXNlcjpwYXNz"), 401, "key_malformed"),
        (put("/files/uploads/a.txt").bearer(&tampered), 401, "bad_signature"),
        (put("/files/uploads/a.txt").bearer(&mint(&stack.issuer, "other", "elsewhere")), 401, "wrong_audience"),
        (put("/files/uploads2/a.txt").bearer(&up), 403, "outside_scope"),
        (put("/files/uploads/../secret/a.txt").bearer(&up), 403, "invalid_path"),
        (put("/files/uploads/%2e%2e/secret/a.txt").bearer(&up), 403, "invalid_path"),
        (Request::new("DELETE", "/files/uploads/a.txt").bearer(&up), 403, "no_route"),
        (put("/files/uploads/a.txt").bearer(&stack.key("office")), 403, "ip_not_allowed"),
        (
            put("/files/uploads/a.png").bearer(&sized).header("Content-Type", "image/png").body("0123456789a"),
            413,
            "file_too_large",
        ),
        (
            put("/files/uploads/a.png").bearer(&sized).header("Content-Type", "text/plain"),
            415,
            "content_type_not_allowed",
        ),
        (
            put("/files/uploads/a.png").bearer(&sized).header("Content-Type", "image/png").chunked(),
            411,
            "length_required",
        ),
    ];
    for (request, status, code) in cases {
        let reply = stack.send(request.clone()).await;
        assert!(reply.status == status, "{request:?}\n{}\n{}", reply.head, reply.body);
        assert_refused(&reply, status, code);
    }
    // Just inside the limits: passes.
    let fits = stack
        .send(put("/files/uploads/a.png").bearer(&sized).header("Content-Type", "image/png").body("0123456789"))
        .await;
    assert_eq!(fits.status, 201, "{}\n{}", fits.head, fits.body);

    // limit_per_min = 2: the third upload gets 429 with the gate's Retry-After.
    let burst = stack.key("burst");
    for _ in 0..2 {
        assert_eq!(stack.send(put("/files/uploads/b.txt").bearer(&burst)).await.status, 201);
    }
    let limited = stack.send(put("/files/uploads/b.txt").bearer(&burst)).await;
    assert_refused(&limited, 429, "limit_per_min");
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
}

/// Caddy sets `X-Forwarded-Method`, `X-Forwarded-Uri` and (with the documented `header_up`)
/// `X-Original-Content-Length` itself: a client's own copies never reach the gate's decision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_caddy_client_sent_forwarding_headers_cannot_change_the_decision() {
    let stack = Stack::start().await;
    let up = stack.key("up");
    let sized = stack.key("sized");
    let png = |request: Request| request.bearer(&sized).header("Content-Type", "image/png");

    // A size understated by the client: the real Content-Length decides.
    let understated = png(Request::new("PUT", "/files/uploads/a.png")).header("X-Original-Content-Length", "5");
    assert_refused(&stack.send(understated.clone().body("0123456789a")).await, 413, "file_too_large");
    let twice = understated.clone().header("X-Original-Content-Length", "5").body("0123456789a");
    assert_refused(&stack.send(twice).await, 413, "file_too_large");
    // No Content-Length at all (chunked): no length, whatever the client claims.
    assert_refused(&stack.send(understated.clone().chunked().body("0123456789a")).await, 411, "length_required");
    assert_refused(&stack.send(understated.chunked().body("0123")).await, 411, "length_required");

    // Another path or method claimed by the client: the real request decides.
    for (name, value) in [("X-Forwarded-Uri", "/files/uploads/a.txt"), ("X-Original-URI", "/files/uploads/a.txt")] {
        let reply = stack.send(Request::new("PUT", "/files/secret/a.txt").bearer(&up).header(name, value)).await;
        assert_refused(&reply, 403, "outside_scope");
    }
    let both = Request::new("PUT", "/files/secret/a.txt")
        .bearer(&up)
        .header("X-Original-Method", "PUT")
        .header("X-Original-URI", "/files/uploads/a.txt")
        .header("X-Forwarded-Uri", "/files/uploads/a.txt")
        .header("X-Forwarded-Uri", "/files/uploads/b.txt");
    assert_refused(&stack.send(both).await, 403, "outside_scope");
    for name in ["X-Forwarded-Method", "X-Original-Method"] {
        let reply = stack.send(Request::new("DELETE", "/files/uploads/a.txt").bearer(&up).header(name, "PUT")).await;
        assert_refused(&reply, 403, "no_route");
    }
    let reply = stack.send(Request::get("/files/uploads/a.txt").bearer(&up).header("X-Forwarded-Method", "PUT")).await;
    assert_refused(&reply, 403, "no_route");
}

/// The gate sees the address that connected to Caddy (Caddy's `X-Forwarded-For`, believed
/// because Caddy is the gate's trusted proxy); a client's own `X-Forwarded-For` does not win.
/// Clients connect from 127.0.0.2 and 127.0.0.3, Caddy reaches the gate from 127.0.0.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_caddy_the_gate_sees_the_real_client_address() {
    let stack = Stack::start().await;
    let near = gate_parts::minted_for(&stack.issuer, "demo", "near", "127.0.0.2").token;
    let upload = || Request::new("PUT", "/files/uploads/a.txt").bearer(&near);
    let from_near = stack.send(upload().from("127.0.0.2")).await;
    assert_eq!(from_near.status, 201, "{}\n{}", from_near.head, from_near.body);
    assert_refused(&stack.send(upload().from("127.0.0.3")).await, 403, "ip_not_allowed");
    for forged in ["127.0.0.2", "10.0.0.1, 127.0.0.2", "127.0.0.2, 127.0.0.1"] {
        let reply = stack.send(upload().from("127.0.0.3").header("X-Forwarded-For", forged)).await;
        assert_refused(&reply, 403, "ip_not_allowed");
    }
    let office = stack.key("office");
    let claimed = Request::new("PUT", "/files/uploads/a.txt").bearer(&office).header("X-Forwarded-For", "10.1.2.3");
    assert_refused(&stack.send(claimed.from("127.0.0.2")).await, 403, "ip_not_allowed");

    // limit_per_source_ip = 1, counted per real client: a forged address does not open a
    // second budget, another real client has its own.
    let per_ip = stack.key("per_ip");
    let upload = || Request::new("PUT", "/files/uploads/b.txt").bearer(&per_ip);
    assert_eq!(stack.send(upload().from("127.0.0.2")).await.status, 201);
    let again = stack.send(upload().from("127.0.0.2").header("X-Forwarded-For", "198.51.100.7")).await;
    assert_refused(&again, 429, "limit_per_source_ip");
    assert_eq!(stack.send(upload().from("127.0.0.3")).await.status, 201);
}
