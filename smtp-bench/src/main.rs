//! `smtp-bench`: see `--help`.

#![forbid(unsafe_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use smtp_bench::clients::{self, BoxError, ClientArgs};
use smtp_bench::pki;
use smtp_bench::relay::Relay;
use smtp_bench::run::{self, Latency, RunConfig};
use smtp_bench::sink::{self, SinkConfig, Stats};

const HELP: &str = "\
smtp-bench: end-to-end SMTP client benchmark (smtp-rs next to lettre, mail-send,
smtplib and Postfix smtp-source). scripts/bench installs what it needs and runs it.

USAGE:
  smtp-bench run [--reps N] [--quick] [--seconds S] [--cpu CPU] [--cross-cpu CPU] [--out DIR]
                 [--shim PATH] [--smtp-source PATH] [--smtp-sink PATH] [--python PATH]
                 [--no-postfix] [--no-stream] [--aiosmtpd-python PATH] [--latency] [--rtt MS]
                 [--rows TEXT]
      Starts the sinks, runs every client N times (default 5) in interleaved rounds,
      each for S seconds (default 1), as a child process pinned with taskset to CPU
      (default 1), and writes
      DIR/report.md (the markdown tables, medians and ratios) and DIR/samples.tsv
      (every run). Default DIR: target/bench. Peers whose tool is missing are skipped;
      the aiosmtpd rows (STARTTLS against a real server) need a Python that imports
      aiosmtpd (--aiosmtpd-python). --quick: a smoke run of about a minute: 3 rounds
      (unless --reps) of 0.2 s (unless --seconds), a 64 MiB stream instead of 1 GiB,
      and fewer STARTTLS rows (no full-handshake rows for tokio and async-std, only
      blocking and the peers against aiosmtpd) and pool rows (no lettre as shipped),
      and none of the rows over a link with latency. Those (every client through a
      relay that delays each direction by half of --rtt MS, default 20: a new
      connection per message, plain and STARTTLS + AUTH PLAIN (sinks offering
      PIPELINING, with CHUNKING, with PIPECONNECT, with both); 100 messages on one
      connection; 64 tasks through a pool of 8; a new connection per message
      against a sink that also offers PIPECONNECT, ours with early pipelining)
      end a full run; --latency runs only them (3 rounds unless --reps).
      --rows TEXT: only the jobs whose label \"case / sink / client\" (as the
      progress lines print it) contains TEXT, compared without regard to case,
      e.g. --latency --rows pipe-connect, or --rows starttls (the STARTTLS rows).
  smtp-bench sink [--listen ADDR] [--pipelining] [--chunking] [--pipe-connect]
                  [--link-rtt MS] [--discard] [--tls-cert CHAIN.pem --tls-key KEY.pem]
      The fast sink (or, with --discard, a socket that reads and discards). Prints
      \"listening on HOST:PORT\", then serves until killed. XSTATS returns its counters.
      With a certificate it offers STARTTLS, then AUTH PLAIN (any credentials).
      --pipe-connect (with --pipelining): offers PIPECONNECT (early pipelining) and
      answers input already waiting when its greeting is due with the greeting, in
      one write (XSTATS early= counts those sessions, and with --link-rtt MS, the RTT
      of a relay in front of the sink, those whose first input arrived less than MS
      after the greeting went out: sent before it arrived).
  smtp-bench relay --to HOST:PORT [--rtt MS]
      A link with latency: prints \"listening on HOST:PORT\", then relays every
      connection to --to, each direction held for half of MS (default 20), the
      sink's side opened 1.5 RTT after the client's (the TCP handshake).
  smtp-bench client NAME --addr HOST:PORT --count N --size BYTES
                 [--new-connection] [--no-pipelining] [--no-chunking] [--seconds S]
                 [--tls-ca CA.pem] [--fresh-tls-config] [--tasks N] [--pool-size N]
                 [--latencies] [--early-pipelining] [--batch]
      Sends the same BYTES-byte message N times (or for S seconds, whichever ends
      first) and prints one JSON line:
      client, messages, bytes, secs, cpu_secs, rss_kib (pool clients: p50_us, p99_us).
      NAME is one of blocking, tokio, async-std (ours), lettre, mail-send, raw-tcp
      (N MiB written to a discarding peer), stream-blocking, stream-tokio,
      stream-async-std (one message of BYTES from a generating reader through
      send_from_reader), pool-tokio, pool-async-std, pool-lettre (--tasks tasks,
      default 256, through one pool of --pool-size connections, default 8).
      --tls-ca: STARTTLS (required) trusting that CA, then AUTH PLAIN;
      --fresh-tls-config: our adapters make a new rustls ClientConfig per
      connection (full handshakes) instead of sharing one (resumed sessions).
      --latencies: also report p50_us and p99_us of each message's time (its
      connection included with --new-connection).
      --early-pipelining: our adapters turn on early pipelining (PIPECONNECT) with
      one capability cache shared by every connection of the run: the first
      connection to a sink that offers it waits for the greeting and learns it,
      the later ones write EHLO before the greeting.
      --batch: our adapters on one connection send the N messages in one
      send_batch_and_quit (the next envelope behind each message's end, QUIT
      behind the last); no message's own time is kept.
  smtp-bench --help
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match real_main(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smtp-bench: {e}");
            ExitCode::from(2)
        }
    }
}

fn value<'a>(args: &'a [String], i: &mut usize, flag: &str) -> Result<&'a str, BoxError> {
    *i += 1;
    args.get(*i)
        .map(String::as_str)
        .ok_or_else(|| format!("{flag} needs a value").into())
}

fn real_main(args: &[String]) -> Result<(), BoxError> {
    match args.first().map(String::as_str) {
        None | Some("--help" | "-h" | "help") => {
            print!("{HELP}");
            Ok(())
        }
        Some("sink") => sink_main(&args[1..]),
        Some("client") => client_main(&args[1..]),
        Some("run") => run_main(&args[1..]),
        Some("relay") => relay_main(&args[1..]),
        Some(other) => Err(format!("unknown command {other:?} (see --help)").into()),
    }
}

fn sink_main(args: &[String]) -> Result<(), BoxError> {
    let mut listen = "127.0.0.1:0".to_owned();
    let mut config = SinkConfig::default();
    let mut discard = false;
    let (mut cert, mut key) = (None, None);
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--listen" => listen = value(args, &mut i, "--listen")?.to_owned(),
            "--pipelining" => config.pipelining = true,
            "--chunking" => config.chunking = true,
            "--pipe-connect" => config.pipe_connect = true,
            "--link-rtt" => {
                let ms: u64 = value(args, &mut i, "--link-rtt")?.parse()?;
                config.link_rtt = Some(std::time::Duration::from_millis(ms));
            }
            "--discard" => discard = true,
            "--tls-cert" => cert = Some(PathBuf::from(value(args, &mut i, "--tls-cert")?)),
            "--tls-key" => key = Some(PathBuf::from(value(args, &mut i, "--tls-key")?)),
            other => return Err(format!("unknown sink option {other:?}").into()),
        }
        i += 1;
    }
    match (cert, key) {
        (Some(cert), Some(key)) => config.tls = Some(pki::server_config(&cert, &key)?),
        (None, None) => {}
        _ => return Err("--tls-cert and --tls-key go together".into()),
    }
    let listener = TcpListener::bind(&listen)?;
    println!("listening on {}", listener.local_addr()?);
    if discard {
        sink::serve_discard(listener)?;
    } else {
        sink::serve(listener, config, Arc::new(Stats::default()))?;
    }
    Ok(())
}

fn client_main(args: &[String]) -> Result<(), BoxError> {
    let name = args.first().ok_or("client needs a NAME")?.clone();
    let mut a = ClientArgs::new("");
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--addr" => a.addr = value(args, &mut i, "--addr")?.to_owned(),
            "--count" => a.count = value(args, &mut i, "--count")?.parse()?,
            "--size" => a.size = value(args, &mut i, "--size")?.parse()?,
            "--new-connection" => a.new_connection = true,
            "--no-pipelining" => a.no_pipelining = true,
            "--no-chunking" => a.no_chunking = true,
            "--seconds" => a.seconds = Some(value(args, &mut i, "--seconds")?.parse()?),
            "--tls-ca" => a.tls_ca = Some(value(args, &mut i, "--tls-ca")?.into()),
            "--fresh-tls-config" => a.fresh_tls_config = true,
            "--tasks" => a.tasks = value(args, &mut i, "--tasks")?.parse()?,
            "--pool-size" => a.pool_size = value(args, &mut i, "--pool-size")?.parse()?,
            "--latencies" => a.latencies = true,
            "--early-pipelining" => a.early_pipelining = true,
            "--batch" => a.batch = true,
            other => return Err(format!("unknown client option {other:?}").into()),
        }
        i += 1;
    }
    if a.addr.is_empty() {
        return Err("client needs --addr HOST:PORT".into());
    }
    let report = clients::run(&name, &a)?;
    println!("{}", report.to_json());
    Ok(())
}

fn relay_main(args: &[String]) -> Result<(), BoxError> {
    let mut to = None;
    let mut rtt_ms: u64 = 20;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--to" => to = Some(value(args, &mut i, "--to")?.parse()?),
            "--rtt" => rtt_ms = value(args, &mut i, "--rtt")?.parse()?,
            other => return Err(format!("unknown relay option {other:?}").into()),
        }
        i += 1;
    }
    let relay = Relay::start(
        to.ok_or("relay needs --to HOST:PORT")?,
        std::time::Duration::from_millis(rtt_ms),
    )?;
    println!("listening on {}", relay.addr());
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

fn which(name: &str, extra: &[&str]) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(extra.iter().copied())
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.is_file())
}

fn run_main(args: &[String]) -> Result<(), BoxError> {
    let mut cfg = RunConfig {
        exe: std::env::current_exe()?,
        reps: 5,
        quick: false,
        cpu: "1".into(),
        cross_cpu: None,
        shim: None,
        smtp_source: which("smtp-source", &["/usr/sbin"]),
        smtp_sink: which("smtp-sink", &["/usr/sbin"]),
        python: which("python3", &[]),
        out_dir: PathBuf::from("target/bench"),
        no_stream: false,
        seconds: 1.0,
        aiosmtpd_python: None,
        latency: Latency::Also,
        rtt_ms: 20,
        rows: None,
    };
    let (mut reps, mut seconds) = (None, None);
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--reps" => reps = Some(value(args, &mut i, "--reps")?.parse()?),
            "--quick" => cfg.quick = true,
            "--seconds" => seconds = Some(value(args, &mut i, "--seconds")?.parse()?),
            "--cpu" => cfg.cpu = value(args, &mut i, "--cpu")?.to_owned(),
            "--cross-cpu" => cfg.cross_cpu = Some(value(args, &mut i, "--cross-cpu")?.to_owned()),
            "--out" => cfg.out_dir = value(args, &mut i, "--out")?.into(),
            "--shim" => cfg.shim = Some(value(args, &mut i, "--shim")?.into()),
            "--smtp-source" => cfg.smtp_source = Some(value(args, &mut i, "--smtp-source")?.into()),
            "--smtp-sink" => cfg.smtp_sink = Some(value(args, &mut i, "--smtp-sink")?.into()),
            "--python" => cfg.python = Some(value(args, &mut i, "--python")?.into()),
            "--no-postfix" => {
                cfg.smtp_source = None;
                cfg.smtp_sink = None;
            }
            "--no-stream" => cfg.no_stream = true,
            "--latency" => cfg.latency = Latency::Only,
            "--rtt" => cfg.rtt_ms = value(args, &mut i, "--rtt")?.parse()?,
            "--rows" => cfg.rows = Some(value(args, &mut i, "--rows")?.to_owned()),
            "--aiosmtpd-python" => {
                cfg.aiosmtpd_python = Some(value(args, &mut i, "--aiosmtpd-python")?.into());
            }
            other => return Err(format!("unknown run option {other:?}").into()),
        }
        i += 1;
    }
    if cfg.quick && cfg.latency != Latency::Only {
        cfg.latency = Latency::Not;
    }
    if cfg.rtt_ms == 0 {
        return Err("--rtt needs at least 1 ms".into());
    }
    cfg.reps = reps.unwrap_or(if cfg.quick || cfg.latency == Latency::Only {
        3
    } else {
        5
    });
    cfg.seconds = seconds.unwrap_or(if cfg.quick { 0.2 } else { 1.0 });
    if let Some(shim) = &cfg.shim {
        cfg.shim = Some(std::fs::canonicalize(shim)?);
    }
    let report = run::run(&cfg)?;
    print!("{report}");
    Ok(())
}
