//! Client data on its way to a log: every character that could end a line, drive a terminal or
//! reorder what a reader sees is written as an escape, so one event stays one line and reads as
//! what it is.

use std::{fmt, io};

/// Whether `c` must not reach a log raw: control characters (C0, DEL, C1), line and paragraph
/// separators, bidi and other format characters, unassigned and private-use code points (what
/// the standard library's `escape_debug` does not print as is), and the backslash that starts
/// an escape.
pub(crate) fn needs_escape(c: char) -> bool {
    match c {
        '\\' => true,
        // Printable ASCII is printed as is; `escape_debug` would add a backslash to quotes.
        ' '..='~' => false,
        _ => c.escape_debug().nth(1).is_some(),
    }
}

/// A value as a log field: its `Display` text with every character for which
/// [`needs_escape`] holds written as `\u{…}` (and `\` as `\\`).
pub(crate) struct Escaped<T>(pub(crate) T);

impl<T: fmt::Display> fmt::Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write as _;
        write!(EscapingWriter { out: f, escape: needs_escape }, "{}", self.0)
    }
}

impl<T: fmt::Display> fmt::Debug for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Passes text through to `out`, writing each character for which `escape` holds as
/// `\u{…}` (a backslash, if `escape` selects it, as `\\`): the one escaping routine for
/// log fields and for whole log lines. No copy of the text is made.
struct EscapingWriter<W> {
    out: W,
    escape: fn(char) -> bool,
}

impl<W: fmt::Write> fmt::Write for EscapingWriter<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(at) = rest.find(self.escape) {
            self.out.write_str(&rest[..at])?;
            let mut chars = rest[at..].chars();
            match chars.next() {
                Some('\\') => self.out.write_str("\\\\")?,
                Some(c) => write!(self.out, "\\u{{{:x}}}", u32::from(c))?,
                None => {}
            }
            rest = chars.as_str();
        }
        self.out.write_str(rest)
    }
}

/// Whether `c` must not appear raw inside a finished log line: what [`needs_escape`] selects,
/// except the backslash. A line is past field formatting here, so its backslashes are the ones
/// [`Escaped`] and `Debug` wrote; escaping them again would garble every escaped value.
fn breaks_a_line(c: char) -> bool {
    c != '\\' && needs_escape(c)
}
/// The writer of one event made by `OneLine`: collects the event and writes it, escaped to
/// one line, to the inner writer when dropped (or flushed).
#[derive(Debug)]
pub struct OneLineWriter<W: io::Write> {
    inner: W,
    event: Vec<u8>,
}

impl<W: io::Write> OneLineWriter<W> {
    /// A writer that escapes what it collects into one line for `inner`.
    pub fn new(inner: W) -> Self {
        Self { inner, event: Vec::new() }
    }

    /// Writes what was collected as one escaped line and forgets it.
    fn emit(&mut self) -> io::Result<()> {
        if self.event.is_empty() {
            return Ok(());
        }
        let line = one_line(&String::from_utf8_lossy(&self.event));
        self.event.clear();
        self.inner.write_all(line.as_bytes())?;
        self.inner.flush()
    }
}

impl<W: io::Write> io::Write for OneLineWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.event.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.emit()
    }
}

impl<W: io::Write> Drop for OneLineWriter<W> {
    fn drop(&mut self) {
        // A log line that cannot be written has nowhere to be reported.
        let _ = self.emit();
    }
}

/// `event` as one line: everything [`breaks_a_line`] selects escaped, one trailing `\n` (the
/// event's own final newline, or an added one).
fn one_line(event: &str) -> String {
    use fmt::Write as _;
    let body = event.strip_suffix('\n').unwrap_or(event);
    let mut line = String::with_capacity(body.len() + 1);
    // Writing into a `String` does not fail.
    let _ = EscapingWriter { out: &mut line, escape: breaks_a_line }.write_str(body);
    line.push('\n');
    line
}

/// A serialised JSON document with every non-ASCII character for which [`needs_escape`] holds
/// written as a `\uXXXX` escape (U+2028 and U+2029 end a line in JavaScript and in many log
/// viewers; bidi controls reorder a line on screen). The JSON value is unchanged: outside
/// strings, serialised JSON is ASCII, and serde already escapes ASCII control characters.
pub(crate) fn json_without_raw_separators(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if !c.is_ascii() && needs_escape(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_breaks_or_disguises_a_line() {
        let hostile = "a\r\nb\x1b[31m\u{2028}\u{2029}\u{202e}\u{2066}\u{200b}\u{7f}\u{85}\\c";
        let escaped = Escaped(hostile).to_string();
        assert_eq!(escaped, r"a\u{d}\u{a}b\u{1b}[31m\u{2028}\u{2029}\u{202e}\u{2066}\u{200b}\u{7f}\u{85}\\c");
        assert!(escaped.chars().all(|c| c.is_ascii() && !c.is_ascii_control()));
        // Ordinary text, quotes and non-ASCII names stay readable.
        assert_eq!(Escaped(r#"写真 café "x" 'y'"#).to_string(), r#"写真 café "x" 'y'"#);
    }

    #[test]
    fn every_code_point_is_one_line_after_escaping() {
        for c in (0..=0x10_FFFFu32).filter_map(char::from_u32) {
            let escaped = Escaped(c).to_string();
            assert!(!escaped.contains(['\r', '\n', '\x1b', '\u{2028}', '\u{2029}']), "{c:?}");
            assert!(!escaped.chars().any(|e| e != c && needs_escape(e) && e != '\\'), "{c:?}");
        }
    }

    #[test]
    fn one_line_writer_escapes_an_event_written_in_pieces() {
        use std::io::Write as _;
        let mut out = Vec::new();
        {
            let mut writer = OneLineWriter::new(&mut out);
            writer.write_all(b"a\n").unwrap();
            writer.write_all("b\r\x1b[1m\u{2028}\u{202e}".as_bytes()).unwrap();
            writer.write_all(b"\\u{a} c\n").unwrap();
        }
        assert_eq!(String::from_utf8(out).unwrap(), "a\\u{a}b\\u{d}\\u{1b}[1m\\u{2028}\\u{202e}\\u{a} c\n");
    }

    #[test]
    fn one_line_is_one_line_for_every_code_point() {
        for c in (0..=0x10_FFFFu32).filter_map(char::from_u32) {
            let line = one_line(&format!("x{c}y\n"));
            assert_eq!(line.matches('\n').count(), 1, "{c:?}");
            assert!(line.ends_with('\n'), "{c:?}");
            assert!(!line.chars().any(|e| e != '\n' && breaks_a_line(e)), "{c:?}");
        }
        assert_eq!(one_line("no newline"), "no newline\n");
    }

    #[test]
    fn json_keeps_its_value_without_raw_separators() {
        let value = serde_json::json!({ "name": "a\u{2028}b\u{202e}c\n\u{1F600}\u{E0001}" });
        let text = json_without_raw_separators(&value.to_string());
        assert!(!text.contains(['\u{2028}', '\u{202e}', '\u{E0001}', '\n']), "{text}");
        assert!(text.contains('\u{1F600}'), "printable non-ASCII stays: {text}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), value);
    }
}
