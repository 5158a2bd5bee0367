//! Browser test of the Broadcasts page (issue 17 §4, `docs/campaigns.md`, "The
//! Broadcasts page"): an admin sets the Meta number's sending pace in Settings →
//! WhatsApp numbers, opens Broadcasts from the top bar, creates a broadcast through
//! the wizard — name and number, template `promo_umroh` (`id`) with its four body
//! variables mapped to the contact's name and three fixed texts and a live preview,
//! the "Everyone" segment with its count, send now — confirms it, and watches the
//! live progress reach "done" with every copy sent; the fake Graph API received one
//! template per customer with the contact's name. A second one is scheduled in
//! Asia/Jakarta time (a past time is refused in the form, the retry edits the same
//! draft), shows Send now / Unschedule / Edit / Cancel, opens the wizard on what
//! was saved when edited, and is cancelled through the confirm dialog. Marketing,
//! who may not list the numbers, is still offered the Meta number. The list, the
//! wizard and the broadcast's page are checked at 1366×900 and 390×844, light and
//! dark: no sideways scrolling, no serious or critical axe-core violation
//! (screenshots in `docs/screenshots/` with `SWITCHBOARD_UPDATE_SCREENSHOTS=1`). On
//! both backends.

// Test bodies run inside the `both_backends!` helpers, which clippy does not see as
// tests; a panic with a message is how a test reports a broken expectation.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::{json, Value};
use switchboard_e2e::browser::{browser_turn, inbox, inbox_login, Session, DESKTOP, PHONE};
use switchboard_e2e::{
    both_backends, eventually, meta_text_webhook, whatsapp_config_with_templates, FakeProvider,
    TestServer,
};

/// Customers who wrote in (the segment "Everyone").
const CUSTOMERS: usize = 3;

fn phone(i: usize) -> String {
    format!("62812{i:07}")
}

/// Sets select `testid` to `value` the way a user does (a `change` event).
async fn choose(d: &Session, testid: &str, value: &str) {
    let expr = format!("document.querySelector('[data-testid={testid}]')");
    d.choose(testid, &expr, value).await;
}

/// Types into the `n`th element matching `selector` (an `input` event).
async fn fill(d: &Session, selector: &str, n: usize, text: &str) {
    d.fill(
        &format!("document.querySelectorAll({})[{n}]", json!(selector)),
        text,
    )
    .await;
}

/// Waits for wizard step `n` (1-based).
async fn at_step(d: &Session, n: usize) {
    d.wait_for(
        &format!("wizard step {n}"),
        &format!(
            "(document.querySelector('[data-testid=bc-wizard-title]') || {{}}).textContent?.startsWith('Step {n} of')"
        ),
    )
    .await;
}

/// Wizard steps 1 and 2: `name`, the Meta number, promo_umroh with its variables.
async fn name_and_content(d: &Session, name: &str) {
    d.click("new broadcast", &inbox("bc-new")).await;
    at_step(d, 1).await;
    d.type_into("name", &inbox("bc-name"), name).await;
    choose(d, "bc-number", "env-meta").await;
    d.click("next", &inbox("bc-wizard-next")).await;
    at_step(d, 2).await;
    choose(d, "bc-template", "promo_umroh|id").await;
    d.wait_for(
        "four variables",
        "document.querySelectorAll('[data-testid=bc-var]').length === 4",
    )
    .await;
    for (i, text) in ["Umroh Hemat Maret", "15 Maret 2026", "12"]
        .iter()
        .enumerate()
    {
        d.execute(
            "const s = document.querySelectorAll('[data-testid=bc-var-source]')[arguments[0]]; \
             s.value = 'text'; s.dispatchEvent(new Event('change', {bubbles: true}));",
            json!([i + 1]),
        )
        .await;
        fill(d, "[data-testid=bc-var-text]", i + 1, text).await;
    }
    d.wait_for(
        "the live preview",
        "document.querySelector('[data-testid=bc-preview]').textContent.includes('Paket Umroh Hemat Maret berangkat 15 Maret 2026, sisa 12 kursi')",
    )
    .await;
}

both_backends! {
    async fn broadcasts_page(backend) {
        let Some(_lock) = browser_turn().await else {
            return;
        };
        let fake = FakeProvider::start().await;
        let base = fake.base.clone();
        let server = TestServer::start_with(backend, move |cfg| {
            whatsapp_config_with_templates(cfg, &base);
        })
        .await;
        let admin = server.admin_agent().await;
        let token = admin.token.clone();
        server.templates_synced(&token, 4).await;
        for i in 0..CUSTOMERS {
            let body = meta_text_webhook(&phone(i), &format!("wamid.bc-{i}"), "Halo").to_string();
            assert_eq!(server.meta_webhook(body.as_bytes()).await.0, 200);
        }
        eventually("contacts stored", || async {
            let (_, body) = server.get("/api/contacts?limit=1", Some(&token)).await;
            (body["total"].as_i64() == Some(CUSTOMERS as i64)).then_some(())
        })
        .await;
        let (status, body) = server
            .post("/api/segments", Some(&token), &json!({"name": "Everyone", "filter": {}}))
            .await;
        assert_eq!(status, 201, "{body}");

        let driver = switchboard_e2e::browser::Driver::start().await;
        let d = driver.session_sized(DESKTOP.0, DESKTOP.1).await;
        d.resize(DESKTOP.0, DESKTOP.1).await;
        inbox_login(&d, &server.base, &admin).await;

        // Settings → WhatsApp numbers → the Meta number's sending pace.
        d.execute("location.hash = '#/settings/numbers'", json!([])).await;
        d.click(
            "the Meta number's pace",
            "document.querySelector('[data-testid=number-row][data-id=\"env-meta\"] [data-testid=number-pace]')",
        )
        .await;
        d.wait_for(
            "the pace read from the hub",
            "document.querySelector('[data-testid=pace-per-second]').value === '80'",
        )
        .await;
        fill(&d, "[data-testid=pace-per-second]", 0, "1000").await;
        choose(&d, "pace-limit", "unlimited").await;
        d.check_screen("numbers-pace-1366").await;
        d.click("save the pace", &inbox("pace-save")).await;
        d.wait_for(
            "the pace form closed",
            "!document.querySelector('[data-testid=pace-form]')",
        )
        .await;
        let (status, pace) = server
            .get("/api/whatsapp/numbers/env-meta/pace", Some(&token))
            .await;
        assert_eq!(status, 200, "{pace}");
        assert_eq!(
            pace["pace"],
            json!({"provider": "meta", "per_second": 1000, "limit": "unlimited"})
        );

        // Broadcasts, from the top bar: empty at first.
        d.click("Broadcasts", &inbox("nav-broadcasts")).await;
        d.wait_for("no broadcast yet", &format!("{} !== null", inbox("bc-empty")))
            .await;

        // The wizard.
        name_and_content(&d, "March umroh promo").await;
        d.check_screen("broadcast-wizard-1366").await;
        d.click("next", &inbox("bc-wizard-next")).await;
        at_step(&d, 3).await;
        let segment = body["segment"]["id"].as_str().unwrap().to_string();
        choose(&d, "bc-segment", &segment).await;
        d.wait_for(
            "the segment's size",
            &format!(
                "(document.querySelector('[data-testid=bc-audience-count]') || {{}}).textContent === '{CUSTOMERS} contacts match today'"
            ),
        )
        .await;
        d.click("next", &inbox("bc-wizard-next")).await;
        at_step(&d, 4).await;
        d.wait_for(
            "send now by default",
            "document.querySelector('[data-testid=bc-when-now]').checked",
        )
        .await;
        d.click("next", &inbox("bc-wizard-next")).await;
        at_step(&d, 5).await;
        d.wait_for(
            "the review",
            "document.querySelector('[data-testid=bc-review]').textContent.includes('Template promo_umroh (id)')",
        )
        .await;
        d.check_screen("broadcast-review-1366").await;
        d.click("send now", &inbox("bc-wizard-next")).await;

        // Its page: live progress until done.
        d.wait_for(
            "the broadcast's page",
            &format!("{} !== null", inbox("bc-detail")),
        )
        .await;
        d.wait_for(
            "done, every copy sent",
            &format!(
                "document.querySelector('[data-testid=bc-detail]').dataset.state === 'done' \
                 && document.querySelector('[data-testid=bc-stat-sent] strong').textContent === '{CUSTOMERS}' \
                 && document.querySelector('[data-testid=bc-progress-text]').textContent === '{CUSTOMERS} sent of {CUSTOMERS}'"
            ),
        )
        .await;
        d.check_screen("broadcast-detail-1366").await;
        let sends: Vec<Value> = fake
            .calls_to("/messages")
            .into_iter()
            .filter(|c| c.body["type"] == "template")
            .map(|c| c.body)
            .collect();
        assert_eq!(sends.len(), CUSTOMERS, "{sends:?}");
        for i in 0..CUSTOMERS {
            let one = sends
                .iter()
                .find(|b| b["to"] == phone(i))
                .unwrap_or_else(|| panic!("no copy to {}: {sends:?}", phone(i)));
            assert_eq!(one["template"]["name"], "promo_umroh");
            assert_eq!(one["template"]["language"]["code"], "id");
            let params = &one["template"]["components"][0]["parameters"];
            assert_eq!(params.as_array().map_or(0, Vec::len), 4, "{one}");
            assert!(params[0]["text"].as_str().is_some_and(|s| !s.is_empty()), "{one}");
            assert_eq!(params[1]["text"], "Umroh Hemat Maret");
            assert_eq!(params[2]["text"], "15 Maret 2026");
            assert_eq!(params[3]["text"], "12");
        }

        // The list.
        d.click("all broadcasts", &inbox("bc-up")).await;
        d.wait_for(
            "the broadcast listed as done",
            "document.querySelector('[data-testid=bc-row] [data-testid=bc-state]')?.dataset.state === 'done'",
        )
        .await;
        d.check_screen("broadcasts-1366").await;

        // Another, scheduled in Jakarta time: a time in the past is refused in the
        // form (422), a later one schedules it; then it is cancelled (asked first).
        name_and_content(&d, "Christmas greetings").await;
        d.click("next", &inbox("bc-wizard-next")).await;
        at_step(&d, 3).await;
        choose(&d, "bc-segment", &segment).await;
        d.click("next", &inbox("bc-wizard-next")).await;
        at_step(&d, 4).await;
        d.click("schedule", &inbox("bc-when-later")).await;
        choose(&d, "bc-zone", "Asia/Jakarta").await;
        fill(&d, "[data-testid=bc-send-at]", 0, "2020-01-01T09:00").await;
        d.click("next", &inbox("bc-wizard-next")).await;
        at_step(&d, 5).await;
        d.click("schedule", &inbox("bc-wizard-next")).await;
        d.wait_for(
            "the hub's refusal in the form",
            "!document.querySelector('[data-testid=bc-wizard-error]').hidden \
             && document.querySelector('[data-testid=bc-wizard-error]').textContent.length > 0",
        )
        .await;
        d.click("back", &inbox("bc-wizard-back")).await;
        at_step(&d, 4).await;
        fill(&d, "[data-testid=bc-send-at]", 0, "2030-12-24T09:00").await;
        d.click("next", &inbox("bc-wizard-next")).await;
        at_step(&d, 5).await;
        d.click("schedule", &inbox("bc-wizard-next")).await;
        d.wait_for(
            "scheduled, with its buttons",
            "document.querySelector('[data-testid=bc-detail]')?.dataset.state === 'scheduled' \
             && ['bc-send', 'bc-unschedule', 'bc-edit', 'bc-cancel'].every(t => document.querySelector(`[data-testid=${t}]`))",
        )
        .await;
        let (_, list) = server.get("/api/broadcasts", Some(&token)).await;
        let all = list["broadcasts"].as_array().unwrap();
        assert_eq!(all.len(), 2, "one draft, edited on the retry: {list}");
        let xmas = all.iter().find(|b| b["name"] == "Christmas greetings").unwrap();
        assert_eq!(xmas["state"], "scheduled");
        assert_eq!(xmas["time_zone"], "Asia/Jakarta");
        assert!(
            xmas["send_at"].as_str().unwrap().starts_with("2030-12-24T02:00:00"),
            "{xmas}"
        );
        // Edit opens the wizard on what was saved; leaving it returns here.
        d.click("edit", &inbox("bc-edit")).await;
        at_step(&d, 1).await;
        d.wait_for(
            "the saved name",
            "document.querySelector('[data-testid=bc-name]').value === 'Christmas greetings'",
        )
        .await;
        d.click("next", &inbox("bc-wizard-next")).await;
        at_step(&d, 2).await;
        d.wait_for(
            "the saved template and variables",
            "document.querySelector('[data-testid=bc-template]').value === 'promo_umroh|id' \
             && document.querySelectorAll('[data-testid=bc-var-text]')[3].value === '12'",
        )
        .await;
        d.click("leave the wizard", &inbox("bc-wizard-cancel")).await;
        d.wait_for(
            "back on its page",
            "document.querySelector('[data-testid=bc-detail]')?.dataset.state === 'scheduled'",
        )
        .await;
        d.click("cancel", &inbox("bc-cancel")).await;
        d.click("confirm", &inbox("bc-confirm-confirm")).await;
        d.wait_for(
            "cancelled, no buttons",
            "document.querySelector('[data-testid=bc-detail]')?.dataset.state === 'cancelled' \
             && !document.querySelector('[data-testid=bc-cancel]')",
        )
        .await;

        // A phone (the toasts of the desktop part would cover its top bar).
        d.resize(PHONE.0, PHONE.1).await;
        d.execute("document.getElementById('toasts').replaceChildren()", json!([]))
            .await;
        d.execute("location.hash = '#/broadcasts'", json!([])).await;
        d.wait_for("the list", "document.querySelectorAll('[data-testid=bc-row]').length === 2")
            .await;
        d.check_screen("broadcasts-390").await;
        d.click(
            "the broadcast that was sent",
            "[...document.querySelectorAll('[data-testid=bc-row]')].find(r => r.querySelector('[data-state=done]')).querySelector('a')",
        )
        .await;
        d.wait_for(
            "its page",
            "document.querySelector('[data-testid=bc-detail]')?.dataset.state === 'done'",
        )
        .await;
        d.check_screen("broadcast-detail-390").await;
        d.click("all broadcasts", &inbox("bc-up")).await;
        name_and_content(&d, "Draft on a phone").await;
        d.check_screen("broadcast-wizard-390").await;
        d.click("cancel the wizard", &inbox("bc-wizard-cancel")).await;
        d.wait_for("the list again", &format!("{} !== null", inbox("bc-list")))
            .await;
        let (_, list) = server.get("/api/broadcasts", Some(&token)).await;
        assert_eq!(list["broadcasts"].as_array().map_or(0, Vec::len), 2, "{list}");

        // Marketing (campaigns.send without accounts.manage) may not list the
        // numbers: the wizard offers the Meta numbers of the templates' WABAs.
        let marketing = server.agent("marketing").await;
        d.click("log out", &inbox("logout")).await;
        inbox_login(&d, &server.base, &marketing).await;
        d.execute("location.hash = '#/broadcasts/new'", json!([])).await;
        choose(&d, "bc-number", "env-meta").await;
        d.close().await;
        fake.stop().await;
    }
}
