//! The TLS handshake deadline and the QUIT linger come from the core's
//! `Timeouts`: their defaults, `Timeouts::uniform`, and the deadline the core
//! gives an adapter for the handshake after STARTTLS's 220.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use smtp_sansio::client::deadline_after;
use smtp_sansio::{Client, Config, Domain, Event, Op, Output, Timeouts};

#[test]
fn the_defaults_and_uniform_timeouts() {
    let d = Timeouts::default();
    assert_eq!(d.tls_handshake, Duration::from_secs(300));
    assert_eq!(d.quit_linger, Duration::from_secs(1));
    let u = Timeouts::uniform(Duration::from_secs(2));
    assert_eq!(u.tls_handshake, Duration::from_secs(2));
    assert_eq!(u.quit_linger, Duration::from_secs(1));
    let short = Timeouts::uniform(Duration::from_millis(300));
    assert_eq!(short.tls_handshake, Duration::from_millis(300));
    assert_eq!(short.quit_linger, Duration::from_millis(300));
    let forever = Timeouts::uniform(Duration::MAX);
    assert_eq!(forever.tls_handshake, Duration::MAX);
    assert_eq!(forever.quit_linger, Duration::from_secs(1));
}

#[test]
fn deadline_after_saturates() {
    let now = Instant::now();
    assert_eq!(
        deadline_after(now, Duration::from_secs(5)),
        now + Duration::from_secs(5)
    );
    assert!(deadline_after(now, Duration::MAX) > now + Duration::from_secs(10 * 365 * 86_400));
}

fn client(timeouts: Timeouts, now: Instant) -> Client {
    let mut cfg = Config::new(Domain::new("client.example").unwrap());
    cfg.timeouts = timeouts;
    Client::new(cfg, now)
}

/// Greets, sends STARTTLS and takes its 220 at `at`, up to the core's
/// request for the handshake.
fn up_to_the_handshake(c: &mut Client, op: Op<smtp_sansio::Reply>, at: Instant) {
    let mut server: Vec<&[u8]> = vec![b"250-mx\r\n250 STARTTLS\r\n", b"220 go ahead\r\n"];
    server.reverse();
    assert_eq!(c.tls_handshake_deadline(), None);
    loop {
        match c.drive(op) {
            Output::Wait(_) => c.handle_input(at, server.pop().unwrap()),
            Output::StartTls { .. } => return,
            Output::Transmit(_) | Output::Trace(_) => {}
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn the_handshake_deadline_runs_from_the_220_to_starttls() {
    let t0 = Instant::now();
    let mut t = Timeouts::default();
    t.tls_handshake = Duration::from_secs(7);
    t.quit_linger = Duration::from_millis(1500);
    let mut c = client(t, t0);
    assert_eq!(c.quit_deadline(t0), t0 + Duration::from_millis(1500));
    c.handle_input(t0, b"220 mx\r\n");
    let op = c.starttls(t0);
    let t1 = t0 + Duration::from_secs(1);
    up_to_the_handshake(&mut c, op, t1);
    assert_eq!(
        c.tls_handshake_deadline(),
        Some(t1 + Duration::from_secs(7))
    );
    c.tls_established(t1);
    assert_eq!(c.tls_handshake_deadline(), None);
    c.handle_input(t1, b"250 mx\r\n");
    loop {
        match c.drive(op) {
            Output::Event(Event::Completed { result, .. }) => {
                assert_eq!(result.unwrap().code(), 220);
                break;
            }
            Output::Transmit(_) | Output::Trace(_) => {}
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn the_handshake_and_quit_deadlines_saturate() {
    let now = Instant::now();
    let mut t = Timeouts::uniform(Duration::MAX);
    t.quit_linger = Duration::MAX;
    let mut c = client(t, now);
    assert!(c.quit_deadline(now) > now + Duration::from_secs(10 * 365 * 86_400));
    c.handle_input(now, b"220 mx\r\n");
    let op = c.starttls(now);
    up_to_the_handshake(&mut c, op, now);
    let d = c.tls_handshake_deadline().unwrap();
    assert!(d > now + Duration::from_secs(10 * 365 * 86_400));
}
