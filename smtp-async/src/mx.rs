//! Direct delivery to a domain's mail exchangers (feature `mx`): [`deliver`]
//! runs one [`smtp_mx::Delivery`] (the sans-IO machine that makes every
//! decision: MX order, null and implicit MX, MTA-STS, DANE, REQUIRETLS, the
//! TLS plan of each connection, the per-recipient classification) to its
//! end on the runtime `R`, and returns its [`Report`].
//!
//! The driver only moves bytes and answers:
//!
//! * DNS questions go to the [`Resolver`] of the [`MxConfig`], each bounded
//!   by [`MxTimeouts::dns`] (past it, the engine hears
//!   [`Rcode::Timeout`]). [`StaticResolver`] answers from a map: for tests,
//!   and for callers who resolve elsewhere. A resolver over hickory (DNSSEC
//!   validated in the process with `dnssec-ring`, or the AD bit trusted from
//!   a loopback validating resolver only) is not here yet.
//! * MTA-STS policy fetches go to the [`PolicyFetcher`], bounded by
//!   [`MxTimeouts::policy_fetch`]; a body over [`MAX_POLICY_BODY`] bytes is
//!   cut there (one byte more, so that the engine refuses it).
//! * Each connection is made with [`SmtpClient::builder`] and the TLS mode
//!   its plan asks for: no STARTTLS for a plain plan; opportunistic STARTTLS
//!   without certificate checks (Postfix's `may`); required STARTTLS without
//!   checks (`encrypt`); required STARTTLS verified by the
//!   [`MxConfig::pkix`] configuration for the plan's name (MTA-STS, local
//!   `verify`, REQUIRETLS); required STARTTLS verified inside the handshake
//!   by a [`DaneVerifier`](smtp_adapter::dane::DaneVerifier) built from the
//!   plan's TLSA records. A configuration that cannot be built fails the
//!   connection as a TLS failure: never plaintext instead.
//! * Each transaction is one [`SmtpClient::send`] of the message to the
//!   recipients the engine names, then QUIT.
//!
//! Requests are carried out concurrently: every request the engine has
//! handed out, up to [`MxConfig::concurrency`] lookups, fetches and open
//! connections at once (16 by default), on the task that awaits
//! [`deliver`], so that a slow destination does not hold the others. The
//! loop itself is [`smtp_adapter::mx::run::Run`], shared with the blocking
//! driver; this module is the I/O calls.
//!
//! The MTA-STS cache ([`MxConfig::sts_cache`]) is read when a delivery
//! starts and replaced by the engine's updated cache when it ends.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use smtp_async::Envelope;
//! use smtp_async::mx::{
//!     HttpsPolicyFetcher, MxConfig, MxRecord, Security, StaticResolver, deliver,
//! };
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Answers given in advance; smtp-mx-hickory's resolver goes here.
//! let resolver = StaticResolver::new()
//!     .mx("example.net", &[MxRecord::new(10, "mx.example.net")], Security::Insecure)
//!     .address("mx.example.net", &["192.0.2.25".parse()?], Security::Insecure);
//! let fetcher = HttpsPolicyFetcher::<smtp_tokio::Tokio>::new();
//! let config = MxConfig::new(Arc::new(resolver), Arc::new(fetcher));
//! let envelope = Envelope::parse("me@example.org", &["you@example.net"])?;
//! let report = deliver::<smtp_tokio::Tokio>(&envelope, b"Subject: hi\r\n\r\nhello\r\n", &config).await;
//! for r in &report.recipients {
//!     println!("{}: {:?}", r.address, r.status.class());
//! }
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use smtp_adapter::mx::run::{Done, Run};
use smtp_sansio::Envelope;

use crate::client::SmtpClient;
use crate::runtime::{Runtime, before};

pub use smtp_adapter::mx::{
    Answer, BoxFuture, Class, DEFAULT_CONCURRENCY, DeliveryConfig, DnsAnswer, FinalStatus,
    LocalPolicy, MAX_POLICY_BODY, MessageSecurity, MxRecord, MxTimeouts, PolicyFetch,
    PolicyFetcher, Query, Rcode, Report, Resolver, Security, StaticPolicyFetcher, StaticResolver,
    StsCache, Tlsa,
};
pub use smtp_mx::{self, Delivery};

mod https;
pub use https::{HttpsFetchError, HttpsPolicyFetcher, HttpsPolicyOptions, PolicyFetchTimeouts};

/// What a [`deliver`] needs besides the message
/// ([`smtp_adapter::mx::MxConfig`] over an async [`Resolver`] and
/// [`PolicyFetcher`]); [`MxConfig::new`] takes the two.
pub type MxConfig = smtp_adapter::mx::MxConfig<dyn Resolver, dyn PolicyFetcher>;

/// A job under way.
type Running<'a, R> = Pin<Box<dyn Future<Output = Done<SmtpClient<R>>> + Send + 'a>>;

/// Delivers `message` to each recipient of `envelope` through the mail
/// exchangers of its domain, as the [`MxConfig`] says, and reports each
/// recipient's final status (see the [module](self)).
///
/// The message's own demands come from the envelope (the `REQUIRETLS`
/// parameter of [`Envelope::requiretls`]) and its header (`TLS-Required:
/// No`, RFC 8689 section 5).
pub async fn deliver<R: Runtime>(envelope: &Envelope, message: &[u8], config: &MxConfig) -> Report {
    let mut run: Run<'_, SmtpClient<R>> = Run::start(envelope, message, config);
    let mut running: Vec<Running<'_, R>> = Vec::new();
    loop {
        while let Some(job) = run.next_job() {
            running.push(Box::pin(async move {
                smtp_adapter::mx_job!(
                    job,
                    message,
                    |name, query| resolve::<R>(config, name, query),
                    |url| fetch_policy::<R>(config, url);
                    .await
                )
            }));
        }
        if run.is_idle() {
            break;
        }
        let done = first_done(&mut running).await;
        run.complete(done);
    }
    run.finish(config)
}

/// The output of whichever of `running` ends first, that one removed. Not
/// to be called with `running` empty (it would never end).
async fn first_done<T>(running: &mut Vec<Pin<Box<dyn Future<Output = T> + Send + '_>>>) -> T {
    std::future::poll_fn(|cx| {
        for k in 0..running.len() {
            if let Poll::Ready(done) = running[k].as_mut().poll(cx) {
                drop(running.swap_remove(k));
                return Poll::Ready(done);
            }
        }
        Poll::Pending
    })
    .await
}

/// The resolver's answer to `query` for `name`; `None` past the DNS
/// timeout.
async fn resolve<R: Runtime>(config: &MxConfig, name: String, query: Query) -> Option<Answer> {
    let deadline = R::now() + config.timeouts.dns;
    before::<R, _>(deadline, config.resolver.lookup(&name, query)).await
}

/// The policy fetch; `None` past its time limit.
async fn fetch_policy<R: Runtime>(config: &MxConfig, url: String) -> Option<PolicyFetch> {
    let deadline = R::now() + config.timeouts.policy_fetch;
    before::<R, _>(deadline, config.policy_fetcher.fetch(&url)).await
}
