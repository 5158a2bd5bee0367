//! The knowledge base: documents (FAQ entries, packages, free text, uploaded
//! Markdown) per team, chunked, indexed for BM25 (tantivy) and, when an embedding
//! endpoint is configured, embedded; hybrid retrieval over both. Owns the
//! `knowledge_docs` and `knowledge_chunks` tables.
//!
//! STUB: the interface the bot uses; the implementation lands with the knowledge
//! work (issue 6).

use serde::Serialize;
use serde_json::Value;

use crate::db::Db;
use crate::error::AppError;

use super::llm::Llm;

/// One retrieved passage.
#[derive(Clone, Debug, Serialize)]
pub struct Hit {
    /// The document's id.
    pub doc_id: String,
    /// `faq`, `package`, `text` or `markdown`.
    pub kind: String,
    /// The document's citation code (FAQ number, package code, slug).
    pub ref_code: String,
    /// How answers cite it: `FAQ #12`, `Package #UMR_MAR_2025_HEMAT`, `Doc #refund-policy`.
    pub label: String,
    /// The document's title (an FAQ entry's question).
    pub title: String,
    /// The retrieved chunk's text.
    pub text: String,
    /// What a retrieval-only reply sends for this hit: an FAQ entry's answer, a
    /// package's summary, a text chunk.
    pub answer: String,
    /// A package's structured fields (price, departure, image_url…), else `None`.
    pub fields: Option<Value>,
    /// How well the hit matches, 0–1 (see `docs/bot.md`, "Knowledge").
    pub confidence: f32,
}

/// Retrieval over every team's documents.
#[derive(Clone, Debug)]
pub struct KnowledgeBase {
    #[allow(dead_code)]
    db: Db,
    #[allow(dead_code)]
    llm: Option<Llm>,
}

impl KnowledgeBase {
    /// A knowledge base over `db`, embedding with `llm` when given.
    pub fn new(db: Db, llm: Option<Llm>) -> Self {
        Self { db, llm }
    }

    /// The `k` best passages for `query` among `team_id`'s documents, best first, at
    /// most one per document.
    ///
    /// # Errors
    /// [`AppError::Unavailable`] when the database cannot be read.
    pub async fn search(&self, team_id: &str, query: &str, k: usize) -> Result<Vec<Hit>, AppError> {
        let _ = (team_id, query, k);
        Ok(Vec::new())
    }
}
