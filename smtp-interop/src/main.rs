//! The interoperability matrix: every case through every adapter
//! (`smtp-blocking`, `smtp-tokio`, `smtp-async-std`) against the real servers
//! `scripts/interop` starts on loopback (Postfix relaying to smtp-sink,
//! aiosmtpd, Dovecot LMTP, Exim). Prints one row per server x adapter x case and a
//! closing `N passed, N failed` line; exits non-zero when a cell failed.
//!
//! Every endpoint comes from the environment (see [`USAGE`]); the password is
//! read from `INTEROP_PASSWORD` and never printed.

#![forbid(unsafe_code)]

mod adapters;
mod capture;
mod cases;
mod store;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ClientConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use adapters::{AsyncStd, Blocking, Session, Tokio};
use cases::{Account, Case, Context, Offers, Server, Verdict};
use store::Store;

const USAGE: &str = "smtp-interop: run by scripts/interop, which sets
  INTEROP_CA             PEM file of the CA the servers' certificate is signed by
  INTEROP_USER, INTEROP_PASSWORD   the AUTH account
  POSTFIX_SMTP, POSTFIX_SMTPS      Postfix smtpd endpoints (host:port)
  POSTFIX_SINK_DIR, POSTFIX_UTF8_DIR   where smtp-sink and the pipe dump messages
  AIOSMTPD_SMTP, AIOSMTPD_SMTPS, AIOSMTPD_DIR
  DOVECOT_LMTP_UNIX, DOVECOT_LMTP_TCP, DOVECOT_MAIL_DIR
  EXIM_SMTP, EXIM_SMTPS, EXIM_SMTP_HELD, EXIM_MAIL_DIR, EXIM_MAINLOG
  POSTFIX_SMTP6, DOVECOT_LMTP_TCP6, EXIM_SMTP6   optional: the same on [::1]
  INTEROP_ONLY           optional: run only the servers named (comma-separated)";

/// The size limit configured for Postfix, aiosmtpd and Exim in `interop/`.
const SIZE_LIMIT: u64 = 1_048_576;

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set\n{USAGE}"))
}

/// An endpoint that may be absent (empty or unset).
fn optional(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn tls_config(ca: &str) -> Result<Arc<ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{ca}: {e}"))? {
        roots
            .add(cert.map_err(|e| format!("{ca}: {e}"))?)
            .map_err(|e| format!("{ca}: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn servers() -> Result<Vec<Server>, String> {
    Ok(vec![
        Server {
            name: "postfix",
            smtp: Some(env("POSTFIX_SMTP")?),
            ipv6: optional("POSTFIX_SMTP6"),
            smtps: Some(env("POSTFIX_SMTPS")?),
            held_smtp: None,
            lmtp_unix: None,
            lmtp_tcp: None,
            offers: Offers {
                starttls: true,
                auth: vec!["PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-256"],
                smtputf8: true,
                pipelining: true,
                chunking: true,
                size: Some(SIZE_LIMIT),
                dsn: true,
                pipe_connect: false,
            },
            mail_requires_tls: false,
            store: Store::Postfix {
                sink: PathBuf::from(env("POSTFIX_SINK_DIR")?),
                utf8: PathBuf::from(env("POSTFIX_UTF8_DIR")?),
            },
            sender: "alice@interop.test",
            recipients: ["bob@example.net", "carol@example.net", "dave@example.net"],
            unknown: "",
            refused: "refused@example.net",
            fails_after_data: "",
            utf8_recipient: "jösé@utf8.interop.test",
        },
        Server {
            name: "aiosmtpd",
            smtp: Some(env("AIOSMTPD_SMTP")?),
            ipv6: None,
            smtps: Some(env("AIOSMTPD_SMTPS")?),
            held_smtp: None,
            lmtp_unix: None,
            lmtp_tcp: None,
            offers: Offers {
                starttls: true,
                auth: vec!["PLAIN", "LOGIN"],
                smtputf8: true,
                pipelining: false,
                chunking: false,
                size: Some(SIZE_LIMIT),
                dsn: false,
                pipe_connect: false,
            },
            mail_requires_tls: true,
            store: Store::Aiosmtpd(PathBuf::from(env("AIOSMTPD_DIR")?)),
            sender: "alice@interop.test",
            recipients: ["bob@example.net", "carol@example.net", "dave@example.net"],
            unknown: "",
            refused: "refused@example.net",
            fails_after_data: "",
            utf8_recipient: "jösé@example.net",
        },
        Server {
            name: "dovecot",
            smtp: None,
            ipv6: optional("DOVECOT_LMTP_TCP6"),
            smtps: None,
            held_smtp: None,
            lmtp_unix: Some(env("DOVECOT_LMTP_UNIX")?),
            lmtp_tcp: Some(env("DOVECOT_LMTP_TCP")?),
            offers: Offers {
                pipelining: true,
                chunking: true,
                ..Offers::default()
            },
            mail_requires_tls: false,
            store: Store::Dovecot(PathBuf::from(env("DOVECOT_MAIL_DIR")?)),
            sender: "alice@interop.test",
            recipients: [
                "bob@interop.test",
                "carol@interop.test",
                "alice@interop.test",
            ],
            unknown: "nobody@interop.test",
            refused: "",
            fails_after_data: "broken@interop.test",
            utf8_recipient: "",
        },
        Server {
            name: "exim",
            smtp: Some(env("EXIM_SMTP")?),
            ipv6: optional("EXIM_SMTP6"),
            smtps: Some(env("EXIM_SMTPS")?),
            // A 1 s delay before the greeting (exim.conf's acl_connect).
            held_smtp: Some(env("EXIM_SMTP_HELD")?),
            lmtp_unix: None,
            lmtp_tcp: None,
            // interop/exim/exim.conf. Not configured, so n/a: AUTH (the
            // light daemon's authenticators would need a password source of
            // their own or Dovecot's socket; Postfix and aiosmtpd cover AUTH
            // already) and DSN (off in Exim unless dsn_advertise_hosts is
            // set, and a maildir keeps no envelope parameters to check them
            // against).
            offers: Offers {
                starttls: true,
                auth: Vec::new(),
                smtputf8: true,
                pipelining: true,
                chunking: true,
                size: Some(SIZE_LIMIT),
                dsn: false,
                pipe_connect: true,
            },
            mail_requires_tls: false,
            store: Store::Exim {
                mail: PathBuf::from(env("EXIM_MAIL_DIR")?),
                log: PathBuf::from(env("EXIM_MAINLOG")?),
            },
            sender: "alice@interop.test",
            recipients: ["bob@example.net", "carol@example.net", "dave@example.net"],
            unknown: "",
            // Denied by the RCPT ACL.
            refused: "refused@example.net",
            fails_after_data: "",
            utf8_recipient: "jösé@example.net",
        },
    ])
}

fn run_adapter<S: Session>(ctx: &Context, server: &Server, totals: &mut [usize; 3]) {
    for &case in Case::ALL {
        let started = Instant::now();
        let verdict = cases::run::<S>(ctx, server, case);
        let ms = started.elapsed().as_millis();
        let cell = match &verdict {
            Verdict::Pass(note) => {
                totals[0] += 1;
                format!("pass    {note} ({ms} ms)")
            }
            Verdict::Fail(why) => {
                totals[1] += 1;
                format!("FAIL    {why} ({ms} ms)")
            }
            Verdict::NotApplicable(why) => {
                totals[2] += 1;
                format!("n/a     {why}")
            }
        };
        println!(
            "| {:<9} | {:<9} | {:<24} | {cell}",
            server.name,
            S::NAME,
            case.name()
        );
    }
}

fn main() -> ExitCode {
    match real_main() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("smtp-interop: {e}");
            println!("0 passed, 1 failed");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> Result<bool, String> {
    let ctx = Context {
        tls: tls_config(&env("INTEROP_CA")?)?,
        account: Account {
            user: env("INTEROP_USER")?,
            password: env("INTEROP_PASSWORD")?,
        },
        lines: capture::Lines::install()?,
        run_id: format!("{}", std::process::id()),
        wait: Duration::from_secs(5),
    };
    let only = std::env::var("INTEROP_ONLY").ok();
    let mut totals = [0usize; 3];
    println!(
        "| {:<9} | {:<9} | {:<24} | result",
        "server", "adapter", "case"
    );
    println!(
        "|{}|{}|{}|{}",
        "-".repeat(11),
        "-".repeat(11),
        "-".repeat(26),
        "-".repeat(40)
    );
    for server in servers()? {
        if only
            .as_ref()
            .is_some_and(|o| !o.split(',').any(|n| n == server.name))
        {
            continue;
        }
        run_adapter::<Blocking>(&ctx, &server, &mut totals);
        run_adapter::<Tokio>(&ctx, &server, &mut totals);
        run_adapter::<AsyncStd>(&ctx, &server, &mut totals);
    }
    let [passed, failed, na] = totals;
    println!();
    println!("interop: {na} cells n/a (the server is not configured for the case)");
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}
