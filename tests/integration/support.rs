//! What the integration suites share: a real node on loopback port 0 with
//! its own data directory, real certificates from a throwaway CA, tokens.

use std::time::Duration;

use ccdir::app::{self, RunningNode};
use ccdir::config::Config;
use ccdir::domain::pem_certificate;
use ccdir::pki::NodeKey;
use ccdir::pki::ca::{CaSpec, CertAuthority, KeyPair, KeyType, LeafKey, LeafSpec, PublicKey};
use ccdir::pki::token::Role;
use chrono::{DateTime, Utc};
use tempfile::TempDir;

/// A node started for one test; dropped with the test.
pub struct TestNode {
    pub node: Option<RunningNode>,
    pub base: String,
    /// Kept so the data directory lives as long as the node.
    _dir: TempDir,
    pub http: reqwest::Client,
    /// A copy of the node's key, to forge and sign tokens in tests.
    pub key: NodeKey,
}

impl TestNode {
    /// A node on SQLite in a fresh temporary directory.
    pub async fn start() -> TestNode {
        Self::start_with(|_| {}).await
    }

    /// A node whose configuration `tweak` may change first.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestNode {
        ccdir::core::install_crypto_provider();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        config.api.listen = "127.0.0.1:0".parse().expect("addr");
        config.ldap.listen = "127.0.0.1:0".parse().expect("addr");
        config.ldap.ldaps_listen = "127.0.0.1:0".parse().expect("addr");
        let _ = rustls::crypto::ring::default_provider().install_default();
        config.dns.listen = "127.0.0.1:0".parse().expect("addr");
        tweak(&mut config);
        let key = NodeKey::generate(&mut rand::rng());
        let copy = NodeKey::from_pkcs8_pem(&key.to_pkcs8_pem().expect("pem")).expect("key");
        let node = app::start(&config, key).await.expect("node starts");
        TestNode {
            base: format!("http://{}", node.api_addr),
            node: Some(node),
            _dir: dir,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            key: copy,
        }
    }

    pub fn directory(&self) -> &ccdir::core::Directory {
        &self.node.as_ref().expect("running").directory
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The node's `/metrics` page.
    pub async fn metrics(&self) -> String {
        metrics_text(&self.http, &self.base).await
    }

    pub fn token(&self, role: Role, org: Option<&str>) -> String {
        let org = org.map(|o| o.parse().expect("org id"));
        self.directory()
            .issue_token(role, org.as_ref(), "test", Duration::from_secs(600))
            .expect("token")
    }

    pub fn admin(&self) -> String {
        self.token(Role::NodeAdmin, None)
    }

    /// Waits until the search index has caught up with every write so far.
    pub async fn indexed(&self) {
        let head = self.directory().readiness().await.expect("ready").head;
        self.directory().wait_indexed(head).await;
    }

    pub async fn stop(mut self) {
        if let Some(node) = self.node.take() {
            node.stop().await;
        }
    }
}

/// A root and an issuing CA, and a reusable leaf key.
pub struct TestPki {
    pub root: CertAuthority,
    pub issuing: CertAuthority,
    pub leaf_key: PublicKey,
}

impl TestPki {
    pub fn new(name: &str) -> TestPki {
        let mut rng = rand::rng();
        let now = Utc::now();
        let spec = |cn: String, key_type, path_len| CaSpec {
            common_name: cn,
            organization: Some("ccdir tests".into()),
            key_type,
            path_len,
            not_before: now - chrono::Duration::days(10),
            not_after: now + chrono::Duration::days(3650),
        };
        let root = CertAuthority::new_root(
            &spec(format!("{name} Root"), KeyType::EcdsaP256, Some(1)),
            &mut rng,
        )
        .expect("root");
        let issuing = root
            .issue_intermediate(
                &spec(format!("{name} Issuing"), KeyType::EcdsaP384, Some(0)),
                &mut rng,
            )
            .expect("intermediate");
        let leaf_key = KeyPair::generate(KeyType::EcdsaP256, &mut rng)
            .expect("key")
            .public_key()
            .expect("public");
        TestPki {
            root,
            issuing,
            leaf_key,
        }
    }

    pub fn root_pem(&self) -> String {
        pem_certificate(self.root.cert_der())
    }

    pub fn issuing_der(&self) -> Vec<u8> {
        self.issuing.cert_der().to_vec()
    }

    /// DER of a leaf for `email` (or a domain-bound one for `dns`).
    pub fn leaf(
        &self,
        email: Option<&str>,
        dns: Option<&str>,
        not_before: DateTime<Utc>,
        not_after: DateTime<Utc>,
    ) -> Vec<u8> {
        let spec = LeafSpec {
            subject_cn: email.or(dns).unwrap_or("test").to_owned(),
            email: email.map(str::to_owned),
            dns: dns.map(str::to_owned),
            not_before,
            not_after,
            policies: vec!["2.16.840.1.101.3.2.1.3.3".into()],
            key: LeafKey::Existing(self.leaf_key.clone()),
        };
        self.issuing
            .issue_leaf(&spec, &mut rand::rng())
            .expect("leaf")
            .cert_der
    }

    /// A currently valid leaf for `email`.
    pub fn valid_leaf(&self, email: &str) -> Vec<u8> {
        let now = Utc::now();
        self.leaf(
            Some(email),
            None,
            now - chrono::Duration::days(1),
            now + chrono::Duration::days(365),
        )
    }
}

/// The PostgreSQL server to test against, or `None` to skip; panics when
/// PostgreSQL is required (`CCDIR_REQUIRE_PG=1`) but not configured.
/// The `/metrics` page (Prometheus text) of the node at `base`.
pub async fn metrics_text(http: &reqwest::Client, base: &str) -> String {
    http.get(format!("{base}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text")
}

/// The value of the sample `series` (name and labels, exactly as
/// rendered) in a metrics page; panics, showing the page, when absent.
pub fn metric_value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
}

pub fn pg_url() -> Option<String> {
    match std::env::var("CCDIR_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("CCDIR_REQUIRE_PG").as_deref() == Ok("1") {
                panic!("CCDIR_REQUIRE_PG=1 but CCDIR_TEST_PG_URL is not set");
            }
            eprintln!("PostgreSQL test skipped: CCDIR_TEST_PG_URL is not set");
            None
        }
    }
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let server = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

/// A fresh PostgreSQL database for one test, dropped by [`PgDatabase::drop_now`]
/// (kept with `CCDIR_TEST_KEEP_DB=1`).
pub struct PgDatabase {
    pub url: String,
    name: String,
    admin_url: String,
}

impl PgDatabase {
    /// Creates `ccdir_<pid>_<n>_<test>`; `None` when PostgreSQL is not configured.
    pub async fn create(test_name: &str) -> Option<PgDatabase> {
        use sea_orm::ConnectionTrait;
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let admin_url = pg_url()?;
        let mut name = format!(
            "ccdir_{}_{}_{test_name}",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        name.truncate(63);
        let admin = sea_orm::Database::connect(&admin_url)
            .await
            .expect("connect");
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create database");
        admin.close().await.expect("close");
        Some(PgDatabase {
            url: with_database(&admin_url, &name),
            name,
            admin_url,
        })
    }

    /// Drops the database (unless `CCDIR_TEST_KEEP_DB` is set).
    pub async fn drop_now(self) {
        use sea_orm::ConnectionTrait;
        if std::env::var_os("CCDIR_TEST_KEEP_DB").is_some() {
            eprintln!("kept database {}", self.name);
            return;
        }
        let admin = sea_orm::Database::connect(&self.admin_url)
            .await
            .expect("connect");
        admin
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .await
            .expect("drop database");
    }
}
