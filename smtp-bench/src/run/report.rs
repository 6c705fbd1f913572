//! The report's tables: one per case, the ratios against the peers, the TLS
//! comparisons and the streaming runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::process::machine;
use super::targets::targets;
use super::{Case, ClientKind, Job, Medians, RunConfig, Samples, SinkKind, medians};
use crate::measure::Report;

pub(super) fn render(
    cfg: &RunConfig,
    jobs: &[Job],
    samples: &Samples,
    sink_kinds: &[SinkKind],
    streams: &[(String, String, Report)],
    failures: &[String],
    notes: &[String],
) -> String {
    let sink_of: BTreeMap<usize, SinkKind> = sink_kinds.iter().copied().enumerate().collect();
    let mut md = String::new();
    let _ = writeln!(md, "Machine: {}.", machine());
    let _ = writeln!(
        md,
        "Client and sink pinned to CPU {} with `taskset` (except the cross-core table); {} interleaved rounds, medians; \
         MB = 10^6 bytes of message (before dot-stuffing); CPU = user + system time of the client process during its sending loop \
         (smtp-source: of the whole process, by `/usr/bin/time`); peak RSS = the client's VmHWM / ru_maxrss; \
         sink CPU = CPU time of the sink process during the run, per message; \
         reply writes per message and wire bytes per message are counted by the in-tree sink \
         (writes that carried a reply of a transaction: the round trips a message costs when the body \
         fits one chunk; bytes after DATA or in BDAT chunks); round trips per message are the in-tree sink's turns \
         (its writes that follow something read from the client: one per reply the client waits for, TLS handshake \
         flights included; the greeting is not one; a new connection per message counts its whole session); \
         with a new connection per message, msgs/s is sessions/s and CPU per message is CPU per session; \
         TLS resumed = share of the sink's TLS handshakes that resumed a session; \
         pool rows: p50 / p99 = median and 99th percentile of a message's latency, from the task's request for a \
         session to the end of its send; spread = (max - min) / median of msgs/s.",
        cfg.cpu, cfg.reps
    );
    let _ = writeln!(md);
    for n in notes {
        let _ = writeln!(md, "Note: {n}.\n");
    }
    // The rows over a link with latency have their own section.
    let mut cases: Vec<Case> = jobs
        .iter()
        .map(|j| j.case)
        .filter(|c| c.rtt_ms == 0)
        .collect();
    cases.dedup();
    cases.sort();
    cases.dedup();
    for case in &cases {
        case_table(&mut md, case, samples, &sink_of);
        ratios(&mut md, case, samples, &sink_of);
    }
    md.push_str(&tls_comparisons(samples, &sink_of));
    if !streams.is_empty() {
        let _ = writeln!(
            md,
            "### One 1 GiB message streamed through `send_from_reader`\n"
        );
        let _ = writeln!(
            md,
            "| adapter | sink | MB/s | CPU ms per MiB | peak RSS MiB |"
        );
        let _ = writeln!(md, "|---|---|---:|---:|---:|");
        for (a, sink, r) in streams {
            let _ = writeln!(
                md,
                "| smtp-rs {a} | {sink} | {:.0} | {:.3} | {:.1} |",
                r.bytes as f64 / r.secs / 1e6,
                r.cpu_secs * 1e3 / (r.bytes as f64 / (1u64 << 20) as f64),
                r.rss_kib as f64 / 1024.0
            );
        }
        let _ = writeln!(md);
    }
    md.push_str(&targets(samples, &sink_of, streams));
    md.push_str(&super::latency::section(cfg, samples, &sink_of));
    if !failures.is_empty() {
        let _ = writeln!(md, "\nFailed runs:\n");
        for f in failures {
            let _ = writeln!(md, "- {f}");
        }
    }
    md
}

/// The table of one case: a row per client and sink.
fn case_table(
    md: &mut String,
    case: &Case,
    samples: &Samples,
    sink_of: &BTreeMap<usize, SinkKind>,
) {
    let _ = writeln!(md, "### {}\n", case.title());
    let mut extra_head = String::new();
    let mut extra_rule = String::new();
    if case.tls {
        extra_head.push_str(" TLS resumed |");
        extra_rule.push_str("---:|");
    }
    if case.pool {
        extra_head.push_str(" p50 ms | p99 ms | connections opened |");
        extra_rule.push_str("---:|---:|---:|");
    }
    let _ = writeln!(
        md,
        "| client | sink (what it offers) | msgs/s | MB/s | client CPU us/msg | sink CPU us/msg | peak RSS MiB | reply writes/msg | round trips/msg | wire bytes/msg |{extra_head} spread |"
    );
    let _ = writeln!(
        md,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|{extra_rule}---:|"
    );
    let mut rows: Vec<(&(Case, usize, ClientKind), Medians)> = samples
        .iter()
        .filter(|((c, _, _), _)| c == case)
        .map(|(k, v)| (k, medians(v)))
        .collect();
    rows.sort_by(|a, b| {
        sink_of[&a.0.1]
            .cmp(&sink_of[&b.0.1])
            .then(b.1.msgs_per_s.total_cmp(&a.1.msgs_per_s))
    });
    for ((_, sink, client), m) in rows {
        let name = if client.is_ours() {
            format!("**{}**", client.label())
        } else {
            client.label()
        };
        let mut extra = String::new();
        if case.tls {
            let _ = write!(
                extra,
                " {} |",
                m.resumed
                    .map_or("-".into(), |x| format!("{:.0}%", x * 100.0))
            );
        }
        if case.pool {
            let ms = |x: Option<f64>| x.map_or("-".into(), |x| format!("{:.2}", x / 1e3));
            let _ = write!(
                extra,
                " {} | {} | {} |",
                ms(m.p50_us),
                ms(m.p99_us),
                m.connections.map_or("-".into(), |x| format!("{x:.0}"))
            );
        }
        let _ = writeln!(
            md,
            "| {name} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} |{extra} {:.0}% (n={}) |",
            sink_of[sink].label(),
            m.msgs_per_s,
            m.mb_per_s,
            m.cpu_us_per_msg,
            m.sink_cpu_us_per_msg,
            m.rss_kib as f64 / 1024.0,
            m.round_trips.map_or("-".into(), |x| format!("{x:.2}")),
            m.turns.map_or("-".into(), |x| format!("{x:.2}")),
            m.wire_bytes.map_or("-".into(), |x| format!("{x:.0}")),
            m.spread * 100.0,
            m.runs,
        );
    }
    let _ = writeln!(md);
}

/// Each of our adapters against each peer on the same sink, in one case.
fn ratios(md: &mut String, case: &Case, samples: &Samples, sink_of: &BTreeMap<usize, SinkKind>) {
    // Ratios: each of our adapters against each peer on the same sink.
    let sinks_here: Vec<usize> = {
        let mut v: Vec<usize> = samples
            .keys()
            .filter(|(c, _, cl)| c == case && !cl.is_ours())
            .map(|(_, s, _)| *s)
            .collect();
        v.sort_by_key(|s| sink_of[s]);
        v.dedup();
        v
    };
    for sink in sinks_here {
        let peers: Vec<(&ClientKind, Medians)> = samples
            .iter()
            .filter(|((c, s, cl), _)| c == case && *s == sink && !cl.is_ours())
            .map(|((_, _, cl), v)| (cl, medians(v)))
            .collect();
        let ours: Vec<(&ClientKind, Medians)> = samples
            .iter()
            .filter(|((c, s, cl), _)| c == case && *s == sink && cl.is_ours())
            .map(|((_, _, cl), v)| (cl, medians(v)))
            .collect();
        if ours.is_empty() {
            continue;
        }
        let _ = writeln!(
            md,
            "Ratios against {} (same run; each cell: our msgs/s over the peer's, then the peer's client CPU per message over ours):\n",
            sink_of[&sink].label()
        );
        let mut header = String::from("| ours |");
        let mut rule = String::from("|---|");
        for (p, _) in &peers {
            let _ = write!(header, " vs {} |", p.label());
            rule.push_str("---:|");
        }
        let _ = writeln!(md, "{header}\n{rule}");
        for (o, om) in &ours {
            let mut row = format!("| {} |", o.label());
            for (_, pm) in &peers {
                let cpu = if pm.cpu_us_per_msg > 0.0 && om.cpu_us_per_msg > 0.0 {
                    format!("{:.2}x", pm.cpu_us_per_msg / om.cpu_us_per_msg)
                } else {
                    // Below the 10 ms resolution of the CPU clock.
                    "-".to_owned()
                };
                let _ = write!(row, " {:.2}x / {cpu} |", om.msgs_per_s / pm.msgs_per_s);
            }
            let _ = writeln!(md, "{row}");
        }
        let _ = writeln!(md);
    }
}

/// The medians of one row, if it ran.
pub(super) fn row(
    samples: &Samples,
    sink_of: &BTreeMap<usize, SinkKind>,
    case: Case,
    sink: SinkKind,
    client: &ClientKind,
) -> Option<Medians> {
    samples
        .iter()
        .find(|((c, s, cl), _)| *c == case && sink_of.get(s) == Some(&sink) && cl == client)
        .map(|(_, v)| medians(v))
}

pub(super) const OURS: [&str; 3] = ["blocking", "tokio", "async-std"];

/// The TLS rows side by side with what they are measured against: resumed
/// sessions next to full handshakes, and STARTTLS next to plain TCP.
pub(super) fn tls_comparisons(samples: &Samples, sink_of: &BTreeMap<usize, SinkKind>) -> String {
    let get = |case, sink, client: &ClientKind| row(samples, sink_of, case, sink, client);
    let mut md = String::new();
    let t1 = Case {
        tls: true,
        ..Case::plain(1024, true)
    };
    let pairs: Vec<(&str, Medians, Medians)> = OURS
        .iter()
        .filter_map(|o| {
            let shared = get(t1, SinkKind::FastTls(false, false), &ClientKind::Ours(o))?;
            let fresh = get(
                t1,
                SinkKind::FastTls(false, false),
                &ClientKind::OursFresh(o),
            )?;
            Some((*o, shared, fresh))
        })
        .collect();
    if !pairs.is_empty() {
        let _ = writeln!(
            md,
            "### STARTTLS, a new connection per message: one shared TLS configuration (sessions resume) against a new one per connection (full handshakes), {}\n",
            SinkKind::FastTls(false, false).label()
        );
        let _ = writeln!(
            md,
            "| adapter | shared: sessions/s | CPU us/session | resumed | new config: sessions/s | CPU us/session | resumed | sessions/s shared / new | CPU new / shared |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        let pct = |x: Option<f64>| x.map_or("-".into(), |x| format!("{:.0}%", x * 100.0));
        for (o, sh, fr) in &pairs {
            let _ = writeln!(
                md,
                "| smtp-rs {o} | {:.0} | {:.1} | {} | {:.0} | {:.1} | {} | {:.2}x | {} |",
                sh.msgs_per_s,
                sh.cpu_us_per_msg,
                pct(sh.resumed),
                fr.msgs_per_s,
                fr.cpu_us_per_msg,
                pct(fr.resumed),
                sh.msgs_per_s / fr.msgs_per_s,
                cpu_ratio(fr, sh),
            );
        }
        let _ = writeln!(md);
    }
    let mut lines = Vec::new();
    for size in [1024u64, 1 << 20] {
        let plain_case = Case::plain(size, false);
        let tls_case = Case {
            tls: true,
            ..plain_case
        };
        let clients = OURS
            .iter()
            .map(|o| ClientKind::Ours(o))
            .chain([ClientKind::Lettre { nodelay: true }]);
        for c in clients {
            let (Some(p), Some(t)) = (
                get(plain_case, SinkKind::Fast(true, false), &c),
                get(tls_case, SinkKind::FastTls(false, false), &c),
            ) else {
                continue;
            };
            let mib = size as f64 / f64::from(1u32 << 20);
            lines.push(format!(
                "| {} | {} | {:.0} | {:.0} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} | {:.3} | {:.3} |",
                c.label(),
                if size >= 1 << 20 { "1 MiB" } else { "1 KiB" },
                p.msgs_per_s,
                t.msgs_per_s,
                t.msgs_per_s / p.msgs_per_s,
                p.mb_per_s,
                t.mb_per_s,
                p.cpu_us_per_msg,
                t.cpu_us_per_msg,
                p.cpu_us_per_msg / 1e3 / mib,
                t.cpu_us_per_msg / 1e3 / mib,
            ));
        }
    }
    if !lines.is_empty() {
        let _ = writeln!(
            md,
            "### STARTTLS next to plain TCP, one connection (same run; plain: {}, TLS: {})\n",
            SinkKind::Fast(true, false).label(),
            SinkKind::FastTls(false, false).label()
        );
        let _ = writeln!(
            md,
            "| client | message | plain msgs/s | TLS msgs/s | TLS / plain | plain MB/s | TLS MB/s | plain CPU us/msg | TLS CPU us/msg | plain CPU ms/MiB | TLS CPU ms/MiB |"
        );
        let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for l in lines {
            let _ = writeln!(md, "{l}");
        }
        let _ = writeln!(md);
    }
    md
}

/// `a`'s CPU per message over `b`'s, or `-` below the clock's resolution.
pub(super) fn cpu_ratio(a: &Medians, b: &Medians) -> String {
    if a.cpu_us_per_msg > 0.0 && b.cpu_us_per_msg > 0.0 {
        format!("{:.2}x", a.cpu_us_per_msg / b.cpu_us_per_msg)
    } else {
        "-".to_owned()
    }
}
