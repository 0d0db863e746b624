//! One background thread polling one URL, woken early on demand, never joined on drop.

use super::{Fetch, FetchError, Fetched, RefreshStatus, with_sources};
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// First delay after a failure; it doubles up to the polling interval.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Shortest interval taken from a document (`max-age=0`, a list about to expire).
pub(super) const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The most threads that wait at once for a fetch a token with an unknown `kid` asked for;
/// further tokens are refused at once (forged `kid`s must not tie up a thread each).
pub(super) const MAX_KID_WAITERS: usize = 4;
/// The most `kid`s remembered as missing at once.
const MAX_MISSED_KIDS: usize = 1024;
/// Longest interval taken from a document, whatever it says.
pub(super) const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// How long to wait between two fetches.
#[derive(Debug, Clone, Copy)]
pub(super) enum Interval {
    /// Exactly this, whatever the documents say.
    Fixed(Duration),
    /// What each document says (bounded by [`MIN_INTERVAL`] and [`MAX_INTERVAL`]), else this.
    FromDocument(Duration),
}

impl Interval {
    pub(super) fn after(self, hint: Option<Duration>) -> Duration {
        match (self, hint) {
            (Self::Fixed(interval), _) => interval,
            (Self::FromDocument(_), Some(hint)) => hint.clamp(MIN_INTERVAL, MAX_INTERVAL),
            (Self::FromDocument(fallback), None) => fallback,
        }
    }
}

/// Loads a fetched document and says when it wants the next fetch (`None`: no opinion).
pub(super) type Load = dyn Fn(&Fetched) -> Result<Option<Duration>, FetchError> + Send + Sync;

/// What the thread and its owners share, under one lock.
#[derive(Default)]
struct State {
    stop: bool,
    /// An early fetch is wanted (throttled by `min_gap`).
    early: bool,
    /// Fetches started so far.
    started: u64,
    /// The number (in `started`) of the last fetch that loaded a document.
    loaded: u64,
    status: RefreshStatus,
    /// Callers waiting in [`Shared::nudge_and_wait_for`] now.
    kid_waiters: usize,
    /// `kid`s a completed fetch did not bring, with when: not waited for again within `min_gap`.
    missed: HashMap<String, Instant>,
}

pub(super) struct Shared {
    /// The least time between two fetches.
    min_gap: Duration,
    state: Mutex<State>,
    /// Wakes the thread (stop, early fetch).
    wake: Condvar,
    /// Wakes callers waiting for a load.
    loaded: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks for an early fetch (throttled by the poller's gap).
    pub(super) fn nudge(&self) {
        self.lock().early = true;
        self.wake.notify_all();
    }

    /// [`Shared::nudge_and_wait`] for a token naming `kid`, unless waiting cannot help: a fetch
    /// completed less than `min_gap` ago without `kid` (the next one cannot start sooner), or
    /// [`MAX_KID_WAITERS`] callers wait already. Then `false` at once. `has_kid` says whether
    /// the keys now loaded hold `kid`; when a fetch loaded and they do not, `kid` is remembered.
    pub(super) fn nudge_and_wait_for(&self, kid: &str, wait: Duration, has_kid: impl Fn() -> bool) -> bool {
        {
            let mut state = self.lock();
            if state.missed.get(kid).is_some_and(|at| at.elapsed() < self.min_gap) {
                return false;
            }
            if state.kid_waiters >= MAX_KID_WAITERS {
                state.early = true;
                self.wake.notify_all();
                return false;
            }
            state.kid_waiters += 1;
        }
        let loaded = self.nudge_and_wait(wait);
        let found = loaded && has_kid();
        let mut state = self.lock();
        state.kid_waiters = state.kid_waiters.saturating_sub(1);
        if loaded && !found {
            if state.missed.len() >= MAX_MISSED_KIDS {
                let min_gap = self.min_gap;
                state.missed.retain(|_, at| at.elapsed() < min_gap);
            }
            if state.missed.len() < MAX_MISSED_KIDS {
                state.missed.insert(kid.to_owned(), Instant::now());
            }
        }
        loaded
    }

    /// Asks for an early fetch and waits at most `wait` for a fetch that starts after this call
    /// to load a document. Whether one did.
    pub(super) fn nudge_and_wait(&self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let mut state = self.lock();
        // A fetch in flight may have started before the keys changed: wait for a later one.
        let target = state.started + 1;
        state.early = true;
        self.wake.notify_all();
        while state.loaded < target && !state.stop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self.loaded.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        state.loaded >= target
    }
}

/// Where the first fetch leaves off when it was made before the thread started.
pub(super) struct Resume {
    pub(super) etag: Option<String>,
    pub(super) delay: Duration,
    pub(super) at: Instant,
}

/// A background thread polling one URL. Dropping it stops the thread without waiting for it:
/// a fetch in flight (at most its timeout) finishes on the thread, and its document is not
/// loaded.
pub(super) struct Poller {
    pub(super) shared: Arc<Shared>,
}

impl Poller {
    /// Polls `url` with `fetcher`, loading each document with `load`; an early wake-up is
    /// honoured at most once per `min_gap`. With `resume`, the first fetch was already made.
    pub(super) fn spawn(
        fetcher: Arc<dyn Fetch>,
        url: String,
        interval: Interval,
        min_gap: Duration,
        resume: Option<Resume>,
        load: Box<Load>,
    ) -> Self {
        let mut state = State::default();
        if let Some(resume) = &resume {
            (state.started, state.loaded) = (1, 1);
            state.status.last_success = Some(SystemTime::now());
            state.status.fetches = 1;
            state.status.interval = Some(resume.delay);
        }
        let shared =
            Arc::new(Shared { min_gap, state: Mutex::new(state), wake: Condvar::new(), loaded: Condvar::new() });
        let thread_shared = Arc::clone(&shared);
        // Detached on purpose: the owner never joins (see `Drop`).
        let spawned = std::thread::Builder::new()
            .name("keysmith-refresh".into())
            .spawn(move || run(&thread_shared, fetcher.as_ref(), &url, interval, min_gap, resume, load.as_ref()));
        if let Err(e) = spawned {
            let mut state = shared.lock();
            state.status.last_error = Some(format!("starting the refresh thread: {e}"));
            state.stop = true;
        }
        Self { shared }
    }

    pub(super) fn status(&self) -> RefreshStatus {
        self.shared.lock().status.clone()
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        self.shared.loaded.notify_all();
    }
}

fn run(
    shared: &Shared,
    fetcher: &dyn Fetch,
    url: &str,
    interval: Interval,
    min_gap: Duration,
    resume: Option<Resume>,
    load: &Load,
) {
    let (mut etag, mut delay, mut fetched_at) = match resume {
        Some(resume) => (resume.etag, resume.delay, resume.at),
        None => (None, Duration::ZERO, Instant::now()),
    };
    loop {
        // Sleep until the delay is up, or until an early wake-up once `min_gap` has passed.
        {
            let mut state = shared.lock();
            loop {
                if state.stop {
                    return;
                }
                let elapsed = fetched_at.elapsed();
                if elapsed >= delay || (state.early && elapsed >= min_gap) {
                    break;
                }
                let wait = if state.early { min_gap.saturating_sub(elapsed) } else { delay - elapsed };
                state = shared.wake.wait_timeout(state, wait).unwrap_or_else(PoisonError::into_inner).0;
            }
            state.early = false;
            state.started += 1;
        }
        fetched_at = Instant::now();
        let fetched = fetcher.get(url, etag.as_deref());
        let mut state = shared.lock();
        let number = state.started;
        if state.stop {
            // Dropped while fetching: load nothing more.
            shared.loaded.notify_all();
            return;
        }
        let outcome = fetched.and_then(|fetched| Ok((load(&fetched)?, fetched.etag)));
        state.status.fetches += 1;
        delay = match outcome {
            Ok((hint, new_etag)) => {
                if new_etag.is_some() {
                    etag = new_etag;
                }
                let next = interval.after(hint);
                state.loaded = number;
                state.status.last_success = Some(SystemTime::now());
                state.status.last_error = None;
                state.status.failures = 0;
                state.status.interval = Some(next);
                next
            }
            Err(e) => {
                state.status.failures = state.status.failures.saturating_add(1);
                state.status.failures_total = state.status.failures_total.saturating_add(1);
                state.status.last_error = Some(with_sources(&e));
                // A refused document may come from a cache: fetch it whole next time.
                etag = None;
                FIRST_BACKOFF.saturating_mul(1 << state.status.failures.min(16)).min(interval.after(None))
            }
        };
        shared.loaded.notify_all();
    }
}
