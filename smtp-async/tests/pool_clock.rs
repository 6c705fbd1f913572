//! The pool's rules on virtual time: sessions of a fake type (no sockets; its
//! NOOP, probe, RSET and QUIT are counters and switches) in a pool on a
//! paused Tokio clock, which moves only by `tokio::time::advance` or, when
//! every task waits on a timer, straight to the next deadline. So each limit
//! is checked at its exact edge (a session idle for exactly `idle_timeout` is
//! reused, one a millisecond older is not) and no case waits in real time.
//! The pool reads its clock through `Poolable::now` (for `SmtpClient`,
//! `Runtime::now`: Tokio's clock).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smtp_async::pool::{Pool, PoolConfig, PoolError, Pooled};
use smtp_async::{Error, Poolable, SmtpClient, Task, smtp_sansio};
use smtp_tokio::Tokio;
use tokio::time::advance;

/// What the fake sessions of one pool did.
#[derive(Default)]
struct Log {
    connects: AtomicUsize,
    checks: AtomicUsize,
    probes: AtomicUsize,
    resets: AtomicUsize,
    /// The sessions that began their QUIT, and those that finished it, in
    /// order.
    quit_started: Mutex<Vec<usize>>,
    quit_done: Mutex<Vec<usize>>,
}

impl Log {
    fn count(n: &AtomicUsize) -> usize {
        n.load(Ordering::SeqCst)
    }
    fn connects(&self) -> usize {
        Self::count(&self.connects)
    }
    fn checks(&self) -> usize {
        Self::count(&self.checks)
    }
    fn probes(&self) -> usize {
        Self::count(&self.probes)
    }
    fn resets(&self) -> usize {
        Self::count(&self.resets)
    }
    fn quit_started(&self) -> Vec<usize> {
        self.quit_started.lock().unwrap().clone()
    }
    fn quit_done(&self) -> Vec<usize> {
        self.quit_done.lock().unwrap().clone()
    }
}

/// How the fake sessions behave; set before or during a case.
#[derive(Default)]
struct Behaviour {
    /// The server side of session `i` closed (a probe or a check finds it
    /// dead).
    gone: Mutex<Vec<usize>>,
    /// How long a NOOP takes (virtual).
    check_takes: Mutex<Duration>,
    /// How long a QUIT takes (virtual).
    quit_takes: Mutex<Duration>,
    /// RSET is refused.
    refuse_reset: AtomicBool,
    /// How long connecting takes (virtual).
    connect_takes: Mutex<Duration>,
}

/// A pooled session without a socket.
#[derive(Debug)]
struct Fake {
    id: usize,
    /// A call on it was cancelled: unusable.
    broken: bool,
    sent: u64,
    in_transaction: bool,
    log: Arc<Log>,
    behaviour: Arc<Behaviour>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Log")
    }
}

impl std::fmt::Debug for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Behaviour")
    }
}

impl Fake {
    fn alive(&self) -> bool {
        !self.behaviour.gone.lock().unwrap().contains(&self.id)
    }
    /// A mail transaction, whole.
    fn send(&mut self) {
        self.sent += 1;
    }
    /// A low-level MAIL left open.
    fn begin(&mut self) {
        self.sent += 1;
        self.in_transaction = true;
    }
}

impl Poolable for Fake {
    fn is_usable(&self) -> bool {
        !self.broken
    }

    async fn check(&mut self) -> bool {
        self.log.checks.fetch_add(1, Ordering::SeqCst);
        let takes = *self.behaviour.check_takes.lock().unwrap();
        tokio::time::sleep(takes).await;
        self.alive()
    }

    fn probe(&mut self) -> bool {
        self.log.probes.fetch_add(1, Ordering::SeqCst);
        self.alive()
    }

    async fn close(self) {
        self.log.quit_started.lock().unwrap().push(self.id);
        let takes = *self.behaviour.quit_takes.lock().unwrap();
        tokio::time::sleep(takes).await;
        self.log.quit_done.lock().unwrap().push(self.id);
    }

    fn transactions(&self) -> u64 {
        self.sent
    }

    fn in_transaction(&self) -> bool {
        self.in_transaction
    }

    async fn reset(&mut self) -> bool {
        self.log.resets.fetch_add(1, Ordering::SeqCst);
        if self.behaviour.refuse_reset.load(Ordering::SeqCst) {
            return false;
        }
        self.in_transaction = false;
        true
    }

    async fn before<F: Future + Send>(deadline: Instant, future: F) -> Option<F::Output> {
        tokio::time::timeout_at(deadline.into(), future).await.ok()
    }

    fn spawn(task: Task) -> Result<(), Task> {
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                drop(rt.spawn(task));
                Ok(())
            }
            Err(_) => Err(task),
        }
    }

    fn now() -> Instant {
        tokio::time::Instant::now().into_std()
    }
}

/// The pool's error: its own, or a refused connection.
#[derive(Debug, PartialEq)]
enum E {
    Pool(PoolError),
}

impl From<PoolError> for E {
    fn from(e: PoolError) -> Self {
        E::Pool(e)
    }
}

type FakePool = Pool<Fake, E>;

/// A pool of fake sessions, what they did and how they behave.
fn fake_pool(config: PoolConfig) -> (FakePool, Arc<Log>, Arc<Behaviour>) {
    let log = Arc::new(Log::default());
    let behaviour = Arc::new(Behaviour::default());
    let (l, b) = (log.clone(), behaviour.clone());
    let pool = Pool::new(config, move || {
        let (log, behaviour) = (l.clone(), b.clone());
        async move {
            let id = log.connects.fetch_add(1, Ordering::SeqCst);
            let takes = *behaviour.connect_takes.lock().unwrap();
            tokio::time::sleep(takes).await;
            Ok(Fake {
                id,
                broken: false,
                sent: 0,
                in_transaction: false,
                log,
                behaviour,
            })
        }
    });
    (pool, log, behaviour)
}

/// Runs `case` on a current-thread Tokio runtime whose clock is paused.
fn paused(case: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(case);
}

/// Lets the tasks started so far (background QUITs) run.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

/// A checkout, and the id of the session it gave.
async fn take(pool: &FakePool) -> Pooled<Fake> {
    pool.get().await.unwrap()
}

fn now() -> tokio::time::Instant {
    tokio::time::Instant::now()
}

const MS: Duration = Duration::from_millis(1);

// ----- idle time and age -----

#[test]
fn a_session_idle_for_exactly_idle_timeout_is_reused_and_one_idle_longer_is_not() {
    paused(async {
        let idle = Duration::from_secs(60);
        let config = PoolConfig::default()
            .max_size(1)
            .idle_timeout(idle)
            .check_after(Duration::from_secs(3600));
        let (pool, log, _) = fake_pool(config);
        drop(take(&pool).await);
        advance(idle).await;
        let s = take(&pool).await;
        assert_eq!(s.id, 0, "idle for exactly idle_timeout: reused");
        drop(s);
        advance(idle + MS).await;
        let s = take(&pool).await;
        assert_eq!(s.id, 1, "idle a millisecond longer: replaced");
        settle().await;
        assert_eq!(log.quit_done(), [0], "the idle one said QUIT");
        assert_eq!(log.connects(), 2);
    });
}

#[test]
fn max_age_counts_from_the_connection_not_from_the_last_use() {
    paused(async {
        let age = Duration::from_secs(600);
        let config = PoolConfig::default()
            .max_size(1)
            .max_age(age)
            .idle_timeout(Duration::from_secs(3600))
            .check_after(Duration::from_secs(3600));
        let (pool, log, _) = fake_pool(config);
        // Used every 4 minutes: idle time stays short, age grows.
        for _ in 0..2 {
            let mut s = take(&pool).await;
            assert_eq!(s.id, 0);
            s.send();
            drop(s);
            advance(Duration::from_secs(240)).await;
        }
        // 8 minutes old; 10 at the next use: still young enough.
        advance(Duration::from_secs(120)).await;
        let s = take(&pool).await;
        assert_eq!(s.id, 0, "exactly max_age old: reused");
        assert_eq!(s.created(), Instant::from(now()) - age);
        drop(s);
        advance(MS).await;
        let s = take(&pool).await;
        assert_eq!(s.id, 1, "older than max_age: replaced");
        assert_eq!(s.created(), Instant::from(now()));
        settle().await;
        assert_eq!(log.quit_done(), [0]);
    });
}

#[test]
fn max_messages_closes_a_session_at_its_limit() {
    paused(async {
        let config = PoolConfig::default().max_size(1).max_messages(3);
        let (pool, log, _) = fake_pool(config);
        let mut ids = Vec::new();
        for _ in 0..7 {
            let mut s = take(&pool).await;
            ids.push(s.id);
            s.send();
        }
        assert_eq!(ids, [0, 0, 0, 1, 1, 1, 2], "3 + 3 + 1 messages");
        settle().await;
        assert_eq!(log.quit_done(), [0, 1]);
    });
}

// ----- the checks before reuse -----

#[test]
fn a_session_idle_less_than_check_after_is_probed_and_one_idle_longer_is_checked() {
    paused(async {
        let after = Duration::from_secs(5);
        let config = PoolConfig::default().max_size(1).check_after(after);
        let (pool, log, _) = fake_pool(config);
        drop(take(&pool).await);
        assert_eq!((log.probes(), log.checks()), (0, 0), "a fresh one: neither");
        advance(after - MS).await;
        let s = take(&pool).await;
        assert!(s.unchecked());
        assert_eq!(
            (log.probes(), log.checks()),
            (1, 0),
            "idle < check_after: probed"
        );
        drop(s);
        advance(after).await;
        let s = take(&pool).await;
        assert!(!s.unchecked());
        assert_eq!(
            (log.probes(), log.checks()),
            (1, 1),
            "idle = check_after: NOOP"
        );
        assert_eq!((s.id, log.connects()), (0, 1));
    });
}

#[test]
fn with_check_after_zero_every_reuse_is_checked_and_with_checks_off_none() {
    paused(async {
        let config = PoolConfig::default()
            .max_size(1)
            .check_after(Duration::ZERO);
        let (pool, log, _) = fake_pool(config);
        for _ in 0..3 {
            drop(take(&pool).await);
        }
        assert_eq!(log.checks(), 2, "one NOOP per reuse");

        let config = PoolConfig::default()
            .max_size(1)
            .check_after(Duration::ZERO)
            .health_check(false);
        let (pool, log, _) = fake_pool(config);
        drop(take(&pool).await);
        advance(Duration::from_secs(50)).await;
        let s = take(&pool).await;
        assert!(s.unchecked());
        assert_eq!((log.checks(), log.probes()), (0, 1));
    });
}

#[test]
fn a_dead_session_is_replaced_whether_found_by_its_probe_or_its_check() {
    paused(async {
        let after = Duration::from_secs(5);
        let config = PoolConfig::default().max_size(1).check_after(after);
        let (pool, log, behaviour) = fake_pool(config);
        drop(take(&pool).await);
        behaviour.gone.lock().unwrap().push(0);
        let s = take(&pool).await;
        assert_eq!(s.id, 1, "the probe found 0 dead");
        assert_eq!((log.probes(), log.checks()), (1, 0));
        drop(s);
        behaviour.gone.lock().unwrap().push(1);
        advance(after).await;
        let s = take(&pool).await;
        assert_eq!(s.id, 2, "the NOOP found 1 dead");
        assert_eq!((log.probes(), log.checks()), (1, 1));
        settle().await;
        // A dead session still usable in its own view is closed with QUIT.
        assert_eq!(log.quit_done(), [0, 1]);
    });
}

#[test]
fn a_check_cut_short_by_the_deadline_costs_no_other_idle_session() {
    paused(async {
        let config = PoolConfig::default()
            .max_size(2)
            .check_after(Duration::ZERO)
            .checkout_timeout(Duration::from_millis(300));
        let (pool, log, behaviour) = fake_pool(config);
        let (a, b) = (take(&pool).await, take(&pool).await);
        drop(a);
        drop(b);
        // Each NOOP takes an hour.
        *behaviour.check_takes.lock().unwrap() = Duration::from_secs(3600);
        let start = now();
        let e = pool.get().await.unwrap_err();
        assert_eq!(e, E::Pool(PoolError::CheckoutTimeout));
        assert_eq!(start.elapsed(), Duration::from_millis(300));
        assert_eq!(log.checks(), 1);
        assert_eq!(pool.idle_count(), 1, "the other session is still there");
    });
}

// ----- what a borrower leaves behind -----

#[test]
fn an_open_transaction_is_reset_before_reuse_or_the_session_closed() {
    paused(async {
        let (pool, log, behaviour) = fake_pool(PoolConfig::default().max_size(1));
        take(&pool).await.begin();
        let s = take(&pool).await;
        assert_eq!((s.id, log.resets()), (0, 1), "reset and reused");
        assert!(!s.in_transaction);
        drop(s);
        behaviour.refuse_reset.store(true, Ordering::SeqCst);
        take(&pool).await.begin();
        let s = take(&pool).await;
        assert_eq!((s.id, log.resets()), (1, 2), "refused: replaced");
        settle().await;
        assert_eq!(log.quit_done(), [0], "and the refusing one said QUIT");
    });
}

#[test]
fn a_broken_or_discarded_session_is_never_handed_out_again() {
    paused(async {
        let (pool, log, _) = fake_pool(PoolConfig::default().max_size(1));
        take(&pool).await.broken = true;
        assert_eq!(pool.idle_count(), 0);
        let s = take(&pool).await;
        assert_eq!(s.id, 1);
        s.discard();
        assert_eq!(pool.idle_count(), 0);
        assert_eq!(take(&pool).await.id, 2);
        settle().await;
        assert!(log.quit_started().is_empty(), "dropped, not QUIT");
    });
}

// ----- the checkout deadline -----

#[test]
fn a_checkout_waits_exactly_the_checkout_timeout_and_leaves_the_queue() {
    paused(async {
        let (pool, _, _) = fake_pool(PoolConfig::default().max_size(1));
        let held = take(&pool).await;
        let start = now();
        let e = pool.get().await.unwrap_err();
        assert_eq!(e, E::Pool(PoolError::CheckoutTimeout));
        assert_eq!(
            start.elapsed(),
            PoolConfig::DEFAULT_CHECKOUT_TIMEOUT,
            "the default deadline, to the tick"
        );
        assert_eq!(pool.waiting(), 0);
        drop(held);
        assert_eq!(take(&pool).await.id, 0);
    });
}

#[test]
fn connecting_is_bounded_by_the_checkout_timeout() {
    paused(async {
        let timeout = Duration::from_millis(300);
        let (pool, log, behaviour) = fake_pool(PoolConfig::default().checkout_timeout(timeout));
        *behaviour.connect_takes.lock().unwrap() = Duration::from_secs(5);
        let start = now();
        let e = pool.get().await.unwrap_err();
        assert_eq!(e, E::Pool(PoolError::CheckoutTimeout));
        assert_eq!(start.elapsed(), timeout);
        assert_eq!(log.connects(), 1);
        // Its permit came back.
        *behaviour.connect_takes.lock().unwrap() = timeout - MS;
        assert_eq!(take(&pool).await.id, 1);
    });
}

#[test]
fn a_checkout_timeout_is_the_facades_timeout_error_and_not_sent() {
    // A pool of real sessions whose connect function never finishes (no
    // socket): the checkout ends at its deadline with the facade's error.
    paused(async {
        let timeout = Duration::from_millis(100);
        let config = PoolConfig::default().checkout_timeout(timeout);
        let pool: Pool<SmtpClient<Tokio>, Error> = Pool::new(config, || async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Err(Error::from(PoolError::Closed))
        });
        let start = now();
        let e = pool.get().await.unwrap_err();
        assert_eq!(start.elapsed(), timeout);
        assert!(
            matches!(e.inner(), Error::Smtp(smtp_sansio::Error::Timeout(_))),
            "{e:?}"
        );
        assert_eq!(e.delivery(), smtp_sansio::Delivery::NotSent);
        assert_eq!(
            Error::from(PoolError::CheckoutTimeout).to_string(),
            e.to_string()
        );
    });
}

#[test]
fn a_retry_after_a_failed_connect_shares_the_first_deadline() {
    // No session is ever made: connection 0 fails (a reset, not sent) after
    // 0.9 s, the retry's connection would take 0.9 s more, past the 1.5 s
    // the send has. Without the retry the first error comes back.
    paused(async {
        for retry in [true, false] {
            let connects = Arc::new(AtomicUsize::new(0));
            let counter = connects.clone();
            let config = PoolConfig::default()
                .max_size(1)
                .retry_not_sent(retry)
                .checkout_timeout(Duration::from_millis(1500));
            let pool: Pool<SmtpClient<Tokio>, Error> = Pool::new(config, move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async {
                    tokio::time::sleep(Duration::from_millis(900)).await;
                    Err(Error::from(std::io::Error::from(
                        std::io::ErrorKind::ConnectionReset,
                    )))
                }
            });
            let start = now();
            let to = smtp_async::Envelope::parse("a@example.org", &["b@example.org"]).unwrap();
            let e = pool
                .send(&to, &b"Subject: x\r\n\r\nx\r\n"[..])
                .await
                .unwrap_err();
            assert_eq!(e.delivery(), smtp_sansio::Delivery::NotSent);
            if retry {
                assert!(
                    matches!(e.inner(), Error::Smtp(smtp_sansio::Error::Timeout(_))),
                    "the retry ran out of the first deadline: {e:?}"
                );
                assert_eq!(start.elapsed(), Duration::from_millis(1500));
                assert_eq!(connects.load(Ordering::SeqCst), 2, "it did retry");
            } else {
                assert!(matches!(e.inner(), Error::Io(_)), "{e:?}");
                assert_eq!(start.elapsed(), Duration::from_millis(900));
                assert_eq!(connects.load(Ordering::SeqCst), 1);
            }
        }
    });
}

// ----- first come, first served -----

#[test]
fn waiting_tasks_are_served_first_come_first_served() {
    paused(async {
        const N: usize = 12;
        let (pool, log, _) = fake_pool(PoolConfig::default().max_size(1));
        let held = take(&pool).await;
        let served = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..N {
            let (waiter, served) = (pool.clone(), served.clone());
            tasks.push(tokio::spawn(async move {
                let s = waiter.get().await.unwrap();
                served.lock().unwrap().push(i);
                // Held across a turn of the runtime and a while.
                tokio::time::sleep(Duration::from_secs(1)).await;
                drop(s);
            }));
            // Each is queued before the next starts.
            settle().await;
            assert_eq!(pool.waiting(), i + 1);
        }
        // The holder hands its session back and asks again at once: it came
        // last, so it is served last (an unfair semaphore lets it barge in).
        drop(held);
        let start = now();
        let again = take(&pool).await;
        served.lock().unwrap().push(N);
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(N as u64),
            "after each held it 1 s"
        );
        drop(again);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*served.lock().unwrap(), (0..=N).collect::<Vec<_>>());
        assert_eq!(log.connects(), 1, "one session, reused");
        assert_eq!(pool.waiting(), 0);
    });
}

#[test]
fn a_waiter_that_gives_up_passes_its_turn_on() {
    paused(async {
        let config = PoolConfig::default()
            .max_size(1)
            .checkout_timeout(Duration::from_secs(10));
        let (pool, _, _) = fake_pool(config);
        let held = take(&pool).await;
        // The first waiter gives up after 5 s, the second waits its 10.
        let first = tokio::spawn({
            let pool = pool.clone();
            async move {
                tokio::time::timeout(Duration::from_secs(5), pool.get())
                    .await
                    .is_err()
            }
        });
        settle().await;
        let second = tokio::spawn({
            let pool = pool.clone();
            async move { pool.get().await.map(|s| s.id) }
        });
        settle().await;
        assert_eq!(pool.waiting(), 2);
        assert!(first.await.unwrap(), "the first gave up");
        assert_eq!(pool.waiting(), 1, "and left the queue");
        drop(held);
        assert_eq!(second.await.unwrap(), Ok(0));
        assert_eq!(pool.waiting(), 0);
    });
}

// ----- closing -----

#[test]
fn close_quits_idle_sessions_fails_waiters_and_quits_sessions_handed_back() {
    paused(async {
        let (pool, log, _) = fake_pool(PoolConfig::default().max_size(3));
        let a = take(&pool).await;
        let b = take(&pool).await;
        let busy = take(&pool).await;
        drop(a);
        drop(b);
        pool.close().await;
        assert!(pool.is_closed());
        assert_eq!(pool.idle_count(), 0);
        let mut done = log.quit_done();
        done.sort_unstable();
        assert_eq!(done, [0, 1], "the idle ones, before close returned");
        assert_eq!(pool.get().await.unwrap_err(), E::Pool(PoolError::Closed));
        // In use at close: QUIT in the background when handed back.
        drop(busy);
        assert_eq!(pool.idle_count(), 0);
        settle().await;
        let mut done = log.quit_done();
        done.sort_unstable();
        assert_eq!(done, [0, 1, 2]);
        assert_eq!(log.connects(), 3);

        // Tasks waiting for a session when the pool closes fail at once.
        let (pool, log, _) = fake_pool(PoolConfig::default().max_size(1));
        let held = take(&pool).await;
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.get().await.map(|s| s.id) })
            })
            .collect();
        settle().await;
        assert_eq!(pool.waiting(), 3);
        let start = now();
        pool.close().await;
        for w in waiters {
            assert_eq!(w.await.unwrap(), Err(E::Pool(PoolError::Closed)));
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(pool.waiting(), 0);
        drop(held);
        settle().await;
        assert_eq!(log.quit_done(), [0]);
    });
}

#[test]
fn expired_sessions_are_quit_without_the_caller_waiting() {
    paused(async {
        let config = PoolConfig::default()
            .max_size(3)
            .idle_timeout(Duration::from_secs(60));
        let (pool, log, behaviour) = fake_pool(config);
        let held = [take(&pool).await, take(&pool).await, take(&pool).await];
        drop(held);
        // Each QUIT takes 20 s (a server that never answers, until the linger).
        *behaviour.quit_takes.lock().unwrap() = Duration::from_secs(20);
        advance(Duration::from_secs(61)).await;
        let start = now();
        let fresh = take(&pool).await;
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "the caller waited for no QUIT"
        );
        assert_eq!(fresh.id, 3);
        settle().await;
        assert_eq!(log.quit_started().len(), 3);
        assert!(log.quit_done().is_empty());
        advance(Duration::from_secs(20)).await;
        settle().await;
        assert_eq!(log.quit_done().len(), 3, "each finished in the background");
    });
}

#[test]
fn a_session_handed_back_outside_a_runtime_after_close_is_dropped() {
    let (pool, log, _) = fake_pool(PoolConfig::default());
    let s = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(async {
            let s = take(&pool).await;
            pool.close().await;
            s
        });
    drop(s);
    assert!(log.quit_started().is_empty(), "no task could QUIT it");
}
