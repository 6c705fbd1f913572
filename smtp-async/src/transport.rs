//! The byte stream under a session, plain or inside rustls (driven by hand,
//! as the blocking transport does, so that the end of the handshake leaves
//! with the first write after it).

use std::io;
use std::sync::Arc;

use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use smtp_adapter::Error;
use smtp_adapter::tls::ClientConfig;

use crate::runtime::BoxIo;

/// The session's stream.
pub(crate) enum Transport {
    Plain(BoxIo),
    #[cfg(feature = "tls")]
    Tls(Box<tls::TlsIo>),
    /// During the handshake, or closed.
    Gone,
}

impl Transport {
    pub(crate) async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(p) => p.read(buf).await,
            #[cfg(feature = "tls")]
            Transport::Tls(t) => t.read(buf).await,
            Transport::Gone => Ok(0),
        }
    }

    /// Writes all of `data` and flushes, counting in `written` the bytes the
    /// stream accepted, so that a failure (an error, or the future dropped
    /// at the write deadline) says how far it got. Under TLS a byte counts
    /// once rustls took it: a failure to flush it after counts it as
    /// written, which never claims less went out than did.
    pub(crate) async fn write_counted(
        &mut self,
        data: &[u8],
        written: &mut usize,
    ) -> io::Result<()> {
        match self {
            Transport::Plain(p) => {
                write_counted(p, data, written).await?;
                p.flush().await
            }
            #[cfg(feature = "tls")]
            Transport::Tls(t) => t.write_counted(data, written).await,
            Transport::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Without the `tls` feature there is no handshake to run.
    #[cfg(not(feature = "tls"))]
    #[allow(clippy::unused_async)]
    pub(crate) async fn upgrade(&mut self, _: Arc<ClientConfig>, _: &str) -> Result<bool, Error> {
        Err(Error::TlsUnavailable(
            "smtp-async was built without its tls feature",
        ))
    }

    /// Runs the TLS client handshake over the plain stream; whether it resumed
    /// an earlier session (an abbreviated handshake).
    #[cfg(feature = "tls")]
    pub(crate) async fn upgrade(
        &mut self,
        config: Arc<ClientConfig>,
        server: &str,
    ) -> Result<bool, Error> {
        let name = smtp_adapter::tls::server_name(server)?;
        let Transport::Plain(plain) = std::mem::replace(self, Transport::Gone) else {
            return Err(smtp_sansio::UsageError::WrongState("TLS is already active").into());
        };
        let conn = rustls::ClientConnection::new(config, name)?;
        let mut tls = Box::new(tls::TlsIo::new(conn, plain));
        tls.handshake().await.map_err(Error::from_tls_io)?;
        let resumed = tls.resumed();
        *self = Transport::Tls(tls);
        Ok(resumed)
    }

    pub(crate) async fn close(&mut self) {
        // Closing is best effort: the session is over either way.
        match self {
            #[cfg(feature = "tls")]
            Transport::Tls(t) => t.close().await,
            Transport::Plain(p) => {
                let _ = p.close().await;
            }
            Transport::Gone => {}
        }
        *self = Transport::Gone;
    }
}

/// `write_all`, adding each accepted byte to `written` as it goes (so the
/// count holds when the future is dropped half-way).
async fn write_counted<W: futures_lite::io::AsyncWrite + Unpin + ?Sized>(
    w: &mut W,
    data: &[u8],
    written: &mut usize,
) -> io::Result<()> {
    while let Some(rest) = data.get(*written..).filter(|r| !r.is_empty()) {
        match w.write(rest).await {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(feature = "tls")]
mod tls {
    //! A rustls client connection over an async stream, driven by hand
    //! (`read_tls`, `process_new_packets`, `write_tls`) instead of by
    //! `futures-rustls`, whose handshake flushes the client's last flight
    //! (under TLS 1.3 its Finished, which the server does not answer) in a
    //! write of its own: here it stays in rustls until the next write (the
    //! EHLO after STARTTLS, which then leaves in the same socket write) or
    //! the next read (the greeting of implicit TLS).

    use std::future::poll_fn;
    use std::io::{self, Read, Write};
    use std::pin::Pin;
    use std::task::{Context, Poll, ready};

    use rustls::ClientConnection;

    use crate::runtime::BoxIo;

    /// The most bytes of several records copied into one write (see
    /// [`Sync::write_vectored`]).
    const GATHER: usize = 16 * 1024;

    /// TLS over a stream.
    pub(crate) struct TlsIo {
        conn: ClientConnection,
        io: BoxIo,
        /// Where small records are gathered into one write.
        scratch: Vec<u8>,
    }

    /// The stream as `std::io` sees it within one poll: `Pending` is
    /// `WouldBlock`.
    struct Sync<'a, 'b> {
        io: &'a mut BoxIo,
        cx: &'a mut Context<'b>,
        scratch: &'a mut Vec<u8>,
    }

    fn pending<T>(p: Poll<io::Result<T>>) -> io::Result<T> {
        match p {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    impl Read for Sync<'_, '_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            pending(Pin::new(&mut **self.io).poll_read(self.cx, buf))
        }
    }

    impl Write for Sync<'_, '_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            pending(Pin::new(&mut **self.io).poll_write(self.cx, buf))
        }

        fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
            // Every record rustls holds in one write: a stream whose
            // vectored write takes only the first buffer (futures-io's
            // default, tokio-util's compat layer around a caller's stream)
            // would write the end of the handshake and the EHLO behind it
            // apart, so small records are copied together (bulk data goes
            // as it is: the runtimes' sockets write it with one `writev`).
            let total: usize = bufs.iter().map(|b| b.len()).sum();
            if bufs.len() > 1 && total <= GATHER {
                self.scratch.clear();
                for b in bufs {
                    self.scratch.extend_from_slice(b);
                }
                return pending(Pin::new(&mut **self.io).poll_write(self.cx, self.scratch));
            }
            pending(Pin::new(&mut **self.io).poll_write_vectored(self.cx, bufs))
        }

        fn flush(&mut self) -> io::Result<()> {
            pending(Pin::new(&mut **self.io).poll_flush(self.cx))
        }
    }

    /// `Poll` from a `std::io` result: `WouldBlock` is `Pending` (the stream
    /// registered the waker).
    fn ready<T>(r: io::Result<T>) -> Poll<io::Result<T>> {
        match r {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            r => Poll::Ready(r),
        }
    }

    impl TlsIo {
        pub(crate) fn new(conn: ClientConnection, io: BoxIo) -> TlsIo {
            TlsIo {
                conn,
                io,
                scratch: Vec::new(),
            }
        }

        /// Whether the handshake resumed an earlier session.
        pub(crate) fn resumed(&self) -> bool {
            self.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
        }

        /// Writes everything rustls holds for the server, and flushes.
        fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            while self.conn.wants_write() {
                let mut io = Sync {
                    io: &mut self.io,
                    cx,
                    scratch: &mut self.scratch,
                };
                if ready!(ready(self.conn.write_tls(&mut io)))? == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
            }
            Pin::new(&mut *self.io).poll_flush(cx)
        }

        /// Reads records from the stream and takes them in; `Ok(0)` at its
        /// end. A TLS failure is sent to the server as its alert (best
        /// effort) and returned as `InvalidData` wrapping the rustls error
        /// (what [`Error::from_tls_io`](smtp_adapter::Error::from_tls_io)
        /// unwraps).
        fn poll_receive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
            let mut io = Sync {
                io: &mut self.io,
                cx,
                scratch: &mut self.scratch,
            };
            let n = ready!(ready(self.conn.read_tls(&mut io)))?;
            if let Err(e) = self.conn.process_new_packets() {
                let _ = self.poll_send(cx);
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
            }
            Poll::Ready(Ok(n))
        }

        /// Runs the handshake (the caller bounds it in time); the client's
        /// last flight stays in rustls (see the module's docs).
        pub(crate) async fn handshake(&mut self) -> io::Result<()> {
            poll_fn(|cx| {
                loop {
                    if !self.conn.is_handshaking() {
                        return Poll::Ready(Ok(()));
                    }
                    if self.conn.wants_write() {
                        ready!(self.poll_send(cx))?;
                        continue;
                    }
                    if ready!(self.poll_receive(cx))? == 0 {
                        let eof = "the server closed the connection during the TLS handshake";
                        return Poll::Ready(Err(io::Error::new(io::ErrorKind::UnexpectedEof, eof)));
                    }
                }
            })
            .await
        }

        /// Reads plaintext; `Ok(0)` at the end of the stream (with or
        /// without close_notify: a peer that closes without it has still
        /// closed).
        pub(crate) async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            poll_fn(|cx| {
                loop {
                    match self.conn.reader().read(buf) {
                        Ok(n) => return Poll::Ready(Ok(n)),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                            return Poll::Ready(Ok(0));
                        }
                        Err(e) => return Poll::Ready(Err(e)),
                    }
                    // The end of the handshake, or the answer to a key
                    // update: the server may wait for it.
                    if self.conn.wants_write() {
                        ready!(self.poll_send(cx))?;
                    }
                    // At the end of the stream rustls' reader says so next
                    // round.
                    ready!(self.poll_receive(cx))?;
                }
            })
            .await
        }

        /// Writes all of `data` and flushes, adding to `written` each byte
        /// rustls took (so the count holds when the future is dropped
        /// half-way).
        pub(crate) async fn write_counted(
            &mut self,
            data: &[u8],
            written: &mut usize,
        ) -> io::Result<()> {
            while let Some(rest) = data.get(*written..).filter(|r| !r.is_empty()) {
                let n = self.conn.writer().write(rest)?;
                if n == 0 && !self.conn.wants_write() {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                *written += n;
                if *written < data.len() {
                    // rustls' buffer is full: send it before going on.
                    poll_fn(|cx| self.poll_send(cx)).await?;
                }
            }
            poll_fn(|cx| self.poll_send(cx)).await
        }

        /// Sends close_notify and closes the stream (best effort: the
        /// session is over either way).
        pub(crate) async fn close(&mut self) {
            self.conn.send_close_notify();
            let _ = poll_fn(|cx| self.poll_send(cx)).await;
            let _ = poll_fn(|cx| Pin::new(&mut *self.io).poll_close(cx)).await;
        }
    }
}
