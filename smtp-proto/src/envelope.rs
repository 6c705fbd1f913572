//! The envelope of a message taken from its headers, as smtplib's `send_message`
//! does: RFC 5322 section 3.6.2 (originator fields), 3.6.3 (destination fields),
//! 3.6.6 (resent fields), 3.4 (address lists: display names, quoted strings,
//! comments, groups), 2.2.3 (folding).

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
fn header_fields(message: &[u8]) -> (Vec<Field<'_>>, usize, usize) {
    let mut fields: Vec<Field<'_>> = Vec::new();
    let mut pos = 0;
    while pos < message.len() {
        let end = memchr::memchr(b'\n', &message[pos..]).map_or(message.len(), |n| pos + n + 1);
        let line = &message[pos..end];
        let content = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(line);
        if content.is_empty() {
            // The blank line ends the header block; the body follows it.
            return (fields, pos, end);
        }
        let text = String::from_utf8_lossy(content);
        if matches!(content.first(), Some(b' ' | b'\t')) {
            if let Some(last) = fields.last_mut() {
                last.value.push(' ');
                last.value.push_str(text.trim());
                last.end = end;
            }
        } else if let Some(colon) = content.iter().position(|&b| b == b':') {
            let name = std::str::from_utf8(&content[..colon]).unwrap_or("").trim();
            let value = String::from_utf8_lossy(&content[colon + 1..])
                .trim()
                .to_owned();
            fields.push(Field {
                name,
                value,
                start: pos,
                end,
            });
        }
        pos = end;
    }
    (fields, message.len(), message.len())
}

/// Takes the envelope from the message's header block.
///
/// Errors ([`UsageError::Envelope`]): more than one `Resent-` block (counted by
/// `Resent-Date` fields, as smtplib), no sender found, no recipient found.
pub fn from_message(message: &[u8]) -> Result<HeaderEnvelope, UsageError> {
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
    let sender = sender_field
        .and_then(|v| parse_address_list(v).into_iter().next())
        .ok_or_else(|| {
            UsageError::Envelope(format!("no {prefix}Sender or {prefix}From address"))
        })?;
    let mut recipients: Vec<String> = Vec::new();
    for kind in ["To", "Bcc", "Cc"] {
        for value in named(&format!("{prefix}{kind}")) {
            for a in parse_address_list(value) {
                if !recipients.contains(&a) {
                    recipients.push(a);
                }
            }
        }
    }
    if recipients.is_empty() {
        return Err(UsageError::Envelope(format!(
            "no {prefix}To, {prefix}Cc or {prefix}Bcc address"
        )));
    }
    let mut headers = Vec::with_capacity(body_offset);
    let mut pos = 0;
    for f in &fields {
        if f.name.eq_ignore_ascii_case("Bcc") || f.name.eq_ignore_ascii_case("Resent-Bcc") {
            headers.extend_from_slice(&message[pos..f.start]);
            pos = f.end;
        }
    }
    headers.extend_from_slice(&message[pos..body_offset.max(headers_end)]);
    let international = !sender.is_ascii() || recipients.iter().any(|r| !r.is_ascii());
    Ok(HeaderEnvelope {
        sender,
        recipients,
        headers,
        body_offset,
        international,
    })
}

/// Parses an RFC 5322 address list (`"Doe, J" <j@x>, (c) k@y, team: a@b, c@d;`)
/// into bare addresses (`local@domain`), skipping anything unparseable.
#[must_use]
pub fn parse_address_list(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut entry = String::new();
    let mut angle: Option<String> = None;
    let mut chars = value.chars();
    let mut in_angle = false;
    let mut depth = 0usize;
    while let Some(c) = chars.next() {
        if depth > 0 {
            match c {
                '\\' => {
                    chars.next();
                }
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            continue;
        }
        match c {
            '(' => depth = 1,
            '"' => {
                // A quoted string, kept with its quotes (a quoted local part).
                let target = if in_angle {
                    angle.get_or_insert_with(String::new)
                } else {
                    &mut entry
                };
                target.push('"');
                while let Some(q) = chars.next() {
                    match q {
                        '\\' => {
                            target.push('\\');
                            if let Some(e) = chars.next() {
                                target.push(e);
                            }
                        }
                        '"' => break,
                        _ => target.push(q),
                    }
                }
                target.push('"');
            }
            '[' => {
                let target = if in_angle {
                    angle.get_or_insert_with(String::new)
                } else {
                    &mut entry
                };
                target.push('[');
                for d in chars.by_ref() {
                    target.push(d);
                    if d == ']' {
                        break;
                    }
                }
            }
            '<' if !in_angle => {
                in_angle = true;
                angle = Some(String::new());
            }
            '>' if in_angle => in_angle = false,
            ',' | ';' if !in_angle => {
                finish_entry(&mut entry, &mut angle, &mut out);
            }
            ':' if !in_angle => {
                // A group's display name: what precedes it is not an address.
                entry.clear();
                angle = None;
            }
            c if in_angle => angle.get_or_insert_with(String::new).push(c),
            c => entry.push(c),
        }
    }
    finish_entry(&mut entry, &mut angle, &mut out);
    out
}

fn finish_entry(entry: &mut String, angle: &mut Option<String>, out: &mut Vec<String>) {
    let address = match angle.take() {
        Some(a) => {
            let a = a.trim();
            // Obsolete source route: <@r1,@r2:user@host>.
            let a = if a.starts_with('@') {
                a.rsplit_once(':').map_or(a, |(_, rest)| rest)
            } else {
                a
            };
            a.trim().to_owned()
        }
        None => {
            let e = entry.trim();
            if has_unquoted_space(e) {
                String::new()
            } else {
                e.to_owned()
            }
        }
    };
    entry.clear();
    if !address.is_empty() && !address.chars().any(char::is_control) {
        out.push(address);
    }
}

fn has_unquoted_space(s: &str) -> bool {
    let mut quoted = false;
    let mut escaped = false;
    for c in s.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return true,
            _ => {}
        }
    }
    false
}
