//! The Leads and Tasks screens in a real headless Chromium (`web-client/leads-page.js`,
//! `leads-board.js`, `lead-detail.js`, `tasks-page.js`; docs/leads-screens.md): an
//! admin sees the seeded leads with their owners' names, switches to the board and
//! moves a card with its "Move to…" select (the path without a mouse) and
//! another by dragging it (synthetic drag events) — a manual
//! stage change the API and the timeline confirm; a move the hub refuses is said in
//! words and the card stays where it was; on a lead's page a task is added and
//! shows under "My tasks" after an overdue one. A marketing user sees the board
//! without move controls. The screens hold at 1366 and 390 px, light and dark (no
//! sideways scrolling, no serious axe violation; screenshots `leads-*`, SQLite run
//! only). Skipped without Chromium unless `SWITCHBOARD_TEST_REQUIRE_BROWSER=1`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::{json, Value};
use switchboard_e2e::browser::{browser_turn, inbox, inbox_login, Session, DESKTOP, PHONE};
use switchboard_e2e::{both_backends, Backend, TestAgent, TestServer, ADMIN_EMAIL, ADMIN_PASSWORD};

/// JS expression: the shown rows as `name|stage|owner`.
const ROWS: &str = "[...document.querySelectorAll('[data-testid=leads-row]')].map(r => \
    r.querySelector('.leads-row-name').textContent + '|' + \
    r.querySelector('[data-testid=leads-row-stage]').textContent + '|' + \
    r.querySelector('[data-testid=leads-row-owner]').textContent)";

/// JS expression: the stage column a lead's card is in (null when not on the board).
fn column_of(lead: &str) -> String {
    format!(
        "(c => c && c.closest('[data-testid=board-column]').dataset.stage)(document.querySelector('[data-testid=board-card][data-lead=\"{lead}\"]'))"
    )
}

/// Picks `stage` in the card's "Move to…" select the way a keyboard user's choice
/// arrives: the select's value changes and it fires `change`. `extra` adds an
/// option first (a stage the hub does not know).
async fn move_with_select(s: &Session, lead: &str, stage: &str, extra: bool) {
    s.execute(
        "const sel = document.querySelector(`[data-testid=board-card][data-lead=\"${arguments[0]}\"] [data-testid=board-move]`);
         if (arguments[2]) sel.append(new Option('Nowhere', arguments[1]));
         sel.focus();
         sel.value = arguments[1];
         sel.dispatchEvent(new Event('change'));",
        json!([lead, stage, extra]),
    )
    .await;
}

async fn create_lead(server: &TestServer, token: &str, body: Value) -> String {
    let (status, body) = server.post("/api/leads", Some(token), &body).await;
    assert_eq!(status, 201, "{body}");
    body["lead"]["id"].as_str().unwrap().to_string()
}

both_backends! {
    async fn browser_leads_board_detail_and_tasks(backend) {
        let Some(_lock) = browser_turn().await else {
            return;
        };
        let shots = backend == Backend::Sqlite;
        let server = TestServer::start(backend).await;
        let admin_token = server.admin_token().await;
        let owner = server.agent("agent").await;
        let marketing = server.agent("marketing").await;
        let ana = create_lead(
            &server,
            &admin_token,
            json!({"name": "Ana Lima", "email": "ana@fixture.test", "stage": "new", "owner_id": owner.id}),
        )
        .await;
        let bruno = create_lead(
            &server,
            &admin_token,
            json!({"name": "Bruno Costa", "email": "bruno@fixture.test", "stage": "contacted", "priority": "high"}),
        )
        .await;
        // Overdue by a day (a fixed distance in the past, not a race with the clock):
        // Bruno has no owner, so the task is the admin's own.
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let day_ago = now_ms - 24 * 3_600_000;
        let (status, body) = server
            .post(
                &format!("/api/leads/{bruno}/tasks"),
                Some(&admin_token),
                &json!({"title": "Call Bruno back", "due_at": day_ago}),
            )
            .await;
        assert_eq!(status, 201, "{body}");

        let driver = switchboard_e2e::browser::Driver::start().await;
        let s = driver.session().await;
        s.resize(DESKTOP.0, DESKTOP.1).await;
        let admin = TestAgent {
            id: String::new(),
            email: ADMIN_EMAIL.into(),
            password: ADMIN_PASSWORD.into(),
            token: admin_token.clone(),
            name: "Admin".into(),
        };
        inbox_login(&s, &server.base, &admin).await;
        s.click("leads nav link", &inbox("nav-leads")).await;
        let expect_ana = format!("Ana Lima|New|{}", owner.name);
        s.wait_for(
            "both leads with stage and owner names",
            &format!("(r => r.includes('{expect_ana}') && r.includes('Bruno Costa|Contacted|No owner'))({ROWS})"),
        )
        .await;
        if shots {
            s.check_screen("leads-1366").await;
        }

        // The board, and a move without the mouse.
        s.click("board toggle", &inbox("leads-view-board")).await;
        s.wait_for("Ana on the board under New", &format!("{} === 'new'", column_of(&ana))).await;
        move_with_select(&s, &ana, "interested", false).await;
        s.wait_for("Ana moved to Interested", &format!("{} === 'interested'", column_of(&ana))).await;
        s.wait_for(
            "the move said",
            "document.querySelector('[data-testid=leads-status]').textContent.includes('moved to Interested')",
        )
        .await;
        let (status, lead) = server.get(&format!("/api/leads/{ana}"), Some(&admin_token)).await;
        assert_eq!(status, 200, "{lead}");
        assert_eq!(lead["stage"], "interested", "{lead}");
        let (_, timeline) = server.get(&format!("/api/leads/{ana}/timeline"), Some(&admin_token)).await;
        assert!(
            timeline["timeline"].as_array().unwrap().iter().any(|e| e["kind"] == "stage_changed"
                && e["detail"]["to"] == "interested"
                && e["detail"]["manual"] == true
                && e["actor_kind"] == "agent"),
            "a manual stage change in {timeline}"
        );
        // A stage the hub does not know: refused, in words, and the card stays.
        move_with_select(&s, &ana, "nowhere", true).await;
        s.wait_for(
            "the refusal said",
            "document.querySelector('[data-testid=leads-status]').textContent.includes('Ana Lima was not moved')",
        )
        .await;
        s.wait_for("Ana back under Interested", &format!("{} === 'interested'", column_of(&ana))).await;
        // The mouse's path: Bruno dragged onto Qualified (synthetic drag events
        // carrying one DataTransfer, as a real drag does).
        s.execute(
            "const card = document.querySelector(`[data-testid=board-card][data-lead=\"${arguments[0]}\"]`);
             const col = document.querySelector('[data-testid=board-column][data-stage=qualified]');
             const dt = new DataTransfer();
             card.dispatchEvent(new DragEvent('dragstart', {bubbles: true, dataTransfer: dt}));
             col.dispatchEvent(new DragEvent('dragover', {bubbles: true, cancelable: true, dataTransfer: dt}));
             col.dispatchEvent(new DragEvent('drop', {bubbles: true, cancelable: true, dataTransfer: dt}));",
            json!([bruno]),
        )
        .await;
        s.wait_for(
            "Bruno moved to Qualified",
            "document.querySelector('[data-testid=leads-status]').textContent.includes('Bruno Costa moved to Qualified')",
        )
        .await;
        let (_, lead) = server.get(&format!("/api/leads/{bruno}"), Some(&admin_token)).await;
        assert_eq!(lead["stage"], "qualified", "{lead}");
        // The refusal's toast has been read: out of the way of the screenshots.
        s.execute("document.querySelectorAll('.toast').forEach(t => t.remove());", json!([])).await;
        let (_, lead) = server.get(&format!("/api/leads/{ana}"), Some(&admin_token)).await;
        assert_eq!(lead["stage"], "interested", "{lead}");
        if shots {
            s.check_screen("leads-board-1366").await;
        }

        // Bruno's page: add a task.
        s.click(
            "Bruno's card",
            &format!("document.querySelector('[data-testid=board-card][data-lead=\"{bruno}\"] a')"),
        )
        .await;
        s.wait_for(
            "Bruno's page",
            "(e => e && e.textContent === 'Bruno Costa')(document.querySelector('[data-testid=lead-detail-name]'))",
        )
        .await;
        s.type_into("task title", &inbox("task-title"), "Send the brochure").await;
        s.click("add task", &inbox("task-add")).await;
        s.wait_for(
            "the new task on the lead",
            "[...document.querySelectorAll('[data-testid=lead-task]')].some(t => t.textContent.includes('Send the brochure'))",
        )
        .await;
        if shots {
            s.check_screen("leads-detail-1366").await;
        }

        // My tasks: the overdue one first, marked in words.
        s.click("tasks nav link", &inbox("nav-tasks")).await;
        s.wait_for(
            "my tasks, overdue first",
            "(rows => rows.length >= 2 && rows[0].dataset.overdue === 'true'
                && rows[0].textContent.includes('Call Bruno back') && rows[0].textContent.includes('Overdue')
                && rows[0].querySelector('.task-lead').textContent === 'Bruno Costa'
                && rows.some(r => r.dataset.overdue === 'false' && r.textContent.includes('Send the brochure')))
             ([...document.querySelectorAll('[data-testid=task-row]')])",
        )
        .await;
        s.wait_for(
            "the My tasks tab pressed",
            "document.querySelector('[data-testid=tasks-mine]').getAttribute('aria-pressed') === 'true'",
        )
        .await;
        if shots {
            s.check_screen("leads-tasks-1366").await;
            s.resize(PHONE.0, PHONE.1).await;
            s.check_screen("leads-tasks-390").await;
            s.execute("location.hash = '#/leads';", json!([])).await;
            s.wait_for("the board on a phone", &format!("{} === 'interested'", column_of(&ana))).await;
            s.check_screen("leads-board-390").await;
            s.click("list toggle", &inbox("leads-view-list")).await;
            s.wait_for("the list on a phone", &format!("{ROWS}.length === 2")).await;
            s.check_screen("leads-390").await;
            s.execute(&format!("location.hash = '#/leads/{bruno}';"), json!([])).await;
            s.wait_for("Bruno's page on a phone", "(d => !d.hidden && d.querySelector('[data-testid=lead-detail-name]').textContent === 'Bruno Costa'
                    && d.querySelectorAll('[data-testid=lead-task]').length >= 2)(document.querySelector('[data-testid=lead-detail]'))").await;
            s.check_screen("leads-detail-390").await;
            s.resize(DESKTOP.0, DESKTOP.1).await;
        }

        // Marketing reads the board but cannot move anything.
        s.execute("location.hash = '#/leads';", json!([])).await;
        s.click("board toggle", &inbox("leads-view-board")).await;
        s.click("log out", &inbox("logout")).await;
        inbox_login(&s, &server.base, &marketing).await;
        s.click("leads nav link", &inbox("nav-leads")).await;
        s.click("board toggle", &inbox("leads-view-board")).await;
        s.wait_for("the board for marketing", &format!("{} === 'interested'", column_of(&ana))).await;
        let controls = s
            .execute(
                "return [document.querySelectorAll('[data-testid=board-move]').length,
                         document.querySelectorAll('[data-testid=board-card][draggable=true]').length];",
                json!([]),
            )
            .await;
        assert_eq!(controls, json!([0, 0]), "marketing gets no move controls");
        s.close().await;
    }
}
