//! The scope parser and matcher on arbitrary input: parse, match, cover, never panic; and a
//! scope that parses always prints back to the same text.
#![no_main]

use keysmith::DirScope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: (&str, &str)| {
    let (scope, path) = data;
    let _ = keysmith::scope::normalise_path(path);
    if let Ok(s) = DirScope::parse(scope) {
        assert_eq!(s.to_string(), scope);
        let _ = s.allows(path);
        if let Ok(other) = DirScope::parse(path) {
            // Soundness of covers: whatever `other` allows, `s` allows when it covers it.
            if s.covers(&other) {
                if let Ok(normalised) = keysmith::scope::normalise_path(path) {
                    if other.allows_normalised(&normalised) {
                        assert!(s.allows_normalised(&normalised));
                    }
                }
            }
        }
    }
    let _ = keysmith::ip::IpRange::parse(scope);
});
