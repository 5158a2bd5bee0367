//! HTML pages the hub renders on the server: filling a page template safely
//! ([`fill`]), and friendly error pages. A person whose browser lands on a missing
//! page (a mistyped or switched-off quick-chat link, an unknown route) gets a short
//! explanation in the hub's look with a link home, instead of the API's raw JSON.
//! Clients that do not prefer HTML (`fetch`, curl, the widget, the inbox) keep the
//! JSON `{"error","message"}` of [`AppError`], so the API contract is unchanged.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError};

use crate::error::AppError;

/// What a page tells a person about one kind of failure.
pub(crate) struct PageText {
    /// The heading (and the document title).
    pub title: &'static str,
    /// One or two sentences on what happened and what to do.
    pub message: &'static str,
}

/// An address that leads nowhere.
pub(crate) const NO_SUCH_PAGE: PageText = PageText {
    title: "Page not found",
    message: "There is nothing at this address. Check the link for typos, or start again from the home page.",
};

/// Anything but "not found" on a page (the database is down, a bug): a person can
/// only try again later.
const UNAVAILABLE: PageText = PageText {
    title: "Something went wrong",
    message: "This page cannot be shown right now. Please try again in a minute.",
};

/// The template: `{{STATUS}}`, `{{TITLE}}`, `{{MESSAGE}}` are filled in.
const TEMPLATE: &str = include_str!("error_page.html");

/// The page has no script and takes styles only from the hub (`/app/design.css`)
/// and its own inline block.
const CSP: &str = "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `err` as the caller prefers it: for a browser (see [`prefers_html`]) an HTML
/// page with the same status and headers — `not_found` explains a 404, anything
/// else says "try again later"; for everyone else the usual JSON error.
pub(crate) fn respond(req: &HttpRequest, err: AppError, not_found: &PageText) -> HttpResponse {
    // Built the usual way first: errors are logged there, and `Retry-After` kept.
    let resp = err.error_response();
    if !prefers_html(req) {
        return resp;
    }
    let status = resp.status();
    let text = if status == StatusCode::NOT_FOUND {
        not_found
    } else {
        &UNAVAILABLE
    };
    let html = fill(
        TEMPLATE,
        &[
            ("STATUS", status.as_str()),
            ("TITLE", text.title),
            ("MESSAGE", text.message),
        ],
    );
    let mut resp = resp.set_body(html).map_into_boxed_body();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(CSP),
    );
    resp
}

/// Whether the request's `Accept` header ranks HTML (`text/html` or
/// `application/xhtml+xml`) above JSON, as a browser navigating to a page does
/// (`text/html,…,*/*;q=0.8`). JSON's rank is that of `application/json`, else
/// `application/*`, else `*/*`; on a tie the type named outright wins, so
/// `text/html, */*` is HTML and `*/*` alone (fetch, curl) is JSON. Rules: RFC 9110
/// §12.5.1.
pub(crate) fn prefers_html(req: &HttpRequest) -> bool {
    let Some(accept) = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut html = 0.0_f32;
    // (q, specificity): 2 = application/json, 1 = application/*, 0 = */*.
    let mut json: Option<(f32, u8)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|v| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let specificity = match media.as_str() {
            "text/html" | "application/xhtml+xml" => {
                html = html.max(q);
                continue;
            }
            "application/json" => 2,
            "application/*" => 1,
            "*/*" => 0,
            _ => continue,
        };
        if json.is_none_or(|(_, s)| specificity > s) {
            json = Some((q, specificity));
        }
    }
    let json_q = json.map_or(0.0, |(q, _)| q);
    html > 0.0 && html >= json_q && !(html == json_q && json.is_some_and(|(_, s)| s == 2))
}

/// `template` with every `{{KEY}}` replaced by its value from `values`, escaped
/// for HTML text and quoted attributes. One pass over the template, so a value
/// that itself contains `{{…}}` is never filled in again. Unknown keys stay as
/// they are (a template bug shows on the page instead of vanishing).
pub(crate) fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let value = after.find("}}").and_then(|end| {
            let key = &after[..end];
            values
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (escape(v), end))
        });
        match value {
            Some((v, end)) => {
                out.push_str(&v);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escapes text for HTML element content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn html_for(accept: Option<&str>) -> bool {
        let mut req = TestRequest::default();
        if let Some(a) = accept {
            req = req.insert_header((header::ACCEPT, a));
        }
        prefers_html(&req.to_http_request())
    }

    #[test]
    fn browsers_get_html_api_clients_json() {
        // Chromium's and Firefox's navigation headers.
        assert!(html_for(Some(
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
        )));
        assert!(html_for(Some("text/html, */*")));
        assert!(!html_for(None));
        assert!(!html_for(Some("*/*")));
        assert!(!html_for(Some("application/json")));
        assert!(!html_for(Some("application/json, text/html")));
        assert!(!html_for(Some("text/html;q=0.5, application/json")));
        assert!(!html_for(Some("text/html;q=0")));
    }

    async fn body_of(resp: HttpResponse) -> String {
        let bytes = actix_web::body::to_bytes(resp.into_body()).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[actix_rt::test]
    async fn a_page_keeps_the_status_and_says_only_what_a_person_needs() {
        let browser = TestRequest::default()
            .insert_header((header::ACCEPT, "text/html"))
            .to_http_request();
        let resp = respond(
            &browser,
            AppError::Unavailable("pool timed out at db.rs:42".into()),
            &NO_SUCH_PAGE,
        );
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers().get("retry-after").unwrap(), "5");
        assert!(resp
            .headers()
            .get(header::CONTENT_TYPE)
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let html = body_of(resp).await;
        assert!(
            html.contains("Something went wrong") && html.contains("Error 503"),
            "{html}"
        );
        assert!(!html.contains("db.rs"), "no internals on the page: {html}");

        let resp = respond(&browser, AppError::NotFound("x".into()), &NO_SUCH_PAGE);
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert!(body_of(resp).await.contains(NO_SUCH_PAGE.title));

        let api = TestRequest::default().to_http_request();
        let resp = respond(
            &api,
            AppError::NotFound("no such route".into()),
            &NO_SUCH_PAGE,
        );
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            body_of(resp).await,
            r#"{"error":"not_found","message":"no such route"}"#
        );
    }

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<b a="1">Tom & 'Jerry'</b>"#),
            "&lt;b a=&quot;1&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/b&gt;"
        );
    }

    #[test]
    fn fills_each_placeholder_once_and_escaped() {
        let page = fill(
            r#"<h1 title="{{A}}">{{A}}</h1><p>{{B}}</p>{{C}}"#,
            &[("A", "{{B}}\"<x>"), ("B", "b & c")],
        );
        assert_eq!(
            page,
            "<h1 title=\"{{B}}&quot;&lt;x&gt;\">{{B}}&quot;&lt;x&gt;</h1><p>b &amp; c</p>{{C}}"
        );
    }
}
