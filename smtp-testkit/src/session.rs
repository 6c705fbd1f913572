//! One connection: the behavioural server or a script.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, Mac};

use crate::{MAX_BYTES, Received, ServerConfig, Shared, Step, Stream, TestPki, Tls};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const MAX_LINE: usize = 64 * 1024;
const CRAM_CHALLENGE: &[u8] = b"<1896.697170952@testkit.example>";

/// A connection with input buffering, reply batching and TLS upgrade.
struct Conn {
    stream: Option<Box<dyn Stream>>,
    inbuf: Vec<u8>,
    pos: usize,
    out: Vec<u8>,
    shared: Arc<Shared>,
    index: usize,
    total: usize,
    tls: bool,
    /// The TCP socket under the stream, to change its read timeout.
    tcp: Option<std::net::TcpStream>,
}

impl Conn {
    fn fill(&mut self) -> io::Result<usize> {
        if self.pos > 0 && self.pos == self.inbuf.len() {
            self.inbuf.clear();
            self.pos = 0;
        }
        let Some(s) = self.stream.as_mut() else {
            return Ok(0);
        };
        let mut buf = [0u8; 16 * 1024];
        let n = match s.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return self.fill(),
            Err(e) => return Err(e),
        };
        self.total += n;
        if self.total > MAX_BYTES {
            return Err(io::Error::other("client sent too much"));
        }
        self.inbuf.extend_from_slice(&buf[..n]);
        let index = self.index;
        self.shared.update(|r| {
            if let Some(raw) = r.raw.get_mut(index) {
                raw.extend_from_slice(&buf[..n]);
            }
        });
        Ok(n)
    }

    /// Waits up to `limit` for input; false when none came.
    fn wait_readable(&mut self, limit: Duration) -> io::Result<bool> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Some(t) = self.tcp.as_ref() {
                t.set_read_timeout(Some(Duration::from_millis(20)))?;
            }
            match self.fill() {
                Ok(0) => return Ok(true),
                Ok(_) => {
                    if let Some(t) = self.tcp.as_ref() {
                        t.set_read_timeout(Some(crate::READ_TIMEOUT))?;
                    }
                    return Ok(true);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(t) = self.tcp.as_ref() {
            t.set_read_timeout(Some(crate::READ_TIMEOUT))?;
        }
        Ok(false)
    }

    fn has_buffered(&self) -> bool {
        self.pos < self.inbuf.len()
    }

    /// One line without its CRLF (or LF); `None` at end of stream.
    fn read_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(n) = self.inbuf[self.pos..].iter().position(|&b| b == b'\n') {
                let mut line = self.inbuf[self.pos..self.pos + n].to_vec();
                self.pos += n + 1;
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(line));
            }
            if self.inbuf.len() - self.pos > MAX_LINE {
                return Err(io::Error::other("line too long"));
            }
            if self.fill()? == 0 {
                return Ok(None);
            }
        }
    }

    fn read_n(&mut self, n: usize) -> io::Result<Option<Vec<u8>>> {
        while self.inbuf.len() - self.pos < n {
            if self.fill()? == 0 {
                return Ok(None);
            }
        }
        let v = self.inbuf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Ok(Some(v))
    }

    fn reply(&mut self, line: &str) {
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        let l = format!("S: {line}");
        self.shared.update(|r| r.transcript.push(l));
    }

    fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.extend_from_slice(bytes);
        self.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let Some(s) = self.stream.as_mut() else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        s.write_all(&self.out)?;
        s.flush()?;
        self.out.clear();
        Ok(())
    }

    fn start_tls(&mut self, pki: &TestPki) -> io::Result<()> {
        let Some(stream) = self.stream.take() else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        // Plaintext received before the handshake is discarded (RFC 3207 section 4.2).
        self.inbuf.clear();
        self.pos = 0;
        let conn = rustls::ServerConnection::new(pki.server_config()).map_err(io::Error::other)?;
        let mut tls = rustls::StreamOwned::new(conn, stream);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        self.stream = Some(Box::new(tls));
        self.tls = true;
        Ok(())
    }

    fn client_line(&self, text: String) {
        self.shared
            .update(|r| r.transcript.push(format!("C: {text}")));
    }
}

pub(crate) fn serve(
    stream: Box<dyn Stream>,
    tcp: Option<std::net::TcpStream>,
    config: &ServerConfig,
    pki: &TestPki,
    shared: &Arc<Shared>,
    index: usize,
) {
    let mut conn = Conn {
        tcp,
        stream: Some(stream),
        inbuf: Vec::new(),
        pos: 0,
        out: Vec::new(),
        shared: shared.clone(),
        index,
        total: 0,
        tls: false,
    };
    if config.tls == Tls::Implicit && conn.start_tls(pki).is_err() {
        return;
    }
    let _ = match &config.script {
        Some(script) => play(&mut conn, &script.0, pki),
        None => behave(&mut conn, config, pki),
    };
}

fn play(conn: &mut Conn, steps: &[Step], pki: &TestPki) -> io::Result<()> {
    for step in steps {
        match step {
            Step::Send(b) => conn.send_raw(b)?,
            Step::SendSlowly(b, pause) => {
                for byte in b {
                    conn.send_raw(std::slice::from_ref(byte))?;
                    std::thread::sleep(*pause);
                }
            }
            Step::ExpectLine => {
                let line = conn.read_line()?.unwrap_or_default();
                let text = String::from_utf8_lossy(&line).into_owned();
                conn.shared.update(|r| r.lines.push(text));
            }
            Step::ReadUntil(end) => loop {
                let have = &conn.inbuf[conn.pos..];
                if let Some(i) = have
                    .windows(end.len().max(1))
                    .position(|w| w == end.as_slice())
                {
                    conn.pos += i + end.len();
                    break;
                }
                if conn.fill()? == 0 {
                    return Ok(());
                }
            },
            Step::StartTls => conn.start_tls(pki)?,
            Step::Sleep(d) => std::thread::sleep(*d),
            Step::Flood(line) => {
                let mut sent = 0usize;
                while sent < MAX_BYTES {
                    if conn.send_raw(line).is_err() {
                        return Ok(());
                    }
                    sent += line.len().max(1);
                }
            }
            Step::Silence(d) => {
                let end = Instant::now() + *d;
                while Instant::now() < end {
                    match conn.fill() {
                        Ok(0) | Err(_) => return Ok(()),
                        Ok(_) => {}
                    }
                }
            }
            Step::Close => return Ok(()),
        }
    }
    // Wait for the client to close, so the last bytes are not reset.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match conn.fill() {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    Ok(())
}

/// Transaction state of the behavioural server.
#[derive(Default)]
struct Tx {
    mail_from: Option<String>,
    rcpts: Vec<(String, String)>,
    bdat: Vec<u8>,
}

fn path_of(arg: &str) -> String {
    let a = arg.trim();
    let inner = a.split('>').next().unwrap_or("");
    inner.trim_start_matches('<').to_owned()
}

fn behave(conn: &mut Conn, config: &ServerConfig, pki: &TestPki) -> io::Result<()> {
    conn.reply(&config.greeting);
    conn.flush()?;
    if !config.greeting.starts_with("220") {
        return Ok(());
    }
    let mut greeted = false;
    let mut user: Option<String> = None;
    let mut tx = Tx::default();
    let mut commands = 0usize;
    let mut queued = 0u64;
    loop {
        // Replies to pipelined commands leave together, once the input is drained.
        if !conn.has_buffered() {
            conn.flush()?;
        }
        if let Some(idle) = config.idle_close {
            if !conn.has_buffered() && !conn.wait_readable(idle)? {
                conn.reply("421 4.4.2 testkit.example idle timeout, closing");
                conn.flush()?;
                return Ok(());
            }
        }
        let Some(line) = conn.read_line()? else {
            break;
        };
        let text = String::from_utf8_lossy(&line).into_owned();
        let (verb, arg) = match text.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.to_owned()),
            None => (text.to_ascii_uppercase(), String::new()),
        };
        let shown = if verb == "AUTH" {
            format!("AUTH {} <redacted>", arg.split(' ').next().unwrap_or(""))
        } else {
            text.clone()
        };
        conn.client_line(shown);
        commands += 1;
        if config.reply_421_after.is_some_and(|n| commands > n) {
            conn.reply("421 4.3.2 testkit.example closing");
            conn.flush()?;
            return Ok(());
        }
        match verb.as_str() {
            "EHLO" | "LHLO" => {
                let wrong = (verb == "EHLO") == config.lmtp;
                if wrong || config.refuse_ehlo {
                    conn.reply("502 5.5.2 command not recognized");
                } else {
                    greeted = true;
                    tx = Tx::default();
                    let mut lines = vec![format!("testkit.example greets {arg}")];
                    lines.extend(config.extensions.iter().cloned());
                    if config.tls == Tls::StartTls && !conn.tls {
                        lines.push("STARTTLS".into());
                    }
                    if !config.users.is_empty() {
                        lines.push(format!("AUTH {}", config.auth_mechanisms.join(" ")));
                    }
                    let n = lines.len();
                    for (i, l) in lines.iter().enumerate() {
                        let sep = if i + 1 == n { ' ' } else { '-' };
                        conn.reply(&format!("250{sep}{l}"));
                    }
                }
            }
            "HELO" if !config.lmtp => {
                greeted = true;
                conn.reply("250 testkit.example");
            }
            "STARTTLS" if config.tls == Tls::StartTls && !conn.tls => {
                conn.reply("220 2.0.0 Ready to start TLS");
                conn.flush()?;
                conn.start_tls(pki)?;
                greeted = false;
                tx = Tx::default();
            }
            "AUTH" if !config.users.is_empty() && user.is_none() => {
                match authenticate(conn, config, &arg)? {
                    Some(u) => {
                        conn.reply("235 2.7.0 Authentication successful");
                        user = Some(u);
                    }
                    None => conn.reply("535 5.7.8 Authentication credentials invalid"),
                }
            }
            "MAIL" => {
                let arg = arg.get(5..).unwrap_or("").to_owned(); // after "FROM:"
                let path = path_of(&arg);
                let size = arg
                    .split_whitespace()
                    .find_map(|p| {
                        p.to_ascii_uppercase()
                            .strip_prefix("SIZE=")
                            .map(str::to_owned)
                    })
                    .and_then(|n| n.parse::<u64>().ok());
                if !greeted {
                    conn.reply("503 5.5.1 EHLO first");
                } else if tx.mail_from.is_some() {
                    conn.reply("503 5.5.1 nested MAIL");
                } else if config.refuse_senders.iter().any(|s| s == &path) {
                    conn.reply("553 5.7.1 sender refused");
                } else if config.size_limit > 0 && size.is_some_and(|s| s > config.size_limit) {
                    conn.reply("552 5.3.4 message too big");
                } else {
                    tx.mail_from = Some(arg);
                    conn.reply("250 2.1.0 Ok");
                }
            }
            "RCPT" => {
                let arg = arg.get(3..).unwrap_or("").to_owned(); // after "TO:"
                let path = path_of(&arg);
                if tx.mail_from.is_none() {
                    conn.reply("503 5.5.1 MAIL first");
                } else if config.refuse_recipients.iter().any(|r| r == &path) {
                    conn.reply(&format!("550 5.1.1 <{path}> no such user"));
                } else {
                    tx.rcpts.push((path, arg));
                    conn.reply("250 2.1.5 Ok");
                }
            }
            "DATA" => {
                if tx.rcpts.is_empty() {
                    conn.reply("554 5.5.1 no valid recipients");
                    continue;
                }
                conn.reply("354 End data with <CR><LF>.<CR><LF>");
                conn.flush()?;
                let mut unstuff = smtp_proto::body::Unstuffer::new();
                let mut data = Vec::new();
                loop {
                    let (done, used) = {
                        let have = &conn.inbuf[conn.pos..];
                        match unstuff.feed(have, &mut data) {
                            Some(n) => (true, n),
                            None => (false, have.len()),
                        }
                    };
                    conn.pos += used;
                    if done {
                        break;
                    }
                    if conn.fill()? == 0 {
                        return Ok(());
                    }
                }
                conn.client_line(format!("<{} bytes of message>", data.len()));
                queued += 1;
                finish(conn, config, &mut tx, data, false, &user, queued);
            }
            "BDAT" => {
                let mut parts = arg.split_whitespace();
                let Some(n) = parts.next().and_then(|n| n.parse::<usize>().ok()) else {
                    conn.reply("501 5.5.4 bad chunk size");
                    continue;
                };
                let last = parts.next().is_some_and(|l| l.eq_ignore_ascii_case("LAST"));
                if n > MAX_BYTES {
                    return Ok(());
                }
                let Some(chunk) = conn.read_n(n)? else {
                    return Ok(());
                };
                if tx.rcpts.is_empty() {
                    conn.reply("554 5.5.1 no valid recipients");
                    continue;
                }
                tx.bdat.extend_from_slice(&chunk);
                if last {
                    let data = std::mem::take(&mut tx.bdat);
                    conn.client_line(format!("<{} bytes of message>", data.len()));
                    queued += 1;
                    finish(conn, config, &mut tx, data, true, &user, queued);
                } else {
                    conn.reply(&format!("250 2.0.0 {n} octets received"));
                }
            }
            "RSET" => {
                tx = Tx::default();
                conn.reply("250 2.0.0 Ok");
            }
            "NOOP" => conn.reply("250 2.0.0 Ok"),
            "VRFY" => conn.reply("252 2.0.0 Cannot VRFY user"),
            "EXPN" => conn.reply("502 5.5.1 EXPN not available"),
            "HELP" => {
                conn.reply("214-2.0.0 Commands:");
                conn.reply("214 2.0.0 EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT");
            }
            "QUIT" => {
                conn.reply("221 2.0.0 Bye");
                conn.flush()?;
                return Ok(());
            }
            _ => conn.reply("500 5.5.2 command not recognized"),
        }
    }
    Ok(())
}

fn finish(
    conn: &mut Conn,
    config: &ServerConfig,
    tx: &mut Tx,
    data: Vec<u8>,
    chunked: bool,
    user: &Option<String>,
    queued: u64,
) {
    let taken = std::mem::take(tx);
    let received = Received {
        mail_from: taken.mail_from.unwrap_or_default(),
        rcpt_to: taken.rcpts.iter().map(|(_, a)| a.clone()).collect(),
        data,
        chunked,
        tls: conn.tls,
        auth_user: user.clone(),
    };
    if config.lmtp {
        for (path, _) in &taken.rcpts {
            if config.fail_after_data.iter().any(|f| f == path) {
                conn.reply(&format!("452 4.2.2 <{path}> mailbox full"));
            } else {
                conn.reply(&format!("250 2.0.0 <{path}> delivered"));
            }
        }
    } else if let Some(r) = &config.data_reply {
        conn.reply(r);
    } else {
        conn.reply(&format!("250 2.0.0 Ok: queued as T{queued}"));
    }
    let ok = config.lmtp
        || config
            .data_reply
            .as_ref()
            .is_none_or(|r| r.starts_with('2'));
    if ok {
        conn.shared.update(|r| r.messages.push(received));
    }
}

fn decode_line(line: Option<Vec<u8>>) -> Option<Vec<u8>> {
    let l = line?;
    if l == b"*" {
        return None;
    }
    B64.decode(l.trim_ascii()).ok()
}

/// Runs one AUTH exchange; `Some(user)` on success.
fn authenticate(conn: &mut Conn, config: &ServerConfig, arg: &str) -> io::Result<Option<String>> {
    let mut words = arg.split_whitespace();
    let mech = words.next().unwrap_or("").to_ascii_uppercase();
    let initial = words.next().map(|ir| {
        if ir == "=" {
            Vec::new()
        } else {
            B64.decode(ir).unwrap_or_default()
        }
    });
    if !config
        .auth_mechanisms
        .iter()
        .any(|m| m.eq_ignore_ascii_case(&mech))
    {
        return Ok(None);
    }
    let password_of = |u: &str| {
        config
            .users
            .iter()
            .find(|(n, _)| n == u)
            .map(|(_, p)| p.clone())
    };
    let ask = |conn: &mut Conn, prompt: &[u8]| -> io::Result<Option<Vec<u8>>> {
        conn.reply(&format!("334 {}", B64.encode(prompt)));
        conn.flush()?;
        let line = conn.read_line()?;
        if line.is_some() {
            conn.client_line("<redacted>".into());
        }
        Ok(decode_line(line))
    };
    match mech.as_str() {
        "PLAIN" => {
            let msg = match initial {
                Some(m) => m,
                None => match ask(conn, b"")? {
                    Some(m) => m,
                    None => return Ok(None),
                },
            };
            let parts: Vec<&[u8]> = msg.split(|&b| b == 0).collect();
            if let [_, u, p] = parts.as_slice() {
                let u = String::from_utf8_lossy(u).into_owned();
                if password_of(&u).is_some_and(|pw| pw.as_bytes() == *p) {
                    return Ok(Some(u));
                }
            }
            Ok(None)
        }
        "LOGIN" => {
            let u = match initial {
                Some(u) => u,
                None => match ask(conn, b"Username:")? {
                    Some(u) => u,
                    None => return Ok(None),
                },
            };
            let Some(p) = ask(conn, b"Password:")? else {
                return Ok(None);
            };
            let u = String::from_utf8_lossy(&u).into_owned();
            Ok(password_of(&u)
                .filter(|pw| pw.as_bytes() == p.as_slice())
                .map(|_| u))
        }
        "CRAM-MD5" => {
            let Some(answer) = ask(conn, CRAM_CHALLENGE)? else {
                return Ok(None);
            };
            let answer = String::from_utf8_lossy(&answer).into_owned();
            let Some((u, digest)) = answer.rsplit_once(' ') else {
                return Ok(None);
            };
            let Some(pw) = password_of(u) else {
                return Ok(None);
            };
            let Ok(mut mac) = Hmac::<md5::Md5>::new_from_slice(pw.as_bytes()) else {
                return Ok(None);
            };
            mac.update(CRAM_CHALLENGE);
            let expected: String = mac
                .finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            Ok((expected == digest).then(|| u.to_owned()))
        }
        "XOAUTH2" | "OAUTHBEARER" => {
            let msg = match initial {
                Some(m) => m,
                None => match ask(conn, b"")? {
                    Some(m) => m,
                    None => return Ok(None),
                },
            };
            let text = String::from_utf8_lossy(&msg).into_owned();
            let mut u = None;
            let mut token = None;
            for kv in text.split('\x01') {
                if let Some(v) = kv.strip_prefix("user=") {
                    u = Some(v.to_owned());
                } else if let Some(v) = kv.strip_prefix("auth=Bearer ") {
                    token = Some(v.to_owned());
                } else if let Some(rest) = kv.strip_prefix("n,a=") {
                    u = Some(rest.trim_end_matches(',').to_owned());
                }
            }
            if let (Some(u), Some(t)) = (&u, &token) {
                if password_of(u).is_some_and(|pw| &pw == t) {
                    return Ok(Some(u.clone()));
                }
            }
            // The error challenge, then the failure after the client's answer.
            let _ = ask(conn, br#"{"status":"invalid_token","scope":"mail"}"#)?;
            Ok(None)
        }
        _ => Ok(None),
    }
}
