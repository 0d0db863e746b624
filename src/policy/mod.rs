//! Pure authorisation rules: directory scopes, IP ranges, and which directory scope each
//! permission is checked against. No I/O, no clock, no keys; property-tested.

pub mod catalog;
pub mod ip;
pub mod scope;
