//! Load client for the LDAP benchmark (`bench/ldap.sh`): N connections
//! issue searches as fast as the server answers for a fixed time, then
//! print throughput, latency percentiles and, given the server's pid, the
//! server's CPU time per operation (from /proc/<pid>/stat).
//!
//! ```text
//! cargo run --release --example ldap_load -- --url ldap://127.0.0.1:3389 \
//!     --data bench-data --mode mail|thunderbird [--connections 8] [--seconds 10] \
//!     [--server-pid PID] [--label ccdir] [--client ldap3|raw]
//! ```
//!
//! `--client ldap3` (the default) searches through the `ldap3` crate, which
//! decodes every entry of a reply; `raw` sends the same requests encoded by
//! ldap3_proto and reads replies only as far as their framing (entries
//! counted, the result code checked), so that on a small machine the
//! client's own CPU does not cap what a fast server can show.
//!
//! `mail`: `(mail=<random address>)` asking for `userCertificate;binary`
//! (certificate discovery). `thunderbird`: Thunderbird's autocomplete
//! filter `(|(cn=<p>*)(mail=<p>*)(sn=<p>*))` for a random three-letter
//! prefix, with its attribute list and its 100-entry limit.

use std::time::{Duration, Instant};

use ldap3::{LdapConnAsync, Scope, SearchOptions};
use rand::Rng;

struct Args {
    url: String,
    base: String,
    data: String,
    mode: String,
    connections: usize,
    seconds: u64,
    server_pid: Option<u32>,
    label: String,
    client: String,
}

fn args() -> Args {
    let mut a = Args {
        url: "ldap://127.0.0.1:3389".into(),
        base: "dc=ccdir".into(),
        data: "bench-data".into(),
        mode: "mail".into(),
        connections: 8,
        seconds: 10,
        server_pid: None,
        label: "server".into(),
        client: "ldap3".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--url" => a.url = value,
            "--base" => a.base = value,
            "--data" => a.data = value,
            "--mode" => a.mode = value,
            "--connections" => a.connections = value.parse().expect("--connections N"),
            "--seconds" => a.seconds = value.parse().expect("--seconds N"),
            "--server-pid" => a.server_pid = Some(value.parse().expect("--server-pid PID")),
            "--label" => a.label = value,
            "--client" => a.client = value,
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name: state is field 3; utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(11) + get(12)
}

fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// Attributes Thunderbird's address book asks for.
const THUNDERBIRD_ATTRS: [&str; 10] = [
    "cn",
    "givenName",
    "sn",
    "mail",
    "telephoneNumber",
    "l",
    "st",
    "o",
    "ou",
    "title",
];

/// One workload's request for a key: filter, attributes, size limit.
struct Workload {
    base: String,
    mode: String,
}

impl Workload {
    fn filter(&self, key: &str) -> String {
        if self.mode == "mail" {
            format!("(mail={key})")
        } else {
            format!("(|(cn={key}*)(mail={key}*)(sn={key}*))")
        }
    }

    fn attrs(&self) -> Vec<&'static str> {
        if self.mode == "mail" {
            vec!["userCertificate;binary"]
        } else {
            THUNDERBIRD_ATTRS.to_vec()
        }
    }

    fn size_limit(&self) -> i32 {
        if self.mode == "mail" { 0 } else { 100 }
    }
}

/// Latencies (µs), entries received, failed requests.
type Tally = (Vec<u32>, usize, usize);

fn random_key(keys: &[String]) -> &str {
    &keys[rand::rng().random_range(0..keys.len())]
}

/// One connection through the `ldap3` crate: every reply decoded into its
/// entries.
async fn ldap3_connection(url: &str, w: &Workload, keys: &[String], deadline: Instant) -> Tally {
    let (conn, mut ldap) = LdapConnAsync::new(url).await.expect("connect");
    ldap3::drive!(conn);
    let (mut latencies, mut entries, mut errors) = (Vec::new(), 0usize, 0usize);
    while Instant::now() < deadline {
        let filter = w.filter(random_key(keys));
        let t = Instant::now();
        ldap.with_search_options(SearchOptions::new().sizelimit(w.size_limit()));
        match ldap
            .search(&w.base, Scope::Subtree, &filter, w.attrs())
            .await
        {
            Ok(r) if r.1.rc == 0 || r.1.rc == 4 => entries += r.0.len(),
            _ => errors += 1,
        }
        latencies.push(t.elapsed().as_micros() as u32);
    }
    let _ = ldap.unbind().await;
    (latencies, entries, errors)
}

/// One connection that encodes requests with ldap3_proto and reads replies
/// only as far as the framing: each LDAPMessage's outer length, its
/// operation tag (SearchResultEntry counted) and the SearchResultDone's
/// result code. A load generator light enough that a 2-core machine
/// measures the server rather than the client's decoding.
async fn raw_connection(url: &str, w: &Workload, keys: &[String], deadline: Instant) -> Tally {
    use ldap3_proto::proto::{
        LdapDerefAliases, LdapFilter, LdapMsg, LdapOp, LdapSearchRequest, LdapSearchScope,
        LdapSubstringFilter,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = url.trim_start_matches("ldap://").trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (mut latencies, mut entries, mut errors) = (Vec::new(), 0usize, 0usize);
    let mut buf = bytes::BytesMut::with_capacity(64 * 1024);
    let mut out = bytes::BytesMut::new();
    let mut msgid = 0;
    while Instant::now() < deadline {
        let key = random_key(keys).to_owned();
        let prefix = |attr: &str| {
            LdapFilter::Substring(
                attr.into(),
                LdapSubstringFilter {
                    initial: Some(key.clone()),
                    any: Vec::new(),
                    final_: None,
                },
            )
        };
        let filter = if w.mode == "mail" {
            LdapFilter::Equality("mail".into(), key.clone())
        } else {
            LdapFilter::Or(vec![prefix("cn"), prefix("mail"), prefix("sn")])
        };
        msgid += 1;
        let msg = LdapMsg {
            msgid,
            op: LdapOp::SearchRequest(LdapSearchRequest {
                base: w.base.clone(),
                scope: LdapSearchScope::Subtree,
                aliases: LdapDerefAliases::Never,
                sizelimit: w.size_limit(),
                timelimit: 0,
                typesonly: false,
                filter,
                attrs: w.attrs().into_iter().map(String::from).collect(),
            }),
            ctrl: Vec::new(),
        };
        let t = Instant::now();
        out.clear();
        let tag: ldap3_lber::structure::StructureTag = msg.into();
        ldap3_lber::write::encode_into(&mut out, tag).expect("encode");
        stream.write_all(&out).await.expect("send");
        let code = loop {
            match next_message(&mut buf) {
                Some((0x64, _)) => entries += 1,
                Some((0x65, code)) => break code,
                Some(_) => {}
                None => {
                    if stream.read_buf(&mut buf).await.expect("receive") == 0 {
                        panic!("the server closed the connection");
                    }
                }
            }
        };
        if code != 0 && code != 4 {
            errors += 1;
        }
        latencies.push(t.elapsed().as_micros() as u32);
    }
    (latencies, entries, errors)
}

/// A BER length at `b[0..]`: (length, octets of the length header).
fn ber_length(b: &[u8]) -> Option<(usize, usize)> {
    let first = *b.first()?;
    if first < 0x80 {
        return Some((first as usize, 1));
    }
    let n = (first & 0x7f) as usize;
    let octets = b.get(1..1 + n)?;
    Some((octets.iter().fold(0, |l, o| l << 8 | *o as usize), 1 + n))
}

/// Takes the first whole LDAPMessage off `buf`: its operation's tag and,
/// for a result, its result code.
fn next_message(buf: &mut bytes::BytesMut) -> Option<(u8, u8)> {
    use bytes::Buf;
    assert!(buf.is_empty() || buf[0] == 0x30, "not an LDAPMessage");
    let (len, header) = ber_length(buf.get(1..)?)?;
    let total = 1 + header + len;
    if buf.len() < total {
        return None;
    }
    let body = &buf[1 + header..total];
    // messageID INTEGER, then the protocolOp.
    let (id_len, id_header) = ber_length(&body[1..]).expect("message id");
    let op = &body[1 + id_header + id_len..];
    let tag = op[0];
    // A result: resultCode ENUMERATED first in the operation's content.
    let code = match ber_length(&op[1..]) {
        Some((_, h)) if tag & 0x20 != 0 && op.get(1 + h) == Some(&0x0a) => op[1 + h + 2],
        _ => 0,
    };
    buf.advance(total);
    Some((tag, code))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    let list = |name: &str| -> Vec<String> {
        std::fs::read_to_string(format!("{}/{name}", a.data))
            .unwrap_or_else(|e| panic!("reading {}/{name}: {e}", a.data))
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let keys = std::sync::Arc::new(match a.mode.as_str() {
        "mail" => list("mails.txt"),
        "thunderbird" => list("prefixes.txt"),
        other => panic!("unknown mode {other}"),
    });
    // Warm up: one connection, a few hundred requests, not measured.
    let deadline = Instant::now() + Duration::from_secs(a.seconds);
    let ticks_before = a.server_pid.map(cpu_ticks);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..a.connections {
        let (url, base, mode, keys) = (a.url.clone(), a.base.clone(), a.mode.clone(), keys.clone());
        let raw = a.client == "raw";
        tasks.push(tokio::spawn(async move {
            let workload = Workload { base, mode };
            if raw {
                raw_connection(&url, &workload, &keys, deadline).await
            } else {
                ldap3_connection(&url, &workload, &keys, deadline).await
            }
        }));
    }
    let mut latencies = Vec::new();
    let (mut entries, mut errors) = (0, 0);
    for t in tasks {
        let (l, e, x) = t.await.expect("task");
        latencies.extend(l);
        entries += e;
        errors += x;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ticks = a
        .server_pid
        .map(|pid| cpu_ticks(pid) - ticks_before.unwrap_or(0));
    latencies.sort_unstable();
    let n = latencies.len().max(1);
    let pct = |p: f64| {
        latencies
            .get(((n as f64 * p) as usize).min(n - 1))
            .copied()
            .unwrap_or(0)
    };
    let cpu_us_per_op = ticks.map(|t| t as f64 * 1e6 / clock_ticks_per_second() as f64 / n as f64);
    println!(
        "{:<8} {:<12} ops {:>8}  ops/s {:>9.0}  p50 {:>7.2} ms  p99 {:>7.2} ms  server CPU/op {:>8}  entries/op {:>6.1}  errors {}  client {}",
        a.label,
        a.mode,
        latencies.len(),
        latencies.len() as f64 / elapsed,
        pct(0.50) as f64 / 1000.0,
        pct(0.99) as f64 / 1000.0,
        cpu_us_per_op.map_or("-".to_owned(), |c| format!("{c:.0} µs")),
        entries as f64 / n as f64,
        errors,
        a.client
    );
}
