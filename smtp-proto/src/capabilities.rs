//! The answer to EHLO (RFC 5321 section 4.1.1.1) or LHLO (RFC 2033 section 4.1):
//! service extensions and their parameters. Extension names: RFC 1870 (SIZE),
//! RFC 2920 (PIPELINING), RFC 3207 (STARTTLS), RFC 4954 (AUTH), RFC 6152 (8BITMIME),
//! RFC 6531 (SMTPUTF8), RFC 3030 (CHUNKING, BINARYMIME), RFC 3461 (DSN),
//! RFC 2034 (ENHANCEDSTATUSCODES), RFC 8689 (REQUIRETLS).

use crate::reply::Reply;

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
    #[must_use]
    pub fn parse(reply: &Reply) -> Capabilities {
        let mut caps = Capabilities {
            greeting: reply.first_line().to_owned(),
            extensions: Vec::new(),
        };
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
            let params: Vec<String> = inline
                .filter(|v| !v.is_empty())
                .into_iter()
                .chain(words)
                .map(str::to_owned)
                .collect();
            match caps.extensions.iter_mut().find(|(k, _)| *k == keyword) {
                Some((_, existing)) => {
                    for p in params {
                        if !existing.iter().any(|e| e.eq_ignore_ascii_case(&p)) {
                            existing.push(p);
                        }
                    }
                }
                None => caps.extensions.push((keyword, params)),
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
        let mut out: Vec<String> = Vec::new();
        for m in self.params("AUTH").unwrap_or_default() {
            let m = m.to_ascii_uppercase();
            if !out.contains(&m) {
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
