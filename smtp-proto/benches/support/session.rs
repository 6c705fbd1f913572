//! One client session driven with no I/O: the server's replies are canned, so what
//! is measured is the core alone. Shared by the criterion benchmark and the
//! allocation test.

use std::time::Instant;

use smtp_sansio::{Address, Client, Config, Domain, Event, Output, Transaction};

/// A session past EHLO, sending the same message again and again.
pub struct Session {
    client: Client,
    now: Instant,
    from: Address,
    to: Address,
    message: Vec<u8>,
    /// The server's answers, one batch per read the client asks for.
    replies: &'static [&'static [u8]],
}

impl Session {
    /// A session whose server offers PIPELINING, and CHUNKING when `chunking`.
    pub fn new(chunking: bool, message: Vec<u8>) -> Session {
        let now = Instant::now();
        let mut client = Client::new(Config::new(Domain::new("client.example").unwrap()), now);
        client.handle_input(now, b"220 mx ready\r\n");
        let _ehlo = client.ehlo(now, None);
        if chunking {
            client.handle_input(
                now,
                b"250-mx\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 SIZE 100000000\r\n",
            );
        } else {
            client.handle_input(now, b"250-mx\r\n250-PIPELINING\r\n250 SIZE 100000000\r\n");
        }
        while !matches!(client.poll_output(), Output::Wait(_)) {}
        let replies: &'static [&'static [u8]] = if chunking {
            &[b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 queued\r\n"]
        } else {
            &[
                b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n",
                b"250 2.0.0 queued\r\n",
            ]
        };
        Session {
            client,
            now,
            from: Address::new("a@example.org").unwrap(),
            to: Address::new("b@example.org").unwrap(),
            message,
            replies,
        }
    }

    /// Sends one message; returns the bytes written and the number of writes.
    pub fn send_one(&mut self) -> (usize, usize) {
        let now = self.now;
        let tx =
            Transaction::new(self.from.clone(), [self.to.clone()]).size(self.message.len() as u64);
        let op = self.client.send(now, tx);
        let (mut sent, mut writes, mut k) = (0, 0, 0);
        loop {
            match self.client.drive(op) {
                Output::Transmit(v) => {
                    sent += v.len();
                    writes += 1;
                    self.client.recycle(v);
                }
                Output::Event(Event::BodyWanted { .. }) => {
                    self.client.send_body(now, &self.message, true).unwrap();
                }
                Output::Wait(_) => {
                    self.client.handle_input(now, self.replies[k]);
                    k += 1;
                }
                Output::Event(Event::Completed { result, .. }) => {
                    assert!(result.is_ok());
                    return (sent, writes);
                }
                Output::StartTls { .. } | Output::Trace(_) | Output::Closed => {}
            }
        }
    }
}

/// A text message of about `size` bytes.
pub fn text_message(size: usize) -> Vec<u8> {
    let line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempo\r\n";
    let mut m = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: bench\r\n\r\n".to_vec();
    while m.len() < size {
        m.extend_from_slice(line);
    }
    m
}
