//! Browser test of Meta message templates (issue 17 §2, `docs/campaigns.md`): an
//! admin opens a WhatsApp conversation, opens the composer's template picker,
//! chooses `trip_reminder`, fills its variables and header image link, sees the
//! live preview and sends it (the fake Graph API receives a `type: template`
//! request); then Settings → Message templates lists the synced templates with
//! their statuses and the WABA's last sync, and "Sync now" syncs again. At
//! 1366×900 and 390×844, light and dark: no sideways scrolling, no serious or
//! critical axe-core violation.
//!
//! SQLite only, like `browser_numbers.rs`: the API is covered on both backends in
//! `templates.rs`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::json;
use switchboard_e2e::browser::{browser_turn, inbox, inbox_login, Driver, DESKTOP, PHONE};
use switchboard_e2e::{
    eventually, meta_text_webhook, whatsapp_config_with_templates, Backend, FakeProvider,
    TestServer,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_templates() {
    let Some(_lock) = browser_turn().await else {
        return;
    };
    let fake = FakeProvider::start().await;
    let base = fake.base.clone();
    let server = TestServer::start_with(Backend::Sqlite, move |cfg| {
        whatsapp_config_with_templates(cfg, &base);
    })
    .await;
    let admin = server.admin_agent().await;
    let token = admin.token.clone();
    server.templates_synced(&token, 4).await;
    let body = meta_text_webhook("16505551234", "wamid.browser-tpl", "Is my trip on?").to_string();
    assert_eq!(server.meta_webhook(body.as_bytes()).await.0, 200);
    let conv = eventually("the conversation", || async {
        server
            .conversations(&token)
            .await
            .first()
            .map(|c| c["id"].as_str().unwrap().to_string())
    })
    .await;

    let driver = Driver::start().await;
    let d = driver.session_sized(DESKTOP.0, DESKTOP.1).await;
    d.resize(DESKTOP.0, DESKTOP.1).await;
    inbox_login(&d, &server.base, &admin).await;
    d.click(
        "the conversation",
        &format!("document.querySelector('[data-testid=conversation-item][data-id=\"{conv}\"]')"),
    )
    .await;
    d.click("template button", &inbox("composer-template"))
        .await;
    d.click(
        "trip_reminder",
        "document.querySelector('[data-testid=template-choice][data-name=trip_reminder]')",
    )
    .await;
    d.execute(
        "const v = ['Ana', 'EBC Trek', '15 March', '$4,788', 'https://example.com/ebc.jpg', 'EBC-2501234']; \
         [...document.querySelectorAll('[data-testid=template-form] .tpk-value')].forEach((el, i) => { \
           el.value = v[i]; el.dispatchEvent(new Event('input', {bubbles: true})); });",
        json!([]),
    )
    .await;
    d.wait_for(
        "the live preview",
        "document.querySelector('[data-testid=template-preview]').textContent.includes('Hi Ana, your EBC Trek trip departs on 15 March')",
    )
    .await;
    d.check_screen("template-picker-1366").await;
    d.click("send", &inbox("template-send")).await;
    let calls = fake
        .wait_for("the template send", |calls| {
            calls
                .iter()
                .any(|c| c.path.ends_with("/messages") && c.body["type"] == "template")
        })
        .await;
    // (The other calls to /messages are read receipts.)
    let sent = calls.iter().find(|c| c.body["type"] == "template").unwrap();
    assert_eq!(sent.status, 200);
    assert_eq!(sent.body["template"]["name"], "trip_reminder");
    d.wait_for(
        "the sent template in the conversation",
        "document.getElementById('message-list').textContent.includes('Balance due: $4,788')",
    )
    .await;

    // Settings → Message templates.
    d.execute("location.hash = '#/settings/templates'", json!([]))
        .await;
    d.wait_for(
        "templates listed",
        "document.querySelectorAll('[data-testid=template-row]').length === 4",
    )
    .await;
    d.wait_for(
        "the WABA's last sync",
        "document.querySelector('[data-testid=templates-waba]').textContent.includes('4 templates')",
    )
    .await;
    let before = fake.calls_to("/message_templates").len();
    d.click("sync now", &inbox("templates-sync")).await;
    fake.wait_for("a new sync", |calls| {
        calls
            .iter()
            .filter(|c| c.path.ends_with("/message_templates"))
            .count()
            > before
    })
    .await;
    d.check_screen("templates-1366").await;

    d.resize(PHONE.0, PHONE.1).await;
    d.execute("location.hash = '#/settings/templates'", json!([]))
        .await;
    d.wait_for(
        "templates listed",
        "document.querySelectorAll('[data-testid=template-row]').length === 4",
    )
    .await;
    d.check_screen("templates-390").await;
    d.close().await;
    fake.stop().await;
}
