//! What a client process measures about itself, read from `/proc` (no
//! `unsafe`, no libc): CPU time and peak resident set size; and the one-line
//! report it prints.

use std::fmt::Write as _;
use std::time::Duration;

/// Clock ticks per second of `/proc/*/stat` (`USER_HZ`, 100 on Linux).
const TICKS_PER_SEC: u64 = 100;

/// User plus system CPU time of this process so far (10 ms resolution).
#[must_use]
pub fn cpu_time() -> Duration {
    cpu_time_at("/proc/self/stat")
}

/// User plus system CPU time of process `pid` so far, every thread included
/// (zero when it cannot be read).
#[must_use]
pub fn cpu_time_of(pid: u32) -> Duration {
    cpu_time_at(&format!("/proc/{pid}/stat"))
}

fn cpu_time_at(path: &str) -> Duration {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return Duration::ZERO;
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5); `rest` starts at field 3.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    Duration::from_millis(ticks * 1000 / TICKS_PER_SEC)
}

/// Peak resident set size of this process in KiB (`VmHWM`).
#[must_use]
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// What one client run reports: printed by the child as one JSON line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// The client's name.
    pub client: String,
    /// Messages sent and accepted.
    pub messages: u64,
    /// Message bytes sent (the messages as given, before dot-stuffing).
    pub bytes: u64,
    /// Wall-clock time of the sending loop.
    pub secs: f64,
    /// CPU time (user + system) of the sending loop.
    pub cpu_secs: f64,
    /// Peak RSS of the process in KiB.
    pub rss_kib: u64,
    /// The pool runs: median latency of a message, microseconds.
    pub p50_us: Option<f64>,
    /// The pool runs: 99th percentile of the latency, microseconds.
    pub p99_us: Option<f64>,
}

impl Report {
    /// The report as one JSON line (no trailing newline).
    #[must_use]
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "{{\"client\":\"{}\",\"messages\":{},\"bytes\":{},\"secs\":{:.6},\"cpu_secs\":{:.6},\"rss_kib\":{}",
            self.client, self.messages, self.bytes, self.secs, self.cpu_secs, self.rss_kib
        );
        if let (Some(p50), Some(p99)) = (self.p50_us, self.p99_us) {
            let _ = write!(s, ",\"p50_us\":{p50:.1},\"p99_us\":{p99:.1}");
        }
        s.push('}');
        s
    }

    /// Parses a line written by [`Report::to_json`] (or by the Python client,
    /// which prints the same keys).
    #[must_use]
    pub fn from_json(line: &str) -> Option<Report> {
        let num = |key: &str| -> Option<f64> {
            let pat = format!("\"{key}\":");
            let at = line.find(&pat)? + pat.len();
            let rest = line[at..].trim_start();
            let end = rest
                .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | 'e' | 'E' | '+')))
                .unwrap_or(rest.len());
            rest[..end].parse().ok()
        };
        let client = {
            let pat = "\"client\":\"";
            let at = line.find(pat)? + pat.len();
            let end = line[at..].find('"')?;
            line[at..at + end].to_owned()
        };
        Some(Report {
            client,
            messages: num("messages")? as u64,
            bytes: num("bytes")? as u64,
            secs: num("secs")?,
            cpu_secs: num("cpu_secs")?,
            rss_kib: num("rss_kib")? as u64,
            p50_us: num("p50_us"),
            p99_us: num("p99_us"),
        })
    }
}

/// What a client's sending loop did: messages, their bytes, and (the pool
/// runs) each message's latency.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sent {
    /// Messages sent and accepted.
    pub messages: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Each message's latency in microseconds (empty when not measured).
    pub latencies_us: Vec<u64>,
}

impl From<(u64, u64)> for Sent {
    fn from((messages, bytes): (u64, u64)) -> Sent {
        Sent {
            messages,
            bytes,
            latencies_us: Vec::new(),
        }
    }
}

/// The `q`-quantile (0..=1) of `values`, nearest rank (`None` when empty).
#[must_use]
pub fn quantile(values: &mut [u64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    Some(values[rank - 1] as f64)
}

/// Measures `f`: wall time and CPU time around it, peak RSS after it, and the
/// median and 99th percentile of the latencies it reports, if any.
pub fn measure<S: Into<Sent>, E>(
    client: &str,
    f: impl FnOnce() -> Result<S, E>,
) -> Result<Report, E> {
    let cpu0 = cpu_time();
    let t0 = std::time::Instant::now();
    let mut sent: Sent = f()?.into();
    let secs = t0.elapsed().as_secs_f64();
    let cpu_secs = (cpu_time().saturating_sub(cpu0)).as_secs_f64();
    Ok(Report {
        client: client.to_owned(),
        messages: sent.messages,
        bytes: sent.bytes,
        secs,
        cpu_secs,
        rss_kib: peak_rss_kib(),
        p50_us: quantile(&mut sent.latencies_us, 0.50),
        p99_us: quantile(&mut sent.latencies_us, 0.99),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_round_trips_through_json() {
        let r = Report {
            client: "blocking".into(),
            messages: 50,
            bytes: 51200,
            secs: 0.25,
            cpu_secs: 0.01,
            rss_kib: 2048,
            p50_us: None,
            p99_us: None,
        };
        assert_eq!(Report::from_json(&r.to_json()), Some(r.clone()));
        let pooled = Report {
            p50_us: Some(812.0),
            p99_us: Some(2400.5),
            ..r
        };
        assert_eq!(Report::from_json(&pooled.to_json()), Some(pooled));
    }

    #[test]
    fn quantiles_take_the_nearest_rank() {
        let mut v: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(quantile(&mut v, 0.5), Some(50.0));
        assert_eq!(quantile(&mut v, 0.99), Some(99.0));
        assert_eq!(quantile(&mut [7], 0.99), Some(7.0));
        assert_eq!(quantile(&mut [], 0.5), None);
    }

    #[test]
    fn proc_readings_are_plausible() {
        assert!(peak_rss_kib() > 0);
        let _ = cpu_time();
    }
}
