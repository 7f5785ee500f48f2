//! The `ccdir` binary as a user runs it: init, tokens, import in every
//! format with bad rows, strict imports, export round trips, reindex, and
//! `serve --demo` answering the README's query.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ccdir::domain::pem_certificate;
use serde_json::{Value, json};

use crate::support::TestPki;

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

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Entries in the directory, counted through `export`.
fn exported(dir: &Path) -> Vec<Value> {
    let out = ccdir(dir, &["export"]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json line"))
        .filter(|v| v.get("type").is_none())
        .collect()
}

const DOMAIN: &str = "direct.lakeside.example.org";

/// A JSON lines file: an organisation, `n` people with certificates, and
/// the bad rows given.
fn jsonl(pki: &TestPki, n: usize, bad: &[&str]) -> String {
    let mut lines = vec![json!({"type": "organisation", "id": "lakeside", "name": "Lakeside Clinic", "domains": [DOMAIN]}).to_string()];
    for i in 0..n {
        let address = format!("person{i}@{DOMAIN}");
        lines.push(
            json!({"address": address, "given_name": format!("Given{i}"), "surname": "Lakeside",
                   "organisation": "lakeside", "specialty": "Cardiology", "locality": "Chicago",
                   "identifiers": ["NPI:1234567893"],
                   "certificates": [pem_certificate(&pki.valid_leaf(&address)), pem_certificate(&pki.issuing_der())]})
            .to_string(),
        );
    }
    lines.extend(bad.iter().map(|s| s.to_string()));
    lines.join("\n") + "\n"
}

#[test]
fn init_creates_a_private_key_and_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = ccdir(dir.path(), &["init"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let first = stdout(&out);
    assert!(first.contains("node id"), "{first}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("node.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = stdout(&ccdir(dir.path(), &["init"]));
    assert_eq!(first, again, "init twice keeps the identity");

    let token = ccdir(
        dir.path(),
        &[
            "token",
            "issue",
            "--role",
            "org-admin",
            "--org",
            "lakeside",
            "--ttl",
            "1h",
        ],
    );
    assert!(out.status.success());
    assert_eq!(stdout(&token).trim().split('.').count(), 3);
    let refused = ccdir(dir.path(), &["token", "issue", "--role", "org-admin"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("organisation"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn help_explains() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let text = stdout(&out);
    for word in [
        "serve", "import", "export", "reindex", "token", "openapi", "seed", "--config",
    ] {
        assert!(text.contains(word), "--help lacks {word}");
    }
    let out = Command::new(BIN)
        .args(["import", "--help"])
        .output()
        .unwrap();
    assert!(stdout(&out).contains("--strict"));
}

#[test]
fn import_reports_bad_rows_by_line_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new("Cli");
    let file = dir.path().join("people.jsonl");
    let other = TestPki::new("Other").valid_leaf(&format!("wrong@{DOMAIN}"));
    std::fs::write(
        &file,
        jsonl(
            &pki,
            5,
            &[
                r#"{"address":"broken","surname":"X"}"#,
                r#"{"address":"x@direct.lakeside.example.org","nmae":"typo"}"#,
                &json!({"address": format!("bound@{DOMAIN}"), "organisation": "lakeside", "certificates": [pem_certificate(&other)]}).to_string(),
                r#"{"address":"y@elsewhere.example.com","organisation":"lakeside"}"#,
                "not json at all",
            ],
        ),
    )
    .unwrap();
    let out = ccdir(dir.path(), &["import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    for line in 7..=11 {
        assert!(
            err.contains(&format!("people.jsonl:{line}:")),
            "line {line} not reported:\n{err}"
        );
    }
    assert!(err.contains("unknown field `nmae`"), "{err}");
    assert!(
        err.contains("wrong@"),
        "the binding error names the certificate's address: {err}"
    );
    assert!(
        stdout(&out).contains(
            "imported 1 organisation(s), 5 entries with 5 certificate(s); 5 row(s) rejected"
        ),
        "{}",
        stdout(&out)
    );
    assert_eq!(exported(dir.path()).len(), 5);
}

#[test]
fn strict_import_writes_nothing_when_a_row_is_bad() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new("Strict");
    let file = dir.path().join("people.jsonl");
    std::fs::write(&file, jsonl(&pki, 3, &[r#"{"address":"bad address"}"#])).unwrap();
    let out = ccdir(dir.path(), &["import", "--strict", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("people.jsonl:5:"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothing was imported"),
        "{}",
        stderr(&out)
    );
    let export = ccdir(dir.path(), &["export"]);
    assert_eq!(stdout(&export).lines().count(), 0, "no organisation either");

    std::fs::write(&file, jsonl(&pki, 3, &[])).unwrap();
    let out = ccdir(dir.path(), &["import", "--strict", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(exported(dir.path()).len(), 3);
}

#[test]
fn exports_import_back_as_jsonl_and_ldif_and_csv_reads() {
    let first = tempfile::tempdir().unwrap();
    let pki = TestPki::new("Trip");
    let file = first.path().join("people.jsonl");
    std::fs::write(&file, jsonl(&pki, 4, &[])).unwrap();
    assert!(
        ccdir(first.path(), &["import", file.to_str().unwrap()])
            .status
            .success()
    );
    let original = exported(first.path());

    for format in ["jsonl", "ldif"] {
        let out_file = first.path().join(format!("export.{format}"));
        let out = ccdir(
            first.path(),
            &[
                "export",
                "--format",
                format,
                "-o",
                out_file.to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let second = tempfile::tempdir().unwrap();
        let out = ccdir(second.path(), &["import", out_file.to_str().unwrap()]);
        assert!(out.status.success(), "{format}: {}", stderr(&out));
        let again = exported(second.path());
        assert_eq!(again.len(), original.len(), "{format}");
        for (a, b) in original.iter().zip(&again) {
            assert_eq!(a, b, "{format} round trip changed an entry");
        }
    }
    let ldif = std::fs::read_to_string(first.path().join("export.ldif")).unwrap();
    assert!(ldif.contains("userCertificate;binary:: "));
    assert!(ldif.contains(&format!("dn: mail=person0@{DOMAIN},o=lakeside,dc=ccdir")));

    let csv_dir = tempfile::tempdir().unwrap();
    let csv = csv_dir.path().join("people.csv");
    std::fs::write(
        &csv,
        format!(
            "address,given_name,surname,specialty,identifiers\n\
             ann@{DOMAIN},Ann,Lee,Cardiology,NPI:1234567893\n\
             bad row,,,,\n"
        ),
    )
    .unwrap();
    let out = ccdir(csv_dir.path(), &["import", csv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("people.csv:3:"), "{}", stderr(&out));
    assert_eq!(exported(csv_dir.path()).len(), 1);

    let out = ccdir(first.path(), &["reindex"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("reindexed 4 entries"),
        "{}",
        stdout(&out)
    );
}

/// The README's first command, as a user runs it (the debug binary here).
#[test]
fn serve_demo_answers_the_readme_query_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args([
            "--data-dir",
            dir.path().to_str().unwrap(),
            "serve",
            "--demo",
            "--api-listen",
            "127.0.0.1:0",
            "--dns-listen",
            "127.0.0.1:0",
        ])
        .args(["--seeds", concat!(env!("CARGO_MANIFEST_DIR"), "/seeds")])
        .env("RUST_LOG", "warn")
        .env("CCDIR_LDAP__LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = Instant::now();
    let base = loop {
        let line = lines
            .next()
            .expect("serve printed where it listens")
            .unwrap();
        if let Some(url) = line.strip_prefix("ccdir demo is up: REST on ") {
            break url.to_owned();
        }
        assert!(started.elapsed() < Duration::from_secs(120));
    };
    let body = reqwest::blocking_get(&format!("{base}/api/v1/search?q=cardiology+boston"));
    let results = body["results"].as_array().unwrap();
    assert!(results.len() >= 10, "{body}");
    assert!(results.iter().all(|r| r["locality"] == "Boston"), "{body}");
    assert!(
        results
            .iter()
            .any(|r| r["specialty"] == "Cardiology" && r["kind"] == "person"),
        "{body}"
    );
    let all: Value = reqwest::blocking_get(&format!("{base}/readyz"));
    assert!(all["head"].as_u64().unwrap() > 2000);

    // Every trust state shows in the demo.
    let mut states = std::collections::BTreeSet::new();
    let mut cursor = String::new();
    for _ in 0..40 {
        let page = reqwest::blocking_get(&format!(
            "{base}/api/v1/search?org=charles-river-medical&limit=100{cursor}"
        ));
        for r in page["results"].as_array().unwrap() {
            for c in r["certificates"].as_array().unwrap() {
                states.insert(c["trust"].as_str().unwrap().to_owned());
            }
        }
        match page["next"].as_str() {
            Some(n) => cursor = format!("&cursor={n}"),
            None => break,
        }
    }
    assert!(
        states.contains("trusted") && states.contains("expired") && states.contains("untrusted"),
        "{states:?}"
    );

    #[cfg(unix)]
    {
        // SAFETY: sending a signal to our own child process.
        unsafe { libc_kill(child.id() as i32, 15) };
        let status = child.wait().unwrap();
        assert!(status.success(), "serve exits cleanly on SIGTERM: {status}");
    }
    #[cfg(not(unix))]
    child.kill().unwrap();
}

/// `serve --demo` run from a directory without `seeds/` uses the built-in
/// seeds, and `/readyz` says "not ready" (503 problem with the reason)
/// until the demo directory is loaded and searchable: a script that waits
/// for readiness then finds the README's providers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_demo_is_ready_only_once_the_demo_is_searchable() {
    ccdir::core::install_crypto_provider();
    let work = tempfile::tempdir().unwrap();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut child = Command::new(BIN)
        .current_dir(work.path())
        .args([
            "serve",
            "--demo",
            "--api-listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--dns-listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .env("CCDIR_LDAP__LISTEN", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = ::reqwest::Client::new();
    let started = Instant::now();
    let mut not_ready = Vec::new();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "never ready; saw {not_ready:?}"
        );
        match client.get(format!("{base}/readyz")).send().await {
            Ok(r) if r.status() == 200 => break,
            Ok(r) => {
                assert_eq!(r.status(), 503);
                let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
                assert_eq!(content_type, "application/problem+json");
                let problem: Value = r.json().await.unwrap();
                not_ready.push(problem["detail"].as_str().unwrap().to_owned());
            }
            Err(_) => {} // not listening yet
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let results: Value = client
        .get(format!("{base}/api/v1/search?q=cardiology+boston"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        results["results"].as_array().unwrap().len() >= 10,
        "ready, yet the demo is not searchable: {results}"
    );
    assert!(
        not_ready
            .iter()
            .any(|d| d == "not ready yet: loading the demo directory"),
        "{not_ready:?}"
    );
    assert!(
        work.path().join("ccdir-demo").is_dir(),
        "the demo's data directory is in the working directory"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[cfg(unix)]
unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// A tiny blocking GET for the tests that run the binary.
mod reqwest {
    pub fn blocking_get(url: &str) -> serde_json::Value {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        ccdir::core::install_crypto_provider();
        rt.block_on(async { ::reqwest::get(url).await.unwrap().json().await.unwrap() })
    }
}

/// `ccdir anchor add` makes imported certificates trusted, `remove` makes
/// them untrusted again, bad input changes nothing.
#[tokio::test]
async fn anchors_from_the_command_line_rejudge_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new("Anchor CLI");
    let file = dir.path().join("people.jsonl");
    std::fs::write(&file, jsonl(&pki, 3, &[])).unwrap();
    assert!(ccdir(dir.path(), &["init"]).status.success());
    let out = ccdir(dir.path(), &["import", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));

    let trust = || async {
        let url = format!("sqlite://{}?mode=ro", dir.path().join("ccdir.db").display());
        let store = ccdir::storage::Store::connect(&url).await.unwrap();
        let key = format!("person1@{DOMAIN}");
        let record = store.get_entries(&[key]).await.unwrap().pop().unwrap();
        let verdict = record.certificates[0].trust.clone();
        store.close().await.unwrap();
        verdict.status
    };
    assert_eq!(trust().await, ccdir::domain::TrustStatus::Untrusted);

    let root = dir.path().join("root.pem");
    std::fs::write(&root, pki.root_pem()).unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(
        &junk,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let out = ccdir(dir.path(), &["anchor", "add", junk.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("invalid certificate"),
        "{}",
        stderr(&out)
    );
    let out = ccdir(dir.path(), &["anchor", "list"]);
    assert_eq!(stdout(&out), "", "a bad file adds nothing");

    let out = ccdir(dir.path(), &["anchor", "add", root.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let fingerprint = stdout(&out).split_whitespace().nth(1).unwrap().to_owned();
    assert_eq!(trust().await, ccdir::domain::TrustStatus::Trusted);
    let out = ccdir(dir.path(), &["anchor", "list"]);
    assert!(stdout(&out).starts_with(&fingerprint), "{}", stdout(&out));

    let out = ccdir(dir.path(), &["anchor", "remove", &fingerprint]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(trust().await, ccdir::domain::TrustStatus::Untrusted);
}
