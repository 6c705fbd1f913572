//! A fake DNS server on a loopback UDP (and TCP) port, answering from a
//! function of the question, and a way to run one case on Tokio and on
//! async-std.

// Each test file uses a part of this.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_resolver::proto::op::{Message, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, AAAA, CNAME, MX, TLSA, TXT};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};

/// What the fake server does with one question.
#[derive(Clone)]
pub enum Reply {
    /// Answers with `rcode`, these answer records and the AD bit as
    /// given; `truncate` sends over UDP an empty answer with TC set (the
    /// whole one over TCP).
    Answer {
        rcode: ResponseCode,
        answers: Vec<Record>,
        ad: bool,
        truncate: bool,
    },
    /// Sends these bytes back, whatever they are (the query's id first).
    Raw(Vec<u8>),
    /// Says nothing.
    Silent,
}

impl Reply {
    /// NOERROR with `answers`, AD as `ad`.
    pub fn records(answers: Vec<Record>, ad: bool) -> Reply {
        Reply::Answer {
            rcode: ResponseCode::NoError,
            answers,
            ad,
            truncate: false,
        }
    }

    /// No records and `rcode`, AD as `ad`.
    pub fn code(rcode: ResponseCode, ad: bool) -> Reply {
        Reply::Answer {
            rcode,
            answers: Vec::new(),
            ad,
            truncate: false,
        }
    }
}

/// What a query carried, as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The name, lower case, with its final dot.
    pub name: String,
    /// The type.
    pub rtype: RecordType,
    /// The AD bit.
    pub ad: bool,
    /// The DO bit.
    pub dnssec_ok: bool,
    /// Whether it came over TCP.
    pub tcp: bool,
}

type Zone = dyn Fn(&str, RecordType) -> Reply + Send + Sync;

/// The fake server; it stops when dropped.
pub struct FakeDns {
    /// Its address (127.0.0.1, UDP and TCP).
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl FakeDns {
    /// A server answering each question with `zone(name, type)` (the name
    /// lower case, with its final dot).
    pub fn start(zone: impl Fn(&str, RecordType) -> Reply + Send + Sync + 'static) -> FakeDns {
        let zone: Arc<Zone> = Arc::new(zone);
        // The same port for UDP and TCP: try a few until both bind.
        let (udp, tcp) = (0..20)
            .find_map(|_| {
                let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).ok()?;
                let tcp = TcpListener::bind(udp.local_addr().ok()?).ok()?;
                Some((udp, tcp))
            })
            .expect("a loopback port for UDP and TCP");
        let addr = udp.local_addr().unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        tcp.set_nonblocking(true).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let udp_thread = {
            let (zone, seen, stop) = (zone.clone(), seen.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = udp.recv_from(&mut buf) else {
                        continue;
                    };
                    if let Some(out) = respond(&buf[..n], &*zone, &seen, false) {
                        let _ = udp.send_to(&out, from);
                    }
                }
            })
        };
        let tcp_thread = {
            let (zone, seen, stop) = (zone, seen.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok((mut conn, _)) = tcp.accept() else {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    conn.set_nonblocking(false).unwrap();
                    conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                    let mut len = [0u8; 2];
                    if conn.read_exact(&mut len).is_err() {
                        continue;
                    }
                    let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    if conn.read_exact(&mut query).is_err() {
                        continue;
                    }
                    if let Some(out) = respond(&query, &*zone, &seen, true) {
                        let mut framed = (out.len() as u16).to_be_bytes().to_vec();
                        framed.extend_from_slice(&out);
                        let _ = conn.write_all(&framed);
                    }
                }
            })
        };
        FakeDns {
            addr,
            seen,
            stop,
            threads: vec![udp_thread, tcp_thread],
        }
    }

    /// The queries seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The queries seen, once there are at least `n` (waiting at most
    /// 10 s for the server's thread to read them).
    pub fn seen_at_least(&self, n: usize) -> Vec<Seen> {
        for _ in 0..1000 {
            let seen = self.seen();
            if seen.len() >= n {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.seen()
    }
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The bytes answering `query`, if any.
fn respond(query: &[u8], zone: &Zone, seen: &Mutex<Vec<Seen>>, tcp: bool) -> Option<Vec<u8>> {
    let query = Message::from_vec(query).ok()?;
    let question = query.queries.first()?.clone();
    let name = question.name.to_lowercase().to_ascii();
    let rtype = question.query_type;
    seen.lock().unwrap().push(Seen {
        name: name.clone(),
        rtype,
        ad: query.metadata.authentic_data,
        dnssec_ok: query.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok),
        tcp,
    });
    let (rcode, answers, ad, truncate) = match zone(&name, rtype) {
        Reply::Silent => return None,
        Reply::Raw(mut bytes) => {
            if bytes.len() >= 2 {
                bytes[..2].copy_from_slice(&query.metadata.id.to_be_bytes());
            }
            return Some(bytes);
        }
        Reply::Answer {
            rcode,
            answers,
            ad,
            truncate,
        } => (rcode, answers, ad, truncate),
    };
    let mut response = Message::response(query.metadata.id, OpCode::Query);
    response.add_query(question);
    response.metadata.response_code = rcode;
    response.metadata.authentic_data = ad;
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    if truncate && !tcp {
        response.metadata.truncation = true;
    } else {
        response.add_answers(answers);
    }
    response.to_vec().ok()
}

/// `name` as a DNS name (with its final dot).
pub fn name(name: &str) -> Name {
    Name::from_str(name).unwrap()
}

/// An MX record.
pub fn mx(owner: &str, preference: u16, exchange: &str) -> Record {
    Record::from_rdata(
        name(owner),
        300,
        RData::MX(MX::new(preference, name(exchange))),
    )
}

/// An A record.
pub fn a(owner: &str, ip: Ipv4Addr) -> Record {
    Record::from_rdata(name(owner), 300, RData::A(A(ip)))
}

/// An AAAA record.
pub fn aaaa(owner: &str, ip: Ipv6Addr) -> Record {
    Record::from_rdata(name(owner), 300, RData::AAAA(AAAA(ip)))
}

/// A TLSA record.
pub fn tlsa(owner: &str, usage: u8, selector: u8, matching: u8, data: &[u8]) -> Record {
    let rdata = TLSA::new(
        usage.into(),
        selector.into(),
        matching.into(),
        data.to_vec(),
    );
    Record::from_rdata(name(owner), 300, RData::TLSA(rdata))
}

/// A TXT record of these strings.
pub fn txt(owner: &str, strings: &[&str]) -> Record {
    let rdata = TXT::new(strings.iter().map(|s| (*s).to_owned()).collect());
    Record::from_rdata(name(owner), 300, RData::TXT(rdata))
}

/// A CNAME record.
pub fn cname(owner: &str, target: &str) -> Record {
    Record::from_rdata(name(owner), 300, RData::CNAME(CNAME(name(target))))
}

/// Runs the case made by `case` on a Tokio current-thread runtime, then on
/// async-std.
pub fn on_both<F: Future<Output = ()>>(case: impl Fn() -> F) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(Box::pin(case()));
    async_std::task::block_on(Box::pin(case()));
}
