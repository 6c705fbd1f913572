//! The envelope of a message taken from its headers, as smtplib's `send_message`
//! does: RFC 5322 section 3.6.2 (originator fields), 3.6.3 (destination fields),
//! 3.6.6 (resent fields), 3.4 (address lists: display names, quoted strings,
//! comments, groups), 2.2.3 (folding).

use crate::error::UsageError;

/// What `send_message` needs from a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderEnvelope {
    /// The sender: the first address of `Sender`, else of `From` (or their
    /// `Resent-` forms when one `Resent-` block is present).
    pub sender: String,
    /// Every address of `To`, `Bcc` and `Cc` (in that order, as smtplib), or of
    /// their `Resent-` forms; exact duplicates removed, first kept.
    pub recipients: Vec<String>,
    /// The header block to transmit: the original header lines, byte for byte,
    /// without `Bcc` and `Resent-Bcc` fields (continuation lines included),
    /// followed by the blank line that ends the header block if the message had one.
    pub headers: Vec<u8>,
    /// Offset in the original message where the body starts (after the blank line),
    /// or the message length when there is no body.
    pub body_offset: usize,
    /// Whether any address (sender or recipient) is not ASCII, so SMTPUTF8 is needed.
    pub international: bool,
}

/// Takes the envelope from the message's header block.
///
/// Errors ([`UsageError::Envelope`]): more than one `Resent-` block (counted by
/// `Resent-Date` fields, as smtplib), no sender found, no recipient found.
pub fn from_message(message: &[u8]) -> Result<HeaderEnvelope, UsageError> {
    let _ = message;
    todo!()
}

/// Parses an RFC 5322 address list (`"Doe, J" <j@x>, (c) k@y, team: a@b, c@d;`)
/// into bare addresses (`local@domain`), skipping anything unparseable.
#[must_use]
pub fn parse_address_list(value: &str) -> Vec<String> {
    let _ = value;
    todo!()
}
