//! Risky settings in one config.

use crate::config::{Access, Config};
use crate::policy::ip::IpRules;
use serde::Serialize;

/// A risky setting in one config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lint {
    /// A stable code, such as `public_delete`.
    pub code: &'static str,
    /// The TOML path of the setting.
    pub path: String,
    /// What is risky and what to do instead.
    pub message: String,
}

/// Whether a permission only reads (by the naming conventions of the Scaleflex and Immich
/// vocabularies: `*_LIST`, `*_READ`, `*_FETCH`, `*.read`, `*.view`, `*.download`).
fn is_read_only(permission: &str) -> bool {
    let p = permission.to_ascii_lowercase();
    ["_list", "_read", "_fetch", ".read", ".view", ".download", "list", "read"].iter().any(|s| p.ends_with(s))
}

/// Whether the ranges allow at least half of the IPv4 or IPv6 address space (`0.0.0.0/0`, or
/// `0.0.0.0/1` with `128.0.0.0/1`, …).
fn covers_much_of_the_internet(ips: &IpRules) -> bool {
    let (mut v4, mut v6) = (0f64, 0f64);
    for r in ips.ranges() {
        match r.net() {
            ipnet::IpNet::V4(n) => v4 += 2f64.powi(-i32::from(n.prefix_len())),
            ipnet::IpNet::V6(n) => v6 += 2f64.powi(-i32::from(n.prefix_len())),
        }
    }
    v4 >= 0.5 || v6 >= 0.5
}

/// Risky settings: a public template granting deletion or the manage permission, `0.0.0.0/0`
/// or `::/0` on a template that writes, lifetimes over a day, uploads allowed everywhere.
pub fn lint(config: &Config) -> Vec<Lint> {
    let mut lints = Vec::new();
    let rules = config.catalog.rules();
    for (i, t) in config.templates().iter().enumerate() {
        let path = format!("templates[{i}]");
        let name = &t.id;
        let writes: Vec<&str> = t.permissions.iter().filter(|p| !is_read_only(p)).map(String::as_str).collect();
        if t.access == Access::Public {
            let deletes: Vec<&str> = t
                .permissions
                .iter()
                .filter(|p| p.to_ascii_lowercase().contains("delete"))
                .map(String::as_str)
                .collect();
            if !deletes.is_empty() {
                lints.push(Lint { code: "public_delete", path: format!("{path}.permissions"), message: format!("public template {name:?} grants deletion ({}); require an API key (access = \"api_key\") or drop it", deletes.join(", ")) });
            }
            if let Some(manage) = config.catalog.manage_permission().filter(|m| t.permissions.iter().any(|p| p == m)) {
                lints.push(Lint {
                    code: "public_access_manage",
                    path: format!("{path}.permissions"),
                    message: format!("public template {name:?} grants {manage}, which manages access itself"),
                });
            }
        }
        let open = covers_much_of_the_internet(&t.ips);
        if open && !writes.is_empty() {
            lints.push(Lint {
                code: "anywhere_with_writes",
                path: format!("{path}.restrict.whitelist_ip_ranges"),
                message: format!(
                    "template {name:?} grants writes ({}) to callers from any address; restrict whitelist_ip_ranges",
                    writes.join(", ")
                ),
            });
        }
        if t.expiration_duration > 86_400 {
            lints.push(Lint {
                code: "long_expiration",
                path: format!("{path}.expiration_duration"),
                message: format!("template {name:?} mints keys valid for {} s, more than a day", t.expiration_duration),
            });
        }
        let uploads =
            t.permissions.iter().any(|p| rules.kind(p) == Some(crate::policy::scope_rules::ScopeKind::Upload));
        if uploads && t.upload_dirs.is_everything() {
            lints.push(Lint {
                code: "upload_everywhere",
                path: format!("{path}.upload.dir_scope"),
                message: format!(
                    "template {name:?} allows uploads and writes in every directory (/*); set upload.dir_scope"
                ),
            });
        }
    }
    lints
}
