//! Commands, capabilities, SASL mechanisms and the envelope, value by value.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use smtp_sansio::command::{Command, MechanismName, Text, Verb, xtext_decode, xtext_encode};
use smtp_sansio::envelope::{from_message, parse_address_list};
use smtp_sansio::sasl::{
    CramMd5, Credentials, Login, Mechanism, OAuthBearer, Plain, Secret, XOAuth2, login_mechanisms,
};
use smtp_sansio::{Address, Capabilities, Domain, Parameter, Reply, UsageError};

fn s(c: &Command) -> String {
    String::from_utf8(c.to_bytes()).unwrap()
}

#[test]
fn every_command_encodes_exactly() {
    let a = |x: &str| Address::new(x).unwrap();
    let table: Vec<(Command, &str)> = vec![
        (
            Command::Ehlo(Domain::new("c.example").unwrap()),
            "EHLO c.example\r\n",
        ),
        (
            Command::Helo(Domain::new("c.example").unwrap()),
            "HELO c.example\r\n",
        ),
        (
            Command::Lhlo(Domain::new("c.example").unwrap()),
            "LHLO c.example\r\n",
        ),
        (Command::StartTls, "STARTTLS\r\n"),
        (
            Command::Auth {
                mechanism: MechanismName::new("plain").unwrap(),
                initial: None,
            },
            "AUTH PLAIN\r\n",
        ),
        (
            Command::Auth {
                mechanism: MechanismName::new("PLAIN").unwrap(),
                initial: Some(vec![]),
            },
            "AUTH PLAIN =\r\n",
        ),
        (
            Command::Auth {
                mechanism: MechanismName::new("PLAIN").unwrap(),
                initial: Some(b"\0u\0p".to_vec()),
            },
            "AUTH PLAIN AHUAcA==\r\n",
        ),
        (Command::AuthResponse(b"user".to_vec()), "dXNlcg==\r\n"),
        (Command::AuthResponse(vec![]), "\r\n"),
        (Command::AuthCancel, "*\r\n"),
        (
            Command::Mail {
                from: a("a@x"),
                params: vec![
                    Parameter::size(10),
                    Parameter::parse("body=8bitmime").unwrap(),
                ],
            },
            "MAIL FROM:<a@x> SIZE=10 BODY=8bitmime\r\n",
        ),
        (
            Command::Mail {
                from: Address::null(),
                params: vec![],
            },
            "MAIL FROM:<>\r\n",
        ),
        (
            Command::Rcpt {
                to: a("b@x"),
                params: vec![],
            },
            "RCPT TO:<b@x>\r\n",
        ),
        (Command::Data, "DATA\r\n"),
        (
            Command::Bdat {
                size: 12,
                last: false,
            },
            "BDAT 12\r\n",
        ),
        (
            Command::Bdat {
                size: 0,
                last: true,
            },
            "BDAT 0 LAST\r\n",
        ),
        (Command::Rset, "RSET\r\n"),
        (Command::Noop(None), "NOOP\r\n"),
        (
            Command::Vrfy(Text::new("postmaster").unwrap()),
            "VRFY postmaster\r\n",
        ),
        (Command::Expn(Text::new("staff").unwrap()), "EXPN staff\r\n"),
        (Command::Help(None), "HELP\r\n"),
        (
            Command::Help(Some(Text::new("MAIL").unwrap())),
            "HELP MAIL\r\n",
        ),
        (Command::Quit, "QUIT\r\n"),
        (
            Command::Raw {
                verb: Verb::new("xclient").unwrap(),
                args: Some(Text::new("NAME=x").unwrap()),
            },
            "XCLIENT NAME=x\r\n",
        ),
    ];
    for (cmd, wire) in table {
        assert_eq!(s(&cmd), wire);
    }
}

#[test]
fn arguments_refuse_line_breaks_and_nul() {
    for evil in [
        "a@b>\r\nRCPT TO:<evil@x",
        "a@b\n",
        "a@b\r",
        "a\0@b",
        "a@b\t",
    ] {
        assert!(
            matches!(Address::new(evil), Err(UsageError::InvalidArgument { .. })),
            "{evil:?}"
        );
        assert!(Text::new(evil).is_err(), "{evil:?}");
        assert!(Domain::new(evil).is_err(), "{evil:?}");
        assert!(Parameter::parse(evil).is_err(), "{evil:?}");
        assert!(Verb::new(evil).is_err(), "{evil:?}");
    }
    assert!(Parameter::new("SIZE", Some("1 2")).is_err());
    assert!(Parameter::new("SI=ZE", None).is_err());
    assert!(Domain::new("").is_err());
    assert!(Domain::new("a b").is_err());
    assert!(Domain::new("bücher.example").is_err());
    assert!(MechanismName::new("PLAIN LOGIN").is_err());
    assert!(Address::new("a b@x").is_err());
}

#[test]
fn address_forms() {
    assert_eq!(Address::new("a@x").unwrap().as_str(), "a@x");
    assert_eq!(Address::new("<a@x>").unwrap().as_str(), "a@x");
    assert_eq!(Address::new("Alice Example <a@x>").unwrap().as_str(), "a@x");
    assert_eq!(Address::new("\"a b\"@x").unwrap().as_str(), "\"a b\"@x");
    assert_eq!(Address::new("").unwrap(), Address::null());
    assert!(!Address::new("ü@x").unwrap().is_ascii());
    assert_eq!(
        Domain::address_literal("192.0.2.1".parse().unwrap()).as_str(),
        "[192.0.2.1]"
    );
    assert_eq!(
        Domain::address_literal("2001:db8::1".parse().unwrap()).as_str(),
        "[IPv6:2001:db8::1]"
    );
}

#[test]
fn dsn_parameters_use_xtext() {
    assert_eq!(
        Parameter::orcpt("rfc822", "a+b=c@x").unwrap().to_string(),
        "ORCPT=rfc822;a+2Bb+3Dc@x"
    );
    assert_eq!(
        Parameter::envid("QQ314159").unwrap().to_string(),
        "ENVID=QQ314159"
    );
    assert_eq!(xtext_encode("a b+"), "a+20b+2B");
    assert_eq!(xtext_decode("a+20b+2B").unwrap(), b"a b+");
    assert!(xtext_decode("a+2").is_none());
    assert!(xtext_decode("a+zz").is_none());
}

#[test]
fn auth_secrets_are_redacted() {
    let c = Command::Auth {
        mechanism: MechanismName::new("PLAIN").unwrap(),
        initial: Some(b"\0u\0pw".to_vec()),
    };
    assert!(c.is_sensitive());
    assert_eq!(c.redacted(), "AUTH PLAIN <redacted>");
    assert!(!format!("{c:?}").contains("AHUAcHc"));
    let r = Command::AuthResponse(b"pw".to_vec());
    assert_eq!(r.redacted(), "<redacted>");
    assert_eq!(Command::Quit.redacted(), "QUIT");
    assert!(!Command::Quit.is_sensitive());
}

fn caps(lines: &[&str]) -> Capabilities {
    Capabilities::parse(&Reply::new(
        250,
        lines.iter().map(|l| (*l).to_owned()).collect(),
    ))
}

#[test]
fn capabilities_postfix_style() {
    let c = caps(&[
        "mx.example",
        "PIPELINING",
        "SIZE 10240000",
        "VRFY",
        "ETRN",
        "STARTTLS",
        "AUTH PLAIN LOGIN",
        "AUTH=PLAIN LOGIN",
        "ENHANCEDSTATUSCODES",
        "8BITMIME",
        "DSN",
        "SMTPUTF8",
        "CHUNKING",
    ]);
    assert_eq!(c.greeting(), "mx.example");
    assert!(
        c.pipelining()
            && c.starttls()
            && c.eight_bit_mime()
            && c.dsn()
            && c.smtputf8()
            && c.chunking()
    );
    assert!(c.enhanced_status_codes() && !c.binary_mime() && !c.requiretls());
    assert_eq!(c.size(), Some(10_240_000));
    assert_eq!(c.auth_mechanisms(), ["PLAIN", "LOGIN"]);
    assert!(c.has("pipelining") && c.has("Size"));
}

#[test]
fn capabilities_old_auth_form_merged() {
    let c = caps(&["mx", "AUTH=LOGIN", "AUTH LOGIN PLAIN CRAM-MD5"]);
    assert_eq!(c.auth_mechanisms(), ["LOGIN", "PLAIN", "CRAM-MD5"]);
    let c = caps(&["mx", "auth=xoauth2"]);
    assert_eq!(c.auth_mechanisms(), ["XOAUTH2"]);
}

#[test]
fn capabilities_size_forms_and_junk() {
    assert_eq!(caps(&["mx", "SIZE"]).size(), None);
    assert!(caps(&["mx", "SIZE"]).offers_size());
    assert_eq!(caps(&["mx", "SIZE 0"]).size(), None);
    assert_eq!(caps(&["mx", "SIZE junk"]).size(), None);
    let c = caps(&["mx", "", "   ", "-BAD", "GOOD-ONE x", "=x"]);
    let kw: Vec<String> = c.iter().map(|(k, p)| format!("{k}:{p}")).collect();
    assert_eq!(kw, ["GOOD-ONE:x"]);
    assert!(!caps(&["only the greeting"]).has("only"));
}

#[test]
fn sasl_plain_and_login_bytes() {
    let creds = || Credentials::new("user", "pass");
    let mut p = Plain::new(creds());
    assert_eq!(p.initial_response().unwrap().unwrap(), b"\0user\0pass");
    let mut p = Plain::with_authzid("admin", creds());
    assert_eq!(p.step(b"").unwrap(), b"admin\0user\0pass");
    assert!(p.step(b"").is_err());
    let mut l = Login::new(creds());
    assert_eq!(l.initial_response().unwrap().unwrap(), b"user");
    assert_eq!(l.step(b"Password:").unwrap(), b"pass");
    assert!(l.step(b"More?").is_err());
    let mut l = Login::new(creds());
    assert_eq!(l.step(b"whatever").unwrap(), b"user");
    assert_eq!(l.step(b"whatever").unwrap(), b"pass");
}

#[test]
fn sasl_cram_md5_rfc2195_vector() {
    let mut m = CramMd5::new(Credentials::new("tim", "tanstaaftanstaaf"));
    assert_eq!(m.initial_response().unwrap(), None);
    assert_eq!(
        m.step(b"<1896.697170952@postoffice.reston.mci.net>")
            .unwrap(),
        b"tim b913a602c7eda7a495b4e6e7334d3890"
    );
}

#[test]
fn sasl_oauth_messages() {
    let mut x = XOAuth2::new("me@x.org", Secret::new("tok"));
    assert_eq!(
        x.initial_response().unwrap().unwrap(),
        b"user=me@x.org\x01auth=Bearer tok\x01\x01"
    );
    assert_eq!(x.step(b"{\"status\":\"401\"}").unwrap(), b"");
    let mut o = OAuthBearer::new("me@x.org", Secret::new("tok"))
        .host("mx.example")
        .port(587);
    assert_eq!(
        o.initial_response().unwrap().unwrap(),
        b"n,a=me@x.org,\x01host=mx.example\x01port=587\x01auth=Bearer tok\x01\x01"
    );
    assert_eq!(o.step(b"{}").unwrap(), b"\x01");
}

#[test]
fn sasl_debug_never_shows_secrets() {
    let creds = Credentials::new("user", "hunter2");
    let all: Vec<Box<dyn Mechanism>> = vec![
        Box::new(Plain::new(creds.clone())),
        Box::new(Login::new(creds.clone())),
        Box::new(CramMd5::new(creds.clone())),
        Box::new(XOAuth2::new("u", Secret::new("hunter2"))),
        Box::new(OAuthBearer::new("u", Secret::new("hunter2"))),
    ];
    for m in &all {
        assert!(!format!("{m:?}").contains("hunter2"), "{}", m.name());
    }
    assert!(!format!("{creds:?}").contains("hunter2"));
    assert_eq!(Secret::new("x").to_string(), "<redacted>");
}

#[test]
fn login_mechanism_order() {
    let creds = Credentials::new("u", "p");
    let names = |offered: &[&str]| -> Vec<String> {
        let offered: Vec<String> = offered.iter().map(|s| (*s).to_owned()).collect();
        login_mechanisms(&offered, &creds)
            .iter()
            .map(|m| m.name().to_owned())
            .collect()
    };
    assert_eq!(
        names(&["LOGIN", "PLAIN", "CRAM-MD5"]),
        ["CRAM-MD5", "PLAIN", "LOGIN"]
    );
    assert_eq!(names(&["login", "xoauth2"]), ["LOGIN"]);
    assert!(names(&["GSSAPI"]).is_empty());
}

#[test]
fn envelope_from_and_recipients() {
    let m = b"From: Alice <a@x>\r\nTo: b@x, \"Doe, J\" <j@x>\r\nCc: c@x\r\nBcc: d@x\r\nSubject: s\r\n\r\nbody\r\n";
    let e = from_message(m).unwrap();
    assert_eq!(e.sender, "a@x");
    assert_eq!(e.recipients, ["b@x", "j@x", "d@x", "c@x"]);
    assert_eq!(
        e.headers,
        b"From: Alice <a@x>\r\nTo: b@x, \"Doe, J\" <j@x>\r\nCc: c@x\r\nSubject: s\r\n\r\n"
    );
    assert_eq!(&m[e.body_offset..], b"body\r\n");
    assert!(!e.international);
}

#[test]
fn envelope_sender_header_wins() {
    let e = from_message(b"From: a@x\nSender: s@x\nTo: b@x\n\nbody").unwrap();
    assert_eq!(e.sender, "s@x");
}

#[test]
fn envelope_resent_block() {
    let m = b"From: a@x\r\nTo: b@x\r\nResent-Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nResent-From: r@x\r\nResent-To: t@x\r\nResent-Bcc: hidden@x\r\n\r\nx";
    let e = from_message(m).unwrap();
    assert_eq!(e.sender, "r@x");
    assert_eq!(e.recipients, ["t@x", "hidden@x"]);
    assert!(!String::from_utf8_lossy(&e.headers).contains("hidden"));
    let two =
        b"From: a@x\r\nTo: b@x\r\nResent-Date: 1\r\nResent-From: r@x\r\nResent-Date: 2\r\n\r\nx";
    assert!(matches!(from_message(two), Err(UsageError::Envelope(_))));
}

#[test]
fn envelope_folded_bcc_removed_and_errors() {
    let m = b"From: a@x\r\nBcc: one@x,\r\n two@x\r\nTo: b@x\r\n\r\n";
    let e = from_message(m).unwrap();
    assert_eq!(e.recipients, ["b@x", "one@x", "two@x"]);
    assert_eq!(e.headers, b"From: a@x\r\nTo: b@x\r\n\r\n");
    assert!(matches!(
        from_message(b"To: b@x\r\n\r\n"),
        Err(UsageError::Envelope(_))
    ));
    assert!(matches!(
        from_message(b"From: a@x\r\n\r\n"),
        Err(UsageError::Envelope(_))
    ));
    let no_body = from_message(b"From: a@x\r\nTo: b@x").unwrap();
    assert_eq!(no_body.body_offset, 18);
}

#[test]
fn address_lists() {
    assert_eq!(parse_address_list("a@x"), ["a@x"]);
    assert_eq!(
        parse_address_list("\"Doe, John\" <j@x>, k@y (comment, with comma)"),
        ["j@x", "k@y"]
    );
    assert_eq!(
        parse_address_list("team: a@b, c@d;, e@f"),
        ["a@b", "c@d", "e@f"]
    );
    assert_eq!(
        parse_address_list("undisclosed-recipients:;"),
        Vec::<String>::new()
    );
    assert_eq!(
        parse_address_list("<@route1,@route2:user@host>"),
        ["user@host"]
    );
    assert_eq!(parse_address_list("(nested (comment)) x@y"), ["x@y"]);
    assert_eq!(
        parse_address_list("\"quoted local\"@x"),
        ["\"quoted local\"@x"]
    );
    assert_eq!(
        parse_address_list("Jörg <jörg@bücher.example>"),
        ["jörg@bücher.example"]
    );
    assert_eq!(
        parse_address_list("just a display name"),
        Vec::<String>::new()
    );
    assert!(
        from_message("From: a@x\r\nTo: jörg@bücher.example\r\n\r\n".as_bytes())
            .unwrap()
            .international
    );
}

#[test]
fn an_armed_wait_serves_from_an_eighth_of_the_wait_up_to_its_deadline() {
    use smtp_sansio::client::armed_wait_serves;
    use std::time::Duration;
    let s = Duration::from_secs;
    let left = s(300);
    assert!(armed_wait_serves(s(300), left));
    assert!(armed_wait_serves(s(299), left));
    assert!(armed_wait_serves(Duration::from_millis(37_500), left));
    // Later than the deadline: the timeout would be missed.
    assert!(!armed_wait_serves(s(301), left));
    // Too early: most of the wait would be spent waking up.
    assert!(!armed_wait_serves(Duration::from_millis(37_499), left));
    assert!(!armed_wait_serves(Duration::ZERO, left));
}

/// Empty parts before, between and after carry nothing: the last piece with
/// bytes is flagged last (so BDAT ends with `LAST` on it, not on an empty
/// chunk of its own).
#[test]
fn parts_cursor_skips_empty_parts() {
    use smtp_sansio::client::PartsCursor;
    let parts: [&[u8]; 4] = [b"", b"abc", b"", b""];
    let mut c = PartsCursor::new(&parts, 2);
    assert_eq!(c.next_piece(), (&b"ab"[..], false));
    assert_eq!(c.next_piece(), (&b"c"[..], true));
    let none: [&[u8]; 2] = [b"", b""];
    let mut c = PartsCursor::new(&none, 2);
    assert_eq!(c.next_piece(), (&b""[..], true));
}
