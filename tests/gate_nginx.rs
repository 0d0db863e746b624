//! `keysmith gate` behind Debian's nginx (`auth_request`) with the configuration exactly as
//! `docs/gate.md` shows it (read from the page; only its addresses replaced, inside a minimal
//! `http` block that keeps nginx's files in a temporary directory). The cases
//! (`tests/common/gate_cases.rs`) are asserted from the client's side of nginx. `tests/gate.rs`
//! runs more cases (revocations, Redis) through the same nginx (`gate_parts::nginx`).

#![cfg(feature = "gate")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

mod common;
#[path = "common/gate_cases.rs"]
mod gate_cases;
#[path = "common/gate.rs"]
mod gate_parts;

use gate_cases::{ProxyTraits, Stack, proxy_cases};
use gate_parts::nginx;

proxy_cases!(Stack::start(
    ProxyTraits { traversal_code: "invalid_path", passes_length: true, strips_every_keysmith_name: false },
    |gate, backend| async move {
        let proxy = nginx(gate, backend).await;
        (proxy.port, proxy)
    },
));
