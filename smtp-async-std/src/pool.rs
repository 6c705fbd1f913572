//! The connection pool ([`smtp_pool`]) for async-std and smol sessions.

use futures_lite::io::{AsyncRead, AsyncWrite};

use crate::{Error, SmtpClient, Stream};

pub use smtp_pool::{PoolConfig, Pooled};

/// A pool of sessions (see [`smtp_pool::Pool`]).
pub type Pool<S = Stream> = smtp_pool::Pool<SmtpClient<S>, Error>;

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> smtp_pool::Session for SmtpClient<S> {
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
