//! The cost of a new lead against the number of contacts already stored (issue 15:
//! "a new lead's cost flat in the number of contacts").
//!
//! One hub per size, each on a fresh database. First `contacts` contacts, each with
//! a phone, a WhatsApp id, an email, its own lead in the team and a resolved
//! WhatsApp conversation, go straight into the database (what an import or a year
//! of traffic leaves behind; PostgreSQL's is vacuumed and analyzed). Then `new`
//! WhatsApp customers, none of them among those contacts, each send a first message
//! through the verified Meta webhook. The hub stores each message; its inbound
//! pipeline looks the customer up among the stored contacts by E.164 phone and
//! email (the same person may already have a lead) and creates the lead with its
//! `lead_created` event and `initial_contact` task; routing looks up the same
//! person's owner. Measured: new leads per second from the first webhook to the last
//! lead, and the hub's and PostgreSQL's CPU per lead. "Flat" is the rate at the
//! largest size over the rate at the smallest.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::db::{Backend, Db};
use crate::procs::{self, Proc};
use crate::workloads::{Api, Webhooks};

/// Every lead in the database (the seed's and the new ones): counted before the
/// webhooks and polled after them.
const LEADS_SQL: &str = "SELECT count(*) AS n FROM leads";

/// One size of the workload.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Contacts (each with its lead) stored before measuring.
    pub contacts: u64,
    /// New customers, one first message each (at most 10,000: the bench's phone
    /// numbers have four free digits).
    pub new: u64,
}

/// `INSERT`s of `n` contacts with phone (`+1415…`, E.164 as the hub stores it),
/// WhatsApp id, email, a lead each in `team_id`'s first stage (joined through
/// `lead_contacts`) and a resolved WhatsApp conversation each. Rows are numbered in
/// SQL (PostgreSQL's `generate_series`, a recursive CTE on SQLite), so 100k
/// contacts are four statements.
fn seed_sql(backend: Backend, team_id: &str, n: u64) -> String {
    let (rows, pad) = match backend {
        Backend::Postgres => (
            format!("generate_series(1, {n}) AS s(i)"),
            "lpad(i::text, 7, '0')",
        ),
        Backend::Sqlite => (
            format!("(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) SELECT i FROM s) AS s"),
            "printf('%07d', i)",
        ),
    };
    format!(
        "INSERT INTO contacts (id, name, email, phone, wa_id, created_at, updated_at) \
           SELECT 'seed-c-' || i, 'Seeded ' || i, 'seed' || i || '@bench.example', \
                  '+1415' || {pad}, '1415' || {pad}, 0, 0 FROM {rows};
         INSERT INTO leads (id, team_id, contact_id, source, stage, furthest_position, priority, \
                            score, handover_pending, escalated, engagement_invited, created_at, updated_at) \
           SELECT 'seed-l-' || i, '{team_id}', 'seed-c-' || i, 'whatsapp', 'new', 0, 'normal', \
                  0, 0, 0, 0, 0, 0 FROM {rows};
         INSERT INTO lead_contacts (contact_id, lead_id, created_at) \
           SELECT 'seed-c-' || i, 'seed-l-' || i, 0 FROM {rows};
         INSERT INTO conversations (id, team_id, contact_id, channel, status, last_seq, \
                                    guest_read_seq, agent_read_seq, created_at, updated_at) \
           SELECT 'seed-v-' || i, '{team_id}', 'seed-c-' || i, 'whatsapp', 'resolved', 0, 0, 0, 0, 0 \
           FROM {rows};"
    )
}

/// Seeds `plan.contacts` contacts into the running hub's database, then sends
/// `plan.new` first messages from new customers and waits (polled every 100 ms,
/// given up after 120 s) until each has its lead.
///
/// # Errors
/// The hub's API or the database failing; a webhook refused; leads missing after
/// 120 s.
pub async fn run(
    hub: SocketAddr,
    hub_proc: &Proc,
    db: &Db,
    backend: Backend,
    plan: Plan,
) -> anyhow::Result<Value> {
    let api = Api::new(hub)?;
    let admin = api.admin().await?;
    let team = api.team_id(&admin, "default").await?;
    let seed = seed_sql(backend, &team, plan.contacts);
    let d = db.clone();
    // On PostgreSQL, what autovacuum would long have done for contacts that arrived
    // over months; without it, its statistics work lands inside the measured phase.
    // SQLite has no autovacuum and the hub runs no `ANALYZE`: its file stays as an
    // import would leave it.
    tokio::task::spawn_blocking(move || {
        d.batch(&seed)?;
        match backend {
            Backend::Postgres => d.batch("VACUUM ANALYZE"),
            Backend::Sqlite => Ok(()),
        }
    })
    .await??;
    let before = db.count(LEADS_SQL)?;
    anyhow::ensure!(
        before >= plan.contacts as i64,
        "seeded {before} leads of {}",
        plan.contacts
    );

    let wh = Webhooks::new(format!("http://{hub}/webhooks/whatsapp"), plan.new)?;
    let cpu0 = hub_proc.cpu_seconds()?;
    let pg0 = procs::postgres_cpu_seconds();
    let start = Instant::now();
    let accepted = wh.warm().await;
    anyhow::ensure!(
        accepted == plan.new,
        "{accepted} of {} webhooks accepted",
        plan.new
    );
    let target = before + plan.new as i64;
    let mut leads = db.count(LEADS_SQL)?;
    while leads < target && start.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        leads = db.count(LEADS_SQL)?;
    }
    let secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        leads >= target,
        "{} of {} new leads after 120 s",
        leads - before,
        plan.new
    );
    let per = |cpu: f64| cpu * 1000.0 / plan.new as f64;
    let hub_cpu = per(hub_proc.cpu_seconds()? - cpu0);
    let pg_cpu = (backend == Backend::Postgres).then(|| per(procs::postgres_cpu_seconds() - pg0));
    Ok(json!({
        "contacts": plan.contacts, "new_leads": plan.new, "secs": secs,
        "leads_per_s": plan.new as f64 / secs,
        "hub_cpu_ms_per_lead": hub_cpu, "postgres_cpu_ms_per_lead": pg_cpu,
    }))
}
