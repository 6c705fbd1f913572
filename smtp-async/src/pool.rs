//! A bounded pool of sessions to one server, shared by many tasks, for any async
//! runtime. [`SmtpClient`](crate::SmtpClient) implements [`Session`] for every
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
//!
//! What one borrower did does not reach the next: a session handed back in
//! the middle of a mail transaction (low-level `mail` and `rcpt`) is reset
//! (RSET) before it is handed out again, or closed if that fails; a
//! transcript writer or debug level a borrower set is put back as the
//! session was connected ([`Session::restorer`]).
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
//! ([`smtp_sansio::Delivery::Unknown`]). Its checkouts, the retry's included,
//! share one `checkout_timeout`.

use std::collections::VecDeque;
use std::future::Future;
use std::io::Write;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use smtp_adapter::message::Rendered;

use crate::runtime::Task;

/// What a session needs to undo when a borrower hands it back
/// ([`Session::restorer`]).
pub type Restore<S> = Arc<dyn Fn(&mut S) + Send + Sync>;

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
    /// Ends the session (QUIT), waiting for the reply at most a short linger.
    fn close(self) -> impl Future<Output = ()> + Send;
    /// How many mail transactions (and low-level DATA) it has started, for
    /// [`PoolConfig::max_messages`].
    fn transactions(&self) -> u64;
    /// Whether a mail transaction may be open on the server (a borrower's
    /// low-level MAIL without its end): the pool then calls
    /// [`Session::reset`] before handing the session out again. The
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
    /// Longest a checkout takes: [`Pool::get`]'s wait for a free session
    /// (all `max_size` in use), the checks of idle sessions (NOOP, RSET) and
    /// connecting a new one, together; then it fails with
    /// [`PoolError::CheckoutTimeout`]. [`Pool::send`] has one such deadline
    /// for the whole call: a retry checks out within what is left of it.
    /// Default [`PoolConfig::DEFAULT_CHECKOUT_TIMEOUT`] (30 s). `None`
    /// waits as long as it takes (the connect function's own timeouts
    /// still apply); a duration too large for the clock counts as `None`.
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
            checkout_timeout: Some(Self::DEFAULT_CHECKOUT_TIMEOUT),
            retry_not_sent: false,
        }
    }
}

impl PoolConfig {
    /// The default [`PoolConfig::checkout_timeout`]: 30 seconds, as long as
    /// RFC 5321 section 4.5.3.2 lets a client wait for a greeting or a reply
    /// to a command is too long for a caller waiting for a connection, and a
    /// fresh connection's greeting and EHLO take well under it.
    pub const DEFAULT_CHECKOUT_TIMEOUT: Duration = Duration::from_secs(30);

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

    /// The deadline of a checkout starting now (`None`: none, or one past
    /// what the clock can hold).
    fn checkout_deadline(&self) -> Option<Instant> {
        self.checkout_timeout
            .and_then(|t| Instant::now().checked_add(t))
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

/// A task waiting for a permit, in the order of arrival.
struct Waiter {
    id: u64,
    waker: Waker,
    /// A permit was handed to it; it takes it at its next poll.
    granted: bool,
}

/// What every clone of a pool and every borrowed session share.
struct State<S> {
    idle: VecDeque<Idle<S>>,
    closed: bool,
    /// Permits no one holds or was granted.
    free: usize,
    /// Tasks waiting for a permit, first come first served.
    waiters: VecDeque<Waiter>,
    next_waiter: u64,
}

impl<S> State<S> {
    /// Gives a permit back: to the first task still waiting (woken by the
    /// caller, outside the lock), else to the free count.
    #[must_use]
    fn release(&mut self) -> Option<Waker> {
        match self.waiters.iter_mut().find(|w| !w.granted) {
            Some(w) => {
                w.granted = true;
                Some(w.waker.clone())
            }
            None => {
                self.free += 1;
                None
            }
        }
    }
}

type Shared<S> = Arc<Mutex<State<S>>>;

fn lock<S>(state: &Mutex<State<S>>) -> MutexGuard<'_, State<S>> {
    // A panic elsewhere must not make the pool unusable.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The right to hold one session; dropped, it goes to the first waiter.
struct Permit<S> {
    state: Shared<S>,
}

impl<S> Drop for Permit<S> {
    fn drop(&mut self) {
        let next = lock(&self.state).release();
        if let Some(waker) = next {
            waker.wake();
        }
    }
}

/// Waiting for a [`Permit`] in a first come, first served queue. Dropped
/// while queued it leaves the queue; dropped after a permit was handed to
/// it, it passes the permit on.
struct Acquire<S> {
    state: Shared<S>,
    /// Its place in the queue once it waits.
    id: Option<u64>,
}

impl<S> Future for Acquire<S> {
    type Output = Result<Permit<S>, PoolError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut wake = None;
        let outcome = {
            let mut st = lock(&this.state);
            match this.id {
                None if st.closed => Some(Err(PoolError::Closed)),
                None if st.free > 0 => {
                    st.free -= 1;
                    Some(Ok(()))
                }
                None => {
                    let id = st.next_waiter;
                    st.next_waiter += 1;
                    st.waiters.push_back(Waiter {
                        id,
                        waker: cx.waker().clone(),
                        granted: false,
                    });
                    this.id = Some(id);
                    None
                }
                Some(id) => {
                    let closed = st.closed;
                    let at = st.waiters.iter().position(|w| w.id == id);
                    match at.and_then(|i| st.waiters.get_mut(i).map(|w| (i, w))) {
                        Some((_, w)) if !w.granted && !closed => {
                            if !w.waker.will_wake(cx.waker()) {
                                w.waker = cx.waker().clone();
                            }
                            None
                        }
                        Some((i, _)) => {
                            let granted = st.waiters.remove(i).is_some_and(|w| w.granted);
                            this.id = None;
                            match (granted, st.closed) {
                                (true, false) => Some(Ok(())),
                                (true, true) => {
                                    wake = st.release();
                                    Some(Err(PoolError::Closed))
                                }
                                (false, _) => Some(Err(PoolError::Closed)),
                            }
                        }
                        // Only this future removes its entry.
                        None => {
                            this.id = None;
                            Some(Err(PoolError::Closed))
                        }
                    }
                }
            }
        };
        if let Some(waker) = wake {
            waker.wake();
        }
        match outcome {
            None => Poll::Pending,
            Some(Ok(())) => Poll::Ready(Ok(Permit {
                state: this.state.clone(),
            })),
            Some(Err(e)) => Poll::Ready(Err(e)),
        }
    }
}

impl<S> Drop for Acquire<S> {
    fn drop(&mut self) {
        let Some(id) = self.id else {
            return;
        };
        let next = {
            let mut st = lock(&self.state);
            let at = st.waiters.iter().position(|w| w.id == id);
            match at.and_then(|i| st.waiters.remove(i)) {
                Some(w) if w.granted => st.release(),
                _ => None,
            }
        };
        if let Some(waker) = next {
            waker.wake();
        }
    }
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
async fn close_detached<S: Session>(sessions: Vec<S>) {
    let inline: Vec<Task> = sessions
        .into_iter()
        .filter_map(|s| S::spawn(Box::pin(s.close())).err())
        .collect();
    join_all(inline).await;
}

/// `future`'s output, or `None` once `deadline` (if any) has passed.
async fn within<S: Session, F: Future + Send>(
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
pub struct Pool<S: Session, E> {
    config: PoolConfig,
    connect: Arc<ConnectFn<S, E>>,
    state: Shared<S>,
}

impl<S: Session, E> Clone for Pool<S, E> {
    fn clone(&self) -> Self {
        Pool {
            config: self.config.clone(),
            connect: self.connect.clone(),
            state: self.state.clone(),
        }
    }
}

impl<S: Session, E> std::fmt::Debug for Pool<S, E> {
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

impl<S: Session, E: From<PoolError>> Pool<S, E> {
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
        self.checkout(self.config.checkout_deadline()).await
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
            if deadline.is_some_and(|d| Instant::now() >= d) {
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
            if !self.config.reusable(&session, created, since) {
                if session.is_usable() {
                    expired.push(session);
                }
                continue;
            }
            let (alive, checked) = if session.in_transaction() {
                let reset = within::<S, _>(deadline, Box::pin(session.reset())).await;
                (reset == Some(true), true)
            } else if self.config.health_check && since.elapsed() >= self.config.check_after {
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
                    created: Instant::now(),
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
        self.reconnect_by(pooled, self.config.checkout_deadline())
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
        pooled.created = Instant::now();
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
/// it put back ([`Session::restorer`]); after [`Pool::close`] it is closed
/// with QUIT in the background.
pub struct Pooled<S: Session> {
    session: Option<S>,
    created: Instant,
    /// Handed out again without a health check (only probed).
    unchecked: bool,
    restore: Restore<S>,
    state: Shared<S>,
    _permit: Permit<S>,
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
                    since: Instant::now(),
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

/// A transcript writer shared by a session's borrowers in turn: the one the
/// session was connected with, put back when a borrower returns it.
#[derive(Clone)]
struct SharedWriter(Arc<Mutex<Box<dyn Write + Send>>>);

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flush()
    }
}

impl<R: crate::Runtime> Session for crate::SmtpClient<R> {
    fn is_usable(&self) -> bool {
        crate::SmtpClient::is_usable(self)
    }

    async fn check(&mut self) -> bool {
        // The core reads the answer: it ends the session on 221 or 421 or a
        // lost connection, so a session that answered and is still usable
        // is alive (a server refusing NOOP has still answered).
        self.noop().await.is_ok() && crate::SmtpClient::is_usable(self)
    }

    fn probe(&mut self) -> bool {
        crate::SmtpClient::probe(self)
    }

    async fn close(self) {
        // The session is given up either way; past the linger, dropping the
        // call closes the socket.
        let linger = self.quit_deadline();
        let _ = crate::runtime::before::<R, _>(linger, self.quit()).await;
    }

    fn transactions(&self) -> u64 {
        crate::SmtpClient::transactions(self)
    }

    fn in_transaction(&self) -> bool {
        crate::SmtpClient::in_transaction(self)
    }

    async fn reset(&mut self) -> bool {
        // The core closes its transaction state on a positive reply to RSET
        // (`Client::in_transaction`): whether the reset took is read there.
        let _ = self.rset().await;
        self.is_usable() && !Session::in_transaction(self)
    }

    fn restorer(&mut self) -> Restore<Self> {
        let level = self.debug_level();
        let writer = self.take_transcript().map(|w| {
            let shared = SharedWriter(Arc::new(Mutex::new(w)));
            self.set_transcript(Box::new(shared.clone()));
            shared
        });
        Arc::new(move |c: &mut Self| {
            c.set_debuglevel(level);
            drop(c.take_transcript());
            if let Some(w) = &writer {
                c.set_transcript(Box::new(w.clone()));
            }
        })
    }

    fn before<F: Future + Send>(
        deadline: Instant,
        future: F,
    ) -> impl Future<Output = Option<F::Output>> + Send {
        crate::runtime::before::<R, F>(deadline, future)
    }

    fn spawn(task: Task) -> Result<(), Task> {
        R::spawn(task)
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
    /// `message` is any [`Message`](smtp_adapter::Message), as for
    /// [`SmtpClient::send`](crate::SmtpClient::send): bytes, a
    /// `mail_builder::MessageBuilder` (feature `mail-builder`) or a signed
    /// message (feature `dkim`). It is rendered once, before the checkout,
    /// and a retry sends the same bytes.
    ///
    /// One [`PoolConfig::checkout_timeout`] covers the whole call: the
    /// checkout, and a retry's checkout within what the first checkout and
    /// send left of it (none once it has passed: the first error is then
    /// the call's). The send itself is bounded by the session's own
    /// timeouts, not cut by this deadline, which would leave a message's
    /// fate unknown.
    ///
    /// # Errors
    ///
    /// The send's error (the second attempt's, after a retry), or the pool's.
    pub async fn send<'m>(
        &self,
        envelope: &smtp_sansio::Envelope,
        message: impl Into<smtp_adapter::Message<'m>>,
    ) -> Result<smtp_sansio::TransactionResult, smtp_adapter::Error> {
        let message = message.into().render()?;
        self.send_rendered(envelope, &message).await
    }

    /// smtplib's `sendmail(from, to, message)` on a pooled session:
    /// [`send`](Self::send) to an envelope without parameters.
    ///
    /// # Errors
    ///
    /// An address that does not parse, and those of [`send`](Self::send).
    pub async fn sendmail<'m, T: AsRef<str>>(
        &self,
        from: &str,
        to: &[T],
        message: impl Into<smtp_adapter::Message<'m>>,
    ) -> Result<smtp_sansio::TransactionResult, smtp_adapter::Error> {
        let envelope = smtp_sansio::Envelope::parse(from, to)?;
        self.send(&envelope, message).await
    }

    /// [`send`](Self::send) of a message in memory, which each attempt
    /// borrows.
    async fn send_rendered(
        &self,
        envelope: &smtp_sansio::Envelope,
        message: &Rendered<'_>,
    ) -> Result<smtp_sansio::TransactionResult, smtp_adapter::Error> {
        // The message for one attempt, without a copy of its bytes.
        let attempt = || {
            let borrowed = Rendered::new(message.prefix().to_vec(), message.bytes().into());
            smtp_adapter::Message::from(borrowed)
        };
        let deadline = self.config.checkout_deadline();
        let in_time = || deadline.is_none_or(|d| Instant::now() < d);
        let retry = self.config.retry_not_sent;
        // One retry in all: for a connection that failed before the message,
        // or for a send whose session ended before its end went out.
        let (mut pooled, retried) = match self.checkout(deadline).await {
            Ok(p) => (p, false),
            Err(e) if retry && retryable(&e) && in_time() => (self.checkout(deadline).await?, true),
            Err(e) => return Err(e),
        };
        let retry = retry || pooled.unchecked();
        match pooled.send(envelope, attempt()).await {
            Err(e) if retry && !retried && retryable(&e) && in_time() => {
                self.reconnect_by(&mut pooled, deadline).await?;
                pooled.send(envelope, attempt()).await
            }
            result => result,
        }
    }
}
