//! A link with latency, in userspace: a TCP relay that sits between each
//! client and the sink and holds every chunk of bytes for half the round-trip
//! time in each direction, in order.
//!
//! Each accepted connection gets one reader and one writer thread per
//! direction. The reader stamps each chunk with the instant it was read and
//! queues it (a bounded queue: [`QUEUE_CHUNKS`] chunks of at most
//! [`CHUNK`] bytes, so a direction holds at most 2 MiB, and a full queue
//! stops the reading, which the sender feels as TCP back-pressure); the
//! writer sleeps until that instant plus half the RTT and writes the chunk
//! as it was read. The relay's own cost is per chunk (a timestamp, a queue
//! hand-over, a sleep), never per byte, and its delivery is never early: a
//! chunk goes out no sooner than half the RTT after it came in.
//!
//! The TCP handshake: the kernel completes the client's `connect` at once on
//! loopback, which userspace cannot delay. On a real link, `connect` returns
//! after one round trip and the server accepts half a round trip later; the
//! relay stands for that by opening its connection to the sink 1.5 RTT after
//! accepting the client's. A client that waits for the greeting, as SMTP
//! clients do, therefore sees it 2 RTT after it called `connect`, as over a
//! real link (the handshake's round trip, then the greeting's); bytes it sent
//! earlier are held until the sink's side is open.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The most bytes one read takes (one chunk).
pub const CHUNK: usize = 64 * 1024;
/// The most chunks one direction holds before it stops reading.
pub const QUEUE_CHUNKS: usize = 32;
/// How long a relayed socket may stay silent before the relay gives up on it.
const IDLE: Duration = Duration::from_secs(300);

/// What one direction's reader hands to its writer.
enum Item {
    /// Bytes, read at this instant.
    Bytes(Vec<u8>, Instant),
    /// The sender closed its side (or failed) at this instant.
    End(Instant),
}

/// A running relay: listens on a loopback port and forwards every connection
/// to the upstream address over a link of the given round-trip time.
#[derive(Debug)]
pub struct Relay {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    rtt: Duration,
    /// Connections accepted and not yet finished in both directions.
    active: AtomicUsize,
    /// Connections accepted in all.
    accepted: AtomicU64,
    /// The first failure to reach the upstream, if any.
    failure: Mutex<Option<String>>,
}

impl Relay {
    /// Starts a relay on `127.0.0.1` (a port of the system's choosing) to
    /// `upstream`, with `rtt` as the link's round-trip time. The relay runs
    /// until the process ends.
    ///
    /// # Errors
    ///
    /// When the listening socket cannot be made.
    pub fn start(upstream: SocketAddr, rtt: Duration) -> io::Result<Relay> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            rtt,
            active: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
            failure: Mutex::new(None),
        });
        let s = shared.clone();
        std::thread::spawn(move || accept_loop(&listener, &s));
        Ok(Relay { addr, shared })
    }

    /// The address clients connect to.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The round-trip time the relay adds.
    #[must_use]
    pub fn rtt(&self) -> Duration {
        self.shared.rtt
    }

    /// Connections accepted so far.
    #[must_use]
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::Relaxed)
    }

    /// The first failure to reach the upstream, if any.
    #[must_use]
    pub fn failure(&self) -> Option<String> {
        self.shared
            .failure
            .lock()
            .map_or_else(|p| p.into_inner().clone(), |f| f.clone())
    }

    /// Waits until every connection accepted so far has ended in both
    /// directions (so the upstream has seen everything its clients sent), at
    /// most `limit`; returns whether it got there.
    #[must_use]
    pub fn wait_idle(&self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while self.shared.active.load(Ordering::Acquire) > 0 {
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept() else {
            // A failed accept (e.g. too many files open) is retried shortly.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        shared.accepted.fetch_add(1, Ordering::Relaxed);
        shared.active.fetch_add(1, Ordering::AcqRel);
        let shared = shared.clone();
        std::thread::spawn(move || {
            let accepted = Instant::now();
            if let Err(e) = connection(client, accepted, &shared)
                && let Ok(mut f) = shared.failure.lock()
            {
                f.get_or_insert_with(|| e.to_string());
            }
            shared.active.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

/// Relays one connection until both directions have ended.
fn connection(client: TcpStream, accepted: Instant, shared: &Shared) -> io::Result<()> {
    let half = shared.rtt / 2;
    client.set_nodelay(true)?;
    client.set_read_timeout(Some(IDLE))?;
    client.set_write_timeout(Some(IDLE))?;
    // The client's bytes are read (and stamped) from the start, while the
    // sink's side is not open yet.
    let (up_tx, up_rx) = sync_channel(QUEUE_CHUNKS);
    let client_reader = {
        let c = client.try_clone()?;
        std::thread::spawn(move || read_side(c, &up_tx))
    };
    // The sink accepts 1.5 RTT after the client called `connect` (see the
    // module documentation).
    sleep_until(accepted + shared.rtt + half);
    let upstream = match TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(10)) {
        Ok(u) => u,
        Err(e) => {
            let _ = client.shutdown(Shutdown::Both);
            let _ = client_reader.join();
            return Err(e);
        }
    };
    upstream.set_nodelay(true)?;
    // What the client sent before the sink's side was open (an early EHLO)
    // goes out at once, as over a real link, where it travels right behind
    // the handshake's last ACK: a server that looks for early input before
    // its greeting (PIPECONNECT) finds it there.
    let mut first = up_rx.try_recv().ok();
    if let Some(Item::Bytes(bytes, at)) = &first
        && *at + half <= Instant::now()
    {
        if let Err(e) = (&upstream).write_all(bytes) {
            let _ = client.shutdown(Shutdown::Both);
            let _ = client_reader.join();
            return Err(e);
        }
        first = None;
    }
    upstream.set_read_timeout(Some(IDLE))?;
    upstream.set_write_timeout(Some(IDLE))?;
    let (down_tx, down_rx) = sync_channel(QUEUE_CHUNKS);
    let upstream_reader = {
        let u = upstream.try_clone()?;
        std::thread::spawn(move || read_side(u, &down_tx))
    };
    let to_upstream = {
        let (u, c) = (upstream.try_clone()?, client.try_clone()?);
        std::thread::spawn(move || write_side(first, up_rx, u, &c, half))
    };
    // Returning drops the queue, so a reader blocked on it ends too.
    write_side(None, down_rx, client, &upstream, half);
    let _ = to_upstream.join();
    let _ = client_reader.join();
    let _ = upstream_reader.join();
    Ok(())
}

/// Reads `from` chunk by chunk, stamping each, until it ends or fails, or
/// its writer has gone.
fn read_side(mut from: TcpStream, queue: &SyncSender<Item>) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => {
                let _ = queue.send(Item::End(Instant::now()));
                return;
            }
            Ok(n) => {
                if queue
                    .send(Item::Bytes(buf[..n].to_vec(), Instant::now()))
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// Writes each chunk (`first`, then the queue's) to `to` half an RTT after
/// it was read; at the end of the stream, half an RTT after it, closes
/// `to`'s sending side. On a failure to write, shuts both sockets so every
/// thread of the connection ends.
fn write_side(
    mut first: Option<Item>,
    queue: Receiver<Item>,
    mut to: TcpStream,
    from: &TcpStream,
    half: Duration,
) {
    loop {
        match first.take().map_or_else(|| queue.recv(), Ok) {
            Ok(Item::Bytes(bytes, at)) => {
                sleep_until(at + half);
                if to.write_all(&bytes).is_err() {
                    break;
                }
            }
            Ok(Item::End(at)) => {
                sleep_until(at + half);
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            // The reader ended without a word: it cannot (it always sends
            // `End`), but the connection is over either way.
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

fn sleep_until(at: Instant) {
    let now = Instant::now();
    if at > now {
        std::thread::sleep(at - now);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// An echo server: each connection's bytes go back as they come.
    fn echo() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let mut s = s.unwrap();
                std::thread::spawn(move || {
                    let mut r = s.try_clone().unwrap();
                    let _ = io::copy(&mut r, &mut s);
                    let _ = s.shutdown(Shutdown::Write);
                });
            }
        });
        addr
    }

    /// Five connections at once, each writing 3 MiB of its own pattern in
    /// writes of odd sizes while reading the echo: every byte comes back, in
    /// order, and the end of the stream too.
    #[test]
    fn bytes_come_back_in_order_and_complete() {
        let relay = Relay::start(echo(), Duration::from_millis(2)).unwrap();
        let workers: Vec<_> = (0..5u8)
            .map(|k| {
                let addr = relay.addr();
                std::thread::spawn(move || {
                    let data: Vec<u8> = (0..3u32 << 20)
                        .map(|i| (i.wrapping_mul(31) as u8) ^ k)
                        .collect();
                    let mut s = TcpStream::connect(addr).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                    let mut w = s.try_clone().unwrap();
                    let sent = data.clone();
                    let writer = std::thread::spawn(move || {
                        let mut at = 0;
                        let mut size = 1;
                        while at < sent.len() {
                            let end = (at + size).min(sent.len());
                            w.write_all(&sent[at..end]).unwrap();
                            at = end;
                            size = size * 7 % 100_003 + 1;
                        }
                        w.shutdown(Shutdown::Write).unwrap();
                    });
                    let mut back = Vec::new();
                    s.read_to_end(&mut back).unwrap();
                    writer.join().unwrap();
                    assert_eq!(back.len(), data.len(), "connection {k}");
                    assert!(back == data, "connection {k}: bytes out of order");
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        assert!(relay.wait_idle(Duration::from_secs(30)));
        assert_eq!(relay.accepted(), 5);
        assert_eq!(relay.failure(), None);
    }

    /// Never early: with a 20 ms RTT, the first echo comes back no sooner
    /// than the handshake's stand-in (1.5 RTT) plus half an RTT, and a later
    /// one no sooner than a full RTT after it was written. Lower bounds only:
    /// a slow machine cannot make this fail.
    #[test]
    fn a_relay_never_delivers_early() {
        let rtt = Duration::from_millis(20);
        let relay = Relay::start(echo(), rtt).unwrap();
        let t0 = Instant::now();
        let mut s = TcpStream::connect(relay.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s.write_all(b"ping\r\n").unwrap();
        let mut b = [0u8; 6];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"ping\r\n");
        assert!(t0.elapsed() >= rtt * 2, "{:?}", t0.elapsed());
        for i in 0..3u8 {
            let t = Instant::now();
            s.write_all(&[b'0' + i]).unwrap();
            let mut one = [0u8; 1];
            s.read_exact(&mut one).unwrap();
            assert_eq!(one[0], b'0' + i);
            assert!(t.elapsed() >= rtt, "round trip {i}: {:?}", t.elapsed());
        }
        drop(s);
        assert!(relay.wait_idle(Duration::from_secs(30)));
    }

    /// An upstream nobody listens on: the client's connection is closed and
    /// the failure kept.
    #[test]
    fn an_unreachable_upstream_closes_the_client() {
        let dead = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let relay = Relay::start(dead, Duration::from_millis(1)).unwrap();
        let mut s = TcpStream::connect(relay.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut b = [0u8; 1];
        assert!(matches!(s.read(&mut b), Ok(0) | Err(_)));
        assert!(relay.wait_idle(Duration::from_secs(30)));
        assert!(relay.failure().is_some());
    }
}
