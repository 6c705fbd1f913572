//! The cost of a delivery's decisions, with no I/O: scripted answers fed to
//! `Delivery` as fast as it asks, per domain (MX order, addresses, MTA-STS
//! from the cache, TLSA and the DANE plan, the transaction's outcome and the
//! report).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use smtp_mx::Delivery;
use smtp_mx::dane::Tlsa;
use smtp_mx::dns::{DnsAnswer, Rcode, Security};
use smtp_mx::engine::{Answer, Config, MessageSecurity, Opening, PolicyFetch, Query, Request};
use smtp_mx::route::MxRecord;
use smtp_mx::sts::StsCache;
use smtp_sansio::{Address, RecipientResult, Reply, TransactionResult};

const NOW: u64 = 1_800_000_000;

fn answer(name: &str, query: Query) -> Answer {
    let secure = Security::Secure;
    match query {
        Query::Mx => Answer::Mx(DnsAnswer::records(
            vec![
                MxRecord::new(10, &format!("mx1.{name}")),
                MxRecord::new(10, &format!("mx2.{name}")),
                MxRecord::new(20, &format!("backup.{name}")),
            ],
            secure,
        )),
        Query::A => {
            let ip: IpAddr = [192, 0, 2, (name.len() % 250) as u8].into();
            Answer::Address(DnsAnswer::records(vec![ip], secure))
        }
        Query::Aaaa => Answer::Address(DnsAnswer::empty(Rcode::NoError, secure)),
        Query::Tlsa => Answer::Tlsa(DnsAnswer::records(
            vec![Tlsa {
                usage: 3,
                selector: 1,
                matching: 1,
                data: vec![7; 32],
            }],
            secure,
        )),
        Query::Txt => Answer::Txt(DnsAnswer::records(
            vec!["v=STSv1; id=20260101".to_owned()],
            Security::Insecure,
        )),
    }
}

fn policy() -> PolicyFetch {
    PolicyFetch::Response {
        status: 200,
        content_type: Some("text/plain".into()),
        body: b"version: STSv1\nmode: enforce\nmax_age: 86400\nmx: *.d0.example\nmx: *.d1.example\nmx: *.d2.example\n".to_vec(),
    }
}

/// One delivery to `rcpts`, from `cache`; the cache after it.
fn deliver(rcpts: &[String], cache: StsCache) -> StsCache {
    let mut d = Delivery::new(
        rcpts,
        MessageSecurity::default(),
        Config::default(),
        cache,
        NOW,
        9,
    );
    while let Some(r) = d.next_request() {
        match r {
            Request::Resolve { id, name, query } => d.answer(id, answer(&name, query)).unwrap(),
            Request::FetchPolicy { id, .. } => d.policy_fetched(id, policy()).unwrap(),
            Request::Connect(c) => d
                .opened(
                    c.id,
                    Opening::Opened {
                        tls: true,
                        requiretls: true,
                    },
                )
                .unwrap(),
            Request::Transaction(t) => {
                let ok = Reply::new(250, vec!["2.0.0 Ok: queued as Q".into()]);
                let result = TransactionResult {
                    mail_reply: ok.clone(),
                    recipients: t
                        .addresses
                        .iter()
                        .map(|a| RecipientResult {
                            address: Address::new(a).unwrap(),
                            rcpt_reply: ok.clone(),
                            final_reply: None,
                        })
                        .collect(),
                    final_reply: Some(ok),
                    chunked: false,
                };
                d.transaction_done(t.id, Ok(result)).unwrap();
            }
            Request::Close { .. } => {}
        }
    }
    black_box(d.report().unwrap());
    d.into_cache()
}

fn benches(c: &mut Criterion) {
    let rcpts: Vec<String> = (0..3)
        .flat_map(|d| [format!("a@d{d}.example"), format!("b@d{d}.example")])
        .collect();
    let warm = deliver(&rcpts, StsCache::new());
    let mut g = c.benchmark_group("delivery");
    // Three domains per iteration: divide by three for the cost per domain.
    g.bench_function("three_domains_cached_policy_dane", |b| {
        b.iter(|| deliver(black_box(&rcpts), warm.clone()));
    });
    g.bench_function("three_domains_policy_fetched", |b| {
        b.iter(|| deliver(black_box(&rcpts), StsCache::new()));
    });
    g.finish();
}

criterion_group!(delivery, benches);
criterion_main!(delivery);
