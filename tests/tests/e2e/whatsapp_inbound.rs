//! WhatsApp inbound, end to end over real HTTP and WebSocket: every fixture posted
//! with a correct signature reaches an agent's socket as a readable message; bad or
//! missing signatures store nothing; replays — 20 at once — store one message;
//! statuses only move forward; malformed and oversized bodies get a 4xx without
//! harm; WAHA events are ingested (own and group messages are not); media is
//! relayed through the hub.

// Test bodies run inside the `both_backends!` helpers, which clippy does not see as
// tests; a panic with a message is how a test reports a broken expectation.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::{json, Value};
use switchboard_e2e::{
    both_backends, meta_signature, meta_status_webhook, meta_text_webhook, wa_fixture,
    wa_fixture_json, whatsapp_config, with_fresh_wamids, FakeProvider, TestServer, Ws, FAKE_MEDIA,
    WA_VERIFY_TOKEN,
};

const META_MESSAGE_FIXTURES: [&str; 7] = [
    "meta_text_message.json",
    "meta_image_message.json",
    "meta_document_message.json",
    "meta_location_message.json",
    "meta_interactive_list_reply.json",
    "meta_interactive_button_reply.json",
    "meta_button_quick_reply.json",
];

async fn wa_server(backend: switchboard_e2e::Backend, fake: &FakeProvider) -> TestServer {
    let base = fake.base.clone();
    TestServer::start_with(backend, move |cfg| whatsapp_config(cfg, &base)).await
}

/// Collects the customers' `message` frames until `n` arrived (the hub's own
/// replies, such as the confirmation of the "Unsubscribe" quick-reply button's
/// opt-out, are not what was posted and are skipped).
async fn messages(ws: &mut Ws, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let v = ws.next_json().await;
        if v["type"] == "message" && v["sender"]["kind"] == "guest" {
            out.push(v);
        }
    }
    out
}

both_backends! {
    async fn every_meta_fixture_reaches_the_agent(backend) {
        let fake = FakeProvider::start().await;
        let server = wa_server(backend, &fake).await;
        let agent = server.agent("agent").await;
        let mut ws = server.ws_agent(&agent.token).await;

        let mut posted = 0;
        for name in META_MESSAGE_FIXTURES {
            let body = with_fresh_wamids(wa_fixture_json(name), name).to_string();
            let (status, reply) = server.meta_webhook(body.as_bytes()).await;
            assert_eq!(status, 200, "{name}: {reply}");
            posted += 1;
        }
        let all = wa_fixture_json("zz_pywa_message_fixtures_all.json");
        for (key, payload) in all.as_object().unwrap() {
            let body = with_fresh_wamids(payload.clone(), key).to_string();
            let (status, reply) = server.meta_webhook(body.as_bytes()).await;
            assert_eq!(status, 200, "pywa {key}: {reply}");
            posted += 1;
        }
        let got = messages(&mut ws, posted).await;
        for m in &got {
            assert_eq!(m["sender"]["kind"], "guest", "{m}");
            assert!(!m["body"].as_str().unwrap().trim().is_empty(), "{m}");
        }
        assert_eq!(got[0]["body"], "Does it come in another color?");
        assert_eq!(got[0]["sender"]["name"], "Sheena Nelson");
        assert_eq!(got[1]["body"], "Taj Mahal");
        assert_eq!(got[1]["attachment"]["kind"], "image");
        assert!(got[3]["body"].as_str().unwrap().starts_with("[location]"), "{}", got[3]);
        // One number, one contact, one conversation.
        let conv = got[0]["conversation_id"].as_str().unwrap();
        for m in &got[..META_MESSAGE_FIXTURES.len()] {
            assert_eq!(m["conversation_id"], conv);
        }
        let (status, summary) = server.get(&format!("/api/conversations/{conv}"), Some(&agent.token)).await;
        assert_eq!(status, 200);
        assert_eq!(summary["channel"], "whatsapp");
        assert_eq!(summary["contact"]["phone"], "+16505551234");
        assert_eq!(summary["contact"]["name"], "Sheena Nelson");
        assert_eq!(summary["template_required"], false);
        assert!(summary["window_expires_at"].is_string(), "{summary}");
        let seqs: Vec<i64> = got[..META_MESSAGE_FIXTURES.len()].iter().map(|m| m["seq"].as_i64().unwrap()).collect();
        assert_eq!(seqs, (1..=7).collect::<Vec<_>>());

        // The image is relayed through the hub from the (fake) Graph API.
        let url = got[1]["attachment"]["url"].as_str().unwrap();
        let resp = server.http.get(server.url(url)).bearer_auth(&agent.token).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.headers()["content-type"], "image/jpeg");
        assert_eq!(&resp.bytes().await.unwrap()[..], FAKE_MEDIA);
        let lookups: Vec<_> = fake.calls().into_iter().filter(|c| c.path == "/v25.0/1003383421387256").collect();
        assert_eq!(lookups.len(), 1);
        assert_eq!(lookups[0].authorization.as_deref(), Some("Bearer EAAG-test-token"));
        // Without a token, no media.
        let resp = server.http.get(server.url(url)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 401);
        fake.stop().await;
    }
}

both_backends! {
    async fn signatures_and_handshake_are_enforced(backend) {
        let fake = FakeProvider::start().await;
        let server = wa_server(backend, &fake).await;
        let admin = server.admin_token().await;
        let body = wa_fixture("meta_text_message.json");

        let (status, _) = server.post_webhook("/webhooks/whatsapp", body.clone(), &[]).await;
        assert_eq!(status, 401, "missing signature");
        let wrong = meta_signature("not-the-secret", &body);
        let (status, _) = server
            .post_webhook("/webhooks/whatsapp", body.clone(), &[("x-hub-signature-256", wrong)])
            .await;
        assert_eq!(status, 401, "wrong signature");
        let mut tampered = body.clone();
        let sig = meta_signature(switchboard_e2e::WA_APP_SECRET, &body);
        tampered[200] ^= 1;
        let (status, _) = server
            .post_webhook("/webhooks/whatsapp", tampered, &[("x-hub-signature-256", sig)])
            .await;
        assert_eq!(status, 401, "tampered body");
        let (status, _) = server.post_webhook("/webhooks/waha", wa_fixture("waha_message_media.json"), &[("x-webhook-hmac", "00".into())]).await;
        assert_eq!(status, 401, "wrong WAHA hmac");
        assert!(server.conversations(&admin).await.is_empty(), "nothing stored");

        // The exact fixture bytes with the README's secret: accepted.
        let (status, _) = server.meta_webhook(&body).await;
        assert_eq!(status, 200);
        assert_eq!(server.conversations(&admin).await.len(), 1);

        let verify = |token: &str| {
            server.url(&format!(
                "/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={token}"
            ))
        };
        let resp = server.http.get(verify(WA_VERIFY_TOKEN)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.text().await.unwrap(), "1158201444");
        let resp = server.http.get(verify("guess")).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 403);
        fake.stop().await;
    }
}

both_backends! {
    async fn twenty_concurrent_replays_store_one_message(backend) {
        let fake = FakeProvider::start().await;
        let server = wa_server(backend, &fake).await;
        let admin = server.admin_token().await;
        let body = meta_text_webhook("447700900123", "wamid.replayed-1", "only once please").to_string();
        let posts = (0..20).map(|_| server.meta_webhook(body.as_bytes()));
        for (status, reply) in futures_util::future::join_all(posts).await {
            assert_eq!(status, 200, "{reply}");
        }
        // And again in sequence, as Meta's retries would.
        for _ in 0..3 {
            assert_eq!(server.meta_webhook(body.as_bytes()).await.0, 200);
        }
        let convs = server.conversations(&admin).await;
        assert_eq!(convs.len(), 1, "one contact, one conversation: {convs:?}");
        assert_eq!(convs[0]["contact"]["phone"], "+447700900123");
        let history = server.history(&admin, convs[0]["id"].as_str().unwrap()).await;
        assert_eq!(history.len(), 1, "{history:?}");
        assert_eq!(history[0]["body"], "only once please");
        fake.stop().await;
    }
}

both_backends! {
    async fn statuses_only_move_forward(backend) {
        let fake = FakeProvider::start().await;
        let server = wa_server(backend, &fake).await;
        let agent = server.agent("agent").await;
        let mut ws = server.ws_agent(&agent.token).await;
        let (status, _) = server
            .meta_webhook(meta_text_webhook("16505551234", "wamid.in-1", "hello?").to_string().as_bytes())
            .await;
        assert_eq!(status, 200);
        let conv = messages(&mut ws, 1).await[0]["conversation_id"].as_str().unwrap().to_string();
        let ack = ws.send_message(&conv, "r1", "Hi! How can we help?").await;
        let message_id = ack["id"].as_str().unwrap().to_string();
        let sent = ws.next_of_type("status").await;
        assert_eq!((sent["message_id"].as_str(), sent["status"].as_str()), (Some(message_id.as_str()), Some("sent")));
        let wamid = "wamid.fake-1";

        // read arrives before delivered, in one batch, and the batch is replayed.
        let batch = meta_status_webhook(&[(wamid, "read"), (wamid, "delivered")]).to_string();
        assert_eq!(server.meta_webhook(batch.as_bytes()).await.0, 200);
        assert_eq!(server.meta_webhook(batch.as_bytes()).await.0, 200);
        let read = ws.next_of_type("status").await;
        assert_eq!(read["status"], "read");
        assert_eq!(read["seq"], 2);
        let rest = ws.barrier().await;
        assert!(rest.iter().all(|f| f["type"] != "status"), "no step back: {rest:?}");
        let history = server.history(&agent.token, &conv).await;
        assert_eq!(history[1]["status"], "read");
        // A failure after read does not undo the read either.
        let failed = meta_status_webhook(&[(wamid, "failed")]).to_string();
        assert_eq!(server.meta_webhook(failed.as_bytes()).await.0, 200);
        assert_eq!(server.history(&agent.token, &conv).await[1]["status"], "read");
        fake.stop().await;
    }
}

both_backends! {
    async fn malformed_and_oversized_bodies_are_refused(backend) {
        let fake = FakeProvider::start().await;
        let server = wa_server(backend, &fake).await;
        let admin = server.admin_token().await;
        let (status, body) = server.meta_webhook(b"{\"entry\": [ not json").await;
        assert_eq!(status, 400, "{body}");
        let (status, _) = server.meta_webhook(b"[1, 2, 3]").await;
        assert_eq!(status, 400);
        let huge = vec![b' '; 5 * 1024 * 1024];
        let (status, _) = server.meta_webhook(&huge).await;
        assert_eq!(status, 413);
        let four_mb = format!("{{\"object\":\"x\",\"pad\":\"{}\"}}", "a".repeat(4_000_000));
        let (status, _) = server.meta_webhook(four_mb.as_bytes()).await;
        assert!((400..500).contains(&status), "4 MB body: {status}");
        assert!(server.conversations(&admin).await.is_empty());
        let (status, _) = server.get("/healthz", None).await;
        assert_eq!(status, 200, "still serving");
        fake.stop().await;
    }
}

both_backends! {
    async fn waha_events_are_ingested(backend) {
        let fake = FakeProvider::start().await;
        let server = wa_server(backend, &fake).await;
        let agent = server.agent("agent").await;
        let mut ws = server.ws_agent(&agent.token).await;

        // Own message: not re-ingested. Group message: ignored. Session status: logged.
        assert_eq!(server.waha_webhook(&wa_fixture("waha_message.json")).await.0, 200);
        let mut group = wa_fixture_json("waha_message_media.json");
        group["payload"]["from"] = json!("120363000000000000@g.us");
        group["payload"]["id"] = json!("false_120363000000000000@g.us_GROUP1");
        assert_eq!(server.waha_webhook(group.to_string().as_bytes()).await.0, 200);
        assert_eq!(server.waha_webhook(&wa_fixture("waha_session_status.json")).await.0, 200);

        assert_eq!(server.waha_webhook(&wa_fixture("waha_message_media.json")).await.0, 200);
        assert_eq!(server.waha_webhook(&wa_fixture("waha_message_media.json")).await.0, 200);
        assert_eq!(server.waha_webhook(&wa_fixture("waha_message_reaction.json")).await.0, 200);
        let got = messages(&mut ws, 2).await;
        assert_eq!(got[0]["body"], "Check this out (caption for the media)!");
        assert_eq!(got[0]["attachment"]["kind"], "image");
        assert_eq!(got[1]["body"], "[reaction] 🙏");
        assert!(ws.barrier().await.iter().all(|f| f["type"] != "message"), "nothing else stored");
        let (_, summary) = server
            .get(&format!("/api/conversations/{}", got[0]["conversation_id"].as_str().unwrap()), Some(&agent.token))
            .await;
        assert_eq!(summary["channel"], "waha");
        assert_eq!(summary["contact"]["phone"], "+11111111111");

        // Media comes from WAHA_URL with the API key, whatever host WAHA advertised.
        let url = got[0]["attachment"]["url"].as_str().unwrap();
        let resp = server.http.get(server.url(url)).bearer_auth(&agent.token).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(&resp.bytes().await.unwrap()[..], FAKE_MEDIA);
        let files = fake.calls().into_iter().filter(|c| c.path.starts_with("/api/files/")).collect::<Vec<_>>();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].api_key.as_deref(), Some(switchboard_e2e::WAHA_API_KEY));
        fake.stop().await;
    }
}

both_backends! {
    async fn webhooks_fail_closed_without_secrets(backend) {
        // No WhatsApp settings at all.
        let server = TestServer::start(backend).await;
        let admin = server.admin_token().await;
        let (status, body) = server.meta_webhook(&wa_fixture("meta_text_message.json")).await;
        assert_eq!(status, 403, "{body}");
        switchboard_e2e::assert_error_body(&body, "forbidden");
        let (status, _) = server.waha_webhook(&wa_fixture("waha_message_media.json")).await;
        assert_eq!(status, 403);
        let resp = server
            .http
            .get(server.url("/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=1&hub.verify_token="))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 403);
        assert!(server.conversations(&admin).await.is_empty());
    }
}
