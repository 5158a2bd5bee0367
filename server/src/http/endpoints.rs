//! The API's route table: every `/api` route, the [`Rule`] it needs and its handler,
//! declared once by each area's module (`ENDPOINTS`) and mounted here.
//!
//! Mounting wraps every route in [`enforce`], so a route's rule is checked before its
//! handler runs whatever the handler extracts; the authenticated [`Principal`] is left
//! in the request's extensions for the handler's extractor (one token check and one
//! account lookup per request). [`all`] is public so the route × role test walks the
//! very table the server mounts: a route added to an area's list is walked without
//! anyone remembering to, and a route mounted any other way is refused by the
//! `only_the_table_mounts_api_routes` test below.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::{from_fn, Next};
use actix_web::{guard, web, HttpMessage, Resource};

use crate::access::{self, Rule};
use crate::auth::Principal;
use crate::error::AppError;

/// One `/api` route: method, path (relative to `/api`, actix pattern syntax), the
/// access rule, and how its handler is attached.
#[derive(Clone)]
pub struct Endpoint {
    /// HTTP method.
    pub method: Method,
    /// Path under `/api`, e.g. `/teams/{id}/members/{agent_id}`.
    pub path: &'static str,
    /// Who may call it.
    pub rule: Rule,
    pub(super) mount: fn(Resource) -> Resource,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} /api{} {:?}", self.method, self.path, self.rule)
    }
}

/// Declares an [`Endpoint`]: `endpoint!(GET "/agents", Rule::AnyAgent, list_agents)`;
/// `…, handler, app_data = expr)` also gives the route its own app data (a larger
/// JSON body limit, say).
macro_rules! endpoint {
    ($method:ident $path:literal, $rule:expr, $handler:path) => {
        $crate::http::endpoints::Endpoint {
            method: ::actix_web::http::Method::$method,
            path: $path,
            rule: $rule,
            mount: |r| r.to($handler),
        }
    };
    ($method:ident $path:literal, $rule:expr, $handler:path, app_data = $data:expr) => {
        $crate::http::endpoints::Endpoint {
            method: ::actix_web::http::Method::$method,
            path: $path,
            rule: $rule,
            mount: |r| r.app_data($data).to($handler),
        }
    };
}
pub(super) use endpoint;

/// Every `/api` route in mounting order (order matters where a literal segment and a
/// parameter compete: `/conversations/handover` before `/conversations/{id}`).
pub fn all() -> Vec<Endpoint> {
    [
        super::auth::ENDPOINTS,
        super::agents::ENDPOINTS,
        super::widget::ENDPOINTS,
        super::leads::ENDPOINTS,
        super::marketing::ENDPOINTS,
        super::quick_chat::ENDPOINTS,
        super::conversations::ENDPOINTS,
        super::routing::ENDPOINTS,
        super::whatsapp::ENDPOINTS,
        super::media::ENDPOINTS,
        super::bot::ENDPOINTS,
        super::knowledge::ENDPOINTS,
        super::audit::ENDPOINTS,
        super::numbers::ENDPOINTS,
        super::jobs::ENDPOINTS,
        super::contacts::ENDPOINTS,
        super::segments::ENDPOINTS,
        super::templates::ENDPOINTS,
        super::broadcasts::ENDPOINTS,
        super::automations::ENDPOINTS,
    ]
    .concat()
}

/// Mounts [`all`] on the `/api` scope.
pub(super) fn mount(cfg: &mut web::ServiceConfig) {
    for endpoint in all() {
        let rule = endpoint.rule;
        let resource = web::resource(endpoint.path).guard(guard::Method(endpoint.method.clone()));
        cfg.service((endpoint.mount)(resource).wrap(from_fn(
            move |req: ServiceRequest, next: Next<actix_web::body::BoxBody>| {
                enforce(rule, req, next)
            },
        )));
    }
}

/// Checks `rule` for the caller of `req` and lets the request through, with the
/// caller's [`Principal`] in its extensions, or answers 401/403 without running the
/// handler.
///
/// # Errors
/// [`AppError::Unauthorized`] without or with a bad token; [`AppError::Forbidden`]
/// when the rule refuses the caller; [`AppError::Unavailable`] when the account
/// cannot be read.
async fn enforce(
    rule: Rule,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if rule != Rule::Open {
        let principal = Principal::authenticate(req.request()).await?;
        check(rule, &principal)?;
        req.extensions_mut().insert(principal);
    }
    next.call(req).await
}

/// Whether `principal` passes `rule` (through [`access::require`], the one check).
///
/// # Errors
/// [`AppError::Forbidden`].
pub fn check(rule: Rule, principal: &Principal) -> Result<(), AppError> {
    match (rule, principal) {
        (Rule::Open, _)
        | (Rule::GuestOr(_) | Rule::Guest, Principal::Guest(_))
        | (Rule::AnyAgent, Principal::Agent(_)) => Ok(()),
        (Rule::Guest, Principal::Agent(_)) => Err(AppError::Forbidden("guests only".into())),
        (Rule::GuestOr(p) | Rule::Agent(p), Principal::Agent(agent)) => access::require(agent, p),
        (Rule::Agent(_) | Rule::AnyAgent, Principal::Guest(_)) => {
            Err(AppError::Forbidden("agents only".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_declared_once() {
        let mut seen = std::collections::HashSet::new();
        for e in all() {
            assert!(
                seen.insert((e.method.clone(), e.path)),
                "declared twice: {e:?}"
            );
        }
    }

    /// The table is the only way into `/api`: an area module that mounted a route
    /// directly (`cfg.route`, `web::get()` …) would skip its rule and the route ×
    /// role test. Public surfaces outside `/api` (assets, pages, webhooks, health,
    /// WebSocket upgrades) are the listed exceptions.
    #[test]
    fn only_the_table_mounts_api_routes() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
        let outside_api = ["assets.rs", "webhooks.rs", "mod.rs", "endpoints.rs"];
        let mut offenders = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !name.ends_with(".rs") || outside_api.contains(&name.as_str()) {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let mounts = [
                    "web::get()",
                    "web::post()",
                    "web::put()",
                    "web::patch()",
                    "web::delete()",
                    "web::scope(",
                ]
                .iter()
                .any(|m| line.contains(m));
                if mounts && !line.contains("pages:") {
                    offenders.push(format!("{name}:{}: {}", n + 1, line.trim()));
                }
            }
        }
        // quick_chat.rs mounts the public quick-chat page (`/q/...`) outside /api.
        offenders.retain(|o| !o.starts_with("quick_chat.rs") || !o.contains("/q/{handle}"));
        assert!(
            offenders.is_empty(),
            "mounted outside the route table: {offenders:#?}"
        );
    }

    /// `docs/roles.md` shows the permission matrix and the route table as this
    /// code has them: the section between the markers is rendered here and must
    /// match (`SWITCHBOARD_UPDATE_DOCS=1` rewrites it; tests never write otherwise).
    #[test]
    fn roles_doc_matches_the_code() {
        use crate::access::Permission;
        use crate::model::Role;
        let mut md = String::from("| permission | ");
        md += &Role::ALL.map(|r| r.as_str()).join(" | ");
        md += " |\n|---|";
        md += &"---|".repeat(Role::ALL.len());
        md += "\n";
        for p in Permission::ALL {
            md += &format!("| `{}` |", p.as_str());
            for r in Role::ALL {
                md += if r.can(p) { " ✓ |" } else { " · |" };
            }
            md += "\n";
        }
        md += "\n| route | needs | ";
        md += &Role::ALL.map(|r| r.as_str()).join(" | ");
        md += " | guest |\n|---|---|";
        md += &"---|".repeat(Role::ALL.len() + 1);
        md += "\n";
        for e in all() {
            let needs = match e.rule {
                Rule::Open => "open".to_string(),
                Rule::AnyAgent => "any agent".to_string(),
                Rule::Guest => "guest token".to_string(),
                Rule::Agent(p) => format!("`{}`", p.as_str()),
                Rule::GuestOr(p) => format!("guest or `{}`", p.as_str()),
            };
            md += &format!("| `{} /api{}` | {needs} |", e.method, e.path);
            for who in Role::ALL.map(Some).into_iter().chain([None]) {
                md += if e.rule.refusal(who).is_none() {
                    " ✓ |"
                } else {
                    " · |"
                };
            }
            md += "\n";
        }
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/roles.md");
        let doc = std::fs::read_to_string(&path).unwrap();
        let (begin, end) = ("<!-- matrix:begin -->\n", "<!-- matrix:end -->");
        let start = doc.find(begin).expect("begin marker") + begin.len();
        let stop = doc.find(end).expect("end marker");
        if std::env::var("SWITCHBOARD_UPDATE_DOCS").as_deref() == Ok("1") {
            let updated = format!("{}{md}{}", &doc[..start], &doc[stop..]);
            std::fs::write(&path, updated).unwrap();
            return;
        }
        assert_eq!(
            &doc[start..stop],
            md,
            "docs/roles.md is out of date: SWITCHBOARD_UPDATE_DOCS=1 cargo test -p switchboard --lib roles_doc"
        );
    }
}
