//! The bot's decision for one customer turn (one message or a burst): in order,
//!
//! 1. a handover intent of the team's lead rules (payment: "cara bayar?") or a
//!    request for a person → hand over;
//! 2. the highest-priority matching rule → its reply, and a handover if its action
//!    says so;
//! 3. outside opening hours, when the team wants it, the after-hours message and a
//!    handover for the next shift;
//! 4. with a model: retrieval, the assembled prompt, the model's JSON answer;
//!    low confidence or the model asking for a human → hand over; the model slow
//!    (past the budget) or failing → the fallback message and a hand over;
//! 5. without a model: the best knowledge hit above the retrieval threshold, else
//!    "didn't understand", and a handover once that happens too often in a row.
//!
//! [`decide`] only decides; [`super::worker`] posts, records and hands over, and
//! `POST /api/ai/process-message` returns the decision as it is.

use std::time::Instant;

use serde::Serialize;
use serde_json::{json, Value};

use super::knowledge::Hit;
use super::llm::{ChatRequest, LlmError};
use super::prompt::{self, Situation};
use super::rules;
use super::settings::BotSettings;
use super::Bot;
use crate::db::Db;
use crate::error::AppError;
use crate::leads::intent::{keyword_regex, Matcher};

/// `x` rounded to 3 decimals, so confidences read as written (0.92, not
/// 0.9200000166893005 from an f32).
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// What the bot knows about the turn it answers.
#[derive(Clone, Debug, Default)]
pub struct Input {
    /// The conversation's team.
    pub team_id: String,
    /// `widget`, `whatsapp` or `quick_chat`.
    pub channel: String,
    /// The contact's name, when known.
    pub contact_name: Option<String>,
    /// The lead's stage, when there is a lead.
    pub lead_stage: Option<String>,
    /// The team's pipeline stage keys, in order.
    pub stages: Vec<String>,
    /// The team's lead intent rules that ask for a handover (payment triggers).
    pub handover_intents: Vec<crate::leads::config::IntentRule>,
    /// The package the lead asked about (campaign code), for reply templates.
    pub package: Option<crate::store::leads::CampaignCodeRow>,
    /// Team name, for reply templates.
    pub team_name: Option<String>,
    /// Recent messages, oldest first, ending with the turn: (from the customer, text).
    pub history: Vec<(bool, String)>,
    /// The customer's messages of this turn, oldest first.
    pub turn: Vec<String>,
    /// "Didn't understand" answers so far in a row.
    pub not_understood: i32,
    /// Epoch ms, for opening hours.
    pub now_ms: i64,
}

impl Input {
    /// Fills [`Input::stages`] and [`Input::handover_intents`] from a team's lead
    /// configuration.
    pub fn with_lead_config(mut self, config: &crate::leads::config::LeadConfig) -> Self {
        self.stages = config.stages.iter().map(|s| s.key.clone()).collect();
        self.handover_intents = config
            .rules
            .iter()
            .filter(|r| r.handover)
            .cloned()
            .collect();
        self
    }

    /// The turn as one text.
    pub fn turn_text(&self) -> String {
        self.turn.join("\n")
    }
}

/// A cited knowledge document.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Citation {
    /// `FAQ #12`, `Package #CODE`, `Doc #slug`.
    pub label: String,
    /// The document's id.
    pub doc_id: String,
}

/// A media item to send with the reply (seed 001's `media_to_send`).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Media {
    /// `image` (or `document`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Public URL.
    pub url: String,
}

/// What the bot decided for a turn.
#[derive(Clone, Debug, Serialize)]
pub struct Decision {
    /// The message to send, if any.
    pub reply: Option<String>,
    /// Media to send with it.
    pub media: Vec<Media>,
    /// `rule`, `ai`, `retrieval`, `fallback`, `after_hours`, `handover`,
    /// `not_understood`.
    pub source: &'static str,
    /// The matched rule.
    pub rule_id: Option<String>,
    /// Prompt versions used (model answers only).
    pub prompt_version: Option<String>,
    /// The model that answered.
    pub model: Option<String>,
    /// Knowledge cited.
    pub sources: Vec<Citation>,
    /// 0–1: the model's confidence, the retrieval hit's, 1 for rules (3 decimals).
    pub confidence: Option<f64>,
    /// Hand the conversation to a human, and why.
    pub handover: Option<String>,
    /// The lead stage the model says the conversation reached.
    pub new_phase: Option<String>,
    /// `Some(true)`: a "didn't understand" answer; `Some(false)`: understood (resets
    /// the count); `None`: neither (a rule, a handover).
    pub understood: Option<bool>,
    /// Time spent deciding, ms.
    pub latency_ms: i64,
}

impl Decision {
    fn new(source: &'static str) -> Self {
        Self {
            reply: None,
            media: Vec::new(),
            source,
            rule_id: None,
            prompt_version: None,
            model: None,
            sources: Vec::new(),
            confidence: None,
            handover: None,
            new_phase: None,
            understood: None,
            latency_ms: 0,
        }
    }

    /// The cited sources as stored in the audit trail.
    pub fn sources_json(&self) -> Value {
        json!(self.sources)
    }
}

/// The message sent when handing over: the after-hours message when closed.
fn handover_text(settings: &BotSettings, now_ms: i64) -> String {
    if settings.is_open(now_ms) {
        settings.handover_message.clone()
    } else {
        settings.after_hours_message.clone()
    }
}

fn handover(
    settings: &BotSettings,
    input: &Input,
    source: &'static str,
    reason: String,
) -> Decision {
    let mut d = Decision::new(source);
    d.reply = Some(handover_text(settings, input.now_ms));
    d.handover = Some(reason);
    d
}

/// Decides the bot's answer to `input` under `settings`.
///
/// # Errors
/// Database errors while reading rules, prompts, lead rules or knowledge. A model
/// failure is not an error: it is the `fallback` decision.
pub async fn decide(
    bot: &Bot,
    db: &Db,
    settings: &BotSettings,
    input: &Input,
) -> Result<Decision, AppError> {
    let started = Instant::now();
    let mut d = decide_inner(bot, db, settings, input).await?;
    d.latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    Ok(d)
}

async fn decide_inner(
    bot: &Bot,
    db: &Db,
    settings: &BotSettings,
    input: &Input,
) -> Result<Decision, AppError> {
    let text = input.turn_text();
    let team = input.team_id.clone();
    let rule_rows = db.run(move |c| rules::list(c, &team)).await?;

    // 1. Payment or booking intent (the lead rules that ask for a handover), or a
    //    request for a person.
    if let Some(rule) = Matcher::cached(&input.handover_intents)
        .matches(&text)
        .first()
    {
        return Ok(handover(
            settings,
            input,
            "handover",
            format!("{} intent: {}", rule.intent, crate::model::preview(&text)),
        ));
    }
    if keyword_regex(&settings.human_keywords)
        .is_some_and(|re| re.is_match(&crate::leads::intent::fold_message(&text)))
    {
        return Ok(handover(
            settings,
            input,
            "handover",
            "the customer asked for a person".into(),
        ));
    }

    // 2. Rules.
    if let Some(rule) = rules::find_match(&rule_rows, &input.channel, &text) {
        let mut d = Decision::new("rule");
        d.rule_id = Some(rule.id.clone());
        d.confidence = Some(1.0);
        d.reply = match &rule.reply {
            Some(t) if !t.trim().is_empty() => Some(rules::render(t, &template_vars(input))),
            _ => Some(handover_text(settings, input.now_ms)),
        };
        if rule.action == "handover" {
            d.handover = Some(format!("rule: {}", rule.name));
        }
        return Ok(d);
    }

    // 3. Closed, and the team does not want the bot to answer meanwhile.
    if !settings.is_open(input.now_ms) && !settings.answer_after_hours {
        let mut d = Decision::new("after_hours");
        d.reply = Some(settings.after_hours_message.clone());
        d.handover = Some("outside business hours".into());
        return Ok(d);
    }

    let hits = bot
        .knowledge
        .search(&input.team_id, &text, settings.knowledge_k)
        .await?;

    // 4. The model.
    if let (Some(llm), true) = (&bot.llm, settings.ai_enabled) {
        let team = input.team_id.clone();
        let prompts = db.run(move |c| prompt::current(c, &team)).await?;
        let situation = Situation {
            contact_name: input.contact_name.as_deref(),
            channel: &input.channel,
            lead_stage: input.lead_stage.as_deref(),
            stages: &input.stages,
        };
        let system = prompt::system_prompt(&prompts, &situation, &hits);
        let request = ChatRequest {
            messages: prompt::messages(system, &input.history),
            temperature: settings.temperature,
            max_tokens: settings.max_tokens,
            json: true,
        };
        let version = prompts.version();
        return Ok(match llm.chat(&request).await {
            Ok(answer) => {
                let mut d = from_model(settings, input, &answer.content, &hits);
                d.prompt_version = Some(version);
                d.model = Some(answer.model);
                d
            }
            Err(e) => fallback(settings, input, &e, version),
        });
    }

    // 5. Retrieval only.
    match hits
        .first()
        .filter(|h| f64::from(h.confidence) >= settings.retrieval_threshold)
    {
        Some(hit) => {
            let mut d = Decision::new("retrieval");
            // The customer gets the answer; agents see its source in the decision.
            d.reply = Some(hit.answer.trim().to_string());
            d.sources = vec![Citation {
                label: hit.label.clone(),
                doc_id: hit.doc_id.clone(),
            }];
            d.media = package_media(std::slice::from_ref(hit));
            d.confidence = Some(round3(f64::from(hit.confidence)));
            d.understood = Some(true);
            Ok(d)
        }
        None if input.not_understood + 1 >= settings.max_not_understood => {
            let mut d = handover(
                settings,
                input,
                "handover",
                format!(
                    "the bot did not understand {} times in a row",
                    input.not_understood + 1
                ),
            );
            d.understood = Some(true);
            d.confidence = hits.first().map(|h| round3(f64::from(h.confidence)));
            Ok(d)
        }
        None => {
            let mut d = Decision::new("not_understood");
            d.reply = Some(settings.not_understood_message.clone());
            d.understood = Some(false);
            d.confidence = hits.first().map(|h| round3(f64::from(h.confidence)));
            Ok(d)
        }
    }
}

fn fallback(settings: &BotSettings, input: &Input, e: &LlmError, version: String) -> Decision {
    tracing::warn!(team = %input.team_id, error = %e, "model answer unavailable; fallback and handover");
    let mut d = Decision::new("fallback");
    d.reply = Some(settings.fallback_message.clone());
    d.handover = Some(format!("{}: {e}", e.code()));
    d.prompt_version = Some(version);
    d
}

/// The template variables of a rule's reply.
fn template_vars(input: &Input) -> Vec<(&'static str, Option<String>)> {
    let first = input
        .contact_name
        .as_deref()
        .and_then(|n| n.split_whitespace().next())
        .map(String::from);
    let p = input.package.as_ref();
    vec![
        ("contact_name", input.contact_name.clone()),
        ("first_name", first),
        ("team_name", input.team_name.clone()),
        ("package_name", p.map(|p| p.package_name.clone())),
        ("package_code", p.map(|p| p.code.clone())),
        (
            "package_price",
            p.and_then(|p| {
                p.price.map(|v| {
                    format!("{} {v}", p.currency.as_deref().unwrap_or(""))
                        .trim()
                        .to_string()
                })
            }),
        ),
        (
            "package_departure",
            p.and_then(|p| p.departure_date.clone()),
        ),
        (
            "package_duration",
            p.and_then(|p| p.duration_days.map(|d| format!("{d} days"))),
        ),
    ]
}

/// Package images of the cited hits (seed 001: the package image goes with the answer).
fn package_media(hits: &[Hit]) -> Vec<Media> {
    hits.iter()
        .filter_map(|h| {
            h.fields
                .as_ref()?
                .get("image_url")?
                .as_str()
                .map(String::from)
        })
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        .take(1)
        .map(|url| Media {
            kind: "image".into(),
            url,
        })
        .collect()
}

/// The model's answer, read.
#[derive(Clone, Debug)]
pub struct Parsed {
    /// The reply text for the customer, without citation labels (they stay in
    /// `sources`, which agents see in the decision record).
    pub reply: String,
    /// 0–1, 3 decimals.
    pub confidence: f64,
    /// The model asked for a human.
    pub wants_human: bool,
    /// A stage key of the team's pipeline, when the model named one.
    pub phase: Option<String>,
    /// Retrieved documents the answer cites.
    pub sources: Vec<Citation>,
}

/// `text` without citation labels (`[FAQ #3]`, `[Package #UMR]`, `[Doc #7]`, as
/// [`crate::store::knowledge::label`] makes them, retrieved or invented) and the
/// blank space they leave: a label is provenance for agents, noise to a customer.
pub fn strip_citations(text: &str) -> String {
    // A literal pattern: `Regex::new` only fails on a malformed pattern, which the
    // unit tests would catch.
    #[allow(clippy::expect_used)]
    static LABEL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"[ \t]*\[(?:FAQ|Package|Doc) #[^\[\]\n]{1,64}\]").expect("label pattern")
    });
    let stripped = LABEL.replace_all(text, "");
    // Lines left empty at the end by labels written on their own line go too.
    stripped.trim_end().to_string()
}

/// Reads the model's answer: the JSON object of [`prompt::ANSWER_FORMAT`], or plain
/// text (a model that ignores the format), taken as the reply with the best
/// retrieval hit's confidence. Only retrieved documents are cited, whether the model
/// lists them in `sources` or writes them inline.
pub fn parse_answer(input: &Input, content: &str, hits: &[Hit]) -> Parsed {
    let parsed: Option<Value> = content
        .find('{')
        .zip(content.rfind('}'))
        .and_then(|(a, b)| serde_json::from_str(&content[a..=b]).ok());
    let (reply, confidence, wants_human, phase, cited) = match &parsed {
        Some(v) if v.get("reply").and_then(Value::as_str).is_some() => (
            v["reply"].as_str().unwrap_or_default().trim().to_string(),
            v.get("confidence")
                .and_then(Value::as_f64)
                .map(|c| round3(c.clamp(0.0, 1.0)))
                .unwrap_or(0.0),
            v.get("handover").and_then(Value::as_bool).unwrap_or(false),
            v.get("phase").and_then(Value::as_str).map(String::from),
            v.get("sources")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        ),
        _ => (
            content.trim().to_string(),
            hits.first()
                .map_or(0.0, |h| round3(f64::from(h.confidence))),
            false,
            None,
            Vec::new(),
        ),
    };
    let sources: Vec<Citation> = hits
        .iter()
        .filter(|h| {
            cited.iter().any(|c| c.trim_matches(['[', ']']) == h.label)
                || reply.contains(&format!("[{}]", h.label))
        })
        .map(|h| Citation {
            label: h.label.clone(),
            doc_id: h.doc_id.clone(),
        })
        .collect();
    Parsed {
        reply: strip_citations(&reply),
        confidence,
        wants_human,
        phase: phase.filter(|p| input.stages.iter().any(|s| s == p)),
        sources,
    }
}

/// The model's answer as the bot's decision: the reply, or a handover when the
/// model asks for a human, the reply is empty or the confidence is below the team's
/// threshold.
pub fn from_model(settings: &BotSettings, input: &Input, content: &str, hits: &[Hit]) -> Decision {
    let p = parse_answer(input, content, hits);
    if p.reply.is_empty() || p.wants_human || p.confidence < settings.confidence_threshold {
        let reason = if p.wants_human {
            "the model asked for a human".to_string()
        } else {
            format!("low confidence ({:.2})", p.confidence)
        };
        let mut d = handover(settings, input, "handover", reason);
        d.confidence = Some(p.confidence);
        d.sources = p.sources;
        d.new_phase = p.phase;
        d.understood = Some(true);
        return d;
    }
    let cited_hits: Vec<Hit> = hits
        .iter()
        .filter(|h| p.sources.iter().any(|s| s.doc_id == h.doc_id))
        .cloned()
        .collect();
    let mut d = Decision::new("ai");
    d.reply = Some(p.reply);
    d.media = package_media(&cited_hits);
    d.confidence = Some(p.confidence);
    d.sources = p.sources;
    d.new_phase = p.phase;
    d.understood = Some(true);
    d
}

/// A draft reply for an agent (`POST /api/conversations/{id}/bot/suggest`): the
/// model's answer to the customer's latest messages, grounded in the knowledge
/// base, whatever its confidence (the agent judges); without a model, or when it
/// fails, the best knowledge hit. `reply` is `None` when there is nothing to offer.
///
/// # Errors
/// Database errors.
pub async fn suggest(
    bot: &Bot,
    db: &Db,
    settings: &BotSettings,
    input: &Input,
) -> Result<Decision, AppError> {
    let started = Instant::now();
    let text = input.turn_text();
    let hits = bot
        .knowledge
        .search(&input.team_id, &text, settings.knowledge_k)
        .await?;
    let mut d = Decision::new("suggestion");
    if let Some(llm) = &bot.llm {
        let team = input.team_id.clone();
        let prompts = db.run(move |c| prompt::current(c, &team)).await?;
        let situation = Situation {
            contact_name: input.contact_name.as_deref(),
            channel: &input.channel,
            lead_stage: input.lead_stage.as_deref(),
            stages: &input.stages,
        };
        let mut system = prompt::system_prompt(&prompts, &situation, &hits);
        system.push_str(
            "\n\nYou are drafting the next reply for a human agent, who will review and send it.",
        );
        let request = ChatRequest {
            messages: prompt::messages(system, &input.history),
            temperature: settings.temperature,
            max_tokens: settings.max_tokens,
            json: true,
        };
        d.prompt_version = Some(prompts.version());
        match llm.chat(&request).await {
            Ok(answer) => {
                let p = parse_answer(input, &answer.content, hits.as_slice());
                d.reply = Some(p.reply).filter(|r| !r.is_empty());
                d.confidence = Some(p.confidence);
                d.sources = p.sources;
                d.model = Some(answer.model);
            }
            Err(e) => tracing::info!(error = %e, "no model draft; offering the best knowledge hit"),
        }
    }
    if d.reply.is_none() {
        if let Some(hit) = hits.first() {
            // The customer gets the answer; agents see its source in the decision.
            d.reply = Some(hit.answer.trim().to_string());
            d.sources = vec![Citation {
                label: hit.label.clone(),
                doc_id: hit.doc_id.clone(),
            }];
            d.confidence = Some(round3(f64::from(hit.confidence)));
        }
    }
    d.latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(label: &str, conf: f32) -> Hit {
        Hit {
            doc_id: format!("doc-{label}"),
            kind: "faq".into(),
            ref_code: "1".into(),
            label: label.into(),
            title: "t".into(),
            text: "x".into(),
            answer: "a".into(),
            fields: None,
            confidence: conf,
            coverage: conf,
            similarity: None,
        }
    }

    #[test]
    fn model_answers_record_retrieved_sources_and_show_no_labels() {
        let s = BotSettings::default();
        let input = Input::default();
        let hits = vec![hit("FAQ #3", 0.9), hit("Package #UMR", 0.7)];
        let d = from_model(
            &s,
            &input,
            r#"{"reply":"The DP is 5 million.","confidence":0.9,"sources":["FAQ #3","FAQ #99"]}"#,
            &hits,
        );
        assert_eq!(d.source, "ai");
        // The customer reads no label; the decision keeps the one retrieved source.
        assert_eq!(d.reply.as_deref(), Some("The DP is 5 million."));
        assert_eq!(d.sources.len(), 1);
        assert_eq!(d.sources[0].label, "FAQ #3");
        // Labels written inline are read as sources, then removed from the text.
        let d = from_model(
            &s,
            &input,
            r#"{"reply":"The DP is 5 million [FAQ #3], paid by transfer [Package #UMR].\n\n[FAQ #99]","confidence":0.9}"#,
            &hits,
        );
        assert_eq!(
            d.reply.as_deref(),
            Some("The DP is 5 million, paid by transfer.")
        );
        assert_eq!(d.sources.len(), 2);
        assert!(d.handover.is_none());
    }

    #[test]
    fn low_confidence_or_a_request_for_a_human_hands_over() {
        let s = BotSettings::default();
        let input = Input::default();
        let d = from_model(&s, &input, r#"{"reply":"Maybe?","confidence":0.2}"#, &[]);
        assert_eq!(d.source, "handover");
        assert!(d
            .handover
            .as_deref()
            .is_some_and(|r| r.contains("low confidence")));
        let d = from_model(
            &s,
            &input,
            r#"```json
{"reply":"I'll get someone","confidence":0.95,"handover":true}
```"#,
            &[],
        );
        assert_eq!(d.handover.as_deref(), Some("the model asked for a human"));
        // Plain text takes the best hit's confidence.
        let d = from_model(&s, &input, "Sure, it's 9 days.", &[hit("FAQ #1", 0.8)]);
        assert_eq!(d.source, "ai");
    }
}
