//! `ccdir bundle …`: trust bundles (DirectTrust-style anchor sets fetched
//! from a URL or a file and refreshed on an interval).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::parse_duration;

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Add a trust bundle and fetch it at once; its certificates become
    /// trust anchors and every stored certificate is re-judged.
    ///
    /// With --signer the bundle must be a CMS-signed .p7m whose signature
    /// verifies and whose signer is that certificate or one it issued.
    /// Without, a .p7b, PEM or DER bundle (or a .p7m's content) is taken
    /// as it is. The bundle stays defined when the first fetch fails;
    /// `bundle list` shows why.
    Add(BundleAddArgs),
    /// List the bundles: source, last refresh status, anchors in force.
    List,
    /// Fetch one bundle (or all) now. Exits with status 1 when a refresh
    /// fails (the bundle's previous anchors stay in force).
    Refresh {
        /// The bundle's name; all bundles when not given.
        name: Option<String>,
    },
    /// Remove a bundle; its anchors go, and every certificate is re-judged.
    Remove {
        /// The bundle's name.
        name: String,
    },
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["url", "file"])))]
pub struct BundleAddArgs {
    /// A name for the bundle (a-z, 0-9, '.', '_', '-').
    pub name: String,
    /// Fetch the bundle from this http:// or https:// URL.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Read the bundle from this file (made absolute).
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// The certificate (PEM or DER file) that must sign the bundle.
    #[arg(long, value_name = "CERT")]
    pub signer: Option<PathBuf>,
    /// How often to fetch it again, e.g. 12h, 1d (at least 60s; default 24h).
    #[arg(long, value_parser = parse_duration)]
    pub refresh: Option<std::time::Duration>,
}
