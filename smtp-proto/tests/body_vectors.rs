//! Body encoding vectors (dot-stuffing, line endings, smuggling), each re-fed in
//! every chunk size; BDAT framing; SIZE; the unstuffer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use smtp_sansio::UsageError;
use smtp_sansio::body::{BodyEncoder, LineEndings, Unstuffer, message_size};

fn data(input: &[u8], chunk: usize, le: LineEndings) -> Result<Vec<u8>, UsageError> {
    let mut enc = BodyEncoder::new(le);
    let mut out = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        enc.encode_data(piece, &mut out)?;
    }
    enc.finish_data(&mut out)?;
    Ok(out)
}

fn check_data(input: &[u8], expected: &[u8]) {
    for chunk in 1..=input.len().max(1) {
        let got = data(input, chunk, LineEndings::Normalize).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(expected),
            "input {:?} in chunks of {chunk}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn plain_message() {
    check_data(
        b"Subject: x\r\n\r\nhello\r\n",
        b"Subject: x\r\n\r\nhello\r\n.\r\n",
    );
}

#[test]
fn leading_dot_is_doubled() {
    check_data(b".hidden\r\n", b"..hidden\r\n.\r\n");
    check_data(b"a\r\n.b\r\n..c\r\n", b"a\r\n..b\r\n...c\r\n.\r\n");
}

#[test]
fn lone_dot_line_cannot_end_the_data() {
    check_data(b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n.\r\n");
    check_data(b".", b"..\r\n.\r\n");
}

#[test]
fn smuggling_sequences_are_neutralised() {
    check_data(b"a\n.\nb", b"a\r\n..\r\nb\r\n.\r\n");
    check_data(b"a\r.\rb", b"a\r\n..\r\nb\r\n.\r\n");
    check_data(b"a\r\n.\nb", b"a\r\n..\r\nb\r\n.\r\n");
    check_data(b"a\n.\r\nb", b"a\r\n..\r\nb\r\n.\r\n");
}

#[test]
fn bare_cr_and_lf_become_crlf() {
    check_data(b"a\nb\rc\r\n", b"a\r\nb\r\nc\r\n.\r\n");
    check_data(b"a\r\r\nb", b"a\r\n\r\nb\r\n.\r\n");
    check_data(b"\n\n", b"\r\n\r\n.\r\n");
    check_data(b"trailing cr\r", b"trailing cr\r\n.\r\n");
}

#[test]
fn final_crlf_only_when_missing() {
    check_data(b"no newline", b"no newline\r\n.\r\n");
    check_data(b"newline\r\n", b"newline\r\n.\r\n");
    check_data(b"", b".\r\n");
}

#[test]
fn reject_mode_reports_offsets() {
    for (input, offset) in [
        (&b"ab\ncd"[..], 2u64),
        (b"ab\rcd", 2),
        (b"ok\r\nx\r", 5),
        (b"\n", 0),
    ] {
        for chunk in 1..=input.len() {
            let e = data(input, chunk, LineEndings::Reject).unwrap_err();
            assert_eq!(
                e,
                UsageError::BareLineEnding { offset },
                "{input:?} chunk {chunk}"
            );
        }
        assert_eq!(
            message_size(input, LineEndings::Reject).unwrap_err(),
            UsageError::BareLineEnding { offset }
        );
    }
    assert_eq!(
        data(b"fine\r\n", 1, LineEndings::Reject).unwrap(),
        b"fine\r\n.\r\n"
    );
}

fn bdat(input: &[u8], chunk: usize, le: LineEndings) -> (Vec<u8>, u64) {
    let mut enc = BodyEncoder::new(le);
    let mut out = Vec::new();
    let mut total = 0;
    for piece in input.chunks(chunk.max(1)) {
        total += enc.encode_bdat(piece, false, &mut out).unwrap();
    }
    total += enc.encode_bdat(&[], true, &mut out).unwrap();
    (out, total)
}

#[test]
fn bdat_framing_exact_bytes() {
    let mut enc = BodyEncoder::new(LineEndings::Normalize);
    let mut out = Vec::new();
    assert_eq!(enc.encode_bdat(b".a\nb", false, &mut out).unwrap(), 5);
    assert_eq!(enc.encode_bdat(b"", false, &mut out).unwrap(), 0);
    assert_eq!(enc.encode_bdat(b"c\r", false, &mut out).unwrap(), 1);
    assert_eq!(enc.encode_bdat(b"", true, &mut out).unwrap(), 2);
    assert_eq!(out, b"BDAT 5\r\n.a\r\nbBDAT 1\r\ncBDAT 2 LAST\r\n\r\n");
    let mut enc = BodyEncoder::new(LineEndings::Normalize);
    let mut out = Vec::new();
    assert_eq!(enc.encode_bdat(b"", true, &mut out).unwrap(), 0);
    assert_eq!(out, b"BDAT 0 LAST\r\n");
}

#[test]
fn bdat_binary_is_untouched() {
    let mut enc = BodyEncoder::new(LineEndings::Binary);
    let mut out = Vec::new();
    enc.encode_bdat(b"\x00\r.\n\xff", true, &mut out).unwrap();
    assert_eq!(out, b"BDAT 5 LAST\r\n\x00\r.\n\xff");
    assert_eq!(
        message_size(b"\x00\r.\n\xff", LineEndings::Binary).unwrap(),
        5
    );
}

#[test]
fn bdat_sizes_sum_to_message_size_in_every_chunking() {
    let msg = b"Subject: x\n\n.dot\rbare\r\nend";
    let size = message_size(msg, LineEndings::Normalize).unwrap();
    assert_eq!(size, 31);
    for chunk in 1..=msg.len() {
        let (_, total) = bdat(msg, chunk, LineEndings::Normalize);
        assert_eq!(total, size, "chunk {chunk}");
    }
}

#[test]
fn unstuffer_stops_at_terminator() {
    let wire = b"..a\r\nb\r\n.\r\nQUIT\r\n";
    for chunk in 1..=wire.len() {
        let mut u = Unstuffer::new();
        let mut out = Vec::new();
        let mut used_total = 0;
        for piece in wire.chunks(chunk) {
            if let Some(n) = u.feed(piece, &mut out) {
                used_total += n;
                break;
            }
            used_total += piece.len();
        }
        assert_eq!(out, b".a\r\nb\r\n", "chunk {chunk}");
        assert_eq!(&wire[used_total..], b"QUIT\r\n", "chunk {chunk}");
    }
    let mut u = Unstuffer::new();
    let mut out = Vec::new();
    assert_eq!(u.feed(b".\r\n", &mut out), Some(3));
    assert!(out.is_empty());
}

#[test]
fn consumed_counts_input_bytes() {
    let mut enc = BodyEncoder::new(LineEndings::Normalize);
    let mut out = Vec::new();
    enc.encode_data(b"abc\n", &mut out).unwrap();
    enc.encode_data(b".x", &mut out).unwrap();
    assert_eq!(enc.consumed(), 6);
}
