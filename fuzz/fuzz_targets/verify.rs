//! The token decoder and verifier on arbitrary input: every path must return, never panic.
#![no_main]

use keysmith::{KeySet, Verifier};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

/// The key of `tests/vectors/access_token.json`, so the seed corpus holds a valid token.
const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"gyClGXfYw4yopJJ8Zw31gh5El2GUXhXp77JqFQnSMOo"}]}"#;

fn verifier() -> Option<&'static Verifier> {
    static V: OnceLock<Option<Verifier>> = OnceLock::new();
    V.get_or_init(|| {
        let keys = KeySet::from_jwks_json(JWKS.as_bytes()).ok()?;
        Some(Verifier::new(keys, "https://keys.example.com", "demo"))
    })
    .as_ref()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_100);
        let Some(v) = verifier() else { return };
        if let Ok(grant) = v.verify(text, now) {
            let _ = grant.authorize("FILE_UPLOAD", Some("/a/b"), None);
            let _ = grant.authorize_file("FILE_UPLOAD", "/a/b.txt", None);
        }
        let _ = v.verify_api_key(text, now);
        let _ = v.set_revocations(text, now);
        let _ = KeySet::from_jwks_json(data);
    }
});
