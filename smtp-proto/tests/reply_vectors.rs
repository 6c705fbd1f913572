//! Reply parser byte vectors, each re-fed whole, byte by byte and in every chunk
//! size, through the same buffer discipline the client uses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use smtp_sansio::{EnhancedStatus, ProtocolError, Reply, ReplyLimits, ReplyParser};

/// What the parser produced for an input: the replies (code, lines) and the error.
type Outcome = (
    Vec<(u16, Vec<String>, Option<EnhancedStatus>)>,
    Option<ProtocolError>,
);

fn feed(input: &[u8], chunk: usize, limits: ReplyLimits) -> Outcome {
    let mut parser = ReplyParser::new(limits);
    let mut buf: Vec<u8> = Vec::new();
    let mut replies = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match parser.parse(&buf) {
                Err(e) => return (replies, Some(e)),
                Ok((used, reply)) => {
                    buf.drain(..used);
                    match reply {
                        Some(r) => replies.push((
                            r.code(),
                            r.lines().map(str::to_owned).collect::<Vec<_>>(),
                            r.enhanced(),
                        )),
                        None => break,
                    }
                }
            }
        }
    }
    (replies, None)
}

fn check(input: &[u8], limits: ReplyLimits, expected: &Outcome) {
    for chunk in 1..=input.len().max(1) {
        let got = feed(input, chunk, limits);
        assert_eq!(
            &got,
            expected,
            "input {:?} in chunks of {chunk}",
            String::from_utf8_lossy(input)
        );
    }
}

fn ok(replies: &[(u16, &[&str])]) -> Outcome {
    (
        replies
            .iter()
            .map(|(c, l)| {
                let r = Reply::new(*c, l.iter().map(|s| (*s).to_owned()).collect());
                (
                    r.code(),
                    r.lines().map(str::to_owned).collect::<Vec<_>>(),
                    r.enhanced(),
                )
            })
            .collect(),
        None,
    )
}

fn d() -> ReplyLimits {
    ReplyLimits::default()
}

#[test]
fn single_line() {
    check(b"250 OK\r\n", d(), &ok(&[(250, &["OK"])]));
}

#[test]
fn multiline() {
    check(
        b"250-mx.example\r\n250-PIPELINING\r\n250 SIZE 100\r\n",
        d(),
        &ok(&[(250, &["mx.example", "PIPELINING", "SIZE 100"])]),
    );
}

#[test]
fn bare_code_without_text() {
    check(b"250\r\n", d(), &ok(&[(250, &[""])]));
}

#[test]
fn code_with_empty_text() {
    check(b"334 \r\n", d(), &ok(&[(334, &[""])]));
}

#[test]
fn bare_lf_line_endings() {
    check(b"250-a\n250 b\n", d(), &ok(&[(250, &["a", "b"])]));
}

#[test]
fn two_replies_back_to_back() {
    check(
        b"250 first\r\n354 second\r\n",
        d(),
        &ok(&[(250, &["first"]), (354, &["second"])]),
    );
}

#[test]
fn partial_input_is_not_an_error() {
    assert_eq!(feed(b"250-a\r\n250", 100, d()), (vec![], None));
    assert_eq!(feed(b"25", 1, d()), (vec![], None));
}

#[test]
fn enhanced_status_code() {
    let out = feed(b"550 5.1.1 No such user\r\n", 3, d());
    assert_eq!(
        out.0[0].2,
        Some(EnhancedStatus {
            class: 5,
            subject: 1,
            detail: 1
        })
    );
    assert_eq!(out.0[0].2.unwrap().to_string(), "5.1.1");
    check(b"550 5.1.1 No such user\r\n", d(), &out);
}

#[test]
fn enhanced_status_with_class_disagreeing_is_ignored() {
    let out = feed(b"250 5.1.1 odd\r\n", 1, d());
    assert_eq!(out.0[0].2, None);
    let out = feed(b"250 2.1.500 three digits\r\n", 1, d());
    assert_eq!(
        out.0[0].2,
        Some(EnhancedStatus {
            class: 2,
            subject: 1,
            detail: 500
        })
    );
    let out = feed(b"250 2.1.5000 too long\r\n", 1, d());
    assert_eq!(out.0[0].2, None);
    let out = feed(b"250 2.1.5x\r\n", 1, d());
    assert_eq!(out.0[0].2, None);
}

#[test]
fn non_utf8_text_is_kept_lossily() {
    check(b"250 caf\xe9\r\n", d(), &ok(&[(250, &["caf\u{fffd}"])]));
}

#[test]
fn inconsistent_code_in_continuation() {
    check(
        b"250-mx\r\n550 no\r\n",
        d(),
        &(
            vec![],
            Some(ProtocolError::InconsistentCode {
                expected: 250,
                found: 550,
            }),
        ),
    );
}

#[test]
fn malformed_lines() {
    for input in [
        &b"hello\r\n"[..],
        b"25\r\n",
        b"250x\r\n",
        b"099 low\r\n",
        b"650 high\r\n",
        b"2a0 x\r\n",
        b"\r\n",
    ] {
        let (replies, err) = feed(input, 1, d());
        assert!(replies.is_empty());
        assert!(
            matches!(err, Some(ProtocolError::MalformedReply(_))),
            "{input:?}: {err:?}"
        );
        check(input, d(), &(replies, err));
    }
}

#[test]
fn line_too_long_even_without_newline() {
    let mut limits = d();
    limits.max_line_len = 16;
    let input = b"250 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    check(
        input,
        limits,
        &(vec![], Some(ProtocolError::LineTooLong { limit: 16 })),
    );
    // Exactly at the limit with its terminator is fine.
    check(
        b"250 0123456789\r\n",
        limits,
        &ok(&[(250, &["0123456789"])]),
    );
}

#[test]
fn too_many_lines() {
    let mut limits = d();
    limits.max_lines = 3;
    check(
        b"250-a\r\n250-b\r\n250-c\r\n250-d\r\n250 e\r\n",
        limits,
        &(vec![], Some(ProtocolError::TooManyLines { limit: 3 })),
    );
    check(
        b"250-a\r\n250-b\r\n250 c\r\n",
        limits,
        &ok(&[(250, &["a", "b", "c"])]),
    );
}

#[test]
fn total_too_large() {
    let mut limits = d();
    limits.max_total = 20;
    check(
        b"250-aaaaaaaa\r\n250-bbbbbbbb\r\n250 c\r\n",
        limits,
        &(vec![], Some(ProtocolError::ReplyTooLarge { limit: 20 })),
    );
}

#[test]
fn reply_accessors() {
    let r = Reply::new(421, vec!["4.3.2 closing".into(), "bye".into()]);
    assert_eq!(r.text(), "4.3.2 closing\nbye");
    assert!(r.is_transient() && !r.is_positive() && !r.is_permanent() && !r.is_intermediate());
    assert_eq!(r.to_string(), "421 4.3.2 closing / bye");
    assert_eq!(Reply::new(250, vec![]).lines().collect::<Vec<_>>(), [""]);
}
