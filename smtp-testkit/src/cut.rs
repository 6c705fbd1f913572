//! A write budget for a transport under test: it accepts what a client
//! writes up to a point near the end of the first message (its final dot
//! line), then no more, so a test can fail a write part of the way through
//! the end of the message, or just after it. Wrap any stream with it: ask
//! [`WriteCut::allowed`] how much of a write to pass on, pass that much to
//! the real stream, then [`WriteCut::commit`] what it took; fail the write
//! (or never finish it) when nothing is allowed.

/// The end of a message sent with DATA: the line ending before the dot, the
/// dot, its line ending.
const END: &[u8] = b"\r\n.\r\n";

/// How much of the client's stream gets through (see the module docs).
#[derive(Debug, Clone)]
pub struct WriteCut {
    /// Bytes short of the end of the final dot line where writes stop.
    short: usize,
    /// What got through so far.
    accepted: Vec<u8>,
    /// Where the writes stop, once the end was seen.
    stop: Option<usize>,
}

impl WriteCut {
    /// Writes stop `short` bytes before the last byte of the first final dot
    /// line (`short` 1: everything but its last byte gets through).
    #[must_use]
    pub fn before_end_of_message(short: usize) -> WriteCut {
        WriteCut {
            short,
            accepted: Vec::new(),
            stop: None,
        }
    }

    /// Writes stop right after the first final dot line: the end of the
    /// message gets through, nothing after it (a QUIT pipelined behind it).
    #[must_use]
    pub fn after_end_of_message() -> WriteCut {
        WriteCut::before_end_of_message(0)
    }

    /// How many bytes of `buf`, written next, may get through; 0 when the
    /// write must fail.
    #[must_use]
    pub fn allowed(&self, buf: &[u8]) -> usize {
        let stop = self.stop.or_else(|| {
            let mut seen = self.accepted.clone();
            seen.extend_from_slice(buf);
            seen.windows(END.len())
                .position(|w| w == END)
                .map(|p| (p + END.len()).saturating_sub(self.short))
        });
        match stop {
            Some(stop) => stop.saturating_sub(self.accepted.len()).min(buf.len()),
            None => buf.len(),
        }
    }

    /// Records that the first `n` bytes of `buf` got through.
    pub fn commit(&mut self, buf: &[u8], n: usize) {
        self.accepted
            .extend_from_slice(buf.get(..n).unwrap_or_default());
        if self.stop.is_none() {
            self.stop = self
                .accepted
                .windows(END.len())
                .position(|w| w == END)
                .map(|p| (p + END.len()).saturating_sub(self.short));
        }
    }

    /// Everything that got through.
    #[must_use]
    pub fn accepted(&self) -> &[u8] {
        &self.accepted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_short_of_the_end_across_writes() {
        let mut c = WriteCut::before_end_of_message(1);
        let a = b"DATA\r\n";
        assert_eq!(c.allowed(a), a.len());
        c.commit(a, a.len());
        let b = b"hi\r\n.\r\nQUIT\r\n";
        assert_eq!(c.allowed(b), 6, "all of the dot line but its LF");
        c.commit(b, 6);
        assert_eq!(c.allowed(b"\nQUIT\r\n"), 0);
        let mut after = WriteCut::after_end_of_message();
        assert_eq!(after.allowed(b), 7);
        after.commit(b, 7);
        assert_eq!(after.allowed(b"QUIT\r\n"), 0);
        assert_eq!(after.accepted(), b"hi\r\n.\r\n");
    }
}
