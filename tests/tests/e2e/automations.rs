//! Automations (`docs/automations.md`) through the real server against the fake
//! Graph API, on the manual clock: every team has the shipped defaults, off, and
//! one with an unchosen send cannot be turned on; a lead-created sequence sends its
//! welcome text at once, waits, then sends an approved template (exact request
//! body) and creates a task — and a customer who replies while it waits gets
//! nothing more, and its step jobs run again send nothing twice; a tag sequence skips the opted-out contact, moves the others'
//! leads, and that stage move starts a stage sequence; a no-reply sequence starts
//! once per silence; bad sequences and callers without `campaigns.manage` are
//! refused.

// Test bodies run inside the `both_backends!` helpers, which clippy does not see as
// tests; a panic with a message is how a test reports a broken expectation.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{json, Value};
use switchboard::scheduler::JobKind;
use switchboard_e2e::{
    both_backends, eventually, meta_text_webhook, whatsapp_config_with_templates, Backend,
    FakeProvider, TestServer,
};

async fn start(backend: Backend, fake: &FakeProvider) -> TestServer {
    let base = fake.base.clone();
    TestServer::start_manual(backend, move |cfg| {
        whatsapp_config_with_templates(cfg, &base);
    })
    .await
}

fn phone(i: usize) -> String {
    format!("62813{i:07}")
}

async fn write_in(server: &TestServer, i: usize, wamid: &str, text: &str) {
    let body = meta_text_webhook(&phone(i), wamid, text).to_string();
    assert_eq!(server.meta_webhook(body.as_bytes()).await.0, 200);
}

/// Text messages the fake received for `to` with exactly `body`.
fn texts(fake: &FakeProvider, to: &str, body: &str) -> usize {
    fake.calls_to("/messages")
        .iter()
        .filter(|c| c.body["to"] == to && c.body["text"]["body"] == body)
        .count()
}

/// Template messages the fake received for `to`.
fn templates_to(fake: &FakeProvider, to: &str) -> Vec<Value> {
    fake.calls_to("/messages")
        .into_iter()
        .filter(|c| c.body["to"] == to && c.body["type"] == "template")
        .map(|c| c.body)
        .collect()
}

async fn create(server: &TestServer, token: &str, body: Value) -> Value {
    let (status, out) = server.post("/api/automations", Some(token), &body).await;
    assert_eq!(status, 201, "{out}");
    out
}

async fn enable(server: &TestServer, token: &str, id: &str) -> (u16, Value) {
    server
        .post(
            &format!("/api/automations/{id}/enable"),
            Some(token),
            &json!({}),
        )
        .await
}

async fn get(server: &TestServer, token: &str, id: &str) -> Value {
    server
        .get(&format!("/api/automations/{id}"), Some(token))
        .await
        .1
}

/// Waits until automation `id` counts `status` runs `n`.
async fn runs_reach(server: &TestServer, token: &str, id: &str, status: &str, n: i64) -> Value {
    eventually(&format!("{n} {status} runs"), || async {
        let a = get(server, token, id).await;
        (a["runs"][status] == n).then_some(a)
    })
    .await
}

fn welcome_then_template() -> Vec<Value> {
    vec![
        json!({"kind": "send", "content": {"kind": "text", "body": "Welcome aboard!"}}),
        json!({"kind": "wait", "minutes": 60}),
        json!({"kind": "send", "content": {
            "kind": "template", "name": "promo_umroh", "language": "id",
            "variables": [
                {"source": "contact_name"},
                {"source": "text", "value": "Umroh Hemat Maret"},
                {"source": "text", "value": "15 Maret 2026"},
                {"source": "text", "value": "12"},
            ],
        }}),
        json!({"kind": "create_task", "title": "Call about the umroh package", "due_in_minutes": 30}),
    ]
}

both_backends! {
    async fn a_lead_sequence_waits_sends_a_template_and_a_reply_stops_it(backend) {
        let fake = FakeProvider::start().await;
        let server = start(backend, &fake).await;
        let admin = server.admin_token().await;
        let team = server.default_team_id().await;

        // The shipped defaults are there, off; one with an unchosen send stays off.
        let (_, list) = server.get("/api/automations", Some(&admin)).await;
        let presets: Vec<&Value> = list["automations"].as_array().unwrap().iter().collect();
        let keys: Vec<&str> = presets.iter().filter_map(|a| a["preset"].as_str()).collect();
        assert_eq!(keys, ["welcome", "stage_follow_up", "no_reply"], "{list}");
        assert!(presets.iter().all(|a| a["enabled"] == false));
        let no_reply = presets.iter().find(|a| a["preset"] == "no_reply").unwrap();
        let (status, body) = enable(&server, &admin, no_reply["id"].as_str().unwrap()).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["message"], "Step 1: choose what to send.");

        server.templates_synced(&admin, 4).await;
        let a = create(&server, &admin, json!({
            "team_id": team, "name": "New lead follow-up",
            "trigger": {"kind": "lead_created"}, "stop_on_reply": true,
            "steps": welcome_then_template(),
        })).await;
        let id = a["id"].as_str().unwrap().to_string();
        assert_eq!(a["enabled"], false);
        let (status, body) = enable(&server, &admin, &id).await;
        assert_eq!(status, 200, "{body}");

        // Two customers write in: each gets the welcome text once, then waits.
        write_in(&server, 0, "wamid.a-0", "Halo").await;
        write_in(&server, 1, "wamid.b-0", "Halo").await;
        fake.wait_for("two welcomes", |c| {
            c.iter().filter(|c| c.body["text"]["body"] == "Welcome aboard!").count() >= 2
        }).await;
        let waiting = runs_reach(&server, &admin, &id, "active", 2).await;
        assert!(
            waiting["recent_runs"].as_array().unwrap().iter().all(|r| r["step"] == 2 && r["next_at"].is_string()),
            "{waiting}"
        );
        // Customer 1 answers while the sequence waits: it stops for them.
        write_in(&server, 1, "wamid.b-1", "Thanks, I will think about it").await;
        let after_reply = runs_reach(&server, &admin, &id, "stopped", 1).await;
        let stopped = after_reply["recent_runs"].as_array().unwrap().iter()
            .find(|r| r["status"] == "stopped").unwrap().clone();
        assert_eq!(stopped["reason"], "customer replied");

        // An hour later customer 0 gets the template, and their lead a task.
        server.advance(Duration::from_secs(61 * 60));
        let done = runs_reach(&server, &admin, &id, "done", 1).await;
        assert_eq!(done["runs"]["active"], 0, "{done}");
        fake.wait_for("the template", |c| c.iter().any(|c| c.body["type"] == "template")).await;
        let sent = templates_to(&fake, &phone(0));
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0]["template"]["name"], "promo_umroh");
        assert_eq!(sent[0]["template"]["components"][0]["parameters"][1]["text"], "Umroh Hemat Maret");
        assert!(templates_to(&fake, &phone(1)).is_empty(), "the customer who replied got the template");
        assert_eq!(texts(&fake, &phone(0), "Welcome aboard!"), 1);
        assert_eq!(texts(&fake, &phone(1), "Welcome aboard!"), 1);
        let (_, tasks) = server.get("/api/tasks", Some(&admin)).await;
        let ours: Vec<&Value> = tasks["tasks"].as_array().unwrap().iter()
            .filter(|t| t["title"] == "Call about the umroh package").collect();
        assert_eq!(ours.len(), 1, "{tasks}");

        // Its step jobs run again (a lost lease hands a job to another node): the
        // run has moved on, so nothing is sent or created twice.
        let run = done["recent_runs"].as_array().unwrap().iter()
            .find(|r| r["status"] == "done").unwrap()["id"].as_str().unwrap().to_string();
        for step in [0, 2] {
            let key = format!("{run}:{step}");
            server.rerun_job(JobKind::AutomationStep, &key).await;
            server.advance(Duration::from_secs(1));
            eventually("the step job ran again", || async {
                let (_, jobs) = server.get("/api/jobs?kind=automation.step", Some(&admin)).await;
                jobs["jobs"].as_array().unwrap().iter()
                    .any(|j| j["key"] == key.as_str() && j["state"] == "done").then_some(())
            })
            .await;
        }
        // More time changes nothing either: every step ran once.
        server.advance(Duration::from_secs(3 * 3600));
        let (_, again) = server.get(&format!("/api/automations/{id}"), Some(&admin)).await;
        assert_eq!(again["runs"]["done"], 1);
        assert_eq!(templates_to(&fake, &phone(0)).len(), 1);
        assert_eq!(texts(&fake, &phone(0), "Welcome aboard!"), 1);
        let (_, tasks) = server.get("/api/tasks", Some(&admin)).await;
        let ours = tasks["tasks"].as_array().unwrap().iter()
            .filter(|t| t["title"] == "Call about the umroh package").count();
        assert_eq!(ours, 1, "{tasks}");
        fake.stop().await;
    }
}

both_backends! {
    async fn a_tag_sequence_skips_the_opted_out_and_its_stage_move_starts_another(backend) {
        let fake = FakeProvider::start().await;
        let server = start(backend, &fake).await;
        let admin = server.admin_token().await;
        let team = server.default_team_id().await;
        for i in 0..2 {
            write_in(&server, i, &format!("wamid.t-{i}"), "Halo").await;
        }
        // Customer 1 opts out of marketing.
        write_in(&server, 1, "wamid.stop", "STOP").await;
        fake.wait_for("opt-out confirmation", |c| c.iter().any(|c| c.body["to"] == phone(1))).await;
        let contacts = eventually("contacts", || async {
            let (_, body) = server.get("/api/contacts?limit=10", Some(&admin)).await;
            let list = body["contacts"].as_array().cloned().unwrap_or_default();
            (list.len() == 2).then_some(list)
        })
        .await;
        let ids: Vec<String> = contacts.iter().map(|c| c["contact"]["id"].as_str().unwrap().to_string()).collect();
        let (status, tag) = server.post("/api/tags", Some(&admin), &json!({"name": "VIP"})).await;
        assert_eq!(status, 201, "{tag}");
        let tag_id = tag["id"].as_str().or_else(|| tag["tag"]["id"].as_str()).unwrap().to_string();

        let stage_seq = create(&server, &admin, json!({
            "team_id": team, "name": "Qualified: call",
            "trigger": {"kind": "stage_entered", "stage": "qualified"},
            "steps": [{"kind": "create_task", "title": "Call the VIP", "due_in_minutes": 15}],
        })).await;
        let tag_seq = create(&server, &admin, json!({
            "team_id": team, "name": "VIP offer",
            "trigger": {"kind": "tag_added", "tag_id": tag_id},
            "steps": [
                {"kind": "send", "content": {"kind": "text", "body": "A VIP offer for you"}},
                {"kind": "move_stage", "stage": "qualified"},
            ],
        })).await;
        for a in [&stage_seq, &tag_seq] {
            let (status, body) = enable(&server, &admin, a["id"].as_str().unwrap()).await;
            assert_eq!(status, 200, "{body}");
        }
        let (status, body) = server
            .post(&format!("/api/tags/{tag_id}/add"), Some(&admin), &json!({"contact_ids": ids}))
            .await;
        assert_eq!(status, 200, "{body}");

        let tag_id_seq = tag_seq["id"].as_str().unwrap();
        let done = runs_reach(&server, &admin, tag_id_seq, "done", 2).await;
        fake.wait_for("the VIP offer", |c| c.iter().any(|c| c.body["text"]["body"] == "A VIP offer for you")).await;
        assert_eq!(texts(&fake, &phone(0), "A VIP offer for you"), 1);
        assert_eq!(texts(&fake, &phone(1), "A VIP offer for you"), 0, "the opted-out customer got the offer");
        let skipped: Vec<&Value> = done["recent_runs"].as_array().unwrap().iter()
            .filter(|r| r["reason"].as_str().is_some_and(|s| s.contains("opted out"))).collect();
        assert_eq!(skipped.len(), 1, "{done}");

        // Both leads moved to qualified, which started the stage sequence once each.
        let stage_done = runs_reach(&server, &admin, stage_seq["id"].as_str().unwrap(), "done", 2).await;
        assert_eq!(stage_done["runs"]["active"], 0);
        let (_, tasks) = server.get("/api/tasks", Some(&admin)).await;
        let calls = tasks["tasks"].as_array().unwrap().iter().filter(|t| t["title"] == "Call the VIP").count();
        assert_eq!(calls, 2, "{tasks}");

        // Tagging again changes nothing: they have the tag, nothing is sent twice.
        let (status, _) = server
            .post(&format!("/api/tags/{tag_id}/add"), Some(&admin), &json!({"contact_ids": ids}))
            .await;
        assert_eq!(status, 200);
        server.advance(Duration::from_secs(600));
        assert_eq!(get(&server, &admin, tag_id_seq).await["runs"]["done"], 2);
        assert_eq!(texts(&fake, &phone(0), "A VIP offer for you"), 1);
        fake.stop().await;
    }
}

both_backends! {
    async fn a_no_reply_sequence_starts_once_per_silence(backend) {
        let fake = FakeProvider::start().await;
        let server = start(backend, &fake).await;
        let admin = server.admin_token().await;
        let team = server.default_team_id().await;
        let hello = create(&server, &admin, json!({
            "team_id": team, "name": "Hello", "trigger": {"kind": "lead_created"},
            "steps": [{"kind": "send", "content": {"kind": "text", "body": "Hello from the team"}}],
        })).await;
        let nudge = create(&server, &admin, json!({
            "team_id": team, "name": "Still there?", "trigger": {"kind": "no_reply", "hours": 2},
            "steps": [{"kind": "send", "content": {"kind": "text", "body": "Are you still there?"}}],
        })).await;
        for a in [&hello, &nudge] {
            assert_eq!(enable(&server, &admin, a["id"].as_str().unwrap()).await.0, 200);
        }
        write_in(&server, 0, "wamid.n-0", "Halo").await;
        // The team (the hello sequence) wrote last; the customer is silent.
        fake.wait_for("hello", |c| c.iter().any(|c| c.body["text"]["body"] == "Hello from the team")).await;
        let nudge_id = nudge["id"].as_str().unwrap();
        server.advance(Duration::from_secs(90 * 60));
        server.advance(Duration::from_secs(31 * 60));
        runs_reach(&server, &admin, nudge_id, "done", 1).await;
        fake.wait_for("nudge", |c| c.iter().any(|c| c.body["text"]["body"] == "Are you still there?")).await;
        // The same silence does not start it again, however long it lasts.
        server.advance(Duration::from_secs(3 * 3600));
        server.advance(Duration::from_secs(60));
        assert_eq!(get(&server, &admin, nudge_id).await["runs"]["done"], 1);
        assert_eq!(texts(&fake, &phone(0), "Are you still there?"), 1);
        fake.stop().await;
    }
}

both_backends! {
    async fn bad_sequences_and_callers_without_the_permission_are_refused(backend) {
        let fake = FakeProvider::start().await;
        let server = start(backend, &fake).await;
        let admin = server.admin_token().await;
        let team = server.default_team_id().await;
        let bad = [
            (json!({"kind": "stage_entered", "stage": "nowhere"}), json!([{"kind": "send", "content": null}]), "There is no stage"),
            (json!({"kind": "lead_created"}), json!([]), "1 to 20 steps"),
            (json!({"kind": "lead_created"}), json!([{"kind": "wait", "minutes": 0}, {"kind": "add_tag", "tag_id": "x"}]), "Step 1"),
            (json!({"kind": "no_reply", "hours": 0}), json!([{"kind": "send", "content": null}]), "silence"),
        ];
        for (trigger, steps, says) in bad {
            let (status, body) = server.post("/api/automations", Some(&admin), &json!({
                "team_id": team, "name": "x", "trigger": trigger, "steps": steps,
            })).await;
            assert_eq!(status, 400, "{body}");
            assert!(body["message"].as_str().unwrap().contains(says), "{body}");
        }
        // A template that is not approved cannot be turned on.
        let a = create(&server, &admin, json!({
            "team_id": team, "name": "Unknown template", "trigger": {"kind": "lead_created"},
            "steps": [{"kind": "send", "content": {"kind": "template", "name": "no_such", "language": "en_US", "variables": []}}],
        })).await;
        let (status, body) = enable(&server, &admin, a["id"].as_str().unwrap()).await;
        assert_eq!(status, 400, "{body}");
        assert!(body["message"].as_str().unwrap().contains("not approved"), "{body}");
        // Defaults are turned off, not deleted; others can be deleted.
        let (_, list) = server.get("/api/automations", Some(&admin)).await;
        let preset = list["automations"].as_array().unwrap().iter().find(|a| a["preset"].is_string()).unwrap().clone();
        let (status, _) = server.delete(&format!("/api/automations/{}", preset["id"].as_str().unwrap()), Some(&admin)).await;
        assert_eq!(status, 409);
        let (status, _) = server.delete(&format!("/api/automations/{}", a["id"].as_str().unwrap()), Some(&admin)).await;
        assert_eq!(status, 204);
        // Agents may not manage automations; marketing may.
        let agent = server.agent("agent").await;
        assert_eq!(server.get("/api/automations", Some(&agent.token)).await.0, 403);
        let marketing = server.agent("marketing").await;
        assert_eq!(server.get("/api/automations", Some(&marketing.token)).await.0, 200);
        fake.stop().await;
    }
}
