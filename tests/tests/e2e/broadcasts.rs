//! Broadcasts (`docs/campaigns.md`) through the real server against the fake Graph
//! API and fake WAHA: a template broadcast reaches every recipient of its segment
//! once, with its variables filled per contact (exact request body), skipping the
//! opted-out; its analytics count sent, delivered, replies and skips; pause stops
//! it and resume finishes it without a second copy; cancel stops it for good; a
//! scheduled one starts at its local time (manual clock); the number's pace is
//! honoured as measured by the fake's own receive times (Meta per second, WAHA's
//! minimum gap); bad input and callers without `campaigns.send` are refused.

// Test bodies run inside the `both_backends!` helpers, which clippy does not see as
// tests; a panic with a message is how a test reports a broken expectation.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};
use switchboard_e2e::{
    both_backends, eventually, meta_status_webhook, meta_text_webhook, wa_fixture_json,
    whatsapp_config_with_templates, Backend, FakeCall, FakeProvider, TestServer,
};

/// The WABA of the fixtures.
const WABA: &str = "102290129340398";

async fn start(backend: Backend, fake: &FakeProvider) -> TestServer {
    let base = fake.base.clone();
    TestServer::start_with(backend, move |cfg| {
        whatsapp_config_with_templates(cfg, &base);
    })
    .await
}

async fn start_manual(backend: Backend, fake: &FakeProvider) -> TestServer {
    let base = fake.base.clone();
    TestServer::start_manual(backend, move |cfg| {
        whatsapp_config_with_templates(cfg, &base);
    })
    .await
}

fn phone(i: usize) -> String {
    format!("62812{i:07}")
}

/// `n` WhatsApp customers write in over Meta; waits until each has a contact.
async fn meta_customers(server: &TestServer, token: &str, n: usize) {
    for i in 0..n {
        let body = meta_text_webhook(&phone(i), &format!("wamid.in-{i}"), "Halo").to_string();
        assert_eq!(server.meta_webhook(body.as_bytes()).await.0, 200);
    }
    contacts_exist(server, token, n).await;
}

async fn contacts_exist(server: &TestServer, token: &str, n: usize) {
    eventually("contacts stored", || async {
        let (_, body) = server.get("/api/contacts?limit=1", Some(token)).await;
        (body["total"].as_i64() == Some(n as i64)).then_some(())
    })
    .await;
}

/// A segment of every contact; returns its id.
async fn everyone(server: &TestServer, token: &str) -> String {
    let (status, body) = server
        .post(
            "/api/segments",
            Some(token),
            &json!({"name": "Everyone", "filter": {}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["segment"]["id"].as_str().unwrap().to_string()
}

async fn set_pace(server: &TestServer, token: &str, number: &str, pace: Value) {
    let (status, body) = server
        .put(
            &format!("/api/whatsapp/numbers/{number}/pace"),
            Some(token),
            &json!({"pace": pace}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

fn fast_meta() -> Value {
    json!({"provider": "meta", "per_second": 1000, "limit": "unlimited"})
}

/// The promo_umroh template (four body variables), the first from the contact.
fn umroh() -> Value {
    json!({
        "kind": "template",
        "name": "promo_umroh",
        "language": "id",
        "variables": [
            {"source": "contact_name"},
            {"source": "text", "value": "Umroh Hemat Maret"},
            {"source": "text", "value": "15 Maret 2026"},
            {"source": "text", "value": "12"},
        ],
    })
}

async fn create(
    server: &TestServer,
    token: &str,
    number: &str,
    content: Value,
    segment: &str,
) -> String {
    let (status, body) = server
        .post(
            "/api/broadcasts",
            Some(token),
            &json!({"name": "March promo", "number_id": number, "content": content, "segment_id": segment}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["broadcast"]["state"], "draft");
    body["broadcast"]["id"].as_str().unwrap().to_string()
}

async fn act(server: &TestServer, token: &str, id: &str, action: &str) -> (u16, Value) {
    server
        .post(
            &format!("/api/broadcasts/{id}/{action}"),
            Some(token),
            &json!({}),
        )
        .await
}

async fn get(server: &TestServer, token: &str, id: &str) -> Value {
    let (status, body) = server
        .get(&format!("/api/broadcasts/{id}"), Some(token))
        .await;
    assert_eq!(status, 200, "{body}");
    body["broadcast"].clone()
}

async fn until_state(server: &TestServer, token: &str, id: &str, state: &str) -> Value {
    eventually(&format!("broadcast {state}"), || async {
        let b = get(server, token, id).await;
        (b["state"] == state).then_some(b)
    })
    .await
}

/// Template sends the fake received, by recipient.
fn template_sends(fake: &FakeProvider) -> Vec<FakeCall> {
    fake.calls_to("/messages")
        .into_iter()
        .filter(|c| c.body["type"] == "template")
        .collect()
}

fn per_recipient(calls: &[FakeCall], key: impl Fn(&FakeCall) -> String) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for c in calls {
        *m.entry(key(c)).or_insert(0) += 1;
    }
    m
}

fn count(list: &Value, key: &str) -> i64 {
    list.as_array()
        .unwrap()
        .iter()
        .find(|p| p[0] == key)
        .map_or(0, |p| p[1].as_i64().unwrap())
}

both_backends! {
    async fn a_template_broadcast_reaches_each_recipient_once_and_skips_the_opted_out(backend) {
        let fake = FakeProvider::start().await;
        let server = start(backend, &fake).await;
        let admin = server.admin_token().await;
        server.templates_synced(&admin, 4).await;
        meta_customers(&server, &admin, 5).await;
        // Customer 4 opts out (and gets one confirmation).
        let stop = meta_text_webhook(&phone(4), "wamid.stop", "STOP").to_string();
        assert_eq!(server.meta_webhook(stop.as_bytes()).await.0, 200);
        fake.wait_for("opt-out confirmation", |c| c.iter().any(|c| c.body["to"] == phone(4))).await;
        let segment = everyone(&server, &admin).await;
        set_pace(&server, &admin, "env-meta", fast_meta()).await;
        let marketing = server.agent("marketing").await;
        let id = create(&server, &marketing.token, "env-meta", umroh(), &segment).await;
        let (status, body) = act(&server, &marketing.token, &id, "send").await;
        assert_eq!(status, 200, "{body}");
        let done = until_state(&server, &marketing.token, &id, "done").await;
        fake.wait_for("four copies", |c| c.iter().filter(|c| c.body["type"] == "template").count() >= 4).await;
        let sends = template_sends(&fake);
        assert_eq!(sends.len(), 4, "{sends:?}");
        let by_to = per_recipient(&sends, |c| c.body["to"].as_str().unwrap().to_string());
        for i in 0..4 {
            assert_eq!(by_to.get(&phone(i)), Some(&1), "{by_to:?}");
        }
        assert!(!by_to.contains_key(&phone(4)), "the opted-out customer got a copy");
        // The exact Graph request: Meta's template shape with the contact's name.
        let one = sends.iter().find(|c| c.body["to"] == phone(0)).unwrap();
        let name = wa_fixture_json("meta_text_message.json")["entry"][0]["changes"][0]["value"]["contacts"][0]["profile"]["name"].clone();
        assert_eq!(one.body, json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": phone(0),
            "type": "template",
            "template": {
                "name": "promo_umroh",
                "language": {"code": "id"},
                "components": [{"type": "body", "parameters": [
                    {"type": "text", "text": name},
                    {"type": "text", "text": "Umroh Hemat Maret"},
                    {"type": "text", "text": "15 Maret 2026"},
                    {"type": "text", "text": "12"},
                ]}],
            },
        }));
        let stats = &done["stats"];
        assert_eq!(stats["recipients"], 5, "{stats}");
        assert_eq!(stats["sent"], 4, "{stats}");
        assert_eq!(stats["pending"], 0, "{stats}");
        assert_eq!(count(&stats["skipped"], "opted_out"), 1, "{stats}");

        // Agents see the copy in its conversation, rendered.
        let mut rendered = 0;
        for conv in server.conversations(&admin).await {
            let history = server.history(&admin, conv["id"].as_str().unwrap()).await;
            rendered += history
                .iter()
                .filter(|m| m["body"].as_str().unwrap_or("").contains("Paket Umroh Hemat Maret berangkat 15 Maret 2026"))
                .count();
        }
        assert_eq!(rendered, 4);

        // Delivery and a reply show in the analytics.
        let delivered = meta_status_webhook(&[(&provider_id_of(&fake, &phone(1)), "delivered")]).to_string();
        assert_eq!(server.meta_webhook(delivered.as_bytes()).await.0, 200);
        let reply = meta_text_webhook(&phone(2), "wamid.reply-2", "Mau info").to_string();
        assert_eq!(server.meta_webhook(reply.as_bytes()).await.0, 200);
        eventually("delivery and reply counted", || async {
            let s = get(&server, &marketing.token, &id).await["stats"].clone();
            (s["delivered"] == 1 && s["replied"] == 1).then_some(())
        })
        .await;

        // A finished broadcast cannot be sent again, nor edited.
        let (status, body) = act(&server, &marketing.token, &id, "send").await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(template_sends(&fake).len(), 4);
        fake.stop().await;
    }
}

/// The wamid the fake answered for the template send to `to`.
fn provider_id_of(fake: &FakeProvider, to: &str) -> String {
    // The fake numbers its answers in call order: `wamid.fake-{n}` for the n-th send.
    let calls: Vec<FakeCall> = fake
        .calls_to("/messages")
        .into_iter()
        .filter(|c| c.status == 200)
        .collect();
    let n = calls
        .iter()
        .position(|c| c.body["to"] == to && c.body["type"] == "template")
        .unwrap();
    format!("wamid.fake-{}", n + 1)
}

both_backends! {
    async fn pause_holds_the_rest_resume_finishes_without_a_second_copy_cancel_stops_for_good(backend) {
        let fake = FakeProvider::start().await;
        let server = start(backend, &fake).await;
        let admin = server.admin_token().await;
        server.templates_synced(&admin, 4).await;
        meta_customers(&server, &admin, 24).await;
        let segment = everyone(&server, &admin).await;
        // Four copies a second: the broadcast takes a few seconds, long enough to pause.
        set_pace(&server, &admin, "env-meta", json!({"provider": "meta", "per_second": 4, "limit": "unlimited"})).await;
        let id = create(&server, &admin, "env-meta", umroh(), &segment).await;
        assert_eq!(act(&server, &admin, &id, "send").await.0, 200);
        fake.wait_for("first copies", |c| c.iter().filter(|c| c.body["type"] == "template").count() >= 2).await;
        let (status, body) = act(&server, &admin, &id, "pause").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["broadcast"]["state"], "paused");
        // The copies already handed to the outbox go out; nothing after them, even
        // after the paused job has looked again (its due time moved on).
        let paused = eventually("paused broadcast settles", || async {
            let b = get(&server, &admin, &id).await;
            let sent = b["stats"]["sent"].as_i64().unwrap();
            (template_sends(&fake).len() as i64 == sent).then_some(b)
        })
        .await;
        let due = job(&server, &admin, &id).await["due_at_ms"].as_i64().unwrap();
        eventually("the paused job looked twice", || async {
            let j = job(&server, &admin, &id).await;
            (j["due_at_ms"].as_i64().unwrap() > due + 2_000).then_some(())
        })
        .await;
        let later = get(&server, &admin, &id).await;
        assert_eq!(later["stats"], paused["stats"], "sent while paused");
        assert_eq!(later["state"], "paused");
        let sent_while_paused = paused["stats"]["sent"].as_i64().unwrap();
        assert!(sent_while_paused < 24, "{paused}");
        assert_eq!(paused["stats"]["pending"].as_i64().unwrap(), 24 - sent_while_paused);
        assert_eq!(template_sends(&fake).len() as i64, sent_while_paused);
        assert_eq!(act(&server, &admin, &id, "pause").await.0, 409, "pausing twice");

        let (status, body) = act(&server, &admin, &id, "resume").await;
        assert_eq!(status, 200, "{body}");
        set_pace(&server, &admin, "env-meta", fast_meta()).await;
        until_state(&server, &admin, &id, "done").await;
        fake.wait_for("the last copies", |c| c.iter().filter(|c| c.body["type"] == "template").count() >= 24).await;
        let sends = template_sends(&fake);
        assert_eq!(sends.len(), 24);
        let by_to = per_recipient(&sends, |c| c.body["to"].as_str().unwrap().to_string());
        assert!(by_to.values().all(|n| *n == 1), "{by_to:?}");

        // Cancel mid-send: the rest are never sent.
        set_pace(&server, &admin, "env-meta", json!({"provider": "meta", "per_second": 4, "limit": "unlimited"})).await;
        let second = create(&server, &admin, "env-meta", umroh(), &segment).await;
        assert_eq!(act(&server, &admin, &second, "send").await.0, 200);
        fake.wait_for("second broadcast started", |c| c.iter().filter(|c| c.body["type"] == "template").count() >= 26).await;
        let (status, body) = act(&server, &admin, &second, "cancel").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["broadcast"]["state"], "cancelled");
        let cancelled = eventually("cancelled broadcast settles", || async {
            let b = get(&server, &admin, &second).await;
            let sent = b["stats"]["sent"].as_i64().unwrap();
            // Cancelled while pending, or finished by its own pass when the cancel
            // came while it ran: either way it sends nothing more.
            let state = job(&server, &admin, &second).await["state"].clone();
            let idle = state == "cancelled" || state == "done";
            (template_sends(&fake).len() as i64 == 24 + sent && idle).then_some(b)
        })
        .await;
        assert!(cancelled["stats"]["pending"].as_i64().unwrap() > 0, "{cancelled}");
        assert_eq!(act(&server, &admin, &second, "resume").await.0, 409);
        fake.stop().await;
    }
}

/// The broadcast's scheduler job.
async fn job(server: &TestServer, token: &str, id: &str) -> Value {
    let (status, body) = server
        .get("/api/jobs?kind=broadcast.pass", Some(token))
        .await;
    assert_eq!(status, 200, "{body}");
    body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["key"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

both_backends! {
    async fn a_scheduled_broadcast_starts_at_its_local_time(backend) {
        let fake = FakeProvider::start().await;
        let server = start_manual(backend, &fake).await;
        let admin = server.admin_token().await;
        server.templates_synced(&admin, 4).await;
        meta_customers(&server, &admin, 2).await;
        let segment = everyone(&server, &admin).await;
        set_pace(&server, &admin, "env-meta", fast_meta()).await;
        let id = create(&server, &admin, "env-meta", umroh(), &segment).await;
        // Two hours from the manual clock's now, as a Jakarta wall-clock time (UTC+7).
        let at = server.now_ms() + 2 * 3_600_000;
        let local = wall_clock(at + 7 * 3_600_000);
        let (status, body) = server
            .post(&format!("/api/broadcasts/{id}/schedule"), Some(&admin), &json!({"send_at": local, "time_zone": "Asia/Jakarta"}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["broadcast"]["state"], "scheduled");
        assert_eq!(body["broadcast"]["time_zone"], "Asia/Jakarta");
        // A time that does not parse, or an unknown zone, is refused with a reason.
        let (status, body) = server
            .post(&format!("/api/broadcasts/{id}/schedule"), Some(&admin), &json!({"send_at": "tomorrow", "time_zone": "Asia/Jakarta"}))
            .await;
        assert_eq!(status, 400, "{body}");
        let (status, _) = server
            .post(&format!("/api/broadcasts/{id}/schedule"), Some(&admin), &json!({"send_at": local, "time_zone": "Mars/Olympus"}))
            .await;
        assert_eq!(status, 400);
        server.advance(Duration::from_secs(3_600));
        // An hour early nothing goes out: the job is still pending, later.
        assert_eq!(job(&server, &admin, &id).await["state"], "pending");
        assert_eq!(get(&server, &admin, &id).await["state"], "scheduled");
        server.advance(Duration::from_secs(3_600 + 60));
        fake.wait_for("both copies", |c| c.iter().filter(|c| c.body["type"] == "template").count() == 2).await;
        // The pass that finds nobody left runs on the manual clock too.
        server.advance(Duration::from_secs(5));
        until_state(&server, &admin, &id, "done").await;
        assert_eq!(template_sends(&fake).len(), 2);
        fake.stop().await;
    }
}

both_backends! {
    async fn meta_pace_is_honoured_as_the_fake_measures_it(backend) {
        let fake = FakeProvider::start().await;
        let server = start(backend, &fake).await;
        let admin = server.admin_token().await;
        server.templates_synced(&admin, 4).await;
        const RATE: usize = 10;
        meta_customers(&server, &admin, 3 * RATE).await;
        let segment = everyone(&server, &admin).await;
        set_pace(&server, &admin, "env-meta", json!({"provider": "meta", "per_second": RATE, "limit": "unlimited"})).await;
        let id = create(&server, &admin, "env-meta", umroh(), &segment).await;
        assert_eq!(act(&server, &admin, &id, "send").await.0, 200);
        until_state(&server, &admin, &id, "done").await;
        let times: Vec<std::time::Instant> = fake
            .wait_for("every copy", |c| c.iter().filter(|c| c.body["type"] == "template").count() == 3 * RATE)
            .await
            .into_iter()
            .filter(|c| c.body["type"] == "template")
            .map(|c| c.at)
            .collect();
        // No second holds more than RATE copies: copy i and copy i + RATE are at
        // least a second apart (less 2 % for the network between hub and fake).
        for i in 0..times.len() - RATE {
            let span = times[i + RATE] - times[i];
            assert!(span >= Duration::from_millis(980), "copies {i}..{} within {span:?}", i + RATE);
        }
        fake.stop().await;
    }
}

both_backends! {
    async fn a_waha_text_broadcast_keeps_the_slow_jittered_gap(backend) {
        let fake = FakeProvider::start().await;
        let server = start(backend, &fake).await;
        let admin = server.admin_token().await;
        for i in 0..3 {
            let mut v = wa_fixture_json("waha_message.json");
            v["payload"]["id"] = json!(format!("false_{}@c.us_IN{i}", phone(i)));
            v["payload"]["from"] = json!(format!("{}@c.us", phone(i)));
            v["payload"]["fromMe"] = json!(false);
            assert_eq!(server.waha_webhook(v.to_string().as_bytes()).await.0, 200);
        }
        contacts_exist(&server, &admin, 3).await;
        let segment = everyone(&server, &admin).await;
        // A template is Meta's: refused on a WAHA number.
        let (status, body) = server
            .post("/api/broadcasts", Some(&admin), &json!({"name": "x", "number_id": "env-waha", "content": umroh(), "segment_id": segment}))
            .await;
        assert_eq!(status, 400, "{body}");
        set_pace(&server, &admin, "env-waha", json!({"provider": "waha", "min_gap_ms": 1000, "max_gap_ms": 1500})).await;
        let text = json!({"kind": "text", "body": "Promo Umroh Maret: balas INFO"});
        let id = create(&server, &admin, "env-waha", text, &segment).await;
        assert_eq!(act(&server, &admin, &id, "send").await.0, 200);
        until_state(&server, &admin, &id, "done").await;
        let sends: Vec<FakeCall> = fake
            .wait_for("three texts", |c| c.iter().filter(|c| c.path.ends_with("/api/sendText")).count() == 3)
            .await
            .into_iter()
            .filter(|c| c.path.ends_with("/api/sendText"))
            .collect();
        for pair in sends.windows(2) {
            let gap = pair[1].at - pair[0].at;
            assert!(gap >= Duration::from_millis(980), "gap {gap:?}");
        }
        assert!(sends.iter().all(|c| c.body["text"] == "Promo Umroh Maret: balas INFO"));
        fake.stop().await;
    }
}

both_backends! {
    async fn bad_broadcasts_and_callers_without_the_permission_are_refused(backend) {
        let fake = FakeProvider::start().await;
        let server = start(backend, &fake).await;
        let admin = server.admin_token().await;
        server.templates_synced(&admin, 4).await;
        let segment = everyone(&server, &admin).await;
        let post = |body: Value| {
            let (server, admin) = (&server, admin.clone());
            async move { server.post("/api/broadcasts", Some(&admin), &body).await }
        };
        // Free text from a Meta number.
        let (status, body) = post(json!({"name": "x", "number_id": "env-meta", "content": {"kind": "text", "body": "hi"}, "segment_id": segment})).await;
        assert_eq!(status, 400, "{body}");
        // A template still pending at Meta.
        let pending = json!({"kind": "template", "name": "welcome_lead", "language": "en_US", "variables": [{"source": "text", "value": "a"}, {"source": "text", "value": "b"}]});
        let (status, body) = post(json!({"name": "x", "number_id": "env-meta", "content": pending, "segment_id": segment})).await;
        assert_eq!(status, 400, "{body}");
        assert!(body["message"].as_str().unwrap().contains("approved"), "{body}");
        // The wrong number of variables.
        let mut short = umroh();
        short["variables"].as_array_mut().unwrap().pop();
        let (status, body) = post(json!({"name": "x", "number_id": "env-meta", "content": short, "segment_id": segment})).await;
        assert_eq!(status, 400, "{body}");
        // No such segment, no such number, an empty name, an unknown field.
        let (status, _) = post(json!({"name": "x", "number_id": "env-meta", "content": umroh(), "segment_id": "nope"})).await;
        assert_eq!(status, 400);
        let (status, _) = post(json!({"name": "x", "number_id": "nope", "content": umroh(), "segment_id": segment})).await;
        assert_eq!(status, 400);
        let (status, _) = post(json!({"name": " ", "number_id": "env-meta", "content": umroh(), "segment_id": segment})).await;
        assert_eq!(status, 400);
        let (status, _) = post(json!({"name": "x", "number_id": "env-meta", "content": umroh(), "segment_id": segment, "extra": 1})).await;
        assert_eq!(status, 400);
        // An agent may not see or send broadcasts.
        let agent = server.agent("agent").await;
        assert_eq!(server.get("/api/broadcasts", Some(&agent.token)).await.0, 403);
        let (status, _) = server.post("/api/broadcasts", Some(&agent.token), &json!({"name": "x", "number_id": "env-meta", "content": umroh(), "segment_id": segment})).await;
        assert_eq!(status, 403);
        // A marketer may not change a number's pace, but lists the numbers they may
        // broadcast from (no secrets); a WAHA pace on a Meta number is refused.
        let marketing = server.agent("marketing").await;
        let (status, body) = server.get("/api/broadcasts/numbers", Some(&marketing.token)).await;
        assert_eq!(status, 200, "{body}");
        let meta = body["numbers"].as_array().unwrap().iter().find(|n| n["id"] == "env-meta").cloned().unwrap_or_default();
        assert_eq!(meta["provider"], "meta", "{body}");
        assert_eq!(meta["waba_id"], WABA, "{body}");
        assert!(!body.to_string().contains("EAAG"), "a secret in {body}");
        assert_eq!(server.get("/api/broadcasts/numbers", Some(&agent.token)).await.0, 403);
        let (status, _) = server.put("/api/whatsapp/numbers/env-meta/pace", Some(&marketing.token), &json!({"pace": fast_meta()})).await;
        assert_eq!(status, 403);
        let (status, _) = server.put("/api/whatsapp/numbers/env-meta/pace", Some(&admin), &json!({"pace": {"provider": "waha", "min_gap_ms": 3000, "max_gap_ms": 8000}})).await;
        assert_eq!(status, 400);
        let (status, _) = server.put("/api/whatsapp/numbers/env-meta/pace", Some(&admin), &json!({"pace": {"provider": "meta", "per_second": 0, "limit": "tier250"}})).await;
        assert_eq!(status, 400);
        // Editing: a draft can be renamed; the audit log has its creation.
        let id = create(&server, &admin, "env-meta", umroh(), &segment).await;
        let (status, body) = server
            .put(&format!("/api/broadcasts/{id}"), Some(&admin), &json!({"name": "April promo", "number_id": "env-meta", "content": umroh(), "segment_id": segment, "attribution_days": 3}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["broadcast"]["name"], "April promo");
        assert_eq!(body["broadcast"]["attribution_days"], 3);
        let (_, audit) = server.get("/api/audit?action=broadcast.created", Some(&admin)).await;
        assert_eq!(audit["entries"].as_array().map_or(0, Vec::len), 1, "{audit}");
        fake.stop().await;
    }
}

/// `YYYY-MM-DDTHH:MM` of epoch ms `t` read as UTC (civil-from-days, H. Hinnant).
fn wall_clock(t: i64) -> String {
    let secs = t.div_euclid(1_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}",
        rem / 3_600,
        rem % 3_600 / 60
    )
}
