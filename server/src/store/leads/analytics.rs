//! The marketing reports: conversion analytics and the live dashboard. Computed on
//! read from the lead rows (nothing is aggregated ahead), so they always agree with
//! the leads; `docs/leads.md` defines every figure.

use std::collections::BTreeMap;

use diesel::prelude::*;
use serde_json::{json, Value};

use crate::db::schema::{agents, contacts, conversations, leads};
use crate::db::DbConn;
use crate::error::AppError;

use super::{config, conversation_ids, LeadRow};

// ------------------------------------------------------------------ analytics

/// Counts per key, as a sorted map.
pub type Counts = BTreeMap<String, i64>;

fn ratio(a: i64, b: i64) -> f64 {
    if b == 0 {
        0.0
    } else {
        ((a as f64 / b as f64) * 10_000.0).round() / 10_000.0
    }
}

fn mean(v: &[i64]) -> Option<i64> {
    (!v.is_empty()).then(|| v.iter().sum::<i64>() / v.len() as i64)
}

/// `GET /api/marketing/analytics`: see `docs/leads.md` for every definition. With
/// `since` (epoch ms) only leads created at or after it count (e.g. "today").
///
/// # Errors
/// Database errors.
pub fn analytics(c: &mut DbConn, team_id: &str, since: Option<i64>) -> Result<Value, AppError> {
    let cfg = config(c, team_id)?;
    let rows: Vec<LeadRow> = leads::table
        .filter(leads::team_id.eq(team_id))
        .filter(leads::created_at.ge(since.unwrap_or(i64::MIN)))
        .select(LeadRow::as_select())
        .load(c)?;
    let total = rows.len() as i64;
    let outcome = |l: &LeadRow| cfg.stage(&l.stage).and_then(|s| s.outcome.clone());
    let won = rows
        .iter()
        .filter(|l| outcome(l).as_deref() == Some("won"))
        .count() as i64;
    let lost = rows
        .iter()
        .filter(|l| outcome(l).as_deref() == Some("lost"))
        .count() as i64;
    let open: Vec<&str> = cfg
        .stages
        .iter()
        .filter(|s| s.outcome.is_none())
        .map(|s| s.key.as_str())
        .collect();
    let won_key = cfg
        .stages
        .iter()
        .find(|s| s.outcome.as_deref() == Some("won"))
        .map_or("won", |s| s.key.as_str());
    let reached = |i: usize| {
        rows.iter()
            .filter(|l| l.furthest_position as usize >= i)
            .count() as i64
    };
    let mut funnel = Vec::new();
    for i in 0..open.len() {
        let to = open.get(i + 1).copied().unwrap_or(won_key);
        let (a, b) = (reached(i), reached(i + 1));
        funnel.push(
            json!({"from": open[i], "to": to, "from_count": a, "to_count": b, "rate": ratio(b, a)}),
        );
    }
    let group = |key: &dyn Fn(&LeadRow) -> Option<String>| {
        let mut m: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for l in &rows {
            if let Some(k) = key(l) {
                let e = m.entry(k).or_default();
                e.0 += 1;
                if outcome(l).as_deref() == Some("won") {
                    e.1 += 1;
                }
            }
        }
        m
    };
    let campaigns: Vec<Value> = group(&|l| l.campaign_code.clone())
        .into_iter()
        .map(|(k, (n, w))| json!({"campaign_code": k, "leads": n, "won": w, "conversion": ratio(w, n)}))
        .collect();
    let sources: Vec<Value> = group(&|l| Some(l.source.clone()))
        .into_iter()
        .map(|(k, (n, w))| json!({"source": k, "leads": n, "won": w, "conversion": ratio(w, n)}))
        .collect();
    let mut per_agent: BTreeMap<String, (i64, i64, Vec<i64>, Vec<i64>)> = BTreeMap::new();
    for l in &rows {
        let Some(owner) = &l.owner_id else { continue };
        let e = per_agent.entry(owner.clone()).or_default();
        e.0 += 1;
        if outcome(l).as_deref() == Some("won") {
            e.1 += 1;
        }
        if let Some(f) = l.first_response_at {
            e.2.push(f - l.created_at);
        }
        if let Some(cl) = l.closed_at {
            e.3.push(cl - l.created_at);
        }
    }
    let names: BTreeMap<String, String> = agents::table
        .filter(agents::id.eq_any(per_agent.keys().cloned().collect::<Vec<_>>()))
        .select((agents::id, agents::name))
        .load::<(String, String)>(c)?
        .into_iter()
        .collect();
    let agents_out: Vec<Value> = per_agent
        .into_iter()
        .map(|(id, (n, w, fr, res))| {
            json!({"agent_id": id, "name": names.get(&id), "leads": n, "won": w,
                   "avg_first_response_ms": mean(&fr), "avg_resolution_ms": mean(&res)})
        })
        .collect();
    let mut distribution: Counts = cfg.stages.iter().map(|s| (s.key.clone(), 0)).collect();
    for l in &rows {
        *distribution.entry(l.stage.clone()).or_default() += 1;
    }
    Ok(json!({
        "team_id": team_id,
        "conversion_metrics": {
            "total_leads": total,
            "won": won,
            "lost": lost,
            "conversion_rate": ratio(won, total),
            "funnel": funnel,
        },
        "stage_distribution": distribution,
        "campaign_performance": campaigns,
        "source_performance": sources,
        "agent_performance": agents_out,
    }))
}

/// `GET /api/marketing/dashboard`.
///
/// # Errors
/// Database errors.
pub fn dashboard(c: &mut DbConn, team_id: &str) -> Result<Value, AppError> {
    let cfg = config(c, team_id)?;
    let active: i64 = conversations::table
        .inner_join(contacts::table)
        .filter(crate::store::conversations::visible_to_agents())
        .filter(conversations::team_id.eq(team_id))
        .filter(conversations::status.eq("open"))
        .count()
        .get_result(c)?;
    let stages: Vec<String> = leads::table
        .filter(leads::team_id.eq(team_id))
        .select(leads::stage)
        .load(c)?;
    let mut distribution: Counts = cfg.stages.iter().map(|s| (s.key.clone(), 0)).collect();
    for s in stages {
        *distribution.entry(s).or_default() += 1;
    }
    let pending: Vec<LeadRow> = leads::table
        .filter(leads::team_id.eq(team_id))
        .filter(leads::handover_pending.eq(1))
        .order(leads::updated_at.asc())
        .select(LeadRow::as_select())
        .load(c)?;
    let mut handovers = Vec::new();
    for l in pending {
        let convs = conversation_ids(c, &l.id)?;
        let last: Option<(String, Option<String>)> = conversations::table
            .filter(conversations::id.eq_any(&convs))
            .order(conversations::last_message_at.desc())
            .select((conversations::id, conversations::last_message_preview))
            .first(c)
            .optional()?;
        let contact: Option<(Option<String>, Option<String>)> = contacts::table
            .find(&l.contact_id)
            .select((contacts::phone, contacts::name))
            .first(c)
            .optional()?;
        let (phone, name) = contact.unzip();
        let (conv, last_message) = last.unzip();
        handovers.push(json!({
            "lead_id": l.id,
            "name": name.flatten(),
            "phone": phone.flatten(),
            "stage": l.stage,
            "last_message": last_message.flatten(),
            "interested_package": l.interested_package,
            "conversation_id": conv,
            "conversation_url": conv.as_ref().map(|c| format!("/api/conversations/{c}")),
            "notes": l.handover_reason,
        }));
    }
    let escalated: i64 = leads::table
        .filter(leads::team_id.eq(team_id))
        .filter(leads::escalated.eq(1))
        .count()
        .get_result(c)?;
    Ok(json!({
        "team_id": team_id,
        "active_conversations": active,
        "stage_distribution": distribution,
        "pending_handover": handovers,
        "escalated_conversations": escalated,
    }))
}
