//! `keysmith keygen`.

use keysmith::admin::KeygenOutcome;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The directory of signing keys (created 0700 if missing).
    #[arg(long, env = "KEYSMITH_KEYS", default_value = "keys")]
    keys: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match keysmith::admin::keygen(&args.keys, chrono::Utc::now())? {
        KeygenOutcome::Next { kid } => {
            println!("generated next key {kid}; `keysmith keys rotate` makes it active once verifiers have it");
        }
        KeygenOutcome::File { path, kid } => {
            println!("generated {} (kid {kid})", path.display());
            println!("the newest key in {} signs; all keys there are published", args.keys.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
