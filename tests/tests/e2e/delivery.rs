//! Delivery guarantees: resending a `client_msg_id` never creates a second message
//! (over WebSocket, over HTTP, and under 20 concurrent retries), while the same key
//! from another sender is that sender's own message; and `resume` gives a client
//! exactly what it missed — the 50 messages sent while it was away, in order, once,
//! even while new messages keep arriving during the resume — then live traffic
//! continues without a repeat.

// Test bodies run inside the `both_backends!` helpers, which clippy does not see as
// tests; a panic with a message is how a test reports a broken expectation.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::{json, Value};
use switchboard_e2e::{both_backends, seqs, TestServer, Ws};

/// `{conversation_id: last_seq}`.
fn cursor(conversation_id: &str, last_seq: i64) -> Value {
    let mut m = serde_json::Map::new();
    m.insert(conversation_id.to_string(), json!(last_seq));
    Value::Object(m)
}

both_backends! {
    /// Over WebSocket: the second `send` with the same key is acknowledged as a
    /// duplicate of the first (same id and seq) and nobody receives a second message.
    async fn resending_a_client_msg_id_over_websocket_yields_one_message(backend) {
        let srv = TestServer::start(backend).await;
        let agent = srv.agent("agent").await;
        let guest = srv.guest().await;
        let conv = guest.conversation_id.as_str();
        let mut agent_ws = srv.ws_agent(&agent.token).await;
        let (mut guest_ws, _) = srv.ws_guest_resumed(&guest, 0).await;
        // The guest's other tab only watches (the sending tab's helper skips frames).
        let (mut other_tab, _) = srv.ws_guest_resumed(&guest, 0).await;

        let first = guest_ws.send_message(conv, "dup-1", "only once").await;
        assert_eq!(first["duplicate"], false);
        assert_eq!(first["seq"], 1);
        // A retry (the client never saw the ack) is answered with the original.
        let again = guest_ws.send_message(conv, "dup-1", "only once").await;
        assert_eq!(again["duplicate"], true);
        assert_eq!(again["id"], first["id"]);
        assert_eq!(again["seq"], first["seq"]);

        // The next new message gets seq 2: the retry consumed no seq, and every
        // viewer's next message after seq 1 is that one.
        let next = guest_ws.send_message(conv, "dup-2", "a new one").await;
        assert_eq!(next["seq"], 2);
        assert_eq!(next["duplicate"], false);
        for ws in [&mut agent_ws, &mut other_tab] {
            let seen = ws.collect_messages(conv, 2).await;
            assert_eq!(seqs(&seen), [1, 2]);
            assert_eq!(seen[0]["body"], "only once");
            assert_eq!(seen[1]["body"], "a new one");
        }
        let history = srv.history(&agent.token, conv).await;
        assert_eq!(seqs(&history), [1, 2]);

        // Keys belong to their sender: the agent using "dup-1" writes its own message.
        let theirs = agent_ws.send_message(conv, "dup-1", "the agent's own").await;
        assert_eq!(theirs["duplicate"], false);
        assert_eq!(theirs["seq"], 3);
        assert_ne!(theirs["id"], first["id"]);
    }
}

both_backends! {
    /// Over HTTP: 201 then 200 with `duplicate: true` and the original message; 20
    /// simultaneous posts of one key store exactly one message; another sender's
    /// identical key is a separate message.
    async fn resending_a_client_msg_id_over_http_yields_one_message(backend) {
        let srv = TestServer::start(backend).await;
        let agent = srv.agent("agent").await;
        let guest = srv.guest().await;
        let conv = guest.conversation_id.as_str();

        let (status, first) = srv.post_message(&guest.token, conv, "h-1", "hello").await;
        assert_eq!(status, 201, "{first}");
        assert_eq!(first["duplicate"], false);
        let (status, again) = srv.post_message(&guest.token, conv, "h-1", "hello").await;
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["duplicate"], true);
        assert_eq!(again["message"]["id"], first["message"]["id"]);
        assert_eq!(again["message"]["seq"], first["message"]["seq"]);
        assert_eq!(again["message"]["body"], "hello");

        // A client retrying impatiently on many connections at once.
        let posts = (0..20).map(|_| srv.post_message(&guest.token, conv, "burst-1", "retried"));
        let results = futures_util::future::join_all(posts).await;
        let created = results.iter().filter(|(s, _)| *s == 201).count();
        let duplicates = results.iter().filter(|(s, b)| *s == 200 && b["duplicate"] == true).count();
        assert_eq!((created, duplicates), (1, 19), "{results:?}");
        let ids: Vec<&Value> = results.iter().map(|(_, b)| &b["message"]["id"]).collect();
        assert!(ids.iter().all(|id| *id == ids[0]), "retries got different messages: {ids:?}");

        let history = srv.history(&agent.token, conv).await;
        assert_eq!(seqs(&history), [1, 2], "a retry stored a second message");
        assert_eq!(history[1]["client_msg_id"], "burst-1");

        let (status, theirs) = srv.post_message(&agent.token, conv, "h-1", "same key, other sender").await;
        assert_eq!(status, 201, "{theirs}");
        assert_eq!(theirs["duplicate"], false);
        assert_eq!(theirs["message"]["seq"], 3);
        assert_ne!(theirs["message"]["id"], first["message"]["id"]);
    }
}

both_backends! {
    /// The headline resume case: a guest sees 5 messages, drops off, misses 50, comes
    /// back and gets exactly seq 6..=55 once and in order, then `resumed` with the new
    /// cursor, then live messages with no repeat.
    async fn resume_replays_exactly_the_50_missed_messages(backend) {
        let srv = TestServer::start(backend).await;
        let agent = srv.agent("agent").await;
        let guest = srv.guest().await;
        let conv = guest.conversation_id.as_str();
        let mut agent_ws = srv.ws_agent(&agent.token).await;
        let (mut guest_ws, _) = srv.ws_guest_resumed(&guest, 0).await;

        agent_ws.send_many(conv, "before", 5).await;
        let seen = guest_ws.collect_messages(conv, 5).await;
        assert_eq!(seqs(&seen), [1, 2, 3, 4, 5]);
        guest_ws.close().await;

        let missed_acks = agent_ws.send_many(conv, "missed", 50).await;
        assert_eq!(missed_acks.len(), 50);
        let history = srv.history(&agent.token, conv).await;
        assert_eq!(history.len(), 55);

        let mut guest_ws = srv.ws_guest(&guest.token).await;
        let (replayed, resumed) = guest_ws.resume(cursor(conv, 5)).await;
        assert_eq!(seqs(&replayed), (6..=55).collect::<Vec<i64>>());
        for (frame, stored) in replayed.iter().zip(&history[5..]) {
            assert_eq!(frame["id"], stored["id"]);
            assert_eq!(frame["body"], stored["body"]);
        }
        assert_eq!(resumed["cursors"], cursor(conv, 55));

        // Live traffic picks up right after the replay: the next message frame is
        // seq 56, and nothing repeats behind it.
        let live = agent_ws.send_message(conv, "after", "welcome back").await;
        assert_eq!(live["seq"], 56);
        let next = guest_ws.next_of_type("message").await;
        assert_eq!(next["seq"], 56);
        let late: Vec<Value> = guest_ws.barrier().await.into_iter().filter(|v| v["type"] == "message").collect();
        assert!(late.is_empty(), "repeated or stray messages after resume: {late:?}");
    }
}

/// Reads every frame until both the `resumed` frame and the message with `last`
/// have arrived, then a ping round trip (so any straggling repeat shows up too);
/// returns the `message` frames of `conv` in arrival order.
async fn messages_through(ws: &mut Ws, conv: &str, last: i64) -> Vec<Value> {
    let mut got = Vec::new();
    let mut resumed = false;
    while !(resumed && got.iter().any(|m: &Value| m["seq"] == last)) {
        let v = ws.next_json().await;
        match v["type"].as_str() {
            Some("message") if v["conversation_id"] == conv => got.push(v),
            Some("resumed") => resumed = true,
            Some("error") => panic!("error during resume: {v}"),
            _ => {}
        }
    }
    got.extend(
        ws.barrier()
            .await
            .into_iter()
            .filter(|v| v["type"] == "message"),
    );
    got
}

/// Posts `count` messages as `token`, one after another, signalling `started` after
/// the first few so the caller can reconnect while the rest are still being sent.
async fn post_stream(
    srv: &TestServer,
    token: &str,
    conv: &str,
    count: usize,
    started: tokio::sync::oneshot::Sender<()>,
) {
    let mut started = Some(started);
    for i in 0..count {
        let (status, body) = srv
            .post_message(token, conv, &format!("live-{i}"), &format!("live {i}"))
            .await;
        assert_eq!(status, 201, "{body}");
        if i == 4 {
            if let Some(tx) = started.take() {
                let _ = tx.send(());
            }
        }
    }
}

/// Reconnects (with `connect`) and resumes `conv` from seq 10 while `poster` is
/// posting 40 more messages, so the replay and live delivery overlap; returns the
/// seqs the new socket received through seq 50, in arrival order.
async fn resume_while_posting<F, Fut>(
    srv: &TestServer,
    poster: &str,
    conv: &str,
    connect: F,
) -> Vec<i64>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Ws>,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let sender = post_stream(srv, poster, conv, 40, tx);
    let reconnect = async {
        rx.await.expect("sender started");
        let mut ws = connect().await;
        ws.send_json(&json!({"type": "resume", "cursors": cursor(conv, 10)}))
            .await;
        ws
    };
    let ((), mut ws) = tokio::join!(sender, reconnect);
    seqs(&messages_through(&mut ws, conv, 50).await)
}

both_backends! {
    /// A guest reconnects and resumes while an agent keeps writing: every message
    /// after its cursor arrives exactly once, in order, whether it came from the
    /// replay or live — no gap where the two meet and no repeat.
    async fn guest_resume_racing_live_traffic_is_gapless_and_duplicate_free(backend) {
        let srv = TestServer::start(backend).await;
        let agent = srv.agent("agent").await;
        let guest = srv.guest().await;
        let conv = guest.conversation_id.as_str();
        let mut agent_ws = srv.ws_agent(&agent.token).await;
        agent_ws.send_many(conv, "old", 10).await;

        let got = resume_while_posting(&srv, &agent.token, conv, || srv.ws_guest(&guest.token)).await;
        assert_eq!(got, (11..=50).collect::<Vec<i64>>());
    }
}

both_backends! {
    /// The same race for an agent that only watches the conversation through its
    /// `resume` (it is assigned to someone else, so nothing is pushed to it before):
    /// the watch and the replay meet without a gap or a repeat.
    async fn agent_resume_racing_live_traffic_is_gapless_and_duplicate_free(backend) {
        let srv = TestServer::start(backend).await;
        let lead = srv.agent("lead").await;
        let holder = srv.agent("agent").await;
        let watcher = srv.agent("agent").await;
        let guest = srv.guest().await;
        let conv = guest.conversation_id.as_str();
        let (status, body) = srv
            .post(&format!("/api/conversations/{conv}/assign"), Some(&lead.token), &json!({"agent_id": holder.id}))
            .await;
        assert_eq!(status, 200, "{body}");
        for i in 0..10 {
            let (status, _) = srv.post_message(&guest.token, conv, &format!("old-{i}"), "old").await;
            assert_eq!(status, 201);
        }

        let got = resume_while_posting(&srv, &holder.token, conv, || srv.ws_agent(&watcher.token)).await;
        assert_eq!(got, (11..=50).collect::<Vec<i64>>());
    }
}

both_backends! {
    /// `resume` from 0 replays the whole history, to agents and guests alike.
    async fn resume_from_zero_replays_the_whole_history(backend) {
        let srv = TestServer::start(backend).await;
        let agent = srv.agent("agent").await;
        let guest = srv.guest().await;
        let conv = guest.conversation_id.as_str();
        for i in 0..12 {
            let (token, who) = if i % 2 == 0 { (&guest.token, "g") } else { (&agent.token, "a") };
            let (status, _) = srv.post_message(token, conv, &format!("{who}-{i}"), &format!("line {i}")).await;
            assert_eq!(status, 201);
        }
        let history = srv.history(&agent.token, conv).await;

        let mut agent_ws = srv.ws_agent(&agent.token).await;
        let (replayed, resumed) = agent_ws.resume(cursor(conv, 0)).await;
        assert_eq!(seqs(&replayed), (1..=12).collect::<Vec<i64>>());
        let ids = |ms: &[Value]| ms.iter().map(|m| m["id"].clone()).collect::<Vec<_>>();
        assert_eq!(ids(&replayed), ids(&history));
        assert_eq!(resumed["cursors"], cursor(conv, 12));

        let (_guest_ws, replayed) = srv.ws_guest_resumed(&guest, 0).await;
        assert_eq!(ids(&replayed), ids(&history));
    }
}

both_backends! {
    /// A `resume` that claims more than exists (a stale or invented cursor) is
    /// clamped to the conversation's real end, so the next message still arrives.
    async fn a_resume_past_the_end_is_clamped_and_live_messages_still_arrive(backend) {
        let srv = TestServer::start(backend).await;
        let agent = srv.agent("agent").await;
        let guest = srv.guest().await;
        let conv = guest.conversation_id.as_str();
        let mut agent_ws = srv.ws_agent(&agent.token).await;
        agent_ws.send_many(conv, "before", 3).await;

        let mut guest_ws = srv.ws_guest(&guest.token).await;
        let (replayed, resumed) = guest_ws.resume(cursor(conv, 1000)).await;
        assert!(replayed.is_empty(), "nothing lies past the end: {replayed:?}");
        assert_eq!(resumed["cursors"][conv], 3);

        agent_ws.send_message(conv, "after-1", "still there?").await;
        let next = guest_ws.next_of_type("message").await;
        assert_eq!((next["seq"].as_i64(), next["body"].as_str()), (Some(4), Some("still there?")));
    }
}
