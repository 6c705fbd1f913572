//! The benchmark run: starts the sinks, runs every client as a pinned child
//! process in interleaved rounds, takes medians and writes a markdown report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::clients::{BoxError, FROM, HELO, TO, message};
use crate::measure::{Report, cpu_time_of};
use crate::pki::{self, TlsFiles};
use crate::sink::{Snapshot, query_stats};

/// Tasks of the pool rows.
pub const POOL_TASKS: u64 = 256;
/// Connections of the pool rows.
pub const POOL_SIZE: usize = 8;

/// Everything `smtp-bench run` is told.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// This executable (the children are `smtp-bench client ...`).
    pub exe: PathBuf,
    /// Interleaved rounds.
    pub reps: usize,
    /// Fewer messages per run (a smoke run).
    pub quick: bool,
    /// The CPU client and sink are pinned to (`taskset -c`).
    pub cpu: String,
    /// Also run the 1 KiB case with the sink on this other CPU.
    pub cross_cpu: Option<String>,
    /// The `LD_PRELOAD` shim that forces TCP_NODELAY (lettre, mail-send rows).
    pub shim: Option<PathBuf>,
    /// Postfix `smtp-source`.
    pub smtp_source: Option<PathBuf>,
    /// Postfix `smtp-sink`.
    pub smtp_sink: Option<PathBuf>,
    /// The Python interpreter for the smtplib client.
    pub python: Option<PathBuf>,
    /// Where message files, raw results and the report go.
    pub out_dir: PathBuf,
    /// Skip the 1 GiB streaming runs.
    pub no_stream: bool,
    /// A Python interpreter that can import aiosmtpd (the real server of the
    /// TLS rows; skipped without it).
    pub aiosmtpd_python: Option<PathBuf>,
    /// How long each run sends (smtp-source, which cannot stop on time, gets a
    /// message count calibrated to about this long).
    pub seconds: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum SinkKind {
    Postfix,
    /// pipelining, chunking
    Fast(bool, bool),
    /// The fast sink with PIPELINING, STARTTLS and AUTH PLAIN.
    FastTls,
    /// aiosmtpd with STARTTLS required and AUTH PLAIN.
    Aiosmtpd,
    Discard,
}

impl SinkKind {
    fn label(self) -> String {
        match self {
            SinkKind::Postfix => "Postfix smtp-sink".into(),
            SinkKind::Fast(p, c) => format!(
                "fast sink ({})",
                crate::sink::SinkConfig {
                    pipelining: p,
                    chunking: c,
                    tls: None,
                }
                .label()
            ),
            SinkKind::FastTls => "fast sink (pipelining+STARTTLS)".into(),
            SinkKind::Aiosmtpd => "aiosmtpd 1.4 (STARTTLS)".into(),
            SinkKind::Discard => "discard (raw TCP)".into(),
        }
    }

    /// Whether the in-tree sink's counters can be read (`XSTATS`).
    fn counts(self) -> bool {
        matches!(self, SinkKind::Fast(..) | SinkKind::FastTls)
    }
}

struct RunningSink {
    child: Child,
    addr: String,
}

impl Drop for RunningSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum ClientKind {
    /// Our adapter (blocking, tokio, async-std); no_pipelining, no_chunking.
    Ours(&'static str),
    /// Our adapter over TLS with a new rustls configuration per connection
    /// (full handshakes; `Ours` shares one and resumes).
    OursFresh(&'static str),
    Lettre {
        nodelay: bool,
    },
    /// lettre's async pool behind a semaphore of [`POOL_SIZE`] permits
    /// (NODELAY forced): at most that many sends, so about that many
    /// connections, at once.
    LettreBounded,
    MailSend {
        nodelay: bool,
    },
    Smtplib,
    SmtpSource,
    /// Writes of this many KiB.
    RawTcp(u32),
}

impl ClientKind {
    fn label(&self) -> String {
        match self {
            ClientKind::Ours(n) => format!("smtp-rs {n}"),
            ClientKind::OursFresh(n) => format!("smtp-rs {n} (new TLS config per connection)"),
            ClientKind::Lettre { nodelay: true } => "lettre 0.11 (NODELAY forced)".into(),
            ClientKind::Lettre { nodelay: false } => "lettre 0.11 (as shipped)".into(),
            ClientKind::LettreBounded => {
                format!("lettre 0.11 + {POOL_SIZE}-permit semaphore (NODELAY forced)")
            }
            ClientKind::MailSend { nodelay: true } => "mail-send 0.7 (NODELAY forced)".into(),
            ClientKind::MailSend { nodelay: false } => "mail-send 0.7 (as shipped)".into(),
            ClientKind::Smtplib => "Python smtplib".into(),
            ClientKind::SmtpSource => "Postfix smtp-source".into(),
            ClientKind::RawTcp(k) if *k >= 1024 => "raw TCP, 1 MiB writes (bound)".into(),
            ClientKind::RawTcp(k) => format!("raw TCP, {k} KiB writes (bound)"),
        }
    }

    fn is_ours(&self) -> bool {
        matches!(self, ClientKind::Ours(_) | ClientKind::OursFresh(_))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Case {
    size: u64,
    new_connection: bool,
    cross_core: bool,
    /// STARTTLS and AUTH PLAIN before the first message.
    tls: bool,
    /// [`POOL_TASKS`] tasks sending through one pool of [`POOL_SIZE`].
    pool: bool,
}

impl Case {
    /// One connection, plain TCP, client and sink on one core.
    fn plain(size: u64, new_connection: bool) -> Case {
        Case {
            size,
            new_connection,
            cross_core: false,
            tls: false,
            pool: false,
        }
    }

    fn title(self) -> String {
        let size = if self.size >= 1 << 20 {
            format!("{} MiB", self.size >> 20)
        } else {
            format!("{} KiB", self.size >> 10)
        };
        let conn = if self.pool {
            format!("{POOL_TASKS} tasks through one pool of {POOL_SIZE} connections")
        } else if self.new_connection {
            "a new connection per message".to_owned()
        } else {
            "one connection".to_owned()
        };
        let core = if self.cross_core {
            ", client and sink on different cores"
        } else {
            ""
        };
        let tls = if self.tls {
            ", STARTTLS + AUTH PLAIN"
        } else {
            ""
        };
        format!("{size} messages, {conn}{tls}{core}")
    }
}

#[derive(Debug, Clone)]
struct Job {
    case: Case,
    sink: usize,
    client: ClientKind,
    count: u64,
}

/// One measured run.
#[derive(Debug, Clone, Copy)]
struct Sample {
    msgs_per_s: f64,
    mb_per_s: f64,
    cpu_us_per_msg: f64,
    rss_kib: u64,
    round_trips: Option<f64>,
    /// Turns counted by the sink per message (see `sink`).
    turns: Option<f64>,
    wire_bytes: Option<f64>,
    sink_cpu_us_per_msg: f64,
    /// Share of TLS handshakes that resumed a session.
    resumed: Option<f64>,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
    /// Connections the client opened.
    connections: Option<f64>,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[derive(Debug, Clone, Copy)]
struct Medians {
    msgs_per_s: f64,
    mb_per_s: f64,
    cpu_us_per_msg: f64,
    rss_kib: u64,
    round_trips: Option<f64>,
    turns: Option<f64>,
    wire_bytes: Option<f64>,
    sink_cpu_us_per_msg: f64,
    resumed: Option<f64>,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
    connections: Option<f64>,
    runs: usize,
    spread: f64,
}

fn medians(samples: &[Sample]) -> Medians {
    let m = |f: fn(&Sample) -> f64| median(samples.iter().map(f).collect());
    let opt = |f: fn(&Sample) -> Option<f64>| {
        let v: Vec<f64> = samples.iter().filter_map(f).collect();
        (!v.is_empty()).then(|| median(v))
    };
    let rates: Vec<f64> = samples.iter().map(|s| s.msgs_per_s).collect();
    let (lo, hi) = rates
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), &x| (l.min(x), h.max(x)));
    let med = median(rates.clone());
    Medians {
        msgs_per_s: med,
        mb_per_s: m(|s| s.mb_per_s),
        cpu_us_per_msg: m(|s| s.cpu_us_per_msg),
        rss_kib: samples.iter().map(|s| s.rss_kib).max().unwrap_or(0),
        round_trips: opt(|s| s.round_trips),
        turns: opt(|s| s.turns),
        wire_bytes: opt(|s| s.wire_bytes),
        sink_cpu_us_per_msg: m(|s| s.sink_cpu_us_per_msg),
        resumed: opt(|s| s.resumed),
        p50_us: opt(|s| s.p50_us),
        p99_us: opt(|s| s.p99_us),
        connections: opt(|s| s.connections),
        runs: samples.len(),
        spread: if med > 0.0 { (hi - lo) / med } else { 0.0 },
    }
}

fn taskset(cpu: &str) -> Command {
    let mut c = Command::new("taskset");
    c.args(["-c", cpu]);
    c
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_listening(addr: &str) -> Result<(), BoxError> {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut s) = TcpStream::connect(addr) {
            // Read the greeting so the probe is a clean session.
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut b = [0u8; 512];
            let _ = s.read(&mut b);
            let _ = s.write_all(b"QUIT\r\n");
            let _ = s.read(&mut b);
            return Ok(());
        }
        if Instant::now() > until {
            return Err(format!("nothing listens on {addr}").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads the child's first line, `listening on HOST:PORT`.
fn listening_on(child: &mut Child) -> Result<String, BoxError> {
    let stdout = child.stdout.take().ok_or("no sink stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    Ok(line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("unexpected sink output {line:?}"))?
        .to_owned())
}

fn start_sink(
    cfg: &RunConfig,
    kind: SinkKind,
    cpu: &str,
    tls: &TlsFiles,
) -> Result<RunningSink, BoxError> {
    match kind {
        SinkKind::Aiosmtpd => {
            let python = cfg.aiosmtpd_python.as_ref().ok_or("no aiosmtpd")?;
            let port = free_port()?;
            let mut child = taskset(cpu)
                .arg(python)
                .arg(cfg.out_dir.join("aiosmtpd_sink.py"))
                .arg(port.to_string())
                .arg(&tls.chain)
                .arg(&tls.key)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()?;
            match listening_on(&mut child) {
                Ok(addr) => Ok(RunningSink { child, addr }),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    Err(e)
                }
            }
        }
        SinkKind::Postfix => {
            let bin = cfg.smtp_sink.as_ref().ok_or("no smtp-sink")?;
            let port = free_port()?;
            let addr = format!("127.0.0.1:{port}");
            let child = taskset(cpu)
                .arg(bin)
                .args(["-c", "-u", "nobody", &addr, "256"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            let sink = RunningSink { child, addr };
            wait_listening(&sink.addr)?;
            Ok(sink)
        }
        SinkKind::Fast(..) | SinkKind::FastTls | SinkKind::Discard => {
            let mut cmd = taskset(cpu);
            cmd.arg(&cfg.exe)
                .arg("sink")
                .args(["--listen", "127.0.0.1:0"]);
            match kind {
                SinkKind::Fast(pipelining, chunking) => {
                    if pipelining {
                        cmd.arg("--pipelining");
                    }
                    if chunking {
                        cmd.arg("--chunking");
                    }
                }
                SinkKind::FastTls => {
                    cmd.arg("--pipelining")
                        .arg("--tls-cert")
                        .arg(&tls.chain)
                        .arg("--tls-key")
                        .arg(&tls.key);
                }
                _ => {
                    cmd.arg("--discard");
                }
            }
            let mut child = cmd
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()?;
            let addr = listening_on(&mut child)?;
            Ok(RunningSink { child, addr })
        }
    }
}

struct Files {
    crlf: BTreeMap<u64, PathBuf>,
    lf: BTreeMap<u64, PathBuf>,
}

fn write_messages(dir: &Path, sizes: &[u64]) -> Result<Files, BoxError> {
    let mut files = Files {
        crlf: BTreeMap::new(),
        lf: BTreeMap::new(),
    };
    for &size in sizes {
        let m = message(usize::try_from(size)?);
        let p = dir.join(format!("message-{size}.eml"));
        std::fs::write(&p, &m)?;
        files.crlf.insert(size, p);
        // smtp-source -F appends CRLF to each line itself: give it LF lines.
        let lf: Vec<u8> = m
            .split(|&b| b == b'\n')
            .flat_map(|l| {
                l.strip_suffix(b"\r")
                    .unwrap_or(l)
                    .iter()
                    .copied()
                    .chain([b'\n'])
            })
            .collect();
        let lf = &lf[..lf.len() - 1];
        let p = dir.join(format!("message-{size}.lf"));
        std::fs::write(&p, lf)?;
        files.lf.insert(size, p);
    }
    Ok(files)
}

/// Runs the child and waits at most `limit`.
fn run_child(mut cmd: Command, limit: Duration) -> Result<(String, Duration), BoxError> {
    let t0 = Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let mut out = child.stdout.take().ok_or("no stdout")?;
    let mut err = child.stderr.take().ok_or("no stderr")?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {limit:?}").into());
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let wall = t0.elapsed();
    let stdout = reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    if !status.success() {
        return Err(format!("{status}: {}", stderr.trim()).into());
    }
    // /usr/bin/time writes to stderr: pass both.
    Ok((format!("{stdout}\n{stderr}"), wall))
}

fn client_command(
    cfg: &RunConfig,
    job: &Job,
    addr: &str,
    files: &Files,
    tls: &TlsFiles,
) -> Result<Command, BoxError> {
    let count = job.count.to_string();
    let size = job.case.size.to_string();
    let seconds = cfg.seconds.to_string();
    let ours = |name: &str| {
        let name = if job.case.pool {
            format!("pool-{name}")
        } else {
            name.to_owned()
        };
        let mut c = taskset(&cfg.cpu);
        c.arg(&cfg.exe).args([
            "client",
            &name,
            "--addr",
            addr,
            "--count",
            &count,
            "--size",
            &size,
            "--seconds",
            &seconds,
        ]);
        if job.case.new_connection {
            c.arg("--new-connection");
        }
        if job.case.tls {
            c.arg("--tls-ca").arg(&tls.ca);
        }
        if job.case.pool {
            c.args([
                "--tasks",
                &POOL_TASKS.to_string(),
                "--pool-size",
                &POOL_SIZE.to_string(),
            ]);
            // Pinned to one CPU: one executor thread, as Tokio's
            // current-thread runtime has.
            c.env("ASYNC_STD_THREAD_COUNT", "1");
        }
        c
    };
    let preload = |c: &mut Command, on: bool| -> Result<(), BoxError> {
        if on {
            let shim = cfg.shim.as_ref().ok_or("no NODELAY shim")?;
            c.env("LD_PRELOAD", shim);
        }
        Ok(())
    };
    Ok(match &job.client {
        ClientKind::Ours(name) => ours(name),
        ClientKind::OursFresh(name) => {
            let mut c = ours(name);
            c.arg("--fresh-tls-config");
            c
        }
        ClientKind::Lettre { nodelay } => {
            let mut c = ours("lettre");
            preload(&mut c, *nodelay)?;
            c
        }
        ClientKind::LettreBounded => {
            let mut c = ours("lettre-bounded");
            preload(&mut c, true)?;
            c
        }
        ClientKind::MailSend { nodelay } => {
            let mut c = ours("mail-send");
            preload(&mut c, *nodelay)?;
            c
        }
        ClientKind::RawTcp(k) if *k >= 1024 => ours("raw-tcp"),
        ClientKind::RawTcp(_) => ours("raw-tcp-64k"),
        ClientKind::Smtplib => {
            let py = cfg.python.as_ref().ok_or("no python3")?;
            let script = cfg.out_dir.join("smtplib_client.py");
            let mut c = taskset(&cfg.cpu);
            c.arg(py)
                .arg(script)
                .arg(addr)
                .arg(&count)
                .arg(&files.crlf[&job.case.size]);
            c.arg(if job.case.new_connection {
                "new-connection"
            } else {
                "one-connection"
            });
            c.arg(&seconds);
            c
        }
        ClientKind::SmtpSource => {
            let bin = cfg.smtp_source.as_ref().ok_or("no smtp-source")?;
            let mut c = Command::new("/usr/bin/time");
            c.args(["-f", "TIME %e %U %S %M", "taskset", "-c", &cfg.cpu])
                .arg(bin);
            if !job.case.new_connection {
                c.arg("-d");
            }
            c.args(["-m", &count, "-M", HELO, "-f", FROM, "-t", TO, "-F"])
                .arg(&files.lf[&job.case.size])
                .arg(addr);
            c
        }
    })
}

fn parse_report(job: &Job, output: &str, wall: Duration) -> Result<Report, BoxError> {
    if job.client == ClientKind::SmtpSource {
        let line = output
            .lines()
            .find_map(|l| l.strip_prefix("TIME "))
            .ok_or("no /usr/bin/time line")?;
        let f: Vec<f64> = line
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        let [_, user, sys, rss] = f[..] else {
            return Err("bad /usr/bin/time line".into());
        };
        return Ok(Report {
            client: "smtp-source".into(),
            messages: job.count,
            bytes: job.count * job.case.size,
            secs: wall.as_secs_f64(),
            cpu_secs: user + sys,
            rss_kib: rss as u64,
            p50_us: None,
            p99_us: None,
        });
    }
    output
        .lines()
        .find_map(Report::from_json)
        .ok_or_else(|| format!("no report in {output:?}").into())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let nproc = std::thread::available_parallelism().map_or(0, usize::from);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    format!(
        "{nproc} CPUs ({cpu}), {} GiB RAM, Linux {}",
        mem >> 20,
        kernel.trim()
    )
}

/// The load averages over 1, 5 and 15 minutes (`/proc/loadavg`).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Runs the whole benchmark and writes `report.md` and `samples.tsv` into
/// `out_dir`; returns the report.
pub fn run(cfg: &RunConfig) -> Result<String, BoxError> {
    let load_before = load_average();
    let started = Instant::now();
    std::fs::create_dir_all(&cfg.out_dir)?;
    std::fs::write(
        cfg.out_dir.join("smtplib_client.py"),
        include_str!("../peers/smtplib_client.py"),
    )?;
    let kib = 1024u64;
    let mib = 1u64 << 20;
    let files = write_messages(&cfg.out_dir, &[kib, mib])?;
    let q = |full: u64, quick: u64| if cfg.quick { quick } else { full };
    const UNBOUNDED: u64 = 1_000_000_000;
    let tls = pki::write_certificates(&cfg.out_dir)?;
    let mut notes: Vec<String> = Vec::new();

    // The sinks, started once, pinned like the clients.
    let mut kinds = vec![
        SinkKind::Fast(false, false),
        SinkKind::Fast(true, false),
        SinkKind::Fast(true, true),
        SinkKind::FastTls,
        SinkKind::Discard,
    ];
    let postfix = cfg.smtp_sink.is_some();
    if postfix {
        kinds.insert(0, SinkKind::Postfix);
    }
    let mut sinks: Vec<(SinkKind, String, RunningSink)> = Vec::new();
    for &k in &kinds {
        sinks.push((k, cfg.cpu.clone(), start_sink(cfg, k, &cfg.cpu, &tls)?));
    }
    match &cfg.aiosmtpd_python {
        Some(python) => {
            std::fs::write(
                cfg.out_dir.join("aiosmtpd_sink.py"),
                include_str!("../peers/aiosmtpd_sink.py"),
            )?;
            match start_sink(cfg, SinkKind::Aiosmtpd, &cfg.cpu, &tls) {
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
            sinks.push((k, other.clone(), start_sink(cfg, k, other, &tls)?));
        }
    }
    let find = |k: SinkKind, cross: bool| {
        sinks
            .iter()
            .position(|(kk, cpu, _)| *kk == k && ((cpu != &cfg.cpu) == cross))
    };

    let ours = ["blocking", "tokio", "async-std"];
    let have_peers = |c: &ClientKind| match c {
        ClientKind::SmtpSource => cfg.smtp_source.is_some(),
        ClientKind::Smtplib => cfg.python.is_some(),
        ClientKind::Lettre { nodelay: true }
        | ClientKind::MailSend { nodelay: true }
        | ClientKind::LettreBounded => cfg.shim.is_some(),
        _ => true,
    };
    let mut jobs: Vec<Job> = Vec::new();
    let mut add = |case: Case, sink: Option<usize>, client: ClientKind, count: u64| {
        if let Some(sink) = sink
            && have_peers(&client)
        {
            jobs.push(Job {
                case,
                sink,
                client,
                count,
            });
        }
    };
    let peers_fast = [
        ClientKind::SmtpSource,
        ClientKind::Lettre { nodelay: true },
        ClientKind::MailSend { nodelay: true },
        ClientKind::Smtplib,
    ];

    // 1 KiB, one connection.
    let c1 = Case::plain(kib, false);
    let small_n = UNBOUNDED;
    for k in [
        SinkKind::Postfix,
        SinkKind::Fast(false, false),
        SinkKind::Fast(true, false),
        SinkKind::Fast(true, true),
    ] {
        for o in ours {
            add(c1, find(k, false), ClientKind::Ours(o), small_n);
        }
    }
    for k in [SinkKind::Postfix, SinkKind::Fast(true, false)] {
        for p in &peers_fast {
            add(c1, find(k, false), p.clone(), small_n);
        }
    }
    // As shipped, lettre and mail-send wait ~44 ms per message: few messages.
    for p in [
        ClientKind::Lettre { nodelay: false },
        ClientKind::MailSend { nodelay: false },
    ] {
        add(c1, find(SinkKind::Fast(true, false), false), p, UNBOUNDED);
    }
    // The same across cores.
    let cx = Case {
        cross_core: true,
        ..c1
    };
    for k in [SinkKind::Postfix, SinkKind::Fast(true, false)] {
        for o in ours {
            add(cx, find(k, true), ClientKind::Ours(o), small_n);
        }
        for p in &peers_fast {
            add(cx, find(k, true), p.clone(), small_n);
        }
    }

    // 1 KiB, a new connection per message.
    let c2 = Case::plain(kib, true);
    let conn_n = UNBOUNDED;
    for k in [SinkKind::Postfix, SinkKind::Fast(true, false)] {
        for o in ours {
            add(c2, find(k, false), ClientKind::Ours(o), conn_n);
        }
        for p in &peers_fast {
            add(c2, find(k, false), p.clone(), conn_n);
        }
    }

    // 1 MiB, one connection, fast sink.
    let c3 = Case::plain(mib, false);
    for k in [SinkKind::Fast(true, false), SinkKind::Fast(true, true)] {
        for o in ours {
            add(c3, find(k, false), ClientKind::Ours(o), UNBOUNDED);
        }
    }
    let fast = find(SinkKind::Fast(true, false), false);
    add(c3, fast, ClientKind::SmtpSource, UNBOUNDED);
    add(c3, fast, ClientKind::Lettre { nodelay: true }, UNBOUNDED);
    add(c3, fast, ClientKind::MailSend { nodelay: true }, UNBOUNDED);
    add(c3, fast, ClientKind::Smtplib, UNBOUNDED);
    for k in [1024, 64] {
        add(
            c3,
            find(SinkKind::Discard, false),
            ClientKind::RawTcp(k),
            UNBOUNDED,
        );
    }

    // 1 MiB, a new connection per message.
    let c4 = Case::plain(mib, true);
    for o in ours {
        add(c4, fast, ClientKind::Ours(o), UNBOUNDED);
    }
    add(c4, fast, ClientKind::SmtpSource, UNBOUNDED);
    add(c4, fast, ClientKind::Lettre { nodelay: true }, UNBOUNDED);
    add(c4, fast, ClientKind::Smtplib, UNBOUNDED);

    // STARTTLS + AUTH PLAIN, a new connection per message (one session per
    // message): ours with a shared TLS configuration (resumed sessions) and
    // with a new one per connection (full handshakes), lettre and mail-send
    // (each keeps one configuration: they resume too), against the fast sink
    // and aiosmtpd. --quick leaves out the full-handshake rows of tokio and
    // async-std and runs aiosmtpd with blocking and the peers only.
    let t1 = Case { tls: true, ..c2 };
    let fast_tls = find(SinkKind::FastTls, false);
    let aiosmtpd = find(SinkKind::Aiosmtpd, false);
    let tls_peers = [
        ClientKind::Lettre { nodelay: true },
        ClientKind::MailSend { nodelay: true },
    ];
    for o in ours {
        add(t1, fast_tls, ClientKind::Ours(o), UNBOUNDED);
        if !cfg.quick || o == "blocking" {
            add(t1, fast_tls, ClientKind::OursFresh(o), UNBOUNDED);
        }
        if !cfg.quick || o == "blocking" {
            add(t1, aiosmtpd, ClientKind::Ours(o), UNBOUNDED);
        }
    }
    for p in &tls_peers {
        add(t1, fast_tls, p.clone(), UNBOUNDED);
        add(t1, aiosmtpd, p.clone(), UNBOUNDED);
    }

    // STARTTLS + AUTH PLAIN, one connection, 1 KiB and 1 MiB: next to the
    // plain rows above (fast sink with pipelining) and to lettre.
    for size in [kib, mib] {
        let t2 = Case {
            tls: true,
            ..Case::plain(size, false)
        };
        for o in ours {
            add(t2, fast_tls, ClientKind::Ours(o), UNBOUNDED);
        }
        add(
            t2,
            fast_tls,
            ClientKind::Lettre { nodelay: true },
            UNBOUNDED,
        );
    }

    // Many tasks, one pool: our Tokio and async-std pools and lettre's async
    // pool, plain TCP, fast sink with pipelining.
    let p1 = Case { pool: true, ..c1 };
    for o in ["tokio", "async-std"] {
        add(p1, fast, ClientKind::Ours(o), UNBOUNDED);
    }
    add(p1, fast, ClientKind::Lettre { nodelay: true }, UNBOUNDED);
    add(p1, fast, ClientKind::LettreBounded, UNBOUNDED);
    if !cfg.quick {
        add(p1, fast, ClientKind::Lettre { nodelay: false }, UNBOUNDED);
    }

    // smtp-source cannot stop on time: calibrate its message count once.
    for job in jobs
        .iter_mut()
        .filter(|j| j.client == ClientKind::SmtpSource)
    {
        let probe = match (job.case.size >= 1 << 20, job.case.new_connection) {
            (false, false) => 5_000,
            (false, true) => 1_000,
            (true, false) => 500,
            (true, true) => 100,
        };
        job.count = probe;
        let addr = &sinks[job.sink].2.addr;
        let cmd = client_command(cfg, job, addr, &files, &tls)?;
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

    let mut samples: BTreeMap<(Case, usize, ClientKind), Vec<Sample>> = BTreeMap::new();
    let mut failures: Vec<String> = Vec::new();
    let mut tsv = String::from(
        "round\tcase\tsink\tclient\tmessages\tsecs\tcpu_secs\trss_kib\treply_writes\twire_bytes\tsink_cpu_secs\tturns\ttls_resumed\tp50_us\tp99_us\n",
    );
    let limit = Duration::from_secs(120);
    for rep in 0..cfg.reps {
        // Interleaved: every job once per round, starting at a different place.
        let n = jobs.len();
        for i in 0..n {
            let index = (i + rep * 7) % n;
            let job = &jobs[index];
            let (kind, _, sink) = &sinks[job.sink];
            let before = if kind.counts() {
                query_stats(&sink.addr).ok()
            } else {
                None
            };
            let cmd = client_command(cfg, job, &sink.addr, &files, &tls)?;
            let sink_cpu0 = cpu_time_of(sink.child.id());
            let result =
                run_child(cmd, limit).and_then(|(out, wall)| parse_report(job, &out, wall));
            let sink_cpu = cpu_time_of(sink.child.id()).saturating_sub(sink_cpu0);
            let after = if kind.counts() {
                query_stats(&sink.addr).ok()
            } else {
                None
            };
            let label = format!(
                "{} / {} / {}",
                job.case.title(),
                kind.label(),
                job.client.label()
            );
            let r = match result {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("FAILED {label}: {e}");
                    failures.push(format!("{label}: {e}"));
                    continue;
                }
            };
            let delta: Option<Snapshot> = before.zip(after).map(|(b, a)| a.since(&b));
            if let Some(d) = delta
                && !matches!(job.client, ClientKind::RawTcp(_))
                && d.messages != r.messages
            {
                let e = format!(
                    "{label}: the sink counted {} messages, the client {}",
                    d.messages, r.messages
                );
                eprintln!("FAILED {e}");
                failures.push(e);
                continue;
            }
            // Over TLS, every session must have logged in inside TLS, and a
            // new connection per message is a handshake per message.
            if let Some(d) = delta
                && job.case.tls
                && (d.auths != d.tls_handshakes
                    || d.tls_handshakes == 0
                    || (job.case.new_connection && d.tls_handshakes != r.messages))
            {
                let e = format!(
                    "{label}: the sink counted {} TLS handshakes and {} logins for {} messages",
                    d.tls_handshakes, d.auths, r.messages
                );
                eprintln!("FAILED {e}");
                failures.push(e);
                continue;
            }
            let per = |x: u64| (r.messages > 0).then(|| x as f64 / r.messages as f64);
            let s = Sample {
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
            };
            let _ = writeln!(
                tsv,
                "{rep}\t{}\t{}\t{}\t{}\t{:.6}\t{:.6}\t{}\t{}\t{}\t{:.3}\t{}\t{}\t{}\t{}",
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
            );
            eprintln!(
                "round {rep}: {label}: {:.0} msg/s, {:.1} MB/s, {:.1} us CPU/msg",
                s.msgs_per_s, s.mb_per_s, s.cpu_us_per_msg
            );
            samples
                .entry((job.case, job.sink, job.client.clone()))
                .or_default()
                .push(s);
            // smtp-source sends a fixed count: keep its runs about as long as
            // the others (its CPU time has a 10 ms resolution).
            if job.client == ClientKind::SmtpSource && r.secs > 0.0 {
                jobs[index].count = ((s.msgs_per_s * cfg.seconds) as u64).max(10);
            }
        }
    }

    // 1 GiB through each adapter, once each, DATA and BDAT.
    let mut streams: Vec<(String, String, Report)> = Vec::new();
    if !cfg.no_stream {
        let size = q(1 << 30, 64 << 20);
        for k in [SinkKind::Fast(true, false), SinkKind::Fast(true, true)] {
            let Some(i) = find(k, false) else { continue };
            let (kind, _, sink) = &sinks[i];
            for a in ours {
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
    }
    let sink_kinds: Vec<SinkKind> = sinks.iter().map(|s| s.0).collect();
    drop(sinks);
    std::fs::write(cfg.out_dir.join("samples.tsv"), &tsv)?;

    notes.insert(
        0,
        format!(
            "load average (1, 5, 15 min) {load_before} at the start, {} at the end; the run took {:.0} s",
            load_average(),
            started.elapsed().as_secs_f64()
        ),
    );
    let report = render(
        cfg,
        &jobs,
        &samples,
        &sink_kinds,
        &streams,
        &failures,
        &notes,
    );
    std::fs::write(cfg.out_dir.join("report.md"), &report)?;
    Ok(report)
}

type Samples = BTreeMap<(Case, usize, ClientKind), Vec<Sample>>;

fn render(
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
    let mut cases: Vec<Case> = jobs.iter().map(|j| j.case).collect();
    cases.dedup();
    cases.sort();
    cases.dedup();
    for case in &cases {
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
    if !failures.is_empty() {
        let _ = writeln!(md, "\nFailed runs:\n");
        for f in failures {
            let _ = writeln!(md, "- {f}");
        }
    }
    md
}

/// The medians of one row, if it ran.
fn row(
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

const OURS: [&str; 3] = ["blocking", "tokio", "async-std"];

/// The TLS rows side by side with what they are measured against: resumed
/// sessions next to full handshakes, and STARTTLS next to plain TCP.
fn tls_comparisons(samples: &Samples, sink_of: &BTreeMap<usize, SinkKind>) -> String {
    let get = |case, sink, client: &ClientKind| row(samples, sink_of, case, sink, client);
    let mut md = String::new();
    let t1 = Case {
        tls: true,
        ..Case::plain(1024, true)
    };
    let pairs: Vec<(&str, Medians, Medians)> = OURS
        .iter()
        .filter_map(|o| {
            let shared = get(t1, SinkKind::FastTls, &ClientKind::Ours(o))?;
            let fresh = get(t1, SinkKind::FastTls, &ClientKind::OursFresh(o))?;
            Some((*o, shared, fresh))
        })
        .collect();
    if !pairs.is_empty() {
        let _ = writeln!(
            md,
            "### STARTTLS, a new connection per message: one shared TLS configuration (sessions resume) against a new one per connection (full handshakes), {}\n",
            SinkKind::FastTls.label()
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
                get(tls_case, SinkKind::FastTls, &c),
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
            SinkKind::FastTls.label()
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
fn cpu_ratio(a: &Medians, b: &Medians) -> String {
    if a.cpu_us_per_msg > 0.0 && b.cpu_us_per_msg > 0.0 {
        format!("{:.2}x", a.cpu_us_per_msg / b.cpu_us_per_msg)
    } else {
        "-".to_owned()
    }
}

/// The goals of the TLS, pool and new-connection rows (issue 15).
fn targets_round_two(samples: &Samples, sink_of: &BTreeMap<usize, SinkKind>) -> String {
    let get = |case, sink, client: &ClientKind| row(samples, sink_of, case, sink, client);
    let verdict = |ok: bool| if ok { "**met**" } else { "**missed**" };
    let rt = |m: &Medians| m.turns.map_or("-".into(), |x| format!("{x:.2}"));
    let mut md = String::new();
    let lettre = ClientKind::Lettre { nodelay: true };
    let mail_send = ClientKind::MailSend { nodelay: true };

    // A new connection per message, plain.
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

    // STARTTLS, a new connection per message.
    let t1 = Case { tls: true, ..c2 };
    let tls = SinkKind::FastTls;
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
    md
}

fn targets(
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
