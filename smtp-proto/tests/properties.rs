//! Property tests: stuffing then unstuffing returns the normalised input under any
//! chunking; no smuggling sequence survives; the reply parser never panics and
//! never buffers past its limits; xtext round-trips; envelope parsing never panics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use smtp_sansio::body::{BodyEncoder, LineEndings, Unstuffer, message_size};
use smtp_sansio::command::{xtext_decode, xtext_encode};
use smtp_sansio::{ReplyLimits, ReplyParser};

/// The message as it must arrive: bare CR and LF as CRLF, CRLF added at the end
/// of a non-empty message that lacks one.
fn normalised(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'\r' if input.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 2;
                continue;
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

/// Bytes rich in the characters that matter.
fn message() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            Just(b'\r'),
            Just(b'\n'),
            Just(b'.'),
            Just(b'a'),
            any::<u8>()
        ],
        0..300,
    )
}

fn chunks() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..40, 1..20)
}

fn split<'a>(input: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut k = 0;
    while pos < input.len() {
        let n = sizes[k % sizes.len()].min(input.len() - pos);
        out.push(&input[pos..pos + n]);
        pos += n;
        k += 1;
    }
    out
}

proptest! {
    #[test]
    fn stuff_then_unstuff_is_identity(input in message(), sizes in chunks()) {
        let mut enc = BodyEncoder::new(LineEndings::Normalize);
        let mut wire = Vec::new();
        for piece in split(&input, &sizes) {
            enc.encode_data(piece, &mut wire).unwrap();
        }
        enc.finish_data(&mut wire).unwrap();
        // The terminator appears once, at the very end.
        prop_assert!(wire.ends_with(b"\r\n.\r\n") || wire == b".\r\n");
        let body = &wire[..wire.len() - 3];
        prop_assert!(!body.windows(5).any(|w| w == b"\r\n.\r\n"));
        prop_assert!(!wire.windows(3).any(|w| w == b"\n.\n" || w == b"\r.\r"));
        // No bare CR or LF on the wire.
        for (i, &b) in wire.iter().enumerate() {
            if b == b'\r' { prop_assert_eq!(wire.get(i + 1), Some(&b'\n')); }
            if b == b'\n' { prop_assert!(i > 0 && wire[i - 1] == b'\r'); }
        }
        let mut un = Unstuffer::new();
        let mut back = Vec::new();
        let mut end = None;
        for piece in split(&wire, &sizes) {
            if let Some(n) = un.feed(piece, &mut back) { end = Some(n); break; }
        }
        prop_assert!(end.is_some());
        prop_assert_eq!(back, normalised(&input));
    }

    #[test]
    fn bdat_sizes_match_message_size(input in message(), sizes in chunks()) {
        let mut enc = BodyEncoder::new(LineEndings::Normalize);
        let mut wire = Vec::new();
        let mut total = 0;
        for piece in split(&input, &sizes) {
            total += enc.encode_bdat(piece, false, &mut wire).unwrap();
        }
        total += enc.encode_bdat(&[], true, &mut wire).unwrap();
        prop_assert_eq!(total, message_size(&input, LineEndings::Normalize).unwrap());
        prop_assert_eq!(total as usize, normalised(&input).len());
    }

    #[test]
    fn reply_parser_never_panics_and_stays_bounded(input in prop::collection::vec(any::<u8>(), 0..2000), sizes in chunks()) {
        let limits = ReplyLimits::default();
        let mut parser = ReplyParser::new(limits);
        let mut buf = Vec::new();
        'outer: for piece in split(&input, &sizes) {
            buf.extend_from_slice(piece);
            loop {
                match parser.parse(&buf) {
                    Err(_) => break 'outer,
                    Ok((used, reply)) => {
                        buf.drain(..used);
                        if reply.is_none() { break; }
                    }
                }
            }
            prop_assert!(buf.len() < limits.max_line_len);
        }
    }

    #[test]
    fn reply_parser_on_reply_like_input(lines in prop::collection::vec((200u16..600, any::<bool>(), "[ -~]{0,30}"), 1..10), sizes in chunks()) {
        let mut input = Vec::new();
        for (code, more, text) in &lines {
            input.extend_from_slice(format!("{code}{}{text}\r\n", if *more { '-' } else { ' ' }).as_bytes());
        }
        let mut parser = ReplyParser::new(ReplyLimits::default());
        let mut buf = Vec::new();
        for piece in split(&input, &sizes) {
            buf.extend_from_slice(piece);
            while let Ok((used, Some(_))) = parser.parse(&buf) { buf.drain(..used); }
        }
    }

    #[test]
    fn xtext_round_trips(s in "\\PC{0,40}") {
        prop_assert_eq!(xtext_decode(&xtext_encode(&s)).unwrap(), s.as_bytes());
        prop_assert!(xtext_encode(&s).bytes().all(|b| (b'!'..=b'~').contains(&b) && b != b'='));
    }

    #[test]
    fn envelope_parsing_never_panics(input in prop::collection::vec(any::<u8>(), 0..500)) {
        let _ = smtp_sansio::envelope::from_message(&input);
        let _ = smtp_sansio::envelope::parse_address_list(&String::from_utf8_lossy(&input));
    }
}
