//! Segments (`docs/contacts.md`, "Segments"): saved [`SegmentFilter`]s, and the
//! filter compiled to SQL ([`matching`]) — one boxed diesel query, the same on both
//! backends, every criterion a sub-select on an indexed column. [`members`] is what
//! a broadcast materialises: each matching contact once, with the conversation and
//! WhatsApp number to reach it.

use std::collections::HashMap;

use diesel::dsl::{exists, not};
use diesel::prelude::*;
use serde::Serialize;

use crate::clock::rfc3339;
use crate::contacts::segment::SegmentFilter;
use crate::contacts::ConsentState;
use crate::db::schema::{
    contact_consent, contact_tags, contacts, conversations, lead_contacts, leads, segments,
};
use crate::db::{DbConn, MultiBackend};
use crate::error::AppError;
use crate::model::new_id;

/// Contacts a preview lists.
pub const PREVIEW: i64 = 50;

/// Contact ids per conversations read in [`members`] (well under SQLite's bind limit).
pub const MEMBER_CHUNK: usize = 500;

/// Which contacts a caller may see: those with a conversation in one of these
/// teams; `None` for every contact (`teams.all`).
pub type Scope<'a> = Option<&'a [String]>;

/// The contacts matching `filter` within `scope`, as a boxed query to select,
/// count or page from. An empty filter matches every contact with a conversation.
pub fn matching<'a>(
    filter: &'a SegmentFilter,
    scope: Scope<'a>,
) -> contacts::BoxedQuery<'a, MultiBackend> {
    let mut q = contacts::table.into_boxed();
    q = match scope {
        Some(teams) => q.filter(
            contacts::id.eq_any(
                conversations::table
                    .filter(conversations::team_id.eq_any(teams))
                    .select(conversations::contact_id),
            ),
        ),
        None => {
            q.filter(contacts::id.eq_any(conversations::table.select(conversations::contact_id)))
        }
    };
    let t = &filter.tags;
    if !t.any.is_empty() {
        q = q.filter(
            contacts::id.eq_any(
                contact_tags::table
                    .filter(contact_tags::tag_id.eq_any(&t.any))
                    .select(contact_tags::contact_id),
            ),
        );
    }
    for tag in &t.all {
        q = q.filter(exists(
            contact_tags::table
                .filter(contact_tags::contact_id.eq(contacts::id))
                .filter(contact_tags::tag_id.eq(tag)),
        ));
    }
    if !t.none.is_empty() {
        q = q.filter(not(exists(
            contact_tags::table
                .filter(contact_tags::contact_id.eq(contacts::id))
                .filter(contact_tags::tag_id.eq_any(&t.none)),
        )));
    }
    if !filter.channels.is_empty() {
        let names: Vec<&str> = filter.channels.iter().map(|c| c.as_str()).collect();
        q = q.filter(
            contacts::id.eq_any(
                conversations::table
                    .filter(conversations::channel.eq_any(names))
                    .select(conversations::contact_id),
            ),
        );
    }
    if !filter.number_ids.is_empty() {
        q = q.filter(
            contacts::id.eq_any(
                conversations::table
                    .filter(conversations::number_id.eq_any(&filter.number_ids))
                    .select(conversations::contact_id),
            ),
        );
    }
    q = lead_criteria(q, filter);
    if let Some(from) = filter.created.from_ms {
        q = q.filter(contacts::created_at.ge(from));
    }
    if let Some(to) = filter.created.to_ms {
        q = q.filter(contacts::created_at.le(to));
    }
    // The latest message of any conversation lies in the range: one at or after
    // `from`, none after `to`.
    if let Some(from) = filter.last_message.from_ms {
        q = q.filter(
            contacts::id.eq_any(
                conversations::table
                    .filter(conversations::last_message_at.ge(from))
                    .select(conversations::contact_id),
            ),
        );
    }
    if let Some(to) = filter.last_message.to_ms {
        q = q
            .filter(
                contacts::id.eq_any(
                    conversations::table
                        .filter(conversations::last_message_at.is_not_null())
                        .select(conversations::contact_id),
                ),
            )
            .filter(not(contacts::id.eq_any(
                conversations::table
                    .filter(conversations::last_message_at.gt(to))
                    .select(conversations::contact_id),
            )));
    }
    if let Some(consent) = filter.consent {
        let accepts = consent.accepts();
        let stored: Vec<&str> = accepts
            .iter()
            .filter(|s| **s != ConsentState::Unknown)
            .map(|s| s.as_str())
            .collect();
        let with_row = contact_consent::table
            .filter(contact_consent::state.eq_any(stored))
            .select(contact_consent::contact_id);
        q = if accepts.contains(&ConsentState::Unknown) {
            // Unknown = no row: accept a row in an accepted state, or none at all.
            let rejected: Vec<&str> = [ConsentState::OptedIn, ConsentState::OptedOut]
                .into_iter()
                .filter(|s| !accepts.contains(s))
                .map(|s| s.as_str())
                .collect();
            q.filter(not(contacts::id.eq_any(
                contact_consent::table
                    .filter(contact_consent::state.eq_any(rejected))
                    .select(contact_consent::contact_id),
            )))
        } else {
            q.filter(contacts::id.eq_any(with_row))
        };
    }
    q
}

fn lead_criteria<'a>(
    mut q: contacts::BoxedQuery<'a, MultiBackend>,
    filter: &'a SegmentFilter,
) -> contacts::BoxedQuery<'a, MultiBackend> {
    let of_leads = || {
        lead_contacts::table
            .inner_join(leads::table.on(leads::id.eq(lead_contacts::lead_id)))
            .select(lead_contacts::contact_id)
    };
    if !filter.lead_stages.is_empty() {
        q = q.filter(
            contacts::id.eq_any(of_leads().filter(leads::stage.eq_any(&filter.lead_stages))),
        );
    }
    if !filter.lead_sources.is_empty() {
        q = q.filter(
            contacts::id.eq_any(of_leads().filter(leads::source.eq_any(&filter.lead_sources))),
        );
    }
    if !filter.campaign_codes.is_empty() {
        q = q.filter(
            contacts::id
                .eq_any(of_leads().filter(leads::campaign_code.eq_any(&filter.campaign_codes))),
        );
    }
    q
}

/// How many contacts match.
///
/// # Errors
/// Database errors.
pub fn count(c: &mut DbConn, filter: &SegmentFilter, scope: Scope<'_>) -> Result<i64, AppError> {
    Ok(matching(filter, scope).count().get_result(c)?)
}

/// One contact a broadcast would reach, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// The contact.
    pub contact_id: String,
    /// The conversation to send in: the contact's most recent one on the filter's
    /// channels/numbers (any, when the filter names none).
    pub conversation_id: String,
    /// Its channel.
    pub channel: String,
    /// Its WhatsApp number (`None` outside WhatsApp).
    pub number_id: Option<String>,
    /// Its team.
    pub team_id: String,
}

/// Every contact matching `filter` (hub-wide), once each, with the conversation to
/// reach it, ordered by contact id. The matching ids in one query, their
/// conversations in chunks of [`MEMBER_CHUNK`] ids (21 queries for 10,000 contacts;
/// diesel's `MultiBackend` cannot nest the boxed filter in another query); the
/// choice of conversation per contact is made in memory.
///
/// # Errors
/// Database errors.
pub fn members(c: &mut DbConn, filter: &SegmentFilter) -> Result<Vec<Member>, AppError> {
    type Row = (String, String, String, Option<String>, String, Option<i64>);
    let ids: Vec<String> = matching(filter, None).select(contacts::id).load(c)?;
    let mut rows: Vec<Row> = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(MEMBER_CHUNK) {
        rows.extend(
            conversations::table
                .filter(conversations::contact_id.eq_any(chunk))
                .select((
                    conversations::contact_id,
                    conversations::id,
                    conversations::channel,
                    conversations::number_id,
                    conversations::team_id,
                    conversations::last_message_at,
                ))
                .load::<Row>(c)?,
        );
    }
    // The conversation must itself be on the filter's channels/numbers (the SQL
    // only says the contact has one such conversation).
    let names: Vec<&str> = filter.channels.iter().map(|c| c.as_str()).collect();
    let rows = rows.into_iter().filter(|r| {
        (names.is_empty() || names.contains(&r.2.as_str()))
            && (filter.number_ids.is_empty()
                || r.3.as_ref().is_some_and(|n| filter.number_ids.contains(n)))
    });
    let mut best: HashMap<String, (Option<i64>, Member)> = HashMap::new();
    for (contact_id, conversation_id, channel, number_id, team_id, last) in rows {
        let better = best
            .get(&contact_id)
            .is_none_or(|(l, m)| (last, &conversation_id) > (*l, &m.conversation_id));
        if better {
            let m = Member {
                contact_id: contact_id.clone(),
                conversation_id,
                channel,
                number_id,
                team_id,
            };
            best.insert(contact_id, (last, m));
        }
    }
    let mut out: Vec<Member> = best.into_values().map(|(_, m)| m).collect();
    out.sort_by(|a, b| a.contact_id.cmp(&b.contact_id));
    Ok(out)
}

/// A saved segment as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentView {
    /// Segment id.
    pub id: String,
    /// Name.
    pub name: String,
    /// The filter.
    pub filter: SegmentFilter,
    /// Who created it.
    pub created_by: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

type SegmentRow = (String, String, String, Option<String>, i64, i64);

fn view_of(row: SegmentRow) -> Result<SegmentView, AppError> {
    let (id, name, filter, created_by, created_at, updated_at) = row;
    Ok(SegmentView {
        id,
        name,
        filter: serde_json::from_str(&filter).map_err(AppError::internal)?,
        created_by,
        created_at: rfc3339(created_at),
        updated_at: rfc3339(updated_at),
    })
}

fn columns() -> (
    segments::id,
    segments::name,
    segments::filter,
    segments::created_by,
    segments::created_at,
    segments::updated_at,
) {
    (
        segments::id,
        segments::name,
        segments::filter,
        segments::created_by,
        segments::created_at,
        segments::updated_at,
    )
}

/// Every segment, by name.
///
/// # Errors
/// Database errors.
pub fn all(c: &mut DbConn) -> Result<Vec<SegmentView>, AppError> {
    segments::table
        .select(columns())
        .order((segments::name.asc(), segments::id.asc()))
        .load::<SegmentRow>(c)?
        .into_iter()
        .map(view_of)
        .collect()
}

/// One segment.
///
/// # Errors
/// [`AppError::NotFound`].
pub fn get(c: &mut DbConn, id: &str) -> Result<SegmentView, AppError> {
    let row = segments::table
        .find(id)
        .select(columns())
        .first::<SegmentRow>(c)
        .optional()?
        .ok_or_else(|| AppError::NotFound("no such segment".into()))?;
    view_of(row)
}

/// Saves a new segment (name and filter already validated).
///
/// # Errors
/// Database errors.
pub fn create(
    c: &mut DbConn,
    name: &str,
    filter: &SegmentFilter,
    created_by: &str,
    now: i64,
) -> Result<SegmentView, AppError> {
    let id = new_id();
    let json = serde_json::to_string(filter).map_err(AppError::internal)?;
    diesel::insert_into(segments::table)
        .values((
            segments::id.eq(&id),
            segments::name.eq(name),
            segments::filter.eq(json),
            segments::created_by.eq(created_by),
            segments::created_at.eq(now),
            segments::updated_at.eq(now),
        ))
        .execute(c)?;
    get(c, &id)
}

/// Replaces a segment's name and filter; returns (before, after).
///
/// # Errors
/// [`AppError::NotFound`].
pub fn update(
    c: &mut DbConn,
    id: &str,
    name: &str,
    filter: &SegmentFilter,
    now: i64,
) -> Result<(SegmentView, SegmentView), AppError> {
    let before = get(c, id)?;
    let json = serde_json::to_string(filter).map_err(AppError::internal)?;
    diesel::update(segments::table.find(id))
        .set((
            segments::name.eq(name),
            segments::filter.eq(json),
            segments::updated_at.eq(now),
        ))
        .execute(c)?;
    Ok((before, get(c, id)?))
}

/// Deletes a segment; returns it.
///
/// # Errors
/// [`AppError::NotFound`].
pub fn delete(c: &mut DbConn, id: &str) -> Result<SegmentView, AppError> {
    let before = get(c, id)?;
    diesel::delete(segments::table.find(id)).execute(c)?;
    Ok(before)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contacts::segment::{Channel, TagFilter};
    use crate::db::{write_transaction, Db};
    use crate::store::conversations::{create_with_contact, NewGuestConversation};

    /// 10,000 contacts (every tenth tagged, every seventh with a second, WhatsApp
    /// conversation): `members` returns each matching contact once with the
    /// conversation the filter asks for, on both backends.
    fn members_of_ten_thousand(db: &Db) {
        let (team, _) = crate::testing::team_and_conversation(db, "seg");
        let mut c = db.conn().unwrap();
        let tag = crate::store::tags::create(&mut c, "VIP", 1).unwrap();
        let tagged: Vec<String> = write_transaction(&mut c, |c| {
            let mut tagged = Vec::new();
            for i in 0..10_000 {
                let conv = create_with_contact(
                    c,
                    NewGuestConversation {
                        team_id: team.clone(),
                        channel: "widget".into(),
                        ..Default::default()
                    },
                )?;
                if i % 7 == 0 {
                    diesel::insert_into(conversations::table)
                        .values((
                            conversations::id.eq(format!("wa-{i}")),
                            conversations::team_id.eq(&team),
                            conversations::contact_id.eq(&conv.contact.id),
                            conversations::channel.eq("whatsapp"),
                            conversations::status.eq("open"),
                            conversations::last_seq.eq(0_i64),
                            conversations::guest_read_seq.eq(0_i64),
                            conversations::agent_read_seq.eq(0_i64),
                            conversations::created_at.eq(1_i64),
                            conversations::updated_at.eq(1_i64),
                            conversations::number_id.eq("env-meta"),
                        ))
                        .execute(c)?;
                }
                if i % 10 == 0 {
                    tagged.push(conv.contact.id.clone());
                }
            }
            Ok::<_, AppError>(tagged)
        })
        .unwrap();
        crate::store::tags::add(&mut c, &tag.id, &tagged, 2).unwrap();

        let everyone = members(&mut c, &SegmentFilter::default()).unwrap();
        assert_eq!(
            everyone.len(),
            10_001,
            "each contact once (plus the fixture's)"
        );
        let vip = SegmentFilter {
            tags: TagFilter {
                any: vec![tag.id.clone()],
                ..TagFilter::default()
            },
            ..SegmentFilter::default()
        };
        let m = members(&mut c, &vip).unwrap();
        assert_eq!(m.len(), 1_000);
        assert_eq!(count(&mut c, &vip, None).unwrap(), 1_000);
        let wa_vip = SegmentFilter {
            channels: vec![Channel::Whatsapp],
            ..vip
        };
        let m = members(&mut c, &wa_vip).unwrap();
        // Tagged: i % 10 == 0; WhatsApp: i % 7 == 0; both: i % 70 == 0.
        assert_eq!(m.len(), 143);
        assert!(m
            .iter()
            .all(|m| m.channel == "whatsapp" && m.number_id.as_deref() == Some("env-meta")));
    }

    #[test]
    fn members_of_ten_thousand_contacts_on_sqlite() {
        let (_scratch, db) = crate::testing::sqlite();
        members_of_ten_thousand(&db);
    }

    #[test]
    fn members_of_ten_thousand_contacts_on_postgres() {
        if let Some((_scratch, db)) = crate::testing::postgres() {
            members_of_ten_thousand(&db);
        }
    }
}
