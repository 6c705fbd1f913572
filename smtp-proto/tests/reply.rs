//! The reply parser against RFC 5321 section 4.2 replies, RFC 3463 enhanced codes and
//! hostile input. Every vector goes through [`Wire`], which drives the parser the way
//! the client does, and is re-fed whole, in every chunk size and one byte at a time:
//! the outcome must never depend on how the bytes were split.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use smtp_sansio::{EnhancedStatus, ProtocolError, Reply, ReplyLimits, ReplyParser};

/// A reply as the tests compare it: code, enhanced status, lines.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Got {
    code: u16,
    enhanced: Option<EnhancedStatus>,
    lines: Vec<String>,
}

impl From<Reply> for Got {
    fn from(r: Reply) -> Got {
        Got {
            code: r.code(),
            enhanced: r.enhanced(),
            lines: r.lines().map(str::to_owned).collect::<Vec<_>>(),
        }
    }
}

/// Everything one input produced: the replies in order, then the error if any.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    replies: Vec<Got>,
    error: Option<ProtocolError>,
    /// Bytes still buffered (an unfinished line) when the input ended without error.
    pending: usize,
}

/// The client's receive side: one buffer; each arrival is appended, parsed in a
/// loop from an offset, and the consumed bytes are drained once at the end.
struct Wire {
    parser: ReplyParser,
    buf: Vec<u8>,
    out: Outcome,
}

impl Wire {
    fn new(limits: ReplyLimits) -> Wire {
        Wire {
            parser: ReplyParser::new(limits),
            buf: Vec::new(),
            out: Outcome {
                replies: Vec::new(),
                error: None,
                pending: 0,
            },
        }
    }

    fn receive(&mut self, data: &[u8]) {
        if self.out.error.is_some() {
            return;
        }
        self.buf.extend_from_slice(data);
        let mut pos = 0;
        loop {
            match self.parser.parse(&self.buf[pos..]) {
                Err(e) => {
                    self.out.error = Some(e);
                    return;
                }
                Ok((used, None)) => {
                    pos += used;
                    break;
                }
                Ok((used, Some(reply))) => {
                    pos += used;
                    self.out.replies.push(reply.into());
                }
            }
        }
        self.buf.drain(..pos);
    }

    fn finish(mut self) -> Outcome {
        if self.out.error.is_none() {
            self.out.pending = self.buf.len();
        }
        self.out
    }
}

fn feed(input: &[u8], chunk: usize, limits: ReplyLimits) -> Outcome {
    let mut wire = Wire::new(limits);
    for piece in input.chunks(chunk.max(1)) {
        wire.receive(piece);
    }
    if input.is_empty() {
        wire.receive(&[]);
    }
    wire.finish()
}

/// Feeds `input` whole, then in every chunk size from 1 to its length, and
/// requires the same outcome each time. Returns it.
fn feed_every_way(input: &[u8], limits: ReplyLimits) -> Outcome {
    let whole = feed(input, input.len(), limits);
    for chunk in 1..=input.len() {
        assert_eq!(
            feed(input, chunk, limits),
            whole,
            "S: {:?} in chunks of {chunk}",
            String::from_utf8_lossy(input)
        );
    }
    whole
}

fn limits() -> ReplyLimits {
    ReplyLimits::default()
}

fn small(line: usize, lines: usize, total: usize) -> ReplyLimits {
    let mut l = ReplyLimits::default();
    l.max_line_len = line;
    l.max_lines = lines;
    l.max_total = total;
    l
}

fn reply(code: u16, lines: &[&str]) -> Got {
    Reply::new(code, lines.iter().map(|l| (*l).to_owned()).collect()).into()
}

fn es(class: u8, subject: u16, detail: u16) -> Option<EnhancedStatus> {
    Some(EnhancedStatus {
        class,
        subject,
        detail,
    })
}

fn malformed(line: &str) -> ProtocolError {
    ProtocolError::MalformedReply(line.to_owned())
}

/// Server bytes and the replies they must give, with nothing left over.
fn assert_replies(table: &[(&[u8], Vec<Got>)]) {
    for (input, expected) in table {
        let out = feed_every_way(input, limits());
        assert_eq!(
            out,
            Outcome {
                replies: expected.clone(),
                error: None,
                pending: 0
            },
            "S: {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

/// Server bytes and the error they must end with (after any complete replies).
fn assert_error(table: &[(&[u8], ReplyLimits, usize, ProtocolError)]) {
    for (input, limits, replies_before, error) in table {
        let out = feed_every_way(input, *limits);
        assert_eq!(
            out.error.as_ref(),
            Some(error),
            "S: {:?}",
            String::from_utf8_lossy(input)
        );
        assert_eq!(
            out.replies.len(),
            *replies_before,
            "S: {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn well_formed_replies() {
    assert_replies(&[
        (
            b"220 mx.example ESMTP ready\r\n",
            vec![reply(220, &["mx.example ESMTP ready"])],
        ),
        (
            b"250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n",
            vec![reply(
                250,
                &["mx.example", "PIPELINING", "SIZE 10240000", "8BITMIME"],
            )],
        ),
        (b"250\r\n", vec![reply(250, &[""])]),
        (b"250 \r\n", vec![reply(250, &[""])]),
        (b"334 \r\n", vec![reply(334, &[""])]),
        (b"250-\r\n250 \r\n", vec![reply(250, &["", ""])]),
        (b"221 2.0.0 Bye\r\n", vec![reply(221, &["2.0.0 Bye"])]),
        (
            b"354 End data with <CR><LF>.<CR><LF>\r\n",
            vec![reply(354, &["End data with <CR><LF>.<CR><LF>"])],
        ),
        (b"599 highest code\r\n", vec![reply(599, &["highest code"])]),
        (
            b"250  two spaces kept\r\n",
            vec![reply(250, &[" two spaces kept"])],
        ),
    ]);
}

#[test]
fn bare_lf_and_mixed_line_endings() {
    assert_replies(&[
        (b"250 OK\n", vec![reply(250, &["OK"])]),
        (b"250-a\n250 b\n", vec![reply(250, &["a", "b"])]),
        (
            b"250-a\r\n250-b\n250 c\r\n",
            vec![reply(250, &["a", "b", "c"])],
        ),
        // Only the CR right before LF belongs to the line ending.
        (b"250 a\rb\r\n", vec![reply(250, &["a\rb"])]),
        (b"250 a\r\r\n", vec![reply(250, &["a\r"])]),
    ]);
}

#[test]
fn replies_back_to_back_in_one_buffer() {
    assert_replies(&[
        (
            b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n",
            vec![
                reply(250, &["2.1.0 Ok"]),
                reply(250, &["2.1.5 Ok"]),
                reply(354, &["go ahead"]),
            ],
        ),
        (
            b"250-a\r\n250 b\r\n550-c\r\n550 d\r\n",
            vec![reply(250, &["a", "b"]), reply(550, &["c", "d"])],
        ),
    ]);
}

#[test]
fn enhanced_status_codes() {
    let got = |input: &[u8]| feed_every_way(input, limits()).replies[0].enhanced;
    let table: &[(&[u8], Option<EnhancedStatus>)] = &[
        (b"250 2.1.5 Ok\r\n", es(2, 1, 5)),
        (
            b"550 5.1.1 <x@y>: Recipient address rejected\r\n",
            es(5, 1, 1),
        ),
        (b"451 4.7.1 Try again later\r\n", es(4, 7, 1)),
        (b"250 2.0.0\r\n", es(2, 0, 0)),
        (b"554 5.123.456 three digits each\r\n", es(5, 123, 456)),
        (b"250-2.1.5 first line\r\n250 2.1.5 second\r\n", es(2, 1, 5)),
        // Class disagrees with the reply code: ignored.
        (b"250 5.1.1 odd\r\n", None),
        (b"550 2.0.0 odd\r\n", None),
        (b"354 3.0.0 no class 3\r\n", None),
        // Not an enhanced code.
        (b"250 2.1 short\r\n", None),
        (b"250 2.1.5x glued\r\n", None),
        (b"250 2.1.1000 four digits\r\n", None),
        (b"250 2..5 empty subject\r\n", None),
        (b"250 Ok 2.1.5\r\n", None),
        (b"250-first line plain\r\n250 2.1.5 only later\r\n", None),
    ];
    for (input, expected) in table {
        assert_eq!(
            got(input),
            *expected,
            "S: {:?}",
            String::from_utf8_lossy(input)
        );
    }
    assert_eq!(es(5, 7, 26).unwrap().to_string(), "5.7.26");
    // The text keeps the enhanced code, as smtplib's message does.
    assert_eq!(
        feed_every_way(b"250 2.1.5 Ok\r\n", limits()).replies[0].lines,
        ["2.1.5 Ok"]
    );
}

#[test]
fn non_utf8_text_is_replaced_not_refused() {
    assert_replies(&[
        (b"250 caf\xe9\r\n", vec![reply(250, &["caf\u{fffd}"])]),
        (
            b"250-\xff\xfe\r\n250 ok\r\n",
            vec![reply(250, &["\u{fffd}\u{fffd}", "ok"])],
        ),
        ("250 café\r\n".as_bytes(), vec![reply(250, &["café"])]),
        // The enhanced code is read from the raw bytes, whatever follows it.
        (
            b"550 5.1.1 caf\xe9\r\n",
            vec![Got {
                code: 550,
                enhanced: es(5, 1, 1),
                lines: vec!["5.1.1 caf\u{fffd}".into()],
            }],
        ),
        (
            b"550-5.7.1 \xff\xff\xff\xff\r\n550 more\r\n",
            vec![Got {
                code: 550,
                enhanced: es(5, 7, 1),
                lines: vec![
                    "5.7.1 \u{fffd}\u{fffd}\u{fffd}\u{fffd}".into(),
                    "more".into(),
                ],
            }],
        ),
        (
            b"550 5.1.1\xff\r\n",
            vec![Got {
                code: 550,
                enhanced: None,
                lines: vec!["5.1.1\u{fffd}".into()],
            }],
        ),
        // A sequence cut by the end of its line is replaced in that line; it
        // does not join the next line's bytes.
        (
            b"250-a\xe2\x82\r\n250-\xacb\r\n250 \xe2\x82\xac\r\n",
            vec![reply(250, &["a\u{fffd}", "\u{fffd}b", "\u{20ac}"])],
        ),
    ]);
}

#[test]
fn inconsistent_code_in_a_continuation() {
    let d = limits();
    assert_error(&[
        (
            b"250-mx.example\r\n251 done\r\n",
            d,
            0,
            ProtocolError::InconsistentCode {
                expected: 250,
                found: 251,
            },
        ),
        (
            b"250 ok\r\n550-a\r\n250 b\r\n",
            d,
            1,
            ProtocolError::InconsistentCode {
                expected: 550,
                found: 250,
            },
        ),
    ]);
}

#[test]
fn malformed_lines() {
    let d = limits();
    assert_error(&[
        (b"250_underscore\r\n", d, 0, malformed("250_underscore")),
        (b"250x\r\n", d, 0, malformed("250x")),
        (b"250\tok\r\n", d, 0, malformed("250\tok")),
        (b"25\r\n", d, 0, malformed("25")),
        (b"\r\n", d, 0, malformed("")),
        (b"\n", d, 0, malformed("")),
        (b"OK\r\n", d, 0, malformed("OK")),
        (b"2x0 ok\r\n", d, 0, malformed("2x0 ok")),
        (b" 250 ok\r\n", d, 0, malformed(" 250 ok")),
        // Reply codes run from 200 to 599 for a client (RFC 5321 section 4.2.1).
        (b"199 too low\r\n", d, 0, malformed("199 too low")),
        (b"600 too high\r\n", d, 0, malformed("600 too high")),
        (b"099 leading zero\r\n", d, 0, malformed("099 leading zero")),
        (b"250 fine\r\nbogus\r\n", d, 1, malformed("bogus")),
        (
            b"\xff\xfe\xfd\r\n",
            d,
            0,
            malformed("\u{fffd}\u{fffd}\u{fffd}"),
        ),
    ]);
}

#[test]
fn line_too_long_with_or_without_its_newline() {
    let l = small(16, 100, 1000);
    let long = ProtocolError::LineTooLong { limit: 16 };
    assert_error(&[
        // 17 bytes with CRLF: one over.
        (b"250 0123456789a\r\n", l, 0, long.clone()),
        // 16 bytes and no newline yet: the line can only get longer.
        (b"250 0123456789ab", l, 0, long.clone()),
        (b"250 no newline at all, ever, and more", l, 0, long.clone()),
        (b"250-ok\r\n250 0123456789abcdef\r\n", l, 0, long.clone()),
        (b"250 ok\r\n0123456789abcdef", l, 1, long),
    ]);
    // Exactly 16 bytes, terminator included, is fine.
    assert_eq!(
        feed_every_way(b"250 0123456789\r\n", l).replies,
        [reply(250, &["0123456789"])]
    );
    assert_eq!(
        feed_every_way(b"250 0123456789a\n", l).replies,
        [reply(250, &["0123456789a"])]
    );
    // Fifteen bytes without a newline may still become a valid line.
    let out = feed_every_way(b"250 0123456789a", l);
    assert_eq!((out.error, out.pending), (None, 15));
}

#[test]
fn too_many_lines() {
    let l = small(100, 3, 1000);
    assert_error(&[
        (
            b"250-a\r\n250-b\r\n250-c\r\n250 d\r\n",
            l,
            0,
            ProtocolError::TooManyLines { limit: 3 },
        ),
        (
            b"250-a\r\n250-b\r\n250-c\r\n250-d\r\n",
            l,
            0,
            ProtocolError::TooManyLines { limit: 3 },
        ),
    ]);
    // Three lines is the limit, and the count starts again for the next reply.
    assert_eq!(
        feed_every_way(b"250-a\r\n250-b\r\n250 c\r\n250-a\r\n250-b\r\n250 c\r\n", l).replies,
        [reply(250, &["a", "b", "c"]), reply(250, &["a", "b", "c"])]
    );
}

#[test]
fn total_too_large() {
    let l = small(100, 100, 21);
    // 8 + 8 + 8 = 24 bytes > 21.
    assert_error(&[(
        b"250-aa\r\n250-bb\r\n250 cc\r\n",
        l,
        0,
        ProtocolError::ReplyTooLarge { limit: 21 },
    )]);
    // 7 + 7 + 7 = 21 bytes is allowed; the total starts again for the next reply.
    assert_eq!(
        feed_every_way(b"250-a\r\n250-b\r\n250 c\r\n250-a\r\n250-b\r\n250 c\r\n", l).replies,
        [reply(250, &["a", "b", "c"]), reply(250, &["a", "b", "c"])]
    );
}

#[test]
fn partial_input_is_not_an_error() {
    let table: &[(&[u8], usize)] = &[
        (b"", 0),
        (b"2", 1),
        (b"250", 3),
        (b"250 OK\r", 7),
        (b"250-first\r\n250", 3),
        (b"250-first\r\n", 0),
    ];
    for (input, pending) in table {
        let out = feed_every_way(input, limits());
        assert_eq!(
            (out.replies.len(), out.error, out.pending),
            (0, None, *pending)
        );
    }
}

#[test]
fn parser_reports_being_inside_a_multiline_reply() {
    let mut p = ReplyParser::new(limits());
    assert!(!p.is_mid_reply());
    assert_eq!(p.parse(b"250-a\r\n250").unwrap(), (7, None));
    assert!(p.is_mid_reply());
    let (used, r) = p.parse(b"250 b\r\n").unwrap();
    assert_eq!(
        (
            used,
            r.unwrap().lines().map(str::to_owned).collect::<Vec<_>>()
        ),
        (7, vec!["a".to_owned(), "b".to_owned()])
    );
    assert!(!p.is_mid_reply());
    assert_eq!(p.limits(), ReplyLimits::default());
}

#[test]
fn default_limits_cover_what_rfc5321_requires() {
    let l = ReplyLimits::default();
    // RFC 5321 section 4.5.3.1.5: a reply line is at most 512 octets.
    assert!(l.max_line_len >= 512);
    let line = format!("250 {}\r\n", "x".repeat(506));
    assert_eq!(line.len(), 512);
    assert_eq!(feed(line.as_bytes(), 512, l).replies.len(), 1);
}

#[test]
fn reply_accessors() {
    let r = Reply::new(250, vec!["mx.example".into(), "PIPELINING".into()]);
    assert_eq!(r.text(), "mx.example\nPIPELINING");
    assert_eq!(r.to_string(), "250 mx.example / PIPELINING");
    let classes = |code| {
        let r = Reply::new(code, vec![]);
        (
            r.is_positive(),
            r.is_intermediate(),
            r.is_transient(),
            r.is_permanent(),
        )
    };
    assert_eq!(classes(250), (true, false, false, false));
    assert_eq!(classes(334), (false, true, false, false));
    assert_eq!(classes(421), (false, false, true, false));
    assert_eq!(classes(554), (false, false, false, true));
    assert_eq!(Reply::new(250, vec![]).lines().collect::<Vec<_>>(), [""]);
    assert_eq!(r.first_line(), "mx.example");
    assert_eq!(r.line_count(), 2);
    assert_eq!(r.lines().next_back(), Some("PIPELINING"));
    // A line feed cannot be inside a line on the wire; Reply::new keeps the
    // line count by turning it into a space.
    let odd = Reply::new(250, vec!["a\nb".into(), "c".into()]);
    assert_eq!(odd.lines().collect::<Vec<_>>(), ["a b", "c"]);
    assert_eq!(odd.line_count(), 2);
    let empty_first = Reply::new(250, vec![String::new(), "x".into()]);
    assert_eq!(empty_first.first_line(), "");
    assert_eq!(empty_first.enhanced(), None);
    assert_eq!(
        Reply::new(550, vec!["5.1.1 no".into()]).enhanced(),
        es(5, 1, 1)
    );
}

#[test]
fn enhanced_status_parse_prefix() {
    assert_eq!(
        EnhancedStatus::parse_prefix("2.1.5 Ok"),
        Some((es(2, 1, 5).unwrap(), 5))
    );
    assert_eq!(
        EnhancedStatus::parse_prefix("5.7.26"),
        Some((es(5, 7, 26).unwrap(), 6))
    );
    for text in [
        "", "2", "2.", "2.1", "2.1.", "3.1.5", "2.1.5.", "2.a.5", "a.1.5", "2.1.5\t",
    ] {
        assert_eq!(EnhancedStatus::parse_prefix(text), None, "{text:?}");
    }
}

/// Splits `input` into pieces of the given sizes (cycled), the last one whatever
/// remains.
fn split<'a>(input: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = input;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].clamp(1, rest.len());
        out.push(&rest[..n]);
        rest = &rest[n..];
        i += 1;
    }
    out
}

fn feed_pieces(pieces: &[&[u8]], limits: ReplyLimits) -> (Outcome, usize) {
    let mut wire = Wire::new(limits);
    let mut most_buffered = 0;
    for p in pieces {
        wire.receive(p);
        if wire.out.error.is_none() {
            most_buffered = most_buffered.max(wire.buf.len());
        }
    }
    (wire.finish(), most_buffered)
}

/// Bytes that look like replies often enough to reach every branch.
fn replyish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"250".to_vec()),
        Just(b"550".to_vec()),
        Just(b"-".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"2.1.5 ".to_vec()),
        prop::collection::vec(any::<u8>(), 0..8),
        "[ -~]{0,20}".prop_map(String::into_bytes),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn never_panics_and_never_buffers_past_the_line_limit(
        input in prop_oneof![prop::collection::vec(any::<u8>(), 0..600), replyish()],
        sizes in prop::collection::vec(1usize..64, 1..8),
        line in 4usize..80,
    ) {
        let l = small(line, 8, 200);
        let (out, most_buffered) = feed_pieces(&split(&input, &sizes), l);
        // What stays buffered is one unfinished line, shorter than the limit: a
        // longer one is reported instead.
        prop_assert!(most_buffered < line, "buffered {} with limit {}", most_buffered, line);
        prop_assert!(out.pending < line);
    }

    #[test]
    fn chunking_never_changes_the_outcome(
        input in replyish(),
        sizes in prop::collection::vec(1usize..16, 1..8),
    ) {
        let l = small(40, 4, 120);
        let whole = feed(&input, input.len(), l);
        let (pieces, _) = feed_pieces(&split(&input, &sizes), l);
        prop_assert_eq!(pieces, whole);
    }

    #[test]
    fn generated_replies_parse_back(
        replies in prop::collection::vec(
            (200u16..600, prop::collection::vec("[ -~]{0,30}", 1..5)),
            1..5,
        ),
        sizes in prop::collection::vec(1usize..32, 1..8),
        bare_lf in any::<bool>(),
    ) {
        let eol = if bare_lf { "\n" } else { "\r\n" };
        let mut wire = Vec::new();
        for (code, lines) in &replies {
            for (i, text) in lines.iter().enumerate() {
                let sep = if i + 1 == lines.len() { ' ' } else { '-' };
                wire.extend_from_slice(format!("{code}{sep}{text}{eol}").as_bytes());
            }
        }
        let (out, _) = feed_pieces(&split(&wire, &sizes), limits());
        let expected: Vec<Got> = replies
            .iter()
            .map(|(code, lines)| Reply::new(*code, lines.clone()).into())
            .collect();
        prop_assert_eq!(out.error, None);
        prop_assert_eq!(out.replies, expected);
        prop_assert_eq!(out.pending, 0);
    }
}
