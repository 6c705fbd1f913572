//! The one JSON object `--json` prints: [`smtp_blocking::smtp_adapter::Report`]
//! through serde_json, on one line, with a space after each `,` and `:` as the
//! README's examples show it, and no control character left unescaped.

use std::io;

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter};
use smtp_blocking::smtp_adapter::Report;

/// serde_json's compact output with `", "` and `": "` between items.
struct Spaced;

impl Formatter for Spaced {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        CompactFormatter.end_array_value(w)
    }

    /// serde_json escapes the controls below U+0020; DEL and the C1 range
    /// (which some terminals act on, U+009B as CSI) get `\u` escapes too, so
    /// that no control character from a server reaches the terminal.
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut rest = fragment;
        while let Some(i) = rest.find(char::is_control) {
            let (clean, tail) = rest.split_at(i);
            w.write_all(clean.as_bytes())?;
            let mut chars = tail.chars();
            if let Some(c) = chars.next() {
                write!(w, "\\u{:04x}", u32::from(c))?;
            }
            rest = chars.as_str();
        }
        w.write_all(rest.as_bytes())
    }
}

/// The report as one line of JSON.
pub(crate) fn line(report: &Report) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Spaced);
    // Serialising to memory cannot fail: every value is a string, a number, a
    // list or a map with string keys.
    if report.serialize(&mut ser).is_err() {
        return String::from(
            "{\"error\": {\"kind\": \"internal\", \"code\": null, \"message\": \"JSON\"}}",
        );
    }
    String::from_utf8_lossy(&out).into_owned()
}
