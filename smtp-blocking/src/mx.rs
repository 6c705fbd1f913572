//! Direct delivery to a domain's mail exchangers (feature `mx`): [`deliver`]
//! runs one [`smtp_mx::Delivery`] (the sans-IO machine that makes every
//! decision: MX order, null and implicit MX, MTA-STS, DANE, REQUIRETLS, the
//! TLS plan of each connection, the per-recipient classification) to its
//! end, and returns its [`Report`]. It is the blocking twin of
//! `smtp_async::mx::deliver`: the same loop
//! ([`smtp_adapter::mx::run::Run`]) and the same decisions; this module is
//! the I/O calls.
//!
//! * DNS questions go to the [`BlockingResolver`] of the [`MxConfig`], each
//!   given [`MxTimeouts::dns`]; policy fetches to its
//!   [`BlockingPolicyFetcher`], given [`MxTimeouts::policy_fetch`] (a body
//!   over [`MAX_POLICY_BODY`] bytes is cut there, so that the engine
//!   refuses it). [`StaticResolver`] and [`StaticPolicyFetcher`] answer from
//!   maps.
//! * Each connection is a [`SmtpClient::builder`] with the TLS its plan
//!   names (opportunistic or required STARTTLS, PKIX verification by
//!   [`MxConfig::pkix`], DANE inside the handshake); a TLS configuration
//!   that cannot be built fails the connection, never plaintext instead.
//!   Each transaction is one [`SmtpClient::send`], then QUIT.
//!
//! Requests are carried out in parallel, each on a thread of its own
//! (scoped: every one has ended when [`deliver`] returns), up to
//! [`MxConfig::concurrency`] lookups, fetches and open connections at once,
//! so that a slow destination does not hold the others (with
//! `concurrency` 1: one lookup, fetch or connection at a time, in the order
//! the engine asks for them). A request whose thread cannot be started is
//! carried out on the calling thread.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use smtp_blocking::Envelope;
//! use smtp_blocking::mx::{
//!     Class, MxConfig, MxRecord, Security, StaticPolicyFetcher, StaticResolver, deliver,
//! };
//!
//! // Answers given in advance (a resolver over the system's DNS goes here).
//! let resolver = StaticResolver::new()
//!     .mx("example.net", &[MxRecord::new(10, "mx.example.net")], Security::Insecure)
//!     .address("mx.example.net", &["192.0.2.25".parse()?], Security::Insecure);
//! let config = MxConfig::new(Arc::new(resolver), Arc::new(StaticPolicyFetcher::new()));
//! let envelope = Envelope::parse("me@example.org", &["you@example.net"])?;
//! let report = deliver(&envelope, b"Subject: hi\r\n\r\nhello\r\n", &config);
//! for r in &report.recipients {
//!     println!("{}: {:?}", r.address, r.status.class());
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread;

use smtp_adapter::mx::run::{Done, Job, Run};
use smtp_sansio::Envelope;

use crate::SmtpClient;

pub use smtp_adapter::mx::{
    Answer, BlockingPolicyFetcher, BlockingResolver, Class, DEFAULT_CONCURRENCY, DeliveryConfig,
    DnsAnswer, FinalStatus, LocalPolicy, MAX_POLICY_BODY, MessageSecurity, MxRecord, MxTimeouts,
    PolicyFetch, Query, Rcode, Report, Security, StaticPolicyFetcher, StaticResolver, StsCache,
    Tlsa,
};
pub use smtp_adapter::mx::{Delivery, smtp_mx};

/// What a [`deliver`] needs besides the message
/// ([`smtp_adapter::mx::MxConfig`] over a [`BlockingResolver`] and a
/// [`BlockingPolicyFetcher`]); [`MxConfig::new`] takes the two.
pub type MxConfig = smtp_adapter::mx::MxConfig<dyn BlockingResolver, dyn BlockingPolicyFetcher>;

/// Delivers `message` to each recipient of `envelope` through the mail
/// exchangers of its domain, as the [`MxConfig`] says, and reports each
/// recipient's final status (see the [module](self)).
///
/// The message's own demands come from the envelope (the `REQUIRETLS`
/// parameter of [`Envelope::requiretls`]) and its header (`TLS-Required:
/// No`, RFC 8689 section 5).
#[must_use]
pub fn deliver(envelope: &Envelope, message: &[u8], config: &MxConfig) -> Report {
    let mut run: Run<'_, SmtpClient> = Run::start(envelope, message, config);
    let (tx, rx) = mpsc::channel();
    thread::scope(|scope| {
        loop {
            while let Some(job) = run.next_job() {
                // The job waits in a slot its thread empties, so that it
                // can be taken back when no thread can be started.
                let slot = Arc::new(Mutex::new(Some(job)));
                let (tx, theirs) = (tx.clone(), Arc::clone(&slot));
                let work = move || {
                    if let Some(job) = take(&theirs) {
                        drop(tx.send(execute(job, message, config)));
                    }
                };
                if thread::Builder::new().spawn_scoped(scope, work).is_err() {
                    if let Some(job) = take(&slot) {
                        run.complete(execute(job, message, config));
                    }
                }
            }
            if run.is_idle() {
                break;
            }
            // Every job under way sends its end (`tx`, kept here, keeps the
            // channel open), so `recv` returns.
            match rx.recv() {
                Ok(done) => run.complete(done),
                Err(_) => break,
            }
        }
    });
    run.finish(config)
}

/// What `slot` holds, taken out.
fn take<T>(slot: &Mutex<Option<T>>) -> Option<T> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// Carries out `job`.
fn execute(job: Job<SmtpClient>, message: &[u8], config: &MxConfig) -> Done<SmtpClient> {
    let t = config.timeouts;
    smtp_adapter::mx_job!(
        job,
        message,
        |name: String, query| Some(config.resolver.lookup_blocking(&name, query, t.dns)),
        |url: String| Some(config.policy_fetcher.fetch_blocking(&url, t.policy_fetch));
    )
}
