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

use gate_cases::{ProxyTraits, Stack, proxy_cases};
use gate_parts::{Proxy, doc_block, gate_doc, substitute};
use std::path::Path;
use std::process::Command;

/// Debian's nginx with the server block of `docs/gate.md` (its addresses replaced) inside an
/// `http` block that keeps its files in the proxy's temporary directory. nginx sets
/// `X-Original-Method` and `X-Original-URI`, passes the target as sent (`$request_uri`) and the
/// length as `X-Original-Content-Length`, and passes the client's other headers to the gate, so
/// a client's `X-Forwarded-Method`/`X-Forwarded-Uri` must not describe the request. It can only
/// replace the `X-Keysmith-*` names it sets.
async fn nginx(gate: u16, backend: u16) -> Proxy {
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

proxy_cases!(Stack::start(
    ProxyTraits { traversal_code: "invalid_path", passes_length: true, strips_every_keysmith_name: false },
    |gate, backend| async move {
        let proxy = nginx(gate, backend).await;
        (proxy.port, proxy)
    },
));
