//! The HTTP API's contract: every error has the documented status and exactly the
//! body `{"error","message"}` (wrong credentials, malformed or oversize bodies,
//! unknown routes, missing roles, duplicates, rate limits), and message history
//! pages correctly backwards (`before_seq`) and forwards (`after_seq`).

// Test bodies run inside the `both_backends!` helpers, which clippy does not see as
// tests; a panic with a message is how a test reports a broken expectation.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::{json, Value};
use switchboard_e2e::{assert_error_body, both_backends, seqs, TestServer, ADMIN_EMAIL};

both_backends! {
    /// Each kind of bad request gets its documented status and error code.
    async fn errors_have_the_documented_status_and_shape(backend) {
        let srv = TestServer::start_with(backend, |c| c.max_body_bytes = 4096).await;
        let agent = srv.agent("agent").await;
        let admin = srv.admin_token().await;
        let guest = srv.guest().await;
        let conv = guest.conversation_id.as_str();
        let messages_path = format!("/api/conversations/{conv}/messages");

        // Wrong password and unknown email: one and the same answer.
        let (status, wrong_password) = srv
            .post("/api/auth/login", None, &json!({"email": agent.email, "password": "not-the-password"}))
            .await;
        assert_eq!(status, 401, "{wrong_password}");
        assert_error_body(&wrong_password, "invalid_credentials");
        let (status, unknown) = srv
            .post("/api/auth/login", None, &json!({"email": "nobody@test.local", "password": "whatever-123"}))
            .await;
        assert_eq!(status, 401, "{unknown}");
        assert_eq!(unknown, wrong_password, "the answer must not reveal which emails exist");

        // Malformed JSON, and well-formed JSON of the wrong shape.
        let (status, body) = srv.post_raw("/api/auth/login", None, b"{nope".to_vec()).await;
        assert_eq!(status, 400, "{body}");
        assert_error_body(&body, "bad_request");
        let (status, body) = srv.post_raw(&messages_path, Some(&agent.token), br#"{"body": 5}"#.to_vec()).await;
        assert_eq!(status, 400, "{body}");
        assert_error_body(&body, "bad_request");

        // Over max_body_bytes.
        let big = json!({"body": "x".repeat(5000), "client_msg_id": "big-1"});
        let (status, body) = srv.post(&messages_path, Some(&agent.token), &big).await;
        assert_eq!(status, 413, "{body}");
        assert_error_body(&body, "payload_too_large");

        // Well-formed but unacceptable.
        let (status, body) = srv.post_message(&agent.token, conv, "empty-1", "   ").await;
        assert_eq!(status, 400, "{body}");
        assert_error_body(&body, "validation");

        // Unknown routes and ids.
        for path in ["/api/nope", "/nope/at/all"] {
            let (status, body) = srv.get(path, Some(&agent.token)).await;
            assert_eq!(status, 404, "GET {path}: {body}");
            assert_error_body(&body, "not_found");
        }
        let (status, body) = srv.post("/api/nope", Some(&agent.token), &json!({})).await;
        assert_eq!(status, 404, "{body}");
        assert_error_body(&body, "not_found");
        let (status, body) = srv.get("/api/conversations/no-such-conversation", Some(&agent.token)).await;
        assert_eq!(status, 404, "{body}");
        assert_error_body(&body, "not_found");

        // A plain GET on a WebSocket endpoint is a client mistake, answered in kind.
        for path in ["/ws/agent", "/ws/guest"] {
            let (status, body) = srv.get(path, None).await;
            assert_eq!(status, 400, "GET {path}: {body}");
            assert_error_body(&body, "bad_request");
        }

        // Missing and forged tokens.
        let (status, body) = srv.get("/api/conversations", None).await;
        assert_eq!(status, 401, "{body}");
        assert_error_body(&body, "unauthorized");
        let (status, body) = srv.get("/api/conversations", Some("forged.token.here")).await;
        assert_eq!(status, 401, "{body}");
        assert_error_body(&body, "unauthorized");

        // Roles: only admins add agents.
        let new_agent = json!({"email": "new@test.local", "name": "New", "password": "password-123"});
        let (status, body) = srv.post("/api/agents", Some(&agent.token), &new_agent).await;
        assert_eq!(status, 403, "{body}");
        assert_error_body(&body, "forbidden");
        let (status, body) = srv.post("/api/agents", Some(&admin), &new_agent).await;
        assert_eq!(status, 201, "{body}");
        // The same email again (in any case) is a conflict.
        let mut again = new_agent.clone();
        again["email"] = json!("NEW@test.local");
        let (status, body) = srv.post("/api/agents", Some(&admin), &again).await;
        assert_eq!(status, 409, "{body}");
        assert_error_body(&body, "conflict");
        let (status, body) = srv.post("/api/agents", Some(&admin), &json!({"email": "x@test.local", "name": "X", "password": "short"})).await;
        assert_eq!(status, 400, "{body}");
        assert_error_body(&body, "validation");
    }
}

both_backends! {
    /// Login attempts from one address are limited: with 3 per minute allowed, four
    /// simultaneous attempts get three answers and one 429, and so does the right
    /// password right after.
    async fn login_is_rate_limited(backend) {
        let srv = TestServer::start_with(backend, |c| c.rate_login_per_min = 3).await;
        let srv = &srv;
        let attempt = |password: &'static str| async move {
            srv.post("/api/auth/login", None, &json!({"email": ADMIN_EMAIL, "password": password}))
                .await
        };
        // All four reach the limiter before any password is checked, so a slow
        // password hash cannot let the quota refill in between.
        let results = futures_util::future::join_all((0..4).map(|_| attempt("wrong-password-1"))).await;
        let statuses: Vec<u16> = results.iter().map(|(s, _)| *s).collect();
        assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 3, "{results:?}");
        let limited: Vec<&Value> = results.iter().filter(|(s, _)| *s == 429).map(|(_, b)| b).collect();
        assert_eq!(limited.len(), 1, "{results:?}");
        assert_error_body(limited[0], "rate_limited");

        let (status, body) = attempt(switchboard_e2e::ADMIN_PASSWORD).await;
        assert_eq!(status, 429, "the limit must hold for correct passwords too: {body}");
        assert_error_body(&body, "rate_limited");
    }
}

/// GET a history page; returns (seqs, has_more).
async fn page(srv: &TestServer, token: &str, conv: &str, query: &str) -> (Vec<i64>, bool) {
    let (status, body) = srv
        .get(
            &format!("/api/conversations/{conv}/messages{query}"),
            Some(token),
        )
        .await;
    assert_eq!(status, 200, "{query}: {body}");
    let messages = body["messages"].as_array().expect("messages").clone();
    (
        seqs(&messages),
        body["has_more"].as_bool().expect("has_more"),
    )
}

both_backends! {
    /// 120 messages, paged: the latest page, `before_seq` walking back to the start,
    /// `after_seq` walking forward to the end; contradictory or out-of-range
    /// parameters are refused.
    async fn history_pages_backwards_and_forwards(backend) {
        let srv = TestServer::start(backend).await;
        let agent = srv.agent("agent").await;
        let guest = srv.guest().await;
        let conv = guest.conversation_id.as_str();
        let mut ws = srv.ws_agent(&agent.token).await;
        ws.send_many(conv, "m", 120).await;
        let range = |a: i64, b: i64| (a..=b).collect::<Vec<i64>>();
        let t = agent.token.as_str();

        assert_eq!(page(&srv, t, conv, "?limit=50").await, (range(71, 120), true));
        assert_eq!(page(&srv, t, conv, "").await, (range(71, 120), true), "default limit is 50");
        assert_eq!(page(&srv, t, conv, "?before_seq=71&limit=50").await, (range(21, 70), true));
        assert_eq!(page(&srv, t, conv, "?before_seq=21&limit=50").await, (range(1, 20), false));

        assert_eq!(page(&srv, t, conv, "?after_seq=0&limit=50").await, (range(1, 50), true));
        assert_eq!(page(&srv, t, conv, "?after_seq=50&limit=50").await, (range(51, 100), true));
        assert_eq!(page(&srv, t, conv, "?after_seq=100&limit=50").await, (range(101, 120), false));
        assert_eq!(page(&srv, t, conv, "?after_seq=120").await, (vec![], false));
        // Exactly one page left is not "more".
        assert_eq!(page(&srv, t, conv, "?after_seq=70&limit=50").await, (range(71, 120), false));
        // The guest reads its own history the same way.
        assert_eq!(page(&srv, &guest.token, conv, "?after_seq=115").await, (range(116, 120), false));

        for query in ["?after_seq=10&before_seq=20", "?limit=0", "?limit=201", "?after_seq=-1", "?before_seq=0"] {
            let (status, body) = srv.get(&format!("/api/conversations/{conv}/messages{query}"), Some(t)).await;
            assert_eq!(status, 400, "{query}: {body}");
            assert!(body["error"] == "validation" || body["error"] == "bad_request", "{query}: {body}");
            assert_error_body(&body, body["error"].as_str().expect("code"));
        }
    }
}
