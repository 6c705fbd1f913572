//! smtp-send's contract: exit statuses and the JSON line, against the testkit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

#[cfg(feature = "tls")]
use smtp_testkit::ServerTls;
use smtp_testkit::{MockServer, Script, ServerConfig, Step};

const MSG: &str = "From: Alice <a@example.org>\r\nTo: b@example.org, c@example.org\r\nBcc: hidden@example.org\r\nSubject: cli\r\n\r\nhello\r\n";

struct Run {
    status: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> &str {
        self.stdout.lines().last().unwrap_or("")
    }
}

fn smtp_send(args: &[&str], stdin: &str) -> Run {
    smtp_send_env(args, stdin, &[])
}

/// `smtp-send` with `env` added to an environment without `SMTP_PASSWORD`.
fn smtp_send_env(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smtp-send"))
        .args(args)
        .env_remove("SMTP_PASSWORD")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The tool may exit before reading its input (bad arguments): ignore EPIPE.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn server(config: ServerConfig) -> (MockServer, String) {
    let s = MockServer::start(config).unwrap();
    let a = s.addr().to_string();
    (s, a)
}

#[test]
fn all_accepted_exits_0_with_json() {
    let (s, addr) = server(ServerConfig::default());
    let r = smtp_send(&["--server", &addr, "--json", "--timeout", "10"], MSG);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        r.json(),
        r#"{"accepted": ["b@example.org", "c@example.org", "hidden@example.org"], "refused": {}, "reply": [250, "2.0.0 Ok: queued as T1"], "error": null}"#
    );
    let m = &s.wait_for_messages(1, Duration::from_secs(5))[0];
    assert!(!String::from_utf8_lossy(&m.data).contains("Bcc"));
}

#[test]
fn explicit_envelope_sends_message_as_is() {
    let (s, addr) = server(ServerConfig::default());
    let r = smtp_send(
        &[
            "--server",
            &addr,
            "--from",
            "x@example.org",
            "--to",
            "y@example.org",
            "-",
        ],
        MSG,
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    let m = &s.wait_for_messages(1, Duration::from_secs(5))[0];
    assert_eq!(m.rcpt_to, ["<y@example.org>"]);
    assert_eq!(m.data, MSG.as_bytes());
}

#[test]
fn some_refused_exits_1() {
    let mut config = ServerConfig::default();
    config.refuse_recipients = vec!["c@example.org".into()];
    let (_s, addr) = server(config);
    let r = smtp_send(
        &[
            "--server",
            &addr,
            "--json",
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
            "--to",
            "c@example.org",
        ],
        MSG,
    );
    assert_eq!(r.status, 1, "{}", r.stderr);
    assert_eq!(
        r.json(),
        r#"{"accepted": ["b@example.org"], "refused": {"c@example.org": [550, "5.1.1 <c@example.org> no such user"]}, "reply": [250, "2.0.0 Ok: queued as T1"], "error": null}"#
    );
}

#[test]
fn bad_arguments_exit_2_and_send_nothing() {
    let (s, addr) = server(ServerConfig::default());
    for args in [
        vec![
            "--server",
            addr.as_str(),
            "--from",
            "a@example.org\r\nRSET",
            "--to",
            "b@example.org",
        ],
        vec![
            "--server",
            addr.as_str(),
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
            "--mail-option",
            "X=1\nRSET",
        ],
        vec!["--server", addr.as_str(), "--timeout", "0"],
        vec!["--server", addr.as_str(), "--bogus"],
        vec!["--server", addr.as_str(), "--tls", "sometimes"],
        vec!["--server", addr.as_str(), "--user", "u"],
        vec!["--server", addr.as_str(), "/nonexistent/message"],
    ] {
        let mut with_json = args.clone();
        with_json.push("--json");
        let r = smtp_send(&with_json, MSG);
        assert_eq!(r.status, 2, "{args:?}: {}", r.stderr);
        assert!(
            r.json().contains(r#""error": {"kind": "usage""#),
            "{}",
            r.json()
        );
    }
    // A message without any recipient header and no --to.
    let r = smtp_send(&["--server", &addr], "Subject: nobody\r\n\r\nx\r\n");
    assert_eq!(r.status, 2, "{}", r.stderr);
    assert_eq!(s.connections(), 0);
}

#[test]
fn server_refusals_exit_3() {
    let mut config = ServerConfig::default().user("alice", "pw");
    config.refuse_recipients = vec!["b@example.org".into()];
    config.refuse_senders = vec!["bad@example.org".into()];
    let (_s, addr) = server(config);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--from", "a@example.org", "--to", "b@example.org"],
            "recipients_refused",
        ),
        (
            vec!["--from", "bad@example.org", "--to", "c@example.org"],
            "sender_refused",
        ),
        (
            vec![
                "--user",
                "alice",
                "--password",
                "wrong",
                "--from",
                "a@example.org",
                "--to",
                "c@example.org",
            ],
            "auth_failed",
        ),
    ];
    #[cfg(feature = "tls")]
    let cases = [
        cases,
        vec![(
            vec![
                "--tls",
                "starttls",
                "--from",
                "a@example.org",
                "--to",
                "c@example.org",
            ],
            "starttls_not_offered",
        )],
    ]
    .concat();
    for (args, kind) in cases {
        let mut all = vec!["--server", addr.as_str(), "--json"];
        all.extend(args);
        let r = smtp_send(&all, MSG);
        assert_eq!(r.status, 3, "{kind}: {}", r.stderr);
        assert!(
            r.json().contains(&format!(r#""kind": "{kind}""#)),
            "{}",
            r.json()
        );
    }
    let (_s2, addr2) = server(ServerConfig::default().extensions(&["PIPELINING", "SIZE 10"]));
    let r = smtp_send(&["--server", &addr2, "--json"], MSG);
    assert_eq!(r.status, 3);
    assert!(r.json().contains(r#""kind": "message_too_large""#));
}

#[test]
fn recipients_refused_json_lists_them() {
    let mut config = ServerConfig::default();
    config.refuse_recipients = vec!["b@example.org".into()];
    let (_s, addr) = server(config);
    let r = smtp_send(
        &[
            "--server",
            &addr,
            "--json",
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
        ],
        MSG,
    );
    assert_eq!(r.status, 3);
    assert_eq!(
        r.json(),
        r#"{"accepted": [], "refused": {"b@example.org": [550, "5.1.1 <b@example.org> no such user"]}, "reply": null, "error": {"kind": "recipients_refused", "code": null, "message": "all recipients refused: b@example.org: 550 5.1.1 <b@example.org> no such user"}}"#
    );
}

#[test]
fn failures_exit_4() {
    // Nothing listens on this port once the listener is dropped.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let r = smtp_send(&["--server", &closed, "--json"], MSG);
    assert_eq!(r.status, 4, "{}", r.stderr);
    assert!(r.json().contains(r#""kind": "connection""#));

    let silent = MockServer::start(ServerConfig::scripted(
        Script::default().then(Step::Silence(Duration::from_secs(20))),
    ))
    .unwrap();
    let started = std::time::Instant::now();
    let r = smtp_send(
        &[
            "--server",
            &silent.addr().to_string(),
            "--timeout",
            "0.3",
            "--json",
        ],
        MSG,
    );
    let took = started.elapsed();
    assert_eq!(r.status, 4);
    assert!(r.json().contains(r#""kind": "timeout""#));
    // The deadline plus 1 s (the process's start included).
    assert!(took < Duration::from_millis(300 + 1000), "{took:?}");

    let junk = MockServer::start(ServerConfig::scripted(
        Script::default().send("hello, I am not SMTP"),
    ))
    .unwrap();
    let r = smtp_send(&["--server", &junk.addr().to_string(), "--json"], MSG);
    assert_eq!(r.status, 4);
    assert!(r.json().contains(r#""kind": "protocol""#));

    // A session that would need TLS (a usage error without it: see
    // without_tls_asking_for_it_is_a_usage_error).
    if !cfg!(feature = "tls") {
        return;
    }
    let inject = MockServer::start(ServerConfig::scripted(
        Script::default()
            .send("220 mx")
            .expect_line()
            .send("250-mx\r\n250 STARTTLS")
            .expect_line()
            .then(Step::Send(b"220 go\r\n250 injected\r\n".to_vec())),
    ))
    .unwrap();
    let r = smtp_send(
        &[
            "--server",
            &inject.addr().to_string(),
            "--tls",
            "starttls",
            "--json",
        ],
        MSG,
    );
    assert_eq!(r.status, 4, "{}", r.stderr);
}

/// A server without PIPELINING or CHUNKING that takes the envelope and says
/// 354, then plays `rest`.
fn until_354(rest: Script) -> ServerConfig {
    let mut steps = Script::default()
        .send("220 mx")
        .expect_line()
        .send("250 mx")
        .expect_line()
        .send("250 ok")
        .expect_line()
        .send("250 ok")
        .expect_line()
        .send("354 go")
        .0;
    steps.extend(rest.0);
    ServerConfig::scripted(Script(steps))
}

#[test]
fn closed_after_the_final_dot_exits_5_uncertain() {
    // The server reads the whole message, final dot included, and hangs up
    // without a reply: it may have taken the message.
    let (s, addr) = server(until_354(
        Script::default().read_until(b"\r\n.\r\n").close(),
    ));
    let r = smtp_send(
        &[
            "--server",
            &addr,
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
            "--json",
            "--timeout",
            "10",
        ],
        MSG,
    );
    assert_eq!(r.status, 5, "{}", r.stderr);
    assert!(r.json().contains(r#""kind": "uncertain""#), "{}", r.json());
    assert!(r.stderr.contains("delivery unknown"), "{}", r.stderr);
    assert!(s.mismatches().is_empty());
}

#[test]
fn closed_before_the_body_ended_exits_4() {
    // The server drops the connection once the body has started, long before
    // the client could have written the end of this message: not sent.
    let (_s, addr) = server(until_354(Script::default().read_until(b"Subject").reset()));
    let mut big = String::from("Subject: big\r\n\r\n");
    let line = "x".repeat(998) + "\r\n";
    while big.len() < 32 << 20 {
        big.push_str(&line);
    }
    let r = smtp_send(
        &[
            "--server",
            &addr,
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
            "--json",
            "--timeout",
            "10",
        ],
        &big,
    );
    assert_eq!(r.status, 4, "{}", r.stderr);
    let json = r.json();
    assert!(
        json.contains(r#""kind": "connection""#) || json.contains(r#""kind": "disconnected""#),
        "{json}"
    );
}

#[cfg(feature = "tls")]
#[test]
fn tls_modes_with_ca_file() {
    let dir = std::env::temp_dir().join(format!("smtp-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    let (s, addr) = server(
        ServerConfig::default()
            .tls(ServerTls::StartTls)
            .user("alice", "pw"),
    );
    s.pki().write_ca_pem(&ca).unwrap();
    let addr = addr.replace("127.0.0.1", "localhost");
    let r = smtp_send(
        &[
            "--server",
            &addr,
            "--tls",
            "starttls",
            "--ca-file",
            ca.to_str().unwrap(),
            "--user",
            "alice",
            "--password",
            "pw",
            "--auth",
            "PLAIN",
        ],
        MSG,
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    let m = &s.wait_for_messages(1, Duration::from_secs(5))[0];
    assert!(m.tls);
    assert_eq!(m.auth_user.as_deref(), Some("alice"));

    let (s2, addr2) = server(ServerConfig::default().tls(ServerTls::Implicit));
    s2.pki().write_ca_pem(&ca).unwrap();
    let r = smtp_send(
        &[
            "--server",
            &addr2,
            "--tls",
            "implicit",
            "--ca-file",
            ca.to_str().unwrap(),
        ],
        MSG,
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    // Without the CA the certificate is refused; --insecure accepts it.
    let r = smtp_send(
        &[
            "--server",
            &addr2,
            "--tls",
            "implicit",
            "--ca-file",
            "/etc/ssl/certs/ca-certificates.crt",
            "--json",
        ],
        MSG,
    );
    assert_eq!(r.status, 4, "{}", r.stderr);
    assert!(r.json().contains(r#""kind": "tls""#));
    let r = smtp_send(
        &["--server", &addr2, "--tls", "implicit", "--insecure"],
        MSG,
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(unix)]
#[test]
fn lmtp_unix_refused_after_dot_is_listed() {
    let path = smtp_testkit::temp_socket_path("cli");
    let mut config = ServerConfig::lmtp_unix(&path);
    config.fail_after_data = vec!["c@example.org".into()];
    let _s = MockServer::start(config).unwrap();
    let r = smtp_send(
        &[
            "--unix",
            path.to_str().unwrap(),
            "--lmtp",
            "--json",
            "--from",
            "a@example.org",
            "--to",
            "b@example.org",
            "--to",
            "c@example.org",
        ],
        MSG,
    );
    assert_eq!(r.status, 1, "{}", r.stderr);
    assert_eq!(
        r.json(),
        r#"{"accepted": ["b@example.org"], "refused": {"c@example.org": [452, "4.2.2 <c@example.org> mailbox full"]}, "reply": null, "error": null}"#
    );
}

#[test]
fn verbose_transcript_goes_to_stderr_without_secrets() {
    let (_s, addr) = server(ServerConfig::default().user("alice", "sekrit-pw"));
    let r = smtp_send(
        &[
            "--server",
            &addr,
            "-vv",
            "--user",
            "alice",
            "--password",
            "sekrit-pw",
            "--auth",
            "PLAIN",
        ],
        MSG,
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("C: AUTH PLAIN <redacted>"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("S: 235"), "{}", r.stderr);
    assert!(!r.stderr.contains("sekrit") && !r.stdout.contains("sekrit"));
}

#[test]
fn no_pipelining_and_no_chunking_flags() {
    let (s, addr) = server(ServerConfig::default());
    let r = smtp_send(
        &["--server", &addr, "--no-pipelining", "--no-chunking"],
        MSG,
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(!s.wait_for_messages(1, Duration::from_secs(5))[0].chunked);
}

#[cfg(feature = "demo")]
#[test]
fn demo_runs() {
    let r = smtp_send(&["demo"], "");
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(r.stdout.contains("C: STARTTLS"), cfg!(feature = "tls"));
    assert!(r.stdout.contains("S: 235 2.7.0 Authentication successful"));
    assert!(r.stdout.contains(".this line starts with a dot"));
}

/// Built without the test server, `demo` says how to get it and sends nothing.
#[cfg(not(feature = "demo"))]
#[test]
fn demo_without_the_feature_says_how_to_get_it() {
    let r = smtp_send(&["demo"], "");
    assert_eq!(r.status, 2, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("built without the demo feature (the embedded test server); install it with `cargo install smtp-cli --features demo`"),
        "{}",
        r.stderr
    );
}

/// The JSON line is the library's `Report`: a caller reads it back with serde.
#[test]
fn json_line_deserialises_into_the_library_report() {
    use smtp_blocking::smtp_adapter::Report;

    let mut config = ServerConfig::default();
    config.refuse_recipients = vec!["c@example.org".into()];
    let (_s, addr) = server(config);
    let r = smtp_send(&["--server", &addr, "--json"], MSG);
    assert_eq!(r.status, 1, "{}", r.stderr);
    let report: Report = serde_json::from_str(r.json()).unwrap();
    let accepted: Vec<&str> = report.accepted.iter().map(|a| a.as_str()).collect();
    assert_eq!(accepted, ["b@example.org", "hidden@example.org"]);
    assert_eq!(report.refused.len(), 1);
    assert_eq!(report.refused[0].0.as_str(), "c@example.org");
    assert_eq!(report.refused[0].1.code(), 550);
    assert_eq!(report.reply.as_ref().map(|r| r.code()), Some(250));
    assert!(report.error.is_none());

    let (_s, addr) = server(ServerConfig::default().refuse_sender("a@example.org"));
    let r = smtp_send(&["--server", &addr, "--json"], MSG);
    let report: Report = serde_json::from_str(r.json()).unwrap();
    let error = report.error.unwrap();
    assert_eq!(
        (error.kind.as_str(), error.code),
        ("sender_refused", Some(553))
    );
}

/// A temporary file holding `text`, removed with the returned guard.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(tag: &str, text: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("smtp-cli-test-{}-{tag}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn password_from_a_file_or_the_environment() {
    let (s, addr) = server(ServerConfig::default().user("alice", "from elsewhere"));
    let base = [
        "--server",
        addr.as_str(),
        "--user",
        "alice",
        "--auth",
        "PLAIN",
    ];
    // The file's first line, without its line ending.
    let file = TempFile::new("pw", "from elsewhere\r\nsecond line\n");
    let r = smtp_send(
        &[&base[..], &["--password-file", file.path()]].concat(),
        MSG,
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    // SMTP_PASSWORD when no password option is given.
    let r = smtp_send_env(&base, MSG, &[("SMTP_PASSWORD", "from elsewhere")]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let users: Vec<Option<String>> = s
        .wait_for_messages(2, Duration::from_secs(5))
        .into_iter()
        .map(|m| m.auth_user)
        .collect();
    assert_eq!(users, [Some("alice".into()), Some("alice".into())]);
    // The variable is what is sent: a wrong one is refused by the server.
    let r = smtp_send_env(
        &[&base[..], &["--json"]].concat(),
        MSG,
        &[("SMTP_PASSWORD", "wrong")],
    );
    assert_eq!(r.status, 3, "{}", r.stderr);
    assert!(
        r.json().contains(r#""kind": "auth_failed""#),
        "{}",
        r.json()
    );
    // A password option wins over the variable.
    let r = smtp_send_env(
        &[&base[..], &["--password-file", file.path()]].concat(),
        MSG,
        &[("SMTP_PASSWORD", "wrong")],
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
}

#[test]
fn password_options_misused_exit_2_and_connect_nowhere() {
    let (s, addr) = server(ServerConfig::default().user("alice", "pw"));
    let file = TempFile::new("pw-misuse", "pw\n");
    let empty = TempFile::new("pw-empty", "\n");
    let too_long = TempFile::new("pw-long", &"x".repeat(70_000));
    let server = ["--server", addr.as_str()];
    for (args, why) in [
        (
            vec![
                "--user",
                "alice",
                "--password",
                "pw",
                "--password-file",
                file.path(),
            ],
            "exclude each other",
        ),
        (vec!["--password-file", file.path()], "needs --user"),
        (vec!["--user", "alice"], "SMTP_PASSWORD"),
        (
            vec!["--user", "alice", "--password-file", "/nonexistent/pw"],
            "/nonexistent/pw",
        ),
        (
            vec!["--user", "alice", "--password-file", empty.path()],
            "empty",
        ),
        (
            vec!["--user", "alice", "--password-file", too_long.path()],
            "64 KiB",
        ),
    ] {
        let r = smtp_send(&[&server[..], &args].concat(), MSG);
        assert_eq!(r.status, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(why), "{args:?}: {}", r.stderr);
    }
    // An empty variable is no password.
    let r = smtp_send_env(
        &[&server[..], &["--user", "alice"]].concat(),
        MSG,
        &[("SMTP_PASSWORD", "")],
    );
    assert_eq!(r.status, 2, "{}", r.stderr);
    assert_eq!(s.connections(), 0);
}

#[test]
fn help_says_why_to_keep_the_password_off_the_command_line() {
    let r = smtp_send(&["--help"], "");
    assert_eq!(r.status, 0);
    for needle in ["--password-file FILE", "SMTP_PASSWORD", "ps"] {
        assert!(r.stdout.contains(needle), "{needle}: {}", r.stdout);
    }
}

#[cfg(not(feature = "tls"))]
#[test]
fn without_tls_asking_for_it_is_a_usage_error() {
    let (s, addr) = server(ServerConfig::default());
    for tls in [["--tls", "starttls"], ["--tls", "implicit"]] {
        let r = smtp_send(&[&["--server", addr.as_str()][..], &tls].concat(), MSG);
        assert_eq!(r.status, 2, "{}", r.stderr);
        assert!(r.stderr.contains("without TLS"), "{}", r.stderr);
    }
    assert_eq!(s.connections(), 0);
}
