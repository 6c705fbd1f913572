//! The low-level commands, smtplib's verbs: MAIL, RCPT, DATA, RSET, NOOP, VRFY,
//! EXPN, HELP, any other command (`docmd`) and QUIT (RFC 5321 sections 4.1.1.2
//! to 4.1.1.10 and 3.5); after DATA over LMTP, one reply per recipient accepted
//! since MAIL (RFC 2033 section 4.2).

use std::time::Instant;

use super::deadline_after;
use super::{
    Active, Client, Op, OpState, Outcome, Phase, Protocol, Step, dispatch::Expect,
    extensions::check_envelope,
};
use crate::command::{Address, Command, Parameter, Text, Verb};
use crate::error::{Error, ProtocolError};
use crate::reply::Reply;

/// A low-level DATA: the replies after the body (several under LMTP).
#[derive(Debug)]
pub(super) struct DataOp {
    sent: bool,
    finals: Vec<Reply>,
}

impl Client {
    /// Low-level MAIL FROM. Completes with the reply.
    ///
    /// Once EHLO or HELO is done, fails with [`UsageError::NotSupported`](crate::UsageError::NotSupported) (and
    /// sends nothing) when a parameter needs an extension the server did not
    /// offer, or the address is not ASCII and SMTPUTF8 is not offered, as
    /// [`Client::send`] does; after HELO no parameter can be sent.
    pub fn mail(&mut self, now: Instant, from: Address, params: Vec<Parameter>) -> Op<Reply> {
        self.enqueue(
            now,
            OpState::Simple(Command::Mail { from, params }, Expect::Mail),
        )
    }

    /// Low-level RCPT TO. Completes with the reply. Checked as [`Client::mail`]
    /// is (`NOTIFY` and `ORCPT` need DSN).
    pub fn rcpt(&mut self, now: Instant, to: Address, params: Vec<Parameter>) -> Op<Reply> {
        self.enqueue(
            now,
            OpState::Simple(Command::Rcpt { to, params }, Expect::Rcpt(0)),
        )
    }

    /// Low-level DATA: fails with [`Error::DataRefused`] unless the server answers
    /// 354; then asks for the body and completes with the final reply (LMTP: one
    /// per recipient accepted since MAIL).
    pub fn data(&mut self, now: Instant) -> Op<Vec<Reply>> {
        self.enqueue(
            now,
            OpState::Data(DataOp {
                sent: false,
                finals: Vec::new(),
            }),
        )
    }

    /// RSET.
    pub fn rset(&mut self, now: Instant) -> Op<Reply> {
        self.enqueue(now, OpState::Simple(Command::Rset, Expect::Rset))
    }

    /// NOOP.
    pub fn noop(&mut self, now: Instant) -> Op<Reply> {
        self.enqueue(now, OpState::Simple(Command::Noop(None), Expect::Simple))
    }

    /// VRFY.
    pub fn verify(&mut self, now: Instant, arg: Text) -> Op<Reply> {
        self.enqueue(now, OpState::Simple(Command::Vrfy(arg), Expect::Simple))
    }

    /// EXPN.
    pub fn expn(&mut self, now: Instant, arg: Text) -> Op<Reply> {
        self.enqueue(now, OpState::Simple(Command::Expn(arg), Expect::Simple))
    }

    /// HELP.
    pub fn help(&mut self, now: Instant, arg: Option<Text>) -> Op<Reply> {
        self.enqueue(now, OpState::Simple(Command::Help(arg), Expect::Simple))
    }

    /// Any command (smtplib's `docmd`). Completes with the reply.
    pub fn docmd(&mut self, now: Instant, verb: Verb, args: Option<Text>) -> Op<Reply> {
        self.enqueue(
            now,
            OpState::Simple(Command::Raw { verb, args }, Expect::Simple),
        )
    }

    /// QUIT: completes with the reply and closes the session.
    ///
    /// Enqueued right behind a mail transaction ([`Client::send`]) while the
    /// server offers PIPELINING, QUIT leaves in the same write as the end of
    /// the message (the final dot or `BDAT ... LAST`), as RFC 2920 section
    /// 3.1 allows a group to end with QUIT: the message and the session's end
    /// then cost one round trip, not two. The transaction still completes with
    /// the reply to the end of the message, and a connection lost before that
    /// reply still leaves the message's fate unknown
    /// ([`Error::Uncertain`]); the transaction sends no RSET after a refused
    /// message then, since the session ends anyway. Without PIPELINING, or
    /// behind anything else, QUIT waits for its turn.
    pub fn quit(&mut self, now: Instant) -> Op<Reply> {
        self.enqueue(now, OpState::Quit { sent: false })
    }

    // ----- internals -----

    /// Starts low-level DATA.
    pub(super) fn start_data(&mut self, now: Instant, d: &mut DataOp) -> Step {
        if let Err(e) = self.tls_policy() {
            return Step::Done(Err(e));
        }
        d.sent = true;
        self.transmit(now, Command::Data, Expect::Data);
        Step::Continue
    }

    /// Starts a command that completes with its reply.
    pub(super) fn start_simple(&mut self, now: Instant, cmd: &Command, expect: Expect) -> Step {
        if carries_envelope(cmd) {
            if let Err(e) = self.tls_policy() {
                return Step::Done(Err(e));
            }
        }
        if let Err(e) = self.check_mail_rcpt(cmd) {
            return Step::Done(Err(e));
        }
        if matches!(cmd, Command::Mail { .. } | Command::Rset) {
            self.lmtp_accepted = 0;
        }
        self.transmit(now, cmd.clone(), expect);
        Step::Continue
    }

    /// The extension checks of the transaction ([`check_envelope`]) for a
    /// low-level MAIL or RCPT, once EHLO or HELO is done: after EHLO its
    /// parameters need the extensions that define them and an address that is
    /// not ASCII needs SMTPUTF8; after HELO neither is possible. Before either,
    /// nothing is known of the server and the command goes as given.
    fn check_mail_rcpt(&self, cmd: &Command) -> Result<(), Error> {
        if !self.hello_done() {
            return Ok(());
        }
        let session = self.check_session();
        match cmd {
            Command::Mail { from, params } => {
                check_envelope(session, params, [], !from.is_ascii(), None)
            }
            Command::Rcpt { to, params } => {
                check_envelope(session, &[], [params.as_slice()], !to.is_ascii(), None)
            }
            _ => Ok(()),
        }
    }

    /// The reply to a command that completes with its reply.
    pub(super) fn simple_reply(&mut self, expect: Expect, reply: Reply) -> Step {
        if matches!(expect, Expect::Rcpt(_)) && reply.is_positive() {
            self.lmtp_accepted += 1;
        }
        Step::Done(Ok(Outcome::Reply(reply)))
    }

    /// Notes that `cmd` may open a mail transaction on the server
    /// ([`Client::in_transaction`]).
    pub(super) fn note_transaction_command(&mut self, cmd: &Command) {
        let opens = match cmd {
            Command::Mail { .. } => true,
            Command::Raw { verb, .. } => {
                matches!(verb.as_str(), "MAIL" | "RCPT" | "DATA" | "BDAT")
            }
            _ => false,
        };
        self.mail_open |= opens;
    }

    /// Notes that `reply` to `expect` closed the mail transaction: a
    /// positive reply to RSET, EHLO or HELO, or any reply to the end of a
    /// message (RFC 5321 sections 4.1.1.5, 4.1.4 and 4.1.1.4).
    pub(super) fn note_transaction_reply(&mut self, expect: Expect, reply: &Reply) {
        let closes = match expect {
            Expect::Rset | Expect::Hello => reply.is_positive(),
            Expect::Final | Expect::LmtpFinal(_) => true,
            _ => false,
        };
        // The next transaction's MAIL may have gone out behind the message.
        if closes && self.behind == 0 {
            self.mail_open = false;
        }
    }

    /// Starts QUIT, unless it went out already behind a message.
    pub(super) fn start_quit(&mut self, now: Instant, sent: bool) -> Step {
        if !sent {
            self.transmit(now, Command::Quit, Expect::Quit);
        }
        Step::Continue
    }

    /// Writes a QUIT queued right behind the running transaction in the same
    /// write as the end of its message, once that end is out and the
    /// transaction pipelines (RFC 2920 section 3.1: QUIT may end a group).
    /// The transaction then needs nothing more of the server than the replies
    /// to what it sent: a refusal is not followed by RSET ([`Client::quit_behind`]).
    pub(super) fn pipeline_quit(&mut self, now: Instant) {
        let end_out = match &self.active {
            Some(Active {
                op: OpState::Tx(tx),
                hello: None,
                ..
            }) => tx.pipelined() && self.inflight.iter().any(|e| e.ends_message()),
            _ => false,
        };
        if !end_out || self.phase != Phase::Open {
            return;
        }
        let Some((_, OpState::Quit { sent })) = self.queue.front_mut() else {
            return;
        };
        if *sent {
            return;
        }
        *sent = true;
        self.transmit(now, Command::Quit, Expect::Quit);
    }

    /// Whether a QUIT went out behind the running operation.
    pub(super) fn quit_behind(&self) -> bool {
        matches!(self.queue.front(), Some((_, OpState::Quit { sent: true })))
    }

    /// The reply to QUIT, whatever it is, ends the session.
    pub(super) fn quit_reply(&mut self, reply: Reply) -> Step {
        self.phase = Phase::Closed;
        self.fatal = Some(Error::Disconnected);
        self.deadline = None;
        Step::Done(Ok(Outcome::Reply(reply)))
    }

    pub(super) fn data_reply(
        &mut self,
        now: Instant,
        d: &mut DataOp,
        expect: Expect,
        reply: Reply,
    ) -> Step {
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
                    self.deadline = Some(deadline_after(now, self.config.timeouts.data_term));
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

/// Whether `cmd` may carry the envelope, the message or an address, so that
/// [`Config::require_tls`](super::Config::require_tls) keeps it off a
/// plaintext session: MAIL, RCPT, VRFY, EXPN, and any command sent through
/// `docmd` (it may be any of those, or AUTH). RSET, NOOP, HELP and QUIT carry
/// nothing of the kind.
fn carries_envelope(cmd: &Command) -> bool {
    matches!(
        cmd,
        Command::Mail { .. }
            | Command::Rcpt { .. }
            | Command::Vrfy(_)
            | Command::Expn(_)
            | Command::Raw { .. }
    )
}
