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
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The `iss` of every key in these tests.
pub const ISSUER: &str = "https://keys.test";

/// An issuer for `config` (TOML), signing with a fixed test key.
pub fn issuer(config: &str) -> Issuer {
    issuer_with_key(config, 7)
}

/// As [`issuer`], signing with the key of `seed` (the fixed test key is 7).
pub fn issuer_with_key(config: &str, seed: u8) -> Issuer {
    let config = Config::from_toml(config, Path::new(".")).unwrap();
    let key = SigningKey::new(&ed25519_dalek::SigningKey::from_bytes(&[seed; 32]));
    Issuer::from_parts(config, Keyring::single(key), None)
}

/// `issuer`'s JWKS, as JSON.
pub fn jwks_of(issuer: &Issuer) -> String {
    serde_json::to_string(&issuer.keyring().jwks()).unwrap()
}

/// `token` with one bit of its signature flipped.
pub fn tampered(token: &str) -> String {
    let (rest, sig) = token.rsplit_once('.').unwrap();
    let mut sig = crate::common::unb64(sig);
    sig[0] ^= 1;
    format!("{rest}.{}", crate::common::b64(sig))
}

/// The issuer's `config.toml` of the gate tests, `version`: projects `demo` and `other`, and
/// the templates `up` (upload and list under `/uploads/`), `burst` (`per_min` uploads a
/// minute), `per_ip` (`per_source_ip` uploads per client address), `office` (minting and
/// use from 10.0.0.0/8), `near` (from 127.0.0.2), `sized` (at most 10 bytes of `image/png`),
/// `typed` (`image/png`) and `elsewhere` (project `other`); `extra` TOML after them.
pub fn issuer_config(version: u32, per_min: u32, per_source_ip: u32, extra: &str) -> String {
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
limit_per_min = {per_min}
[[templates]]
id = "per_ip"
project = "demo"
permissions = ["FILE_UPLOAD"]
[templates.upload]
dir_scope = "/uploads/*"
limit_per_min = 100
limit_per_source_ip = {per_source_ip}
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
id = "typed"
project = "demo"
permissions = ["FILE_UPLOAD"]
[templates.upload]
dir_scope = "/uploads/*"
content_types = ["image/png"]
[[templates]]
id = "elsewhere"
project = "other"
permissions = ["FILE_UPLOAD"]
{extra}"#
    )
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
        Self { jwks: Arc::new(Mutex::new(jwks_of(issuer))), revocations: Arc::new(Mutex::new(revocation_list(issuer))) }
    }

    /// Serves `issuer`'s revocation list, signed now, from here on.
    pub fn publish_revocations(&self, issuer: &Issuer) {
        *self.revocations.lock().unwrap() = revocation_list(issuer);
    }
}

fn revocation_list(issuer: &Issuer) -> String {
    issuer.revocation_list(SystemTime::now()).unwrap().token
}

/// The upload backend and the issuer's documents, on one in-process server. Any other request
/// is an upload: `201` with one line per `X-Keysmith-*` (or `X_Keysmith_*`) header received
/// (`name: value`, in order, repeated names repeated) and `body-bytes: N`, the length of the body that arrived.
pub async fn start_backend(docs: Documents) -> u16 {
    async fn upload(headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
        let mut seen = String::new();
        for (name, value) in &headers {
            // As a CGI-style backend (PHP-FPM, WSGI, Rack) sees names: `_` and `-` alike.
            if name.as_str().replace('_', "-").starts_with("x-keysmith-") {
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

/// The `gate.toml` of a test gate, by default: the routes of `docs/gate.md` (uploads under
/// `/files/`, listings under `/list/`), the JWKS and revocation list from the backend,
/// `trusted_proxies = ["127.0.0.1/32"]` (the proxy's address), `refresh_seconds = 1`, and
/// in-memory limits that deny when the store fails.
#[derive(Debug, Clone)]
pub struct GateConfig {
    jwks: String,
    revocations: Option<String>,
    trusted_proxies: String,
    store: String,
    on_store_error: String,
    extra: String,
    limits_extra: String,
}

impl GateConfig {
    /// The defaults, with the documents from the backend on `backend`.
    pub fn new(backend: u16) -> Self {
        Self {
            jwks: format!("http://127.0.0.1:{backend}/.well-known/jwks.json"),
            revocations: Some(format!("http://127.0.0.1:{backend}/v1/revocations")),
            trusted_proxies: r#"["127.0.0.1/32"]"#.to_owned(),
            store: "memory".to_owned(),
            on_store_error: "deny".to_owned(),
            extra: String::new(),
            limits_extra: String::new(),
        }
    }

    /// The JWKS from `source` (a URL or a file) and no revocation list.
    pub fn jwks_only(mut self, source: &str) -> Self {
        self.jwks = source.to_owned();
        self.revocations = None;
        self
    }

    /// `trusted_proxies` as this TOML array.
    pub fn trusted_proxies(mut self, array: &str) -> Self {
        self.trusted_proxies = array.to_owned();
        self
    }

    /// Counters in `store` (`memory` or a `redis://` URL), and `on_store_error`.
    pub fn limits(mut self, store: &str, on_store_error: &str) -> Self {
        self.store = store.to_owned();
        self.on_store_error = on_store_error.to_owned();
        self
    }

    /// Adds settings to `[limits]` (TOML lines).
    pub fn with_limits(mut self, settings: &str) -> Self {
        self.limits_extra.push_str(settings);
        self.limits_extra.push('\n');
        self
    }

    /// Adds top-level settings (TOML lines).
    pub fn with(mut self, settings: &str) -> Self {
        self.extra.push_str(settings);
        self.extra.push('\n');
        self
    }

    /// The text of `gate.toml`.
    pub fn toml(&self) -> String {
        let Self { jwks, revocations, trusted_proxies, store, on_store_error, extra, limits_extra } = self;
        let revocations = revocations.as_ref().map(|r| format!("revocations = {r:?}\n")).unwrap_or_default();
        format!(
            r#"
issuer = "{ISSUER}"
audience = "demo"
jwks = {jwks:?}
{revocations}trusted_proxies = {trusted_proxies}
refresh_seconds = 1
{extra}
[limits]
store = {store:?}
on_store_error = {on_store_error:?}
{limits_extra}
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

    /// Starts a gate with this configuration, once `/healthz` answers `200`.
    pub async fn start(&self) -> Gate {
        Gate::launch(&self.toml()).ready().await
    }
}

/// A `keysmith gate` process on a free loopback port, killed on drop. What it logs goes to
/// `gate.log` in its temporary directory, and to the test's output when the test fails.
pub struct Gate {
    /// Its `/v1/authorize` port.
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Gate {
    /// A gate with the default [`GateConfig`] for `backend`, once `/healthz` answers `200`.
    pub async fn start(backend: u16) -> Self {
        GateConfig::new(backend).start().await
    }

    /// Starts the gate binary with `toml` as its `gate.toml`, without waiting for it.
    pub fn launch(toml: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let path = dir.path().join("gate.toml");
        std::fs::write(&path, toml).unwrap();
        let log = std::fs::File::create(dir.path().join("gate.log")).unwrap();
        let child = crate::common::keysmith()
            .args(["gate", "--listen", &format!("127.0.0.1:{port}"), "--config"])
            .arg(&path)
            .env("KEYSMITH_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Self { port, child, dir }
    }

    /// Waits until `/healthz` answers `200`; fails with the gate's log when it exits or takes
    /// longer than 20 s.
    pub async fn ready(mut self) -> Self {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if Request::get("/healthz").send(self.port).await.is_ok_and(|r| r.status == 200) {
                return self;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the gate on port {} exited: {status}\n{}", self.port, self.log());
            }
            assert!(Instant::now() < deadline, "the gate on port {} did not become ready:\n{}", self.port, self.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// How the gate ended when it exits by itself within `within`; `None` while it runs.
    pub fn exited(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything the gate logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gate.log")).unwrap_or_default()
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log();
            if !log.is_empty() {
                eprintln!("--- the gate on port {} logged:\n{log}", self.port);
            }
        }
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
        mut command: Command,
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
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian's nginx with the server block of `docs/gate.md` (its addresses replaced) inside an
/// `http` block that keeps its files in the proxy's temporary directory. nginx sets
/// `X-Original-Method` and `X-Original-URI`, passes the target as sent (`$request_uri`) and the
/// length as `X-Original-Content-Length`, and passes the client's other headers to the gate, so
/// a client's `X-Forwarded-Method`/`X-Forwarded-Uri` must not describe the request. It can only
/// replace the `X-Keysmith-*` names it sets.
pub async fn nginx(gate: u16, backend: u16) -> Proxy {
    let (dir, port) = Proxy::prepare();
    let site = doc_block(&gate_doc(), "## nginx", "nginx");
    let site = substitute(&site, "127.0.0.1:9090", &format!("127.0.0.1:{gate}"));
    let site = substitute(&site, "127.0.0.1:3000", &format!("127.0.0.1:{backend}"));
    let site = substitute(&site, "listen 80;", &format!("listen 127.0.0.1:{port};"));
    let d = dir.path().display();
    let conf = format!(
        "worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 64; }}\nhttp {{\n    access_log off;\n    client_body_temp_path {d}/body;\n\
         proxy_temp_path {d}/proxy;\n    fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n\
         scgi_temp_path {d}/scgi;\n{site}}}\n"
    );
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, &conf).unwrap();
    let binary = ["/usr/sbin/nginx", "nginx"].into_iter().find(|b| Path::new(b).exists()).unwrap_or("nginx");
    let mut command = Command::new(binary);
    command.arg("-p").arg(dir.path()).arg("-c").arg(&path);
    Proxy::start("nginx", command, (dir, port), &conf, "installs Debian's nginx").await
}
