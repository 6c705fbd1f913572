//! smtp-blocking against the smtp-testkit server over real sockets: every row of
//! the smtplib behaviour list, checked by exact bytes received or exact results.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use smtp_blocking::smtp_sansio::{self, Error as SmtpError, ProtocolError, UsageError, sasl};
use smtp_blocking::smtp_sansio::{BodyType, Envelope};
use smtp_blocking::{Error, InitialResponse, Options, SmtpClient};
#[cfg(feature = "tls")]
use smtp_testkit::ServerTls;
use smtp_testkit::{MockServer, Script, ServerConfig, Step};

const MSG: &[u8] =
    b"From: a@example.org\r\nTo: b@example.org\r\nSubject: t\r\n\r\n.dot line\r\nbody\r\n";
const WAIT: Duration = Duration::from_secs(10);

fn opts() -> Options {
    let mut o = Options::default();
    o.timeout = Some(Duration::from_secs(10));
    o
}

fn smtp_err(e: Error) -> SmtpError {
    match e.into_inner() {
        Error::Smtp(s) => s,
        other => panic!("expected an SMTP error, got {other:?}"),
    }
}

fn script_server(script: Script) -> MockServer {
    MockServer::start(ServerConfig::scripted(script)).unwrap()
}

#[test]
fn plain_sendmail_pipelined_in_one_write() {
    let server =
        MockServer::start(ServerConfig::default().extensions(&["PIPELINING", "SIZE 100000"]))
            .unwrap();
    let mut c = SmtpClient::connect(&server.addr().to_string(), opts()).unwrap();
    assert_eq!(c.greeting().code(), 220);
    let r = c
        .sendmail("a@example.org", &["b@example.org", "c@example.org"], MSG)
        .unwrap();
    assert!(r.refused().is_empty());
    assert_eq!(r.final_reply.as_ref().unwrap().code(), 250);
    c.quit().unwrap();
    let m = &server.wait_for_messages(1, WAIT)[0];
    assert_eq!(m.data, MSG);
    assert_eq!(m.mail_from, format!("<a@example.org> SIZE={}", MSG.len()));
    assert_eq!(m.rcpt_to, ["<b@example.org>", "<c@example.org>"]);
    assert!(!m.chunked);
    server.wait_for_closed(1, WAIT);
    let raw = String::from_utf8(server.raw()[0].clone()).unwrap();
    let ehlo_end = raw.find("MAIL FROM").unwrap();
    assert!(raw[..ehlo_end].starts_with("EHLO "));
    assert_eq!(
        &raw[ehlo_end..],
        format!(
            "MAIL FROM:<a@example.org> SIZE={}\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n\
             From: a@example.org\r\nTo: b@example.org\r\nSubject: t\r\n\r\n..dot line\r\nbody\r\n.\r\nQUIT\r\n",
            MSG.len()
        )
    );
}

#[test]
fn bdat_when_chunking_offered() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let mut c = SmtpClient::connect(&server.addr().to_string(), opts()).unwrap();
    let r = c
        .sendmail(
            "a@example.org",
            &["b@example.org"],
            b"Subject: x\n\nbare lf\n",
        )
        .unwrap();
    assert!(r.chunked);
    c.quit().unwrap();
    let m = &server.wait_for_messages(1, WAIT)[0];
    assert!(m.chunked);
    assert_eq!(m.data, b"Subject: x\r\n\r\nbare lf\r\n");
    server.wait_for_closed(1, WAIT);
    let raw = String::from_utf8(server.raw()[0].clone()).unwrap();
    assert!(
        raw.contains(
            "RCPT TO:<b@example.org>\r\nBDAT 23 LAST\r\nSubject: x\r\n\r\nbare lf\r\nQUIT\r\n"
        ),
        "{raw}"
    );
}

#[test]
fn no_chunking_option_uses_data() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let mut o = opts();
    o.chunking = false;
    let mut c = SmtpClient::connect(&server.addr().to_string(), o).unwrap();
    let r = c
        .sendmail("a@example.org", &["b@example.org"], MSG)
        .unwrap();
    assert!(!r.chunked);
    assert!(!server.wait_for_messages(1, WAIT)[0].chunked);
}

#[test]
fn streamed_body_from_reader_large() {
    // 3 MiB through one 64 KiB buffer, by DATA and by BDAT.
    let line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuv.\r\n";
    let mut body = b"Subject: big\r\n\r\n".to_vec();
    while body.len() < 3 << 20 {
        body.extend_from_slice(line);
        body.extend_from_slice(b".leading dot\r\n");
    }
    for chunking in [false, true] {
        let server = MockServer::start(ServerConfig::default()).unwrap();
        let mut o = opts();
        o.chunking = chunking;
        let mut c = SmtpClient::connect(&server.addr().to_string(), o).unwrap();
        let envelope = Envelope::parse("a@example.org", &["b@example.org"]).unwrap();
        let r = c.send_from_reader(&envelope, &mut &body[..]).unwrap();
        assert_eq!(r.chunked, chunking);
        c.quit().unwrap();
        let m = &server.wait_for_messages(1, WAIT)[0];
        assert_eq!(m.data.len(), body.len());
        assert!(m.data == body, "message altered (chunking {chunking})");
    }
}

#[test]
fn partial_and_total_refusal() {
    let mut config = ServerConfig::default();
    config.refuse_recipients = vec!["x@example.org".into(), "y@example.org".into()];
    let server = MockServer::start(config).unwrap();
    let mut c = SmtpClient::connect(&server.addr().to_string(), opts()).unwrap();
    let r = c
        .sendmail("a@example.org", &["b@example.org", "x@example.org"], MSG)
        .unwrap();
    let refused: Vec<(String, u16)> = r
        .refused()
        .iter()
        .map(|(a, r)| (a.to_string(), r.code()))
        .collect();
    assert_eq!(refused, [("x@example.org".to_owned(), 550)]);
    let e = c
        .sendmail("a@example.org", &["x@example.org", "y@example.org"], MSG)
        .unwrap_err();
    match smtp_err(e) {
        SmtpError::RecipientsRefused(map) => {
            let got: Vec<(&str, u16)> = map.iter().map(|(a, r)| (a.as_str(), r.code())).collect();
            assert_eq!(got, [("x@example.org", 550), ("y@example.org", 550)]);
        }
        other => panic!("{other:?}"),
    }
    // The session is still usable after the RSET.
    assert_eq!(c.noop().unwrap().code(), 250);
    assert_eq!(server.wait_for_messages(1, WAIT).len(), 1);
}

#[test]
fn sender_refused_and_data_refused() {
    let mut config = ServerConfig::default();
    config.refuse_senders = vec!["bad@example.org".into()];
    config.data_reply = Some("554 5.7.1 rejected as spam".into());
    let server = MockServer::start(config).unwrap();
    let mut c = SmtpClient::connect(&server.addr().to_string(), opts()).unwrap();
    match smtp_err(
        c.sendmail("bad@example.org", &["b@example.org"], MSG)
            .unwrap_err(),
    ) {
        SmtpError::SenderRefused { reply, sender } => {
            assert_eq!((reply.code(), sender.as_str()), (553, "bad@example.org"));
        }
        other => panic!("{other:?}"),
    }
    match smtp_err(
        c.sendmail("a@example.org", &["b@example.org"], MSG)
            .unwrap_err(),
    ) {
        SmtpError::DataRefused(reply) => assert_eq!(reply.code(), 554),
        other => panic!("{other:?}"),
    }
}

#[test]
fn helo_fallback_suppresses_options() {
    let mut config = ServerConfig::default();
    config.refuse_ehlo = true;
    let server = MockServer::start(config).unwrap();
    let mut c = SmtpClient::connect(&server.addr().to_string(), opts()).unwrap();
    c.send(
        &Envelope::parse("a@example.org", &["b@example.org"])
            .unwrap()
            .body(BodyType::EightBitMime),
        MSG,
    )
    .unwrap();
    assert!(!c.does_esmtp());
    assert_eq!(
        server.wait_for_messages(1, WAIT)[0].mail_from,
        "<a@example.org>"
    );
}

#[test]
fn size_limit_checked_before_sending() {
    let server =
        MockServer::start(ServerConfig::default().extensions(&["PIPELINING", "SIZE 20"])).unwrap();
    let mut c = SmtpClient::connect(&server.addr().to_string(), opts()).unwrap();
    match smtp_err(
        c.sendmail("a@example.org", &["b@example.org"], MSG)
            .unwrap_err(),
    ) {
        SmtpError::Usage(UsageError::MessageTooLarge { size, limit }) => {
            assert_eq!((size, limit), (MSG.len() as u64, 20));
        }
        other => panic!("{other:?}"),
    }
    c.quit().unwrap();
    server.wait_for_closed(1, WAIT);
    assert!(!String::from_utf8_lossy(&server.raw()[0]).contains("MAIL FROM"));
}

#[test]
fn smtputf8_added_and_required() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let mut c = SmtpClient::connect(&server.addr().to_string(), opts()).unwrap();
    c.sendmail("jörg@bücher.example", &["b@example.org"], MSG)
        .unwrap();
    assert_eq!(
        server.wait_for_messages(1, WAIT)[0].mail_from,
        format!("<jörg@bücher.example> SMTPUTF8 SIZE={}", MSG.len())
    );
    let server = MockServer::start(ServerConfig::default().extensions(&["PIPELINING"])).unwrap();
    let mut c = SmtpClient::connect(&server.addr().to_string(), opts()).unwrap();
    match smtp_err(
        c.sendmail("jörg@bücher.example", &["b@example.org"], MSG)
            .unwrap_err(),
    ) {
        SmtpError::Usage(UsageError::NotSupported(ext)) => assert_eq!(ext, "SMTPUTF8"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn send_message_strips_bcc() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let mut c = SmtpClient::connect(&server.addr().to_string(), opts()).unwrap();
    let msg = b"From: Alice <a@example.org>\r\nTo: b@example.org\r\nBcc: hidden@example.org,\r\n  other@example.org\r\nSubject: s\r\n\r\nhi\r\n";
    let r = c.send_message(msg).unwrap();
    assert_eq!(r.recipients.len(), 3);
    let m = &server.wait_for_messages(1, WAIT)[0];
    assert_eq!(
        m.rcpt_to,
        [
            "<b@example.org>",
            "<hidden@example.org>",
            "<other@example.org>"
        ]
    );
    assert_eq!(
        m.data,
        b"From: Alice <a@example.org>\r\nTo: b@example.org\r\nSubject: s\r\n\r\nhi\r\n"
    );
}

#[test]
#[cfg(feature = "tls")]
fn starttls_then_each_auth_mechanism() {
    let config = ServerConfig::default()
        .tls(ServerTls::StartTls)
        .user("alice", "s3cret");
    let server = MockServer::start(config).unwrap();
    let mechanisms: Vec<Box<dyn Fn() -> Box<dyn smtp_blocking::Mechanism>>> = vec![
        Box::new(|| Box::new(sasl::Plain::new(sasl::Credentials::new("alice", "s3cret")))),
        Box::new(|| Box::new(sasl::Login::new(sasl::Credentials::new("alice", "s3cret")))),
        Box::new(|| {
            Box::new(sasl::CramMd5::new(sasl::Credentials::new(
                "alice", "s3cret",
            )))
        }),
        Box::new(|| Box::new(sasl::XOAuth2::new("alice", sasl::Secret::new("s3cret")))),
        Box::new(|| Box::new(sasl::OAuthBearer::new("alice", sasl::Secret::new("s3cret")))),
    ];
    let mut names = Vec::new();
    for (i, make) in mechanisms.iter().enumerate() {
        for ir in [true, false] {
            let mut c = SmtpClient::connect(&server.addr().to_string(), opts()).unwrap();
            c.set_tls_config(server.pki().client_config());
            c.set_tls_server_name("localhost");
            // `connect` reads the greeting only; STARTTLS says EHLO first.
            assert!(c.capabilities().is_none());
            c.starttls().unwrap();
            assert!(c.is_tls());
            c.ehlo_or_helo_if_needed().unwrap();
            assert!(c.capabilities().is_some());
            assert!(!c.has_extn("STARTTLS"));
            assert!(c.has_extn("AUTH"));
            let mechanism = make();
            let name = mechanism.name().to_owned();
            let send = if ir {
                InitialResponse::Send
            } else {
                InitialResponse::Wait
            };
            let reply = c.auth(mechanism, send).unwrap();
            assert_eq!(reply.code(), 235, "mechanism {i}, initial response {ir}");
            names.push((name, ir));
            c.sendmail("alice@example.org", &["b@example.org"], MSG)
                .unwrap();
            c.quit().unwrap();
        }
    }
    let msgs = server.wait_for_messages(10, WAIT);
    assert_eq!(msgs.len(), 10);
    assert!(
        msgs.iter()
            .all(|m| m.tls && m.auth_user.as_deref() == Some("alice"))
    );
    // The server's transcript shows no secret.
    assert!(
        server
            .transcript()
            .iter()
            .all(|l| !l.contains("s3cret") && !l.contains("czNjcmV0"))
    );
    // Each connection ran the mechanism it was given, with or without the
    // initial response as asked (CRAM-MD5 has none).
    let expected: Vec<String> = names
        .iter()
        .map(|(name, ir)| {
            if *ir && name != "CRAM-MD5" {
                format!("C: AUTH {name} <redacted>")
            } else {
                format!("C: AUTH {name}")
            }
        })
        .collect();
    let auth_lines: Vec<String> = server
        .transcript()
        .into_iter()
        .filter(|l| l.starts_with("C: AUTH"))
        .collect();
    assert_eq!(auth_lines, expected);
}

#[test]
fn login_wrong_password_and_oauth_error() {
    let server = MockServer::start(ServerConfig::default().user("alice", "right")).unwrap();
    let mut c = SmtpClient::connect(&server.addr().to_string(), opts()).unwrap();
    match smtp_err(c.login("alice", "wrong").unwrap_err()) {
        SmtpError::AuthFailed(r) => assert_eq!(r.code(), 535),
        other => panic!("{other:?}"),
    }
    let m = Box::new(sasl::XOAuth2::new("alice", sasl::Secret::new("expired")));
    match smtp_err(c.auth(m, InitialResponse::Send).unwrap_err()) {
        SmtpError::AuthFailed(r) => assert_eq!(r.code(), 535),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.login("alice", "right").unwrap().code(), 235);
}

#[test]
#[cfg(feature = "tls")]
fn implicit_tls() {
    let server = MockServer::start(ServerConfig::default().tls(ServerTls::Implicit)).unwrap();
    let mut c = SmtpClient::connect_tls(
        &server.addr().to_string(),
        opts(),
        Some(server.pki().client_config()),
    )
    .unwrap();
    assert!(c.is_tls());
    c.sendmail("a@example.org", &["b@example.org"], MSG)
        .unwrap();
    c.quit().unwrap();
    assert!(server.wait_for_messages(1, WAIT)[0].tls);
}

#[test]
#[cfg(feature = "tls")]
fn implicit_tls_rejects_unknown_certificate() {
    let server = MockServer::start(ServerConfig::default().tls(ServerTls::Implicit)).unwrap();
    let other = smtp_testkit::TestPki::generate().unwrap();
    let e = SmtpClient::connect_tls(
        &server.addr().to_string(),
        opts(),
        Some(other.client_config()),
    )
    .unwrap_err();
    assert!(matches!(e.inner(), Error::Tls(_)), "{e:?}");
}

#[test]
fn lmtp_unix_socket_one_result_per_recipient() {
    let path = smtp_testkit::temp_socket_path("lmtp");
    let mut config = ServerConfig::lmtp_unix(&path);
    config.refuse_recipients = vec!["nobody".into()];
    config.fail_after_data = vec!["full".into()];
    let server = MockServer::start(config).unwrap();
    let mut c = SmtpClient::connect_lmtp(path.to_str().unwrap(), opts()).unwrap();
    let r = c
        .sendmail("a@example.org", &["bob", "nobody", "full", "carol"], MSG)
        .unwrap();
    let summary: Vec<(String, u16, Option<u16>)> = r
        .recipients
        .iter()
        .map(|x| {
            (
                x.address.to_string(),
                x.rcpt_reply.code(),
                x.final_reply.as_ref().map(|f| f.code()),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("bob".to_owned(), 250, Some(250)),
            ("nobody".to_owned(), 550, None),
            ("full".to_owned(), 250, Some(452)),
            ("carol".to_owned(), 250, Some(250)),
        ]
    );
    let refused: Vec<String> = r.refused().iter().map(|(a, _)| a.to_string()).collect();
    assert_eq!(refused, ["nobody", "full"]);
    c.quit().unwrap();
    server.wait_for_closed(1, WAIT);
    assert!(String::from_utf8_lossy(&server.raw()[0]).starts_with("LHLO "));
}

#[test]
#[cfg(feature = "tls")]
fn starttls_refused_and_required() {
    let server = script_server(
        Script::default()
            .send("220 mx ready")
            .expect_line()
            .send("250-mx\r\n250 STARTTLS")
            .expect_line()
            .send("454 4.7.0 TLS not available"),
    );
    let mut o = opts();
    o.require_tls = true;
    let mut c = SmtpClient::connect(&server.addr().to_string(), o).unwrap();
    // The test CA: nothing here depends on the machine's roots.
    c.set_tls_config(server.pki().client_config());
    match smtp_err(c.starttls().unwrap_err()) {
        SmtpError::StartTlsRefused(r) => assert_eq!(r.code(), 454),
        other => panic!("{other:?}"),
    }
    // The session is over: nothing else may be sent in plaintext.
    assert!(matches!(
        smtp_err(c.login("u", "p").unwrap_err()),
        SmtpError::StartTlsRefused(_)
    ));
    server.wait_for_closed(1, WAIT);
    assert_eq!(server.lines(), ["EHLO [127.0.0.1]", "STARTTLS"]);
}

#[test]
#[cfg(feature = "tls")]
fn starttls_not_offered_with_tls_required() {
    let server = MockServer::start(ServerConfig::default().user("u", "p")).unwrap();
    let mut o = opts();
    o.require_tls = true;
    let mut c = SmtpClient::connect(&server.addr().to_string(), o).unwrap();
    // The test CA: nothing here depends on the machine's roots.
    c.set_tls_config(server.pki().client_config());
    assert!(matches!(
        smtp_err(c.starttls().unwrap_err()),
        SmtpError::Security(smtp_blocking::smtp_sansio::SecurityError::StartTlsNotOffered)
    ));
    assert!(
        c.sendmail("a@example.org", &["b@example.org"], MSG)
            .is_err()
    );
    server.wait_for_closed(1, WAIT);
    let raw = String::from_utf8_lossy(&server.raw()[0]).into_owned();
    assert!(!raw.contains("AUTH") && !raw.contains("MAIL"), "{raw}");
}

#[test]
#[cfg(feature = "tls")]
fn starttls_injected_bytes_end_the_session() {
    let server = script_server(
        Script::default()
            .send("220 mx ready")
            .expect_line()
            .send("250-mx\r\n250 STARTTLS")
            .expect_line()
            .then(Step::Send(
                b"220 go ahead\r\n250-evil\r\n250 AUTH PLAIN\r\n".to_vec(),
            )),
    );
    let mut c = SmtpClient::connect(&server.addr().to_string(), opts()).unwrap();
    // The test CA: nothing here depends on the machine's roots.
    c.set_tls_config(server.pki().client_config());
    match c.starttls().unwrap_err().into_inner() {
        Error::Smtp(SmtpError::Protocol(ProtocolError::DataAfterStartTls(_))) => {}
        // Bytes that arrive after the 220 in a later read reach the TLS layer instead.
        Error::Tls(_) | Error::Io(_) => {}
        other => panic!("{other:?}"),
    }
    assert!(c.noop().is_err());
}

#[test]
fn silent_server_times_out_within_the_timeout() {
    let server = script_server(
        Script::default()
            .send("220 mx ready")
            .then(Step::Silence(Duration::from_secs(20))),
    );
    let mut o = Options::default();
    o.timeout = Some(Duration::from_millis(300));
    let mut c = SmtpClient::connect(&server.addr().to_string(), o).unwrap();
    let start = Instant::now();
    let e = c.noop().unwrap_err();
    let took = start.elapsed();
    assert!(matches!(smtp_err(e), SmtpError::Timeout(_)));
    assert!(
        took >= Duration::from_millis(290),
        "gave up early: {took:?}"
    );
    assert!(took < Duration::from_millis(300 + 1000), "hung: {took:?}");
}

#[test]
fn silent_greeting_times_out() {
    let server = script_server(Script::default().then(Step::Silence(Duration::from_secs(20))));
    let mut o = Options::default();
    o.timeout = Some(Duration::from_millis(200));
    let start = Instant::now();
    let e = SmtpClient::connect(&server.addr().to_string(), o).unwrap_err();
    let took = start.elapsed();
    assert!(matches!(smtp_err(e), SmtpError::Timeout(_)));
    assert!(took < Duration::from_millis(200 + 1000), "hung: {took:?}");
}

#[test]
fn server_answering_one_byte_at_a_time() {
    let server = script_server(
        Script::default()
            .then(Step::SendSlowly(
                b"220-mx.example\r\n220 ready\r\n".to_vec(),
                Duration::from_millis(1),
            ))
            .expect_line()
            .then(Step::SendSlowly(
                b"250-mx\r\n250 PIPELINING\r\n".to_vec(),
                Duration::from_millis(1),
            ))
            .expect_line()
            .send("221 bye"),
    );
    let mut c = SmtpClient::connect(&server.addr().to_string(), opts()).unwrap();
    assert_eq!(
        c.greeting().lines().collect::<Vec<_>>(),
        ["mx.example", "ready"]
    );
    assert_eq!(c.ehlo(None).unwrap().code(), 250);
    assert!(c.has_extn("pipelining"));
    assert_eq!(c.quit().unwrap().code(), 221);
}

#[test]
fn endless_reply_is_bounded() {
    let server = script_server(Script::default().send("220 mx ready").expect_line().then(
        Step::Flood(b"250-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n".to_vec()),
    ));
    let mut c = SmtpClient::connect(&server.addr().to_string(), opts()).unwrap();
    match smtp_err(c.ehlo(None).unwrap_err()) {
        SmtpError::Protocol(
            ProtocolError::TooManyLines { .. } | ProtocolError::ReplyTooLarge { .. },
        ) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn endless_line_is_bounded() {
    let server = script_server(
        Script::default()
            .send("220 mx ready")
            .expect_line()
            .then(Step::Flood(b"250 yyyyyyyyyyyyyyyyyyyy".to_vec())),
    );
    let mut c = SmtpClient::connect(&server.addr().to_string(), opts()).unwrap();
    assert!(matches!(
        smtp_err(c.noop().unwrap_err()),
        SmtpError::Protocol(ProtocolError::LineTooLong { .. })
    ));
}

#[test]
fn disconnect_during_data() {
    let server = script_server(
        Script::default()
            .send("220 mx ready")
            .expect_line()
            .send("250 mx")
            .expect_line()
            .send("250 ok")
            .expect_line()
            .send("250 ok")
            .expect_line()
            .send("354 go")
            .then(Step::ReadUntil(b"\r\n.\r\n".to_vec()))
            .then(Step::Close),
    );
    let mut c = SmtpClient::connect(&server.addr().to_string(), opts()).unwrap();
    let e = c
        .sendmail("a@example.org", &["b@example.org"], MSG)
        .unwrap_err();
    // The final dot went out before the server hung up: it may have the
    // message. The session's own error is the disconnect.
    assert_eq!(e.delivery(), smtp_blocking::Delivery::Unknown);
    match smtp_err(e) {
        SmtpError::Uncertain { cause, .. } => assert_eq!(*cause, SmtpError::Disconnected),
        other => panic!("{other:?}"),
    }
    let e = c.noop().unwrap_err();
    assert_eq!(e.delivery(), smtp_blocking::Delivery::NotSent);
    assert!(matches!(smtp_err(e), SmtpError::Disconnected));
}

#[test]
fn reply_421_ends_the_session() {
    let mut config = ServerConfig::default();
    config.reply_421_after = Some(1);
    let server = MockServer::start(config).unwrap();
    let mut c = SmtpClient::connect(&server.addr().to_string(), opts()).unwrap();
    match smtp_err(
        c.sendmail("a@example.org", &["b@example.org"], MSG)
            .unwrap_err(),
    ) {
        SmtpError::ServiceClosing { reply, .. } => assert_eq!(reply.code(), 421),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        smtp_err(c.noop().unwrap_err()),
        SmtpError::ServiceClosing { .. }
    ));
}

#[test]
fn greeting_refused_is_a_connect_error() {
    let mut config = ServerConfig::default();
    config.greeting = "554 5.7.1 go away".into();
    let server = MockServer::start(config).unwrap();
    match smtp_err(SmtpClient::connect(&server.addr().to_string(), opts()).unwrap_err()) {
        SmtpError::ConnectRefused(r) => assert_eq!(r.code(), 554),
        other => panic!("{other:?}"),
    }
}

#[test]
fn low_level_commands() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let mut c = SmtpClient::connect(&server.addr().to_string(), opts()).unwrap();
    assert_eq!(c.ehlo(Some("client.example")).unwrap().code(), 250);
    assert_eq!(c.verify("postmaster").unwrap().code(), 252);
    assert_eq!(c.expn("staff").unwrap().code(), 502);
    assert_eq!(c.help(None).unwrap().code(), 214);
    assert_eq!(c.docmd("xyzzy", None).unwrap().code(), 500);
    assert_eq!(c.mail("a@example.org", &[]).unwrap().code(), 250);
    assert_eq!(
        c.rcpt("b@example.org", &["NOTIFY=NEVER".parse().unwrap()])
            .unwrap()
            .code(),
        250
    );
    let replies = c.data(b"Subject: low level\r\n\r\nx").unwrap();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].code(), 250);
    assert_eq!(c.rset().unwrap().code(), 250);
    assert_eq!(c.quit().unwrap().code(), 221);
    assert_eq!(
        server.wait_for_messages(1, WAIT)[0].data,
        b"Subject: low level\r\n\r\nx\r\n"
    );
}

#[test]
fn injection_in_arguments_is_refused_before_sending() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let mut c = SmtpClient::connect(&server.addr().to_string(), opts()).unwrap();
    let evil = "a@example.org>\r\nRCPT TO:<evil@example.org";
    assert!(matches!(
        smtp_err(c.sendmail(evil, &["b@example.org"], MSG).unwrap_err()),
        SmtpError::Usage(UsageError::InvalidArgument { .. })
    ));
    assert!("X=1\r\nRSET".parse::<smtp_sansio::Parameter>().is_err());
    assert!(c.verify("x\r\nQUIT").is_err());
    c.quit().unwrap();
    server.wait_for_closed(1, WAIT);
    let raw = String::from_utf8_lossy(&server.raw()[0]).into_owned();
    assert!(
        !raw.contains("evil") && !raw.contains("RSET") && !raw.contains("VRFY"),
        "{raw}"
    );
}

#[test]
fn zero_timeout_is_an_argument_error() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let mut o = Options::default();
    o.timeout = Some(Duration::ZERO);
    assert!(matches!(
        smtp_err(SmtpClient::connect(&server.addr().to_string(), o).unwrap_err()),
        SmtpError::Usage(UsageError::InvalidArgument { .. })
    ));
}

#[test]
fn transcript_redacts_credentials() {
    // PLAIN only: its payload (and the password in it) is on the AUTH line.
    let server = MockServer::start(
        ServerConfig::default()
            .auth_mechanisms(&["PLAIN"])
            .user("alice", "hunter2"),
    )
    .unwrap();
    let mut o = opts();
    o.debug_level = 1.into();
    let mut c = SmtpClient::connect(&server.addr().to_string(), o).unwrap();
    let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    c.ehlo_or_helo_if_needed().unwrap();
    c.set_transcript(Box::new(Sink(buf.clone())));
    c.login_with("alice", "hunter2", InitialResponse::Send)
        .unwrap();
    let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
    assert_eq!(
        text,
        "C: AUTH PLAIN <redacted>\nS: 235 2.7.0 Authentication successful\n"
    );
    // What the transcript hides did go over the wire.
    let sent = String::from_utf8_lossy(&server.raw().concat()).into_owned();
    assert!(
        sent.contains("AUTH PLAIN AGFsaWNlAGh1bnRlcjI=\r\n"),
        "{sent}"
    );
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn transcript_redacts_cram_md5_response() {
    // CRAM-MD5 first among those offered: smtplib's `login` order.
    let server = MockServer::start(ServerConfig::default().user("alice", "hunter2")).unwrap();
    let mut o = opts();
    o.debug_level = 1.into();
    let mut c = SmtpClient::connect(&server.addr().to_string(), o).unwrap();
    c.ehlo_or_helo_if_needed().unwrap();
    let out = smtp_testkit::debug::SharedWriter::new();
    c.set_transcript(Box::new(out.clone()));
    c.login_with("alice", "hunter2", InitialResponse::Send)
        .unwrap();
    let text = out.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[0], "C: AUTH CRAM-MD5");
    assert!(lines[1].starts_with("S: 334 "), "{text}");
    assert_eq!(lines[2], "C: <redacted>");
    assert_eq!(lines[3], "S: 235 2.7.0 Authentication successful");
    // The response is base64("alice <digest>"): not in the transcript, but
    // on the wire.
    assert!(!text.contains("YWxpY2Ug"), "{text}");
    let sent = String::from_utf8_lossy(&server.raw().concat()).into_owned();
    assert!(sent.contains("\r\nYWxpY2Ug"), "{sent}");
}

#[test]
fn host_port_forms() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let port = server.addr().port();
    for addr in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        let c = SmtpClient::connect(&addr, opts()).unwrap();
        c.quit().unwrap();
    }
    assert!(SmtpClient::connect("127.0.0.1:notaport", opts()).is_err());
}

#[test]
fn set_debug_level_after_connect_turns_the_transcript_on() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let mut c = SmtpClient::connect(&server.addr().to_string(), opts()).unwrap();
    let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    c.set_transcript(Box::new(Sink(buf.clone())));
    c.noop().unwrap();
    assert!(buf.lock().unwrap().is_empty());
    c.set_debug_level(1);
    c.noop().unwrap();
    assert_eq!(
        String::from_utf8(buf.lock().unwrap().clone()).unwrap(),
        "C: NOOP\nS: 250 2.0.0 Ok\n"
    );
}

/// Each timeout is a `setsockopt`: they are set when they change, not before
/// every read and write (which cost 8 system calls per message).
#[test]
fn socket_timeouts_are_not_set_again_for_every_message() {
    let server = MockServer::start(ServerConfig::default().extensions(&["PIPELINING"])).unwrap();
    let mut c = SmtpClient::connect(&server.addr().to_string(), Options::default()).unwrap();
    let to = ["b@example.org"];
    c.sendmail("a@example.org", &to, b"Subject: 1\r\n\r\nx\r\n")
        .unwrap();
    let after_first = c.timer_sets();
    for i in 0..20 {
        let m = format!("Subject: {i}\r\n\r\nx\r\n");
        c.sendmail("a@example.org", &to, m.as_bytes()).unwrap();
    }
    assert!(
        after_first <= 4,
        "{after_first} setsockopt calls for one message"
    );
    assert_eq!(
        c.timer_sets(),
        after_first,
        "20 more messages set timeouts again"
    );
    c.quit().unwrap();
}

/// smtplib's debug levels: 2 timestamps every transcript line (`seconds.micros`
/// since the Unix epoch), 1 does not, 0 writes nothing; AUTH payloads never
/// appear, at any level.
#[test]
fn debug_level_2_timestamps_and_auth_redaction() {
    use smtp_testkit::debug::{self, SharedWriter};
    let server = MockServer::start(debug::auth_server()).unwrap();
    let mut c = SmtpClient::connect(&server.addr().to_string(), opts()).unwrap();
    let out = SharedWriter::new();
    c.set_transcript(Box::new(out.clone()));
    c.set_debug_level(2);
    assert!(c.login(debug::USER, debug::WRONG_PASSWORD).is_err());
    c.login_with(debug::USER, debug::PASSWORD, InitialResponse::Wait)
        .unwrap();
    c.noop().unwrap();
    let level2 = out.text();
    out.clear();
    c.set_debug_level(1);
    c.noop().unwrap();
    let level1 = out.text();
    out.clear();
    c.set_debug_level(0);
    c.noop().unwrap();
    debug::check_auth_session(&level2, &level1, &out.text()).unwrap();
}
