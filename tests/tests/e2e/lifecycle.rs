//! The hub across its life: history (ids, seqs, bodies) survives a restart on the
//! same database and numbering continues where it stopped; a graceful shutdown tells
//! every connected socket to reconnect (close 1012) without losing acknowledged
//! messages; and agent presence as leads see it — online, away, offline after the
//! grace period, never offline across a quick reload.

// Test bodies run inside the `both_backends!` helpers, which clippy does not see as
// tests; a panic with a message is how a test reports a broken expectation.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::{json, Value};
use switchboard_e2e::{both_backends, seqs, TestServer, Ws};

/// The fields that identify a stored message (what must survive a restart).
fn identity(m: &Value) -> Value {
    json!({
        "seq": m["seq"], "id": m["id"], "body": m["body"], "sender": m["sender"],
        "created_at": m["created_at"], "client_msg_id": m["client_msg_id"],
    })
}

both_backends! {
    /// Messages sent before a restart are all there afterwards, over HTTP and over a
    /// resumed socket, with the same ids and seqs; new ones continue at the next seq.
    async fn history_survives_a_restart(backend) {
        let srv = TestServer::start(backend).await;
        let agent = srv.agent("agent").await;
        let guest = srv.guest().await;
        let conv = guest.conversation_id.clone();
        let mut guest_ws = srv.ws_guest(&guest.token).await;
        let mut agent_ws = srv.ws_agent(&agent.token).await;
        let mut acks = Vec::new();
        for i in 1..=3 {
            acks.push(guest_ws.send_message(&conv, &format!("g-{i}"), &format!("guest line {i}")).await);
            acks.push(agent_ws.send_message(&conv, &format!("a-{i}"), &format!("agent line {i}")).await);
        }
        let before = srv.history(&agent.token, &conv).await;
        assert_eq!(seqs(&before), [1, 2, 3, 4, 5, 6]);
        for ack in &acks {
            let seq = usize::try_from(ack["seq"].as_i64().expect("seq")).expect("positive");
            assert_eq!(before[seq - 1]["id"], ack["id"]);
        }
        guest_ws.close().await;
        agent_ws.close().await;

        let srv = srv.restart().await;

        // Tokens issued before the restart still work (the signing key is stored).
        let after = srv.history(&agent.token, &conv).await;
        let ident = |ms: &[Value]| ms.iter().map(identity).collect::<Vec<_>>();
        assert_eq!(ident(&after), ident(&before), "history changed across the restart");
        let guest_view = srv.history(&guest.token, &conv).await;
        assert_eq!(ident(&guest_view), ident(&before));

        let mut guest_ws = srv.ws_guest(&guest.token).await;
        let (replayed, resumed) = guest_ws.resume(json!({ conv.clone(): 0 })).await;
        assert_eq!(ident(&replayed), ident(&before), "resume after restart");
        assert_eq!(resumed["cursors"][&conv], 6);

        let mut agent_ws = srv.ws_agent(&agent.token).await;
        let ack = guest_ws.send_message(&conv, "g-after", "after the restart").await;
        assert_eq!(ack["seq"], 7);
        assert_eq!(ack["duplicate"], false);
        let live = agent_ws.next_of_type("message").await;
        assert_eq!(live["seq"], 7);
        assert_eq!(live["body"], "after the restart");
        // An idempotency key used before the restart is still known.
        let again = guest_ws.send_message(&conv, "g-1", "guest line 1").await;
        assert_eq!(again["duplicate"], true);
        assert_eq!(again["id"], before[0]["id"]);
        assert_eq!(srv.history(&agent.token, &conv).await.len(), 7);
    }
}

/// Waits for the server to close `ws`; returns the close code.
async fn close_code(ws: &mut Ws) -> Option<u16> {
    ws.expect_close().await.map(|f| u16::from(f.code))
}

both_backends! {
    /// Stopping the server closes every socket with 1012 ("restarting, reconnect")
    /// and loses nothing that was acknowledged.
    async fn graceful_shutdown_closes_sockets_with_1012_and_keeps_acked_messages(backend) {
        let mut srv = TestServer::start(backend).await;
        let agent = srv.agent("agent").await;
        let guest = srv.guest().await;
        let conv = guest.conversation_id.clone();
        let mut guest_ws = srv.ws_guest(&guest.token).await;
        let mut agent_ws = srv.ws_agent(&agent.token).await;

        // Pipelined sends, so several are in the writer together when acked.
        for i in 0..10 {
            guest_ws
                .send_json(&json!({"type": "send", "conversation_id": conv,
                                   "client_msg_id": format!("g-{i}"), "body": format!("line {i}")}))
                .await;
        }
        let mut acked = Vec::new();
        while acked.len() < 10 {
            let v = guest_ws.next_json().await;
            assert_ne!(v["type"], "error", "{v}");
            if v["type"] == "ack" {
                acked.push(v["id"].clone());
            }
        }
        let reply = agent_ws.send_message(&conv, "a-1", "last words").await;
        acked.push(reply["id"].clone());

        srv.stop().await;
        assert_eq!(close_code(&mut guest_ws).await, Some(1012), "guest socket");
        assert_eq!(close_code(&mut agent_ws).await, Some(1012), "agent socket");

        let srv = srv.restart().await;
        let history = srv.history(&agent.token, &conv).await;
        assert_eq!(seqs(&history), (1..=11).collect::<Vec<i64>>());
        let mut stored: Vec<Value> = history.iter().map(|m| m["id"].clone()).collect();
        stored.sort_by_key(|v| v.to_string());
        acked.sort_by_key(|v| v.to_string());
        assert_eq!(stored, acked, "an acknowledged message is missing after the restart");
    }
}

/// The next `presence` frame about `agent_id` (presence of others is skipped).
async fn next_presence_of(ws: &mut Ws, agent_id: &str) -> String {
    loop {
        let v = ws.next_of_type("presence").await;
        if v["agent_id"] == agent_id {
            return v["status"].as_str().expect("status").to_string();
        }
    }
}

both_backends! {
    /// Presence as a lead sees it: online when an agent connects, away when it says
    /// so, offline only after its last socket has been gone for the grace period.
    async fn presence_goes_online_away_and_offline_after_the_last_socket(backend) {
        let srv = TestServer::start_with(backend, |c| {
            c.presence_grace = std::time::Duration::from_millis(500);
        })
        .await;
        let lead = srv.agent("lead").await;
        let agent = srv.agent("agent").await;
        let mut lead_ws = srv.ws_agent(&lead.token).await;

        let tab1 = srv.ws_agent(&agent.token).await;
        assert_eq!(next_presence_of(&mut lead_ws, &agent.id).await, "online");
        let mut tab2 = srv.ws_agent(&agent.token).await;

        // Closing one of two tabs changes nothing: the next presence news is the
        // agent's own choice, never an offline in between.
        tab1.close().await;
        tab2.send_json(&json!({"type": "presence", "status": "away"})).await;
        assert_eq!(next_presence_of(&mut lead_ws, &agent.id).await, "away");

        // The last tab goes: offline, once the (short) grace period has passed.
        tab2.close().await;
        assert_eq!(next_presence_of(&mut lead_ws, &agent.id).await, "offline");

        // Back again.
        let _tab3 = srv.ws_agent(&agent.token).await;
        assert_eq!(next_presence_of(&mut lead_ws, &agent.id).await, "online");
    }
}

both_backends! {
    /// A page reload (close and reconnect well within the grace period) never shows
    /// the agent as offline.
    async fn presence_survives_a_reload_within_the_grace_period(backend) {
        let srv = TestServer::start_with(backend, |c| {
            c.presence_grace = std::time::Duration::from_secs(30);
        })
        .await;
        let lead = srv.agent("lead").await;
        let agent = srv.agent("agent").await;
        let mut lead_ws = srv.ws_agent(&lead.token).await;

        let before = srv.ws_agent(&agent.token).await;
        assert_eq!(next_presence_of(&mut lead_ws, &agent.id).await, "online");
        before.close().await;
        let mut after = srv.ws_agent(&agent.token).await;
        after.send_json(&json!({"type": "presence", "status": "away"})).await;
        // Had the reload flipped presence, "offline" (and "online") would come first.
        assert_eq!(next_presence_of(&mut lead_ws, &agent.id).await, "away");
    }
}
