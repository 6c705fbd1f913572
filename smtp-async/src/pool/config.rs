//! Pool settings.

use std::time::{Duration, Instant};

use super::Poolable;

/// Pool settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PoolConfig {
    /// Most sessions open at once (in use or idle).
    pub max_size: usize,
    /// Idle sessions older than this are closed instead of reused.
    pub idle_timeout: Duration,
    /// Check a session that sat idle for [`PoolConfig::check_after`] or more
    /// ([`Poolable::check`], a NOOP) before handing it out.
    pub health_check: bool,
    /// How long a session may sit idle and still be handed out without a
    /// check (default 5 s; `Duration::ZERO` checks before every reuse). Such a
    /// session is only probed ([`Poolable::probe`]), and [`Pool::send`](super::Pool::send) sends
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
    /// Longest a checkout takes: [`Pool::get`](super::Pool::get)'s wait for a free session
    /// (all `max_size` in use), the checks of idle sessions (NOOP, RSET) and
    /// connecting a new one, together; then it fails with
    /// [`PoolError::CheckoutTimeout`](crate::PoolError::CheckoutTimeout). [`Pool::send`](super::Pool::send) has one such deadline
    /// for the whole call: a retry checks out within what is left of it.
    /// Default [`PoolConfig::DEFAULT_CHECKOUT_TIMEOUT`] (30 s). `None`
    /// waits as long as it takes (the connect function's own timeouts
    /// still apply); a duration too large for the clock counts as `None`.
    pub checkout_timeout: Option<Duration>,
    /// [`Pool::send`](super::Pool::send) sends once more, on a fresh connection, when the
    /// session ended before the end of the message went out (a 421, a lost
    /// connection, a timeout: the message was not sent), and when connecting
    /// failed so. Never when the end went out. Without it, only a message
    /// on a session reused without a check ([`Pooled::unchecked`](super::Pooled::unchecked)) is sent
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

smtp_adapter::setters! { PoolConfig;
    /// Sets [`PoolConfig::max_size`].
    max_size(n: usize) => max_size = n;
    /// Sets [`PoolConfig::idle_timeout`].
    idle_timeout(d: Duration) => idle_timeout = d;
    /// Sets [`PoolConfig::health_check`].
    health_check(on: bool) => health_check = on;
    /// Sets [`PoolConfig::check_after`].
    check_after(d: Duration) => check_after = d;
    /// Sets [`PoolConfig::max_messages`].
    max_messages(n: u64) => max_messages = Some(n);
    /// Sets [`PoolConfig::max_age`].
    max_age(d: Duration) => max_age = Some(d);
    /// Sets [`PoolConfig::checkout_timeout`].
    checkout_timeout(d: Duration) => checkout_timeout = Some(d);
    /// Sets [`PoolConfig::retry_not_sent`].
    retry_not_sent(on: bool) => retry_not_sent = on;
}

impl PoolConfig {
    /// The default [`PoolConfig::checkout_timeout`]: 30 seconds, as long as
    /// RFC 5321 section 4.5.3.2 lets a client wait for a greeting or a reply
    /// to a command is too long for a caller waiting for a connection, and a
    /// fresh connection's greeting and EHLO take well under it.
    pub const DEFAULT_CHECKOUT_TIMEOUT: Duration = Duration::from_secs(30);

    /// Whether a session made at `created`, idle since `since`, may be
    /// handed out again at `now`.
    pub(super) fn reusable<S: Poolable>(
        &self,
        session: &S,
        created: Instant,
        since: Instant,
        now: Instant,
    ) -> bool {
        session.is_usable()
            && now.saturating_duration_since(since) <= self.idle_timeout
            && self
                .max_age
                .is_none_or(|age| now.saturating_duration_since(created) <= age)
            && self.max_messages.is_none_or(|n| session.transactions() < n)
    }

    /// The deadline of a checkout starting at `now` (`None`: none, or one
    /// past what the clock can hold).
    pub(super) fn checkout_deadline(&self, now: Instant) -> Option<Instant> {
        self.checkout_timeout.and_then(|t| now.checked_add(t))
    }
}
