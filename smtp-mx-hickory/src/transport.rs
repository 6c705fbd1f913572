//! Queries to the upstreams: UDP, then TCP when the answer is truncated,
//! each upstream in turn, each try bounded. Every response is returned as
//! it came (header included), whatever its code; [`Checked`] turns the
//! codes into errors as hickory's validator expects.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::stream::{self, Stream, StreamExt};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::xfer::DnsHandle;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::{DnsRequest, DnsResponse, Edns, Message, Query, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{Instant, timeout_at};

/// The UDP payload size we announce (the DNS flag day 2020 value), and so
/// the largest datagram expected; a larger one is read cut, and refused.
const EDNS_PAYLOAD: u16 = 1232;
/// The receive buffer for a datagram: more than we announce, so that a
/// server ignoring the announcement is noticed (the message then does not
/// parse) rather than silently cut.
const UDP_BUFFER: usize = 4096;

/// A response stream as hickory's handles return it.
type Responses = Pin<Box<dyn Stream<Item = Result<DnsResponse, NetError>> + Send>>;

/// The upstreams and how they are tried.
#[derive(Clone)]
pub(crate) struct Upstreams {
    inner: Arc<Settings>,
}

struct Settings {
    addrs: Vec<SocketAddr>,
    timeout: Duration,
    attempts: u8,
}

impl Upstreams {
    pub(crate) fn new(addrs: Vec<SocketAddr>, timeout: Duration, attempts: u8) -> Upstreams {
        Upstreams {
            inner: Arc::new(Settings {
                addrs,
                timeout,
                attempts: attempts.max(1),
            }),
        }
    }

    /// The response to `message` (a query with one question): the first
    /// NOERROR or NXDOMAIN one; else, after every try, the last response
    /// (SERVFAIL, REFUSED, ...) if there was one, or the last error
    /// ([`NetError::Timeout`] when nothing answered).
    pub(crate) async fn exchange(&self, mut message: Message) -> Result<DnsResponse, NetError> {
        let Some(question) = message.queries.first().cloned() else {
            return Err(NetError::from("no question in the query"));
        };
        message.metadata.id = query_id();
        message
            .edns
            .get_or_insert_with(Edns::new)
            .set_max_payload(EDNS_PAYLOAD);
        let id = message.metadata.id;
        let bytes = message.to_vec()?;
        let mut last_response = None;
        let mut last_error = NetError::Timeout;
        for _ in 0..self.inner.attempts {
            for &addr in &self.inner.addrs {
                match self.try_one(addr, &bytes, id, &question).await {
                    Ok(response)
                        if matches!(
                            response.metadata.response_code,
                            ResponseCode::NoError | ResponseCode::NXDomain
                        ) =>
                    {
                        return Ok(response);
                    }
                    Ok(response) => last_response = Some(response),
                    Err(e) => last_error = e,
                }
            }
        }
        last_response.ok_or(last_error)
    }

    /// One try of one upstream: UDP, and TCP if the answer is truncated.
    async fn try_one(
        &self,
        addr: SocketAddr,
        query: &[u8],
        id: u16,
        question: &Query,
    ) -> Result<DnsResponse, NetError> {
        let deadline = Instant::now() + self.inner.timeout;
        let response = timeout_at(deadline, udp(addr, query, id, question))
            .await
            .map_err(|_| NetError::Timeout)??;
        if !response.metadata.truncation {
            return Ok(response);
        }
        let deadline = Instant::now() + self.inner.timeout;
        timeout_at(deadline, tcp(addr, query, id, question))
            .await
            .map_err(|_| NetError::Timeout)?
    }
}

/// A fresh query id: unpredictable (a keyed hash of a counter, the key
/// random per process and thread), so that an off-path sender must guess
/// it as well as the source port.
fn query_id() -> u16 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    (h.finish() & 0xffff) as u16
}

/// Whether `response` answers the query `id` for `question`.
fn matches(response: &Message, id: u16, question: &Query) -> bool {
    response.metadata.id == id
        && response.queries.len() == 1
        && response.queries[0].query_type == question.query_type
        && response.queries[0].query_class == question.query_class
        && response.queries[0].name == question.name
}

/// The answer over UDP from `addr` (a connected socket: other senders'
/// datagrams are not read). Datagrams with another id or question are
/// skipped; one with our id that does not parse is an error.
async fn udp(
    addr: SocketAddr,
    query: &[u8],
    id: u16,
    question: &Query,
) -> Result<DnsResponse, NetError> {
    let local: SocketAddr = if addr.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(addr).await?;
    socket.send(query).await?;
    let mut buf = vec![0u8; UDP_BUFFER];
    loop {
        let n = socket.recv(&mut buf).await?;
        let datagram = &buf[..n];
        if datagram.len() < 2 || u16::from_be_bytes([datagram[0], datagram[1]]) != id {
            continue;
        }
        let response = DnsResponse::from_buffer(datagram.to_vec())?;
        if matches(&response, id, question) {
            return Ok(response);
        }
    }
}

/// The answer over TCP from `addr` (two octets of length, then the
/// message: at most 65535 bytes).
async fn tcp(
    addr: SocketAddr,
    query: &[u8],
    id: u16,
    question: &Query,
) -> Result<DnsResponse, NetError> {
    let mut stream = TcpStream::connect(addr).await?;
    let len = u16::try_from(query.len()).map_err(|_| NetError::from("query too long"))?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut body).await?;
    let response = DnsResponse::from_buffer(body)?;
    if matches(&response, id, question) {
        Ok(response)
    } else {
        Err(NetError::from("the TCP answer is for another query"))
    }
}

impl DnsHandle for Upstreams {
    type Response = Responses;
    type Runtime = TokioRuntimeProvider;

    fn send(&self, request: DnsRequest) -> Responses {
        let this = self.clone();
        let (message, _) = request.into_parts();
        Box::pin(stream::once(async move { this.exchange(message).await }))
    }
}

/// The upstreams as hickory's validator expects its inner handle to
/// answer: a response with a failure code, or with no answer, is an error
/// (as hickory's name-server pool gives it).
#[derive(Clone)]
pub(crate) struct Checked(pub(crate) Upstreams);

impl DnsHandle for Checked {
    type Response = Responses;
    type Runtime = TokioRuntimeProvider;

    fn send(&self, request: DnsRequest) -> Responses {
        Box::pin(
            self.0
                .send(request)
                .map(|r| r.and_then(|resp| DnsError::from_response(resp).map_err(NetError::from))),
        )
    }
}
