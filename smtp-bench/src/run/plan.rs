//! What a run measures: the sinks it starts and the table of cases, sinks
//! and clients that makes its jobs.

use std::collections::BTreeMap;
use std::time::Duration;

use super::process::{RunningSink, client_command, run_child, start_sink};
use super::{Case, ClientKind, Job, LATENCY_BATCH, LATENCY_SECONDS, Latency, RunConfig, SinkKind};
use crate::clients::BoxError;
use crate::pki::TlsFiles;
use crate::relay::Relay;

/// The message count of a job that runs for a time rather than a count.
const UNBOUNDED: u64 = 1_000_000_000;

/// A started sink: what it is, the CPU it is pinned to, the process.
pub(super) type Sink = (SinkKind, String, RunningSink);

/// Starts the sinks, pinned like the clients: every kind on the clients'
/// CPU, aiosmtpd when there is a Python with it (a note says why not), and
/// Postfix's and the fast sink on the other CPU of the cross-core case.
pub(super) fn start_sinks(
    cfg: &RunConfig,
    tls: &TlsFiles,
    notes: &mut Vec<String>,
) -> Result<Vec<Sink>, BoxError> {
    let mut kinds = vec![
        SinkKind::Fast(false, false),
        SinkKind::Fast(true, false),
        SinkKind::Fast(true, true),
        SinkKind::FastTls(false, false),
        SinkKind::Discard,
    ];
    if cfg.latency != Latency::Not {
        kinds.extend([
            SinkKind::FastEarly(false),
            SinkKind::FastEarly(true),
            SinkKind::FastTls(true, false),
            SinkKind::FastTls(false, true),
            SinkKind::FastTls(true, true),
        ]);
    }
    let postfix = cfg.smtp_sink.is_some();
    if postfix {
        kinds.insert(0, SinkKind::Postfix);
    }
    let mut sinks: Vec<Sink> = Vec::new();
    for &k in &kinds {
        sinks.push((k, cfg.cpu.clone(), start_sink(cfg, k, &cfg.cpu, tls)?));
    }
    match &cfg.aiosmtpd_python {
        Some(python) => {
            std::fs::write(
                cfg.out_dir.join("aiosmtpd_sink.py"),
                include_str!("../../peers/aiosmtpd_sink.py"),
            )?;
            match start_sink(cfg, SinkKind::Aiosmtpd, &cfg.cpu, tls) {
                Ok(s) => sinks.push((SinkKind::Aiosmtpd, cfg.cpu.clone(), s)),
                Err(e) => notes.push(format!(
                    "aiosmtpd rows skipped: {} could not start it: {e}",
                    python.display()
                )),
            }
        }
        None => notes.push(
            "aiosmtpd rows skipped: no Python with aiosmtpd (`--aiosmtpd-python PATH`; \
             `scripts/bench` uses target/interop/venv, which `scripts/interop` makes)"
                .to_owned(),
        ),
    }
    if let Some(other) = &cfg.cross_cpu {
        for k in [SinkKind::Postfix, SinkKind::Fast(true, false)] {
            if k == SinkKind::Postfix && !postfix {
                continue;
            }
            sinks.push((k, other.clone(), start_sink(cfg, k, other, tls)?));
        }
    }
    Ok(sinks)
}

/// One line of the table: every client against every sink, for one case (a
/// cross-core case runs against the sinks on the other CPU).
pub(super) struct Row {
    case: Case,
    sinks: Vec<SinkKind>,
    clients: Vec<ClientKind>,
}

fn row(case: Case, sinks: &[SinkKind], clients: &[ClientKind]) -> Row {
    Row {
        case,
        sinks: sinks.to_vec(),
        clients: clients.to_vec(),
    }
}

/// What runs, in the order the rounds run it.
pub(super) fn table(quick: bool) -> Vec<Row> {
    use ClientKind::{
        Lettre, LettreBounded, MailSend, Ours, OursFresh, RawTcp, SmtpSource, Smtplib,
    };
    use SinkKind::{Aiosmtpd, Discard, Fast, FastTls, Postfix};
    let (kib, mib) = (1024u64, 1u64 << 20);
    let ours = [Ours("blocking"), Ours("tokio"), Ours("async-std")];
    let fast = Fast(true, false);
    let peers_fast = [
        SmtpSource,
        Lettre { nodelay: true },
        MailSend { nodelay: true },
        Smtplib,
    ];
    let ours_and_peers = [&ours[..], &peers_fast[..]].concat();
    let tls = FastTls(false, false);
    let c1 = Case::plain(kib, false);
    let cx = Case {
        cross_core: true,
        ..c1
    };
    let c2 = Case::plain(kib, true);
    let c3 = Case::plain(mib, false);
    let c4 = Case::plain(mib, true);
    let t1 = Case { tls: true, ..c2 };
    let p1 = Case { pool: true, ..c1 };
    let mut rows = vec![
        // 1 KiB, one connection.
        row(
            c1,
            &[Postfix, Fast(false, false), fast, Fast(true, true)],
            &ours,
        ),
        row(c1, &[Postfix, fast], &peers_fast),
        // As shipped, lettre and mail-send wait ~44 ms per message.
        row(
            c1,
            &[fast],
            &[Lettre { nodelay: false }, MailSend { nodelay: false }],
        ),
        // The same across cores.
        row(cx, &[Postfix, fast], &ours_and_peers),
        // 1 KiB, a new connection per message.
        row(c2, &[Postfix, fast], &ours_and_peers),
        // 1 MiB, one connection, fast sink.
        row(c3, &[fast, Fast(true, true)], &ours),
        row(
            c3,
            &[fast],
            &[
                SmtpSource,
                Lettre { nodelay: true },
                MailSend { nodelay: true },
                Smtplib,
            ],
        ),
        row(c3, &[Discard], &[RawTcp(1024), RawTcp(64)]),
        // 1 MiB, a new connection per message.
        row(
            c4,
            &[fast],
            &[&ours[..], &[SmtpSource, Lettre { nodelay: true }, Smtplib]].concat(),
        ),
    ];
    // STARTTLS + AUTH PLAIN, a new connection per message (one session per
    // message): ours with a shared TLS configuration (resumed sessions) and
    // with a new one per connection (full handshakes), lettre and mail-send
    // (each keeps one configuration: they resume too), against the fast sink
    // and aiosmtpd. --quick leaves out the full-handshake rows of tokio and
    // async-std and runs aiosmtpd with blocking and the peers only.
    for o in ["blocking", "tokio", "async-std"] {
        rows.push(row(t1, &[tls], &[Ours(o)]));
        if !quick || o == "blocking" {
            rows.push(row(t1, &[tls], &[OursFresh(o)]));
            rows.push(row(t1, &[Aiosmtpd], &[Ours(o)]));
        }
    }
    for p in [Lettre { nodelay: true }, MailSend { nodelay: true }] {
        rows.push(row(t1, &[tls, Aiosmtpd], &[p]));
    }
    // STARTTLS + AUTH PLAIN, one connection, 1 KiB and 1 MiB: next to the
    // plain rows above (fast sink with pipelining) and to lettre.
    for size in [kib, mib] {
        let t2 = Case {
            tls: true,
            ..Case::plain(size, false)
        };
        let clients = [&ours[..], &[Lettre { nodelay: true }]].concat();
        rows.push(row(t2, &[tls], &clients));
    }
    // Many tasks, one pool: our Tokio and async-std pools and lettre's async
    // pool, plain TCP, fast sink with pipelining.
    let mut pool = vec![
        Ours("tokio"),
        Ours("async-std"),
        Lettre { nodelay: true },
        LettreBounded,
    ];
    if !quick {
        pool.push(Lettre { nodelay: false });
    }
    rows.push(row(p1, &[fast], &pool));
    rows
}

/// The rows over a link of `rtt_ms` (every client of the loopback rows,
/// through a [`Relay`]): a new connection per message, plain (the fast sink
/// with PIPELINING, and with PIPELINING and CHUNKING) and with STARTTLS +
/// AUTH PLAIN (the fast sink's TLS variants: PIPELINING as the loopback TLS
/// rows, and with CHUNKING too, as Postfix offers by default); a batch of
/// [`LATENCY_BATCH`] messages on one connection (both plain sinks, ours also
/// with the whole batch in one `send_batch_and_quit`; with
/// CHUNKING only ours and lettre, as the peers do not use it); tasks
/// through one pool (ours and lettre's, plain, PIPELINING); and a new
/// connection per message against the fast sink offering PIPECONNECT too
/// (with PIPELINING, and with PIPELINING and CHUNKING; plain, and with
/// STARTTLS + AUTH PLAIN): ours with early pipelining, one capability cache
/// per run (its first connection fills it and is counted), and the peers,
/// which do not use PIPECONNECT; on the plain ones also ours without (the
/// same sink, waiting for the greeting) on the blocking adapter (with
/// STARTTLS that is the row of the same sink without PIPECONNECT).
pub(super) fn latency_table(rtt_ms: u32) -> Vec<Row> {
    use ClientKind::{
        Lettre, LettreBounded, MailSend, Ours, OursBatch, OursEarly, SmtpSource, Smtplib,
    };
    use SinkKind::{Fast, FastEarly, FastTls};
    let ours = [Ours("blocking"), Ours("tokio"), Ours("async-std")];
    let peers = [
        Lettre { nodelay: true },
        MailSend { nodelay: true },
        Smtplib,
        SmtpSource,
    ];
    let all = [&ours[..], &peers[..]].concat();
    let ours_and_lettre = [&ours[..], &[Lettre { nodelay: true }]].concat();
    // The batch rows also run ours with the whole batch in one call.
    let ours_batch = [
        OursBatch("blocking"),
        OursBatch("tokio"),
        OursBatch("async-std"),
    ];
    let (pipelining, chunking) = (Fast(true, false), Fast(true, true));
    let super::LinkCases {
        new_connection,
        tls,
        batch,
        pool,
    } = Case::over_link(rtt_ms);
    let ours_early = [
        OursEarly("blocking"),
        OursEarly("tokio"),
        OursEarly("async-std"),
    ];
    let early = [&ours_early[..], &[Ours("blocking")], &peers[..]].concat();
    // The peers of the STARTTLS rows (smtplib and smtp-source run none).
    let tls_peers = [Lettre { nodelay: true }, MailSend { nodelay: true }];
    vec![
        row(new_connection, &[pipelining, chunking], &all),
        row(new_connection, &[FastEarly(false), FastEarly(true)], &early),
        row(
            tls,
            &[FastTls(false, false), FastTls(true, false)],
            &[&ours[..], &tls_peers[..]].concat(),
        ),
        row(
            tls,
            &[FastTls(false, true), FastTls(true, true)],
            &[&ours_early[..], &tls_peers[..]].concat(),
        ),
        row(batch, &[pipelining], &[&all[..], &ours_batch[..]].concat()),
        row(
            batch,
            &[chunking],
            &[&ours_and_lettre[..], &ours_batch[..]].concat(),
        ),
        row(
            pool,
            &[pipelining],
            &[
                Ours("tokio"),
                Ours("async-std"),
                Lettre { nodelay: true },
                LettreBounded,
            ],
        ),
    ]
}

/// One [`Relay`] of `cfg.rtt_ms` in front of each sink a job over a link
/// with latency uses, by the sink's index.
pub(super) fn start_relays(
    cfg: &RunConfig,
    jobs: &[Job],
    sinks: &[Sink],
) -> Result<BTreeMap<usize, Relay>, BoxError> {
    let mut relays = BTreeMap::new();
    for job in jobs.iter().filter(|j| j.case.rtt_ms > 0) {
        if relays.contains_key(&job.sink) {
            continue;
        }
        let upstream = sinks[job.sink].2.addr.parse()?;
        let rtt = Duration::from_millis(u64::from(cfg.rtt_ms));
        relays.insert(job.sink, Relay::start(upstream, rtt)?);
    }
    Ok(relays)
}

/// The jobs of the table whose sink runs and whose client is at hand.
pub(super) fn jobs(
    cfg: &RunConfig,
    table: &[Row],
    find: impl Fn(SinkKind, bool) -> Option<usize>,
) -> Vec<Job> {
    let have_peers = |c: &ClientKind| match c {
        ClientKind::SmtpSource => cfg.smtp_source.is_some(),
        ClientKind::Smtplib => cfg.python.is_some(),
        ClientKind::Lettre { nodelay: true }
        | ClientKind::MailSend { nodelay: true }
        | ClientKind::LettreBounded => cfg.shim.is_some(),
        _ => true,
    };
    let mut jobs = Vec::new();
    for r in table {
        for &k in &r.sinks {
            for client in &r.clients {
                if let Some(sink) = find(k, r.case.cross_core)
                    && have_peers(client)
                {
                    // Over a link with latency: a batch is its count
                    // however long it takes; smtp-source, which cannot stop
                    // on time, sends about as many new connections as the
                    // others manage in their time (a few hundred ms each).
                    let (count, seconds) = match (r.case.rtt_ms > 0, r.case.batch()) {
                        (false, _) => (UNBOUNDED, Some(cfg.seconds)),
                        (true, true) => (LATENCY_BATCH, None),
                        (true, false) if *client == ClientKind::SmtpSource => (16, None),
                        (true, false) => (UNBOUNDED, Some(LATENCY_SECONDS)),
                    };
                    jobs.push(Job {
                        case: r.case,
                        sink,
                        client: client.clone(),
                        count,
                        seconds,
                    });
                }
            }
        }
    }
    jobs
}

/// smtp-source cannot stop on time: calibrates its message count once.
pub(super) fn calibrate(
    cfg: &RunConfig,
    jobs: &mut [Job],
    sinks: &[Sink],
    files: &super::process::Files,
    tls: &TlsFiles,
) -> Result<(), BoxError> {
    for job in jobs
        .iter_mut()
        .filter(|j| j.client == ClientKind::SmtpSource && j.case.rtt_ms == 0)
    {
        let probe = match (job.case.size >= 1 << 20, job.case.new_connection) {
            (false, false) => 5_000,
            (false, true) => 1_000,
            (true, false) => 500,
            (true, true) => 100,
        };
        job.count = probe;
        let addr = &sinks[job.sink].2.addr;
        let cmd = client_command(cfg, job, addr, files, tls)?;
        let (_, wall) = run_child(cmd, Duration::from_secs(120))?;
        let rate = probe as f64 / wall.as_secs_f64();
        job.count = ((rate * cfg.seconds) as u64).max(10);
        eprintln!(
            "calibrated smtp-source for {} on {}: {} messages",
            job.case.title(),
            sinks[job.sink].0.label(),
            job.count
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Over the link, each STARTTLS sink runs ours and lettre and mail-send
    /// on the STARTTLS case; ours with early pipelining exactly where the
    /// sink offers PIPECONNECT.
    #[test]
    fn every_starttls_sink_runs_ours_and_the_peers_over_the_link() {
        let table = latency_table(20);
        let tls = Case::over_link(20).tls;
        for (chunking, pipe_connect) in [(false, false), (true, false), (false, true), (true, true)]
        {
            let sink = SinkKind::FastTls(chunking, pipe_connect);
            let clients: Vec<&ClientKind> = table
                .iter()
                .filter(|r| r.sinks.contains(&sink))
                .inspect(|r| assert_eq!(r.case, tls, "{}", sink.label()))
                .flat_map(|r| &r.clients)
                .collect();
            let ours = |n| {
                if pipe_connect {
                    ClientKind::OursEarly(n)
                } else {
                    ClientKind::Ours(n)
                }
            };
            let want = [
                ours("blocking"),
                ours("tokio"),
                ours("async-std"),
                ClientKind::Lettre { nodelay: true },
                ClientKind::MailSend { nodelay: true },
            ];
            assert_eq!(clients, want.iter().collect::<Vec<_>>(), "{}", sink.label());
        }
    }
}
