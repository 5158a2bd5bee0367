//! The webhook workload's ceiling: an actix-web server whose only handler reads the
//! body and answers 200 — what any webhook endpoint costs before doing any work.
//!
//! Usage: `noop-http <bind address>` (e.g. `127.0.0.1:9103`).

use actix_web::{web, App, HttpResponse, HttpServer};

async fn ok(_body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"received":1}"#)
}

fn main() -> anyhow::Result<()> {
    let bind = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9103".to_string());
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(|| App::new().default_service(web::to(ok)))
            .workers(2)
            .bind(bind)?
            .run()
            .await
    })?;
    Ok(())
}
