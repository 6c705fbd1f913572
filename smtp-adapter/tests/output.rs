//! What a person reads from the adapter layer: errors that name the server
//! and say their cause once (in `Display`, never also as `source()`), a
//! transcript with the server's control characters escaped, and a `Debug`
//! of the session that never shows a buffered AUTH payload.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::error::Error as _;
use std::io::{ErrorKind, Write};
use std::sync::{Arc, Mutex};

use smtp_adapter::args::Body;
use smtp_adapter::net::Peer;
use smtp_adapter::{Call, Driver, Error, InitialResponse, Io, Link, Options, Server, Transcript};
use smtp_sansio::{Completion, Delivery, Op, Reply, Trace};

fn mx() -> Server {
    Server::new("mx.example.org", Some(25)).with_addr(Some("192.0.2.7:25".parse().unwrap()))
}

#[test]
fn io_tls_and_timeout_errors_name_the_server() {
    let refused = Error::Io(ErrorKind::ConnectionRefused.into()).connecting_to(&mx());
    assert_eq!(
        refused.to_string(),
        "connecting to mx.example.org:25 (192.0.2.7:25): connection refused"
    );
    // What a caller branches on is still there.
    assert_eq!(
        refused.io_error().map(std::io::Error::kind),
        Some(ErrorKind::ConnectionRefused)
    );
    assert!(matches!(refused.inner(), Error::Io(_)));
    assert_eq!(refused.server(), Some(&mx()));
    assert_eq!(refused.delivery(), Delivery::NotSent);

    let timeout = Error::timeout("the reply to MAIL").with_server(&mx());
    assert_eq!(
        timeout.to_string(),
        "mx.example.org:25 (192.0.2.7:25): timed out waiting for the reply to MAIL"
    );
    assert!(matches!(
        timeout.inner(),
        Error::Smtp(smtp_sansio::Error::Timeout(_))
    ));
    let gone = Error::Smtp(smtp_sansio::Error::Disconnected).with_server(&mx());
    assert_eq!(
        gone.to_string(),
        "mx.example.org:25 (192.0.2.7:25): server disconnected"
    );
    let reset = Error::Io(ErrorKind::ConnectionReset.into()).with_server(&mx());
    assert_eq!(
        reset.to_string(),
        "mx.example.org:25 (192.0.2.7:25): connection reset"
    );

    // Named once: a second boundary leaves it as it is.
    let twice = refused.with_server(&Server::new("other.example", Some(587)));
    assert!(
        twice
            .to_string()
            .starts_with("connecting to mx.example.org:25")
    );
    assert!(matches!(twice.inner(), Error::Io(_)));

    // An answer from the server or a misuse is not about the connection.
    let answer = Error::Smtp(smtp_sansio::Error::DataRefused(Reply::new(
        554,
        vec!["no".into()],
    )))
    .with_server(&mx());
    assert!(answer.server().is_none());
    assert_eq!(answer.to_string(), "message refused: 554 no");
    assert_eq!(answer.delivery(), Delivery::Refused);
}

#[test]
fn the_server_shows_what_is_known_of_it() {
    let at = |name: &str, port, addr: Option<&str>| {
        Server::new(name, port)
            .with_addr(addr.map(|a| a.parse().unwrap()))
            .to_string()
    };
    assert_eq!(at("mx.example.org", Some(25), None), "mx.example.org:25");
    assert_eq!(
        at("192.0.2.7", Some(25), Some("192.0.2.7:25")),
        "192.0.2.7:25"
    );
    assert_eq!(at("::1", Some(25), Some("[::1]:25")), "[::1]:25");
    assert_eq!(
        at("localhost", Some(25), Some("[::1]:25")),
        "localhost:25 ([::1]:25)"
    );
    assert_eq!(at("/run/lmtp.sock", None, None), "/run/lmtp.sock");
    // A name from a caller's stream, escaped like all text shown.
    assert_eq!(at("mx\u{1b}[2J", None, None), r"mx\x1b[2J");
}

#[test]
fn display_shows_the_cause_and_source_returns_none() {
    let io = std::io::Error::other("the cable is out");
    let errors = vec![
        Error::Io(io),
        Error::Io(ErrorKind::ConnectionRefused.into()).connecting_to(&mx()),
        Error::timeout("the TLS handshake").with_server(&mx()),
        Error::TlsUnavailable("built without TLS"),
        Error::NoRootCertificates("none in the store".into()),
        Error::InvalidServerName("a b".into()),
        Error::Smtp(smtp_sansio::Error::Uncertain {
            cause: Box::new(smtp_sansio::Error::Disconnected),
            recipients: Vec::new(),
        }),
    ];
    #[cfg(feature = "tls")]
    let errors = {
        let mut errors = errors;
        errors.push(Error::Tls(rustls::Error::General("bad record".into())));
        errors.push(Error::Tls(rustls::Error::General("bad record".into())).with_server(&mx()));
        errors
    };
    for e in &errors {
        assert!(e.source().is_none(), "{e}: source {:?}", e.source());
    }
    assert_eq!(errors[0].to_string(), "I/O error: the cable is out");
    assert!(errors[6].to_string().ends_with("server disconnected"));
    #[cfg(feature = "tls")]
    assert_eq!(
        errors[8].to_string(),
        "mx.example.org:25 (192.0.2.7:25): TLS error: unexpected error: bad record"
    );
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn transcript_lines_never_carry_a_control_character() {
    // Lines as a core that did not escape would give them.
    let hostile = "\u{1b}[2J\u{7}\r\0\u{7f}\u{9b}";
    for level in [1, 2] {
        let buffer = Buffer::default();
        let mut t = Transcript::new(level);
        t.set_writer(Box::new(buffer.clone()));
        t.line(&Trace::Received(format!("220 mx{hostile}")));
        t.line(&Trace::Sent(format!("NOOP {hostile}")));
        let out = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let controls: Vec<char> = out
            .chars()
            .filter(|c| c.is_control() && *c != '\n')
            .collect();
        assert!(controls.is_empty(), "{out:?}");
        assert!(
            out.contains(r"S: 220 mx\x1b[2J\x07\x0d\x00\x7f\u{9b}"),
            "{out}"
        );
        assert!(out.contains(r"C: NOOP \x1b[2J"), "{out}");
    }
}

/// Drives `op` to its end through the driver, answering each read with the
/// next block and taking every write.
fn serve<T: Completion>(d: &mut Driver, op: Op<T>, server: &mut std::slice::Iter<'_, &[u8]>) -> T {
    d.begin().unwrap();
    loop {
        match d.next(op, &mut Body::<()>::None) {
            Io::Read { buf, .. } => {
                let block = server.next().unwrap();
                buf[..block.len()].copy_from_slice(block);
                d.read_done(Ok(block.len()));
            }
            Io::Write { .. } => d.write_done(Ok(()), 0),
            Io::Done(result) => return result.unwrap(),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn driver_debug_never_shows_a_buffered_auth_payload() {
    // Base64 of "\0alice\0correct horse battery staple".
    let payload = "AGFsaWNlAGNvcnJlY3QgaG9yc2UgYmF0dGVyeSBzdGFwbGU=";
    let mut options = Options::default();
    options.local_name = Some("client.example".into());
    let ip = "192.0.2.7".parse().unwrap();
    let mut link = Link::new(mx(), Peer::Tcp(ip), "mx.example.org");
    // An encrypted session (implicit TLS), where AUTH PLAIN may go.
    link.implicit_tls = Some(false);
    let mut driver = Driver::new(&options, link).unwrap();
    let blocks: Vec<&[u8]> = vec![b"220 mx\r\n", b"250-mx\r\n250 AUTH PLAIN\r\n"];
    let mut server = blocks.iter();
    serve(&mut driver, Op::GREETING, &mut server);
    let ehlo = driver.start(Call::Ehlo(None)).unwrap();
    serve(&mut driver, ehlo, &mut server);
    let login = Call::Login(
        "alice",
        "correct horse battery staple",
        InitialResponse::Send,
    );
    let login = driver.start(login).unwrap();
    let shown = format!("{driver:?} {driver:#?}");
    let as_bytes = format!("{:?}", payload.as_bytes());
    let as_bytes = as_bytes.trim_start_matches('[').trim_end_matches(']');
    for secret in [payload, "correct horse", as_bytes] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    // It was buffered: it is what the driver has written next.
    driver.begin().unwrap();
    let Io::Write { bytes, .. } = driver.next(login, &mut Body::<()>::None) else {
        panic!("no AUTH to write")
    };
    assert_eq!(bytes, format!("AUTH PLAIN {payload}\r\n").as_bytes());
}

/// A driver past its greeting, to `mx` over a remote TCP peer.
fn greeted() -> Driver {
    let mut options = Options::default();
    options.local_name = Some("client.example".into());
    let link = Link::new(
        mx(),
        Peer::Tcp("192.0.2.7".parse().unwrap()),
        "mx.example.org",
    );
    let mut driver = Driver::new(&options, link).unwrap();
    let blocks: Vec<&[u8]> = vec![b"220 mx\r\n"];
    serve(&mut driver, Op::GREETING, &mut blocks.iter());
    driver
}

/// Asks the driver until `op` is done, noting each step; the transport does
/// nothing (every step but a close would be a test failure).
fn finish<T: Completion>(driver: &mut Driver, op: Op<T>) -> (Vec<String>, Result<T, Error>) {
    let mut steps = Vec::new();
    loop {
        match driver.next(op, &mut Body::<()>::None) {
            Io::Done(r) => return (steps, r),
            other => steps.push(format!("{other:?}")),
        }
        assert!(steps.len() < 8, "{steps:?}");
    }
}

#[test]
fn a_write_that_times_out_closes_the_transport_and_names_the_wait() {
    let mut driver = greeted();
    let noop = driver.start(Call::Noop).unwrap();
    driver.begin().unwrap();
    let Io::Write { bytes, .. } = driver.next(noop, &mut Body::<()>::None) else {
        panic!("NOOP not written")
    };
    assert_eq!(bytes, b"NOOP\r\n");
    // The socket's write timeout fired after two bytes.
    driver.write_done(Err(ErrorKind::WouldBlock.into()), 2);
    let (steps, result) = finish(&mut driver, noop);
    assert!(
        !steps.is_empty() && steps.iter().all(|s| s == "Close"),
        "{steps:?}"
    );
    let e = result.unwrap_err();
    assert!(
        matches!(
            e.inner(),
            Error::Smtp(smtp_sansio::Error::Timeout("writing to the server"))
        ),
        "{e:?}"
    );
    assert_eq!(e.server(), Some(&mx()));
    assert!(driver.is_closed() && !driver.is_usable());
}

#[test]
fn the_reply_to_quit_is_awaited_no_longer_than_the_linger() {
    let mut deadlines = Vec::new();
    for linger in [false, true] {
        let mut driver = greeted();
        let quit = driver.start(Call::Quit).unwrap();
        driver.begin().unwrap();
        let Io::Write { .. } = driver.next(quit, &mut Body::<()>::None) else {
            panic!("QUIT not written")
        };
        driver.write_done(Ok(()), 6);
        if linger {
            driver.linger();
        }
        let Io::Read { deadline, .. } = driver.next(quit, &mut Body::<()>::None) else {
            panic!("no read for the reply to QUIT")
        };
        deadlines.push(deadline);
        if linger {
            assert!(deadline <= driver.quit_deadline(std::time::Instant::now()));
        }
    }
    // The reply timeout (minutes) without the linger, the linger (a second)
    // with it.
    assert!(deadlines[1] < deadlines[0], "{deadlines:?}");
}
