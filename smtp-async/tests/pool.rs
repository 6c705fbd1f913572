//! The pool end to end, against the test server, on both runtimes (each
//! case written once, generic over the runtime): messages per connection and
//! the QUIT of a session at its limit, `close`, a cancelled call, the retry
//! of a message that was not sent (opt-in, or on a session reused without a
//! check) and none of one whose end went out, and the checks before reuse as
//! the server sees them (a NOOP only after `check_after`, else a probe that
//! reads a server's 421 and end of stream). The limits in time (idle time,
//! age, the checkout deadline) are checked on virtual time in
//! `pool_clock.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Rt, on_both, sleep, within};
use smtp_async::pool::Pool;
use smtp_async::{
    Delivery, Envelope, Error, Options, PoolConfig, PoolError, Runtime, SmtpClient, smtp_sansio,
};
use smtp_async_std::AsyncStd;
use smtp_testkit::{Fault, FaultAction, MockServer, ServerConfig};
use smtp_tokio::Tokio;

const WAIT: Duration = Duration::from_secs(10);

type P<R> = Pool<SmtpClient<R>, Error>;

fn opts() -> Options {
    let mut o = Options::default();
    o.timeout = Some(WAIT);
    o
}

/// A pool on `server` and the count of connections it made.
fn pool_on<R: Runtime>(server: &MockServer, config: PoolConfig) -> (P<R>, Arc<AtomicUsize>) {
    let addr = server.addr().to_string();
    let connects = Arc::new(AtomicUsize::new(0));
    let counter = connects.clone();
    let pool = Pool::new(config, move || {
        let addr = addr.clone();
        counter.fetch_add(1, Ordering::SeqCst);
        async move { SmtpClient::<R>::connect(&addr, opts()).await }
    });
    (pool, connects)
}

fn envelope() -> Envelope {
    Envelope::parse("a@example.org", &["b@example.org"]).unwrap()
}

fn message(n: usize) -> Vec<u8> {
    format!("Subject: pool {n}\r\n\r\nbody {n}\r\n").into_bytes()
}

/// Whether connection `i`'s client said QUIT.
fn quit_on(server: &MockServer, i: usize) -> bool {
    server.wait_for_finished(i + 1, WAIT);
    server.connection_logs()[i]
        .transcript
        .iter()
        .any(|l| l == "C: QUIT")
}

async fn max_messages<R: Runtime>() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let (pool, connects) = pool_on::<R>(&server, PoolConfig::default().max_size(1).max_messages(3));
    for n in 0..7 {
        pool.send(&envelope(), &message(n)).await.unwrap();
    }
    assert_eq!(connects.load(Ordering::SeqCst), 3, "3 + 3 + 1 messages");
    assert!(quit_on(&server, 0) && quit_on(&server, 1));
    let per_conn: Vec<usize> = (0..3)
        .map(|c| {
            server
                .messages()
                .iter()
                .filter(|m| m.connection == c)
                .count()
        })
        .collect();
    assert_eq!(per_conn, [3, 3, 1]);
}

#[test]
fn max_messages_per_connection_then_quit_and_reconnect() {
    on_both(max_messages::<Tokio>(), max_messages::<AsyncStd>());
}

async fn close_quits<R: Runtime>() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let (pool, connects) = pool_on::<R>(&server, PoolConfig::default().max_size(3));
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    let busy = pool.get().await.unwrap();
    drop(a);
    drop(b);
    assert_eq!(pool.idle_count(), 2);
    pool.close().await;
    assert!(pool.is_closed());
    assert_eq!(pool.idle_count(), 0);
    server.wait_for_finished(2, WAIT);
    let quits = (0..3)
        .filter(|&i| {
            server.connection_logs()[i]
                .transcript
                .iter()
                .any(|l| l == "C: QUIT")
        })
        .count();
    assert_eq!(quits, 2, "the two idle sessions said QUIT");
    // A session in use when the pool closed does not go back to it.
    drop(busy);
    assert_eq!(pool.idle_count(), 0);
    let e = pool.get().await.unwrap_err();
    assert_eq!(Error::from(PoolError::Closed).to_string(), e.to_string());
    assert!(pool.send(&envelope(), &message(0)).await.is_err());
    assert_eq!(connects.load(Ordering::SeqCst), 3);
}

#[test]
fn close_quits_idle_sessions_and_refuses_checkouts() {
    on_both(close_quits::<Tokio>(), close_quits::<AsyncStd>());
}

async fn cancelled_call<R: Runtime>() {
    // The server goes silent once the body is under way, so the send cannot
    // finish; its future is dropped.
    let server = MockServer::start(
        ServerConfig::default().fault(Fault::AfterReceived(80, FaultAction::Stall)),
    )
    .unwrap();
    let (pool, connects) = pool_on::<R>(&server, PoolConfig::default().max_size(1));
    let mut pooled = pool.get().await.unwrap();
    let big = vec![b'x'; 4096];
    let to = envelope();
    let send = pooled.send(&to, &big);
    assert!(
        within::<R, _>(Duration::from_millis(100), send)
            .await
            .is_none()
    );
    assert!(!pooled.is_usable());
    drop(pooled);
    assert_eq!(pool.idle_count(), 0);
    let _fresh = pool.get().await.unwrap();
    assert_eq!(connects.load(Ordering::SeqCst), 2);
}

#[test]
fn a_cancelled_call_is_never_handed_out_again() {
    on_both(cancelled_call::<Tokio>(), cancelled_call::<AsyncStd>());
}

/// A server with `config` after a session without a fault sent `messages`
/// messages to it and quit (on a thread and runtime of its own).
fn clean_run(config: ServerConfig, messages: usize) -> MockServer {
    let server = MockServer::start(config).unwrap();
    let addr = server.addr().to_string();
    std::thread::spawn(move || {
        AsyncStd::block_on(&(), async {
            let mut c = SmtpClient::<AsyncStd>::connect(&addr, opts())
                .await
                .unwrap();
            for n in 0..messages {
                c.send(&envelope(), &message(n)).await.unwrap();
            }
            c.quit().await.unwrap();
        });
    })
    .join()
    .unwrap();
    server.wait_for_finished(1, WAIT);
    server
}

/// The offset in the server's output where the reply to the end of the first
/// message starts, from a run without a fault.
fn before_final_reply() -> usize {
    let server = clean_run(ServerConfig::default(), 1);
    let sent = &server.connection_logs()[0].sent;
    String::from_utf8_lossy(sent)
        .find("250 2.0.0 Ok: queued")
        .unwrap()
}

async fn unknown_not_retried<R: Runtime>() {
    let at = before_final_reply();
    let server = MockServer::start(
        ServerConfig::default().faults(vec![Some(Fault::AfterSent(at, FaultAction::Close))]),
    )
    .unwrap();
    let (pool, connects) = pool_on::<R>(
        &server,
        PoolConfig::default().max_size(1).retry_not_sent(true),
    );
    let e = pool.send(&envelope(), &message(0)).await.unwrap_err();
    assert_eq!(e.delivery(), Delivery::Unknown, "{e:?}");
    assert_eq!(connects.load(Ordering::SeqCst), 1, "never sent twice");
    assert_eq!(pool.idle_count(), 0, "the session ended");
    assert_eq!(server.messages().len(), 1, "the server had it after all");
}

#[test]
fn a_message_whose_delivery_is_unknown_is_not_retried_and_its_session_not_reused() {
    on_both(
        unknown_not_retried::<Tokio>(),
        unknown_not_retried::<AsyncStd>(),
    );
}

async fn retry_421<R: Runtime>() {
    // The first connection answers 421 to MAIL (EHLO is its first command);
    // the next one behaves.
    let faults = vec![Some(Fault::Reply421After(1))];
    let server = MockServer::start(ServerConfig::default().faults(faults.clone())).unwrap();
    let (pool, connects) = pool_on::<R>(
        &server,
        PoolConfig::default().max_size(1).retry_not_sent(true),
    );
    let r = pool.send(&envelope(), &message(0)).await.unwrap();
    assert!(r.refused().is_empty());
    assert_eq!(connects.load(Ordering::SeqCst), 2);
    let stored = server.messages();
    assert_eq!(stored.len(), 1, "once");
    assert_eq!(stored[0].connection, 1);

    // Without the opt-in the error comes back, and says the message was not
    // sent.
    let server = MockServer::start(ServerConfig::default().faults(faults)).unwrap();
    let (pool, connects) = pool_on::<R>(&server, PoolConfig::default().max_size(1));
    let e = pool.send(&envelope(), &message(0)).await.unwrap_err();
    assert_eq!(e.delivery(), Delivery::NotSent);
    assert!(matches!(
        e.inner(),
        Error::Smtp(smtp_sansio::Error::ServiceClosing { .. })
    ));
    assert_eq!(connects.load(Ordering::SeqCst), 1);
    assert!(server.messages().is_empty());
}

#[test]
fn a_421_before_the_end_is_retried_on_a_fresh_connection_when_asked() {
    on_both(retry_421::<Tokio>(), retry_421::<AsyncStd>());
}

async fn retry_lost<R: Runtime>() {
    // Connection 0 is reset after 20 bytes (in EHLO or the envelope: without
    // CHUNKING the message waits for 354); connection 1 refuses the
    // recipient of the second message: a refusal is an answer, not retried.
    let server = MockServer::start(
        ServerConfig::default()
            .extensions(&["PIPELINING", "8BITMIME"])
            .refuse_recipient("nobody@example.org")
            .faults(vec![Some(Fault::AfterReceived(20, FaultAction::Reset))]),
    )
    .unwrap();
    let (pool, connects) = pool_on::<R>(
        &server,
        PoolConfig::default().max_size(1).retry_not_sent(true),
    );
    pool.send(&envelope(), &message(0)).await.unwrap();
    assert_eq!(connects.load(Ordering::SeqCst), 2);
    let to_nobody = Envelope::parse("a@example.org", &["nobody@example.org"]).unwrap();
    let e = pool.send(&to_nobody, &message(1)).await.unwrap_err();
    assert_eq!(e.delivery(), Delivery::Refused);
    assert_eq!(
        connects.load(Ordering::SeqCst),
        2,
        "no retry after a refusal"
    );
}

#[test]
fn a_connection_lost_before_the_body_is_retried_and_a_refusal_is_not() {
    on_both(retry_lost::<Tokio>(), retry_lost::<AsyncStd>());
}

/// The NOOPs the server got, on every connection.
fn noops(server: &MockServer) -> usize {
    server
        .connection_logs()
        .iter()
        .flat_map(|l| &l.transcript)
        .filter(|l| *l == "C: NOOP")
        .count()
}

async fn no_noop<R: Runtime>() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let (pool, connects) = pool_on::<R>(
        &server,
        PoolConfig::default()
            .max_size(1)
            .check_after(Duration::from_secs(3600)),
    );
    for n in 0..3 {
        pool.send(&envelope(), &message(n)).await.unwrap();
    }
    pool.close().await;
    server.wait_for_finished(1, WAIT);
    assert_eq!(connects.load(Ordering::SeqCst), 1);
    assert_eq!(noops(&server), 0, "no round trip before a reuse");
    assert_eq!(server.messages().len(), 3);
}

#[test]
fn a_session_idle_less_than_check_after_is_reused_without_a_noop() {
    on_both(no_noop::<Tokio>(), no_noop::<AsyncStd>());
}

async fn checked<R: Runtime>() {
    // check_after zero: before every reuse, as lettre does.
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let (pool, _) = pool_on::<R>(
        &server,
        PoolConfig::default()
            .max_size(1)
            .check_after(Duration::ZERO),
    );
    for n in 0..3 {
        pool.send(&envelope(), &message(n)).await.unwrap();
    }
    assert_eq!(noops(&server), 2, "one NOOP per reuse");

    // Idle for check_after or longer, and not: pool_clock.rs, on virtual
    // time.

    // Checks off: never.
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let (pool, _) = pool_on::<R>(
        &server,
        PoolConfig::default()
            .max_size(1)
            .check_after(Duration::ZERO)
            .health_check(false),
    );
    pool.send(&envelope(), &message(0)).await.unwrap();
    let pooled = pool.get().await.unwrap();
    assert!(pooled.unchecked());
    drop(pooled);
    assert_eq!(noops(&server), 0);
}

#[test]
fn a_session_idle_check_after_or_longer_is_checked() {
    on_both(checked::<Tokio>(), checked::<AsyncStd>());
}

async fn probe_dead<R: Runtime>() {
    // The server answers 421 and closes a connection idle for 50 ms; the
    // pool reuses without a check (idle for less than an hour) but its probe
    // reads the 421 and the end, so the message goes on a fresh connection.
    let server =
        MockServer::start(ServerConfig::default().idle_close(Duration::from_millis(50))).unwrap();
    let (pool, connects) = pool_on::<R>(
        &server,
        PoolConfig::default()
            .max_size(1)
            .check_after(Duration::from_secs(3600)),
    );
    pool.send(&envelope(), &message(0)).await.unwrap();
    assert_eq!(server.wait_for_closed(1, WAIT), 1, "the server closed it");
    // Idle time in the runtime: its reactor takes in the 421 and the end of
    // stream that already arrived (the blocking wait above gave it no turn).
    sleep::<R>(Duration::from_millis(10)).await;
    let pooled = pool.get().await.unwrap();
    assert_eq!(
        connects.load(Ordering::SeqCst),
        2,
        "the probe found the idle session dead before any send"
    );
    drop(pooled);
    let r = pool.send(&envelope(), &message(1)).await.unwrap();
    assert!(r.refused().is_empty());
    assert_eq!(connects.load(Ordering::SeqCst), 2);
    assert_eq!(noops(&server), 0);
    let stored = server.messages();
    assert_eq!(stored.len(), 2, "each message once");
    assert_eq!(stored[1].connection, 1);
    let t = &server.connection_logs()[0].transcript;
    assert_eq!(
        t.iter().filter(|l| l.starts_with("C: MAIL")).count(),
        1,
        "nothing of the second message went to the dead connection: {t:?}"
    );
}

#[test]
fn a_session_the_server_closed_while_idle_is_replaced_without_a_noop() {
    on_both(probe_dead::<Tokio>(), probe_dead::<AsyncStd>());
}

/// The offset in what the server received where the second message of a
/// connection starts, from a run without a fault, with `extensions`.
fn second_mail_at(extensions: &[&str]) -> usize {
    let server = clean_run(ServerConfig::default().extensions(extensions), 2);
    let received = &server.connection_logs()[0].received;
    String::from_utf8_lossy(received)
        .rfind("MAIL FROM")
        .unwrap()
}

async fn lost_unchecked<R: Runtime>() {
    // The server closes the first connection once the first byte of the
    // second message's MAIL arrived: the probe saw nothing, the pipelined
    // MAIL, RCPT and DATA went out, and the end of stream came before the
    // end of the message went out: not sent, so sent again on a fresh
    // connection, without the opt-in.
    let ext = ["PIPELINING", "8BITMIME"];
    let at = second_mail_at(&ext);
    let server = MockServer::start(
        ServerConfig::default()
            .extensions(&ext)
            .faults(vec![Some(Fault::AfterReceived(at + 1, FaultAction::Close))]),
    )
    .unwrap();
    let (pool, connects) = pool_on::<R>(
        &server,
        PoolConfig::default()
            .max_size(1)
            .check_after(Duration::from_secs(3600)),
    );
    pool.send(&envelope(), &message(0)).await.unwrap();
    let r = pool.send(&envelope(), &message(1)).await.unwrap();
    assert!(r.refused().is_empty());
    assert_eq!(connects.load(Ordering::SeqCst), 2);
    let stored = server.messages();
    assert_eq!(stored.len(), 2, "each message once: {stored:?}");
    assert_eq!((stored[0].connection, stored[1].connection), (0, 1));

    // The same with a 421 in place of the reply to MAIL (and CHUNKING: the
    // whole message went out behind MAIL, but the 421 answers MAIL, so the
    // server closed before it took the message).
    let server =
        MockServer::start(ServerConfig::default().faults(vec![Some(Fault::Reply421After(4))]))
            .unwrap();
    let (pool, connects) = pool_on::<R>(&server, PoolConfig::default().max_size(1));
    pool.send(&envelope(), &message(0)).await.unwrap();
    pool.send(&envelope(), &message(1)).await.unwrap();
    assert_eq!(connects.load(Ordering::SeqCst), 2);
    assert_eq!(server.messages().len(), 2);
}

#[test]
fn a_session_lost_as_a_message_starts_is_retried_once_when_unchecked() {
    on_both(lost_unchecked::<Tokio>(), lost_unchecked::<AsyncStd>());
}

async fn lost_after_end<R: Runtime>() {
    // With CHUNKING, MAIL, RCPT and BDAT LAST leave in one write: the end of
    // the message went out before the end of stream came, so its fate is
    // unknown and it is not sent again, checked or not.
    let at = second_mail_at(smtp_testkit::DEFAULT_EXTENSIONS);
    let server = MockServer::start(
        ServerConfig::default()
            .faults(vec![Some(Fault::AfterReceived(at + 1, FaultAction::Close))]),
    )
    .unwrap();
    let (pool, connects) = pool_on::<R>(
        &server,
        PoolConfig::default()
            .max_size(1)
            .check_after(Duration::from_secs(3600)),
    );
    pool.send(&envelope(), &message(0)).await.unwrap();
    let e = pool.send(&envelope(), &message(1)).await.unwrap_err();
    assert_eq!(e.delivery(), Delivery::Unknown, "{e:?}");
    assert_eq!(connects.load(Ordering::SeqCst), 1, "never sent twice");
    assert_eq!(server.messages().len(), 1);
}

#[test]
fn an_unchecked_session_lost_after_the_end_went_out_is_not_retried() {
    on_both(lost_after_end::<Tokio>(), lost_after_end::<AsyncStd>());
}
