//! The client's writes around a TLS handshake, counted on the stream: under
//! TLS 1.3 the client's Finished (its last flight, which the server does not
//! answer) leaves in the same write as the EHLO after STARTTLS, and before
//! the first read of implicit TLS.

#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use smtp_blocking::{Options, SmtpClient};
use smtp_testkit::{MockServer, ServerConfig, ServerTls};

/// A stream that counts its writes (a vectored write is one) and keeps
/// how many buffers (TLS records) the last one had.
struct Counting {
    inner: TcpStream,
    writes: Arc<AtomicUsize>,
    last_buffers: Arc<AtomicUsize>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.last_buffers.store(1, Ordering::SeqCst);
        self.inner.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        let n = bufs.iter().filter(|b| !b.is_empty()).count();
        self.last_buffers.store(n, Ordering::SeqCst);
        self.inner.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn options() -> Options {
    let mut o = Options::default();
    o.timeout = Some(Duration::from_secs(10));
    o.local_name = Some("client.example".into());
    o
}

#[test]
fn ehlo_after_starttls_leaves_with_the_clients_finished() {
    let server = MockServer::start(ServerConfig::default().tls(ServerTls::StartTls)).unwrap();
    let socket = TcpStream::connect(server.addr()).unwrap();
    let writes = Arc::new(AtomicUsize::new(0));
    let last_buffers = Arc::new(AtomicUsize::new(0));
    let stream = Counting {
        inner: socket.try_clone().unwrap(),
        writes: writes.clone(),
        last_buffers: last_buffers.clone(),
    };
    let mut smtp = SmtpClient::from_stream_over(stream, socket, "localhost", options()).unwrap();
    smtp.set_tls_config(server.pki().client_config());
    smtp.ehlo(None).unwrap();
    let before = writes.load(Ordering::SeqCst);
    smtp.starttls().unwrap();
    assert!(smtp.is_tls());
    // The last write of the STARTTLS exchange held the EHLO's record
    // behind the end of the handshake (the EHLO used to go alone).
    assert!(last_buffers.load(Ordering::SeqCst) >= 2);
    // STARTTLS, the ClientHello, then the Finished and the EHLO together
    // (with the middlebox ChangeCipherSpec before them, or alone before
    // when the ServerHello was read alone): it was one write more, the
    // EHLO alone.
    let n = writes.load(Ordering::SeqCst) - before;
    assert!(n == 3 || n == 4, "{n} writes");
    // The EHLO over TLS was answered.
    assert!(smtp.has_extn("PIPELINING"));
    smtp.sendmail(
        "a@example.org",
        &["b@example.org"],
        &b"Subject: t\r\n\r\nhi\r\n"[..],
    )
    .unwrap();
    smtp.quit().unwrap();
    let logs = server.connection_logs();
    assert!(logs[0].tls);
    assert_eq!(server.messages().len(), 1);
}
