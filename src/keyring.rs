//! Ed25519 signing keys on disk (`keys/*.pem`, PKCS#8) and in memory.
//!
//! The signing key is expanded once at load (SHA-512 of the seed), so minting a token costs one
//! signature and no key parsing. Private key material zeroizes on drop and never prints.

use crate::b64;
use crate::jwk::{PublicJwk, thumbprint};
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::hazmat::{ExpandedSecretKey, raw_sign};
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};
use ed25519_dalek::{SigningKey as DalekSigningKey, VerifyingKey};
use sha2::Sha512;
use std::fmt;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Why keys could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Reading or writing a key file or the key directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A key file is not an Ed25519 private key in PKCS#8 PEM.
    #[error("{0}: not an Ed25519 private key in PKCS#8 PEM")]
    NotAKey(PathBuf),
    /// A key file can be read by other users.
    #[error("{path}: private key is readable by group or others (mode {mode:o}); run `chmod 600 {path}`")]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A key file belongs to another user, who could replace it.
    #[error("{path}: private key is owned by uid {owner}, not by this process (uid {me}); run `chown {me} {path}`")]
    ForeignOwner {
        /// The key file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// This process's effective uid.
        me: u32,
    },
    /// The key directory, a directory a key link leads through, or `keyring.toml` can be
    /// changed by other users, who could plant or replace a key.
    #[error(
        "{path}: writable by group or others (mode {mode:o}), so another user could plant or replace a key; run `chmod go-w {path}`"
    )]
    WritableByOthers {
        /// The directory or file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key directory, a directory a key link leads through, or `keyring.toml` belongs to
    /// another user, who could plant or replace a key.
    #[error("{path}: owned by uid {owner}, not by this process (uid {me}) or root; run `chown {me} {path}`")]
    UntrustedOwner {
        /// The directory or file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// This process's effective uid.
        me: u32,
    },
    /// A symlink in the key directory leads out of it.
    #[error(
        "{link}: a symlink to {target}, outside the key directory {dir}; keys must live in it (replace the link with the key file)"
    )]
    OutsideDirectory {
        /// The link.
        link: PathBuf,
        /// Where it leads.
        target: PathBuf,
        /// The key directory.
        dir: PathBuf,
    },
    /// The lifecycle record (`keyring.toml`) and the key files disagree.
    #[error("{0}")]
    Lifecycle(String),
    /// The directory holds no `*.pem` key.
    #[error("{0}: no signing key (*.pem); create one with `keysmith keygen`")]
    NoKeys(PathBuf),
    /// The key directory belongs to another user (the service's) than the one about to write
    /// into it, whose new files (mode 0600) that user could not read.
    #[error(
        "{path}: owned by uid {owner}, but this runs as uid {me}; a key file or record written now would belong to uid {me} and the service (uid {owner}) could not read it: run as the directory's owner, e.g. `sudo -u '#{owner}' keysmith …`"
    )]
    NotTheOwner {
        /// The key directory.
        path: PathBuf,
        /// Its owner: the service's user.
        owner: u32,
        /// This process's effective uid.
        me: u32,
    },
}

impl KeyError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_owned(), source }
    }
}

/// A private Ed25519 key, pre-expanded for signing.
pub struct SigningKey {
    kid: String,
    expanded: ExpandedSecretKey,
    public: VerifyingKey,
    /// The base64url header `{"alg":"EdDSA","typ":"at+jwt","kid":…}`, encoded once.
    access_header: String,
}

impl SigningKey {
    /// Wraps a dalek key, expanding it once.
    pub fn new(key: &DalekSigningKey) -> Self {
        let public = key.verifying_key();
        let kid = thumbprint(&public);
        let expanded = ExpandedSecretKey::from(key.as_bytes());
        let access_header =
            b64::encode(format!(r#"{{"alg":"EdDSA","typ":"{}","kid":"{kid}"}}"#, crate::claims::ACCESS_TOKEN_TYP));
        Self { kid, expanded, public, access_header }
    }

    /// Generates a fresh key from the operating system's random source.
    pub fn generate() -> Self {
        Self::new(&DalekSigningKey::generate(&mut rand_core::OsRng))
    }

    /// The key id (RFC 7638 thumbprint).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.public
    }

    /// Signs a JSON payload as a compact JWS with the access-token header.
    pub fn sign_access_token(&self, payload_json: &[u8]) -> String {
        self.sign_compact(&self.access_header, payload_json)
    }

    /// Signs a JSON payload as a compact JWS with an `EdDSA` header of type `typ` and this
    /// key's `kid`.
    pub fn sign_typed(&self, typ: &str, payload_json: &[u8]) -> String {
        let header = serde_json::json!({ "alg": "EdDSA", "typ": typ, "kid": self.kid });
        self.sign_jws(&header.to_string(), payload_json)
    }

    /// Signs `payload` as a compact JWS under `header_json`, which the caller must make an
    /// `EdDSA` header with this key's `kid`.
    pub fn sign_jws(&self, header_json: &str, payload: &[u8]) -> String {
        self.sign_compact(&b64::encode(header_json), payload)
    }

    /// Signs `payload_json` under an already encoded header.
    fn sign_compact(&self, header_b64: &str, payload_json: &[u8]) -> String {
        let mut token = String::with_capacity(header_b64.len() + payload_json.len() * 4 / 3 + 92);
        token.push_str(header_b64);
        token.push('.');
        b64::encode_into(payload_json, &mut token);
        let signature = raw_sign::<Sha512>(&self.expanded, token.as_bytes(), &self.public);
        token.push('.');
        b64::encode_into(signature.to_bytes(), &mut token);
        token
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).field("secret", &"[redacted]").finish()
    }
}

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
        Self { keys, active, published, unlisted, times }
    }

    /// Loads the key directory. With a lifecycle record (`keyring.toml`), the active key signs
    /// and next, active and retired keys are published; without one, every `*.pem` is published
    /// and the one whose file name sorts last (the newest, as `keygen` names files) signs.
    ///
    /// The directory must be trusted: it, every directory a key link leads through, and the
    /// record may be changed by their owner alone (this user or root; a read-only mount, such
    /// as a Kubernetes Secret volume, counts as unchangeable), and links must stay inside it.
    ///
    /// This publishes every key it loads and signs with the one the directory says; a server
    /// starting up then applies [`Keyring::defer_unpublished`].
    ///
    /// # Errors
    ///
    /// A [`KeyError`] for an unreadable directory or file, a directory or record others can
    /// change, a link leading out of the directory, a file that is not a key, a key readable by
    /// others or owned by another user, a record that names a missing file, or a directory
    /// without keys.
    pub fn load_dir(dir: &Path) -> Result<Self, KeyError> {
        let dir = trusted_dir(dir)?;
        let paths = pem_paths(&dir)?;
        let state = crate::lifecycle::KeyringState::load(&dir).map_err(|e| KeyError::Lifecycle(e.to_string()))?;
        if let Some(state) = state {
            return Self::from_state(&dir, &paths, &state);
        }
        let mut keys = Vec::with_capacity(paths.len());
        let mut times = Vec::with_capacity(paths.len());
        for path in &paths {
            let (key, modified) = load_pem_in(&dir, path)?;
            keys.push(key);
            times.push(KeyTimes { published: modified, signed: modified });
        }
        let active = keys.len().checked_sub(1).ok_or_else(|| KeyError::NoKeys(dir.clone()))?;
        Ok(Self::with_times(keys, active, Vec::new(), times))
    }

    /// The keys as the lifecycle record says. Files the record does not list (a key being
    /// written, a crash between writing a key and recording it) are left out and reported.
    fn from_state(dir: &Path, paths: &[PathBuf], state: &crate::lifecycle::KeyringState) -> Result<Self, KeyError> {
        use crate::lifecycle::KeyState;
        let unlisted: Vec<String> = paths
            .iter()
            .filter_map(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| !state.keys.iter().any(|k| &k.file == n))
            .collect();
        let active: Vec<_> = state.keys.iter().filter(|k| k.state == KeyState::Active).collect();
        let [active] = active.as_slice() else {
            return Err(KeyError::Lifecycle(format!(
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
            let (key, _) = load_pem_in(dir, &dir.join(&record.file))?;
            if key.kid() != record.kid {
                return Err(KeyError::Lifecycle(format!(
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
        Ok(Self::with_times(keys, active, unlisted, times))
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
    /// `jwks_max_age`. Returns the held-back key and when it may sign. When no other key
    /// qualifies (a fresh install with a single key) the active key signs at once.
    pub fn defer_unpublished(&mut self, jwks_max_age: Duration, now: DateTime<Utc>) -> Option<Deferred> {
        let wanted = self.signing().kid().to_owned();
        // A key whose publication time is unknown counts as published now: fail closed.
        let since = self.published_at(&wanted).unwrap_or(now);
        if now >= since + jwks_max_age {
            return None;
        }
        let known_since = |t: &KeyTimes| t.published.is_some_and(|p| now >= p + jwks_max_age);
        let previous = self
            .times
            .iter()
            .enumerate()
            .filter(|&(i, t)| i != self.active && t.signed.is_some() && known_since(t))
            // The latest to sign; without a record, the newest file (sorted by name, as
            // `keygen` names them).
            .max_by_key(|&(i, t)| (t.signed, i))
            .map(|(i, _)| i)?;
        let fallback = self.keys.get(previous).map(|k| k.kid().to_owned())?;
        self.keep_signer_until_published(&fallback, since, jwks_max_age, now)
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
        let key = DalekSigningKey::from_pkcs8_pem(&pem).map_err(|_| KeyError::NotAKey(source.to_owned()))?;
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
    pub fn load_or_generate(dir: &Path) -> Result<(Self, Option<PathBuf>), KeyError> {
        match Self::load_dir(dir) {
            Err(KeyError::NoKeys(_)) => {
                let (path, _) = generate_key_file(dir)?;
                Ok((Self::load_dir(dir)?, Some(path)))
            }
            Err(KeyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                let (path, _) = generate_key_file(dir)?;
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
    pub fn jwks(&self) -> crate::jwk::Jwks {
        crate::jwk::Jwks { keys: self.published.iter().map(PublicJwk::from_key).collect() }
    }
}

/// The `*.pem` entries of the trusted, canonical directory `dir`, sorted by name.
fn pem_paths(dir: &Path) -> Result<Vec<PathBuf>, KeyError> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| KeyError::io(dir, e))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pem"))
        .collect();
    paths.sort();
    Ok(paths)
}

/// The key files of `dir`, oldest first, with their key ids.
///
/// # Errors
///
/// As [`Keyring::load_dir`].
pub fn key_files(dir: &Path) -> Result<Vec<(String, String)>, KeyError> {
    let dir = trusted_dir(dir)?;
    pem_paths(&dir)?
        .iter()
        .map(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            load_pem_in(&dir, p).map(|(k, _)| (name, k.kid().to_owned()))
        })
        .collect()
}

/// Loads the key file `path`, an entry of the trusted directory `dir`, with its modification
/// time.
fn load_pem_in(dir: &Path, path: &Path) -> Result<(SigningKey, Option<DateTime<Utc>>), KeyError> {
    let target = resolve_entry(dir, path)?;
    load_pem(&target)
}

fn load_pem(path: &Path) -> Result<(SigningKey, Option<DateTime<Utc>>), KeyError> {
    use std::io::Read as _;
    // Check and read the same open file, so it cannot be swapped in between.
    let mut file = fs::File::open(path).map_err(|e| KeyError::io(path, e))?;
    let meta = file.metadata().map_err(|e| KeyError::io(path, e))?;
    check_permissions(path, &meta)?;
    let mut pem = Zeroizing::new(String::new());
    file.read_to_string(&mut pem).map_err(|e| KeyError::io(path, e))?;
    let key = DalekSigningKey::from_pkcs8_pem(&pem).map_err(|_| KeyError::NotAKey(path.to_owned()))?;
    Ok((SigningKey::new(&key), meta.modified().ok().map(DateTime::<Utc>::from)))
}

/// Resolves the key directory (following a symlink to it) and checks that only its owner,
/// this user or root, can change it.
///
/// # Errors
///
/// [`KeyError::Io`] (`NotFound` when it does not exist), [`KeyError::WritableByOthers`] or
/// [`KeyError::UntrustedOwner`].
pub fn trusted_dir(dir: &Path) -> Result<PathBuf, KeyError> {
    let canonical = fs::canonicalize(dir).map_err(|e| KeyError::io(dir, e))?;
    check_dir(&canonical)?;
    Ok(canonical)
}

/// Where the entry `path` of the trusted, canonical directory `dir` leads: itself, or for a
/// symlink its target, which must lie inside `dir` and be reached through directories only
/// their owner can change (a Kubernetes Secret's `key.pem -> ..data/key.pem`,
/// `..data -> ..2026_…` qualifies).
///
/// # Errors
///
/// [`KeyError::OutsideDirectory`], or as [`trusted_dir`] for a directory on the way.
pub fn resolve_entry(dir: &Path, path: &Path) -> Result<PathBuf, KeyError> {
    let meta = fs::symlink_metadata(path).map_err(|e| KeyError::io(path, e))?;
    if !meta.file_type().is_symlink() {
        return Ok(path.to_owned());
    }
    let target = fs::canonicalize(path).map_err(|e| KeyError::io(path, e))?;
    let outside = || KeyError::OutsideDirectory { link: path.to_owned(), target: target.clone(), dir: dir.to_owned() };
    let inside = target.strip_prefix(dir).map_err(|_| outside())?;
    let mut through = dir.to_owned();
    let mut components = inside.components().peekable();
    while let Some(component) = components.next() {
        if components.peek().is_none() {
            break; // the target itself: the caller checks the file
        }
        through.push(component);
        check_dir(&through)?;
    }
    Ok(target)
}

/// A directory of keys may be changed by its owner alone, who must be this user or root.
#[cfg(unix)]
fn check_dir(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = fs::metadata(path).map_err(|e| KeyError::io(path, e))?;
    let me = rustix::process::geteuid().as_raw();
    // Write bits mean nothing on a read-only mount: a Kubernetes Secret volume is a read-only
    // tmpfs whose root shows mode 1777.
    let read_only =
        || rustix::fs::statvfs(path).is_ok_and(|fs| fs.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY));
    check_not_writable_by_others(path, meta.mode(), meta.uid(), me, read_only)
}

#[cfg(not(unix))]
fn check_dir(_path: &Path) -> Result<(), KeyError> {
    Ok(())
}

/// Only the owner, this user or root, may change `path` (a key directory or the record),
/// unless it sits on a read-only mount.
#[cfg(unix)]
pub(crate) fn check_not_writable_by_others(
    path: &Path,
    mode: u32,
    owner: u32,
    me: u32,
    read_only: impl FnOnce() -> bool,
) -> Result<(), KeyError> {
    if mode & 0o022 != 0 && !read_only() {
        return Err(KeyError::WritableByOthers { path: path.to_owned(), mode: mode & 0o7777 });
    }
    if owner != me && owner != 0 {
        return Err(KeyError::UntrustedOwner { path: path.to_owned(), owner, me });
    }
    Ok(())
}

/// A private key file must be readable by its owner alone, and owned by this process's user.
#[cfg(unix)]
fn check_permissions(path: &Path, meta: &fs::Metadata) -> Result<(), KeyError> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let (me, my_group) = (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw());
    check_mode_and_owner(path, meta.permissions().mode(), (meta.uid(), meta.gid()), (me, my_group))
}

/// Only the owner may read a key, and the owner must be this user or root (who can replace any
/// file anyway; Kubernetes mounts Secrets as root). Group read is tolerated only for this
/// process's own group, which is how a Secret mounted with `fsGroup` looks; never group write
/// or anything for others.
#[cfg(unix)]
fn check_mode_and_owner(
    path: &Path,
    mode: u32,
    (owner, group): (u32, u32),
    (me, my_group): (u32, u32),
) -> Result<(), KeyError> {
    let mode = mode & 0o777;
    let group_read_ok = mode & 0o070 == 0o040 && group == my_group;
    if mode & 0o007 != 0 || (mode & 0o070 != 0 && !group_read_ok) {
        return Err(KeyError::InsecurePermissions { path: path.to_owned(), mode });
    }
    if owner != me && owner != 0 {
        return Err(KeyError::ForeignOwner { path: path.to_owned(), owner, me });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path, _meta: &fs::Metadata) -> Result<(), KeyError> {
    Ok(())
}

/// Generates a key into `dir` (created `0700` if missing) as `<UTC time>-<kid>.pem`, mode `0600`.
/// Returns the path and the key id.
///
/// # Errors
///
/// [`KeyError::Io`] when the directory or file cannot be written.
pub fn generate_key_file(dir: &Path) -> Result<(PathBuf, String), KeyError> {
    create_private_dir(dir)?;
    let key = DalekSigningKey::generate(&mut rand_core::OsRng);
    let kid = thumbprint(&key.verifying_key());
    let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| KeyError::io(dir, std::io::Error::other(e.to_string())))?;
    let name = format!("{}-{kid}.pem", chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"));
    let path = dir.join(name);
    write_private(&path, pem.as_bytes())?;
    Ok((path, kid))
}

/// Creates the key directory `0700` (and its missing parents) if it does not exist, and checks
/// that this process runs as its owner: every writer of keys and of the record goes through
/// here, and a file it writes (mode 0600) must stay readable by the service that owns the
/// directory.
///
/// # Errors
///
/// [`KeyError::Io`] when it cannot be created; [`KeyError::NotTheOwner`] when it belongs to
/// another user (root running `keysmith keys rotate` in the service's directory).
pub fn create_private_dir(dir: &Path) -> Result<(), KeyError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| KeyError::io(dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let owner = fs::metadata(dir).map_err(|e| KeyError::io(dir, e))?.uid();
        let me = rustix::process::geteuid().as_raw();
        if owner != me {
            return Err(KeyError::NotTheOwner { path: dir.to_owned(), owner, me });
        }
    }
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| KeyError::io(path, e))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|e| KeyError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer as _, Verifier as _};

    #[test]
    fn pre_expanded_signing_matches_dalek() {
        let dalek = DalekSigningKey::from_bytes(&[9u8; 32]);
        let key = SigningKey::new(&dalek);
        let token = key.sign_access_token(br#"{"a":1}"#);
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = b64::decode_array::<64>(sig).unwrap();
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
        let (ring, generated) = Keyring::load_or_generate(&keys).unwrap();
        let path = generated.unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            assert_eq!(fs::metadata(&keys).unwrap().permissions().mode() & 0o777, 0o700);
        }
        let (again, none) = Keyring::load_or_generate(&keys).unwrap();
        assert!(none.is_none());
        assert_eq!(ring.signing().kid(), again.signing().kid());
        assert!(path.to_string_lossy().contains(ring.signing().kid()));

        // A newer key signs; both are published.
        std::thread::sleep(std::time::Duration::from_millis(2));
        let (_, kid2) = generate_key_file(&keys).unwrap();
        let ring = Keyring::load_dir(&keys).unwrap();
        assert_eq!(ring.signing().kid(), kid2);
        assert_eq!(ring.jwks().keys.len(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn refuses_group_readable_keys() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = generate_key_file(dir.path()).unwrap();
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
            let (path, _) = generate_key_file(dir.path()).unwrap();
            std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
            assert!(matches!(Keyring::load_dir(dir.path()), Err(KeyError::ForeignOwner { owner: 65534, .. })));
        }
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
        generate_key_file(&keys).unwrap();
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
        generate_key_file(&keys).unwrap();
        // A valid key of this user, elsewhere, planted as a link.
        let (foreign, _) = generate_key_file(&dir.path().join("elsewhere")).unwrap();
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
        let (real, kid) = generate_key_file(&revision).unwrap();
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
        let writable = |mode, owner, read_only: bool| check_not_writable_by_others(p, mode, owner, 1000, || read_only);
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

    /// Two key files without a record: the newer one (by file time) signs only once it has been
    /// published for `jwks_max_age`; until then the older one does.
    #[test]
    fn at_start_a_key_signs_once_published_for_the_cache_lifetime() {
        let dir = tempfile::tempdir().unwrap();
        let (old, old_kid) = generate_key_file(dir.path()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let (new, new_kid) = generate_key_file(dir.path()).unwrap();
        let t0 = DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z").unwrap().with_timezone(&Utc);
        let set = |path: &Path, t: DateTime<Utc>| {
            fs::File::options().write(true).open(path).unwrap().set_modified(t.into()).unwrap();
        };
        set(&old, t0 - Duration::hours(1));
        set(&new, t0);
        let max_age = Duration::seconds(300);
        let load = || Keyring::load_dir(dir.path()).unwrap();
        assert_eq!(load().published_at(&new_kid), Some(t0));

        let mut ring = load();
        let deferred = ring.defer_unpublished(max_age, t0 + Duration::seconds(299)).unwrap();
        assert_eq!(deferred, Deferred { kid: new_kid.clone(), due: t0 + max_age });
        assert_eq!(ring.signing().kid(), old_kid, "the key verifiers have signs meanwhile");
        assert!(ring.publishes(&new_kid), "the new key is published meanwhile");

        let mut ring = load();
        assert_eq!(ring.defer_unpublished(max_age, t0 + max_age), None);
        assert_eq!(ring.signing().kid(), new_kid);

        // The older key too young as well (a fresh install that generated two keys): nothing
        // better to sign with, so the active key signs.
        set(&old, t0 - Duration::seconds(10));
        let mut ring = load();
        assert_eq!(ring.defer_unpublished(max_age, t0), None);
        assert_eq!(ring.signing().kid(), new_kid);
    }

    /// With a record: after a forced rotation, the retired key that signed last signs until the
    /// record's active key has been published for `jwks_max_age` (from its `published` time);
    /// a next key never signs in its place, and a single fresh key signs at once.
    #[test]
    fn at_start_the_record_says_when_a_key_was_published() {
        use crate::lifecycle::{KeyringState, Policy};
        let dir = tempfile::tempdir().unwrap();
        let (_, first) = generate_key_file(dir.path()).unwrap();
        let t0 = DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z").unwrap().with_timezone(&Utc);
        let max_age = Duration::seconds(300);
        let policy = Policy { jwks_max_age: max_age, longest_token: Duration::seconds(3600) };
        let mut state = KeyringState::adopt(dir.path(), t0).unwrap();
        state.save(dir.path()).unwrap();
        let mut ring = Keyring::load_dir(dir.path()).unwrap();
        assert_eq!(ring.defer_unpublished(max_age, t0), None, "a single fresh key signs");

        state.add_next(dir.path(), t0).unwrap();
        let (_, second, _) = state.rotate(dir.path(), policy, t0 + max_age, false).unwrap();
        let t1 = t0 + max_age + Duration::seconds(10);
        let (_, third, _) = state.rotate(dir.path(), policy, t1, true).unwrap();
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
}
