//! Where an issuer is loaded from, and what the handle remembers about reloads.

use crate::keys::store::Keyring;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

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

    pub(crate) fn load_keys(&self) -> Result<Keyring, crate::keys::store::KeyError> {
        match &self.signing_key {
            None => Keyring::load_dir(&self.keys),
            Some(SigningKeySource::File(path)) => Keyring::from_pem_file(path),
            Some(SigningKeySource::Pem(pem)) => Keyring::from_pem(pem, Path::new("KEYSMITH_SIGNING_KEY")),
        }
    }

    /// A fingerprint of what a reload reads besides the config text: the signing keys (the key
    /// directory's `*.pem` and lifecycle record, or the injected key file) and the GeoIP
    /// database.
    pub(crate) fn keys_fingerprint(&self, geoip: Option<&Path>) -> String {
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
/// operator (the log, [`IssuerHandle::last_rejected`](crate::server::IssuerHandle::last_rejected)) and never serialised.
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

pub(crate) fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
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
                .filter(|p| {
                    p.extension().is_some_and(|x| x == "pem") || p.ends_with(crate::keys::lifecycle::STATE_FILE)
                })
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
pub(crate) fn fingerprint(source: &Source, geoip: Option<&Path>) -> String {
    let config = std::fs::read(&source.config).map(|b| sha256_hex(&b)).unwrap_or_default();
    format!("{config}:{}", source.keys_fingerprint(geoip))
}
