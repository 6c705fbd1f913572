//! What the server records: the messages it accepted, each connection's
//! log, and the state the listener shares with its connections.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::fault::Fault;
use crate::sock::Sock;

/// A message as the server accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Received {
    /// The number of the connection it came on (see
    /// [`MockServer::connection_logs`](crate::MockServer::connection_logs)).
    pub connection: usize,
    /// The argument of the last EHLO, HELO or LHLO.
    pub helo: String,
    /// The text after `MAIL FROM:`: the reverse path and the parameters, as sent.
    pub mail_from: String,
    /// The text after `RCPT TO:` of each accepted recipient, as sent.
    pub rcpt_to: Vec<String>,
    /// The message: DATA after un-stuffing (without the final `.` line), or the
    /// BDAT chunks joined.
    pub data: Vec<u8>,
    /// Whether it came by BDAT.
    pub chunked: bool,
    /// Whether TLS was active.
    pub tls: bool,
    /// The authenticated user, if any.
    pub auth_user: Option<String>,
}

/// Everything one connection did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionLog {
    /// Every byte the client sent (decrypted under TLS, AUTH payloads
    /// included), up to the 64 MiB cap.
    pub received: Vec<u8>,
    /// Every byte the server sent, up to 1 MiB.
    pub sent: Vec<u8>,
    /// The size of each write the server made, in order (up to 100 000): the
    /// replies to pipelined commands leave in one write.
    pub writes: Vec<usize>,
    /// The printable transcript: `C: ` and `S: ` lines, with AUTH payloads
    /// replaced by `<redacted>` and message bodies by their size.
    pub transcript: Vec<String>,
    /// Each reply line of the behavioural server, without CRLF.
    pub server_lines: Vec<String>,
    /// Lines read by [`Step::ExpectLine`](crate::Step::ExpectLine).
    pub expected_lines: Vec<String>,
    /// Differences seen by [`Step::Expect`](crate::Step::Expect).
    pub mismatches: Vec<Mismatch>,
    /// Whether TLS was established.
    pub tls: bool,
    /// Whether the TLS handshake resumed an earlier session (an abbreviated
    /// handshake from the client's session cache).
    pub tls_resumed: bool,
    /// Whether the connection is over.
    pub closed: bool,
    /// The client's address, for a TCP connection (to check a client's source
    /// address).
    pub peer: Option<SocketAddr>,
    /// Whether the client wrote before the greeting was sent (seen only
    /// under [`EarlyTalk::Watch`](crate::EarlyTalk::Watch) or
    /// [`EarlyTalk::Refuse`](crate::EarlyTalk::Refuse)).
    pub talked_first: bool,
    /// The fault that struck this connection, if one did.
    pub fault: Option<Fault>,
}

/// What the server saw.
#[derive(Debug, Default)]
pub(crate) struct Record {
    pub(crate) messages: Vec<Received>,
    pub(crate) conns: Vec<ConnectionLog>,
    pub(crate) closed: usize,
    /// Connections whose thread has ended.
    pub(crate) finished: usize,
}

/// The state shared by the handle, the accept loop and the connections.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    record: Mutex<Record>,
    pub(crate) changed: Condvar,
    /// Open connections, to shut them down with the server.
    live: Mutex<Vec<(usize, Sock)>>,
    pub(crate) stop: AtomicBool,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Record> {
        // A panicking connection thread must not make the record unreadable.
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut Record)) {
        f(&mut self.lock());
        self.changed.notify_all();
    }

    pub(crate) fn live(&self) -> MutexGuard<'_, Vec<(usize, Sock)>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `done` holds or `timeout` passes; returns the record.
    pub(crate) fn wait(
        &self,
        timeout: Duration,
        done: impl Fn(&Record) -> bool,
    ) -> MutexGuard<'_, Record> {
        // A timeout too large for the clock means: wait as long as it takes.
        let end = Instant::now().checked_add(timeout);
        let mut rec = self.lock();
        while !done(&rec) {
            let left = end.map_or(timeout, |e| e.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                break;
            }
            rec = match self.changed.wait_timeout(rec, left) {
                Ok((r, _)) => r,
                Err(p) => p.into_inner().0,
            };
        }
        rec
    }
}

/// A [`Step::Expect`](crate::Step::Expect) that got other bytes than expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The connection's number.
    pub connection: usize,
    /// The index of the step in the script.
    pub step: usize,
    /// What the step expected.
    pub expected: Vec<u8>,
    /// What arrived (shorter when the client closed first).
    pub got: Vec<u8>,
}
