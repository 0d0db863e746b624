//! The shared step of `template revoke-before` and `apikey revoke-before`: set one entry's
//! `revoke_issued_before` and write the config.

use keysmith::config::CutOff;
use std::path::Path;
use std::process::ExitCode;

/// A cut-off given on the command line: `now` or an RFC 3339 date-time.
#[derive(Clone, Debug)]
pub struct At(Option<chrono::DateTime<chrono::FixedOffset>>);

impl std::str::FromStr for At {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "now" {
            return Ok(Self(None));
        }
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| Self(Some(t)))
            .map_err(|e| format!("{s:?} is neither `now` nor an RFC 3339 date-time ({e})"))
    }
}

/// Sets the cut-off of entry `id` and writes the config; exit 1 (nothing written) when the edit
/// is refused.
pub fn set_cut_off(path: &Path, kind: CutOff, id: &str, at: At) -> anyhow::Result<ExitCode> {
    let at = at.0.unwrap_or_else(|| chrono::Utc::now().fixed_offset());
    match keysmith::admin::set_cut_off(path, kind, id, at) {
        Ok(version) => {
            let shown = at.with_timezone(&chrono::Utc).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            println!("{id}: keys issued before {shown} are revoked (config version {version})");
            println!(
                "a running service picks the change up by itself; verifiers refuse them once they hold a list signed after it (within revocations_max_age)"
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            eprintln!("nothing was changed");
            Ok(ExitCode::FAILURE)
        }
    }
}
