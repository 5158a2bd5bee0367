//! Hardening found by testing (issue 16): a guest cannot flood a conversation (its
//! messages are limited per guest and per address, with a `rate_limited` error for
//! each message refused and nothing acknowledged ever lost); callers learn nothing
//! about the database or why their token was refused; a text frame that is not
//! UTF-8 fails the connection with 1007; and logins are limited per account with a
//! back-off that one address cannot turn against everyone.
//!
//! Budgets are set through the configuration so that no test depends on how fast
//! the machine is: the sustained rates are one per minute (at most one extra message
//! can refill during a test) and back-off waits are minutes long.

// Test bodies run inside the `both_backends!` helpers, which clippy does not see as
// tests; a panic with a message is how a test reports a broken expectation.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use switchboard::config::Secret;
use switchboard_e2e::browser::NetProxy;
use switchboard_e2e::{
    assert_error_body, both_backends, postgres_available, route_postgres_through, Backend,
    TestServer, Ws, ADMIN_EMAIL, ADMIN_PASSWORD,
};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

/// Sends `n` messages on `ws` without waiting, then reads until each has its answer:
/// returns the acknowledged `client_msg_id`s and the `error` frames.
async fn flood(ws: &mut Ws, conv: &str, prefix: &str, n: usize) -> (BTreeSet<String>, Vec<Value>) {
    for i in 0..n {
        ws.send_json(&json!({"type": "send", "conversation_id": conv, "client_msg_id": format!("{prefix}-{i}"), "body": format!("{prefix} {i}")}))
            .await;
    }
    let mut acked = BTreeSet::new();
    let mut errors = Vec::new();
    while acked.len() + errors.len() < n {
        let v = ws.next_json().await;
        match v["type"].as_str() {
            Some("ack") => {
                acked.insert(v["client_msg_id"].as_str().unwrap().to_string());
            }
            Some("error") => errors.push(v),
            _ => {}
        }
    }
    (acked, errors)
}

/// Every error is a `rate_limited` naming one of the messages sent, with a plain
/// sentence and a wait; together with the acks they answer every message once.
fn assert_rate_limited(errors: &[Value], acked: &BTreeSet<String>, prefix: &str, n: usize) {
    let mut answered = acked.clone();
    for e in errors {
        assert_eq!(e["code"], "rate_limited", "{e}");
        assert!(e["message"].as_str().is_some_and(|m| m.len() > 10), "{e}");
        assert!(
            e["retry_after_ms"].as_u64().is_some_and(|ms| ms >= 1000),
            "{e}"
        );
        let id = e["ref"]
            .as_str()
            .expect("the error names the message")
            .to_string();
        assert!(answered.insert(id), "answered twice: {e}");
    }
    let all: BTreeSet<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    assert_eq!(answered, all);
}

both_backends! {
    /// A guest flooding its socket gets its burst stored and a `rate_limited` error
    /// for every other message; what was acknowledged is exactly what is stored; the
    /// socket stays open; a second guest from the same address is limited only once
    /// the address's budget is spent; the HTTP path answers 429 with Retry-After;
    /// agents are not limited.
    async fn a_guest_flood_is_limited_per_guest_and_per_address(backend) {
        const GUEST_BURST: usize = 20;
        const ADDRESS_BURST: usize = 30;
        const FLOOD: usize = 200;
        let srv = TestServer::start_with(backend, |c| {
            c.guest_messages.per_guest_burst = GUEST_BURST as u32;
            c.guest_messages.per_guest_per_min = 1;
            c.guest_messages.per_address_burst = ADDRESS_BURST as u32;
            c.guest_messages.per_address_per_min = 1;
        })
        .await;
        srv.manual_routing().await;
        let admin = srv.admin_token().await;
        let guest = srv.guest().await;
        let conv = guest.conversation_id.as_str();
        let (mut ws, _) = srv.ws_guest_resumed(&guest, 0).await;

        let (acked, errors) = flood(&mut ws, conv, "flood", FLOOD).await;
        // One message may refill during the test (one a minute).
        assert!((GUEST_BURST..=GUEST_BURST + 1).contains(&acked.len()), "acked {}", acked.len());
        assert_rate_limited(&errors, &acked, "flood", FLOOD);
        let stored: BTreeSet<String> = srv
            .history(&admin, conv)
            .await
            .iter()
            .map(|m| m["client_msg_id"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(stored, acked, "stored exactly what was acknowledged");

        // The socket is still open and answers.
        ws.send_json(&json!({"type": "ping"})).await;
        ws.next_of_type("pong").await;

        // The HTTP path for guests has the same budget.
        let resp = srv
            .http
            .post(srv.url(&format!("/api/conversations/{conv}/messages")))
            .bearer_auth(&guest.token)
            .json(&json!({"body": "over http", "client_msg_id": "http-1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 429);
        let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry >= 1, "Retry-After: {retry}");
        assert_error_body(&resp.json::<Value>().await.unwrap(), "rate_limited");

        // A second guest from the same address: its own budget would allow 20, the
        // address has only what the first guest left.
        let second = srv.guest().await;
        let (mut ws2, _) = srv.ws_guest_resumed(&second, 0).await;
        let (acked2, errors2) = flood(&mut ws2, &second.conversation_id, "second", GUEST_BURST).await;
        let left = ADDRESS_BURST - acked.len();
        assert!((left..=left + 1).contains(&acked2.len()), "second guest acked {} (address left {left})", acked2.len());
        assert!(acked2.len() < GUEST_BURST, "the address budget must bind first");
        assert_rate_limited(&errors2, &acked2, "second", GUEST_BURST);
        assert_eq!(srv.history(&admin, &second.conversation_id).await.len(), acked2.len());

        // Agents are not limited, in the flooded conversation or anywhere.
        let mut agent_ws = srv.ws_agent(&admin).await;
        let acks = agent_ws.send_many(conv, "agent", 40).await;
        assert_eq!(acks.len(), 40);
    }
}

/// A JWT for the admin, signed with `secret`, that expired long ago.
fn expired_admin_token(secret: &str, admin_id: &str) -> String {
    use hmac::{Hmac, Mac};
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let signing_input = format!(
        "{}.{}",
        b64(&json!({"alg": "HS256", "typ": "JWT"})),
        b64(
            &json!({"sub": admin_id, "kind": "agent", "iat": 1_000_000_000u64, "exp": 1_000_000_060u64})
        )
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(signing_input.as_bytes());
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

/// What clients are told about any bad token.
const INVALID_SESSION: &str = "Your session is invalid or has expired; please log in again.";

/// Words a token-decoding library uses for its reasons.
const TOKEN_CAUSES: [&str; 6] = [
    "expiredsignature",
    "signature",
    "invalidtoken",
    "base64",
    "json",
    "jwt",
];

both_backends! {
    /// Expired, forged and garbled tokens get one fixed sentence over HTTP and
    /// WebSocket; the reason stays in the logs.
    async fn token_errors_do_not_name_the_cause(backend) {
        const SECRET: &str = "hardening-test-secret-0123456789abcdef";
        let srv = TestServer::start_with(backend, |c| c.secret = Some(Secret::new(SECRET))).await;
        let admin = srv.admin_token().await;
        let (_, me) = srv.get("/api/auth/me", Some(&admin)).await;
        let admin_id = me["agent"]["id"].as_str().unwrap().to_string();
        let expired = expired_admin_token(SECRET, &admin_id);
        let forged = expired_admin_token("some-other-secret", &admin_id);
        for token in [expired.as_str(), forged.as_str(), "not.a.token", "garbage"] {
            let (status, body) = srv.get("/api/auth/me", Some(token)).await;
            assert_eq!(status, 401, "{body}");
            assert_error_body(&body, "unauthorized");
            assert_eq!(body["message"], INVALID_SESSION);

            let mut ws = Ws::connect(&srv.ws_url("/ws/agent")).await;
            ws.send_json(&json!({"type": "auth", "token": token})).await;
            let err = ws.next_of_type("error").await;
            assert_eq!(err["code"], "unauthorized", "{err}");
            assert_eq!(err["message"], INVALID_SESSION);
            let lower = err["message"].as_str().unwrap().to_lowercase();
            for cause in TOKEN_CAUSES {
                assert!(!lower.contains(cause), "the frame names the cause ({cause}): {err}");
            }
            let close = ws.expect_close().await.map(|f| u16::from(f.code));
            assert_eq!(close, Some(1008));
        }
    }
}

/// During a PostgreSQL outage (the hub's connections cut by a proxy, as in
/// `outage.rs`), the answers callers get — a login, the readiness probe, a guest's
/// send over HTTP and WebSocket, an agent's WebSocket authentication — say the
/// service is unavailable and nothing about the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_answers_do_not_reveal_the_database() {
    if !postgres_available() {
        return;
    }
    let proxy = NetProxy::start("http://127.0.0.1:5432").await;
    let proxy_addr = proxy.base.trim_start_matches("http://").to_string();
    let proxy_port = proxy_addr.rsplit(':').next().unwrap().to_string();
    let mut db_name = String::new();
    let srv = TestServer::start_with(Backend::Postgres, |cfg| {
        cfg.db_timeout = Duration::from_secs(1);
        db_name = route_postgres_through(cfg, &proxy_addr);
    })
    .await;
    assert!(db_name.len() > 5, "database name {db_name:?}");
    let admin = srv.admin_token().await;
    let guest = srv.guest().await;
    let mut guest_ws = srv.ws_guest(&guest.token).await;

    proxy.cut();

    let secrets = [
        "127.0.0.1",
        proxy_port.as_str(),
        "5432",
        db_name.as_str(),
        "postgres",
        "r2d2",
        "diesel",
        "libpq",
        "fatal",
        "timed out",
        "refused",
        "server closed",
    ];
    let assert_clean = |what: &str, text: &str, skip_driver: bool| {
        let lower = text.to_lowercase();
        for s in secrets {
            if skip_driver && s == "postgres" {
                continue;
            }
            assert!(!lower.contains(s), "{what} reveals {s:?}: {text}");
        }
    };
    let sentence = "The service is temporarily unavailable; please retry shortly.";

    // An unauthenticated login.
    let (status, body) = srv
        .post(
            "/api/auth/login",
            None,
            &json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_error_body(&body, "unavailable");
    assert_eq!(body["message"], sentence);
    assert_clean("the login's 503", &body.to_string(), false);

    // The readiness probe (which names its backend kind by design).
    let (status, ready) = srv.get("/readyz", None).await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["database"], sentence);
    assert_clean("/readyz", &ready.to_string(), true);

    // A guest's send over HTTP and over its socket.
    let (status, body) = srv
        .post(
            &format!("/api/conversations/{}/messages", guest.conversation_id),
            Some(&guest.token),
            &json!({"body": "hello?", "client_msg_id": "out-1"}),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_clean("the guest's HTTP 503", &body.to_string(), false);
    guest_ws
        .send_json(&json!({"type": "send", "client_msg_id": "out-2", "body": "anyone?"}))
        .await;
    let err = guest_ws.next_of_type("error").await;
    assert_eq!(err["code"], "unavailable", "{err}");
    assert_eq!(err["message"], sentence);
    assert_clean("the guest's error frame", &err.to_string(), false);

    // An agent authenticating its socket (its token needs a database read).
    let mut agent_ws = Ws::connect(&srv.ws_url("/ws/agent")).await;
    agent_ws
        .send_json(&json!({"type": "auth", "token": admin}))
        .await;
    let err = agent_ws.next_of_type("error").await;
    assert_eq!(err["code"], "unavailable", "{err}");
    assert_clean("the agent's auth error frame", &err.to_string(), false);

    proxy.restore();
}

/// Sends a text frame whose bytes are `payload`, as is.
async fn send_raw_text(ws: &mut Ws, payload: &[u8], fin: bool, first: bool) {
    let opcode = if first {
        OpCode::Data(Data::Text)
    } else {
        OpCode::Data(Data::Continue)
    };
    ws.send_raw(Message::Frame(Frame::message(
        payload.to_vec(),
        opcode,
        fin,
    )))
    .await;
}

/// The session's answer to invalid UTF-8: an `error`, then close 1007.
async fn error_then_1007(ws: &mut Ws) {
    let err = ws.next_of_type("error").await;
    assert_eq!(err["code"], "bad_frame", "{err}");
    let close = ws.expect_close().await.map(|f| u16::from(f.code));
    assert_eq!(
        close,
        Some(1007),
        "RFC 6455 §8.1: invalid UTF-8 fails the connection"
    );
}

both_backends! {
    /// Invalid UTF-8 in a text message — in one frame or across fragments — fails
    /// the connection with 1007; the node keeps serving everyone else.
    async fn invalid_utf8_closes_with_1007_and_others_carry_on(backend) {
        let srv = TestServer::start(backend).await;
        let admin = srv.admin_token().await;
        let bystander = srv.guest().await;
        let (mut other, _) = srv.ws_guest_resumed(&bystander, 0).await;

        let guest = srv.guest().await;
        let (mut ws, _) = srv.ws_guest_resumed(&guest, 0).await;
        send_raw_text(&mut ws, b"{\"type\":\"ping\",\"x\":\"\xff\xfe\"}", true, true).await;
        error_then_1007(&mut ws).await;

        // Fragmented: each fragment alone is not a whole message; the reassembled
        // text has a byte sequence that is not UTF-8.
        let (mut ws, _) = srv.ws_guest_resumed(&guest, 0).await;
        send_raw_text(&mut ws, b"{\"type\":\"ping\",", false, true).await;
        send_raw_text(&mut ws, b"\"x\":\"\xc3\x28\"}", true, false).await;
        error_then_1007(&mut ws).await;

        // Everyone else is served; the closed guest can come back.
        let ack = other.send_message(&bystander.conversation_id, "still-1", "still here").await;
        assert_eq!(ack["seq"], 1);
        let (mut back, _) = srv.ws_guest_resumed(&guest, 0).await;
        let ack = back.send_message(&guest.conversation_id, "back-1", "back again").await;
        assert_eq!(ack["seq"], 1);
        assert_eq!(srv.history(&admin, &guest.conversation_id).await.len(), 1);
    }
}

/// A login from `address` (as told by the trusted proxy's `X-Forwarded-For`):
/// status, `Retry-After` if any, body.
async fn login_from(
    srv: &TestServer,
    address: &str,
    email: &str,
    password: &str,
) -> (u16, Option<u64>, Value) {
    let resp = srv
        .http
        .post(srv.url("/api/auth/login"))
        .header("x-forwarded-for", address)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (status, retry, resp.json().await.unwrap())
}

both_backends! {
    /// Per-account back-off: after the free failures, the account is refused from
    /// every address — even with the right password — while other accounts log in
    /// normally; a success resets the count. Per-address limit: a limited address
    /// does not stop a different address logging in to a different account.
    async fn login_is_limited_per_account_and_per_address(backend) {
        const FREE: u32 = 3;
        let srv = TestServer::start_with(backend, |c| {
            c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
            c.rate_login_per_min = 6;
            c.login_backoff.free_failures = FREE;
            // Long waits: nothing in the test depends on time passing.
            c.login_backoff.base = Duration::from_secs(600);
            c.login_backoff.max = Duration::from_secs(3600);
        })
        .await;
        let ann = srv.agent("agent").await;
        let bob = srv.agent("agent").await;

        // Failures short of the limit, then a success: the count starts again.
        for _ in 0..FREE - 1 {
            let (status, _, body) = login_from(&srv, "198.51.100.1", &ann.email, "wrong-password").await;
            assert_eq!(status, 401, "{body}");
        }
        let (status, _, body) = login_from(&srv, "198.51.100.2", &ann.email, &ann.password).await;
        assert_eq!(status, 200, "{body}");
        for _ in 0..FREE - 1 {
            let (status, _, body) = login_from(&srv, "198.51.100.3", &ann.email, "wrong-password").await;
            assert_eq!(status, 401, "{body}");
        }
        let (status, _, body) = login_from(&srv, "198.51.100.4", &ann.email, &ann.password).await;
        assert_eq!(status, 200, "the success must have reset the count: {body}");

        // FREE failures in a row (spread over addresses, with different letter
        // case): Ann's account backs off.
        for i in 0..FREE {
            let email = if i == 0 { ann.email.to_uppercase() } else { ann.email.clone() };
            let (status, _, body) = login_from(&srv, &format!("198.51.100.{}", 10 + i), &email, "wrong-password").await;
            assert_eq!(status, 401, "{body}");
        }
        // The right password from a fresh address is refused while it runs.
        let (status, retry, body) = login_from(&srv, "203.0.113.50", &ann.email, &ann.password).await;
        assert_eq!(status, 429, "{body}");
        assert_error_body(&body, "rate_limited");
        let retry = retry.expect("Retry-After");
        assert!((1..=600).contains(&retry) && retry > 500, "Retry-After {retry}");
        // Bob is not affected.
        let (status, _, body) = login_from(&srv, "203.0.113.51", &bob.email, &bob.password).await;
        assert_eq!(status, 200, "{body}");

        // One address spends its login budget (6 a minute) on wrong guesses against
        // unknown accounts ...
        let mut limited = false;
        for i in 0..7 {
            let (status, retry, body) = login_from(&srv, "192.0.2.66", &format!("nobody{i}@test.local"), "guess").await;
            if status == 429 {
                assert_error_body(&body, "rate_limited");
                assert!(retry.is_some_and(|r| r >= 1));
                limited = true;
            } else {
                assert_eq!(status, 401, "{body}");
            }
        }
        assert!(limited, "the address was never limited");
        // ... and is refused even for Bob's right password,
        let (status, _, body) = login_from(&srv, "192.0.2.66", &bob.email, &bob.password).await;
        assert_eq!(status, 429, "{body}");
        // while Bob from his own address logs in.
        let (status, _, body) = login_from(&srv, "203.0.113.52", &bob.email, &bob.password).await;
        assert_eq!(status, 200, "{body}");

        // Without trusting the proxy, the header is ignored: every request is
        // 127.0.0.1's (checked with a server that trusts nobody).
        let plain = TestServer::start_with(backend, |c| c.rate_login_per_min = 2).await;
        for addr in ["198.51.100.1", "198.51.100.2"] {
            let (status, _, _) = login_from(&plain, addr, "x@test.local", "guess").await;
            assert_eq!(status, 401);
        }
        let (status, _, body) = login_from(&plain, "198.51.100.3", ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(status, 429, "X-Forwarded-For from an untrusted peer must not count: {body}");
    }
}
