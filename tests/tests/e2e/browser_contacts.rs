//! The Contacts UI in a real headless Chromium (issue 17 §3, `docs/contacts.md`;
//! `web-client/contacts-page.js`, `segment-builder.js`, `tag-manager.js`,
//! `contact-tags.js`): an admin finds contacts by name and by phone digits, ticks
//! two and adds a tag to both (the API confirms), builds a segment ("any of" that
//! tag) whose live preview counts the two, saves it; opts a contact out on its page
//! (state, source and history shown; the API confirms); creates a tag; in the inbox
//! details panel of a conversation adds a tag with the picker (the API confirms) and
//! sees a tag another agent set appear live (`contact_tags` frame). An agent (no
//! `campaigns.manage`) sees no bulk or consent controls. At 1366 and 390 px, light
//! and dark: no sideways scrolling, no serious or critical axe violation
//! (screenshots `contacts-*`, SQLite run only). Skipped without Chromium unless
//! `SWITCHBOARD_TEST_REQUIRE_BROWSER=1`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::{json, Value};
use switchboard_e2e::browser::{browser_turn, inbox, inbox_login, Session, DESKTOP, PHONE};
use switchboard_e2e::{
    both_backends, Backend, TestAgent, TestGuest, TestServer, ADMIN_EMAIL, ADMIN_PASSWORD,
};

/// JS expression: the names of the listed contacts, sorted, joined with `|`.
const NAMES: &str = "[...document.querySelectorAll('[data-testid=contacts-list] [data-testid=contact-link]')].map(a => a.textContent).sort().join('|')";

/// A widget customer with a name and phone who wrote one message.
async fn customer(srv: &TestServer, name: &str, phone: &str) -> TestGuest {
    let g = srv
        .guest_with(json!({"name": name, "phone": phone, "source": "test"}))
        .await;
    let (status, body) = srv
        .post_message(
            &g.token,
            &g.conversation_id,
            &format!("m-{}", g.contact_id),
            "Hello",
        )
        .await;
    assert_eq!(status, 201, "{body}");
    g
}

async fn create_tag(srv: &TestServer, token: &str, name: &str) -> String {
    let (status, body) = srv
        .post("/api/tags", Some(token), &json!({"name": name}))
        .await;
    assert_eq!(status, 201, "{body}");
    body["tag"]["id"].as_str().unwrap().to_string()
}

/// A contact's tag names and consent as the API reports them.
async fn contact(srv: &TestServer, token: &str, id: &str) -> (Vec<String>, Value) {
    let (status, body) = srv.get(&format!("/api/contacts/{id}"), Some(token)).await;
    assert_eq!(status, 200, "{body}");
    let mut tags: Vec<String> = body["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    tags.sort();
    (tags, body["consent"].clone())
}

/// Picks `value` in the select `expr` the way a keyboard user's choice arrives.
async fn choose(s: &Session, expr: &str, value: &str) {
    s.execute(
        &format!(
            "const sel = {expr}; sel.focus(); sel.value = arguments[0]; \
             sel.dispatchEvent(new Event('change', {{bubbles: true}}));"
        ),
        json!([value]),
    )
    .await;
}

/// Replaces the search text (clears it first, then types real keys).
async fn search(s: &Session, text: &str) {
    s.execute(
        "const i = document.querySelector('[data-testid=contacts-search]'); i.value = ''; \
         i.dispatchEvent(new Event('input', {bubbles: true}));",
        json!([]),
    )
    .await;
    if !text.is_empty() {
        s.type_into("search", &inbox("contacts-search"), text).await;
    }
}

fn row(id: &str) -> String {
    format!("document.querySelector('[data-testid=contact-row][data-id=\"{id}\"]')")
}

both_backends! {
    async fn browser_contacts(backend) {
        let Some(_lock) = browser_turn().await else {
            return;
        };
        let shots = backend == Backend::Sqlite;
        let server = TestServer::start(backend).await;
        let token = server.admin_token().await;
        let ana = customer(&server, "Ana Lima", "+6281110000001").await;
        let budi = customer(&server, "Budi Santoso", "+6281110000002").await;
        let citra = customer(&server, "Citra Dewi", "+6281110000003").await;
        create_tag(&server, &token, "vip").await;
        let umrah = create_tag(&server, &token, "umrah").await;
        let admin = TestAgent {
            id: String::new(),
            email: ADMIN_EMAIL.into(),
            password: ADMIN_PASSWORD.into(),
            token: token.clone(),
            name: "Admin".into(),
        };

        let driver = switchboard_e2e::browser::Driver::start().await;
        let s = driver.session().await;
        s.resize(DESKTOP.0, DESKTOP.1).await;
        inbox_login(&s, &server.base, &admin).await;
        s.click("contacts nav link", &inbox("nav-contacts")).await;
        s.wait_for(
            "the three contacts",
            &format!("{NAMES} === 'Ana Lima|Budi Santoso|Citra Dewi'"),
        )
        .await;

        // Search: by name, then by phone digits.
        search(&s, "ana").await;
        s.wait_for("only Ana", &format!("{NAMES} === 'Ana Lima'")).await;
        search(&s, "000002").await;
        s.wait_for("only Budi by phone", &format!("{NAMES} === 'Budi Santoso'")).await;
        search(&s, "").await;
        s.wait_for("all three again", &format!("{NAMES}.split('|').length === 3")).await;

        // Bulk: tick Ana and Budi, add "vip" to both.
        for g in [&ana, &budi] {
            s.click(
                "a contact's checkbox",
                &format!("{}.querySelector('[data-testid=contact-select]')", row(&g.contact_id)),
            )
            .await;
        }
        s.wait_for(
            "two selected",
            "document.querySelector('[data-testid=bulk-count]').textContent === '2 selected'",
        )
        .await;
        s.wait_for("the tag choices", "document.querySelector('[data-testid=bulk-tag]').options.length === 3").await;
        s.execute(
            "const sel = document.querySelector('[data-testid=bulk-tag]'); \
             sel.value = [...sel.options].find(o => o.textContent === 'vip').value; \
             sel.dispatchEvent(new Event('change', {bubbles: true}));",
            json!([]),
        )
        .await;
        s.click("add tag to selected", &inbox("bulk-add")).await;
        for g in [&ana, &budi] {
            s.wait_for(
                "the vip chip on the row",
                &format!(
                    "{}.querySelector('[data-testid=tag-chip][data-tag=vip]')",
                    row(&g.contact_id)
                ),
            )
            .await;
            assert_eq!(contact(&server, &token, &g.contact_id).await.0, ["vip"]);
        }
        assert!(contact(&server, &token, &citra.contact_id).await.0.is_empty());
        if shots {
            s.check_screen("contacts-1366").await;
        }

        // The segment builder: "any of vip" previews the two; saved.
        s.click("segments tab", &inbox("contacts-tab-segments")).await;
        s.wait_for(
            "everyone in the empty filter's preview",
            "document.querySelector('[data-testid=segment-count]').dataset.count === '3'",
        )
        .await;
        choose(&s, &inbox_tag_select("vip"), "any").await;
        s.wait_for(
            "the preview counts the two vip contacts",
            "document.querySelector('[data-testid=segment-count]').dataset.count === '2' && \
             document.querySelectorAll('[data-testid=segment-preview] [data-testid=contact-row]').length === 2",
        )
        .await;
        choose(&s, &inbox("segment-consent"), "opted_out").await;
        s.wait_for(
            "nobody opted out yet",
            "document.querySelector('[data-testid=segment-count]').dataset.count === '0'",
        )
        .await;
        choose(&s, &inbox("segment-consent"), "").await;
        s.type_into("segment name", &inbox("segment-name"), "VIP customers").await;
        s.click("save segment", &inbox("segment-save")).await;
        s.wait_for(
            "the saved segment listed",
            "document.querySelector('[data-testid=segment-item][data-name=\"VIP customers\"]')",
        )
        .await;
        let (status, body) = server.get("/api/segments", Some(&token)).await;
        assert_eq!(status, 200);
        let seg = &body["segments"][0];
        assert_eq!(seg["name"], "VIP customers");
        assert_eq!(seg["filter"]["tags"]["any"].as_array().unwrap().len(), 1);
        if shots {
            s.check_screen("contacts-segments-1366").await;
        }

        // One contact: opt Ana out by hand; state, source and history show it.
        s.execute(
            &format!("location.hash = '#/contacts/c/{}'", ana.contact_id),
            json!([]),
        )
        .await;
        s.wait_for(
            "Ana's page",
            "document.querySelector('[data-testid=contact-detail-name]').textContent === 'Ana Lima' && \
             document.querySelector('[data-testid=consent-now] [data-testid=consent-state]').dataset.state === 'unknown'",
        )
        .await;
        s.click("opted out", &inbox("consent-opted_out")).await;
        s.type_into("note", &inbox("consent-note"), "Asked by phone").await;
        s.click("save consent", &inbox("consent-save")).await;
        s.wait_for(
            "opted out, by an agent, in the history",
            "document.querySelector('[data-testid=consent-now]').textContent.includes('Opted out · set by an agent') && \
             document.querySelector('[data-testid=consent-event][data-state=opted_out]') && \
             document.querySelector('[data-testid=consent-history]').textContent.includes('Asked by phone')",
        )
        .await;
        let (_, consent) = contact(&server, &token, &ana.contact_id).await;
        assert_eq!(consent["state"], "opted_out");
        assert_eq!(consent["source"], "agent");
        if shots {
            s.check_screen("contacts-detail-1366").await;
        }

        // Tags: create one.
        s.click("tags tab", &inbox("contacts-tab-tags")).await;
        s.wait_for("the tag list", "document.querySelector('[data-testid=tag-row][data-tag=vip]')").await;
        s.type_into("new tag", &inbox("tag-new-name"), "newsletter").await;
        s.click("create tag", &inbox("tag-create")).await;
        s.wait_for("the new tag", "document.querySelector('[data-testid=tag-row][data-tag=newsletter]')").await;
        let (_, tags) = server.get("/api/tags", Some(&token)).await;
        let newsletter = tags["tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "newsletter")
            .expect("newsletter created")["id"]
            .as_str()
            .unwrap()
            .to_string();
        if shots {
            s.check_screen("contacts-tags-1366").await;
        }

        // The inbox: Ana's conversation's details panel.
        s.execute(
            &format!("location.hash = '#/c/{}/details'", ana.conversation_id),
            json!([]),
        )
        .await;
        let panel = "document.querySelector('#details-panel [data-testid=contact-tags-panel]')";
        s.wait_for(
            "vip and opted out in the panel",
            &format!(
                "{panel}.querySelector('[data-testid=tag-chip][data-tag=vip]') && \
                 {panel}.querySelector('[data-testid=consent-state]').dataset.state === 'opted_out'"
            ),
        )
        .await;
        s.execute(
            &format!(
                "const sel = {panel}.querySelector('[data-testid=contact-tag-picker]'); \
                 sel.value = [...sel.options].find(o => o.textContent === 'umrah').value; \
                 sel.dispatchEvent(new Event('change', {{bubbles: true}}));"
            ),
            json!([]),
        )
        .await;
        s.click(
            "add the tag",
            &format!("{panel}.querySelector('[data-testid=contact-tag-add]')"),
        )
        .await;
        s.wait_for(
            "the umrah chip",
            &format!("{panel}.querySelector('[data-testid=tag-chip][data-tag=umrah]')"),
        )
        .await;
        assert_eq!(contact(&server, &token, &ana.contact_id).await.0, ["umrah", "vip"]);
        // Another agent (here: the API) sets the tags: the panel follows live.
        let vip = {
            let (_, tags) = server.get("/api/tags", Some(&token)).await;
            tags["tags"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["name"] == "vip")
                .unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let (status, body) = server
            .put(
                &format!("/api/contacts/{}/tags", ana.contact_id),
                Some(&token),
                &json!({"tag_ids": [vip, umrah, newsletter]}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        s.wait_for(
            "the newsletter chip, live",
            &format!("{panel}.querySelector('[data-testid=tag-chip][data-tag=newsletter]')"),
        )
        .await;
        // Removing one with its chip's button.
        s.click(
            "remove umrah",
            &format!("{panel}.querySelector('[data-testid=tag-chip][data-tag=umrah] button')"),
        )
        .await;
        s.wait_for(
            "umrah gone",
            &format!("!{panel}.querySelector('[data-testid=tag-chip][data-tag=umrah]')"),
        )
        .await;
        assert_eq!(
            contact(&server, &token, &ana.contact_id).await.0,
            ["newsletter", "vip"]
        );
        if shots {
            s.check_screen("contacts-inbox-1366").await;
        }

        // Bulk remove: untick-all, tick Budi, take "vip" off.
        s.execute("location.hash = '#/contacts'", json!([])).await;
        s.wait_for("the list", &format!("{NAMES}.split('|').length === 3")).await;
        s.click(
            "Budi's checkbox",
            &format!("{}.querySelector('[data-testid=contact-select]')", row(&budi.contact_id)),
        )
        .await;
        s.execute(
            "const sel = document.querySelector('[data-testid=bulk-tag]'); \
             sel.value = [...sel.options].find(o => o.textContent === 'vip').value; \
             sel.dispatchEvent(new Event('change', {bubbles: true}));",
            json!([]),
        )
        .await;
        s.click("remove tag from selected", &inbox("bulk-remove")).await;
        s.wait_for(
            "Budi without vip",
            &format!(
                "!{}.querySelector('[data-testid=tag-chip][data-tag=vip]') && \
                 {}.querySelector('[data-testid=tag-chip][data-tag=vip]')",
                row(&budi.contact_id),
                row(&ana.contact_id)
            ),
        )
        .await;
        assert!(contact(&server, &token, &budi.contact_id).await.0.is_empty());
        // Toasts would cover the phone screenshots.
        s.execute(
            "document.querySelectorAll('.toast-close').forEach(b => b.click())",
            json!([]),
        )
        .await;

        // A phone.
        if shots {
            s.resize(PHONE.0, PHONE.1).await;
            s.execute("location.hash = '#/contacts'", json!([])).await;
            s.wait_for("the list", &format!("{NAMES}.split('|').length === 3")).await;
            s.check_screen("contacts-390").await;
            s.execute("location.hash = '#/contacts/segments'", json!([])).await;
            s.wait_for(
                "the saved segment",
                "document.querySelector('[data-testid=segment-item]') && document.querySelector('[data-testid=segment-count]').dataset.count",
            )
            .await;
            s.check_screen("contacts-segments-390").await;
            s.execute(
                &format!("location.hash = '#/contacts/c/{}'", ana.contact_id),
                json!([]),
            )
            .await;
            s.wait_for("the history", "document.querySelector('[data-testid=consent-event]')").await;
            s.check_screen("contacts-detail-390").await;
            s.execute(
                &format!("location.hash = '#/c/{}/details'", ana.conversation_id),
                json!([]),
            )
            .await;
            s.wait_for(
                "the panel's tags",
                &format!("{panel}.querySelector('[data-testid=tag-chip][data-tag=newsletter]')"),
            )
            .await;
            s.check_screen("contacts-inbox-390").await;
        }
        s.close().await;

        // An agent: may tag from the inbox, may not bulk-tag or change consent.
        let agent = server.agent("agent").await;
        let a = driver.session().await;
        a.resize(DESKTOP.0, DESKTOP.1).await;
        inbox_login(&a, &server.base, &agent).await;
        a.execute(
            &format!("location.hash = '#/contacts/c/{}'", budi.contact_id),
            json!([]),
        )
        .await;
        a.wait_for(
            "Budi's page",
            "document.querySelector('[data-testid=contact-detail-name]').textContent === 'Budi Santoso'",
        )
        .await;
        let hidden: Value = a
            .execute(
                "return [document.querySelector('[data-testid=consent-form]').hidden, \
                         document.querySelector('[data-testid=bulk-bar]').hidden, \
                         document.querySelectorAll('[data-testid=contact-select]').length, \
                         document.querySelector('[data-testid=contact-detail] [data-testid=contact-tag-picker]').closest('.ct-tag-add').hidden]",
                json!([]),
            )
            .await;
        assert_eq!(hidden, json!([true, true, 0, false]));
        a.close().await;
    }
}

/// JS expression: the segment builder's mode select of tag `name`.
fn inbox_tag_select(name: &str) -> String {
    format!("document.querySelector('[data-testid=segment-tag][data-tag=\"{name}\"]')")
}
