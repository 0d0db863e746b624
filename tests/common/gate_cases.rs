//! The cases every reverse proxy in front of `keysmith gate` must pass, asserted from the
//! client's side of the proxy: an allowed upload reaches the backend with the gate's
//! `X-Keysmith-*` headers only and its whole body; every refusal keeps the gate's status,
//! problem and headers; forged forwarding headers and addresses change nothing. Each test
//! file starts its proxy (with the configuration from `docs/gate.md`) and calls these.

#![allow(dead_code)] // each test crate uses a different subset.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

use crate::gate_parts::{self, Documents, Gate, Reply, Request, issuer, mint, tampered};
use keysmith::Issuer;
use std::future::Future;

/// The templates the cases use: `burst` allows 2 uploads a minute, `per_ip` 1 per client
/// address.
pub fn config() -> String {
    gate_parts::issuer_config(1, 2, 1, "")
}

/// What a proxy does that the cases must know, because proxies legitimately differ.
#[derive(Debug, Clone, Copy)]
pub struct ProxyTraits {
    /// The code the gate gives `/files/uploads/../secret/a.txt` as this proxy forwards it:
    /// `invalid_path` when the proxy passes the dot segments, `outside_scope` when it resolves
    /// them first.
    pub traversal_code: &'static str,
    /// Whether the gate learns an upload's length through this proxy. When not, keys with
    /// `max_file_size` are refused with `411 length_required` whatever the size (fail closed).
    pub passes_length: bool,
    /// Whether the proxy removes every client `X-Keysmith-*` name, not only the four the gate
    /// sets (nginx can only replace named headers).
    pub strips_every_keysmith_name: bool,
}

/// The issuer, the backend, the gate and a proxy in front of them.
pub struct Stack {
    /// Signs the keys the cases present.
    pub issuer: Issuer,
    /// The proxy's port: every case talks to it only.
    pub port: u16,
    /// How this proxy differs where proxies may differ.
    pub traits: ProxyTraits,
    _proxy: Box<dyn Send>,
    _gate: Gate,
}

impl Stack {
    /// Starts the backend and the gate, then the proxy with `proxy(gate_port, backend_port)`,
    /// which answers the proxy's port and a value that stops the proxy when dropped.
    pub async fn start<P, F, Fut>(traits: ProxyTraits, proxy: F) -> Self
    where
        F: FnOnce(u16, u16) -> Fut,
        Fut: Future<Output = (u16, P)>,
        P: Send + 'static,
    {
        let issuer = issuer(&config());
        let backend = gate_parts::start_backend(Documents::of(&issuer)).await;
        let gate = Gate::start(backend).await;
        let (port, running) = proxy(gate.port, backend).await;
        Self { issuer, port, traits, _proxy: Box::new(running), _gate: gate }
    }

    /// What the gate answers a sized upload whose real length is `length` (over the limit when
    /// `over`): `413`, or `411` when this proxy does not pass lengths; `None` when it fits.
    fn sized_refusal(&self, over: bool) -> Option<(u16, &'static str)> {
        match (self.traits.passes_length, over) {
            (false, _) => Some((411, "length_required")),
            (true, true) => Some((413, "file_too_large")),
            (true, false) => None,
        }
    }

    fn key(&self, template: &str) -> String {
        mint(&self.issuer, "demo", template)
    }

    async fn send(&self, request: Request) -> Reply {
        request.send(self.port).await.unwrap()
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

/// As [`assert_refused`], with any of `codes`.
#[track_caller]
fn assert_refused_as_one_of(reply: &Reply, status: u16, codes: &[&str], request: &Request) {
    let code = reply.code();
    assert!(codes.contains(&code.as_str()), "{request:?}\n{}\n\n{}", reply.head, reply.body);
    assert_refused(reply, status, &code);
}

/// The backend's report, sorted (proxies order headers differently): the `X-Keysmith-*`
/// lines and the body length it received.
fn backend_saw(reply: &Reply) -> Vec<&str> {
    let mut lines: Vec<&str> = reply.body.lines().collect();
    lines.sort_unstable();
    lines
}

/// An allowed upload (plain and chunked) and a listing reach the backend with the gate's four
/// `X-Keysmith-*` headers, none of the client's, and the whole body.
pub async fn allowed_requests_reach_the_backend_with_only_the_gates_headers(stack: &Stack) {
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
        // The same names with `_`, which a CGI-style backend reads as the gate's.
        .header("X_Keysmith_Subject", "admin")
        .header("x_keysmith_scope", "FILE_UPLOAD OBJECTS_LIST ADMIN")
        .body(body.clone());
    let ok = stack.send(forged).await;
    assert_eq!(ok.status, 201, "{}\n{}", ok.head, ok.body);
    let mut seen = backend_saw(&ok);
    if !stack.traits.strips_every_keysmith_name {
        seen.retain(|line| *line != "x-keysmith-admin: true");
    }
    assert_eq!(
        seen,
        [
            format!("body-bytes: {}", body.len()),
            "x-keysmith-jti: ".to_owned() + &jti,
            "x-keysmith-project: demo".to_owned(),
            "x-keysmith-scope: FILE_UPLOAD OBJECTS_LIST".to_owned(),
            "x-keysmith-subject: up".to_owned(),
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

/// 401, 403, 411, 413, 415 and 429 reach the client with the gate's status, problem and headers.
pub async fn every_refusal_reaches_the_client_with_the_gates_status_and_problem(stack: &Stack) {
    let up = stack.key("up");
    let tampered = tampered(&up);
    let sized = stack.key("sized");
    let put = |target: &str| Request::new("PUT", target);
    let cases = [
        (put("/files/uploads/a.txt"), 401, "key_missing"),
        (put("/files/uploads/a.txt").header("Authorization", "Basic dXNlcjpwYXNz"), 401, "key_malformed"),
        (put("/files/uploads/a.txt").bearer(&tampered), 401, "bad_signature"),
        (put("/files/uploads/a.txt").bearer(&mint(&stack.issuer, "other", "elsewhere")), 401, "wrong_audience"),
        (put("/files/uploads2/a.txt").bearer(&up), 403, "outside_scope"),
        (put("/files/uploads/../secret/a.txt").bearer(&up), 403, stack.traits.traversal_code),
        (put("/files/uploads/%2e%2e/secret/a.txt").bearer(&up), 403, stack.traits.traversal_code),
        (Request::new("DELETE", "/files/uploads/a.txt").bearer(&up), 403, "no_route"),
        (put("/files/uploads/a.txt").bearer(&stack.key("office")), 403, "ip_not_allowed"),
        (
            put("/files/uploads/a.png").bearer(&stack.key("typed")).header("Content-Type", "text/plain"),
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
    // One byte over max_file_size, and just inside it.
    let png = || put("/files/uploads/a.png").bearer(&sized).header("Content-Type", "image/png");
    for (body, over) in [("0123456789a", true), ("0123456789", false)] {
        let reply = stack.send(png().body(body)).await;
        match stack.sized_refusal(over) {
            Some((status, code)) => assert_refused(&reply, status, code),
            None => assert_eq!(reply.status, 201, "{}\n{}", reply.head, reply.body),
        }
    }

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

/// The proxy sets `X-Forwarded-Method` and `X-Forwarded-Uri` itself, and the upload's length
/// comes from the real request: a client's own copies never reach the gate's decision.
pub async fn client_sent_forwarding_headers_cannot_change_the_decision(stack: &Stack) {
    let up = stack.key("up");
    let sized = stack.key("sized");
    let png = |request: Request| request.bearer(&sized).header("Content-Type", "image/png");

    // A size understated by the client: the real Content-Length decides.
    let understated = png(Request::new("PUT", "/files/uploads/a.png")).header("X-Original-Content-Length", "5");
    let (status, code) = stack.sized_refusal(true).unwrap();
    assert_refused(&stack.send(understated.clone().body("0123456789a")).await, status, code);
    let twice = understated.clone().header("X-Original-Content-Length", "5").body("0123456789a");
    assert_refused(&stack.send(twice).await, status, code);
    // No Content-Length at all (chunked): no length, whatever the client claims.
    assert_refused(&stack.send(understated.clone().chunked().body("0123456789a")).await, 411, "length_required");
    assert_refused(&stack.send(understated.chunked().body("0123")).await, 411, "length_required");

    // Another path or method claimed by the client, alone or as a whole pair of either kind:
    // the real request decides (refused as outside the scope, or as a contradictory
    // description when the client's pair reaches the gate beside the proxy's).
    let secret = || Request::new("PUT", "/files/secret/a.txt").bearer(&up);
    let claims = [
        secret().header("X-Forwarded-Uri", "/files/uploads/a.txt"),
        secret().header("X-Original-URI", "/files/uploads/a.txt"),
        secret().header("X-Forwarded-Method", "PUT").header("X-Forwarded-Uri", "/files/uploads/a.txt"),
        secret().header("X-Original-Method", "PUT").header("X-Original-URI", "/files/uploads/a.txt"),
    ];
    for claim in claims {
        let reply = stack.send(claim.clone()).await;
        assert_refused_as_one_of(&reply, 403, &["outside_scope", "invalid_path"], &claim);
    }
    let both = Request::new("PUT", "/files/secret/a.txt")
        .bearer(&up)
        .header("X-Original-Method", "PUT")
        .header("X-Original-URI", "/files/uploads/a.txt")
        .header("X-Forwarded-Uri", "/files/uploads/a.txt")
        .header("X-Forwarded-Uri", "/files/uploads/b.txt");
    assert_refused_as_one_of(&stack.send(both.clone()).await, 403, &["outside_scope", "invalid_path"], &both);
    let deleting = || Request::new("DELETE", "/files/uploads/a.txt").bearer(&up);
    let claims = [
        deleting().header("X-Forwarded-Method", "PUT"),
        deleting().header("X-Original-Method", "PUT"),
        deleting().header("X-Forwarded-Method", "PUT").header("X-Forwarded-Uri", "/files/uploads/a.txt"),
        deleting().header("X-Original-Method", "PUT").header("X-Original-URI", "/files/uploads/a.txt"),
        Request::get("/files/uploads/a.txt").bearer(&up).header("X-Forwarded-Method", "PUT"),
    ];
    for claim in claims {
        let reply = stack.send(claim.clone()).await;
        assert_refused_as_one_of(&reply, 403, &["no_route", "invalid_path"], &claim);
    }
}

/// The gate sees the address that connected to the proxy (the proxy's `X-Forwarded-For`,
/// believed because the proxy is the gate's trusted proxy); a client's own `X-Forwarded-For`
/// does not win. Clients connect from 127.0.0.2 and 127.0.0.3, the proxy reaches the gate from
/// 127.0.0.1.
pub async fn the_gate_sees_the_real_client_address(stack: &Stack) {
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

/// The cases above as the tests of the crate that invokes it, each on a fresh stack from
/// `$stack` (an async expression building a [`Stack`] with the proxy under test).
macro_rules! proxy_cases {
    ($stack:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn an_allowed_upload_reaches_the_backend_with_only_the_gates_headers() {
            gate_cases::allowed_requests_reach_the_backend_with_only_the_gates_headers(&$stack.await).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn every_refusal_reaches_the_client_with_the_gates_status_and_problem() {
            gate_cases::every_refusal_reaches_the_client_with_the_gates_status_and_problem(&$stack.await).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn client_sent_forwarding_headers_cannot_change_the_decision() {
            gate_cases::client_sent_forwarding_headers_cannot_change_the_decision(&$stack.await).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn the_gate_sees_the_real_client_address() {
            gate_cases::the_gate_sees_the_real_client_address(&$stack.await).await;
        }
    };
}
pub(crate) use proxy_cases;
