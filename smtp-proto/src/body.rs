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
    ///
    /// On error nothing is appended and the encoder is left as it was.
    pub fn encode_data(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), UsageError> {
        let mode = match self.line_endings {
            LineEndings::Reject => LineEndings::Reject,
            _ => LineEndings::Normalize,
        };
        out.reserve(chunk.len() + chunk.len() / 32 + 8);
        self.encode(chunk, out, true, mode)
    }

    /// DATA framing: appends whatever was held back, a CRLF if the message does not
    /// end with one, and the terminating `.` CRLF. An empty message is sent as the
    /// terminating line alone.
    ///
    /// On error (a held-back bare CR in [`LineEndings::Reject`] mode) nothing is
    /// appended. The encoder is spent once this succeeds.
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
    ///
    /// A non-last chunk whose only byte is a held-back CR also appends nothing and
    /// returns 0. An empty message gets no final CRLF: `encode_bdat(&[], true, ..)`
    /// on a fresh encoder appends `BDAT 0 LAST` CRLF. On error nothing is appended
    /// and the encoder is left as it was.
    pub fn encode_bdat(
        &mut self,
        chunk: &[u8],
        last: bool,
        out: &mut Vec<u8>,
    ) -> Result<u64, UsageError> {
        let start = out.len();
        // The command line goes before the data, so room for it is kept first:
        // the data's size nearly always has as many digits as the chunk's length
        // (only added line-ending bytes crossing a power of ten change that), and
        // then the line is written in place, with no move of the data.
        let guess = bdat_header(chunk.len(), last);
        out.reserve(guess.len() + chunk.len() + chunk.len() / 32 + 2);
        out.extend_from_slice(guess.as_bytes());
        let data_start = out.len();
        if self.line_endings == LineEndings::Binary {
            copy(chunk, out);
            self.consumed += chunk.len() as u64;
            if !chunk.is_empty() {
                self.empty = false;
            }
        } else {
            let saved = self.clone();
            let res = self
                .encode(chunk, out, false, self.line_endings)
                .and_then(|()| if last { self.finish_lines(out) } else { Ok(()) });
            if let Err(e) = res {
                *self = saved;
                out.truncate(start);
                return Err(e);
            }
        }
        let n = out.len() - data_start;
        if n == 0 && !last {
            out.truncate(start);
            return Ok(0);
        }
        let header = bdat_header(n, last);
        match out.get_mut(start..data_start) {
            Some(slot) if slot.len() == header.len() => slot.copy_from_slice(header.as_bytes()),
            // The rare case: the data is moved once to fit the longer line.
            _ => {
                out.splice(start..data_start, header.bytes());
            }
        }
        Ok(n as u64)
    }

    /// Bytes of the caller's message consumed so far.
    #[must_use]
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The line-ending policy the encoder was made with.
    #[must_use]
    pub fn line_endings(&self) -> LineEndings {
        self.line_endings
    }

    /// Emits a held-back CR and the final CRLF when missing.
    fn finish_lines(&mut self, out: &mut Vec<u8>) -> Result<(), UsageError> {
        if self.pending_cr && self.line_endings == LineEndings::Reject {
            return Err(bare(self.consumed.saturating_sub(1)));
        }
        if self.pending_cr {
            self.pending_cr = false;
            out.extend_from_slice(b"\r\n");
            self.ends_with_crlf = true;
            self.at_line_start = true;
            self.empty = false;
        }
        if !self.empty && !self.ends_with_crlf {
            out.extend_from_slice(b"\r\n");
            self.ends_with_crlf = true;
            self.at_line_start = true;
        }
        Ok(())
    }

    /// Normalises (and with `stuff`, dot-stuffs) `chunk` into `out`. On error the
    /// encoder and `out` are restored.
    fn encode(
        &mut self,
        chunk: &[u8],
        out: &mut Vec<u8>,
        stuff: bool,
        mode: LineEndings,
    ) -> Result<(), UsageError> {
        if chunk.is_empty() {
            return Ok(());
        }
        let start = out.len();
        let saved = self.clone();
        match self.encode_runs(chunk, out, stuff, mode == LineEndings::Reject) {
            Ok(()) => {
                self.consumed += chunk.len() as u64;
                if let Some(emitted) = out.get(start..) {
                    if !emitted.is_empty() {
                        self.empty = false;
                        // A CR is only ever emitted together with its LF, so the
                        // bytes of this call decide how the output ends.
                        self.ends_with_crlf = emitted.ends_with(b"\r\n");
                    }
                }
                if self.pending_cr {
                    self.ends_with_crlf = false;
                }
                Ok(())
            }
            Err(e) => {
                *self = saved;
                out.truncate(start);
                Err(e)
            }
        }
    }

    /// The hot loop. Bytes are never copied one by one: [`plain_until`] finds how
    /// far the bytes go out unchanged and copies them as it goes (where lines are
    /// short, each block in the same pass that checks it; elsewhere in stretches
    /// of up to [`COPY_MAX`] bytes), and the byte that stopped the scan is dealt
    /// with (a stuffed dot, the LF of a bare CR, the CR of a bare LF, a CR held
    /// back at the end of the chunk).
    fn encode_runs(
        &mut self,
        chunk: &[u8],
        out: &mut Vec<u8>,
        stuff: bool,
        reject: bool,
    ) -> Result<(), UsageError> {
        let base = self.consumed;
        let mut i = 0;
        if self.pending_cr {
            self.pending_cr = false;
            if chunk.first() == Some(&b'\n') {
                i = 1;
            } else if reject {
                return Err(bare(base.saturating_sub(1)));
            }
            out.extend_from_slice(b"\r\n");
            self.at_line_start = true;
        }
        let mut sink = Emit { out, run: i };
        let mut scan = Scan::default();
        // Here and at every turn `chunk[i]` is not the LF of a CRLF whose CR came
        // before it, which is what `plain_until` asks.
        while let Some(&b) = chunk.get(i) {
            if stuff && self.at_line_start && b == b'.' {
                sink.flush(chunk, i);
                sink.out.push(b'.');
            }
            let k = if stuff {
                plain_until::<true, _>(chunk, i, &mut scan, &mut sink)
            } else {
                plain_until::<false, _>(chunk, i, &mut scan, &mut sink)
            };
            if k > i {
                self.at_line_start = chunk.get(k - 1) == Some(&b'\n');
            }
            match chunk.get(k) {
                None => break,
                Some(b'\r') => match chunk.get(k + 1) {
                    // The scan paused on a well-formed CRLF: it goes on from there.
                    Some(b'\n') => {
                        i = k;
                        continue;
                    }
                    None => {
                        // Whether LF follows is for the next chunk to say.
                        sink.flush(chunk, k);
                        self.pending_cr = true;
                        self.at_line_start = false;
                        return Ok(());
                    }
                    Some(_) => {}
                },
                // An LF the scan stops at is bare.
                Some(b'\n') => {}
                // A dot at the start of a line (stuffed at the next turn), or a
                // pause after a long stretch: the stretch is copied while it is
                // still in the L1 cache.
                Some(_) => {
                    sink.flush(chunk, k);
                    i = k;
                    continue;
                }
            }
            // A bare CR or a bare LF.
            if reject {
                return Err(bare(base + k as u64));
            }
            sink.flush(chunk, k);
            sink.out.extend_from_slice(b"\r\n");
            i = k + 1;
            sink.run = i;
            self.at_line_start = true;
        }
        sink.flush(chunk, chunk.len());
        Ok(())
    }
}

mod scan;
use scan::{Count, Emit, Scan, copy, plain_until};

/// Longest `BDAT <u64> LAST` CRLF line.
const BDAT_HEADER_MAX: usize = "BDAT 18446744073709551615 LAST\r\n".len();

/// The `BDAT n` or `BDAT n LAST` command line.
fn bdat_header(n: usize, last: bool) -> BdatHeader {
    use std::io::Write as _;
    let mut buf = [0u8; BDAT_HEADER_MAX];
    let mut rest = &mut buf[..];
    let tail = if last { " LAST\r\n" } else { "\r\n" };
    // The buffer holds the longest line (a u64 size and LAST), so this cannot
    // fail; were it to, the length below would show a short line, never a panic.
    let _ = write!(rest, "BDAT {n}{tail}");
    let len = BDAT_HEADER_MAX - rest.len();
    BdatHeader { buf, len }
}

/// A BDAT command line, on the stack.
struct BdatHeader {
    buf: [u8; BDAT_HEADER_MAX],
    len: usize,
}

impl BdatHeader {
    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    fn len(&self) -> usize {
        self.len
    }

    fn bytes(&self) -> impl Iterator<Item = u8> + '_ {
        self.as_bytes().iter().copied()
    }
}

fn bare(offset: u64) -> UsageError {
    UsageError::BareLineEnding { offset }
}

/// The message as a server stores it, line endings wise: bare CR and bare LF
/// become CRLF and a final CRLF is added when missing, exactly as the DATA and
/// BDAT encoders do (without dot-stuffing or framing). Borrowed when there is
/// nothing to change. What a DKIM signature must be computed over, so that it
/// matches the stored message.
#[must_use]
pub fn normalize_line_endings(message: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let well_formed = message_size(message, LineEndings::Reject).is_ok();
    if well_formed && (message.is_empty() || message.ends_with(b"\r\n")) {
        return std::borrow::Cow::Borrowed(message);
    }
    let mut encoder = BodyEncoder::new(LineEndings::Normalize);
    let mut out = Vec::with_capacity(message.len() + message.len() / 32 + 2);
    // In Normalize mode neither call can fail (only Reject refuses bytes); were
    // one to, the message would go out as it is and the encoder on the wire
    // would still normalise it.
    let done = encoder
        .encode(message, &mut out, false, LineEndings::Normalize)
        .and_then(|()| encoder.finish_lines(&mut out));
    match done {
        Ok(()) => std::borrow::Cow::Owned(out),
        Err(_) => std::borrow::Cow::Borrowed(message),
    }
}

/// The size the message has once line endings are normalised (and a final CRLF
/// added when missing): what `SIZE=` announces (RFC 1870 section 3: dot-stuffing
/// and the terminating dot do not count). With [`LineEndings::Reject`] a bare CR or
/// LF is an error; with [`LineEndings::Binary`] the size is the length. Computed
/// without copying, by the encoder's scan.
pub fn message_size(message: &[u8], line_endings: LineEndings) -> Result<u64, UsageError> {
    if line_endings == LineEndings::Binary {
        return Ok(message.len() as u64);
    }
    let mut size = message.len() as u64;
    if line_endings == LineEndings::Normalize && memchr::memchr(b'\r', message).is_none() {
        // No CR at all (text with LF line endings, or a single line): every LF
        // is bare, and counting them (SIMD too) is all there is to do.
        size += memchr::memchr_iter(b'\n', message).count() as u64;
        if message.last().is_some_and(|&b| b != b'\n') {
            size += 2;
        }
        return Ok(size);
    }
    let mut scan = Scan::default();
    let mut i = 0;
    while i < message.len() {
        let j = plain_until::<false, _>(message, i, &mut scan, &mut Count);
        match message.get(j) {
            None => break,
            // A pause, on a well-formed CRLF or on any other byte.
            Some(b'\r') if message.get(j + 1) == Some(&b'\n') => {}
            Some(b'\r' | b'\n') => {
                if line_endings == LineEndings::Reject {
                    return Err(UsageError::BareLineEnding { offset: j as u64 });
                }
                size += 1;
                i = j + 1;
                continue;
            }
            Some(_) => {}
        }
        // A pause comes after at least one byte: `j > i`.
        i = j;
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
    /// After CRLF (or at the start): a dot here is a stuffed one or the terminator.
    #[default]
    LineStart,
    /// Inside a line.
    Middle,
    /// After a CR inside a line.
    Cr,
    /// After a dot at the start of a line.
    Dot,
    /// After a dot and a CR at the start of a line.
    DotCr,
    /// The terminating line was seen.
    Done,
}

/// Streaming inverse of DATA framing, for servers and tests: removes the leading
/// dot of stuffed lines and stops at the terminating `.` CRLF.
///
/// Only CRLF ends a line (RFC 5321 section 2.3.8): a dot after a bare LF or a bare
/// CR is message text. The terminator is the line `.` CRLF, so a wire that starts
/// with `.` CRLF carries the empty message.
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

    /// Whether the terminating `.` CRLF was seen.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.state == UnstuffState::Done
    }

    /// Feeds wire bytes; appends the message bytes to `out`. Returns `Some(n)`
    /// when the terminator was found, `n` being how many bytes of `input` were used
    /// (the rest belongs to the next command), else `None` (all of `input` used).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        use UnstuffState as S;
        if self.state == S::Done {
            return Some(0);
        }
        out.reserve(input.len());
        let mut i = 0;
        while let Some(&b) = input.get(i) {
            match self.state {
                S::Middle => {
                    // Copy up to and including the next CR in one go.
                    let rest = input.get(i..).unwrap_or_default();
                    match memchr::memchr(b'\r', rest) {
                        None => {
                            out.extend_from_slice(rest);
                            return None;
                        }
                        Some(p) => {
                            out.extend_from_slice(rest.get(..=p).unwrap_or_default());
                            i += p + 1;
                            self.state = S::Cr;
                        }
                    }
                }
                S::LineStart => {
                    if b == b'.' {
                        self.state = S::Dot;
                        i += 1;
                    } else {
                        self.state = S::Middle;
                    }
                }
                S::Cr => {
                    if b == b'\n' {
                        out.push(b'\n');
                        i += 1;
                        self.state = S::LineStart;
                    } else {
                        self.state = S::Middle;
                    }
                }
                S::Dot => {
                    // The leading dot is dropped in every case.
                    if b == b'\r' {
                        self.state = S::DotCr;
                        i += 1;
                    } else {
                        self.state = S::Middle;
                    }
                }
                S::DotCr => {
                    if b == b'\n' {
                        self.state = S::Done;
                        return Some(i + 1);
                    }
                    // `.` CR then something else: the CR is text.
                    out.push(b'\r');
                    self.state = S::Cr;
                }
                S::Done => return Some(i),
            }
        }
        None
    }
}
