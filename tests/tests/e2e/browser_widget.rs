//! Browser tests of what a customer sees, at desktop (1366×900) and phone
//! (390×844) size, in the light and the dark colour scheme: the hosted quick-chat
//! page (whose link it is, the chat filling the page), the widget open on `/demo`,
//! the friendly 404 page. Every screen is checked for sideways scrolling and for
//! serious or critical axe-core violations (`Session::check_screen`), and
//! photographed. Also: opening the widget without writing is no conversation for
//! agents; the away message goes once an agent has answered.
//!
//! SQLite only (the screens do not care about the backend). Skipped with a notice
//! when Chromium is missing, unless `SWITCHBOARD_TEST_REQUIRE_BROWSER=1`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::json;
use switchboard_e2e::browser::{
    browser_turn, widget, Driver, Session, DESKTOP, PHONE, WIDGET_ROOT,
};
use switchboard_e2e::{eventually, Backend, TestAgent, TestServer};

/// Creates an agent called `name` in the default team ("Support") and logs it in.
async fn agent_named(server: &TestServer, name: &str, email: &str) -> TestAgent {
    let admin = server.admin_token().await;
    let password = "agent-password-1";
    let (status, body) = server
        .post(
            "/api/agents",
            Some(&admin),
            &json!({"email": email, "name": name, "password": password, "role": "agent"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    TestAgent {
        id: body["agent"]["id"].as_str().unwrap().to_string(),
        email: email.into(),
        password: password.into(),
        token: server.login(email, password).await,
        name: name.into(),
    }
}

/// A browser with its viewport at `size`.
async fn browser(driver: &Driver, size: (u32, u32)) -> Session {
    let s = driver.session().await;
    s.resize(size.0, size.1).await;
    s
}

/// Waits until the widget's panel is open and its socket connected (so its guest
/// session exists); returns the conversation id.
async fn widget_connected(s: &Session) -> String {
    s.wait_for(
        "the widget open and connected",
        &format!(
            "{0} && !{0}.hidden && {1}.dataset.state === 'connected'",
            widget("panel"),
            widget("connection-status")
        ),
    )
    .await;
    s.wait_for(
        "the widget's conversation",
        "window.SwitchboardWidget.state().conversationId",
    )
    .await
    .as_str()
    .unwrap()
    .to_string()
}

/// The visitor writes `text`; waits until the hub has stored it.
async fn visitor_says(s: &Session, text: &str) {
    s.type_into(
        "the widget composer",
        &widget("composer-input"),
        &format!("{text}\u{E007}"),
    )
    .await;
    s.wait_for(
        "the message stored",
        &format!(
            "[...{WIDGET_ROOT}.querySelectorAll('[data-testid=message][data-status=sent], \
             [data-testid=message][data-status=read]')].some(m => m.querySelector('.bubble').textContent === {})",
            json!(text)
        ),
    )
    .await;
}

/// An agent answers over HTTP; waits until the visitor sees it.
async fn agent_answers(
    server: &TestServer,
    s: &Session,
    agent: &TestAgent,
    conv: &str,
    text: &str,
) {
    let (status, body) = server
        .post_message(&agent.token, conv, "reply-1", text)
        .await;
    assert_eq!(status, 201, "{body}");
    s.wait_for(
        "the answer in the widget",
        &format!(
            "[...{WIDGET_ROOT}.querySelectorAll('[data-testid=message][data-status=received] .bubble')]\
             .some(b => b.textContent === {})",
            json!(text)
        ),
    )
    .await;
}

/// JS expression: the widget panel's box `{left, top, width, height}` and the
/// viewport's `{vw, vh}`.
const PANEL_BOX: &str =
    "(() => { const r = document.getElementById('switchboard-widget-host-7d1c')\
     .shadowRoot.querySelector('[data-testid=panel]').getBoundingClientRect(); \
     return {left: r.left, top: r.top, width: r.width, height: r.height, \
             vw: document.documentElement.clientWidth, vh: window.innerHeight}; })()";

/// The quick-chat page says whose link it is and is the chat, at both widths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_quick_chat_page_desktop_and_phone() {
    let Some(_lock) = browser_turn().await else {
        return;
    };
    let server = TestServer::start(Backend::Sqlite).await;
    server.manual_routing().await;
    let sarah = agent_named(&server, "Sarah Jones", "sarah@test.local").await;
    let (status, link) = server
        .post(
            "/api/quick-links",
            Some(&sarah.token),
            &json!({"source": "linkedin", "handle": "sarah"}),
        )
        .await;
    assert_eq!(status, 201, "{link}");

    let driver = Driver::start().await;
    let v = browser(&driver, DESKTOP).await;
    v.goto(&server.url("/q/sarah/linkedin")).await;
    let card = v
        .wait_for(
            "the owner's card",
            "(() => { const t = id => document.querySelector(`[data-testid=${id}]`)?.textContent.trim(); \
             return t('quick-chat-agent') && [t('quick-chat-agent'), t('quick-chat-initials'), t('quick-chat-team')]; })()",
        )
        .await;
    assert_eq!(card, json!(["Sarah Jones", "SJ", "Support"]));
    let conv = widget_connected(&v).await;
    // The chat is the page: no launcher, no close button, the panel below the card.
    let chrome = v
        .execute(
            &format!(
                "return [{}.hidden, getComputedStyle({WIDGET_ROOT}.querySelector('.close')).display]",
                widget("launcher")
            ),
            json!([]),
        )
        .await;
    assert_eq!(chrome, json!([true, "none"]));
    let card_bottom = v
        .execute(
            "return document.querySelector('[data-testid=quick-chat-card]').getBoundingClientRect().bottom",
            json!([]),
        )
        .await;
    let panel = v.execute(&format!("return {PANEL_BOX}"), json!([])).await;
    assert!(
        panel["top"].as_f64().unwrap() >= card_bottom.as_f64().unwrap(),
        "the chat sits below the card: {panel}"
    );
    assert!(
        panel["height"].as_f64().unwrap() >= 500.0,
        "the chat fills the page: {panel}"
    );

    visitor_says(&v, "Hi Sarah, is the Bali package still available in May?").await;
    agent_answers(
        &server,
        &v,
        &sarah,
        &conv,
        "Hi! Yes, May still has places. Shall I send you the details?",
    )
    .await;
    v.check_screen("quick-chat-1366").await;

    v.resize(PHONE.0, PHONE.1).await;
    let panel = v
        .wait_for(
            "the chat full width on a phone",
            &format!("(p => p.width === p.vw && p.left === 0 && p)({PANEL_BOX})"),
        )
        .await;
    assert!(
        panel["top"].as_f64().unwrap() + panel["height"].as_f64().unwrap()
            <= panel["vh"].as_f64().unwrap() + 1.0,
        "the chat ends on the screen: {panel}"
    );
    v.check_screen("quick-chat-390").await;
    v.close().await;
}

/// The widget on a host page: a floating panel on a desktop, the whole screen on
/// a phone; both pass the layout and accessibility checks in both schemes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_widget_open_desktop_and_phone() {
    let Some(_lock) = browser_turn().await else {
        return;
    };
    let server = TestServer::start(Backend::Sqlite).await;
    server.manual_routing().await;
    let agent = agent_named(&server, "Ayu Lestari", "ayu@test.local").await;

    let driver = Driver::start().await;
    let v = browser(&driver, DESKTOP).await;
    v.goto(&server.url("/demo")).await;
    v.click("the launcher", &widget("launcher")).await;
    let conv = widget_connected(&v).await;
    visitor_says(&v, "Do you have rooms in Santorini for two in June?").await;
    agent_answers(
        &server,
        &v,
        &agent,
        &conv,
        "We do — the cliff-top hotel has two rooms left.",
    )
    .await;
    // The hub's design tokens reached the shadow root.
    v.wait_for(
        "the design tokens in the widget",
        &format!("getComputedStyle({WIDGET_ROOT}.host).getPropertyValue('--sb-space-4').trim() === '16px'"),
    )
    .await;
    let panel = v.execute(&format!("return {PANEL_BOX}"), json!([])).await;
    assert!(
        panel["width"].as_f64().unwrap() < 500.0 && panel["left"].as_f64().unwrap() > 0.0,
        "a floating panel on a desktop: {panel}"
    );
    v.check_screen("widget-open-1366").await;

    v.resize(PHONE.0, PHONE.1).await;
    v.wait_for(
        "the panel covering a phone's screen",
        &format!("(p => p.left === 0 && p.top === 0 && p.width === p.vw && p.height === p.vh)({PANEL_BOX})"),
    )
    .await;
    v.check_screen("widget-open-390").await;
    v.close().await;
}

/// The pre-chat form on a phone: labelled, readable in both schemes, and it leads
/// to the composer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_widget_prechat_on_a_phone() {
    let Some(_lock) = browser_turn().await else {
        return;
    };
    let server = TestServer::start(Backend::Sqlite).await;
    server
        .set_widget(json!({"prechat_fields": ["name", "email"], "prechat_required": true}))
        .await;
    let driver = Driver::start().await;
    let v = browser(&driver, PHONE).await;
    v.goto(&server.url("/demo")).await;
    v.click("the launcher", &widget("launcher")).await;
    v.wait_for(
        "the pre-chat form",
        &format!("{0} && !{0}.hidden", widget("prechat-form")),
    )
    .await;
    v.check_screen("widget-prechat-390").await;
    v.type_into("name", &widget("prechat-name"), "Maya Visitor")
        .await;
    v.type_into("email", &widget("prechat-email"), "maya@example.com")
        .await;
    v.click("start chat", &widget("prechat-submit")).await;
    widget_connected(&v).await;
    visitor_says(&v, "Hello from my phone").await;
    v.close().await;
}

/// Serves `html` as every page of a separate origin (a customer's site) with the
/// given Content-Security-Policy; returns its base URL.
async fn host_site(html: String, csp: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (html, csp) = (html.clone(), csp.clone());
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                     Content-Security-Policy: {csp}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{html}",
                    html.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    base
}

/// A customer's site whose CSP lets the widget's script and connections in but
/// keeps the hub's stylesheet out: the widget still has its colours, from its own
/// fallbacks, and stays accessible.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_widget_on_a_strict_csp_site() {
    let Some(_lock) = browser_turn().await else {
        return;
    };
    let server = TestServer::start(Backend::Sqlite).await;
    let hub = server.base.clone();
    let ws_hub = hub.replace("http://", "ws://");
    let site = host_site(
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Strict shop</title></head>\
             <body><main><h1>Strict shop</h1><p>Our CSP allows only what it must.</p></main>\
             <script src=\"{hub}/widget.js\" data-team=\"default\" data-source=\"csp\"></script></body></html>"
        ),
        format!("default-src 'self'; script-src {hub}; connect-src {hub} {ws_hub}; style-src 'self'"),
    )
    .await;
    let driver = Driver::start().await;
    let v = browser(&driver, DESKTOP).await;
    v.goto(&site).await;
    v.click("the launcher", &widget("launcher")).await;
    widget_connected(&v).await;
    let look = v
        .execute(
            &format!(
                "const r = {WIDGET_ROOT}; return [getComputedStyle(r.host).getPropertyValue('--sb-accent'), \
                 getComputedStyle(r.querySelector('.head')).backgroundColor, \
                 getComputedStyle(r.querySelector('.panel')).backgroundColor]"
            ),
            json!([]),
        )
        .await;
    assert_eq!(
        look,
        json!(["", "rgb(67, 56, 202)", "rgb(255, 255, 255)"]),
        "the hub's stylesheet blocked (no tokens); the fallback accent and surface"
    );
    v.assert_accessible("the widget on a strict-CSP site").await;
    v.close().await;
}

/// Opening the widget (or the quick-chat page) creates the guest's session but no
/// conversation any agent sees; the first message makes it one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_opening_the_widget_is_no_conversation_for_agents() {
    let Some(_lock) = browser_turn().await else {
        return;
    };
    let server = TestServer::start(Backend::Sqlite).await;
    let agent = agent_named(&server, "Ayu Lestari", "ayu@test.local").await;
    let admin = server.admin_token().await;
    let (status, link) = server
        .post(
            "/api/quick-links",
            Some(&agent.token),
            &json!({"source": "instagram", "handle": "ayu"}),
        )
        .await;
    assert_eq!(status, 201, "{link}");

    let driver = Driver::start().await;
    let v = driver.session().await;
    v.goto(&server.url("/demo")).await;
    v.click("the launcher", &widget("launcher")).await;
    let conv = widget_connected(&v).await;
    let q = driver.session().await;
    q.goto(&server.url("/q/ayu/instagram")).await;
    let quick_conv = widget_connected(&q).await;

    for token in [&agent.token, &admin] {
        let ids: Vec<String> = server
            .conversations(token)
            .await
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect();
        assert!(
            !ids.contains(&conv) && !ids.contains(&quick_conv),
            "an opened widget without a message is no conversation for agents: {ids:?}"
        );
    }

    visitor_says(&v, "Hello, anyone there?").await;
    eventually("the conversation in the agent's list", || async {
        server
            .conversations(&agent.token)
            .await
            .iter()
            .any(|c| c["id"] == conv.as_str())
            .then_some(())
    })
    .await;
    v.close().await;
    q.close().await;
}

/// Nobody online: the widget shows the away message; once an agent has answered
/// it is gone — also after a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_away_message_goes_once_answered() {
    let Some(_lock) = browser_turn().await else {
        return;
    };
    let server = TestServer::start(Backend::Sqlite).await;
    server.manual_routing().await;
    server
        .set_widget(
            json!({"away_message": "We are away. Leave a message and we will answer here."}),
        )
        .await;
    let agent = agent_named(&server, "Ayu Lestari", "ayu@test.local").await;

    let driver = Driver::start().await;
    let v = driver.session().await;
    v.goto(&server.url("/demo")).await;
    v.click("the launcher", &widget("launcher")).await;
    let away = format!(
        "{0}.dataset.mode === 'away' && {0}.textContent.includes('We are away')",
        widget("intro")
    );
    v.wait_for(
        "the away message",
        &format!("({away}) && !{}.hidden", widget("intro")),
    )
    .await;
    let conv = widget_connected(&v).await;
    visitor_says(&v, "Can someone call me tomorrow?").await;
    assert_eq!(
        v.execute(&format!("return {}.hidden", widget("intro")), json!([]))
            .await,
        json!(false),
        "still away while nobody has answered"
    );

    agent_answers(&server, &v, &agent, &conv, "Sure, what time suits you?").await;
    v.wait_for(
        "the away message gone",
        &format!("{}.hidden", widget("intro")),
    )
    .await;

    v.refresh().await;
    v.click("the launcher", &widget("launcher")).await;
    // The config is applied (mode "away" again) and the history is back…
    v.wait_for(
        "the reloaded widget with its history",
        &format!(
            "({away}) && {WIDGET_ROOT}.querySelectorAll('[data-testid=message]').length === 2"
        ),
    )
    .await;
    // …and the answered conversation still shows no away message.
    assert_eq!(
        v.execute(&format!("return {}.hidden", widget("intro")), json!([]))
            .await,
        json!(true),
        "the away message came back after a reload"
    );
    v.close().await;
}

/// An unknown quick-chat link shows a person a friendly page with a way home, in
/// the hub's look, at both widths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_not_found_page() {
    let Some(_lock) = browser_turn().await else {
        return;
    };
    let server = TestServer::start(Backend::Sqlite).await;
    let driver = Driver::start().await;
    let v = browser(&driver, DESKTOP).await;
    v.goto(&server.url("/q/nobody/linkedin")).await;
    v.wait_for(
        "the friendly page",
        "document.querySelector('[data-testid=error-title]')?.textContent === 'This chat link is not active'",
    )
    .await;
    v.check_screen("not-found").await;
    v.resize(PHONE.0, PHONE.1).await;
    v.goto(&server.url("/no/such/page")).await;
    v.wait_for(
        "the friendly page for an unknown route",
        "document.querySelector('[data-testid=error-title]')?.textContent === 'Page not found'",
    )
    .await;
    v.check_screen("not-found-390").await;
    v.click(
        "the way home",
        "document.querySelector('[data-testid=error-home]')",
    )
    .await;
    v.wait_for(
        "the hub's home page",
        &format!(
            "location.href === {} && document.readyState === 'complete'",
            json!(server.url("/"))
        ),
    )
    .await;
    v.close().await;
}

/// A visitor typing faster than the hub's guest limit loses nothing: the messages
/// the hub refused (`rate_limited`) stay "sending" and go again after the wait, so
/// every message is stored exactly once, in the order typed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_widget_resends_what_the_rate_limit_refused() {
    let Some(_lock) = browser_turn().await else {
        return;
    };
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.guest_messages.per_guest_burst = 2;
        c.guest_messages.per_guest_per_min = 600;
    })
    .await;
    let admin = server.admin_token().await;
    let driver = Driver::start().await;
    let v = driver.session().await;
    v.goto(&server.url("/demo")).await;
    v.click("the launcher", &widget("launcher")).await;
    let conv = widget_connected(&v).await;
    let texts: Vec<String> = (1..=6).map(|i| format!("quick message {i}")).collect();
    // The first one makes the conversation visible to agents (and uses the burst).
    visitor_says(&v, &texts[0]).await;
    for text in &texts[1..] {
        v.type_into(
            "the widget composer",
            &widget("composer-input"),
            &format!("{text}\u{E007}"),
        )
        .await;
    }
    let stored = eventually("all six messages stored", || async {
        let bodies: Vec<String> = server
            .history(&admin, &conv)
            .await
            .iter()
            .filter(|m| m["sender"]["kind"] == "guest")
            .map(|m| m["body"].as_str().unwrap_or_default().to_string())
            .collect();
        (bodies.len() >= texts.len()).then_some(bodies)
    })
    .await;
    assert_eq!(stored, texts, "each message once, in the order typed");
    v.wait_for(
        "no message left sending in the widget",
        &format!("{WIDGET_ROOT}.querySelectorAll('[data-testid=message][data-status=sending]').length === 0"),
    )
    .await;
    v.close().await;
}
