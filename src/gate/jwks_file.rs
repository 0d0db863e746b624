//! A JWKS given as a file (`jwks = "/etc/keysmith/jwks.json"`, such as a mounted ConfigMap),
//! read at start and re-read whenever it changes.
//!
//! A thread looks at the file's metadata once per poll (through symlinks: a ConfigMap is
//! updated by swapping its `..data` symlink, which changes the file the path resolves to) and
//! reads the file again only when its fingerprint (device, inode, length, modification and
//! change times) differs from the one it last read. A file that cannot be read or is not a
//! valid key set keeps the last good keys; the failure is logged and counted once per version
//! of the file (or per kind of error while it cannot be looked at), not once per poll.
//!
//! The file is a trust anchor: whoever can change it adds their own key. It is therefore read
//! only when the key store would trust it (`keys::dir::open_trusted_file`): the file
//! (checked on the handle read), its directory and the directories a symlink to it leads
//! through may be changed by their owner alone, this process's user or root; write bits are
//! excused on a read-only tmpfs only (a Kubernetes Secret or projected volume). A version that
//! fails this check is refused like an invalid one.

use crate::keys::KeyError;
use crate::refresh::RefreshStatus;
use crate::token::jwk::{JwkError, KeySet};
use crate::verify::Verifier;
use std::fs::Metadata;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// Largest JWKS file read, in bytes (as for a fetched one).
pub const MAX_JWKS_FILE_BYTES: u64 = crate::refresh::MAX_FETCH_BYTES;

/// Why a JWKS file was not loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwksFileError {
    /// The file could not be looked at, opened or read.
    #[error("reading the JWKS file {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file, its directory or a directory a symlink to it leads through can be changed by
    /// another user than this process's or root (who could add their own key): the key store's
    /// own rules.
    #[error(
        "the JWKS file {} is not trusted: only this process's user or root may be able to change it",
        .path.display()
    )]
    Untrusted {
        /// The file as configured.
        path: PathBuf,
        /// What is wrong, and the fix (`chmod go-w`, `chown`).
        #[source]
        source: Box<KeyError>,
    },
    /// The file is larger than [`MAX_JWKS_FILE_BYTES`].
    #[error("the JWKS file {} is larger than {MAX_JWKS_FILE_BYTES} bytes", .path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file is not a valid key set.
    #[error("the JWKS file {} is not a valid key set", .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: JwkError,
    },
}

/// What identifies one version of the file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    len: u64,
    modified: Option<SystemTime>,
    /// Device, inode, and change time (seconds, nanoseconds) where the platform has them.
    identity: (u64, u64, i64, i64),
}

impl Fingerprint {
    fn of(meta: &Metadata) -> Self {
        Self { len: meta.len(), modified: meta.modified().ok(), identity: identity(meta) }
    }
}

#[cfg(unix)]
fn identity(meta: &Metadata) -> (u64, u64, i64, i64) {
    use std::os::unix::fs::MetadataExt as _;
    (meta.dev(), meta.ino(), meta.ctime(), meta.ctime_nsec())
}

#[cfg(not(unix))]
fn identity(_: &Metadata) -> (u64, u64, i64, i64) {
    (0, 0, 0, 0)
}

/// What the last look at the file found: its fingerprint (or why it could not be looked at),
/// and whether that version loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    file: Result<Fingerprint, std::io::ErrorKind>,
    loaded: bool,
}

/// Reads `path` (at most [`MAX_JWKS_FILE_BYTES`]) when it is trusted, and parses it, with the
/// fingerprint of the file actually opened. The fingerprint is `None` when the file could not
/// be opened or is not trusted.
fn read(path: &Path) -> (Option<Fingerprint>, Result<KeySet, JwksFileError>) {
    let failed = |source| JwksFileError::Read { path: path.to_owned(), source };
    let (file, meta) = match crate::keys::dir::open_trusted_file(path) {
        Ok(opened) => opened,
        Err(KeyError::Io { source, .. }) => return (None, Err(failed(source))),
        Err(e) => return (None, Err(JwksFileError::Untrusted { path: path.to_owned(), source: Box::new(e) })),
    };
    let fingerprint = Some(Fingerprint::of(&meta));
    let mut bytes = Vec::new();
    if let Err(e) = file.take(MAX_JWKS_FILE_BYTES + 1).read_to_end(&mut bytes) {
        return (fingerprint, Err(failed(e)));
    }
    if bytes.len() as u64 > MAX_JWKS_FILE_BYTES {
        return (fingerprint, Err(JwksFileError::TooLarge { path: path.to_owned() }));
    }
    let keys =
        KeySet::from_jwks_json(&bytes).map_err(|source| JwksFileError::Invalid { path: path.to_owned(), source });
    (fingerprint, keys)
}

struct State {
    stop: bool,
    status: RefreshStatus,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The thread's view: the file, the verifier it loads keys into, and what it saw last.
struct Watch {
    path: PathBuf,
    verifier: Verifier,
    seen: Seen,
}

impl Watch {
    /// One look at the file: read again only when it changed since the last look.
    fn check(&mut self, shared: &Shared) {
        let looked = std::fs::metadata(&self.path);
        let file = looked.as_ref().map(Fingerprint::of).map_err(std::io::Error::kind);
        if file == self.seen.file {
            if self.seen.loaded {
                // The keys held are still the file's: as fresh as a `304 Not Modified`.
                shared.lock().status.last_success = Some(SystemTime::now());
            }
            return;
        }
        let (opened, loaded) = match looked {
            Ok(_) => read(&self.path),
            Err(source) => (None, Err(JwksFileError::Read { path: self.path.clone(), source })),
        };
        let mut state = shared.lock();
        state.status.fetches += 1;
        match loaded {
            Ok(keys) => {
                let kids = keys.len();
                self.verifier.set_keys(keys);
                self.seen = Seen { file: opened.ok_or(std::io::ErrorKind::NotFound), loaded: true };
                state.status.last_success = Some(SystemTime::now());
                state.status.last_error = None;
                state.status.failures = 0;
                tracing::info!(path = %self.path.display(), kids, "JWKS file reloaded");
            }
            Err(e) => {
                // The version tried: the one opened if it was, else what the look found.
                self.seen = Seen { file: opened.ok_or(()).or(file), loaded: false };
                let error = crate::refresh::with_sources(&e);
                tracing::error!(error = %error, "JWKS file not loaded; the last good keys are kept");
                state.status.last_error = Some(error);
                state.status.failures = state.status.failures.saturating_add(1);
                state.status.failures_total = state.status.failures_total.saturating_add(1);
            }
        }
    }
}

/// A JWKS file kept loaded into a verifier. Stops its thread when dropped, without waiting.
pub(super) struct JwksFile {
    shared: Arc<Shared>,
}

impl JwksFile {
    /// Loads `path` into `verifier` now, then looks at it every `poll` and loads each new
    /// version that is a valid key set.
    ///
    /// # Errors
    ///
    /// A [`JwksFileError`] when the file cannot be read now, is not trusted or is not a valid
    /// key set.
    pub(super) fn start(verifier: &Verifier, path: &Path, poll: Duration) -> Result<Self, JwksFileError> {
        let (opened, loaded) = read(path);
        verifier.set_keys(loaded?);
        let status = RefreshStatus {
            last_success: Some(SystemTime::now()),
            fetches: 1,
            interval: Some(poll),
            ..RefreshStatus::default()
        };
        let shared = Arc::new(Shared { state: Mutex::new(State { stop: false, status }), wake: Condvar::new() });
        let mut watch = Watch {
            path: path.to_owned(),
            verifier: verifier.clone(),
            seen: Seen { file: opened.ok_or(std::io::ErrorKind::NotFound), loaded: true },
        };
        let thread_shared = Arc::clone(&shared);
        // Detached on purpose: dropping the owner stops it at its next wake-up.
        let spawned = std::thread::Builder::new().name("keysmith-jwks-file".into()).spawn(move || {
            while sleep(&thread_shared, poll) {
                watch.check(&thread_shared);
            }
        });
        if let Err(e) = spawned {
            shared.lock().status.last_error = Some(format!("starting the JWKS file thread: {e}"));
        }
        Ok(Self { shared })
    }

    /// What the thread has seen: `last_success` is the last load of the file or the last look
    /// that found it unchanged since a good load.
    pub(super) fn status(&self) -> RefreshStatus {
        self.shared.lock().status.clone()
    }
}

/// Waits `poll`; `false` once the owner is dropped.
fn sleep(shared: &Shared, poll: Duration) -> bool {
    let deadline = Instant::now() + poll;
    let mut state = shared.lock();
    loop {
        if state.stop {
            return false;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        state = shared.wake.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0;
    }
}

impl Drop for JwksFile {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::jwk::{Jwks, PublicJwk};

    fn jwks(seed: u8) -> String {
        let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]).verifying_key();
        serde_json::to_string(&Jwks { keys: vec![PublicJwk::from_key(&key)] }).unwrap()
    }

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
    fn start_refuses_a_missing_an_invalid_or_an_oversized_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        let start = || JwksFile::start(&verifier(), &path, Duration::from_secs(1)).err().unwrap();
        assert!(matches!(start(), JwksFileError::Read { .. }));
        std::fs::write(&path, "{\"keys\": 7}").unwrap();
        assert!(matches!(start(), JwksFileError::Invalid { .. }));
        std::fs::write(&path, vec![b' '; usize::try_from(MAX_JWKS_FILE_BYTES).unwrap() + 1]).unwrap();
        assert!(matches!(start(), JwksFileError::TooLarge { .. }));
    }

    /// A watcher polling every 20 ms a file in a fresh directory holding key 1, with the key
    /// ids it loaded.
    struct Running {
        dir: tempfile::TempDir,
        path: PathBuf,
        verifier: Verifier,
        poll: Duration,
        file: JwksFile,
        kids: Vec<String>,
    }

    fn running() -> Running {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, jwks(1)).unwrap();
        let verifier = verifier();
        let poll = Duration::from_millis(20);
        let file = JwksFile::start(&verifier, &path, poll).unwrap();
        let kids = verifier.keys().kids().iter().map(|k| (*k).to_owned()).collect();
        Running { dir, path, verifier, poll, file, kids }
    }

    /// A file that disappears is one failure while it stays away, not one per look; the keys
    /// stay; the file back (same content, another inode) is loaded again.
    #[test]
    fn a_removed_file_is_one_failure_and_keeps_the_keys_until_it_is_back() {
        let Running { dir: _dir, path, verifier, poll, file, kids } = running();
        assert_eq!(kids.len(), 1);
        std::fs::remove_file(&path).unwrap();
        wait_for("the failure", || file.status().failures_total == 1);
        std::thread::sleep(poll * 10);
        let status = file.status();
        assert_eq!(status.failures_total, 1, "{status:?}");
        assert!(status.last_error.as_deref().is_some_and(|e| e.contains("jwks.json")), "{status:?}");
        assert_eq!(verifier.keys().kids(), kids);
        let failed_at = status.last_success;
        std::fs::write(&path, jwks(2)).unwrap();
        wait_for("the new file", || verifier.keys().kids() != kids);
        let status = file.status();
        assert_eq!((status.failures, status.failures_total, status.last_error.as_deref()), (0, 1, None));
        assert!(status.last_success > failed_at, "{status:?}");
    }

    #[cfg(unix)]
    fn untrusted(error: &JwksFileError) -> String {
        assert!(matches!(error, JwksFileError::Untrusted { .. }), "{error:?}");
        crate::refresh::with_sources(error)
    }

    #[cfg(unix)]
    fn chmod(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A JWKS file others can write, or in a directory others can write, is refused at start,
    /// naming the path and the fix.
    #[cfg(unix)]
    #[test]
    fn start_refuses_a_file_or_a_directory_others_can_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, jwks(1)).unwrap();
        let start = || JwksFile::start(&verifier(), &path, Duration::from_secs(1)).err().unwrap();
        chmod(&path, 0o664);
        let error = untrusted(&start());
        assert!(error.contains(&format!("chmod go-w {}", path.display())), "{error}");
        chmod(&path, 0o644);
        chmod(dir.path(), 0o777);
        let error = untrusted(&start());
        assert!(error.contains(&format!("chmod go-w {}", dir.path().display())), "{error}");
        chmod(dir.path(), 0o755);
        assert!(JwksFile::start(&verifier(), &path, Duration::from_secs(1)).is_ok());
    }

    /// The directories a symlink to the file leads through (a ConfigMap's `..data -> ..v1`) are
    /// checked too.
    #[cfg(unix)]
    #[test]
    fn start_refuses_a_writable_directory_on_the_symlink_chain() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("..v1")).unwrap();
        std::fs::write(dir.path().join("..v1/jwks.json"), jwks(1)).unwrap();
        std::os::unix::fs::symlink("..v1", dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/jwks.json", dir.path().join("jwks.json")).unwrap();
        let path = dir.path().join("jwks.json");
        assert!(JwksFile::start(&verifier(), &path, Duration::from_secs(1)).is_ok());
        chmod(&dir.path().join("..v1"), 0o775);
        let error = untrusted(&JwksFile::start(&verifier(), &path, Duration::from_secs(1)).err().unwrap());
        assert!(error.contains("..v1: writable by group or others"), "{error}");
    }

    /// A file (or its directory) owned by another user than this process's or root is refused.
    /// The tests run as root, who can give a file away.
    #[cfg(unix)]
    #[test]
    fn start_refuses_a_file_owned_by_another_user() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, jwks(1)).unwrap();
        let me = rustix::process::geteuid().as_raw();
        assert_eq!(me, 0, "run the tests as root (CI does), to give a file to another user");
        std::os::unix::fs::chown(&path, Some(4242), Some(4242)).unwrap();
        let start = || JwksFile::start(&verifier(), &path, Duration::from_secs(1)).err().unwrap();
        let error = untrusted(&start());
        assert!(error.contains("owned by uid 4242") && error.contains("chown 0"), "{error}");
        std::os::unix::fs::chown(&path, Some(0), Some(0)).unwrap();
        std::os::unix::fs::chown(dir.path(), Some(4242), None).unwrap();
        let error = untrusted(&start());
        assert!(error.contains(&format!("{}: owned by uid 4242", dir.path().display())), "{error}");
    }

    /// A running gate's file replaced by one others can write (mode 0666) is refused on re-read:
    /// the old keys stay, and the failure is counted once for that version.
    #[cfg(unix)]
    #[test]
    fn a_file_replaced_by_a_world_writable_one_is_refused_and_the_keys_stay() {
        let Running { dir, path, verifier, poll, file, kids } = running();
        let planted = dir.path().join("planted.json");
        std::fs::write(&planted, jwks(2)).unwrap();
        chmod(&planted, 0o666);
        std::fs::rename(&planted, &path).unwrap();
        wait_for("the refusal", || file.status().failures_total == 1);
        std::thread::sleep(poll * 10);
        let status = file.status();
        assert_eq!(status.failures_total, 1, "{status:?}");
        let error = status.last_error.unwrap_or_default();
        assert!(error.contains("not trusted") && error.contains("chmod go-w"), "{error}");
        assert_eq!(verifier.keys().kids(), kids);
    }
}
