//! Ed25519 signing keys on disk (`keys/*.pem`, PKCS#8) and in memory.
//!
//! The signing key is expanded once at load (SHA-512 of the seed), so minting a token costs one
//! signature and no key parsing. Private key material zeroizes on drop and never prints.

use crate::b64;
use crate::jwk::{PublicJwk, thumbprint};
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
    /// The lifecycle record (`keyring.toml`) and the key files disagree.
    #[error("{0}")]
    Lifecycle(String),
    /// The directory holds no `*.pem` key.
    #[error("{0}: no signing key (*.pem); create one with `keysmith keygen`")]
    NoKeys(PathBuf),
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
}

impl Keyring {
    /// A keyring of one key.
    pub fn single(key: SigningKey) -> Self {
        Self::from_keys(vec![key], 0, Vec::new())
    }

    fn from_keys(keys: Vec<SigningKey>, active: usize, unlisted: Vec<String>) -> Self {
        let published = keys.iter().map(SigningKey::verifying_key).collect();
        Self { keys, active, published, unlisted }
    }

    /// Loads the key directory. With a lifecycle record (`keyring.toml`), the active key signs
    /// and next, active and retired keys are published; without one, every `*.pem` is published
    /// and the one whose file name sorts last (the newest, as `keygen` names files) signs.
    ///
    /// # Errors
    ///
    /// A [`KeyError`] for an unreadable directory or file, a file that is not a key, a key
    /// readable by others or owned by another user, a record that names a missing file, or a
    /// directory without keys.
    pub fn load_dir(dir: &Path) -> Result<Self, KeyError> {
        let paths = pem_paths(dir)?;
        let state = crate::lifecycle::KeyringState::load(dir).map_err(|e| KeyError::Lifecycle(e.to_string()))?;
        if let Some(state) = state {
            return Self::from_state(dir, &paths, &state);
        }
        let keys = paths.iter().map(|p| load_pem(p)).collect::<Result<Vec<_>, _>>()?;
        let active = keys.len().checked_sub(1).ok_or_else(|| KeyError::NoKeys(dir.to_owned()))?;
        Ok(Self::from_keys(keys, active, Vec::new()))
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
        let mut active_index = None;
        for record in &state.keys {
            let key = load_pem(&dir.join(&record.file))?;
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
        }
        let active = active_index.ok_or_else(|| KeyError::NoKeys(dir.to_owned()))?;
        Ok(Self::from_keys(keys, active, unlisted))
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
        Ok(Self::single(load_pem(path)?))
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
    pem_paths(dir)?
        .iter()
        .map(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            load_pem(p).map(|k| (name, k.kid().to_owned()))
        })
        .collect()
}

fn load_pem(path: &Path) -> Result<SigningKey, KeyError> {
    use std::io::Read as _;
    // Check and read the same open file, so it cannot be swapped in between.
    let mut file = fs::File::open(path).map_err(|e| KeyError::io(path, e))?;
    check_permissions(path, &file.metadata().map_err(|e| KeyError::io(path, e))?)?;
    let mut pem = Zeroizing::new(String::new());
    file.read_to_string(&mut pem).map_err(|e| KeyError::io(path, e))?;
    let key = DalekSigningKey::from_pkcs8_pem(&pem).map_err(|_| KeyError::NotAKey(path.to_owned()))?;
    Ok(SigningKey::new(&key))
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

fn create_private_dir(dir: &Path) -> Result<(), KeyError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| KeyError::io(dir, e))
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

    #[test]
    fn refuses_garbage_and_empty_dirs() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(Keyring::load_dir(dir.path()), Err(KeyError::NoKeys(_))));
        write_private(&dir.path().join("x.pem"), b"not a key").unwrap();
        assert!(matches!(Keyring::load_dir(dir.path()), Err(KeyError::NotAKey(_))));
    }
}
