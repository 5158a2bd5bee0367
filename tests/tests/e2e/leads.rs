//! Leads through the real server: a WhatsApp message with a campaign code tags the
//! lead and gets the package reply through the outbox (image + caption); several
//! codes — the first valid wins; an unknown code gets the welcome; the same person
//! writing later from the widget with the same phone joins the same lead with the
//! full history; "cara bayar?" moves the stage forward, raises the priority, flags
//! the handover and alerts the team lead; the first agent reply moves new →
//! contacted; manual moves go anywhere and are audited; overdue tasks are pushed.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{json, Value};
use switchboard_e2e::{
    both_backends, eventually, meta_text_webhook, whatsapp_config, Backend, FakeProvider,
    TestServer,
};

async fn wa_server(backend: Backend, fake: &FakeProvider) -> TestServer {
    let base = fake.base.clone();
    TestServer::start_with(backend, move |cfg| {
        whatsapp_config(cfg, &base);
        cfg.lead_task_check = Duration::from_millis(50);
    })
    .await
}

async fn create_code(server: &TestServer, admin: &str, code: &str, name: &str) {
    let (status, body) = server
        .post(
            "/api/campaign-codes",
            Some(admin),
            &json!({"code": code, "package_name": name, "price": 25_000_000, "currency": "Rp",
                    "departure_date": "2025-03-15", "duration_days": 9, "quota": 45,
                    "image_url": "https://example.com/umroh-maret.jpg"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// The conversation a WhatsApp number's first message created.
async fn wa_conversation(server: &TestServer, admin: &str, phone: &str) -> String {
    eventually("the WhatsApp conversation", || async {
        server
            .conversations(admin)
            .await
            .into_iter()
            .find(|c| c["contact"]["phone"] == format!("+{phone}"))
            .map(|c| c["id"].as_str().unwrap().to_string())
    })
    .await
}

fn timeline_kinds(t: &Value) -> Vec<String> {
    t["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

both_backends! {
    async fn campaign_code_then_widget_with_same_phone_is_one_lead(backend) {
        let fake = FakeProvider::start().await;
        let server = wa_server(backend, &fake).await;
        server.manual_routing().await;
        let admin = server.admin_token().await;
        create_code(&server, &admin, "UMR_MAR_2025_HEMAT", "Paket Umroh Maret 2025 Hemat").await;

        // Unknown code first, valid code second: the first *valid* code wins.
        let body = meta_text_webhook("6281234567890", "wamid.lead-1",
            "Halo, XYZ_JAN_2025_ABC atau UMR_MAR_2025_HEMAT?").to_string();
        assert_eq!(server.meta_webhook(body.as_bytes()).await.0, 200);
        let conv = wa_conversation(&server, &admin, "6281234567890").await;

        // The package reply goes out through the outbox: an image with the details.
        let calls = fake.wait_for("the package image", |calls| {
            calls.iter().any(|c| c.path.ends_with("/messages") && c.body["type"] == "image")
        }).await;
        let sent = calls.iter().find(|c| c.body["type"] == "image").unwrap();
        assert_eq!(sent.body["to"], "6281234567890");
        assert_eq!(sent.body["image"]["link"], "https://example.com/umroh-maret.jpg");
        let caption = sent.body["image"]["caption"].as_str().unwrap();
        assert!(caption.contains("Paket Umroh Maret 2025 Hemat"), "{caption}");
        assert!(caption.contains("Rp 25.000.000"), "{caption}");
        assert!(caption.contains("2025-03-15"), "{caption}");

        let lead = server.lead_where(&admin, &conv, |l| l["campaign_code"].is_string()).await;
        assert_eq!(lead["campaign_code"], "UMR_MAR_2025_HEMAT");
        assert_eq!(lead["interested_package"], "Paket Umroh Maret 2025 Hemat");
        assert_eq!(lead["source"], "campaign");
        assert_eq!(lead["stage"], "new");
        let history = server.history(&admin, &conv).await;
        assert_eq!(history.len(), 2, "{history:?}");
        assert_eq!(history[1]["sender"]["kind"], "bot");

        // The same person later writes from the website widget with the same phone
        // (spelled differently): one lead, both conversations, the whole history.
        let guest = server.guest_with(json!({"name": "Budi", "phone": "+62 812-3456-7890"})).await;
        let (status, _) = server.post_message(&guest.token, &guest.conversation_id, "w1", "Halo lagi dari website").await;
        assert_eq!(status, 201);
        let merged = server.lead_where(&admin, &guest.conversation_id, |l| {
            l["conversation_ids"].as_array().is_some_and(|c| c.len() == 2)
        }).await;
        assert_eq!(merged["id"], lead["id"], "one lead for one person");
        assert_eq!(merged["contacts"].as_array().unwrap().len(), 2);
        let (status, leads) = server.get("/api/leads", Some(&admin)).await;
        assert_eq!(status, 200);
        assert_eq!(leads["leads"].as_array().unwrap().len(), 1, "{leads}");

        let (status, t) = server.get(&format!("/api/leads/{}/timeline", lead["id"].as_str().unwrap()), Some(&admin)).await;
        assert_eq!(status, 200, "{t}");
        let kinds = timeline_kinds(&t);
        for k in ["lead_created", "task_created", "campaign_tagged", "message_in", "message_out", "contact_merged"] {
            assert!(kinds.contains(&k.to_string()), "{k} missing from {kinds:?}");
        }
        let bodies: Vec<&str> = t["timeline"].as_array().unwrap().iter()
            .filter(|e| e["kind"] == "message_in")
            .map(|e| e["detail"]["body"].as_str().unwrap()).collect();
        assert_eq!(bodies.len(), 2, "both channels' messages: {bodies:?}");
        let tagged = t["timeline"].as_array().unwrap().iter().find(|e| e["kind"] == "campaign_tagged").unwrap();
        assert_eq!(tagged["detail"]["ignored_codes"], json!(["XYZ_JAN_2025_ABC"]));

        // An unknown code alone gets the general welcome (text, no image).
        let body = meta_text_webhook("6289876543210", "wamid.lead-2", "ABC_FEB_2026_XX").to_string();
        assert_eq!(server.meta_webhook(body.as_bytes()).await.0, 200);
        fake.wait_for("the welcome", |calls| {
            calls.iter().any(|c| c.body["to"] == "6289876543210" && c.body["type"] == "text"
                && c.body["text"]["body"].as_str().is_some_and(|b| b.starts_with("Welcome")))
        }).await;
        let conv2 = wa_conversation(&server, &admin, "6289876543210").await;
        let other = server.lead_where(&admin, &conv2, |_| true).await;
        assert!(other["campaign_code"].is_null());
        assert_eq!(other["source"], "whatsapp");
        fake.stop().await;
    }
}

both_backends! {
    async fn payment_intent_moves_forward_and_hands_over(backend) {
        let server = TestServer::start(backend).await;
        server.manual_routing().await;
        let lead_agent = server.agent("lead").await;
        let mut lead_ws = server.ws_agent(&lead_agent.token).await;
        let guest = server.guest().await;
        let conv = guest.conversation_id.clone();
        server.post_message(&guest.token, &conv, "g1", "Assalamualaikum").await;
        let first = server.lead_where(&lead_agent.token, &conv, |_| true).await;
        assert_eq!(first["stage"], "new");
        assert_eq!(first["priority"], "normal");

        let (status, _) = server.post_message(&guest.token, &conv, "g2", "Cara BAYAR? DP berapa ya").await;
        assert_eq!(status, 201);
        let handover = lead_ws.next_of_type("handover").await;
        assert_eq!(handover["conversation_id"], conv.as_str());
        assert_eq!(handover["intent"], "payment");
        let lead = server.lead_where(&lead_agent.token, &conv, |l| l["handover_pending"] == true).await;
        assert_eq!(lead["stage"], "proposal", "moved forward by the payment rule");
        assert_eq!(lead["priority"], "high");

        // The dashboard lists it as a pending handover.
        let (status, dash) = server.get("/api/marketing/dashboard", Some(&lead_agent.token)).await;
        assert_eq!(status, 200, "{dash}");
        assert_eq!(dash["pending_handover"][0]["lead_id"], lead["id"]);
        assert_eq!(dash["pending_handover"][0]["conversation_id"], conv.as_str());
        assert_eq!(dash["stage_distribution"]["proposal"], 1);

        // Rules never move backwards: a pricing question (stage interested) later
        // leaves the stage alone.
        server.post_message(&guest.token, &conv, "g3", "how much is it?").await;
        let tasks = eventually("the pricing task", || async {
            let (_, t) = server.get(&format!("/api/leads/{}/tasks", lead["id"].as_str().unwrap()), Some(&lead_agent.token)).await;
            let v = t["tasks"].as_array().unwrap().clone();
            v.iter().any(|t| t["kind"] == "pricing").then_some(v)
        }).await;
        let kinds: Vec<&str> = tasks.iter().map(|t| t["kind"].as_str().unwrap()).collect();
        assert!(kinds.contains(&"initial_contact") && kinds.contains(&"payment"), "{kinds:?}");
        let initial = tasks.iter().find(|t| t["kind"] == "initial_contact").unwrap();
        assert_eq!(initial["due_at"].as_i64().unwrap() - initial["created_at"].as_i64().unwrap(), 3_600_000);
        let pricing = tasks.iter().find(|t| t["kind"] == "pricing").unwrap();
        assert_eq!(pricing["due_at"].as_i64().unwrap() - pricing["created_at"].as_i64().unwrap(), 2 * 3_600_000);
        let after = server.lead_where(&lead_agent.token, &conv, |_| true).await;
        assert_eq!(after["stage"], "proposal");

        // The handover: assigned to an agent, who becomes the owner.
        let agent = server.agent("agent").await;
        let (status, body) = server.post("/api/conversations/handover", Some(&lead_agent.token),
            &json!({"conversation_id": conv, "assigned_to": agent.id, "handover_notes": "ready to pay DP"})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["lead"]["owner_id"], agent.id.as_str());
        assert_eq!(body["lead"]["handover_pending"], false);
        let (_, t) = server.get(&format!("/api/leads/{}/timeline", lead["id"].as_str().unwrap()), Some(&lead_agent.token)).await;
        let kinds = timeline_kinds(&t);
        for k in ["intent_detected", "stage_changed", "priority_changed", "handover_requested", "handover", "routing_assigned"] {
            assert!(kinds.contains(&k.to_string()), "{k} missing from {kinds:?}");
        }
    }
}

both_backends! {
    async fn first_reply_manual_moves_and_overdue_tasks(backend) {
        let server = TestServer::start_with(backend, |cfg| {
            cfg.lead_task_check = Duration::from_millis(50);
        }).await;
        server.manual_routing().await;
        let agent = server.agent("agent").await;
        let mut ws = server.ws_agent(&agent.token).await;
        let guest = server.guest().await;
        let conv = guest.conversation_id.clone();
        server.post_message(&guest.token, &conv, "g1", "Hello there").await;
        let lead = server.lead_where(&agent.token, &conv, |_| true).await;
        let lead_id = lead["id"].as_str().unwrap().to_string();

        // A `lead` frame reached the team's agents.
        let frame = ws.next_of_type("lead").await;
        assert_eq!(frame["id"], lead_id.as_str());

        // First agent reply: new → contacted, owner set, initial task done.
        let (status, _) = server.post_message(&agent.token, &conv, "a1", "Hi! How can I help?").await;
        assert_eq!(status, 201);
        let lead = server.lead_where(&agent.token, &conv, |l| l["stage"] == "contacted").await;
        assert_eq!(lead["owner_id"], agent.id.as_str());
        assert!(lead["first_response_at"].is_string());

        // Manual moves may go backwards and are audited with their actor.
        let (status, body) = server.patch(&format!("/api/leads/{lead_id}"), Some(&agent.token), &json!({"stage": "new"})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["stage"], "new");
        let (status, body) = server.patch(&format!("/api/leads/{lead_id}"), Some(&agent.token), &json!({"stage": "nope"})).await;
        assert_eq!(status, 400, "{body}");
        let (_, t) = server.get(&format!("/api/leads/{lead_id}/timeline"), Some(&agent.token)).await;
        let manual = t["timeline"].as_array().unwrap().iter()
            .find(|e| e["kind"] == "stage_changed" && e["detail"]["manual"] == true).unwrap().clone();
        assert_eq!(manual["actor_id"], agent.id.as_str());
        assert_eq!(manual["detail"]["from"], "contacted");

        // A task already past due is pushed to its assignee once.
        let now = t["timeline"].as_array().unwrap().last().unwrap()["at_ms"].as_i64().unwrap();
        let (status, task) = server.post(&format!("/api/leads/{lead_id}/tasks"), Some(&agent.token),
            &json!({"title": "Call back", "due_at": now - 1000, "assignee_id": agent.id})).await;
        assert_eq!(status, 201, "{task}");
        let due = ws.next_of_type("task_due").await;
        assert_eq!(due["id"], task["id"]);
        assert_eq!(due["assignee_id"], agent.id.as_str());
        let (status, done) = server.patch(&format!("/api/tasks/{}", task["id"].as_str().unwrap()), Some(&agent.token), &json!({"status": "done"})).await;
        assert_eq!(status, 200, "{done}");
        assert_eq!(done["status"], "done");
    }
}

both_backends! {
    async fn returning_contact_goes_to_the_lead_owner_first(backend) {
        let server = TestServer::start(backend).await;
        let admin = server.admin_token().await;
        let team = server.default_team_id().await;
        let x = server.agent("agent").await;
        let y = server.agent("agent").await;
        let mut x_ws = server.ws_agent(&x.token).await;
        let mut y_ws = server.ws_agent(&y.token).await;
        eventually("both agents online", || async {
            let (_, w) = server.get(&format!("/api/team/workload?team_id={team}"), Some(&admin)).await;
            let online = w["teams"][0]["agents"].as_array().into_iter().flatten()
                .filter(|a| (a["agent_id"] == x.id.as_str() || a["agent_id"] == y.id.as_str()) && a["presence"] == "online")
                .count();
            (online == 2).then_some(())
        }).await;

        let first = server.guest_with(json!({"name": "Ana", "phone": "+6281311112222"})).await;
        server.post_message(&first.token, &first.conversation_id, "f1", "Hello").await;
        let assigned = x_ws.next_of_type("assigned").await;
        let owner = assigned["agent_id"].as_str().unwrap().to_string();
        let (owner_token, owner_ws) = if owner == x.id { (&x.token, &mut x_ws) } else { (&y.token, &mut y_ws) };
        server.post_message(owner_token, &first.conversation_id, "r1", "Hi Ana!").await;
        server.lead_where(&admin, &first.conversation_id, |l| l["owner_id"] == owner.as_str()).await;

        // Round-robin would now pick the other agent; the returning person (a new
        // widget session, same phone) goes to the lead's owner instead.
        let again = server.guest_with(json!({"name": "Ana", "phone": "+62 813-1111-2222"})).await;
        server.post_message(&again.token, &again.conversation_id, "f2", "Me again").await;
        let assigned = loop {
            let v = owner_ws.next_of_type("assigned").await;
            if v["conversation_id"] == again.conversation_id.as_str() {
                break v;
            }
        };
        assert_eq!(assigned["agent_id"], owner.as_str());
        let (_, audit) = server.get(&format!("/api/conversations/{}/routing", again.conversation_id), Some(&admin)).await;
        assert_eq!(audit["events"][0]["via"], "owner", "{audit}");
        let lead = server.lead_where(&admin, &again.conversation_id, |l| {
            l["conversation_ids"].as_array().is_some_and(|c| c.len() == 2)
        }).await;
        assert_eq!(lead["owner_id"], owner.as_str());
    }
}

both_backends! {
    /// A customer message committed just before its node stopped is still bookkept:
    /// the next start finishes what the inbound pipeline had not done (its progress is
    /// in the database), so the payment question still moves the lead and flags the
    /// handover.
    async fn bookkeeping_a_stopped_node_missed_is_done_by_the_next_start(backend) {
        let mut server = TestServer::start(backend).await;
        server.manual_routing().await;
        let lead_agent = server.agent("lead").await;
        let guest = server.guest().await;
        let conv = guest.conversation_id.clone();
        server.post_message(&guest.token, &conv, "g1", "Assalamualaikum").await;
        let first = server.lead_where(&lead_agent.token, &conv, |_| true).await;
        assert_eq!(first["stage"], "new");
        server.stop().await;

        // Committed exactly as the writer commits, but no node ran its stages.
        let db = switchboard::db::Db::open(&server.config).unwrap();
        let mut c = db.conn().unwrap();
        let m = switchboard::store::messages::NewMessage {
            conversation_id: conv.clone(),
            sender_kind: switchboard::model::SenderKind::Guest,
            sender_id: Some(guest.contact_id.clone()),
            sender_name: None,
            body: "Cara BAYAR? DP berapa ya".into(),
            client_msg_id: Some("g2".into()),
            provider_id: None,
            reopen: true,
            channel: None,
        };
        let stored = switchboard::db::write_transaction(&mut c, |c| {
            switchboard::store::messages::append(c, &m)
        })
        .unwrap();
        assert_eq!(stored.message.seq, 2);
        drop(c);
        drop(db);

        let server = server.restart().await;
        let lead = server
            .lead_where(&lead_agent.token, &conv, |l| l["handover_pending"] == true)
            .await;
        assert_eq!(lead["stage"], "proposal", "moved forward by the payment rule");
        assert_eq!(lead["priority"], "high");
    }
}

both_backends! {
    /// The same person by email, spelled in another case, joins the first lead from a
    /// new widget session; another email is another person with a lead of their own.
    async fn same_email_in_any_case_is_one_lead(backend) {
        let server = TestServer::start(backend).await;
        server.manual_routing().await;
        let admin = server.admin_token().await;
        let has_id = |l: &Value| l["id"].is_string();

        let first = server.guest_with(json!({"name": "Ana", "email": "Ana.Silva@Example.com"})).await;
        server.post_message(&first.token, &first.conversation_id, "e1", "Hello").await;
        let lead = server.lead_where(&admin, &first.conversation_id, has_id).await;

        let other = server.guest_with(json!({"name": "Bo", "email": "bo@example.com"})).await;
        server.post_message(&other.token, &other.conversation_id, "e2", "Hi").await;
        let second = server.lead_where(&admin, &other.conversation_id, has_id).await;
        assert_ne!(second["id"], lead["id"], "another person, another lead");

        let again = server.guest_with(json!({"name": "Ana", "email": "ana.silva@example.COM"})).await;
        server.post_message(&again.token, &again.conversation_id, "e3", "Me again").await;
        let merged = server.lead_where(&admin, &again.conversation_id, has_id).await;
        assert_eq!(merged["id"], lead["id"], "one lead for one person");
        assert_eq!(merged["contacts"].as_array().unwrap().len(), 2, "{merged}");
        let (status, leads) = server.get("/api/leads", Some(&admin)).await;
        assert_eq!(status, 200);
        assert_eq!(leads["leads"].as_array().unwrap().len(), 2, "{leads}");
    }
}
