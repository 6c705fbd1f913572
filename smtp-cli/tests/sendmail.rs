//! `smtp-send sendmail`: the sendmail(1) interface end to end against the
//! testkit server: recipients on the command line and from the headers
//! (`-t`, Bcc not transmitted), `-f` and the account it picks, the sysexits.h
//! statuses, the config file's permission check, `password_command`, the
//! binary invoked as `sendmail`, `git send-email --sendmail-cmd` and
//! `mail`-style callers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use smtp_testkit::{MockServer, Script, ServerConfig, Step};

const WAIT: Duration = Duration::from_secs(10);

const MSG: &str = "From: Alice <a@example.org>\r\nTo: b@example.org\r\n\
                   Date: Sun, 06 Dec 2026 11:35:19 +0000\r\nMessage-ID: <1@example.org>\r\n\
                   Subject: sendmail\r\n\r\nhello\r\n";

struct Run {
    status: i32,
    stdout: String,
    stderr: String,
}

/// A fresh directory for one test's files.
fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sendmail-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Writes `config.toml` in `dir` with mode 0600 and returns its path.
fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    #[cfg(unix)]
    chmod(&path, 0o600);
    path
}

/// An account for `server` in plain text (loopback), from a@example.org.
fn account(name: &str, server: &MockServer, extra: &str) -> String {
    let addr = server.addr();
    format!(
        "[account.{name}]\nhost = \"{}\"\nport = {}\ntls = \"none\"\ntimeout = 10\n{extra}",
        addr.ip(),
        addr.port()
    )
}

/// One account for `server` from a@example.org, in a fresh directory.
fn setup(tag: &str, server: &MockServer, extra: &str) -> (PathBuf, PathBuf) {
    let dir = temp_dir(tag);
    let config = write_config(
        &dir,
        &account(
            "main",
            server,
            &format!("from = \"a@example.org\"\n{extra}"),
        ),
    );
    (dir, config)
}

/// Runs `program args` with `stdin`, without a config from the environment.
fn run_program(program: &Path, args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(program)
        .args(args)
        .env_remove("SMTP_SEND_CONFIG")
        .env("HOME", "/nonexistent")
        .env_remove("XDG_CONFIG_HOME")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // It may exit before reading its input (bad arguments): ignore EPIPE.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_smtp-send"))
}

/// `smtp-send sendmail --config CONFIG ARGS`.
fn sendmail(config: &Path, args: &[&str], stdin: &str) -> Run {
    let mut all = vec!["sendmail", "--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    run_program(bin(), &all, stdin)
}

fn start(config: ServerConfig) -> MockServer {
    MockServer::start(config).unwrap()
}

#[test]
fn recipients_on_the_command_line() {
    let s = start(ServerConfig::default());
    let (_dir, config) = setup("cmdline", &s, "");
    let r = sendmail(
        &config,
        &[
            "-i",
            "b@example.org",
            "Carol <c@example.org>, d@example.org",
        ],
        MSG,
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "");
    let m = s.wait_for_messages(1, WAIT).remove(0);
    assert_eq!(m.mail_from, format!("<a@example.org> SIZE={}", MSG.len()));
    assert_eq!(
        m.rcpt_to,
        ["<b@example.org>", "<c@example.org>", "<d@example.org>"]
    );
    // Complete headers: sent as they are.
    assert_eq!(m.data, MSG.as_bytes());
}

#[test]
fn t_takes_the_headers_and_strips_bcc() {
    let s = start(ServerConfig::default());
    let (_dir, config) = setup("t", &s, "");
    let message = "From: a@example.org\r\nTo: B <b@example.org>\r\nCc: c@example.org\r\n\
                   Bcc: hidden@example.org,\r\n secret@example.org\r\n\
                   Date: Sun, 06 Dec 2026 11:35:19 +0000\r\nMessage-ID: <2@example.org>\r\n\
                   Subject: t\r\n\r\nhello\r\n";
    let r = sendmail(&config, &["-t", "-oi", "extra@example.org"], message);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let m = s.wait_for_messages(1, WAIT).remove(0);
    // The command line's, then the headers' (To, Bcc, Cc), as msmtp and
    // Postfix add them.
    assert_eq!(
        m.rcpt_to,
        [
            "<extra@example.org>",
            "<b@example.org>",
            "<hidden@example.org>",
            "<secret@example.org>",
            "<c@example.org>"
        ]
    );
    let stored = String::from_utf8(m.data).unwrap();
    assert_eq!(
        stored,
        message.replace("Bcc: hidden@example.org,\r\n secret@example.org\r\n", "")
    );
    assert!(
        !stored.contains("Bcc") && !stored.contains("hidden"),
        "{stored}"
    );
}

#[test]
fn f_sets_the_sender_and_picks_its_account() {
    let main = start(ServerConfig::default());
    let other = start(ServerConfig::default());
    let dir = temp_dir("f");
    let config = write_config(
        &dir,
        &format!(
            "default = \"main\"\n{}{}",
            account("main", &main, "from = \"a@example.org\"\n"),
            account("other", &other, "from = \"o@example.org\"\n")
        ),
    );
    // -f names the other account's address: its server gets the message.
    let r = sendmail(&config, &["-f", "O@example.org", "b@example.org"], MSG);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let m = other.wait_for_messages(1, WAIT).remove(0);
    assert!(
        m.mail_from.starts_with("<O@example.org>"),
        "{}",
        m.mail_from
    );
    // -f with an address no account has: the default account, that sender.
    let r = sendmail(&config, &["-fbounce@example.org", "b@example.org"], MSG);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let m = main.wait_for_messages(1, WAIT).remove(0);
    assert!(
        m.mail_from.starts_with("<bounce@example.org>"),
        "{}",
        m.mail_from
    );
    // The null sender.
    let r = sendmail(&config, &["-f", "<>", "b@example.org"], MSG);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let m = main.wait_for_messages(2, WAIT).remove(1);
    assert!(m.mail_from.starts_with("<> "), "{}", m.mail_from);
    // Without -f: the default account and its `from`.
    let r = sendmail(&config, &["b@example.org"], MSG);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let m = main.wait_for_messages(3, WAIT).remove(2);
    assert!(
        m.mail_from.starts_with("<a@example.org>"),
        "{}",
        m.mail_from
    );
    assert_eq!(other.messages().len(), 1);
}

#[test]
fn without_from_the_message_names_the_sender_and_account() {
    let main = start(ServerConfig::default());
    let other = start(ServerConfig::default());
    let dir = temp_dir("header-from");
    let config = write_config(
        &dir,
        &format!(
            "default = \"main\"\n{}{}",
            account("main", &main, ""),
            account("other", &other, "from = \"a@example.org\"\n")
        ),
    );
    let r = sendmail(&config, &["-t"], MSG);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let m = other.wait_for_messages(1, WAIT).remove(0);
    assert!(
        m.mail_from.starts_with("<a@example.org>"),
        "{}",
        m.mail_from
    );
    // No -f, no `from`, no From header: exit 64, nothing sent.
    let r = sendmail(&config, &["b@example.org"], "Subject: x\n\nhi\n");
    assert_eq!(r.status, 64, "{}", r.stderr);
    assert!(
        r.stderr.contains("no sender: give -f ADDRESS"),
        "{}",
        r.stderr
    );
    assert_eq!(main.connections(), 0);
}

#[test]
fn a_4xx_exits_75_tempfail() {
    let s = start(ServerConfig::default().fail_data_with(451));
    let (_dir, config) = setup("451", &s, "");
    let r = sendmail(&config, &["b@example.org"], MSG);
    assert_eq!(r.status, 75, "{}", r.stderr);
    assert!(r.stderr.contains("451"), "{}", r.stderr);
    assert!(s.messages().is_empty());

    let s = start(ServerConfig::default().reply_421_after(2));
    let (_dir, config) = setup("421", &s, "");
    let r = sendmail(&config, &["b@example.org"], MSG);
    assert_eq!(r.status, 75, "{}", r.stderr);
    assert!(r.stderr.contains("421"), "{}", r.stderr);
}

/// A server that answers every RCPT with `rcpt_reply` (no PIPELINING).
fn rcpt_script(rcpt_reply: &str) -> ServerConfig {
    let line = |s: Script| s.read_until(b"\r\n");
    let mut script = Script::new(vec![]).send("220 scripted ESMTP");
    script = line(script).send("250 scripted");
    script = line(script).send("250 2.1.0 ok");
    script = line(script).send(rcpt_reply);
    script = line(script).send("250 2.0.0 reset");
    script = line(script).send("221 2.0.0 bye").then(Step::Close);
    ServerConfig::scripted(script)
}

#[test]
fn every_recipient_refused_exits_75_or_67() {
    let s = start(rcpt_script("450 4.2.1 mailbox busy"));
    let (_dir, config) = setup("450", &s, "");
    let r = sendmail(&config, &["b@example.org"], MSG);
    assert_eq!(r.status, 75, "{}", r.stderr);
    assert!(r.stderr.contains("450 4.2.1 mailbox busy"), "{}", r.stderr);

    let s = start(rcpt_script("550 5.1.1 no such user"));
    let (_dir, config) = setup("550", &s, "");
    let r = sendmail(&config, &["b@example.org"], MSG);
    assert_eq!(r.status, 67, "{}", r.stderr);
    assert!(r.stderr.contains("550 5.1.1 no such user"), "{}", r.stderr);
}

#[test]
fn some_recipients_refused_exits_67_and_says_who_got_it() {
    let s = start(ServerConfig::default().refuse_recipient("c@example.org"));
    let (_dir, config) = setup("partial", &s, "");
    let r = sendmail(&config, &["b@example.org", "c@example.org"], MSG);
    assert_eq!(r.status, 67, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("smtp-send: refused c@example.org: 550 5.1.1 <c@example.org> no such user"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("1 of 2 recipients refused; the message went to the other 1"),
        "{}",
        r.stderr
    );
    let m = s.wait_for_messages(1, WAIT).remove(0);
    assert_eq!(m.rcpt_to, ["<b@example.org>"]);
}

#[test]
fn a_5xx_exits_69_unavailable() {
    let s = start(ServerConfig::default().fail_data_with(554));
    let (_dir, config) = setup("554", &s, "");
    let r = sendmail(&config, &["b@example.org"], MSG);
    assert_eq!(r.status, 69, "{}", r.stderr);
    assert!(r.stderr.contains("554"), "{}", r.stderr);
}

#[test]
fn no_reply_after_the_end_of_the_message_exits_74_not_75() {
    let line = |s: Script| s.read_until(b"\r\n");
    let mut script = Script::new(vec![]).send("220 scripted ESMTP");
    script = line(script).send("250 scripted");
    script = line(script).send("250 2.1.0 ok");
    script = line(script).send("250 2.1.5 ok");
    script = line(script).send("354 go ahead");
    let script = script.read_until(b"\r\n.\r\n").then(Step::Close);
    let s = start(ServerConfig::scripted(script));
    let (_dir, config) = setup("uncertain", &s, "");
    let r = sendmail(&config, &["b@example.org"], MSG);
    assert_eq!(r.status, 74, "{}", r.stderr);
    assert!(
        r.stderr.contains("sending it again may deliver it twice"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_connection_that_fails_exits_75() {
    // A port nothing listens on: the server's, once it is gone.
    let s = start(ServerConfig::default());
    let (_dir, config) = setup("refused", &s, "");
    drop(s);
    let r = sendmail(&config, &["b@example.org"], MSG);
    assert_eq!(r.status, 75, "{}", r.stderr);
    assert!(
        r.stderr.contains("connecting to 127.0.0.1:"),
        "{}",
        r.stderr
    );
}

#[cfg(unix)]
#[test]
fn a_config_others_can_read_with_a_password_is_refused() {
    let s = start(ServerConfig::default().user("alice", "pw"));
    let (dir, config) = setup("perm", &s, "user = \"alice\"\npassword = \"pw\"\n");
    chmod(&config, 0o644);
    let r = sendmail(&config, &["b@example.org"], MSG);
    assert_eq!(r.status, 77, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "{}: it holds a password, and its permissions (0644) let other users read it: \
             refused (chmod 600 {})",
            config.display(),
            config.display()
        )),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("pw\""), "{}", r.stderr);
    assert_eq!(s.connections(), 0);

    // Group-readable: refused too. Mode 0600: sent, logged in.
    chmod(&config, 0o640);
    assert_eq!(sendmail(&config, &["b@example.org"], MSG).status, 77);
    chmod(&config, 0o600);
    let r = sendmail(&config, &["b@example.org"], MSG);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let m = s.wait_for_messages(1, WAIT).remove(0);
    assert_eq!(m.auth_user.as_deref(), Some("alice"));

    // A command is no secret to read, but a file others can change could
    // send the password anywhere.
    let config = write_config(
        &dir,
        &account(
            "main",
            &s,
            "from = \"a@example.org\"\nuser = \"alice\"\npassword_command = \"echo pw\"\n",
        ),
    );
    chmod(&config, 0o644);
    let r = sendmail(&config, &["b@example.org"], MSG);
    assert_eq!(r.status, 0, "{}", r.stderr);
    chmod(&config, 0o664);
    let r = sendmail(&config, &["b@example.org"], MSG);
    assert_eq!(r.status, 77, "{}", r.stderr);
    assert!(
        r.stderr.contains("let other users change it"),
        "{}",
        r.stderr
    );

    // A password file others can read.
    std::fs::write(dir.join("pw"), "pw\n").unwrap();
    chmod(&dir.join("pw"), 0o644);
    let config = write_config(
        &dir,
        &account(
            "main",
            &s,
            "from = \"a@example.org\"\nuser = \"alice\"\npassword_file = \"pw\"\n",
        ),
    );
    let r = sendmail(&config, &["b@example.org"], MSG);
    assert_eq!(r.status, 77, "{}", r.stderr);
    assert!(r.stderr.contains("it is a password file"), "{}", r.stderr);
    chmod(&dir.join("pw"), 0o600);
    let r = sendmail(&config, &["b@example.org"], MSG);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(s.wait_for_messages(3, WAIT).len(), 3);
}

#[cfg(unix)]
#[test]
fn password_command_gives_the_password() {
    let s = start(ServerConfig::default().user("alice", "from-the-command"));
    let (dir, config) = setup(
        "eval",
        &s,
        "user = \"alice\"\npassword_command = \"printf '%s\\\\n' from-the-command; echo second line\"\n",
    );
    let r = sendmail(&config, &["-v", "b@example.org"], MSG);
    assert_eq!(r.status, 0, "{}", r.stderr);
    // The transcript is on stderr, without the password.
    assert!(
        r.stderr.contains("MAIL FROM:<a@example.org>"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("from-the-command"), "{}", r.stderr);
    assert!(!r.stderr.contains("ZnJvbS10aGUtY29tbWFuZA"), "{}", r.stderr);
    let m = s.wait_for_messages(1, WAIT).remove(0);
    assert_eq!(m.auth_user.as_deref(), Some("alice"));

    // A wrong password: the login is refused, 77.
    let config = write_config(
        &dir,
        &account(
            "main",
            &s,
            "from = \"a@example.org\"\nuser = \"alice\"\npassword_command = \"echo wrong\"\n",
        ),
    );
    let r = sendmail(&config, &["b@example.org"], MSG);
    assert_eq!(r.status, 77, "{}", r.stderr);
    assert!(
        r.stderr.contains("authentication failed: 535"),
        "{}",
        r.stderr
    );

    // A command that fails: 78, nothing sent.
    let before = s.connections();
    let config = write_config(
        &dir,
        &account(
            "main",
            &s,
            "from = \"a@example.org\"\nuser = \"alice\"\npassword_command = \"exit 3\"\n",
        ),
    );
    let r = sendmail(&config, &["b@example.org"], MSG);
    assert_eq!(r.status, 78, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("account \"main\": password_command: it failed"),
        "{}",
        r.stderr
    );
    assert_eq!(s.connections(), before);
}

#[cfg(unix)]
#[test]
fn invoked_as_sendmail() {
    let s = start(ServerConfig::default());
    let (dir, config) = setup("argv0", &s, "");
    let link = dir.join("sendmail");
    std::os::unix::fs::symlink(bin(), &link).unwrap();
    // The config from the environment, as for a caller that runs plain
    // `sendmail -t`.
    let mut child = Command::new(&link)
        .args(["-t", "-i"])
        .env("SMTP_SEND_CONFIG", &config)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(MSG.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = s.wait_for_messages(1, WAIT).remove(0);
    assert_eq!(m.rcpt_to, ["<b@example.org>"]);
    assert_eq!(m.data, MSG.as_bytes());
    // And its --help is the sendmail mode's.
    let r = run_program(&link, &["--help"], "");
    assert_eq!(r.status, 0);
    assert!(
        r.stdout.starts_with("usage: smtp-send sendmail"),
        "{}",
        r.stdout
    );
}

/// `echo body | mail`-style callers: a minimal message with `-t`, and a
/// message without headers to recipients on the command line. From, Date
/// and Message-ID are added; bare LFs become CRLF.
#[test]
fn mail_style_callers() {
    let s = start(ServerConfig::default());
    let (_dir, config) = setup("mail", &s, "");
    let r = sendmail(
        &config,
        &["-t", "-FCron Daemon"],
        "To: b@example.org\nSubject: cron\n\nbody\n",
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    let m = s.wait_for_messages(1, WAIT).remove(0);
    assert_eq!(m.rcpt_to, ["<b@example.org>"]);
    let stored = String::from_utf8(m.data).unwrap();
    let (added, rest) = stored.split_once("To: b@example.org\r\n").unwrap();
    assert_eq!(rest, "Subject: cron\r\n\r\nbody\r\n");
    let lines: Vec<&str> = added.split_terminator("\r\n").collect();
    assert_eq!(lines.len(), 3, "{added:?}");
    assert_eq!(lines[0], "From: Cron Daemon <a@example.org>");
    assert!(
        lines[1].starts_with("Date: ") && lines[1].ends_with(" +0000"),
        "{added}"
    );
    assert!(
        lines[2].starts_with("Message-ID: <") && lines[2].ends_with("@example.org>"),
        "{added}"
    );

    let r = sendmail(&config, &["c@example.org"], "just a body\nof two lines\n");
    assert_eq!(r.status, 0, "{}", r.stderr);
    let m = s.wait_for_messages(2, WAIT).remove(1);
    assert_eq!(m.rcpt_to, ["<c@example.org>"]);
    let stored = String::from_utf8(m.data).unwrap();
    assert!(
        stored.starts_with("From: a@example.org\r\nDate: "),
        "{stored}"
    );
    assert!(
        stored.ends_with("@example.org>\r\n\r\njust a body\r\nof two lines\r\n"),
        "{stored}"
    );
    // A lone dot does not end the input, -i or not.
    let r = sendmail(
        &config,
        &["c@example.org"],
        "Subject: dot\n\nbefore\n.\nafter\n",
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    let m = s.wait_for_messages(3, WAIT).remove(2);
    assert!(
        String::from_utf8(m.data)
            .unwrap()
            .ends_with("\r\n\r\nbefore\r\n.\r\nafter\r\n"),
        "the dot line and what follows are sent"
    );
}

#[test]
fn usage_and_config_errors() {
    let s = start(ServerConfig::default());
    let (dir, config) = setup("usage", &s, "");
    for (args, stdin, status, says) in [
        (&["-x", "b@example.org"][..], MSG, 64, "invalid option '-x'"),
        (&["-bp"], MSG, 64, "-bp: not supported"),
        (&["-oQ/var/spool"], MSG, 64, "-oQ/var/spool: not supported"),
        (
            &[],
            MSG,
            64,
            "no recipients: name them on the command line, or use -t",
        ),
        (&["not an address"], MSG, 64, "not an address"),
        (
            &["-t"],
            "From: a@example.org\n\nno recipient\n",
            65,
            "no To, Cc or Bcc address",
        ),
    ] {
        let r = sendmail(&config, args, stdin);
        assert_eq!(r.status, status, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }
    assert_eq!(s.connections(), 0);

    let missing = dir.join("missing.toml");
    let r = sendmail(&missing, &["b@example.org"], MSG);
    assert_eq!(r.status, 78, "{}", r.stderr);
    assert!(r.stderr.contains("missing.toml"), "{}", r.stderr);
    let bad = write_config(
        &dir,
        "[account.a]\nhost = \"h\"\nuser = \"u\"\npasword = \"x\"\n",
    );
    let r = sendmail(&bad, &["b@example.org"], MSG);
    assert_eq!(r.status, 78, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("config.toml line 4: unknown field `pasword`"),
        "{}",
        r.stderr
    );
    // No config named anywhere: the XDG path, under $HOME.
    let r = run_program(bin(), &["sendmail", "b@example.org"], MSG);
    assert_eq!(r.status, 78, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("/nonexistent/.config/smtp-send/config.toml"),
        "{}",
        r.stderr
    );
}

/// Required STARTTLS by default, with the account's CA; a server without
/// STARTTLS gets nothing but EHLO (69).
#[cfg(feature = "tls")]
#[test]
fn starttls_is_required_by_default() {
    let s = start(
        ServerConfig::default()
            .tls(smtp_testkit::ServerTls::StartTls)
            .user("alice", "pw"),
    );
    let dir = temp_dir("starttls");
    s.pki().write_ca_pem(dir.join("ca.pem")).unwrap();
    let config = write_config(
        &dir,
        &format!(
            "[account.tls]\nhost = \"127.0.0.1\"\nport = {}\nca_file = \"ca.pem\"\n\
             user = \"alice\"\npassword = \"pw\"\nfrom = \"a@example.org\"\ntimeout = 10\n",
            s.addr().port()
        ),
    );
    let r = sendmail(&config, &["b@example.org"], MSG);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let m = s.wait_for_messages(1, WAIT).remove(0);
    assert!(m.tls);
    assert_eq!(m.auth_user.as_deref(), Some("alice"));

    let plain = start(ServerConfig::default().user("alice", "pw"));
    let config = write_config(
        &dir,
        &format!(
            "[account.tls]\nhost = \"127.0.0.1\"\nport = {}\nca_file = \"ca.pem\"\n\
             user = \"alice\"\npassword = \"pw\"\nfrom = \"a@example.org\"\ntimeout = 10\n",
            plain.addr().port()
        ),
    );
    let r = sendmail(&config, &["b@example.org"], MSG);
    assert_eq!(r.status, 69, "{}", r.stderr);
    assert!(r.stderr.contains("does not offer STARTTLS"), "{}", r.stderr);
    plain.wait_for_closed(1, WAIT);
    let raw = String::from_utf8_lossy(&plain.raw()[0]).into_owned();
    assert!(!raw.contains("AUTH") && !raw.contains("MAIL"), "{raw}");
}

/// Whether `git send-email` runs here (Debian's `git-email` package).
#[cfg(unix)]
fn git_send_email_installed() -> bool {
    Command::new("git")
        .args(["send-email", "--dump-aliases"])
        .current_dir(std::env::temp_dir())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", "/nonexistent")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `git send-email --sendmail-cmd="smtp-send sendmail ..."`: a patch made by
/// `git format-patch` reaches the server, from the envelope sender git passes
/// with -f, to the --to address, with the patch in it.
#[cfg(unix)]
#[test]
fn git_send_email_through_sendmail_cmd() {
    if !git_send_email_installed() {
        println!(
            "SKIPPED git_send_email_through_sendmail_cmd: `git send-email` is not installed \
             (apt-get install git-email; scripts/test installs it)"
        );
        return;
    }
    let s = start(ServerConfig::default());
    let (dir, config) = setup("git", &s, "");
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(&repo)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", &dir)
            .env("GIT_AUTHOR_NAME", "A U Thor")
            .env("GIT_AUTHOR_EMAIL", "author@example.org")
            .env("GIT_COMMITTER_NAME", "A U Thor")
            .env("GIT_COMMITTER_EMAIL", "author@example.org")
            .env_remove("SMTP_SEND_CONFIG")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    git(&["init", "-q"]);
    std::fs::write(repo.join("greeting.txt"), "hello\n").unwrap();
    git(&["add", "greeting.txt"]);
    git(&["commit", "-q", "-m", "Add a greeting"]);
    std::fs::write(repo.join("greeting.txt"), "hello\nand goodbye\n").unwrap();
    git(&["commit", "-q", "-a", "-m", "Say goodbye too"]);
    let patch = git(&["format-patch", "-1", "-o", "out"]);
    let patch = patch.trim();
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
    let cmd = format!("{} sendmail --config {}", quote(bin()), quote(&config));
    let out = git(&[
        "send-email",
        &format!("--sendmail-cmd={cmd}"),
        "--to=maintainer@example.org",
        "--from=A U Thor <author@example.org>",
        "--envelope-sender=author@example.org",
        "--confirm=never",
        "--suppress-cc=all",
        "--no-chain-reply-to",
        "--quiet",
        patch,
    ]);
    let m = s.wait_for_messages(1, WAIT).remove(0);
    assert!(
        m.mail_from.starts_with("<author@example.org>"),
        "{} {out}",
        m.mail_from
    );
    assert_eq!(m.rcpt_to, ["<maintainer@example.org>"]);
    let stored = String::from_utf8(m.data).unwrap();
    assert!(
        stored.contains("\r\nSubject: [PATCH] Say goodbye too\r\n"),
        "{stored}"
    );
    assert!(
        stored.contains("From: A U Thor <author@example.org>\r\n"),
        "{stored}"
    );
    assert!(stored.contains("\r\n+and goodbye\r\n"), "{stored}");
    // git's own Date and Message-ID are kept, none added.
    let ids = stored
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("message-id: "))
        .count();
    assert_eq!(ids, 1, "{stored}");
}
