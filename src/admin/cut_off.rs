//! `revoke_issued_before`: voiding every key minted from a template, or through a permanent
//! key, before a moment.

use crate::admin::AdminError;
use crate::admin::api_keys::{base_dir, read_config};
use crate::config::{ConfigEditor, CutOff, lock, write_atomically};
use chrono::{DateTime, FixedOffset};
use std::path::Path;

/// Sets the `revoke_issued_before` of the template or `[[api_keys]]` record `id` to `at` in the
/// config at `config` (comments kept, `version` bumped, under the edit lock) and returns the
/// version written.
///
/// # Errors
///
/// [`AdminError::Edit`] when the entry does not exist or the cut-off is refused (in the future,
/// earlier than one already set is allowed and reported by `keysmith check`);
/// [`AdminError::Config`] when the config cannot be read or the edit does not validate. Nothing
/// is written then.
pub fn set_cut_off(config: &Path, kind: CutOff, id: &str, at: DateTime<FixedOffset>) -> Result<u64, AdminError> {
    let _lock = lock(config)?;
    let base = base_dir(config);
    let mut editor = ConfigEditor::new(&read_config(config)?, base)?;
    editor.revoke_issued_before(kind, id, at)?;
    let (text, recorded) = editor.finish(base)?;
    write_atomically(config, &text)?;
    Ok(recorded.version)
}
