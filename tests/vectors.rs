//! Known-answer tests: RFC 8037 Appendix A, the Wycheproof Ed25519 vectors, and golden tokens.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

use ed25519_dalek::VerifyingKey;
use keysmith::jwk::{KeySet, PublicJwk, thumbprint, verify_ed25519};
use keysmith::{AccessClaims, SigningKey, Verifier};
use std::time::{Duration, UNIX_EPOCH};

fn b64(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).unwrap()
}

/// RFC 8037 A.1 (private key), A.2 (public key), A.3 (thumbprint), A.4 (signature).
#[test]
fn rfc8037_appendix_a() {
    let d: [u8; 32] = b64("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A").try_into().unwrap();
    let dalek = ed25519_dalek::SigningKey::from_bytes(&d);
    let key = SigningKey::new(&dalek);
    let jwk = PublicJwk::from_key(&key.verifying_key());
    assert_eq!(jwk.x, "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
    assert_eq!(key.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    assert_eq!(thumbprint(&key.verifying_key()), key.kid());
    let jws = key.sign_jws(r#"{"alg":"EdDSA"}"#, b"Example of Ed25519 signing");
    assert_eq!(
        jws,
        "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.\
         hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
    );
    let (input, sig) = jws.rsplit_once('.').unwrap();
    assert!(verify_ed25519(&key.verifying_key(), input.as_bytes(), &b64(sig)));
}

/// Every Wycheproof Ed25519 verification vector gives the expected answer through the same
/// signature check the verifier uses, and weak keys are refused where the JWKS is loaded.
#[test]
fn wycheproof_ed25519() {
    use wycheproof::TestResult;
    use wycheproof::eddsa::{TestName, TestSet};
    let set = TestSet::load(TestName::Ed25519).unwrap();
    let (mut checked, mut weak_keys) = (0, 0);
    for group in set.test_groups {
        let pk: [u8; 32] = group.key.pk.as_ref().try_into().unwrap();
        let loaded = KeySet::from_public_key(&pk);
        for test in group.tests {
            let accepted = match &loaded {
                Ok(_) => {
                    let key = VerifyingKey::from_bytes(&pk).unwrap();
                    verify_ed25519(&key, &test.msg, &test.sig)
                }
                Err(_) => false,
            };
            match test.result {
                TestResult::Valid => {
                    assert!(accepted, "tc {} ({}) must verify", test.tc_id, test.comment)
                }
                TestResult::Invalid => assert!(!accepted, "tc {} ({}) must not verify", test.tc_id, test.comment),
                TestResult::Acceptable => {}
            }
            checked += 1;
        }
        weak_keys += usize::from(loaded.is_err());
    }
    assert!(checked > 100, "only {checked} vectors ran");
    assert_eq!(weak_keys, 0, "no Wycheproof Ed25519 key is small-order");
}

/// The wire format is pinned: a fixed key and fixed claims give exactly the stored token, and
/// the stored token verifies to exactly the stored claims.
#[test]
fn golden_access_token() {
    let vector: serde_json::Value = serde_json::from_str(include_str!("vectors/access_token.json")).unwrap();
    let seed: [u8; 32] = b64(vector["seed"].as_str().unwrap()).try_into().unwrap();
    let key = SigningKey::new(&ed25519_dalek::SigningKey::from_bytes(&seed));
    let claims: AccessClaims = serde_json::from_value(vector["claims"].clone()).unwrap();
    let token = key.sign_access_token(&serde_json::to_vec(&claims).unwrap());
    assert_eq!(token, vector["token"].as_str().unwrap());

    let jwks = serde_json::to_vec(&vector["jwks"]).unwrap();
    let verifier = Verifier::new(KeySet::from_jwks_json(&jwks).unwrap(), &claims.iss, "demo");
    let now = UNIX_EPOCH + Duration::from_secs(claims.iat + 1);
    let grant = verifier.verify(vector["token"].as_str().unwrap(), now).unwrap();
    assert_eq!(grant.claims(), &claims);
}
