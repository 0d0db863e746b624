//! Why an administrative operation failed.

use crate::config::{ConfigError, EditError};
use crate::issuer::{GeoIpError, MintError};
use crate::keys::{KeyError, LifecycleError};
use std::path::PathBuf;

/// Why an administrative operation failed. Nothing was changed unless a variant says so.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The lifecycle refused the change (nothing changed).
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    /// A key file, the key directory or the lifecycle record could not be read or written.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The config could not be read or does not validate.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A lock could not be taken, or the config edit was refused or could not be written.
    #[error(transparent)]
    Edit(#[from] EditError),
    /// The config's GeoIP database could not be opened.
    #[error(transparent)]
    GeoIp(#[from] GeoIpError),
    /// The issuer refused to mint or to create the key.
    #[error(transparent)]
    Mint(#[from] MintError),
    /// A permanent API key's expiry is not in the future.
    #[error("the expiry must be in the future")]
    ExpiryNotInFuture,
    /// The config's version changed between signing a key and recording it.
    #[error("the config version moved during the edit")]
    VersionMoved,
    /// A removed key's file could not be deleted (the record no longer lists it).
    #[error("{}: {source}", .path.display())]
    Delete {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}
