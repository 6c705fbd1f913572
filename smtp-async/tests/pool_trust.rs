//! What a pool guarantees its callers, on both async runtimes (each case is
//! written once, generic over the runtime, and run on Tokio and on
//! async-std): waiting tasks are served first come, first served; a checkout
//! has a finite deadline by default, which bounds connecting too, and a retry
//! does not get a second one; expired sessions are closed with QUIT without
//! the caller waiting for their replies; a session handed back after
//! `close()` is closed with QUIT; a session left in a transaction is reset
//! before reuse; a borrower's transcript writer and debug level do not reach
//! the next borrower.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smtp_async::pool::Pool;
use smtp_async::{Envelope, Error, Options, PoolConfig, Runtime, SmtpClient, smtp_sansio};
use smtp_async_std::AsyncStd;
use smtp_testkit::{Fault, FaultAction, MockServer, Script, ServerConfig};
use smtp_tokio::Tokio;

const WAIT: Duration = Duration::from_secs(10);

/// Runs the same case on Tokio, then on async-std.
fn on_both(tokio_case: impl Future<Output = ()>, async_std_case: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(tokio_case);
    async_std::task::block_on(async_std_case);
}

type P<R> = Pool<SmtpClient<R>, Error>;

fn opts() -> Options {
    let mut o = Options::default();
    o.timeout = Some(WAIT);
    o
}

/// A pool on `server` (connecting with `options`) and the count of
/// connections it made.
fn pool_with<R: Runtime>(
    server: &MockServer,
    config: PoolConfig,
    options: Options,
) -> (P<R>, Arc<AtomicUsize>) {
    let addr = server.addr().to_string();
    let connects = Arc::new(AtomicUsize::new(0));
    let counter = connects.clone();
    let pool = Pool::new(config, move || {
        let (addr, options) = (addr.clone(), options.clone());
        counter.fetch_add(1, Ordering::SeqCst);
        async move { SmtpClient::<R>::connect(&addr, options).await }
    });
    (pool, connects)
}

fn pool_on<R: Runtime>(server: &MockServer, config: PoolConfig) -> (P<R>, Arc<AtomicUsize>) {
    pool_with::<R>(server, config, opts())
}

fn envelope(to: &str) -> Envelope {
    Envelope::parse("a@example.org", &[to]).unwrap()
}

fn message(n: usize) -> Vec<u8> {
    format!("Subject: pool {n}\r\n\r\nbody {n}\r\n").into_bytes()
}

/// Sleeps on the runtime's timer.
async fn sleep<R: Runtime>(d: Duration) {
    let mut timer = R::timer(Instant::now() + d);
    std::future::poll_fn(|cx| R::poll_timer(&mut timer, cx)).await;
}

/// Waits on the runtime (so that its tasks run) until `done`, at most
/// `limit`; returns whether it came.
async fn until<R: Runtime>(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while !done() {
        if Instant::now() >= end {
            return false;
        }
        sleep::<R>(Duration::from_millis(5)).await;
    }
    true
}

/// Whether the client of connection `i` said QUIT.
fn said_quit(server: &MockServer, i: usize) -> bool {
    server.connection_logs()[i]
        .transcript
        .iter()
        .any(|l| l == "C: QUIT")
}

/// A runtime the cases can start tasks on.
trait Spawn: Runtime {
    fn start(task: impl Future<Output = ()> + Send + 'static);
}

impl Spawn for Tokio {
    fn start(task: impl Future<Output = ()> + Send + 'static) {
        drop(tokio::spawn(task));
    }
}

impl Spawn for AsyncStd {
    fn start(task: impl Future<Output = ()> + Send + 'static) {
        drop(async_std::task::spawn(task));
    }
}

// ----- first come, first served -----

async fn fifo<R: Spawn>() {
    const N: usize = 12;
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let (pool, connects) = pool_on::<R>(&server, PoolConfig::default().max_size(1));
    let held = pool.get().await.unwrap();
    let served = Arc::new(Mutex::new(Vec::new()));
    for i in 0..N {
        let (waiter, served) = (pool.clone(), served.clone());
        R::start(async move {
            let pooled = waiter.get().await.unwrap();
            served.lock().unwrap().push(i);
            drop(pooled);
        });
        // Enqueued in a known order: each waits before the next starts.
        assert!(until::<R>(WAIT, || pool.waiting() == i + 1).await);
    }
    // The holder hands its session back and asks again at once: it came
    // last, so it is served last (an unfair semaphore lets it barge in).
    drop(held);
    let again = pool.get().await.unwrap();
    served.lock().unwrap().push(N);
    drop(again);
    let order = served.lock().unwrap().clone();
    assert_eq!(order, (0..=N).collect::<Vec<_>>());
    assert_eq!(connects.load(Ordering::SeqCst), 1, "one session, reused");
    assert_eq!(pool.waiting(), 0);
}

#[test]
fn waiting_tasks_are_served_first_come_first_served() {
    on_both(fifo::<Tokio>(), fifo::<AsyncStd>());
}

async fn cancelled_waiter<R: Runtime>() {
    // A waiter that gives up leaves the queue, and a permit handed to one
    // that then goes away passes on to the next.
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let (pool, _) = pool_on::<R>(
        &server,
        PoolConfig::default()
            .max_size(1)
            .checkout_timeout(Duration::from_millis(50)),
    );
    let held = pool.get().await.unwrap();
    let e = pool.get().await.unwrap_err();
    assert!(
        matches!(e.inner(), Error::Smtp(smtp_sansio::Error::Timeout(_))),
        "{e:?}"
    );
    assert_eq!(pool.waiting(), 0, "the timed-out waiter left the queue");
    drop(held);
    let _again = pool.get().await.unwrap();
}

#[test]
fn a_waiter_that_times_out_leaves_the_queue() {
    on_both(cancelled_waiter::<Tokio>(), cancelled_waiter::<AsyncStd>());
}

// ----- one finite checkout deadline -----

#[test]
fn the_checkout_timeout_has_a_finite_default() {
    assert_eq!(
        PoolConfig::default().checkout_timeout,
        Some(Duration::from_secs(30))
    );
}

/// A pool whose connect function waits `delays[i]` before connection `i`.
fn slow_pool<R: Runtime>(
    server: &MockServer,
    config: PoolConfig,
    delays: Vec<Duration>,
) -> (P<R>, Arc<AtomicUsize>) {
    let addr = server.addr().to_string();
    let connects = Arc::new(AtomicUsize::new(0));
    let counter = connects.clone();
    let pool = Pool::new(config, move || {
        let addr = addr.clone();
        let i = counter.fetch_add(1, Ordering::SeqCst);
        let delay = delays.get(i).copied().unwrap_or_default();
        async move {
            sleep::<R>(delay).await;
            SmtpClient::<R>::connect(&addr, opts()).await
        }
    });
    (pool, connects)
}

async fn slow_connect<R: Runtime>() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let timeout = Duration::from_millis(300);
    let (pool, _) = slow_pool::<R>(
        &server,
        PoolConfig::default().max_size(1).checkout_timeout(timeout),
        vec![Duration::from_secs(5)],
    );
    let start = Instant::now();
    let e = pool.get().await.unwrap_err();
    assert!(
        matches!(e.inner(), Error::Smtp(smtp_sansio::Error::Timeout(_))),
        "{e:?}"
    );
    assert!(start.elapsed() < timeout + Duration::from_secs(1));
    assert_eq!(e.delivery(), smtp_sansio::Delivery::NotSent);
}

#[test]
fn connecting_is_bounded_by_the_checkout_timeout() {
    on_both(slow_connect::<Tokio>(), slow_connect::<AsyncStd>());
}

async fn retry_connect<R: Runtime>() {
    // Connection 0 is reset before its greeting, after 0.9 s of connecting;
    // connection 1 would behave, after 0.9 s more: 1.8 s in all, past the
    // 1.5 s the send has.
    let server = MockServer::start(
        ServerConfig::default().faults(vec![Some(Fault::AfterSent(0, FaultAction::Reset))]),
    )
    .unwrap();
    let timeout = Duration::from_millis(1500);
    let delay = Duration::from_millis(900);
    let (pool, connects) = slow_pool::<R>(
        &server,
        PoolConfig::default()
            .max_size(1)
            .retry_not_sent(true)
            .checkout_timeout(timeout),
        vec![delay, delay],
    );
    let start = Instant::now();
    let e = pool
        .send(&envelope("b@example.org"), &message(0))
        .await
        .unwrap_err();
    assert!(
        matches!(e.inner(), Error::Smtp(smtp_sansio::Error::Timeout(_))),
        "the retry ran out of the first deadline: {e:?}"
    );
    assert!(start.elapsed() < timeout + Duration::from_secs(1));
    assert_eq!(connects.load(Ordering::SeqCst), 2, "it did retry");
    assert!(server.messages().is_empty());
}

#[test]
fn a_retried_checkout_shares_the_first_deadline() {
    on_both(retry_connect::<Tokio>(), retry_connect::<AsyncStd>());
}

async fn retry_after_send<R: Runtime>() {
    // Connection 0 goes silent at MAIL (no PIPELINING: MAIL goes alone), so
    // the send times out after 1 s, before the end of the message went out:
    // retryable, but the 300 ms checkout deadline is past by then, so there
    // is no second connection.
    let server = MockServer::start(
        ServerConfig::default()
            .extensions(&["8BITMIME"])
            .faults(vec![Some(Fault::AfterReceived(
                "EHLO client.example\r\n".len() + 1,
                FaultAction::Stall,
            ))]),
    )
    .unwrap();
    let mut options = Options::default();
    options.timeout = Some(Duration::from_secs(1));
    options.local_name = Some("client.example".into());
    let (pool, connects) = pool_with::<R>(
        &server,
        PoolConfig::default()
            .max_size(1)
            .retry_not_sent(true)
            .checkout_timeout(Duration::from_millis(300)),
        options,
    );
    let e = pool
        .send(&envelope("b@example.org"), &message(0))
        .await
        .unwrap_err();
    assert!(smtp_async::pool::retryable(&e), "{e:?}");
    assert!(
        matches!(e.inner(), Error::Smtp(smtp_sansio::Error::Timeout(_))),
        "{e:?}"
    );
    assert_eq!(
        connects.load(Ordering::SeqCst),
        1,
        "no retry past the deadline"
    );
}

#[test]
fn no_retry_once_the_deadline_of_the_send_has_passed() {
    on_both(retry_after_send::<Tokio>(), retry_after_send::<AsyncStd>());
}

// ----- closing without waiting -----

async fn expired_in_background<R: Runtime>() {
    // The server reads QUIT and never answers it.
    let script = Script::default()
        .send("220 quiet.example ESMTP")
        .expect_line()
        .silence(Duration::from_secs(20));
    let server = MockServer::start(ServerConfig::scripted(script)).unwrap();
    let mut options = opts();
    options.timeout = Some(Duration::from_secs(3));
    let (pool, connects) = pool_with::<R>(
        &server,
        PoolConfig::default()
            .max_size(3)
            .idle_timeout(Duration::from_millis(50)),
        options,
    );
    let held: Vec<_> = [pool.get().await, pool.get().await, pool.get().await]
        .into_iter()
        .map(Result::unwrap)
        .collect();
    drop(held);
    assert_eq!(pool.idle_count(), 3);
    sleep::<R>(Duration::from_millis(100)).await;
    let start = Instant::now();
    let fresh = pool.get().await.unwrap();
    let waited = start.elapsed();
    assert!(
        waited < smtp_sansio::Timeouts::default().quit_linger,
        "the caller waited for no QUIT reply: {waited:?}"
    );
    assert_eq!(connects.load(Ordering::SeqCst), 4);
    // Each expired session said QUIT and was closed within its linger.
    let closed = until::<R>(
        smtp_sansio::Timeouts::default().quit_linger + Duration::from_secs(2),
        || {
            let logs = server.connection_logs();
            logs.iter().take(3).all(|l| l.closed)
        },
    )
    .await;
    assert!(closed, "closed within the QUIT linger");
    for log in server.connection_logs().iter().take(3) {
        assert_eq!(log.expected_lines, ["QUIT"]);
    }
    drop(fresh);
}

#[test]
fn expired_sessions_are_quit_without_the_caller_waiting() {
    on_both(
        expired_in_background::<Tokio>(),
        expired_in_background::<AsyncStd>(),
    );
}

async fn returned_after_close<R: Runtime>() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let (pool, _) = pool_on::<R>(&server, PoolConfig::default().max_size(2));
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    drop(b);
    pool.close().await;
    assert!(said_quit(&server, 1), "the idle one, at close()");
    drop(a);
    assert_eq!(pool.idle_count(), 0);
    let quit = until::<R>(WAIT, || {
        server.connection_logs()[0].closed && said_quit(&server, 0)
    })
    .await;
    assert!(quit, "{:?}", server.connection_logs()[0].transcript);
}

#[test]
fn a_session_handed_back_after_close_is_quit() {
    on_both(
        returned_after_close::<Tokio>(),
        returned_after_close::<AsyncStd>(),
    );
}

async fn waiters_at_close<R: Spawn>() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let (pool, _) = pool_on::<R>(&server, PoolConfig::default().max_size(1));
    let held = pool.get().await.unwrap();
    let failed = Arc::new(AtomicUsize::new(0));
    for _ in 0..3 {
        let (waiter, failed) = (pool.clone(), failed.clone());
        R::start(async move {
            let e = waiter.get().await.unwrap_err();
            assert_eq!(
                e.to_string(),
                Error::from(smtp_async::PoolError::Closed).to_string()
            );
            failed.fetch_add(1, Ordering::SeqCst);
        });
    }
    assert!(until::<R>(WAIT, || pool.waiting() == 3).await);
    pool.close().await;
    assert!(until::<R>(WAIT, || failed.load(Ordering::SeqCst) == 3).await);
    drop(held);
}

#[test]
fn tasks_waiting_when_the_pool_closes_fail_at_once() {
    on_both(waiters_at_close::<Tokio>(), waiters_at_close::<AsyncStd>());
}

// ----- what one borrower leaves behind -----

async fn open_transaction<R: Runtime>() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let (pool, connects) = pool_on::<R>(&server, PoolConfig::default().max_size(1));
    {
        let mut pooled = pool.get().await.unwrap();
        pooled.ehlo(None).await.unwrap();
        let r = pooled.mail("a@example.org", &[]).await.unwrap();
        assert_eq!(r.code(), 250);
        let r = pooled.rcpt("stray@example.org", &[]).await.unwrap();
        assert_eq!(r.code(), 250);
    }
    let r = pool
        .send(&envelope("b@example.org"), &message(0))
        .await
        .unwrap();
    assert!(r.refused().is_empty());
    assert_eq!(connects.load(Ordering::SeqCst), 1, "reset and reused");
    let stored = server.messages();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].rcpt_to, ["<b@example.org>"]);
    let t = &server.connection_logs()[0].transcript;
    let commands: Vec<&str> = t
        .iter()
        .filter_map(|l| l.strip_prefix("C: "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        commands[..5],
        ["EHLO", "MAIL", "RCPT", "RSET", "MAIL"],
        "{t:?}"
    );
    pool.close().await;
}

#[test]
fn a_session_left_in_a_transaction_is_reset_before_reuse() {
    on_both(open_transaction::<Tokio>(), open_transaction::<AsyncStd>());
}

/// A transcript writer that keeps what it got.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

async fn transcripts<R: Runtime>() {
    // The connect function turns the transcript on (level 1) to a writer of
    // its own; a borrower turns on level 2 to its own writer.
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let addr = server.addr().to_string();
    let base = Sink::default();
    let for_connect = base.clone();
    let pool: P<R> = Pool::new(PoolConfig::default().max_size(1), move || {
        let (addr, w) = (addr.clone(), for_connect.clone());
        async move {
            let mut options = opts();
            options.debug_level = 1.into();
            let mut c = SmtpClient::<R>::connect(&addr, options).await?;
            c.set_transcript(Box::new(w));
            Ok(c)
        }
    });
    let mine = Sink::default();
    {
        let mut pooled = pool.get().await.unwrap();
        pooled.set_transcript(Box::new(mine.clone()));
        pooled.set_debuglevel(2);
        pooled
            .send(&envelope("b@example.org"), &message(0))
            .await
            .unwrap();
    }
    let mine_after_first = mine.text();
    assert!(mine_after_first.contains("C: MAIL FROM:<a@example.org>"));
    let base_after_first = base.text();
    assert!(
        !base_after_first.contains("MAIL FROM"),
        "{base_after_first}"
    );
    {
        let mut pooled = pool.get().await.unwrap();
        assert_eq!(
            pooled.debug_level(),
            smtp_async::DebugLevel::Lines,
            "the level it was connected with"
        );
        pooled
            .send(&envelope("c@example.org"), &message(1))
            .await
            .unwrap();
    }
    assert_eq!(
        mine.text(),
        mine_after_first,
        "nothing more to the first borrower's writer"
    );
    let second = base.text()[base_after_first.len()..].to_owned();
    assert!(second.contains("C: RCPT TO:<c@example.org>"), "{second}");
    assert!(
        second
            .lines()
            .all(|l| l.starts_with("C: ") || l.starts_with("S: ")),
        "level 1, no timestamps: {second}"
    );
    pool.close().await;
}

#[test]
fn a_borrowers_transcript_and_debug_level_do_not_reach_the_next() {
    on_both(transcripts::<Tokio>(), transcripts::<AsyncStd>());
}
