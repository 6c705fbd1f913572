//! The behavioural server: a small, real SMTP (RFC 5321) or LMTP (RFC 2033)
//! server with PIPELINING (RFC 2920), STARTTLS (RFC 3207), AUTH (RFC 4954:
//! PLAIN, LOGIN, CRAM-MD5, XOAUTH2, OAUTHBEARER of RFC 7628, SCRAM-SHA-256 of
//! RFC 7677), SIZE (RFC 1870) and CHUNKING (RFC 3030).

use std::io;

use smtp_sansio::body::Unstuffer;

use crate::config::{EarlyTalk, HOSTNAME, ServerConfig, ServerTls};
use crate::conn::Conn;
use crate::record::Received;
use auth::{Auth, authenticate};

mod auth;

/// The longest command line accepted (RFC 5321 asks for 512; be generous).
const MAX_LINE: usize = 64 * 1024;
/// The most recipients in one transaction.
const MAX_RECIPIENTS: usize = 1000;

/// Whether the session goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

/// One mail transaction.
#[derive(Debug, Default)]
struct Tx {
    /// The text after `MAIL FROM:`.
    mail_from: Option<String>,
    /// Accepted recipients: the path and the text after `RCPT TO:`.
    rcpts: Vec<(String, String)>,
    /// BDAT chunks so far.
    bdat: Vec<u8>,
    /// A BDAT was received in this transaction.
    chunking: bool,
    /// A BDAT of this transaction failed: the rest fail too until RSET.
    bdat_failed: bool,
}

struct Session<'a> {
    cfg: &'a ServerConfig,
    helo: Option<String>,
    user: Option<String>,
    tx: Tx,
    commands: usize,
    queued: u64,
}

/// Serves one connection, then closes it.
pub(crate) fn serve(mut conn: Conn, cfg: &ServerConfig) {
    let _ = session(&mut conn, cfg);
    conn.close();
}

fn session(conn: &mut Conn, cfg: &ServerConfig) -> io::Result<()> {
    match cfg.early_talk {
        EarlyTalk::Ignore => {}
        EarlyTalk::Watch(limit) => {
            conn.watch_early_talk(limit)?;
        }
        EarlyTalk::Refuse(limit) => {
            if conn.watch_early_talk(limit)? {
                conn.reply("554 SMTP synchronization error");
                return Ok(());
            }
        }
    }
    for line in cfg.greeting.split('\n') {
        conn.reply(line.trim_end_matches('\r'));
    }
    if cfg.greeting.starts_with("421") {
        return Ok(());
    }
    if !cfg.greeting.starts_with("220") {
        // RFC 5321 section 3.1: after a 554 greeting, wait for QUIT.
        while let Some(line) = next_line(conn)? {
            let text = String::from_utf8_lossy(&line);
            conn.note_client(&text);
            if text.trim().eq_ignore_ascii_case("QUIT") {
                conn.reply("221 2.0.0 Bye");
                return Ok(());
            }
            conn.reply("503 5.5.1 No SMTP service here");
        }
        return Ok(());
    }
    let mut s = Session {
        cfg,
        helo: None,
        user: None,
        tx: Tx::default(),
        commands: 0,
        queued: 0,
    };
    loop {
        if let Some(idle) = cfg.idle_close {
            if conn.buffered().is_empty() {
                match conn.fill_within(idle)? {
                    None => {
                        conn.reply(&format!("421 4.4.2 {HOSTNAME} Idle for too long, closing"));
                        return Ok(());
                    }
                    Some(0) => return Ok(()),
                    Some(_) => {}
                }
            }
        }
        let Some(line) = next_line(conn)? else {
            return Ok(());
        };
        if s.command(conn, &line)? == Flow::Close {
            return Ok(());
        }
    }
}

/// The next command line; a line over the limit is answered and ends the
/// session.
fn next_line(conn: &mut Conn) -> io::Result<Option<Vec<u8>>> {
    match conn.read_line(MAX_LINE) {
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            conn.reply("500 5.5.2 Line too long");
            Ok(None)
        }
        other => other,
    }
}

/// `(path, parameters)` of a MAIL or RCPT argument after the colon.
fn split_path(arg: &str) -> (String, String) {
    let a = arg.trim_start();
    if let Some(rest) = a.strip_prefix('<') {
        match rest.split_once('>') {
            Some((path, params)) => (path.to_owned(), params.trim().to_owned()),
            None => (rest.trim().to_owned(), String::new()),
        }
    } else {
        match a.split_once(' ') {
            Some((path, params)) => (path.to_owned(), params.trim().to_owned()),
            None => (a.trim().to_owned(), String::new()),
        }
    }
}

/// The argument after a `FROM:` / `TO:` prefix, case-insensitively.
fn after_prefix<'a>(arg: &'a str, prefix: &str) -> Option<&'a str> {
    let head = arg.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| arg.get(prefix.len()..))
        .flatten()
}

fn size_param(params: &str) -> Option<u64> {
    params.split_whitespace().find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.eq_ignore_ascii_case("SIZE")
            .then(|| v.parse().ok())
            .flatten()
    })
}

impl Session<'_> {
    fn command(&mut self, conn: &mut Conn, line: &[u8]) -> io::Result<Flow> {
        let text = String::from_utf8_lossy(line).into_owned();
        let (verb, arg) = match text.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.to_owned()),
            None => (text.to_ascii_uppercase(), String::new()),
        };
        if verb == "AUTH" && arg.split_whitespace().nth(1).is_some() {
            let mech = arg.split_whitespace().next().unwrap_or_default();
            conn.note_client(&format!("AUTH {mech} <redacted>"));
        } else {
            conn.note_client(&text);
        }
        self.commands += 1;
        let limit = conn.reply_421_after().or(self.cfg.reply_421_after);
        if limit.is_some_and(|n| self.commands > n) {
            if conn.reply_421_after().is_some() {
                conn.note_fault();
            }
            conn.reply(&format!(
                "421 4.3.2 {HOSTNAME} Service shutting down, closing"
            ));
            return Ok(Flow::Close);
        }
        let cfg = self.cfg;
        match verb.as_str() {
            "EHLO" | "LHLO" => self.ehlo(conn, &verb, &arg),
            "HELO" => {
                if cfg.lmtp {
                    conn.reply("502 5.5.1 Use LHLO");
                } else if arg.trim().is_empty() {
                    conn.reply("501 5.5.4 HELO needs a domain");
                } else {
                    self.helo = Some(arg.trim().to_owned());
                    self.tx = Tx::default();
                    conn.reply(&format!("250 {HOSTNAME}"));
                }
            }
            "STARTTLS" => return self.starttls(conn, &arg),
            "AUTH" => return self.auth(conn, &arg),
            "MAIL" => self.mail(conn, &arg),
            "RCPT" => self.rcpt(conn, &arg),
            "DATA" => return self.data(conn),
            "BDAT" => return self.bdat(conn, &arg),
            "RSET" => {
                self.tx = Tx::default();
                conn.reply("250 2.0.0 Ok");
            }
            "NOOP" => conn.reply("250 2.0.0 Ok"),
            "VRFY" => {
                let (path, _) = split_path(&arg);
                if path.is_empty() {
                    conn.reply("501 5.5.4 VRFY needs an argument");
                } else if cfg.refuse_recipients.contains(&path) {
                    conn.reply(&format!("550 5.1.1 <{path}> User unknown"));
                } else {
                    conn.reply("252 2.0.0 Cannot VRFY user, but will accept message");
                }
            }
            "EXPN" => conn.reply("502 5.5.1 EXPN not available"),
            "HELP" => {
                conn.reply("214-2.0.0 Commands:");
                conn.reply("214-2.0.0   EHLO HELO LHLO STARTTLS AUTH MAIL RCPT DATA BDAT");
                conn.reply("214 2.0.0   RSET NOOP VRFY EXPN HELP QUIT");
            }
            "QUIT" => {
                conn.reply("221 2.0.0 Bye");
                return Ok(Flow::Close);
            }
            "" => conn.reply("500 5.5.2 Syntax error, empty command"),
            _ => conn.reply("500 5.5.2 Command not recognized"),
        }
        Ok(Flow::Continue)
    }

    fn ehlo(&mut self, conn: &mut Conn, verb: &str, arg: &str) {
        let cfg = self.cfg;
        let lhlo = verb == "LHLO";
        if lhlo && !cfg.lmtp {
            conn.reply("500 5.5.1 Command not recognized");
        } else if !lhlo && cfg.lmtp {
            conn.reply("502 5.5.1 Use LHLO");
        } else if cfg.refuse_ehlo {
            conn.reply("502 5.5.1 Command not implemented");
        } else if arg.trim().is_empty() {
            conn.reply(&format!("501 5.5.4 {verb} needs a domain"));
        } else {
            self.helo = Some(arg.trim().to_owned());
            self.tx = Tx::default();
            let mut lines = vec![format!("{HOSTNAME} greets {}", arg.trim())];
            lines.extend(cfg.extensions.iter().cloned());
            if cfg.tls == ServerTls::StartTls && !conn.is_tls() {
                lines.push("STARTTLS".to_owned());
            }
            if !cfg.users.is_empty() && !cfg.auth_mechanisms.is_empty() {
                lines.push(format!("AUTH {}", cfg.auth_mechanisms.join(" ")));
            }
            let last = lines.len() - 1;
            for (i, l) in lines.iter().enumerate() {
                let sep = if i == last { ' ' } else { '-' };
                conn.reply(&format!("250{sep}{l}"));
            }
        }
    }

    fn starttls(&mut self, conn: &mut Conn, arg: &str) -> io::Result<Flow> {
        if conn.is_tls() {
            conn.reply("503 5.5.1 TLS already active");
        } else if self.cfg.tls != ServerTls::StartTls {
            conn.reply("502 5.5.1 STARTTLS not available");
        } else if !arg.trim().is_empty() {
            conn.reply("501 5.5.4 STARTTLS takes no argument");
        } else if let Some(reply) = &self.cfg.starttls_reply {
            conn.reply(reply);
        } else {
            conn.reply("220 2.0.0 Ready to start TLS");
            // The handshake failing ends the session.
            conn.start_tls()?;
            // RFC 3207 section 4.2: the session starts over.
            self.helo = None;
            self.user = None;
            self.tx = Tx::default();
        }
        Ok(Flow::Continue)
    }

    fn mail(&mut self, conn: &mut Conn, arg: &str) {
        let limit = self.cfg.size_limit;
        let Some(rest) = after_prefix(arg, "FROM:") else {
            conn.reply("501 5.5.4 Syntax: MAIL FROM:<address>");
            return;
        };
        let (path, params) = split_path(rest);
        if self.helo.is_none() {
            conn.reply("503 5.5.1 Send EHLO first");
        } else if self.tx.mail_from.is_some() {
            conn.reply("503 5.5.1 Nested MAIL command");
        } else if self.cfg.refuse_senders.contains(&path) {
            conn.reply(&format!("553 5.7.1 <{path}> sender refused"));
        } else if limit > 0 && size_param(&params).is_some_and(|n| n > limit) {
            conn.reply("552 5.3.4 Message size exceeds fixed limit");
        } else {
            self.tx.mail_from = Some(rest.trim().to_owned());
            conn.reply("250 2.1.0 Ok");
        }
    }

    fn rcpt(&mut self, conn: &mut Conn, arg: &str) {
        let Some(rest) = after_prefix(arg, "TO:") else {
            conn.reply("501 5.5.4 Syntax: RCPT TO:<address>");
            return;
        };
        let (path, _) = split_path(rest);
        if self.tx.mail_from.is_none() {
            conn.reply("503 5.5.1 Need MAIL before RCPT");
        } else if self.cfg.refuse_recipients.contains(&path) {
            conn.reply(&format!("550 5.1.1 <{path}> no such user"));
        } else if self.tx.rcpts.len() >= MAX_RECIPIENTS {
            conn.reply("452 4.5.3 Too many recipients");
        } else {
            self.tx.rcpts.push((path, rest.trim().to_owned()));
            conn.reply("250 2.1.5 Ok");
        }
    }

    /// Whether a transaction can take a message; answers when it cannot.
    fn ready_for_message(&self, conn: &mut Conn) -> bool {
        if self.tx.mail_from.is_none() {
            conn.reply("503 5.5.1 Need MAIL command");
            false
        } else if self.tx.rcpts.is_empty() {
            conn.reply("554 5.5.1 No valid recipients");
            false
        } else {
            true
        }
    }

    fn data(&mut self, conn: &mut Conn) -> io::Result<Flow> {
        if !self.ready_for_message(conn) {
            return Ok(Flow::Continue);
        }
        if self.tx.chunking {
            conn.reply("503 5.5.1 DATA after BDAT");
            return Ok(Flow::Continue);
        }
        conn.reply("354 End data with <CR><LF>.<CR><LF>");
        let mut unstuffer = Unstuffer::new();
        let mut message = Vec::new();
        loop {
            let have = conn.buffered();
            match unstuffer.feed(have, &mut message) {
                Some(used) => {
                    conn.consume(used);
                    break;
                }
                None => {
                    let all = have.len();
                    conn.consume(all);
                }
            }
            if conn.fill()? == 0 {
                return Ok(Flow::Close);
            }
        }
        conn.note_client(&format!("<{} bytes of message>", message.len()));
        Ok(self.finish(conn, message, false))
    }

    fn bdat(&mut self, conn: &mut Conn, arg: &str) -> io::Result<Flow> {
        let mut words = arg.split_whitespace();
        let size = words.next().and_then(|n| n.parse::<usize>().ok());
        let last = match words.next() {
            None => false,
            Some(w) if w.eq_ignore_ascii_case("LAST") => true,
            Some(_) => {
                conn.reply("501 5.5.4 Syntax: BDAT size [LAST]");
                return Ok(Flow::Close);
            }
        };
        let Some(size) = size else {
            // Without a size the chunk cannot be skipped: the session is lost.
            conn.reply("501 5.5.4 Syntax: BDAT size [LAST]");
            return Ok(Flow::Close);
        };
        let chunk = match conn.read_exact(size)? {
            Ok(c) => c,
            Err(_) => return Ok(Flow::Close),
        };
        conn.note_client(&format!("<{size} bytes of chunk>"));
        if !self.ready_for_message(conn) {
            return Ok(Flow::Continue);
        }
        self.tx.chunking = true;
        let limit = self.cfg.size_limit;
        if self.tx.bdat_failed {
            conn.reply("503 5.5.1 Earlier chunk failed, send RSET");
        } else if limit > 0 && (self.tx.bdat.len() + chunk.len()) as u64 > limit {
            self.tx.bdat_failed = true;
            self.tx.bdat = Vec::new();
            conn.reply("552 5.3.4 Message size exceeds fixed limit");
        } else {
            self.tx.bdat.extend_from_slice(&chunk);
            if last {
                let message = std::mem::take(&mut self.tx.bdat);
                return Ok(self.finish(conn, message, true));
            } else {
                conn.reply(&format!("250 2.0.0 {size} octets received"));
            }
        }
        Ok(Flow::Continue)
    }

    /// Answers a complete message and records it when it was accepted; a 421
    /// answer closes the connection.
    fn finish(&mut self, conn: &mut Conn, message: Vec<u8>, chunked: bool) -> Flow {
        let tx = std::mem::take(&mut self.tx);
        let cfg = self.cfg;
        let too_big = cfg.size_limit > 0 && message.len() as u64 > cfg.size_limit;
        let mut accepted = false;
        let mut closing = false;
        let mut answer = |conn: &mut Conn, line: String| {
            accepted |= line.starts_with('2');
            closing |= line.starts_with("421");
            conn.reply(&line);
        };
        if cfg.lmtp {
            for (path, _) in &tx.rcpts {
                let line = if too_big {
                    format!("552 5.3.4 <{path}> Message too big")
                } else if let Some(r) = &cfg.data_reply {
                    r.clone()
                } else if cfg.fail_after_data.contains(path) {
                    format!("452 4.2.2 <{path}> mailbox full")
                } else {
                    format!("250 2.0.0 <{path}> delivered")
                };
                answer(conn, line);
            }
        } else if too_big {
            answer(
                conn,
                "552 5.3.4 Message size exceeds fixed limit".to_owned(),
            );
        } else if let Some(r) = &cfg.data_reply {
            answer(conn, r.clone());
        } else {
            self.queued += 1;
            answer(conn, format!("250 2.0.0 Ok: queued as T{}", self.queued));
        }
        if accepted {
            let received = Received {
                connection: conn.index(),
                helo: self.helo.clone().unwrap_or_default(),
                mail_from: tx.mail_from.unwrap_or_default(),
                rcpt_to: tx.rcpts.into_iter().map(|(_, a)| a).collect(),
                data: message,
                chunked,
                tls: conn.is_tls(),
                auth_user: self.user.clone(),
            };
            conn.record_message(received);
        }
        if closing { Flow::Close } else { Flow::Continue }
    }

    fn auth(&mut self, conn: &mut Conn, arg: &str) -> io::Result<Flow> {
        if self.cfg.users.is_empty() || self.cfg.auth_mechanisms.is_empty() {
            conn.reply("502 5.5.1 AUTH not available");
        } else if self.helo.is_none() {
            conn.reply("503 5.5.1 Send EHLO first");
        } else if self.user.is_some() {
            conn.reply("503 5.5.1 Already authenticated");
        } else if self.tx.mail_from.is_some() {
            conn.reply("503 5.5.1 AUTH not allowed during a mail transaction");
        } else {
            match authenticate(conn, self.cfg, arg)? {
                Auth::Success(user) => {
                    conn.reply("235 2.7.0 Authentication successful");
                    self.user = Some(user);
                }
                Auth::Failed => conn.reply("535 5.7.8 Authentication credentials invalid"),
                Auth::Cancelled => conn.reply("501 5.7.0 Authentication cancelled"),
                Auth::BadSyntax => conn.reply("501 5.5.2 Cannot decode response"),
                Auth::Unknown => conn.reply("504 5.5.4 Unrecognized authentication type"),
                Auth::Closed => return Ok(Flow::Close),
            }
        }
        Ok(Flow::Continue)
    }
}
