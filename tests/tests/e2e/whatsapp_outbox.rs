//! WhatsApp outbound through the durable outbox, against a fake Graph API / WAHA
//! started inside each test: transient failures are retried until the message is
//! delivered exactly once; a permanent error (131047) marks it failed with the
//! reason on the agent's socket; a hub restart in the middle of retrying still
//! delivers it; outside the 24-hour window free text is refused up front; WAHA
//! replies go to `sendText` with the API key, read receipts to `sendSeen`.

// Test bodies run inside the `both_backends!` helpers, which clippy does not see as
// tests; a panic with a message is how a test reports a broken expectation.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{json, Value};
use switchboard_e2e::{
    both_backends, meta_text_webhook, wa_fixture, whatsapp_config, Backend, FakeProvider,
    TestServer, Ws, PATIENCE, WAHA_API_KEY, WA_PHONE_NUMBER_ID,
};

async fn wa_server(backend: Backend, fake: &FakeProvider, backoff_ms: u64) -> TestServer {
    let base = fake.base.clone();
    TestServer::start_with(backend, move |cfg| {
        whatsapp_config(cfg, &base);
        cfg.whatsapp.outbox_backoff_base = Duration::from_millis(backoff_ms);
        cfg.whatsapp.outbox_backoff_max = Duration::from_millis(backoff_ms * 4);
    })
    .await
}

/// A customer writes in (opening the 24-hour window); returns the conversation id.
async fn customer_writes(server: &TestServer, ws: &mut Ws, wamid: &str) -> String {
    let body = meta_text_webhook("16505551234", wamid, "Is it in stock?").to_string();
    assert_eq!(server.meta_webhook(body.as_bytes()).await.0, 200);
    loop {
        let v = ws.next_json().await;
        if v["type"] == "message" {
            return v["conversation_id"].as_str().unwrap().to_string();
        }
    }
}

fn successes(fake: &FakeProvider, suffix: &str) -> Vec<Value> {
    fake.calls_to(suffix)
        .into_iter()
        .filter(|c| c.status == 200)
        .map(|c| c.body)
        .collect()
}

both_backends! {
    async fn transient_failures_are_retried_and_delivered_once(backend) {
        let fake = FakeProvider::start().await;
        let server = wa_server(backend, &fake, 30).await;
        let agent = server.agent("agent").await;
        let mut ws = server.ws_agent(&agent.token).await;
        let conv = customer_writes(&server, &mut ws, "wamid.in-1").await;

        fake.fail_next(2, 500, json!({"error": {"message": "boom", "code": 1}}));
        // Then one rate-limit answer, which Meta marks retryable (130429).
        let ack = ws.send_message(&conv, "reply-1", "Yes, 3 left.").await;
        let id = ack["id"].as_str().unwrap().to_string();
        let status = ws.next_of_type("status").await;
        assert_eq!(status["message_id"], id.as_str());
        assert_eq!(status["status"], "sent", "{status}");

        let sends = fake.calls_to("/messages");
        assert_eq!(sends.len(), 3, "two failures, then one success: {sends:?}");
        let ok = successes(&fake, "/messages");
        assert_eq!(ok.len(), 1, "delivered exactly once");
        assert_eq!(ok[0]["to"], "16505551234");
        assert_eq!(ok[0]["type"], "text");
        assert_eq!(ok[0]["text"]["body"], "Yes, 3 left.");
        assert!(sends[0].path.ends_with(&format!("/v25.0/{WA_PHONE_NUMBER_ID}/messages")));
        assert_eq!(sends[0].authorization.as_deref(), Some("Bearer EAAG-test-token"));
        let history = server.history(&agent.token, &conv).await;
        assert_eq!(history[1]["status"], "sent");

        // A retryable Meta code (rate limit, HTTP 400) is retried too.
        fake.fail_next(1, 400, serde_json::from_slice(&wa_fixture("meta_error_response_130429.json")).unwrap());
        ws.send_message(&conv, "reply-2", "Anything else?").await;
        assert_eq!(ws.next_of_type("status").await["status"], "sent");
        assert_eq!(successes(&fake, "/messages").len(), 2);
        fake.stop().await;
    }
}

both_backends! {
    async fn a_permanent_error_fails_the_message_visibly(backend) {
        let fake = FakeProvider::start().await;
        let server = wa_server(backend, &fake, 30).await;
        let agent = server.agent("agent").await;
        let mut ws = server.ws_agent(&agent.token).await;
        let conv = customer_writes(&server, &mut ws, "wamid.in-2").await;

        fake.fail_next(1, 400, json!({"error": {
            "message": "(#131047) Re-engagement message",
            "type": "OAuthException",
            "code": 131047,
            "error_data": {"messaging_product": "whatsapp", "details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."}
        }}));
        let ack = ws.send_message(&conv, "late-1", "Are you still there?").await;
        let status = ws.next_of_type("status").await;
        assert_eq!(status["message_id"], ack["id"]);
        assert_eq!(status["status"], "failed");
        assert_eq!(status["error"]["code"], 131047);
        assert!(status["error"]["title"].as_str().unwrap().contains("24 hours"), "{status}");
        assert_eq!(fake.calls_to("/messages").len(), 1, "never retried");
        let history = server.history(&agent.token, &conv).await;
        assert_eq!(history[1]["status"], "failed");
        assert_eq!(history[1]["error"]["code"], 131047);
        fake.stop().await;
    }
}

both_backends! {
    async fn a_restart_mid_retry_still_delivers(backend) {
        let fake = FakeProvider::start().await;
        // Retries a second apart: the restart lands while the row waits its turn.
        let server = wa_server(backend, &fake, 1000).await;
        let agent = server.agent("agent").await;
        let mut ws = server.ws_agent(&agent.token).await;
        let conv = customer_writes(&server, &mut ws, "wamid.in-3").await;

        fake.fail_next(2, 503, json!({"error": {"message": "unavailable"}}));
        let ack = ws.send_message(&conv, "survive-1", "This must arrive.").await;
        let id = ack["id"].as_str().unwrap().to_string();
        fake.wait_for("a first attempt", |calls| !calls.is_empty()).await;
        ws.close().await;
        let server = server.restart().await;

        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let history = server.history(&agent.token, &conv).await;
            let mine = history.iter().find(|m| m["id"] == id.as_str()).expect("stored");
            if mine["status"] == "sent" {
                break;
            }
            assert_ne!(mine["status"], "failed", "{mine}");
            assert!(tokio::time::Instant::now() < deadline, "never delivered: {mine}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let ok = successes(&fake, "/messages");
        assert_eq!(ok.len(), 1, "exactly one delivery");
        assert_eq!(ok[0]["text"]["body"], "This must arrive.");
        fake.stop().await;
    }
}

both_backends! {
    async fn free_text_outside_the_window_is_refused(backend) {
        let fake = FakeProvider::start().await;
        let server = wa_server(backend, &fake, 30).await;
        let agent = server.agent("agent").await;
        let mut ws = server.ws_agent(&agent.token).await;
        let conv = customer_writes(&server, &mut ws, "wamid.in-4").await;
        ws.close().await;
        // The customer's last message was 25 hours ago; the actor rereads it on start.
        let long_ago = switchboard::clock::now_ms() - 25 * 3600 * 1000;
        server
            .execute_sql(&format!("UPDATE conversations SET last_inbound_at = {long_ago} WHERE id = '{conv}'"))
            .await;
        let server = server.restart().await;
        let (status, summary) = server.get(&format!("/api/conversations/{conv}"), Some(&agent.token)).await;
        assert_eq!(status, 200);
        assert_eq!(summary["template_required"], true, "{summary}");
        let (status, body) = server.post_message(&agent.token, &conv, "too-late", "Hello again").await;
        assert_eq!(status, 409, "{body}");
        assert!(body["message"].as_str().unwrap().contains("template"), "{body}");
        assert!(fake.calls_to("/messages").is_empty(), "nothing sent");
        fake.stop().await;
    }
}

both_backends! {
    async fn waha_replies_media_and_read_receipts(backend) {
        let fake = FakeProvider::start().await;
        let server = wa_server(backend, &fake, 30).await;
        let agent = server.agent("agent").await;
        let mut ws = server.ws_agent(&agent.token).await;
        assert_eq!(server.waha_webhook(&wa_fixture("waha_message_media.json")).await.0, 200);
        let conv = loop {
            let v = ws.next_json().await;
            if v["type"] == "message" {
                break v["conversation_id"].as_str().unwrap().to_string();
            }
        };
        ws.send_message(&conv, "w1", "Got your picture").await;
        assert_eq!(ws.next_of_type("status").await["status"], "sent");
        let sends = fake.calls_to("/api/sendText");
        assert_eq!(sends.len(), 1);
        assert_eq!(sends[0].api_key.as_deref(), Some(WAHA_API_KEY));
        assert_eq!(sends[0].body["chatId"], "11111111111@c.us");
        assert_eq!(sends[0].body["session"], "default");
        assert_eq!(sends[0].body["text"], "Got your picture");

        // WAHA's ack for our message moves it to read.
        let mut ack: Value = serde_json::from_slice(&wa_fixture("waha_message_ack.json")).unwrap();
        ack["payload"]["id"] = json!("true_16505551234@c.us_FAKE1");
        assert_eq!(server.waha_webhook(ack.to_string().as_bytes()).await.0, 200);
        assert_eq!(ws.next_of_type("status").await["status"], "read");

        // An image by URL goes to sendImage.
        let (status, body) = server
            .post(
                &format!("/api/conversations/{conv}/attachments"),
                Some(&agent.token),
                &json!({"kind": "image", "url": "https://example.com/p.jpg", "caption": "Our catalogue", "mime_type": "image/jpeg"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["message"]["attachment"]["url"], "https://example.com/p.jpg");
        fake.wait_for("sendImage", |c| c.iter().any(|c| c.path == "/api/sendImage" && c.status == 200)).await;

        // Mark read: sendSeen with the customer's message id.
        let (status, body) = server
            .post(&format!("/api/conversations/{conv}/whatsapp/read"), Some(&agent.token), &json!({}))
            .await;
        assert_eq!(status, 202, "{body}");
        let calls = fake.wait_for("sendSeen", |c| c.iter().any(|c| c.path == "/api/sendSeen")).await;
        let seen = calls.iter().find(|c| c.path == "/api/sendSeen").unwrap();
        assert_eq!(seen.body["messageIds"][0], "true_11111111111@c.us_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        fake.stop().await;
    }
}
