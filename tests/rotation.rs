//! Signing keys rotate without a single verification failure: two instances share config and
//! keys; keys minted by either verify against the JWKS of the other; under continuous minting
//! and verifying (the verifier refreshing its JWKS) across two rotations, nothing fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

mod common;

use common::TestServer;
use keysmith::refresh::JwksRefresher;
use keysmith::{KeySet, Verifier};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

const CONFIG: &str = r#"
version = 1
issuer = "https://keys.test"
# Verifiers may cache the JWKS for 2 s: a new key is published that long before it signs.
jwks_max_age = 2
[server]
rate_limit_per_minute = 0
[projects.demo]
[[templates]]
id = "widget"
project = "demo"
permissions = ["OBJECTS_LIST"]
expiration_duration = 5
"#;

fn keys_cli(dir: &Path, args: &[&str]) -> String {
    let out = common::keysmith()
        .arg("keys")
        .args(args)
        .arg("--keys")
        .arg(dir.join("keys"))
        .arg("--config")
        .arg(dir.join("config.toml"))
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "keys {args:?}: {text}");
    text
}

async fn jwks_kids(server: &TestServer) -> Vec<String> {
    let jwks: Value = reqwest::get(server.url("/.well-known/jwks.json")).await.unwrap().json().await.unwrap();
    jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
}

async fn signing_kid(server: &TestServer) -> String {
    let s: Value = reqwest::get(server.url("/v1/status")).await.unwrap().json().await.unwrap();
    s["signing_kid"].as_str().unwrap().to_owned()
}

/// A second instance on the same files: its directory links to the first one's config and keys.
async fn twin(first: &TestServer) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(first.dir.path().join("config.toml"), dir.path().join("config.toml")).unwrap();
        std::os::unix::fs::symlink(first.dir.path().join("keys"), dir.path().join("keys")).unwrap();
    }
    TestServer::start_in(dir).await
}

async fn wait_until(what: &str, f: impl AsyncFn() -> bool) {
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_rotate_twice_under_load_without_a_failure() {
    let a = TestServer::start(CONFIG).await;
    let b = twin(&a).await;
    a.watch(Duration::from_millis(50));
    b.watch(Duration::from_millis(50));
    let dir = a.dir.path().to_owned();

    // The JWKS is cacheable for exactly the lifetime rotations wait for.
    let jwks = reqwest::get(a.url("/.well-known/jwks.json")).await.unwrap();
    assert_eq!(jwks.headers()["cache-control"], "public, max-age=2");

    // A downstream verifier that only knows B's JWKS URL and keeps it fresh.
    let keys = reqwest::get(b.url("/.well-known/jwks.json")).await.unwrap().bytes().await.unwrap();
    let verifier = Verifier::new(KeySet::from_jwks_json(&keys).unwrap(), "https://keys.test", "demo");
    let refresher = JwksRefresher::spawn(
        verifier.clone(),
        b.url("/.well-known/jwks.json"),
        Duration::from_millis(200),
        Duration::from_millis(100),
    );

    // Load: mint on both instances, verify every key downstream.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let kids_seen = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let mut workers = Vec::new();
    for url in [
        a.url("/demo/v1/key/widget"),
        b.url("/demo/v1/key/widget"),
        a.url("/demo/v1/key/widget"),
        b.url("/demo/v1/key/widget"),
    ] {
        let (stop, ok, failed, verifier, kids_seen) =
            (stop.clone(), ok.clone(), failed.clone(), verifier.clone(), kids_seen.clone());
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            while !stop.load(Ordering::Relaxed) {
                let minted: Value = match client.get(&url).send().await {
                    Ok(r) if r.status().is_success() => r.json().await.unwrap(),
                    other => panic!("mint failed: {other:?}"),
                };
                let token = minted["key"].as_str().unwrap();
                match verifier.verify(token, SystemTime::now()) {
                    Ok(_) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        let header = token.split('.').next().unwrap();
                        kids_seen.lock().unwrap().insert(header.to_owned());
                    }
                    Err(e) => {
                        eprintln!("verification failed: {e}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }

    let first = signing_kid(&a).await;
    let parse = |out: &str, label: &str| out.split_whitespace().skip_while(|w| *w != label).nth(1).unwrap().to_owned();
    // The first rotation publishes a next key (there is none yet).
    let mut next = parse(&keys_cli(&dir, &["rotate"]), "next");
    for round in 1..=2 {
        wait_until("both instances to publish the next key", async || {
            jwks_kids(&a).await.contains(&next) && jwks_kids(&b).await.contains(&next)
        })
        .await;
        let active_before = signing_kid(&a).await;
        assert_ne!(active_before, next, "round {round}: the next key does not sign yet");
        // Promoting before verifiers can have fetched it is refused...
        let early = common::keysmith()
            .args(["keys", "rotate", "--keys"])
            .arg(dir.join("keys"))
            .arg("--config")
            .arg(dir.join("config.toml"))
            .output()
            .unwrap();
        assert_eq!(early.status.code(), Some(1), "round {round}");
        assert!(String::from_utf8_lossy(&early.stderr).contains("wait"));
        // ...and done once the JWKS cache lifetime has passed.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let out = keys_cli(&dir, &["rotate"]);
        assert_eq!(parse(&out, "active"), next, "round {round}: {out}");
        assert_eq!(parse(&out, "retired"), active_before);
        wait_until("both instances to sign with the promoted key", async || {
            signing_kid(&a).await == next && signing_kid(&b).await == next
        })
        .await;
        // The retired key is still published for the tokens it signed.
        assert!(jwks_kids(&a).await.contains(&active_before) && jwks_kids(&b).await.contains(&active_before));
        next = parse(&out, "next");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_ne!(signing_kid(&a).await, first);

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("{ok} keys minted on two instances and verified downstream across two rotations; {failed} failed");
    assert_eq!(failed, 0, "no verification may fail across rotations");
    assert!(kids_seen.lock().unwrap().len() >= 3, "keys from three signing keys were verified");
    assert!(refresher.status().fetches >= 2);

    // The first key is retired; removing it while its tokens may live is refused.
    let list = keys_cli(&dir, &["list"]);
    assert!(list.contains(&first) && list.contains("retired"), "{list}");
    let refused = common::keysmith()
        .args(["keys", "remove", &first, "--keys"])
        .arg(dir.join("keys"))
        .arg("--config")
        .arg(dir.join("config.toml"))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("tokens it signed"));
}

#[tokio::test]
async fn unknown_kids_refresh_the_jwks_at_most_once_per_gap() {
    let server = TestServer::start(CONFIG).await;
    let keys = reqwest::get(server.url("/.well-known/jwks.json")).await.unwrap().bytes().await.unwrap();
    let verifier = Verifier::new(KeySet::from_jwks_json(&keys).unwrap(), "https://keys.test", "demo");
    let refresher = JwksRefresher::spawn(
        verifier.clone(),
        server.url("/.well-known/jwks.json"),
        Duration::from_secs(60),
        Duration::from_millis(500),
    );
    let start = Instant::now();
    while refresher.status().fetches < 1 {
        assert!(start.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A storm of forged kids for 1.2 s: at most one fetch per 500 ms gap.
    let forged = {
        format!(
            "{}.{}.{}",
            common::b64(r#"{"alg":"EdDSA","typ":"at+jwt","kid":"forged"}"#),
            common::b64("{}"),
            common::b64([0u8; 64])
        )
    };
    let storm = Instant::now();
    while storm.elapsed() < Duration::from_millis(1200) {
        assert_eq!(verifier.verify(&forged, SystemTime::now()).unwrap_err(), keysmith::VerifyError::UnknownKid);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let fetches = refresher.status().fetches;
    assert!((2..=4).contains(&fetches), "{fetches} fetches for hundreds of forged kids");
}

/// A key the record makes active before this process has published it long enough (e.g. two
/// forced rotations while its reloads were blocked) does not sign yet: the current key keeps
/// signing until the new one has been in this JWKS for `jwks_max_age`.
#[tokio::test(flavor = "multi_thread")]
async fn a_key_never_signs_before_this_process_has_published_it() {
    let server = TestServer::start(CONFIG).await;
    let dir = server.dir.path().to_owned();
    keys_cli(&dir, &["rotate"]); // publishes a next key
    server.reload();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    keys_cli(&dir, &["rotate"]); // promotes it: it has been published for jwks_max_age
    server.reload();
    let settled = signing_kid(&server).await;
    // Two forced rotations in a row: the record's new active key was never published here.
    keys_cli(&dir, &["rotate", "--force"]);
    let out = keys_cli(&dir, &["rotate", "--force"]);
    let wanted = out.split_whitespace().skip_while(|w| *w != "active").nth(1).unwrap().to_owned();
    server.reload();
    let status: Value = reqwest::get(server.url("/v1/status")).await.unwrap().json().await.unwrap();
    assert_eq!(status["signing_kid"], settled.as_str(), "the key verifiers already have keeps signing");
    assert_eq!(status["pending_signing_kid"], wanted.as_str());
    assert!(jwks_kids(&server).await.contains(&wanted), "the new key is published meanwhile");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // Once it has been published for jwks_max_age, a reload (the watcher makes one) switches.
    assert!(matches!(server.try_reload(), keysmith::server::ReloadOutcome::Reloaded { .. }));
    assert_eq!(signing_kid(&server).await, wanted);
}

/// A corrupt or inconsistent key record is a rejected reload, like a bad config: the running
/// keys keep signing, `/v1/status` shows the code and the operator gets the reason.
#[tokio::test]
async fn a_broken_key_record_keeps_the_running_keys() {
    let server = TestServer::start(CONFIG).await;
    let dir = server.dir.path().to_owned();
    keys_cli(&dir, &["rotate"]);
    server.reload();
    let signing = signing_kid(&server).await;
    let record = dir.join("keys/keyring.toml");
    let good = std::fs::read_to_string(&record).unwrap();
    for (broken, why) in [
        ("keys = [[[", "keyring.toml"),
        (good.replace("state = \"next\"", "state = \"active\"").as_str(), "exactly one key must be active"),
        (good.replace("state = \"next\"", "state = \"sideways\"").as_str(), "keyring.toml"),
    ] {
        std::fs::write(&record, broken).unwrap();
        let outcome = server.try_reload();
        let keysmith::server::ReloadOutcome::Rejected(rejection) = outcome else { panic!("{broken}: {outcome:?}") };
        assert!(rejection.reason.contains(why), "{}", rejection.reason);
        assert_eq!(rejection.code, "keys_invalid");
        assert_eq!(signing_kid(&server).await, signing);
        let minted = reqwest::get(server.url("/demo/v1/key/widget")).await.unwrap();
        assert!(minted.status().is_success(), "the service keeps minting");
    }
}

/// Sets a key file's modification time `age` into the past, as if it had been published then.
fn age_file(path: &Path, age: Duration) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

/// A restart (here: a second instance on the same files) after `keysmith keygen` does not sign
/// with the new key before it has been published for `jwks_max_age` (counted from its file
/// time): the previous key signs meanwhile, and the new one takes over once due.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_server_does_not_sign_with_a_key_nobody_has_published() {
    let first = TestServer::start(CONFIG).await;
    let dir = first.dir.path().to_owned();
    let old = signing_kid(&first).await;
    let old_file = std::fs::read_dir(dir.join("keys")).unwrap().next().unwrap().unwrap().path();
    age_file(&old_file, Duration::from_secs(3600));
    let out = common::keysmith().arg("keygen").arg("--keys").arg(dir.join("keys")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let restarted = twin(&first).await;
    let status: Value = reqwest::get(restarted.url("/v1/status")).await.unwrap().json().await.unwrap();
    assert_eq!(status["signing_kid"], old.as_str(), "the published key keeps signing after a restart");
    let new = status["pending_signing_kid"].as_str().expect("the new key waits").to_owned();
    assert_ne!(new, old);
    assert!(jwks_kids(&restarted).await.contains(&new), "the new key is published meanwhile");

    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(matches!(restarted.try_reload(), keysmith::server::ReloadOutcome::Reloaded { .. }));
    assert_eq!(signing_kid(&restarted).await, new, "once published for jwks_max_age it signs");
}

/// The same with a lifecycle record: after a forced rotation, a new instance signs with the
/// key that signed before (the record says when each key was published), not with the one the
/// record has just made active.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_new_replica_after_a_forced_rotation_signs_with_the_previous_key() {
    let first = TestServer::start(CONFIG).await;
    let dir = first.dir.path().to_owned();
    keys_cli(&dir, &["rotate"]); // adopts the key directory and publishes a next key
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let out = keys_cli(&dir, &["rotate"]); // that key signs; a new next key is published
    let previous = out.split_whitespace().skip_while(|w| *w != "active").nth(1).unwrap().to_owned();
    let out = keys_cli(&dir, &["rotate", "--force"]); // ...and is promoted at once
    let wanted = out.split_whitespace().skip_while(|w| *w != "active").nth(1).unwrap().to_owned();

    let replica = twin(&first).await;
    let status: Value = reqwest::get(replica.url("/v1/status")).await.unwrap().json().await.unwrap();
    assert_eq!(status["signing_kid"], previous.as_str(), "{status}");
    assert_eq!(status["pending_signing_kid"], wanted.as_str());
}

/// A fresh install with a single, brand-new key starts and signs with it.
#[tokio::test]
async fn a_fresh_install_signs_with_its_only_key() {
    let server = TestServer::start(CONFIG).await;
    let status: Value = reqwest::get(server.url("/v1/status")).await.unwrap().json().await.unwrap();
    assert!(status["signing_kid"].is_string());
    assert!(status["pending_signing_kid"].is_null());
    assert_eq!(reqwest::get(server.url("/demo/v1/key/widget")).await.unwrap().status(), 200);
}
