//! Live reload: a new config (or key set) is loaded in full, checked against the running one,
//! and swapped in atomically, or rejected while the running issuer keeps serving.
//!
//! Rules for a new config: it must parse and validate; its `version` must be higher than the
//! running one, or equal with identical content (a key change alone); a lower version is a
//! rollback and is refused unless the service was started with rollback allowed.

use super::IssuerHandle;
use crate::config::Config;
use crate::issue::Issuer;
use crate::keyring::Keyring;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Where an issuer is loaded from, and whether a lower `version` may replace a higher one.
#[derive(Debug, Clone)]
pub struct Source {
    /// The config file (symlinks followed, so a Kubernetes ConfigMap mount works).
    pub config: PathBuf,
    /// The directory of signing keys (with its `keyring.toml` lifecycle record, if any).
    pub keys: PathBuf,
    /// Accept a config whose `version` is lower than the running one. Defaults to `false`.
    pub allow_rollback: bool,
    /// A single signing key from elsewhere, replacing the key directory.
    pub signing_key: Option<SigningKeySource>,
}

/// A signing key injected by the platform rather than kept in the key directory.
#[derive(Clone)]
pub enum SigningKeySource {
    /// A PEM file, e.g. a mounted Kubernetes Secret (re-read on reload).
    File(PathBuf),
    /// PEM text from an environment variable (read once at start).
    Pem(std::sync::Arc<zeroize::Zeroizing<String>>),
}

impl std::fmt::Debug for SigningKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Pem(_) => f.write_str("Pem([redacted])"),
        }
    }
}

impl Source {
    /// A source reading `config` and the key directory `keys`.
    pub fn new(config: impl Into<PathBuf>, keys: impl Into<PathBuf>) -> Self {
        Self { config: config.into(), keys: keys.into(), allow_rollback: false, signing_key: None }
    }

    fn load_keys(&self) -> Result<Keyring, crate::keyring::KeyError> {
        match &self.signing_key {
            None => Keyring::load_dir(&self.keys),
            Some(SigningKeySource::File(path)) => Keyring::from_pem_file(path),
            Some(SigningKeySource::Pem(pem)) => Keyring::from_pem(pem, Path::new("KEYSMITH_SIGNING_KEY")),
        }
    }

    /// A fingerprint of what a reload reads besides the config text: the signing keys (the key
    /// directory's `*.pem` and lifecycle record, or the injected key file) and the GeoIP
    /// database.
    fn keys_fingerprint(&self, geoip: Option<&Path>) -> String {
        let keys = match &self.signing_key {
            None => key_dir_entries(&self.keys),
            Some(SigningKeySource::File(path)) => vec![content_hash(path)],
            // Read once at start: nothing to watch.
            Some(SigningKeySource::Pem(_)) => Vec::new(),
        };
        let geoip = geoip.map(geoip_entry);
        sha256_hex(keys.into_iter().chain(geoip).collect::<Vec<_>>().join("\n").as_bytes())
    }
}

/// A rejected reload. `/v1/status` shows its version, code and time; the reason is for the
/// operator (the log, [`IssuerHandle::last_rejected`]) and never serialised.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Rejection {
    /// The version of the rejected config, when it could be read.
    pub version: Option<u64>,
    /// What kind of rejection, stable: `not_from_files`, `config_unreadable`, `config_invalid`,
    /// `rollback_refused`, `version_not_bumped`, `keys_invalid`, `signing_key_changed`,
    /// `issuer_invalid`, `audit_log_unavailable`.
    pub code: &'static str,
    /// Why, with the TOML path of each problem: file paths and parser messages included.
    #[serde(skip)]
    pub reason: String,
    /// When (RFC 3339).
    pub at: String,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReloadOutcome {
    /// Neither the config nor the keys changed.
    Unchanged,
    /// A new issuer is serving.
    Reloaded {
        /// The version that was running.
        from: u64,
        /// The version now running.
        to: u64,
    },
    /// The candidate was refused; the running issuer keeps serving.
    Rejected(Rejection),
}

/// What the handle knows about the running issuer's origin.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReloadState {
    pub(crate) config_sha256: String,
    /// Everything besides the config text that a reload reads: keys and GeoIP database.
    pub(crate) inputs: String,
    pub(crate) loaded_at: String,
    pub(crate) last_rejected: Option<Rejection>,
    /// Since when each published kid has been published: at start, as the key directory says
    /// (its record, or the key file's time); for a key that appears later, when this process
    /// first served it.
    pub(crate) first_served: std::collections::HashMap<String, DateTime<Utc>>,
    /// A key the record makes active that has not been published for `jwks_max_age` yet, and
    /// when it will have been: the previous key keeps signing until then.
    pub(crate) pending_signer: Option<(String, DateTime<Utc>)>,
}

/// The version of a config that may not validate, for reporting a rejection.
#[derive(serde::Deserialize)]
struct VersionOnly {
    version: Option<u64>,
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `path:sha256` of a file's content, read through symlinks (so a Kubernetes Secret's or
/// ConfigMap's `..data` swap shows).
fn content_hash(path: &Path) -> String {
    format!("{}:{}", path.display(), std::fs::read(path).map(|b| sha256_hex(&b)).unwrap_or_default())
}

/// The content of every `*.pem` and of the lifecycle record in the key directory, sorted.
fn key_dir_entries(dir: &Path) -> Vec<String> {
    let mut entries: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "pem") || p.ends_with(crate::lifecycle::STATE_FILE))
                .map(|p| content_hash(&p))
                .collect()
        })
        .unwrap_or_default();
    entries.sort();
    entries
}

/// The GeoIP database by size and modification time (it is large; hashing it every poll is not
/// worth it).
fn geoip_entry(db: &Path) -> String {
    let meta = std::fs::metadata(db).ok();
    let modified = meta
        .as_ref()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("geoip:{}:{}:{modified}", db.display(), meta.map_or(0, |m| m.len()))
}

/// Everything that, when it changes, calls for a reload.
fn fingerprint(source: &Source, geoip: Option<&Path>) -> String {
    let config = std::fs::read(&source.config).map(|b| sha256_hex(&b)).unwrap_or_default();
    format!("{config}:{}", source.keys_fingerprint(geoip))
}

impl IssuerHandle {
    /// Loads the issuer from `source` and serves it; [`IssuerHandle::reload`] re-reads it.
    ///
    /// # Errors
    ///
    /// Why the config, keys, GeoIP database or audit log could not be loaded.
    /// At start, as on a reload, a key signs only once it has been published for
    /// `jwks_max_age`, counted from the key directory's record (or the key file's time without
    /// one): until then the key that signed before keeps signing (see
    /// [`Keyring::defer_unpublished`]). A fresh install with a single key signs at once.
    ///
    /// # Errors
    ///
    /// Why the config, keys, GeoIP database or audit log could not be loaded.
    pub fn load(source: Source) -> Result<Self, crate::issue::LoadError> {
        Self::load_at(source, Utc::now())
    }

    /// As [`IssuerHandle::load`], at the wall-clock time `now`.
    fn load_at(source: Source, now: DateTime<Utc>) -> Result<Self, crate::issue::LoadError> {
        let text = read_config(&source.config)?;
        let config = Config::from_toml(&text, base_dir(&source.config))?;
        let geoip = config.server.geoip_database.clone();
        let mut keys = source.load_keys()?;
        let first_served: std::collections::HashMap<String, DateTime<Utc>> = keys
            .published()
            .iter()
            .map(crate::jwk::thumbprint)
            .map(|kid| {
                let since = keys.published_at(&kid).map_or(now, |t| t.min(now));
                (kid, since)
            })
            .collect();
        let deferred = keys.defer_unpublished(chrono::Duration::seconds(i64::from(config.jwks_max_age)), now);
        if let Some(deferred) = &deferred {
            tracing::warn!(
                wanted = %deferred.kid,
                current = %keys.signing().kid(),
                due = %deferred.due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "the active key has not been published long enough for verifiers to have it; the previous key signs until then"
            );
        }
        let issuer = Issuer::new(config, keys)?;
        let handle = Self::new(issuer).map_err(crate::issue::LoadError::AuditLog)?;
        {
            let mut state = handle.state();
            state.config_sha256 = sha256_hex(text.as_bytes());
            state.inputs = source.keys_fingerprint(geoip.as_deref());
            state.first_served = first_served;
            state.pending_signer = deferred.map(|d| (d.kid, d.due));
        }
        Ok(handle.with_source(source))
    }

    /// Re-reads the source and swaps in the new issuer when it is acceptable; does nothing when
    /// neither the config, the keys nor the GeoIP database changed. Reloads are serialised; each
    /// request keeps the issuer it started with.
    pub fn reload(&self) -> ReloadOutcome {
        self.reload_inner(false)
    }

    /// As [`IssuerHandle::reload`], but loads even when nothing seems to have changed (SIGHUP).
    pub fn reload_forced(&self) -> ReloadOutcome {
        self.reload_inner(true)
    }

    /// Whether a deferred signing key is now due to take over.
    pub(crate) fn pending_due(&self) -> bool {
        self.state().pending_signer.as_ref().is_some_and(|(_, due)| Utc::now() >= *due)
    }

    /// Chooses the signer: the key the record makes active, unless it has been published for
    /// less than `jwks_max_age` (since start, as the key directory says; for a key that appeared
    /// later, since this process first served it) and the key signing now is still published,
    /// in which case the current key keeps signing until then (verifiers may not have the new
    /// key yet).
    fn choose_signer(&self, mut keys: Keyring, jwks_max_age: u32) -> Keyring {
        let now = Utc::now();
        let current = self.live().issuer.keyring().signing().kid().to_owned();
        let wanted = keys.signing().kid().to_owned();
        let mut state = self.state();
        for kid in keys.published().iter().map(crate::jwk::thumbprint) {
            state.first_served.entry(kid).or_insert(now);
        }
        state.first_served.retain(|kid, _| keys.publishes(kid));
        let since = state.first_served.get(&wanted).copied().unwrap_or(now);
        let max_age = chrono::Duration::seconds(i64::from(jwks_max_age));
        state.pending_signer = keys.keep_signer_until_published(&current, since, max_age, now).map(|deferred| {
            tracing::warn!(
                %wanted,
                %current,
                wait_secs = (deferred.due - now).num_seconds(),
                "the new active key has not been published long enough here; the current key keeps signing until then"
            );
            (deferred.kid, deferred.due)
        });
        keys
    }

    fn running_geoip(&self) -> Option<std::path::PathBuf> {
        self.live().issuer.config().server.geoip_database.clone()
    }

    fn reload_inner(&self, force: bool) -> ReloadOutcome {
        let Some(source) = self.source() else {
            return ReloadOutcome::Rejected(self.reject(
                None,
                "not_from_files",
                "this service was not started from files".into(),
            ));
        };
        let _one_at_a_time = self.reload_lock();
        let text = match read_config(&source.config) {
            Ok(text) => text,
            Err(e) => return ReloadOutcome::Rejected(self.reject(None, "config_unreadable", e.to_string())),
        };
        let config_sha256 = sha256_hex(text.as_bytes());
        let running_inputs = source.keys_fingerprint(self.running_geoip().as_deref());
        {
            let state = self.state();
            let pending_due = state.pending_signer.as_ref().is_some_and(|(_, due)| Utc::now() >= *due);
            if !force && !pending_due && state.config_sha256 == config_sha256 && state.inputs == running_inputs {
                return ReloadOutcome::Unchanged;
            }
        }
        let candidate_version = toml::from_str::<VersionOnly>(&text).ok().and_then(|v| v.version);
        let config = match Config::from_toml(&text, base_dir(&source.config)) {
            Ok(config) => config,
            Err(e) => return ReloadOutcome::Rejected(self.reject(candidate_version, "config_invalid", e.to_string())),
        };
        let running = self.config_version();
        let content_changed = self.state().config_sha256 != config_sha256;
        if config.version < running && !source.allow_rollback {
            let reason = format!(
                "version: {} is lower than the running version {running}; rollback refused (start with --allow-rollback to permit it)",
                config.version
            );
            return ReloadOutcome::Rejected(self.reject(Some(config.version), "rollback_refused", reason));
        }
        if config.version == running && content_changed {
            let reason =
                format!("version: the content changed but version is still {running}; bump version on every change");
            return ReloadOutcome::Rejected(self.reject(Some(config.version), "version_not_bumped", reason));
        }
        let to = config.version;
        let restart_needed = {
            let live = self.live();
            let old = &live.issuer.config().server;
            (old.listen != config.server.listen)
                .then(|| format!("server.listen {} -> {}", old.listen, config.server.listen))
        };
        let inputs = source.keys_fingerprint(config.server.geoip_database.as_deref());
        let keys = match source.load_keys() {
            Ok(keys) => keys,
            Err(e) => return ReloadOutcome::Rejected(self.reject(Some(to), "keys_invalid", e.to_string())),
        };
        let running_kid = self.live().issuer.keyring().signing().kid().to_owned();
        if source.signing_key.is_some() && keys.signing().kid() != running_kid {
            let reason = format!(
                "the injected signing key changed ({running_kid} -> {}): tokens signed by the old key would stop verifying at once; rotate with the key directory, or restart deliberately",
                keys.signing().kid()
            );
            return ReloadOutcome::Rejected(self.reject(Some(to), "signing_key_changed", reason));
        }
        if !keys.unlisted().is_empty() {
            tracing::warn!(files = ?keys.unlisted(), "key files not in keyring.toml are ignored");
        }
        let keys = self.choose_signer(keys, config.jwks_max_age);
        let issuer = match Issuer::new(config, keys) {
            Ok(issuer) => issuer,
            Err(e) => return ReloadOutcome::Rejected(self.reject(Some(to), "issuer_invalid", e.to_string())),
        };
        let kid = issuer.keyring().signing().kid().to_owned();
        // Swap and record under the state lock, so /v1/status never shows a mix.
        let mut state = self.state();
        if let Err(e) = self.replace(issuer) {
            drop(state);
            // The error names `server.audit_log` and its path.
            return ReloadOutcome::Rejected(self.reject(Some(to), "audit_log_unavailable", e.to_string()));
        }
        state.config_sha256 = config_sha256;
        state.inputs = inputs;
        state.loaded_at = now_rfc3339();
        drop(state);
        tracing::info!(config_version = to, previous_version = running, %kid, "reloaded");
        if let Some(setting) = restart_needed {
            tracing::warn!(%setting, "this setting takes effect only after a restart");
        }
        ReloadOutcome::Reloaded { from: running, to }
    }

    fn reject(&self, version: Option<u64>, code: &'static str, reason: String) -> Rejection {
        tracing::error!(
            running_version = self.config_version(),
            rejected_version = version,
            code,
            reason = %super::escape::Escaped(&reason),
            "reload rejected; keeping the running config"
        );
        let rejection = Rejection { version, code, reason, at: now_rfc3339() };
        self.state().last_rejected = Some(rejection.clone());
        rejection
    }
}

fn read_config(path: &Path) -> Result<String, crate::config::ConfigError> {
    let io = |source| crate::config::ConfigError::Io { path: path.to_owned(), source };
    if std::fs::metadata(path).map_err(io)?.len() > crate::config::MAX_CONFIG_LEN {
        return Err(crate::config::ConfigError::TooLarge);
    }
    std::fs::read_to_string(path).map_err(io)
}

fn base_dir(config: &Path) -> &Path {
    config.parent().unwrap_or(Path::new("."))
}

/// Polls the source every `interval` and reloads when the config's content, the keys or the
/// GeoIP database changed and then stayed the same for one more interval (so a file caught
/// half-written is never loaded). Polling content, not file events, follows editors that
/// replace the file, Kubernetes ConfigMap and Secret symlink swaps and network filesystems.
pub async fn watch(handle: IssuerHandle, interval: Duration) {
    let Some(source) = handle.source() else { return };
    let fp = |handle: IssuerHandle, source: Source| async move {
        tokio::task::spawn_blocking(move || fingerprint(&source, handle.running_geoip().as_deref())).await.ok()
    };
    // Start from what was loaded, not from what is on disk now: an edit made between the load
    // and the first poll must still be seen.
    let mut applied = {
        let state = handle.state();
        Some(format!("{}:{}", state.config_sha256, state.inputs))
    };
    let mut previous = applied.clone();
    loop {
        tokio::time::sleep(interval).await;
        let now = fp(handle.clone(), source.clone()).await;
        let settled = now == previous;
        previous = now.clone();
        if handle.pending_due() {
            let handle = handle.clone();
            let _ = tokio::task::spawn_blocking(move || handle.reload()).await;
        }
        if settled && now != applied {
            applied = now;
            let handle = handle.clone();
            let _ = tokio::task::spawn_blocking(move || handle.reload()).await;
        }
    }
}

/// Reloads on every SIGHUP.
#[cfg(unix)]
pub async fn reload_on_sighup(handle: IssuerHandle) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot listen for SIGHUP; reload by editing the file or restarting");
        return;
    };
    while hangups.recv().await.is_some() {
        let handle = handle.clone();
        let _ = tokio::task::spawn_blocking(move || handle.reload_forced()).await;
    }
}
