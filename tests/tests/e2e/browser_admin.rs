//! Browser tests of the account screens (issue 16, `docs/admin.md`): an admin
//! invites an agent through the form, changes its role, adds it to a team,
//! deactivates it (the API then says so and refuses its old token) and reactivates
//! it, meets the last-admin guard in plain words, creates a team and adds a member,
//! and changes their own password without being signed out; a manager is not
//! offered the accounts screens and `#/settings/agents` tells them so. Every screen
//! at 1366×900 and 390×844, light and dark: no sideways scrolling, no serious or
//! critical axe-core violation.
//!
//! SQLite only, like `browser_inbox.rs`: the API behind these screens is covered on
//! both backends in `accounts.rs`. Screenshots go to `target/screenshots/`
//! (`docs/screenshots/` with `SWITCHBOARD_UPDATE_SCREENSHOTS=1`).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::{json, Value};
use switchboard_e2e::browser::{browser_turn, inbox, inbox_login, Driver, Session, DESKTOP, PHONE};
use switchboard_e2e::{Backend, TestAgent, TestServer, ADMIN_EMAIL, ADMIN_PASSWORD};

/// JS expression: whether the element matching `selector` is rendered.
fn shown(selector: &str) -> String {
    format!(
        "(() => {{ const e = document.querySelector({}); return Boolean(e && e.getClientRects().length); }})()",
        json!(selector)
    )
}

/// Sets a `<select>` (by `data-testid`) to `value` as a user would: the value,
/// then a `change` event.
async fn choose(s: &Session, testid: &str, value: &str) {
    s.wait_for(testid, &inbox(testid)).await;
    let ok = s
        .execute(
            "const el = document.querySelector(`[data-testid=\"${arguments[0]}\"]`); \
             if (![...el.options].some(o => o.value === arguments[1])) return false; \
             el.value = arguments[1]; el.dispatchEvent(new Event('change', {bubbles: true})); return true;",
            json!([testid, value]),
        )
        .await;
    assert_eq!(ok, json!(true), "{testid} has no option {value}");
}

/// Moves to `hash` inside the app (as a link would).
async fn go(s: &Session, hash: &str) {
    s.execute("location.hash = arguments[0]", json!([hash]))
        .await;
}

/// An agent as the admin's API sees it.
async fn agent_by_id(server: &TestServer, token: &str, id: &str) -> Value {
    let (status, body) = server.get("/api/agents", Some(token)).await;
    assert_eq!(status, 200, "{body}");
    body["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no agent {id} in {body}"))
}

/// The text of the editor's notice once it contains `part`.
async fn notice_says(s: &Session, what: &str, part: &str) {
    s.wait_for(
        what,
        &format!(
            "(() => {{ const n = document.querySelector('[data-testid=agent-notice]'); \
             return Boolean(n && !n.hidden && n.textContent.includes({})); }})()",
            json!(part)
        ),
    )
    .await;
}

/// Confirms the open confirm dialog after checking it says `part`.
async fn confirm(s: &Session, part: &str) {
    let text = s
        .wait_for(
            "confirm dialog",
            "(() => { const d = document.querySelector('[data-testid=confirm-dialog]'); return d && d.open ? d.textContent : null; })()",
        )
        .await;
    assert!(
        text.as_str().unwrap_or_default().contains(part),
        "the dialog says {part:?}: {text}"
    );
    s.click("confirm", &inbox("confirm-dialog-confirm")).await;
    s.wait_for(
        "dialog closed",
        "!document.querySelector('[data-testid=confirm-dialog]')",
    )
    .await;
}

/// A manager: the role is `manager` on a hub with named roles, `lead` before.
async fn manager(server: &TestServer, admin: &str) -> (TestAgent, &'static str) {
    for role in ["manager", "lead"] {
        let email = format!("{role}-ui@test.local");
        let password = "manager-password-1";
        let (status, body) = server
            .post(
                "/api/agents",
                Some(admin),
                &json!({"email": email, "name": "Morgan Manager", "password": password, "role": role}),
            )
            .await;
        if status == 201 {
            let token = server.login(&email, password).await;
            let agent = TestAgent {
                id: body["agent"]["id"].as_str().expect("id").to_string(),
                email,
                password: password.to_string(),
                token,
                name: "Morgan Manager".into(),
            };
            return (agent, role);
        }
        assert_eq!(status, 400, "creating a {role}: {body}");
    }
    panic!("neither manager nor lead is a role");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_admin_accounts_screens() {
    let Some(_lock) = browser_turn().await else {
        return;
    };
    let server = TestServer::start(Backend::Sqlite).await;
    let admin_token = server.admin_token().await;
    let sales = server.create_team("Sales", "sales").await;
    let (mgr, mgr_role) = manager(&server, &admin_token).await;
    // Named roles (GET /api/roles) offer "sales"; an older hub only admin/lead/agent.
    let (roles_status, _) = server.get("/api/roles", Some(&admin_token)).await;
    let new_role = if roles_status == 200 { "sales" } else { "lead" };
    let (me_status, me) = server.get("/api/auth/me", Some(&admin_token)).await;
    assert_eq!(me_status, 200);
    let admin = TestAgent {
        id: me["agent"]["id"].as_str().expect("id").to_string(),
        email: ADMIN_EMAIL.into(),
        password: ADMIN_PASSWORD.into(),
        token: admin_token.clone(),
        name: me["agent"]["name"].as_str().unwrap_or("Admin").into(),
    };

    let driver = Driver::start().await;
    let d = driver.session_sized(DESKTOP.0, DESKTOP.1).await;
    d.resize(DESKTOP.0, DESKTOP.1).await;
    inbox_login(&d, &server.base, &admin).await;

    // The Settings entry leads to the agents (the first section an admin may open).
    d.click("settings link", &inbox("nav-settings")).await;
    d.wait_for("settings menu", &shown("[data-testid=settings-nav]"))
        .await;
    d.click("agents section", &inbox("settings-nav-agents"))
        .await;
    d.wait_for(
        "agent rows",
        "document.querySelectorAll('[data-testid=agent-row]').length >= 2",
    )
    .await;

    // Invite: empty fields are refused in words, next to each field.
    d.click("invite", &inbox("agent-invite")).await;
    d.wait_for("invite form", &shown("[data-testid=invite-form]"))
        .await;
    d.click("invite submit", &inbox("invite-submit")).await;
    d.wait_for(
        "field errors",
        "document.querySelectorAll('[data-testid=invite-form] .sf-error:not([hidden])').length === 3 \
         && document.querySelector('[data-testid=invite-name]').getAttribute('aria-invalid') === 'true'",
    )
    .await;
    d.type_into("name", &inbox("invite-name"), "Priya Natarajan")
        .await;
    d.type_into("email", &inbox("invite-email"), "priya@test.local")
        .await;
    d.type_into("password", &inbox("invite-password"), "short")
        .await;
    d.click("invite submit", &inbox("invite-submit")).await;
    d.wait_for(
        "password too short",
        "document.querySelector('[data-testid=invite-form]').textContent.includes('at least 8 characters')",
    )
    .await;
    d.check_screen("admin-invite-1366").await;
    d.type_into("password", &inbox("invite-password"), "-and-longer")
        .await;
    choose(&d, "invite-role", "agent").await;
    d.click("invite submit", &inbox("invite-submit")).await;
    let priya_id = d
        .wait_for(
            "the new agent's editor",
            "(() => { const e = document.querySelector('[data-testid=agent-editor]'); return e ? e.dataset.id : null; })()",
        )
        .await
        .as_str()
        .expect("id")
        .to_string();
    notice_says(&d, "invite confirmed", "can now sign in").await;
    let priya = agent_by_id(&server, &admin_token, &priya_id).await;
    assert_eq!(priya["email"], "priya@test.local");
    assert_eq!(priya["role"], "agent");
    assert_eq!(priya["active"], true);
    assert!(
        !priya["team_ids"]
            .as_array()
            .unwrap()
            .contains(&json!(sales)),
        "invited into the default team only: {priya}"
    );

    // Role: the description and the permission list follow the select.
    choose(&d, "edit-role", new_role).await;
    d.click("change role", &inbox("edit-role-save")).await;
    notice_says(&d, "role changed", "is now").await;
    let priya = agent_by_id(&server, &admin_token, &priya_id).await;
    assert_eq!(priya["role"], new_role, "{priya}");
    d.wait_for(
        "role badge in the list",
        &format!(
            "document.querySelector('[data-testid=agent-row][data-id=\"{priya_id}\"] [data-testid=agent-role]').textContent === {}",
            json!(if new_role == "sales" { "Sales" } else { "Manager" })
        ),
    )
    .await;

    // Teams: add to Sales; the chip appears and the hub has the membership.
    choose(&d, "edit-team-add", &sales).await;
    d.click("add to team", &inbox("edit-team-add-submit")).await;
    d.wait_for(
        "Sales chip",
        &format!(
            "Boolean(document.querySelector('[data-testid=team-chip][data-team=\"{sales}\"]'))"
        ),
    )
    .await;
    let priya = agent_by_id(&server, &admin_token, &priya_id).await;
    assert!(
        priya["team_ids"]
            .as_array()
            .unwrap()
            .contains(&json!(sales)),
        "{priya}"
    );
    d.check_screen("admin-agents-1366").await;

    // Deactivate: the dialog says the sessions end; afterwards the hub agrees and
    // refuses the token Priya had.
    let old_token = server.login("priya@test.local", "short-and-longer").await;
    let (status, _) = server.get("/api/auth/me", Some(&old_token)).await;
    assert_eq!(status, 200);
    d.click("deactivate", &inbox("agent-deactivate")).await;
    d.wait_for("dialog", &shown("[data-testid=confirm-dialog]"))
        .await;
    d.check_screen("admin-deactivate-1366").await;
    confirm(&d, "open sessions end at once").await;
    notice_says(&d, "deactivated", "deactivated").await;
    d.wait_for(
        "Deactivated badge in the row",
        &format!(
            "document.querySelector('[data-testid=agent-row][data-id=\"{priya_id}\"] [data-testid=agent-status]').textContent === 'Deactivated'"
        ),
    )
    .await;
    let priya = agent_by_id(&server, &admin_token, &priya_id).await;
    assert_eq!(priya["active"], false, "{priya}");
    let (status, _) = server.get("/api/auth/me", Some(&old_token)).await;
    assert_eq!(status, 401, "a deactivated agent's token is refused");

    // The status filter finds her among the deactivated only.
    choose(&d, "agents-status-filter", "inactive").await;
    d.wait_for(
        "only deactivated rows",
        &format!(
            "(() => {{ const rows = [...document.querySelectorAll('[data-testid=agent-row]')]; \
             return rows.length === 1 && rows[0].dataset.id === '{priya_id}'; }})()"
        ),
    )
    .await;
    choose(&d, "agents-status-filter", "").await;

    // Reactivate.
    d.click("reactivate", &inbox("agent-reactivate")).await;
    confirm(&d, "sign in again").await;
    notice_says(&d, "reactivated", "active again").await;
    let priya = agent_by_id(&server, &admin_token, &priya_id).await;
    assert_eq!(priya["active"], true, "{priya}");

    // The last admin cannot deactivate themselves: the refusal in plain words.
    d.click(
        "the admin's row",
        &format!(
            "document.querySelector('[data-testid=agent-row][data-id=\"{}\"] a')",
            admin.id
        ),
    )
    .await;
    d.wait_for(
        "admin's editor",
        &format!(
            "document.querySelector('[data-testid=agent-editor]')?.dataset.id === '{}'",
            admin.id
        ),
    )
    .await;
    d.click("deactivate self", &inbox("agent-deactivate")).await;
    confirm(&d, "open sessions end at once").await;
    d.wait_for(
        "last admin refusal",
        "(() => { const e = document.querySelector('[data-testid=edit-access-error]'); \
         return Boolean(e && !e.hidden && e.textContent.includes('last active admin') && e.textContent.includes('Make another agent an admin first')); })()",
    )
    .await;
    assert_eq!(
        agent_by_id(&server, &admin_token, &admin.id).await["active"],
        true
    );

    // Teams: create one, add Priya to it.
    d.click("teams section", &inbox("settings-nav-teams")).await;
    d.type_into("team name", &inbox("team-new-name"), "Support EU")
        .await;
    d.wait_for(
        "slug from the name",
        "document.querySelector('[data-testid=team-new-slug]').value === 'support-eu'",
    )
    .await;
    d.click("create team", &inbox("team-new-submit")).await;
    let support = d
        .wait_for(
            "the new team's members",
            "(() => { const e = document.querySelector('[data-testid=team-editor]'); return e ? e.dataset.id : null; })()",
        )
        .await
        .as_str()
        .expect("team id")
        .to_string();
    choose(&d, "team-member-add", &priya_id).await;
    d.click("add member", &inbox("team-member-add-submit"))
        .await;
    d.wait_for(
        "Priya listed",
        &format!("Boolean(document.querySelector('[data-testid=team-member][data-agent=\"{priya_id}\"]'))"),
    )
    .await;
    let priya = agent_by_id(&server, &admin_token, &priya_id).await;
    assert!(
        priya["team_ids"]
            .as_array()
            .unwrap()
            .contains(&json!(support)),
        "{priya}"
    );
    d.check_screen("admin-teams-1366").await;

    // My account, before the phone: the desktop layout.
    d.click("account section", &inbox("settings-nav-account"))
        .await;
    d.wait_for(
        "password form",
        &shown("[data-testid=account-password-form]"),
    )
    .await;
    d.check_screen("admin-account-1366").await;

    // The phone: menu → section → agent, each with a back button.
    d.resize(PHONE.0, PHONE.1).await;
    go(&d, "#/settings").await;
    d.wait_for(
        "menu alone",
        &format!(
            "{} && !{}",
            shown("[data-testid=settings-nav]"),
            shown("#settings-body")
        ),
    )
    .await;
    d.check_screen("admin-settings-390").await;
    d.click("agents section", &inbox("settings-nav-agents"))
        .await;
    d.wait_for(
        "list alone",
        &format!(
            "{} && !{}",
            shown("[data-testid=agent-list]"),
            shown("[data-testid=settings-nav]")
        ),
    )
    .await;
    d.check_screen("admin-agents-390").await;
    d.click(
        "Priya's row",
        &format!("document.querySelector('[data-testid=agent-row][data-id=\"{priya_id}\"] a')"),
    )
    .await;
    d.wait_for(
        "editor alone",
        &format!(
            "{} && !{}",
            shown("[data-testid=agent-editor]"),
            shown("[data-testid=agent-list]")
        ),
    )
    .await;
    d.check_screen("admin-agent-390").await;
    d.click(
        "back to the list",
        "document.querySelector('[data-testid=agent-editor] [data-testid=settings-up]')",
    )
    .await;
    d.wait_for(
        "list again",
        &format!(
            "{} && !{}",
            shown("[data-testid=agent-list]"),
            shown("[data-testid=agent-editor]")
        ),
    )
    .await;
    go(&d, &format!("#/settings/teams/{support}")).await;
    d.wait_for("team members alone", &shown("[data-testid=team-editor]"))
        .await;
    d.check_screen("admin-teams-390").await;
    go(&d, "#/settings/account").await;
    d.wait_for("account", &shown("[data-testid=account-password-form]"))
        .await;
    d.check_screen("admin-account-390").await;

    // Own password: mismatched new passwords are caught before asking the hub;
    // then the change keeps this session (a new token, stored) and ends the others.
    let other_session = server.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let before = d
        .execute(
            "return sessionStorage.getItem('switchboard.agent_token')",
            json!([]),
        )
        .await;
    d.type_into("current", &inbox("account-current"), ADMIN_PASSWORD)
        .await;
    d.type_into("new", &inbox("account-new"), "a-brand-new-passphrase")
        .await;
    d.type_into("again", &inbox("account-again"), "a-different-one")
        .await;
    d.click("change", &inbox("account-submit")).await;
    d.wait_for(
        "mismatch",
        "document.querySelector('[data-testid=account-password-form]').textContent.includes('The two new passwords differ')",
    )
    .await;
    d.execute(
        "document.querySelector('[data-testid=account-again]').value = ''",
        json!([]),
    )
    .await;
    d.type_into("again", &inbox("account-again"), "a-brand-new-passphrase")
        .await;
    // Every connection state from here on: the hub ends this tab's socket too (all
    // of the agent's sessions from before the change), and the inbox must come back
    // with the new token rather than sign out (the old one would be refused).
    d.execute(
        "window.__states = []; const c = document.getElementById('connection-status'); \
         new MutationObserver(() => window.__states.push(c.dataset.state)).observe(c, {attributes: true});",
        json!([]),
    )
    .await;
    d.click("change", &inbox("account-submit")).await;
    d.wait_for(
        "password changed",
        "(() => { const n = document.querySelector('[data-testid=account-done]'); return Boolean(n && !n.hidden && n.textContent.includes('other sessions have ended')); })()",
    )
    .await;
    let after = d
        .execute(
            "return sessionStorage.getItem('switchboard.agent_token')",
            json!([]),
        )
        .await;
    assert_ne!(before, after, "the new token is stored");
    let fresh = after.as_str().expect("stored token").to_string();
    let (status, _) = server.get("/api/auth/me", Some(&fresh)).await;
    assert_eq!(status, 200, "the stored token works");
    let (status, _) = server.get("/api/auth/me", Some(&other_session)).await;
    assert_eq!(status, 401, "another session of the admin ended");
    // This tab stays signed in: its socket comes back with the new token.
    d.wait_for(
        "reconnected with the new token",
        "window.__states.some(s => s !== 'connected') \
         && document.getElementById('connection-status').dataset.state === 'connected' \
         && !document.getElementById('app').hidden",
    )
    .await;
    assert!(
        d.execute(
            "return document.getElementById('login-screen').hidden",
            json!([])
        )
        .await
            == json!(true),
        "not sent back to the login screen"
    );
    server.login(ADMIN_EMAIL, "a-brand-new-passphrase").await;
    d.close().await;

    // A manager: no accounts screens offered, and the address says "not allowed".
    let m = driver.session_sized(DESKTOP.0, DESKTOP.1).await;
    m.resize(DESKTOP.0, DESKTOP.1).await;
    inbox_login(&m, &server.base, &mgr).await;
    m.wait_for("team page offered", &shown("[data-testid=nav-team]"))
        .await;
    m.click("settings link", &inbox("nav-settings")).await;
    m.wait_for("settings menu", &shown("[data-testid=settings-nav]"))
        .await;
    assert_eq!(
        m.execute(
            &format!("return {}", shown("[data-testid=settings-nav-agents]")),
            json!([])
        )
        .await,
        json!(false),
        "a {mgr_role} is not offered Agents & roles"
    );
    go(&m, "#/settings/agents").await;
    m.wait_for(
        "not allowed",
        "(() => { const f = document.querySelector('[data-testid=settings-forbidden]'); \
         return Boolean(f && f.textContent.includes('Your role, Manager, does not include that')); })()",
    )
    .await;
    assert_eq!(
        m.execute(
            "return document.querySelectorAll('[data-testid=agent-row], [data-testid=invite-form]').length",
            json!([])
        )
        .await,
        json!(0),
        "no agent data on the refusal"
    );
    m.check_screen("admin-forbidden-1366").await;
    m.resize(PHONE.0, PHONE.1).await;
    m.check_screen("admin-forbidden-390").await;
    m.close().await;
}
