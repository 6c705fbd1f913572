//! `smtp-send --tls implicit --timeout 2` against a server that drips its
//! handshake flight, or the greeting's TLS record, one byte every 20 ms:
//! the tool exits with a timeout (status 4, kind `timeout`) within 3 s, not
//! when the server is done.

#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use smtp_testkit::{Drip, DripServer};

const MSG: &str = "From: a@example.org\r\nTo: b@example.org\r\nSubject: drip\r\n\r\nhello\r\n";

/// Runs smtp-send against `drip`; its exit status, its JSON line and how
/// long it ran (killed after 30 s, which fails the bound anyway).
fn smtp_send(drip: Drip) -> (Option<i32>, String, Duration) {
    let server = DripServer::start(drip).unwrap();
    let dir = std::env::temp_dir().join(format!("smtp-send-drip-{}-{drip:?}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    server.pki().write_ca_pem(&ca).unwrap();
    let addr = server.addr().to_string();
    let t0 = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_smtp-send"))
        .args([
            "--server",
            &addr,
            "--tls",
            "implicit",
            "--timeout",
            "2",
            "--json",
        ])
        .args(["--ca-file", ca.to_str().unwrap()])
        .env_remove("SMTP_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(MSG.as_bytes())
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if t0.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            break child.wait().unwrap().code();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = t0.elapsed();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let _ = std::fs::remove_dir_all(dir);
    (status, stdout, took)
}

#[test]
fn a_dripped_implicit_tls_handshake_ends_in_a_timeout_within_3_s() {
    let (status, json, took) = smtp_send(Drip::TlsHandshake);
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(status, Some(4), "{json}");
    assert!(json.contains(r#""kind": "timeout""#), "{json}");
}

#[test]
fn a_dripped_tls_record_ends_in_a_timeout_within_3_s() {
    let (status, json, took) = smtp_send(Drip::TlsRecord);
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(status, Some(4), "{json}");
    assert!(json.contains(r#""kind": "timeout""#), "{json}");
}
