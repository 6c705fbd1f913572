//! The envelope from the headers, as smtplib's `send_message` takes it: sender from
//! Sender or From, recipients from To, Bcc and Cc, one Resent- block instead of
//! them, Bcc and Resent-Bcc never transmitted (RFC 5322 sections 3.6.2, 3.6.3,
//! 3.6.6); and RFC 5322 section 3.4 address lists.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use smtp_sansio::UsageError;
use smtp_sansio::envelope::{HeaderEnvelope, from_message, parse_address_list};

fn env(message: &str) -> HeaderEnvelope {
    from_message(message.as_bytes()).unwrap()
}

fn headers(e: &HeaderEnvelope) -> &str {
    std::str::from_utf8(&e.headers).unwrap()
}

#[test]
fn from_to_cc_bcc_in_smtplib_order() {
    let m = concat!(
        "From: Alice <a@x>\r\n",
        "To: b@x, \"Doe, J\" <j@x>\r\n",
        "Cc: c@x\r\n",
        "Bcc: d@x\r\n",
        "Subject: s\r\n",
        "\r\n",
        "body\r\nBcc: not a header\r\n",
    );
    let e = env(m);
    assert_eq!(e.sender, "a@x");
    assert_eq!(e.recipients, ["b@x", "j@x", "d@x", "c@x"]);
    assert_eq!(
        headers(&e),
        "From: Alice <a@x>\r\nTo: b@x, \"Doe, J\" <j@x>\r\nCc: c@x\r\nSubject: s\r\n\r\n"
    );
    assert_eq!(&m[e.body_offset..], "body\r\nBcc: not a header\r\n");
    assert!(!e.international);
}

#[test]
fn sender_field_wins_over_from() {
    let e = env("From: a@x\r\nSender: Secretary <s@x>\r\nTo: b@x\r\n\r\nbody");
    assert_eq!(e.sender, "s@x");
    let e = env("Sender: s@x\r\nFrom: a@x\r\nTo: b@x\r\n\r\n");
    assert_eq!(e.sender, "s@x");
}

#[test]
fn sender_is_the_first_address() {
    let e = env("From: One <one@x>, two@x\r\nTo: b@x\r\n\r\n");
    assert_eq!(e.sender, "one@x");
    let e = env("From: a@x\r\nFrom: other@x\r\nTo: b@x\r\n\r\n");
    assert_eq!(e.sender, "a@x");
}

#[test]
fn one_resent_block_replaces_the_original_fields() {
    let m = concat!(
        "Resent-Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n",
        "Resent-From: Forwarder <r@x>\r\n",
        "Resent-To: t@x\r\n",
        "Resent-Cc: rc@x\r\n",
        "Resent-Bcc: hidden@x\r\n",
        "From: a@x\r\n",
        "Sender: s@x\r\n",
        "To: b@x\r\n",
        "Bcc: old-hidden@x\r\n",
        "\r\n",
        "x",
    );
    let e = env(m);
    assert_eq!(e.sender, "r@x");
    assert_eq!(e.recipients, ["t@x", "hidden@x", "rc@x"]);
    assert_eq!(
        headers(&e),
        concat!(
            "Resent-Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n",
            "Resent-From: Forwarder <r@x>\r\n",
            "Resent-To: t@x\r\n",
            "Resent-Cc: rc@x\r\n",
            "From: a@x\r\n",
            "Sender: s@x\r\n",
            "To: b@x\r\n",
            "\r\n",
        )
    );
    let e =
        env("Resent-Date: d\r\nResent-Sender: rs@x\r\nResent-From: rf@x\r\nResent-To: t@x\r\n\r\n");
    assert_eq!(e.sender, "rs@x");
}

#[test]
fn two_resent_blocks_are_an_error() {
    let m = concat!(
        "Resent-Date: 2\r\nResent-From: r2@x\r\nResent-To: t2@x\r\n",
        "Resent-Date: 1\r\nResent-From: r1@x\r\nResent-To: t1@x\r\n",
        "From: a@x\r\nTo: b@x\r\n\r\nx",
    );
    assert_eq!(
        from_message(m.as_bytes()),
        Err(UsageError::Envelope(
            "message has more than one 'Resent-' header block".into()
        ))
    );
}

#[test]
fn bcc_fields_are_removed_with_their_continuation_lines() {
    let m = concat!(
        "From: a@x\r\n",
        "Bcc: one@x,\r\n",
        " two@x,\r\n",
        "\tthree@x\r\n",
        "To: b@x\r\n",
        "bCC: four@x\r\n",
        "Resent-bcc: not-used@x\r\n",
        "Subject: folded\r\n",
        " subject\r\n",
        "\r\n",
        "body",
    );
    let e = env(m);
    assert_eq!(e.recipients, ["b@x", "one@x", "two@x", "three@x", "four@x"]);
    assert_eq!(
        headers(&e),
        "From: a@x\r\nTo: b@x\r\nSubject: folded\r\n subject\r\n\r\n"
    );
    assert_eq!(&m[e.body_offset..], "body");
}

#[test]
fn bcc_as_the_last_field_without_a_body() {
    let m = "From: a@x\r\nTo: b@x\r\nBcc: c@x,\r\n d@x\r\n";
    let e = env(m);
    assert_eq!(e.recipients, ["b@x", "c@x", "d@x"]);
    assert_eq!(headers(&e), "From: a@x\r\nTo: b@x\r\n");
    assert_eq!(e.body_offset, m.len());
}

#[test]
fn every_occurrence_counts_and_duplicates_keep_the_first() {
    let e = env(concat!(
        "From: a@x\r\n",
        "To: b@x, c@x\r\n",
        "Cc: b@x, d@x\r\n",
        "To: e@x, c@x\r\n",
        "Bcc: d@x, f@x\r\n",
        "\r\n",
    ));
    assert_eq!(e.recipients, ["b@x", "c@x", "e@x", "d@x", "f@x"]);
}

#[test]
fn groups_comments_and_quoted_names_in_fields() {
    let e = env(concat!(
        "From: \"Doe, Jane (CEO)\" <jane@x> (the boss)\r\n",
        "To: friends: \"Smith, J\" <js@x>, (nobody) k@x;, l@x\r\n",
        "Cc: undisclosed-recipients:;\r\n",
        "\r\n",
    ));
    assert_eq!(e.sender, "jane@x");
    assert_eq!(e.recipients, ["js@x", "k@x", "l@x"]);
}

#[test]
fn message_without_blank_line_is_all_headers() {
    let m = "From: a@x\r\nTo: b@x";
    let e = env(m);
    assert_eq!(e.recipients, ["b@x"]);
    assert_eq!(headers(&e), m);
    assert_eq!(e.body_offset, m.len());
    let m = "From: a@x\r\nTo: b@x\r\n\r\n";
    let e = env(m);
    assert_eq!(headers(&e), m);
    assert_eq!(e.body_offset, m.len());
}

#[test]
fn lf_only_messages() {
    let m = "From: a@x\nBcc: h@x,\n i@x\nTo: b@x\n\nbody\n";
    let e = env(m);
    assert_eq!(e.sender, "a@x");
    assert_eq!(e.recipients, ["b@x", "h@x", "i@x"]);
    assert_eq!(headers(&e), "From: a@x\nTo: b@x\n\n");
    assert_eq!(&m[e.body_offset..], "body\n");
}

#[test]
fn field_names_are_case_insensitive_and_may_have_space_before_the_colon() {
    let e = env("FROM: a@x\r\nto : b@x\r\nBCC : c@x\r\nSUBJECT: s\r\n\r\n");
    assert_eq!(e.sender, "a@x");
    assert_eq!(e.recipients, ["b@x", "c@x"]);
    assert_eq!(headers(&e), "FROM: a@x\r\nto : b@x\r\nSUBJECT: s\r\n\r\n");
}

#[test]
fn lines_that_are_not_fields_are_kept_and_end_the_field_before_them() {
    let m = "From: a@x\r\nBcc: c@x\r\nno colon here\r\n folded under it\r\nTo: b@x\r\n\r\n";
    let e = env(m);
    assert_eq!(e.recipients, ["b@x", "c@x"]);
    assert_eq!(
        headers(&e),
        "From: a@x\r\nno colon here\r\n folded under it\r\nTo: b@x\r\n\r\n"
    );
}

#[test]
fn international_addresses_need_smtputf8() {
    let e = env("From: Jörg <jörg@bücher.example>\r\nTo: b@x\r\n\r\n");
    assert_eq!(e.sender, "jörg@bücher.example");
    assert!(e.international);
    let e = env("From: a@x\r\nCc: 用户@例子.广告\r\n\r\n");
    assert_eq!(e.recipients, ["用户@例子.广告"]);
    assert!(e.international);
    // A non-ASCII display name alone does not need it.
    let e = env("From: Jörg <j@x>\r\nTo: =?utf-8?q?J=C3=B6rg?= <b@x>\r\n\r\n");
    assert!(!e.international);
}

#[test]
fn missing_sender_or_recipients_is_an_error() {
    for m in [
        "To: b@x\r\n\r\n",
        "From: a@x\r\n\r\n",
        "From: a@x\r\nTo: undisclosed-recipients:;\r\n\r\n",
        "Sender: Just A Name\r\nFrom: a@x\r\nTo: b@x\r\n\r\n",
        "\r\nFrom: a@x\r\nTo: b@x\r\n",
        "",
    ] {
        assert!(
            matches!(from_message(m.as_bytes()), Err(UsageError::Envelope(_))),
            "{m:?}"
        );
    }
}

/// (address list, addresses).
const ADDRESS_LISTS: &[(&str, &[&str])] = &[
    ("a@x", &["a@x"]),
    ("  a@x  ", &["a@x"]),
    ("A <a@x>", &["a@x"]),
    ("<a@x>", &["a@x"]),
    ("a@x, b@y;c@z", &["a@x", "b@y", "c@z"]),
    (", ,a@x,,", &["a@x"]),
    // Quoted display names with commas, colons and angle brackets.
    ("\"Doe, John\" <j@x>, k@y", &["j@x", "k@y"]),
    ("\"a: <b@c>, d\" <e@f>", &["e@f"]),
    // Comments, nested, with quoted pairs, anywhere.
    ("k@y (comment, with comma)", &["k@y"]),
    ("(nested (comment) here) x@y", &["x@y"]),
    ("x(c)@(d)y", &["x@y"]),
    (
        "Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
        &["pete@silly.test"],
    ),
    // Groups (RFC 5322 appendix A.1.3), empty groups.
    (
        "A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;",
        &["c@a.test", "joe@where.test", "jdoe@one.test"],
    ),
    (
        concat!(
            "A Group(Some people):Chris Jones <c@(Chris's host.)public.example>, ",
            "joe@example.org, John <jdoe@one.test> (my dear friend); (the end of the group)",
        ),
        &["c@public.example", "joe@example.org", "jdoe@one.test"],
    ),
    ("team: a@b, c@d;, e@f", &["a@b", "c@d", "e@f"]),
    ("undisclosed-recipients:;", &[]),
    ("empty: ; a@x", &["a@x"]),
    // Obsolete route.
    ("<@route1,@route2:user@host>", &["user@host"]),
    ("Name <@r1:a@b>, c@d", &["a@b", "c@d"]),
    ("<@r:\"odd:local\"@host>", &["\"odd:local\"@host"]),
    // Quoted local parts and domain literals kept as written.
    ("\"quoted local\"@x", &["\"quoted local\"@x"]),
    ("<\"a\\\"b\"@x>", &["\"a\\\"b\"@x"]),
    (
        "a@[192.0.2.1], b@[IPv6:2001:db8::1]",
        &["a@[192.0.2.1]", "b@[IPv6:2001:db8::1]"],
    ),
    // Folding white space around @ and dots.
    ("a @ b . c", &["a@b.c"]),
    ("< a@b >", &["a@b"]),
    // Encoded words in display names are just words.
    ("=?utf-8?q?J=C3=B6rg?= <j@x>", &["j@x"]),
    // Non-ASCII.
    ("Jörg <jörg@bücher.example>", &["jörg@bücher.example"]),
    // Unparseable pieces are skipped.
    ("just a display name", &[]),
    ("a@b c@d, e@f", &["e@f"]),
    ("<>", &[]),
    ("\"unterminated <a@x>", &[]),
    ("(unclosed comment a@x", &[]),
    ("a@[unclosed", &[]),
    ("x>y@z, ok@x", &["ok@x"]),
    ("<a<b@c>, ok@x", &["ok@x"]),
    ("bad\u{1}ctl@x, \"tab\there\"@x, ok@x", &["ok@x"]),
    ("<a@x", &["a@x"]),
    ("postmaster", &["postmaster"]),
    ("", &[]),
];

#[test]
fn address_lists() {
    for &(list, expected) in ADDRESS_LISTS {
        assert_eq!(parse_address_list(list), expected, "{list:?}");
    }
}

#[test]
fn a_long_header_is_linear() {
    // 50,000 recipients in one To field, half of them duplicates.
    let mut m = String::from("From: a@x\r\nTo: ");
    for i in 0..50_000 {
        m.push_str(&format!("u{}@x, ", i % 25_000));
    }
    m.push_str("\r\n\r\n");
    let e = env(&m);
    assert_eq!(e.recipients.len(), 25_000);
    assert_eq!(e.recipients[24_999], "u24999@x");
}

// Property tests.

/// Header blocks made of realistic pieces, in any order.
fn header_block() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(&b"From: a@x\r\n"[..]),
        Just(&b"To: \"B, b\" <b@x>,\r\n c@x\r\n"[..]),
        Just(&b"Bcc: d@x\n"[..]),
        Just(&b"Resent-Date: x\r\n"[..]),
        Just(&b"Resent-To: g: e@x;\r\n"[..]),
        Just(&b"Resent-Bcc: f@x\r\n"[..]),
        Just(&b"\t(folded\r\n"[..]),
        Just(&b"\r\n"[..]),
        Just(&b"\n"[..]),
        Just(&b"\r"[..]),
        Just(&b":"[..]),
        Just(&b"<@"[..]),
        Just(&b"\""[..]),
        Just(&b"\xff\xfe"[..]),
    ];
    prop::collection::vec(piece, 0..30).prop_map(|p| p.concat())
}

/// One address with a random presentation, and the address it must yield.
fn presented_address() -> impl Strategy<Value = (String, String)> {
    (
        "[a-z0-9][a-z0-9.+-]{0,8}",
        "[a-z0-9]{1,8}(\\.[a-z]{2,4}){0,2}",
        0..5u8,
        "[A-Za-z ,:;<>@]{0,12}",
    )
        .prop_map(|(local, domain, style, name)| {
            let addr = format!("{local}@{domain}");
            let quoted = name.replace(['\\', '"'], "");
            let shown = match style {
                0 => addr.clone(),
                1 => format!("\"{quoted}\" <{addr}>"),
                2 => format!("{addr} ({quoted})"),
                3 => format!("(x) <{addr}> (y)"),
                _ => format!("\"{quoted}\" <@relay.example:{addr}>"),
            };
            (shown, addr)
        })
}

proptest! {
    #[test]
    fn parsing_never_panics(input in prop::collection::vec(any::<u8>(), 0..500)) {
        let _ = from_message(&input);
        let _ = parse_address_list(&String::from_utf8_lossy(&input));
    }

    #[test]
    fn header_blocks_never_panic_and_never_leak_bcc(
        block in header_block(), body in "[a-z.\r\n]{0,20}"
    ) {
        let mut m = block.clone();
        m.extend_from_slice(b"\r\n\r\n");
        m.extend_from_slice(body.as_bytes());
        if let Ok(e) = from_message(&m) {
            prop_assert!(e.body_offset <= m.len());
            prop_assert!(e.headers.len() <= e.body_offset);
            // No transmitted line is a Bcc or Resent-Bcc field.
            for line in e.headers.split(|&b| b == b'\n') {
                if let Some(colon) = line.iter().position(|&b| b == b':') {
                    if matches!(line.first(), Some(b' ' | b'\t')) {
                        continue;
                    }
                    let name = String::from_utf8_lossy(&line[..colon]).trim().to_ascii_lowercase();
                    prop_assert!(name != "bcc" && name != "resent-bcc", "{:?}", line);
                }
            }
            prop_assert!(!e.recipients.is_empty());
            let unique: std::collections::HashSet<_> = e.recipients.iter().collect();
            prop_assert_eq!(unique.len(), e.recipients.len());
        }
    }

    #[test]
    fn presented_addresses_parse_back(
        list in prop::collection::vec(presented_address(), 0..8), group in any::<bool>()
    ) {
        let shown: Vec<&str> = list.iter().map(|(s, _)| s.as_str()).collect();
        let joined = shown.join(", ");
        let value = if group { format!("the group: {joined};") } else { joined };
        let expected: Vec<&str> = list.iter().map(|(_, a)| a.as_str()).collect();
        prop_assert_eq!(parse_address_list(&value), expected);
    }
}

/// smtplib's `send_message(msg, from_addr, to_addrs)`: only what the caller did
/// not give comes from the headers (CPython's `testSendMessage` passes both for
/// a message without From or To), and Bcc is still never transmitted.
#[test]
fn prepared_message_takes_from_the_headers_only_what_is_not_given() {
    use smtp_sansio::{LineEndings, PreparedMessage};
    let prepare = |m: &str, from: Option<&str>, to: Option<&[&str]>| {
        PreparedMessage::new::<&str, &str, &str>(
            m.as_bytes(),
            from,
            to,
            &[],
            &[],
            LineEndings::Normalize,
        )
    };
    let envelope = |p: &PreparedMessage| {
        let t = &p.transaction;
        let to: Vec<&str> = t.to.iter().map(|r| r.address.as_str()).collect();
        (t.from.as_str().to_owned(), to.join(","))
    };
    // Neither From nor To: both given.
    let m = "Subject: hi\r\nBcc: hidden@x\r\n\r\nbody\r\n";
    let p = prepare(m, Some("a@x"), Some(&["b@x", "c@x"])).unwrap();
    assert_eq!(envelope(&p), ("a@x".into(), "b@x,c@x".into()));
    assert_eq!(p.headers, b"Subject: hi\r\n\r\n");
    assert_eq!(&m.as_bytes()[p.body_offset..], b"body\r\n");
    // No From: the sender given, the recipients from the headers.
    let m = "To: b@x\r\nCc: c@x\r\n\r\nbody\r\n";
    let p = prepare(m, Some("a@x"), None).unwrap();
    assert_eq!(envelope(&p), ("a@x".into(), "b@x,c@x".into()));
    // No To, Cc or Bcc: the recipients given, the sender from the headers.
    let m = "Sender: s@x\r\nFrom: f@x\r\n\r\nbody\r\n";
    let p = prepare(m, None, Some(&["b@x"])).unwrap();
    assert_eq!(envelope(&p), ("s@x".into(), "b@x".into()));
    // What is neither given nor in the headers is still an error.
    for (m, from, to) in [
        ("To: b@x\r\n\r\n", None, None),
        ("To: b@x\r\n\r\n", None, Some(&["b@x"][..])),
        ("From: a@x\r\n\r\n", None, None),
        ("From: a@x\r\n\r\n", Some("a@x"), None),
    ] {
        assert!(
            matches!(prepare(m, from, to), Err(UsageError::Envelope(_))),
            "{m:?} {from:?} {to:?}"
        );
    }
    // Two Resent- blocks stay an error, as in smtplib, whatever is given.
    let m = "Resent-Date: 1\r\nResent-Date: 2\r\nFrom: a@x\r\nTo: b@x\r\n\r\n";
    assert!(matches!(
        prepare(m, Some("a@x"), Some(&["b@x"])),
        Err(UsageError::Envelope(_))
    ));
}
