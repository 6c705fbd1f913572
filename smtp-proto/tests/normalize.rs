//! `normalize_line_endings` gives the message as the server stores it: the same
//! bytes the DATA encoder puts on the wire once the server undoes dot-stuffing,
//! and borrows the message when there is nothing to change.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;

use proptest::prelude::*;
use smtp_sansio::body::{BodyEncoder, LineEndings, Unstuffer, normalize_line_endings};

/// What a server stores after DATA: the encoder's output, unstuffed.
fn stored_after_data(message: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    let mut encoder = BodyEncoder::new(LineEndings::Normalize);
    encoder.encode_data(message, &mut wire).unwrap();
    encoder.finish_data(&mut wire).unwrap();
    let mut stored = Vec::new();
    let mut unstuffer = Unstuffer::new();
    assert_eq!(unstuffer.feed(&wire, &mut stored), Some(wire.len()));
    assert!(unstuffer.is_done());
    stored
}

#[test]
fn vectors() {
    let cases: &[(&[u8], &[u8], bool)] = &[
        (b"", b"", true),
        (b"a\r\n", b"a\r\n", true),
        (b"a\r\n.b\r\n", b"a\r\n.b\r\n", true),
        (b"a\nb\n", b"a\r\nb\r\n", false),
        (b"a\rb", b"a\r\nb\r\n", false),
        (b"a\r\r\n", b"a\r\n\r\n", false),
        (b"no final line end", b"no final line end\r\n", false),
        (b"ends in CR\r", b"ends in CR\r\n", false),
    ];
    for &(input, want, borrowed) in cases {
        let got = normalize_line_endings(input);
        assert_eq!(&got[..], want, "{:?}", String::from_utf8_lossy(input));
        assert_eq!(matches!(got, Cow::Borrowed(_)), borrowed, "{input:?}");
    }
}

proptest! {
    #[test]
    fn equals_what_data_stores(input in proptest::collection::vec(
        prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'.'), Just(b'a')], 0..64)) {
        let normalized = normalize_line_endings(&input);
        prop_assert_eq!(normalized.to_vec(), stored_after_data(&input));
    }
}
