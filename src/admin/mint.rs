//! Minting from the command line: the config and keys loaded from disk, the signer chosen as
//! the server chooses it.

use crate::admin::AdminError;
use crate::config::Config;
use crate::issuer::{Caller, Issuer, MintRequest, Minted};
use crate::keys::Keyring;
use chrono::{DateTime, Utc};
use std::path::Path;

/// Mints an access token from `template` of `project` at `now`, with the config at `config`
/// and the keys in `keys_dir`; the key that signs is the one a server would sign with at
/// `now` (see [`Keyring::load_to_sign`]).
///
/// # Errors
///
/// [`AdminError::Mint`] when the issuer refuses the request; a config, key or GeoIP failure.
pub fn mint(
    config: &Path,
    keys_dir: &Path,
    project: &str,
    template: &str,
    request: &MintRequest,
    caller: Caller<'_>,
    now: DateTime<Utc>,
) -> Result<Minted, AdminError> {
    let config = Config::load(config)?;
    let max_age = chrono::Duration::seconds(i64::from(config.jwks_max_age));
    let (keys, _) = Keyring::load_to_sign(keys_dir, max_age, now)?;
    let issuer = Issuer::new(config, keys)?;
    Ok(issuer.mint(project, template, request, caller, now.into())?)
}
