//! The permission catalogue and which directory scope each permission checks.
//!
//! By default the catalogue is the 31 Scaleflex DAM permissions (`OBJECTS_LIST` …
//! `ACCESS_MANAGE`). A deployment may declare its own vocabulary instead (for example
//! Immich-style `asset.read`); it then also says which of its permissions are checked against
//! the upload scope and which against the listing scope.

use std::collections::HashMap;

/// The Scaleflex permissions as constants, so a misspelt permission is a compile error:
/// `grant.authorize(permission::FILE_UPLOAD, …)`. The string APIs take these or any `&str`.
pub mod permission {
    /// `OBJECTS_LIST`.
    pub const OBJECTS_LIST: &str = "OBJECTS_LIST";
    /// `OBJECTS_FETCH`.
    pub const OBJECTS_FETCH: &str = "OBJECTS_FETCH";
    /// `FILE_UPLOAD`.
    pub const FILE_UPLOAD: &str = "FILE_UPLOAD";
    /// `FILE_META_CREATE`.
    pub const FILE_META_CREATE: &str = "FILE_META_CREATE";
    /// `FILE_META_CHANGE`.
    pub const FILE_META_CHANGE: &str = "FILE_META_CHANGE";
    /// `FILE_RENAME`.
    pub const FILE_RENAME: &str = "FILE_RENAME";
    /// `FILE_MOVE`.
    pub const FILE_MOVE: &str = "FILE_MOVE";
    /// `FILE_DELETE`.
    pub const FILE_DELETE: &str = "FILE_DELETE";
    /// `FILE_SET_VISIBILITY`.
    pub const FILE_SET_VISIBILITY: &str = "FILE_SET_VISIBILITY";
    /// `FILE_LABEL_CHANGE`.
    pub const FILE_LABEL_CHANGE: &str = "FILE_LABEL_CHANGE";
    /// `FILE_IMAGE_EDITOR`.
    pub const FILE_IMAGE_EDITOR: &str = "FILE_IMAGE_EDITOR";
    /// `DIR_CREATE`.
    pub const DIR_CREATE: &str = "DIR_CREATE";
    /// `DIR_RENAME`.
    pub const DIR_RENAME: &str = "DIR_RENAME";
    /// `DIR_META_CHANGE`.
    pub const DIR_META_CHANGE: &str = "DIR_META_CHANGE";
    /// `DIR_MOVE`.
    pub const DIR_MOVE: &str = "DIR_MOVE";
    /// `DIR_DELETE`.
    pub const DIR_DELETE: &str = "DIR_DELETE";
    /// `DIR_SET_VISIBILITY`.
    pub const DIR_SET_VISIBILITY: &str = "DIR_SET_VISIBILITY";
    /// `CONFIG_CHANGE`.
    pub const CONFIG_CHANGE: &str = "CONFIG_CHANGE";
    /// `CONFIG_LIST`.
    pub const CONFIG_LIST: &str = "CONFIG_LIST";
    /// `FILE_PRODUCT_CHANGE`.
    pub const FILE_PRODUCT_CHANGE: &str = "FILE_PRODUCT_CHANGE";
    /// `FILE_PROCESS_AUTOTAGGING`.
    pub const FILE_PROCESS_AUTOTAGGING: &str = "FILE_PROCESS_AUTOTAGGING";
    /// `COLLECTIONS_LIST`.
    pub const COLLECTIONS_LIST: &str = "COLLECTIONS_LIST";
    /// `COLLECTIONS_MANAGE`.
    pub const COLLECTIONS_MANAGE: &str = "COLLECTIONS_MANAGE";
    /// `LABELS_LIST`.
    pub const LABELS_LIST: &str = "LABELS_LIST";
    /// `LABEL_MANAGE`.
    pub const LABEL_MANAGE: &str = "LABEL_MANAGE";
    /// `OBJECTS_SHARE_MANAGE`.
    pub const OBJECTS_SHARE_MANAGE: &str = "OBJECTS_SHARE_MANAGE";
    /// `OBJECTS_AIRBOX_MANAGE`.
    pub const OBJECTS_AIRBOX_MANAGE: &str = "OBJECTS_AIRBOX_MANAGE";
    /// `OBJECTS_APPROVAL_MANAGE`.
    pub const OBJECTS_APPROVAL_MANAGE: &str = "OBJECTS_APPROVAL_MANAGE";
    /// `OBJECTS_APPROVAL_VOTE`.
    pub const OBJECTS_APPROVAL_VOTE: &str = "OBJECTS_APPROVAL_VOTE";
    /// `ACCESS_READ`.
    pub const ACCESS_READ: &str = "ACCESS_READ";
    /// `ACCESS_MANAGE`.
    pub const ACCESS_MANAGE: &str = "ACCESS_MANAGE";
}

/// The 31 Scaleflex DAM permissions, in the order the product documents them.
pub const SCALEFLEX_PERMISSIONS: [&str; 31] = [
    permission::OBJECTS_LIST,
    permission::OBJECTS_FETCH,
    permission::FILE_UPLOAD,
    permission::FILE_META_CREATE,
    permission::FILE_META_CHANGE,
    permission::FILE_RENAME,
    permission::FILE_MOVE,
    permission::FILE_DELETE,
    permission::FILE_SET_VISIBILITY,
    permission::FILE_LABEL_CHANGE,
    permission::FILE_IMAGE_EDITOR,
    permission::DIR_CREATE,
    permission::DIR_RENAME,
    permission::DIR_META_CHANGE,
    permission::DIR_MOVE,
    permission::DIR_DELETE,
    permission::DIR_SET_VISIBILITY,
    permission::CONFIG_CHANGE,
    permission::CONFIG_LIST,
    permission::FILE_PRODUCT_CHANGE,
    permission::FILE_PROCESS_AUTOTAGGING,
    permission::COLLECTIONS_LIST,
    permission::COLLECTIONS_MANAGE,
    permission::LABELS_LIST,
    permission::LABEL_MANAGE,
    permission::OBJECTS_SHARE_MANAGE,
    permission::OBJECTS_AIRBOX_MANAGE,
    permission::OBJECTS_APPROVAL_MANAGE,
    permission::OBJECTS_APPROVAL_VOTE,
    permission::ACCESS_READ,
    permission::ACCESS_MANAGE,
];

/// Scaleflex permissions that write to files or directories: checked against `upload_dirs`.
const SCALEFLEX_UPLOAD_SCOPED: [&str; 17] = [
    "FILE_UPLOAD",
    "FILE_META_CREATE",
    "FILE_META_CHANGE",
    "FILE_RENAME",
    "FILE_MOVE",
    "FILE_DELETE",
    "FILE_SET_VISIBILITY",
    "FILE_LABEL_CHANGE",
    "FILE_IMAGE_EDITOR",
    "FILE_PRODUCT_CHANGE",
    "FILE_PROCESS_AUTOTAGGING",
    "DIR_CREATE",
    "DIR_RENAME",
    "DIR_META_CHANGE",
    "DIR_MOVE",
    "DIR_DELETE",
    "DIR_SET_VISIBILITY",
];

/// Scaleflex permissions that read files or directories: checked against `list_dirs`.
const SCALEFLEX_LIST_SCOPED: [&str; 2] = ["OBJECTS_LIST", "OBJECTS_FETCH"];

/// Which directory scope of a token an operation under a permission is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScopeKind {
    /// The upload scope (`upload_dirs`, from the template's `upload.dir_scope`).
    Upload,
    /// The listing scope (`list_dirs`, from the template's `listing.directory_scope`).
    List,
    /// The permission does not act on a directory; no directory is checked.
    None,
}

/// Maps each permission of a catalogue to the directory scope it is checked against.
///
/// Every permission is named explicitly. A permission the rules do not know has no rule, and
/// [`Grant::authorize`](crate::Grant::authorize) denies it: a verifier given the wrong rules
/// fails closed instead of skipping the directory check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRules {
    rules: HashMap<String, ScopeKind>,
}

impl ScopeRules {
    /// The rules for the default Scaleflex catalogue: file and directory writes check the upload
    /// scope, `OBJECTS_LIST` and `OBJECTS_FETCH` check the listing scope, the other twelve
    /// permissions act on no directory.
    pub fn scaleflex() -> Self {
        Self::new(SCALEFLEX_PERMISSIONS, SCALEFLEX_UPLOAD_SCOPED, SCALEFLEX_LIST_SCOPED)
    }

    /// Rules for a custom catalogue: every permission, then those checked against the upload
    /// scope and those checked against the listing scope; the rest act on no directory. A
    /// permission in both lists checks the upload scope. Permissions named in `upload` or
    /// `list` but missing from `all` are added.
    pub fn new<A, U, L>(all: A, upload: U, list: L) -> Self
    where
        A: IntoIterator,
        A::Item: Into<String>,
        U: IntoIterator,
        U::Item: Into<String>,
        L: IntoIterator,
        L::Item: Into<String>,
    {
        let mut rules: HashMap<String, ScopeKind> = all.into_iter().map(|p| (p.into(), ScopeKind::None)).collect();
        rules.extend(list.into_iter().map(|p| (p.into(), ScopeKind::List)));
        rules.extend(upload.into_iter().map(|p| (p.into(), ScopeKind::Upload)));
        Self { rules }
    }

    /// The scope `permission` is checked against, or `None` when the rules do not know it.
    pub fn kind(&self, permission: &str) -> Option<ScopeKind> {
        self.rules.get(permission).copied()
    }
}

impl Default for ScopeRules {
    fn default() -> Self {
        Self::scaleflex()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn catalogue_has_31_distinct_permissions() {
        let set: HashSet<_> = SCALEFLEX_PERMISSIONS.iter().collect();
        assert_eq!(set.len(), 31);
        assert_eq!(SCALEFLEX_PERMISSIONS[0], "OBJECTS_LIST");
        assert_eq!(SCALEFLEX_PERMISSIONS[30], "ACCESS_MANAGE");
    }

    #[test]
    fn every_scoped_permission_is_in_the_catalogue() {
        for p in SCALEFLEX_UPLOAD_SCOPED.iter().chain(&SCALEFLEX_LIST_SCOPED) {
            assert!(SCALEFLEX_PERMISSIONS.contains(p), "{p}");
        }
    }

    #[test]
    fn scaleflex_rules() {
        let rules = ScopeRules::scaleflex();
        assert_eq!(rules.kind("FILE_UPLOAD"), Some(ScopeKind::Upload));
        assert_eq!(rules.kind("DIR_DELETE"), Some(ScopeKind::Upload));
        assert_eq!(rules.kind("OBJECTS_LIST"), Some(ScopeKind::List));
        assert_eq!(rules.kind("OBJECTS_FETCH"), Some(ScopeKind::List));
        assert_eq!(rules.kind("ACCESS_MANAGE"), Some(ScopeKind::None));
        assert_eq!(rules.kind("unknown"), None);
        let named = SCALEFLEX_PERMISSIONS.iter().filter(|p| rules.kind(p).is_some()).count();
        assert_eq!(named, 31, "every permission has an explicit rule");
    }

    #[test]
    fn custom_rules_prefer_upload() {
        let rules = ScopeRules::new(
            ["asset.upload", "asset.read", "both", "album.read"],
            ["asset.upload", "both"],
            ["asset.read", "both"],
        );
        assert_eq!(rules.kind("asset.upload"), Some(ScopeKind::Upload));
        assert_eq!(rules.kind("asset.read"), Some(ScopeKind::List));
        assert_eq!(rules.kind("both"), Some(ScopeKind::Upload));
        assert_eq!(rules.kind("album.read"), Some(ScopeKind::None));
        assert_eq!(rules.kind("FILE_UPLOAD"), None);
    }
}
