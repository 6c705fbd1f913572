//! smtplib's debug output (`set_debuglevel`): transcript lines to `tracing` and
//! to an optional writer, the same on every adapter.

use std::io::Write;

use smtp_sansio::{Escaped, Trace};

/// Where transcript lines go: level 0 nowhere, 1 every line, 2 every line with
/// a timestamp (seconds and microseconds since the Unix epoch, on the writer).
/// Lines come from the core with AUTH payloads already redacted and the
/// server's control characters escaped (`\x1b` for ESC, see
/// [`smtp_sansio::Escaped`]); a line is escaped here once more (which
/// changes nothing in one that was), so that no line reaches the writer or
/// `tracing` with a byte a terminal acts on.
#[derive(Default)]
pub struct Transcript {
    level: u8,
    writer: Option<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for Transcript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcript")
            .field("level", &self.level)
            .field("writer", &self.writer.is_some())
            .finish()
    }
}

impl Transcript {
    /// A transcript at `level`, to `tracing` only.
    #[must_use]
    pub fn new(level: u8) -> Transcript {
        Transcript {
            level,
            writer: None,
        }
    }

    /// The debug level.
    #[must_use]
    pub fn level(&self) -> u8 {
        self.level
    }

    /// Changes the debug level.
    pub fn set_level(&mut self, level: u8) {
        self.level = level;
    }

    /// Also writes every line to `writer`.
    pub fn set_writer(&mut self, writer: Box<dyn Write + Send>) {
        self.writer = Some(writer);
    }

    /// Takes the writer out (lines then go to `tracing` only), for a caller
    /// that hands it back later or shares it (a pool restores each
    /// session's own transcript when a borrower returns it).
    pub fn take_writer(&mut self) -> Option<Box<dyn Write + Send>> {
        self.writer.take()
    }

    /// Records one line (nothing at level 0).
    pub fn line(&mut self, t: &Trace) {
        if self.level == 0 {
            return;
        }
        let line = match t {
            Trace::Sent(s) => format!("C: {}", Escaped(s)),
            Trace::Received(s) => format!("S: {}", Escaped(s)),
        };
        tracing::debug!(target: "smtp", "{line}");
        if let Some(w) = self.writer.as_mut() {
            // A failing transcript writer must not fail the session.
            let _ = if self.level >= 2 {
                let t = std::time::SystemTime::UNIX_EPOCH
                    .elapsed()
                    .unwrap_or_default();
                writeln!(w, "{}.{:06} {line}", t.as_secs(), t.subsec_micros())
            } else {
                writeln!(w, "{line}")
            };
        }
    }
}
