//! Keeping a verifier's revocation list and keys fresh from URLs, on background threads.
//!
//! Behind the `refresh` feature so the core verifier stays free of an HTTP client. The
//! refresher polls `GET /v1/revocations`, keeps the last good list until it expires (the
//! verifier then refuses permanent keys: fail closed), and backs off exponentially on errors.

use crate::token::jwk::KeySet;
use crate::verify::KeySource;
use crate::verify::Verifier;
use std::io::Read as _;
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError, RwLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

/// Largest document fetched, in bytes.
const MAX_FETCH_BYTES: u64 = crate::verify::revocation::MAX_REVOCATIONS_LEN as u64;
/// The shortest gap between two early JWKS fetches.
const MIN_GAP_FLOOR: Duration = Duration::from_millis(100);
/// First delay after a failure; it doubles up to the polling interval.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The request failed or the server answered with an error status.
    #[error("fetching {url}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        #[source]
        source: Box<ureq::Error>,
    },
    /// The response body could not be read.
    #[error("reading the response from {url}")]
    Read {
        /// The URL.
        url: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The fetched JWKS is not a valid key set.
    #[error("JWKS refused")]
    InvalidJwks(#[from] crate::token::jwk::JwkError),
    /// The body is larger than the limit.
    #[error("{0}: response larger than {MAX_FETCH_BYTES} bytes")]
    TooLarge(String),
    /// The fetched list did not verify.
    #[error("revocation list refused: {0}")]
    Refused(#[from] crate::verify::VerifyError),
}

/// Fetches `url` with a 10 s timeout and a size limit. `Ok(None)` when the server answered
/// `304 Not Modified` to `etag`. Returns the body and its ETag.
///
/// # Errors
///
/// [`FetchError`].
pub fn fetch(url: &str, etag: Option<&str>) -> Result<Option<(String, Option<String>)>, FetchError> {
    let mut request = ureq::get(url).timeout(Duration::from_secs(10));
    if let Some(etag) = etag {
        request = request.set("If-None-Match", etag);
    }
    let response = request.call().map_err(|e| FetchError::Http { url: url.to_owned(), source: Box::new(e) })?;
    if response.status() == 304 {
        return Ok(None);
    }
    let etag = response.header("etag").map(str::to_owned);
    let mut body = String::new();
    response
        .into_reader()
        .take(MAX_FETCH_BYTES + 1)
        .read_to_string(&mut body)
        .map_err(|source| FetchError::Read { url: url.to_owned(), source })?;
    if body.len() as u64 > MAX_FETCH_BYTES {
        return Err(FetchError::TooLarge(url.to_owned()));
    }
    Ok(Some((body, etag)))
}

/// An error and its sources, one after the other: what the status shows an operator.
fn with_sources(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The keys of the last good JWKS: the key source a [`JwksRefresher`] plugs into its
/// verifier. A token naming an unknown `kid` wakes the poller early.
struct RefreshedKeys {
    keys: RwLock<Arc<KeySet>>,
    poller: OnceLock<Weak<Shared>>,
}

impl KeySource for RefreshedKeys {
    fn key_set(&self) -> Arc<KeySet> {
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn unknown_kid(&self) {
        if let Some(shared) = self.poller.get().and_then(Weak::upgrade) {
            Poller::nudge(&shared);
        }
    }
}

/// Parses a fetched JWKS and makes its keys the ones `target` serves.
fn load_jwks(target: &RefreshedKeys, body: &str) -> Result<(), FetchError> {
    let keys = KeySet::from_jwks_json(body.as_bytes())?;
    *target.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
    Ok(())
}

/// What a refresher has seen.
#[derive(Debug, Clone, Default)]
pub struct RefreshStatus {
    /// When a document was last loaded (or confirmed unchanged).
    pub last_success: Option<SystemTime>,
    /// The last error, cleared by a success.
    pub last_error: Option<String>,
    /// Failures in a row.
    pub failures: u32,
    /// Requests made so far.
    pub fetches: u64,
}

struct Shared {
    stop: Mutex<bool>,
    wake: Condvar,
    /// Set by an unknown-`kid` hook: fetch before the interval is up (throttled).
    early: Mutex<bool>,
    status: Mutex<RefreshStatus>,
}

/// A background thread polling one URL. Stops when dropped.
struct Poller {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Poller {
    /// Polls with `load(body)` every `interval`; an early wake-up is honoured at most once per
    /// `min_gap`.
    fn spawn(
        url: String,
        interval: Duration,
        min_gap: Duration,
        load: impl Fn(&str) -> Result<(), FetchError> + Send + 'static,
    ) -> Self {
        let shared = Arc::new(Shared {
            stop: Mutex::new(false),
            wake: Condvar::new(),
            early: Mutex::new(false),
            status: Mutex::default(),
        });
        let thread = std::thread::spawn({
            let shared = Arc::clone(&shared);
            move || run(&shared, &url, interval, min_gap, &load)
        });
        Self { shared, thread: Some(thread) }
    }

    fn status(&self) -> RefreshStatus {
        self.shared.status.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Asks for an early fetch. The flag is set and the thread woken while holding the mutex
    /// the thread waits on, so the wake-up cannot fall between its check and its wait.
    fn nudge(shared: &Shared) {
        let _waiting = shared.stop.lock().unwrap_or_else(PoisonError::into_inner);
        *shared.early.lock().unwrap_or_else(PoisonError::into_inner) = true;
        shared.wake.notify_all();
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        *self.shared.stop.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(
    shared: &Shared,
    url: &str,
    interval: Duration,
    min_gap: Duration,
    load: &dyn Fn(&str) -> Result<(), FetchError>,
) {
    let mut etag: Option<String> = None;
    loop {
        let fetched_at = std::time::Instant::now();
        let outcome = fetch(url, etag.as_deref()).and_then(|fetched| {
            if let Some((body, new_etag)) = fetched {
                load(&body)?;
                etag = new_etag;
            }
            Ok(())
        });
        let delay = {
            let mut status = shared.status.lock().unwrap_or_else(PoisonError::into_inner);
            status.fetches += 1;
            match outcome {
                Ok(()) => {
                    status.last_success = Some(SystemTime::now());
                    status.last_error = None;
                    status.failures = 0;
                    interval
                }
                Err(e) => {
                    status.failures = status.failures.saturating_add(1);
                    status.last_error = Some(with_sources(&e));
                    // A refused document may come from a cache: fetch it whole next time.
                    etag = None;
                    FIRST_BACKOFF.saturating_mul(1 << status.failures.min(16)).min(interval)
                }
            }
        };
        // Sleep until the delay is up, or until an early wake-up once `min_gap` has passed.
        let mut stop = shared.stop.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if *stop {
                return;
            }
            let elapsed = fetched_at.elapsed();
            if elapsed >= delay {
                break;
            }
            let early = *shared.early.lock().unwrap_or_else(PoisonError::into_inner);
            if early && elapsed >= min_gap {
                break;
            }
            let wait = if early { min_gap.saturating_sub(elapsed) } else { delay - elapsed };
            stop = shared.wake.wait_timeout(stop, wait).unwrap_or_else(PoisonError::into_inner).0;
        }
        *shared.early.lock().unwrap_or_else(PoisonError::into_inner) = false;
    }
}

/// Keeps a [`Verifier`]'s revocation list fresh. Stops when dropped.
pub struct RevocationRefresher(Poller);

impl RevocationRefresher {
    /// Starts polling `url` every `interval` (choose at most half of the issuer's
    /// `revocations_max_age`) and loading each new list into `verifier` and all its clones. The
    /// first fetch happens at once; the last good list is kept until it expires, and errors
    /// back off exponentially up to `interval`. A list that may not replace the one held (see
    /// [`Verifier::set_revocations`]: an earlier one while the held list is fresh, as after a
    /// config rollback) counts as an error
    /// ([`VerifyError::RevocationsRollback`](crate::verify::VerifyError::RevocationsRollback) in
    /// [`RefreshStatus::last_error`]); once the held list expires the next fresh list is taken.
    pub fn spawn(verifier: Verifier, url: impl Into<String>, interval: Duration) -> Self {
        Self(Poller::spawn(url.into(), interval, interval, move |body| {
            verifier.set_revocations(body, SystemTime::now()).map_err(FetchError::from)
        }))
    }

    /// The refresher's status.
    pub fn status(&self) -> RefreshStatus {
        self.0.status()
    }
}

/// Keeps a [`Verifier`]'s keys current from a JWKS URL, so signing-key rotations reach it
/// without a restart. Stops when dropped.
pub struct JwksRefresher(Poller);

impl JwksRefresher {
    /// Starts polling the JWKS at `url` every `interval` (the issuer's `jwks_max_age` is the
    /// natural choice) and loading it into `verifier` and all its clones. A token naming an
    /// unknown `kid` triggers an early fetch, at most once per `min_gap`, so forged `kid`s
    /// cannot cause a storm of requests.
    pub fn spawn(verifier: Verifier, url: impl Into<String>, interval: Duration, min_gap: Duration) -> Self {
        // Never more than ten fetches a second, whatever the caller asked for.
        let min_gap = min_gap.max(MIN_GAP_FLOOR);
        let source = Arc::new(RefreshedKeys { keys: RwLock::new(verifier.keys()), poller: OnceLock::new() });
        let target = Arc::clone(&source);
        let poller = Poller::spawn(url.into(), interval, min_gap, move |body| load_jwks(&target, body));
        // Set once, right after the poller exists; until then an unknown kid wakes nobody.
        let _ = source.poller.set(Arc::downgrade(&poller.shared));
        verifier.set_key_source(source);
        Self(poller)
    }

    /// The refresher's status.
    pub fn status(&self) -> RefreshStatus {
        self.0.status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_jwks_is_not_reported_as_an_http_failure() {
        let keys = RefreshedKeys { keys: RwLock::new(Arc::new(KeySet::from_keys([]))), poller: OnceLock::new() };
        let err = load_jwks(&keys, "{\"keys\": 7}").unwrap_err();
        assert!(!matches!(err, FetchError::Http { .. }), "{err:?}");
        assert!(!err.to_string().starts_with("fetching"), "{err}");
    }
}
