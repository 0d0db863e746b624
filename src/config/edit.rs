//! Editing `config.toml` in place (comments and layout survive), for the `apikey` and
//! `template` commands.
//!
//! Every edit bumps `version` and is validated as a whole before anything is written; an edit
//! that would leave an invalid config changes nothing.

use super::{ApiKeyMeta, Config, ConfigError};
use std::path::Path;
use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, value};

/// Why an edit was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    /// The config (before or after the edit) does not load.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The text validated as a config but the layout-keeping parser refused it.
    #[error("{0}")]
    Document(#[source] toml_edit::TomlError),
    /// Ids that are not in `[[api_keys]]`.
    #[error("unknown API key id(s): {}", .0.join(", "))]
    UnknownIds(Vec<String>),
    /// No `[[templates]]` entry has this id.
    #[error("unknown template id: {0}")]
    UnknownTemplate(String),
    /// `api_keys` is written as an inline array, which the editor does not rewrite.
    #[error("api_keys is an inline array; write it as [[api_keys]] tables to edit it with the CLI")]
    InlineApiKeys,
    /// The edited file does not show the intended change (a bug or an unusual layout).
    #[error("the edit did not take effect for {0}; nothing was written")]
    NotApplied(String),
    /// Another edit holds the lock.
    #[error("{path}: cannot lock the config for editing: {source}")]
    Lock {
        /// The lock file.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Writing the file failed.
    #[error("{path}: {source}")]
    Write {
        /// The config file.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Which kind of entry a `revoke_issued_before` cut-off is set on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CutOff {
    /// A `[[templates]]` entry: keys minted from it earlier are refused.
    Template,
    /// An `[[api_keys]]` record: access keys minted through the key earlier are refused.
    ApiKey,
}

/// A config being edited.
pub struct ConfigEditor {
    doc: DocumentMut,
    current: Config,
    /// `(id, active)` each edited key must show after the edit.
    expected: Vec<(String, bool)>,
    /// `(kind, id, cut-off)` each edited entry must show after the edit.
    expected_cut_offs: Vec<(CutOff, String, u64)>,
}

impl ConfigEditor {
    /// Starts editing `text`, which must itself be a valid config.
    ///
    /// # Errors
    ///
    /// [`EditError::Config`] when the current text does not validate.
    pub fn new(text: &str, base_dir: &Path) -> Result<Self, EditError> {
        let current = Config::from_toml(text, base_dir)?;
        let doc = text.parse::<DocumentMut>().map_err(EditError::Document)?;
        if doc.get("api_keys").is_some_and(|item| !item.is_array_of_tables()) {
            return Err(EditError::InlineApiKeys);
        }
        Ok(Self { doc, current, expected: Vec::new(), expected_cut_offs: Vec::new() })
    }

    /// The config as it was before the edit.
    pub fn current(&self) -> &Config {
        &self.current
    }

    /// The `version` [`ConfigEditor::finish`] will write: the current one plus one. Keys
    /// created for this edit carry it as their `ver`.
    pub fn next_version(&self) -> u64 {
        self.current.version.saturating_add(1)
    }

    /// Appends an `[[api_keys]]` entry.
    pub fn add_api_key(&mut self, key: &ApiKeyMeta) {
        let mut table = Table::new();
        table["id"] = value(&key.id);
        table["description"] = value(&key.description);
        table["permissions"] = value(key.permissions.iter().collect::<Array>());
        table["projects"] = value(key.projects.iter().collect::<Array>());
        if let Some(created) = key.created_at.as_deref().and_then(|c| c.parse::<toml_edit::Datetime>().ok()) {
            table["created_at"] = value(created);
        }
        if let Some(expires) = key.expires_at.as_deref().and_then(|c| c.parse::<toml_edit::Datetime>().ok()) {
            table["expires_at"] = value(expires);
        }
        if let Some(kid) = &key.kid {
            table["kid"] = value(kid);
        }
        table["active"] = value(key.active);
        let slot = self.doc.entry("api_keys").or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()));
        if let Some(array) = slot.as_array_of_tables_mut() {
            array.push(table);
        }
        self.expected.push((key.id.clone(), key.active));
    }

    /// Sets `active` on the keys `ids`; returns the ids whose state changed. With
    /// `record_unlisted` (deactivation only), ids not in the config (keys created over HTTP,
    /// named in the audit log) are recorded as inactive entries that only revoke them.
    ///
    /// # Errors
    ///
    /// [`EditError::UnknownIds`] naming every id not in the config; nothing is changed.
    pub fn set_active(
        &mut self,
        ids: &[String],
        active: bool,
        record_unlisted: bool,
    ) -> Result<Vec<String>, EditError> {
        let unknown: Vec<String> =
            ids.iter().filter(|id| !self.current.api_keys().iter().any(|k| &k.id == *id)).cloned().collect();
        if !unknown.is_empty() && (active || !record_unlisted) {
            return Err(EditError::UnknownIds(unknown));
        }
        if let Some(bad) = unknown.iter().find(|id| !super::validate::is_key_id(id)) {
            return Err(EditError::UnknownIds(vec![bad.clone()]));
        }
        let mut changed = Vec::new();
        for id in &unknown {
            let mut table = Table::new();
            table["id"] = value(id);
            table["description"] = value("created over HTTP (see the audit log); deactivated");
            table["active"] = value(false);
            let slot = self.doc.entry("api_keys").or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()));
            if let Some(array) = slot.as_array_of_tables_mut() {
                array.push(table);
            }
            changed.push(id.clone());
        }
        self.expected.extend(ids.iter().map(|id| (id.clone(), active)));
        if let Some(tables) = self.doc.get_mut("api_keys").and_then(Item::as_array_of_tables_mut) {
            for table in tables.iter_mut() {
                let Some(id) = table.get("id").and_then(Item::as_str).map(str::to_owned) else { continue };
                let was = table.get("active").and_then(Item::as_bool).unwrap_or(true);
                if ids.contains(&id) && was != active {
                    table["active"] = value(active);
                    changed.push(id);
                }
            }
        }
        Ok(changed)
    }

    /// Sets `revoke_issued_before = at` on the template or API key record `id` (replacing any
    /// earlier cut-off), written as a TOML date-time in UTC to the second. A cut-off in the
    /// future is refused by [`ConfigEditor::finish`], as by every config load.
    ///
    /// # Errors
    ///
    /// [`EditError::UnknownTemplate`] or [`EditError::UnknownIds`] when no entry has that id;
    /// [`EditError::NotApplied`] when the entry is not written as a `[[…]]` table.
    pub fn revoke_issued_before(
        &mut self,
        kind: CutOff,
        id: &str,
        at: chrono::DateTime<chrono::FixedOffset>,
    ) -> Result<(), EditError> {
        let key = match kind {
            CutOff::Template if self.current.templates().iter().any(|t| t.id == id) => "templates",
            CutOff::Template => return Err(EditError::UnknownTemplate(id.to_owned())),
            CutOff::ApiKey if self.current.api_key(id).is_some() => "api_keys",
            CutOff::ApiKey => return Err(EditError::UnknownIds(vec![id.to_owned()])),
        };
        let utc = at.with_timezone(&chrono::Utc);
        let text = utc.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let stamp = text.parse::<toml_edit::Datetime>().map_err(|_| EditError::NotApplied(id.to_owned()))?;
        let tables = self.doc.get_mut(key).and_then(Item::as_array_of_tables_mut);
        let table = tables
            .and_then(|tables| tables.iter_mut().find(|t| t.get("id").and_then(Item::as_str) == Some(id)))
            .ok_or_else(|| EditError::NotApplied(id.to_owned()))?;
        table["revoke_issued_before"] = value(stamp);
        let secs = u64::try_from(utc.timestamp()).map_err(|_| EditError::NotApplied(id.to_owned()))?;
        self.expected_cut_offs.push((kind, id.to_owned(), secs));
        Ok(())
    }

    /// Bumps `version` by one, validates the result, and returns the new text and config.
    ///
    /// # Errors
    ///
    /// [`EditError::Config`] when the edited config does not validate.
    pub fn finish(mut self, base_dir: &Path) -> Result<(String, Config), EditError> {
        let next = self.next_version();
        match self.doc.get_mut("version").and_then(Item::as_value_mut) {
            Some(v) => {
                let decor = v.decor().clone();
                *v = toml_edit::Value::from(i64::try_from(next).unwrap_or(i64::MAX));
                *v.decor_mut() = decor;
            }
            None => self.doc["version"] = value(i64::try_from(next).unwrap_or(i64::MAX)),
        }
        let text = self.doc.to_string();
        let config = Config::from_toml(&text, base_dir)?;
        for (id, active) in &self.expected {
            if config.api_key(id).map(|k| k.active) != Some(*active) {
                return Err(EditError::NotApplied(id.clone()));
            }
        }
        for (kind, id, at) in &self.expected_cut_offs {
            let shown = match kind {
                CutOff::Template => {
                    config.templates().iter().find(|t| &t.id == id).and_then(|t| t.revoke_issued_before)
                }
                CutOff::ApiKey => config.api_key(id).and_then(|k| k.revoke_issued_before),
            };
            if shown != Some(*at) {
                return Err(EditError::NotApplied(id.clone()));
            }
        }
        Ok((text, config))
    }
}

/// Takes an exclusive lock for editing the config at `path` (a `.<name>.lock` file beside it),
/// held until the returned file is dropped, so concurrent edits never lose one another.
///
/// # Errors
///
/// [`EditError::Lock`].
pub(crate) fn lock(path: &Path) -> Result<std::fs::File, EditError> {
    let (dir, name) = dir_and_name(path);
    let lock_path = dir.join(format!(".{name}.lock"));
    let err = |source| EditError::Lock { path: lock_path.clone(), source };
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(err)?;
    file.lock().map_err(err)?;
    Ok(file)
}

fn dir_and_name(path: &Path) -> (&Path, String) {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    (dir, name)
}

/// Writes `text` to `path` atomically and durably: a temporary file in the same directory,
/// synced, renamed over the original (keeping its permissions), then the directory synced.
///
/// # Errors
///
/// [`EditError::Write`].
pub(crate) fn write_atomically(path: &Path, text: &str) -> Result<(), EditError> {
    use std::io::Write as _;
    let err = |source| EditError::Write { path: path.to_owned(), source };
    let (dir, _) = dir_and_name(path);
    // A unique name beside the target (same filesystem, so the rename is atomic), deleted if
    // anything fails before the rename.
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    file.write_all(text.as_bytes()).map_err(err)?;
    if let Ok(meta) = std::fs::metadata(path) {
        file.as_file().set_permissions(meta.permissions()).map_err(err)?;
    }
    file.as_file().sync_all().map_err(err)?;
    file.persist(path).map_err(|e| err(e.error))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# The config.
# Bump on every change.
version = 3 # the version
issuer = "i"

[projects.demo]

# Backend keys below.
[[api_keys]]
id = "ak_one"
description = "CI uploader" # who uses it
permissions = ["FILE_UPLOAD"]
projects = ["demo"]
active = true
"#;

    fn meta(id: &str) -> ApiKeyMeta {
        ApiKeyMeta {
            id: id.into(),
            description: "nightly import".into(),
            permissions: vec!["FILE_UPLOAD".into(), "OBJECTS_LIST".into()],
            projects: vec!["demo".into()],
            created_at: Some("2026-11-23T10:00:00Z".into()),
            expires_at: None,
            kid: Some("kid-1".into()),
            active: true,
            revoke_issued_before: None,
        }
    }

    #[test]
    fn add_keeps_comments_and_bumps_version() {
        let mut editor = ConfigEditor::new(TEXT, Path::new(".")).unwrap();
        editor.add_api_key(&meta("ak_two"));
        let (text, config) = editor.finish(Path::new(".")).unwrap();
        assert_eq!(config.version, 4);
        assert_eq!(config.api_keys().len(), 2);
        assert_eq!(config.api_keys()[1], meta("ak_two"));
        for kept in [
            "# The config.",
            "# Bump on every change.",
            "version = 4 # the version",
            "# Backend keys below.",
            "# who uses it",
        ] {
            assert!(text.contains(kept), "lost {kept:?} in:\n{text}");
        }
        assert!(text.starts_with(&TEXT[..TEXT.find("version").unwrap()]));
    }

    #[test]
    fn set_active_changes_only_named_keys() {
        let mut editor = ConfigEditor::new(TEXT, Path::new(".")).unwrap();
        assert_eq!(editor.set_active(&["ak_one".into()], false, false).unwrap(), ["ak_one"]);
        let (text, config) = editor.finish(Path::new(".")).unwrap();
        assert!(!config.api_keys()[0].active);
        assert_eq!(config.revoked_api_keys(), ["ak_one"]);
        assert!(text.contains("# who uses it"));

        let mut editor = ConfigEditor::new(&text, Path::new(".")).unwrap();
        assert!(editor.set_active(&["ak_one".into()], false, false).unwrap().is_empty(), "already inactive");
        let err = editor.set_active(&["ak_one".into(), "ak_nope".into()], true, true).unwrap_err();
        assert!(matches!(&err, EditError::UnknownIds(ids) if ids == &["ak_nope"]), "{err}");
    }

    #[test]
    fn revoke_issued_before_is_set_with_comments_kept() {
        let text = format!(
            "{TEXT}\n# The widget.\n[[templates]]\nid = \"widget\" # for the site\nproject = \"demo\"\npermissions = [\"FILE_UPLOAD\"]\n"
        );
        let at = chrono::DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z").unwrap();
        let mut editor = ConfigEditor::new(&text, Path::new(".")).unwrap();
        editor.revoke_issued_before(CutOff::Template, "widget", at).unwrap();
        editor.revoke_issued_before(CutOff::ApiKey, "ak_one", at).unwrap();
        let (written, config) = editor.finish(Path::new(".")).unwrap();
        assert_eq!(config.version, 4);
        assert_eq!(config.templates()[0].revoke_issued_before, Some(1_772_366_400));
        assert_eq!(config.api_key("ak_one").unwrap().revoke_issued_before, Some(1_772_366_400));
        for kept in ["# The widget.", "# for the site", "# who uses it", "version = 4 # the version"] {
            assert!(written.contains(kept), "lost {kept:?} in:\n{written}");
        }
        // Setting it again moves it; unknown ids change nothing.
        let mut editor = ConfigEditor::new(&written, Path::new(".")).unwrap();
        let later = chrono::DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z").unwrap();
        editor.revoke_issued_before(CutOff::Template, "widget", later).unwrap();
        assert_eq!(editor.finish(Path::new(".")).unwrap().1.templates()[0].revoke_issued_before, Some(1_772_409_600));
        let mut editor = ConfigEditor::new(&written, Path::new(".")).unwrap();
        assert!(matches!(
            editor.revoke_issued_before(CutOff::Template, "nope", at),
            Err(EditError::UnknownTemplate(_))
        ));
        assert!(matches!(editor.revoke_issued_before(CutOff::ApiKey, "ak_nope", at), Err(EditError::UnknownIds(_))));
    }

    #[test]
    fn invalid_results_are_refused() {
        let mut editor = ConfigEditor::new(TEXT, Path::new(".")).unwrap();
        let mut bad = meta("ak_two");
        bad.permissions = vec!["FILE_TELEPORT".into()];
        editor.add_api_key(&bad);
        let err = editor.finish(Path::new(".")).unwrap_err();
        assert!(err.to_string().contains("api_keys[1].permissions[0]"), "{err}");
        assert!(
            ConfigEditor::new("version = 0\nissuer = \"i\"", Path::new(".")).is_err(),
            "an invalid config is not edited"
        );
    }

    #[test]
    fn unlisted_keys_are_recorded_only_when_asked() {
        let mut editor = ConfigEditor::new(TEXT, Path::new(".")).unwrap();
        assert!(matches!(editor.set_active(&["ak_http".into()], false, false), Err(EditError::UnknownIds(_))));
        assert_eq!(editor.set_active(&["ak_http".into()], false, true).unwrap(), ["ak_http"]);
        let (_, config) = editor.finish(Path::new(".")).unwrap();
        assert_eq!(config.revoked_api_keys(), ["ak_http"]);
        let mut editor = ConfigEditor::new(TEXT, Path::new(".")).unwrap();
        assert!(matches!(editor.set_active(&["bad id!".into()], false, true), Err(EditError::UnknownIds(_))));
    }

    #[test]
    fn inline_arrays_are_refused_not_ignored() {
        let inline = "version = 1\nissuer = \"i\"\n[projects.demo]\napi_keys = []\n".replace(
            "[projects.demo]\napi_keys = []",
            "api_keys = [{ id = \"ak_one\", permissions = [\"FILE_UPLOAD\"], projects = [\"demo\"] }]\n[projects.demo]",
        );
        assert!(matches!(ConfigEditor::new(&inline, Path::new(".")), Err(EditError::InlineApiKeys)));
    }

    #[test]
    fn locks_exclude_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let held = lock(&path).unwrap();
        let other = std::fs::OpenOptions::new().write(true).open(dir.path().join(".config.toml.lock")).unwrap();
        assert!(other.try_lock().is_err(), "a second editor must wait");
        drop(held);
        assert!(other.try_lock().is_ok());
    }

    #[test]
    fn atomic_write_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "old").unwrap();
        write_atomically(&path, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
    }
}
