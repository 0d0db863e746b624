//! `keysmith keygen`.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The directory of signing keys (created 0700 if missing).
    #[arg(long, env = "KEYSMITH_KEYS", default_value = "keys")]
    keys: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // With a lifecycle record, a new key joins as next: published now, signing after a rotation.
    keysmith::keys::create_private_dir(&args.keys)?;
    // The same lock `keysmith keys` takes, so a key is never written beside a record being saved.
    let _lock = keysmith::config::lock(&args.keys.join(keysmith::keys::STATE_FILE))?;
    if let Some(mut state) = keysmith::keys::KeyringState::load(&args.keys)? {
        let kid = state.add_next(&args.keys, chrono::Utc::now())?;
        state.save(&args.keys)?;
        println!("generated next key {kid}; `keysmith keys rotate` makes it active once verifiers have it");
        return Ok(ExitCode::SUCCESS);
    }
    let (path, kid) = keysmith::keys::generate_key_file(&args.keys)?;
    println!("generated {} (kid {kid})", path.display());
    println!("the newest key in {} signs; all keys there are published", args.keys.display());
    Ok(ExitCode::SUCCESS)
}
