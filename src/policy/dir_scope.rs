//! Directory scopes: `/folder` (that folder only) and `/folder/*` (that folder and everything
//! below it).
//!
//! Scopes in a config, a mint request or a token must be *canonical*: absolute, no empty, `.` or
//! `..` segments, no `\`, `%`, NUL or control characters, NFC-normalised text, and `*` only as
//! a final `/*`. Anything else is refused, never repaired, so that what a reviewer reads in
//! `config.toml` is exactly what is enforced.
//!
//! Paths handed to [`DirScope::allows`] come from a downstream request and are normalised first
//! (`//` and `.` collapse), while `..`, percent-encoded separators, `\` and NUL are refused.
//!
//! In scopes and paths alike, a segment that only *looks* harmless is refused too: one whose
//! NFKC form, with default-ignorable code points and combining marks removed and the dot and
//! slash lookalikes (`。`, `∕`, `⁄`, `⧸`) read as `.` and `/`, is empty or `.`, starts with
//! `..`, or holds `/`, `\` or `%` (`．．`, `.\u{200B}.`, `.\u{301}.`, `｡｡`, `a／b`, `a∕b`, and
//! so `½`), so a downstream that normalises Unicode after authorisation cannot be walked out of
//! its scope. Ordinary non-ASCII names (`写真`, `２０２６`, `café`, `हिन्दी`) are unaffected.

use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory, GeneralCategoryGroup};
use icu_properties::{CodePointMapData, CodePointSetData};
use std::fmt;
use unicode_normalization::{UnicodeNormalization as _, is_nfc};

/// Longest scope or path accepted, in bytes.
pub const MAX_PATH_LEN: usize = 1024;

/// Why a scope or a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// The text is empty.
    #[error("is empty")]
    Empty,
    /// The text does not start with `/`.
    #[error("must be absolute (start with `/`)")]
    NotAbsolute,
    /// The text is longer than [`MAX_PATH_LEN`].
    #[error("is longer than {MAX_PATH_LEN} bytes")]
    TooLong,
    /// The text holds a character that is never allowed (`\`, `%`, NUL, a control character).
    #[error("contains the forbidden character {0:?}")]
    ForbiddenChar(char),
    /// The text holds a `.` or `..` segment.
    #[error("contains a `.` or `..` segment")]
    DotSegment,
    /// The text holds an empty segment (`//` or a trailing `/`).
    #[error("contains an empty segment (`//` or a trailing `/`)")]
    EmptySegment,
    /// `*` appears other than as a final `/*`.
    #[error("may use `*` only as a final `/*`")]
    MisplacedWildcard,
    /// The text is not in Unicode Normalization Form C.
    #[error("is not NFC-normalised Unicode")]
    NotNfc,
    /// A path holds a `%`: paths must be passed decoded, once.
    #[error("contains `%`: pass the decoded path")]
    EncodedSeparator,
    /// A segment that Unicode compatibility normalisation (NFKC), with default-ignorable code
    /// points removed, turns into `.`, nothing, or text that starts with `..` or holds `/`,
    /// `\` or `%` (`．．`, `.\u{200B}.`, `a／b`).
    #[error("contains a segment that becomes `.`, `..` or a separator under Unicode normalisation")]
    LookalikeSegment,
    /// A file path ends in an empty name (a trailing `/`, or the root alone) or in `.`.
    #[error("does not end in a file name (it is empty or `.`)")]
    InvalidFileName,
}

/// Why a list of directory scopes was refused: the first entry that is not a canonical scope,
/// or the list is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeSetError {
    /// The entry's position in the list, from 0; `None` when the list is empty.
    pub index: Option<usize>,
    /// Why the entry (or the list) was refused.
    pub source: ScopeError,
}

impl fmt::Display for ScopeSetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(index) => write!(f, "entry {index} is not a canonical directory scope"),
            None => f.write_str("the list of directory scopes is empty"),
        }
    }
}

impl std::error::Error for ScopeSetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// One directory scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DirScope {
    /// Exactly this directory (`/folder`; `/` is the root alone).
    Exact(String),
    /// This directory and everything below it (`/folder/*`); the root subtree `/*` is stored
    /// with an empty prefix.
    Subtree(String),
}

impl DirScope {
    /// The scope that allows every directory, `/*`.
    pub fn everything() -> Self {
        Self::Subtree(String::new())
    }

    /// Parses a canonical scope such as `/uploads/*`.
    ///
    /// # Errors
    ///
    /// A [`ScopeError`] naming the first rule the text breaks.
    pub fn parse(text: &str) -> Result<Self, ScopeError> {
        check_text(text)?;
        if text.contains('%') {
            return Err(ScopeError::ForbiddenChar('%'));
        }
        if text == "/" {
            return Ok(Self::Exact(text.to_owned()));
        }
        let (base, subtree) = match text.strip_suffix("/*") {
            Some(base) => (base, true),
            None => (text, false),
        };
        // `base` is "" (for "/*") or "/seg/seg...".
        for segment in base.split('/').skip(1) {
            match segment {
                "" => return Err(ScopeError::EmptySegment),
                s if s == "." || s.starts_with("..") => return Err(ScopeError::DotSegment),
                s if s.contains('*') => return Err(ScopeError::MisplacedWildcard),
                s => check_lookalike(s)?,
            }
        }
        Ok(if subtree { Self::Subtree(base.to_owned()) } else { Self::Exact(base.to_owned()) })
    }

    /// Whether this scope allows the directory `path`, after normalising it.
    ///
    /// # Errors
    ///
    /// A [`ScopeError`] when the path is malformed or tries to escape (`..`, `%2f`, NUL …).
    pub fn allows(&self, path: &str) -> Result<bool, ScopeError> {
        Ok(self.allows_normalised(&normalise_path(path)?))
    }

    /// Whether this scope allows an already normalised path (see [`normalise_path`]).
    pub fn allows_normalised(&self, path: &str) -> bool {
        match self {
            Self::Exact(dir) => dir == path,
            Self::Subtree(prefix) => is_at_or_below(path, prefix),
        }
    }

    /// Whether everything `other` allows is also allowed by `self`.
    pub fn covers(&self, other: &DirScope) -> bool {
        match (self, other) {
            (Self::Exact(a), Self::Exact(b)) => a == b,
            (Self::Exact(_), Self::Subtree(_)) => false,
            (Self::Subtree(prefix), Self::Exact(b) | Self::Subtree(b)) => is_at_or_below(b, prefix),
        }
    }
}

/// Whether `path` ("/" or "/a/b") is `prefix` itself or lies below it; an empty prefix is the
/// root subtree.
fn is_at_or_below(path: &str, prefix: &str) -> bool {
    if prefix.is_empty() {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

impl fmt::Display for DirScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(dir) => f.write_str(dir),
            Self::Subtree(prefix) => write!(f, "{prefix}/*"),
        }
    }
}

impl std::str::FromStr for DirScope {
    type Err = ScopeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A set of directory scopes: a directory is allowed when any member allows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeSet(Vec<DirScope>);

impl ScopeSet {
    /// The set that allows every directory, `["/*"]`.
    pub fn everything() -> Self {
        Self(vec![DirScope::everything()])
    }

    /// A set from parsed scopes; `None` when `scopes` is empty (an empty set would allow
    /// nothing, which is never what a template means).
    pub fn new(scopes: Vec<DirScope>) -> Option<Self> {
        (!scopes.is_empty()).then_some(Self(scopes))
    }

    /// Parses each text with [`DirScope::parse`].
    ///
    /// # Errors
    ///
    /// A [`ScopeSetError`] naming the first text that is not a canonical scope, or with no
    /// index when the list is empty.
    pub fn parse<S: AsRef<str>>(texts: &[S]) -> Result<Self, ScopeSetError> {
        let scopes = texts
            .iter()
            .enumerate()
            .map(|(i, t)| DirScope::parse(t.as_ref()).map_err(|source| ScopeSetError { index: Some(i), source }))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(scopes).ok_or(ScopeSetError { index: None, source: ScopeError::Empty })
    }

    /// The scopes in this set.
    pub fn scopes(&self) -> &[DirScope] {
        &self.0
    }

    /// Whether any scope allows the directory `path`.
    ///
    /// # Errors
    ///
    /// A [`ScopeError`] when the path is malformed or tries to escape.
    pub fn allows(&self, path: &str) -> Result<bool, ScopeError> {
        let path = normalise_path(path)?;
        Ok(self.0.iter().any(|s| s.allows_normalised(&path)))
    }

    /// Whether every scope of `other` is covered by some scope of `self`.
    pub fn covers(&self, other: &ScopeSet) -> bool {
        other.0.iter().all(|b| self.0.iter().any(|a| a.covers(b)))
    }

    /// Whether this set allows every directory.
    pub fn is_everything(&self) -> bool {
        self.0.contains(&DirScope::everything())
    }

    /// The scopes as canonical strings, as they appear in a token.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

/// Checks the rules shared by scopes and paths: non-empty, absolute, bounded, no forbidden
/// characters, NFC.
fn check_text(text: &str) -> Result<(), ScopeError> {
    if text.is_empty() {
        return Err(ScopeError::Empty);
    }
    if text.len() > MAX_PATH_LEN {
        return Err(ScopeError::TooLong);
    }
    if !text.starts_with('/') {
        return Err(ScopeError::NotAbsolute);
    }
    if let Some(c) = text.chars().find(|&c| c == '\\' || c.is_control()) {
        return Err(ScopeError::ForbiddenChar(c));
    }
    if !is_nfc(text) {
        return Err(ScopeError::NotNfc);
    }
    Ok(())
}

/// What a later step could turn a segment into: its NFKC form with default-ignorable code
/// points, combining marks (General Category M) and unassigned code points (a mark, perhaps,
/// in newer Unicode data) removed, the ideographic full stop U+3002
/// (which UTS-46 and transliterators map to `.`; NFKC maps U+FF61 and U+FE12 to it) read as
/// `.`, and the slash lookalikes U+2215, U+2044, U+29F8 (and U+FF0F, which NFKC already maps)
/// read as `/`. Only this folded form is tested, so names written with marks (`café`,
/// Devanagari) stay allowed.
fn fold(segment: &str) -> String {
    let ignorable = CodePointSetData::new::<DefaultIgnorableCodePoint>();
    let category = CodePointMapData::<GeneralCategory>::new();
    segment
        .nfkc()
        .filter(|&c| {
            // An unassigned code point may be a mark in a downstream's newer Unicode data.
            let gc = category.get(c);
            !ignorable.contains(c) && !GeneralCategoryGroup::Mark.contains(gc) && gc != GeneralCategory::Unassigned
        })
        .map(|c| match c {
            '\u{3002}' => '.',
            '\u{2215}' | '\u{2044}' | '\u{29F8}' | '\u{FF0F}' => '/',
            c => c,
        })
        .collect()
}

/// Refuses a segment that a later step could turn into a dot segment or a separator: its
/// [`fold`] must not be empty or `.`, start with `..`, or hold `/`, `\` or `%`. A downstream that normalises paths after authorisation (NFKC, or
/// stripping invisible characters) then still sees a plain name below the same directory.
/// ASCII segments are their own NFKC form and hold no default-ignorable code point.
fn check_lookalike(segment: &str) -> Result<(), ScopeError> {
    if segment.is_ascii() {
        return Ok(());
    }
    let folded = fold(segment);
    if folded.is_empty() || folded == "." || folded.starts_with("..") || folded.contains(['/', '\\', '%']) {
        return Err(ScopeError::LookalikeSegment);
    }
    Ok(())
}

/// Normalises a request path: collapses `//` and `.` segments and drops a trailing `/`.
///
/// # Errors
///
/// Refuses (never resolves) segments starting with `..`, any `%` (the path must arrive decoded),
/// a `\`, NUL or control character, non-NFC text, relative paths and paths over
/// [`MAX_PATH_LEN`] bytes.
pub fn normalise_path(path: &str) -> Result<String, ScopeError> {
    check_text(path)?;
    // Paths must arrive decoded: any `%` left is a double encoding (`%252e`), an overlong
    // sequence (`%c0%ae`) or an encoded separator, all of which a later decode could turn into
    // an escape.
    if path.contains('%') {
        return Err(ScopeError::EncodedSeparator);
    }
    let mut out = String::with_capacity(path.len());
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            // `..` and look-alikes such as `..;` (a path parameter some servers strip).
            s if s.starts_with("..") => return Err(ScopeError::DotSegment),
            s => {
                check_lookalike(s)?;
                out.push('/');
                out.push_str(s);
            }
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// The directory a file lies in, normalised, for authorising an operation on the file at
/// `path` (such as `/uploads/a/photo.jpg` → `/uploads/a`).
///
/// The whole path is normalised as by [`normalise_path`] (so `..` anywhere is refused), and its
/// last segment, the file name, must be a real name: not empty (`/uploads/a/`, `/`) and not `.`
/// or `..`. Otherwise the directory authorised would not be the one the file lands in.
///
/// # Errors
///
/// [`ScopeError::InvalidFileName`] for an empty or `.` name, and every error of
/// [`normalise_path`].
pub fn file_directory(path: &str) -> Result<String, ScopeError> {
    let normalised = normalise_path(path)?;
    // Checked on the raw text: normalisation drops a trailing `/` or `.` and would make the
    // parent's name look like the file's.
    let name = path.rsplit('/').next().unwrap_or(path);
    if name.is_empty() || name == "." {
        return Err(ScopeError::InvalidFileName);
    }
    match normalised.rsplit_once('/') {
        Some(("", name)) if !name.is_empty() => Ok("/".to_owned()),
        Some((dir, name)) if !name.is_empty() => Ok(dir.to_owned()),
        _ => Err(ScopeError::InvalidFileName),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scope(s: &str) -> DirScope {
        DirScope::parse(s).unwrap()
    }

    #[test]
    fn parses_canonical_scopes() {
        assert_eq!(scope("/*"), DirScope::Subtree(String::new()));
        assert_eq!(scope("/"), DirScope::Exact("/".into()));
        assert_eq!(scope("/folder"), DirScope::Exact("/folder".into()));
        assert_eq!(scope("/folder/*"), DirScope::Subtree("/folder".into()));
        assert_eq!(scope("/a/b c/ü/*").to_string(), "/a/b c/ü/*");
    }

    #[test]
    fn refuses_non_canonical_scopes() {
        let cases = [
            ("", ScopeError::Empty),
            ("folder", ScopeError::NotAbsolute),
            ("/a/../b", ScopeError::DotSegment),
            ("/a/./b", ScopeError::DotSegment),
            ("/..", ScopeError::DotSegment),
            ("/a//b", ScopeError::EmptySegment),
            ("/a/", ScopeError::EmptySegment),
            ("//*", ScopeError::EmptySegment),
            ("/a*", ScopeError::MisplacedWildcard),
            ("/*/a", ScopeError::MisplacedWildcard),
            ("/a/**", ScopeError::MisplacedWildcard),
            ("/a/*/*", ScopeError::MisplacedWildcard),
            ("*", ScopeError::NotAbsolute),
            ("/a\\b", ScopeError::ForbiddenChar('\\')),
            ("/a%2fb", ScopeError::ForbiddenChar('%')),
            ("/a\0b", ScopeError::ForbiddenChar('\0')),
            ("/a\nb", ScopeError::ForbiddenChar('\n')),
            ("/e\u{301}", ScopeError::NotNfc),
        ];
        for (text, want) in cases {
            assert_eq!(DirScope::parse(text), Err(want), "{text:?}");
        }
        assert_eq!(DirScope::parse(&format!("/{}", "a".repeat(MAX_PATH_LEN))), Err(ScopeError::TooLong));
    }

    #[test]
    fn subtree_allows_itself_and_below_never_siblings() {
        let s = scope("/folder/*");
        assert!(s.allows("/folder").unwrap());
        assert!(s.allows("/folder/").unwrap());
        assert!(s.allows("/folder/a/b").unwrap());
        assert!(!s.allows("/folder2").unwrap());
        assert!(!s.allows("/folderx/a").unwrap());
        assert!(!s.allows("/").unwrap());
    }

    #[test]
    fn exact_allows_only_itself() {
        let s = scope("/folder");
        assert!(s.allows("/folder").unwrap());
        assert!(s.allows("//folder/.").unwrap());
        assert!(!s.allows("/folder/a").unwrap());
        assert!(scope("/").allows("/").unwrap());
        assert!(!scope("/").allows("/a").unwrap());
    }

    #[test]
    fn everything_allows_every_path() {
        let s = DirScope::everything();
        for p in ["/", "/a", "/a/b/c"] {
            assert!(s.allows(p).unwrap(), "{p}");
        }
    }

    #[test]
    fn paths_are_normalised_or_refused() {
        assert_eq!(normalise_path("//a/./b//").unwrap(), "/a/b");
        assert_eq!(normalise_path("/./").unwrap(), "/");
        assert_eq!(normalise_path("/a/../b"), Err(ScopeError::DotSegment));
        assert_eq!(normalise_path("/a%2Fb"), Err(ScopeError::EncodedSeparator));
        assert_eq!(normalise_path("/a%5cb"), Err(ScopeError::EncodedSeparator));
        assert_eq!(normalise_path("/a%2e%2e"), Err(ScopeError::EncodedSeparator));
        assert_eq!(normalise_path("/a%00"), Err(ScopeError::EncodedSeparator));
        assert_eq!(normalise_path("/a\0"), Err(ScopeError::ForbiddenChar('\0')));
        assert_eq!(normalise_path("a/b"), Err(ScopeError::NotAbsolute));
        for bad in ["/a b%20c", "/up/%252e%252e/etc", "/up/%c0%ae%c0%ae/etc", "/100%"] {
            assert_eq!(normalise_path(bad), Err(ScopeError::EncodedSeparator), "{bad}");
        }
        for bad in ["/up/..;/etc", "/up/..foo", "/..."] {
            assert_eq!(normalise_path(bad), Err(ScopeError::DotSegment), "{bad}");
        }
        assert_eq!(normalise_path("/up/.hidden/a..b").unwrap(), "/up/.hidden/a..b");
    }

    #[test]
    fn covers() {
        assert!(scope("/*").covers(&scope("/a/*")));
        assert!(scope("/*").covers(&scope("/*")));
        assert!(scope("/*").covers(&scope("/")));
        assert!(scope("/a/*").covers(&scope("/a")));
        assert!(scope("/a/*").covers(&scope("/a/b/*")));
        assert!(!scope("/a/*").covers(&scope("/*")));
        assert!(!scope("/a/*").covers(&scope("/ab")));
        assert!(!scope("/a").covers(&scope("/a/*")));
        assert!(!scope("/a").covers(&scope("/a/b")));
        let set = ScopeSet::parse(&["/a/*", "/b"]).unwrap();
        assert!(set.covers(&ScopeSet::parse(&["/a/x", "/b"]).unwrap()));
        assert!(!set.covers(&ScopeSet::parse(&["/a/x", "/b/c"]).unwrap()));
        assert_eq!(ScopeSet::parse::<&str>(&[]), Err(ScopeSetError { index: None, source: ScopeError::Empty }));
        assert_eq!(
            ScopeSet::parse(&["/a", "b"]),
            Err(ScopeSetError { index: Some(1), source: ScopeError::NotAbsolute })
        );
    }

    /// Segments that some later step (NFKC, dropping default-ignorable code points) turns into
    /// `..`, a separator or a percent sign.
    const LOOKALIKES: [&str; 19] = [
        "\u{FF0E}\u{FF0E}",         // fullwidth full stops
        ".\u{FF0E}",                // half and half
        "\u{FE52}\u{FE52}",         // small full stops
        "\u{2024}\u{2024}",         // one dot leaders
        "\u{2025}",                 // two dot leader: NFKC gives `..`
        ".\u{200B}.",               // a zero-width space inside
        "\u{00AD}..;",              // a soft hyphen before `..;`
        "a\u{FF0F}b",               // fullwidth solidus
        "a\u{FE68}b",               // small reverse solidus
        "a\u{FF05}2e",              // fullwidth percent sign
        ".\u{0301}.",               // a combining mark between two dots
        "\u{FF0E}\u{0301}\u{FF0E}", // and between two fullwidth ones
        "\u{3002}\u{3002}",         // ideographic full stops (UTS-46 maps them to `.`)
        "\u{FF61}\u{FF61}",         // halfwidth ideographic full stops: NFKC gives U+3002
        "\u{FE12}\u{FE12}",         // presentation form: NFKC gives U+3002
        "a\u{2215}b",               // division slash
        "a\u{2044}b",               // fraction slash
        "a\u{29F8}b",               // big solidus
        "1\u{00BD}",                // vulgar fraction one half: NFKC gives `1⁄2`, a fraction slash
    ];

    #[test]
    fn lookalike_segments_are_refused() {
        for seg in LOOKALIKES {
            assert!(normalise_path(&format!("/uploads/{seg}/etc")).is_err(), "{seg:?}");
            assert!(DirScope::parse(&format!("/uploads/{seg}/*")).is_err(), "{seg:?}");
            assert!(DirScope::parse(&format!("/uploads/{seg}")).is_err(), "{seg:?}");
            assert!(scope("/uploads/*").allows(&format!("/uploads/{seg}/etc")).is_err(), "{seg:?}");
        }
        assert!(normalise_path("/uploads/\u{FF0E}\u{FF0E}/\u{FF0E}\u{FF0E}/etc").is_err());
    }

    #[test]
    fn ordinary_non_ascii_names_stay_allowed() {
        for p in [
            "/uploads/写真/２０２６",
            "/uploads/café",
            "/uploads/ｆｕｌｌ",
            "/Ünïcødé/日本語/x…",
            "/uploads/हिन्दी/नमस्ते",
            "/uploads/写真。jpg",
        ] {
            assert_eq!(normalise_path(p).unwrap(), p);
            assert_eq!(scope(&format!("{p}/*")).to_string(), format!("{p}/*"));
            assert!(scope("/*").allows(p).unwrap());
        }
    }

    /// What a downstream might turn a segment into, computed independently of the code's own
    /// fold so the whole-range tests can find a normalisation it misses: the full compatibility
    /// *decomposition* (NFKD), every combining mark (`unicode-normalization`'s own table) and
    /// default-ignorable code point dropped, and the dot and slash lookalikes that UTS-46 or
    /// transliteration map to `.` and `/` mapped.
    fn folded(segment: &str) -> String {
        use unicode_normalization::UnicodeNormalization as _;
        use unicode_normalization::char::is_combining_mark;
        let ignorable = icu_properties::CodePointSetData::new::<icu_properties::props::DefaultIgnorableCodePoint>();
        segment
            .nfkd()
            .filter(|&c| !is_combining_mark(c) && !ignorable.contains(c))
            .map(|c| match c {
                '\u{3002}' => '.',
                '\u{2215}' | '\u{2044}' | '\u{29F8}' => '/',
                c => c,
            })
            .collect()
    }

    fn escapes(folded: &str) -> bool {
        folded.starts_with("..") || folded.contains(['/', '\\', '%'])
    }

    #[test]
    fn no_single_code_point_folds_into_an_escape() {
        // Every code point, doubled and after a dot: whatever is accepted stays inert. (Doubling
        // finds the code points that become a separator, `.` or `..` on their own.)
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32).filter(|&c| c != '/') {
            for seg in [format!("{c}{c}"), format!(".{c}"), format!(".{c}.")] {
                if normalise_path(&format!("/u/{seg}")).is_ok() {
                    assert!(!escapes(&folded(&seg)), "{seg:?} (U+{:04X}) was accepted", c as u32);
                }
            }
        }
    }

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof!["[a-c]{1,3}", Just("folder".to_owned()), Just("folder2".to_owned())]
    }

    fn path() -> impl Strategy<Value = String> {
        prop::collection::vec(segment(), 0..5).prop_map(|s| format!("/{}", s.join("/")))
    }

    proptest! {
        /// A file's directory is its normalised path minus a real name, never a parent's.
        #[test]
        fn file_directory_is_the_normalised_parent(segments in proptest::collection::vec("[a.]{0,3}", 1..5)) {
            let path = format!("/{}", segments.join("/"));
            if let Ok(dir) = file_directory(&path) {
                let normalised = normalise_path(&path).unwrap();
                let name = normalised.rsplit('/').next().unwrap();
                prop_assert!(!name.is_empty() && name != "." && !name.starts_with(".."), "{path} -> {dir}");
                prop_assert_eq!(path.rsplit('/').next().unwrap(), name);
                let expected = if normalised.len() == name.len() + 1 { "/".to_owned() } else { normalised[..normalised.len() - name.len() - 1].to_owned() };
                prop_assert_eq!(dir, expected);
            }
        }

        #[test]
        fn never_panics_on_arbitrary_text(text in ".{0,64}") {
            let _ = DirScope::parse(&text);
            let _ = normalise_path(&text);
        }

        #[test]
        fn canonical_scopes_round_trip(text in "/[a-z/*.%]{0,20}") {
            if let Ok(s) = DirScope::parse(&text) {
                prop_assert_eq!(s.to_string(), text);
            }
        }

        #[test]
        fn subtree_matches_by_segments(base in path(), p in path()) {
            let scope_text = if base == "/" { "/*".to_owned() } else { format!("{base}/*") };
            let s = DirScope::parse(&scope_text).unwrap();
            let expected = base == "/" || p == base || p.starts_with(&format!("{base}/"));
            prop_assert_eq!(s.allows(&p).unwrap(), expected);
        }

        #[test]
        fn covers_is_sound(a in path(), b in path(), asub: bool, bsub: bool, p in path()) {
            let make = |base: &str, sub: bool| {
                let text = match (base, sub) {
                    ("/", true) => "/*".to_owned(),
                    (b, true) => format!("{b}/*"),
                    (b, false) => b.to_owned(),
                };
                DirScope::parse(&text).unwrap()
            };
            let (sa, sb) = (make(&a, asub), make(&b, bsub));
            // If `sa` covers `sb`, everything `sb` allows `sa` allows too.
            if sa.covers(&sb) && sb.allows(&p).unwrap() {
                prop_assert!(sa.allows(&p).unwrap());
            }
        }

        #[test]
        fn accepted_segments_never_fold_into_an_escape(seg in prop::collection::vec(any::<char>(), 1..5)) {
            // `/` separates segments; anything else may appear in one.
            let seg: String = seg.into_iter().filter(|&c| c != '/').collect();
            for text in [seg.clone(), format!(".{seg}"), format!("{seg}."), format!("{seg}{seg}")] {
                if normalise_path(&format!("/u/{text}")).is_ok() {
                    prop_assert!(!escapes(&folded(&text)), "{:?} was accepted", text);
                }
                if DirScope::parse(&format!("/u/{text}/*")).is_ok() {
                    prop_assert!(!escapes(&folded(&text)), "scope {:?} was accepted", text);
                }
            }
        }

        #[test]
        fn plain_ascii_names_are_accepted(seg in "[A-Za-z0-9_ .,;:!@#$&()+=~'-]{1,16}") {
            prop_assume!(seg != "." && !seg.starts_with(".."));
            let p = format!("/u/{seg}");
            prop_assert_eq!(normalise_path(&p).unwrap(), p.clone());
            prop_assert!(DirScope::parse(&p).is_ok());
        }

        #[test]
        fn escapes_are_refused(prefix in path(), rest in path()) {
            let p = format!("{prefix}/..{rest}");
            prop_assert!(normalise_path(&p).is_err());
        }
    }
}
