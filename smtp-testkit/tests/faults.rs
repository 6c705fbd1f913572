//! The faults the sweep relies on, driven by raw sockets: a refusal then a
//! reset or close, a reset once the client is idle, a 421 to the message.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use smtp_testkit::{Fault, FaultAction, MockServer, ServerConfig};

const WAIT: Duration = Duration::from_secs(10);

/// Reads until the end of the stream or an error; the bytes, and whether it
/// ended with an error (a reset) rather than a clean end.
fn read_to_end_or_error(s: &mut TcpStream) -> (Vec<u8>, bool) {
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (got, false),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (got, true),
        }
    }
}

/// Reads until `text` has arrived.
fn read_until(s: &mut TcpStream, text: &str) -> String {
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains(text) {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "{:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn a_refusal_goes_out_then_the_next_command_meets_a_reset() {
    let server = MockServer::start(
        ServerConfig::default()
            .refuse_recipient("x@example.org")
            .fault(Fault::AfterRefusal(FaultAction::Reset)),
    )
    .unwrap();
    let mut s = TcpStream::connect(server.addr()).unwrap();
    // Pipelined: every reply to the group goes out before the fault.
    s.write_all(b"EHLO me\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<x@example.org>\r\nDATA\r\n")
        .unwrap();
    let text = read_until(&mut s, "554 ");
    assert!(text.contains("550 5.1.1 <x@example.org>"), "{text}");
    // The reset may come before RSET is written, or meet it. When it came
    // first, the write reports it (and the socket's error is then spent: the
    // next read sees only the end of the stream).
    let write_failed = s.write_all(b"RSET\r\n").and_then(|()| s.flush()).is_err();
    let (rest, read_failed) = read_to_end_or_error(&mut s);
    assert!(
        write_failed || read_failed,
        "a reset: {:?}",
        String::from_utf8_lossy(&rest)
    );
    assert!(rest.is_empty(), "RSET is not answered");
}

#[test]
fn a_refusal_then_a_close() {
    let server = MockServer::start(
        ServerConfig::default()
            .refuse_sender("a@example.org")
            .fault(Fault::AfterRefusal(FaultAction::Close)),
    )
    .unwrap();
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.write_all(b"EHLO me\r\nMAIL FROM:<a@example.org>\r\n")
        .unwrap();
    let (got, reset) = read_to_end_or_error(&mut s);
    let text = String::from_utf8_lossy(&got);
    assert!(!reset, "{text}");
    assert!(
        text.ends_with("553 5.7.1 <a@example.org> sender refused\r\n"),
        "{text}"
    );
}

#[test]
fn a_421_to_the_message_closes_and_stores_nothing() {
    let server = MockServer::start(ServerConfig::default().fail_data_with(421)).unwrap();
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.write_all(
        b"EHLO me\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nBDAT 4 LAST\r\nhi\r\nNOOP\r\n",
    )
    .unwrap();
    let (got, reset) = read_to_end_or_error(&mut s);
    let text = String::from_utf8_lossy(&got);
    assert!(!reset, "{text}");
    assert!(
        text.ends_with("421 4.3.2 service shutting down, closing\r\n"),
        "{text}"
    );
    server.wait_for_finished(1, WAIT);
    assert!(server.messages().is_empty());
}

#[test]
fn a_421_then_a_reset_when_asked() {
    let server = MockServer::start(
        ServerConfig::default()
            .fail_data_with(421)
            .fault(Fault::AfterRefusal(FaultAction::Reset)),
    )
    .unwrap();
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.write_all(
        b"EHLO me\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nBDAT 4 LAST\r\nhi\r\nNOOP\r\n",
    )
    .unwrap();
    let (got, reset) = read_to_end_or_error(&mut s);
    let text = String::from_utf8_lossy(&got);
    assert!(reset, "{text}");
    assert!(
        text.ends_with("421 4.3.2 service shutting down, closing\r\n"),
        "{text}"
    );
}

#[test]
fn a_reset_once_idle_logs_everything_the_client_wrote_first() {
    // The fault strikes after "EHLO me\r\n"; what the client writes after it,
    // before going quiet, is read and logged, then the reset comes.
    let server = MockServer::start(
        ServerConfig::default().fault(Fault::AfterReceived(9, FaultAction::ResetWhenIdle)),
    )
    .unwrap();
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.write_all(b"EHLO me\r\n").unwrap();
    read_until(&mut s, "250 ");
    let start = Instant::now();
    s.write_all(b"MAIL FROM:<a@example.org>\r\n").unwrap();
    let (got, reset) = read_to_end_or_error(&mut s);
    assert!(reset, "{:?}", String::from_utf8_lossy(&got));
    assert!(got.is_empty(), "MAIL is not answered");
    assert!(start.elapsed() < WAIT);
    server.wait_for_finished(1, WAIT);
    assert_eq!(
        server.connection_logs()[0].received,
        b"EHLO me\r\nMAIL FROM:<a@example.org>\r\n"
    );
}
