//! Pages and static assets, embedded in the binary (rust-embed) so the hub runs from
//! a single file: the agent inbox (`web-client/`) with its PWA files at the root
//! (`/manifest.webmanifest`, and `/sw.js` so its service worker may control `/`),
//! the widget and its demo page (`widget/`). In debug builds rust-embed reads the folders from disk, so front-end
//! edits show on reload without recompiling.

use std::borrow::Cow;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use rust_embed::RustEmbed;

use crate::error::AppError;

#[derive(RustEmbed)]
#[folder = "$CARGO_MANIFEST_DIR/../web-client/"]
struct WebClient;

#[derive(RustEmbed)]
#[folder = "$CARGO_MANIFEST_DIR/../widget/"]
struct Widget;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(inbox))
        .route("/app/{path:.*}", web::get().to(app_asset))
        .route("/widget.js", web::get().to(widget_js))
        .route("/widget/{path:.*}", web::get().to(widget_asset))
        .route("/demo", web::get().to(demo))
        .route("/manifest.webmanifest", web::get().to(manifest))
        .route("/sw.js", web::get().to(service_worker))
        .route("/favicon.ico", web::get().to(favicon));
}

/// A speech-bubble icon, so browsers stop logging a 404 for every page.
const FAVICON_SVG: &str = "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'>\
<path fill='#2563eb' d='M4 6a4 4 0 0 1 4-4h16a4 4 0 0 1 4 4v12a4 4 0 0 1-4 4H13l-7 6v-6H8a4 4 0 0 1-4-4z'/></svg>";

async fn favicon() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "image/svg+xml"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(FAVICON_SVG)
}

/// The inbox may only talk to its own origin and run its own scripts; message text
/// can therefore never become script even if some rendering bug let HTML through.
const INBOX_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn serve(
    file: Option<rust_embed::EmbeddedFile>,
    path: &str,
    req: &HttpRequest,
) -> Result<HttpResponse, AppError> {
    let file = file.ok_or_else(|| AppError::NotFound(format!("no file {path}")))?;
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..12]));
    if req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag)
    {
        return Ok(HttpResponse::NotModified().finish());
    }
    let mime = file.metadata.mimetype();
    let body: Cow<'static, [u8]> = file.data;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, mime))
        .insert_header((header::ETAG, etag))
        // Revalidate every time: cheap with the ETag, and a deploy shows at once.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body.into_owned()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn clean(path: &str) -> Result<&str, AppError> {
    if path
        .split('/')
        .any(|seg| seg == ".." || seg.starts_with('.'))
    {
        return Err(AppError::NotFound("no such file".into()));
    }
    Ok(path)
}

async fn inbox(req: HttpRequest) -> Result<HttpResponse, AppError> {
    let mut resp = serve(WebClient::get("index.html"), "index.html", &req)?;
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(INBOX_CSP),
    );
    Ok(resp)
}

async fn app_asset(req: HttpRequest, path: web::Path<String>) -> Result<HttpResponse, AppError> {
    let path = clean(&path)?;
    serve(WebClient::get(path), path, &req)
}

/// The inbox's web app manifest (name, icons, `start_url` `/`), at the root because
/// the page links it from there; `application/manifest+json` per the W3C spec.
async fn manifest(req: HttpRequest) -> Result<HttpResponse, AppError> {
    let mut resp = serve(
        WebClient::get("manifest.webmanifest"),
        "manifest.webmanifest",
        &req,
    )?;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/manifest+json"),
    );
    Ok(resp)
}

/// The inbox's service worker. Served from the root so its scope can be `/` (a
/// worker's maximum scope is its own directory unless `Service-Worker-Allowed`
/// widens it; the header is sent anyway so the scope is explicit). Browsers refuse
/// a worker script that is not served as JavaScript.
async fn service_worker(req: HttpRequest) -> Result<HttpResponse, AppError> {
    let mut resp = serve(WebClient::get("sw.js"), "sw.js", &req)?;
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    headers.insert(
        header::HeaderName::from_static("service-worker-allowed"),
        header::HeaderValue::from_static("/"),
    );
    Ok(resp)
}

async fn widget_js(req: HttpRequest) -> Result<HttpResponse, AppError> {
    serve(Widget::get("widget.js"), "widget.js", &req)
}

async fn widget_asset(req: HttpRequest, path: web::Path<String>) -> Result<HttpResponse, AppError> {
    let path = clean(&path)?;
    serve(Widget::get(path), path, &req)
}

async fn demo(req: HttpRequest) -> Result<HttpResponse, AppError> {
    serve(Widget::get("demo.html"), "demo.html", &req)
}
