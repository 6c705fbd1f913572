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
    /// The next byte begins a line (so a dot there must be doubled).
    at_line_start: bool,
    /// The previous chunk ended in CR; whether LF follows is not known yet.
    pending_cr: bool,
    /// What was emitted so far ends with CRLF (or nothing was emitted).
    ends_with_crlf: bool,
    /// Nothing of the message was emitted yet.
    empty: bool,
    consumed: u64,
}

impl BodyEncoder {
    /// A fresh encoder.
    #[must_use]
    pub fn new(line_endings: LineEndings) -> BodyEncoder {
        BodyEncoder {
            line_endings,
            at_line_start: true,
            pending_cr: false,
            ends_with_crlf: true,
            empty: true,
            consumed: 0,
        }
    }

    /// DATA framing: appends the dot-stuffed, normalised form of `chunk` to `out`.
    /// A trailing CR is held back until the next chunk shows whether LF follows.
    pub fn encode_data(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), UsageError> {
        let mode = match self.line_endings {
            LineEndings::Reject => LineEndings::Reject,
            _ => LineEndings::Normalize,
        };
        self.encode(chunk, out, true, mode)
    }

    /// DATA framing: appends whatever was held back, a CRLF if the message does not
    /// end with one, and the terminating `.` CRLF. An empty message is sent as the
    /// terminating line alone.
    pub fn finish_data(&mut self, out: &mut Vec<u8>) -> Result<(), UsageError> {
        self.finish_lines(out)?;
        out.extend_from_slice(b".\r\n");
        Ok(())
    }

    /// BDAT framing: appends one whole `BDAT n[ LAST]` CRLF command followed by the
    /// `n` bytes of the normalised (not dot-stuffed) chunk, and returns `n`. With
    /// `last`, held-back bytes and a missing final CRLF are included (not in
    /// [`LineEndings::Binary`] mode, where bytes go unchanged). An empty non-last
    /// chunk appends nothing and returns 0 (so no `BDAT 0` is sent except as
    /// `BDAT 0 LAST`).
    pub fn encode_bdat(
        &mut self,
        chunk: &[u8],
        last: bool,
        out: &mut Vec<u8>,
    ) -> Result<u64, UsageError> {
        let start = out.len();
        if self.line_endings == LineEndings::Binary {
            out.extend_from_slice(chunk);
            self.consumed += chunk.len() as u64;
        } else {
            if let Err(e) = self.encode(chunk, out, false, self.line_endings) {
                out.truncate(start);
                return Err(e);
            }
            if last {
                if let Err(e) = self.finish_lines(out) {
                    out.truncate(start);
                    return Err(e);
                }
            }
        }
        let n = out.len() - start;
        if n == 0 && !last {
            return Ok(0);
        }
        let header = if last {
            format!("BDAT {n} LAST\r\n")
        } else {
            format!("BDAT {n}\r\n")
        };
        out.splice(start..start, header.into_bytes());
        Ok(n as u64)
    }

    /// Bytes of the caller's message consumed so far.
    #[must_use]
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Emits a held-back CR and the final CRLF when missing.
    fn finish_lines(&mut self, out: &mut Vec<u8>) -> Result<(), UsageError> {
        if self.pending_cr && self.line_endings == LineEndings::Reject {
            return Err(self.bare(self.consumed.saturating_sub(1)));
        }
        if self.pending_cr {
            self.pending_cr = false;
            out.extend_from_slice(b"\r\n");
            self.ends_with_crlf = true;
            self.empty = false;
        }
        if !self.empty && !self.ends_with_crlf {
            out.extend_from_slice(b"\r\n");
            self.ends_with_crlf = true;
        }
        Ok(())
    }

    fn bare(&self, offset: u64) -> UsageError {
        UsageError::BareLineEnding { offset }
    }

    /// Normalises (and with `stuff`, dot-stuffs) `chunk` into `out`: text runs are
    /// found with a vectorised search for CR or LF and copied whole.
    fn encode(
        &mut self,
        chunk: &[u8],
        out: &mut Vec<u8>,
        stuff: bool,
        mode: LineEndings,
    ) -> Result<(), UsageError> {
        let base = self.consumed;
        out.reserve(chunk.len() + chunk.len() / 64 + 8);
        let mut i = 0;
        if self.pending_cr && !chunk.is_empty() {
            self.pending_cr = false;
            if chunk[0] == b'\n' {
                i = 1;
            } else if mode == LineEndings::Reject {
                return Err(self.bare(base.saturating_sub(1)));
            }
            out.extend_from_slice(b"\r\n");
            self.at_line_start = true;
            self.ends_with_crlf = true;
            self.empty = false;
        }
        while i < chunk.len() {
            if stuff && self.at_line_start && chunk[i] == b'.' {
                out.push(b'.');
            }
            self.at_line_start = false;
            let rest = &chunk[i..];
            let Some(p) = memchr::memchr2(b'\r', b'\n', rest) else {
                out.extend_from_slice(rest);
                self.ends_with_crlf = false;
                self.empty = false;
                break;
            };
            if p > 0 {
                out.extend_from_slice(&rest[..p]);
                self.empty = false;
            }
            let j = i + p;
            if chunk[j] == b'\r' {
                match chunk.get(j + 1) {
                    None => {
                        // Whether LF follows is for the next chunk to say.
                        self.pending_cr = true;
                        self.ends_with_crlf = false;
                        i = chunk.len();
                        continue;
                    }
                    Some(b'\n') => i = j + 2,
                    Some(_) => {
                        if mode == LineEndings::Reject {
                            return Err(self.bare(base + j as u64));
                        }
                        i = j + 1;
                    }
                }
            } else {
                if mode == LineEndings::Reject {
                    return Err(self.bare(base + j as u64));
                }
                i = j + 1;
            }
            out.extend_from_slice(b"\r\n");
            self.at_line_start = true;
            self.ends_with_crlf = true;
            self.empty = false;
        }
        self.consumed = base + chunk.len() as u64;
        Ok(())
    }
}

/// The size the message has once line endings are normalised (and a final CRLF
/// added when missing): what `SIZE=` announces (RFC 1870 section 3: dot-stuffing
/// and the terminating dot do not count). With [`LineEndings::Reject`] a bare CR or
/// LF is an error; with [`LineEndings::Binary`] the size is the length. Computed
/// without copying.
pub fn message_size(message: &[u8], line_endings: LineEndings) -> Result<u64, UsageError> {
    if line_endings == LineEndings::Binary {
        return Ok(message.len() as u64);
    }
    let mut size = message.len() as u64;
    let mut i = 0;
    while let Some(p) = memchr::memchr2(b'\r', b'\n', &message[i..]) {
        let j = i + p;
        if message[j] == b'\r' && message.get(j + 1) == Some(&b'\n') {
            i = j + 2;
            continue;
        }
        if line_endings == LineEndings::Reject {
            return Err(UsageError::BareLineEnding { offset: j as u64 });
        }
        size += 1;
        i = j + 1;
    }
    if let Some(&b) = message.last() {
        if b != b'\n' && b != b'\r' {
            size += 2;
        }
    }
    Ok(size)
}

/// Where the [`Unstuffer`] is within a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum UnstuffState {
    #[default]
    LineStart,
    Middle,
    Cr,
    Dot,
    DotCr,
    Done,
}

/// Streaming inverse of DATA framing, for servers and tests: removes the leading
/// dot of stuffed lines and stops at the terminating `.` CRLF.
#[derive(Debug, Clone, Default)]
pub struct Unstuffer {
    state: UnstuffState,
}

impl Unstuffer {
    /// A fresh decoder.
    #[must_use]
    pub fn new() -> Unstuffer {
        Unstuffer::default()
    }

    /// Feeds wire bytes; appends the message bytes to `out`. Returns `Some(n)`
    /// when the terminator was found, `n` being how many bytes of `input` were used
    /// (the rest belongs to the next command), else `None` (all of `input` used).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        use UnstuffState as S;
        if self.state == S::Done {
            return Some(0);
        }
        for (idx, &b) in input.iter().enumerate() {
            self.state = match (self.state, b) {
                (S::LineStart, b'.') => S::Dot,
                (S::Dot, b'\r') => S::DotCr,
                (S::DotCr, b'\n') => {
                    self.state = S::Done;
                    return Some(idx + 1);
                }
                (S::DotCr, _) => {
                    out.push(b'\r');
                    out.push(b);
                    if b == b'\r' { S::Cr } else { S::Middle }
                }
                (S::Cr, b'\n') => {
                    out.push(b);
                    S::LineStart
                }
                (_, b'\r') => {
                    out.push(b);
                    S::Cr
                }
                (_, _) => {
                    out.push(b);
                    S::Middle
                }
            };
        }
        None
    }
}
