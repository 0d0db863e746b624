//! Pure authorisation rules: media types of uploads, directory scopes (`upload_dirs`, `list_dirs`; not the OAuth
//! `scope` claim, which lists permissions), IP ranges, and which directory scope each
//! permission is checked against. No I/O, no clock, no keys; property-tested.

pub(crate) mod dir_scope;
pub(crate) mod ip;
pub(crate) mod media;
pub(crate) mod scope_rules;
