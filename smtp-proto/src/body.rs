//! The message body on the wire: RFC 5321 section 4.5.2 (transparency: dot-stuffing)
//! and section 2.3.8 (lines end in CRLF), RFC 3030 (BDAT chunks).
//!
//! [`BodyEncoder`] streams: it takes the caller's message in chunks of any size and
//! appends the wire form to an output buffer, carrying its state across chunk
//! boundaries (a chunk may end between CR and LF, or right before a dot). Bare CR
//! and bare LF become CRLF by default ([`LineEndings::Normalize`]), which also closes
//! the SMTP smuggling attack (`\n.\n` and `\r.\r` can never reach the wire), or are
//! refused ([`LineEndings::Reject`]). A final CRLF is added only when the message
//! does not end with one.

use crate::error::UsageError;

/// What to do with a CR or LF that is not part of a CRLF pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LineEndings {
    /// Turn it into CRLF (smtplib does this for string messages).
    #[default]
    Normalize,
    /// Fail with [`UsageError::BareLineEnding`].
    Reject,
    /// Leave the bytes alone: only for BDAT with `BODY=BINARYMIME`. With DATA this
    /// behaves as `Normalize`.
    Binary,
}

/// Streaming encoder for one message.
#[derive(Debug, Clone)]
pub struct BodyEncoder {
    line_endings: LineEndings,
    // Implementation state (helper fills in).
}

impl BodyEncoder {
    /// A fresh encoder.
    #[must_use]
    pub fn new(line_endings: LineEndings) -> BodyEncoder {
        let _ = line_endings;
        todo!()
    }

    /// DATA framing: appends the dot-stuffed, normalised form of `chunk` to `out`.
    /// A trailing CR is held back until the next chunk shows whether LF follows.
    pub fn encode_data(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), UsageError> {
        let _ = (chunk, out);
        todo!()
    }

    /// DATA framing: appends whatever was held back, a CRLF if the message does not
    /// end with one, and the terminating `.` CRLF.
    pub fn finish_data(&mut self, out: &mut Vec<u8>) -> Result<(), UsageError> {
        let _ = out;
        todo!()
    }

    /// BDAT framing: appends one whole `BDAT n[ LAST]` CRLF command followed by the
    /// `n` bytes of the normalised (not dot-stuffed) chunk, and returns `n`. With
    /// `last`, held-back bytes and a missing final CRLF are included. An empty
    /// non-last chunk appends nothing and returns 0 (so no `BDAT 0` is sent except
    /// as `BDAT 0 LAST`).
    pub fn encode_bdat(&mut self, chunk: &[u8], last: bool, out: &mut Vec<u8>) -> Result<u64, UsageError> {
        let _ = (chunk, last, out);
        todo!()
    }

    /// Bytes of the caller's message consumed so far.
    #[must_use]
    pub fn consumed(&self) -> u64 {
        todo!()
    }
}

/// The size the message has once line endings are normalised (and a final CRLF
/// added when missing): what `SIZE=` announces (RFC 1870 section 3: dot-stuffing
/// and the terminating dot do not count). With [`LineEndings::Reject`] a bare CR or
/// LF is an error. Computed without copying.
pub fn message_size(message: &[u8], line_endings: LineEndings) -> Result<u64, UsageError> {
    let _ = (message, line_endings);
    todo!()
}

/// Streaming inverse of DATA framing, for servers and tests: removes the leading
/// dot of stuffed lines and stops at the terminating `.` CRLF.
#[derive(Debug, Clone, Default)]
pub struct Unstuffer {
    // Implementation state (helper fills in).
}

impl Unstuffer {
    /// A fresh decoder.
    #[must_use]
    pub fn new() -> Unstuffer {
        todo!()
    }

    /// Feeds wire bytes; appends the message bytes to `out`. Returns `Some(n)`
    /// when the terminator was found, `n` being how many bytes of `input` were used
    /// (the rest belongs to the next command), else `None` (all of `input` used).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        let _ = (input, out);
        todo!()
    }
}
