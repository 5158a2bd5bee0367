//! The hub's metrics, exposed at `GET /metrics` in the OpenMetrics text format
//! (<https://prometheus.io/docs/specs/om/open_metrics_spec/>) through the
//! `prometheus-client` crate, for Prometheus or any compatible scraper.
//!
//! Counters and histograms are process-wide statics, updated where the work happens
//! (the writer, the pipeline, claims, routing); gauges that describe a moment
//! (sessions, the pipeline's, the outbox's and the scheduler's backlog) are read when scraped, so they
//! cost nothing in between. Names carry the `switchboard_` prefix; times are in
//! seconds, as Prometheus expects.

use std::sync::LazyLock;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Every metric of the process and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    /// Messages committed by the writers (duplicates excluded).
    pub messages_committed: Counter,
    /// Appends per writer batch (one transaction, one commit).
    pub writer_batch_size: Histogram,
    /// Seconds from a batch's first statement to its commit returning.
    pub writer_commit_seconds: Histogram,
    /// Seconds from a message's commit to the end of its last pipeline stage.
    pub pipeline_lag_seconds: Histogram,
    /// Messages the pipeline skipped after repeated failures (each is also logged).
    pub pipeline_skipped: Counter,
    /// Reads of stored messages a WebSocket session made because live delivery
    /// missed some (a gap in a conversation's seqs, events lost while the bus
    /// reconnected); in steady traffic this stays near zero.
    pub session_gap_reads: Counter,
    /// Routing triggers waiting on this node (one per conversation at most).
    pub routing_queue: Gauge,
    /// Seconds a claim takes to decide (offer checks, capacity, the assignment).
    pub claim_seconds: Histogram,
    /// WebSocket sessions on this node (set when scraped).
    pub sessions: Gauge,
    /// Conversations with a live actor on this node (set when scraped).
    pub conversations_active: Gauge,
    /// Conversations waiting for or in a pipeline pass on this node (set when scraped).
    pub pipeline_backlog: Gauge,
    /// WhatsApp outbox rows still to send, across nodes (set when scraped).
    pub outbox_pending: Gauge,
    /// Scheduler jobs pending or running, across nodes (set when scraped).
    pub jobs_backlog: Gauge,
    /// Of those, pending jobs already due (set when scraped): a growing number means
    /// the nodes do not keep up.
    pub jobs_due: Gauge,
    /// Jobs that gave up (set when scraped).
    pub jobs_failed: Gauge,
    /// The bulk lane's cap, campaign copies per second; 0 while uncapped
    /// (`writer::share`).
    pub bulk_cap_per_second: Gauge,
}

/// Buckets from 0.5 ms doubling up to about 16 s.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let m = Self {
            messages_committed: Counter::default(),
            writer_batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            writer_commit_seconds: seconds(),
            pipeline_lag_seconds: seconds(),
            pipeline_skipped: Counter::default(),
            session_gap_reads: Counter::default(),
            routing_queue: Gauge::default(),
            claim_seconds: seconds(),
            sessions: Gauge::default(),
            conversations_active: Gauge::default(),
            pipeline_backlog: Gauge::default(),
            outbox_pending: Gauge::default(),
            jobs_backlog: Gauge::default(),
            jobs_due: Gauge::default(),
            jobs_failed: Gauge::default(),
            bulk_cap_per_second: Gauge::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "messages_committed",
            "Messages committed by the writers (duplicates excluded)",
            m.messages_committed.clone(),
        );
        r.register(
            "writer_batch_size",
            "Appends per writer batch (one transaction)",
            m.writer_batch_size.clone(),
        );
        r.register(
            "writer_commit_seconds",
            "Seconds from a writer batch's first statement to its commit",
            m.writer_commit_seconds.clone(),
        );
        r.register(
            "pipeline_lag_seconds",
            "Seconds from a message's commit to the end of its last pipeline stage",
            m.pipeline_lag_seconds.clone(),
        );
        r.register(
            "pipeline_skipped",
            "Messages the inbound pipeline skipped after repeated failures",
            m.pipeline_skipped.clone(),
        );
        r.register(
            "session_gap_reads",
            "Reads of stored messages a session made to fill a gap in live delivery",
            m.session_gap_reads.clone(),
        );
        r.register(
            "routing_queue",
            "Routing triggers waiting on this node",
            m.routing_queue.clone(),
        );
        r.register(
            "claim_seconds",
            "Seconds a claim takes to decide",
            m.claim_seconds.clone(),
        );
        r.register(
            "sessions",
            "WebSocket sessions on this node",
            m.sessions.clone(),
        );
        r.register(
            "conversations_active",
            "Conversations with a live actor on this node",
            m.conversations_active.clone(),
        );
        r.register(
            "pipeline_backlog",
            "Conversations waiting for or in an inbound pipeline pass on this node",
            m.pipeline_backlog.clone(),
        );
        r.register(
            "outbox_pending",
            "WhatsApp outbox rows still to send",
            m.outbox_pending.clone(),
        );
        r.register(
            "bulk_cap_per_second",
            "Campaign copies per second the bulk writer may commit while chat messages wait longer than usual; 0 while uncapped",
            m.bulk_cap_per_second.clone(),
        );
        r.register(
            "jobs_backlog",
            "Scheduler jobs pending or running",
            m.jobs_backlog.clone(),
        );
        r.register(
            "jobs_due",
            "Scheduler jobs pending and already due",
            m.jobs_due.clone(),
        );
        r.register(
            "jobs_failed",
            "Scheduler jobs that gave up",
            m.jobs_failed.clone(),
        );
        Self { registry, ..m }
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an error here would be the crate's bug,
        // and an empty scrape is the honest answer to it.
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// The process's metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Converts an integer to a gauge value, saturating.
pub fn gauge_value(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_prefixed_names_with_units_in_seconds() {
        METRICS.messages_committed.inc();
        METRICS.writer_commit_seconds.observe(0.002);
        let text = METRICS.encode();
        assert!(
            text.contains("switchboard_messages_committed_total"),
            "{text}"
        );
        assert!(
            text.contains("switchboard_writer_commit_seconds_bucket"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
