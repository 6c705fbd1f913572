//! The rows of the scenario table.

use super::*;

/// Sending: BDAT and DATA, line endings, refusals of some recipients.
pub(super) fn sending() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "sendmail by BDAT, pipelined",
            server: ServerConfig::default(),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &[]),
                    "sent bdat 250",
                ),
                (Act::Quit, "ok 221"),
            ],
            received: vec![MSG],
        },
        Scenario {
            name: "sendmail by DATA with dot-stuffing",
            server: ServerConfig::default(),
            steps: vec![
                (
                    tweak(Tweak {
                        no_chunking: true,
                        ..Tweak::default()
                    }),
                    "ok 220",
                ),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &[]),
                    "sent 250",
                ),
            ],
            received: vec![MSG],
        },
        Scenario {
            name: "bare line endings normalised, no pipelining",
            server: ServerConfig::default().extensions(&["8BITMIME"]),
            steps: vec![
                (
                    tweak(Tweak {
                        no_pipelining: true,
                        ..Tweak::default()
                    }),
                    "ok 220",
                ),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], BARE, &[]),
                    "sent 250",
                ),
            ],
            received: vec![BARE_NORMALISED],
        },
        Scenario {
            name: "partial refusal",
            server: refusing(&["x@example.org"], &[]),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail(
                        "a@example.org",
                        &["b@example.org", "x@example.org"],
                        MSG,
                        &[],
                    ),
                    "sent bdat 250 refused=x@example.org:550",
                ),
            ],
            received: vec![MSG],
        },
        Scenario {
            name: "total refusal, then the session goes on",
            server: refusing(&["x@example.org", "y@example.org"], &[]),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail(
                        "a@example.org",
                        &["x@example.org", "y@example.org"],
                        MSG,
                        &[],
                    ),
                    "err RecipientsRefused x@example.org:550,y@example.org:550",
                ),
                (Act::Noop, "ok 250"),
            ],
            received: vec![],
        },
    ]
}

/// The server refuses the sender, the message, EHLO, the size or SMTPUTF8.
pub(super) fn refusals() -> Vec<Scenario> {
    let data_refused = ServerConfig {
        data_reply: Some("554 5.7.1 spam".into()),
        ..ServerConfig::default()
    };
    let no_ehlo = ServerConfig {
        refuse_ehlo: true,
        ..ServerConfig::default()
    };
    vec![
        Scenario {
            name: "sender refused",
            server: refusing(&[], &["bad@example.org"]),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail("bad@example.org", &["b@example.org"], MSG, &[]),
                    "err SenderRefused 553",
                ),
            ],
            received: vec![],
        },
        Scenario {
            name: "data refused",
            server: data_refused,
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &[]),
                    "err DataRefused 554",
                ),
            ],
            received: vec![],
        },
        Scenario {
            name: "HELO fallback",
            server: no_ehlo,
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &["BODY=8BITMIME"]),
                    "sent 250",
                ),
            ],
            received: vec![MSG],
        },
        Scenario {
            name: "SIZE over the limit",
            server: ServerConfig::default().extensions(&["PIPELINING", "SIZE 10"]),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &[]),
                    "err Usage MessageTooLarge",
                ),
            ],
            received: vec![],
        },
        Scenario {
            name: "SMTPUTF8 not offered",
            server: ServerConfig::default().extensions(&["PIPELINING"]),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail("jörg@bücher.example", &["b@example.org"], MSG, &[]),
                    "err Usage NotSupported",
                ),
            ],
            received: vec![],
        },
        Scenario {
            name: "send_message strips Bcc",
            server: ServerConfig::default(),
            steps: vec![
                (plain(), "ok 220"),
                (Act::SendMessage(BCC), "sent bdat 250"),
            ],
            received: vec![BCC_SENT],
        },
    ]
}

/// STARTTLS, implicit TLS, logins, and LMTP over a Unix socket at `lmtp_path`.
pub(super) fn tls_and_lmtp(lmtp_path: &std::path::Path) -> Vec<Scenario> {
    let mut lmtp = ServerConfig::lmtp_unix(lmtp_path);
    lmtp.refuse_recipients = vec!["nobody@example.org".into()];
    lmtp.fail_after_data = vec!["full@example.org".into()];
    vec![
        Scenario {
            name: "STARTTLS and login",
            server: ServerConfig::default()
                .tls(ServerTls::StartTls)
                .user("alice", "pw"),
            steps: vec![
                (
                    Act::Connect(
                        Connect::Plain,
                        Tweak {
                            require_tls: true,
                            ..Tweak::default()
                        },
                    ),
                    "ok 220",
                ),
                (Act::StartTls, "ok 220"),
                (Act::Login("alice", "pw"), "ok 235"),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &[]),
                    "sent bdat 250",
                ),
                (Act::Quit, "ok 221"),
            ],
            received: vec![MSG],
        },
        Scenario {
            name: "login refused",
            server: ServerConfig::default().user("alice", "pw"),
            steps: vec![
                (plain(), "ok 220"),
                (Act::Login("alice", "nope"), "err AuthFailed 535"),
                (Act::Login("alice", "pw"), "ok 235"),
            ],
            received: vec![],
        },
        Scenario {
            name: "STARTTLS required but not offered",
            server: ServerConfig::default().user("alice", "pw"),
            steps: vec![
                (
                    Act::Connect(
                        Connect::Plain,
                        Tweak {
                            require_tls: true,
                            ..Tweak::default()
                        },
                    ),
                    "ok 220",
                ),
                (Act::StartTls, "err Security StartTlsNotOffered"),
                (Act::Login("alice", "pw"), "err Security StartTlsNotOffered"),
            ],
            received: vec![],
        },
        Scenario {
            name: "STARTTLS response injection",
            server: script(
                Script::default()
                    .send("220 mx")
                    .expect_line()
                    .send("250-mx\r\n250 STARTTLS")
                    .expect_line()
                    .then(Step::Send(b"220 go\r\n250 injected\r\n".to_vec())),
            ),
            steps: vec![
                (plain(), "ok 220"),
                (Act::StartTls, "err Protocol DataAfterStartTls"),
            ],
            received: vec![],
        },
        Scenario {
            name: "STARTTLS refused",
            server: script(
                Script::default()
                    .send("220 mx")
                    .expect_line()
                    .send("250-mx\r\n250 STARTTLS")
                    .expect_line()
                    .send("454 4.7.0 no TLS"),
            ),
            steps: vec![
                (plain(), "ok 220"),
                (Act::StartTls, "err StartTlsRefused 454"),
            ],
            received: vec![],
        },
        Scenario {
            name: "implicit TLS",
            server: ServerConfig::default().tls(ServerTls::Implicit),
            steps: vec![
                (
                    Act::Connect(Connect::ImplicitTls, Tweak::default()),
                    "ok 220",
                ),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &[]),
                    "sent bdat 250",
                ),
            ],
            received: vec![MSG],
        },
        Scenario {
            name: "LMTP over a Unix socket, one result per recipient",
            server: lmtp,
            steps: vec![
                (Act::Connect(Connect::LmtpUnix, Tweak::default()), "ok 220"),
                (
                    Act::Sendmail(
                        "a@example.org",
                        &["b@example.org", "nobody@example.org", "full@example.org"],
                        MSG,
                        &[],
                    ),
                    "sent bdat b@example.org:250/250 nobody@example.org:550/0 full@example.org:250/452 refused=nobody@example.org:550,full@example.org:452",
                ),
            ],
            received: vec![MSG],
        },
    ]
}

/// Servers that close, refuse to greet, fall silent or answer without end.
pub(super) fn broken_sessions() -> Vec<Scenario> {
    let closing = ServerConfig {
        reply_421_after: Some(2),
        ..ServerConfig::default()
    };
    let greeting_554 = ServerConfig {
        greeting: "554 5.7.1 no".into(),
        ..ServerConfig::default()
    };
    vec![
        Scenario {
            name: "421 ends the session",
            server: closing,
            steps: vec![
                (plain(), "ok 220"),
                (Act::Noop, "ok 250"),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &[]),
                    "err ServiceClosing 421",
                ),
                (Act::Noop, "err ServiceClosing 421"),
            ],
            received: vec![],
        },
        Scenario {
            name: "greeting refused",
            server: greeting_554,
            steps: vec![(plain(), "err ConnectRefused 554")],
            received: vec![],
        },
        Scenario {
            name: "silent server times out",
            server: script(
                Script::default()
                    .send("220 mx")
                    .then(Step::Silence(Duration::from_secs(20))),
            ),
            steps: vec![
                (
                    tweak(Tweak {
                        timeout_ms: Some(300),
                        ..Tweak::default()
                    }),
                    "ok 220",
                ),
                (Act::Noop, "err Timeout"),
            ],
            received: vec![],
        },
        Scenario {
            name: "one byte at a time",
            server: script(
                Script::default()
                    .then(Step::SendSlowly(
                        b"220-mx\r\n220 ready\r\n".to_vec(),
                        Duration::from_millis(1),
                    ))
                    .expect_line()
                    .then(Step::SendSlowly(
                        b"252 2.0.0 maybe\r\n".to_vec(),
                        Duration::from_millis(1),
                    )),
            ),
            steps: vec![(plain(), "ok 220"), (Act::Verify("postmaster"), "ok 252")],
            received: vec![],
        },
        Scenario {
            name: "endless reply is bounded",
            server: script(
                Script::default()
                    .send("220 mx")
                    .expect_line()
                    .then(Step::Flood(
                        b"250-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n".to_vec(),
                    )),
            ),
            steps: vec![
                (plain(), "ok 220"),
                (Act::Noop, "err Protocol TooManyLines"),
            ],
            received: vec![],
        },
    ]
}

/// What is known of a message when the connection breaks after it.
pub(super) fn after_the_message() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "disconnect after the final dot: delivery unknown",
            server: script(
                until_354()
                    .then(Step::ReadUntil(b"\r\n.\r\n".to_vec()))
                    .close(),
            ),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &[]),
                    "err Uncertain (Disconnected)",
                ),
                (Act::Noop, "err Disconnected"),
            ],
            received: vec![],
        },
        Scenario {
            name: "421 to the final dot: refused, not unknown",
            server: script(
                until_354()
                    .then(Step::ReadUntil(b"\r\n.\r\n".to_vec()))
                    .send("421 4.3.2 shutting down")
                    .close(),
            ),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &[]),
                    "err ServiceClosing 421 end",
                ),
            ],
            received: vec![],
        },
        Scenario {
            name: "421 to the final dot, then a reset: refused",
            server: script(
                until_354()
                    .then(Step::ReadUntil(b"\r\n.\r\n".to_vec()))
                    .send("421 4.3.2 shutting down")
                    .reset(),
            ),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &[]),
                    "err ServiceClosing 421 end",
                ),
            ],
            received: vec![],
        },
    ]
}

/// Refusals followed by a reset or a close: the error of the refusal wins.
pub(super) fn resets() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "sender refused, then a reset at RSET",
            server: refusing(&[], &["a@example.org"])
                .fault(Fault::AfterRefusal(FaultAction::Reset)),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &[]),
                    "err SenderRefused 553",
                ),
            ],
            received: vec![],
        },
        Scenario {
            name: "every recipient refused, then a reset at RSET",
            server: refusing(&["x@example.org", "y@example.org"], &[])
                .fault(Fault::AfterRefusal(FaultAction::Reset)),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail(
                        "a@example.org",
                        &["x@example.org", "y@example.org"],
                        MSG,
                        &[],
                    ),
                    "err RecipientsRefused x@example.org:550,y@example.org:550",
                ),
            ],
            received: vec![],
        },
        Scenario {
            name: "every recipient refused without pipelining, then a reset at RSET",
            server: refusing(&["x@example.org"], &[])
                .extensions(&["8BITMIME"])
                .fault(Fault::AfterRefusal(FaultAction::Reset)),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail("a@example.org", &["x@example.org"], MSG, &[]),
                    "err RecipientsRefused x@example.org:550",
                ),
            ],
            received: vec![],
        },
        Scenario {
            name: "554 to the message, then a reset at RSET",
            server: ServerConfig::default()
                .fail_data_with(554)
                .fault(Fault::AfterRefusal(FaultAction::Reset)),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &[]),
                    "err DataRefused 554",
                ),
            ],
            received: vec![],
        },
        Scenario {
            name: "451 to the message over DATA, then a close",
            server: ServerConfig::default()
                .extensions(&["PIPELINING", "8BITMIME"])
                .fail_data_with(451)
                .fault(Fault::AfterRefusal(FaultAction::Close)),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &[]),
                    "err DataRefused 451",
                ),
                (Act::Noop, "err Disconnected"),
            ],
            received: vec![],
        },
        Scenario {
            name: "disconnect at 354: not sent",
            server: script(
                Script::default()
                    .send("220 mx")
                    .expect_line()
                    .send("250 mx")
                    .expect_line()
                    .send("250 ok")
                    .expect_line()
                    .send("250 ok")
                    .expect_line()
                    .close(),
            ),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::Sendmail("a@example.org", &["b@example.org"], MSG, &[]),
                    "err Disconnected",
                ),
            ],
            received: vec![],
        },
    ]
}

/// A server without PIPELINING or CHUNKING up to its 354 answer to DATA.
fn until_354() -> Script {
    Script::default()
        .send("220 mx")
        .expect_line()
        .send("250 mx")
        .expect_line()
        .send("250 ok")
        .expect_line()
        .send("250 ok")
        .expect_line()
        .send("354 go")
}
