//! Database outage (PostgreSQL): the hub's connections to the database are cut by
//! the harness's cuttable TCP proxy (the shared server is never stopped). While it
//! is down a webhook gets 503 so the provider retries, and a widget send gets an `error` the
//! client retries with the same `client_msg_id`; the node itself keeps answering.
//! After recovery each retried message exists exactly once.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{json, Value};
use switchboard_e2e::browser::NetProxy;
use switchboard_e2e::{
    eventually, meta_text_webhook, postgres_available, route_postgres_through, whatsapp_config,
    Backend, FakeProvider, TestServer,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_loses_and_duplicates_nothing() {
    if !postgres_available() {
        return;
    }
    let proxy = NetProxy::start("http://127.0.0.1:5432").await;
    let fake = FakeProvider::start().await;
    let proxy_addr = proxy.base.trim_start_matches("http://").to_string();
    let srv = TestServer::start_with(Backend::Postgres, |cfg| {
        whatsapp_config(cfg, &fake.base);
        cfg.db_timeout = Duration::from_secs(1);
        route_postgres_through(cfg, &proxy_addr);
    })
    .await;
    let admin = srv.admin_token().await;
    let guest = srv.guest().await;
    let mut guest_ws = srv.ws_guest(&guest.token).await;
    let first = guest_ws
        .send_message(&guest.conversation_id, "before-1", "before the outage")
        .await;
    assert_eq!(first["seq"], 1);

    proxy.cut();

    // A provider's webhook: 503, so the provider retries later.
    let webhook = serde_json::to_vec(&meta_text_webhook(
        "6281234567890",
        "wamid.OUTAGE-1",
        "halo, masih buka?",
    ))
    .unwrap();
    let (status, body) = srv.meta_webhook(&webhook).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "unavailable");
    // A widget send: an error naming the message, nothing acknowledged.
    guest_ws
        .send_json(&json!({"type": "send", "client_msg_id": "during-1", "body": "are you there?"}))
        .await;
    let error = loop {
        let v = guest_ws.next_json().await;
        assert_ne!(
            v["type"], "ack",
            "a send was acknowledged while the database was down: {v}"
        );
        if v["type"] == "error" {
            break v;
        }
    };
    assert_eq!(error["code"], "unavailable", "{error}");
    assert_eq!(error["ref"], "during-1");
    // The node itself is alive and says what is wrong.
    let (status, _) = srv.get("/healthz", None).await;
    assert_eq!(status, 200);
    let (status, ready) = srv.get("/readyz", None).await;
    assert_eq!(status, 503, "{ready}");

    proxy.restore();

    // The provider retries until it gets 200; then once more (a duplicate delivery).
    eventually("the webhook to be accepted on retry", || async {
        let (status, _) = srv.meta_webhook(&webhook).await;
        (status == 200).then_some(())
    })
    .await;
    let (status, _) = srv.meta_webhook(&webhook).await;
    assert_eq!(status, 200);
    // The widget retries with the same client_msg_id until acknowledged.
    let ack = eventually("the widget send to be accepted on retry", || async {
        let (status, body) = srv
            .post(
                &format!("/api/conversations/{}/messages", guest.conversation_id),
                Some(&guest.token),
                &json!({"body": "are you there?", "client_msg_id": "during-1"}),
            )
            .await;
        (status == 201 || status == 200).then_some(body)
    })
    .await;
    assert_eq!(ack["message"]["seq"], 2, "{ack}");

    // Exactly once each.
    let history = srv.history(&admin, &guest.conversation_id).await;
    let bodies: Vec<&str> = history
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["before the outage", "are you there?"]);
    let whatsapp: Vec<Value> = srv
        .conversations(&admin)
        .await
        .into_iter()
        .filter(|c| c["channel"] == "whatsapp")
        .collect();
    assert_eq!(whatsapp.len(), 1, "{whatsapp:?}");
    let messages = srv
        .history(&admin, whatsapp[0]["id"].as_str().unwrap())
        .await;
    assert_eq!(
        messages.len(),
        1,
        "the webhook's message was stored {} times",
        messages.len()
    );
    assert_eq!(messages[0]["body"], "halo, masih buka?");
    fake.stop().await;
}
