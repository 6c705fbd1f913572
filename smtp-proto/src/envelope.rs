//! The envelope of a message taken from its headers, as smtplib's `send_message`
//! does: RFC 5322 section 3.6.2 (originator fields), 3.6.3 (destination fields),
//! 3.6.6 (resent fields), 3.4 (address lists: display names, quoted strings,
//! comments, groups), 2.2.3 (folding).

use std::collections::HashSet;

use crate::error::UsageError;

/// What `send_message` needs from a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderEnvelope {
    /// The sender: the first address of `Sender`, else of `From` (or their
    /// `Resent-` forms when one `Resent-` block is present).
    pub sender: String,
    /// Every address of `To`, `Bcc` and `Cc` (in that order, as smtplib), or of
    /// their `Resent-` forms; exact duplicates removed, first kept.
    pub recipients: Vec<String>,
    /// The header block to transmit: the original header lines, byte for byte,
    /// without `Bcc` and `Resent-Bcc` fields (continuation lines included),
    /// followed by the blank line that ends the header block if the message had one.
    pub headers: Vec<u8>,
    /// Offset in the original message where the body starts (after the blank line),
    /// or the message length when there is no body.
    pub body_offset: usize,
    /// Whether any address (sender or recipient) is not ASCII, so SMTPUTF8 is needed.
    pub international: bool,
}

/// One header field: its name, its unfolded value and where it lies in the message.
struct Field<'a> {
    name: &'a str,
    value: String,
    start: usize,
    end: usize,
}

/// Splits the header block into fields; returns them, the end of the header
/// lines and the body offset.
///
/// A line is a field when it has a colon, a continuation of the field before it
/// when it starts with a space or a tab, and ignored otherwise (it stays in the
/// transmitted headers, and lines folded under it belong to no field). Header
/// bytes that are not UTF-8 are read as U+FFFD.
fn header_fields(message: &[u8]) -> (Vec<Field<'_>>, usize, usize) {
    let mut fields: Vec<Field<'_>> = Vec::new();
    // Whether the last line belonged to the last field (continuations attach).
    let mut in_field = false;
    let mut pos = 0;
    while let Some(rest) = message.get(pos..).filter(|r| !r.is_empty()) {
        let end = memchr::memchr(b'\n', rest).map_or(message.len(), |n| pos + n + 1);
        let line = message.get(pos..end).unwrap_or_default();
        let content = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(line);
        if content.is_empty() {
            // The blank line ends the header block; the body follows it.
            return (fields, pos, end);
        }
        if matches!(content.first(), Some(b' ' | b'\t')) {
            if let Some(last) = fields.last_mut().filter(|_| in_field) {
                last.value.push(' ');
                last.value.push_str(String::from_utf8_lossy(content).trim());
                last.end = end;
            }
        } else if let Some(colon) = memchr::memchr(b':', content) {
            let name = content
                .get(..colon)
                .and_then(|n| std::str::from_utf8(n).ok())
                .unwrap_or("")
                .trim();
            let value = String::from_utf8_lossy(content.get(colon + 1..).unwrap_or_default())
                .trim()
                .to_owned();
            fields.push(Field {
                name,
                value,
                start: pos,
                end,
            });
            in_field = true;
        } else {
            in_field = false;
        }
        pos = end;
    }
    (fields, message.len(), message.len())
}

/// Takes the envelope from the message's header block.
///
/// Errors ([`UsageError::Envelope`]): more than one `Resent-` block (counted by
/// `Resent-Date` fields, as smtplib), no sender found, no recipient found.
///
/// The header block is every line before the first empty one (CRLF or bare LF
/// line endings); field names are matched without regard to case, every
/// occurrence of a destination field counts, and a line that is neither a field
/// nor a continuation is kept in `headers` as it is. Header bytes that are not
/// UTF-8 are read as U+FFFD.
pub fn from_message(message: &[u8]) -> Result<HeaderEnvelope, UsageError> {
    let parts = header_parts(message)?;
    let sender = parts.sender()?.to_owned();
    parts.recipients()?;
    let international = !sender.is_ascii() || parts.recipients.iter().any(|r| !r.is_ascii());
    Ok(HeaderEnvelope {
        sender,
        recipients: parts.recipients,
        headers: parts.headers,
        body_offset: parts.body_offset,
        international,
    })
}

/// What the headers give, each part checked only when it is asked for:
/// `send_message` with a sender or recipients of the caller's needs no header
/// for them.
#[derive(Debug)]
pub(crate) struct HeaderParts {
    /// `""` or `"Resent-"`: which block the addresses come from.
    prefix: &'static str,
    /// The first address of `Sender`, else of `From` (or their `Resent-` forms).
    sender: Option<String>,
    /// As [`HeaderEnvelope::recipients`], maybe empty.
    pub(crate) recipients: Vec<String>,
    /// As [`HeaderEnvelope::headers`].
    pub(crate) headers: Vec<u8>,
    /// As [`HeaderEnvelope::body_offset`].
    pub(crate) body_offset: usize,
}

impl HeaderParts {
    /// The sender, or the error saying the headers have none.
    pub(crate) fn sender(&self) -> Result<&str, UsageError> {
        let prefix = self.prefix;
        self.sender.as_deref().ok_or_else(|| {
            UsageError::Envelope(format!("no {prefix}Sender or {prefix}From address"))
        })
    }

    /// The recipients, or the error saying the headers have none.
    pub(crate) fn recipients(&self) -> Result<&[String], UsageError> {
        let prefix = self.prefix;
        if self.recipients.is_empty() {
            return Err(UsageError::Envelope(format!(
                "no {prefix}To, {prefix}Cc or {prefix}Bcc address"
            )));
        }
        Ok(&self.recipients)
    }
}

/// Splits the header block as [`from_message`] does; the only error is more
/// than one `Resent-` block.
pub(crate) fn header_parts(message: &[u8]) -> Result<HeaderParts, UsageError> {
    let (fields, headers_end, body_offset) = header_fields(message);
    let named = |name: &str| -> Vec<&str> {
        fields
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value.as_str())
            .collect()
    };
    let prefix = match named("Resent-Date").len() {
        0 => "",
        1 => "Resent-",
        _ => {
            return Err(UsageError::Envelope(
                "message has more than one 'Resent-' header block".into(),
            ));
        }
    };
    let sender_field = named(&format!("{prefix}Sender"))
        .first()
        .copied()
        .or_else(|| named(&format!("{prefix}From")).first().copied());
    let sender = sender_field.and_then(|v| parse_address_list(v).into_iter().next());
    let mut recipients: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for kind in ["To", "Bcc", "Cc"] {
        for value in named(&format!("{prefix}{kind}")) {
            for a in parse_address_list(value) {
                if seen.insert(a.clone()) {
                    recipients.push(a);
                }
            }
        }
    }
    let headers = strip_bcc(message, &fields, headers_end, body_offset);
    Ok(HeaderParts {
        prefix,
        sender,
        recipients,
        headers,
        body_offset,
    })
}

/// Parses an RFC 5322 address list (`"Doe, J" <j@x>, (c) k@y, team: a@b, c@d;`)
/// into bare addresses (`local@domain`), skipping anything unparseable.
///
/// Display names, comments and group names are dropped; an obsolete source route
/// (`<@r1,@r2:a@b>`) is removed; quoted local parts and domain literals are kept as
/// written; folding white space around `@` and `.` is removed (`a @ b` is `a@b`).
/// An entry without angle brackets is an address only when it is one word apart
/// from such white space (so `John Smith` and `a@b c@d` are skipped). Addresses
/// with control characters are skipped. Non-ASCII addresses are kept.
#[must_use]
pub fn parse_address_list(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    // Tokens of the current entry outside angle brackets (the display name or a
    // bare addr-spec), and those inside them once `<` was seen.
    let mut entry: Vec<Token> = Vec::new();
    let mut angle: Option<Vec<Token>> = None;
    let mut in_angle = false;
    for token in Tokens::new(value) {
        match token {
            Token::Special('<') if !in_angle => {
                in_angle = true;
                angle = Some(Vec::new());
            }
            Token::Special('>') if in_angle => in_angle = false,
            Token::Special(',' | ';') if !in_angle => {
                finish_entry(&entry, angle.take(), &mut out);
                entry.clear();
            }
            Token::Special(':') if !in_angle => {
                // A group's display name: what precedes it is not an address.
                entry.clear();
                angle = None;
            }
            t if in_angle => {
                if let Some(a) = angle.as_mut() {
                    a.push(t);
                }
            }
            t => {
                // Text after an angle-addr (a trailing comment-like word) is not
                // part of the address.
                if angle.is_none() {
                    entry.push(t);
                }
            }
        }
    }
    finish_entry(&entry, angle, &mut out);
    out
}

/// A lexical unit of an address list (RFC 5322 section 3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// An atom, a quoted string (with its quotes and escapes, as written) or a
    /// domain literal (with its brackets).
    Word(String),
    /// One of `< > , ; : @ .`.
    Special(char),
    /// White space or a comment.
    Space,
    /// Something that cannot be part of an address (an unterminated quoted
    /// string or domain literal).
    Bad,
}

/// Splits an address list into [`Token`]s; comments (nested, with quoted pairs)
/// become [`Token::Space`].
struct Tokens<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
}

impl<'a> Tokens<'a> {
    fn new(value: &'a str) -> Tokens<'a> {
        Tokens {
            chars: value.chars().peekable(),
        }
    }

    /// Skips a comment whose `(` was already read.
    fn comment(&mut self) {
        let mut depth = 1usize;
        while let Some(c) = self.chars.next() {
            match c {
                '\\' => {
                    self.chars.next();
                }
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }

    /// Reads a quoted string whose `"` was already read, as written.
    fn quoted(&mut self) -> Token {
        let mut s = String::from('"');
        while let Some(c) = self.chars.next() {
            s.push(c);
            match c {
                '\\' => match self.chars.next() {
                    Some(e) => s.push(e),
                    None => return Token::Bad,
                },
                '"' => return Token::Word(s),
                _ => {}
            }
        }
        Token::Bad
    }

    /// Reads a domain literal whose `[` was already read, as written.
    fn literal(&mut self) -> Token {
        let mut s = String::from('[');
        for c in self.chars.by_ref() {
            s.push(c);
            if c == ']' {
                return Token::Word(s);
            }
        }
        Token::Bad
    }
}

fn is_special(c: char) -> bool {
    matches!(
        c,
        '<' | '>' | ',' | ';' | ':' | '@' | '.' | '(' | ')' | '"' | '[' | ']'
    )
}

impl Iterator for Tokens<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        let c = self.chars.next()?;
        Some(match c {
            c if c.is_whitespace() => {
                while self.chars.next_if(|c| c.is_whitespace()).is_some() {}
                Token::Space
            }
            '(' => {
                self.comment();
                Token::Space
            }
            '"' => self.quoted(),
            '[' => self.literal(),
            '<' | '>' | ',' | ';' | ':' | '@' | '.' => Token::Special(c),
            // A stray `)` or `]` is not part of any address.
            ')' | ']' => Token::Bad,
            c => {
                let mut s = String::from(c);
                while let Some(c) = self
                    .chars
                    .next_if(|&c| !c.is_whitespace() && !is_special(c))
                {
                    s.push(c);
                }
                Token::Word(s)
            }
        })
    }
}

/// Turns the tokens of one entry into an address, if they make one.
fn finish_entry(entry: &[Token], angle: Option<Vec<Token>>, out: &mut Vec<String>) {
    let address = match angle {
        Some(tokens) => {
            // Obsolete source route: <@r1,@r2:user@host>. A colon inside a quoted
            // local part is inside a Word token, so it cannot be taken for it.
            let first = tokens.iter().find(|t| **t != Token::Space);
            let spec = match (
                first,
                tokens.iter().rposition(|t| *t == Token::Special(':')),
            ) {
                (Some(Token::Special('@')), Some(colon)) => tokens.get(colon + 1..),
                _ => Some(&tokens[..]),
            };
            spec.and_then(addr_spec)
        }
        None => addr_spec(entry),
    };
    if let Some(a) = address {
        if !a.is_empty() && !a.chars().any(char::is_control) {
            out.push(a);
        }
    }
}

/// Joins the tokens of an addr-spec (`local@domain`, or a single word such as
/// `postmaster`), dropping white space next to `@` and `.`. `None` when the
/// tokens are not one.
fn addr_spec(tokens: &[Token]) -> Option<String> {
    let mut s = String::new();
    // The previous non-space token was a word, and white space came after it.
    let mut after_word = false;
    let mut gap = false;
    for t in tokens {
        match t {
            Token::Space => gap = after_word,
            Token::Word(w) => {
                if gap {
                    // Two words apart: a phrase, not an address.
                    return None;
                }
                s.push_str(w);
                after_word = true;
            }
            Token::Special(c @ ('@' | '.')) => {
                s.push(*c);
                after_word = false;
                gap = false;
            }
            Token::Special(_) | Token::Bad => return None,
        }
    }
    Some(s)
}

/// The header block of `message` without its `Bcc` and `Resent-Bcc` fields
/// (continuation lines included), and where the body starts: what
/// `send_message` transmits when the caller gives the envelope, so that no
/// address is needed in the headers.
#[must_use]
pub fn without_bcc(message: &[u8]) -> (Vec<u8>, usize) {
    let (fields, headers_end, body_offset) = header_fields(message);
    (
        strip_bcc(message, &fields, headers_end, body_offset),
        body_offset,
    )
}

/// The header lines of `message` without the `Bcc` and `Resent-Bcc` fields.
fn strip_bcc(
    message: &[u8],
    fields: &[Field<'_>],
    headers_end: usize,
    body_offset: usize,
) -> Vec<u8> {
    let mut headers = Vec::with_capacity(body_offset);
    let mut pos = 0;
    for f in fields {
        if f.name.eq_ignore_ascii_case("Bcc") || f.name.eq_ignore_ascii_case("Resent-Bcc") {
            headers.extend_from_slice(message.get(pos..f.start).unwrap_or_default());
            pos = f.end;
        }
    }
    headers.extend_from_slice(
        message
            .get(pos..body_offset.max(headers_end))
            .unwrap_or_default(),
    );
    headers
}
