//! Working hours through the real server: an agent outside their hours is offered
//! nothing new in round-robin and in poll mode (the audit says `off_hours`), clearing
//! the hours makes them eligible again, the team workload shows `off_hours`, invalid
//! schedules get 400 with a sentence and only account managers may set hours.
//!
//! The server runs on the real clock, so "off hours" is a schedule whose only working
//! day is three days from today (UTC): never today, yesterday or tomorrow, so the test
//! cannot straddle a shift edge whatever time it runs.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use switchboard_e2e::{both_backends, eventually, TestAgent, TestGuest, TestServer, Ws};

const DAY_KEYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Hours (in UTC) that are certainly off now: the whole of a day three days away.
fn off_hours_now() -> Value {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        / 86_400;
    // 1970-01-01 was a Thursday (index 3, Monday first).
    let today = ((days + 3) % 7) as usize;
    let day = DAY_KEYS[(today + 3) % 7];
    json!({"time_zone": "UTC", "hours": {day: ["00:00-24:00"]}})
}

async fn put_hours(srv: &TestServer, token: &str, agent: &str, body: &Value) -> (u16, Value) {
    srv.put(&format!("/api/agents/{agent}/hours"), Some(token), body)
        .await
}

/// The agent's row in the team's workload.
async fn load_of(srv: &TestServer, admin: &str, team: &str, agent: &str) -> Value {
    let (status, body) = srv
        .get(&format!("/api/team/workload?team_id={team}"), Some(admin))
        .await;
    assert_eq!(status, 200, "{body}");
    body["teams"][0]["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agent_id"] == agent)
        .cloned()
        .expect("agent in the workload")
}

/// Two online agents in the default team, the first outside their hours.
async fn off_and_on(
    srv: &TestServer,
    admin: &str,
    team: &str,
) -> ((TestAgent, Ws), (TestAgent, Ws)) {
    let off = srv.agent_in("agent", None).await;
    let off_ws = srv.ws_agent(&off.token).await;
    let on = srv.agent_in("agent", None).await;
    let on_ws = srv.ws_agent(&on.token).await;
    let (status, body) = put_hours(srv, admin, &off.id, &off_hours_now()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["working_now"], false, "{body}");
    for id in [&off.id, &on.id] {
        eventually("both agents online", || async {
            let a = load_of(srv, admin, team, id).await;
            (a["presence"] == "online").then_some(())
        })
        .await;
    }
    ((off, off_ws), (on, on_ws))
}

/// A new widget lead that has written its first message.
async fn lead(srv: &TestServer, n: usize) -> TestGuest {
    let guest = srv.guest().await;
    let (status, body) = srv
        .post_message(
            &guest.token,
            &guest.conversation_id,
            &format!("hours-{n}"),
            "Hello",
        )
        .await;
    assert_eq!(status, 201, "{body}");
    guest
}

async fn wait_assignee(srv: &TestServer, token: &str, id: &str) -> String {
    eventually("an assignee", || async {
        let (status, body) = srv
            .get(&format!("/api/conversations/{id}"), Some(token))
            .await;
        assert_eq!(status, 200, "{body}");
        body["assignee_id"].as_str().map(str::to_string)
    })
    .await
}

/// Why routing skipped `agent` in the conversation's first `kind` decision.
async fn skipped(srv: &TestServer, admin: &str, conv: &str, kind: &str, agent: &str) -> Value {
    let (status, body) = srv
        .get(&format!("/api/conversations/{conv}/routing"), Some(admin))
        .await;
    assert_eq!(status, 200, "{body}");
    let events = body["events"].as_array().unwrap();
    let decision = events
        .iter()
        .find(|e| e["kind"] == kind)
        .expect("a decision");
    decision["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["agent_id"] == agent)
        .map(|c| c["skipped"].clone())
        .expect("agent considered")
}

both_backends! {
    /// Round-robin: every lead goes to the agent in hours while the other is off;
    /// cleared hours put the other back in the rotation.
    async fn round_robin_skips_agents_off_hours(backend) {
        let srv = TestServer::start(backend).await;
        let admin = srv.admin_token().await;
        let team = srv.default_team_id().await;
        srv.set_routing(&team, json!({"routing_mode": "round_robin", "default_capacity": 100})).await;
        let ((off, _off_ws), (on, _on_ws)) = off_and_on(&srv, &admin, &team).await;
        assert_eq!(load_of(&srv, &admin, &team, &off.id).await["off_hours"], true);
        assert_eq!(load_of(&srv, &admin, &team, &on.id).await["off_hours"], false);

        for n in 0..4 {
            let g = lead(&srv, n).await;
            assert_eq!(wait_assignee(&srv, &admin, &g.conversation_id).await, on.id, "lead {n}");
            assert_eq!(skipped(&srv, &admin, &g.conversation_id, "assigned", &off.id).await, "off_hours");
        }

        let (status, body) = put_hours(&srv, &admin, &off.id, &json!({"hours": null})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["hours"], Value::Null);
        assert_eq!(body["working_now"], true);
        assert_eq!(load_of(&srv, &admin, &team, &off.id).await["off_hours"], false);
        let mut to_off = 0;
        for n in 4..8 {
            let g = lead(&srv, n).await;
            if wait_assignee(&srv, &admin, &g.conversation_id).await == off.id {
                to_off += 1;
            }
        }
        assert_eq!(to_off, 2, "the rotation alternates again once the hours are cleared");
    }
}

both_backends! {
    /// Poll: the offer reaches only the agent in hours.
    async fn poll_offers_skip_agents_off_hours(backend) {
        let srv = TestServer::start(backend).await;
        let admin = srv.admin_token().await;
        let team = srv.default_team_id().await;
        srv.set_routing(&team, json!({"routing_mode": "poll", "offer_timeout_ms": 60000, "escalation": []})).await;
        let ((off, _off_ws), (on, mut on_ws)) = off_and_on(&srv, &admin, &team).await;
        let g = lead(&srv, 0).await;
        let offer = on_ws.next_of_type("offer").await;
        assert_eq!(offer["conversation_id"], g.conversation_id.as_str());
        // The offer and its recipients are written in one transaction, so once the
        // in-hours agent has it, the other agent's list is final.
        let (status, body) = srv.get("/api/offers", Some(&off.token)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["offers"], json!([]), "{body}");
        assert_eq!(skipped(&srv, &admin, &g.conversation_id, "offered", &off.id).await, "off_hours");
        assert_eq!(skipped(&srv, &admin, &g.conversation_id, "offered", &on.id).await, Value::Null);
    }
}

both_backends! {
    /// The API: round trip, the audit entry, 400 with a sentence, 403, 404.
    async fn hours_api_validates_and_is_admin_only(backend) {
        let srv = TestServer::start(backend).await;
        let admin = srv.admin_token().await;
        let agent = srv.agent_in("agent", None).await;
        let path = format!("/api/agents/{}/hours", agent.id);

        let (status, body) = srv.get(&path, Some(&admin)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, json!({"agent_id": agent.id, "time_zone": null, "hours": null, "working_now": true}));

        let set = json!({"time_zone": "Asia/Jakarta", "hours": {"mon": ["09:00-17:00"], "fri": ["18:00-02:00"]}});
        let (status, body) = put_hours(&srv, &admin, &agent.id, &set).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = srv.get(&path, Some(&admin)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["time_zone"], "Asia/Jakarta");
        assert_eq!(body["hours"]["mon"], json!(["09:00-17:00"]));
        assert_eq!(body["hours"]["fri"], json!(["18:00-02:00"]));
        assert_eq!(body["hours"]["sun"], json!([]));

        let (status, body) = srv.get("/api/audit?action=agent.hours_changed", Some(&admin)).await;
        assert_eq!(status, 200, "{body}");
        let entry = &body["entries"][0];
        assert_eq!(entry["target_id"], agent.id.as_str(), "{entry}");
        assert_eq!(entry["after"]["time_zone"], "Asia/Jakarta", "{entry}");

        let bad = [
            (json!({"time_zone": "UTC", "hours": {"mon": ["18:00-09:00"], "tue": ["08:00-12:00"]}}),
             "Monday 18:00–09:00 overlaps Tuesday 08:00–12:00."),
            (json!({"time_zone": "UTC", "hours": {"mon": ["9-17"]}}),
             "Monday: \"9-17\" is not a time range; write it like 09:00-17:00."),
            (json!({"time_zone": "Mars/Olympus", "hours": {"mon": ["09:00-17:00"]}}),
             "\"Mars/Olympus\" is not a known time zone; choose one like Asia/Jakarta or Europe/Berlin."),
            (json!({"hours": {"mon": ["09:00-17:00"]}}),
             "Choose the time zone the working hours are in."),
        ];
        for (body, sentence) in bad {
            let (status, reply) = put_hours(&srv, &admin, &agent.id, &body).await;
            assert_eq!(status, 400, "{reply}");
            assert_eq!(reply["message"], sentence, "{reply}");
        }
        // A refused change leaves the hours as they were.
        let (_, body) = srv.get(&path, Some(&admin)).await;
        assert_eq!(body["time_zone"], "Asia/Jakarta");

        let (status, _) = put_hours(&srv, &agent.token, &agent.id, &json!({"hours": null})).await;
        assert_eq!(status, 403);
        let (status, _) = put_hours(&srv, &admin, "no-such-agent", &json!({"hours": null})).await;
        assert_eq!(status, 404);
    }
}
