//! SASL mechanisms for SMTP AUTH: the exact bytes each one answers with, shown as
//! RFC 4954 exchanges (`C:` AUTH line, `S:` 334 challenges, `C:` responses), and
//! proof that no `Debug` output carries a password or token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use smtp_proto::Command;
use smtp_proto::command::MechanismName;
use smtp_proto::sasl::{
    CramMd5, Credentials, Login, Mechanism, OAuthBearer, Plain, SaslError, Secret, XOAuth2,
    login_mechanisms,
};

fn creds(user: &str, password: &str) -> Credentials {
    Credentials::new(user, password)
}

/// Runs `mechanism` the way the client does: the AUTH line (with the initial
/// response when `initial_ok`), then one answer per server challenge. `server` holds
/// the base64 text of each 334 line. Returns the client lines without CRLF, or the
/// mechanism's error.
fn exchange(
    mechanism: &mut dyn Mechanism,
    initial_ok: bool,
    server: &[&str],
) -> Result<Vec<String>, SaslError> {
    let mut client = Vec::new();
    let initial = if initial_ok {
        mechanism.initial_response()?
    } else {
        None
    };
    let auth = Command::Auth {
        mechanism: MechanismName::new(mechanism.name()).unwrap(),
        initial,
    };
    client.push(line(&auth));
    for challenge in server {
        let decoded = B64.decode(challenge).unwrap();
        let answer = mechanism.step(&decoded)?;
        client.push(line(&Command::AuthResponse(answer)));
    }
    Ok(client)
}

fn line(c: &Command) -> String {
    let bytes = c.to_bytes();
    String::from_utf8(bytes[..bytes.len() - 2].to_vec()).unwrap()
}

fn b64(s: &[u8]) -> String {
    B64.encode(s)
}

#[test]
fn plain_sends_authzid_nul_user_nul_password() {
    let table: &[(Plain, &[u8])] = &[
        (
            Plain::new(creds("tim", "tanstaaftanstaaf")),
            b"\0tim\0tanstaaftanstaaf",
        ),
        (
            Plain::with_authzid("Ursel", creds("Kurt", "xipj3plmq")),
            b"Ursel\0Kurt\0xipj3plmq",
        ),
        (Plain::with_authzid("", creds("u", "")), b"\0u\0"),
        (
            Plain::new(creds("jörg@bücher.example", "päss")),
            "\0jörg@bücher.example\0päss".as_bytes(),
        ),
    ];
    for (mechanism, message) in table {
        let mut m = mechanism.clone();
        assert_eq!(m.name(), "PLAIN");
        assert_eq!(m.initial_response().unwrap().unwrap(), *message);
        let mut m = mechanism.clone();
        assert_eq!(m.step(b"").unwrap(), *message);
    }
}

#[test]
fn plain_exchanges() {
    let plain = || Plain::new(creds("tim", "tanstaaftanstaaf"));
    // C: AUTH PLAIN <initial response>
    assert_eq!(
        exchange(&mut plain(), true, &[]).unwrap(),
        ["AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm"]
    );
    // C: AUTH PLAIN / S: 334 / C: <message>
    assert_eq!(
        exchange(&mut plain(), false, &[""]).unwrap(),
        ["AUTH PLAIN", "AHRpbQB0YW5zdGFhZnRhbnN0YWFm"]
    );
    // PLAIN has one message; a second challenge cannot be answered.
    assert!(exchange(&mut plain(), true, &[""]).is_err());
    assert!(exchange(&mut plain(), false, &["", ""]).is_err());
}

#[test]
fn plain_refuses_a_nul_inside_a_field() {
    // A NUL in the user name would make the server read a different authzid.
    let mut m = Plain::new(creds("victim\0attacker", "pw"));
    assert!(m.initial_response().is_err());
    assert!(Plain::new(creds("u", "p\0w")).step(b"").is_err());
    assert!(
        Plain::with_authzid("a\0b", creds("u", "p"))
            .initial_response()
            .is_err()
    );
}

#[test]
fn login_with_initial_response() {
    let mut m = Login::new(creds("tim", "tanstaaftanstaaf"));
    assert_eq!(m.name(), "LOGIN");
    // C: AUTH LOGIN dGlt / S: 334 UGFzc3dvcmQ6 ("Password:") / C: password
    assert_eq!(
        exchange(&mut m, true, &["UGFzc3dvcmQ6"]).unwrap(),
        ["AUTH LOGIN dGlt", &b64(b"tanstaaftanstaaf")]
    );
}

#[test]
fn login_without_initial_response() {
    let mut m = Login::new(creds("tim", "tanstaaftanstaaf"));
    // S: 334 VXNlcm5hbWU6 ("Username:") / S: 334 UGFzc3dvcmQ6 ("Password:")
    assert_eq!(
        exchange(&mut m, false, &["VXNlcm5hbWU6", "UGFzc3dvcmQ6"]).unwrap(),
        ["AUTH LOGIN", "dGlt", &b64(b"tanstaaftanstaaf")]
    );
}

#[test]
fn login_answers_prompts_by_order_not_by_text() {
    // Servers word the prompts differently, or send none; smtplib answers the
    // first with the user name and the second with the password.
    let prompts: &[[&[u8]; 2]] = &[
        [b"Username:", b"Password:"],
        [b"User Name\0", b"Password\0"],
        [b"", b""],
        [b"Password:", b"Username:"],
        [b"\xff\xfe", b"{\"x\":1}"],
    ];
    for [first, second] in prompts {
        let mut m = Login::new(creds("user", "pass"));
        assert_eq!(m.step(first).unwrap(), b"user");
        assert_eq!(m.step(second).unwrap(), b"pass");
    }
}

#[test]
fn login_refuses_a_third_prompt() {
    let mut with_ir = Login::new(creds("user", "pass"));
    assert!(exchange(&mut with_ir, true, &["UGFzc3dvcmQ6", "UGFzc3dvcmQ6"]).is_err());
    let mut without = Login::new(creds("user", "pass"));
    assert!(exchange(&mut without, false, &["", "", ""]).is_err());
    // However often it is asked, it stays an error.
    let mut m = Login::new(creds("user", "pass"));
    let _ = m.step(b"");
    let _ = m.step(b"");
    for _ in 0..300 {
        assert!(m.step(b"").is_err());
    }
}

#[test]
fn cram_md5_rfc2195_example() {
    let mut m = CramMd5::new(creds("tim", "tanstaaftanstaaf"));
    assert_eq!(m.name(), "CRAM-MD5");
    assert_eq!(
        m.step(b"<1896.697170952@postoffice.reston.mci.net>")
            .unwrap(),
        b"tim b913a602c7eda7a495b4e6e7334d3890"
    );
    // The same exchange as base64 lines on the wire (RFC 2195 section 2).
    let mut m = CramMd5::new(creds("tim", "tanstaaftanstaaf"));
    assert_eq!(
        exchange(
            &mut m,
            true,
            &["PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+"]
        )
        .unwrap(),
        [
            "AUTH CRAM-MD5",
            "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"
        ]
    );
}

#[test]
fn cram_md5_hmac_vectors() {
    // HMAC-MD5 vectors of RFC 2104 (key "Jefe") and of the empty key and message.
    let table: &[(&str, &str, &[u8], &[u8])] = &[
        (
            "u",
            "Jefe",
            b"what do ya want for nothing?",
            b"u 750c783e6ab0b503eaa86e310a5db738",
        ),
        ("u", "", b"", b"u 74e6f7298a9c2d168935f58c001bad88"),
    ];
    for (user, password, challenge, answer) in table {
        let mut m = CramMd5::new(creds(user, password));
        assert_eq!(m.step(challenge).unwrap(), *answer, "{password:?}");
    }
    // A password longer than the 64-byte HMAC block is hashed first, not refused.
    let mut m = CramMd5::new(creds("u", &"k".repeat(200)));
    let answer = m.step(b"<1.2@x>").unwrap();
    assert_eq!(answer.len(), 2 + 32);
    assert!(
        answer[2..]
            .iter()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
}

#[test]
fn cram_md5_has_no_initial_response_and_one_challenge() {
    let mut m = CramMd5::new(creds("tim", "tanstaaftanstaaf"));
    assert_eq!(m.initial_response().unwrap(), None);
    m.step(b"<1.2@x>").unwrap();
    assert!(m.step(b"<1.2@x>").is_err());
}

#[test]
fn xoauth2_messages() {
    let token = || Secret::new("ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg");
    let message = b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01";
    let mut m = XOAuth2::new("someuser@example.com", token());
    assert_eq!(m.name(), "XOAUTH2");
    assert_eq!(m.initial_response().unwrap().unwrap(), message);
    // Without an initial response, the first (empty) challenge gets the message.
    let mut m = XOAuth2::new("someuser@example.com", token());
    assert_eq!(m.step(b"").unwrap(), message);
    assert_eq!(
        exchange(
            &mut XOAuth2::new("someuser@example.com", token()),
            true,
            &[]
        )
        .unwrap(),
        [format!("AUTH XOAUTH2 {}", b64(message))]
    );
}

#[test]
fn xoauth2_error_challenge_gets_an_empty_line() {
    // S: 334 eyJzdGF0dXMiOiI0MDEiLC... (a JSON error) / C: (empty) / S: 535 ...
    let error = b64(br#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#);
    let mut m = XOAuth2::new("someuser@example.com", Secret::new("expired"));
    let lines = exchange(&mut m, true, &[&error]).unwrap();
    assert_eq!(lines[1], "");
    let mut m = XOAuth2::new("someuser@example.com", Secret::new("expired"));
    let lines = exchange(&mut m, false, &["", &error]).unwrap();
    assert_eq!(
        lines[1],
        b64(b"user=someuser@example.com\x01auth=Bearer expired\x01\x01")
    );
    assert_eq!(lines[2], "");
}

#[test]
fn oauthbearer_messages() {
    let token = || Secret::new("vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==");
    let table: &[(OAuthBearer, &[u8])] = &[
        (
            // RFC 7628 section 4.1's example.
            OAuthBearer::new("user@example.com", token())
                .host("server.example.com")
                .port(143),
            b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01",
        ),
        (
            OAuthBearer::new("user@example.com", token()),
            b"n,a=user@example.com,\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01",
        ),
        (
            OAuthBearer::new("u", Secret::new("t")).port(587),
            b"n,a=u,\x01port=587\x01auth=Bearer t\x01\x01",
        ),
        (
            // RFC 5801 section 4: "," and "=" in the authzid are escaped.
            OAuthBearer::new("a,b=c", Secret::new("t")),
            b"n,a=a=2Cb=3Dc,\x01auth=Bearer t\x01\x01",
        ),
    ];
    for (mechanism, message) in table {
        let mut m = mechanism.clone();
        assert_eq!(m.name(), "OAUTHBEARER");
        assert_eq!(m.initial_response().unwrap().unwrap(), *message);
        let mut m = mechanism.clone();
        assert_eq!(m.step(b"").unwrap(), *message);
    }
}

#[test]
fn oauthbearer_error_challenge_gets_ctrl_a() {
    // RFC 7628 section 3.2.3: S: 334 <error JSON> / C: AQ== (a single ^A).
    let error = b64(br#"{"status":"invalid_token","scope":"example_scope"}"#);
    let mut m = OAuthBearer::new("user@example.com", Secret::new("expired"));
    let lines = exchange(&mut m, true, &[&error]).unwrap();
    assert_eq!(lines[1], "AQ==");
}

#[test]
fn bearer_mechanisms_refuse_a_forged_separator() {
    assert!(
        XOAuth2::new("u\x01auth=Bearer x", Secret::new("t"))
            .initial_response()
            .is_err()
    );
    assert!(XOAuth2::new("u", Secret::new("t\x01")).step(b"").is_err());
    assert!(
        OAuthBearer::new("u", Secret::new("t\x01x"))
            .initial_response()
            .is_err()
    );
    assert!(
        OAuthBearer::new("u", Secret::new("t"))
            .host("h\x01port=1")
            .initial_response()
            .is_err()
    );
}

#[test]
fn debug_output_never_contains_a_secret() {
    let secret = "hunter2-s3cret";
    let c = creds("alice", secret);
    let mut all: Vec<Box<dyn Mechanism>> = vec![
        Box::new(Plain::new(c.clone())),
        Box::new(Plain::with_authzid("boss", c.clone())),
        Box::new(Login::new(c.clone())),
        Box::new(CramMd5::new(c.clone())),
        Box::new(XOAuth2::new("alice", Secret::new(secret))),
        Box::new(
            OAuthBearer::new("alice", Secret::new(secret))
                .host("mx")
                .port(25),
        ),
    ];
    for m in &mut all {
        for shown in [format!("{m:?}"), format!("{m:#?}")] {
            assert!(!shown.contains(secret), "{shown}");
            assert!(
                shown.contains("alice"),
                "the user name is not a secret: {shown}"
            );
        }
        // Still clean after the mechanism has produced its messages.
        let _ = m.initial_response();
        let _ = m.step(b"x");
        assert!(!format!("{m:?}").contains(secret), "{}", m.name());
    }
    for shown in [
        format!("{c:?}"),
        format!("{:?}", c.password),
        c.password.to_string(),
    ] {
        assert!(!shown.contains(secret), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
    assert_eq!(Secret::new(secret).expose(), secret);
}

#[test]
fn login_tries_cram_md5_then_plain_then_login() {
    let c = creds("u", "p");
    let names = |offered: &[&str]| -> Vec<String> {
        let offered: Vec<String> = offered.iter().map(|s| (*s).to_owned()).collect();
        login_mechanisms(&offered, &c)
            .iter()
            .map(|m| m.name().to_owned())
            .collect()
    };
    let table: &[(&[&str], &[&str])] = &[
        (
            &["LOGIN", "PLAIN", "CRAM-MD5"],
            &["CRAM-MD5", "PLAIN", "LOGIN"],
        ),
        (&["PLAIN", "LOGIN"], &["PLAIN", "LOGIN"]),
        (&["login", "cram-md5"], &["CRAM-MD5", "LOGIN"]),
        (&["Plain"], &["PLAIN"]),
        (
            &["GSSAPI", "NTLM", "XOAUTH2", "SCRAM-SHA-256", "LOGIN"],
            &["LOGIN"],
        ),
        (&["GSSAPI", "DIGEST-MD5"], &[]),
        (&["PLAIN", "PLAIN"], &["PLAIN"]),
        (&[], &[]),
    ];
    for (offered, tried) in table {
        assert_eq!(names(offered), *tried, "offered {offered:?}");
    }
}

#[test]
fn login_mechanisms_use_the_credentials() {
    let offered = vec!["PLAIN".to_owned()];
    let mut tried = login_mechanisms(&offered, &creds("tim", "tanstaaftanstaaf"));
    assert_eq!(
        tried[0].initial_response().unwrap().unwrap(),
        b"\0tim\0tanstaaftanstaaf"
    );
}
