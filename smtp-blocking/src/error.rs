//! The adapter's error: the core's (smtplib's exception cases) plus I/O and TLS.

use smtp_proto::Reply;

/// Everything a call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An SMTP-level failure: a refusal carrying the server's reply, a protocol
    /// violation, a timeout, a disconnect or a misuse (see [`smtp_proto::Error`]).
    #[error(transparent)]
    Smtp(#[from] smtp_proto::Error),
    /// The transport failed (connect, read or write).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The TLS handshake or a TLS record failed.
    #[error("TLS error: {0}")]
    Tls(#[from] rustls::Error),
    /// The host name cannot be used to verify a certificate.
    #[error("invalid TLS server name {0:?}")]
    InvalidServerName(String),
}

impl From<smtp_proto::UsageError> for Error {
    fn from(e: smtp_proto::UsageError) -> Self {
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
}
