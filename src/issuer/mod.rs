//! The issuer: minting short-lived keys, creating and authenticating permanent API keys,
//! and signing revocation lists. No HTTP here; the server and the CLI call [`Issuer`].

mod api_keys;
pub(crate) mod discovery;
mod error;
pub(crate) mod geoip;

pub use geoip::{GeoIp, GeoIpError};
mod mint;
mod revocations;

pub use api_keys::{ApiKeyCreation, AuditSink, CreatedApiKey, NewApiKey};
pub use discovery::AuthorizationServerMetadata;
pub use error::{LoadError, MintError};
pub use mint::{Caller, MintRequest, Minted};
pub use revocations::SignedRevocations;

use crate::config::Config;
use crate::keys::store::Keyring;
use crate::token::jwk::KeySet;
use crate::verify::Verifier;
use revocations::ConfigRevocations;
use std::sync::Arc;

/// Mints keys from a validated config with a signing keyring.
#[derive(Debug, Clone)]
pub struct Issuer {
    config: Arc<Config>,
    keys: Arc<Keyring>,
    geoip: Option<Arc<GeoIp>>,
    /// Checks permanent keys presented to this issuer: its own keys, every project, and the
    /// revocations of its own config.
    api_keys: Verifier,
}

impl Issuer {
    /// An issuer over `config` and `keys`, opening `server.geoip_database` when configured.
    ///
    /// # Errors
    ///
    /// [`GeoIpError`] when the configured database cannot be opened (fail closed: a config
    /// that restricts countries never runs without its database).
    pub fn new(config: Config, keys: Keyring) -> Result<Self, GeoIpError> {
        let geoip = config.server.geoip_database.as_deref().map(GeoIp::open).transpose()?;
        Ok(Self::from_parts(config, keys, geoip))
    }

    /// Loads everything an issuer needs from disk: the config at `config`, the keys in
    /// `keys_dir` and the config's GeoIP database. Used at start and on every reload, so a
    /// reload re-reads all three.
    ///
    /// # Errors
    ///
    /// A [`LoadError`] naming what failed; nothing is half-loaded.
    pub fn load(config: &std::path::Path, keys_dir: &std::path::Path) -> Result<Self, LoadError> {
        let config = Config::load(config)?;
        let keys = Keyring::load_dir(keys_dir)?;
        Ok(Self::new(config, keys)?)
    }

    /// An issuer from already loaded parts.
    pub fn from_parts(config: Config, keys: Keyring, geoip: Option<GeoIp>) -> Self {
        let key_set = KeySet::from_keys(keys.published().iter().copied());
        let mut projects = config.projects.keys();
        let first = projects.next().cloned().unwrap_or_default();
        let api_keys = projects.fold(Verifier::new(key_set, &config.issuer, first), |v, p| v.also_audience(p));
        // The issuer's own config is the truth about what is revoked: no signed list needed.
        let api_keys = api_keys.revocation_source(Arc::new(Arc::new(ConfigRevocations::new(&config))));
        Self { config: Arc::new(config), keys: Arc::new(keys), geoip: geoip.map(Arc::new), api_keys }
    }

    /// The config in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The signing keys.
    pub fn keyring(&self) -> &Keyring {
        &self.keys
    }

    /// A verifier for this issuer's tokens to `project`, using its published keys.
    pub fn verifier(&self, project: &str) -> Verifier {
        Verifier::new(KeySet::from_keys(self.keys.published().iter().copied()), &self.config.issuer, project)
            .scope_rules(self.config.catalog.rules().clone())
    }
}

#[cfg(test)]
mod tests;

/// Reads a request body that must be one JSON object of known fields: the one place the
/// rule is written, for every body the issuer accepts.
///
/// # Errors
///
/// [`MintError::InvalidBody`] for anything else (serde alone would also read a struct from a
/// JSON array).
pub fn json_object<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, MintError> {
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(MintError::InvalidBody("the body must be a JSON object".into()));
    }
    serde_json::from_slice(body).map_err(|e| MintError::InvalidBody(e.to_string()))
}

/// The signing key under the algorithm name the config chooses (`jws_alg`).
struct Named<'a> {
    key: &'a crate::keys::SigningKey,
    alg: crate::token::jws::JwsAlg,
}

impl crate::token::jws::Signer for Named<'_> {
    fn kid(&self) -> &str {
        self.key.kid()
    }

    fn sign(&self, signing_input: &[u8]) -> [u8; 64] {
        crate::token::jws::Signer::sign(self.key, signing_input)
    }

    fn alg(&self) -> crate::token::jws::JwsAlg {
        self.alg
    }
}

impl Issuer {
    /// Signs `claims` as a token of type `typ` with the signing key, under the configured
    /// algorithm name.
    ///
    /// # Errors
    ///
    /// [`EncodeError`](crate::token::jws::EncodeError) when the claims do not serialise.
    fn sign(
        &self,
        typ: crate::token::jws::TokenType,
        claims: &impl serde::Serialize,
    ) -> Result<String, crate::token::jws::EncodeError> {
        let signer = Named { key: self.keys.signing(), alg: self.config.jws_alg };
        crate::token::jws::encode(&signer, typ, claims)
    }

    /// The JWKS this issuer publishes: its keys, each with `alg` naming `jws_alg` unless
    /// `jwks_alg_member` is off.
    pub fn jwks(&self) -> crate::token::jwk::Jwks {
        let mut jwks = self.keys.jwks();
        let alg = self.config.jwks_alg_member.then(|| self.config.jws_alg.as_str().to_owned());
        for key in &mut jwks.keys {
            key.alg.clone_from(&alg);
        }
        jwks
    }
}
