//! The measuring: every job once per round, interleaved, checked against
//! the sink's counters; then the streaming runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::plan::Sink;
use super::process::{Files, client_command, parse_report, run_child, taskset};
use super::{ClientKind, Job, RunConfig, Sample, Samples, SinkKind};
use crate::clients::BoxError;
use crate::measure::{Report, cpu_time_of};
use crate::pki::TlsFiles;
use crate::relay::Relay;
use crate::sink::{Snapshot, query_stats};

/// What the rounds measured.
pub(super) struct Measured {
    /// The samples of each row.
    pub(super) samples: Samples,
    /// The runs that failed, and why.
    pub(super) failures: Vec<String>,
    /// Every run, one line each (`samples.tsv`).
    pub(super) tsv: String,
}

/// Runs every job `cfg.reps` times, interleaved: every job once per round,
/// each round starting at a different place.
pub(super) fn rounds(
    cfg: &RunConfig,
    jobs: &mut [Job],
    sinks: &[Sink],
    relays: &BTreeMap<usize, Relay>,
    files: &Files,
    tls: &TlsFiles,
) -> Result<Measured, BoxError> {
    let mut measured = Measured {
        samples: Samples::new(),
        failures: Vec::new(),
        tsv: String::from(
            "round\tcase\tsink\tclient\tmessages\tsecs\tcpu_secs\trss_kib\treply_writes\twire_bytes\tsink_cpu_secs\tturns\ttls_resumed\tp50_us\tp99_us\tearly\n",
        ),
    };
    for rep in 0..cfg.reps {
        let n = jobs.len();
        for i in 0..n {
            let index = (i + rep * 7) % n;
            let job = &jobs[index];
            let (kind, _, _) = &sinks[job.sink];
            let label = job.label(*kind);
            let relay = relays.get(&job.sink).filter(|_| job.case.rtt_ms > 0);
            let (r, s, sink_cpu) = match measure(cfg, job, &sinks[job.sink], relay, files, tls)? {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("FAILED {label}: {e}");
                    measured.failures.push(format!("{label}: {e}"));
                    continue;
                }
            };
            tsv_line(&mut measured.tsv, rep, job, *kind, &r, &s, sink_cpu);
            eprintln!(
                "round {rep}: {label}: {:.0} msg/s, {:.1} MB/s, {:.1} us CPU/msg",
                s.msgs_per_s, s.mb_per_s, s.cpu_us_per_msg
            );
            measured
                .samples
                .entry((job.case, job.sink, job.client.clone()))
                .or_default()
                .push(s);
            // smtp-source sends a fixed count: keep its runs about as long as
            // the others (its CPU time has a 10 ms resolution).
            if job.client == ClientKind::SmtpSource && r.secs > 0.0 && job.case.rtt_ms == 0 {
                jobs[index].count = ((s.msgs_per_s * cfg.seconds) as u64).max(10);
            }
        }
    }
    Ok(measured)
}

/// One run of one job: the client's report, the sample made of it and the
/// sink's counters, and the sink's CPU time; `Ok(Err(why))` when the run
/// failed or the sink's counters disagree with the client's.
fn measure(
    cfg: &RunConfig,
    job: &Job,
    (kind, _, sink): &Sink,
    relay: Option<&Relay>,
    files: &Files,
    tls: &TlsFiles,
) -> Result<Result<(Report, Sample, Duration), String>, BoxError> {
    let limit = Duration::from_secs(120);
    let before = if kind.counts() {
        query_stats(&sink.addr).ok()
    } else {
        None
    };
    // Over a link with latency the client talks to the relay; the counters
    // are read from the sink itself.
    let addr = relay.map_or_else(|| sink.addr.clone(), |r| r.addr().to_string());
    let cmd = client_command(cfg, job, &addr, files, tls)?;
    let sink_cpu0 = cpu_time_of(sink.child.id());
    let result = run_child(cmd, limit).and_then(|(out, wall)| parse_report(job, &out, wall));
    // What the client sent last (a QUIT it did not wait for) reaches the
    // sink up to half an RTT after the client ended.
    if let Some(r) = relay
        && !r.wait_idle(Duration::from_secs(10))
    {
        return Ok(Err(
            "the relay still had open connections 10 s after the client ended".into(),
        ));
    }
    let sink_cpu = cpu_time_of(sink.child.id()).saturating_sub(sink_cpu0);
    let after = if kind.counts() {
        query_stats(&sink.addr).ok()
    } else {
        None
    };
    let r = match result {
        Ok(r) => r,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let delta: Option<Snapshot> = before.zip(after).map(|(b, a)| a.since(&b));
    if let Some(d) = delta
        && !matches!(job.client, ClientKind::RawTcp(_))
        && d.messages != r.messages
    {
        return Ok(Err(format!(
            "the sink counted {} messages, the client {}",
            d.messages, r.messages
        )));
    }
    // Over TLS, every session must have logged in inside TLS, and a new
    // connection per message is a handshake per message.
    if let Some(d) = delta
        && job.case.tls
        && (d.auths != d.tls_handshakes
            || d.tls_handshakes == 0
            || (job.case.new_connection && d.tls_handshakes != r.messages))
    {
        return Ok(Err(format!(
            "the sink counted {} TLS handshakes and {} logins for {} messages",
            d.tls_handshakes, d.auths, r.messages
        )));
    }
    let per = |x: u64| (r.messages > 0).then(|| x as f64 / r.messages as f64);
    let s = Sample {
        messages: r.messages as f64,
        msgs_per_s: r.messages as f64 / r.secs,
        mb_per_s: r.bytes as f64 / r.secs / 1e6,
        cpu_us_per_msg: r.cpu_secs * 1e6 / r.messages.max(1) as f64,
        rss_kib: r.rss_kib,
        round_trips: delta.and_then(|d| per(d.tx_writes)),
        turns: delta.and_then(|d| per(d.turns)),
        wire_bytes: delta.and_then(|d| per(d.body_bytes)),
        sink_cpu_us_per_msg: sink_cpu.as_secs_f64() * 1e6 / r.messages.max(1) as f64,
        resumed: delta
            .filter(|d| d.tls_handshakes > 0)
            .map(|d| d.tls_resumed as f64 / d.tls_handshakes as f64),
        p50_us: r.p50_us,
        p99_us: r.p99_us,
        // The counter includes the second XSTATS query's connection.
        connections: delta.map(|d| d.connections.saturating_sub(1) as f64),
        connections_per_msg: delta.and_then(|d| per(d.connections.saturating_sub(1))),
        early_per_msg: delta.and_then(|d| per(d.early)),
    };
    Ok(Ok((r, s, sink_cpu)))
}

/// The run's line of `samples.tsv`.
fn tsv_line(
    tsv: &mut String,
    rep: usize,
    job: &Job,
    kind: SinkKind,
    r: &Report,
    s: &Sample,
    sink_cpu: Duration,
) {
    let _ = writeln!(
        tsv,
        "{rep}\t{}\t{}\t{}\t{}\t{:.6}\t{:.6}\t{}\t{}\t{}\t{:.3}\t{}\t{}\t{}\t{}\t{}",
        job.case.title(),
        kind.label(),
        job.client.label(),
        r.messages,
        r.secs,
        r.cpu_secs,
        r.rss_kib,
        s.round_trips.map_or(String::new(), |x| format!("{x:.2}")),
        s.wire_bytes.map_or(String::new(), |x| format!("{x:.0}")),
        sink_cpu.as_secs_f64(),
        s.turns.map_or(String::new(), |x| format!("{x:.2}")),
        s.resumed.map_or(String::new(), |x| format!("{x:.3}")),
        s.p50_us.map_or(String::new(), |x| format!("{x:.0}")),
        s.p99_us.map_or(String::new(), |x| format!("{x:.0}")),
        s.early_per_msg.map_or(String::new(), |x| format!("{x:.2}")),
    );
}

/// One large message (1 GiB, 64 MiB with `--quick`) through each adapter,
/// once each, DATA and BDAT: (adapter, sink, report).
pub(super) fn streams(
    cfg: &RunConfig,
    sinks: &[Sink],
    find: impl Fn(SinkKind, bool) -> Option<usize>,
    failures: &mut Vec<String>,
) -> Vec<(String, String, Report)> {
    let mut streams = Vec::new();
    let size: u64 = if cfg.quick { 64 << 20 } else { 1 << 30 };
    for k in [SinkKind::Fast(true, false), SinkKind::Fast(true, true)] {
        let Some(i) = find(k, false) else { continue };
        let (kind, _, sink) = &sinks[i];
        for a in ["blocking", "tokio", "async-std"] {
            let mut c = taskset(&cfg.cpu);
            c.arg(&cfg.exe).args([
                "client",
                &format!("stream-{a}"),
                "--addr",
                &sink.addr,
                "--count",
                "1",
                "--size",
                &size.to_string(),
            ]);
            match run_child(c, Duration::from_secs(300)).and_then(|(out, _)| {
                out.lines()
                    .find_map(Report::from_json)
                    .ok_or_else(|| "no report".into())
            }) {
                Ok(r) => streams.push((a.to_owned(), kind.label(), r)),
                Err(e) => failures.push(format!("stream {a}: {e}")),
            }
        }
    }
    streams
}
