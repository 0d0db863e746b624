//! Known-answer tests: RFC 8037 Appendix A, the Wycheproof Ed25519 vectors, and the published
//! conformance suite in `tests/vectors/` (golden tokens, negative corpus, authorisation decisions).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

mod common;

use ed25519_dalek::VerifyingKey;
use keysmith::dangerous::SignAnyHeader as _;
use keysmith::jwk::{KeySet, PublicJwk, thumbprint, verify_ed25519};
use keysmith::{AccessClaims, SigningKey, Verifier};
use std::time::{Duration, UNIX_EPOCH};

/// RFC 8037 A.1 (private key), A.2 (public key), A.3 (thumbprint), A.4 (signature).
#[test]
fn rfc8037_appendix_a() {
    let d: [u8; 32] = common::unb64("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A").try_into().unwrap();
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
    assert!(verify_ed25519(&key.verifying_key(), input.as_bytes(), &common::unb64(sig)));
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
    let seed: [u8; 32] = common::unb64(vector["seed"].as_str().unwrap()).try_into().unwrap();
    let key = SigningKey::new(&ed25519_dalek::SigningKey::from_bytes(&seed));
    let claims: AccessClaims = serde_json::from_value(vector["claims"].clone()).unwrap();
    let token = key.sign_access_token(&serde_json::to_vec(&claims).unwrap()).unwrap();
    assert_eq!(token, vector["token"].as_str().unwrap());

    let jwks = serde_json::to_vec(&vector["jwks"]).unwrap();
    let verifier = Verifier::new(KeySet::from_jwks_json(&jwks).unwrap(), &claims.iss, "demo");
    let now = UNIX_EPOCH + Duration::from_secs(claims.iat + 1);
    let grant = verifier.verify(vector["token"].as_str().unwrap(), now).unwrap();
    assert_eq!(grant.claims(), &claims);
}

// ---------------------------------------------------------------------------------------------
// The published suite: golden tokens of all three types, the negative corpus and the
// authorisation conformance vectors (format: docs/token.md, "Conformance vectors").
//
// Each file is regenerated here from a fixed key, a fixed clock and fixed ids, and compared
// byte for byte with the stored one: a change in what the library produces fails the test
// instead of rewriting the vectors. `KEYSMITH_BLESS=1 cargo test --test vectors` rewrites them
// after an intended change (review the diff; never set it in CI). The expected outcomes are
// written by hand below, never taken from the library, and every stored vector is then run
// against the library.

use keysmith::issuer::NewApiKey;
use keysmith::{Config, Issuer, Keyring};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The test key of every vector (`"kkkk…"`, the seed of `access_token.json`).
const SEED: [u8; 32] = [b'k'; 32];
/// A key the verifier does not trust.
const ATTACKER_SEED: [u8; 32] = [b'm'; 32];
const ISSUER: &str = "https://keys.example.com";
const AUDIENCE: &str = "demo";
/// Issue time of every vector token, and the verification time of most cases.
const T0: u64 = 1_800_000_000;
const NOW: u64 = T0 + 60;
/// The fixed key id that stands in for the random one in golden permanent keys.
const FIXED_API_KEY_ID: &str = "ak_AAECAwQFBgcICQoLDA0ODw";
const LEEWAY: u64 = 5;
const MAX_LIFETIME: u64 = 7 * 24 * 3600;
const MAX_TOKEN_LEN: usize = 8 * 1024;

const ISSUER_CONFIG: &str = r#"
version = 7
issuer = "https://keys.example.com"
revocations_max_age = 300
[projects.demo]
[[templates]]
id = "upload-widget"
project = "demo"
permissions = ["FILE_UPLOAD", "OBJECTS_LIST"]
[[templates]]
id = "old-widget"
project = "demo"
active = false
permissions = ["FILE_UPLOAD"]
[[api_keys]]
id = "ak_revoked"
permissions = ["FILE_UPLOAD"]
projects = ["demo"]
active = false
[[api_keys]]
id = "ak_AAECAwQFBgcICQoLDA0ODw"
permissions = ["FILE_UPLOAD", "OBJECTS_LIST"]
projects = ["demo"]
"#;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn key(seed: [u8; 32]) -> SigningKey {
    SigningKey::new(&ed25519_dalek::SigningKey::from_bytes(&seed))
}

fn jwks_of(key: &SigningKey) -> Value {
    serde_json::to_value(keysmith::Jwks { keys: vec![PublicJwk::from_key(&key.verifying_key())] }).unwrap()
}

/// The settings every vector is verified with (the library's defaults, spelled out).
fn verifier_settings() -> Value {
    json!({
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "leeway_seconds": LEEWAY,
        "max_lifetime_seconds": MAX_LIFETIME,
        "max_token_bytes": MAX_TOKEN_LEN,
        "scope_rules": "scaleflex",
    })
}

/// Writes `generated` to `tests/vectors/{name}` under `KEYSMITH_BLESS=1`; otherwise asserts the
/// stored file is exactly that text.
fn check_or_bless(name: &str, generated: &Value) {
    let path = vectors_dir().join(name);
    let text = serde_json::to_string_pretty(generated).unwrap() + "\n";
    if std::env::var_os("KEYSMITH_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        stored == text,
        "tests/vectors/{name} is not what the library produces today. If the wire format change is \
         intended, run `KEYSMITH_BLESS=1 cargo test --test vectors`, review the diff and record it \
         in CHANGELOG.md"
    );
}

fn load(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(vectors_dir().join(name)).unwrap()).unwrap()
}

/// The verifier a vector file describes.
fn verifier_from(file: &Value) -> Verifier {
    let settings = &file["verifier"];
    let keys = KeySet::from_jwks_json(&serde_json::to_vec(&file["jwks"]).unwrap()).unwrap();
    assert_eq!(settings["scope_rules"], "scaleflex");
    Verifier::new(keys, settings["issuer"].as_str().unwrap(), settings["audience"].as_str().unwrap())
        .leeway(Duration::from_secs(settings["leeway_seconds"].as_u64().unwrap()))
        .max_lifetime(Duration::from_secs(settings["max_lifetime_seconds"].as_u64().unwrap()))
        .max_token_len(usize::try_from(settings["max_token_bytes"].as_u64().unwrap()).unwrap())
}

// --- golden tokens -------------------------------------------------------------------------

fn issuer() -> (Issuer, SigningKey) {
    let config = Config::from_toml(ISSUER_CONFIG, Path::new(".")).unwrap();
    (Issuer::from_parts(config, Keyring::single(key(SEED)), None), key(SEED))
}

fn segments(token: &str) -> (String, String, String) {
    let mut parts = token.split('.');
    let (h, p, s) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    assert!(parts.next().is_none());
    (h.to_owned(), p.to_owned(), s.to_owned())
}

fn text_of(segment: &str) -> String {
    String::from_utf8(common::unb64(segment)).unwrap()
}

/// The permanent key the issuer creates today at `T0`, with its random id replaced by
/// [`FIXED_API_KEY_ID`] and signed again. Everything but the id is the issuer's own bytes.
fn golden_api_key() -> (String, Value) {
    let (issuer, key) = issuer();
    let new = NewApiKey {
        projects: vec![AUDIENCE.into()],
        permissions: vec!["FILE_UPLOAD".into(), "OBJECTS_LIST".into()],
        expires_at: None,
        created_by: Vec::new(),
    };
    let created = issuer.create_api_key(&new, at(T0)).unwrap();
    assert_eq!(created.id.len(), FIXED_API_KEY_ID.len());
    let (header, payload, _) = segments(&created.secret);
    let payload = text_of(&payload);
    assert_eq!(payload.matches(&created.id).count(), 2, "the id is the key's sub and jti");
    let payload = payload.replace(&created.id, FIXED_API_KEY_ID);
    let token = key.sign_jws(&text_of(&header), payload.as_bytes());
    assert_eq!(segments(&token).0, header, "the header is the issuer's");
    (token, serde_json::from_str(&payload).unwrap())
}

fn golden_revocations() -> (String, Value) {
    let (issuer, _) = issuer();
    let token = issuer.revocation_list(at(T0)).unwrap().token;
    let claims = serde_json::from_slice(&common::unb64(&segments(&token).1)).unwrap();
    (token, claims)
}

fn golden_file(description: &str, token: &str, claims: &Value, now: u64) -> Value {
    let (header, _, _) = segments(token);
    json!({
        "description": description,
        "seed": common::b64(SEED),
        "jwks": jwks_of(&key(SEED)),
        "verifier": verifier_settings(),
        "now": now,
        "header": serde_json::from_slice::<Value>(&common::unb64(&header)).unwrap(),
        "claims": claims,
        "token": token,
    })
}

/// `apikey+jwt` and `revocations+jwt` are pinned like the access token: what the issuer signs
/// today from the fixed key, clock and id is exactly the stored token, and the stored token
/// verifies to exactly the stored claims.
#[test]
fn golden_api_key_and_revocation_list() {
    let (list, list_claims) = golden_revocations();
    check_or_bless(
        "revocations.json",
        &golden_file(
            "Golden revocation list: what Issuer::revocation_list signs at `now` for a config with one \
             deactivated permanent key, one active permanent key (the key of api_key.json) and one \
             deactivated template.",
            &list,
            &list_claims,
            T0,
        ),
    );
    let (api_key, api_key_claims) = golden_api_key();
    check_or_bless(
        "api_key.json",
        &golden_file(
            "Golden permanent API key: what Issuer::create_api_key signs at `now` (its random id \
             replaced by a fixed one). Verify it holding the list of revocations.json.",
            &api_key,
            &api_key_claims,
            NOW,
        ),
    );

    let stored_list = load("revocations.json");
    let verifier = verifier_from(&stored_list);
    let now = at(stored_list["now"].as_u64().unwrap());
    verifier.set_revocations(stored_list["token"].as_str().unwrap(), now).unwrap();
    let held = verifier.revocations().unwrap();
    assert_eq!(serde_json::to_value(held.claims()).unwrap(), stored_list["claims"]);

    let stored_key = load("api_key.json");
    let grant = verifier
        .verify_api_key(stored_key["token"].as_str().unwrap(), at(stored_key["now"].as_u64().unwrap()))
        .unwrap();
    assert_eq!(serde_json::to_value(grant.claims()).unwrap(), stored_key["claims"]);
    assert_eq!(grant.id(), FIXED_API_KEY_ID);
}

/// The claims of `access_token.json`: every optional access-token claim but `api_keys` set.
fn golden_access_claims() -> AccessClaims {
    serde_json::from_value(with(
        access_claims(),
        json!({"countries": ["FR", "DE"], "limits": {"per_min": 30, "per_source_ip": 100},
               "upload_max_bytes": 10_485_760, "upload_types": ["image/*", "application/pdf"]}),
    ))
    .unwrap()
}

/// `access_token.json` is the file this generator writes, in the format of the other two.
#[test]
fn golden_access_token_file() {
    let claims = golden_access_claims();
    let token = key(SEED).sign_access_token(&serde_json::to_vec(&claims).unwrap()).unwrap();
    check_or_bless(
        "access_token.json",
        &golden_file(
            "Golden access token: Ed25519 seed (base64url), claims, the JWKS of the key, and the exact token they give.",
            &token,
            &serde_json::to_value(&claims).unwrap(),
            NOW,
        ),
    );
}

/// The access token the issuer mints today has exactly the golden token's header and encoding:
/// minting from the golden claims' template at `iat`, the payload differs only in `jti`.
#[test]
fn issuer_mints_the_golden_access_token_shape() {
    let vector: Value = serde_json::from_str(include_str!("vectors/access_token.json")).unwrap();
    let golden = vector["token"].as_str().unwrap();
    let claims: AccessClaims = serde_json::from_value(vector["claims"].clone()).unwrap();
    // The golden claims restrict countries, which needs a GeoIP database at mint; mint the same
    // template without them and compare against the golden claims without them.
    let config = format!(
        "version = {ver}\nissuer = \"{iss}\"\n[projects.demo]\n[[templates]]\nid = \"{sub}\"\nproject = \"demo\"\n\
         permissions = [\"FILE_UPLOAD\", \"OBJECTS_LIST\"]\nexpiration_duration = {life}\n\
         [templates.upload]\ndir_scope = \"/uploads/*\"\nlimit_per_min = 30\nlimit_per_source_ip = 100\n\
         max_file_size = 10485760\ncontent_types = [\"image/*\", \"application/pdf\"]\n\
         [templates.listing]\ndirectory_scope = [\"/uploads/*\", \"/public\"]\n",
        ver = claims.ver,
        iss = claims.iss,
        sub = claims.sub,
        life = claims.exp - claims.iat,
    );
    let config = Config::from_toml(&config, Path::new(".")).unwrap();
    let issuer = Issuer::from_parts(config, Keyring::single(key(SEED)), None);
    let minted = issuer.mint("demo", &claims.sub, &keysmith::MintRequest::default(), None, at(claims.iat)).unwrap();
    let (header, payload, _) = segments(&minted.token);
    assert_eq!(header, segments(golden).0, "the access-token header is byte for byte the golden one");
    let mut expected = claims.clone();
    expected.countries = None;
    expected.jti = minted.jti.clone();
    assert_eq!(text_of(&payload), serde_json::to_string(&expected).unwrap(), "claim order and encoding");
    // The same bytes with the golden jti (and countries) sign to the golden token.
    assert_eq!(key(SEED).sign_access_token(&serde_json::to_vec(&claims).unwrap()).unwrap(), golden);
}

// --- negative corpus -----------------------------------------------------------------------

/// The access-token claims most corpus cases start from.
fn access_claims() -> Value {
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "upload-widget", "client_id": "upload-widget",
        "iat": T0, "nbf": T0, "exp": T0 + 1200, "jti": "AAECAwQFBgcICQoLDA0ODw",
        "scope": "FILE_UPLOAD OBJECTS_LIST", "ver": 7,
        "upload_dirs": ["/uploads/*"], "list_dirs": ["/uploads/*", "/public"], "ips": ["0.0.0.0/0", "::/0"],
    })
}

fn api_key_claims() -> Value {
    json!({
        "iss": ISSUER, "aud": [AUDIENCE], "sub": FIXED_API_KEY_ID, "jti": FIXED_API_KEY_ID,
        "iat": T0, "scope": "FILE_UPLOAD OBJECTS_LIST", "ver": 7,
    })
}

fn revocation_claims() -> Value {
    json!({
        "iss": ISSUER, "iat": T0, "exp": T0 + 300, "ver": 7,
        "revoked_api_keys": ["ak_revoked"], "revoked_templates": ["old-widget"],
        "active_api_keys": [FIXED_API_KEY_ID],
    })
}

/// `claims` with some members replaced (a `null` removes one).
fn with(mut claims: Value, changes: Value) -> Value {
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

fn header(typ: &str, kid: &str) -> String {
    format!(r#"{{"alg":"EdDSA","typ":"{typ}","kid":"{kid}"}}"#)
}

/// Signs raw header and payload texts with `key`.
fn sign(key: &SigningKey, header: &str, payload: &str) -> String {
    key.sign_jws(header, payload.as_bytes())
}

/// Replaces the signature segment of `token`.
fn with_signature(token: &str, signature: &str) -> String {
    let (input, _) = token.rsplit_once('.').unwrap();
    format!("{input}.{signature}")
}

/// Signs a signing input as sent (for segments the library would not produce).
fn raw_signed(input: &str) -> String {
    use ed25519_dalek::Signer as _;
    let signature = ed25519_dalek::SigningKey::from_bytes(&SEED).sign(input.as_bytes());
    format!("{input}.{}", common::b64(signature.to_bytes()))
}

/// `S + L`: the same signature with a non-canonical scalar (the Ed25519 malleability form).
fn non_canonical_s(token: &str) -> String {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut sig = common::unb64(segments(token).2.as_str());
    let mut carry = 0u16;
    for (i, l) in L.iter().enumerate() {
        let sum = u16::from(sig[32 + i]) + u16::from(*l) + carry;
        sig[32 + i] = (sum & 0xff) as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    with_signature(token, &common::b64(sig))
}

/// The same signature bytes with a set bit in the unused tail of the last base64url character.
fn non_canonical_base64_signature(token: &str) -> String {
    let mut sig = segments(token).2;
    let last = sig.pop().unwrap();
    sig.push(match last {
        'A' => 'B',
        'Q' => 'R',
        'g' => 'h',
        'w' => 'x',
        other => panic!("a 64-byte signature ends in A, Q, g or w, not {other}"),
    });
    with_signature(token, &sig)
}

/// HS256 over the signing input, keyed with the public key's bytes (algorithm confusion).
fn hs256_with_public_key(header: &str, payload: &str) -> String {
    use hmac::Mac as _;
    let input = format!("{}.{}", common::b64(header), common::b64(payload));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key(SEED).verifying_key().as_bytes()).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", common::b64(mac.finalize().into_bytes()))
}

struct Case {
    name: &'static str,
    description: &'static str,
    /// `access_token`, `api_key` or `revocations`.
    kind: &'static str,
    token: String,
    now: u64,
    /// A revocation list the verifier holds before the case (`None`: no list).
    revocations: Option<String>,
    /// `None`: accepted; `Some(code)`: refused with that code.
    expect: Option<&'static str>,
    /// Every JOSE library verifying EdDSA against the JWKS must refuse it, whatever its policy.
    jose_reject: bool,
}

fn case(name: &'static str, description: &'static str, token: String, expect: Option<&'static str>) -> Case {
    Case { name, description, kind: "access_token", token, now: NOW, revocations: None, expect, jose_reject: false }
}

impl Case {
    fn kind(mut self, kind: &'static str) -> Self {
        self.kind = kind;
        self
    }
    fn at(mut self, now: u64) -> Self {
        self.now = now;
        self
    }
    fn holding(mut self, list: &str) -> Self {
        self.revocations = Some(list.to_owned());
        self
    }
    fn jose_reject(mut self) -> Self {
        self.jose_reject = true;
        self
    }
}

#[allow(clippy::too_many_lines)] // one flat list of cases reads better than fragments
fn negative_cases() -> Vec<Case> {
    let k = key(SEED);
    let attacker = key(ATTACKER_SEED);
    let kid = k.kid().to_owned();
    let at_header = header("at+jwt", &kid);
    let claims = access_claims().to_string();
    let good = sign(&k, &at_header, &claims);
    let access = |c: Value| sign(&k, &at_header, &c.to_string());
    let with_header = |h: &str| sign(&k, h, &claims);
    let (list, _) = golden_revocations();
    let (api_key, _) = golden_api_key();
    let api_header = header("apikey+jwt", &kid);
    let api = |c: Value| sign(&k, &api_header, &c.to_string());
    let rl_header = header("revocations+jwt", &kid);
    let rl = |c: Value| sign(&k, &rl_header, &c.to_string());
    let (h, p, s) = segments(&good);
    let attacker_jwk = serde_json::to_string(&PublicJwk::from_key(&attacker.verifying_key())).unwrap();
    let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));
    let many_ips: Vec<String> = (0..257).map(|i| format!("10.{}.{}.0/24", i / 256, i % 256)).collect();

    vec![
        // Accepted variants: a verifier must not refuse these.
        case("valid", "The reference token: the claims every case starts from.", good.clone(), None),
        case(
            "typ_application_prefix",
            "typ compares with an optional `application/` prefix (RFC 7515 §4.1.9).",
            with_header(&format!(r#"{{"alg":"EdDSA","typ":"application/at+jwt","kid":"{kid}"}}"#)),
            None,
        ),
        case(
            "typ_case_insensitive",
            "typ compares case-insensitively.",
            with_header(&format!(r#"{{"alg":"EdDSA","typ":"AT+JWT","kid":"{kid}"}}"#)),
            None,
        ),
        case(
            "header_member_order",
            "Header members may come in any order.",
            with_header(&format!(r#"{{"kid":"{kid}","typ":"at+jwt","alg":"EdDSA"}}"#)),
            None,
        ),
        case(
            "jku_ignored",
            "jku is never fetched; a trusted kid still selects the trusted key.",
            with_header(&format!(
                r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}","jku":"https://attacker.example/jwks.json"}}"#
            )),
            None,
        ),
        case(
            "aud_array",
            "aud may be an array holding the audience.",
            access(with(access_claims(), json!({"aud": ["other", AUDIENCE]}))),
            None,
        ),
        case(
            "unknown_claim_ignored",
            "Claims the format does not name are ignored.",
            access(with(access_claims(), json!({"role": "admin"}))),
            None,
        ),
        case("expired_within_leeway", "now is 4 s past exp: inside the 5 s leeway.", good.clone(), None)
            .at(T0 + 1200 + LEEWAY - 1),
        case(
            "not_before_within_leeway",
            "nbf is 5 s after now: inside the leeway.",
            access(with(access_claims(), json!({"nbf": NOW + LEEWAY}))),
            None,
        ),
        case(
            "lifetime_at_maximum",
            "exp - iat is exactly the 7-day maximum.",
            access(with(access_claims(), json!({"exp": T0 + MAX_LIFETIME}))),
            None,
        ),
        // Header: algorithm.
        case(
            "alg_none",
            "alg none with an empty signature.",
            format!(
                "{}.{}.",
                common::b64(format!(r#"{{"alg":"none","typ":"at+jwt","kid":"{kid}"}}"#)),
                common::b64(&claims)
            ),
            Some("algorithm_not_allowed"),
        )
        .jose_reject(),
        case(
            "alg_hs256_public_key_as_secret",
            "HS256 keyed with the Ed25519 public key (algorithm confusion).",
            hs256_with_public_key(&format!(r#"{{"alg":"HS256","typ":"at+jwt","kid":"{kid}"}}"#), &claims),
            Some("algorithm_not_allowed"),
        )
        .jose_reject(),
        case(
            "alg_ed25519_fully_specified",
            "alg Ed25519 (RFC 9864's fully-specified name for the same algorithm) is accepted like EdDSA.",
            with_header(&format!(r#"{{"alg":"Ed25519","typ":"at+jwt","kid":"{kid}"}}"#)),
            None,
        ),
        case(
            "alg_lowercase",
            "alg compares exactly: eddsa is refused.",
            with_header(&format!(r#"{{"alg":"eddsa","typ":"at+jwt","kid":"{kid}"}}"#)),
            Some("algorithm_not_allowed"),
        ),
        case(
            "alg_missing",
            "A header without alg.",
            with_header(&format!(r#"{{"typ":"at+jwt","kid":"{kid}"}}"#)),
            Some("token_malformed"),
        ),
        case(
            "alg_not_a_string",
            "alg is a number.",
            with_header(&format!(r#"{{"alg":1,"typ":"at+jwt","kid":"{kid}"}}"#)),
            Some("token_malformed"),
        ),
        case(
            "header_duplicate_alg",
            "A duplicate alg member (parsers differ on which one wins).",
            with_header(&format!(r#"{{"alg":"none","alg":"EdDSA","typ":"at+jwt","kid":"{kid}"}}"#)),
            Some("token_malformed"),
        ),
        // Header: type and extensions.
        case(
            "typ_missing",
            "No typ.",
            with_header(&format!(r#"{{"alg":"EdDSA","kid":"{kid}"}}"#)),
            Some("wrong_token_type"),
        ),
        case("typ_jwt", "typ JWT.", with_header(&header("JWT", &kid)), Some("wrong_token_type")),
        case(
            "typ_api_key",
            "Access-token claims under an apikey+jwt header.",
            with_header(&api_header),
            Some("wrong_token_type"),
        ),
        case(
            "api_key_as_access_token",
            "The golden permanent key presented as an access token.",
            api_key.clone(),
            Some("wrong_token_type"),
        ),
        case(
            "revocations_as_access_token",
            "The golden revocation list presented as an access token.",
            list.clone(),
            Some("wrong_token_type"),
        ),
        case(
            "crit",
            "crit naming a registered claim.",
            with_header(&format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}","crit":["exp"],"exp":1}}"#)),
            Some("critical_header"),
        ),
        case(
            "crit_empty",
            "crit as an empty list (not allowed by RFC 7515 either).",
            with_header(&format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}","crit":[]}}"#)),
            Some("critical_header"),
        ),
        case(
            "b64_false",
            "The RFC 7797 unencoded payload option.",
            with_header(&format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}","b64":false}}"#)),
            Some("unsupported_header"),
        ),
        case(
            "zip",
            "A compressed payload.",
            with_header(&format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}","zip":"DEF"}}"#)),
            Some("unsupported_header"),
        ),
        // Header: key selection.
        case("kid_missing", "No kid.", with_header(r#"{"alg":"EdDSA","typ":"at+jwt"}"#), Some("missing_kid")),
        case(
            "kid_unknown",
            "Signed by a key the JWKS does not hold, under that key's kid.",
            sign(&attacker, &header("at+jwt", attacker.kid()), &claims),
            Some("unknown_kid"),
        )
        .jose_reject(),
        case(
            "jwk_embedded",
            "The attacker's key embedded as jwk, signed by it: never trusted.",
            sign(
                &attacker,
                &format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{}","jwk":{attacker_jwk}}}"#, attacker.kid()),
                &claims,
            ),
            Some("unknown_kid"),
        )
        .jose_reject(),
        case(
            "jku_attacker",
            "jku pointing at the attacker's JWKS, signed by the attacker: never fetched.",
            sign(
                &attacker,
                &format!(
                    r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{}","jku":"https://attacker.example/jwks.json"}}"#,
                    attacker.kid()
                ),
                &claims,
            ),
            Some("unknown_kid"),
        )
        .jose_reject(),
        case(
            "kid_trusted_signed_by_attacker",
            "The trusted kid over the attacker's signature.",
            sign(&attacker, &at_header, &claims),
            Some("bad_signature"),
        )
        .jose_reject(),
        // Signature.
        case(
            "signature_over_other_payload",
            "A claim changed after signing.",
            format!(
                "{h}.{}.{s}",
                common::b64(
                    with(access_claims(), json!({"scope": "FILE_UPLOAD OBJECTS_LIST FILE_DELETE"})).to_string()
                )
            ),
            Some("bad_signature"),
        )
        .jose_reject(),
        case(
            "signature_truncated",
            "A 63-byte signature.",
            with_signature(&good, &common::b64(&common::unb64(&s)[..63])),
            Some("bad_signature"),
        )
        .jose_reject(),
        case("signature_empty", "An empty signature segment.", with_signature(&good, ""), Some("bad_signature"))
            .jose_reject(),
        case(
            "signature_non_canonical_s",
            "S + L: a malleated signature with a non-canonical scalar.",
            non_canonical_s(&good),
            Some("bad_signature"),
        )
        .jose_reject(),
        case(
            "signature_non_canonical_base64",
            "The signature's last character has a non-zero unused bit.",
            non_canonical_base64_signature(&good),
            Some("bad_signature"),
        ),
        case("signature_padded", "The signature with base64 padding.", format!("{good}=="), Some("bad_signature")),
        // Shape and encoding.
        case("empty", "The empty string.", String::new(), Some("token_malformed")).jose_reject(),
        case("two_segments", "No signature segment.", format!("{h}.{p}"), Some("token_malformed")).jose_reject(),
        case("trailing_segment", "A fourth segment.", format!("{good}.x"), Some("token_malformed")).jose_reject(),
        case("trailing_dot", "A trailing dot (an empty fourth segment).", format!("{good}."), Some("token_malformed"))
            .jose_reject(),
        case(
            "trailing_newline",
            "A newline after the token (tokens are not trimmed).",
            format!("{good}\n"),
            Some("bad_signature"),
        ),
        case("leading_space", "A space before the token.", format!(" {good}"), Some("token_malformed")),
        case(
            "header_padded",
            "The header segment with base64 padding, signed as sent.",
            raw_signed(&format!("{}=.{}", common::b64(&at_header), common::b64(&claims))),
            Some("token_malformed"),
        ),
        case("header_not_object", "The header is a JSON array.", with_header(r#"["EdDSA"]"#), Some("token_malformed")),
        case(
            "header_nested_too_deeply",
            "A header member nested 40 deep.",
            with_header(&format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}","x":{deep}}}"#)),
            Some("token_malformed"),
        ),
        case(
            "oversized",
            "A token over 8 KiB (a 9000-byte claim), refused before decoding.",
            access(with(access_claims(), json!({"pad": "x".repeat(9000)}))),
            Some("token_too_large"),
        ),
        case(
            "payload_not_object",
            "The payload is a JSON array.",
            sign(&k, &at_header, "[1]"),
            Some("token_malformed"),
        ),
        case("payload_not_json", "The payload is not JSON.", sign(&k, &at_header, "not json"), Some("token_malformed")),
        case(
            "payload_nested_too_deeply",
            "A claim nested 40 deep.",
            access(with(access_claims(), json!({"x": serde_json::from_str::<Value>(&deep).unwrap()}))),
            Some("token_malformed"),
        ),
        case(
            "payload_trailing_data",
            "Data after the claims object.",
            sign(&k, &at_header, &format!("{claims} x")),
            Some("invalid_claims"),
        ),
        case(
            "payload_duplicate_exp",
            "A duplicate exp claim (parsers differ on which one wins).",
            sign(&k, &at_header, &claims.replacen('{', &format!(r#"{{"exp":{},"#, T0 + 999_999), 1)),
            Some("invalid_claims"),
        ),
        // Registered claims.
        case(
            "wrong_issuer",
            "iss of another issuer.",
            access(with(access_claims(), json!({"iss": "https://keys.example.org"}))),
            Some("wrong_issuer"),
        ),
        case(
            "issuer_trailing_slash",
            "iss compares exactly.",
            access(with(access_claims(), json!({"iss": format!("{ISSUER}/")}))),
            Some("wrong_issuer"),
        ),
        case(
            "wrong_audience",
            "aud of another project.",
            access(with(access_claims(), json!({"aud": "other"}))),
            Some("wrong_audience"),
        ),
        case(
            "audience_array_without_ours",
            "aud as an array without the audience.",
            access(with(access_claims(), json!({"aud": ["other"]}))),
            Some("wrong_audience"),
        ),
        case("expired", "now is exp + leeway.", good.clone(), Some("token_expired")).at(T0 + 1200 + LEEWAY),
        case(
            "not_yet_valid",
            "nbf is 6 s after now.",
            access(with(access_claims(), json!({"nbf": NOW + LEEWAY + 1}))),
            Some("token_not_yet_valid"),
        ),
        case(
            "issued_in_future",
            "iat is 6 s after now.",
            access(with(access_claims(), json!({"iat": NOW + LEEWAY + 1}))),
            Some("issued_in_future"),
        ),
        case(
            "lifetime_too_long",
            "exp - iat is one second over 7 days.",
            access(with(access_claims(), json!({"exp": T0 + MAX_LIFETIME + 1}))),
            Some("lifetime_too_long"),
        ),
        case(
            "exp_not_after_iat",
            "exp equals iat (both now, so the token is not also expired).",
            access(with(access_claims(), json!({"iat": NOW, "nbf": NOW, "exp": NOW}))),
            Some("invalid_claims"),
        ),
        // Claim types and values.
        case("exp_missing", "No exp.", access(with(access_claims(), json!({"exp": null}))), Some("invalid_claims")),
        case(
            "exp_string",
            "exp as a string.",
            access(with(access_claims(), json!({"exp": (T0 + 1200).to_string()}))),
            Some("invalid_claims"),
        ),
        case(
            "exp_float",
            "exp as a JSON number with a fraction.",
            sign(
                &k,
                &at_header,
                &claims.replace(&format!("\"exp\":{}", T0 + 1200), &format!("\"exp\":{}.5", T0 + 1200)),
            ),
            Some("invalid_claims"),
        ),
        case(
            "exp_negative",
            "exp is negative.",
            access(with(access_claims(), json!({"exp": -1}))),
            Some("invalid_claims"),
        ),
        case(
            "aud_number",
            "aud is a number.",
            access(with(access_claims(), json!({"aud": 7}))),
            Some("invalid_claims"),
        ),
        case(
            "scope_array",
            "scope as an array instead of a space-separated string.",
            access(with(access_claims(), json!({"scope": ["FILE_UPLOAD"]}))),
            Some("invalid_claims"),
        ),
        case("sub_empty", "An empty sub.", access(with(access_claims(), json!({"sub": ""}))), Some("invalid_claims")),
        case("jti_missing", "No jti.", access(with(access_claims(), json!({"jti": null}))), Some("invalid_claims")),
        case(
            "ips_empty",
            "ips is empty (no address could ever use the key).",
            access(with(access_claims(), json!({"ips": []}))),
            Some("invalid_claims"),
        ),
        case(
            "ips_too_many",
            "257 IP ranges (at most 256 entries per list claim).",
            access(with(access_claims(), json!({"ips": many_ips}))),
            Some("invalid_claims"),
        ),
        case(
            "upload_dirs_dot_segment",
            "A non-canonical scope in the token.",
            access(with(access_claims(), json!({"upload_dirs": ["/uploads/../private"]}))),
            Some("invalid_scope"),
        ),
        case(
            "list_dirs_trailing_slash",
            "A scope with a trailing slash is not canonical.",
            access(with(access_claims(), json!({"list_dirs": ["/public/"]}))),
            Some("invalid_scope"),
        ),
        case(
            "ips_bad_prefix",
            "An IPv4 range with a /33 prefix.",
            access(with(access_claims(), json!({"ips": ["10.0.0.0/33"]}))),
            Some("invalid_ip_range"),
        ),
        case(
            "revoked_template",
            "A key minted from a template the held revocation list names.",
            access(with(access_claims(), json!({"sub": "old-widget", "client_id": "old-widget"}))),
            Some("revoked"),
        )
        .holding(&list),
        case(
            "revoked_template_without_list",
            "The same key while no revocation list is held: access tokens do not need one.",
            access(with(access_claims(), json!({"sub": "old-widget", "client_id": "old-widget"}))),
            None,
        ),
        case(
            "revoked_api_key_chain",
            "A key minted with a permanent key (api_keys) the held list names.",
            access(with(access_claims(), json!({"api_keys": ["ak_live", "ak_revoked"]}))),
            Some("revoked"),
        )
        .holding(&list),
        case(
            "template_cut_off",
            "A key minted (iat) one second before its template's revoke_issued_before cut-off.",
            access(access_claims()),
            Some("revoked"),
        )
        .holding(&rl(with(revocation_claims(), json!({"templates_issued_before": {"upload-widget": T0 + 1}})))),
        case(
            "template_cut_off_at_iat",
            "A key minted at its template's cut-off: keys minted from then on are valid.",
            access(access_claims()),
            None,
        )
        .holding(&rl(with(revocation_claims(), json!({"templates_issued_before": {"upload-widget": T0}})))),
        case(
            "api_key_cut_off",
            "A key minted through a permanent key (api_keys) before that key's cut-off.",
            access(with(access_claims(), json!({"api_keys": [FIXED_API_KEY_ID]}))),
            Some("revoked"),
        )
        .holding(&rl(with(revocation_claims(), json!({"api_keys_issued_before": {FIXED_API_KEY_ID: T0 + 1}})))),
        case(
            "template_cut_off_without_list",
            "The same key while no revocation list is held: cut-offs travel only in the list.",
            access(access_claims()),
            None,
        ),
        // Permanent API keys.
        case("api_key_valid", "The golden permanent key, holding the golden list.", api_key.clone(), None)
            .kind("api_key")
            .holding(&list),
        case(
            "api_key_without_revocations",
            "No revocation list is held.",
            api_key.clone(),
            Some("revocations_missing"),
        )
        .kind("api_key"),
        case(
            "api_key_revocations_expired",
            "The held list expired (now = its exp).",
            api_key.clone(),
            Some("revocations_expired"),
        )
        .kind("api_key")
        .holding(&list)
        .at(T0 + 300),
        case(
            "api_key_revoked",
            "The key's id is on the list.",
            api(with(api_key_claims(), json!({"sub": "ak_revoked", "jti": "ak_revoked"}))),
            Some("revoked"),
        )
        .kind("api_key")
        .holding(&list),
        case(
            "api_key_creator_revoked",
            "A key created by a revoked key.",
            api(with(api_key_claims(), json!({"created_by": ["ak_revoked"]}))),
            Some("revoked"),
        )
        .kind("api_key")
        .holding(&list),
        case(
            "api_key_created_beneath_active_root",
            "A key created over HTTP by the golden key: its chain root is listed active.",
            api(with(
                api_key_claims(),
                json!({"sub": "ak_child", "jti": "ak_child", "created_by": [FIXED_API_KEY_ID]}),
            )),
            None,
        )
        .kind("api_key")
        .holding(&list),
        case(
            "api_key_record_deleted",
            "The golden key while the held list does not list it active (its record was deleted).",
            api_key.clone(),
            Some("revoked"),
        )
        .kind("api_key")
        .holding(&rl(with(revocation_claims(), json!({"active_api_keys": []})))),
        case(
            "api_key_list_without_active_ids",
            "The golden key holding a list without active_api_keys (from an issuer before 0.6): refused.",
            api_key.clone(),
            Some("revoked"),
        )
        .kind("api_key")
        .holding(&rl(with(revocation_claims(), json!({"active_api_keys": null})))),
        case(
            "api_key_never_recorded",
            "A key signed by the issuer whose id no list has ever named.",
            api(with(api_key_claims(), json!({"sub": "ak_unrecorded", "jti": "ak_unrecorded"}))),
            Some("revoked"),
        )
        .kind("api_key")
        .holding(&list),
        case(
            "api_key_root_not_active",
            "A key listed active itself, created beneath a key that is not: the root decides.",
            api(with(api_key_claims(), json!({"sub": "ak_child", "jti": "ak_child", "created_by": ["ak_gone"]}))),
            Some("revoked"),
        )
        .kind("api_key")
        .holding(&rl(with(revocation_claims(), json!({"active_api_keys": [FIXED_API_KEY_ID, "ak_child"]})))),
        case(
            "api_key_sub_not_jti",
            "sub and jti differ.",
            api(with(api_key_claims(), json!({"sub": "ak_other"}))),
            Some("invalid_claims"),
        )
        .kind("api_key")
        .holding(&list),
        case(
            "api_key_aud_string",
            "aud of a permanent key is always an array.",
            api(with(api_key_claims(), json!({"aud": AUDIENCE}))),
            Some("invalid_claims"),
        )
        .kind("api_key")
        .holding(&list),
        case(
            "api_key_wrong_audience",
            "aud without the audience.",
            api(with(api_key_claims(), json!({"aud": ["other"]}))),
            Some("wrong_audience"),
        )
        .kind("api_key")
        .holding(&list),
        case(
            "api_key_expired",
            "A permanent key with an expiry in the past.",
            api(with(api_key_claims(), json!({"exp": T0 + 10}))),
            Some("token_expired"),
        )
        .kind("api_key")
        .holding(&list),
        case(
            "access_token_as_api_key",
            "An access token presented as a permanent key.",
            good.clone(),
            Some("wrong_token_type"),
        )
        .kind("api_key")
        .holding(&list),
        // Revocation lists (loaded with set_revocations).
        case("revocations_valid", "The golden list.", list.clone(), None).kind("revocations"),
        case(
            "revocations_trailing_newline",
            "A list is trimmed of surrounding whitespace (an HTTP body).",
            format!("{list}\n"),
            None,
        )
        .kind("revocations"),
        case(
            "revocations_wrong_issuer",
            "A list from another issuer.",
            rl(with(revocation_claims(), json!({"iss": "https://keys.example.org"}))),
            Some("wrong_issuer"),
        )
        .kind("revocations"),
        case(
            "revocations_issued_in_future",
            "iat 6 s after now.",
            rl(with(revocation_claims(), json!({"iat": NOW + LEEWAY + 1, "exp": NOW + 400}))),
            Some("issued_in_future"),
        )
        .kind("revocations"),
        case(
            "revocations_exp_not_after_iat",
            "exp equals iat.",
            rl(with(revocation_claims(), json!({"exp": T0}))),
            Some("invalid_claims"),
        )
        .kind("revocations"),
        case(
            "revocations_unknown_kid",
            "A list signed by an unknown key.",
            sign(&attacker, &header("revocations+jwt", attacker.kid()), &revocation_claims().to_string()),
            Some("unknown_kid"),
        )
        .kind("revocations")
        .jose_reject(),
        case(
            "revocations_rollback_iat",
            "A list signed before the one held (a replay).",
            rl(with(revocation_claims(), json!({"iat": T0 - 10, "exp": T0 + 290}))),
            Some("revocations_rollback"),
        )
        .kind("revocations")
        .holding(&list),
        case(
            "revocations_rollback_ver",
            "A list of an older config version than the one held.",
            rl(with(revocation_claims(), json!({"iat": T0 + 30, "exp": T0 + 330, "ver": 6}))),
            Some("revocations_rollback"),
        )
        .kind("revocations")
        .holding(&list),
        case(
            "revocations_newer",
            "A newer list replaces the one held.",
            rl(with(revocation_claims(), json!({"iat": T0 + 30, "exp": T0 + 330, "ver": 8}))),
            None,
        )
        .kind("revocations")
        .holding(&list),
        case(
            "access_token_as_revocations",
            "An access token presented as a revocation list.",
            good,
            Some("wrong_token_type"),
        )
        .kind("revocations"),
    ]
}

fn negative_file() -> Value {
    let cases: Vec<Value> = negative_cases()
        .into_iter()
        .map(|c| {
            let mut v = json!({
                "name": c.name,
                "description": c.description,
                "kind": c.kind,
                "now": c.now,
                "token": c.token,
                "expect": match c.expect {
                    None => json!({ "valid": true }),
                    Some(code) => json!({ "valid": false, "code": code }),
                },
                "jose_reject": c.jose_reject,
            });
            if let Some(list) = c.revocations {
                v["revocations"] = json!(list);
            }
            v
        })
        .collect();
    json!({
        "description": "Negative corpus: tokens of all three types a verifier must refuse (and a few header and \
                        claim variants it must accept), with the refusal code. Format: docs/token.md.",
        "jwks": jwks_of(&key(SEED)),
        "verifier": verifier_settings(),
        "cases": cases,
    })
}

/// What the library says about one corpus case: `Ok(())` or the refusal code.
fn outcome(verifier: &Verifier, case: &Value) -> Result<(), &'static str> {
    let now = at(case["now"].as_u64().unwrap());
    if let Some(list) = case.get("revocations") {
        verifier.set_revocations(list.as_str().unwrap(), now).unwrap();
    }
    let token = case["token"].as_str().unwrap();
    let code = |e: keysmith::VerifyError| e.code();
    match case["kind"].as_str().unwrap() {
        "access_token" => verifier.verify(token, now).map(drop).map_err(code),
        "api_key" => verifier.verify_api_key(token, now).map(drop).map_err(code),
        "revocations" => verifier.set_revocations(token, now).map_err(code),
        other => panic!("unknown kind {other}"),
    }
}

/// Every corpus case gives exactly its expected outcome, and the stored corpus is what the
/// generator produces today.
#[test]
fn negative_corpus() {
    check_or_bless("negative.json", &negative_file());
    let file = load("negative.json");
    let mut failures = Vec::new();
    let cases = file["cases"].as_array().unwrap();
    for case in cases {
        // A fresh verifier per case: no list is held unless the case says so.
        let got = outcome(&verifier_from(&file), case);
        let want = match &case["expect"] {
            e if e["valid"] == true => Ok(()),
            e => Err(e["code"].as_str().unwrap()),
        };
        if got != want {
            failures.push(format!("{}: expected {want:?}, got {got:?}", case["name"]));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases:\n{}", failures.len(), cases.len(), failures.join("\n"));
    let names: std::collections::HashSet<_> = cases.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), cases.len(), "case names are unique");
}

// --- authorisation conformance -------------------------------------------------------------

/// The claim sets the authorisation cases run against, by name.
fn authorization_tokens() -> Vec<(&'static str, Value)> {
    vec![
        (
            "uploader",
            with(
                access_claims(),
                json!({"scope": "FILE_UPLOAD OBJECTS_LIST FILE_DELETE CONFIG_LIST",
                       "upload_dirs": ["/uploads/*"], "list_dirs": ["/uploads/*", "/public"]}),
            ),
        ),
        (
            "office",
            with(
                access_claims(),
                json!({"sub": "office", "client_id": "office", "scope": "FILE_UPLOAD OBJECTS_FETCH",
                       "upload_dirs": ["/*"], "list_dirs": ["/"], "ips": ["203.0.113.0/24", "2001:db8::/32"]}),
            ),
        ),
        (
            "limited_uploader",
            with(
                access_claims(),
                json!({"scope": "FILE_UPLOAD", "upload_dirs": ["/uploads/*"],
                       "upload_max_bytes": 1000, "upload_types": ["image/*", "application/pdf"]}),
            ),
        ),
        (
            "inbox",
            with(
                access_claims(),
                json!({"sub": "inbox", "client_id": "inbox", "scope": "DIR_CREATE OBJECTS_LIST CUSTOM_EXPORT",
                       "upload_dirs": ["/inbox"], "list_dirs": ["/"]}),
            ),
        ),
    ]
}

/// (name, token, permission, directory, address, expected denial code or `None` for allow).
type AuthCase =
    (&'static str, &'static str, &'static str, Option<&'static str>, Option<&'static str>, Option<&'static str>);

#[rustfmt::skip] // a table
const AUTHORIZATION_CASES: &[AuthCase] = &[
    ("upload_at_subtree_root", "uploader", "FILE_UPLOAD", Some("/uploads"), None, None),
    ("upload_below_subtree", "uploader", "FILE_UPLOAD", Some("/uploads/avatars/2026"), None, None),
    ("upload_sibling_prefix", "uploader", "FILE_UPLOAD", Some("/uploads2"), None, Some("outside_scope")),
    ("upload_into_list_scope", "uploader", "FILE_UPLOAD", Some("/public"), None, Some("outside_scope")),
    ("upload_root", "uploader", "FILE_UPLOAD", Some("/"), None, Some("outside_scope")),
    ("list_exact_scope", "uploader", "OBJECTS_LIST", Some("/public"), None, None),
    ("list_below_exact_scope", "uploader", "OBJECTS_LIST", Some("/public/sub"), None, Some("outside_scope")),
    ("list_in_subtree", "uploader", "OBJECTS_LIST", Some("/uploads/a"), None, None),
    ("delete_in_upload_scope", "uploader", "FILE_DELETE", Some("/uploads/a"), None, None),
    ("delete_in_list_scope", "uploader", "FILE_DELETE", Some("/public"), None, Some("outside_scope")),
    ("upload_without_directory", "uploader", "FILE_UPLOAD", None, None, Some("directory_required")),
    ("list_without_directory", "uploader", "OBJECTS_LIST", None, None, Some("directory_required")),
    ("unscoped_permission", "uploader", "CONFIG_LIST", None, None, None),
    ("unscoped_permission_ignores_directory", "uploader", "CONFIG_LIST", Some("/../etc"), None, None),
    ("permission_not_granted", "uploader", "FILE_MOVE", Some("/uploads/a"), None, Some("permission_missing")),
    ("permission_case_sensitive", "uploader", "file_upload", Some("/uploads/a"), None, Some("permission_missing")),
    ("permission_empty", "uploader", "", Some("/uploads/a"), None, Some("permission_missing")),
    ("permission_two_names", "uploader", "FILE_UPLOAD OBJECTS_LIST", Some("/uploads/a"), None, Some("permission_missing")),
    ("path_normalised", "uploader", "FILE_UPLOAD", Some("/uploads//a/./b/"), None, None),
    ("path_dot_dot", "uploader", "FILE_UPLOAD", Some("/uploads/../private"), None, Some("invalid_path")),
    ("path_dot_dot_semicolon", "uploader", "FILE_UPLOAD", Some("/uploads/..;/private"), None, Some("invalid_path")),
    ("path_percent_encoded", "uploader", "FILE_UPLOAD", Some("/uploads/%2e%2e/private"), None, Some("invalid_path")),
    ("path_double_encoded", "uploader", "FILE_UPLOAD", Some("/uploads/%252e%252e/private"), None, Some("invalid_path")),
    ("path_backslash", "uploader", "FILE_UPLOAD", Some("/uploads\\..\\private"), None, Some("invalid_path")),
    ("path_nul", "uploader", "FILE_UPLOAD", Some("/uploads/a\u{0}"), None, Some("invalid_path")),
    ("path_relative", "uploader", "FILE_UPLOAD", Some("uploads/a"), None, Some("invalid_path")),
    ("path_empty", "uploader", "FILE_UPLOAD", Some(""), None, Some("invalid_path")),
    ("address_not_consulted_when_unrestricted", "uploader", "FILE_UPLOAD", Some("/uploads/a"), Some("198.51.100.7"), None),
    ("address_in_range", "office", "FILE_UPLOAD", Some("/any/where"), Some("203.0.113.7"), None),
    ("address_required", "office", "FILE_UPLOAD", Some("/any/where"), None, Some("ip_required")),
    ("address_outside_range", "office", "FILE_UPLOAD", Some("/any/where"), Some("198.51.100.7"), Some("ip_not_allowed")),
    ("address_ipv4_mapped_ipv6", "office", "FILE_UPLOAD", Some("/any/where"), Some("::ffff:203.0.113.7"), None),
    ("address_ipv6_in_range", "office", "FILE_UPLOAD", Some("/any/where"), Some("2001:db8::1"), None),
    ("address_ipv6_outside_range", "office", "FILE_UPLOAD", Some("/any/where"), Some("2001:db9::1"), Some("ip_not_allowed")),
    ("root_only_scope_allows_root", "office", "OBJECTS_FETCH", Some("/"), Some("203.0.113.7"), None),
    ("root_only_scope_normalised_root", "office", "OBJECTS_FETCH", Some("//"), Some("203.0.113.7"), None),
    ("root_only_scope_refuses_below", "office", "OBJECTS_FETCH", Some("/a"), Some("203.0.113.7"), Some("outside_scope")),
    ("permission_checked_before_address", "office", "FILE_DELETE", Some("/a"), None, Some("permission_missing")),
    ("address_checked_before_directory", "office", "FILE_UPLOAD", Some("/../x"), Some("198.51.100.7"), Some("ip_not_allowed")),
    ("exact_scope", "inbox", "DIR_CREATE", Some("/inbox"), None, None),
    ("exact_scope_trailing_slash", "inbox", "DIR_CREATE", Some("/inbox/"), None, None),
    ("exact_scope_refuses_below", "inbox", "DIR_CREATE", Some("/inbox/sub"), None, Some("outside_scope")),
    ("root_list_scope_refuses_below", "inbox", "OBJECTS_LIST", Some("/inbox"), None, Some("outside_scope")),
    ("permission_without_scope_rule", "inbox", "CUSTOM_EXPORT", None, None, Some("no_scope_rule")),
];

/// (name, token, directory, size, content type, expected denial code or `None` for allow): an
/// upload decided with `FILE_UPLOAD` and no address.
type UploadCase = (&'static str, &'static str, &'static str, Option<u64>, Option<&'static str>, Option<&'static str>);

#[rustfmt::skip] // a table
const UPLOAD_CASES: &[UploadCase] = &[
    ("upload_within_limits", "limited_uploader", "/uploads/a", Some(1000), Some("image/png"), None),
    ("upload_type_range", "limited_uploader", "/uploads/a", Some(1), Some("image/webp"), None),
    ("upload_type_case_and_parameters", "limited_uploader", "/uploads/a", Some(1), Some("Application/PDF; charset=binary"), None),
    ("upload_too_large", "limited_uploader", "/uploads/a", Some(1001), Some("image/png"), Some("file_too_large")),
    ("upload_length_missing", "limited_uploader", "/uploads/a", None, Some("image/png"), Some("length_required")),
    ("upload_type_not_allowed", "limited_uploader", "/uploads/a", Some(1), Some("text/html"), Some("content_type_not_allowed")),
    ("upload_type_missing", "limited_uploader", "/uploads/a", Some(1), None, Some("content_type_not_allowed")),
    ("upload_type_wildcard_sent", "limited_uploader", "/uploads/a", Some(1), Some("*/*"), Some("content_type_not_allowed")),
    ("upload_type_prefix_is_not_a_range", "limited_uploader", "/uploads/a", Some(1), Some("application/pdfx"), Some("content_type_not_allowed")),
    ("upload_scope_checked_first", "limited_uploader", "/private", Some(5000), Some("text/html"), Some("outside_scope")),
    ("upload_unlimited_token_needs_nothing", "uploader", "/uploads/a", None, None, None),
];

fn authorization_file() -> Value {
    let k = key(SEED);
    let tokens: serde_json::Map<String, Value> = authorization_tokens()
        .into_iter()
        .map(|(name, claims)| {
            let token = k.sign_access_token(claims.to_string().as_bytes()).unwrap();
            (name.to_owned(), json!({ "claims": claims, "token": token }))
        })
        .collect();
    let cases: Vec<Value> = AUTHORIZATION_CASES
        .iter()
        .map(|&(name, token, permission, directory, address, denied)| {
            json!({
                "name": name,
                "token": token,
                "operation": { "permission": permission, "directory": directory, "address": address },
                "expect": match denied {
                    None => json!({ "decision": "allow" }),
                    Some(code) => json!({ "decision": "deny", "code": code }),
                },
            })
        })
        .chain(UPLOAD_CASES.iter().map(|&(name, token, directory, size, content_type, denied)| {
            json!({
                "name": name,
                "token": token,
                "operation": {
                    "permission": "FILE_UPLOAD", "directory": directory, "address": null,
                    "upload": { "size": size, "content_type": content_type },
                },
                "expect": match denied {
                    None => json!({ "decision": "allow" }),
                    Some(code) => json!({ "decision": "deny", "code": code }),
                },
            })
        }))
        .collect();
    json!({
        "description": "Authorisation conformance: verify the named token at `now`, then decide each operation \
                        (permission, directory, address, and for an upload its size and content type) with the \
                        scaleflex scope rules. Format: docs/token.md.",
        "jwks": jwks_of(&k),
        "verifier": verifier_settings(),
        "now": NOW,
        "tokens": tokens,
        "cases": cases,
    })
}

/// Every conformance case gives exactly its expected decision and denial code.
#[test]
fn authorization_conformance() {
    check_or_bless("authorization.json", &authorization_file());
    let file = load("authorization.json");
    let verifier = verifier_from(&file);
    let now = at(file["now"].as_u64().unwrap());
    let grants: std::collections::HashMap<&str, keysmith::Grant> = file["tokens"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, t)| {
            let grant = verifier.verify(t["token"].as_str().unwrap(), now).unwrap();
            assert_eq!(serde_json::to_value(grant.claims()).unwrap(), t["claims"], "{name}");
            (name.as_str(), grant)
        })
        .collect();
    let mut failures = Vec::new();
    let cases = file["cases"].as_array().unwrap();
    for case in cases {
        let op = &case["operation"];
        let address = op["address"].as_str().map(|a| a.parse().unwrap());
        let grant = &grants[case["token"].as_str().unwrap()];
        let (permission, directory) = (op["permission"].as_str().unwrap(), op["directory"].as_str());
        let got = match op.get("upload") {
            None => grant.authorize(permission, directory, address),
            Some(upload) => grant.authorize_upload(
                permission,
                directory,
                address,
                upload["size"].as_u64(),
                upload["content_type"].as_str(),
            ),
        }
        .map_err(|d| d.code());
        let want = match case["expect"]["decision"].as_str().unwrap() {
            "allow" => Ok(()),
            _ => Err(case["expect"]["code"].as_str().unwrap()),
        };
        if got != want {
            failures.push(format!("{}: expected {want:?}, got {got:?}", case["name"]));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

/// PyJWT, an independent JOSE implementation, verifies the golden tokens of all three types
/// and refuses every signature-level case of the negative corpus.
#[test]
fn pyjwt_checks_the_published_vectors() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/vectors_check.py");
    let out = std::process::Command::new("python3").arg(script).arg(vectors_dir()).output().expect("python3 runs");
    assert!(
        out.status.success(),
        "PyJWT disagrees with the vectors (is PyJWT installed? run scripts/test-deps.sh): {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["golden"], 3);
    let expected =
        load("negative.json")["cases"].as_array().unwrap().iter().filter(|c| c["jose_reject"] == true).count();
    assert_eq!(summary["rejected"].as_u64().unwrap(), expected as u64, "every signature-level case ran");
}
