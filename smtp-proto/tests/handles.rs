//! What a driver hands the core besides bytes, pinned in the core (a mutation
//! run found each unpinned by the core's own tests): operation handles compare,
//! hash and print by their operation; `set_trace` turns trace lines on and off;
//! `recycle` reuses a written buffer without ever dropping pending bytes; and a
//! body chunk is written before the next one is asked for only past 32 KiB.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Instant;

use smtp_sansio::{Address, Client, Config, Domain, Event, Output, Transaction};

fn client() -> Client {
    Client::new(
        Config::new(Domain::new("client.example").unwrap()),
        Instant::now(),
    )
}

/// A client past its greeting and EHLO (the server offering `ehlo`), with
/// nothing left to write or read.
fn greeted(ehlo: &[u8]) -> Client {
    let now = Instant::now();
    let mut c = client();
    c.handle_input(now, b"220 mx\r\n");
    let _ehlo = c.ehlo(now, None);
    drain(&mut c);
    c.handle_input(now, ehlo);
    drain(&mut c);
    c
}

/// Everything the client has to say until it waits: the bytes written and
/// the trace lines.
fn drain(c: &mut Client) -> (Vec<u8>, usize) {
    let mut bytes = Vec::new();
    let mut traces = 0;
    for _ in 0..100 {
        match c.poll_output() {
            Output::Transmit(b) => bytes.extend_from_slice(&b),
            Output::Trace(_) => traces += 1,
            Output::Event(_) => {}
            Output::Wait(_) | Output::Closed => return (bytes, traces),
            other => panic!("{other:?}"),
        }
    }
    panic!("the client never waited");
}

fn hash_of<T: Hash>(t: &T) -> u64 {
    let mut h = DefaultHasher::new();
    t.hash(&mut h);
    h.finish()
}

#[test]
fn operation_handles_compare_hash_and_print_by_their_operation() {
    let now = Instant::now();
    let mut c = greeted(b"250 mx\r\n");
    let noop = c.noop(now);
    let other = c.noop(now);
    let same = noop;
    assert_eq!(noop, same);
    assert_ne!(noop, other);
    assert_eq!(hash_of(&noop), hash_of(&same));
    assert_ne!(hash_of(&noop), hash_of(&other));
    let set: HashSet<_> = [noop, other, same].into_iter().collect();
    assert_eq!(set.len(), 2);
    let shown = format!("{noop:?}");
    assert!(
        shown.starts_with("Op(") && shown.contains("Reply"),
        "{shown}"
    );
    assert_ne!(shown, format!("{other:?}"));
}

#[test]
fn set_trace_turns_trace_lines_on_and_off() {
    let now = Instant::now();
    let mut c = greeted(b"250 mx\r\n");
    let _quiet = c.noop(now);
    let (sent, traces) = drain(&mut c);
    assert_eq!((sent.as_slice(), traces), (&b"NOOP\r\n"[..], 0));
    c.handle_input(now, b"250 ok\r\n");
    assert_eq!(drain(&mut c).1, 0);

    c.set_trace(true);
    let _traced = c.noop(now);
    assert!(drain(&mut c).1 > 0, "no trace of NOOP");
    c.handle_input(now, b"250 ok\r\n");
    assert!(drain(&mut c).1 > 0, "no trace of its reply");

    c.set_trace(false);
    let _quiet = c.noop(now);
    assert_eq!(drain(&mut c).1, 0);
}

#[test]
fn a_recycled_buffer_is_reused_and_never_replaces_pending_bytes() {
    let now = Instant::now();
    let mut c = greeted(b"250 mx\r\n");
    // Bytes pending: a recycled buffer must not take their place.
    let _noop = c.noop(now);
    c.recycle(Vec::with_capacity(1 << 16));
    let (sent, _) = drain(&mut c);
    assert_eq!(sent, b"NOOP\r\n");
    c.handle_input(now, b"250 ok\r\n");
    drain(&mut c);

    // Nothing pending: the next write goes out in the recycled allocation,
    // and a smaller buffer recycled after it does not replace it.
    c.recycle(Vec::with_capacity(1 << 20));
    c.recycle(Vec::with_capacity(1 << 10));
    let _noop = c.noop(now);
    match c.poll_output() {
        Output::Transmit(b) => {
            assert_eq!(b, b"NOOP\r\n");
            assert!(b.capacity() >= 1 << 20, "capacity {}", b.capacity());
        }
        other => panic!("{other:?}"),
    }
}

/// After MAIL, RCPT and DATA's 354 (no PIPELINING), `chunk` is handed over
/// (not the last): whether the client then writes it before asking for the
/// next chunk.
fn written_before_the_next_chunk(chunk_len: usize) -> bool {
    let now = Instant::now();
    let mut c = greeted(b"250 mx\r\n");
    let tx = Transaction::new(
        Address::new("a@example.org").unwrap(),
        [Address::new("b@example.org").unwrap()],
    );
    let _send = c.send(now, tx);
    for reply in [&b"250 ok\r\n"[..], b"250 ok\r\n", b"354 go\r\n"] {
        drain(&mut c);
        c.handle_input(now, reply);
    }
    match c.poll_output() {
        Output::Event(Event::BodyWanted { .. }) => {}
        other => panic!("{other:?}"),
    }
    let line =
        b"0123456789012345678901234567890123456789012345678901234567890123456789012345678\r\n";
    let chunk: Vec<u8> = line.iter().copied().cycle().take(chunk_len).collect();
    c.send_body(now, &chunk, false).unwrap();
    match c.poll_output() {
        Output::Transmit(b) => {
            assert!(b.len() >= chunk_len, "{} bytes", b.len());
            true
        }
        Output::Event(Event::BodyWanted { .. }) => false,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_body_chunk_is_written_before_the_next_only_past_32_kib() {
    // Small chunks gather into one write; past 32 KiB pending, the bytes go
    // out before the next chunk is asked for.
    assert!(!written_before_the_next_chunk(4 * 1024));
    assert!(!written_before_the_next_chunk(30 * 1024));
    assert!(written_before_the_next_chunk(33 * 1024));
    assert!(written_before_the_next_chunk(64 * 1024));
}
