//! The audit log: every permanent key created over HTTP, as one JSON line (id, name,
//! permissions, project, creator) in `server.audit_log` and as a `keysmith::audit` log event.
//! Never the secret. Client-chosen text (a key's name) is escaped in both: no line breaks, no
//! terminal controls, no raw U+2028/U+2029 or bidi controls in the JSON.

use super::escape::{Escaped, json_without_raw_separators};
use crate::issuer::{ApiKeyCreation, AuditSink};
use serde::Serialize;
use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;

/// Where audit events go.
pub(crate) struct AuditLog {
    file: Option<Mutex<File>>,
}

#[derive(Serialize)]
struct ApiKeyCreated<'a> {
    ts: String,
    event: &'static str,
    id: &'a str,
    name: &'a str,
    project: &'a str,
    permissions: &'a str,
    created_by: &'a str,
}

impl AuditLog {
    /// Opens `path` for appending (created `0600` if missing), or logs only when `None`.
    pub(crate) fn open(path: Option<&Path>) -> std::io::Result<Self> {
        let file = match path {
            None => None,
            Some(path) => {
                let mut options = std::fs::OpenOptions::new();
                options.append(true).create(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                // Name the file: the caller's context (the config) is not what failed.
                let file = options.open(path).map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("server.audit_log {}: cannot open it for appending: {e}", path.display()),
                    )
                })?;
                Some(Mutex::new(file))
            }
        };
        Ok(Self { file })
    }
}

impl AuditSink for AuditLog {
    /// Records the creation as a `keysmith::audit` event and, when configured, a line in the
    /// audit file (synced before the key is handed out).
    ///
    /// # Errors
    ///
    /// When the audit file cannot be written or the line does not serialise.
    fn api_key_created(&self, event: &ApiKeyCreation<'_>) -> std::io::Result<()> {
        let ApiKeyCreation { project, name, created, creator, at } = *event;
        tracing::info!(
            target: "keysmith::audit",
            event = "api_key_created",
            id = %Escaped(&created.id),
            name = %Escaped(name),
            project = %Escaped(project),
            permissions = %Escaped(&created.claims.scope),
            created_by = %Escaped(creator),
            "api key created"
        );
        let Some(file) = &self.file else { return Ok(()) };
        let line = ApiKeyCreated {
            ts: chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            event: "api_key_created",
            id: &created.id,
            name,
            project,
            permissions: &created.claims.scope,
            created_by: creator,
        };
        let mut text = json_without_raw_separators(&serde_json::to_string(&line).map_err(std::io::Error::other)?);
        text.push('\n');
        let mut file = file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        file.write_all(text.as_bytes()).and_then(|()| file.sync_data()).inspect_err(|e| {
            tracing::error!(error = %e, id = %Escaped(&created.id), "cannot write the audit log; the key is not handed out");
        })
    }
}
