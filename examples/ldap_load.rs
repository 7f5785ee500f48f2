//! Load client for the LDAP benchmark (`bench/ldap.sh`): N connections
//! issue searches as fast as the server answers for a fixed time, then
//! print throughput, latency percentiles and, given the server's pid, the
//! server's CPU time per operation (from /proc/<pid>/stat).
//!
//! ```text
//! cargo run --release --example ldap_load -- --url ldap://127.0.0.1:3389 \
//!     --data bench-data --mode mail|thunderbird [--connections 8] [--seconds 10] \
//!     [--server-pid PID] [--label ccdir]
//! ```
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
        tasks.push(tokio::spawn(async move {
            let (conn, mut ldap) = LdapConnAsync::new(&url).await.expect("connect");
            ldap3::drive!(conn);
            let mut latencies = Vec::new();
            let mut entries = 0usize;
            let mut errors = 0usize;
            while Instant::now() < deadline {
                let key = keys[rand::rng().random_range(0..keys.len())].clone();
                let t = Instant::now();
                let result = if mode == "mail" {
                    ldap.search(
                        &base,
                        Scope::Subtree,
                        &format!("(mail={key})"),
                        vec!["userCertificate;binary"],
                    )
                    .await
                } else {
                    ldap.with_search_options(SearchOptions::new().sizelimit(100));
                    ldap.search(
                        &base,
                        Scope::Subtree,
                        &format!("(|(cn={key}*)(mail={key}*)(sn={key}*))"),
                        vec![
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
                        ],
                    )
                    .await
                };
                match result {
                    Ok(r) if r.1.rc == 0 || r.1.rc == 4 => entries += r.0.len(),
                    _ => errors += 1,
                }
                latencies.push(t.elapsed().as_micros() as u32);
            }
            let _ = ldap.unbind().await;
            (latencies, entries, errors)
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
        "{:<8} {:<12} ops {:>8}  ops/s {:>9.0}  p50 {:>7.2} ms  p99 {:>7.2} ms  server CPU/op {:>8}  entries/op {:>6.1}  errors {}",
        a.label,
        a.mode,
        latencies.len(),
        latencies.len() as f64 / elapsed,
        pct(0.50) as f64 / 1000.0,
        pct(0.99) as f64 / 1000.0,
        cpu_us_per_op.map_or("-".to_owned(), |c| format!("{c:.0} µs")),
        entries as f64 / n as f64,
        errors
    );
}
