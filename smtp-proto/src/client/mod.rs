//! The client session state machine: RFC 5321 sections 3 and 4 (session, mail
//! transaction, replies), RFC 2920 (PIPELINING), RFC 3030 (CHUNKING), RFC 3207
//! (STARTTLS), RFC 4954 (AUTH), RFC 2033 (LMTP), RFC 5321 section 4.5.3.2 (timeouts).
//!
//! The [`Client`] owns no socket and reads no clock: the driver feeds it bytes
//! ([`Client::handle_input`]), end of stream ([`Client::handle_eof`]), expired
//! deadlines ([`Client::handle_timeout`]) and the end of a TLS handshake
//! ([`Client::tls_established`]), each with the current time; it enqueues
//! operations, each of which returns a typed handle ([`Op<T>`]: `T` is what it
//! completes with); and it drains [`Client::poll_output`] until that returns
//! [`Output::Wait`] or [`Output::Closed`]. A driver that runs one operation at a
//! time calls [`Client::drive`] instead, which yields the same [`Output`]
//! actions for that operation and ends with its typed result.
//!
//! One operation runs at a time, in the order enqueued. Within an operation,
//! commands are pipelined when the server offers PIPELINING: MAIL, every RCPT and
//! DATA (or the first BDAT chunk) leave in one write, and replies are matched to
//! commands strictly in order. The exceptions to "one at a time", both
//! RFC 2920 section 3.1's: a QUIT enqueued right behind a transaction leaves
//! with the end of its message, see [`Client::quit`]; so does the envelope of
//! a transaction enqueued right behind it, see [`Client::send`].
//!
//! This file holds the public types, the inputs and the queries. Each family of
//! operations has its own file: `hello` (greeting, EHLO/HELO/LHLO, STARTTLS),
//! `auth` (AUTH), `open` (the composed open: greeting, EHLO, STARTTLS and
//! AUTH by plan), `mail` (the whole mail transaction), `extensions` (the checks
//! against the server's extensions before MAIL), `stream` (the message body),
//! `commands` (the low-level commands), `dispatch` (starting operations and
//! routing replies to them) and `drive` (the output queue and the driver loop).

mod auth;
mod commands;
mod config;
mod dispatch;
mod drive;
mod extensions;
mod hello;
mod mail;
mod op;
mod open;
mod stream;
mod transaction;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use config::{Config, Protocol, Timeouts, armed_wait_serves, deadline_after};
pub use op::{Completion, Op};
pub use open::{OpenAuth, OpenPlan, Opened, StartTlsPolicy};
pub use transaction::{
    PartsCursor, PreparedMessage, Recipient, RecipientResult, Transaction, TransactionResult,
};

use crate::body::LineEndings;
use crate::capabilities::Capabilities;
use crate::command::{Command, Domain};
use crate::error::{Error, ProtocolError, UsageError};
use crate::reply::{Reply, ReplyParser};

use auth::AuthOp;
use commands::DataOp;
use dispatch::Expect;
use hello::{Hello, StartTlsState};
use mail::TxOp;
use open::OpenOp;
use stream::BodyStream;

/// Identifies an operation; its [`Event::Completed`] carries the same id. The
/// operations return it wrapped in a typed [`Op<T>`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[must_use]
pub struct OpId(u64);

impl OpId {
    /// The implicit first operation: waiting for the server's greeting.
    pub const GREETING: OpId = OpId(0);
}

/// What the driver must do next: the one vocabulary of driver actions, from
/// [`Client::poll_output`] (every operation's events, results as [`Outcome`])
/// and from [`Client::drive`] (one operation's, its result typed `T`).
///
/// `Debug` shows how many bytes a [`Output::Transmit`] holds, not the bytes
/// (they may be an AUTH payload).
#[must_use]
pub enum Output<T = Outcome> {
    /// Write these bytes to the transport, all of them, in order; then hand
    /// the buffer to [`Client::recycle`] if you like.
    Transmit(Vec<u8>),
    /// Something happened that the caller must see: the body is wanted
    /// (call [`Client::send_body`] once), or an operation completed.
    Event(Event<T>),
    /// Run the TLS client handshake on the transport now, then call
    /// [`Client::tls_established`]; if it failed, call
    /// [`Client::handle_transport_error`] (or [`Client::handle_timeout`] once
    /// `deadline` has passed). Do not read plaintext before it.
    StartTls {
        /// When the whole handshake must be over, however the server paces
        /// it: [`Timeouts::tls_handshake`] after the 220 to STARTTLS arrived
        /// (the same as [`Client::tls_handshake_deadline`]).
        deadline: Instant,
    },
    /// A transcript line (only when [`Config::trace`] is on); secrets redacted.
    Trace(Trace),
    /// Nothing to do until input arrives or the deadline passes: read once,
    /// until the deadline at the latest, then feed [`Client::handle_input`],
    /// [`Client::handle_eof`] or [`Client::handle_timeout`]. `None`: nothing is
    /// awaited from the server ([`Client::drive`] never returns it).
    Wait(Option<Instant>),
    /// The session is over: close the transport.
    Closed,
}

impl<T: std::fmt::Debug> std::fmt::Debug for Output<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Transmit(bytes) => write!(f, "Transmit(<{} bytes>)", bytes.len()),
            Output::Event(e) => f.debug_tuple("Event").field(e).finish(),
            Output::StartTls { deadline } => f
                .debug_struct("StartTls")
                .field("deadline", deadline)
                .finish(),
            Output::Trace(t) => f.debug_tuple("Trace").field(t).finish(),
            Output::Wait(d) => f.debug_tuple("Wait").field(d).finish(),
            Output::Closed => f.write_str("Closed"),
        }
    }
}

/// One transcript line, as smtplib's debug output prints them. Its control
/// characters are escaped ([`Escaped`](crate::reply::Escaped): `\x1b` for
/// ESC), so a line can go to a terminal or a log as it is: a greeting or
/// reply cannot inject terminal sequences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trace {
    /// A line the client sent (AUTH payloads replaced by `<redacted>`; message
    /// bodies summarised by their size).
    Sent(String),
    /// A reply line the server sent.
    Received(String),
}

/// Events for the caller.
#[derive(Debug)]
#[must_use]
pub enum Event<T = Outcome> {
    /// The operation `id` has finished.
    Completed {
        /// The operation.
        id: OpId,
        /// Its result.
        result: Result<T, Error>,
    },
    /// The operation `id` (a transaction or DATA) wants the next chunk of the
    /// message: call [`Client::send_body`] once.
    BodyWanted {
        /// The operation.
        id: OpId,
    },
}

/// What a successful operation produced.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The server's reply (for commands that return one reply, whatever its code).
    Reply(Reply),
    /// One reply per accepted recipient (low-level DATA over LMTP).
    Replies(Vec<Reply>),
    /// The result of a whole transaction.
    Transaction(TransactionResult),
    /// The result of [`Client::open`].
    Opened(Box<Opened>),
}

impl Outcome {
    /// The reply, for single-reply outcomes.
    #[must_use]
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Outcome::Reply(r) => Some(r),
            _ => None,
        }
    }
}

/// The session's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    /// STARTTLS was accepted; waiting for the driver's handshake.
    AwaitTls,
    Closed,
}

/// An operation's state, one variant per kind of operation.
#[derive(Debug)]
enum OpState {
    Greeting,
    /// Explicit EHLO (LHLO under LMTP) or HELO: returns the reply whatever it is.
    Hello {
        helo: bool,
        name: Option<Domain>,
    },
    /// `ehlo_or_helo_if_needed`.
    HelloIfNeeded,
    StartTls(StartTlsState),
    Auth(Box<AuthOp>),
    /// [`Client::open`]: STARTTLS and AUTH by plan, after the prelude.
    Open(Box<OpenOp>),
    Tx(Box<TxOp>),
    Data(DataOp),
    Simple(Command, Expect),
    /// QUIT; `sent` once it went out pipelined behind the end of a message,
    /// before the operation started.
    Quit {
        sent: bool,
    },
}

/// The running operation.
#[derive(Debug)]
struct Active {
    /// Its id, which its [`Event::Completed`] carries.
    id: OpId,
    /// Its state.
    op: OpState,
    /// The EHLO-or-HELO prelude it is waiting on before it can start, if any.
    hello: Option<Hello>,
}

/// A sans-IO SMTP or LMTP client session.
///
/// Create it when the transport is connected (after the TLS handshake for
/// implicit TLS); it starts by waiting for the greeting ([`Op::GREETING`]).
///
/// Its `Debug` shows the session's state and the sizes of its buffers, never
/// their bytes: the output buffer and queue hold an AUTH payload (a password
/// in base64) until the driver takes it.
pub struct Client {
    config: Config,
    parser: ReplyParser,
    inbuf: Vec<u8>,
    out: VecDeque<Output>,
    tx: Vec<u8>,
    phase: Phase,
    fatal: Option<Error>,
    caps: Option<Capabilities>,
    greeting: Option<Reply>,
    ehlo_reply: Option<Reply>,
    helo_reply: Option<Reply>,
    tls: bool,
    /// The TLS in use verified the server's certificate ([`Config::tls_verified`]
    /// when it was established).
    tls_verified: bool,
    authenticated: bool,
    /// LMTP: recipients accepted by low-level RCPT since the last MAIL.
    lmtp_accepted: usize,
    /// A mail transaction may be open on the server ([`Client::in_transaction`]).
    mail_open: bool,
    inflight: VecDeque<Expect>,
    /// How many of the replies awaited (at the back of `inflight`) belong to
    /// the transaction queued behind the running one, whose envelope went
    /// out behind the end of the running one's message
    /// ([`Client::pipeline_next_transaction`]).
    behind: usize,
    deadline: Option<Instant>,
    /// When the TLS handshake asked for by [`Output::StartTls`] must be over.
    tls_deadline: Option<Instant>,
    queue: VecDeque<(OpId, OpState)>,
    active: Option<Active>,
    body: Option<BodyStream>,
    /// The id of the running operation (kept while its state is taken out).
    current: OpId,
    /// A `BodyWanted` for this operation is due once pending bytes are flushed.
    want_body: Option<OpId>,
    /// Results for [`Client::drive`]: the operation its caller waits for, and
    /// operations enqueued after it that completed meanwhile (a QUIT
    /// answered with the reply to the message it went out behind), kept
    /// until they are driven.
    driven: VecDeque<(OpId, Result<Outcome, Error>)>,
    /// [`Client::drive`] has returned [`Output::Closed`] for this session.
    close_driven: bool,
    /// Where the end of a message (its last byte) lies in `tx`, until `tx`
    /// goes out in an [`Output::Transmit`].
    end_at: Option<usize>,
    /// Where it lies in the last [`Output::Transmit`], if that one holds it:
    /// what [`Client::handle_write_error`] compares the bytes written with.
    end_in_transmit: Option<usize>,
    next_id: u64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .field("phase", &self.phase)
            .field("tls", &self.tls)
            .field("authenticated", &self.authenticated)
            .field("greeting", &self.greeting)
            .field("capabilities", &self.caps)
            .field("fatal", &self.fatal)
            .field("active", &self.active.as_ref().map(|a| a.id))
            .field("queued", &self.queue.len())
            .field("inflight", &self.inflight)
            .field("deadline", &self.deadline)
            .field("output_bytes", &self.tx.len())
            .field("outputs_queued", &self.out.len())
            .field("input_bytes", &self.inbuf.len())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A session on a freshly connected transport, waiting for the greeting.
    pub fn new(config: Config, now: Instant) -> Client {
        let mut c = Client {
            parser: ReplyParser::new(config.reply_limits),
            tls: config.tls_on_connect,
            tls_verified: config.tls_on_connect && config.tls_verified,
            config,
            inbuf: Vec::new(),
            out: VecDeque::new(),
            tx: Vec::new(),
            phase: Phase::Open,
            fatal: None,
            caps: None,
            greeting: None,
            ehlo_reply: None,
            helo_reply: None,
            authenticated: false,
            lmtp_accepted: 0,
            mail_open: false,
            inflight: VecDeque::new(),
            behind: 0,
            deadline: None,
            tls_deadline: None,
            queue: VecDeque::new(),
            active: Some(Active {
                id: OpId::GREETING,
                op: OpState::Greeting,
                hello: None,
            }),
            body: None,
            current: OpId::GREETING,
            want_body: None,
            driven: VecDeque::new(),
            close_driven: false,
            end_at: None,
            end_in_transmit: None,
            next_id: 1,
        };
        c.expect(now, Expect::Greeting);
        c
    }

    // ----- queries -----

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The extensions of the last successful EHLO/LHLO (forgotten on STARTTLS).
    #[must_use]
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.caps.as_ref()
    }

    /// smtplib's `has_extn`: whether the last EHLO announced `name`.
    #[must_use]
    pub fn has_extn(&self, name: &str) -> bool {
        self.caps.as_ref().is_some_and(|c| c.has(name))
    }

    /// What [`Transaction::size`] should hold for `message` (`SIZE=`, RFC 1870):
    /// `None` once EHLO or HELO is done and the server did not offer SIZE, since
    /// the value could not be used; otherwise
    /// [`message_size`](crate::body::message_size). That scan reads the whole
    /// message, which costs about as much as encoding it, so skipping it halves
    /// the client's work per byte against a server without SIZE. Under
    /// [`LineEndings::Reject`] the scan is always done: it is also the check that
    /// refuses a bare CR or LF before anything is sent.
    pub fn message_size_if_used(&self, message: &[u8]) -> Result<Option<u64>, UsageError> {
        let line_endings = self.config.line_endings;
        let useless =
            self.hello_done() && !self.caps.as_ref().is_some_and(Capabilities::offers_size);
        if useless && line_endings != LineEndings::Reject {
            return Ok(None);
        }
        crate::body::message_size(message, line_endings).map(Some)
    }

    /// The server's 220 greeting, once it arrived.
    #[must_use]
    pub fn greeting(&self) -> Option<&Reply> {
        self.greeting.as_ref()
    }

    /// smtplib's `does_esmtp`: the last EHLO/LHLO succeeded.
    #[must_use]
    pub fn does_esmtp(&self) -> bool {
        self.caps.is_some()
    }

    /// smtplib's `ehlo_resp`: the last successful EHLO/LHLO reply.
    #[must_use]
    pub fn ehlo_reply(&self) -> Option<&Reply> {
        self.ehlo_reply.as_ref()
    }

    /// smtplib's `helo_resp`: the last successful HELO reply.
    #[must_use]
    pub fn helo_reply(&self) -> Option<&Reply> {
        self.helo_reply.as_ref()
    }

    /// Whether the transport is encrypted (implicit TLS or after STARTTLS).
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Whether the transport is encrypted by TLS that verified the server's
    /// certificate ([`Config::tls_verified`] when TLS was established).
    #[must_use]
    pub fn is_tls_verified(&self) -> bool {
        self.tls && self.tls_verified
    }

    /// Whether AUTH may start a mechanism that puts a reusable secret on the
    /// wire ([`Mechanism::exposes_secret`](crate::Mechanism::exposes_secret)):
    /// the session is TLS with a verified certificate, or the peer is a
    /// loopback address or a Unix socket ([`Config::loopback_peer`]), or the
    /// caller allowed it ([`Config::allow_plaintext_auth`]).
    #[must_use]
    pub fn may_send_secret(&self) -> bool {
        self.is_tls_verified() || self.config.loopback_peer || self.config.allow_plaintext_auth
    }

    /// Whether AUTH succeeded.
    #[must_use]
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// Whether the session is over.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// The fatal error that ended the session, if any.
    #[must_use]
    pub fn fatal_error(&self) -> Option<&Error> {
        self.fatal.as_ref()
    }

    /// The current read deadline, if a reply is awaited.
    #[must_use]
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// When the TLS handshake the session waits for ([`Output::StartTls`])
    /// must be over: [`Timeouts::tls_handshake`] after the 220 to STARTTLS
    /// arrived. `None` when no handshake is awaited. The adapter fails the
    /// handshake at this deadline whatever the server's pacing.
    #[must_use]
    pub fn tls_handshake_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::AwaitTls => self.tls_deadline,
            Phase::Open | Phase::Closed => None,
        }
    }

    /// When a wait for the reply to QUIT that the client's side started at
    /// `now` (a session dropped while open, or QUIT after `send_and_quit`'s
    /// message) ends: [`Timeouts::quit_linger`] later.
    #[must_use]
    pub fn quit_deadline(&self, now: Instant) -> Instant {
        deadline_after(now, self.config.timeouts.quit_linger)
    }

    /// How long one write of the body may take (the DATA block timeout).
    #[must_use]
    pub fn write_timeout(&self) -> Duration {
        self.config.timeouts.data_block
    }

    /// Whether an operation is running or queued.
    #[must_use]
    pub fn is_busy(&self) -> bool {
        self.active.is_some() || !self.queue.is_empty()
    }

    /// Whether a mail transaction may be open on the server: a MAIL (or a
    /// `docmd` of MAIL, RCPT, DATA or BDAT) went out, and no positive reply
    /// to RSET, EHLO or HELO, nor a reply to the end of a message, came
    /// since (RFC 5321 sections 4.1.1.5 and 4.1.4). Errs on the side of
    /// "open": a session handed to someone else while this is true is reset
    /// (RSET) first, so that the next MAIL does not land in the middle of an
    /// earlier transaction. A transaction run by [`Client::send`] closes
    /// itself (RSET after a refusal); low-level [`Client::mail`] leaves one
    /// open until the caller ends it.
    #[must_use]
    pub fn in_transaction(&self) -> bool {
        self.mail_open
    }

    // ----- inputs -----

    /// Bytes received from the server.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        match self.phase {
            Phase::Closed => return,
            Phase::AwaitTls => {
                if !data.is_empty() {
                    self.fail(ProtocolError::DataAfterStartTls(data.len()).into());
                }
                return;
            }
            Phase::Open => {}
        }
        self.inbuf.extend_from_slice(data);
        let mut pos = 0;
        loop {
            let parsed = self.parser.parse(&self.inbuf[pos..]);
            match parsed {
                Err(e) => {
                    self.fail(e.into());
                    return;
                }
                Ok((used, None)) => {
                    pos += used;
                    break;
                }
                Ok((used, Some(reply))) => {
                    pos += used;
                    self.trace_reply(&reply);
                    self.on_reply(now, reply);
                    match self.phase {
                        Phase::Closed => return,
                        Phase::AwaitTls => {
                            let rest = self.inbuf.len() - pos;
                            if rest > 0 {
                                self.fail(ProtocolError::DataAfterStartTls(rest).into());
                            } else {
                                self.inbuf.clear();
                            }
                            return;
                        }
                        Phase::Open => {}
                    }
                }
            }
        }
        self.inbuf.drain(..pos);
        self.pump(now);
    }

    /// The server closed the connection.
    pub fn handle_eof(&mut self, _now: Instant) {
        if self.phase == Phase::Closed {
            return;
        }
        if self.is_busy() || !self.inflight.is_empty() {
            self.fail(Error::Disconnected);
        } else {
            self.phase = Phase::Closed;
            self.fatal = Some(Error::Disconnected);
        }
    }

    /// The transport failed with an error of its own: an I/O error while
    /// reading, or a failed TLS handshake or record (not a clean end of
    /// stream, which is [`Client::handle_eof`]). The session is over.
    ///
    /// The running operation (and any queued behind it) completes with
    /// [`Error::Transport`], meaning "the transport's own error is the
    /// answer": the driver returns the error it saw in its place. Where the
    /// core knows more, its error says so and is the answer instead: a
    /// transaction whose end of message went out without its reply fails
    /// with [`Error::Uncertain`] (cause [`Error::Transport`],
    /// [`Delivery::Unknown`](crate::Delivery::Unknown)), and one the server
    /// had already refused keeps that refusal. Later operations get
    /// [`Error::Transport`] too (the session's sticky error).
    pub fn handle_transport_error(&mut self, _now: Instant) {
        if self.phase == Phase::Closed {
            return;
        }
        self.fail(Error::Transport);
    }

    /// Writing the last [`Output::Transmit`] failed (an error, a deadline)
    /// after `written` of its bytes were accepted by the transport. The
    /// session is over: the transport cannot be trusted to be in step.
    ///
    /// The end of a message counts as gone out only when the bytes through
    /// its last byte (the final dot's line, or the data of `BDAT ... LAST`)
    /// were written: a failed or partial write of them leaves the message
    /// [`Delivery::NotSent`](crate::Delivery::NotSent), while a failure of
    /// what follows them in the same write (a QUIT pipelined behind the
    /// message) or of a later write, before the final reply came, leaves it
    /// [`Delivery::Unknown`](crate::Delivery::Unknown). A refusal already
    /// received stays the transaction's result. The operations fail with
    /// [`Error::Disconnected`], which an adapter may replace with its
    /// transport error.
    pub fn handle_write_error(&mut self, _now: Instant, written: usize) {
        if self.phase == Phase::Closed {
            return;
        }
        let end_unwritten =
            self.end_at.is_some() || self.end_in_transmit.is_some_and(|end| written < end);
        if end_unwritten {
            // The server cannot have read the end: nothing after it is
            // awaited as its answer.
            self.inflight.retain(|e| !e.ends_message());
        }
        self.fail(Error::Disconnected);
    }

    /// The deadline from [`Output::Wait`] (or the handshake deadline of
    /// [`Output::StartTls`]) may have passed. A TLS handshake still awaited
    /// at its deadline ends the session with
    /// [`Error::Timeout`]`("the TLS handshake")`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::AwaitTls {
            if self.tls_deadline.is_some_and(|d| now >= d) {
                self.fail(Error::Timeout("the TLS handshake"));
            }
            return;
        }
        if let (Some(d), Some(head)) = (self.deadline, self.inflight.front()) {
            if now >= d {
                let what = head.what();
                self.fail(Error::Timeout(what));
            }
        }
    }

    /// The TLS handshake requested by [`Output::StartTls`] succeeded.
    pub fn tls_established(&mut self, now: Instant) {
        if self.phase != Phase::AwaitTls {
            return;
        }
        self.phase = Phase::Open;
        self.tls = true;
        self.tls_verified = self.config.tls_verified;
        self.with_active(|c, a| match &mut a.op {
            OpState::StartTls(state) => c.starttls_handshake_done(now, state),
            OpState::Open(open) => c.open_handshake_done(now, open),
            _ => Step::Continue,
        });
        self.pump(now);
    }

    /// Whether the TLS of a later STARTTLS handshake verifies the server's
    /// certificate ([`Config::tls_verified`]): a driver whose TLS
    /// configuration changed after the session was made says so here. The
    /// TLS already established keeps what it was.
    pub fn set_tls_verified(&mut self, verified: bool) {
        self.config.tls_verified = verified;
    }

    /// Turns [`Output::Trace`] lines on or off (smtplib's `set_debuglevel`).
    pub fn set_trace(&mut self, on: bool) {
        self.config.trace = on;
    }

    fn enqueue<T>(&mut self, now: Instant, op: OpState) -> Op<T> {
        let id = OpId(self.next_id);
        self.next_id += 1;
        if let Some(err) = &self.fatal {
            let result = Err(err.clone());
            self.event(Event::Completed { id, result });
        } else {
            self.queue.push_back((id, op));
            self.pump(now);
        }
        Op::new(id)
    }
}

/// What a step of an operation decided.
enum Step {
    Continue,
    Done(Result<Outcome, Error>),
    /// End the session with this error.
    Fatal(Error),
}
