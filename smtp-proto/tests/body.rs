//! The message body on the wire: DATA dot-stuffing and line endings (RFC 5321
//! sections 4.5.2 and 2.3.8), BDAT framing (RFC 3030), SIZE (RFC 1870), and the
//! unstuffer a server uses. Every vector is re-fed in every chunk size.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use smtp_sansio::UsageError;
use smtp_sansio::body::{BodyEncoder, LineEndings, Unstuffer, message_size};

/// (message as the caller has it, DATA wire bytes after the DATA command's 354).
const DATA_VECTORS: &[(&[u8], &[u8])] = &[
    // Empty message: the terminating line alone.
    (b"", b".\r\n"),
    // Already ends in CRLF: no CRLF added.
    (
        b"Subject: x\r\n\r\nhi\r\n",
        b"Subject: x\r\n\r\nhi\r\n.\r\n",
    ),
    (b"\r\n", b"\r\n.\r\n"),
    // No final newline: one CRLF added.
    (b"no newline", b"no newline\r\n.\r\n"),
    // Lone dot.
    (b".", b"..\r\n.\r\n"),
    (b".\r\n", b"..\r\n.\r\n"),
    // Leading dot, dots after CRLF, dots not at line start.
    (b".hidden\r\n", b"..hidden\r\n.\r\n"),
    (b"a\r\n.b\r\n..c\r\n", b"a\r\n..b\r\n...c\r\n.\r\n"),
    (b"x.\r\ny.z.", b"x.\r\ny.z.\r\n.\r\n"),
    (b"\r\n\r\n.\r\n\r\n", b"\r\n\r\n..\r\n\r\n.\r\n"),
    // Smuggling attempts: the end-of-data sequence inside the message, and its
    // bare-LF and bare-CR forms.
    (
        b"a\r\n.\r\nMAIL FROM:<evil@x>\r\n",
        b"a\r\n..\r\nMAIL FROM:<evil@x>\r\n.\r\n",
    ),
    (b"a\n.\nb", b"a\r\n..\r\nb\r\n.\r\n"),
    (b"a\r.\rb", b"a\r\n..\r\nb\r\n.\r\n"),
    (b"a\r\n.\nb", b"a\r\n..\r\nb\r\n.\r\n"),
    (b"a\n.\r\nb", b"a\r\n..\r\nb\r\n.\r\n"),
    (b"a\r.\r\nb", b"a\r\n..\r\nb\r\n.\r\n"),
    // Bare CR and bare LF.
    (b"bare\rcr", b"bare\r\ncr\r\n.\r\n"),
    (b"bare\nlf\n", b"bare\r\nlf\r\n.\r\n"),
    (b"\n\n", b"\r\n\r\n.\r\n"),
    (b"\r", b"\r\n.\r\n"),
    (b"\n", b"\r\n.\r\n"),
    (b"\r\r", b"\r\n\r\n.\r\n"),
    // CR CR LF is a bare CR then CRLF; LF CR is two bare endings.
    (b"a\r\r\nb", b"a\r\n\r\nb\r\n.\r\n"),
    (b"a\n\rb", b"a\r\n\r\nb\r\n.\r\n"),
    // CR at the very end.
    (b"trailing cr\r", b"trailing cr\r\n.\r\n"),
    (b"x\r\n.\r", b"x\r\n..\r\n.\r\n"),
    // Other bytes pass through.
    (b"\x00\xff\t.\r\n", b"\x00\xff\t.\r\n.\r\n"),
];

/// Encodes `input` for DATA, cut into the given pieces.
fn data_pieces(pieces: &[&[u8]], le: LineEndings) -> Result<Vec<u8>, UsageError> {
    let mut enc = BodyEncoder::new(le);
    let mut out = Vec::new();
    for piece in pieces {
        enc.encode_data(piece, &mut out)?;
    }
    enc.finish_data(&mut out)?;
    Ok(out)
}

fn data(input: &[u8], chunk: usize, le: LineEndings) -> Result<Vec<u8>, UsageError> {
    data_pieces(&input.chunks(chunk.max(1)).collect::<Vec<_>>(), le)
}

/// Frames `input` as BDAT chunks of `chunk` bytes and a final empty LAST chunk;
/// returns the wire bytes, the payload bytes (without the BDAT lines) and the sum
/// of the chunk sizes.
fn bdat(
    input: &[u8],
    chunk: usize,
    le: LineEndings,
) -> Result<(Vec<u8>, Vec<u8>, u64), UsageError> {
    let mut enc = BodyEncoder::new(le);
    let mut wire = Vec::new();
    let mut payload = Vec::new();
    let mut total = 0;
    let pieces = input.chunks(chunk.max(1));
    let count = pieces.len();
    for (k, piece) in pieces.enumerate() {
        let last = k + 1 == count;
        let before = wire.len();
        let n = enc.encode_bdat(piece, last, &mut wire)?;
        payload.extend_from_slice(&wire[wire.len() - n as usize..]);
        assert!(n > 0 || last || wire.len() == before);
        total += n;
    }
    if count == 0 {
        total += enc.encode_bdat(&[], true, &mut wire)?;
    }
    Ok((wire, payload, total))
}

/// Decodes DATA wire bytes fed in chunks of `chunk` bytes; returns the message and
/// the bytes after the terminator.
fn unstuff(wire: &[u8], chunk: usize) -> (Vec<u8>, Vec<u8>, bool) {
    let mut u = Unstuffer::new();
    let mut out = Vec::new();
    let mut used = 0;
    for piece in wire.chunks(chunk.max(1)) {
        match u.feed(piece, &mut out) {
            Some(n) => {
                used += n;
                return (out, wire[used..].to_vec(), true);
            }
            None => used += piece.len(),
        }
    }
    (out, Vec::new(), u.is_done())
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).escape_debug().to_string()
}

#[test]
fn data_vectors_whole_and_in_every_chunk_size() {
    for &(input, wire) in DATA_VECTORS {
        for chunk in 1..=input.len().max(1) {
            let got = data(input, chunk, LineEndings::Normalize).unwrap();
            assert_eq!(
                show(&got),
                show(wire),
                "input {} chunk {chunk}",
                show(input)
            );
        }
    }
}

#[test]
fn data_vectors_split_at_every_point_with_empty_chunks() {
    for &(input, wire) in DATA_VECTORS {
        for k in 0..=input.len() {
            let (a, b) = input.split_at(k);
            let got = data_pieces(&[b"", a, b"", b, b""], LineEndings::Normalize).unwrap();
            assert_eq!(show(&got), show(wire), "input {} split at {k}", show(input));
        }
    }
}

#[test]
fn binary_mode_behaves_as_normalize_for_data() {
    for &(input, wire) in DATA_VECTORS {
        for chunk in 1..=input.len().max(1) {
            assert_eq!(data(input, chunk, LineEndings::Binary).unwrap(), wire);
        }
    }
}

#[test]
fn data_vectors_unstuff_to_the_normalised_message_and_its_size() {
    for &(input, wire) in DATA_VECTORS {
        let (message, rest, done) = unstuff(wire, wire.len());
        assert!(done && rest.is_empty(), "{}", show(wire));
        assert_eq!(
            message_size(input, LineEndings::Normalize).unwrap(),
            message.len() as u64,
            "{}",
            show(input)
        );
        // BDAT carries the same normalised bytes, unstuffed, in any chunking.
        for chunk in 1..=input.len().max(1) {
            let (_, payload, total) = bdat(input, chunk, LineEndings::Normalize).unwrap();
            assert_eq!(
                show(&payload),
                show(&message),
                "{} chunk {chunk}",
                show(input)
            );
            assert_eq!(total, message.len() as u64);
        }
    }
}

#[test]
fn chunk_ending_between_cr_and_lf_is_held_back() {
    let mut enc = BodyEncoder::new(LineEndings::Normalize);
    let mut out = Vec::new();
    enc.encode_data(b"line\r", &mut out).unwrap();
    assert_eq!(out, b"line");
    enc.encode_data(b"\n.next", &mut out).unwrap();
    assert_eq!(out, b"line\r\n..next");
    enc.encode_data(b"\r", &mut out).unwrap();
    enc.encode_data(b".", &mut out).unwrap();
    // The held-back CR was bare: it became CRLF and the dot starts a line.
    assert_eq!(out, b"line\r\n..next\r\n..");
    enc.finish_data(&mut out).unwrap();
    assert_eq!(out, b"line\r\n..next\r\n..\r\n.\r\n");
    assert_eq!(enc.consumed(), 13);
}

/// (message, offset of the first bare CR or LF in Reject mode, or None).
const REJECT_VECTORS: &[(&[u8], Option<u64>)] = &[
    (b"ab\ncd", Some(2)),
    (b"ab\rcd", Some(2)),
    (b"ok\r\nx\r", Some(5)),
    (b"\n", Some(0)),
    (b"\r", Some(0)),
    (b"a\r\r\n", Some(1)),
    (b"x\r\n\n", Some(3)),
    (b"a\r\n.\nb", Some(4)),
    (b"fine\r\n", None),
    (b"\r\n\r\n.\r\n", None),
    (b"no final newline", None),
    (b"", None),
];

#[test]
fn reject_mode_reports_the_offset_in_the_whole_message() {
    for &(input, offset) in REJECT_VECTORS {
        for chunk in 1..=input.len().max(1) {
            let got = data(input, chunk, LineEndings::Reject);
            let bdat_got = bdat(input, chunk, LineEndings::Reject);
            match offset {
                Some(offset) => {
                    let e = UsageError::BareLineEnding { offset };
                    assert_eq!(got.unwrap_err(), e, "{} chunk {chunk}", show(input));
                    assert_eq!(bdat_got.unwrap_err(), e, "{} chunk {chunk}", show(input));
                }
                None => {
                    assert_eq!(
                        got.unwrap(),
                        data(input, 1, LineEndings::Normalize).unwrap()
                    );
                    assert!(bdat_got.is_ok());
                }
            }
        }
        match offset {
            Some(offset) => assert_eq!(
                message_size(input, LineEndings::Reject).unwrap_err(),
                UsageError::BareLineEnding { offset }
            ),
            None => assert_eq!(
                message_size(input, LineEndings::Reject).unwrap(),
                message_size(input, LineEndings::Normalize).unwrap()
            ),
        }
    }
}

#[test]
fn a_refused_chunk_appends_nothing_and_changes_nothing() {
    let mut enc = BodyEncoder::new(LineEndings::Reject);
    let mut out = b"MAIL FROM:<a@x>\r\n".to_vec();
    enc.encode_data(b"ok\r\n", &mut out).unwrap();
    let before = out.clone();
    assert_eq!(
        enc.encode_data(b"fine\r\nbad\n", &mut out),
        Err(UsageError::BareLineEnding { offset: 13 })
    );
    assert_eq!(out, before);
    assert_eq!(enc.consumed(), 4);
    enc.encode_data(b"end\r", &mut out).unwrap();
    assert_eq!(
        enc.finish_data(&mut out),
        Err(UsageError::BareLineEnding { offset: 7 })
    );
    assert_eq!(out, b"MAIL FROM:<a@x>\r\nok\r\nend");

    let mut enc = BodyEncoder::new(LineEndings::Reject);
    let mut out = Vec::new();
    assert_eq!(enc.encode_bdat(b"a\r\n", false, &mut out).unwrap(), 3);
    let before = out.clone();
    assert_eq!(
        enc.encode_bdat(b"b\rc", true, &mut out),
        Err(UsageError::BareLineEnding { offset: 4 })
    );
    assert_eq!(out, before);
    assert_eq!(enc.encode_bdat(b"b", true, &mut out).unwrap(), 3);
    assert_eq!(out, b"BDAT 3\r\na\r\nBDAT 3 LAST\r\nb\r\n");
}

/// BDAT conversations: (chunk, last, returned n) in order, then the wire bytes.
type BdatCase = (&'static [(&'static [u8], bool, u64)], &'static [u8]);

const BDAT_VECTORS: &[BdatCase] = &[
    // One LAST chunk; the final CRLF is added.
    (
        &[(b"Subject: x\r\n\r\nhi", true, 18)],
        b"BDAT 18 LAST\r\nSubject: x\r\n\r\nhi\r\n",
    ),
    // Not dot-stuffed, but normalised.
    (&[(b".a\n.\n", true, 7)], b"BDAT 7 LAST\r\n.a\r\n.\r\n"),
    // Already ends in CRLF: nothing added.
    (
        &[(b"x\r\n", false, 3), (b"", true, 0)],
        b"BDAT 3\r\nx\r\nBDAT 0 LAST\r\n",
    ),
    // A CR at the end of a chunk waits for the next one.
    (
        &[(b"a\r", false, 1), (b"\nb", false, 3), (b"", true, 2)],
        b"BDAT 1\r\naBDAT 3\r\n\r\nbBDAT 2 LAST\r\n\r\n",
    ),
    (
        &[(b"a\r", false, 1), (b"", true, 2)],
        b"BDAT 1\r\naBDAT 2 LAST\r\n\r\n",
    ),
    (
        &[(b"a\r", false, 1), (b"b", true, 5)],
        b"BDAT 1\r\naBDAT 5 LAST\r\n\r\nb\r\n",
    ),
    // A chunk that is only a held-back CR, or empty, sends nothing.
    (
        &[
            (b"\r", false, 0),
            (b"", false, 0),
            (b"\n", false, 2),
            (b"", true, 0),
        ],
        b"BDAT 2\r\n\r\nBDAT 0 LAST\r\n",
    ),
    // An empty message.
    (&[(b"", true, 0)], b"BDAT 0 LAST\r\n"),
    (&[(b"", false, 0), (b"", true, 0)], b"BDAT 0 LAST\r\n"),
];

#[test]
fn bdat_exact_bytes() {
    for &(steps, wire) in BDAT_VECTORS {
        let mut enc = BodyEncoder::new(LineEndings::Normalize);
        let mut out = Vec::new();
        for &(chunk, last, n) in steps {
            assert_eq!(
                enc.encode_bdat(chunk, last, &mut out).unwrap(),
                n,
                "{steps:?}"
            );
        }
        assert_eq!(show(&out), show(wire));
    }
}

#[test]
fn bdat_binary_mode_leaves_bytes_alone() {
    let mut enc = BodyEncoder::new(LineEndings::Binary);
    let mut out = Vec::new();
    assert_eq!(enc.encode_bdat(b"\x00\r.\n", false, &mut out).unwrap(), 4);
    assert_eq!(enc.encode_bdat(b"", false, &mut out).unwrap(), 0);
    assert_eq!(enc.encode_bdat(b"\xff\r", true, &mut out).unwrap(), 2);
    assert_eq!(out, b"BDAT 4\r\n\x00\r.\nBDAT 2 LAST\r\n\xff\r");
    assert_eq!(enc.consumed(), 6);
    assert_eq!(
        message_size(b"\x00\r.\n\xff\r", LineEndings::Binary).unwrap(),
        6
    );
}

#[test]
fn bdat_line_when_normalising_adds_a_digit() {
    // The command line is written before the data, sized for the chunk's length;
    // here the added line-ending bytes take the size past a power of ten, so
    // the line grows after the data is encoded.
    let mut enc = BodyEncoder::new(LineEndings::Normalize);
    let mut out = b"NOOP\r\n".to_vec();
    assert_eq!(
        enc.encode_bdat(b"a\nb\nc\nd\ne", false, &mut out).unwrap(),
        13
    );
    assert_eq!(enc.encode_bdat(b"12345678", true, &mut out).unwrap(), 10);
    assert_eq!(
        show(&out),
        show(b"NOOP\r\nBDAT 13\r\na\r\nb\r\nc\r\nd\r\neBDAT 10 LAST\r\n12345678\r\n")
    );
    // Binary mode and a chunk whose size keeps its digits write the line in place.
    let mut enc = BodyEncoder::new(LineEndings::Normalize);
    let mut out = Vec::new();
    assert_eq!(enc.encode_bdat(b"x\r\ny", true, &mut out).unwrap(), 6);
    assert_eq!(show(&out), show(b"BDAT 6 LAST\r\nx\r\ny\r\n"));
}

#[test]
fn bdat_large_chunk_header_and_length() {
    let line = b"0123456789012345678901234567890123456789012345678901234567890123456789012345\r\n";
    let message: Vec<u8> = line
        .iter()
        .copied()
        .cycle()
        .take(line.len() * 20_000)
        .collect();
    let mut enc = BodyEncoder::new(LineEndings::Normalize);
    let mut out = b"RSET\r\n".to_vec();
    assert_eq!(
        enc.encode_bdat(&message, true, &mut out).unwrap(),
        1_560_000
    );
    assert_eq!(&out[..26], b"RSET\r\nBDAT 1560000 LAST\r\n0");
    assert_eq!(&out[25..], &message[..]);
}

#[test]
fn message_size_counts_normalised_bytes_without_stuffing() {
    for (input, size) in [
        (&b""[..], 0u64),
        (b"a", 3),
        (b"a\r\n", 3),
        (b"a\n", 3),
        (b"a\r", 3),
        (b"\r\r\n", 4),
        (b"a\nb", 6),
        (b".\r\n.\r\n", 6),
        (b"Subject: x\n\n.dot\rbare\r\nend", 31),
    ] {
        assert_eq!(
            message_size(input, LineEndings::Normalize).unwrap(),
            size,
            "{}",
            show(input)
        );
        assert_eq!(
            message_size(input, LineEndings::Binary).unwrap(),
            input.len() as u64
        );
    }
}

/// (wire bytes after the 354, message, bytes left for the next command).
const UNSTUFF_VECTORS: &[(&[u8], &[u8], &[u8])] = &[
    (b".\r\n", b"", b""),
    (b".\r\nQUIT\r\n", b"", b"QUIT\r\n"),
    (b"..a\r\nb\r\n.\r\nQUIT\r\n", b".a\r\nb\r\n", b"QUIT\r\n"),
    (b"..\r\n...\r\n.\r\n", b".\r\n..\r\n", b""),
    // Only CRLF ends a line: these dots are text.
    (b"a\n.\nb\r\n.\r\n", b"a\n.\nb\r\n", b""),
    (b"a\r.\rb\r\n.\r\n", b"a\r.\rb\r\n", b""),
    // A stuffed dot before a bare CR.
    (b".\rx\r\n.\r\n", b"\rx\r\n", b""),
    (b".\r\r\n.\r\n", b"\r\r\n", b""),
    (b"x\r\r\n.\r\n.\r\n", b"x\r\r\n", b".\r\n"),
];

#[test]
fn unstuffer_vectors_in_every_chunk_size() {
    for &(wire, message, rest) in UNSTUFF_VECTORS {
        for chunk in 1..=wire.len() {
            let (got, left, done) = unstuff(wire, chunk);
            assert!(done, "{}", show(wire));
            assert_eq!(show(&got), show(message), "{} chunk {chunk}", show(wire));
            assert_eq!(show(&left), show(rest), "{} chunk {chunk}", show(wire));
        }
    }
}

#[test]
fn unstuffer_waits_for_the_terminator_and_then_stops() {
    let mut u = Unstuffer::new();
    let mut out = Vec::new();
    assert_eq!(u.feed(b"abc\r\n.\r", &mut out), None);
    assert!(!u.is_done());
    assert_eq!(out, b"abc\r\n");
    assert_eq!(u.feed(b"\nNOOP\r\n", &mut out), Some(1));
    assert!(u.is_done());
    assert_eq!(u.feed(b"more", &mut out), Some(0));
    assert_eq!(out, b"abc\r\n");
}

// Property tests.

/// Bytes rich in the characters that matter.
fn message() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            3 => Just(b'\r'),
            3 => Just(b'\n'),
            3 => Just(b'.'),
            2 => Just(b'a'),
            1 => any::<u8>()
        ],
        0..300,
    )
}

/// Chunk sizes, 0 included (an empty chunk must change nothing).
fn sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..40, 1..20)
}

/// Cuts `input` into one piece per size (empty pieces included, also past the
/// end), then repeats the non-zero sizes until all of `input` is used.
fn split<'a>(input: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut cut = |n: usize, pos: &mut usize| {
        let n = n.min(input.len() - *pos);
        out.push(&input[*pos..*pos + n]);
        *pos += n;
    };
    for &n in sizes {
        cut(n, &mut pos);
    }
    let repeat: Vec<usize> = sizes.iter().copied().filter(|&n| n > 0).collect();
    while pos < input.len() {
        for &n in repeat
            .iter()
            .chain(std::iter::once(&input.len()).filter(|_| repeat.is_empty()))
        {
            cut(n, &mut pos);
        }
    }
    out
}

/// The message as it must arrive: bare CR and LF as CRLF, CRLF added at the end
/// of a non-empty message that lacks one.
fn normalised(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'\r' if input.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Offset of the first CR or LF that is not part of a CRLF pair.
fn first_bare(input: &[u8]) -> Option<u64> {
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'\r' if input.get(i + 1) == Some(&b'\n') => i += 1,
            b'\r' | b'\n' => return Some(i as u64),
            _ => {}
        }
        i += 1;
    }
    None
}

proptest! {
    #[test]
    fn data_then_unstuff_returns_the_normalised_message(
        input in message(), enc_sizes in sizes(), dec_sizes in sizes()
    ) {
        let wire = data_pieces(&split(&input, &enc_sizes), LineEndings::Normalize).unwrap();
        let mut un = Unstuffer::new();
        let mut back = Vec::new();
        let mut used = None;
        let mut fed = 0;
        for piece in split(&wire, &dec_sizes) {
            if let Some(n) = un.feed(piece, &mut back) {
                used = Some(fed + n);
                break;
            }
            fed += piece.len();
        }
        prop_assert_eq!(used, Some(wire.len()));
        prop_assert_eq!(back, normalised(&input));
    }

    #[test]
    fn data_wire_has_no_bare_line_ending_and_one_terminator(
        input in message(), enc_sizes in sizes()
    ) {
        let wire = data_pieces(&split(&input, &enc_sizes), LineEndings::Normalize).unwrap();
        prop_assert_eq!(&wire, &data(&input, input.len(), LineEndings::Normalize).unwrap());
        prop_assert!(!wire.windows(3).any(|w| w == b"\n.\n" || w == b"\r.\r"));
        let body_end = wire.len() - 3;
        prop_assert_eq!(&wire[body_end..], b".\r\n");
        prop_assert!(body_end == 0 || wire[..body_end].ends_with(b"\r\n"));
        let with_terminator: Vec<usize> = wire
            .windows(5)
            .enumerate()
            .filter(|(_, w)| *w == b"\r\n.\r\n")
            .map(|(i, _)| i)
            .collect();
        prop_assert!(with_terminator.is_empty() || with_terminator == [wire.len() - 5]);
        for (i, &b) in wire.iter().enumerate() {
            if b == b'\r' { prop_assert_eq!(wire.get(i + 1), Some(&b'\n')); }
            if b == b'\n' { prop_assert!(i > 0 && wire[i - 1] == b'\r'); }
        }
    }

    #[test]
    fn bdat_sizes_sum_to_message_size(input in message(), enc_sizes in sizes()) {
        let mut enc = BodyEncoder::new(LineEndings::Normalize);
        let mut wire = Vec::new();
        let mut payload = Vec::new();
        let mut total = 0;
        let pieces = split(&input, &enc_sizes);
        for (k, piece) in pieces.iter().enumerate() {
            let n = enc.encode_bdat(piece, k + 1 == pieces.len(), &mut wire).unwrap();
            payload.extend_from_slice(&wire[wire.len() - n as usize..]);
            total += n;
        }
        if pieces.is_empty() {
            total += enc.encode_bdat(&[], true, &mut wire).unwrap();
        }
        prop_assert_eq!(total, message_size(&input, LineEndings::Normalize).unwrap());
        prop_assert_eq!(payload, normalised(&input));
    }

    #[test]
    fn reject_mode_agrees_with_normalize_or_names_the_first_bare_byte(
        input in message(), enc_sizes in sizes()
    ) {
        let pieces = split(&input, &enc_sizes);
        let got = data_pieces(&pieces, LineEndings::Reject);
        match first_bare(&input) {
            Some(offset) => {
                let e = UsageError::BareLineEnding { offset };
                prop_assert_eq!(got, Err(e.clone()));
                prop_assert_eq!(message_size(&input, LineEndings::Reject), Err(e));
            }
            None => {
                let normal = data_pieces(&pieces, LineEndings::Normalize).unwrap();
                prop_assert_eq!(got.unwrap(), normal);
                prop_assert_eq!(
                    message_size(&input, LineEndings::Reject).unwrap(),
                    message_size(&input, LineEndings::Normalize).unwrap()
                );
            }
        }
    }

    #[test]
    fn bdat_binary_payload_is_the_input(input in message(), enc_sizes in sizes()) {
        let mut enc = BodyEncoder::new(LineEndings::Binary);
        let mut wire = Vec::new();
        let mut payload = Vec::new();
        for piece in split(&input, &enc_sizes) {
            let n = enc.encode_bdat(piece, false, &mut wire).unwrap();
            payload.extend_from_slice(&wire[wire.len() - n as usize..]);
        }
        let n = enc.encode_bdat(&[], true, &mut wire).unwrap();
        prop_assert_eq!(n, 0);
        prop_assert_eq!(&payload, &input);
        prop_assert_eq!(message_size(&input, LineEndings::Binary).unwrap(), input.len() as u64);
    }

    #[test]
    fn unstuffer_never_panics_on_arbitrary_wire(
        input in prop::collection::vec(any::<u8>(), 0..300), dec_sizes in sizes()
    ) {
        let mut un = Unstuffer::new();
        let mut out = Vec::new();
        for piece in split(&input, &dec_sizes) {
            if un.feed(piece, &mut out).is_some() { break; }
        }
        prop_assert!(out.len() <= input.len());
    }
}
