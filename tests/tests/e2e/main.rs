//! The end-to-end suite as one test binary: each module is one area of the product,
//! driven through real servers over HTTP, WebSocket and a headless browser.
//!
//! One binary instead of one per file: every file linked the whole hub on its own,
//! which made CI slow and once ran its disk out while linking. Filter by area with the
//! module name, e.g. `cargo test -p switchboard-e2e --test e2e chat::`.

mod accounts;
mod alerts;
mod audit;
mod automations;
mod bot;
mod broadcasts;
mod browser;
mod browser_admin;
mod browser_alerts;
mod browser_audit;
mod browser_automations;
mod browser_broadcasts;
mod browser_contacts;
mod browser_dashboard;
mod browser_hours;
mod browser_inbox;
mod browser_leads;
mod browser_numbers;
mod browser_scheduler;
mod browser_templates;
mod browser_widget;
mod browser_widget_settings;
mod chat;
mod contacts;
mod delivery;
mod hardening;
mod hours;
mod http_api;
mod knowledge;
mod leads;
mod lifecycle;
mod marketing;
mod outage;
mod permissions;
mod quick_chat;
mod robustness;
mod routing;
mod scheduler;
mod security;
mod smoke;
mod templates;
mod whatsapp_inbound;
mod whatsapp_numbers;
mod whatsapp_outbox;
mod widget_first_run;
