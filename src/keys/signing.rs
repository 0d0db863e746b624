//! An Ed25519 signing key, expanded once at load (SHA-512 of the seed), so minting a token
//! costs one signature and no key parsing. Private key material zeroizes on drop and never
//! prints.

use crate::token::jwk::thumbprint;
use crate::token::jws::{self, EncodeError, Signer, TokenType};
use ed25519_dalek::hazmat::{ExpandedSecretKey, raw_sign};
use ed25519_dalek::{SigningKey as DalekSigningKey, VerifyingKey};
use sha2::Sha512;
use std::fmt;

/// A private Ed25519 key, pre-expanded for signing.
pub struct SigningKey {
    kid: String,
    expanded: ExpandedSecretKey,
    public: VerifyingKey,
}

impl SigningKey {
    /// Wraps a dalek key, expanding it once.
    pub fn new(key: &DalekSigningKey) -> Self {
        let public = key.verifying_key();
        let kid = thumbprint(&public);
        let expanded = ExpandedSecretKey::from(key.as_bytes());
        Self { kid, expanded, public }
    }

    /// Generates a fresh key from the operating system's random source.
    pub fn generate() -> Self {
        Self::new(&DalekSigningKey::generate(&mut rand_core::OsRng))
    }

    /// The key id (RFC 7638 thumbprint).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.public
    }

    /// Signs `claims` as a compact JWS of type `typ` with this key.
    ///
    /// # Errors
    ///
    /// [`EncodeError`] when the claims do not serialise; nothing is signed then.
    pub fn sign(&self, typ: TokenType, claims: &impl serde::Serialize) -> Result<String, EncodeError> {
        jws::encode(self, typ, claims)
    }

    /// Signs an already serialised JSON payload as an access token (`at+jwt`).
    ///
    /// # Errors
    ///
    /// [`EncodeError`] when the header does not serialise.
    pub fn sign_access_token(&self, payload_json: &[u8]) -> Result<String, EncodeError> {
        Ok(jws::sign_compact(self, &jws::encode_header(TokenType::Access, &self.kid)?, payload_json))
    }
}

impl Signer for SigningKey {
    fn kid(&self) -> &str {
        &self.kid
    }

    fn sign(&self, signing_input: &[u8]) -> [u8; 64] {
        raw_sign::<Sha512>(&self.expanded, signing_input, &self.public).to_bytes()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).field("secret", &"[redacted]").finish()
    }
}
