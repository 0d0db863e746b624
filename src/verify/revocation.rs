//! The signed revocation list: which permanent API keys and templates are deactivated.
//!
//! Permanent keys never expire, so a verifier accepts one only while it holds a *fresh* list
//! signed by a trusted key: a missing or expired list refuses every permanent key (fail closed).
//! Short-lived access keys are also checked against the list's `revoked_templates`, so keys
//! minted from a template that was deactivated die before their `exp`, and against the
//! cut-offs (`revoke_issued_before`) of their template and of the permanent keys they were
//! minted through. A permanent key is accepted only while the root of its `created_by` chain
//! is listed active: a deleted, deactivated, expired or never-recorded record refuses it.

use crate::token::claims::RevocationClaims;
use crate::token::jwk::KeySet;
use crate::token::jws::{self, TokenType};
use crate::verify::VerifyError;
use std::collections::HashSet;

/// Largest signed revocation list accepted, in bytes (room for about 100,000 ids).
pub const MAX_REVOCATIONS_LEN: usize = 4 * 1024 * 1024;

/// Most ids a signed list may carry, over all its members together (revoked and active keys,
/// revoked templates and cut-offs). A longer list is refused before any set is built.
pub const MAX_REVOCATION_ENTRIES: usize = 100_000;

/// A verified revocation list with O(1) lookups.
#[derive(Debug, Clone)]
pub struct RevocationList {
    claims: RevocationClaims,
    api_keys: HashSet<String>,
    templates: HashSet<String>,
    active: HashSet<String>,
}

impl RevocationList {
    /// Verifies a signed list: signature by a key in `keys`, `typ` `revocations+jwt`, exact
    /// issuer, and not issued in the future. Freshness is checked at each use, against that
    /// moment's clock.
    ///
    /// # Errors
    ///
    /// A [`VerifyError`] when the list is forged, malformed or from another issuer.
    pub(crate) fn verify(
        keys: &KeySet,
        signed: &str,
        issuer: &str,
        now: u64,
        leeway: u64,
    ) -> Result<Self, VerifyError> {
        let claims: RevocationClaims = jws::decode(keys, signed.trim(), MAX_REVOCATIONS_LEN, TokenType::Revocations)?;
        if claims.iss != issuer {
            return Err(VerifyError::WrongIssuer);
        }
        if claims.iat > now.saturating_add(leeway) {
            return Err(VerifyError::IssuedInFuture);
        }
        if claims.exp <= claims.iat {
            return Err(VerifyError::InvalidClaims("exp is not after iat".into()));
        }
        let entries = claims.revoked_api_keys.len()
            + claims.revoked_templates.len()
            + claims.active_api_keys.len()
            + claims.templates_issued_before.len()
            + claims.api_keys_issued_before.len();
        if entries > MAX_REVOCATION_ENTRIES {
            return Err(VerifyError::InvalidClaims(format!("more than {MAX_REVOCATION_ENTRIES} ids")));
        }
        let api_keys = claims.revoked_api_keys.iter().cloned().collect();
        let templates = claims.revoked_templates.iter().cloned().collect();
        let active = claims.active_api_keys.iter().cloned().collect();
        Ok(Self { claims, api_keys, templates, active })
    }

    /// When the list stops being fresh (its `exp`).
    pub fn expires_at(&self) -> std::time::SystemTime {
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(self.claims.exp)
    }

    /// Whether the list is still fresh at `now` (seconds since the epoch).
    pub fn is_fresh(&self, now: u64) -> bool {
        now < self.claims.exp
    }

    /// Whether this list may replace `held` at `now`. A list that is not fresh never replaces
    /// a fresh one, whatever its order (a replayed expired list would refuse every permanent
    /// key). Otherwise a higher `ver` always does, and so does a later or equal `iat` within
    /// one `ver` (the order is (`ver`, `iat`)); an earlier list replaces `held` only once
    /// `held` has expired and this one is still fresh.
    pub fn may_replace(&self, held: &RevocationList, now: u64) -> bool {
        if held.is_fresh(now) && !self.is_fresh(now) {
            return false;
        }
        let order = |c: &RevocationClaims| (c.ver, c.iat);
        order(&self.claims) >= order(&held.claims) || (!held.is_fresh(now) && self.is_fresh(now))
    }

    /// Whether the permanent key `id` is revoked.
    pub fn is_api_key_revoked(&self, id: &str) -> bool {
        self.api_keys.contains(id)
    }

    /// Whether the permanent key `id` is listed as recorded and active.
    pub fn is_api_key_active(&self, id: &str) -> bool {
        self.active.contains(id)
    }

    /// Whether the template `id` is revoked.
    pub fn is_template_revoked(&self, id: &str) -> bool {
        self.templates.contains(id)
    }

    /// The verified claims.
    pub fn claims(&self) -> &RevocationClaims {
        &self.claims
    }
}
