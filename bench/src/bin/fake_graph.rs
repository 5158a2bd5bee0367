//! The broadcast workload's provider: a stand-in for Meta's Graph API that lists
//! one approved template (`bench_promo`, one body variable) for any WABA, accepts
//! every `POST …/messages` like Meta does (`messages[0].id`), and counts the
//! template sends it received (`GET /count` → `{"templates": n}`).
//!
//! Usage: `fake-graph <bind address>` (e.g. `127.0.0.1:9105`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

async fn any(req: HttpRequest, body: web::Bytes, sent: web::Data<Arc<AtomicU64>>) -> HttpResponse {
    let path = req.path();
    if req.method() == actix_web::http::Method::GET {
        if path.ends_with("/message_templates") {
            return HttpResponse::Ok().json(serde_json::json!({
                "data": [{"name": "bench_promo", "language": "en_US", "category": "MARKETING",
                    "status": "APPROVED", "id": "1",
                    "components": [{"type": "BODY", "text": "Hi {{1}}, our March departures are open."}]}],
                "paging": {"cursors": {"before": "A", "after": "B"}},
            }));
        }
        if path == "/count" {
            return HttpResponse::Ok()
                .json(serde_json::json!({"templates": sent.load(Ordering::SeqCst)}));
        }
        return HttpResponse::NotFound().finish();
    }
    // A template send names its type; nothing else needs parsing.
    let is_template = body.windows(17).any(|w| w == br#""type":"template""#);
    let n = if is_template {
        sent.fetch_add(1, Ordering::SeqCst) + 1
    } else {
        0
    };
    HttpResponse::Ok().json(serde_json::json!({
        "messaging_product": "whatsapp",
        "messages": [{"id": format!("wamid.bench-{n}-{}", body.len())}],
    }))
}

fn main() -> anyhow::Result<()> {
    let bind = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9105".to_string());
    let sent = web::Data::new(Arc::new(AtomicU64::new(0)));
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            App::new()
                .app_data(sent.clone())
                .default_service(web::to(any))
        })
        .workers(2)
        .bind(bind)?
        .run()
        .await
    })?;
    Ok(())
}
