//! Browser harness for the front-end tests: a minimal W3C WebDriver client (plain
//! JSON over HTTP with `reqwest`, no extra dependency) driving Debian's `chromium`
//! through `chromedriver`, which the harness spawns on a free port; and a TCP proxy
//! the test can cut and restore to simulate a network outage.
//!
//! Browser tests need `/usr/bin/chromium` and `/usr/bin/chromedriver` (override with
//! `SWITCHBOARD_CHROMIUM` / `SWITCHBOARD_CHROMEDRIVER`). When they are missing the
//! tests are skipped with a notice, unless `SWITCHBOARD_TEST_REQUIRE_BROWSER=1`
//! (CI sets it), which turns that into a failure. Browser tests run one at a time
//! ([`serial`]): a 2-core machine cannot run several Chromiums and servers at once.
//!
//! Waiting is always for a DOM condition ([`Session::wait_for`]) with a generous
//! safety timeout; nothing sleeps and then asserts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// How long a browser test waits for a DOM condition before failing (a safety net).
pub const BROWSER_PATIENCE: Duration = Duration::from_secs(30);

/// The W3C key of an element reference in WebDriver JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

fn chromium_path() -> PathBuf {
    std::env::var_os("SWITCHBOARD_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/bin/chromium".into())
}

fn chromedriver_path() -> PathBuf {
    std::env::var_os("SWITCHBOARD_CHROMEDRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/bin/chromedriver".into())
}

/// Whether browser tests can run: true when Chromium and chromedriver exist; when
/// not, false with a notice — or a panic if `SWITCHBOARD_TEST_REQUIRE_BROWSER=1`.
pub fn browser_available() -> bool {
    let missing: Vec<String> = [chromium_path(), chromedriver_path()]
        .into_iter()
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("SWITCHBOARD_TEST_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
        panic!("browser required (SWITCHBOARD_TEST_REQUIRE_BROWSER=1) but missing: {missing:?}");
    }
    eprintln!(
        "skipping browser test: missing {missing:?} (apt-get install chromium chromium-driver)"
    );
    false
}

static SERIAL: Mutex<()> = Mutex::const_new(());

/// Holds the lock that keeps browser tests from running at the same time.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

/// The start of every browser test: `None` when the browser is missing (the test
/// returns; see [`browser_available`]), else this test's turn ([`serial`]), held
/// until the guard drops.
pub async fn browser_turn() -> Option<tokio::sync::MutexGuard<'static, ()>> {
    if !browser_available() {
        return None;
    }
    Some(serial().await)
}

/// Logs `agent` into the inbox at `base` through the login form and waits until
/// its socket is connected.
pub async fn inbox_login(s: &Session, base: &str, agent: &crate::TestAgent) {
    s.goto(&format!("{base}/")).await;
    s.type_into("login email", &inbox("login-email"), &agent.email)
        .await;
    s.type_into("login password", &inbox("login-password"), &agent.password)
        .await;
    s.click("login submit", &inbox("login-submit")).await;
    s.wait_for(
        "inbox connected",
        "document.getElementById('connection-status').dataset.state === 'connected'",
    )
    .await;
}

/// Where screenshots go: `target/screenshots/` (under `CARGO_TARGET_DIR` when set), so
/// a test run never touches tracked files; with `SWITCHBOARD_UPDATE_SCREENSHOTS=1`,
/// `docs/screenshots/` at the repository root — the documented way to refresh the
/// committed screenshots (README, "Screenshots").
pub fn screenshot_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if std::env::var("SWITCHBOARD_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        return root.join("docs").join("screenshots");
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("screenshots")
}

/// axe-core 4.14 (Deque Systems, MPL-2.0), vendored so accessibility checks need no
/// network: <https://github.com/dequelabs/axe-core>.
const AXE_JS: &str = include_str!("../assets/axe.min.js");

/// The desktop viewport the layout checks use, in CSS pixels.
pub const DESKTOP: (u32, u32) = (1366, 900);
/// The phone viewport the layout checks use (an iPhone 12–15 class screen).
pub const PHONE: (u32, u32) = (390, 844);

/// A running chromedriver; killed on drop.
pub struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Driver {
    /// Spawns chromedriver on a free port and waits until it is ready.
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(chromedriver_path())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chromedriver");
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("http client");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + BROWSER_PATIENCE;
        loop {
            if let Ok(r) = http.get(format!("{base}/status")).send().await {
                if let Ok(v) = r.json::<Value>().await {
                    if v["value"]["ready"] == json!(true) {
                        break;
                    }
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, base, http }
    }

    /// A new browser (its own profile, so its own cookies and storage: a separate
    /// user), 1280×800 unless `size` says otherwise.
    pub async fn session(&self) -> Session {
        self.session_sized(1280, 800).await
    }

    /// A new browser with the given window size.
    pub async fn session_sized(&self, width: u32, height: u32) -> Session {
        let profile = tempfile::tempdir().expect("profile dir");
        let args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--no-first-run".into(),
            "--disable-sync".into(),
            "--disable-extensions".into(),
            "--mute-audio".into(),
            "--hide-scrollbars".into(),
            "--force-device-scale-factor=1".into(),
            // Background tabs would throttle timers; every session is "visible".
            "--disable-background-timer-throttling".into(),
            "--disable-renderer-backgrounding".into(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium_path().display().to_string(),
                "args": args,
            },
            "unhandledPromptBehavior": "ignore",
        }}});
        let v = call(
            &self.http,
            reqwest::Method::POST,
            &format!("{}/session", self.base),
            Some(&caps),
        )
        .await
        .unwrap_or_else(|e| panic!("new browser session: {e}"));
        let id = v["sessionId"].as_str().expect("sessionId").to_string();
        Session {
            http: self.http.clone(),
            url: format!("{}/session/{id}", self.base),
            _profile: profile,
            closed: false,
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver call; `Err` carries the WebDriver error (`error: message`).
async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<&Value>,
) -> Result<Value, String> {
    let mut req = http.request(method, url);
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.map_err(|e| format!("request: {e}"))?;
    let v: Value = resp.json().await.map_err(|e| format!("body: {e}"))?;
    if let Some(err) = v["value"]["error"].as_str() {
        return Err(format!("{err}: {}", v["value"]["message"]));
    }
    Ok(v.get("value").cloned().unwrap_or(Value::Null))
}

/// One browser (one user): navigation, scripts, keyboard input, screenshots.
pub struct Session {
    http: reqwest::Client,
    url: String,
    _profile: tempfile::TempDir,
    closed: bool,
}

impl Session {
    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Value {
        call(&self.http, method, &format!("{}{path}", self.url), body)
            .await
            .unwrap_or_else(|e| panic!("webdriver {path}: {e}"))
    }

    /// Navigates and waits for the page load.
    pub async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(&json!({"url": url})))
            .await;
    }

    /// Opens a new tab of the same browser (same storage: the same user) and
    /// switches to it.
    pub async fn new_tab(&self) {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/window/new",
                Some(&json!({"type": "tab"})),
            )
            .await;
        let handle = v["handle"].as_str().expect("window handle").to_string();
        self.cmd(
            reqwest::Method::POST,
            "/window",
            Some(&json!({"handle": handle})),
        )
        .await;
    }

    /// Reloads the page.
    pub async fn refresh(&self) {
        self.cmd(reqwest::Method::POST, "/refresh", Some(&json!({})))
            .await;
    }

    /// Runs a synchronous script (its `arguments` are `args`) and returns its value.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(&json!({"script": script, "args": args})),
        )
        .await
    }

    /// Evaluates `expr` (a JS expression) until it is truthy; returns its value.
    /// Fails with `what` and the last value after [`BROWSER_PATIENCE`].
    pub async fn wait_for(&self, what: &str, expr: &str) -> Value {
        let script = format!("try {{ return ({expr}); }} catch (e) {{ return null; }}");
        let deadline = tokio::time::Instant::now() + BROWSER_PATIENCE;
        loop {
            let v = self.execute(&script, json!([])).await;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "browser never showed: {what} (last value {v})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The element `expr` (a JS expression, may reach into shadow roots) evaluates
    /// to, waiting until it exists.
    async fn element(&self, what: &str, expr: &str) -> String {
        let v = self.wait_for(what, expr).await;
        v[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: not an element: {v}"))
            .to_string()
    }

    /// Clicks the element `expr` evaluates to (a real pointer click). A page that
    /// re-renders between finding the element and the click (a live update redrew
    /// the list) leaves a stale reference: then `expr` is found again, as a user
    /// would click the redrawn element, a few times at most.
    pub async fn click(&self, what: &str, expr: &str) {
        const ATTEMPTS: usize = 5;
        for attempt in 1..=ATTEMPTS {
            let id = self.element(what, expr).await;
            let path = format!("/element/{id}/click");
            let url = format!("{}{path}", self.url);
            match call(&self.http, reqwest::Method::POST, &url, Some(&json!({}))).await {
                Ok(_) => return,
                Err(e) if e.starts_with("stale element reference") && attempt < ATTEMPTS => {}
                Err(e) => panic!("webdriver {path} ({what}): {e}"),
            }
        }
    }

    /// Sets the select `expr` (a JS expression) to `value` the way a user's choice
    /// arrives (a `change` event), once it offers that value.
    pub async fn choose(&self, what: &str, expr: &str, value: &str) {
        self.wait_for(
            &format!("{what} offers {value}"),
            &format!(
                "[...(({expr}) || {{options: []}}).options].some(o => o.value === {})",
                json!(value)
            ),
        )
        .await;
        self.execute(
            &format!(
                "const s = {expr}; s.value = arguments[0]; \
                 s.dispatchEvent(new Event('change', {{bubbles: true}}));"
            ),
            json!([value]),
        )
        .await;
    }

    /// Replaces the text of the control `expr` (a JS expression) at once, with an
    /// `input` event (for long texts; [`Session::type_into`] types real keys).
    pub async fn fill(&self, expr: &str, text: &str) {
        self.execute(
            &format!(
                "const el = {expr}; el.value = arguments[0]; \
                 el.dispatchEvent(new Event('input', {{bubbles: true}}));"
            ),
            json!([text]),
        )
        .await;
    }

    /// Types `text` into the element `expr` evaluates to (real key events; `\u{E007}`
    /// is Enter).
    pub async fn type_into(&self, what: &str, expr: &str, text: &str) {
        let id = self.element(what, expr).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(&json!({"text": text})),
        )
        .await;
    }

    /// Whether a JavaScript dialog (alert/confirm) is open.
    pub async fn alert_open(&self) -> bool {
        call(
            &self.http,
            reqwest::Method::GET,
            &format!("{}/alert/text", self.url),
            None,
        )
        .await
        .is_ok()
    }

    /// Saves a PNG of the viewport as `{name}.png` in [`screenshot_dir`].
    pub async fn screenshot(&self, name: &str) {
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 screenshot"))
            .expect("decode screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    /// Runs a Chrome DevTools Protocol command through chromedriver's
    /// `goog/cdp/execute` extension and returns its result.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(&json!({"cmd": cmd, "params": params})),
        )
        .await
    }

    /// Sets the viewport to `width`×`height` CSS pixels. Widths under 600 are
    /// emulated as a phone (touch, `<meta name=viewport>` honoured), as a desktop
    /// window cannot be made that narrow.
    pub async fn resize(&self, width: u32, height: u32) {
        let mobile = width < 600;
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        )
        .await;
        self.cdp(
            "Emulation.setTouchEmulationEnabled",
            json!({"enabled": mobile}),
        )
        .await;
    }

    /// Emulates the OS colour scheme (`prefers-color-scheme`), effective at once.
    pub async fn color_scheme(&self, dark: bool) {
        let value = if dark { "dark" } else { "light" };
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": value}]}),
        )
        .await;
    }

    /// Runs axe-core (WCAG 2.0/2.1/2.2 A and AA rules) on the page and returns the
    /// violations of impact `serious` or `critical`, each `{id, impact, help, nodes}`
    /// with `nodes` the offending elements' selectors. `context` names the screen in
    /// panics.
    pub async fn axe(&self, context: &str) -> Vec<Value> {
        let loaded = self
            .execute("return typeof window.axe === 'object';", json!([]))
            .await;
        if loaded != json!(true) {
            self.execute(AXE_JS, json!([])).await;
        }
        let script = "const done = arguments[arguments.length - 1];
            axe.run(document, {runOnly: {type: 'tag', values:
                ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}, resultTypes: ['violations']})
              .then(r => done(r.violations
                .filter(v => v.impact === 'serious' || v.impact === 'critical')
                .map(v => ({id: v.id, impact: v.impact, help: v.help,
                            nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' + n.failureSummary)}))))
              .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));";
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/execute/async",
                Some(&json!({"script": script, "args": []})),
            )
            .await;
        v.as_array()
            .unwrap_or_else(|| panic!("{context}: axe returned {v}"))
            .clone()
    }

    /// Fails unless axe finds no serious or critical violation on the page.
    pub async fn assert_accessible(&self, context: &str) {
        let violations = self.axe(context).await;
        assert!(
            violations.is_empty(),
            "{context}: accessibility violations: {}",
            serde_json::to_string_pretty(&violations).unwrap_or_default()
        );
    }

    /// Fails if the page scrolls sideways (`scrollWidth > clientWidth` on the
    /// document or the body), naming the elements that stick out furthest.
    pub async fn assert_no_horizontal_overflow(&self, context: &str) {
        let v = self
            .execute(
                "const d = document.documentElement, b = document.body;
                 const w = d.clientWidth;
                 if (d.scrollWidth <= w && b.scrollWidth <= b.clientWidth) return null;
                 const wide = [...document.querySelectorAll('body *')]
                   .map(e => [e, e.getBoundingClientRect()])
                   .filter(([e, r]) => r.right > w + 1 && r.width > 0)
                   .sort((a, b) => b[1].right - a[1].right).slice(0, 6)
                   .map(([e, r]) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                     + (e.className && typeof e.className === 'string' ? '.' + e.className.trim().split(/\\s+/).join('.') : '')
                     + ' right=' + Math.round(r.right));
                 return {viewport: w, scroll_width: d.scrollWidth, body_scroll_width: b.scrollWidth, widest: wide};",
                json!([]),
            )
            .await;
        assert!(v.is_null(), "{context}: the page scrolls sideways: {v}");
    }

    /// The layout check for one screen at the current viewport: in the light and
    /// the dark colour scheme, no sideways scrolling and no serious or critical axe
    /// violation; saves screenshots `{name}.png` (light) and `{name}-dark.png`.
    /// Leaves the light scheme on.
    pub async fn check_screen(&self, name: &str) {
        for dark in [false, true] {
            self.color_scheme(dark).await;
            let label = format!("{name} ({})", if dark { "dark" } else { "light" });
            self.assert_no_horizontal_overflow(&label).await;
            self.assert_accessible(&label).await;
            let file = if dark {
                format!("{name}-dark")
            } else {
                name.to_string()
            };
            self.screenshot(&file).await;
        }
        self.color_scheme(false).await;
    }

    /// Ends the browser.
    pub async fn close(mut self) {
        self.closed = true;
        let _ = call(&self.http, reqwest::Method::DELETE, &self.url, None).await;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // A test that panicked must not leave Chromium running: end the session with
        // a plain blocking HTTP request (no async runtime is needed in a destructor).
        if self.closed {
            return;
        }
        let Some(rest) = self.url.strip_prefix("http://") else {
            return;
        };
        let Some((host, path)) = rest.split_once('/') else {
            return;
        };
        if let Ok(mut s) = std::net::TcpStream::connect(host) {
            use std::io::{Read, Write};
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                s,
                "DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
            );
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink);
        }
    }
}

/// A TCP proxy in front of the server: the browser talks to it, and the test can
/// [`cut`](NetProxy::cut) the network (open connections dropped, new ones refused)
/// and [`restore`](NetProxy::restore) it.
pub struct NetProxy {
    /// `http://127.0.0.1:<proxy port>`.
    pub base: String,
    up: Arc<AtomicBool>,
    conns: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl NetProxy {
    /// Starts a proxy forwarding to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Self {
        let target: SocketAddr = upstream
            .trim_start_matches("http://")
            .parse()
            .expect("upstream address");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (up2, conns2) = (up.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    drop(client); // refused: the network is down
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                let mut list = conns2.lock().expect("proxy list");
                list.retain(|t| !t.is_finished());
                list.push(task);
            }
        });
        Self {
            base: format!("http://{addr}"),
            up,
            conns,
            accept,
        }
    }

    /// Cuts the network: every open connection is dropped, new ones are refused.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for t in self.conns.lock().expect("proxy list").drain(..) {
            t.abort();
        }
    }

    /// Restores the network.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for NetProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// JS expression for the widget's shadow root.
pub const WIDGET_ROOT: &str = "document.getElementById('switchboard-widget-host-7d1c').shadowRoot";

/// JS expression: the widget element with `data-testid` = `testid`.
pub fn widget(testid: &str) -> String {
    format!("{WIDGET_ROOT}.querySelector('[data-testid=\"{testid}\"]')")
}

/// JS expression: the inbox element with `data-testid` = `testid`.
pub fn inbox(testid: &str) -> String {
    format!("document.querySelector('[data-testid=\"{testid}\"]')")
}
