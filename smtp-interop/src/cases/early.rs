//! Early pipelining (PIPE_CONNECT) through the adapter's builder: two
//! connections sharing one capability cache. The first (cold cache) waits for
//! the greeting and learns that the server advertises PIPECONNECT; the second
//! (warm) writes EHLO before the greeting. Neither is taken on the client's
//! word: the trace shows what was written before the greeting was read, the
//! trace shows one connection (no fallback reconnect), and the server's own
//! log says how each message's connection went (`L.` offered but not used,
//! `L*` used). Each message must be kept intact.
//!
//! Both connections go to the server's held endpoint ([`Server::held_smtp`])
//! when it has one: the server looks for early input once, just before its
//! banner, and on loopback an early EHLO and that look race; holding the
//! greeting back settles the race both ways (an EHLO written early is there,
//! one written after the greeting cannot be).

use std::sync::Arc;
use std::time::{Duration, Instant};

use smtp_adapter::Options;
use smtp_adapter::capability_cache::CapabilityCache;

use super::check::{Expect, check_result, quit, wait_kept};
use super::{Case, Context, Server, fail, message};
use crate::adapters::Session;

/// One connection of the case: what was traced while it opened and the
/// queue id the server gave its message.
struct Connection {
    opening: Vec<String>,
    queue_id: String,
}

/// The case's two connections and their checks.
pub(super) fn run_early<S: Session>(
    ctx: &Context,
    server: &Server,
    token: &str,
) -> Result<String, String> {
    let address = server
        .held_smtp
        .as_deref()
        .or(server.smtp.as_deref())
        .ok_or("no SMTP endpoint")?;
    let mut options = Options::default();
    options.timeout = Some(Duration::from_secs(20));
    // The cache is keyed by the EHLO name too: the same on both connections.
    options.local_name = Some("client.interop.test".into());
    let cache = Arc::new(CapabilityCache::default());

    let cold = connection::<S>(
        ctx,
        server,
        address,
        &options,
        &cache,
        &format!("{token}-1"),
    )?;
    if cache.len() != 1 {
        return Err(format!(
            "{} servers cached after a connection that saw PIPECONNECT",
            cache.len()
        ));
    }
    if greeting_first(&cold.opening)? != Order::GreetingFirst {
        return Err("EHLO written before the greeting with a cold cache".into());
    }
    let cold_flag = pipelining_flag(ctx, server, &cold.queue_id)?;
    if cold_flag != "L." {
        return Err(format!(
            "cold connection logged {cold_flag:?}, expected \"L.\" (PIPECONNECT offered, not used)"
        ));
    }

    let warm = connection::<S>(
        ctx,
        server,
        address,
        &options,
        &cache,
        &format!("{token}-2"),
    )?;
    if greeting_first(&warm.opening)? != Order::EhloFirst {
        return Err("EHLO not written before the greeting with a warm cache".into());
    }
    let warm_flag = pipelining_flag(ctx, server, &warm.queue_id)?;
    if warm_flag != "L*" {
        return Err(format!(
            "warm connection logged {warm_flag:?}, expected \"L*\" (early pipelining used)"
        ));
    }
    Ok(format!(
        "cold: greeting first, {cold_flag}; warm: EHLO before the greeting, one connection, \
         {warm_flag} (queue id {}); both kept",
        warm.queue_id
    ))
}

/// Connects through the builder with `cache`, sends one message, quits, and
/// checks what the server kept.
fn connection<S: Session>(
    ctx: &Context,
    server: &Server,
    address: &str,
    options: &Options,
    cache: &Arc<CapabilityCache>,
    token: &str,
) -> Result<Connection, String> {
    ctx.lines.clear();
    let mut s = S::connect_early(address, options.clone(), cache.clone())
        .map_err(|e| fail("connect", &e))?;
    let opening = ctx.lines.take();
    if !s
        .capabilities()
        .is_some_and(smtp_sansio::Capabilities::pipe_connect)
    {
        return Err("PIPELINING and PIPECONNECT not advertised".into());
    }
    let (sender, r0) = (server.sender, server.recipients[0]);
    let m = message(sender, r0, token, 3);
    let result = s
        .sendmail(sender, &[r0], &m)
        .map_err(|e| fail("send", &e))?;
    let expect = Expect {
        sender: sender.to_owned(),
        recipients: vec![r0.to_owned()],
        message: m,
        protocol: None,
        tls: false,
        auth: false,
        mail_params: Vec::new(),
        rcpt_params: Vec::new(),
    };
    check_result(server, Case::EarlyPipelining, &result, &expect)?;
    let queue_id = result
        .queue_id()
        .ok_or("no queue id in the reply to the end of the message")?
        .to_owned();
    quit(s)?;
    wait_kept(ctx, server, token, &expect)?;
    Ok(Connection { opening, queue_id })
}

/// Which the client handled first while opening.
#[derive(Debug, PartialEq, Eq)]
enum Order {
    /// The greeting was read before EHLO was written.
    GreetingFirst,
    /// EHLO was written before the greeting was read.
    EhloFirst,
}

/// The order of EHLO and the greeting in the trace of one open, which must
/// hold exactly one EHLO (a second one would be the reconnect after a
/// refused early EHLO) and one greeting.
fn greeting_first(opening: &[String]) -> Result<Order, String> {
    let ehlos: Vec<usize> = positions(opening, "C: EHLO ");
    let greetings: Vec<usize> = positions(opening, "S: 220 ");
    match (ehlos.as_slice(), greetings.as_slice()) {
        ([e], [g]) if g < e => Ok(Order::GreetingFirst),
        ([e], [g]) if e < g => Ok(Order::EhloFirst),
        _ => Err(format!(
            "{} EHLO and {} greetings traced while opening, expected one of each",
            ehlos.len(),
            greetings.len()
        )),
    }
}

fn positions(lines: &[String], prefix: &str) -> Vec<usize> {
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with(prefix))
        .map(|(i, _)| i)
        .collect()
}

/// The pipelining field (`L`, `L-`, `L.`, `L*`) of the server's log line
/// for the message with `queue_id`, waited for until the context's deadline.
fn pipelining_flag(ctx: &Context, server: &Server, queue_id: &str) -> Result<String, String> {
    let deadline = Instant::now() + ctx.wait;
    loop {
        if let Some(line) = server.store.reception(queue_id)? {
            return line
                .split_whitespace()
                .find(|f| matches!(*f, "L" | "L-" | "L." | "L*"))
                .map(str::to_owned)
                .ok_or_else(|| format!("no pipelining field in the log line {line:?}"));
        }
        if Instant::now() >= deadline {
            return Err(format!("no log line for {queue_id} after {:?}", ctx.wait));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_order_of_ehlo_and_greeting() {
        let cold = lines(&[
            "S: 220 x ESMTP",
            "C: EHLO c",
            "S: 250-x",
            "S: 250 PIPECONNECT",
        ]);
        assert_eq!(greeting_first(&cold), Ok(Order::GreetingFirst));
        let warm = lines(&["C: EHLO c", "S: 220 x ESMTP", "S: 250 x"]);
        assert_eq!(greeting_first(&warm), Ok(Order::EhloFirst));
        // A refused early EHLO and the reconnect: two EHLO, not early.
        let fallback = lines(&[
            "C: EHLO c",
            "S: 554 no",
            "S: 220 x",
            "C: EHLO c",
            "S: 250 x",
        ]);
        assert!(greeting_first(&fallback).is_err());
    }
}
