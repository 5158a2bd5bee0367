//! The durable scheduler through the real server (`docs/scheduler.md`), on a manual
//! clock so nothing sleeps: a job runs only once the clock passes its due time;
//! scheduling the same key twice keeps one job; two nodes on one database run each
//! of many jobs exactly once; a job whose lease holder died is taken over when the
//! lease runs out; a job that keeps failing is retried with backoff and then failed,
//! its error visible in `GET /api/jobs` and `/metrics`.
//!
//! The jobs are real kinds: one-off `leads.overdue_tasks` checks (harmless: they
//! push only tasks really overdue, once) and, for failures, a kind this node does
//! not know — what a job written by a newer version looks like to an older node.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{json, Value};
use switchboard::scheduler::{JobKind, NewJob};
use switchboard_e2e::{both_backends, eventually, TestServer};

const OVERDUE: &str = "leads.overdue_tasks";

/// The recurring overdue check runs every second of the manual clock: after any
/// advance of a second or more, its next due time passing "now" shows the runner
/// has handled that moment (a barrier, not a sleep).
fn every_second(cfg: &mut switchboard::Config) {
    cfg.lead_task_check = Duration::from_secs(1);
}

async fn jobs(srv: &TestServer, admin: &str, query: &str) -> Vec<Value> {
    let (status, body) = srv.get(&format!("/api/jobs{query}"), Some(admin)).await;
    assert_eq!(status, 200, "{body}");
    body["jobs"].as_array().unwrap().clone()
}

async fn job(srv: &TestServer, admin: &str, kind: &str, key: &str) -> Value {
    jobs(srv, admin, &format!("?kind={kind}"))
        .await
        .into_iter()
        .find(|j| j["key"] == key)
        .unwrap_or_else(|| panic!("no job {kind}/{key}"))
}

/// Waits until the runner has handled the clock's current time.
async fn settled(srv: &TestServer, admin: &str) {
    let now = srv.now_ms();
    eventually("the scheduler to catch up with the clock", || async {
        let j = job(srv, admin, OVERDUE, "every").await;
        (j["state"] == "pending" && j["due_at_ms"].as_i64().unwrap() > now).then_some(())
    })
    .await;
}

fn one_off(key: &str, due_at: i64) -> NewJob {
    NewJob {
        kind: JobKind::OverdueTasks,
        key: key.into(),
        due_at,
        payload: json!({}),
    }
}

async fn until_state(srv: &TestServer, admin: &str, kind: &str, key: &str, state: &str) -> Value {
    eventually(&format!("job {key} {state}"), || async {
        let j = job(srv, admin, kind, key).await;
        (j["state"] == state).then_some(j)
    })
    .await
}

both_backends! {
    async fn a_job_runs_once_and_only_after_the_clock_passes_its_due_time(backend) {
        let srv = TestServer::start_manual(backend, every_second).await;
        let admin = srv.admin_token().await;
        let t0 = srv.now_ms();
        let hour = 3_600_000;
        let first = srv.schedule_job(one_off("later", t0 + hour)).await;
        let second = srv.schedule_job(one_off("later", t0 + 5)).await;
        assert_eq!(first, second, "the same (kind, key) is one job");

        // Half an hour on: the runner has run what was due, not this job.
        srv.advance(Duration::from_secs(1800));
        settled(&srv, &admin).await;
        let j = job(&srv, &admin, OVERDUE, "later").await;
        assert_eq!((j["state"].as_str(), j["attempts"].as_i64()), (Some("pending"), Some(0)), "{j}");
        assert_eq!(j["due_at_ms"], t0 + hour, "the second schedule changed nothing");

        // Past its due time: it runs, once.
        srv.advance(Duration::from_secs(1801));
        let j = until_state(&srv, &admin, OVERDUE, "later", "done").await;
        assert_eq!(j["attempts"], 1, "{j}");
        assert!(j["last_error"].is_null(), "{j}");
        let all = jobs(&srv, &admin, "?kind=leads.overdue_tasks").await;
        assert_eq!(all.iter().filter(|j| j["key"] == "later").count(), 1);

        // Only admins see the jobs.
        let agent = srv.agent("agent").await;
        let (status, _) = srv.get("/api/jobs", Some(&agent.token)).await;
        assert_eq!(status, 403);
        let (status, body) = srv.get("/api/jobs?state=nope", Some(&admin)).await;
        assert_eq!(status, 400, "{body}");
    }
}

both_backends! {
    async fn two_nodes_run_each_job_exactly_once(backend) {
        let a = TestServer::start_manual(backend, |cfg| {
            every_second(cfg);
            cfg.cluster.node_id = Some("node-a".into());
        }).await;
        let b = a.sibling(|cfg| cfg.cluster.node_id = Some("node-b".into())).await;
        let admin = a.admin_token().await;
        let t0 = a.now_ms();
        let n = 60;
        a.schedule_jobs((0..n).map(|i| one_off(&format!("both-{i}"), t0 + 60_000)).collect()).await;
        a.advance(Duration::from_secs(61));
        let done = eventually("every job done", || async {
            let done: Vec<Value> = jobs(&a, &admin, "?kind=leads.overdue_tasks&state=done").await
                .into_iter()
                .filter(|j| j["key"].as_str().unwrap().starts_with("both-"))
                .collect();
            (done.len() == n).then_some(done)
        })
        .await;
        for j in &done {
            assert_eq!(j["attempts"], 1, "claimed more than once: {j}");
            let owner = j["lease_owner"].as_str().unwrap();
            assert!(owner.starts_with("node-a/") || owner.starts_with("node-b/"), "{j}");
        }
        // Both nodes answer the same list (one database).
        let (status, body) = b.get("/api/jobs?state=done&limit=500", Some(&admin)).await;
        assert_eq!(status, 200, "{body}");
        assert!(body["jobs"].as_array().unwrap().len() >= n);
    }
}

both_backends! {
    async fn a_dead_nodes_lease_runs_out_and_another_node_takes_the_job(backend) {
        let srv = TestServer::start_manual(backend, |cfg| {
            every_second(cfg);
            cfg.cluster.node_id = Some("alive".into());
            cfg.scheduler.lease = Duration::from_secs(60);
        }).await;
        let admin = srv.admin_token().await;
        let t0 = srv.now_ms();
        // A node claimed this job and died: running, its lease a minute from now.
        srv.execute_sql(&format!(
            "INSERT INTO jobs (id, kind, key, payload, due_at, state, attempts, lease_owner, \
             lease_until, created_at, updated_at) VALUES ('orphan-1', '{OVERDUE}', 'orphan', '{{}}', \
             {t0}, 'running', 1, 'dead/claim', {}, {t0}, {t0})",
            t0 + 60_000
        )).await;

        srv.advance(Duration::from_secs(30));
        settled(&srv, &admin).await;
        let j = job(&srv, &admin, OVERDUE, "orphan").await;
        assert_eq!(j["state"], "running", "taken before its lease ran out: {j}");
        assert_eq!(j["lease_owner"], "dead/claim");

        srv.advance(Duration::from_secs(31));
        let j = until_state(&srv, &admin, OVERDUE, "orphan", "done").await;
        assert_eq!(j["attempts"], 2, "{j}");
        assert!(j["lease_owner"].as_str().unwrap().starts_with("alive/"), "{j}");
    }
}

both_backends! {
    async fn a_failing_job_backs_off_then_fails_with_its_error_visible(backend) {
        let srv = TestServer::start_manual(backend, |cfg| {
            every_second(cfg);
            cfg.scheduler.backoff.base = Duration::from_secs(10);
            cfg.scheduler.backoff.max = Duration::from_secs(60);
            cfg.scheduler.backoff.max_attempts = 3;
        }).await;
        let admin = srv.admin_token().await;
        let t0 = srv.now_ms();
        let kind = "broadcasts.from_the_future";
        srv.execute_sql(&format!(
            "INSERT INTO jobs (id, kind, key, payload, due_at, state, attempts, created_at, \
             updated_at) VALUES ('future-1', '{kind}', 'k1', '{{}}', {t0}, 'pending', 0, {t0}, {t0})"
        )).await;

        // First attempt at once (the clock moves a second), then 10 s, then 20 s.
        let mut expected_delay = 10_000;
        for attempt in 1..3 {
            srv.advance(Duration::from_secs(1));
            let j = eventually(&format!("attempt {attempt}"), || async {
                let j = job(&srv, &admin, kind, "k1").await;
                (j["attempts"] == attempt && j["state"] == "pending").then_some(j)
            })
            .await;
            let error = j["last_error"].as_str().unwrap();
            assert!(error.contains("no handler for job kind"), "{j}");
            let wait = j["due_at_ms"].as_i64().unwrap() - srv.now_ms();
            assert_eq!(wait, expected_delay, "backoff before attempt {}: {j}", attempt + 1);
            srv.advance(Duration::from_millis(u64::try_from(wait).unwrap() - 1_000));
            expected_delay *= 2;
        }
        srv.advance(Duration::from_secs(1));
        let j = until_state(&srv, &admin, kind, "k1", "failed").await;
        assert_eq!(j["attempts"], 3, "{j}");
        assert!(j["last_error"].as_str().unwrap().starts_with("gave up after 3 attempts: no handler"), "{j}");
        let failed = jobs(&srv, &admin, "?state=failed").await;
        assert_eq!(failed.len(), 1, "{failed:?}");

        let text = srv.http.get(srv.url("/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(text.contains("switchboard_jobs_failed 1"), "{text}");
        assert!(text.contains("switchboard_jobs_backlog"), "{text}");
    }
}
