//! Settings → Widget in a real headless Chromium (`web-client/settings-widget.js`):
//! a manager changes the greeting, asks for the visitor's email before chatting and
//! sets business hours; the preview follows every change before anything is saved,
//! open or away; saving reaches what visitors' widgets load (`GET /api/widget/config`).
//! An agent is not offered the section. At 1366 and 390 px, light and dark: no
//! sideways scrolling, no serious axe violation (screenshots `settings-widget-*`).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::json;
use switchboard_e2e::browser::{browser_turn, inbox, inbox_login, Driver, DESKTOP, PHONE};
use switchboard_e2e::{Backend, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_widget_settings_preview_and_save() {
    let Some(_lock) = browser_turn().await else {
        return;
    };
    let server = TestServer::start(Backend::Sqlite).await;
    let manager = server.agent("manager").await;
    let agent = server.agent("agent").await;

    let driver = Driver::start().await;
    let s = driver.session().await;
    s.resize(DESKTOP.0, DESKTOP.1).await;
    inbox_login(&s, &server.base, &manager).await;
    s.click("settings", &inbox("nav-settings")).await;
    s.click("widget settings", &inbox("settings-nav-widget"))
        .await;
    s.wait_for(
        "the team's current greeting",
        &format!("{}.value.length > 0", inbox("widget-greeting")),
    )
    .await;

    // The preview follows the form before anything is saved.
    s.execute(
        "const g = document.querySelector('[data-testid=widget-greeting]');
         g.value = 'Selamat datang! Tanya paket umrah di sini.';
         g.dispatchEvent(new Event('input', {bubbles: true}));
         const e = document.querySelector('[data-testid=widget-field-email]');
         e.click();",
        json!([]),
    )
    .await;
    s.wait_for(
        "the greeting in the preview",
        "document.querySelector('[data-testid=preview-greeting]').textContent === 'Selamat datang! Tanya paket umrah di sini.'",
    )
    .await;
    s.wait_for(
        "the pre-chat form in the preview",
        "document.querySelector('[data-testid=preview-prechat]')?.textContent.includes('Email')",
    )
    .await;
    s.execute(
        "document.querySelector('[data-testid=widget-required]').click();
         document.querySelector('[data-testid=widget-hours-on]').click();
         const m = document.querySelector('[data-testid=widget-preview-mode]');
         m.value = 'closed'; m.dispatchEvent(new Event('change'));",
        json!([]),
    )
    .await;
    s.wait_for(
        "the away message in the preview",
        "Boolean(document.querySelector('[data-testid=preview-away]'))",
    )
    .await;
    let (_, before) = server.get("/api/widget/config?team=default", None).await;
    assert_ne!(
        before["greeting"], "Selamat datang! Tanya paket umrah di sini.",
        "nothing is saved before Save"
    );
    s.check_screen("settings-widget-1366").await;

    s.click("save", &inbox("widget-save")).await;
    s.wait_for(
        "saved",
        &format!("{}.textContent.startsWith('Saved')", inbox("widget-saved")),
    )
    .await;
    let (status, config) = server.get("/api/widget/config?team=default", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        config["greeting"],
        "Selamat datang! Tanya paket umrah di sini."
    );
    assert_eq!(config["prechat_fields"], json!(["email"]));
    assert_eq!(config["prechat_required"], true);
    s.resize(PHONE.0, PHONE.1).await;
    s.check_screen("settings-widget-390").await;
    s.close().await;

    // An agent does not change team settings: no entry, and the address explains.
    let s = driver.session().await;
    s.resize(DESKTOP.0, DESKTOP.1).await;
    inbox_login(&s, &server.base, &agent).await;
    s.click("settings", &inbox("nav-settings")).await;
    let offered = s
        .execute(
            "return !document.querySelector('[data-testid=settings-nav-widget]').closest('li').hidden",
            json!([]),
        )
        .await;
    assert_eq!(offered, false, "agents are not offered the widget settings");
    s.execute("location.hash = '#/settings/widget'", json!([]))
        .await;
    s.wait_for(
        "the not-allowed view",
        "Boolean(document.querySelector('[data-testid=settings-forbidden]'))",
    )
    .await;
    s.close().await;
}

/// Settings → Pipeline: a manager renames a stage, adds one and moves it, adds an
/// intent rule that hands "visa" questions over, and saves; the hub's pipeline is
/// what the form showed, and a customer asking about a visa is handed over at once.
/// A stage without a name is refused in words and nothing is saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_pipeline_settings_edit_and_save() {
    let Some(_lock) = browser_turn().await else {
        return;
    };
    let server = TestServer::start(Backend::Sqlite).await;
    server.manual_routing().await;
    let manager = server.agent("manager").await;
    let team = server.default_team_id().await;

    let driver = Driver::start().await;
    let s = driver.session().await;
    s.resize(DESKTOP.0, DESKTOP.1).await;
    inbox_login(&s, &server.base, &manager).await;
    s.click("settings", &inbox("nav-settings")).await;
    s.click("pipeline settings", &inbox("settings-nav-pipeline"))
        .await;
    s.wait_for(
        "the stages",
        "document.querySelectorAll('[data-testid=pipeline-stage]').length >= 5",
    )
    .await;
    // Type like a person: each input event writes into the form's document.
    let type_js =
        "(el, text) => { el.value = text; el.dispatchEvent(new Event('input', {bubbles: true})); }";
    s.execute(
        &format!(
            "const type = {type_js};
             const names = document.querySelectorAll('[data-testid=pipeline-stage-name]');
             type(names[1], 'Replied');
             document.querySelector('[data-testid=pipeline-add-stage]').click();
             const fresh = [...document.querySelectorAll('[data-testid=pipeline-stage-name]')].pop();
             type(fresh, 'Deposit paid');"
        ),
        json!([]),
    )
    .await;
    // A new stage without a name first: refused in words.
    s.click("add an empty stage", &inbox("pipeline-add-stage"))
        .await;
    s.click("save", &inbox("pipeline-save")).await;
    s.wait_for(
        "the refusal",
        &format!("!{}.hidden", inbox("pipeline-error")),
    )
    .await;
    let (_, unchanged) = server
        .get(&format!("/api/teams/{team}/pipeline"), Some(&manager.token))
        .await;
    assert_eq!(unchanged["stages"][1]["name"], "Contacted", "nothing saved");
    // Remove the empty stage (the last row), add the visa rule, save.
    s.execute(
        &format!(
            "const type = {type_js};
             const rows = document.querySelectorAll('[data-testid=pipeline-stage]');
             rows[rows.length - 1].querySelector('.pl-tools button:last-child').click();
             document.querySelector('[data-testid=pipeline-add-rule]').click();
             type([...document.querySelectorAll('[data-testid=pipeline-rule-intent]')].pop(), 'visa');
             type([...document.querySelectorAll('[data-testid=pipeline-rule-keywords]')].pop(), 'visa, paspor');
             const rule = [...document.querySelectorAll('[data-testid=pipeline-rule]')].pop();
             rule.querySelector('input[type=checkbox]').click();"
        ),
        json!([]),
    )
    .await;
    // The screenshot shows the section from its top.
    s.execute(
        "document.activeElement.blur(); document.getElementById('settings-page').scrollTop = 0;",
        json!([]),
    )
    .await;
    s.check_screen("settings-pipeline-1366").await;
    s.click("save", &inbox("pipeline-save")).await;
    s.wait_for(
        "saved",
        &format!(
            "{}.textContent.startsWith('Saved')",
            inbox("pipeline-saved")
        ),
    )
    .await;
    let (status, cfg) = server
        .get(&format!("/api/teams/{team}/pipeline"), Some(&manager.token))
        .await;
    assert_eq!(status, 200);
    assert_eq!(cfg["stages"][1]["name"], "Replied");
    let keys: Vec<&str> = cfg["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.last(), Some(&"deposit_paid"), "{keys:?}");
    let visa = cfg["rules"].as_array().unwrap().last().unwrap();
    assert_eq!(visa["intent"], "visa");
    assert_eq!(visa["keywords"], json!(["visa", "paspor"]));
    assert_eq!(visa["handover"], true);

    // The rule works: a customer asking about a visa waits for a person.
    let guest = server.guest().await;
    let (status, _) = server
        .post_message(
            &guest.token,
            &guest.conversation_id,
            "v1",
            "Bagaimana dengan visa?",
        )
        .await;
    assert_eq!(status, 201);
    server
        .lead_where(&manager.token, &guest.conversation_id, |l| {
            l["handover_pending"] == true
        })
        .await;
    s.resize(PHONE.0, PHONE.1).await;
    s.check_screen("settings-pipeline-390").await;
    s.close().await;
}
