//! The audit log as an admin reads it (`docs/audit.md`): every account and settings
//! change made through the API leaves an entry naming who, what, the target, the
//! state before and after (passwords redacted) and the caller's address; a failed
//! login leaves one without an actor; a change that is refused leaves none. Only
//! admins read the log, through filters and pages, and nothing can change it.

// Test bodies run inside the `both_backends!` helpers, which clippy does not see as
// tests; a panic with a message is how a test reports a broken expectation.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::{json, Value};
use switchboard_e2e::{both_backends, TestServer, ADMIN_EMAIL, ADMIN_PASSWORD};

/// `GET /api/audit?{query}` as `token`: the entries (asserting 200).
async fn entries(srv: &TestServer, token: &str, query: &str) -> Vec<Value> {
    let (status, body) = srv.get(&format!("/api/audit?{query}"), Some(token)).await;
    assert_eq!(status, 200, "{body}");
    body["entries"].as_array().unwrap().clone()
}

/// The newest entry of `action` (asserting there is one).
async fn latest(srv: &TestServer, admin: &str, action: &str) -> Value {
    let list = entries(srv, admin, &format!("action={action}")).await;
    list.first()
        .cloned()
        .unwrap_or_else(|| panic!("no {action} entry"))
}

/// Asserts who acted, on what, and from where.
fn assert_entry(e: &Value, actor_id: &str, target_kind: &str, target_id: &str) {
    assert_eq!(e["actor_id"], actor_id, "{e}");
    assert_eq!(e["target_kind"], target_kind, "{e}");
    assert_eq!(e["target_id"], target_id, "{e}");
    assert_eq!(e["ip"], "127.0.0.1", "{e}");
    assert!(e["at"].as_str().unwrap().ends_with('Z'), "{e}");
}

async fn my_id(srv: &TestServer, token: &str) -> String {
    let (_, me) = srv.get("/api/auth/me", Some(token)).await;
    me["agent"]["id"].as_str().unwrap().to_string()
}

/// The entries that are not logins, oldest first: what a refused change must not add to.
async fn changes(srv: &TestServer, admin: &str) -> Vec<Value> {
    let mut list: Vec<Value> = entries(srv, admin, "limit=200")
        .await
        .into_iter()
        .filter(|e| e["action"] != "auth.login")
        .collect();
    list.reverse();
    list
}

both_backends! {
    async fn logins_and_account_changes_are_recorded(backend) {
        let srv = TestServer::start(backend).await;
        let (status, _) = srv
            .post("/api/auth/login", None, &json!({"email": "Nobody@Test.local", "password": "guess-guess-1"}))
            .await;
        assert_eq!(status, 401);
        let admin = srv.admin_token().await;
        let admin_id = my_id(&srv, &admin).await;

        let failed = latest(&srv, &admin, "auth.login_failed").await;
        assert_eq!(failed["actor_id"], Value::Null, "a failed login has no actor");
        assert_eq!(failed["actor_label"], "nobody@test.local");
        assert_eq!(failed["ip"], "127.0.0.1");
        let login = latest(&srv, &admin, "auth.login").await;
        assert_entry(&login, &admin_id, "agent", &admin_id);
        assert_eq!(login["actor_label"], ADMIN_EMAIL);

        let agent = srv.agent("agent").await;
        let created = latest(&srv, &admin, "agent.created").await;
        assert_entry(&created, &admin_id, "agent", &agent.id);
        assert_eq!(created["after"]["email"], agent.email.as_str());
        assert_eq!(created["after"]["active"], true, "booleans stay booleans");
        assert!(!created.to_string().contains(&agent.password));

        let path = format!("/api/agents/{}", agent.id);
        let (status, body) = srv.patch(&path, Some(&admin), &json!({"role": "manager"})).await;
        assert_eq!(status, 200, "{body}");
        let updated = latest(&srv, &admin, "agent.updated").await;
        assert_entry(&updated, &admin_id, "agent", &agent.id);
        assert_eq!(updated["before"]["role"], "agent");
        assert_eq!(updated["after"]["role"], "manager");
        let revoked = latest(&srv, &admin, "agent.tokens_revoked").await;
        assert_entry(&revoked, &admin_id, "agent", &agent.id);
        let revocations = entries(&srv, &admin, "action=agent.tokens_revoked").await.len();
        let (status, _) = srv.patch(&path, Some(&admin), &json!({"name": "Renamed"})).await;
        assert_eq!(status, 200);
        assert_eq!(latest(&srv, &admin, "agent.updated").await["after"]["name"], "Renamed");
        assert_eq!(
            entries(&srv, &admin, "action=agent.tokens_revoked").await.len(),
            revocations,
            "a new name revokes nothing, so no revocation entry"
        );

        let (status, _) = srv
            .post(&format!("{path}/password"), Some(&admin), &json!({"password": "reset-password-9"}))
            .await;
        assert_eq!(status, 204);
        let reset = latest(&srv, &admin, "agent.password_reset").await;
        assert_entry(&reset, &admin_id, "agent", &agent.id);
        assert_eq!(reset["after"]["password_hash"], "[redacted]");
        let text = reset.to_string();
        assert!(!text.contains("reset-password-9") && !text.contains("argon2"), "{text}");
        assert_eq!(entries(&srv, &admin, "action=agent.tokens_revoked").await.len(), revocations + 1);

        let token = srv.login(&agent.email, "reset-password-9").await;
        let (status, body) = srv
            .post("/api/auth/password", Some(&token), &json!({"current_password": "reset-password-9", "new_password": "own-password-77"}))
            .await;
        assert_eq!(status, 200, "{body}");
        let own = latest(&srv, &admin, "auth.password_changed").await;
        assert_entry(&own, &agent.id, "agent", &agent.id);
        assert_eq!(own["actor_label"], agent.email.as_str());
        assert!(!own.to_string().contains("own-password-77"));

        let (status, _) = srv.put(&format!("/api/agents/{}/capacity", agent.id), Some(&admin), &json!({"capacity": 3})).await;
        assert_eq!(status, 200);
        let capacity = latest(&srv, &admin, "agent.capacity_changed").await;
        assert_entry(&capacity, &admin_id, "agent", &agent.id);
        assert_eq!((capacity["before"]["capacity"].clone(), capacity["after"]["capacity"].clone()), (Value::Null, json!(3)));

        let team = srv.create_team("Sales", "sales").await;
        let created = latest(&srv, &admin, "team.created").await;
        assert_entry(&created, &admin_id, "team", &team);
        assert_eq!(created["after"]["slug"], "sales");
        let (status, _) = srv.post(&format!("/api/teams/{team}/members"), Some(&admin), &json!({"agent_id": agent.id})).await;
        assert_eq!(status, 204);
        let added = latest(&srv, &admin, "team.member_added").await;
        assert_entry(&added, &admin_id, "agent", &agent.id);
        assert_eq!(added["team_id"], team.as_str());
        assert!(added["after"]["team_ids"].as_array().unwrap().contains(&json!(team)));
        let (status, _) = srv.delete(&format!("/api/teams/{team}/members/{}", agent.id), Some(&admin)).await;
        assert_eq!(status, 204);
        let removed = latest(&srv, &admin, "team.member_removed").await;
        assert_entry(&removed, &admin_id, "agent", &agent.id);
        assert!(!removed["after"]["team_ids"].as_array().unwrap().contains(&json!(team)));
        assert_eq!(entries(&srv, &admin, "action=agent.tokens_revoked").await.len(), revocations + 3);
    }
}

/// Each settings area: one change through the API, then its entry's target and the
/// changed field before and after.
async fn settings_changes(srv: &TestServer, admin: &str, admin_id: &str, team: &str) {
    let put = |path: String, body: Value| async move {
        let (status, b) = srv.put(&path, Some(admin), &body).await;
        assert_eq!(status, 200, "{path}: {b}");
        b
    };
    put(
        format!("/api/teams/{team}/routing"),
        json!({"offer_timeout_ms": 45_000}),
    )
    .await;
    let e = latest(srv, admin, "routing.settings_changed").await;
    assert_entry(&e, admin_id, "team", team);
    assert_eq!(e["after"]["offer_timeout_ms"], 45_000);
    assert_ne!(e["before"]["offer_timeout_ms"], 45_000);

    put(
        format!("/api/teams/{team}/widget"),
        json!({"greeting": "Hello from audit"}),
    )
    .await;
    let e = latest(srv, admin, "widget.settings_changed").await;
    assert_entry(&e, admin_id, "team", team);
    assert_eq!(e["after"]["greeting"], "Hello from audit");
    assert_ne!(e["before"]["greeting"], "Hello from audit");

    put(format!("/api/teams/{team}/bot"), json!({"enabled": true})).await;
    let e = latest(srv, admin, "bot.settings_changed").await;
    assert_entry(&e, admin_id, "team", team);
    assert_eq!(
        (
            e["before"]["enabled"].clone(),
            e["after"]["enabled"].clone()
        ),
        (json!(false), json!(true))
    );

    put(
        format!("/api/teams/{team}/pipeline"),
        json!({"welcome": "Welcome, audited"}),
    )
    .await;
    let e = latest(srv, admin, "pipeline.changed").await;
    assert_entry(&e, admin_id, "team", team);
    assert_eq!(e["after"]["welcome"], "Welcome, audited");

    let prompt = put(
        "/api/ai/prompts".into(),
        json!({"team_id": team, "prompt_type": "base", "content": "Be kind.", "version": "7"}),
    )
    .await;
    let e = latest(srv, admin, "ai.prompt_changed").await;
    assert_entry(&e, admin_id, "prompt", prompt["id"].as_str().unwrap());
    assert_eq!(e["after"]["version"], "7");
    assert_eq!(e["before"], Value::Null, "the first revision has no before");
}

/// Rules, campaign codes, quick links and knowledge: created, changed, retired.
async fn lifecycle_changes(srv: &TestServer, admin: &str, admin_id: &str, team: &str) {
    let rule = json!({"name": "Prices", "priority": 1, "pattern": "price", "reply": "From Rp 25.000.000."});
    let (status, created) = srv
        .post(&format!("/api/teams/{team}/bot/rules"), Some(admin), &rule)
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_entry(
        &latest(srv, admin, "bot.rule_created").await,
        admin_id,
        "bot_rule",
        &id,
    );
    let renamed = json!({"name": "Package prices", "priority": 1, "pattern": "price", "reply": "From Rp 25.000.000."});
    let (status, _) = srv
        .put(&format!("/api/bot/rules/{id}"), Some(admin), &renamed)
        .await;
    assert_eq!(status, 200);
    let e = latest(srv, admin, "bot.rule_updated").await;
    assert_eq!(
        (e["before"]["name"].clone(), e["after"]["name"].clone()),
        (json!("Prices"), json!("Package prices"))
    );
    assert_eq!(
        srv.delete(&format!("/api/bot/rules/{id}"), Some(admin))
            .await
            .0,
        204
    );
    let e = latest(srv, admin, "bot.rule_deleted").await;
    assert_entry(&e, admin_id, "bot_rule", &id);
    assert_eq!(
        (e["before"]["name"].clone(), e["after"].clone()),
        (json!("Package prices"), Value::Null)
    );

    let code = "UMR_MAR_2025_HEMAT";
    let (status, body) = srv
        .post(
            "/api/campaign-codes",
            Some(admin),
            &json!({"code": code, "team_id": team, "package_name": "Umroh March"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_entry(
        &latest(srv, admin, "campaign_code.created").await,
        admin_id,
        "campaign_code",
        code,
    );
    let (status, _) = srv
        .put(
            &format!("/api/campaign-codes/{code}"),
            Some(admin),
            &json!({"package_name": "Umroh March Saver"}),
        )
        .await;
    assert_eq!(status, 200);
    let e = latest(srv, admin, "campaign_code.updated").await;
    assert_eq!(e["before"]["package_name"], "Umroh March");
    assert_eq!(e["after"]["package_name"], "Umroh March Saver");
    assert_eq!(
        srv.delete(&format!("/api/campaign-codes/{code}"), Some(admin))
            .await
            .0,
        204
    );
    let e = latest(srv, admin, "campaign_code.deactivated").await;
    assert_eq!(
        (e["before"]["active"].clone(), e["after"]["active"].clone()),
        (json!(true), json!(false))
    );

    let (status, link) = srv
        .post(
            "/api/quick-links",
            Some(admin),
            &json!({"source": "linkedin", "handle": "boss", "team_id": team}),
        )
        .await;
    assert_eq!(status, 201, "{link}");
    let link_id = link["link"]["id"].as_str().unwrap().to_string();
    assert_entry(
        &latest(srv, admin, "quick_link.created").await,
        admin_id,
        "quick_link",
        &link_id,
    );
    assert_eq!(
        srv.delete(&format!("/api/quick-links/{link_id}"), Some(admin))
            .await
            .0,
        204
    );
    let e = latest(srv, admin, "quick_link.deactivated").await;
    assert_eq!(e["after"]["active"], false);

    let doc =
        json!({"team_id": team, "kind": "faq", "title": "When do you open?", "body": "At eight."});
    let (status, body) = srv.post("/api/knowledge", Some(admin), &doc).await;
    assert_eq!(status, 201, "{body}");
    let doc_id = body["document"]["id"].as_str().unwrap().to_string();
    let e = latest(srv, admin, "knowledge.created").await;
    assert_entry(&e, admin_id, "knowledge_doc", &doc_id);
    assert_eq!(e["after"]["title"], "When do you open?");
    assert_eq!(
        e["after"].get("body"),
        None,
        "titles and ids only, not the text"
    );
    let (status, _) = srv
        .put(
            &format!("/api/knowledge/{doc_id}"),
            Some(admin),
            &json!({"title": "Opening hours"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        latest(srv, admin, "knowledge.updated").await["after"]["title"],
        "Opening hours"
    );
    assert_eq!(
        srv.delete(&format!("/api/knowledge/{doc_id}"), Some(admin))
            .await
            .0,
        204
    );
    assert_entry(
        &latest(srv, admin, "knowledge.deleted").await,
        admin_id,
        "knowledge_doc",
        &doc_id,
    );
    let (status, body) = srv
        .post(
            "/api/knowledge/import",
            Some(admin),
            &json!({"team_id": team, "markdown": "# Visas\n\nWe arrange them."}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let e = latest(srv, admin, "knowledge.imported").await;
    assert_eq!(e["team_id"], team);
    assert_eq!(e["after"]["documents"][0]["title"], "Visas");
}

both_backends! {
    async fn settings_and_content_changes_are_recorded(backend) {
        let srv = TestServer::start(backend).await;
        let admin = srv.admin_token().await;
        let admin_id = my_id(&srv, &admin).await;
        let team = srv.default_team_id().await;
        settings_changes(&srv, &admin, &admin_id, &team).await;
        lifecycle_changes(&srv, &admin, &admin_id, &team).await;
        let areas = entries(&srv, &admin, "action=knowledge.").await;
        assert_eq!(areas.len(), 4, "created, updated, deleted, imported");
    }
}

both_backends! {
    async fn a_refused_change_writes_no_entry(backend) {
        let srv = TestServer::start(backend).await;
        let admin = srv.admin_token().await;
        let admin_id = my_id(&srv, &admin).await;
        let team = srv.default_team_id().await;
        let agent = srv.agent("agent").await;
        srv.post("/api/campaign-codes", Some(&admin), &json!({"code": "UMR_MAR_2025_HEMAT", "team_id": team, "package_name": "Umroh"})).await;
        let before = changes(&srv, &admin).await;
        assert_eq!(before.len(), 2, "the agent and the code: {before:?}");

        let refused = [
            // The last admin (409, inside the transaction).
            srv.patch(&format!("/api/agents/{admin_id}"), Some(&admin), &json!({"role": "agent"})).await.0,
            // A taken email (409 from the database, inside the transaction).
            srv.patch(&format!("/api/agents/{}", agent.id), Some(&admin), &json!({"email": ADMIN_EMAIL})).await.0,
            srv.put(&format!("/api/teams/{team}/routing"), Some(&admin), &json!({"offer_timeout_ms": 5})).await.0,
            srv.put(&format!("/api/teams/{team}/widget"), Some(&admin), &json!({"prechat_fields": ["shoe_size"]})).await.0,
            srv.put(&format!("/api/teams/{team}/bot"), Some(&admin), &json!({"temperature": 9.0})).await.0,
            srv.post("/api/campaign-codes", Some(&admin), &json!({"code": "UMR_MAR_2025_HEMAT", "team_id": team, "package_name": "Again"})).await.0,
            srv.post("/api/knowledge/import", Some(&admin), &json!({"team_id": team, "as_faq": true, "markdown": format!("## Fine?\n\nYes.\n\n## {}\n\nNo.", "q".repeat(400))})).await.0,
            // Not a member: 404 from inside the transaction.
            srv.delete(&format!("/api/teams/{team}/members/not-an-agent"), Some(&admin)).await.0,
        ];
        for (i, status) in refused.iter().enumerate() {
            assert!((400..500).contains(status), "change {i} should be refused, got {status}");
        }
        assert_eq!(changes(&srv, &admin).await, before, "refused changes leave no entry");
        let (status, _) = srv.post("/api/auth/login", None, &json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})).await;
        assert_eq!(status, 200);
    }
}

both_backends! {
    async fn only_admins_read_the_log_through_filters_and_pages(backend) {
        let srv = TestServer::start(backend).await;
        let admin = srv.admin_token().await;
        let admin_id = my_id(&srv, &admin).await;
        let lead = srv.agent("lead").await;
        for _ in 0..3 {
            srv.post("/api/auth/login", None, &json!({"email": "x@test.local", "password": "wrong-wrong-1"})).await;
        }

        assert_eq!(srv.get("/api/audit", Some(&lead.token)).await.0, 403);
        assert_eq!(srv.get("/api/audit", None).await.0, 401);
        let id = entries(&srv, &admin, "").await[0]["id"].as_str().unwrap().to_string();
        for (status, what) in [
            (srv.put("/api/audit", Some(&admin), &json!({})).await.0, "PUT /api/audit"),
            (srv.delete("/api/audit", Some(&admin)).await.0, "DELETE /api/audit"),
            (srv.patch(&format!("/api/audit/{id}"), Some(&admin), &json!({"action": "x"})).await.0, "PATCH an entry"),
            (srv.put(&format!("/api/audit/{id}"), Some(&admin), &json!({})).await.0, "PUT an entry"),
            (srv.delete(&format!("/api/audit/{id}"), Some(&admin)).await.0, "DELETE an entry"),
        ] {
            assert!(status == 404 || status == 405, "{what} answered {status}");
        }

        let all = entries(&srv, &admin, "limit=200").await;
        let mut paged = Vec::new();
        let mut query = "limit=2".to_string();
        loop {
            let (status, page) = srv.get(&format!("/api/audit?{query}"), Some(&admin)).await;
            assert_eq!(status, 200, "{page}");
            assert!(page["entries"].as_array().unwrap().len() <= 2);
            paged.extend(page["entries"].as_array().unwrap().iter().cloned());
            match page["next_before"].as_str() {
                Some(next) => query = format!("limit=2&before={next}"),
                None => break,
            }
        }
        assert_eq!(paged, all, "pages walk the whole log once, newest first");

        let auth = entries(&srv, &admin, "action=auth.").await;
        assert!(auth.iter().all(|e| e["action"].as_str().unwrap().starts_with("auth.")));
        assert_eq!(auth.iter().filter(|e| e["action"] == "auth.login_failed").count(), 3);
        let mine = entries(&srv, &admin, &format!("actor_id={admin_id}")).await;
        assert!(!mine.is_empty() && mine.iter().all(|e| e["actor_id"] == admin_id.as_str()));
        let about_lead = entries(&srv, &admin, &format!("target_id={}", lead.id)).await;
        let actions: Vec<&str> = about_lead.iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions, ["auth.login", "agent.created"], "newest first");
        let newest = &all[0]["at"];
        let since = entries(&srv, &admin, &format!("since={}", newest.as_str().unwrap())).await;
        assert!(since.iter().all(|e| e["at"].as_str() >= newest.as_str()) && !since.is_empty());

        for bad in ["limit=500", "action=agent.deleted", "action=nothing.", "since=yesterday", "before=nope"] {
            assert_eq!(srv.get(&format!("/api/audit?{bad}"), Some(&admin)).await.0, 400, "{bad}");
        }
    }
}
