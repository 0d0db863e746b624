//! Shared helpers: start a real keysmith server on a loopback port.

#![allow(dead_code)] // each test crate uses a different subset.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test setup stops at the first failure

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tokio::sync::oneshot;

/// The `keysmith` binary, ready for arguments: the one way the tests start it.
pub fn keysmith() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_keysmith"))
}

/// Unpadded base64url, the JWS alphabet.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes unpadded base64url.
pub fn unb64(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).unwrap()
}

/// A running server and what a test needs to talk to it.
pub struct TestServer {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub handle: keysmith::server::IssuerHandle,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Writes `config` and a fresh key into a temporary directory and serves it on 127.0.0.1:0.
    pub async fn start(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        keysmith::keys::generate_key_file(&dir.path().join("keys"), chrono::Utc::now()).unwrap();
        Self::start_in(dir).await
    }

    /// Serves the `config.toml` and `keys/` already in `dir`.
    pub async fn start_in(dir: tempfile::TempDir) -> Self {
        Self::start_with(dir, keysmith::server::ConnectionLimits::default()).await
    }

    /// As [`TestServer::start_in`], with explicit limits.
    pub async fn start_with(dir: tempfile::TempDir, limits: keysmith::server::ConnectionLimits) -> Self {
        let source = keysmith::server::Source {
            config: dir.path().join("config.toml"),
            keys: dir.path().join("keys"),
            allow_rollback: false,
            signing_key: None,
        };
        let handle = keysmith::server::IssuerHandle::load(source).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(keysmith::server::serve_with(listener, handle.clone(), limits, async move {
            let _ = rx.await;
        }));
        Self { addr, dir, handle, shutdown: Some(tx), task: Some(task) }
    }

    /// Watches the config and keys for changes, as `keysmith serve` does.
    pub fn watch(&self, interval: std::time::Duration) {
        tokio::spawn(keysmith::server::watch(self.handle.clone(), interval));
    }

    /// Reloads config and keys from the server's directory, as SIGHUP does.
    pub fn try_reload(&self) -> keysmith::server::ReloadOutcome {
        self.handle.reload()
    }

    /// Reloads and insists that the new config was taken.
    pub fn reload(&self) {
        let outcome = self.handle.reload();
        assert!(matches!(outcome, keysmith::server::ReloadOutcome::Reloaded { .. }), "{outcome:?}");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Asks the server to stop and waits until it has drained.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.take().unwrap().await.unwrap()
    }
}

/// The GeoIP country database fetched by `scripts/test-deps.sh`. Tests that need it fail (never
/// skip) when it is missing, and say how to get it.
pub fn geoip_database() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".testdata/geo-whois-asn-country.mmdb");
    assert!(
        path.is_file(),
        "{} is missing: run `scripts/test-deps.sh` (the README's test command does)",
        path.display()
    );
    path
}
