//! Bearer tokens: Google's XOAUTH2 and OAUTHBEARER (RFC 7628).

use super::{Mechanism, SaslError, Secret};

/// XOAUTH2: `user=U ^A auth=Bearer T ^A ^A`. When the server answers the
/// credentials with a 334 error challenge, the client sends an empty line to get
/// the final status.
#[derive(Debug, Clone)]
pub struct XOAuth2 {
    user: String,
    token: Secret,
    sent: bool,
}

impl XOAuth2 {
    /// XOAUTH2 for `user` with an access token.
    #[must_use]
    pub fn new(user: impl Into<String>, token: Secret) -> XOAuth2 {
        XOAuth2 {
            user: user.into(),
            token,
            sent: false,
        }
    }

    fn message(&self) -> Vec<u8> {
        format!(
            "user={}\x01auth=Bearer {}\x01\x01",
            self.user,
            self.token.expose()
        )
        .into_bytes()
    }
}

impl Mechanism for XOAuth2 {
    fn name(&self) -> &str {
        "XOAUTH2"
    }

    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        self.sent = true;
        Ok(Some(self.message()))
    }

    fn step(&mut self, _challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        if self.sent {
            // The challenge is the server's JSON error: acknowledge it.
            return Ok(Vec::new());
        }
        self.sent = true;
        Ok(self.message())
    }
}

/// OAUTHBEARER (RFC 7628 section 3.1): a GS2 header naming the user, then
/// host, port and the bearer token. An error challenge is answered with `^A`.
#[derive(Debug, Clone)]
pub struct OAuthBearer {
    user: String,
    token: Secret,
    host: Option<String>,
    port: Option<u16>,
    sent: bool,
}

impl OAuthBearer {
    /// OAUTHBEARER for `user` with an access token.
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

    /// Adds the `host` key.
    #[must_use]
    pub fn host(mut self, host: impl Into<String>) -> OAuthBearer {
        self.host = Some(host.into());
        self
    }

    /// Adds the `port` key.
    #[must_use]
    pub fn port(mut self, port: u16) -> OAuthBearer {
        self.port = Some(port);
        self
    }

    fn message(&self) -> Vec<u8> {
        // RFC 5801 section 4: ',' and '=' in the authzid are escaped.
        let user = self.user.replace('=', "=3D").replace(',', "=2C");
        let mut m = format!("n,a={user},\x01");
        if let Some(h) = &self.host {
            m.push_str(&format!("host={h}\x01"));
        }
        if let Some(p) = self.port {
            m.push_str(&format!("port={p}\x01"));
        }
        m.push_str(&format!("auth=Bearer {}\x01\x01", self.token.expose()));
        m.into_bytes()
    }
}

impl Mechanism for OAuthBearer {
    fn name(&self) -> &str {
        "OAUTHBEARER"
    }

    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        self.sent = true;
        Ok(Some(self.message()))
    }

    fn step(&mut self, _challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        if self.sent {
            return Ok(vec![0x01]);
        }
        self.sent = true;
        Ok(self.message())
    }
}
