//! SASL for SMTP AUTH: RFC 4954 (AUTH command), RFC 4422 (SASL), RFC 4616 (PLAIN),
//! draft-murchison-sasl-login (LOGIN), RFC 2195 (CRAM-MD5), RFC 7628 (OAUTHBEARER),
//! Google's XOAUTH2, RFC 7677 and RFC 5802 (SCRAM-SHA-256).
//!
//! A [`Mechanism`] is pure and synchronous: the client state machine asks it for an
//! initial response and for the answer to each challenge, and does the base64
//! itself. Secrets live in [`Secret`], whose `Debug` never shows them.

use std::fmt;

mod cram_md5;
mod login;
mod oauthbearer;
mod plain;
mod scram;
mod xoauth2;

pub use cram_md5::CramMd5;
pub use login::Login;
pub use oauthbearer::OAuthBearer;
pub use plain::Plain;
pub use scram::{ScramError, ScramSha256};
pub use xoauth2::XOAuth2;

/// A password or token. `Debug` and `Display` print `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    #[must_use]
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself: call only to put it on the wire.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A mechanism failed to produce an answer; the client cancels the exchange with `*`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SaslError(pub String);

/// A SASL mechanism, client side.
pub trait Mechanism: Send + fmt::Debug {
    /// The registered name, upper case (`PLAIN`).
    fn name(&self) -> &str;

    /// The initial response to send on the AUTH line, or `None` when the mechanism
    /// has none (CRAM-MD5). Called at most once, and only when the caller allows
    /// initial responses; when it is not called, the first challenge gets what it
    /// would have returned.
    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError>;

    /// The answer to a (base64-decoded) 334 challenge.
    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError>;

    /// Called when the server accepted the exchange (235): whether the
    /// mechanism agrees that it is complete. A mechanism that authenticates
    /// the server too (SCRAM) refuses here when the server never proved
    /// itself; the client then reports the authentication as failed. The
    /// default accepts.
    fn finish(&mut self) -> Result<(), SaslError> {
        Ok(())
    }
}

/// User name and password for `login`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name (authentication identity).
    pub user: String,
    /// The password.
    pub password: Secret,
}

impl Credentials {
    /// User and password.
    #[must_use]
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            user: user.into(),
            password: Secret::new(password),
        }
    }
}

/// The mechanisms smtplib's `login` would try with these credentials, in its order
/// (CRAM-MD5, PLAIN, LOGIN), keeping only those in `offered` (compared
/// case-insensitively).
#[must_use]
pub fn login_mechanisms(offered: &[String], credentials: &Credentials) -> Vec<Box<dyn Mechanism>> {
    let offers = |name: &str| offered.iter().any(|o| o.eq_ignore_ascii_case(name));
    let mut out: Vec<Box<dyn Mechanism>> = Vec::new();
    if offers("CRAM-MD5") {
        out.push(Box::new(CramMd5::new(credentials.clone())));
    }
    if offers("PLAIN") {
        out.push(Box::new(Plain::new(credentials.clone())));
    }
    if offers("LOGIN") {
        out.push(Box::new(Login::new(credentials.clone())));
    }
    out
}
