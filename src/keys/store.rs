//! Ed25519 signing keys on disk (`keys/*.pem`, PKCS#8) and in memory.
//!
//! The signing key is expanded once at load (SHA-512 of the seed), so minting a token costs one
//! signature and no key parsing. Private key material zeroizes on drop and never prints.

pub(crate) use crate::keys::dir::{generate_key_file, key_files, trusted_dir};
pub(crate) use crate::keys::error::KeyError;
pub(crate) use crate::keys::signing::SigningKey;

use crate::keys::dir::{Reader, TrustedDir, load_pem, load_pem_in, pem_paths};
use crate::keys::lifecycle::{KeyRecord, KeyState, KeyringState};
use crate::token::jwk::PublicJwk;
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::VerifyingKey;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The keys of a running issuer: one signs, all are published in the JWKS.
#[derive(Debug)]
pub struct Keyring {
    /// Every published key, private half included (so the signer can be switched).
    keys: Vec<SigningKey>,
    active: usize,
    published: Vec<VerifyingKey>,
    /// Key files in the directory that the lifecycle record does not list: neither published
    /// nor used, reported so an operator can clean up.
    unlisted: Vec<String>,
    /// When each key (same index as `keys`) was published and whether it signed before.
    times: Vec<KeyTimes>,
    /// Whether a lifecycle record said when the keys were published (else file times did).
    recorded: bool,
}

/// What the key directory says about one key's past.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct KeyTimes {
    /// Since when verifiers can have it: the record's `published`, or the key file's
    /// modification time without a record. `None` when unknown (an injected key).
    published: Option<DateTime<Utc>>,
    /// Whether the key signed before (a retired key that was active, or, without a record, any
    /// key file), so it may sign again while a successor waits. With a record: when it stopped.
    signed: Option<DateTime<Utc>>,
}

/// A key that should sign but is held back until verifiers can have it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Deferred {
    /// The key that should sign.
    pub kid: String,
    /// When it will have been published for the JWKS cache lifetime and may sign.
    pub due: DateTime<Utc>,
}

impl Keyring {
    /// A keyring of one key.
    pub fn single(key: SigningKey) -> Self {
        Self::from_keys(vec![key], 0, Vec::new())
    }

    fn from_keys(keys: Vec<SigningKey>, active: usize, unlisted: Vec<String>) -> Self {
        let times = vec![KeyTimes::default(); keys.len()];
        Self::with_times(keys, active, unlisted, times)
    }

    fn with_times(keys: Vec<SigningKey>, active: usize, unlisted: Vec<String>, times: Vec<KeyTimes>) -> Self {
        let published = keys.iter().map(SigningKey::verifying_key).collect();
        Self { keys, active, published, unlisted, times, recorded: false }
    }

    /// Loads the key directory. With a lifecycle record (`keyring.toml`), the active key signs
    /// and next, active and retired keys are published; without one, every `*.pem` is published
    /// and the one whose file name sorts last (the newest, as `keygen` names files) signs.
    ///
    /// The directory must be trusted: it, every directory a key link leads through, and the
    /// record may be changed by their owner alone (this user or root; a read-only tmpfs, such
    /// as a Kubernetes Secret volume, counts as unchangeable), links must stay inside it, and a
    /// key file must have a single hard link.
    ///
    /// This publishes every key it loads and signs with the one the directory says; a server
    /// starting up then applies [`Keyring::defer_unpublished`].
    ///
    /// # Errors
    ///
    /// A [`KeyError`] for an unreadable directory or file, a directory or record others can
    /// change, a link leading out of the directory, a file that is not a key, a key readable by
    /// others, owned by another user or hard-linked elsewhere, a record that names a missing
    /// file, or a directory without keys.
    pub fn load_dir(dir: &Path) -> Result<Self, KeyError> {
        Self::load_as(dir, Reader::Process)
    }

    fn load_as(dir: &Path, reader: Reader) -> Result<Self, KeyError> {
        let trusted = trusted_dir(dir, reader)?;
        let dir = trusted.path();
        let paths = pem_paths(dir)?;
        let state = crate::keys::lifecycle::KeyringState::load_in(&trusted)?;
        if let Some(state) = state {
            return Self::from_state(&trusted, &paths, &state);
        }
        let mut keys = Vec::with_capacity(paths.len());
        let mut times = Vec::with_capacity(paths.len());
        for path in &paths {
            let (key, modified) = load_pem_in(&trusted, path)?;
            keys.push(key);
            times.push(KeyTimes { published: modified, signed: modified });
        }
        let active = keys.len().checked_sub(1).ok_or_else(|| KeyError::NoKeys(dir.to_owned()))?;
        Ok(Self::with_times(keys, active, Vec::new(), times))
    }

    /// Loads `dir` to sign at `now`, choosing the signer as a server starting at `now` does:
    /// [`Keyring::load_dir`], then [`Keyring::defer_unpublished`], so a key signs only once it
    /// has been published for `jwks_max_age` (the key that signed before signs until then).
    /// Returns the held-back key, if any. Every signer outside the server (`keysmith mint`,
    /// `keysmith apikey create`) loads its keys through here.
    ///
    /// # Errors
    ///
    /// As [`Keyring::load_dir`].
    pub fn load_to_sign(
        dir: &Path,
        jwks_max_age: Duration,
        now: DateTime<Utc>,
    ) -> Result<(Self, Option<Deferred>), KeyError> {
        let mut keys = Self::load_as(dir, Reader::OwnerIfRoot)?;
        let deferred = keys.defer_unpublished(jwks_max_age, now);
        Ok((keys, deferred))
    }

    /// The keys as the lifecycle record says. Files the record does not list (a key being
    /// written, a crash between writing a key and recording it) are left out and reported.
    fn from_state(
        trusted: &TrustedDir,
        paths: &[PathBuf],
        state: &crate::keys::lifecycle::KeyringState,
    ) -> Result<Self, KeyError> {
        use crate::keys::lifecycle::KeyState;
        let dir = trusted.path();
        let unlisted: Vec<String> = paths
            .iter()
            .filter_map(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| !state.keys.iter().any(|k| &k.file == n))
            .collect();
        let active: Vec<_> = state.keys.iter().filter(|k| k.state == KeyState::Active).collect();
        let [active] = active.as_slice() else {
            return Err(KeyError::RecordMismatch(format!(
                "{}: exactly one key must be active, found {}",
                dir.display(),
                active.len()
            )));
        };
        let mut keys = Vec::with_capacity(state.keys.len());
        let mut times = Vec::with_capacity(state.keys.len());
        let mut active_index = None;
        for record in &state.keys {
            // `KeyringState::load` has checked that `file` is a plain file name.
            let (key, _) = load_pem_in(trusted, &dir.join(&record.file))?;
            if key.kid() != record.kid {
                return Err(KeyError::RecordMismatch(format!(
                    "{}: {} holds key {}, not {}",
                    dir.display(),
                    record.file,
                    key.kid(),
                    record.kid
                )));
            }
            if record.kid == active.kid {
                active_index = Some(keys.len());
            }
            keys.push(key);
            let signed = match record.state {
                KeyState::Retired if record.activated.is_some() => record.retired.or(record.activated),
                _ => None,
            };
            times.push(KeyTimes { published: Some(record.published), signed });
        }
        let active = active_index.ok_or_else(|| KeyError::NoKeys(dir.to_owned()))?;
        Ok(Self { recorded: true, ..Self::with_times(keys, active, unlisted, times) })
    }

    /// When `kid` was first published, as the key directory tells: its record's `published`
    /// time, or without a record its key file's modification time. `None` for a key given
    /// directly (an injected key) or not in this keyring.
    pub fn published_at(&self, kid: &str) -> Option<DateTime<Utc>> {
        let index = self.keys.iter().position(|k| k.kid() == kid)?;
        self.times.get(index).and_then(|t| t.published)
    }

    /// Holds back a signing key that verifiers may not have yet, at start: when the key the
    /// directory makes active has been published for less than `jwks_max_age` at `now`, the key
    /// that signed before it signs instead (with a record, the retired key that stopped signing
    /// last; without one, the newest other key file), if that one has been published for
    /// `jwks_max_age`. Returns the held-back key and when it may sign.
    ///
    /// Without a record and with more than one key, when no key has been published that long
    /// (a Kubernetes Secret mount, where the kubelet writes every file at mount time), the
    /// newest other key signs until the active one has been served for `jwks_max_age` from
    /// `now`: file times cannot tell which key verifiers already have, so the safe guess is
    /// the one that would have signed before. File times are the later of mtime and ctime, so
    /// a backdated copy looks young. A fresh install with a single key signs at once.
    pub fn defer_unpublished(&mut self, jwks_max_age: Duration, now: DateTime<Utc>) -> Option<Deferred> {
        let wanted = self.signing().kid().to_owned();
        // A key whose publication time is unknown counts as published now: fail closed.
        let since = self.published_at(&wanted).unwrap_or(now);
        if now >= since + jwks_max_age {
            return None;
        }
        let known_since = |t: &KeyTimes| t.published.is_some_and(|p| now >= p + jwks_max_age);
        // The latest to sign; without a record, the newest file (sorted by name, as `keygen`
        // names them).
        let latest = |candidates: &mut dyn Iterator<Item = (usize, &KeyTimes)>| {
            candidates.max_by_key(|&(i, t)| (t.signed, i)).map(|(i, _)| i)
        };
        let others = || self.times.iter().enumerate().filter(|&(i, t)| i != self.active && t.signed.is_some());
        if let Some(previous) = latest(&mut others().filter(|&(_, t)| known_since(t))) {
            let fallback = self.keys.get(previous).map(|k| k.kid().to_owned())?;
            return self.keep_signer_until_published(&fallback, since, jwks_max_age, now);
        }
        if self.recorded {
            return None;
        }
        let previous = latest(&mut others())?;
        let fallback = self.keys.get(previous).map(|k| k.kid().to_owned())?;
        // Served by this process from now on: due once it has been for the cache lifetime.
        self.keep_signer_until_published(&fallback, now, jwks_max_age, now)
    }

    /// Keeps `current` signing instead of the active key while the active key, published
    /// since `since`, has been published for less than `jwks_max_age` at `now` and `current`
    /// is still published. Returns the held-back key and when it may sign.
    pub fn keep_signer_until_published(
        &mut self,
        current: &str,
        since: DateTime<Utc>,
        jwks_max_age: Duration,
        now: DateTime<Utc>,
    ) -> Option<Deferred> {
        let wanted = self.signing().kid().to_owned();
        let due = since + jwks_max_age;
        if wanted == current || now >= due || !self.set_signer(current) {
            return None;
        }
        Some(Deferred { kid: wanted, due })
    }

    /// Signs with `kid` instead, if it is among these keys; returns whether it is.
    pub fn set_signer(&mut self, kid: &str) -> bool {
        match self.keys.iter().position(|k| k.kid() == kid) {
            Some(index) => {
                self.active = index;
                true
            }
            None => false,
        }
    }

    /// Whether `kid` is published by this keyring.
    pub fn publishes(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid() == kid)
    }

    /// Key files the lifecycle record does not list.
    pub fn unlisted(&self) -> &[String] {
        &self.unlisted
    }

    /// A keyring of one key given as PKCS#8 PEM text, for platforms that inject the key through
    /// an environment variable or a mounted secret file.
    ///
    /// # Errors
    ///
    /// [`KeyError::NotAKey`].
    pub fn from_pem(pem: &str, source: &Path) -> Result<Self, KeyError> {
        let pem = Zeroizing::new(pem.to_owned());
        let key = crate::keys::pem::decode(&pem, source)?;
        Ok(Self::single(SigningKey::new(&key)))
    }

    /// Loads one key from a PEM file (mode 0600, owned by this user), for
    /// `serve --signing-key-file`.
    ///
    /// # Errors
    ///
    /// As [`Keyring::load_dir`] for one file.
    pub fn from_pem_file(path: &Path) -> Result<Self, KeyError> {
        Ok(Self::single(load_pem(path)?.0))
    }

    /// Loads `dir`, first generating a key into it when it holds none. Returns the path of the
    /// generated key, if any, so the caller can say so loudly.
    ///
    /// # Errors
    ///
    /// As [`Keyring::load_dir`] and [`generate_key_file`].
    pub fn load_or_generate(dir: &Path, now: DateTime<Utc>) -> Result<(Self, Option<PathBuf>), KeyError> {
        match Self::load_dir(dir) {
            Err(KeyError::NoKeys(_)) => {
                let (path, _) = generate_key_file(dir, now)?;
                Ok((Self::load_dir(dir)?, Some(path)))
            }
            Err(KeyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                let (path, _) = generate_key_file(dir, now)?;
                Ok((Self::load_dir(dir)?, Some(path)))
            }
            other => other.map(|k| (k, None)),
        }
    }

    /// The key that signs.
    pub fn signing(&self) -> &SigningKey {
        // `active` always indexes `keys`: every constructor sets it from a position in it.
        &self.keys[self.active]
    }

    /// Every published public key, the signing one included.
    pub fn published(&self) -> &[VerifyingKey] {
        &self.published
    }

    /// The JWKS document of the published keys.
    pub fn jwks(&self) -> crate::token::jwk::Jwks {
        crate::token::jwk::Jwks { keys: self.published.iter().map(PublicJwk::from_key).collect() }
    }
}

impl KeyringState {
    /// Starts a record for a directory that has none: the newest key is active, the others
    /// retired now.
    ///
    /// # Errors
    ///
    /// When a key file cannot be read.
    pub fn adopt(dir: &Path, now: DateTime<Utc>) -> Result<Self, KeyError> {
        let ring = Keyring::load_dir(dir)?;
        let active = ring.signing().kid().to_owned();
        let mut keys: Vec<KeyRecord> = Vec::new();
        for (file, kid) in key_files(dir)? {
            let state = if kid == active { KeyState::Active } else { KeyState::Retired };
            keys.push(KeyRecord {
                kid,
                file,
                state,
                created: now,
                published: now,
                // Older keys may have signed tokens that are still valid: treat every adopted key
                // as having signed until now, so the full retirement wait applies.
                activated: Some(now),
                retired: (state == KeyState::Retired).then_some(now),
            });
        }
        Ok(Self { keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::dir::write_private;
    #[cfg(unix)]
    use crate::keys::dir::{Mount, check_mode_and_owner, check_not_writable_by_others};
    use ed25519_dalek::SigningKey as DalekSigningKey;
    use ed25519_dalek::{Signer as _, Verifier as _};
    use std::fs;

    #[test]
    fn pre_expanded_signing_matches_dalek() {
        let dalek = DalekSigningKey::from_bytes(&[9u8; 32]);
        let key = SigningKey::new(&dalek);
        let token = key.sign_access_token(br#"{"a":1}"#).unwrap();
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = crate::token::b64::decode_array::<64>(sig).unwrap();
        assert_eq!(sig, dalek.sign(input.as_bytes()).to_bytes());
        assert!(dalek.verifying_key().verify(input.as_bytes(), &ed25519_dalek::Signature::from_bytes(&sig)).is_ok());
    }

    #[test]
    fn debug_redacts() {
        let text = format!("{:?}", SigningKey::generate());
        assert!(text.contains("[redacted]"));
        assert!(!text.contains("expanded"));
    }

    #[test]
    fn generate_then_load() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let (ring, generated) = Keyring::load_or_generate(&keys, chrono::Utc::now()).unwrap();
        let path = generated.unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            assert_eq!(fs::metadata(&keys).unwrap().permissions().mode() & 0o777, 0o700);
        }
        let (again, none) = Keyring::load_or_generate(&keys, chrono::Utc::now()).unwrap();
        assert!(none.is_none());
        assert_eq!(ring.signing().kid(), again.signing().kid());
        assert!(path.to_string_lossy().contains(ring.signing().kid()));

        // A newer key signs; both are published.
        std::thread::sleep(std::time::Duration::from_millis(2));
        let (_, kid2) = generate_key_file(&keys, chrono::Utc::now()).unwrap();
        let ring = Keyring::load_dir(&keys).unwrap();
        assert_eq!(ring.signing().kid(), kid2);
        assert_eq!(ring.jwks().keys.len(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn refuses_group_readable_keys() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = generate_key_file(dir.path(), chrono::Utc::now()).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o660)).unwrap();
        let err = Keyring::load_dir(dir.path()).unwrap_err();
        assert!(matches!(err, KeyError::InsecurePermissions { mode: 0o660, .. }), "{err}");
        assert!(err.to_string().contains("chmod 600"));
    }

    #[cfg(unix)]
    #[test]
    fn refuses_keys_of_other_users() {
        let p = Path::new("k.pem");
        let me = (1000, 1000);
        assert!(check_mode_and_owner(p, 0o600, (1000, 1000), me).is_ok());
        assert!(check_mode_and_owner(p, 0o400, (0, 0), me).is_ok(), "root-owned (a mounted Secret)");
        assert!(check_mode_and_owner(p, 0o440, (0, 1000), me).is_ok(), "group-readable by our own group (fsGroup)");
        for (mode, owner) in [(0o440, (0, 2000)), (0o460, (0, 1000)), (0o604, (1000, 1000)), (0o644, (1000, 1000))] {
            assert!(
                matches!(check_mode_and_owner(p, mode, owner, me), Err(KeyError::InsecurePermissions { .. })),
                "{mode:o}"
            );
        }
        let err = check_mode_and_owner(p, 0o600, (2000, 2000), me).unwrap_err();
        assert!(matches!(err, KeyError::ForeignOwner { owner: 2000, me: 1000, .. }));
        assert!(err.to_string().contains("chown 1000"));
        // For real, when this test may hand a file to someone else.
        if rustix::process::geteuid().is_root() {
            let dir = tempfile::tempdir().unwrap();
            let (path, _) = generate_key_file(dir.path(), chrono::Utc::now()).unwrap();
            std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
            assert!(matches!(Keyring::load_dir(dir.path()), Err(KeyError::ForeignOwner { owner: 65534, .. })));
        }
    }

    /// Root signing outside the service (`load_to_sign`: `keysmith mint`, `apikey create`)
    /// checks another user's key directory as that owner would; the service's own load
    /// (`load_dir`) does not, so a service run as root never trusts another user's directory.
    #[cfg(unix)]
    #[test]
    fn root_reads_another_users_key_store_only_to_sign_and_only_as_its_owner() {
        use std::os::unix::fs::chown;
        assert!(rustix::process::geteuid().is_root(), "hands files to another user: run as root (CI does)");
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let now = Utc::now();
        let (first, _) = generate_key_file(&keys, now).unwrap();
        let (second, _) = generate_key_file(&keys, now + Duration::seconds(1)).unwrap();
        for path in [&keys, &first, &second] {
            chown(path, Some(65534), None).unwrap();
        }
        let to_sign = || Keyring::load_to_sign(&keys, Duration::seconds(300), now + Duration::seconds(2));
        assert!(matches!(Keyring::load_dir(&keys), Err(KeyError::UntrustedOwner { owner: 65534, me: 0, .. })));
        assert!(to_sign().is_ok());
        // The owner's groups are unknown to root: a group-readable key is refused.
        chmod(&second, 0o640);
        assert!(matches!(to_sign(), Err(KeyError::InsecurePermissions { .. })));
        chmod(&second, 0o600);
        // A key of a third user in the owner's directory: the service would refuse it.
        chown(&second, Some(65533), None).unwrap();
        assert!(matches!(to_sign(), Err(KeyError::ForeignOwner { owner: 65533, me: 65534, .. })));
    }

    #[cfg(unix)]
    fn chmod(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_key_directory_others_can_write() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        generate_key_file(&keys, chrono::Utc::now()).unwrap();
        for mode in [0o777, 0o770, 0o1777, 0o720] {
            chmod(&keys, mode);
            let err = Keyring::load_dir(&keys).unwrap_err().to_string();
            assert!(err.contains(&keys.display().to_string()) && err.contains("chmod go-w"), "{mode:o}: {err}");
        }
        // Readable and listable by others is fine: the key files themselves are 0600.
        chmod(&keys, 0o755);
        assert!(Keyring::load_dir(&keys).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_key_symlinked_from_outside_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        generate_key_file(&keys, chrono::Utc::now()).unwrap();
        // A valid key of this user, elsewhere, planted as a link.
        let (foreign, _) = generate_key_file(&dir.path().join("elsewhere"), chrono::Utc::now()).unwrap();
        std::os::unix::fs::symlink(&foreign, keys.join("zzz-planted.pem")).unwrap();
        let err = Keyring::load_dir(&keys).unwrap_err().to_string();
        assert!(err.contains("zzz-planted.pem") && err.contains("outside"), "{err}");
        // Also through a relative link climbing out.
        fs::remove_file(keys.join("zzz-planted.pem")).unwrap();
        std::os::unix::fs::symlink(
            Path::new("..").join("elsewhere").join(foreign.file_name().unwrap()),
            keys.join("zzz-planted.pem"),
        )
        .unwrap();
        assert!(Keyring::load_dir(&keys).unwrap_err().to_string().contains("outside"));
        assert!(key_files(&keys).is_err(), "`keysmith keys list` refuses it too");
    }

    /// A Kubernetes Secret mounted as the key directory: the kubelet writes a timestamped
    /// directory, points `..data` at it and links every key to `..data/<name>`. Those links stay
    /// inside the directory and load.
    #[cfg(unix)]
    #[test]
    fn loads_a_kubernetes_secret_mount() {
        let dir = tempfile::tempdir().unwrap();
        let mount = dir.path().join("keys");
        let revision = mount.join("..2026_11_25_14_00_00.123456789");
        let (real, kid) = generate_key_file(&revision, chrono::Utc::now()).unwrap();
        let name = real.file_name().unwrap();
        std::os::unix::fs::symlink("..2026_11_25_14_00_00.123456789", mount.join("..data")).unwrap();
        std::os::unix::fs::symlink(Path::new("..data").join(name), mount.join(name)).unwrap();
        chmod(&mount, 0o755);
        chmod(&revision, 0o755);
        let ring = Keyring::load_dir(&mount).unwrap();
        assert_eq!(ring.signing().kid(), kid);
        assert_eq!(ring.published().len(), 1);
        // The directory a link leads through must be as trusted as the key directory.
        chmod(&revision, 0o777);
        let err = Keyring::load_dir(&mount).unwrap_err().to_string();
        assert!(err.contains("..2026_11_25_14_00_00.123456789") && err.contains("chmod go-w"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn only_the_owner_may_change_the_key_store() {
        let p = Path::new("keys");
        // Read-only tmpfs, as a Kubernetes Secret volume is.
        let writable = |mode, owner, secret: bool| {
            check_not_writable_by_others(p, mode, owner, 1000, || Mount { read_only: secret, tmpfs: secret })
        };
        assert!(writable(0o700, 1000, false).is_ok());
        assert!(writable(0o755, 0, false).is_ok(), "root-owned");
        for mode in [0o720, 0o702, 0o777, 0o1777, 0o2770] {
            assert!(matches!(writable(mode, 1000, false), Err(KeyError::WritableByOthers { .. })), "{mode:o}");
        }
        // A Kubernetes Secret volume: a read-only tmpfs whose root shows 1777.
        assert!(writable(0o1777, 0, true).is_ok());
        let err = writable(0o700, 2000, true).unwrap_err();
        assert!(matches!(err, KeyError::UntrustedOwner { owner: 2000, me: 1000, .. }));
        assert!(err.to_string().contains("chown 1000 keys"), "{err}");
    }

    /// A read-only bind or hostPath mount is no excuse for write bits: other host users write
    /// through the host's own view. Only a read-only tmpfs (a Secret volume) is.
    #[cfg(unix)]
    #[test]
    fn only_a_read_only_tmpfs_excuses_write_bits() {
        let p = Path::new("keys");
        let check = |read_only, tmpfs| check_not_writable_by_others(p, 0o777, 0, 1000, || Mount { read_only, tmpfs });
        assert!(check(true, true).is_ok());
        for (read_only, tmpfs) in [(true, false), (false, true), (false, false)] {
            assert!(matches!(check(read_only, tmpfs), Err(KeyError::WritableByOthers { .. })), "{read_only} {tmpfs}");
        }
    }

    /// The file system type is read for real: a temporary directory on disk is no tmpfs, and
    /// `/dev/shm` (where present) is a writable one.
    #[cfg(target_os = "linux")]
    #[test]
    fn mounts_are_read_from_the_file_system() {
        let dir = tempfile::tempdir().unwrap();
        let on_disk = Mount::of_path(dir.path());
        assert!(!on_disk.excuses_write_bits());
        let shm = Path::new("/dev/shm");
        if fs::read_to_string("/proc/mounts").is_ok_and(|m| m.lines().any(|l| l.starts_with("tmpfs /dev/shm tmpfs rw")))
        {
            assert_eq!(Mount::of_path(shm), Mount { read_only: false, tmpfs: true });
        }
    }

    /// A key file with a second name elsewhere can be read or replaced through that name,
    /// beyond the checks on this directory.
    #[cfg(unix)]
    #[test]
    fn a_hard_linked_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let (path, _) = generate_key_file(&keys, chrono::Utc::now()).unwrap();
        assert!(Keyring::load_dir(&keys).is_ok());
        fs::hard_link(&path, dir.path().join("elsewhere.pem")).unwrap();
        let err = Keyring::load_dir(&keys).unwrap_err();
        assert!(matches!(err, KeyError::HardLinked { links: 2, .. }), "{err}");
        assert!(err.to_string().contains("hard link"), "{err}");
    }

    /// Two key files without a record, as a Kubernetes Secret mounts them (the kubelet writes
    /// every file at mount time) or `cp -p` leaves them (backdated modification times): a
    /// file's time is the later of its mtime and ctime, which cannot be backdated. While no key
    /// has been published for `jwks_max_age`, the older key signs until the newer one has been
    /// served that long by this process; a key published long enough signs at once.
    #[test]
    fn at_start_a_key_signs_once_published_for_the_cache_lifetime() {
        let dir = tempfile::tempdir().unwrap();
        let before = Utc::now() - Duration::seconds(1);
        let (old, old_kid) = generate_key_file(dir.path(), chrono::Utc::now()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let (new, new_kid) = generate_key_file(dir.path(), chrono::Utc::now()).unwrap();
        let set = |path: &Path, t: DateTime<Utc>| {
            fs::File::options().write(true).open(path).unwrap().set_modified(t.into()).unwrap();
        };
        // Backdated modification times change nothing: the ctime says when the file came.
        set(&old, before - Duration::hours(2));
        set(&new, before - Duration::hours(1));
        let max_age = Duration::seconds(300);
        let load = || Keyring::load_dir(dir.path()).unwrap();
        let (old_since, new_since) = (load().published_at(&old_kid).unwrap(), load().published_at(&new_kid).unwrap());
        assert!(old_since >= before && new_since >= old_since, "{before} {old_since} {new_since}");

        // Every key young (a fresh Secret mount): the older signs, the newer after being
        // served for the cache lifetime from now.
        let mut ring = load();
        let now = new_since + Duration::seconds(10);
        let deferred = ring.defer_unpublished(max_age, now).unwrap();
        assert_eq!(deferred, Deferred { kid: new_kid.clone(), due: now + max_age });
        assert_eq!(ring.signing().kid(), old_kid, "the key verifiers may have signs meanwhile");
        assert!(ring.publishes(&new_kid), "the new key is published meanwhile");

        // The older published long enough, the newer not yet: the older signs until then.
        if old_since < new_since {
            let mut ring = load();
            let deferred = ring.defer_unpublished(max_age, old_since + max_age).unwrap();
            assert_eq!(deferred, Deferred { kid: new_kid.clone(), due: new_since + max_age });
            assert_eq!(ring.signing().kid(), old_kid);
        }

        let mut ring = load();
        assert_eq!(ring.defer_unpublished(max_age, new_since + max_age), None);
        assert_eq!(ring.signing().kid(), new_kid);

        // A fresh install with a single key signs at once.
        let single = tempfile::tempdir().unwrap();
        let (_, only) = generate_key_file(single.path(), chrono::Utc::now()).unwrap();
        let mut ring = Keyring::load_dir(single.path()).unwrap();
        assert_eq!(ring.defer_unpublished(max_age, Utc::now()), None);
        assert_eq!(ring.signing().kid(), only);
    }

    /// With a record: after a forced rotation, the retired key that signed last signs until the
    /// record's active key has been published for `jwks_max_age` (from its `published` time);
    /// a next key never signs in its place, and a single fresh key signs at once.
    #[test]
    fn at_start_the_record_says_when_a_key_was_published() {
        use crate::keys::lifecycle::{KeyringState, Policy, Rotation};
        let dir = tempfile::tempdir().unwrap();
        let (_, first) = generate_key_file(dir.path(), chrono::Utc::now()).unwrap();
        let t0 = DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z").unwrap().with_timezone(&Utc);
        let max_age = Duration::seconds(300);
        let policy = Policy { jwks_max_age: max_age, longest_token: Duration::seconds(3600) };
        let mut state = KeyringState::adopt(dir.path(), t0).unwrap();
        state.save(dir.path()).unwrap();
        let mut ring = Keyring::load_dir(dir.path()).unwrap();
        assert_eq!(ring.defer_unpublished(max_age, t0), None, "a single fresh key signs");

        state.add_next(dir.path(), t0).unwrap();
        let Rotation { activated: second, .. } = state.rotate(dir.path(), policy, t0 + max_age, false).unwrap();
        let t1 = t0 + max_age + Duration::seconds(10);
        let Rotation { activated: third, .. } = state.rotate(dir.path(), policy, t1, true).unwrap();
        state.save(dir.path()).unwrap();

        let mut ring = Keyring::load_dir(dir.path()).unwrap();
        let deferred = ring.defer_unpublished(max_age, t1).unwrap();
        assert_eq!(deferred.kid, third);
        assert_eq!(deferred.due, t0 + max_age + max_age, "published when the first rotation made it next");
        assert_eq!(ring.signing().kid(), second, "the key that signed last, not {first} nor the next key");
        let mut ring = Keyring::load_dir(dir.path()).unwrap();
        assert_eq!(ring.defer_unpublished(max_age, deferred.due), None);
        assert_eq!(ring.signing().kid(), third);
    }

    #[test]
    fn refuses_garbage_and_empty_dirs() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(Keyring::load_dir(dir.path()), Err(KeyError::NoKeys(_))));
        write_private(&dir.path().join("x.pem"), b"not a key").unwrap();
        assert!(matches!(Keyring::load_dir(dir.path()), Err(KeyError::NotAKey(_))));
    }

    #[test]
    fn a_record_that_does_not_parse_is_a_key_error_caused_by_the_toml_error() {
        let dir = tempfile::tempdir().unwrap();
        generate_key_file(dir.path(), chrono::Utc::now()).unwrap();
        std::fs::write(dir.path().join(crate::keys::lifecycle::STATE_FILE), "keys = 7\n").unwrap();
        let err = Keyring::load_dir(dir.path()).unwrap_err();
        let cause = std::error::Error::source(&err).and_then(|s| s.downcast_ref::<toml::de::Error>());
        assert!(cause.is_some(), "one level, no lifecycle error in between: {err:?}");
    }

    #[test]
    fn a_generated_key_file_is_named_after_the_time_passed_in() {
        let dir = tempfile::tempdir().unwrap();
        let now = DateTime::parse_from_rfc3339("2031-02-03T04:05:06.789Z").unwrap().with_timezone(&chrono::Utc);
        let (path, kid) = generate_key_file(dir.path(), now).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(name, format!("20310203T040506.789000Z-{kid}.pem"));
    }

    #[test]
    fn an_unreadable_lifecycle_record_keeps_its_cause() {
        let dir = tempfile::tempdir().unwrap();
        generate_key_file(dir.path(), chrono::Utc::now()).unwrap();
        std::fs::write(dir.path().join(crate::keys::lifecycle::STATE_FILE), "keys = 7\n").unwrap();
        let err = Keyring::load_dir(dir.path()).unwrap_err();
        assert!(std::error::Error::source(&err).is_some(), "{err:?}");
    }
}
