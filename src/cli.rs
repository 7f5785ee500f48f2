//! The command line: what a user can ask of `ccdir`, with help that
//! explains. Each command hands over to [`crate::app`].

mod bundles;
mod federation;
mod policy;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{LogFormat, Overrides};
use crate::formats::Format;

pub use bundles::{BundleAddArgs, BundleCommand};
pub use federation::{
    AddChildArgs, BenchFederationArgs, DelegateArgs, FederationCommand, InstallArgs, ResumeArgs,
    StatusArgs, VerifyArgs,
};
pub use policy::{
    CheckArgs, CreateArgs, DelistArgs, ListArgs, OwnerFiles, PolicyCommand, SubmitArgs,
};

/// ccdir: a federated directory of S/MIME certificates.
///
/// Runs an organisation's certificate directory (REST, and later LDAP and
/// DNS front ends) on SQLite with zero configuration, or on PostgreSQL.
/// Start with `ccdir serve --demo` to see it with demo data.
#[derive(Debug, Parser)]
#[command(
    name = "ccdir",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// TOML configuration file (see deploy/ccdir.example.toml).
    #[arg(long, short = 'c', env = "CCDIR_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory (database, index, node key). Default: ./ccdir-data,
    /// or ./ccdir-demo with `serve --demo`.
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL, e.g. postgres://ccdir@localhost/ccdir. Default: SQLite in the data directory.
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Log format.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
}

impl GlobalArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            api_listen: None,
            log_format: self.log_format,
            dns_listen: None,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the node: REST API (and every other front end configured).
    ///
    /// Logs one line with every bound address. Stops cleanly on Ctrl-C / SIGTERM.
    Serve(ServeArgs),
    /// Create the data directory, the database and the node's ed25519 key (mode 0600).
    Init(InitArgs),
    /// Import organisations, entries and their certificates from a file.
    ///
    /// Formats: JSON lines (.jsonl), CSV (.csv) and LDIF (.ldif); see the
    /// README. Bad rows are reported with their line number and reason and
    /// skipped, unless --strict, which aborts with nothing written.
    Import(ImportArgs),
    /// Export organisations and entries (with certificates) as JSON lines or LDIF.
    Export(ExportArgs),
    /// Rebuild the search index from the database.
    Reindex,
    /// Issue API tokens signed by the node key.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Write the OpenAPI document of the REST API.
    Openapi(OpenapiArgs),
    /// Load the demo directory described in seeds/ (organisations, people,
    /// certificates from a demo CA made now).
    Seed(SeedArgs),
    /// Benchmarks: make a synthetic directory, then measure import, search,
    /// memory and start-up on it (see BENCHMARKS.md).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Manage an organisation's users, who bind over LDAP as
    /// uid=<name>,o=<organisation>,<base DN> and see its internal entries.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage the node's trust anchors (every certificate's trust status is
    /// judged against them). Safe while a server runs on the same data:
    /// it picks the change up within a second.
    #[command(subcommand)]
    Anchor(AnchorCommand),
    /// Manage trust bundles: sets of anchors fetched from a URL or a file
    /// (.p7b, or a signed .p7m) and refreshed on an interval. Safe while a
    /// server runs on the same data.
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Grant a child node the right to publish for domains: prints a signed
    /// delegation file for `ccdir federation install` on the child.
    Delegate(DelegateArgs),
    /// Federation: status, installing a delegation, children, key rotation.
    #[command(subcommand)]
    Federation(FederationCommand),
    /// Fair-play policies: create one, sign list and de-list events offline,
    /// submit them to a node, check a subject.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Verify a node's log from scratch (signatures, hash chain, Merkle
    /// root, inclusion and consistency proofs), or the child logs this node
    /// mirrors.
    Verify(VerifyArgs),
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Write a synthetic directory with real certificates: entries.jsonl,
    /// anchor.pem and queries.txt.
    Generate {
        /// How many entries.
        #[arg(long, default_value_t = 100_000)]
        entries: usize,
        /// Output directory.
        #[arg(long, short = 'o')]
        output: PathBuf,
        /// Directory holding the seed description (for names). Default: ./seeds when it holds demo.toml, else the copy built into the binary.
        #[arg(long, value_name = "DIR")]
        seeds: Option<PathBuf>,
    },
    /// Import the generated directory into a fresh node and measure it.
    Run {
        /// Directory `bench generate` wrote.
        #[arg(long, short = 'i')]
        input: PathBuf,
        /// Fresh data directory to use (default: a new one inside the input directory).
        #[arg(long)]
        into: Option<PathBuf>,
        /// Times the query mix is run for the latency figures.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// The query mix of `queries.txt` in process against an existing node
    /// (`--data-dir`, e.g. the one `bench run --into` filled), with nothing
    /// else running: latency overall and by query class.
    Search {
        /// Directory `bench generate` wrote (for queries.txt).
        #[arg(long, short = 'i')]
        input: PathBuf,
        /// Times the query mix is run.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Root ingest of many organisation logs (records/s, wall and CPU),
    /// then leaf -> root search latency with notify. Prints Markdown.
    Federation(BenchFederationArgs),
    /// The cryptography alone per ingested record, on one core: ed25519
    /// verify, certificate parse and chain check, relay signing. The floor
    /// under `bench federation` and `bench run`. Prints Markdown.
    Crypto {
        /// Records to measure over.
        #[arg(long, default_value_t = 5_000)]
        records: usize,
    },
    /// How long the DNS publication view takes to load at start on an
    /// existing node (`--data-dir`): from the view a stopped server saved
    /// (saved first if there is none) and by scanning the database.
    View {
        /// Loads each way.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Policy feeds: many SSE and webhook subscribers on one node —
    /// delivery latency, sustained events/s, DNS policy lookups/s.
    Policy(crate::bench::policy::PolicyBenchArgs),
}

#[derive(Debug, Subcommand)]
pub enum AnchorCommand {
    /// Add the certificates in PEM, DER or certs-only PKCS#7 (.p7b) files as
    /// trust anchors, then re-judge every stored certificate.
    Add {
        /// Files holding one or more CA certificates.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List the trust anchors: SHA-256 fingerprint, subject, expiry, source.
    List,
    /// Remove a trust anchor by its SHA-256 fingerprint (64 hex digits),
    /// then re-judge every stored certificate.
    Remove {
        /// SHA-256 fingerprint of the anchor certificate.
        fingerprint: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user, or set a new password for an existing one.
    ///
    /// The password comes from --password-stdin (one line), the environment
    /// variable named by --password-env, or --password; never from a prompt.
    Add(UserAddArgs),
    /// Remove a user.
    Remove(UserArgs),
    /// List an organisation's users.
    List(UserListArgs),
}

#[derive(Debug, Args)]
pub struct UserArgs {
    /// Organisation id.
    #[arg(long)]
    pub org: String,
    /// User name (a-z, 0-9, '.', '_', '-').
    pub name: String,
}

#[derive(Debug, Args)]
pub struct UserAddArgs {
    #[command(flatten)]
    pub user: UserArgs,
    /// Read the password from the first line of standard input.
    #[arg(long, conflicts_with_all = ["password_env", "password"])]
    pub password_stdin: bool,
    /// Read the password from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with = "password")]
    pub password_env: Option<String>,
    /// The password itself (visible to other users of this machine: prefer the others).
    #[arg(long)]
    pub password: Option<String>,
}

#[derive(Debug, Args)]
pub struct UserListArgs {
    /// Organisation id.
    #[arg(long)]
    pub org: String,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Start with the demo directory from seeds/ (loaded if the database is empty).
    #[arg(long)]
    pub demo: bool,
    /// REST listen address (overrides api.listen).
    #[arg(long, value_name = "ADDR")]
    pub api_listen: Option<std::net::SocketAddr>,
    /// DNS listen address, UDP and TCP (overrides dns.listen).
    #[arg(long, value_name = "ADDR")]
    pub dns_listen: Option<std::net::SocketAddr>,
    /// Directory holding the seed description (for --demo). Default: ./seeds when it holds demo.toml, else the copy built into the binary.
    #[arg(long, value_name = "DIR")]
    pub seeds: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Replace an existing node key (the node gets a new identity; tokens it issued stop working).
    #[arg(long)]
    pub force_new_key: bool,
    /// Also write a self-signed TLS certificate and key for LDAPS and
    /// StartTLS (development only) as ldap-cert.pem / ldap-key.pem in the
    /// data directory, and print the [ldap] settings that use them.
    #[arg(long)]
    pub tls: bool,
    /// Host names (or IPv4 addresses) the TLS certificate is for.
    #[arg(long = "tls-name", value_name = "NAME", default_values = ["localhost", "127.0.0.1"])]
    pub tls_names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file to read; `-` reads standard input (give --format then).
    pub file: PathBuf,
    /// File format; guessed from the extension when not given.
    #[arg(long, short = 'f')]
    pub format: Option<Format>,
    /// Abort on the first bad row, writing nothing at all.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Output format.
    #[arg(long, short = 'f', default_value = "jsonl")]
    pub format: Format,
    /// Output file; standard output when not given.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// Base DN for LDIF output.
    #[arg(long, default_value = "dc=ccdir")]
    pub base_dn: String,
    /// Export something other than the entries.
    #[command(subcommand)]
    pub target: Option<ExportTarget>,
}

#[derive(Debug, Subcommand)]
pub enum ExportTarget {
    /// Write a hosted DNS zone as an RFC 1035 zone file (SOA, NS, A/AAAA,
    /// SRV and the CERT records published now), e.g. for a secondary.
    Zone(ExportZoneArgs),
}

#[derive(Debug, Args)]
pub struct ExportZoneArgs {
    /// The zone's name, e.g. cardio.example.org.
    pub name: String,
    /// Output file; standard output when not given.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a new bearer token (JWT, EdDSA) for the REST API.
    Issue(TokenIssueArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TokenRole {
    /// Everything on this node: organisations, trust anchors, all entries.
    NodeAdmin,
    /// One organisation's entries, including its internal ones (needs --org).
    OrgAdmin,
}

#[derive(Debug, Args)]
pub struct TokenIssueArgs {
    #[arg(long, value_enum)]
    pub role: TokenRole,
    /// Organisation id, for org-admin tokens.
    #[arg(long)]
    pub org: Option<String>,
    /// Who the token is for (shown in logs).
    #[arg(long, default_value = "admin")]
    pub subject: String,
    /// Lifetime, e.g. 3600s, 90m, 12h, 30d (default: api.token_ttl_seconds).
    #[arg(long, value_parser = parse_duration)]
    pub ttl: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
pub struct OpenapiArgs {
    /// Write here instead of standard output.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SeedArgs {
    /// Directory holding the seed description. Default: ./seeds when it holds demo.toml, else the copy built into the binary.
    #[arg(long, value_name = "DIR")]
    pub seeds: Option<PathBuf>,
}

/// Parses `90`, `90s`, `15m`, `12h`, `30d`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 90m or 12h"))?;
    let seconds = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("unknown unit {unit:?}: use s, m, h or d")),
    };
    if seconds == 0 {
        return Err("a duration must be positive".into());
    }
    Ok(std::time::Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90m").unwrap().as_secs(), 5400);
        assert_eq!(parse_duration("2d").unwrap().as_secs(), 172_800);
        assert_eq!(parse_duration("45").unwrap().as_secs(), 45);
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("1w").is_err());
    }
}
