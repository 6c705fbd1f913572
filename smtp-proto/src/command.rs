//! Commands and their arguments: RFC 5321 section 4.1 (command syntax), RFC 1869
//! (ESMTP parameters), RFC 3461 section 4 (xtext), RFC 4954 (AUTH), RFC 3030 (BDAT),
//! RFC 2033 (LHLO), RFC 6531 (UTF-8 addresses).
//!
//! Every argument is a newtype whose constructor refuses CR, LF and NUL (and the
//! other ASCII control characters), so no value that reaches [`Command::encode`] can
//! end a command line early and inject another one. Verbs are always upper case.

use std::fmt;

use base64::Engine as _;

use crate::error::UsageError;

fn invalid(what: &'static str, why: &'static str) -> UsageError {
    UsageError::InvalidArgument { what, why }
}

/// Refuses ASCII control characters (CR, LF, NUL, TAB, DEL, ...).
fn check_no_controls(s: &str, what: &'static str) -> Result<(), UsageError> {
    if s.bytes().any(|b| b == b'\r' || b == b'\n') {
        return Err(invalid(what, "contains CR or LF"));
    }
    if s.bytes().any(|b| b == 0) {
        return Err(invalid(what, "contains NUL"));
    }
    if s.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(invalid(what, "contains a control character"));
    }
    Ok(())
}

/// The argument of EHLO, HELO and LHLO: a domain name or an address literal such as
/// `[192.0.2.1]` or `[IPv6:2001:db8::1]` (RFC 5321 section 4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Domain(String);

impl Domain {
    /// Checks and wraps a domain or address literal: ASCII, no spaces, no control
    /// characters, not empty.
    pub fn new(s: impl Into<String>) -> Result<Domain, UsageError> {
        let s = s.into();
        check_no_controls(&s, "domain")?;
        if s.is_empty() {
            return Err(invalid("domain", "is empty"));
        }
        if !s.is_ascii() {
            return Err(invalid("domain", "is not ASCII"));
        }
        if s.contains(' ') {
            return Err(invalid("domain", "contains a space"));
        }
        if s.len() > 255 {
            return Err(invalid("domain", "is longer than 255 bytes"));
        }
        Ok(Domain(s))
    }

    /// The address literal for an IP address: `[192.0.2.1]` or `[IPv6:...]`, the
    /// right EHLO argument when the machine has no fully qualified name.
    #[must_use]
    pub fn address_literal(ip: core::net::IpAddr) -> Domain {
        match ip {
            core::net::IpAddr::V4(v4) => Domain(format!("[{v4}]")),
            core::net::IpAddr::V6(v6) => Domain(format!("[IPv6:{v6}]")),
        }
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A mailbox as it goes between angle brackets in MAIL FROM and RCPT TO
/// (RFC 5321 section 4.1.2). The empty address is the null reverse path `<>`.
///
/// `Address::new` accepts `user@example.org`, `<user@example.org>` and
/// `Name <user@example.org>` (it keeps what is inside the angle brackets, as
/// smtplib's `quoteaddr` does). Non-ASCII is allowed here; the client refuses it
/// unless SMTPUTF8 is in use.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(String);

impl Address {
    /// Checks and wraps an address.
    pub fn new(s: impl AsRef<str>) -> Result<Address, UsageError> {
        let s = s.as_ref();
        // The usual address (`user@example.org`, `<user@example.org>` aside):
        // printable ASCII with nothing to unquote, trim or unwrap, checked in
        // one pass. Anything else takes the full path below, which gives the
        // same answer for these.
        if s.len() <= 1024
            && s.bytes()
                .all(|b| matches!(b, 0x21..=0x7e) && !matches!(b, b'"' | b'\\' | b'<' | b'>'))
        {
            return Ok(Address(s.to_owned()));
        }
        Address::new_general(s)
    }

    fn new_general(s: &str) -> Result<Address, UsageError> {
        check_no_controls(s, "address")?;
        let trimmed = s.trim();
        if !quotes_closed(trimmed) {
            return Err(invalid("address", "has an unclosed quoted string"));
        }
        // A '<' inside a quoted local part (`<"a<b"@x>`) does not open the path.
        let open = unquoted(trimmed).filter(|&(_, c)| c == '<').last();
        let inner = match (open, trimmed.ends_with('>')) {
            // In bounds and on char boundaries: '<' and the final '>' are one byte
            // each, and the '<' comes before the '>'.
            (Some((open, _)), true) => &trimmed[open + 1..trimmed.len() - 1],
            _ => trimmed,
        };
        if unquoted(inner).any(|(_, c)| c == '<' || c == '>') {
            return Err(invalid("address", "contains an angle bracket"));
        }
        if inner.len() > 1024 {
            return Err(invalid("address", "is longer than 1024 bytes"));
        }
        if has_unquoted_space(inner) {
            return Err(invalid("address", "contains a space outside quotes"));
        }
        Ok(Address(inner.to_owned()))
    }

    /// The null reverse path `<>`, for bounces.
    #[must_use]
    pub fn null() -> Address {
        Address(String::new())
    }

    /// The text between the angle brackets.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the address is all ASCII (otherwise it needs SMTPUTF8).
    #[must_use]
    pub fn is_ascii(&self) -> bool {
        self.0.is_ascii()
    }
}

/// The characters of `s` outside double-quoted strings (RFC 5321 `Quoted-string`,
/// backslash escapes included), with their byte offsets.
fn unquoted(s: &str) -> impl Iterator<Item = (usize, char)> + '_ {
    let mut quoted = false;
    let mut escaped = false;
    s.char_indices().filter(move |&(_, c)| {
        if escaped {
            escaped = false;
            return false;
        }
        match c {
            '\\' if quoted => {
                escaped = true;
                false
            }
            '"' => {
                quoted = !quoted;
                false
            }
            _ => !quoted,
        }
    })
}

/// Whether every quoted string in `s` is closed.
fn quotes_closed(s: &str) -> bool {
    let mut quoted = false;
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            _ => {}
        }
    }
    !quoted
}

fn has_unquoted_space(s: &str) -> bool {
    unquoted(s).any(|(_, c)| c == ' ' || c == '\t')
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ESMTP parameter of MAIL or RCPT, such as `SIZE=1234` or `BODY=8BITMIME`
/// (RFC 5321 section 4.1.2, `esmtp-param`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Parameter {
    pub(crate) keyword: String,
    pub(crate) value: Option<String>,
}

impl Parameter {
    /// A parameter from keyword and optional value. The keyword is letters, digits
    /// and `-`; the value is printable and has no `=` or space (UTF-8 is allowed for
    /// use with SMTPUTF8, RFC 6531 section 3.3).
    pub fn new(keyword: &str, value: Option<&str>) -> Result<Parameter, UsageError> {
        check_no_controls(keyword, "parameter")?;
        let mut chars = keyword.bytes();
        let first_ok = chars.next().is_some_and(|b| b.is_ascii_alphanumeric());
        if !first_ok
            || !keyword
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(invalid(
                "parameter",
                "keyword must be letters, digits and '-'",
            ));
        }
        if let Some(v) = value {
            check_no_controls(v, "parameter")?;
            if v.is_empty() {
                return Err(invalid("parameter", "value is empty"));
            }
            if v.contains('=') || v.contains(' ') {
                return Err(invalid("parameter", "value contains '=' or a space"));
            }
        }
        Ok(Parameter {
            keyword: keyword.to_ascii_uppercase(),
            value: value.map(str::to_owned),
        })
    }

    /// Parses `KEYWORD` or `KEYWORD=value`, the form smtplib's `mail_options` use.
    pub fn parse(s: &str) -> Result<Parameter, UsageError> {
        match s.split_once('=') {
            Some((k, v)) => Parameter::new(k, Some(v)),
            None => Parameter::new(s, None),
        }
    }

    /// `SIZE=n` (RFC 1870).
    #[must_use]
    pub fn size(n: u64) -> Parameter {
        Parameter {
            keyword: "SIZE".into(),
            value: Some(n.to_string()),
        }
    }

    /// `ENVID=xtext` (RFC 3461 section 4.4).
    pub fn envid(id: &str) -> Result<Parameter, UsageError> {
        check_no_controls(id, "ENVID")?;
        if !id.is_ascii() {
            return Err(invalid("ENVID", "is not ASCII"));
        }
        Ok(Parameter {
            keyword: "ENVID".into(),
            value: Some(xtext_encode(id)),
        })
    }

    /// `ORCPT=addr-type;xtext(address)` (RFC 3461 section 4.2), e.g. `rfc822`.
    pub fn orcpt(addr_type: &str, address: &str) -> Result<Parameter, UsageError> {
        check_no_controls(address, "ORCPT")?;
        if !address.is_ascii()
            || addr_type.is_empty()
            || !addr_type
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(invalid("ORCPT", "address type or address is not ASCII"));
        }
        Ok(Parameter {
            keyword: "ORCPT".into(),
            value: Some(format!("{addr_type};{}", xtext_encode(address))),
        })
    }

    /// The keyword, upper case.
    #[must_use]
    pub fn keyword(&self) -> &str {
        &self.keyword
    }

    /// The value, if any.
    #[must_use]
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.keyword.as_bytes());
        if let Some(v) = &self.value {
            out.push(b'=');
            out.extend_from_slice(v.as_bytes());
        }
    }
}

impl fmt::Display for Parameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}={v}", self.keyword),
            None => f.write_str(&self.keyword),
        }
    }
}

/// Encodes `s` as xtext (RFC 3461 section 4): `+`, `=`, and bytes outside `!`..`~`
/// become `+XX` with upper-case hex.
#[must_use]
pub fn xtext_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// Decodes xtext; `None` when a `+` is not followed by two upper-case hex digits.
#[must_use]
pub fn xtext_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'+' {
            let hex = b.get(i + 1..i + 3)?;
            let hv = |c: u8| match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'A'..=b'F' => Some(c - b'A' + 10),
                _ => None,
            };
            out.push(hv(hex[0])? * 16 + hv(hex[1])?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// A free-text argument (VRFY, EXPN, HELP, NOOP, a raw command's arguments): any
/// text without control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Text(String);

impl Text {
    /// Checks and wraps.
    pub fn new(s: impl Into<String>) -> Result<Text, UsageError> {
        let s = s.into();
        check_no_controls(&s, "argument")?;
        if s.len() > 1000 {
            return Err(invalid("argument", "is longer than 1000 bytes"));
        }
        Ok(Text(s))
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A command verb for [`Command::Raw`]: 1 to 20 ASCII letters, digits or `-`,
/// sent in upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Verb(String);

impl Verb {
    /// Checks and upper-cases a verb.
    pub fn new(s: &str) -> Result<Verb, UsageError> {
        check_no_controls(s, "verb")?;
        if s.is_empty()
            || s.len() > 20
            || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(invalid("verb", "must be 1 to 20 letters, digits or '-'"));
        }
        Ok(Verb(s.to_ascii_uppercase()))
    }

    /// The verb, upper case.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A SASL mechanism name (RFC 4422 section 3.1): upper-case letters, digits, `-`
/// and `_`, at most 20.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MechanismName(String);

impl MechanismName {
    /// Checks and upper-cases a mechanism name.
    pub fn new(s: &str) -> Result<MechanismName, UsageError> {
        if s.is_empty()
            || s.len() > 20
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid(
                "SASL mechanism",
                "must be 1 to 20 letters, digits, '-' or '_'",
            ));
        }
        Ok(MechanismName(s.to_ascii_uppercase()))
    }

    /// The name, upper case.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A command line the client sends.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// `EHLO domain`
    Ehlo(Domain),
    /// `HELO domain`
    Helo(Domain),
    /// `LHLO domain` (LMTP, RFC 2033)
    Lhlo(Domain),
    /// `STARTTLS` (RFC 3207)
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954). The initial response is raw
    /// bytes, base64-encoded on the wire; an empty one is sent as `=`.
    Auth {
        /// The mechanism.
        mechanism: MechanismName,
        /// The initial response, if sent on the AUTH line.
        initial: Option<Vec<u8>>,
    },
    /// One line answering a 334 challenge: the raw bytes, base64-encoded.
    AuthResponse(Vec<u8>),
    /// `*`: cancels an AUTH exchange.
    AuthCancel,
    /// `MAIL FROM:<path> params`
    Mail {
        /// The reverse path.
        from: Address,
        /// ESMTP parameters.
        params: Vec<Parameter>,
    },
    /// `RCPT TO:<path> params`
    Rcpt {
        /// The forward path.
        to: Address,
        /// ESMTP parameters.
        params: Vec<Parameter>,
    },
    /// `DATA`
    Data,
    /// `BDAT size [LAST]` (the chunk itself follows, framed by the body encoder).
    Bdat {
        /// Chunk size in bytes.
        size: u64,
        /// Whether this is the last chunk.
        last: bool,
    },
    /// `RSET`
    Rset,
    /// `NOOP [text]`
    Noop(Option<Text>),
    /// `VRFY text`
    Vrfy(Text),
    /// `EXPN text`
    Expn(Text),
    /// `HELP [text]`
    Help(Option<Text>),
    /// `QUIT`
    Quit,
    /// Any other command (smtplib's `docmd`).
    Raw {
        /// The verb, upper case.
        verb: Verb,
        /// The arguments.
        args: Option<Text>,
    },
}

impl Command {
    /// Appends the command line, CRLF included, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let b64 = base64::engine::general_purpose::STANDARD;
        match self {
            Command::Ehlo(d) => line(out, "EHLO ", d.as_str()),
            Command::Helo(d) => line(out, "HELO ", d.as_str()),
            Command::Lhlo(d) => line(out, "LHLO ", d.as_str()),
            Command::StartTls => out.extend_from_slice(b"STARTTLS\r\n"),
            Command::Auth { mechanism, initial } => {
                out.extend_from_slice(b"AUTH ");
                out.extend_from_slice(mechanism.as_str().as_bytes());
                match initial {
                    None => {}
                    Some(ir) if ir.is_empty() => out.extend_from_slice(b" ="),
                    Some(ir) => {
                        out.push(b' ');
                        out.extend_from_slice(b64.encode(ir).as_bytes());
                    }
                }
                out.extend_from_slice(b"\r\n");
            }
            Command::AuthResponse(r) => {
                out.extend_from_slice(b64.encode(r).as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Command::AuthCancel => out.extend_from_slice(b"*\r\n"),
            Command::Mail { from, params } => path_line(out, "MAIL FROM:<", from, params),
            Command::Rcpt { to, params } => path_line(out, "RCPT TO:<", to, params),
            Command::Data => out.extend_from_slice(b"DATA\r\n"),
            Command::Bdat { size, last } => {
                out.extend_from_slice(b"BDAT ");
                out.extend_from_slice(size.to_string().as_bytes());
                if *last {
                    out.extend_from_slice(b" LAST");
                }
                out.extend_from_slice(b"\r\n");
            }
            Command::Rset => out.extend_from_slice(b"RSET\r\n"),
            Command::Noop(t) => opt_line(out, "NOOP", t.as_ref()),
            Command::Vrfy(t) => line(out, "VRFY ", t.as_str()),
            Command::Expn(t) => line(out, "EXPN ", t.as_str()),
            Command::Help(t) => opt_line(out, "HELP", t.as_ref()),
            Command::Quit => out.extend_from_slice(b"QUIT\r\n"),
            Command::Raw { verb, args } => opt_line(out, verb.as_str(), args.as_ref()),
        }
    }

    /// The command line as bytes.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }

    /// Whether the line carries a secret (AUTH initial response or an answer to a
    /// challenge) that transcripts must not show.
    #[must_use]
    pub fn is_sensitive(&self) -> bool {
        matches!(
            self,
            Command::Auth {
                initial: Some(_),
                ..
            } | Command::AuthResponse(_)
        )
    }

    /// The line as a transcript may show it: secrets replaced by `<redacted>`.
    #[must_use]
    pub fn redacted(&self) -> String {
        match self {
            Command::Auth {
                mechanism,
                initial: Some(_),
            } => format!("AUTH {} <redacted>", mechanism.as_str()),
            Command::AuthResponse(_) => "<redacted>".to_owned(),
            other => {
                let b = other.to_bytes();
                String::from_utf8_lossy(&b[..b.len() - 2]).into_owned()
            }
        }
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Command({:?})", self.redacted())
    }
}

fn line(out: &mut Vec<u8>, head: &str, arg: &str) {
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(arg.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn opt_line(out: &mut Vec<u8>, verb: &str, arg: Option<&Text>) {
    out.extend_from_slice(verb.as_bytes());
    if let Some(a) = arg {
        out.push(b' ');
        out.extend_from_slice(a.as_str().as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

fn path_line(out: &mut Vec<u8>, head: &str, addr: &Address, params: &[Parameter]) {
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(addr.as_str().as_bytes());
    out.push(b'>');
    for p in params {
        out.push(b' ');
        p.encode(out);
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-pass check accepts exactly what the general path accepts, with
    /// the same result, for addresses made of the characters that matter.
    #[test]
    fn the_fast_path_agrees_with_the_general_one() {
        let alphabet = [
            'a', '@', '.', '"', '\\', '<', '>', ' ', '\t', '\u{a0}', '\r', 'é', '\u{7f}',
        ];
        let mut inputs: Vec<String> = vec![
            "user@example.org".into(),
            "<user@example.org>".into(),
            "a+b=c@x.example".into(),
            "x".repeat(1024),
            "x".repeat(1025),
            String::new(),
        ];
        // Every string of up to 3 characters from the alphabet, inside a plain address.
        let n = alphabet.len();
        for len in 0..=3u32 {
            for mut k in 0..n.pow(len) {
                let mut middle = String::new();
                for _ in 0..len {
                    middle.push(alphabet[k % n]);
                    k /= n;
                }
                inputs.push(format!("a{middle}@x.example"));
                inputs.push(middle);
            }
        }
        for s in inputs {
            let fast = Address::new(&s).map(|a| a.0);
            let general = Address::new_general(&s).map(|a| a.0);
            assert_eq!(fast, general, "{s:?}");
        }
    }
}

macro_rules! parse_impls {
    ($($ty:ident => $new:path),* $(,)?) => {$(
        impl std::str::FromStr for $ty {
            type Err = UsageError;
            fn from_str(s: &str) -> Result<$ty, UsageError> {
                $new(s)
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = UsageError;
            fn try_from(s: &str) -> Result<$ty, UsageError> {
                $new(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = UsageError;
            fn try_from(s: String) -> Result<$ty, UsageError> {
                $new(&s)
            }
        }
    )*};
}

parse_impls! {
    Address => Address::new,
    Domain => Domain::new,
    Text => Text::new,
    Verb => Verb::new,
    Parameter => Parameter::parse,
}
