//! Stuff in arbitrary chunks, unstuff, compare with the normalised input; no
//! `\n.\n`, `\r.\r` or bare line ending can reach the wire.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_sansio::body::{BodyEncoder, LineEndings, Unstuffer, message_size};

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

fuzz_target!(|input: (Vec<u8>, &[u8])| {
    let (sizes, data) = input;
    let mut pieces = Vec::new();
    let mut pos = 0;
    let mut k = 0;
    while pos < data.len() {
        let n = usize::from(sizes.get(k).copied().unwrap_or(7)).max(1).min(data.len() - pos);
        pieces.push(&data[pos..pos + n]);
        pos += n;
        k += 1;
    }
    let mut enc = BodyEncoder::new(LineEndings::Normalize);
    let mut wire = Vec::new();
    for p in &pieces {
        enc.encode_data(p, &mut wire).unwrap();
    }
    enc.finish_data(&mut wire).unwrap();
    assert!(!wire.windows(3).any(|w| w == b"\n.\n" || w == b"\r.\r"));
    for (i, &b) in wire.iter().enumerate() {
        if b == b'\r' {
            assert_eq!(wire.get(i + 1), Some(&b'\n'));
        }
        if b == b'\n' {
            assert!(i > 0 && wire[i - 1] == b'\r');
        }
    }
    let body_end = wire.len() - 3;
    assert!(!wire[..body_end].windows(5).any(|w| w == b"\r\n.\r\n"));
    let mut un = Unstuffer::new();
    let mut back = Vec::new();
    assert_eq!(un.feed(&wire, &mut back), Some(wire.len()));
    let expected = normalised(data);
    assert_eq!(back, expected);
    // BDAT: the chunk sizes add up to the SIZE the client announces.
    let mut enc = BodyEncoder::new(LineEndings::Normalize);
    let mut framed = Vec::new();
    let mut total = 0;
    for p in &pieces {
        total += enc.encode_bdat(p, false, &mut framed).unwrap();
    }
    total += enc.encode_bdat(&[], true, &mut framed).unwrap();
    assert_eq!(total, message_size(data, LineEndings::Normalize).unwrap());
    assert_eq!(total as usize, expected.len());
});
