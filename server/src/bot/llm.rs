//! The model endpoint: chat completions and embeddings from any OpenAI-compatible
//! server through `async-openai` (OpenAI, Azure-compatible gateways, Ollama, vLLM,
//! llama.cpp's server, LM Studio…). It owns the client, the per-call time budget and
//! the translation of failures into [`LlmError`]; what is asked lives in
//! [`super::prompt`] and the knowledge base.

use std::time::{Duration, Instant};

use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage,
    CreateChatCompletionRequest, ResponseFormat,
};
use async_openai::types::embeddings::{CreateEmbeddingRequest, EmbeddingInput};
use async_openai::Client;

use crate::config::AiConfig;

/// Why a model call gave no usable answer. Every variant means the same to the
/// bot — fallback template and a human — but is recorded for the audit trail.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// No answer within the budget (`SWITCHBOARD_AI_BUDGET_MS`).
    #[error("the model did not answer within {0} ms")]
    Timeout(u128),
    /// The endpoint answered with an error (HTTP 4xx/5xx) or could not be reached.
    #[error("the model endpoint failed: {0}")]
    Endpoint(String),
    /// The endpoint answered, but with nothing to use (no choice, no content).
    #[error("the model gave an empty answer")]
    Empty,
}

impl LlmError {
    /// Short machine name for the audit trail: `model_timeout`, `model_error`, `model_empty`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "model_timeout",
            Self::Endpoint(_) => "model_error",
            Self::Empty => "model_empty",
        }
    }
}

/// Who said a line of the conversation, as the model sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Instructions (the assembled prompt).
    System,
    /// The customer.
    User,
    /// The business: the bot's and the agents' earlier replies.
    Assistant,
}

/// One message of a chat request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatMessage {
    /// Who says it.
    pub role: Role,
    /// What is said.
    pub content: String,
}

/// A chat completion request, independent of the client library.
#[derive(Clone, Debug)]
pub struct ChatRequest {
    /// The messages, system prompt first.
    pub messages: Vec<ChatMessage>,
    /// Sampling temperature, 0–2.
    pub temperature: f64,
    /// Most tokens in the answer.
    pub max_tokens: u32,
    /// Ask for a JSON object answer (`response_format: json_object`).
    pub json: bool,
}

/// The model's answer to a chat request.
#[derive(Clone, Debug)]
pub struct ChatAnswer {
    /// The answer's text (the first choice's content).
    pub content: String,
    /// The model that answered, as the endpoint names it.
    pub model: String,
    /// Wall time of the call, ms.
    pub latency_ms: i64,
}

/// A client for one OpenAI-compatible endpoint. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Llm {
    client: Client<OpenAIConfig>,
    model: String,
    embedding_model: Option<String>,
    budget: Duration,
}

impl Llm {
    /// A client for the configured endpoint, or `None` when no endpoint is configured
    /// (the bot then runs on rules and retrieval alone).
    pub fn from_config(ai: &AiConfig) -> Option<Self> {
        if !ai.enabled() {
            return None;
        }
        let config = OpenAIConfig::new()
            .with_api_base(ai.endpoint())
            .with_api_key(ai.api_key.as_ref().map(|k| k.expose()).unwrap_or("none"));
        // A second, outer limit in case the budget is bypassed; connection set-up
        // must not eat the whole budget either.
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3).min(ai.budget))
            .timeout(ai.budget + Duration::from_secs(1))
            .build()
            .ok()?;
        Some(Self {
            client: Client::build(http, config),
            model: ai.model.clone(),
            embedding_model: ai.embedding_model.clone(),
            budget: ai.budget,
        })
    }

    /// The chat model's name.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The embedding model's name, when embeddings are on.
    pub fn embedding_model(&self) -> Option<&str> {
        self.embedding_model.as_deref()
    }

    /// The time budget of one call.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Asks for a chat completion within the budget.
    ///
    /// # Errors
    /// [`LlmError::Timeout`] past the budget, [`LlmError::Endpoint`] on an HTTP or
    /// decoding failure, [`LlmError::Empty`] when the answer has no text.
    pub async fn chat(&self, req: &ChatRequest) -> Result<ChatAnswer, LlmError> {
        let messages: Vec<ChatCompletionRequestMessage> = req
            .messages
            .iter()
            .map(|m| match m.role {
                Role::System => ChatCompletionRequestSystemMessage::from(m.content.as_str()).into(),
                Role::User => ChatCompletionRequestUserMessage::from(m.content.as_str()).into(),
                Role::Assistant => {
                    ChatCompletionRequestAssistantMessage::from(m.content.as_str()).into()
                }
            })
            .collect();
        let request = CreateChatCompletionRequest {
            model: self.model.clone(),
            messages,
            // The API takes an f32; 0–2 fits exactly enough.
            temperature: Some(req.temperature.clamp(0.0, 2.0) as f32),
            max_completion_tokens: Some(req.max_tokens.max(1)),
            response_format: req.json.then_some(ResponseFormat::JsonObject),
            ..Default::default()
        };
        let started = Instant::now();
        let answer = tokio::time::timeout(self.budget, self.client.chat().create(request))
            .await
            .map_err(|_| LlmError::Timeout(self.budget.as_millis()))?
            .map_err(|e| LlmError::Endpoint(e.to_string()))?;
        let content = answer
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
            .filter(|c| !c.trim().is_empty())
            .ok_or(LlmError::Empty)?;
        Ok(ChatAnswer {
            content,
            model: answer.model,
            latency_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        })
    }

    /// Embeds `texts` (one vector per text, same order) within the budget.
    ///
    /// # Errors
    /// As [`Llm::chat`]; also [`LlmError::Empty`] when embeddings are switched off or
    /// the answer does not hold one vector per text.
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, LlmError> {
        let Some(model) = &self.embedding_model else {
            return Err(LlmError::Empty);
        };
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let request = CreateEmbeddingRequest {
            model: model.clone(),
            input: EmbeddingInput::StringArray(texts.to_vec()),
            ..Default::default()
        };
        let answer = tokio::time::timeout(self.budget, self.client.embeddings().create(request))
            .await
            .map_err(|_| LlmError::Timeout(self.budget.as_millis()))?
            .map_err(|e| LlmError::Endpoint(e.to_string()))?;
        let mut data = answer.data;
        if data.len() != texts.len() {
            return Err(LlmError::Empty);
        }
        // The API returns an index per vector; order by it rather than trusting the
        // array order.
        data.sort_by_key(|d| d.index);
        Ok(data.into_iter().map(|d| d.embedding).collect())
    }
}

/// Cosine similarity of two vectors (0 when either is all zeros or lengths differ).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

/// Packs a vector as little-endian f32 bytes (the `knowledge_chunks.embedding` column).
pub fn pack(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Unpacks [`pack`]'s bytes; trailing bytes that do not make a whole f32 are ignored.
pub fn unpack(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips_and_cosine_ranks() {
        let v = vec![0.5f32, -1.25, 3.0];
        assert_eq!(unpack(&pack(&v)), v);
        assert!((cosine(&v, &v) - 1.0).abs() < 1e-6);
        assert!(cosine(&[1.0, 0.0], &[0.0, 1.0]).abs() < 1e-6);
        assert_eq!(cosine(&[1.0], &[1.0, 2.0]), 0.0);
    }
}
