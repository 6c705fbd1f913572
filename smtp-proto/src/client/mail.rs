//! The mail transaction, smtplib's `sendmail`: RFC 5321 section 3.3 (MAIL, RCPT,
//! DATA and their replies; RSET after a refusal, section 4.1.1.5), RFC 2920
//! (PIPELINING: MAIL, the RCPTs and DATA in one write, replies in order; section
//! 3.1 for DATA accepted without a valid recipient), RFC 3030 (BDAT), RFC 1870
//! (SIZE), RFC 6531 (SMTPUTF8) and RFC 2033 section 4.2 (LMTP: one reply per
//! accepted recipient after the body).

use std::time::Instant;

use super::deadline_after;
use super::{
    Client, Op, OpState, Outcome, Protocol, RecipientResult, Step, Transaction, TransactionResult,
    dispatch::Expect, extensions::check_envelope,
};
use crate::command::{Command, Parameter};
use crate::error::{Delivery, Error, ProtocolError, RecipientDelivery, UsageError};
use crate::reply::Reply;

/// Recipients with a reply each, as errors carry them.
type AddressReplies = Vec<(String, Reply)>;

/// Where a transaction is.
#[derive(Debug)]
pub(super) enum TxStage {
    Envelope,
    Body,
    Final,
    Reset,
}

/// A running transaction and every reply it has had.
#[derive(Debug)]
pub(super) struct TxOp {
    tx: Transaction,
    pipelined: bool,
    chunked: bool,
    stage: TxStage,
    /// Its envelope went out behind the end of the message before it
    /// ([`Client::pipeline_next_transaction`]): starting it sends nothing more.
    prestarted: bool,
    mail_reply: Option<Reply>,
    rcpt_replies: Vec<Option<Reply>>,
    final_replies: Vec<Option<Reply>>,
    final_reply: Option<Reply>,
    error: Option<Error>,
}

impl TxOp {
    /// Whether the transaction pipelines its commands (PIPELINING offered and
    /// used).
    pub(super) fn pipelined(&self) -> bool {
        self.pipelined
    }

    /// The refusal (of MAIL, of every RCPT, of DATA or the message) that decided
    /// the transaction's outcome, if one came.
    pub(super) fn take_refusal(&mut self) -> Option<Error> {
        self.error.take()
    }

    /// What the server said about each recipient so far, `reply` (the last
    /// one, which ends the session) counted as the answer to `expect`: the RCPT
    /// replies in order and, under LMTP, the replies after the message.
    pub(super) fn replies_so_far(
        &self,
        expect: Expect,
        reply: &Reply,
        lmtp: bool,
    ) -> (AddressReplies, AddressReplies) {
        let first_accepted = || {
            self.rcpt_replies
                .iter()
                .position(|r| r.as_ref().is_some_and(Reply::is_positive))
        };
        let (rcpt_at, final_at) = match expect {
            Expect::Rcpt(i) => (Some(i), None),
            Expect::Final if lmtp => (None, first_accepted()),
            Expect::LmtpFinal(j) => (None, Some(j)),
            _ => (None, None),
        };
        let collect = |replies: &[Option<Reply>], at: Option<usize>| {
            self.tx
                .to
                .iter()
                .zip(replies)
                .enumerate()
                .filter_map(|(i, (r, got))| {
                    let got = if at == Some(i) {
                        Some(reply)
                    } else {
                        got.as_ref()
                    };
                    got.map(|x| (r.address.as_str().to_owned(), x.clone()))
                })
                .collect()
        };
        (
            collect(&self.rcpt_replies, rcpt_at),
            collect(&self.final_replies, final_at),
        )
    }
}

impl TxOp {
    /// Every recipient was refused at RCPT, all replies in: the transaction's
    /// answer, whatever comes after (the reply to DATA included).
    pub(super) fn all_refused(&self) -> Option<Error> {
        let answered = self.rcpt_replies.iter().all(Option::is_some);
        (answered && !Client::any_rcpt_accepted(self)).then(|| Client::recipients_refused(self))
    }

    /// LMTP: records `reply` as the reply after the message that `expect`
    /// stands for (the first accepted recipient's for [`Expect::Final`]);
    /// false when no recipient's reply it can be.
    pub(super) fn record_final(&mut self, expect: Expect, reply: Reply) -> bool {
        let at = match expect {
            Expect::Final => self
                .rcpt_replies
                .iter()
                .position(|r| r.as_ref().is_some_and(Reply::is_positive)),
            Expect::LmtpFinal(j) => Some(j),
            _ => None,
        };
        match at.and_then(|i| self.final_replies.get_mut(i)) {
            Some(slot) if self.error.is_none() => {
                *slot = Some(reply);
                true
            }
            _ => false,
        }
    }

    /// LMTP: a recipient accepted at RCPT still awaits its reply after the
    /// message.
    pub(super) fn finals_missing(&self) -> bool {
        self.rcpt_replies
            .iter()
            .zip(&self.final_replies)
            .any(|(rcpt, own)| rcpt.as_ref().is_some_and(Reply::is_positive) && own.is_none())
    }

    /// Each recipient's fate once the end of the message went out and the
    /// session ended before the transaction's result: refused at RCPT, or
    /// under LMTP accepted or refused by its own reply after the message, and
    /// otherwise unknown.
    pub(super) fn deliveries(&self, lmtp: bool) -> Vec<RecipientDelivery> {
        self.tx
            .to
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let rcpt = self.rcpt_replies.get(i).and_then(Option::as_ref);
                let own = self.final_replies.get(i).and_then(Option::as_ref);
                let decided = match rcpt {
                    Some(reply) if !reply.is_positive() => Some((Delivery::Refused, reply)),
                    Some(_) if lmtp => own.map(|reply| {
                        let d = if reply.is_positive() {
                            Delivery::Accepted
                        } else {
                            Delivery::Refused
                        };
                        (d, reply)
                    }),
                    _ => None,
                };
                RecipientDelivery {
                    address: r.address.as_str().to_owned(),
                    delivery: decided.map_or(Delivery::Unknown, |(d, _)| d),
                    reply: decided.map(|(_, reply)| reply.clone()),
                }
            })
            .collect()
    }
}

impl Client {
    /// smtplib's `sendmail`: a whole transaction. Emits [`Event::BodyWanted`](super::Event::BodyWanted) when
    /// the body is wanted, and completes with [`Outcome::Transaction`].
    ///
    /// Transactions enqueued one behind another run in turn; with
    /// PIPELINING the envelope of the next one (MAIL, RCPT and DATA)
    /// leaves in the same write as the end of the message before it (RFC
    /// 2920 section 3.1), so that a session carrying several messages takes
    /// one round trip per message. Enqueue the next one before handing over
    /// the last chunk of the running one's body to have it go along.
    pub fn send(&mut self, now: Instant, transaction: Transaction) -> Op<TransactionResult> {
        self.enqueue(
            now,
            OpState::Tx(Box::new(TxOp {
                rcpt_replies: vec![None; transaction.to.len()],
                final_replies: vec![None; transaction.to.len()],
                tx: transaction,
                pipelined: false,
                chunked: false,
                stage: TxStage::Envelope,
                prestarted: false,
                mail_reply: None,
                final_reply: None,
                error: None,
            })),
        )
    }

    // ----- internals -----

    /// LMTP: a closing reply (421) in place of a recipient's reply after the
    /// message is that recipient's refusal. When it was the last reply
    /// awaited and the message was accepted for another recipient, the
    /// transaction completes with its result, and true is returned;
    /// otherwise the reply is kept for the error that ends the transaction.
    pub(super) fn lmtp_closing_final(&mut self, expect: Expect, reply: &Reply) -> bool {
        if self.config.protocol != Protocol::Lmtp || !expect.ends_message() {
            return false;
        }
        let Some(mut active) = self.active.take() else {
            return false;
        };
        let mut result = None;
        if let (OpState::Tx(tx), None) = (&mut active.op, &active.hello) {
            let delivered = |tx: &TxOp| {
                tx.final_replies
                    .iter()
                    .any(|r| r.as_ref().is_some_and(Reply::is_positive))
            };
            if tx.record_final(expect, reply.clone()) && !tx.finals_missing() && delivered(tx) {
                result = Some(self.tx_result(tx));
            }
        }
        self.active = Some(active);
        match result {
            Some(result) => {
                self.complete(Ok(Outcome::Transaction(result)));
                true
            }
            None => false,
        }
    }

    pub(super) fn start_tx(&mut self, now: Instant, op: &mut TxOp) -> Step {
        if !op.prestarted {
            if let Err(e) = self.prepare_tx(op) {
                return Step::Done(Err(e));
            }
            self.transmit_envelope(now, op);
        }
        if op.pipelined && op.chunked {
            self.start_body(true, true);
            op.stage = TxStage::Body;
        }
        Step::Continue
    }

    /// MAIL; when pipelining, the RCPTs and (without CHUNKING) DATA behind
    /// it in the same write.
    fn transmit_envelope(&mut self, now: Instant, op: &TxOp) {
        let tx = &op.tx;
        let mail = Command::Mail {
            from: tx.from.clone(),
            params: tx.mail_params.clone(),
        };
        self.transmit(now, mail, Expect::Mail);
        if op.pipelined {
            for (i, r) in tx.to.iter().enumerate() {
                let cmd = Command::Rcpt {
                    to: r.address.clone(),
                    params: r.params.clone(),
                };
                self.transmit(now, cmd, Expect::Rcpt(i));
            }
            if !op.chunked {
                self.transmit(now, Command::Data, Expect::Data);
            }
        }
    }

    /// Writes the envelope of a transaction queued right behind the running
    /// one in the same write as the end of the running one's message, once
    /// that end is out and the transaction pipelines its DATA: RFC 2920
    /// section 3.1 lets a message's content begin a group, and the dot that
    /// ends a message after 354 ends its transaction whatever the reply (RFC
    /// 5321 section 4.1.1.4), so the next MAIL, its RCPTs and DATA need not
    /// wait for that reply. A session carrying several messages so takes
    /// one round trip per message instead of two. At most one transaction
    /// goes ahead, and the running one is then never followed by RSET
    /// ([`Client::tx_reset`]).
    ///
    /// Not with CHUNKING: a transaction there is one round trip already
    /// (MAIL, RCPT and `BDAT LAST` in one write), and a refused `BDAT` may
    /// leave the server's transaction open, into which a RCPT sent ahead
    /// would add its recipient.
    pub(super) fn pipeline_next_transaction(&mut self, now: Instant) {
        let end_out = match &self.active {
            Some(super::Active {
                op: OpState::Tx(tx),
                hello: None,
                ..
            }) => tx.pipelined && !tx.chunked && self.inflight.iter().any(|e| e.ends_message()),
            _ => false,
        };
        let next_waits = matches!(self.queue.front(), Some((_, OpState::Tx(t))) if !t.prestarted);
        if !end_out || !next_waits || self.behind > 0 || self.phase != super::Phase::Open {
            return;
        }
        let Some((id, mut state)) = self.queue.pop_front() else {
            return;
        };
        if let OpState::Tx(op) = &mut state {
            // One the server's extensions refuse waits for its turn, which
            // fails it with the same error.
            if self.prepare_tx(op).is_ok() && op.pipelined && !op.chunked {
                let before = self.inflight.len();
                self.transmit_envelope(now, op);
                self.behind = self.inflight.len() - before;
                op.prestarted = true;
            }
        }
        self.queue.push_front((id, state));
    }

    /// Checks a transaction against the server's extensions ([`check_envelope`])
    /// and completes its parameters: after HELO they are dropped, as smtplib's
    /// `sendmail` does; after EHLO `SMTPUTF8` is added for non-ASCII addresses and
    /// `SIZE=` when the server offers SIZE and the size is known.
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
        if self.caps.is_none() {
            // HELO only: options are suppressed, as smtplib does.
            tx.mail_params.clear();
            for r in &mut tx.to {
                r.params.clear();
            }
        }
        check_envelope(
            self.check_session(),
            &tx.mail_params,
            tx.to.iter().map(|r| r.params.as_slice()),
            international,
            tx.size,
        )?;
        let Some(caps) = self.caps.as_ref() else {
            return Ok(());
        };
        let has_param = |params: &[Parameter], k: &str| params.iter().any(|p| p.keyword() == k);
        if international && !has_param(&tx.mail_params, "SMTPUTF8") {
            tx.mail_params.push(Parameter::parse("SMTPUTF8")?);
        }
        if let Some(size) = tx.size.filter(|_| caps.offers_size()) {
            if !has_param(&tx.mail_params, "SIZE") {
                tx.mail_params.push(Parameter::size(size));
            }
        }
        op.pipelined = self.config.pipelining && caps.pipelining();
        op.chunked = self.config.chunking && caps.chunking();
        Ok(())
    }

    pub(super) fn tx_reply(
        &mut self,
        now: Instant,
        op: &mut TxOp,
        expect: Expect,
        reply: Reply,
    ) -> Step {
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
                        self.transmit(now, Command::Data, Expect::Data);
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
                self.body_chunk_answered();
                if !reply.is_positive() {
                    self.record_body_failure(op, reply);
                }
                self.after_body_progress(now);
            }
            Expect::Final => {
                self.body_chunk_answered();
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
                            self.deadline =
                                Some(deadline_after(now, self.config.timeouts.data_term));
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
        self.abort_body();
    }

    /// Decides what follows once every sent command of the transaction is answered.
    pub(super) fn tx_settle(&mut self, now: Instant, op: &mut TxOp) -> Step {
        // A QUIT pipelined behind the message waits at the end of the queue,
        // as do the replies to the next transaction's envelope.
        let own = self.inflight.len().saturating_sub(self.behind);
        if self.inflight.iter().take(own).any(|e| *e != Expect::Quit) {
            return Step::Continue;
        }
        let body_open = self.body_open();
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
        if self.quit_behind() || self.behind > 0 {
            // QUIT or the next envelope went out behind the message, whose
            // end ended the transaction on the server: the refusal is the
            // transaction's answer without RSET.
            let err = op
                .error
                .take()
                .unwrap_or(Error::Usage(UsageError::WrongState("reset")));
            return Step::Done(Err(err));
        }
        op.stage = TxStage::Reset;
        self.body = None;
        self.transmit(now, Command::Rset, Expect::Rset);
        Step::Continue
    }

    fn send_rcpt(&mut self, now: Instant, op: &TxOp, i: usize) {
        if let Some(r) = op.tx.to.get(i) {
            let cmd = Command::Rcpt {
                to: r.address.clone(),
                params: r.params.clone(),
            };
            self.transmit(now, cmd, Expect::Rcpt(i));
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
}
