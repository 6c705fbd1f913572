//! Postfix's `posttls-finger` as the independent DANE oracle: for a
//! scenario's destination, while its servers still run, it is asked
//! (`-c -l dane <domain>`, through the same Unbound) and its verdict is
//! compared with ours, read from the delivery's report.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use smtp_async::mx::FinalStatus;
use smtp_mx::Reason;
use smtp_mx::plan::TlsPlan;

use crate::Failure;
use crate::scenario::Outcome;

/// How long posttls-finger may take.
const FINGER_LIMIT: Duration = Duration::from_secs(20);
/// The most bytes of its output (each of stdout and stderr) read.
const MAX_OUTPUT: u64 = 1024 * 1024;

/// A DANE verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// TLS with the certificate verified (by DANE).
    Verified,
    /// TLS without (successful) authentication.
    Untrusted,
    /// A DNS lookup (MX, address or TLSA) failed.
    LookupError,
    /// Anything else (what was seen).
    Other(String),
}

/// The configuration directory posttls-finger is given (`MAIL_CONFIG`).
pub fn config_dir(dir: &Path) -> Result<PathBuf, Failure> {
    let conf = dir.join("postfix");
    std::fs::create_dir_all(&conf).map_err(|e| Failure(format!("{}: {e}", conf.display())))?;
    // No DNSSEC probe (it would ask the root); DNSSEC lookups; IPv4 only,
    // as the lab's zones.
    let main_cf = "dnssec_probe =\nsmtp_dns_support_level = dnssec\ninet_protocols = ipv4\n\
                   smtp_tls_security_level = dane\ncompatibility_level = 3.6\n";
    std::fs::write(conf.join("main.cf"), main_cf).map_err(|e| Failure(format!("main.cf: {e}")))?;
    Ok(conf)
}

/// Runs posttls-finger for `domain`; its verdict, the line that says it,
/// and its whole output.
pub fn theirs(conf: &Path, domain: &str) -> Result<(Verdict, String, String), Failure> {
    let mut child = Command::new("posttls-finger")
        .env("MAIL_CONFIG", conf)
        .args(["-c", "-l", "dane", domain])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Failure(format!("posttls-finger: {e}")))?;
    // Its output is read as it comes (a full pipe would stall it), at
    // most MAX_OUTPUT bytes of each stream.
    let reader = |stream: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(s) = stream {
                let _ = s.take(MAX_OUTPUT).read_to_end(&mut bytes);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() > FINGER_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Failure(format!(
                    "posttls-finger took over {FINGER_LIMIT:?}"
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(Failure(format!("posttls-finger: {e}"))),
        }
    }
    // The child is gone: its pipes are closed, the readers end.
    let mut text = out.join().unwrap_or_default();
    text.push_str(&err.join().unwrap_or_default());
    let (verdict, line) = parse(&text);
    Ok((verdict, line, text))
}

/// posttls-finger's verdict from its output, and the line that says it.
pub fn parse(text: &str) -> (Verdict, String) {
    let line = |s: &str| text.lines().find(|l| l.contains(s)).map(str::to_owned);
    let checks: [(&str, Verdict); 6] = [
        ("Verified TLS connection established", Verdict::Verified),
        ("Untrusted TLS connection established", Verdict::Untrusted),
        ("Anonymous TLS connection established", Verdict::Untrusted),
        ("lookup error", Verdict::LookupError),
        ("Host not found, try again", Verdict::LookupError),
        ("SERVFAIL", Verdict::LookupError),
    ];
    for (needle, verdict) in checks {
        if let Some(l) = line(needle) {
            return (verdict, l);
        }
    }
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(no output)")
        .to_owned();
    (Verdict::Other(last.clone()), last)
}

/// Our verdict, from the report and the servers: delivered over TLS under a
/// DANE plan is verified, over TLS under another plan untrusted; a DANE
/// failure of the handshake untrusted; a failed lookup a lookup error.
pub fn ours(o: &Outcome<'_>) -> Verdict {
    let plan = o
        .report
        .domains
        .first()
        .and_then(|d| d.connections.last())
        .map(|c| &c.tls);
    let dane = matches!(plan, Some(TlsPlan::Dane { .. }));
    match o.report.recipients.first().map(|r| &r.status) {
        Some(FinalStatus::Delivered {
            ip: std::net::IpAddr::V4(v4),
            ..
        }) => {
            let tls = o
                .server(v4.octets()[3])
                .ok()
                .and_then(|s| s.messages().first().map(|m| m.tls));
            match (tls, dane) {
                (Some(true), true) => Verdict::Verified,
                (Some(true), false) => Verdict::Untrusted,
                (other, _) => Verdict::Other(format!("delivered, TLS {other:?}")),
            }
        }
        Some(FinalStatus::Deferred(p) | FinalStatus::Bounced(p)) => match &p.reason {
            Some(Reason::TlsaLookupFailed | Reason::DnsFailure) => Verdict::LookupError,
            Some(r) if dane && r.is_tls_failure() => Verdict::Untrusted,
            other => Verdict::Other(format!("{}: {other:?}", p.status)),
        },
        other => Verdict::Other(format!("{other:?}")),
    }
}
