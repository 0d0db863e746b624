//! Media types for upload limits (`upload.content_types`, the `upload_types` claim): a range is
//! `type/subtype` or `type/*`, compared without regard to case; a `Content-Type` is reduced to
//! its media type (parameters dropped) before it is compared.

use std::fmt;

/// Longest media range or media type accepted, in bytes (RFC 6838 allows 127 per part).
const MAX_LEN: usize = 255;

/// A media range an upload key allows: `image/png` or `image/*`, in lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MediaRange {
    kind: String,
    /// `None` for `type/*`.
    subtype: Option<String>,
}

/// Why a media range is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaRangeError {
    /// Not `type/subtype` or `type/*` of RFC 6838 name characters (no parameters, no `*/*`).
    #[error("{0:?} is not a media type (type/subtype) or a range (type/*)")]
    Malformed(String),
}

/// RFC 6838 `restricted-name`: 1 to 127 of `A-Z a-z 0-9 ! # $ & - ^ _ . +`, starting with a
/// letter or digit.
fn is_name(s: &str) -> bool {
    s.len() <= 127
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
}

impl MediaRange {
    /// Parses `type/subtype` or `type/*`, in any case; stored in lower case.
    ///
    /// # Errors
    ///
    /// [`MediaRangeError::Malformed`] for anything else (parameters, `*/*`, spaces, empty parts).
    pub fn parse(text: &str) -> Result<Self, MediaRangeError> {
        let bad = || MediaRangeError::Malformed(text.chars().take(MAX_LEN).collect());
        let (kind, subtype) = text.split_once('/').ok_or_else(bad)?;
        if text.len() > MAX_LEN || !is_name(kind) {
            return Err(bad());
        }
        let subtype = match subtype {
            "*" => None,
            s if is_name(s) => Some(s.to_ascii_lowercase()),
            _ => return Err(bad()),
        };
        Ok(Self { kind: kind.to_ascii_lowercase(), subtype })
    }

    /// Whether the media type `media_type` (already reduced by [`media_type_of`]) is in range.
    pub fn matches(&self, media_type: &MediaType) -> bool {
        self.kind == media_type.kind && self.subtype.as_ref().is_none_or(|s| *s == media_type.subtype)
    }

    /// Whether every type `other` allows is allowed by `self` (request narrowing).
    pub fn covers(&self, other: &MediaRange) -> bool {
        self.kind == other.kind && (self.subtype.is_none() || self.subtype == other.subtype)
    }
}

impl fmt::Display for MediaRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.subtype.as_deref().unwrap_or("*"))
    }
}

/// The media type of a `Content-Type` value: `type/subtype`, lower case, parameters dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    kind: String,
    subtype: String,
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.subtype)
    }
}

/// Reduces a `Content-Type` header value to its media type: `Image/PNG; charset=x` is
/// `image/png`. `None` for a value that names no single media type (`*` wildcards included).
pub fn media_type_of(content_type: &str) -> Option<MediaType> {
    if content_type.len() > 1024 {
        return None;
    }
    let essence = content_type.split(';').next()?.trim_matches([' ', '\t']);
    let (kind, subtype) = essence.split_once('/')?;
    (is_name(kind) && is_name(subtype))
        .then(|| MediaType { kind: kind.to_ascii_lowercase(), subtype: subtype.to_ascii_lowercase() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranges_and_types_compare_without_case_or_parameters() {
        let png = MediaRange::parse("image/PNG").unwrap();
        let images = MediaRange::parse("Image/*").unwrap();
        assert_eq!((png.to_string(), images.to_string()), ("image/png".into(), "image/*".into()));
        let sent = media_type_of("IMAGE/png; charset=x").unwrap();
        assert!(png.matches(&sent) && images.matches(&sent));
        assert!(!png.matches(&media_type_of("image/jpeg").unwrap()));
        assert!(!images.matches(&media_type_of("text/plain").unwrap()));
        assert!(images.covers(&png) && !png.covers(&images) && png.covers(&png));
        for bad in ["", "image", "*/*", "image/", "/png", "image/png; q=1", "image /png", "image/p*g", "ïmage/png"] {
            assert!(MediaRange::parse(bad).is_err(), "{bad:?}");
        }
        for bad in ["", "image", "*/*", "image/*", " ; x", "text/plain/x"] {
            assert_eq!(media_type_of(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn hostile_text_never_panics(text in "(?s).{0,300}") {
            let _ = MediaRange::parse(&text);
            let _ = media_type_of(&text);
        }
    }
}
