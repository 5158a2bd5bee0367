//! Account lifecycle as an admin and an agent meet it: deactivating an agent, changing
//! its role, taking it out of a team or changing its password ends its sessions at
//! once — the open WebSocket closes with 1008 and stops receiving customer messages,
//! and every token issued before is refused — while the agent's own password change
//! keeps the session it was made from. The last admin cannot lock everyone out, and
//! only admins manage accounts. (Two nodes: `server/tests/multinode.rs`.)

// Test bodies run inside the `both_backends!` helpers, which clippy does not see as
// tests; a panic with a message is how a test reports a broken expectation.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::{json, Value};
use switchboard_e2e::{both_backends, TestAgent, TestServer, Ws, ADMIN_EMAIL, ADMIN_PASSWORD};

/// A guest writes; the agent's socket gets that message live (an unassigned
/// conversation goes to the whole team).
async fn agent_sees_a_guest_message(srv: &TestServer, ws: &mut Ws, text: &str) {
    let guest = srv.guest().await;
    let (status, body) = srv
        .post_message(
            &guest.token,
            &guest.conversation_id,
            &text.replace(' ', "-"),
            text,
        )
        .await;
    assert!(status == 200 || status == 201, "{status} {body}");
    loop {
        let m = ws.next_of_type("message").await;
        if m["body"] == text {
            break;
        }
    }
}

async fn close_code(ws: &mut Ws) -> Option<u16> {
    ws.expect_close().await.map(|f| u16::from(f.code))
}

/// A socket opened with `token` is refused: an error frame, then close 1008.
async fn socket_refused(srv: &TestServer, token: &str) {
    let mut ws = Ws::connect(&srv.ws_url("/ws/agent")).await;
    ws.send_json(&json!({"type": "auth", "token": token})).await;
    assert_eq!(
        close_code(&mut ws).await,
        Some(1008),
        "old token must not connect"
    );
}

async fn me_status(srv: &TestServer, token: &str) -> u16 {
    srv.get("/api/auth/me", Some(token)).await.0
}

async fn login_status(srv: &TestServer, agent: &TestAgent, password: &str) -> (u16, Value) {
    srv.post(
        "/api/auth/login",
        None,
        &json!({"email": agent.email, "password": password}),
    )
    .await
}

both_backends! {
    async fn deactivation_closes_the_socket_and_refuses_every_token(backend) {
        let srv = TestServer::start(backend).await;
        let admin = srv.admin_token().await;
        let agent = srv.agent("agent").await;
        let second_token = srv.login(&agent.email, &agent.password).await;
        let mut ws = srv.ws_agent(&agent.token).await;
        agent_sees_a_guest_message(&srv, &mut ws, "before deactivation").await;

        let (status, body) = srv
            .patch(&format!("/api/agents/{}", agent.id), Some(&admin), &json!({"active": false}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["agent"]["active"], false);

        assert_eq!(close_code(&mut ws).await, Some(1008), "the open socket closes");
        for token in [&agent.token, &second_token] {
            assert_eq!(me_status(&srv, token).await, 401);
        }
        socket_refused(&srv, &agent.token).await;
        let (status, _) = login_status(&srv, &agent, &agent.password).await;
        assert_eq!(status, 401, "a deactivated agent cannot log in");
        let (_, list) = srv.get("/api/agents", Some(&admin)).await;
        let row = list["agents"].as_array().unwrap().iter().find(|a| a["id"] == agent.id.as_str()).cloned().unwrap();
        assert_eq!(row["active"], false, "admins still see the account: {row}");

        let (status, body) = srv
            .patch(&format!("/api/agents/{}", agent.id), Some(&admin), &json!({"active": true}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(me_status(&srv, &agent.token).await, 401, "reactivation does not revive old tokens");
        let fresh = srv.login(&agent.email, &agent.password).await;
        let mut ws = srv.ws_agent(&fresh).await;
        agent_sees_a_guest_message(&srv, &mut ws, "after reactivation").await;
    }
}

both_backends! {
    async fn a_password_change_ends_every_other_session(backend) {
        let srv = TestServer::start(backend).await;
        let agent = srv.agent("agent").await;
        let laptop = srv.login(&agent.email, &agent.password).await;
        let mut laptop_ws = srv.ws_agent(&laptop).await;

        let (status, body) = srv
            .post("/api/auth/password", Some(&agent.token), &json!({"current_password": "not it at all", "new_password": "a-new-password-2"}))
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(me_status(&srv, &laptop).await, 200, "a refused change revokes nothing");

        let (status, body) = srv
            .post("/api/auth/password", Some(&agent.token), &json!({"current_password": agent.password, "new_password": "short"}))
            .await;
        assert_eq!(status, 400, "{body}");

        let (status, body) = srv
            .post("/api/auth/password", Some(&agent.token), &json!({"current_password": agent.password, "new_password": "a-new-password-2"}))
            .await;
        assert_eq!(status, 200, "{body}");
        let fresh = body["token"].as_str().unwrap().to_string();
        assert_eq!(close_code(&mut laptop_ws).await, Some(1008), "the other device is signed out");
        assert_eq!(me_status(&srv, &laptop).await, 401);
        assert_eq!(me_status(&srv, &agent.token).await, 401, "the token the change was made with is replaced");
        assert_eq!(me_status(&srv, &fresh).await, 200, "the answer's token keeps this device in");
        let mut ws = srv.ws_agent(&fresh).await;
        agent_sees_a_guest_message(&srv, &mut ws, "after the change").await;
        assert_eq!(login_status(&srv, &agent, &agent.password).await.0, 401);
        assert_eq!(login_status(&srv, &agent, "a-new-password-2").await.0, 200);
    }
}

both_backends! {
    async fn role_change_team_removal_and_admin_reset_each_revoke(backend) {
        let srv = TestServer::start(backend).await;
        let admin = srv.admin_token().await;
        let team = srv.default_team_id().await;
        let agent = srv.agent("agent").await;

        let (status, body) = srv
            .patch(&format!("/api/agents/{}", agent.id), Some(&admin), &json!({"name": "Renamed Agent"}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["agent"]["name"], "Renamed Agent");
        assert_eq!(me_status(&srv, &agent.token).await, 200, "a new name revokes nothing");

        let mut ws = srv.ws_agent(&agent.token).await;
        let (status, body) = srv
            .patch(&format!("/api/agents/{}", agent.id), Some(&admin), &json!({"role": "manager"}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["agent"]["role"], "manager");
        assert_eq!(close_code(&mut ws).await, Some(1008));
        assert_eq!(me_status(&srv, &agent.token).await, 401);

        let token = srv.login(&agent.email, &agent.password).await;
        let mut ws = srv.ws_agent(&token).await;
        let (status, body) = srv
            .delete(&format!("/api/teams/{team}/members/{}", agent.id), Some(&admin))
            .await;
        assert_eq!(status, 204, "{body}");
        assert_eq!(close_code(&mut ws).await, Some(1008));
        assert_eq!(me_status(&srv, &token).await, 401);
        let (status, _) = srv
            .delete(&format!("/api/teams/{team}/members/{}", agent.id), Some(&admin))
            .await;
        assert_eq!(status, 404, "not a member any more");

        let token = srv.login(&agent.email, &agent.password).await;
        let (status, body) = srv
            .post(&format!("/api/agents/{}/password", agent.id), Some(&admin), &json!({"password": "reset-by-admin-3"}))
            .await;
        assert_eq!(status, 204, "{body}");
        assert_eq!(me_status(&srv, &token).await, 401);
        assert_eq!(login_status(&srv, &agent, &agent.password).await.0, 401);
        assert_eq!(login_status(&srv, &agent, "reset-by-admin-3").await.0, 200);
    }
}

both_backends! {
    async fn only_admins_manage_accounts_and_the_last_admin_stays(backend) {
        let srv = TestServer::start(backend).await;
        let admin = srv.admin_token().await;
        let (_, me) = srv.get("/api/auth/me", Some(&admin)).await;
        let admin_id = me["agent"]["id"].as_str().unwrap().to_string();
        let agent = srv.agent("agent").await;
        let lead = srv.agent("lead").await;

        for token in [&agent.token, &lead.token] {
            let (status, _) = srv
                .patch(&format!("/api/agents/{}", agent.id), Some(token), &json!({"active": false}))
                .await;
            assert_eq!(status, 403);
            let (status, _) = srv
                .post(&format!("/api/agents/{}/password", lead.id), Some(token), &json!({"password": "taken-over-1"}))
                .await;
            assert_eq!(status, 403);
        }
        assert_eq!(me_status(&srv, &agent.token).await, 200);

        for change in [json!({"active": false}), json!({"role": "manager"})] {
            let (status, body) = srv
                .patch(&format!("/api/agents/{admin_id}"), Some(&admin), &change)
                .await;
            assert_eq!(status, 409, "the last admin must stay: {body}");
        }
        let (status, body) = srv
            .patch(&format!("/api/agents/{}", agent.id), Some(&admin), &json!({"role": "root"}))
            .await;
        assert_eq!(status, 400, "{body}");
        let (status, _) = srv
            .patch(&format!("/api/agents/{}", agent.id), Some(&admin), &json!({"email": lead.email}))
            .await;
        assert_eq!(status, 409, "emails stay unique");

        // With a second admin, the first may step down.
        let (status, _) = srv
            .patch(&format!("/api/agents/{}", lead.id), Some(&admin), &json!({"role": "admin"}))
            .await;
        assert_eq!(status, 200);
        let (status, body) = srv
            .patch(&format!("/api/agents/{admin_id}"), Some(&admin), &json!({"role": "manager"}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(me_status(&srv, &admin).await, 401, "stepping down signs out");
        srv.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    }
}
