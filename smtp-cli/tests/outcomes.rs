//! smtp-send's exit status when the connection fails after a refusal, and for
//! a final 4xx or 5xx (421 included): a refusal is exit 3 with its kind,
//! never a connection failure (4) or an unknown delivery (5).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};

use smtp_testkit::{Fault, FaultAction, MockServer, ServerConfig};

const MSG: &str = "From: a@example.org\r\nTo: b@example.org\r\nSubject: outcomes\r\n\r\nhello\r\n";

struct Run {
    status: i32,
    json: String,
    stderr: String,
}

/// `smtp-send --json` against `config`, from a@example.org to `to`.
fn smtp_send(config: ServerConfig, to: &str) -> Run {
    let server = MockServer::start(config).unwrap();
    let addr = server.addr().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_smtp-send"))
        .args([
            "--server",
            &addr,
            "--from",
            "a@example.org",
            "--to",
            to,
            "--json",
            "--timeout",
            "10",
        ])
        .env_remove("SMTP_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(MSG.as_bytes());
    let out = child.wait_with_output().unwrap();
    assert!(server.messages().is_empty(), "nothing was stored");
    Run {
        status: out.status.code().unwrap_or(-1),
        json: String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or("")
            .to_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn reset_after_refusal(config: ServerConfig) -> ServerConfig {
    config.fault(Fault::AfterRefusal(FaultAction::Reset))
}

#[test]
fn recipients_refused_then_a_reset_at_rset_exits_3_with_the_map() {
    for pipelining in [true, false] {
        let mut extensions = vec!["8BITMIME"];
        if pipelining {
            extensions.push("PIPELINING");
        }
        let config = ServerConfig::default()
            .extensions(&extensions)
            .refuse_recipient("b@example.org");
        let r = smtp_send(reset_after_refusal(config), "b@example.org");
        assert_eq!(r.status, 3, "pipelining {pipelining}: {}", r.stderr);
        assert_eq!(
            r.json,
            r#"{"accepted": [], "refused": {"b@example.org": [550, "5.1.1 <b@example.org> no such user"]}, "reply": null, "error": {"kind": "recipients_refused", "code": null, "message": "all recipients refused: b@example.org: 550 5.1.1 <b@example.org> no such user"}}"#,
            "pipelining {pipelining}"
        );
    }
}

#[test]
fn sender_refused_then_a_reset_exits_3() {
    let config = ServerConfig::default().refuse_sender("a@example.org");
    let r = smtp_send(reset_after_refusal(config), "b@example.org");
    assert_eq!(r.status, 3, "{}", r.stderr);
    assert!(
        r.json.contains(r#""kind": "sender_refused", "code": 553"#),
        "{}",
        r.json
    );
}

#[test]
fn a_554_to_the_message_then_a_reset_exits_3_data_refused() {
    for extensions in [&["PIPELINING", "8BITMIME"][..], &["PIPELINING", "CHUNKING"]] {
        let config = ServerConfig::default()
            .extensions(extensions)
            .fail_data_with(554);
        let r = smtp_send(reset_after_refusal(config), "b@example.org");
        assert_eq!(r.status, 3, "{extensions:?}: {}", r.stderr);
        assert!(
            r.json.contains(r#""kind": "data_refused", "code": 554"#),
            "{extensions:?}: {}",
            r.json
        );
    }
}

#[test]
fn a_451_to_the_message_then_a_close_exits_3() {
    let config = ServerConfig::default()
        .fail_data_with(451)
        .fault(Fault::AfterRefusal(FaultAction::Close));
    let r = smtp_send(config, "b@example.org");
    assert_eq!(r.status, 3, "{}", r.stderr);
    assert!(
        r.json.contains(r#""kind": "data_refused", "code": 451"#),
        "{}",
        r.json
    );
}

#[test]
fn a_421_to_the_message_exits_3_service_closing() {
    // RFC 5321 section 4.1.1.4: a server that does not take the message must
    // say so; a 421 in place of the reply to the end is that answer.
    for extensions in [&["PIPELINING", "8BITMIME"][..], &["PIPELINING", "CHUNKING"]] {
        for fault in [None, Some(Fault::AfterRefusal(FaultAction::Reset))] {
            let mut config = ServerConfig::default()
                .extensions(extensions)
                .fail_data_with(421);
            config.fault = fault;
            let r = smtp_send(config, "b@example.org");
            assert_eq!(r.status, 3, "{extensions:?} {fault:?}: {}", r.stderr);
            assert!(
                r.json.contains(r#""kind": "service_closing", "code": 421"#),
                "{extensions:?} {fault:?}: {}",
                r.json
            );
            assert!(!r.stderr.contains("delivery unknown"), "{}", r.stderr);
        }
    }
}
