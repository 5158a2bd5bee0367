//! What the inbox's notification centre (`web-client/alerts.js`, `docs/alerts.md`)
//! relies on, on both backends: a payment question reaches a manager's socket as a
//! `handover` frame carrying the conversation, the intent and a reason that quotes
//! the question; `GET /api/leads?handover=true` — fetched on start so a handover
//! that happened while signed out is not missed — lists that lead with its reason
//! and conversation, and stops listing it once the handover is taken.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::json;
use switchboard_e2e::{both_backends, TestServer};

both_backends! {
    async fn handover_frame_and_pending_list_feed_the_alerts(backend) {
        let server = TestServer::start(backend).await;
        server.manual_routing().await;
        let manager = server.agent("manager").await;
        let mut ws = server.ws_agent(&manager.token).await;
        let guest = server.guest().await;
        let conv = guest.conversation_id.clone();
        server.post_message(&guest.token, &conv, "a1", "Assalamualaikum").await;
        let (status, _) = server.post_message(&guest.token, &conv, "a2", "cara bayar? DP berapa").await;
        assert_eq!(status, 201);

        let frame = ws.next_of_type("handover").await;
        assert_eq!(frame["conversation_id"], conv.as_str());
        assert_eq!(frame["intent"], "payment");
        let reason = frame["reason"].as_str().unwrap_or_default().to_lowercase();
        assert!(reason.contains("cara bayar"), "the reason quotes the question: {frame}");

        let lead = server.lead_where(&manager.token, &conv, |l| l["handover_pending"] == true).await;
        let (status, body) = server.get("/api/leads?handover=true", Some(&manager.token)).await;
        assert_eq!(status, 200, "{body}");
        let pending = body["leads"].as_array().unwrap();
        assert_eq!(pending.len(), 1, "{body}");
        assert_eq!(pending[0]["id"], lead["id"]);
        assert_eq!(pending[0]["conversation_ids"], json!([conv]));
        assert!(pending[0]["handover_reason"].as_str().unwrap().to_lowercase().contains("cara bayar"));

        // Taken over: no longer pending, so a fresh start brings no alert back.
        let (status, body) = server.post("/api/conversations/handover", Some(&manager.token),
            &json!({"conversation_id": conv, "assigned_to": manager.id})).await;
        assert_eq!(status, 200, "{body}");
        let (_, body) = server.get("/api/leads?handover=true", Some(&manager.token)).await;
        assert_eq!(body["leads"], json!([]), "{body}");
    }
}
