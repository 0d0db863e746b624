//! The upload service in `examples/upload_service.rs`, run against a live keysmith: a key is
//! allowed in its scope, refused outside it and without one, and refused once its template is
//! deactivated (through the signed revocation list). The shell steps in the doc comments of
//! `examples/upload_service.rs` and `examples/enforce_service.rs` run as written (addresses
//! replaced) against a server on the shipped `config.toml` and the running example, and print
//! what the comments say they print.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

mod common;

#[path = "../examples/upload_service.rs"]
#[allow(dead_code)] // its `main` is not used here
mod upload_service;

#[path = "../examples/enforce_service.rs"]
#[allow(dead_code)] // its `main` is not used here
mod enforce_service;

use common::TestServer;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
version = 1
issuer = "https://keys.test"
revocations_max_age = 10
[server]
rate_limit_per_minute = 0
[projects.demo]
[[templates]]
id = "upload-widget"
project = "demo"
permissions = ["FILE_UPLOAD"]
[templates.upload]
dir_scope = "/uploads/*"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn the_example_service_allows_refuses_and_revokes() {
    let server = TestServer::start(CONFIG).await;
    let settings = upload_service::Settings {
        keysmith_url: server.url(""),
        issuer: "https://keys.test".into(),
        project: "demo".into(),
    };
    let (router, refresher) =
        tokio::task::spawn_blocking(move || upload_service::app(&settings)).await.unwrap().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        async move { axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await },
    );

    let minted: serde_json::Value =
        reqwest::get(server.url("/demo/v1/key/upload-widget")).await.unwrap().json().await.unwrap();
    let key = minted["key"].as_str().unwrap().to_owned();
    let client = reqwest::Client::new();
    let put = |path: &str, key: Option<&str>| {
        let mut request = client.put(format!("http://{addr}/files{path}")).body("hello");
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };

    let (status, text) = put("/uploads/a/photo.jpg", Some(&key)).await;
    assert_eq!(status, 201, "{text}");
    assert!(text.contains("stored 5 bytes at /uploads/a/photo.jpg"), "{text}");
    assert_eq!(put("/etc/photo.jpg", Some(&key)).await, (403, "outside_scope".into()));
    assert_eq!(put("/photo.jpg", Some(&key)).await, (403, "outside_scope".into()));
    assert_eq!(put("/uploads/a.jpg", None).await, (401, "token_malformed".into()));

    // Deactivating the template revokes its keys through the signed list, within its refresh.
    let config = server.dir.path().join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let edited =
        text.replace("version = 1", "version = 2").replace("project = \"demo\"", "project = \"demo\"\nactive = false");
    std::fs::write(&config, edited).unwrap();
    server.reload();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match put("/uploads/a/photo.jpg", Some(&key)).await {
            (401, code) if code == "revoked" => break,
            (201, _) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
            other => panic!("not revoked in time: {other:?}, {:?}", refresher.revocations_status()),
        }
    }
    assert_eq!(refresher.jwks_status().fetches, 1, "the JWKS was fetched once");
}

/// The documented steps of an example: the shell lines of the ```` ```sh ```` blocks of its
/// doc comment, cut at its `cargo run --example` line: the lines before it, the arguments it
/// passes (after `--`), and the lines after it.
struct Steps {
    before: String,
    args: Vec<String>,
    after: String,
}

fn documented_steps(example: &str) -> Steps {
    let source = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(example)).unwrap();
    let doc: Vec<&str> =
        source.lines().map_while(|l| l.strip_prefix("//!")).map(|l| l.strip_prefix(' ').unwrap_or(l)).collect();
    let mut lines = Vec::new();
    let mut inside = false;
    for line in doc {
        match (inside, line.trim_end()) {
            (false, "```sh") => inside = true,
            (true, "```") => inside = false,
            (true, line) => lines.push(line.to_owned()),
            _ => {}
        }
    }
    let run = lines
        .iter()
        .position(|l| l.starts_with("cargo run --example "))
        .unwrap_or_else(|| panic!("{example}: no `cargo run --example` step"));
    let command = lines[run].split(" #").next().unwrap();
    let args =
        command.split_once(" -- ").map(|(_, a)| a.split_whitespace().map(str::to_owned).collect()).unwrap_or_default();
    Steps { before: lines[..run].join("\n"), args, after: lines[run + 1..].join("\n") }
}

/// `script` with keysmith's URLs (`http://localhost:8080/…`) pointed at `keysmith` and the
/// example's address (`127.0.0.1:3000`) at `example`. The issuer (`http://localhost:8080`
/// alone) is a name, not an address, and stays.
fn addresses(script: &str, keysmith: SocketAddr, example: SocketAddr) -> String {
    script
        .replace("http://localhost:8080/", &format!("http://{keysmith}/"))
        .replace("127.0.0.1:3000", &example.to_string())
}

/// Runs `script` with bash in `dir`, each command's output on a line of its own, and checks
/// that it prints, in order, what each `# → ` comment says (`…`: anything).
fn run_and_check(script: &str, dir: &Path) {
    let mut commands = String::new();
    let mut expected = Vec::new();
    for line in script.lines() {
        if let Some(output) = line.strip_prefix("# → ") {
            expected.push(output.to_owned());
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            commands.push_str(&format!("{line}\necho\n"));
        }
    }
    assert!(!expected.is_empty(), "the steps say what they print:\n{script}");
    let out = Command::new("bash").args(["-euo", "pipefail", "-c", &commands]).current_dir(dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{script}\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let mut cursor = 0;
    for output in expected {
        for piece in output.split('…').filter(|p| !p.is_empty()) {
            let found = stdout[cursor..]
                .find(piece)
                .unwrap_or_else(|| panic!("{piece:?} (of {output:?}) not printed, in order:\n{stdout}"));
            cursor += found + piece.len();
        }
    }
}

async fn wait_for(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn free_address() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

fn shipped_config() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml")).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_service_documented_steps_run_as_written() {
    let server = TestServer::start(&shipped_config()).await;
    let steps = documented_steps("upload_service.rs");
    assert!(steps.before.trim().is_empty() && steps.args.is_empty(), "the service starts first, with its defaults");
    // `main` with its defaults (issuer = KEYSMITH_URL = http://localhost:8080), the URL replaced.
    let settings = upload_service::Settings {
        keysmith_url: server.url(""),
        issuer: "http://localhost:8080".into(),
        project: "demo".into(),
    };
    let (router, _refresher) =
        tokio::task::spawn_blocking(move || upload_service::app(&settings)).await.unwrap().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        async move { axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await },
    );
    let dir = tempfile::tempdir().unwrap();
    let after = addresses(&steps.after, server.addr, addr);
    tokio::task::spawn_blocking(move || run_and_check(&after, dir.path())).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn enforce_service_documented_steps_run_as_written() {
    let server = TestServer::start(&shipped_config()).await;
    let steps = documented_steps("enforce_service.rs");
    let addr = free_address();
    let dir = tempfile::tempdir().unwrap();
    let before = addresses(&steps.before, server.addr, addr);
    let path = dir.path().to_owned();
    tokio::task::spawn_blocking(move || {
        let out = Command::new("bash").args(["-euo", "pipefail", "-c", &before]).current_dir(&path).output().unwrap();
        assert!(out.status.success(), "{before}\n{}", String::from_utf8_lossy(&out.stderr));
    })
    .await
    .unwrap();
    // `cargo run --example enforce_service -- ARGS`, in the directory of the steps.
    let args: Vec<String> = addresses(&steps.args.join(" "), server.addr, addr).split(' ').map(str::to_owned).collect();
    assert_eq!(args.len(), 4, "{args:?}");
    let mut args = args;
    args[0] = dir.path().join(&args[0]).display().to_string();
    let service = tokio::spawn(enforce_service::run(args));
    wait_for(addr).await;
    assert!(!service.is_finished(), "{:?}", service.await);
    let after = addresses(&steps.after, server.addr, addr);
    let path = dir.path().to_owned();
    tokio::task::spawn_blocking(move || run_and_check(&after, &path)).await.unwrap();
}
