//! The cases of CPython's `test_smtplib.py` that hold for every adapter.

use super::*;

/// `send_message` with one block of `Resent-` headers (CPython's
/// `testSendMessageResent`), as given and as sent.
const RESENT: &[u8] = b"From: a@example.org\r\nTo: b@example.org\r\nBcc: hidden@example.org\r\n\
Resent-Date: Thu, 1 Jan 1970 17:42:00 +0000\r\nResent-From: c@example.org\r\nResent-To: d@example.org\r\nResent-Bcc: e@example.org\r\n\r\nx\r\n";
const RESENT_SENT: &[u8] = b"From: a@example.org\r\nTo: b@example.org\r\n\
Resent-Date: Thu, 1 Jan 1970 17:42:00 +0000\r\nResent-From: c@example.org\r\nResent-To: d@example.org\r\n\r\nx\r\n";
/// Two blocks of `Resent-` headers, counted by `Resent-Date` as smtplib does
/// (`testSendMessageMultipleResentRaises`).
const RESENT_TWICE: &[u8] = b"From: a@example.org\r\nTo: b@example.org\r\n\
Resent-Date: Thu, 1 Jan 1970 17:42:00 +0000\r\nResent-From: c@example.org\r\nResent-To: d@example.org\r\n\
Resent-Date: Fri, 2 Jan 1970 17:42:00 +0000\r\nResent-From: e@example.org\r\nResent-To: f@example.org\r\n\r\nx\r\n";

/// A server that greets, answers EHLO without extensions, and then answers
/// each of the next commands in turn with `answers` (an answer after DATA's
/// 354 comes after the message); it then reads until the client closes.
fn answering(answers: &[&str]) -> ServerConfig {
    let mut s = Script::default()
        .send("220 mx")
        .expect_line()
        .send("250 mx");
    let mut after_body = false;
    for answer in answers {
        if !after_body {
            s = s.expect_line();
        }
        s = s.send(answer);
        after_body = answer.starts_with("354");
        if after_body {
            s = s.read_until(b"\r\n.\r\n");
        }
    }
    script(s.expect_line())
}

/// The cases of CPython's `test_smtplib.py` that hold for every adapter.
pub(super) fn smtplib_rows() -> Vec<Scenario> {
    let long_line = {
        let mut l = b"250 OK".to_vec();
        l.extend(std::iter::repeat_n(b'.', 16 * 1024));
        l.push(b'\n');
        l
    };
    let send = || {
        Act::Sendmail(
            "a@example.org",
            &["b@example.org", "c@example.org"],
            MSG,
            &[],
        )
    };
    vec![
        Scenario {
            name: "refused MAIL, then the server closes (bpo-17498)",
            server: script(
                Script::default()
                    .send("220 mx")
                    .expect_line()
                    .send("250 mx")
                    .expect_line()
                    .send("451 4.3.0 Requested action aborted")
                    .close(),
            ),
            steps: vec![
                (plain(), "ok 220"),
                (send(), "err SenderRefused 451"),
                (Act::Noop, "err Disconnected"),
            ],
            received: vec![],
        },
        Scenario {
            name: "421 answering MAIL (bpo-5713)",
            server: answering(&["421 4.3.2 closing connection"]),
            steps: vec![
                (plain(), "ok 220"),
                (send(), "err ServiceClosing 421"),
                (Act::Noop, "err ServiceClosing 421"),
            ],
            received: vec![],
        },
        Scenario {
            name: "421 answering RCPT",
            server: answering(&["250 ok", "250 accepted", "421 4.3.2 closing"]),
            steps: vec![
                (plain(), "ok 220"),
                (send(), "err ServiceClosing 421"),
                (Act::Noop, "err ServiceClosing 421"),
            ],
            received: vec![],
        },
        Scenario {
            name: "421 answering the message",
            server: answering(&["250 ok", "250 ok", "250 ok", "354 go", "421 4.3.2 closing"]),
            steps: vec![
                (plain(), "ok 220"),
                (send(), "err ServiceClosing 421 end"),
                (Act::Noop, "err ServiceClosing 421"),
            ],
            received: vec![],
        },
        Scenario {
            name: "QUIT answered 421",
            server: script(
                Script::default()
                    .send("220 mx")
                    .expect_line()
                    .send("421 QUIT FAILED"),
            ),
            steps: vec![(plain(), "ok 220"), (Act::Quit, "ok 421")],
            received: vec![],
        },
        Scenario {
            name: "greeting code out of range",
            server: script(Script::default().send("199 no hello for you!")),
            steps: vec![(plain(), "err Protocol MalformedReply")],
            received: vec![],
        },
        Scenario {
            name: "greeting line too long",
            server: script(Script::default().send_bytes(&long_line).close()),
            steps: vec![(plain(), "err Protocol LineTooLong")],
            received: vec![],
        },
        Scenario {
            name: "send_message with Resent- headers",
            server: ServerConfig::default(),
            steps: vec![
                (plain(), "ok 220"),
                (Act::SendMessage(RESENT), "sent bdat 250"),
            ],
            received: vec![RESENT_SENT],
        },
        Scenario {
            name: "send_message with two Resent- blocks",
            server: ServerConfig::default(),
            steps: vec![
                (plain(), "ok 220"),
                (Act::SendMessage(RESENT_TWICE), "err Usage Envelope"),
                (Act::Noop, "ok 250"),
            ],
            received: vec![],
        },
    ]
}
