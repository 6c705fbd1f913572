//! The keys DNSSEC validation starts from.

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use hickory_resolver::proto::dnssec::TrustAnchors;

use crate::Error;

/// The DNSKEYs a validating [`HickoryResolver`](crate::HickoryResolver)
/// trusts: the IANA root keys (the default), or the keys a caller gives,
/// each for its own zone (a lab that signs `test.` passes that zone's key).
///
/// ```
/// use smtp_mx_hickory::TrustAnchor;
///
/// // The key line of a zone signed for a lab (as ldns-keygen writes it).
/// let anchor = TrustAnchor::from_dnskeys(
///     "test. 3600 IN DNSKEY 257 3 13 \
///      mt5BFAZxT7JZZ88sZUgH9Gfb/ll9heu+86NPDq/iZlKhIISmGlm2cHLhXgvn8V/SqIQtzK2vBr/B6Mz+4ZLogg==",
/// )?;
/// # Ok::<(), smtp_mx_hickory::Error>(())
/// ```
#[derive(Clone)]
pub struct TrustAnchor {
    pub(crate) keys: Arc<TrustAnchors>,
    source: Source,
}

/// Where a trust anchor's keys came from, for its `Debug`.
#[derive(Clone)]
enum Source {
    IanaRoot,
    Given,
    File(String),
}

impl fmt::Debug for TrustAnchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.source {
            Source::IanaRoot => "the IANA root",
            Source::Given => "given keys",
            Source::File(path) => path,
        };
        f.debug_struct("TrustAnchor")
            .field("source", &source)
            .finish_non_exhaustive()
    }
}

impl Default for TrustAnchor {
    fn default() -> TrustAnchor {
        TrustAnchor::iana_root()
    }
}

/// The most bytes of a trust anchor file read: a few keys take a few
/// hundred bytes each.
const MAX_ANCHOR_FILE: u64 = 256 * 1024;

impl TrustAnchor {
    /// The root zone's key-signing keys as IANA publishes them (KSK-2017
    /// and KSK-2024), compiled in by hickory.
    #[must_use]
    pub fn iana_root() -> TrustAnchor {
        TrustAnchor {
            keys: Arc::new(TrustAnchors::default()),
            source: Source::IanaRoot,
        }
    }

    /// Only the DNSKEY records in `text`, in zone-file form (`owner [ttl]
    /// [class] DNSKEY flags protocol algorithm key`, one a line, `;`
    /// comments allowed: the `.key` file `ldns-keygen` or
    /// `dnssec-keygen` writes), each trusted for its owner zone. A DS
    /// record is not read (give the key it digests).
    ///
    /// # Errors
    ///
    /// [`Error::TrustAnchor`] when a line does not parse or there is no
    /// DNSKEY record.
    pub fn from_dnskeys(text: &str) -> Result<TrustAnchor, Error> {
        let keys = parse(text)?;
        Ok(TrustAnchor {
            keys: Arc::new(keys),
            source: Source::Given,
        })
    }

    /// [`TrustAnchor::from_dnskeys`] of the file at `path`.
    ///
    /// # Errors
    ///
    /// [`Error::TrustAnchor`] when the file cannot be read, is over
    /// 256 KiB, or does not parse.
    pub fn from_file(path: &Path) -> Result<TrustAnchor, Error> {
        let shown = path.display().to_string();
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_ANCHOR_FILE + 1).read_to_string(&mut text))
            .map_err(|e| Error::TrustAnchor(format!("{shown}: {e}")))?;
        if text.len() as u64 > MAX_ANCHOR_FILE {
            return Err(Error::TrustAnchor(format!("{shown}: over 256 KiB")));
        }
        let keys = parse(&text).map_err(|e| match e {
            Error::TrustAnchor(why) => Error::TrustAnchor(format!("{shown}: {why}")),
            other => other,
        })?;
        Ok(TrustAnchor {
            keys: Arc::new(keys),
            source: Source::File(shown),
        })
    }
}

/// The keys of `text`, refusing a text with none.
fn parse(text: &str) -> Result<TrustAnchors, Error> {
    let keys = TrustAnchors::from_str(text).map_err(|e| Error::TrustAnchor(e.to_string()))?;
    // hickory's parser takes DNSKEY records only (any other type is an
    // error), so a text with no DNSKEY word outside comments has no key.
    let has_key = text.lines().any(|line| {
        let data = line.split(';').next().unwrap_or("");
        data.split_whitespace()
            .any(|w| w.eq_ignore_ascii_case("DNSKEY"))
    });
    if !has_key {
        return Err(Error::TrustAnchor("no DNSKEY record".to_owned()));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::proto::dnssec::{Algorithm, PublicKeyBuf};
    use hickory_resolver::proto::rr::{LowerName, Name};

    /// An ECDSA P-256 public key (64 bytes), base64.
    const KEY: &str =
        "mt5BFAZxT7JZZ88sZUgH9Gfb/ll9heu+86NPDq/iZlKhIISmGlm2cHLhXgvn8V/SqIQtzK2vBr/B6Mz+4ZLogg==";

    fn key_bytes() -> Vec<u8> {
        decode_base64(KEY)
    }

    /// A small base64 decoder for the test key (standard alphabet).
    fn decode_base64(s: &str) -> Vec<u8> {
        let val = |c: u8| -> u32 {
            match c {
                b'A'..=b'Z' => u32::from(c - b'A'),
                b'a'..=b'z' => u32::from(c - b'a') + 26,
                b'0'..=b'9' => u32::from(c - b'0') + 52,
                b'+' => 62,
                _ => 63,
            }
        };
        let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
        let mut out = Vec::new();
        for chunk in bytes.chunks(4) {
            let mut n = 0u32;
            for (i, &c) in chunk.iter().enumerate() {
                n |= val(c) << (18 - 6 * i);
            }
            let take = chunk.len() * 6 / 8;
            for i in 0..take {
                out.push((n >> (16 - 8 * i)) as u8);
            }
        }
        out
    }

    fn trusts(anchor: &TrustAnchor, zone: &str) -> bool {
        let key = PublicKeyBuf::new(key_bytes(), Algorithm::ECDSAP256SHA256);
        let name = LowerName::from(Name::from_ascii(zone).unwrap());
        anchor.keys.contains_with_name(&key, &name)
    }

    #[test]
    fn a_lab_key_is_trusted_for_its_zone_only() {
        let text = format!(
            "; the lab's key\ntest.\tIN\tDNSKEY\t257 3 13 {KEY} ;{{id = 1 (ksk), size = 256b}}\n"
        );
        let anchor = TrustAnchor::from_dnskeys(&text).unwrap();
        assert!(trusts(&anchor, "test."));
        assert!(!trusts(&anchor, "other."));
        assert!(!trusts(&anchor, "."));
        // The IANA root does not hold it, and holds the two root keys.
        let root = TrustAnchor::iana_root();
        assert!(!trusts(&root, "test."));
        assert_eq!(root.keys.len(), 2);
        // Only the given keys: no root key comes with them.
        assert_eq!(anchor.keys.len(), 0);
    }

    #[test]
    fn the_file_form_loads_and_bad_anchors_are_refused() {
        let dir = std::env::temp_dir().join(format!("smtp-mx-hickory-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("Ktest.key");
        std::fs::write(&path, format!("test. 3600 IN DNSKEY 257 3 13 {KEY}\n")).unwrap();
        let anchor = TrustAnchor::from_file(&path).unwrap();
        assert!(trusts(&anchor, "test."));
        assert!(format!("{anchor:?}").contains("Ktest.key"));

        for bad in [
            "",
            "; only a comment\n",
            "test. IN DS 12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "test. IN DNSKEY 257 3 13 not*base64",
        ] {
            let got = TrustAnchor::from_dnskeys(bad);
            assert!(
                matches!(got, Err(Error::TrustAnchor(_))),
                "{bad:?}: {got:?}"
            );
        }
        let missing = TrustAnchor::from_file(&dir.join("absent.key"));
        assert!(matches!(missing, Err(Error::TrustAnchor(m)) if m.contains("absent.key")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
