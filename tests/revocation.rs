//! The signed revocation list and permanent keys against a verifier: forged, stale, replayed
//! and foreign lists, and every token type presented where another is expected.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

mod common;

use keysmith::dangerous::SignAnyHeader as _;
use keysmith::issuer::{Caller, NewApiKey};
use keysmith::refresh::RevocationRefresher;
use keysmith::{Config, Issuer, KeySet, Keyring, MintRequest, SigningKey, Verifier, VerifyError};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const CONFIG: &str = r#"
version = 5
issuer = "https://keys.test"
revocations_max_age = 300
[projects.demo]
[[templates]]
id = "live"
project = "demo"
permissions = ["OBJECTS_LIST"]
[[templates]]
id = "retired"
project = "demo"
active = false
permissions = ["OBJECTS_LIST"]
[[api_keys]]
id = "ak_revoked"
permissions = ["FILE_UPLOAD"]
projects = ["demo"]
active = false
[[api_keys]]
id = "ak_recorded"
permissions = ["FILE_UPLOAD"]
projects = ["demo"]
"#;

/// The id of the permanent key these tests present: recorded and active in `CONFIG` (a
/// verifier accepts only keys whose record the signed list names active).
const KEY_ID: &str = "ak_recorded";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

const T0: u64 = 1_800_000_000;

fn issuer_with(text: &str, seed: u8) -> Issuer {
    let config = Config::from_toml(text, Path::new(".")).unwrap();
    let key = SigningKey::new(&ed25519_dalek::SigningKey::from_bytes(&[seed; 32]));
    Issuer::from_parts(config, Keyring::single(key), None)
}

fn issuer() -> Issuer {
    issuer_with(CONFIG, 1)
}

fn verifier(issuer: &Issuer) -> Verifier {
    Verifier::new(KeySet::from_keys(issuer.keyring().published().iter().copied()), "https://keys.test", "demo")
}

fn api_key(issuer: &Issuer) -> String {
    api_key_at(issuer, T0)
}

/// A permanent key `issuer` creates at `now`, its random id replaced by [`KEY_ID`] and signed
/// again with the same key (seed 1), so the config's record names it.
fn api_key_at(issuer: &Issuer, now: u64) -> String {
    let new =
        NewApiKey { projects: vec!["demo".into()], permissions: vec!["FILE_UPLOAD".into()], ..NewApiKey::default() };
    let created = issuer.create_api_key(&new, at(now)).unwrap();
    let mut parts = created.secret.split('.');
    let (header, payload) = (parts.next().unwrap(), parts.next().unwrap());
    let header = String::from_utf8(common::unb64(header)).unwrap();
    let payload = String::from_utf8(common::unb64(payload)).unwrap().replace(&created.id, KEY_ID);
    SigningKey::new(&ed25519_dalek::SigningKey::from_bytes(&[1; 32])).sign_jws(&header, payload.as_bytes())
}

#[test]
fn permanent_keys_need_a_fresh_list() {
    let issuer = issuer();
    let key = api_key(&issuer);
    let v = verifier(&issuer);
    assert_eq!(v.verify_api_key(&key, at(T0 + 1)).unwrap_err(), VerifyError::RevocationsMissing);
    v.set_revocations(&issuer.revocation_list(at(T0)).unwrap().token, at(T0)).unwrap();
    assert!(v.verify_api_key(&key, at(T0 + 299)).is_ok());
    assert_eq!(v.verify_api_key(&key, at(T0 + 300)).unwrap_err(), VerifyError::RevocationsExpired);
    // A newer list makes it fresh again; an older one is a replay.
    v.set_revocations(&issuer.revocation_list(at(T0 + 290)).unwrap().token, at(T0 + 300)).unwrap();
    assert!(v.verify_api_key(&key, at(T0 + 400)).is_ok());
    let replay = issuer.revocation_list(at(T0 + 100)).unwrap().token;
    assert_eq!(v.set_revocations(&replay, at(T0 + 400)).unwrap_err(), VerifyError::RevocationsRollback);
}

#[test]
fn lists_are_verified() {
    let issuer = issuer();
    let v = verifier(&issuer);
    let list = issuer.revocation_list(at(T0)).unwrap().token;
    // Forged: the payload changed under the same signature.
    let (h, rest) = list.split_once('.').unwrap();
    let (_, s) = rest.split_once('.').unwrap();
    let forged_payload = {
        let text = String::from_utf8(common::unb64(rest.split('.').next().unwrap())).unwrap();
        common::b64(text.replace("ak_revoked", "ak_other_"))
    };
    assert_eq!(v.set_revocations(&format!("{h}.{forged_payload}.{s}"), at(T0)).unwrap_err(), VerifyError::BadSignature);
    // Signed by a key the verifier does not trust.
    let stranger = issuer_with(CONFIG, 9).revocation_list(at(T0)).unwrap().token;
    assert_eq!(v.set_revocations(&stranger, at(T0)).unwrap_err(), VerifyError::UnknownKid);
    // Another issuer with the same key.
    let foreign = issuer_with(&CONFIG.replace("https://keys.test", "https://evil.test"), 1)
        .revocation_list(at(T0))
        .unwrap()
        .token;
    assert_eq!(v.set_revocations(&foreign, at(T0)).unwrap_err(), VerifyError::WrongIssuer);
    // From the future.
    assert_eq!(
        v.set_revocations(&issuer.revocation_list(at(T0 + 60)).unwrap().token, at(T0)).unwrap_err(),
        VerifyError::IssuedInFuture
    );
    assert!(v.revocations().is_none(), "nothing refused was kept");
    v.set_revocations(&list, at(T0)).unwrap();
    let held = v.revocations().unwrap();
    assert!(held.is_api_key_revoked("ak_revoked") && held.is_template_revoked("retired"));
    assert!(!held.is_api_key_revoked("ak_other") && !held.is_template_revoked("live"));
}

#[test]
fn each_type_is_refused_where_another_is_expected() {
    let issuer = issuer();
    let v = verifier(&issuer);
    let list = issuer.revocation_list(at(T0)).unwrap().token;
    v.set_revocations(&list, at(T0)).unwrap();
    let key = api_key(&issuer);
    let access = issuer.mint("demo", "live", &MintRequest::default(), Caller::default(), at(T0)).unwrap().token;
    let wrong = |e: VerifyError| matches!(e, VerifyError::WrongType { .. });
    assert!(wrong(v.verify(&key, at(T0)).unwrap_err()), "permanent key as access token");
    assert!(wrong(v.verify(&list, at(T0)).unwrap_err()), "revocation list as access token");
    assert!(wrong(v.verify_api_key(&access, at(T0)).unwrap_err()), "access token as permanent key");
    assert!(wrong(v.verify_api_key(&list, at(T0)).unwrap_err()), "revocation list as permanent key");
    assert!(wrong(v.set_revocations(&access, at(T0)).unwrap_err()), "access token as revocation list");
    assert!(wrong(v.set_revocations(&key, at(T0)).unwrap_err()), "permanent key as revocation list");
}

#[test]
fn deactivated_templates_and_keys_are_refused_early() {
    let before = issuer_with(
        &CONFIG.replace("id = \"retired\"\nproject = \"demo\"\nactive = false", "id = \"retired\"\nproject = \"demo\""),
        1,
    );
    let token = before.mint("demo", "retired", &MintRequest::default(), Caller::default(), at(T0)).unwrap().token;
    let after = issuer();
    let v = verifier(&after);
    assert!(v.verify(&token, at(T0 + 1)).is_ok(), "without a list the token lives until exp");
    v.set_revocations(&after.revocation_list(at(T0)).unwrap().token, at(T0)).unwrap();
    assert_eq!(v.verify(&token, at(T0 + 1)).unwrap_err(), VerifyError::Revoked);

    // And the issuer itself no longer mints from it.
    let refused = after.mint("demo", "retired", &MintRequest::default(), Caller::default(), at(T0)).unwrap_err();
    assert_eq!(refused.code(), "template_inactive");
}

#[test]
fn a_10000_entry_list_is_small_enough_and_fast_to_check() {
    let ids: Vec<String> = (0..10_000).map(|i| format!("ak_{i:022}")).collect();
    let mut text = CONFIG.to_owned();
    for id in &ids {
        text.push_str(&format!(
            "[[api_keys]]\nid = \"{id}\"\npermissions = [\"FILE_UPLOAD\"]\nprojects = [\"demo\"]\nactive = false\n"
        ));
    }
    let issuer = issuer_with(&text, 1);
    let list = issuer.revocation_list(at(T0)).unwrap().token;
    assert!(list.len() < 512 * 1024, "{} bytes", list.len());
    let v = verifier(&issuer).with_revocations(&list, at(T0)).unwrap();
    assert_eq!(v.revocations().unwrap().claims().revoked_api_keys.len(), 10_001);
    let key = api_key(&issuer);
    assert!(v.verify_api_key(&key, at(T0)).is_ok());
}

#[test]
fn a_list_from_an_older_config_is_a_rollback_even_in_the_same_second() {
    let newer = issuer();
    let older = issuer_with(&CONFIG.replace("version = 5", "version = 4"), 1);
    let v = verifier(&newer);
    v.set_revocations(&newer.revocation_list(at(T0)).unwrap().token, at(T0)).unwrap();
    assert_eq!(
        v.set_revocations(&older.revocation_list(at(T0)).unwrap().token, at(T0)).unwrap_err(),
        VerifyError::RevocationsRollback
    );
    assert_eq!(v.revocations().unwrap().claims().ver, 5);
}

/// An issuer of config `version` whose lists stay fresh for 300 s.
fn issuer_at_version(version: u64) -> Issuer {
    issuer_with(&CONFIG.replace("version = 5", &format!("version = {version}")), 1)
}

#[test]
fn a_higher_version_wins_even_with_an_older_iat() {
    // Two replicas with skewed clocks: the one on the newer config signed a second earlier.
    let (older, newer) = (issuer_at_version(4), issuer_at_version(5));
    let v = verifier(&newer);
    v.set_revocations(&older.revocation_list(at(T0)).unwrap().token, at(T0)).unwrap();
    v.set_revocations(&newer.revocation_list(at(T0 - 10)).unwrap().token, at(T0)).unwrap();
    assert_eq!(v.revocations().unwrap().claims().ver, 5);
    // Within one version, the later list wins and an earlier one is a replay.
    v.set_revocations(&newer.revocation_list(at(T0 + 5)).unwrap().token, at(T0 + 5)).unwrap();
    assert_eq!(
        v.set_revocations(&newer.revocation_list(at(T0)).unwrap().token, at(T0 + 6)).unwrap_err(),
        VerifyError::RevocationsRollback
    );
    assert_eq!(v.revocations().unwrap().claims().iat, T0 + 5);
}

#[test]
fn an_expired_list_gives_way_to_any_fresh_list() {
    // A config rollback: the verifier holds a list of version 5, the issuer now signs version 4.
    let (rolled_back, newer) = (issuer_at_version(4), issuer_at_version(5));
    let v = verifier(&newer);
    let key = api_key(&rolled_back);
    v.set_revocations(&newer.revocation_list(at(T0)).unwrap().token, at(T0)).unwrap();
    // While the held list is fresh, the older version is refused (a replay looks the same).
    assert_eq!(
        v.set_revocations(&rolled_back.revocation_list(at(T0 + 100)).unwrap().token, at(T0 + 100)).unwrap_err(),
        VerifyError::RevocationsRollback
    );
    assert_eq!(v.revocations().unwrap().claims().ver, 5);
    // An older list that is itself stale never replaces the held one, expired or not.
    assert_eq!(
        v.set_revocations(&rolled_back.revocation_list(at(T0)).unwrap().token, at(T0 + 300)).unwrap_err(),
        VerifyError::RevocationsRollback
    );
    // Once the held list has expired, any fresh list is taken, and permanent keys work again.
    assert_eq!(v.verify_api_key(&key, at(T0 + 300)).unwrap_err(), VerifyError::RevocationsExpired);
    v.set_revocations(&rolled_back.revocation_list(at(T0 + 300)).unwrap().token, at(T0 + 300)).unwrap();
    assert_eq!(v.revocations().unwrap().claims().ver, 4);
    assert!(v.verify_api_key(&key, at(T0 + 301)).is_ok());
    // From then on the usual order holds again.
    assert_eq!(
        v.set_revocations(&rolled_back.revocation_list(at(T0 + 200)).unwrap().token, at(T0 + 301)).unwrap_err(),
        VerifyError::RevocationsRollback
    );
}

/// Serves whatever `body` holds at any path, one connection at a time, on loopback.
fn serve(body: std::sync::Arc<std::sync::Mutex<String>>) -> String {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/revocations", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let body = body.lock().unwrap().clone();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/jwt\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

fn wait_for(what: &str, limit: Duration, done: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn the_refresher_takes_a_newer_config_signed_earlier() {
    let (older, newer) = (issuer_at_version(4), issuer_at_version(5));
    let now = unix_now();
    let v = verifier(&newer);
    v.set_revocations(&older.revocation_list(at(now)).unwrap().token, at(now)).unwrap();
    let body = std::sync::Arc::new(std::sync::Mutex::new(newer.revocation_list(at(now - 10)).unwrap().token));
    let refresher = RevocationRefresher::spawn(v.clone(), serve(body), Duration::from_millis(200));
    wait_for("the version 5 list", Duration::from_secs(20), || v.revocations().unwrap().claims().ver == 5);
    assert!(refresher.status().last_error.is_none(), "{:?}", refresher.status());
}

#[test]
fn the_refresher_recovers_from_a_config_rollback_when_the_held_list_expires() {
    let (rolled_back, newer) = (issuer_at_version(4), issuer_at_version(5));
    let now = unix_now();
    let key = api_key_at(&rolled_back, now);
    let v = verifier(&newer);
    // The held list (version 5) has 3 s left; the issuer was rolled back to version 4.
    v.set_revocations(&newer.revocation_list(at(now - 297)).unwrap().token, at(now)).unwrap();
    let body = std::sync::Arc::new(std::sync::Mutex::new(rolled_back.revocation_list(at(now)).unwrap().token));
    let refresher =
        RevocationRefresher::spawn(v.clone(), serve(std::sync::Arc::clone(&body)), Duration::from_millis(200));
    wait_for("a refused fetch", Duration::from_secs(20), || refresher.status().last_error.is_some());
    assert_eq!(v.revocations().unwrap().claims().ver, 5, "a fresh held list is not replaced by an older version");
    // Keep serving a fresh version 4 list; once the held one expires it is taken.
    *body.lock().unwrap() = rolled_back.revocation_list(SystemTime::now()).unwrap().token;
    wait_for("the version 4 list", Duration::from_secs(30), || v.revocations().unwrap().claims().ver == 4);
    assert!(v.verify_api_key(&key, SystemTime::now()).is_ok());
}

/// A record's `expires_at` reaches verifiers: once it has passed, the list signed after it
/// names the key, so a backend refuses it offline.
#[test]
fn an_expired_record_is_on_the_list_signed_after_it() {
    let new =
        NewApiKey { projects: vec!["demo".into()], permissions: vec!["FILE_UPLOAD".into()], ..NewApiKey::default() };
    let created = issuer().create_api_key(&new, at(T0)).unwrap();
    let (id, key) = (created.id, created.secret);
    let record = format!(
        "{CONFIG}[[api_keys]]\nid = \"{id}\"\npermissions = [\"FILE_UPLOAD\"]\nprojects = [\"demo\"]\nexpires_at = \"2027-01-15T08:00:50Z\"\n"
    );
    let issuer = issuer_with(&record, 1);
    let v = verifier(&issuer);
    // Signed before the expiry: the key is still good.
    v.set_revocations(&issuer.revocation_list(at(T0)).unwrap().token, at(T0)).unwrap();
    assert!(v.verify_api_key(&key, at(T0 + 10)).is_ok());
    // Signed after it: refused downstream.
    v.set_revocations(&issuer.revocation_list(at(T0 + 100)).unwrap().token, at(T0 + 100)).unwrap();
    assert_eq!(v.verify_api_key(&key, at(T0 + 101)).unwrap_err(), VerifyError::Revoked);
    assert!(v.revocations().unwrap().is_api_key_revoked(&id));
}

/// A replayed expired list with a higher `ver` must not displace a fresh one: replayed at
/// every poll it would refuse every permanent key.
#[test]
fn an_expired_list_never_displaces_a_fresh_one() {
    let issuer = issuer();
    let key = api_key(&issuer);
    let v = verifier(&issuer);
    v.set_revocations(&issuer.revocation_list(at(T0)).unwrap().token, at(T0)).unwrap();
    let newer = issuer_with(&CONFIG.replace("version = 5", "version = 6"), 1);
    let expired = newer.revocation_list(at(T0 - 1000)).unwrap().token;
    assert_eq!(v.set_revocations(&expired, at(T0 + 10)).unwrap_err(), VerifyError::RevocationsExpired);
    assert_eq!(v.revocations().unwrap().claims().ver, 5);
    assert!(v.verify_api_key(&key, at(T0 + 10)).is_ok());
    // A fresh list of the higher `ver` still wins.
    v.set_revocations(&newer.revocation_list(at(T0 + 5)).unwrap().token, at(T0 + 10)).unwrap();
    assert_eq!(v.revocations().unwrap().claims().ver, 6);
}
