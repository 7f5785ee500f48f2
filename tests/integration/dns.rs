//! The DNS front end against a real node on loopback port 0, asked by
//! clients we did not write: `hickory-resolver` for lookups, and
//! hickory-proto messages over raw UDP/TCP sockets where the exact flags,
//! rcode and sections matter (TC, NODATA vs NXDOMAIN, REFUSED, AXFR).
//! `dig` and a real secondary (NSD) run when `CCDIR_TEST_DIG=1` /
//! `CCDIR_TEST_SECONDARY=1` (see `dns_tools.rs`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine;
use ccdir::config::{Config, HostConfig, ZoneConfig};
use ccdir::domain::pem_certificate;
use ccdir::pki::ca::{KeyPair, KeyType, LeafKey, LeafSpec};
use chrono::Utc;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_resolver::proto::rr::{DNSClass, Name, RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::support::{TestNode, TestPki};

pub const ORG: &str = "cardio";
pub const ZONE: &str = "cardio.example.org";

/// The zone configuration the tests use: transfers allowed from loopback.
pub fn zone_config() -> ZoneConfig {
    ZoneConfig {
        name: ZONE.into(),
        ns: vec!["ns1".into()],
        hosts: vec![
            HostConfig {
                name: "ns1".into(),
                a: vec!["127.0.0.1".parse().unwrap()],
                aaaa: vec![],
            },
            HostConfig {
                name: "ldap".into(),
                a: vec!["127.0.0.1".parse().unwrap()],
                aaaa: vec!["::1".parse().unwrap()],
            },
        ],
        allow_transfer: vec!["127.0.0.1".into()],
        ..ZoneConfig::default()
    }
}

/// A node hosting [`ZONE`], with `tweak` applied to its configuration.
pub async fn dns_node(tweak: impl FnOnce(&mut Config)) -> TestNode {
    TestNode::start_with(|c| {
        c.dns.zones = vec![zone_config()];
        c.dns.rrl_responses_per_second = 0;
        tweak(c);
    })
    .await
}

pub fn dns_addr(node: &TestNode) -> SocketAddr {
    node.node.as_ref().unwrap().dns_addrs().expect("dns runs").0
}

pub fn dns_tcp_addr(node: &TestNode) -> SocketAddr {
    node.node.as_ref().unwrap().dns_addrs().expect("dns runs").1
}

/// The organisation owning [`ZONE`], and `pki`'s root as a trust anchor.
pub async fn setup(node: &TestNode, pki: &TestPki) {
    let res = node
        .http
        .post(node.url("/api/v1/organisations"))
        .bearer_auth(node.admin())
        .json(&json!({"id": ORG, "name": "Cardiology", "domains": [ZONE]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = node
        .http
        .post(node.url("/api/v1/anchors"))
        .bearer_auth(node.admin())
        .header("content-type", "application/x-pem-file")
        .body(pki.root_pem())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
}

/// PUTs an entry at `address` (a mailbox or the domain) with `certs` (DER).
pub async fn put_entry(
    node: &TestNode,
    pki: &TestPki,
    address: &str,
    certs: &[Vec<u8>],
    extra: serde_json::Value,
) {
    let mut pems: Vec<String> = certs.iter().map(|c| pem_certificate(c)).collect();
    pems.push(pem_certificate(&pki.issuing_der()));
    let mut body = json!({"display_name": address, "organisation": ORG, "certificates": pems});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let res = node
        .http
        .put(node.url(&format!("/api/v1/entries/{address}")))
        .bearer_auth(node.admin())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
}

/// An RSA-2048 leaf for `email` (a CERT answer well over 512 octets).
pub fn rsa_leaf(pki: &TestPki, email: &str) -> Vec<u8> {
    let key = KeyPair::generate(KeyType::Rsa2048, &mut rand::rng())
        .unwrap()
        .public_key()
        .unwrap();
    let now = Utc::now();
    let spec = LeafSpec {
        subject_cn: email.into(),
        email: Some(email.into()),
        dns: None,
        not_before: now - chrono::Duration::days(1),
        not_after: now + chrono::Duration::days(365),
        policies: vec![],
        key: LeafKey::Existing(key),
    };
    pki.issuing
        .issue_leaf(&spec, &mut rand::rng())
        .unwrap()
        .cert_der
}

pub fn resolver(addr: SocketAddr, tcp_only: bool) -> TokioResolver {
    let mut ns = if tcp_only {
        NameServerConfig::tcp(addr.ip())
    } else {
        NameServerConfig::udp_and_tcp(addr.ip())
    };
    for c in &mut ns.connections {
        c.port = addr.port();
    }
    let mut builder = Resolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![ns]),
        TokioRuntimeProvider::default(),
    );
    builder.options_mut().cache_size = 0;
    builder.options_mut().recursion_desired = false;
    builder.options_mut().timeout = Duration::from_secs(5);
    builder.build().unwrap()
}

/// The CERT payloads at `name`, as the resolver sees them.
async fn cert_ders(r: &TokioResolver, name: &str) -> Vec<Vec<u8>> {
    let lookup = r
        .lookup(format!("{name}."), RecordType::CERT)
        .await
        .unwrap();
    let mut out: Vec<Vec<u8>> = lookup
        .answers()
        .iter()
        .filter_map(|rec| match &rec.data {
            RData::CERT(cert) => {
                assert_eq!(u16::from(cert.cert_type), 1, "PKIX");
                assert_eq!(cert.key_tag, 0);
                assert_eq!(u8::from(cert.algorithm), 0);
                Some(cert.cert_data.clone())
            }
            _ => None,
        })
        .collect();
    out.sort();
    out
}

/// The organisation owning [`ZONE`] and `pki`'s anchor at a real `ccdir`
/// process, then an entry with a certificate for each of `people`.
async fn fill_process(
    client: &reqwest::Client,
    node: &crate::federation::node::Node,
    pki: &TestPki,
    people: &[&str],
) {
    let token = node.token();
    for (path, body, kind) in [
        (
            "organisations",
            json!({"id": ORG, "name": "Cardiology", "domains": [ZONE]}).to_string(),
            "application/json",
        ),
        ("anchors", pki.root_pem(), "application/x-pem-file"),
    ] {
        let res = client
            .post(format!("{}/api/v1/{path}", node.url))
            .bearer_auth(&token)
            .header("content-type", kind)
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(
            res.status().is_success() || res.status() == StatusCode::CONFLICT,
            "{}",
            res.text().await.unwrap()
        );
    }
    for address in people {
        let pems = [
            pem_certificate(&pki.valid_leaf(address)),
            pem_certificate(&pki.issuing_der()),
        ];
        let body = json!({"display_name": address, "organisation": ORG, "certificates": pems});
        crate::federation::node::put_entry(client, node, &token, address, body).await;
    }
}

/// Whether `name` has CERT records at a node's DNS, asked until `want` or
/// for 10 s.
async fn serves(node: &crate::federation::node::Node, name: &str, want: bool) -> bool {
    let r = resolver(node.dns.expect("DNS runs"), false);
    let started = Instant::now();
    loop {
        let has = match r.lookup(format!("{name}."), RecordType::CERT).await {
            Ok(l) => l.answers().iter().any(|a| matches!(a.data, RData::CERT(_))),
            Err(_) => false,
        };
        if has == want || started.elapsed() > Duration::from_secs(10) {
            return has;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Where the view of a node's last start came from ("the database", "the
/// saved view ..."), from its log.
fn view_origin(node: &crate::federation::node::Node) -> String {
    node.log_text()
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == "publication view loaded")
        .and_then(|v| v["from"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A real `ccdir serve` process saves its publication view when stopped
/// (SIGTERM), and the next start loads it, caught up with what was
/// written after it was saved (a SIGKILL loses the save at stop, not the
/// writes); a damaged file, or one saved by another node, is refused with a
/// warning and the node scans its database instead. Each start serves the
/// same answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_saved_view_is_loaded_at_start_and_refused_when_it_does_not_fit() {
    saved_view_scenario(None).await;
}

/// The same on PostgreSQL (the change log and its counter are the
/// database's own there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_saved_view_works_on_postgres() {
    let Some(db) = crate::support::PgDatabase::create("saved_view").await else {
        return;
    };
    saved_view_scenario(Some(db.url.clone())).await;
    db.drop_now().await;
}

/// The change a start's view was loaded at, from "the saved view (at change N)".
fn saved_change(origin: &str) -> u64 {
    origin
        .strip_prefix("the saved view (at change ")
        .and_then(|rest| rest.strip_suffix(')'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not loaded from a saved view: {origin:?}"))
}

/// A serving node saves its view again as changes accumulate
/// (`dns.save_view_after_changes`, here every change), not only at stop: a
/// node killed after a write loads a file that already holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_view_saves_itself_as_changes_accumulate() {
    use crate::federation::node::{Node, http, wait_for};
    let pki = TestPki::new("Periodic Save CA");
    let client = http();
    let mut node = Node::init("periodic-save");
    node.configure("[dns]\nsave_view_after_changes = 1\nsave_view_interval_seconds = 0\n");
    let file = ccdir::dns::saved_view_path(node.data_dir());
    node.start();
    fill_process(&client, &node, &pki, &[&format!("alice@{ZONE}")]).await;
    node.stop();
    node.start();
    let before = saved_change(&view_origin(&node));
    let saved = std::fs::read(&file).unwrap();
    fill_process(&client, &node, &pki, &[&format!("bob@{ZONE}")]).await;
    let bob = format!("bob.{ZONE}");
    assert!(serves(&node, &bob, true).await);
    wait_for("the view saved again", Duration::from_secs(10), || {
        let (file, saved) = (&file, &saved);
        async move { std::fs::read(file).is_ok_and(|now| now != *saved) }
    })
    .await;
    node.kill();
    node.start();
    let after = saved_change(&view_origin(&node));
    assert!(after > before, "saved at {after}, before bob at {before}");
    assert!(serves(&node, &bob, true).await);
    node.stop();
}

async fn saved_view_scenario(database_url: Option<String>) {
    use crate::federation::node::{Node, http, wait_for};
    let pki = TestPki::new("Saved View CA");
    let client = http();
    let names = |who: &str| (format!("{who}@{ZONE}"), format!("{who}.{ZONE}"));
    let ((alice, alice_at), (bob, bob_at), (carol, carol_at)) =
        (names("alice"), names("bob"), names("carol"));
    let mut node = Node::init_on("saved-view", database_url);
    let file = ccdir::dns::saved_view_path(node.data_dir());
    node.start();
    assert_eq!(view_origin(&node), "the database");
    fill_process(&client, &node, &pki, &[&alice]).await;
    assert!(serves(&node, &alice_at, true).await);

    // SIGTERM saves the view; the next start loads it.
    node.stop();
    let saved = std::fs::read(&file).expect("saved at stop");
    node.start();
    assert!(
        view_origin(&node).starts_with("the saved view"),
        "{}",
        node.log_text()
    );
    assert!(serves(&node, &alice_at, true).await);
    assert!(!serves(&node, &bob_at, false).await);

    // Bob is added, then the node is killed: the file is the older one,
    // and the next start catches up from the database.
    fill_process(&client, &node, &pki, &[&bob]).await;
    assert!(serves(&node, &bob_at, true).await);
    node.kill();
    assert_eq!(
        std::fs::read(&file).unwrap(),
        saved,
        "nothing saved on SIGKILL"
    );
    node.start();
    assert!(view_origin(&node).starts_with("the saved view"));
    assert!(serves(&node, &alice_at, true).await);
    assert!(serves(&node, &bob_at, true).await, "caught up with bob");
    node.stop();

    // A damaged file: refused with the reason, the database scanned.
    let mut damaged = std::fs::read(&file).unwrap();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 1;
    std::fs::write(&file, &damaged).unwrap();
    node.start();
    assert_eq!(view_origin(&node), "the database");
    assert!(
        node.log_text().contains("checksum does not match"),
        "{}",
        node.log_text()
    );
    assert!(serves(&node, &alice_at, true).await);
    assert!(serves(&node, &bob_at, true).await);
    // A start that scanned saves the view right away: killed then, the
    // next start still loads it.
    wait_for(
        "the view saved after the scan",
        Duration::from_secs(10),
        || {
            let (file, damaged) = (&file, &damaged);
            async move { std::fs::read(file).is_ok_and(|now| now != *damaged) }
        },
    )
    .await;
    node.kill();
    node.start();
    assert!(view_origin(&node).starts_with("the saved view"));
    assert!(serves(&node, &bob_at, true).await);
    node.stop();

    // Another node's saved view in this node's data directory.
    let mut other = Node::init("other-view");
    other.start();
    fill_process(&client, &other, &pki, &[&carol]).await;
    assert!(serves(&other, &carol_at, true).await);
    other.stop();
    std::fs::copy(ccdir::dns::saved_view_path(other.data_dir()), &file).unwrap();
    node.start();
    assert_eq!(view_origin(&node), "the database", "{}", node.log_text());
    assert!(
        node.log_text()
            .contains("is not the one the view was saved at")
    );
    assert!(serves(&node, &alice_at, true).await);
    assert!(serves(&node, &bob_at, true).await);
    assert!(!serves(&node, &carol_at, false).await);
    node.stop();
}

/// A query message as a client would send it.
pub fn query(name: &str, rtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut m = Message::new(rand::random(), MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

/// Sends `msg` over UDP and reads the answer (None on timeout).
pub async fn udp_exchange(addr: SocketAddr, msg: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(msg, addr).await.unwrap();
    let mut buf = vec![0u8; 65_535];
    let n = tokio::time::timeout(Duration::from_secs(3), socket.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    buf.truncate(n);
    Some(buf)
}

pub async fn udp(addr: SocketAddr, msg: &[u8]) -> Message {
    Message::from_vec(&udp_exchange(addr, msg).await.expect("an answer")).unwrap()
}

/// Sends `msg` over a new TCP connection; returns every message until the
/// server stops writing (several for AXFR).
pub async fn tcp(addr: SocketAddr, msg: &[u8], messages: usize) -> Vec<Message> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&(msg.len() as u16).to_be_bytes())
        .await
        .unwrap();
    s.write_all(msg).await.unwrap();
    let mut out = Vec::new();
    for _ in 0..messages {
        let Ok(Ok(len)) = tokio::time::timeout(Duration::from_secs(5), s.read_u16()).await else {
            break;
        };
        let mut buf = vec![0u8; usize::from(len)];
        s.read_exact(&mut buf).await.unwrap();
        out.push(Message::from_vec(&buf).unwrap());
    }
    out
}

/// Polls `check` until it holds (5 s at most).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < Duration::from_secs(5), "never: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until the node's DNS view has applied every write so far.
pub async fn published(node: &TestNode) {
    let head = node.directory().readiness().await.unwrap().head;
    let dns = node.node.as_ref().unwrap().dns.as_ref().unwrap();
    let publication = dns.handler().publication().clone();
    eventually("the publication view catches up", || {
        let p = publication.clone();
        async move { p.applied() >= head }
    })
    .await;
    // An anchor change re-judges certificates in the background.
    let _ = publication.sync().await;
}

/// A view built afresh from the database (the start-up scan of published
/// columns) holds exactly what the running view built from the changes does.
async fn fresh_view_matches_live(node: &TestNode) {
    published(node).await;
    let dns = node.node.as_ref().unwrap().dns.as_ref().unwrap();
    let apex = ccdir::core::NameKey::parse_dotted(ZONE).unwrap();
    let live = dns.handler().publication();
    let (_, listed) = live.names_within(apex.as_bytes());
    let live = live.resolve_all(listed).await.unwrap();
    let fresh = ccdir::core::Publication::load(node.directory(), 0)
        .await
        .unwrap();
    let (_, listed) = fresh.names_within(apex.as_bytes());
    let loaded = fresh.resolve_all(listed).await.unwrap();
    assert!(!live.is_empty());
    assert_eq!(loaded, live);
}

fn serial_of(m: &Message) -> u32 {
    m.answers
        .iter()
        .chain(m.authorities.iter())
        .find_map(|r| match &r.data {
            RData::SOA(soa) => Some(soa.serial),
            _ => None,
        })
        .expect("an SOA")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cert_records_for_address_and_domain_bound_certificates() {
    let node = dns_node(|c| c.dns.edns_udp_size = 4096).await;
    let pki = TestPki::new("DnsCert");
    setup(&node, &pki).await;
    let alice = pki.valid_leaf(&format!("alice@{ZONE}"));
    put_entry(
        &node,
        &pki,
        &format!("alice@{ZONE}"),
        std::slice::from_ref(&alice),
        json!({}),
    )
    .await;
    let now = Utc::now();
    let domain_cert = pki.leaf(
        None,
        Some(ZONE),
        now - chrono::Duration::days(1),
        now + chrono::Duration::days(30),
    );
    put_entry(
        &node,
        &pki,
        ZONE,
        std::slice::from_ref(&domain_cert),
        json!({}),
    )
    .await;
    // A dotted local part: published at the Direct name and the RFC 1035 one.
    let john = rsa_leaf(&pki, &format!("john.doe@{ZONE}"));
    assert!(john.len() > 700, "an RSA-2048 certificate: {}", john.len());
    put_entry(
        &node,
        &pki,
        &format!("john.doe@{ZONE}"),
        std::slice::from_ref(&john),
        json!({}),
    )
    .await;
    published(&node).await;
    let addr = dns_addr(&node);

    for tcp_only in [false, true] {
        let r = resolver(addr, tcp_only);
        assert_eq!(
            cert_ders(&r, &format!("alice.{ZONE}")).await,
            vec![alice.clone()]
        );
        assert_eq!(
            cert_ders(&r, &format!("ALICE.{ZONE}")).await,
            vec![alice.clone()],
            "case-insensitive"
        );
        assert_eq!(cert_ders(&r, ZONE).await, vec![domain_cert.clone()]);
        assert_eq!(
            cert_ders(&r, &format!("john.doe.{ZONE}")).await,
            vec![john.clone()]
        );
    }
    // The RFC 1035 single-label form of john.doe@ (raw message: a label with a dot).
    let mut m = Message::new(1, MessageType::Query, OpCode::Query);
    let single = Name::from_labels(vec![&b"john.doe"[..], b"cardio", b"example", b"org"]).unwrap();
    m.add_query(Query::query(single, RecordType::CERT));
    let res = &tcp(dns_tcp_addr(&node), &m.to_vec().unwrap(), 1).await[0];
    assert_eq!(res.answers.len(), 1);

    // Over 512 octets: whole over UDP with a large EDNS size, whole over TCP,
    // truncated over UDP with a small one (or none).
    let name = format!("john.doe.{ZONE}.");
    let big = udp(addr, &query(&name, RecordType::CERT, Some(4096))).await;
    assert!(!big.metadata.truncation && big.answers.len() == 1);
    assert!(big.metadata.authoritative);
    assert_eq!(
        big.edns.as_ref().map(|e| e.max_payload()),
        Some(4096),
        "EDNS echoed"
    );
    let over_tcp = &tcp(
        dns_tcp_addr(&node),
        &query(&name, RecordType::CERT, None),
        1,
    )
    .await[0];
    assert_eq!(over_tcp.answers.len(), 1);
    for edns in [Some(512), None] {
        let bytes = udp_exchange(addr, &query(&name, RecordType::CERT, edns))
            .await
            .unwrap();
        assert!(bytes.len() <= 512, "never above the requester's size");
        let small = Message::from_vec(&bytes).unwrap();
        assert!(small.metadata.truncation, "TC set");
        assert!(small.answers.is_empty(), "no partial RRset");
        assert_eq!(small.edns.is_some(), edns.is_some());
    }
    fresh_view_matches_live(&node).await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_published_certificates_are_served() {
    let node = dns_node(|_| {}).await;
    let pki = TestPki::new("DnsPublish");
    let stranger = TestPki::new("Stranger");
    setup(&node, &pki).await;
    let now = Utc::now();
    // Internal entry with a valid certificate.
    let inside = format!("night.nurse@{ZONE}");
    put_entry(
        &node,
        &pki,
        &inside,
        &[pki.valid_leaf(&inside)],
        json!({"visibility": "internal"}),
    )
    .await;
    // Expired, not yet valid, and untrusted (unknown CA) certificates.
    let expired = format!("old@{ZONE}");
    put_entry(
        &node,
        &pki,
        &expired,
        &[pki.leaf(
            Some(&expired),
            None,
            now - chrono::Duration::days(400),
            now - chrono::Duration::days(1),
        )],
        json!({}),
    )
    .await;
    let future = format!("future@{ZONE}");
    put_entry(
        &node,
        &pki,
        &future,
        &[pki.leaf(
            Some(&future),
            None,
            now + chrono::Duration::days(10),
            now + chrono::Duration::days(400),
        )],
        json!({}),
    )
    .await;
    let untrusted = format!("stranger@{ZONE}");
    put_entry(
        &node,
        &pki,
        &untrusted,
        &[stranger.valid_leaf(&untrusted)],
        json!({}),
    )
    .await;
    // One good and one expired on the same entry: only the good one.
    let mixed = format!("mixed@{ZONE}");
    let good = pki.valid_leaf(&mixed);
    put_entry(
        &node,
        &pki,
        &mixed,
        &[
            good.clone(),
            pki.leaf(
                Some(&mixed),
                None,
                now - chrono::Duration::days(400),
                now - chrono::Duration::days(2),
            ),
        ],
        json!({}),
    )
    .await;
    published(&node).await;
    let tcp_addr = dns_tcp_addr(&node);
    for address in [&inside, &expired, &future, &untrusted] {
        let name = format!("{}.", address.replace('@', "."));
        let res = &tcp(tcp_addr, &query(&name, RecordType::CERT, None), 1).await[0];
        assert_eq!(
            res.metadata.response_code,
            ResponseCode::NXDomain,
            "{address} is not published"
        );
        assert!(res.answers.is_empty());
    }
    let res = &tcp(
        tcp_addr,
        &query(&format!("mixed.{ZONE}."), RecordType::CERT, None),
        1,
    )
    .await[0];
    assert_eq!(res.answers.len(), 1);
    assert!(matches!(&res.answers[0].data, RData::CERT(c) if c.cert_data == good));
    fresh_view_matches_live(&node).await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srv_soa_ns_and_negative_answers() {
    let node = dns_node(|_| {}).await;
    let pki = TestPki::new("DnsNeg");
    setup(&node, &pki).await;
    let bob = format!("bob.smith@{ZONE}");
    put_entry(&node, &pki, &bob, &[pki.valid_leaf(&bob)], json!({})).await;
    published(&node).await;
    let addr = dns_addr(&node);

    let r = resolver(addr, false);
    let srv = r
        .lookup(format!("_ldap._tcp.{ZONE}."), RecordType::SRV)
        .await
        .unwrap();
    let RData::SRV(srv) = &srv.answers()[0].data else {
        panic!("SRV")
    };
    // The SRV records name the LDAP listeners this node actually bound.
    let running = node.node.as_ref().unwrap();
    assert_eq!(srv.port, running.ldap_addr.expect("ldap runs").port());
    assert_eq!(srv.target.to_ascii(), format!("ldap.{ZONE}."));
    // LDAPS runs only with a TLS certificate; without one no _ldaps SRV is published.
    let ldaps = r
        .lookup(format!("_ldaps._tcp.{ZONE}."), RecordType::SRV)
        .await;
    match running.ldaps_addr {
        Some(a) => assert!(
            matches!(&ldaps.unwrap().answers()[0].data, RData::SRV(s) if s.port == a.port())
        ),
        None => assert!(
            ldaps.is_err(),
            "no LDAPS listener, no _ldaps SRV: {ldaps:?}"
        ),
    }
    let aaaa = r
        .lookup(format!("ldap.{ZONE}."), RecordType::AAAA)
        .await
        .unwrap();
    assert_eq!(aaaa.answers().len(), 1);
    let ns = r.lookup(format!("{ZONE}."), RecordType::NS).await.unwrap();
    assert!(
        matches!(&ns.answers()[0].data, RData::NS(n) if n.0.to_ascii() == format!("ns1.{ZONE}."))
    );

    let ask =
        |name: String, rtype| async move { udp(addr, &query(&name, rtype, Some(1232))).await };
    // NODATA: the name exists (a CERT owner, a host, an empty non-terminal), not the type.
    for (name, rtype) in [
        (format!("bob.smith.{ZONE}."), RecordType::A),
        (format!("smith.{ZONE}."), RecordType::CERT),
        (format!("_tcp.{ZONE}."), RecordType::SRV),
        (format!("ldap.{ZONE}."), RecordType::CERT),
        (format!("{ZONE}."), RecordType::A),
    ] {
        let m = ask(name.clone(), rtype).await;
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::NoError,
            "{name} {rtype}"
        );
        assert!(m.answers.is_empty() && m.metadata.authoritative);
        assert_eq!(m.authorities.len(), 1, "SOA in authority for {name}");
        assert_eq!(
            m.authorities[0].name.to_ascii().to_lowercase(),
            format!("{ZONE}.")
        );
    }
    // NXDOMAIN: nothing at or below the name.
    for name in [format!("nobody.{ZONE}."), format!("x.bob.smith.{ZONE}.")] {
        let m = ask(name.clone(), RecordType::CERT).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{name}");
        assert!(matches!(&m.authorities[0].data, RData::SOA(_)));
    }
    // REFUSED: not a zone we host; other classes too.
    let m = ask("example.com.".into(), RecordType::CERT).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(!m.metadata.authoritative);
    let mut chaos = Message::new(9, MessageType::Query, OpCode::Query);
    let mut q = Query::query(
        Name::from_ascii(format!("{ZONE}.")).unwrap(),
        RecordType::SOA,
    );
    q.set_query_class(DNSClass::CH);
    chaos.add_query(q);
    assert_eq!(
        udp(addr, &chaos.to_vec().unwrap())
            .await
            .metadata
            .response_code,
        ResponseCode::Refused
    );
    // The resolver reads NXDOMAIN and NODATA alike as "no records", and tells them apart.
    let e = r
        .lookup(format!("nobody.{ZONE}."), RecordType::CERT)
        .await
        .unwrap_err();
    assert!(e.is_nx_domain(), "{e}");
    let e = r
        .lookup(format!("bob.smith.{ZONE}."), RecordType::A)
        .await
        .unwrap_err();
    assert!(e.is_no_records_found() && !e.is_nx_domain(), "{e}");
    // ANY returns what exists.
    let any = ask(format!("{ZONE}."), RecordType::ANY).await;
    let types: Vec<RecordType> = any.answers.iter().map(|r| r.record_type()).collect();
    assert!(
        types.contains(&RecordType::SOA) && types.contains(&RecordType::NS),
        "{types:?}"
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_changes_show_within_a_second_and_move_the_serial() {
    let node = dns_node(|_| {}).await;
    let pki = TestPki::new("DnsSerial");
    setup(&node, &pki).await;
    published(&node).await;
    let addr = dns_addr(&node);
    let soa = || async move {
        serial_of(&udp(addr, &query(&format!("{ZONE}."), RecordType::SOA, None)).await)
    };
    let before = soa().await;
    let carol = format!("carol@{ZONE}");
    let cert = pki.valid_leaf(&carol);
    let started = Instant::now();
    put_entry(&node, &pki, &carol, std::slice::from_ref(&cert), json!({})).await;
    let name = format!("carol.{ZONE}.");
    loop {
        let m = udp(addr, &query(&name, RecordType::CERT, Some(1232))).await;
        if m.answers.len() == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "visible within a second"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eventually(
        "the serial moves on",
        || async move { soa().await != before },
    )
    .await;
    let after = soa().await;
    assert!(
        after.wrapping_sub(before) < (1 << 31) && after != before,
        "{before} -> {after}"
    );

    // Deleting the entry takes the record away again.
    let res = node
        .http
        .delete(node.url(&format!("/api/v1/entries/{carol}")))
        .bearer_auth(node.admin())
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    eventually("the record goes", || {
        let name = name.clone();
        async move {
            udp(addr, &query(&name, RecordType::CERT, None))
                .await
                .metadata
                .response_code
                == ResponseCode::NXDomain
        }
    })
    .await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axfr_to_allowed_sources_only() {
    let node = dns_node(|_| {}).await;
    let pki = TestPki::new("DnsAxfr");
    setup(&node, &pki).await;
    let mut certs = Vec::new();
    for i in 0..40 {
        let address = format!("doc{i}@{ZONE}");
        let cert = pki.valid_leaf(&address);
        put_entry(
            &node,
            &pki,
            &address,
            std::slice::from_ref(&cert),
            json!({}),
        )
        .await;
        certs.push(cert);
    }
    published(&node).await;
    let tcp_addr = dns_tcp_addr(&node);
    let messages = tcp(
        tcp_addr,
        &query(&format!("{ZONE}."), RecordType::AXFR, None),
        100,
    )
    .await;
    assert!(
        messages.len() > 1,
        "a zone over 16 KiB comes in several messages"
    );
    let records: Vec<_> = messages.iter().flat_map(|m| m.answers.iter()).collect();
    assert!(
        messages
            .iter()
            .all(|m| m.metadata.response_code == ResponseCode::NoError)
    );
    assert_eq!(messages[0].queries.len(), 1);
    assert_eq!(
        records.first().unwrap().record_type(),
        RecordType::SOA,
        "SOA first"
    );
    assert_eq!(
        records.last().unwrap().record_type(),
        RecordType::SOA,
        "SOA last"
    );
    assert_eq!(
        records
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .count(),
        2
    );
    let mut served: Vec<Vec<u8>> = records
        .iter()
        .filter_map(|r| match &r.data {
            RData::CERT(c) => Some(c.cert_data.clone()),
            _ => None,
        })
        .collect();
    served.sort();
    certs.sort();
    assert_eq!(served, certs);
    for t in [RecordType::NS, RecordType::SRV, RecordType::A] {
        assert!(
            records.iter().any(|r| r.record_type() == t),
            "{t} in the transfer"
        );
    }
    // Over UDP: no. A name that is not a zone apex: NOTAUTH.
    let m = udp(
        dns_addr(&node),
        &query(&format!("{ZONE}."), RecordType::AXFR, None),
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    let m = &tcp(
        tcp_addr,
        &query(&format!("doc1.{ZONE}."), RecordType::AXFR, None),
        1,
    )
    .await[0];
    assert_eq!(m.metadata.response_code, ResponseCode::NotAuth);
    node.stop().await;

    // A node that allows nobody refuses.
    let node = dns_node(|c| c.dns.zones[0].allow_transfer = vec!["192.0.2.1".into()]).await;
    let m = &tcp(
        dns_tcp_addr(&node),
        &query(&format!("{ZONE}."), RecordType::AXFR, None),
        5,
    )
    .await;
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].metadata.response_code, ResponseCode::Refused);
    assert!(m[0].answers.is_empty());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zones_from_organisations_and_rate_limiting() {
    // No zones configured: the organisations' domains are hosted.
    let node = TestNode::start_with(|c| {
        c.dns.rrl_responses_per_second = 5;
        c.dns.rrl_burst = 5;
    })
    .await;
    let pki = TestPki::new("DnsOrgs");
    setup(&node, &pki).await;
    let dave = format!("dave@{ZONE}");
    let cert = pki.valid_leaf(&dave);
    put_entry(&node, &pki, &dave, std::slice::from_ref(&cert), json!({})).await;
    published(&node).await;
    let addr = dns_addr(&node);
    let q = query(&format!("dave.{ZONE}."), RecordType::CERT, Some(1232));
    eventually("the zone appears", || {
        let q = q.clone();
        async move { udp(addr, &q).await.answers.len() == 1 }
    })
    .await;
    // Over the rate limit: truncated answers, and TCP still answers in full.
    let mut truncated = 0;
    for _ in 0..20 {
        let m = udp(addr, &q).await;
        if m.metadata.truncation {
            assert!(m.answers.is_empty());
            truncated += 1;
        }
    }
    assert!(truncated >= 10, "{truncated} of 20 truncated");
    let m = &tcp(dns_tcp_addr(&node), &q, 1).await[0];
    assert_eq!(m.answers.len(), 1);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_never_stops_the_server() {
    let node = dns_node(|_| {}).await;
    let addr = dns_addr(&node);
    let tcp_addr = dns_tcp_addr(&node);
    let good = query(&format!("{ZONE}."), RecordType::SOA, None);

    // Too short, or a response: no answer at all.
    assert!(udp_exchange(addr, b"\x12").await.is_none());
    let mut response = good.clone();
    response[2] |= 0x80;
    assert!(udp_exchange(addr, &response).await.is_none());
    // A compression loop in the question, a label past the end, garbage counts: FORMERR.
    let mut looped = good[..12].to_vec();
    looped.extend_from_slice(&[0xc0, 0x0c, 0, 6, 0, 1]);
    let mut past_end = good[..12].to_vec();
    past_end.extend_from_slice(&[0x3f, b'a']);
    let mut counts = good.clone();
    counts[10] = 0xff; // 65k additional records claimed
    for bad in [&looped, &past_end, &counts] {
        let res = udp_exchange(addr, bad).await.expect("an answer");
        assert_eq!(res[3] & 0x0f, 1, "FORMERR");
        assert_eq!(&res[0..2], &bad[0..2], "same id");
    }
    // Other opcodes: NOTIMP.
    for opcode in [OpCode::Status, OpCode::Notify, OpCode::Update] {
        let mut m = Message::new(3, MessageType::Query, opcode);
        m.add_query(Query::query(
            Name::from_ascii(format!("{ZONE}.")).unwrap(),
            RecordType::SOA,
        ));
        assert_eq!(
            udp(addr, &m.to_vec().unwrap()).await.metadata.response_code,
            ResponseCode::NotImp,
            "{opcode:?}"
        );
    }
    // An EDNS version we do not speak: BADVERS.
    let mut m = Message::new(4, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(
        Name::from_ascii(format!("{ZONE}.")).unwrap(),
        RecordType::SOA,
    ));
    let mut e = Edns::new();
    e.set_version(1);
    m.set_edns(e);
    let res = udp(addr, &m.to_vec().unwrap()).await;
    // 16 is BADVERS with an OPT record (hickory names the code BADSIG).
    assert_eq!(u16::from(res.metadata.response_code), 16);

    // TCP: a frame shorter than a header, a truncated frame, a frame that
    // claims more than is sent, garbage inside a frame.
    let mut s = TcpStream::connect(tcp_addr).await.unwrap();
    s.write_all(&[0, 3, 1, 2, 3]).await.unwrap();
    let mut buf = [0u8; 2];
    assert!(matches!(s.read(&mut buf).await, Ok(0) | Err(_)), "closed");
    let mut s = TcpStream::connect(tcp_addr).await.unwrap();
    s.write_all(&[0xff, 0xff, 1, 2, 3]).await.unwrap();
    drop(s);
    let mut s = TcpStream::connect(tcp_addr).await.unwrap();
    s.write_all(&[0]).await.unwrap();
    drop(s);
    let mut garbage = vec![0u8, 40];
    garbage.extend_from_slice(&[0x55; 40]);
    let mut s = TcpStream::connect(tcp_addr).await.unwrap();
    s.write_all(&garbage).await.unwrap();
    // 0x55 has no QR bit: a query whose counts do not add up, so FORMERR.
    let len = s.read_u16().await.unwrap();
    let mut res = vec![0u8; usize::from(len)];
    s.read_exact(&mut res).await.unwrap();
    assert_eq!(res[3] & 0x0f, 1, "FORMERR");
    // Pipelined queries on one connection are all answered, in order.
    let mut s = TcpStream::connect(tcp_addr).await.unwrap();
    let mut batch = Vec::new();
    for _ in 0..5 {
        batch.extend_from_slice(&(good.len() as u16).to_be_bytes());
        batch.extend_from_slice(&good);
    }
    s.write_all(&batch).await.unwrap();
    for _ in 0..5 {
        let len = s.read_u16().await.unwrap();
        let mut m = vec![0u8; usize::from(len)];
        s.read_exact(&mut m).await.unwrap();
        assert_eq!(Message::from_vec(&m).unwrap().answers.len(), 1);
    }

    // After all that, another client is answered.
    let m = udp(addr, &good).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.len(), 1);
    node.stop().await;
}

/// `ccdir export zone` writes the zone with escaped owner names and CERT
/// records in presentation form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_file_export_round_trips() {
    let node = dns_node(|_| {}).await;
    let pki = TestPki::new("DnsExport");
    setup(&node, &pki).await;
    let erin = format!("erin.o+k@{ZONE}");
    let cert = pki.valid_leaf(&erin);
    put_entry(&node, &pki, &erin, std::slice::from_ref(&cert), json!({})).await;
    published(&node).await;
    let config = Config {
        dns: ccdir::config::DnsConfig {
            zones: vec![zone_config()],
            ..Default::default()
        },
        ..Config::default()
    };
    let mut out = Vec::new();
    let n = ccdir::dns::export_zone(node.directory(), &config.dns, ZONE, &mut out)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(n >= 8, "{text}");
    let b64 = base64::engine::general_purpose::STANDARD.encode(&cert);
    let line = text
        .lines()
        .find(|l| l.contains(&b64))
        .expect("the CERT line");
    assert!(
        line.starts_with(&format!("erin.o\\043k.{ZONE}. 3600 IN CERT PKIX 0 0 ")),
        "{line}"
    );
    assert!(
        text.contains(&format!(
            "{ZONE}. 3600 IN SOA ns1.{ZONE}. hostmaster.{ZONE}. "
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "_ldap._tcp.{ZONE}. 3600 IN SRV 0 0 3389 ldap.{ZONE}."
        )),
        "{text}"
    );
    // NSD and Knot read it back in the CCDIR_TEST_SECONDARY run (dns_tools.rs).
    assert!(matches!(
        ccdir::dns::export_zone(
            node.directory(),
            &config.dns,
            "example.com",
            &mut Vec::new()
        )
        .await,
        Err(ccdir::dns::DnsError::NoSuchZone(_))
    ));
    node.stop().await;
}
