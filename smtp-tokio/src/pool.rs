//! A bounded pool of sessions to one server, shared by many tasks.
//!
//! Idle sessions are health-checked with NOOP before reuse (a 221 or 421 answer,
//! or any failure, means the server dropped it) and closed after an idle
//! timeout; a dead session is replaced by a fresh connection.

use std::collections::VecDeque;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{Error, SmtpClient};

type Connect =
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<SmtpClient, Error>> + Send>> + Send + Sync;

/// Pool settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PoolConfig {
    /// Most sessions open at once (in use or idle).
    pub max_size: usize,
    /// Idle sessions older than this are closed instead of reused.
    pub idle_timeout: Duration,
    /// Check an idle session with NOOP before handing it out.
    pub health_check: bool,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_size: 4,
            idle_timeout: Duration::from_secs(60),
            health_check: true,
        }
    }
}

struct Shared {
    idle: Mutex<VecDeque<(SmtpClient, Instant)>>,
}

/// A pool of sessions made by a connect function (which also does STARTTLS and
/// login as needed).
#[derive(Clone)]
pub struct Pool {
    config: PoolConfig,
    connect: Arc<Connect>,
    shared: Arc<Shared>,
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool whose sessions come from `connect`.
    pub fn new<F, Fut>(config: PoolConfig, connect: F) -> Pool
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<SmtpClient, Error>> + Send + 'static,
    {
        let permits = Arc::new(Semaphore::new(config.max_size.max(1)));
        Pool {
            config,
            connect: Arc::new(move || Box::pin(connect())),
            shared: Arc::new(Shared {
                idle: Mutex::new(VecDeque::new()),
            }),
            permits,
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, VecDeque<(SmtpClient, Instant)>> {
        // A panic elsewhere must not make the pool unusable.
        self.shared
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Idle sessions right now.
    #[must_use]
    pub fn idle_count(&self) -> usize {
        self.idle().len()
    }

    /// A healthy session: an idle one that passes its check, or a new one.
    /// Waits while `max_size` sessions are in use.
    pub async fn get(&self) -> Result<Pooled, Error> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Smtp(smtp_proto::Error::Disconnected))?;
        loop {
            let candidate = self.idle().pop_front();
            let Some((mut client, since)) = candidate else {
                break;
            };
            if since.elapsed() > self.config.idle_timeout || !client.is_usable() {
                let _ = client.quit().await;
                continue;
            }
            if self.config.health_check {
                match client.noop().await {
                    Ok(r) if r.is_positive() => {}
                    // 221, 421, another code or a failure: the session is gone.
                    _ => continue,
                }
            }
            return Ok(self.wrap(client, permit));
        }
        let client = (self.connect)().await?;
        Ok(self.wrap(client, permit))
    }

    fn wrap(&self, client: SmtpClient, permit: OwnedSemaphorePermit) -> Pooled {
        Pooled {
            client: Some(client),
            shared: self.shared.clone(),
            _permit: permit,
        }
    }
}

/// A session borrowed from a [`Pool`]; it goes back when dropped, if usable.
pub struct Pooled {
    client: Option<SmtpClient>,
    shared: Arc<Shared>,
    _permit: OwnedSemaphorePermit,
}

impl Pooled {
    /// Does not return the session to the pool (it is closed).
    pub fn discard(mut self) {
        self.client = None;
    }
}

impl std::fmt::Debug for Pooled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pooled")
            .field("client", &self.client)
            .finish()
    }
}

impl Deref for Pooled {
    type Target = SmtpClient;
    fn deref(&self) -> &SmtpClient {
        // Present from construction until drop or discard, which consumes self.
        #[allow(clippy::expect_used)]
        self.client
            .as_ref()
            .expect("pooled session present until dropped")
    }
}

impl DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut SmtpClient {
        // Present from construction until drop or discard, which consumes self.
        #[allow(clippy::expect_used)]
        self.client
            .as_mut()
            .expect("pooled session present until dropped")
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            if c.is_usable() {
                let mut idle = self
                    .shared
                    .idle
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                idle.push_back((c, Instant::now()));
            }
        }
    }
}
