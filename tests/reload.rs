//! Editing the config under a running server with concurrent load: a good edit shows in new
//! keys within 2 s, each kind of bad edit leaves the last good version serving, and no request
//! fails throughout. The config is a Kubernetes-style symlink (`config.toml -> ..data/config.toml`,
//! `..data -> ..v1`) and edits arrive as editor-style replacements and as symlink swaps.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

mod common;

use common::TestServer;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn config(version: u64, extra_permission: &str) -> String {
    format!(
        r#"# Served by the reload test.
version = {version}
issuer = "https://keys.test"
[server]
# The load below comes from one address; this test is about reloads, not rate limits.
rate_limit_per_minute = 0
[projects.demo]
[[templates]]
id = "widget"
project = "demo"
permissions = ["OBJECTS_LIST"{extra_permission}]
"#
    )
}

/// Replaces `path` the way editors do: write a temporary file, rename it over the original.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Publishes `text` as a new ConfigMap revision: a new directory, then an atomic swap of the
/// `..data` symlink, as the kubelet does.
#[cfg(unix)]
fn configmap_swap(root: &Path, revision: &str, text: &str) {
    let dir = root.join(revision);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), text).unwrap();
    let tmp = root.join("..data_tmp");
    std::os::unix::fs::symlink(revision, &tmp).unwrap();
    std::fs::rename(&tmp, root.join("..data")).unwrap();
}

fn ver_of(key: &str) -> u64 {
    let payload = common::unb64(key.split('.').nth(1).unwrap());
    serde_json::from_slice::<Value>(&payload).unwrap()["ver"].as_u64().unwrap()
}

async fn status(server: &TestServer) -> Value {
    reqwest::get(server.url("/v1/status")).await.unwrap().json().await.unwrap()
}

async fn wait_for<F: Fn(&Value) -> bool>(server: &TestServer, what: &str, ok: F) -> Duration {
    let start = Instant::now();
    loop {
        let s = status(server).await;
        if ok(&s) {
            return start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(2), "{what} not seen within 2 s: {s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn edits_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("..v1")).unwrap();
    std::fs::write(root.join("..v1/config.toml"), config(1, "")).unwrap();
    std::os::unix::fs::symlink("..v1", root.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/config.toml", root.join("config.toml")).unwrap();
    keysmith::keys::generate_key_file(&root.join("keys"), chrono::Utc::now()).unwrap();
    let server = TestServer::start_in(dir).await;
    tokio::spawn(keysmith::server::watch(server.handle.clone(), Duration::from_millis(50)));
    let root = server.dir.path().to_owned();
    let live = root.join("..data/config.toml");

    // Load: clients minting continuously, recording failures and the newest `ver` seen.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed, newest) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut clients = Vec::new();
    for _ in 0..6 {
        let (stop, ok, failed, newest) = (stop.clone(), ok.clone(), failed.clone(), newest.clone());
        let url = server.url("/demo/v1/key/widget");
        clients.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            while !stop.load(Ordering::Relaxed) {
                match client.get(&url).send().await {
                    Ok(r) if r.status().is_success() => {
                        let body: Value = r.json().await.unwrap();
                        newest.fetch_max(ver_of(body["key"].as_str().unwrap()), Ordering::Relaxed);
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let wait_ver = |v: u64| {
        let newest = newest.clone();
        async move {
            let start = Instant::now();
            while newest.load(Ordering::Relaxed) < v {
                assert!(start.elapsed() < Duration::from_secs(2), "ver {v} not minted within 2 s");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            start.elapsed()
        }
    };

    // A good edit, replaced editor-style: new keys carry ver 2 within 2 s.
    replace(&live, &config(2, ", \"OBJECTS_FETCH\""));
    let took = wait_ver(2).await;
    eprintln!("version 2 minted {took:?} after the edit");

    // Bad edits of each kind: rejected with a reason, version 2 keeps serving.
    // /v1/status shows the code; the full reason is the operator's (log, `last_rejected`).
    let bad = [
        (config(3, "").replace("[[templates]]", "[[templates"), "config_invalid", "TOML error at line"),
        (config(3, ", \"FILE_TELEPORT\""), "config_invalid", "templates[0].permissions[1]: unknown permission"),
        (config(2, ", \"FILE_UPLOAD\""), "version_not_bumped", "version is still 2"),
        (config(1, ""), "rollback_refused", "lower than the running version 2"),
    ];
    for (text, code, reason) in bad {
        replace(&live, &text);
        wait_for(&server, reason, |_| {
            server.handle.last_rejected().is_some_and(|r| r.reason.contains(reason) && r.code == code)
        })
        .await;
        let s = status(&server).await;
        assert_eq!(s["config_version"], 2, "{s}");
        assert_eq!(s["last_rejected"]["code"], code, "{s}");
        assert!(s["last_rejected"]["at"].is_string());
        assert!(s["last_rejected"].get("reason").is_none(), "{s}");
    }
    assert_eq!(status(&server).await["last_rejected"]["version"], 1);

    // A ConfigMap revision swap: the symlink changes, the file at the path is new.
    configmap_swap(&root, "..v3", &config(3, ""));
    let took = wait_ver(3).await;
    eprintln!("version 3 minted {took:?} after the symlink swap");

    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("{ok} keys minted during the edits, {failed} failed");
    assert_eq!(failed, 0, "no request may fail during reloads");
    assert!(ok > 50, "the load actually ran ({ok} requests)");
    assert_eq!(newest.load(Ordering::Relaxed), 3);
}

#[tokio::test]
async fn status_reports_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), config(7, "")).unwrap();
    keysmith::keys::generate_key_file(&dir.path().join("keys"), chrono::Utc::now()).unwrap();
    let server = TestServer::start_in(dir).await;
    let s = status(&server).await;
    assert_eq!(s["config_version"], 7);
    assert_eq!(s["config_sha256"].as_str().unwrap().len(), 64);
    assert!(chrono::DateTime::parse_from_rfc3339(s["loaded_at"].as_str().unwrap()).is_ok());
    assert!(s["last_rejected"].is_null());
    let kid = s["signing_kid"].as_str().unwrap();
    assert_eq!(s["kids"], serde_json::json!([kid]));
    let pem = std::fs::read_dir(server.dir.path().join("keys")).unwrap().next().unwrap().unwrap().path();
    let pem = std::fs::read_to_string(pem).unwrap();
    let body = s.to_string();
    for line in pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!body.contains(line), "private key material in /v1/status");
    }

    // An unchanged file is not a reload; a lower version is refused unless rollback is allowed.
    assert_eq!(server.try_reload(), keysmith::server::ReloadOutcome::Unchanged);
    std::fs::write(server.dir.path().join("config.toml"), config(6, "")).unwrap();
    assert!(matches!(server.try_reload(), keysmith::server::ReloadOutcome::Rejected(_)));
    let source = keysmith::server::Source {
        config: server.dir.path().join("config.toml"),
        keys: server.dir.path().join("keys"),
        allow_rollback: true,
        signing_key: None,
    };
    std::fs::write(server.dir.path().join("config.toml"), config(7, "")).unwrap();
    let permissive = keysmith::server::IssuerHandle::load(source).unwrap();
    std::fs::write(server.dir.path().join("config.toml"), config(6, "")).unwrap();
    assert_eq!(permissive.reload(), keysmith::server::ReloadOutcome::Reloaded { from: 7, to: 6 });
}
