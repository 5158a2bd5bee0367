//! Browser test of Settings → Scheduled jobs (`docs/scheduler.md`): the recurring
//! jobs and a scheduled one are listed with kind, key, due time, state and
//! attempts; a job that gave up shows its error and stands out; the state filter
//! narrows the list; Refresh shows a job the (manual) clock made due as done. At
//! 1366×900 and 390×844, light and dark: no sideways scrolling, no serious or
//! critical axe-core violation.
//!
//! SQLite only, like `browser_numbers.rs`: the API is covered on both backends in
//! `scheduler.rs`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use serde_json::json;
use switchboard::scheduler::{JobKind, NewJob};
use switchboard_e2e::browser::{browser_turn, inbox, inbox_login, Driver, Session, DESKTOP, PHONE};
use switchboard_e2e::{eventually, Backend, TestServer};

/// Waits until some element with `data-testid` `testid` is shown and contains `part`.
async fn says(s: &Session, testid: &str, part: &str) {
    s.wait_for(
        &format!("{testid} to say {part:?}"),
        &format!(
            "[...document.querySelectorAll('[data-testid={testid}]')].some(n => !n.hidden && n.textContent.includes({}))",
            json!(part)
        ),
    )
    .await;
}

async fn open_jobs(s: &Session) {
    s.execute("location.hash = '#/settings/jobs'", json!([]))
        .await;
    s.wait_for(
        "jobs listed",
        "document.querySelectorAll('[data-testid=job-row]').length >= 3",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_scheduled_jobs() {
    let Some(_lock) = browser_turn().await else {
        return;
    };
    let server = TestServer::start_manual(Backend::Sqlite, |cfg| {
        cfg.scheduler.backoff.max_attempts = 1;
    })
    .await;
    let admin = server.admin_agent().await;
    let token = admin.token.clone();
    let t0 = server.now_ms();
    server
        .schedule_job(NewJob {
            kind: JobKind::OverdueTasks,
            key: "after-the-import".into(),
            due_at: t0 + 600_000,
            payload: json!({}),
        })
        .await;
    // A job only a newer version knows: it fails on this node, visibly.
    server
        .execute_sql(&format!(
            "INSERT INTO jobs (id, kind, key, payload, due_at, state, attempts, created_at, \
             updated_at) VALUES ('future-1', 'broadcasts.send_recipient', 'recipient-42', '{{}}', \
             {t0}, 'pending', 0, {t0}, {t0})"
        ))
        .await;
    server.advance(Duration::from_secs(1));
    eventually("the unknown job failed", || async {
        let (_, body) = server.get("/api/jobs?state=failed", Some(&token)).await;
        (body["jobs"].as_array().unwrap().len() == 1).then_some(())
    })
    .await;

    let driver = Driver::start().await;
    let d = driver.session_sized(DESKTOP.0, DESKTOP.1).await;
    d.resize(DESKTOP.0, DESKTOP.1).await;
    inbox_login(&d, &server.base, &admin).await;
    open_jobs(&d).await;
    says(&d, "job-list", "Working-hours tick").await;
    says(&d, "job-list", "after-the-import").await;
    says(&d, "job-error", "no handler for job kind").await;
    d.check_screen("settings-jobs-1366").await;

    // The clock passes the scheduled job's due time; Refresh shows it done.
    server.advance(Duration::from_secs(601));
    eventually("the scheduled job done", || async {
        let (_, body) = server.get("/api/jobs?state=done", Some(&token)).await;
        body["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["key"] == "after-the-import")
            .then_some(())
    })
    .await;
    d.click("refresh", &inbox("jobs-refresh")).await;
    d.wait_for(
        "the scheduled job shown done",
        "[...document.querySelectorAll('[data-testid=job-row]')].some(r => \
         r.dataset.key === 'after-the-import' && r.textContent.includes('Done'))",
    )
    .await;
    d.execute(
        "const el = document.querySelector('[data-testid=jobs-state]'); \
         el.value = 'done'; el.dispatchEvent(new Event('change', {bubbles: true}));",
        json!([]),
    )
    .await;
    d.wait_for(
        "only done jobs",
        "(() => { const rows = [...document.querySelectorAll('[data-testid=job-row]')]; \
         return rows.length >= 1 && rows.every(r => r.textContent.includes('Done')) \
         && rows.some(r => r.dataset.key === 'after-the-import'); })()",
    )
    .await;
    d.execute(
        "const el = document.querySelector('[data-testid=jobs-state]'); \
         el.value = ''; el.dispatchEvent(new Event('change', {bubbles: true}));",
        json!([]),
    )
    .await;

    // On a phone the cards stack without sideways scrolling.
    d.resize(PHONE.0, PHONE.1).await;
    open_jobs(&d).await;
    says(&d, "job-error", "no handler for job kind").await;
    d.check_screen("settings-jobs-390").await;
    d.close().await;
}
