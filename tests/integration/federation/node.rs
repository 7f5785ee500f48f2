//! A real `ccdir` process for the federation suites: its own data
//! directory and SQLite file (or a PostgreSQL URL), port 0, the bound
//! address read from its JSON log line, and the CLI run on the same data
//! directory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_ccdir");

/// One node: a data directory, a configuration file, maybe a running server.
pub struct Node {
    pub name: String,
    pub dir: TempDir,
    pub key: String,
    pub url: String,
    /// Where its DNS front end answers over UDP (from the "listening" line).
    pub dns: Option<std::net::SocketAddr>,
    config: PathBuf,
    database_url: Option<String>,
    process: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Node {
    /// `ccdir init` in a fresh directory; returns the node with its key.
    pub fn init(name: &str) -> Node {
        Self::init_on(name, None)
    }

    /// Like [`Node::init`], with the database at `database_url`.
    pub fn init_on(name: &str, database_url: Option<String>) -> Node {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("ccdir.toml");
        std::fs::write(&config, "").expect("config");
        let mut node = Node {
            name: name.into(),
            key: String::new(),
            url: String::new(),
            dns: None,
            config,
            database_url,
            process: None,
            log: Arc::new(Mutex::new(Vec::new())),
            dir,
        };
        let out = node.cli_ok(&["init"]);
        node.key = out
            .trim()
            .rsplit(' ')
            .next()
            .expect("init prints the node id")
            .to_owned();
        assert_eq!(node.key.len(), 64, "{out}");
        node
    }

    /// Writes the configuration file (TOML).
    pub fn configure(&self, toml: &str) {
        std::fs::write(&self.config, toml).expect("write config");
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--data-dir")
            .arg(self.dir.path())
            .arg("--config")
            .arg(&self.config)
            .env_remove("CCDIR_CONFIG")
            .env("RUST_LOG", "warn")
            // Every front end runs, each on a port of its own.
            .env("CCDIR_LDAP__LISTEN", "127.0.0.1:0")
            .env("CCDIR_LDAP__LDAPS_LISTEN", "127.0.0.1:0")
            .env("CCDIR_DNS__LISTEN", "127.0.0.1:0");
        if let Some(url) = &self.database_url {
            c.arg("--database-url").arg(url);
        }
        c
    }

    /// Runs a CLI command on this node's data directory.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run ccdir")
    }

    /// Runs a CLI command that must succeed; returns its standard output.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "{}: ccdir {args:?} failed: {}{}",
            self.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `ccdir serve` on port 0 and waits for the address it bound.
    pub fn start(&mut self) {
        assert!(self.process.is_none(), "{} already runs", self.name);
        let mut child = self
            .command()
            .args([
                "--log-format",
                "json",
                "serve",
                "--api-listen",
                "127.0.0.1:0",
            ])
            .env(
                "RUST_LOG",
                "warn,ccdir::app=info,ccdir::core::federation=info,ccdir::core::publication=info",
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ccdir serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Logged before the address is handed over, so that the
                // log holds the "listening" line once start() returns.
                let listening = serde_json::from_str::<Value>(&line)
                    .ok()
                    .filter(|v| v["message"] == "ccdir listening")
                    .and_then(|v| {
                        let rest = v["rest"].as_str()?.to_owned();
                        let dns = v["dns"]
                            .as_str()
                            .and_then(|d| d.split_whitespace().next())
                            .and_then(|u| u.strip_prefix("udp://"))
                            .and_then(|a| a.parse().ok());
                        Some((rest, dns))
                    });
                log.lock().expect("log").push(line);
                if let Some(rest) = listening {
                    let _ = tx.send(rest);
                }
            }
        });
        self.process = Some(child);
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok((url, dns)) => {
                self.url = url;
                self.dns = dns;
            }
            Err(_) => panic!("{} did not start: {}", self.name, self.log_text()),
        }
    }

    /// What the server logged so far.
    pub fn log_text(&self) -> String {
        self.log.lock().expect("log").join("\n")
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            let _ = p.kill();
            let _ = p.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            // SAFETY: signalling our own child process.
            unsafe { kill(p.id() as i32, 15) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = p.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = p.kill();
            let _ = p.wait();
        }
    }

    /// `ccdir federation status --json`.
    pub fn status(&self) -> Value {
        let out = self.cli_ok(&["federation", "status", "--json", "--rejections", "200"]);
        serde_json::from_str(&out).expect("status JSON")
    }

    /// This node's view of one child.
    pub fn child(&self, key: &str) -> Value {
        let s = self.status();
        s["children"]
            .as_array()
            .expect("children")
            .iter()
            .find(|c| c["key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("{} has no child {key}: {s:#}", self.name))
    }

    /// A node-admin token.
    pub fn token(&self) -> String {
        self.cli_ok(&["token", "issue", "--role", "node-admin"])
            .trim()
            .to_owned()
    }

    /// `ccdir delegate` here, for `child`, written to a file; returns its path.
    pub fn delegate(&self, child: &Node, domains: &[&str], expires: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{}.delegation", child.name));
        let mut args = vec!["delegate", "--child", &child.key, "--expires", expires];
        for d in domains {
            args.extend(["--domain", d]);
        }
        let p = path.to_str().expect("utf-8 path");
        args.extend(["-o", p]);
        self.cli_ok(&args);
        path
    }

    /// Installs a delegation file made by the parent.
    pub fn install(&self, file: &Path) {
        self.cli_ok(&["federation", "install", file.to_str().expect("utf-8")]);
    }

    /// Adds `child` (running) as a child of this node.
    pub fn add_child(&self, child: &Node) {
        self.cli_ok(&[
            "federation",
            "add-child",
            "--key",
            &child.key,
            "--url",
            &child.url,
            "--name",
            &child.name,
        ]);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

/// A federation section for tests: quick pulls and backoff, short timeouts.
pub fn fed_config(root_key: Option<&str>, parent: Option<&str>, extra: &str) -> String {
    let mut s = String::from("[federation]\n");
    if let Some(k) = root_key {
        s.push_str(&format!("root_key = \"{k}\"\n"));
    }
    if let Some(p) = parent {
        s.push_str(&format!("parent_url = \"{p}\"\n"));
    }
    s.push_str(
        "pull_interval_ms = 300\npublish_interval_ms = 300\nbackoff_initial_ms = 100\nbackoff_max_ms = 500\n",
    );
    s.push_str(extra);
    s
}

/// Polls `check` every 50 ms until it is true; panics after `limit`.
pub async fn wait_for<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An HTTP client for the tests.
pub fn http() -> reqwest::Client {
    ccdir::core::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// `GET url` as JSON (`Value::Null` on a non-success status).
pub async fn get(client: &reqwest::Client, url: &str, token: Option<&str>) -> Value {
    let mut r = client.get(url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let res = r.send().await.expect("GET");
    if !res.status().is_success() {
        return Value::Null;
    }
    res.json().await.expect("JSON")
}

/// Search results at `node` for `q` (anonymous unless a token is given).
pub async fn search(
    client: &reqwest::Client,
    node: &Node,
    q: &str,
    token: Option<&str>,
) -> Vec<Value> {
    let v = get(client, &format!("{}/api/v1/search?q={q}", node.url), token).await;
    v["results"].as_array().cloned().unwrap_or_default()
}

/// PUT an entry at `node`.
pub async fn put_entry(
    client: &reqwest::Client,
    node: &Node,
    token: &str,
    address: &str,
    body: Value,
) {
    let res = client
        .put(format!("{}/api/v1/entries/{address}", node.url))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("PUT");
    assert!(
        res.status().is_success(),
        "PUT {address}: {}",
        res.text().await.unwrap_or_default()
    );
}

/// DELETE an entry at `node`.
pub async fn delete_entry(client: &reqwest::Client, node: &Node, token: &str, address: &str) {
    let res = client
        .delete(format!("{}/api/v1/entries/{address}", node.url))
        .bearer_auth(token)
        .send()
        .await
        .expect("DELETE");
    assert!(res.status().is_success(), "DELETE {address}");
}

/// Waits until `node`'s search index has applied every change so far.
pub async fn index_caught_up(client: &reqwest::Client, node: &Node) {
    let head = get(client, &format!("{}/readyz", node.url), None).await["head"].clone();
    wait_for("the search index", Duration::from_secs(30), || async {
        let r = get(client, &format!("{}/readyz", node.url), None).await;
        r["indexed"].as_u64() >= head.as_u64()
    })
    .await;
}
