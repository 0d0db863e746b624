//! Keeping a verifier's revocation list fresh from a URL, on a background thread.
//!
//! Behind the `refresh` feature so the core verifier stays free of an HTTP client. The
//! refresher polls `GET /v1/revocations`, keeps the last good list until it expires (the
//! verifier then refuses permanent keys: fail closed), and backs off exponentially on errors.

use crate::verify::Verifier;
use std::io::Read as _;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

/// Largest document fetched, in bytes.
const MAX_FETCH_BYTES: u64 = crate::revocation::MAX_REVOCATIONS_LEN as u64;
/// First delay after a failure; it doubles up to the polling interval.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The request failed or the server answered with an error status.
    #[error("fetching {url}: {message}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
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
    let http = |message: String| FetchError::Http { url: url.to_owned(), message };
    let mut request = ureq::get(url).timeout(Duration::from_secs(10));
    if let Some(etag) = etag {
        request = request.set("If-None-Match", etag);
    }
    let response = request.call().map_err(|e| http(e.to_string()))?;
    if response.status() == 304 {
        return Ok(None);
    }
    let etag = response.header("etag").map(str::to_owned);
    let mut body = String::new();
    response.into_reader().take(MAX_FETCH_BYTES + 1).read_to_string(&mut body).map_err(|e| http(e.to_string()))?;
    if body.len() as u64 > MAX_FETCH_BYTES {
        return Err(FetchError::TooLarge(url.to_owned()));
    }
    Ok(Some((body, etag)))
}

/// What the refresher has seen.
#[derive(Debug, Clone, Default)]
pub struct RefreshStatus {
    /// When a list was last loaded (or confirmed unchanged).
    pub last_success: Option<SystemTime>,
    /// The last error, cleared by a success.
    pub last_error: Option<String>,
    /// Failures in a row.
    pub failures: u32,
}

struct Shared {
    stop: Mutex<bool>,
    wake: Condvar,
    status: Mutex<RefreshStatus>,
}

/// A background thread that keeps a [`Verifier`]'s revocation list fresh. Stops when dropped.
pub struct RevocationRefresher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl RevocationRefresher {
    /// Starts polling `url` every `interval` (choose at most half of the issuer's
    /// `revocations_max_age`) and loading each new list into `verifier` and all its clones. The
    /// first fetch happens at once.
    pub fn spawn(verifier: Verifier, url: impl Into<String>, interval: Duration) -> Self {
        let shared = Arc::new(Shared { stop: Mutex::new(false), wake: Condvar::new(), status: Mutex::default() });
        let url = url.into();
        let thread = std::thread::spawn({
            let shared = Arc::clone(&shared);
            move || run(&shared, &verifier, &url, interval)
        });
        Self { shared, thread: Some(thread) }
    }

    /// The refresher's status.
    pub fn status(&self) -> RefreshStatus {
        self.shared.status.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Drop for RevocationRefresher {
    fn drop(&mut self) {
        *self.shared.stop.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(shared: &Shared, verifier: &Verifier, url: &str, interval: Duration) {
    let mut etag: Option<String> = None;
    loop {
        let outcome = fetch(url, etag.as_deref()).and_then(|fetched| {
            if let Some((body, new_etag)) = fetched {
                verifier.set_revocations(&body, SystemTime::now())?;
                etag = new_etag;
            }
            Ok(())
        });
        let delay = {
            let mut status = shared.status.lock().unwrap_or_else(PoisonError::into_inner);
            match outcome {
                Ok(()) => {
                    *status = RefreshStatus { last_success: Some(SystemTime::now()), last_error: None, failures: 0 };
                    interval
                }
                Err(e) => {
                    status.failures = status.failures.saturating_add(1);
                    status.last_error = Some(e.to_string());
                    // A refused list may come from a cache: fetch it whole next time.
                    etag = None;
                    FIRST_BACKOFF.saturating_mul(1 << status.failures.min(16)).min(interval)
                }
            }
        };
        let stop = shared.stop.lock().unwrap_or_else(PoisonError::into_inner);
        let (stop, _) =
            shared.wake.wait_timeout_while(stop, delay, |stop| !*stop).unwrap_or_else(PoisonError::into_inner);
        if *stop {
            return;
        }
    }
}
