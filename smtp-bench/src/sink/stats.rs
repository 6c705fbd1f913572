//! The sink's counters, and the `XSTATS` query that reads them.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by every connection of one sink.
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages completed (final dot or `BDAT LAST`).
    pub messages: AtomicU64,
    /// Message bytes received after DATA (terminator included) or in BDAT chunks.
    pub body_bytes: AtomicU64,
    /// Writes that carried at least one reply of a mail transaction.
    pub tx_writes: AtomicU64,
    /// Reads from clients.
    pub reads: AtomicU64,
    /// Connections accepted (the `XSTATS` ones included).
    pub connections: AtomicU64,
    /// Turns: writes that follow a read from the client (see the module
    /// documentation), the `XSTATS` connections left out.
    pub turns: AtomicU64,
    /// TLS handshakes completed.
    pub tls_handshakes: AtomicU64,
    /// Of those, the ones that resumed an earlier session.
    pub tls_resumed: AtomicU64,
    /// Successful AUTH commands.
    pub auths: AtomicU64,
    /// Sessions whose client wrote before the greeting went out (PIPECONNECT
    /// offered): their greeting went out with the reply to that input.
    pub early: AtomicU64,
}

/// A snapshot of [`Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// See [`Stats::messages`].
    pub messages: u64,
    /// See [`Stats::body_bytes`].
    pub body_bytes: u64,
    /// See [`Stats::tx_writes`].
    pub tx_writes: u64,
    /// See [`Stats::reads`].
    pub reads: u64,
    /// See [`Stats::connections`].
    pub connections: u64,
    /// See [`Stats::turns`].
    pub turns: u64,
    /// See [`Stats::tls_handshakes`].
    pub tls_handshakes: u64,
    /// See [`Stats::tls_resumed`].
    pub tls_resumed: u64,
    /// See [`Stats::auths`].
    pub auths: u64,
    /// See [`Stats::early`].
    pub early: u64,
}

impl Snapshot {
    /// The counters accumulated between `earlier` and `self`.
    #[must_use]
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        Snapshot {
            messages: self.messages - earlier.messages,
            body_bytes: self.body_bytes - earlier.body_bytes,
            tx_writes: self.tx_writes - earlier.tx_writes,
            reads: self.reads - earlier.reads,
            connections: self.connections - earlier.connections,
            turns: self.turns - earlier.turns,
            tls_handshakes: self.tls_handshakes - earlier.tls_handshakes,
            tls_resumed: self.tls_resumed - earlier.tls_resumed,
            auths: self.auths - earlier.auths,
            early: self.early - earlier.early,
        }
    }

    /// Parses the text of an `XSTATS` reply.
    #[must_use]
    pub fn parse(text: &str) -> Option<Snapshot> {
        let mut s = Snapshot::default();
        for part in text.split_whitespace() {
            let Some((k, v)) = part.split_once('=') else {
                continue;
            };
            let v: u64 = v.parse().ok()?;
            match k {
                "messages" => s.messages = v,
                "body_bytes" => s.body_bytes = v,
                "tx_writes" => s.tx_writes = v,
                "reads" => s.reads = v,
                "connections" => s.connections = v,
                "turns" => s.turns = v,
                "tls_handshakes" => s.tls_handshakes = v,
                "tls_resumed" => s.tls_resumed = v,
                "auths" => s.auths = v,
                "early" => s.early = v,
                _ => {}
            }
        }
        Some(s)
    }
}

impl Stats {
    /// The current values.
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            messages: self.messages.load(Ordering::Relaxed),
            body_bytes: self.body_bytes.load(Ordering::Relaxed),
            tx_writes: self.tx_writes.load(Ordering::Relaxed),
            reads: self.reads.load(Ordering::Relaxed),
            connections: self.connections.load(Ordering::Relaxed),
            turns: self.turns.load(Ordering::Relaxed),
            tls_handshakes: self.tls_handshakes.load(Ordering::Relaxed),
            tls_resumed: self.tls_resumed.load(Ordering::Relaxed),
            auths: self.auths.load(Ordering::Relaxed),
            early: self.early.load(Ordering::Relaxed),
        }
    }
}

/// Asks a running sink for its counters (the `XSTATS` command).
pub fn query_stats(addr: &str) -> io::Result<Snapshot> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    s.write_all(b"XSTATS\r\nQUIT\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    text.lines()
        .find(|l| l.contains("messages="))
        .and_then(Snapshot::parse)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no XSTATS reply"))
}
