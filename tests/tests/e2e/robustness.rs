//! The hub under hostile or unlucky clients: every kind of bad frame gets a clear
//! `error` and the session carries on (except invalid UTF-8, which RFC 6455 says
//! must fail the connection: 1007); a client that stops reading is cut off with
//! 1013 (and recovers everything with `resume`) while the node keeps serving
//! everyone else; a client that goes silent is dropped by the heartbeat, while one
//! that answers pings stays connected.

// Test bodies run inside the `both_backends!` helpers, which clippy does not see as
// tests; a panic with a message is how a test reports a broken expectation.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::{json, Value};
use switchboard_e2e::{both_backends, seqs, RawFrame, RawWs, TestServer, Ws};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

/// The next frame, which must be an `error` with `code`; then a ping round trip
/// proving the session still answers. Returns the error.
async fn error_then_alive(ws: &mut Ws, code: &str) -> Value {
    let v = ws.next_json().await;
    assert_eq!(v["type"], "error", "expected an error frame, got {v}");
    assert_eq!(v["code"], code, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    let stray = ws.barrier().await;
    assert!(
        stray.is_empty(),
        "unexpected frames after the error: {stray:?}"
    );
    v
}

fn send_frame(conversation_id: &str, client_msg_id: &str, body: &str) -> Value {
    json!({"type": "send", "conversation_id": conversation_id, "client_msg_id": client_msg_id, "body": body})
}

both_backends! {
    /// Malformed JSON, non-objects, missing fields, unknown types, oversize, binary
    /// and non-UTF-8 frames, and unacceptable message bodies each get their own
    /// error code, and the same session keeps working after every one.
    async fn bad_frames_get_clear_errors_and_the_session_keeps_working(backend) {
        const MAX_FRAME: usize = 16 * 1024;
        let srv = TestServer::start_with(backend, |c| c.max_frame_bytes = MAX_FRAME).await;
        let agent = srv.agent("agent").await;
        let guest = srv.guest().await;
        let conv = guest.conversation_id.as_str();
        let (mut ws, _) = srv.ws_guest_resumed(&guest, 0).await;

        ws.send_text("{nope").await;
        error_then_alive(&mut ws, "bad_frame").await;
        ws.send_text("[1,2]").await;
        error_then_alive(&mut ws, "bad_frame").await;
        ws.send_text(r#""just a string""#).await;
        error_then_alive(&mut ws, "bad_frame").await;
        ws.send_text(r#"{"no_type": true}"#).await;
        error_then_alive(&mut ws, "bad_frame").await;

        ws.send_text(r#"{"type":"send","body":"x"}"#).await;
        let err = error_then_alive(&mut ws, "bad_frame").await;
        assert_eq!(err["ref"], "send");
        assert!(err["message"].as_str().is_some_and(|m| m.contains("client_msg_id")), "{err}");
        ws.send_text(r#"{"type":"read","conversation_id":"x","seq":"five"}"#).await;
        let err = error_then_alive(&mut ws, "bad_frame").await;
        assert_eq!(err["ref"], "read");

        ws.send_text(r#"{"type":"dance"}"#).await;
        let err = error_then_alive(&mut ws, "unknown_type").await;
        assert_eq!(err["ref"], "dance");

        // Over the protocol limit but readable: refused politely.
        let oversize = send_frame(conv, "big-1", &"x".repeat(MAX_FRAME + 100)).to_string();
        ws.send_text(&oversize).await;
        error_then_alive(&mut ws, "frame_too_large").await;

        ws.send_raw(Message::binary(b"\x00\x01binary".to_vec())).await;
        error_then_alive(&mut ws, "unsupported_frame").await;

        // (A text frame that is not UTF-8 has a test of its own below.)

        // Bodies: empty after trimming, and one character over 4096 (characters, not bytes).
        ws.send_json(&send_frame(conv, "empty-1", "   \n ")).await;
        let err = error_then_alive(&mut ws, "validation").await;
        assert_eq!(err["ref"], "empty-1");
        ws.send_json(&send_frame(conv, "long-1", &"é".repeat(4097))).await;
        let err = error_then_alive(&mut ws, "validation").await;
        assert_eq!(err["ref"], "long-1");
        ws.send_json(&send_frame(conv, &"k".repeat(65), "bad key")).await;
        error_then_alive(&mut ws, "validation").await;
        // 4096 characters is allowed.
        let ack = ws.send_message(conv, "long-2", &"é".repeat(4096)).await;
        assert_eq!(ack["seq"], 1, "nothing refused above may have been stored");

        // A conversation that does not exist (an agent may address any id).
        let mut agent_ws = srv.ws_agent(&agent.token).await;
        let missing = "01a1f000-0000-7000-8000-000000000000";
        agent_ws.send_json(&send_frame(missing, "nf-1", "hello?")).await;
        let err = agent_ws.next_of_type("error").await;
        assert_eq!(err["code"], "not_found", "{err}");
        assert_eq!(err["ref"], "nf-1");

        // After all that, both sessions still do real work.
        let ack = ws.send_message(conv, "ok-1", "still working").await;
        assert_eq!(ack["seq"], 2);
        let ack = agent_ws.send_message(conv, "ok-2", "me too").await;
        assert_eq!(ack["seq"], 3);
        let history = srv.history(&agent.token, conv).await;
        assert_eq!(seqs(&history), [1, 2, 3]);
    }
}

both_backends! {
    /// A text frame whose bytes are not UTF-8 fails the connection (RFC 6455 §8.1,
    /// close code 1007 per §7.4.1): an `error` saying why, then the close; the node
    /// keeps serving others, and the guest can reconnect. (Fragmented messages are
    /// covered in `hardening.rs`.)
    async fn a_text_frame_that_is_not_utf8_closes_the_session_with_1007(backend) {
        let srv = TestServer::start(backend).await;
        let guest = srv.guest().await;
        let other = srv.guest().await;
        let (mut bystander, _) = srv.ws_guest_resumed(&other, 0).await;
        let (mut ws, _) = srv.ws_guest_resumed(&guest, 0).await;
        // The library sends a raw frame as it is (masked, as clients must).
        let invalid = b"{\"type\":\"ping\",\"x\":\"\xff\xfe\"}".to_vec();
        ws.send_raw(Message::Frame(Frame::message(invalid, OpCode::Data(Data::Text), true))).await;
        let err = ws.next_json().await;
        assert_eq!(err["type"], "error", "{err}");
        assert_eq!(err["code"], "bad_frame", "{err}");
        let close = ws.expect_close().await.map(|f| u16::from(f.code));
        assert_eq!(close, Some(1007));
        let ack = bystander.send_message(&other.conversation_id, "ok-0", "unaffected").await;
        assert_eq!(ack["seq"], 1);
        let (mut ws, _) = srv.ws_guest_resumed(&guest, 0).await;
        let ack = ws.send_message(&guest.conversation_id, "ok-1", "still here").await;
        assert_eq!(ack["seq"], 1);
    }
}

both_backends! {
    /// An agent that stops reading is cut off with 1013 once its queue is full,
    /// without slowing anyone else down, and gets exactly the rest with `resume`.
    async fn a_slow_consumer_is_closed_with_1013_and_recovers_with_resume(backend) {
        // What has to fill up before the session stalls is mostly the server's
        // kernel send buffer, which on loopback autotunes to `tcp_wmem` max at once.
        // Measured (Linux, tcp_wmem max 4 MiB, reader's receive buffer 4 KiB): the
        // send buffer took all of 300 × 3 KB (985 KB in Send-Q, 1.38 MB accounted
        // of a 3.9 MB limit), so it holds about 2.8 MB of frames. Bodies are capped
        // at 4096 characters, not bytes: 4-byte characters make each frame ~16 KB,
        // and 300 of them (4.9 MB) overflow it with room to spare (the reader got
        // 171 before its close in that measurement).
        const COUNT: usize = 300;
        const CHARS: usize = 4090;
        let srv = TestServer::start_with(backend, |c| c.ws_outbound_queue = 8).await;
        // Both agents must receive the whole conversation: no automatic assignment.
        srv.manual_routing().await;
        let slow_agent = srv.agent("agent").await;
        let fast_agent = srv.agent("agent").await;
        let other_agent = srv.agent("agent").await;
        let guest = srv.guest().await;
        let conv = guest.conversation_id.clone();

        let mut slow = Ws::connect_slow_reader(&srv.ws_url("/ws/agent"), &slow_agent.token).await;
        let fast = srv.ws_agent(&fast_agent.token).await;
        let fast_conv = conv.clone();
        let fast_reader = tokio::spawn(async move {
            let mut fast = fast;
            fast.collect_messages(&fast_conv, COUNT).await
        });

        // `slow` is not read from here on.
        for i in 0..COUNT {
            let body = format!("{i:04} {}", "😀".repeat(CHARS));
            let (status, resp) = srv.post_message(&guest.token, &conv, &format!("big-{i}"), &body).await;
            assert_eq!(status, 201, "post {i}: {resp}");
        }

        // Everyone else is served normally.
        let (status, _) = srv.get("/healthz", None).await;
        assert_eq!(status, 200);
        let mut fresh = srv.ws_agent(&other_agent.token).await;
        fresh.barrier().await;
        let fast_seen = fast_reader.await.expect("fast reader");
        assert_eq!(seqs(&fast_seen), (1..=i64::try_from(COUNT).expect("small")).collect::<Vec<_>>());

        // The slow reader wakes up: what was written before the queue overflowed,
        // then the close.
        let mut got = Vec::new();
        let close = loop {
            match slow.next_json_or_close().await {
                Ok(v) if v["type"] == "message" => got.push(v),
                Ok(_) => {}
                Err(close) => break close,
            }
        };
        let code = close.map(|f| u16::from(f.code));
        assert_eq!(code, Some(1013), "slow consumer close code");
        assert!(got.len() < COUNT, "the slow reader was never cut off");
        let k = i64::try_from(got.len()).expect("small");
        assert_eq!(seqs(&got), (1..=k).collect::<Vec<_>>(), "what it got before the close is in order");

        let mut back = srv.ws_agent(&slow_agent.token).await;
        let mut cursors = serde_json::Map::new();
        cursors.insert(conv.clone(), json!(k));
        let (rest, resumed) = back.resume(Value::Object(cursors)).await;
        let total = i64::try_from(COUNT).expect("small");
        assert_eq!(seqs(&rest), ((k + 1)..=total).collect::<Vec<_>>());
        assert_eq!(resumed["cursors"][&conv], total);
    }
}

both_backends! {
    /// A client that authenticates and then answers nothing (not even pings) is
    /// disconnected with 1001 after `client_timeout`.
    async fn a_silent_client_is_dropped_by_the_heartbeat(backend) {
        let srv = TestServer::start_with(backend, |c| {
            c.heartbeat = std::time::Duration::from_millis(200);
            c.client_timeout = std::time::Duration::from_secs(1);
        })
        .await;
        let agent = srv.agent("agent").await;
        let mut raw = RawWs::connect(&srv.ws_url("/ws/agent")).await;
        raw.send_json(&json!({"type": "auth", "token": agent.token})).await;
        let hello = raw.next_frame().await.and_then(|f| f.json()).expect("hello frame");
        assert_eq!(hello["type"], "hello", "{hello}");
        assert_eq!(hello["heartbeat_ms"], 200);

        // Read (never answer) until the server hangs up.
        let mut pings = 0;
        let mut close = None;
        let ended = tokio::time::timeout(switchboard_e2e::PATIENCE, async {
            while let Some(frame) = raw.next_frame().await {
                match frame.opcode {
                    RawFrame::PING => pings += 1,
                    RawFrame::CLOSE => close = frame.close_code(),
                    _ => {}
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "the server never dropped a silent client");
        assert!(pings >= 1, "the server never pinged");
        assert_eq!(close, Some(1001), "heartbeat close code");
    }
}

both_backends! {
    /// A client that keeps answering the server's pings stays connected well past
    /// `client_timeout`.
    async fn a_client_that_answers_pings_stays_connected(backend) {
        // The timeout leaves a busy test machine 2 s to get a pong out; twelve pings
        // 250 ms apart span 3 s, well past it, counted on the server's clock.
        let srv = TestServer::start_with(backend, |c| {
            c.heartbeat = std::time::Duration::from_millis(250);
            c.client_timeout = std::time::Duration::from_secs(2);
        })
        .await;
        let agent = srv.agent("agent").await;
        let mut ws = srv.ws_agent(&agent.token).await;
        // The library answers each ping while we read.
        let mut pings = 0;
        while pings < 12 {
            match ws.next_message().await {
                Some(Message::Ping(_)) => pings += 1,
                Some(Message::Close(frame)) => panic!("closed while answering pings: {frame:?}"),
                None => panic!("connection ended while answering pings"),
                Some(_) => {}
            }
        }
        assert!(ws.barrier().await.is_empty());
    }
}
