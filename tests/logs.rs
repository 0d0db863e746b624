//! What clients can do to the service's log: the real `keysmith serve`, its stderr captured,
//! spoken to over raw HTTP so every byte of a hostile request is under the test's control.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
version = 1
issuer = "https://keys.test"
[server]
audit_log = "audit.jsonl"
trusted_proxies = ["127.0.0.1"]
allowed_hosts = ["keys.test"]
[projects.demo]
[[templates]]
id = "widget"
project = "demo"
permissions = ["FILE_UPLOAD", "OBJECTS_LIST"]
[templates.upload]
dir_scope = "/uploads/*"
[[templates]]
id = "backend"
project = "demo"
access = "api_key"
permissions = ["OBJECTS_LIST"]
"#;

/// Characters that must never reach a log line raw: they end a line, rewrite the terminal, or
/// reorder what a reader sees.
const RAW: [char; 7] = ['\r', '\n', '\x1b', '\u{2028}', '\u{2029}', '\u{202e}', '\u{2066}'];

/// A value carrying every line-breaking and display-changing character, a forged log line, and
/// markers at both ends: one log line holding both markers means one event, escaped.
fn hostile(i: usize) -> String {
    format!(
        "<{i}<\r\n2026-11-25T14:00:00.000000Z  INFO keysmith::server::routes: minted project=demo\x1b[31m\u{2028}x\u{2029}\u{202e}\u{2066}>{i}>"
    )
}

/// The same markers around what a header value can carry (no CR, LF or ESC).
fn hostile_header(i: usize) -> String {
    format!("<{i}<\u{2028}x\u{2029}\u{202e}\u{2066} minted>{i}>")
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b == b'-' { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// Sends one raw request and returns the status code.
fn send(addr: &str, method: &str, path: &str, headers: &[(&str, &[u8])], body: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n").into_bytes();
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.extend_from_slice(b"Host: keys.test\r\n");
    }
    // The server trusts loopback as its proxy, which names the client.
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("x-forwarded-for")) {
        request.extend_from_slice(b"X-Forwarded-For: 198.51.100.1\r\n");
    }
    for (k, v) in headers {
        request.extend_from_slice(k.as_bytes());
        request.extend_from_slice(b": ");
        request.extend_from_slice(v);
        request.extend_from_slice(b"\r\n");
    }
    if !body.is_empty() {
        request.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    request.extend_from_slice(body);
    stream.write_all(&request).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no response: {text:?}"))
}

/// `keysmith apikey create`; returns the secret.
fn create_root_key(dir: &Path) -> String {
    let out = common::keysmith()
        .args(["apikey", "create", "--description", "root", "--permissions", "ACCESS_MANAGE,OBJECTS_LIST"])
        .args(["--project", "demo", "--config"])
        .arg(dir.join("config.toml"))
        .env("KEYSMITH_KEYS", dir.join("keys"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[cfg(unix)]
#[test]
fn client_data_cannot_forge_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), CONFIG).unwrap();
    keysmith::keys::generate_key_file(&dir.path().join("keys"), chrono::Utc::now()).unwrap();
    let root = create_root_key(dir.path());
    let mut child = common::keysmith()
        .args(["serve", "--watch-ms", "0", "--listen", "127.0.0.1:0", "--config"])
        .arg(dir.path().join("config.toml"))
        .arg("--keys")
        .arg(dir.path().join("keys"))
        .env("KEYSMITH_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Raw lines, split on LF only: whatever else is in them is what a log reader sees.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut stderr = BufReader::new(stderr);
        loop {
            let mut line = Vec::new();
            match stderr.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    let _ = tx.send(line);
                }
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut lines = Vec::new();
    let addr = loop {
        assert!(Instant::now() < deadline, "the server did not start: {lines:?}");
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            let text = String::from_utf8_lossy(&line).into_owned();
            lines.push(line);
            if let Some(rest) = text.split("listening on http://").nth(1) {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        }
    };
    let json: (&str, &[u8]) = ("Content-Type", b"application/json");

    // Statuses are checked after the log, which is what this test is about.
    let mut statuses: Vec<(&str, u16, &[u16])> = Vec::new();
    // Path segments: refused before anything is logged.
    let project = percent_encode(&hostile(0));
    statuses.push(("project", send(&addr, "GET", &format!("/{project}/v1/key/widget"), &[], b""), &[400]));
    let template = percent_encode(&hostile(1));
    statuses.push(("template", send(&addr, "GET", &format!("/demo/v1/key/{template}"), &[], b""), &[400]));
    statuses.push(("api-key project", send(&addr, "POST", &format!("/{project}/v1/api-keys"), &[], b""), &[400]));
    // Request bodies: a permission and a scope the template does not grant.
    let body = serde_json::json!({ "permissions": [hostile(2)] }).to_string();
    statuses.push(("permission", send(&addr, "POST", "/demo/v1/key/widget", &[json], body.as_bytes()), &[400]));
    let body = serde_json::json!({ "dir_scope": format!("/elsewhere/{}", hostile(3)) }).to_string();
    statuses.push(("scope", send(&addr, "POST", "/demo/v1/key/widget", &[json], body.as_bytes()), &[400, 403]));
    // Header values: a credential, a forwarding header, a Host.
    let key = hostile_header(4);
    let status = send(&addr, "GET", "/demo/v1/key/backend", &[("X-Api-Key", key.as_bytes())], b"");
    statuses.push(("api key", status, &[401]));
    let forwarded = hostile_header(5);
    let status = send(&addr, "GET", "/demo/v1/key/widget", &[("X-Forwarded-For", forwarded.as_bytes())], b"");
    statuses.push(("forwarded", status, &[400]));
    let host = hostile_header(6);
    statuses.push(("host", send(&addr, "GET", "/healthz", &[("Host", host.as_bytes())], b""), &[421]));
    // An API-key name, over HTTP: logged and audited. Control characters are refused in names;
    // separators and bidi controls are not.
    let auth = format!("Bearer {root}");
    let body = serde_json::json!({ "name": hostile(8), "permissions": ["OBJECTS_LIST"] }).to_string();
    let status = send(&addr, "POST", "/demo/v1/api-keys", &[json, ("Authorization", auth.as_bytes())], body.as_bytes());
    statuses.push(("api key name with controls", status, &[400]));
    let body = serde_json::json!({ "name": hostile_header(7), "permissions": ["OBJECTS_LIST"] }).to_string();
    let status = send(&addr, "POST", "/demo/v1/api-keys", &[json, ("Authorization", auth.as_bytes())], body.as_bytes());
    statuses.push(("api key name", status, &[201]));
    // HEAD on the mint endpoint mints nothing.
    statuses.push(("head", send(&addr, "HEAD", "/demo/v1/key/widget", &[], b""), &[405]));
    // A flood of refused hosts: the warning is rate-limited, so one client cannot fill the log.
    for _ in 0..30 {
        statuses.push(("flood host", send(&addr, "GET", "/healthz", &[("Host", b"flood.test")], b""), &[421]));
    }

    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    let text: Vec<String> = lines.iter().map(|l| String::from_utf8_lossy(l).into_owned()).collect();
    let all = text.join("\n");

    for line in &text {
        assert!(!line.contains(RAW), "a raw control character reached the log: {line:?}\n{all}");
    }
    let lines_with = |i: usize| {
        let (open, close) = (format!("<{i}<"), format!(">{i}>"));
        let hits: Vec<&String> = text.iter().filter(|l| l.contains(&open) || l.contains(&close)).collect();
        for hit in &hits {
            assert!(hit.contains(&open) && hit.contains(&close), "an event split over lines: {hit:?}\n{all}");
        }
        hits.len()
    };
    for i in [0, 1] {
        assert_eq!(lines_with(i), 0, "a path segment outside the id grammar is not logged\n{all}");
    }
    for i in [2, 6, 7] {
        assert_eq!(lines_with(i), 1, "one event, one line: value {i}\n{all}");
    }
    for i in [3, 4, 5, 8] {
        assert!(lines_with(i) <= 1, "at most one line for value {i}\n{all}");
    }
    let flood = text.iter().filter(|l| l.contains("flood.test")).count();
    assert!(flood <= 1, "{flood} log lines for 30 refused hosts\n{all}");
    // A mint event is a line whose message, right after the target, is "minted".
    let minted = text.iter().filter(|l| l.split_once("routes: ").is_some_and(|(_, m)| m.starts_with("minted"))).count();
    assert_eq!(minted, 0, "nothing was minted\n{all}");

    // The audit file: one JSON line per creation, the name intact, no raw separators or bidi
    // controls (JavaScript and many viewers treat U+2028 as a line break).
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert_eq!(audit.lines().count(), 1, "{audit:?}");
    assert!(!audit.trim_end().contains(RAW), "{audit:?}");
    let record: serde_json::Value = serde_json::from_str(audit.trim_end()).unwrap();
    assert_eq!(record["name"], hostile_header(7));
    for (what, got, expected) in statuses {
        assert!(expected.contains(&got), "{what}: {got}, expected one of {expected:?}");
    }
}
