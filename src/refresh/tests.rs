//! Unit tests of the refreshers, with an in-memory fetcher (and one real socket for `Drop`).

use super::*;
use crate::token::claims::RevocationClaims;
use crate::token::jwk::{Jwks, PublicJwk, thumbprint};
use crate::token::jws::{self, Signer, TokenType};
use crate::verify::VerifyError;
use ed25519_dalek::{Signer as _, SigningKey};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

struct Key(SigningKey, String);

impl Key {
    fn new(seed: u8) -> Self {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let kid = thumbprint(&key.verifying_key());
        Self(key, kid)
    }

    fn jwks(&self) -> String {
        serde_json::to_string(&Jwks { keys: vec![PublicJwk::from_key(&self.0.verifying_key())] }).unwrap()
    }
}

impl Signer for Key {
    fn kid(&self) -> &str {
        &self.1
    }

    fn sign(&self, input: &[u8]) -> [u8; 64] {
        self.0.sign(input).to_bytes()
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn access_token(key: &Key) -> String {
    let now = unix_now();
    let claims = serde_json::json!({
        "iss": "https://iss", "aud": "demo", "sub": "t", "client_id": "t",
        "iat": now - 1, "nbf": now - 1, "exp": now + 600, "jti": "abc",
        "scope": "FILE_UPLOAD", "ver": 1, "upload_dirs": ["/*"], "list_dirs": ["/*"], "ips": ["0.0.0.0/0", "::/0"],
    });
    jws::encode(key, TokenType::Access, &claims).unwrap()
}

fn revocation_list(key: &Key, lifetime: u64) -> String {
    let now = unix_now();
    let claims = RevocationClaims {
        iss: "https://iss".into(),
        iat: now - 1,
        exp: now + lifetime,
        ver: 1,
        revoked_api_keys: vec![],
        revoked_templates: vec![],
        active_api_keys: vec![],
        templates_issued_before: Default::default(),
        api_keys_issued_before: Default::default(),
    };
    jws::encode(key, TokenType::Revocations, &claims).unwrap()
}

/// Serves documents from memory and counts requests per URL.
#[derive(Default)]
struct Memory {
    docs: Mutex<HashMap<String, (String, Option<&'static str>)>>,
    gets: Mutex<HashMap<String, u64>>,
    order: Mutex<Vec<String>>,
    total: AtomicU64,
    /// How long each fetch takes (ms).
    delay_ms: AtomicU64,
}

impl Memory {
    fn put(&self, url: &str, body: String, cache_control: Option<&'static str>) {
        self.docs.lock().unwrap().insert(url.to_owned(), (body, cache_control));
    }

    fn gets(&self, url: &str) -> u64 {
        self.gets.lock().unwrap().get(url).copied().unwrap_or(0)
    }
}

impl Fetch for Memory {
    fn get(&self, url: &str, _etag: Option<&str>) -> Result<Fetched, FetchError> {
        self.total.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(self.delay_ms.load(Ordering::Relaxed)));
        *self.gets.lock().unwrap().entry(url.to_owned()).or_default() += 1;
        self.order.lock().unwrap().push(url.to_owned());
        let docs = self.docs.lock().unwrap();
        let (body, cache_control) =
            docs.get(url).cloned().ok_or_else(|| FetchError::Http { url: url.into(), source: "404".into() })?;
        Ok(Fetched::new(Some(body), None, cache_control))
    }
}

const JWKS: &str = "http://keys.test/.well-known/jwks.json";
const LIST: &str = "http://keys.test/v1/revocations";

fn verifier() -> Verifier {
    Verifier::new(KeySet::default(), "https://iss", "demo")
}

fn wait_for(what: &str, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn start_loads_the_keys_once_then_the_list_at_the_documents_own_intervals() {
    let key = Key::new(1);
    let memory = Arc::new(Memory::default());
    memory.put(JWKS, key.jwks(), Some("public, max-age=300"));
    memory.put(LIST, revocation_list(&key, 600), Some("no-cache"));
    let verifier = verifier();
    let options = RefreshOptions::default().fetcher(Arc::clone(&memory) as Arc<dyn Fetch>);
    let refresher = Refresher::start(&verifier, JWKS, Some(LIST.into()), options).unwrap();
    // The keys are in when `start` returns.
    verifier.verify(&access_token(&key), SystemTime::now()).unwrap();
    // The list, started after the keys, verifies; its next fetch is at half its lifetime.
    wait_for("the revocation list", || verifier.revocations().is_some());
    wait_for("the list's status", || refresher.revocations_status().is_some_and(|s| s.interval.is_some()));
    let list_interval = refresher.revocations_status().unwrap().interval.unwrap();
    assert!((Duration::from_secs(290)..=Duration::from_secs(300)).contains(&list_interval), "{list_interval:?}");
    assert_eq!(refresher.revocations_status().unwrap().last_error, None);
    // The JWKS was fetched once (not again by the thread), and before the list.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(memory.gets(JWKS), 1);
    assert_eq!(memory.order.lock().unwrap().first().map(String::as_str), Some(JWKS));
    let status = refresher.jwks_status();
    assert_eq!((status.fetches, status.interval), (1, Some(Duration::from_secs(300))));
}

#[test]
fn start_fails_when_the_first_jwks_is_not_a_key_set() {
    let memory = Arc::new(Memory::default());
    memory.put(JWKS, "{\"keys\": 7}".into(), None);
    let options = RefreshOptions::default().fetcher(Arc::clone(&memory) as Arc<dyn Fetch>);
    let err = Refresher::start(&verifier(), JWKS, None, options).err().unwrap();
    assert!(matches!(err, FetchError::InvalidJwks(_)), "{err:?}");
    let options = RefreshOptions::default().fetcher(Arc::clone(&memory) as Arc<dyn Fetch>);
    assert!(matches!(Refresher::start(&verifier(), LIST, None, options), Err(FetchError::Http { .. })));
}

#[test]
fn a_token_from_a_new_key_waits_for_the_early_refetch() {
    let (old, new) = (Key::new(1), Key::new(2));
    let memory = Arc::new(Memory::default());
    memory.put(JWKS, old.jwks(), Some("max-age=3600"));
    let verifier = verifier().unknown_kid_wait(Duration::from_secs(3));
    let options = RefreshOptions { min_gap: Duration::from_millis(200), ..RefreshOptions::default() }
        .fetcher(Arc::clone(&memory) as Arc<dyn Fetch>);
    let _refresher = Refresher::start(&verifier, JWKS, None, options).unwrap();
    // The issuer rotates; the verifier's copy is an hour from its next fetch.
    memory.put(JWKS, new.jwks(), Some("max-age=3600"));
    verifier.verify(&access_token(&new), SystemTime::now()).unwrap();
    assert_eq!(memory.gets(JWKS), 2);
    // A forged kid waits at most the bound and is refused.
    let start = Instant::now();
    let forged = access_token(&Key::new(3));
    assert_eq!(verifier.verify(&forged, SystemTime::now()).unwrap_err(), VerifyError::UnknownKid);
    assert!(start.elapsed() < Duration::from_secs(4));
    // Without a wait, the token is refused at once (and an early fetch is asked for).
    let quick = Verifier::new(KeySet::default(), "https://iss", "demo");
    quick.set_key_source(Arc::new(RefreshedKeys::new(Arc::new(KeySet::default()))));
    assert_eq!(quick.verify(&access_token(&new), SystemTime::now()).unwrap_err(), VerifyError::UnknownKid);
}

#[test]
fn cache_control_max_age() {
    assert_eq!(max_age("public, max-age=300"), Some(Duration::from_secs(300)));
    assert_eq!(max_age("Max-Age=\"5\""), Some(Duration::from_secs(5)));
    for none in ["no-cache", "no-store", "", "max-age=", "max-age=-1", "max-age=1, max-age=2", "s-maxage=5"] {
        assert_eq!(max_age(none), None, "{none}");
    }
}

#[test]
fn dropping_a_refresher_does_not_wait_for_a_hanging_fetch() {
    // A server that accepts and never answers: the fetch hangs until its 10 s timeout.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/revocations", listener.local_addr().unwrap());
    let _held = std::thread::spawn(move || {
        listener.accept().map(|(c, _)| {
            std::thread::sleep(Duration::from_secs(30));
            c
        })
    });
    let refresher = RevocationRefresher::spawn(verifier(), url, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    drop(refresher);
    assert!(start.elapsed() < Duration::from_secs(1), "drop blocked for {:?}", start.elapsed());
}

#[test]
fn a_malformed_jwks_is_not_reported_as_an_http_failure() {
    let keys = RefreshedKeys::new(Arc::new(KeySet::default()));
    let err = keys.load(&Fetched::new(Some("{\"keys\": 7}".into()), None, None)).unwrap_err();
    assert!(!matches!(err, FetchError::Http { .. }), "{err:?}");
    assert!(!err.to_string().starts_with("fetching"), "{err}");
}

/// Forged `kid`s are free to send: many at once must not each hold a thread until the next
/// fetch. A few wait (the waiter cap); the others are refused at once; a `kid` a completed
/// fetch did not bring is refused at once for a while; a real new key still waits and verifies.
#[test]
fn forged_kids_at_once_are_answered_promptly_and_a_new_key_still_waits() {
    let (old, new) = (Key::new(1), Key::new(2));
    let memory = Arc::new(Memory::default());
    memory.put(JWKS, old.jwks(), Some("max-age=3600"));
    let verifier = verifier().unknown_kid_wait(Duration::from_secs(3));
    let min_gap = Duration::from_millis(300);
    let options =
        RefreshOptions { min_gap, ..RefreshOptions::default() }.fetcher(Arc::clone(&memory) as Arc<dyn Fetch>);
    let _refresher = Refresher::start(&verifier, JWKS, None, options).unwrap();
    memory.delay_ms.store(500, Ordering::Relaxed);

    let started = Instant::now();
    let threads: Vec<_> = (0..64u8)
        .map(|i| {
            let verifier = verifier.clone();
            let token = access_token(&Key::new(100 + i));
            std::thread::spawn(move || {
                let start = Instant::now();
                let result = verifier.verify(&token, SystemTime::now());
                (result.unwrap_err(), start.elapsed())
            })
        })
        .collect();
    let answers: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let total = started.elapsed();
    assert!(answers.iter().all(|(e, _)| *e == VerifyError::UnknownKid));
    let prompt = answers.iter().filter(|(_, took)| *took < Duration::from_millis(200)).count();
    assert!(prompt >= 64 - poller::MAX_KID_WAITERS, "only {prompt} of 64 forged tokens were answered at once");
    assert!(total < Duration::from_secs(3), "64 forged tokens took {total:?}");

    // A kid that a completed fetch did not bring is refused at once within the gap.
    let forged = access_token(&Key::new(200));
    assert_eq!(verifier.verify(&forged, SystemTime::now()).unwrap_err(), VerifyError::UnknownKid);
    let again = Instant::now();
    assert_eq!(verifier.verify(&forged, SystemTime::now()).unwrap_err(), VerifyError::UnknownKid);
    assert!(again.elapsed() < Duration::from_millis(100), "a known-missing kid waited {:?}", again.elapsed());

    // The issuer rotates (once the early fetch the refusals asked for is over): a token from the
    // new key waits for one fetch and verifies.
    std::thread::sleep(min_gap + Duration::from_millis(500 + 400));
    memory.delay_ms.store(0, Ordering::Relaxed);
    memory.put(JWKS, new.jwks(), Some("max-age=3600"));
    let before = memory.gets(JWKS);
    verifier.verify(&access_token(&new), SystemTime::now()).unwrap();
    assert_eq!(memory.gets(JWKS), before + 1);
}

#[test]
fn every_failure_is_counted_in_failures_total_and_a_success_does_not_reset_it() {
    let memory = Arc::new(Memory::default());
    let verifier = verifier();
    let interval = Duration::from_millis(100);
    let refresher = JwksRefresher::plug(
        Arc::clone(&memory) as Arc<dyn Fetch>,
        &verifier,
        JWKS.into(),
        Interval::Fixed(interval),
        interval,
        Arc::new(RefreshedKeys::new(Arc::new(KeySet::default()))),
        None,
    );
    wait_for("two failures", || refresher.status().failures_total >= 2);
    memory.put(JWKS, Key::new(1).jwks(), None);
    wait_for("a load", || refresher.status().last_success.is_some());
    let status = refresher.status();
    assert_eq!((status.failures, status.last_error.as_deref()), (0, None));
    assert!(status.failures_total >= 2, "{status:?}");
}
