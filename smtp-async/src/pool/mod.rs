//! A bounded pool of sessions to one server, shared by many tasks, for any async
//! runtime. [`SmtpClient`](crate::SmtpClient) implements [`Poolable`] for every
//! runtime.
//!
//! Limits ([`PoolConfig`]): at most `max_size` sessions open; a session is
//! handed out again only while it is usable, younger than `max_age`, idle for
//! less than `idle_timeout` and under `max_messages` transactions; otherwise
//! it is closed with QUIT when the next caller asks for one, in the
//! background (the caller does not wait for its reply), and a fresh
//! connection takes its place. A checkout ([`Pool::get`]: the wait for a free
//! session, the checks before reuse, connecting) ends within
//! `checkout_timeout` (30 s by default); tasks waiting for a free session are
//! served first come, first served. A session whose call was cancelled, or
//! whose transaction ended with its delivery unknown (the session is over
//! then), is never handed out again. [`Pool::close`] QUITs the idle sessions
//! and refuses new checkouts; a session handed back after it is QUIT too.
//! A borrower that returns early (`?`) only hands its session back: the pool
//! QUITs its sessions, so the scoped
//! [`SmtpClient::session`](crate::SmtpClient::session), which ends a session
//! with QUIT whatever its closure returned, is for sessions outside a pool.
//!
//! What one borrower did does not reach the next: a session handed back in
//! the middle of a mail transaction (low-level `mail` and `rcpt`) is reset
//! (RSET) before it is handed out again, or closed if that fails; a
//! transcript writer or debug level a borrower set is put back as the
//! session was connected ([`Poolable::restorer`]).
//!
//! Checks before reuse: a session that sat idle for `check_after` or more
//! must pass [`Poolable::check`] (a NOOP, one round trip; a 221 or 421 answer
//! ends the session in the core). One idle for less costs no round trip:
//! [`Poolable::probe`] only reads what the server already sent, so that a
//! connection the server closed meanwhile (its end of stream, a 421) is
//! found dead and replaced before a message starts on it.
//!
//! [`Pool::send`] checks a session out and sends; when the session ended (a
//! 421, a lost connection, a timeout) before the end of the message went out,
//! so that nothing of it can have been delivered, it sends once more on a
//! fresh connection: always when the session was reused without a check, and
//! otherwise with [`PoolConfig::retry_not_sent`]. Never after the end went
//! out, where a second copy could be delivered
//! ([`smtp_sansio::Delivery::Unknown`]). Its checkouts, the retry's included,
//! share one `checkout_timeout`.

use std::collections::VecDeque;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Instant;

use crate::runtime::Task;

mod client;
mod config;
mod queue;

pub use client::retryable;
pub use config::PoolConfig;
use queue::{Acquire, Permit, Shared, State, lock};

/// What a session needs to undo when a borrower hands it back
/// ([`Poolable::restorer`]).
pub type Restore<S> = Arc<dyn Fn(&mut S) + Send + Sync>;

/// What the pool needs of a session.
pub trait Poolable: Send + Sized + 'static {
    /// Whether it can take another command (not closed, not broken).
    fn is_usable(&self) -> bool;
    /// A health check (NOOP); `false` means the session is dead.
    fn check(&mut self) -> impl Future<Output = bool> + Send;
    /// Whether the session still looks alive from what the server already
    /// sent, read without waiting (no round trip): `false` once the server
    /// closed it (the end of the stream, a 421). The default trusts
    /// [`Poolable::is_usable`].
    fn probe(&mut self) -> bool {
        self.is_usable()
    }
    /// Ends the session (QUIT), waiting for the reply at most a short linger.
    fn close(self) -> impl Future<Output = ()> + Send;
    /// How many mail transactions (and low-level DATA) it has started, for
    /// [`PoolConfig::max_messages`].
    fn transactions(&self) -> u64;
    /// Whether a mail transaction may be open on the server (a borrower's
    /// low-level MAIL without its end): the pool then calls
    /// [`Poolable::reset`] before handing the session out again. The
    /// default says no.
    fn in_transaction(&self) -> bool {
        false
    }
    /// Ends an open mail transaction (RSET); `true` when the session is
    /// usable and out of the transaction. A session that fails it is
    /// closed, not handed out. The default fails.
    fn reset(&mut self) -> impl Future<Output = bool> + Send {
        async { false }
    }
    /// Called once on a fresh session, before its first borrower: keeps
    /// what a borrower may change and the next one must not inherit (for
    /// [`SmtpClient`](crate::SmtpClient): the debug level and transcript
    /// writer it was connected with), and returns how to put it back, which
    /// the pool calls each time the session is handed back. The default
    /// keeps nothing.
    fn restorer(&mut self) -> Restore<Self> {
        Arc::new(|_| {})
    }
    /// `future`'s output, or `None` once `deadline` has passed (the runtime's
    /// timer), for [`PoolConfig::checkout_timeout`].
    fn before<F: Future + Send>(
        deadline: Instant,
        future: F,
    ) -> impl Future<Output = Option<F::Output>> + Send;
    /// Runs `task` in the background ([`Runtime::spawn`](crate::Runtime::spawn)),
    /// or gives it back when that cannot be done here. The pool closes
    /// sessions so without making a caller wait for their QUIT. The default
    /// gives it back: the pool then closes concurrently and waits.
    fn spawn(task: Task) -> Result<(), Task> {
        Err(task)
    }
    /// The time now on the runtime's clock ([`Runtime::now`](crate::Runtime::now)):
    /// every age, idle time and checkout deadline of the pool is read from
    /// it, so that a test clock (Tokio's paused one) drives them. The
    /// default is [`Instant::now`].
    fn now() -> Instant {
        Instant::now()
    }
}

/// Why the pool itself could not hand out a session; the pool's error type
/// converts from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// No session could be had within [`PoolConfig::checkout_timeout`].
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

type ConnectFn<S, E> = dyn Fn() -> Pin<Box<dyn Future<Output = Result<S, E>> + Send>> + Send + Sync;

/// An idle session: made at `created`, idle since `since`.
struct Idle<S> {
    session: S,
    created: Instant,
    since: Instant,
    restore: Restore<S>,
}

/// Polls every task to its end, concurrently.
async fn join_all(mut tasks: Vec<Task>) {
    std::future::poll_fn(|cx| {
        tasks.retain_mut(|t| t.as_mut().poll(cx).is_pending());
        if tasks.is_empty() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}

/// Closes `sessions` (QUIT) in the background; those the runtime cannot
/// take here are closed concurrently, and this waits for them (each within
/// its QUIT linger).
async fn close_detached<S: Poolable>(sessions: Vec<S>) {
    let inline: Vec<Task> = sessions
        .into_iter()
        .filter_map(|s| S::spawn(Box::pin(s.close())).err())
        .collect();
    join_all(inline).await;
}

/// `future`'s output, or `None` once `deadline` (if any) has passed.
async fn within<S: Poolable, F: Future + Send>(
    deadline: Option<Instant>,
    future: F,
) -> Option<F::Output> {
    match deadline {
        None => Some(future.await),
        Some(d) => S::before(d, future).await,
    }
}

/// A pool of sessions made by a connect function (which also does STARTTLS and
/// login as needed).
pub struct Pool<S: Poolable, E> {
    config: PoolConfig,
    connect: Arc<ConnectFn<S, E>>,
    state: Shared<S>,
}

impl<S: Poolable, E> Clone for Pool<S, E> {
    fn clone(&self) -> Self {
        Pool {
            config: self.config.clone(),
            connect: self.connect.clone(),
            state: self.state.clone(),
        }
    }
}

impl<S: Poolable, E> std::fmt::Debug for Pool<S, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (closed, idle, waiting) = {
            let st = lock(&self.state);
            (st.closed, st.idle.len(), st.waiters.len())
        };
        f.debug_struct("Pool")
            .field("config", &self.config)
            .field("closed", &closed)
            .field("idle", &idle)
            .field("waiting", &waiting)
            .finish_non_exhaustive()
    }
}

impl<S: Poolable, E: From<PoolError>> Pool<S, E> {
    /// A pool whose sessions come from `connect`.
    pub fn new<F, Fut>(config: PoolConfig, connect: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<S, E>> + Send + 'static,
    {
        let state = State {
            idle: VecDeque::new(),
            closed: false,
            free: config.max_size.max(1),
            waiters: VecDeque::new(),
            next_waiter: 0,
        };
        Pool {
            config,
            connect: Arc::new(move || Box::pin(connect())),
            state: Arc::new(Mutex::new(state)),
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
        lock(&self.state).idle.len()
    }

    /// Tasks waiting for a free session right now (they are served in the
    /// order they came).
    #[must_use]
    pub fn waiting(&self) -> usize {
        lock(&self.state).waiters.len()
    }

    /// Whether [`Pool::close`] was called.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }

    /// A healthy session: an idle one that may be reused and passes its reset
    /// (RSET, when a borrower left a transaction open), its check (idle for
    /// [`PoolConfig::check_after`] or more) or its probe, or a new one.
    /// Waits while `max_size` sessions are in use, behind the tasks that came
    /// first. The whole checkout ends within [`PoolConfig::checkout_timeout`].
    /// Idle sessions past a limit are closed with QUIT in the background on
    /// the way; dead ones are dropped.
    ///
    /// # Errors
    ///
    /// [`PoolError::Closed`] after [`Pool::close`],
    /// [`PoolError::CheckoutTimeout`], or the connect function's error.
    pub async fn get(&self) -> Result<Pooled<S>, E> {
        self.checkout(self.config.checkout_deadline(S::now())).await
    }

    /// [`Pool::get`] by `deadline`.
    async fn checkout(&self, deadline: Option<Instant>) -> Result<Pooled<S>, E> {
        let permit = match within::<S, _>(deadline, self.acquire()).await {
            Some(Ok(permit)) => permit,
            Some(Err(e)) => return Err(e.into()),
            None => return Err(PoolError::CheckoutTimeout.into()),
        };
        let mut expired = Vec::new();
        let found = loop {
            if deadline.is_some_and(|d| S::now() >= d) {
                // The idle sessions left stay for the next caller; a check
                // now would be cut short at once and cost each its session.
                close_detached(expired).await;
                return Err(PoolError::CheckoutTimeout.into());
            }
            let next = lock(&self.state).idle.pop_front();
            let Some(idle) = next else {
                break None;
            };
            let Idle {
                mut session,
                created,
                since,
                restore,
            } = idle;
            let now = S::now();
            if !self.config.reusable(&session, created, since, now) {
                if session.is_usable() {
                    expired.push(session);
                }
                continue;
            }
            let (alive, checked) = if session.in_transaction() {
                let reset = within::<S, _>(deadline, Box::pin(session.reset())).await;
                (reset == Some(true), true)
            } else if self.config.health_check
                && now.saturating_duration_since(since) >= self.config.check_after
            {
                let check = within::<S, _>(deadline, Box::pin(session.check())).await;
                (check == Some(true), true)
            } else {
                (session.probe(), false)
            };
            if alive {
                break Some((session, created, restore, !checked));
            }
            // Refused its RSET, say: still open, so QUIT. A check cut
            // short by the deadline left it unusable: dropped.
            if session.is_usable() {
                expired.push(session);
            }
        };
        close_detached(expired).await;
        match found {
            Some((session, created, restore, unchecked)) => Ok(Pooled {
                session: Some(session),
                created,
                unchecked,
                restore,
                state: self.state.clone(),
                _permit: permit,
            }),
            None => {
                let (session, restore) = self.connect_by(deadline).await?;
                Ok(Pooled {
                    session: Some(session),
                    created: S::now(),
                    unchecked: false,
                    restore,
                    state: self.state.clone(),
                    _permit: permit,
                })
            }
        }
    }

    /// A place in the queue for a permit.
    fn acquire(&self) -> Acquire<S> {
        Acquire {
            state: self.state.clone(),
            id: None,
        }
    }

    /// A new connection by `deadline`, and how to restore it.
    async fn connect_by(&self, deadline: Option<Instant>) -> Result<(S, Restore<S>), E> {
        let mut session = within::<S, _>(deadline, (self.connect)())
            .await
            .ok_or(PoolError::CheckoutTimeout)??;
        let restore = session.restorer();
        Ok((session, restore))
    }

    /// Replaces the session `pooled` holds with a new connection (the old one
    /// is dropped without QUIT: it is broken or unwanted), keeping its permit,
    /// within [`PoolConfig::checkout_timeout`].
    ///
    /// # Errors
    ///
    /// The connect function's error or [`PoolError::CheckoutTimeout`];
    /// `pooled` then holds no session and is only good for dropping.
    pub async fn reconnect(&self, pooled: &mut Pooled<S>) -> Result<(), E> {
        self.reconnect_by(pooled, self.config.checkout_deadline(S::now()))
            .await
    }

    async fn reconnect_by(
        &self,
        pooled: &mut Pooled<S>,
        deadline: Option<Instant>,
    ) -> Result<(), E> {
        pooled.session = None;
        let (session, restore) = self.connect_by(deadline).await?;
        pooled.session = Some(session);
        pooled.restore = restore;
        pooled.created = S::now();
        pooled.unchecked = false;
        Ok(())
    }

    /// Refuses new checkouts (tasks waiting for one fail with
    /// [`PoolError::Closed`]) and closes the idle sessions with QUIT,
    /// concurrently, each waiting for its reply at most the QUIT linger. A
    /// session in use is closed with QUIT in the background when its
    /// borrower hands it back (dropped without QUIT only where the runtime
    /// cannot run a task then: outside a runtime).
    pub async fn close(&self) {
        let (idle, wakers) = {
            let mut st = lock(&self.state);
            st.closed = true;
            let wakers: Vec<Waker> = st.waiters.iter().map(|w| w.waker.clone()).collect();
            (std::mem::take(&mut st.idle), wakers)
        };
        for waker in wakers {
            waker.wake();
        }
        let closing = idle
            .into_iter()
            .map(|i| Box::pin(i.session.close()) as Task)
            .collect();
        join_all(closing).await;
    }
}

/// A session borrowed from a [`Pool`]. Dropped, it goes back to the pool
/// while it is usable and the pool is open, with what this borrower set on
/// it put back ([`Poolable::restorer`]); after [`Pool::close`] it is closed
/// with QUIT in the background.
pub struct Pooled<S: Poolable> {
    session: Option<S>,
    created: Instant,
    /// Handed out again without a health check (only probed).
    unchecked: bool,
    restore: Restore<S>,
    state: Shared<S>,
    _permit: Permit<S>,
}

impl<S: Poolable> Pooled<S> {
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

impl<S: Poolable + std::fmt::Debug> std::fmt::Debug for Pooled<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pooled")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl<S: Poolable> Deref for Pooled<S> {
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

impl<S: Poolable> DerefMut for Pooled<S> {
    fn deref_mut(&mut self) -> &mut S {
        // As in `deref`.
        #[allow(clippy::expect_used)]
        self.session
            .as_mut()
            .expect("pooled session present until dropped")
    }
}

impl<S: Poolable> Drop for Pooled<S> {
    fn drop(&mut self) {
        let Some(mut session) = self.session.take() else {
            return;
        };
        // What this borrower set (a transcript writer, a debug level) reaches
        // neither the next borrower nor the QUIT below.
        (self.restore)(&mut session);
        // A cancelled call, or a session that ended (a transaction whose
        // delivery is unknown ends it), is never handed out again.
        if !session.is_usable() {
            return;
        }
        {
            // Checked and pushed under the lock `close` takes the idle
            // sessions under: a session comes back either before (and
            // `close` QUITs it) or after (and is QUIT here).
            let mut st = lock(&self.state);
            if !st.closed {
                st.idle.push_back(Idle {
                    session,
                    created: self.created,
                    since: S::now(),
                    restore: self.restore.clone(),
                });
                return;
            }
        }
        // Where no task can be started (outside a runtime), the session is
        // dropped: the socket closes without QUIT.
        drop(S::spawn(Box::pin(session.close())));
    }
}
