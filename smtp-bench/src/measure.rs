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
}

impl Report {
    /// The report as one JSON line (no trailing newline).
    #[must_use]
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "{{\"client\":\"{}\",\"messages\":{},\"bytes\":{},\"secs\":{:.6},\"cpu_secs\":{:.6},\"rss_kib\":{}}}",
            self.client, self.messages, self.bytes, self.secs, self.cpu_secs, self.rss_kib
        );
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
        })
    }
}

/// Measures `f`: wall time and CPU time around it, peak RSS after it.
pub fn measure<E>(client: &str, f: impl FnOnce() -> Result<(u64, u64), E>) -> Result<Report, E> {
    let cpu0 = cpu_time();
    let t0 = std::time::Instant::now();
    let (messages, bytes) = f()?;
    let secs = t0.elapsed().as_secs_f64();
    let cpu_secs = (cpu_time().saturating_sub(cpu0)).as_secs_f64();
    Ok(Report {
        client: client.to_owned(),
        messages,
        bytes,
        secs,
        cpu_secs,
        rss_kib: peak_rss_kib(),
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
        };
        assert_eq!(Report::from_json(&r.to_json()), Some(r));
    }

    #[test]
    fn proc_readings_are_plausible() {
        assert!(peak_rss_kib() > 0);
        let _ = cpu_time();
    }
}
