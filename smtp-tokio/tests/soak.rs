//! The soak: many tasks send through a pool of 8 against a testkit server that,
//! on a seeded schedule per connection, answers 421, resets the connection
//! (in the middle of a message or elsewhere), closes it, or stalls past the
//! client's deadline; that closes connections left idle (between waves of
//! sends); and that refuses some recipients. Every message has one outcome,
//! and each outcome is checked against the server's own log (what it stored,
//! and each connection's transcript and fault):
//!
//! - accepted: stored exactly once, on the connection whose transcript holds
//!   the very reply (queue id) the client got;
//! - refused: not stored, and the server refused it (its RCPT or its end);
//! - not sent: not stored, and the server never took in the end of the
//!   message on any connection;
//! - unknown: every connection on which the server answered its end was cut
//!   by a fault; there are no more of them than faults that struck;
//! - everything the server stored was reported accepted or unknown.
//!
//! `soak_small` runs in the normal suite (a few hundred messages). The full
//! run, 10,000 messages from 200 tasks (`SOAK_MESSAGES` and `SOAK_TASKS`
//! change it):
//!
//! ```text
//! cargo test -p smtp-tokio --test soak soak_full -- --ignored --nocapture
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use smtp_testkit::sweep::Rng;
use smtp_testkit::{Fault, FaultAction, MockServer, ServerConfig};
use smtp_tokio::{Delivery, Envelope, Options, Pool, PoolConfig, SmtpClient};

/// What a soak does.
#[derive(Debug, Clone, Copy)]
struct Soak {
    messages: usize,
    tasks: usize,
    /// Percent of connections that get a fault.
    fault_percent: usize,
    /// Transactions per connection before the pool replaces it.
    max_messages: u64,
    /// The sends come in this many waves, with a pause between them longer
    /// than the server's idle limit, so that it closes the idle connections.
    waves: usize,
    seed: u64,
    /// The pool sends a message that was not sent again, on a new connection.
    retry: bool,
}

/// How each message ended, counted.
#[derive(Debug, Default)]
struct Tally {
    accepted: Vec<usize>,
    refused: Vec<usize>,
    unknown: Vec<usize>,
    not_sent: Vec<usize>,
    /// The final reply of each accepted message, as the client got it.
    replies: HashMap<usize, String>,
    /// The messages sent to the refused recipient.
    to_refused: HashSet<usize>,
}

/// One mail transaction as the server's transcript shows it.
#[derive(Debug, Default)]
struct ServerTx {
    /// The connection it came on.
    connection: usize,
    /// The message's id, from its recipient.
    id: Option<usize>,
    /// The server read the whole end of the message (the last BDAT chunk, or
    /// the data through the final dot).
    end_taken: bool,
    /// The server answered some command of it (or its end) with 4xx or 5xx.
    refused: bool,
    /// The server's reply lines, in order.
    replies: Vec<String>,
}

/// Every mail transaction of every connection, from the transcripts.
fn server_transactions(server: &MockServer) -> Vec<ServerTx> {
    let mut all = Vec::new();
    for (connection, log) in server.connection_logs().iter().enumerate() {
        let mut tx: Option<ServerTx> = None;
        let mut last_bdat = false;
        for line in &log.transcript {
            if line.starts_with("C: MAIL FROM:") {
                all.extend(tx.take());
                tx = Some(ServerTx {
                    connection,
                    ..ServerTx::default()
                });
            }
            let Some(t) = tx.as_mut() else { continue };
            if let Some(rest) = line.strip_prefix("C: RCPT TO:<") {
                let name = rest.split('@').next().unwrap_or_default();
                let digits = name.trim_start_matches(|c: char| c.is_ascii_alphabetic());
                t.id = digits.parse().ok();
            } else if let Some(reply) = line.strip_prefix("S: ") {
                t.refused |= reply.starts_with('4') || reply.starts_with('5');
                t.replies.push(reply.to_owned());
            } else if line.starts_with("C: BDAT ") {
                last_bdat = line.to_ascii_uppercase().ends_with(" LAST");
                continue;
            } else if line.ends_with(" bytes of chunk>") && last_bdat
                || line.ends_with(" bytes of message>")
            {
                t.end_taken = true;
            }
            last_bdat = false;
        }
        all.extend(tx);
    }
    all
}

/// The recipient of message `id`: one in about 30 is refused by the server
/// (`refused<id>@`), the others are accepted (`r<id>@`).
fn recipient(id: usize) -> (String, bool) {
    let refused = Rng::new(0x50a4 ^ id as u64).below(100) < 3;
    let name = if refused { "refused" } else { "r" };
    (format!("{name}{id}@example.org"), refused)
}
/// The client's deadline for every wait.
const TIMEOUT: Duration = Duration::from_millis(1000);
/// The server closes a connection idle this long.
const IDLE_CLOSE: Duration = Duration::from_millis(150);

/// The faults of the first connections, one in `percent` of them.
fn schedule(soak: &Soak, connections: usize) -> Vec<Option<Fault>> {
    let mut rng = Rng::new(soak.seed);
    (0..connections)
        .map(|_| {
            if rng.below(100) >= soak.fault_percent {
                return None;
            }
            // A connection carries up to max_messages messages, each about
            // 250 bytes from the client and 100 from the server (with the
            // NOOP check): offsets anywhere in a connection's life.
            let n = usize::try_from(soak.max_messages).unwrap_or(1);
            let rx = rng.below(250 * n);
            let tx = rng.below(100 * n);
            Some(match rng.below(5) {
                0 => Fault::Reply421After(1 + rng.below(4 * n)),
                1 => Fault::AfterReceived(rx, FaultAction::Reset),
                2 => Fault::AfterSent(tx, FaultAction::Reset),
                3 => Fault::AfterReceived(rx, FaultAction::Close),
                _ => Fault::AfterSent(tx, FaultAction::Stall),
            })
        })
        .collect()
}

fn message(id: usize) -> Vec<u8> {
    format!(
        "X-Soak: {id}\r\nFrom: a@example.org\r\nSubject: soak {id}\r\n\r\n\
         .a line with a dot\r\nmessage {id}\r\n"
    )
    .into_bytes()
}

/// The id in a stored message.
fn id_of(data: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(data).ok()?;
    text.strip_prefix("X-Soak: ")?
        .split("\r\n")
        .next()?
        .parse()
        .ok()
}

/// This process's resident set now and at its peak, in KiB.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn run(soak: Soak) -> Tally {
    let connections = soak.messages + 1000;
    let mut config = ServerConfig::default();
    config.refuse_recipients = (0..soak.messages)
        .map(recipient)
        .filter(|(_, refused)| *refused)
        .map(|(address, _)| address)
        .collect();
    let server = MockServer::start(
        config
            .idle_close(IDLE_CLOSE)
            .read_timeout(Duration::from_secs(10))
            .faults(schedule(&soak, connections)),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let start = Instant::now();
    let (tally, rss_mid) = rt.block_on(send_all(&server, soak));
    let elapsed = start.elapsed();
    let (rss_end, rss_peak) = rss_kib();

    // Every message is accounted for, once.
    let sent =
        tally.accepted.len() + tally.refused.len() + tally.unknown.len() + tally.not_sent.len();
    assert_eq!(
        sent, soak.messages,
        "accepted + refused + unknown + not sent"
    );
    let mut all: Vec<usize> = [
        &tally.accepted,
        &tally.refused,
        &tally.unknown,
        &tally.not_sent,
    ]
    .into_iter()
    .flatten()
    .copied()
    .collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), soak.messages, "each message has one outcome");

    // The server's store: every accepted message once, nothing else but
    // messages whose delivery is unknown.
    let mut stored: HashMap<usize, usize> = HashMap::new();
    let mut stored_on: HashMap<usize, usize> = HashMap::new();
    for m in server.messages() {
        let id = id_of(&m.data).expect("a soak message");
        *stored.entry(id).or_default() += 1;
        stored_on.insert(id, m.connection);
    }
    let logs = server.connection_logs();
    let struck = |connection: usize| logs[connection].fault.is_some();
    let transactions = server_transactions(&server);
    let of = |id: usize| transactions.iter().filter(move |t| t.id == Some(id));
    for id in &tally.accepted {
        assert_eq!(
            stored.get(id),
            Some(&1),
            "accepted message {id} stored once"
        );
        // The reply the client got is the one the server gave where it
        // stored the message.
        let reply = &tally.replies[id];
        let connection = stored_on[id];
        assert!(
            of(*id).any(|t| t.connection == connection && t.replies.contains(reply)),
            "accepted message {id}: {reply:?} is not in the log of connection {connection}"
        );
    }
    for id in &tally.refused {
        assert!(!stored.contains_key(id), "refused message {id} stored");
        assert!(
            of(*id).any(|t| t.refused),
            "message {id} reported refused, the server refused nothing of it"
        );
    }
    for id in &tally.not_sent {
        assert!(!stored.contains_key(id), "not-sent message {id} stored");
        assert!(
            !of(*id).any(|t| t.end_taken),
            "message {id} reported not sent, the server took in its end"
        );
    }
    for id in &tally.unknown {
        for t in of(*id).filter(|t| t.end_taken) {
            assert!(
                struck(t.connection),
                "message {id} reported unknown, the server took it in on connection {} \
                 and no fault cut that connection: {:?}",
                t.connection,
                t.replies
            );
        }
    }
    let faults_struck = logs.iter().filter(|l| l.fault.is_some()).count();
    assert!(
        tally.unknown.len() <= faults_struck,
        "{} messages unknown, only {faults_struck} faults struck",
        tally.unknown.len()
    );
    for id in &tally.to_refused {
        assert!(
            !stored.contains_key(id) && !tally.accepted.contains(id),
            "message {id} to the refused recipient went through"
        );
    }
    let unknown: HashSet<usize> = tally.unknown.iter().copied().collect();
    let accepted: HashSet<usize> = tally.accepted.iter().copied().collect();
    let mut unknown_stored = 0;
    for (id, n) in &stored {
        assert_eq!(*n, 1, "message {id} stored {n} times");
        assert!(
            accepted.contains(id) || unknown.contains(id),
            "message {id} stored but reported neither accepted nor unknown"
        );
        if unknown.contains(id) {
            unknown_stored += 1;
        }
    }
    // The faults that struck, by kind.
    let mut struck: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for log in server.connection_logs() {
        if let Some(f) = log.fault {
            let kind = match f {
                Fault::Reply421After(_) => "421".to_owned(),
                Fault::AfterReceived(_, a) => format!("{a:?} after received bytes"),
                Fault::AfterSent(_, a) => format!("{a:?} after sent bytes"),
                _ => format!("{f:?}"),
            };
            *struck.entry(kind).or_default() += 1;
        }
    }
    // What the in-process server keeps (its logs and the messages), which
    // accounts for the growth of the process's memory.
    let kept: usize = logs
        .iter()
        .map(|l| {
            let lines: usize = l
                .transcript
                .iter()
                .chain(&l.server_lines)
                .map(|x| x.len() + 24)
                .sum();
            l.received.capacity() + l.sent.capacity() + l.writes.capacity() * 8 + lines
        })
        .sum::<usize>()
        + server
            .messages()
            .iter()
            .map(|m| m.data.len() + 200)
            .sum::<usize>();
    println!("soak: the server's record holds about {} KiB", kept / 1024);
    let idle_closed = server
        .server_lines()
        .iter()
        .filter(|l| l.contains("Idle for too long"))
        .count();
    println!(
        "soak: faults that struck: {struck:?}; idle connections closed by the server: {idle_closed}"
    );
    println!(
        "soak: {} messages from {} tasks through a pool of 8 in {elapsed:.1?}, {} connections\n\
         | outcome | messages |\n|---|---|\n\
         | accepted | {} |\n| refused | {} |\n| unknown | {} (of which the server has {unknown_stored}) |\n\
         | not sent | {} |\n| total | {sent} |\n\
         server stored {} (= accepted {} + unknown it has {unknown_stored})\n\
         RSS after a quarter {rss_mid} KiB, at the end {rss_end} KiB, peak {rss_peak} KiB",
        soak.messages,
        soak.tasks,
        server.connections(),
        tally.accepted.len(),
        tally.refused.len(),
        tally.unknown.len(),
        tally.not_sent.len(),
        stored.len(),
        tally.accepted.len(),
    );
    assert_eq!(stored.len(), tally.accepted.len() + unknown_stored);
    assert!(!tally.accepted.is_empty() && !tally.refused.is_empty());
    tally
}

async fn send_all(server: &MockServer, soak: Soak) -> (Tally, u64) {
    let addr = server.addr().to_string();
    let config = PoolConfig::default()
        .max_size(8)
        .max_messages(soak.max_messages)
        .checkout_timeout(Duration::from_secs(60))
        .retry_not_sent(soak.retry);
    let pool: Pool = Pool::new(config, move || {
        let addr = addr.clone();
        async move {
            let mut o = Options::default();
            o.timeout = Some(TIMEOUT);
            SmtpClient::connect(&addr, o).await
        }
    });
    let tally = Arc::new(std::sync::Mutex::new(Tally::default()));
    let done = Arc::new(AtomicUsize::new(0));
    let mut rss_mid = 0;
    let per_wave = soak.messages.div_ceil(soak.waves);
    for wave in 0..soak.waves {
        let first = wave * per_wave;
        let last = (first + per_wave).min(soak.messages);
        let mut handles = Vec::new();
        for task in 0..soak.tasks {
            let pool = pool.clone();
            let tally = tally.clone();
            let done = done.clone();
            handles.push(tokio::spawn(async move {
                for id in (first + task..last).step_by(soak.tasks) {
                    let (to, refused) = recipient(id);
                    let envelope = Envelope::parse("a@example.org", &[&to]).unwrap();
                    let r = pool.send(&envelope, &message(id)).await;
                    let mut t = tally.lock().unwrap();
                    if refused {
                        t.to_refused.insert(id);
                    }
                    match r {
                        Ok(result) if result.refused().is_empty() => {
                            let reply = result.final_reply.expect("SMTP has a final reply");
                            t.replies
                                .insert(id, format!("{} {}", reply.code(), reply.text()));
                            t.accepted.push(id);
                        }
                        Ok(result) => panic!("message {id}: {result:?}"),
                        Err(e) => match e.delivery() {
                            Delivery::Refused => t.refused.push(id),
                            Delivery::Unknown => t.unknown.push(id),
                            _ => t.not_sent.push(id),
                        },
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        if rss_mid == 0 && done.load(Ordering::Relaxed) * 4 >= soak.messages {
            rss_mid = rss_kib().0;
        }
        if wave + 1 < soak.waves {
            // The server closes the idle connections meanwhile; the pool's
            // check finds them dead.
            tokio::time::sleep(IDLE_CLOSE * 2).await;
        }
    }
    pool.close().await;
    let tally = std::mem::take(&mut *tally.lock().unwrap());
    (tally, rss_mid)
}

#[test]
fn soak_small() {
    let _ = run(Soak {
        messages: 600,
        tasks: 40,
        fault_percent: 25,
        max_messages: 10,
        waves: 3,
        seed: 7,
        retry: true,
    });
}

/// Without the pool's retry, messages end "not sent" too, and each is checked
/// against the server's log.
#[test]
fn soak_small_without_retry() {
    let tally = run(Soak {
        messages: 600,
        tasks: 40,
        fault_percent: 50,
        max_messages: 10,
        waves: 3,
        seed: 11,
        retry: false,
    });
    assert!(
        !tally.not_sent.is_empty() && !tally.unknown.is_empty(),
        "every outcome is reached: {tally:?}"
    );
}

#[test]
#[ignore = "the full soak: 10,000 messages; see the module's doc for the command"]
fn soak_full() {
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let _ = run(Soak {
        messages: env("SOAK_MESSAGES", 10_000),
        tasks: env("SOAK_TASKS", 200),
        fault_percent: 20,
        max_messages: 50,
        waves: 4,
        seed: 2024,
        retry: true,
    });
}
