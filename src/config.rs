//! Configuration is data: serde structs with defaults, read in layers —
//! built-in defaults < TOML file (`--config` / `CCDIR_CONFIG`) < `CCDIR_*`
//! environment < command-line flags. Nested keys use `__` in the
//! environment (`CCDIR_API__LISTEN=0.0.0.0:8080`), and any key may be read
//! from a file by appending `_FILE` (`CCDIR_DATABASE_URL_FILE=/run/secrets/db`),
//! for secrets. Every key is documented in `deploy/ccdir.example.toml`, which
//! a test parses.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

mod bundles;
mod federation;
mod policy;

pub use bundles::{BundleConfig, BundlesConfig};
pub use federation::{ChildConfig, FederationConfig};
pub use policy::PolicyConfig;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Environment variables the configuration reads start with this.
pub const ENV_PREFIX: &str = "CCDIR_";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory for the SQLite database, the search index and the node key.
    /// Created on first use.
    pub data_dir: PathBuf,
    /// Database URL. Unset: the SQLite file `ccdir.db` in `data_dir`.
    /// `postgres://user:password@host:5432/ccdir` selects PostgreSQL.
    pub database_url: Option<String>,
    pub node: NodeConfig,
    pub api: ApiConfig,
    pub search: SearchConfig,
    pub log: LogConfig,
    pub ldap: LdapConfig,
    pub dns: DnsConfig,
    pub federation: FederationConfig,
    pub policy: PolicyConfig,
    pub bundles: BundlesConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("ccdir-data"),
            database_url: None,
            node: NodeConfig::default(),
            api: ApiConfig::default(),
            search: SearchConfig::default(),
            log: LogConfig::default(),
            ldap: LdapConfig::default(),
            dns: DnsConfig::default(),
            federation: FederationConfig::default(),
            policy: PolicyConfig::default(),
            bundles: BundlesConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// A name for this node, shown in logs, metrics and `/readyz`.
    pub name: String,
    /// The node's ed25519 identity key (PKCS#8 PEM). Relative paths are
    /// under `data_dir`. `ccdir init` creates it with mode 0600.
    pub key_file: PathBuf,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            name: "ccdir".into(),
            key_file: PathBuf::from("node.key"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Where the REST API listens. Port 0 picks a free port (logged at start).
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    pub max_body_bytes: usize,
    /// Requests per second allowed per client IP address, sustained.
    pub rate_limit_per_second: u32,
    /// Requests a client may send in a burst above the sustained rate.
    pub rate_limit_burst: u32,
    /// Default lifetime of tokens from `ccdir token issue`, in seconds.
    pub token_ttl_seconds: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 1024 * 1024,
            rate_limit_per_second: 200,
            rate_limit_burst: 400,
            token_ttl_seconds: 30 * 24 * 3600,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// Directory of the search index. Relative paths are under `data_dir`.
    pub index_dir: PathBuf,
    /// Results per page when the client does not say.
    pub default_limit: usize,
    /// Most results per page a client may ask for.
    pub max_limit: usize,
    /// MiB of recently read entries (with their certificates) kept in
    /// memory for protocol lookups such as LDAP `mail=` searches; 0 turns
    /// the cache off.
    pub entry_cache_mb: u64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            index_dir: PathBuf::from("index"),
            default_limit: 20,
            max_limit: 100,
            entry_cache_mb: 256,
        }
    }
}

/// The LDAP front end (`[ldap]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LdapConfig {
    /// Serve LDAP at all.
    pub enabled: bool,
    /// Where plain LDAP (and StartTLS) listens. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Where LDAPS (TLS from the first byte) listens; used only when a
    /// certificate is configured.
    pub ldaps_listen: SocketAddr,
    /// The tree's base DN: organisations are `o=<id>,<base>`, entries
    /// `mail=<address>,o=<id>,<base>`.
    pub base_dn: String,
    /// Server certificate chain (PEM) for LDAPS and StartTLS; relative paths
    /// are under `data_dir`. `ccdir init --tls` makes a self-signed pair.
    pub tls_cert_file: Option<PathBuf>,
    /// The certificate's private key (PKCS#8, PKCS#1 or SEC1 PEM).
    pub tls_key_file: Option<PathBuf>,
    /// Most entries one search returns (and most per page when paging);
    /// clients may ask for fewer.
    pub size_limit: usize,
    /// Most seconds one search may take; clients may ask for less.
    pub time_limit_seconds: u64,
    /// Largest request message accepted, in bytes; a larger one closes the connection.
    pub max_message_bytes: usize,
    /// Seconds a connection may stay idle before the server closes it.
    pub idle_timeout_seconds: u64,
    /// Seconds a Simple Paged Results cookie stays valid.
    pub page_cookie_seconds: u64,
    /// Failed binds allowed per client IP address per minute, sustained.
    pub failed_binds_per_minute: u32,
    /// Failed binds a client may make in a burst before being slowed down.
    pub failed_binds_burst: u32,
    /// Most connections served at once; more are closed on accept.
    pub max_connections: usize,
}

impl Default for LdapConfig {
    fn default() -> Self {
        LdapConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 3389)),
            ldaps_listen: SocketAddr::from(([127, 0, 0, 1], 6636)),
            base_dn: "dc=ccdir".into(),
            tls_cert_file: None,
            tls_key_file: None,
            size_limit: 500,
            time_limit_seconds: 30,
            max_message_bytes: 64 * 1024,
            idle_timeout_seconds: 300,
            page_cookie_seconds: 600,
            failed_binds_per_minute: 10,
            failed_binds_burst: 5,
            max_connections: 4096,
        }
    }
}

impl LdapConfig {
    /// The certificate and key paths, resolved under `data_dir`, when both are set.
    pub fn tls_files(&self, data_dir: &Path) -> Option<(PathBuf, PathBuf)> {
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(c), Some(k)) => Some((data_dir.join(c), data_dir.join(k))),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter (`info`, `ccdir=debug,tantivy=warn`); `RUST_LOG` wins when set.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            filter: "info,sqlx=warn,sea_orm_migration=warn".into(),
        }
    }
}

/// The DNS front end: authoritative answers (CERT, SRV, SOA, NS, A/AAAA)
/// for the hosted zones, zone transfers to secondaries, NOTIFY.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Whether `serve` starts the DNS front end.
    pub enabled: bool,
    /// Where DNS listens, the same address for UDP and TCP. Port 0 picks a
    /// free port (the UDP and TCP ports may then differ; both are logged).
    pub listen: SocketAddr,
    /// EDNS(0) UDP payload size we advertise, and the largest UDP response
    /// we send (never more than the requester's own size, 512 without EDNS).
    pub edns_udp_size: u16,
    /// Threads answering UDP.
    pub udp_threads: usize,
    /// MiB of published certificates (DER) kept in memory for answers; the
    /// rest is read from the database when first asked for.
    pub certificate_cache_mb: usize,
    /// The publication view (`publication.view` in the data directory) is
    /// saved at stop and, while serving, again once this many changes
    /// were applied since the last save...
    pub save_view_after_changes: u64,
    /// ...and at least this many seconds have passed since it.
    pub save_view_interval_seconds: u64,
    /// A TCP connection that sends nothing for this long is closed.
    pub tcp_idle_timeout_seconds: u64,
    /// Most TCP connections served at once; more are closed at once.
    pub tcp_max_connections: usize,
    /// Response rate limit per source network (IPv4 /24, IPv6 /56) over UDP,
    /// responses per second; over it, answers are sent truncated (TC) so the
    /// client must come back over TCP. 0 turns the limit off.
    pub rrl_responses_per_second: u32,
    /// Responses a source network may send in a burst above the rate.
    pub rrl_burst: u32,
    /// Port of this node's LDAP listener, published as `_ldap._tcp` SRV in
    /// every zone (0: publish none).
    pub ldap_port: u16,
    /// Port of this node's LDAPS listener, published as `_ldaps._tcp` SRV (0: none).
    pub ldaps_port: u16,
    /// With no `zones` configured, host one zone per organisation domain
    /// (defaults for every zone field, hosts `ns` and `ldap` at the listen
    /// address, or 127.0.0.1 when it is unspecified). Handy with `serve --demo`.
    pub zones_from_organisations: bool,
    /// TSIG key for zone transfers (optional): when set, AXFR needs a
    /// request signed with it, from an allowed address.
    pub tsig: Option<TsigConfig>,
    /// The hosted zones.
    pub zones: Vec<ZoneConfig>,
    /// The zone answering fair-play policy lookups DNSBL style
    /// (`<key>.<policy>.<zone>`, see docs/policies.md); empty: none.
    pub policy_zone: String,
    /// TTL of policy answers, positive and negative (short: listings change).
    pub policy_ttl: u32,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 5353)),
            edns_udp_size: 1232,
            udp_threads: 2,
            certificate_cache_mb: 256,
            // As `SavePlan::AFTER_CHANGES` and `INTERVAL` (a test in dns/ checks).
            save_view_after_changes: 100_000,
            save_view_interval_seconds: 60,
            tcp_idle_timeout_seconds: 10,
            tcp_max_connections: 512,
            rrl_responses_per_second: 100,
            rrl_burst: 200,
            ldap_port: 3389,
            ldaps_port: 6636,
            zones_from_organisations: true,
            tsig: None,
            zones: Vec::new(),
            policy_zone: String::new(),
            policy_ttl: 60,
        }
    }
}

/// A TSIG key (RFC 8945), HMAC-SHA256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsigConfig {
    /// The key's name, as the secondary knows it (`transfer-key.`).
    pub name: String,
    /// The shared secret, base64 (e.g. from `tsig-keygen` or `keymgr -t`).
    /// Prefer `CCDIR_DNS__TSIG__SECRET_FILE`.
    pub secret: String,
}

/// One hosted zone. Names without a trailing dot are relative to the zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZoneConfig {
    /// The zone's apex, e.g. `cardio.example.org`.
    pub name: String,
    /// Name servers (NS records at the apex).
    pub ns: Vec<String>,
    /// SOA MNAME, the primary; empty: the first `ns`.
    pub mname: String,
    /// SOA RNAME, the responsible mailbox in DNS form (`hostmaster` = hostmaster@zone).
    pub rname: String,
    /// SOA timers in seconds: refresh, retry, expire, and minimum (the
    /// negative-caching TTL, RFC 2308).
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    pub minimum: u32,
    /// TTL of the SOA and NS records.
    pub soa_ttl: u32,
    /// TTL of CERT, SRV, A and AAAA records.
    pub ttl: u32,
    /// Address records for host names in the zone (the name servers, the LDAP host).
    pub hosts: Vec<HostConfig>,
    /// The `_ldap._tcp` / `_ldaps._tcp` SRV target; empty: no SRV records.
    pub ldap_target: String,
    /// Addresses (or networks, `192.0.2.0/24`) allowed to transfer the zone
    /// (AXFR, over TCP). Empty: nobody.
    pub allow_transfer: Vec<String>,
    /// Secondaries sent a NOTIFY when the zone changes (`192.0.2.7:53`).
    pub also_notify: Vec<SocketAddr>,
}

impl Default for ZoneConfig {
    fn default() -> Self {
        ZoneConfig {
            name: String::new(),
            ns: vec!["ns".into()],
            mname: String::new(),
            rname: "hostmaster".into(),
            refresh: 3600,
            retry: 600,
            expire: 1_209_600,
            minimum: 300,
            soa_ttl: 3600,
            ttl: 3600,
            hosts: Vec::new(),
            ldap_target: "ldap".into(),
            allow_transfer: Vec::new(),
            also_notify: Vec::new(),
        }
    }
}

/// A host name in a zone and its addresses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostConfig {
    /// Relative (`ns`, `ldap`, `@` for the apex) or absolute with a trailing dot.
    pub name: String,
    pub a: Vec<std::net::Ipv4Addr>,
    pub aaaa: Vec<std::net::Ipv6Addr>,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            name: "@".into(),
            a: Vec::new(),
            aaaa: Vec::new(),
        }
    }
}

/// Values given as command-line flags; `None` leaves the lower layers alone.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_listen: Option<SocketAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    Missing(PathBuf),
    #[error("cannot read {var}: {source}")]
    SecretFile {
        var: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(#[from] Box<figment::Error>),
    #[error("invalid configuration: {0}")]
    Rule(String),
}

impl Config {
    /// Reads the layers in order. `file` is the TOML file, if any.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(file, &vars, overrides)
    }

    /// [`Config::load`] with the environment given, for tests.
    pub fn load_from(
        file: Option<&Path>,
        env: &[(String, String)],
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Missing(path.to_owned()));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let known = known_top_level_keys();
        // Only our keys: CCDIR_CONFIG and test variables are not configuration.
        let ours = |key: &str| {
            let key = key.to_ascii_lowercase();
            let first = key.split("__").next().unwrap_or_default().to_owned();
            known.contains(&first)
        };
        for (name, value) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if let Some(key) = rest.strip_suffix("_FILE").filter(|k| ours(k)) {
                let secret =
                    std::fs::read_to_string(value).map_err(|source| ConfigError::SecretFile {
                        var: name.clone(),
                        source,
                    })?;
                let path = key.to_ascii_lowercase().replace("__", ".");
                figment = figment.merge(Serialized::default(&path, secret.trim_end()));
            } else if ours(rest) {
                let path = rest.to_ascii_lowercase().replace("__", ".");
                figment = figment.merge(Serialized::default(&path, env_value(value)));
            }
        }
        figment = figment.merge(Serialized::defaults(FlagLayer::from(overrides)));
        let config: Config = figment.extract().map_err(Box::new)?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.search.default_limit == 0 || self.search.default_limit > self.search.max_limit {
            return Err(ConfigError::Rule(
                "search.default_limit must be between 1 and search.max_limit".into(),
            ));
        }
        if self.api.rate_limit_per_second == 0 || self.api.rate_limit_burst == 0 {
            return Err(ConfigError::Rule(
                "api.rate_limit_per_second and api.rate_limit_burst must be positive".into(),
            ));
        }
        if self.ldap.tls_cert_file.is_some() != self.ldap.tls_key_file.is_some() {
            return Err(ConfigError::Rule(
                "ldap.tls_cert_file and ldap.tls_key_file go together".into(),
            ));
        }
        if self.ldap.size_limit == 0 || self.ldap.max_message_bytes < 1024 {
            return Err(ConfigError::Rule(
                "ldap.size_limit must be positive and ldap.max_message_bytes at least 1024".into(),
            ));
        }
        if self.ldap.failed_binds_per_minute == 0 || self.ldap.failed_binds_burst == 0 {
            return Err(ConfigError::Rule(
                "ldap.failed_binds_per_minute and ldap.failed_binds_burst must be positive".into(),
            ));
        }
        if self.dns.edns_udp_size < 512 || self.dns.udp_threads == 0 {
            return Err(ConfigError::Rule(
                "dns.edns_udp_size must be at least 512 and dns.udp_threads positive".into(),
            ));
        }
        if self.api.max_body_bytes < 1024 {
            return Err(ConfigError::Rule(
                "api.max_body_bytes must be at least 1024".into(),
            ));
        }
        self.federation.check().map_err(ConfigError::Rule)?;
        self.bundles.check().map_err(ConfigError::Rule)?;
        Ok(())
    }

    /// The database URL in effect: the configured one, or the SQLite file in `data_dir`.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) if !url.is_empty() => url.clone(),
            _ => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("ccdir.db").display()
            ),
        }
    }

    pub fn key_path(&self) -> PathBuf {
        self.data_dir.join(&self.node.key_file)
    }

    pub fn index_path(&self) -> PathBuf {
        self.data_dir.join(&self.search.index_dir)
    }
}

/// Environment values are strings; numbers and booleans are typed so that
/// `CCDIR_API__MAX_BODY_BYTES=2048` reads as a number.
fn env_value(value: &str) -> figment::value::Value {
    use figment::value::Value;
    if let Ok(n) = value.parse::<u64>() {
        return Value::from(n);
    }
    match value {
        "true" => Value::from(true),
        "false" => Value::from(false),
        _ => Value::from(value.to_owned()),
    }
}

fn known_top_level_keys() -> Vec<String> {
    match serde_json::to_value(Config::default()) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Flags in the shape of the configuration tree.
#[derive(Serialize)]
struct FlagLayer {
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api: Option<ListenLayer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log: Option<LogLayer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dns: Option<ListenLayer>,
}

#[derive(Serialize)]
struct ListenLayer {
    listen: SocketAddr,
}

#[derive(Serialize)]
struct LogLayer {
    format: LogFormat,
}

impl From<&Overrides> for FlagLayer {
    fn from(o: &Overrides) -> Self {
        FlagLayer {
            data_dir: o.data_dir.clone(),
            database_url: o.database_url.clone(),
            api: o.api_listen.map(|listen| ListenLayer { listen }),
            log: o.log_format.map(|format| LogLayer { format }),
            dns: o.dns_listen.map(|listen| ListenLayer { listen }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn zero_config_works() {
        let c = Config::load_from(None, &[], &Overrides::default()).unwrap();
        assert_eq!(c, Config::default());
        assert!(
            c.effective_database_url()
                .starts_with("sqlite://ccdir-data/ccdir.db")
        );
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "data_dir = \"/from/file\"\n[api]\nlisten = \"127.0.0.1:1\"\nmax_body_bytes = 4096\n",
        )
        .unwrap();
        let secret = dir.path().join("db");
        std::fs::write(&secret, "postgres://u:p@h/db\n").unwrap();
        let vars = env(&[
            ("CCDIR_API__LISTEN", "127.0.0.1:2"),
            ("CCDIR_DATABASE_URL_FILE", secret.to_str().unwrap()),
            ("CCDIR_TEST_PG_URL", "ignored: not a config key"),
            ("CCDIR_CONFIG", "ignored too"),
        ]);
        let flags = Overrides {
            data_dir: Some("/from/flag".into()),
            ..Default::default()
        };
        let c = Config::load_from(Some(&file), &vars, &flags).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(c.api.listen, "127.0.0.1:2".parse().unwrap());
        assert_eq!(c.api.max_body_bytes, 4096);
        assert_eq!(c.database_url.as_deref(), Some("postgres://u:p@h/db"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[api]\nlisen = \"127.0.0.1:1\"\n").unwrap();
        let err = Config::load_from(Some(&file), &[], &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
        let err = Config::load_from(
            None,
            &env(&[("CCDIR_API__LISTEN", "not-an-address")]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");
        assert!(matches!(
            Config::load_from(
                Some(Path::new("/nonexistent.toml")),
                &[],
                &Overrides::default()
            ),
            Err(ConfigError::Missing(_))
        ));
    }

    /// `deploy/ccdir.example.toml` parses, and documents every key there is.
    #[test]
    fn example_config_parses_and_is_complete() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/ccdir.example.toml");
        Config::load_from(Some(&path), &[], &Overrides::default()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let example: toml::Table = text.parse().unwrap();
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        fn missing(defaults: &toml::Table, example: &toml::Table, at: &str, out: &mut Vec<String>) {
            for (k, v) in defaults {
                let path = format!("{at}{k}");
                match (v, example.get(k)) {
                    (toml::Value::Table(d), Some(toml::Value::Table(e))) => {
                        missing(d, e, &format!("{path}."), out)
                    }
                    (_, None) => out.push(path),
                    _ => {}
                }
            }
        }
        let mut absent = Vec::new();
        missing(&defaults, &example, "", &mut absent);
        // database_url defaults to None, which TOML cannot show; it is documented commented out.
        absent.retain(|k| !text.contains(&format!("# {k} =")));
        assert!(
            absent.is_empty(),
            "keys missing from the example: {absent:?}"
        );
    }
}
