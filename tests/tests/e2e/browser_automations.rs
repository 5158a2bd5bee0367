//! Browser test of the Automations page (issue 17 §5, `docs/automations.md`, "The
//! Automations page"; `web-client/settings-automations.js`): an admin opens
//! Settings → Automations and sees the team's three defaults, off, with their
//! triggers in words; switching on "No reply follow-up" is refused and the hub's
//! message ("Step 1: choose what to send.") shows on its card, which stays off.
//! "Welcome new lead" is edited — its text changed, an "add tag" step added with a
//! tag made through the API — saved (the API confirms) and switched on. A WhatsApp
//! customer then writes in through the fake Graph API: the new lead starts a run,
//! the fake provider receives the new welcome text, the contact gets the tag, and
//! the automation's recent runs show the run as done, step "2 of 2". A new
//! automation (tag added → a task due in 2 hours) is created off, then deleted after
//! the confirm dialog. On a phone the "No reply follow-up" editor gets an approved
//! template with its variables mapped and a live preview (left unsaved). An agent
//! without `campaigns.manage` has no menu entry and gets "not available to you". The list, the editor and the runs are
//! checked at 1366×900 and 390×844, light and dark: no sideways scrolling, no
//! serious or critical axe-core violation (screenshots in `docs/screenshots/` with
//! `SWITCHBOARD_UPDATE_SCREENSHOTS=1`). On both backends.

// Test bodies run inside the `both_backends!` helpers, which clippy does not see as
// tests; a panic with a message is how a test reports a broken expectation.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::{json, Value};
use switchboard_e2e::browser::{browser_turn, inbox, inbox_login, Session, DESKTOP, PHONE};
use switchboard_e2e::{
    both_backends, eventually, meta_text_webhook, whatsapp_config_with_templates, FakeProvider,
    TestServer,
};

/// The customer who writes in.
const CUSTOMER: &str = "6281299887766";
/// The welcome text the marketer writes.
const WELCOME: &str =
    "Welcome to Switchboard Travel! A member of our team will reply within the hour.";

/// JS expression: the list has the hub's answer of this visit (not the last one's
/// cards).
const LIST_READY: &str =
    "document.querySelector('[data-testid=au-list]')?.dataset.state === 'ready'";

/// JS expression: the card of the automation with preset `preset`.
fn card(preset: &str) -> String {
    format!("document.querySelector('[data-testid=au-card][data-preset={preset}]')")
}

/// The team's automations through the API, by preset.
async fn by_preset(server: &TestServer, token: &str, preset: &str) -> Value {
    let (status, body) = server.get("/api/automations", Some(token)).await;
    assert_eq!(status, 200, "{body}");
    body["automations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["preset"] == preset)
        .unwrap_or_else(|| panic!("no {preset} automation: {body}"))
        .clone()
}

/// Opens the list (Settings → Automations) afresh, through another section (the
/// same address again is no navigation), and waits for the three cards.
async fn open_list(d: &Session) {
    d.execute("location.hash = '#/settings/account'", json!([]))
        .await;
    d.wait_for(
        "another section",
        "!document.querySelector('[data-testid=settings-automations]')",
    )
    .await;
    d.execute("location.hash = '#/settings/automations'", json!([]))
        .await;
    d.wait_for(
        "the three defaults",
        &format!("{LIST_READY} && document.querySelectorAll('[data-testid=au-card]').length === 3"),
    )
    .await;
}

both_backends! {
    async fn automations_page(backend) {
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
        let (status, tag) = server
            .post("/api/tags", Some(&token), &json!({"name": "Welcomed"}))
            .await;
        assert_eq!(status, 201, "{tag}");
        let tag_id = tag["tag"]["id"].as_str().unwrap().to_string();

        let driver = switchboard_e2e::browser::Driver::start().await;
        let d = driver.session_sized(DESKTOP.0, DESKTOP.1).await;
        d.resize(DESKTOP.0, DESKTOP.1).await;
        inbox_login(&d, &server.base, &admin).await;

        // Settings → Automations, from the settings menu.
        d.execute("location.hash = '#/settings'", json!([])).await;
        d.click("Automations in the settings menu", &inbox("settings-nav-automations"))
            .await;
        d.wait_for(
            "the three defaults, off",
            &format!("{LIST_READY} && document.querySelectorAll('[data-testid=au-card][data-enabled=false] [data-testid=au-default]').length === 3"),
        )
        .await;
        for (preset, trigger) in [
            ("welcome", "When a lead is created"),
            ("stage_follow_up", "When a lead enters stage Interested"),
            ("no_reply", "When the customer has not replied for 24 hours"),
        ] {
            d.wait_for(
                &format!("the {preset} trigger in words"),
                &format!(
                    "{}.querySelector('[data-testid=au-trigger]').textContent === {}",
                    card(preset),
                    json!(trigger)
                ),
            )
            .await;
        }

        // The no-reply follow-up has no message chosen: the hub refuses to turn it
        // on and says which step; the card shows it and stays off.
        d.click(
            "switch on the no-reply follow-up",
            &format!("{}.querySelector('[data-testid=au-enabled]')", card("no_reply")),
        )
        .await;
        d.wait_for(
            "the refusal on the card",
            &format!(
                "{c}.querySelector('[data-testid=au-switch-error]').hidden === false \
                 && {c}.querySelector('[data-testid=au-switch-error]').textContent.includes('choose what to send') \
                 && {c}.querySelector('[data-testid=au-switch-error]').textContent.startsWith('Step ') \
                 && !{c}.querySelector('[data-testid=au-enabled]').checked \
                 && !{c}.querySelector('[data-testid=au-enabled]').disabled",
                c = card("no_reply")
            ),
        )
        .await;
        assert_eq!(by_preset(&server, &token, "no_reply").await["enabled"], false);
        d.check_screen("automations-1366").await;

        // Edit the welcome: new text, then an "add tag" step.
        d.click(
            "edit the welcome",
            &format!("{}.querySelector('[data-testid=au-edit]')", card("welcome")),
        )
        .await;
        d.wait_for(
            "the editor on the saved welcome text",
            "document.querySelector('[data-testid=au-text]')?.value.startsWith('Thank you')",
        )
        .await;
        d.fill(&inbox("au-text"), WELCOME).await;
        d.choose("the new step's kind", &inbox("au-add-kind"), "add_tag").await;
        d.click("add the step", &inbox("au-add-step")).await;
        d.wait_for(
            "two steps",
            "document.querySelectorAll('[data-testid=au-step]').length === 2 \
             && document.querySelectorAll('[data-testid=au-step]')[1].dataset.kind === 'add_tag'",
        )
        .await;
        d.choose("the tag", &inbox("au-tag"), &tag_id).await;
        d.execute(
            "document.querySelector('[data-testid=au-trigger-kind]').closest('section').scrollIntoView({block: 'start'})",
            json!([]),
        )
        .await;
        d.check_screen("automation-editor-1366").await;
        d.click("save", &inbox("au-save")).await;
        d.wait_for(
            "back on the list, saved",
            &format!("{LIST_READY} && document.querySelector('[data-testid=au-notice]')?.textContent.startsWith('Saved') \
             && document.querySelectorAll('[data-testid=au-card]').length === 3"),
        )
        .await;
        let welcome = by_preset(&server, &token, "welcome").await;
        assert_eq!(
            welcome["steps"],
            json!([
                {"kind": "send", "content": {"kind": "text", "body": WELCOME}},
                {"kind": "add_tag", "tag_id": tag_id},
            ]),
            "{welcome}"
        );
        assert_eq!(welcome["trigger"], json!({"kind": "lead_created"}));
        assert_eq!(welcome["enabled"], false);
        d.wait_for(
            "two steps on the card",
            &format!(
                "{}.querySelector('[data-testid=au-step-count]').textContent === '2 steps'",
                card("welcome")
            ),
        )
        .await;

        // Turn it on.
        d.click(
            "switch on the welcome",
            &format!("{}.querySelector('[data-testid=au-enabled]')", card("welcome")),
        )
        .await;
        d.wait_for(
            "the welcome on",
            &format!(
                "{c}?.dataset.enabled === 'true' && {c}.querySelector('[data-testid=au-enabled]').checked",
                c = card("welcome")
            ),
        )
        .await;
        assert_eq!(by_preset(&server, &token, "welcome").await["enabled"], true);

        // A WhatsApp customer writes in: a new lead, so a run that sends the welcome
        // and tags the contact.
        let body = meta_text_webhook(CUSTOMER, "wamid.au-1", "Halo, saya mau tanya paket umroh")
            .to_string();
        assert_eq!(server.meta_webhook(body.as_bytes()).await.0, 200);
        fake.wait_for("the automated welcome", |calls| {
            calls.iter().any(|c| {
                c.path.ends_with("/messages")
                    && c.body["to"] == CUSTOMER
                    && c.body["type"] == "text"
                    && c.body["text"]["body"] == WELCOME
            })
        })
        .await;
        let id = welcome["id"].as_str().unwrap().to_string();
        let run = eventually("the run done", || async {
            let (_, a) = server.get(&format!("/api/automations/{id}"), Some(&token)).await;
            let run = a["recent_runs"].as_array()?.first()?.clone();
            (run["status"] == "done").then_some(run)
        })
        .await;
        let contact_id = run["contact_id"].as_str().unwrap().to_string();
        let (status, contact) = server
            .get(&format!("/api/contacts/{contact_id}"), Some(&token))
            .await;
        assert_eq!(status, 200, "{contact}");
        assert!(
            contact["tags"].as_array().unwrap().iter().any(|t| t["id"] == tag_id.as_str()),
            "the contact has the tag: {contact}"
        );
        let welcomes = fake
            .calls_to("/messages")
            .into_iter()
            .filter(|c| c.body["to"] == CUSTOMER && c.body["type"] == "text")
            .count();
        assert_eq!(welcomes, 1, "one welcome");

        // The list counts it; the editor shows it among the recent runs.
        open_list(&d).await;
        d.wait_for(
            "one run done on the card",
            &format!(
                "{}.querySelector('[data-testid=au-runs]').textContent.includes('1 done')",
                card("welcome")
            ),
        )
        .await;
        d.click(
            "edit the welcome",
            &format!("{}.querySelector('[data-testid=au-edit]')", card("welcome")),
        )
        .await;
        d.wait_for(
            "the run, done, step 2 of 2",
            &format!(
                "(() => {{ const r = document.querySelector('[data-testid=au-run][data-contact={}]'); \
                 return r && r.dataset.status === 'done' \
                   && r.querySelector('[data-testid=au-run-step]').textContent === '2 of 2' \
                   && r.querySelector('a').textContent.length > 0; }})()",
                json!(contact_id)
            ),
        )
        .await;
        d.execute(
            "document.querySelector('[data-testid=au-runs-panel]').scrollIntoView({block: 'end'})",
            json!([]),
        )
        .await;
        d.check_screen("automation-runs-1366").await;

        // A new one: when the tag is added, a task for the lead's owner. Created
        // off; then deleted (asked first). The defaults offer no Delete.
        open_list(&d).await;
        d.click("new automation", &inbox("au-new")).await;
        d.wait_for(
            "an empty editor",
            "document.querySelector('[data-testid=au-name-input]')?.value === '' \
             && document.querySelectorAll('[data-testid=au-step]').length === 1",
        )
        .await;
        d.fill(&inbox("au-name-input"), "Welcomed: call them").await;
        d.choose("the trigger", &inbox("au-trigger-kind"), "tag_added").await;
        d.choose("the trigger's tag", &inbox("au-trigger-tag"), &tag_id).await;
        d.click("remove the unchosen send", &inbox("au-step-remove")).await;
        d.choose("the new step's kind", &inbox("au-add-kind"), "create_task").await;
        d.click("add the step", &inbox("au-add-step")).await;
        d.fill(&inbox("au-task-title"), "Call the new customer").await;
        d.fill(&inbox("au-task-due"), "2").await;
        d.choose("the due unit", &inbox("au-task-due-unit"), "hours").await;
        d.click("create", &inbox("au-save")).await;
        d.wait_for(
            "four cards, the new one off",
            &format!("{LIST_READY} && document.querySelectorAll('[data-testid=au-card]').length === 4 \
             && document.querySelector('[data-testid=au-card][data-preset=\"\"]')?.dataset.enabled === 'false'"),
        )
        .await;
        let (_, all) = server.get("/api/automations", Some(&token)).await;
        let mine = all["automations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "Welcomed: call them")
            .unwrap_or_else(|| panic!("the new automation: {all}"))
            .clone();
        assert_eq!(mine["preset"], Value::Null);
        assert_eq!(mine["enabled"], false);
        assert_eq!(mine["trigger"], json!({"kind": "tag_added", "tag_id": tag_id}));
        assert_eq!(
            mine["steps"],
            json!([{"kind": "create_task", "title": "Call the new customer", "due_in_minutes": 120}])
        );
        d.wait_for(
            "its trigger in words",
            "document.querySelector('[data-testid=au-card][data-preset=\"\"] [data-testid=au-trigger]').textContent === 'When tag Welcomed is added'",
        )
        .await;
        d.click(
            "edit it",
            "document.querySelector('[data-testid=au-card][data-preset=\"\"] [data-testid=au-edit]')",
        )
        .await;
        d.click("delete", &inbox("au-delete")).await;
        d.click("confirm", &inbox("au-confirm-confirm")).await;
        d.wait_for(
            "deleted",
            &format!("{LIST_READY} && document.querySelectorAll('[data-testid=au-card]').length === 3 \
             && document.querySelector('[data-testid=au-notice]').textContent.startsWith('Deleted')"),
        )
        .await;
        let (_, all) = server.get("/api/automations", Some(&token)).await;
        assert_eq!(all["automations"].as_array().map_or(0, Vec::len), 3, "{all}");

        // A phone: the list, the runs, and a template chosen for the no-reply
        // follow-up with its variables and live preview (not saved).
        d.resize(PHONE.0, PHONE.1).await;
        d.execute("document.getElementById('toasts').replaceChildren()", json!([]))
            .await;
        open_list(&d).await;
        d.check_screen("automations-390").await;
        d.click(
            "edit the welcome",
            &format!("{}.querySelector('[data-testid=au-edit]')", card("welcome")),
        )
        .await;
        d.wait_for("the runs", &format!("{} !== null", inbox("au-run")))
            .await;
        d.execute(
            "document.querySelector('[data-testid=au-runs-panel]').scrollIntoView({block: 'start'})",
            json!([]),
        )
        .await;
        d.check_screen("automation-runs-390").await;
        open_list(&d).await;
        d.click(
            "edit the no-reply follow-up",
            &format!("{}.querySelector('[data-testid=au-edit]')", card("no_reply")),
        )
        .await;
        d.wait_for(
            "its five steps",
            "document.querySelectorAll('[data-testid=au-step]').length === 5",
        )
        .await;
        d.choose("what to send", &inbox("au-send-kind"), "template").await;
        d.choose("the template", &inbox("au-template"), "promo_umroh|id").await;
        d.wait_for(
            "four variables",
            "document.querySelectorAll('[data-testid=au-var]').length === 4",
        )
        .await;
        for (i, text) in ["Umroh Hemat Maret", "15 Maret 2026", "12"].iter().enumerate() {
            d.execute(
                "const s = document.querySelectorAll('[data-testid=au-var-source]')[arguments[0]]; \
                 s.value = 'text'; s.dispatchEvent(new Event('change', {bubbles: true}));",
                json!([i + 1]),
            )
            .await;
            d.fill(&format!("document.querySelectorAll('[data-testid=au-var-text]')[{}]", i + 1),
                text,
            )
            .await;
        }
        d.wait_for(
            "the live preview",
            "document.querySelector('[data-testid=au-preview]').textContent.includes('Paket Umroh Hemat Maret berangkat 15 Maret 2026, sisa 12 kursi')",
        )
        .await;
        d.execute(
            "document.querySelector('[data-testid=au-steps]').scrollIntoView({block: 'start'})",
            json!([]),
        )
        .await;
        d.check_screen("automation-editor-390").await;
        d.click("leave the editor", &inbox("au-cancel")).await;
        d.wait_for("the list again", &format!("{LIST_READY} && {} !== null", card("no_reply")))
            .await;
        let no_reply = by_preset(&server, &token, "no_reply").await;
        assert_eq!(no_reply["steps"][0], json!({"kind": "send", "content": null}));

        // An agent (no campaigns.manage) has no Automations in the menu, and the
        // address shows "not available to you"; the API refuses too.
        let agent = server.agent("agent").await;
        let (status, _) = server.get("/api/automations", Some(&agent.token)).await;
        assert_eq!(status, 403);
        d.click("log out", &inbox("logout")).await;
        inbox_login(&d, &server.base, &agent).await;
        d.execute("location.hash = '#/settings/automations'", json!([]))
            .await;
        d.wait_for(
            "not available, and no menu entry",
            "document.querySelector('[data-testid=settings-forbidden]') !== null \
             && document.querySelector('[data-testid=settings-nav-automations]').closest('li').hidden",
        )
        .await;

        d.close().await;
        fake.stop().await;
    }
}
