//! Where to cut: the boundaries of commands, replies and messages in a
//! recorded session, and the offsets sampled around them.

/// A small deterministic generator (xorshift64*), for the sampled offsets.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        if n == 0 {
            0
        } else {
            usize::try_from(x % n as u64).unwrap_or(0)
        }
    }
}

/// Offsets in the client's stream where a command line or a message (the
/// final dot, a BDAT chunk) ends.
pub(super) fn client_boundaries(rx: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut p = 0;
    let mut in_data = false;
    while p < rx.len() {
        let Some(eol) = find(&rx[p..], b"\r\n").map(|i| p + i + 2) else {
            break;
        };
        let line = &rx[p..eol - 2];
        if in_data {
            if line == b"." {
                in_data = false;
                out.push(eol);
            }
            p = eol;
            continue;
        }
        out.push(eol);
        let upper = line.to_ascii_uppercase();
        if upper == b"DATA" {
            in_data = true;
        } else if let Some(rest) = upper.strip_prefix(b"BDAT ") {
            let n: usize = String::from_utf8_lossy(rest)
                .split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            p = (eol + n).min(rx.len());
            out.push(p);
            continue;
        }
        p = eol;
    }
    out
}

/// Where each message's end (final dot, complete `BDAT ... LAST`) in the
/// client's stream ends.
pub(super) fn end_offsets(rx: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut p = 0;
    let mut in_data = false;
    while p < rx.len() {
        let Some(eol) = find(&rx[p..], b"\r\n").map(|i| p + i + 2) else {
            break;
        };
        let line = rx[p..eol - 2].to_ascii_uppercase();
        p = eol;
        if in_data {
            if line == b"." {
                in_data = false;
                ends.push(eol);
            }
        } else if line == b"DATA" {
            in_data = true;
        } else if let Some(rest) = line.strip_prefix(b"BDAT ") {
            let text = String::from_utf8_lossy(rest).into_owned();
            let mut words = text.split(' ');
            let n: usize = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
            let last = words.next() == Some("LAST");
            if eol + n <= rx.len() && last {
                ends.push(eol + n);
            }
            p = eol + n;
        }
    }
    ends
}

/// How many messages' ends are in the client's stream.
pub(super) fn ends_in(rx: &[u8]) -> usize {
    end_offsets(rx).len()
}

pub(super) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Offsets in the server's stream where a reply line ends.
pub(super) fn server_boundaries(tx: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut p = 0;
    while let Some(i) = find(&tx[p..], b"\r\n") {
        p += i + 2;
        out.push(p);
    }
    out
}

/// The offsets to cut at: 0, each boundary and its neighbours, the end, and
/// `random` more; and `stalls` of them spread over the stream for stalling.
pub(super) fn offsets(bounds: &[usize], total: usize, random: usize, rng: &mut Rng) -> Vec<usize> {
    let mut v = vec![0, total];
    for &b in bounds {
        v.extend([b.saturating_sub(1), b, b + 1]);
    }
    for _ in 0..random {
        v.push(rng.below(total + 1));
    }
    v.retain(|&o| o <= total);
    v.sort_unstable();
    v.dedup();
    v
}

pub(super) fn spread(v: &[usize], n: usize) -> Vec<usize> {
    if v.is_empty() || n == 0 {
        return Vec::new();
    }
    let step = (v.len() / n).max(1);
    v.iter()
        .skip(step / 2)
        .step_by(step)
        .take(n)
        .copied()
        .collect()
}
