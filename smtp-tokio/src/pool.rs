//! The connection pool ([`smtp_pool`]) for Tokio sessions.

use crate::{Error, SmtpClient};

pub use smtp_pool::{PoolConfig, Pooled};

/// A pool of Tokio sessions (see [`smtp_pool::Pool`]).
pub type Pool = smtp_pool::Pool<SmtpClient, Error>;

impl smtp_pool::Session for SmtpClient {
    fn is_usable(&self) -> bool {
        SmtpClient::is_usable(self)
    }

    async fn check(&mut self) -> bool {
        // The core ends the session on 221 or 421; any other success is alive.
        matches!(self.noop().await, Ok(r) if r.is_positive())
    }

    async fn close(self) {
        let _ = self.quit().await;
    }
}
