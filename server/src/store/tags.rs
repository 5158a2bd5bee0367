//! Tags and which contacts carry them (`docs/contacts.md`, "Tags"). Callers run the
//! changes inside `db::write_transaction` with their audit entry.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use serde::Serialize;

use crate::contacts::tag_key;
use crate::db::schema::{contact_tags, contacts, tags};
use crate::db::{is_unique_violation, DbConn};
use crate::error::AppError;
use crate::model::new_id;

/// Most contacts one bulk change touches.
pub const MAX_BULK: usize = 10_000;

/// A tag as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Queryable, Selectable)]
#[diesel(table_name = tags)]
pub struct TagView {
    /// Tag id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub updated_at: i64,
}

/// The `contact_tags` frame: a contact's tags after a change, for one of its
/// conversations.
#[derive(Debug, Clone, Serialize)]
pub struct ContactTagsFrame {
    /// The conversation the inbox shows the contact in.
    pub conversation_id: String,
    /// The contact.
    pub contact_id: String,
    /// Its tags now, by name.
    pub tags: Vec<TagView>,
}

/// A tag with how many contacts carry it.
#[derive(Debug, Clone, Serialize)]
pub struct TagCount {
    /// The tag.
    #[serde(flatten)]
    pub tag: TagView,
    /// Contacts carrying it.
    pub contacts: i64,
}

fn taken(name: &str) -> AppError {
    AppError::Conflict(format!("A tag named {name:?} already exists."))
}

/// Every tag, by name, with its contact count.
///
/// # Errors
/// Database errors.
pub fn all(c: &mut DbConn) -> Result<Vec<TagCount>, AppError> {
    let tags: Vec<TagView> = tags::table
        .select(TagView::as_select())
        .order(tags::name_key.asc())
        .load(c)?;
    let counts: HashMap<String, i64> = contact_tags::table
        .group_by(contact_tags::tag_id)
        .select((contact_tags::tag_id, diesel::dsl::count_star()))
        .load::<(String, i64)>(c)?
        .into_iter()
        .collect();
    Ok(tags
        .into_iter()
        .map(|t| TagCount {
            contacts: counts.get(&t.id).copied().unwrap_or(0),
            tag: t,
        })
        .collect())
}

/// One tag.
///
/// # Errors
/// [`AppError::NotFound`].
pub fn get(c: &mut DbConn, id: &str) -> Result<TagView, AppError> {
    tags::table
        .find(id)
        .select(TagView::as_select())
        .first(c)
        .optional()?
        .ok_or_else(|| AppError::NotFound("no such tag".into()))
}

/// Checks every id names a tag.
///
/// # Errors
/// [`AppError::Validation`] naming the first unknown id.
pub fn check_exist<'a>(
    c: &mut DbConn,
    ids: impl Iterator<Item = &'a String>,
) -> Result<(), AppError> {
    let wanted: HashSet<&String> = ids.collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let found: HashSet<String> = tags::table
        .filter(tags::id.eq_any(wanted.iter().map(|s| s.as_str())))
        .select(tags::id)
        .load::<String>(c)?
        .into_iter()
        .collect();
    match wanted.into_iter().find(|id| !found.contains(*id)) {
        Some(id) => Err(AppError::Validation(format!("There is no tag {id}."))),
        None => Ok(()),
    }
}

/// Creates a tag named `name` (already cleaned).
///
/// # Errors
/// [`AppError::Conflict`] when the name is taken (any case).
pub fn create(c: &mut DbConn, name: &str, now: i64) -> Result<TagView, AppError> {
    let tag = TagView {
        id: new_id(),
        name: name.to_string(),
        created_at: now,
        updated_at: now,
    };
    let inserted = c.transaction(|c| {
        diesel::insert_into(tags::table)
            .values((
                tags::id.eq(&tag.id),
                tags::name.eq(&tag.name),
                tags::name_key.eq(tag_key(name)),
                tags::created_at.eq(now),
                tags::updated_at.eq(now),
            ))
            .execute(c)
    });
    match inserted {
        Ok(_) => Ok(tag),
        Err(e) if is_unique_violation(&e) => Err(taken(name)),
        Err(e) => Err(e.into()),
    }
}

/// Renames a tag; returns it before and after.
///
/// # Errors
/// [`AppError::NotFound`], [`AppError::Conflict`] when the name is taken.
pub fn rename(
    c: &mut DbConn,
    id: &str,
    name: &str,
    now: i64,
) -> Result<(TagView, TagView), AppError> {
    let before = get(c, id)?;
    let updated = c.transaction(|c| {
        diesel::update(tags::table.find(id))
            .set((
                tags::name.eq(name),
                tags::name_key.eq(tag_key(name)),
                tags::updated_at.eq(now),
            ))
            .execute(c)
    });
    match updated {
        Ok(_) => Ok((before, get(c, id)?)),
        Err(e) if is_unique_violation(&e) => Err(taken(name)),
        Err(e) => Err(e.into()),
    }
}

/// Deletes a tag and takes it off every contact; returns it.
///
/// # Errors
/// [`AppError::NotFound`].
pub fn delete(c: &mut DbConn, id: &str) -> Result<TagView, AppError> {
    let tag = get(c, id)?;
    diesel::delete(contact_tags::table.filter(contact_tags::tag_id.eq(id))).execute(c)?;
    diesel::delete(tags::table.find(id)).execute(c)?;
    Ok(tag)
}

/// Puts tag `tag_id` on every contact of `contact_ids` that lacks it; returns how
/// many contacts gained it. Unknown contact ids are refused.
///
/// # Errors
/// [`AppError::NotFound`] (tag), [`AppError::Validation`] (contacts).
pub fn add(
    c: &mut DbConn,
    tag_id: &str,
    contact_ids: &[String],
    now: i64,
) -> Result<usize, AppError> {
    get(c, tag_id)?;
    let ids: Vec<&str> = dedup(contact_ids)?;
    let mut have: HashSet<String> = HashSet::new();
    let mut known: HashSet<String> = HashSet::new();
    for chunk in ids.chunks(500) {
        known.extend(
            contacts::table
                .filter(contacts::id.eq_any(chunk))
                .select(contacts::id)
                .load::<String>(c)?,
        );
        have.extend(
            contact_tags::table
                .filter(contact_tags::tag_id.eq(tag_id))
                .filter(contact_tags::contact_id.eq_any(chunk))
                .select(contact_tags::contact_id)
                .load::<String>(c)?,
        );
    }
    if let Some(id) = ids.iter().find(|id| !known.contains(**id)) {
        return Err(AppError::Validation(format!("There is no contact {id}.")));
    }
    let mut added = 0;
    // Row by row: diesel's MultiBackend has no multi-row insert.
    for id in ids.into_iter().filter(|id| !have.contains(*id)) {
        let inserted = c.transaction(|c| {
            diesel::insert_into(contact_tags::table)
                .values((
                    contact_tags::contact_id.eq(id),
                    contact_tags::tag_id.eq(tag_id),
                    contact_tags::created_at.eq(now),
                ))
                .execute(c)
        });
        match inserted {
            Ok(n) => {
                added += n;
                // A tag automation starts for the contact, in this transaction.
                crate::store::automations::runs::on_tag_added(c, id, tag_id, now)?;
            }
            // Tagged meanwhile by someone else: the outcome is the same.
            Err(e) if is_unique_violation(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(added)
}

/// Takes tag `tag_id` off every contact of `contact_ids`; returns how many lost it.
///
/// # Errors
/// [`AppError::NotFound`] (tag), [`AppError::Validation`] (too many contacts).
pub fn remove(c: &mut DbConn, tag_id: &str, contact_ids: &[String]) -> Result<usize, AppError> {
    get(c, tag_id)?;
    let ids = dedup(contact_ids)?;
    let mut removed = 0;
    for chunk in ids.chunks(500) {
        removed += diesel::delete(
            contact_tags::table
                .filter(contact_tags::tag_id.eq(tag_id))
                .filter(contact_tags::contact_id.eq_any(chunk)),
        )
        .execute(c)?;
    }
    Ok(removed)
}

fn dedup(contact_ids: &[String]) -> Result<Vec<&str>, AppError> {
    if contact_ids.len() > MAX_BULK {
        return Err(AppError::Validation(format!(
            "At most {MAX_BULK} contacts at once."
        )));
    }
    let mut seen = HashSet::new();
    Ok(contact_ids
        .iter()
        .map(String::as_str)
        .filter(|id| seen.insert(*id))
        .collect())
}

/// The tags of each of `contact_ids`, by name.
///
/// # Errors
/// Database errors.
pub fn of_contacts(
    c: &mut DbConn,
    contact_ids: &[String],
) -> Result<HashMap<String, Vec<TagView>>, AppError> {
    let mut out: HashMap<String, Vec<TagView>> = HashMap::new();
    for chunk in contact_ids.chunks(500) {
        let rows: Vec<(String, TagView)> = contact_tags::table
            .inner_join(tags::table)
            .filter(contact_tags::contact_id.eq_any(chunk))
            .select((contact_tags::contact_id, TagView::as_select()))
            .order(tags::name_key.asc())
            .load(c)?;
        for (contact, tag) in rows {
            out.entry(contact).or_default().push(tag);
        }
    }
    Ok(out)
}

/// Sets the tags of one contact to exactly `tag_ids`; returns (before, after).
///
/// # Errors
/// [`AppError::NotFound`] (contact), [`AppError::Validation`] (unknown tag).
pub fn set_for_contact(
    c: &mut DbConn,
    contact_id: &str,
    tag_ids: &[String],
    now: i64,
) -> Result<(Vec<TagView>, Vec<TagView>), AppError> {
    let exists: i64 = contacts::table
        .filter(contacts::id.eq(contact_id))
        .count()
        .get_result(c)?;
    if exists == 0 {
        return Err(AppError::NotFound("no such contact".into()));
    }
    check_exist(c, tag_ids.iter())?;
    let key = [contact_id.to_string()];
    let before = of_contacts(c, &key)?.remove(contact_id).unwrap_or_default();
    let wanted: HashSet<&str> = tag_ids.iter().map(String::as_str).collect();
    for t in &before {
        if !wanted.contains(t.id.as_str()) {
            remove(c, &t.id, &key)?;
        }
    }
    for t in wanted {
        if !before.iter().any(|b| b.id == t) {
            add(c, t, &key, now)?;
        }
    }
    let after = of_contacts(c, &key)?.remove(contact_id).unwrap_or_default();
    Ok((before, after))
}
