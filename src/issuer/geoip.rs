//! Country lookup in a MaxMind DB file.
//!
//! Two layouts are understood: MaxMind GeoLite2/GeoIP2 Country (`country.iso_code`) and the
//! CC0 ip-location-db country databases (`country_code`).

use serde::Deserialize;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Why the GeoIP database could not be opened or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GeoIpError {
    /// The file could not be opened or is not a MaxMind DB.
    #[error("{path}: cannot open GeoIP database: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// What went wrong.
        source: maxminddb::MaxMindDbError,
    },
    /// A lookup failed (a corrupt database).
    #[error("GeoIP lookup failed: {0}")]
    Lookup(#[source] maxminddb::MaxMindDbError),
}

#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    country: Option<Country<'a>>,
    country_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Country<'a> {
    iso_code: Option<&'a str>,
}

/// A country database, read into memory once.
pub struct GeoIp {
    reader: maxminddb::Reader<Vec<u8>>,
    path: PathBuf,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp").field("path", &self.path).finish_non_exhaustive()
    }
}

impl GeoIp {
    /// Reads the database at `path`.
    ///
    /// # Errors
    ///
    /// [`GeoIpError::Open`] when the file is missing or not a MaxMind DB.
    pub fn open(path: &Path) -> Result<Self, GeoIpError> {
        let reader = maxminddb::Reader::open_readfile(path)
            .map_err(|source| GeoIpError::Open { path: path.to_owned(), source })?;
        Ok(Self { reader, path: path.to_owned() })
    }

    /// The ISO 3166-1 alpha-2 country of `ip`, upper case, or `None` when the database does
    /// not know the address.
    ///
    /// # Errors
    ///
    /// [`GeoIpError::Lookup`] when the database is corrupt.
    pub fn country(&self, ip: IpAddr) -> Result<Option<String>, GeoIpError> {
        let lookup = self.reader.lookup(ip.to_canonical()).map_err(GeoIpError::Lookup)?;
        let record: Option<Record<'_>> = lookup.decode().map_err(GeoIpError::Lookup)?;
        let code = record.and_then(|r| r.country.and_then(|c| c.iso_code).or(r.country_code));
        Ok(code.filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic())).map(str::to_ascii_uppercase))
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unopenable_database_keeps_its_cause() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("GeoLite2-Country.mmdb");
        std::fs::write(&path, b"not a database").unwrap();
        let err = GeoIp::open(&path).unwrap_err();
        assert!(std::error::Error::source(&err).is_some(), "{err:?}");
    }
}
