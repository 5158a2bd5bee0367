//! Lead routing through the real server: round-robin fairness, skipping away and
//! full agents, first-to-claim polls with exactly one winner, offer timeouts and
//! escalation, the queue, capacity under concurrency, presence across a reload,
//! requeue of an offline agent's work, hand-back, transfer, the audit and the team
//! lead's workload.
//!
//! Waiting is done by polling the real API or reading real sockets until the
//! expected state appears (bounded by the harness's patience); nothing here sleeps
//! a fixed time and asserts afterwards.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;

use serde_json::{json, Value};
use switchboard_e2e::{both_backends, eventually, TestAgent, TestGuest, TestServer, Ws};

/// The workload of one team as the admin sees it.
async fn workload(srv: &TestServer, admin: &str, team: &str) -> Value {
    let (status, body) = srv
        .get(&format!("/api/team/workload?team_id={team}"), Some(admin))
        .await;
    assert_eq!(status, 200, "{body}");
    body["teams"][0].clone()
}

/// Waits until every agent in `ids` shows `presence` in the team's workload.
async fn wait_presence(srv: &TestServer, admin: &str, team: &str, ids: &[&str], presence: &str) {
    eventually(&format!("{ids:?} to be {presence}"), || async {
        let w = workload(srv, admin, team).await;
        let all = ids.iter().all(|id| {
            w["agents"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|a| a["agent_id"] == *id && a["presence"] == presence)
        });
        all.then_some(())
    })
    .await;
}

/// Reads and discards a socket's frames in the background so it stays healthy.
fn keep_reading(mut ws: Ws) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move { while ws.next_message().await.is_some() {} })
}

async fn conversation(srv: &TestServer, token: &str, id: &str) -> Value {
    let (status, body) = srv
        .get(&format!("/api/conversations/{id}"), Some(token))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Waits until the conversation has an assignee; returns it.
async fn wait_assignee(srv: &TestServer, token: &str, id: &str) -> String {
    eventually("an assignee", || async {
        conversation(srv, token, id).await["assignee_id"]
            .as_str()
            .map(str::to_string)
    })
    .await
}

/// A new widget lead that has written its first message.
async fn lead(srv: &TestServer, n: usize) -> TestGuest {
    let guest = srv.guest().await;
    let (status, body) = srv
        .post_message(
            &guest.token,
            &guest.conversation_id,
            &format!("hello-{n}"),
            "Hi, I need a quote",
        )
        .await;
    assert_eq!(status, 201, "{body}");
    guest
}

async fn online_agent(srv: &TestServer, role: &str, teams: Option<&[&str]>) -> (TestAgent, Ws) {
    let agent = srv.agent_in(role, teams).await;
    let ws = srv.ws_agent(&agent.token).await;
    (agent, ws)
}

async fn set_capacity(srv: &TestServer, admin: &str, agent: &str, capacity: Value) {
    let (status, body) = srv
        .put(
            &format!("/api/agents/{agent}/capacity"),
            Some(admin),
            &json!({"capacity": capacity}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn audit(srv: &TestServer, token: &str, id: &str) -> Vec<Value> {
    let (status, body) = srv
        .get(&format!("/api/conversations/{id}/routing"), Some(token))
        .await;
    assert_eq!(status, 200, "{body}");
    body["events"].as_array().expect("events").clone()
}

both_backends! {
    /// 300 leads over 3 online agents in round-robin: 100 each, none left waiting.
    async fn round_robin_is_fair_over_300_leads(backend) {
        let srv = TestServer::start(backend).await;
        let admin = srv.admin_token().await;
        let team = srv.default_team_id().await;
        srv.set_routing(&team, json!({"routing_mode": "round_robin", "default_capacity": 1000})).await;
        let mut agents = Vec::new();
        let mut readers = Vec::new();
        for _ in 0..3 {
            let (a, ws) = online_agent(&srv, "agent", None).await;
            readers.push(keep_reading(ws));
            agents.push(a);
        }
        let ids: Vec<&str> = agents.iter().map(|a| a.id.as_str()).collect();
        wait_presence(&srv, &admin, &team, &ids, "online").await;

        for n in 0..300 {
            lead(&srv, n).await;
        }
        let w = eventually("300 assignments", || async {
            let w = workload(&srv, &admin, &team).await;
            let total: i64 = w["agents"].as_array().unwrap().iter().map(|a| a["open"].as_i64().unwrap()).sum();
            (total == 300).then_some(w)
        })
        .await;
        let per_agent: HashMap<String, i64> = w["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["agent_id"].as_str().unwrap().to_string(), a["open"].as_i64().unwrap()))
            .collect();
        for id in &ids {
            assert_eq!(per_agent[*id], 100, "unfair split: {per_agent:?}");
        }
        assert_eq!(w["waiting"], 0);
        for r in readers {
            r.abort();
        }
    }
}

both_backends! {
    /// An away agent and an agent at capacity are skipped, and the audit says why.
    async fn away_and_full_agents_are_skipped(backend) {
        let srv = TestServer::start(backend).await;
        let admin = srv.admin_token().await;
        let team = srv.default_team_id().await;
        let (away, mut away_ws) = online_agent(&srv, "agent", None).await;
        let (full, full_ws) = online_agent(&srv, "agent", None).await;
        let (free, free_ws) = online_agent(&srv, "agent", None).await;
        away_ws.send_json(&json!({"type": "presence", "status": "away"})).await;
        set_capacity(&srv, &admin, &full.id, json!(1)).await;
        wait_presence(&srv, &admin, &team, &[&away.id], "away").await;
        wait_presence(&srv, &admin, &team, &[&full.id, &free.id], "online").await;
        let readers = vec![keep_reading(away_ws), keep_reading(full_ws), keep_reading(free_ws)];

        // Fill the full agent by hand.
        let first = srv.guest().await;
        let (status, body) = srv
            .post(&format!("/api/conversations/{}/assign", first.conversation_id), Some(&admin), &json!({"agent_id": full.id}))
            .await;
        assert_eq!(status, 200, "{body}");

        for n in 0..5 {
            let g = lead(&srv, n).await;
            let assignee = wait_assignee(&srv, &admin, &g.conversation_id).await;
            assert_eq!(assignee, free.id, "lead {n} went to the wrong agent");
            let events = audit(&srv, &admin, &g.conversation_id).await;
            let decision = events.iter().find(|e| e["kind"] == "assigned").expect("an assignment event");
            let reason = |id: &str| {
                decision["candidates"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| c["agent_id"] == id)
                    .map(|c| c["skipped"].clone())
                    .expect("candidate listed")
            };
            assert_eq!(reason(&away.id), "away");
            assert_eq!(reason(&full.id), "at_capacity");
            assert_eq!(reason(&free.id), Value::Null);
        }
        for r in readers {
            r.abort();
        }
    }
}

/// What one agent saw of a contested offer.
#[derive(Debug, Default)]
struct ClaimResult {
    http_status: Option<u16>,
    ws_error: Option<String>,
    won: Option<bool>,
}

both_backends! {
    /// 30 agents claim one offer at once, half over WebSocket and half over HTTP:
    /// exactly one wins, the 29 others are told it closed (and get 409 / conflict),
    /// and the conversation is assigned once, to the winner.
    async fn thirty_claims_have_exactly_one_winner(backend) {
        let srv = TestServer::start(backend).await;
        let admin = srv.admin_token().await;
        let team = srv.default_team_id().await;
        srv.set_routing(&team, json!({"routing_mode": "poll", "offer_timeout_ms": 600_000})).await;
        let mut agents = Vec::new();
        for _ in 0..30 {
            agents.push(online_agent(&srv, "agent", None).await);
        }
        let ids: Vec<String> = agents.iter().map(|(a, _)| a.id.clone()).collect();
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        wait_presence(&srv, &admin, &team, &id_refs, "online").await;

        let guest = lead(&srv, 0).await;
        let mut tasks = Vec::new();
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(30));
        for (i, (agent, mut ws)) in agents.into_iter().enumerate() {
            let offer = ws.next_of_type("offer").await;
            assert_eq!(offer["conversation_id"], guest.conversation_id.as_str());
            // Anonymised: nothing about the contact.
            assert!(offer.get("contact").is_none() && offer.get("email").is_none(), "{offer}");
            let offer_id = offer["offer_id"].as_str().unwrap().to_string();
            let url = srv.url(&format!("/api/offers/{offer_id}/claim"));
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                let mut result = ClaimResult::default();
                barrier.wait().await;
                if i % 2 == 0 {
                    ws.send_json(&json!({"type": "claim", "offer_id": offer_id})).await;
                } else {
                    let resp = reqwest::Client::new()
                        .post(url)
                        .bearer_auth(&agent.token)
                        .send()
                        .await
                        .expect("claim request");
                    result.http_status = Some(resp.status().as_u16());
                }
                // Every agent hears how the offer closed; WebSocket losers also get
                // an error for their own claim.
                while result.won.is_none() || (i % 2 == 0 && result.won == Some(false) && result.ws_error.is_none()) {
                    let v = ws.next_json().await;
                    match v["type"].as_str() {
                        Some("offer_closed") => result.won = v["won"].as_bool(),
                        Some("error") if v["ref"] == "claim" => result.ws_error = v["code"].as_str().map(str::to_string),
                        _ => {}
                    }
                }
                (agent.id, result)
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            let (id, r) = t.await.expect("claim task");
            if r.won == Some(true) {
                winners.push(id.clone());
                if let Some(s) = r.http_status {
                    assert_eq!(s, 200);
                }
                assert!(r.ws_error.is_none(), "the winner got an error: {r:?}");
            } else {
                if let Some(s) = r.http_status {
                    assert_eq!(s, 409, "a late HTTP claim must get 409: {r:?}");
                } else {
                    assert_eq!(r.ws_error.as_deref(), Some("conflict"), "{r:?}");
                }
            }
        }
        assert_eq!(winners.len(), 1, "winners: {winners:?}");
        let assignee = wait_assignee(&srv, &admin, &guest.conversation_id).await;
        assert_eq!(assignee, winners[0]);
        let events = audit(&srv, &admin, &guest.conversation_id).await;
        let claims: Vec<_> = events.iter().filter(|e| e["kind"] == "claimed").collect();
        assert_eq!(claims.len(), 1, "{events:?}");
        assert_eq!(claims[0]["agent_id"], winners[0].as_str());
    }
}

both_backends! {
    /// An unclaimed offer is widened to away agents, then falls back to
    /// round-robin; the audit records each step.
    async fn unclaimed_offer_widens_then_falls_back(backend) {
        let srv = TestServer::start(backend).await;
        let admin = srv.admin_token().await;
        let team = srv.default_team_id().await;
        srv.set_routing(&team, json!({
            "routing_mode": "poll",
            "offer_timeout_ms": 1000,
            "escalation": ["widen", "round_robin"],
        })).await;
        let (online, mut online_ws) = online_agent(&srv, "agent", None).await;
        let (away, mut away_ws) = online_agent(&srv, "agent", None).await;
        away_ws.send_json(&json!({"type": "presence", "status": "away"})).await;
        wait_presence(&srv, &admin, &team, &[&away.id], "away").await;
        wait_presence(&srv, &admin, &team, &[&online.id], "online").await;

        let guest = lead(&srv, 0).await;
        let first = online_ws.next_of_type("offer").await;
        assert_eq!(first["round"], 1);
        // Round 2 reaches the away agent too.
        let widened = away_ws.next_of_type("offer").await;
        assert_eq!(widened["offer_id"], first["offer_id"]);
        assert_eq!(widened["round"], 2);
        // Nobody claims: round-robin among eligible (online) agents.
        let closed = online_ws.next_of_type("offer_closed").await;
        assert_eq!(closed["won"], false);
        assert_eq!(closed["reason"], "expired");
        let assigned = online_ws.next_of_type("assigned").await;
        assert_eq!(assigned["conversation_id"], guest.conversation_id.as_str());
        assert_eq!(assigned["agent_id"], online.id.as_str());
        let kinds: Vec<String> = audit(&srv, &admin, &guest.conversation_id)
            .await
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(kinds, ["offered", "offer_widened", "offer_expired", "assigned"]);
    }
}

both_backends! {
    /// With every agent offline a lead waits in the queue (the visitor sees its
    /// place) and is assigned the moment an agent logs in.
    async fn waiting_lead_is_assigned_when_an_agent_logs_in(backend) {
        let srv = TestServer::start(backend).await;
        let admin = srv.admin_token().await;
        let agent = srv.agent("agent").await;
        let guest = srv.guest().await;
        let mut guest_ws = srv.ws_guest(&guest.token).await;
        guest_ws.send_json(&json!({"type": "send", "client_msg_id": "q-1", "body": "anyone there?"})).await;
        let queued = guest_ws.next_of_type("queue").await;
        assert_eq!(queued["position"], 1);
        let view = conversation(&srv, &admin, &guest.conversation_id).await;
        assert!(view["assignee_id"].is_null());
        assert!(view["queued_at"].is_string(), "{view}");

        let mut ws = srv.ws_agent(&agent.token).await;
        let assigned = ws.next_of_type("assigned").await;
        assert_eq!(assigned["conversation_id"], guest.conversation_id.as_str());
        assert_eq!(assigned["agent_id"], agent.id.as_str());
        let left = guest_ws.next_of_type("queue").await;
        assert!(left["position"].is_null(), "{left}");
        let view = conversation(&srv, &admin, &guest.conversation_id).await;
        assert!(view["queued_at"].is_null());
    }
}

both_backends! {
    /// Visitors waiting in line each see their own place: the second and third to
    /// arrive are told 2 and 3; when the first is taken the others move up to 1
    /// and 2 (the hub announces a newcomer's place alone, and the whole line when
    /// it moves).
    async fn waiting_visitors_see_their_place_and_move_up(backend) {
        let srv = TestServer::start(backend).await;
        let admin = srv.admin_token().await;
        let agent = srv.agent("agent").await;
        set_capacity(&srv, &admin, &agent.id, json!(1)).await;
        let mut guests = Vec::new();
        for (i, expected) in [1, 2, 3].into_iter().enumerate() {
            let guest = srv.guest().await;
            let mut ws = srv.ws_guest(&guest.token).await;
            ws.send_json(&json!({"type": "send", "client_msg_id": format!("line-{i}"), "body": "hello?"})).await;
            let queued = ws.next_of_type("queue").await;
            assert_eq!(queued["position"], expected, "visitor {i}: {queued}");
            guests.push((guest, ws));
        }

        // One agent with room for one: the first in line is taken.
        let mut agent_ws = srv.ws_agent(&agent.token).await;
        let assigned = agent_ws.next_of_type("assigned").await;
        assert_eq!(assigned["conversation_id"], guests[0].0.conversation_id.as_str());
        let left = guests[0].1.next_of_type("queue").await;
        assert!(left["position"].is_null(), "{left}");
        let second = guests[1].1.next_of_type("queue").await;
        assert_eq!(second["position"], 1, "{second}");
        let third = guests[2].1.next_of_type("queue").await;
        assert_eq!(third["position"], 2, "{third}");
        let w = workload(&srv, &admin, &srv.default_team_id().await).await;
        let line: Vec<&str> = w["queue"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["conversation_id"].as_str().unwrap())
            .collect();
        assert_eq!(
            line,
            [guests[1].0.conversation_id.as_str(), guests[2].0.conversation_id.as_str()]
        );
    }
}

both_backends! {
    /// 200 leads arriving at once over 4 agents with capacity 10: nobody ever holds
    /// more than 10, exactly 40 are assigned and 160 wait; resolving frees a place
    /// that goes to the oldest waiting lead.
    async fn capacity_holds_under_200_concurrent_leads(backend) {
        let srv = TestServer::start(backend).await;
        let admin = srv.admin_token().await;
        let team = srv.default_team_id().await;
        srv.set_routing(&team, json!({"default_capacity": 10})).await;
        let mut readers = Vec::new();
        let mut agents = Vec::new();
        for _ in 0..4 {
            let (a, ws) = online_agent(&srv, "agent", None).await;
            readers.push(keep_reading(ws));
            agents.push(a);
        }
        let ids: Vec<&str> = agents.iter().map(|a| a.id.as_str()).collect();
        wait_presence(&srv, &admin, &team, &ids, "online").await;

        let mut guests = Vec::new();
        for _ in 0..200 {
            guests.push(srv.guest().await);
        }
        let posts = guests.iter().enumerate().map(|(n, g)| {
            let srv = &srv;
            async move {
                let (status, body) = srv.post_message(&g.token, &g.conversation_id, &format!("c-{n}"), "hello").await;
                assert_eq!(status, 201, "{body}");
            }
        });
        futures_util::future::join_all(posts).await;

        let w = eventually("40 assigned and 160 waiting", || async {
            let w = workload(&srv, &admin, &team).await;
            for a in w["agents"].as_array().unwrap() {
                assert!(a["open"].as_i64().unwrap() <= 10, "over capacity: {a}");
            }
            let total: i64 = w["agents"].as_array().unwrap().iter().map(|a| a["open"].as_i64().unwrap()).sum();
            (total == 40 && w["waiting"] == 160).then_some(w)
        })
        .await;
        let oldest = w["queue"][0]["conversation_id"].as_str().unwrap().to_string();

        // Resolve one of agent 0's conversations: the oldest waiting lead takes its place.
        let (status, body) = srv
            .get(&format!("/api/conversations?assignee={}&status=open", agents[0].id), Some(&admin))
            .await;
        assert_eq!(status, 200, "{body}");
        let mine = body["conversations"][0]["id"].as_str().unwrap().to_string();
        let (status, body) = srv
            .post(&format!("/api/conversations/{mine}/status"), Some(&agents[0].token), &json!({"status": "resolved"}))
            .await;
        assert_eq!(status, 200, "{body}");
        let assignee = wait_assignee(&srv, &admin, &oldest).await;
        assert_eq!(assignee, agents[0].id);
        let w = workload(&srv, &admin, &team).await;
        assert_eq!(w["waiting"], 159);
        for r in readers {
            r.abort();
        }
    }
}

both_backends! {
    /// A page reload (socket closed and reopened) keeps the agent online: leads
    /// keep going to it and the lead's view never shows it offline.
    async fn reload_keeps_presence_online(backend) {
        let srv = TestServer::start(backend).await;
        let admin = srv.admin_token().await;
        let team = srv.default_team_id().await;
        let lead_agent = srv.agent("lead").await;
        let mut lead_ws = srv.ws_agent(&lead_agent.token).await;
        let agent = srv.agent("agent").await;
        let ws = srv.ws_agent(&agent.token).await;
        wait_presence(&srv, &admin, &team, &[&agent.id], "online").await;

        ws.close().await;
        let ws = srv.ws_agent(&agent.token).await;
        let g = lead(&srv, 0).await;
        let assignee = wait_assignee(&srv, &admin, &g.conversation_id).await;
        // Either may get it in round-robin; but the reloaded agent must still be online.
        assert!(assignee == agent.id || assignee == lead_agent.id);
        let w = workload(&srv, &admin, &team).await;
        let me = w["agents"].as_array().unwrap().iter().find(|a| a["agent_id"] == agent.id.as_str()).unwrap().clone();
        assert_eq!(me["presence"], "online");
        // The lead's stream: presence frames for the agent, up to the assignment.
        loop {
            let v = lead_ws.next_json().await;
            if v["type"] == "presence" && v["agent_id"] == agent.id.as_str() {
                assert_ne!(v["status"], "offline", "a reload flipped presence");
            }
            if v["type"] == "assigned" && v["conversation_id"] == g.conversation_id.as_str() {
                break;
            }
        }
        drop(ws);
    }
}

both_backends! {
    /// An agent that goes offline has its unanswered conversations requeued after
    /// the team's requeue delay, and they go to an online colleague.
    async fn offline_agents_work_is_requeued(backend) {
        let srv = TestServer::start(backend).await;
        let admin = srv.admin_token().await;
        let team = srv.default_team_id().await;
        srv.set_routing(&team, json!({"offline_grace_ms": 0, "requeue_delay_ms": 0})).await;
        let (leaving, leaving_ws) = online_agent(&srv, "agent", None).await;
        wait_presence(&srv, &admin, &team, &[&leaving.id], "online").await;
        let g = lead(&srv, 0).await;
        assert_eq!(wait_assignee(&srv, &admin, &g.conversation_id).await, leaving.id);

        let (staying, mut staying_ws) = online_agent(&srv, "agent", None).await;
        wait_presence(&srv, &admin, &team, &[&staying.id], "online").await;
        leaving_ws.close().await;
        let assigned = loop {
            let v = staying_ws.next_of_type("assigned").await;
            if v["conversation_id"] == g.conversation_id.as_str() {
                break v;
            }
        };
        assert_eq!(assigned["agent_id"], staying.id.as_str());
        let kinds: Vec<String> = audit(&srv, &admin, &g.conversation_id)
            .await
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(kinds, ["assigned", "requeued", "assigned"]);
    }
}

both_backends! {
    /// An agent hands a conversation back and it goes to the next agent; a lead
    /// transfers it to another team, where it is routed; agents cannot transfer and
    /// cannot see the workload.
    async fn hand_back_and_transfer(backend) {
        let srv = TestServer::start(backend).await;
        let admin = srv.admin_token().await;
        let team = srv.default_team_id().await;
        let sales = srv.create_team("Sales", "sales").await;
        let (a, a_ws) = online_agent(&srv, "agent", None).await;
        let (b, b_ws) = online_agent(&srv, "agent", None).await;
        let (seller, mut seller_ws) = online_agent(&srv, "agent", Some(&[sales.as_str()])).await;
        let lead_agent = srv.agent("lead").await;
        wait_presence(&srv, &admin, &team, &[&a.id, &b.id], "online").await;
        wait_presence(&srv, &admin, &sales, &[&seller.id], "online").await;
        let readers = vec![keep_reading(a_ws), keep_reading(b_ws)];

        let g = lead(&srv, 0).await;
        let first = wait_assignee(&srv, &admin, &g.conversation_id).await;
        let (holder, other) = if first == a.id { (&a, &b) } else { (&b, &a) };
        let (status, body) = srv
            .post(&format!("/api/conversations/{}/requeue", g.conversation_id), Some(&holder.token), &json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
        let next = eventually("the hand-back to be reassigned", || async {
            let v = conversation(&srv, &admin, &g.conversation_id).await;
            v["assignee_id"].as_str().filter(|id| *id != holder.id).map(str::to_string)
        })
        .await;
        assert_eq!(next, other.id);

        let (status, body) = srv.get("/api/team/workload", Some(&other.token)).await;
        assert_eq!(status, 403, "{body}");
        let (status, body) = srv
            .post(&format!("/api/conversations/{}/transfer", g.conversation_id), Some(&other.token), &json!({"team_id": sales}))
            .await;
        assert_eq!(status, 403, "{body}");
        let (status, body) = srv
            .post(&format!("/api/conversations/{}/transfer", g.conversation_id), Some(&lead_agent.token), &json!({"team_id": sales}))
            .await;
        assert_eq!(status, 200, "{body}");
        // First the conversation arrives unassigned, then routing gives it out.
        let assigned = loop {
            let v = seller_ws.next_of_type("assigned").await;
            if !v["agent_id"].is_null() {
                break v;
            }
        };
        assert_eq!(assigned["conversation_id"], g.conversation_id.as_str());
        assert_eq!(assigned["agent_id"], seller.id.as_str());
        let view = conversation(&srv, &admin, &g.conversation_id).await;
        assert_eq!(view["team_id"], sales.as_str());
        for r in readers {
            r.abort();
        }
    }
}

both_backends! {
    /// A lead transfers a conversation straight to an agent of the other team in one
    /// step; a transfer to an agent outside that team is refused and changes nothing
    /// (the conversation keeps its team and assignee).
    async fn transfer_to_an_agent_is_all_or_nothing(backend) {
        let srv = TestServer::start(backend).await;
        let admin = srv.admin_token().await;
        let team = srv.default_team_id().await;
        let sales = srv.create_team("Sales", "sales").await;
        let (a, a_ws) = online_agent(&srv, "agent", None).await;
        let (seller, mut seller_ws) = online_agent(&srv, "agent", Some(&[sales.as_str()])).await;
        let lead_agent = srv.agent("lead").await;
        wait_presence(&srv, &admin, &team, &[&a.id], "online").await;
        let reader = keep_reading(a_ws);

        let g = lead(&srv, 0).await;
        assert_eq!(wait_assignee(&srv, &admin, &g.conversation_id).await, a.id);
        let transfer = format!("/api/conversations/{}/transfer", g.conversation_id);

        let (status, body) = srv
            .post(&transfer, Some(&lead_agent.token), &json!({"team_id": sales, "agent_id": a.id}))
            .await;
        assert_eq!(status, 400, "{body}");
        let view = conversation(&srv, &admin, &g.conversation_id).await;
        assert_eq!(view["team_id"], team.as_str(), "a refused transfer leaves the team");
        assert_eq!(view["assignee_id"], a.id.as_str(), "and the assignee");

        let (status, body) = srv
            .post(&transfer, Some(&lead_agent.token), &json!({"team_id": sales, "agent_id": seller.id}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["team_id"], sales.as_str());
        assert_eq!(body["assignee_id"], seller.id.as_str());
        let assigned = seller_ws.next_of_type("assigned").await;
        assert_eq!(assigned["conversation_id"], g.conversation_id.as_str());
        assert_eq!(assigned["agent_id"], seller.id.as_str());
        let view = conversation(&srv, &admin, &g.conversation_id).await;
        assert_eq!(view["team_id"], sales.as_str());
        assert_eq!(view["assignee_id"], seller.id.as_str());
        let kinds: Vec<Value> = audit(&srv, &admin, &g.conversation_id)
            .await
            .into_iter()
            .map(|e| e["kind"].clone())
            .collect();
        assert_eq!(kinds.iter().filter(|k| *k == "transferred").count(), 1, "{kinds:?}");
        reader.abort();
    }
}

both_backends! {
    /// A team lead's socket receives the live workload: presence, open/capacity and
    /// the queue change as agents come, leads arrive and conversations resolve.
    async fn team_lead_sees_live_workload(backend) {
        let srv = TestServer::start(backend).await;
        let team = srv.default_team_id().await;
        srv.set_routing(&team, json!({"default_capacity": 1})).await;
        let lead_agent = srv.agent("lead").await;
        let mut lead_ws = srv.ws_agent(&lead_agent.token).await;
        // The lead supervises and takes no conversations itself.
        lead_ws.send_json(&json!({"type": "presence", "status": "away"})).await;
        let agent = srv.agent("agent").await;
        let _agent_ws = srv.ws_agent(&agent.token).await;
        let admin = srv.admin_token().await;
        wait_presence(&srv, &admin, &team, &[&lead_agent.id], "away").await;
        wait_presence(&srv, &admin, &team, &[&agent.id], "online").await;
        let g1 = lead(&srv, 1).await;
        let g2 = lead(&srv, 2).await;
        let w = loop {
            let v = lead_ws.next_of_type("workload").await;
            if v["waiting"] == 1 {
                break v;
            }
        };
        assert_eq!(w["team_id"], team.as_str());
        let me = w["agents"].as_array().unwrap().iter().find(|a| a["agent_id"] == agent.id.as_str()).unwrap();
        assert_eq!((me["presence"].as_str(), me["open"].as_i64(), me["capacity"].as_i64()), (Some("online"), Some(1), Some(1)));
        let lead_line = w["agents"].as_array().unwrap().iter().find(|a| a["agent_id"] == lead_agent.id.as_str()).unwrap();
        assert_eq!(lead_line["presence"], "away");
        assert_eq!(w["queue"][0]["conversation_id"], g2.conversation_id.as_str());
        assert_eq!(w["queue"][0]["position"], 1);

        // Resolving the first frees the agent: the waiting lead is assigned and the
        // lead sees the queue empty.
        let (status, body) = srv
            .post(&format!("/api/conversations/{}/status", g1.conversation_id), Some(&agent.token), &json!({"status": "resolved"}))
            .await;
        assert_eq!(status, 200, "{body}");
        let w = loop {
            let v = lead_ws.next_of_type("workload").await;
            if v["waiting"] == 0 {
                break v;
            }
        };
        let me = w["agents"].as_array().unwrap().iter().find(|a| a["agent_id"] == agent.id.as_str()).unwrap();
        assert_eq!(me["open"], 1);
        assert_eq!(wait_assignee(&srv, &lead_agent.token, &g2.conversation_id).await, agent.id);
    }
}

both_backends! {
    /// A customer's later messages in an unassigned conversation ask the router only
    /// once per spell, and again after `ROUTE_AGAIN_MS` on the hub's clock: a team
    /// switched from manual to round-robin gets its old unassigned conversation
    /// routed at the first message after that, not before.
    async fn a_waiting_conversation_asks_the_router_once_per_spell(backend) {
        let srv = TestServer::start_manual(backend, |_| {}).await;
        let team = srv.default_team_id().await;
        srv.set_routing(&team, json!({"routing_mode": "manual"})).await;
        let (agent, ws) = online_agent(&srv, "agent", None).await;
        let _reader = keep_reading(ws);
        let admin = srv.admin_token().await;
        wait_presence(&srv, &admin, &team, &[&agent.id], "online").await;
        let old = lead(&srv, 1).await;
        srv.set_routing(&team, json!({"routing_mode": "round_robin"})).await;
        let say = |n: usize| {
            let (srv, old) = (&srv, &old);
            async move {
                let (status, body) = srv
                    .post_message(&old.token, &old.conversation_id, &format!("again-{n}"), "Still there?")
                    .await;
                assert_eq!(status, 201, "{body}");
            }
        };
        say(2).await;
        // Decisions run one at a time in commit order: once a newer lead is
        // assigned, a decision for the message above would have run too.
        let newer = lead(&srv, 3).await;
        assert_eq!(wait_assignee(&srv, &admin, &newer.conversation_id).await, agent.id);
        assert!(
            conversation(&srv, &admin, &old.conversation_id).await["assignee_id"].is_null(),
            "a message within the spell does not ask again"
        );
        srv.advance(std::time::Duration::from_millis(
            u64::try_from(switchboard::routing::ROUTE_AGAIN_MS).unwrap(),
        ));
        say(4).await;
        assert_eq!(wait_assignee(&srv, &admin, &old.conversation_id).await, agent.id);
    }
}
