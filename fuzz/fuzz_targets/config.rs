//! The config loader on arbitrary text: parse and validate, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(config) = keysmith::Config::from_toml(text, Path::new("/")) {
            let _ = keysmith::review::lint(&config);
        }
    }
});
