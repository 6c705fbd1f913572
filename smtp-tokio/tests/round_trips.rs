//! Round trips per message on a new connection (the web-application pattern):
//! every write and every read of the session's stream counted by a wrapper
//! around the socket, against the testkit server. A round trip is a run of
//! reads after a write (or, for the greeting, after connecting): the client
//! waits for the server once per run, however the replies are split.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use smtp_testkit::{MockServer, Script, ServerConfig};
use smtp_tokio::{Delivery, Envelope, Options, SmtpClient};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What the client did on its stream, in order: `W` a write, `R` a read.
type Log = Arc<Mutex<Vec<u8>>>;

struct Counting {
    inner: tokio::net::TcpStream,
    log: Log,
}

impl AsyncRead for Counting {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if r.is_ready() {
            self.log.lock().unwrap().push(b'R');
        }
        r
    }
}

impl AsyncWrite for Counting {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if r.is_ready() {
            self.log.lock().unwrap().push(b'W');
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Writes and round trips (runs of reads) in a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    writes: usize,
    round_trips: usize,
}

fn counts(log: &[u8]) -> Counts {
    let writes = log.iter().filter(|&&b| b == b'W').count();
    let round_trips = log
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'R' && (i == 0 || log[i - 1] == b'W'))
        .count();
    Counts {
        writes,
        round_trips,
    }
}

const MESSAGE: &[u8] = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: rtt\r\n\r\nhello\r\n";

fn envelope() -> Envelope {
    Envelope::parse("a@example.org", &["b@example.org"]).unwrap()
}

async fn session(server: &MockServer) -> (SmtpClient, Log) {
    let log = Log::default();
    let inner = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    inner.set_nodelay(true).unwrap();
    let stream = Counting {
        inner,
        log: log.clone(),
    };
    let mut o = Options::default();
    o.timeout = Some(Duration::from_secs(10));
    let mut c = SmtpClient::from_stream(stream, "localhost", o)
        .await
        .unwrap();
    c.ehlo(None).await.unwrap();
    (c, log)
}

/// One message on a new connection, `send` then `quit`.
async fn send_then_quit(server: &MockServer) -> Counts {
    let (mut c, log) = session(server).await;
    c.send(&envelope(), MESSAGE).await.unwrap();
    c.quit().await.unwrap();
    let log = log.lock().unwrap().clone();
    counts(&log)
}

/// One message on a new connection, `send_and_quit`.
async fn send_and_quit(server: &MockServer) -> Counts {
    let (c, log) = session(server).await;
    let r = c.send_and_quit(&envelope(), MESSAGE).await.unwrap();
    assert_eq!(r.final_reply.map(|r| r.code()), Some(250));
    let log = log.lock().unwrap().clone();
    counts(&log)
}

fn server(extensions: &[&str]) -> MockServer {
    MockServer::start(ServerConfig::default().extensions(extensions)).unwrap()
}

/// Each connection's message was stored once and its client said QUIT.
fn check_server(server: &MockServer, connections: usize) {
    assert_eq!(
        server.wait_for_finished(connections, WAIT),
        connections,
        "every connection ended"
    );
    let stored = server.wait_for_messages(connections, WAIT);
    assert_eq!(stored.len(), connections);
    for (i, log) in server.connection_logs().iter().enumerate() {
        assert_eq!(
            stored.iter().filter(|m| m.connection == i).count(),
            1,
            "one message on connection {i}"
        );
        assert!(
            log.transcript.iter().any(|l| l == "C: QUIT"),
            "connection {i}: {:?}",
            log.transcript
        );
    }
}

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn round_trips_per_message_on_a_new_connection() {
    // (server's extensions, send + quit, send_and_quit): writes and round
    // trips, the greeting's included.
    let w = |writes, round_trips| Counts {
        writes,
        round_trips,
    };
    let cases: [(&str, &[&str], Counts, Counts); 3] = [
        // EHLO, MAIL, RCPT, DATA, the body, QUIT: nothing to pipeline.
        ("no PIPELINING", &["8BITMIME"], w(6, 7), w(6, 7)),
        // EHLO; MAIL RCPT DATA; the body (+ QUIT); QUIT.
        ("PIPELINING", &["PIPELINING", "8BITMIME"], w(4, 5), w(3, 4)),
        // EHLO; MAIL RCPT BDAT LAST (+ QUIT); QUIT.
        (
            "PIPELINING+CHUNKING",
            &["PIPELINING", "8BITMIME", "CHUNKING"],
            w(3, 4),
            w(2, 3),
        ),
    ];
    for (name, ext, before, after) in cases {
        let s = server(ext);
        let got_before = send_then_quit(&s).await;
        let got_after = send_and_quit(&s).await;
        println!("{name}: send + quit {got_before:?}, send_and_quit {got_after:?}");
        assert_eq!(got_before, before, "{name}: send + quit");
        assert_eq!(got_after, after, "{name}: send_and_quit");
        check_server(&s, 2);
    }
}

/// How `several` sends its messages.
#[derive(Debug, Clone, Copy)]
enum Way {
    /// A `send` each, then `quit`.
    Each,
    /// `send_batch`, then `quit`.
    Batch,
    /// `send_batch_and_quit`.
    BatchAndQuit,
}

/// `n` messages on one session, sent the given way: the round trips counted
/// from the greeting to the reply to QUIT.
async fn several(server: &MockServer, n: usize, way: Way) -> Counts {
    let (mut c, log) = session(server).await;
    let e = envelope();
    let batch = std::iter::repeat_n((&e, MESSAGE), n);
    let results = match way {
        Way::Each => {
            for _ in 0..n {
                c.send(&e, MESSAGE).await.unwrap();
            }
            c.quit().await.unwrap();
            Vec::new()
        }
        Way::Batch => {
            let results = c.send_batch(batch).await;
            c.quit().await.unwrap();
            results
        }
        Way::BatchAndQuit => c.send_batch_and_quit(batch).await,
    };
    if !matches!(way, Way::Each) {
        assert_eq!(results.len(), n);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
    }
    let log = log.lock().unwrap().clone();
    counts(&log)
}

#[tokio::test]
async fn a_batch_takes_one_round_trip_per_message() {
    // Greeting, EHLO and QUIT are 3 round trips; 10 messages by DATA take
    // 2 each with a `send` each and 1 each plus 1 in a batch (the next
    // envelope leaves with the end of the message before it); with
    // CHUNKING a message is one round trip either way. `send_batch_and_quit`
    // saves QUIT's own round trip: it leaves with the last message's end.
    let cases: [(&str, &[&str], [usize; 3]); 2] = [
        (
            "PIPELINING",
            &["PIPELINING", "8BITMIME"],
            [3 + 20, 3 + 11, 2 + 11],
        ),
        (
            "PIPELINING+CHUNKING",
            &["PIPELINING", "8BITMIME", "CHUNKING"],
            [3 + 10, 3 + 10, 2 + 10],
        ),
    ];
    for (name, ext, expected) in cases {
        let s = server(ext);
        for (way, want) in [Way::Each, Way::Batch, Way::BatchAndQuit]
            .into_iter()
            .zip(expected)
        {
            let got = several(&s, 10, way).await;
            println!("{name}: {way:?} {got:?}");
            assert_eq!(got.round_trips, want, "{name}: {way:?}");
        }
        assert_eq!(s.wait_for_finished(3, WAIT), 3, "{name}");
        assert_eq!(s.wait_for_messages(30, WAIT).len(), 30, "{name}");
        for log in s.connection_logs() {
            assert!(log.transcript.iter().any(|l| l == "C: QUIT"), "{name}");
        }
    }
}

/// A server that answers the message and never QUIT.
fn silent_after_the_message(chunking: bool) -> MockServer {
    let ehlo = if chunking {
        "250-testkit\r\n250-PIPELINING\r\n250 CHUNKING"
    } else {
        "250-testkit\r\n250 PIPELINING"
    };
    let script = Script::default()
        .send("220 testkit")
        .expect_line()
        .send(ehlo);
    let script = if chunking {
        script
            .read_until(b"QUIT\r\n")
            .send("250 ok\r\n250 ok\r\n250 2.0.0 queued")
    } else {
        script
            .read_until(b"DATA\r\n")
            .send("250 ok\r\n250 ok\r\n354 go")
            .read_until(b"\r\n.\r\nQUIT\r\n")
            .send("250 2.0.0 queued")
    };
    let script = script.silence(Duration::from_secs(30));
    MockServer::start(ServerConfig::scripted(script)).unwrap()
}

#[tokio::test]
async fn send_and_quit_waits_for_the_221_at_most_the_linger() {
    for chunking in [false, true] {
        let s = silent_after_the_message(chunking);
        let mut o = Options::default();
        // Far longer than the test lets the call run.
        o.timeout = Some(Duration::from_secs(60));
        let c = SmtpClient::connect(&s.addr().to_string(), o).await.unwrap();
        // The linger (1 s) plus 1 s.
        let limit = Duration::from_secs(1) + Duration::from_secs(1);
        let sent = tokio::time::timeout(limit, c.send_and_quit(&envelope(), MESSAGE)).await;
        let r = sent.expect("the wait for the 221 is bounded by the linger, not the timeout");
        assert_eq!(r.unwrap().final_reply.map(|r| r.code()), Some(250));
        assert_eq!(
            s.wait_for_finished(1, WAIT),
            1,
            "the client closed the connection"
        );
    }
}

#[tokio::test]
async fn send_and_quit_reports_a_lost_connection_after_the_end_as_unknown() {
    // The server reads the message and QUIT, then closes without a word.
    let script = Script::default()
        .send("220 testkit")
        .expect_line()
        .send("250-testkit\r\n250-PIPELINING\r\n250 CHUNKING")
        .read_until(b"QUIT\r\n")
        .close();
    let s = MockServer::start(ServerConfig::scripted(script)).unwrap();
    let c = SmtpClient::connect(&s.addr().to_string(), opts())
        .await
        .unwrap();
    let e = c.send_and_quit(&envelope(), MESSAGE).await.unwrap_err();
    assert_eq!(e.delivery(), Delivery::Unknown, "{e:?}");
}

#[tokio::test]
async fn send_and_quit_reports_a_refused_message_and_still_quits() {
    let s = MockServer::start(ServerConfig::default().fail_data_with(554)).unwrap();
    let c = SmtpClient::connect(&s.addr().to_string(), opts())
        .await
        .unwrap();
    let e = c.send_and_quit(&envelope(), MESSAGE).await.unwrap_err();
    assert_eq!(e.delivery(), Delivery::Refused, "{e:?}");
    s.wait_for_finished(1, WAIT);
    let t = &s.connection_logs()[0].transcript;
    assert!(t.iter().any(|l| l == "C: QUIT"), "{t:?}");
    assert!(
        !t.iter().any(|l| l == "C: RSET"),
        "no RSET behind QUIT: {t:?}"
    );
}

#[tokio::test]
async fn send_and_quit_with_an_invalid_message_still_quits() {
    let s = MockServer::start(ServerConfig::default()).unwrap();
    let c = SmtpClient::connect(&s.addr().to_string(), opts())
        .await
        .unwrap();
    let huge = vec![b'x'; 11 * 1024 * 1024];
    let e = c.send_and_quit(&envelope(), &huge).await.unwrap_err();
    assert_eq!(e.delivery(), Delivery::NotSent, "{e:?}");
    s.wait_for_finished(1, WAIT);
    let t = &s.connection_logs()[0].transcript;
    assert!(t.iter().any(|l| l == "C: QUIT"), "{t:?}");
    assert!(s.messages().is_empty());
}

fn opts() -> Options {
    let mut o = Options::default();
    o.timeout = Some(WAIT);
    o
}

/// Per-connection work done once: every connection a builder makes (a pool
/// clones it per connection) uses one TLS configuration, so that rustls'
/// session cache can resume across them; the default one is built once per
/// process.
#[cfg(feature = "tls")]
#[tokio::test]
async fn every_connection_shares_one_tls_configuration() {
    use smtp_testkit::ServerTls;
    use smtp_tokio::{Pool, PoolConfig, Tls};
    let server = MockServer::start(ServerConfig::default().tls(ServerTls::StartTls)).unwrap();
    let given = server.pki().client_config();
    let builder = SmtpClient::builder(server.addr())
        .tls(Tls::StartTls)
        .tls_config(given)
        .tls_server_name("localhost")
        .timeout(WAIT);
    let pool = Pool::new(PoolConfig::default().max_size(2), move || {
        builder.clone().connect()
    });
    // Two sessions at once: two connections, the second resuming the first's
    // TLS session, which only the same configuration (its session cache) can.
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    assert!(a.is_tls() && b.is_tls());
    assert_eq!((a.tls_resumed(), b.tls_resumed()), (false, true));
    // The default configuration is built once per process.
    match (
        smtp_tokio::tls::default_config(),
        smtp_tokio::tls::default_config(),
    ) {
        (Ok(x), Ok(y)) => assert!(Arc::ptr_eq(&x, &y), "built once per process"),
        // No root certificate on this machine: nothing to share.
        (Err(_), Err(_)) => {}
        (x, y) => panic!("{x:?} {y:?}"),
    }
}
