//! Connecting within one budget: Happy Eyeballs (RFC 8305) as a schedule on a
//! virtual clock, the race against a fake connector whose first addresses
//! blackhole, the bounded name resolution, and on loopback a refused first
//! address that falls back to the second.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use smtp_adapter::Error;
use smtp_adapter::net::{
    Attempt, CONNECTION_ATTEMPT_DELAY, HappyEyeballs, connect_addr, connect_first, resolve_before,
};

fn a(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn is_timeout(e: &Error) -> bool {
    matches!(e, Error::Smtp(smtp_sansio::Error::Timeout(_)))
}

#[track_caller]
fn start(race: &mut HappyEyeballs, now: Instant) -> SocketAddr {
    match race.next(now) {
        Attempt::Start(addr, left) => {
            assert_eq!(left, race.deadline() - now);
            addr
        }
        other => panic!("expected an attempt to start, got {other:?}"),
    }
}

#[track_caller]
fn wait(race: &mut HappyEyeballs, now: Instant) -> Instant {
    match race.next(now) {
        Attempt::Wait(until) => until,
        other => panic!("expected a wait, got {other:?}"),
    }
}

#[test]
fn addresses_are_interleaved_by_family_the_first_ones_first() {
    let now = Instant::now();
    let addrs = vec![
        a("[2001:db8::1]:25"),
        a("[2001:db8::2]:25"),
        a("[2001:db8::3]:25"),
        a("198.51.100.1:25"),
        a("198.51.100.2:25"),
    ];
    let race = HappyEyeballs::new("mx", addrs.clone(), None, now, now);
    assert_eq!(
        race.order(),
        [addrs[0], addrs[3], addrs[1], addrs[4], addrs[2]]
    );
    let v4_first = vec![addrs[3], addrs[0], addrs[1]];
    let race = HappyEyeballs::new("mx", v4_first, None, now, now);
    assert_eq!(race.order(), [addrs[3], addrs[0], addrs[1]]);
    // A source address keeps its own family only.
    let source = Some(a("192.0.2.7:0"));
    let race = HappyEyeballs::new("mx", addrs.clone(), source, now, now);
    assert_eq!(race.order(), [addrs[3], addrs[4]]);
    let source = Some(a("[2001:db8::7]:0"));
    let race = HappyEyeballs::new("mx", addrs.clone(), source, now, now);
    assert_eq!(race.order(), [addrs[0], addrs[1], addrs[2]]);
}

#[test]
fn a_new_attempt_starts_every_250_ms_or_at_once_when_one_fails() {
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(10);
    let ms = |n| t0 + Duration::from_millis(n);
    let addrs = vec![
        a("[2001:db8::1]:25"),
        a("[2001:db8::2]:25"),
        a("198.51.100.1:25"),
    ];
    let mut race = HappyEyeballs::new("mx", addrs, None, t0, deadline);
    assert_eq!(CONNECTION_ATTEMPT_DELAY, Duration::from_millis(250));
    assert_eq!(start(&mut race, t0), a("[2001:db8::1]:25"));
    assert_eq!(wait(&mut race, t0), ms(250));
    // An early wake-up starts nothing.
    assert_eq!(wait(&mut race, ms(100)), ms(250));
    assert_eq!(start(&mut race, ms(250)), a("198.51.100.1:25"));
    assert_eq!(wait(&mut race, ms(250)), ms(500));
    // A failure starts the next attempt at once.
    race.failed(ms(300), io::ErrorKind::ConnectionRefused.into());
    assert_eq!(start(&mut race, ms(300)), a("[2001:db8::2]:25"));
    // Nothing left to start: wait for the pending ones until the deadline.
    assert_eq!(wait(&mut race, ms(600)), deadline);
    race.failed(ms(700), io::ErrorKind::ConnectionRefused.into());
    assert_eq!(wait(&mut race, ms(700)), deadline);
    race.failed(ms(800), io::ErrorKind::ConnectionReset.into());
    match race.next(ms(800)) {
        Attempt::Failed(Error::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_deadline_ends_the_race_and_no_usable_address_is_an_error() {
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(1);
    let mut race = HappyEyeballs::new("mx", vec![a("198.51.100.1:25")], None, t0, deadline);
    let _ = start(&mut race, t0);
    assert_eq!(wait(&mut race, t0), deadline);
    match race.next(deadline) {
        Attempt::Failed(e) => assert!(is_timeout(&e), "{e:?}"),
        other => panic!("{other:?}"),
    }
    let v6_only = vec![a("[2001:db8::1]:25")];
    let mut race = HappyEyeballs::new("mx", v6_only, Some(a("192.0.2.7:0")), t0, deadline);
    match race.next(t0) {
        Attempt::Failed(Error::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::NotFound),
        other => panic!("{other:?}"),
    }
}

/// A fake connector: addresses in 2001:db8::/32 and 198.51.100.0/24 never
/// answer (the attempt sleeps out the time it was given, as a blackholed SYN
/// does, then times out); any other address connects at once. Nothing
/// touches the network.
fn fake(addr: SocketAddr, left: Duration) -> io::Result<SocketAddr> {
    let blackhole = match addr {
        SocketAddr::V6(v6) => v6.ip().segments()[..2] == [0x2001, 0xdb8],
        SocketAddr::V4(v4) => v4.ip().octets()[..3] == [198, 51, 100],
    };
    if blackhole {
        std::thread::sleep(left);
        Err(io::ErrorKind::TimedOut.into())
    } else {
        Ok(addr)
    }
}

#[test]
fn a_blackholed_first_address_loses_to_the_next_after_the_attempt_delay() {
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(5);
    let addrs = vec![
        a("[2001:db8::1]:25"),
        a("[2001:db8::2]:25"),
        a("203.0.113.9:25"),
    ];
    let race = HappyEyeballs::new("mx", addrs, None, t0, deadline);
    let winner = connect_first(race, fake).unwrap();
    assert_eq!(winner, a("203.0.113.9:25"));
    let took = t0.elapsed();
    assert!(took >= CONNECTION_ATTEMPT_DELAY, "{took:?}");
    // Generous: the second attempt starts 250 ms in and connects at once.
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn addresses_that_all_blackhole_share_one_deadline() {
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(1);
    let addrs = vec![
        a("[2001:db8::1]:25"),
        a("198.51.100.1:25"),
        a("[2001:db8::2]:25"),
        a("198.51.100.2:25"),
    ];
    let race = HappyEyeballs::new("mx", addrs, None, t0, deadline);
    let e = connect_first(race, fake).unwrap_err();
    assert!(is_timeout(&e), "{e:?}");
    let took = t0.elapsed();
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn name_resolution_ends_at_the_deadline() {
    let t0 = Instant::now();
    let slow = || {
        std::thread::sleep(Duration::from_secs(10));
        Ok(vec![a("127.0.0.1:25")])
    };
    let e = resolve_before(t0 + Duration::from_millis(300), slow).unwrap_err();
    assert!(is_timeout(&e), "{e:?}");
    let took = t0.elapsed();
    assert!(took < Duration::from_millis(1300), "{took:?}");
    let quick = || Ok(vec![a("127.0.0.1:25")]);
    let got = resolve_before(t0 + Duration::from_secs(5), quick).unwrap();
    assert_eq!(got, [a("127.0.0.1:25")]);
    let failing = || Err(io::ErrorKind::NotFound.into());
    match resolve_before(t0 + Duration::from_secs(5), failing).unwrap_err() {
        Error::Io(e) => assert_eq!(e.kind(), io::ErrorKind::NotFound),
        other => panic!("{other:?}"),
    }
}

#[test]
fn on_loopback_a_refused_first_address_falls_back_to_the_second() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let live = listener.local_addr().unwrap();
    let refused = {
        let closed = TcpListener::bind("127.0.0.1:0").unwrap();
        closed.local_addr().unwrap()
    };
    let connect = |addr, left| connect_addr(addr, None, left);
    let budget = Duration::from_secs(5);
    let t0 = Instant::now();
    let race = HappyEyeballs::new("localhost", vec![refused, live], None, t0, t0 + budget);
    let stream = connect_first(race, connect).unwrap();
    assert_eq!(stream.peer_addr().unwrap(), live);
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    // Both refused: the last refusal is the error, well before the deadline.
    drop(listener);
    let t0 = Instant::now();
    let race = HappyEyeballs::new("localhost", vec![refused, live], None, t0, t0 + budget);
    match connect_first(race, connect).unwrap_err() {
        Error::Io(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused),
        other => panic!("{other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
}
