//! What each server kept of a message, read back from its files:
//!
//! - Postfix relays to `smtp-sink`, whose dump is: its own `X-Client-Addr`,
//!   `X-Client-Proto`, `X-Helo-Args`, `X-Mail-Args` and `X-Rcpt-Args` lines,
//!   its own `Received:` field, then the message as Postfix relayed it (with
//!   Postfix's `Received:` field on top), then one empty line; lines end in LF.
//!   The SMTPUTF8 domain is delivered by Postfix's `pipe` instead: the
//!   envelope on the first line, then Postfix's `Received:` and the message.
//! - aiosmtpd's handler writes `N.eml` (the bytes after DATA, unstuffed, line
//!   endings as received) and `N.env` (envelope, TLS and AUTH state).
//! - Dovecot LMTP writes one maildir file per recipient, LF line endings, with
//!   `Return-Path:`, `Delivered-To:` and `Received:` added on top.
//! - Exim's appendfile transport writes one file per recipient into one
//!   maildir, LF line endings, with `Return-path:`, `Envelope-to:` and its
//!   `Received:` on top; its mainlog has one `<=` line per message received,
//!   keyed by the queue id of the reply to the end of the message.
//!
//! The fields a server adds on top are removed (and checked where they carry
//! the envelope or the protocol); what remains is what the client sent.

use std::path::{Path, PathBuf};

/// Where a server keeps what it received.
#[derive(Debug, Clone)]
pub enum Store {
    /// Postfix: the smtp-sink dump directory and the SMTPUTF8 pipe directory.
    Postfix {
        /// smtp-sink's `-d` directory.
        sink: PathBuf,
        /// The pipe(8) dump directory.
        utf8: PathBuf,
    },
    /// aiosmtpd's dump directory.
    Aiosmtpd(PathBuf),
    /// Dovecot's mail root (one home per user, a maildir inside).
    Dovecot(PathBuf),
    /// Exim: the maildir every recipient's copy goes to, and the mainlog.
    Exim {
        /// The maildir (`new/`, `cur/`).
        mail: PathBuf,
        /// The mainlog.
        log: PathBuf,
    },
}

/// One message as a server kept it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kept {
    /// The envelope sender.
    pub sender: String,
    /// The MAIL parameters the server saw (where it records them).
    pub mail_params: Vec<String>,
    /// The envelope recipients, sorted.
    pub recipients: Vec<String>,
    /// The RCPT parameters the server saw, one string per recipient.
    pub rcpt_params: Vec<String>,
    /// The message without the fields the servers added.
    pub message: Vec<u8>,
    /// The protocol Postfix or Exim recorded in its `Received:` field
    /// (`ESMTPSA`, `esmtps`...).
    pub protocol: Option<String>,
    /// The `Received:` field Postfix, Dovecot or Exim added, unfolded.
    pub received: Option<String>,
    /// TLS and AUTH as aiosmtpd saw them.
    pub tls: Option<bool>,
    /// See `tls`.
    pub auth: Option<bool>,
}

impl Store {
    /// Whether the server stores CRLF as LF.
    pub fn stores_lf(&self) -> bool {
        !matches!(self, Store::Aiosmtpd(_))
    }

    /// Every kept message containing `token`, merged per message (Dovecot
    /// keeps one copy per recipient: the copies must be identical).
    pub fn find(&self, token: &[u8]) -> Result<Vec<Kept>, String> {
        let mut kept = Vec::new();
        match self {
            Store::Postfix { sink, utf8 } => {
                for (path, bytes) in files_containing(sink, token)? {
                    kept.push(parse_sink(&bytes).map_err(|e| format!("{}: {e}", path.display()))?);
                }
                let mut pipe: Vec<Kept> = Vec::new();
                for (path, bytes) in files_containing(utf8, token)? {
                    let k = parse_pipe(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
                    merge(&mut pipe, k);
                }
                kept.extend(pipe);
            }
            Store::Aiosmtpd(dir) => {
                for (path, bytes) in files_containing(dir, token)? {
                    if path.extension().is_some_and(|e| e == "eml") {
                        let env = std::fs::read_to_string(path.with_extension("env"));
                        // Without N.env the handler has not finished N.eml.
                        if let Ok(env) = env {
                            kept.push(parse_aiosmtpd(&env, bytes));
                        }
                    }
                }
            }
            Store::Dovecot(root) => {
                for user in read_dir(root)? {
                    for sub in ["new", "cur"] {
                        let dir = user.join("Maildir").join(sub);
                        if !dir.is_dir() {
                            continue;
                        }
                        for (path, bytes) in files_containing(&dir, token)? {
                            let mut k = parse_dovecot(&bytes)
                                .map_err(|e| format!("{}: {e}", path.display()))?;
                            // The mailbox's owner is the recipient; Delivered-To,
                            // when present, must name it.
                            let home = user
                                .file_name()
                                .map(|n| n.to_string_lossy().into_owned())
                                .unwrap_or_default();
                            if k.recipients.iter().any(|r| *r != home) {
                                return Err(format!(
                                    "{}: Delivered-To {:?} is not the mailbox's owner",
                                    path.display(),
                                    k.recipients
                                ));
                            }
                            k.recipients = vec![home];
                            merge(&mut kept, k);
                        }
                    }
                }
            }
            Store::Exim { mail, .. } => {
                for sub in ["new", "cur"] {
                    let dir = mail.join(sub);
                    if !dir.is_dir() {
                        continue;
                    }
                    for (path, bytes) in files_containing(&dir, token)? {
                        let k =
                            parse_exim(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
                        merge(&mut kept, k);
                    }
                }
            }
        }
        Ok(kept)
    }

    /// Exim's mainlog line saying that it received the message with queue
    /// id `id` (`DATE TIME ID <= SENDER ...`), if it is there yet.
    pub fn reception(&self, id: &str) -> Result<Option<String>, String> {
        let Store::Exim { log, .. } = self else {
            return Err("the server keeps no log of receptions".into());
        };
        let bytes = std::fs::read(log).map_err(|e| format!("{}: {e}", log.display()))?;
        Ok(String::from_utf8_lossy(&bytes)
            .lines()
            .find(|l| {
                let mut f = l.split_whitespace().skip(2);
                f.next() == Some(id) && f.next() == Some("<=")
            })
            .map(str::to_owned))
    }
}

/// Adds one recipient's copy to the message it belongs to (same sender and
/// same bytes), or as a new message.
fn merge(all: &mut Vec<Kept>, k: Kept) {
    if let Some(m) = all
        .iter_mut()
        .find(|m| m.sender == k.sender && m.message == k.message)
    {
        m.recipients.extend(k.recipients);
        m.recipients.sort();
        m.rcpt_params.extend(k.rcpt_params);
    } else {
        all.push(k);
    }
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    v.sort();
    Ok(v)
}

fn files_containing(dir: &Path, token: &[u8]) -> Result<Vec<(PathBuf, Vec<u8>)>, String> {
    let mut out = Vec::new();
    for path in read_dir(dir)? {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        // Skip directories and files still being written under a temporary name.
        if !path.is_file() || name.is_some_and(|n| n.starts_with('.') || n.ends_with(".tmp")) {
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        if contains(&bytes, token) {
            out.push((path, bytes));
        }
    }
    Ok(out)
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Splits the leading header field off `bytes` (with its continuation lines;
/// LF line endings): `(name, whole field, rest)`.
fn leading_field(bytes: &[u8]) -> Option<(&str, &[u8], &[u8])> {
    let colon = bytes.iter().position(|&b| b == b':')?;
    let name = std::str::from_utf8(&bytes[..colon]).ok()?;
    if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
        return None;
    }
    let mut end = 0;
    loop {
        let nl = bytes[end..].iter().position(|&b| b == b'\n')? + end + 1;
        end = nl;
        if !matches!(bytes.get(end), Some(b' ' | b'\t')) {
            break;
        }
    }
    Some((name, &bytes[..end], &bytes[end..]))
}

/// The field's value, unfolded and trimmed.
fn value(field: &[u8], name: &str) -> String {
    let v = String::from_utf8_lossy(&field[name.len() + 1..]);
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `<addr> PARAM ...` into the address and the parameters.
fn path_and_params(v: &str) -> (String, String) {
    let (path, params) = v.split_once(' ').unwrap_or((v, ""));
    let path = path.trim_start_matches('<').trim_end_matches('>');
    (path.to_owned(), params.to_owned())
}

/// The protocol in Postfix's own `Received:` field (`... with ESMTPSA id ...`).
fn postfix_protocol(field: &[u8]) -> Option<String> {
    let v = value(field, "Received");
    if !v.contains("by postfix.interop.test (Postfix)") {
        return None;
    }
    let after = v.split(" with ").nth(1)?;
    after.split(' ').next().map(str::to_owned)
}

fn parse_sink(bytes: &[u8]) -> Result<Kept, String> {
    let mut k = Kept::default();
    let mut rest = bytes;
    let mut received = 0;
    while let Some((name, field, tail)) = leading_field(rest) {
        match name {
            "X-Client-Addr" | "X-Client-Proto" | "X-Helo-Args" => {}
            "X-Mail-Args" => {
                let (from, params) = path_and_params(&value(field, name));
                k.sender = from;
                k.mail_params = params.split_whitespace().map(str::to_owned).collect();
            }
            "X-Rcpt-Args" => {
                let (to, params) = path_and_params(&value(field, name));
                k.recipients.push(to);
                k.rcpt_params.push(params);
            }
            // smtp-sink's own field, then Postfix's.
            "Received" if received < 2 => {
                received += 1;
                if let Some(p) = postfix_protocol(field) {
                    k.protocol = Some(p);
                    k.received = Some(value(field, name));
                }
            }
            _ => break,
        }
        rest = tail;
    }
    if received != 2 || k.protocol.is_none() {
        return Err("no Received field from smtp-sink and Postfix".into());
    }
    // smtp-sink ends every dump with one empty line.
    k.message = rest
        .strip_suffix(b"\n")
        .ok_or("the dump does not end with the empty line smtp-sink adds")?
        .to_vec();
    k.recipients.sort();
    Ok(k)
}

fn parse_pipe(bytes: &[u8]) -> Result<Kept, String> {
    let nl = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("no envelope line")?;
    let line = String::from_utf8_lossy(&bytes[..nl]);
    let (sender, recipient) = line.split_once(' ').ok_or("bad envelope line")?;
    let (name, field, rest) = leading_field(&bytes[nl + 1..]).ok_or("no Received field")?;
    if name != "Received" {
        return Err("no Received field from Postfix".into());
    }
    Ok(Kept {
        sender: sender.to_owned(),
        recipients: vec![recipient.to_owned()],
        rcpt_params: vec![String::new()],
        message: rest.to_vec(),
        protocol: postfix_protocol(field),
        received: Some(value(field, name)),
        ..Kept::default()
    })
}

fn parse_aiosmtpd(env: &str, message: Vec<u8>) -> Kept {
    let mut k = Kept {
        message,
        ..Kept::default()
    };
    for line in env.lines() {
        let (key, v) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "mail_from" => v.clone_into(&mut k.sender),
            "mail_option" => k.mail_params.push(v.to_owned()),
            "rcpt_to" => k.recipients.push(v.to_owned()),
            "tls" => k.tls = Some(v == "yes"),
            "auth" => k.auth = Some(v == "yes"),
            _ => {}
        }
    }
    k.recipients.sort();
    k
}

/// Dovecot's file: `Return-Path:`, `Delivered-To:` (only when the
/// transaction had one recipient) and `Received:` on top of the message.
fn parse_dovecot(bytes: &[u8]) -> Result<Kept, String> {
    let mut k = Kept::default();
    let mut rest = bytes;
    let mut seen = Vec::new();
    while let Some((name, field, tail)) = leading_field(rest) {
        if !matches!(name, "Return-Path" | "Delivered-To" | "Received") || seen.contains(&name) {
            break;
        }
        seen.push(name);
        let v = value(field, name);
        match name {
            "Return-Path" => k.sender = path_and_params(&v).0,
            "Delivered-To" => k.recipients.push(v),
            _ => {
                if !v.contains(" with LMTP") {
                    return Err(format!("Received field not from LMTP: {v}"));
                }
                k.protocol = Some("LMTP".into());
                k.received = Some(v);
            }
        }
        rest = tail;
    }
    if !seen.contains(&"Return-Path") || !seen.contains(&"Received") {
        return Err("no Return-Path or Received field from Dovecot".into());
    }
    k.rcpt_params.push(String::new());
    k.message = rest.to_vec();
    Ok(k)
}

/// Exim's file: `Return-path:`, `Envelope-to:` (the recipient of this copy)
/// and Exim's `Received:` on top of the message.
fn parse_exim(bytes: &[u8]) -> Result<Kept, String> {
    let mut k = Kept::default();
    let mut rest = bytes;
    let mut seen = Vec::new();
    while let Some((name, field, tail)) = leading_field(rest) {
        if !matches!(name, "Return-path" | "Envelope-to" | "Received") || seen.contains(&name) {
            break;
        }
        seen.push(name);
        let v = value(field, name);
        match name {
            "Return-path" => k.sender = path_and_params(&v).0,
            "Envelope-to" => {
                for r in v.split(',') {
                    k.recipients.push(r.trim().to_owned());
                    k.rcpt_params.push(String::new());
                }
            }
            _ => {
                if !v.contains("by exim.interop.test with ") {
                    return Err(format!("Received field not from Exim: {v}"));
                }
                k.protocol = v
                    .split(" with ")
                    .nth(1)
                    .and_then(|p| p.split(' ').next())
                    .map(str::to_owned);
                k.received = Some(v);
            }
        }
        rest = tail;
    }
    if seen != ["Return-path", "Envelope-to", "Received"] {
        return Err(format!(
            "fields {seen:?} on top, not Return-path, Envelope-to and Received from Exim"
        ));
    }
    k.recipients.sort();
    k.message = rest.to_vec();
    Ok(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_dump() {
        let dump = b"X-Client-Addr: 127.0.0.1\nX-Client-Proto: ESMTP\nX-Helo-Args: p\n\
X-Mail-Args: <a@x> RET=HDRS\nX-Rcpt-Args: <b@y> ORCPT=rfc822;b@y\n\
Received: from p ([127.0.0.1])\n\tby sink (smtp-sink) with ESMTP id 1;\n\tdate\n\
Received: from [127.0.0.1] (localhost [127.0.0.1])\n\tby postfix.interop.test (Postfix) with ESMTPSA id 2\n\tfor <b@y>; date\n\
Subject: s\n\nbody\n\n";
        let k = parse_sink(dump).unwrap();
        assert_eq!(k.sender, "a@x");
        assert_eq!(k.mail_params, ["RET=HDRS"]);
        assert_eq!(k.recipients, ["b@y"]);
        assert_eq!(k.rcpt_params, ["ORCPT=rfc822;b@y"]);
        assert_eq!(k.protocol.as_deref(), Some("ESMTPSA"));
        assert_eq!(k.message, b"Subject: s\n\nbody\n");
    }

    #[test]
    fn sink_dump_without_postfix_received_is_refused() {
        let dump = b"X-Mail-Args: <a@x>\nReceived: x\n\tby sink\nSubject: s\n\nbody\n\n";
        assert!(parse_sink(dump).is_err());
    }

    #[test]
    fn dovecot_file() {
        let file = b"Return-Path: <a@x>\nDelivered-To: b@y\nReceived: from [127.0.0.1]\n\tby vm with LMTP\n\tid 1\n\
Subject: s\n\nbody\n";
        let k = parse_dovecot(file).unwrap();
        assert_eq!(k.sender, "a@x");
        assert_eq!(k.recipients, ["b@y"]);
        assert_eq!(k.message, b"Subject: s\n\nbody\n");
    }

    #[test]
    fn exim_file() {
        let file = b"Return-path: <a@x>\nEnvelope-to: b@y\nReceived: from [127.0.0.1] (helo=c)\n\t\
by exim.interop.test with esmtps (TLS1.3) (Exim 4.96)\n\tid 1\n\tfor b@y; date\nSubject: s\n\nbody\n";
        let k = parse_exim(file).unwrap();
        assert_eq!(k.sender, "a@x");
        assert_eq!(k.recipients, ["b@y"]);
        assert_eq!(k.protocol.as_deref(), Some("esmtps"));
        assert_eq!(k.message, b"Subject: s\n\nbody\n");
        // Without Envelope-to the recipient is unknown: refused.
        let file =
            b"Return-path: <a@x>\nReceived: from c\n\tby exim.interop.test with esmtp\nS: s\n\nb\n";
        assert!(parse_exim(file).is_err());
    }

    #[test]
    fn exim_reception_line() {
        let dir = std::env::temp_dir().join(format!("smtp-interop-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("mainlog");
        std::fs::write(
            &log,
            "2026-01-01 00:00:00 1a-2b-3c <= a@x H=(c) [127.0.0.1] P=esmtp L. S=9 for b@y\n\
             2026-01-01 00:00:01 1a-2b-3c => b@y R=all T=box\n\
             2026-01-01 00:00:02 1a-2b-3d <= a@x H=(c) [127.0.0.1] P=esmtp L* S=9 for b@y\n",
        )
        .unwrap();
        let store = Store::Exim {
            mail: dir.clone(),
            log,
        };
        let line = store.reception("1a-2b-3d").unwrap().unwrap();
        assert!(line.split_whitespace().any(|f| f == "L*"), "{line}");
        assert!(store.reception("1a-2b-3e").unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn aiosmtpd_envelope() {
        let k = parse_aiosmtpd(
            "mail_from a@x\nmail_option SMTPUTF8\nrcpt_to c@y\nrcpt_to b@y\ntls yes\nauth no\n",
            b"m".to_vec(),
        );
        assert_eq!(k.recipients, ["b@y", "c@y"]);
        assert_eq!(k.mail_params, ["SMTPUTF8"]);
        assert_eq!((k.tls, k.auth), (Some(true), Some(false)));
    }
}
