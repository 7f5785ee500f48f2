//! The `[bundles]` section: trust bundles declared in the configuration,
//! and how every bundle is fetched and scheduled.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Shortest refresh interval, in seconds (the domain's `MIN_BUNDLE_REFRESH`;
/// configuration uses no other module, so the number is repeated here).
const MIN_REFRESH_SECONDS: u64 = 60;

/// Trust bundles: sets of anchors fetched from a URL or a file (`.p7b`, or
/// a signed `.p7m`) and refreshed on an interval. More can be added at run
/// time with `ccdir bundle add` or `POST /api/v1/bundles`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BundlesConfig {
    /// Time allowed to connect to a bundle's server, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Time allowed for a whole fetch, body included (and for reading a
    /// bundle file), in milliseconds; a source that stalls gets `timeout`.
    pub fetch_timeout_ms: u64,
    /// After a failed refresh the bundle is tried again after this many
    /// seconds (or after its own interval, when that is shorter).
    pub retry_interval_seconds: u64,
    /// How often `serve` looks for bundles that are due, in milliseconds.
    pub check_interval_ms: u64,
    /// Bundles declared here; `serve` adds or updates them at start, and
    /// removes a declared bundle once it is no longer listed.
    pub declared: Vec<BundleConfig>,
}

/// One declared bundle: `url` or `file`, not both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleConfig {
    /// The bundle's name (a-z, 0-9, '.', '_', '-'), as the CLI and API show it.
    pub name: String,
    /// Fetch from this http:// or https:// URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Or read this file (absolute, or relative to `data_dir`).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Certificate (PEM or DER file; relative to `data_dir`) that must sign
    /// the bundle, which must then be a CMS-signed `.p7m`. Unset: unsigned
    /// bundles are accepted.
    #[serde(default)]
    pub signer: Option<PathBuf>,
    /// How often the bundle is fetched again, in seconds (at least 60).
    #[serde(default = "default_refresh")]
    pub refresh_seconds: u64,
}

fn default_refresh() -> u64 {
    24 * 3600
}

impl Default for BundlesConfig {
    fn default() -> Self {
        BundlesConfig {
            connect_timeout_ms: 10_000,
            fetch_timeout_ms: 60_000,
            retry_interval_seconds: 900,
            check_interval_ms: 30_000,
            declared: Vec::new(),
        }
    }
}

impl BundlesConfig {
    /// The rules the section must meet.
    pub fn check(&self) -> Result<(), String> {
        let times = [
            self.connect_timeout_ms,
            self.fetch_timeout_ms,
            self.retry_interval_seconds,
            self.check_interval_ms,
        ];
        if times.contains(&0) {
            return Err("bundles intervals and timeouts must be positive".into());
        }
        // Names and URLs are read in full when `serve` starts (app::bundles).
        let mut names = std::collections::HashSet::new();
        for b in &self.declared {
            if !names.insert(b.name.to_ascii_lowercase()) {
                return Err(format!("bundles.declared: {:?} is declared twice", b.name));
            }
            if b.url.is_some() == b.file.is_some() {
                return Err(format!(
                    "bundles.declared {:?}: give exactly one of url and file",
                    b.name
                ));
            }
            if let Some(url) = &b.url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err(format!(
                    "bundles.declared {:?}: {url:?} is not an http:// or https:// URL",
                    b.name
                ));
            }
            if b.refresh_seconds < MIN_REFRESH_SECONDS {
                return Err(format!(
                    "bundles.declared {:?}: refresh_seconds must be at least {MIN_REFRESH_SECONDS}",
                    b.name
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(f: impl FnOnce(&mut BundleConfig)) -> BundlesConfig {
        let mut b = BundleConfig {
            name: "directtrust".into(),
            url: Some("https://bundles.example.org/dt.p7m".into()),
            file: None,
            signer: None,
            refresh_seconds: 3600,
        };
        f(&mut b);
        BundlesConfig {
            declared: vec![b],
            ..BundlesConfig::default()
        }
    }

    #[test]
    fn declared_bundles_are_checked() {
        assert!(one(|_| {}).check().is_ok());
        assert!(one(|b| b.file = Some("/x.p7b".into())).check().is_err());
        assert!(one(|b| b.url = Some("ftp://x/y".into())).check().is_err());
        assert!(one(|b| b.refresh_seconds = 5).check().is_err());
        let mut twice = one(|_| {});
        twice.declared.push(twice.declared[0].clone());
        assert!(twice.check().is_err());
        let file = one(|b| {
            b.url = None;
            b.file = Some("bundles/dt.p7b".into());
        });
        assert!(file.check().is_ok());
    }
}
