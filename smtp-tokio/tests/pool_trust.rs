//! What the pool guarantees its callers, through the Tokio shim and on Tokio's
//! multi-threaded runtime where races are real: a finite checkout deadline
//! that a retry does not double, first come first served among many waiters,
//! expired sessions closed without the caller waiting for their QUIT, no
//! session left un-QUIT when `close()` races sessions coming back, a session
//! left in a transaction reset (or closed when the reset fails) before reuse,
//! and a borrower's transcript kept from the next borrower. The same cases
//! on both runtimes are in smtp-async's `tests/pool_trust.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smtp_testkit::{Fault, FaultAction, MockServer, Script, ServerConfig};
use smtp_tokio::{Envelope, Error, Options, Pool, PoolConfig, SmtpClient, smtp_sansio};

const WAIT: Duration = Duration::from_secs(10);

fn opts() -> Options {
    let mut o = Options::default();
    o.timeout = Some(WAIT);
    o
}

/// A pool on `server` and the count of connections it made; connection `i`
/// waits `delays[i]` (none when not given) before connecting.
fn pool_on(
    server: &MockServer,
    config: PoolConfig,
    delays: Vec<Duration>,
) -> (Pool, Arc<AtomicUsize>) {
    let addr = server.addr().to_string();
    let connects = Arc::new(AtomicUsize::new(0));
    let counter = connects.clone();
    let pool = Pool::new(config, move || {
        let addr = addr.clone();
        let i = counter.fetch_add(1, Ordering::SeqCst);
        let delay = delays.get(i).copied().unwrap_or_default();
        async move {
            tokio::time::sleep(delay).await;
            SmtpClient::connect(&addr, opts()).await
        }
    });
    (pool, connects)
}

fn envelope(to: &str) -> Envelope {
    Envelope::parse("a@example.org", &[to]).unwrap()
}

fn message(n: usize) -> Vec<u8> {
    format!("Subject: pool {n}\r\n\r\nbody {n}\r\n").into_bytes()
}

/// Waits (letting the runtime's tasks run) until `done`, at most `limit`.
async fn until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while !done() {
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

fn said_quit(server: &MockServer, i: usize) -> bool {
    server.connection_logs()[i]
        .transcript
        .iter()
        .any(|l| l == "C: QUIT")
}

fn is_timeout(e: &Error) -> bool {
    matches!(e.inner(), Error::Smtp(smtp_sansio::Error::Timeout(_)))
}

// ----- 1. the checkout deadline -----

#[tokio::test]
async fn by_default_a_checkout_gives_up_after_30_seconds() {
    assert_eq!(
        PoolConfig::default().checkout_timeout,
        Some(Duration::from_secs(30))
    );
}

#[tokio::test]
async fn a_connect_slower_than_the_checkout_timeout_fails_within_it() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let timeout = Duration::from_millis(200);
    let (pool, _) = pool_on(
        &server,
        PoolConfig::default().checkout_timeout(timeout),
        vec![Duration::from_secs(5)],
    );
    let start = Instant::now();
    let e = pool.get().await.unwrap_err();
    assert!(is_timeout(&e), "{e:?}");
    assert!(start.elapsed() < timeout + Duration::from_secs(1));
}

#[tokio::test]
async fn a_retry_after_a_failed_connect_does_not_double_the_checkout_timeout() {
    // Connection 0 takes 0.9 s and is then reset before its greeting; the
    // retry's connection would take 0.9 s more, past the 1.5 s of the call.
    let server = MockServer::start(
        ServerConfig::default().faults(vec![Some(Fault::AfterSent(0, FaultAction::Reset))]),
    )
    .unwrap();
    let timeout = Duration::from_millis(1500);
    let delay = Duration::from_millis(900);
    let (pool, connects) = pool_on(
        &server,
        PoolConfig::default()
            .retry_not_sent(true)
            .checkout_timeout(timeout),
        vec![delay, delay],
    );
    let start = Instant::now();
    let e = pool
        .send(&envelope("b@example.org"), &message(0))
        .await
        .unwrap_err();
    assert!(is_timeout(&e), "{e:?}");
    assert!(start.elapsed() < timeout + Duration::from_secs(1));
    assert_eq!(connects.load(Ordering::SeqCst), 2);
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn a_check_cut_short_by_the_deadline_costs_no_other_idle_session() {
    // Connection 0 goes silent at its first command (the NOOP check);
    // connection 1 behaves.
    let server = MockServer::start(
        ServerConfig::default().faults(vec![Some(Fault::AfterReceived(1, FaultAction::Stall))]),
    )
    .unwrap();
    let (pool, connects) = pool_on(
        &server,
        PoolConfig::default()
            .max_size(2)
            .check_after(Duration::ZERO)
            .checkout_timeout(Duration::from_millis(300)),
        Vec::new(),
    );
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    drop(a);
    drop(b);
    let e = pool.get().await.unwrap_err();
    assert!(is_timeout(&e), "{e:?}");
    assert_eq!(pool.idle_count(), 1, "the other session is still there");
    let _b = pool.get().await.unwrap();
    assert_eq!(connects.load(Ordering::SeqCst), 2);
}

// ----- 1. first come, first served -----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_waiters_on_many_threads_are_served_in_the_order_they_came() {
    const N: usize = 32;
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let (pool, connects) = pool_on(&server, PoolConfig::default().max_size(1), Vec::new());
    let held = pool.get().await.unwrap();
    let served = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..N {
        let (waiter, served) = (pool.clone(), served.clone());
        tasks.push(tokio::spawn(async move {
            let pooled = waiter.get().await.unwrap();
            served.lock().unwrap().push(i);
            // Holds it across a turn of the runtime, so that the others
            // really wait.
            tokio::task::yield_now().await;
            drop(pooled);
        }));
        assert!(until(WAIT, || pool.waiting() == i + 1).await);
    }
    drop(held);
    // Asking again at once, it comes after every waiter.
    let again = pool.get().await.unwrap();
    served.lock().unwrap().push(N);
    drop(again);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*served.lock().unwrap(), (0..=N).collect::<Vec<_>>());
    assert_eq!(connects.load(Ordering::SeqCst), 1);
}

// ----- 1. closing without waiting, and close() racing returns -----

#[tokio::test]
async fn expired_sessions_whose_server_never_answers_quit_cost_the_caller_nothing() {
    let script = Script::default()
        .send("220 quiet.example ESMTP")
        .expect_line()
        .silence(Duration::from_secs(20));
    let server = MockServer::start(ServerConfig::scripted(script)).unwrap();
    let (pool, connects) = pool_on(
        &server,
        PoolConfig::default()
            .max_size(4)
            .max_age(Duration::from_millis(50)),
        Vec::new(),
    );
    let held: Vec<_> = [pool.get().await, pool.get().await, pool.get().await]
        .into_iter()
        .map(Result::unwrap)
        .collect();
    drop(held);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    let _fresh = pool.get().await.unwrap();
    assert!(
        start.elapsed() < smtp_sansio::Timeouts::default().quit_linger,
        "{:?}",
        start.elapsed()
    );
    assert_eq!(connects.load(Ordering::SeqCst), 4);
    let linger = smtp_sansio::Timeouts::default().quit_linger + Duration::from_secs(2);
    let closed = until(linger, || {
        server.connection_logs().iter().take(3).all(|l| l.closed)
    })
    .await;
    assert!(closed);
    for log in server.connection_logs().iter().take(3) {
        assert_eq!(log.expected_lines, ["QUIT"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn close_racing_sessions_coming_back_leaves_none_without_quit() {
    const N: usize = 16;
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let (pool, _) = pool_on(&server, PoolConfig::default().max_size(N), Vec::new());
    let mut held = Vec::new();
    for _ in 0..N {
        held.push(pool.get().await.unwrap());
    }
    // Each task hands its session back a little later than the one before;
    // close() runs in the middle of them.
    let mut tasks = Vec::new();
    for (i, pooled) in held.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(5 * i as u64)).await;
            drop(pooled);
        }));
    }
    tokio::time::sleep(Duration::from_millis(5 * N as u64 / 2)).await;
    pool.close().await;
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(pool.idle_count(), 0);
    let all_closed = until(WAIT, || {
        let logs = server.connection_logs();
        logs.len() == N && logs.iter().all(|l| l.closed)
    })
    .await;
    assert!(all_closed);
    let without: Vec<usize> = (0..N).filter(|&i| !said_quit(&server, i)).collect();
    assert!(
        without.is_empty(),
        "connections closed without QUIT: {without:?}"
    );
}

#[test]
fn a_session_handed_back_after_close_outside_a_runtime_is_dropped_without_a_panic() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (pool, _) = pool_on(&server, PoolConfig::default(), Vec::new());
    let pooled = rt.block_on(async {
        let pooled = pool.get().await.unwrap();
        pool.close().await;
        pooled
    });
    // No runtime on this thread now: no task can QUIT it; the socket closes.
    drop(pooled);
    assert_eq!(server.wait_for_closed(1, WAIT), 1);
    assert!(!said_quit(&server, 0));
}

// ----- 2. what one borrower leaves behind -----

#[tokio::test]
async fn low_level_mail_and_rcpt_left_open_are_reset_before_the_next_borrower() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let (pool, connects) = pool_on(&server, PoolConfig::default().max_size(1), Vec::new());
    {
        let mut pooled = pool.get().await.unwrap();
        pooled.ehlo(None).await.unwrap();
        assert_eq!(pooled.mail("a@example.org", &[]).await.unwrap().code(), 250);
        assert_eq!(
            pooled.rcpt("stray@example.org", &[]).await.unwrap().code(),
            250
        );
    }
    let r = pool
        .send(&envelope("b@example.org"), &message(0))
        .await
        .unwrap();
    assert!(r.refused().is_empty());
    assert_eq!(connects.load(Ordering::SeqCst), 1);
    let stored = server.messages();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].rcpt_to, ["<b@example.org>"], "no stray recipient");
    let t = &server.connection_logs()[0].transcript;
    let rset = t.iter().position(|l| l == "C: RSET").expect("RSET sent");
    let second_mail = t.iter().rposition(|l| l.starts_with("C: MAIL")).unwrap();
    assert!(rset < second_mail, "{t:?}");
}

#[tokio::test]
async fn a_session_whose_reset_is_refused_is_quit_and_replaced() {
    let script = Script::default()
        .send("220 picky.example ESMTP")
        .expect_line()
        .send("250 picky.example")
        .expect_line()
        .send("250 2.1.0 Ok")
        .expect_line()
        .send("554 5.5.1 No")
        .expect_line()
        .send("221 2.0.0 Bye");
    let server = MockServer::start(ServerConfig::scripted(script)).unwrap();
    let (pool, connects) = pool_on(&server, PoolConfig::default().max_size(1), Vec::new());
    {
        let mut pooled = pool.get().await.unwrap();
        pooled.ehlo(None).await.unwrap();
        let r = pooled.mail("a@example.org", &[]).await.unwrap();
        assert_eq!(r.code(), 250);
    }
    let pooled = pool.get().await.unwrap();
    assert_eq!(connects.load(Ordering::SeqCst), 2, "a fresh connection");
    assert!(!pooled.in_transaction());
    assert!(until(WAIT, || server.connection_logs()[0].closed).await);
    let lines = &server.connection_logs()[0].expected_lines;
    let verbs: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(verbs, ["EHLO", "MAIL", "RSET", "QUIT"]);
}

#[tokio::test]
async fn a_send_cancelled_in_its_transaction_is_never_handed_out_again() {
    // The server goes silent once the body is under way.
    let server = MockServer::start(
        ServerConfig::default().faults(vec![Some(Fault::AfterReceived(80, FaultAction::Stall))]),
    )
    .unwrap();
    let (pool, connects) = pool_on(&server, PoolConfig::default().max_size(1), Vec::new());
    let big = vec![b'x'; 4096];
    let to = envelope("b@example.org");
    let send = pool.send(&to, &big);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), send)
            .await
            .is_err()
    );
    assert_eq!(pool.idle_count(), 0);
    let r = pool.send(&to, &message(1)).await.unwrap();
    assert!(r.refused().is_empty());
    assert_eq!(connects.load(Ordering::SeqCst), 2);
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
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

#[tokio::test]
async fn a_borrowers_transcript_writer_and_debug_level_stay_with_that_borrower() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let (pool, connects) = pool_on(&server, PoolConfig::default().max_size(1), Vec::new());
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
    let written = mine.len();
    assert!(written > 0);
    {
        let mut pooled = pool.get().await.unwrap();
        assert_eq!(
            pooled.debug_level(),
            smtp_tokio::DebugLevel::Off,
            "as connected"
        );
        assert!(!pooled.config().trace, "the core traces nothing");
        pooled
            .send(&envelope("c@example.org"), &message(1))
            .await
            .unwrap();
    }
    assert_eq!(
        mine.len(),
        written,
        "the next borrower's lines went elsewhere"
    );
    assert_eq!(connects.load(Ordering::SeqCst), 1);
}
