//! `keysmith gate` behind Debian's Caddy (`forward_auth`), with the Caddyfile taken from
//! `docs/gate.md` (only its addresses replaced), so the documented configuration is the tested
//! one. Every part is real and on free loopback ports: Caddy, the gate binary and an upload
//! backend that reports the `X-Keysmith-*` headers and the body it received. The cases
//! (`tests/common/gate_cases.rs`) are asserted from the client's side of Caddy. A missing
//! Caddy fails the test with a message naming `scripts/test-deps.sh`.

#![cfg(feature = "gate")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

mod common;
#[path = "common/gate_cases.rs"]
mod gate_cases;
#[path = "common/gate.rs"]
mod gate_parts;

use gate_cases::{ProxyTraits, Stack};
use gate_parts::{doc_block, free_port, gate_doc, substitute};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

    /// The backend and the gate, with Caddy in front; Caddy passes dot segments as sent.
    async fn stack() -> Stack {
        Stack::start(
            ProxyTraits { traversal_code: "invalid_path", passes_length: true, strips_every_keysmith_name: true },
            |gate, backend| async move {
                let caddy = Self::start(gate, backend).await;
                (caddy.port, caddy)
            },
        )
        .await
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("caddy.log")).unwrap_or_default()
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_caddy_an_allowed_upload_reaches_the_backend_with_only_the_gates_headers() {
    gate_cases::allowed_requests_reach_the_backend_with_only_the_gates_headers(&Caddy::stack().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_caddy_every_refusal_reaches_the_client_with_the_gates_status_and_problem() {
    gate_cases::every_refusal_reaches_the_client_with_the_gates_status_and_problem(&Caddy::stack().await).await;
}

/// Caddy sets `X-Forwarded-Method`, `X-Forwarded-Uri` and (with the documented `header_up`)
/// `X-Original-Content-Length` itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_caddy_client_sent_forwarding_headers_cannot_change_the_decision() {
    gate_cases::client_sent_forwarding_headers_cannot_change_the_decision(&Caddy::stack().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_caddy_the_gate_sees_the_real_client_address() {
    gate_cases::the_gate_sees_the_real_client_address(&Caddy::stack().await).await;
}
