//! The fault sweep every adapter runs over real sockets: representative
//! sessions against a behavioural server that cuts the connection (close or
//! reset) after a sampled byte offset it has received or sent, or stalls
//! there until the client's short deadline passes ([`Fault`]). An adapter
//! implements [`SweepAdapter`] (one method: run a [`Plan`]) and calls
//! [`sweep`].
//!
//! For every run: it ends within a bound, and each message ends as the server
//! saw it: a success only for a message the server stored, with the
//! recipients it accepted; [`Delivery::NotSent`] never for a stored message;
//! a stored message the client did not see accepted is [`Delivery::Unknown`];
//! and when the server read everything the client wrote (close and stall:
//! the server drains its input), [`Delivery::Unknown`] exactly when the end
//! of the message is in that input and the transaction did not succeed.
//! The exhaustive sweep, every byte, is the core's (`smtp-sansio`'s
//! `fault_sweep` test); this one checks what the adapters add (transport
//! errors, resets, TLS, timers).

use std::sync::Arc;
use std::time::{Duration, Instant};

use smtp_sansio::{Delivery, RecipientDelivery};

use crate::{Fault, FaultAction, MockServer, ServerConfig, TestPki, Tls};

/// One message of a [`Plan`].
#[derive(Debug, Clone)]
pub struct Message {
    /// The reverse path.
    pub from: &'static str,
    /// The forward paths.
    pub to: Vec<&'static str>,
    /// The message, CRLF line endings.
    pub body: Vec<u8>,
    /// Send it through the adapter's reader form (`send_from_reader`), in
    /// chunks, rather than from memory.
    pub reader: bool,
}

/// A session an adapter runs.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Its name.
    pub name: &'static str,
    /// The server, without its fault.
    pub server: ServerConfig,
    /// Connect with LMTP (over TCP).
    pub lmtp: bool,
    /// STARTTLS, trusting the server's test CA for `localhost`.
    pub starttls: bool,
    /// `login(user, password)` after STARTTLS.
    pub login: Option<(&'static str, &'static str)>,
    /// The messages, in order, on one connection.
    pub messages: Vec<Message>,
}

/// What a message ended as, for the adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The transaction succeeded; the recipients the message was accepted for.
    Sent(Vec<String>),
    /// It failed (or the session failed before it): the error's delivery and,
    /// for [`smtp_sansio::Error::Uncertain`], each recipient's.
    Failed(Delivery, Vec<RecipientDelivery>),
}

/// The outcome of a failed step: `delivery`, and the recipients of `core`
/// when it is [`smtp_sansio::Error::Uncertain`].
#[must_use]
pub fn failed(delivery: Delivery, core: Option<&smtp_sansio::Error>) -> Outcome {
    match core {
        Some(smtp_sansio::Error::Uncertain { recipients, .. }) => {
            Outcome::Failed(delivery, recipients.clone())
        }
        _ => Outcome::Failed(delivery, Vec::new()),
    }
}

/// The outcome of a successful transaction.
#[must_use]
pub fn sent(result: &smtp_sansio::TransactionResult) -> Outcome {
    Outcome::Sent(
        result
            .accepted()
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect(),
    )
}

/// Asserts that `report` has no failure and prints its counts under `name`.
///
/// # Panics
///
/// When a run broke an expectation.
pub fn assert_clean(name: &str, report: &SweepReport) {
    let counts: Vec<String> = report
        .runs
        .iter()
        .map(|(plan, n)| format!("{plan}: {n}"))
        .collect();
    println!(
        "{name} fault sweep: {} runs ({}); outcomes: accepted {}, unknown {}, not sent {}, refused {}",
        report.total(),
        counts.join(", "),
        report.outcomes[0],
        report.outcomes[1],
        report.outcomes[2],
        report.outcomes[3]
    );
    assert!(
        report.failures.is_empty(),
        "{} of {} runs broke an expectation:\n{}",
        report.failures.len(),
        report.total(),
        report.failures.join("\n")
    );
    // Every kind of ending is reached, so the sweep covers them all.
    assert!(
        report.outcomes[0] > 0 && report.outcomes[1] > 0 && report.outcomes[2] > 0,
        "{:?}",
        report.outcomes
    );
}

/// An adapter under the sweep.
pub trait SweepAdapter {
    /// Runs `plan` against `server`, every wait bounded by `timeout`: connect
    /// (LMTP when [`Plan::lmtp`]), STARTTLS and login when asked, each message
    /// (even after a failure: it then fails at once), QUIT. Returns one
    /// [`Outcome`] per message; when connecting or a step before the messages
    /// fails, each message is `Failed` with that error's delivery.
    fn run(&mut self, server: &MockServer, plan: &Plan, timeout: Duration) -> Vec<Outcome>;
}

/// How much of the sweep to run.
#[derive(Debug, Clone, Copy)]
pub struct SweepConfig {
    /// Random offsets added to the boundaries, per direction and plan.
    pub random: usize,
    /// Stalls per direction and plan.
    pub stalls: usize,
    /// The client's deadline for every wait.
    pub timeout: Duration,
    /// Runs at once (each on its own server).
    pub threads: usize,
    /// The seed of the random offsets.
    pub seed: u64,
}

impl Default for SweepConfig {
    fn default() -> Self {
        SweepConfig {
            random: 4,
            stalls: 2,
            timeout: Duration::from_millis(500),
            threads: 8,
            seed: 0x5eed,
        }
    }
}

/// What a sweep did.
#[derive(Debug, Default)]
pub struct SweepReport {
    /// Runs per plan, in order.
    pub runs: Vec<(&'static str, usize)>,
    /// Every broken expectation: `plan / fault: what`.
    pub failures: Vec<String>,
    /// Outcomes seen: accepted, unknown, not sent, refused.
    pub outcomes: [usize; 4],
}

impl SweepReport {
    /// All runs.
    #[must_use]
    pub fn total(&self) -> usize {
        self.runs.iter().map(|(_, n)| n).sum()
    }
}

const BODY: &str = "Subject: sweep\r\n\r\n.a line with a dot\r\nsecond line\r\n";

fn message(i: usize, to: Vec<&'static str>) -> Message {
    Message {
        from: "a@example.org",
        to,
        body: format!("X-Sweep: {i}\r\n{BODY}").into_bytes(),
        reader: false,
    }
}

/// The six sessions: pipelined DATA, DATA without pipelining, BDAT in
/// several chunks, STARTTLS + AUTH + one message, LMTP with three recipients,
/// two messages on one connection.
#[must_use]
pub fn plans() -> Vec<Plan> {
    let data = |pipelining: bool| {
        let mut e = vec!["8BITMIME", "SIZE 10485760"];
        if pipelining {
            e.push("PIPELINING");
        }
        ServerConfig::default().extensions(&e)
    };
    let mut big = format!("X-Sweep: 0\r\n{BODY}").into_bytes();
    let line = [b"x".repeat(998), b"\r\n".to_vec()].concat();
    while big.len() < 150 * 1024 {
        big.extend_from_slice(&line);
    }
    vec![
        Plan {
            name: "pipelined DATA",
            server: data(true).refuse_recipient("refused@example.org"),
            lmtp: false,
            starttls: false,
            login: None,
            messages: vec![message(0, vec!["b@example.org", "refused@example.org"])],
        },
        Plan {
            name: "DATA without pipelining",
            server: data(false),
            lmtp: false,
            starttls: false,
            login: None,
            messages: vec![message(0, vec!["b@example.org"])],
        },
        Plan {
            name: "BDAT in several chunks",
            server: ServerConfig::default(),
            lmtp: false,
            starttls: false,
            login: None,
            messages: vec![Message {
                from: "a@example.org",
                to: vec!["b@example.org"],
                body: big,
                reader: true,
            }],
        },
        Plan {
            name: "STARTTLS, AUTH and one message",
            server: ServerConfig::default()
                .tls(Tls::StartTls)
                .user("user", "secret"),
            lmtp: false,
            starttls: true,
            login: Some(("user", "secret")),
            messages: vec![message(0, vec!["b@example.org"])],
        },
        Plan {
            name: "LMTP with three recipients",
            server: ServerConfig::lmtp_tcp().fail_after_data("full@example.org"),
            lmtp: true,
            starttls: false,
            login: None,
            messages: vec![message(
                0,
                vec!["b@example.org", "full@example.org", "d@example.org"],
            )],
        },
        Plan {
            name: "two messages on one connection",
            server: ServerConfig::default(),
            lmtp: false,
            starttls: false,
            login: None,
            messages: vec![
                message(0, vec!["b@example.org"]),
                message(1, vec!["c@example.org"]),
            ],
        },
    ]
}

/// A small deterministic generator (xorshift64*), for the sampled offsets.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        if n == 0 {
            0
        } else {
            usize::try_from(x % n as u64).unwrap_or(0)
        }
    }
}

/// Offsets in the client's stream where a command line or a message (the
/// final dot, a BDAT chunk) ends.
fn client_boundaries(rx: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut p = 0;
    let mut in_data = false;
    while p < rx.len() {
        let Some(eol) = find(&rx[p..], b"\r\n").map(|i| p + i + 2) else {
            break;
        };
        let line = &rx[p..eol - 2];
        if in_data {
            if line == b"." {
                in_data = false;
                out.push(eol);
            }
            p = eol;
            continue;
        }
        out.push(eol);
        let upper = line.to_ascii_uppercase();
        if upper == b"DATA" {
            in_data = true;
        } else if let Some(rest) = upper.strip_prefix(b"BDAT ") {
            let n: usize = String::from_utf8_lossy(rest)
                .split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            p = (eol + n).min(rx.len());
            out.push(p);
            continue;
        }
        p = eol;
    }
    out
}

/// How many messages' ends (final dot, complete `BDAT ... LAST`) are in the
/// client's stream.
fn ends_in(rx: &[u8]) -> usize {
    let mut ends = 0;
    let mut p = 0;
    let mut in_data = false;
    while p < rx.len() {
        let Some(eol) = find(&rx[p..], b"\r\n").map(|i| p + i + 2) else {
            break;
        };
        let line = rx[p..eol - 2].to_ascii_uppercase();
        p = eol;
        if in_data {
            if line == b"." {
                in_data = false;
                ends += 1;
            }
        } else if line == b"DATA" {
            in_data = true;
        } else if let Some(rest) = line.strip_prefix(b"BDAT ") {
            let text = String::from_utf8_lossy(rest).into_owned();
            let mut words = text.split(' ');
            let n: usize = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
            let last = words.next() == Some("LAST");
            if eol + n <= rx.len() && last {
                ends += 1;
            }
            p = eol + n;
        }
    }
    ends
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Offsets in the server's stream where a reply line ends.
fn server_boundaries(tx: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut p = 0;
    while let Some(i) = find(&tx[p..], b"\r\n") {
        p += i + 2;
        out.push(p);
    }
    out
}

/// The offsets to cut at: 0, each boundary and its neighbours, the end, and
/// `random` more; and `stalls` of them spread over the stream for stalling.
fn offsets(bounds: &[usize], total: usize, random: usize, rng: &mut Rng) -> Vec<usize> {
    let mut v = vec![0, total];
    for &b in bounds {
        v.extend([b.saturating_sub(1), b, b + 1]);
    }
    for _ in 0..random {
        v.push(rng.below(total + 1));
    }
    v.retain(|&o| o <= total);
    v.sort_unstable();
    v.dedup();
    v
}

fn spread(v: &[usize], n: usize) -> Vec<usize> {
    if v.is_empty() || n == 0 {
        return Vec::new();
    }
    let step = (v.len() / n).max(1);
    v.iter()
        .skip(step / 2)
        .step_by(step)
        .take(n)
        .copied()
        .collect()
}

/// One run's verdict; `Err` says what broke.
fn judge(
    plan: &Plan,
    fault: Fault,
    outcomes: &[Outcome],
    server: &MockServer,
    elapsed: Duration,
    bound: Duration,
) -> Result<(), String> {
    if elapsed > bound {
        return Err(format!("took {elapsed:?} (bound {bound:?})"));
    }
    if outcomes.len() != plan.messages.len() {
        return Err(format!(
            "{} outcomes for {} messages",
            outcomes.len(),
            plan.messages.len()
        ));
    }
    let stored = server.messages();
    let logs = server.connection_logs();
    let drained = matches!(
        fault,
        Fault::AfterReceived(_, FaultAction::Close | FaultAction::Stall)
            | Fault::AfterSent(_, FaultAction::Close | FaultAction::Stall)
    );
    let ends = logs.first().map_or(0, |l| ends_in(&l.received));
    for (i, (m, outcome)) in plan.messages.iter().zip(outcomes).enumerate() {
        let tag = format!("X-Sweep: {i}\r\n");
        let copies: Vec<_> = stored
            .iter()
            .filter(|s| s.data.starts_with(tag.as_bytes()))
            .collect();
        if copies.len() > 1 {
            return Err(format!("message {i} stored {} times", copies.len()));
        }
        let taken = copies.first();
        // The recipients the server accepted it for (under LMTP, not those
        // that fail after the message).
        let server_accepted: Vec<String> = taken.map_or_else(Vec::new, |s| {
            s.rcpt_to
                .iter()
                .map(|r| r.trim_matches(['<', '>']).to_owned())
                .filter(|r| !plan.server.fail_after_data.contains(r))
                .collect()
        });
        match outcome {
            Outcome::Sent(accepted) => {
                if taken.is_none() {
                    return Err(format!(
                        "message {i} reported sent, the server has not got it"
                    ));
                }
                if *accepted != server_accepted {
                    return Err(format!(
                        "message {i}: accepted {accepted:?}, the server took {server_accepted:?}"
                    ));
                }
            }
            Outcome::Failed(delivery, recipients) => {
                if taken.is_some() && *delivery != Delivery::Unknown {
                    return Err(format!("message {i}: {delivery:?}, but the server has it"));
                }
                if drained && (*delivery == Delivery::Unknown) != (i < ends) {
                    return Err(format!(
                        "message {i}: {delivery:?}, end in what the client wrote: {}",
                        i < ends
                    ));
                }
                for r in recipients {
                    if r.delivery == Delivery::Accepted && !server_accepted.contains(&r.address) {
                        return Err(format!("message {i}: {r:?} but the server did not take it"));
                    }
                    if !m.to.contains(&r.address.as_str()) {
                        return Err(format!("message {i}: unknown recipient {r:?}"));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Runs the sweep through the adapters `make()` returns (one per thread).
///
/// # Panics
///
/// When the test PKI cannot be made or a server cannot start.
pub fn sweep<A: SweepAdapter>(make: impl Fn() -> A + Sync, config: SweepConfig) -> SweepReport {
    #[allow(clippy::expect_used)] // a broken test environment, reported loudly
    let pki = Arc::new(TestPki::generate().expect("test PKI"));
    let mut report = SweepReport::default();
    let mut rng = Rng::new(config.seed);
    for plan in plans() {
        // The reference run, without a fault, gives the streams to cut.
        #[allow(clippy::expect_used)]
        let server =
            MockServer::start_with_pki(plan.server.clone(), pki.clone()).expect("reference server");
        let clean = make().run(&server, &plan, Duration::from_secs(10));
        server.wait_for_finished(1, Duration::from_secs(10));
        let ok = clean.iter().all(|o| matches!(o, Outcome::Sent(_)));
        let Some(log) = server.connection_logs().into_iter().next().filter(|_| ok) else {
            report.failures.push(format!(
                "{}: the run without a fault failed: {clean:?}",
                plan.name
            ));
            continue;
        };
        let rx = offsets(
            &client_boundaries(&log.received),
            log.received.len(),
            config.random,
            &mut rng,
        );
        let tx = offsets(
            &server_boundaries(&log.sent),
            log.sent.len(),
            config.random,
            &mut rng,
        );
        let mut faults = Vec::new();
        for action in [FaultAction::Close, FaultAction::Reset] {
            faults.extend(rx.iter().map(|&at| Fault::AfterReceived(at, action)));
            faults.extend(tx.iter().map(|&at| Fault::AfterSent(at, action)));
        }
        let stalls = spread(&rx, config.stalls)
            .into_iter()
            .map(|at| Fault::AfterReceived(at, FaultAction::Stall))
            .chain(
                spread(&tx, config.stalls)
                    .into_iter()
                    .map(|at| Fault::AfterSent(at, FaultAction::Stall)),
            );
        faults.extend(stalls);
        let results = run_faults(&make, &plan, &faults, &pki, config);
        for (fault, verdict, outcomes) in results {
            for o in &outcomes {
                let k = match o {
                    Outcome::Sent(_) => 0,
                    Outcome::Failed(Delivery::Unknown, _) => 1,
                    Outcome::Failed(Delivery::NotSent, _) => 2,
                    Outcome::Failed(..) => 3,
                };
                report.outcomes[k] += 1;
            }
            if let Err(why) = verdict {
                report
                    .failures
                    .push(format!("{} / {fault:?}: {why} ({outcomes:?})", plan.name));
            }
        }
        report.runs.push((plan.name, faults.len()));
    }
    report
}

type Verdict = (Fault, Result<(), String>, Vec<Outcome>);

fn run_faults<A: SweepAdapter>(
    make: &(impl Fn() -> A + Sync),
    plan: &Plan,
    faults: &[Fault],
    pki: &Arc<TestPki>,
    config: SweepConfig,
) -> Vec<Verdict> {
    let threads = config.threads.max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut all: Vec<Verdict> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut adapter = make();
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&fault) = faults.get(i) else {
                            break;
                        };
                        mine.push((i, one(&mut adapter, plan, fault, pki, config)));
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect::<Vec<_>>()
    })
    .into_iter()
    .map(|(_, v)| v)
    .collect();
    all.sort_by_key(|(f, _, _)| format!("{f:?}"));
    all
}

fn one<A: SweepAdapter>(
    adapter: &mut A,
    plan: &Plan,
    fault: Fault,
    pki: &Arc<TestPki>,
    config: SweepConfig,
) -> Verdict {
    let server_config = plan
        .server
        .clone()
        .fault(fault)
        .read_timeout(config.timeout * 20);
    let server = match MockServer::start_with_pki(server_config, pki.clone()) {
        Ok(s) => s,
        Err(e) => return (fault, Err(format!("server: {e}")), Vec::new()),
    };
    let start = Instant::now();
    let outcomes = adapter.run(&server, plan, config.timeout);
    let elapsed = start.elapsed();
    // Everything the connection read is in its log once its thread ended.
    server.wait_for_finished(server.connections(), config.timeout * 20);
    // A stalled wait ends at its deadline; every other step is quick. The
    // bound is generous for a loaded machine; a hang would blow it.
    let bound = config.timeout * 4 + Duration::from_secs(5);
    let verdict = judge(plan, fault, &outcomes, &server, elapsed, bound);
    (fault, verdict, outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_and_ends() {
        let rx = b"EHLO x\r\nMAIL FROM:<a>\r\nDATA\r\nhi\r\n.\r\nBDAT 3 LAST\r\nabcQUIT\r\n";
        let b = client_boundaries(rx);
        assert_eq!(b, [8, 23, 29, 36, 49, 52, 58]);
        assert_eq!(ends_in(rx), 2);
        assert_eq!(
            ends_in(&rx[..51]),
            1,
            "a BDAT LAST chunk cut short is no end"
        );
        assert_eq!(
            server_boundaries(b"220 a\r\n250-b\r\n250 c\r\n"),
            [7, 14, 21]
        );
    }

    #[test]
    fn offsets_cover_boundaries_and_stay_in_range() {
        let mut rng = Rng::new(1);
        let v = offsets(&[5, 10], 12, 3, &mut rng);
        for o in [0, 4, 5, 6, 9, 10, 11, 12] {
            assert!(v.contains(&o), "{o} in {v:?}");
        }
        assert!(v.iter().all(|&o| o <= 12));
        assert_eq!(spread(&[1, 2, 3, 4, 5, 6], 2), [2, 5]);
    }
}
