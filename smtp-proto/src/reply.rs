//! Server replies: RFC 5321 section 4.2 (reply syntax, multiline replies), RFC 3463
//! and RFC 2034 (enhanced status codes).
//!
//! [`ReplyParser`] is incremental: it consumes whole lines from the caller's buffer
//! and keeps the lines of an unfinished multiline reply itself, so a reply can arrive
//! in any number of pieces. Partial input is `Ok` with no reply, never an error. Every
//! quantity is bounded by [`ReplyLimits`].

use std::fmt;

use crate::error::ProtocolError;

/// An enhanced mail system status code (RFC 3463), such as `2.1.5`.
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
        let b = text.as_bytes();
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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reply {
    code: u16,
    enhanced: Option<EnhancedStatus>,
    lines: Vec<String>,
}

impl Reply {
    /// Builds a reply (for tests and servers). `lines` are the texts after the code
    /// and separator; an empty vector is treated as one empty line.
    #[must_use]
    pub fn new(code: u16, lines: Vec<String>) -> Reply {
        let mut lines = lines;
        if lines.is_empty() {
            lines.push(String::new());
        }
        let enhanced = EnhancedStatus::parse_prefix(&lines[0])
            .map(|(s, _)| s)
            .filter(|s| u16::from(s.class) == code / 100);
        Reply {
            code,
            enhanced,
            lines,
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

    /// The text of each line, without code and separator (never empty).
    #[must_use]
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The lines joined by `\n`, as smtplib returns them.
    #[must_use]
    pub fn text(&self) -> String {
        self.lines.join("\n")
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

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.lines.join(" / "))
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
#[derive(Debug, Clone)]
pub struct ReplyParser {
    limits: ReplyLimits,
    code: Option<u16>,
    lines: Vec<String>,
    total: usize,
}

impl ReplyParser {
    /// A parser with the given limits.
    #[must_use]
    pub fn new(limits: ReplyLimits) -> ReplyParser {
        ReplyParser {
            limits,
            code: None,
            lines: Vec::new(),
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
        let mut pos = 0;
        loop {
            let rest = &input[pos..];
            let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                if rest.len() >= self.limits.max_line_len {
                    return Err(ProtocolError::LineTooLong {
                        limit: self.limits.max_line_len,
                    });
                }
                return Ok((pos, None));
            };
            let line_len = nl + 1;
            if line_len > self.limits.max_line_len {
                return Err(ProtocolError::LineTooLong {
                    limit: self.limits.max_line_len,
                });
            }
            let mut line = &rest[..nl];
            if let [head @ .., b'\r'] = line {
                line = head;
            }
            pos += line_len;
            self.total += line_len;
            if self.total > self.limits.max_total {
                return Err(ProtocolError::ReplyTooLarge {
                    limit: self.limits.max_total,
                });
            }
            if self.lines.len() >= self.limits.max_lines {
                return Err(ProtocolError::TooManyLines {
                    limit: self.limits.max_lines,
                });
            }
            let (code, last, text) = split_line(line)?;
            if let Some(expected) = self.code {
                if expected != code {
                    return Err(ProtocolError::InconsistentCode {
                        expected,
                        found: code,
                    });
                }
            }
            self.code = Some(code);
            self.lines.push(text);
            if last {
                let lines = std::mem::take(&mut self.lines);
                self.code = None;
                self.total = 0;
                return Ok((pos, Some(Reply::new(code, lines))));
            }
        }
    }
}

/// Splits `250-text` / `250 text` / `250` into code, is-last and text.
fn split_line(line: &[u8]) -> Result<(u16, bool, String), ProtocolError> {
    let malformed = || ProtocolError::MalformedReply(String::from_utf8_lossy(line).into_owned());
    if line.len() < 3
        || !line[..3].iter().all(u8::is_ascii_digit)
        || !(b'2'..=b'5').contains(&line[0])
    {
        return Err(malformed());
    }
    let code = line[..3]
        .iter()
        .fold(0u16, |acc, c| acc * 10 + u16::from(c - b'0'));
    let (last, text) = match line.get(3) {
        None => (true, &line[3..]),
        Some(b' ') => (true, &line[4..]),
        Some(b'-') => (false, &line[4..]),
        Some(_) => return Err(malformed()),
    };
    Ok((code, last, String::from_utf8_lossy(text).into_owned()))
}
