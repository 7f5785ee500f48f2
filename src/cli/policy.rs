//! `ccdir policy …`: owning a fair-play policy (keys and events are signed
//! offline, on the owner's machine) and talking to a node about it.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// `ccdir policy …`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Create a policy: an owner key (made if the key file does not exist,
    /// mode 0600) and the signed create event, written to a new chain file.
    /// Nothing is sent: `ccdir policy submit` does that.
    Create(CreateArgs),
    /// Sign a list event (the subject is listed from now on) and append it
    /// to the chain file. Offline.
    List(ListArgs),
    /// Sign a de-list event (the subject is no longer listed) and append it
    /// to the chain file. Offline.
    Delist(DelistArgs),
    /// Send the chain file's events to a node (any node: the owner's
    /// signature is the authority). Events the node holds are skipped.
    Submit(SubmitArgs),
    /// Ask a node whether a subject is listed, with the signed event as evidence.
    Check(CheckArgs),
}

/// The owner's files.
#[derive(Debug, Args)]
pub struct OwnerFiles {
    /// The owner's Ed25519 key (PKCS#8 PEM). Default: <POLICY>.key here.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// The chain file: every event of the policy, one JSON line each.
    /// Default: <POLICY>.events.jsonl here.
    #[arg(long, value_name = "FILE")]
    pub chain: Option<PathBuf>,
}

/// `ccdir policy create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The policy's id: one DNS label (a-z, 0-9, inner '-'), e.g. direct-p1.
    pub policy: String,
    /// Listing vouches for a subject (allow list) instead of warning of it (deny list).
    #[arg(long)]
    pub allow_list: bool,
    /// A title for people.
    #[arg(long, default_value = "")]
    pub title: String,
    /// What the policy is for.
    #[arg(long, default_value = "")]
    pub description: String,
    #[command(flatten)]
    pub files: OwnerFiles,
}

/// `ccdir policy list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The policy's id.
    pub policy: String,
    /// cert:<sha256 hex>, addr:<address> or domain:<domain>.
    #[arg(long)]
    pub subject: String,
    /// Why (at most 1024 octets).
    #[arg(long)]
    pub reason: String,
    /// The listing lapses: a duration from now (30d, 12h) or an RFC 3339 time.
    #[arg(long, value_name = "WHEN")]
    pub expires: Option<String>,
    #[command(flatten)]
    pub files: OwnerFiles,
}

/// `ccdir policy delist`.
#[derive(Debug, Args)]
pub struct DelistArgs {
    /// The policy's id.
    pub policy: String,
    /// cert:<sha256 hex>, addr:<address> or domain:<domain>.
    #[arg(long)]
    pub subject: String,
    /// Why (at most 1024 octets).
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub files: OwnerFiles,
}

/// `ccdir policy submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The policy's id.
    pub policy: String,
    /// The node's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The chain file. Default: <POLICY>.events.jsonl here.
    #[arg(long, value_name = "FILE")]
    pub chain: Option<PathBuf>,
}

/// `ccdir policy check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// cert:<sha256 hex>, addr:<address> or domain:<domain>.
    #[arg(long)]
    pub subject: String,
    /// A policy to check (repeat for several); every policy when absent.
    #[arg(long = "policy", value_name = "POLICY")]
    pub policies: Vec<String>,
    /// The node's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
}
