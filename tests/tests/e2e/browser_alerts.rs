//! The notification centre and the growth sections of Settings in a real headless
//! Chromium (issue 16; `web-client/alerts.js`, `settings-campaigns.js`,
//! `settings-links.js`; `docs/alerts.md`, `docs/admin.md`).
//!
//! Alerts: a manager is signed in; a guest asks "cara bayar? DP berapa" (the
//! payment intent hands the conversation over) → the bell counts 1, a banner says
//! so, the panel lists it with a link that opens the conversation; after a reload
//! it is still listed; at 390 px a second handover's banner does not cover the
//! composer of the open conversation; dismissed, it stays gone after a reload (the
//! hub still lists the lead as waiting, so this is the dismissal's memory).
//!
//! Settings: the manager creates a campaign code through the form and sees it
//! listed (and the hub has it); creates a quick-chat link and sees its QR code and
//! copy button. Every screen at 1366×900 and 390×844, light and dark: no sideways
//! scrolling, no serious or critical axe-core violation (screenshots `alerts-*`,
//! `settings-campaigns-*`, `settings-links-*`). SQLite only, like the other
//! browser tests; the API is covered on both backends in `leads.rs` and
//! `quick_chat.rs`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::json;
use switchboard_e2e::browser::{browser_turn, inbox, inbox_login, Driver, Session, DESKTOP, PHONE};
use switchboard_e2e::{Backend, TestServer};

/// JS expression: the number the bell shows ('' when none).
const COUNT: &str = "document.querySelector('[data-testid=alerts-count]').textContent";

/// JS expression: the alert rows in the panel, as `kind|text`.
const ROWS: &str = "[...document.querySelectorAll('[data-testid=alert-item]')].map(r => r.dataset.kind + '|' + r.textContent)";

/// Has a fresh guest ask how to pay; returns the conversation id.
async fn payment_question(server: &TestServer, n: u32) -> String {
    let guest = server.guest().await;
    let conv = guest.conversation_id.clone();
    let (status, _) = server
        .post_message(&guest.token, &conv, &format!("hi{n}"), "Assalamualaikum")
        .await;
    assert_eq!(status, 201);
    let (status, _) = server
        .post_message(
            &guest.token,
            &conv,
            &format!("pay{n}"),
            "cara bayar? DP berapa",
        )
        .await;
    assert_eq!(status, 201);
    conv
}

/// Opens the bell's panel and waits until it lists `n` alerts.
async fn open_panel(s: &Session, n: usize) {
    s.click("the bell", &inbox("alerts-toggle")).await;
    s.wait_for(
        "the alerts panel",
        &format!("!document.getElementById('alerts-panel').hidden && ({ROWS}).length === {n}"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_alerts_handover_is_shown_kept_and_dismissed() {
    let Some(_lock) = browser_turn().await else {
        return;
    };
    let server = TestServer::start(Backend::Sqlite).await;
    server.manual_routing().await;
    let manager = server.agent("manager").await;

    let driver = Driver::start().await;
    let s = driver.session_sized(DESKTOP.0, DESKTOP.1).await;
    inbox_login(&s, &server.base, &manager).await;
    s.wait_for(
        "the bell",
        "!document.querySelector('[data-testid=alerts-toggle]').hidden",
    )
    .await;
    assert_eq!(s.execute(&format!("return {COUNT};"), json!([])).await, "");

    let conv = payment_question(&server, 1).await;
    s.wait_for("the bell counts one", &format!("{COUNT} === '1'"))
        .await;
    let words = s
        .execute(
            "return document.querySelector('[data-testid=alerts-toggle]').textContent;",
            json!([]),
        )
        .await;
    assert!(words.as_str().unwrap().contains("1 unread"), "{words}");
    s.wait_for(
        "the banner",
        "(b => !b.hidden && b.textContent.includes('needs a person'))(document.querySelector('[data-testid=alerts-banner]'))",
    )
    .await;
    s.check_screen("alerts-banner-1366").await;

    open_panel(&s, 1).await;
    let rows = s.execute(&format!("return {ROWS};"), json!([])).await;
    let first = rows[0].as_str().unwrap();
    assert!(first.starts_with("handover|"), "{first}");
    assert!(
        first.to_lowercase().contains("cara bayar"),
        "the reason quotes the question: {first}"
    );
    s.wait_for("the count is read", &format!("{COUNT} === ''"))
        .await;
    s.check_screen("alerts-1366").await;
    s.click("open the conversation", &inbox("alert-open")).await;
    s.wait_for(
        "the conversation opened",
        &format!(
            "location.hash === '#/c/{conv}' && !document.getElementById('view-body').hidden && document.getElementById('alerts-panel').hidden"
        ),
    )
    .await;

    // Still there after a reload.
    s.refresh().await;
    s.wait_for(
        "inbox connected again",
        "document.getElementById('connection-status').dataset.state === 'connected'",
    )
    .await;
    open_panel(&s, 1).await;
    s.click("close the panel", &inbox("alerts-close")).await;

    // At 390 px, with a conversation open, a new handover's banner sits above the
    // conversation: the composer stays visible and clickable.
    s.resize(PHONE.0, PHONE.1).await;
    s.execute(
        "location.hash = arguments[0]",
        json!([format!("#/c/{conv}")]),
    )
    .await;
    s.wait_for(
        "composer shown",
        "document.getElementById('composer-input').getClientRects().length > 0",
    )
    .await;
    payment_question(&server, 2).await;
    s.wait_for("the bell counts one new", &format!("{COUNT} === '1'"))
        .await;
    let covered = s
        .wait_for(
            "banner and composer measured",
            "(() => { const b = document.querySelector('[data-testid=alerts-banner]'); if (b.hidden) return null;
               const r = b.getBoundingClientRect(), c = document.getElementById('composer').getBoundingClientRect();
               const hit = document.elementFromPoint(c.left + c.width / 2, c.top + c.height / 2);
               return {overlap: r.bottom > c.top && r.top < c.bottom, composer_on_top: Boolean(hit && document.getElementById('composer').contains(hit)),
                       composer_in_view: c.bottom <= innerHeight + 1 && c.top >= 0}; })()",
        )
        .await;
    assert_eq!(
        covered,
        json!({"overlap": false, "composer_on_top": true, "composer_in_view": true}),
        "the banner covers the composer"
    );
    s.check_screen("alerts-banner-390").await;
    open_panel(&s, 2).await;
    s.check_screen("alerts-390").await;

    // Dismissed: gone, and still gone after a reload although the hub still lists
    // both leads as waiting for a person.
    s.click("dismiss the newest", &inbox("alert-dismiss")).await;
    s.wait_for("one left", &format!("({ROWS}).length === 1"))
        .await;
    s.click("dismiss all", &inbox("alerts-clear")).await;
    let (status, body) = server
        .get("/api/leads?handover=true", Some(&manager.token))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["leads"].as_array().unwrap().len(), 2, "{body}");
    s.refresh().await;
    s.wait_for(
        "inbox connected again",
        "document.getElementById('connection-status').dataset.state === 'connected'",
    )
    .await;
    open_panel(&s, 0).await;
    s.wait_for(
        "the empty panel",
        "document.getElementById('alerts-list').textContent.includes('Nothing needs you')",
    )
    .await;
    assert_eq!(s.execute(&format!("return {COUNT};"), json!([])).await, "");
    s.click("close the panel", &inbox("alerts-close")).await;

    // An overdue task of the first lead: an alert linking to its conversation.
    let lead = server.lead_where(&manager.token, &conv, |_| true).await;
    let lead_id = lead["id"].as_str().unwrap();
    let (_, t) = server
        .get(
            &format!("/api/leads/{lead_id}/timeline"),
            Some(&manager.token),
        )
        .await;
    let now = t["timeline"].as_array().unwrap().last().unwrap()["at_ms"]
        .as_i64()
        .unwrap();
    let (status, task) = server
        .post(
            &format!("/api/leads/{lead_id}/tasks"),
            Some(&manager.token),
            &json!({"title": "Call back about the DP", "due_at": now - 1000, "assignee_id": manager.id}),
        )
        .await;
    assert_eq!(status, 201, "{task}");
    s.wait_for("the bell counts the task", &format!("{COUNT} === '1'"))
        .await;
    open_panel(&s, 1).await;
    s.wait_for(
        "the task alert with its conversation",
        &format!(
            "(r => r && r.dataset.kind === 'task_due' && r.textContent.includes('Task overdue: Call back about the DP')
               && r.querySelector('[data-testid=alert-open]')?.getAttribute('href') === '#/c/{conv}')
             (document.querySelector('[data-testid=alert-item]'))"
        ),
    )
    .await;
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_settings_campaign_codes_and_quick_links() {
    let Some(_lock) = browser_turn().await else {
        return;
    };
    let server = TestServer::start(Backend::Sqlite).await;
    let manager = server.agent("manager").await;

    let driver = Driver::start().await;
    let s = driver.session_sized(DESKTOP.0, DESKTOP.1).await;
    inbox_login(&s, &server.base, &manager).await;
    s.click("settings", &inbox("nav-settings")).await;
    s.click("campaign codes", &inbox("settings-nav-campaigns"))
        .await;
    s.wait_for("the empty list", "document.querySelector('[data-testid=campaign-list]').textContent.includes('No campaign codes')")
        .await;

    // A bad code is refused in words; a good one is created and listed.
    s.type_into("code", &inbox("campaign-code"), "umrah march")
        .await;
    s.click("create", &inbox("campaign-submit")).await;
    s.wait_for(
        "the code's error",
        "document.querySelector('[data-testid=campaign-code]').getAttribute('aria-invalid') === 'true'",
    )
    .await;
    s.execute(
        "document.querySelector('[data-testid=campaign-code]').value = ''",
        json!([]),
    )
    .await;
    s.type_into("code", &inbox("campaign-code"), "UMR_MAR_2025_HEMAT")
        .await;
    s.type_into(
        "package",
        &inbox("campaign-package-name"),
        "Umrah Hemat Maret",
    )
    .await;
    s.type_into("price", &inbox("campaign-price"), "28500000")
        .await;
    s.type_into("currency", &inbox("campaign-currency"), "IDR")
        .await;
    s.type_into("duration", &inbox("campaign-duration-days"), "9")
        .await;
    s.click("create", &inbox("campaign-submit")).await;
    s.wait_for(
        "the code listed",
        "(r => r && r.textContent.includes('Umrah Hemat Maret') && r.textContent.includes('9 days'))(document.querySelector('[data-testid=campaign-row][data-code=UMR_MAR_2025_HEMAT]'))",
    )
    .await;
    let (status, code) = server
        .get(
            "/api/campaign-codes/UMR_MAR_2025_HEMAT",
            Some(&manager.token),
        )
        .await;
    assert_eq!(status, 200, "{code}");
    assert_eq!(code["price"], 28_500_000);
    assert_eq!(code["duration_days"], 9);
    s.check_screen("settings-campaigns-1366").await;

    // Edit: the form takes the code's values; the new name is listed and stored.
    s.click("edit", &inbox("campaign-edit")).await;
    s.wait_for(
        "the form filled",
        "document.querySelector('[data-testid=campaign-package-name]').value === 'Umrah Hemat Maret'",
    )
    .await;
    s.execute(
        "document.querySelector('[data-testid=campaign-package-name]').value = ''",
        json!([]),
    )
    .await;
    s.type_into(
        "package",
        &inbox("campaign-package-name"),
        "Umrah Hemat Maret Plus",
    )
    .await;
    s.click("save", &inbox("campaign-submit")).await;
    s.wait_for(
        "the new name listed",
        "document.querySelector('[data-testid=campaign-row]').textContent.includes('Maret Plus')",
    )
    .await;
    // Deactivate, after the dialog: listed as inactive, stored as inactive.
    s.click("deactivate", &inbox("campaign-deactivate")).await;
    s.click("confirm", &inbox("confirm-dialog-confirm")).await;
    s.wait_for(
        "listed as inactive",
        "document.querySelector('[data-testid=campaign-row]').textContent.includes('Inactive')",
    )
    .await;
    let (_, code) = server
        .get(
            "/api/campaign-codes/UMR_MAR_2025_HEMAT",
            Some(&manager.token),
        )
        .await;
    assert_eq!(code["package_name"], "Umrah Hemat Maret Plus");
    assert_eq!(code["active"], 0, "{code}");
    s.resize(PHONE.0, PHONE.1).await;
    s.check_screen("settings-campaigns-390").await;

    // A quick-chat link: its address, QR code, copy button and counts.
    s.resize(DESKTOP.0, DESKTOP.1).await;
    s.execute("location.hash = '#/settings/links'", json!([]))
        .await;
    s.type_into("source", &inbox("link-source"), "linkedin")
        .await;
    s.type_into("handle", &inbox("link-handle"), "morgan").await;
    s.click("create link", &inbox("link-submit")).await;
    let url = s
        .wait_for(
            "the link listed",
            "(r => r ? r.querySelector('[data-testid=link-url]').textContent : null)(document.querySelector('[data-testid=link-row][data-source=linkedin]'))",
        )
        .await;
    assert_eq!(url, json!(format!("{}/q/morgan/linkedin", server.base)));
    s.wait_for(
        "the QR code drawn",
        "(i => i && i.complete && i.naturalWidth > 40 && i.src.startsWith('data:image/'))(document.querySelector('[data-testid=link-qr]'))",
    )
    .await;
    let counts = s
        .execute(
            "return document.querySelector('[data-testid=link-counts]').textContent;",
            json!([]),
        )
        .await;
    assert_eq!(counts, json!("0 visits · 0 conversations"));
    s.wait_for(
        "copy button",
        "Boolean(document.querySelector('[data-testid=link-copy]'))",
    )
    .await;
    s.check_screen("settings-links-1366").await;
    s.resize(PHONE.0, PHONE.1).await;
    s.check_screen("settings-links-390").await;
    s.close().await;
}
