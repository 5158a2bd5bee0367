//! Browser test of the agent editor's "Working hours" card (issue 16,
//! `docs/routing.md` "Working hours"): an admin turns "Always available" off, picks a
//! time zone, types ranges, meets the hub's overlap sentence in the card, saves a
//! valid schedule (the API then has it) and goes back to always available. At
//! 1366×900 and 390×844, light and dark: no sideways scrolling, no serious or
//! critical axe-core violation.
//!
//! SQLite only, like `browser_admin.rs`: the API is covered on both backends in
//! `hours.rs`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::{json, Value};
use switchboard_e2e::browser::{browser_turn, inbox, inbox_login, Driver, Session, DESKTOP, PHONE};
use switchboard_e2e::{Backend, TestServer};

/// Replaces the text of the input with `data-testid` `testid` by typing `text`.
async fn fill(s: &Session, testid: &str, text: &str) {
    s.execute(
        "document.querySelector(`[data-testid=\"${arguments[0]}\"]`).value = ''",
        json!([testid]),
    )
    .await;
    s.type_into(testid, &inbox(testid), text).await;
}

/// Waits until the element with `data-testid` `testid` is shown and contains `part`.
async fn says(s: &Session, testid: &str, part: &str) {
    s.wait_for(
        &format!("{testid} to say {part:?}"),
        &format!(
            "(() => {{ const n = document.querySelector('[data-testid={testid}]'); \
             return Boolean(n && !n.hidden && n.textContent.includes({})); }})()",
            json!(part)
        ),
    )
    .await;
}

async fn hours_of(server: &TestServer, token: &str, id: &str) -> Value {
    let (status, body) = server
        .get(&format!("/api/agents/{id}/hours"), Some(token))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Opens the agent's editor and waits for the hours card to have loaded.
async fn open_editor(s: &Session, agent_id: &str) {
    s.execute(
        "location.hash = arguments[0]",
        json!([format!("#/settings/agents/{agent_id}")]),
    )
    .await;
    s.wait_for(
        "hours loaded",
        "(() => { const n = document.querySelector('[data-testid=hours-status]'); \
         return Boolean(n && n.textContent && !n.textContent.startsWith('Loading')); })()",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_hours_card() {
    let Some(_lock) = browser_turn().await else {
        return;
    };
    let server = TestServer::start(Backend::Sqlite).await;
    let admin = server.admin_agent().await;
    let token = admin.token.clone();
    let agent = server.agent_in("agent", None).await;

    let driver = Driver::start().await;
    let d = driver.session_sized(DESKTOP.0, DESKTOP.1).await;
    d.resize(DESKTOP.0, DESKTOP.1).await;
    inbox_login(&d, &server.base, &admin).await;
    open_editor(&d, &agent.id).await;
    says(&d, "hours-status", "Always available").await;

    // Turn the schedule on: the zone and the days appear.
    d.click("always available", &inbox("hours-always")).await;
    d.wait_for(
        "schedule shown",
        "!document.querySelector('[data-testid=hours-schedule]').hidden",
    )
    .await;
    let picked = d
        .execute(
            "const el = document.querySelector('[data-testid=hours-zone]'); \
             if (![...el.options].some(o => o.value === 'Asia/Jakarta')) return false; \
             el.value = 'Asia/Jakarta'; el.dispatchEvent(new Event('change', {bubbles: true})); return true;",
            json!([]),
        )
        .await;
    assert_eq!(picked, json!(true), "Asia/Jakarta is offered");
    fill(&d, "hours-mon", "18:00-09:00").await;
    fill(&d, "hours-tue", "08:00-12:00").await;
    d.click("save hours", &inbox("hours-save")).await;
    says(
        &d,
        "hours-error",
        "Monday 18:00–09:00 overlaps Tuesday 08:00–12:00.",
    )
    .await;
    d.check_screen("agent-hours-1366").await;
    assert_eq!(
        hours_of(&server, &token, &agent.id).await["hours"],
        Value::Null
    );

    // A valid schedule is saved and read back.
    fill(&d, "hours-tue", "09:00-12:00, 13:00-17:00").await;
    d.click("save hours", &inbox("hours-save")).await;
    says(&d, "agent-notice", "Working hours saved.").await;
    let saved = hours_of(&server, &token, &agent.id).await;
    assert_eq!(saved["time_zone"], "Asia/Jakarta", "{saved}");
    assert_eq!(saved["hours"]["mon"], json!(["18:00-09:00"]), "{saved}");
    assert_eq!(
        saved["hours"]["tue"],
        json!(["09:00-12:00", "13:00-17:00"]),
        "{saved}"
    );

    // On a phone the card stacks without sideways scrolling.
    d.resize(PHONE.0, PHONE.1).await;
    open_editor(&d, &agent.id).await;
    d.execute(
        "document.querySelector('[data-testid=agent-hours-card]').scrollIntoView()",
        json!([]),
    )
    .await;
    d.check_screen("agent-hours-390").await;

    // Back to always available.
    d.click("always available", &inbox("hours-always")).await;
    d.click("save hours", &inbox("hours-save")).await;
    says(&d, "agent-notice", "is always available").await;
    assert_eq!(
        hours_of(&server, &token, &agent.id).await["hours"],
        Value::Null
    );
    d.close().await;
}
