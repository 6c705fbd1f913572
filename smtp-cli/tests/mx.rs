//! `smtp-send --mx` against testkit mail exchangers on loopback addresses
//! (127.0.0.31 and up), DNS answers and ports given by the hidden
//! `--mx-test-answers` hook: a line per recipient, and the exit status by
//! outcome.

#![cfg(feature = "mx")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::net::{IpAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use smtp_testkit::{MockServer, Script, ServerConfig};

const MSG: &str = "From: a@sender.test\r\nTo: x@ok.test\r\nSubject: mx\r\n\r\nhello\r\n";

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

struct Run {
    status: i32,
    stdout: Vec<String>,
    stderr: String,
}

/// `smtp-send --mx` with `answers` (JSON) to `to`, and `extra` arguments.
fn smtp_send(name: &str, answers: &serde_json::Value, to: &[&str], extra: &[&str]) -> Run {
    let path: PathBuf =
        std::env::temp_dir().join(format!("smtp-send-mx-{name}-{}.json", std::process::id()));
    std::fs::write(&path, answers.to_string()).unwrap();
    let mut args = vec![
        "--mx".to_owned(),
        "--mx-test-answers".to_owned(),
        path.display().to_string(),
        "--from".to_owned(),
        "a@sender.test".to_owned(),
        "--helo".to_owned(),
        "client.sender.test".to_owned(),
        "--timeout".to_owned(),
        "10".to_owned(),
    ];
    for t in to {
        args.extend(["--to".to_owned(), (*t).to_owned()]);
    }
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_smtp-send"))
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(MSG.as_bytes());
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_file(&path);
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn server_on(ip: IpAddr, config: ServerConfig) -> MockServer {
    MockServer::start(config.tcp_on(ip)).unwrap()
}

/// A port on `ip` where nothing listens.
fn closed_port(ip: IpAddr) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Two domains: ok.test, whose first MX refuses connections, and
/// mixed.test, whose one MX answers its two recipients 450 and 550. One
/// line each, in the order given; exit 1 (some delivered, others not).
#[test]
fn a_line_per_recipient_and_exit_1_for_a_mixed_outcome() {
    let mx2 = server_on(ip(32), ServerConfig::default());
    let script = Script::new(Vec::new())
        .send("220 mx.mixed.test ESMTP")
        .expect_line()
        .send("250-mx.mixed.test\r\n250 ENHANCEDSTATUSCODES")
        .expect_line()
        .send("250 2.1.0 sender ok")
        .expect_line()
        .send("450 4.2.1 try later")
        .expect_line()
        .send("550 5.1.1 no such user")
        .expect_line()
        .send("221 2.0.0 bye");
    let mixed = server_on(ip(33), ServerConfig::scripted(script));
    let answers = serde_json::json!({
        "mx": {
            "ok.test": [[10, "mx1.ok.test"], [20, "mx2.ok.test"]],
            "mixed.test": [[10, "mx.mixed.test"]],
        },
        "addresses": {
            "mx1.ok.test": ["127.0.0.31"],
            "mx2.ok.test": ["127.0.0.32"],
            "mx.mixed.test": ["127.0.0.33"],
        },
        "ports": {
            "127.0.0.31": closed_port(ip(31)),
            "127.0.0.32": mx2.addr().port(),
            "127.0.0.33": mixed.addr().port(),
        },
    });
    let to = ["x@ok.test", "later@mixed.test", "gone@mixed.test"];
    let run = smtp_send("mixed", &answers, &to, &[]);
    assert_eq!(run.status, 1, "{run:?}", run = (&run.stdout, &run.stderr));
    assert_eq!(run.stdout.len(), 3, "{:?}", run.stdout);
    assert_eq!(
        run.stdout[0],
        "x@ok.test: delivered to mx2.ok.test [127.0.0.32], queue id T1"
    );
    assert_eq!(
        run.stdout[1],
        "later@mixed.test: deferred: 450 4.2.1 try later (mx.mixed.test [127.0.0.33])"
    );
    assert_eq!(
        run.stdout[2],
        "gone@mixed.test: bounced: 550 5.1.1 no such user (mx.mixed.test [127.0.0.33])"
    );
    let got = mx2.wait_for_messages(1, Duration::from_secs(5));
    assert_eq!(got[0].rcpt_to, ["<x@ok.test>"]);
    assert_eq!(got[0].helo, "client.sender.test");
    assert!(got[0].data.ends_with(b"hello\r\n"));
}

/// A null MX bounces every recipient: exit 3, with the enhanced code and
/// the reason.
#[test]
fn a_null_mx_bounces_with_exit_3() {
    let answers = serde_json::json!({ "mx": { "null.test": [[0, "."]] } });
    let run = smtp_send("null", &answers, &["x@null.test"], &[]);
    assert_eq!(run.status, 3, "{:?}", (&run.stdout, &run.stderr));
    assert_eq!(
        run.stdout,
        ["x@null.test: bounced: 5.1.10 the domain accepts no mail (null MX)"]
    );
}

/// Nothing listens at the only MX: deferred 4.4.1, exit 4 (safe to try
/// again); `--json` gives the same as a JSON line.
#[test]
fn an_unreachable_mx_defers_with_exit_4() {
    let answers = serde_json::json!({
        "mx": { "down.test": [[10, "mx.down.test"]] },
        "addresses": { "mx.down.test": ["127.0.0.34"] },
        "ports": { "127.0.0.34": closed_port(ip(34)) },
    });
    let run = smtp_send("down", &answers, &["x@down.test"], &["--json"]);
    assert_eq!(run.status, 4, "{:?}", (&run.stdout, &run.stderr));
    assert_eq!(run.stdout.len(), 1, "{:?}", run.stdout);
    let v: serde_json::Value = serde_json::from_str(&run.stdout[0]).unwrap();
    assert_eq!(v["recipient"], "x@down.test");
    assert_eq!(v["status"], "deferred");
    assert_eq!(v["enhanced_code"], "4.4.1");
    assert_eq!(v["mx"], "mx.down.test");
    assert_eq!(v["ip"], "127.0.0.34");
}

/// `--mx-policy verify` against an MX without STARTTLS: deferred before
/// MAIL FROM, 4.7.5 (never plaintext).
#[test]
fn mx_policy_verify_never_sends_in_plaintext() {
    let mx = server_on(ip(35), ServerConfig::default());
    let answers = serde_json::json!({
        "mx": { "plain.test": [[10, "mx.plain.test"]] },
        "addresses": { "mx.plain.test": ["127.0.0.35"] },
        "ports": { "127.0.0.35": mx.addr().port() },
    });
    let run = smtp_send(
        "verify",
        &answers,
        &["x@plain.test"],
        &["--mx-policy", "verify"],
    );
    assert_eq!(run.status, 4, "{:?}", (&run.stdout, &run.stderr));
    assert!(
        run.stdout[0].starts_with("x@plain.test: deferred: 4.7.5 "),
        "{:?}",
        run.stdout
    );
    mx.wait_for_closed(1, Duration::from_secs(5));
    assert!(mx.messages().is_empty());
    assert!(
        !mx.transcript()
            .iter()
            .any(|l| l.to_ascii_uppercase().contains("MAIL FROM"))
    );
}

/// Options that name one server do not go with `--mx`; `--mx-policy`
/// takes Postfix's names; the test hook is not in `--help`.
#[test]
fn usage_errors_and_help() {
    let none = serde_json::json!({});
    let run = smtp_send("usage", &none, &["x@a.test"], &["--server", "127.0.0.1"]);
    assert_eq!(run.status, 2);
    assert!(
        run.stderr.contains("--server does not go with --mx"),
        "{}",
        run.stderr
    );
    let run = smtp_send("policy", &none, &["x@a.test"], &["--mx-policy", "none"]);
    assert_eq!(run.status, 2);
    assert!(
        run.stderr.contains("--mx-policy: unknown policy"),
        "{}",
        run.stderr
    );
    let help = Command::new(env!("CARGO_BIN_EXE_smtp-send"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--mx-policy plaintext|may|encrypt|verify|dane-only"));
    assert!(!help.contains("test-answers"));
}
