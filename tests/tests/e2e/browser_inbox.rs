//! Browser tests of the agent inbox as a finished product (issue 14): every screen
//! at 1366×900 and at 390×844, in the light and the dark scheme, with no sideways
//! scrolling and no serious or critical axe-core violation; the stacked views of a
//! phone (list → conversation → details, on-screen and browser back); the keyboard
//! path (list → conversation → composer → send, and claiming an offer); and the
//! installable app (manifest, service worker, the shell opening with the hub
//! unreachable).
//!
//! SQLite only: these tests check layout, accessibility and the browser side of
//! the PWA, none of which depends on the storage backend (the API behaviour they
//! lean on is covered on both backends elsewhere). Screenshots go to
//! `target/screenshots/` (`docs/screenshots/` with `SWITCHBOARD_UPDATE_SCREENSHOTS=1`).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::{json, Value};
use switchboard_e2e::browser::{
    browser_turn, inbox, inbox_login, Driver, NetProxy, Session, DESKTOP, PHONE,
};
use switchboard_e2e::{Backend, TestGuest, TestServer, Ws};

/// Presses one key as the user would (a trusted key event through DevTools, so
/// Tab moves focus and Enter activates the focused control).
async fn press(s: &Session, key: &str, shift: bool) {
    let (code, vk, text) = match key {
        "Tab" => ("Tab", 9, ""),
        "Enter" => ("Enter", 13, "\r"),
        other => panic!("no key mapping for {other}"),
    };
    let modifiers = if shift { 8 } else { 0 };
    for kind in ["keyDown", "keyUp"] {
        let mut params = json!({
            "type": kind, "key": key, "code": code, "modifiers": modifiers,
            "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk,
        });
        if kind == "keyDown" && !text.is_empty() {
            params["text"] = json!(text);
        }
        s.cdp("Input.dispatchKeyEvent", params).await;
    }
}

/// Types `text` into whatever has the focus, as keyboard input.
async fn type_text(s: &Session, text: &str) {
    s.cdp("Input.insertText", json!({"text": text})).await;
}

/// `data-testid` and `data-id` of the focused element, e.g. "conversation-item:…".
async fn focused(s: &Session) -> String {
    s.execute(
        "const e = document.activeElement; \
         return e ? `${e.dataset.testid || e.id || e.tagName}:${e.dataset.id || ''}` : '';",
        json!([]),
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_string()
}

/// Presses Tab (at most `max` times) until `want(focused)` holds; fails otherwise.
async fn tab_to(s: &Session, what: &str, want: impl Fn(&str) -> bool, max: usize) {
    for _ in 0..max {
        press(s, "Tab", false).await;
        if want(&focused(s).await) {
            return;
        }
    }
    panic!(
        "{what}: not reached with Tab (focus ended on {})",
        focused(s).await
    );
}

/// A widget visitor with the given name, source and page, connected over the
/// guest socket.
/// An empty `name` is a visitor who gave none.
async fn visitor(server: &TestServer, name: &str, source: &str, page: &str) -> (TestGuest, Ws) {
    let mut body = json!({"source": source, "page_url": page});
    if !name.is_empty() {
        body["name"] = json!(name);
    }
    let guest = server.guest_with(body).await;
    let (ws, _) = server.ws_guest_resumed(&guest, 0).await;
    (guest, ws)
}

/// JS expression: the open conversation's id, when its history has loaded.
const OPEN_ID: &str = "(() => { const v = document.getElementById('conversation-view'); \
     return !document.getElementById('view-body').hidden && !document.getElementById('message-list').hasAttribute('aria-busy') \
     ? v.dataset.id : null; })()";

/// Clicks the list row of conversation `id` and waits until it is open.
async fn open_row(d: &Session, what: &str, id: &str) {
    d.click(
        what,
        &format!("document.querySelector('[data-testid=conversation-item][data-id=\"{id}\"]')"),
    )
    .await;
    d.wait_for("conversation open", OPEN_ID).await;
}

/// JS expression: whether the element matching `selector` is rendered (not
/// `display: none`, itself or through an ancestor).
fn shown(selector: &str) -> String {
    format!("(() => {{ const e = document.querySelector({}); return Boolean(e && e.getClientRects().length); }})()", json!(selector))
}

/// The inbox's screens at both widths and in both schemes, the keyboard path and
/// the phone's stacked navigation, with real conversations: three visitors with
/// different names, sources and pages, poll offers, an agent reply read by the
/// visitor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_inbox_screens_keyboard_and_phone_navigation() {
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
    let lead = server.agent("lead").await;

    let driver = Driver::start().await;
    let d = driver.session_sized(DESKTOP.0, DESKTOP.1).await;
    d.resize(DESKTOP.0, DESKTOP.1).await;
    inbox_login(&d, &server.base, &lead).await;

    // A visitor writes: the lead gets the poll offer.
    let (maya, mut maya_ws) = visitor(
        &server,
        "Maya Lindqvist",
        "pricing-page",
        "https://shop.example.com/pricing?plan=team",
    )
    .await;
    maya_ws
        .send_message(
            &maya.conversation_id,
            "m-1",
            "Hello! Do you ship to Germany?",
        )
        .await;
    d.wait_for(
        "offer card",
        "document.querySelectorAll('[data-testid=offer]').length === 1",
    )
    .await;
    d.check_screen("offer-1366").await;

    // Keyboard: from the last control of the top bar, Tab reaches the offer's Claim
    // button and Enter claims it; the claimed conversation opens.
    d.execute("document.getElementById('logout').focus()", json!([]))
        .await;
    tab_to(&d, "offer claim", |f| f.starts_with("offer-claim"), 3).await;
    press(&d, "Enter", false).await;
    let opened = d.wait_for("claimed conversation open", OPEN_ID).await;
    assert_eq!(
        opened,
        json!(maya.conversation_id),
        "Enter on Claim opens the won conversation"
    );
    // "You got it" confirms the claim, then goes by itself (screenshots without it).
    d.wait_for(
        "claim confirmed",
        "document.getElementById('toasts').textContent.includes('You got it')",
    )
    .await;
    d.wait_for(
        "toast gone",
        "document.getElementById('toasts').children.length === 0",
    )
    .await;

    // More visitors, so the list has rows that differ.
    let (omar, mut omar_ws) = visitor(
        &server,
        "Omar Haddad",
        "spring-campaign",
        "https://shop.example.com/",
    )
    .await;
    omar_ws
        .send_message(
            &omar.conversation_id,
            "o-1",
            "Is the spring offer still on?",
        )
        .await;
    let (_anon, mut anon_ws) = visitor(&server, "", "docs", "https://docs.example.com/setup").await;
    anon_ws
        .send_message(&_anon.conversation_id, "a-1", "How do I reset my password?")
        .await;
    d.wait_for(
        "three rows",
        "document.querySelectorAll('[data-testid=conversation-item]').length === 3",
    )
    .await;

    // Keyboard: from the search box, Tab through the rows to Maya's, Enter opens
    // it and puts the focus in the composer; typing and Enter sends.
    d.execute(
        "document.getElementById('conversation-search').focus()",
        json!([]),
    )
    .await;
    let maya_row = format!("conversation-item:{}", maya.conversation_id);
    tab_to(&d, "Maya's row", |f| f == maya_row, 6).await;
    press(&d, "Enter", false).await;
    d.wait_for(
        "composer focused",
        "document.activeElement === document.getElementById('composer-input')",
    )
    .await;
    let reply = "Yes, we ship to Germany within 3 days.";
    type_text(&d, reply).await;
    press(&d, "Enter", false).await;
    let has_reply = format!(
        "[...document.querySelectorAll('#message-list [data-testid=message] .bubble')].some(b => b.textContent === {})",
        json!(reply)
    );
    d.wait_for("reply shown", &has_reply).await;
    // The visitor reads it: the reply's tick turns "read".
    let stored = server
        .history(&lead.token, &maya.conversation_id)
        .await
        .iter()
        .filter_map(|m| m["seq"].as_i64())
        .max()
        .expect("seq");
    maya_ws
        .send_json(&json!({"type": "read", "conversation_id": maya.conversation_id, "seq": stored}))
        .await;
    d.wait_for(
        "read tick (an icon)",
        "(() => { const m = document.querySelector('#message-list [data-testid=message][data-status=read]'); \
         return Boolean(m && m.querySelector('.msg-status svg use')); })()",
    )
    .await;
    maya_ws
        .send_message(&maya.conversation_id, "m-2", "Perfect, thank you!")
        .await;
    d.wait_for(
        "visitor's second message",
        "[...document.querySelectorAll('#message-list [data-kind=guest] .bubble')].some(b => b.textContent === 'Perfect, thank you!')",
    )
    .await;

    // The rows tell the visitors apart: name, source and page; the anonymous one
    // has a generated name once the server gives one (never a bare "Visitor" for
    // all of them).
    let names: Value = d
        .execute(
            "return [...document.querySelectorAll('[data-testid=conversation-item] .conv-name')].map(e => e.textContent)",
            json!([]),
        )
        .await;
    assert!(
        names.to_string().contains("Maya Lindqvist") && names.to_string().contains("Omar Haddad"),
        "rows: {names}"
    );
    d.wait_for(
        "source and page in Maya's row",
        &format!(
            "document.querySelector('[data-testid=conversation-item][data-id=\"{}\"] [data-testid=conv-origin]').textContent.includes('via pricing-page')",
            maya.conversation_id
        ),
    )
    .await;
    // Times are one locale-aware format: relative for recent messages (in any
    // locale: no clock time like "14:05" or "2:05 PM"), the full date as tooltip.
    let times: Value = d
        .execute(
            "return [...document.querySelectorAll('#message-list time')] \
               .map(t => ({text: t.textContent, title: t.title, relative: !/\\d:\\d\\d/.test(t.textContent)}))",
            json!([]),
        )
        .await;
    let times = times.as_array().expect("times");
    assert!(times.len() >= 3, "{times:?}");
    assert!(
        times.iter().all(|t| t["relative"] == json!(true)
            && !t["text"].as_str().unwrap_or_default().is_empty()
            && !t["title"].as_str().unwrap_or_default().is_empty()),
        "recent messages say 'just now' / 'n min ago' with the full date as tooltip: {times:?}"
    );

    // The details panel: the contact and the lead, the owner by name (not an id).
    d.wait_for(
        "details beside the conversation",
        &format!("{} && document.querySelector('[data-testid=contact-facts]').textContent.includes('pricing-page')", shown("[data-testid=lead-panel]")),
    )
    .await;
    d.wait_for(
        "lead owner by name",
        &format!(
            "(() => {{ const o = document.querySelector('[data-testid=lead-owner]'); return Boolean(o) && o.textContent === 'You'; }})() || \
             (() => {{ const o = document.querySelector('[data-testid=lead-owner]'); return Boolean(o) && o.textContent.includes({}); }})()",
            json!(lead.name)
        ),
    )
    .await;
    // The details panel never scrolls sideways at 1366 px (it did, with long words).
    let panel = d
        .execute(
            "const p = document.querySelector('[data-testid=lead-panel]'); return [p.scrollWidth, p.clientWidth];",
            json!([]),
        )
        .await;
    assert!(
        panel[0].as_u64() <= panel[1].as_u64(),
        "the details panel scrolls sideways: {panel}"
    );
    d.check_screen("conversation-1366").await;

    // The list with nothing open.
    d.execute("location.hash = '#/'", json!([])).await;
    d.wait_for("placeholder", &shown("#view-placeholder")).await;
    d.check_screen("inbox-1366").await;

    // The team page: agents with presence in words, and the legend.
    d.click("team link", &inbox("nav-team")).await;
    d.wait_for(
        "team dashboard",
        "document.querySelectorAll('[data-testid=workload-agent]').length >= 1 \
         && document.querySelector('[data-testid=workload-presence]').textContent === 'Online' \
         && document.querySelector('[data-testid=presence-legend]')",
    )
    .await;
    d.check_screen("team-1366").await;

    // ------------------------------------------------------------------ phone
    d.resize(PHONE.0, PHONE.1).await;
    d.execute("location.hash = '#/'", json!([])).await;
    d.wait_for("list view", &shown("[data-testid=conversation-list]"))
        .await;
    d.check_screen("inbox-390").await;

    // list → conversation: one view at a time.
    open_row(&d, "Maya's row", &maya.conversation_id).await;
    d.wait_for(
        "only the conversation shows",
        &format!(
            "!{} && {} && !{}",
            shown("[data-testid=conversation-list]"),
            shown("[data-testid=composer-input]"),
            shown("[data-testid=lead-panel]")
        ),
    )
    .await;
    d.check_screen("conversation-390").await;

    // conversation → details, then the browser's back button.
    d.click("details button", &inbox("view-details")).await;
    d.wait_for(
        "details view",
        &format!(
            "location.hash.endsWith('/details') && {} && !{}",
            shown("[data-testid=lead-panel]"),
            shown("[data-testid=composer-input]")
        ),
    )
    .await;
    d.check_screen("details-390").await;
    d.execute("history.back()", json!([])).await;
    d.wait_for(
        "back to the conversation (browser back)",
        &format!(
            "!location.hash.endsWith('/details') && {} && !{}",
            shown("[data-testid=composer-input]"),
            shown("[data-testid=lead-panel]")
        ),
    )
    .await;
    // details → back with the panel's own button, then to the list with the view's.
    d.click("details button", &inbox("view-details")).await;
    d.wait_for("details again", &shown("[data-testid=lead-panel]"))
        .await;
    d.click("details back", "document.querySelector('.details-back')")
        .await;
    d.wait_for("conversation again", &shown("[data-testid=composer-input]"))
        .await;
    d.click("back to the list", &inbox("view-back")).await;
    d.wait_for(
        "the list again",
        &format!(
            "{} && !{}",
            shown("[data-testid=conversation-list]"),
            shown("[data-testid=composer-input]")
        ),
    )
    .await;

    // An offer arriving while a conversation is open on a phone: the card shows,
    // and neither it nor a toast covers the composer.
    open_row(&d, "Maya's row", &maya.conversation_id).await;
    let (_late, mut late_ws) = visitor(
        &server,
        "Lena Vogel",
        "instagram",
        "https://shop.example.com/bags",
    )
    .await;
    late_ws
        .send_message(
            &_late.conversation_id,
            "l-1",
            "Do you have the tote in green?",
        )
        .await;
    d.wait_for(
        "offer card on the phone",
        &format!(
            "[...document.querySelectorAll('[data-testid=offer-preview]')].some(p => p.textContent.includes('tote')) && {}",
            shown("[data-testid=composer-input]")
        ),
    )
    .await;
    let covered = d
        .execute(
            "const c = document.getElementById('composer').getBoundingClientRect(); \
             const hit = (r) => r.width > 0 && r.left < c.right && r.right > c.left && r.top < c.bottom && r.bottom > c.top; \
             return [...document.querySelectorAll('[data-testid=offers], #toasts > *')] \
               .filter(e => e.getClientRects().length && hit(e.getBoundingClientRect())).map(e => e.id || e.className);",
            json!([]),
        )
        .await;
    assert_eq!(covered, json!([]), "nothing covers the composer");
    d.check_screen("offer-390").await;

    d.execute("location.hash = '#/team'", json!([])).await;
    d.wait_for("team page on the phone", &shown("[data-testid=team-page]"))
        .await;
    d.check_screen("team-390").await;

    // The bot settings page fits a phone too.
    d.execute("location.hash = '#/bot'", json!([])).await;
    d.wait_for(
        "bot page on the phone",
        &format!(
            "{} && document.querySelector('#bot-body .bot-card')",
            shown("[data-testid=bot-page]")
        ),
    )
    .await;
    d.check_screen("bot-390").await;

    d.close().await;
}

/// The installable app: the manifest is linked and valid, the service worker is
/// served from the root with scope `/` and controls the page, and with the hub
/// unreachable a reload still opens the inbox's shell with its offline notice (not
/// a browser error page); it reconnects by itself once the hub is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_inbox_pwa_offline_shell() {
    let Some(_lock) = browser_turn().await else {
        return;
    };
    let server = TestServer::start(Backend::Sqlite).await;
    let agent = server.agent("agent").await;

    // What the hub serves.
    let http = reqwest::Client::new();
    let sw = http
        .get(server.url("/sw.js"))
        .send()
        .await
        .expect("GET /sw.js");
    assert_eq!(sw.status(), 200);
    let ctype = sw.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        ctype.starts_with("text/javascript"),
        "sw.js served as {ctype}"
    );
    assert_eq!(sw.headers()["service-worker-allowed"], "/");
    let manifest = http
        .get(server.url("/manifest.webmanifest"))
        .send()
        .await
        .expect("GET manifest");
    assert_eq!(
        manifest.headers()["content-type"],
        "application/manifest+json"
    );
    let m: Value = manifest.json().await.expect("manifest is JSON");
    assert_eq!(m["start_url"], "/", "{m}");
    assert_eq!(m["display"], "standalone", "{m}");
    assert!(m["name"].is_string() && m["short_name"].is_string(), "{m}");
    assert!(
        m["theme_color"].is_string() && m["background_color"].is_string(),
        "{m}"
    );
    let icons = m["icons"].as_array().expect("icons");
    for (size, purpose) in [
        ("192x192", "any"),
        ("512x512", "any"),
        ("512x512", "maskable"),
    ] {
        let icon = icons
            .iter()
            .find(|i| i["sizes"] == size && i["purpose"] == purpose)
            .unwrap_or_else(|| panic!("no {size} {purpose} icon: {m}"));
        let res = http
            .get(server.url(icon["src"].as_str().unwrap()))
            .send()
            .await
            .expect("icon");
        assert_eq!(res.status(), 200, "{icon}");
        assert_eq!(res.headers()["content-type"], "image/png", "{icon}");
        let png = res.bytes().await.unwrap();
        // PNG header: width and height, big-endian, at bytes 16..24.
        let side = size.split('x').next().unwrap().parse::<u32>().unwrap();
        assert_eq!(
            u32::from_be_bytes(png[16..20].try_into().unwrap()),
            side,
            "{icon}"
        );
        assert_eq!(
            u32::from_be_bytes(png[20..24].try_into().unwrap()),
            side,
            "{icon}"
        );
    }

    // The browser, through a cuttable network.
    let proxy = NetProxy::start(&server.base).await;
    let driver = Driver::start().await;
    let s = driver.session_sized(PHONE.0, PHONE.1).await;
    s.resize(PHONE.0, PHONE.1).await;
    s.goto(&proxy.url("/")).await;
    s.wait_for("login form", &inbox("login-email")).await;
    s.check_screen("login-390").await;
    inbox_login(&s, &proxy.base, &agent).await;
    s.wait_for(
        "manifest linked",
        "document.querySelector('link[rel=manifest]')?.getAttribute('href') === '/manifest.webmanifest'",
    )
    .await;
    s.wait_for(
        "service worker controls the page with scope /",
        "navigator.serviceWorker.controller !== null \
         && (window.__swScope = window.__swScope || (navigator.serviceWorker.getRegistration().then(r => window.__swScopeValue = r && r.scope), 1)) \
         && window.__swScopeValue === location.origin + '/'",
    )
    .await;
    s.check_screen("inbox-empty-390").await;

    // The hub goes away: a reload opens the cached shell and says it is offline.
    proxy.cut();
    s.refresh().await;
    s.wait_for(
        "offline notice from the cached shell",
        &format!(
            "document.title === 'Switchboard' && {0} && !{0}.hidden",
            inbox("offline-notice")
        ),
    )
    .await;
    s.screenshot("offline-390").await;

    // Back online: the inbox starts by itself.
    proxy.restore();
    s.wait_for(
        "reconnected after the outage",
        &format!(
            "{0}.hidden && document.getElementById('connection-status').dataset.state === 'connected'",
            inbox("offline-notice")
        ),
    )
    .await;

    // Notifications: with the permission granted, the bell is on, and a customer
    // writing while the inbox is in a background tab raises a notification through
    // the service worker registration, carrying the conversation to open.
    s.cdp(
        "Browser.grantPermissions",
        json!({"permissions": ["notifications"], "origin": proxy.base}),
    )
    .await;
    s.refresh().await;
    s.wait_for(
        "bell on",
        &format!(
            "{0} && !{0}.hidden && {0}.getAttribute('aria-pressed') === 'true'",
            inbox("notify-toggle")
        ),
    )
    .await;
    s.wait_for(
        "connected again",
        "document.getElementById('connection-status').dataset.state === 'connected'",
    )
    .await;
    s.new_tab().await;
    s.goto(&proxy.url("/")).await;
    let (guest, mut guest_ws) = visitor(
        &server,
        "Nora Berg",
        "newsletter",
        "https://shop.example.com/sale",
    )
    .await;
    guest_ws
        .send_message(&guest.conversation_id, "n-1", "Is the sale still on?")
        .await;
    s.wait_for(
        "a notification for the conversation",
        &format!(
            "(window.__n = window.__n || navigator.serviceWorker.ready.then(r => r.getNotifications()).then(l => {{ window.__list = l; window.__n = null; }}),               (window.__list || []).some(n => n.data && n.data.conversationId === {}))",
            json!(guest.conversation_id)
        ),
    )
    .await;
    s.close().await;
}
