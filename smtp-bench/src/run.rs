//! The benchmark run: starts the sinks, runs every client as a pinned child
//! process in interleaved rounds, takes medians and writes a markdown report.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use crate::clients::BoxError;
use crate::pki;
use process::{load_average, write_messages};

mod latency;
mod plan;
mod process;
mod report;
mod rounds;
mod targets;

/// Tasks of the pool rows.
pub const POOL_TASKS: u64 = 256;
/// Connections of the pool rows.
pub const POOL_SIZE: usize = 8;
/// Tasks of the pool rows over a link with latency.
pub const LATENCY_POOL_TASKS: u64 = 64;
/// Messages of the one-connection rows over a link with latency.
pub const LATENCY_BATCH: u64 = 100;
/// How long each run over a link with latency sends (the batch rows send
/// their [`LATENCY_BATCH`] messages however long it takes).
pub const LATENCY_SECONDS: f64 = 2.0;

/// Whether a run measures the rows over a link with latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latency {
    /// Not (`--quick`).
    Not,
    /// After the loopback rows (a full run).
    Also,
    /// Only them (`--latency`).
    Only,
}

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
    /// Whether the rows over a link with latency run.
    pub latency: Latency,
    /// The round-trip time of that link, in milliseconds.
    pub rtt_ms: u32,
    /// Only the jobs whose label (`case / sink / client`, as the progress
    /// lines print it) contains this text, compared without regard to case
    /// (`starttls`: the STARTTLS rows).
    pub rows: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum SinkKind {
    Postfix,
    /// pipelining, chunking
    Fast(bool, bool),
    /// The fast sink with PIPELINING and PIPECONNECT (early pipelining);
    /// CHUNKING too when true.
    FastEarly(bool),
    /// The fast sink with PIPELINING, STARTTLS and AUTH PLAIN (inside
    /// TLS); CHUNKING too when the first is true, PIPECONNECT when the
    /// second is. `FastTls(false, false)` is the sink of the loopback TLS
    /// rows.
    FastTls(bool, bool),
    /// aiosmtpd with STARTTLS required and AUTH PLAIN.
    Aiosmtpd,
    Discard,
}

impl SinkKind {
    fn label(self) -> String {
        match self {
            SinkKind::Postfix => "Postfix smtp-sink".into(),
            SinkKind::Fast(..) | SinkKind::FastEarly(_) => {
                format!("fast sink ({})", self.config().unwrap_or_default().label())
            }
            SinkKind::FastTls(..) => format!(
                "fast sink ({}+STARTTLS)",
                self.config().unwrap_or_default().label()
            ),
            SinkKind::Aiosmtpd => "aiosmtpd 1.4 (STARTTLS)".into(),
            SinkKind::Discard => "discard (raw TCP)".into(),
        }
    }

    /// What the in-tree sink offers besides STARTTLS ([`SinkKind::starttls`]:
    /// its configuration needs the run's certificates, so `tls` is `None`).
    fn config(self) -> Option<crate::sink::SinkConfig> {
        let (pipelining, chunking, pipe_connect) = match self {
            SinkKind::Fast(p, c) => (p, c, false),
            SinkKind::FastEarly(c) => (true, c, true),
            SinkKind::FastTls(c, e) => (true, c, e),
            _ => return None,
        };
        Some(crate::sink::SinkConfig {
            pipelining,
            chunking,
            pipe_connect,
            link_rtt: None,
            tls: None,
        })
    }

    /// Whether the in-tree sink's counters can be read (`XSTATS`).
    fn counts(self) -> bool {
        matches!(
            self,
            SinkKind::Fast(..) | SinkKind::FastEarly(_) | SinkKind::FastTls(..)
        )
    }

    /// Whether the in-tree sink offers STARTTLS (and AUTH PLAIN inside it).
    fn starttls(self) -> bool {
        matches!(self, SinkKind::FastTls(..))
    }

    /// Whether the in-tree sink offers PIPECONNECT (our clients run against
    /// it with early pipelining).
    fn pipe_connect(self) -> bool {
        self.config().is_some_and(|c| c.pipe_connect)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum ClientKind {
    /// Our adapter (blocking, tokio, async-std); no_pipelining, no_chunking.
    Ours(&'static str),
    /// Our adapter over TLS with a new rustls configuration per connection
    /// (full handshakes; `Ours` shares one and resumes).
    OursFresh(&'static str),
    /// Our adapter with early pipelining, one capability cache shared by the
    /// run's connections (the first one fills it).
    OursEarly(&'static str),
    /// Our adapter on one connection, all the run's messages in one
    /// `send_batch_and_quit`.
    OursBatch(&'static str),
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
            ClientKind::OursEarly(n) => format!("smtp-rs {n} (early pipelining)"),
            ClientKind::OursBatch(n) => format!("smtp-rs {n} (send_batch_and_quit)"),
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
        matches!(
            self,
            ClientKind::Ours(_)
                | ClientKind::OursFresh(_)
                | ClientKind::OursEarly(_)
                | ClientKind::OursBatch(_)
        )
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
    /// Over a link with this round-trip time (through a [`crate::relay`]),
    /// or loopback (0).
    rtt_ms: u32,
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
            rtt_ms: 0,
        }
    }

    /// The cases over a link of `rtt_ms` (1 KiB messages).
    fn over_link(rtt_ms: u32) -> LinkCases {
        let new_connection = Case {
            rtt_ms,
            ..Case::plain(1024, true)
        };
        let batch = Case {
            rtt_ms,
            ..Case::plain(1024, false)
        };
        LinkCases {
            new_connection,
            tls: Case {
                tls: true,
                ..new_connection
            },
            batch,
            pool: Case {
                pool: true,
                ..batch
            },
        }
    }

    /// The tasks of a pool case.
    fn tasks(self) -> u64 {
        if self.rtt_ms > 0 {
            LATENCY_POOL_TASKS
        } else {
            POOL_TASKS
        }
    }

    /// Over a link with latency, one connection: a batch of
    /// [`LATENCY_BATCH`] messages.
    fn batch(self) -> bool {
        self.rtt_ms > 0 && !self.new_connection && !self.pool
    }

    fn title(self) -> String {
        let size = if self.size >= 1 << 20 {
            format!("{} MiB", self.size >> 20)
        } else {
            format!("{} KiB", self.size >> 10)
        };
        let conn = if self.pool {
            format!(
                "{} tasks through one pool of {POOL_SIZE} connections",
                self.tasks()
            )
        } else if self.batch() {
            format!("{LATENCY_BATCH} messages on one connection")
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
        let link = if self.rtt_ms > 0 {
            format!(", {} ms RTT", self.rtt_ms)
        } else {
            String::new()
        };
        format!("{size} messages, {conn}{tls}{core}{link}")
    }
}

/// The cases over a link with latency ([`Case::over_link`]).
#[derive(Debug, Clone, Copy)]
struct LinkCases {
    /// A new connection per message, plain.
    new_connection: Case,
    /// A new connection per message, STARTTLS + AUTH PLAIN.
    tls: Case,
    /// [`LATENCY_BATCH`] messages on one connection.
    batch: Case,
    /// [`LATENCY_POOL_TASKS`] tasks through one pool.
    pool: Case,
}

#[derive(Debug, Clone)]
struct Job {
    case: Case,
    sink: usize,
    client: ClientKind,
    count: u64,
    /// How long the client sends at most (`None`: its whole count).
    seconds: Option<f64>,
}

impl Job {
    /// `case / sink / client`, as the progress lines print it.
    fn label(&self, sink: SinkKind) -> String {
        format!(
            "{} / {} / {}",
            self.case.title(),
            sink.label(),
            self.client.label()
        )
    }
}

/// One measured run.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Messages the client sent.
    messages: f64,
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
    /// Connections the client opened, per message.
    connections_per_msg: Option<f64>,
    /// Sessions whose greeting went out with the reply to the client's
    /// early EHLO (PIPECONNECT), per message.
    early_per_msg: Option<f64>,
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
    messages: f64,
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
    connections_per_msg: Option<f64>,
    early_per_msg: Option<f64>,
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
        messages: m(|s| s.messages),
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
        connections_per_msg: opt(|s| s.connections_per_msg),
        early_per_msg: opt(|s| s.early_per_msg),
        runs: samples.len(),
        spread: if med > 0.0 { (hi - lo) / med } else { 0.0 },
    }
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
    let files = write_messages(&cfg.out_dir, &[1024, 1 << 20])?;
    let tls = pki::write_certificates(&cfg.out_dir)?;
    let mut notes: Vec<String> = Vec::new();

    // The sinks, started once, pinned like the clients.
    let sinks = plan::start_sinks(cfg, &tls, &mut notes)?;
    let find = |k: SinkKind, cross: bool| {
        sinks
            .iter()
            .position(|(kk, cpu, _)| *kk == k && ((cpu != &cfg.cpu) == cross))
    };
    let mut table = Vec::new();
    if cfg.latency != Latency::Only {
        table = plan::table(cfg.quick);
    }
    if cfg.latency != Latency::Not {
        table.extend(plan::latency_table(cfg.rtt_ms));
    }
    let mut jobs = plan::jobs(cfg, &table, find);
    if let Some(text) = &cfg.rows {
        let text_lower = text.to_lowercase();
        jobs.retain(|j| {
            j.label(sinks[j.sink].0)
                .to_lowercase()
                .contains(&text_lower)
        });
        if jobs.is_empty() {
            return Err(format!("no row matches --rows {text:?}").into());
        }
    }
    plan::calibrate(cfg, &mut jobs, &sinks, &files, &tls)?;
    // The links with latency: one relay in front of each sink they use.
    let relays = plan::start_relays(cfg, &jobs, &sinks)?;
    let mut measured = rounds::rounds(cfg, &mut jobs, &sinks, &relays, &files, &tls)?;
    // 1 GiB through each adapter, once each, DATA and BDAT.
    let streams = if cfg.no_stream || cfg.latency == Latency::Only {
        Vec::new()
    } else {
        rounds::streams(cfg, &sinks, find, &mut measured.failures)
    };
    let sink_kinds: Vec<SinkKind> = sinks.iter().map(|s| s.0).collect();
    drop(sinks);
    std::fs::write(cfg.out_dir.join("samples.tsv"), &measured.tsv)?;

    notes.insert(
        0,
        format!(
            "load average (1, 5, 15 min) {load_before} at the start, {} at the end; the run took {:.0} s",
            load_average(),
            started.elapsed().as_secs_f64()
        ),
    );
    let report = report::render(
        cfg,
        &jobs,
        &measured.samples,
        &sink_kinds,
        &streams,
        &measured.failures,
        &notes,
    );
    std::fs::write(cfg.out_dir.join("report.md"), &report)?;
    Ok(report)
}

type Samples = BTreeMap<(Case, usize, ClientKind), Vec<Sample>>;
