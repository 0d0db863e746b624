//! Permanent API keys: authenticating a presented key against the config, and creating keys.

use super::mint::random_jti;
use super::*;
use crate::token::claims::ApiKeyClaims;
use crate::token::jws::TokenType;
use crate::verify::{ApiKeyGrant, VerifyError, unix_seconds};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Most generations of keys creating keys over HTTP.
const MAX_CREATION_DEPTH: usize = 8;

/// A permanent key to create.
#[derive(Debug, Clone, Default)]
pub struct NewApiKey {
    /// Projects it may be used for.
    pub projects: Vec<String>,
    /// Permissions it grants.
    pub permissions: Vec<String>,
    /// Optional expiry, seconds since the epoch.
    pub expires_at: Option<u64>,
    /// The keys that created it, oldest first (empty when an operator creates it).
    pub created_by: Vec<String>,
}

/// A created permanent key.
#[derive(Clone)]
pub struct CreatedApiKey {
    /// The key id.
    pub id: String,
    /// The key itself: shown once, never stored or logged by keysmith.
    pub secret: String,
    /// Its claims.
    pub claims: ApiKeyClaims,
}

impl std::fmt::Debug for CreatedApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedApiKey").field("id", &self.id).field("secret", &"[redacted]").finish_non_exhaustive()
    }
}

impl Issuer {
    /// Checks a permanent key presented to this issuer for `project`: signed by one of its keys,
    /// not deactivated in its config (nor any key that created it), and for this project.
    ///
    /// # Errors
    ///
    /// [`MintError::ApiKeyInvalid`], [`MintError::ApiKeyRevoked`] or
    /// [`MintError::ApiKeyWrongProject`].
    pub fn authenticate(&self, key: &str, project: &str, now: SystemTime) -> Result<ApiKeyGrant, MintError> {
        let mut grant = self.api_keys.verify_api_key(key, now).map_err(|e| match e {
            VerifyError::Revoked => MintError::ApiKeyRevoked,
            VerifyError::Expired => MintError::ApiKeyExpired,
            other => MintError::ApiKeyInvalid(other),
        })?;
        // The config is the source of truth: the key, or the operator-created key at the root of
        // the chain that created it, must be recorded and active, and its record bounds the
        // projects and permissions of everything beneath it.
        let root = grant.claims().created_by.first().map_or(grant.id(), String::as_str);
        let record = self.config.api_key(root).filter(|k| k.active).ok_or(MintError::ApiKeyUnknown)?;
        if !grant.projects().iter().any(|p| p == project) || !record.projects.iter().any(|p| p == project) {
            return Err(MintError::ApiKeyWrongProject);
        }
        grant.restrict_permissions(&record.permissions);
        // The record's expiry bounds the key and everything created beneath it; the issuer's
        // clock is the reference, so no leeway here.
        if let Some(exp) = record.expires_at_unix() {
            grant.expire_by(UNIX_EPOCH + Duration::from_secs(exp));
        }
        if grant.expires_at().is_some_and(|exp| now >= exp) {
            return Err(MintError::ApiKeyExpired);
        }
        Ok(grant)
    }

    /// Creates a permanent key: a fresh id, signed with the current signing key. The caller
    /// records the metadata (the CLI writes `[[api_keys]]`; the HTTP service writes the audit
    /// log).
    ///
    /// # Errors
    ///
    /// [`MintError::UnknownProject`] or [`MintError::UnknownPermission`] for a project or
    /// permission the config does not declare, and [`MintError::Encode`] when the claims do not
    /// serialise; nothing is signed then.
    pub fn create_api_key(&self, new: &NewApiKey, now: SystemTime) -> Result<CreatedApiKey, MintError> {
        // Checked before anything is signed, so a refused request never produces a key.
        if let Some(p) = new.projects.iter().find(|p| !self.config.projects.contains_key(*p)) {
            return Err(MintError::UnknownProject(p.clone()));
        }
        if let Some(p) = new.permissions.iter().find(|p| !self.config.catalog.contains(p)) {
            return Err(MintError::UnknownPermission(p.clone()));
        }
        let id = format!("ak_{}", random_jti());
        let claims = ApiKeyClaims {
            iss: self.config.issuer.clone(),
            aud: new.projects.clone(),
            sub: id.clone(),
            jti: id.clone(),
            iat: unix_seconds(now),
            scope: crate::token::claims::scope_claim(&new.permissions),
            ver: self.config.version,
            exp: new.expires_at,
            created_by: new.created_by.clone(),
        };
        let secret = self.sign(TokenType::ApiKey, &claims)?;
        Ok(CreatedApiKey { id, secret, claims })
    }

    /// Creates a permanent key for `project` on behalf of the holder of `creator` (its own
    /// permanent key), as `POST /{project}/v1/api-keys` does: the creator must hold the
    /// catalogue's manage permission, and the new key gets only permissions the creator holds.
    ///
    /// # Errors
    ///
    /// A [`MintError`]: an invalid or revoked creator, a missing manage permission, an
    /// escalation, an unknown permission or a bad name.
    ///
    /// No record, no key: the creation is written to `audit` before the key is returned, and
    /// a failed write is [`MintError::AuditFailed`] with no key handed out.
    pub fn create_api_key_as(
        &self,
        creator: &str,
        project: &str,
        name: &str,
        permissions: &[String],
        audit: &dyn AuditSink,
        now: SystemTime,
    ) -> Result<(ApiKeyGrant, CreatedApiKey), MintError> {
        if !self.config.projects.contains_key(project) {
            return Err(MintError::UnknownProject(project.to_owned()));
        }
        let manage = self.config.catalog.manage_permission().ok_or(MintError::ApiKeyCreationDisabled)?;
        let grant = self.authenticate(creator, project, now)?;
        if !grant.has_permission(manage) {
            return Err(MintError::ManagePermissionMissing(manage.to_owned()));
        }
        if name.trim().is_empty() || name.chars().count() > 256 || name.chars().any(char::is_control) {
            return Err(MintError::InvalidName);
        }
        if permissions.is_empty() {
            return Err(MintError::EmptyPermissions);
        }
        let mut granted: Vec<String> = Vec::with_capacity(permissions.len());
        for p in permissions {
            if !self.config.catalog.contains(p) {
                return Err(MintError::UnknownPermission(p.clone()));
            }
            if !grant.has_permission(p) {
                return Err(MintError::PermissionEscalation(p.clone()));
            }
            if !granted.contains(p) {
                granted.push(p.clone());
            }
        }
        let mut created_by = grant.claims().created_by.clone();
        created_by.push(grant.id().to_owned());
        if created_by.len() > MAX_CREATION_DEPTH {
            return Err(MintError::CreationChainTooDeep);
        }
        // A key never outlives the key that created it, nor the record at the root of its chain.
        let expires_at = grant.expires_at().map(unix_seconds);
        let new = NewApiKey { projects: vec![project.to_owned()], permissions: granted, expires_at, created_by };
        let created = self.create_api_key(&new, now)?;
        audit
            .api_key_created(&ApiKeyCreation { project, name, created: &created, creator: grant.id(), at: now })
            .map_err(MintError::AuditFailed)?;
        Ok((grant, created))
    }
}

/// A permanent key created on behalf of another key, as the audit trail records it. Never the
/// secret: [`CreatedApiKey`]'s `Debug` redacts it, and a sink must write only its id and claims.
#[derive(Debug, Clone, Copy)]
pub struct ApiKeyCreation<'a> {
    /// The project the key is for.
    pub project: &'a str,
    /// The name the creator gave it.
    pub name: &'a str,
    /// The created key.
    pub created: &'a CreatedApiKey,
    /// The id of the key that created it.
    pub creator: &'a str,
    /// When, as the issuer's clock said when it signed the key.
    pub at: SystemTime,
}

/// Where creations of permanent keys are recorded. The issuer hands out a key only once its
/// sink has recorded the creation.
pub trait AuditSink: Send + Sync {
    /// Records `event`.
    ///
    /// # Errors
    ///
    /// When the record cannot be written; the key is then not handed out.
    fn api_key_created(&self, event: &ApiKeyCreation<'_>) -> std::io::Result<()>;
}
