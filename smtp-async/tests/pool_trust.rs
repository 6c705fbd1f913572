//! What a pool guarantees its callers, end to end against the test server on
//! both async runtimes (each case is written once, generic over the runtime,
//! and run on Tokio and on async-std): waiting tasks are served first come,
//! first served; a checkout has a finite deadline by default, and a retry
//! after a send that outlived it gets none; expired sessions are closed with
//! QUIT without the caller waiting for their replies; a session handed back
//! after `close()` is closed with QUIT; a session left in a transaction is
//! reset before reuse, or closed when its RSET is refused; a send cancelled
//! in its transaction is never handed out again; a borrower's transcript
//! writer and debug level do not reach the next borrower. The same rules on
//! virtual time, at their exact edges: `pool_clock.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Rt, on_both, until, within};
use smtp_async::pool::Pool;
use smtp_async::{
    Envelope, Error, Options, PoolConfig, Poolable, Runtime, SmtpClient, smtp_sansio,
};
use smtp_async_std::AsyncStd;
use smtp_testkit::{Fault, FaultAction, MockServer, Script, ServerConfig};
use smtp_tokio::Tokio;

const WAIT: Duration = Duration::from_secs(10);

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

/// Whether the client of connection `i` said QUIT.
fn said_quit(server: &MockServer, i: usize) -> bool {
    server.connection_logs()[i]
        .transcript
        .iter()
        .any(|l| l == "C: QUIT")
}

// ----- first come, first served -----

async fn fifo<R: Rt>() {
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

// ----- one finite checkout deadline -----

#[test]
fn the_checkout_timeout_has_a_finite_default() {
    assert_eq!(
        PoolConfig::default().checkout_timeout,
        Some(Duration::from_secs(30))
    );
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
    // Idle for no time at all is too long: each session is expired when
    // the next checkout looks at it (the clock has moved on by then).
    let (pool, connects) = pool_with::<R>(
        &server,
        PoolConfig::default()
            .max_size(3)
            .idle_timeout(Duration::ZERO),
        options,
    );
    let held: Vec<_> = [pool.get().await, pool.get().await, pool.get().await]
        .into_iter()
        .map(Result::unwrap)
        .collect();
    drop(held);
    assert_eq!(pool.idle_count(), 3);
    let start = std::time::Instant::now();
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

async fn waiters_at_close<R: Rt>() {
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

async fn refused_reset<R: Runtime>() {
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
    let (pool, connects) = pool_on::<R>(&server, PoolConfig::default().max_size(1));
    {
        let mut pooled = pool.get().await.unwrap();
        pooled.ehlo(None).await.unwrap();
        let r = pooled.mail("a@example.org", &[]).await.unwrap();
        assert_eq!(r.code(), 250);
    }
    let pooled = pool.get().await.unwrap();
    assert_eq!(connects.load(Ordering::SeqCst), 2, "a fresh connection");
    assert!(!Poolable::in_transaction(&*pooled));
    assert!(until::<R>(WAIT, || server.connection_logs()[0].closed).await);
    let lines = &server.connection_logs()[0].expected_lines;
    let verbs: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(verbs, ["EHLO", "MAIL", "RSET", "QUIT"]);
}

#[test]
fn a_session_whose_reset_is_refused_is_quit_and_replaced() {
    on_both(refused_reset::<Tokio>(), refused_reset::<AsyncStd>());
}

async fn cancelled_send<R: Runtime>() {
    // The server goes silent once the body is under way.
    let server = MockServer::start(
        ServerConfig::default().faults(vec![Some(Fault::AfterReceived(80, FaultAction::Stall))]),
    )
    .unwrap();
    let (pool, connects) = pool_on::<R>(&server, PoolConfig::default().max_size(1));
    let big = vec![b'x'; 4096];
    let to = envelope("b@example.org");
    let send = pool.send(&to, &big);
    assert!(
        within::<R, _>(Duration::from_millis(200), send)
            .await
            .is_none()
    );
    assert_eq!(pool.idle_count(), 0);
    let r = pool.send(&to, &message(1)).await.unwrap();
    assert!(r.refused().is_empty());
    assert_eq!(connects.load(Ordering::SeqCst), 2);
}

#[test]
fn a_send_cancelled_in_its_transaction_is_never_handed_out_again() {
    on_both(cancelled_send::<Tokio>(), cancelled_send::<AsyncStd>());
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
        pooled.set_debug_level(2);
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
