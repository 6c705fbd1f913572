//! A bounded pool of sessions to one server, shared by many tasks, for any async
//! runtime (the permits come from `async-lock`). [`SmtpClient`](crate::SmtpClient)
//! implements [`Session`] for every runtime.
//!
//! Limits ([`PoolConfig`]): at most `max_size` sessions open; a session is
//! handed out again only while it is usable, younger than `max_age`, idle for
//! less than `idle_timeout` and under `max_messages` transactions; otherwise
//! it is closed with QUIT when the next caller asks for one, and a fresh
//! connection takes its place. `get` waits at most `checkout_timeout` for a
//! free session. A session whose call was cancelled, or whose transaction
//! ended with its delivery unknown (the session is over then), is never
//! handed out again. [`Pool::close`] QUITs the idle sessions and refuses new
//! checkouts.
//!
//! Checks before reuse: a session that sat idle for `check_after` or more
//! must pass [`Session::check`] (a NOOP, one round trip; a 221 or 421 answer
//! ends the session in the core). One idle for less costs no round trip:
//! [`Session::probe`] only reads what the server already sent, so that a
//! connection the server closed meanwhile (its end of stream, a 421) is
//! found dead and replaced before a message starts on it.
//!
//! [`Pool::send`] checks a session out and sends; when the session ended (a
//! 421, a lost connection, a timeout) before the end of the message went out,
//! so that nothing of it can have been delivered, it sends once more on a
//! fresh connection: always when the session was reused without a check, and
//! otherwise with [`PoolConfig::retry_not_sent`]. Never after the end went
//! out, where a second copy could be delivered
//! ([`smtp_sansio::Delivery::Unknown`]).

use std::collections::VecDeque;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_lock::{Semaphore, SemaphoreGuardArc};

/// What the pool needs of a session.
pub trait Session: Send + Sized + 'static {
    /// Whether it can take another command (not closed, not broken).
    fn is_usable(&self) -> bool;
    /// A health check (NOOP); `false` means the session is dead.
    fn check(&mut self) -> impl Future<Output = bool> + Send;
    /// Whether the session still looks alive from what the server already
    /// sent, read without waiting (no round trip): `false` once the server
    /// closed it (the end of the stream, a 421). The default trusts
    /// [`Session::is_usable`].
    fn probe(&mut self) -> bool {
        self.is_usable()
    }
    /// Ends the session (QUIT).
    fn close(self) -> impl Future<Output = ()> + Send;
    /// How many mail transactions (and low-level DATA) it has started, for
    /// [`PoolConfig::max_messages`].
    fn transactions(&self) -> u64;
    /// `future`'s output, or `None` once `deadline` has passed (the runtime's
    /// timer), for [`PoolConfig::checkout_timeout`].
    fn before<F: Future + Send>(
        deadline: Instant,
        future: F,
    ) -> impl Future<Output = Option<F::Output>> + Send;
}

/// Why the pool itself could not hand out a session; the pool's error type
/// converts from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// No session became free within [`PoolConfig::checkout_timeout`].
    #[error("no free connection in the pool within the checkout timeout")]
    CheckoutTimeout,
    /// [`Pool::close`] was called.
    #[error("the pool is closed")]
    Closed,
}

impl From<PoolError> for smtp_adapter::Error {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::CheckoutTimeout => smtp_adapter::Error::timeout("a free pooled connection"),
            PoolError::Closed => smtp_sansio::UsageError::WrongState("the pool is closed").into(),
        }
    }
}

/// Pool settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PoolConfig {
    /// Most sessions open at once (in use or idle).
    pub max_size: usize,
    /// Idle sessions older than this are closed instead of reused.
    pub idle_timeout: Duration,
    /// Check a session that sat idle for [`PoolConfig::check_after`] or more
    /// ([`Session::check`], a NOOP) before handing it out.
    pub health_check: bool,
    /// How long a session may sit idle and still be handed out without a
    /// check (default 5 s; `Duration::ZERO` checks before every reuse). Such a
    /// session is only probed ([`Session::probe`]), and [`Pool::send`] sends
    /// once more on a fresh connection if it turns out dead before the end of
    /// the message went out.
    pub check_after: Duration,
    /// Most transactions on one connection (servers answer 421 at their own
    /// limit); a session that reached it is closed with QUIT and replaced.
    /// `None`: no limit.
    pub max_messages: Option<u64>,
    /// Oldest a connection may be when it is handed out; an older one is
    /// closed with QUIT and replaced. `None`: no limit.
    pub max_age: Option<Duration>,
    /// Longest [`Pool::get`] waits for a free session (all `max_size` in use);
    /// then it fails with [`PoolError::CheckoutTimeout`]. `None`: as long as
    /// it takes.
    pub checkout_timeout: Option<Duration>,
    /// [`Pool::send`] sends once more, on a fresh connection, when the
    /// session ended before the end of the message went out (a 421, a lost
    /// connection, a timeout: the message was not sent), and when connecting
    /// failed so. Never when the end went out. Without it, only a message
    /// on a session reused without a check ([`Pooled::unchecked`]) is sent
    /// again so.
    pub retry_not_sent: bool,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_size: 4,
            idle_timeout: Duration::from_secs(60),
            health_check: true,
            check_after: Duration::from_secs(5),
            max_messages: None,
            max_age: None,
            checkout_timeout: None,
            retry_not_sent: false,
        }
    }
}

impl PoolConfig {
    /// Sets [`PoolConfig::max_size`].
    #[must_use]
    pub fn max_size(mut self, n: usize) -> Self {
        self.max_size = n;
        self
    }

    /// Sets [`PoolConfig::idle_timeout`].
    #[must_use]
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = d;
        self
    }

    /// Sets [`PoolConfig::health_check`].
    #[must_use]
    pub fn health_check(mut self, on: bool) -> Self {
        self.health_check = on;
        self
    }

    /// Sets [`PoolConfig::check_after`].
    #[must_use]
    pub fn check_after(mut self, d: Duration) -> Self {
        self.check_after = d;
        self
    }

    /// Sets [`PoolConfig::max_messages`].
    #[must_use]
    pub fn max_messages(mut self, n: u64) -> Self {
        self.max_messages = Some(n);
        self
    }

    /// Sets [`PoolConfig::max_age`].
    #[must_use]
    pub fn max_age(mut self, d: Duration) -> Self {
        self.max_age = Some(d);
        self
    }

    /// Sets [`PoolConfig::checkout_timeout`].
    #[must_use]
    pub fn checkout_timeout(mut self, d: Duration) -> Self {
        self.checkout_timeout = Some(d);
        self
    }

    /// Sets [`PoolConfig::retry_not_sent`].
    #[must_use]
    pub fn retry_not_sent(mut self, on: bool) -> Self {
        self.retry_not_sent = on;
        self
    }

    /// Whether a session made at `created`, idle since `since`, may be
    /// handed out again.
    fn reusable<S: Session>(&self, session: &S, created: Instant, since: Instant) -> bool {
        session.is_usable()
            && since.elapsed() <= self.idle_timeout
            && self.max_age.is_none_or(|age| created.elapsed() <= age)
            && self.max_messages.is_none_or(|n| session.transactions() < n)
    }
}

type ConnectFn<S, E> = dyn Fn() -> Pin<Box<dyn Future<Output = Result<S, E>> + Send>> + Send + Sync;

/// An idle session: made at `created`, idle since `since`.
struct Idle<S> {
    session: S,
    created: Instant,
    since: Instant,
}

type IdleList<S> = Mutex<VecDeque<Idle<S>>>;

/// A pool of sessions made by a connect function (which also does STARTTLS and
/// login as needed).
pub struct Pool<S: Session, E> {
    config: PoolConfig,
    connect: Arc<ConnectFn<S, E>>,
    idle: Arc<IdleList<S>>,
    permits: Arc<Semaphore>,
    closed: Arc<AtomicBool>,
}

impl<S: Session, E> Clone for Pool<S, E> {
    fn clone(&self) -> Self {
        Pool {
            config: self.config.clone(),
            connect: self.connect.clone(),
            idle: self.idle.clone(),
            permits: self.permits.clone(),
            closed: self.closed.clone(),
        }
    }
}

impl<S: Session, E> std::fmt::Debug for Pool<S, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("config", &self.config)
            .field("closed", &self.closed.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}

fn lock<S>(idle: &IdleList<S>) -> MutexGuard<'_, VecDeque<Idle<S>>> {
    // A panic elsewhere must not make the pool unusable.
    idle.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<S: Session, E: From<PoolError>> Pool<S, E> {
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
            closed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// Idle sessions right now.
    #[must_use]
    pub fn idle_count(&self) -> usize {
        lock(&self.idle).len()
    }

    /// Whether [`Pool::close`] was called.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// A healthy session: an idle one that may be reused and passes its check
    /// (idle for [`PoolConfig::check_after`] or more) or its probe, or a new
    /// one. Waits while `max_size` sessions are in use, at most
    /// [`PoolConfig::checkout_timeout`]. Idle sessions past a limit are closed
    /// with QUIT on the way; dead ones are dropped.
    ///
    /// # Errors
    ///
    /// [`PoolError::Closed`] after [`Pool::close`],
    /// [`PoolError::CheckoutTimeout`], or the connect function's error.
    pub async fn get(&self) -> Result<Pooled<S>, E> {
        let permit = self.permit().await?;
        loop {
            let candidate = lock(&self.idle).pop_front();
            let Some(idle) = candidate else {
                break;
            };
            if !self
                .config
                .reusable(&idle.session, idle.created, idle.since)
            {
                idle.session.close().await;
                continue;
            }
            let mut session = idle.session;
            let check = self.config.health_check && idle.since.elapsed() >= self.config.check_after;
            let alive = if check {
                session.check().await
            } else {
                session.probe()
            };
            if !alive {
                continue;
            }
            let mut pooled = self.wrap(session, idle.created, permit);
            pooled.unchecked = !check;
            return Ok(pooled);
        }
        self.fresh(permit).await
    }

    /// A permit to hold a session, within the checkout timeout.
    async fn permit(&self) -> Result<SemaphoreGuardArc, E> {
        if self.is_closed() {
            return Err(PoolError::Closed.into());
        }
        let permit = match self.config.checkout_timeout {
            None => self.permits.acquire_arc().await,
            Some(t) => S::before(Instant::now() + t, self.permits.acquire_arc())
                .await
                .ok_or(PoolError::CheckoutTimeout)?,
        };
        if self.is_closed() {
            return Err(PoolError::Closed.into());
        }
        Ok(permit)
    }

    /// A new connection under `permit`.
    async fn fresh(&self, permit: SemaphoreGuardArc) -> Result<Pooled<S>, E> {
        let session = (self.connect)().await?;
        Ok(self.wrap(session, Instant::now(), permit))
    }

    /// Replaces the session `pooled` holds with a new connection (the old one
    /// is dropped without QUIT: it is broken or unwanted), keeping its permit.
    ///
    /// # Errors
    ///
    /// The connect function's error; `pooled` then holds no session and is
    /// only good for dropping.
    pub async fn reconnect(&self, pooled: &mut Pooled<S>) -> Result<(), E> {
        pooled.session = None;
        let session = (self.connect)().await?;
        pooled.session = Some(session);
        pooled.created = Instant::now();
        pooled.unchecked = false;
        Ok(())
    }

    /// Refuses new checkouts and closes the idle sessions with QUIT. Sessions
    /// in use are closed (without QUIT) when their [`Pooled`] is dropped.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        loop {
            let next = lock(&self.idle).pop_front();
            match next {
                Some(idle) => idle.session.close().await,
                None => break,
            }
        }
    }

    fn wrap(&self, session: S, created: Instant, permit: SemaphoreGuardArc) -> Pooled<S> {
        Pooled {
            session: Some(session),
            created,
            unchecked: false,
            idle: self.idle.clone(),
            closed: self.closed.clone(),
            _permit: permit,
        }
    }
}

/// A session borrowed from a [`Pool`]. Dropped, it goes back to the pool
/// while it is usable and the pool is open.
pub struct Pooled<S: Session> {
    session: Option<S>,
    created: Instant,
    /// Handed out again without a health check (only probed).
    unchecked: bool,
    idle: Arc<IdleList<S>>,
    closed: Arc<AtomicBool>,
    _permit: SemaphoreGuardArc,
}

impl<S: Session> Pooled<S> {
    /// Keeps the session out of the pool (it is dropped, closing the socket).
    pub fn discard(mut self) {
        self.session = None;
    }

    /// When the session was connected.
    #[must_use]
    pub fn created(&self) -> Instant {
        self.created
    }

    /// Whether the session was reused without a health check (it sat idle
    /// for less than [`PoolConfig::check_after`], or checks are off): it may
    /// have died since the last answer, which a send finds out before the end
    /// of its message goes out (see [`retryable`]).
    #[must_use]
    pub fn unchecked(&self) -> bool {
        self.unchecked
    }
}

impl<S: Session + std::fmt::Debug> std::fmt::Debug for Pooled<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pooled")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl<S: Session> Deref for Pooled<S> {
    type Target = S;
    fn deref(&self) -> &S {
        // Present from construction until drop or discard (which consume
        // self); `Pool::reconnect` refills it before returning Ok, and a
        // failed reconnect is documented to leave the guard only for dropping.
        #[allow(clippy::expect_used)]
        self.session
            .as_ref()
            .expect("pooled session present until dropped")
    }
}

impl<S: Session> DerefMut for Pooled<S> {
    fn deref_mut(&mut self) -> &mut S {
        // As in `deref`.
        #[allow(clippy::expect_used)]
        self.session
            .as_mut()
            .expect("pooled session present until dropped")
    }
}

impl<S: Session> Drop for Pooled<S> {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            // A cancelled call, or a session that ended (a transaction whose
            // delivery is unknown ends it), is never handed out again.
            if session.is_usable() && !self.closed.load(Ordering::SeqCst) {
                lock(&self.idle).push_back(Idle {
                    session,
                    created: self.created,
                    since: Instant::now(),
                });
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

    fn probe(&mut self) -> bool {
        crate::SmtpClient::probe(self)
    }

    async fn close(self) {
        // The session is given up either way.
        let _ = self.quit().await;
    }

    fn transactions(&self) -> u64 {
        let session: &smtp_adapter::Session = self;
        session.transactions()
    }

    fn before<F: Future + Send>(
        deadline: Instant,
        future: F,
    ) -> impl Future<Output = Option<F::Output>> + Send {
        crate::runtime::before::<R, F>(deadline, future)
    }
}

/// Whether a failed send may go again on a fresh connection: the session
/// ended before the end of the message went out (nothing of it can have been
/// delivered), as a 421, a lost connection or a timeout end it.
#[must_use]
pub fn retryable(e: &smtp_adapter::Error) -> bool {
    use smtp_adapter::Error as A;
    use smtp_sansio::Error as C;
    e.delivery() == smtp_sansio::Delivery::NotSent
        && matches!(
            e.inner(),
            A::Io(_)
                | A::Tls(_)
                | A::Smtp(C::Disconnected | C::Timeout(_) | C::ServiceClosing { .. })
        )
}

impl<R: crate::Runtime> Pool<crate::SmtpClient<R>, smtp_adapter::Error> {
    /// Sends `message` to `envelope` on a pooled session (see
    /// [`SmtpClient::send`](crate::SmtpClient::send)). A send whose session
    /// ended before the end of the message went out ([`retryable`]) goes once
    /// more on a fresh connection when the session was reused without a
    /// check ([`Pooled::unchecked`]: the server may have closed it while it
    /// sat idle), and with [`PoolConfig::retry_not_sent`] in any case (as
    /// does a checkout whose connection failed so); one whose end went out
    /// is never sent again.
    ///
    /// # Errors
    ///
    /// The send's error (the second attempt's, after a retry), or the pool's.
    pub async fn send(
        &self,
        envelope: &smtp_sansio::Envelope,
        message: &[u8],
    ) -> Result<smtp_sansio::TransactionResult, smtp_adapter::Error> {
        let retry = self.config.retry_not_sent;
        // One retry in all: for a connection that failed before the message,
        // or for a send whose session ended before its end went out.
        let (mut pooled, retried) = match self.get().await {
            Ok(p) => (p, false),
            Err(e) if retry && retryable(&e) => (self.get().await?, true),
            Err(e) => return Err(e),
        };
        let retry = retry || pooled.unchecked();
        match pooled.send(envelope, message).await {
            Err(e) if retry && !retried && retryable(&e) => {
                self.reconnect(&mut pooled).await?;
                pooled.send(envelope, message).await
            }
            result => result,
        }
    }
}
