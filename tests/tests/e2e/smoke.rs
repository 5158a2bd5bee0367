//! Smoke test: the harness starts a server and a guest reaches an agent.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::json;
use switchboard_e2e::{both_backends, TestServer};

both_backends! {
    async fn guest_message_reaches_agent(backend) {
        let srv = TestServer::start(backend).await;
        let agent = srv.agent("agent").await;
        let guest = srv.guest().await;
        let mut agent_ws = srv.ws_agent(&agent.token).await;
        let mut guest_ws = srv.ws_guest(&guest.token).await;
        let ack = guest_ws.send_message(&guest.conversation_id, "m-1", "hello there").await;
        assert_eq!(ack["seq"], 1);
        let got = agent_ws.next_of_type("message").await;
        assert_eq!(got["body"], "hello there");
        assert_eq!(got["sender"]["kind"], "guest");
        assert_eq!(got["seq"], 1);
        let reply = agent_ws.send_message(&guest.conversation_id, "r-1", "hi, how can I help?").await;
        assert_eq!(reply["seq"], 2);
        let mine = guest_ws.next_of_type("message").await;
        // The guest first sees its own message (seq 1), then the reply.
        let reply_frame = if mine["seq"] == 1 { guest_ws.next_of_type("message").await } else { mine };
        assert_eq!(reply_frame["body"], "hi, how can I help?");
        assert_eq!(reply_frame["sender"]["name"], json!(agent.name));
    }
}

/// The value of an unlabelled sample in an OpenMetrics text, if present.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

both_backends! {
    /// `GET /metrics` is what an operator's Prometheus scrapes: committed messages,
    /// the writer's batches, sessions, the pipeline and outbox backlogs, in the
    /// OpenMetrics text format.
    async fn metrics_count_what_the_hub_did(backend) {
        let srv = TestServer::start(backend).await;
        let guest = srv.guest().await;
        let mut guest_ws = srv.ws_guest(&guest.token).await;
        let ack = guest_ws.send_message(&guest.conversation_id, "m-1", "hello there").await;
        assert_eq!(ack["seq"], 1);
        let res = srv.http.get(srv.url("/metrics")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let kind = res.headers()["content-type"].to_str().unwrap().to_string();
        assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
        let text = res.text().await.unwrap();
        assert!(text.ends_with("# EOF\n"), "{text}");
        // Counters are per process and tests share one: at least this test's message.
        assert!(sample(&text, "switchboard_messages_committed_total").unwrap() >= 1.0, "{text}");
        assert!(sample(&text, "switchboard_writer_batch_size_count").unwrap() >= 1.0, "{text}");
        assert!(sample(&text, "switchboard_sessions").unwrap() >= 1.0, "{text}");
        assert_eq!(sample(&text, "switchboard_outbox_pending"), Some(0.0), "{text}");
        for gauge in ["switchboard_pipeline_backlog", "switchboard_routing_queue", "switchboard_conversations_active"] {
            assert!(sample(&text, gauge).is_some(), "{gauge} missing: {text}");
        }
    }
}
