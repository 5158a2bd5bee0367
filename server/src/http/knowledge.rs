//! Knowledge base API (`docs/api.md`, "Knowledge"): document CRUD, Markdown import
//! and a retrieval preview, for admins and team leads.
//!
//! STUB: routes land with the knowledge work (issue 6).

use actix_web::web;

/// Installs the knowledge routes under `/api`.
pub fn routes(_cfg: &mut web::ServiceConfig) {}
