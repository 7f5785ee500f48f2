//! The `bundle` commands as the CLI runs them, and the bundle options and
//! declared bundles the core gets from the configuration.

use std::time::Duration;

use anyhow::{Context, bail};

use super::{load_key, open_directory};
use crate::cli::{BundleAddArgs, BundleCommand};
use crate::config::Config;
use crate::core::{BundleOptions, Directory, IndexMode, NewBundle, RefreshOutcome};
use crate::domain::{BundleDefinition, BundleOrigin, BundleSource, Caller, TrustBundle};
use crate::telemetry::Metrics;

/// The core's bundle options from the configuration.
pub fn options(config: &Config) -> BundleOptions {
    let b = &config.bundles;
    BundleOptions {
        connect_timeout: Duration::from_millis(b.connect_timeout_ms),
        fetch_timeout: Duration::from_millis(b.fetch_timeout_ms),
        retry_interval: Duration::from_secs(b.retry_interval_seconds),
        check_interval: Duration::from_millis(b.check_interval_ms),
    }
}

/// The bundles declared in the configuration, signer files read.
pub fn declared(config: &Config) -> anyhow::Result<Vec<BundleDefinition>> {
    config
        .bundles
        .declared
        .iter()
        .map(|b| {
            let signer = match &b.signer {
                Some(path) => {
                    let path = config.data_dir.join(path);
                    let bytes = std::fs::read(&path).with_context(|| {
                        format!("bundle {}: reading {}", b.name, path.display())
                    })?;
                    let cert = crate::pki::read_signer_certificate(&bytes)
                        .with_context(|| format!("bundle {}: signer {}", b.name, path.display()))?;
                    Some(cert.der)
                }
                None => None,
            };
            let name: crate::domain::BundleName = b
                .name
                .parse()
                .with_context(|| format!("bundles.declared {:?}", b.name))?;
            let source = match (&b.url, &b.file) {
                (Some(url), None) => BundleSource::url(url)?,
                (None, Some(file)) => {
                    BundleSource::file(std::path::absolute(config.data_dir.join(file))?)?
                }
                _ => bail!(
                    "bundles.declared {:?}: give exactly one of url and file",
                    b.name
                ),
            };
            Ok(BundleDefinition {
                name,
                source,
                signer,
                refresh: Duration::from_secs(b.refresh_seconds),
                origin: BundleOrigin::Config,
            })
        })
        .collect()
}

fn status_line(b: &TrustBundle) -> String {
    let last = match &b.last_refresh {
        None => "never refreshed".to_owned(),
        Some(s) => format!("{} at {}: {}", s.code, s.at.to_rfc3339(), s.detail),
    };
    let success = b
        .last_success_at
        .map(|t| t.to_rfc3339())
        .unwrap_or_else(|| "never".into());
    format!(
        "{}\t{}\t{} anchors\tlast: {last}\tlast success: {success}",
        b.name(),
        b.definition.source,
        b.anchor_count
    )
}

fn report(o: &RefreshOutcome) {
    println!("{}", status_line(&o.bundle));
    if o.added + o.removed > 0 {
        println!("  {} anchors added, {} removed", o.added, o.removed);
    }
}

/// `ccdir bundle add|list|refresh|remove`.
pub async fn command(config: Config, command: BundleCommand) -> anyhow::Result<()> {
    let key = load_key(&config)?;
    let directory = open_directory(&config, key, IndexMode::None, Metrics::new()).await?;
    directory.set_bundle_options(options(&config));
    let caller = Caller::NodeAdmin {
        subject: "cli".into(),
    };
    let generation = directory.trust_generation();
    let mut changes = 0u64;
    let mut failed = false;
    match command {
        BundleCommand::Add(args) => {
            let o = add(&directory, &caller, args).await?;
            report(&o);
            failed = !o.ok();
            changes += u64::from(o.added + o.removed > 0);
        }
        BundleCommand::List => {
            for b in directory.list_bundles().await? {
                println!("{}", status_line(&b));
            }
        }
        BundleCommand::Refresh { name } => {
            let outcomes = match name {
                Some(n) => vec![directory.refresh_bundle(&caller, &n.parse()?).await?],
                None => directory.refresh_all_bundles(&caller).await?,
            };
            for o in &outcomes {
                report(o);
                failed |= !o.ok();
                changes += u64::from(o.added + o.removed > 0);
            }
        }
        BundleCommand::Remove { name } => {
            let removed = directory.remove_bundle(&caller, &name.parse()?).await?;
            println!("removed bundle {name} and its {removed} anchors");
            changes += u64::from(removed > 0);
        }
    }
    // Each change of anchors starts one background re-evaluation: wait for them.
    if changes > 0 {
        directory
            .wait_trust_generation(generation + changes - 1)
            .await;
    }
    if failed {
        bail!("a bundle refresh failed; its previous anchors stay in force");
    }
    Ok(())
}

async fn add(
    directory: &Directory,
    caller: &Caller,
    args: BundleAddArgs,
) -> anyhow::Result<RefreshOutcome> {
    let source = match (&args.url, &args.file) {
        (Some(url), None) => BundleSource::url(url)?,
        (None, Some(file)) => BundleSource::file(
            std::path::absolute(file).with_context(|| format!("{}", file.display()))?,
        )?,
        _ => bail!("give exactly one of --url and --file"),
    };
    let signer = match &args.signer {
        Some(path) => {
            Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
        }
        None => None,
    };
    Ok(directory
        .add_bundle(
            caller,
            NewBundle {
                name: args.name.parse()?,
                source,
                signer,
                refresh: args.refresh,
            },
        )
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BundleConfig;

    fn config(b: BundleConfig) -> Config {
        let mut c = Config {
            data_dir: "/var/lib/ccdir".into(),
            ..Config::default()
        };
        c.bundles.declared.push(b);
        c
    }

    #[test]
    fn declared_bundles_become_definitions() {
        let b = BundleConfig {
            name: "Local".into(),
            url: None,
            file: Some("bundles/local.p7b".into()),
            signer: None,
            refresh_seconds: 600,
        };
        let defs = declared(&config(b.clone())).unwrap();
        assert_eq!(defs[0].name.as_str(), "local");
        assert_eq!(
            defs[0].source,
            BundleSource::File("/var/lib/ccdir/bundles/local.p7b".into())
        );
        assert_eq!(defs[0].origin, BundleOrigin::Config);
        let bad = BundleConfig {
            name: "manual".into(),
            ..b.clone()
        };
        assert!(declared(&config(bad)).is_err());
        let missing_signer = BundleConfig {
            signer: Some("/nonexistent/signer.pem".into()),
            ..b
        };
        assert!(declared(&config(missing_signer)).is_err());
    }
}
