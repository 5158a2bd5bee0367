//! The audit log page in a real headless Chromium (`web-client/audit.js`): an admin
//! opens `#/audit` from the Settings menu, sees the entries newest first with their
//! changes, filters by an area of actions, and the page holds at 1366 and 390 px in
//! the light and dark schemes (no sideways scrolling, no serious axe violation;
//! screenshots `audit-1366*`, `audit-390*`). SQLite only, like the other browser
//! tests; skipped without Chromium unless `SWITCHBOARD_TEST_REQUIRE_BROWSER=1`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::json;
use switchboard_e2e::browser::{browser_turn, inbox, inbox_login, Driver, DESKTOP, PHONE};
use switchboard_e2e::{Backend, TestAgent, TestServer, ADMIN_EMAIL, ADMIN_PASSWORD};

/// JS expression: the `data-action` of every entry shown, in order.
const SHOWN: &str =
    "[...document.querySelectorAll('[data-testid=audit-entry]')].map(e => e.dataset.action)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_audit_log_lists_filters_and_fits() {
    let Some(_lock) = browser_turn().await else {
        return;
    };
    let server = TestServer::start(Backend::Sqlite).await;
    let admin_token = server.admin_token().await;
    let team = server.default_team_id().await;
    // Something to read: a failed sign-in, an agent created and promoted (which
    // ends its sessions), a widget greeting changed.
    server
        .post(
            "/api/auth/login",
            None,
            &json!({"email": "guess@test.local", "password": "not-the-password"}),
        )
        .await;
    let agent = server.agent("agent").await;
    let (status, body) = server
        .patch(
            &format!("/api/agents/{}", agent.id),
            Some(&admin_token),
            &json!({"role": "manager"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server
        .put(
            &format!("/api/teams/{team}/widget"),
            Some(&admin_token),
            &json!({"greeting": "Welcome! Ask us anything about your trip."}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let driver = Driver::start().await;
    let s = driver.session().await;
    s.resize(DESKTOP.0, DESKTOP.1).await;
    let admin = TestAgent {
        id: String::new(),
        email: ADMIN_EMAIL.into(),
        password: ADMIN_PASSWORD.into(),
        token: admin_token,
        name: "Admin".into(),
    };
    inbox_login(&s, &server.base, &admin).await;
    s.click("settings nav link", &inbox("nav-settings")).await;
    s.click(
        "audit log entry of the settings menu",
        &inbox("settings-nav-audit"),
    )
    .await;
    // Newest first: the admin's own sign-in through the form, then the greeting.
    s.wait_for(
        "the entries, newest first",
        &format!(
            "(a => a[0] === 'auth.login' && a.indexOf('widget.settings_changed') === 1
                && a.indexOf('agent.updated') > 1 && a.includes('auth.login_failed'))({SHOWN})"
        ),
    )
    .await;
    let words = s
        .execute(
            "return document.querySelector('[data-action=\"agent.updated\"]').textContent;",
            json!([]),
        )
        .await;
    let words = words.as_str().unwrap();
    assert!(
        words.contains("Changed an agent") && words.contains("from 127.0.0.1"),
        "{words}"
    );
    // The promotion's changes open with the keyboard's element: a <details>.
    s.click(
        "the changes of the promotion",
        "document.querySelector('[data-action=\"agent.updated\"] summary')",
    )
    .await;
    s.wait_for(
        "role before and after",
        "[...document.querySelectorAll('[data-action=\"agent.updated\"] tbody tr')].some(r => r.textContent === 'roleagentmanager')",
    )
    .await;
    s.check_screen("audit-1366").await;

    // Only the agents area: created, promoted, sessions ended.
    s.execute(
        "const sel = document.querySelector('[data-testid=audit-action]');
         sel.value = 'agent.'; sel.dispatchEvent(new Event('change'));",
        json!([]),
    )
    .await;
    s.wait_for(
        "the agents area only",
        &format!(
            "JSON.stringify({SHOWN}) === JSON.stringify(['agent.tokens_revoked', 'agent.updated', 'agent.created'])"
        ),
    )
    .await;
    s.resize(PHONE.0, PHONE.1).await;
    s.check_screen("audit-390").await;
    s.close().await;
}
