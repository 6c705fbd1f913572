//! The checks of what the server answered and what it kept.

use std::time::{Duration, Instant};

use smtp_sansio::TransactionResult;

use super::{Case, Context, Server, fail};
use crate::adapters::Session;
use crate::store::{Kept, Store};

/// What the server must have kept.
pub(super) struct Expect {
    pub(super) sender: String,
    pub(super) recipients: Vec<String>,
    pub(super) message: Vec<u8>,
    pub(super) protocol: Option<String>,
    pub(super) tls: bool,
    pub(super) auth: bool,
    pub(super) mail_params: Vec<String>,
    pub(super) rcpt_params: Vec<String>,
}

pub(super) fn quit<S: Session>(s: S) -> Result<(), String> {
    let r = s.quit().map_err(|e| fail("QUIT", &e))?;
    if r.code() == 221 {
        Ok(())
    } else {
        Err(format!("QUIT answered {}", r.code()))
    }
}

pub(super) fn check_result(
    server: &Server,
    case: Case,
    result: &TransactionResult,
    expect: &Expect,
) -> Result<String, String> {
    let wants_bdat = server.offers.chunking && !matches!(case, Case::Plain | Case::LargeData);
    if result.chunked != wants_bdat {
        return Err(format!(
            "chunked={} but BDAT expected={wants_bdat}",
            result.chunked
        ));
    }
    if server.is_lmtp() {
        // One final reply per accepted recipient: the unknown one refused at
        // RCPT, the broken one refused after the body, the others 250.
        let mut want_refused = Vec::new();
        let mut notes = Vec::new();
        for r in &result.recipients {
            let address = r.address.to_string();
            let rcpt = r.rcpt_reply.code();
            let fin = r.final_reply.as_ref().map(smtp_sansio::Reply::code);
            let ok = if address == server.unknown {
                rcpt == 550 && fin.is_none()
            } else if address == server.fails_after_data {
                rcpt == 250 && fin.is_some_and(|c| c >= 400)
            } else {
                rcpt == 250 && fin == Some(250)
            };
            if !ok {
                return Err(format!("{address}: RCPT {rcpt}, final {fin:?}"));
            }
            if address == server.unknown {
                notes.push(format!("{address} {rcpt} at RCPT"));
                want_refused.push(address);
            } else if address == server.fails_after_data {
                notes.push(format!("{address} {} after DATA", fin.unwrap_or_default()));
                want_refused.push(address);
            }
        }
        let refused: Vec<String> = result
            .refused()
            .iter()
            .map(|(a, _)| a.to_string())
            .collect();
        if refused != want_refused {
            return Err(format!("refused {refused:?}, expected {want_refused:?}"));
        }
        let expected_refusals = match case {
            Case::LmtpUnix | Case::LmtpTcp | Case::LmtpAfterData => 1,
            _ => 0,
        };
        if want_refused.len() != expected_refusals {
            return Err(format!(
                "{} refused recipients in the result, expected {expected_refusals}",
                want_refused.len()
            ));
        }
        return Ok(notes.join(", "));
    }
    let fin = result.final_reply.as_ref().map(smtp_sansio::Reply::code);
    if fin != Some(250) {
        return Err(format!("final reply {fin:?}"));
    }
    let refused = result.refused();
    let mut note = String::new();
    if case == Case::RcptRefused {
        match refused.as_slice() {
            [(a, r)] if a.to_string() == server.refused && r.code() >= 500 => {
                note = format!("{a} {} at RCPT", r.code());
            }
            _ => {
                let v: Vec<String> = refused
                    .iter()
                    .map(|(a, r)| format!("{a} {}", r.code()))
                    .collect();
                return Err(format!(
                    "refused {v:?}, expected {} with 5xx",
                    server.refused
                ));
            }
        }
    } else if !refused.is_empty() {
        return Err(format!("{} recipients refused", refused.len()));
    }
    let accepted = result.recipients.len() - refused.len();
    if accepted != expect.recipients.len() {
        return Err(format!(
            "{accepted} recipients accepted, {} expected",
            expect.recipients.len()
        ));
    }
    Ok(note)
}

/// Every RCPT was written before the first reply after MAIL was read.
pub(super) fn check_pipelined(trace: &[String], rcpts: usize) -> Result<(), String> {
    let mail = trace
        .iter()
        .position(|l| l.starts_with("C: MAIL FROM:"))
        .ok_or("no MAIL in the trace")?;
    let first_reply = trace[mail..]
        .iter()
        .position(|l| l.starts_with("S: "))
        .map_or(trace.len(), |i| i + mail);
    let sent = trace[mail..first_reply]
        .iter()
        .filter(|l| l.starts_with("C: RCPT TO:"))
        .count();
    if sent == rcpts {
        Ok(())
    } else {
        Err(format!(
            "{sent} of {rcpts} RCPT written before the reply to MAIL was read"
        ))
    }
}

pub(super) fn normalise(store: &Store, m: &[u8]) -> Vec<u8> {
    if store.stores_lf() {
        let mut out = Vec::with_capacity(m.len());
        let mut i = 0;
        while i < m.len() {
            if m[i] == b'\r' && m.get(i + 1) == Some(&b'\n') {
                i += 1;
                continue;
            }
            out.push(m[i]);
            i += 1;
        }
        out
    } else {
        m.to_vec()
    }
}

pub(super) fn compare(store: &Store, kept: &Kept, expect: &Expect) -> Result<(), String> {
    let want = normalise(store, &expect.message);
    if kept.message != want {
        let at = kept
            .message
            .iter()
            .zip(&want)
            .position(|(a, b)| a != b)
            .unwrap_or(kept.message.len().min(want.len()));
        return Err(format!(
            "message differs at byte {at} (kept {} bytes, sent {} after line-ending normalisation)",
            kept.message.len(),
            want.len()
        ));
    }
    if kept.sender != expect.sender {
        return Err(format!(
            "sender {:?}, sent {:?}",
            kept.sender, expect.sender
        ));
    }
    let mut want_rcpts = expect.recipients.clone();
    want_rcpts.sort();
    if kept.recipients != want_rcpts {
        return Err(format!(
            "recipients {:?}, sent {want_rcpts:?}",
            kept.recipients
        ));
    }
    if expect.protocol.is_some() && kept.protocol != expect.protocol {
        return Err(format!(
            "protocol {:?}, expected {:?}",
            kept.protocol, expect.protocol
        ));
    }
    if kept.tls.is_some_and(|t| t != expect.tls) || kept.auth.is_some_and(|a| a != expect.auth) {
        return Err(format!(
            "server saw tls={:?} auth={:?}, expected {} {}",
            kept.tls, kept.auth, expect.tls, expect.auth
        ));
    }
    for p in &expect.mail_params {
        // Postfix's pipe and Exim's maildir do not record MAIL parameters;
        // the protocol (UTF8SMTP..., utf8esmtp...) stands for SMTPUTF8 there.
        let recorded =
            !matches!(store, Store::Postfix { .. } | Store::Exim { .. }) || p != "SMTPUTF8";
        if recorded && !kept.mail_params.contains(p) {
            return Err(format!(
                "MAIL parameter {p} not seen (saw {:?})",
                kept.mail_params
            ));
        }
    }
    for p in &expect.rcpt_params {
        if !kept
            .rcpt_params
            .iter()
            .all(|r| r.split(' ').any(|x| x == p))
        {
            return Err(format!(
                "RCPT parameter {p} not seen (saw {:?})",
                kept.rcpt_params
            ));
        }
    }
    Ok(())
}

/// Waits until the server kept exactly one message with `token` and it is
/// what was sent.
pub(super) fn wait_kept(
    ctx: &Context,
    server: &Server,
    token: &str,
    expect: &Expect,
) -> Result<Kept, String> {
    let deadline = Instant::now() + ctx.wait;
    loop {
        let last = match server.store.find(token.as_bytes()) {
            Ok(kept) if kept.len() == 1 => match compare(&server.store, &kept[0], expect) {
                Ok(()) => return Ok(kept[0].clone()),
                Err(e) => e,
            },
            Ok(kept) if kept.is_empty() => "nothing kept".to_owned(),
            Ok(kept) => format!("{} different messages kept", kept.len()),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(format!("after {:?}: {last}", ctx.wait));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A refused message must not have been kept (checked after a short delay, as
/// Postfix delivers asynchronously).
pub(super) fn nothing_kept(server: &Server, token: &str) -> Result<(), String> {
    std::thread::sleep(Duration::from_millis(200));
    match server.store.find(token.as_bytes()) {
        Ok(k) if k.is_empty() => Ok(()),
        Ok(_) => Err("a refused message was kept".into()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelined_trace() {
        let t: Vec<String> = [
            "C: MAIL FROM:<a>",
            "C: RCPT TO:<b>",
            "C: RCPT TO:<c>",
            "S: 250 ok",
            "S: 250 ok",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        assert!(check_pipelined(&t, 2).is_ok());
        let t: Vec<String> = [
            "C: MAIL FROM:<a>",
            "S: 250 ok",
            "C: RCPT TO:<b>",
            "S: 250 ok",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        assert!(check_pipelined(&t, 1).is_err());
    }

    #[test]
    fn line_endings() {
        let s = Store::Dovecot("/nonexistent".into());
        assert_eq!(normalise(&s, b"a\r\nb\r\n"), b"a\nb\n");
        let s = Store::Aiosmtpd("/nonexistent".into());
        assert_eq!(normalise(&s, b"a\r\nb\r\n"), b"a\r\nb\r\n");
    }
}
