//! DKIM checks for the adapters' tests (feature `dkim`, which needs Rust 1.88:
//! mail-auth's hickory-resolver; the rest of the crate needs 1.85): test keys, the
//! messages that break careless signers, verification of what the server
//! stored by `mail-auth`'s verifier (the public key handed to it directly,
//! no DNS), and a copy of each stored message for a second verifier
//! (`scripts/dkim` runs Python's `dkimpy` over them).
//!
//! Keys: read from `$SMTP_DKIM_KEYS/rsa.pem` and `ed25519.pem` when that
//! variable is set (`scripts/dkim` makes them with `openssl`), else generated
//! once per process (RSA 2048 bits and Ed25519). Stored messages are written
//! to `$SMTP_DKIM_CORPUS/<name>.eml` when that variable is set.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, OnceLock};

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::dkim::generate::DkimKeyPair;
use mail_auth::{
    AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer};

/// The signing domain of the test messages.
pub const DOMAIN: &str = "example.org";

/// A test key: its PEM and the TXT record that publishes it.
#[derive(Clone)]
pub struct TestKey {
    /// `rsa` or `ed25519`; also the selector.
    pub name: &'static str,
    /// The private key in PEM (PKCS#1 or PKCS#8).
    pub pem: String,
    /// `v=DKIM1; k=...; p=...`, derived from the private key.
    pub record: String,
}

impl std::fmt::Debug for TestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKey").field("name", &self.name).finish()
    }
}

impl TestKey {
    /// The selector the key is published under (its name).
    #[must_use]
    pub fn selector(&self) -> &str {
        self.name
    }

    /// The name of its TXT record: `<selector>._domainkey.<domain>`.
    #[must_use]
    pub fn dns_name(&self) -> String {
        format!("{}._domainkey.{DOMAIN}", self.name)
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64_encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn record(name: &str, pem: &str) -> Result<String, String> {
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| format!("{name}: {e}"))?;
    if name == "ed25519" {
        let PrivateKeyDer::Pkcs8(p) = der else {
            return Err("ed25519: not PKCS#8".to_owned());
        };
        let key = Ed25519Key::from_pkcs8_maybe_unchecked_der(p.secret_pkcs8_der())
            .map_err(|e| format!("ed25519: {e}"))?;
        Ok(format!(
            "v=DKIM1; k=ed25519; p={}",
            base64_encode(&key.public_key())
        ))
    } else {
        let key = RsaKey::<Sha256>::from_key_der(der).map_err(|e| format!("rsa: {e}"))?;
        Ok(format!(
            "v=DKIM1; k=rsa; p={}",
            base64_encode(&key.public_key())
        ))
    }
}

fn load_or_generate() -> Result<Vec<TestKey>, String> {
    let mut keys = Vec::new();
    for name in ["rsa", "ed25519"] {
        let pem = match std::env::var_os("SMTP_DKIM_KEYS") {
            Some(dir) => {
                let path = std::path::Path::new(&dir).join(format!("{name}.pem"));
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?
            }
            None if name == "rsa" => {
                let pair = DkimKeyPair::generate_rsa(2048).map_err(|e| e.to_string())?;
                let der = PrivatePkcs1KeyDer::from(pair.private_key().to_vec());
                pem("RSA PRIVATE KEY", der.secret_pkcs1_der())
            }
            None => {
                let pair = DkimKeyPair::generate_ed25519().map_err(|e| e.to_string())?;
                let der = PrivatePkcs8KeyDer::from(pair.private_key().to_vec());
                pem("PRIVATE KEY", der.secret_pkcs8_der())
            }
        };
        let record = record(name, &pem)?;
        keys.push(TestKey { name, pem, record });
    }
    Ok(keys)
}

/// The test keys (RSA, then Ed25519), made or read once per process.
///
/// # Panics
///
/// When `$SMTP_DKIM_KEYS` names keys that cannot be read or generation fails:
/// this is a test helper.
#[must_use]
pub fn keys() -> &'static [TestKey] {
    static KEYS: OnceLock<Result<Vec<TestKey>, String>> = OnceLock::new();
    match KEYS.get_or_init(load_or_generate) {
        Ok(keys) => keys,
        Err(e) => panic!("DKIM test keys: {e}"),
    }
}

/// The messages every signer is tried with: `plain`; `dot` (lines that start
/// with a dot, one that is a lone dot: dot-stuffed on the wire); `bare-lf`
/// (bare LF and a bare CR, headers included: normalised before signing);
/// `10mib` (10 MiB of body, with dotted lines throughout).
#[must_use]
pub fn messages() -> Vec<(&'static str, Vec<u8>)> {
    let head = "From: Alice <alice@example.org>\r\n\
                To: Bob <bob@example.net>\r\n\
                Subject: DKIM test\r\n\
                Date: Thu, 1 Jan 2026 00:00:00 +0000\r\n\
                Message-ID: <dkim-test@example.org>\r\n\r\n";
    let plain = format!("{head}Hello Bob,\r\n\r\nthis message is signed.\r\n");
    let dot = format!("{head}.leading dot\r\n..two dots\r\n.\r\nafter a lone dot\r\n. \r\nend\r\n");
    let bare = "From: Alice <alice@example.org>\n\
                To: Bob <bob@example.net>\n\
                Subject: bare line feeds\n\n\
                line one\nline two\r\n.dotted\nbare CR\rend\n"
        .to_owned();
    let mut big = head.as_bytes().to_vec();
    let mut n = 0u32;
    while big.len() < 10 * 1024 * 1024 {
        let line = if n % 97 == 0 {
            format!(".line {n} starts with a dot and is dot-stuffed on the wire\r\n")
        } else {
            format!("line {n}: the quick brown fox jumps over the lazy dog 0123456789\r\n")
        };
        big.extend_from_slice(line.as_bytes());
        n += 1;
    }
    vec![
        ("plain", plain.into_bytes()),
        ("dot", dot.into_bytes()),
        ("bare-lf", bare.into_bytes()),
        ("10mib", big),
    ]
}

/// A TXT cache holding the test keys' records, which is all the verifier
/// looks up.
struct Records(HashMap<Box<str>, Txt>);

impl ResolverCache<Box<str>, Txt> for Records {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.get(name).cloned()
    }

    fn remove<Q>(&self, _: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        None
    }

    fn insert(&self, _: Box<str>, _: Txt, _: std::time::Instant) {}
}

/// Checks every DKIM signature of `stored` with `mail-auth`'s verifier,
/// resolving the key records of [`keys`] (no DNS query is made). `Ok` with the
/// number of signatures when there is at least one and all pass.
pub fn verify(stored: &[u8]) -> Result<usize, String> {
    let records: Vec<(String, String)> = keys()
        .iter()
        .map(|k| (k.dns_name(), k.record.clone()))
        .collect();
    verify_with(stored, &records)
}

/// [`verify`] with the key records given: `(name, TXT record)` pairs such as
/// `("rsa._domainkey.example.org", "v=DKIM1; k=rsa; p=...")`.
pub fn verify_with(stored: &[u8], records: &[(String, String)]) -> Result<usize, String> {
    let mut map = HashMap::new();
    for (name, record) in records {
        let parsed = DomainKey::parse(record.as_bytes()).map_err(|e| e.to_string())?;
        let txt = Txt::DomainKey(Arc::new(parsed));
        // The verifier asks for the name with or without the final dot.
        map.insert(name.clone().into_boxed_str(), txt.clone());
        map.insert(format!("{name}.").into_boxed_str(), txt);
    }
    let records = Records(map);
    let message = AuthenticatedMessage::parse(stored).ok_or("the stored message does not parse")?;
    // On a thread of its own, so that a caller inside an async runtime can
    // use it too.
    let outputs = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                runtime.block_on(async {
                    // The resolver is never asked: every record is in the cache.
                    let authenticator =
                        MessageAuthenticator::new_cloudflare().map_err(|e| e.to_string())?;
                    let params = Parameters::new(&message).with_txt_cache(&records);
                    let outputs = authenticator.verify_dkim(params).await;
                    Ok::<_, String>(
                        outputs
                            .iter()
                            .map(|o| o.result().clone())
                            .collect::<Vec<_>>(),
                    )
                })
            })
            .join()
            .map_err(|_| "the verifier panicked".to_owned())?
    })?;
    if outputs.is_empty() {
        return Err("no DKIM-Signature".to_owned());
    }
    for result in &outputs {
        if *result != DkimResult::Pass {
            return Err(format!("DKIM: {result:?}"));
        }
    }
    Ok(outputs.len())
}

/// Keeps `stored` as `$SMTP_DKIM_CORPUS/<name>.eml` for `dkimpy` when that
/// variable is set.
///
/// # Panics
///
/// When the file cannot be written: this is a test helper.
pub fn keep(name: &str, stored: &[u8]) {
    if let Some(dir) = std::env::var_os("SMTP_DKIM_CORPUS") {
        let path = std::path::Path::new(&dir).join(format!("{name}.eml"));
        if let Err(e) = std::fs::write(&path, stored) {
            panic!("{}: {e}", path.display());
        }
    }
}
