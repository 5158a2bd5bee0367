//! Contacts, tags, segments and marketing opt-out (`docs/contacts.md`), end to end
//! through the real server: tag CRUD and bulk changes (audited, live in another
//! agent's inbox); segments over tags any/all/none, channel, lead stage and consent
//! with their preview counts; STOP over WhatsApp (fake Meta webhook) opting the
//! contact out with one confirmation through the fake Graph API, a second STOP
//! sending none, START re-subscribing, the STOP message kept for agents and not
//! answered by the bot; per-team keywords; who may do what.

// Test bodies run inside the `both_backends!` helpers, which clippy does not see as
// tests; a panic with a message is how a test reports a broken expectation.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::{json, Value};
use switchboard_e2e::{
    both_backends, eventually, meta_text_webhook, whatsapp_config, FakeProvider, TestGuest,
    TestServer,
};

/// A widget guest who wrote one message (so the contact has a lead).
async fn customer(srv: &TestServer, text: &str) -> TestGuest {
    let g = srv.guest().await;
    let (status, body) = srv
        .post_message(
            &g.token,
            &g.conversation_id,
            &format!("m-{}", g.contact_id),
            text,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    g
}

async fn create_tag(srv: &TestServer, token: &str, name: &str) -> String {
    let (status, body) = srv
        .post("/api/tags", Some(token), &json!({"name": name}))
        .await;
    assert_eq!(status, 201, "{body}");
    body["tag"]["id"].as_str().unwrap().to_string()
}

async fn tag_many(srv: &TestServer, token: &str, tag: &str, contacts: &[&str], add: bool) -> u64 {
    let verb = if add { "add" } else { "remove" };
    let (status, body) = srv
        .post(
            &format!("/api/tags/{tag}/{verb}"),
            Some(token),
            &json!({"contact_ids": contacts}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["changed"].as_u64().unwrap()
}

async fn preview(srv: &TestServer, token: &str, filter: Value) -> (i64, Vec<String>) {
    let (status, body) = srv
        .post(
            "/api/segments/preview",
            Some(token),
            &json!({"filter": filter}),
        )
        .await;
    assert_eq!(status, 200, "{filter}: {body}");
    let mut ids: Vec<String> = body["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["contact"]["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    (body["count"].as_i64().unwrap(), ids)
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

both_backends! {
    async fn tags_crud_bulk_and_live_in_the_inbox(backend) {
        let srv = TestServer::start(backend).await;
        let marketing = srv.agent("marketing").await;
        let agent = srv.agent("agent").await;
        let (a, b, c) = (customer(&srv, "hi").await, customer(&srv, "hello").await, customer(&srv, "hey").await);

        let vip = create_tag(&srv, &marketing.token, "VIP").await;
        let umrah = create_tag(&srv, &marketing.token, " Umrah   2027 ").await;
        let (status, body) = srv.post("/api/tags", Some(&marketing.token), &json!({"name": "vip"})).await;
        assert_eq!(status, 409, "names are unique whatever the case: {body}");
        let (status, body) = srv.patch(&format!("/api/tags/{umrah}"), Some(&marketing.token), &json!({"name": "Umrah 2026"})).await;
        assert_eq!((status, body["tag"]["name"].as_str()), (200, Some("Umrah 2026")), "{body}");

        assert_eq!(tag_many(&srv, &marketing.token, &vip, &[&a.contact_id, &b.contact_id, &a.contact_id], true).await, 2);
        assert_eq!(tag_many(&srv, &marketing.token, &vip, &[&a.contact_id, &b.contact_id, &c.contact_id], true).await, 1, "only c was missing it");
        assert_eq!(tag_many(&srv, &marketing.token, &vip, &[&b.contact_id], false).await, 1);
        let (status, body) = srv.post(&format!("/api/tags/{vip}/add"), Some(&marketing.token), &json!({"contact_ids": ["nobody"]})).await;
        assert_eq!(status, 400, "{body}");

        let (status, tags) = srv.get("/api/tags", Some(&agent.token)).await;
        assert_eq!(status, 200);
        let count_of = |id: &str| tags["tags"].as_array().unwrap().iter().find(|t| t["id"] == id).unwrap()["contacts"].clone();
        assert_eq!(count_of(&vip), 2);
        assert_eq!(count_of(&umrah), 0);

        // An agent tags a contact in the inbox; another agent's inbox sees it live.
        let other = srv.agent("agent").await;
        let mut ws = srv.ws_agent(&other.token).await;
        let (status, body) = srv.put(&format!("/api/contacts/{}/tags", c.contact_id), Some(&agent.token), &json!({"tag_ids": [umrah]})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["tags"].as_array().unwrap().len(), 1, "VIP removed, Umrah set: {body}");
        let frame = ws.next_of_type("contact_tags").await;
        assert_eq!(frame["conversation_id"], c.conversation_id.as_str());
        assert_eq!(frame["tags"][0]["name"], "Umrah 2026");

        // The contacts list shows tags and finds by name or phone.
        let (status, page) = srv.get("/api/contacts?limit=10", Some(&agent.token)).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["total"], 3);
        let row = page["contacts"].as_array().unwrap().iter().find(|r| r["contact"]["id"] == a.contact_id.as_str()).unwrap();
        assert_eq!(row["tags"][0]["name"], "VIP");
        assert_eq!(row["consent"]["state"], "unknown");
        assert_eq!(row["channel"], "widget");

        // Deleting a tag takes it off every contact.
        let (status, _) = srv.delete(&format!("/api/tags/{vip}"), Some(&marketing.token)).await;
        assert_eq!(status, 204);
        let (_, detail) = srv.get(&format!("/api/contacts/{}", a.contact_id), Some(&agent.token)).await;
        assert_eq!(detail["tags"], json!([]));

        // Agents read tags but do not manage them; every management step is audited.
        let (status, _) = srv.post("/api/tags", Some(&agent.token), &json!({"name": "x"})).await;
        assert_eq!(status, 403);
        let admin = srv.admin_token().await;
        let (_, audit) = srv.get("/api/audit?action=tag.", Some(&admin)).await;
        let actions: Vec<&str> = audit["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
        for a in ["tag.created", "tag.renamed", "tag.bulk_added", "tag.bulk_removed", "tag.deleted"] {
            assert!(actions.contains(&a), "{a} missing from {actions:?}");
        }
    }
}

both_backends! {
    async fn segments_filter_by_tags_channel_stage_and_consent(backend) {
        let fake = FakeProvider::start().await;
        let base = fake.base.clone();
        let srv = TestServer::start_with(backend, move |cfg| whatsapp_config(cfg, &base)).await;
        let marketing = srv.agent("marketing").await;
        let admin = srv.admin_token().await;
        let (g1, g2, g3, g4) = (
            customer(&srv, "one").await, customer(&srv, "two").await,
            customer(&srv, "three").await, customer(&srv, "four").await,
        );
        let body = meta_text_webhook("6281234500001", "wamid.seg-1", "Halo").to_string();
        assert_eq!(srv.meta_webhook(body.as_bytes()).await.0, 200);
        let (_, page) = eventually("the WhatsApp contact", || async {
            let (s, p) = srv.get("/api/contacts?q=6281234500001", Some(&admin)).await;
            (s == 200 && p["total"] == 1).then_some((s, p))
        }).await;
        let wa = page["contacts"][0]["contact"]["id"].as_str().unwrap().to_string();
        assert_eq!(page["contacts"][0]["channel"], "whatsapp");

        let a = create_tag(&srv, &marketing.token, "A").await;
        let b = create_tag(&srv, &marketing.token, "B").await;
        tag_many(&srv, &marketing.token, &a, &[&g1.contact_id, &g2.contact_id], true).await;
        tag_many(&srv, &marketing.token, &b, &[&g2.contact_id, &g3.contact_id], true).await;

        let (n, ids) = preview(&srv, &marketing.token, json!({"tags": {"any": [a, b]}})).await;
        assert_eq!((n, ids), (3, sorted(&[&g1.contact_id, &g2.contact_id, &g3.contact_id])));
        let (n, ids) = preview(&srv, &marketing.token, json!({"tags": {"all": [a, b]}})).await;
        assert_eq!((n, ids), (1, sorted(&[&g2.contact_id])));
        let (n, ids) = preview(&srv, &marketing.token, json!({"tags": {"none": [a]}})).await;
        assert_eq!((n, ids), (3, sorted(&[&g3.contact_id, &g4.contact_id, &wa])));
        let (n, ids) = preview(&srv, &marketing.token, json!({"channels": ["whatsapp"]})).await;
        assert_eq!((n, ids), (1, vec![wa.clone()]));
        let (n, _) = preview(&srv, &marketing.token, json!({})).await;
        assert_eq!(n, 5, "an empty filter is every contact with a conversation");

        // Lead stage: move g1's lead to "proposal".
        let lead = srv.lead_where(&admin, &g1.conversation_id, |_| true).await;
        let (status, body) = srv.patch(&format!("/api/leads/{}", lead["id"].as_str().unwrap()), Some(&admin), &json!({"stage": "proposal"})).await;
        assert_eq!(status, 200, "{body}");
        let (n, ids) = preview(&srv, &marketing.token, json!({"lead_stages": ["proposal"]})).await;
        assert_eq!((n, ids), (1, sorted(&[&g1.contact_id])));

        // Consent: g2 opted out by marketing (audited) drops out of "not opted out".
        let (status, body) = srv.put(&format!("/api/contacts/{}/consent", g2.contact_id), Some(&marketing.token), &json!({"state": "opted_out", "note": "asked by phone"})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["consent"]["state"], "opted_out");
        assert_eq!(body["consent"]["source"], "agent");
        let filter = json!({"tags": {"any": [a, b]}, "consent": "not_opted_out"});
        let (n, ids) = preview(&srv, &marketing.token, filter.clone()).await;
        assert_eq!((n, ids), (2, sorted(&[&g1.contact_id, &g3.contact_id])));
        let (n, ids) = preview(&srv, &marketing.token, json!({"consent": "opted_out"})).await;
        assert_eq!((n, ids), (1, sorted(&[&g2.contact_id])));

        // Save, list, preview, change, delete.
        let (status, saved) = srv.post("/api/segments", Some(&marketing.token), &json!({"name": "Warm, reachable", "filter": filter})).await;
        assert_eq!(status, 201, "{saved}");
        let id = saved["segment"]["id"].as_str().unwrap().to_string();
        let (_, p) = srv.get(&format!("/api/segments/{id}/preview"), Some(&marketing.token)).await;
        assert_eq!(p["count"], 2);
        let (status, changed) = srv.put(&format!("/api/segments/{id}"), Some(&marketing.token), &json!({"name": "All A", "filter": {"tags": {"any": [a]}}})).await;
        assert_eq!(status, 200, "{changed}");
        let (_, p) = srv.get(&format!("/api/segments/{id}/preview"), Some(&marketing.token)).await;
        assert_eq!(p["count"], 2);
        let (_, list) = srv.get("/api/segments", Some(&marketing.token)).await;
        assert_eq!(list["segments"][0]["name"], "All A");

        // Bad filters are refused with a reason.
        for bad in [json!({"tags": {"all": [a], "none": [a]}}), json!({"tags": {"any": ["no-such-tag"]}}), json!({"channels": ["fax"]}), json!({"created": {"from_ms": 5, "to_ms": 1}})] {
            let (status, body) = srv.post("/api/segments/preview", Some(&marketing.token), &json!({"filter": bad})).await;
            assert!(status == 400, "{bad}: {status} {body}");
        }
        let agent = srv.agent("agent").await;
        let (status, _) = srv.post("/api/segments", Some(&agent.token), &json!({"name": "x", "filter": {}})).await;
        assert_eq!(status, 403, "agents do not manage segments");
        let (status, _) = srv.put(&format!("/api/contacts/{}/consent", g1.contact_id), Some(&agent.token), &json!({"state": "opted_in"})).await;
        assert_eq!(status, 403, "agents do not edit consent");
        let (status, _) = srv.delete(&format!("/api/segments/{id}"), Some(&marketing.token)).await;
        assert_eq!(status, 204);
        let (_, audit) = srv.get("/api/audit?action=segment.", Some(&admin)).await;
        assert_eq!(audit["entries"].as_array().unwrap().len(), 3);
        let (_, audit) = srv.get("/api/audit?action=contact.consent_changed", Some(&admin)).await;
        assert_eq!(audit["entries"][0]["target_id"], g2.contact_id.as_str());
    }
}

/// Texts the fake Graph API was asked to send, in order.
fn sent_texts(fake: &FakeProvider) -> Vec<String> {
    fake.calls_to("/messages")
        .into_iter()
        .filter(|c| c.status == 200 && c.body["type"] == "text")
        .map(|c| {
            c.body["text"]["body"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// The customer writes `text`; waits until the fake Graph API has sent `sends` texts.
async fn customer_says(
    srv: &TestServer,
    fake: &FakeProvider,
    n: usize,
    text: &str,
    sends: usize,
) -> Vec<String> {
    let body = meta_text_webhook("6281299900001", &format!("wamid.stop-{n}"), text).to_string();
    assert_eq!(srv.meta_webhook(body.as_bytes()).await.0, 200);
    eventually(&format!("{sends} texts sent after {text:?}"), || async {
        let sent = sent_texts(fake);
        (sent.len() >= sends).then_some(sent)
    })
    .await
}

const BOT_REPLY: &str = "Bot here: how can I help?";

both_backends! {
    async fn stop_opts_out_once_start_resubscribes_and_the_bot_stays_quiet(backend) {
        let fake = FakeProvider::start().await;
        let base = fake.base.clone();
        let srv = TestServer::start_with(backend, move |cfg| whatsapp_config(cfg, &base)).await;
        let admin = srv.admin_token().await;
        let team = srv.default_team_id().await;
        let (status, body) = srv.put(&format!("/api/teams/{team}/bot"), Some(&admin), &json!({"enabled": true, "burst_window_ms": 0})).await;
        assert_eq!(status, 200, "{body}");
        // The bot answers anything with "stop" or "hello" in it — but never a keyword.
        let (status, body) = srv.post(&format!("/api/teams/{team}/bot/rules"), Some(&admin),
            &json!({"name": "Any", "priority": 1, "pattern": "hello, stop, start", "reply": BOT_REPLY})).await;
        assert_eq!(status, 201, "{body}");

        let sent = customer_says(&srv, &fake, 1, "hello", 1).await;
        assert_eq!(sent, vec![BOT_REPLY], "the bot answers an ordinary message");
        let sent = customer_says(&srv, &fake, 2, "  Stöp! ", 2).await;
        assert!(sent[1].contains("no longer receive"), "one confirmation: {sent:?}");
        // An ordinary message after it: the bot answers that one only, so it did not
        // answer the STOP (the pipeline keeps each conversation's order).
        let sent = customer_says(&srv, &fake, 3, "hello again", 3).await;
        assert_eq!(sent[2], BOT_REPLY);

        let (_, page) = srv.get("/api/contacts?q=6281299900001", Some(&admin)).await;
        let row = &page["contacts"][0];
        assert_eq!(row["consent"]["state"], "opted_out", "{row}");
        assert_eq!(row["consent"]["source"], "keyword");
        let contact = row["contact"]["id"].as_str().unwrap().to_string();
        let conv = row["conversation_id"].as_str().unwrap().to_string();

        // A second STOP changes nothing and sends nothing.
        let sent = customer_says(&srv, &fake, 4, "STOP", 3).await;
        let sent_after = customer_says(&srv, &fake, 5, "hello once more", 4).await;
        assert_eq!(sent_after.len(), 4, "{sent:?} then {sent_after:?}");
        assert_eq!(sent_after[3], BOT_REPLY);
        assert_eq!(sent_after.iter().filter(|t| t.contains("no longer receive")).count(), 1);

        // START re-subscribes, confirmed once.
        let sent = customer_says(&srv, &fake, 6, "start", 5).await;
        assert!(sent[4].contains("subscribed"), "{sent:?}");
        let (_, detail) = srv.get(&format!("/api/contacts/{contact}"), Some(&admin)).await;
        assert_eq!(detail["consent"]["state"], "opted_in");
        let history: Vec<&str> = detail["consent_history"].as_array().unwrap().iter().map(|e| e["state"].as_str().unwrap()).collect();
        assert_eq!(history, vec!["opted_in", "opted_out"], "newest first, one event per change");
        assert_eq!(detail["consent_history"][1]["source"], "keyword");
        assert_eq!(detail["consent_history"][1]["conversation_id"], conv.as_str());

        // The agent still sees every customer message, STOP included, with its seq.
        let msgs = srv.history(&admin, &conv).await;
        let stop = msgs.iter().find(|m| m["body"] == "  Stöp! " || m["body"] == "Stöp!").expect("the STOP message is kept");
        assert_eq!(stop["sender"]["kind"], "guest");
        assert!(stop["seq"].as_i64().unwrap() > 0);
        let guests = msgs.iter().filter(|m| m["sender"]["kind"] == "guest").count();
        assert_eq!(guests, 6);
    }
}

both_backends! {
    async fn each_team_sets_its_own_keywords(backend) {
        let srv = TestServer::start(backend).await;
        let admin = srv.admin_token().await;
        let team = srv.default_team_id().await;
        let (status, defaults) = srv.get(&format!("/api/teams/{team}/consent-settings"), Some(&admin)).await;
        assert_eq!(status, 200);
        assert_eq!(defaults["opt_out"], json!(["STOP", "UNSUBSCRIBE", "BERHENTI", "STOP PROMO"]));
        let custom = json!({"opt_out": ["BATAL", "BATAL PROMO"], "opt_in": ["MULAI"],
            "opt_out_reply": "Baik, Anda tidak akan menerima promo lagi.", "opt_in_reply": "Selamat datang kembali!"});
        let (status, body) = srv.put(&format!("/api/teams/{team}/consent-settings"), Some(&admin), &custom).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = srv.put(&format!("/api/teams/{team}/consent-settings"), Some(&admin),
            &json!({"opt_out": [], "opt_in": [], "opt_out_reply": "x", "opt_in_reply": "y"})).await;
        assert_eq!(status, 400, "an opt-out keyword is required: {body}");
        let agent = srv.agent("agent").await;
        let (status, _) = srv.put(&format!("/api/teams/{team}/consent-settings"), Some(&agent.token), &custom).await;
        assert_eq!(status, 403);

        // STOP is an ordinary message for this team now; "batal promo" opts out.
        let g = customer(&srv, "STOP").await;
        let (_, body) = srv.post_message(&g.token, &g.conversation_id, "m2", "Batal Promo").await;
        assert!(body["message"]["seq"].as_i64().is_some(), "{body}");
        let msgs = eventually("the confirmation", || async {
            let m = srv.history(&admin, &g.conversation_id).await;
            m.iter().any(|m| m["sender"]["kind"] == "bot").then_some(m)
        }).await;
        let replies: Vec<&Value> = msgs.iter().filter(|m| m["sender"]["kind"] == "bot").collect();
        assert_eq!(replies.len(), 1, "{msgs:?}");
        assert_eq!(replies[0]["body"], "Baik, Anda tidak akan menerima promo lagi.");
        let (_, detail) = srv.get(&format!("/api/contacts/{}", g.contact_id), Some(&admin)).await;
        assert_eq!(detail["consent"]["state"], "opted_out");
        assert_eq!(detail["consent_history"].as_array().unwrap().len(), 1, "the first STOP changed nothing");
        let (_, audit) = srv.get("/api/audit?action=consent.settings_changed", Some(&admin)).await;
        assert_eq!(audit["entries"].as_array().unwrap().len(), 1);
    }
}
