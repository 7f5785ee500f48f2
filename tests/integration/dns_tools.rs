//! The DNS front end against real tools from Debian: `dig` (dnsutils) when
//! `CCDIR_TEST_DIG=1`, and NSD as a real secondary that pulls the zone by
//! AXFR, is told of changes by NOTIFY, and answers the same CERT records,
//! when `CCDIR_TEST_SECONDARY=1`. Set but missing tools fail the test; unset,
//! the tests pass without doing anything (`.ci/run` sets both).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::dns::{ZONE, dns_addr, dns_node, dns_tcp_addr, put_entry, rsa_leaf, setup};
use crate::support::TestPki;

pub fn wanted(var: &str, tool: &str) -> bool {
    if std::env::var(var).as_deref() != Ok("1") {
        eprintln!("{var} is not 1: skipping the {tool} checks");
        return false;
    }
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{var}=1 but {tool} is not installed (apt-get install it)"
    );
    true
}

/// Runs dig against `server` with `args`; returns its output.
pub async fn dig(server: SocketAddr, args: &[&str]) -> String {
    let mut cmd = vec![
        format!("@{}", server.ip()),
        "-p".into(),
        server.port().to_string(),
        "+norecurse".into(),
        "+time=3".into(),
        "+tries=1".into(),
    ];
    cmd.extend(args.iter().map(|a| a.to_string()));
    tokio::task::spawn_blocking(move || {
        let out = Command::new("dig").args(&cmd).output().expect("dig runs");
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        text
    })
    .await
    .unwrap()
}

/// The base64 payloads of the CERT lines of `dig +short ... CERT`, decoded.
fn short_certs(output: &str) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = output
        .lines()
        .filter(|l| l.starts_with("PKIX 0 0 ") || l.starts_with("1 0 0 "))
        .map(|l| {
            let b64: String = l.split_whitespace().skip(3).collect();
            STANDARD.decode(b64).expect("base64")
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_sees_what_a_resolver_sees() {
    if !wanted("CCDIR_TEST_DIG", "dig") {
        return;
    }
    let node = dns_node(|_| {}).await;
    let pki = TestPki::new("Dig");
    setup(&node, &pki).await;
    let alice = rsa_leaf(&pki, &format!("alice@{ZONE}"));
    put_entry(
        &node,
        &pki,
        &format!("alice@{ZONE}"),
        std::slice::from_ref(&alice),
        json!({}),
    )
    .await;
    crate::dns::published(&node).await;
    let udp = dns_addr(&node);
    let tcp = dns_tcp_addr(&node);
    assert_eq!(udp.port(), tcp.port(), "one port for UDP and TCP");
    let name = format!("alice.{ZONE}");

    // Over UDP dig offers 1232 and the ~1.3 KB answer does not fit: TC, and
    // dig retries over TCP by itself, getting it whole.
    let out = dig(udp, &[&name, "CERT", "+short"]).await;
    assert_eq!(short_certs(&out), vec![alice.clone()], "{out}");
    let out = dig(udp, &[&name, "CERT", "+tcp", "+short"]).await;
    assert_eq!(short_certs(&out), vec![alice.clone()], "{out}");
    let out = dig(udp, &[&name, "CERT", "+bufsize=512", "+ignore"]).await;
    assert!(out.contains("flags: qr aa tc;"), "{out}");
    assert!(out.contains("ANSWER: 0,"), "{out}");
    let out = dig(udp, &[&name, "CERT", "+bufsize=512"]).await;
    assert!(out.contains("Truncated, retrying in TCP mode"), "{out}");
    assert!(
        out.contains("ANSWER: 1,") && out.contains("IN\tCERT\tPKIX 0 0 "),
        "{out}"
    );

    let out = dig(udp, &[&format!("_ldap._tcp.{ZONE}"), "SRV", "+short"]).await;
    let ldap_port = node.node.as_ref().unwrap().ldap_addr.expect("ldap").port();
    assert_eq!(out.trim(), format!("0 0 {ldap_port} ldap.{ZONE}."));
    let out = dig(udp, &[&name, "A"]).await;
    assert!(
        out.contains("status: NOERROR") && out.contains("ANSWER: 0, AUTHORITY: 1"),
        "NODATA: {out}"
    );
    let out = dig(udp, &[&format!("nobody.{ZONE}"), "CERT"]).await;
    assert!(
        out.contains("status: NXDOMAIN") && out.contains("AUTHORITY: 1"),
        "{out}"
    );
    let out = dig(udp, &["example.com", "CERT"]).await;
    assert!(out.contains("status: REFUSED"), "{out}");

    let out = dig(udp, &[ZONE, "AXFR"]).await;
    let soas = out.lines().filter(|l| l.contains("\tSOA\t")).count();
    assert_eq!(soas, 2, "SOA first and last: {out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with(&format!("{name}.")) && l.contains("IN\tCERT\tPKIX 0 0 ")),
        "{out}"
    );
    node.stop().await;
}

/// A free loopback port (for a server we start; a race with other
/// processes is possible but unlikely).
fn free_port() -> u16 {
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = udp.local_addr().unwrap().port();
    drop(udp);
    port
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const TSIG_NAME: &str = "transfer-key";
const TSIG_SECRET: &str = "k9ozWnsKRd7Lc+0fRcpGCbX3Y6aAbIUl6CPxeTuz7Bw=";

/// Starts NSD in `dir` on `port` as a secondary of `primary` for ZONE,
/// transferring with the TSIG key.
fn start_nsd(dir: &Path, port: u16, primary: SocketAddr) -> Killed {
    let conf = format!(
        r#"server:
    ip-address: 127.0.0.1@{port}
    port: {port}
    username: ""
    zonesdir: "{d}"
    database: ""
    pidfile: "{d}/nsd.pid"
    xfrdfile: "{d}/xfrd.state"
    zonelistfile: "{d}/zone.list"
    xfrdir: "{d}"
    logfile: "{d}/nsd.log"
    verbosity: 2
    server-count: 1
remote-control:
    control-enable: no
key:
    name: {TSIG_NAME}
    algorithm: hmac-sha256
    secret: "{TSIG_SECRET}"
zone:
    name: {ZONE}
    zonefile: "{d}/{ZONE}.zone"
    request-xfr: AXFR {ip}@{pport} {TSIG_NAME}
    allow-notify: 127.0.0.1 NOKEY
"#,
        d = dir.display(),
        ip = primary.ip(),
        pport = primary.port(),
    );
    let path = dir.join("nsd.conf");
    std::fs::write(&path, conf).unwrap();
    let check = Command::new("nsd-checkconf").arg(&path).output().unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    Killed(
        Command::new("nsd")
            .args(["-d", "-c"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nsd starts"),
    )
}

async fn wait_for(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "never: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nsd_secondary_transfers_and_answers_the_same() {
    if !wanted("CCDIR_TEST_SECONDARY", "nsd") || !wanted("CCDIR_TEST_SECONDARY", "dig") {
        return;
    }
    let nsd_port = free_port();
    let node = dns_node(|c| {
        c.dns.zones[0].also_notify = vec![SocketAddr::from(([127, 0, 0, 1], nsd_port))];
        c.dns.tsig = Some(ccdir::config::TsigConfig {
            name: TSIG_NAME.into(),
            secret: TSIG_SECRET.into(),
        });
    })
    .await;
    let pki = TestPki::new("Secondary");
    setup(&node, &pki).await;
    let alice = rsa_leaf(&pki, &format!("alice@{ZONE}"));
    put_entry(
        &node,
        &pki,
        &format!("alice@{ZONE}"),
        std::slice::from_ref(&alice),
        json!({}),
    )
    .await;
    crate::dns::published(&node).await;

    // The exported zone file is one NSD accepts.
    let dir = tempfile::tempdir().unwrap();
    let mut text = Vec::new();
    let config = ccdir::config::DnsConfig {
        zones: vec![crate::dns::zone_config()],
        ..Default::default()
    };
    ccdir::dns::export_zone(node.directory(), &config, ZONE, &mut text)
        .await
        .unwrap();
    let file = dir.path().join("export.zone");
    std::fs::write(&file, &text).unwrap();
    let check = Command::new("nsd-checkzone")
        .arg(ZONE)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "nsd-checkzone: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    // Transfers need the key: unsigned or wrongly signed, NOTAUTH; signed,
    // dig checks the signature of every message of the answer.
    let primary = dns_addr(&node);
    let out = dig(primary, &[ZONE, "AXFR"]).await;
    assert!(
        out.contains("Transfer failed") || out.contains("NOTAUTH"),
        "{out}"
    );
    let wrong = format!("hmac-sha256:{TSIG_NAME}:c2VjcmV0");
    let out = dig(primary, &["-y", &wrong, ZONE, "AXFR"]).await;
    assert!(!out.contains("\tCERT\t"), "{out}");
    let key = format!("hmac-sha256:{TSIG_NAME}:{TSIG_SECRET}");
    let out = dig(primary, &["-y", &key, ZONE, "AXFR"]).await;
    assert!(
        out.contains("\tCERT\t") && out.contains("XFR size"),
        "{out}"
    );
    assert!(
        !out.to_lowercase().contains("tsig verify failure") && !out.contains("failed"),
        "{out}"
    );

    let _nsd = start_nsd(dir.path(), nsd_port, dns_tcp_addr(&node));
    let secondary = SocketAddr::from(([127, 0, 0, 1], nsd_port));
    let name = format!("alice.{ZONE}");
    let log = dir.path().join("nsd.log");
    wait_for(
        "NSD transfers the zone and answers",
        Duration::from_secs(30),
        async || {
            short_certs(&dig(secondary, &[&name, "CERT", "+tcp", "+short"]).await)
                == vec![alice.clone()]
        },
    )
    .await;
    let ours = dig(dns_addr(&node), &[ZONE, "SOA", "+short"]).await;
    let theirs = dig(secondary, &[ZONE, "SOA", "+short"]).await;
    assert_eq!(ours, theirs, "the same serial");

    // A change through REST reaches the secondary through NOTIFY + AXFR.
    let bob = pki.valid_leaf(&format!("bob@{ZONE}"));
    put_entry(
        &node,
        &pki,
        &format!("bob@{ZONE}"),
        std::slice::from_ref(&bob),
        json!({}),
    )
    .await;
    wait_for(
        "NOTIFY brings the change to NSD",
        Duration::from_secs(30),
        async || {
            short_certs(
                &dig(
                    secondary,
                    &[&format!("bob.{ZONE}"), "CERT", "+tcp", "+short"],
                )
                .await,
            ) == vec![bob.clone()]
        },
    )
    .await;
    let nsd_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        nsd_log.contains("notify"),
        "NSD logged the NOTIFY: {nsd_log}"
    );
    node.stop().await;
}
