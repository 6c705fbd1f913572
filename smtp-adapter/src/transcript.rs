//! smtplib's debug output (`set_debuglevel`): transcript lines to `tracing` and
//! to an optional writer, the same on every adapter.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use smtp_sansio::{Escaped, Trace};

/// How much of the session's transcript is recorded (smtplib's debug level:
/// 0, 1, 2; `DebugLevel::from(1)` is [`DebugLevel::Lines`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
#[non_exhaustive]
pub enum DebugLevel {
    /// Nothing (level 0).
    #[default]
    Off,
    /// Every line sent and received (level 1).
    Lines,
    /// Every line, with a timestamp on the transcript writer (level 2).
    Timestamps,
}

impl From<u8> for DebugLevel {
    fn from(level: u8) -> DebugLevel {
        match level {
            0 => DebugLevel::Off,
            1 => DebugLevel::Lines,
            _ => DebugLevel::Timestamps,
        }
    }
}

impl From<DebugLevel> for u8 {
    fn from(level: DebugLevel) -> u8 {
        match level {
            DebugLevel::Off => 0,
            DebugLevel::Lines => 1,
            DebugLevel::Timestamps => 2,
        }
    }
}

/// Where transcript lines go: [`DebugLevel::Off`] nowhere,
/// [`DebugLevel::Lines`] every line, [`DebugLevel::Timestamps`] every line
/// with a timestamp (seconds and microseconds since the Unix epoch, on the
/// writer).
/// Lines come from the core with AUTH payloads already redacted and the
/// server's control characters escaped (`\x1b` for ESC, see
/// [`smtp_sansio::Escaped`]); a line is escaped here once more (which
/// changes nothing in one that was), so that no line reaches the writer or
/// `tracing` with a byte a terminal acts on.
#[derive(Default)]
pub struct Transcript {
    level: DebugLevel,
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
    pub fn new(level: impl Into<DebugLevel>) -> Transcript {
        Transcript {
            level: level.into(),
            writer: None,
        }
    }

    /// The debug level.
    #[must_use]
    pub fn level(&self) -> DebugLevel {
        self.level
    }

    /// Changes the debug level.
    pub fn set_level(&mut self, level: impl Into<DebugLevel>) {
        self.level = level.into();
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
        if self.level == DebugLevel::Off {
            return;
        }
        let line = match t {
            Trace::Sent(s) => format!("C: {}", Escaped(s)),
            Trace::Received(s) => format!("S: {}", Escaped(s)),
        };
        tracing::debug!(target: "smtp", "{line}");
        if let Some(w) = self.writer.as_mut() {
            // A failing transcript writer must not fail the session.
            let text = if self.level >= DebugLevel::Timestamps {
                let t = std::time::SystemTime::UNIX_EPOCH
                    .elapsed()
                    .unwrap_or_default();
                format!("{}.{:06} {line}\n", t.as_secs(), t.subsec_micros())
            } else {
                format!("{line}\n")
            };
            // One write per line, so that a shared writer keeps lines whole.
            let _ = w.write_all(text.as_bytes());
        }
    }
}

/// One writer shared by the sessions a builder connects: each line goes in
/// one `write_all` under the lock, so lines of different sessions never mix.
#[derive(Clone)]
pub(crate) struct SharedWriter(Arc<Mutex<Box<dyn Write + Send>>>);

impl std::fmt::Debug for SharedWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedWriter")
    }
}

impl SharedWriter {
    pub(crate) fn new(writer: Box<dyn Write + Send>) -> SharedWriter {
        SharedWriter(Arc::new(Mutex::new(writer)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Box<dyn Write + Send>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.lock().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.lock().write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.lock().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::DebugLevel;

    #[test]
    fn smtplib_levels_map_to_debug_levels_and_back() {
        let levels = [0u8, 1, 2, 3, 255].map(DebugLevel::from);
        assert_eq!(
            levels,
            [
                DebugLevel::Off,
                DebugLevel::Lines,
                DebugLevel::Timestamps,
                DebugLevel::Timestamps,
                DebugLevel::Timestamps
            ]
        );
        assert_eq!(levels.map(u8::from), [0, 1, 2, 2, 2]);
    }
}
