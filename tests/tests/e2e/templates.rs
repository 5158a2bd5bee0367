//! Meta message templates through the real server against the fake Graph API:
//! the start-up sync reads both fixture pages (cursor paging), "Sync now" marks
//! vanished templates deleted, the `message_template_status_update` webhook
//! changes a status and re-syncs; a template with variables goes out as exactly
//! the fixture's request body, outside the 24-hour window where free text is
//! refused; Meta's template errors reach the agent explained (130429 retried,
//! 132001 not); invalid sends and callers without the permission are refused.

// Test bodies run inside the `both_backends!` helpers, which clippy does not see as
// tests; a panic with a message is how a test reports a broken expectation.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::{json, Value};
use switchboard_e2e::{
    both_backends, eventually, meta_text_webhook, wa_fixture, wa_fixture_json,
    whatsapp_config_with_templates, Backend, FakeProvider, TestServer, Ws,
};

/// The WABA of the fixtures (`entry[].id` of the status webhook).
const WABA: &str = "102290129340398";

async fn tpl_server(backend: Backend, fake: &FakeProvider) -> TestServer {
    let base = fake.base.clone();
    TestServer::start_with(backend, move |cfg| {
        whatsapp_config_with_templates(cfg, &base);
    })
    .await
}

fn template_calls(fake: &FakeProvider) -> Vec<switchboard_e2e::FakeCall> {
    fake.calls_to("/message_templates")
}

/// Waits until the start-up sync has stored the templates; returns the list.
async fn synced(server: &TestServer, token: &str, count: usize) -> Value {
    eventually("templates synced", || async {
        let (status, body) = server.get("/api/templates", Some(token)).await;
        assert_eq!(status, 200, "{body}");
        (body["templates"].as_array().unwrap().len() == count).then_some(body)
    })
    .await
}

fn find<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no template {name}: {list}"))
}

/// A customer writes in; returns the conversation id.
async fn customer_writes(server: &TestServer, ws: &mut Ws, wamid: &str) -> String {
    let body = meta_text_webhook("16505551234", wamid, "Hello?").to_string();
    assert_eq!(server.meta_webhook(body.as_bytes()).await.0, 200);
    loop {
        let v = ws.next_json().await;
        if v["type"] == "message" {
            return v["conversation_id"].as_str().unwrap().to_string();
        }
    }
}

fn trip_reminder() -> Value {
    json!({
        "name": "trip_reminder",
        "language": "en_US",
        "body": ["Ana", "EBC Trek", "15 March", "$4,788"],
        "header_media_url": "https://example.com/ebc.jpg",
        "buttons": {"0": ["EBC-2501234"]},
    })
}

both_backends! {
    async fn sync_reads_every_page_and_marks_vanished_templates_deleted(backend) {
        let fake = FakeProvider::start().await;
        let server = tpl_server(backend, &fake).await;
        let admin = server.admin_token().await;
        let list = synced(&server, &admin, 4).await;
        let calls = template_calls(&fake);
        assert_eq!(calls.len(), 2, "two pages: {calls:?}");
        assert!(calls[0].path.ends_with(&format!("/v25.0/{WABA}/message_templates")));
        assert!(!calls[0].query.contains("after="), "{}", calls[0].query);
        assert!(calls[0].query.contains("fields=name%2Clanguage%2Ccategory%2Cstatus%2Ccomponents%2Cid"), "{}", calls[0].query);
        assert!(calls[1].query.contains("after=QVFIU0FAKEAFTER1"), "{}", calls[1].query);
        assert_eq!(calls[0].authorization.as_deref(), Some("Bearer EAAG-test-token"));
        assert_eq!(find(&list, "trip_reminder")["status"], "APPROVED");
        assert_eq!(find(&list, "trip_reminder")["shape"]["body_variables"], 4);
        assert_eq!(find(&list, "promo_umroh")["language"], "id");
        assert_eq!(find(&list, "welcome_lead")["sendable"], false);
        assert_eq!(find(&list, "old_offer")["status"], "REJECTED");
        assert_eq!(list["syncs"][0]["waba_id"], WABA);
        assert_eq!(list["syncs"][0]["ok"], true);
        assert_eq!(list["wabas"][0]["numbers"][0], "env-meta");

        // Meta now lists only the first page: the others are kept, marked deleted.
        let mut only = wa_fixture_json("meta_templates_page1.json");
        only["paging"] = json!({"cursors": {"before": "A", "after": "B"}});
        fake.set_template_pages(vec![only]);
        let (status, body) = server.post("/api/templates/sync", Some(&admin), &json!({})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["synced"][0]["count"], 2, "{body}");
        let (_, list) = server.get("/api/templates", Some(&admin)).await;
        assert_eq!(list["templates"].as_array().unwrap().len(), 4);
        assert_eq!(find(&list, "old_offer")["deleted"], true);
        assert_eq!(find(&list, "trip_reminder")["deleted"], false);
        assert_eq!(template_calls(&fake).len(), 3, "one page this time");
        fake.stop().await;
    }
}

both_backends! {
    async fn a_status_update_webhook_changes_the_status_and_resyncs(backend) {
        let fake = FakeProvider::start().await;
        let server = tpl_server(backend, &fake).await;
        let admin = server.admin_token().await;
        let list = synced(&server, &admin, 4).await;
        assert_eq!(find(&list, "welcome_lead")["status"], "PENDING");
        // What Meta lists once the template is approved.
        let mut page2 = wa_fixture_json("meta_templates_page2.json");
        page2["data"][0]["status"] = json!("APPROVED");
        fake.set_template_pages(vec![wa_fixture_json("meta_templates_page1.json"), page2]);

        let (status, body) = server.meta_webhook(&wa_fixture("meta_template_status_update.json")).await;
        assert_eq!(status, 200, "{body}");
        let (_, list) = server.get("/api/templates", Some(&admin)).await;
        assert_eq!(find(&list, "welcome_lead")["status"], "APPROVED", "applied before the answer");
        assert_eq!(find(&list, "welcome_lead")["sendable"], true);
        fake.wait_for("a re-sync of the WABA", |calls| {
            calls.iter().filter(|c| c.path.ends_with("/message_templates")).count() >= 4
        })
        .await;
        fake.stop().await;
    }
}

both_backends! {
    async fn a_template_goes_out_exactly_and_outside_the_window(backend) {
        let fake = FakeProvider::start().await;
        let server = tpl_server(backend, &fake).await;
        let admin = server.admin_token().await;
        synced(&server, &admin, 4).await;
        let agent = server.agent("agent").await;
        let mut ws = server.ws_agent(&agent.token).await;
        let conv = customer_writes(&server, &mut ws, "wamid.tpl-1").await;
        ws.close().await;
        // The customer last wrote 25 hours ago.
        let long_ago = switchboard::clock::now_ms() - 25 * 3600 * 1000;
        server
            .execute_sql(&format!("UPDATE conversations SET last_inbound_at = {long_ago} WHERE id = '{conv}'"))
            .await;
        let server = server.restart().await;
        let mut ws = server.ws_agent(&agent.token).await;

        let (status, body) = server.post_message(&agent.token, &conv, "late-text", "Hello again").await;
        assert_eq!(status, 409, "free text stays refused: {body}");

        let (status, offer) = server.get(&format!("/api/conversations/{conv}/templates"), Some(&agent.token)).await;
        assert_eq!(status, 200, "{offer}");
        assert_eq!(offer["fields"]["phone"], "+16505551234", "{offer}");
        assert!(offer["templates"].as_array().unwrap().iter().any(|t| t["name"] == "trip_reminder"));

        let (status, body) = server
            .post(&format!("/api/conversations/{conv}/template"), Some(&agent.token), &trip_reminder())
            .await;
        assert_eq!(status, 201, "{body}");
        let text = body["message"]["body"].as_str().unwrap();
        assert!(text.contains("Hi Ana, your EBC Trek trip departs on 15 March. Balance due: $4,788."), "{text}");
        assert_eq!(body["message"]["status"], "pending");
        let st = ws.next_of_type("status").await;
        assert_eq!(st["message_id"], body["message"]["id"]);
        assert_eq!(st["status"], "sent", "{st}");

        let sent = fake.calls_to("/messages");
        assert_eq!(sent.len(), 1, "{sent:?}");
        // The fixture addresses "+16505551234"; the hub addresses the WhatsApp id,
        // as for every message it sends. Everything else is byte-for-byte Meta's.
        let mut expected = wa_fixture_json("meta_send_template_request.json");
        expected["to"] = json!("16505551234");
        assert_eq!(sent[0].body, expected);
        let history = server.history(&agent.token, &conv).await;
        let last = history.last().unwrap();
        assert_eq!(last["status"], "sent");
        assert!(last["body"].as_str().unwrap().contains("Hi Ana"));
        fake.stop().await;
    }
}

both_backends! {
    async fn template_errors_are_explained_and_rate_limits_retried(backend) {
        let fake = FakeProvider::start().await;
        let server = tpl_server(backend, &fake).await;
        let admin = server.admin_token().await;
        synced(&server, &admin, 4).await;
        let agent = server.agent("agent").await;
        let mut ws = server.ws_agent(&agent.token).await;
        let conv = customer_writes(&server, &mut ws, "wamid.tpl-2").await;
        let url = format!("/api/conversations/{conv}/template");

        // 130429: retried with backoff, then delivered once.
        fake.fail_next(1, 400, wa_fixture_json("meta_error_response_130429.json"));
        let (status, body) = server.post(&url, Some(&agent.token), &trip_reminder()).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(ws.next_of_type("status").await["status"], "sent");
        let sends = fake.calls_to("/messages");
        assert_eq!((sends.len(), sends[0].status, sends[1].status), (2, 400, 200));

        // 132001: not retried; the agent reads why.
        fake.fail_next(1, 404, json!({"error": {
            "message": "(#132001) Template name does not exist in the translation",
            "type": "OAuthException", "code": 132001,
            "error_data": {"messaging_product": "whatsapp", "details": "template name (trip_reminder) does not exist in en_US"}
        }}));
        let (status, body) = server.post(&url, Some(&agent.token), &trip_reminder()).await;
        assert_eq!(status, 201, "{body}");
        let st = ws.next_of_type("status").await;
        assert_eq!(st["status"], "failed", "{st}");
        assert_eq!(st["error"]["code"], 132001);
        assert!(st["error"]["title"].as_str().unwrap().contains("does not exist at Meta in this language"), "{st}");
        assert_eq!(fake.calls_to("/messages").len(), 3, "never retried");

        // Refused before anything is stored or sent.
        let mut short = trip_reminder();
        short["body"] = json!(["Ana", "EBC Trek"]);
        let (status, body) = server.post(&url, Some(&agent.token), &short).await;
        assert_eq!(status, 400);
        assert!(body["message"].as_str().unwrap().contains("takes 4 values, 2 given"), "{body}");
        let (status, body) = server
            .post(&url, Some(&agent.token), &json!({"name": "welcome_lead", "language": "en_US", "body": ["A", "B"]}))
            .await;
        assert_eq!(status, 400);
        assert!(body["message"].as_str().unwrap().contains("only approved"), "{body}");
        let mut wrong_lang = trip_reminder();
        wrong_lang["language"] = json!("id");
        let (status, body) = server.post(&url, Some(&agent.token), &wrong_lang).await;
        assert_eq!(status, 400, "{body}");
        assert!(body["message"].as_str().unwrap().contains("in language \"id\""), "{body}");
        assert_eq!(fake.calls_to("/messages").len(), 3, "nothing more sent");
        fake.stop().await;
    }
}

both_backends! {
    async fn only_permitted_roles_sync_list_and_send_templates(backend) {
        let fake = FakeProvider::start().await;
        let server = tpl_server(backend, &fake).await;
        let admin = server.admin_token().await;
        synced(&server, &admin, 4).await;
        let agent = server.agent("agent").await;
        let marketing = server.agent("marketing").await;
        let mut ws = server.ws_agent(&agent.token).await;
        let conv = customer_writes(&server, &mut ws, "wamid.tpl-3").await;

        assert_eq!(server.get("/api/templates", Some(&marketing.token)).await.0, 200);
        assert_eq!(server.post("/api/templates/sync", Some(&marketing.token), &json!({})).await.0, 200);
        assert_eq!(server.get("/api/templates", Some(&agent.token)).await.0, 403);
        assert_eq!(server.post("/api/templates/sync", Some(&agent.token), &json!({})).await.0, 403);
        let url = format!("/api/conversations/{conv}/template");
        let (status, body) = server.post(&url, Some(&marketing.token), &trip_reminder()).await;
        assert_eq!(status, 403, "marketing does not write to customers: {body}");
        assert!(fake.calls_to("/messages").is_empty());
        fake.stop().await;
    }
}
