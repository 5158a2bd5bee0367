//! Meta message templates as synced per WABA (tables `whatsapp_templates` and
//! `whatsapp_template_syncs`, migration `2026-12-06-000002_templates`): upsert of
//! a full sync (vanished templates are marked deleted, never dropped: messages
//! were sent with them), status changes from the webhook, listing for the
//! Templates page and the inbox picker, and the lookup a send validates against.

use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;

use crate::channels::templates::{self, MetaTemplate, Shape, StatusEvent};
use crate::clock::now_ms;
use crate::db::schema::{whatsapp_template_syncs, whatsapp_templates};
use crate::db::DbConn;
use crate::error::AppError;
use crate::model::new_id;

/// A stored template.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = whatsapp_templates)]
pub struct TemplateRow {
    /// Hub id.
    pub id: String,
    /// WhatsApp Business Account it belongs to.
    pub waba_id: String,
    /// Meta's id.
    pub meta_id: Option<String>,
    /// Name.
    pub name: String,
    /// Language code.
    pub language: String,
    /// Category.
    pub category: String,
    /// Meta's status name.
    pub status: String,
    /// Meta's components JSON.
    pub components: String,
    /// Meta's reason for the last status change, if any.
    pub reason: Option<String>,
    /// Gone from Meta's list at the last sync.
    pub deleted: bool,
    /// Last seen in a sync (epoch ms).
    pub synced_at: i64,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub updated_at: i64,
}

impl TemplateRow {
    /// The parsed components (an empty array when unreadable).
    pub fn components_json(&self) -> Value {
        serde_json::from_str(&self.components).unwrap_or(Value::Array(vec![]))
    }

    /// Whether it can be sent: approved and not deleted.
    pub fn sendable(&self) -> bool {
        !self.deleted
            && templates::TemplateStatus::parse(&self.status) == templates::TemplateStatus::Approved
    }

    /// The API view.
    pub fn view(&self) -> TemplateView {
        let components = self.components_json();
        TemplateView {
            id: self.id.clone(),
            waba_id: self.waba_id.clone(),
            meta_id: self.meta_id.clone(),
            name: self.name.clone(),
            language: self.language.clone(),
            category: self.category.clone(),
            status: self.status.clone(),
            reason: self.reason.clone(),
            deleted: self.deleted,
            sendable: self.sendable(),
            synced_at: self.synced_at,
            shape: templates::shape(&components),
            components,
        }
    }
}

/// A template as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct TemplateView {
    /// Hub id.
    pub id: String,
    /// WABA.
    pub waba_id: String,
    /// Meta's id.
    pub meta_id: Option<String>,
    /// Name.
    pub name: String,
    /// Language code.
    pub language: String,
    /// Category.
    pub category: String,
    /// Meta's status.
    pub status: String,
    /// Meta's reason for the status, if any.
    pub reason: Option<String>,
    /// Gone from Meta.
    pub deleted: bool,
    /// Approved and not deleted.
    pub sendable: bool,
    /// Last seen in a sync (epoch ms).
    pub synced_at: i64,
    /// Variables and texts, for the picker's form and preview.
    pub shape: Shape,
    /// Meta's components.
    pub components: Value,
}

/// The last sync of one WABA.
#[derive(Clone, Debug, Queryable, Selectable, Serialize)]
#[diesel(table_name = whatsapp_template_syncs)]
pub struct SyncView {
    /// WABA.
    pub waba_id: String,
    /// When (epoch ms).
    pub synced_at: i64,
    /// Whether it succeeded.
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
    /// Templates listed by Meta.
    pub count: i32,
}

fn record_sync(
    conn: &mut DbConn,
    waba_id: &str,
    ok: bool,
    error: Option<&str>,
    count: i32,
) -> QueryResult<()> {
    let now = now_ms();
    let n = diesel::update(whatsapp_template_syncs::table.find(waba_id))
        .set((
            whatsapp_template_syncs::synced_at.eq(now),
            whatsapp_template_syncs::ok.eq(ok),
            whatsapp_template_syncs::error.eq(error),
            whatsapp_template_syncs::count.eq(count),
        ))
        .execute(conn)?;
    if n == 0 {
        diesel::insert_into(whatsapp_template_syncs::table)
            .values((
                whatsapp_template_syncs::waba_id.eq(waba_id),
                whatsapp_template_syncs::synced_at.eq(now),
                whatsapp_template_syncs::ok.eq(ok),
                whatsapp_template_syncs::error.eq(error),
                whatsapp_template_syncs::count.eq(count),
            ))
            .execute(conn)?;
    }
    Ok(())
}

fn find(
    conn: &mut DbConn,
    waba_id: &str,
    name: &str,
    language: &str,
) -> QueryResult<Option<TemplateRow>> {
    whatsapp_templates::table
        .filter(whatsapp_templates::waba_id.eq(waba_id))
        .filter(whatsapp_templates::name.eq(name))
        .filter(whatsapp_templates::language.eq(language))
        .select(TemplateRow::as_select())
        .first(conn)
        .optional()
}

/// Stores a complete sync of `waba_id`: every listed template inserted or
/// updated (row by row, in one transaction), every stored one Meta no longer lists
/// marked deleted, and the sync recorded. Returns how many Meta listed.
///
/// # Errors
/// Database errors.
pub fn store_sync(
    conn: &mut DbConn,
    waba_id: &str,
    listed: &[MetaTemplate],
) -> Result<usize, AppError> {
    conn.transaction::<_, AppError, _>(|conn| {
        let now = now_ms();
        let mut seen = Vec::with_capacity(listed.len());
        for t in listed {
            let components = t.components.to_string();
            match find(conn, waba_id, &t.name, &t.language)? {
                Some(row) => {
                    diesel::update(whatsapp_templates::table.find(&row.id))
                        .set((
                            whatsapp_templates::meta_id.eq(&t.meta_id),
                            whatsapp_templates::category.eq(&t.category),
                            whatsapp_templates::status.eq(&t.status),
                            whatsapp_templates::components.eq(&components),
                            whatsapp_templates::deleted.eq(false),
                            whatsapp_templates::synced_at.eq(now),
                            whatsapp_templates::updated_at.eq(now),
                        ))
                        .execute(conn)?;
                    seen.push(row.id);
                }
                None => {
                    let row = TemplateRow {
                        id: new_id(),
                        waba_id: waba_id.to_string(),
                        meta_id: t.meta_id.clone(),
                        name: t.name.clone(),
                        language: t.language.clone(),
                        category: t.category.clone(),
                        status: t.status.clone(),
                        components,
                        reason: None,
                        deleted: false,
                        synced_at: now,
                        created_at: now,
                        updated_at: now,
                    };
                    diesel::insert_into(whatsapp_templates::table)
                        .values(&row)
                        .execute(conn)?;
                    seen.push(row.id);
                }
            }
        }
        diesel::update(
            whatsapp_templates::table
                .filter(whatsapp_templates::waba_id.eq(waba_id))
                .filter(whatsapp_templates::id.ne_all(&seen))
                .filter(whatsapp_templates::deleted.eq(false)),
        )
        .set((
            whatsapp_templates::deleted.eq(true),
            whatsapp_templates::updated_at.eq(now),
        ))
        .execute(conn)?;
        record_sync(
            conn,
            waba_id,
            true,
            None,
            i32::try_from(listed.len()).unwrap_or(i32::MAX),
        )?;
        Ok(listed.len())
    })
}

/// Records a failed sync of `waba_id` (stored templates are left as they were).
///
/// # Errors
/// Database errors.
pub fn sync_failed(conn: &mut DbConn, waba_id: &str, error: &str) -> Result<(), AppError> {
    let count: i64 = whatsapp_templates::table
        .filter(whatsapp_templates::waba_id.eq(waba_id))
        .filter(whatsapp_templates::deleted.eq(false))
        .count()
        .get_result(conn)?;
    record_sync(
        conn,
        waba_id,
        false,
        Some(error),
        i32::try_from(count).unwrap_or(i32::MAX),
    )?;
    Ok(())
}

/// Applies a `message_template_status_update`: the template's new status and
/// reason. Returns whether a stored template changed (an unknown one waits for
/// the re-sync that follows).
///
/// # Errors
/// Database errors.
pub fn apply_status(conn: &mut DbConn, ev: &StatusEvent) -> Result<bool, AppError> {
    let n = diesel::update(
        whatsapp_templates::table
            .filter(whatsapp_templates::waba_id.eq(&ev.waba_id))
            .filter(whatsapp_templates::name.eq(&ev.name))
            .filter(whatsapp_templates::language.eq(&ev.language)),
    )
    .set((
        whatsapp_templates::status.eq(&ev.status),
        whatsapp_templates::reason.eq(&ev.reason),
        whatsapp_templates::updated_at.eq(now_ms()),
    ))
    .execute(conn)?;
    Ok(n > 0)
}

/// Stored templates, deleted ones last, then by name and language; only those of
/// `waba_id` when given.
///
/// # Errors
/// Database errors.
pub fn list(conn: &mut DbConn, waba_id: Option<&str>) -> Result<Vec<TemplateView>, AppError> {
    let mut q = whatsapp_templates::table
        .select(TemplateRow::as_select())
        .order((
            whatsapp_templates::deleted.asc(),
            whatsapp_templates::name.asc(),
            whatsapp_templates::language.asc(),
        ))
        .into_boxed();
    if let Some(w) = waba_id {
        q = q.filter(whatsapp_templates::waba_id.eq(w.to_string()));
    }
    Ok(q.load(conn)?.iter().map(TemplateRow::view).collect())
}

/// The last sync of every WABA.
///
/// # Errors
/// Database errors.
pub fn syncs(conn: &mut DbConn) -> Result<Vec<SyncView>, AppError> {
    Ok(whatsapp_template_syncs::table
        .select(SyncView::as_select())
        .order(whatsapp_template_syncs::waba_id.asc())
        .load(conn)?)
}

/// The template a send names, in this WABA.
///
/// # Errors
/// [`AppError::NotFound`] when there is none; database errors.
pub fn get(
    conn: &mut DbConn,
    waba_id: &str,
    name: &str,
    language: &str,
) -> Result<TemplateRow, AppError> {
    find(conn, waba_id, name, language)?.ok_or_else(|| {
        AppError::NotFound(format!(
            "No template {name:?} in language {language:?} for this number's WhatsApp Business Account (sync templates first)."
        ))
    })
}
