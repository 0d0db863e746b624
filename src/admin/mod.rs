//! The operations the `keysmith` CLI runs, in the manner of cargo's `ops`: each takes its
//! inputs, does the whole job (locking, ordering, saving), and returns what happened for the
//! command to print. The binary only parses arguments and prints.

mod api_keys;
mod cut_off;
mod error;
mod keys;
mod mint;

pub use api_keys::{
    ActivityChange, ApiKeySpec, ListedApiKey, RecordedApiKey, create_api_key, list_api_keys, set_api_keys_active,
};
pub use cut_off::set_cut_off;
pub use error::AdminError;
pub use keys::{KeyDirectory, KeyListing, KeygenOutcome, Removal, RotateOutcome, keygen};
pub use mint::mint;
