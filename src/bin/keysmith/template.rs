//! `keysmith template`: incident response on a template. `revoke-before` sets its
//! `revoke_issued_before` (default: now) in `config.toml`, edited in place with `version`
//! bumped, so every key minted from it earlier is refused by the issuer and, through the signed
//! revocation list, by every verifier.

use crate::cut_off::{At, set_cut_off};
use keysmith::config::CutOff;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The config file.
    #[arg(long, global = true, env = "KEYSMITH_CONFIG", default_value = "config.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Void every key minted from the template before a moment (default now); keys minted
    /// afterwards work.
    RevokeBefore {
        /// The template id.
        id: String,
        /// The cut-off: `now` (the default) or an RFC 3339 date-time not in the future.
        #[arg(long, default_value = "now")]
        at: At,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::RevokeBefore { id, at } => set_cut_off(&args.config, CutOff::Template, &id, at),
    }
}
