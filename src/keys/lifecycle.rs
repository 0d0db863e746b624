//! Signing-key lifecycle: **next** (published, not yet signing), **active** (signs; exactly
//! one), **retired** (no longer signs, still published), recorded in `keys/keyring.toml` beside
//! the private keys (the record holds no secret).
//!
//! The invariants, enforced here and tested:
//! - a key becomes active only after it has been published for at least the JWKS cache lifetime
//!   (`jwks_max_age`), so every verifier has it before the first token it signs;
//! - a retired key stays published until every token it signed has expired (the longest template
//!   `expiration_duration` plus leeway after retirement) and while any active permanent API key
//!   signed by it is recorded in the config; removing it earlier needs `force` and says what breaks.

use crate::config::Config;
use crate::keys::error::LifecycleError;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The state file in the key directory.
pub const STATE_FILE: &str = "keyring.toml";
/// Extra time a retired key stays published beyond the longest token lifetime.
pub const RETIRE_LEEWAY: Duration = Duration::seconds(60);

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published in the JWKS, not yet signing.
    Next,
    /// Signs new tokens. Exactly one key is active.
    Active,
    /// No longer signs; still published so tokens it signed keep verifying.
    Retired,
}

/// One key's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    /// The key id (RFC 7638 thumbprint).
    pub kid: String,
    /// The PEM file in the key directory.
    pub file: String,
    /// Where it is in its life.
    pub state: KeyState,
    /// When it was generated.
    pub created: DateTime<Utc>,
    /// When it was first published in the JWKS.
    pub published: DateTime<Utc>,
    /// When it started signing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated: Option<DateTime<Utc>>,
    /// When it stopped signing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired: Option<DateTime<Utc>>,
}

/// The timings that decide when a key may change state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How long verifiers may cache the JWKS.
    pub jwks_max_age: Duration,
    /// The longest lifetime of a token the issuer mints.
    pub longest_token: Duration,
}

impl Policy {
    /// The policy of a config: its `jwks_max_age` and longest template `expiration_duration`.
    pub fn of(config: &Config) -> Self {
        Self {
            jwks_max_age: Duration::seconds(i64::from(config.jwks_max_age)),
            longest_token: Duration::seconds(i64::from(config.longest_expiration())),
        }
    }
}

/// What [`KeyringState::promote`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promotion {
    /// The key that was active and is now retired, if there was one.
    pub retired: Option<String>,
    /// The key that was next and now signs.
    pub activated: String,
}

/// What a rotation changed: the promotion and the new next key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The key that was active and is now retired, if there was one.
    pub retired: Option<String>,
    /// The key that was next and now signs.
    pub activated: String,
    /// The freshly generated next key.
    pub next: String,
}

/// The lifecycle record of a key directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyringState {
    /// The keys, oldest first.
    #[serde(default)]
    pub keys: Vec<KeyRecord>,
}

impl KeyringState {
    /// The record of `kid`.
    pub fn get(&self, kid: &str) -> Option<&KeyRecord> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    fn get_mut(&mut self, kid: &str) -> Result<&mut KeyRecord, LifecycleError> {
        self.keys.iter_mut().find(|k| k.kid == kid).ok_or_else(|| LifecycleError::UnknownKid(kid.to_owned()))
    }

    /// Promotes the next key to active once it has been published for `jwks_max_age` (or at
    /// once with `force`) and retires the active one: the pure half of a rotation
    /// (`rotate` in the key directory also generates the new next key).
    ///
    /// # Errors
    ///
    /// [`LifecycleError::NoNext`] or [`LifecycleError::TooSoon`]; nothing changes.
    pub fn promote(&mut self, policy: Policy, now: DateTime<Utc>, force: bool) -> Result<Promotion, LifecycleError> {
        let next = self.keys.iter().find(|k| k.state == KeyState::Next).ok_or(LifecycleError::NoNext)?.clone();
        let published_for = (now - next.published).num_seconds();
        if published_for < policy.jwks_max_age.num_seconds() && !force {
            return Err(LifecycleError::TooSoon {
                kid: next.kid,
                published_for,
                needed: policy.jwks_max_age.num_seconds(),
                wait: policy.jwks_max_age.num_seconds() - published_for,
            });
        }
        let mut retired = None;
        for k in self.keys.iter_mut().filter(|k| k.state == KeyState::Active) {
            k.state = KeyState::Retired;
            k.retired = Some(now);
            retired = Some(k.kid.clone());
        }
        let promoted = self.get_mut(&next.kid)?;
        promoted.state = KeyState::Active;
        promoted.activated = Some(now);
        Ok(Promotion { retired, activated: next.kid })
    }

    /// Records a freshly generated key file as next (published from `now` on).
    pub fn push_next(&mut self, kid: String, file: String, now: DateTime<Utc>) {
        self.keys.push(KeyRecord {
            kid,
            file,
            state: KeyState::Next,
            created: now,
            published: now,
            activated: None,
            retired: None,
        });
    }

    /// Retires a next key (it never signed). The active key is retired by rotating.
    ///
    /// # Errors
    ///
    /// [`LifecycleError::UnknownKid`] or [`LifecycleError::ActiveKey`].
    pub fn retire(&mut self, kid: &str, now: DateTime<Utc>) -> Result<(), LifecycleError> {
        let record = self.get_mut(kid)?;
        match record.state {
            KeyState::Active => Err(LifecycleError::ActiveKey(kid.to_owned())),
            KeyState::Retired => Ok(()),
            KeyState::Next => {
                record.state = KeyState::Retired;
                record.retired = Some(now);
                Ok(())
            }
        }
    }

    /// When a retired key may leave the JWKS: once every token it signed has expired. Keys
    /// that never signed may go at once.
    pub fn retire_after(record: &KeyRecord, policy: Policy) -> Option<DateTime<Utc>> {
        let retired = record.retired?;
        Some(if record.activated.is_some() { retired + policy.longest_token + RETIRE_LEEWAY } else { retired })
    }

    /// When the retired key `kid` may leave the JWKS, as [`KeyringState::retire_after`], but
    /// also counting the tokens it may still sign after it was retired: a server keeps the
    /// previous key signing until its successor has been published for `jwks_max_age`, which
    /// after a forced rotation is later than the retirement.
    pub fn removable_after(&self, kid: &str, policy: Policy) -> Option<DateTime<Utc>> {
        let record = self.get(kid)?;
        let after = Self::retire_after(record, policy)?;
        let retired = record.retired?;
        let successor_due = self
            .keys
            .iter()
            .filter(|k| record.activated.is_some() && k.kid != kid && k.activated == Some(retired))
            .map(|k| k.published + policy.jwks_max_age + policy.longest_token + RETIRE_LEEWAY)
            .max();
        Some(successor_due.map_or(after, |due| due.max(after)))
    }

    /// What removing `kid` at `now` would break: unexpired tokens, and active permanent API
    /// keys of `config` signed by it.
    pub fn blockers(&self, kid: &str, config: &Config, policy: Policy, now: DateTime<Utc>) -> Vec<String> {
        let mut reasons = Vec::new();
        if let Some(after) = self.removable_after(kid, policy)
            && now < after
        {
            reasons.push(format!(
                "tokens it signed may be valid until {}",
                after.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ));
        }
        let pinned: Vec<&str> = config
            .api_keys()
            .iter()
            .filter(|k| k.active && k.kid.as_deref() == Some(kid))
            .map(|k| k.id.as_str())
            .collect();
        if !pinned.is_empty() {
            reasons.push(format!(
                "active permanent API keys signed by it: {} (reissue or deactivate them)",
                pinned.join(", ")
            ));
        }
        // Keys recorded without their signer (created before kids were recorded) might depend
        // on any key that ever signed.
        let signed = self.get(kid).is_some_and(|r| r.activated.is_some());
        let unknown: Vec<&str> =
            config.api_keys().iter().filter(|k| k.active && k.kid.is_none()).map(|k| k.id.as_str()).collect();
        if signed && !unknown.is_empty() {
            reasons.push(format!(
                "active permanent API keys with no recorded kid may be signed by it: {}",
                unknown.join(", ")
            ));
        }
        reasons
    }

    /// Removes a retired key from the record, refusing while it is still needed unless `force`.
    /// Returns the file to delete once the record is saved (deleting it first would leave a
    /// record naming a missing file after a crash) and what was broken (empty unless forced).
    ///
    /// # Errors
    ///
    /// [`LifecycleError::StillNeeded`], [`LifecycleError::NotRetired`],
    /// [`LifecycleError::ActiveKey`] or [`LifecycleError::UnknownKid`].
    pub fn remove(
        &mut self,
        dir: &Path,
        kid: &str,
        config: &Config,
        now: DateTime<Utc>,
        force: bool,
    ) -> Result<(std::path::PathBuf, Vec<String>), LifecycleError> {
        let record = self.get(kid).ok_or_else(|| LifecycleError::UnknownKid(kid.to_owned()))?.clone();
        match record.state {
            KeyState::Active => return Err(LifecycleError::ActiveKey(kid.to_owned())),
            KeyState::Next => return Err(LifecycleError::NotRetired(kid.to_owned())),
            KeyState::Retired => {}
        }
        let reasons = self.blockers(kid, config, Policy::of(config), now);
        if !reasons.is_empty() && !force {
            return Err(LifecycleError::StillNeeded { kid: kid.to_owned(), reasons });
        }
        self.keys.retain(|k| k.kid != kid);
        Ok((dir.join(&record.file), reasons))
    }
}

/// Whether `file` names an entry of a directory and nothing else: no separator, not `.` or
/// `..`, not empty, no NUL.
pub(crate) fn is_plain_file_name(file: &str) -> bool {
    !file.is_empty() && file != "." && file != ".." && !file.contains(['/', '\\', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::dir::generate_key_file;
    use crate::keys::error::KeyError;

    const CONFIG: &str = r#"
version = 1
issuer = "i"
jwks_max_age = 300
[projects.demo]
[[templates]]
id = "t"
project = "demo"
permissions = ["OBJECTS_LIST"]
expiration_duration = 3600
"#;

    fn config(extra: &str) -> Config {
        Config::from_toml(&format!("{CONFIG}{extra}"), Path::new(".")).unwrap()
    }

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-23T00:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn setup() -> (tempfile::TempDir, KeyringState) {
        let dir = tempfile::tempdir().unwrap();
        generate_key_file(dir.path(), chrono::Utc::now()).unwrap();
        let state = KeyringState::adopt(dir.path(), t0()).unwrap();
        (dir, state)
    }

    #[test]
    fn a_key_signs_only_after_the_jwks_cache_lifetime() {
        let (dir, mut state) = setup();
        let policy = Policy::of(&config(""));
        assert!(matches!(
            state.rotate(dir.path(), policy, t0(), false),
            Err(KeyError::Transition(LifecycleError::NoNext))
        ));
        let next = state.add_next(dir.path(), t0()).unwrap();
        let err = state.rotate(dir.path(), policy, t0() + Duration::seconds(299), false).unwrap_err();
        assert!(matches!(err, KeyError::Transition(LifecycleError::TooSoon { wait: 1, .. })), "{err}");
        let Rotation { retired, activated: active, next: new_next } =
            state.rotate(dir.path(), policy, t0() + Duration::seconds(300), false).unwrap();
        assert_eq!(active, next);
        assert!(retired.is_some() && new_next != next);
        state.save(dir.path()).unwrap();
        let ring = crate::keys::store::Keyring::load_dir(dir.path()).unwrap();
        assert_eq!(ring.signing().kid(), next);
        assert_eq!(ring.published().len(), 3, "retired, active and next are all published");
        // Forced, the wait is skipped.
        assert!(state.rotate(dir.path(), policy, t0() + Duration::seconds(301), true).is_ok());
    }

    #[test]
    fn a_retired_key_stays_until_its_tokens_expire_and_its_api_keys_are_gone() {
        let (dir, mut state) = setup();
        let old = state.keys[0].kid.clone();
        state.add_next(dir.path(), t0()).unwrap();
        let policy = Policy::of(&config(""));
        state.rotate(dir.path(), policy, t0() + Duration::seconds(300), false).unwrap();
        let retired_at = t0() + Duration::seconds(300);
        assert_eq!(
            KeyringState::retire_after(state.get(&old).unwrap(), policy),
            Some(retired_at + Duration::seconds(3600) + RETIRE_LEEWAY)
        );
        let config_plain = config("");
        let early = state
            .clone()
            .remove(dir.path(), &old, &config_plain, retired_at + Duration::seconds(3600), false)
            .unwrap_err();
        assert!(
            matches!(&early, LifecycleError::StillNeeded { reasons, .. } if reasons[0].contains("tokens it signed")),
            "{early}"
        );
        let pinned = config(&format!(
            "[[api_keys]]\nid = \"ak_1\"\npermissions = [\"OBJECTS_LIST\"]\nprojects = [\"demo\"]\nkid = \"{old}\"\n"
        ));
        let late = retired_at + Duration::seconds(3600 + 61);
        let err = state.clone().remove(dir.path(), &old, &pinned, late, false).unwrap_err();
        assert!(err.to_string().contains("ak_1"), "{err}");
        // Without blockers it goes, file and all.
        let file = dir.path().join(&state.get(&old).unwrap().file);
        let mut unpinned = state.clone();
        let (to_delete, broken) = unpinned.remove(dir.path(), &old, &config_plain, late, false).unwrap();
        assert!(broken.is_empty() && to_delete == file && unpinned.get(&old).is_none());
        // Keys recorded without a kid might be signed by it.
        let unknown =
            config("[[api_keys]]\nid = \"ak_old\"\npermissions = [\"OBJECTS_LIST\"]\nprojects = [\"demo\"]\n");
        let err = state.clone().remove(dir.path(), &old, &unknown, late, false).unwrap_err();
        assert!(err.to_string().contains("no recorded kid"), "{err}");
        // Forcing says what it breaks.
        let (_, broken) = state.remove(dir.path(), &old, &pinned, late, true).unwrap();
        assert_eq!(broken.len(), 1);
        assert!(broken[0].contains("ak_1"));
    }

    /// After a forced rotation the retired key may go on signing (a server starting, or one
    /// that had not yet published the new key) until the new key has been published for
    /// `jwks_max_age`: its tokens live that much longer, and so must it.
    #[test]
    fn a_key_retired_by_a_forced_rotation_stays_until_its_last_possible_tokens_expire() {
        let (dir, mut state) = setup();
        let old = state.keys[0].kid.clone();
        let policy = Policy::of(&config(""));
        state.add_next(dir.path(), t0()).unwrap();
        let retired_at = t0() + Duration::seconds(10);
        state.rotate(dir.path(), policy, retired_at, true).unwrap();
        // The successor was published at t0, so the old key may sign until t0 + 300 s.
        let last_token_expiry = t0() + Duration::seconds(300 + 3600) + RETIRE_LEEWAY;
        assert_eq!(state.removable_after(&old, policy), Some(last_token_expiry));
        let early = retired_at + Duration::seconds(3600) + RETIRE_LEEWAY + Duration::seconds(1);
        let err = state.clone().remove(dir.path(), &old, &config(""), early, false).unwrap_err();
        assert!(err.to_string().contains("tokens it signed"), "{err}");
        assert!(state.remove(dir.path(), &old, &config(""), last_token_expiry, false).is_ok());
    }

    #[test]
    fn active_and_next_keys_are_protected() {
        let (dir, mut state) = setup();
        let active = state.keys[0].kid.clone();
        assert!(matches!(state.retire(&active, t0()), Err(LifecycleError::ActiveKey(_))));
        assert!(matches!(
            state.clone().remove(dir.path(), &active, &config(""), t0(), true),
            Err(LifecycleError::ActiveKey(_))
        ));
        let next = state.add_next(dir.path(), t0()).unwrap();
        assert!(matches!(
            state.clone().remove(dir.path(), &next, &config(""), t0(), true),
            Err(LifecycleError::NotRetired(_))
        ));
        // A next key that never signed may be retired and removed at once.
        state.retire(&next, t0()).unwrap();
        assert!(state.remove(dir.path(), &next, &config(""), t0(), false).unwrap().1.is_empty());
        // Adopted keys count as having signed: the full wait applies to them.
        assert!(KeyringState::adopt(dir.path(), t0()).unwrap().keys.iter().all(|k| k.activated.is_some()));
        assert!(matches!(state.retire("nope", t0()), Err(LifecycleError::UnknownKid(_))));
    }

    /// A record's `file` names a file in the key directory, nothing else: an absolute path or
    /// one climbing out would let whoever edits the record publish and sign with a foreign key.
    #[test]
    fn a_record_names_plain_files_only() {
        let (dir, state) = setup();
        let elsewhere = tempfile::tempdir().unwrap();
        let (foreign, _) = generate_key_file(elsewhere.path(), chrono::Utc::now()).unwrap();
        let climbing = format!(
            "../{}/{}",
            elsewhere.path().file_name().unwrap().to_string_lossy(),
            foreign.file_name().unwrap().to_string_lossy()
        );
        for file in [foreign.display().to_string(), climbing, "sub/key.pem".into(), "..".into(), String::new()] {
            let mut bad = state.clone();
            bad.add_next(dir.path(), t0()).unwrap();
            let kid = crate::keys::store::key_files(foreign.parent().unwrap()).unwrap()[0].1.clone();
            let last = bad.keys.last_mut().unwrap();
            last.file = file.clone();
            last.kid = kid;
            bad.save(dir.path()).unwrap();
            let err = crate::keys::store::Keyring::load_dir(dir.path()).unwrap_err().to_string();
            assert!(err.contains("plain file name"), "{file:?}: {err}");
            assert!(KeyringState::load(dir.path()).is_err(), "{file:?}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_record_others_can_write() {
        use std::os::unix::fs::PermissionsExt as _;
        let (dir, state) = setup();
        state.save(dir.path()).unwrap();
        let record = dir.path().join(STATE_FILE);
        std::fs::set_permissions(&record, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = KeyringState::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains(&record.display().to_string()) && err.contains("chmod go-w"), "{err}");
        assert!(crate::keys::store::Keyring::load_dir(dir.path()).is_err());
        // Readable by others is fine: it holds no secret.
        std::fs::set_permissions(&record, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(crate::keys::store::Keyring::load_dir(dir.path()).is_ok());
        // A record linked from outside the directory is refused like a key.
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::rename(&record, elsewhere.path().join(STATE_FILE)).unwrap();
        std::os::unix::fs::symlink(elsewhere.path().join(STATE_FILE), &record).unwrap();
        let err = KeyringState::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("outside"), "{err}");
    }

    #[test]
    fn the_record_and_the_files_must_agree() {
        let (dir, state) = setup();
        state.save(dir.path()).unwrap();
        assert!(crate::keys::store::Keyring::load_dir(dir.path()).is_ok());
        // A file the record does not list (mid-write, or a crash before it was recorded) is
        // neither published nor fatal; it is reported.
        let (stray, stray_kid) = generate_key_file(dir.path(), chrono::Utc::now()).unwrap();
        let ring = crate::keys::store::Keyring::load_dir(dir.path()).unwrap();
        assert!(!ring.publishes(&stray_kid));
        assert_eq!(ring.unlisted(), [stray.file_name().unwrap().to_string_lossy().into_owned()]);
        // A record naming a missing file is an error.
        std::fs::remove_file(dir.path().join(&state.keys[0].file)).unwrap();
        assert!(crate::keys::store::Keyring::load_dir(dir.path()).is_err());
    }
}
