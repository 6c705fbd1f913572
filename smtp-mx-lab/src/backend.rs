//! The resolvers of the lab, both over hickory (`smtp-mx-hickory`): one
//! trusting the AD bit of Unbound on 127.0.0.1:53 (what Postfix does), one
//! validating in the process from the lab's trust anchor (the DNSKEY of
//! `test.`, written by scripts/mx-lab). The validating one asks NSD
//! (127.0.0.2:5300, authoritative for every lab zone, parent and children)
//! directly, so that no other validator stands between it and the bogus
//! zones: it must find them bogus itself.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use smtp_async::mx::Resolver;
use smtp_mx_hickory::{HickoryResolver, TrustAnchor};

use crate::Failure;

/// Unbound.
const UNBOUND: ([u8; 4], u16) = ([127, 0, 0, 1], 53);

/// The resolver trusting Unbound's AD bit.
pub fn trusting() -> Result<Arc<dyn Resolver>, Failure> {
    let r = HickoryResolver::trusting_ad(SocketAddr::from(UNBOUND))
        .map_err(|e| Failure(format!("the trusting resolver: {e}")))?;
    Ok(Arc::new(r))
}

/// NSD.
const NSD: ([u8; 4], u16) = ([127, 0, 0, 2], 5300);

/// The resolver validating with the anchor in `dir/test.dnskey`, asking
/// NSD.
pub fn validating(dir: &Path) -> Result<Arc<dyn Resolver>, Failure> {
    let anchor = TrustAnchor::from_file(&dir.join("test.dnskey"))
        .map_err(|e| Failure(format!("the trust anchor: {e}")))?;
    let r = HickoryResolver::validating(&[SocketAddr::from(NSD)], anchor)
        .map_err(|e| Failure(format!("the validating resolver: {e}")))?;
    Ok(Arc::new(r))
}
