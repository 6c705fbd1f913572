//! The fault sweep every adapter runs over real sockets: representative
//! sessions against a behavioural server that cuts the connection (close,
//! reset, reset once the client is idle) after a sampled byte offset it has
//! received or sent, or stalls there until the client's short deadline
//! passes ([`Fault`]); and sessions where the server refuses (the sender,
//! every recipient, a BDAT chunk, the end of the message with 4xx, 5xx or
//! 421) and then resets, closes or stalls ([`Fault::AfterRefusal`]). An
//! adapter implements [`SweepAdapter`] (one method: run a [`Plan`]) and
//! calls [`sweep`].
//!
//! For every run: it ends within the client's deadline plus one second, and
//! each message ends as the server saw it: a success only for a message the
//! server stored, with the recipients it accepted; [`Delivery::NotSent`]
//! never for a stored message; a stored message the client did not see
//! accepted is [`Delivery::Unknown`]; a failed message whose end the server
//! read is [`Delivery::Unknown`] (the client wrote it, and no final reply
//! reached it); and when the server read everything the client wrote (close,
//! stall, reset once idle: the server reads its input first),
//! [`Delivery::Unknown`] exactly when the end of the message is in that
//! input and the transaction did not succeed. An immediate reset loses what
//! the server had not read, so there a client may rightly report unknown an
//! end the server never saw. A refusal plan states its outcome exactly: the
//! refusal (its kind and code), whatever happened to the connection after.
//! A run that panics fails the sweep.
//! The exhaustive sweep, every byte, is the core's (`smtp-sansio`'s
//! `fault_sweep` test); this one checks what the adapters add (transport
//! errors, resets, partial writes, TLS, timers).

use std::sync::Arc;
use std::time::{Duration, Instant};

use smtp_sansio::{Delivery, RecipientDelivery};

use crate::{Fault, FaultAction, MockServer, ServerConfig, TestPki};
pub use offsets::Rng;
use offsets::{client_boundaries, end_offsets, ends_in, offsets, server_boundaries, spread};
pub use table::{plans, refusal_plans};

mod offsets;
mod table;

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
    /// Send the one message with `send_and_quit` (QUIT pipelined behind the
    /// end of the message when the server offers PIPELINING) instead of
    /// `send` and then `quit`.
    pub send_and_quit: bool,
    /// What each message must end as, whatever the fault (a refusal plan);
    /// empty: the run is judged against what the server saw.
    pub expect: Vec<Expected>,
}

/// The exact outcome a refusal plan expects of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// The error's kind ([`Failure::kind`]).
    pub kind: &'static str,
    /// The code of the refusing reply.
    pub code: u16,
    /// The error's delivery.
    pub delivery: Delivery,
}

/// What a message ended as, for the adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The transaction succeeded; the recipients the message was accepted for.
    Sent(Vec<String>),
    /// It failed (or the session failed before it).
    Failed(Failure),
}

/// A failed message, as its error describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The error's delivery.
    pub delivery: Delivery,
    /// The error's kind: `sender_refused`, `recipients_refused`,
    /// `data_refused`, `service_closing`, `uncertain`, `disconnected`,
    /// `timeout`, `protocol`, `usage`, `smtp` (another of the core's),
    /// `io`, `tls`, `other`.
    pub kind: &'static str,
    /// The code of the server's reply the error carries (for refused
    /// recipients, the first one's).
    pub code: Option<u16>,
    /// For [`smtp_sansio::Error::Uncertain`], each recipient's fate.
    pub recipients: Vec<RecipientDelivery>,
}

/// The outcome of a failed step.
#[must_use]
pub fn failed(e: &smtp_adapter::Error) -> Outcome {
    use smtp_adapter::Error as A;
    use smtp_sansio::Error as C;
    // A facade's connection failures come wrapped with the server's name.
    let wrapped = e;
    let e = e.inner();
    let kind = match e {
        A::Smtp(c) => match c {
            C::SenderRefused { .. } => "sender_refused",
            C::RecipientsRefused(_) => "recipients_refused",
            C::DataRefused(_) => "data_refused",
            C::ServiceClosing { .. } => "service_closing",
            C::Uncertain { .. } => "uncertain",
            C::Disconnected => "disconnected",
            C::Timeout(_) => "timeout",
            C::Protocol(_) => "protocol",
            C::Usage(_) => "usage",
            _ => "smtp",
        },
        A::Io(_) => "io",
        A::Tls(_) => "tls",
        _ => "other",
    };
    let code = match e {
        A::Smtp(C::RecipientsRefused(map)) => map.first().map(|(_, r)| r.code()),
        _ => e.reply().map(smtp_sansio::Reply::code),
    };
    let recipients = match e {
        A::Smtp(C::Uncertain { recipients, .. }) => recipients.clone(),
        _ => Vec::new(),
    };
    Outcome::Failed(Failure {
        delivery: wrapped.delivery(),
        kind,
        code,
        recipients,
    })
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
/// When a run broke an expectation, or an outcome was never reached.
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
        report.outcomes.iter().all(|&n| n > 0),
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
    /// Resets once the client is idle ([`FaultAction::ResetWhenIdle`]) per
    /// direction and plan, besides those around each end of a message.
    pub idle_resets: usize,
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
            idle_resets: 2,
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

/// The time a run may take: one deadline (a stall), plus a second for
/// everything else.
fn bound(config: SweepConfig) -> Duration {
    config.timeout + Duration::from_secs(1)
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
    if !plan.expect.is_empty() {
        return judge_expected(plan, outcomes, server);
    }
    let stored = server.messages();
    let logs = server.connection_logs();
    // The server read everything the client got written (it closed
    // gracefully and drained, stalled and drained, or drained until the
    // client was idle before resetting).
    let drained = match fault {
        Fault::AfterReceived(_, action) | Fault::AfterSent(_, action) => {
            action != FaultAction::Reset
        }
        _ => false,
    };
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
            Outcome::Failed(f) => {
                let delivery = f.delivery;
                if taken.is_some() && delivery != Delivery::Unknown {
                    return Err(format!("message {i}: {delivery:?}, but the server has it"));
                }
                // These sessions refuse no message: a failure is no reply.
                // The server read the end, so the client wrote it: unknown.
                // And where the server read all the client wrote, an end it
                // did not read was not written: not unknown.
                let end_read = i < ends;
                let unknown = delivery == Delivery::Unknown;
                if (end_read && !unknown) || (drained && unknown && !end_read) {
                    return Err(format!(
                        "message {i}: {delivery:?}, end in what the server read: {end_read}"
                    ));
                }
                for r in &f.recipients {
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

/// A refusal plan's run: each message ends exactly as expected, and the
/// server stored none.
fn judge_expected(plan: &Plan, outcomes: &[Outcome], server: &MockServer) -> Result<(), String> {
    let stored = server.messages();
    if !stored.is_empty() {
        return Err(format!("the server stored {} messages", stored.len()));
    }
    for (i, (want, got)) in plan.expect.iter().zip(outcomes).enumerate() {
        let ok = match got {
            Outcome::Failed(f) => {
                f.kind == want.kind && f.code == Some(want.code) && f.delivery == want.delivery
            }
            Outcome::Sent(_) => false,
        };
        if !ok {
            return Err(format!("message {i}: expected {want:?}"));
        }
    }
    Ok(())
}

/// The faults of a plan whose fault-free run wrote `rx` and read `tx`.
fn faults_for(rx: &[u8], tx: &[u8], config: SweepConfig, rng: &mut Rng) -> Vec<Fault> {
    let rx_at = offsets(&client_boundaries(rx), rx.len(), config.random, rng);
    let tx_at = offsets(&server_boundaries(tx), tx.len(), config.random, rng);
    let mut faults = Vec::new();
    for action in [FaultAction::Close, FaultAction::Reset] {
        faults.extend(rx_at.iter().map(|&at| Fault::AfterReceived(at, action)));
        faults.extend(tx_at.iter().map(|&at| Fault::AfterSent(at, action)));
    }
    let stall = FaultAction::Stall;
    faults.extend(
        spread(&rx_at, config.stalls)
            .into_iter()
            .map(|at| Fault::AfterReceived(at, stall)),
    );
    faults.extend(
        spread(&tx_at, config.stalls)
            .into_iter()
            .map(|at| Fault::AfterSent(at, stall)),
    );
    // Resets once the client is idle: around each end of a message, where
    // "unknown" and "not sent" part, and spread over both streams.
    let idle = FaultAction::ResetWhenIdle;
    let mut idle_rx: Vec<usize> = end_offsets(rx)
        .into_iter()
        .flat_map(|e| [e.saturating_sub(1), e, e + 1])
        .chain(spread(&rx_at, config.idle_resets))
        .filter(|&at| at <= rx.len())
        .collect();
    idle_rx.sort_unstable();
    idle_rx.dedup();
    faults.extend(idle_rx.into_iter().map(|at| Fault::AfterReceived(at, idle)));
    faults.extend(
        spread(&tx_at, config.idle_resets)
            .into_iter()
            .map(|at| Fault::AfterSent(at, idle)),
    );
    faults
}

/// Runs the sweep through the adapters `make()` returns (one per thread):
/// the cut, stalled and reset sessions of [`plans`], then the refusals of
/// [`refusal_plans`] followed by a reset, a close or a stall.
///
/// # Panics
///
/// When the test PKI cannot be made or a server cannot start.
pub fn sweep<A: SweepAdapter>(make: impl Fn() -> A + Sync, config: SweepConfig) -> SweepReport {
    #[allow(clippy::expect_used)] // a broken test environment, reported loudly
    let pki = Arc::new(TestPki::generate().expect("test PKI"));
    let mut report = SweepReport::default();
    let mut rng = Rng::new(config.seed);
    let mut cases = Vec::new();
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
        let faults = faults_for(&log.received, &log.sent, config, &mut rng);
        cases.push((plan, faults));
    }
    for plan in refusal_plans() {
        let faults = [FaultAction::Reset, FaultAction::Close, FaultAction::Stall]
            .map(Fault::AfterRefusal)
            .to_vec();
        cases.push((plan, faults));
    }
    for (plan, faults) in cases {
        let (results, broken) = run_faults(&make, &plan, &faults, &pki, config);
        report.failures.extend(broken);
        for (fault, verdict, outcomes) in results {
            for o in &outcomes {
                let k = match o {
                    Outcome::Sent(_) => 0,
                    Outcome::Failed(f) => match f.delivery {
                        Delivery::Unknown => 1,
                        Delivery::NotSent => 2,
                        _ => 3,
                    },
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

/// What a panic said.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Runs every fault once, on `config.threads` workers. A run that panics is
/// a failed verdict (and its worker goes on with a new adapter); the second
/// list says what went wrong outside the runs (a worker lost, a fault with no
/// verdict).
fn run_faults<A: SweepAdapter>(
    make: &(impl Fn() -> A + Sync),
    plan: &Plan,
    faults: &[Fault],
    pki: &Arc<TestPki>,
    config: SweepConfig,
) -> (Vec<Verdict>, Vec<String>) {
    let threads = config.threads.max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut broken = Vec::new();
    let mut all: Vec<(usize, Verdict)> = std::thread::scope(|scope| {
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
                        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            one(&mut adapter, plan, fault, pki, config)
                        }));
                        let verdict = run.unwrap_or_else(|p| {
                            adapter = make();
                            (
                                fault,
                                Err(format!("panicked: {}", panic_text(&*p))),
                                Vec::new(),
                            )
                        });
                        mine.push((i, verdict));
                    }
                    mine
                })
            })
            .collect();
        let mut all = Vec::new();
        for w in workers {
            match w.join() {
                Ok(mine) => all.extend(mine),
                Err(p) => broken.push(format!(
                    "{}: a worker panicked: {}",
                    plan.name,
                    panic_text(&*p)
                )),
            }
        }
        all
    });
    all.sort_by_key(|(i, _)| *i);
    if all.len() != faults.len() {
        broken.push(format!(
            "{}: {} of {} runs gave no verdict",
            plan.name,
            faults.len() - all.len(),
            faults.len()
        ));
    }
    (all.into_iter().map(|(_, v)| v).collect(), broken)
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
    let verdict = judge(plan, fault, &outcomes, &server, elapsed, bound(config));
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
    fn a_run_that_panics_fails_with_its_own_verdict() {
        struct Panicky;
        impl SweepAdapter for Panicky {
            fn run(&mut self, _: &MockServer, _: &Plan, _: Duration) -> Vec<Outcome> {
                panic!("adapter bug");
            }
        }
        let pki = Arc::new(TestPki::generate().unwrap());
        let plan = plans().remove(1);
        let faults = [
            Fault::AfterReceived(0, FaultAction::Close),
            Fault::AfterSent(0, FaultAction::Close),
            Fault::AfterSent(1, FaultAction::Close),
        ];
        let config = SweepConfig {
            threads: 2,
            ..SweepConfig::default()
        };
        let (verdicts, broken) = run_faults(&|| Panicky, &plan, &faults, &pki, config);
        assert!(broken.is_empty(), "{broken:?}");
        assert_eq!(verdicts.len(), faults.len(), "one verdict per run");
        for (fault, verdict, _) in verdicts {
            let why = verdict.unwrap_err();
            assert!(why.contains("panicked: adapter bug"), "{fault:?}: {why}");
        }
    }

    #[test]
    fn ends_are_where_the_dot_line_and_bdat_last_end() {
        let rx = b"DATA\r\nhi\r\n.\r\nBDAT 2 LAST\r\nabQUIT\r\n";
        assert_eq!(end_offsets(rx), [13, 28]);
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
