//! The header block of a message: what the sendmail mode reads of it, and the
//! From, Date and Message-ID fields it adds when they are missing.

use std::time::{SystemTime, UNIX_EPOCH};

use super::{Fail, exit};

/// What the sendmail mode reads of a message's header block.
pub(super) struct Headers {
    /// Whether the message starts with a header block (a field, or the empty
    /// line of an empty block): one that starts with anything else is all
    /// body.
    present: bool,
    /// Each field's name and unfolded value, in order, up to the empty line
    /// or the first line that is neither a field nor a continuation.
    fields: Vec<(String, String)>,
    /// The first line's ending, for the lines added.
    eol: &'static str,
}

impl Headers {
    /// The first value of the field `name` (any case).
    pub(super) fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads the header block (RFC 5322 section 2.2: `name: value`, folded lines
/// starting with a space or a tab).
pub(super) fn scan(message: &[u8]) -> Headers {
    let mut h = Headers {
        present: false,
        fields: Vec::new(),
        eol: "\r\n",
    };
    let mut pos = 0;
    let mut first = true;
    while pos < message.len() {
        let rest = message.get(pos..).unwrap_or_default();
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(message.len(), |n| pos + n + 1);
        let line = message.get(pos..end).unwrap_or_default();
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if first && line.ends_with(b"\n") && !line.ends_with(b"\r\n") {
            h.eol = "\n";
        }
        if content.is_empty() {
            h.present |= first;
            break;
        }
        if matches!(content.first(), Some(b' ' | b'\t')) {
            match h.fields.last_mut() {
                Some((_, value)) => {
                    value.push(' ');
                    value.push_str(String::from_utf8_lossy(content).trim());
                }
                None => break,
            }
        } else {
            let name_end = content.iter().position(|&b| b == b':');
            let name = name_end
                .and_then(|n| content.get(..n))
                .filter(|n| !n.is_empty() && n.iter().all(|b| (0x21..=0x7e).contains(b)));
            let (Some(name), Some(n)) = (name, name_end) else {
                break;
            };
            let value = String::from_utf8_lossy(content.get(n + 1..).unwrap_or_default());
            h.fields.push((
                String::from_utf8_lossy(name).into_owned(),
                value.trim().to_owned(),
            ));
            h.present = true;
        }
        first = false;
        pos = end;
    }
    h
}

/// The message with the From (with `full_name`), Date and Message-ID fields
/// it lacks added at its top, as Postfix and msmtp add them; a message that
/// does not start with a header block gets them as its header block.
pub(super) fn complete_headers(
    message: Vec<u8>,
    sender: &str,
    full_name: Option<&str>,
) -> Result<Vec<u8>, Fail> {
    let h = scan(&message);
    let eol = h.eol;
    let mut top = String::new();
    if h.field("From").is_none() && !sender.is_empty() {
        top.push_str(&format!("From: {}{eol}", from_value(full_name, sender)?));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    if h.field("Date").is_none() {
        top.push_str(&format!("Date: {}{eol}", rfc5322_date(now.as_secs())));
    }
    if h.field("Message-ID").is_none() {
        top.push_str(&format!("Message-ID: {}{eol}", message_id(sender, now)));
    }
    if top.is_empty() {
        return Ok(message);
    }
    if !h.present {
        top.push_str(eol);
    }
    let mut out = top.into_bytes();
    out.extend_from_slice(&message);
    Ok(out)
}

/// `NAME <SENDER>` (the name as atoms, a quoted string, or RFC 2047 encoded
/// words when it is not ASCII), or the bare sender without a name.
fn from_value(full_name: Option<&str>, sender: &str) -> Result<String, Fail> {
    let Some(name) = full_name.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(sender.to_owned());
    };
    if name.chars().any(char::is_control) || name.len() > 500 {
        return Err(Fail::new(
            exit::USAGE,
            "-F: a name of at most 500 bytes without control characters",
        ));
    }
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~ ".contains(c);
    let phrase = if name.chars().all(atext) {
        name.to_owned()
    } else if name.is_ascii() {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        encoded_words(name)
    };
    Ok(format!("{phrase} <{sender}>"))
}

/// RFC 2047 `Q` encoded words for a phrase (section 5 (3)), each at most 75
/// characters, a character's bytes never split between two words.
fn encoded_words(text: &str) -> String {
    const OPEN: &str = "=?UTF-8?Q?";
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        let mut piece = String::new();
        let mut buf = [0u8; 4];
        for &b in c.encode_utf8(&mut buf).as_bytes() {
            match b {
                b' ' => piece.push('_'),
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'!' | b'*' | b'+' | b'-' | b'/' => {
                    piece.push(char::from(b));
                }
                _ => piece.push_str(&format!("={b:02X}")),
            }
        }
        if OPEN.len() + word.len() + piece.len() + 2 > 75 {
            words.push(format!("{OPEN}{word}?="));
            word.clear();
        }
        word.push_str(&piece);
    }
    words.push(format!("{OPEN}{word}?="));
    words.join(" ")
}

/// An RFC 5322 date (section 3.3) in UTC: `Sun, 06 Dec 2026 11:35:19 +0000`.
fn rfc5322_date(unix: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A Message-ID (RFC 5322 section 3.6.4): the time, the process and 64
/// random bits, at the sender's domain (else this host's name).
fn message_id(sender: &str, now: std::time::Duration) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(now.as_nanos());
    hasher.write_u32(std::process::id());
    let random = hasher.finish();
    let usable = |d: &&str| {
        !d.is_empty()
            && d.chars()
                .all(|c| !c.is_control() && !c.is_whitespace() && !"<>\"\\@".contains(c))
    };
    let domain = sender
        .rsplit_once('@')
        .map(|(_, d)| d)
        .filter(usable)
        .or(smtp_blocking::smtp_adapter::machine_name().filter(usable))
        .unwrap_or("localhost");
    format!(
        "<{}.{}.{random:016x}@{domain}>",
        now.as_secs(),
        std::process::id()
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_796_556_919),
            "Sun, 06 Dec 2026 11:35:19 +0000"
        );
        assert_eq!(
            rfc5322_date(4_102_444_799),
            "Thu, 31 Dec 2099 23:59:59 +0000"
        );
    }

    #[test]
    fn from_values() {
        let f = |n: Option<&str>| from_value(n, "a@example.org").unwrap();
        assert_eq!(f(None), "a@example.org");
        assert_eq!(f(Some(" ")), "a@example.org");
        assert_eq!(f(Some("Cron Daemon")), "Cron Daemon <a@example.org>");
        assert_eq!(
            f(Some("Doe, J. \"x\"")),
            "\"Doe, J. \\\"x\\\"\" <a@example.org>"
        );
        assert_eq!(f(Some("Zoë A")), "=?UTF-8?Q?Zo=C3=AB_A?= <a@example.org>");
        assert!(from_value(Some("a\r\nBcc: x@y"), "a@b").is_err());
        let long = encoded_words(&"é".repeat(40));
        assert!(
            long.split(' ').all(|w| w.len() <= 75 && w.ends_with("?=")),
            "{long}"
        );
        assert_eq!(long.matches("=C3=A9").count(), 40);
    }

    #[test]
    fn headers_added_only_when_missing() {
        let m = complete_headers(
            b"Subject: x\nFrom: b@example.org\n\nhi\n".to_vec(),
            "a@example.org",
            Some("A"),
        )
        .unwrap();
        let t = String::from_utf8(m).unwrap();
        assert!(t.starts_with("Date: "), "{t}");
        assert!(
            t.contains("\nMessage-ID: <")
                && t.contains("@example.org>\nSubject: x\nFrom: b@example.org\n\nhi\n"),
            "{t}"
        );
        // The From given is kept: none is added for the sender (the random
        // part of the Message-ID may end in "a", so look for the field).
        assert_eq!(t.matches("From:").count(), 1, "{t}");
        assert!(!t.contains("<a@example.org>"), "{t}");
        // No header block: the input is the body.
        let m = complete_headers(
            b"just a line\r\nand another\r\n".to_vec(),
            "a@example.org",
            None,
        )
        .unwrap();
        let t = String::from_utf8(m).unwrap();
        assert!(t.starts_with("From: a@example.org\r\nDate: "), "{t}");
        assert!(
            t.ends_with(">\r\n\r\njust a line\r\nand another\r\n"),
            "{t}"
        );
        let full = "From: a@b\nDate: x\nMessage-Id: <1@b>\n\nbody\n";
        assert_eq!(
            complete_headers(full.as_bytes().to_vec(), "a@b", None).unwrap(),
            full.as_bytes()
        );
        // The null sender gets no From.
        let t = String::from_utf8(complete_headers(b"\nbody".to_vec(), "", None).unwrap()).unwrap();
        assert!(
            t.starts_with("Date: ") && !t.contains("From:") && t.ends_with(">\n\nbody"),
            "{t:?}"
        );
    }

    #[test]
    fn header_scan() {
        let h = scan(b"From: A\r\n <a@x>\r\nX:\r\n\r\nTo: not@header\r\n");
        assert!(h.present);
        assert_eq!(h.field("from"), Some("A <a@x>"));
        assert_eq!(h.field("To"), None);
        assert_eq!(h.eol, "\r\n");
        assert!(!scan(b"hello: world but\n").fields.is_empty());
        assert!(!scan(b"hello world\nFrom: x\n").present);
        assert!(!scan(b" folded\n").present);
        assert!(!scan(b"").present);
        assert!(scan(b"\nbody").present);
    }
}
