//! `ccdir bench policy`: one node with many policy subscribers — server-
//! sent event streams and webhooks — measuring delivery latency from the
//! event's acceptance (`accepted_at`, the commit's clock) to its arrival
//! at each subscriber, the events per second the node sustains while
//! delivering to all of them, and DNS policy lookups per second.
//!
//! Everything runs in this process on loopback (the node, the SSE
//! clients, the webhook receiver, the DNS client), so the figures include
//! the clients' share of the two cores. Prints Markdown.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};

use crate::app;
use crate::config::Config;
use crate::domain::{PolicyKind, PolicyOp};
use crate::federation::{Hash, Key};
use crate::pki::NodeKey;
use crate::pki::token::Role;
use crate::policy::{PolicyEvent, SignedEvent};

/// What to measure.
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyBenchArgs {
    /// Server-sent event subscribers.
    #[arg(long, default_value_t = 1000)]
    pub sse: usize,
    /// Webhook subscribers.
    #[arg(long, default_value_t = 100)]
    pub webhooks: usize,
    /// Events for the latency run, sent at --rate per second.
    #[arg(long, default_value_t = 100)]
    pub events: usize,
    /// Events per second in the latency run.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Events for the throughput run, sent as fast as they are accepted.
    #[arg(long, default_value_t = 500)]
    pub burst: usize,
    /// DNS policy lookups over UDP.
    #[arg(long, default_value_t = 200_000)]
    pub lookups: usize,
}

struct Owner {
    key: NodeKey,
    version: u64,
    head: Hash,
}

impl Owner {
    fn sign(&mut self, op: PolicyOp) -> anyhow::Result<SignedEvent> {
        let e = PolicyEvent {
            policy: "bench".parse()?,
            owner: Key(self.key.public_key_bytes()),
            version: self.version + 1,
            prev: self.head,
            time: Utc::now(),
            op,
        }
        .sign(&self.key)?;
        self.version += 1;
        self.head = e.hash();
        Ok(e)
    }

    fn list(&mut self, n: usize) -> anyhow::Result<SignedEvent> {
        self.sign(PolicyOp::List {
            subject: format!("domain:d{n}.bench.example").parse()?,
            reason: format!("benchmark listing {n}"),
            expires: None,
        })
    }
}

/// Latencies in milliseconds, and when the last one arrived.
#[derive(Default)]
struct Arrivals {
    sse: Vec<f64>,
    hooks: Vec<f64>,
    last: Option<Instant>,
}

fn latency_ms(data: &serde_json::Value) -> Option<f64> {
    let at: DateTime<Utc> = data["accepted_at"].as_str()?.parse().ok()?;
    Some((Utc::now() - at).num_microseconds()? as f64 / 1e3)
}

fn pct(samples: &mut [f64], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(f64::total_cmp);
    samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)]
}

async fn submit(http: &reqwest::Client, base: &str, e: &SignedEvent) -> anyhow::Result<()> {
    let res = http
        .post(format!("{base}/api/v1/policy-events"))
        .json(&serde_json::json!({"events": [STANDARD.encode(e.bytes())]}))
        .send()
        .await?;
    anyhow::ensure!(res.status().is_success(), "submit: {}", res.status());
    Ok(())
}

/// One SSE subscriber: records each event's latency until told to stop.
async fn subscriber(
    http: reqwest::Client,
    url: String,
    arrivals: Arc<Mutex<Arrivals>>,
    connected: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let mut res = http
        .get(&url)
        .header("Accept", "text/event-stream")
        .header("Last-Event-ID", "1")
        .send()
        .await?;
    connected.fetch_add(1, Ordering::Relaxed);
    let mut buffer = String::new();
    while let Some(chunk) = res.chunk().await? {
        buffer.push_str(std::str::from_utf8(&chunk)?);
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            for line in frame.lines() {
                if let Some(data) = line.strip_prefix("data: ")
                    && let Some(ms) = serde_json::from_str(data).ok().and_then(|v| latency_ms(&v))
                {
                    let mut a = arrivals.lock().expect("arrivals");
                    a.sse.push(ms);
                    a.last = Some(Instant::now());
                }
            }
        }
    }
    Ok(())
}

/// A webhook receiver for every subscription, on one listener: plain
/// HTTP/1.1 with keep-alive, answering 200 to every POST (a protocol
/// crate here would be the API's, which the module map keeps to `api`).
async fn receiver(arrivals: Arc<Mutex<Arrivals>>) -> anyhow::Result<SocketAddr> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind((IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let arrivals = arrivals.clone();
            tokio::spawn(async move {
                let mut buf: Vec<u8> = Vec::with_capacity(8192);
                let mut chunk = [0u8; 8192];
                loop {
                    // Headers, then Content-Length octets of body.
                    let (head_end, length) = loop {
                        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..at]).to_ascii_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            break (at + 4, length);
                        }
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    while buf.len() < head_end + length {
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body: Vec<u8> = buf.drain(..head_end + length).skip(head_end).collect();
                    if let Some(ms) = serde_json::from_slice(&body)
                        .ok()
                        .and_then(|v: serde_json::Value| latency_ms(&v))
                    {
                        let mut a = arrivals.lock().expect("arrivals");
                        a.hooks.push(ms);
                        a.last = Some(Instant::now());
                    }
                    if conn
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    Ok(addr)
}

async fn wait_for(
    arrivals: &Mutex<Arrivals>,
    sse: usize,
    hooks: usize,
    limit: Duration,
) -> (usize, usize) {
    let start = Instant::now();
    loop {
        let (s, h) = {
            let a = arrivals.lock().expect("arrivals");
            (a.sse.len(), a.hooks.len())
        };
        if (s >= sse && h >= hooks) || start.elapsed() > limit {
            return (s, h);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn dns_query(name: &str, id: u16) -> Vec<u8> {
    let mut m = vec![(id >> 8) as u8, id as u8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&[0, 1, 0, 1]);
    m
}

/// Runs the benchmark and prints the figures.
pub async fn run(args: PolicyBenchArgs) -> anyhow::Result<()> {
    crate::core::install_crypto_provider();
    let dir = std::env::temp_dir().join(format!("ccdir-policy-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut config = Config {
        data_dir: dir.clone(),
        ..Config::default()
    };
    config.api.listen = "127.0.0.1:0".parse()?;
    config.api.rate_limit_per_second = 1_000_000;
    config.api.rate_limit_burst = 1_000_000;
    config.ldap.enabled = false;
    config.dns.listen = "127.0.0.1:0".parse()?;
    config.dns.policy_zone = "bl.bench".into();
    config.dns.rrl_responses_per_second = 0;
    let node = app::start(&config, NodeKey::generate(&mut rand::rng())).await?;
    let base = format!("http://{}", node.api_addr);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .pool_max_idle_per_host(usize::MAX)
        .build()?;
    let mut owner = Owner {
        key: NodeKey::generate(&mut rand::rng()),
        version: 0,
        head: Hash::ZERO,
    };
    let create = owner.sign(PolicyOp::Create {
        kind: PolicyKind::DenyList,
        title: "bench".into(),
        description: "benchmark".into(),
    })?;
    submit(&http, &base, &create).await?;

    let arrivals = Arc::new(Mutex::new(Arrivals::default()));
    let hook_addr = receiver(arrivals.clone()).await?;
    let token =
        node.directory
            .issue_token(Role::NodeAdmin, None, "bench", Duration::from_secs(3600))?;
    for i in 0..args.webhooks {
        let res = http
            .post(format!("{base}/api/v1/webhooks"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"url": format!("http://{hook_addr}/hook/{i}"), "policy": "bench"}))
            .send()
            .await?;
        anyhow::ensure!(res.status().is_success(), "webhook: {}", res.status());
    }
    let connected = Arc::new(AtomicU64::new(0));
    let url = format!("{base}/api/v1/policies/bench/events");
    for _ in 0..args.sse {
        tokio::spawn(subscriber(
            http.clone(),
            url.clone(),
            arrivals.clone(),
            connected.clone(),
        ));
    }
    let start = Instant::now();
    while (connected.load(Ordering::Relaxed) as usize) < args.sse
        || node.directory.metrics().sse_streams.get() < args.sse as i64
    {
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(120),
            "only {} SSE subscribers connected",
            connected.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "# Policy feeds: {} SSE + {} webhook subscribers on one node\n",
        args.sse, args.webhooks
    );
    println!(
        "{} SSE streams open after {:.2} s.\n",
        args.sse,
        start.elapsed().as_secs_f64()
    );

    // Latency at a steady rate.
    let cpu0 = super::process_cpu_seconds();
    let t0 = Instant::now();
    let gap = Duration::from_secs_f64(1.0 / args.rate.max(0.1));
    for n in 0..args.events {
        let due = t0 + gap * n as u32;
        tokio::time::sleep_until(due.into()).await;
        submit(&http, &base, &owner.list(n)?).await?;
    }
    let want_sse = args.sse * args.events;
    let want_hooks = args.webhooks * args.events;
    let (got_sse, got_hooks) =
        wait_for(&arrivals, want_sse, want_hooks, Duration::from_secs(120)).await;
    let latency_cpu = super::process_cpu_seconds() - cpu0;
    let (mut sse, mut hooks) = {
        let mut a = arrivals.lock().expect("arrivals");
        (std::mem::take(&mut a.sse), std::mem::take(&mut a.hooks))
    };
    println!(
        "## Latency: {} events at {}/s (event accepted -> arrival)\n",
        args.events, args.rate
    );
    println!("| subscribers | deliveries | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| SSE × {} | {got_sse} / {want_sse} | {:.1} | {:.1} | {:.1} |",
        args.sse,
        pct(&mut sse, 0.5),
        pct(&mut sse, 0.99),
        pct(&mut sse, 1.0)
    );
    println!(
        "| webhook × {} | {got_hooks} / {want_hooks} | {:.1} | {:.1} | {:.1} |",
        args.webhooks,
        pct(&mut hooks, 0.5),
        pct(&mut hooks, 0.99),
        pct(&mut hooks, 1.0)
    );
    println!(
        "\nProcess CPU (node and clients) during the run: {latency_cpu:.1} s over {:.1} s.\n",
        t0.elapsed().as_secs_f64()
    );

    // Throughput: as fast as events are accepted, everyone subscribed.
    let cpu0 = super::process_cpu_seconds();
    let t0 = Instant::now();
    for n in 0..args.burst {
        submit(&http, &base, &owner.list(args.events + n)?).await?;
    }
    let accepted = t0.elapsed();
    let (got_sse, got_hooks) = wait_for(
        &arrivals,
        args.sse * args.burst,
        args.webhooks * args.burst,
        Duration::from_secs(600),
    )
    .await;
    let last = arrivals
        .lock()
        .expect("arrivals")
        .last
        .unwrap_or_else(Instant::now);
    let delivered = last.saturating_duration_since(t0);
    let cpu = super::process_cpu_seconds() - cpu0;
    println!(
        "## Throughput: {} events submitted back to back\n",
        args.burst
    );
    println!("| measure | value |");
    println!("|---|---:|");
    println!(
        "| events accepted | {:.0} /s ({:.2} s) |",
        args.burst as f64 / accepted.as_secs_f64(),
        accepted.as_secs_f64()
    );
    println!(
        "| events delivered to every subscriber | {:.0} /s (last arrival after {:.2} s) |",
        args.burst as f64 / delivered.as_secs_f64(),
        delivered.as_secs_f64()
    );
    println!(
        "| deliveries | {} SSE, {} webhook ({:.0} /s) |",
        got_sse,
        got_hooks,
        (got_sse + got_hooks) as f64 / delivered.as_secs_f64()
    );
    println!("| process CPU | {cpu:.1} s |\n");

    // DNS policy lookups over UDP, listed names, 8 sockets in flight.
    let (udp, _) = node.dns_addrs().context("the DNS front end runs")?;
    let listed = args.events + args.burst;
    let per = args.lookups / 8;
    let cpu0 = super::process_cpu_seconds();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..8 {
        tasks.push(tokio::spawn(async move {
            let sock = tokio::net::UdpSocket::bind((IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).await?;
            sock.connect(udp).await?;
            let mut buf = vec![0u8; 2048];
            let mut times = Vec::with_capacity(per);
            let mut listed_answers = 0usize;
            for i in 0..per {
                let n = (i * 8 + s) % listed;
                let q = dns_query(&format!("d{n}.bench.example.bench.bl.bench"), i as u16);
                let sent = Instant::now();
                sock.send(&q).await?;
                let len = tokio::time::timeout(Duration::from_secs(2), sock.recv(&mut buf))
                    .await
                    .map_err(|_| anyhow::anyhow!("no DNS answer"))??;
                times.push(sent.elapsed().as_secs_f64() * 1e6);
                // One answer (ANCOUNT 1) of 127.0.0.2 means listed.
                if len > 12 && buf[7] == 1 {
                    listed_answers += 1;
                }
            }
            anyhow::Ok((times, listed_answers))
        }));
    }
    let mut times = Vec::new();
    let mut answers = 0;
    for t in tasks {
        let (t, a) = t.await??;
        times.extend(t);
        answers += a;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = super::process_cpu_seconds() - cpu0;
    println!("## DNS policy lookups (A, UDP, 8 clients in flight)\n");
    println!("| queries | listed answers | queries/s | p50 µs | p99 µs | process CPU µs/query |");
    println!("|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {answers} | {:.0} | {:.0} | {:.0} | {:.1} |",
        times.len(),
        times.len() as f64 / elapsed,
        pct(&mut times, 0.5),
        pct(&mut times, 0.99),
        cpu * 1e6 / times.len() as f64
    );
    node.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
