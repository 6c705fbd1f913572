//! A caller's stream under a session, with the TCP socket under it when the
//! caller gave one; the stream itself is [`smtp_adapter::blocking::Transport`].

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use smtp_adapter::net::SetTimeouts;

/// A caller's stream ([`SmtpClient::from_stream`](crate::SmtpClient::from_stream)),
/// with the TCP socket under it when the caller gave one, whose timeouts then
/// bound the session's waits.
pub(crate) struct Caller<S> {
    pub(crate) stream: S,
    pub(crate) socket: Option<TcpStream>,
}

impl<S: Read> Read for Caller<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

impl<S: Write> Write for Caller<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        // TLS records in one write (rustls hands over all it holds at once).
        self.stream.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl<S> SetTimeouts for Caller<S> {
    fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) -> io::Result<()> {
        match &self.socket {
            Some(s) => s.set_timeouts(read, write),
            None => Ok(()),
        }
    }
}
