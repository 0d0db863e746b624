//! The parts of a `keysmith gate` deployment that every reverse-proxy test needs: an issuer
//! with a fixed key, an upload backend that also serves the JWKS and revocation list, the gate
//! binary on a free loopback port, a raw HTTP client that can choose its source address, and
//! the proxy configurations as `docs/gate.md` shows them.

#![allow(dead_code)] // each test crate uses a different subset.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test setup stops at the first failure

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use keysmith::issuer::{Caller, Minted};
use keysmith::{Config, Issuer, Keyring, MintRequest, SigningKey};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The `iss` of every key in these tests.
pub const ISSUER: &str = "https://keys.test";

/// An issuer for `config` (TOML), signing with a fixed test key.
pub fn issuer(config: &str) -> Issuer {
    let config = Config::from_toml(config, Path::new(".")).unwrap();
    let key = SigningKey::new(&ed25519_dalek::SigningKey::from_bytes(&[7; 32]));
    Issuer::from_parts(config, Keyring::single(key), None)
}

/// A fresh access key from `template` of `project`.
pub fn mint(issuer: &Issuer, project: &str, template: &str) -> String {
    minted(issuer, project, template).token
}

/// As [`mint`], with what the issuer says about the key (its `jti`).
pub fn minted(issuer: &Issuer, project: &str, template: &str) -> Minted {
    minted_for(issuer, project, template, "10.9.9.9")
}

/// As [`minted`], for a caller at `address` (a template's `whitelist_ip_ranges` applies to
/// minting too).
pub fn minted_for(issuer: &Issuer, project: &str, template: &str, address: &str) -> Minted {
    let caller = Caller::at(address.parse().unwrap());
    issuer.mint(project, template, &MintRequest::default(), caller, SystemTime::now()).unwrap()
}

/// A loopback port nobody listened on a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port()
}

/// The documents the gate fetches (JWKS, revocation list), swappable by the test.
#[derive(Clone)]
pub struct Documents {
    /// The JWKS, as JSON.
    pub jwks: Arc<Mutex<String>>,
    /// The signed revocation list.
    pub revocations: Arc<Mutex<String>>,
}

impl Documents {
    /// `issuer`'s JWKS and a revocation list signed now.
    pub fn of(issuer: &Issuer) -> Self {
        Self {
            jwks: Arc::new(Mutex::new(serde_json::to_string(&issuer.keyring().jwks()).unwrap())),
            revocations: Arc::new(Mutex::new(issuer.revocation_list(SystemTime::now()).unwrap().token)),
        }
    }
}

/// The upload backend and the issuer's documents, on one in-process server. Any other request
/// is an upload: `201` with one line per `X-Keysmith-*` header received (`name: value`, in
/// order, repeated names repeated) and `body-bytes: N`, the length of the body that arrived.
pub async fn start_backend(docs: Documents) -> u16 {
    async fn upload(headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
        let mut seen = String::new();
        for (name, value) in &headers {
            if name.as_str().starts_with("x-keysmith-") {
                seen.push_str(&format!("{name}: {}\n", value.to_str().unwrap_or("?")));
            }
        }
        seen.push_str(&format!("body-bytes: {}\n", body.len()));
        (StatusCode::CREATED, seen)
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

/// A `keysmith gate` process on a free loopback port, killed on drop.
pub struct Gate {
    /// Its `/v1/authorize` port.
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Gate {
    /// Starts the gate binary with the routes of `docs/gate.md` (uploads under `/files/`,
    /// listings under `/list/`), the JWKS and revocation list from `backend`, in-memory
    /// limits, `trusted_proxies = ["127.0.0.1/32"]`, and waits until `/healthz` answers `200`.
    pub async fn start(backend: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let toml = format!(
            r#"
issuer = "{ISSUER}"
audience = "demo"
jwks = "http://127.0.0.1:{backend}/.well-known/jwks.json"
revocations = "http://127.0.0.1:{backend}/v1/revocations"
trusted_proxies = ["127.0.0.1/32"]
refresh_seconds = 1

[limits]
store = "memory"
on_store_error = "deny"

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
        );
        let path = dir.path().join("gate.toml");
        std::fs::write(&path, toml).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_keysmith"))
            .args(["gate", "--listen", &format!("127.0.0.1:{port}"), "--config"])
            .arg(&path)
            .env("KEYSMITH_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let gate = Self { port, child, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if Request::get("/healthz").send(port).await.is_ok_and(|r| r.status == 200) {
                return gate;
            }
            assert!(Instant::now() < deadline, "the gate on port {port} did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An answer, as received.
#[derive(Debug)]
pub struct Reply {
    /// The status code (`0` when the reply was not HTTP).
    pub status: u16,
    /// The status line and headers.
    pub head: String,
    /// The body as text (chunked framing left in place).
    pub body: String,
}

impl Reply {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers(name).into_iter().next()
    }

    /// Every value of header `name` (any case), in order.
    pub fn headers(&self, name: &str) -> Vec<String> {
        self.head
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
            .collect()
    }

    /// The `X-Keysmith-Code` of a refusal, or `""`.
    pub fn code(&self) -> String {
        self.header("x-keysmith-code").unwrap_or_default()
    }
}

/// One HTTP/1.1 request written byte for byte on a fresh connection, so the target, repeated
/// headers and the framing are exactly what a hostile client would send.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    chunked: bool,
    from: IpAddr,
}

impl Request {
    /// `method target` with the body `hello` (and its `Content-Length`), from 127.0.0.1.
    pub fn new(method: &str, target: &str) -> Self {
        Self {
            method: method.to_owned(),
            target: target.to_owned(),
            headers: Vec::new(),
            body: b"hello".to_vec(),
            chunked: false,
            from: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }

    /// `GET target` without a body.
    pub fn get(target: &str) -> Self {
        Self::new("GET", target).body("")
    }

    /// Adds a header (repeat to send a name twice).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    /// Replaces the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sends the body with `Transfer-Encoding: chunked` (no `Content-Length`).
    pub fn chunked(mut self) -> Self {
        self.chunked = true;
        self
    }

    /// Connects from this loopback address (any of 127.0.0.0/8 on Linux).
    pub fn from(mut self, address: &str) -> Self {
        self.from = address.parse().unwrap();
        self
    }

    /// Sends the request to `127.0.0.1:port` and reads the reply to its end.
    ///
    /// # Errors
    ///
    /// When the connection cannot be made or breaks.
    pub async fn send(&self, port: u16) -> std::io::Result<Reply> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(self.from, 0))?;
        let mut stream = socket.connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
        let mut text =
            format!("{} {} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n", self.method, self.target);
        if self.chunked {
            text.push_str("Transfer-Encoding: chunked\r\n");
        } else if !(self.method == "GET" && self.body.is_empty()) {
            text.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        for (k, v) in &self.headers {
            text.push_str(&format!("{k}: {v}\r\n"));
        }
        text.push_str("\r\n");
        let mut raw = text.into_bytes();
        if self.chunked {
            if !self.body.is_empty() {
                raw.extend_from_slice(format!("{:x}\r\n", self.body.len()).as_bytes());
                raw.extend_from_slice(&self.body);
                raw.extend_from_slice(b"\r\n");
            }
            raw.extend_from_slice(b"0\r\n\r\n");
        } else {
            raw.extend_from_slice(&self.body);
        }
        stream.write_all(&raw).await?;
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no complete reply within 10 s"))??;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        Ok(Reply { status, head: head.to_owned(), body: body.to_owned() })
    }
}

/// The text of `docs/gate.md`.
pub fn gate_doc() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/gate.md")).unwrap()
}

/// The one fenced block in ```` ```lang ```` of the `## ` section of `doc` whose heading starts
/// with `heading` (for example `"## Caddy"`). Fails the test when there is not exactly one.
pub fn doc_block(doc: &str, heading: &str, lang: &str) -> String {
    let mut lines = doc.lines().skip_while(|l| !l.starts_with(heading));
    assert!(lines.next().is_some(), "docs/gate.md has no section {heading:?}");
    let section: Vec<&str> = lines.take_while(|l| !l.starts_with("## ")).collect();
    let fence = format!("```{lang}");
    let starts: Vec<usize> =
        section.iter().enumerate().filter(|(_, l)| l.trim_end() == fence).map(|(i, _)| i).collect();
    assert_eq!(starts.len(), 1, "section {heading:?} of docs/gate.md must hold exactly one {fence} block");
    section[starts[0] + 1..].iter().take_while(|l| l.trim_end() != "```").map(|l| format!("{l}\n")).collect()
}

/// `text` with `from` replaced by `to`, insisting that `from` occurs exactly once (a snippet
/// whose addresses changed must fail here, not run against the wrong port).
pub fn substitute(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} must occur exactly once in:\n{text}");
    text.replacen(from, to, 1)
}

/// A reverse proxy in front of the gate on a free loopback port, killed on drop. Its
/// configuration and its log (`*.log`) live in its own temporary directory.
pub struct Proxy {
    /// Where clients reach it.
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Proxy {
    /// A directory and a free port for a proxy about to be configured.
    pub fn prepare() -> (tempfile::TempDir, u16) {
        (tempfile::tempdir().unwrap(), free_port())
    }

    /// Starts `command` (its output goes to `<dir>/<name>.log`) and waits until a request
    /// through it reaches the gate (the gate's own `key_missing` refusal): listening comes
    /// before the routes are loaded in some proxies. A missing program fails with `install`
    /// as the hint; a proxy that exits or takes longer than 30 s fails with its log and
    /// `config`.
    pub async fn start(
        name: &str,
        mut command: std::process::Command,
        (dir, port): (tempfile::TempDir, u16),
        config: &str,
        install: &str,
    ) -> Self {
        let log = std::fs::File::create(dir.path().join(format!("{name}.log"))).unwrap();
        let spawned = command.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log).spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!("{name} is not installed: run scripts/test-deps.sh ({install})")
            }
            Err(e) => panic!("cannot start {name}: {e}"),
        };
        let mut proxy = Self { port, child, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let reply = Request::get("/list/uploads").send(port).await;
            if reply.as_ref().is_ok_and(|r| r.code() == "key_missing") {
                return proxy;
            }
            let exited = proxy.child.try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "{name} did not route to the gate on {port} ({exited:?}, last {reply:?}):\n{}\n--- config:\n{config}",
                proxy.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything the proxy logged.
    pub fn log(&self) -> String {
        let mut text = String::new();
        for entry in std::fs::read_dir(self.dir.path()).into_iter().flatten().flatten() {
            if entry.path().extension().is_some_and(|x| x == "log") {
                text += &std::fs::read_to_string(entry.path()).unwrap_or_default();
            }
        }
        text
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // SIGTERM first: an nginx master killed outright orphans its workers.
        let _ = std::process::Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
