//! A server as a URL: the parser behind
//! [`Builder::from_url`](crate::Builder::from_url), whose documentation
//! gives the forms and defaults.
//!
//! The URL is parsed here by hand rather than with the `url` crate: the
//! grammar is this small, and `url` would bring IDNA and its Unicode tables
//! (some twenty crates) into every build for names that a resolver and a
//! certificate check want in their ASCII form anyway.

use std::path::PathBuf;

use crate::Tls;

/// Why a server URL could not be read ([`Builder::from_url`](crate::Builder::from_url)).
/// Never holds the URL nor any part of it but its scheme, so that a password
/// in it reaches no log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// Not `SCHEME://...`; or a character no URL holds (a space, a control
    /// character, a non-ASCII one: percent-encode them), or a fragment (`#`).
    #[error(
        "not a server URL: expected smtp://[USER:PASSWORD@]HOST[:PORT][?tls=MODE], smtps://..., lmtp://... or lmtp:///SOCKET"
    )]
    Syntax,
    /// A scheme other than `smtp`, `smtps` and `lmtp`.
    #[error("unsupported URL scheme {0:?}: expected smtp, smtps or lmtp")]
    Scheme(String),
    /// No host, and no socket path either.
    #[error("the URL names no host")]
    MissingHost,
    /// A host that is neither a name (ASCII letters, digits, `-`, `.`, `_`),
    /// an IPv4 address nor a bracketed IPv6 address.
    #[error("the URL's host is not a host name, an IPv4 address or a bracketed IPv6 address")]
    Host,
    /// A port that is not a number from 1 to 65535, or a port on a Unix
    /// socket URL.
    #[error("the URL's port is not a number from 1 to 65535")]
    Port,
    /// User information that is not `USER:PASSWORD`, both non-empty.
    #[error(
        "the URL's user information is not USER:PASSWORD (percent-encode ':', '@' and '/' in either)"
    )]
    UserInfo,
    /// A `%` not followed by two hexadecimal digits, or percent-encoded
    /// bytes that are not UTF-8.
    #[error("the URL holds a malformed percent-encoding")]
    PercentEncoding,
    /// A path after a host (only a Unix socket URL, which has no host, has
    /// one), or a Unix socket URL with the `smtps` scheme.
    #[error("the URL's path is only for a Unix socket (smtp:///PATH or lmtp:///PATH, no host)")]
    Path,
    /// A query parameter other than `tls`, or `tls` twice.
    #[error("the URL's query takes one parameter: tls")]
    Parameter,
    /// A `tls=` value other than `none`, `opportunistic`, `starttls` (or
    /// `required`); or `tls=` on `smtps://` (implicit TLS, always), or
    /// other than `none` on a Unix socket.
    #[error(
        "the URL's tls= is none, opportunistic or starttls (smtps:// for implicit TLS; none for a Unix socket)"
    )]
    TlsMode,
}

/// Where a URL points and how.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ServerUrl {
    pub(crate) lmtp: bool,
    pub(crate) target: UrlTarget,
    pub(crate) tls: Tls,
    /// User and password, percent-decoded.
    pub(crate) credentials: Option<(String, String)>,
}

impl std::fmt::Debug for ServerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerUrl")
            .field("lmtp", &self.lmtp)
            .field("target", &self.target)
            .field("tls", &self.tls)
            .field("credentials", &self.credentials.is_some())
            .finish()
    }
}

/// A TCP host and port, or a Unix socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UrlTarget {
    Tcp { host: String, port: Option<u16> },
    Unix(PathBuf),
}

/// Reads `url` (see the module).
pub(crate) fn parse(url: &str) -> Result<ServerUrl, UrlError> {
    if url.bytes().any(|b| b <= b' ' || b >= 0x7f) {
        return Err(UrlError::Syntax);
    }
    let (scheme, rest) = url.split_once("://").ok_or(UrlError::Syntax)?;
    let valid_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !valid_scheme {
        return Err(UrlError::Syntax);
    }
    let scheme = scheme.to_ascii_lowercase();
    let (lmtp, implicit) = match scheme.as_str() {
        "smtp" => (false, false),
        "smtps" => (false, true),
        "lmtp" => (true, false),
        _ => return Err(UrlError::Scheme(scheme)),
    };
    if rest.contains('#') {
        return Err(UrlError::Syntax);
    }
    // RFC 3986 section 3.2: the authority ends at the first '/' or '?'.
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, rest) = rest.split_at(end);
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    // The last '@' ends the user information (an '@' in a password that was
    // not percent-encoded stays in it, as the `url` crate reads it).
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let credentials = userinfo.map(credentials).transpose()?;
    let tls_asked = query.map(tls_parameter).transpose()?.flatten();

    let target = if hostport.is_empty() {
        // A Unix socket: scheme:///path.
        if implicit {
            return Err(UrlError::Path);
        }
        if path.is_empty() || path == "/" {
            return Err(UrlError::MissingHost);
        }
        UrlTarget::Unix(PathBuf::from(decode(path)?))
    } else {
        if !(path.is_empty() || path == "/") {
            return Err(UrlError::Path);
        }
        let (host, port) = host_port(hostport)?;
        UrlTarget::Tcp { host, port }
    };

    let tls = match (&target, implicit, tls_asked) {
        (_, true, Some(_)) => return Err(UrlError::TlsMode),
        (_, true, None) => Tls::Implicit,
        (UrlTarget::Unix(_), _, Some(Tls::None) | None) => Tls::None,
        (UrlTarget::Unix(_), _, Some(_)) => return Err(UrlError::TlsMode),
        (_, false, Some(asked)) => asked,
        // A login is not sent in the clear: without a word on TLS, TLS is
        // required ("the builder never downgrades a login" made explicit).
        (_, false, None) if credentials.is_some() => Tls::StartTls,
        (_, false, None) if lmtp => Tls::None,
        (_, false, None) => Tls::Opportunistic,
    };
    Ok(ServerUrl {
        lmtp,
        target,
        tls,
        credentials,
    })
}

/// `USER:PASSWORD`, percent-decoded, neither empty.
fn credentials(userinfo: &str) -> Result<(String, String), UrlError> {
    let (user, password) = userinfo.split_once(':').ok_or(UrlError::UserInfo)?;
    if user.is_empty() || password.is_empty() {
        return Err(UrlError::UserInfo);
    }
    Ok((decode(user)?, decode(password)?))
}

/// The `tls` parameter of a query, if given (an empty query has none).
fn tls_parameter(query: &str) -> Result<Option<Tls>, UrlError> {
    let mut tls = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').ok_or(UrlError::Parameter)?;
        if name != "tls" || tls.is_some() {
            return Err(UrlError::Parameter);
        }
        tls = Some(match value.to_ascii_lowercase().as_str() {
            "none" => Tls::None,
            "opportunistic" => Tls::Opportunistic,
            "starttls" | "required" => Tls::StartTls,
            _ => return Err(UrlError::TlsMode),
        });
    }
    Ok(tls)
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn host_port(hostport: &str) -> Result<(String, Option<u16>), UrlError> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (v6, tail) = rest.split_once(']').ok_or(UrlError::Host)?;
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(UrlError::Host);
        }
        let port = match tail {
            "" => None,
            _ => Some(tail.strip_prefix(':').ok_or(UrlError::Host)?),
        };
        (v6, port)
    } else if hostport.matches(':').count() > 1 {
        // A bare IPv6 address: RFC 3986 wants it in brackets.
        return Err(UrlError::Host);
    } else {
        match hostport.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    let name_chars = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if host.is_empty() {
        return Err(UrlError::MissingHost);
    }
    if !hostport.starts_with('[') && !name_chars {
        return Err(UrlError::Host);
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(UrlError::Port),
                Ok(n) => Some(n),
            }
        }
        Some(_) => return Err(UrlError::Port),
    };
    Ok((host.to_owned(), port))
}

/// Percent-decoding (RFC 3986 section 2.1) to UTF-8.
fn decode(s: &str) -> Result<String, UrlError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(UrlError::PercentEncoding)?;
            let hex = std::str::from_utf8(hex).map_err(|_| UrlError::PercentEncoding)?;
            if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                return Err(UrlError::PercentEncoding);
            }
            let byte = u8::from_str_radix(hex, 16).map_err(|_| UrlError::PercentEncoding)?;
            out.push(byte);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UrlError::PercentEncoding)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(decode("a%40b%2Fc%3a").unwrap(), "a@b/c:");
        assert_eq!(decode("%C3%A9t%C3%A9").unwrap(), "été");
        for bad in ["%", "%4", "%zz", "%+1", "%C3"] {
            assert_eq!(decode(bad), Err(UrlError::PercentEncoding), "{bad:?}");
        }
    }

    #[test]
    fn debug_shows_whether_there_are_credentials_not_what_they_are() {
        let u = parse("smtp://alice:hunter2@mx.example.org").unwrap();
        let shown = format!("{u:?}");
        assert!(shown.contains("credentials: true"), "{shown}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("alice"),
            "{shown}"
        );
    }
}
