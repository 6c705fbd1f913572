//! SCRAM-SHA-256 (RFC 7677) with the exchange of RFC 5802 sections 3, 5 and 7,
//! without channel binding (GS2 header `n,,`, `c=biws`).
//!
//! Over SMTP AUTH (RFC 4954 section 4) the exchange reads:
//!
//! ```text
//! C: AUTH SCRAM-SHA-256 base64(n,,n=user,r=<client nonce>)
//! S: 334 base64(r=<client nonce><server nonce>,s=<salt>,i=<iterations>)
//! C: base64(c=biws,r=<client nonce><server nonce>,p=<proof>)
//! S: 334 base64(v=<server signature>)
//! C: (empty line)
//! S: 235 2.7.0 Authentication successful
//! ```
//!
//! The server's last message comes as a 334 challenge because SMTP AUTH has no
//! "additional data with success"; the mechanism checks the server signature
//! there and answers with an empty line.
//!
//! User name and password are prepared with SASLprep (RFC 4013, by the
//! `stringprep` crate) as RFC 5802 section 2.2 asks: non-ASCII spaces become
//! spaces, characters "commonly mapped to nothing" go, the result is NFKC
//! normalised, and prohibited characters (controls, private use, unassigned code
//! points and others) or bad bidirectional text refuse the credentials. Plain
//! ASCII without control characters passes unchanged.
//!
//! The password never leaves the client, and guessing it from a recorded
//! exchange costs at least [`ScramSha256::MIN_ITERATIONS`] rounds of PBKDF2
//! per guess, so the mechanism may run without TLS
//! ([`Mechanism::exposes_secret`] is `false`); without channel binding an
//! attacker in the path can still relay the exchange and take over the
//! plaintext session (see [the module](super)).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::{Credentials, Mechanism, SaslError};

type HmacSha256 = Hmac<Sha256>;

/// Random bytes in a generated client nonce (32 base64 characters).
const NONCE_BYTES: usize = 24;

/// Why a SCRAM exchange failed. Through [`Mechanism`] it becomes a
/// [`SaslError`] with the same text, and the client cancels the exchange.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScramError {
    /// The user name or the password is refused by SASLprep (RFC 4013:
    /// prohibited characters or bidirectional text), or the user name is empty.
    /// The field says which of the two.
    #[error("SCRAM-SHA-256: the {0} is not a valid SASLprep string")]
    SaslPrep(&'static str),
    /// The explicit client nonce is empty or has a character outside printable
    /// ASCII or a comma (RFC 5802 section 7, `printable`).
    #[error("SCRAM-SHA-256: the client nonce must be printable ASCII without a comma")]
    InvalidNonce,
    /// The system's random source failed while making the client nonce.
    #[error("SCRAM-SHA-256: no random bytes for the client nonce: {0}")]
    Random(String),
    /// A server message does not follow RFC 5802 section 7; the text says how.
    #[error("SCRAM-SHA-256: malformed server message: {0}")]
    Malformed(&'static str),
    /// The server's nonce does not start with the client's, or adds nothing to it
    /// (RFC 5802 section 5.1, `r`).
    #[error("SCRAM-SHA-256: the server nonce does not extend the client nonce")]
    NonceMismatch,
    /// A base64 field of the server (the field is named) does not decode.
    #[error("SCRAM-SHA-256: the server's {0} is not valid base64")]
    BadBase64(&'static str),
    /// The iteration count is below [`ScramSha256::MIN_ITERATIONS`] (RFC 7677
    /// section 4 asks for at least 4096).
    #[error("SCRAM-SHA-256: iteration count {0} is below the minimum of 4096")]
    IterationsTooLow(u64),
    /// The iteration count is above [`ScramSha256::MAX_ITERATIONS`]: refused
    /// rather than spending minutes of CPU on a server's whim. A count too large
    /// for `u64` is reported as `u64::MAX`.
    #[error("SCRAM-SHA-256: iteration count {0} is above the maximum of 1000000")]
    IterationsTooHigh(u64),
    /// The server ended the exchange with `e=` (RFC 5802 section 7,
    /// `server-error`): authentication failed. Holds the error value.
    #[error("SCRAM-SHA-256: the server reports an error: {0}")]
    Server(String),
    /// The server signature `v=` does not match: the server does not know the
    /// password (or the exchange was tampered with). Authentication failed.
    #[error("SCRAM-SHA-256: the server signature does not match")]
    ServerSignatureMismatch,
    /// The server's final message has neither `v=` nor `e=`: the server did not
    /// prove it knows the password. Authentication failed.
    #[error("SCRAM-SHA-256: the server's final message has no server signature")]
    MissingServerSignature,
    /// A challenge arrived after the exchange was over, or after it failed.
    #[error("SCRAM-SHA-256: unexpected challenge after the exchange ended")]
    UnexpectedChallenge,
}

impl From<ScramError> for SaslError {
    fn from(e: ScramError) -> SaslError {
        SaslError(e.to_string())
    }
}

/// The SCRAM-SHA-256 mechanism (RFC 7677), client side, without channel
/// binding and without an authorisation identity.
///
/// The client nonce is 24 bytes from the system's random source (the
/// `getrandom` crate), drawn when the client-first message is made, so each
/// clone of an unused mechanism draws its own; [`ScramSha256::with_nonce`]
/// fixes it for tests.
///
/// The server must prove that it knows the password: its final message's `v=`
/// is checked, and a wrong or missing one, or an `e=` error, fails the exchange.
/// That check happens when the server sends its final message as a 334
/// challenge, as RFC 4954 section 4 requires. A server that answers 235
/// without having sent it is refused by [`Mechanism::finish`]
/// ([`ScramError::MissingServerSignature`]), so [`Client`](crate::Client)
/// reports the authentication as failed; [`ScramSha256::server_verified`]
/// tells whether the check happened.
///
/// `Debug` shows the user name and the stage, never the password, the salted
/// password or a key.
#[derive(Clone)]
pub struct ScramSha256 {
    credentials: Credentials,
    nonce: Option<String>,
    state: State,
}

#[derive(Clone)]
enum State {
    /// Nothing sent yet.
    Start,
    /// The client-first message is out; holds its bare part (without the GS2
    /// header) for the auth message.
    ClientFirst { bare: String },
    /// The client-final message is out; holds what checks the server signature.
    ClientFinal {
        server_key: [u8; 32],
        auth_message: String,
    },
    /// The server signature was verified.
    Verified,
    /// The exchange failed; every further challenge is refused.
    Failed,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Start => "start",
            State::ClientFirst { .. } => "client-first sent",
            State::ClientFinal { .. } => "client-final sent",
            State::Verified => "server verified",
            State::Failed => "failed",
        }
    }
}

impl fmt::Debug for ScramSha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramSha256")
            .field("user", &self.credentials.user)
            .field("state", &self.state.name())
            .finish_non_exhaustive()
    }
}

impl ScramSha256 {
    /// The lowest iteration count accepted (RFC 7677 section 4).
    pub const MIN_ITERATIONS: u32 = 4096;
    /// The highest iteration count accepted: a bound on the time the key
    /// derivation takes, which runs inside [`Mechanism::step`] on the caller's
    /// thread (a fraction of a second at this count in an optimised build).
    pub const MAX_ITERATIONS: u32 = 1_000_000;

    /// SCRAM-SHA-256 with these credentials and a random client nonce.
    #[must_use]
    pub fn new(credentials: Credentials) -> ScramSha256 {
        ScramSha256 {
            credentials,
            nonce: None,
            state: State::Start,
        }
    }

    /// SCRAM-SHA-256 with a fixed client nonce, for tests and test vectors. The
    /// nonce must be printable ASCII without a comma; otherwise the first
    /// message fails with [`ScramError::InvalidNonce`]. Never reuse a nonce
    /// against a real server.
    #[must_use]
    pub fn with_nonce(credentials: Credentials, nonce: impl Into<String>) -> ScramSha256 {
        ScramSha256 {
            credentials,
            nonce: Some(nonce.into()),
            state: State::Start,
        }
    }

    /// Whether the server's signature was received and verified: the exchange
    /// is complete and the server knows the password.
    #[must_use]
    pub fn server_verified(&self) -> bool {
        matches!(self.state, State::Verified)
    }

    /// The client-first message, `n,,n=<user>,r=<nonce>` (RFC 5802 section 7).
    ///
    /// # Errors
    ///
    /// SASLprep refuses the user name, the nonce is invalid or no random bytes
    /// could be had, or the message was already made.
    pub fn client_first(&mut self) -> Result<Vec<u8>, ScramError> {
        let result = self.make_client_first();
        self.settle(result)
    }

    /// The answer to a decoded server message: the client-first message to an
    /// empty first challenge (no initial response was sent), the client-final
    /// message to the server-first message, and an empty answer once the
    /// server-final message is verified.
    ///
    /// # Errors
    ///
    /// Any malformed or unacceptable server message, a server error (`e=`), a
    /// wrong or missing server signature, or a challenge after the end.
    pub fn answer(&mut self, challenge: &[u8]) -> Result<Vec<u8>, ScramError> {
        let result = match &self.state {
            State::Start if challenge.is_empty() => self.make_client_first(),
            State::Start => Err(ScramError::Malformed(
                "the first challenge is not empty, but the client speaks first",
            )),
            State::ClientFirst { bare } => {
                let bare = bare.clone();
                self.client_final(&bare, challenge)
            }
            State::ClientFinal {
                server_key,
                auth_message,
            } => verify_server_final(server_key, auth_message, challenge)
                .map(|()| (Vec::new(), State::Verified)),
            State::Verified | State::Failed => Err(ScramError::UnexpectedChallenge),
        };
        self.settle(result)
    }

    fn settle(
        &mut self,
        result: Result<(Vec<u8>, State), ScramError>,
    ) -> Result<Vec<u8>, ScramError> {
        match result {
            Ok((out, next)) => {
                self.state = next;
                Ok(out)
            }
            Err(e) => {
                self.state = State::Failed;
                Err(e)
            }
        }
    }

    fn make_client_first(&mut self) -> Result<(Vec<u8>, State), ScramError> {
        if !matches!(self.state, State::Start) {
            return Err(ScramError::UnexpectedChallenge);
        }
        let user = stringprep::saslprep(&self.credentials.user)
            .map_err(|_| ScramError::SaslPrep("user name"))?;
        if user.is_empty() {
            return Err(ScramError::SaslPrep("user name"));
        }
        let nonce = match &self.nonce {
            Some(n) if is_nonce(n) => n.clone(),
            Some(_) => return Err(ScramError::InvalidNonce),
            None => {
                let mut bytes = [0u8; NONCE_BYTES];
                getrandom::fill(&mut bytes).map_err(|e| ScramError::Random(e.to_string()))?;
                let n = B64.encode(bytes);
                self.nonce = Some(n.clone());
                n
            }
        };
        // RFC 5802 section 5.1: ',' and '=' in the name are escaped.
        let user = user.replace('=', "=3D").replace(',', "=2C");
        let bare = format!("n={user},r={nonce}");
        let message = format!("n,,{bare}").into_bytes();
        Ok((message, State::ClientFirst { bare }))
    }

    fn client_final(
        &self,
        client_first_bare: &str,
        server_first: &[u8],
    ) -> Result<(Vec<u8>, State), ScramError> {
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| ScramError::Malformed("the server-first message is not UTF-8"))?;
        let parsed = ServerFirst::parse(server_first)?;
        let ours = self.nonce.as_deref().unwrap_or_default();
        if ours.is_empty() || parsed.nonce.len() <= ours.len() || !parsed.nonce.starts_with(ours) {
            return Err(ScramError::NonceMismatch);
        }
        let password = stringprep::saslprep(self.credentials.password.expose())
            .map_err(|_| ScramError::SaslPrep("password"))?;

        // RFC 5802 section 3.
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(
            password.as_bytes(),
            &parsed.salt,
            parsed.iterations,
            &mut salted,
        );
        let client_key = hmac(&salted, b"Client Key");
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let server_key = hmac(&salted, b"Server Key");
        // "biws" is base64("n,,"): no channel binding, no authzid.
        let without_proof = format!("c=biws,r={}", parsed.nonce);
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let client_signature = hmac(&stored_key, auth_message.as_bytes());
        let mut proof = client_key;
        for (p, s) in proof.iter_mut().zip(client_signature) {
            *p ^= s;
        }
        let message = format!("{without_proof},p={}", B64.encode(proof)).into_bytes();
        Ok((
            message,
            State::ClientFinal {
                server_key,
                auth_message,
            },
        ))
    }
}

impl Mechanism for ScramSha256 {
    fn name(&self) -> &str {
        "SCRAM-SHA-256"
    }

    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        Ok(Some(self.client_first()?))
    }

    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        Ok(self.answer(challenge)?)
    }

    /// Accepts the server's success only once its signature was verified.
    fn finish(&mut self) -> Result<(), SaslError> {
        if self.server_verified() {
            Ok(())
        } else {
            self.state = State::Failed;
            Err(ScramError::MissingServerSignature.into())
        }
    }

    /// No: the password stays on the client, and a recorded exchange costs
    /// the iteration count per guess (see the [module](super)).
    fn exposes_secret(&self) -> bool {
        false
    }
}

/// HMAC-SHA-256 of `data` under `key`.
fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    #[allow(
        clippy::expect_used,
        reason = "HMAC takes a key of any length (RFC 2104 hashes a long one)"
    )]
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// RFC 5802 section 7, `printable`: `%x21-2B / %x2D-7E`, at least one.
fn is_nonce(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// The server-first message (RFC 5802 section 7):
/// `[reserved-mext ","] nonce "," salt "," iteration-count ["," extensions]`.
struct ServerFirst<'a> {
    nonce: &'a str,
    salt: Vec<u8>,
    iterations: u32,
}

impl<'a> ServerFirst<'a> {
    fn parse(message: &'a str) -> Result<ServerFirst<'a>, ScramError> {
        let mut attrs = message.split(',');
        let first = attrs.next().unwrap_or_default();
        if first.starts_with("m=") {
            return Err(ScramError::Malformed(
                "a mandatory extension (m=) this client does not support",
            ));
        }
        if let Some(e) = first.strip_prefix("e=") {
            // Not in the grammar here, but some servers fail this early.
            return Err(server_error(e));
        }
        let nonce = first
            .strip_prefix("r=")
            .ok_or(ScramError::Malformed("the server-first message has no r="))?;
        if !is_nonce(nonce) {
            return Err(ScramError::Malformed(
                "the server nonce is not printable ASCII",
            ));
        }
        let salt = attrs
            .next()
            .and_then(|a| a.strip_prefix("s="))
            .ok_or(ScramError::Malformed("the server-first message has no s="))?;
        let salt = B64
            .decode(salt)
            .map_err(|_| ScramError::BadBase64("salt"))?;
        if salt.is_empty() {
            return Err(ScramError::Malformed("the salt is empty"));
        }
        let count = attrs
            .next()
            .and_then(|a| a.strip_prefix("i="))
            .ok_or(ScramError::Malformed("the server-first message has no i="))?;
        let iterations = iteration_count(count)?;
        check_extensions(attrs)?;
        Ok(ServerFirst {
            nonce,
            salt,
            iterations,
        })
    }
}

/// `posit-number`, within [`ScramSha256::MIN_ITERATIONS`] and
/// [`ScramSha256::MAX_ITERATIONS`].
fn iteration_count(s: &str) -> Result<u32, ScramError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ScramError::Malformed("the iteration count is not a number"));
    }
    // Digits only, so the one failure left is overflow.
    let count = s.parse::<u64>().unwrap_or(u64::MAX);
    if count < u64::from(ScramSha256::MIN_ITERATIONS) {
        return Err(ScramError::IterationsTooLow(count));
    }
    match u32::try_from(count) {
        Ok(n) if n <= ScramSha256::MAX_ITERATIONS => Ok(n),
        _ => Err(ScramError::IterationsTooHigh(count)),
    }
}

/// Extensions after the known attributes: `attr-val` each, ignored.
fn check_extensions<'a>(attrs: impl Iterator<Item = &'a str>) -> Result<(), ScramError> {
    for a in attrs {
        let b = a.as_bytes();
        if b.len() < 2 || !b[0].is_ascii_alphabetic() || b[1] != b'=' {
            return Err(ScramError::Malformed(
                "an attribute is not of the form x=value",
            ));
        }
    }
    Ok(())
}

fn server_error(value: &str) -> ScramError {
    if value.is_empty() || value.chars().any(char::is_control) {
        ScramError::Malformed("the server error value is empty or has control characters")
    } else {
        ScramError::Server(value.to_owned())
    }
}

/// The server-final message (RFC 5802 section 7):
/// `(server-error / verifier) ["," extensions]`.
fn verify_server_final(
    server_key: &[u8; 32],
    auth_message: &str,
    message: &[u8],
) -> Result<(), ScramError> {
    let message = std::str::from_utf8(message)
        .map_err(|_| ScramError::Malformed("the server-final message is not UTF-8"))?;
    let mut attrs = message.split(',');
    let first = attrs.next().unwrap_or_default();
    if let Some(e) = first.strip_prefix("e=") {
        return Err(server_error(e));
    }
    let Some(signature) = first.strip_prefix("v=") else {
        return Err(ScramError::MissingServerSignature);
    };
    let signature = B64
        .decode(signature)
        .map_err(|_| ScramError::BadBase64("server signature"))?;
    check_extensions(attrs)?;
    #[allow(
        clippy::expect_used,
        reason = "HMAC takes a key of any length (RFC 2104 hashes a long one)"
    )]
    let mut mac = HmacSha256::new_from_slice(server_key).expect("HMAC accepts any key length");
    mac.update(auth_message.as_bytes());
    // Constant-time comparison; a signature of the wrong length fails too.
    mac.verify_slice(&signature)
        .map_err(|_| ScramError::ServerSignatureMismatch)
}
