//! What a send came to, as one plain value: the recipients accepted, those
//! refused with the refusing reply, the final reply, or the error. With the
//! `serde` feature it serialises to the object `smtp-send --json` prints:
//! `{"accepted": [...], "refused": {"addr": [code, "text"]}, "reply": [code,
//! "text"] | null, "error": null | {"kind": ..., "code": ..., "message": ...}}`.

use smtp_sansio::{Address, Reply, TransactionResult};

/// The outcome of one send, for logs, queues and JSON.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Report {
    /// The recipients the message was delivered to.
    pub accepted: Vec<Address>,
    /// The refused recipients with the reply that refused each, in order.
    #[cfg_attr(feature = "serde", serde(with = "ordered_map"))]
    pub refused: Vec<(Address, Reply)>,
    /// The reply to the end of the message (SMTP; `None` under LMTP and on error).
    pub reply: Option<Reply>,
    /// Why the send failed, when it did.
    pub error: Option<ErrorReport>,
}

/// A failure in a [`Report`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ErrorReport {
    /// A stable snake_case name for the kind of failure (`refused`, `timeout`, ...).
    pub kind: String,
    /// The server's reply code, when the failure carries a reply.
    pub code: Option<u16>,
    /// A description for people.
    pub message: String,
}

impl From<&TransactionResult> for Report {
    fn from(result: &TransactionResult) -> Report {
        Report {
            accepted: result.accepted().into_iter().cloned().collect(),
            refused: result
                .refused()
                .into_iter()
                .map(|(a, r)| (a.clone(), r.clone()))
                .collect(),
            reply: result.final_reply.clone(),
            error: None,
        }
    }
}

impl Report {
    /// A report of a failure, with the recipients known to have the message
    /// (LMTP, when the fate of the others is unknown) and those refused.
    #[must_use]
    pub fn failure(
        error: ErrorReport,
        accepted: Vec<Address>,
        refused: Vec<(Address, Reply)>,
    ) -> Report {
        Report {
            accepted,
            refused,
            reply: None,
            error: Some(error),
        }
    }
}

/// `Vec<(Address, Reply)>` as a JSON object, keeping the order.
#[cfg(feature = "serde")]
mod ordered_map {
    use serde::de::{MapAccess, Visitor};
    use serde::ser::SerializeMap;
    use serde::{Deserializer, Serializer};
    use smtp_sansio::{Address, Reply};

    pub(super) fn serialize<S: Serializer>(
        v: &[(Address, Reply)],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(v.len()))?;
        for (a, r) in v {
            map.serialize_entry(a, r)?;
        }
        map.end()
    }

    struct Pairs;

    impl<'de> Visitor<'de> for Pairs {
        type Value = Vec<(Address, Reply)>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map of address to [code, text]")
        }

        fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Self::Value, M::Error> {
            let mut out = Vec::new();
            while let Some(pair) = m.next_entry()? {
                out.push(pair);
            }
            Ok(out)
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(Address, Reply)>, D::Error> {
        d.deserialize_map(Pairs)
    }
}
