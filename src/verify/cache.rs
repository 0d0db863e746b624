//! The verified-token cache: a [`Verifier`](crate::Verifier) option that skips the signature
//! check for a token it has already verified.
//!
//! The same key arrives with every request of a session, and the Ed25519 check dominates the
//! cost of verifying it. The cache keeps, for a bounded number of tokens, what verification
//! produced (the [`Grant`] or [`ApiKeyGrant`]), keyed by a SHA-256 of the whole token: no
//! token text is stored. Only what cannot change for a given token is cached (the signature,
//! the header and the claims' shape); everything time- or list-dependent is checked again on
//! every hit by the same functions a miss uses: `exp`, `nbf`, `iat`, and the revocations in
//! force at that moment. A change of the trusted key set empties the cache.

use super::grant::{ApiKeyGrant, Grant};
use crate::token::jwk::KeySet;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// A SHA-256 of the token with a one-byte domain tag (access token or permanent key), so the
/// same text can never be served as the other kind.
pub(super) type CacheKey = [u8; 32];

/// What verifying a token produced.
#[derive(Clone)]
pub(super) enum Cached {
    /// A verified access token.
    Access(Box<Grant>),
    /// A verified permanent key.
    ApiKey(Box<ApiKeyGrant>),
}

/// The cache of one verifier and its clones.
pub(super) struct TokenCache {
    capacity: usize,
    /// The key set the entries were verified with; another set empties the cache.
    keys: Option<Arc<KeySet>>,
    entries: HashMap<CacheKey, (u64, Cached)>,
    /// Insertion order, for evicting the oldest entry; `(key, sequence)` pairs whose sequence
    /// no longer matches the entry are stale and skipped.
    order: VecDeque<(CacheKey, u64)>,
    next: u64,
    /// Lookups that found the token (counted under the lock `get` already holds).
    hits: u64,
    /// Lookups that did not.
    misses: u64,
}

impl TokenCache {
    /// An empty cache holding at most `capacity` tokens.
    pub(super) fn new(capacity: usize) -> Self {
        Self { capacity, keys: None, entries: HashMap::new(), order: VecDeque::new(), next: 0, hits: 0, misses: 0 }
    }

    /// The most tokens held.
    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The number of tokens held.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The key for `token` of the kind tagged `tag`.
    pub(super) fn key(tag: u8, token: &str) -> CacheKey {
        let mut hash = Sha256::new();
        hash.update([tag]);
        hash.update(token.as_bytes());
        hash.finalize().into()
    }

    /// Empties the cache when `keys` is not the set its entries were verified with.
    fn follow(&mut self, keys: &Arc<KeySet>) {
        if !self.keys.as_ref().is_some_and(|held| Arc::ptr_eq(held, keys)) {
            self.entries.clear();
            self.order.clear();
            self.keys = Some(Arc::clone(keys));
        }
    }

    /// What was verified for `key` under `keys`, if held.
    pub(super) fn get(&mut self, keys: &Arc<KeySet>, key: &CacheKey) -> Option<Cached> {
        self.follow(keys);
        let found = self.entries.get(key).map(|(_, cached)| cached.clone());
        if found.is_some() {
            self.hits = self.hits.saturating_add(1);
        } else {
            self.misses = self.misses.saturating_add(1);
        }
        found
    }

    /// Lookups so far that found the token, and that did not.
    pub(super) fn lookups(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }

    /// Remembers what was verified for `key` under `keys`, evicting the oldest entry when full.
    pub(super) fn insert(&mut self, keys: &Arc<KeySet>, key: CacheKey, cached: Cached) {
        if self.capacity == 0 {
            return;
        }
        self.follow(keys);
        while self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            let Some((old, seq)) = self.order.pop_front() else { break };
            if self.entries.get(&old).is_some_and(|(s, _)| *s == seq) {
                self.entries.remove(&old);
            }
        }
        let seq = self.next;
        self.next = self.next.wrapping_add(1);
        self.entries.insert(key, (seq, cached));
        self.order.push_back((key, seq));
        // Stale order entries (replaced keys) are bounded by compacting now and then.
        if self.order.len() > self.capacity.saturating_mul(2) {
            let entries = &self.entries;
            self.order.retain(|(k, s)| entries.get(k).is_some_and(|(held, _)| held == s));
        }
    }

    /// Forgets `key` (its token was refused on a hit).
    pub(super) fn remove(&mut self, key: &CacheKey) {
        self.entries.remove(key);
    }
}
