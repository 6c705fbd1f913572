//! The body encoder and `message_size` next to a byte-at-a-time reference, over
//! messages long enough to reach every path of the scan: short lines (checked in
//! blocks), long lines and long runs without a line ending (found with `memchr2`,
//! a window at a time, with pauses to copy), and the switches between them; cut
//! into chunks of any size, from one byte to more than the 64 KiB a caller
//! typically hands over.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use smtp_sansio::UsageError;
use smtp_sansio::body::{BodyEncoder, LineEndings, message_size};

/// The message as it must arrive: bare CR and LF as CRLF, CRLF added at the end
/// of a non-empty message that lacks one.
fn normalised(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + 2);
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        if b == b'\r' && input.get(i + 1) == Some(&b'\n') {
            out.extend_from_slice(b"\r\n");
            i += 2;
            continue;
        }
        if b == b'\r' || b == b'\n' {
            out.extend_from_slice(b"\r\n");
        } else {
            out.push(b);
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// DATA, one byte at a time: the normalised message with a dot added before every
/// dot that starts a line, then the terminating line.
fn reference_data(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut line_start = true;
    for &b in &normalised(input) {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = b == b'\n';
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Offset of the first CR or LF that is not part of a CRLF pair.
fn first_bare(input: &[u8]) -> Option<u64> {
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        if b == b'\r' && input.get(i + 1) == Some(&b'\n') {
            i += 2;
            continue;
        }
        if b == b'\r' || b == b'\n' {
            return Some(i as u64);
        }
        i += 1;
    }
    None
}

/// `input` cut into pieces of the given sizes, taken in turn until all is used.
fn split<'a>(input: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = input;
    for &n in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at(n.clamp(1, rest.len()));
        out.push(piece);
        rest = tail;
    }
    out
}

fn encode_data(pieces: &[&[u8]], le: LineEndings) -> Result<Vec<u8>, UsageError> {
    let mut enc = BodyEncoder::new(le);
    let mut wire = Vec::new();
    for piece in pieces {
        enc.encode_data(piece, &mut wire)?;
    }
    enc.finish_data(&mut wire)?;
    Ok(wire)
}

/// The BDAT payloads joined, checking each command line on the way.
fn encode_bdat(pieces: &[&[u8]], le: LineEndings) -> Result<Vec<u8>, UsageError> {
    let mut enc = BodyEncoder::new(le);
    let mut payload = Vec::new();
    let mut wire = Vec::new();
    let last = pieces.len().saturating_sub(1);
    for (k, piece) in pieces.iter().enumerate() {
        wire.clear();
        let n = enc.encode_bdat(piece, k == last, &mut wire)? as usize;
        let data = &wire[wire.len() - n..];
        if !wire.is_empty() {
            let tail = if k == last { " LAST\r\n" } else { "\r\n" };
            assert_eq!(
                &wire[..wire.len() - n],
                format!("BDAT {n}{tail}").as_bytes()
            );
        }
        payload.extend_from_slice(data);
    }
    Ok(payload)
}

/// Every encoder output for `input` cut by `sizes` next to the reference.
fn check(input: &[u8], sizes: &[usize]) -> Result<(), TestCaseError> {
    let pieces = split(input, sizes);
    let norm = normalised(input);
    prop_assert_eq!(
        encode_data(&pieces, LineEndings::Normalize).unwrap(),
        reference_data(input)
    );
    prop_assert_eq!(
        &encode_bdat(&pieces, LineEndings::Normalize).unwrap(),
        &norm
    );
    prop_assert_eq!(
        message_size(input, LineEndings::Normalize).unwrap(),
        norm.len() as u64
    );
    match first_bare(input) {
        Some(offset) => {
            let e = UsageError::BareLineEnding { offset };
            prop_assert_eq!(encode_data(&pieces, LineEndings::Reject), Err(e.clone()));
            prop_assert_eq!(encode_bdat(&pieces, LineEndings::Reject), Err(e.clone()));
            prop_assert_eq!(message_size(input, LineEndings::Reject), Err(e));
        }
        None => {
            prop_assert_eq!(
                encode_data(&pieces, LineEndings::Reject).unwrap(),
                reference_data(input)
            );
            prop_assert_eq!(&encode_bdat(&pieces, LineEndings::Reject).unwrap(), &norm);
            prop_assert_eq!(
                message_size(input, LineEndings::Reject).unwrap(),
                norm.len() as u64
            );
        }
    }
    Ok(())
}

/// What ends a stretch of filler: mostly CRLF, sometimes what has to change.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\r\n",
    b"\r\n",
    b"\r\n",
    b"\r\n.",
    b"\r\n..\r\n",
    b"\r",
    b"\n",
    b"\n.",
    b"\r.",
    b"\r\r\n",
    b"\n\r",
    b".",
    b"",
];

/// A message of stretches of one repeated byte (a dot among them), each ended by
/// a token: lines of every length, from empty to longer than the scan's windows.
fn message() -> impl Strategy<Value = Vec<u8>> {
    let stretch = (
        prop_oneof![
            6 => 0usize..90,
            2 => 0usize..600,
            1 => 3000usize..12_000,
        ],
        prop::sample::select(vec![b'a', b'a', b'.', b' ', 0xff, 0]),
        0..TOKENS.len(),
    );
    prop::collection::vec(stretch, 0..60).prop_map(|parts| {
        let mut m = Vec::new();
        for (len, byte, token) in parts {
            m.resize(m.len() + len, byte);
            m.extend_from_slice(TOKENS[token]);
        }
        m
    })
}

/// Chunk sizes: tiny, line-sized, and larger than the scan's windows.
fn sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![1usize..8, 1usize..700, 1usize..70_000], 1..8)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn encoders_and_size_match_the_reference(input in message(), sizes in sizes()) {
        check(&input, &sizes)?;
    }

    #[test]
    fn encoders_match_the_reference_on_dense_bytes(
        input in prop::collection::vec(
            prop_oneof![
                3 => Just(b'\r'),
                3 => Just(b'\n'),
                3 => Just(b'.'),
                6 => Just(b'a'),
                1 => any::<u8>()
            ],
            0..1200,
        ),
        sizes in sizes(),
    ) {
        check(&input, &sizes)?;
    }
}

/// Text without a CR (LF line endings, or one line), which `message_size` counts
/// without the scan.
fn lf_text() -> impl Strategy<Value = Vec<u8>> {
    message().prop_map(|mut m| {
        m.retain(|&b| b != b'\r');
        m
    })
}

proptest! {
    #[test]
    fn text_without_cr_matches_the_reference(input in lf_text(), sizes in sizes()) {
        check(&input, &sizes)?;
    }
}

/// Short lines (the block check), then one change at every offset around the
/// block, window and pause sizes of the scan (256, 4096, and the 16 KiB it
/// keeps to blocks after a short line), whole and in chunks that end there.
#[test]
fn a_change_at_every_offset_near_the_scan_boundaries() {
    let line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod\r\n";
    let mut short_lines = Vec::new();
    while short_lines.len() < 21_000 {
        short_lines.extend_from_slice(line);
    }
    let long_line = {
        let mut m = vec![b'x'; 21_000];
        m.extend_from_slice(b"\r\n");
        m
    };
    let changes: &[&[u8]] = &[b"\n", b"\r", b"\r\n.", b"\n.", b"\r\r\n", b"\r\n\r\n."];
    let mut offsets = Vec::new();
    for base in [
        0usize, 256, 258, 512, 4096, 4352, 8192, 16_384, 16_640, 20_480,
    ] {
        offsets.extend(base.saturating_sub(3)..base + 4);
    }
    let mut checked = 0;
    for body in [&short_lines, &long_line] {
        for &at in &offsets {
            for change in changes {
                let mut m = body[..at].to_vec();
                m.extend_from_slice(change);
                // What follows the change: a block and a half of the same text.
                m.extend_from_slice(&body[at..at + 400]);
                for sizes in [&[usize::MAX][..], &[at.max(1)], &[65_536], &[at + 1, 4093]] {
                    check(&m, sizes).unwrap();
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 2 * offsets.len() * changes.len() * 4);
}

/// A long line between short ones and short ones between long ones: the scan
/// changes its way of looking several times in one chunk.
#[test]
fn lines_of_mixed_lengths_in_one_chunk() {
    let mut m = Vec::new();
    for round in 0..6 {
        for _ in 0..300 {
            m.extend_from_slice(b"short line\r\n");
        }
        m.extend_from_slice(&vec![b'y'; 1000 + round * 3000]);
        m.extend_from_slice(b"\r\n.dot after the long line\r\n");
        for _ in 0..3 {
            m.extend_from_slice(&vec![b'z'; 5000]);
            m.extend_from_slice(b"\r\n");
        }
    }
    m.extend_from_slice(b"bare\nat the end\r");
    for sizes in [&[usize::MAX][..], &[65_536], &[4095, 4097], &[1, 300, 5000]] {
        check(&m, sizes).unwrap();
    }
}
