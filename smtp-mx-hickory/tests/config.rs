//! The resolver made from a resolv.conf: trusting the AD bit only when
//! every nameserver is a loopback address.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;

use smtp_mx_hickory::{Error, HickoryResolver, Mode, TrustAnchor};

/// A resolv.conf with `text`, in a directory of this test's own.
fn conf(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("smtp-mx-hickory-conf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn addrs(list: &[&str]) -> Vec<SocketAddr> {
    list.iter().map(|a| a.parse().unwrap()).collect()
}

#[test]
fn loopback_nameservers_are_trusted_for_the_ad_bit_and_others_validated() {
    let local = conf(
        "local",
        "nameserver 127.0.0.1\nnameserver ::1\noptions timeout:2\n",
    );
    let r = HickoryResolver::builder()
        .port(5353)
        .from_resolv_conf(&local)
        .unwrap();
    assert_eq!(r.mode(), Mode::TrustingAd);
    assert_eq!(
        r.upstreams(),
        addrs(&["127.0.0.1:5353", "[::1]:5353"]).as_slice()
    );

    let mixed = conf("mixed", "nameserver 127.0.0.53\nnameserver 192.0.2.1\n");
    let r = HickoryResolver::builder().from_resolv_conf(&mixed).unwrap();
    assert_eq!(r.mode(), Mode::Validating);
    assert_eq!(
        r.upstreams(),
        addrs(&["127.0.0.53:53", "192.0.2.1:53"]).as_slice()
    );

    let far = conf("far", "search example.com\nnameserver 198.51.100.7\n");
    let r = HickoryResolver::builder()
        .trust_anchor(TrustAnchor::iana_root())
        .from_resolv_conf(&far)
        .unwrap();
    assert_eq!(r.mode(), Mode::Validating);

    let none = conf("none", "search example.com\n");
    let got = HickoryResolver::builder().from_resolv_conf(&none);
    assert!(matches!(got, Err(Error::SystemConf(_))), "{got:?}");
    let missing = local.with_file_name("absent");
    let got = HickoryResolver::builder().from_resolv_conf(&missing);
    assert!(matches!(got, Err(Error::SystemConf(m)) if m.contains("absent")));
    std::fs::remove_dir_all(local.parent().unwrap()).unwrap();
}
