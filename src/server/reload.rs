//! Live reload: a new config (or key set) is loaded in full, checked against the running one,
//! and swapped in atomically, or rejected while the running issuer keeps serving.
//!
//! Rules for a new config: it must parse and validate; its `version` must be higher than the
//! running one, or equal with identical content (a key change alone); a lower version is a
//! rollback and is refused unless the service was started with rollback allowed.

use crate::config::{Config, VersionChange};
use crate::issuer::Issuer;
use crate::keys::store::Keyring;
use crate::server::source::{Rejection, ReloadOutcome, Source, fingerprint, rfc3339, sha256_hex};
use crate::server::state::IssuerHandle;
use chrono::{DateTime, Utc};
use std::path::Path;
use std::time::Duration;

/// The version of a config that may not validate, for reporting a rejection.
#[derive(serde::Deserialize)]
struct VersionOnly {
    version: Option<u64>,
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
    pub fn load(source: Source) -> Result<Self, crate::issuer::LoadError> {
        Self::load_at(source, Utc::now())
    }

    /// As [`IssuerHandle::load`], at the wall-clock time `now` (read once by the caller).
    ///
    /// # Errors
    ///
    /// As [`IssuerHandle::load`].
    pub fn load_at(source: Source, now: DateTime<Utc>) -> Result<Self, crate::issuer::LoadError> {
        let text = read_config(&source.config)?;
        let config = Config::from_toml(&text, base_dir(&source.config))?;
        let geoip = config.server.geoip_database.clone();
        let mut keys = source.load_keys()?;
        let first_served: std::collections::HashMap<String, DateTime<Utc>> = keys
            .published()
            .iter()
            .map(crate::token::jwk::thumbprint)
            .map(|kid| {
                let since = keys.published_at(&kid).map_or(now, |t| t.min(now));
                (kid, since)
            })
            .collect();
        let max_age = chrono::Duration::seconds(i64::from(config.jwks_max_age));
        let mut first_served = first_served;
        let deferred = keys.defer_unpublished(max_age, now);
        if let Some(deferred) = &deferred {
            // A reload before `due` counts from the same instant (without a record, from now).
            if let Some(since) = first_served.get_mut(&deferred.kid) {
                *since = (*since).max(deferred.due - max_age);
            }
            tracing::warn!(
                wanted = %deferred.kid,
                current = %keys.signing().kid(),
                due = %deferred.due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "the active key has not been published long enough for verifiers to have it; the previous key signs until then"
            );
        }
        let issuer = Issuer::new(config, keys)?;
        let handle = Self::new(issuer).map_err(crate::issuer::LoadError::AuditLog)?;
        {
            let mut state = handle.state();
            state.loaded_at = rfc3339(now);
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
        self.reload_at(Utc::now())
    }

    /// As [`IssuerHandle::reload`], at the wall-clock time `now`: the signer is chosen, and the
    /// reload or rejection recorded, as of `now`.
    pub fn reload_at(&self, now: DateTime<Utc>) -> ReloadOutcome {
        self.counted(self.reload_inner(false, now))
    }

    /// As [`IssuerHandle::reload`], but loads even when nothing seems to have changed (SIGHUP).
    pub fn reload_forced(&self) -> ReloadOutcome {
        self.counted(self.reload_inner(true, Utc::now()))
    }

    /// Counts a reload's outcome in the metrics (an unchanged source is not a reload).
    fn counted(&self, outcome: ReloadOutcome) -> ReloadOutcome {
        match &outcome {
            ReloadOutcome::Reloaded { .. } => self.metrics().reloaded(),
            ReloadOutcome::Rejected(rejection) => self.metrics().reload_rejected(rejection.code),
            ReloadOutcome::Unchanged => {}
        }
        outcome
    }

    /// Whether a deferred signing key is due to take over at `now`.
    pub(crate) fn pending_due(&self, now: DateTime<Utc>) -> bool {
        self.state().pending_signer.as_ref().is_some_and(|(_, due)| now >= *due)
    }

    /// Chooses the signer: the key the record makes active, unless it has been published for
    /// less than `jwks_max_age` (since start, as the key directory says; for a key that appeared
    /// later, since this process first served it) and the key signing now is still published,
    /// in which case the current key keeps signing until then (verifiers may not have the new
    /// key yet).
    fn choose_signer(&self, mut keys: Keyring, jwks_max_age: u32, now: DateTime<Utc>) -> Keyring {
        let current = self.serving().issuer.keyring().signing().kid().to_owned();
        let wanted = keys.signing().kid().to_owned();
        let mut state = self.state();
        for kid in keys.published().iter().map(crate::token::jwk::thumbprint) {
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
        self.serving().issuer.config().server.geoip_database.clone()
    }

    fn reload_inner(&self, force: bool, now: DateTime<Utc>) -> ReloadOutcome {
        let Some(source) = self.source() else {
            return ReloadOutcome::Rejected(self.reject(
                now,
                None,
                "not_from_files",
                "this service was not started from files".into(),
            ));
        };
        let _one_at_a_time = self.reload_lock();
        let text = match read_config(&source.config) {
            Ok(text) => text,
            Err(e) => return ReloadOutcome::Rejected(self.reject(now, None, "config_unreadable", e.to_string())),
        };
        let config_sha256 = sha256_hex(text.as_bytes());
        let running_inputs = source.keys_fingerprint(self.running_geoip().as_deref());
        {
            let state = self.state();
            let pending_due = state.pending_signer.as_ref().is_some_and(|(_, due)| now >= *due);
            if !force && !pending_due && state.config_sha256 == config_sha256 && state.inputs == running_inputs {
                return ReloadOutcome::Unchanged;
            }
        }
        let candidate_version = toml::from_str::<VersionOnly>(&text).ok().and_then(|v| v.version);
        let config = match Config::from_toml(&text, base_dir(&source.config)) {
            Ok(config) => config,
            Err(e) => {
                return ReloadOutcome::Rejected(self.reject(now, candidate_version, "config_invalid", e.to_string()));
            }
        };
        let running = self.config_version();
        let content_changed = self.state().config_sha256 != config_sha256;
        match VersionChange::between(running, config.version, content_changed) {
            VersionChange::Lowered if !source.allow_rollback => {
                let reason = format!(
                    "version: {} is lower than the running version {running}; rollback refused (start with --allow-rollback to permit it)",
                    config.version
                );
                return ReloadOutcome::Rejected(self.reject(now, Some(config.version), "rollback_refused", reason));
            }
            VersionChange::NotBumped => {
                let reason = format!(
                    "version: the content changed but version is still {running}; bump version on every change"
                );
                return ReloadOutcome::Rejected(self.reject(now, Some(config.version), "version_not_bumped", reason));
            }
            VersionChange::Lowered | VersionChange::Raised | VersionChange::Unchanged => {}
        }
        let to = config.version;
        let restart_needed = {
            let live = self.serving();
            let old = &live.issuer.config().server;
            let show = |a: Option<std::net::SocketAddr>| a.map_or_else(|| "none".to_owned(), |a| a.to_string());
            if old.listen != config.server.listen {
                Some(format!("server.listen {} -> {}", old.listen, config.server.listen))
            } else if old.metrics_listen != config.server.metrics_listen {
                Some(format!(
                    "server.metrics_listen {} -> {}",
                    show(old.metrics_listen),
                    show(config.server.metrics_listen)
                ))
            } else {
                None
            }
        };
        let inputs = source.keys_fingerprint(config.server.geoip_database.as_deref());
        let keys = match source.load_keys() {
            Ok(keys) => keys,
            Err(e) => return ReloadOutcome::Rejected(self.reject(now, Some(to), "keys_invalid", e.to_string())),
        };
        let running_kid = self.serving().issuer.keyring().signing().kid().to_owned();
        if source.signing_key.is_some() && keys.signing().kid() != running_kid {
            let reason = format!(
                "the injected signing key changed ({running_kid} -> {}): tokens signed by the old key would stop verifying at once; rotate with the key directory, or restart deliberately",
                keys.signing().kid()
            );
            return ReloadOutcome::Rejected(self.reject(now, Some(to), "signing_key_changed", reason));
        }
        if !keys.unlisted().is_empty() {
            tracing::warn!(files = ?keys.unlisted(), "key files not in keyring.toml are ignored");
        }
        let keys = self.choose_signer(keys, config.jwks_max_age, now);
        let issuer = match Issuer::new(config, keys) {
            Ok(issuer) => issuer,
            Err(e) => return ReloadOutcome::Rejected(self.reject(now, Some(to), "issuer_invalid", e.to_string())),
        };
        let kid = issuer.keyring().signing().kid().to_owned();
        // Swap and record under the state lock, so /v1/status never shows a mix.
        let mut state = self.state();
        if let Err(e) = self.replace(issuer) {
            drop(state);
            // The error names `server.audit_log` and its path.
            return ReloadOutcome::Rejected(self.reject(now, Some(to), "audit_log_unavailable", e.to_string()));
        }
        state.config_sha256 = config_sha256;
        state.inputs = inputs;
        state.loaded_at = rfc3339(now);
        drop(state);
        tracing::info!(config_version = to, previous_version = running, %kid, "reloaded");
        if let Some(setting) = restart_needed {
            tracing::warn!(%setting, "this setting takes effect only after a restart");
        }
        ReloadOutcome::Reloaded { from: running, to }
    }

    fn reject(&self, now: DateTime<Utc>, version: Option<u64>, code: &'static str, reason: String) -> Rejection {
        tracing::error!(
            running_version = self.config_version(),
            rejected_version = version,
            code,
            reason = %super::escape::Escaped(&reason),
            "reload rejected; keeping the running config"
        );
        let rejection = Rejection { version, code, reason, at: rfc3339(now) };
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
        let at = Utc::now();
        if handle.pending_due(at) {
            let handle = handle.clone();
            let _ = tokio::task::spawn_blocking(move || handle.reload_at(at)).await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::{KeyDirectory, RotateOutcome};
    use crate::keys::Policy;
    use crate::server::ReloadOutcome;

    fn at(secs: i64) -> DateTime<Utc> {
        // Years away from the wall clock, so only the times passed in can decide.
        DateTime::<Utc>::from_timestamp(2_500_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn a_deferred_signer_takes_over_at_the_time_passed_in() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(&config, "version = 1\nissuer = \"i\"\njwks_max_age = 300\n").unwrap();
        let keys = dir.path().join("keys");
        let policy = Policy::of(&Config::load(&config).unwrap());
        crate::admin::keygen(&keys, at(-7200)).unwrap();
        let mut directory = KeyDirectory::open(&keys, at(-7200)).unwrap();
        assert!(matches!(directory.rotate(policy, at(-7200), false).unwrap(), RotateOutcome::FirstNext { .. }));
        let RotateOutcome::Rotated(settled) = directory.rotate(policy, at(0), false).unwrap() else { panic!() };
        let RotateOutcome::Rotated(forced) = directory.rotate(policy, at(0), true).unwrap() else { panic!() };
        drop(directory);

        let handle = IssuerHandle::load_at(Source::new(&config, &keys), at(10)).unwrap();
        let signing = |h: &IssuerHandle| h.serving().issuer.keyring().signing().kid().to_owned();
        assert_eq!(signing(&handle), settled.activated, "the key verifiers have signs meanwhile");
        assert!(matches!(handle.reload_at(at(299)), ReloadOutcome::Unchanged));
        assert_eq!(signing(&handle), settled.activated);
        assert!(matches!(handle.reload_at(at(300)), ReloadOutcome::Reloaded { .. }));
        assert_eq!(signing(&handle), forced.activated, "published for jwks_max_age at the time passed in");
    }
}
