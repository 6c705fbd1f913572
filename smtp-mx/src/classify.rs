//! Postfix's failure classification, per recipient, across the attempts of
//! one delivery to one domain (Postfix `smtp_trouble.c`).
//!
//! * A recipient accepted is delivered; one refused with 5xx bounces.
//! * A soft failure (4xx, or a connection-level failure that allows the
//!   next MX) on an attempt that is not the final one keeps the recipient
//!   for the next attempt; on the final attempt it defers the recipient (or
//!   bounces it, for a class 5 failure such as a 5xx greeting or a
//!   REQUIRETLS refusal).
//! * A failure without `next_mx` ends the recipient at once: bounced for
//!   class 5, deferred for class 4.
//! * A recipient whose message's end went out without an answer is
//!   [`RecipientStatus::Uncertain`]: the server may have it. It is never
//!   tried again by this delivery.
//!
//! An attempt is final when it is the last address of the plan, or when it
//! is the session that reaches the session limit (Postfix's
//! `smtp_mx_session_limit`: sessions that got past the greeting count, an
//! address that refused the connection does not).

use smtp_sansio::{Delivery, EnhancedStatus, Reply};

use crate::failure::{Failure, Reason, codes};

/// What one session said about one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientOutcome {
    /// The server accepted the message for it (the reply to the end of the
    /// message, or its own LMTP reply).
    Accepted(Option<Reply>),
    /// The server refused it (its RCPT, or MAIL, DATA or the end of the
    /// message) with this reply.
    Refused(Reply),
    /// The end of the message went out and no answer came: it may have been
    /// delivered.
    Unknown(Option<Reply>),
    /// Nothing for it was accepted or refused: the session failed first.
    NotSent(Failure),
}

impl RecipientOutcome {
    /// The outcome from the core's [`Delivery`] vocabulary and the reply that
    /// decided it, if one came. A refusal without a reply, and a lost
    /// session, are [`RecipientOutcome::NotSent`] with 4.4.2; a kind of
    /// delivery this crate does not know is treated as unknown, never as
    /// not sent.
    #[must_use]
    pub fn from_delivery(delivery: Delivery, reply: Option<Reply>) -> RecipientOutcome {
        let lost = || {
            RecipientOutcome::NotSent(Failure::new(
                codes::CONNECTION_DROPPED,
                true,
                Reason::ConnectionLost,
            ))
        };
        match delivery {
            Delivery::Accepted => RecipientOutcome::Accepted(reply),
            Delivery::Refused => match reply {
                Some(r) if r.is_transient() || r.is_permanent() => RecipientOutcome::Refused(r),
                _ => lost(),
            },
            Delivery::NotSent => lost(),
            _ => RecipientOutcome::Unknown(reply),
        }
    }
}

/// Why a recipient was bounced or deferred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// The enhanced status (the server's, or this crate's).
    pub status: EnhancedStatus,
    /// The attempt (index into the delivery's attempts) that decided it,
    /// `None` for a failure of the whole destination.
    pub attempt: Option<usize>,
    /// The server's reply, when one decided it.
    pub reply: Option<Reply>,
    /// This crate's reason, when no reply decided it (or the reply was a
    /// greeting refusal).
    pub reason: Option<Reason>,
}

/// One recipient's status in the delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientStatus {
    /// Not decided yet: goes to the next attempt.
    Pending,
    /// Accepted by the server of `attempt`.
    Delivered {
        /// The attempt that delivered it.
        attempt: usize,
        /// The server's reply (its queue id, if it gave one).
        reply: Option<Reply>,
    },
    /// Permanently refused.
    Bounced(Cause),
    /// Not delivered this time; to be tried again later.
    Deferred(Cause),
    /// The server of `attempt` may have accepted it; this delivery does not
    /// send it again.
    Uncertain {
        /// The attempt whose end of message went unanswered.
        attempt: usize,
        /// A reply that came, if any.
        reply: Option<Reply>,
    },
}

/// The status class of a reply: its enhanced code, or `X.0.0`.
fn reply_status(reply: &Reply) -> EnhancedStatus {
    reply.enhanced().unwrap_or(EnhancedStatus {
        class: if reply.is_permanent() { 5 } else { 4 },
        subject: 0,
        detail: 0,
    })
}

/// The per-recipient state of one delivery to one domain.
#[derive(Debug, Clone)]
pub struct Tracker {
    statuses: Vec<RecipientStatus>,
    last_soft: Vec<Option<Cause>>,
    attempts: usize,
    max_sessions: usize,
    next: usize,
    sessions: usize,
    current: Option<usize>,
}

impl Tracker {
    /// A delivery of `recipients` recipients over `attempts` addresses, with
    /// at most `max_sessions` sessions (0: no limit).
    #[must_use]
    pub fn new(recipients: usize, attempts: usize, max_sessions: usize) -> Tracker {
        Tracker {
            statuses: vec![RecipientStatus::Pending; recipients],
            last_soft: vec![None; recipients],
            attempts,
            max_sessions,
            next: 0,
            sessions: 0,
            current: None,
        }
    }

    /// The destination failed before any attempt (a routing failure): every
    /// pending recipient is bounced (class 5) or deferred (class 4).
    pub fn fail_all(&mut self, failure: &Failure) {
        let cause = Cause {
            status: failure.status,
            attempt: None,
            reply: None,
            reason: Some(failure.reason.clone()),
        };
        for s in &mut self.statuses {
            if *s == RecipientStatus::Pending {
                *s = if failure.is_permanent() {
                    RecipientStatus::Bounced(cause.clone())
                } else {
                    RecipientStatus::Deferred(cause.clone())
                };
            }
        }
        self.current = None;
        self.next = self.attempts;
    }

    /// The next attempt to make and the recipients it carries, or `None`
    /// when the delivery is over (every recipient decided, the addresses
    /// used up, or the session limit reached); then any recipient still
    /// pending is deferred with its last soft failure.
    pub fn next_attempt(&mut self) -> Option<(usize, Vec<usize>)> {
        let pending: Vec<usize> = (0..self.statuses.len())
            .filter(|i| self.statuses[*i] == RecipientStatus::Pending)
            .collect();
        let limit_reached = self.max_sessions != 0 && self.sessions >= self.max_sessions;
        if pending.is_empty() || self.next >= self.attempts || limit_reached {
            self.current = None;
            for i in pending {
                let cause = self.last_soft[i].clone().unwrap_or(Cause {
                    status: codes::NO_ANSWER,
                    attempt: None,
                    reply: None,
                    reason: Some(Reason::Connect),
                });
                self.statuses[i] = RecipientStatus::Deferred(cause);
            }
            return None;
        }
        let attempt = self.next;
        self.next += 1;
        self.current = Some(attempt);
        Some((attempt, pending))
    }

    /// The current attempt failed before the server answered for any
    /// recipient (connection, greeting, EHLO, TLS, a policy refusal). Not a
    /// session for the session limit.
    pub fn attempt_failed(&mut self, failure: &Failure) {
        let Some(attempt) = self.current.take() else {
            return;
        };
        let last = attempt + 1 >= self.attempts;
        for i in 0..self.statuses.len() {
            if self.statuses[i] == RecipientStatus::Pending {
                self.apply_failure(i, attempt, failure, last);
            }
        }
    }

    /// The session of the current attempt ended, with an outcome for each
    /// recipient it carried (a recipient it carried and `outcomes` omits is
    /// taken as not sent, 4.4.2).
    pub fn session_ended(&mut self, outcomes: &[(usize, RecipientOutcome)]) {
        let Some(attempt) = self.current.take() else {
            return;
        };
        self.sessions += 1;
        let last = attempt + 1 >= self.attempts
            || (self.max_sessions != 0 && self.sessions >= self.max_sessions);
        let lost = Failure::new(codes::CONNECTION_DROPPED, true, Reason::ConnectionLost);
        for i in 0..self.statuses.len() {
            if self.statuses[i] != RecipientStatus::Pending {
                continue;
            }
            let outcome = outcomes.iter().find(|(r, _)| *r == i).map(|(_, o)| o);
            match outcome {
                Some(RecipientOutcome::Accepted(reply)) => {
                    self.statuses[i] = RecipientStatus::Delivered {
                        attempt,
                        reply: reply.clone(),
                    };
                }
                Some(RecipientOutcome::Unknown(reply)) => {
                    self.statuses[i] = RecipientStatus::Uncertain {
                        attempt,
                        reply: reply.clone(),
                    };
                }
                Some(RecipientOutcome::Refused(reply)) => {
                    let cause = Cause {
                        status: reply_status(reply),
                        attempt: Some(attempt),
                        reply: Some(reply.clone()),
                        reason: None,
                    };
                    if reply.is_permanent() {
                        self.statuses[i] = RecipientStatus::Bounced(cause);
                    } else if last {
                        self.statuses[i] = RecipientStatus::Deferred(cause);
                    } else {
                        self.last_soft[i] = Some(cause);
                    }
                }
                Some(RecipientOutcome::NotSent(f)) => {
                    let f = f.clone();
                    self.apply_failure(i, attempt, &f, last);
                }
                None => self.apply_failure(i, attempt, &lost, last),
            }
        }
    }

    /// Applies a failure without a reply of its own to recipient `i`.
    fn apply_failure(&mut self, i: usize, attempt: usize, failure: &Failure, last: bool) {
        let reply = match &failure.reason {
            Reason::Rejected(r) => Some(r.clone()),
            _ => None,
        };
        let cause = Cause {
            status: failure.status,
            attempt: Some(attempt),
            reply,
            reason: Some(failure.reason.clone()),
        };
        if failure.next_mx && !last {
            self.last_soft[i] = Some(cause);
        } else if failure.is_permanent() {
            self.statuses[i] = RecipientStatus::Bounced(cause);
        } else {
            self.statuses[i] = RecipientStatus::Deferred(cause);
        }
    }

    /// Whether every recipient is decided.
    #[must_use]
    pub fn is_done(&self) -> bool {
        !self.statuses.contains(&RecipientStatus::Pending)
    }

    /// The number of sessions so far.
    #[must_use]
    pub fn sessions(&self) -> usize {
        self.sessions
    }

    /// Each recipient's status, in the order given to [`Tracker::new`].
    #[must_use]
    pub fn statuses(&self) -> &[RecipientStatus] {
        &self.statuses
    }

    /// The statuses, consuming the tracker.
    #[must_use]
    pub fn into_statuses(self) -> Vec<RecipientStatus> {
        self.statuses
    }
}
