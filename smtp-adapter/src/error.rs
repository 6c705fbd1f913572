//! The adapters' error: the core's (smtplib's exception cases) plus transport
//! and TLS failures, which name the server they happened with.
//!
//! One rule for what an error says, the core's too: its `Display` is the
//! whole message, its cause included, and `source()` returns `None`, so a
//! reporter that prints `Display` and then walks the sources never repeats
//! a cause. What a caller branches on stays reachable: [`Error::inner`] (the
//! error without the server named around it), [`Error::io_error`] (and so
//! its [`std::io::ErrorKind`]), [`Error::reply`], [`Error::delivery`].

use std::fmt;
use std::net::SocketAddr;

use smtp_sansio::{Delivery, Escaped, Reply};

/// The server a session talks to, as its errors name it: the name asked for
/// (a host name, an address, or a Unix socket's path), the port, and the
/// address connected to (or tried last, when connecting failed) when known.
///
/// `Display`: `mx.example.org:25 (192.0.2.7:25)`, `192.0.2.7:25` when the
/// name is the address, `mx.example.org:25` before an address is known,
/// `/run/lmtp.sock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    name: String,
    port: Option<u16>,
    addr: Option<SocketAddr>,
}

impl Server {
    /// The server `name` (as asked for) at `port` (`None` for a Unix socket or
    /// a caller's stream).
    #[must_use]
    pub fn new(name: impl Into<String>, port: Option<u16>) -> Server {
        Server {
            name: name.into(),
            port,
            addr: None,
        }
    }

    /// The same server, connected at (or last tried at) `addr`.
    #[must_use]
    pub fn with_addr(mut self, addr: Option<SocketAddr>) -> Server {
        self.addr = addr.or(self.addr);
        self
    }

    /// The name asked for.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The port asked for, if any.
    #[must_use]
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The address connected to, or tried last when connecting failed.
    #[must_use]
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = Escaped(&self.name);
        let asked = match self.port {
            Some(port) if self.name.contains(':') => format!("[{name}]:{port}"),
            Some(port) => format!("{name}:{port}"),
            None => name.to_string(),
        };
        f.write_str(&asked)?;
        match self.addr {
            Some(addr) if addr.to_string() != asked => write!(f, " ({addr})"),
            _ => Ok(()),
        }
    }
}

/// Everything a call of an adapter can fail with.
///
/// A facade returns a transport failure (I/O, TLS, a timeout, a lost
/// connection) as [`Error::Connection`], which names the server around the
/// failure; match on [`Error::inner`] to branch on the failure itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An SMTP-level failure: a refusal carrying the server's reply, a protocol
    /// violation, a timeout, a disconnect or a misuse (see [`smtp_sansio::Error`]).
    #[error(transparent)]
    Smtp(#[from] smtp_sansio::Error),
    /// The transport failed (connect, read or write).
    #[error("I/O error: {0}")]
    Io(std::io::Error),
    /// The TLS handshake or a TLS record failed.
    #[error("TLS error: {0}")]
    Tls(crate::tls::TlsError),
    /// TLS was asked for (STARTTLS, implicit TLS) in a build that cannot do
    /// it: without the `tls` feature, or without a crypto provider.
    #[error("TLS is not available: {0}")]
    TlsUnavailable(&'static str),
    /// The host name cannot be used to verify a certificate.
    #[error("invalid TLS server name {0:?}")]
    InvalidServerName(String),
    /// No root certificate could be loaded for verifying servers: the
    /// platform's store is missing or unreadable (pass a `ClientConfig` of
    /// your own), or the CA certificates given
    /// ([`tls::config_with_ca_pem`](crate::tls::config_with_ca_pem)) hold
    /// none that parses.
    #[error("no root certificates for TLS: {0}")]
    NoRootCertificates(String),
    /// A server URL that does not parse
    /// ([`Builder::from_url`](crate::Builder::from_url)).
    #[error("invalid server URL: {0}")]
    Url(#[from] crate::UrlError),
    /// A DKIM key could not be read or a message could not be signed (never
    /// shows key material).
    #[cfg(feature = "dkim")]
    #[error("DKIM: {0}")]
    Dkim(String),
    /// A failure of the connection to `server`: `error` is an [`Error::Io`],
    /// an [`Error::Tls`], or an [`Error::Smtp`] holding
    /// [`Timeout`](smtp_sansio::Error::Timeout) or
    /// [`Disconnected`](smtp_sansio::Error::Disconnected), never another
    /// `Connection`. `Display`: `connecting to mx.example.org:25
    /// (192.0.2.7:25): Connection refused (os error 111)` while the
    /// connection was being made, `mx.example.org:25 (192.0.2.7:25): timed
    /// out waiting for the reply to MAIL` after.
    #[error("{}{server}: {}", if *connecting { "connecting to " } else { "" }, error.detail())]
    #[non_exhaustive]
    Connection {
        /// The server.
        server: Server,
        /// Whether the connection was being made (the TCP or Unix connect,
        /// the implicit TLS handshake), not yet carrying the session.
        connecting: bool,
        /// What failed.
        error: Box<Error>,
    },
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<crate::tls::TlsError> for Error {
    fn from(e: crate::tls::TlsError) -> Self {
        Error::Tls(e)
    }
}

impl From<smtp_sansio::UsageError> for Error {
    fn from(e: smtp_sansio::UsageError) -> Self {
        Error::Smtp(e.into())
    }
}

impl Error {
    /// The error itself, without the server named around it: `error` of an
    /// [`Error::Connection`], `self` otherwise. What to match on:
    ///
    /// ```
    /// use smtp_adapter::{Error, Server};
    ///
    /// let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    /// let e = Error::Io(refused).connecting_to(&Server::new("mx.example.org", Some(25)));
    /// assert_eq!(e.to_string(), "connecting to mx.example.org:25: connection refused");
    /// assert!(matches!(e.inner(), Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused));
    /// ```
    #[must_use]
    pub fn inner(&self) -> &Error {
        match self {
            Error::Connection { error, .. } => error,
            e => e,
        }
    }

    /// [`Error::inner`], by value.
    #[must_use]
    pub fn into_inner(self) -> Error {
        match self {
            Error::Connection { error, .. } => *error,
            e => e,
        }
    }

    /// The server a connection failure names, if it is one.
    #[must_use]
    pub fn server(&self) -> Option<&Server> {
        match self {
            Error::Connection { server, .. } => Some(server),
            _ => None,
        }
    }

    /// The I/O error, when the failure is one ([`Error::Io`], named or not).
    #[must_use]
    pub fn io_error(&self) -> Option<&std::io::Error> {
        match self.inner() {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }

    /// This error naming `server`, when it is a failure of the connection
    /// (I/O, TLS, a timeout, a lost connection) that names none yet; any
    /// other error as it is. The facades apply it where a call returns.
    #[must_use]
    pub fn with_server(self, server: &Server) -> Error {
        self.named(server, false)
    }

    /// [`Error::with_server`] for a failure while the connection was being
    /// made (`connecting to ...`).
    #[must_use]
    pub fn connecting_to(self, server: &Server) -> Error {
        self.named(server, true)
    }

    fn named(self, server: &Server, connecting: bool) -> Error {
        use smtp_sansio::Error as E;
        match self {
            Error::Io(_) | Error::Tls(_) | Error::Smtp(E::Timeout(_) | E::Disconnected) => {
                Error::Connection {
                    server: server.clone(),
                    connecting,
                    error: Box::new(self),
                }
            }
            e => e,
        }
    }

    /// The message of a named failure after the server: an I/O error's own
    /// (the server already says where), any other as it is.
    fn detail(&self) -> String {
        match self {
            Error::Io(e) => e.to_string(),
            e => e.to_string(),
        }
    }

    /// The server's reply carried by the error (smtplib's `smtp_code` and
    /// `smtp_error`), if any.
    #[must_use]
    pub fn reply(&self) -> Option<&Reply> {
        match self.inner() {
            Error::Smtp(e) => e.reply(),
            _ => None,
        }
    }

    /// What the error says about the message of the transaction that failed
    /// with it (see [`smtp_sansio::Error::delivery`]): [`Delivery::Unknown`]
    /// when the end of the message went out and its reply did not come (the
    /// server may have accepted it: sending again may duplicate it),
    /// [`Delivery::Refused`] when the server refused it with a reply (a
    /// refusal followed by a broken connection included), and
    /// [`Delivery::NotSent`] otherwise, a transport or TLS failure included
    /// (the facades report one that cut the connection after the end of the
    /// message went out as unknown), which makes sending again safe.
    #[must_use]
    pub fn delivery(&self) -> Delivery {
        match self.inner() {
            Error::Smtp(e) => e.delivery(),
            _ => Delivery::NotSent,
        }
    }

    /// An I/O error from a TLS stream: the rustls error inside it when there is
    /// one (rustls reports its own failures as `InvalidData` wrapping it).
    #[must_use]
    pub fn from_tls_io(e: std::io::Error) -> Error {
        #[cfg(not(feature = "tls"))]
        return Error::Io(e);
        #[cfg(feature = "tls")]
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(tls) => Error::Tls(tls.clone()),
            None => Error::Io(e),
        }
    }

    /// The timeout error for a wait that is not a reply (`what`: "the TLS
    /// handshake", "the connection", "writing to the server").
    #[must_use]
    pub fn timeout(what: &'static str) -> Error {
        Error::Smtp(smtp_sansio::Error::Timeout(what))
    }

    /// The error of a call made while an earlier call's future was dropped
    /// half-way: the session may be out of step with the server.
    #[must_use]
    pub fn out_of_step() -> Error {
        Error::Smtp(
            smtp_sansio::UsageError::WrongState(
                "the session is out of step (a call was cancelled)",
            )
            .into(),
        )
    }
}

/// The result of an operation a facade drove, given the transport failure
/// that cut the connection under it, if one did. The core took that failure
/// as the end of the stream (or a failed write), so its result decides: a
/// refusal the server gave before the failure stays that refusal, an end of
/// message that went out without its reply stays unknown. The transport's
/// error only replaces the core's generic [`Disconnected`], which says less.
///
/// [`Disconnected`]: smtp_sansio::Error::Disconnected
///
/// # Errors
///
/// The operation's error, or the transport's in place of `Disconnected`.
pub fn settle<T>(
    result: Result<T, smtp_sansio::Error>,
    transport: Option<Error>,
) -> Result<T, Error> {
    match (result, transport) {
        (Err(smtp_sansio::Error::Disconnected), Some(transport)) => Err(transport),
        (result, _) => result.map_err(Error::Smtp),
    }
}
