//! The client session state machine: RFC 5321 sections 3 and 4 (session, mail
//! transaction, replies), RFC 2920 (PIPELINING), RFC 3030 (CHUNKING), RFC 3207
//! (STARTTLS), RFC 4954 (AUTH), RFC 2033 (LMTP), RFC 5321 section 4.5.3.2 (timeouts).
//!
//! Every transition rule of the session is in this file. The [`Client`] owns no
//! socket and reads no clock: the driver feeds it bytes ([`Client::handle_input`]),
//! end of stream ([`Client::handle_eof`]), expired deadlines
//! ([`Client::handle_timeout`]) and the end of a TLS handshake
//! ([`Client::tls_established`]), each with the current time; it enqueues
//! operations; and it drains [`Client::poll_output`] until that returns
//! [`Output::Wait`] or [`Output::Closed`].
//!
//! One operation runs at a time, in the order enqueued. Within an operation,
//! commands are pipelined when the server offers PIPELINING: MAIL, every RCPT and
//! DATA (or the first BDAT chunk) leave in one write, and replies are matched to
//! commands strictly in order.

mod config;
mod transaction;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use base64::Engine as _;

pub use config::{Config, Options, Protocol, Timeouts, armed_wait_serves, split_host_port};
pub use transaction::{
    PartsCursor, PreparedMessage, Recipient, RecipientResult, Transaction, TransactionResult,
};

use crate::body::{BodyEncoder, LineEndings};
use crate::capabilities::Capabilities;
use crate::command::{Address, Command, Domain, MechanismName, Parameter, Text, Verb};
use crate::error::{Error, ProtocolError, UsageError};
use crate::reply::{Reply, ReplyParser};
use crate::sasl::{self, Credentials, Mechanism};

/// Pending bytes beyond this are written before the next body chunk is asked for.
const FLUSH_AT: usize = 32 * 1024;

/// Identifies an operation; its [`Event::Completed`] carries the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[must_use]
pub struct OpId(u64);

impl OpId {
    /// The implicit first operation: waiting for the server's greeting.
    pub const GREETING: OpId = OpId(0);
}

/// What the driver must do next.
#[derive(Debug)]
#[must_use]
pub enum Output {
    /// Write these bytes to the transport, all of them, in order.
    Transmit(Vec<u8>),
    /// Something happened that the caller must see.
    Event(Event),
    /// Run the TLS client handshake on the transport now, then call
    /// [`Client::tls_established`]. Do not read plaintext before it.
    StartTls,
    /// A transcript line (only when [`Config::trace`] is on); secrets redacted.
    Trace(Trace),
    /// Nothing to do until input arrives or the deadline passes (then call
    /// [`Client::handle_timeout`]). `None`: nothing is awaited from the server.
    Wait(Option<Instant>),
    /// The session is over: close the transport.
    Closed,
}

/// What a driver running one operation must do next: [`Client::drive`] folds
/// [`Output`] into the only decisions left to an adapter.
#[derive(Debug)]
#[must_use]
pub enum Drive {
    /// Write these bytes, all of them; then hand the buffer to
    /// [`Client::recycle`] if you like.
    Write(Vec<u8>),
    /// Call [`Client::send_body`] with the next chunk of the message.
    Body,
    /// Run the TLS handshake, then call [`Client::tls_established`] (or
    /// [`Client::handle_eof`] if it failed).
    Handshake,
    /// Log this transcript line.
    Trace(Trace),
    /// Read once, until this deadline at the latest; then feed
    /// [`Client::handle_input`], [`Client::handle_eof`] or
    /// [`Client::handle_timeout`].
    Read(Instant),
    /// The operation is over. `closed` says the transport should be closed.
    Done {
        /// The operation's result.
        result: Result<Outcome, Error>,
        /// The session ended: close the transport.
        closed: bool,
    },
}

/// One transcript line, as smtplib's debug output prints them.
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
pub enum Event {
    /// The operation `id` has finished.
    Completed {
        /// The operation.
        id: OpId,
        /// Its result.
        result: Result<Outcome, Error>,
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

/// What the head of the in-flight queue is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Greeting,
    Hello,
    StartTls,
    Auth,
    Mail,
    Rcpt(usize),
    Data,
    Bdat,
    /// The reply to the final dot or `BDAT LAST` (the first one, under LMTP).
    Final,
    /// LMTP: the reply for the accepted recipient with this index.
    LmtpFinal(usize),
    Rset,
    Simple,
    Quit,
}

impl Expect {
    fn timeout(self, t: &Timeouts) -> Duration {
        match self {
            Expect::Greeting => t.greeting,
            Expect::Mail => t.mail,
            Expect::Rcpt(_) => t.rcpt,
            Expect::Data => t.data_init,
            Expect::Bdat => t.data_block,
            Expect::Final | Expect::LmtpFinal(_) => t.data_term,
            Expect::Hello
            | Expect::StartTls
            | Expect::Auth
            | Expect::Rset
            | Expect::Simple
            | Expect::Quit => t.command,
        }
    }

    fn what(self) -> &'static str {
        match self {
            Expect::Greeting => "the greeting",
            Expect::Hello => "the reply to EHLO/HELO",
            Expect::StartTls => "the reply to STARTTLS",
            Expect::Auth => "the reply to AUTH",
            Expect::Mail => "the reply to MAIL",
            Expect::Rcpt(_) => "the reply to RCPT",
            Expect::Data => "the reply to DATA",
            Expect::Bdat => "the reply to BDAT",
            Expect::Final | Expect::LmtpFinal(_) => "the reply to the end of the message",
            Expect::Rset => "the reply to RSET",
            Expect::Simple => "the reply to the command",
            Expect::Quit => "the reply to QUIT",
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

/// The EHLO-or-HELO prelude of operations that need a greeted session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hello {
    Ehlo,
    Helo,
}

#[derive(Debug)]
enum Op {
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
    Tx(Box<TxOp>),
    Data(DataOp),
    Simple(Command, Expect),
    Quit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum StartTlsState {
    Start,
    Sent,
    Handshake(Reply),
    Ehlo(Reply),
}

#[derive(Debug)]
struct AuthOp {
    credentials: Option<Credentials>,
    queue: VecDeque<Box<dyn Mechanism>>,
    current: Option<Box<dyn Mechanism>>,
    initial_response_ok: bool,
    rounds: u32,
    cancelling: Option<Error>,
    last_error: Option<Error>,
}

#[derive(Debug)]
enum TxStage {
    Envelope,
    Body,
    Final,
    Reset,
}

#[derive(Debug)]
struct TxOp {
    tx: Transaction,
    pipelined: bool,
    chunked: bool,
    stage: TxStage,
    mail_reply: Option<Reply>,
    rcpt_replies: Vec<Option<Reply>>,
    final_replies: Vec<Option<Reply>>,
    final_reply: Option<Reply>,
    error: Option<Error>,
}

#[derive(Debug)]
struct DataOp {
    sent: bool,
    finals: Vec<Reply>,
}

/// The body being streamed by the caller.
#[derive(Debug)]
struct BodyStream {
    encoder: BodyEncoder,
    chunked: bool,
    /// A `BodyWanted` was emitted and not yet answered.
    wanted: bool,
    /// A BDAT chunk failed: chunks are swallowed until the caller finishes.
    aborted: bool,
    in_flight: usize,
    window: usize,
    done: bool,
}

/// A sans-IO SMTP or LMTP client session.
///
/// Create it when the transport is connected (after the TLS handshake for
/// implicit TLS); it starts by waiting for the greeting ([`OpId::GREETING`]).
#[derive(Debug)]
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
    authenticated: bool,
    /// LMTP: recipients accepted by low-level RCPT since the last MAIL.
    lmtp_accepted: usize,
    inflight: VecDeque<Expect>,
    deadline: Option<Instant>,
    queue: VecDeque<(OpId, Op)>,
    active: Option<(OpId, Op, Option<Hello>)>,
    body: Option<BodyStream>,
    /// The id of the running operation (kept while its state is taken out).
    current: OpId,
    /// A `BodyWanted` for this operation is due once pending bytes are flushed.
    want_body: Option<OpId>,
    /// The result of the operation a [`Client::drive`] caller waits for.
    driven: Option<(OpId, Result<Outcome, Error>)>,
    next_id: u64,
}

/// What a step of an operation decided.
enum Step {
    Continue,
    Done(Result<Outcome, Error>),
    /// End the session with this error.
    Fatal(Error),
}

impl Client {
    /// A session on a freshly connected transport, waiting for the greeting.
    pub fn new(config: Config, now: Instant) -> Client {
        let mut c = Client {
            parser: ReplyParser::new(config.reply_limits),
            tls: config.tls_on_connect,
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
            inflight: VecDeque::new(),
            deadline: None,
            queue: VecDeque::new(),
            active: None,
            body: None,
            current: OpId::GREETING,
            want_body: None,
            driven: None,
            next_id: 1,
        };
        c.active = Some((OpId::GREETING, Op::Greeting, None));
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

    /// The deadline from [`Output::Wait`] may have passed.
    pub fn handle_timeout(&mut self, now: Instant) {
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
        if let Some((id, Op::StartTls(state), hello)) = self.active.take() {
            if let StartTlsState::Handshake(reply) = state {
                let name = self.config.local_name.clone();
                let cmd = self.hello_command(name, false);
                self.send(now, cmd, Expect::Hello);
                self.active = Some((id, Op::StartTls(StartTlsState::Ehlo(reply)), hello));
            } else {
                self.active = Some((id, Op::StartTls(state), hello));
            }
        }
        self.pump(now);
    }

    /// The next thing for the driver to do. Drain until `Wait` or `Closed`.
    pub fn poll_output(&mut self) -> Output {
        if let Some(o) = self.out.pop_front() {
            return o;
        }
        // Bytes go out before the next body chunk is asked for, except a little
        // (the envelope, a small chunk) which then leaves in one write with it.
        if !self.tx.is_empty() && (self.want_body.is_none() || self.tx.len() >= FLUSH_AT) {
            return Output::Transmit(std::mem::take(&mut self.tx));
        }
        if let Some(id) = self.want_body.take() {
            return Output::Event(Event::BodyWanted { id });
        }
        if self.phase == Phase::Closed {
            return Output::Closed;
        }
        Output::Wait(self.deadline)
    }

    /// Turns [`Output::Trace`] lines on or off (smtplib's `set_debuglevel`).
    pub fn set_trace(&mut self, on: bool) {
        self.config.trace = on;
    }

    /// Gives back the buffer of a written [`Output::Transmit`] so the next one
    /// reuses its allocation (optional; saves an allocation per body chunk).
    pub fn recycle(&mut self, mut buffer: Vec<u8>) {
        if self.tx.is_empty() && buffer.capacity() > self.tx.capacity() {
            buffer.clear();
            self.tx = buffer;
        }
    }

    /// The next thing to do while waiting for operation `id` (the loop of a
    /// facade whose calls run one at a time). Events of other operations are
    /// dropped; the result of `id` comes once everything it sent was written.
    pub fn drive(&mut self, id: OpId) -> Drive {
        loop {
            match self.poll_output() {
                Output::Transmit(b) => return Drive::Write(b),
                Output::Event(Event::BodyWanted { .. }) => return Drive::Body,
                Output::Event(Event::Completed { id: done, result }) => {
                    if done == id {
                        self.driven = Some((done, result));
                    }
                }
                Output::StartTls => return Drive::Handshake,
                Output::Trace(t) => return Drive::Trace(t),
                Output::Wait(deadline) => {
                    if let Some((_, result)) = self.driven.take() {
                        return Drive::Done {
                            result,
                            closed: false,
                        };
                    }
                    match deadline {
                        Some(d) => return Drive::Read(d),
                        // Nothing awaited and no result: the caller asked for an
                        // operation that cannot progress (never blocks forever).
                        None => {
                            return Drive::Done {
                                result: Err(UsageError::WrongState(
                                    "the operation cannot progress",
                                )
                                .into()),
                                closed: false,
                            };
                        }
                    }
                }
                Output::Closed => {
                    let result = match self.driven.take() {
                        Some((_, r)) => r,
                        None => Err(self.fatal.clone().unwrap_or(Error::Disconnected)),
                    };
                    return Drive::Done {
                        result,
                        closed: true,
                    };
                }
            }
        }
    }

    // ----- operations -----

    /// EHLO (LHLO under LMTP) with `name` or the configured local name. Completes
    /// with the reply, positive or not (smtplib's `ehlo`).
    pub fn ehlo(&mut self, now: Instant, name: Option<Domain>) -> OpId {
        self.enqueue(now, Op::Hello { helo: false, name })
    }

    /// HELO. Completes with the reply, positive or not (smtplib's `helo`).
    pub fn helo(&mut self, now: Instant, name: Option<Domain>) -> OpId {
        self.enqueue(now, Op::Hello { helo: true, name })
    }

    /// EHLO, then HELO if EHLO is refused, unless one already succeeded. Fails with
    /// [`Error::HeloRefused`].
    pub fn ehlo_or_helo_if_needed(&mut self, now: Instant) -> OpId {
        self.enqueue(now, Op::HelloIfNeeded)
    }

    /// STARTTLS (greeting first if needed). On 220 the driver is asked for the
    /// handshake ([`Output::StartTls`]); after it, EHLO is sent again. Completes with
    /// the 220 reply.
    pub fn starttls(&mut self, now: Instant) -> OpId {
        self.enqueue(now, Op::StartTls(StartTlsState::Start))
    }

    /// smtplib's `login`: tries CRAM-MD5, PLAIN and LOGIN in that order among the
    /// mechanisms the server offers; the last failure is the error.
    pub fn login(
        &mut self,
        now: Instant,
        credentials: Credentials,
        initial_response_ok: bool,
    ) -> OpId {
        self.enqueue(
            now,
            Op::Auth(Box::new(AuthOp {
                credentials: Some(credentials),
                queue: VecDeque::new(),
                current: None,
                initial_response_ok,
                rounds: 0,
                cancelling: None,
                last_error: None,
            })),
        )
    }

    /// smtplib's `auth`: authenticates with a caller-supplied mechanism.
    pub fn auth(
        &mut self,
        now: Instant,
        mechanism: Box<dyn Mechanism>,
        initial_response_ok: bool,
    ) -> OpId {
        self.enqueue(
            now,
            Op::Auth(Box::new(AuthOp {
                credentials: None,
                queue: VecDeque::from([mechanism]),
                current: None,
                initial_response_ok,
                rounds: 0,
                cancelling: None,
                last_error: None,
            })),
        )
    }

    /// smtplib's `sendmail`: a whole transaction. Emits [`Event::BodyWanted`] when
    /// the body is wanted, and completes with [`Outcome::Transaction`].
    pub fn send_mail(&mut self, now: Instant, transaction: Transaction) -> OpId {
        self.enqueue(
            now,
            Op::Tx(Box::new(TxOp {
                rcpt_replies: vec![None; transaction.to.len()],
                final_replies: vec![None; transaction.to.len()],
                tx: transaction,
                pipelined: false,
                chunked: false,
                stage: TxStage::Envelope,
                mail_reply: None,
                final_reply: None,
                error: None,
            })),
        )
    }

    /// Low-level MAIL FROM. Completes with the reply.
    pub fn mail(&mut self, now: Instant, from: Address, params: Vec<Parameter>) -> OpId {
        self.enqueue(
            now,
            Op::Simple(Command::Mail { from, params }, Expect::Mail),
        )
    }

    /// Low-level RCPT TO. Completes with the reply.
    pub fn rcpt(&mut self, now: Instant, to: Address, params: Vec<Parameter>) -> OpId {
        self.enqueue(
            now,
            Op::Simple(Command::Rcpt { to, params }, Expect::Rcpt(0)),
        )
    }

    /// Low-level DATA: fails with [`Error::DataRefused`] unless the server answers
    /// 354; then asks for the body and completes with the final reply (LMTP: one
    /// per recipient accepted since MAIL).
    pub fn data(&mut self, now: Instant) -> OpId {
        self.enqueue(
            now,
            Op::Data(DataOp {
                sent: false,
                finals: Vec::new(),
            }),
        )
    }

    /// RSET.
    pub fn rset(&mut self, now: Instant) -> OpId {
        self.enqueue(now, Op::Simple(Command::Rset, Expect::Rset))
    }

    /// NOOP.
    pub fn noop(&mut self, now: Instant) -> OpId {
        self.enqueue(now, Op::Simple(Command::Noop(None), Expect::Simple))
    }

    /// VRFY.
    pub fn vrfy(&mut self, now: Instant, arg: Text) -> OpId {
        self.enqueue(now, Op::Simple(Command::Vrfy(arg), Expect::Simple))
    }

    /// EXPN.
    pub fn expn(&mut self, now: Instant, arg: Text) -> OpId {
        self.enqueue(now, Op::Simple(Command::Expn(arg), Expect::Simple))
    }

    /// HELP.
    pub fn help(&mut self, now: Instant, arg: Option<Text>) -> OpId {
        self.enqueue(now, Op::Simple(Command::Help(arg), Expect::Simple))
    }

    /// Any command (smtplib's `docmd`). Completes with the reply.
    pub fn docmd(&mut self, now: Instant, verb: Verb, args: Option<Text>) -> OpId {
        self.enqueue(now, Op::Simple(Command::Raw { verb, args }, Expect::Simple))
    }

    /// QUIT: completes with the reply and closes the session.
    pub fn quit(&mut self, now: Instant) -> OpId {
        self.enqueue(now, Op::Quit)
    }

    /// The next chunk of the message, after [`Event::BodyWanted`]; `last` marks the
    /// end of the message (the chunk may then be empty). Bytes go out dot-stuffed
    /// (DATA) or framed in BDAT chunks (CHUNKING).
    ///
    /// Fails with [`UsageError::WrongState`] when no body was asked for. When the
    /// message breaks the line-ending policy, the session is aborted (the
    /// transaction cannot be ended cleanly) and the operation fails with that error.
    pub fn send_body(&mut self, now: Instant, chunk: &[u8], last: bool) -> Result<(), UsageError> {
        let Some(body) = self.body.as_mut() else {
            return Err(UsageError::WrongState("no message body was asked for"));
        };
        if !body.wanted {
            return Err(UsageError::WrongState(
                "the message body was not asked for yet",
            ));
        }
        body.wanted = false;
        if body.aborted {
            // A BDAT chunk already failed: the chunk is dropped, no more is asked
            // for, and the transaction goes on to RSET.
            body.done = true;
            self.settle_active(now);
            return Ok(());
        }
        let before = self.tx.len();
        let res = if body.chunked {
            body.encoder
                .encode_bdat(chunk, last, &mut self.tx)
                .map(|n| n > 0 || last)
        } else {
            body.encoder
                .encode_data(chunk, &mut self.tx)
                .and_then(|()| {
                    if last {
                        body.encoder.finish_data(&mut self.tx)
                    } else {
                        Ok(())
                    }
                })
                .map(|()| false)
        };
        match res {
            Err(e) => {
                self.tx.truncate(before);
                self.fail(Error::Usage(e.clone()));
                return Err(e);
            }
            Ok(bdat_sent) => {
                let chunked = body.chunked;
                if bdat_sent {
                    body.in_flight += 1;
                }
                if last {
                    body.done = true;
                }
                if self.config.trace {
                    let n = self.tx.len() - before;
                    let line = if chunked {
                        format!(
                            "<BDAT chunk, {n} bytes on the wire{}>",
                            if last { ", LAST" } else { "" }
                        )
                    } else if last {
                        format!("<message data, {n} bytes on the wire, then .>")
                    } else {
                        format!("<message data, {n} bytes on the wire>")
                    };
                    self.out.push_back(Output::Trace(Trace::Sent(line)));
                }
                if bdat_sent {
                    let e = if last { Expect::Final } else { Expect::Bdat };
                    self.expect(now, e);
                } else if last {
                    self.expect(now, Expect::Final);
                }
            }
        }
        self.after_body_progress(now);
        self.pump(now);
        Ok(())
    }

    // ----- internals: plumbing -----

    fn event(&mut self, e: Event) {
        self.out.push_back(Output::Event(e));
    }

    fn enqueue(&mut self, now: Instant, op: Op) -> OpId {
        let id = OpId(self.next_id);
        self.next_id += 1;
        if let Some(err) = &self.fatal {
            let result = Err(err.clone());
            self.event(Event::Completed { id, result });
        } else {
            self.queue.push_back((id, op));
            self.pump(now);
        }
        id
    }

    /// Starts queued operations while none is active.
    fn pump(&mut self, now: Instant) {
        while self.active.is_none() && self.phase == Phase::Open {
            let Some((id, op)) = self.queue.pop_front() else {
                return;
            };
            self.active = Some((id, op, None));
            self.start_active(now);
        }
    }

    fn expect(&mut self, now: Instant, e: Expect) {
        if self.inflight.is_empty() {
            self.deadline = Some(now + e.timeout(&self.config.timeouts));
        }
        self.inflight.push_back(e);
    }

    fn send(&mut self, now: Instant, cmd: Command, e: Expect) {
        if self.config.trace {
            self.out
                .push_back(Output::Trace(Trace::Sent(cmd.redacted())));
        }
        cmd.encode(&mut self.tx);
        self.expect(now, e);
    }

    fn trace_reply(&mut self, reply: &Reply) {
        if !self.config.trace {
            return;
        }
        let n = reply.line_count();
        for (i, l) in reply.lines().enumerate() {
            let sep = if i + 1 == n { ' ' } else { '-' };
            let line = format!("{}{sep}{l}", reply.code());
            self.out.push_back(Output::Trace(Trace::Received(line)));
        }
    }

    /// Ends the session with a sticky error: every pending operation fails with it.
    fn fail(&mut self, err: Error) {
        if self.phase == Phase::Closed && self.fatal.is_some() {
            return;
        }
        self.phase = Phase::Closed;
        self.fatal = Some(err.clone());
        self.inflight.clear();
        self.deadline = None;
        self.body = None;
        self.want_body = None;
        self.tx.clear();
        // A handshake asked for but not started must not start now.
        self.out.retain(|o| !matches!(o, Output::StartTls));
        if let Some((id, _, _)) = self.active.take() {
            let result = Err(err.clone());
            self.event(Event::Completed { id, result });
        }
        while let Some((id, _)) = self.queue.pop_front() {
            let result = Err(err.clone());
            self.event(Event::Completed { id, result });
        }
    }

    fn complete(&mut self, result: Result<Outcome, Error>) {
        if let Some((id, _, _)) = self.active.take() {
            self.body = None;
            self.want_body = None;
            self.event(Event::Completed { id, result });
        }
    }

    fn hello_done(&self) -> bool {
        self.caps.is_some() || self.helo_reply.is_some()
    }

    fn hello_command(&self, name: Domain, helo: bool) -> Command {
        if helo {
            Command::Helo(name)
        } else if self.config.protocol == Protocol::Lmtp {
            Command::Lhlo(name)
        } else {
            Command::Ehlo(name)
        }
    }

    /// Records the reply to EHLO/LHLO or HELO.
    fn store_hello(&mut self, reply: &Reply, helo: bool) {
        if !reply.is_positive() {
            return;
        }
        if helo {
            self.helo_reply = Some(reply.clone());
        } else {
            self.caps = Some(Capabilities::parse(reply));
            self.ehlo_reply = Some(reply.clone());
        }
    }

    fn forget_session_state(&mut self) {
        self.caps = None;
        self.ehlo_reply = None;
        self.helo_reply = None;
    }

    // ----- internals: starting operations -----

    fn needs_hello(op: &Op) -> bool {
        matches!(
            op,
            Op::HelloIfNeeded | Op::StartTls(_) | Op::Auth(_) | Op::Tx(_)
        )
    }

    fn start_active(&mut self, now: Instant) {
        let Some((id, mut op, _)) = self.active.take() else {
            return;
        };
        self.current = id;
        if Self::needs_hello(&op) && !self.hello_done() {
            let name = self.config.local_name.clone();
            let cmd = self.hello_command(name, false);
            self.send(now, cmd, Expect::Hello);
            self.active = Some((id, op, Some(Hello::Ehlo)));
            return;
        }
        let step = self.start_op(now, &mut op);
        self.active = Some((id, op, None));
        self.apply(step);
    }

    fn apply(&mut self, step: Step) {
        match step {
            Step::Continue => {}
            Step::Fatal(e) => self.fail(e),
            Step::Done(result) => {
                if let Err(e) = &result {
                    if self.fatal_for_policy(e) {
                        self.fail(e.clone());
                        return;
                    }
                }
                self.complete(result);
                if self.phase == Phase::Closed {
                    // After QUIT: whatever was queued can no longer run.
                    while let Some((id, _)) = self.queue.pop_front() {
                        self.event(Event::Completed {
                            id,
                            result: Err(Error::Disconnected),
                        });
                    }
                }
            }
        }
    }

    /// With `require_tls`, a failed or missing STARTTLS ends the session.
    fn fatal_for_policy(&self, e: &Error) -> bool {
        self.config.require_tls
            && !self.tls
            && matches!(
                e,
                Error::StartTlsRefused(_) | Error::Usage(UsageError::NotSupported(_))
            )
            && matches!(self.active, Some((_, Op::StartTls(_), _)))
    }

    fn start_op(&mut self, now: Instant, op: &mut Op) -> Step {
        match op {
            Op::Greeting => Step::Continue,
            Op::Hello { helo, name } => {
                let name = name
                    .clone()
                    .unwrap_or_else(|| self.config.local_name.clone());
                let cmd = self.hello_command(name, *helo);
                self.send(now, cmd, Expect::Hello);
                Step::Continue
            }
            Op::HelloIfNeeded => {
                let reply = self.ehlo_reply.clone().or_else(|| self.helo_reply.clone());
                match reply {
                    Some(r) => Step::Done(Ok(Outcome::Reply(r))),
                    None => Step::Done(Err(Error::Usage(UsageError::WrongState(
                        "no greeting reply",
                    )))),
                }
            }
            Op::StartTls(state) => {
                if self.tls {
                    return Step::Done(Err(UsageError::WrongState("TLS is already active").into()));
                }
                if !self.has_extn("STARTTLS") {
                    return Step::Done(Err(UsageError::NotSupported("STARTTLS".into()).into()));
                }
                self.send(now, Command::StartTls, Expect::StartTls);
                *state = StartTlsState::Sent;
                Step::Continue
            }
            Op::Auth(auth) => self.start_auth(now, auth),
            Op::Tx(tx) => self.start_tx(now, tx),
            Op::Data(d) => {
                d.sent = true;
                self.send(now, Command::Data, Expect::Data);
                Step::Continue
            }
            Op::Simple(cmd, e) => {
                if matches!(cmd, Command::Mail { .. } | Command::Rset) {
                    self.lmtp_accepted = 0;
                }
                let cmd = cmd.clone();
                self.send(now, cmd, *e);
                Step::Continue
            }
            Op::Quit => {
                self.send(now, Command::Quit, Expect::Quit);
                Step::Continue
            }
        }
    }

    fn tls_policy(&self) -> Result<(), Error> {
        if self.config.require_tls && !self.tls {
            Err(UsageError::TlsRequired.into())
        } else {
            Ok(())
        }
    }

    fn start_auth(&mut self, now: Instant, auth: &mut AuthOp) -> Step {
        if let Err(e) = self.tls_policy() {
            return Step::Done(Err(e));
        }
        if let Some(creds) = auth.credentials.take() {
            if !self.has_extn("AUTH") {
                return Step::Done(Err(UsageError::NotSupported("AUTH".into()).into()));
            }
            let offered = self
                .caps
                .as_ref()
                .map(Capabilities::auth_mechanisms)
                .unwrap_or_default();
            auth.queue = sasl::login_mechanisms(&offered, &creds).into();
            if auth.queue.is_empty() {
                return Step::Done(Err(Error::NoAuthMechanism(offered.join(" "))));
            }
        }
        self.next_mechanism(now, auth)
    }

    fn next_mechanism(&mut self, now: Instant, auth: &mut AuthOp) -> Step {
        loop {
            let Some(mut mech) = auth.queue.pop_front() else {
                let err = auth
                    .last_error
                    .take()
                    .unwrap_or_else(|| Error::NoAuthMechanism(String::new()));
                return Step::Done(Err(err));
            };
            let name = match MechanismName::new(mech.name()) {
                Ok(n) => n,
                Err(e) => {
                    auth.last_error = Some(e.into());
                    continue;
                }
            };
            let initial = if auth.initial_response_ok {
                match mech.initial_response() {
                    Ok(ir) => ir,
                    Err(e) => {
                        auth.last_error = Some(Error::Mechanism(e.0));
                        continue;
                    }
                }
            } else {
                None
            };
            auth.rounds = 0;
            auth.current = Some(mech);
            self.send(
                now,
                Command::Auth {
                    mechanism: name,
                    initial,
                },
                Expect::Auth,
            );
            return Step::Continue;
        }
    }

    fn start_tx(&mut self, now: Instant, op: &mut TxOp) -> Step {
        match self.prepare_tx(op) {
            Err(e) => Step::Done(Err(e)),
            Ok(()) => {
                let tx = &op.tx;
                let mail = Command::Mail {
                    from: tx.from.clone(),
                    params: tx.mail_params.clone(),
                };
                self.send(now, mail, Expect::Mail);
                if op.pipelined {
                    let rcpts: Vec<Command> = tx
                        .to
                        .iter()
                        .map(|r| Command::Rcpt {
                            to: r.address.clone(),
                            params: r.params.clone(),
                        })
                        .collect();
                    for (i, cmd) in rcpts.into_iter().enumerate() {
                        self.send(now, cmd, Expect::Rcpt(i));
                    }
                    if op.chunked {
                        self.start_body(true, true);
                        op.stage = TxStage::Body;
                    } else {
                        self.send(now, Command::Data, Expect::Data);
                    }
                }
                Step::Continue
            }
        }
    }

    /// Checks a transaction against the server's extensions and completes its
    /// parameters (smtplib's `sendmail` rules, plus SIZE, SMTPUTF8, 8BITMIME,
    /// BINARYMIME, DSN and REQUIRETLS checks).
    fn prepare_tx(&mut self, op: &mut TxOp) -> Result<(), Error> {
        self.tls_policy()?;
        let tx = &mut op.tx;
        if tx.to.is_empty() {
            return Err(UsageError::InvalidArgument {
                what: "recipients",
                why: "none given",
            }
            .into());
        }
        let international = !tx.from.is_ascii() || tx.to.iter().any(|r| !r.address.is_ascii());
        let not_supported = |ext: &str| -> Error { UsageError::NotSupported(ext.into()).into() };
        let Some(caps) = self.caps.as_ref() else {
            // HELO only: options are suppressed, as smtplib does.
            if international {
                return Err(not_supported("SMTPUTF8"));
            }
            tx.mail_params.clear();
            for r in &mut tx.to {
                r.params.clear();
            }
            return Ok(());
        };
        let has_param = |params: &[Parameter], k: &str| params.iter().any(|p| p.keyword() == k);
        if international && !has_param(&tx.mail_params, "SMTPUTF8") {
            tx.mail_params.push(Parameter::parse("SMTPUTF8")?);
        }
        for p in &tx.mail_params {
            let value = p.value().map(str::to_ascii_uppercase);
            match (p.keyword(), value.as_deref()) {
                ("SMTPUTF8", _) if !caps.smtputf8() => return Err(not_supported("SMTPUTF8")),
                ("BODY", Some("8BITMIME")) if !caps.eight_bit_mime() => {
                    return Err(not_supported("8BITMIME"));
                }
                ("BODY", Some("BINARYMIME"))
                    if !(caps.binary_mime() && caps.chunking() && self.config.chunking) =>
                {
                    return Err(not_supported("BINARYMIME"));
                }
                ("REQUIRETLS", _) if !caps.requiretls() => return Err(not_supported("REQUIRETLS")),
                ("REQUIRETLS", _) if !self.tls => return Err(UsageError::TlsRequired.into()),
                ("RET" | "ENVID", _) if !caps.dsn() => return Err(not_supported("DSN")),
                _ => {}
            }
        }
        for r in &tx.to {
            if r.params
                .iter()
                .any(|p| matches!(p.keyword(), "NOTIFY" | "ORCPT"))
                && !caps.dsn()
            {
                return Err(not_supported("DSN"));
            }
        }
        if let Some(size) = tx.size {
            if let Some(limit) = caps.size() {
                if size > limit {
                    return Err(UsageError::MessageTooLarge { size, limit }.into());
                }
            }
            if caps.offers_size() && !has_param(&tx.mail_params, "SIZE") {
                tx.mail_params.push(Parameter::size(size));
            }
        }
        op.pipelined = self.config.pipelining && caps.pipelining();
        op.chunked = self.config.chunking && caps.chunking();
        Ok(())
    }

    fn start_body(&mut self, chunked: bool, pipelined: bool) {
        let line_endings = if chunked {
            self.config.line_endings
        } else if self.config.line_endings == LineEndings::Reject {
            LineEndings::Reject
        } else {
            LineEndings::Normalize
        };
        let window = if chunked && pipelined {
            self.config.max_bdat_in_flight.max(1)
        } else {
            1
        };
        self.body = Some(BodyStream {
            encoder: BodyEncoder::new(line_endings),
            chunked,
            wanted: true,
            aborted: false,
            in_flight: 0,
            window,
            done: false,
        });
        self.want_body = Some(self.current);
    }

    /// After a chunk or a BDAT reply: ask for more body when the window allows.
    fn after_body_progress(&mut self, _now: Instant) {
        let Some(body) = self.body.as_mut() else {
            return;
        };
        if body.done || body.aborted || body.wanted || body.in_flight >= body.window {
            return;
        }
        body.wanted = true;
        self.want_body = Some(self.current);
    }

    /// Re-evaluates a running transaction outside of a reply (after the caller
    /// gave up a body).
    fn settle_active(&mut self, now: Instant) {
        if let Some((id, Op::Tx(mut tx), hello)) = self.active.take() {
            let step = self.tx_settle(now, &mut tx);
            self.active = Some((id, Op::Tx(tx), hello));
            self.apply(step);
        }
    }

    // ----- internals: replies -----

    fn on_reply(&mut self, now: Instant, reply: Reply) {
        let Some(expect) = self.inflight.pop_front() else {
            let err = if reply.code() == 421 {
                Error::ServiceClosing(reply)
            } else {
                ProtocolError::UnsolicitedReply(reply).into()
            };
            self.fail(err);
            return;
        };
        self.deadline = self
            .inflight
            .front()
            .map(|e| now + e.timeout(&self.config.timeouts));
        // 421, or 221 to anything but QUIT: the server is closing the channel
        // (RFC 5321 sections 3.8 and 4.2.2).
        let closing = match reply.code() {
            421 => expect != Expect::Quit,
            221 => !matches!(expect, Expect::Quit | Expect::Greeting),
            _ => false,
        };
        if closing {
            self.fail(Error::ServiceClosing(reply));
            return;
        }
        let Some((id, mut op, hello)) = self.active.take() else {
            self.fail(ProtocolError::UnsolicitedReply(reply).into());
            return;
        };
        self.current = id;
        if let Some(stage) = hello {
            let step = self.on_hello_prelude(now, stage, &reply);
            match step {
                Ok(Some(next)) => self.active = Some((id, op, Some(next))),
                Ok(None) => {
                    let step = self.start_op(now, &mut op);
                    self.active = Some((id, op, None));
                    self.apply(step);
                }
                Err(e) => {
                    self.active = Some((id, op, None));
                    self.apply(Step::Done(Err(e)));
                }
            }
            return;
        }
        let step = self.op_reply(now, &mut op, expect, reply);
        self.active = Some((id, op, None));
        self.apply(step);
    }

    /// EHLO, then HELO: `Ok(None)` when greeted, `Ok(Some(stage))` to wait again.
    fn on_hello_prelude(
        &mut self,
        now: Instant,
        stage: Hello,
        reply: &Reply,
    ) -> Result<Option<Hello>, Error> {
        match stage {
            Hello::Ehlo => {
                self.store_hello(reply, false);
                if reply.is_positive() {
                    Ok(None)
                } else if self.config.protocol == Protocol::Lmtp {
                    Err(Error::HeloRefused(reply.clone()))
                } else {
                    let name = self.config.local_name.clone();
                    self.send(now, Command::Helo(name), Expect::Hello);
                    Ok(Some(Hello::Helo))
                }
            }
            Hello::Helo => {
                self.store_hello(reply, true);
                if reply.is_positive() {
                    Ok(None)
                } else {
                    Err(Error::HeloRefused(reply.clone()))
                }
            }
        }
    }

    fn op_reply(&mut self, now: Instant, op: &mut Op, expect: Expect, reply: Reply) -> Step {
        match op {
            Op::Greeting => {
                if reply.code() == 220 {
                    self.greeting = Some(reply.clone());
                    Step::Done(Ok(Outcome::Reply(reply)))
                } else {
                    Step::Fatal(Error::ConnectRefused(reply))
                }
            }
            Op::Hello { helo, .. } => {
                self.store_hello(&reply, *helo);
                Step::Done(Ok(Outcome::Reply(reply)))
            }
            Op::HelloIfNeeded => Step::Done(Ok(Outcome::Reply(reply))),
            Op::StartTls(state) => self.starttls_reply(state, reply),
            Op::Auth(auth) => self.auth_reply(now, auth, reply),
            Op::Tx(tx) => self.tx_reply(now, tx, expect, reply),
            Op::Data(d) => self.data_reply(now, d, expect, reply),
            Op::Simple(_, _) => {
                match expect {
                    Expect::Rcpt(_) if reply.is_positive() => self.lmtp_accepted += 1,
                    _ => {}
                }
                Step::Done(Ok(Outcome::Reply(reply)))
            }
            Op::Quit => {
                self.phase = Phase::Closed;
                self.fatal = Some(Error::Disconnected);
                self.deadline = None;
                Step::Done(Ok(Outcome::Reply(reply)))
            }
        }
    }

    fn starttls_reply(&mut self, state: &mut StartTlsState, reply: Reply) -> Step {
        match state {
            StartTlsState::Sent => {
                if reply.code() == 220 {
                    self.forget_session_state();
                    self.phase = Phase::AwaitTls;
                    self.out.push_back(Output::StartTls);
                    *state = StartTlsState::Handshake(reply);
                    Step::Continue
                } else {
                    Step::Done(Err(Error::StartTlsRefused(reply)))
                }
            }
            StartTlsState::Ehlo(first) => {
                self.store_hello(&reply, false);
                if reply.is_positive() {
                    Step::Done(Ok(Outcome::Reply(first.clone())))
                } else {
                    Step::Done(Err(Error::HeloRefused(reply)))
                }
            }
            StartTlsState::Start | StartTlsState::Handshake(_) => {
                Step::Done(Err(ProtocolError::UnsolicitedReply(reply).into()))
            }
        }
    }

    fn auth_reply(&mut self, now: Instant, auth: &mut AuthOp, reply: Reply) -> Step {
        if let Some(err) = auth.cancelling.take() {
            auth.last_error = Some(err);
            return self.next_mechanism(now, auth);
        }
        if reply.is_positive() {
            self.authenticated = true;
            return Step::Done(Ok(Outcome::Reply(reply)));
        }
        if reply.code() != 334 {
            auth.last_error = Some(Error::AuthFailed(reply));
            return self.next_mechanism(now, auth);
        }
        auth.rounds += 1;
        if auth.rounds > self.config.max_auth_rounds {
            return self.cancel_auth(now, auth, "too many AUTH challenges".into());
        }
        let text = reply.first_line().trim();
        let Ok(challenge) = base64::engine::general_purpose::STANDARD.decode(text) else {
            return self.cancel_auth(now, auth, "AUTH challenge is not valid base64".into());
        };
        let answer = match auth.current.as_mut() {
            Some(m) => m.step(&challenge),
            None => Err(sasl::SaslError("no mechanism".into())),
        };
        match answer {
            Ok(resp) => {
                self.send(now, Command::AuthResponse(resp), Expect::Auth);
                Step::Continue
            }
            Err(e) => self.cancel_auth(now, auth, e.0),
        }
    }

    fn cancel_auth(&mut self, now: Instant, auth: &mut AuthOp, why: String) -> Step {
        auth.cancelling = Some(Error::Mechanism(why));
        self.send(now, Command::AuthCancel, Expect::Auth);
        Step::Continue
    }

    fn tx_reply(&mut self, now: Instant, op: &mut TxOp, expect: Expect, reply: Reply) -> Step {
        match expect {
            Expect::Mail => {
                if !reply.is_positive() && op.error.is_none() {
                    op.error = Some(Error::SenderRefused {
                        reply: reply.clone(),
                        sender: op.tx.from.as_str().to_owned(),
                    });
                }
                let ok = reply.is_positive();
                op.mail_reply = Some(reply);
                if !op.pipelined {
                    if ok {
                        self.send_rcpt(now, op, 0);
                    } else {
                        return self.tx_reset(now, op);
                    }
                }
            }
            Expect::Rcpt(i) => {
                if let Some(slot) = op.rcpt_replies.get_mut(i) {
                    *slot = Some(reply);
                }
                let last = i + 1 == op.tx.to.len();
                if !op.pipelined {
                    if !last {
                        self.send_rcpt(now, op, i + 1);
                    } else if !Self::any_rcpt_accepted(op) {
                        op.error = Some(Self::recipients_refused(op));
                        return self.tx_reset(now, op);
                    } else if op.chunked {
                        self.start_body(true, false);
                        op.stage = TxStage::Body;
                    } else {
                        self.send(now, Command::Data, Expect::Data);
                    }
                }
            }
            Expect::Data => {
                if op.error.is_none() && !Self::any_rcpt_accepted(op) {
                    op.error = Some(Self::recipients_refused(op));
                }
                if reply.code() == 354 {
                    if op.error.is_some() {
                        // RFC 2920 section 3.1: DATA accepted with no valid recipient;
                        // end it with an empty message, whose reply is ignored.
                        self.tx.extend_from_slice(b".\r\n");
                        self.expect(now, Expect::Final);
                        op.stage = TxStage::Final;
                    } else {
                        op.stage = TxStage::Body;
                        self.start_body(false, false);
                    }
                } else {
                    if op.error.is_none() {
                        op.error = Some(Error::DataRefused(reply));
                    }
                    return self.tx_reset(now, op);
                }
            }
            Expect::Bdat => {
                if let Some(b) = self.body.as_mut() {
                    b.in_flight = b.in_flight.saturating_sub(1);
                }
                if !reply.is_positive() {
                    self.record_body_failure(op, reply);
                }
                self.after_body_progress(now);
            }
            Expect::Final => {
                if let Some(b) = self.body.as_mut() {
                    b.in_flight = b.in_flight.saturating_sub(1);
                }
                op.stage = TxStage::Final;
                if self.config.protocol == Protocol::Lmtp && op.error.is_none() {
                    let accepted: Vec<usize> = (0..op.tx.to.len())
                        .filter(|&i| op.rcpt_replies[i].as_ref().is_some_and(Reply::is_positive))
                        .collect();
                    if let Some((&first, rest)) = accepted.split_first() {
                        op.final_replies[first] = Some(reply);
                        for &j in rest.iter().rev() {
                            self.inflight.push_front(Expect::LmtpFinal(j));
                        }
                        if !rest.is_empty() {
                            self.deadline = Some(now + self.config.timeouts.data_term);
                        }
                    } else {
                        self.record_body_failure(op, reply);
                    }
                } else if reply.is_positive() {
                    op.final_reply = Some(reply);
                } else {
                    self.record_body_failure(op, reply);
                }
            }
            Expect::LmtpFinal(j) => {
                if let Some(slot) = op.final_replies.get_mut(j) {
                    *slot = Some(reply);
                }
            }
            Expect::Rset => {
                let err = op
                    .error
                    .take()
                    .unwrap_or(Error::Usage(UsageError::WrongState("reset")));
                return Step::Done(Err(err));
            }
            _ => return Step::Done(Err(ProtocolError::UnsolicitedReply(reply).into())),
        }
        self.tx_settle(now, op)
    }

    fn record_body_failure(&mut self, op: &mut TxOp, reply: Reply) {
        // A refused MAIL has set the error already.
        if op.error.is_none() {
            op.error = Some(if Self::any_rcpt_accepted(op) {
                Error::DataRefused(reply)
            } else {
                Self::recipients_refused(op)
            });
        }
        if let Some(b) = self.body.as_mut() {
            b.aborted = true;
        }
    }

    /// Decides what follows once every sent command of the transaction is answered.
    fn tx_settle(&mut self, now: Instant, op: &mut TxOp) -> Step {
        if !self.inflight.is_empty() {
            return Step::Continue;
        }
        let body_open = self
            .body
            .as_ref()
            .is_some_and(|b| !b.done && (!b.aborted || b.wanted));
        match op.stage {
            TxStage::Envelope => {
                if op.error.is_some() && op.pipelined {
                    return self.tx_reset(now, op);
                }
                Step::Continue
            }
            TxStage::Body if body_open => Step::Continue,
            TxStage::Body | TxStage::Final => {
                if op.error.is_some() {
                    return self.tx_reset(now, op);
                }
                if !Self::any_rcpt_accepted(op) {
                    op.error = Some(Self::recipients_refused(op));
                    return self.tx_reset(now, op);
                }
                if self.config.protocol == Protocol::Lmtp {
                    return self.tx_lmtp_result(op);
                }
                let result = self.tx_result(op);
                Step::Done(Ok(Outcome::Transaction(result)))
            }
            TxStage::Reset => Step::Continue,
        }
    }

    fn tx_lmtp_result(&mut self, op: &mut TxOp) -> Step {
        let result = self.tx_result(op);
        if result.accepted().is_empty() {
            let map = result
                .refused()
                .into_iter()
                .map(|(a, r)| (a.as_str().to_owned(), r.clone()))
                .collect();
            Step::Done(Err(Error::RecipientsRefused(map)))
        } else {
            Step::Done(Ok(Outcome::Transaction(result)))
        }
    }

    /// The result of a finished transaction; it takes the replies and addresses
    /// out of `op`, which is done with.
    fn tx_result(&self, op: &mut TxOp) -> TransactionResult {
        let lmtp = self.config.protocol == Protocol::Lmtp;
        let recipients = std::mem::take(&mut op.tx.to)
            .into_iter()
            .enumerate()
            .map(|(i, r)| RecipientResult {
                address: r.address,
                rcpt_reply: op.rcpt_replies[i]
                    .take()
                    .unwrap_or_else(|| Reply::new(554, vec!["no reply".into()])),
                final_reply: if lmtp {
                    op.final_replies[i].take()
                } else {
                    None
                },
            })
            .collect();
        TransactionResult {
            mail_reply: op
                .mail_reply
                .take()
                .unwrap_or_else(|| Reply::new(554, vec!["no reply".into()])),
            recipients,
            final_reply: op.final_reply.take(),
            chunked: op.chunked,
        }
    }

    fn tx_reset(&mut self, now: Instant, op: &mut TxOp) -> Step {
        op.stage = TxStage::Reset;
        self.body = None;
        self.send(now, Command::Rset, Expect::Rset);
        Step::Continue
    }

    fn send_rcpt(&mut self, now: Instant, op: &TxOp, i: usize) {
        if let Some(r) = op.tx.to.get(i) {
            let cmd = Command::Rcpt {
                to: r.address.clone(),
                params: r.params.clone(),
            };
            self.send(now, cmd, Expect::Rcpt(i));
        }
    }

    fn any_rcpt_accepted(op: &TxOp) -> bool {
        op.rcpt_replies
            .iter()
            .any(|r| r.as_ref().is_some_and(Reply::is_positive))
    }

    fn recipients_refused(op: &TxOp) -> Error {
        Error::RecipientsRefused(
            op.tx
                .to
                .iter()
                .zip(&op.rcpt_replies)
                .filter_map(|(r, reply)| {
                    reply
                        .as_ref()
                        .filter(|x| !x.is_positive())
                        .map(|x| (r.address.as_str().to_owned(), x.clone()))
                })
                .collect(),
        )
    }

    fn data_reply(&mut self, now: Instant, d: &mut DataOp, expect: Expect, reply: Reply) -> Step {
        match expect {
            Expect::Data => {
                if reply.code() == 354 {
                    self.start_body(false, false);
                    Step::Continue
                } else {
                    Step::Done(Err(Error::DataRefused(reply)))
                }
            }
            Expect::Final => {
                if self.config.protocol == Protocol::Lmtp && self.lmtp_accepted > 1 {
                    for _ in 1..self.lmtp_accepted {
                        self.inflight.push_back(Expect::LmtpFinal(0));
                    }
                    self.deadline = Some(now + self.config.timeouts.data_term);
                    d.finals.push(reply);
                    Step::Continue
                } else if self.config.protocol == Protocol::Lmtp {
                    Step::Done(Ok(Outcome::Replies(vec![reply])))
                } else {
                    Step::Done(Ok(Outcome::Reply(reply)))
                }
            }
            Expect::LmtpFinal(_) => {
                d.finals.push(reply);
                if self.inflight.is_empty() {
                    Step::Done(Ok(Outcome::Replies(std::mem::take(&mut d.finals))))
                } else {
                    Step::Continue
                }
            }
            _ => Step::Done(Err(ProtocolError::UnsolicitedReply(reply).into())),
        }
    }
}
