//! Running operations one at a time: starting the next queued one (after the
//! EHLO-or-HELO prelude when it needs a greeted session), the queue of commands
//! awaiting a reply and their deadlines (RFC 5321 section 4.5.3.2), routing each
//! reply to the operation that waits for it in order (RFC 2920 section 3.1),
//! 421 and unexpected 221 as the server closing the channel (RFC 5321 sections
//! 3.8 and 4.2.2), and ending the session with a sticky error.

use std::time::{Duration, Instant};

use super::deadline_after;
use super::{
    Active, Client, Event, OpState, Outcome, Output, Phase, Protocol, Step, Timeouts, Trace, hello,
};
use crate::command::Command;
use crate::error::{Error, ProtocolError, Stage};
use crate::reply::{Escaped, Reply};

/// What the head of the in-flight queue is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
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
    pub(super) fn timeout(self, t: &Timeouts) -> Duration {
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

    /// The transaction command whose reply this is.
    fn stage(self) -> Option<Stage> {
        match self {
            Expect::Mail => Some(Stage::Mail),
            Expect::Rcpt(_) => Some(Stage::Rcpt),
            Expect::Data | Expect::Bdat | Expect::Final | Expect::LmtpFinal(_) => Some(Stage::Data),
            Expect::Greeting
            | Expect::Hello
            | Expect::StartTls
            | Expect::Auth
            | Expect::Rset
            | Expect::Simple
            | Expect::Quit => None,
        }
    }

    /// The reply to the end of the message (the final dot or `BDAT ... LAST`).
    pub(super) fn ends_message(self) -> bool {
        matches!(self, Expect::Final | Expect::LmtpFinal(_))
    }

    pub(super) fn what(self) -> &'static str {
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

impl Client {
    pub(super) fn event(&mut self, e: Event) {
        self.out.push_back(Output::Event(e));
    }

    /// Starts queued operations while none is active.
    /// Then writes a QUIT queued behind a transaction whose end is out
    /// ([`Client::pipeline_quit`]).
    pub(super) fn pump(&mut self, now: Instant) {
        while self.active.is_none() && self.phase == Phase::Open {
            let Some((id, op)) = self.queue.pop_front() else {
                break;
            };
            // What went out ahead for the queue's first operation is now
            // the running one's own.
            self.behind = 0;
            self.active = Some(Active {
                id,
                op,
                hello: None,
            });
            self.start_active(now);
        }
        self.pipeline_next_transaction(now);
        self.pipeline_quit(now);
    }

    pub(super) fn expect(&mut self, now: Instant, e: Expect) {
        if e.ends_message() {
            // The end of the message was just encoded: its last byte is the
            // last one buffered.
            self.end_at = Some(self.tx.len());
        }
        if self.inflight.is_empty() {
            self.deadline = Some(deadline_after(now, e.timeout(&self.config.timeouts)));
        }
        self.inflight.push_back(e);
    }

    pub(super) fn transmit(&mut self, now: Instant, cmd: Command, e: Expect) {
        if self.config.trace {
            self.out
                .push_back(Output::Trace(Trace::Sent(escape_owned(cmd.redacted()))));
        }
        self.note_transaction_command(&cmd);
        cmd.encode(&mut self.tx);
        self.expect(now, e);
    }

    pub(super) fn trace_reply(&mut self, reply: &Reply) {
        if !self.config.trace {
            return;
        }
        let n = reply.line_count();
        for (i, l) in reply.lines().enumerate() {
            let sep = if i + 1 == n { ' ' } else { '-' };
            let line = format!("{}{sep}{}", reply.code(), Escaped(l));
            self.out.push_back(Output::Trace(Trace::Received(line)));
        }
    }

    /// Ends the session with a sticky error: every pending operation fails with
    /// it, except a transaction the server had already refused, which reports
    /// that refusal: the answer was definite (a refused sender, every
    /// recipient refused, a refused DATA, BDAT or end of message), and what was
    /// still awaited (the reply to RSET, pipelined replies) was cleanup
    /// (CPython bpo-17498). A transaction (or low-level DATA) whose end of
    /// message went out without its reply fails with [`Error::Uncertain`]
    /// around the error.
    pub(super) fn fail(&mut self, err: Error) {
        self.fail_with(err, None, None);
    }

    /// [`Client::fail`], with `own` as the running operation's error when it
    /// says more than the sticky one, and `answered` the command the reply that
    /// ends the session answered, if one did.
    fn fail_with(&mut self, err: Error, own: Option<Error>, answered: Option<Expect>) {
        if self.phase == Phase::Closed && self.fatal.is_some() {
            return;
        }
        // The end of the message went out and its reply did not come. A 421
        // in its place is its reply (a refusal); under LMTP, recipients after
        // it may still await theirs. A 421 answering an earlier command
        // (pipelined before the end) shows that the server closed before it
        // took the end, since replies come in order (RFC 2920 section 3.1).
        let end_unanswered = match answered {
            Some(e) if !e.ends_message() => false,
            _ => self.inflight.iter().any(|e| e.ends_message()),
        };
        let lmtp = self.config.protocol == Protocol::Lmtp;
        // LMTP: a 421 in place of the first reply after the message stands
        // for one recipient's; the others' replies are still awaited.
        let first_of_several = lmtp && answered == Some(Expect::Final);
        let low_level_more = first_of_several && self.lmtp_accepted > 1;
        self.phase = Phase::Closed;
        self.fatal = Some(err.clone());
        self.inflight.clear();
        self.behind = 0;
        self.deadline = None;
        self.body = None;
        self.want_body = None;
        self.tx.clear();
        self.end_at = None;
        self.end_in_transmit = None;
        // A handshake asked for but not started must not start now.
        self.out.retain(|o| !matches!(o, Output::StartTls { .. }));
        if let Some(Active { id, mut op, .. }) = self.active.take() {
            let cause = own.unwrap_or_else(|| err.clone());
            let uncertain = |recipients| Error::Uncertain {
                cause: Box::new(cause.clone()),
                recipients,
            };
            let error = match &mut op {
                OpState::Tx(tx) => match tx.take_refusal().or_else(|| tx.all_refused()) {
                    Some(refusal) => refusal,
                    None if end_unanswered || (first_of_several && tx.finals_missing()) => {
                        uncertain(tx.deliveries(lmtp))
                    }
                    None => cause.clone(),
                },
                OpState::Data(_) if end_unanswered || low_level_more => uncertain(Vec::new()),
                _ => cause.clone(),
            };
            self.event(Event::Completed {
                id,
                result: Err(error),
            });
        }
        while let Some((id, _)) = self.queue.pop_front() {
            let result = Err(err.clone());
            self.event(Event::Completed { id, result });
        }
    }

    pub(super) fn complete(&mut self, result: Result<Outcome, Error>) {
        if let Some(Active { id, .. }) = self.active.take() {
            self.body = None;
            self.want_body = None;
            self.event(Event::Completed { id, result });
        }
    }

    /// Runs `f` on the active operation and applies the step it decides. The
    /// operation is taken out of `self` for the call, so that both can be
    /// borrowed mutably, and put back before the step is applied.
    pub(super) fn with_active(&mut self, f: impl FnOnce(&mut Client, &mut Active) -> Step) {
        let Some(mut active) = self.active.take() else {
            return;
        };
        self.current = active.id;
        let step = f(self, &mut active);
        self.active = Some(active);
        self.apply(step);
    }

    /// Starts the active operation, or the EHLO-or-HELO prelude it needs first.
    fn start_active(&mut self, now: Instant) {
        self.with_active(|c, a| {
            if hello::needs_hello(&a.op) && !c.hello_done() {
                a.hello = Some(if Client::open_early_ehlo(&a.op) {
                    // Its EHLO went before the greeting: only the reply is
                    // awaited.
                    hello::Hello::Ehlo
                } else {
                    c.start_hello_prelude(now)
                });
                return Step::Continue;
            }
            c.start_op(now, &mut a.op)
        });
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

    fn start_op(&mut self, now: Instant, op: &mut OpState) -> Step {
        match op {
            OpState::Greeting => Step::Continue,
            OpState::Hello { helo, name } => self.start_hello(now, *helo, name.clone()),
            OpState::HelloIfNeeded => self.hello_if_needed_result(),
            OpState::StartTls(state) => self.start_starttls(now, state),
            OpState::Auth(auth) => self.start_auth(now, auth),
            OpState::Open(open) => self.start_open(now, open),
            OpState::Tx(tx) => self.start_tx(now, tx),
            OpState::Data(d) => self.start_data(now, d),
            OpState::Simple(cmd, e) => self.start_simple(now, cmd, *e),
            OpState::Quit { sent } => self.start_quit(now, *sent),
        }
    }

    pub(super) fn on_reply(&mut self, now: Instant, reply: Reply) {
        let Some(expect) = self.inflight.pop_front() else {
            let err = if reply.code() == 421 {
                Error::service_closing(reply)
            } else {
                ProtocolError::UnsolicitedReply(reply).into()
            };
            self.fail(err);
            return;
        };
        self.deadline = self
            .inflight
            .front()
            .map(|e| deadline_after(now, e.timeout(&self.config.timeouts)));
        // 421, or 221 to anything but QUIT: the server is closing the channel
        // (RFC 5321 sections 3.8 and 4.2.2).
        let closing = match reply.code() {
            421 => expect != Expect::Quit,
            221 => !matches!(expect, Expect::Quit | Expect::Greeting),
            _ => false,
        };
        if closing && expect == Expect::Greeting && self.early_hello_queued() {
            // A 421 greeting to a client that wrote EHLO first.
            self.fail(Error::EarlyPipeliningRefused(reply));
            return;
        }
        if closing {
            if self.lmtp_closing_final(expect, &reply) {
                // The 421 was the last recipient's reply and the message
                // went to others: the transaction has its result.
                self.fail(Error::service_closing(reply));
                return;
            }
            let own = self.closing_error(&reply, expect);
            self.fail_with(Error::service_closing(reply), Some(own), Some(expect));
            return;
        }
        let early_hello = expect == Expect::Hello && self.early_hello_queued();
        if self.active.is_none() && (expect == Expect::Quit || early_hello || self.behind > 0) {
            // The reply to a QUIT or a transaction's envelope that went out
            // behind a message, in the same input as the message's reply, or
            // to an EHLO that went before the greeting, in the same input as
            // the greeting: its operation starts now (and sends nothing).
            self.pump(now);
        }
        if self.active.is_none() {
            self.fail(ProtocolError::UnsolicitedReply(reply).into());
            return;
        }
        self.note_transaction_reply(expect, &reply);
        self.with_active(|c, a| match a.hello {
            Some(hello::Hello::Ehlo)
                if Client::open_early_ehlo(&a.op)
                    && !c.hello_done()
                    && !Client::confirms_early_pipelining(&reply) =>
            {
                a.hello = None;
                Step::Fatal(Error::EarlyPipeliningRefused(reply.clone()))
            }
            Some(stage) => match c.hello_prelude_reply(now, stage, &reply) {
                Ok(next @ Some(_)) => {
                    a.hello = next;
                    Step::Continue
                }
                Ok(None) => {
                    a.hello = None;
                    c.start_op(now, &mut a.op)
                }
                Err(e) => {
                    a.hello = None;
                    Step::Done(Err(e))
                }
            },
            None => c.op_reply(now, &mut a.op, expect, reply),
        });
    }

    /// The error for the operation a closing reply (421, or 221 to anything but
    /// QUIT) interrupts: the reply, the transaction command it answered and, in
    /// a transaction, what the server had said about each recipient.
    fn closing_error(&self, reply: &Reply, expect: Expect) -> Error {
        let lmtp = self.config.protocol == Protocol::Lmtp;
        let (recipients, final_replies) = match &self.active {
            Some(Active {
                op: OpState::Tx(tx),
                hello: None,
                ..
            }) => tx.replies_so_far(expect, reply, lmtp),
            _ => (Vec::new(), Vec::new()),
        };
        Error::ServiceClosing {
            reply: reply.clone(),
            stage: expect.stage(),
            end_of_message: expect.ends_message(),
            recipients,
            final_replies,
        }
    }

    fn op_reply(&mut self, now: Instant, op: &mut OpState, expect: Expect, reply: Reply) -> Step {
        match op {
            OpState::Greeting => self.greeting_reply(reply),
            OpState::Hello { helo, .. } => self.hello_reply(*helo, reply),
            OpState::HelloIfNeeded => Step::Done(Ok(Outcome::Reply(reply))),
            OpState::StartTls(state) => self.starttls_reply(now, state, reply),
            OpState::Auth(auth) => self.auth_reply(now, auth, reply),
            OpState::Open(open) => self.open_reply(now, open, reply),
            OpState::Tx(tx) => self.tx_reply(now, tx, expect, reply),
            OpState::Data(d) => self.data_reply(now, d, expect, reply),
            OpState::Simple(_, _) => self.simple_reply(expect, reply),
            OpState::Quit { .. } => self.quit_reply(reply),
        }
    }
}

/// `line` with its control characters escaped ([`Escaped`]), reusing it when
/// it has none.
fn escape_owned(line: String) -> String {
    if line.contains(char::is_control) {
        Escaped(&line).to_string()
    } else {
        line
    }
}
