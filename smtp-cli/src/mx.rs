//! `smtp-send --mx`: delivery straight to each recipient's mail exchangers
//! with `smtp_blocking::mx::deliver`, DNS by `smtp_mx_hickory`'s resolver
//! from the system's configuration, MTA-STS policies by the blocking HTTPS
//! fetcher. One line per recipient on stdout; the exit status by outcome.

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use smtp_blocking::mx::{
    BlockingPolicyFetcher, BlockingResolver, FinalStatus, LocalPolicy, MxConfig, MxRecord, Report,
    Security, StaticPolicyFetcher, StaticResolver, deliver,
};
use smtp_blocking::smtp_adapter::mx::HttpsPolicyFetcher;
use smtp_blocking::smtp_sansio::{Envelope, Escaped, body::normalize_line_endings};
use smtp_mx_hickory::HickoryResolver;

use crate::{
    Args, EXIT_FAILURE, EXIT_PARTIAL, EXIT_REFUSED, EXIT_UNCERTAIN, Failure, Plan, plan,
    read_message, sign,
};

/// `--mx-policy`: the local transport-security policy by Postfix's names
/// (`plaintext` for Postfix's `none`, so that the name says it).
pub(crate) fn parse_policy(name: &str) -> Result<LocalPolicy, Failure> {
    Ok(match name {
        "plaintext" => LocalPolicy::Plaintext,
        "may" => LocalPolicy::Opportunistic,
        "encrypt" => LocalPolicy::Encrypt,
        "verify" => LocalPolicy::Verify,
        "dane-only" => LocalPolicy::DaneOnly,
        other => {
            return Err(Failure::usage(format!(
                "--mx-policy: unknown policy {other:?} (plaintext, may, encrypt, verify, dane-only)"
            )));
        }
    })
}

/// The options that say how to reach one server, which `--mx` replaces.
fn conflicts(args: &Args) -> Option<&'static str> {
    let given = [
        (args.server.is_some(), "--server"),
        (args.unix.is_some(), "--unix"),
        (args.lmtp, "--lmtp"),
        (args.tls != crate::TlsMode::None, "--tls"),
        (args.insecure, "--insecure"),
        (args.user.is_some(), "--user"),
        (args.source.is_some(), "--source"),
        (args.no_pipelining, "--no-pipelining"),
        (args.no_chunking, "--no-chunking"),
    ];
    given.iter().find(|(on, _)| *on).map(|(_, name)| *name)
}

/// `smtp-send --mx`: delivers, prints a line per recipient, and gives the
/// exit status.
pub(crate) fn main(args: &Args, json: bool) -> ExitCode {
    match run(args) {
        Ok(report) => {
            let mut out = std::io::stdout().lock();
            for r in &report.recipients {
                let line = if json {
                    json_line(&r.address, &r.status)
                } else {
                    text_line(&r.address, &r.status)
                };
                let _ = writeln!(out, "{line}");
            }
            if args.verbose > 0 {
                print_attempts(&report);
            }
            ExitCode::from(status(&report))
        }
        Err(f) => crate::report_failure(f, json),
    }
}

fn run(args: &Args) -> Result<Report, Failure> {
    if let Some(option) = conflicts(args) {
        return Err(Failure::usage(format!(
            "{option} does not go with --mx (the mail exchangers are found in DNS)"
        )));
    }
    let message = read_message(args.message.as_deref())?;
    let (prefix, message) = sign(args, message)?;
    let (envelope, message): (Envelope, Vec<u8>) = match plan(args, &message, &prefix)? {
        Plan::Sendmail(tx) => (tx.into(), [&prefix[..], &message].concat()),
        Plan::Message(p) => {
            let body = message.get(p.body_offset..).unwrap_or_default();
            let whole = [&prefix[..], &p.headers, body].concat();
            (p.transaction.into(), whole)
        }
    };
    let message = normalize_line_endings(&message).into_owned();
    let pkix = crate::tls::config(args.ca_file.as_deref(), false)?;
    let local = match &args.mx_policy {
        Some(name) => parse_policy(name)?,
        None => LocalPolicy::Opportunistic,
    };
    let mut config = match &args.mx_test_answers {
        Some(path) => test_config(path)?,
        None => system_config(pkix.clone())?,
    };
    config.delivery.local = local;
    config.local_name.clone_from(&args.helo);
    config.pkix = pkix;
    config.seed = seed();
    if let Some(t) = args.timeout {
        config.timeouts.session = t;
    }
    Ok(deliver(&envelope, &message, &config))
}

/// DNS from the system's configuration (the AD bit trusted only from a
/// loopback resolver, else DNSSEC validated here from the IANA root), and
/// MTA-STS policies over HTTPS (verified by `pkix` when `--ca-file` names
/// one, else by the default roots).
fn system_config(pkix: Option<Arc<smtp_blocking::ClientConfig>>) -> Result<MxConfig, Failure> {
    let resolver = HickoryResolver::from_system().map_err(|e| Failure {
        status: EXIT_FAILURE,
        kind: "dns",
        code: None,
        message: format!("DNS: {e}"),
        accepted: Vec::new(),
        refused: Vec::new(),
    })?;
    let fetcher = match pkix {
        Some(c) => HttpsPolicyFetcher::new().tls_config(c),
        None => HttpsPolicyFetcher::new(),
    };
    let resolver: Arc<dyn BlockingResolver> = Arc::new(resolver);
    let fetcher: Arc<dyn BlockingPolicyFetcher> = Arc::new(fetcher);
    Ok(MxConfig::new(resolver, fetcher))
}

/// The answers of the hidden `--mx-test-answers FILE` (tests only: it is
/// not in `--help`): DNS answers and the port each loopback MX listens on,
/// as JSON, e.g. `{"mx": {"example.test": [[10, "mx.example.test"]]},
/// "addresses": {"mx.example.test": ["127.0.0.31"]}, "ports":
/// {"127.0.0.31": 2525}, "policies": {"example.test": "version: STSv1..."},
/// "txt": {"_mta-sts.example.test": ["v=STSv1; id=1;"]}}`. Every answer
/// counts as insecure (no DNSSEC).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct TestAnswers {
    mx: HashMap<String, Vec<(u16, String)>>,
    addresses: HashMap<String, Vec<IpAddr>>,
    txt: HashMap<String, Vec<String>>,
    policies: HashMap<String, String>,
    ports: HashMap<IpAddr, u16>,
}

fn test_config(path: &Path) -> Result<MxConfig, Failure> {
    let what = |e: &dyn std::fmt::Display| {
        Failure::usage(format!("--mx-test-answers {}: {e}", path.display()))
    };
    let text = std::fs::read_to_string(path).map_err(|e| what(&e))?;
    let answers: TestAnswers = serde_json::from_str(&text).map_err(|e| what(&e))?;
    let mut resolver = StaticResolver::new();
    for (name, records) in &answers.mx {
        let records: Vec<MxRecord> = records.iter().map(|(p, h)| MxRecord::new(*p, h)).collect();
        resolver = resolver.mx(name, &records, Security::Insecure);
    }
    for (name, ips) in &answers.addresses {
        resolver = resolver.address(name, ips, Security::Insecure);
    }
    for (name, records) in &answers.txt {
        let records: Vec<&str> = records.iter().map(String::as_str).collect();
        resolver = resolver.txt(name, &records, Security::Insecure);
    }
    let mut fetcher = StaticPolicyFetcher::new();
    for (domain, policy) in &answers.policies {
        fetcher = fetcher.policy(domain, policy);
    }
    let resolver: Arc<dyn BlockingResolver> = Arc::new(resolver);
    let fetcher: Arc<dyn BlockingPolicyFetcher> = Arc::new(fetcher);
    let mut config = MxConfig::new(resolver, fetcher);
    config.ports = answers.ports;
    config.timeouts.dns = Duration::from_secs(5);
    Ok(config)
}

/// The seed of the shuffle of equal MX preferences: spread, not secrecy,
/// is what it is for (RFC 5321 section 5.1), so the clock and the process
/// id do.
fn seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}

/// The exit status: 5 when a recipient may have the message without our
/// knowing (a retry may deliver it twice); 0 when every recipient has it;
/// 1 when some have it and others not; 4 when none has it and some were
/// deferred (safe to try again later); 3 when every one was bounced.
fn status(report: &Report) -> u8 {
    let has = |f: fn(&FinalStatus) -> bool| report.recipients.iter().any(|r| f(&r.status));
    let delivered = |s: &FinalStatus| matches!(s, FinalStatus::Delivered { .. });
    if has(|s| matches!(s, FinalStatus::Uncertain { .. })) {
        EXIT_UNCERTAIN
    } else if report.recipients.iter().all(|r| delivered(&r.status)) {
        0
    } else if has(delivered) {
        EXIT_PARTIAL
    } else if has(|s| matches!(s, FinalStatus::Deferred(_))) {
        EXIT_FAILURE
    } else {
        EXIT_REFUSED
    }
}

/// `host [ip]`.
fn at(host: &str, ip: &IpAddr) -> String {
    format!("{} [{ip}]", Escaped(host))
}

/// A recipient's line: the address, the outcome, and what decided it (the
/// server's text escaped).
fn text_line(address: &str, status: &FinalStatus) -> String {
    let address = Escaped(address);
    match status {
        FinalStatus::Delivered {
            host, ip, queue_id, ..
        } => {
            let id = queue_id.as_deref().map(Escaped);
            match id {
                Some(id) => format!("{address}: delivered to {}, queue id {id}", at(host, ip)),
                None => format!("{address}: delivered to {}", at(host, ip)),
            }
        }
        FinalStatus::Bounced(p) | FinalStatus::Deferred(p) => {
            let class = if matches!(status, FinalStatus::Bounced(_)) {
                "bounced"
            } else {
                "deferred"
            };
            let why = match (&p.reply, &p.reason) {
                (Some(reply), _) => format!("{reply}"),
                (None, Some(reason)) => format!("{} {reason}", p.status),
                (None, None) => p.status.to_string(),
            };
            match &p.server {
                Some((host, ip)) => format!("{address}: {class}: {why} ({})", at(host, ip)),
                None => format!("{address}: {class}: {why}"),
            }
        }
        FinalStatus::Uncertain { host, ip, .. } => format!(
            "{address}: uncertain: the end of the message went to {} and no reply came (it may \
             have been delivered: sending it again may deliver it twice)",
            at(host, ip)
        ),
    }
}

/// A recipient's line as JSON.
fn json_line(address: &str, status: &FinalStatus) -> String {
    let class = match status.class() {
        smtp_blocking::mx::Class::Delivered => "delivered",
        smtp_blocking::mx::Class::Bounced => "bounced",
        smtp_blocking::mx::Class::Deferred => "deferred",
        smtp_blocking::mx::Class::Uncertain => "uncertain",
    };
    let mut v = serde_json::json!({
        "recipient": address,
        "status": class,
        "enhanced_code": status.status().map(|s| s.to_string()),
    });
    let (server, reply) = match status {
        FinalStatus::Delivered {
            host,
            ip,
            queue_id,
            reply,
        } => {
            v["queue_id"] = serde_json::json!(queue_id);
            (Some((host, ip)), reply.as_ref())
        }
        FinalStatus::Bounced(p) | FinalStatus::Deferred(p) => {
            v["reason"] = serde_json::json!(p.reason.as_ref().map(ToString::to_string));
            (p.server.as_ref().map(|(h, i)| (h, i)), p.reply.as_ref())
        }
        FinalStatus::Uncertain { host, ip, reply } => (Some((host, ip)), reply.as_ref()),
    };
    v["mx"] = serde_json::json!(server.map(|(h, _)| h));
    v["ip"] = serde_json::json!(server.map(|(_, i)| i.to_string()));
    v["reply"] = serde_json::json!(reply.map(ToString::to_string));
    v.to_string()
}

/// `-v`: each destination's connections, in order, on stderr.
fn print_attempts(report: &Report) {
    for d in &report.domains {
        for c in &d.connections {
            eprintln!(
                "smtp-send: {}: {} with {:?}",
                Escaped(&d.destination),
                at(&c.host, &c.ip),
                c.tls
            );
        }
    }
}
