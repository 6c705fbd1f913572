//! One large message streamed through `send_from_reader`: a reader that
//! generates it, and the run on each adapter.

use std::io::{self, Read};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{BoxError, ClientArgs, FROM, TO, options};

/// A reader that generates a message of `size` bytes (headers, then 80-byte
/// text lines, the last one cut short to end in CRLF) from one 80 KiB block,
/// never holding the message.
#[derive(Debug)]
pub struct Generator {
    block: Vec<u8>,
    header: Vec<u8>,
    sent: u64,
    size: u64,
}

impl Generator {
    /// A message of `size` bytes.
    #[must_use]
    pub fn new(size: u64) -> Generator {
        let line =
            b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tem.\r\n";
        Generator {
            block: line.repeat(1024),
            header: format!("From: <{FROM}>\r\nTo: <{TO}>\r\nSubject: stream\r\n\r\n").into_bytes(),
            sent: 0,
            size,
        }
    }

    fn fill(&mut self, buf: &mut [u8]) -> usize {
        let left = self.size - self.sent;
        let want = (buf.len() as u64).min(left) as usize;
        let mut n = 0;
        while n < want {
            let pos = self.sent + n as u64;
            let src = if pos < self.header.len() as u64 {
                &self.header[pos as usize..]
            } else {
                let off = (pos - self.header.len() as u64) % self.block.len() as u64;
                &self.block[off as usize..]
            };
            let k = src.len().min(want - n);
            buf[n..n + k].copy_from_slice(&src[..k]);
            n += k;
        }
        // The last line: 'x' up to a final CRLF, so that nothing is added.
        let header = self.header.len() as u64;
        let line = 80;
        if self.size >= header + 2 {
            let tail = header + (self.size - 2 - header) / line * line;
            let from = tail.saturating_sub(self.sent);
            if from < n as u64 {
                for (i, b) in buf[from as usize..n].iter_mut().enumerate() {
                    *b = match self.size - (self.sent + from + i as u64) {
                        2 => b'\r',
                        1 => b'\n',
                        _ => b'x',
                    };
                }
            }
        }
        self.sent += n as u64;
        n
    }
}

impl Read for Generator {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.fill(buf))
    }
}

impl tokio::io::AsyncRead for Generator {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let n = this.fill(buf.initialize_unfilled());
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl futures_lite::AsyncRead for Generator {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(self.get_mut().fill(buf)))
    }
}

fn envelope() -> Result<smtp_blocking::Envelope, BoxError> {
    Ok(smtp_blocking::Envelope::parse(FROM, &[TO])?)
}

pub(super) fn stream_blocking(args: &ClientArgs) -> Result<(u64, u64), BoxError> {
    let mut c = smtp_blocking::SmtpClient::connect(&args.addr, options(args))?;
    let mut g = Generator::new(args.size);
    c.send_from_reader(&envelope()?, &mut g)?;
    c.quit()?;
    Ok((1, args.size))
}

/// One message of `args.size` bytes from a [`Generator`] through
/// `send_from_reader` on the async runtime `R` (Tokio or async-std).
pub(super) async fn stream_async<R>(args: &ClientArgs) -> Result<(u64, u64), BoxError>
where
    R: smtp_async::Runtime + smtp_async::ReadBody<Generator>,
{
    let mut c = smtp_async::SmtpClient::<R>::connect(&args.addr, options(args)).await?;
    let mut g = Generator::new(args.size);
    c.send_from_reader(&envelope()?, &mut g).await?;
    c.quit().await?;
    Ok((1, args.size))
}
