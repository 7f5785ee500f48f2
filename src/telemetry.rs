//! Logs (tracing, text or JSON) and metrics (Prometheus text format).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global tracing subscriber. `RUST_LOG` overrides the
/// configured filter. Logs go to stderr so command output stays clean.
pub fn init_logging(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests start several nodes in one process) is harmless.
    let _ = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    /// The route pattern (`/api/v1/entries/{address}`), never the raw path,
    /// so the label set stays bounded.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    /// fetch (the child's page over HTTP), check (decoding, signatures,
    /// delegation, certificates: in parallel) or apply (the transaction
    /// that stores the page and relays it: one at a time).
    pub stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectionLabels {
    /// The stable code (`bad-signature`, `out-of-delegation`, ...).
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LdapLabels {
    /// bind, search, extended, unbind, abandon, write, disconnect, other.
    pub op: &'static str,
    /// The LDAP result code number (0 success, 4 sizeLimitExceeded, ...).
    pub code: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BundleLabels {
    /// The bundle's name (operators declare a handful).
    pub bundle: String,
    /// The refresh code: ok, not-found, timeout, unreachable, bad-format,
    /// bad-signer, signature-mismatch.
    pub code: &'static str,
}

/// Every metric the node exports.
pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: Family<HttpLabels, Histogram>,
    pub rate_limited: Counter,
    pub search_duration: Histogram,
    pub entries_written: Counter,
    pub import_rows: Family<OutcomeLabels, Counter>,
    pub change_seq: Gauge<u64, AtomicU64>,
    pub index_applied_seq: Gauge<u64, AtomicU64>,
    pub ldap_operations: Family<LdapLabels, Counter>,
    pub ldap_duration: Histogram,
    pub ldap_entries_returned: Counter,
    /// Policy events submitted here, by outcome.
    pub policy_events: Family<OutcomeLabels, Counter>,
    /// Webhook delivery attempts, by outcome (delivered, failed, dead-letter).
    pub webhook_deliveries: Family<OutcomeLabels, Counter>,
    /// Server-sent event streams open now.
    pub sse_streams: Gauge,
    pub bundle_refreshes: Family<BundleLabels, Counter>,
    /// Records pulled from children, by outcome (applied, quarantined, relayed).
    pub federation_records: Family<OutcomeLabels, Counter>,
    /// Seconds spent pulling children, by stage.
    pub federation_seconds: Family<StageLabels, Counter<f64, AtomicU64>>,
    /// Children's pages refused, by reason.
    pub federation_rejections: Family<RejectionLabels, Counter>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_1, 2.0, 18))
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("ccdir");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration = Family::<HttpLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let rate_limited = Counter::default();
        let search_duration = latency_histogram();
        let entries_written = Counter::default();
        let import_rows = Family::<OutcomeLabels, Counter>::default();
        let change_seq = Gauge::<u64, AtomicU64>::default();
        let index_applied_seq = Gauge::<u64, AtomicU64>::default();
        let ldap_operations = Family::<LdapLabels, Counter>::default();
        let ldap_duration = latency_histogram();
        let ldap_entries_returned = Counter::default();
        let policy_events = Family::<OutcomeLabels, Counter>::default();
        let webhook_deliveries = Family::<OutcomeLabels, Counter>::default();
        let sse_streams = Gauge::default();
        registry.register(
            "policy_events",
            "Policy events submitted to this node, by outcome",
            policy_events.clone(),
        );
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts, by outcome",
            webhook_deliveries.clone(),
        );
        registry.register(
            "sse_streams",
            "Server-sent event streams open",
            sse_streams.clone(),
        );
        let bundle_refreshes = Family::<BundleLabels, Counter>::default();
        registry.register(
            "bundle_refreshes",
            "Trust bundle refreshes, by bundle and outcome",
            bundle_refreshes.clone(),
        );
        let federation_records = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "federation_records",
            "Records pulled from children, by outcome (applied, quarantined, relayed)",
            federation_records.clone(),
        );
        let federation_seconds = Family::<StageLabels, Counter<f64, AtomicU64>>::default();
        registry.register(
            "federation_pull_seconds",
            "Time spent pulling children, by stage: fetch, check (in parallel), apply (serial)",
            federation_seconds.clone(),
        );
        let federation_rejections = Family::<RejectionLabels, Counter>::default();
        registry.register(
            "federation_rejections",
            "Children's pages refused, by reason",
            federation_rejections.clone(),
        );
        registry.register(
            "ldap_operations",
            "LDAP operations answered, by operation and result code",
            ldap_operations.clone(),
        );
        registry.register(
            "ldap_operation_duration_seconds",
            "Time to answer one LDAP request",
            ldap_duration.clone(),
        );
        registry.register(
            "ldap_entries_returned",
            "Search result entries sent to LDAP clients",
            ldap_entries_returned.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            http_duration.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused by the rate limiter",
            rate_limited.clone(),
        );
        registry.register(
            "search_duration_seconds",
            "Time to answer a directory search in the core",
            search_duration.clone(),
        );
        registry.register(
            "entries_written",
            "Entries created or changed",
            entries_written.clone(),
        );
        registry.register(
            "import_rows",
            "Rows read by imports, by outcome",
            import_rows.clone(),
        );
        registry.register(
            "change_seq",
            "Last change sequence number written",
            change_seq.clone(),
        );
        registry.register(
            "index_applied_seq",
            "Last change sequence number the search index applied",
            index_applied_seq.clone(),
        );
        Arc::new(Metrics {
            registry,
            http_requests,
            http_duration,
            rate_limited,
            search_duration,
            entries_written,
            import_rows,
            change_seq,
            index_applied_seq,
            ldap_operations,
            ldap_duration,
            ldap_entries_returned,
            policy_events,
            webhook_deliveries,
            sse_streams,
            bundle_refreshes,
            federation_records,
            federation_seconds,
            federation_rejections,
        })
    }

    /// Counts `n` policy events with `outcome`.
    pub fn policy_events(&self, outcome: &'static str, n: u64) {
        self.policy_events
            .get_or_create(&OutcomeLabels { outcome })
            .inc_by(n);
    }

    /// Counts one webhook delivery attempt with `outcome`.
    pub fn webhook_delivery(&self, outcome: &'static str) {
        self.webhook_deliveries
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Counts `n` records pulled from children with `outcome`.
    pub fn federation_records(&self, outcome: &'static str, n: u64) {
        self.federation_records
            .get_or_create(&OutcomeLabels { outcome })
            .inc_by(n);
    }

    /// Counts one child's page refused for `code`.
    pub fn federation_rejection(&self, code: &'static str) {
        self.federation_rejections
            .get_or_create(&RejectionLabels { code })
            .inc();
    }

    /// Adds `seconds` to the time spent in federation pull `stage`; see
    /// [`Metrics::time_federation_stage`].
    fn federation_stage(&self, stage: &'static str, seconds: f64) {
        self.federation_seconds
            .get_or_create(&StageLabels { stage })
            .inc_by(seconds);
    }

    /// Times federation pull `stage` until the returned guard is dropped,
    /// so that a stage left early (a refused page, a failed fetch, a poll
    /// that found nothing new) is counted as well.
    pub fn time_federation_stage(&self, stage: &'static str) -> StageTimer<'_> {
        StageTimer {
            metrics: self,
            stage,
            since: std::time::Instant::now(),
        }
    }

    /// Seconds spent so far in federation pull `stage`.
    pub fn federation_stage_seconds(&self, stage: &'static str) -> f64 {
        self.federation_seconds
            .get_or_create(&StageLabels { stage })
            .get()
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Adds the time from its making to its drop to a federation pull stage;
/// see [`Metrics::time_federation_stage`].
#[must_use = "the stage is timed until the guard is dropped"]
pub struct StageTimer<'m> {
    metrics: &'m Metrics,
    stage: &'static str,
    since: std::time::Instant,
}

impl Drop for StageTimer<'_> {
    fn drop(&mut self) {
        self.metrics
            .federation_stage(self.stage, self.since.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.http_requests
            .get_or_create(&HttpLabels {
                method: "GET".into(),
                route: "/healthz".into(),
                status: 200,
            })
            .inc();
        m.change_seq.set(42);
        m.federation_stage("apply", 1.25);
        m.federation_stage("apply", 0.25);
        assert_eq!(m.federation_stage_seconds("apply"), 1.5);
        assert_eq!(m.federation_stage_seconds("fetch"), 0.0);
        let fail = || -> Result<(), ()> {
            let _fetching = m.time_federation_stage("fetch");
            std::thread::sleep(std::time::Duration::from_millis(5));
            Err(())
        };
        assert!(fail().is_err());
        assert!(m.federation_stage_seconds("fetch") >= 0.005);
        m.federation_records("applied", 3);
        m.federation_rejection("bad-signature");
        let text = m.render();
        assert!(
            text.contains(
                "ccdir_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("ccdir_change_seq 42"), "{text}");
        assert!(
            text.contains("ccdir_federation_pull_seconds_total{stage=\"apply\"} 1.5"),
            "{text}"
        );
        assert!(
            text.contains("ccdir_federation_records_total{outcome=\"applied\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("ccdir_federation_rejections_total{code=\"bad-signature\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
