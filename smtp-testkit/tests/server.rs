//! The testkit server driven by raw sockets (not by the client library), so
//! that its behaviour is pinned down byte for byte.
// Helpers outside #[test] functions panic on purpose: they are test code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};
use smtp_testkit::{MockServer, Script, ServerConfig, ServerTls, Step, TestPki};

const WAIT: Duration = Duration::from_secs(10);

/// A raw client: writes bytes, reads CRLF lines and replies.
struct Raw<S: Read + Write> {
    s: S,
    buf: Vec<u8>,
}

impl<S: Read + Write> Raw<S> {
    fn new(s: S) -> Self {
        Raw { s, buf: Vec::new() }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
        self.s.flush().unwrap();
    }

    /// Reads more; false at the end of the stream.
    fn more(&mut self) -> bool {
        let mut b = [0u8; 4096];
        match self.s.read(&mut b) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&b[..n]);
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => false,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => false,
            Err(e) => panic!("read: {e}"),
        }
    }

    fn line(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8(self.buf[..i].to_vec()).unwrap();
                self.buf.drain(..i + 2);
                return line;
            }
            assert!(self.more(), "end of stream, have {:?}", self.buf);
        }
    }

    /// One whole reply, its lines as sent.
    fn reply(&mut self) -> Vec<String> {
        let mut lines = vec![self.line()];
        while lines.last().unwrap().as_bytes().get(3) == Some(&b'-') {
            lines.push(self.line());
        }
        lines
    }

    fn code(&mut self) -> u16 {
        self.reply()[0][..3].parse().unwrap()
    }

    /// Sends one command and returns the code of its reply.
    fn cmd(&mut self, line: &str) -> u16 {
        self.send(format!("{line}\r\n").as_bytes());
        self.code()
    }

    fn at_eof(&mut self) -> bool {
        self.buf.is_empty() && !self.more()
    }

    fn into_inner(self) -> S {
        assert!(self.buf.is_empty(), "unread bytes: {:?}", self.buf);
        self.s
    }
}

fn tcp(server: &MockServer) -> Raw<TcpStream> {
    let s = TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    Raw::new(s)
}

fn tls_client(
    pki: &TestPki,
    name: &str,
    sock: TcpStream,
) -> Raw<StreamOwned<ClientConnection, TcpStream>> {
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let conn = ClientConnection::new(pki.client_config(), name).unwrap();
    Raw::new(StreamOwned::new(conn, sock))
}

#[test]
fn pipelined_session_replies_in_one_write_and_records_the_message() {
    let server =
        MockServer::start(ServerConfig::default().refuse_recipient("x@example.org")).unwrap();
    let mut c = tcp(&server);
    assert_eq!(c.reply(), ["220 testkit.example ESMTP ready"]);
    c.send(b"EHLO client.example\r\n");
    assert_eq!(
        c.reply(),
        [
            "250-testkit.example greets client.example",
            "250-PIPELINING",
            "250-8BITMIME",
            "250-SIZE 10485760",
            "250-ENHANCEDSTATUSCODES",
            "250-SMTPUTF8",
            "250-CHUNKING",
            "250 DSN",
        ]
    );
    c.send(
        b"MAIL FROM:<a@example.org> SIZE=40 BODY=8BITMIME\r\n\
          RCPT TO:<b@example.org> NOTIFY=NEVER\r\n\
          RCPT TO:<x@example.org>\r\n\
          DATA\r\n",
    );
    assert_eq!(c.code(), 250);
    assert_eq!(c.code(), 250);
    assert_eq!(c.reply(), ["550 5.1.1 <x@example.org> no such user"]);
    assert_eq!(c.code(), 354);
    c.send(b"Subject: t\r\n\r\n..dot\r\n.\r\nQUIT\r\n");
    assert_eq!(c.reply(), ["250 2.0.0 Ok: queued as T1"]);
    assert_eq!(c.code(), 221);
    assert!(c.at_eof());

    let m = &server.wait_for_messages(1, WAIT)[0];
    assert_eq!(m.data, b"Subject: t\r\n\r\n.dot\r\n");
    assert_eq!(m.mail_from, "<a@example.org> SIZE=40 BODY=8BITMIME");
    assert_eq!(m.rcpt_to, ["<b@example.org> NOTIFY=NEVER"]);
    assert_eq!(m.helo, "client.example");
    assert!(!m.chunked && !m.tls && m.auth_user.is_none());

    assert_eq!(server.wait_for_closed(1, WAIT), 1);
    let log = &server.connection_logs()[0];
    // Greeting, EHLO answer, then the four pipelined replies in one write,
    // then the answer to the message with the QUIT's.
    assert_eq!(log.writes.len(), 4, "{:?}", log.writes);
    let batch: usize = log.server_lines[9..13].iter().map(|l| l.len() + 2).sum();
    assert_eq!(log.writes[2], batch);
    assert!(
        log.received
            .starts_with(b"EHLO client.example\r\nMAIL FROM:")
    );
    assert!(
        log.transcript
            .contains(&"C: <20 bytes of message>".to_owned())
    );
    assert_eq!(log.sent.len(), log.writes.iter().sum::<usize>());
}

#[test]
fn helo_fallback_and_small_commands() {
    let server = MockServer::start(ServerConfig::default().refuse_ehlo(true)).unwrap();
    let mut c = tcp(&server);
    c.reply();
    assert_eq!(c.cmd("MAIL FROM:<a@example.org>"), 503);
    assert_eq!(c.cmd("EHLO me"), 502);
    assert_eq!(c.cmd("HELO me"), 250);
    assert_eq!(c.cmd("NOOP"), 250);
    assert_eq!(c.cmd("VRFY postmaster"), 252);
    assert_eq!(c.cmd("EXPN staff"), 502);
    c.send(b"HELP\r\n");
    assert_eq!(c.reply().len(), 3);
    assert_eq!(c.cmd("FROB"), 500);
    assert_eq!(c.cmd("RCPT TO:<b@example.org>"), 503);
    assert_eq!(c.cmd("MAIL FROM:<a@example.org>"), 250);
    assert_eq!(c.cmd("MAIL FROM:<a@example.org>"), 503);
    assert_eq!(c.cmd("RSET"), 250);
    assert_eq!(c.cmd("DATA"), 503);
    assert_eq!(c.cmd("STARTTLS"), 502);
    assert_eq!(c.cmd("AUTH PLAIN"), 502);
    assert_eq!(c.cmd("QUIT"), 221);
    assert!(c.at_eof());
}

#[test]
fn refusal_rules_size_and_forced_replies() {
    let config = ServerConfig::default()
        .refuse_sender("bad@example.org")
        .size_limit(100)
        .fail_data_with(554);
    assert_eq!(config.extensions[2], "SIZE 100");
    let server = MockServer::start(config).unwrap();
    let mut c = tcp(&server);
    c.reply();
    c.cmd("EHLO me");
    assert_eq!(c.cmd("MAIL FROM:<bad@example.org>"), 553);
    assert_eq!(c.cmd("MAIL FROM:<a@example.org> SIZE=101"), 552);
    assert_eq!(c.cmd("MAIL FROM:<a@example.org> SIZE=100"), 250);
    assert_eq!(c.cmd("DATA"), 554, "no recipient yet");
    assert_eq!(c.cmd("RCPT TO:<b@example.org>"), 250);
    assert_eq!(c.cmd("DATA"), 354);
    assert_eq!(c.cmd("spam\r\n."), 554);
    // Larger than announced: refused after the fact.
    let server2 = MockServer::start(ServerConfig::default().size_limit(10)).unwrap();
    let mut d = tcp(&server2);
    d.reply();
    d.cmd("EHLO me");
    d.cmd("MAIL FROM:<a@example.org>");
    d.cmd("RCPT TO:<b@example.org>");
    d.cmd("DATA");
    assert_eq!(d.cmd("0123456789abcdef\r\n."), 552);
    assert!(server.messages().is_empty() && server2.messages().is_empty());

    // 421 instead of the third command, then the connection closes.
    let closing = MockServer::start(ServerConfig::default().reply_421_after(2)).unwrap();
    let mut e = tcp(&closing);
    e.reply();
    assert_eq!(e.cmd("EHLO me"), 250);
    assert_eq!(e.cmd("NOOP"), 250);
    assert_eq!(e.cmd("NOOP"), 421);
    assert!(e.at_eof());

    // A refusing greeting: 503 to everything but QUIT.
    let refusing =
        MockServer::start(ServerConfig::default().greeting("554 5.7.1 go away")).unwrap();
    let mut f = tcp(&refusing);
    assert_eq!(f.code(), 554);
    assert_eq!(f.cmd("EHLO me"), 503);
    assert_eq!(f.cmd("QUIT"), 221);
}

#[test]
fn starttls_upgrade_drops_plaintext_sent_after_the_command() {
    let server = MockServer::start(ServerConfig::default().tls(ServerTls::StartTls)).unwrap();
    let mut c = tcp(&server);
    c.reply();
    c.send(b"EHLO me\r\n");
    assert_eq!(c.reply().last().unwrap(), "250 STARTTLS");
    // A NOOP smuggled behind STARTTLS must never be answered.
    c.send(b"STARTTLS\r\nNOOP\r\n");
    assert_eq!(c.reply(), ["220 2.0.0 Ready to start TLS"]);
    let mut t = tls_client(server.pki(), "localhost", c.into_inner());
    t.send(b"EHLO me\r\n");
    let ehlo = t.reply();
    assert!(!ehlo.iter().any(|l| l.contains("STARTTLS")), "{ehlo:?}");
    assert_eq!(t.cmd("STARTTLS"), 503);
    assert_eq!(t.cmd("MAIL FROM:<a@example.org>"), 250);
    assert_eq!(t.cmd("RCPT TO:<b@example.org>"), 250);
    t.send(b"BDAT 3 LAST\r\nhi\n");
    assert_eq!(t.code(), 250);
    assert_eq!(t.cmd("QUIT"), 221);
    assert!(t.at_eof());
    let m = &server.wait_for_messages(1, WAIT)[0];
    assert!(m.tls);
    assert_eq!(m.data, b"hi\n");
    server.wait_for_closed(1, WAIT);
    let log = &server.connection_logs()[0];
    assert!(log.tls);
    assert_eq!(
        log.server_lines
            .iter()
            .filter(|l| *l == "250 2.0.0 Ok")
            .count(),
        0,
        "the smuggled NOOP was answered: {:?}",
        log.server_lines
    );
    assert!(log.transcript.contains(&"-- TLS established".to_owned()));
}

#[test]
fn implicit_tls_by_ip_address() {
    let server = MockServer::start(ServerConfig::default().tls(ServerTls::Implicit)).unwrap();
    let sock = TcpStream::connect(server.addr()).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let mut t = tls_client(server.pki(), "127.0.0.1", sock);
    assert_eq!(t.code(), 220);
    t.send(b"EHLO me\r\n");
    let ehlo = t.reply();
    assert!(!ehlo.iter().any(|l| l.contains("STARTTLS")));
    assert_eq!(t.cmd("QUIT"), 221);
    assert!(t.at_eof());
    server.wait_for_closed(1, WAIT);
    assert!(server.connection_logs()[0].tls);

    // A client trusting another CA fails the handshake; the server survives it.
    let other = TestPki::generate().unwrap();
    let sock = TcpStream::connect(server.addr()).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let mut bad = tls_client(&other, "localhost", sock);
    let mut b = [0u8; 1];
    assert!(bad.s.read(&mut b).is_err());
    drop(bad);
    assert_eq!(server.wait_for_closed(2, WAIT), 2);
    let pem = std::env::temp_dir().join(format!("smtp-testkit-ca-{}.pem", std::process::id()));
    server.pki().write_ca_pem(&pem).unwrap();
    assert!(
        std::fs::read_to_string(&pem)
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    std::fs::remove_file(&pem).unwrap();
}

#[test]
fn auth_plain_and_cram_md5() {
    let server = MockServer::start(ServerConfig::default().user("alice", "s3cret")).unwrap();
    let mut c = tcp(&server);
    c.reply();
    c.send(b"EHLO me\r\n");
    assert_eq!(
        c.reply().last().unwrap(),
        "250 AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2 OAUTHBEARER"
    );
    let wrong = B64.encode(b"\0alice\0nope");
    assert_eq!(c.cmd(&format!("AUTH PLAIN {wrong}")), 535);
    // PLAIN without an initial response: an empty challenge first.
    c.send(b"AUTH PLAIN\r\n");
    assert_eq!(c.reply(), ["334 "]);
    assert_eq!(c.cmd(&B64.encode(b"\0alice\0s3cret")), 235);
    assert_eq!(c.cmd("AUTH PLAIN"), 503);
    c.cmd("QUIT");

    let mut c = tcp(&server);
    c.reply();
    c.cmd("EHLO me");
    c.send(b"AUTH CRAM-MD5\r\n");
    let challenge = c.reply()[0][4..].to_owned();
    let challenge = B64.decode(challenge).unwrap();
    assert!(challenge.starts_with(b"<") && challenge.ends_with(b"@testkit.example>"));
    let mut mac = Hmac::<md5::Md5>::new_from_slice(b"s3cret").unwrap();
    mac.update(&challenge);
    let digest: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(c.cmd(&B64.encode(format!("alice {digest}"))), 235);
    assert_eq!(c.cmd("MAIL FROM:<alice@example.org>"), 250);
    assert_eq!(c.cmd("RCPT TO:<b@example.org>"), 250);
    assert_eq!(c.cmd("BDAT 0 LAST"), 250);
    // A wrong digest, and a cancelled exchange, in a third session.
    let mut d = tcp(&server);
    d.reply();
    d.cmd("EHLO me");
    d.send(b"AUTH CRAM-MD5\r\n");
    d.reply();
    assert_eq!(
        d.cmd(&B64.encode("alice 00112233445566778899aabbccddeeff")),
        535
    );
    d.send(b"AUTH LOGIN\r\n");
    assert_eq!(d.reply(), ["334 VXNlcm5hbWU6"]);
    assert_eq!(d.cmd("*"), 501);
    assert_eq!(d.cmd("AUTH DIGEST-MD5"), 504);

    let m = &server.wait_for_messages(1, WAIT)[0];
    assert_eq!(m.auth_user.as_deref(), Some("alice"));
    assert!(m.data.is_empty());
    let transcript = server.transcript();
    assert!(
        transcript
            .iter()
            .all(|l| !l.contains(&B64.encode(b"\0alice\0s3cret"))),
        "{transcript:?}"
    );
    assert!(transcript.contains(&"C: AUTH PLAIN <redacted>".to_owned()));
    // The raw log keeps the payload, for assertions.
    assert!(String::from_utf8_lossy(&server.raw()[0]).contains(&B64.encode(b"\0alice\0s3cret")));
}

#[test]
fn auth_login_xoauth2_and_oauthbearer() {
    let server = MockServer::start(ServerConfig::default().user("bob", "tok")).unwrap();
    let mut c = tcp(&server);
    c.reply();
    c.cmd("EHLO me");
    c.send(format!("AUTH LOGIN {}\r\n", B64.encode("bob")).as_bytes());
    assert_eq!(c.reply(), ["334 UGFzc3dvcmQ6"]);
    assert_eq!(c.cmd(&B64.encode("tok")), 235);
    c.cmd("QUIT");

    // A bad XOAUTH2 token: a 334 with the JSON error, then 535 after the
    // client's empty answer.
    let mut c = tcp(&server);
    c.reply();
    c.cmd("EHLO me");
    let bad = B64.encode("user=bob\x01auth=Bearer nope\x01\x01");
    c.send(format!("AUTH XOAUTH2 {bad}\r\n").as_bytes());
    let challenge = c.reply();
    let json = B64.decode(&challenge[0][4..]).unwrap();
    assert!(
        String::from_utf8(json)
            .unwrap()
            .contains("\"status\":\"401\"")
    );
    assert_eq!(c.cmd(""), 535);
    let good = B64.encode("user=bob\x01auth=Bearer tok\x01\x01");
    assert_eq!(c.cmd(&format!("AUTH XOAUTH2 {good}")), 235);
    c.cmd("QUIT");

    let mut c = tcp(&server);
    c.reply();
    c.cmd("EHLO me");
    let bad = B64.encode("n,a=bob,\x01host=localhost\x01auth=Bearer nope\x01\x01");
    c.send(format!("AUTH OAUTHBEARER {bad}\r\n").as_bytes());
    let json = B64.decode(&c.reply()[0][4..]).unwrap();
    assert!(String::from_utf8(json).unwrap().contains("invalid_token"));
    assert_eq!(c.cmd(&B64.encode("\x01")), 535);
    c.send(b"AUTH OAUTHBEARER\r\n");
    assert_eq!(c.reply(), ["334 "]);
    let good = B64.encode("n,a=bob,\x01auth=Bearer tok\x01\x01");
    assert_eq!(c.cmd(&good), 235);
    c.cmd("QUIT");
    assert!(server.transcript().iter().all(|l| !l.contains(&good)));
    assert!(server.transcript().contains(&"C: <redacted>".to_owned()));
}

#[test]
fn lmtp_over_a_unix_socket_replies_per_recipient() {
    let path = smtp_testkit::temp_socket_path("test-lmtp");
    let config = ServerConfig::lmtp_unix(&path)
        .refuse_recipient("nobody@example.org")
        .fail_after_data("full@example.org");
    let server = MockServer::start(config).unwrap();
    assert_eq!(server.path(), Some(path.as_path()));
    let s = UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut c = Raw::new(s);
    assert_eq!(c.reply(), ["220 testkit.example LMTP ready"]);
    assert_eq!(c.cmd("EHLO me"), 502);
    assert_eq!(c.cmd("HELO me"), 502);
    c.send(b"LHLO me\r\n");
    assert!(c.reply().iter().any(|l| l.ends_with("CHUNKING")));
    c.send(
        b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n\
          RCPT TO:<nobody@example.org>\r\nRCPT TO:<full@example.org>\r\nDATA\r\n",
    );
    let codes: Vec<u16> = (0..5).map(|_| c.code()).collect();
    assert_eq!(codes, [250, 250, 550, 250, 354]);
    c.send(b"hello\r\n.\r\n");
    assert_eq!(c.reply(), ["250 2.0.0 <b@example.org> delivered"]);
    assert_eq!(c.reply(), ["452 4.2.2 <full@example.org> mailbox full"]);
    // The same by BDAT.
    c.send(
        b"MAIL FROM:<a@example.org>\r\nRCPT TO:<full@example.org>\r\n\
          RCPT TO:<c@example.org>\r\nBDAT 6 LAST\r\nhello\n",
    );
    let codes: Vec<u16> = (0..5).map(|_| c.code()).collect();
    assert_eq!(codes, [250, 250, 250, 452, 250]);
    assert_eq!(c.cmd("QUIT"), 221);
    let got = server.wait_for_messages(2, WAIT);
    assert_eq!(got[0].data, b"hello\r\n");
    assert_eq!(got[0].rcpt_to, ["<b@example.org>", "<full@example.org>"]);
    assert!(got[1].chunked);
    drop(server);
    assert!(!path.exists(), "the socket file is removed");
}

#[test]
fn bdat_chunks_are_joined_and_bounded() {
    let server = MockServer::start(ServerConfig::default().size_limit(12)).unwrap();
    let mut c = tcp(&server);
    c.reply();
    c.cmd("EHLO me");
    c.send(
        b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n\
          BDAT 5\r\n.a\r\nbBDAT 3 LAST\r\nc\r\nNOOP\r\n",
    );
    let replies: Vec<Vec<String>> = (0..5).map(|_| c.reply()).collect();
    assert_eq!(replies[2], ["250 2.0.0 5 octets received"]);
    assert_eq!(replies[3][0][..3].to_owned(), "250");
    // Over the limit: 552, and the transaction's later chunks fail too.
    c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nBDAT 13\r\n0123456789abcBDAT 1 LAST\r\nx");
    let codes: Vec<u16> = (0..4).map(|_| c.code()).collect();
    assert_eq!(codes, [250, 250, 552, 503]);
    assert_eq!(c.cmd("RSET"), 250);
    assert_eq!(c.cmd("BDAT x"), 501);
    assert!(c.at_eof(), "a BDAT without a size ends the session");
    let got = server.wait_for_messages(1, WAIT);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data, b".a\r\nbc\r\n");
    assert!(got[0].chunked);
}

#[test]
fn concurrent_sessions_idle_close_and_shutdown() {
    let mut server = MockServer::start(ServerConfig::default()).unwrap();
    let addr = server.addr();
    let threads: Vec<_> = (0..6)
        .map(|i| {
            std::thread::spawn(move || {
                let s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(WAIT)).unwrap();
                let mut c = Raw::new(s);
                c.reply();
                c.send(format!("EHLO c{i}\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nBDAT 2 LAST\r\n{i}\n").as_bytes());
                for _ in 0..4 {
                    assert_eq!(c.reply().last().unwrap()[..3].to_owned(), "250");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut bodies: Vec<Vec<u8>> = server
        .wait_for_messages(6, WAIT)
        .into_iter()
        .map(|m| m.data)
        .collect();
    bodies.sort();
    assert_eq!(
        bodies,
        (0..6)
            .map(|i| format!("{i}\n").into_bytes())
            .collect::<Vec<_>>()
    );

    // An open connection is shut down with the server, and nothing hangs.
    let mut open = tcp(&server);
    open.reply();
    let started = Instant::now();
    server.shutdown();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(open.at_eof());
    assert!(TcpStream::connect(addr).is_err(), "no longer listening");

    let idle =
        MockServer::start(ServerConfig::default().idle_close(Duration::from_millis(100))).unwrap();
    let mut c = tcp(&idle);
    c.reply();
    assert_eq!(c.cmd("NOOP"), 250);
    assert_eq!(c.code(), 421);
    assert!(c.at_eof());
}

#[test]
fn script_sends_exact_bytes_and_records_what_the_client_sent() {
    let script = Script::default()
        .send_bytes(b"220-mx\r\n22")
        .sleep(Duration::from_millis(30))
        .send_bytes(b"0 ready\r\n")
        .expect(b"EHLO x\r\n")
        .send("250 mx")
        .expect(b"RSET\r\n")
        .send("250 ok")
        .expect_line()
        .send("354 go")
        .read_until(b"\r\n.\r\n")
        .send("250 queued");
    let server = MockServer::start(ServerConfig::scripted(script)).unwrap();
    let mut c = tcp(&server);
    assert_eq!(c.reply(), ["220-mx", "220 ready"]);
    assert_eq!(c.cmd("EHLO x"), 250);
    assert_eq!(c.cmd("NOOP"), 250, "the script goes on after a mismatch");
    assert_eq!(c.cmd("DATA"), 354);
    c.send(b"a\r\n.\r\n");
    assert_eq!(c.code(), 250);
    drop(c);
    server.wait_for_closed(1, WAIT);
    assert_eq!(server.raw()[0], b"EHLO x\r\nNOOP\r\nDATA\r\na\r\n.\r\n");
    assert_eq!(server.lines(), ["DATA"]);
    let mismatches = server.mismatches();
    assert_eq!(mismatches.len(), 1);
    assert_eq!(
        (mismatches[0].step, mismatches[0].got.as_slice()),
        (5, &b"NOOP\r\n"[..])
    );
    assert_eq!(
        server.connection_logs()[0].sent,
        b"220-mx\r\n220 ready\r\n250 mx\r\n250 ok\r\n354 go\r\n250 queued\r\n"
    );
}

#[test]
fn script_slow_bytes_tls_and_close() {
    let slow = MockServer::start(ServerConfig::scripted(
        Script::default()
            .send_slowly(b"220 ok\r\n", Duration::from_millis(15))
            .close(),
    ))
    .unwrap();
    let mut c = tcp(&slow);
    let mut reads = 0;
    while !c.buf.ends_with(b"\r\n") {
        assert!(c.more());
        reads += 1;
    }
    assert!(reads >= 3, "{reads} reads");
    assert_eq!(c.line(), "220 ok");
    assert!(c.at_eof(), "Close ends the connection");

    let pki = Arc::new(TestPki::generate().unwrap());
    let tls = MockServer::start_with_pki(
        ServerConfig::scripted(
            Script::default()
                .send("220 mx")
                .expect(b"STARTTLS\r\n")
                .send("220 go")
                .start_tls()
                .expect_line()
                .send("250 under TLS"),
        ),
        pki.clone(),
    )
    .unwrap();
    let mut c = tcp(&tls);
    c.reply();
    assert_eq!(c.cmd("STARTTLS"), 220);
    let mut t = tls_client(&pki, "localhost", c.into_inner());
    assert_eq!(t.cmd("EHLO secure"), 250);
    drop(t);
    tls.wait_for_closed(1, WAIT);
    assert_eq!(tls.lines(), ["EHLO secure"]);
    assert!(tls.connection_logs()[0].tls);
    assert!(tls.mismatches().is_empty());
}

#[test]
fn script_flood_repeat_and_silence_are_bounded() {
    let repeat = MockServer::start(ServerConfig::scripted(
        Script::default()
            .then(Step::Repeat(b"250-x\r\n".to_vec(), 2000))
            .send("250 end"),
    ))
    .unwrap();
    let mut c = tcp(&repeat);
    assert_eq!(c.reply().len(), 2001);

    let flood = MockServer::start(ServerConfig::scripted(
        Script::default()
            .send("220 mx")
            .expect_line()
            .flood(b"250-xxxxxxxxxxxxxxxx\r\n"),
    ))
    .unwrap();
    let mut c = tcp(&flood);
    c.line();
    c.send(b"NOOP\r\n");
    while c.buf.len() < 1024 * 1024 {
        assert!(c.more());
    }
    drop(c);
    assert_eq!(
        flood.wait_for_closed(1, WAIT),
        1,
        "the flood stops when the client closes"
    );

    let silent = MockServer::start(ServerConfig::scripted(
        Script::default()
            .silence(Duration::from_millis(300))
            .send("220 late")
            .silence(Duration::from_secs(20)),
    ))
    .unwrap();
    let started = Instant::now();
    let mut c = tcp(&silent);
    c.send(b"HELLO?\r\n");
    assert_eq!(c.line(), "220 late");
    assert!(started.elapsed() >= Duration::from_millis(250));
    drop(c);
    let started = Instant::now();
    assert_eq!(silent.wait_for_closed(1, WAIT), 1);
    // At once, not when the 20 s of silence end (1 s of slack).
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "silence ends when the client closes"
    );
    assert_eq!(silent.raw()[0], b"HELLO?\r\n");
}

#[test]
fn hostile_input_is_answered_or_closed_never_a_panic() {
    let server = MockServer::start(ServerConfig::default().user("u", "p")).unwrap();
    let long = vec![b'A'; 100 * 1024];
    let inputs: Vec<Vec<u8>> = vec![
        b"\0\xff\xfe garbage\r\n\r\n\n".to_vec(),
        b"EHLO x\r\nAUTH PLAIN !!!notbase64\r\nAUTH CRAM-MD5 Zm9v\r\nAUTH CRAM-MD5\r\nbm8gc3BhY2U=\r\n".to_vec(),
        b"EHLO x\r\nAUTH XOAUTH2 =\r\n\r\nAUTH LOGIN\r\n%%%\r\nAUTH OAUTHBEARER\r\n*\r\n".to_vec(),
        "EHLO x\r\nMAIL\r\nMAIL FR\u{f6}M:<a>\r\nMAIL FROM:<\u{e9}\r\nRCPT TO:<\r\nRCPT\r\nVRFY\r\nDATA\r\n"
            .as_bytes()
            .to_vec(),
        b"EHLO x\r\nMAIL FROM:<a> SIZE=x SIZE=99999999999999999999999\r\nRCPT TO:<b>\r\nBDAT 99999999999999999999\r\n".to_vec(),
        b"EHLO x\r\nBDAT 100000000 LAST\r\nabc".to_vec(),
        b"EHLO x\r\nBDAT 3 FIRST\r\n".to_vec(),
        long,
        b"EHLO x\r\nMAIL FROM:<a>\r\nRCPT TO:<b>\r\nDATA\r\nno end".to_vec(),
    ];
    for input in &inputs {
        let mut c = tcp(&server);
        c.reply();
        c.send(input);
        c.s.shutdown(std::net::Shutdown::Write).unwrap();
        while c.more() {}
    }
    assert_eq!(
        server.wait_for_closed(inputs.len(), WAIT),
        inputs.len(),
        "every connection thread ended normally"
    );
    let lines = server.server_lines();
    assert!(lines.contains(&"500 5.5.2 Line too long".to_owned()));
    assert!(lines.contains(&"501 5.5.2 Cannot decode response".to_owned()));
    assert!(lines.contains(&"501 5.5.4 Syntax: BDAT size [LAST]".to_owned()));
    let mut c = tcp(&server);
    assert_eq!(c.code(), 220);
    assert_eq!(c.cmd("QUIT"), 221);
}

/// Reads until the end of the stream or an error; the bytes, and whether it
/// ended with an error (a reset) rather than a clean end.
fn read_to_end_or_error(s: &mut TcpStream) -> (Vec<u8>, bool) {
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (got, false),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (got, true),
        }
    }
}

#[test]
fn fault_after_sent_bytes_cuts_a_reply_in_the_middle() {
    use smtp_testkit::{Fault, FaultAction};
    let server =
        MockServer::start(ServerConfig::default().fault(Fault::AfterSent(40, FaultAction::Close)))
            .unwrap();
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.write_all(b"EHLO me\r\n").unwrap();
    let (got, reset) = read_to_end_or_error(&mut s);
    assert!(!reset);
    assert_eq!(got.len(), 40, "{:?}", String::from_utf8_lossy(&got));
    assert!(got.starts_with(b"220 "));
    drop(s);
    server.wait_for_finished(1, WAIT);
    assert_eq!(server.connection_logs()[0].sent.len(), 40);
}

#[test]
fn fault_after_received_bytes_answers_what_came_then_resets() {
    use smtp_testkit::{Fault, FaultAction};
    // The server takes "EHLO me\r\nNO" and no more: it answers EHLO, then
    // (NOOP being incomplete) resets.
    let server = MockServer::start(
        ServerConfig::default().fault(Fault::AfterReceived(11, FaultAction::Reset)),
    )
    .unwrap();
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.write_all(b"EHLO me\r\nNOOP\r\n").unwrap();
    let (got, reset) = read_to_end_or_error(&mut s);
    let text = String::from_utf8_lossy(&got);
    assert!(reset, "a reset, not a clean end: {text:?}");
    assert!(
        !text.contains("250 2.0.0 Ok\r\n"),
        "NOOP was never read: {text:?}"
    );
    server.wait_for_finished(1, WAIT);
    assert_eq!(server.connection_logs()[0].received, b"EHLO me\r\nNO");
}

#[test]
fn fault_stall_never_answers_and_reads_until_the_client_leaves() {
    use smtp_testkit::{Fault, FaultAction};
    let greeting = format!("220 {} ESMTP ready\r\n", smtp_testkit::HOSTNAME);
    let server = MockServer::start(
        ServerConfig::default().fault(Fault::AfterSent(greeting.len(), FaultAction::Stall)),
    )
    .unwrap();
    let mut s = TcpStream::connect(server.addr()).unwrap();
    let mut raw_greeting = vec![0u8; greeting.len()];
    s.read_exact(&mut raw_greeting).unwrap();
    assert_eq!(raw_greeting, greeting.as_bytes());
    s.write_all(b"EHLO me\r\nMAIL FROM:<a@b>\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 64];
    let r = s.read(&mut buf);
    assert!(r.is_err(), "no answer: {r:?}");
    drop(s);
    assert_eq!(server.wait_for_finished(1, WAIT), 1);
    // What came while it stalled is in the log too.
    assert!(
        server.connection_logs()[0]
            .received
            .ends_with(b"MAIL FROM:<a@b>\r\n")
    );
}
