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

use gate_cases::{ProxyTraits, Stack, proxy_cases};
use gate_parts::{Proxy, doc_block, gate_doc, substitute};
use std::path::Path;
use std::process::Command;

/// Debian's Caddy with the Caddyfile of `docs/gate.md` (the site address and the two upstream
/// addresses replaced), after global options that keep the test to itself: no admin endpoint,
/// no HTTPS, loopback only, and its storage (and the config autosave that Caddy 2.6 cannot turn
/// off) in the proxy's temporary directory. Caddy sets `X-Forwarded-Method`, `X-Forwarded-Uri`
/// and (with the documented `header_up`) `X-Original-Content-Length` itself, and passes dot
/// segments as sent.
async fn caddy(gate: u16, backend: u16) -> Proxy {
    let (dir, port) = Proxy::prepare();
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
    let binary = ["/usr/bin/caddy"].into_iter().find(|b| Path::new(b).exists()).unwrap_or("caddy");
    let mut command = Command::new(binary);
    command
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&path)
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("XDG_DATA_HOME", dir.path().join("data"));
    Proxy::start("caddy", command, (dir, port), &caddyfile, "installs Debian's caddy").await
}

proxy_cases!(Stack::start(
    ProxyTraits { traversal_code: "invalid_path", passes_length: true, strips_every_keysmith_name: true },
    |gate, backend| async move {
        let proxy = caddy(gate, backend).await;
        (proxy.port, proxy)
    },
));
