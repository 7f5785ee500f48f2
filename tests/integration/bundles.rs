//! Trust bundles end to end: a real node, bundles served by a tiny HTTP
//! server inside the test (127.0.0.1, port 0), signed with the demo CA.
//! A certificate becomes trusted when the bundle carrying its root is
//! added; a 404, a server that never answers, a tampered signature, a wrong
//! signer and garbage each give their status code and leave the anchors as
//! they were; removing the bundle makes the certificate untrusted again.
//! And the same through the `ccdir bundle` command line, from a file.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ccdir::domain::pem_certificate;
use ccdir::pki::certs_only_pkcs7;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{TestNode, TestPki};

const ORG: &str = "bundle-clinic";
const DOMAIN: &str = "direct.bundle.example.org";

/// What the test server answers.
#[derive(Clone)]
enum Answer {
    /// 200 with this body.
    Body(Vec<u8>),
    /// 404.
    NotFound,
    /// Accepts, reads the request, and never answers.
    Hang,
}

/// A one-route HTTP/1.1 server on 127.0.0.1 whose answer the test sets.
struct BundleServer {
    url: String,
    answer: Arc<Mutex<Answer>>,
}

impl BundleServer {
    async fn start(first: Answer) -> BundleServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let answer = Arc::new(Mutex::new(first));
        let shared = answer.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let answer = shared.lock().unwrap().clone();
                tokio::spawn(async move {
                    // Read the request head; the body (there is none) does not matter.
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let (status, body) = match answer {
                        Answer::Body(b) => ("200 OK", b),
                        Answer::NotFound => ("404 Not Found", b"no such bundle".to_vec()),
                        Answer::Hang => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            return;
                        }
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/pkcs7-mime\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = conn.write_all(head.as_bytes()).await;
                    let _ = conn.write_all(&body).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        BundleServer {
            url: format!("http://{addr}/bundles/accredited.p7m"),
            answer,
        }
    }

    fn set(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }
}

/// A bundle publisher: a root (the signer operators configure) and the
/// signing certificate it issued.
struct Publisher {
    pki: TestPki,
}

impl Publisher {
    fn new(name: &str) -> Publisher {
        Publisher {
            pki: TestPki::new(name),
        }
    }

    fn signer_pem(&self) -> String {
        self.pki.root_pem()
    }

    /// `content` signed as a `.p7m` by the publisher's signing certificate.
    fn sign(&self, content: &[u8]) -> Vec<u8> {
        self.pki
            .issuing
            .sign_cms(content, &mut rand::rng())
            .expect("sign")
    }
}

async fn setup_person(node: &TestNode, pki: &TestPki, local: &str) -> String {
    let admin = node.admin();
    let res = node
        .http
        .post(node.url("/api/v1/organisations"))
        .bearer_auth(&admin)
        .json(&json!({"id": ORG, "name": "Bundle Clinic", "domains": [DOMAIN]}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    let address = format!("{local}@{DOMAIN}");
    let res = node
        .http
        .put(node.url(&format!("/api/v1/entries/{address}")))
        .bearer_auth(&admin)
        .json(&json!({
            "given_name": "Bea", "surname": "Bundle", "organisation": ORG,
            "certificates": [pem_certificate(&pki.valid_leaf(&address)), pem_certificate(&pki.issuing_der())],
        }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    address
}

async fn trust_of(node: &TestNode, address: &str) -> String {
    let certs: Value = node
        .http
        .get(node.url(&format!("/api/v1/entries/{address}/certificates")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    certs[0]["trust"].as_str().unwrap().to_owned()
}

async fn refresh(node: &TestNode, name: &str) -> Value {
    let res = node
        .http
        .post(node.url(&format!("/api/v1/bundles/{name}/refresh")))
        .bearer_auth(node.admin())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

/// Asserts a failed refresh with `code`, the bundle's one anchor still in force.
fn assert_failed(outcome: &Value, code: &str) {
    assert_eq!(outcome["ok"], false, "{outcome}");
    assert_eq!(outcome["bundle"]["last_refresh"]["code"], code, "{outcome}");
    assert_eq!(outcome["bundle"]["anchor_count"], 1, "{outcome}");
    assert_eq!(
        (outcome["added"].clone(), outcome["removed"].clone()),
        (json!(0), json!(0))
    );
    assert!(
        outcome["bundle"]["last_success_at"].is_string(),
        "{outcome}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bundles_over_http_feed_trust_and_bad_refreshes_change_nothing() {
    let node = TestNode::start_with(|c| {
        c.bundles.connect_timeout_ms = 500;
        c.bundles.fetch_timeout_ms = 700;
    })
    .await;
    let admin = node.admin();
    let ca = TestPki::new("Bundled");
    let publisher = Publisher::new("Publisher");
    let address = setup_person(&node, &ca, "bea").await;
    assert_eq!(trust_of(&node, &address).await, "untrusted");

    // The publisher signs a .p7b holding the clinic CA's root.
    let p7b = certs_only_pkcs7(&[ca.root.cert_der()]);
    let p7m = publisher.sign(&p7b);
    let server = BundleServer::start(Answer::Body(p7m.clone())).await;

    // Writes need a node-admin token; bad requests are refused with problems.
    let body = json!({"name": "accredited", "url": server.url, "signer_pem": publisher.signer_pem(), "refresh_seconds": 3600});
    let res = node
        .http
        .post(node.url("/api/v1/bundles"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    for (bad, status) in [
        (json!({"name": "Bad Name", "url": server.url}), 400),
        (json!({"name": "manual", "url": server.url}), 400),
        (json!({"name": "x", "url": "ftp://example.org/x"}), 400),
        (
            json!({"name": "x", "url": server.url, "file": "/tmp/x"}),
            400,
        ),
        (json!({"name": "x", "file": "relative.p7b"}), 400),
        (
            json!({"name": "x", "url": server.url, "refresh_seconds": 5}),
            400,
        ),
        (
            json!({"name": "x", "url": server.url, "signer_pem": "not a certificate"}),
            422,
        ),
    ] {
        let res = node
            .http
            .post(node.url("/api/v1/bundles"))
            .bearer_auth(&admin)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), status, "{bad}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{bad}"
        );
    }

    // Adding the bundle fetches it: the certificate becomes trusted.
    let generation = node.directory().trust_generation();
    let res = node
        .http
        .post(node.url("/api/v1/bundles"))
        .bearer_auth(&admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let added: Value = res.json().await.unwrap();
    assert_eq!(added["ok"], true, "{added}");
    assert_eq!(added["added"], 1);
    assert_eq!(added["bundle"]["anchor_count"], 1);
    assert_eq!(added["bundle"]["last_refresh"]["code"], "ok");
    assert!(
        added["bundle"]["last_refresh"]["detail"]
            .as_str()
            .unwrap()
            .contains("signed by"),
        "{added}"
    );
    node.directory().wait_trust_generation(generation).await;
    assert_eq!(trust_of(&node, &address).await, "trusted");
    let res = node
        .http
        .post(node.url("/api/v1/bundles"))
        .bearer_auth(&admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);

    // The anchor shows with its bundle, and cannot be removed by hand.
    let anchors: Value = node
        .http
        .get(node.url("/api/v1/anchors"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(anchors.as_array().unwrap().len(), 1, "{anchors}");
    assert_eq!(anchors[0]["source"], "bundle:accredited");
    let fp = anchors[0]["fingerprint"].as_str().unwrap();
    let res = node
        .http
        .delete(node.url(&format!("/api/v1/anchors/{fp}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);

    // Every failure keeps the anchor and the verdict.
    let generation = node.directory().trust_generation();
    server.set(Answer::NotFound);
    assert_failed(&refresh(&node, "accredited").await, "not-found");
    server.set(Answer::Hang);
    let started = std::time::Instant::now();
    assert_failed(&refresh(&node, "accredited").await, "timeout");
    assert!(started.elapsed() < Duration::from_secs(10));
    let mut tampered = p7m.clone();
    let at = tampered
        .windows(ca.root.cert_der().len())
        .position(|w| w == ca.root.cert_der())
        .unwrap()
        + 60;
    tampered[at] ^= 0x01;
    server.set(Answer::Body(tampered));
    assert_failed(&refresh(&node, "accredited").await, "signature-mismatch");
    let stranger = Publisher::new("Stranger");
    server.set(Answer::Body(stranger.sign(&p7b)));
    assert_failed(&refresh(&node, "accredited").await, "bad-signer");
    server.set(Answer::Body(p7b.clone()));
    assert_failed(&refresh(&node, "accredited").await, "bad-signer");
    server.set(Answer::Body(b"<html>maintenance</html>".to_vec()));
    let outcome = refresh(&node, "accredited").await;
    assert_failed(&outcome, "bad-format");
    assert_eq!(node.directory().trust_generation(), generation);
    assert_eq!(trust_of(&node, &address).await, "trusted");
    let one: Value = node
        .http
        .get(node.url("/api/v1/bundles/accredited"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["last_refresh"]["code"], "bad-format");
    assert_eq!(one["anchor_count"], 1);
    assert_eq!(one["origin"], "runtime");

    // A source nobody listens on is unreachable; it still gets defined.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_url = format!("http://{}/x.p7b", closed.local_addr().unwrap());
    drop(closed);
    let res = node
        .http
        .post(node.url("/api/v1/bundles"))
        .bearer_auth(&admin)
        .json(&json!({"name": "gone", "url": closed_url}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let gone: Value = res.json().await.unwrap();
    assert_eq!(gone["ok"], false);
    assert_eq!(
        gone["bundle"]["last_refresh"]["code"], "unreachable",
        "{gone}"
    );
    assert_eq!(gone["bundle"]["last_success_at"], Value::Null);
    let list: Value = node
        .http
        .get(node.url("/api/v1/bundles"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["accredited", "gone"]);

    // The good bundle again: nothing changes, so nothing is re-judged.
    server.set(Answer::Body(p7m.clone()));
    let outcome = refresh(&node, "accredited").await;
    assert_eq!(outcome["ok"], true, "{outcome}");
    assert_eq!(
        (outcome["added"].clone(), outcome["removed"].clone()),
        (json!(0), json!(0))
    );

    // Refresh outcomes are counted.
    let metrics = node.metrics().await;
    for code in [
        "ok",
        "not-found",
        "timeout",
        "signature-mismatch",
        "bad-signer",
        "bad-format",
    ] {
        assert!(
            metrics.contains(&format!(
                "ccdir_bundle_refreshes_total{{bundle=\"accredited\",code=\"{code}\"}}"
            )),
            "{code}: {metrics}"
        );
    }

    // Removing the bundle takes its anchor: the certificate is untrusted again.
    let generation = node.directory().trust_generation();
    let res = node
        .http
        .delete(node.url("/api/v1/bundles/accredited"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    node.directory().wait_trust_generation(generation).await;
    assert_eq!(trust_of(&node, &address).await, "untrusted");
    let res = node
        .http
        .get(node.url("/api/v1/bundles/accredited"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = node
        .http
        .post(node.url("/api/v1/bundles/accredited/refresh"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    node.stop().await;
}

/// A bundle declared in the configuration is fetched by `serve` on its own,
/// and a hand-made anchor is not touched by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn declared_bundles_are_refreshed_in_the_background() {
    let ca = TestPki::new("Declared");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("declared.p7b");
    std::fs::write(&file, certs_only_pkcs7(&[ca.root.cert_der()])).unwrap();
    let node = TestNode::start_with(|c| {
        c.bundles.check_interval_ms = 50;
        c.bundles.declared.push(ccdir::config::BundleConfig {
            name: "declared".into(),
            url: None,
            file: Some(file.clone()),
            signer: None,
            refresh_seconds: 3600,
        });
    })
    .await;
    let admin = node.admin();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let bundle = loop {
        let b: Value = node
            .http
            .get(node.url("/api/v1/bundles/declared"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !b["last_refresh"].is_null() {
            break b;
        }
        assert!(std::time::Instant::now() < deadline, "never refreshed: {b}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(bundle["last_refresh"]["code"], "ok", "{bundle}");
    assert_eq!(bundle["origin"], "config");
    assert_eq!(bundle["source_kind"], "file");
    assert_eq!(bundle["anchor_count"], 1);
    node.stop().await;
}

// ------------------------------------------------------------ command line

const BIN: &str = env!("CARGO_BIN_EXE_ccdir");

fn ccdir(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("CCDIR_CONFIG")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run ccdir")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `ccdir bundle add --file --signer`, `list`, `refresh` (a bad file:
/// exit 1, nothing changed) and `remove`, judged in the database.
#[tokio::test]
async fn bundles_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestPki::new("Bundle CLI");
    let publisher = Publisher::new("CLI Publisher");
    let address = format!("carl@{DOMAIN}");
    let people = dir.path().join("people.jsonl");
    std::fs::write(
        &people,
        [
            json!({"type": "organisation", "id": ORG, "name": "Bundle Clinic", "domains": [DOMAIN]}),
            json!({"address": address, "given_name": "Carl", "surname": "Bundle", "organisation": ORG,
                   "certificates": [pem_certificate(&ca.valid_leaf(&address)), pem_certificate(&ca.issuing_der())]}),
        ]
        .map(|v| v.to_string())
        .join("\n"),
    )
    .unwrap();
    assert!(ccdir(dir.path(), &["init"]).status.success());
    let out = ccdir(dir.path(), &["import", people.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let trust = || async {
        let url = format!("sqlite://{}?mode=ro", dir.path().join("ccdir.db").display());
        let store = ccdir::storage::Store::connect(&url).await.unwrap();
        let record = store
            .get_entries(std::slice::from_ref(&address))
            .await
            .unwrap()
            .pop()
            .unwrap();
        store.close().await.unwrap();
        record.certificates[0].trust.status
    };
    assert_eq!(trust().await, ccdir::domain::TrustStatus::Untrusted);

    let bundle = dir.path().join("bundle.p7m");
    let p7m = publisher.sign(&certs_only_pkcs7(&[ca.root.cert_der()]));
    std::fs::write(&bundle, &p7m).unwrap();
    let signer = dir.path().join("signer.pem");
    std::fs::write(&signer, publisher.signer_pem()).unwrap();
    let out = ccdir(
        dir.path(),
        &[
            "bundle",
            "add",
            "local",
            "--file",
            bundle.to_str().unwrap(),
            "--signer",
            signer.to_str().unwrap(),
            "--refresh",
            "12h",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("1 anchors added"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(trust().await, ccdir::domain::TrustStatus::Trusted);

    // A corrupted file: exit 1, the reason printed, the anchor stays.
    let mut bad = p7m.clone();
    let n = bad.len();
    bad[n - 2] ^= 0x01;
    std::fs::write(&bundle, &bad).unwrap();
    let out = ccdir(dir.path(), &["bundle", "refresh", "local"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stdout).contains("signature-mismatch"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(trust().await, ccdir::domain::TrustStatus::Trusted);
    std::fs::remove_file(&bundle).unwrap();
    let out = ccdir(dir.path(), &["bundle", "refresh"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stdout).contains("not-found"),
        "{}",
        text(&out.stdout)
    );
    let out = ccdir(dir.path(), &["bundle", "list"]);
    assert!(out.status.success());
    let listed = text(&out.stdout);
    assert!(listed.starts_with("local\tfile:"), "{listed}");
    assert!(
        listed.contains("1 anchors") && listed.contains("not-found"),
        "{listed}"
    );
    let out = ccdir(dir.path(), &["anchor", "list"]);
    assert!(
        text(&out.stdout).contains("bundle:local"),
        "{}",
        text(&out.stdout)
    );

    let out = ccdir(dir.path(), &["bundle", "remove", "local"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(trust().await, ccdir::domain::TrustStatus::Untrusted);
    let out = ccdir(dir.path(), &["bundle", "remove", "local"]);
    assert!(!out.status.success());
}
