//! Knowledge documents and their chunks (`knowledge_docs`, `knowledge_chunks`):
//! validation, citation codes, create/update/delete with re-chunking in the same
//! transaction, the change fingerprint the retrieval index watches, and the
//! embedding bookkeeping. Synchronous, like every store module.

use diesel::dsl::{count_star, max, sum};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;

use crate::bot::knowledge::chunk;
use crate::clock::{now_ms, rfc3339};
use crate::db::schema::{knowledge_chunks, knowledge_docs};
use crate::db::{is_unique_violation, write_transaction, DbConn};
use crate::error::AppError;
use crate::model::new_id;

/// Document kinds.
pub const KINDS: [&str; 4] = ["faq", "package", "text", "markdown"];
/// Largest document body, bytes (UTF-8).
pub const MAX_BODY_BYTES: usize = 100 * 1024;
/// Longest title, characters.
pub const MAX_TITLE_CHARS: usize = 300;
/// Largest package `fields` object, bytes of JSON.
pub const MAX_FIELDS_BYTES: usize = 16 * 1024;
/// Longest citation code, characters.
pub const MAX_REF_CHARS: usize = 64;
/// Most documents per team: bounds the in-memory index of a team.
pub const MAX_DOCS_PER_TEAM: i64 = 5000;
/// Characters of the body shown in list rows.
pub const PREVIEW_CHARS: usize = 200;

/// A row of `knowledge_docs`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = knowledge_docs)]
pub struct DocRow {
    /// Document id.
    pub id: String,
    /// Owning team.
    pub team_id: String,
    /// `faq`, `package`, `text` or `markdown`.
    pub kind: String,
    /// Citation code, unique per team and kind.
    pub ref_code: String,
    /// Title (an FAQ entry's question, a package's name).
    pub title: String,
    /// Body (an FAQ entry's answer, a package's description, the text).
    pub body: String,
    /// A package's structured fields, JSON object text.
    pub fields: Option<String>,
    /// 1 on create, +1 per update.
    pub revision: i32,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub updated_at: i64,
    /// Agent who last changed it.
    pub updated_by: Option<String>,
}

/// A row of `knowledge_chunks`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = knowledge_chunks)]
pub struct ChunkRow {
    /// Chunk id (new on every re-chunk).
    pub id: String,
    /// Its document.
    pub doc_id: String,
    /// The document's team.
    pub team_id: String,
    /// Position in the document, from 0.
    pub ordinal: i32,
    /// The text indexed and embedded.
    pub text: String,
    /// Little-endian f32 vector, `None` until embedded.
    pub embedding: Option<Vec<u8>>,
    /// The model that made `embedding`.
    pub embedding_model: Option<String>,
}

impl DocRow {
    /// The parsed `fields` (`None` when absent or, defensively, unparsable).
    pub fn fields_json(&self) -> Option<Value> {
        self.fields
            .as_deref()
            .and_then(|f| serde_json::from_str(f).ok())
    }

    /// How answers cite it: `FAQ #12`, `Package #UMR_MAR_2025_HEMAT`, `Doc #refund-policy`.
    pub fn label(&self) -> String {
        label(&self.kind, &self.ref_code)
    }
}

/// The citation label of a document of `kind` with `ref_code`.
pub fn label(kind: &str, ref_code: &str) -> String {
    match kind {
        "faq" => format!("FAQ #{ref_code}"),
        "package" => format!("Package #{ref_code}"),
        _ => format!("Doc #{ref_code}"),
    }
}

/// A document as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DocView {
    /// Document id.
    pub id: String,
    /// Team.
    pub team_id: String,
    /// Kind.
    pub kind: String,
    /// Citation code.
    pub ref_code: String,
    /// Citation label (`FAQ #3`).
    pub label: String,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Package fields.
    pub fields: Option<Value>,
    /// Revision.
    pub revision: i32,
    /// Number of chunks.
    pub chunks: i64,
    /// Chunks with an embedding (of any model).
    pub embedded_chunks: i64,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// Agent id.
    pub updated_by: Option<String>,
}

/// A list row: the document without its body (a preview instead).
#[derive(Debug, Clone, Serialize)]
pub struct DocSummary {
    /// Document id.
    pub id: String,
    /// Team.
    pub team_id: String,
    /// Kind.
    pub kind: String,
    /// Citation code.
    pub ref_code: String,
    /// Citation label.
    pub label: String,
    /// Title.
    pub title: String,
    /// The body's first [`PREVIEW_CHARS`] characters.
    pub preview: String,
    /// Body length, characters.
    pub body_chars: usize,
    /// Package fields.
    pub fields: Option<Value>,
    /// Revision.
    pub revision: i32,
    /// RFC 3339.
    pub updated_at: String,
}

/// What a create carries.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct NewDoc {
    /// `faq`, `package`, `text` or `markdown`.
    pub kind: Option<String>,
    /// Citation code: FAQ entries get the next number when absent; packages need
    /// their code; text and Markdown get a slug of the title when absent.
    pub ref_code: Option<String>,
    /// Title (required).
    pub title: Option<String>,
    /// Body (required for FAQ entries and text).
    #[serde(default)]
    pub body: String,
    /// A package's fields: a JSON object.
    pub fields: Option<Value>,
}

/// What an update may change; absent fields stay as they are.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct DocUpdate {
    /// New citation code.
    pub ref_code: Option<String>,
    /// New title.
    pub title: Option<String>,
    /// New body.
    pub body: Option<String>,
    /// New fields (an object; `{}` clears them).
    pub fields: Option<Value>,
}

/// Checks a kind.
///
/// # Errors
/// [`AppError::Validation`] for anything but the four kinds.
pub fn validate_kind(kind: &str) -> Result<(), AppError> {
    if KINDS.contains(&kind) {
        Ok(())
    } else {
        Err(AppError::Validation(
            "The kind of document can be faq, package, text or markdown.".into(),
        ))
    }
}

fn validate_title(title: &str) -> Result<String, AppError> {
    let t = title.trim();
    if t.is_empty() {
        return Err(AppError::Validation("The title is empty.".into()));
    }
    if t.chars().count() > MAX_TITLE_CHARS {
        return Err(AppError::Validation(format!(
            "The title can be at most {MAX_TITLE_CHARS} characters."
        )));
    }
    Ok(t.to_string())
}

fn validate_body(kind: &str, body: &str) -> Result<String, AppError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(AppError::Validation(format!(
            "The text can be at most {} KB.",
            MAX_BODY_BYTES / 1024
        )));
    }
    let b = body.trim();
    if b.is_empty() && matches!(kind, "faq" | "text" | "markdown") {
        let what = if kind == "faq" {
            "A question needs its answer."
        } else {
            "The text is empty."
        };
        return Err(AppError::Validation(what.into()));
    }
    Ok(b.to_string())
}

fn validate_ref(code: &str) -> Result<String, AppError> {
    let c = code.trim();
    let ok = !c.is_empty()
        && c.chars().count() <= MAX_REF_CHARS
        && c.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.'));
    if ok {
        Ok(c.to_string())
    } else {
        Err(AppError::Validation(format!(
            "The code (ref_code) can have up to {MAX_REF_CHARS} letters, digits, _, - and ."
        )))
    }
}

fn validate_fields(kind: &str, fields: Option<Value>) -> Result<Option<String>, AppError> {
    match fields {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) if kind == "package" => {
            if map.is_empty() {
                return Ok(None);
            }
            let text = serde_json::to_string(&map).map_err(AppError::internal)?;
            if text.len() > MAX_FIELDS_BYTES {
                return Err(AppError::Validation(format!(
                    "The package details can be at most {} KB.",
                    MAX_FIELDS_BYTES / 1024
                )));
            }
            Ok(Some(text))
        }
        Some(Value::Object(map)) if map.is_empty() => Ok(None),
        Some(Value::Object(_)) => Err(AppError::Validation(
            "Only packages have details (fields).".into(),
        )),
        Some(_) => Err(AppError::Validation(
            "The package details (fields) must be a JSON object.".into(),
        )),
    }
}

/// The next free FAQ number of a team: one past the highest numeric code.
fn next_faq_number(c: &mut DbConn, team_id: &str) -> Result<String, AppError> {
    let codes: Vec<String> = knowledge_docs::table
        .filter(knowledge_docs::team_id.eq(team_id))
        .filter(knowledge_docs::kind.eq("faq"))
        .select(knowledge_docs::ref_code)
        .load(c)?;
    let top = codes
        .iter()
        .filter_map(|r| r.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    Ok((top + 1).to_string())
}

/// A slug of `title` not yet used by the team's documents of `kind` (`-2`, `-3`… appended).
fn free_slug(c: &mut DbConn, team_id: &str, kind: &str, title: &str) -> Result<String, AppError> {
    let base = chunk::slug(title);
    let taken: Vec<String> = knowledge_docs::table
        .filter(knowledge_docs::team_id.eq(team_id))
        .filter(knowledge_docs::kind.eq(kind))
        .filter(knowledge_docs::ref_code.like(format!("{base}%")))
        .select(knowledge_docs::ref_code)
        .load(c)?;
    if !taken.contains(&base) {
        return Ok(base);
    }
    let mut n = 2;
    loop {
        let candidate = format!("{base}-{n}");
        if !taken.contains(&candidate) {
            return Ok(candidate);
        }
        n += 1;
    }
}

/// Replaces a document's chunks with fresh ones (embeddings empty: the knowledge
/// base fills them outside the transaction).
fn rechunk(c: &mut DbConn, doc: &DocRow) -> Result<(), AppError> {
    diesel::delete(knowledge_chunks::table.filter(knowledge_chunks::doc_id.eq(&doc.id)))
        .execute(c)?;
    let fields = doc.fields_json();
    let rows: Vec<ChunkRow> = chunk::chunks(
        &doc.kind,
        &doc.ref_code,
        &doc.title,
        &doc.body,
        fields.as_ref(),
    )
    .into_iter()
    .enumerate()
    .map(|(i, text)| ChunkRow {
        id: new_id(),
        doc_id: doc.id.clone(),
        team_id: doc.team_id.clone(),
        ordinal: i32::try_from(i).unwrap_or(i32::MAX),
        text,
        embedding: None,
        embedding_model: None,
    })
    .collect();
    // One statement per row: diesel's MultiBackend has no batch insert.
    for row in rows {
        diesel::insert_into(knowledge_chunks::table)
            .values(&row)
            .execute(c)?;
    }
    Ok(())
}

fn conflict_on_duplicate<'a>(
    kind: &'a str,
    code: &'a str,
) -> impl Fn(diesel::result::Error) -> AppError + 'a {
    move |e| {
        if is_unique_violation(&e) {
            AppError::Conflict(format!("{} is already taken", label(kind, code)))
        } else {
            e.into()
        }
    }
}

/// Creates a document and its chunks.
///
/// # Errors
/// [`AppError::Validation`] for a bad kind, title, body, code or fields (see the
/// limits above); [`AppError::Conflict`] when the code is taken; database errors.
pub fn create(c: &mut DbConn, team_id: &str, new: NewDoc, by: &str) -> Result<DocRow, AppError> {
    let kind = new
        .kind
        .as_deref()
        .map(str::trim)
        .ok_or_else(|| {
            AppError::Validation(
                "Choose the kind of document: faq, package, text or markdown.".into(),
            )
        })?
        .to_string();
    validate_kind(&kind)?;
    let title = validate_title(new.title.as_deref().unwrap_or_default())?;
    let body = validate_body(&kind, &new.body)?;
    let fields = validate_fields(&kind, new.fields)?;
    let given = new
        .ref_code
        .as_deref()
        .filter(|r| !r.trim().is_empty())
        .map(validate_ref)
        .transpose()?;
    if kind == "package" && given.is_none() {
        return Err(AppError::Validation(
            "A package needs its code (ref_code), e.g. UMR_MAR_2025_HEMAT.".into(),
        ));
    }
    let now = now_ms();
    write_transaction(c, |c| {
        let docs: i64 = knowledge_docs::table
            .filter(knowledge_docs::team_id.eq(team_id))
            .count()
            .get_result(c)?;
        if docs >= MAX_DOCS_PER_TEAM {
            return Err(AppError::Validation(format!(
                "A team can have at most {MAX_DOCS_PER_TEAM} knowledge documents."
            )));
        }
        let ref_code = match &given {
            Some(r) => r.clone(),
            None if kind == "faq" => next_faq_number(c, team_id)?,
            None => free_slug(c, team_id, &kind, &title)?,
        };
        let row = DocRow {
            id: new_id(),
            team_id: team_id.to_string(),
            kind: kind.clone(),
            ref_code: ref_code.clone(),
            title: title.clone(),
            body: body.clone(),
            fields: fields.clone(),
            revision: 1,
            created_at: now,
            updated_at: now,
            updated_by: Some(by.to_string()),
        };
        diesel::insert_into(knowledge_docs::table)
            .values(&row)
            .execute(c)
            .map_err(conflict_on_duplicate(&kind, &ref_code))?;
        rechunk(c, &row)?;
        Ok(row)
    })
}

/// Changes a document (revision + 1) and re-chunks it.
///
/// # Errors
/// [`AppError::NotFound`]; as [`create`] for the new values.
pub fn update(c: &mut DbConn, id: &str, upd: DocUpdate, by: &str) -> Result<DocRow, AppError> {
    write_transaction(c, |c| {
        let mut row = get(c, id)?;
        if let Some(t) = &upd.title {
            row.title = validate_title(t)?;
        }
        if let Some(b) = &upd.body {
            row.body = validate_body(&row.kind, b)?;
        }
        if let Some(f) = upd.fields.clone() {
            row.fields = validate_fields(&row.kind, Some(f))?;
        }
        if let Some(r) = &upd.ref_code {
            row.ref_code = validate_ref(r)?;
        }
        row.revision += 1;
        // Strictly increasing even within one millisecond, so the index fingerprint
        // (which includes the newest updated_at) always moves.
        row.updated_at = now_ms().max(row.updated_at + 1);
        row.updated_by = Some(by.to_string());
        diesel::update(knowledge_docs::table.find(id))
            .set((
                knowledge_docs::ref_code.eq(&row.ref_code),
                knowledge_docs::title.eq(&row.title),
                knowledge_docs::body.eq(&row.body),
                knowledge_docs::fields.eq(&row.fields),
                knowledge_docs::revision.eq(row.revision),
                knowledge_docs::updated_at.eq(row.updated_at),
                knowledge_docs::updated_by.eq(&row.updated_by),
            ))
            .execute(c)
            .map_err(conflict_on_duplicate(&row.kind, &row.ref_code))?;
        rechunk(c, &row)?;
        Ok(row)
    })
}

/// Deletes a document (its chunks go with it).
///
/// # Errors
/// [`AppError::NotFound`]; database errors.
pub fn delete(c: &mut DbConn, id: &str) -> Result<(), AppError> {
    write_transaction(c, |c| {
        // Explicitly, not only by the foreign key's cascade: SQLite enforces it only
        // with `foreign_keys = ON`, which a hand-opened connection may lack.
        diesel::delete(knowledge_chunks::table.filter(knowledge_chunks::doc_id.eq(id)))
            .execute(c)?;
        let n = diesel::delete(knowledge_docs::table.find(id)).execute(c)?;
        if n == 0 {
            return Err(AppError::NotFound("no such knowledge document".into()));
        }
        Ok(())
    })
}

/// One document.
///
/// # Errors
/// [`AppError::NotFound`]; database errors.
pub fn get(c: &mut DbConn, id: &str) -> Result<DocRow, AppError> {
    knowledge_docs::table
        .find(id)
        .select(DocRow::as_select())
        .first(c)
        .optional()?
        .ok_or_else(|| AppError::NotFound("no such knowledge document".into()))
}

/// The API view of a document, with its chunk counts.
///
/// # Errors
/// Database errors.
pub fn view(c: &mut DbConn, row: DocRow) -> Result<DocView, AppError> {
    let chunks: i64 = knowledge_chunks::table
        .filter(knowledge_chunks::doc_id.eq(&row.id))
        .count()
        .get_result(c)?;
    let embedded: i64 = knowledge_chunks::table
        .filter(knowledge_chunks::doc_id.eq(&row.id))
        .filter(knowledge_chunks::embedding.is_not_null())
        .count()
        .get_result(c)?;
    Ok(DocView {
        label: row.label(),
        fields: row.fields_json(),
        id: row.id,
        team_id: row.team_id,
        kind: row.kind,
        ref_code: row.ref_code,
        title: row.title,
        body: row.body,
        revision: row.revision,
        chunks,
        embedded_chunks: embedded,
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
        updated_by: row.updated_by,
    })
}

/// A team's documents, optionally of one kind, by kind then code.
///
/// # Errors
/// [`AppError::Validation`] for an unknown kind; database errors.
pub fn list(
    c: &mut DbConn,
    team_id: &str,
    kind: Option<&str>,
) -> Result<Vec<DocSummary>, AppError> {
    let mut q = knowledge_docs::table
        .filter(knowledge_docs::team_id.eq(team_id))
        .select(DocRow::as_select())
        .into_boxed();
    if let Some(k) = kind {
        validate_kind(k)?;
        q = q.filter(knowledge_docs::kind.eq(k.to_string()));
    }
    let mut rows: Vec<DocRow> = q.load(c)?;
    // FAQ numbers sort numerically, the rest by code.
    rows.sort_by(|a, b| {
        (
            a.kind.as_str(),
            a.ref_code.parse::<u64>().ok(),
            a.ref_code.as_str(),
        )
            .cmp(&(
                b.kind.as_str(),
                b.ref_code.parse::<u64>().ok(),
                b.ref_code.as_str(),
            ))
    });
    Ok(rows
        .into_iter()
        .map(|r| DocSummary {
            label: r.label(),
            fields: r.fields_json(),
            preview: r.body.chars().take(PREVIEW_CHARS).collect(),
            body_chars: r.body.chars().count(),
            id: r.id,
            team_id: r.team_id,
            kind: r.kind,
            ref_code: r.ref_code,
            title: r.title,
            revision: r.revision,
            updated_at: rfc3339(r.updated_at),
        })
        .collect())
}

/// What the retrieval index of a team was built from, cheaply: document count,
/// newest `updated_at`, sum of revisions, and the number of chunks embedded with
/// `model`. Any create, update, delete or embedding fill — on any node — changes it.
///
/// # Errors
/// Database errors.
pub fn fingerprint(
    c: &mut DbConn,
    team_id: &str,
    model: Option<&str>,
) -> Result<[i64; 4], AppError> {
    let (n, newest, revisions): (i64, Option<i64>, Option<i64>) = knowledge_docs::table
        .filter(knowledge_docs::team_id.eq(team_id))
        .select((
            count_star(),
            max(knowledge_docs::updated_at),
            sum(knowledge_docs::revision),
        ))
        .first(c)?;
    let embedded: i64 = match model {
        Some(m) => knowledge_chunks::table
            .filter(knowledge_chunks::team_id.eq(team_id))
            .filter(knowledge_chunks::embedding_model.eq(m))
            .filter(knowledge_chunks::embedding.is_not_null())
            .count()
            .get_result(c)?,
        None => 0,
    };
    Ok([n, newest.unwrap_or(0), revisions.unwrap_or(0), embedded])
}

/// Everything the index of a team is built from: its documents and their chunks
/// (ordered by document and ordinal).
///
/// # Errors
/// Database errors.
pub fn load_team(c: &mut DbConn, team_id: &str) -> Result<(Vec<DocRow>, Vec<ChunkRow>), AppError> {
    let docs = knowledge_docs::table
        .filter(knowledge_docs::team_id.eq(team_id))
        .select(DocRow::as_select())
        .load(c)?;
    let chunks = knowledge_chunks::table
        .filter(knowledge_chunks::team_id.eq(team_id))
        .order((knowledge_chunks::doc_id, knowledge_chunks::ordinal))
        .select(ChunkRow::as_select())
        .load(c)?;
    Ok((docs, chunks))
}

/// Up to `limit` chunks (id, text) of a team — or of one document — that have no
/// embedding from `model` yet.
///
/// # Errors
/// Database errors.
pub fn unembedded(
    c: &mut DbConn,
    team_id: &str,
    doc_id: Option<&str>,
    model: &str,
    limit: i64,
) -> Result<Vec<(String, String)>, AppError> {
    let mut q = knowledge_chunks::table
        .filter(knowledge_chunks::team_id.eq(team_id))
        .filter(
            knowledge_chunks::embedding
                .is_null()
                .or(knowledge_chunks::embedding_model.is_null())
                .or(knowledge_chunks::embedding_model.ne(model)),
        )
        .select((knowledge_chunks::id, knowledge_chunks::text))
        .order((knowledge_chunks::doc_id, knowledge_chunks::ordinal))
        .limit(limit)
        .into_boxed();
    if let Some(d) = doc_id {
        q = q.filter(knowledge_chunks::doc_id.eq(d.to_string()));
    }
    Ok(q.load(c)?)
}

/// Stores chunk embeddings (packed f32) made by `model`. Chunks replaced meanwhile
/// (the document changed) are simply not found.
///
/// # Errors
/// Database errors.
pub fn set_embeddings(
    c: &mut DbConn,
    model: &str,
    vectors: &[(String, Vec<u8>)],
) -> Result<(), AppError> {
    c.transaction::<_, AppError, _>(|c| {
        for (id, bytes) in vectors {
            diesel::update(knowledge_chunks::table.find(id))
                .set((
                    knowledge_chunks::embedding.eq(Some(bytes)),
                    knowledge_chunks::embedding_model.eq(Some(model)),
                ))
                .execute(c)?;
        }
        Ok(())
    })
}
