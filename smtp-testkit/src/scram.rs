//! The server side of SCRAM-SHA-256 (RFC 7677, with the exchange of RFC 5802
//! sections 3, 5 and 7), without channel binding.
//!
//! The server keeps the password (a test server), salts it with a salt of its
//! own per user and derives the keys with [`ITERATIONS`] rounds of PBKDF2. It
//! checks the client's proof the way RFC 5802 section 3 says: the client key
//! is the proof XOR the client signature, and its hash must be the stored key.
//! Only then does it send its own signature (`v=`). The user name is decoded
//! (`=2C`, `=3D`) and the password prepared with SASLprep (RFC 4013), as the
//! client does.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The iteration count the server asks for: RFC 7677's minimum.
pub(crate) const ITERATIONS: u32 = 4096;

/// The state between the server-first message and the client-final one.
pub(crate) struct Exchange {
    user: String,
    /// The GS2 header of the client-first message, which `c=` must repeat.
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    salted: [u8; 32],
}

/// Why an exchange fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A message does not follow RFC 5802 section 7.
    Malformed,
    /// Unknown user, channel binding asked for, wrong nonce or wrong proof.
    Failed,
}

/// Reads the client-first message and answers with the server-first one.
/// `password` looks a user's password up; `server_nonce` is appended to the
/// client's nonce (printable ASCII without a comma).
pub(crate) fn server_first(
    client_first: &[u8],
    password: impl Fn(&str) -> Option<String>,
    server_nonce: &str,
    salt: &[u8],
) -> Result<Exchange, Refusal> {
    let text = std::str::from_utf8(client_first).map_err(|_| Refusal::Malformed)?;
    // gs2-header: gs2-cbind-flag "," [authzid] ","
    let mut parts = text.splitn(3, ',');
    let flag = parts.next().ok_or(Refusal::Malformed)?;
    let authzid = parts.next().ok_or(Refusal::Malformed)?;
    let bare = parts.next().ok_or(Refusal::Malformed)?;
    match flag {
        "n" | "y" => {}
        // Channel binding: this server has none to offer.
        f if f.starts_with("p=") => return Err(Refusal::Failed),
        _ => return Err(Refusal::Malformed),
    }
    if !authzid.is_empty() && !authzid.starts_with("a=") {
        return Err(Refusal::Malformed);
    }
    let mut attrs = bare.split(',');
    let name = attrs
        .next()
        .and_then(|a| a.strip_prefix("n="))
        .ok_or(Refusal::Malformed)?;
    let client_nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .ok_or(Refusal::Malformed)?;
    if client_nonce.is_empty() || !is_printable(client_nonce) {
        return Err(Refusal::Malformed);
    }
    let user = decode_name(name).ok_or(Refusal::Malformed)?;
    let password = password(&user).ok_or(Refusal::Failed)?;
    let password = stringprep::saslprep(&password).map_err(|_| Refusal::Failed)?;
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, ITERATIONS, &mut salted);
    let nonce = format!("{client_nonce}{server_nonce}");
    let server_first = format!("r={nonce},s={},i={ITERATIONS}", B64.encode(salt));
    Ok(Exchange {
        user,
        gs2_header: format!("{flag},{authzid},"),
        client_first_bare: bare.to_owned(),
        server_first,
        nonce,
        salted,
    })
}

impl Exchange {
    /// The server-first message to send.
    pub(crate) fn message(&self) -> &str {
        &self.server_first
    }

    /// Checks the client-final message; on success, the user and the
    /// server-final message (`v=` and the server signature).
    pub(crate) fn verify(&self, client_final: &[u8]) -> Result<(String, String), Refusal> {
        let text = std::str::from_utf8(client_final).map_err(|_| Refusal::Malformed)?;
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or(Refusal::Malformed)?;
        let mut attrs = without_proof.split(',');
        let binding = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or(Refusal::Malformed)?;
        let nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(Refusal::Malformed)?;
        let proof = B64.decode(proof).map_err(|_| Refusal::Malformed)?;
        if B64.decode(binding).ok().as_deref() != Some(self.gs2_header.as_bytes()) {
            return Err(Refusal::Failed);
        }
        if nonce != self.nonce {
            return Err(Refusal::Failed);
        }
        let client_key = hmac(&self.salted, b"Client Key");
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        let client_signature = hmac(&stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(Refusal::Failed);
        }
        // RFC 5802 section 3: the client key from the proof, then its hash.
        let recovered: Vec<u8> = proof
            .iter()
            .zip(client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        let recovered_stored: [u8; 32] = Sha256::digest(&recovered).into();
        if recovered_stored != stored_key {
            return Err(Refusal::Failed);
        }
        let server_key = hmac(&self.salted, b"Server Key");
        let server_signature = hmac(&server_key, auth_message.as_bytes());
        Ok((
            self.user.clone(),
            format!("v={}", B64.encode(server_signature)),
        ))
    }
}

/// RFC 5802 section 5.1: `=2C` and `=3D` stand for `,` and `=`; any other `=`
/// is an error.
fn decode_name(name: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let escape = rest.get(i..i + 3)?;
        out.push(match escape {
            "=2C" => ',',
            "=3D" => '=',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    (!out.is_empty()).then_some(out)
}

/// RFC 5802 section 7, `printable`: `%x21-2B / %x2D-7E`.
fn is_printable(s: &str) -> bool {
    s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    #[allow(
        clippy::expect_used,
        reason = "HMAC takes a key of any length (RFC 2104 hashes a long one)"
    )]
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// RFC 7677 section 3: user "user", password "pencil".
    #[test]
    fn rfc_7677_example() {
        let client_first = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let x = server_first(
            client_first,
            |u| (u == "user").then(|| "pencil".to_owned()),
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            &salt,
        )
        .ok()
        .unwrap();
        assert_eq!(
            x.message(),
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let client_final = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let (user, server_final) = x.verify(client_final).unwrap();
        assert_eq!(user, "user");
        assert_eq!(
            server_final,
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        // One bit of the proof off, or another nonce: refused.
        let wrong = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                      p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVU=";
        assert_eq!(x.verify(wrong).err(), Some(Refusal::Failed));
        let replay = b"c=biws,r=rOprNGfwEbeRWgbNEkqO,\
                       p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert_eq!(x.verify(replay).err(), Some(Refusal::Failed));
        // An unknown user fails before any key is derived.
        assert_eq!(
            server_first(client_first, |_| None, "x", &salt).err(),
            Some(Refusal::Failed)
        );
    }

    #[test]
    fn names_are_decoded() {
        assert_eq!(decode_name("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(decode_name("a=2"), None);
        assert_eq!(decode_name("a=41"), None);
        assert_eq!(decode_name(""), None);
    }
}
