//! The targets of BENCHMARKS.md, met or missed, computed from a run.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::report::{OURS, row};
use super::{Case, ClientKind, Medians, POOL_SIZE, POOL_TASKS, Samples, SinkKind, medians};
use crate::measure::Report;

type Get<'a> = dyn Fn(Case, SinkKind, &ClientKind) -> Option<Medians> + 'a;

fn verdict(ok: bool) -> &'static str {
    if ok { "**met**" } else { "**missed**" }
}

/// Round trips per message, as the sink counted them.
fn rt(m: &Medians) -> String {
    m.turns.map_or("-".into(), |x| format!("{x:.2}"))
}

const LETTRE: ClientKind = ClientKind::Lettre { nodelay: true };

/// The goals of the TLS, pool and new-connection rows (issue 15).
pub(super) fn targets_round_two(samples: &Samples, sink_of: &BTreeMap<usize, SinkKind>) -> String {
    let get = |case, sink, client: &ClientKind| row(samples, sink_of, case, sink, client);
    let mut md = String::new();
    new_connection_target(&mut md, &get);
    tls_new_connection_targets(&mut md, &get);
    tls_one_connection_targets(&mut md, &get);
    pool_targets(&mut md, &get);
    md
}

/// 1 KiB, a new connection per message, plain.
fn new_connection_target(md: &mut String, get: &Get<'_>) {
    let lettre = LETTRE;
    let c2 = Case::plain(1024, true);
    let fast = SinkKind::Fast(true, false);
    if let Some(l) = get(c2, fast, &lettre) {
        let ours: Vec<(&str, Medians)> = OURS
            .iter()
            .filter_map(|o| get(c2, fast, &ClientKind::Ours(o)).map(|m| (*o, m)))
            .collect();
        if !ours.is_empty() {
            let _ = writeln!(
                md,
                "1 KiB, a new connection per message, {}:\n",
                fast.label()
            );
            let cells: Vec<String> = ours
                .iter()
                .map(|(o, m)| {
                    format!(
                        "{o} {:.2}x ({} round trips)",
                        m.msgs_per_s / l.msgs_per_s,
                        rt(m)
                    )
                })
                .collect();
            let worst = ours
                .iter()
                .map(|(_, m)| m.msgs_per_s / l.msgs_per_s)
                .fold(f64::MAX, f64::min);
            let _ = writeln!(
                md,
                "- at least 1.5x lettre (NODELAY, {} round trips per message) for every adapter: {}: {}\n",
                rt(&l),
                cells.join(", "),
                verdict(worst >= 1.5)
            );
        }
    }
}

/// 1 KiB, STARTTLS, a new connection per message.
fn tls_new_connection_targets(md: &mut String, get: &Get<'_>) {
    let (lettre, mail_send) = (LETTRE, ClientKind::MailSend { nodelay: true });
    let c2 = Case::plain(1024, true);
    // STARTTLS, a new connection per message.
    let t1 = Case { tls: true, ..c2 };
    let tls = SinkKind::FastTls(false, false);
    let ours: Vec<(&str, Medians)> = OURS
        .iter()
        .filter_map(|o| get(t1, tls, &ClientKind::Ours(o)).map(|m| (*o, m)))
        .collect();
    if !ours.is_empty() {
        let _ = writeln!(
            md,
            "1 KiB, STARTTLS + AUTH, a new connection per message, {}:\n",
            tls.label()
        );
        for peer in [&lettre, &mail_send] {
            let Some(p) = get(t1, tls, peer) else {
                continue;
            };
            let cells: Vec<String> = ours
                .iter()
                .map(|(o, m)| {
                    format!(
                        "{o} {:.2}x at {:.0} us CPU ({} round trips)",
                        m.msgs_per_s / p.msgs_per_s,
                        m.cpu_us_per_msg,
                        rt(m)
                    )
                })
                .collect();
            let worst = ours
                .iter()
                .map(|(_, m)| m.msgs_per_s / p.msgs_per_s)
                .fold(f64::MAX, f64::min);
            let _ = writeln!(
                md,
                "- sessions/s at least 1.5x {} ({:.0} us CPU, {} round trips): {}: {}",
                peer.label(),
                p.cpu_us_per_msg,
                rt(&p),
                cells.join(", "),
                verdict(worst >= 1.5)
            );
        }
        let resumption: Vec<(String, f64)> = ours
            .iter()
            .filter_map(|(o, m)| {
                let f = get(t1, tls, &ClientKind::OursFresh(o))?;
                Some((
                    format!(
                        "{o} {:.2}x ({:.0} against {:.0} us CPU)",
                        m.msgs_per_s / f.msgs_per_s,
                        m.cpu_us_per_msg,
                        f.cpu_us_per_msg
                    ),
                    m.msgs_per_s / f.msgs_per_s,
                ))
            })
            .collect();
        if !resumption.is_empty() {
            let worst = resumption.iter().map(|r| r.1).fold(f64::MAX, f64::min);
            let cells: Vec<String> = resumption.into_iter().map(|r| r.0).collect();
            let _ = writeln!(
                md,
                "- with the configuration shared (resumption), at least 1.3x our own full-handshake rate: {}: {}",
                cells.join(", "),
                verdict(worst >= 1.3)
            );
        }
        let _ = writeln!(md);
    }
}

/// STARTTLS, one connection.
fn tls_one_connection_targets(md: &mut String, get: &Get<'_>) {
    let (lettre, fast, tls) = (
        LETTRE,
        SinkKind::Fast(true, false),
        SinkKind::FastTls(false, false),
    );
    // STARTTLS, one connection.
    let t2 = Case {
        tls: true,
        ..Case::plain(1024, false)
    };
    let t3 = Case {
        tls: true,
        ..Case::plain(1 << 20, false)
    };
    let mut lines = Vec::new();
    if let Some(l) = get(t2, tls, &lettre) {
        let worst = OURS
            .iter()
            .filter_map(|o| get(t2, tls, &ClientKind::Ours(o)).map(|m| (*o, m)))
            .min_by(|a, b| a.1.msgs_per_s.total_cmp(&b.1.msgs_per_s));
        if let Some((o, m)) = worst {
            let r = m.msgs_per_s / l.msgs_per_s;
            lines.push(format!(
                "- 1 KiB: at least 2x lettre (NODELAY): slowest adapter ({o}) {r:.2}x: {}",
                verdict(r >= 2.0)
            ));
        }
    }
    let plain_mib = Case::plain(1 << 20, false);
    let shares: Vec<(String, f64)> = OURS
        .iter()
        .filter_map(|o| {
            let t = get(t3, tls, &ClientKind::Ours(o))?;
            let p = get(plain_mib, fast, &ClientKind::Ours(o))?;
            Some((
                format!("{o} {:.0}%", 100.0 * t.mb_per_s / p.mb_per_s),
                t.mb_per_s / p.mb_per_s,
            ))
        })
        .collect();
    if !shares.is_empty() {
        let worst = shares.iter().map(|s| s.1).fold(f64::MAX, f64::min);
        let cells: Vec<String> = shares.into_iter().map(|s| s.0).collect();
        lines.push(format!(
            "- 1 MiB: at least 80% of our own plain-TCP MB/s: {}: {}",
            cells.join(", "),
            verdict(worst >= 0.8)
        ));
    }
    if !lines.is_empty() {
        let _ = writeln!(md, "STARTTLS + AUTH, one connection, {}:\n", tls.label());
        for l in lines {
            let _ = writeln!(md, "{l}");
        }
        let _ = writeln!(md);
    }
}

/// The pool.
fn pool_targets(md: &mut String, get: &Get<'_>) {
    let (lettre, fast) = (LETTRE, SinkKind::Fast(true, false));
    // The pool.
    let p1 = Case {
        pool: true,
        ..Case::plain(1024, false)
    };
    let mut any = false;
    for peer in [&lettre, &ClientKind::LettreBounded] {
        let Some(l) = get(p1, fast, peer) else {
            continue;
        };
        for o in ["tokio", "async-std"] {
            let Some(m) = get(p1, fast, &ClientKind::Ours(o)) else {
                continue;
            };
            if !any {
                let _ = writeln!(
                    md,
                    "{POOL_TASKS} tasks, one pool of {POOL_SIZE}, {}:\n",
                    fast.label()
                );
                any = true;
            }
            let r = m.msgs_per_s / l.msgs_per_s;
            let p99_ok = match (m.p99_us, l.p99_us) {
                (Some(a), Some(b)) => a <= b,
                _ => false,
            };
            let ms = |x: Option<f64>| x.map_or("-".into(), |x| format!("{:.2} ms", x / 1e3));
            let _ = writeln!(
                md,
                "- smtp-rs {o} against {}: at least 2x its msgs/s with p99 no worse: {r:.2}x, p99 {} against {}: {}",
                peer.label(),
                ms(m.p99_us),
                ms(l.p99_us),
                verdict(r >= 2.0 && p99_ok)
            );
        }
    }
    if any {
        let _ = writeln!(md);
    }
}

pub(super) fn targets(
    samples: &Samples,
    sink_of: &BTreeMap<usize, SinkKind>,
    streams: &[(String, String, Report)],
) -> String {
    let get = |case: Case, sink: SinkKind, client: &ClientKind| -> Option<Medians> {
        samples
            .iter()
            .find(|((c, s, cl), _)| *c == case && sink_of.get(s) == Some(&sink) && cl == client)
            .map(|(_, v)| medians(v))
    };
    let best_ours = |case: Case, sink: SinkKind| -> Option<(String, Medians)> {
        ["blocking", "tokio", "async-std"]
            .iter()
            .filter_map(|o| {
                get(case, sink, &ClientKind::Ours(o)).map(|m| (format!("smtp-rs {o}"), m))
            })
            .max_by(|a, b| a.1.msgs_per_s.total_cmp(&b.1.msgs_per_s))
    };
    let worst_ours = |case: Case, sink: SinkKind| -> Option<(String, Medians)> {
        ["blocking", "tokio", "async-std"]
            .iter()
            .filter_map(|o| {
                get(case, sink, &ClientKind::Ours(o)).map(|m| (format!("smtp-rs {o}"), m))
            })
            .min_by(|a, b| a.1.msgs_per_s.total_cmp(&b.1.msgs_per_s))
    };
    let verdict = |ok: bool| if ok { "**met**" } else { "**missed**" };
    let mut md = String::from("### Targets (computed from this run)\n\n");
    let k1 = Case::plain(1024, false);
    for sink in [
        SinkKind::Postfix,
        SinkKind::Fast(true, false),
        SinkKind::Fast(true, true),
    ] {
        let (Some((wn, w)), Some((bn, b))) = (worst_ours(k1, sink), best_ours(k1, sink)) else {
            continue;
        };
        let _ = writeln!(md, "1 KiB, one connection, {}:\n", sink.label());
        if let Some(l) = get(k1, sink, &ClientKind::Lettre { nodelay: true }) {
            let r = w.msgs_per_s / l.msgs_per_s;
            let _ = writeln!(
                md,
                "- at least 2x lettre (NODELAY): slowest adapter ({wn}) {r:.2}x, fastest ({bn}) {:.2}x: {}",
                b.msgs_per_s / l.msgs_per_s,
                verdict(r >= 2.0)
            );
        }
        if let Some(s) = get(k1, sink, &ClientKind::SmtpSource) {
            let r = w.msgs_per_s / s.msgs_per_s;
            let _ = writeln!(
                md,
                "- at least 1.5x smtp-source: slowest adapter ({wn}) {r:.2}x, fastest ({bn}) {:.2}x: {}",
                b.msgs_per_s / s.msgs_per_s,
                verdict(r >= 1.5)
            );
        }
        let max_cpu = ["blocking", "tokio", "async-std"]
            .iter()
            .filter_map(|o| get(k1, sink, &ClientKind::Ours(o)).map(|m| (o, m.cpu_us_per_msg)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((o, cpu)) = max_cpu {
            let _ = writeln!(
                md,
                "- CPU at most 50 us per message: highest is smtp-rs {o} at {cpu:.1} us: {}",
                verdict(cpu <= 50.0)
            );
        }
        if let SinkKind::Fast(_, true) = sink {
            let rts: Vec<f64> = ["blocking", "tokio", "async-std"]
                .iter()
                .filter_map(|o| get(k1, sink, &ClientKind::Ours(o)).and_then(|m| m.round_trips))
                .collect();
            let worst = rts.iter().copied().fold(0.0, f64::max);
            let _ = writeln!(
                md,
                "- with CHUNKING, one round trip per message: at most {worst:.2} (sink-counted): {}",
                verdict(!rts.is_empty() && worst <= 1.0)
            );
        }
        let _ = writeln!(md);
    }
    let k3 = Case::plain(1 << 20, false);
    // The bound is the faster of the two write sizes.
    let raw = samples
        .iter()
        .filter(|((c, _, cl), _)| *c == k3 && matches!(cl, ClientKind::RawTcp(_)))
        .map(|((_, _, cl), v)| (cl.label(), medians(v)))
        .max_by(|a, b| a.1.mb_per_s.total_cmp(&b.1.mb_per_s));
    for sink in [SinkKind::Fast(true, false), SinkKind::Fast(true, true)] {
        let Some((wn, w)) = worst_ours(k3, sink) else {
            continue;
        };
        let _ = writeln!(md, "1 MiB, one connection, {}:\n", sink.label());
        if let Some(s) = get(k3, SinkKind::Fast(true, false), &ClientKind::SmtpSource) {
            let _ = writeln!(
                md,
                "- at least smtp-source's MB/s: slowest adapter ({wn}) {:.0} vs {:.0} MB/s ({:.2}x): {}",
                w.mb_per_s,
                s.mb_per_s,
                w.mb_per_s / s.mb_per_s,
                verdict(w.mb_per_s >= s.mb_per_s)
            );
            let max_cpu = ["blocking", "tokio", "async-std"]
                .iter()
                .filter_map(|o| get(k3, sink, &ClientKind::Ours(o)).map(|m| (o, m.cpu_us_per_msg)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((o, cpu)) = max_cpu {
                let _ = writeln!(
                    md,
                    "- CPU per MiB no more than smtp-source's: highest smtp-rs {o} {:.2} ms vs {:.2} ms: {}",
                    cpu / 1e3,
                    s.cpu_us_per_msg / 1e3,
                    verdict(cpu <= s.cpu_us_per_msg)
                );
            }
        }
        if let Some((rn, r)) = &raw {
            let _ = writeln!(
                md,
                "- at least 50% of raw loopback TCP ({rn}): slowest adapter ({wn}) {:.0} of {:.0} MB/s ({:.0}%): {}",
                w.mb_per_s,
                r.mb_per_s,
                100.0 * w.mb_per_s / r.mb_per_s,
                verdict(w.mb_per_s >= 0.5 * r.mb_per_s)
            );
        }
        let _ = writeln!(md);
    }
    md.push_str(&targets_round_two(samples, sink_of));
    if !streams.is_empty() {
        let worst = streams.iter().map(|s| s.2.rss_kib).max().unwrap_or(0);
        let _ = writeln!(
            md,
            "1 GiB message through each adapter: highest peak RSS {:.1} MiB (target under 16 MiB): {}\n",
            worst as f64 / 1024.0,
            verdict(worst < 16 * 1024)
        );
    }
    md
}
