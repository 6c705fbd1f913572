//! XOAUTH2, Google's bearer-token mechanism for SMTP AUTH (documented in Google's
//! "XOAUTH2 protocol" page; Microsoft 365 accepts it too).

use super::{Mechanism, SaslError, Secret};

/// XOAUTH2: the single message `user=U ^A auth=Bearer T ^A ^A`.
///
/// When the server answers the credentials with a 334 challenge (a base64 JSON
/// error), the client sends an empty response so that the server sends its final
/// failure reply.
// Debug is safe to derive: the token is a `Secret`.
#[derive(Debug, Clone)]
pub struct XOAuth2 {
    user: String,
    token: Secret,
    sent: bool,
}

impl XOAuth2 {
    /// XOAUTH2 for `user` with an OAuth 2.0 access token.
    #[must_use]
    pub fn new(user: impl Into<String>, token: Secret) -> XOAuth2 {
        XOAuth2 {
            user: user.into(),
            token,
            sent: false,
        }
    }

    fn message(&self) -> Result<Vec<u8>, SaslError> {
        // ^A separates the fields: one inside a value would forge another field.
        if self.user.contains('\x01') || self.token.expose().contains('\x01') {
            return Err(SaslError(
                "XOAUTH2 user or token contains the ^A separator".into(),
            ));
        }
        let mut m = Vec::with_capacity(self.user.len() + self.token.expose().len() + 20);
        m.extend_from_slice(b"user=");
        m.extend_from_slice(self.user.as_bytes());
        m.extend_from_slice(b"\x01auth=Bearer ");
        m.extend_from_slice(self.token.expose().as_bytes());
        m.extend_from_slice(b"\x01\x01");
        Ok(m)
    }
}

impl Mechanism for XOAuth2 {
    fn name(&self) -> &str {
        "XOAUTH2"
    }

    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        let m = self.message()?;
        self.sent = true;
        Ok(Some(m))
    }

    fn step(&mut self, _challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        if self.sent {
            // The challenge is the server's JSON error: an empty answer asks for
            // the final reply.
            return Ok(Vec::new());
        }
        let m = self.message()?;
        self.sent = true;
        Ok(m)
    }
}
