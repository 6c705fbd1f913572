//! `smtp-send --auth SCRAM-SHA-256` end to end against the testkit, which
//! checks the client's proof (RFC 5802 section 3) and proves in turn that it
//! knows the password; the password itself never goes over the wire.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use smtp_testkit::{MockServer, ServerConfig};

const MSG: &str = "From: a@example.org\r\nTo: b@example.org\r\nSubject: scram\r\n\r\nhello\r\n";
const PASSWORD: &str = "pencil and paper";
const WAIT: Duration = Duration::from_secs(10);

struct Run {
    status: i32,
    stdout: String,
    stderr: String,
}

/// `smtp-send` with the password in `SMTP_PASSWORD` and `args` after the
/// server's address.
fn smtp_send(server: &MockServer, args: &[&str], password: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smtp-send"))
        .args(["--server", &server.addr().to_string(), "--timeout", "10"])
        .args(args)
        .env("SMTP_PASSWORD", password)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(MSG.as_bytes());
    let out = child.wait_with_output().unwrap();
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A server that offers SCRAM-SHA-256 only, on loopback.
fn scram_server() -> MockServer {
    MockServer::start(
        ServerConfig::default()
            .auth_mechanisms(&["SCRAM-SHA-256"])
            .user("alice", PASSWORD),
    )
    .unwrap()
}

#[test]
fn scram_sha_256_logs_in_and_sends() {
    let server = scram_server();
    let r = smtp_send(
        &server,
        &["--user", "alice", "--auth", "SCRAM-SHA-256", "-v"],
        PASSWORD,
    );
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    let messages = server.wait_for_messages(1, WAIT);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].auth_user.as_deref(), Some("alice"));
    // The exchange as the server saw it: the client-first message on the
    // AUTH line, the client-final one, then the empty answer to the server
    // signature, and success.
    let t = &server.connection_logs()[0].transcript;
    let from = t
        .iter()
        .position(|l| l == "C: AUTH SCRAM-SHA-256 <redacted>")
        .unwrap_or_else(|| panic!("{t:?}"));
    assert!(t[from + 1].starts_with("S: 334 "), "{t:?}");
    assert_eq!(t[from + 2], "C: <redacted>", "{t:?}");
    assert!(t[from + 3].starts_with("S: 334 "), "{t:?}");
    assert_eq!(t[from + 4], "C: <redacted>", "{t:?}");
    assert_eq!(t[from + 5], "S: 235 2.7.0 Authentication successful");
    // The password is not on the wire (the AUTH line carries base64 of
    // "n,,n=alice,r" and the nonce), nor in the client's transcript.
    let wire = String::from_utf8_lossy(&server.raw().concat()).into_owned();
    assert!(!wire.contains("pencil"), "{wire}");
    assert!(
        wire.contains("AUTH SCRAM-SHA-256 biwsbj1hbGljZSxy"),
        "{wire}"
    );
    assert!(
        r.stderr.contains("C: AUTH SCRAM-SHA-256 <redacted>"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("pencil"), "{}", r.stderr);
}

#[test]
fn scram_sha_256_with_a_wrong_password_is_refused() {
    let server = scram_server();
    let r = smtp_send(
        &server,
        &["--user", "alice", "--auth", "scram-sha-256", "--json"],
        "pencil and pen",
    );
    assert_eq!(r.status, 3, "{}\n{}", r.stdout, r.stderr);
    let json = r.stdout.lines().last().unwrap_or_default();
    assert!(json.contains(r#""kind": "auth_failed""#), "{json}");
    assert!(json.contains(r#""code": 535"#), "{json}");
    assert!(server.messages().is_empty());
    // An unknown user too.
    let r = smtp_send(
        &server,
        &["--user", "bob", "--auth", "SCRAM-SHA-256"],
        PASSWORD,
    );
    assert_eq!(r.status, 3, "{}\n{}", r.stdout, r.stderr);
    assert!(server.messages().is_empty());
}

#[test]
fn the_usage_lists_scram_sha_256() {
    let out = Command::new(env!("CARGO_BIN_EXE_smtp-send"))
        .arg("--help")
        .output()
        .unwrap();
    let usage = String::from_utf8_lossy(&out.stdout);
    assert!(usage.contains("SCRAM-SHA-256"), "{usage}");
}
