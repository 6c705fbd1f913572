//! A bounded pool of sessions to one server, shared by many tasks, for any async
//! runtime (the permits come from `async-lock`). [`SmtpClient`](crate::SmtpClient)
//! implements [`Session`] for every runtime.
//!
//! Idle sessions are checked before reuse ([`Session::check`], a NOOP whose 221
//! or 421 answer ends the session in the core) and closed after an idle timeout;
//! a dead session is replaced by a fresh connection. A borrowed session goes back
//! to the pool when dropped, unless it is no longer usable.

use std::collections::VecDeque;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_lock::{Semaphore, SemaphoreGuardArc};

/// What the pool needs of a session.
pub trait Session: Send + Sized + 'static {
    /// Whether it can take another command (not closed, not broken).
    fn is_usable(&self) -> bool;
    /// A health check (NOOP); `false` means the session is dead.
    fn check(&mut self) -> impl Future<Output = bool> + Send;
    /// Ends the session (QUIT).
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// Pool settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PoolConfig {
    /// Most sessions open at once (in use or idle).
    pub max_size: usize,
    /// Idle sessions older than this are closed instead of reused.
    pub idle_timeout: Duration,
    /// Check an idle session before handing it out.
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

type ConnectFn<S, E> = dyn Fn() -> Pin<Box<dyn Future<Output = Result<S, E>> + Send>> + Send + Sync;
type Idle<S> = Mutex<VecDeque<(S, Instant)>>;

/// A pool of sessions made by a connect function (which also does STARTTLS and
/// login as needed).
pub struct Pool<S: Session, E> {
    config: PoolConfig,
    connect: Arc<ConnectFn<S, E>>,
    idle: Arc<Idle<S>>,
    permits: Arc<Semaphore>,
}

impl<S: Session, E> Clone for Pool<S, E> {
    fn clone(&self) -> Self {
        Pool {
            config: self.config.clone(),
            connect: self.connect.clone(),
            idle: self.idle.clone(),
            permits: self.permits.clone(),
        }
    }
}

impl<S: Session, E> std::fmt::Debug for Pool<S, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn lock<S>(idle: &Idle<S>) -> MutexGuard<'_, VecDeque<(S, Instant)>> {
    // A panic elsewhere must not make the pool unusable.
    idle.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<S: Session, E> Pool<S, E> {
    /// A pool whose sessions come from `connect`.
    pub fn new<F, Fut>(config: PoolConfig, connect: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<S, E>> + Send + 'static,
    {
        let permits = Arc::new(Semaphore::new(config.max_size.max(1)));
        Pool {
            config,
            connect: Arc::new(move || Box::pin(connect())),
            idle: Arc::new(Mutex::new(VecDeque::new())),
            permits,
        }
    }

    /// Idle sessions right now.
    #[must_use]
    pub fn idle_count(&self) -> usize {
        lock(&self.idle).len()
    }

    /// A healthy session: an idle one that passes its check, or a new one. Waits
    /// while `max_size` sessions are in use.
    pub async fn get(&self) -> Result<Pooled<S>, E> {
        let permit = self.permits.acquire_arc().await;
        loop {
            let candidate = lock(&self.idle).pop_front();
            let Some((mut session, since)) = candidate else {
                break;
            };
            if since.elapsed() > self.config.idle_timeout || !session.is_usable() {
                session.close().await;
                continue;
            }
            if self.config.health_check && !session.check().await {
                continue;
            }
            return Ok(self.wrap(session, permit));
        }
        let session = (self.connect)().await?;
        Ok(self.wrap(session, permit))
    }

    fn wrap(&self, session: S, permit: SemaphoreGuardArc) -> Pooled<S> {
        Pooled {
            session: Some(session),
            idle: self.idle.clone(),
            _permit: permit,
        }
    }
}

/// A session borrowed from a [`Pool`].
pub struct Pooled<S: Session> {
    session: Option<S>,
    idle: Arc<Idle<S>>,
    _permit: SemaphoreGuardArc,
}

impl<S: Session> Pooled<S> {
    /// Keeps the session out of the pool (it is dropped, closing the socket).
    pub fn discard(mut self) {
        self.session = None;
    }
}

impl<S: Session + std::fmt::Debug> std::fmt::Debug for Pooled<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pooled")
            .field("session", &self.session)
            .finish()
    }
}

impl<S: Session> Deref for Pooled<S> {
    type Target = S;
    fn deref(&self) -> &S {
        // Present from construction until drop or discard, which consumes self.
        #[allow(clippy::expect_used)]
        self.session
            .as_ref()
            .expect("pooled session present until dropped")
    }
}

impl<S: Session> DerefMut for Pooled<S> {
    fn deref_mut(&mut self) -> &mut S {
        // Present from construction until drop or discard, which consumes self.
        #[allow(clippy::expect_used)]
        self.session
            .as_mut()
            .expect("pooled session present until dropped")
    }
}

impl<S: Session> Drop for Pooled<S> {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            if s.is_usable() {
                lock(&self.idle).push_back((s, Instant::now()));
            }
        }
    }
}

impl<R: crate::Runtime> Session for crate::SmtpClient<R> {
    fn is_usable(&self) -> bool {
        crate::SmtpClient::is_usable(self)
    }

    async fn check(&mut self) -> bool {
        // The core ends the session on 221 or 421; any other success is alive.
        matches!(self.noop().await, Ok(r) if r.is_positive())
    }

    async fn close(self) {
        // The session is given up either way.
        let _ = self.quit().await;
    }
}
