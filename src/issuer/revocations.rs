//! The issuer's own revocations: what its config deactivates, never stale.
//!
//! The issuer checks permanent keys presented to it against its config directly, so it plugs
//! this source into its verifier instead of a signed list.

use crate::config::Config;
use crate::verify::{RevocationSource, Revocations};
use std::collections::HashSet;
use std::sync::Arc;

/// The deactivated API keys and templates of one config.
#[derive(Debug)]
pub(crate) struct ConfigRevocations {
    api_keys: HashSet<String>,
    templates: HashSet<String>,
}

impl ConfigRevocations {
    /// The revocations `config` declares.
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            api_keys: config.revoked_api_keys().into_iter().collect(),
            templates: config.revoked_templates().into_iter().collect(),
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
}

impl RevocationSource for Arc<ConfigRevocations> {
    fn current(&self) -> Option<Arc<dyn Revocations>> {
        Some(Arc::clone(self) as Arc<dyn Revocations>)
    }
}
