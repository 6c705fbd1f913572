//! The answer to EHLO (RFC 5321 section 4.1.1.1) or LHLO (RFC 2033 section 4.1):
//! service extensions and their parameters. Extension names: RFC 1870 (SIZE),
//! RFC 2920 (PIPELINING), RFC 3207 (STARTTLS), RFC 4954 (AUTH), RFC 6152 (8BITMIME),
//! RFC 6531 (SMTPUTF8), RFC 3030 (CHUNKING, BINARYMIME), RFC 3461 (DSN),
//! RFC 2034 (ENHANCEDSTATUSCODES), RFC 8689 (REQUIRETLS).

use std::collections::{HashMap, HashSet};

use crate::reply::Reply;

/// Counts the steps of the parse (each keyword line, each parameter taken
/// or checked once, each lookup), for the tests that hold it to a linear
/// bound.
#[cfg(test)]
fn count(n: usize) {
    tests::OPS.with(|ops| ops.set(ops.get() + n));
}

#[cfg(not(test))]
fn count(_: usize) {}

/// The extensions a server announced, keyed case-insensitively.
///
/// The first line of the reply is the server's domain and greeting; each later
/// line is `KEYWORD [param ...]`. The old `AUTH=MECH ...` form that some servers
/// send next to `AUTH MECH ...` is merged into `AUTH`, as smtplib does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Capabilities {
    greeting: String,
    // (keyword upper-cased, parameters) in the order the server sent them.
    extensions: Vec<(String, Vec<String>)>,
}

impl Capabilities {
    /// Parses the reply to EHLO or LHLO. Lines that are not a valid keyword are
    /// skipped, never an error.
    ///
    /// The cost is linear in the size of the reply, whatever it holds: a
    /// keyword announced again is found through an index, and its merged
    /// parameters are checked against a set, not against each other (a
    /// hostile 64 KiB reply of one keyword with 16,000 new parameters would
    /// otherwise cost 10^8 comparisons).
    #[must_use]
    pub fn parse(reply: &Reply) -> Capabilities {
        let mut caps = Capabilities {
            greeting: reply.first_line().to_owned(),
            extensions: Vec::new(),
        };
        // Where each keyword is in `extensions`.
        let mut index: HashMap<String, usize> = HashMap::new();
        // For a keyword announced more than once: its parameters, lower case.
        let mut merged: HashMap<usize, HashSet<String>> = HashMap::new();
        for line in reply.lines().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(first) = words.next() else {
                continue;
            };
            // The old "AUTH=PLAIN LOGIN" form (RFC 4954 section 3 notes it).
            let (keyword, inline) = match first.split_once('=') {
                Some((k, v)) if k.eq_ignore_ascii_case("AUTH") => (k, Some(v)),
                Some(_) => continue,
                None => (first, None),
            };
            let valid = keyword
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric())
                && keyword
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !valid || keyword.len() > 64 {
                continue;
            }
            let keyword = keyword.to_ascii_uppercase();
            let params = inline
                .filter(|v| !v.is_empty())
                .into_iter()
                .chain(words)
                .map(str::to_owned);
            count(1);
            match index.get(&keyword) {
                Some(&i) => {
                    let existing = &mut caps.extensions[i].1;
                    let seen = merged.entry(i).or_insert_with(|| {
                        count(existing.len());
                        existing.iter().map(|e| e.to_ascii_lowercase()).collect()
                    });
                    for p in params {
                        count(1);
                        if seen.insert(p.to_ascii_lowercase()) {
                            existing.push(p);
                        }
                    }
                }
                None => {
                    let params: Vec<String> = params.collect();
                    count(params.len());
                    index.insert(keyword.clone(), caps.extensions.len());
                    caps.extensions.push((keyword, params));
                }
            }
        }
        caps
    }

    /// The text of the first line (the server's domain and greeting).
    #[must_use]
    pub fn greeting(&self) -> &str {
        &self.greeting
    }

    /// Whether the server announced `keyword` (case-insensitive), like smtplib's
    /// `has_extn`.
    #[must_use]
    pub fn has(&self, keyword: &str) -> bool {
        self.params(keyword).is_some()
    }

    /// The parameters of `keyword`, if announced.
    #[must_use]
    pub fn params(&self, keyword: &str) -> Option<&[String]> {
        self.extensions
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(keyword))
            .map(|(_, p)| p.as_slice())
    }

    /// Every keyword (upper case) with its parameters joined by a space, in the
    /// order received: smtplib's `esmtp_features`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, String)> + '_ {
        self.extensions
            .iter()
            .map(|(k, p)| (k.as_str(), p.join(" ")))
    }

    /// SIZE was announced (with or without a limit).
    #[must_use]
    pub fn offers_size(&self) -> bool {
        self.has("SIZE")
    }

    /// The SIZE limit in bytes: `None` when SIZE is absent, has no parameter, is 0
    /// (no fixed limit, RFC 1870 section 4) or is not a number.
    #[must_use]
    pub fn size(&self) -> Option<u64> {
        self.params("SIZE")?
            .first()?
            .parse::<u64>()
            .ok()
            .filter(|&n| n > 0)
    }

    /// The AUTH mechanisms, upper case, without duplicates, in the order announced.
    #[must_use]
    pub fn auth_mechanisms(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        let mut out: Vec<String> = Vec::new();
        for m in self.params("AUTH").unwrap_or_default() {
            count(1);
            let m = m.to_ascii_uppercase();
            if seen.insert(m.clone()) {
                out.push(m);
            }
        }
        out
    }

    /// PIPELINING (RFC 2920).
    #[must_use]
    pub fn pipelining(&self) -> bool {
        self.has("PIPELINING")
    }

    /// Early pipelining (draft-harris-early-pipe, as Exim implements it)
    /// together with PIPELINING, which it extends: a client that saw both
    /// may, on a later connection to the same server, send EHLO before the
    /// greeting ([`OpenPlan::early_pipelining`](crate::OpenPlan::early_pipelining)).
    /// The keyword is `PIPECONNECT`, Exim's from 4.96 on. Exim 4.92 to 4.95
    /// said `X_PIPE_CONNECT`, then `PIPE_CONNECT`: an underscore is not
    /// allowed in an ehlo-keyword (RFC 5321 section 4.1.1.1), so those lines
    /// are skipped like any other malformed one, and such a server is taken
    /// not to offer early pipelining (the safe side).
    #[must_use]
    pub fn pipe_connect(&self) -> bool {
        self.pipelining() && self.has("PIPECONNECT")
    }

    /// STARTTLS (RFC 3207).
    #[must_use]
    pub fn starttls(&self) -> bool {
        self.has("STARTTLS")
    }

    /// SMTPUTF8 (RFC 6531).
    #[must_use]
    pub fn smtputf8(&self) -> bool {
        self.has("SMTPUTF8")
    }

    /// 8BITMIME (RFC 6152).
    #[must_use]
    pub fn eight_bit_mime(&self) -> bool {
        self.has("8BITMIME")
    }

    /// CHUNKING (RFC 3030).
    #[must_use]
    pub fn chunking(&self) -> bool {
        self.has("CHUNKING")
    }

    /// BINARYMIME (RFC 3030).
    #[must_use]
    pub fn binary_mime(&self) -> bool {
        self.has("BINARYMIME")
    }

    /// DSN (RFC 3461).
    #[must_use]
    pub fn dsn(&self) -> bool {
        self.has("DSN")
    }

    /// ENHANCEDSTATUSCODES (RFC 2034).
    #[must_use]
    pub fn enhanced_status_codes(&self) -> bool {
        self.has("ENHANCEDSTATUSCODES")
    }

    /// REQUIRETLS (RFC 8689).
    #[must_use]
    pub fn requiretls(&self) -> bool {
        self.has("REQUIRETLS")
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::Capabilities;
    use crate::reply::{Reply, ReplyParser};

    thread_local! {
        pub(super) static OPS: Cell<usize> = const { Cell::new(0) };
    }

    /// The steps counted while `f` runs.
    fn ops(f: impl FnOnce()) -> usize {
        OPS.with(|ops| ops.set(0));
        f();
        OPS.with(Cell::get)
    }

    /// A distinct token of three characters.
    fn token(n: usize) -> String {
        const SET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        [n / 1296 % 36, n / 36 % 36, n % 36]
            .iter()
            .map(|&i| char::from(SET[i]))
            .collect()
    }

    /// `250-mx`, then `lines` lines of `keyword` with `per_line` new tokens
    /// each, through the reply parser (within its default limits).
    fn hostile(keyword: &str, lines: usize, per_line: usize) -> Reply {
        let mut wire = b"250-mx\r\n".to_vec();
        let mut n = 0;
        for l in 0..lines {
            let sep = if l + 1 == lines { ' ' } else { '-' };
            wire.extend_from_slice(format!("250{sep}{keyword}").as_bytes());
            for _ in 0..per_line {
                wire.extend_from_slice(format!(" {}", token(n)).as_bytes());
                n += 1;
            }
            wire.extend_from_slice(b"\r\n");
        }
        assert!(wire.len() <= 64 * 1024, "{}", wire.len());
        ReplyParser::new(crate::ReplyLimits::default())
            .parse(&wire)
            .unwrap()
            .1
            .unwrap()
    }

    #[test]
    fn the_parse_takes_a_bounded_number_of_steps_per_word() {
        // 16 lines of AUTH with 1000 new mechanisms each: 16,000 words. A
        // merge that compares each new parameter with those before it takes
        // about 10^8 steps; the parse takes one or two per word.
        for keyword in ["AUTH", "AUTH=X", "X-LIST"] {
            let r = hostile(keyword, 16, 1000);
            let words = 16 * 1001;
            let mut caps = Capabilities::default();
            let parse = ops(|| caps = Capabilities::parse(&r));
            assert!(
                parse <= 3 * words,
                "{keyword}: {parse} steps for {words} words"
            );
            let expected = match keyword {
                "AUTH" => 16_000,
                // X, then every token.
                "AUTH=X" => 16_001,
                _ => 0,
            };
            let auth = ops(|| assert_eq!(caps.auth_mechanisms().len(), expected));
            assert!(
                auth <= words,
                "{keyword}: auth_mechanisms took {auth} steps"
            );
        }
    }

    #[test]
    fn the_same_keyword_on_many_lines_takes_one_step_each() {
        let r = hostile("SIZE", 250, 1);
        let mut caps = Capabilities::default();
        let parse = ops(|| caps = Capabilities::parse(&r));
        assert!(parse <= 3 * 250 * 2, "{parse} steps");
        assert_eq!(caps.params("size").map(<[String]>::len), Some(250));
    }

    #[test]
    fn merging_keeps_the_first_spelling_and_order() {
        let r = Reply::new(
            250,
            [
                "mx",
                "AUTH PLAIN login",
                "AUTH=LOGIN CRAM-MD5 plain",
                "auth XOAUTH2 Plain",
            ]
            .map(String::from)
            .to_vec(),
        );
        let caps = Capabilities::parse(&r);
        assert_eq!(
            caps.params("AUTH").unwrap(),
            ["PLAIN", "login", "CRAM-MD5", "XOAUTH2"]
        );
        assert_eq!(
            caps.auth_mechanisms(),
            ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"]
        );
    }
}
