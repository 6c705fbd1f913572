//! SASL mechanisms for SMTP AUTH: the exact bytes each one answers with, shown as
//! RFC 4954 exchanges (`C:` AUTH line, `S:` 334 challenges, `C:` responses), and
//! proof that no `Debug` output carries a password or token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use smtp_sansio::Command;
use smtp_sansio::command::MechanismName;
use smtp_sansio::sasl::{
    CramMd5, Credentials, Login, Mechanism, OAuthBearer, Plain, SaslError, ScramError, ScramSha256,
    Secret, XOAuth2, login_mechanisms,
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
        Box::new(ScramSha256::new(c.clone())),
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

// SCRAM-SHA-256: RFC 7677 section 3's example (user "user", password "pencil").
const SCRAM_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const SCRAM_CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const SCRAM_SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const SCRAM_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                  p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const SCRAM_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

fn scram_rfc7677() -> ScramSha256 {
    ScramSha256::with_nonce(creds("user", "pencil"), SCRAM_NONCE)
}

/// A SCRAM mechanism of the RFC 7677 example that has sent its client-first
/// message.
fn scram_after_client_first() -> ScramSha256 {
    let mut m = scram_rfc7677();
    m.client_first().unwrap();
    m
}

/// A SCRAM mechanism of the RFC 7677 example that has sent its client-final
/// message.
fn scram_after_client_final() -> ScramSha256 {
    let mut m = scram_after_client_first();
    assert_eq!(
        m.answer(SCRAM_SERVER_FIRST.as_bytes()).unwrap(),
        SCRAM_CLIENT_FINAL.as_bytes()
    );
    m
}

#[test]
fn scram_sha_256_rfc7677_example() {
    let mut m = scram_rfc7677();
    assert_eq!(m.name(), "SCRAM-SHA-256");
    assert_eq!(m.client_first().unwrap(), SCRAM_CLIENT_FIRST.as_bytes());
    assert_eq!(
        m.answer(SCRAM_SERVER_FIRST.as_bytes()).unwrap(),
        SCRAM_CLIENT_FINAL.as_bytes()
    );
    assert!(!m.server_verified());
    // The server signature checks out: the answer is empty.
    assert_eq!(m.answer(SCRAM_SERVER_FINAL.as_bytes()).unwrap(), b"");
    assert!(m.server_verified());
    // Nothing more is expected.
    assert_eq!(m.answer(b""), Err(ScramError::UnexpectedChallenge));
    assert!(!m.server_verified());
}

#[test]
fn scram_sha_256_exchanges() {
    let first = b64(SCRAM_SERVER_FIRST.as_bytes());
    let last = b64(SCRAM_SERVER_FINAL.as_bytes());
    // C: AUTH SCRAM-SHA-256 <client-first> / S: 334 <server-first> /
    // C: <client-final> / S: 334 <server-final> / C: (empty)
    assert_eq!(
        exchange(&mut scram_rfc7677(), true, &[&first, &last]).unwrap(),
        [
            format!("AUTH SCRAM-SHA-256 {}", b64(SCRAM_CLIENT_FIRST.as_bytes())),
            b64(SCRAM_CLIENT_FINAL.as_bytes()),
            String::new(),
        ]
    );
    // Without an initial response the empty first challenge gets the
    // client-first message.
    assert_eq!(
        exchange(&mut scram_rfc7677(), false, &["", &first, &last]).unwrap(),
        [
            "AUTH SCRAM-SHA-256".to_owned(),
            b64(SCRAM_CLIENT_FIRST.as_bytes()),
            b64(SCRAM_CLIENT_FINAL.as_bytes()),
            String::new(),
        ]
    );
    // The client speaks first: a first challenge with content is refused.
    assert!(matches!(
        scram_rfc7677().answer(b"r=x"),
        Err(ScramError::Malformed(_))
    ));
    // A fourth challenge is refused, through the trait too.
    assert!(exchange(&mut scram_rfc7677(), true, &[&first, &last, ""]).is_err());
}

#[test]
fn scram_sha_256_random_nonce() {
    let mut nonces = Vec::new();
    for _ in 0..2 {
        let mut m = ScramSha256::new(creds("user", "pencil"));
        let first = String::from_utf8(m.initial_response().unwrap().unwrap()).unwrap();
        let nonce = first.strip_prefix("n,,n=user,r=").unwrap().to_owned();
        // 24 random bytes in base64: printable, no comma.
        assert_eq!(nonce.len(), 32, "{nonce}");
        assert!(B64.decode(&nonce).is_ok());
        // The server's nonce must extend this one.
        let server_first = format!("r={nonce}srv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
        let fin = String::from_utf8(m.step(server_first.as_bytes()).unwrap()).unwrap();
        assert!(fin.starts_with(&format!("c=biws,r={nonce}srv,p=")), "{fin}");
        nonces.push(nonce);
    }
    assert_ne!(nonces[0], nonces[1]);
}

#[test]
fn scram_sha_256_refuses_a_bad_explicit_nonce() {
    for nonce in ["", "a,b", "sp ace", "tab\t", "ümlaut", "\x7f"] {
        let mut m = ScramSha256::with_nonce(creds("user", "pencil"), nonce);
        assert_eq!(m.client_first(), Err(ScramError::InvalidNonce), "{nonce:?}");
        let mut m = ScramSha256::with_nonce(creds("user", "pencil"), nonce);
        assert!(m.initial_response().is_err(), "{nonce:?}");
    }
}

#[test]
fn scram_sha_256_user_name_escaping_and_saslprep() {
    let table: &[(&str, &str)] = &[
        // RFC 5802 section 5.1: "," and "=" escaped.
        ("a,b=c", "n=a=2Cb=3Dc"),
        ("=2C", "n==3D2C"),
        ("jörg@bücher.example", "n=jörg@bücher.example"),
        // RFC 4013 section 3's examples: SOFT HYPHEN maps to nothing, ROMAN
        // NUMERAL NINE normalises (NFKC) to "IX", a non-ASCII space becomes one.
        ("I\u{AD}X", "n=IX"),
        ("\u{2168}", "n=IX"),
        ("user\u{A0}name", "n=user name"),
        // NFKC: a precomposed and a decomposed "é" are the same name.
        ("e\u{301}", "n=\u{e9}"),
    ];
    for (user, attr) in table {
        let mut m = ScramSha256::with_nonce(creds(user, "pencil"), "N");
        let first = m.client_first().unwrap();
        assert_eq!(
            String::from_utf8(first).unwrap(),
            format!("n,,{attr},r=N"),
            "{user:?}"
        );
    }
    // Refused: an empty name (also after mapping), a control character
    // (RFC 4013 example: U+0007), mixed right-to-left and left-to-right text
    // (RFC 4013 example: U+0627 U+0031), a private-use character.
    for user in ["", "\u{AD}", "\u{7}", "\u{627}1", "a\0b", "\u{E000}"] {
        let mut m = ScramSha256::with_nonce(creds(user, "pencil"), "N");
        assert_eq!(
            m.client_first(),
            Err(ScramError::SaslPrep("user name")),
            "{user:?}"
        );
    }
}

#[test]
fn scram_sha_256_password_saslprep() {
    // A SOFT HYPHEN in the password maps to nothing: the RFC 7677 proof.
    let mut m = ScramSha256::with_nonce(creds("user", "pen\u{AD}cil"), SCRAM_NONCE);
    m.client_first().unwrap();
    assert_eq!(
        m.answer(SCRAM_SERVER_FIRST.as_bytes()).unwrap(),
        SCRAM_CLIENT_FINAL.as_bytes()
    );
    // A control character is refused when the proof is computed.
    let mut m = ScramSha256::with_nonce(creds("user", "pen\u{7}cil"), SCRAM_NONCE);
    m.client_first().unwrap();
    assert_eq!(
        m.answer(SCRAM_SERVER_FIRST.as_bytes()),
        Err(ScramError::SaslPrep("password"))
    );
}

#[test]
fn scram_sha_256_rejects_malformed_server_first() {
    use ScramError::*;
    let salt = "s=W22ZaJ0SNY7soEsUEjb6gQ==";
    let nonce = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    let m = Malformed("");
    let table: Vec<(String, ScramError)> = vec![
        // The server nonce must start with ours and add to it.
        (
            format!("r=rOprNGfwEbeRWgbNEkqX%hvY,{salt},i=4096"),
            NonceMismatch,
        ),
        (
            format!("r=XrOprNGfwEbeRWgbNEkqO%hvY,{salt},i=4096"),
            NonceMismatch,
        ),
        (
            format!("r=rOprNGfwEbeRWgbNEkqO,{salt},i=4096"),
            NonceMismatch,
        ),
        (format!("r=rOprNGfwEbeRWgbNEk,{salt},i=4096"), NonceMismatch),
        (
            format!("r=rOprNGfwEbeRWgbNEkqO\x01,{salt},i=4096"),
            m.clone(),
        ),
        (format!("r=rOprNGfwEbeRWgbNEkqO x,{salt},i=4096"), m.clone()),
        (format!("r=,{salt},i=4096"), m.clone()),
        // Iteration count: at least 4096, at most 1 000 000, a number.
        (format!("{nonce},{salt},i=4095"), IterationsTooLow(4095)),
        (format!("{nonce},{salt},i=1"), IterationsTooLow(1)),
        (format!("{nonce},{salt},i=0"), IterationsTooLow(0)),
        (
            format!("{nonce},{salt},i=1000001"),
            IterationsTooHigh(1_000_001),
        ),
        (
            format!("{nonce},{salt},i=4294967296"),
            IterationsTooHigh(4_294_967_296),
        ),
        (
            format!("{nonce},{salt},i=99999999999999999999999999"),
            IterationsTooHigh(u64::MAX),
        ),
        (format!("{nonce},{salt},i=-4096"), m.clone()),
        (format!("{nonce},{salt},i=+4096"), m.clone()),
        (format!("{nonce},{salt},i=4096x"), m.clone()),
        (format!("{nonce},{salt},i= 4096"), m.clone()),
        (format!("{nonce},{salt},i="), m.clone()),
        // Salt: base64, not empty.
        (
            format!("{nonce},s=W22ZaJ0SNY7soEsUEjb6gQ,i=4096"),
            BadBase64("salt"),
        ),
        (format!("{nonce},s=!!!!,i=4096"), BadBase64("salt")),
        (format!("{nonce},s=W22Z aJ0S,i=4096"), BadBase64("salt")),
        (format!("{nonce},s=,i=4096"), m.clone()),
        // Attributes missing, out of order, or not attributes.
        (format!("{nonce},i=4096"), m.clone()),
        (format!("{nonce},{salt}"), m.clone()),
        (format!("{salt},{nonce},i=4096"), m.clone()),
        (format!("{nonce},i=4096,{salt}"), m.clone()),
        (format!("{nonce},{salt},i=4096,"), m.clone()),
        (format!("{nonce},{salt},i=4096,junk"), m.clone()),
        (String::new(), m.clone()),
        (",,".into(), m.clone()),
        // A mandatory extension this client does not know.
        (format!("m=ext,{nonce},{salt},i=4096"), m.clone()),
        // The server gives up early.
        ("e=unknown-user".into(), Server("unknown-user".into())),
        ("e=".into(), m.clone()),
    ];
    let same = |a: &ScramError, b: &ScramError| match (a, b) {
        (Malformed(_), Malformed(_)) => true,
        _ => a == b,
    };
    for (server_first, expected) in &table {
        let mut mech = scram_after_client_first();
        let got = mech.answer(server_first.as_bytes());
        assert!(
            got.as_ref().is_err_and(|e| same(e, expected)),
            "{server_first:?}: {got:?}, expected {expected:?}"
        );
        // The exchange is over after a failure.
        assert_eq!(
            mech.answer(SCRAM_SERVER_FIRST.as_bytes()),
            Err(UnexpectedChallenge)
        );
        // Through the trait the error is a SaslError with the same text.
        let mut mech = scram_after_client_first();
        let e = Mechanism::step(&mut mech, server_first.as_bytes()).unwrap_err();
        assert!(e.0.starts_with("SCRAM-SHA-256: "), "{e:?}");
    }
    // Not UTF-8.
    assert!(matches!(
        scram_after_client_first().answer(b"r=rOprNGfwEbeRWgbNEkqO\xff,s=QQ==,i=4096"),
        Err(Malformed(_))
    ));
    // Extensions after the iteration count are allowed; they are part of the
    // signed auth message, so the proof changes.
    let fin = scram_after_client_first()
        .answer(format!("{SCRAM_SERVER_FIRST},x=future,y=").as_bytes())
        .unwrap();
    let (without_proof, _) = SCRAM_CLIENT_FINAL.split_once(",p=").unwrap();
    assert!(fin.starts_with(format!("{without_proof},p=").as_bytes()));
    assert_ne!(fin, SCRAM_CLIENT_FINAL.as_bytes());
}

#[test]
fn scram_sha_256_checks_the_server_signature() {
    use ScramError::*;
    let real = B64.decode(&SCRAM_SERVER_FINAL[2..]).unwrap();
    let mut flipped = real.clone();
    flipped[31] ^= 1;
    let table: Vec<(Vec<u8>, ScramError)> = vec![
        // Wrong signatures: another value, one bit off, too short, too long, none.
        (
            format!("v={}", b64(&[0; 32])).into_bytes(),
            ServerSignatureMismatch,
        ),
        (
            format!("v={}", b64(&flipped)).into_bytes(),
            ServerSignatureMismatch,
        ),
        (
            format!("v={}", b64(&real[..31])).into_bytes(),
            ServerSignatureMismatch,
        ),
        (
            format!("v={}", b64(&[real.as_slice(), &[0]].concat())).into_bytes(),
            ServerSignatureMismatch,
        ),
        (b"v=".to_vec(), ServerSignatureMismatch),
        // Not base64.
        (
            b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4".to_vec(),
            BadBase64("server signature"),
        ),
        (b"v=!!!!".to_vec(), BadBase64("server signature")),
        // No signature at all.
        (b"".to_vec(), MissingServerSignature),
        (b"x=1".to_vec(), MissingServerSignature),
        (
            b"V=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec(),
            MissingServerSignature,
        ),
        (
            SCRAM_SERVER_FIRST.as_bytes().to_vec(),
            MissingServerSignature,
        ),
        // The server reports an error (RFC 5802 section 7).
        (b"e=invalid-proof".to_vec(), Server("invalid-proof".into())),
        (b"e=other-error,x=1".to_vec(), Server("other-error".into())),
        (b"e=bad\x07bell".to_vec(), Malformed("")),
        // The right signature with trailing garbage, or not UTF-8.
        (
            format!("{SCRAM_SERVER_FINAL},junk").into_bytes(),
            Malformed(""),
        ),
        (b"v=\xff".to_vec(), Malformed("")),
    ];
    for (server_final, expected) in &table {
        let mut m = scram_after_client_final();
        let got = m.answer(server_final);
        let ok = match (&got, expected) {
            (Err(Malformed(_)), Malformed(_)) => true,
            (got, expected) => got.as_ref().err() == Some(expected),
        };
        assert!(
            ok,
            "{:?}: {got:?}, expected {expected:?}",
            String::from_utf8_lossy(server_final)
        );
        assert!(!m.server_verified());
        assert_eq!(m.answer(b""), Err(UnexpectedChallenge));
    }
    // Extensions after the signature are allowed.
    let mut m = scram_after_client_final();
    assert_eq!(
        m.answer(format!("{SCRAM_SERVER_FINAL},x=1").as_bytes())
            .unwrap(),
        b""
    );
    assert!(m.server_verified());
}

#[test]
fn scram_sha_256_never_panics_on_server_input() {
    // Every prefix of the real server messages, and each byte replaced by one
    // that breaks a field (NUL, a separator, invalid UTF-8). Clones start from
    // the same stage, so the key derivation runs only for inputs that parse.
    let after_first = scram_after_client_first();
    let after_final = scram_after_client_final();
    for (start, message) in [
        (&after_first, SCRAM_SERVER_FIRST.as_bytes()),
        (&after_final, SCRAM_SERVER_FINAL.as_bytes()),
    ] {
        let mut variants: Vec<Vec<u8>> =
            (0..message.len()).map(|n| message[..n].to_vec()).collect();
        for i in 0..message.len() {
            for b in [0u8, b',', b'=', 0xff] {
                let mut v = message.to_vec();
                v[i] = b;
                variants.push(v);
            }
        }
        for v in variants {
            let mut m = start.clone();
            if m.answer(&v).is_err() {
                assert_eq!(m.answer(b""), Err(ScramError::UnexpectedChallenge));
            }
        }
    }
}

#[test]
fn scram_sha_256_debug_shows_no_secret_at_any_stage() {
    let shown = |m: &ScramSha256| {
        let s = format!("{m:?}");
        assert!(!s.contains("pencil"), "{s}");
        s
    };
    assert_eq!(
        shown(&scram_rfc7677()),
        r#"ScramSha256 { user: "user", state: "start", .. }"#
    );
    assert_eq!(
        shown(&scram_after_client_first()),
        r#"ScramSha256 { user: "user", state: "client-first sent", .. }"#
    );
    // The salted password and keys exist at this stage; Debug shows none.
    assert_eq!(
        shown(&scram_after_client_final()),
        r#"ScramSha256 { user: "user", state: "client-final sent", .. }"#
    );
    let mut m = scram_after_client_final();
    m.answer(SCRAM_SERVER_FINAL.as_bytes()).unwrap();
    assert_eq!(
        shown(&m),
        r#"ScramSha256 { user: "user", state: "server verified", .. }"#
    );
}

#[test]
fn finish_accepts_by_default_and_scram_only_after_the_server_signature() {
    let mut plain = Plain::new(creds("user", "pw"));
    assert_eq!(plain.finish(), Ok(()));
    // A success right after the client's proof: the server never proved itself.
    let mut m = scram_after_client_final();
    assert_eq!(
        m.finish(),
        Err(SaslError::from(ScramError::MissingServerSignature))
    );
    let mut m = scram_after_client_final();
    assert_eq!(m.answer(SCRAM_SERVER_FINAL.as_bytes()).unwrap(), b"");
    assert_eq!(m.finish(), Ok(()));
    // Before anything was exchanged there is nothing to accept either.
    assert!(scram_rfc7677().finish().is_err());
}
