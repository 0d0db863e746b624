//! Why keys could not be loaded, created or moved through their lifecycle.

use crate::keys::lifecycle::STATE_FILE;
use std::path::{Path, PathBuf};

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
    /// A key file is an encrypted PKCS#8 key, which keysmith does not decrypt.
    #[error(
        "{0}: an encrypted PKCS#8 private key; keysmith reads unencrypted keys only (protect them with file permissions or a secret store): decrypt it with `openssl pkey -in {0} -out key.pem`"
    )]
    EncryptedKey(PathBuf),
    /// A key file is in OpenSSH's own format, which keysmith does not read.
    #[error(
        "{0}: an OpenSSH private key, not PKCS#8 (`ssh-keygen` cannot convert an Ed25519 key to PKCS#8); use a dedicated signing key: `keysmith keygen` or `openssl genpkey -algorithm ed25519 -out key.pem`"
    )]
    OpenSshKey(PathBuf),
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
    /// A key file has more than one name: whoever can reach another name can read it or see
    /// it replaced, whatever this directory's checks say.
    #[error("{path}: private key has {links} hard links; keep exactly one (copy the key instead of linking it)")]
    HardLinked {
        /// The key file.
        path: PathBuf,
        /// Its number of hard links.
        links: u64,
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
    RecordMismatch(String),
    /// The lifecycle record does not parse.
    #[error("{}: {}", .path.display(), .source.message())]
    RecordParse {
        /// The record file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: toml::de::Error,
    },
    /// The lifecycle record could not be serialised for writing.
    #[error("{STATE_FILE}: {0}")]
    RecordEncode(#[source] toml::ser::Error),
    /// A record's `file` is not a plain file name in the key directory.
    #[error("{}: file = {file:?} must be a plain file name in the key directory (no directory part)", .record.display())]
    NotAPlainFileName {
        /// The record file.
        record: PathBuf,
        /// The offending value.
        file: String,
    },
    /// The lifecycle refused the change the operation was making.
    #[error(transparent)]
    Transition(#[from] LifecycleError),
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
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_owned(), source }
    }
}

/// Why a lifecycle transition was refused. Transitions are pure: this error never carries
/// an I/O failure (the operations that also touch the key directory return a [`KeyError`],
/// which wraps this one).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LifecycleError {
    /// There is no next key to promote.
    #[error("there is no next key to promote; `keysmith keys rotate` creates one first")]
    NoNext,
    /// The next key has not been published long enough for verifiers to have fetched it.
    #[error(
        "next key {kid} has been published for {published_for} s; verifiers may cache the JWKS for {needed} s, so wait {wait} s more (or --force, and tokens it signs may fail to verify until caches refresh)"
    )]
    TooSoon {
        /// The next key.
        kid: String,
        /// How long it has been published, in seconds.
        published_for: i64,
        /// The JWKS cache lifetime, in seconds.
        needed: i64,
        /// Seconds left.
        wait: i64,
    },
    /// No such key id in the record.
    #[error("no key {0} in {STATE_FILE}")]
    UnknownKid(String),
    /// The active key cannot be retired or removed directly.
    #[error("{0} is the active key; rotate to retire it")]
    ActiveKey(String),
    /// A key must be retired before it is removed.
    #[error("{0} is not retired; retire it first")]
    NotRetired(String),
    /// Removing the key now would break tokens or permanent keys.
    #[error("{kid} is still needed: {}; --force removes it anyway", .reasons.join("; "))]
    StillNeeded {
        /// The key.
        kid: String,
        /// What would break.
        reasons: Vec<String>,
    },
}
