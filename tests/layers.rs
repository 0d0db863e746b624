//! The crate's layering, checked mechanically from the source: each layer (a directory under
//! `src/`) uses only the layers below it, and only `lib.rs` looks at cargo features.
//!
//! Lowest first: token → policy → verify → refresh → config → keys → issuer → admin, review →
//! server. See `DESIGN.md`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

use std::path::{Path, PathBuf};

/// Each layer and its rank; a layer may use layers of a lower rank only.
const LAYERS: &[(&str, u8)] = &[
    ("token", 0),
    ("policy", 1),
    ("verify", 2),
    ("refresh", 3),
    ("limits", 3),
    ("enforce", 4),
    ("config", 4),
    ("keys", 5),
    ("issuer", 6),
    ("admin", 7),
    ("review", 7),
    ("server", 8),
    ("gate", 9),
];

fn rank(layer: &str) -> Option<u8> {
    LAYERS.iter().find(|(name, _)| *name == layer).map(|(_, rank)| *rank)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The layers a file names through `crate::<layer>`, in `use` items and in paths alike.
fn used_layers(text: &str) -> Vec<String> {
    let mut used = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        // `keysmith::crate::` cannot occur; skip `$crate::` in macros.
        if text[..i].ends_with('$') {
            continue;
        }
        let rest = &text[i + "crate::".len()..];
        let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if !name.is_empty() {
            used.push(name);
        }
    }
    // `use crate::{a, b}` groups.
    for (i, _) in text.match_indices("crate::{") {
        let rest = &text[i + "crate::{".len()..];
        let group = &rest[..rest.find('}').unwrap_or(rest.len())];
        used.extend(group.split(',').filter_map(|item| {
            let name: String = item.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            (!name.is_empty()).then_some(name)
        }));
    }
    used
}

#[test]
fn each_layer_uses_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let mut parts = relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned());
        let top = parts.next().unwrap();
        if top == "bin" || top == "lib.rs" {
            continue;
        }
        let Some(own) = rank(&top) else {
            violations.push(format!("{}: not inside a layer directory", relative.display()));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for used in used_layers(&text) {
            match rank(&used) {
                Some(_) if used == top => {}
                Some(r) if r < own => {}
                Some(_) => violations.push(format!("{} ({top}) uses crate::{used}", relative.display())),
                // Facade re-exports (`crate::Verifier`) in doc links are fine; in code they hide
                // a layer, so they are refused outside doc comments.
                None => {
                    let in_code = text.lines().any(|line| {
                        let line = line.trim_start();
                        !line.starts_with("//") && line.contains(&format!("crate::{used}"))
                    });
                    if in_code {
                        violations.push(format!("{}: uses the facade path crate::{used}", relative.display()));
                    }
                }
            }
        }
    }
    violations.sort();
    violations.dedup();
    assert!(violations.is_empty(), "layering violations:\n{}", violations.join("\n"));
}

#[test]
fn only_lib_rs_looks_at_cargo_features() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let offenders: Vec<_> = files
        .iter()
        .filter(|f| !f.ends_with("src/lib.rs") && !f.starts_with(src.join("bin")))
        .filter(|f| std::fs::read_to_string(f).unwrap().contains("feature = \""))
        .map(|f| f.strip_prefix(&src).unwrap().display().to_string())
        .collect();
    assert!(offenders.is_empty(), "cfg(feature) outside lib.rs: {offenders:?}");
}

#[test]
fn the_checker_sees_violations() {
    assert_eq!(used_layers("use crate::server::x;\nlet y = crate::issuer::Issuer::load();"), ["server", "issuer"]);
    assert_eq!(used_layers("use crate::{token, policy::scope};"), ["token", "policy"]);
}
