//! Micro-benchmarks of the core: reply parsing (MB/s over real-looking replies,
//! EHLO answers included), body encoding next to a plain copy of the same bytes,
//! and the client state machine per pipelined message.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use smtp_sansio::body::{BodyEncoder, LineEndings, message_size};
use smtp_sansio::{ReplyLimits, ReplyParser};

#[path = "support/session.rs"]
mod session;

use session::{Session, text_message};

fn reply_corpus() -> Vec<u8> {
    let one: &[u8] = b"220 mx.example.org ESMTP Postfix (Debian/GNU)\r\n\
250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n\
250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n\
250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown\r\n\
354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as 4XyZ1234abcd\r\n221 2.0.0 Bye\r\n";
    one.repeat(2000)
}

fn parse_all(input: &[u8]) -> usize {
    let mut p = ReplyParser::new(ReplyLimits::default());
    let mut pos = 0;
    let mut n = 0;
    while let Ok((used, Some(_))) = p.parse(&input[pos..]) {
        pos += used;
        n += 1;
    }
    n
}

fn benches(c: &mut Criterion) {
    let corpus = reply_corpus();
    let mut g = c.benchmark_group("reply");
    g.throughput(Throughput::Bytes(corpus.len() as u64));
    g.bench_function("parse", |b| b.iter(|| parse_all(black_box(&corpus))));
    g.finish();

    // In cache (1 MiB in and out fit the L2) and out of it (64 MiB), each next
    // to a plain copy of the same bytes: text of 80-byte lines, and 1000-byte
    // lines (the longest RFC 5322 allows), where line endings are 12 times
    // sparser.
    for (name, size, samples) in [("body_1MiB", 1 << 20, 100), ("body_64MiB", 64 << 20, 10)] {
        body_group(c, name, &text_message(size), samples);
    }
    body_group(c, "body_1MiB_long_lines", &long_line_message(1 << 20), 100);

    // One pipelined 1 KiB message through the state machine, server replies
    // included, no I/O: the CPU the core costs per message. (The allocations per
    // message are counted by tests/allocations.rs.)
    let mut g = c.benchmark_group("client");
    g.throughput(Throughput::Elements(1));
    for (name, chunking) in [
        ("message_1KiB_pipelined", false),
        ("message_1KiB_chunking", true),
    ] {
        let mut session = Session::new(chunking, text_message(1024));
        g.bench_function(name, |b| b.iter(|| black_box(session.send_one())));
    }
    g.finish();
}

/// 1000-byte lines (998 bytes and CRLF) of `size` bytes or a little more.
fn long_line_message(size: usize) -> Vec<u8> {
    let mut line = vec![b'x'; 998];
    line.extend_from_slice(b"\r\n");
    let mut m = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: bench\r\n\r\n".to_vec();
    while m.len() < size {
        m.extend_from_slice(&line);
    }
    m
}

/// DATA and BDAT encoding of `msg` in 64 KiB chunks, next to a plain copy, and
/// the size scan (`message_size`, no copy).
fn body_group(c: &mut Criterion, name: &str, msg: &[u8], samples: usize) {
    let mut out = Vec::with_capacity(msg.len() * 2);
    let mut g = c.benchmark_group(name);
    g.sample_size(samples);
    g.throughput(Throughput::Bytes(msg.len() as u64));
    g.bench_function("memcpy", |b| {
        b.iter(|| {
            out.clear();
            out.extend_from_slice(black_box(msg));
        });
    });
    g.bench_function("encode_data", |b| {
        b.iter(|| {
            out.clear();
            let mut e = BodyEncoder::new(LineEndings::Normalize);
            for chunk in msg.chunks(64 * 1024) {
                e.encode_data(chunk, &mut out).unwrap();
            }
            e.finish_data(&mut out).unwrap();
        });
    });
    g.bench_function("encode_bdat", |b| {
        b.iter(|| {
            out.clear();
            let mut e = BodyEncoder::new(LineEndings::Normalize);
            for chunk in msg.chunks(64 * 1024) {
                e.encode_bdat(chunk, false, &mut out).unwrap();
            }
            e.encode_bdat(&[], true, &mut out).unwrap();
        });
    });
    g.bench_function("message_size", |b| {
        b.iter(|| message_size(black_box(msg), LineEndings::Normalize).unwrap());
    });
    g.finish();
}

criterion_group!(core, benches);
criterion_main!(core);
