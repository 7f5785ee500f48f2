//! `ccdir bench view`: how long the DNS front end's publication view takes
//! to load at start, from the file a stopped server saved
//! (`publication.view` in the data directory) and by scanning the
//! database, on an existing node with nothing else running. The saved
//! view is what a restarted node's readiness waits for.

use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::config::Config;
use crate::core::{Directory, IndexMode, Publication};
use crate::telemetry::Metrics;

/// One way of loading, timed over the rounds.
struct Loads {
    what: &'static str,
    walls: Vec<Duration>,
    cpu: f64,
}

impl Loads {
    fn new(what: &'static str) -> Loads {
        Loads {
            what,
            walls: Vec::new(),
            cpu: 0.0,
        }
    }

    /// Times one load and checks it took the path it is meant to.
    async fn time(
        &mut self,
        load: impl std::future::Future<Output = crate::core::Result<Publication>>,
        from_saved: bool,
    ) -> anyhow::Result<(usize, usize)> {
        let cpu = super::cpu_seconds(None);
        let started = Instant::now();
        let view = load.await?;
        self.walls.push(started.elapsed());
        self.cpu += super::cpu_seconds(None) - cpu;
        anyhow::ensure!(
            view.saved_change().is_some() == from_saved,
            "the view was not loaded {} (the server's log says why)",
            self.what
        );
        Ok(view.sizes())
    }

    fn row(&mut self) -> String {
        self.walls.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        format!(
            "| {} | {:.0} ms | {:.0} ms | {:.0} ms |",
            self.what,
            ms(self.walls[0]),
            ms(self.walls[self.walls.len() / 2]),
            self.cpu * 1e3 / self.walls.len() as f64
        )
    }
}

/// Loads the view `rounds` times each way, alternating, and prints Markdown.
pub async fn run(config: &Config, key: crate::pki::NodeKey, rounds: usize) -> anyhow::Result<()> {
    let rounds = rounds.max(1);
    let directory: Directory =
        crate::app::open_directory(config, key, IndexMode::None, Metrics::new()).await?;
    let path = crate::dns::saved_view_path(&config.data_dir);
    let cache = config.dns.certificate_cache_mb << 20;
    if !path.exists() {
        let view = Publication::load_at(&directory, cache, path.clone()).await?;
        view.save()
            .await?
            .with_context(|| format!("saving the view to {}", path.display()))?;
    }
    let mut saved = Loads::new("from the saved view");
    let mut scanned = Loads::new("by scanning the database");
    let mut sizes = (0, 0);
    for _ in 0..rounds {
        sizes = saved
            .time(Publication::load_at(&directory, cache, path.clone()), true)
            .await?;
        let from_database = scanned
            .time(Publication::load(&directory, cache), false)
            .await?;
        anyhow::ensure!(
            sizes == from_database,
            "the saved view holds {sizes:?} (entries, domains), the database {from_database:?}"
        );
    }
    directory.close().await;
    println!(
        "{} entries and {} domains publish certificates; {rounds} loads each way, alternated\n",
        sizes.0, sizes.1
    );
    println!("| publication view loaded | min | median | CPU per load |");
    println!("|---|---:|---:|---:|");
    println!("{}", saved.row());
    println!("{}", scanned.row());
    Ok(())
}
