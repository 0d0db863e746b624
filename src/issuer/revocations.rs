//! Revocations: the signed list the issuer publishes, and its own view of what its config
//! deactivates, never stale.
//!
//! The issuer checks permanent keys presented to it against its config directly, so it plugs
//! this source into its verifier instead of a signed list.

use super::*;
use crate::config::Config;
use crate::token::claims::RevocationClaims;
use crate::token::jws::{EncodeError, TokenType};
use crate::verify::unix_seconds;
use crate::verify::{RevocationSource, Revocations};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

/// The deactivated API keys and templates of one config.
#[derive(Debug)]
pub(crate) struct ConfigRevocations {
    api_keys: HashSet<String>,
    templates: HashSet<String>,
    templates_issued_before: BTreeMap<String, u64>,
    api_keys_issued_before: BTreeMap<String, u64>,
}

impl ConfigRevocations {
    /// The revocations `config` declares.
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            api_keys: config.revoked_api_keys().into_iter().collect(),
            templates: config.revoked_templates().into_iter().collect(),
            templates_issued_before: config.templates_issued_before(),
            api_keys_issued_before: config.api_keys_issued_before(),
        }
    }
}

impl Revocations for ConfigRevocations {
    /// The config in force is the truth at every moment.
    fn is_fresh(&self, _now: u64) -> bool {
        true
    }

    fn is_api_key_revoked(&self, id: &str) -> bool {
        self.api_keys.contains(id)
    }

    fn is_template_revoked(&self, id: &str) -> bool {
        self.templates.contains(id)
    }

    /// Not deactivated. `Issuer::authenticate`, this source's one user, then requires the
    /// root of the chain to have an active record itself, refusing it with its own code
    /// (`api_key_unknown`) and applying the record's expiry by the issuer's clock.
    fn is_api_key_active(&self, id: &str) -> bool {
        !self.api_keys.contains(id)
    }

    fn template_issued_before(&self, id: &str) -> Option<u64> {
        self.templates_issued_before.get(id).copied()
    }

    fn api_key_issued_before(&self, id: &str) -> Option<u64> {
        self.api_keys_issued_before.get(id).copied()
    }
}

impl RevocationSource for Arc<ConfigRevocations> {
    fn current(&self) -> Option<Arc<dyn Revocations>> {
        Some(Arc::clone(self) as Arc<dyn Revocations>)
    }
}

/// A signed revocation list and its validity.
#[derive(Debug, Clone)]
pub struct SignedRevocations {
    /// The compact JWS.
    pub token: String,
    /// When it was signed.
    pub iat: u64,
    /// When it expires.
    pub exp: u64,
}

impl Issuer {
    /// Signs the current revocation list: deactivated templates of this config, API keys
    /// deactivated or whose record has expired by `now` (so backends refuse them offline, and
    /// the chain check refuses keys created beneath them), the recorded keys active at `now`
    /// (a permanent key whose chain root is not among them is refused) and the
    /// `revoke_issued_before` cut-offs, fresh for `revocations_max_age`.
    ///
    /// # Errors
    ///
    /// [`EncodeError`] when the claims do not serialise; nothing is signed then.
    pub fn revocation_list(&self, now: SystemTime) -> Result<SignedRevocations, EncodeError> {
        let iat = unix_seconds(now);
        let exp = iat + u64::from(self.config.revocations_max_age);
        let claims = RevocationClaims {
            iss: self.config.issuer.clone(),
            iat,
            exp,
            ver: self.config.version,
            revoked_api_keys: self.config.api_keys_refused_at(iat),
            revoked_templates: self.config.revoked_templates(),
            active_api_keys: self.config.api_keys_active_at(iat),
            templates_issued_before: self.config.templates_issued_before(),
            api_keys_issued_before: self.config.api_keys_issued_before(),
        };
        Ok(SignedRevocations { token: self.sign(TokenType::Revocations, &claims)?, iat, exp })
    }
}
