//! Fair-play policies on one real node: events signed by an owner (in this
//! process, and with the `ccdir policy` CLI), submitted over REST, checked
//! with evidence, followed by server-sent events (reqwest streaming) and
//! webhooks (a receiver here verifies the node's signature), looked up
//! over DNS with hickory-resolver (and `dig` when CCDIR_TEST_DIG=1); bad
//! events refused with their reason and nothing applied.

use std::collections::HashMap;
use std::net::IpAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use ccdir::domain::{PolicyKind, PolicyOp, base32_label};
use ccdir::federation::{Hash, Key};
use ccdir::pki::NodeKey;
use ccdir::policy::{PolicyEvent, SignedEvent, verify_delivery};

use crate::support::TestNode;

const BIN: &str = env!("CARGO_BIN_EXE_ccdir");

/// A policy's owner: the key and where the chain stands.
pub struct Owner {
    pub key: NodeKey,
    pub policy: String,
    pub version: u64,
    pub head: Hash,
}

impl Owner {
    pub fn new(policy: &str) -> Owner {
        Owner {
            key: NodeKey::generate(&mut rand::rng()),
            policy: policy.into(),
            version: 0,
            head: Hash::ZERO,
        }
    }

    /// Signs `op` as the next event, with `key` (normally the owner's).
    pub fn sign_with(&mut self, key: &NodeKey, op: PolicyOp) -> SignedEvent {
        let e = PolicyEvent {
            policy: self.policy.parse().unwrap(),
            owner: Key(key.public_key_bytes()),
            version: self.version + 1,
            prev: self.head,
            time: Utc::now(),
            op,
        }
        .sign(key)
        .unwrap();
        self.version += 1;
        self.head = e.hash();
        e
    }

    pub fn create(&mut self) -> SignedEvent {
        let key = NodeKey::from_pkcs8_pem(&self.key.to_pkcs8_pem().unwrap()).unwrap();
        self.sign_with(
            &key,
            PolicyOp::Create {
                kind: PolicyKind::DenyList,
                title: "Direct fair play".into(),
                description: "certificates and senders that broke the rules".into(),
            },
        )
    }

    pub fn list(&mut self, subject: &str, reason: &str) -> SignedEvent {
        let key = NodeKey::from_pkcs8_pem(&self.key.to_pkcs8_pem().unwrap()).unwrap();
        self.sign_with(
            &key,
            PolicyOp::List {
                subject: subject.parse().unwrap(),
                reason: reason.into(),
                expires: None,
            },
        )
    }

    pub fn delist(&mut self, subject: &str, reason: &str) -> SignedEvent {
        let key = NodeKey::from_pkcs8_pem(&self.key.to_pkcs8_pem().unwrap()).unwrap();
        self.sign_with(
            &key,
            PolicyOp::Delist {
                subject: subject.parse().unwrap(),
                reason: reason.into(),
            },
        )
    }
}

fn body(events: &[&SignedEvent]) -> Value {
    json!({"events": events.iter().map(|e| STANDARD.encode(e.bytes())).collect::<Vec<_>>()})
}

/// POSTs events; returns the status and the JSON answer.
pub async fn submit(http: &reqwest::Client, base: &str, events: &[&SignedEvent]) -> (u16, Value) {
    let res = http
        .post(format!("{base}/api/v1/policy-events"))
        .json(&body(events))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    let res = http.get(url).send().await.unwrap();
    assert!(res.status().is_success(), "{url}: {}", res.status());
    res.json().await.unwrap()
}

/// A server-sent event stream read with reqwest.
pub struct Sse {
    response: reqwest::Response,
    buffer: String,
}

impl Sse {
    pub async fn open(http: &reqwest::Client, url: &str, last_id: Option<&str>) -> Sse {
        let mut req = http.get(url).header("Accept", "text/event-stream");
        if let Some(id) = last_id {
            req = req.header("Last-Event-ID", id);
        }
        let response = req.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Sse {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (id, event name, data), skipping comments.
    pub async fn next(&mut self, limit: Duration) -> (Option<String>, String, Value) {
        let deadline = Instant::now() + limit;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let mut id = None;
                let mut name = String::from("message");
                let mut data = None;
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        name = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = Some(serde_json::from_str(v).unwrap());
                    }
                }
                if let Some(data) = data {
                    return (id, name, data);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = tokio::time::timeout(left, self.response.chunk())
                .await
                .expect("an event in time")
                .unwrap()
                .expect("the stream stays open");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

/// What a webhook receiver got: headers (lower-case names) and the body.
pub type Deliveries = Arc<Mutex<Vec<(HashMap<String, String>, Vec<u8>)>>>;

/// A webhook receiver on loopback answering `status` (after `delay`).
pub async fn receiver(status: u16, delay: Duration) -> (String, Deliveries) {
    receiver_with(move |_| (status, delay)).await
}

/// A webhook receiver whose answer to its `n`-th request (from 0) is
/// `answer(n)`: a status, after a delay.
pub async fn receiver_with(
    answer: impl Fn(usize) -> (u16, Duration) + Clone + Send + 'static,
) -> (String, Deliveries) {
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
    let got: Deliveries = Arc::new(Mutex::new(Vec::new()));
    let store = got.clone();
    let server = HttpServer::new(move || {
        let store = store.clone();
        let answer = answer.clone();
        App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
            let store = store.clone();
            let answer = answer.clone();
            async move {
                let headers = req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                    .collect();
                let n = {
                    let mut g = store.lock().unwrap();
                    g.push((headers, body.to_vec()));
                    g.len() - 1
                };
                let (status, delay) = answer(n);
                tokio::time::sleep(delay).await;
                HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
            }
        }))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    (format!("http://{addr}/hook"), got)
}

/// Checks a delivery's node signature; returns its JSON body.
pub fn verified(node_key: &[u8; 32], headers: &HashMap<String, String>, body: &[u8]) -> Value {
    let ts: i64 = headers["ccdir-timestamp"].parse().unwrap();
    assert!(
        verify_delivery(node_key, ts, body, &headers["ccdir-signature"]),
        "the delivery verifies under the node key"
    );
    assert!(!verify_delivery(
        node_key,
        ts + 1,
        body,
        &headers["ccdir-signature"]
    ));
    assert_eq!(headers["ccdir-node"], hex::encode(node_key));
    assert!(headers.contains_key("idempotency-key"));
    serde_json::from_slice(body).unwrap()
}

pub async fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn node() -> TestNode {
    TestNode::start_with(|c| {
        c.dns.policy_zone = "bl.ccdir.test".into();
        c.dns.rrl_responses_per_second = 0;
        c.policy.webhook_backoff_ms = 50;
        c.policy.webhook_max_attempts = 3;
        c.policy.webhook_timeout_seconds = 1;
        c.api.rate_limit_per_second = 10_000;
        c.api.rate_limit_burst = 10_000;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_checked_listed_and_delisted_with_evidence() {
    let n = node().await;
    let mut owner = Owner::new("direct-p1");
    let create = owner.create();
    let list = owner.list("domain:spam.example", "relays unsigned mail");
    let (status, results) = submit(&n.http, &n.base, &[&create, &list]).await;
    assert_eq!(status, 200, "{results}");
    assert_eq!(results[0]["outcome"], "applied");
    assert_eq!(results[1]["outcome"], "applied");

    // The same history again: harmless.
    let (status, results) = submit(&n.http, &n.base, &[&create, &list]).await;
    assert_eq!(status, 200);
    assert_eq!(results[1]["outcome"], "duplicate");

    let p = get_json(&n.http, &n.url("/api/v1/policies/direct-p1")).await;
    assert_eq!(p["version"], 2);
    assert_eq!(p["kind"], "deny-list");
    assert_eq!(p["owner"], hex::encode(owner.key.public_key_bytes()));
    assert_eq!(p["head"], list.hash().to_hex());
    assert_eq!(p["flagged"], false);

    let c = get_json(
        &n.http,
        &n.url("/api/v1/policies/direct-p1/check?subject=domain:SPAM.example"),
    )
    .await;
    assert_eq!(c["listed"], true);
    assert_eq!(c["evidence"]["version"], 2);
    assert_eq!(c["evidence"]["reason"], "relays unsigned mail");
    // The evidence is the owner's signed event, verifiable by anyone.
    let evidence = STANDARD
        .decode(c["evidence"]["event"].as_str().unwrap())
        .unwrap();
    assert_eq!(evidence, list.bytes());
    assert!(SignedEvent::decode(&evidence).is_ok());

    let c = get_json(
        &n.http,
        &n.url("/api/v1/policies/direct-p1/check?subject=domain:ham.example"),
    )
    .await;
    assert_eq!(c["listed"], false);
    assert!(c["evidence"].is_null());

    // Several policies in one call.
    let mut other = Owner::new("anti-abuse");
    let oc = other.create();
    submit(&n.http, &n.base, &[&oc]).await;
    let many = get_json(
        &n.http,
        &n.url("/api/v1/policy-check?subject=domain:spam.example&policies=direct-p1,anti-abuse"),
    )
    .await;
    let many = many.as_array().unwrap();
    assert_eq!(many.len(), 2);
    assert_eq!(many[0]["listed"], true);
    assert_eq!(many[1]["listed"], false);

    let delist = owner.delist("domain:spam.example", "fixed their relay");
    assert_eq!(submit(&n.http, &n.base, &[&delist]).await.0, 200);
    let c = get_json(
        &n.http,
        &n.url("/api/v1/policies/direct-p1/check?subject=domain:spam.example"),
    )
    .await;
    assert_eq!(c["listed"], false);
    assert_eq!(c["evidence"]["op"], "delist");
    let listings = get_json(&n.http, &n.url("/api/v1/policies/direct-p1/listings")).await;
    assert_eq!(listings, json!([]));

    // Polling by version.
    let events = get_json(&n.http, &n.url("/api/v1/policies/direct-p1/events?after=1")).await;
    let versions: Vec<u64> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, vec![2, 3]);
    // The all-policies feed by position.
    let feed = get_json(&n.http, &n.url("/api/v1/policy-events?after=0")).await;
    assert_eq!(feed.as_array().unwrap().len(), 4);
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_events_are_refused_with_a_reason_and_change_nothing() {
    let n = node().await;
    let mut owner = Owner::new("direct-p1");
    let create = owner.create();
    assert_eq!(submit(&n.http, &n.base, &[&create]).await.0, 200);
    let head_before = get_json(&n.http, &n.url("/api/v1/policies/direct-p1")).await;

    let problem = |v: &Value| v["type"].as_str().unwrap_or_default().to_owned();

    // A forged signature: one bit flipped.
    let good = owner.list("domain:a.example", "x");
    let mut forged = good.bytes().to_vec();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let res = n
        .http
        .post(n.url("/api/v1/policy-events"))
        .json(&json!({"events": [STANDARD.encode(&forged)]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let v: Value = res.json().await.unwrap();
    assert!(problem(&v).ends_with("/bad-signature"), "{v}");

    // Signed by someone else than the owner.
    let mut thief = Owner {
        key: NodeKey::generate(&mut rand::rng()),
        policy: "direct-p1".into(),
        version: 1,
        head: create.hash(),
    };
    let key = NodeKey::from_pkcs8_pem(&thief.key.to_pkcs8_pem().unwrap()).unwrap();
    let stolen = thief.sign_with(
        &key,
        PolicyOp::List {
            subject: "domain:b.example".parse().unwrap(),
            reason: "mine now".into(),
            expires: None,
        },
    );
    let (status, v) = submit(&n.http, &n.base, &[&stolen]).await;
    assert_eq!(status, 403, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("wrong-owner"), "{v}");

    // A version gap: version 3 without 2.
    let mut skipping = Owner {
        key: NodeKey::from_pkcs8_pem(&owner.key.to_pkcs8_pem().unwrap()).unwrap(),
        policy: "direct-p1".into(),
        version: 2,
        head: good.hash(),
    };
    let gap = skipping.list("domain:c.example", "gap");
    let (status, v) = submit(&n.http, &n.base, &[&gap]).await;
    assert_eq!(status, 409, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("version-gap"), "{v}");

    // A batch with a bad event is refused whole: `good` is not applied either.
    let (status, _) = submit(&n.http, &n.base, &[&good, &gap, &stolen]).await;
    assert_ne!(status, 200);
    // Malformed: not base64, not an event, an unknown field.
    for body in [
        json!({"events": ["%%%"]}),
        json!({"events": [STANDARD.encode(b"ccdir/policy-event/v1 nope")]}),
        json!({"events": [], "extra": 1}),
        json!({"events": []}),
    ] {
        let res = n
            .http
            .post(n.url("/api/v1/policy-events"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{body}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{body}"
        );
    }
    // An event for a policy never created here.
    let mut stranger = Owner::new("nobody-here");
    stranger.create();
    let orphan = stranger.list("domain:d.example", "x");
    assert_eq!(submit(&n.http, &n.base, &[&orphan]).await.0, 404);

    // Oversized reasons and non-canonical subjects are refused at signing,
    // so a hand-made event carries them: checked at decoding too (unit tests).
    let oversized = PolicyEvent {
        policy: "direct-p1".parse().unwrap(),
        owner: Key(owner.key.public_key_bytes()),
        version: 2,
        prev: create.hash(),
        time: Utc::now(),
        op: PolicyOp::List {
            subject: "domain:e.example".parse().unwrap(),
            reason: "r".repeat(2000),
            expires: None,
        },
    }
    .sign(&owner.key);
    assert!(oversized.is_err());
    let res = n
        .http
        .get(n.url("/api/v1/policies/direct-p1/check?subject=nonsense"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    // Nothing of it took effect.
    let head_after = get_json(&n.http, &n.url("/api/v1/policies/direct-p1")).await;
    assert_eq!(head_before["version"], head_after["version"]);
    assert_eq!(head_before["head"], head_after["head"]);
    assert_eq!(
        get_json(&n.http, &n.url("/api/v1/policy-events?after=0"))
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // And the node keeps serving: the good event alone goes in.
    assert_eq!(submit(&n.http, &n.base, &[&good]).await.0, 200);
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equivocation_is_kept_as_evidence_and_flags_the_policy() {
    let n = node().await;
    let mut owner = Owner::new("direct-p1");
    let create = owner.create();
    let a = owner.list("domain:x.example", "first story");
    // The owner signs a different version 2 as well.
    let mut fork = Owner {
        key: NodeKey::from_pkcs8_pem(&owner.key.to_pkcs8_pem().unwrap()).unwrap(),
        policy: "direct-p1".into(),
        version: 1,
        head: create.hash(),
    };
    let b = fork.list("domain:y.example", "second story");
    assert_eq!(submit(&n.http, &n.base, &[&create, &a]).await.0, 200);
    let (status, v) = submit(&n.http, &n.base, &[&b]).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v[0]["outcome"], "equivocation");
    let p = get_json(&n.http, &n.url("/api/v1/policies/direct-p1")).await;
    assert_eq!(p["flagged"], true);
    assert_eq!(p["version"], 2, "the first event stays the head");
    let evidence = p["evidence"].as_array().unwrap();
    assert_eq!(evidence.len(), 2);
    assert_eq!(evidence[0]["hash"], a.hash().to_hex());
    assert_eq!(evidence[1]["hash"], b.hash().to_hex());
    assert_eq!(evidence[1]["applied"], false);
    let c = get_json(
        &n.http,
        &n.url("/api/v1/policies/direct-p1/check?subject=domain:x.example"),
    )
    .await;
    assert_eq!(c["listed"], true);
    assert_eq!(c["flagged"], true);
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_sent_events_arrive_and_resume_from_the_last_id() {
    let n = node().await;
    let mut owner = Owner::new("direct-p1");
    let create = owner.create();
    submit(&n.http, &n.base, &[&create]).await;
    let url = n.url("/api/v1/policies/direct-p1/events");
    let mut stream = Sse::open(&n.http, &url, None).await;
    let (id, name, data) = stream.next(Duration::from_secs(5)).await;
    assert_eq!((id.as_deref(), name.as_str()), (Some("1"), "policy-event"));
    assert_eq!(data["op"], "create");

    let list = owner.list("addr:eve@mallory.example", "phishing");
    let sent = Instant::now();
    submit(&n.http, &n.base, &[&list]).await;
    let (id, _, data) = stream.next(Duration::from_secs(2)).await;
    assert!(sent.elapsed() < Duration::from_secs(2));
    assert_eq!(id.as_deref(), Some("2"));
    assert_eq!(data["subject"], "addr:eve@mallory.example");
    // Streams and polling carry the same JSON for an event.
    let polled = get_json(&n.http, &format!("{url}?after=1")).await;
    assert_eq!(polled[0], data);

    // Gone for a while; two more events; back with Last-Event-ID.
    drop(stream);
    let e3 = owner.delist("addr:eve@mallory.example", "mistake");
    let e4 = owner.list("domain:mallory.example", "the whole domain");
    submit(&n.http, &n.base, &[&e3, &e4]).await;
    let mut stream = Sse::open(&n.http, &url, Some("2")).await;
    let (id, _, _) = stream.next(Duration::from_secs(5)).await;
    assert_eq!(id.as_deref(), Some("3"));
    let (id, _, data) = stream.next(Duration::from_secs(5)).await;
    assert_eq!(id.as_deref(), Some("4"));
    assert_eq!(data["subject"], "domain:mallory.example");

    // The all-policies stream, by feed position.
    let mut all = Sse::open(&n.http, &n.url("/api/v1/policy-events"), Some("3")).await;
    let (id, _, data) = all.next(Duration::from_secs(5)).await;
    assert_eq!(id.as_deref(), Some(data["seq"].to_string().as_str()));
    assert_eq!(data["version"], 4);
    let res = n
        .http
        .get(&url)
        .header("Accept", "text/event-stream")
        .header("Last-Event-ID", "not-a-number")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_retried_dead_lettered_and_independent() {
    let n = node().await;
    let node_key = n.key.public_key_bytes();
    let admin = n.admin();
    let mut owner = Owner::new("direct-p1");
    submit(&n.http, &n.base, &[&owner.create()]).await;

    let (good_url, good) = receiver(200, Duration::ZERO).await;
    let (bad_url, bad) = receiver(500, Duration::ZERO).await;
    let (slow_url, slow) = receiver(200, Duration::from_secs(3)).await;
    let mut ids = Vec::new();
    for (url, policy) in [
        (&good_url, Some("direct-p1")),
        (&bad_url, None),
        (&slow_url, None),
    ] {
        let res = n
            .http
            .post(n.url("/api/v1/webhooks"))
            .bearer_auth(&admin)
            .json(&json!({"url": url, "policy": policy}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let v: Value = res.json().await.unwrap();
        ids.push(v["id"].as_u64().unwrap());
    }
    // Anonymous callers may not subscribe; bad URLs are refused.
    let res = n
        .http
        .post(n.url("/api/v1/webhooks"))
        .json(&json!({"url": good_url}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = n
        .http
        .post(n.url("/api/v1/webhooks"))
        .bearer_auth(&admin)
        .json(&json!({"url": "ftp://x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    let list = owner.list("domain:spam.example", "spam");
    let sent = Instant::now();
    submit(&n.http, &n.base, &[&list]).await;
    // The good receiver gets it at once, whatever the others do.
    wait_until("the good receiver", Duration::from_secs(2), || {
        !good.lock().unwrap().is_empty()
    })
    .await;
    assert!(sent.elapsed() < Duration::from_secs(2));
    let (headers, body) = good.lock().unwrap()[0].clone();
    let v = verified(&node_key, &headers, &body);
    assert_eq!(v["version"], 2);
    assert_eq!(v["subject"], "domain:spam.example");
    assert_eq!(headers["content-type"], "application/json");

    // The failing receiver: three tries, then a dead letter.
    wait_until("three tries", Duration::from_secs(10), || {
        bad.lock().unwrap().len() >= 3
    })
    .await;
    let keys: Vec<String> = bad
        .lock()
        .unwrap()
        .iter()
        .map(|(h, _)| h["idempotency-key"].clone())
        .collect();
    assert!(keys.windows(2).all(|w| w[0] == w[1]), "same key on retries");
    let start = Instant::now();
    loop {
        let res = n
            .http
            .get(n.url(&format!("/api/v1/webhooks/{}", ids[1])))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        let v: Value = res.json().await.unwrap();
        if v["dead_letter_count"] == 1 {
            assert_eq!(v["dead_letters"][0]["attempts"], 3);
            assert!(
                v["dead_letters"][0]["last_error"]
                    .as_str()
                    .unwrap()
                    .contains("500"),
                "{v}"
            );
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The slow one (3 s against a 1 s timeout) fails by timeout, and did
    // not hold anyone up.
    wait_until(
        "the slow receiver was tried",
        Duration::from_secs(5),
        || !slow.lock().unwrap().is_empty(),
    )
    .await;
    let all = n
        .http
        .get(n.url("/api/v1/webhooks"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let all: Value = all.json().await.unwrap();
    assert_eq!(all.as_array().unwrap().len(), 3);
    assert_eq!(all[0]["delivered"], 1);

    // Deleting a subscription ends it.
    let res = n
        .http
        .delete(n.url(&format!("/api/v1/webhooks/{}", ids[0])))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let before = good.lock().unwrap().len();
    submit(
        &n.http,
        &n.base,
        &[&owner.delist("domain:spam.example", "ok")],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(good.lock().unwrap().len(), before);
    n.stop().await;
}

/// Runs `ccdir` as a policy owner would, in `dir`: success and output.
pub fn owner_cli(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .current_dir(dir)
        .env_remove("CCDIR_CONFIG")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// [`owner_cli`] that must succeed.
pub fn owner_ok(dir: &std::path::Path, args: &[&str]) {
    let (ok, out) = owner_cli(dir, args);
    assert!(ok, "ccdir {args:?}: {out}");
}

fn label(bytes: &[u8]) -> String {
    base32_label(&Sha256::digest(bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_answers_policy_lookups_dnsbl_style() {
    use hickory_resolver::proto::rr::{RData, RecordType};
    let n = node().await;
    let mut owner = Owner::new("direct-p1");
    let cert = b"pretend DER of a certificate";
    let fingerprint = hex::encode(Sha256::digest(cert));
    let events = [
        owner.create(),
        owner.list(&format!("cert:{fingerprint}"), "key compromised"),
        owner.list("addr:Eve@Mallory.example", "phishing"),
        owner.list("domain:spam.example", "open relay"),
    ];
    let refs: Vec<&SignedEvent> = events.iter().collect();
    assert_eq!(submit(&n.http, &n.base, &refs).await.0, 200);
    let (udp, _) = n.node.as_ref().unwrap().dns_addrs().unwrap();
    let r = crate::dns::resolver(udp, false);
    let a = |name: String| {
        let r = r.clone();
        async move {
            match r.lookup(name, RecordType::A).await {
                Ok(l) => l
                    .answers()
                    .iter()
                    .filter_map(|rec| match &rec.data {
                        RData::A(a) => Some(IpAddr::V4(a.0)),
                        _ => None,
                    })
                    .collect::<Vec<_>>(),
                Err(_) => vec![],
            }
        }
    };
    let listed: IpAddr = "127.0.0.2".parse().unwrap();
    let zone = "direct-p1.bl.ccdir.test.";
    assert_eq!(a(format!("{}.{zone}", label(cert))).await, vec![listed]);
    assert_eq!(
        a(format!("{}.{zone}", label(b"eve@mallory.example"))).await,
        vec![listed]
    );
    assert_eq!(a(format!("spam.example.{zone}")).await, vec![listed]);
    assert_eq!(a(format!("test.{zone}")).await, vec![listed]);
    assert!(a(format!("invalid.{zone}")).await.is_empty());
    assert!(a(format!("{}.{zone}", label(b"x"))).await.is_empty());
    assert_eq!(
        a(format!("{}.nosuch.bl.ccdir.test.", label(cert))).await,
        vec!["127.255.255.254".parse::<IpAddr>().unwrap()]
    );
    // TXT carries the reason.
    let txt = r
        .lookup(format!("spam.example.{zone}"), RecordType::TXT)
        .await
        .unwrap();
    let text: String = txt
        .answers()
        .iter()
        .filter_map(|rec| match &rec.data {
            RData::TXT(t) => Some(t.to_string()),
            _ => None,
        })
        .collect();
    assert!(text.contains("open relay"), "{text}");
    // The rcodes, with raw queries: NXDOMAIN, and NODATA for the policy name.
    let rcode = |m: &[u8]| m[3] & 0x0f;
    let nx = crate::dns::udp_exchange(
        udp,
        &crate::dns::query(&format!("invalid.{zone}"), RecordType::A, None),
    )
    .await
    .unwrap();
    assert_eq!(rcode(&nx), 3);
    let nodata = crate::dns::udp_exchange(udp, &crate::dns::query(zone, RecordType::A, None))
        .await
        .unwrap();
    assert_eq!((rcode(&nodata), &nodata[6..8]), (0, &[0u8, 0][..]));

    // De-listing shows at once.
    let delist = owner.delist("domain:spam.example", "closed");
    assert_eq!(submit(&n.http, &n.base, &[&delist]).await.0, 200);
    assert!(a(format!("spam.example.{zone}")).await.is_empty());

    if crate::dns_tools::wanted("CCDIR_TEST_DIG", "dig") {
        // The label the shell makes from the same bytes: coreutils' base32.
        let shell = Command::new("sh")
            .arg("-c")
            .arg("printf %s 'eve@mallory.example' | openssl dgst -sha256 -binary | base32 | tr -d '=\\n' | tr A-Z a-z")
            .output()
            .unwrap();
        let shell_label = String::from_utf8_lossy(&shell.stdout).trim().to_owned();
        assert_eq!(
            shell_label,
            label(b"eve@mallory.example"),
            "openssl and base32 make the same label"
        );
        let out =
            crate::dns_tools::dig(udp, &[&format!("{}.{zone}", label(cert)), "A", "+short"]).await;
        assert_eq!(out.trim(), "127.0.0.2", "{out}");
        let out = crate::dns_tools::dig(udp, &[&format!("test.{zone}"), "TXT", "+short"]).await;
        assert!(out.contains("test entry"), "{out}");
        let out = crate::dns_tools::dig(udp, &[&format!("invalid.{zone}"), "A"]).await;
        assert!(out.contains("NXDOMAIN"), "{out}");
    }
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_creates_signs_offline_submits_and_checks() {
    let n = node().await;
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| owner_cli(dir.path(), args);
    let (ok, out) = run(&["policy", "create", "direct-p1", "--title", "Direct P1"]);
    assert!(ok, "{out}");
    assert!(dir.path().join("direct-p1.key").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("direct-p1.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the owner key is private");
    }
    let (ok, out) = run(&["policy", "create", "direct-p1"]);
    assert!(!ok && out.contains("exists"), "{out}");
    let (ok, out) = run(&[
        "policy",
        "list",
        "direct-p1",
        "--subject",
        "domain:spam.example",
        "--reason",
        "open relay",
        "--expires",
        "30d",
    ]);
    assert!(ok, "{out}");
    let (ok, out) = run(&[
        "policy",
        "list",
        "direct-p1",
        "--subject",
        "bogus",
        "--reason",
        "x",
    ]);
    assert!(!ok && out.contains("subject"), "{out}");
    let (ok, out) = run(&["policy", "submit", "direct-p1", "--url", &n.base]);
    assert!(ok, "{out}");
    assert!(out.contains("version 2\tapplied"), "{out}");
    let (ok, out) = run(&[
        "policy",
        "check",
        "--subject",
        "domain:spam.example",
        "--url",
        &n.base,
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("direct-p1\tlisted\topen relay"), "{out}");
    // Submitting again is harmless.
    let (ok, out) = run(&["policy", "submit", "direct-p1", "--url", &n.base]);
    assert!(ok && out.contains("duplicate"), "{out}");
    n.stop().await;
}

/// The policy zone may not also be a directory zone.
#[test]
fn policy_zone_config_is_checked() {
    let mut config = ccdir::config::DnsConfig {
        policy_zone: "cardio.example.org".into(),
        ..Default::default()
    };
    config.zones.push(ccdir::config::ZoneConfig {
        name: "cardio.example.org".into(),
        ..Default::default()
    });
    assert!(ccdir::dns::ZoneSet::build(&config, &[]).is_err());
    config.policy_zone = "bl.example.org".into();
    let zones = ccdir::dns::ZoneSet::build(&config, &[]).unwrap();
    assert_eq!(zones.len(), 2);
}
