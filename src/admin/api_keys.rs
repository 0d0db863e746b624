//! Permanent API keys recorded in `config.toml`: create, list, activate and deactivate. Each
//! edit is made under the config lock, validated as a whole, and written atomically with
//! `version` bumped; a refused edit changes nothing.

use crate::admin::AdminError;
use crate::config::{ApiKeyMeta, ConfigEditor, ConfigError, MAX_CONFIG_LEN, lock, write_atomically};
use crate::issuer::{CreatedApiKey, Issuer, NewApiKey};
use crate::keys::Keyring;
use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use std::path::Path;

/// What [`create_api_key`] is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeySpec {
    /// What the key is for.
    pub description: String,
    /// The permissions it grants.
    pub permissions: Vec<String>,
    /// The projects it may be used for.
    pub projects: Vec<String>,
    /// When it expires; permanent keys have no expiry by default.
    pub expires_at: Option<DateTime<FixedOffset>>,
}

/// A key [`create_api_key`] created and recorded.
#[derive(Debug)]
pub struct RecordedApiKey {
    /// The key: its id, its secret (shown once) and its claims.
    pub created: CreatedApiKey,
    /// The config version that records it (also the key's `ver`).
    pub config_version: u64,
    /// The key that signed it, recorded in the config.
    pub kid: String,
}

/// One recorded key as [`list_api_keys`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedApiKey {
    /// Its record in the config.
    pub meta: ApiKeyMeta,
    /// Whether its `expires_at` has passed.
    pub expired: bool,
}

/// What [`set_api_keys_active`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityChange {
    /// The ids whose state changed; empty when all were already in the wanted state.
    pub changed: Vec<String>,
    /// The new config version, when the config was written.
    pub config_version: Option<u64>,
}

/// Reads the config text at `config`, refusing one over [`MAX_CONFIG_LEN`].
pub(super) fn read_config(config: &Path) -> Result<String, ConfigError> {
    let io = |source| ConfigError::Io { path: config.to_owned(), source };
    if std::fs::metadata(config).map_err(io)?.len() > MAX_CONFIG_LEN {
        return Err(ConfigError::TooLarge);
    }
    std::fs::read_to_string(config).map_err(io)
}

pub(super) fn base_dir(config: &Path) -> &Path {
    config.parent().unwrap_or(Path::new("."))
}

fn rfc3339<Tz: chrono::TimeZone>(t: &DateTime<Tz>) -> String
where
    Tz::Offset: std::fmt::Display,
{
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Creates a permanent API key at `now`, signed with the keys in `keys_dir` (by the key a
/// server would sign with at `now`: see [`Keyring::load_to_sign`]), and records its metadata in
/// the config at `config`. The key is returned only once the record is written.
///
/// # Errors
///
/// [`AdminError::ExpiryNotInFuture`]; the issuer's refusal ([`AdminError::Mint`]: unknown
/// permission or project); a config, key or lock failure. Nothing is written then.
pub fn create_api_key(
    config: &Path,
    keys_dir: &Path,
    spec: ApiKeySpec,
    now: DateTime<Utc>,
) -> Result<RecordedApiKey, AdminError> {
    let ApiKeySpec { description, permissions, projects, expires_at } = spec;
    let exp = match expires_at {
        Some(t) if t > now => Some(u64::try_from(t.timestamp()).map_err(|_| AdminError::ExpiryNotInFuture)?),
        Some(_) => return Err(AdminError::ExpiryNotInFuture),
        None => None,
    };
    // Held until the edit is written, so concurrent edits never lose one another.
    let _lock = lock(config)?;
    let base = base_dir(config);
    let mut editor = ConfigEditor::new(&read_config(config)?, base)?;
    let mut current = editor.current().clone();
    // The key carries the version of the config that records it.
    current.version = editor.next_version();
    let max_age = chrono::Duration::seconds(i64::from(current.jwks_max_age));
    let (keys, _) = Keyring::load_to_sign(keys_dir, max_age, now)?;
    let issuer = Issuer::from_parts(current, keys, None);
    let new = NewApiKey { projects: projects.clone(), permissions, expires_at: exp, created_by: Vec::new() };
    let created = issuer.create_api_key(&new, now.into())?;
    let kid = issuer.keyring().signing().kid().to_owned();
    editor.add_api_key(&ApiKeyMeta {
        id: created.id.clone(),
        description,
        permissions: created.claims.permissions().map(str::to_owned).collect(),
        projects,
        created_at: Some(rfc3339(&now)),
        expires_at: expires_at.map(|t| rfc3339(&t)),
        kid: Some(kid.clone()),
        active: true,
        revoke_issued_before: None,
    });
    let (text, recorded) = editor.finish(base)?;
    if recorded.version != created.claims.ver {
        return Err(AdminError::VersionMoved);
    }
    write_atomically(config, &text)?;
    Ok(RecordedApiKey { created, config_version: recorded.version, kid })
}

/// The permanent API keys recorded in the config at `config`, in file order, each marked
/// expired or not at `now`.
///
/// # Errors
///
/// When the config cannot be read or does not validate.
pub fn list_api_keys(config: &Path, now: DateTime<Utc>) -> Result<Vec<ListedApiKey>, AdminError> {
    let editor = ConfigEditor::new(&read_config(config)?, base_dir(config))?;
    let now = u64::try_from(now.timestamp()).unwrap_or(0);
    Ok(editor
        .current()
        .api_keys()
        .iter()
        .map(|meta| ListedApiKey { expired: meta.is_expired(now), meta: meta.clone() })
        .collect())
}

/// Activates or deactivates the keys `ids` in the config at `config`. With `unlisted`, ids
/// not in the config (keys created over HTTP) are recorded as inactive entries. Nothing is
/// written when no key changes.
///
/// # Errors
///
/// Unknown ids ([`EditError::UnknownIds`](crate::config::EditError::UnknownIds)); a config or
/// lock failure. Nothing is written then.
pub fn set_api_keys_active(
    config: &Path,
    ids: &[String],
    active: bool,
    unlisted: bool,
) -> Result<ActivityChange, AdminError> {
    let _lock = lock(config)?;
    let base = base_dir(config);
    let mut editor = ConfigEditor::new(&read_config(config)?, base)?;
    let changed = editor.set_active(ids, active, unlisted)?;
    if changed.is_empty() {
        return Ok(ActivityChange { changed, config_version: None });
    }
    let (text, recorded) = editor.finish(base)?;
    write_atomically(config, &text)?;
    Ok(ActivityChange { changed, config_version: Some(recorded.version) })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "version = 1\nissuer = \"i\"\n[projects.demo]\n";

    fn setup() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(&config, CONFIG).unwrap();
        let keys = dir.path().join("keys");
        crate::keys::generate_key_file(&keys, Utc::now()).unwrap();
        (dir, config, keys)
    }

    fn spec(expires_at: Option<DateTime<FixedOffset>>) -> ApiKeySpec {
        ApiKeySpec {
            description: "nightly import".into(),
            permissions: vec!["FILE_UPLOAD".into()],
            projects: vec!["demo".into()],
            expires_at,
        }
    }

    #[test]
    fn create_list_deactivate_activate() {
        let (_dir, config, keys) = setup();
        let now = Utc::now();
        let recorded = create_api_key(&config, &keys, spec(None), now).unwrap();
        assert_eq!(recorded.config_version, 2);
        let listed = list_api_keys(&config, now).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].meta.id, recorded.created.id);
        assert_eq!(listed[0].meta.kid.as_deref(), Some(recorded.kid.as_str()));
        assert!(listed[0].meta.active && !listed[0].expired);
        let ids = [recorded.created.id.clone()];
        let change = set_api_keys_active(&config, &ids, false, false).unwrap();
        assert_eq!((change.changed.as_slice(), change.config_version), (&ids[..], Some(3)));
        let again = set_api_keys_active(&config, &ids, false, false).unwrap();
        assert_eq!((again.changed.len(), again.config_version), (0, None), "nothing to write");
        assert_eq!(set_api_keys_active(&config, &ids, true, false).unwrap().config_version, Some(4));
    }

    #[test]
    fn refusals_change_nothing() {
        let (_dir, config, keys) = setup();
        let now = Utc::now();
        let past = (now - chrono::Duration::seconds(1)).fixed_offset();
        assert!(matches!(create_api_key(&config, &keys, spec(Some(past)), now), Err(AdminError::ExpiryNotInFuture)));
        let mut unknown = spec(None);
        unknown.permissions = vec!["FILE_TELEPORT".into()];
        assert!(matches!(create_api_key(&config, &keys, unknown, now), Err(AdminError::Mint(_))));
        assert!(set_api_keys_active(&config, &["ak_nope".into()], false, false).is_err());
        assert_eq!(std::fs::read_to_string(&config).unwrap(), CONFIG);
    }
}
