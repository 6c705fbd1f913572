//! SASL for SMTP AUTH: RFC 4954 (AUTH command), RFC 4422 (SASL), RFC 4616 (PLAIN),
//! draft-murchison-sasl-login (LOGIN), RFC 2195 (CRAM-MD5), RFC 7628 (OAUTHBEARER),
//! Google's XOAUTH2, RFC 7677 and RFC 5802 (SCRAM-SHA-256).
//!
//! A [`Mechanism`] is pure and synchronous: the client state machine asks it for an
//! initial response and for the answer to each challenge, and does the base64
//! itself. Secrets live in [`Secret`], whose `Debug` never shows them.
//!
//! # Which mechanisms may run without TLS
//!
//! The client refuses to start a mechanism that puts a reusable secret on the
//! wire ([`Mechanism::exposes_secret`]) unless the connection is TLS with a
//! verified certificate, or goes to a loopback address or a Unix socket, or the
//! caller opted in (`allow_plaintext_auth`): RFC 4954 section 4, Go's
//! `net/smtp` `PlainAuth`. What each mechanism gives an eavesdropper:
//!
//! | mechanism | on the wire | without TLS |
//! |---|---|---|
//! | PLAIN, LOGIN | the password (base64) | refused: anyone on the path reads it |
//! | XOAUTH2, OAUTHBEARER | the bearer token | refused: a token is replayable until it expires |
//! | CRAM-MD5 | `user hex(HMAC-MD5(password, challenge))` | refused (see below) |
//! | SCRAM-SHA-256 | a proof bound to both nonces; salt and iteration count from the server | allowed (see below) |
//! | a mechanism of your own | unknown | refused unless it says otherwise |
//!
//! Neither CRAM-MD5 nor SCRAM-SHA-256 sends the password itself, and neither
//! response can be replayed. Both let whoever records the exchange guess the
//! password offline, at very different costs:
//!
//! - **CRAM-MD5** costs one HMAC-MD5 per guess: billions of guesses a second
//!   on one GPU, so most passwords people choose fall within hours to a
//!   passive eavesdropper, and an attacker who strips STARTTLS and plays the
//!   server picks the challenge too. The mechanism is also obsolete (it makes
//!   the server keep the password in a form as good as clear text). It is
//!   treated as exposing the secret: refused in the clear like PLAIN.
//! - **SCRAM-SHA-256** costs the server's iteration count of
//!   PBKDF2-HMAC-SHA-256 per guess, at least 4096 (RFC 7677 section 4; this
//!   client refuses fewer, [`ScramSha256::MIN_ITERATIONS`]), thousands of
//!   times more than CRAM-MD5, and the server proves it knows the password
//!   before the session counts as authenticated. It is allowed in the clear.
//!   What remains: an attacker in the path can still guess offline at that
//!   cost (a weak password stays weak), and, with no channel binding, can
//!   relay the exchange to the real server and take over the authenticated
//!   plaintext session. Use TLS for either; opt in (`allow_plaintext_auth`)
//!   to run CRAM-MD5 without it.

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

    /// Whether the exchange puts a reusable secret on the wire, or one an
    /// eavesdropper can cheaply recover (a password, a bearer token, a
    /// CRAM-MD5 response): then the client refuses to start it on a
    /// connection that is neither TLS with a verified certificate nor to a
    /// loopback address or Unix socket, unless `allow_plaintext_auth` is set
    /// (see the [module](self)). The default is `true`, so a mechanism that
    /// does not say otherwise is treated as exposing; SCRAM-SHA-256 says
    /// `false`.
    fn exposes_secret(&self) -> bool {
        true
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
