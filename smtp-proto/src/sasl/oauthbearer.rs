//! OAUTHBEARER (RFC 7628 section 3.1), with the GS2 header of RFC 5801 section 4.

use super::{Mechanism, SaslError, Secret};

/// OAUTHBEARER: `n,a=user,` then `^A host=H ^A port=P ^A auth=Bearer T ^A ^A`
/// (host and port only when set).
///
/// An error challenge after the credentials (RFC 7628 section 3.2.3) is answered
/// with a single `^A`, after which the server sends its failure reply.
// Debug is safe to derive: the token is a `Secret`.
#[derive(Debug, Clone)]
pub struct OAuthBearer {
    user: String,
    token: Secret,
    host: Option<String>,
    port: Option<u16>,
    sent: bool,
}

impl OAuthBearer {
    /// OAUTHBEARER for `user` with an OAuth 2.0 access token.
    #[must_use]
    pub fn new(user: impl Into<String>, token: Secret) -> OAuthBearer {
        OAuthBearer {
            user: user.into(),
            token,
            host: None,
            port: None,
            sent: false,
        }
    }

    /// Adds the `host` key (RFC 7628 section 3.1): the server name the client
    /// connected to.
    #[must_use]
    pub fn host(mut self, host: impl Into<String>) -> OAuthBearer {
        self.host = Some(host.into());
        self
    }

    /// Adds the `port` key (RFC 7628 section 3.1): the port the client connected to.
    #[must_use]
    pub fn port(mut self, port: u16) -> OAuthBearer {
        self.port = Some(port);
        self
    }

    fn message(&self) -> Result<Vec<u8>, SaslError> {
        let forged = |s: &str| s.contains('\x01');
        if forged(&self.user)
            || forged(self.token.expose())
            || self.host.as_deref().is_some_and(forged)
        {
            return Err(SaslError(
                "OAUTHBEARER user, host or token contains the ^A separator".into(),
            ));
        }
        // RFC 5801 section 4: ',' and '=' in the authzid are escaped.
        let user = self.user.replace('=', "=3D").replace(',', "=2C");
        let mut m = format!("n,a={user},\x01");
        if let Some(h) = &self.host {
            m.push_str("host=");
            m.push_str(h);
            m.push('\x01');
        }
        if let Some(p) = self.port {
            m.push_str("port=");
            m.push_str(&p.to_string());
            m.push('\x01');
        }
        m.push_str("auth=Bearer ");
        m.push_str(self.token.expose());
        m.push_str("\x01\x01");
        Ok(m.into_bytes())
    }
}

impl Mechanism for OAuthBearer {
    fn name(&self) -> &str {
        "OAUTHBEARER"
    }

    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        let m = self.message()?;
        self.sent = true;
        Ok(Some(m))
    }

    fn step(&mut self, _challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        if self.sent {
            // RFC 7628 section 3.2.3: the challenge is an error; a single ^A
            // acknowledges it.
            return Ok(vec![0x01]);
        }
        let m = self.message()?;
        self.sent = true;
        Ok(m)
    }
}
