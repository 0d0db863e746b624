//! Signing keys: the key directory on disk, the keys in memory, and the rotation lifecycle
//! (next → active → retired) as pure transitions over the record `keyring.toml`.

pub(crate) mod dir;
pub(crate) mod error;
pub(crate) mod lifecycle;
pub(crate) mod pem;
pub(crate) mod signing;
pub(crate) mod store;

pub use dir::{create_private_dir, generate_key_file};
pub use error::{KeyError, LifecycleError};
pub use lifecycle::{KeyRecord, KeyState, KeyringState, Policy, Promotion, RETIRE_LEEWAY, Rotation, STATE_FILE};
pub use signing::SigningKey;
pub use store::{Deferred, Keyring};
