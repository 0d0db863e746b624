//! The JWT attack catalogue against the verifier, through the library and through the
//! `keysmith verify` CLI: every forged or malformed token is refused, and nothing panics.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use common::b64;
use ed25519_dalek::pkcs8::EncodePublicKey as _;
use ed25519_dalek::{Signer as _, SigningKey};
use hmac::{Hmac, Mac as _};
use keysmith::{KeySet, PublicJwk, Verifier, VerifyError};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const NOW: u64 = 1_800_000_000;
const ISS: &str = "https://keys.test";

fn key() -> SigningKey {
    SigningKey::from_bytes(&[3u8; 32])
}

fn kid() -> String {
    keysmith::jwk::thumbprint(&key().verifying_key())
}

fn header() -> Value {
    json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid()})
}

fn claims() -> Value {
    json!({
        "iss": ISS, "aud": "demo", "sub": "t", "client_id": "t", "iat": NOW - 10, "nbf": NOW - 10,
        "exp": NOW + 600, "jti": "j", "scope": "OBJECTS_LIST", "ver": 1,
        "upload_dirs": ["/*"], "list_dirs": ["/*"], "ips": ["0.0.0.0/0", "::/0"],
    })
}

fn raw(header: &[u8], payload: &[u8], sign_with: &SigningKey) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let sig = sign_with.sign(input.as_bytes());
    format!("{input}.{}", b64(sig.to_bytes()))
}

fn signed(header: &Value, claims: &Value) -> String {
    raw(header.to_string().as_bytes(), claims.to_string().as_bytes(), &key())
}

fn with(mut v: Value, k: &str, x: Value) -> Value {
    v[k] = x;
    v
}

fn without(mut v: Value, k: &str) -> Value {
    v.as_object_mut().unwrap().remove(k);
    v
}

fn hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(mac.finalize().into_bytes()))
}

fn jwks() -> String {
    json!({"keys": [PublicJwk::from_key(&key().verifying_key())]}).to_string()
}

fn verifier() -> Verifier {
    Verifier::new(KeySet::from_jwks_json(jwks().as_bytes()).unwrap(), ISS, "demo")
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

/// Every attack, named.
fn catalogue() -> Vec<(String, String)> {
    let mut cases: Vec<(String, String)> = Vec::new();
    let mut add = |name: &str, token: String| cases.push((name.to_owned(), token));
    let (h, c) = (header(), claims());
    let good = signed(&h, &c);
    let (input, sig) = good.rsplit_once('.').unwrap();
    let sig_bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();

    for alg in ["none", "None", "NONE", "nOnE", "nonE"] {
        let hn = with(h.clone(), "alg", json!(alg));
        add(&format!("alg {alg}, no signature"), format!("{}.{}.", b64(hn.to_string()), b64(c.to_string())));
        add(&format!("alg {alg}, real signature"), format!("{}.{}.{sig}", b64(hn.to_string()), b64(c.to_string())));
    }
    let public = key().verifying_key();
    let encodings: Vec<(&str, Vec<u8>)> = vec![
        ("raw", public.as_bytes().to_vec()),
        ("base64url x", b64(public.as_bytes()).into_bytes()),
        ("PEM", public.to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF).unwrap().into_bytes()),
        ("JWK JSON", serde_json::to_vec(&PublicJwk::from_key(&public)).unwrap()),
        ("JWKS JSON", jwks().into_bytes()),
    ];
    for (name, secret) in &encodings {
        add(
            &format!("HS256 keyed with the public key ({name})"),
            hs256(&with(h.clone(), "alg", json!("HS256")), &c, secret),
        );
    }
    for alg in [
        "HS384", "HS512", "RS256", "PS256", "ES256", "ES256K", "ed25519", "ED25519", "Ed448", "EDDSA", "eddsa",
        " EdDSA", "EdDSA ", "Ed25519 ",
    ] {
        add(&format!("alg {alg:?}"), signed(&with(h.clone(), "alg", json!(alg)), &c));
    }
    add("signature stripped", format!("{input}."));
    add("signature empty segment and more", format!("{input}..x"));
    add("signature zeroed", format!("{input}.{}", b64([0u8; 64])));
    add("signature truncated", format!("{input}.{}", b64(&sig_bytes[..63])));
    add("signature extended", format!("{input}.{}", b64([&sig_bytes[..], &[0]].concat())));
    let mut malleated = sig_bytes.clone();
    let l: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for (b, x) in malleated[32..].iter_mut().zip(l) {
        let s = u16::from(*b) + u16::from(x) + carry;
        *b = (s & 0xff) as u8;
        carry = s >> 8;
    }
    add("S + L malleated signature", format!("{input}.{}", b64(malleated)));
    add(
        "another key under the real kid",
        raw(h.to_string().as_bytes(), c.to_string().as_bytes(), &SigningKey::from_bytes(&[9u8; 32])),
    );
    let attacker = SigningKey::from_bytes(&[7u8; 32]);
    let embedded = with(
        without(h.clone(), "kid"),
        "jwk",
        serde_json::to_value(PublicJwk::from_key(&attacker.verifying_key())).unwrap(),
    );
    add("embedded jwk, no kid", raw(embedded.to_string().as_bytes(), c.to_string().as_bytes(), &attacker));
    add(
        "embedded jwk with the real kid",
        raw(with(embedded, "kid", json!(kid())).to_string().as_bytes(), c.to_string().as_bytes(), &attacker),
    );
    for member in ["jku", "x5u"] {
        let hx = with(without(h.clone(), "kid"), member, json!("https://attacker.example/keys"));
        add(&format!("{member} instead of kid"), raw(hx.to_string().as_bytes(), c.to_string().as_bytes(), &attacker));
    }
    for (name, k) in [
        ("kid traversal", json!("../../../../etc/passwd")),
        ("kid huge", json!("k".repeat(4096))),
        ("kid number", json!(1)),
        ("kid null", json!(null)),
        ("kid array", json!([kid()])),
        ("kid object", json!({"kid": kid()})),
        ("kid empty", json!("")),
    ] {
        add(name, signed(&with(h.clone(), "kid", k), &c));
    }
    for crit in [json!([]), json!(["exp"]), json!(["b64"]), json!(null), json!("exp")] {
        add(&format!("crit {crit}"), signed(&with(h.clone(), "crit", crit.clone()), &c));
    }
    add("b64 false", signed(&with(with(h.clone(), "b64", json!(false)), "crit", json!(["b64"])), &c));
    add("b64 false without crit", signed(&with(h.clone(), "b64", json!(false)), &c));
    add("zip DEF", signed(&with(h.clone(), "zip", json!("DEF")), &c));
    let (ph, pp) = (b64(h.to_string()), b64(c.to_string()));
    add("padded base64", format!("{ph}=.{pp}.{sig}"));
    add(
        "standard base64 alphabet",
        format!(
            "{}.{}.{}",
            STANDARD.encode(h.to_string()),
            STANDARD.encode(c.to_string()),
            STANDARD.encode(&sig_bytes)
        ),
    );
    add(
        "url-safe base64 with padding",
        format!(
            "{}.{}.{}",
            URL_SAFE.encode(h.to_string()),
            URL_SAFE.encode(c.to_string()),
            URL_SAFE.encode(&sig_bytes)
        ),
    );
    add("whitespace inside base64", format!("{} {}.{pp}.{sig}", &ph[..4], &ph[4..]));
    add("newline inside token", format!("{ph}.\n{pp}.{sig}"));
    add("one segment", ph.clone());
    add("two segments", format!("{ph}.{pp}"));
    add("four segments", format!("{good}.{sig}"));
    add("five segments (JWE shape)", format!("{ph}.{pp}.{sig}.{sig}.{sig}"));
    add("empty token", String::new());
    add("dots only", "..".into());
    add("header not JSON", raw(b"not json", c.to_string().as_bytes(), &key()));
    add("header JSON array", raw(br#"["EdDSA","at+jwt"]"#, c.to_string().as_bytes(), &key()));
    add("header JSON string", raw(br#""EdDSA""#, c.to_string().as_bytes(), &key()));
    add("payload not JSON", raw(h.to_string().as_bytes(), b"not json", &key()));
    add("payload JSON array", raw(h.to_string().as_bytes(), b"[1,2,3]", &key()));
    add("payload JSON null", raw(h.to_string().as_bytes(), b"null", &key()));
    add("payload invalid UTF-8", raw(h.to_string().as_bytes(), b"{\"iss\":\"\xff\"}", &key()));
    let dup_header = format!(r#"{{"alg":"none","alg":"EdDSA","typ":"at+jwt","kid":"{}"}}"#, kid());
    add("duplicate header name", raw(dup_header.as_bytes(), c.to_string().as_bytes(), &key()));
    let dup_claim = c.to_string().replacen('{', r#"{"aud":"other","#, 1);
    add("duplicate claim name", raw(h.to_string().as_bytes(), dup_claim.as_bytes(), &key()));
    for (claim, value) in [
        ("exp", json!("1800000600")),
        ("exp", json!(null)),
        ("exp", json!(1.8e9)),
        ("exp", json!(1e300)),
        ("exp", json!(u64::MAX)),
        ("exp", json!(-1)),
        ("aud", json!(5)),
        ("aud", json!(null)),
        ("aud", json!(["other"])),
        ("aud", json!({"demo": true})),
        ("iss", json!(7)),
        ("iss", json!(null)),
        ("iss", json!([ISS])),
        ("iat", json!("now")),
        ("scope", json!(["OBJECTS_LIST"])),
        ("ver", json!("1")),
    ] {
        add(&format!("{claim} = {value}"), signed(&h, &with(c.clone(), claim, value.clone())));
    }
    for claim in [
        "iss",
        "aud",
        "sub",
        "client_id",
        "iat",
        "nbf",
        "exp",
        "jti",
        "scope",
        "ver",
        "upload_dirs",
        "list_dirs",
        "ips",
    ] {
        add(&format!("missing {claim}"), signed(&h, &without(c.clone(), claim)));
    }
    add("nbf in the future", signed(&h, &with(c.clone(), "nbf", json!(NOW + 3600))));
    add("iat in the future", signed(&h, &with(with(c.clone(), "iat", json!(NOW + 3600)), "exp", json!(NOW + 7200))));
    add("expired", signed(&h, &with(c.clone(), "exp", json!(NOW - 60))));
    add("lifetime over the maximum", signed(&h, &with(c.clone(), "exp", json!(NOW - 10 + 8 * 24 * 3600))));
    for typ in ["apikey+jwt", "revocations+jwt", "JWT", "jwt", "at+JWT+x", ""] {
        add(&format!("typ {typ:?}"), signed(&with(h.clone(), "typ", json!(typ)), &c));
    }
    add("typ missing", signed(&without(h.clone(), "typ"), &c));
    add("oversized token", signed(&h, &with(c.clone(), "pad", json!("x".repeat(16 * 1024)))));
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep = c.to_string().replacen('{', &format!(r#"{{"deep":{nested},"#), 1);
    add("deeply nested payload", raw(h.to_string().as_bytes(), deep.as_bytes(), &key()));
    let deep_small = format!("{}{}", "[".repeat(2500), "]".repeat(2500));
    add(
        "nested 2,500 deep within the size limit",
        raw(
            h.to_string().as_bytes(),
            c.to_string().replacen('{', &format!(r#"{{"deep":{deep_small},"#), 1).as_bytes(),
            &key(),
        ),
    );
    add("scope escapes in upload_dirs", signed(&h, &with(c.clone(), "upload_dirs", json!(["/a/../b"]))));
    add("non-canonical ips", signed(&h, &with(c.clone(), "ips", json!(["10.0.0.1/8"]))));
    cases
}

#[test]
fn the_library_refuses_every_attack() {
    let v = verifier();
    let good = signed(&header(), &claims());
    assert!(v.verify(&good, now()).is_ok(), "the baseline token verifies");
    let list_claims = json!({"iss": ISS, "iat": NOW - 1, "exp": NOW + 300, "ver": 1, "revoked_api_keys": [], "revoked_templates": []});
    let list = signed(&with(header(), "typ", json!("revocations+jwt")), &list_claims);
    let with_list = verifier().with_revocations(&list, now()).unwrap();
    let cases = catalogue();
    assert!(cases.len() > 100, "{} cases", cases.len());
    for (name, token) in &cases {
        match v.verify(token, now()) {
            Ok(_) => panic!("accepted: {name}"),
            Err(e) => assert!(!e.code().is_empty(), "{name}"),
        }
        // Presented as a permanent key to a verifier holding a fresh list, none passes either.
        match with_list.verify_api_key(token, now()) {
            Ok(_) => panic!("accepted as a permanent key: {name}"),
            Err(e) => assert_ne!(e, VerifyError::RevocationsMissing, "{name}: the list must not be what refuses it"),
        }
    }
    // Spot checks that refusals happen at the right layer.
    let find = |n: &str| cases.iter().find(|(name, _)| name == n).map(|(_, t)| t.clone()).unwrap();
    assert_eq!(
        v.verify(&find("HS256 keyed with the public key (PEM)"), now()).unwrap_err(),
        VerifyError::AlgorithmNotAllowed
    );
    assert_eq!(v.verify(&find("alg none, no signature"), now()).unwrap_err(), VerifyError::AlgorithmNotAllowed);
    assert_eq!(v.verify(&find("embedded jwk with the real kid"), now()).unwrap_err(), VerifyError::BadSignature);
    assert_eq!(v.verify(&find("oversized token"), now()).unwrap_err(), VerifyError::TooLarge(8192));
    assert_eq!(v.verify(&find("crit []"), now()).unwrap_err(), VerifyError::CriticalHeader);
}

#[test]
fn the_cli_refuses_every_attack_without_crashing() {
    let dir = tempfile::tempdir().unwrap();
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(&jwks_path, jwks()).unwrap();
    let cases = catalogue();
    // Tokens travel as arguments; skip the ones a command line cannot carry (NUL-free, but
    // empty or huge are fine), and run the rest through the binary.
    for (name, token) in cases.iter().filter(|(_, t)| !t.is_empty() && !t.starts_with('-') && t.len() < 100_000) {
        let out = common::keysmith()
            .args(["verify", token, "--jwks", jwks_path.to_str().unwrap(), "--issuer", ISS, "--audience", "demo"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["valid"], false, "{name}");
    }
}

/// The small-order and non-canonical cases of "Taming the many EdDSAs" (speccheck), read from
/// `../shared/vectors` when present (CI has it; it is not part of this repository).
#[test]
fn speccheck_edge_cases() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors/ed25519_speccheck_cases.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        assert!(std::env::var_os("CI").is_none(), "{} is missing in CI", path.display());
        eprintln!("NOTE: {} not present; speccheck cases not run", path.display());
        return;
    };
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(cases.len(), 12);
    let hex = |s: &Value| -> Vec<u8> {
        let s = s.as_str().unwrap();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    };
    let mut accepted = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let (msg, pk, sig) = (hex(&case["message"]), hex(&case["pub_key"]), hex(&case["signature"]));
        let pk: [u8; 32] = pk.try_into().unwrap();
        let loaded = KeySet::from_public_key(&pk);
        let ok = loaded.is_ok()
            && ed25519_dalek::VerifyingKey::from_bytes(&pk)
                .is_ok_and(|k| keysmith::jwk::verify_ed25519(&k, &msg, &sig));
        if ok {
            accepted.push(i);
        }
        let small_order = ed25519_dalek::VerifyingKey::from_bytes(&pk).is_ok_and(|k| k.is_weak());
        if small_order {
            assert!(loaded.is_err(), "case {i}: a small-order key must be refused when loaded");
        }
    }
    // Only the cases with a canonical, large-order key, a canonical S, and a non-small-order R
    // verify; mixed-order keys verify only under the cofactorless equation dalek uses.
    eprintln!("speccheck cases accepted: {accepted:?}");
    assert!(!accepted.iter().any(|i| [0, 1, 2, 6, 7, 8, 9, 10, 11].contains(i)), "accepted {accepted:?}");
}
