//! Smoke test: the harness starts a server and a guest reaches an agent.

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
