//! Assembles and starts everything: configuration, the node key, the
//! directory and the front ends; and carries out each CLI command.

mod bundles;
mod federation;
mod policy;
mod workers;

use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use tracing::{info, warn};

use crate::api;
use crate::cli::{
    AnchorCommand, BenchCommand, Cli, Command, ExportArgs, ExportTarget, ExportZoneArgs,
    ImportArgs, SeedArgs, ServeArgs, TokenCommand, TokenRole, UserCommand,
};
use crate::config::Config;
use crate::core::{
    Directory, DirectoryOptions, ExportItem, ImportOptions, ImportProgress, IndexMode, SearchLimits,
};
use crate::domain::{Caller, OrgId, SystemClock};
use crate::formats::{self, Format, LdifTree};
use crate::pki::NodeKey;
use crate::pki::token::Role;
use crate::telemetry::{self, Metrics};

pub use workers::init_worker_pool;

/// Runs one command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut overrides = cli.global.overrides();
    if let Command::Serve(args) = &cli.command {
        overrides.api_listen = args.api_listen;
        overrides.dns_listen = args.dns_listen;
    }
    let mut config = Config::load(cli.global.config.as_deref(), &overrides)?;
    if let Command::Serve(ServeArgs { demo: true, .. }) = &cli.command
        && cli.global.data_dir.is_none()
        && config.data_dir == Config::default().data_dir
    {
        // Keep demo data apart from a real directory.
        config.data_dir = PathBuf::from("ccdir-demo");
    }
    if let Command::Serve(ServeArgs { demo: true, .. }) = &cli.command
        && config.dns.policy_zone.is_empty()
    {
        // The demo answers policy lookups too.
        config.dns.policy_zone = "bl.ccdir.test".into();
    }
    telemetry::init_logging(&config.log);
    match cli.command {
        Command::Serve(args) => serve(config, args).await,
        Command::Init(args) => {
            init(&config, args.force_new_key).await?;
            if args.tls {
                init_tls(&config, &args.tls_names)?;
            }
            Ok(())
        }
        Command::User(command) => user(config, command).await,
        Command::Anchor(command) => anchor(config, command).await,
        Command::Bundle(command) => bundles::command(config, command).await,
        Command::Import(args) => import(config, args).await,
        Command::Export(args) => export(config, args).await,
        Command::Reindex => reindex(config).await,
        Command::Token(TokenCommand::Issue(args)) => {
            let key = load_key(&config)?;
            let role = match args.role {
                TokenRole::NodeAdmin => Role::NodeAdmin,
                TokenRole::OrgAdmin => Role::OrgAdmin,
            };
            let org: Option<OrgId> = args.org.as_deref().map(str::parse).transpose()?;
            let ttl = args
                .ttl
                .unwrap_or(Duration::from_secs(config.api.token_ttl_seconds));
            let token = crate::core::issue_token(
                &key,
                role,
                org.as_ref(),
                &args.subject,
                ttl,
                chrono::Utc::now(),
            )?;
            println!("{token}");
            Ok(())
        }
        Command::Openapi(args) => {
            let doc = api::openapi_json();
            match args.output {
                Some(path) => std::fs::write(&path, doc)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => print!("{doc}"),
            }
            Ok(())
        }
        Command::Seed(args) => seed(config, args).await,
        Command::Bench(BenchCommand::Generate {
            entries,
            output,
            seeds,
        }) => {
            let seeds = crate::seed::Seeds::locate(seeds.as_deref());
            tokio::task::spawn_blocking(move || crate::bench::generate(entries, &output, &seeds))
                .await?
        }
        Command::Bench(BenchCommand::Run {
            input,
            into,
            rounds,
        }) => crate::bench::run(&input, into, rounds).await,
        Command::Bench(BenchCommand::Search { input, rounds }) => {
            let key = load_key(&config)?;
            crate::bench::search(&config, key, &input, rounds).await
        }
        Command::Delegate(args) => federation::delegate(config, args).await,
        Command::Federation(command) => federation::command(config, command).await,
        Command::Verify(args) => federation::verify(config, args).await,
        Command::Policy(command) => policy::command(command).await,
        Command::Bench(BenchCommand::Federation(args)) => federation::bench(config, args).await,
        Command::Bench(BenchCommand::Crypto { records }) => {
            print!("{}", crate::bench::crypto::run(records)?);
            Ok(())
        }
        Command::Bench(BenchCommand::View { rounds }) => {
            let key = load_key(&config)?;
            crate::bench::view::run(&config, key, rounds).await
        }
        Command::Bench(BenchCommand::Policy(args)) => crate::bench::policy::run(args).await,
    }
}

/// Creates the data directory and returns the node key, creating it if needed.
fn ensure_key(config: &Config, force_new: bool) -> anyhow::Result<NodeKey> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    let path = config.key_path();
    if path.exists() && !force_new {
        return load_key(config);
    }
    if force_new && path.exists() {
        std::fs::remove_file(&path).with_context(|| format!("replacing {}", path.display()))?;
    }
    let key = NodeKey::generate(&mut rand::rng());
    key.save_pem(&path)
        .with_context(|| format!("writing the node key {}", path.display()))?;
    info!(path = %path.display(), node = %key.node_id(), "created the node key");
    Ok(key)
}

fn load_key(config: &Config) -> anyhow::Result<NodeKey> {
    let path = config.key_path();
    if !path.exists() {
        bail!("no node key at {}: run `ccdir init` first", path.display());
    }
    if crate::pki::permissions_too_open(&path) {
        warn!(path = %path.display(), "the node key is readable by others; chmod 600 it");
    }
    NodeKey::load_pem(&path).with_context(|| format!("reading the node key {}", path.display()))
}

/// Opens the directory as configured.
pub async fn open_directory(
    config: &Config,
    key: NodeKey,
    index: IndexMode,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Directory> {
    let directory = Directory::open(DirectoryOptions {
        database_url: config.effective_database_url(),
        index,
        node_key: key,
        clock: Arc::new(SystemClock),
        search: SearchLimits {
            default_limit: config.search.default_limit,
            max_limit: config.search.max_limit,
        },
        metrics,
        entry_cache_bytes: config.search.entry_cache_mb.saturating_mul(1 << 20),
    })
    .await
    .context("opening the directory")?;
    Ok(directory)
}

async fn init(config: &Config, force_new_key: bool) -> anyhow::Result<()> {
    let key = ensure_key(config, force_new_key)?;
    let node = key.node_id();
    let directory = open_directory(config, key, IndexMode::None, Metrics::new()).await?;
    println!(
        "initialised {} ({} database), node id {node}",
        config.data_dir.display(),
        directory.backend()
    );
    Ok(())
}

/// Writes a self-signed server certificate and key for the LDAP front end.
fn init_tls(config: &Config, names: &[String]) -> anyhow::Result<()> {
    let cert_path = config.data_dir.join("ldap-cert.pem");
    let key_path = config.data_dir.join("ldap-key.pem");
    if cert_path.exists() || key_path.exists() {
        println!(
            "{} or {} exists already; left as it is",
            cert_path.display(),
            key_path.display()
        );
    } else {
        let now = chrono::Utc::now();
        let issued = crate::pki::ca::self_signed_server(
            names,
            now - chrono::Duration::minutes(5),
            now + chrono::Duration::days(365),
            &mut rand::rng(),
        )?;
        std::fs::write(
            &cert_path,
            crate::pki::to_pem("CERTIFICATE", &[&issued.cert_der]),
        )
        .with_context(|| format!("writing {}", cert_path.display()))?;
        let key = issued.key_pem.unwrap_or_default();
        write_private(&key_path, key.as_bytes())
            .with_context(|| format!("writing {}", key_path.display()))?;
        println!(
            "wrote a self-signed TLS certificate for {} (valid one year)",
            names.join(", ")
        );
    }
    println!(
        "use it with:\n\n[ldap]\ntls_cert_file = \"ldap-cert.pem\"\ntls_key_file = \"ldap-key.pem\""
    );
    Ok(())
}

/// Writes a file only its owner may read.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

/// `ccdir anchor add|list|remove`.
async fn anchor(config: Config, command: AnchorCommand) -> anyhow::Result<()> {
    let key = load_key(&config)?;
    let directory = open_directory(&config, key, IndexMode::None, Metrics::new()).await?;
    let caller = Caller::NodeAdmin {
        subject: "cli".into(),
    };
    let generation = directory.trust_generation();
    // Each change starts one background re-evaluation.
    let mut changes = 1;
    match command {
        AnchorCommand::Add { files } => {
            changes = files.len() as u64;
            for file in files {
                let material =
                    std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
                let source = format!("file:{}", file.display());
                let added = directory
                    .add_anchors(&caller, &material, &source)
                    .await
                    .with_context(|| format!("adding the anchors in {}", file.display()))?;
                for a in added {
                    println!(
                        "added {} {}",
                        a.certificate.fingerprint, a.certificate.subject
                    );
                }
            }
        }
        AnchorCommand::List => {
            for a in directory.list_anchors().await? {
                println!(
                    "{}  {}  not after {}  ({})",
                    a.certificate.fingerprint,
                    a.certificate.subject,
                    a.certificate.not_after.format("%Y-%m-%d"),
                    a.source
                );
            }
            return Ok(());
        }
        AnchorCommand::Remove { fingerprint } => {
            let fingerprint: crate::domain::Fingerprint = fingerprint.parse()?;
            directory.delete_anchor(&caller, &fingerprint).await?;
            println!("removed {fingerprint}");
        }
    }
    // Every certificate is re-judged in the background: wait for it.
    directory
        .wait_trust_generation(generation + changes - 1)
        .await;
    Ok(())
}

/// `ccdir user add|remove|list`.
async fn user(config: Config, command: UserCommand) -> anyhow::Result<()> {
    let key = load_key(&config)?;
    let directory = open_directory(&config, key, IndexMode::None, Metrics::new()).await?;
    let caller = Caller::NodeAdmin {
        subject: "cli".into(),
    };
    match command {
        UserCommand::Add(args) => {
            let org: OrgId = args.user.org.parse()?;
            let name: crate::domain::UserName = args.user.name.parse()?;
            let password = if args.password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("reading the password from standard input")?;
                line.trim_end_matches(['\r', '\n']).to_owned()
            } else if let Some(var) = &args.password_env {
                std::env::var(var)
                    .with_context(|| format!("environment variable {var} is not set"))?
            } else if let Some(p) = args.password {
                p
            } else {
                bail!("give the password with --password-stdin, --password-env VAR or --password");
            };
            let (user, created) = directory.put_user(&caller, &org, &name, &password).await?;
            let tree = crate::domain::DirectoryTree {
                base_dn: config.ldap.base_dn.clone(),
            };
            println!(
                "{} user {}; it binds as {}",
                if created { "created" } else { "updated" },
                user.name,
                tree.user_dn(&org, user.name.as_str())
            );
        }
        UserCommand::Remove(args) => {
            let org: OrgId = args.org.parse()?;
            directory
                .remove_user(&caller, &org, &args.name.parse()?)
                .await?;
            println!("removed user {}", args.name);
        }
        UserCommand::List(args) => {
            let org: OrgId = args.org.parse()?;
            for user in directory.list_users(&caller, &org).await? {
                println!("{}\t{}", user.name, user.updated_at.to_rfc3339());
            }
        }
    }
    Ok(())
}

/// A node with its front ends started, as `serve` runs it and tests use it.
pub struct RunningNode {
    pub directory: Directory,
    pub api_addr: SocketAddr,
    api: actix_web::dev::ServerHandle,
    /// Plain LDAP (and StartTLS), when `ldap.enabled`.
    pub ldap_addr: Option<SocketAddr>,
    /// LDAPS, when `ldap.enabled` and a certificate is configured.
    pub ldaps_addr: Option<SocketAddr>,
    ldap: Option<crate::ldap::LdapServer>,
    /// The DNS front end, when `dns.enabled`.
    pub dns: Option<crate::dns::DnsServer>,
}

impl RunningNode {
    /// Stops the front ends, letting requests in flight finish.
    pub async fn stop(self) {
        self.api.stop(true).await;
        if let Some(ldap) = self.ldap {
            ldap.stop().await;
        }
        if let Some(dns) = self.dns {
            dns.stop().await;
        }
    }

    /// Where DNS answers over UDP and TCP, when it runs.
    pub fn dns_addrs(&self) -> Option<(SocketAddr, SocketAddr)> {
        self.dns.as_ref().map(|d| (d.udp_addr, d.tcp_addr))
    }
}

/// The policy feeds' options from `[policy]`.
pub fn policy_options(config: &Config) -> crate::core::PolicyOptions {
    let p = &config.policy;
    crate::core::PolicyOptions {
        webhook_max_attempts: p.webhook_max_attempts.max(1),
        webhook_backoff: Duration::from_millis(p.webhook_backoff_ms.max(1)),
        webhook_backoff_max: Duration::from_secs(p.webhook_backoff_max_seconds.max(1)),
        webhook_timeout: Duration::from_secs(p.webhook_timeout_seconds.max(1)),
        feed_buffer: p.feed_buffer.max(1),
    }
}

/// Opens the directory in `config` and starts every front end.
pub async fn start(config: &Config, key: NodeKey) -> anyhow::Result<RunningNode> {
    let metrics = Metrics::new();
    let directory = open_directory(
        config,
        key,
        IndexMode::Required(config.index_path()),
        metrics.clone(),
    )
    .await?;
    start_with(directory, config, metrics).await
}

/// Starts the front ends over an open directory.
pub async fn start_with(
    directory: Directory,
    config: &Config,
    metrics: Arc<Metrics>,
) -> anyhow::Result<RunningNode> {
    // `/readyz` answers 503 until every front end below is up.
    let _starting = directory.not_ready("starting the front ends");
    let api = api::bind(directory.clone(), &config.api, metrics)
        .with_context(|| format!("binding the REST listener {}", config.api.listen))?;
    tokio::spawn(api.server);
    directory
        .start_federation(federation::options(config)?)
        .await
        .context("starting federation")?;
    directory
        .start_policies(policy_options(config))
        .await
        .context("starting the policy feeds")?;
    directory
        .start_bundles(bundles::options(config), bundles::declared(config)?)
        .await
        .context("starting trust bundles")?;
    let ldap = if config.ldap.enabled {
        Some(
            crate::ldap::start(directory.clone(), &config.ldap, &config.data_dir)
                .await
                .context("starting the LDAP front end")?,
        )
    } else {
        None
    };
    // The SRV records point at the LDAP listeners actually bound (port 0 included).
    let mut dns_config = config.dns.clone();
    if let Some(ldap) = &ldap {
        dns_config.ldap_port = ldap.ldap_addr.port();
        dns_config.ldaps_port = ldap.ldaps_addr.map_or(0, |a| a.port());
    }
    let dns = if config.dns.enabled {
        Some(
            crate::dns::start(directory.clone(), &dns_config, &config.data_dir)
                .await
                .context("starting the DNS front end")?,
        )
    } else {
        None
    };
    directory.warm_up();
    Ok(RunningNode {
        directory,
        api_addr: api.local_addr,
        api: api.handle,
        ldap_addr: ldap.as_ref().map(|l| l.ldap_addr),
        ldaps_addr: ldap.as_ref().and_then(|l| l.ldaps_addr),
        ldap,
        dns,
    })
}

async fn serve(config: Config, args: ServeArgs) -> anyhow::Result<()> {
    let key = ensure_key(&config, false)?;
    let metrics = Metrics::new();
    let directory = open_directory(
        &config,
        key,
        IndexMode::Required(config.index_path()),
        metrics.clone(),
    )
    .await?;
    // Not ready until the demo directory is loaded and searchable.
    let seeding = if args.demo && directory.count_entries().await? == 0 {
        Some(directory.not_ready("loading the demo directory"))
    } else {
        None
    };
    let node = start_with(directory, &config, metrics).await?;
    if let Some(hold) = seeding {
        let seeds = crate::seed::Seeds::locate(args.seeds.as_deref());
        info!(%seeds, "loading the demo directory");
        let report = crate::seed::load(&node.directory, &seeds, None).await?;
        // Announce only what can be found.
        node.directory.wait_indexed(report.seq).await;
        drop(hold);
    }
    let dns = match node.dns_addrs() {
        Some((udp, tcp)) => format!("udp://{udp} tcp://{tcp}"),
        None => "off".into(),
    };
    let or_off = |a: Option<SocketAddr>, scheme: &str| {
        a.map_or_else(|| "off".to_owned(), |a| format!("{scheme}://{a}"))
    };
    info!(
        rest = %format!("http://{}", node.api_addr),
        ldap = %or_off(node.ldap_addr, "ldap"),
        ldaps = %or_off(node.ldaps_addr, "ldaps"),
        dns = %dns,
        data_dir = %config.data_dir.display(),
        database = node.directory.backend(),
        node = %node.directory.node_id(),
        "ccdir listening"
    );
    if args.demo {
        let token = node.directory.issue_token(
            Role::NodeAdmin,
            None,
            "demo",
            Duration::from_secs(86_400),
        )?;
        println!("ccdir demo is up: REST on http://{}", node.api_addr);
        if let Some((udp, _)) = node.dns_addrs() {
            println!(
                "  DNS on {udp}: dig @{} -p {} <address with @ as .> CERT",
                udp.ip(),
                udp.port()
            );
            println!(
                "  policy lookups: dig @{} -p {} spam.example.demo-fair-play.{} A +short",
                udp.ip(),
                udp.port(),
                config.dns.policy_zone
            );
        }
        if let Some(ldap) = node.ldap_addr {
            println!(
                "  LDAP on {ldap}: ldapsearch -x -H ldap://{ldap} -b {} \"(sn=smith)\" mail",
                config.ldap.base_dn
            );
        }
        println!(
            "  try: curl 'http://{}/api/v1/search?q=cardiology+boston'",
            node.api_addr
        );
        println!("  admin token (24 h): {token}");
    }
    shutdown_signal().await;
    info!("shutting down");
    node.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn progress_bar(len: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {percent}% {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

async fn import(config: Config, args: ImportArgs) -> anyhow::Result<()> {
    let key = ensure_key(&config, false)?;
    let format = match args.format {
        Some(f) => f,
        None => Format::from_path(&args.file).with_context(|| {
            format!(
                "cannot tell the format of {}: give --format",
                args.file.display()
            )
        })?,
    };
    let directory = open_directory(
        &config,
        key,
        IndexMode::IfFree(config.index_path()),
        Metrics::new(),
    )
    .await?;
    let (reader, bar): (Box<dyn std::io::BufRead + Send>, ProgressBar) =
        if args.file == Path::new("-") {
            (
                Box::new(BufReader::new(std::io::stdin())),
                ProgressBar::hidden(),
            )
        } else {
            let file = File::open(&args.file)
                .with_context(|| format!("opening {}", args.file.display()))?;
            let bar = progress_bar(file.metadata()?.len(), "importing");
            (Box::new(BufReader::new(bar.wrap_read(file))), bar)
        };
    let rows = formats::read(format, reader);
    let caller = Caller::NodeAdmin {
        subject: "cli".into(),
    };
    let options = ImportOptions {
        strict: args.strict,
        ..Default::default()
    };
    let report = directory
        .import(&caller, rows, options, Arc::new(|_: ImportProgress| {}))
        .await?;
    bar.finish_and_clear();
    for r in &report.rejected {
        eprintln!("{}:{}: {}", args.file.display(), r.line, r.reason);
    }
    if report.aborted {
        bail!(
            "--strict: {} bad row(s), nothing was imported",
            report.rejected.len()
        );
    }
    if directory.has_index() {
        directory.wait_indexed(report.seq).await;
    }
    println!(
        "imported {} organisation(s), {} entr{} with {} certificate(s); {} row(s) rejected",
        report.organisations,
        report.entries,
        if report.entries == 1 { "y" } else { "ies" },
        report.certificates,
        report.rejected.len()
    );
    if !report.rejected.is_empty() {
        std::process::exit(3);
    }
    Ok(())
}

async fn export(config: Config, args: ExportArgs) -> anyhow::Result<()> {
    if let Some(ExportTarget::Zone(zone)) = &args.target {
        return export_zone(config, zone).await;
    }
    let key = load_key(&config)?;
    let directory = open_directory(&config, key, IndexMode::None, Metrics::new()).await?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let tree = LdifTree {
        base_dn: args.base_dn.clone(),
    };
    let caller = Caller::NodeAdmin {
        subject: "cli".into(),
    };
    let format = args.format;
    if format == Format::Csv {
        bail!("export writes jsonl or ldif");
    }
    let count = directory
        .export(&caller, |item| match (format, item) {
            (Format::Ldif, ExportItem::Organisation(o)) => {
                formats::write_ldif_organisation(&mut out, &tree, &o)
            }
            (Format::Ldif, ExportItem::Entry(e, org)) => {
                formats::write_ldif_entry(&mut out, &tree, &e, org.as_deref())
            }
            (_, ExportItem::Organisation(o)) => formats::write_jsonl_organisation(&mut out, &o),
            (_, ExportItem::Entry(e, _)) => formats::write_jsonl_entry(&mut out, &e),
        })
        .await?;
    out.flush()?;
    eprintln!("exported {count} entries");
    Ok(())
}

async fn export_zone(config: Config, args: &ExportZoneArgs) -> anyhow::Result<()> {
    let key = load_key(&config)?;
    let directory = open_directory(&config, key, IndexMode::None, Metrics::new()).await?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let count = crate::dns::export_zone(&directory, &config.dns, &args.name, &mut out).await?;
    out.flush()?;
    eprintln!("exported zone {} with {count} records", args.name);
    Ok(())
}

async fn reindex(config: Config) -> anyhow::Result<()> {
    let key = load_key(&config)?;
    let directory = open_directory(
        &config,
        key,
        IndexMode::Required(config.index_path()),
        Metrics::new(),
    )
    .await
    .context("is a server running on this data directory? stop it first")?;
    let bar = progress_bar(0, "reindexing");
    let done = directory
        .reindex(&|done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
        .await?;
    bar.finish_and_clear();
    println!("reindexed {done} entries");
    Ok(())
}

async fn seed(config: Config, args: SeedArgs) -> anyhow::Result<()> {
    let key = ensure_key(&config, false)?;
    let directory = open_directory(
        &config,
        key,
        IndexMode::IfFree(config.index_path()),
        Metrics::new(),
    )
    .await?;
    let bar = progress_bar(0, "seeding");
    let seeds = crate::seed::Seeds::locate(args.seeds.as_deref());
    let report = crate::seed::load(&directory, &seeds, Some(&bar)).await?;
    bar.finish_and_clear();
    if directory.has_index() {
        directory.wait_indexed(report.seq).await;
    }
    println!(
        "seeded {} organisations and {} entries with {} certificates",
        report.organisations, report.entries, report.certificates
    );
    Ok(())
}
