//! The operations the `keysmith` CLI runs, in the manner of cargo's `ops`: each takes its
//! inputs, does the whole job (locking, ordering, saving), and returns what happened for the
//! command to print. The binary only parses arguments and prints.

mod keys;

pub use keys::{AdminError, KeyDirectory, KeygenOutcome, Removal, RotateOutcome, keygen};
