//! Quick-chat links through the real server: an agent creates `/q/{handle}/{source}`,
//! the hosted page serves the widget engine bound to the link and counts the click,
//! a session through the link is attributed to the source and owner and routed to
//! the owner first (even when round-robin would pick someone else), the link counts
//! the conversation, and after interest the lead is invited once to leave an email
//! or phone, which it can do without signing up.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::json;
use switchboard_e2e::{both_backends, eventually, TestServer};

both_backends! {
    async fn quick_chat_link_is_attributed_and_owner_first(backend) {
        let server = TestServer::start(backend).await;
        let owner = server.agent("agent").await;
        let other = server.agent("agent").await;
        let admin = server.admin_token().await;

        let (status, link) = server.post("/api/quick-links", Some(&owner.token),
            &json!({"source": "LinkedIn", "handle": "sarah"})).await;
        assert_eq!(status, 201, "{link}");
        assert_eq!(link["url"], "/q/sarah/linkedin");
        // A handle belongs to one agent.
        let (status, _) = server.post("/api/quick-links", Some(&other.token),
            &json!({"source": "linkedin", "handle": "sarah"})).await;
        assert_eq!(status, 409);

        // The hosted page: the widget engine, bound to the link; the view is a click.
        let resp = server.http.get(server.url("/q/sarah/linkedin")).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let html = resp.text().await.unwrap();
        assert!(html.contains(r#"data-quick-link="sarah/linkedin""#), "{html}");
        assert!(html.contains(r#"src="/widget.js""#));
        let (status, _) = server.get("/q/sarah/facebook", None).await;
        assert_eq!(status, 404);

        // Both agents online; the "other" one would be next in the rotation too.
        let mut owner_ws = server.ws_agent(&owner.token).await;
        let _other_ws = server.ws_agent(&other.token).await;
        let guest = server.guest_with(json!({"quick_link": "sarah/linkedin"})).await;
        let conv = guest.conversation_id.clone();
        let (status, _) = server.post_message(&guest.token, &conv, "q1", "Hi, quick question about your services").await;
        assert_eq!(status, 201);
        let assigned = owner_ws.next_of_type("assigned").await;
        assert_eq!(assigned["agent_id"], owner.id.as_str());
        let (_, summary) = server.get(&format!("/api/conversations/{conv}"), Some(&admin)).await;
        assert_eq!(summary["channel"], "quick_chat");
        assert_eq!(summary["source"], "linkedin");
        assert_eq!(summary["assignee_id"], owner.id.as_str());

        let lead = server.lead_where(&admin, &conv, |_| true).await;
        assert_eq!(lead["source"], "quick_chat");
        assert_eq!(lead["source_detail"], "linkedin");
        assert_eq!(lead["owner_id"], owner.id.as_str());
        let (_, t) = server.get(&format!("/api/leads/{}/timeline", lead["id"].as_str().unwrap()), Some(&admin)).await;
        let routed = t["timeline"].as_array().unwrap().iter()
            .find(|e| e["kind"] == "routing_assigned").unwrap().clone();
        assert_eq!(routed["detail"]["via"], "owner", "{routed}");

        // Per-link counts. A conversation counts from its first message (an opened
        // page is none, docs/leads.md); that count is part of the message's lead
        // bookkeeping, which runs on its own task.
        let links = eventually("the link counts its conversation", || async {
            let (_, links) = server.get("/api/quick-links", Some(&owner.token)).await;
            (links["quick_links"][0]["conversations"] != 0).then_some(links)
        })
        .await;
        assert_eq!(links["quick_links"][0]["clicks"], 1);
        assert_eq!(links["quick_links"][0]["conversations"], 1);

        // Interest shown (pricing intent): the page invites the lead once to leave
        // an email or phone (progressive engagement).
        server.post_message(&guest.token, &conv, "q2", "What is the price?").await;
        let invite = eventually("the engagement invitation", || async {
            server.history(&admin, &conv).await.into_iter()
                .find(|m| m["sender"]["kind"] == "bot")
        }).await;
        assert!(invite["body"].as_str().unwrap().contains("email or phone"), "{invite}");
        server.post_message(&guest.token, &conv, "q3", "how much exactly?").await;
        let bots = eventually("the third message", || async {
            let h = server.history(&admin, &conv).await;
            (h.len() >= 4).then_some(h)
        }).await;
        assert_eq!(bots.iter().filter(|m| m["sender"]["kind"] == "bot").count(), 1, "invited once");

        let (status, body) = server.post("/api/widget/contact", Some(&guest.token),
            &json!({"email": "Lead@Example.com"})).await;
        assert_eq!(status, 200, "{body}");
        let lead = server.lead_where(&admin, &conv, |l| l["contacts"][0]["email"] == "lead@example.com").await;
        assert_eq!(lead["owner_id"], owner.id.as_str());
        // …or answer the invitation in the chat itself.
        server.post_message(&guest.token, &conv, "q4", "sure, my WhatsApp is +62 811-2222-3333").await;
        server.lead_where(&admin, &conv, |l| l["contacts"][0]["phone"] == "+6281122223333").await;
    }
}
