//! What a connection builder takes as the server's address: a host name or
//! IP address, with or without a port, in the forms a caller has at hand.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::path::Path;

use smtp_sansio::UsageError;

/// A server's address as a connection builder takes it
/// ([`Builder::new`](crate::Builder::new), the facades' `builder` and
/// `lmtp_builder`): a host name or IP address (`"mx.example.org"`,
/// `"192.0.2.7"`, `"::1"`), `"host:port"` or `"[v6]:port"`, a `SocketAddr`,
/// an `IpAddr`, or a `(host, port)` pair.
///
/// Without a port, the builder's default applies (25, 587 with STARTTLS
/// required, 465 with implicit TLS, 2003 for LMTP). The host is also the name
/// the server's certificate is checked against, unless
/// [`Builder::tls_server_name`](crate::Builder::tls_server_name) says
/// otherwise; an IP address is checked against the certificate's IP address
/// entries.
///
/// ```
/// use std::net::{Ipv4Addr, SocketAddr};
/// use smtp_adapter::{Builder, IntoServerAddress};
///
/// assert_eq!("mx.example.org".into_host_port()?, ("mx.example.org".to_owned(), None));
/// assert_eq!("[::1]:2525".into_host_port()?, ("::1".to_owned(), Some(2525)));
/// assert_eq!(("mx.example.org", 587).into_host_port()?, ("mx.example.org".to_owned(), Some(587)));
/// let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 2525));
/// assert_eq!(Builder::<()>::new(addr).address(), "127.0.0.1:2525");
/// # Ok::<(), smtp_adapter::Error>(())
/// ```
pub trait IntoServerAddress {
    /// The host (an IPv6 address without brackets) and the port, when given
    /// (`None`: the builder's default; a port of 0 in a string counts as none).
    ///
    /// # Errors
    ///
    /// [`UsageError::InvalidArgument`] for an empty host, a string that is not
    /// `HOST`, `HOST:PORT` or `[IPv6]:PORT`, or a `(host, port)` pair whose
    /// host carries a port of its own.
    fn into_host_port(self) -> Result<(String, Option<u16>), UsageError>;

    /// The Unix socket this names, for an LMTP builder: a string starting
    /// with `/`. `None` for every other address (the default).
    fn unix_path(&self) -> Option<&Path> {
        None
    }
}

fn bad_host() -> UsageError {
    UsageError::InvalidArgument {
        what: "server address",
        why: "expected a host name or address, without a port when the port is given apart",
    }
}

impl IntoServerAddress for &str {
    fn into_host_port(self) -> Result<(String, Option<u16>), UsageError> {
        let (host, port) = crate::split_host_port(self, 0)?;
        if host.is_empty() {
            return Err(bad_host());
        }
        Ok((host, (port != 0).then_some(port)))
    }

    fn unix_path(&self) -> Option<&Path> {
        self.starts_with('/').then(|| Path::new(*self))
    }
}

impl IntoServerAddress for &String {
    fn into_host_port(self) -> Result<(String, Option<u16>), UsageError> {
        self.as_str().into_host_port()
    }

    fn unix_path(&self) -> Option<&Path> {
        self.starts_with('/').then(|| Path::new(self.as_str()))
    }
}

impl IntoServerAddress for String {
    fn into_host_port(self) -> Result<(String, Option<u16>), UsageError> {
        self.as_str().into_host_port()
    }

    fn unix_path(&self) -> Option<&Path> {
        self.starts_with('/').then(|| Path::new(self.as_str()))
    }
}

impl IntoServerAddress for SocketAddr {
    fn into_host_port(self) -> Result<(String, Option<u16>), UsageError> {
        Ok((self.ip().to_string(), Some(self.port())))
    }
}

impl IntoServerAddress for SocketAddrV4 {
    fn into_host_port(self) -> Result<(String, Option<u16>), UsageError> {
        SocketAddr::V4(self).into_host_port()
    }
}

impl IntoServerAddress for SocketAddrV6 {
    fn into_host_port(self) -> Result<(String, Option<u16>), UsageError> {
        SocketAddr::V6(self).into_host_port()
    }
}

impl IntoServerAddress for IpAddr {
    fn into_host_port(self) -> Result<(String, Option<u16>), UsageError> {
        Ok((self.to_string(), None))
    }
}

impl IntoServerAddress for Ipv4Addr {
    fn into_host_port(self) -> Result<(String, Option<u16>), UsageError> {
        IpAddr::V4(self).into_host_port()
    }
}

impl IntoServerAddress for Ipv6Addr {
    fn into_host_port(self) -> Result<(String, Option<u16>), UsageError> {
        IpAddr::V6(self).into_host_port()
    }
}

/// A host given apart from its port: a name, an address, or a bracketed IPv6
/// address; never `host:port`.
fn host_alone(host: &str) -> Result<String, UsageError> {
    let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) if v6.parse::<Ipv6Addr>().is_ok() => v6,
        Some(_) => return Err(bad_host()),
        None => host,
    };
    if host.is_empty() || (host.contains(':') && host.parse::<Ipv6Addr>().is_err()) {
        return Err(bad_host());
    }
    Ok(host.to_owned())
}

impl IntoServerAddress for (&str, u16) {
    fn into_host_port(self) -> Result<(String, Option<u16>), UsageError> {
        Ok((host_alone(self.0)?, Some(self.1)))
    }
}

impl IntoServerAddress for (&String, u16) {
    fn into_host_port(self) -> Result<(String, Option<u16>), UsageError> {
        (self.0.as_str(), self.1).into_host_port()
    }
}

impl IntoServerAddress for (String, u16) {
    fn into_host_port(self) -> Result<(String, Option<u16>), UsageError> {
        (self.0.as_str(), self.1).into_host_port()
    }
}

impl IntoServerAddress for (IpAddr, u16) {
    fn into_host_port(self) -> Result<(String, Option<u16>), UsageError> {
        SocketAddr::from(self).into_host_port()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn hp(a: impl IntoServerAddress) -> Result<(String, Option<u16>), UsageError> {
        a.into_host_port()
    }

    #[test]
    fn every_form_gives_a_host_and_a_port() {
        let some = |h: &str, p| Ok((h.to_owned(), p));
        assert_eq!(hp("mx.example.org"), some("mx.example.org", None));
        assert_eq!(
            hp("mx.example.org:2525"),
            some("mx.example.org", Some(2525))
        );
        assert_eq!(hp("[::1]:2525"), some("::1", Some(2525)));
        assert_eq!(hp("::1"), some("::1", None));
        assert_eq!(hp(String::from("h:26")), some("h", Some(26)));
        let owned = String::from("h");
        assert_eq!(hp(&owned), some("h", None));
        assert_eq!(owned, "h");
        let v4 = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 7), 25));
        assert_eq!(hp(v4), some("192.0.2.7", Some(25)));
        let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, 587));
        assert_eq!(hp(v6), some("::1", Some(587)));
        assert_eq!(
            hp(IpAddr::from(Ipv4Addr::LOCALHOST)),
            some("127.0.0.1", None)
        );
        assert_eq!(hp(Ipv6Addr::LOCALHOST), some("::1", None));
        assert_eq!(
            hp(("mx.example.org", 465)),
            some("mx.example.org", Some(465))
        );
        assert_eq!(hp(("[::1]", 465)), some("::1", Some(465)));
        assert_eq!(hp(("::1", 465)), some("::1", Some(465)));
        assert_eq!(hp((String::from("h"), 1)), some("h", Some(1)));
        assert_eq!(
            hp((IpAddr::from(Ipv4Addr::LOCALHOST), 2)),
            some("127.0.0.1", Some(2))
        );
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in ["", ":25", "h:x", "[::1]x", "[::1"] {
            assert!(hp(bad).is_err(), "{bad:?}");
        }
        for bad in ["", "h:25", "[h]", "[::1]:25", "[::1"] {
            assert!(hp((bad, 25)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_strings_starting_with_a_slash_name_a_socket() {
        assert_eq!("/run/lmtp".unix_path(), Some(Path::new("/run/lmtp")));
        assert_eq!(
            String::from("/run/lmtp").unix_path(),
            Some(Path::new("/run/lmtp"))
        );
        assert_eq!("run/lmtp".unix_path(), None);
        assert_eq!(("/run/lmtp", 1).unix_path(), None);
    }
}
