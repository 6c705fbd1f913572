//! Heap allocations the core makes per message on a pipelined session (replies
//! included, no I/O), counted by dhat's allocator. The bounds hold the hot path
//! to a handful of allocations; `cargo test -p smtp-sansio --test allocations --
//! --nocapture` prints the counts.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../benches/support/session.rs"]
mod session;

use session::{Session, text_message};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const MESSAGES: u64 = 1000;

/// Allocations (blocks) and bytes per message after a warm-up.
fn per_message(chunking: bool) -> (f64, f64, usize) {
    let mut s = Session::new(chunking, text_message(1024));
    for _ in 0..10 {
        s.send_one();
    }
    let before = dhat::HeapStats::get();
    let mut writes = 0;
    for _ in 0..MESSAGES {
        writes = s.send_one().1;
    }
    let after = dhat::HeapStats::get();
    (
        (after.total_blocks - before.total_blocks) as f64 / MESSAGES as f64,
        (after.total_bytes - before.total_bytes) as f64 / MESSAGES as f64,
        writes,
    )
}

#[test]
fn allocations_per_pipelined_message() {
    let _profiler = dhat::Profiler::builder().testing().build();
    for chunking in [false, true] {
        let (blocks, bytes, writes) = per_message(chunking);
        println!(
            "chunking={chunking}: {blocks:.1} allocations, {bytes:.0} bytes allocated per 1 KiB message, {writes} writes"
        );
        assert!(
            blocks <= BOUND,
            "{blocks} allocations per message (bound {BOUND})"
        );
        // With CHUNKING the whole message leaves in one write; with PIPELINING
        // alone, the envelope and DATA in one, the body in a second.
        assert_eq!(writes, if chunking { 1 } else { 2 });
    }
}

/// 20 when this bound was set: the caller's transaction and its addresses, the
/// operation, the commands' arguments, the four replies and the result.
const BOUND: f64 = 24.0;
