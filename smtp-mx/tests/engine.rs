//! The delivery state machine against scripted worlds: named scenarios
//! (the ones the loopback lab mirrors), each checking every recipient's
//! outcome class and enhanced code, and the ordered (MX, IP) connections.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::IpAddr;

use smtp_mx::dane::Tlsa;
use smtp_mx::dns::{DnsAnswer, Rcode, Security};
use smtp_mx::engine::{
    Answer, Class, Config, ConnectRequest, FinalStatus, MessageSecurity, Notice, Opening,
    PolicyFetch, Query, Report, Request,
};
use smtp_mx::plan::{LocalPolicy, TlsPlan};
use smtp_mx::route::MxRecord;
use smtp_mx::sts::{CachedPolicy, FetchError, Mode, StsCache, parse_policy};
use smtp_mx::{Delivery, TlsFailure};
use smtp_sansio::{
    Address, Delivery as CoreDelivery, Error, RecipientDelivery, RecipientResult, Reply,
    SecurityError, StartTlsPolicy, TransactionResult,
};

const NOW: u64 = 1_800_000_000;

/// How a scripted server opens a session.
#[derive(Debug, Clone)]
enum Open {
    /// Greets 220; offers STARTTLS or not; advertises REQUIRETLS (over TLS)
    /// or not.
    Ok { starttls: bool, requiretls: bool },
    /// Connection refused.
    Refuse,
    /// Accepts the connection and says nothing.
    Silent,
    /// Greets with this code and text.
    Greeting(u16, &'static str),
    /// Offers STARTTLS; the handshake (or the verification) fails.
    TlsFails,
    /// An adapter that wrongly reports a plaintext session whatever the plan.
    LyingPlaintext,
    /// Offers STARTTLS and answers it 454.
    StartTls454,
}

/// A scripted server: its open, and its replies by recipient (250 when not
/// listed); `uncertain`: the connection drops after the end of the message.
#[derive(Debug, Clone)]
struct Server {
    open: Open,
    rcpt: Vec<(&'static str, u16, &'static str)>,
    uncertain: bool,
}

fn server(open: Open) -> Server {
    Server {
        open,
        rcpt: Vec::new(),
        uncertain: false,
    }
}

fn ok() -> Server {
    server(Open::Ok {
        starttls: true,
        requiretls: true,
    })
}

fn plain_only() -> Server {
    server(Open::Ok {
        starttls: false,
        requiretls: false,
    })
}

fn reply(code: u16, text: &str) -> Reply {
    Reply::new(code, vec![text.to_owned()])
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// DNS, policies and servers, with defaults: no MX (NXDOMAIN), no address
/// (NXDOMAIN for A, NODATA for AAAA), a validated denial of TLSA, no TXT,
/// policy fetches failing, connections refused.
#[derive(Debug, Clone, Default)]
struct World {
    mx: HashMap<String, DnsAnswer<MxRecord>>,
    a: HashMap<String, DnsAnswer<IpAddr>>,
    tlsa: HashMap<String, DnsAnswer<Tlsa>>,
    txt: HashMap<String, DnsAnswer<String>>,
    policies: HashMap<String, PolicyFetch>,
    servers: HashMap<IpAddr, Server>,
    /// CNAME records: alias -> (target, whether the CNAME is validated).
    aliases: HashMap<String, (String, bool)>,
}

impl World {
    fn mx(mut self, domain: &str, hosts: &[(u16, &str)], secure: bool) -> World {
        let records = hosts.iter().map(|(p, h)| MxRecord::new(*p, h)).collect();
        self.mx
            .insert(domain.into(), DnsAnswer::records(records, sec(secure)));
        self
    }
    fn mx_rcode(mut self, domain: &str, rcode: Rcode) -> World {
        self.mx
            .insert(domain.into(), DnsAnswer::empty(rcode, Security::Insecure));
        self
    }
    fn host(mut self, name: &str, addr: &str, secure: bool, srv: Server) -> World {
        self.a
            .insert(name.into(), DnsAnswer::records(vec![ip(addr)], sec(secure)));
        self.servers.insert(ip(addr), srv);
        self
    }
    /// `name` a CNAME of `target`, validated or not: its address answer is
    /// the target's, with the target as its canonical name and the weaker
    /// security of the two.
    fn alias(mut self, name: &str, target: &str, secure: bool) -> World {
        self.aliases.insert(name.into(), (target.into(), secure));
        self
    }
    fn with_mx_security(mut self, domain: &str, security: Security) -> World {
        if let Some(a) = self.mx.get_mut(domain) {
            a.security = security;
        }
        self
    }
    fn tlsa(mut self, host: &str, answer: DnsAnswer<Tlsa>) -> World {
        self.tlsa.insert(format!("_25._tcp.{host}"), answer);
        self
    }
    fn sts(mut self, domain: &str, id: &str, fetch: PolicyFetch) -> World {
        self.txt.insert(
            format!("_mta-sts.{domain}"),
            DnsAnswer::records(vec![format!("v=STSv1; id={id}")], Security::Insecure),
        );
        self.policies.insert(domain.into(), fetch);
        self
    }

    fn resolve(&self, name: &str, query: Query) -> Answer {
        fn nx<T>() -> DnsAnswer<T> {
            DnsAnswer::empty(Rcode::NxDomain, Security::Insecure)
        }
        match query {
            Query::Mx => Answer::Mx(self.mx.get(name).cloned().unwrap_or_else(nx)),
            Query::A => Answer::Address(match self.aliases.get(name) {
                Some((target, secure)) => {
                    let mut a = self.a.get(target).cloned().unwrap_or_else(nx);
                    if !secure {
                        a.security = Security::Insecure;
                    }
                    a.with_canonical(target)
                }
                None => self.a.get(name).cloned().unwrap_or_else(nx),
            }),
            Query::Aaaa => Answer::Address(DnsAnswer::empty(Rcode::NoError, Security::Insecure)),
            Query::Tlsa => Answer::Tlsa(
                self.tlsa
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| DnsAnswer::empty(Rcode::NxDomain, Security::Secure)),
            ),
            Query::Txt => Answer::Txt(self.txt.get(name).cloned().unwrap_or_else(nx)),
        }
    }

    /// What the adapter and the core report for `c`.
    fn open(&self, c: &ConnectRequest) -> Opening {
        let Some(s) = self.servers.get(&c.ip) else {
            return Opening::Refused;
        };
        let policy = c.starttls();
        match s.open {
            Open::Refuse => Opening::Refused,
            Open::Silent => Opening::TimedOut,
            Open::Greeting(code, text) => Opening::Failed(Error::ConnectRefused(reply(code, text))),
            Open::LyingPlaintext => Opening::Opened {
                tls: false,
                requiretls: false,
            },
            Open::TlsFails if policy == StartTlsPolicy::Never => Opening::Opened {
                tls: false,
                requiretls: false,
            },
            Open::TlsFails => Opening::TlsFailed(TlsFailure::Handshake),
            Open::StartTls454 if policy == StartTlsPolicy::Never => Opening::Opened {
                tls: false,
                requiretls: false,
            },
            Open::StartTls454 => Opening::Failed(Error::StartTlsRefused(reply(
                454,
                "4.7.0 TLS not available",
            ))),
            Open::Ok {
                starttls,
                requiretls,
            } => match (policy, starttls) {
                (StartTlsPolicy::Required, false) => {
                    Opening::Failed(Error::Security(SecurityError::StartTlsNotOffered))
                }
                (StartTlsPolicy::Never, _) | (_, false) => Opening::Opened {
                    tls: false,
                    requiretls: false,
                },
                _ => Opening::Opened {
                    tls: true,
                    requiretls,
                },
            },
        }
    }

    fn transact(&self, at: IpAddr, rcpts: &[String]) -> Result<TransactionResult, Error> {
        let s = &self.servers[&at];
        let replies: Vec<(String, Reply)> = rcpts
            .iter()
            .map(|r| {
                let (code, text) = s
                    .rcpt
                    .iter()
                    .find(|(a, _, _)| a == r)
                    .map_or((250, "2.1.5 Ok"), |(_, c, t)| (*c, *t));
                (r.clone(), reply(code, text))
            })
            .collect();
        if replies.iter().all(|(_, r)| !r.is_positive()) {
            return Err(Error::RecipientsRefused(replies));
        }
        if s.uncertain {
            let recipients = replies
                .iter()
                .map(|(a, r)| RecipientDelivery {
                    address: a.clone(),
                    delivery: if r.is_positive() {
                        CoreDelivery::Unknown
                    } else {
                        CoreDelivery::Refused
                    },
                    reply: (!r.is_positive()).then(|| r.clone()),
                })
                .collect();
            return Err(Error::Uncertain {
                cause: Box::new(Error::Disconnected),
                recipients,
            });
        }
        Ok(TransactionResult {
            mail_reply: reply(250, "2.1.0 Ok"),
            recipients: replies
                .into_iter()
                .map(|(a, r)| RecipientResult {
                    address: Address::new(a).unwrap(),
                    rcpt_reply: r,
                    final_reply: None,
                })
                .collect(),
            final_reply: Some(reply(250, "2.0.0 Ok: queued as Q1")),
            chunked: false,
        })
    }
}

fn sec(secure: bool) -> Security {
    if secure {
        Security::Secure
    } else {
        Security::Insecure
    }
}

fn policy(mode: &str, mx: &[&str]) -> PolicyFetch {
    let mut body = format!("version: STSv1\nmode: {mode}\nmax_age: 86400\n");
    for m in mx {
        body.push_str(&format!("mx: {m}\n"));
    }
    PolicyFetch::Response {
        status: 200,
        content_type: Some("text/plain; charset=utf-8".into()),
        body: body.into_bytes(),
    }
}

fn response(status: u16, content_type: &str, body: Vec<u8>) -> PolicyFetch {
    PolicyFetch::Response {
        status,
        content_type: Some(content_type.into()),
        body,
    }
}

/// A cache holding, for example.com, an enforce policy listing only
/// mx2.example.com, under id `old`, fetched `age` seconds ago, max_age
/// 86400.
fn cached_enforce_mx2(age: u64) -> StsCache {
    let text = "version: STSv1\nmode: enforce\nmax_age: 86400\nmx: mx2.example.com\n";
    let entry = CachedPolicy {
        id: "old".into(),
        policy: parse_policy(text.as_bytes()).unwrap(),
        fetched_at: NOW - age,
    };
    // The cache's form is its serialisation: build it through serde.
    let json = serde_json::json!({ "entries": { "example.com": { "policy": entry } } });
    serde_json::from_value(json).unwrap()
}

/// Another usable record (a DANE-TA digest), told apart from
/// [`usable_tlsa`].
fn other_tlsa() -> Tlsa {
    Tlsa {
        usage: 2,
        selector: 1,
        matching: 1,
        data: vec![0xa5; 32],
    }
}

/// example.com's MX mx1.example.com (validated) is an alias of
/// mx.provider.net, at 192.0.2.11; the CNAME validated or not.
fn aliased_mx(secure_cname: bool) -> World {
    World::default()
        .mx("example.com", &[(10, "mx1.example.com")], true)
        .host("mx.provider.net", "192.0.2.11", true, ok())
        .alias("mx1.example.com", "mx.provider.net", secure_cname)
}

/// The TLSA names asked for, in order.
fn tlsa_lookups(r: &Run) -> Vec<String> {
    r.seen
        .iter()
        .filter_map(|s| match s {
            Seen::Resolve(name, Query::Tlsa) => Some(name.clone()),
            _ => None,
        })
        .collect()
}

/// The TLSA names looked up were `names`, in that order.
fn looked_up_tlsa(r: &Run, names: &[&str]) -> Result<(), String> {
    let got = tlsa_lookups(r);
    ensure(got == names, &format!("TLSA lookups {got:?}"))
}

/// The one plan is DANE with `tlsa` and `names`, and SNI is `sni`.
fn dane_plan(r: &Run, tlsa: &[Tlsa], names: &[&str], sni: &str) -> Result<(), String> {
    let plans = r.plans();
    ensure(
        matches!(plans.as_slice(), [TlsPlan::Dane { tlsa: t, names: n }]
            if t == tlsa && n == names),
        &format!("plans {plans:?}"),
    )?;
    ensure(
        r.seen
            .contains(&Seen::Connect(ip("192.0.2.11"), Some(sni.into()))),
        &format!("not {sni} in SNI: {:?}", r.seen),
    )
}

fn usable_tlsa() -> Tlsa {
    Tlsa {
        usage: 3,
        selector: 1,
        matching: 1,
        data: vec![0x5a; 32],
    }
}

/// example.com's one MX, mx1, signed, with a usable TLSA record (DANE-EE),
/// answering with success.
fn signed_host_with_tlsa() -> World {
    World::default()
        .mx("example.com", &[(10, "mx1.example.com")], true)
        .host("mx1.example.com", "192.0.2.11", true, ok())
        .tlsa(
            "mx1.example.com",
            DnsAnswer::records(vec![usable_tlsa()], Security::Secure),
        )
}

/// Two MXs for example.com: mx1 (10) at .11, mx2 (20) at .12.
fn two_mx(mx1: Server, mx2: Server) -> World {
    World::default()
        .mx(
            "example.com",
            &[(10, "mx1.example.com"), (20, "mx2.example.com")],
            false,
        )
        .host("mx1.example.com", "192.0.2.11", false, mx1)
        .host("mx2.example.com", "192.0.2.12", false, mx2)
}

/// What the driver saw.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Resolve(String, Query),
    Fetch(String),
    Mail {
        ip: IpAddr,
        tls: bool,
        rcpts: Vec<String>,
    },
    Close(IpAddr),
    Connect(IpAddr, Option<String>),
}

struct Run {
    report: Report,
    seen: Vec<Seen>,
    cache: StsCache,
}

impl Run {
    fn fetches(&self) -> usize {
        self.seen
            .iter()
            .filter(|s| matches!(s, Seen::Fetch(_)))
            .count()
    }
    fn mails(&self) -> Vec<(IpAddr, bool, Vec<String>)> {
        self.seen
            .iter()
            .filter_map(|s| match s {
                Seen::Mail { ip, tls, rcpts } => Some((*ip, *tls, rcpts.clone())),
                _ => None,
            })
            .collect()
    }
    fn notices(&self) -> Vec<Notice> {
        self.report
            .domains
            .iter()
            .flat_map(|d| d.notices.clone())
            .collect()
    }
    fn plans(&self) -> Vec<TlsPlan> {
        self.report
            .domains
            .iter()
            .flat_map(|d| d.connections.iter().map(|c| c.tls.clone()))
            .collect()
    }
}

struct Scenario {
    name: &'static str,
    world: World,
    rcpts: Vec<&'static str>,
    message: MessageSecurity,
    local: LocalPolicy,
    cache: StsCache,
    now: u64,
    /// Each recipient's class and enhanced code (`None`: a delivery, or
    /// no code).
    expect: Vec<(Class, Option<&'static str>)>,
    /// The connections, in order: (MX host, address).
    attempts: Vec<(&'static str, &'static str)>,
    /// Further checks.
    check: Check,
}

/// A scenario's further checks.
type Check = fn(&Run) -> Result<(), String>;

fn none(_: &Run) -> Result<(), String> {
    Ok(())
}

fn scenario(name: &'static str, world: World, rcpts: &[&'static str]) -> Scenario {
    Scenario {
        name,
        world,
        rcpts: rcpts.to_vec(),
        message: MessageSecurity::default(),
        local: LocalPolicy::Opportunistic,
        cache: StsCache::new(),
        now: NOW,
        expect: Vec::new(),
        attempts: Vec::new(),
        check: none,
    }
}

impl Scenario {
    fn expect(mut self, e: &[(Class, Option<&'static str>)]) -> Scenario {
        self.expect = e.to_vec();
        self
    }
    fn attempts(mut self, a: &[(&'static str, &'static str)]) -> Scenario {
        self.attempts = a.to_vec();
        self
    }
    fn check(mut self, f: Check) -> Scenario {
        self.check = f;
        self
    }
    fn cache(mut self, c: StsCache) -> Scenario {
        self.cache = c;
        self
    }
    fn tls_required_no(mut self) -> Scenario {
        self.message.tls_required_no = true;
        self
    }
    fn local(mut self, local: LocalPolicy) -> Scenario {
        self.local = local;
        self
    }
    fn requiretls(mut self) -> Scenario {
        self.message.requiretls = true;
        self
    }
}

fn run(s: &Scenario) -> Run {
    let config = Config {
        local: s.local,
        ..Config::default()
    };
    let mut d = Delivery::new(&s.rcpts, s.message, config, s.cache.clone(), s.now, 42);
    let mut seen = Vec::new();
    let mut sessions: HashMap<u64, (IpAddr, bool)> = HashMap::new();
    let mut steps = 0;
    while let Some(request) = d.next_request() {
        steps += 1;
        assert!(steps < 500, "{}: the delivery does not end", s.name);
        match request {
            Request::Resolve { id, name, query } => {
                seen.push(Seen::Resolve(name.clone(), query));
                d.answer(id, s.world.resolve(&name, query)).unwrap();
            }
            Request::FetchPolicy { id, domain, url } => {
                assert_eq!(
                    url,
                    format!("https://mta-sts.{domain}/.well-known/mta-sts.txt")
                );
                let fetch = s
                    .world
                    .policies
                    .get(&domain)
                    .cloned()
                    .unwrap_or(PolicyFetch::Failed);
                seen.push(Seen::Fetch(domain));
                d.policy_fetched(id, fetch).unwrap();
            }
            Request::Connect(c) => {
                seen.push(Seen::Connect(c.ip, c.plan.sni.clone()));
                let opening = s.world.open(&c);
                if let Opening::Opened { tls, .. } = opening {
                    sessions.insert(c.id.0, (c.ip, tls));
                }
                d.opened(c.id, opening).unwrap();
            }
            Request::Transaction(t) => {
                let (at, tls) = sessions[&t.id.0];
                seen.push(Seen::Mail {
                    ip: at,
                    tls,
                    rcpts: t.addresses.clone(),
                });
                let result = s.world.transact(at, &t.addresses);
                d.transaction_done(t.id, result).unwrap();
            }
            Request::Close { id } => seen.push(Seen::Close(sessions[&id.0].0)),
        }
    }
    assert!(d.is_done(), "{}: requests ran out before the end", s.name);
    let report = d.report().unwrap();
    Run {
        report,
        seen,
        cache: d.into_cache(),
    }
}

fn verify(s: &Scenario) -> Result<(), String> {
    let r = run(s);
    let got: Vec<(Class, Option<String>)> = r
        .report
        .recipients
        .iter()
        .map(|x| {
            let code = match &x.status {
                FinalStatus::Delivered { .. } => None,
                other => other.status().map(|c| c.to_string()),
            };
            (x.status.class(), code)
        })
        .collect();
    let want: Vec<(Class, Option<String>)> = s
        .expect
        .iter()
        .map(|(c, code)| (*c, code.map(str::to_owned)))
        .collect();
    if got != want {
        return Err(format!("outcomes {got:?}, expected {want:?}"));
    }
    let attempts: Vec<(String, IpAddr)> =
        r.report.domains.iter().flat_map(|d| d.attempts()).collect();
    let want: Vec<(String, IpAddr)> = s
        .attempts
        .iter()
        .map(|(h, a)| ((*h).to_owned(), ip(a)))
        .collect();
    if attempts != want {
        return Err(format!("attempts {attempts:?}, expected {want:?}"));
    }
    (s.check)(&r)
}

fn ensure(cond: bool, what: &str) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what.to_owned()) }
}

const M1: (&str, &str) = ("mx1.example.com", "192.0.2.11");
const M2: (&str, &str) = ("mx2.example.com", "192.0.2.12");
const DELIVERED: (Class, Option<&str>) = (Class::Delivered, None);

#[test]
fn every_scenario() {
    let all = scenarios();
    assert!(all.len() >= 20, "only {} scenarios", all.len());
    let mut names: Vec<&str> = all.iter().map(|s| s.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len(), "scenario names repeat");
    let failures: Vec<String> = all
        .iter()
        .filter_map(|s| verify(s).err().map(|e| format!("{}: {e}", s.name)))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn no_mail(r: &Run) -> Result<(), String> {
    ensure(r.mails().is_empty(), "a transaction was run")
}

fn no_plaintext_mail(r: &Run) -> Result<(), String> {
    ensure(
        r.mails().iter().all(|(_, tls, _)| *tls),
        "MAIL FROM went in plaintext",
    )
}

fn mx_lookups_only(r: &Run) -> Result<(), String> {
    ensure(
        r.seen
            .iter()
            .all(|s| matches!(s, Seen::Resolve(_, Query::Mx | Query::Txt))),
        "something beyond the MX and TXT lookups was asked for",
    )?;
    ensure(r.fetches() == 0, "a policy fetch")
}

fn one_fetch_no_policy(r: &Run) -> Result<(), String> {
    ensure(r.fetches() == 1, "not one fetch")?;
    ensure(
        r.notices()
            .iter()
            .any(|n| matches!(n, Notice::StsFetchFailed(_))),
        "no fetch-failure notice",
    )?;
    ensure(r.plans() == [TlsPlan::Opportunistic], "not opportunistic")
}

fn cached_policy_applied(r: &Run) -> Result<(), String> {
    ensure(r.fetches() == 1, "not one fetch")?;
    ensure(
        r.report.domains[0].sts == Some(Mode::Enforce),
        "the cached enforce policy was not applied",
    )?;
    ensure(
        matches!(r.plans().as_slice(), [TlsPlan::Pkix { names }] if names == &["mx2.example.com"]),
        "mx2 not under PKIX",
    )?;
    no_plaintext_mail(r)
}

fn fetch_fails(f: fn(&FetchError) -> bool) -> impl Fn(&Run) -> bool {
    move |r: &Run| {
        r.notices()
            .iter()
            .any(|n| matches!(n, Notice::StsFetchFailed(e) if f(e)))
    }
}

#[allow(clippy::too_many_lines)]
fn scenarios() -> Vec<Scenario> {
    let big = {
        let mut body =
            b"version: STSv1\nmode: enforce\nmax_age: 86400\nmx: mx2.example.com\n".to_vec();
        body.resize(64 * 1024 + 1, b'\n');
        body
    };
    // Policy-fetch failures, each with and without a cached policy.
    let failing: Vec<(&'static str, &'static str, PolicyFetch, Check)> = vec![
        (
            "sts_fetch_404",
            "sts_fetch_404_cached",
            response(404, "text/plain", b"no".to_vec()),
            |r| {
                ensure(
                    fetch_fails(|e| *e == FetchError::Status(404))(r),
                    "no 404 notice",
                )
            },
        ),
        (
            "sts_fetch_redirect",
            "sts_fetch_redirect_cached",
            response(301, "text/plain", Vec::new()),
            |r| {
                ensure(
                    fetch_fails(|e| *e == FetchError::Redirect(301))(r),
                    "no redirect notice",
                )
            },
        ),
        (
            "sts_fetch_text_html",
            "sts_fetch_text_html_cached",
            response(
                200,
                "text/html",
                b"version: STSv1\nmode: enforce\nmax_age: 86400\nmx: mx2.example.com\n".to_vec(),
            ),
            |r| {
                ensure(
                    fetch_fails(|e| matches!(e, FetchError::ContentType(_)))(r),
                    "no media-type notice",
                )
            },
        ),
        (
            "sts_fetch_over_64k",
            "sts_fetch_over_64k_cached",
            response(200, "text/plain", big),
            |r| {
                ensure(
                    fetch_fails(|e| *e == FetchError::TooLarge)(r),
                    "no size notice",
                )
            },
        ),
        (
            "sts_server_down",
            "sts_server_down_cached",
            PolicyFetch::Failed,
            |r| {
                ensure(
                    fetch_fails(|e| *e == FetchError::Transport)(r),
                    "no transport notice",
                )
            },
        ),
    ];
    let mut all = vec![
        scenario(
            "null_mx",
            World::default().mx("example.com", &[(0, ".")], false),
            &["a@example.com"],
        )
        .expect(&[(Class::Bounced, Some("5.1.10"))])
        .check(mx_lookups_only),
        scenario("nxdomain", World::default(), &["a@example.com"])
            .expect(&[(Class::Bounced, Some("5.4.4"))]),
        scenario(
            "mx_servfail",
            World::default().mx_rcode("example.com", Rcode::ServFail),
            &["a@example.com"],
        )
        .expect(&[(Class::Deferred, Some("4.4.3"))])
        .check(mx_lookups_only),
        scenario(
            "implicit_mx",
            World::default()
                .mx_rcode("example.com", Rcode::NoError)
                .host("example.com", "192.0.2.10", false, ok()),
            &["a@example.com"],
        )
        .expect(&[DELIVERED])
        .attempts(&[("example.com", "192.0.2.10")])
        .check(|r| match &r.report.recipients[0].status {
            FinalStatus::Delivered { queue_id, .. } => {
                ensure(queue_id.as_deref() == Some("Q1"), "no queue id")
            }
            _ => Err("not delivered".into()),
        }),
        scenario(
            "mx1_refusing_then_mx2",
            two_mx(server(Open::Refuse), ok()),
            &["a@example.com"],
        )
        .expect(&[DELIVERED])
        .attempts(&[M1, M2]),
        scenario(
            "mx1_silent_then_mx2",
            two_mx(server(Open::Silent), ok()),
            &["a@example.com"],
        )
        .expect(&[DELIVERED])
        .attempts(&[M1, M2]),
        scenario(
            "greeting_554_single_mx",
            World::default()
                .mx("example.com", &[(10, "mx1.example.com")], false)
                .host(
                    "mx1.example.com",
                    "192.0.2.11",
                    false,
                    server(Open::Greeting(554, "5.7.1 no thanks")),
                ),
            &["a@example.com"],
        )
        .expect(&[(Class::Bounced, Some("5.7.1"))])
        .attempts(&[M1])
        .check(no_mail),
        scenario(
            "greeting_554_then_mx2",
            two_mx(server(Open::Greeting(554, "5.3.2 busy")), ok()),
            &["a@example.com"],
        )
        .expect(&[DELIVERED])
        .attempts(&[M1, M2]),
        scenario(
            "sts_enforce_no_starttls",
            World::default()
                .mx("example.com", &[(10, "mx1.example.com")], false)
                .host("mx1.example.com", "192.0.2.11", false, plain_only())
                .sts("example.com", "1", policy("enforce", &["mx1.example.com"])),
            &["a@example.com"],
        )
        .expect(&[(Class::Deferred, Some("4.7.5"))])
        .attempts(&[M1])
        .check(no_mail),
        scenario(
            "sts_enforce_adapter_reports_plaintext",
            World::default()
                .mx("example.com", &[(10, "mx1.example.com")], false)
                .host(
                    "mx1.example.com",
                    "192.0.2.11",
                    false,
                    server(Open::LyingPlaintext),
                )
                .sts("example.com", "1", policy("enforce", &["*.example.com"])),
            &["a@example.com"],
        )
        .expect(&[(Class::Deferred, Some("4.7.5"))])
        .attempts(&[M1])
        .check(|r| {
            no_mail(r)?;
            ensure(
                r.seen.contains(&Seen::Close(ip("192.0.2.11"))),
                "the session was not closed",
            )
        }),
        scenario(
            "sts_enforce_starttls_454",
            World::default()
                .mx("example.com", &[(10, "mx1.example.com")], false)
                .host(
                    "mx1.example.com",
                    "192.0.2.11",
                    false,
                    server(Open::StartTls454),
                )
                .sts("example.com", "1", policy("enforce", &["mx1.example.com"])),
            &["a@example.com"],
        )
        .expect(&[(Class::Deferred, Some("4.7.5"))])
        .attempts(&[M1])
        .check(no_mail),
        scenario(
            "opportunistic_starttls_454_plaintext_retry",
            World::default()
                .mx("example.com", &[(10, "mx1.example.com")], false)
                .host(
                    "mx1.example.com",
                    "192.0.2.11",
                    false,
                    server(Open::StartTls454),
                ),
            &["a@example.com"],
        )
        .expect(&[DELIVERED])
        .attempts(&[M1, M1]),
        scenario(
            "mx_bogus",
            World::default()
                .mx("example.com", &[(10, "mx1.example.com")], false)
                .host("mx1.example.com", "192.0.2.11", false, ok())
                .with_mx_security("example.com", Security::Bogus),
            &["a@example.com"],
        )
        .expect(&[(Class::Deferred, Some("4.4.3"))])
        .check(no_mail),
        scenario(
            "dane_tlsa_bogus",
            two_mx(ok(), ok())
                .mx(
                    "example.com",
                    &[(10, "mx1.example.com"), (20, "mx2.example.com")],
                    true,
                )
                .host("mx1.example.com", "192.0.2.11", true, ok())
                .host("mx2.example.com", "192.0.2.12", true, ok())
                .tlsa(
                    "mx1.example.com",
                    DnsAnswer::records(vec![usable_tlsa()], Security::Bogus),
                ),
            &["a@example.com"],
        )
        // mx1's TLSA answer is bogus: skipped (4.7.5), never in plaintext;
        // mx2 has a validated denial of TLSA: delivered, opportunistic.
        .expect(&[DELIVERED])
        .attempts(&[M2])
        .check(|r| {
            ensure(
                r.plans() == [TlsPlan::Opportunistic],
                "not opportunistic on mx2",
            )
        }),
        scenario(
            "sts_testing_plaintext",
            World::default()
                .mx("example.com", &[(10, "mx1.example.com")], false)
                .host("mx1.example.com", "192.0.2.11", false, plain_only())
                .sts("example.com", "1", policy("testing", &["mx1.example.com"])),
            &["a@example.com"],
        )
        .expect(&[DELIVERED])
        .attempts(&[M1])
        .check(|r| {
            ensure(
                r.report.domains[0].sts == Some(Mode::Testing),
                "no testing mode",
            )?;
            ensure(
                r.mails() == [(ip("192.0.2.11"), false, vec!["a@example.com".to_owned()])],
                "not one plaintext MAIL",
            )?;
            ensure(
                r.notices().contains(&Notice::StsTestingFailure {
                    host: "mx1.example.com".into(),
                    mx_matches: true,
                }),
                "no testing report",
            )
        }),
        scenario(
            "sts_mx_mismatch_skips_to_mx2",
            two_mx(ok(), ok()).sts("example.com", "1", policy("enforce", &["mx2.example.com"])),
            &["a@example.com"],
        )
        .expect(&[DELIVERED])
        .attempts(&[M2])
        .check(|r| {
            no_plaintext_mail(r)?;
            ensure(
                r.notices().iter().any(|n| {
                    matches!(n, Notice::Skipped { host, failure, .. }
                    if host == "mx1.example.com" && failure.status.to_string() == "4.7.5")
                }),
                "mx1 not skipped with 4.7.5",
            )
        }),
        scenario(
            "sts_mx_mismatch_only_mx",
            World::default()
                .mx("example.com", &[(10, "mx1.example.com")], false)
                .host("mx1.example.com", "192.0.2.11", false, ok())
                .sts("example.com", "1", policy("enforce", &["mx.other.example"])),
            &["a@example.com"],
        )
        .expect(&[(Class::Deferred, Some("4.7.5"))])
        .check(no_mail),
        scenario(
            "sts_expired_max_age_not_used",
            two_mx(ok(), ok()).sts("example.com", "old", PolicyFetch::Failed),
            &["a@example.com"],
        )
        // Fetched 86400 s ago with max_age 86400: expired now; the fetch
        // fails, so there is no policy and mx1 (outside it) takes the mail.
        .cache(cached_enforce_mx2(86_400))
        .expect(&[DELIVERED])
        .attempts(&[M1])
        .check(|r| {
            ensure(r.fetches() == 1, "the expired policy was not refetched")?;
            ensure(r.report.domains[0].sts.is_none(), "a policy was applied")
        }),
        scenario(
            "sts_same_id_cached_no_fetch",
            two_mx(ok(), ok()).sts("example.com", "old", PolicyFetch::Failed),
            &["a@example.com"],
        )
        .cache(cached_enforce_mx2(100))
        .expect(&[DELIVERED])
        .attempts(&[M2])
        .check(|r| ensure(r.fetches() == 0, "a fetch for a cached id")),
        scenario(
            "sts_new_id_refetch",
            two_mx(ok(), ok()).sts(
                "example.com",
                "new",
                policy("enforce", &["mx1.example.com"]),
            ),
            &["a@example.com"],
        )
        .cache(cached_enforce_mx2(100))
        .expect(&[DELIVERED])
        .attempts(&[M1])
        .check(|r| {
            ensure(r.fetches() == 1, "not exactly one refetch")?;
            let cached = r.cache.get("example.com", NOW).ok_or("nothing cached")?;
            ensure(
                cached.id == "new" && cached.fetched_at == NOW,
                "the cache was not updated",
            )?;
            let json = serde_json::to_string(&r.cache).map_err(|e| e.to_string())?;
            let back: StsCache = serde_json::from_str(&json).map_err(|e| e.to_string())?;
            ensure(back == r.cache, "the cache does not round-trip")
        }),
        scenario(
            "sts_txt_missing_cached_kept",
            two_mx(ok(), ok()),
            &["a@example.com"],
        )
        .cache(cached_enforce_mx2(100))
        .expect(&[DELIVERED])
        .attempts(&[M2])
        .check(|r| ensure(r.fetches() == 0, "a fetch without a TXT record")),
        scenario(
            "dane_tlsa_servfail",
            World::default()
                .mx("example.com", &[(10, "mx1.example.com")], true)
                .host("mx1.example.com", "192.0.2.11", true, ok())
                .tlsa(
                    "mx1.example.com",
                    DnsAnswer::empty(Rcode::ServFail, Security::Insecure),
                ),
            &["a@example.com"],
        )
        .expect(&[(Class::Deferred, Some("4.7.5"))])
        .check(no_mail),
        scenario(
            "dane_usable_tlsa",
            signed_host_with_tlsa(),
            &["a@example.com"],
        )
        .expect(&[DELIVERED])
        .attempts(&[M1])
        .check(|r| {
            ensure(
                matches!(r.plans().as_slice(), [TlsPlan::Dane { tlsa, names }]
                    if tlsa == &[usable_tlsa()] && names == &["mx1.example.com"]),
                "not a DANE plan",
            )?;
            ensure(
                r.seen.contains(&Seen::Connect(
                    ip("192.0.2.11"),
                    Some("mx1.example.com".into()),
                )),
                "not the MX name in SNI",
            )?;
            no_plaintext_mail(r)
        }),
        scenario(
            "dane_wrong_tlsa",
            World::default()
                .mx("example.com", &[(10, "mx1.example.com")], true)
                .host(
                    "mx1.example.com",
                    "192.0.2.11",
                    true,
                    server(Open::TlsFails),
                )
                .tlsa(
                    "mx1.example.com",
                    DnsAnswer::records(vec![usable_tlsa()], Security::Secure),
                ),
            &["a@example.com"],
        )
        .expect(&[(Class::Deferred, Some("4.7.5"))])
        .attempts(&[M1])
        .check(no_mail),
        scenario(
            "dane_tlsa_insecure_zone",
            World::default()
                .mx("example.com", &[(10, "mx1.example.com")], true)
                .host("mx1.example.com", "192.0.2.11", true, ok())
                .tlsa(
                    "mx1.example.com",
                    DnsAnswer::records(vec![usable_tlsa()], Security::Insecure),
                ),
            &["a@example.com"],
        )
        .expect(&[DELIVERED])
        .attempts(&[M1])
        .check(|r| {
            ensure(
                r.plans() == [TlsPlan::Opportunistic],
                "DANE from an unsigned answer",
            )
        }),
        scenario(
            "dane_not_looked_up_insecure_mx",
            World::default()
                .mx("example.com", &[(10, "mx1.example.com")], false)
                .host("mx1.example.com", "192.0.2.11", true, ok()),
            &["a@example.com"],
        )
        .expect(&[DELIVERED])
        .attempts(&[M1])
        .check(|r| {
            ensure(
                !r.seen
                    .iter()
                    .any(|s| matches!(s, Seen::Resolve(_, Query::Tlsa))),
                "a TLSA lookup under an unsigned MX",
            )
        }),
        scenario(
            "dane_cname_target_first",
            aliased_mx(true)
                .tlsa(
                    "mx.provider.net",
                    DnsAnswer::records(vec![usable_tlsa()], Security::Secure),
                )
                .tlsa(
                    "mx1.example.com",
                    DnsAnswer::records(vec![other_tlsa()], Security::Secure),
                ),
            &["a@example.com"],
        )
        .expect(&[DELIVERED])
        .attempts(&[M1])
        .check(|r| {
            looked_up_tlsa(r, &["_25._tcp.mx.provider.net"])?;
            dane_plan(
                r,
                &[usable_tlsa()],
                &["mx.provider.net", "mx1.example.com"],
                "mx.provider.net",
            )
        }),
        scenario(
            "dane_cname_target_without_tlsa_then_host",
            aliased_mx(true).tlsa(
                "mx1.example.com",
                DnsAnswer::records(vec![other_tlsa()], Security::Secure),
            ),
            &["a@example.com"],
        )
        .expect(&[DELIVERED])
        .attempts(&[M1])
        .check(|r| {
            looked_up_tlsa(r, &["_25._tcp.mx.provider.net", "_25._tcp.mx1.example.com"])?;
            dane_plan(r, &[other_tlsa()], &["mx1.example.com"], "mx1.example.com")
        }),
        scenario(
            "dane_cname_target_servfail_no_fallback",
            aliased_mx(true)
                .tlsa(
                    "mx.provider.net",
                    DnsAnswer::empty(Rcode::ServFail, Security::Insecure),
                )
                .tlsa(
                    "mx1.example.com",
                    DnsAnswer::records(vec![other_tlsa()], Security::Secure),
                ),
            &["a@example.com"],
        )
        .expect(&[(Class::Deferred, Some("4.7.5"))])
        .check(|r| {
            looked_up_tlsa(r, &["_25._tcp.mx.provider.net"])?;
            no_mail(r)
        }),
        scenario(
            "dane_cname_unvalidated_no_dane",
            aliased_mx(false).tlsa(
                "mx.provider.net",
                DnsAnswer::records(vec![usable_tlsa()], Security::Secure),
            ),
            &["a@example.com"],
        )
        .expect(&[DELIVERED])
        .attempts(&[M1])
        .check(|r| {
            ensure(
                tlsa_lookups(r).is_empty(),
                "a TLSA lookup through an unvalidated alias",
            )?;
            ensure(r.plans() == [TlsPlan::Opportunistic], "not opportunistic")
        }),
        scenario(
            "requiretls_no_requiretls_advertised",
            World::default()
                .mx("example.com", &[(10, "mx1.example.com")], true)
                .host(
                    "mx1.example.com",
                    "192.0.2.11",
                    false,
                    server(Open::Ok {
                        starttls: true,
                        requiretls: false,
                    }),
                ),
            &["a@example.com"],
        )
        .requiretls()
        .expect(&[(Class::Bounced, Some("5.7.30"))])
        .attempts(&[M1])
        .check(no_mail),
        scenario(
            "requiretls_no_starttls",
            World::default()
                .mx("example.com", &[(10, "mx1.example.com")], true)
                .host("mx1.example.com", "192.0.2.11", false, plain_only()),
            &["a@example.com"],
        )
        .requiretls()
        .expect(&[(Class::Bounced, Some("5.7.10"))])
        .attempts(&[M1])
        .check(no_mail),
        scenario(
            "requiretls_insecure_mx",
            two_mx(ok(), ok()),
            &["a@example.com"],
        )
        .requiretls()
        .expect(&[(Class::Bounced, Some("5.7.10"))])
        .check(no_mail),
        scenario(
            "requiretls_delivered",
            World::default()
                .mx("example.com", &[(10, "mx1.example.com")], true)
                .host("mx1.example.com", "192.0.2.11", false, ok()),
            &["a@example.com"],
        )
        .requiretls()
        .expect(&[DELIVERED])
        .attempts(&[M1])
        .check(no_plaintext_mail),
        scenario(
            "tls_required_no_sets_sts_aside",
            World::default()
                .mx("example.com", &[(10, "mx1.example.com")], false)
                .host("mx1.example.com", "192.0.2.11", false, plain_only())
                .sts("example.com", "1", policy("enforce", &["mx2.example.com"])),
            &["a@example.com"],
        )
        .tls_required_no()
        .expect(&[DELIVERED])
        .attempts(&[M1])
        .check(|r| {
            ensure(
                !r.seen
                    .iter()
                    .any(|s| matches!(s, Seen::Resolve(_, Query::Txt))),
                "the TXT record was looked up",
            )
        }),
        // DANE is not looked for where it cannot count: the message says
        // `TLS-Required: No`, or the local policy is plaintext.
        scenario(
            "dane_not_looked_up_tls_required_no",
            signed_host_with_tlsa(),
            &["a@example.com"],
        )
        .tls_required_no()
        .expect(&[DELIVERED])
        .attempts(&[M1])
        .check(|r| {
            ensure(
                tlsa_lookups(r).is_empty(),
                "a TLSA lookup under TLS-Required: No",
            )?;
            ensure(r.plans() == [TlsPlan::Opportunistic], "not opportunistic")
        }),
        scenario(
            "dane_not_looked_up_local_plaintext",
            signed_host_with_tlsa(),
            &["a@example.com"],
        )
        .local(LocalPolicy::Plaintext)
        .expect(&[DELIVERED])
        .attempts(&[M1])
        .check(|r| {
            ensure(
                tlsa_lookups(r).is_empty(),
                "a TLSA lookup under a plaintext policy",
            )?;
            ensure(r.plans() == [TlsPlan::Plain], "not plain")
        }),
        scenario(
            "opportunistic_handshake_failure_plaintext_retry",
            World::default()
                .mx("example.com", &[(10, "mx1.example.com")], false)
                .host(
                    "mx1.example.com",
                    "192.0.2.11",
                    false,
                    server(Open::TlsFails),
                ),
            &["a@example.com"],
        )
        .expect(&[DELIVERED])
        .attempts(&[M1, M1])
        .check(|r| {
            ensure(
                r.plans() == [TlsPlan::Opportunistic, TlsPlan::Plain],
                "no plaintext retry",
            )?;
            // The retry sends no TLS, so no server name either.
            let snis: Vec<Option<String>> = r
                .seen
                .iter()
                .filter_map(|s| match s {
                    Seen::Connect(_, sni) => Some(sni.clone()),
                    _ => None,
                })
                .collect();
            ensure(
                snis == [Some("mx1.example.com".to_owned()), None],
                &format!("server names {snis:?}"),
            )
        }),
        scenario(
            "mixed_4xx_5xx_three_domains",
            World::default()
                .mx("a.example", &[(10, "mx.a.example")], false)
                .host(
                    "mx.a.example",
                    "192.0.2.21",
                    false,
                    Server {
                        rcpt: vec![("y@a.example", 550, "5.1.1 no such user")],
                        ..ok()
                    },
                )
                .mx(
                    "b.example",
                    &[(10, "mx1.b.example"), (20, "mx2.b.example")],
                    false,
                )
                .host(
                    "mx1.b.example",
                    "192.0.2.31",
                    false,
                    Server {
                        rcpt: vec![("z@b.example", 451, "4.3.0 try later")],
                        ..ok()
                    },
                )
                .host("mx2.b.example", "192.0.2.32", false, ok())
                .mx("c.example", &[(10, "mx.c.example")], false)
                .host(
                    "mx.c.example",
                    "192.0.2.41",
                    false,
                    Server {
                        rcpt: vec![
                            ("u@c.example", 550, "5.7.1 refused"),
                            ("v@c.example", 452, "4.2.2 mailbox full"),
                        ],
                        ..ok()
                    },
                ),
            &[
                "x@a.example",
                "y@a.example",
                "w@b.example",
                "z@b.example",
                "u@c.example",
                "v@c.example",
            ],
        )
        .expect(&[
            DELIVERED,
            (Class::Bounced, Some("5.1.1")),
            DELIVERED,
            DELIVERED,
            (Class::Bounced, Some("5.7.1")),
            (Class::Deferred, Some("4.2.2")),
        ])
        .attempts(&[
            ("mx.a.example", "192.0.2.21"),
            ("mx1.b.example", "192.0.2.31"),
            ("mx2.b.example", "192.0.2.32"),
            ("mx.c.example", "192.0.2.41"),
        ])
        .check(|r| {
            let second = r
                .mails()
                .into_iter()
                .find(|(at, _, _)| *at == ip("192.0.2.32"));
            ensure(
                second.is_some_and(|(_, _, rcpts)| rcpts == ["z@b.example"]),
                "mx2 of b.example got more than the 4xx recipient",
            )
        }),
        scenario(
            "uncertain_one_recipient",
            two_mx(
                Server {
                    rcpt: vec![("b@example.com", 550, "5.1.1 unknown")],
                    uncertain: true,
                    ..ok()
                },
                ok(),
            ),
            &["a@example.com", "b@example.com"],
        )
        .expect(&[(Class::Uncertain, None), (Class::Bounced, Some("5.1.1"))])
        .attempts(&[M1])
        .check(|r| {
            ensure(
                r.mails().len() == 1,
                "the uncertain recipient was sent again",
            )
        }),
        scenario(
            "all_soft_defers_with_last_reply",
            two_mx(
                Server {
                    rcpt: vec![("a@example.com", 451, "4.3.0 first")],
                    ..ok()
                },
                Server {
                    rcpt: vec![("a@example.com", 450, "4.2.1 second")],
                    ..ok()
                },
            ),
            &["a@example.com"],
        )
        .expect(&[(Class::Deferred, Some("4.2.1"))])
        .attempts(&[M1, M2]),
        scenario(
            "session_limit_two",
            World::default()
                .mx(
                    "example.com",
                    &[
                        (10, "mx1.example.com"),
                        (20, "mx2.example.com"),
                        (30, "mx3.example.com"),
                    ],
                    false,
                )
                .host(
                    "mx1.example.com",
                    "192.0.2.11",
                    false,
                    Server {
                        rcpt: vec![("a@example.com", 451, "4.3.0 a")],
                        ..ok()
                    },
                )
                .host(
                    "mx2.example.com",
                    "192.0.2.12",
                    false,
                    Server {
                        rcpt: vec![("a@example.com", 451, "4.3.0 b")],
                        ..ok()
                    },
                )
                .host("mx3.example.com", "192.0.2.13", false, ok()),
            &["a@example.com"],
        )
        .expect(&[(Class::Deferred, Some("4.3.0"))])
        .attempts(&[M1, M2]),
        scenario(
            "address_literal_and_bad_domain",
            World::default().host("[192.0.2.50]", "192.0.2.50", false, ok()),
            &["a@[192.0.2.50]", "b@bad..example"],
        )
        .expect(&[DELIVERED, (Class::Bounced, Some("5.1.2"))])
        .attempts(&[("[192.0.2.50]", "192.0.2.50")])
        .check(|r| {
            let c = &r.report.domains[0].connections[0];
            ensure(c.tls == TlsPlan::Opportunistic, "not opportunistic")?;
            ensure(
                r.seen.contains(&Seen::Connect(ip("192.0.2.50"), None)),
                "SNI for an address literal",
            )
        }),
    ];
    for (plain, cached, fetch, notice) in failing {
        // Without a cache: no policy, opportunistic delivery to mx1.
        let mut s = scenario(
            plain,
            two_mx(ok(), ok()).sts("example.com", "new", fetch.clone()),
            &["a@example.com"],
        )
        .expect(&[DELIVERED])
        .attempts(&[M1]);
        s.check = one_fetch_no_policy;
        let check_notice = notice;
        all.push(s);
        // With a fresh cached enforce policy (mx2 only): it is kept.
        let mut s = scenario(
            cached,
            two_mx(ok(), ok()).sts("example.com", "new", fetch),
            &["a@example.com"],
        )
        .cache(cached_enforce_mx2(100))
        .expect(&[DELIVERED])
        .attempts(&[M2]);
        s.check = cached_policy_applied;
        all.push(s);
        // The notice names the failure.
        all.push(
            scenario(
                match plain {
                    "sts_fetch_404" => "sts_fetch_404_notice",
                    "sts_fetch_redirect" => "sts_fetch_redirect_notice",
                    "sts_fetch_text_html" => "sts_fetch_text_html_notice",
                    "sts_fetch_over_64k" => "sts_fetch_over_64k_notice",
                    _ => "sts_server_down_notice",
                },
                all.last().unwrap().world.clone(),
                &["a@example.com"],
            )
            .cache(cached_enforce_mx2(100))
            .expect(&[DELIVERED])
            .attempts(&[M2])
            .check(check_notice),
        );
    }
    all
}

#[test]
fn answers_to_unknown_or_mismatched_requests_are_refused() {
    use smtp_mx::engine::{InputError, RequestId};
    let mut d = Delivery::new(
        &["a@example.com"],
        MessageSecurity::default(),
        Config::default(),
        StsCache::new(),
        NOW,
        1,
    );
    let Some(Request::Resolve {
        id: mx,
        query: Query::Mx,
        ..
    }) = d.next_request()
    else {
        panic!("the MX lookup first");
    };
    let Some(Request::Resolve {
        id: txt,
        query: Query::Txt,
        ..
    }) = d.next_request()
    else {
        panic!("the TXT lookup second");
    };
    assert_eq!(d.next_request(), None);
    // A TXT answer to the MX lookup, an unknown id, a fetch result and a
    // connection outcome out of turn: all refused, nothing changed.
    let wrong = Answer::Txt(DnsAnswer::empty(Rcode::NxDomain, Security::Insecure));
    assert_eq!(d.answer(mx, wrong), Err(InputError::WrongKind(mx)));
    assert_eq!(
        d.answer(
            RequestId(99),
            Answer::Mx(DnsAnswer::empty(Rcode::NoError, Security::Insecure))
        ),
        Err(InputError::UnknownRequest(RequestId(99)))
    );
    assert_eq!(
        d.policy_fetched(txt, PolicyFetch::Failed),
        Err(InputError::WrongKind(txt))
    );
    assert_eq!(
        d.opened(mx, Opening::Refused),
        Err(InputError::WrongKind(mx))
    );
    assert_eq!(
        d.transaction_done(mx, Err(Error::Disconnected)),
        Err(InputError::WrongKind(mx))
    );
    assert!(!d.is_done());
    assert!(d.report().is_none());
    // The right answers still go through, once.
    let nx = || Answer::Mx(DnsAnswer::empty(Rcode::ServFail, Security::Insecure));
    assert_eq!(d.answer(mx, nx()), Ok(()));
    assert_eq!(d.answer(mx, nx()), Err(InputError::UnknownRequest(mx)));
    assert!(d.is_done());
    let report = d.report().unwrap();
    assert_eq!(report.recipients[0].status.class(), Class::Deferred);
}

#[test]
fn each_domain_is_shuffled_by_the_seed_and_replayable() {
    // Equal preferences: the seed decides the order, the same seed the same
    // order, and over seeds both hosts come first.
    let world = World::default()
        .mx(
            "example.com",
            &[(10, "mx1.example.com"), (10, "mx2.example.com")],
            false,
        )
        .host("mx1.example.com", "192.0.2.11", false, server(Open::Refuse))
        .host("mx2.example.com", "192.0.2.12", false, server(Open::Refuse));
    let first = |seed: u64| {
        let mut d = Delivery::new(
            &["a@example.com"],
            MessageSecurity {
                tls_required_no: true,
                requiretls: false,
            },
            Config::default(),
            StsCache::new(),
            NOW,
            seed,
        );
        let mut hosts = Vec::new();
        while let Some(r) = d.next_request() {
            match r {
                Request::Resolve { id, name, query } => {
                    d.answer(id, world.resolve(&name, query)).unwrap()
                }
                Request::Connect(c) => {
                    hosts.push(c.host.clone());
                    d.opened(c.id, Opening::Refused).unwrap();
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let report = d.report().unwrap();
        assert_eq!(
            report.recipients[0].status.status().unwrap().to_string(),
            "4.4.1"
        );
        hosts
    };
    assert_eq!(first(5), first(5));
    let firsts: Vec<String> = (0..64).map(|s| first(s)[0].clone()).collect();
    assert!(firsts.iter().any(|h| h == "mx1.example.com"));
    assert!(firsts.iter().any(|h| h == "mx2.example.com"));
}

#[test]
fn a_thousand_deliveries_fetch_once_per_policy_id() {
    let mut world = two_mx(ok(), ok()).sts(
        "example.com",
        "one",
        policy("enforce", &["mx2.example.com"]),
    );
    let mut cache = StsCache::new();
    let mut fetches = 0;
    for n in 0..1000u64 {
        if n == 500 {
            // A new id: exactly one more fetch; the new policy lists mx1.
            world = world.sts(
                "example.com",
                "two",
                policy("enforce", &["mx1.example.com"]),
            );
        }
        let mut s = scenario("repeat", world.clone(), &["a@example.com"]);
        s.cache = cache;
        s.now = NOW + n * 60;
        let r = run(&s);
        fetches += r.fetches();
        let want = if n < 500 { "192.0.2.12" } else { "192.0.2.11" };
        assert_eq!(r.mails().len(), 1, "delivery {n}");
        assert_eq!(r.mails()[0].0, ip(want), "delivery {n}");
        assert!(r.mails()[0].1, "delivery {n} without TLS");
        cache = r.cache;
    }
    assert_eq!(fetches, 2);
}
