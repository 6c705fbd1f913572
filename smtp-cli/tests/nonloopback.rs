//! `smtp-send --user` against a server that is not on a loopback address:
//! exit 3 and nothing sent (no AUTH, no MAIL) in plaintext or over
//! `--insecure` TLS, unless `--allow-plaintext-auth`; `smtp-send sendmail`
//! with such an account exits 78 unless it says `allow_plaintext_auth`. The
//! server listens on the address `SMTP_TEST_NONLOOPBACK` names;
//! `scripts/test` runs these tests with `--ignored` in a private network
//! namespace where `192.0.2.10/32` sits on `lo`. Without the variable they
//! fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(not(feature = "tls"), allow(unused_imports, dead_code))]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use smtp_testkit::{MockServer, ServerConfig, ServerTls};

const MSG: &str = "From: a@example.org\r\nTo: b@example.org\r\nSubject: cli\r\n\r\nhello\r\n";
const WAIT: Duration = Duration::from_secs(10);

struct Run {
    status: i32,
    stdout: String,
    stderr: String,
}

/// `smtp-send ARGS --user alice --json` with the password in `SMTP_PASSWORD`.
fn smtp_send_as_alice(server: &MockServer, args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smtp-send"))
        .args(["--server", &server.addr().to_string(), "--timeout", "10"])
        .args(["--user", "alice", "--json"])
        .args(args)
        .env("SMTP_PASSWORD", "pw")
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

/// A server on the non-loopback address, with a user.
fn server(tls: ServerTls) -> MockServer {
    let config = ServerConfig::default()
        .tcp_on(smtp_testkit::nonloopback_ip())
        .tls(tls)
        .user("alice", "pw");
    MockServer::start(config).unwrap()
}

/// Exit 3, kind `plaintext_auth`, a message that names the way out, and
/// the server saw neither AUTH nor MAIL.
fn refused(server: &MockServer, r: &Run) {
    assert_eq!(r.status, 3, "{}", r.stderr);
    let json = r.stdout.lines().last().unwrap_or("");
    assert!(json.contains(r#""kind": "plaintext_auth""#), "{json}");
    assert!(r.stderr.contains("--allow-plaintext-auth"), "{}", r.stderr);
    server.wait_for_closed(1, WAIT);
    let raw = String::from_utf8_lossy(&server.raw()[0]).into_owned();
    assert!(!raw.contains("AUTH") && !raw.contains("MAIL"), "{raw}");
    assert!(server.messages().is_empty());
}

fn accepted(server: &MockServer, r: &Run) -> smtp_testkit::Received {
    assert_eq!(r.status, 0, "{}", r.stderr);
    let m = server.wait_for_messages(1, WAIT).remove(0);
    assert_eq!(m.auth_user.as_deref(), Some("alice"));
    m
}

#[test]
#[ignore = "needs a non-loopback address in SMTP_TEST_NONLOOPBACK (scripts/test)"]
fn user_in_plaintext_exits_3_and_sends_nothing() {
    let s = server(ServerTls::None);
    refused(&s, &smtp_send_as_alice(&s, &[]));
    let s = server(ServerTls::None);
    refused(&s, &smtp_send_as_alice(&s, &["--auth", "PLAIN"]));
}

#[test]
#[ignore = "needs a non-loopback address in SMTP_TEST_NONLOOPBACK (scripts/test)"]
fn allow_plaintext_auth_sends() {
    let s = server(ServerTls::None);
    let m = accepted(&s, &smtp_send_as_alice(&s, &["--allow-plaintext-auth"]));
    assert!(!m.tls);
}

/// `--insecure` TLS counts as plaintext; `--allow-plaintext-auth` is the one
/// opt-in for it too.
#[cfg(feature = "tls")]
#[test]
#[ignore = "needs a non-loopback address in SMTP_TEST_NONLOOPBACK (scripts/test)"]
fn insecure_tls_exits_3_unless_allowed() {
    for (tls, mode) in [
        (ServerTls::StartTls, "starttls"),
        (ServerTls::Implicit, "implicit"),
    ] {
        let s = server(tls);
        refused(&s, &smtp_send_as_alice(&s, &["--tls", mode, "--insecure"]));
        let s = server(tls);
        let args = ["--tls", mode, "--insecure", "--allow-plaintext-auth"];
        let m = accepted(&s, &smtp_send_as_alice(&s, &args));
        assert!(m.tls, "{mode}");
    }
}

/// `smtp-send sendmail` with an account whose password would go in the
/// clear: `tls = "none"` to this server.
fn sendmail_as_alice(server: &MockServer, extra: &str) -> Run {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "nonloopback-sendmail-{}-{}",
        std::process::id(),
        server.addr().port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[account.remote]\nhost = \"{}\"\nport = {}\ntls = \"none\"\ntimeout = 10\n\
             user = \"alice\"\npassword = \"pw\"\nfrom = \"a@example.org\"\n{extra}",
            server.addr().ip(),
            server.addr().port()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_smtp-send"))
        .args([
            "sendmail",
            "--config",
            config.to_str().unwrap(),
            "b@example.org",
        ])
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

/// The sendmail mode under the same rule: EX_CONFIG (78), the account and
/// the way out named, nothing sent; `allow_plaintext_auth = true` in the
/// account sends.
#[test]
#[ignore = "needs a non-loopback address in SMTP_TEST_NONLOOPBACK (scripts/test)"]
fn sendmail_account_in_plaintext_exits_78_unless_allowed() {
    let s = server(ServerTls::None);
    let r = sendmail_as_alice(&s, "");
    assert_eq!(r.status, 78, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "account \"remote\": tls = \"starttls\" or \"implicit\", or allow_plaintext_auth = true"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(r.stdout, "");
    s.wait_for_closed(1, WAIT);
    let raw = String::from_utf8_lossy(&s.raw()[0]).into_owned();
    assert!(!raw.contains("AUTH") && !raw.contains("MAIL"), "{raw}");
    assert!(s.messages().is_empty());

    let s = server(ServerTls::None);
    let r = sendmail_as_alice(&s, "allow_plaintext_auth = true\n");
    let m = accepted(&s, &r);
    assert!(!m.tls);
}
