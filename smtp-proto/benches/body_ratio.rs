//! Body encoding next to a plain copy of the same bytes, as ratios taken in the
//! same run, made to hold on a busy machine: each round runs every operation
//! (memcpy, DATA, BDAT, `message_size`) on the same message many times in a row,
//! one after the other, keeps the best time of each (the run least disturbed by
//! other work), and prints encoder / memcpy for that round; the summary gives each ratio's range over the
//! rounds. The criterion benchmark (`core`) gives the distributions.
//!
//! ```sh
//! cargo bench -p smtp-sansio --bench body_ratio               # 5 rounds
//! cargo bench -p smtp-sansio --bench body_ratio -- --rounds 9
//! ```
//!
//! For an instruction profile, `--profile OP RUNS` (OP one of `memcpy`, `data`,
//! `bdat`, `size`) does only that operation, RUNS times, on the 1 MiB text of
//! 80-byte lines, and times nothing: run it under
//! `valgrind --tool=callgrind --cache-sim=no` with two values of RUNS and divide
//! the difference in instructions by the difference in runs.
//!
//! Messages: text of 80-byte lines (the `core` benchmark's), 1000-byte lines
//! (998 bytes and CRLF, RFC 5322's longest), and the text with bare LF line
//! endings; 1 MiB (in cache), encoded in 64 KiB chunks, and 64 MiB (larger than
//! the L2 cache).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use smtp_sansio::body::{BodyEncoder, LineEndings, message_size};

#[path = "support/session.rs"]
#[allow(dead_code)]
mod session;

/// 1000-byte lines of `size` bytes or a little more.
fn long_line_message(size: usize) -> Vec<u8> {
    let mut line = vec![b'x'; 998];
    line.extend_from_slice(b"\r\n");
    let mut m = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: bench\r\n\r\n".to_vec();
    while m.len() < size {
        m.extend_from_slice(&line);
    }
    m
}

/// The text message with LF line endings (as a Rust string usually has them):
/// every line ending gets its CR on the way.
fn lf_message(size: usize) -> Vec<u8> {
    let mut m = session::text_message(size);
    m.retain(|&b| b != b'\r');
    m
}

const CHUNK: usize = 64 * 1024;

/// The shortest of `runs` timings of `f`.
fn best(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// One round on one message: the best time of each operation, run `runs` times
/// in a row (warm, as criterion runs it).
fn round(msg: &[u8], out: &mut Vec<u8>, runs: usize) -> [Duration; 4] {
    let memcpy = best(runs, || {
        out.clear();
        out.extend_from_slice(black_box(msg));
        black_box(&out);
    });
    let data = best(runs, || {
        out.clear();
        let mut e = BodyEncoder::new(LineEndings::Normalize);
        for chunk in msg.chunks(CHUNK) {
            e.encode_data(chunk, out).unwrap();
        }
        e.finish_data(out).unwrap();
        black_box(&out);
    });
    let bdat = best(runs, || {
        out.clear();
        let mut e = BodyEncoder::new(LineEndings::Normalize);
        for chunk in msg.chunks(CHUNK) {
            e.encode_bdat(chunk, false, out).unwrap();
        }
        e.encode_bdat(&[], true, out).unwrap();
        black_box(&out);
    });
    let size = best(runs, || {
        black_box(message_size(black_box(msg), LineEndings::Normalize).unwrap());
    });
    [memcpy, data, bdat, size]
}

fn gib_per_s(bytes: usize, t: Duration) -> f64 {
    bytes as f64 / t.as_secs_f64() / f64::from(1u32 << 30)
}

/// `--profile OP RUNS`: OP on the 1 MiB text, RUNS times, untimed.
fn profile(op: &str, runs: usize) {
    let msg = session::text_message(1 << 20);
    let mut out = Vec::with_capacity(2 << 20);
    for _ in 0..runs {
        out.clear();
        match op {
            "memcpy" => out.extend_from_slice(black_box(&msg)),
            "data" => {
                let mut e = BodyEncoder::new(LineEndings::Normalize);
                for chunk in black_box(&msg).chunks(CHUNK) {
                    e.encode_data(chunk, &mut out).unwrap();
                }
                e.finish_data(&mut out).unwrap();
            }
            "bdat" => {
                let mut e = BodyEncoder::new(LineEndings::Normalize);
                for chunk in black_box(&msg).chunks(CHUNK) {
                    e.encode_bdat(chunk, false, &mut out).unwrap();
                }
                e.encode_bdat(&[], true, &mut out).unwrap();
            }
            "size" => {
                black_box(message_size(black_box(&msg), LineEndings::Normalize).unwrap());
            }
            _ => panic!("--profile memcpy|data|bdat|size RUNS"),
        }
        black_box(&out);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--profile") {
        let op = args.get(i + 1).expect("--profile OP RUNS");
        let runs = args.get(i + 2).map_or(1, |n| n.parse().expect("RUNS"));
        profile(op, runs);
        return;
    }
    // Run as a test (`cargo test --benches`): one quick round to show it works.
    let quick = !args.iter().any(|a| a == "--bench");
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .map_or(if quick { 1 } else { 5 }, |n| {
            n.parse().expect("--rounds N")
        });
    let cases: Vec<(&str, Vec<u8>, usize)> = vec![
        ("1 MiB, 80-byte lines", session::text_message(1 << 20), 300),
        ("1 MiB, 1000-byte lines", long_line_message(1 << 20), 300),
        ("1 MiB, 80-byte LF lines", lf_message(1 << 20), 300),
        ("64 MiB, 80-byte lines", session::text_message(64 << 20), 15),
        ("64 MiB, 1000-byte lines", long_line_message(64 << 20), 15),
    ];
    let mut out = Vec::with_capacity((64 << 20) * 2);
    // Per case, per round: DATA, BDAT and size ratios to memcpy.
    let mut ratios = vec![Vec::new(); cases.len()];
    for r in 0..rounds {
        println!("round {}", r + 1);
        for (k, (name, msg, runs)) in cases.iter().enumerate() {
            let runs = if quick { 1 } else { *runs };
            let [memcpy, data, bdat, size] = round(msg, &mut out, runs);
            let ratio = |t: Duration| memcpy.as_secs_f64() / t.as_secs_f64();
            let n = msg.len();
            println!(
                "  {name:24} memcpy {:6.2} GiB/s | DATA {:6.2} GiB/s {:4.0}% | BDAT {:6.2} GiB/s {:4.0}% | size {:6.2} GiB/s",
                gib_per_s(n, memcpy),
                gib_per_s(n, data),
                100.0 * ratio(data),
                gib_per_s(n, bdat),
                100.0 * ratio(bdat),
                gib_per_s(n, size),
            );
            ratios[k].push([ratio(data), ratio(bdat), ratio(size)]);
        }
    }
    println!("\nencoder / memcpy over {rounds} rounds (min-max)");
    for ((name, _, _), rs) in cases.iter().zip(&ratios) {
        let range = |i: usize| {
            let v = rs.iter().map(|r| 100.0 * r[i]);
            let lo = v.clone().fold(f64::MAX, f64::min);
            let hi = v.fold(0.0, f64::max);
            format!("{lo:.0}-{hi:.0}%")
        };
        println!(
            "  {name:24} DATA {:9} BDAT {:9} size {:10}",
            range(0),
            range(1),
            range(2)
        );
    }
}
