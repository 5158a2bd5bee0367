//! End-to-end browser tests: a real headless Chromium (Debian's `chromium`, driven
//! through `chromedriver`) against a real server, for the guest widget, the agent
//! inbox and the team dashboard. SQLite only (the UI does not care about the
//! backend). Skipped with a notice when Chromium is missing, unless
//! `SWITCHBOARD_TEST_REQUIRE_BROWSER=1`. Screenshots land in `target/screenshots/`
//! (`docs/screenshots/` with `SWITCHBOARD_UPDATE_SCREENSHOTS=1`).
//!
//! Every wait is for a DOM condition (with a generous safety timeout); the server's
//! history API is the judge of what was stored.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::{json, Value};
use switchboard::config::Secret;
use switchboard_e2e::browser::{
    browser_turn, inbox, inbox_login, widget, Driver, NetProxy, Session, WIDGET_ROOT,
};
use switchboard_e2e::fake_openai::{bot_answer, FakeOpenAi, FakeReply};
use switchboard_e2e::{Backend, TestAgent, TestServer};

const XSS: &str = "<img src=x onerror=alert(1)>";

/// JS expression: the widget's message bubbles' texts.
fn widget_texts() -> String {
    format!(
        "[...{WIDGET_ROOT}.querySelectorAll('[data-testid=message] .bubble')].map(b => b.textContent)"
    )
}

/// JS expression: true when the widget shows a message with `body` in `status`.
fn widget_has(body: &str, status: &str) -> String {
    format!(
        "[...{WIDGET_ROOT}.querySelectorAll('[data-testid=message][data-status={status}]')].some(m => m.querySelector('.bubble').textContent === {})",
        json!(body)
    )
}

/// JS expression: true when the widget shows `body` as stored (sent, or already read
/// when an agent has the conversation open).
fn widget_stored(body: &str) -> String {
    format!(
        "({}) || ({})",
        widget_has(body, "sent"),
        widget_has(body, "read")
    )
}

/// JS expression: true when the inbox's open conversation shows `body`.
fn inbox_has(body: &str) -> String {
    format!(
        "[...document.querySelectorAll('#message-list [data-testid=message] .bubble')].some(b => b.textContent === {})",
        json!(body)
    )
}

/// The widget's conversation id.
async fn widget_conversation(s: &Session) -> String {
    s.wait_for(
        "widget conversation",
        "window.SwitchboardWidget.state().conversationId",
    )
    .await
    .as_str()
    .expect("conversation id")
    .to_string()
}

/// Types `text` into the widget composer and presses Enter.
async fn widget_send(s: &Session, text: &str) {
    s.type_into(
        "widget composer",
        &widget("composer-input"),
        &format!("{text}\u{E007}"),
    )
    .await;
}

/// Message bodies of a conversation, in `seq` order, from the server.
async fn stored_bodies(server: &TestServer, token: &str, conversation_id: &str) -> Vec<String> {
    let history = server.history(token, conversation_id).await;
    let seqs: Vec<i64> = history.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "gapless seqs: {seqs:?}"
    );
    history
        .iter()
        .filter(|m| m["sender"]["kind"] != "system")
        .map(|m| m["body"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The whole journey: pre-chat form, poll offer to two agents (one claims, the
/// other's card disappears), live delivery, reply and read tick, reload with full
/// history, and HTML shown as text on both sides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_visitor_poll_claim_reply() {
    let Some(_lock) = browser_turn().await else {
        return;
    };
    let server = TestServer::start(Backend::Sqlite).await;
    let team = server.default_team_id().await;
    server
        .set_routing(
            &team,
            json!({"routing_mode": "poll", "offer_timeout_ms": 600_000}),
        )
        .await;
    server.set_widget(json!({"prechat_fields": ["name", "email"], "greeting": "Hi! We usually answer within minutes."})).await;
    let ann = server.agent("agent").await;
    let bob = server.agent("agent").await;

    let driver = Driver::start().await;
    let a = driver.session().await;
    let b = driver.session().await;
    inbox_login(&a, &server.base, &ann).await;
    inbox_login(&b, &server.base, &bob).await;

    // The visitor: closed widget, then the pre-chat form.
    let v = driver.session().await;
    v.goto(&server.url("/demo")).await;
    v.wait_for("launcher", &widget("launcher")).await;
    v.screenshot("widget-closed").await;
    v.click("launcher", &widget("launcher")).await;
    v.wait_for(
        "pre-chat form",
        &format!("{0} && !{0}.hidden", widget("prechat-form")),
    )
    .await;
    v.wait_for(
        "greeting",
        &format!("{}.textContent.includes('within minutes')", widget("intro")),
    )
    .await;
    v.type_into("name", &widget("prechat-name"), "Maya Visitor")
        .await;
    v.type_into("email", &widget("prechat-email"), "maya@example.com")
        .await;
    v.click("start chat", &widget("prechat-submit")).await;
    widget_send(&v, "Do you have rooms in May?").await;
    v.wait_for(
        "sent tick",
        &widget_has("Do you have rooms in May?", "sent"),
    )
    .await;
    let conversation = widget_conversation(&v).await;

    // Both agents see the offer; Ann claims, Bob's card goes away.
    for s in [&a, &b] {
        s.wait_for(
            "offer card",
            "document.querySelectorAll('[data-testid=offer]').length === 1",
        )
        .await;
    }
    a.click("claim", &inbox("offer-claim")).await;
    b.wait_for(
        "offer gone for the loser",
        "document.querySelectorAll('[data-testid=offer]').length === 0",
    )
    .await;
    a.wait_for(
        "message live in inbox",
        &inbox_has("Do you have rooms in May?"),
    )
    .await;
    a.wait_for(
        "contact name from the pre-chat form",
        "document.getElementById('view-title').textContent.includes('Maya Visitor')",
    )
    .await;

    // Ann replies; the visitor sees it, and its own message turns "read".
    a.type_into(
        "agent composer",
        &inbox("composer-input"),
        "Yes — see https://example.com/may for prices.\u{E007}",
    )
    .await;
    v.wait_for(
        "reply in widget",
        &widget_has("Yes — see https://example.com/may for prices.", "received"),
    )
    .await;
    let link = v
        .wait_for(
            "reply link",
            &format!(
                "{WIDGET_ROOT}.querySelector('[data-testid=message] a[href]')?.getAttribute('rel')"
            ),
        )
        .await;
    assert_eq!(link, json!("noopener noreferrer nofollow"));
    v.wait_for(
        "read tick",
        &widget_has("Do you have rooms in May?", "read"),
    )
    .await;
    a.wait_for(
        "read tick in inbox",
        "document.querySelector('#message-list [data-status=read]')",
    )
    .await;
    // The lead panel beside the conversation: the first reply moved the lead from
    // "new" to "contacted", live.
    a.wait_for(
        "lead panel at stage contacted",
        "document.querySelector('[data-testid=lead-stage]')?.value === 'contacted'",
    )
    .await;
    let panel_text = a
        .execute(
            "return document.querySelector('[data-testid=lead-panel]').textContent",
            json!([]),
        )
        .await;
    assert!(
        !panel_text.as_str().unwrap_or("").contains("null"),
        "the lead panel shows a literal null: {panel_text}"
    );

    // HTML is text on both sides, and nothing ran.
    widget_send(&v, XSS).await;
    v.wait_for("html message stored", &widget_stored(XSS)).await;
    a.wait_for("html message in inbox", &inbox_has(XSS)).await;
    let widget_imgs = v
        .execute(
            &format!("return {WIDGET_ROOT}.querySelectorAll('[data-testid=messages] img').length"),
            json!([]),
        )
        .await;
    assert_eq!(widget_imgs, json!(0), "the widget must not render HTML");
    let inbox_imgs = a
        .execute(
            "return document.querySelectorAll('#message-list .bubble img').length",
            json!([]),
        )
        .await;
    assert_eq!(inbox_imgs, json!(0), "the inbox must not render HTML");
    assert!(
        !v.alert_open().await && !a.alert_open().await,
        "a script ran"
    );
    v.screenshot("widget-open").await;
    a.screenshot("inbox").await;

    // A reload shows the whole history, in order.
    v.refresh().await;
    v.click("launcher", &widget("launcher")).await;
    let want = vec![
        "Do you have rooms in May?".to_string(),
        "Yes — see https://example.com/may for prices.".into(),
        XSS.into(),
    ];
    let shown = v
        .wait_for(
            "history after reload",
            &format!("(t => t.length === 3 && t)({})", widget_texts()),
        )
        .await;
    assert_eq!(shown, json!(want));
    assert_eq!(
        stored_bodies(&server, &ann.token, &conversation).await,
        want
    );

    // A second tab of the same visitor shows the same conversation.
    v.new_tab().await;
    v.goto(&server.url("/demo")).await;
    v.click("launcher in second tab", &widget("launcher")).await;
    let shown = v
        .wait_for(
            "history in a second tab",
            &format!("(t => t.length === 3 && t)({})", widget_texts()),
        )
        .await;
    assert_eq!(shown, json!(want));
    assert_eq!(
        widget_conversation(&v).await,
        conversation,
        "one conversation per visitor"
    );

    for s in [v, a, b] {
        s.close().await;
    }
}

/// The network goes away while the visitor sends two messages: both are queued,
/// shown as sending, and stored exactly once, in order, when it comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_offline_queue_sends_once() {
    let Some(_lock) = browser_turn().await else {
        return;
    };
    let server = TestServer::start(Backend::Sqlite).await;
    server.manual_routing().await;
    let agent = server.agent("agent").await;
    let proxy = NetProxy::start(&server.base).await;
    let driver = Driver::start().await;
    let v = driver.session().await;
    v.goto(&proxy.url("/demo")).await;
    v.click("launcher", &widget("launcher")).await;
    widget_send(&v, "first, online").await;
    v.wait_for("first sent", &widget_has("first, online", "sent"))
        .await;
    let conversation = widget_conversation(&v).await;

    proxy.cut();
    v.wait_for(
        "widget notices the cut",
        &format!(
            "{}.dataset.state !== 'connected'",
            widget("connection-status")
        ),
    )
    .await;
    widget_send(&v, "second, offline").await;
    widget_send(&v, "third, offline").await;
    v.wait_for(
        "both queued",
        "window.SwitchboardWidget.state().pending === 2",
    )
    .await;
    assert!(
        v.execute(
            &format!("return {}", widget_has("third, offline", "sending")),
            json!([])
        )
        .await
            == json!(true)
    );
    assert_eq!(
        stored_bodies(&server, &agent.token, &conversation).await,
        vec!["first, online"],
        "nothing can arrive while the network is cut"
    );

    proxy.restore();
    v.wait_for("second sent", &widget_has("second, offline", "sent"))
        .await;
    v.wait_for("third sent", &widget_has("third, offline", "sent"))
        .await;
    v.wait_for(
        "outbox empty",
        "window.SwitchboardWidget.state().pending === 0",
    )
    .await;
    assert_eq!(
        stored_bodies(&server, &agent.token, &conversation).await,
        vec!["first, online", "second, offline", "third, offline"]
    );
    // A reload does not send anything again.
    v.refresh().await;
    v.click("launcher", &widget("launcher")).await;
    v.wait_for(
        "history after reload",
        &format!("{}.length === 3", widget_texts()),
    )
    .await;
    assert_eq!(
        stored_bodies(&server, &agent.token, &conversation)
            .await
            .len(),
        3
    );
    v.close().await;
}

/// Nobody online: the widget shows the away message and still takes the message;
/// the team lead's dashboard shows the waiting conversation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_away_message_and_dashboard() {
    let Some(_lock) = browser_turn().await else {
        return;
    };
    let server = TestServer::start(Backend::Sqlite).await;
    let team = server.default_team_id().await;
    let admin_token = server.admin_token().await;
    server
        .set_widget(
            json!({"away_message": "We are offline now. Leave a message and we will email you."}),
        )
        .await;
    // Poll mode with long rounds: a conversation stays in the queue until claimed.
    server
        .set_routing(
            &team,
            json!({"routing_mode": "poll", "offer_timeout_ms": 600_000}),
        )
        .await;
    let (_, config) = server.get("/api/widget/config?team=default", None).await;
    assert_eq!(config["available"], json!(false), "{config}");

    let driver = Driver::start().await;
    let v = driver.session().await;
    v.goto(&server.url("/demo")).await;
    v.click("launcher", &widget("launcher")).await;
    v.wait_for(
        "away message",
        &format!(
            "{0}.dataset.mode === 'away' && {0}.textContent.includes('Leave a message')",
            widget("intro")
        ),
    )
    .await;
    widget_send(&v, "Can someone call me tomorrow?").await;
    v.wait_for(
        "accepted while away",
        &widget_has("Can someone call me tomorrow?", "sent"),
    )
    .await;
    v.screenshot("widget-away").await;

    // The admin (a supervisor) opens the team page: agents and the waiting queue.
    let admin = TestAgent {
        id: String::new(),
        email: switchboard_e2e::ADMIN_EMAIL.into(),
        password: switchboard_e2e::ADMIN_PASSWORD.into(),
        token: admin_token.clone(),
        name: "Admin".into(),
    };
    let agent = server.agent("agent").await;
    // The admin takes one conversation at a time: a second visitor has to wait, so
    // the dashboard has a queue to show.
    let (_, me) = server.get("/api/auth/me", Some(&admin_token)).await;
    let admin_id = me["agent"]["id"].as_str().expect("admin id").to_string();
    let (status, body) = server
        .put(
            &format!("/api/agents/{admin_id}/capacity"),
            Some(&admin_token),
            &json!({"capacity": 1}),
        )
        .await;
    assert_eq!(status, 200, "capacity: {body}");
    let second = server.guest().await;
    let (mut ws, _) = server.ws_guest_resumed(&second, 0).await;
    ws.send_message(
        &second.conversation_id,
        "second-1",
        "Is the Azores trip still available?",
    )
    .await;
    let d = driver.session_sized(1280, 900).await;
    inbox_login(&d, &server.base, &admin).await;
    d.click("team link", &inbox("nav-team")).await;
    d.wait_for(
        "agent rows",
        "document.querySelectorAll('[data-testid=workload-agent]').length >= 1",
    )
    .await;
    let _: Value = d
        .wait_for(
            "queue entry",
            "document.querySelector('[data-testid=queue-entry]')",
        )
        .await;
    d.screenshot("dashboard").await;
    // The lead hands the waiting conversation to an agent from its queue row.
    d.wait_for(
        "the agent among the assign choices",
        &format!(
            "document.querySelector('[data-testid=queue-assign] option[value=\"{}\"]')",
            agent.id
        ),
    )
    .await;
    d.execute(
        "const s = document.querySelector('[data-testid=queue-assign]'); \
         s.value = arguments[0]; s.dispatchEvent(new Event('change', {bubbles: true}));",
        json!([agent.id]),
    )
    .await;
    d.wait_for(
        "the queue to empty",
        "!document.querySelector('[data-testid=queue-entry]')",
    )
    .await;
    let (status, view) = server
        .get(
            &format!("/api/conversations/{}", second.conversation_id),
            Some(&admin_token),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["assignee_id"], json!(agent.id), "{view}");
    // Now someone is online: the widget greets instead.
    let (_, config) = server.get("/api/widget/config?team=default", None).await;
    assert_eq!(config["available"], json!(true), "{config}");
    v.close().await;
    d.close().await;
}

/// JS: chooses `value` in the `<select>` with `data-testid` = `testid`, as a user would.
async fn choose(s: &Session, testid: &str, value: &str) {
    s.execute(
        "const el = document.querySelector(`[data-testid=\"${arguments[0]}\"]`); \
         el.value = arguments[1]; el.dispatchEvent(new Event('change', {bubbles: true}));",
        json!([testid, value]),
    )
    .await;
}

/// JS expression: the ids of the listed conversations, comma-joined in list order,
/// equals `ids` (the list shows exactly those).
fn list_is(ids: &[&str]) -> String {
    format!(
        "[...document.querySelectorAll('[data-testid=conversation-item]')].map(b => b.dataset.id).sort().join(',') === {:?}",
        {
            let mut v: Vec<&str> = ids.to_vec();
            v.sort_unstable();
            v.join(",")
        }
    )
}

/// The inbox list narrows by channel and status (and shows channel and lead stage
/// per row); a lead transfers a conversation to another team from the routing
/// panel; the team page draws one SVG bar per agent for open conversations and for
/// today's first response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_filters_transfer_and_charts() {
    let Some(_lock) = browser_turn().await else {
        return;
    };
    let server = TestServer::start(Backend::Sqlite).await;
    server.manual_routing().await;
    let team = server.default_team_id().await;
    let sales = server.create_team("Sales", "sales").await;
    let admin_token = server.admin_token().await;
    let owner = server.agent("agent").await;

    // Three conversations: a quick-chat one, a widget one, a resolved widget one.
    let (status, link) = server
        .post(
            "/api/quick-links",
            Some(&owner.token),
            &json!({"source": "LinkedIn", "handle": "filters"}),
        )
        .await;
    assert_eq!(status, 201, "{link}");
    let quick = server
        .guest_with(json!({"quick_link": "filters/linkedin"}))
        .await;
    let web = server.guest().await;
    let done = server.guest().await;
    for (g, text) in [
        (&quick, "Quick question about prices"),
        (&web, "Hello from the website"),
        (&done, "Thanks, all sorted"),
    ] {
        let (status, body) = server
            .post_message(&g.token, &g.conversation_id, "m1", text)
            .await;
        assert_eq!(status, 201, "{body}");
    }
    // The owner answers the quick chat: today's first response for the chart.
    let (status, body) = server
        .post_message(&owner.token, &quick.conversation_id, "r1", "Happy to help!")
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = server
        .post(
            &format!("/api/conversations/{}/status", done.conversation_id),
            Some(&admin_token),
            &json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, listed) = server
        .get("/api/conversations?channel=quick_chat", Some(&admin_token))
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        listed["conversations"].as_array().unwrap().len(),
        1,
        "{listed}"
    );

    let admin = TestAgent {
        id: String::new(),
        email: switchboard_e2e::ADMIN_EMAIL.into(),
        password: switchboard_e2e::ADMIN_PASSWORD.into(),
        token: admin_token.clone(),
        name: "Admin".into(),
    };
    let driver = Driver::start().await;
    let d = driver.session_sized(1280, 900).await;
    inbox_login(&d, &server.base, &admin).await;
    let all = [
        quick.conversation_id.as_str(),
        web.conversation_id.as_str(),
        done.conversation_id.as_str(),
    ];
    d.wait_for("all three conversations", &list_is(&all)).await;
    // Per row: the channel label and the lead's stage (from the list payload).
    d.wait_for(
        "channel and stage chips",
        &format!(
            "(() => {{ const b = document.querySelector('[data-testid=conversation-item][data-id=\"{}\"]'); \
             return b && b.querySelector('[data-testid=conv-channel]').textContent.includes('Quick chat') \
             && !b.querySelector('[data-testid=conv-stage]').hidden; }})()",
            quick.conversation_id
        ),
    )
    .await;

    choose(&d, "filter-channel", "quick_chat").await;
    d.wait_for("only the quick chat", &list_is(&[&quick.conversation_id]))
        .await;
    choose(&d, "filter-channel", "widget").await;
    d.wait_for(
        "only the widget chats",
        &list_is(&[&web.conversation_id, &done.conversation_id]),
    )
    .await;
    choose(&d, "filter-status", "resolved").await;
    d.wait_for(
        "the resolved widget chat",
        &list_is(&[&done.conversation_id]),
    )
    .await;
    d.screenshot("inbox-filters").await;
    choose(&d, "filter-status", "").await;
    choose(&d, "filter-channel", "").await;
    d.wait_for("all three again", &list_is(&all)).await;

    // Transfer the open widget chat to Sales from the routing panel.
    d.click(
        "the widget conversation",
        &format!(
            "document.querySelector('[data-testid=conversation-item][data-id=\"{}\"]')",
            web.conversation_id
        ),
    )
    .await;
    d.wait_for(
        "the widget conversation open",
        &format!(
            "document.getElementById('conversation-view').dataset.id === '{}'",
            web.conversation_id
        ),
    )
    .await;
    d.click("routing toggle", &inbox("routing-toggle")).await;
    d.wait_for(
        "Sales among the transfer targets",
        &format!("document.querySelector('[data-testid=transfer-team] option[value=\"{sales}\"]')"),
    )
    .await;
    choose(&d, "transfer-team", &sales).await;
    d.click("transfer", &inbox("transfer-submit")).await;
    d.wait_for(
        "the transfer in the routing history",
        "document.querySelector('[data-testid=routing-events] [data-kind=transferred]')",
    )
    .await;
    let (status, view) = server
        .get(
            &format!("/api/conversations/{}", web.conversation_id),
            Some(&admin_token),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["team_id"], json!(sales), "{view}");

    // The team page: one bar per agent in both charts, the owner's with a value.
    let (_, workload) = server
        .get(
            &format!("/api/team/workload?team_id={team}"),
            Some(&admin_token),
        )
        .await;
    let agents = workload["teams"][0]["agents"].as_array().unwrap().len();
    assert!(agents >= 2, "{workload}");
    d.click("team link", &inbox("nav-team")).await;
    let section = format!("document.querySelector('[data-testid=team][data-team-id=\"{team}\"]')");
    d.wait_for(
        "one open-conversations bar per agent",
        &format!(
            "{section} && {section}.querySelectorAll('[data-testid=chart-open] svg [data-testid=chart-bar]').length === {agents}"
        ),
    )
    .await;
    d.wait_for(
        "the owner's first response bar",
        &format!(
            "{section} && {section}.querySelectorAll('[data-testid=chart-first-response] svg [data-testid=chart-bar]').length === {agents} \
             && {section}.querySelector('[data-testid=chart-first-response] [data-key=\"{}\"] rect:not(.is-empty)')",
            owner.id
        ),
    )
    .await;
    d.execute(
        "document.querySelector(`[data-testid=team][data-team-id=\"${arguments[0]}\"]`).scrollIntoView()",
        json!([team]),
    )
    .await;
    d.screenshot("dashboard-charts").await;
    d.close().await;
}

/// The bot in the inbox and on the bot page: a visitor's question gets the bot's
/// answer (labelled as the bot in the widget, with its source and confidence in the
/// inbox); the agent pauses the bot (badge and API agree), asks for a suggestion
/// (the draft waits in the composer, nothing is sent), edits and sends it (the
/// visitor gets it); an admin creates a rule on the #/bot page (the API has it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_bot_pause_suggest_and_settings() {
    let Some(_lock) = browser_turn().await else {
        return;
    };
    let answer = "We are open Monday to Friday, 9:00 to 17:00.";
    let draft = "The March package still has seats. Shall I reserve one for you?";
    let fake = FakeOpenAi::start(FakeReply::Content(bot_answer(answer, 0.87, &[]))).await;
    let model = fake.base.clone();
    let server = TestServer::start_with(Backend::Sqlite, move |cfg| {
        cfg.ai.base_url = Some(model.clone());
        cfg.ai.api_key = Some(Secret::new("k"));
    })
    .await;
    server.manual_routing().await;
    let team = server.default_team_id().await;
    let admin_token = server.admin_token().await;
    let (status, body) = server
        .put(
            &format!("/api/teams/{team}/bot"),
            Some(&admin_token),
            &json!({"enabled": true, "burst_window_ms": 0}),
        )
        .await;
    assert_eq!(status, 200, "bot settings: {body}");
    let agent = server.agent("agent").await;

    let driver = Driver::start().await;
    let a = driver.session_sized(1280, 900).await;
    inbox_login(&a, &server.base, &agent).await;

    // The visitor asks; the bot answers, labelled as the bot.
    let v = driver.session().await;
    v.goto(&server.url("/demo")).await;
    v.click("launcher", &widget("launcher")).await;
    widget_send(&v, "When are you open?").await;
    v.wait_for(
        "the bot's answer in the widget, labelled",
        &format!(
            "[...{WIDGET_ROOT}.querySelectorAll('[data-testid=message].bot')].some(m => \
             m.querySelector('.bubble').textContent === {} && m.querySelector('[data-testid=bot-label]'))",
            json!(answer)
        ),
    )
    .await;
    let conversation = widget_conversation(&v).await;

    // The agent opens it: the answer with its label and provenance, the bot active.
    a.click(
        "the visitor's conversation",
        &format!(
            "document.querySelector('[data-testid=conversation-item][data-id=\"{conversation}\"]')"
        ),
    )
    .await;
    a.wait_for("the bot's answer in the inbox", &inbox_has(answer))
        .await;
    a.wait_for(
        "bot label and provenance",
        "(() => { const m = document.querySelector('#message-list [data-testid=message][data-kind=bot]'); \
         const p = m && m.querySelector('[data-testid=bot-provenance]'); \
         return Boolean(p && m.querySelector('[data-testid=bot-label]') && p.textContent.includes('AI') \
         && p.textContent.includes('confidence 87%')); })()",
    )
    .await;
    a.wait_for(
        "bot active",
        &format!("{}.dataset.status === 'active'", inbox("bot-status")),
    )
    .await;

    // Pause.
    a.wait_for(
        "the pause button",
        &format!("{}.textContent === 'Pause bot'", inbox("bot-toggle")),
    )
    .await;
    a.click("pause bot", &inbox("bot-toggle")).await;
    a.wait_for(
        "paused badge",
        &format!(
            "{0}.dataset.status === 'paused' && {0}.textContent === 'Paused' && {1}.textContent === 'Resume bot'",
            inbox("bot-status"),
            inbox("bot-toggle")
        ),
    )
    .await;
    let (status, state) = server
        .get(
            &format!("/api/conversations/{conversation}/bot"),
            Some(&agent.token),
        )
        .await;
    assert_eq!(status, 200, "{state}");
    assert_eq!(state["status"], "paused", "{state}");

    // A suggestion: in the composer, with its confidence, and not sent.
    let before = server.history(&agent.token, &conversation).await.len();
    fake.respond(move |_| FakeReply::Content(bot_answer(draft, 0.74, &[])));
    a.click("suggest reply", &inbox("bot-suggest")).await;
    a.wait_for(
        "the draft in the composer",
        &format!(
            "{}.value === {} && {}.textContent.includes('confidence 74%')",
            inbox("composer-input"),
            json!(draft),
            inbox("bot-suggestion")
        ),
    )
    .await;
    a.screenshot("bot-inbox").await;
    assert_eq!(
        server.history(&agent.token, &conversation).await.len(),
        before,
        "a suggestion is never sent by itself"
    );

    // The agent edits and sends it; the visitor gets the edited text.
    a.type_into(
        "agent composer",
        &inbox("composer-input"),
        " It is Rp 30.000.000.\u{E007}",
    )
    .await;
    let sent = format!("{draft} It is Rp 30.000.000.");
    v.wait_for(
        "the edited draft in the widget",
        &widget_texts_include(&sent),
    )
    .await;
    let stored = stored_bodies(&server, &agent.token, &conversation).await;
    assert_eq!(stored.last(), Some(&sent), "{stored:?}");
    v.close().await;
    a.close().await;

    // An admin adds a rule on the bot page.
    let admin = TestAgent {
        id: String::new(),
        email: switchboard_e2e::ADMIN_EMAIL.into(),
        password: switchboard_e2e::ADMIN_PASSWORD.into(),
        token: admin_token.clone(),
        name: "Admin".into(),
    };
    let d = driver.session_sized(1280, 1400).await;
    inbox_login(&d, &server.base, &admin).await;
    d.click("bot link", &inbox("nav-bot")).await;
    d.wait_for(
        "settings loaded",
        &format!(
            "{}.checked && document.querySelector('[data-testid=bot-model]').textContent.includes('Model')",
            inbox("bot-enabled")
        ),
    )
    .await;
    d.click("new rule", &inbox("bot-rule-new")).await;
    d.type_into("rule name", &inbox("bot-rule-name"), "Opening hours")
        .await;
    d.type_into("rule priority", &inbox("bot-rule-priority"), "5")
        .await;
    d.type_into(
        "rule keywords",
        &inbox("bot-rule-pattern"),
        "open, opening hours",
    )
    .await;
    d.type_into(
        "rule reply",
        &inbox("bot-rule-reply"),
        "We are open 9:00 to 17:00 on weekdays.",
    )
    .await;
    d.click("save rule", &inbox("bot-rule-save")).await;
    d.wait_for(
        "the rule in the list",
        "[...document.querySelectorAll('[data-testid=bot-rule] .bot-rule-name')].some(n => n.textContent === 'Opening hours')",
    )
    .await;
    let (status, rules) = server
        .get(&format!("/api/teams/{team}/bot/rules"), Some(&admin_token))
        .await;
    assert_eq!(status, 200, "{rules}");
    let rule = rules
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Opening hours")
        .unwrap_or_else(|| panic!("rule stored: {rules}"));
    assert_eq!(rule["pattern"], "open, opening hours", "{rule}");
    assert_eq!(rule["action"], "reply", "{rule}");
    assert_eq!(rule["enabled"], true, "{rule}");
    d.execute(
        "document.getElementById('bot-page').scrollTop = 0",
        json!([]),
    )
    .await;
    d.screenshot("bot-settings").await;
    d.close().await;
    fake.stop().await;
}

/// JS expression: true when the widget shows a message whose text is `body`.
fn widget_texts_include(body: &str) -> String {
    format!("{}.includes({})", widget_texts(), json!(body))
}
