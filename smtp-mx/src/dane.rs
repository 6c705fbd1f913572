//! DANE TLSA records (RFC 6698, RFC 7671, RFC 7672): the record as the TLS
//! plan carries it.

use serde::{Deserialize, Serialize};

/// One TLSA record (RFC 6698 section 2.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tlsa {
    /// The certificate usage: 2 (DANE-TA) and 3 (DANE-EE) are the ones SMTP
    /// uses (RFC 7672 section 3.1).
    pub usage: u8,
    /// The selector: 0 (the whole certificate) or 1 (its
    /// SubjectPublicKeyInfo).
    pub selector: u8,
    /// The matching type: 0 (exact), 1 (SHA-256) or 2 (SHA-512).
    pub matching: u8,
    /// The association data.
    pub data: Vec<u8>,
}
