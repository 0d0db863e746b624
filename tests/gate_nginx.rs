//! `keysmith gate` behind Debian's nginx (`auth_request`) with the configuration exactly as
//! `docs/gate.md` shows it (read from the page; only its addresses replaced, inside a minimal
//! `http` block that keeps nginx's files in a temporary directory). The cases
//! (`tests/common/gate_cases.rs`) are asserted from the client's side of nginx. `tests/gate.rs`
//! has more nginx cases (revocations, Redis) with its own copy of the configuration.

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

/// Debian's nginx on a free loopback port, stopped on drop.
struct Nginx {
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Nginx {
    async fn start(gate: u16, backend: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
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
        let spawned = Command::new(binary).arg("-p").arg(dir.path()).arg("-c").arg(&path).stdin(Stdio::null()).spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!("nginx is not installed: run scripts/test-deps.sh (installs Debian's nginx)")
            }
            Err(e) => panic!("cannot start nginx: {e}"),
        };
        let mut nginx = Self { port, child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            let exited = nginx.child.try_wait().unwrap();
            let log = std::fs::read_to_string(nginx.dir.path().join("error.log")).unwrap_or_default();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "nginx did not listen on {port} ({exited:?}):\n{log}\n--- nginx.conf:\n{conf}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        nginx
    }

    /// The backend and the gate, with nginx in front; nginx passes the target as sent
    /// (`$request_uri`) and the length as `X-Original-Content-Length`.
    async fn stack() -> Stack {
        Stack::start(
            ProxyTraits { traversal_code: "invalid_path", passes_length: true, strips_every_keysmith_name: false },
            |gate, backend| async move {
                let nginx = Self::start(gate, backend).await;
                (nginx.port, nginx)
            },
        )
        .await
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_nginx_as_documented_an_allowed_upload_reaches_the_backend_with_only_the_gates_headers() {
    gate_cases::allowed_requests_reach_the_backend_with_only_the_gates_headers(&Nginx::stack().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_nginx_as_documented_every_refusal_reaches_the_client_with_the_gates_status_and_problem() {
    gate_cases::every_refusal_reaches_the_client_with_the_gates_status_and_problem(&Nginx::stack().await).await;
}

/// nginx sets `X-Original-Method` and `X-Original-URI`, and passes the client's other headers
/// to the gate: a client's `X-Forwarded-Method`/`X-Forwarded-Uri` must not describe the request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_nginx_as_documented_client_sent_forwarding_headers_cannot_change_the_decision() {
    gate_cases::client_sent_forwarding_headers_cannot_change_the_decision(&Nginx::stack().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_nginx_as_documented_the_gate_sees_the_real_client_address() {
    gate_cases::the_gate_sees_the_real_client_address(&Nginx::stack().await).await;
}
