//! The end-to-end benchmark of smtp-rs: our blocking, Tokio and async-std
//! adapters next to lettre, mail-send, Python's smtplib and Postfix's
//! `smtp-source`, against Postfix's `smtp-sink` or the fast in-tree [`sink`],
//! with raw loopback TCP as the physical bound. See `BENCHMARKS.md` at the root
//! of the repository, and `scripts/bench`, which reproduces it.
//!
//! Every client runs as its own child process (`smtp-bench client NAME`) pinned
//! to one CPU, and reports its own wall time, CPU time and peak RSS; the
//! [`run`] module starts the sinks and the children and writes the report.
//! The [`relay`] puts a link with latency between a client and its sink.

#![forbid(unsafe_code)]

pub mod clients;
pub mod measure;
pub mod pki;
pub mod relay;
pub mod run;
pub mod sink;
