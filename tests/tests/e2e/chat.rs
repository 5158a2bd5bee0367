//! Chatting end to end: a guest's message reaches the agents live and the agent's
//! reply reaches the guest with the agent's name, whether sent over WebSocket or over
//! HTTP; `seq` is gapless and every watcher sees the same order while two senders
//! write at once; read markers and typing signals go to the other side only; and
//! assignment narrows who receives a conversation's messages.

// Test bodies run inside the `both_backends!` helpers, which clippy does not see as
// tests; a panic with a message is how a test reports a broken expectation.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::{json, Value};
use switchboard_e2e::{both_backends, seqs, TestServer, Ws};

/// Sends one message and reads everything up to its ack plus a ping round trip
/// (the session's own copy and any fan-out copy are queued before the pong);
/// returns the ack and the `message` frames seen.
async fn send_and_settle(
    ws: &mut Ws,
    conv: &str,
    client_msg_id: &str,
    body: &str,
) -> (Value, Vec<Value>) {
    ws.send_json(&json!({"type": "send", "conversation_id": conv, "client_msg_id": client_msg_id, "body": body}))
        .await;
    let mut messages = Vec::new();
    let ack = loop {
        let v = ws.next_json().await;
        assert_ne!(v["type"], "error", "{v}");
        match v["type"].as_str() {
            Some("ack") => break v,
            Some("message") => messages.push(v),
            _ => {}
        }
    };
    messages.extend(
        ws.barrier()
            .await
            .into_iter()
            .filter(|v| v["type"] == "message"),
    );
    (ack, messages)
}

both_backends! {
    /// The basic promise of the product over WebSocket: guest → agent live, agent →
    /// guest reply, with the sender's identity on each message.
    async fn guest_and_agent_chat_over_websocket(backend) {
        let srv = TestServer::start(backend).await;
        let agent = srv.agent("agent").await;
        let guest = srv.guest().await;
        let conv = guest.conversation_id.as_str();
        let mut agent_ws = srv.ws_agent(&agent.token).await;
        let mut guest_ws = srv.ws_guest(&guest.token).await;
        assert_eq!(guest_ws.hello["you"]["kind"], "guest");
        assert_eq!(guest_ws.hello["you"]["conversation_id"], conv);

        let (ack, own) = send_and_settle(&mut guest_ws, conv, "g-1", "hello from the widget").await;
        assert_eq!(ack["seq"], 1);
        assert_eq!(ack["duplicate"], false);
        // The sender sees its own message (its other tabs do too), exactly once.
        assert_eq!(seqs(&own), [1], "the sender's own copies: {own:?}");
        assert_eq!(own[0]["id"], ack["id"]);

        let got = agent_ws.next_of_type("message").await;
        assert_eq!(got["conversation_id"], conv);
        assert_eq!(got["seq"], 1);
        assert_eq!(got["id"], ack["id"]);
        assert_eq!(got["body"], "hello from the widget");
        assert_eq!(got["client_msg_id"], "g-1");
        assert_eq!(got["sender"]["kind"], "guest");
        assert_eq!(got["sender"]["id"], json!(guest.contact_id));

        // The agent is both a team member (fan-out) and the sender: still one copy.
        let (reply_ack, own) = send_and_settle(&mut agent_ws, conv, "a-1", "hi, how can I help?").await;
        assert_eq!(reply_ack["seq"], 2);
        assert_eq!(seqs(&own), [2], "the sender's own copies: {own:?}");

        // The reply reaches the guest, signed with the agent's name, and nothing else
        // (no second copy of seq 1) came before it.
        let seen = guest_ws.collect_messages(conv, 1).await;
        let reply = &seen[0];
        assert_eq!(reply["seq"], 2);
        assert_eq!(reply["body"], "hi, how can I help?");
        assert_eq!(reply["id"], reply_ack["id"]);
        assert_eq!(reply["sender"]["kind"], "agent");
        assert_eq!(reply["sender"]["id"], json!(agent.id));
        assert_eq!(reply["sender"]["name"], json!(agent.name));

        // The conversation goes on: the agent's next message frame is the guest's
        // next message, not a late repeat of anything earlier.
        let (ack, _) = send_and_settle(&mut guest_ws, conv, "g-2", "thanks").await;
        assert_eq!(ack["seq"], 3);
        let next = agent_ws.next_of_type("message").await;
        assert_eq!(next["seq"], 3, "{next}");
    }
}

both_backends! {
    /// A message posted over HTTP goes through the same path as one sent over a
    /// socket: WebSocket viewers on both sides receive it live.
    async fn messages_posted_over_http_reach_websocket_viewers(backend) {
        let srv = TestServer::start(backend).await;
        let agent = srv.agent("agent").await;
        let guest = srv.guest().await;
        let conv = guest.conversation_id.as_str();
        let mut agent_ws = srv.ws_agent(&agent.token).await;
        let (mut guest_ws, _) = srv.ws_guest_resumed(&guest, 0).await;

        let (status, posted) = srv.post_message(&guest.token, conv, "g-http-1", "posted by the guest").await;
        assert_eq!(status, 201, "{posted}");
        assert_eq!(posted["duplicate"], false);
        assert_eq!(posted["message"]["seq"], 1);
        assert_eq!(posted["message"]["sender"]["kind"], "guest");

        let got = agent_ws.next_of_type("message").await;
        assert_eq!(got["seq"], 1);
        assert_eq!(got["id"], posted["message"]["id"]);
        assert_eq!(got["body"], "posted by the guest");
        // The guest's open tab learns of a message its other client posted.
        let own = guest_ws.next_of_type("message").await;
        assert_eq!(own["id"], posted["message"]["id"]);

        let (status, reply) = srv.post_message(&agent.token, conv, "a-http-1", "posted by the agent").await;
        assert_eq!(status, 201, "{reply}");
        assert_eq!(reply["message"]["seq"], 2);

        let got = guest_ws.next_of_type("message").await;
        assert_eq!(got["seq"], 2);
        assert_eq!(got["id"], reply["message"]["id"]);
        assert_eq!(got["body"], "posted by the agent");
        assert_eq!(got["sender"]["kind"], "agent");
        assert_eq!(got["sender"]["name"], json!(agent.name));
        let own = agent_ws.next_of_type("message").await;
        assert_eq!(own["seq"], 2);
    }
}

both_backends! {
    /// A guest and an agent each send 30 messages at the same moment; a lead and
    /// another agent watching the conversation each receive exactly seq 1..=60, and
    /// the same message at every seq.
    async fn seq_is_gapless_and_identical_for_every_watcher_under_concurrent_senders(backend) {
        const EACH: usize = 30;
        let srv = TestServer::start(backend).await;
        // Everyone in the team watches an unassigned conversation.
        srv.manual_routing().await;
        let lead = srv.agent("lead").await;
        let watcher = srv.agent("agent").await;
        let writer = srv.agent("agent").await;
        let guest = srv.guest().await;
        let conv = guest.conversation_id.clone();

        let lead_ws = srv.ws_agent(&lead.token).await;
        let watcher_ws = srv.ws_agent(&watcher.token).await;
        let mut guest_ws = srv.ws_guest(&guest.token).await;
        let mut writer_ws = srv.ws_agent(&writer.token).await;

        let observe = |mut ws: Ws, conv: String| {
            tokio::spawn(async move { ws.collect_messages(&conv, 2 * EACH).await })
        };
        let lead_seen = observe(lead_ws, conv.clone());
        let watcher_seen = observe(watcher_ws, conv.clone());

        let guest_conv = conv.clone();
        let guest_sends = tokio::spawn(async move {
            guest_ws.send_many(&guest_conv, "guest", EACH).await
        });
        let agent_conv = conv.clone();
        let agent_sends = tokio::spawn(async move {
            writer_ws.send_many(&agent_conv, "agent", EACH).await
        });
        let (guest_acks, agent_acks) = tokio::join!(guest_sends, agent_sends);
        let mut acks = guest_acks.expect("guest task");
        acks.extend(agent_acks.expect("agent task"));

        let (lead_seen, watcher_seen) = tokio::join!(lead_seen, watcher_seen);
        let lead_seen = lead_seen.expect("lead task");
        let watcher_seen = watcher_seen.expect("watcher task");

        let expected: Vec<i64> = (1..=i64::try_from(2 * EACH).expect("small")).collect();
        assert_eq!(seqs(&lead_seen), expected, "the lead saw a gap, a repeat or a reordering");
        assert_eq!(seqs(&watcher_seen), expected, "the agent saw a gap, a repeat or a reordering");
        for (a, b) in lead_seen.iter().zip(&watcher_seen) {
            assert_eq!(a["id"], b["id"], "watchers disagree at seq {}", a["seq"]);
        }
        // Every ack names the message the watchers saw at that seq.
        for ack in &acks {
            let seq = usize::try_from(ack["seq"].as_i64().expect("seq")).expect("positive");
            assert_eq!(lead_seen[seq - 1]["id"], ack["id"], "ack {ack} vs frame");
            assert_eq!(lead_seen[seq - 1]["client_msg_id"], ack["client_msg_id"]);
        }
        let from_guest = lead_seen.iter().filter(|m| m["sender"]["kind"] == "guest").count();
        assert_eq!(from_guest, EACH);
    }
}

both_backends! {
    /// Read markers go to the other side; typing goes to the other side but never
    /// back to the typing guest's own tabs; a read past the last message is ignored.
    async fn read_markers_and_typing_reach_the_other_side_only(backend) {
        let srv = TestServer::start(backend).await;
        let agent = srv.agent("agent").await;
        let guest = srv.guest().await;
        let conv = guest.conversation_id.as_str();
        let mut agent_ws = srv.ws_agent(&agent.token).await;
        let (mut tab1, _) = srv.ws_guest_resumed(&guest, 0).await;
        let (mut tab2, _) = srv.ws_guest_resumed(&guest, 0).await;

        tab1.send_message(conv, "g-1", "anyone there?").await;
        agent_ws.next_of_type("message").await;
        tab2.next_of_type("message").await;

        // The agent reads seq 1: the guest sees it (read ticks).
        agent_ws.send_json(&json!({"type": "read", "conversation_id": conv, "seq": 1})).await;
        let read = tab1.next_of_type("read").await;
        assert_eq!(read["conversation_id"], conv);
        assert_eq!(read["seq"], 1);
        assert_eq!(read["reader"]["kind"], "agent");
        assert_eq!(read["reader"]["id"], json!(agent.id));
        let read2 = tab2.next_of_type("read").await;
        assert_eq!(read2["seq"], 1);

        // The guest types in tab 1: the agent sees it.
        tab1.send_json(&json!({"type": "typing", "conversation_id": conv, "on": true})).await;
        let typing = agent_ws.next_of_type("typing").await;
        assert_eq!(typing["conversation_id"], conv);
        assert_eq!(typing["on"], true);
        assert_eq!(typing["sender"]["kind"], "guest");
        assert_eq!(typing["sender"]["id"], json!(guest.contact_id));

        // The agent answers; that message is the guest tabs' next event: no tab
        // (neither the typing one nor the other) got the guest's own typing signal.
        agent_ws.send_message(conv, "a-1", "yes, here").await;
        for tab in [&mut tab1, &mut tab2] {
            let next = next_chat_event(tab).await;
            assert_eq!(next["type"], "message", "a guest tab got its own typing signal: {next}");
            assert_eq!(next["seq"], 2);
        }

        // Agent typing reaches the guest.
        agent_ws.send_json(&json!({"type": "typing", "conversation_id": conv, "on": true})).await;
        let typing = tab1.next_of_type("typing").await;
        assert_eq!(typing["sender"]["kind"], "agent");
        assert_eq!(typing["sender"]["name"], json!(agent.name));

        // A read past the last message (2) is ignored; the next read event the guest
        // sees is the later, valid one.
        agent_ws.send_json(&json!({"type": "read", "conversation_id": conv, "seq": 99})).await;
        agent_ws.send_json(&json!({"type": "read", "conversation_id": conv, "seq": 2})).await;
        let read = tab1.next_of_type("read").await;
        assert_eq!(read["seq"], 2, "a read beyond last_seq was relayed: {read}");
        let (status, summary) = srv.get(&format!("/api/conversations/{conv}"), Some(&agent.token)).await;
        assert_eq!(status, 200);
        assert_eq!(summary["agent_read_seq"], 2);
        // Nothing else was sent to the agent for its invalid read either.
        let errors: Vec<Value> = agent_ws.barrier().await.into_iter().filter(|v| v["type"] == "error").collect();
        assert!(errors.is_empty(), "{errors:?}");
    }
}

/// The next `message`, `typing` or `read` frame (skipping acks and summaries).
async fn next_chat_event(ws: &mut Ws) -> Value {
    loop {
        let v = ws.next_json().await;
        if matches!(v["type"].as_str(), Some("message" | "typing" | "read")) {
            return v;
        }
    }
}

both_backends! {
    /// Assignment: a lead assigns to an agent, who is told and keeps receiving the
    /// conversation; another agent of the team stops receiving it while a lead still
    /// does; agents may not assign others, nor take what someone else holds.
    async fn assignment_routes_messages_to_the_assignee(backend) {
        let srv = TestServer::start(backend).await;
        // Assignment by hand only: automatic routing has its own suite.
        srv.manual_routing().await;
        let lead = srv.agent("lead").await;
        let alice = srv.agent("agent").await;
        let bob = srv.agent("agent").await;
        let guest = srv.guest().await;
        let other_guest = srv.guest().await;
        let conv = guest.conversation_id.as_str();
        let mut lead_ws = srv.ws_agent(&lead.token).await;
        let mut alice_ws = srv.ws_agent(&alice.token).await;
        let mut bob_ws = srv.ws_agent(&bob.token).await;

        // Unassigned: the whole team receives it.
        let (status, _) = srv.post_message(&guest.token, conv, "g-1", "first").await;
        assert_eq!(status, 201);
        for ws in [&mut lead_ws, &mut alice_ws, &mut bob_ws] {
            let m = ws.next_of_type("message").await;
            assert_eq!((m["conversation_id"].as_str(), m["seq"].as_i64()), (Some(conv), Some(1)));
        }

        // An agent may not hand the conversation to someone else.
        let (status, body) = srv
            .post(&format!("/api/conversations/{conv}/assign"), Some(&bob.token), &json!({"agent_id": alice.id}))
            .await;
        assert_eq!(status, 403, "{body}");

        let (status, view) = srv
            .post(&format!("/api/conversations/{conv}/assign"), Some(&lead.token), &json!({"agent_id": alice.id}))
            .await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["assignee_id"], json!(alice.id));
        let assigned = alice_ws.next_of_type("assigned").await;
        assert_eq!(assigned["conversation_id"], conv);
        assert_eq!(assigned["agent_id"], json!(alice.id));

        // Bob cannot take what Alice holds.
        let (status, body) = srv
            .post(&format!("/api/conversations/{conv}/assign"), Some(&bob.token), &json!({"agent_id": bob.id}))
            .await;
        assert_eq!(status, 409, "{body}");

        let (status, _) = srv.post_message(&guest.token, conv, "g-2", "second").await;
        assert_eq!(status, 201);
        let m = alice_ws.next_of_type("message").await;
        assert_eq!((m["conversation_id"].as_str(), m["seq"].as_i64()), (Some(conv), Some(2)));
        let m = lead_ws.next_of_type("message").await;
        assert_eq!((m["conversation_id"].as_str(), m["seq"].as_i64()), (Some(conv), Some(2)));

        // Marker: a message in another, unassigned conversation of the team. Bob's
        // deliveries are queued in order, so had seq 2 been sent to him it would
        // come first.
        let marker_conv = other_guest.conversation_id.as_str();
        let (status, _) = srv.post_message(&other_guest.token, marker_conv, "o-1", "marker").await;
        assert_eq!(status, 201);
        let next = bob_ws.next_of_type("message").await;
        assert_eq!(
            next["conversation_id"], marker_conv,
            "an agent kept receiving a conversation assigned to someone else: {next}"
        );
    }
}
