//! `smtp-send --dkim-key --dkim-selector --dkim-domain`: signatures made by the
//! tool verify (mail-auth's verifier) on the bytes the server stored, for a
//! plain, a dot-stuffed, a bare-LF and a 10 MiB message, with an RSA and an
//! Ed25519 key in PEM; the envelope from the headers and from --from/--to.
//! Built without the `dkim` feature, `--dkim-key` is a usage error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};

fn smtp_send(args: &[&str], stdin: &[u8]) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smtp-send"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(stdin);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A key file in the temporary directory, removed when dropped.
struct KeyFile(std::path::PathBuf);

impl KeyFile {
    fn new(name: &str, pem: &str) -> KeyFile {
        let path =
            std::env::temp_dir().join(format!("smtp-send-dkim-{}-{name}.pem", std::process::id()));
        std::fs::write(&path, pem).unwrap();
        KeyFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(feature = "dkim")]
#[test]
fn signatures_verify_on_what_the_server_stored() {
    use smtp_testkit::{MockServer, ServerConfig, dkim};
    use std::time::Duration;

    let config = ServerConfig::default().size_limit(64 * 1024 * 1024);
    let server = MockServer::start(config).unwrap();
    let addr = server.addr().to_string();
    let mut n = 0;
    for key in dkim::keys() {
        let file = KeyFile::new(key.name, &key.pem);
        for (case, message) in dkim::messages() {
            // The envelope from the headers for most, given for the 10 MiB one.
            let mut args = vec![
                "--server",
                &addr,
                "--timeout",
                "30",
                "--dkim-key",
                file.path(),
                "--dkim-selector",
                key.selector(),
                "--dkim-domain",
                dkim::DOMAIN,
            ];
            if case == "10mib" {
                args.extend(["--from", "alice@example.org", "--to", "bob@example.net"]);
            }
            let (status, stderr) = smtp_send(&args, &message);
            assert_eq!(status, 0, "{case}: {stderr}");
            n += 1;
            let stored = server
                .wait_for_messages(n, Duration::from_secs(30))
                .pop()
                .unwrap();
            let name = format!("smtp-send-{}-{case}", key.name);
            assert_eq!(dkim::verify(&stored.data), Ok(1), "{name}");
            dkim::keep(&name, &stored.data);
        }
    }
}

#[test]
fn dkim_arguments_go_together_and_bad_keys_are_usage_errors() {
    let (status, stderr) = smtp_send(&["--dkim-key", "/nonexistent.pem"], b"");
    assert_eq!(status, 2, "{stderr}");
    assert!(stderr.contains("go together"), "{stderr}");
    let file = KeyFile::new("garbage", "not a key\n");
    let args = [
        "--server",
        "127.0.0.1:9",
        "--dkim-key",
        file.path(),
        "--dkim-selector",
        "s",
        "--dkim-domain",
        "example.org",
    ];
    let (status, stderr) = smtp_send(
        &args,
        b"From: a@example.org\r\nTo: b@example.org\r\n\r\nx\r\n",
    );
    assert_eq!(status, 2, "{stderr}");
    let why = if cfg!(feature = "dkim") {
        "DKIM"
    } else {
        "built without the dkim feature"
    };
    assert!(stderr.contains(why), "{stderr}");
}
