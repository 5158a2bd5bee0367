//! The knowledge base: documents (FAQ entries, packages, free text, uploaded
//! Markdown) per team, chunked, indexed for BM25 (tantivy) and, when an embedding
//! endpoint is configured, embedded; hybrid retrieval over both (`docs/bot.md`,
//! "Knowledge"). The rows live in [`crate::store::knowledge`]; this module owns the
//! per-team in-memory indexes, their freshness, the embeddings and the ranking.
//!
//! - [`chunk`]: how documents become chunks.
//! - [`index`]: one team's tantivy index and the lexical confidence.

pub mod chunk;
pub mod index;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;
use serde_json::Value;

use crate::db::Db;
use crate::error::AppError;
use crate::store::knowledge as store;

use self::index::TeamIndex;
use super::llm::{cosine, pack, Llm, LlmError};

/// Chunks taken from each side (BM25, embeddings) before fusing.
const CANDIDATES: usize = 20;

/// Reciprocal rank fusion's constant: a document's fused score is the sum over the
/// two rankings of `1 / (RRF_K + rank)` (Cormack et al., 2009: 60 works across
/// collections without tuning).
const RRF_K: f32 = 60.0;

/// Most chunks embedded along with a query (chunks whose embedding is missing
/// because the endpoint failed at write time): bounds the request so the query
/// still fits the time budget.
const FILL_PER_QUERY: usize = 32;

/// Longest text embedded, characters (see [`embedding_input`]).
const EMBED_CHARS: usize = 6000;

/// Most chunks embedded in one request at write time.
const EMBED_BATCH: i64 = 64;

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
    /// The lexical part of the confidence: share of the query's content terms the
    /// passage contains, discounted for short queries (0–1).
    pub coverage: f32,
    /// Cosine similarity of query and passage embeddings, when both exist.
    pub similarity: Option<f32>,
}

/// How a search was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// BM25 only: no embedding endpoint, or it failed for this query.
    Lexical,
    /// BM25 and embeddings, fused.
    Hybrid,
}

/// A search's hits and how they were found.
#[derive(Clone, Debug, Serialize)]
pub struct SearchResult {
    /// Best first, at most one per document.
    pub hits: Vec<Hit>,
    /// Whether embeddings took part.
    pub mode: Mode,
}

/// Retrieval over every team's documents. Cheap to clone (shared cache).
#[derive(Clone)]
pub struct KnowledgeBase {
    db: Db,
    llm: Option<Llm>,
    /// The last index built per team; replaced when the team's fingerprint moves.
    cache: Arc<Mutex<HashMap<String, Arc<TeamIndex>>>>,
}

impl std::fmt::Debug for KnowledgeBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnowledgeBase")
            .field("embeddings", &self.embedding_model())
            .field("teams_indexed", &self.cache.lock().len())
            .finish_non_exhaustive()
    }
}

impl KnowledgeBase {
    /// A knowledge base over `db`, embedding with `llm` when given.
    pub fn new(db: Db, llm: Option<Llm>) -> Self {
        Self {
            db,
            llm,
            cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The embedding model in use, when embeddings are on.
    pub fn embedding_model(&self) -> Option<&str> {
        self.llm.as_ref().and_then(Llm::embedding_model)
    }

    /// The `k` best passages for `query` among `team_id`'s documents, best first, at
    /// most one per document.
    ///
    /// # Errors
    /// [`AppError::Unavailable`] when the database cannot be read.
    pub async fn search(&self, team_id: &str, query: &str, k: usize) -> Result<Vec<Hit>, AppError> {
        Ok(self.search_detailed(team_id, query, k).await?.hits)
    }

    /// As [`KnowledgeBase::search`], also saying whether embeddings took part.
    ///
    /// Never fails because of the embedding endpoint: when it fails or is too slow
    /// the search is lexical only.
    ///
    /// # Errors
    /// [`AppError::Unavailable`] when the database cannot be read.
    pub async fn search_detailed(
        &self,
        team_id: &str,
        query: &str,
        k: usize,
    ) -> Result<SearchResult, AppError> {
        let idx = self.team_index(team_id).await?;
        let query_terms = idx.query_terms(query);
        if k == 0 || idx.chunks.is_empty() || query.trim().is_empty() {
            return Ok(SearchResult {
                hits: Vec::new(),
                mode: Mode::Lexical,
            });
        }
        let (query_vec, filled) = self.embed_query(team_id, &idx, query).await;
        let lexical = {
            let idx = idx.clone();
            let terms = query_terms.clone();
            tokio::task::spawn_blocking(move || idx.lexical(&terms, CANDIDATES))
                .await
                .map_err(|e| AppError::internal(format!("knowledge search task failed: {e}")))??
        };
        let vector: Vec<(usize, f32)> = match &query_vec {
            Some(q) => {
                let mut scored: Vec<(usize, f32)> = idx
                    .chunks
                    .iter()
                    .enumerate()
                    .filter_map(|(i, c)| {
                        let e = filled.get(&i).or(c.embedding.as_ref())?;
                        Some((i, cosine(q, e)))
                    })
                    .collect();
                scored.sort_by(|a, b| b.1.total_cmp(&a.1));
                scored.truncate(CANDIDATES);
                scored
            }
            None => Vec::new(),
        };
        let mode = if query_vec.is_some() {
            Mode::Hybrid
        } else {
            Mode::Lexical
        };
        let ranked = fuse(&idx, &lexical, &vector);
        let hits = ranked
            .into_iter()
            .take(k)
            .map(|ord| {
                let chunk = &idx.chunks[ord];
                let coverage = idx.coverage(&query_terms, ord);
                let similarity = match &query_vec {
                    Some(q) => filled
                        .get(&ord)
                        .or(chunk.embedding.as_ref())
                        .map(|e| cosine(q, e)),
                    None => None,
                };
                hit(&idx, ord, coverage, similarity)
            })
            .collect();
        Ok(SearchResult { hits, mode })
    }

    /// The team's index, rebuilt when the team's documents (or embeddings) changed
    /// since it was built — on this node or any other, as the fingerprint comes from
    /// the database.
    async fn team_index(&self, team_id: &str) -> Result<Arc<TeamIndex>, AppError> {
        let model = self.embedding_model().map(str::to_string);
        let team = team_id.to_string();
        let m = model.clone();
        let fp = self
            .db
            .run(move |c| store::fingerprint(c, &team, m.as_deref()))
            .await?;
        if let Some(idx) = self.cache.lock().get(team_id) {
            if idx.fingerprint == fp {
                return Ok(idx.clone());
            }
        }
        let team = team_id.to_string();
        let (docs, chunks, fp) = self
            .db
            .run(move |c| {
                // The fingerprint is read again with the rows, in one transaction,
                // so the index is labelled with exactly what it was built from.
                diesel::Connection::transaction::<_, AppError, _>(c, |c| {
                    let fp = store::fingerprint(c, &team, model.as_deref())?;
                    let (docs, chunks) = store::load_team(c, &team)?;
                    Ok((docs, chunks, fp))
                })
            })
            .await?;
        let model = self.embedding_model().map(str::to_string);
        let idx = tokio::task::spawn_blocking(move || {
            TeamIndex::build(fp, docs, chunks, model.as_deref())
        })
        .await
        .map_err(|e| AppError::internal(format!("knowledge index task failed: {e}")))??;
        let idx = Arc::new(idx);
        tracing::debug!(
            team = team_id,
            docs = idx.docs.len(),
            chunks = idx.chunks.len(),
            "knowledge index built"
        );
        self.cache.lock().insert(team_id.to_string(), idx.clone());
        Ok(idx)
    }

    /// Embeds the query — together with up to [`FILL_PER_QUERY`] chunks still
    /// missing an embedding, which are stored — in one request within the budget.
    /// `None` (lexical only) when embeddings are off or the endpoint fails.
    async fn embed_query(
        &self,
        team_id: &str,
        idx: &TeamIndex,
        query: &str,
    ) -> (Option<Vec<f32>>, HashMap<usize, Vec<f32>>) {
        let (Some(llm), Some(model)) = (&self.llm, self.embedding_model()) else {
            return (None, HashMap::new());
        };
        let missing: Vec<usize> = idx
            .chunks
            .iter()
            .enumerate()
            .filter(|(_, c)| c.embedding.is_none())
            .map(|(i, _)| i)
            .take(FILL_PER_QUERY)
            .collect();
        let mut texts = vec![embedding_input(query)];
        texts.extend(
            missing
                .iter()
                .map(|&i| embedding_input(&idx.chunks[i].text)),
        );
        let mut vectors = match llm.embed(&texts).await {
            Ok(v) => v.into_iter(),
            // The endpoint answered with an error (not a timeout) while chunks rode
            // along: one of them may be what it rejects, so ask for the query alone
            // rather than losing the vector side for every search of the team.
            Err(LlmError::Endpoint(_) | LlmError::Empty) if !missing.is_empty() => {
                match llm.embed(&texts[..1]).await {
                    Ok(v) => {
                        return (v.into_iter().next(), HashMap::new());
                    }
                    Err(e) => {
                        tracing::warn!(team = team_id, error = %e, code = e.code(), "query embedding failed; lexical retrieval only");
                        return (None, HashMap::new());
                    }
                }
            }
            Err(e) => {
                tracing::warn!(team = team_id, error = %e, code = e.code(), "query embedding failed; lexical retrieval only");
                return (None, HashMap::new());
            }
        };
        let query_vec = vectors.next();
        let filled: HashMap<usize, Vec<f32>> = missing.into_iter().zip(vectors).collect();
        if !filled.is_empty() {
            let rows: Vec<(String, Vec<u8>)> = filled
                .iter()
                .map(|(&i, v)| (idx.chunks[i].id.clone(), pack(v)))
                .collect();
            let model = model.to_string();
            if let Err(e) = self
                .db
                .run(move |c| store::set_embeddings(c, &model, &rows))
                .await
            {
                tracing::warn!(team = team_id, error = %e, "storing filled embeddings failed");
            }
        }
        (query_vec, filled)
    }

    /// Embeds the chunks of document `doc_id` (after a create or update; outside the
    /// write transaction). When embeddings are off this does nothing; when the
    /// endpoint fails the chunks stay without embedding and later searches fill them.
    /// Returns how many chunks were embedded.
    pub async fn embed_document(&self, team_id: &str, doc_id: &str) -> usize {
        let (Some(llm), Some(model)) = (&self.llm, self.embedding_model()) else {
            return 0;
        };
        let mut done = 0;
        // Batches until every chunk is embedded; a large Markdown document has
        // more chunks than one request should carry. Stops at the first failure.
        loop {
            let (team, doc, m) = (team_id.to_string(), doc_id.to_string(), model.to_string());
            let pending = match self
                .db
                .run(move |c| store::unembedded(c, &team, Some(&doc), &m, EMBED_BATCH))
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(doc = doc_id, error = %e, "cannot read chunks to embed");
                    return done;
                }
            };
            if pending.is_empty() {
                return done;
            }
            let texts: Vec<String> = pending.iter().map(|(_, t)| embedding_input(t)).collect();
            let vectors = match llm.embed(&texts).await {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(doc = doc_id, error = %e, code = e.code(), "embedding failed; the document is searchable lexically and is embedded later");
                    return done;
                }
            };
            let rows: Vec<(String, Vec<u8>)> = pending
                .into_iter()
                .zip(vectors)
                .map(|((id, _), v)| (id, pack(&v)))
                .collect();
            let n = rows.len();
            let model = model.to_string();
            if let Err(e) = self
                .db
                .run(move |c| store::set_embeddings(c, &model, &rows))
                .await
            {
                tracing::warn!(doc = doc_id, error = %e, "storing embeddings failed");
                return done;
            }
            done += n;
            if n < usize::try_from(EMBED_BATCH).unwrap_or(usize::MAX) {
                return done;
            }
        }
    }
}

/// The text sent to the embedding endpoint for a chunk or query: at most
/// [`EMBED_CHARS`] characters, so that a single long FAQ answer or package (one
/// chunk each) stays within embedding models' input limits (8k tokens for
/// OpenAI's).
fn embedding_input(text: &str) -> String {
    text.chars().take(EMBED_CHARS).collect()
}

/// Orders documents by reciprocal rank fusion of the two chunk rankings (each
/// reduced to its best chunk per document first) and returns, per document, the
/// chunk to show: its best BM25 chunk, else its best embedding chunk. With only one
/// ranking this is that ranking.
fn fuse(idx: &TeamIndex, lexical: &[(usize, f32)], vector: &[(usize, f32)]) -> Vec<usize> {
    // doc position -> (fused score, shown chunk, lexical rank)
    let mut docs: HashMap<usize, (f32, usize, usize)> = HashMap::new();
    let mut rank = 0usize;
    for &(ord, _) in lexical {
        let doc = idx.chunks[ord].doc;
        if docs.contains_key(&doc) {
            continue;
        }
        rank += 1;
        docs.insert(doc, (1.0 / (RRF_K + rank as f32), ord, rank));
    }
    let mut seen = std::collections::HashSet::new();
    let mut rank = 0usize;
    for &(ord, _) in vector {
        let doc = idx.chunks[ord].doc;
        if !seen.insert(doc) {
            continue;
        }
        rank += 1;
        let add = 1.0 / (RRF_K + rank as f32);
        docs.entry(doc)
            .and_modify(|e| e.0 += add)
            .or_insert((add, ord, usize::MAX));
    }
    let mut out: Vec<(f32, usize, usize)> = docs.into_values().collect();
    // Ties (equal fused scores) go to the better BM25 rank: lexical matches are the
    // more precise evidence.
    out.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.2.cmp(&b.2)));
    out.into_iter().map(|(_, ord, _)| ord).collect()
}

/// The hit for chunk `ord`.
fn hit(idx: &TeamIndex, ord: usize, coverage: f32, similarity: Option<f32>) -> Hit {
    let chunk = &idx.chunks[ord];
    let doc = &idx.docs[chunk.doc];
    let answer = match doc.kind.as_str() {
        "faq" => doc.body.clone(),
        "package" => chunk::package_summary(&doc.title, &doc.body, doc.fields.as_ref()),
        // The heading path helps retrieval and the model, not a customer.
        _ => match chunk.text.split_once('\n') {
            Some((_, rest)) if !rest.trim().is_empty() => rest.trim().to_string(),
            _ => chunk.text.clone(),
        },
    };
    Hit {
        doc_id: doc.id.clone(),
        kind: doc.kind.clone(),
        ref_code: doc.ref_code.clone(),
        label: store::label(&doc.kind, &doc.ref_code),
        title: doc.title.clone(),
        text: chunk.text.clone(),
        answer,
        fields: doc.fields.clone(),
        confidence: confidence(coverage, similarity),
        coverage,
        similarity,
    }
}

/// A hit's confidence, 0–1: the lexical coverage alone, or — when the query and
/// the passage both have embeddings — the mean of coverage and cosine similarity
/// (negative similarity counts as 0). Both must agree for a high value.
pub fn confidence(coverage: f32, similarity: Option<f32>) -> f32 {
    let c = match similarity {
        Some(s) => 0.5 * coverage + 0.5 * s.max(0.0),
        None => coverage,
    };
    c.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_mixes_both_sides() {
        assert!((confidence(0.8, None) - 0.8).abs() < 1e-6);
        assert!((confidence(0.8, Some(0.6)) - 0.7).abs() < 1e-6);
        assert!((confidence(0.4, Some(-0.3)) - 0.2).abs() < 1e-6);
    }
}
