//! `Client::message_size_if_used`: the SIZE= value is computed only when it can
//! be used, because computing it reads the whole message once more.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use smtp_sansio::body::LineEndings;
use smtp_sansio::{Client, Config, Output, UsageError};

/// A session that has read the greeting and the EHLO reply `ehlo`.
fn after_ehlo(ehlo: &[u8], line_endings: LineEndings) -> Client {
    let now = Instant::now();
    let mut config = Config::default();
    config.line_endings = line_endings;
    let mut c = Client::new(config, now);
    c.handle_input(now, b"220 mx.example ESMTP\r\n");
    let _id = c.ehlo(now, None);
    drain(&mut c);
    c.handle_input(now, ehlo);
    drain(&mut c);
    assert!(c.capabilities().is_some());
    c
}

fn drain(c: &mut Client) {
    loop {
        match c.poll_output() {
            Output::Wait(_) | Output::Closed => return,
            _ => {}
        }
    }
}

const MESSAGE: &[u8] = b"Subject: x\r\n\r\nline one\nline two\r\n";
/// The message once its bare LF becomes CRLF.
const NORMALISED: u64 = MESSAGE.len() as u64 + 1;

#[test]
fn not_computed_when_the_server_does_not_offer_size() {
    let c = after_ehlo(
        b"250-mx.example\r\n250 PIPELINING\r\n",
        LineEndings::Normalize,
    );
    assert_eq!(c.message_size_if_used(MESSAGE).unwrap(), None);
}

#[test]
fn computed_when_size_is_offered() {
    let c = after_ehlo(
        b"250-mx.example\r\n250-SIZE 10240000\r\n250 PIPELINING\r\n",
        LineEndings::Normalize,
    );
    assert_eq!(c.message_size_if_used(MESSAGE).unwrap(), Some(NORMALISED));
}

#[test]
fn computed_before_ehlo() {
    let now = Instant::now();
    let mut c = Client::new(Config::default(), now);
    c.handle_input(now, b"220 mx.example ESMTP\r\n");
    drain(&mut c);
    assert_eq!(c.message_size_if_used(MESSAGE).unwrap(), Some(NORMALISED));
}

#[test]
fn still_checked_when_bare_line_endings_are_refused() {
    let c = after_ehlo(b"250-mx.example\r\n250 PIPELINING\r\n", LineEndings::Reject);
    assert!(matches!(
        c.message_size_if_used(MESSAGE),
        Err(UsageError::BareLineEnding { .. })
    ));
    let clean = b"Subject: x\r\n\r\nbody\r\n";
    assert_eq!(
        c.message_size_if_used(clean).unwrap(),
        Some(clean.len() as u64)
    );
}
