//! The federation commands: `delegate`, `federation …` and `verify`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// `ccdir delegate`.
#[derive(Debug, Args)]
pub struct DelegateArgs {
    /// The child's node key (64 hex digits, as its `ccdir init` printed).
    #[arg(long, value_name = "KEY")]
    pub child: String,
    /// A domain the child may publish for (and everything below it). Repeat for more.
    #[arg(long = "domain", value_name = "DOMAIN", required = true)]
    pub domains: Vec<String>,
    /// When the delegation ends: a duration from now (90d, 12h) or an RFC 3339 time.
    #[arg(long, value_name = "WHEN", default_value = "365d")]
    pub expires: String,
    /// Write the delegation file here instead of standard output.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

/// `ccdir federation …`.
#[derive(Debug, Subcommand)]
pub enum FederationCommand {
    /// Show this node's log, its delegation, each child's cursor, last
    /// pull, lag and state, and the latest rejected or quarantined records
    /// with their reasons.
    Status(StatusArgs),
    /// Install a delegation file from `ccdir delegate` run on the parent:
    /// checks the chain from the pinned root to this node and publishes it.
    Install(InstallArgs),
    /// Pull a child node's log (it must hold a delegation from this node,
    /// directly or further down).
    AddChild(AddChildArgs),
    /// Resume pulling a child that was stopped after a fork or rollback.
    Resume(ResumeArgs),
    /// Replace this node's signing key: the current key signs a
    /// key-rotation record naming the new one. Stop the server first.
    RotateKey,
}

/// `ccdir federation status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// How many of the latest rejections to show.
    #[arg(long, default_value_t = 20)]
    pub rejections: u64,
}

/// `ccdir federation install`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The delegation file (`-` for standard input).
    pub file: PathBuf,
}

/// `ccdir federation add-child`.
#[derive(Debug, Args)]
pub struct AddChildArgs {
    /// The child's node key.
    #[arg(long, value_name = "KEY")]
    pub key: String,
    /// The child's base URL.
    #[arg(long)]
    pub url: String,
    /// A name for people.
    #[arg(long)]
    pub name: Option<String>,
}

/// `ccdir federation resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The child's node key.
    #[arg(long, value_name = "KEY")]
    pub child: String,
}

/// `ccdir verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Verify the log served at this base URL (e.g. the root's).
    #[arg(long, conflicts_with = "mirrors", required_unless_present = "mirrors")]
    pub url: Option<String>,
    /// Verify the child logs mirrored in this node's database instead.
    #[arg(long)]
    pub mirrors: bool,
    /// The key the log must belong to (default: federation.root_key).
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// Inclusion proofs to fetch and check, spread over the log.
    #[arg(long, default_value_t = 16)]
    pub proofs: u64,
    /// A tree size seen earlier that the log must be consistent with
    /// (with --previous-root).
    #[arg(long, requires = "previous_root")]
    pub previous_size: Option<u64>,
    /// The Merkle root of that earlier tree (hex).
    #[arg(long, requires = "previous_size")]
    pub previous_root: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `ccdir bench federation`.
#[derive(Debug, Args)]
pub struct BenchFederationArgs {
    /// Organisation nodes.
    #[arg(long, default_value_t = 100)]
    pub orgs: usize,
    /// Entries each organisation publishes.
    #[arg(long, default_value_t = 10_000)]
    pub per_org: usize,
    /// Records per page the root asks for.
    #[arg(long, default_value_t = 500)]
    pub page_size: u64,
    /// Publish entries without certificates.
    #[arg(long)]
    pub no_certificates: bool,
    /// Latency samples.
    #[arg(long, default_value_t = 200)]
    pub samples: usize,
    /// Keep the nodes' data here (default: a temporary directory, removed after).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
}
