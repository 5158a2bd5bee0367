//! A 10,000-recipient broadcast survives SIGKILL: a real `switchboard` process
//! sends a template broadcast to the fake Graph API, is killed mid-send, is
//! started again on the same database, and finishes. Asserted on SQLite and
//! PostgreSQL:
//! - nobody is skipped: every recipient's number received the template;
//! - inside the hub, exactly once: one stored copy and one send per recipient,
//!   10,000 recipients marked sent, none pending;
//! - at the provider, a second copy can only be one whose call was in flight at
//!   the kill (the provider accepted it, the hub died before recording that):
//!   Meta has no idempotency key, so the outbox is at-least-once across a crash.
//!   Those are counted and bounded by the outbox's concurrency.
//!
//! Waiting is polling real state with generous safety limits; nothing sleeps a
//! fixed time and then asserts.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchboard_e2e::{
    meta_signature, process::HubProcess, Backend, FakeProvider, PgDatabase, TestServer,
    ADMIN_EMAIL, ADMIN_PASSWORD,
};

const RECIPIENTS: usize = 10_000;
/// Messages per inbound webhook while the contacts are created.
const PER_WEBHOOK: usize = 200;
/// The outbox's rows in flight at once (`outbox::BATCH`).
const IN_FLIGHT: usize = 16;
const APP_SECRET: &str = "crash-test-app-secret";
const PHONE_NUMBER_ID: &str = "106540352242922";
const WABA: &str = "102290129340398";
const PATIENCE: Duration = Duration::from_secs(600);

/// A hub process on `database_url`, talking to the fake at `fake`.
fn spawn(database_url: &str, fake: &str, backend: Backend, log: &Path) -> HubProcess {
    let env = [
        ("RUST_LOG", "warn".to_string()),
        ("DATABASE_URL", database_url.to_string()),
        ("SWITCHBOARD_RATE_LOGIN", "100000".into()),
        ("SWITCHBOARD_RATE_WEBHOOK", "100000".into()),
        ("WHATSAPP_APP_SECRET", APP_SECRET.into()),
        ("WHATSAPP_VERIFY_TOKEN", "crash-verify".into()),
        ("WHATSAPP_ACCESS_TOKEN", "crash-token".into()),
        ("WHATSAPP_PHONE_NUMBER_ID", PHONE_NUMBER_ID.into()),
        ("WHATSAPP_WABA_ID", WABA.into()),
        ("WHATSAPP_GRAPH_URL", format!("{fake}/v25.0")),
        ("SWITCHBOARD_OUTBOX_POLL", "0.1".into()),
        ("SWITCHBOARD_OUTBOX_LEASE", "2".into()),
        ("SWITCHBOARD_JOBS_POLL", "0.2".into()),
        ("SWITCHBOARD_JOBS_LEASE", "3".into()),
        ("SWITCHBOARD_SHUTDOWN_TIMEOUT", "2".into()),
    ];
    HubProcess::spawn(env!("CARGO_BIN_EXE_switchboard"), "hub", backend, &env, log)
}

/// Waits until the hub answers `/readyz` with its database up.
async fn ready(hub: &mut HubProcess) {
    hub.wait_ready(Duration::from_secs(120), |b| b["database"] == "ok")
        .await;
}

async fn poll<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn phone(i: usize) -> String {
    format!("62813{i:07}")
}

/// One webhook carrying messages from customers `from..to`.
fn inbound(from: usize, to: usize) -> Vec<u8> {
    let contacts: Vec<Value> = (from..to)
        .map(|i| json!({"profile": {"name": format!("Jamaah {i}")}, "wa_id": phone(i)}))
        .collect();
    let messages: Vec<Value> = (from..to)
        .map(|i| json!({"from": phone(i), "id": format!("wamid.crash-in-{i}"), "timestamp": "1749416383", "type": "text", "text": {"body": "Info umroh?"}}))
        .collect();
    json!({"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
        "contacts": contacts, "messages": messages}}]}]})
    .to_string()
    .into_bytes()
}

fn template_sends(fake: &FakeProvider) -> Vec<String> {
    fake.calls_to("/messages")
        .into_iter()
        .filter(|c| c.body["type"] == "template" && c.status == 200)
        .map(|c| c.body["to"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn login(srv: &TestServer) -> String {
    srv.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
}

async fn run(backend: Backend, database_url: &str) {
    let fake = FakeProvider::start().await;
    let logs = tempfile::tempdir().expect("log dir");
    let log = logs.path().join("hub.log");
    let mut hub = spawn(database_url, &fake.base, backend, &log);
    ready(&mut hub).await;
    let token = login(&hub.srv).await;
    poll("templates synced", || async {
        let (_, b) = hub.srv.get("/api/templates", Some(&token)).await;
        (b["templates"].as_array().map_or(0, Vec::len) == 4).then_some(())
    })
    .await;
    for start in (0..RECIPIENTS).step_by(PER_WEBHOOK) {
        let body = inbound(start, (start + PER_WEBHOOK).min(RECIPIENTS));
        let sig = meta_signature(APP_SECRET, &body);
        let (status, b) = hub
            .srv
            .post_webhook("/webhooks/whatsapp", body, &[("x-hub-signature-256", sig)])
            .await;
        assert_eq!(status, 200, "{b}");
    }
    poll("10,000 contacts", || async {
        let (_, b) = hub.srv.get("/api/contacts?limit=1", Some(&token)).await;
        (b["total"].as_u64() == Some(RECIPIENTS as u64)).then_some(())
    })
    .await;
    let (status, seg) = hub
        .srv
        .post(
            "/api/segments",
            Some(&token),
            &json!({"name": "Everyone", "filter": {}}),
        )
        .await;
    assert_eq!(status, 201, "{seg}");
    let pace = json!({"pace": {"provider": "meta", "per_second": 1000, "limit": "unlimited"}});
    let (status, b) = hub
        .srv
        .put("/api/whatsapp/numbers/env-meta/pace", Some(&token), &pace)
        .await;
    assert_eq!(status, 200, "{b}");
    let content = json!({"kind": "template", "name": "promo_umroh", "language": "id", "variables": [
        {"source": "contact_name"}, {"source": "text", "value": "Umroh Hemat"},
        {"source": "text", "value": "15 Maret"}, {"source": "text", "value": "12"}]});
    let (status, b) = hub
        .srv
        .post(
            "/api/broadcasts",
            Some(&token),
            &json!({"name": "10k", "number_id": "env-meta", "content": content, "segment_id": seg["segment"]["id"]}),
        )
        .await;
    assert_eq!(status, 201, "{b}");
    let id = b["broadcast"]["id"].as_str().unwrap().to_string();
    let (status, b) = hub
        .srv
        .post(
            &format!("/api/broadcasts/{id}/send"),
            Some(&token),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{b}");

    // Kill it a third of the way through.
    poll("a third sent", || async {
        (template_sends(&fake).len() >= RECIPIENTS / 3).then_some(())
    })
    .await;
    hub.kill();
    let at_kill = template_sends(&fake).len();
    assert!(at_kill < RECIPIENTS, "finished before the kill");

    let mut hub = spawn(database_url, &fake.base, backend, &log);
    ready(&mut hub).await;
    let token = login(&hub.srv).await;
    let done = poll("broadcast done after restart", || async {
        let (_, b) = hub
            .srv
            .get(&format!("/api/broadcasts/{id}"), Some(&token))
            .await;
        (b["broadcast"]["state"] == "done").then_some(b["broadcast"].clone())
    })
    .await;
    let stats = &done["stats"];
    assert_eq!(stats["recipients"], RECIPIENTS, "{stats}");
    assert_eq!(stats["sent"], RECIPIENTS, "{stats}");
    assert_eq!(stats["pending"], 0, "{stats}");

    // Every queued copy reaches the fake: wait for the outbox to drain.
    let sends = poll("every recipient reached", || async {
        let sends = template_sends(&fake);
        let distinct: std::collections::HashSet<&String> = sends.iter().collect();
        (distinct.len() == RECIPIENTS).then_some(sends)
    })
    .await;
    let mut per: HashMap<String, usize> = HashMap::new();
    for to in &sends {
        *per.entry(to.clone()).or_insert(0) += 1;
    }
    let twice: Vec<(&String, &usize)> = per.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        per.values().all(|n| *n <= 2),
        "a copy sent three times: {twice:?}"
    );
    assert!(
        twice.len() <= IN_FLIGHT,
        "{} recipients got two copies; only the {IN_FLIGHT} calls in flight at the kill may: {twice:?}",
        twice.len()
    );
    eprintln!(
        "{backend:?}: killed after {at_kill} copies; {} recipients, {} provider calls, {} in flight at the kill sent again",
        per.len(),
        sends.len(),
        twice.len()
    );
    fake.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10k_broadcast_killed_mid_send_finishes_once_per_recipient_sqlite() {
    let dir = tempfile::tempdir().expect("db dir");
    let url = format!("sqlite://{}", dir.path().join("crash.db").display());
    run(Backend::Sqlite, &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10k_broadcast_killed_mid_send_finishes_once_per_recipient_postgres() {
    if !switchboard_e2e::postgres_available() {
        assert!(
            std::env::var("SWITCHBOARD_TEST_REQUIRE_PG").is_err(),
            "PostgreSQL required but unavailable"
        );
        eprintln!("skipped: no PostgreSQL");
        return;
    }
    let db = PgDatabase::create();
    run(Backend::Postgres, db.url()).await;
}
