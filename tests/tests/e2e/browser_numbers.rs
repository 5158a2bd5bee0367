//! Browser test of Settings → WhatsApp numbers (issue 17,
//! `docs/channels/whatsapp.md`): the env numbers are listed read-only; a WAHA
//! session reported FAILED turns its badge red and raises the banner and the
//! alerts bell live; an admin adds a Meta number through the form with write-only
//! secrets (the API then says they are set, the page never shows them). At
//! 1366×900 and 390×844, light and dark: no sideways scrolling, no serious or
//! critical axe-core violation.
//!
//! SQLite only, like `browser_hours.rs`: the API is covered on both backends in
//! `whatsapp_numbers.rs`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::{json, Value};
use switchboard_e2e::browser::{browser_turn, inbox, inbox_login, Driver, Session, DESKTOP, PHONE};
use switchboard_e2e::{
    wa_fixture_json, waha_hmac, whatsapp_config, Backend, FakeProvider, TestServer,
};

/// Replaces the text of the input with `data-testid` `testid` by typing `text`.
async fn fill(s: &Session, testid: &str, text: &str) {
    s.execute(
        "document.querySelector(`[data-testid=\"${arguments[0]}\"]`).value = ''",
        json!([testid]),
    )
    .await;
    s.type_into(testid, &inbox(testid), text).await;
}

/// Waits until some element with `data-testid` `testid` is shown and contains `part`.
async fn says(s: &Session, testid: &str, part: &str) {
    s.wait_for(
        &format!("{testid} to say {part:?}"),
        &format!(
            "[...document.querySelectorAll('[data-testid={testid}]')].some(n => !n.hidden && n.textContent.includes({}))",
            json!(part)
        ),
    )
    .await;
}

async fn open_numbers(s: &Session) {
    s.execute("location.hash = '#/settings/numbers'", json!([]))
        .await;
    s.wait_for(
        "numbers listed",
        "document.querySelectorAll('[data-testid=number-row]').length >= 2",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_whatsapp_numbers() {
    let Some(_lock) = browser_turn().await else {
        return;
    };
    let fake = FakeProvider::start().await;
    let base = fake.base.clone();
    let server =
        TestServer::start_with(Backend::Sqlite, move |cfg| whatsapp_config(cfg, &base)).await;
    let admin = server.admin_agent().await;
    let token = admin.token.clone();
    let sales = server.create_team("Sales", "sales").await;
    let (status, waha) = server
        .post(
            "/api/whatsapp/numbers",
            Some(&token),
            &json!({"provider": "waha", "label": "Sales WAHA", "team_id": sales,
                "waha_url": fake.base, "waha_session": "sales", "hmac_key": "sales-hmac"}),
        )
        .await;
    assert_eq!(status, 201, "{waha}");

    let driver = Driver::start().await;
    let d = driver.session_sized(DESKTOP.0, DESKTOP.1).await;
    d.resize(DESKTOP.0, DESKTOP.1).await;
    inbox_login(&d, &server.base, &admin).await;
    open_numbers(&d).await;
    says(&d, "number-list", "Meta (environment)").await;
    says(&d, "webhook-meta", "/webhooks/whatsapp").await;

    // The session fails: its badge, the banner and the bell say so at once.
    let mut event = wa_fixture_json("waha_session_status.json");
    event["session"] = json!("sales");
    event["payload"]["status"] = json!("FAILED");
    let body = event.to_string().into_bytes();
    let sig = waha_hmac("sales-hmac", &body);
    let (status, _) = server
        .post_webhook("/webhooks/waha", body, &[("x-webhook-hmac", sig)])
        .await;
    assert_eq!(status, 200);
    says(&d, "number-status", "Failed").await;
    says(&d, "number-attention", "Sales WAHA has failed").await;
    d.wait_for(
        "the alert bell",
        "Boolean(document.querySelector('[data-testid=alert-item][data-kind=number_status]'))",
    )
    .await;

    // Add a Meta number through the form.
    d.click("add", &inbox("number-add")).await;
    fill(&d, "number-label", "Sales Meta").await;
    d.execute(
        "const el = document.querySelector('[data-testid=number-team-select]'); \
         el.value = arguments[0]; el.dispatchEvent(new Event('change', {bubbles: true}));",
        json!([sales]),
    )
    .await;
    fill(&d, "number-pnid", "12ab").await;
    d.click("submit", &inbox("number-submit")).await;
    says(&d, "number-form", "digits only").await;
    fill(&d, "number-pnid", "222333444555").await;
    fill(&d, "number-access_token", "EAAG-browser-token").await;
    fill(&d, "number-app_secret", "browser-app-secret").await;
    d.check_screen("settings-numbers-form-1366").await;
    d.click("submit", &inbox("number-submit")).await;
    says(&d, "number-list", "Sales Meta").await;
    let (_, list) = server.get("/api/whatsapp/numbers", Some(&token)).await;
    let added: &Value = list["numbers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["label"] == "Sales Meta")
        .expect("added");
    assert_eq!(added["secrets"]["access_token"], "set");
    assert_eq!(added["secrets"]["app_secret"], "set");
    assert_eq!(added["team_id"], sales.as_str());
    let page = d
        .execute("return document.body.innerHTML", json!([]))
        .await
        .to_string();
    assert!(!page.contains("EAAG-browser-token") && !page.contains("browser-app-secret"));
    d.check_screen("settings-numbers-1366").await;

    // On a phone the cards stack without sideways scrolling.
    d.resize(PHONE.0, PHONE.1).await;
    open_numbers(&d).await;
    d.check_screen("settings-numbers-390").await;
    d.close().await;
    fake.stop().await;
}
