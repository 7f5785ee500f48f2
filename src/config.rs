//! Configuration is data: serde structs with defaults, read in layers —
//! built-in defaults < TOML file (`--config` / `CCDIR_CONFIG`) < `CCDIR_*`
//! environment < command-line flags. Nested keys use `__` in the
//! environment (`CCDIR_API__LISTEN=0.0.0.0:8080`), and any key may be read
//! from a file by appending `_FILE` (`CCDIR_DATABASE_URL_FILE=/run/secrets/db`),
//! for secrets. Every key is documented in `deploy/ccdir.example.toml`, which
//! a test parses.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

mod federation;

pub use federation::{ChildConfig, FederationConfig};

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
    pub federation: FederationConfig,
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
            federation: FederationConfig::default(),
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
    /// Memory the index writer may use, in megabytes (bulk imports go faster with more).
    pub writer_memory_mb: usize,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            index_dir: PathBuf::from("index"),
            default_limit: 20,
            max_limit: 100,
            writer_memory_mb: 128,
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
            filter: "info".into(),
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
        if self.api.max_body_bytes < 1024 {
            return Err(ConfigError::Rule(
                "api.max_body_bytes must be at least 1024".into(),
            ));
        }
        self.federation.check().map_err(ConfigError::Rule)?;
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
