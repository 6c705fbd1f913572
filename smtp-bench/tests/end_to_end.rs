//! The benchmark's own checks, cheap enough for every test run: the in-tree
//! sink receives exactly what each adapter sends, in the number of reply
//! writes (round trips) the protocol promises, and `smtp-bench --help` works.
//! Nothing here depends on speed.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use smtp_bench::clients::{self, ClientArgs};
use smtp_bench::pki;
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
        count,
        ..ClientArgs::new(addr)
    }
}

/// 50 messages of 1 KiB through each adapter: the sink counts 50 messages,
/// the bytes DATA or BDAT puts on the wire, and the writes that carried
/// transaction replies: 4 per message without PIPELINING (MAIL, RCPT, DATA,
/// the final dot), 2 with it (MAIL+RCPT+DATA, then the body), 1 with CHUNKING
/// (MAIL+RCPT+`BDAT 1024 LAST`+body in one write). The sink's turns are those
/// plus EHLO, and QUIT unless it leaves behind the last message (PIPELINING
/// offered: the client knows the last message of a count and sends it with
/// `send_and_quit`).
#[test]
fn each_adapter_sends_50_messages_in_the_promised_round_trips() {
    let offer = |pipelining, chunking| SinkConfig {
        pipelining,
        chunking,
        ..SinkConfig::default()
    };
    let cases = [
        (offer(false, false), 4, 1024 + 3),
        (offer(true, false), 2, 1024 + 3),
        (offer(true, true), 1, 1024),
    ];
    for (config, writes, wire) in cases {
        let (addr, stats) = start(config.clone());
        for adapter in ["blocking", "tokio", "async-std"] {
            let before = stats.snapshot();
            let report = clients::run(adapter, &args(&addr, 50)).unwrap();
            let d = stats.snapshot().since(&before);
            let what = format!("{adapter} against a sink offering {}", config.label());
            assert_eq!(report.messages, 50, "{what}");
            assert_eq!(report.bytes, 50 * 1024, "{what}");
            assert_eq!(d.messages, 50, "{what}");
            assert_eq!(d.tx_writes, 50 * writes, "{what}: reply writes");
            let quit = u64::from(!config.pipelining);
            assert_eq!(d.turns, 50 * writes + 1 + quit, "{what}: turns");
            assert_eq!(d.body_bytes, 50 * wire, "{what}: bytes on the wire");
        }
    }
}

#[test]
fn a_new_connection_per_message_and_the_stream_reach_the_sink() {
    let (addr, stats) = start(SinkConfig {
        pipelining: true,
        chunking: true,
        ..SinkConfig::default()
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

/// A directory of its own under the system's temporary directory.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("smtp-bench-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A sink offering PIPELINING and STARTTLS with a certificate made for the
/// test, and the CA file that clients trust.
fn start_tls(name: &str) -> (String, Arc<Stats>, std::path::PathBuf) {
    let files = pki::write_certificates(&scratch(name)).unwrap();
    let config = SinkConfig {
        pipelining: true,
        chunking: false,
        pipe_connect: false,
        link_rtt: None,
        tls: Some(pki::server_config(&files.chain, &files.key).unwrap()),
    };
    let (addr, stats) = start(config);
    (addr, stats, files.ca)
}

/// A blocking session through STARTTLS and AUTH PLAIN: the sink counts one
/// handshake, one login and the message, and four more turns than the same
/// client's plain session on the same sink (the STARTTLS reply, the server's
/// handshake flight, the second EHLO and AUTH; the TLS 1.3 session tickets
/// ride with the EHLO reply instead of making a turn of their own).
#[test]
fn a_blocking_session_through_starttls_and_auth_is_counted() {
    let (addr, stats, ca) = start_tls("blocking-session");
    let roots = pki::read_certificates(&ca).unwrap();
    let config = pki::client_config(&roots).unwrap();
    let msg = clients::message(1024);
    let session = |tls: bool| {
        let mut b = smtp_blocking::SmtpClient::builder(&addr).local_name(clients::HELO);
        b = if tls {
            b.tls(smtp_blocking::Tls::StartTls)
                .tls_config(config.clone())
                .credentials(clients::USER, clients::PASSWORD)
        } else {
            b.tls(smtp_blocking::Tls::None)
        };
        let before = stats.snapshot();
        let mut c = b.connect().unwrap();
        assert_eq!(c.is_tls(), tls);
        c.sendmail(clients::FROM, &[clients::TO], &msg).unwrap();
        c.quit().unwrap();
        stats.snapshot().since(&before)
    };
    let plain = session(false);
    let tls = session(true);
    assert_eq!(
        (plain.messages, plain.tls_handshakes, plain.auths),
        (1, 0, 0)
    );
    assert_eq!((tls.messages, tls.tls_handshakes, tls.auths), (1, 1, 1));
    assert_eq!(tls.body_bytes, 1024 + 3);
    assert_eq!(tls.turns, plain.turns + 4, "plain {plain:?}, TLS {tls:?}");
}

/// Each client of the TLS rows gets through STARTTLS and AUTH PLAIN with the
/// run's CA; ours resume every session after the first with a shared
/// configuration and none with a new configuration per connection.
#[test]
fn the_tls_clients_log_in_and_ours_resume_only_with_a_shared_config() {
    let (addr, stats, ca) = start_tls("tls-clients");
    let mut a = args(&addr, 3);
    a.new_connection = true;
    a.tls_ca = Some(ca);
    for fresh in [false, true] {
        a.fresh_tls_config = fresh;
        for adapter in ["blocking", "tokio", "async-std"] {
            let before = stats.snapshot();
            let r = clients::run(adapter, &a).unwrap();
            let d = stats.snapshot().since(&before);
            let what = format!("{adapter}, new config per connection: {fresh}");
            assert_eq!(r.messages, 3, "{what}");
            assert_eq!((d.messages, d.tls_handshakes, d.auths), (3, 3, 3), "{what}");
            assert_eq!(d.tls_resumed, if fresh { 0 } else { 2 }, "{what}");
        }
    }
    a.fresh_tls_config = false;
    a.count = 2;
    for peer in ["lettre", "mail-send"] {
        let before = stats.snapshot();
        let r = clients::run(peer, &a).unwrap();
        let d = stats.snapshot().since(&before);
        assert_eq!(r.messages, 2, "{peer}");
        assert_eq!((d.messages, d.tls_handshakes, d.auths), (2, 2, 2), "{peer}");
    }
}

/// Commands pipelined behind STARTTLS are dropped (RFC 3207 section 4.2), the
/// second EHLO offers AUTH PLAIN and no STARTTLS, and AUTH PLAIN without an
/// initial response takes the next line as it.
#[test]
fn the_sink_drops_what_was_pipelined_behind_starttls() {
    let (addr, _stats, ca) = start_tls("pipelined-starttls");
    let mut tcp = TcpStream::connect(&addr).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut plain = Vec::new();
    tcp.write_all(b"EHLO x\r\nSTARTTLS\r\nMAIL FROM:<injected@example.org>\r\n")
        .unwrap();
    let mut chunk = [0u8; 1024];
    while !plain.windows(9).any(|w| w == b"220 2.0.0") {
        let n = tcp.read(&mut chunk).unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&plain));
        plain.extend_from_slice(&chunk[..n]);
    }
    let plain = String::from_utf8(plain).unwrap();
    assert!(plain.contains("250-STARTTLS\r\n"), "{plain}");
    assert!(!plain.contains("AUTH"), "{plain}");

    let mut tls = tls_client(tcp, &ca);
    let mut exchange = |command: &[u8], until: &str| exchange(&mut tls, command, until);
    let ehlo = exchange(b"EHLO x\r\n", "250 ");
    assert!(ehlo.starts_with("250-sink.example\r\n"), "{ehlo}");
    assert!(ehlo.contains("250-AUTH PLAIN\r\n"), "{ehlo}");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    assert_eq!(exchange(b"AUTH PLAIN\r\n", "334"), "334 \r\n");
    let done = exchange(b"AGJlbmNoAGJlbmNo\r\n", "235");
    assert!(done.starts_with("235 2.7.0"), "{done}");
    let refused = exchange(b"STARTTLS\r\n", "503");
    assert!(refused.starts_with("503 "), "{refused}");
    exchange(b"QUIT\r\n", "221");
    let s = sink::query_stats(&addr).unwrap();
    assert_eq!((s.tls_handshakes, s.auths, s.messages), (1, 1, 0));
}

/// A sink without TLS refuses STARTTLS and does not offer it.
#[test]
fn a_sink_without_tls_refuses_starttls() {
    let (addr, stats) = start(SinkConfig::default());
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(b"EHLO x\r\nSTARTTLS\r\nQUIT\r\n").unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    assert!(!all.contains("STARTTLS"), "{all}");
    assert!(all.contains("\r\n503 5.5.1"), "{all}");
    assert_eq!(stats.snapshot().tls_handshakes, 0);
}

/// Many tasks through one pool: every message arrives and the latencies are
/// reported; our pools open no more connections than their size (lettre's
/// `max_size` bounds idle connections only, so it is not held to that).
#[test]
fn the_pool_clients_send_every_message_through_at_most_pool_size_connections() {
    let (addr, stats) = start(SinkConfig {
        pipelining: true,
        ..SinkConfig::default()
    });
    let mut a = args(&addr, 120);
    a.tasks = 24;
    a.pool_size = 3;
    for client in [
        "pool-tokio",
        "pool-async-std",
        "pool-lettre",
        "pool-lettre-bounded",
    ] {
        let before = stats.snapshot();
        let r = clients::run(client, &a).unwrap();
        let d = stats.snapshot().since(&before);
        assert_eq!((r.messages, d.messages), (120, 120), "{client}");
        if !client.contains("lettre") {
            assert!(
                d.connections <= 3,
                "{client}: {} connections",
                d.connections
            );
        }
        let (p50, p99) = (r.p50_us.unwrap(), r.p99_us.unwrap());
        assert!(p50 <= p99, "{client}: {p50} {p99}");
    }
}

/// 5 messages through `relay` on new connections with `adapter` (with
/// early pipelining or not) to a sink offering PIPELINING and CHUNKING: 5
/// connections, 5 messages and 2 turns each (EHLO; MAIL+RCPT+BDAT
/// LAST+QUIT in one flight), and a time per message (median and 99th
/// percentile); the sink's counts.
fn five_new_connections(
    adapter: &str,
    relay: &smtp_bench::relay::Relay,
    stats: &Stats,
    early_pipelining: bool,
) -> Snapshot {
    let before = stats.snapshot();
    let mut a = args(&relay.addr().to_string(), 5);
    a.new_connection = true;
    a.latencies = true;
    a.early_pipelining = early_pipelining;
    let r = clients::run(adapter, &a).unwrap();
    assert!(
        relay.wait_idle(std::time::Duration::from_secs(30)),
        "{adapter}"
    );
    let d = stats.snapshot().since(&before);
    assert_eq!(r.messages, 5, "{adapter}");
    assert!(r.p50_us.is_some() && r.p99_us >= r.p50_us, "{adapter}");
    assert_eq!(
        (d.messages, d.connections, d.turns),
        (5, 5, 10),
        "{adapter}"
    );
    d
}

/// Through a relay (a link with a 2 ms RTT), the sink sees the same sessions
/// as over loopback, and the relay's `wait_idle` lets every byte the client
/// sent reach it: 5 messages on new connections against a sink offering
/// PIPELINING and CHUNKING are 5 connections, 5 messages and 2 turns each
/// (EHLO; MAIL+RCPT+BDAT LAST+QUIT in one flight); a batch of 10 on one
/// connection is 10 turns plus EHLO. Every run reports a time per message
/// (median and 99th percentile).
#[test]
fn through_a_relay_the_sink_counts_the_same_sessions() {
    use smtp_bench::relay::Relay;
    use std::time::Duration;
    let (addr, stats) = start(SinkConfig {
        pipelining: true,
        chunking: true,
        ..SinkConfig::default()
    });
    let relay = Relay::start(addr.parse().unwrap(), Duration::from_millis(2)).unwrap();
    let via = relay.addr().to_string();
    for adapter in ["blocking", "tokio", "async-std"] {
        five_new_connections(adapter, &relay, &stats, false);

        let before = stats.snapshot();
        let mut b = args(&via, 10);
        b.latencies = true;
        let r = clients::run(adapter, &b).unwrap();
        assert!(relay.wait_idle(Duration::from_secs(30)), "{adapter}");
        let d = stats.snapshot().since(&before);
        assert_eq!(r.messages, 10, "{adapter}");
        assert_eq!(
            (d.messages, d.connections, d.turns),
            (10, 1, 11),
            "{adapter}"
        );
    }
    assert_eq!(relay.accepted(), 3 * 6);
    assert_eq!(relay.failure(), None);
}

/// `--batch`: the run's messages in one `send_batch_and_quit` on one
/// connection. With PIPELINING and no CHUNKING the sink counts EHLO, the
/// first envelope, and one turn per message (each message's end carries
/// the next envelope, the last one's QUIT): 12 for 10 messages, where a
/// `send_batch` and then `quit` takes 13. With CHUNKING each message is
/// one turn and QUIT goes with the last: 11.
#[test]
fn a_batch_carries_quit_behind_its_last_message() {
    for (chunking, turns) in [(false, 12), (true, 11)] {
        let (addr, stats) = start(SinkConfig {
            pipelining: true,
            chunking,
            ..SinkConfig::default()
        });
        for adapter in ["blocking", "tokio", "async-std"] {
            let before = stats.snapshot();
            let mut b = args(&addr, 10);
            b.batch = true;
            let r = clients::run(adapter, &b).unwrap();
            assert_eq!(r.messages, 10, "{adapter}");
            let d = stats.snapshot().since(&before);
            assert_eq!(
                (d.messages, d.connections, d.turns),
                (10, 1, turns),
                "{adapter}, chunking {chunking}"
            );
        }
    }
}

/// Reads from `s` until `end` has arrived (or the peer closed).
/// A TLS client over `tcp` (after the sink's 220 to STARTTLS) trusting
/// the CA in the file `ca`, for the name 127.0.0.1.
fn tls_client(
    tcp: TcpStream,
    ca: &std::path::Path,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let config = pki::client_config(&pki::read_certificates(ca).unwrap()).unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

/// Writes `command` over `tls` and reads until a line starting with
/// `until` has come; returns all that was read.
fn exchange(
    tls: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    command: &[u8],
    until: &str,
) -> String {
    tls.write_all(command).unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = tls.read(&mut chunk).unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&got);
        if text.lines().any(|l| l.starts_with(until)) {
            return text.into_owned();
        }
    }
}

fn read_until(s: &mut TcpStream, end: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut b = [0u8; 4096];
    while !got.windows(end.len()).any(|w| w == end) {
        let n = s.read(&mut b).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&b[..n]);
    }
    got
}

/// A sink offering PIPECONNECT: an EHLO already waiting when the greeting is
/// due (written before the sink accepts the connection) is answered, not
/// refused, and the greeting goes out with its reply in one turn, counted as
/// early; a client that waits for the greeting is answered as before, and
/// not counted. Without the option neither PIPECONNECT nor an early session
/// is seen.
#[test]
fn a_pipe_connect_sink_answers_an_ehlo_sent_before_the_greeting_in_one_turn() {
    use std::time::Duration;
    for pipe_connect in [true, false] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Connected and written before the sink accepts: the EHLO is there
        // when the greeting is due.
        let mut early = TcpStream::connect(addr).unwrap();
        early
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        early.write_all(b"EHLO early.example\r\n").unwrap();
        let stats = Arc::new(Stats::default());
        let s = stats.clone();
        let config = SinkConfig {
            pipelining: true,
            pipe_connect,
            ..SinkConfig::default()
        };
        let label = config.label();
        std::thread::spawn(move || sink::serve(listener, config, s));
        let text = String::from_utf8(read_until(&mut early, b"250 8BITMIME\r\n")).unwrap();
        assert!(text.starts_with("220 "), "{label}: {text:?}");
        assert_eq!(
            text.contains("250-PIPECONNECT\r\n"),
            pipe_connect,
            "{label}"
        );
        early.write_all(b"QUIT\r\n").unwrap();
        read_until(&mut early, b"221 2.0.0 Bye\r\n");

        // A client that waits for the greeting.
        let mut waits = TcpStream::connect(addr).unwrap();
        waits
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        read_until(&mut waits, b"bench sink\r\n");
        waits.write_all(b"EHLO waits.example\r\nQUIT\r\n").unwrap();
        read_until(&mut waits, b"221 2.0.0 Bye\r\n");
        drop((early, waits));

        let d = sink::query_stats(&addr.to_string()).unwrap();
        // The early session: greeting+EHLO reply, then QUIT's. The one that
        // waited: EHLO+QUIT's replies, pipelined.
        assert_eq!(d.connections, 3, "{label}");
        assert_eq!(d.turns, 3, "{label}");
        assert_eq!(d.early, u64::from(pipe_connect), "{label}");
        assert_eq!(label.contains("pipe-connect"), pipe_connect);
    }
}

/// Our adapters through a relay to a sink offering PIPELINING, CHUNKING and
/// PIPECONNECT, told the relay's RTT: every message arrives, each session
/// in two turns (the EHLO reply, alone or with the greeting; MAIL+RCPT+BDAT
/// LAST+QUIT in one flight). Waiting for the greeting, no session is
/// counted early (an answer to the greeting arrives a whole RTT after it,
/// whatever the machine's speed); with early pipelining (one capability
/// cache a run) the first connection cannot be, the four later ones may be
/// (how soon their EHLO arrives is the machine's: at most 4 is asserted).
#[test]
fn early_pipelining_clients_send_through_a_pipe_connect_sink() {
    use smtp_bench::relay::Relay;
    use std::time::Duration;
    let rtt = Duration::from_millis(2);
    let (addr, stats) = start(SinkConfig {
        pipelining: true,
        chunking: true,
        pipe_connect: true,
        link_rtt: Some(rtt),
        ..SinkConfig::default()
    });
    let relay = Relay::start(addr.parse().unwrap(), rtt).unwrap();
    for adapter in ["blocking", "tokio", "async-std"] {
        let d = five_new_connections(adapter, &relay, &stats, false);
        assert_eq!(d.early, 0, "{adapter} waiting for the greeting");
        let d = five_new_connections(adapter, &relay, &stats, true);
        assert!(d.early <= 4, "{adapter}: {d:?}");
    }
    assert_eq!(relay.failure(), None);
}

/// A sink offering PIPELINING, CHUNKING, PIPECONNECT and STARTTLS with a
/// certificate made for the test, told `link_rtt`; and the CA file.
fn start_early_tls(
    name: &str,
    link_rtt: Option<std::time::Duration>,
) -> (SinkConfig, std::path::PathBuf) {
    let files = pki::write_certificates(&scratch(name)).unwrap();
    let config = SinkConfig {
        pipelining: true,
        chunking: true,
        pipe_connect: true,
        link_rtt,
        tls: Some(pki::server_config(&files.chain, &files.key).unwrap()),
    };
    (config, files.ca)
}

/// EHLO and STARTTLS written before the greeting to a sink offering
/// PIPECONNECT and STARTTLS: the greeting, the EHLO reply (PIPECONNECT,
/// CHUNKING and STARTTLS offered) and the 220 go out in one turn, counted
/// early; then the handshake, an EHLO inside TLS offering CHUNKING and AUTH
/// PLAIN, AUTH, and MAIL+RCPT+BDAT LAST+body+QUIT in one flight: 5 turns,
/// one handshake, one login, one message of exactly the BDAT size.
#[test]
fn a_pipe_connect_sink_serves_an_early_ehlo_and_starttls_over_tls() {
    use std::time::Duration;
    let (config, ca) = start_early_tls("early-starttls", None);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Connected and written before the sink accepts: both commands are
    // there when the greeting is due.
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    tcp.write_all(b"EHLO early.example\r\nSTARTTLS\r\n")
        .unwrap();
    let stats = Arc::new(Stats::default());
    let s = stats.clone();
    std::thread::spawn(move || sink::serve(listener, config, s));
    let first = read_until(&mut tcp, b"220 2.0.0 Ready to start TLS\r\n");
    let first = String::from_utf8(first).unwrap();
    assert!(first.starts_with("220 sink.example ESMTP"), "{first:?}");
    for offered in ["PIPELINING", "CHUNKING", "PIPECONNECT", "STARTTLS"] {
        assert!(first.contains(&format!("250-{offered}\r\n")), "{first:?}");
    }
    assert!(first.ends_with("250 8BITMIME\r\n220 2.0.0 Ready to start TLS\r\n"));

    let mut tls = tls_client(tcp, &ca);
    let mut exchange = |command: &[u8], until: &str| exchange(&mut tls, command, until);
    let ehlo = exchange(b"EHLO early.example\r\n", "250 ");
    assert!(ehlo.contains("250-CHUNKING\r\n"), "{ehlo}");
    assert!(ehlo.contains("250-AUTH PLAIN\r\n"), "{ehlo}");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    let auth = exchange(b"AUTH PLAIN AGJlbmNoAGJlbmNo\r\n", "235");
    assert!(auth.starts_with("235 2.7.0"), "{auth}");
    let done = exchange(
        b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nBDAT 5 LAST\r\nhelloQUIT\r\n",
        "221",
    );
    assert_eq!(
        done,
        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: queued\r\n221 2.0.0 Bye\r\n"
    );
    let d = sink::query_stats(&addr.to_string()).unwrap();
    assert_eq!(
        (d.connections, d.turns, d.early),
        (2, 5, 1),
        "the session and the query: {d:?}"
    );
    assert_eq!(
        (d.tls_handshakes, d.auths, d.messages, d.body_bytes),
        (1, 1, 1, 5),
        "{d:?}"
    );
}

/// Our adapters with STARTTLS and AUTH PLAIN through a relay to a sink
/// offering PIPELINING, CHUNKING, PIPECONNECT and STARTTLS, 5 new
/// connections each: every message arrives over TLS after a login, as BDAT
/// (the body's exact bytes). Waiting for the greeting a session takes 6
/// turns (EHLO, STARTTLS, the handshake, EHLO, AUTH, MAIL+RCPT+BDAT
/// LAST+QUIT) and none is early; with early pipelining the first still
/// does, the four later ones write EHLO and STARTTLS before the greeting and
/// take 5 (both answered in one turn, whether the greeting waited for them
/// or not: how soon they arrive is the machine's, so at most 4 are asserted
/// early).
#[test]
fn early_pipelining_clients_run_starttls_behind_the_early_ehlo() {
    use smtp_bench::relay::Relay;
    use std::time::Duration;
    let rtt = Duration::from_millis(2);
    let (config, ca) = start_early_tls("early-starttls-clients", Some(rtt));
    let (addr, stats) = start(config);
    let relay = Relay::start(addr.parse().unwrap(), rtt).unwrap();
    let mut a = args(&relay.addr().to_string(), 5);
    a.new_connection = true;
    a.tls_ca = Some(ca);
    for adapter in ["blocking", "tokio", "async-std"] {
        for early in [false, true] {
            a.early_pipelining = early;
            let before = stats.snapshot();
            let r = clients::run(adapter, &a).unwrap();
            assert!(relay.wait_idle(Duration::from_secs(30)), "{adapter}");
            let d = stats.snapshot().since(&before);
            let what = format!("{adapter}, early pipelining {early}: {d:?}");
            assert_eq!(r.messages, 5, "{what}");
            assert_eq!(
                (d.messages, d.connections, d.tls_handshakes, d.auths),
                (5, 5, 5, 5),
                "{what}"
            );
            assert_eq!(d.body_bytes, 5 * 1024, "{what}");
            assert_eq!(d.turns, if early { 6 + 4 * 5 } else { 5 * 6 }, "{what}");
            assert!(d.early <= if early { 4 } else { 0 }, "{what}");
        }
    }
    assert_eq!(relay.failure(), None);
}
