//! The blocking facade over a caller's stream: through a SOCKS5 proxy (with
//! STARTTLS and AUTH), and any `Read + Write` one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use smtp_blocking::{Error, Options, SmtpClient};
#[cfg(feature = "tls")]
use smtp_testkit::ServerTls;
use smtp_testkit::{MockServer, Script, ServerConfig, Socks5Proxy};

const MSG: &[u8] = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: proxied\r\n\r\nhello\r\n";

fn options() -> Options {
    let mut o = Options::default();
    o.timeout = Some(Duration::from_secs(10));
    o
}

/// A connection to `server` through `proxy` (the socks crate's client).
fn through(proxy: &Socks5Proxy, server: &MockServer) -> socks::Socks5Stream {
    socks::Socks5Stream::connect(proxy.addr(), server.addr()).unwrap()
}

#[test]
fn a_plain_session_through_a_socks5_proxy() {
    let server = MockServer::start(ServerConfig::default()).unwrap();
    let proxy = Socks5Proxy::start().unwrap();
    let stream = through(&proxy, &server);
    let socket = stream.get_ref().try_clone().unwrap();
    let mut smtp = SmtpClient::from_stream_over(stream, socket, "localhost", options()).unwrap();
    smtp.sendmail("a@example.org", &["b@example.org"], MSG)
        .unwrap();
    smtp.quit().unwrap();
    assert_eq!(proxy.targets(), [server.addr()]);
    let m = &server.wait_for_messages(1, Duration::from_secs(5))[0];
    assert_eq!(m.data, MSG);
}

/// The session's deadline holds over a caller's stream when the caller gives
/// the socket under it: a server that stops answering is a timeout, not a
/// wait as long as the proxy's.
#[test]
fn the_deadline_holds_over_a_caller_stream() {
    let server = MockServer::start(ServerConfig::scripted(
        Script::default()
            .send("220 mx")
            .silence(Duration::from_secs(30)),
    ))
    .unwrap();
    let proxy = Socks5Proxy::start().unwrap();
    let stream = through(&proxy, &server);
    let socket = stream.get_ref().try_clone().unwrap();
    let mut o = options();
    o.timeout = Some(Duration::from_millis(300));
    let mut smtp = SmtpClient::from_stream_over(stream, socket, "localhost", o).unwrap();
    let started = Instant::now();
    let e = smtp.noop().unwrap_err();
    assert!(
        matches!(
            e.inner(),
            Error::Smtp(smtp_blocking::smtp_sansio::Error::Timeout(_))
        ),
        "{e:?}"
    );
    // Within the deadline plus 1 s, long before the server's 30 s of silence end.
    let took = started.elapsed();
    assert!(took < Duration::from_millis(300 + 1000), "{took:?}");
}

#[cfg(feature = "tls")]
mod tls {
    use super::*;
    use std::net::TcpStream;

    #[test]
    fn starttls_and_auth_through_a_socks5_proxy() {
        let server = MockServer::start(
            ServerConfig::default()
                .tls(ServerTls::StartTls)
                .user("alice", "secret"),
        )
        .unwrap();
        let proxy = Socks5Proxy::start().unwrap();
        let stream = through(&proxy, &server);
        let socket = stream.get_ref().try_clone().unwrap();
        let mut smtp =
            SmtpClient::from_stream_over(stream, socket, "localhost", options()).unwrap();
        smtp.set_tls_config(server.pki().client_config());
        smtp.starttls().unwrap();
        assert!(smtp.is_tls());
        smtp.login("alice", "secret").unwrap();
        smtp.sendmail("a@example.org", &["b@example.org"], MSG)
            .unwrap();
        smtp.quit().unwrap();

        assert_eq!(proxy.targets(), [server.addr()]);
        let m = &server.wait_for_messages(1, Duration::from_secs(5))[0];
        assert!(m.tls);
        assert_eq!(m.auth_user.as_deref(), Some("alice"));
        assert_eq!(m.data, MSG);
    }

    /// A stream without a socket under it works as well (its waits are the
    /// stream's own).
    #[test]
    fn starttls_over_any_read_write_stream() {
        let server = MockServer::start(ServerConfig::default().tls(ServerTls::StartTls)).unwrap();
        let stream = TcpStream::connect(server.addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut smtp = SmtpClient::from_stream(stream, "localhost", options()).unwrap();
        smtp.set_tls_config(server.pki().client_config());
        smtp.starttls().unwrap();
        smtp.sendmail("a@example.org", &["b@example.org"], MSG)
            .unwrap();
        smtp.quit().unwrap();
        assert!(server.wait_for_messages(1, Duration::from_secs(5))[0].tls);
    }
}
