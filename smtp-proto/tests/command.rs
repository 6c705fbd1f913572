//! Command lines as they go on the wire (RFC 5321 section 4.1, RFC 4954, RFC 3030,
//! RFC 2033, RFC 3461), and the argument types that make injecting a second command
//! impossible.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use smtp_sansio::command::{MechanismName, xtext_decode, xtext_encode};
use smtp_sansio::{Address, Command, Domain, Parameter, Text, UsageError, Verb};

fn domain(s: &str) -> Domain {
    Domain::new(s).unwrap()
}

fn addr(s: &str) -> Address {
    Address::new(s).unwrap()
}

fn param(s: &str) -> Parameter {
    Parameter::parse(s).unwrap()
}

fn text(s: &str) -> Text {
    Text::new(s).unwrap()
}

fn mech(s: &str) -> MechanismName {
    MechanismName::new(s).unwrap()
}

/// Commands and the exact line each puts on the wire.
fn assert_wire(table: Vec<(Command, &str)>) {
    for (cmd, wire) in table {
        assert_eq!(String::from_utf8(cmd.to_bytes()).unwrap(), wire, "{cmd:?}");
        let mut appended = b"previous\r\n".to_vec();
        cmd.encode(&mut appended);
        assert_eq!(&appended[10..], wire.as_bytes(), "encode appends");
    }
}

fn is_invalid<T: std::fmt::Debug>(r: Result<T, UsageError>) -> bool {
    matches!(r, Err(UsageError::InvalidArgument { .. }))
}

#[test]
fn greeting_commands() {
    assert_wire(vec![
        (
            Command::Ehlo(domain("client.example.org")),
            "EHLO client.example.org\r\n",
        ),
        (
            Command::Helo(domain("client.example.org")),
            "HELO client.example.org\r\n",
        ),
        (
            Command::Lhlo(domain("client.example.org")),
            "LHLO client.example.org\r\n",
        ),
        (Command::Ehlo(domain("[192.0.2.1]")), "EHLO [192.0.2.1]\r\n"),
        (
            Command::Ehlo(Domain::address_literal("192.0.2.1".parse().unwrap())),
            "EHLO [192.0.2.1]\r\n",
        ),
        (
            Command::Ehlo(Domain::address_literal("2001:db8::1".parse().unwrap())),
            "EHLO [IPv6:2001:db8::1]\r\n",
        ),
        (Command::StartTls, "STARTTLS\r\n"),
        (Command::Quit, "QUIT\r\n"),
    ]);
}

#[test]
fn auth_lines() {
    assert_wire(vec![
        (
            Command::Auth {
                mechanism: mech("cram-md5"),
                initial: None,
            },
            "AUTH CRAM-MD5\r\n",
        ),
        // RFC 4954 section 4: an empty initial response is sent as "=".
        (
            Command::Auth {
                mechanism: mech("PLAIN"),
                initial: Some(vec![]),
            },
            "AUTH PLAIN =\r\n",
        ),
        // RFC 4616 section 4's example message, "\0tim\0tanstaaftanstaaf".
        (
            Command::Auth {
                mechanism: mech("PLAIN"),
                initial: Some(b"\0tim\0tanstaaftanstaaf".to_vec()),
            },
            "AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n",
        ),
        (
            Command::Auth {
                mechanism: mech("LOGIN"),
                initial: Some(b"user".to_vec()),
            },
            "AUTH LOGIN dXNlcg==\r\n",
        ),
        (
            Command::AuthResponse(b"password".to_vec()),
            "cGFzc3dvcmQ=\r\n",
        ),
        (Command::AuthResponse(vec![]), "\r\n"),
        (Command::AuthResponse(vec![0x01]), "AQ==\r\n"),
        (Command::AuthCancel, "*\r\n"),
    ]);
}

#[test]
fn mail_transaction_lines() {
    assert_wire(vec![
        (
            Command::Mail {
                from: addr("alice@example.org"),
                params: vec![],
            },
            "MAIL FROM:<alice@example.org>\r\n",
        ),
        (
            Command::Mail {
                from: Address::null(),
                params: vec![],
            },
            "MAIL FROM:<>\r\n",
        ),
        (
            Command::Mail {
                from: addr("alice@example.org"),
                params: vec![
                    Parameter::size(12345),
                    param("BODY=8BITMIME"),
                    param("SMTPUTF8"),
                ],
            },
            "MAIL FROM:<alice@example.org> SIZE=12345 BODY=8BITMIME SMTPUTF8\r\n",
        ),
        (
            Command::Rcpt {
                to: addr("bob@example.net"),
                params: vec![],
            },
            "RCPT TO:<bob@example.net>\r\n",
        ),
        (
            Command::Rcpt {
                to: addr("bob@example.net"),
                params: vec![param("NOTIFY=SUCCESS,FAILURE")],
            },
            "RCPT TO:<bob@example.net> NOTIFY=SUCCESS,FAILURE\r\n",
        ),
        (
            Command::Rcpt {
                to: addr("jörg@bücher.example"),
                params: vec![],
            },
            "RCPT TO:<jörg@bücher.example>\r\n",
        ),
        (Command::Data, "DATA\r\n"),
        (
            Command::Bdat {
                size: 1024,
                last: false,
            },
            "BDAT 1024\r\n",
        ),
        (
            Command::Bdat {
                size: 0,
                last: true,
            },
            "BDAT 0 LAST\r\n",
        ),
        (
            Command::Bdat {
                size: u64::MAX,
                last: true,
            },
            "BDAT 18446744073709551615 LAST\r\n",
        ),
        (Command::Rset, "RSET\r\n"),
    ]);
}

#[test]
fn other_commands() {
    assert_wire(vec![
        (Command::Noop(None), "NOOP\r\n"),
        (Command::Noop(Some(text("ping"))), "NOOP ping\r\n"),
        (Command::Vrfy(text("postmaster")), "VRFY postmaster\r\n"),
        (Command::Expn(text("staff-list")), "EXPN staff-list\r\n"),
        (Command::Help(None), "HELP\r\n"),
        (Command::Help(Some(text("MAIL"))), "HELP MAIL\r\n"),
        (
            Command::Raw {
                verb: Verb::new("xclient").unwrap(),
                args: Some(text("NAME=spike.example ADDR=192.0.2.7")),
            },
            "XCLIENT NAME=spike.example ADDR=192.0.2.7\r\n",
        ),
        (
            Command::Raw {
                verb: Verb::new("Etrn").unwrap(),
                args: None,
            },
            "ETRN\r\n",
        ),
    ]);
}

#[test]
fn rfc3461_dsn_example_lines() {
    // RFC 3461's examples: MAIL with RET and ENVID, RCPT with NOTIFY and ORCPT.
    assert_wire(vec![
        (
            Command::Mail {
                from: addr("Alice@Y.ORG"),
                params: vec![param("RET=HDRS"), Parameter::envid("QQ314159").unwrap()],
            },
            "MAIL FROM:<Alice@Y.ORG> RET=HDRS ENVID=QQ314159\r\n",
        ),
        (
            Command::Rcpt {
                to: addr("Bob@Y.ORG"),
                params: vec![
                    param("NOTIFY=SUCCESS,FAILURE"),
                    Parameter::orcpt("rfc822", "Bob@Y.ORG").unwrap(),
                ],
            },
            "RCPT TO:<Bob@Y.ORG> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob@Y.ORG\r\n",
        ),
    ]);
}

/// Strings that would end the command line early and start another command.
const INJECTIONS: &[&str] = &[
    "a@b>\r\nRCPT TO:<evil@x",
    "a@b\r\nDATA",
    "a@b\nRSET",
    "a@b\rQUIT",
    "a@b\0",
    "\0",
    "\r\n",
    "x\u{7f}",
    "x\ty",
];

#[test]
fn every_argument_type_refuses_cr_lf_and_nul() {
    for evil in INJECTIONS {
        assert!(is_invalid(Address::new(evil)), "Address {evil:?}");
        assert!(is_invalid(Domain::new(*evil)), "Domain {evil:?}");
        assert!(is_invalid(Text::new(*evil)), "Text {evil:?}");
        assert!(is_invalid(Verb::new(evil)), "Verb {evil:?}");
        assert!(
            is_invalid(MechanismName::new(evil)),
            "MechanismName {evil:?}"
        );
        assert!(is_invalid(Parameter::parse(evil)), "Parameter {evil:?}");
        assert!(is_invalid(Parameter::new(evil, None)), "keyword {evil:?}");
        assert!(
            is_invalid(Parameter::new("X-OK", Some(evil))),
            "value {evil:?}"
        );
        assert!(is_invalid(Parameter::envid(evil)), "ENVID {evil:?}");
        assert!(
            is_invalid(Parameter::orcpt("rfc822", evil)),
            "ORCPT {evil:?}"
        );
        assert!(
            is_invalid(Parameter::orcpt(evil, "a@b")),
            "ORCPT type {evil:?}"
        );
    }
}

#[test]
fn injection_through_a_display_name_is_refused() {
    for evil in [
        "Mallory\r\nRCPT TO:<evil@x> <m@x>",
        "<m@x>\r\nRCPT TO:<evil@x>",
        "\"Mallory\n\" <m@x>",
    ] {
        assert!(is_invalid(Address::new(evil)), "{evil:?}");
    }
}

#[test]
fn address_forms() {
    let table: &[(&str, &str)] = &[
        ("user@example.org", "user@example.org"),
        ("<user@example.org>", "user@example.org"),
        ("  <user@example.org>  ", "user@example.org"),
        ("Alice Example <user@example.org>", "user@example.org"),
        ("\"Example, Alice\" <user@example.org>", "user@example.org"),
        ("\"a <quoted> name\" <user@example.org>", "user@example.org"),
        ("\"john doe\"@example.org", "\"john doe\"@example.org"),
        ("<\"a<b\"@example.org>", "\"a<b\"@example.org"),
        ("<\"a>b\"@example.org>", "\"a>b\"@example.org"),
        ("<\"a\\\"b\"@example.org>", "\"a\\\"b\"@example.org"),
        ("jörg@bücher.example", "jörg@bücher.example"),
        ("postmaster", "postmaster"),
        ("", ""),
        ("<>", ""),
    ];
    for (input, inner) in table {
        assert_eq!(Address::new(input).unwrap().as_str(), *inner, "{input:?}");
    }
    assert_eq!(Address::new("<>").unwrap(), Address::null());
    assert!(Address::new("user@example.org").unwrap().is_ascii());
    assert!(!Address::new("jörg@bücher.example").unwrap().is_ascii());
    assert_eq!(addr("Bob <b@x>").to_string(), "b@x");
}

#[test]
fn address_refusals() {
    for bad in [
        "a b@example.org",
        "<a b@example.org>",
        "a@b>",
        "<a@b",
        "<a@b> trailing",
        "<<a@b>>",
        "\"unclosed <a@b>",
        "<\"unclosed@b>",
    ] {
        assert!(is_invalid(Address::new(bad)), "{bad:?}");
    }
    let long = format!("{}@example.org", "a".repeat(1100));
    assert!(is_invalid(Address::new(long)));
}

#[test]
fn domain_rules() {
    for good in [
        "mx.example.org",
        "[192.0.2.1]",
        "[IPv6:2001:db8::1]",
        "localhost",
    ] {
        assert_eq!(Domain::new(good).unwrap().as_str(), good);
    }
    for bad in ["", "two words", "bücher.example"] {
        assert!(is_invalid(Domain::new(bad)), "{bad:?}");
    }
    assert!(is_invalid(Domain::new("a".repeat(256))));
    assert!(Domain::new("a".repeat(255)).is_ok());
}

#[test]
fn parameter_parse() {
    let table: &[(&str, &str, Option<&str>)] = &[
        ("SIZE=1000", "SIZE", Some("1000")),
        ("body=8bitmime", "BODY", Some("8bitmime")),
        ("SMTPUTF8", "SMTPUTF8", None),
        ("NOTIFY=SUCCESS,DELAY", "NOTIFY", Some("SUCCESS,DELAY")),
        ("ORCPT=rfc822;a+2Bb@x", "ORCPT", Some("rfc822;a+2Bb@x")),
        ("X-Vendor-Flag", "X-VENDOR-FLAG", None),
        ("MT-PRIORITY=-3", "MT-PRIORITY", Some("-3")),
    ];
    for (input, keyword, value) in table {
        let p = Parameter::parse(input).unwrap();
        assert_eq!((p.keyword(), p.value()), (*keyword, *value), "{input:?}");
    }
    assert_eq!(param("body=8BITMIME").to_string(), "BODY=8BITMIME");
    assert_eq!(Parameter::size(0).to_string(), "SIZE=0");
    for bad in [
        "", "=x", "SIZE=", "SIZE=1=2", "SIZE=1 2", "-X", "SI ZE", "SIZE =1", "ÜBER",
    ] {
        assert!(is_invalid(Parameter::parse(bad)), "{bad:?}");
    }
}

#[test]
fn xtext_rfc3461_section4() {
    // xchar is "!" to "~" except "+" and "="; everything else is "+" and two
    // upper-case hex digits.
    let table: &[(&str, &str)] = &[
        ("QQ314159", "QQ314159"),
        ("Bob@Y.ORG", "Bob@Y.ORG"),
        ("a+b", "a+2Bb"),
        ("a=b", "a+3Db"),
        ("a b", "a+20b"),
        ("~!", "~!"),
        ("é", "+C3+A9"),
        ("", ""),
    ];
    for (plain, xtext) in table {
        assert_eq!(xtext_encode(plain), *xtext, "{plain:?}");
        assert_eq!(xtext_decode(xtext).unwrap(), plain.as_bytes(), "{xtext:?}");
    }
    for bad in ["+", "+2", "a+2g", "+2b", "+zz"] {
        assert_eq!(xtext_decode(bad), None, "{bad:?}");
    }
    assert_eq!(
        Parameter::orcpt("rfc822", "a+b=c@x").unwrap().to_string(),
        "ORCPT=rfc822;a+2Bb+3Dc@x"
    );
    assert_eq!(
        Parameter::envid("id with spaces").unwrap().to_string(),
        "ENVID=id+20with+20spaces"
    );
    assert!(is_invalid(Parameter::orcpt("", "a@b")));
    assert!(is_invalid(Parameter::orcpt("rfc 822", "a@b")));
    assert!(is_invalid(Parameter::orcpt("utf-8", "jörg@x")));
    assert!(is_invalid(Parameter::envid("é")));
}

#[test]
fn verbs_and_mechanism_names() {
    assert_eq!(Verb::new("xclient").unwrap().as_str(), "XCLIENT");
    assert_eq!(
        Verb::new("X-ANONYMOUSTLS").unwrap().as_str(),
        "X-ANONYMOUSTLS"
    );
    assert_eq!(mech("scram-sha-256").as_str(), "SCRAM-SHA-256");
    assert_eq!(mech("GS2_KRB5").as_str(), "GS2_KRB5");
    for bad in ["", "MAIL FROM", "x".repeat(21).as_str(), "A:B"] {
        assert!(is_invalid(Verb::new(bad)), "{bad:?}");
    }
    for bad in ["", "PLAIN LOGIN", "x".repeat(21).as_str(), "PLAIN="] {
        assert!(is_invalid(MechanismName::new(bad)), "{bad:?}");
    }
    assert!(is_invalid(Text::new("x".repeat(1001))));
    assert_eq!(
        text("any text, even ünïcode").as_str(),
        "any text, even ünïcode"
    );
}

#[test]
fn redacted_hides_auth_secrets() {
    let table: Vec<(Command, &str, bool)> = vec![
        (
            Command::Auth {
                mechanism: mech("PLAIN"),
                initial: Some(b"\0tim\0tanstaaftanstaaf".to_vec()),
            },
            "AUTH PLAIN <redacted>",
            true,
        ),
        (
            Command::Auth {
                mechanism: mech("PLAIN"),
                initial: Some(vec![]),
            },
            "AUTH PLAIN <redacted>",
            true,
        ),
        (
            Command::Auth {
                mechanism: mech("CRAM-MD5"),
                initial: None,
            },
            "AUTH CRAM-MD5",
            false,
        ),
        (
            Command::AuthResponse(b"tanstaaftanstaaf".to_vec()),
            "<redacted>",
            true,
        ),
        (Command::AuthCancel, "*", false),
        (Command::Quit, "QUIT", false),
        (
            Command::Mail {
                from: addr("a@x"),
                params: vec![Parameter::size(5)],
            },
            "MAIL FROM:<a@x> SIZE=5",
            false,
        ),
    ];
    for (cmd, shown, sensitive) in table {
        assert_eq!(cmd.redacted(), shown);
        assert_eq!(cmd.is_sensitive(), sensitive, "{shown}");
    }
}

#[test]
fn debug_of_a_command_hides_secrets() {
    let secret = b"\0tim\0tanstaaftanstaaf".to_vec();
    let cmds = [
        Command::Auth {
            mechanism: mech("PLAIN"),
            initial: Some(secret.clone()),
        },
        Command::AuthResponse(secret),
        Command::AuthResponse(b"tanstaaftanstaaf".to_vec()),
    ];
    for cmd in &cmds {
        let shown = format!("{cmd:?} {cmd:#?}");
        for leak in [
            "tanstaaf",
            "AHRpbQB0YW5zdGFhZnRhbnN0YWFm",
            "dGFuc3RhYWZ0YW5zdGFhZg",
        ] {
            assert!(!shown.contains(leak), "{shown}");
        }
    }
    // A line without a secret is shown in full.
    assert_eq!(format!("{:?}", Command::Quit), "Command(\"QUIT\")");
}

proptest! {
    #[test]
    fn xtext_round_trips(s in "\\PC{0,40}") {
        let x = xtext_encode(&s);
        prop_assert!(x.bytes().all(|b| (b'!'..=b'~').contains(&b) && b != b'='));
        prop_assert_eq!(xtext_decode(&x).unwrap(), s.as_bytes());
    }

    #[test]
    fn xtext_decode_never_panics(s in "[ -~]{0,40}") {
        if let Some(bytes) = xtext_decode(&s) {
            prop_assert!(bytes.len() <= s.len());
        }
    }

    #[test]
    fn no_accepted_argument_can_break_the_line(s in "\\PC{0,30}|[\\x00-\\x7f]{0,30}") {
        let mut lines = Vec::new();
        if let Ok(a) = Address::new(&s) {
            lines.push(Command::Rcpt { to: a, params: vec![] }.to_bytes());
        }
        if let Ok(d) = Domain::new(s.clone()) {
            lines.push(Command::Ehlo(d).to_bytes());
        }
        if let Ok(t) = Text::new(s.clone()) {
            lines.push(Command::Vrfy(t).to_bytes());
        }
        if let Ok(p) = Parameter::parse(&s) {
            lines.push(Command::Mail { from: Address::null(), params: vec![p] }.to_bytes());
        }
        for line in lines {
            let body = &line[..line.len() - 2];
            prop_assert!(line.ends_with(b"\r\n"));
            prop_assert!(!body.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0));
        }
    }
}
