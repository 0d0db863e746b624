//! The signed revocation list and permanent keys against a verifier: forged, stale, replayed
//! and foreign lists, and every token type presented where another is expected.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

use keysmith::issue::{Caller, NewApiKey};
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
"#;

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
    let new =
        NewApiKey { projects: vec!["demo".into()], permissions: vec!["FILE_UPLOAD".into()], ..NewApiKey::default() };
    issuer.create_api_key(&new, at(T0)).secret
}

#[test]
fn permanent_keys_need_a_fresh_list() {
    let issuer = issuer();
    let key = api_key(&issuer);
    let v = verifier(&issuer);
    assert_eq!(v.verify_api_key(&key, at(T0 + 1)).unwrap_err(), VerifyError::RevocationsMissing);
    v.set_revocations(&issuer.revocation_list(at(T0)).token, at(T0)).unwrap();
    assert!(v.verify_api_key(&key, at(T0 + 299)).is_ok());
    assert_eq!(v.verify_api_key(&key, at(T0 + 300)).unwrap_err(), VerifyError::RevocationsExpired);
    // A newer list makes it fresh again; an older one is a replay.
    v.set_revocations(&issuer.revocation_list(at(T0 + 290)).token, at(T0 + 300)).unwrap();
    assert!(v.verify_api_key(&key, at(T0 + 400)).is_ok());
    let replay = issuer.revocation_list(at(T0 + 100)).token;
    assert_eq!(v.set_revocations(&replay, at(T0 + 400)).unwrap_err(), VerifyError::RevocationsRollback);
}

#[test]
fn lists_are_verified() {
    let issuer = issuer();
    let v = verifier(&issuer);
    let list = issuer.revocation_list(at(T0)).token;
    // Forged: the payload changed under the same signature.
    let (h, rest) = list.split_once('.').unwrap();
    let (_, s) = rest.split_once('.').unwrap();
    let forged_payload = {
        use base64::Engine as _;
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let text = String::from_utf8(e.decode(rest.split('.').next().unwrap()).unwrap()).unwrap();
        e.encode(text.replace("ak_revoked", "ak_other_"))
    };
    assert_eq!(v.set_revocations(&format!("{h}.{forged_payload}.{s}"), at(T0)).unwrap_err(), VerifyError::BadSignature);
    // Signed by a key the verifier does not trust.
    let stranger = issuer_with(CONFIG, 9).revocation_list(at(T0)).token;
    assert_eq!(v.set_revocations(&stranger, at(T0)).unwrap_err(), VerifyError::UnknownKid);
    // Another issuer with the same key.
    let foreign =
        issuer_with(&CONFIG.replace("https://keys.test", "https://evil.test"), 1).revocation_list(at(T0)).token;
    assert_eq!(v.set_revocations(&foreign, at(T0)).unwrap_err(), VerifyError::WrongIssuer);
    // From the future.
    assert_eq!(
        v.set_revocations(&issuer.revocation_list(at(T0 + 60)).token, at(T0)).unwrap_err(),
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
    let list = issuer.revocation_list(at(T0)).token;
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
    v.set_revocations(&after.revocation_list(at(T0)).token, at(T0)).unwrap();
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
    let list = issuer.revocation_list(at(T0)).token;
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
    v.set_revocations(&newer.revocation_list(at(T0)).token, at(T0)).unwrap();
    assert_eq!(
        v.set_revocations(&older.revocation_list(at(T0)).token, at(T0)).unwrap_err(),
        VerifyError::RevocationsRollback
    );
    assert_eq!(v.revocations().unwrap().claims().ver, 5);
}
