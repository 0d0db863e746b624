//! What a config edit changes about access, and lints for risky settings. Used by
//! `keysmith check --previous` so a reviewer sees the effect of a diff, not just its text.

mod diff;
mod kind;
mod lint;
mod report;

pub use diff::{Change, diff, rule_paths};
pub use kind::ChangeKind;
pub use lint::{Lint, lint};
pub use report::Review;
