//! The federation commands as the CLI runs them, and the federation
//! options the core gets from the configuration.

use std::io::Read;
use std::time::Duration;

use anyhow::{Context, bail};

use super::{load_key, open_directory};
use crate::cli::{
    AddChildArgs, DelegateArgs, FederationCommand, InstallArgs, StatusArgs, VerifyArgs,
};
use crate::config::Config;
use crate::core::{
    ChildOptions, Directory, FederationOptions, FederationStatus, IndexMode, audit_log,
};
use crate::domain::DomainName;
use crate::federation::{DelegationFile, Hash, Key};
use crate::pki::NodeKey;
use crate::telemetry::Metrics;

fn key(what: &str, hex: &str) -> anyhow::Result<Key> {
    hex.parse()
        .map_err(|_| anyhow::anyhow!("{what} {hex:?} is not a node key (64 hex digits)"))
}

/// The core's federation options from the configuration.
pub fn options(config: &Config) -> anyhow::Result<FederationOptions> {
    let f = &config.federation;
    let ms = Duration::from_millis;
    Ok(FederationOptions {
        root: f
            .root_key
            .as_deref()
            .map(|k| key("federation.root_key", k))
            .transpose()?,
        parent_url: f.parent_url.clone(),
        children: f
            .children
            .iter()
            .map(|c| {
                Ok(ChildOptions {
                    key: key("federation.children.key", &c.key)?,
                    url: c.url.clone(),
                    name: c.name.clone(),
                })
            })
            .collect::<anyhow::Result<_>>()?,
        pull_interval: ms(f.pull_interval_ms),
        publish_interval: ms(f.publish_interval_ms),
        page_size: f.page_size,
        max_page_bytes: f.max_page_bytes,
        connect_timeout: ms(f.connect_timeout_ms),
        request_timeout: ms(f.request_timeout_ms),
        backoff_initial: ms(f.backoff_initial_ms),
        backoff_max: ms(f.backoff_max_ms),
    })
}

/// The directory for a federation command: no search index, the node's
/// key, federation options from the configuration.
async fn directory(config: &Config) -> anyhow::Result<Directory> {
    let key = load_key(config)?;
    let directory = open_directory(config, key, IndexMode::None, Metrics::new()).await?;
    directory.set_federation_options(options(config)?);
    Ok(directory)
}

/// `--expires`: an RFC 3339 time, or a duration from now (90d, 12h).
pub(super) fn expiry(text: &str) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let d = crate::cli::parse_duration(text)
        .map_err(|e| anyhow::anyhow!("--expires {text:?}: not an RFC 3339 time, and {e}"))?;
    Ok(chrono::Utc::now() + chrono::Duration::from_std(d)?)
}

/// `ccdir delegate`.
pub async fn delegate(config: Config, args: DelegateArgs) -> anyhow::Result<()> {
    let child = key("--child", &args.child)?;
    let domains: Vec<DomainName> = args
        .domains
        .iter()
        .map(|d| d.parse().with_context(|| format!("--domain {d:?}")))
        .collect::<anyhow::Result<_>>()?;
    let expires = expiry(&args.expires)?;
    let directory = directory(&config).await?;
    let file = directory.delegate(child, domains, expires).await?;
    let text = serde_json::to_string_pretty(&file)? + "\n";
    match &args.output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// `ccdir federation …`.
pub async fn command(config: Config, command: FederationCommand) -> anyhow::Result<()> {
    match command {
        FederationCommand::Status(args) => status(config, args).await,
        FederationCommand::Install(args) => install(config, args).await,
        FederationCommand::AddChild(args) => add_child(config, args).await,
        FederationCommand::Resume(args) => {
            let child = key("--child", &args.child)?;
            let directory = directory(&config).await?;
            if !directory.resume_child(child).await? {
                bail!("no child {} here", args.child);
            }
            println!("resumed {}", args.child);
            Ok(())
        }
        FederationCommand::RotateKey => rotate_key(config).await,
    }
}

async fn install(config: Config, args: InstallArgs) -> anyhow::Result<()> {
    let mut text = String::new();
    if args.file.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        text = std::fs::read_to_string(&args.file)
            .with_context(|| format!("reading {}", args.file.display()))?;
    }
    let file: DelegationFile =
        serde_json::from_str(&text).context("not a delegation file from `ccdir delegate`")?;
    let directory = directory(&config).await?;
    let grants = directory.install_delegation(&file).await?;
    for g in grants {
        println!(
            "installed {} -> {} for {} until {}",
            &g.issuer.0[..12],
            &g.subject.0[..12],
            g.domains.join(", "),
            g.expires_at.to_rfc3339()
        );
    }
    Ok(())
}

async fn add_child(config: Config, args: AddChildArgs) -> anyhow::Result<()> {
    let child = key("--key", &args.key)?;
    let directory = directory(&config).await?;
    let new = directory
        .add_child(child, &args.url, args.name.as_deref())
        .await?;
    println!(
        "{} child {} at {}",
        if new { "added" } else { "updated" },
        args.key,
        args.url
    );
    Ok(())
}

async fn rotate_key(config: Config) -> anyhow::Result<()> {
    let path = config.key_path();
    let staged = path.with_extension("key.new");
    let new_key = NodeKey::generate(&mut rand::rng());
    if staged.exists() {
        bail!(
            "{} exists: a rotation was interrupted; inspect it before rotating again",
            staged.display()
        );
    }
    // The new key is on disk before the log names it.
    new_key
        .save_pem(&staged)
        .with_context(|| format!("writing {}", staged.display()))?;
    let directory = directory(&config).await?;
    let identity = directory.rotate_key(&new_key).await?;
    let old = path.with_extension(format!(
        "key.{}.old",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    ));
    std::fs::rename(&path, &old)
        .with_context(|| format!("keeping the old key as {}", old.display()))?;
    std::fs::rename(&staged, &path).with_context(|| format!("installing {}", path.display()))?;
    println!(
        "rotated: log {} is now signed by {} (old key kept as {})",
        identity.log,
        identity.signer,
        old.display()
    );
    Ok(())
}

fn when(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or_else(
        || "never".into(),
        |t| t.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string(),
    )
}

/// The status as text.
pub fn status_text(s: &FederationStatus) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "node       {}", s.node);
    let _ = writeln!(
        out,
        "log        {} ({} records, Merkle root {})",
        s.log, s.log_size, s.root_hash
    );
    let _ = writeln!(
        out,
        "root       {}{}",
        s.root,
        if s.is_root { " (this node)" } else { "" }
    );
    let _ = writeln!(
        out,
        "publisher  change {} of {}",
        s.publish_cursor, s.change_head
    );
    if s.delegation.is_empty() {
        let _ = writeln!(
            out,
            "delegation none{}",
            if s.is_root {
                " needed"
            } else {
                ": publishing waits for `ccdir federation install`"
            }
        );
    }
    for g in &s.delegation {
        let _ = writeln!(
            out,
            "delegation {} -> {} for {} until {}{}",
            &g.issuer.0[..12],
            &g.subject.0[..12],
            g.domains.join(", "),
            g.expires_at.to_rfc3339(),
            if g.expired { " (EXPIRED)" } else { "" }
        );
    }
    let _ = writeln!(out, "children   {}", s.children.len());
    for c in &s.children {
        let _ = writeln!(
            out,
            "  {} {} {}\n    state {}  cursor {}  head {}  lag {}  applied {}  quarantined {}\n    last pull {}  last success {}  failures {}",
            c.key,
            c.name.as_deref().unwrap_or("-"),
            c.url,
            c.status,
            c.cursor,
            c.head,
            c.lag,
            c.applied,
            c.quarantined,
            when(c.last_pull_at),
            when(c.last_ok_at),
            c.failures
        );
        if let (Some(code), Some(detail)) = (&c.stopped_code, &c.stopped_detail) {
            let _ = writeln!(out, "    STOPPED {code}: {detail}");
        }
        if let (Some(code), Some(detail)) = (&c.last_error_code, &c.last_error) {
            let _ = writeln!(out, "    last error {code}: {detail}");
        }
    }
    let _ = writeln!(out, "rejections {} (latest first)", s.rejections.len());
    for r in &s.rejections {
        let at = match (r.seq, &r.author) {
            (Some(seq), Some(a)) => format!(
                " record {seq} (author {} #{})",
                &a.0[..12],
                r.author_seq.unwrap_or(0)
            ),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "  {} child {}{at} {}: {}",
            r.at.format("%Y-%m-%d %H:%M:%S"),
            &r.child.0[..12],
            r.code,
            r.detail
        );
    }
    out
}

async fn status(config: Config, args: StatusArgs) -> anyhow::Result<()> {
    let directory = directory(&config).await?;
    let s = directory.federation_status(args.rejections).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        print!("{}", status_text(&s));
    }
    Ok(())
}

/// `ccdir verify`.
pub async fn verify(config: Config, args: VerifyArgs) -> anyhow::Result<()> {
    if args.mirrors {
        let directory = directory(&config).await?;
        let audits = directory.audit_mirrors().await?;
        let bad = audits.iter().filter(|a| a.result != "ok").count();
        if args.json {
            println!("{}", serde_json::to_string_pretty(&audits)?);
        } else {
            for a in &audits {
                println!(
                    "child {}: {} records, cursor {}: {}",
                    a.child, a.records, a.cursor, a.result
                );
            }
        }
        if bad > 0 {
            bail!("{bad} mirrored log(s) failed verification");
        }
        return Ok(());
    }
    let url = args.url.as_deref().unwrap_or_default();
    let pinned = match args
        .key
        .as_deref()
        .or(config.federation.root_key.as_deref())
    {
        Some(k) => Some(key("--key", k)?),
        None => None,
    };
    let root = match config.federation.root_key.as_deref() {
        Some(k) => Some(key("federation.root_key", k)?),
        None => pinned,
    };
    let previous = match (args.previous_size, args.previous_root.as_deref()) {
        (Some(size), Some(root)) => Some((
            size,
            root.parse::<Hash>()
                .map_err(|_| anyhow::anyhow!("--previous-root is not a hash"))?,
        )),
        _ => None,
    };
    let report = audit_log(url, pinned, root, args.proofs, previous)
        .await
        .map_err(|e| anyhow::anyhow!("verification FAILED: {}", e))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "verified log {}: {} records, Merkle root {}\n  {} relayed records, {} authors; {} covered by delegations today, {} not\n  {} inclusion proofs checked; consistent with the tree of {} records",
            report.log,
            report.size,
            report.root_hash,
            report.relays,
            report.authors,
            report.covered,
            report.uncovered,
            report.inclusion_proofs,
            report.consistent_from.unwrap_or(0)
        );
        for e in &report.uncovered_examples {
            println!("  not covered: {e}");
        }
    }
    Ok(())
}

/// `ccdir bench federation`.
pub async fn bench(config: Config, args: crate::cli::BenchFederationArgs) -> anyhow::Result<()> {
    let report = crate::bench::federation::run(crate::bench::federation::BenchOptions {
        orgs: args.orgs,
        per_org: args.per_org,
        page_size: args.page_size,
        certificates: !args.no_certificates,
        database_url: config.database_url.clone(),
        samples: args.samples,
        work_dir: args.work_dir,
    })
    .await?;
    print!("{report}");
    Ok(())
}
