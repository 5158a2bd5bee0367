//! End-to-end browser tests: a real headless Chromium (Debian's `chromium`, driven
//! through `chromedriver`) against a real server, for the guest widget, the agent
//! inbox and the team dashboard. SQLite only (the UI does not care about the
//! backend). Skipped with a notice when Chromium is missing, unless
//! `SWITCHBOARD_TEST_REQUIRE_BROWSER=1`. Screenshots land in `docs/screenshots/`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::json;
use switchboard_e2e::browser::{browser_available, inbox, serial, widget, Driver, Session};
use switchboard_e2e::{Backend, TestAgent, TestServer};

/// Logs `agent` into the inbox at `base` through the login form and waits until
/// the socket is connected.
async fn inbox_login(s: &Session, base: &str, agent: &TestAgent) {
    s.goto(&format!("{base}/")).await;
    s.type_into("login email", &inbox("login-email"), &agent.email).await;
    s.type_into("login password", &inbox("login-password"), &agent.password).await;
    s.click("login submit", &inbox("login-submit")).await;
    s.wait_for(
        "inbox connected",
        "document.getElementById('connection-status').dataset.state === 'connected'",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_smoke() {
    if !browser_available() {
        return;
    }
    let _lock = serial().await;
    let server = TestServer::start(Backend::Sqlite).await;
    server.manual_routing().await;
    let agent = server.agent("agent").await;
    let driver = Driver::start().await;
    let visitor = driver.session().await;
    visitor.goto(&server.url("/demo")).await;
    visitor.click("launcher", &widget("launcher")).await;
    visitor.type_into("composer", &widget("composer-input"), "Hello from the demo\u{E007}").await;
    visitor
        .wait_for(
            "message sent",
            &format!("{}.querySelector('[data-testid=message][data-status=sent]')", widget("messages")),
        )
        .await;
    let a = driver.session().await;
    inbox_login(&a, &server.base, &agent).await;
    a.click("conversation", &inbox("conversation-item")).await;
    a.wait_for(
        "message in inbox",
        "[...document.querySelectorAll('[data-testid=message]')].some(m => m.textContent.includes('Hello from the demo'))",
    )
    .await;
    let _ = json!(null);
    visitor.close().await;
    a.close().await;
}
