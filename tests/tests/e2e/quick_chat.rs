//! Quick-chat links through the real server: an agent creates `/q/{handle}/{source}`,
//! the hosted page serves the widget engine bound to the link and counts the click,
//! a session through the link is attributed to the source and owner and routed to
//! the owner first (even when round-robin would pick someone else), the link counts
//! the conversation, and after interest the lead is invited once to leave an email
//! or phone, which it can do without signing up. The page says whose link it is;
//! links are listed with a boolean `active` and an RFC 3339 `created_at`; an unknown
//! link or route shows a person a friendly page and an API client the JSON error.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::{json, Value};
use switchboard_e2e::{assert_error_body, both_backends, eventually, TestServer};

/// What a browser sends when it navigates to a page (Chromium's `Accept`).
const BROWSER_ACCEPT: &str =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

/// GET `path` with `Accept: accept`: status, `Content-Type` and body text.
async fn get_as(server: &TestServer, path: &str, accept: &str) -> (u16, String, String) {
    let resp = server
        .http
        .get(server.url(path))
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, content_type, resp.text().await.unwrap())
}

/// True for `2026-11-21T08:15:02.123Z` (RFC 3339 UTC with milliseconds, as the
/// rest of the API writes times).
fn is_rfc3339_ms(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let b = s.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

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

both_backends! {
    async fn quick_links_page_shapes_and_friendly_not_found(backend) {
        let server = TestServer::start(backend).await;
        let admin = server.admin_token().await;
        // A name that needs escaping: the page must show it as text.
        let (status, body) = server.post("/api/agents", Some(&admin), &json!({
            "email": "sarah@test.local", "name": "Sarah <O'Neil> & Co",
            "password": "agent-password-1", "role": "agent"})).await;
        assert_eq!(status, 201, "{body}");
        let sarah = server.login("sarah@test.local", "agent-password-1").await;

        // Booleans and RFC 3339, like the rest of the API.
        let (status, created) = server.post("/api/quick-links", Some(&sarah),
            &json!({"source": "linkedin", "handle": "sarah"})).await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["link"]["active"], json!(true), "{created}");
        assert!(is_rfc3339_ms(&created["link"]["created_at"]), "{created}");
        let id = created["link"]["id"].as_str().unwrap().to_string();
        let (_, links) = server.get("/api/quick-links", Some(&sarah)).await;
        assert_eq!(links["quick_links"][0]["active"], json!(true), "{links}");
        assert_eq!(links["quick_links"][0]["created_at"], created["link"]["created_at"]);

        // The page says whose link it is: name (escaped), initials, team.
        let (status, content_type, html) = get_as(&server, "/q/sarah/linkedin", BROWSER_ACCEPT).await;
        assert_eq!(status, 200);
        assert!(content_type.starts_with("text/html"), "{content_type}");
        assert!(html.contains("Sarah &lt;O&#39;Neil&gt; &amp; Co"), "{html}");
        assert!(!html.contains("<O'Neil>"), "the name must not become markup: {html}");
        assert!(html.contains(r#"data-testid="quick-chat-initials" aria-hidden="true">SC<"#), "{html}");
        assert!(html.contains(">Support<"), "the team's name: {html}");
        assert!(html.contains(r#"data-team="default""#), "{html}");
        assert!(html.contains(r#"data-mode="page""#), "{html}");

        // Unknown link: a page for a person, JSON for an API client.
        let (status, content_type, html) = get_as(&server, "/q/nobody/linkedin", BROWSER_ACCEPT).await;
        assert_eq!(status, 404);
        assert!(content_type.starts_with("text/html"), "{content_type}");
        assert!(html.contains("This chat link is not active"), "{html}");
        assert!(html.contains(r#"href="/""#), "a way home: {html}");
        let (status, body) = server.get("/q/nobody/linkedin", None).await;
        assert_eq!(status, 404);
        assert_error_body(&body, "not_found");
        let (status, content_type, body) = get_as(&server, "/q/nobody/linkedin", "application/json").await;
        assert_eq!(status, 404);
        assert!(content_type.starts_with("application/json"), "{content_type}");
        assert_error_body(&serde_json::from_str(&body).unwrap(), "not_found");
        // Not even a valid handle: the same friendly page.
        let (status, _, html) = get_as(&server, "/q/Not%20A%20Handle!/x", BROWSER_ACCEPT).await;
        assert_eq!(status, 404);
        assert!(html.contains("This chat link is not active"), "{html}");

        // A deactivated link is gone for visitors too, and listed as inactive.
        let resp = server.http.delete(server.url(&format!("/api/quick-links/{id}")))
            .bearer_auth(&sarah).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 204);
        let (_, links) = server.get("/api/quick-links", Some(&sarah)).await;
        assert_eq!(links["quick_links"][0]["active"], json!(false), "{links}");
        let (status, _, html) = get_as(&server, "/q/sarah/linkedin", BROWSER_ACCEPT).await;
        assert_eq!(status, 404);
        assert!(html.contains("This chat link is not active"), "{html}");

        // Any unknown route: the same, by what the client prefers.
        let (status, content_type, html) = get_as(&server, "/no/such/page", BROWSER_ACCEPT).await;
        assert_eq!(status, 404);
        assert!(content_type.starts_with("text/html"), "{content_type}");
        assert!(html.contains("Page not found") && html.contains(r#"href="/""#), "{html}");
        assert!(!html.contains("no such route"), "no API wording on the page: {html}");
        let (status, body) = server.get("/no/such/page", None).await;
        assert_eq!(status, 404);
        assert_error_body(&body, "not_found");
        let (status, _, body) = get_as(&server, "/api/no-such-route", "*/*").await;
        assert_eq!(status, 404);
        assert_error_body(&serde_json::from_str(&body).unwrap(), "not_found");
    }
}
