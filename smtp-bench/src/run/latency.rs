//! The report of the rows over a link with latency: time per message, the
//! round trips the sink counted next to the protocol's minimum for what the
//! sink offered, and the targets of those rows.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::report::{OURS, row};
use super::{Case, ClientKind, LATENCY_BATCH, Medians, POOL_SIZE, RunConfig, Samples, SinkKind};

/// What a sink offers, as far as the minimum depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Offer {
    pipelining: bool,
    chunking: bool,
    starttls: bool,
    pipe_connect: bool,
}

fn offer(sink: SinkKind) -> Option<Offer> {
    let c = sink.config()?;
    Some(Offer {
        pipelining: c.pipelining,
        chunking: c.chunking,
        starttls: sink.starttls(),
        pipe_connect: c.pipelining && c.pipe_connect,
    })
}

/// The round trips of opening a session that writes EHLO (and, with
/// STARTTLS offered, STARTTLS behind it) before the greeting (PIPECONNECT
/// learnt on an earlier connection), with how they add up; the first
/// session of a run cannot, and opens as [`opening`] says.
fn early_opening(o: Offer) -> (u32, &'static str) {
    if o.starttls {
        (
            4,
            "greeting, EHLO reply and the 220 to STARTTLS in one flight 1 (EHLO and STARTTLS written before the greeting) + TLS 1.3 handshake 1 + EHLO 1 (it leaves with the client's Finished) + AUTH PLAIN with its initial response 1",
        )
    } else {
        (
            1,
            "greeting and EHLO reply in one flight 1 (EHLO written before the greeting)",
        )
    }
}

/// The round trips of opening a session, in the sink's count (greeting
/// included, TCP handshake not), with how they add up.
fn opening(o: Offer) -> (u32, &'static str) {
    if o.starttls {
        (
            6,
            "greeting 1 + EHLO 1 + STARTTLS 1 + TLS 1.3 handshake 1 + EHLO 1 (it leaves with the client's Finished) + AUTH PLAIN with its initial response 1",
        )
    } else {
        (2, "greeting 1 + EHLO 1")
    }
}

/// The round trips of one message on an open session, and of the QUIT
/// that ends one, with how they add up.
fn message(o: Offer) -> (u32, u32, &'static str) {
    match (o.pipelining, o.chunking) {
        (true, true) => (
            1,
            0,
            "MAIL+RCPT+BDAT LAST with the body in one flight 1; QUIT 0 (behind it)",
        ),
        (true, false) => (
            2,
            0,
            "MAIL+RCPT+DATA 1 + the body 1; QUIT 0 (behind the body)",
        ),
        (false, true) => (3, 1, "MAIL 1 + RCPT 1 + BDAT LAST 1; QUIT 1"),
        (false, false) => (4, 1, "MAIL 1 + RCPT 1 + DATA 1 + the body 1; QUIT 1"),
    }
}

/// The protocol's minimum of round trips per message in `case` against a
/// sink offering `o` (in the sink's count: greeting included, TCP handshake
/// not), for `messages` messages; and how it is derived.
fn minimum(case: Case, o: Offer, messages: f64) -> (f64, String) {
    let (open, open_how) = opening(o);
    let (per, quit, per_how) = message(o);
    if case.new_connection && o.pipe_connect {
        // The first connection of a run learns that the sink offers
        // PIPECONNECT (no cache outlives the client's process).
        let (early, early_how) = early_opening(o);
        let total = early + per + quit;
        let first = open - early;
        let min = f64::from(total) + f64::from(first) / messages.max(1.0);
        return (
            min,
            format!(
                "{early_how} + {per_how} = {total}; the run's first connection, which learns PIPECONNECT, waits for the greeting: + {first} once ({open_how}): {total} + {first} / the row's messages"
            ),
        );
    }
    if case.new_connection {
        let total = open + per + quit;
        return (
            f64::from(total),
            format!("{open_how} + {per_how} = {total}"),
        );
    }
    several(case, o, messages)
}

/// The minimum for sessions that carry several messages each (a batch on
/// one connection, a pool), with how it is derived. With PIPELINING, a
/// message's content may begin a group (RFC 2920 section 3.1), so the next
/// message's MAIL+RCPT+DATA can leave behind the end of the one before:
/// after the first envelope, one round trip per message. With CHUNKING too,
/// nothing has to end a group before QUIT (BDAT is not among the commands
/// that must), so every message of a session can leave in one group. A
/// client whose send takes one message and returns its result (ours,
/// `sendmail`, and every peer) cannot start the next envelope before that:
/// it spends one more per message with PIPELINING alone (2 + 2 / messages),
/// and one per message with CHUNKING (1 + 2 / messages).
fn several(case: Case, o: Offer, messages: f64) -> (f64, String) {
    let (open, open_how) = opening(o);
    let connections = if case.pool { POOL_SIZE as f64 } else { 1.0 };
    let sessions = if case.pool {
        format!("{POOL_SIZE} sessions, each")
    } else {
        "one session:".to_owned()
    };
    let (per, fixed, per_how) = match (o.pipelining, o.chunking) {
        (true, true) => (
            0,
            open + 1,
            "every message (MAIL+RCPT+BDAT LAST and its body) and QUIT in one group 1".to_owned(),
        ),
        (true, false) => (
            1,
            open + 1,
            "the first MAIL+RCPT+DATA 1; per message its body with the next MAIL+RCPT+DATA behind it (RFC 2920 section 3.1: message content may begin a group) 1; QUIT 0 (behind the last body)".to_owned(),
        ),
        _ => {
            let (per, quit, how) = message(o);
            (per, open + quit, format!("per message {how}"))
        }
    };
    let fixed = f64::from(fixed) * connections;
    let min = f64::from(per) + fixed / messages.max(1.0);
    let how = if case.pool {
        format!("{sessions} {open_how} once; {per_how}: {per} + {fixed} / the row's messages")
    } else {
        format!(
            "{sessions} {open_how} once; {per_how}: {per} + {fixed} / {messages:.0} messages = {min:.2}"
        )
    };
    (min, how)
}

/// Round trips per message as the sink counts them: its turns (writes that
/// follow bytes read from the client since its last write) plus the
/// greeting of each connection that waited for it (not of one whose EHLO
/// came before it: its greeting went out with the EHLO reply, in one turn).
fn counted(m: &Medians) -> Option<f64> {
    Some(m.turns? + m.connections_per_msg? - m.early_per_msg.unwrap_or(0.0))
}

/// Mean milliseconds per message (for a batch: the run's time over its
/// messages, the connection's opening and closing included).
fn ms(m: &Medians) -> f64 {
    1e3 / m.msgs_per_s
}

fn opt_ms(x: Option<f64>) -> String {
    x.map_or("-".into(), |x| format!("{:.1}", x / 1e3))
}

fn verdict(ok: bool) -> &'static str {
    if ok { "**met**" } else { "**missed**" }
}

const LETTRE: ClientKind = ClientKind::Lettre { nodelay: true };
const MAIL_SEND: ClientKind = ClientKind::MailSend { nodelay: true };

/// The section of the report: one table of every row over the link, the
/// minimums, and the targets.
pub(super) fn section(
    cfg: &RunConfig,
    samples: &Samples,
    sink_of: &BTreeMap<usize, SinkKind>,
) -> String {
    let mut md = String::new();
    let rtt = f64::from(cfg.rtt_ms);
    let mut keys: Vec<(Case, SinkKind, ClientKind)> = samples
        .keys()
        .filter(|(c, _, _)| c.rtt_ms > 0)
        .map(|(c, s, cl)| (*c, sink_of[s], cl.clone()))
        .collect();
    if keys.is_empty() {
        return md;
    }
    keys.sort_by(|a, b| {
        (a.0.pool, !a.0.new_connection, a.0.tls, a.1).cmp(&(
            b.0.pool,
            !b.0.new_connection,
            b.0.tls,
            b.1,
        ))
    });
    let _ = writeln!(md, "### Over a link with {} ms RTT\n", cfg.rtt_ms);
    let _ = writeln!(
        md,
        "Every client talks to the sink through `smtp_bench::relay`, which holds each chunk of bytes for half the RTT in \
         each direction and opens its connection to the sink 1.5 RTT after accepting the client's (the TCP handshake, \
         which the sink cannot see). ms/msg = the run's wall time over its messages (a batch: its {LATENCY_BATCH} messages, \
         connection and QUIT included; a pool: throughput, not latency); p50 / p99 = median and 99th percentile of each \
         message's time (a new connection: connect to the accepting reply, QUIT included; a batch: one send; a pool: from \
         asking for a session to the end of the send), medians over the runs (nearest rank: with 20 messages a run, p99 is its slowest); RTTs/msg = ms/msg over the RTT; \
         round trips/msg = the sink's count: each write of the sink that follows bytes read from the client since its \
         previous write (one per reply or batch of replies the client waited for, TLS handshake flights included), plus \
         one per connection for the greeting, except a connection whose EHLO was sent before the greeting (PIPECONNECT: \
         the sink held its greeting back for the EHLO reply, or the EHLO arrived less than an RTT after the greeting left); minimum = the protocol's fewest for what the sink offered, in the same count \
         (the TCP handshake adds 1 more per connection to the time of every client alike).\n"
    );
    let _ = writeln!(
        md,
        "| case | client | sink (what it offers) | ms/msg | p50 ms | p99 ms | RTTs/msg | round trips/msg (sink) | minimum | above minimum | connections/msg | runs |"
    );
    let _ = writeln!(
        md,
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut derivations: BTreeMap<String, String> = BTreeMap::new();
    let mut distances: Vec<(String, f64)> = Vec::new();
    for (case, sink, client) in &keys {
        let Some(m) = row(samples, sink_of, *case, *sink, client) else {
            continue;
        };
        let what = case_name(*case);
        let messages = m.messages;
        let min = offer(*sink).map(|o| minimum(*case, o, messages));
        let rt = counted(&m);
        if let Some((_, how)) = &min {
            derivations
                .entry(format!("{what}, {}", sink.label()))
                .or_insert_with(|| how.clone());
        }
        // Both are ratios of whole counts: a difference under 0.005 is
        // the floating point's, and shown as 0.
        let above = rt
            .zip(min.as_ref())
            .map(|(r, (mn, _))| if (r - mn).abs() < 0.005 { 0.0 } else { r - mn });
        if let Some(a) = above {
            distances.push((format!("{what}, {}, {}", sink.label(), client.label()), a));
        }
        let name = if client.is_ours() {
            format!("**{}**", client.label())
        } else {
            client.label()
        };
        let _ = writeln!(
            md,
            "| {what} | {name} | {} | {:.1} | {} | {} | {:.2} | {} | {} | {} | {} | {} |",
            sink.label(),
            ms(&m),
            opt_ms(m.p50_us),
            opt_ms(m.p99_us),
            ms(&m) / rtt,
            rt.map_or("-".into(), |x| format!("{x:.2}")),
            min.as_ref().map_or("-".into(), |(x, _)| format!("{x:.2}")),
            above.map_or("-".into(), |x| format!("{x:+.2}")),
            m.connections_per_msg
                .map_or("-".into(), |x| format!("{x:.3}")),
            m.runs,
        );
    }
    let _ = writeln!(
        md,
        "\nThe minimums, in the sink's count (greeting included, TCP handshake not):\n"
    );
    for (k, v) in &derivations {
        let _ = writeln!(md, "- {k}: {v}");
    }
    let _ = writeln!(md);
    md.push_str(&targets(cfg, samples, sink_of, &distances));
    md
}

fn case_name(case: Case) -> String {
    let base = if case.pool {
        format!("{} tasks, pool of {POOL_SIZE}", case.tasks())
    } else if case.new_connection {
        "new connection".to_owned()
    } else {
        format!("{LATENCY_BATCH} on one connection")
    };
    if case.tls {
        format!("{base}, STARTTLS + AUTH")
    } else {
        base
    }
}

/// A batch's total time, or a new connection's time per message.
fn time(case: Case, m: &Medians) -> String {
    if case.batch() {
        format!("{:.2} s", ms(m) * LATENCY_BATCH as f64 / 1e3)
    } else {
        format!("{:.1} ms", ms(m))
    }
}

/// The line of one target: each of our adapters' time over `peer`'s, at
/// most `bound` (against a sink that offers PIPECONNECT, ours with early
/// pipelining).
fn comparison(
    get: &dyn Fn(Case, SinkKind, &ClientKind) -> Option<Medians>,
    case: Case,
    sink: SinkKind,
    peer: &ClientKind,
    bound: f64,
    what: &str,
) -> Option<String> {
    let p = get(case, sink, peer)?;
    let cells: Vec<(String, f64)> = OURS
        .iter()
        .filter_map(|o| {
            let client = if sink.pipe_connect() {
                ClientKind::OursEarly(o)
            } else {
                ClientKind::Ours(o)
            };
            let m = get(case, sink, &client)?;
            let r = ms(&m) / ms(&p);
            Some((format!("{o} {r:.3}x ({})", time(case, &m)), r))
        })
        .collect();
    if cells.is_empty() {
        return None;
    }
    let worst = cells.iter().map(|c| c.1).fold(0.0, f64::max);
    let text: Vec<String> = cells.into_iter().map(|c| c.0).collect();
    let measure = if case.batch() {
        "total time"
    } else {
        "time per message"
    };
    Some(format!(
        "- {what}, {}: at most {bound}x {}'s {measure} ({}): {}: {}\n",
        sink.label(),
        peer.label(),
        time(case, &p),
        text.join(", "),
        verdict(worst <= bound)
    ))
}

/// The targets of issue 23 over the link, from this run.
fn targets(
    cfg: &RunConfig,
    samples: &Samples,
    sink_of: &BTreeMap<usize, SinkKind>,
    distances: &[(String, f64)],
) -> String {
    let get = |case, sink, client: &ClientKind| row(samples, sink_of, case, sink, client);
    let mut md = format!(
        "#### Targets over the {} ms link (computed from this run)\n\n",
        cfg.rtt_ms
    );
    let super::LinkCases {
        new_connection,
        tls,
        batch,
        ..
    } = Case::over_link(cfg.rtt_ms);
    let compare =
        |md: &mut String, case: Case, sink: SinkKind, peer: &ClientKind, bound: f64, what: &str| {
            if let Some(line) = comparison(&get, case, sink, peer, bound, what) {
                md.push_str(&line);
            }
        };
    for sink in [
        SinkKind::Fast(true, false),
        SinkKind::Fast(true, true),
        SinkKind::FastEarly(false),
        SinkKind::FastEarly(true),
    ] {
        compare(
            &mut md,
            new_connection,
            sink,
            &LETTRE,
            0.55,
            "new connection per message, plain",
        );
    }
    for sink in [
        SinkKind::FastTls(false, false),
        SinkKind::FastTls(true, false),
        SinkKind::FastTls(false, true),
        SinkKind::FastTls(true, true),
    ] {
        for peer in [&LETTRE, &MAIL_SEND] {
            compare(
                &mut md,
                tls,
                sink,
                peer,
                0.75,
                "new connection per message, STARTTLS + AUTH PLAIN",
            );
        }
    }
    for sink in [SinkKind::Fast(true, false), SinkKind::Fast(true, true)] {
        compare(
            &mut md,
            batch,
            sink,
            &LETTRE,
            0.5,
            "100 messages on one connection",
        );
    }
    let ours: Vec<&(String, f64)> = distances
        .iter()
        .filter(|d| d.0.contains("smtp-rs"))
        .collect();
    if !ours.is_empty() {
        let worst = ours.iter().map(|d| d.1).fold(f64::MIN, f64::max);
        let over: Vec<String> = ours
            .iter()
            .filter(|d| d.1 > 1.0 + 1e-9)
            .map(|d| format!("{} {:+.2}", d.0, d.1))
            .collect();
        let _ = writeln!(
            md,
            "- every case of ours at most 1 round trip above the minimum (sink-counted): worst {worst:+.2}{}: {}",
            if over.is_empty() {
                String::new()
            } else {
                format!(" ({})", over.join("; "))
            },
            verdict(worst <= 1.0 + 1e-9)
        );
    }
    let _ = writeln!(md);
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The minimum of a new connection per message against `sink` over
    /// `messages` messages, in the sink's count.
    fn new_connection(sink: SinkKind, tls: bool, messages: f64) -> (f64, String) {
        let cases = Case::over_link(20);
        let case = if tls { cases.tls } else { cases.new_connection };
        let o = offer(sink).expect("an in-tree sink has an offer");
        minimum(case, o, messages)
    }

    #[test]
    fn the_tls_sinks_offer_what_their_flags_say() {
        let tls = |chunking, pipe_connect| Offer {
            pipelining: true,
            chunking,
            starttls: true,
            pipe_connect,
        };
        for (c, e) in [(false, false), (true, false), (false, true), (true, true)] {
            assert_eq!(offer(SinkKind::FastTls(c, e)), Some(tls(c, e)), "{c} {e}");
        }
        assert!(!offer(SinkKind::FastEarly(true)).unwrap().starttls);
        assert_eq!(offer(SinkKind::Aiosmtpd), None);
        assert_eq!(
            SinkKind::FastTls(false, false).label(),
            "fast sink (pipelining+STARTTLS)"
        );
        assert_eq!(
            SinkKind::FastTls(true, true).label(),
            "fast sink (pipelining+chunking+pipe-connect+STARTTLS)"
        );
    }

    /// STARTTLS + AUTH PLAIN, a new connection per message: 8 with
    /// PIPELINING (the message in 2), 7 with CHUNKING too (the envelope,
    /// BDAT LAST and the body in one flight).
    #[test]
    fn starttls_minimums_without_pipe_connect() {
        let (min, how) = new_connection(SinkKind::FastTls(false, false), true, 20.0);
        assert_eq!(min, 8.0, "{how}");
        assert!(how.ends_with("= 8"), "{how}");
        let (min, how) = new_connection(SinkKind::FastTls(true, false), true, 20.0);
        assert_eq!(min, 7.0, "{how}");
        assert!(how.contains("BDAT LAST"), "{how}");
        assert!(how.ends_with("= 7"), "{how}");
    }

    /// With PIPECONNECT: greeting, EHLO reply and the 220 in one flight,
    /// TLS, EHLO, AUTH (4) and the message (2, or 1 with CHUNKING); the
    /// run's first connection waits for the greeting, 2 more once.
    #[test]
    fn starttls_minimums_with_pipe_connect() {
        let (min, how) = new_connection(SinkKind::FastTls(false, true), true, 20.0);
        assert_eq!(min, 6.0 + 2.0 / 20.0, "{how}");
        assert!(
            how.contains("and the 220 to STARTTLS in one flight 1"),
            "{how}"
        );
        assert!(how.contains("= 6;"), "{how}");
        assert!(how.contains("+ 2 once"), "{how}");
        let (min, how) = new_connection(SinkKind::FastTls(true, true), true, 20.0);
        assert_eq!(min, 5.0 + 2.0 / 20.0, "{how}");
        assert!(how.contains("= 5;"), "{how}");
        let (min, _) = new_connection(SinkKind::FastTls(true, true), true, 1.0);
        assert_eq!(min, 7.0);
    }

    /// The plain rows keep their minimums.
    #[test]
    fn plain_minimums_are_unchanged() {
        assert_eq!(
            new_connection(SinkKind::Fast(true, false), false, 20.0).0,
            4.0
        );
        assert_eq!(
            new_connection(SinkKind::Fast(true, true), false, 20.0).0,
            3.0
        );
        let (min, how) = new_connection(SinkKind::FastEarly(true), false, 20.0);
        assert_eq!(min, 2.0 + 1.0 / 20.0, "{how}");
        assert!(
            how.starts_with("greeting and EHLO reply in one flight 1"),
            "{how}"
        );
        let (min, _) = new_connection(SinkKind::FastEarly(false), false, 10.0);
        assert_eq!(min, 3.0 + 1.0 / 10.0);
    }

    /// Sessions that carry several messages: with PIPELINING the next
    /// envelope goes behind a message's end (one round trip a message after
    /// the first envelope), with CHUNKING too every message goes in one group;
    /// without PIPELINING each command waits.
    #[test]
    fn sessions_with_several_messages_count_what_the_protocol_allows() {
        let cases = Case::over_link(20);
        let fast = |p, c| offer(SinkKind::Fast(p, c)).expect("a fast sink has an offer");
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        let (m, how) = minimum(cases.batch, fast(true, false), 100.0);
        assert!(close(m, 1.03), "{m} {how}");
        assert!(how.contains("RFC 2920 section 3.1"), "{how}");
        let (m, how) = minimum(cases.batch, fast(true, true), 100.0);
        assert!(close(m, 0.03), "{m} {how}");
        let (m, how) = minimum(cases.batch, fast(false, false), 100.0);
        assert!(close(m, 4.03), "{m} {how}");
        let (m, how) = minimum(cases.pool, fast(true, false), 400.0);
        assert!(close(m, 1.0 + 24.0 / 400.0), "{m} {how}");
    }
}
