//! The rows of the scenario table for `send_batch`: several messages on one
//! session, each with its own outcome, the next envelope going out behind
//! the end of the message before it when the server pipelines.

use super::*;

const MSG_B: &[u8] = b"From: a@example.org\r\nTo: c@example.org\r\nSubject: second\r\n\r\ntwo\r\n";
const MSG_C: &[u8] = b"From: a@example.org\r\nTo: d@example.org\r\nSubject: third\r\n\r\nthree\r\n";

/// Three messages to three recipients.
const THREE: &[Batched] = &[
    ("a@example.org", &["b@example.org"], MSG),
    ("a@example.org", &["c@example.org"], MSG_B),
    ("a@example.org", &["d@example.org"], MSG_C),
];

/// The second message to a recipient the server refuses.
const REFUSED_SECOND: &[Batched] = &[
    ("a@example.org", &["b@example.org"], MSG),
    ("a@example.org", &["x@example.org"], MSG_B),
    ("a@example.org", &["d@example.org"], MSG_C),
];

/// The last message to a recipient the server refuses.
const REFUSED_LAST: &[Batched] = &[
    ("a@example.org", &["b@example.org"], MSG),
    ("a@example.org", &["c@example.org"], MSG_B),
    ("a@example.org", &["x@example.org"], MSG_C),
];

/// Connects with CHUNKING off: messages go by DATA.
fn by_data() -> Act {
    tweak(Tweak {
        no_chunking: true,
        ..Tweak::default()
    })
}

/// Batches: every way of sending (BDAT, DATA, no pipelining), a refusal in
/// the middle, every message refused at its end, a session cut in the
/// middle.
pub(super) fn batches() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "a batch of three by BDAT, pipelined",
            server: ServerConfig::default(),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::SendBatch(THREE),
                    "sent bdat 250 | sent bdat 250 | sent bdat 250",
                ),
                (Act::Quit, "ok 221"),
            ],
            received: vec![MSG, MSG_B, MSG_C],
        },
        Scenario {
            name: "a batch of three by DATA, pipelined",
            server: ServerConfig::default(),
            steps: vec![
                (by_data(), "ok 220"),
                (Act::SendBatch(THREE), "sent 250 | sent 250 | sent 250"),
                (Act::Noop, "ok 250"),
            ],
            received: vec![MSG, MSG_B, MSG_C],
        },
        Scenario {
            name: "a batch without pipelining",
            server: ServerConfig::default(),
            steps: vec![
                (
                    tweak(Tweak {
                        no_chunking: true,
                        no_pipelining: true,
                        ..Tweak::default()
                    }),
                    "ok 220",
                ),
                (Act::SendBatch(THREE), "sent 250 | sent 250 | sent 250"),
            ],
            received: vec![MSG, MSG_B, MSG_C],
        },
        Scenario {
            name: "a batch with its second recipient refused, then the session goes on",
            server: refusing(&["x@example.org"], &[]),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::SendBatch(REFUSED_SECOND),
                    "sent bdat 250 | err RecipientsRefused x@example.org:550 | sent bdat 250",
                ),
                (Act::Noop, "ok 250"),
            ],
            received: vec![MSG, MSG_C],
        },
        Scenario {
            name: "a batch whose messages are refused at their end, no RSET between",
            server: ServerConfig::default().fail_data_with(554),
            steps: vec![
                (by_data(), "ok 220"),
                (
                    Act::SendBatch(THREE),
                    "err DataRefused 554 | err DataRefused 554 | err DataRefused 554",
                ),
                (Act::Noop, "ok 250"),
            ],
            received: vec![],
        },
        Scenario {
            name: "a batch cut by 421 after its first message",
            server: ServerConfig {
                reply_421_after: Some(4),
                ..ServerConfig::default()
            },
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::SendBatch(THREE),
                    "sent bdat 250 | err ServiceClosing 421 | err ServiceClosing 421",
                ),
            ],
            received: vec![MSG],
        },
        Scenario {
            name: "a batch by DATA with its second recipient refused",
            server: refusing(&["x@example.org"], &[]),
            steps: vec![
                (by_data(), "ok 220"),
                (
                    Act::SendBatch(REFUSED_SECOND),
                    "sent 250 | err RecipientsRefused x@example.org:550 | sent 250",
                ),
                (Act::Noop, "ok 250"),
            ],
            received: vec![MSG, MSG_C],
        },
        Scenario {
            name: "a batch by DATA cut by 421 after its first message",
            server: ServerConfig {
                reply_421_after: Some(4),
                ..ServerConfig::default()
            },
            steps: vec![
                (by_data(), "ok 220"),
                (
                    Act::SendBatch(THREE),
                    "sent 250 | err ServiceClosing 421 | err ServiceClosing 421",
                ),
            ],
            received: vec![MSG],
        },
    ]
}

/// Batches ended by QUIT (`send_batch_and_quit`): QUIT behind the last
/// message, whose outcome stays its own.
pub(super) fn batches_then_quit() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "a batch of three by BDAT, then QUIT with the last",
            server: ServerConfig::default(),
            steps: vec![
                (plain(), "ok 220"),
                (
                    Act::SendBatchAndQuit(THREE),
                    "sent bdat 250 | sent bdat 250 | sent bdat 250",
                ),
            ],
            received: vec![MSG, MSG_B, MSG_C],
        },
        Scenario {
            name: "a batch of three by DATA, then QUIT with the last",
            server: ServerConfig::default(),
            steps: vec![
                (by_data(), "ok 220"),
                (
                    Act::SendBatchAndQuit(THREE),
                    "sent 250 | sent 250 | sent 250",
                ),
            ],
            received: vec![MSG, MSG_B, MSG_C],
        },
        Scenario {
            name: "a batch then QUIT, its last recipient refused",
            server: refusing(&["x@example.org"], &[]),
            steps: vec![
                (by_data(), "ok 220"),
                (
                    Act::SendBatchAndQuit(REFUSED_LAST),
                    "sent 250 | sent 250 | err RecipientsRefused x@example.org:550",
                ),
            ],
            received: vec![MSG, MSG_B],
        },
        Scenario {
            name: "a batch then QUIT without pipelining, its last refused at its end",
            server: ServerConfig::default().fail_data_with(554),
            steps: vec![
                (
                    tweak(Tweak {
                        no_chunking: true,
                        no_pipelining: true,
                        ..Tweak::default()
                    }),
                    "ok 220",
                ),
                (
                    Act::SendBatchAndQuit(THREE),
                    "err DataRefused 554 | err DataRefused 554 | err DataRefused 554",
                ),
            ],
            received: vec![],
        },
        Scenario {
            name: "an empty batch then QUIT",
            server: ServerConfig::default(),
            steps: vec![(plain(), "ok 220"), (Act::SendBatchAndQuit(&[]), "")],
            received: vec![],
        },
    ]
}
