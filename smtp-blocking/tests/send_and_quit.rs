//! `send_and_quit` over real sockets: QUIT pipelined behind the message, the
//! message's result, and the bounded wait for the 221.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::mpsc;
use std::time::Duration;

use smtp_blocking::{Delivery, Envelope, Options, SmtpClient};
use smtp_testkit::{MockServer, Script, ServerConfig};

const MSG: &[u8] = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: t\r\n\r\nbody\r\n";
const WAIT: Duration = Duration::from_secs(10);

fn opts(timeout: Duration) -> Options {
    let mut o = Options::default();
    o.timeout = Some(timeout);
    o
}

fn envelope() -> Envelope {
    Envelope::parse("a@example.org", &["b@example.org"]).unwrap()
}

/// Runs `f` on a thread; `None` if it has not returned within `WAIT`.
fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    within_for(WAIT, f)
}

/// Runs `f` on a thread; `None` if it has not returned within `limit`.
fn within_for<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).ok()
}

/// A server that reads the whole session, QUIT included, before answering
/// anything after EHLO: only a client that pipelines QUIT behind the
/// message gets its replies. Then it answers QUIT with `quit_reply`, or not
/// at all.
fn pipelining_server(chunking: bool, quit_reply: Option<&str>) -> MockServer {
    let ehlo = if chunking {
        "250-testkit\r\n250-PIPELINING\r\n250 CHUNKING"
    } else {
        "250-testkit\r\n250 PIPELINING"
    };
    let mut script = Script::default()
        .send("220 testkit")
        .expect_line()
        .send(ehlo);
    script = if chunking {
        script
            .read_until(b"QUIT\r\n")
            .send("250 ok\r\n250 ok\r\n250 2.0.0 queued as Q1")
    } else {
        script
            .read_until(b"DATA\r\n")
            .send("250 ok\r\n250 ok\r\n354 go")
            .read_until(b"\r\n.\r\nQUIT\r\n")
            .send("250 2.0.0 queued as Q1")
    };
    script = match quit_reply {
        Some(r) => script.send(r),
        None => script.silence(Duration::from_secs(30)),
    };
    MockServer::start(ServerConfig::scripted(script)).unwrap()
}

#[test]
fn quit_goes_behind_the_message_and_the_result_is_the_message_s() {
    for chunking in [false, true] {
        let server = pipelining_server(chunking, Some("221 bye"));
        let addr = server.addr().to_string();
        let r = within(move || {
            let c = SmtpClient::connect(&addr, opts(WAIT)).unwrap();
            c.send_and_quit(&envelope(), MSG)
        })
        .expect("the client did not wait for the message's reply before QUIT");
        let r = r.unwrap();
        assert_eq!(r.final_reply.unwrap().text(), "2.0.0 queued as Q1");
        server.wait_for_finished(1, WAIT);
        let raw = String::from_utf8(server.raw()[0].clone()).unwrap();
        assert!(raw.ends_with("QUIT\r\n") && !raw.contains("RSET"), "{raw}");
    }
}

#[test]
fn the_wait_for_the_221_is_bounded_by_the_linger() {
    for chunking in [false, true] {
        let server = pipelining_server(chunking, None);
        // The session's own timeout is far longer than the test waits.
        let c =
            SmtpClient::connect(&server.addr().to_string(), opts(Duration::from_secs(60))).unwrap();
        // The linger (1 s) plus 1 s.
        let limit = Duration::from_secs(1) + Duration::from_secs(1);
        let r = within_for(limit, move || c.send_and_quit(&envelope(), MSG))
            .expect("send_and_quit waited past its linger");
        assert_eq!(r.unwrap().final_reply.unwrap().code(), 250);
        assert_eq!(server.wait_for_finished(1, WAIT), 1, "the client closed");
    }
}

#[test]
fn a_refused_message_is_reported_and_the_session_ends() {
    let server = MockServer::start(ServerConfig::default().fail_data_with(451)).unwrap();
    let c = SmtpClient::connect(&server.addr().to_string(), opts(WAIT)).unwrap();
    let e = c.send_and_quit(&envelope(), MSG).unwrap_err();
    assert_eq!(e.delivery(), Delivery::Refused, "{e:?}");
    server.wait_for_finished(1, WAIT);
    let t = &server.connection_logs()[0].transcript;
    assert_eq!(t.iter().filter(|l| *l == "C: QUIT").count(), 1, "{t:?}");
    assert!(!t.iter().any(|l| l == "C: RSET"), "{t:?}");
}

#[test]
fn without_pipelining_quit_follows_the_message_s_reply() {
    let server = MockServer::start(ServerConfig::default().extensions(&["8BITMIME"])).unwrap();
    let c = SmtpClient::connect(&server.addr().to_string(), opts(WAIT)).unwrap();
    let r = c.send_and_quit(&envelope(), MSG).unwrap();
    assert!(r.refused().is_empty());
    assert_eq!(server.wait_for_messages(1, WAIT).len(), 1);
    server.wait_for_finished(1, WAIT);
    let t = &server.connection_logs()[0].transcript;
    assert_eq!(
        t.last().map(String::as_str),
        Some("S: 221 2.0.0 Bye"),
        "{t:?}"
    );
}
