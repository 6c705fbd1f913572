//! The MTA-STS policy fetchers over HTTPS against a tiny rustls HTTPS
//! server on loopback (certificates from smtp-testkit's test CA, for
//! `localhost`): the blocking `smtp_adapter::mx::HttpsPolicyFetcher`, and
//! `smtp_async::mx::HttpsPolicyFetcher` on Tokio and on async-std. Each
//! case: 200 text/plain, 404, 301 (not followed), text/html, a body over
//! 64 KiB (cut at 64 KiB + 1), chunked, a certificate for another name, a
//! server that never answers, and servers that drip.

#![cfg(feature = "mx")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::on_both;
use smtp_async::Runtime;
use smtp_async::mx::{
    HttpsFetchError, HttpsPolicyFetcher, MAX_POLICY_BODY, PolicyFetch, PolicyFetchTimeouts,
    PolicyFetcher,
};
use smtp_async::smtp_adapter::mx::{BlockingPolicyFetcher, HttpsPolicyFetcher as BlockingFetcher};
use smtp_async_std::AsyncStd;
use smtp_mx::sts::http::Response;
use smtp_testkit::TestPki;
use smtp_tokio::Tokio;

const URL: &str = "https://localhost/.well-known/mta-sts.txt";
const POLICY: &str = "version: STSv1\r\nmode: enforce\r\nmx: mx.example.com\r\nmax_age: 86400\r\n";

/// What the server does with each connection.
#[derive(Clone)]
enum Behaviour {
    /// Reads the request, writes these bytes, closes.
    Answer(Vec<u8>),
    /// Accepts the TCP connection and never says a word (no TLS either).
    Silent,
    /// Reads the request, then writes these bytes `step` at a time (each in
    /// a TLS record of its own) every `pause`, then closes.
    Drip(Vec<u8>, usize, Duration),
    /// Reads the request, then writes a head and one body byte every
    /// `pause`, without end (until the client goes).
    DripForever(Duration),
}

/// A test HTTPS server: its address and the requests it read.
struct Server {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    pki: Arc<TestPki>,
}

fn serve(behaviour: Behaviour) -> Server {
    let pki = Arc::new(TestPki::generate().unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let (config, count) = (pki.server_config(), requests.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let (config, count, behaviour) = (config.clone(), count.clone(), behaviour.clone());
            std::thread::spawn(move || one(stream, config, &count, behaviour));
        }
    });
    Server {
        addr,
        requests,
        pki,
    }
}

/// Serves one connection.
fn one(
    stream: TcpStream,
    config: Arc<rustls::ServerConfig>,
    count: &AtomicUsize,
    behaviour: Behaviour,
) {
    // No wait of the test server lasts long, whatever the client does.
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    if let Behaviour::Silent = behaviour {
        // Reads the client's hello and all else until the client goes.
        let mut stream = stream;
        while matches!(stream.read(&mut [0u8; 1024]), Ok(n) if n > 0) {}
        return;
    }
    let conn = rustls::ServerConnection::new(config).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, stream);
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    assert!(request.starts_with(b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: localhost\r\n"));
    count.fetch_add(1, Ordering::SeqCst);
    match behaviour {
        Behaviour::Answer(bytes) => {
            let _ = tls.write_all(&bytes);
        }
        Behaviour::Drip(bytes, step, pause) => {
            for piece in bytes.chunks(step) {
                if tls.write_all(piece).and_then(|()| tls.flush()).is_err() {
                    return;
                }
                std::thread::sleep(pause);
            }
        }
        Behaviour::DripForever(pause) => {
            let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n");
            while tls.write_all(b"a").and_then(|()| tls.flush()).is_ok() {
                std::thread::sleep(pause);
            }
        }
        Behaviour::Silent => {}
    }
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

fn http(status: &str, fields: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!("HTTP/1.1 {status}\r\n{fields}\r\n").into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn plain(body: &str) -> Vec<u8> {
    let fields = format!(
        "Content-Type: text/plain\r\nContent-Length: {}\r\n",
        body.len()
    );
    http("200 OK", &fields, body.as_bytes())
}

/// Short limits, so that the failing cases end soon.
fn timeouts() -> PolicyFetchTimeouts {
    PolicyFetchTimeouts {
        connect: Duration::from_secs(5),
        handshake: Duration::from_secs(5),
        read: Duration::from_secs(5),
        total: Duration::from_secs(1),
    }
}

/// What failed, in short.
fn kind(e: HttpsFetchError) -> String {
    match e {
        HttpsFetchError::Http(e) => format!("http: {e}"),
        HttpsFetchError::Connect(_) => "connect".into(),
        HttpsFetchError::Tls(_) => "tls".into(),
        HttpsFetchError::Io(_) => "io".into(),
        HttpsFetchError::Timeout(_) => "timeout".into(),
        e => format!("other: {e}"),
    }
}

type Outcome = (Result<Response, String>, Duration);

/// The fetch of `url` from `server` (connecting to it for `host`) by the
/// blocking fetcher, then by the async one on Tokio and on async-std: each
/// result and how long it took.
fn fetch_three(server: &Server, host: &str, url: &str) -> [Outcome; 3] {
    let config = server.pki.client_config();
    let blocking = BlockingFetcher::new()
        .tls_config(config.clone())
        .connect_to(host, server.addr)
        .timeouts(timeouts());
    let started = Instant::now();
    let first = (
        blocking.get(url, Duration::from_secs(30)).map_err(kind),
        started.elapsed(),
    );
    let (mut tokio, mut async_std) = (None, None);
    on_both(
        async {
            let started = Instant::now();
            let r = fetcher::<Tokio>(config.clone(), host, server.addr)
                .get(url)
                .await;
            tokio = Some((r.map_err(kind), started.elapsed()));
        },
        async {
            let started = Instant::now();
            let r = fetcher::<AsyncStd>(config.clone(), host, server.addr)
                .get(url)
                .await;
            async_std = Some((r.map_err(kind), started.elapsed()));
        },
    );
    [first, tokio.unwrap(), async_std.unwrap()]
}

/// Every fetcher got `expected`.
fn all_got(server: &Server, expected: &Result<Response, String>) {
    for (i, (got, _)) in fetch_three(server, "localhost", URL).iter().enumerate() {
        assert_eq!(got, expected, "fetcher {i} (blocking, tokio, async-std)");
    }
}

fn response(status: u16, content_type: Option<&str>, body: &[u8]) -> Result<Response, String> {
    Ok(Response {
        status,
        content_type: content_type.map(str::to_owned),
        body: body.to_vec(),
        truncated: false,
    })
}

fn fetcher<R: Runtime>(
    config: Arc<rustls::ClientConfig>,
    host: &str,
    addr: SocketAddr,
) -> HttpsPolicyFetcher<R> {
    HttpsPolicyFetcher::<R>::new()
        .tls_config(config)
        .connect_to(host, addr)
        .timeouts(timeouts())
}

#[test]
fn a_policy_as_text_plain() {
    let server = serve(Behaviour::Answer(plain(POLICY)));
    all_got(
        &server,
        &response(200, Some("text/plain"), POLICY.as_bytes()),
    );
    assert_eq!(server.requests.load(Ordering::SeqCst), 3);
}

#[test]
fn not_found() {
    let body = b"no policy here";
    let fields = format!(
        "Content-Type: text/plain\r\nContent-Length: {}\r\n",
        body.len()
    );
    let server = serve(Behaviour::Answer(http("404 Not Found", &fields, body)));
    all_got(&server, &response(404, Some("text/plain"), body));
}

#[test]
fn a_redirect_is_not_followed() {
    let fields = "Location: https://localhost/elsewhere.txt\r\nContent-Length: 0\r\n";
    let server = serve(Behaviour::Answer(http(
        "301 Moved Permanently",
        fields,
        b"",
    )));
    all_got(&server, &response(301, None, b""));
    // One request per fetch: the Location was not asked for.
    assert_eq!(server.requests.load(Ordering::SeqCst), 3);
}

#[test]
fn text_html_is_returned_as_it_is() {
    let body = b"<html>version: STSv1</html>";
    let fields = format!(
        "Content-Type: text/html\r\nContent-Length: {}\r\n",
        body.len()
    );
    let server = serve(Behaviour::Answer(http("200 OK", &fields, body)));
    all_got(&server, &response(200, Some("text/html"), body));
}

#[test]
fn a_body_over_64_kib_is_cut_one_byte_past_it() {
    let body = vec![b'x'; 200 * 1024];
    for fields in [
        format!(
            "Content-Type: text/plain\r\nContent-Length: {}\r\n",
            body.len()
        ),
        "Content-Type: text/plain\r\n".to_owned(),
    ] {
        let server = serve(Behaviour::Answer(http("200 OK", &fields, &body)));
        let expected = Ok(Response {
            status: 200,
            content_type: Some("text/plain".into()),
            body: body[..=MAX_POLICY_BODY].to_vec(),
            truncated: true,
        });
        all_got(&server, &expected);
    }
}

#[test]
fn a_chunked_body() {
    let mut chunked = Vec::new();
    for piece in POLICY.as_bytes().chunks(10) {
        chunked.extend_from_slice(format!("{:X}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let fields = "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n";
    let server = serve(Behaviour::Answer(http("200 OK", fields, &chunked)));
    all_got(
        &server,
        &response(200, Some("text/plain"), POLICY.as_bytes()),
    );
}

#[test]
fn a_certificate_for_another_name_fails() {
    let server = serve(Behaviour::Answer(plain(POLICY)));
    let url = "https://mta-sts.example.com/.well-known/mta-sts.txt";
    for (got, _) in fetch_three(&server, "mta-sts.example.com", url) {
        assert_eq!(got, Err("tls".to_owned()));
    }
    // The handshake failed before any request.
    assert_eq!(server.requests.load(Ordering::SeqCst), 0);
}

#[test]
fn a_server_that_never_answers_fails_within_the_deadline() {
    let server = serve(Behaviour::Silent);
    for (got, took) in fetch_three(&server, "localhost", URL) {
        assert_eq!(got, Err("timeout".to_owned()));
        // The whole fetch's limit is 1 s, the handshake's 5 s.
        assert!(took < Duration::from_secs(4), "{took:?}");
    }
}

#[test]
fn a_server_dripping_without_end_fails_at_the_whole_fetchs_deadline() {
    // Each read gets a byte well within its own limit (5 s): only the
    // whole fetch's limit (1 s) ends it.
    let server = serve(Behaviour::DripForever(Duration::from_millis(20)));
    for (got, took) in fetch_three(&server, "localhost", URL) {
        assert_eq!(got, Err("timeout".to_owned()));
        assert!(took < Duration::from_secs(4), "{took:?}");
    }
}

#[test]
fn a_response_dripped_a_few_bytes_a_record_is_read_whole() {
    let server = serve(Behaviour::Drip(plain(POLICY), 7, Duration::from_millis(1)));
    all_got(
        &server,
        &response(200, Some("text/plain"), POLICY.as_bytes()),
    );
}

#[test]
fn the_fetcher_traits_give_the_engines_results() {
    let server = serve(Behaviour::Answer(plain(POLICY)));
    let config = server.pki.client_config();
    let expected = PolicyFetch::Response {
        status: 200,
        content_type: Some("text/plain".into()),
        body: POLICY.as_bytes().to_vec(),
    };
    let blocking = BlockingFetcher::new()
        .tls_config(config.clone())
        .connect_to("localhost", server.addr);
    assert_eq!(
        blocking.fetch_blocking(URL, Duration::from_secs(10)),
        expected
    );
    // Not an https URL: failed, no connection made.
    assert_eq!(
        blocking.fetch_blocking("http://localhost/", Duration::from_secs(10)),
        PolicyFetch::Failed
    );
    // A certificate for another name: the engine is told so.
    let other = BlockingFetcher::new()
        .tls_config(config.clone())
        .connect_to("mta-sts.example.com", server.addr);
    let url = "https://mta-sts.example.com/.well-known/mta-sts.txt";
    assert_eq!(
        other.fetch_blocking(url, Duration::from_secs(10)),
        PolicyFetch::CertificateInvalid
    );
    let (expected_ref, config_ref) = (&expected, &config);
    on_both(
        async move {
            let f = fetcher::<Tokio>(config_ref.clone(), "localhost", server.addr);
            assert_eq!(f.fetch(URL).await, *expected_ref);
            // A certificate for another name: the engine is told so.
            let other = fetcher::<Tokio>(config_ref.clone(), "mta-sts.example.com", server.addr);
            let url = "https://mta-sts.example.com/.well-known/mta-sts.txt";
            assert_eq!(other.fetch(url).await, PolicyFetch::CertificateInvalid);
        },
        async move {
            let f = fetcher::<AsyncStd>(config_ref.clone(), "localhost", server.addr);
            assert_eq!(f.fetch(URL).await, *expected_ref);
        },
    );
    assert_eq!(server.requests.load(Ordering::SeqCst), 3);
}
