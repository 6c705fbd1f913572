//! Arbitrary bytes in arbitrary chunks into the reply parser: no panic, the
//! unconsumed tail never exceeds the line limit, and chunking never changes the
//! result.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_sansio::{ReplyLimits, ReplyParser};

fn run(data: &[u8], step: usize, limits: ReplyLimits) -> (Vec<(u16, Vec<String>)>, bool) {
    let mut parser = ReplyParser::new(limits);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for piece in data.chunks(step.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match parser.parse(&buf) {
                Err(_) => return (out, true),
                Ok((used, reply)) => {
                    buf.drain(..used);
                    match reply {
                        Some(r) => out.push((r.code(), r.lines().map(str::to_owned).collect::<Vec<_>>())),
                        None => break,
                    }
                }
            }
        }
        assert!(buf.len() < limits.max_line_len);
    }
    (out, false)
}

fuzz_target!(|input: (u8, u8, &[u8])| {
    let (step, small, data) = input;
    let mut limits = ReplyLimits::default();
    if small & 1 == 1 {
        limits.max_line_len = 64;
        limits.max_lines = 4;
        limits.max_total = 200;
    }
    let whole = run(data, data.len(), limits);
    let chunked = run(data, usize::from(step % 17) + 1, limits);
    assert_eq!(whole, chunked);
});
