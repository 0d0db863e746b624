//! The review of a config against the one before it, as `keysmith check` reports it.

use crate::config::{Config, VersionChange};
use crate::review::{Change, Lint, diff, lint};

/// A config reviewed against the previous one: what changed, whether `version` was raised,
/// and the lints.
#[derive(Debug, Clone)]
pub struct Review {
    /// Every access change since the previous config (empty without one).
    pub changes: Vec<Change>,
    /// Whether `version` was raised; `None` without a previous config. A reviewed edit counts
    /// as a content change, so only a raised version passes (the rule is [`VersionChange`],
    /// shared with the service's reload).
    pub version_increased: Option<bool>,
    /// Risky settings of the config.
    pub lints: Vec<Lint>,
}

impl Review {
    /// Reviews `config`, against `previous` when given.
    pub fn of(previous: Option<&Config>, config: &Config) -> Self {
        Self {
            changes: previous.map(|p| diff(p, config)).unwrap_or_default(),
            version_increased: previous
                .map(|p| VersionChange::between(p.version, config.version, true) == VersionChange::Raised),
            lints: lint(config),
        }
    }

    /// Whether any change widens access.
    pub fn widening(&self) -> bool {
        self.changes.iter().any(|c| c.widening)
    }

    /// Whether the review passes: `version` raised (when there is a previous config) and,
    /// when `strict`, no lint.
    pub fn passes(&self, strict: bool) -> bool {
        self.version_increased != Some(false) && (!strict || self.lints.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(version: u64) -> Config {
        Config::from_toml(&format!("version = {version}\nissuer = \"i\"\n[projects.demo]\n"), Path::new(".")).unwrap()
    }

    #[test]
    fn a_review_passes_only_with_a_raised_version() {
        assert!(Review::of(None, &config(1)).passes(false));
        assert!(Review::of(Some(&config(1)), &config(2)).passes(false));
        let same = Review::of(Some(&config(2)), &config(2));
        assert_eq!(same.version_increased, Some(false));
        assert!(!same.passes(false));
        assert!(!Review::of(Some(&config(3)), &config(2)).passes(false));
    }
}
