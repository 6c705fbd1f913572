//! A session on both runtimes (each case written once, generic over the
//! runtime): a cancelled call leaves it broken, not out of step; a body
//! streamed from a reader; connecting by name from a source address, and to
//! a closed port; the deadline timer set once for a run of messages;
//! smtplib's debug levels; many tasks sharing a pool of three sessions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Rt, on_both, options, within};
use smtp_async::{Envelope, Options, PoolConfig, SmtpClient};
use smtp_async_std::AsyncStd;
use smtp_testkit::{MockServer, Script, ServerConfig, Step};
use smtp_tokio::Tokio;

async fn cancelled_call<R: Rt>() {
    let server = MockServer::start(ServerConfig::scripted(
        Script::default()
            .send("220 mx")
            .expect_line()
            .then(Step::Sleep(Duration::from_millis(500)))
            .send("250 late"),
    ))
    .unwrap();
    let mut c = SmtpClient::<R>::connect(&server.addr().to_string(), options())
        .await
        .unwrap();
    let cancelled = within::<R, _>(Duration::from_millis(50), c.noop()).await;
    assert!(cancelled.is_none());
    assert!(!c.is_usable());
    // The late 250 must not be taken as the answer to this NOOP.
    assert!(c.noop().await.is_err());
}

#[test]
fn cancelled_call_leaves_the_session_broken_not_out_of_step() {
    on_both(cancelled_call::<Tokio>(), cancelled_call::<AsyncStd>());
}

async fn streamed_body<R: Rt>() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let mut c = SmtpClient::<R>::connect(&server.addr().to_string(), options())
        .await
        .unwrap();
    let mut body = b"Subject: big\r\n\r\n".to_vec();
    while body.len() < 1 << 20 {
        body.extend_from_slice(b".line with a leading dot and some text to fill it up\r\n");
    }
    let envelope = Envelope::parse("a@example.org", &["b@example.org"]).unwrap();
    let r = c.send_from_reader(&envelope, &mut &body[..]).await.unwrap();
    assert!(r.chunked);
    c.quit().await.unwrap();
    assert!(server.wait_for_messages(1, Duration::from_secs(5))[0].data == body);
}

#[test]
fn streamed_body_from_an_async_reader() {
    on_both(streamed_body::<Tokio>(), streamed_body::<AsyncStd>());
}

async fn by_name_from_a_source<R: Rt>() {
    // A host name goes through the lookup, a source address through the bound
    // connect; the default EHLO name shows which local address was used.
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let port = server.addr().port();
    let mut o = Options::default();
    o.source_address = Some("127.0.0.2:0".parse().unwrap());
    let mut c = SmtpClient::<R>::connect(&format!("localhost:{port}"), o)
        .await
        .unwrap();
    c.ehlo_or_helo_if_needed().await.unwrap();
    c.quit().await.unwrap();
    assert_eq!(server.wait_for_closed(1, Duration::from_secs(5)), 1);
    let transcript = server.transcript();
    assert!(
        transcript.iter().any(|l| l == "C: EHLO [127.0.0.2]"),
        "{transcript:?}"
    );
}

#[test]
fn connects_by_name_from_a_source_address() {
    on_both(
        by_name_from_a_source::<Tokio>(),
        by_name_from_a_source::<AsyncStd>(),
    );
}

async fn closed_port<R: Rt>() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut o = Options::default();
    o.timeout = Some(Duration::from_secs(30));
    let r = SmtpClient::<R>::connect(&format!("127.0.0.1:{port}"), o).await;
    match r {
        Err(e) => assert_eq!(
            e.io_error().map(std::io::Error::kind),
            Some(std::io::ErrorKind::ConnectionRefused),
            "{e}"
        ),
        Ok(_) => panic!("expected a refused connection"),
    }
}

#[test]
fn a_closed_port_is_refused_at_once() {
    on_both(closed_port::<Tokio>(), closed_port::<AsyncStd>());
}

/// The deadline timer is set once for a run of messages, not before every wait
/// (each set wakes the reactor).
async fn timer_sets<R: Rt>() {
    let server = MockServer::start(ServerConfig::default().extensions(&["PIPELINING"])).unwrap();
    let mut c = SmtpClient::<R>::connect(&server.addr().to_string(), Options::default())
        .await
        .unwrap();
    let sets = c.timer_sets();
    for i in 0..20 {
        let m = format!("Subject: {i}\r\n\r\nx\r\n");
        c.sendmail("a@example.org", &["b@example.org"], m.as_bytes())
            .await
            .unwrap();
    }
    let more = c.timer_sets() - sets;
    assert!(more <= 2, "{}: {more} timer sets", R::NAME);
    c.quit().await.unwrap();
}

#[test]
fn the_deadline_timer_is_not_set_again_for_every_wait() {
    on_both(timer_sets::<Tokio>(), timer_sets::<AsyncStd>());
}

/// smtplib's debug levels: 2 timestamps every transcript line, 1 does not,
/// 0 writes nothing; AUTH payloads never appear.
async fn debug_levels<R: Rt>() {
    use smtp_testkit::debug::{self, SharedWriter};
    let server = MockServer::start(debug::auth_server()).unwrap();
    let mut c = SmtpClient::<R>::connect(&server.addr().to_string(), options())
        .await
        .unwrap();
    let out = SharedWriter::new();
    c.set_transcript(Box::new(out.clone()));
    c.set_debug_level(2);
    assert!(c.login(debug::USER, debug::WRONG_PASSWORD).await.is_err());
    c.login_with(
        debug::USER,
        debug::PASSWORD,
        smtp_async::InitialResponse::Wait,
    )
    .await
    .unwrap();
    c.noop().await.unwrap();
    let level2 = out.text();
    out.clear();
    c.set_debug_level(1);
    c.noop().await.unwrap();
    let level1 = out.text();
    out.clear();
    c.set_debug_level(0);
    c.noop().await.unwrap();
    debug::check_auth_session(&level2, &level1, &out.text()).unwrap();
}

#[test]
fn debug_level_2_timestamps_and_auth_redaction() {
    on_both(debug_levels::<Tokio>(), debug_levels::<AsyncStd>());
}

/// Eight tasks send 25 messages each through a pool of at most three
/// sessions: each message arrives exactly once, on at most three
/// connections.
async fn eight_tasks<R: Rt>() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let addr = server.addr().to_string();
    let pool = smtp_async::Pool::<R>::new(PoolConfig::default().max_size(3), move || {
        let addr = addr.clone();
        async move { SmtpClient::<R>::connect(&addr, Options::default()).await }
    });
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for t in 0..8 {
        let (pool, done) = (pool.clone(), done.clone());
        R::start(async move {
            for i in 0..25 {
                let msg = format!("Subject: {t}/{i}\r\n\r\nx\r\n");
                let mut s = pool.get().await.unwrap();
                s.sendmail("a@example.org", &["b@example.org"], msg.as_bytes())
                    .await
                    .unwrap();
            }
            done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
    }
    let all = common::until::<R>(Duration::from_secs(20), || {
        done.load(std::sync::atomic::Ordering::SeqCst) == 8
    })
    .await;
    assert!(all, "every task finished");
    let got = server.wait_for_messages(200, Duration::from_secs(20));
    let mut subjects: Vec<String> = got
        .iter()
        .map(|m| String::from_utf8_lossy(&m.data).into_owned())
        .collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), 200, "every message exactly once");
    assert_eq!(got.len(), 200);
    assert!(
        server.connections() <= 3,
        "{} connections",
        server.connections()
    );
    assert!(pool.idle_count() <= 3);
}

#[test]
fn pool_eight_tasks_two_hundred_messages_through_three_sessions() {
    on_both(eight_tasks::<Tokio>(), eight_tasks::<AsyncStd>());
}
