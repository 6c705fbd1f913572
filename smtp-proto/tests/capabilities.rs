//! EHLO and LHLO answers (RFC 5321 section 4.1.1.1, RFC 2033 section 4.1) as real
//! servers send them, parsed from the wire into [`Capabilities`].

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use smtp_sansio::{Capabilities, Reply, ReplyLimits, ReplyParser};

/// Parses the server's lines (`S:` side, without line endings) as one reply.
fn ehlo(server: &[&str]) -> Capabilities {
    let mut wire = Vec::new();
    for line in server {
        wire.extend_from_slice(line.as_bytes());
        wire.extend_from_slice(b"\r\n");
    }
    let (used, reply) = ReplyParser::new(ReplyLimits::default())
        .parse(&wire)
        .unwrap();
    assert_eq!(used, wire.len(), "one reply, nothing after it");
    Capabilities::parse(&reply.expect("a complete reply"))
}

/// The answer of `mx.example` announcing `lines`, with the `250-` and `250 `
/// prefixes added.
fn extensions(lines: &[&str]) -> Capabilities {
    let mut server = vec!["250-mx.example".to_owned()];
    for (i, line) in lines.iter().enumerate() {
        let sep = if i + 1 == lines.len() { ' ' } else { '-' };
        server.push(format!("250{sep}{line}"));
    }
    let refs: Vec<&str> = server.iter().map(String::as_str).collect();
    ehlo(&refs)
}

/// smtplib's `esmtp_features` view: keyword and parameters joined by a space.
fn features(c: &Capabilities) -> Vec<(String, String)> {
    c.iter().map(|(k, p)| (k.to_owned(), p)).collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(k, p)| ((*k).to_owned(), (*p).to_owned()))
        .collect()
}

#[test]
fn postfix_before_starttls() {
    let c = ehlo(&[
        "250-mail.example.com",
        "250-PIPELINING",
        "250-SIZE 10240000",
        "250-VRFY",
        "250-ETRN",
        "250-STARTTLS",
        "250-ENHANCEDSTATUSCODES",
        "250-8BITMIME",
        "250-DSN",
        "250-SMTPUTF8",
        "250 CHUNKING",
    ]);
    assert_eq!(c.greeting(), "mail.example.com");
    assert_eq!(
        features(&c),
        pairs(&[
            ("PIPELINING", ""),
            ("SIZE", "10240000"),
            ("VRFY", ""),
            ("ETRN", ""),
            ("STARTTLS", ""),
            ("ENHANCEDSTATUSCODES", ""),
            ("8BITMIME", ""),
            ("DSN", ""),
            ("SMTPUTF8", ""),
            ("CHUNKING", ""),
        ])
    );
    assert_eq!(c.size(), Some(10_240_000));
    assert!(c.pipelining() && c.starttls() && c.enhanced_status_codes());
    assert!(c.eight_bit_mime() && c.dsn() && c.smtputf8() && c.chunking());
    assert!(!c.binary_mime() && !c.requiretls() && !c.has("AUTH"));
    assert!(c.auth_mechanisms().is_empty());
}

#[test]
fn postfix_after_starttls_offers_auth_in_both_forms() {
    // Postfix with broken_sasl_auth_clients = yes.
    let c = ehlo(&[
        "250-mail.example.com",
        "250-PIPELINING",
        "250-SIZE 10240000",
        "250-AUTH PLAIN LOGIN",
        "250-AUTH=PLAIN LOGIN",
        "250-ENHANCEDSTATUSCODES",
        "250-8BITMIME",
        "250 DSN",
    ]);
    assert!(!c.starttls());
    assert_eq!(c.auth_mechanisms(), ["PLAIN", "LOGIN"]);
    assert_eq!(c.params("AUTH").unwrap(), ["PLAIN", "LOGIN"]);
    assert_eq!(
        features(&c).iter().filter(|(k, _)| k == "AUTH").count(),
        1,
        "AUTH appears once"
    );
}

#[test]
fn exim() {
    let c = ehlo(&[
        "250-mx.example.org Hello client.example [192.0.2.7]",
        "250-SIZE 52428800",
        "250-LIMITS MAILMAX=1000 RCPTMAX=50000",
        "250-8BITMIME",
        "250-PIPELINING",
        "250-PIPE_CONNECT",
        "250-CHUNKING",
        "250-AUTH CRAM-MD5 PLAIN",
        "250-PRDR",
        "250-STARTTLS",
        "250 HELP",
    ]);
    assert_eq!(
        c.greeting(),
        "mx.example.org Hello client.example [192.0.2.7]"
    );
    assert_eq!(c.size(), Some(52_428_800));
    assert_eq!(
        c.params("LIMITS").unwrap(),
        ["MAILMAX=1000", "RCPTMAX=50000"]
    );
    // "_" is not allowed in a keyword (RFC 5321 section 4.1.1.1): skipped, and
    // certainly not taken for PIPELINING's prefix.
    assert!(!c.has("PIPE_CONNECT") && !c.has("PIPE"));
    assert!(c.pipelining() && c.chunking() && c.starttls() && c.has("prdr"));
    assert_eq!(c.auth_mechanisms(), ["CRAM-MD5", "PLAIN"]);
    assert!(c.has("HELP"));
}

#[test]
fn microsoft_old_auth_form_merged_with_the_new() {
    let c = ehlo(&[
        "250-outlook.example Hello [192.0.2.7]",
        "250-SIZE 37748736",
        "250-PIPELINING",
        "250-DSN",
        "250-ENHANCEDSTATUSCODES",
        "250-AUTH=LOGIN",
        "250-AUTH LOGIN PLAIN XOAUTH2",
        "250-8BITMIME",
        "250-BINARYMIME",
        "250-CHUNKING",
        "250 SMTPUTF8",
    ]);
    assert_eq!(c.auth_mechanisms(), ["LOGIN", "PLAIN", "XOAUTH2"]);
    assert_eq!(c.params("auth").unwrap(), ["LOGIN", "PLAIN", "XOAUTH2"]);
    assert!(c.binary_mime() && c.chunking() && c.smtputf8());
    assert_eq!(c.size(), Some(37_748_736));
}

#[test]
fn auth_forms_table() {
    let table: &[(&[&str], &[&str])] = &[
        (&["AUTH=LOGIN PLAIN"], &["LOGIN", "PLAIN"]),
        (&["auth=login plain"], &["LOGIN", "PLAIN"]),
        (&["AUTH LOGIN PLAIN", "AUTH=LOGIN"], &["LOGIN", "PLAIN"]),
        (&["AUTH=LOGIN", "AUTH LOGIN PLAIN"], &["LOGIN", "PLAIN"]),
        (&["AUTH=PLAIN", "AUTH CRAM-MD5"], &["PLAIN", "CRAM-MD5"]),
        (&["AUTH login LOGIN Plain"], &["LOGIN", "PLAIN"]),
        (&["AUTH"], &[]),
        (&["AUTH="], &[]),
        (&["AUTH=", "AUTH GSSAPI"], &["GSSAPI"]),
    ];
    for (lines, mechanisms) in table {
        let c = extensions(lines);
        assert_eq!(c.auth_mechanisms(), *mechanisms, "{lines:?}");
        assert!(c.has("AUTH"), "{lines:?}");
    }
}

#[test]
fn keywords_are_case_insensitive() {
    let c = ehlo(&[
        "250-mx.example",
        "250-pipelining",
        "250-Size 1000",
        "250-StartTLS",
        "250 8bitmime",
    ]);
    for k in [
        "PIPELINING",
        "pipelining",
        "PiPeLiNiNg",
        "SIZE",
        "size",
        "starttls",
        "8BITMIME",
    ] {
        assert!(c.has(k), "{k}");
    }
    assert_eq!(
        features(&c),
        pairs(&[
            ("PIPELINING", ""),
            ("SIZE", "1000"),
            ("STARTTLS", ""),
            ("8BITMIME", ""),
        ])
    );
    assert!(c.pipelining() && c.starttls() && c.eight_bit_mime());
    assert_eq!(c.size(), Some(1000));
    assert!(!c.has("pipe") && !c.has("") && !c.has("PIPELINING "));
}

#[test]
fn size_forms() {
    // RFC 1870 section 4: "SIZE" alone or "SIZE 0" means no fixed limit.
    let table: &[(&str, bool, Option<u64>)] = &[
        ("250 SIZE", true, None),
        ("250 SIZE 0", true, None),
        ("250 SIZE 10240000", true, Some(10_240_000)),
        ("250 SIZE 1", true, Some(1)),
        ("250 SIZE junk", true, None),
        ("250 SIZE -5", true, None),
        ("250 SIZE 99999999999999999999999", true, None),
        ("250 SIZE 18446744073709551615", true, Some(u64::MAX)),
        ("250 SIZE 1000 extra", true, Some(1000)),
        ("250 SIZE\t2048", true, Some(2048)),
        ("250 NOSIZE", false, None),
    ];
    for (line, offered, limit) in table {
        let c = ehlo(&["250-mx.example", line]);
        assert_eq!((c.offers_size(), c.size()), (*offered, *limit), "{line}");
    }
}

#[test]
fn invalid_lines_are_skipped() {
    let c = ehlo(&[
        "250-mx.example",
        "250-",
        "250-   ",
        "250--BAD",
        "250-=x",
        "250-SIZE=100",
        "250-X_UNDERSCORE",
        "250-BÜCHER",
        "250-{json}",
        "250-GOOD-ONE a b",
        "250-  LEADING-SPACE x",
        "250 X-EXPS GSSAPI NTLM",
    ]);
    assert_eq!(
        features(&c),
        pairs(&[
            ("GOOD-ONE", "a b"),
            ("LEADING-SPACE", "x"),
            ("X-EXPS", "GSSAPI NTLM"),
        ])
    );
    assert!(!c.offers_size(), "SIZE=100 is not the SIZE keyword");
}

#[test]
fn parameters_are_split_on_whitespace() {
    let c = ehlo(&["250-mx.example", "250 XCLIENT  NAME\tADDR   PROTO  "]);
    assert_eq!(c.params("xclient").unwrap(), ["NAME", "ADDR", "PROTO"]);
    assert_eq!(features(&c), pairs(&[("XCLIENT", "NAME ADDR PROTO")]));
    assert_eq!(c.params("NOT-THERE"), None);
    assert_eq!(c.params("XCLIENT").map(<[String]>::len), Some(3));
}

#[test]
fn the_greeting_line_is_not_a_keyword() {
    let c = ehlo(&["250 PIPELINING is my host name"]);
    assert_eq!(c.greeting(), "PIPELINING is my host name");
    assert!(!c.pipelining());
    assert_eq!(features(&c), pairs(&[]));
    assert_eq!(Capabilities::default().greeting(), "");
    assert!(!Capabilities::default().has("SIZE"));
}

#[test]
fn lhlo_answer_from_an_lmtp_server() {
    // Dovecot's LMTP answer to LHLO (RFC 2033 section 4.1).
    let c = ehlo(&[
        "250-mail.example.org",
        "250-8BITMIME",
        "250-CHUNKING",
        "250-ENHANCEDSTATUSCODES",
        "250-PIPELINING",
        "250-STARTTLS",
        "250 XCLIENT ADDR FORWARD HELO LOGIN PORT PROTO SESSION TIMEOUT TTL",
    ]);
    assert_eq!(c.greeting(), "mail.example.org");
    assert!(c.pipelining() && c.chunking() && c.eight_bit_mime() && c.enhanced_status_codes());
    assert!(!c.offers_size() && !c.has("AUTH"));
    assert_eq!(c.params("XCLIENT").unwrap().len(), 9);
}

#[test]
fn every_typed_getter() {
    type Getter = fn(&Capabilities) -> bool;
    let table: &[(&str, Getter)] = &[
        ("PIPELINING", Capabilities::pipelining),
        ("STARTTLS", Capabilities::starttls),
        ("SMTPUTF8", Capabilities::smtputf8),
        ("8BITMIME", Capabilities::eight_bit_mime),
        ("CHUNKING", Capabilities::chunking),
        ("BINARYMIME", Capabilities::binary_mime),
        ("DSN", Capabilities::dsn),
        ("ENHANCEDSTATUSCODES", Capabilities::enhanced_status_codes),
        ("REQUIRETLS", Capabilities::requiretls),
        ("SIZE", Capabilities::offers_size),
    ];
    let nothing = ehlo(&["250 mx.example"]);
    for (keyword, getter) in table {
        let line = format!("250 {}", keyword.to_ascii_lowercase());
        let c = ehlo(&["250-mx.example", &line]);
        assert!(getter(&c), "{keyword}");
        assert!(!getter(&nothing), "{keyword}");
        // Each getter answers for its own keyword only.
        for (other, other_getter) in table {
            if other != keyword {
                assert!(!other_getter(&c), "{keyword} is not {other}");
            }
        }
    }
}

#[test]
fn parse_works_on_a_reply_built_by_hand() {
    let r = Reply::new(
        250,
        vec!["mx".into(), "AUTH=LOGIN".into(), "AUTH LOGIN PLAIN".into()],
    );
    let c = Capabilities::parse(&r);
    assert_eq!(c.auth_mechanisms(), ["LOGIN", "PLAIN"]);
    assert_eq!(c.clone(), c);
}

#[test]
fn smtplib_tutorial_server_before_and_after_starttls() {
    // The transcript in the smtplib tutorial: STARTTLS disappears after the upgrade.
    let before = ehlo(&[
        "250-elasmtp-isp.net Hello localhost.local [192.0.2.7]",
        "250-SIZE 14680064",
        "250-PIPELINING",
        "250-AUTH PLAIN LOGIN CRAM-MD5",
        "250-STARTTLS",
        "250 HELP",
    ]);
    let after = ehlo(&[
        "250-elasmtp-isp.net Hello localhost.local [192.0.2.7]",
        "250-SIZE 14680064",
        "250-PIPELINING",
        "250-AUTH PLAIN LOGIN CRAM-MD5",
        "250 HELP",
    ]);
    assert!(before.starttls() && !after.starttls());
    for c in [&before, &after] {
        assert_eq!(c.size(), Some(14_680_064));
        assert_eq!(c.auth_mechanisms(), ["PLAIN", "LOGIN", "CRAM-MD5"]);
    }
}

proptest! {
    #[test]
    fn any_lines_give_well_formed_keywords(lines in prop::collection::vec("\\PC{0,40}|[ -~]{0,40}", 0..12)) {
        let c = Capabilities::parse(&Reply::new(250, lines));
        for (keyword, params) in c.iter() {
            prop_assert!(keyword.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric()));
            prop_assert!(keyword.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-'));
            prop_assert!(c.has(keyword) && c.has(&keyword.to_ascii_lowercase()));
            prop_assert_eq!(params.split(' ').filter(|p| !p.is_empty()).count(), c.params(keyword).unwrap().len());
        }
        let mechanisms = c.auth_mechanisms();
        for (i, m) in mechanisms.iter().enumerate() {
            prop_assert_eq!(m.to_ascii_uppercase(), m.clone());
            prop_assert!(!mechanisms[..i].contains(m));
        }
        let _ = c.size();
    }
}

#[test]
fn pipe_connect_needs_pipelining_and_exims_keyword() {
    let table: &[(&[&str], bool)] = &[
        (&["250-PIPELINING", "250 PIPECONNECT"], true),
        (&["250-pipeconnect", "250 pipelining"], true),
        (&["250 PIPECONNECT"], false),
        (&["250 PIPELINING"], false),
        // Exim 4.92 to 4.95: not an ehlo-keyword, skipped.
        (&["250-PIPELINING", "250 X_PIPE_CONNECT"], false),
        (&["250-PIPELINING", "250 PIPE_CONNECT"], false),
    ];
    for (lines, offered) in table {
        let mut all = vec!["250-mx.example"];
        all.extend_from_slice(lines);
        assert_eq!(ehlo(&all).pipe_connect(), *offered, "{lines:?}");
    }
}
