//! Where a verifier gets its keys and learns what is revoked.
//!
//! The verifier asks a [`RevocationSource`] for the [`Revocations`] in force, once per token,
//! and never asks who provides them. By default it is the signed list the verifier itself
//! checked and holds ([`Verifier::set_revocations`](crate::Verifier::set_revocations)); a
//! process that owns the revocation facts (the issuer, checking permanent keys presented to it
//! against its own config) plugs in its own source with
//! [`Verifier::revocation_source`](crate::Verifier::revocation_source).

use crate::token::jwk::KeySet;
use crate::verify::revocation::RevocationList;
use std::sync::Arc;
use std::time::Duration;

/// One consistent view of what is revoked.
pub trait Revocations: Send + Sync {
    /// Whether the view may still be used at `now` (seconds since the Unix epoch). Permanent
    /// keys are refused while it is not.
    fn is_fresh(&self, now: u64) -> bool;
    /// Whether the permanent key `id` is revoked.
    fn is_api_key_revoked(&self, id: &str) -> bool;
    /// Whether the template `id` is revoked.
    fn is_template_revoked(&self, id: &str) -> bool;
    /// Whether the permanent key `id` is recorded and active. A permanent key is accepted only
    /// while the root of its `created_by` chain (the key itself when it has none) is.
    fn is_api_key_active(&self, id: &str) -> bool;
    /// The cut-off of template `id`: access keys minted from it earlier are refused.
    fn template_issued_before(&self, id: &str) -> Option<u64>;
    /// The cut-off of permanent key `id`: access keys minted through it earlier are refused.
    fn api_key_issued_before(&self, id: &str) -> Option<u64>;
}

/// Provides the [`Revocations`] in force, asked once per verified token.
pub trait RevocationSource: Send + Sync {
    /// The revocations in force, or `None` when the source holds none (permanent keys are then
    /// refused, fail closed).
    fn current(&self) -> Option<Arc<dyn Revocations>>;
}

impl Revocations for RevocationList {
    fn is_fresh(&self, now: u64) -> bool {
        RevocationList::is_fresh(self, now)
    }

    fn is_api_key_revoked(&self, id: &str) -> bool {
        RevocationList::is_api_key_revoked(self, id)
    }

    fn is_template_revoked(&self, id: &str) -> bool {
        RevocationList::is_template_revoked(self, id)
    }

    fn is_api_key_active(&self, id: &str) -> bool {
        RevocationList::is_api_key_active(self, id)
    }

    fn template_issued_before(&self, id: &str) -> Option<u64> {
        self.claims().templates_issued_before.get(id).copied()
    }

    fn api_key_issued_before(&self, id: &str) -> Option<u64> {
        self.claims().api_keys_issued_before.get(id).copied()
    }
}

/// Provides the keys a verifier trusts, asked once per verified token, in the spirit of
/// biscuit's root-key provider. By default a verifier holds a fixed [`KeySet`]
/// ([`Verifier::set_keys`](crate::Verifier::set_keys)); a refresher that keeps a JWKS current
/// plugs in its own source with [`Verifier::set_key_source`](crate::Verifier::set_key_source).
pub trait KeySource: Send + Sync {
    /// The keys trusted now.
    fn key_set(&self) -> Arc<KeySet>;
    /// Told when a token names a `kid` that [`KeySource::key_set`] lacks, so a source that
    /// fetches keys may fetch early. It must throttle: forged `kid`s are free to send.
    fn unknown_kid(&self) {}
    /// Asked, when the verifier allows waiting ([`Verifier::unknown_kid_wait`](crate::Verifier::unknown_kid_wait)),
    /// to fetch the keys early and wait at most `wait` for them; whether new keys were loaded,
    /// after which the token is checked once more. A fixed source has nothing to fetch: `false`.
    fn refetch(&self, wait: Duration) -> bool {
        let _ = wait;
        false
    }
    /// As [`KeySource::refetch`], for a token naming `kid` (read from its unverified header).
    /// A source may answer `false` at once when waiting cannot help: a fetch that completed a
    /// moment ago did not bring `kid`, or enough callers are waiting already. Defaults to
    /// [`KeySource::refetch`].
    fn refetch_kid(&self, kid: &str, wait: Duration) -> bool {
        let _ = kid;
        self.refetch(wait)
    }
}

/// A fixed key set: the default source.
pub(crate) struct FixedKeys(pub(crate) Arc<KeySet>);

impl KeySource for FixedKeys {
    fn key_set(&self) -> Arc<KeySet> {
        Arc::clone(&self.0)
    }
}
