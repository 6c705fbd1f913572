//! Captures the adapters' trace lines (`C: ...`, `S: ...`, emitted through
//! `tracing` at debug level) so a case can check what the client wrote before
//! it read a reply. AUTH payloads are redacted by the core; the lines are
//! never printed.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// The captured lines, shared with the installed subscriber.
#[derive(Debug, Clone, Default)]
pub struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    /// Installs the capturing subscriber for the whole process.
    pub fn install() -> Result<Lines, String> {
        let lines = Lines::default();
        tracing::subscriber::set_global_default(Capture(lines.clone()))
            .map_err(|e| format!("cannot install the trace capture: {e}"))?;
        Ok(lines)
    }

    /// Forgets what was captured so far.
    pub fn clear(&self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// What was captured since the last [`Lines::clear`].
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

struct Capture(Lines);

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        // The transcript's events (every adapter logs them under `smtp`).
        metadata.target() == "smtp"
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut m = Message(String::new());
        event.record(&mut m);
        (self.0)
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(m.0);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}
