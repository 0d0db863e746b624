//! Driving the signing-key lifecycle of a key directory: the first rotation, the record saved
//! before a file is deleted, and the lock every writer of the directory takes.

use crate::admin::AdminError;
use crate::config::{Config, lock};
use crate::keys::{
    KeyRecord, KeyState, KeyringState, LifecycleError, Policy, Promotion, Rotation, STATE_FILE, create_private_dir,
};
use chrono::{DateTime, Utc};
use std::fs::File;
use std::path::{Path, PathBuf};

/// A key directory opened for lifecycle changes: created `0700` if missing, locked against
/// other writers (`keysmith keys`, `keysmith keygen`) until dropped, its record loaded or
/// started.
#[derive(Debug)]
pub struct KeyDirectory {
    dir: PathBuf,
    state: KeyringState,
    adopted: bool,
    _lock: File,
}

/// What [`KeyDirectory::rotate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The next key now signs; a new next key is published.
    Rotated(Rotation),
    /// There was no next key: one was generated and published. The next rotation, once
    /// verifiers have fetched it, makes it active.
    FirstNext {
        /// The new next key.
        next: String,
    },
}

/// What [`KeyDirectory::remove`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The removed key's file, deleted after the record was saved.
    pub file: PathBuf,
    /// What a forced removal breaks (empty unless forced).
    pub broken: Vec<String>,
}

impl KeyDirectory {
    /// Opens `dir` at `now`. Without a record the directory is adopted (the newest key active,
    /// the others retired); [`KeyDirectory::adopted`] says so, and nothing is written until a
    /// change is saved.
    ///
    /// # Errors
    ///
    /// When the directory cannot be created or locked, or its keys or record cannot be read.
    pub fn open(dir: &Path, now: DateTime<Utc>) -> Result<Self, AdminError> {
        create_private_dir(dir)?;
        let lock = lock(&dir.join(STATE_FILE))?;
        let (state, adopted) = match KeyringState::load(dir)? {
            Some(state) => (state, false),
            None => (KeyringState::adopt(dir, now)?, true),
        };
        Ok(Self { dir: dir.to_owned(), state, adopted, _lock: lock })
    }

    /// The lifecycle record.
    pub fn state(&self) -> &KeyringState {
        &self.state
    }

    /// Whether the directory had no record and one was started from its files.
    pub fn adopted(&self) -> bool {
        self.adopted
    }

    /// Whether a record file exists in the directory.
    pub fn has_record_file(&self) -> bool {
        self.dir.join(STATE_FILE).exists()
    }

    /// The record's keys, oldest first, with what keeps each one published at `now`.
    pub fn list(&self, config: &Config, now: DateTime<Utc>) -> Vec<KeyListing> {
        let policy = Policy::of(config);
        self.state
            .keys
            .iter()
            .map(|record| {
                let pinned_by: Vec<String> = config
                    .api_keys()
                    .iter()
                    .filter(|a| a.active && a.kid.as_deref() == Some(record.kid.as_str()))
                    .map(|a| a.id.clone())
                    .collect();
                let removable_after = self.state.removable_after(&record.kid, policy);
                let removable = record.state == KeyState::Retired
                    && removable_after.is_some_and(|a| a <= now)
                    && pinned_by.is_empty();
                KeyListing { record: record.clone(), removable_after, pinned_by, removable }
            })
            .collect()
    }

    /// Rotates: promotes the next key and publishes a new one, or, when there is no next key
    /// yet (the first rotation), publishes one. The record is saved.
    ///
    /// # Errors
    ///
    /// [`LifecycleError::TooSoon`] while the next key is not yet published long enough
    /// (nothing changes), or an I/O failure.
    pub fn rotate(&mut self, policy: Policy, now: DateTime<Utc>, force: bool) -> Result<RotateOutcome, AdminError> {
        let outcome = match self.state.promote(policy, now, force) {
            Ok(Promotion { retired, activated }) => {
                let next = self.state.add_next(&self.dir, now)?;
                RotateOutcome::Rotated(Rotation { retired, activated, next })
            }
            Err(LifecycleError::NoNext) => RotateOutcome::FirstNext { next: self.state.add_next(&self.dir, now)? },
            Err(e) => return Err(e.into()),
        };
        self.state.save(&self.dir)?;
        Ok(outcome)
    }

    /// Retires a next key (it never signed) and saves the record.
    ///
    /// # Errors
    ///
    /// As [`KeyringState::retire`], or an I/O failure.
    pub fn retire(&mut self, kid: &str, now: DateTime<Utc>) -> Result<(), AdminError> {
        self.state.retire(kid, now)?;
        self.state.save(&self.dir)?;
        Ok(())
    }

    /// Removes a retired key: the record is saved first, then the file deleted, so a crash in
    /// between leaves an unlisted file, never a record naming a missing one.
    ///
    /// # Errors
    ///
    /// As [`KeyringState::remove`] (nothing changes), or an I/O failure.
    pub fn remove(
        &mut self,
        kid: &str,
        config: &Config,
        now: DateTime<Utc>,
        force: bool,
    ) -> Result<Removal, AdminError> {
        let (file, broken) = self.state.remove(&self.dir, kid, config, now, force)?;
        self.state.save(&self.dir)?;
        std::fs::remove_file(&file).map_err(|source| AdminError::Delete { path: file.clone(), source })?;
        Ok(Removal { file, broken })
    }
}

/// One key of the record as [`KeyDirectory::list`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyListing {
    /// Its record.
    pub record: KeyRecord,
    /// When it may leave the JWKS (retired keys only; see [`KeyringState::removable_after`]).
    pub removable_after: Option<DateTime<Utc>>,
    /// The active permanent API keys of the config signed by it.
    pub pinned_by: Vec<String>,
    /// Whether `keysmith keys remove` would remove it now without `--force`.
    pub removable: bool,
}

/// What [`keygen`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeygenOutcome {
    /// The directory has a lifecycle record: the key joined it as next (published now,
    /// signing after a rotation).
    Next {
        /// The new key.
        kid: String,
    },
    /// No record: the key file was written; the newest key signs.
    File {
        /// The key file.
        path: PathBuf,
        /// The new key.
        kid: String,
    },
}

/// Generates a signing key into `dir` (created `0700` if missing) under the directory lock.
///
/// # Errors
///
/// When the directory cannot be created or locked, or the key or record cannot be written.
pub fn keygen(dir: &Path, now: DateTime<Utc>) -> Result<KeygenOutcome, AdminError> {
    create_private_dir(dir)?;
    let _lock = lock(&dir.join(STATE_FILE))?;
    if let Some(mut state) = KeyringState::load(dir)? {
        let kid = state.add_next(dir, now)?;
        state.save(dir)?;
        return Ok(KeygenOutcome::Next { kid });
    }
    let (path, kid) = crate::keys::generate_key_file(dir, now)?;
    Ok(KeygenOutcome::File { path, kid })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_rotation_publishes_a_next_key_and_a_removal_saves_before_deleting() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::from_toml("version = 1\nissuer = \"i\"\njwks_max_age = 300\n", Path::new(".")).unwrap();
        let policy = Policy::of(&config);
        let t0 = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        keygen(dir.path(), t0).unwrap();
        let mut keys = KeyDirectory::open(dir.path(), t0).unwrap();
        assert!(keys.adopted());
        let RotateOutcome::FirstNext { next } = keys.rotate(policy, t0, false).unwrap() else { panic!("first") };
        assert!(matches!(keys.rotate(policy, t0, false), Err(AdminError::Lifecycle(LifecycleError::TooSoon { .. }))));
        let later = t0 + chrono::Duration::seconds(300);
        let RotateOutcome::Rotated(rotation) = keys.rotate(policy, later, false).unwrap() else { panic!("second") };
        assert_eq!(rotation.activated, next);
        let retired = rotation.retired.unwrap();
        drop(keys);
        let mut keys = KeyDirectory::open(dir.path(), later).unwrap();
        assert!(!keys.adopted(), "the record was saved");
        let listed = keys.list(&config, later);
        assert_eq!(listed.iter().map(|k| k.removable).collect::<Vec<_>>(), [false, false, false], "tokens may live");
        let listed = keys.list(&config, later + chrono::Duration::days(30));
        let old = listed.iter().find(|k| k.record.kid == retired).unwrap();
        assert!(old.removable && old.pinned_by.is_empty() && old.removable_after.is_some());
        let removal = keys.remove(&retired, &config, later + chrono::Duration::days(30), false).unwrap();
        assert!(!removal.file.exists());
        assert!(keys.state().get(&retired).is_none());
        assert!(KeyringState::load(dir.path()).unwrap().unwrap().get(&retired).is_none());
    }
}
