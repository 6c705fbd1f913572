//! The adapters' error: the core's (smtplib's exception cases) plus transport
//! and TLS failures.

use smtp_sansio::{Delivery, Reply};

/// Everything a call of an adapter can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An SMTP-level failure: a refusal carrying the server's reply, a protocol
    /// violation, a timeout, a disconnect or a misuse (see [`smtp_sansio::Error`]).
    #[error(transparent)]
    Smtp(#[from] smtp_sansio::Error),
    /// The transport failed (connect, read or write).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The TLS handshake or a TLS record failed.
    #[error("TLS error: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// TLS was asked for (STARTTLS, implicit TLS) in a build that cannot do
    /// it: without the `tls` feature, or without a crypto provider.
    #[error("TLS is not available: {0}")]
    TlsUnavailable(&'static str),
    /// The host name cannot be used to verify a certificate.
    #[error("invalid TLS server name {0:?}")]
    InvalidServerName(String),
    /// No root certificate could be loaded for verifying servers (the platform's
    /// store is missing or unreadable); pass a `ClientConfig` of your own.
    #[error("no root certificates for TLS: {0}")]
    NoRootCertificates(String),
    /// A DKIM key could not be read or a message could not be signed (never
    /// shows key material).
    #[cfg(feature = "dkim")]
    #[error("DKIM: {0}")]
    Dkim(String),
}

impl From<smtp_sansio::UsageError> for Error {
    fn from(e: smtp_sansio::UsageError) -> Self {
        Error::Smtp(e.into())
    }
}

impl Error {
    /// The server's reply carried by the error (smtplib's `smtp_code` and
    /// `smtp_error`), if any.
    #[must_use]
    pub fn reply(&self) -> Option<&Reply> {
        match self {
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
        match self {
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
