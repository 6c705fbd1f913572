//! A named scenario: the mail exchangers it starts, the policies the policy
//! server answers, the MTA-STS cache it starts from, the delivery's
//! settings, and what it asserts: each recipient's class and enhanced code,
//! each destination's ordered (MX host, address) attempts, that no server
//! saw `MAIL FROM` in plaintext where a policy forbids it, and its own
//! further checks.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use smtp_async::Envelope;
use smtp_async::mx::{
    Class, FinalStatus, LocalPolicy, MxConfig, MxTimeouts, PolicyFetcher, Report, Resolver,
    StsCache, deliver,
};
use smtp_mx::sts::parse_policy;
use smtp_tokio::Tokio;

use crate::finger::{self, Verdict};
use crate::policy::{Answer, PolicyServer};
use crate::servers::{self, Mx, Running, ip};
use crate::{Failure, pki::LabPki};

/// The message every scenario sends.
pub const MESSAGE: &[u8] =
    b"From: sender@lab.test\r\nTo: lab@lab.test\r\nSubject: mx lab\r\n\r\nhello from the lab\r\n";

/// The same with the header `TLS-Required: No` (RFC 8689 section 5).
pub const MESSAGE_TLS_REQUIRED_NO: &[u8] = b"From: sender@lab.test\r\nTo: lab@lab.test\r\nSubject: mx lab\r\nTLS-Required: No\r\n\r\nhello from the lab\r\n";

/// Which resolver a scenario uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dns {
    /// hickory trusting the AD bit of Unbound on 127.0.0.1:53.
    TrustingAd,
    /// hickory validating in the process with the lab's trust anchor.
    Validating,
}

/// A check of its own, run after the common ones.
pub type Extra = fn(&Outcome<'_>) -> Result<(), String>;

/// One scenario (built with the setters below).
#[derive(Clone)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// The recipients.
    pub to: Vec<&'static str>,
    /// The mail exchangers to start.
    pub mxs: Vec<(u8, Mx)>,
    /// The policy server's answers to set first.
    pub policies: Vec<(&'static str, Answer)>,
    /// Cache entries to start from: domain, id, policy text, and how many
    /// seconds ago it was fetched.
    pub cache: Vec<(&'static str, &'static str, &'static str, u64)>,
    /// The local TLS policy.
    pub local: LocalPolicy,
    /// Whether the message carries REQUIRETLS.
    pub requiretls: bool,
    /// The message.
    pub message: &'static [u8],
    /// The session timeout (every SMTP wait).
    pub session_timeout: Duration,
    /// The resolver.
    pub dns: Dns,
    /// Each recipient's wanted class and enhanced code.
    pub want: Vec<(Class, Option<&'static str>)>,
    /// Each destination's wanted attempts (MX host, last octet).
    pub attempts: Vec<Vec<(&'static str, u8)>>,
    /// Whether a policy forbids plaintext (DANE, MTA-STS enforce,
    /// REQUIRETLS, local verify): no server may see `MAIL FROM` in
    /// plaintext.
    pub guarded: bool,
    /// The servers (last octets) that may not see `MAIL FROM` in plaintext
    /// when only some destinations have such a policy.
    pub guarded_at: Vec<u8>,
    /// Further checks.
    pub extra: Vec<Extra>,
    /// The destination posttls-finger is asked about, when it judges this
    /// scenario too.
    pub oracle: Option<&'static str>,
}

impl Scenario {
    /// A scenario named `name` delivering to `to`.
    pub fn new(name: &str, to: &[&'static str]) -> Scenario {
        Scenario {
            name: name.to_owned(),
            to: to.to_vec(),
            mxs: Vec::new(),
            policies: Vec::new(),
            cache: Vec::new(),
            local: LocalPolicy::Opportunistic,
            requiretls: false,
            message: MESSAGE,
            session_timeout: Duration::from_secs(5),
            dns: Dns::TrustingAd,
            want: Vec::new(),
            attempts: Vec::new(),
            guarded: false,
            guarded_at: Vec::new(),
            extra: Vec::new(),
            oracle: None,
        }
    }

    /// Starts a mail exchanger on 127.0.0.`last`:25.
    pub fn mx(mut self, last: u8, mx: Mx) -> Scenario {
        self.mxs.push((last, mx));
        self
    }

    /// Sets the policy server's answer for `domain`.
    pub fn policy(mut self, domain: &'static str, answer: Answer) -> Scenario {
        self.policies.push((domain, answer));
        self
    }

    /// Starts from a cached policy for `domain`.
    pub fn cached(
        mut self,
        domain: &'static str,
        id: &'static str,
        policy: &'static str,
        age: u64,
    ) -> Scenario {
        self.cache.push((domain, id, policy, age));
        self
    }

    /// Sets the local policy.
    pub fn local(mut self, local: LocalPolicy) -> Scenario {
        self.local = local;
        self
    }

    /// Marks the message REQUIRETLS.
    pub fn requiretls(mut self) -> Scenario {
        self.requiretls = true;
        self
    }

    /// Sends the message with `TLS-Required: No`.
    pub fn tls_required_no(mut self) -> Scenario {
        self.message = MESSAGE_TLS_REQUIRED_NO;
        self
    }

    /// Sets the session timeout.
    pub fn session_timeout(mut self, timeout: Duration) -> Scenario {
        self.session_timeout = timeout;
        self
    }

    /// Uses the resolver `dns`.
    pub fn dns(mut self, dns: Dns) -> Scenario {
        self.dns = dns;
        self
    }

    /// The next recipient's wanted outcome.
    pub fn want(mut self, class: Class, code: Option<&'static str>) -> Scenario {
        self.want.push((class, code));
        self
    }

    /// The next destination's wanted attempts.
    pub fn attempts(mut self, attempts: &[(&'static str, u8)]) -> Scenario {
        self.attempts.push(attempts.to_vec());
        self
    }

    /// No server may see `MAIL FROM` in plaintext.
    pub fn guarded(mut self) -> Scenario {
        self.guarded = true;
        self
    }

    /// Has posttls-finger judge `domain` too.
    pub fn oracle(mut self, domain: Option<&'static str>) -> Scenario {
        self.oracle = domain;
        self
    }

    /// The server on 127.0.0.`last` may not see `MAIL FROM` in plaintext.
    pub fn guarded_at(mut self, last: u8) -> Scenario {
        self.guarded_at.push(last);
        self
    }

    /// Adds a check.
    pub fn check(mut self, extra: Extra) -> Scenario {
        self.extra.push(extra);
        self
    }
}

/// What a scenario's run left, for its checks.
pub struct Outcome<'a> {
    /// The delivery's report.
    pub report: Report,
    /// The mail exchangers, still running.
    pub mxs: Vec<Running>,
    /// How long the delivery took.
    pub elapsed: Duration,
    /// The MTA-STS cache after it.
    pub cache: StsCache,
    /// The lab.
    pub lab: &'a Lab,
    /// The scenario.
    pub scenario: &'a Scenario,
}

impl Outcome<'_> {
    /// The server on 127.0.0.`last`.
    pub fn server(&self, last: u8) -> Result<&smtp_testkit::MockServer, String> {
        self.mxs
            .iter()
            .find(|r| r.last == last)
            .and_then(|r| r.server.as_ref())
            .ok_or_else(|| format!("no server on 127.0.0.{last}"))
    }

    /// Runs the same delivery again, from `cache`; its report and the
    /// cache it leaves.
    pub fn again_from(&self, cache: StsCache) -> Result<(Report, StsCache), String> {
        let cache = Arc::new(Mutex::new(cache));
        let (report, _) = self
            .lab
            .deliver(self.scenario, cache.clone())
            .map_err(|e| e.0)?;
        let cache = cache.lock().map_err(|_| "a poisoned cache")?.clone();
        Ok((report, cache))
    }
}

/// What every scenario shares.
pub struct Lab {
    /// The certificates.
    pub pki: LabPki,
    /// The policy server.
    pub policy: PolicyServer,
    /// The resolver trusting the AD bit.
    pub trusting: Arc<dyn Resolver>,
    /// The resolver validating in the process.
    pub validating: Arc<dyn Resolver>,
    /// The policy fetcher (trusting the lab CA).
    pub fetcher: Arc<dyn PolicyFetcher>,
    /// The runtime the deliveries run on.
    pub runtime: tokio::runtime::Runtime,
    /// posttls-finger's configuration directory.
    pub finger_conf: std::path::PathBuf,
}

/// Our DANE verdict and posttls-finger's on one scenario.
pub struct Judged {
    /// Ours, from the report.
    pub ours: Verdict,
    /// posttls-finger's.
    pub theirs: Verdict,
    /// The line of its output that says it.
    pub line: String,
    /// Its whole output.
    pub output: String,
}

/// What a scenario's run gave.
pub struct Ran {
    /// How long the delivery took.
    pub elapsed: Duration,
    /// The checks' result.
    pub checked: Result<(), String>,
    /// Our DANE verdict and posttls-finger's (with its output), when it
    /// judged the scenario too.
    pub oracle: Option<Result<Judged, String>>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Lab {
    /// The cache a scenario starts from.
    fn cache_of(sc: &Scenario) -> Result<StsCache, Failure> {
        let mut cache = StsCache::new();
        let now = unix_now();
        for (domain, id, text, age) in &sc.cache {
            let policy = parse_policy(text.as_bytes())
                .map_err(|e| Failure(format!("the cached policy of {domain}: {e}")))?;
            let _ = cache.fetched(domain, id, Ok::<_, ()>(policy), now.saturating_sub(*age));
        }
        Ok(cache)
    }

    /// Runs `sc`'s delivery with `cache`; the report and the time taken.
    pub fn deliver(
        &self,
        sc: &Scenario,
        cache: Arc<Mutex<StsCache>>,
    ) -> Result<(Report, Duration), Failure> {
        let resolver = match sc.dns {
            Dns::TrustingAd => self.trusting.clone(),
            Dns::Validating => self.validating.clone(),
        };
        let mut config = MxConfig::new(resolver, self.fetcher.clone());
        config.local_name = Some("client.lab.test".to_owned());
        config.delivery.local = sc.local;
        config.seed = 1;
        config.sts_cache = cache;
        config.timeouts = MxTimeouts {
            dns: Duration::from_secs(5),
            policy_fetch: Duration::from_secs(5),
            session: sc.session_timeout,
        };
        config.pkix = Some(self.pki.policy.client_config());
        let mut envelope = Envelope::parse("sender@lab.test", &sc.to)
            .map_err(|e| Failure(format!("the envelope: {e}")))?;
        if sc.requiretls {
            envelope = envelope.requiretls();
        }
        let start = Instant::now();
        let report = self
            .runtime
            .block_on(deliver::<Tokio>(&envelope, sc.message, &config));
        Ok((report, start.elapsed()))
    }

    /// Runs `sc` and checks it: `Ok` or what went wrong.
    pub fn run(&self, sc: &Scenario) -> Result<Ran, String> {
        for (domain, answer) in &sc.policies {
            self.policy.set(domain, answer.clone());
        }
        let mxs = servers::start(&self.pki, &sc.mxs).map_err(|e| e.0)?;
        let cache = Arc::new(Mutex::new(Lab::cache_of(sc).map_err(|e| e.0)?));
        let (report, elapsed) = self.deliver(sc, cache.clone()).map_err(|e| e.0)?;
        let cache = cache.lock().map_err(|_| "a poisoned cache")?.clone();
        let outcome = Outcome {
            report,
            mxs,
            elapsed,
            cache,
            lab: self,
            scenario: sc,
        };
        let checked = check(&outcome).map_err(|e| format!("{e}\n    report: {:?}", outcome.report));
        let oracle = sc.oracle.map(|domain| {
            let ours = finger::ours(&outcome);
            finger::theirs(&self.finger_conf, domain)
                .map(|(theirs, line, output)| Judged {
                    ours,
                    theirs,
                    line,
                    output,
                })
                .map_err(|e| e.0)
        });
        Ok(Ran {
            elapsed,
            checked,
            oracle,
        })
    }
}

/// An outcome's enhanced status as text.
pub fn code(s: &FinalStatus) -> Option<String> {
    s.status().map(|e| e.to_string())
}

/// The common checks, then the scenario's own.
fn check(o: &Outcome<'_>) -> Result<(), String> {
    let sc = o.scenario;
    let r = &o.report;
    if r.recipients.len() != sc.want.len() {
        return Err(format!(
            "{} recipients reported, {} wanted",
            r.recipients.len(),
            sc.want.len()
        ));
    }
    for (got, (class, want_code)) in r.recipients.iter().zip(&sc.want) {
        let got_code = code(&got.status);
        if got.status.class() != *class || got_code.as_deref() != *want_code {
            return Err(format!(
                "{}: {:?} {:?}, wanted {class:?} {want_code:?}",
                got.address,
                got.status.class(),
                got_code
            ));
        }
    }
    if r.domains.len() != sc.attempts.len() {
        return Err(format!(
            "{} destinations reported, {} wanted",
            r.domains.len(),
            sc.attempts.len()
        ));
    }
    for (d, want) in r.domains.iter().zip(&sc.attempts) {
        let want: Vec<_> = want
            .iter()
            .map(|(h, n)| ((*h).to_owned(), ip(*n)))
            .collect();
        if d.attempts() != want {
            return Err(format!(
                "{}: attempts {:?}, wanted {want:?}",
                d.destination,
                d.attempts()
            ));
        }
    }
    if sc.guarded || !sc.guarded_at.is_empty() {
        let seen: Vec<u8> = servers::downgraded(&o.mxs)
            .into_iter()
            .filter(|n| sc.guarded || sc.guarded_at.contains(n))
            .collect();
        if !seen.is_empty() {
            let at: Vec<String> = seen.iter().map(|n| format!("127.0.0.{n}")).collect();
            return Err(format!(
                "downgrade: MAIL FROM in plaintext at {}",
                at.join(", ")
            ));
        }
    }
    for extra in &sc.extra {
        extra(o)?;
    }
    Ok(())
}
