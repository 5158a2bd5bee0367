//! One team's retrieval index, built in RAM from the team's chunks: a tantivy BM25
//! index over title and chunk text, the chunks' term sets and document
//! frequencies (for the lexical confidence), and the chunks' embeddings (for the
//! vector side). Immutable once built: a change to the team's documents makes a
//! new one (see [`super::KnowledgeBase`]). Building and searching are synchronous
//! CPU work; callers run them on the blocking pool.

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value as _, STORED,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
    StopWordFilter, TextAnalyzer,
};
use tantivy::{Index, IndexReader, ReloadPolicy, TantivyDocument, Term};

use crate::bot::llm::unpack;
use crate::error::AppError;
use crate::store::knowledge::{ChunkRow, DocRow};

/// Name the analyzer is registered under in each index.
const TOKENIZER: &str = "kb";

/// How much more a query term found in a document's title counts than one in the
/// text: titles (an FAQ's question, a package's name) say what a document is about.
const TITLE_BOOST: f32 = 2.0;

/// Added to the number of query terms in [`TeamIndex::coverage`]'s denominator:
/// the fewer words a question has, the less one match proves.
const COVERAGE_PRIOR: f32 = 0.5;

/// tantivy's smallest indexing arena (15 MB); the index of one team is far smaller
/// than one arena, so one thread with the minimum is plenty.
const WRITER_BUDGET: usize = 15_000_000;

/// Words that carry no topic, English and Indonesian (the hub's customers write
/// both), compared after lower-casing and accent folding, before stemming. They are
/// neither indexed nor counted as the query's content terms.
#[rustfmt::skip]
const STOPWORDS: &[&str] = &[
    // English
    "a", "about", "above", "after", "again", "all", "also", "am", "an", "and", "any", "are",
    "as", "at", "be", "been", "before", "being", "both", "but", "by", "can", "could", "d",
    "did", "do", "does", "doing", "during", "each", "else", "etc", "ever", "few", "for",
    "from", "get", "got", "had", "has", "have", "having", "he", "hello", "her", "here",
    "hers", "hi", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "just",
    "know", "let", "ll", "m", "many", "me", "might", "more", "most", "much", "must", "my", "need",
    "of", "ok", "okay", "on", "one", "or", "other", "our", "ours", "out", "please", "re",
    "s", "same", "shall", "she", "should", "so", "some", "such", "t", "tell", "than",
    "thank", "thanks", "that", "the", "their", "them", "then", "there", "these", "they",
    "this", "those", "to", "too", "us", "ve", "very", "want", "was", "we", "were", "what",
    "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would",
    "you", "your", "yours",
    // Indonesian
    "ada", "adalah", "agar", "akan", "aku", "anda", "apa", "apakah", "atau", "bagaimana",
    "bapak", "begitu", "belum", "berapa", "bisa", "boleh", "buat", "dan", "dari", "dengan",
    "di", "dong", "dulu", "gimana", "hai", "halo", "ingin", "ini", "itu", "ibu", "jadi",
    "juga", "kak", "kakak", "kalau", "kalo", "kami", "kan", "kapan", "karena", "ke", "kita",
    "lagi", "mana", "mas", "mau", "mbak", "min", "mohon", "nya", "pada", "para", "saja",
    "saya", "sih", "sudah", "supaya", "tolong", "tentang", "untuk", "ya", "yang",
    "assalamualaikum", "terima", "kasih",
];

/// The analyzer for documents and queries alike: simple word split, overlong tokens
/// dropped, lower-cased, accents folded, stopwords removed, English stemming
/// (Indonesian words pass through it nearly unchanged, the same way on both sides).
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(StopWordFilter::remove(
            STOPWORDS.iter().map(|s| (*s).to_string()),
        ))
        .filter(Stemmer::new(Language::English))
        .build()
}

/// The analyzed terms of `text`, in order, with repeats.
pub fn terms(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

/// The distinct analyzed terms of `text`, in first-seen order.
pub fn distinct_terms(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    terms(analyzer, text)
        .into_iter()
        .filter(|t| seen.insert(t.clone()))
        .collect()
}

/// A document as retrieval needs it.
#[derive(Debug, Clone)]
pub struct IndexedDoc {
    /// Document id.
    pub id: String,
    /// Kind.
    pub kind: String,
    /// Citation code.
    pub ref_code: String,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Package fields.
    pub fields: Option<Value>,
}

/// A chunk as retrieval needs it.
#[derive(Debug, Clone)]
pub struct IndexedChunk {
    /// Chunk id.
    pub id: String,
    /// Position of its document in [`TeamIndex::docs`].
    pub doc: usize,
    /// The chunk's text.
    pub text: String,
    /// Distinct analyzed terms of the document's title and the chunk's text.
    pub terms: HashSet<String>,
    /// Its embedding from the current model, if any.
    pub embedding: Option<Vec<f32>>,
}

/// A team's index.
pub struct TeamIndex {
    /// The store fingerprint it was built from.
    pub fingerprint: [i64; 4],
    /// The team's documents.
    pub docs: Vec<IndexedDoc>,
    /// The team's chunks; position = the `ord` stored in tantivy.
    pub chunks: Vec<IndexedChunk>,
    reader: IndexReader,
    title_field: Field,
    text_field: Field,
    ord_field: Field,
    analyzer: TextAnalyzer,
}

impl std::fmt::Debug for TeamIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeamIndex")
            .field("fingerprint", &self.fingerprint)
            .field("docs", &self.docs.len())
            .field("chunks", &self.chunks.len())
            .finish_non_exhaustive()
    }
}

fn tantivy_err(e: tantivy::TantivyError) -> AppError {
    AppError::internal(format!("knowledge index: {e}"))
}

impl TeamIndex {
    /// Builds the index of `docs` and their `chunks`; embeddings from a model other
    /// than `model` are ignored (they will be redone).
    ///
    /// # Errors
    /// [`AppError::Internal`] when tantivy fails (it should not, in RAM).
    pub fn build(
        fingerprint: [i64; 4],
        docs: Vec<DocRow>,
        chunks: Vec<ChunkRow>,
        model: Option<&str>,
    ) -> Result<Self, AppError> {
        let mut schema = Schema::builder();
        let indexing = TextFieldIndexing::default()
            .set_tokenizer(TOKENIZER)
            .set_index_option(IndexRecordOption::WithFreqs);
        let text_options = TextOptions::default().set_indexing_options(indexing);
        let title_field = schema.add_text_field("title", text_options.clone());
        let text_field = schema.add_text_field("text", text_options);
        let ord_field = schema.add_u64_field("ord", STORED);
        let index = Index::create_in_ram(schema.build());
        let analyzer = analyzer();
        index.tokenizers().register(TOKENIZER, analyzer.clone());

        let positions: HashMap<String, usize> = docs
            .iter()
            .enumerate()
            .map(|(i, d)| (d.id.clone(), i))
            .collect();
        let docs: Vec<IndexedDoc> = docs
            .into_iter()
            .map(|d| IndexedDoc {
                fields: d.fields_json(),
                id: d.id,
                kind: d.kind,
                ref_code: d.ref_code,
                title: d.title,
                body: d.body,
            })
            .collect();

        let mut writer: tantivy::IndexWriter = index
            .writer_with_num_threads(1, WRITER_BUDGET)
            .map_err(tantivy_err)?;
        let mut indexed = Vec::with_capacity(chunks.len());
        let mut a = analyzer.clone();
        for c in chunks {
            let Some(&doc) = positions.get(&c.doc_id) else {
                continue;
            };
            let title = &docs[doc].title;
            let terms: HashSet<String> = terms(&mut a, title)
                .into_iter()
                .chain(self::terms(&mut a, &c.text))
                .collect();
            let embedding = match (&c.embedding, &c.embedding_model, model) {
                (Some(bytes), Some(m), Some(current)) if m == current => Some(unpack(bytes)),
                _ => None,
            };
            let ord = indexed.len() as u64;
            let mut doc_t = TantivyDocument::default();
            doc_t.add_text(title_field, title);
            doc_t.add_text(text_field, &c.text);
            doc_t.add_u64(ord_field, ord);
            writer.add_document(doc_t).map_err(tantivy_err)?;
            indexed.push(IndexedChunk {
                id: c.id,
                doc,
                text: c.text,
                terms,
                embedding,
            });
        }
        writer.commit().map_err(tantivy_err)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(tantivy_err)?;
        Ok(Self {
            fingerprint,
            docs,
            chunks: indexed,
            reader,
            title_field,
            text_field,
            ord_field,
            analyzer,
        })
    }

    /// The distinct content terms of a query.
    pub fn query_terms(&self, query: &str) -> Vec<String> {
        distinct_terms(&mut self.analyzer.clone(), query)
    }

    /// BM25 over title (boosted) and text: up to `n` chunks as (chunk position,
    /// score), best first. Empty when the query has no content terms.
    ///
    /// # Errors
    /// [`AppError::Internal`] when tantivy fails.
    pub fn lexical(&self, query_terms: &[String], n: usize) -> Result<Vec<(usize, f32)>, AppError> {
        if query_terms.is_empty() || self.chunks.is_empty() || n == 0 {
            return Ok(Vec::new());
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for t in query_terms {
            let title = TermQuery::new(
                Term::from_field_text(self.title_field, t),
                IndexRecordOption::WithFreqs,
            );
            clauses.push((
                Occur::Should,
                Box::new(BoostQuery::new(Box::new(title), TITLE_BOOST)),
            ));
            let text = TermQuery::new(
                Term::from_field_text(self.text_field, t),
                IndexRecordOption::WithFreqs,
            );
            clauses.push((Occur::Should, Box::new(text)));
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let top = searcher
            .search(&query, &TopDocs::with_limit(n).order_by_score())
            .map_err(tantivy_err)?;
        let mut out = Vec::with_capacity(top.len());
        for (score, address) in top {
            let stored: TantivyDocument = searcher.doc(address).map_err(tantivy_err)?;
            if let Some(ord) = stored.get_first(self.ord_field).and_then(|v| v.as_u64()) {
                out.push((usize::try_from(ord).unwrap_or(usize::MAX), score));
            }
        }
        out.retain(|(ord, _)| *ord < self.chunks.len());
        Ok(out)
    }

    /// Lexical confidence of chunk `ord` for a query, 0–1: the share of the query's
    /// distinct content terms that the chunk (with its document's title) contains,
    /// discounted for very short queries: `matched / (terms + ½)`. One matched word
    /// of one tops out at 0.67, two of two at 0.8; half the terms matched stays
    /// below 0.5, so an off-topic question that shares one word with a document
    /// ("weather on Mars") does not pass the retrieval threshold.
    pub fn coverage(&self, query_terms: &[String], ord: usize) -> f32 {
        let Some(chunk) = self.chunks.get(ord) else {
            return 0.0;
        };
        if query_terms.is_empty() {
            return 0.0;
        }
        let matched = query_terms
            .iter()
            .filter(|t| chunk.terms.contains(*t))
            .count();
        (matched as f32 / (query_terms.len() as f32 + COVERAGE_PRIOR)).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, kind: &str, code: &str, title: &str, body: &str) -> DocRow {
        DocRow {
            id: id.into(),
            team_id: "t".into(),
            kind: kind.into(),
            ref_code: code.into(),
            title: title.into(),
            body: body.into(),
            fields: None,
            revision: 1,
            created_at: 0,
            updated_at: 0,
            updated_by: None,
        }
    }

    fn chunk(id: &str, doc: &str, text: &str) -> ChunkRow {
        ChunkRow {
            id: id.into(),
            doc_id: doc.into(),
            team_id: "t".into(),
            ordinal: 0,
            text: text.into(),
            embedding: None,
            embedding_model: None,
        }
    }

    #[test]
    fn analyzer_folds_stems_and_drops_stopwords() {
        let mut a = analyzer();
        assert_eq!(
            terms(
                &mut a,
                "What are the Cancellations? Café REFUNDS, berapa harga"
            ),
            ["cancel", "cafe", "refund", "harga"]
        );
    }

    #[test]
    fn bm25_ranks_and_coverage_separates_on_and_off_topic() {
        let docs = vec![
            doc(
                "d1",
                "faq",
                "1",
                "Can I cancel my booking?",
                "Cancellations get a refund minus the advance.",
            ),
            doc(
                "d2",
                "faq",
                "2",
                "Which documents do I need?",
                "A passport valid for six months.",
            ),
            doc(
                "d3",
                "faq",
                "3",
                "What is the weather like?",
                "Warm and humid in August.",
            ),
        ];
        let chunks = vec![
            chunk(
                "c1",
                "d1",
                "Q: Can I cancel my booking?\nA: Cancellations get a refund minus the advance.",
            ),
            chunk(
                "c2",
                "d2",
                "Q: Which documents do I need?\nA: A passport valid for six months.",
            ),
            chunk(
                "c3",
                "d3",
                "Q: What is the weather like?\nA: Warm and humid in August.",
            ),
        ];
        let idx = TeamIndex::build([0; 4], docs, chunks, None).unwrap();
        let q = idx.query_terms("how do I get my money refunded if I cancel?");
        let hits = idx.lexical(&q, 5).unwrap();
        assert_eq!(hits[0].0, 0, "{hits:?}");
        assert!(idx.coverage(&q, 0) >= 0.5, "{}", idx.coverage(&q, 0));
        let off = idx.query_terms("what's the weather on Mars");
        let top = idx.lexical(&off, 5).unwrap();
        assert_eq!(top[0].0, 2);
        assert!(idx.coverage(&off, 2) < 0.5, "{}", idx.coverage(&off, 2));
        assert!(idx
            .lexical(&idx.query_terms("the of and"), 5)
            .unwrap()
            .is_empty());
    }
}
