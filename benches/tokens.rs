//! Minting and verifying beside raw ed25519-dalek on the same bytes.
//!
//! Run: `cargo bench --bench tokens`. Figures and ratios are recorded in `docs/benchmarks.md`.

#![allow(missing_docs)] // criterion_main! generates an undocumented `main`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark may stop on broken setup.

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use ed25519_dalek::{Signature, Signer as _};
use keysmith::{Config, Issuer, Keyring, MintRequest, SigningKey};
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

const CONFIG: &str = r#"
version = 7
issuer = "https://keys.example.com"
[projects.demo]
[[templates]]
id = "upload-widget"
project = "demo"
permissions = ["FILE_UPLOAD", "OBJECTS_LIST", "OBJECTS_FETCH"]
[templates.upload]
limit_per_min = 30
dir_scope = "/uploads/*"
[templates.restrict]
whitelist_ip_ranges = ["10.0.0.0/8", "192.168.0.0/16", "::1"]
[templates.listing]
directory_scope = ["/uploads/*", "/public/*"]
"#;

fn setup() -> (Issuer, ed25519_dalek::SigningKey) {
    let dalek = ed25519_dalek::SigningKey::from_bytes(&[42u8; 32]);
    let config = Config::from_toml(CONFIG, Path::new(".")).unwrap();
    let issuer = Issuer::from_parts(config, Keyring::single(SigningKey::new(&dalek)), None);
    (issuer, dalek)
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn bench_mint(c: &mut Criterion) {
    let (issuer, dalek) = setup();
    let caller: IpAddr = "10.1.2.3".parse().unwrap();
    let request = MintRequest::default();
    let token = issuer.mint("demo", "upload-widget", &request, Some(caller), now()).unwrap().token;
    let input = token.rsplit_once('.').unwrap().0.as_bytes().to_vec();

    let mut group = c.benchmark_group("mint");
    group.bench_function("keysmith_mint", |b| {
        b.iter(|| issuer.mint("demo", "upload-widget", black_box(&request), Some(caller), now()).unwrap())
    });
    group.bench_function("dalek_sign_same_bytes", |b| b.iter(|| dalek.sign(black_box(&input))));

    // For scale: jsonwebtoken's encode re-derives the key from its bytes on every call.
    let claims: serde_json::Value = serde_json::from_slice(&base64_decode(token.split('.').nth(1).unwrap())).unwrap();
    let der = dalek.to_pkcs8_der().unwrap();
    let key = jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes());
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    group.bench_function("jsonwebtoken_encode", |b| {
        b.iter(|| jsonwebtoken::encode(&header, black_box(&claims), &key).unwrap())
    });
    group.finish();
}

fn bench_verify(c: &mut Criterion) {
    let (issuer, dalek) = setup();
    let caller: IpAddr = "10.1.2.3".parse().unwrap();
    let token = issuer.mint("demo", "upload-widget", &MintRequest::default(), Some(caller), now()).unwrap().token;
    let verifier = issuer.verifier("demo");
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = Signature::from_slice(&base64_decode(sig)).unwrap();
    let public = dalek.verifying_key();

    let mut group = c.benchmark_group("verify");
    group.bench_function("keysmith_verify_authorize", |b| {
        b.iter(|| {
            let grant = verifier.verify(black_box(&token), now()).unwrap();
            grant.authorize("FILE_UPLOAD", Some("/uploads/avatars/2026"), Some(caller)).unwrap();
        })
    });
    group.bench_function("dalek_verify_strict_same_bytes", |b| {
        b.iter(|| public.verify_strict(black_box(input.as_bytes()), &sig).unwrap())
    });
    // The same key again, as with every upload of a session: a hit of the verified-token cache
    // (a SHA-256 of the token, `exp`/`nbf`/`iat` and the revocations re-checked), then the same
    // authorisation. Target: at most 5 % of `dalek_verify_strict_same_bytes`.
    let cached = issuer.verifier("demo").cache_verified(keysmith::DEFAULT_CACHE_CAPACITY);
    cached.verify(&token, now()).unwrap();
    group.bench_function("keysmith_cached_verify_authorize", |b| {
        b.iter(|| {
            let grant = cached.verify(black_box(&token), now()).unwrap();
            grant.authorize("FILE_UPLOAD", Some("/uploads/avatars/2026"), Some(caller)).unwrap();
        })
    });
    group.finish();
}

/// Verifying with a 10,000-entry revocation list loaded costs what verifying without one does:
/// the list is hash sets and maps built once. Measured with 10,000 revoked ids and with 10,000
/// active ids (every permanent key is looked up among the active ones). Also prints the signed
/// list's size for 100, 1,000 and 10,000 ids of each kind.
fn bench_revocations(c: &mut Criterion) {
    let dalek = ed25519_dalek::SigningKey::from_bytes(&[42u8; 32]);
    let issuer_of = |text: &str| {
        let config = Config::from_toml(text, Path::new(".")).unwrap();
        Issuer::from_parts(config, Keyring::single(SigningKey::new(&dalek)), None)
    };
    // The permanent key presented: created by the same signing key, recorded in every config.
    let new = keysmith::issuer::NewApiKey {
        projects: vec!["demo".into()],
        permissions: vec!["FILE_UPLOAD".into()],
        ..Default::default()
    };
    let created = issuer_of(CONFIG).create_api_key(&new, now()).unwrap();
    let (api_key, record) = (
        created.secret,
        format!("[[api_keys]]\nid = \"{}\"\npermissions = [\"FILE_UPLOAD\"]\nprojects = [\"demo\"]\n", created.id),
    );
    let with_records = |n: usize, active: bool| {
        let mut text = format!("{CONFIG}{record}");
        for i in 0..n {
            text.push_str(&format!(
                "[[api_keys]]\nid = \"ak_{i:022}\"\npermissions = [\"FILE_UPLOAD\"]\nprojects = [\"demo\"]\nactive = {active}\n"
            ));
        }
        issuer_of(&text)
    };
    for n in [100, 1_000, 10_000] {
        for active in [false, true] {
            let list = with_records(n, active).revocation_list(now()).unwrap().token;
            let kind = if active { "active" } else { "revoked" };
            eprintln!("signed revocation list with {n} {kind} ids: {} bytes", list.len());
        }
    }
    let issuer = with_records(10_000, false);
    let active = with_records(10_000, true);
    let caller: IpAddr = "10.1.2.3".parse().unwrap();
    let token = issuer.mint("demo", "upload-widget", &MintRequest::default(), Some(caller), now()).unwrap().token;
    let plain = issuer.verifier("demo");
    let listed =
        issuer.verifier("demo").with_revocations(&issuer.revocation_list(now()).unwrap().token, now()).unwrap();
    let listed_active =
        active.verifier("demo").with_revocations(&active.revocation_list(now()).unwrap().token, now()).unwrap();

    let mut group = c.benchmark_group("revocations");
    group.bench_function("verify_authorize_without_list", |b| {
        b.iter(|| {
            let grant = plain.verify(black_box(&token), now()).unwrap();
            grant.authorize("FILE_UPLOAD", Some("/uploads/avatars/2026"), Some(caller)).unwrap();
        })
    });
    group.bench_function("verify_authorize_with_10k_list", |b| {
        b.iter(|| {
            let grant = listed.verify(black_box(&token), now()).unwrap();
            grant.authorize("FILE_UPLOAD", Some("/uploads/avatars/2026"), Some(caller)).unwrap();
        })
    });
    group.bench_function("verify_api_key_with_10k_list", |b| {
        b.iter(|| listed.verify_api_key(black_box(&api_key), now()).unwrap())
    });
    group.bench_function("verify_api_key_with_10k_active", |b| {
        b.iter(|| listed_active.verify_api_key(black_box(&api_key), now()).unwrap())
    });
    group.finish();
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).unwrap()
}

criterion_group!(benches, bench_mint, bench_verify, bench_revocations);
criterion_main!(benches);
