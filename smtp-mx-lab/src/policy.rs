//! A tiny HTTPS server for MTA-STS policies on 127.0.0.20:443: one
//! certificate (from the lab CA) for every `mta-sts.<domain>` of the lab,
//! and per domain what to answer: a policy, or a fault (a redirect,
//! `text/html`, a body over 64 KiB, 404, or "down": the connection closed
//! after the ClientHello, before any answer). It counts the requests it
//! answered per domain, so that a scenario can say how many fetches came.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::server::Acceptor;

use crate::Failure;

/// Where the policy server listens.
pub const POLICY_ADDR: ([u8; 4], u16) = ([127, 0, 0, 20], 443);

/// The most bytes of a request head read.
const MAX_HEAD: usize = 8 * 1024;

/// What the server answers for one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 200, `text/plain`, this policy.
    Policy(String),
    /// 301 to another URL.
    Redirect,
    /// 200 with a valid policy, but `text/html`.
    Html(String),
    /// 200, `text/plain`, a body of 70 000 bytes.
    TooLarge,
    /// 404.
    NotFound,
    /// The connection is closed after the ClientHello.
    Down,
}

#[derive(Default)]
struct State {
    answers: HashMap<String, Answer>,
    served: HashMap<String, usize>,
}

/// The running server (it lives as long as the process).
#[derive(Clone)]
pub struct PolicyServer {
    state: Arc<Mutex<State>>,
}

impl PolicyServer {
    /// Starts the server with `config` (its certificate).
    pub fn start(config: Arc<ServerConfig>) -> Result<PolicyServer, Failure> {
        let listener = TcpListener::bind(SocketAddr::from(POLICY_ADDR))
            .map_err(|e| Failure(format!("the policy server cannot listen: {e}")))?;
        let state = Arc::new(Mutex::new(State::default()));
        let server = PolicyServer {
            state: state.clone(),
        };
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = state.clone();
                let config = config.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &config, &state);
                });
            }
        });
        Ok(server)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets what is answered for `domain` (requests for
    /// `mta-sts.<domain>`).
    pub fn set(&self, domain: &str, answer: Answer) {
        self.lock().answers.insert(domain.to_owned(), answer);
    }

    /// How many requests for `domain` were answered.
    pub fn served(&self, domain: &str) -> usize {
        self.lock().served.get(domain).copied().unwrap_or(0)
    }

    fn answer_for(&self, domain: &str) -> Answer {
        self.lock()
            .answers
            .get(domain)
            .cloned()
            .unwrap_or(Answer::NotFound)
    }
}

/// The policy domain of a host name `mta-sts.<domain>`.
fn domain_of(host: &str) -> String {
    let host = host.split(':').next().unwrap_or(host);
    host.strip_prefix("mta-sts.")
        .unwrap_or(host)
        .to_ascii_lowercase()
}

fn serve(
    mut sock: TcpStream,
    config: &Arc<ServerConfig>,
    state: &Arc<Mutex<State>>,
) -> std::io::Result<()> {
    let server = PolicyServer {
        state: state.clone(),
    };
    sock.set_read_timeout(Some(Duration::from_secs(5)))?;
    sock.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut acceptor = Acceptor::default();
    let accepted = loop {
        acceptor.read_tls(&mut sock)?;
        match acceptor.accept() {
            Ok(Some(accepted)) => break accepted,
            Ok(None) => {}
            Err((e, _)) => return Err(std::io::Error::other(e)),
        }
    };
    let sni = accepted
        .client_hello()
        .server_name()
        .map(domain_of)
        .unwrap_or_default();
    if server.answer_for(&sni) == Answer::Down {
        return Ok(());
    }
    let conn = accepted
        .into_connection(config.clone())
        .map_err(|(e, _)| std::io::Error::other(e))?;
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut buf)?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let path_ok = text
        .lines()
        .next()
        .is_some_and(|l| l.starts_with("GET /.well-known/mta-sts.txt "));
    let host = text
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("host")
                .then(|| domain_of(value.trim()))
        })
        .unwrap_or(sni);
    let answer = if path_ok {
        server.answer_for(&host)
    } else {
        Answer::NotFound
    };
    *server.lock().served.entry(host.clone()).or_default() += 1;
    let response = match answer {
        Answer::Policy(body) => response("200 OK", "text/plain", &[], body.as_bytes()),
        Answer::Html(body) => response("200 OK", "text/html", &[], body.as_bytes()),
        Answer::TooLarge => {
            let mut body =
                b"version: STSv1\nmode: enforce\nmx: mx15.unsigned.test\nmax_age: 86400\n".to_vec();
            body.resize(70_000, b'#');
            response("200 OK", "text/plain", &[], &body)
        }
        Answer::Redirect => {
            let location =
                "Location: https://mta-sts.sts-enforce.unsigned.test/.well-known/mta-sts.txt";
            response(
                "301 Moved Permanently",
                "text/plain",
                &[location],
                b"moved\n",
            )
        }
        Answer::NotFound | Answer::Down => response("404 Not Found", "text/plain", &[], b"none\n"),
    };
    tls.write_all(&response)?;
    tls.flush()?;
    tls.conn.send_close_notify();
    let _ = tls.conn.complete_io(&mut tls.sock);
    Ok(())
}

fn response(status: &str, content_type: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}
