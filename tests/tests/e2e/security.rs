//! Who may see what: a guest token grants its own conversation and nothing else
//! (over WebSocket and HTTP, reads, writes and live delivery); an agent sees only
//! its teams' conversations while an admin sees all; bad, foreign, misplaced or
//! missing tokens are refused with `unauthorized` and close 1008 (or HTTP 401 on
//! the upgrade) and the node keeps serving; agent sockets refuse foreign origins.

// Test bodies run inside the `both_backends!` helpers, which clippy does not see as
// tests; a panic with a message is how a test reports a broken expectation.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::{json, Value};
use switchboard_e2e::{assert_error_body, both_backends, seqs, TestServer, Ws};

/// `{conversation_id: last_seq}`.
fn cursor(conversation_id: &str, last_seq: i64) -> Value {
    let mut m = serde_json::Map::new();
    m.insert(conversation_id.to_string(), json!(last_seq));
    Value::Object(m)
}

/// The next frame, which must be an `error` with `code`; returns it.
async fn expect_error(ws: &mut Ws, code: &str) -> Value {
    let v = ws.next_json().await;
    assert_eq!(v["type"], "error", "expected an error frame, got {v}");
    assert_eq!(v["code"], code, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    v
}

/// Sends `resume` and reads up to `resumed`: returns (errors, messages, resumed).
async fn resume_frames(ws: &mut Ws, cursors: Value) -> (Vec<Value>, Vec<Value>, Value) {
    ws.send_json(&json!({"type": "resume", "cursors": cursors}))
        .await;
    let (mut errors, mut messages) = (Vec::new(), Vec::new());
    loop {
        let v = ws.next_json().await;
        match v["type"].as_str() {
            Some("error") => errors.push(v),
            Some("message") => messages.push(v),
            Some("resumed") => return (errors, messages, v),
            _ => {}
        }
    }
}

/// Reads frames until one satisfies `stop`; returns all of them, the last included.
async fn frames_until(ws: &mut Ws, stop: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let v = ws.next_json().await;
        let done = stop(&v);
        out.push(v);
        if done {
            return out;
        }
    }
}

both_backends! {
    /// Guest A holds a token for its own conversation; with it, guest B's
    /// conversation can be neither read, written, resumed nor listened to.
    async fn a_guest_cannot_read_or_write_another_guests_conversation(backend) {
        let srv = TestServer::start(backend).await;
        let agent = srv.agent("agent").await;
        let alice = srv.guest().await;
        let bob = srv.guest().await;
        let bobs = bob.conversation_id.as_str();
        let (status, _) = srv.post_message(&bob.token, bobs, "b-1", "bob's secret").await;
        assert_eq!(status, 201);

        let (mut alice_ws, _) = srv.ws_guest_resumed(&alice, 0).await;
        alice_ws
            .send_json(&json!({"type": "send", "conversation_id": bobs, "client_msg_id": "x-1", "body": "intrusion"}))
            .await;
        let err = expect_error(&mut alice_ws, "forbidden").await;
        assert_eq!(err["ref"], "x-1");
        alice_ws.send_json(&json!({"type": "read", "conversation_id": bobs, "seq": 1})).await;
        expect_error(&mut alice_ws, "forbidden").await;
        alice_ws.send_json(&json!({"type": "typing", "conversation_id": bobs, "on": true})).await;
        expect_error(&mut alice_ws, "forbidden").await;

        let (errors, messages, resumed) = resume_frames(&mut alice_ws, cursor(bobs, 0)).await;
        assert!(messages.is_empty(), "another guest's history leaked: {messages:?}");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0]["code"], "forbidden");
        assert_eq!(errors[0]["ref"], bobs);
        assert!(resumed["cursors"].get(bobs).is_none(), "{resumed}");

        let token = Some(alice.token.as_str());
        for path in [format!("/api/conversations/{bobs}"), format!("/api/conversations/{bobs}/messages")] {
            let (status, body) = srv.get(&path, token).await;
            assert_eq!(status, 403, "GET {path}: {body}");
            assert_error_body(&body, "forbidden");
        }
        let (status, body) = srv.post_message(&alice.token, bobs, "x-2", "intrusion").await;
        assert_eq!(status, 403, "{body}");
        assert_error_body(&body, "forbidden");
        // Agent-only endpoints refuse guest tokens altogether.
        for path in ["/api/conversations", "/api/agents", "/api/auth/me"] {
            let (status, body) = srv.get(path, token).await;
            assert_eq!(status, 403, "GET {path}: {body}");
            assert_error_body(&body, "forbidden");
        }
        let (status, body) = srv
            .post(&format!("/api/conversations/{}/assign", alice.conversation_id), token, &json!({"agent_id": agent.id}))
            .await;
        assert_eq!(status, 403, "{body}");

        // Nothing of alice's attempts was stored.
        let history = srv.history(&agent.token, bobs).await;
        assert_eq!(seqs(&history), [1]);

        // Bob keeps talking; alice hears none of it. Bob's ack means his message has
        // been handed to every recipient's queue, so alice's ping round trip would
        // come after it, had it been sent to her.
        let (mut bob_ws, _) = srv.ws_guest_resumed(&bob, 1).await;
        bob_ws.send_message(bobs, "b-2", "second secret").await;
        let leaked: Vec<Value> = alice_ws.barrier().await;
        assert!(leaked.is_empty(), "alice received: {leaked:?}");
        // Her own conversation still works.
        let ack = alice_ws.send_message(&alice.conversation_id, "a-1", "my own").await;
        assert_eq!(ack["seq"], 1);
    }
}

both_backends! {
    /// An agent of another team neither receives nor may open the default team's
    /// conversations; an admin, in no particular team, receives every team's.
    async fn agents_only_see_their_own_teams_conversations(backend) {
        let srv = TestServer::start(backend).await;
        // Visibility of unassigned work, not routing: nobody is assigned automatically.
        srv.manual_routing().await;
        let sales = srv.create_team("Sales", "sales").await;
        let outsider = srv.agent_in("agent", Some(&[sales.as_str()])).await;
        let insider = srv.agent("agent").await;
        let admin_token = srv.admin_token().await;
        let support_guest = srv.guest().await;
        let sales_guest = srv.guest_with(json!({"team": "sales", "name": "Buyer"})).await;
        let support = support_guest.conversation_id.as_str();
        let sales_conv = sales_guest.conversation_id.as_str();

        let mut outsider_ws = srv.ws_agent(&outsider.token).await;
        let mut insider_ws = srv.ws_agent(&insider.token).await;
        let mut admin_ws = srv.ws_agent(&admin_token).await;

        let (status, _) = srv.post_message(&support_guest.token, support, "s-1", "for support").await;
        assert_eq!(status, 201);
        let m = insider_ws.next_of_type("message").await;
        assert_eq!(m["conversation_id"], support);
        let m = admin_ws.next_of_type("message").await;
        assert_eq!(m["conversation_id"], support);

        // Marker for the outsider: a message of its own team. Deliveries to one agent
        // are queued in order, so anything about the support conversation would come
        // before it.
        let (status, _) = srv.post_message(&sales_guest.token, sales_conv, "p-1", "for sales").await;
        assert_eq!(status, 201);
        let seen = frames_until(&mut outsider_ws, |v| v["type"] == "message").await;
        assert_eq!(seen.last().expect("frame")["conversation_id"], sales_conv);
        assert!(
            seen.iter().all(|v| !v.to_string().contains(support)),
            "an agent of another team was told about the conversation: {seen:?}"
        );
        // The admin sees the sales team's work too.
        let m = admin_ws.next_of_type("message").await;
        assert_eq!(m["conversation_id"], sales_conv);
        // And the support agent did not get the sales message: its next message is
        // the support conversation's second one.
        let (status, _) = srv.post_message(&support_guest.token, support, "s-2", "again").await;
        assert_eq!(status, 201);
        let m = insider_ws.next_of_type("message").await;
        assert_eq!((m["conversation_id"].as_str(), m["seq"].as_i64()), (Some(support), Some(2)));

        let token = Some(outsider.token.as_str());
        for path in [format!("/api/conversations/{support}"), format!("/api/conversations/{support}/messages")] {
            let (status, body) = srv.get(&path, token).await;
            assert_eq!(status, 403, "GET {path}: {body}");
            assert_error_body(&body, "forbidden");
        }
        let (status, body) = srv.post_message(&outsider.token, support, "o-1", "intrusion").await;
        assert_eq!(status, 403, "{body}");
        let (status, body) = srv
            .post(&format!("/api/conversations/{support}/assign"), token, &json!({"agent_id": outsider.id}))
            .await;
        assert_eq!(status, 403, "{body}");
        let (status, list) = srv.get("/api/conversations", token).await;
        assert_eq!(status, 200, "{list}");
        let listed: Vec<&Value> = list["conversations"].as_array().expect("list").iter().map(|c| &c["id"]).collect();
        assert_eq!(listed, [&json!(sales_conv)]);

        outsider_ws
            .send_json(&json!({"type": "send", "conversation_id": support, "client_msg_id": "o-2", "body": "intrusion"}))
            .await;
        // (Agent sockets also get inbox updates, so look for the error among them.)
        let err = outsider_ws.next_of_type("error").await;
        assert_eq!(err["code"], "forbidden");
        assert_eq!(err["ref"], "o-2");
        let (errors, messages, _) = resume_frames(&mut outsider_ws, cursor(support, 0)).await;
        assert!(messages.is_empty(), "{messages:?}");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0]["code"], "forbidden");

        // The admin can read both.
        assert_eq!(srv.history(&admin_token, support).await.len(), 2);
        assert_eq!(srv.history(&admin_token, sales_conv).await.len(), 1);
        let (status, list) = srv.get("/api/conversations", Some(&admin_token)).await;
        assert_eq!(status, 200);
        assert_eq!(list["conversations"].as_array().expect("list").len(), 2);
    }
}

/// Waits for the server to close `ws`; returns the close code.
async fn close_code(ws: &mut Ws) -> Option<u16> {
    ws.expect_close().await.map(|f| u16::from(f.code))
}

both_backends! {
    /// Invalid tokens, frames before `auth`, tokens for the other endpoint and bad
    /// `Authorization` headers are all refused clearly; afterwards the node still
    /// serves a fresh client.
    async fn invalid_tokens_are_refused_and_the_node_keeps_serving(backend) {
        let srv = TestServer::start(backend).await;
        let agent = srv.agent("agent").await;
        let guest = srv.guest().await;
        let agent_url = srv.ws_url("/ws/agent");
        let guest_url = srv.ws_url("/ws/guest");

        let mut forged = agent.token.clone();
        forged.push('x');
        for (url, token) in [
            (&agent_url, "garbage"),
            (&agent_url, forged.as_str()),
            (&guest_url, "garbage"),
            // A valid token on the wrong endpoint.
            (&guest_url, agent.token.as_str()),
            (&agent_url, guest.token.as_str()),
        ] {
            let mut ws = Ws::connect(url).await;
            ws.send_json(&json!({"type": "auth", "token": token})).await;
            expect_error(&mut ws, "unauthorized").await;
            assert_eq!(close_code(&mut ws).await, Some(1008), "{url} with {token:.12}…");
        }

        // Anything but `auth` first.
        let mut ws = Ws::connect(&guest_url).await;
        ws.send_json(&json!({"type": "send", "client_msg_id": "early", "body": "hi"})).await;
        expect_error(&mut ws, "unauthorized").await;
        assert_eq!(close_code(&mut ws).await, Some(1008));

        // A bad header token is refused before the upgrade.
        for url in [&agent_url, &guest_url] {
            for header in ["Bearer garbage", "Basic dXNlcjpwYXNz"] {
                let refused = Ws::connect_with_headers(url, &[("Authorization", header)]).await;
                assert_eq!(refused.err(), Some(401), "{url} with {header}");
            }
        }
        // A good header token authenticates without an auth frame.
        let bearer = format!("Bearer {}", agent.token);
        let mut ws = Ws::connect_with_headers(&agent_url, &[("Authorization", bearer.as_str())])
            .await
            .unwrap_or_else(|status| panic!("upgrade with a valid header refused: {status}"));
        let hello = ws.next_json().await;
        assert_eq!(hello["type"], "hello", "{hello}");
        assert_eq!(hello["you"]["id"], json!(agent.id));

        // The node is fine.
        let (mut fresh, _) = srv.ws_guest_resumed(&guest, 0).await;
        let ack = fresh.send_message(&guest.conversation_id, "ok-1", "still here?").await;
        assert_eq!(ack["seq"], 1);
        let (status, _) = srv.get("/healthz", None).await;
        assert_eq!(status, 200);
    }
}

both_backends! {
    /// A socket that never authenticates is told so and closed with 1008 once
    /// `auth_timeout` has passed.
    async fn a_socket_without_auth_is_closed_after_auth_timeout(backend) {
        let srv = TestServer::start_with(backend, |c| {
            c.auth_timeout = std::time::Duration::from_secs(1);
        })
        .await;
        let mut idle = Ws::connect(&srv.ws_url("/ws/guest")).await;
        expect_error(&mut idle, "unauthorized").await;
        assert_eq!(close_code(&mut idle).await, Some(1008));

        let guest = srv.guest().await;
        let (mut fresh, _) = srv.ws_guest_resumed(&guest, 0).await;
        assert!(fresh.barrier().await.is_empty());
    }
}

both_backends! {
    /// Agent sockets carry an agent's authority, so a page on another site may not
    /// open one; the hub's own pages may; the guest widget runs anywhere.
    async fn agent_sockets_refuse_foreign_origins(backend) {
        let srv = TestServer::start(backend).await;
        let agent = srv.agent("agent").await;
        let guest = srv.guest().await;
        let auth = |token: &str| json!({"type": "auth", "token": token});

        let refused = Ws::connect_with_headers(&srv.ws_url("/ws/agent"), &[("Origin", "https://evil.example")]).await;
        assert_eq!(refused.err(), Some(403));

        let mut own = Ws::connect_with_headers(&srv.ws_url("/ws/agent"), &[("Origin", srv.base.as_str())])
            .await
            .unwrap_or_else(|status| panic!("own origin refused: {status}"));
        own.send_json(&auth(&agent.token)).await;
        assert_eq!(own.next_json().await["type"], "hello");

        let mut widget = Ws::connect_with_headers(&srv.ws_url("/ws/guest"), &[("Origin", "https://evil.example")])
            .await
            .unwrap_or_else(|status| panic!("guest socket refused for a foreign origin: {status}"));
        widget.send_json(&auth(&guest.token)).await;
        assert_eq!(widget.next_json().await["type"], "hello");
    }
}
