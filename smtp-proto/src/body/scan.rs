//! The scan under the encoder and `message_size`: how far a chunk is plain
//! text (no bare CR or LF, no line starting with a dot to stuff), checked a
//! block at a time and, where lines are short, copied by the same loop.

/// Bytes checked at once by the block check ([`block_is_plain`]).
pub(super) const BLOCK: usize = 256;

/// How much [`plain_until`] covers where lines are short and blocks fail before
/// it returns (a little more: it finishes the line it is in), so that the caller
/// copies the stretch while it is still in the L1 cache. Blocks that pass are
/// copied as they are checked.
pub(super) const PAUSE: usize = 1024;

/// How much `memchr2` looks at in one call while lines are long, and how much
/// [`plain_until`] covers then before it returns (larger copies: measured faster
/// out of cache than [`PAUSE`] there).
pub(super) const WINDOW: usize = 4096;

/// A line shorter than this (the next CR or LF closer than this) makes the scan
/// use the block check, which costs less than a `memchr2` call per line.
pub(super) const SHORT_LINE: usize = 256;

/// How long the block check is used after a short line before `memchr2` is tried
/// again (the bytes it covers in one go).
pub(super) const DENSE_SPAN: usize = 16 * 1024;

/// The state of one scan through a chunk: which of the two ways of looking for
/// line endings pays off here.
#[derive(Debug, Default)]
pub(super) struct Scan {
    /// Lines are short up to this offset: the block check is used before it,
    /// `memchr2` after it.
    pub(super) dense_until: usize,
    /// The block check is skipped until this offset: after a block fails it, its
    /// lines are looked at one by one anyway.
    pub(super) slow_until: usize,
    /// How far the block check is skipped after the next failure: one block,
    /// doubled at each failure in a row (text with bare LF endings fails every
    /// block), back to one block after a success.
    pub(super) backoff: usize,
}

/// The end of the stretch of `chunk` that starts at `start` and goes out unchanged
/// (every CR in it followed by LF, every LF preceded by CR, and with `STUFF` no
/// dot after an LF); `sink` may have copied part of the stretch already (a
/// [`Emit`] sink's `run` says how much). The byte there is a bare CR, a CR at the end of the chunk, a
/// bare LF, a dot after CRLF (with `STUFF`), or a byte after a pause (at least
/// [`PAUSE`] or [`WINDOW`] bytes were covered; never between CR and LF); or the
/// end of the chunk. A dot at `start` itself is the caller's to look at, and `chunk[start]`
/// must not be the LF of a CRLF whose CR came before it.
///
/// Two ways of finding the line endings, chosen by how far apart they are: where
/// lines are long, `memchr2` (run-time dispatched SIMD, AVX2 where the CPU has
/// it) jumps from one CR or LF to the next, [`WINDOW`] bytes at most at a time;
/// where they are short, a call per line costs more than looking at every byte,
/// so blocks of [`BLOCK`] bytes are checked (and copied, in the same pass) by
/// [`Sink::blocks`], which compiles to SIMD, and `memchr2` only finds the line
/// endings in a block that fails the check.
pub(super) fn plain_until<const STUFF: bool, S: Sink>(
    chunk: &[u8],
    start: usize,
    scan: &mut Scan,
    sink: &mut S,
) -> usize {
    let mut i = start;
    loop {
        let Some(rest) = chunk.get(i..).filter(|r| !r.is_empty()) else {
            return chunk.len();
        };
        let dense = i < scan.dense_until;
        if i - start >= if dense { PAUSE } else { WINDOW } {
            return i;
        }
        // `rest[0]` is never the LF of a CRLF whose CR came before it, so an LF
        // there is bare, and the block check would miss it.
        if dense && i >= scan.slow_until && rest.first() != Some(&b'\n') {
            let (j, stopped) = sink.blocks::<STUFF>(chunk, i, scan.dense_until);
            if j > i {
                scan.backoff = BLOCK;
                i = j;
            }
            match stopped {
                Stop::Limit => continue,
                Stop::Short => {}
                Stop::Fail => {
                    scan.backoff = scan.backoff.clamp(BLOCK, DENSE_SPAN);
                    scan.slow_until = i + scan.backoff;
                    scan.backoff *= 2;
                }
            }
        }
        let Some(rest) = chunk.get(i..).filter(|r| !r.is_empty()) else {
            return chunk.len();
        };
        let window = if dense {
            rest
        } else {
            rest.get(..WINDOW).unwrap_or(rest)
        };
        let Some(p) = memchr::memchr2(b'\r', b'\n', window) else {
            // No CR or LF in the window.
            i += window.len();
            continue;
        };
        if !dense && p < SHORT_LINE {
            scan.dense_until = i + p + DENSE_SPAN;
        }
        let j = i + p;
        if chunk.get(j) == Some(&b'\r') && chunk.get(j + 1) == Some(&b'\n') {
            // A well-formed CRLF: the stretch goes on after it, unless a dot
            // starts the next line.
            i = j + 2;
            if STUFF && chunk.get(i) == Some(&b'.') {
                return i;
            }
            continue;
        }
        return j;
    }
}

/// Whether `window[..BLOCK]` can be copied unchanged given that `window[0]` is not
/// a bare LF: every CR is followed by LF, every LF follows a CR, and (with `STUFF`)
/// no dot follows an LF. `window[BLOCK]` and `window[BLOCK + 1]` are looked at, not
/// covered: a dot there after an LF makes the block fail, which only sends it the
/// slow way. Written as a branch-free reduction over adjacent bytes so that it
/// compiles to SIMD; the dot check reuses the LF comparison of the pair check,
/// three comparisons per byte in all.
pub(super) fn block_is_plain<const STUFF: bool>(window: &[u8; BLOCK + 2]) -> bool {
    let (Some(a), Some(b), Some(c)) = (
        window.first_chunk::<BLOCK>(),
        window.get(1..).and_then(<[u8]>::first_chunk::<BLOCK>),
        window.last_chunk::<BLOCK>(),
    ) else {
        return false;
    };
    let mut bad = 0u8;
    for ((&a, &b), &c) in a.iter().zip(b.iter()).zip(c.iter()) {
        let lf = u8::from(b == b'\n');
        bad |= u8::from(a == b'\r') ^ lf;
        // Known at compile time: BDAT's check (no dot to look for) does two
        // comparisons per byte.
        if STUFF {
            bad |= lf & u8::from(c == b'.');
        }
    }
    bad == 0
}

/// Why [`Sink::blocks`] stopped.
pub(super) enum Stop {
    /// At the limit it was given.
    Limit,
    /// Fewer than `BLOCK + 2` bytes are left.
    Short,
    /// The block there is not plain.
    Fail,
}

/// Where the bytes a scan passes over go.
pub(super) trait Sink {
    /// Goes through `chunk` from `at` one plain block (see [`block_is_plain`])
    /// after the other, up to `limit` (or a little past it); a sink that copies
    /// copies them. Returns where it stopped, and why. `chunk[at]` must not be
    /// the LF of a CRLF.
    fn blocks<const STUFF: bool>(&mut self, chunk: &[u8], at: usize, limit: usize)
    -> (usize, Stop);
}

/// Nothing is copied (`message_size`).
pub(super) struct Count;

impl Sink for Count {
    fn blocks<const STUFF: bool>(
        &mut self,
        chunk: &[u8],
        mut i: usize,
        limit: usize,
    ) -> (usize, Stop) {
        while i < limit {
            let Some(window) = chunk
                .get(i..)
                .and_then(<[u8]>::first_chunk::<{ BLOCK + 2 }>)
            else {
                return (i, Stop::Short);
            };
            if !block_is_plain::<STUFF>(window) {
                return (i, Stop::Fail);
            }
            // A CR at the block's end is followed by LF (checked), which joins it.
            i += BLOCK + usize::from(window.get(BLOCK - 1) == Some(&b'\r'));
        }
        (i, Stop::Limit)
    }
}

/// The encoder's output, and how much of the chunk is in it (the bytes a scan
/// passes over are copied by the scan where lines are short, by the caller
/// elsewhere).
pub(super) struct Emit<'a> {
    pub(super) out: &'a mut Vec<u8>,
    /// Start of the bytes of the chunk not yet copied to `out`.
    pub(super) run: usize,
}

impl Emit<'_> {
    /// Copies the chunk's bytes up to `to`.
    pub(super) fn flush(&mut self, chunk: &[u8], to: usize) {
        copy(chunk.get(self.run..to).unwrap_or_default(), self.out);
        self.run = to;
    }
}

impl Sink for Emit<'_> {
    fn blocks<const STUFF: bool>(
        &mut self,
        chunk: &[u8],
        mut i: usize,
        limit: usize,
    ) -> (usize, Stop) {
        self.flush(chunk, i);
        while i < limit {
            let Some(window) = chunk
                .get(i..)
                .and_then(<[u8]>::first_chunk::<{ BLOCK + 2 }>)
            else {
                return (i, Stop::Short);
            };
            if !copy_if_plain::<STUFF>(window, self.out) {
                return (i, Stop::Fail);
            }
            i += BLOCK;
            if window.get(BLOCK - 1) == Some(&b'\r') {
                // Followed by LF (checked), which joins it.
                self.out.push(b'\n');
                i += 1;
            }
            self.run = i;
        }
        (i, Stop::Limit)
    }
}

/// The longest piece handed to `memcpy` at once when the output is not at the
/// input's offset modulo 64, as it is after any byte the encoder adds (a stuffed
/// dot, the CR of a bare LF, a BDAT command line). glibc's `memcpy` (2.36) moves
/// a piece of more than about 2 KiB with `rep movsb`, which on an AMD Zen 4 CPU
/// then ran at 3.2 GiB/s instead of 41 in cache (pieces of 4 KiB to 64 KiB);
/// pieces of 1 KiB went at 40-42 GiB/s at every offset. When the offsets agree,
/// one call does it all (`rep movsb` is the faster way then, out of cache).
pub(super) const COPY_MAX: usize = 1024;

/// Appends `bytes` to `out`, in pieces of at most [`COPY_MAX`] bytes when their
/// place in `out` is not at their offset modulo 64 (see there).
pub(super) fn copy(bytes: &[u8], out: &mut Vec<u8>) {
    out.reserve(bytes.len());
    let to = out.as_ptr().addr().wrapping_add(out.len());
    if bytes.len() <= COPY_MAX || to.wrapping_sub(bytes.as_ptr().addr()) % 64 == 0 {
        out.extend_from_slice(bytes);
    } else {
        for piece in bytes.chunks(COPY_MAX) {
            out.extend_from_slice(piece);
        }
    }
}

/// [`block_is_plain`] and a copy of the block to `out` in one pass; `out` is left
/// as it was when the block is not plain.
pub(super) fn copy_if_plain<const STUFF: bool>(
    window: &[u8; BLOCK + 2],
    out: &mut Vec<u8>,
) -> bool {
    let (Some(a), Some(b), Some(c)) = (
        window.first_chunk::<BLOCK>(),
        window.get(1..).and_then(<[u8]>::first_chunk::<BLOCK>),
        window.last_chunk::<BLOCK>(),
    ) else {
        return false;
    };
    let start = out.len();
    let mut bad = 0u8;
    out.extend(a.iter().zip(b.iter()).zip(c.iter()).map(|((&a, &b), &c)| {
        let lf = u8::from(b == b'\n');
        bad |= u8::from(a == b'\r') ^ lf;
        if STUFF {
            bad |= lf & u8::from(c == b'.');
        }
        a
    }));
    if bad != 0 {
        out.truncate(start);
    }
    bad == 0
}
