//! Server replies: RFC 5321 section 4.2 (reply syntax, multiline replies), RFC 3463
//! and RFC 2034 (enhanced status codes).
//!
//! [`ReplyParser`] is incremental: it consumes whole lines from the caller's buffer
//! and keeps the lines of an unfinished multiline reply itself, so a reply can arrive
//! in any number of pieces. Partial input is `Ok` with no reply, never an error. Every
//! quantity is bounded by [`ReplyLimits`].

use std::fmt;

use crate::error::ProtocolError;

/// The enhanced status code at the start of `first_line`, when its class agrees
/// with `code`.
fn enhanced(code: u16, first_line: &[u8]) -> Option<EnhancedStatus> {
    EnhancedStatus::parse_bytes(first_line)
        .map(|(s, _)| s)
        .filter(|s| u16::from(s.class) == code / 100)
}

/// An enhanced mail system status code (RFC 3463), such as `2.1.5`.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnhancedStatus {
    /// The class: 2 (success), 4 (persistent transient failure) or 5 (permanent).
    pub class: u8,
    /// The subject, 0 to 999.
    pub subject: u16,
    /// The detail, 0 to 999.
    pub detail: u16,
}

impl EnhancedStatus {
    /// Parses `class.subject.detail` at the start of `text`, followed by a space or
    /// the end of the text. Returns the status and the length it occupies.
    #[must_use]
    pub fn parse_prefix(text: &str) -> Option<(EnhancedStatus, usize)> {
        EnhancedStatus::parse_bytes(text.as_bytes())
    }

    /// [`EnhancedStatus::parse_prefix`] over the raw bytes of a line.
    fn parse_bytes(b: &[u8]) -> Option<(EnhancedStatus, usize)> {
        let class = *b.first()?;
        if !matches!(class, b'2' | b'4' | b'5') || b.get(1) != Some(&b'.') {
            return None;
        }
        let (subject, n1) = digits(&b[2..])?;
        let rest = &b[2 + n1..];
        if rest.first() != Some(&b'.') {
            return None;
        }
        let (detail, n2) = digits(&rest[1..])?;
        let end = 2 + n1 + 1 + n2;
        match b.get(end) {
            None | Some(b' ') => {}
            _ => return None,
        }
        Some((
            EnhancedStatus {
                class: class - b'0',
                subject,
                detail,
            },
            end,
        ))
    }
}

/// One to three decimal digits.
fn digits(b: &[u8]) -> Option<(u16, usize)> {
    let n = b.iter().take(4).take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 3 {
        return None;
    }
    let v = b[..n]
        .iter()
        .fold(0u16, |acc, c| acc * 10 + u16::from(c - b'0'));
    Some((v, n))
}

impl fmt::Display for EnhancedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// A complete server reply: a three-digit code and one or more lines of text.
///
/// The texts of the lines are kept in one string, joined by `\n` (a line never
/// contains LF, which ends it on the wire), so a reply costs one allocation however
/// many lines it has.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reply {
    code: u16,
    enhanced: Option<EnhancedStatus>,
    text: String,
}

impl Reply {
    /// Builds a reply (for tests and servers). `lines` are the texts after the code
    /// and separator; an empty vector is treated as one empty line. A line feed
    /// inside a line, which the wire cannot carry, becomes a space.
    #[must_use]
    pub fn new(code: u16, lines: Vec<String>) -> Reply {
        let mut text = String::new();
        for (i, line) in lines.iter().enumerate() {
            if i > 0 {
                text.push('\n');
            }
            text.push_str(&line.replace('\n', " "));
        }
        let first = lines.first().map_or(0, String::len);
        let enhanced = enhanced(code, &text.as_bytes()[..first]);
        Reply {
            code,
            enhanced,
            text,
        }
    }

    /// The three-digit reply code.
    #[must_use]
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The enhanced status code of the first line, when the server sent one whose
    /// class agrees with the reply code.
    #[must_use]
    pub fn enhanced(&self) -> Option<EnhancedStatus> {
        self.enhanced
    }

    /// The text of each line, without code and separator (at least one line).
    pub fn lines(&self) -> ReplyLines<'_> {
        ReplyLines(self.text.split('\n'))
    }

    /// The text of the first line.
    #[must_use]
    pub fn first_line(&self) -> &str {
        self.lines().next().unwrap_or("")
    }

    /// How many lines the reply has (at least one).
    #[must_use]
    pub fn line_count(&self) -> usize {
        self.lines().count()
    }

    /// The lines joined by `\n`, as smtplib returns them.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The queue id the server put in this reply ([`queue_id`]): what a
    /// reply to the end of a message says the message is called on the
    /// server.
    #[must_use]
    pub fn queue_id(&self) -> Option<&str> {
        queue_id(&self.text)
    }

    /// 2xx.
    #[must_use]
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 3xx: the server waits for more (354, 334).
    #[must_use]
    pub fn is_intermediate(&self) -> bool {
        (300..400).contains(&self.code)
    }

    /// 4xx.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5xx.
    #[must_use]
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }
}

/// The lines of a [`Reply`], first to last.
#[derive(Debug, Clone)]
pub struct ReplyLines<'a>(std::str::Split<'a, char>);

impl<'a> Iterator for ReplyLines<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        self.0.next()
    }
}

impl DoubleEndedIterator for ReplyLines<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back()
    }
}

/// A person reads this: the code and the lines joined by ` / `, each control
/// character the server sent shown as an escape ([`Escaped`]).
impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.code)?;
        for (i, line) in self.lines().enumerate() {
            if i > 0 {
                f.write_str(" / ")?;
            }
            Escaped(line).fmt(f)?;
        }
        Ok(())
    }
}

/// Text from a server (or anything else untrusted), made safe to show a
/// person on a terminal or in a log: every control character (C0, TAB, CR,
/// LF and NUL included, DEL, and the C1 range) is written as a visible
/// escape, `\x1b` for ESC, `\u{9b}` for a C1 character; everything else as
/// is. A backslash is not doubled, so escaping is idempotent (what it writes
/// contains no control character) at the cost of `\x1b` in the original
/// text reading like an escaped ESC. Invalid UTF-8 never gets here: the
/// reply parser replaced it with U+FFFD.
///
/// ```
/// use smtp_sansio::reply::Escaped;
/// assert_eq!(Escaped("220 \x1b[2Jmx\x07\r").to_string(), r"220 \x1b[2Jmx\x07\x0d");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(char::is_control) {
            let (clean, tail) = rest.split_at(i);
            f.write_str(clean)?;
            let mut chars = tail.chars();
            if let Some(c) = chars.next() {
                let n = u32::from(c);
                if n < 0x80 {
                    write!(f, "\\x{n:02x}")?;
                } else {
                    write!(f, "\\u{{{n:x}}}")?;
                }
            }
            rest = chars.as_str();
        }
        f.write_str(rest)
    }
}

/// The queue id in the text of a reply to the end of a message, when it says
/// `queued as ID` (Postfix, Exim, Sendmail and most others) or `id=ID`, the
/// marker in any case: the id runs to the next white space, `,`, `;`, `)` or
/// `>`. `None` when neither marker is there or nothing follows it.
#[must_use]
pub fn queue_id(text: &str) -> Option<&str> {
    let start = ["queued as ", "id="]
        .iter()
        .find_map(|m| find_ignoring_case(text, m).map(|at| at + m.len()))?;
    let rest = text.get(start..)?;
    let end = rest
        .find(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ')' | '>'))
        .unwrap_or(rest.len());
    rest.get(..end).filter(|id| !id.is_empty())
}

/// Where the ASCII `needle` first occurs in `haystack`, ignoring ASCII case.
fn find_ignoring_case(haystack: &str, needle: &str) -> Option<usize> {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    if n.len() > h.len() {
        return None;
    }
    (0..=h.len() - n.len()).find(|&at| h[at..at + n.len()].eq_ignore_ascii_case(n))
}

/// `text` with every control character escaped ([`Escaped`]); borrowed when
/// there is none.
#[must_use]
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains(char::is_control) {
        std::borrow::Cow::Owned(Escaped(text).to_string())
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Bounds on what one reply may occupy. The defaults are far above what RFC 5321
/// requires of servers (512 bytes a line) and what real servers send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplyLimits {
    /// Longest line, terminator included.
    pub max_line_len: usize,
    /// Most lines in one reply.
    pub max_lines: usize,
    /// Most bytes in one reply, terminators included.
    pub max_total: usize,
}

impl Default for ReplyLimits {
    fn default() -> Self {
        ReplyLimits {
            max_line_len: 4096,
            max_lines: 256,
            max_total: 64 * 1024,
        }
    }
}

/// Incremental reply parser.
///
/// A reply that arrives whole costs one scan of its bytes and one allocation; the
/// lines of a reply split across inputs are gathered in the parser meanwhile.
#[derive(Debug, Clone)]
pub struct ReplyParser {
    limits: ReplyLimits,
    code: Option<u16>,
    /// The texts of the lines of an unfinished reply, joined by `\n`.
    text: Vec<u8>,
    /// The length of the first line's text in `text`.
    first: usize,
    lines: usize,
    total: usize,
}

impl ReplyParser {
    /// A parser with the given limits.
    #[must_use]
    pub fn new(limits: ReplyLimits) -> ReplyParser {
        ReplyParser {
            limits,
            code: None,
            text: Vec::new(),
            first: 0,
            lines: 0,
            total: 0,
        }
    }

    /// The limits in force.
    #[must_use]
    pub fn limits(&self) -> ReplyLimits {
        self.limits
    }

    /// Whether part of a multiline reply has been consumed.
    #[must_use]
    pub fn is_mid_reply(&self) -> bool {
        self.code.is_some()
    }

    /// Consumes whole lines from the start of `input` until one reply is complete.
    ///
    /// Returns how many bytes were consumed and the reply, if one completed. Bytes
    /// of an unfinished line are not consumed (the caller keeps them and calls again
    /// with more); they are only checked against the line-length limit. A line ends
    /// at LF; a CR before it is dropped, so bare LF is tolerated.
    pub fn parse(&mut self, input: &[u8]) -> Result<(usize, Option<Reply>), ProtocolError> {
        let max_line = self.limits.max_line_len;
        let mut pos = 0;
        loop {
            let rest = &input[pos..];
            // A line longer than the limit is an error wherever its end is, so the
            // search for LF stops at the limit.
            let window = &rest[..rest.len().min(max_line)];
            let Some(nl) = memchr::memchr(b'\n', window) else {
                if rest.len() >= max_line {
                    return Err(ProtocolError::LineTooLong { limit: max_line });
                }
                return Ok((pos, None));
            };
            let line_len = nl + 1;
            let mut line = &rest[..nl];
            if let [head @ .., b'\r'] = line {
                line = head;
            }
            self.total += line_len;
            if self.total > self.limits.max_total {
                return Err(ProtocolError::ReplyTooLarge {
                    limit: self.limits.max_total,
                });
            }
            if self.lines >= self.limits.max_lines {
                return Err(ProtocolError::TooManyLines {
                    limit: self.limits.max_lines,
                });
            }
            let (code, last) = split_line(line)?;
            if let Some(expected) = self.code {
                if expected != code {
                    return Err(ProtocolError::InconsistentCode {
                        expected,
                        found: code,
                    });
                }
            }
            self.code = Some(code);
            self.lines += 1;
            pos += line_len;
            let body = &line[line.len().min(4)..];
            let (text, enhanced) = if self.lines == 1 && last {
                // The common one-line reply goes straight to its own string.
                (utf8(body.to_vec()), enhanced(code, body))
            } else {
                if self.lines == 1 {
                    self.first = body.len();
                } else {
                    self.text.push(b'\n');
                }
                self.text.extend_from_slice(body);
                if !last {
                    continue;
                }
                // The gathering buffer keeps its capacity (bounded by max_total)
                // for the next multiline reply; the reply gets an exact copy,
                // checked as UTF-8 once. (Joining by LF cannot change what is
                // valid: an invalid sequence ends at the LF either way.)
                let text = utf8(self.text.clone());
                let enhanced = enhanced(code, &self.text[..self.first]);
                self.text.clear();
                (text, enhanced)
            };
            self.code = None;
            self.lines = 0;
            self.total = 0;
            let reply = Reply {
                code,
                enhanced,
                text,
            };
            return Ok((pos, Some(reply)));
        }
    }
}

/// The bytes as a string, invalid UTF-8 replaced by U+FFFD.
fn utf8(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Checks `250-text` / `250 text` / `250` and returns the code and whether it is
/// the last line of its reply.
fn split_line(line: &[u8]) -> Result<(u16, bool), ProtocolError> {
    let malformed = || ProtocolError::MalformedReply(String::from_utf8_lossy(line).into_owned());
    let [a, b, c, rest @ ..] = line else {
        return Err(malformed());
    };
    if !(b'2'..=b'5').contains(a) || !b.is_ascii_digit() || !c.is_ascii_digit() {
        return Err(malformed());
    }
    let code = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
    match rest.first() {
        None | Some(b' ') => Ok((code, true)),
        Some(b'-') => Ok((code, false)),
        Some(_) => Err(malformed()),
    }
}
