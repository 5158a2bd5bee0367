//! Several WhatsApp numbers (inboxes), against the fake Graph API / WAHA: two
//! numbers bound to two teams take inbound into the right team and reply from the
//! right number (path, token, API key and session checked on the fake); secrets
//! are write-only and sealed in the database; a WAHA number without an HMAC key
//! refuses webhooks unless `insecure_unsigned`; a FAILED session reaches admins
//! live and the session route asks WAHA; the env configuration shows as the first
//! numbers.

// Test bodies run inside the `both_backends!` helpers, which clippy does not see as
// tests; a panic with a message is how a test reports a broken expectation.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::{json, Value};
use switchboard_e2e::{
    both_backends, meta_signature, meta_text_webhook, wa_fixture, wa_fixture_json, waha_hmac,
    whatsapp_config, Backend, FakeProvider, TestServer, Ws, WAHA_API_KEY, WA_ACCESS_TOKEN,
    WA_APP_SECRET, WA_PHONE_NUMBER_ID,
};

const SALES_PNID: &str = "222333444555";
const SALES_TOKEN: &str = "EAAG-sales-token-x1";
const SALES_APP_SECRET: &str = "sales-app-secret-x2";
const SALES_API_KEY: &str = "waha-sales-key-x3";
const SALES_HMAC: &str = "sales-hmac-key-x4";
const SECRETS: [&str; 4] = [SALES_TOKEN, SALES_APP_SECRET, SALES_API_KEY, SALES_HMAC];

async fn wa_server(backend: Backend, fake: &FakeProvider) -> TestServer {
    let base = fake.base.clone();
    TestServer::start_with(backend, move |cfg| whatsapp_config(cfg, &base)).await
}

/// Adds a number as admin; returns its view.
async fn add_number(server: &TestServer, admin: &str, body: Value) -> Value {
    let (status, answer) = server
        .post("/api/whatsapp/numbers", Some(admin), &body)
        .await;
    assert_eq!(status, 201, "{answer}");
    answer["number"].clone()
}

fn sales_meta(team: &str) -> Value {
    json!({"provider": "meta", "label": "Sales Meta", "team_id": team,
        "phone_number_id": SALES_PNID, "waba_id": "99887766",
        "access_token": SALES_TOKEN, "app_secret": SALES_APP_SECRET})
}

fn sales_waha(team: &str, base: &str) -> Value {
    json!({"provider": "waha", "label": "Sales WAHA", "team_id": team,
        "waha_url": base, "waha_session": "sales",
        "api_key": SALES_API_KEY, "hmac_key": SALES_HMAC})
}

/// A Meta text webhook for the phone number `pnid`, signed with `secret`.
async fn meta_in(server: &TestServer, pnid: &str, secret: &str, from: &str, wamid: &str) -> u16 {
    let mut v = meta_text_webhook(from, wamid, "Hello there");
    v["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = json!(pnid);
    let body = v.to_string().into_bytes();
    let sig = meta_signature(secret, &body);
    server
        .post_webhook("/webhooks/whatsapp", body, &[("x-hub-signature-256", sig)])
        .await
        .0
}

/// A WAHA media message for `session`, signed with `key` (unsigned when `None`).
async fn waha_in(server: &TestServer, session: &str, key: Option<&str>, id: &str) -> (u16, Value) {
    let mut v = wa_fixture_json("waha_message_media.json");
    v["session"] = json!(session);
    v["payload"]["id"] = json!(id);
    let body = v.to_string().into_bytes();
    let headers: Vec<(&str, String)> = key
        .map(|k| vec![("x-webhook-hmac", waha_hmac(k, &body))])
        .unwrap_or_default();
    server.post_webhook("/webhooks/waha", body, &headers).await
}

/// The conversation id of the next customer's `message` frame (agents' own
/// replies come back as frames too).
async fn next_conversation(ws: &mut Ws) -> String {
    loop {
        let v = ws.next_json().await;
        if v["type"] == "message" && v["sender"]["kind"] != "agent" {
            return v["conversation_id"].as_str().unwrap().to_string();
        }
    }
}

async fn team_of(server: &TestServer, admin: &str, conv: &str) -> String {
    let (status, body) = server
        .get(&format!("/api/conversations/{conv}"), Some(admin))
        .await;
    assert_eq!(status, 200, "{body}");
    body["team_id"].as_str().expect("team_id").to_string()
}

async fn reply(server: &TestServer, admin: &str, conv: &str, key: &str) {
    let (status, body) = server.post_message(admin, conv, key, "On it").await;
    assert!(status == 201 || status == 200, "{body}");
}

both_backends! {
    async fn two_numbers_two_teams_in_and_out(backend) {
        let fake = FakeProvider::start().await;
        let server = wa_server(backend, &fake).await;
        let admin = server.admin_token().await;
        let default_team = server.default_team_id().await;
        let sales = server.create_team("Sales", "sales").await;
        let meta = add_number(&server, &admin, sales_meta(&sales)).await;
        assert_eq!(meta["team_id"], sales.as_str());
        add_number(&server, &admin, sales_waha(&sales, &fake.base)).await;
        let mut ws = server.ws_agent(&admin).await;

        // The same customer writes to the env number and to the sales number: two
        // conversations, one per number, each in its number's team.
        assert_eq!(meta_in(&server, WA_PHONE_NUMBER_ID, WA_APP_SECRET, "16505551234", "wamid.env-1").await, 200);
        let env_conv = next_conversation(&mut ws).await;
        assert_eq!(meta_in(&server, SALES_PNID, SALES_APP_SECRET, "16505551234", "wamid.sales-1").await, 200);
        let sales_conv = next_conversation(&mut ws).await;
        assert_ne!(env_conv, sales_conv);
        assert_eq!(team_of(&server, &admin, &env_conv).await, default_team);
        assert_eq!(team_of(&server, &admin, &sales_conv).await, sales);
        // A signature by no number's secret is refused.
        assert_eq!(meta_in(&server, SALES_PNID, "nobody's secret", "16505550000", "wamid.x").await, 401);

        // Replies go out from the number the conversation came in on.
        reply(&server, &admin, &sales_conv, "r-sales").await;
        let calls = fake.wait_for("the sales reply", |c| c.iter().any(|c| c.path.ends_with(&format!("/{SALES_PNID}/messages")))).await;
        let sent: Vec<_> = calls.iter().filter(|c| c.path.ends_with("/messages")).collect();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].path, format!("/v25.0/{SALES_PNID}/messages"));
        assert_eq!(sent[0].authorization.as_deref(), Some(format!("Bearer {SALES_TOKEN}").as_str()));
        reply(&server, &admin, &env_conv, "r-env").await;
        let calls = fake.wait_for("the env reply", |c| c.iter().any(|c| c.path.ends_with(&format!("/{WA_PHONE_NUMBER_ID}/messages")))).await;
        let env_sent = calls.iter().find(|c| c.path.ends_with(&format!("/{WA_PHONE_NUMBER_ID}/messages"))).unwrap();
        assert_eq!(env_sent.authorization.as_deref(), Some(format!("Bearer {WA_ACCESS_TOKEN}").as_str()));

        // WAHA: found by session, lands in the number's team, answered through it.
        let (status, body) = waha_in(&server, "sales", Some(SALES_HMAC), "false_11111111111@c.us_S1").await;
        assert_eq!(status, 200, "{body}");
        let waha_conv = next_conversation(&mut ws).await;
        assert_eq!(team_of(&server, &admin, &waha_conv).await, sales);
        let (status, _) = waha_in(&server, "sales", Some("wrong"), "false_11111111111@c.us_S2").await;
        assert_eq!(status, 401, "the sales session's own key is required");
        reply(&server, &admin, &waha_conv, "r-waha").await;
        let calls = fake.wait_for("the WAHA reply", |c| c.iter().any(|c| c.path == "/api/sendText")).await;
        let text = calls.iter().find(|c| c.path == "/api/sendText").unwrap();
        assert_eq!(text.api_key.as_deref(), Some(SALES_API_KEY));
        assert_eq!(text.body["session"], "sales");
        assert_eq!(text.body["chatId"], "11111111111@c.us");
        // The env WAHA session still goes to the default team with the env key.
        assert_eq!(server.waha_webhook(&wa_fixture("waha_message_media.json")).await.0, 200);
        let env_waha = next_conversation(&mut ws).await;
        assert_eq!(team_of(&server, &admin, &env_waha).await, default_team);
        reply(&server, &admin, &env_waha, "r-env-waha").await;
        let calls = fake.wait_for("the env WAHA reply", |c| c.iter().filter(|c| c.path == "/api/sendText").count() == 2).await;
        let second = calls.iter().filter(|c| c.path == "/api/sendText").nth(1).unwrap();
        assert_eq!(second.api_key.as_deref(), Some(WAHA_API_KEY));
        assert_eq!(second.body["session"], "default");

        // A deactivated number refuses its webhooks.
        let id = meta["id"].as_str().unwrap();
        let (status, body) = server.delete(&format!("/api/whatsapp/numbers/{id}"), Some(&admin)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["number"]["active"], false);
        assert_eq!(meta_in(&server, SALES_PNID, SALES_APP_SECRET, "16505559999", "wamid.sales-2").await, 401);
        fake.stop().await;
    }
}

/// Fails when any of the sales secrets appears in `text`.
fn assert_no_secret(text: &str, what: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} leaks {s}: {text}");
    }
}

both_backends! {
    async fn secrets_are_write_only_and_sealed_at_rest(backend) {
        let fake = FakeProvider::start().await;
        let server = wa_server(backend, &fake).await;
        let admin = server.admin_token().await;
        let sales = server.create_team("Sales", "sales").await;

        // The env configuration shows as the first numbers, bound to WHATSAPP_TEAM.
        let (status, list) = server.get("/api/whatsapp/numbers", Some(&admin)).await;
        assert_eq!(status, 200, "{list}");
        let ids: Vec<&str> = list["numbers"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["env-meta", "env-waha"], "{list}");
        let env_meta = &list["numbers"][0];
        assert_eq!(env_meta["source"], "env");
        assert_eq!(env_meta["phone_number_id"], WA_PHONE_NUMBER_ID);
        assert_eq!(env_meta["secrets"]["access_token"], "set");
        assert_eq!(env_meta["team_id"], server.default_team_id().await.as_str());
        assert_eq!(env_meta["receiving"], true);
        assert!(!list.to_string().contains(WA_ACCESS_TOKEN) && !list.to_string().contains(WA_APP_SECRET));
        let (status, _) = server.patch("/api/whatsapp/numbers/env-meta", Some(&admin), &json!({"label": "x"})).await;
        assert_eq!(status, 409, "env numbers are changed through the environment");

        let created = add_number(&server, &admin, sales_meta(&sales)).await;
        assert_no_secret(&created.to_string(), "create");
        assert_eq!(created["secrets"]["access_token"], "set");
        assert_eq!(created["secrets"]["app_secret"], "set");
        let waha = add_number(&server, &admin, sales_waha(&sales, &fake.base)).await;
        assert_no_secret(&waha.to_string(), "create");
        assert_eq!(waha["secrets"]["hmac_key"], "set");
        let id = created["id"].as_str().unwrap().to_string();

        // Blank secret fields keep the secret; clear_secrets removes one.
        let (status, updated) = server.patch(&format!("/api/whatsapp/numbers/{id}"), Some(&admin),
            &json!({"label": "Sales (main)", "access_token": "", "clear_secrets": ["app_secret"]})).await;
        assert_eq!(status, 200, "{updated}");
        assert_eq!(updated["number"]["secrets"]["access_token"], "set");
        assert_eq!(updated["number"]["secrets"]["app_secret"], "unset");
        assert_eq!(updated["number"]["receiving"], false, "no app secret: no webhooks");
        let (status, _) = server.patch(&format!("/api/whatsapp/numbers/{id}"), Some(&admin),
            &json!({"app_secret": SALES_APP_SECRET})).await;
        assert_eq!(status, 200);

        for path in ["/api/whatsapp/numbers", "/api/audit?limit=200"] {
            let (status, body) = server.get(path, Some(&admin)).await;
            assert_eq!(status, 200, "{path}: {body}");
            assert_no_secret(&body.to_string(), path);
        }
        let (_, audit) = server.get("/api/audit?action=whatsapp_number.", Some(&admin)).await;
        assert!(audit.to_string().contains("whatsapp_number.created"), "{audit}");

        // In the database: ciphertext, not the secret.
        for column in ["access_token_enc", "app_secret_enc", "api_key_enc", "hmac_key_enc"] {
            let raw = server.query_text(&format!("SELECT {column} AS value FROM whatsapp_numbers WHERE source = 'admin' AND {column} IS NOT NULL")).await;
            assert!(!raw.is_empty(), "{column} stored");
            for v in raw.into_iter().flatten() {
                assert!(v.starts_with("v1:"), "{column}: {v}");
                assert_no_secret(&v, column);
            }
        }

        // Bad input: a clear error, nothing stored.
        let (status, body) = server.post("/api/whatsapp/numbers", Some(&admin),
            &json!({"provider": "meta", "label": "x", "team_id": sales, "phone_number_id": "12ab"})).await;
        assert_eq!(status, 400, "{body}");
        let (status, _) = server.post("/api/whatsapp/numbers", Some(&admin), &sales_meta(&sales)).await;
        assert_eq!(status, 409, "the phone number id is taken");
        let agent = server.agent("agent").await;
        let (status, _) = server.get("/api/whatsapp/numbers", Some(&agent.token)).await;
        assert_eq!(status, 403);
        fake.stop().await;
    }
}

both_backends! {
    async fn waha_without_hmac_key_fails_closed(backend) {
        let fake = FakeProvider::start().await;
        // No env WhatsApp configuration at all.
        let server = TestServer::start(backend).await;
        let admin = server.admin_token().await;
        let team = server.default_team_id().await;
        let number = add_number(&server, &admin, json!({"provider": "waha", "label": "No key",
            "team_id": team, "waha_url": fake.base, "waha_session": "nokey"})).await;
        assert_eq!(number["receiving"], false);
        let (status, body) = waha_in(&server, "nokey", None, "false_11111111111@c.us_N1").await;
        assert_eq!(status, 403, "{body}");
        let (status, _) = waha_in(&server, "nokey", Some("any-key"), "false_11111111111@c.us_N2").await;
        assert_eq!(status, 403, "a signature by some key proves nothing");
        assert!(server.conversations(&admin).await.is_empty());

        let id = number["id"].as_str().unwrap();
        let (status, body) = server.patch(&format!("/api/whatsapp/numbers/{id}"), Some(&admin),
            &json!({"insecure_unsigned": true})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["number"]["receiving"], true);
        let (status, body) = waha_in(&server, "nokey", None, "false_11111111111@c.us_N3").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(server.conversations(&admin).await.len(), 1);
        // An unknown session has no number and no env fallback.
        let (status, _) = waha_in(&server, "other", None, "false_11111111111@c.us_N4").await;
        assert_eq!(status, 403);

        // The env WAHA session without WAHA_WEBHOOK_HMAC_KEY: refused, unless
        // WAHA_INSECURE_UNSIGNED says otherwise.
        for insecure in [false, true] {
            let base = fake.base.clone();
            let server = TestServer::start_with(backend, move |cfg| {
                cfg.whatsapp.waha_url = Some(base);
                cfg.whatsapp.waha_insecure_unsigned = insecure;
            }).await;
            let (status, body) = waha_in(&server, "default", None, "false_11111111111@c.us_E1").await;
            assert_eq!(status, if insecure { 200 } else { 403 }, "insecure={insecure}: {body}");
        }
        fake.stop().await;
    }
}

both_backends! {
    async fn session_status_reaches_admins_and_can_be_asked(backend) {
        let fake = FakeProvider::start().await;
        let server = wa_server(backend, &fake).await;
        let admin = server.admin_token().await;
        let sales = server.create_team("Sales", "sales").await;
        let number = add_number(&server, &admin, sales_waha(&sales, &fake.base)).await;
        let id = number["id"].as_str().unwrap().to_string();
        let mut ws = server.ws_agent(&admin).await;

        let mut event = wa_fixture_json("waha_session_status.json");
        event["session"] = json!("sales");
        event["payload"]["status"] = json!("FAILED");
        let body = event.to_string().into_bytes();
        let sig = waha_hmac(SALES_HMAC, &body);
        let (status, answer) = server.post_webhook("/webhooks/waha", body, &[("x-webhook-hmac", sig)]).await;
        assert_eq!(status, 200, "{answer}");
        let frame = ws.next_of_type("number_status").await;
        assert_eq!(frame["number_id"], id.as_str());
        assert_eq!(frame["status"], "FAILED");
        assert_eq!(frame["attention"], true);
        assert_eq!(frame["label"], "Sales WAHA");
        let (_, list) = server.get("/api/whatsapp/numbers", Some(&admin)).await;
        let stored = list["numbers"].as_array().unwrap().iter().find(|n| n["id"] == id.as_str()).unwrap().clone();
        assert_eq!(stored["session_status"], "FAILED");

        // The env session's own status lands on the env number.
        assert_eq!(server.waha_webhook(&wa_fixture("waha_session_status.json")).await.0, 200);
        let frame = ws.next_of_type("number_status").await;
        assert_eq!(frame["number_id"], "env-waha");
        assert_eq!(frame["status"], "WORKING");
        assert_eq!(frame["attention"], false);

        // Asking WAHA on demand: GET /api/sessions/{name} with the number's key.
        fake.set_session_status("SCAN_QR_CODE");
        let (status, answer) = server.post(&format!("/api/whatsapp/numbers/{id}/session"), Some(&admin), &json!({})).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["status"], "SCAN_QR_CODE");
        assert_eq!(answer["number"]["session_status"], "SCAN_QR_CODE");
        let asked = fake.calls_to("/api/sessions/sales");
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0].api_key.as_deref(), Some(SALES_API_KEY));
        let frame = ws.next_of_type("number_status").await;
        assert_eq!(frame["status"], "SCAN_QR_CODE");
        let (status, _) = server.post("/api/whatsapp/numbers/env-meta/session", Some(&admin), &json!({})).await;
        assert_eq!(status, 400, "Meta numbers have no session");
        fake.stop().await;
    }
}
