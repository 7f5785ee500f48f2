//! A child that misbehaves on purpose: a tiny HTTP server in the test
//! process serving a log built here with the library (so every signature
//! is real unless the behaviour forges it), and able to lie, hang, send
//! too much or too little, fork or roll back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use ccdir::domain::{Entry, EntryKind, Visibility};
use ccdir::federation::merkle::{Frontier, leaf_hash};
use ccdir::federation::wire::{HeadJson, PageJson, RecordJson};
use ccdir::federation::{
    Body, CertificateMaterial, EntryPublication, Grant, Hash, Key, Record, RecordHeader,
    SignedGrant, TreeHead,
};
use ccdir::pki::NodeKey;

/// A log written here.
pub struct FakeLog {
    key: NodeKey,
    records: Vec<Record>,
    frontier: Frontier,
}

impl FakeLog {
    pub fn new(key: NodeKey) -> FakeLog {
        FakeLog {
            key,
            records: Vec::new(),
            frontier: Frontier::empty(),
        }
    }

    pub fn id(&self) -> Key {
        Key(self.key.public_key_bytes())
    }

    pub fn len(&self) -> u64 {
        self.records.len() as u64
    }

    pub fn push(&mut self, body: &Body) -> &Record {
        let (t, payload) = body.encode();
        let id = self.id();
        let r = Record::sign(
            RecordHeader {
                log: id,
                signer: id,
                seq: self.len() + 1,
                prev: self.records.last().map_or(Hash::ZERO, Record::hash),
                time: Utc::now(),
            },
            t,
            &payload,
            &self.key,
        )
        .expect("sign");
        self.frontier.push(leaf_hash(r.bytes()));
        self.records.push(r);
        self.records.last().expect("pushed")
    }

    /// A delegation record carrying `grants`.
    pub fn delegation(&mut self, grants: Vec<SignedGrant>) {
        self.push(&Body::Delegation(grants));
    }

    /// A person entry at `address`, with `certificates` (DER).
    pub fn person(&mut self, address: &str, surname: &str, certificates: Vec<Vec<u8>>) {
        let entry = Entry {
            address: address.parse().expect("address"),
            kind: EntryKind::Person,
            display_name: format!("Test {surname}"),
            given_name: Some("Test".into()),
            surname: Some(surname.into()),
            organisation: None,
            unit: None,
            title: None,
            profession: None,
            specialty: None,
            identifiers: vec![],
            locality: None,
            region: None,
            country: None,
            postal_code: None,
            phone: None,
            visibility: Visibility::Public,
            origin: self.id().node_id(),
            version: 1,
            updated_at: Utc::now(),
        };
        self.push(&Body::EntryUpsert(Box::new(EntryPublication {
            entry,
            certificates: certificates
                .into_iter()
                .map(|der| CertificateMaterial { der, chain: vec![] })
                .collect(),
        })));
    }

    fn head(&self) -> HeadJson {
        let h = TreeHead {
            log: self.id(),
            signer: self.id(),
            size: self.len(),
            head_hash: self.records.last().map_or(Hash::ZERO, Record::hash),
            root_hash: self.frontier.root(),
            time: Utc::now(),
        }
        .sign(&self.key)
        .expect("head");
        HeadJson::new(&h)
    }

    fn page(&self, after: u64, limit: u64) -> PageJson {
        PageJson {
            log: self.id().to_hex(),
            head: self.head(),
            records: self
                .records
                .iter()
                .filter(|r| r.header.seq > after)
                .take(limit as usize)
                .map(|r| RecordJson::new(r.header.seq, &r.hash(), r.bytes()))
                .collect(),
        }
    }
}

/// A grant from `issuer` to `subject` for `domains`, valid from `from`
/// to `until` hours from now (negative: in the past).
pub fn grant(
    issuer: &NodeKey,
    subject: Key,
    domains: &[&str],
    from: i64,
    until: i64,
) -> SignedGrant {
    let now = Utc::now();
    Grant::new(
        Key(issuer.public_key_bytes()),
        subject,
        domains.iter().map(|d| d.parse().expect("domain")).collect(),
        now + chrono::Duration::hours(from),
        now + chrono::Duration::hours(until),
    )
    .expect("grant")
    .sign(issuer)
    .expect("sign grant")
}

/// How the fake child answers page requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Serves its log faithfully.
    Honest,
    /// Flips a bit of the signature of the record with this seq.
    ForgeSignature(u64),
    /// Swaps the first two records of every page.
    Reorder,
    /// Serves the second record of a page twice.
    Replay,
    /// Cuts the JSON of the page in half.
    Truncate,
    /// Pads the page with this many bytes.
    Oversize(usize),
    /// Sends the headers and half the body, then nothing.
    Hang,
}

struct State {
    log: FakeLog,
    behaviour: Behaviour,
}

/// The server.
pub struct FakeChild {
    pub url: String,
    pub key: Key,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeChild {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn query(path: &str, name: &str) -> Option<u64> {
    let q = path.split_once('?')?.1;
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.parse().ok())
}

fn respond(state: &Mutex<State>, path: &str) -> (Vec<u8>, Behaviour) {
    let st = state.lock().expect("fake state");
    if path.starts_with("/federation/v1/head") {
        return (
            serde_json::to_vec(&st.log.head()).expect("json"),
            Behaviour::Honest,
        );
    }
    let after = query(path, "after").unwrap_or(0);
    let limit = query(path, "limit").unwrap_or(500);
    let mut page = st.log.page(after, limit);
    match st.behaviour {
        Behaviour::ForgeSignature(seq) => {
            for r in &mut page.records {
                if r.seq == seq {
                    let mut b = STANDARD.decode(&r.record).expect("b64");
                    let n = b.len();
                    b[n - 1] ^= 1;
                    r.record = STANDARD.encode(b);
                }
            }
        }
        Behaviour::Reorder if page.records.len() >= 2 => page.records.swap(0, 1),
        Behaviour::Replay if page.records.len() >= 2 => {
            let again = page.records[1].clone();
            page.records.insert(2, again);
        }
        _ => {}
    }
    let mut body = serde_json::to_vec(&page).expect("json");
    match st.behaviour {
        Behaviour::Truncate => body.truncate(body.len() / 2),
        Behaviour::Oversize(n) => {
            let mut v: serde_json::Value = serde_json::from_slice(&body).expect("json");
            v["padding"] = serde_json::Value::String("x".repeat(n));
            body = serde_json::to_vec(&v).expect("json");
        }
        _ => {}
    }
    (body, st.behaviour)
}

impl FakeChild {
    pub async fn start(log: FakeLog, behaviour: Behaviour) -> FakeChild {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let key = log.id();
        let state = Arc::new(Mutex::new(State { log, behaviour }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&buf);
                    let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let (body, behaviour) = respond(&state, &path);
                    let header = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = sock.write_all(header.as_bytes()).await;
                    if behaviour == Behaviour::Hang {
                        let _ = sock.write_all(&body[..body.len() / 2]).await;
                        let _ = sock.flush().await;
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return;
                    }
                    let _ = sock.write_all(&body).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        FakeChild {
            url,
            key,
            state,
            task,
        }
    }

    /// Serves another log from now on (a fork or a rollback).
    pub fn replace_log(&self, log: FakeLog) {
        self.state.lock().expect("fake state").log = log;
    }
}
