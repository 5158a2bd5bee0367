//! The permission model as callers meet it (`docs/roles.md`): every `/api` route in
//! the hub's own route table (`switchboard::http::endpoints::all`) called by every
//! role, by a guest and by nobody, each answer compared with what the route's rule
//! says for that caller — so a route added to the table is walked here without
//! anyone remembering to. Also: the WebSocket frames a role may not send, marketing
//! receiving no customer messages, and `lead` accounts keeping their access as
//! managers.

// Test bodies run inside the `both_backends!` helpers, which clippy does not see as
// tests; a panic with a message is how a test reports a broken expectation.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::{json, Value};
use switchboard::access::Rule;
use switchboard::http::endpoints;
use switchboard::model::Role;
use switchboard_e2e::{both_backends, TestServer};

const UNKNOWN_ID: &str = "00000000-0000-4000-8000-000000000000";

/// Ids the table's path parameters are filled with. Real ids where a caller's
/// team or conversation decides the answer; an id that exists nowhere elsewhere, so
/// a call that passes its rule ends in the handler (404, 400, …) and changes nothing.
struct Ids {
    team: String,
    conversation: String,
    /// An agent no test caller is: `PATCH /agents/{id}` and team removal land here.
    bystander: String,
}

fn fill(path: &str, ids: &Ids) -> String {
    let area = path.split('/').nth(1).unwrap_or_default();
    let first = match area {
        "teams" => ids.team.as_str(),
        "conversations" => ids.conversation.as_str(),
        "agents" => ids.bystander.as_str(),
        _ => UNKNOWN_ID,
    };
    path.replacen("{id}", first, 1)
        .replace("{agent_id}", &ids.bystander)
        .replace("{code}", "NO-SUCH-CODE")
        .replace("{message_id}", UNKNOWN_ID)
}

async fn call(srv: &TestServer, method: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let url = format!("/api{path}");
    match method {
        "GET" => srv.get(&url, token).await,
        "POST" => srv.post(&url, token, &json!({})).await,
        "PUT" => srv.put(&url, token, &json!({})).await,
        "PATCH" => srv.patch(&url, token, &json!({})).await,
        "DELETE" => srv.delete(&url, token).await,
        other => panic!("the route table has a method this test does not know: {other}"),
    }
}

/// Whether an answer is the route rule's refusal (and not a handler's own 403,
/// such as "not your link").
fn refused_by_rule(status: u16, body: &Value) -> bool {
    let message = body["message"].as_str().unwrap_or_default();
    status == 403
        && (message.contains("does not allow")
            || message == "agents only"
            || message == "guests only")
}

both_backends! {
    /// Every route × every caller: an agent whose role lacks the rule's permission
    /// gets 403 naming it, one that holds it gets past the rule; a guest token gets
    /// 403 on agent routes; no token gets 401 everywhere but open routes.
    async fn every_route_answers_each_role_as_its_rule_says(backend) {
        let srv = TestServer::start(backend).await;
        let team = srv.default_team_id().await;
        let guest = srv.guest().await;
        let bystander = srv.agent("agent").await;
        let ids = Ids { team, conversation: guest.conversation_id.clone(), bystander: bystander.id };
        let mut callers = vec![(Some(Role::Admin), srv.admin_token().await)];
        for role in [Role::Manager, Role::Sales, Role::Agent, Role::Marketing] {
            callers.push((Some(role), srv.agent(role.as_str()).await.token));
        }
        callers.push((None, guest.token.clone()));

        let table = endpoints::all();
        assert!(table.len() >= 80, "the route table looks truncated: {}", table.len());
        let mut wrong = Vec::new();
        for endpoint in &table {
            let path = fill(endpoint.path, &ids);
            let method = endpoint.method.as_str();
            for (role, token) in &callers {
                let (status, body) = call(&srv, method, &path, Some(token)).await;
                let expected = endpoint.rule.refusal(*role);
                let ok = match expected {
                    Some(403) => refused_by_rule(status, &body),
                    _ => status != 401 && !refused_by_rule(status, &body),
                };
                if !ok {
                    wrong.push(format!("{method} {path} as {role:?}: {status} {body} (rule {:?})", endpoint.rule));
                }
            }
            let (status, body) = call(&srv, method, &path, None).await;
            let ok = if endpoint.rule == Rule::Open { status != 401 } else { status == 401 };
            if !ok {
                wrong.push(format!("{method} {path} without a token: {status} {body}"));
            }
        }
        assert!(wrong.is_empty(), "{} answers disagree with the route table:\n{}", wrong.len(), wrong.join("\n"));
    }
}

both_backends! {
    /// Marketing reads no customer conversation: no live events for its team's
    /// conversations, no resume, no sending; an agent of the same team gets them.
    async fn marketing_gets_no_customer_messages_and_cannot_write(backend) {
        let srv = TestServer::start(backend).await;
        let marketing = srv.agent("marketing").await;
        let agent = srv.agent("agent").await;
        let mut m_ws = srv.ws_agent(&marketing.token).await;
        let mut a_ws = srv.ws_agent(&agent.token).await;
        let guest = srv.guest().await;
        let (status, _) = srv.post_message(&guest.token, &guest.conversation_id, "m-1", "a secret itinerary").await;
        assert!(status == 200 || status == 201);
        let seen = a_ws.next_of_type("message").await;
        assert_eq!(seen["body"], "a secret itinerary");

        m_ws.send_json(&json!({"type": "resume", "cursors": {guest.conversation_id.clone(): 0}})).await;
        let error = m_ws.next_of_type("error").await;
        assert_eq!(error["code"], "forbidden", "{error}");
        m_ws.send_json(&json!({"type": "send", "conversation_id": guest.conversation_id, "client_msg_id": "mk-1", "body": "hello"})).await;
        let error = m_ws.next_of_type("error").await;
        assert_eq!(error["code"], "forbidden", "{error}");
        assert_eq!(error["ref"], "mk-1", "{error}");
        // Everything marketing's socket received up to here: no customer message.
        for frame in m_ws.barrier().await {
            assert_ne!(frame["type"], "message", "marketing received {frame}");
        }
        let history = srv.history(&agent.token, &guest.conversation_id).await;
        assert_eq!(history.len(), 1, "the refused send stored nothing: {history:?}");
    }
}

both_backends! {
    /// `lead`, the old name of the team lead's role, is still accepted and becomes
    /// `manager` with the team lead's powers; `GET /api/auth/me` lists the role's
    /// permissions and `GET /api/roles` every role's.
    async fn lead_becomes_manager_and_permissions_are_listed(backend) {
        let srv = TestServer::start(backend).await;
        let lead = srv.agent("lead").await;
        let (status, me) = srv.get("/api/auth/me", Some(&lead.token)).await;
        assert_eq!(status, 200);
        assert_eq!(me["agent"]["role"], "manager");
        let perms: Vec<&str> = me["agent"]["permissions"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
        assert!(perms.contains(&"team.supervise") && perms.contains(&"settings.team"), "{perms:?}");
        assert!(!perms.contains(&"accounts.manage"), "{perms:?}");
        let (status, _) = srv.get("/api/team/workload", Some(&lead.token)).await;
        assert_eq!(status, 200, "a manager sees the team's workload");

        let (status, roles) = srv.get("/api/roles", Some(&lead.token)).await;
        assert_eq!(status, 200);
        let names: Vec<&str> = roles["roles"].as_array().unwrap().iter().map(|r| r["role"].as_str().unwrap()).collect();
        assert_eq!(names, ["admin", "manager", "sales", "agent", "marketing"]);
        let (status, body) = srv.post("/api/agents", Some(&srv.admin_token().await), &json!({"email": "x@test.local", "name": "X", "password": "long-enough-1", "role": "root"})).await;
        assert_eq!(status, 400);
        assert!(body["message"].as_str().unwrap().contains("admin, manager, sales, agent or marketing"), "{body}");
    }
}

both_backends! {
    /// Work goes only to people who can see it: a lead's owner and a task's
    /// assignee must be active members of the lead's team, on every route that sets
    /// them; a member of the team is accepted.
    async fn lead_owners_and_task_assignees_must_be_in_the_leads_team(backend) {
        let srv = TestServer::start(backend).await;
        let other_team = srv.create_team("Elsewhere", "elsewhere").await;
        let outsider = srv.agent_in("agent", Some(&[&other_team])).await;
        let member = srv.agent("agent").await;
        let manager = srv.agent("manager").await;
        let refused = |status: u16, body: &Value| status == 400 && body["message"].as_str().unwrap_or_default().contains("not an active member");

        let (status, body) = srv.post("/api/leads", Some(&manager.token), &json!({"name": "Ana", "email": "ana@fixture.test", "owner_id": outsider.id})).await;
        assert!(refused(status, &body), "create with an outside owner: {status} {body}");
        let (status, body) = srv.post("/api/leads", Some(&manager.token), &json!({"name": "Ana", "email": "ana@fixture.test", "owner_id": member.id})).await;
        assert_eq!(status, 201, "{body}");
        let lead = body["lead"]["id"].as_str().unwrap().to_string();

        let (status, body) = srv.patch(&format!("/api/leads/{lead}"), Some(&manager.token), &json!({"owner_id": outsider.id})).await;
        assert!(refused(status, &body), "owner from another team: {status} {body}");
        let (status, body) = srv.post(&format!("/api/leads/{lead}/tasks"), Some(&manager.token), &json!({"title": "Call back", "assignee_id": outsider.id})).await;
        assert!(refused(status, &body), "task for another team: {status} {body}");
        let (status, task) = srv.post(&format!("/api/leads/{lead}/tasks"), Some(&manager.token), &json!({"title": "Call back", "assignee_id": member.id})).await;
        assert_eq!(status, 201, "{task}");
        let task_id = task["id"].as_str().unwrap();
        let (status, body) = srv.patch(&format!("/api/tasks/{task_id}"), Some(&manager.token), &json!({"assignee_id": outsider.id})).await;
        assert!(refused(status, &body), "reassigned to another team: {status} {body}");

        // A deactivated member is no owner either.
        let admin = srv.admin_token().await;
        let (status, _) = srv.patch(&format!("/api/agents/{}", member.id), Some(&admin), &json!({"active": false})).await;
        assert_eq!(status, 200);
        let (status, body) = srv.patch(&format!("/api/leads/{lead}"), Some(&manager.token), &json!({"owner_id": member.id})).await;
        assert!(refused(status, &body), "deactivated owner: {status} {body}");
        let (_, view) = srv.get(&format!("/api/leads/{lead}"), Some(&manager.token)).await;
        assert_eq!(view["lead"]["owner_id"].as_str().or(view["owner_id"].as_str()), Some(member.id.as_str()), "refusals changed nothing: {view}");
    }
}
