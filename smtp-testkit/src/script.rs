//! Scripted connections: exact bytes for servers that misbehave on purpose.

use std::io;
use std::time::Duration;

use crate::conn::{Conn, MAX_RECEIVED};
use crate::record::Mismatch;

/// The longest line [`Step::ExpectLine`] reads.
const MAX_SCRIPT_LINE: usize = 1024 * 1024;
/// How long a finished script waits for the client to close.
const END_WAIT: Duration = Duration::from_secs(10);
/// The longest a [`Step::Silence`] lasts.
pub const MAX_SILENCE: Duration = Duration::from_secs(30);

/// One step of a [`Script`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Send these exact bytes.
    Send(Vec<u8>),
    /// Send these bytes one at a time, pausing after each.
    SendSlowly(Vec<u8>, Duration),
    /// Read exactly as many bytes as given and compare; a difference is
    /// recorded as a [`Mismatch`] and the script goes on.
    Expect(Vec<u8>),
    /// Read one line (up to LF) and record it without its line ending.
    ExpectLine,
    /// Read until these bytes have arrived (for instance the `\r\n.\r\n` that
    /// ends DATA).
    ReadUntil(Vec<u8>),
    /// Run the server side of the TLS handshake now. Plaintext the client sent
    /// before is dropped.
    StartTls,
    /// Pause.
    Sleep(Duration),
    /// Send these bytes again and again until the client closes or stops
    /// reading (up to 64 MiB in all).
    Flood(Vec<u8>),
    /// Send these bytes this many times (up to 64 MiB in all).
    Repeat(Vec<u8>, usize),
    /// Read and never answer until the client closes or this long has passed
    /// (at most [`MAX_SILENCE`]); then go on with the next step.
    Silence(Duration),
    /// Close the connection now (the rest of the script is skipped).
    Close,
    /// Drop the connection now with a TCP reset, without reading what the
    /// client sent (the rest of the script is skipped).
    Reset,
}

/// The steps played on every connection of a scripted server.
///
/// When the last step is done, the server keeps reading (and ignoring) the
/// client's input until the client closes, at most 10 s, unless the script
/// ended with [`Step::Close`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script(pub Vec<Step>);

impl Script {
    /// A script made of these steps.
    #[must_use]
    pub fn new(steps: Vec<Step>) -> Script {
        Script(steps)
    }

    /// Appends a step.
    #[must_use]
    pub fn then(mut self, step: Step) -> Script {
        self.0.push(step);
        self
    }

    /// Sends `line` with CRLF appended. Put `\r\n` inside for several lines.
    #[must_use]
    pub fn send(self, line: &str) -> Script {
        self.then(Step::Send(format!("{line}\r\n").into_bytes()))
    }

    /// Sends exact bytes.
    #[must_use]
    pub fn send_bytes(self, bytes: &[u8]) -> Script {
        self.then(Step::Send(bytes.to_vec()))
    }

    /// Sends exact bytes one at a time, pausing `pause` after each.
    #[must_use]
    pub fn send_slowly(self, bytes: &[u8], pause: Duration) -> Script {
        self.then(Step::SendSlowly(bytes.to_vec(), pause))
    }

    /// Expects exactly these bytes.
    #[must_use]
    pub fn expect(self, bytes: &[u8]) -> Script {
        self.then(Step::Expect(bytes.to_vec()))
    }

    /// Reads and records one line.
    #[must_use]
    pub fn expect_line(self) -> Script {
        self.then(Step::ExpectLine)
    }

    /// Reads until `end` has arrived.
    #[must_use]
    pub fn read_until(self, end: &[u8]) -> Script {
        self.then(Step::ReadUntil(end.to_vec()))
    }

    /// Runs the TLS handshake.
    #[must_use]
    pub fn start_tls(self) -> Script {
        self.then(Step::StartTls)
    }

    /// Pauses.
    #[must_use]
    pub fn sleep(self, pause: Duration) -> Script {
        self.then(Step::Sleep(pause))
    }

    /// Sends `bytes` until the client gives up.
    #[must_use]
    pub fn flood(self, bytes: &[u8]) -> Script {
        self.then(Step::Flood(bytes.to_vec()))
    }

    /// Reads without answering for up to `limit`.
    #[must_use]
    pub fn silence(self, limit: Duration) -> Script {
        self.then(Step::Silence(limit))
    }

    /// Closes the connection.
    #[must_use]
    pub fn close(self) -> Script {
        self.then(Step::Close)
    }

    /// Drops the connection with a TCP reset.
    #[must_use]
    pub fn reset(self) -> Script {
        self.then(Step::Reset)
    }
}

/// Sends `unit` `times` times (`None`: until the peer fails or the cap), in
/// large writes.
fn repeat(conn: &mut Conn, unit: &[u8], times: Option<usize>) -> io::Result<()> {
    if unit.is_empty() {
        return Ok(());
    }
    let per_write = (16 * 1024 / unit.len()).max(1);
    let cap = MAX_RECEIVED / unit.len();
    let mut left = times.unwrap_or(cap).min(cap);
    let block = unit.repeat(per_write.min(left.max(1)));
    while left > 0 {
        let n = per_write.min(left);
        let bytes = block.get(..n * unit.len()).unwrap_or_default();
        conn.send_now(bytes)?;
        left -= n;
    }
    Ok(())
}

/// Plays `steps`; ends early when the client goes away.
pub(crate) fn play(mut conn: Conn, steps: &[Step]) {
    let mut closed = false;
    for (i, step) in steps.iter().enumerate() {
        match run_step(&mut conn, i, step) {
            Ok(true) => {}
            Ok(false) | Err(_) => {
                closed = true;
                break;
            }
        }
        if *step == Step::Close {
            conn.close();
            return;
        }
        if *step == Step::Reset {
            conn.reset();
            return;
        }
    }
    if closed {
        conn.close();
    } else {
        conn.wait_for_client_close(END_WAIT);
    }
}

/// One step; `Ok(false)` when the client closed.
fn run_step(conn: &mut Conn, index: usize, step: &Step) -> io::Result<bool> {
    match step {
        Step::Send(bytes) => conn.send_now(bytes)?,
        Step::SendSlowly(bytes, pause) => {
            for b in bytes {
                conn.send_now(std::slice::from_ref(b))?;
                std::thread::sleep(*pause);
            }
        }
        Step::Expect(expected) => {
            let (got, open) = match conn.read_exact(expected.len())? {
                Ok(got) => (got, true),
                Err(partial) => (partial, false),
            };
            if got != *expected {
                let connection = conn.index();
                let m = Mismatch {
                    connection,
                    step: index,
                    expected: expected.clone(),
                    got,
                };
                conn.record_mismatch(m);
            }
            return Ok(open);
        }
        Step::ExpectLine => {
            let Some(line) = conn.read_line(MAX_SCRIPT_LINE)? else {
                return Ok(false);
            };
            conn.note_expected_line(String::from_utf8_lossy(&line).into_owned());
        }
        Step::ReadUntil(end) => return conn.read_until(end),
        Step::StartTls => conn.start_tls()?,
        Step::Sleep(pause) => {
            conn.flush()?;
            std::thread::sleep(*pause);
        }
        Step::Flood(unit) => {
            // The client ending the flood is the expected outcome.
            let _ = repeat(conn, unit, None);
            return Ok(false);
        }
        Step::Repeat(unit, times) => repeat(conn, unit, Some(*times))?,
        Step::Silence(limit) => {
            if conn.drain((*limit).min(MAX_SILENCE)) {
                return Ok(false);
            }
        }
        Step::Close | Step::Reset => {}
    }
    Ok(true)
}
