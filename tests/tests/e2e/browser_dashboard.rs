//! The marketing dashboard in a real headless Chromium (`web-client/dashboard.js`,
//! seed 001): a manager opens `#/dashboard` from the top bar, sees the team's
//! figures and charts and the customer who asked how to pay waiting for a person; a
//! second customer asking the same appears without a reload (live); "Take over"
//! assigns that conversation to the manager and opens it. Marketing, which reads no
//! conversations, opens on the same page, without "Take over" and without errors. At 1366 and 390 px, light and dark: no sideways
//! scrolling, no serious axe violation (screenshots `marketing-dashboard-*`).
//! SQLite only, like the other browser tests.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::json;
use switchboard_e2e::browser::{browser_turn, inbox, inbox_login, Driver, DESKTOP, PHONE};
use switchboard_e2e::{Backend, TestServer};

/// JS expression: how many customers the page lists as waiting for a person.
const WAITING: &str = "document.querySelectorAll('[data-testid=dash-handover]').length";

/// A customer who asks how to pay: the payment intent hands the conversation over.
async fn customer_asking_to_pay(server: &TestServer, token: &str, n: u32) -> String {
    let guest = server.guest().await;
    let conv = guest.conversation_id.clone();
    let (status, _) = server
        .post_message(
            &guest.token,
            &conv,
            &format!("pay-{n}"),
            "Cara bayar? DP berapa ya",
        )
        .await;
    assert_eq!(status, 201);
    server
        .lead_where(token, &conv, |l| l["handover_pending"] == true)
        .await;
    conv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_dashboard_shows_figures_live_handovers_and_takes_over() {
    let Some(_lock) = browser_turn().await else {
        return;
    };
    let server = TestServer::start(Backend::Sqlite).await;
    server.manual_routing().await;
    let manager = server.agent("manager").await;
    let marketing = server.agent("marketing").await;
    let admin = server.admin_token().await;
    let (status, body) = server
        .post(
            "/api/leads",
            Some(&admin),
            &json!({"name": "Dewi", "email": "dewi@fixture.test", "stage": "qualified", "owner_id": manager.id}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let first = customer_asking_to_pay(&server, &manager.token, 1).await;

    let driver = Driver::start().await;
    let s = driver.session().await;
    s.resize(DESKTOP.0, DESKTOP.1).await;
    inbox_login(&s, &server.base, &manager).await;
    s.click("dashboard nav link", &inbox("nav-dashboard")).await;
    s.wait_for("one customer waiting", &format!("{WAITING} === 1"))
        .await;
    // Two leads: the imported one and the customer's; the chart shows the stages.
    s.wait_for(
        "the lead count",
        "document.querySelector('[data-testid=dash-leads]').textContent === '2'",
    )
    .await;
    s.wait_for(
        "stage bars",
        "document.querySelectorAll('[data-testid=dash-stages] .bar').length >= 2",
    )
    .await;
    s.check_screen("marketing-dashboard-1366").await;

    // Live: a second customer asks while the page is open.
    let second = customer_asking_to_pay(&server, &manager.token, 2).await;
    s.wait_for("the second customer, live", &format!("{WAITING} === 2"))
        .await;

    // One click: the oldest waiting customer is the manager's.
    s.click(
        "take over the first customer",
        "document.querySelector('[data-testid=dash-take-over]')",
    )
    .await;
    let opened = s
        .wait_for(
            "the conversation opened",
            "location.hash.startsWith('#/c/') && decodeURIComponent(location.hash.slice(4))",
        )
        .await;
    let opened = opened.as_str().unwrap().to_string();
    assert!(opened == first || opened == second, "opened {opened}");
    let (status, conv) = server
        .get(
            &format!("/api/conversations/{opened}"),
            Some(&manager.token),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(conv["assignee_id"], manager.id.as_str(), "{conv}");
    let lead = server
        .lead_where(&manager.token, &opened, |l| l["handover_pending"] == false)
        .await;
    assert_eq!(lead["owner_id"], manager.id.as_str());
    s.close().await;

    // Marketing reads the figures but answers no one.
    let s = driver.session().await;
    s.resize(PHONE.0, PHONE.1).await;
    inbox_login(&s, &server.base, &marketing).await;
    // No inbox for a role that reads no conversations: the app opens here.
    s.wait_for(
        "marketing opens on the dashboard",
        "location.hash === '#/dashboard'",
    )
    .await;
    s.wait_for("one customer still waiting", &format!("{WAITING} === 1"))
        .await;
    let take_over = s
        .execute(
            "return document.querySelectorAll('[data-testid=dash-take-over]').length",
            json!([]),
        )
        .await;
    assert_eq!(take_over, 0, "marketing cannot take a conversation over");
    s.check_screen("marketing-dashboard-390").await;

    // A phone folds the page links into the Pages menu: closed, they take no room;
    // opened, they have their words and lead on.
    let hidden = s
        .execute(
            "return getComputedStyle(document.getElementById('main-nav')).display",
            json!([]),
        )
        .await;
    assert_eq!(hidden, "none", "the page links are folded away on a phone");
    s.click("the Pages menu", &inbox("nav-menu")).await;
    s.wait_for(
        "the menu open with words",
        &format!(
            "{}.getAttribute('aria-expanded') === 'true' && {}.getBoundingClientRect().width > 100",
            inbox("nav-menu"),
            inbox("nav-settings")
        ),
    )
    .await;
    s.click("Settings in the menu", &inbox("nav-settings"))
        .await;
    s.wait_for(
        "settings, and the menu closed",
        &format!("location.hash.startsWith('#/settings') && {}.getAttribute('aria-expanded') === 'false'", inbox("nav-menu")),
    )
    .await;
    s.close().await;
}
