//! What `smtp-send` prints for a person: the transcript (`-v`) and error
//! messages with the server's control characters escaped, refused
//! recipients one a line with their replies, and errors that name the
//! server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use smtp_testkit::{MockServer, Script, ServerConfig};

const MSG: &str = "From: a@example.org\r\nTo: b@example.org\r\nSubject: t\r\n\r\nhello\r\n";

/// What a terminal acts on: ESC (a CSI that clears the screen and one that
/// sets the window title), BEL, a bare CR, NUL, DEL and a C1 CSI.
const HOSTILE: &str = "\u{1b}[2J\u{1b}]0;owned\u{7}\r\0\u{7f}\u{9b}";

struct Run {
    status: i32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Run {
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

fn smtp_send(args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smtp-send"))
        .args(args)
        .env_remove("SMTP_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(MSG.as_bytes());
    let out = child.wait_with_output().unwrap();
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

/// The bytes a terminal could act on (every C0 control but the LF that
/// ends a line, DEL, and C1 in UTF-8).
fn raw_controls(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .map(|c| format!("{:#x}", u32::from(c)))
        .collect()
}

/// A server whose greeting, EHLO reply, MAIL reply and refusal of the one
/// recipient all carry `HOSTILE`.
fn hostile_server() -> MockServer {
    let line = |s: &str| format!("{s}\r\n").into_bytes();
    let script = Script::default()
        .send_bytes(&line(&format!("220 mx{HOSTILE} ready")))
        .expect_line()
        .send_bytes(&line(&format!("250-mx{HOSTILE}\r\n250 HELP{HOSTILE}")))
        .expect_line()
        .send_bytes(&line(&format!("250 ok{HOSTILE}")))
        .expect_line()
        .send_bytes(&line(&format!("550 5.1.1 no{HOSTILE} such user")))
        .expect_line()
        .send_bytes(&line(&format!("250 reset{HOSTILE}")))
        .expect_line()
        .send_bytes(&line(&format!("221 bye{HOSTILE}")))
        .close();
    MockServer::start(ServerConfig::scripted(script)).unwrap()
}

#[test]
fn verbose_output_and_errors_escape_what_the_server_sent() {
    let server = hostile_server();
    let addr = server.addr().to_string();
    let r = smtp_send(&[
        "--server",
        &addr,
        "-vv",
        "--timeout",
        "10",
        "--from",
        "a@example.org",
        "--to",
        "b@example.org",
    ]);
    let stderr = r.stderr();
    assert_eq!(r.status, 3, "{stderr}");
    assert_eq!(raw_controls(&r.stderr), Vec::<String>::new(), "{stderr}");
    assert_eq!(raw_controls(&r.stdout), Vec::<String>::new());
    let escaped = r"\x1b[2J\x1b]0;owned\x07\x0d\x00\x7f\u{9b}";
    // The transcript: the EHLO reply, escaped.
    assert!(
        stderr.contains(&format!("S: 250-mx{escaped}\n")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("S: 250 ok{escaped}\n")),
        "{stderr}"
    );
    // The error, and the refused recipient with its reply.
    assert!(
        stderr.contains(&format!(
            "smtp-send: all recipients refused: b@example.org: 550 5.1.1 no{escaped} such user\n"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "smtp-send: refused b@example.org: 550 5.1.1 no{escaped} such user\n"
        )),
        "{stderr}"
    );
}

#[test]
fn json_escapes_the_same_text_and_keeps_it() {
    let server = hostile_server();
    let addr = server.addr().to_string();
    let r = smtp_send(&[
        "--server",
        &addr,
        "--json",
        "--timeout",
        "10",
        "--from",
        "a@example.org",
        "--to",
        "b@example.org",
    ]);
    assert_eq!(r.status, 3, "{}", r.stderr());
    assert_eq!(raw_controls(&r.stdout), Vec::<String>::new());
    assert_eq!(raw_controls(&r.stderr), Vec::<String>::new());
    // The reply's text as the server sent it, in JSON's own escapes.
    let json = String::from_utf8(r.stdout).unwrap();
    assert!(
        json.contains(r#""b@example.org": [550, "5.1.1 no\u001b[2J\u001b]0;owned\u0007\r\u0000\u007f\u009b such user"]"#),
        "{json}"
    );
}

#[test]
fn each_refused_recipient_is_printed_with_its_reply() {
    let mut config = ServerConfig::default();
    config.refuse_recipients = vec!["c@example.org".into(), "d@example.org".into()];
    let server = MockServer::start(config).unwrap();
    let addr = server.addr().to_string();
    let args = |more: &[&'static str]| {
        let mut a = vec!["--server", addr.as_str(), "--from", "a@example.org"];
        a.extend_from_slice(more);
        smtp_send(&a)
    };
    let lines = [
        "smtp-send: refused c@example.org: 550 5.1.1 <c@example.org> no such user",
        "smtp-send: refused d@example.org: 550 5.1.1 <d@example.org> no such user",
    ];

    // Some refused: exit 1.
    let r = args(&[
        "--to",
        "b@example.org",
        "--to",
        "c@example.org",
        "--to",
        "d@example.org",
    ]);
    assert_eq!(r.status, 1, "{}", r.stderr());
    assert_eq!(r.stderr(), format!("{}\n{}\n", lines[0], lines[1]));

    // All refused: exit 3, the error, then each.
    let r = args(&["--to", "c@example.org", "--to", "d@example.org"]);
    assert_eq!(r.status, 3, "{}", r.stderr());
    assert_eq!(
        r.stderr(),
        format!(
            "smtp-send: all recipients refused: \
             c@example.org: 550 5.1.1 <c@example.org> no such user; \
             d@example.org: 550 5.1.1 <d@example.org> no such user\n{}\n{}\n",
            lines[0], lines[1]
        )
    );

    // With --json they are in the JSON line instead.
    let r = args(&["--json", "--to", "b@example.org", "--to", "c@example.org"]);
    assert_eq!(r.status, 1);
    assert_eq!(r.stderr(), "");
}

#[test]
fn errors_name_the_server() {
    // Nothing listens on this port once the listener is dropped.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let r = smtp_send(&["--server", &closed.to_string(), "--json"]);
    assert_eq!(r.status, 4, "{}", r.stderr());
    let stderr = r.stderr();
    assert!(
        stderr.starts_with(&format!("smtp-send: connecting to {closed}: ")),
        "{stderr}"
    );
    let json = String::from_utf8(r.stdout).unwrap();
    assert!(json.contains(r#""kind": "connection""#), "{json}");
    assert!(
        json.contains(&format!(r#""message": "connecting to {closed}: "#)),
        "{json}"
    );

    // A name, resolved: the address connected to is shown after it.
    let silent = MockServer::start(ServerConfig::scripted(
        Script::default().silence(Duration::from_secs(20)),
    ))
    .unwrap();
    let port = silent.addr().port();
    let r = smtp_send(&[
        "--server",
        &format!("localhost:{port}"),
        "--timeout",
        "0.3",
        "--json",
    ]);
    assert_eq!(r.status, 4, "{}", r.stderr());
    let stderr = r.stderr();
    let named = format!("smtp-send: localhost:{port} (");
    assert!(stderr.starts_with(&named), "{stderr}");
    assert!(
        stderr.ends_with("): timed out waiting for the greeting\n"),
        "{stderr}"
    );
    let json = String::from_utf8(r.stdout).unwrap();
    assert!(json.contains(r#""kind": "timeout""#), "{json}");
}
