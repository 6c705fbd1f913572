//! The benchmark's own checks, cheap enough for every test run: the in-tree
//! sink receives exactly what each adapter sends, in the number of reply
//! writes (round trips) the protocol promises, and `smtp-bench --help` works.
//! Nothing here depends on speed.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use smtp_bench::clients::{self, ClientArgs};
use smtp_bench::sink::{self, SinkConfig, Snapshot, Stats};

fn start(config: SinkConfig) -> (String, Arc<Stats>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let stats = Arc::new(Stats::default());
    let s = stats.clone();
    std::thread::spawn(move || sink::serve(listener, config, s));
    (addr, stats)
}

fn args(addr: &str, count: u64) -> ClientArgs {
    ClientArgs {
        addr: addr.to_owned(),
        count,
        size: 1024,
        new_connection: false,
        no_pipelining: false,
        no_chunking: false,
        seconds: None,
    }
}

/// 50 messages of 1 KiB through each adapter: the sink counts 50 messages,
/// the bytes DATA or BDAT puts on the wire, and the writes that carried
/// transaction replies: 4 per message without PIPELINING (MAIL, RCPT, DATA,
/// the final dot), 2 with it (MAIL+RCPT+DATA, then the body), 1 with CHUNKING
/// (MAIL+RCPT+`BDAT 1024 LAST`+body in one write).
#[test]
fn each_adapter_sends_50_messages_in_the_promised_round_trips() {
    let cases = [
        (
            SinkConfig {
                pipelining: false,
                chunking: false,
            },
            4,
            1024 + 3,
        ),
        (
            SinkConfig {
                pipelining: true,
                chunking: false,
            },
            2,
            1024 + 3,
        ),
        (
            SinkConfig {
                pipelining: true,
                chunking: true,
            },
            1,
            1024,
        ),
    ];
    for (config, writes, wire) in cases {
        let (addr, stats) = start(config);
        for adapter in ["blocking", "tokio", "async-std"] {
            let before = stats.snapshot();
            let report = clients::run(adapter, &args(&addr, 50)).unwrap();
            let d = stats.snapshot().since(&before);
            let what = format!("{adapter} against a sink offering {}", config.label());
            assert_eq!(report.messages, 50, "{what}");
            assert_eq!(report.bytes, 50 * 1024, "{what}");
            assert_eq!(d.messages, 50, "{what}");
            assert_eq!(d.tx_writes, 50 * writes, "{what}: reply writes");
            assert_eq!(d.body_bytes, 50 * wire, "{what}: bytes on the wire");
        }
    }
}

#[test]
fn a_new_connection_per_message_and_the_stream_reach_the_sink() {
    let (addr, stats) = start(SinkConfig {
        pipelining: true,
        chunking: true,
    });
    let mut a = args(&addr, 5);
    a.new_connection = true;
    for adapter in ["blocking", "tokio", "async-std"] {
        let before = stats.snapshot();
        clients::run(adapter, &a).unwrap();
        let d = stats.snapshot().since(&before);
        assert_eq!((d.messages, d.connections), (5, 5), "{adapter}");
    }
    let mut s = args(&addr, 1);
    s.size = 3 << 20;
    for adapter in ["stream-blocking", "stream-tokio", "stream-async-std"] {
        let before = stats.snapshot();
        let r = clients::run(adapter, &s).unwrap();
        let d = stats.snapshot().since(&before);
        assert_eq!(r.bytes, 3 << 20, "{adapter}");
        assert_eq!((d.messages, d.body_bytes), (1, 3 << 20), "{adapter}");
    }
}

/// The end of DATA is found when the terminator is split across reads, and a
/// dot-stuffed line is not taken for it.
#[test]
fn the_sink_finds_a_terminator_split_across_writes() {
    let (addr, _stats) = start(SinkConfig::default());
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_nodelay(true).unwrap();
    let mut greeting = [0u8; 128];
    let _ = s.read(&mut greeting).unwrap();
    s.write_all(b"HELO x\r\n").unwrap();
    let _ = s.read(&mut greeting).unwrap();
    for part in [
        &b"MAIL FROM:<a@b>\r\n"[..],
        b"RCPT TO:<c@d>\r\n",
        b"DATA\r\n",
        b"Subject: x\r\n\r\n..not the end\r\n",
        b"\r",
        b"\n.",
        b"\r",
        b"\nQUIT\r\n",
    ] {
        s.write_all(part).unwrap();
    }
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    assert!(all.contains("250 2.0.0 Ok: queued"), "{all}");
    assert!(all.ends_with("221 2.0.0 Bye\r\n"), "{all}");
    let stats = sink::query_stats(&addr).unwrap();
    assert_eq!(stats.messages, 1);
    assert_eq!(
        stats.body_bytes,
        (b"Subject: x\r\n\r\n..not the end\r\n".len() + 5) as u64
    );
    assert_eq!(
        Snapshot::parse("250 messages=3 reads=2").unwrap().messages,
        3
    );
}

#[test]
fn help_prints_usage() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_smtp-bench"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for word in ["smtp-bench run", "smtp-bench sink", "smtp-bench client"] {
        assert!(text.contains(word), "{text}");
    }
}
