//! The widget as a first-time visitor meets it (issue 14, items 4 and 5): opening
//! the widget — a guest session, even with its socket connected — is no
//! conversation for agents (no row, no frame, no offer, not counted) until the
//! visitor writes; then it appears live with its lead. Anonymous visitors get
//! stable, distinct generated names and what the browser told (country, time zone,
//! locale), and a visitor who comes back is marked as returning.

// Test bodies run inside the `both_backends!` helpers, which clippy does not see as
// tests; a panic with a message is how a test reports a broken expectation.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::{json, Value};
use switchboard_e2e::{both_backends, eventually, TestGuest, TestServer};

/// Opens a widget session as a browser does, with an `Accept-Language` header.
async fn open_widget(srv: &TestServer, accept_language: &str, body: Value) -> (TestGuest, Value) {
    let resp = srv
        .http
        .post(srv.url("/api/widget/sessions"))
        .header("Accept-Language", accept_language)
        .json(&body)
        .send()
        .await
        .expect("POST /api/widget/sessions");
    let status = resp.status().as_u16();
    let session: Value = resp.json().await.expect("session JSON");
    assert!(
        status == 201 || status == 200,
        "widget session: {status} {session}"
    );
    let guest = TestGuest {
        token: session["guest_token"].as_str().unwrap().to_string(),
        conversation_id: session["conversation_id"].as_str().unwrap().to_string(),
        contact_id: session["contact_id"].as_str().unwrap().to_string(),
    };
    (guest, session)
}

/// The ids of the conversations `token` lists.
async fn listed(srv: &TestServer, token: &str) -> Vec<String> {
    let (status, body) = srv.get("/api/conversations", Some(token)).await;
    assert_eq!(status, 200, "{body}");
    body["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

/// The contact of `guest`'s conversation as an agent sees it.
async fn contact(srv: &TestServer, token: &str, guest: &TestGuest) -> Value {
    let path = format!("/api/conversations/{}", guest.conversation_id);
    let (status, v) = srv.get(&path, Some(token)).await;
    assert_eq!(status, 200, "{v}");
    v["contact"].clone()
}

/// Frames on an agent socket that concern conversation `id`.
fn about<'a>(frames: &'a [Value], id: &str) -> Vec<&'a Value> {
    frames
        .iter()
        .filter(|f| {
            f["conversation_id"] == id
                || f["conversation"]["id"] == id
                || f["offer"]["conversation_id"] == id
        })
        .collect()
}

both_backends! {
    /// An opened widget (session created, guest socket connected and resumed,
    /// quick-chat page opened) is nothing agents see: no list row, no summary, no
    /// lead, no frame or assignment, not queued, not in the dashboard nor the quick
    /// link's count. The first message makes it appear live, with its lead.
    async fn opening_the_widget_creates_no_conversation_for_agents(backend) {
        let srv = TestServer::start(backend).await;
        let admin = srv.admin_token().await;
        let team = srv.default_team_id().await;
        // Round robin to the one online agent: a visible conversation would be
        // listed live on its socket and assigned to it.
        let agent = srv.agent("agent").await;
        let mut agent_ws = srv.ws_agent(&agent.token).await;
        let (status, link) = srv
            .post("/api/quick-links", Some(&agent.token), &json!({"source": "LinkedIn", "handle": "amber"}))
            .await;
        assert_eq!(status, 201, "{link}");

        let (widget, _) = open_widget(&srv, "id-ID,id;q=0.9", json!({"source": "demo"})).await;
        let (_guest_ws, replayed) = srv.ws_guest_resumed(&widget, 0).await;
        assert!(replayed.is_empty());
        let (quick, _) = open_widget(&srv, "en", json!({"quick_link": "amber/linkedin"})).await;
        let _quick_ws = srv.ws_guest(&quick.token).await;

        // Everything queued for the agent so far comes out before the pong.
        let frames = agent_ws.barrier().await;
        for id in [&widget.conversation_id, &quick.conversation_id] {
            assert!(about(&frames, id).is_empty(), "frames about an opened widget: {frames:?}");
        }
        for token in [&admin, &agent.token] {
            assert!(listed(&srv, token).await.is_empty(), "an opened widget is listed");
        }
        for path in [
            format!("/api/conversations/{}", widget.conversation_id),
            format!("/api/conversations/{}/lead", widget.conversation_id),
        ] {
            let (status, body) = srv.get(&path, Some(&admin)).await;
            assert_eq!(status, 404, "GET {path}: {body}");
        }
        // The guest itself still reads its conversation.
        let (status, own) = srv
            .get(&format!("/api/conversations/{}", widget.conversation_id), Some(&widget.token))
            .await;
        assert_eq!(status, 200, "{own}");
        let (_, dash) = srv.get(&format!("/api/marketing/dashboard?team={team}"), Some(&admin)).await;
        assert_eq!(dash["active_conversations"], 0, "{dash}");
        let (_, load) = srv.get(&format!("/api/team/workload?team_id={team}"), Some(&admin)).await;
        assert_eq!(load["teams"][0]["waiting"], 0, "{load}");
        assert_eq!(load["teams"][0]["queue"], json!([]), "{load}");
        let (_, links) = srv.get("/api/quick-links", Some(&agent.token)).await;
        assert_eq!(links["quick_links"][0]["conversations"], 0, "{links}");

        // The first message: the conversation appears live, and its lead is there
        // as soon as an agent can open it.
        let (status, body) = srv
            .post_message(&widget.token, &widget.conversation_id, "w1", "Hello, is the March trip still open?")
            .await;
        assert_eq!(status, 201, "{body}");
        let (mut listed_live, mut routed) = (None, None);
        while listed_live.is_none() || routed.is_none() {
            let f = agent_ws.next_json().await;
            match f["type"].as_str() {
                Some("conversation") if f["conversation"]["id"] == widget.conversation_id.as_str() => {
                    listed_live = Some(f);
                }
                Some("assigned") => routed = Some(f),
                _ => {}
            }
        }
        let assigned = routed.unwrap();
        assert_eq!(assigned["conversation_id"], widget.conversation_id.as_str(), "{assigned}");
        assert_eq!(assigned["agent_id"], agent.id.as_str(), "{assigned}");
        let frame = listed_live.unwrap();
        let contact = &frame["conversation"]["contact"];
        assert_eq!(contact["name"], Value::Null, "{contact}");
        assert_eq!(contact["generated_name"], true, "{contact}");
        assert_eq!(
            contact["display_name"],
            switchboard::visitor::generated_name(&widget.contact_id).as_str(),
            "{contact}"
        );
        assert_eq!(contact["country"], "ID", "{contact}");
        assert_eq!(contact["locale"], "id-ID", "{contact}");
        let (status, lead) = srv
            .get(&format!("/api/conversations/{}/lead", widget.conversation_id), Some(&admin))
            .await;
        assert_eq!(status, 200, "a listed conversation has its lead: {lead}");
        assert_eq!(lead["conversation_ids"][0], widget.conversation_id.as_str(), "{lead}");
        assert_eq!(listed(&srv, &admin).await, std::slice::from_ref(&widget.conversation_id));

        let (status, body) = srv
            .post_message(&quick.token, &quick.conversation_id, "q1", "Hi!")
            .await;
        assert_eq!(status, 201, "{body}");
        eventually("the quick link counts its first conversation", || async {
            let (_, links) = srv.get("/api/quick-links", Some(&agent.token)).await;
            (links["quick_links"][0]["conversations"] == 1).then_some(())
        })
        .await;
        let (_, dash) = srv.get(&format!("/api/marketing/dashboard?team={team}"), Some(&admin)).await;
        assert_eq!(dash["active_conversations"], 2, "{dash}");
    }
}

both_backends! {
    /// A pre-chat form makes the conversation visible before any message, with
    /// the given name shown as is.
    async fn a_pre_chat_form_makes_the_conversation_visible(backend) {
        let srv = TestServer::start(backend).await;
        let admin = srv.admin_token().await;
        let (guest, _) = open_widget(&srv, "en-GB", json!({"name": "Budi", "email": "budi@example.com"})).await;
        assert_eq!(listed(&srv, &admin).await, std::slice::from_ref(&guest.conversation_id));
        let (status, summary) = srv
            .get(&format!("/api/conversations/{}", guest.conversation_id), Some(&admin))
            .await;
        assert_eq!(status, 200, "{summary}");
        assert_eq!(summary["contact"]["display_name"], "Budi");
        assert_eq!(summary["contact"]["generated_name"], false);
        assert_eq!(summary["contact"]["country"], "GB");
        // Visible, so it has a lead (made when first asked for).
        let (status, lead) = srv
            .get(&format!("/api/conversations/{}/lead", guest.conversation_id), Some(&admin))
            .await;
        assert_eq!(status, 200, "{lead}");
        assert_eq!(lead["contacts"][0]["email"], "budi@example.com", "{lead}");
    }
}

both_backends! {
    /// Two anonymous visitors get different generated names, the same after a
    /// restart; the country comes from the time zone, else from Accept-Language;
    /// the guest socket greets the visitor by that name; a visitor who comes back
    /// after a pause, or whose details match an earlier conversation, is returning.
    async fn anonymous_visitors_get_stable_names_country_and_returning(backend) {
        let srv = TestServer::start(backend).await;
        let admin = srv.admin_token().await;
        let (a, _) = open_widget(
            &srv,
            "en-US,en;q=0.8",
            json!({"time_zone": "Asia/Jakarta", "locale": "id-ID"}),
        )
        .await;
        // Names come from 4096; in the rare case of a clash, another visitor.
        let mut b = open_widget(&srv, "de-AT,de;q=0.9", json!({})).await.0;
        while switchboard::visitor::generated_name(&b.contact_id)
            == switchboard::visitor::generated_name(&a.contact_id)
        {
            b = open_widget(&srv, "de-AT,de;q=0.9", json!({})).await.0;
        }
        for (g, text) in [(&a, "Halo"), (&b, "Grüß Gott")] {
            let (status, body) = srv.post_message(&g.token, &g.conversation_id, "m1", text).await;
            assert_eq!(status, 201, "{body}");
        }
        let ca = contact(&srv, &admin, &a).await;
        let cb = contact(&srv, &admin, &b).await;
        assert_ne!(ca["display_name"], cb["display_name"]);
        for c in [&ca, &cb] {
            let name = c["display_name"].as_str().unwrap();
            assert_eq!(name.split(' ').count(), 2, "{c}");
            assert_eq!(c["generated_name"], true, "{c}");
            assert_eq!(c["name"], Value::Null, "the bot must not greet a generated name: {c}");
            assert_eq!(c["returning"], false, "{c}");
        }
        assert_eq!((&ca["country"], &ca["time_zone"], &ca["locale"]), (&json!("ID"), &json!("Asia/Jakarta"), &json!("id-ID")));
        assert_eq!((&cb["country"], &cb["time_zone"], &cb["locale"]), (&json!("AT"), &Value::Null, &json!("de-AT")));
        // The list shows the same.
        let (_, list) = srv.get("/api/conversations", Some(&admin)).await;
        let row = list["conversations"].as_array().unwrap().iter()
            .find(|c| c["id"] == a.conversation_id.as_str()).unwrap().clone();
        assert_eq!(row["contact"], ca);
        let hello = srv.ws_guest(&a.token).await.hello;
        assert_eq!(hello["you"]["name"], ca["display_name"], "{hello}");

        // A page view a moment later is the same visit; after a pause it is a return.
        let renew = json!({"guest_token": a.token});
        open_widget(&srv, "en-US", renew.clone()).await;
        assert_eq!(contact(&srv, &admin, &a).await["returning"], false);
        srv.execute_sql(&format!(
            "UPDATE contacts SET last_seen_at = last_seen_at - 3600000 WHERE id = '{}'",
            a.contact_id
        ))
        .await;
        let (_, again) = open_widget(&srv, "en-US", renew).await;
        assert_eq!(again["conversation_id"], a.conversation_id.as_str());
        assert_eq!(contact(&srv, &admin, &a).await["returning"], true);

        // The same person (same email) in a new conversation: returning.
        let (first, _) = open_widget(&srv, "en", json!({"email": "sari@example.com"})).await;
        srv.post_message(&first.token, &first.conversation_id, "s1", "Hi").await;
        srv.lead_where(&admin, &first.conversation_id, |_| true).await;
        let (second, _) = open_widget(&srv, "en", json!({"email": "Sari@example.com"})).await;
        srv.post_message(&second.token, &second.conversation_id, "s2", "Hi again").await;
        eventually("the second conversation's contact is returning", || async {
            (contact(&srv, &admin, &second).await["returning"] == true).then_some(())
        })
        .await;

        // Stable: the same names after a restart.
        let srv = srv.restart().await;
        let admin = srv.admin_token().await;
        let (_, v) = srv.get(&format!("/api/conversations/{}", b.conversation_id), Some(&admin)).await;
        assert_eq!(v["contact"]["display_name"], cb["display_name"]);
    }
}
