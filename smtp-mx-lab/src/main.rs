//! The DNSSEC lab of direct delivery, run by `scripts/mx-lab`.
//!
//! `smtp-mx-lab prepare DIR` makes the lab's CA and certificates and writes
//! them with the TLSA digests the zones need (`DIR/digests.env`).
//! `smtp-mx-lab run DIR [FILTER]`, inside the lab's network namespace (NSD,
//! Unbound on 127.0.0.1:53, `/etc/resolv.conf` pointing at it), starts the
//! MTA-STS policy server on 127.0.0.20:443 and runs every named scenario
//! (those whose name contains FILTER): each starts its mail exchangers on
//! 127.0.0.11-19:25, delivers with `smtp_async::mx::deliver` on Tokio and
//! asserts the outcome class, the enhanced code and the ordered (MX,
//! address) attempts of each destination, that no server saw `MAIL FROM`
//! in plaintext where a policy forbids it, and its own checks; the DANE
//! scenarios also ask posttls-finger and compare its verdict with ours.
//! Prints one line per check and last `N passed, N failed`; exits 1 on a
//! failure.
#![forbid(unsafe_code)]

mod backend;
mod checks;
mod dane;
mod finger;
mod pki;
mod policy;
mod route;
mod scenario;
mod servers;
mod sts;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use smtp_async::mx::HttpsPolicyFetcher;
use smtp_tokio::Tokio;

use crate::scenario::{Lab, Scenario};

/// A failure of the lab itself (not of a scenario).
#[derive(Debug)]
pub struct Failure(pub String);

/// Every scenario, in the order run.
fn all_scenarios() -> Vec<Scenario> {
    let mut list: Vec<Scenario> = dane::scenarios()
        .into_iter()
        .map(|(s, oracle)| s.oracle(oracle))
        .collect();
    list.extend(sts::scenarios());
    let routes = route::scenarios();
    let validating = dane::validating(&routes);
    list.extend(routes);
    list.extend(validating);
    list
}

/// The `mta-sts` host of every recipient domain of the scenarios.
fn policy_hosts() -> Vec<String> {
    let mut hosts: Vec<String> = all_scenarios()
        .iter()
        .flat_map(|s| s.to.clone())
        .filter_map(|a| a.split_once('@').map(|(_, d)| format!("mta-sts.{d}")))
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

fn lab(dir: &Path) -> Result<Lab, Failure> {
    let pki = pki::load(dir)?;
    let policy = policy::PolicyServer::start(pki.policy.server_config())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure(format!("the runtime: {e}")))?;
    let (trusting, validating) = {
        let _guard = runtime.enter();
        (backend::trusting()?, backend::validating(dir)?)
    };
    let fetcher = HttpsPolicyFetcher::<Tokio>::new().tls_config(pki.policy.client_config());
    let finger_conf = finger::config_dir(dir)?;
    Ok(Lab {
        pki,
        policy,
        trusting,
        validating,
        fetcher: Arc::new(fetcher),
        runtime,
        finger_conf,
    })
}

/// Runs the scenarios; the numbers of passed and failed checks.
fn run(dir: &Path, filter: Option<&str>) -> Result<(usize, usize), Failure> {
    let lab = lab(dir)?;
    let (mut passed, mut failed) = (0, 0);
    let (mut agreed, mut shared) = (0, 0);
    let start = Instant::now();
    for sc in all_scenarios() {
        if filter.is_some_and(|f| !sc.name.contains(f)) {
            continue;
        }
        let ran = match lab.run(&sc) {
            Ok(ran) => ran,
            Err(e) => {
                failed += 1;
                println!("FAIL {}: {e}", sc.name);
                continue;
            }
        };
        match &ran.checked {
            Ok(()) => {
                passed += 1;
                println!("ok   {} ({:.2} s)", sc.name, ran.elapsed.as_secs_f64());
            }
            Err(e) => {
                failed += 1;
                println!("FAIL {}: {e}", sc.name);
            }
        }
        match ran.oracle {
            None => {}
            Some(Ok(j)) if j.ours == j.theirs => {
                passed += 1;
                agreed += 1;
                shared += 1;
                println!(
                    "ok   posttls-finger agrees on {}: {:?} ({})",
                    sc.name,
                    j.ours,
                    j.line.trim()
                );
            }
            Some(Ok(j)) => {
                failed += 1;
                shared += 1;
                println!(
                    "FAIL posttls-finger disagrees on {}: ours {:?}, posttls-finger {:?}\n{}",
                    sc.name,
                    j.ours,
                    j.theirs,
                    j.output
                        .lines()
                        .map(|l| format!("    | {l}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
            Some(Err(e)) => {
                failed += 1;
                shared += 1;
                println!("FAIL posttls-finger on {}: {e}", sc.name);
            }
        }
    }
    println!(
        "posttls-finger agreed in {agreed} of {shared} shared DANE scenarios; scenarios took {:.1} s",
        start.elapsed().as_secs_f64()
    );
    Ok((passed, failed))
}

/// A diagnostic: both resolvers' answers to `query` for `name`.
fn lookup(dir: &Path, name: &str, query: &str) -> Result<(), Failure> {
    use smtp_async::mx::Query;
    let query = match query.to_ascii_uppercase().as_str() {
        "MX" => Query::Mx,
        "A" => Query::A,
        "AAAA" => Query::Aaaa,
        "TLSA" => Query::Tlsa,
        "TXT" => Query::Txt,
        other => return Err(Failure(format!("unknown query type {other}"))),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure(format!("the runtime: {e}")))?;
    let _guard = runtime.enter();
    for (label, r) in [
        ("trusting AD", backend::trusting()?),
        ("validating", backend::validating(dir)?),
    ] {
        let answer = runtime.block_on(r.lookup(name, query));
        println!("{label}: {answer:?}");
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [cmd, dir] if cmd == "prepare" => {
            pki::prepare(&PathBuf::from(dir), &policy_hosts()).map(|()| None)
        }
        [cmd, dir, name, query] if cmd == "lookup" => {
            lookup(&PathBuf::from(dir), name, query).map(|()| None)
        }
        [cmd, dir, rest @ ..] if cmd == "run" && rest.len() <= 1 => {
            run(&PathBuf::from(dir), rest.first().map(String::as_str)).map(Some)
        }
        _ => Err(Failure(
            "usage: smtp-mx-lab prepare DIR | run DIR [FILTER] | lookup DIR NAME TYPE".into(),
        )),
    };
    match result {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some((passed, failed))) => {
            println!("{passed} passed, {failed} failed");
            if failed == 0 && passed > 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(Failure(e)) => {
            eprintln!("smtp-mx-lab: {e}");
            // A run that could not start counts as one failure.
            if args.first().is_some_and(|c| c == "run") {
                println!("0 passed, 1 failed");
            }
            ExitCode::FAILURE
        }
    }
}
