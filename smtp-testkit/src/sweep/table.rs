//! The sessions of the sweep: the plans cut at sampled offsets and the
//! refusal plans.

use super::{Expected, Message, Plan};
use smtp_sansio::Delivery;

use crate::{ServerConfig, ServerTls};

const BODY: &str = "Subject: sweep\r\n\r\n.a line with a dot\r\nsecond line\r\n";

fn message(i: usize, to: Vec<&'static str>) -> Message {
    Message {
        from: "a@example.org",
        to,
        body: format!("X-Sweep: {i}\r\n{BODY}").into_bytes(),
        reader: false,
    }
}

fn plan(name: &'static str, server: ServerConfig, messages: Vec<Message>) -> Plan {
    Plan {
        name,
        server,
        lmtp: false,
        starttls: false,
        login: None,
        messages,
        send_and_quit: false,
        expect: Vec::new(),
    }
}

/// The sessions cut at sampled offsets: pipelined DATA, DATA without
/// pipelining, BDAT in several chunks, STARTTLS + AUTH + one message, LMTP
/// with three recipients, two messages on one connection, and
/// `send_and_quit` with DATA and with BDAT (QUIT in the same write as the
/// end of the message).
#[must_use]
pub fn plans() -> Vec<Plan> {
    let data = |pipelining: bool| {
        let mut e = vec!["8BITMIME", "SIZE 10485760"];
        if pipelining {
            e.push("PIPELINING");
        }
        ServerConfig::default().extensions(&e)
    };
    let mut big = format!("X-Sweep: 0\r\n{BODY}").into_bytes();
    let line = [b"x".repeat(998), b"\r\n".to_vec()].concat();
    while big.len() < 150 * 1024 {
        big.extend_from_slice(&line);
    }
    let one = || vec![message(0, vec!["b@example.org"])];
    vec![
        plan(
            "pipelined DATA",
            data(true).refuse_recipient("refused@example.org"),
            vec![message(0, vec!["b@example.org", "refused@example.org"])],
        ),
        plan("DATA without pipelining", data(false), one()),
        plan(
            "BDAT in several chunks",
            ServerConfig::default(),
            vec![Message {
                from: "a@example.org",
                to: vec!["b@example.org"],
                body: big,
                reader: true,
            }],
        ),
        Plan {
            starttls: true,
            login: Some(("user", "secret")),
            ..plan(
                "STARTTLS, AUTH and one message",
                ServerConfig::default()
                    .tls(ServerTls::StartTls)
                    .user("user", "secret"),
                one(),
            )
        },
        Plan {
            lmtp: true,
            ..plan(
                "LMTP with three recipients",
                ServerConfig::lmtp_tcp().fail_after_data("full@example.org"),
                vec![message(
                    0,
                    vec!["b@example.org", "full@example.org", "d@example.org"],
                )],
            )
        },
        plan(
            "two messages on one connection",
            ServerConfig::default(),
            vec![
                message(0, vec!["b@example.org"]),
                message(1, vec!["c@example.org"]),
            ],
        ),
        Plan {
            send_and_quit: true,
            ..plan("send_and_quit, pipelined DATA", data(true), one())
        },
        Plan {
            send_and_quit: true,
            ..plan("send_and_quit, BDAT", ServerConfig::default(), one())
        },
    ]
}

/// The refusal plans, each with its exact outcome: the server refuses the
/// sender, every recipient, a BDAT chunk or the end of the message (5xx,
/// 4xx, 421), then breaks the connection when it next reads
/// ([`Fault::AfterRefusal`](crate::Fault::AfterRefusal)): the refusal must stay the result.
#[must_use]
pub fn refusal_plans() -> Vec<Plan> {
    let pipelined = || ServerConfig::default().extensions(&["8BITMIME", "PIPELINING"]);
    let plain = || ServerConfig::default().extensions(&["8BITMIME"]);
    let chunked = || ServerConfig::default().extensions(&["PIPELINING", "CHUNKING"]);
    let refused = |kind, code| {
        vec![Expected {
            kind,
            code,
            delivery: Delivery::Refused,
        }]
    };
    let to = |r: &'static str| vec![message(0, vec![r])];
    let one = || to("b@example.org");
    let mut big = format!("X-Sweep: 0\r\n{BODY}").into_bytes();
    big.extend_from_slice(&b"y".repeat(4096));
    vec![
        Plan {
            expect: refused("sender_refused", 553),
            ..plan(
                "sender refused, pipelined",
                pipelined().refuse_sender("a@example.org"),
                one(),
            )
        },
        Plan {
            expect: refused("sender_refused", 553),
            ..plan(
                "sender refused",
                plain().refuse_sender("a@example.org"),
                one(),
            )
        },
        Plan {
            expect: refused("recipients_refused", 550),
            ..plan(
                "every recipient refused, pipelined",
                pipelined().refuse_recipient("x@example.org"),
                to("x@example.org"),
            )
        },
        Plan {
            expect: refused("recipients_refused", 550),
            ..plan(
                "every recipient refused",
                plain().refuse_recipient("x@example.org"),
                to("x@example.org"),
            )
        },
        Plan {
            expect: refused("data_refused", 552),
            ..plan(
                "BDAT chunk refused",
                // No SIZE offered, so the client cannot know the limit.
                chunked().size_limit(1024),
                vec![Message {
                    from: "a@example.org",
                    to: vec!["b@example.org"],
                    body: big,
                    reader: true,
                }],
            )
        },
        Plan {
            expect: refused("data_refused", 554),
            ..plan("final 554 to DATA", plain().fail_data_with(554), one())
        },
        Plan {
            expect: refused("data_refused", 451),
            ..plan(
                "final 451 to BDAT LAST",
                chunked().fail_data_with(451),
                one(),
            )
        },
        Plan {
            expect: refused("service_closing", 421),
            ..plan("final 421 to DATA", plain().fail_data_with(421), one())
        },
        Plan {
            expect: refused("service_closing", 421),
            ..plan(
                "final 421 to BDAT LAST",
                chunked().fail_data_with(421),
                one(),
            )
        },
        Plan {
            lmtp: true,
            expect: refused("recipients_refused", 550),
            ..plan(
                "LMTP, every recipient refused after the message",
                ServerConfig::lmtp_tcp().fail_data_with(550),
                vec![message(0, vec!["b@example.org", "c@example.org"])],
            )
        },
        Plan {
            send_and_quit: true,
            expect: refused("data_refused", 554),
            ..plan(
                "send_and_quit, final 554",
                pipelined().fail_data_with(554),
                one(),
            )
        },
        Plan {
            send_and_quit: true,
            expect: refused("service_closing", 421),
            ..plan(
                "send_and_quit, final 421 to BDAT LAST",
                chunked().fail_data_with(421),
                one(),
            )
        },
        Plan {
            send_and_quit: true,
            expect: refused("recipients_refused", 550),
            ..plan(
                "send_and_quit, every recipient refused",
                pipelined().refuse_recipient("x@example.org"),
                to("x@example.org"),
            )
        },
    ]
}
