//! The processes of a run: the sinks, the client children and what they
//! print, and the machine they run on.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{ClientKind, Job, POOL_SIZE, RunConfig, SinkKind};
use crate::clients::{BoxError, FROM, HELO, TO, message};
use crate::measure::Report;
use crate::pki::TlsFiles;

pub(super) struct RunningSink {
    pub(super) child: Child,
    pub(super) addr: String,
}

impl Drop for RunningSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(super) fn taskset(cpu: &str) -> Command {
    let mut c = Command::new("taskset");
    c.args(["-c", cpu]);
    c
}

pub(super) fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub(super) fn wait_listening(addr: &str) -> Result<(), BoxError> {
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
pub(super) fn listening_on(child: &mut Child) -> Result<String, BoxError> {
    let stdout = child.stdout.take().ok_or("no sink stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    Ok(line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("unexpected sink output {line:?}"))?
        .to_owned())
}

pub(super) fn start_sink(
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
        SinkKind::Fast(..) | SinkKind::FastEarly(_) | SinkKind::FastTls(..) | SinkKind::Discard => {
            let mut cmd = taskset(cpu);
            cmd.arg(&cfg.exe)
                .arg("sink")
                .args(["--listen", "127.0.0.1:0"]);
            match kind.config() {
                Some(c) => {
                    for (on, flag) in [
                        (c.pipelining, "--pipelining"),
                        (c.chunking, "--chunking"),
                        (c.pipe_connect, "--pipe-connect"),
                    ] {
                        if on {
                            cmd.arg(flag);
                        }
                    }
                    // Only clients over the link talk to it.
                    if c.pipe_connect {
                        cmd.args(["--link-rtt", &cfg.rtt_ms.to_string()]);
                    }
                    if kind.starttls() {
                        cmd.arg("--tls-cert")
                            .arg(&tls.chain)
                            .arg("--tls-key")
                            .arg(&tls.key);
                    }
                }
                None => {
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

pub(super) struct Files {
    crlf: BTreeMap<u64, PathBuf>,
    lf: BTreeMap<u64, PathBuf>,
}

pub(super) fn write_messages(dir: &Path, sizes: &[u64]) -> Result<Files, BoxError> {
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
pub(super) fn run_child(mut cmd: Command, limit: Duration) -> Result<(String, Duration), BoxError> {
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

pub(super) fn client_command(
    cfg: &RunConfig,
    job: &Job,
    addr: &str,
    files: &Files,
    tls: &TlsFiles,
) -> Result<Command, BoxError> {
    let count = job.count.to_string();
    let size = job.case.size.to_string();
    // smtplib's limit when the job has none: the run's (120 s).
    let seconds = job.seconds.unwrap_or(120.0).to_string();
    let ours = |name: &str| {
        let name = if job.case.pool {
            format!("pool-{name}")
        } else {
            name.to_owned()
        };
        let mut c = taskset(&cfg.cpu);
        c.arg(&cfg.exe).args([
            "client", &name, "--addr", addr, "--count", &count, "--size", &size,
        ]);
        if let Some(s) = job.seconds {
            c.args(["--seconds", &s.to_string()]);
        }
        if job.case.new_connection {
            c.arg("--new-connection");
        }
        if job.case.tls {
            c.arg("--tls-ca").arg(&tls.ca);
        }
        if job.case.rtt_ms > 0 {
            c.arg("--latencies");
        }
        if job.case.pool {
            c.args([
                "--tasks",
                &job.case.tasks().to_string(),
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
        ClientKind::OursEarly(name) => {
            let mut c = ours(name);
            c.arg("--early-pipelining");
            c
        }
        ClientKind::OursBatch(name) => {
            let mut c = ours(name);
            c.arg("--batch");
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
            if job.case.rtt_ms > 0 {
                c.arg("latencies");
            }
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

pub(super) fn parse_report(job: &Job, output: &str, wall: Duration) -> Result<Report, BoxError> {
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

pub(super) fn machine() -> String {
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
pub(super) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|_| "unknown".to_owned())
}
