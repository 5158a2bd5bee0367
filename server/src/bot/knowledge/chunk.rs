//! How a knowledge document becomes retrieval units ("chunks"), and the small text
//! helpers around it: package fields rendered as prose, Markdown split on headings
//! and paragraphs, slugs for citation codes, and FAQ-style Markdown parsed into
//! question/answer pairs for the import.
//!
//! Pure functions: the store calls [`chunks`] inside the write transaction so a
//! document and its chunks always change together.

use serde_json::Value;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Target size of a text chunk, in characters (the heading path prefix excluded).
/// Large enough to hold a paragraph with its context, small enough that one
/// chunk is about one thing and fits a prompt several times over.
pub const CHUNK_CHARS: usize = 800;

/// Package field keys rendered first, in this order; the rest follow by name.
const FIELD_ORDER: &[&str] = &[
    "name",
    "price",
    "currency",
    "advance",
    "down_payment",
    "departure",
    "departure_date",
    "return_date",
    "duration",
    "duration_days",
    "departure_city",
    "quota",
    "hotel",
    "airline",
    "inclusions",
    "exclusions",
    "itinerary",
    "highlights",
];

/// The chunks of a document, in order. Never empty.
///
/// - `faq`: one chunk, `Q: <title>\nA: <body>`.
/// - `package`: one chunk: title and code, the fields as `Label: value` lines, the body.
/// - `text`, `markdown`: the body split on Markdown headings, then paragraphs, into
///   chunks of about [`CHUNK_CHARS`], each prefixed with its heading path
///   (`Title > Section > Subsection`).
pub fn chunks(
    kind: &str,
    ref_code: &str,
    title: &str,
    body: &str,
    fields: Option<&Value>,
) -> Vec<String> {
    match kind {
        "faq" => vec![format!("Q: {}\nA: {}", title.trim(), body.trim())],
        "package" => vec![package_text(ref_code, title, body, fields)],
        _ => markdown_chunks(title, body),
    }
}

/// A package as prose: name, code, fields, description.
pub fn package_text(ref_code: &str, title: &str, body: &str, fields: Option<&Value>) -> String {
    let mut out = format!("{} ({})", title.trim(), ref_code);
    for line in field_lines(fields) {
        out.push('\n');
        out.push_str(&line);
    }
    if !body.trim().is_empty() {
        out.push('\n');
        out.push_str(body.trim());
    }
    out
}

/// A package's summary for a retrieval-only answer: name, the headline fields
/// (price, departure, duration) and the first paragraph of its description.
pub fn package_summary(title: &str, body: &str, fields: Option<&Value>) -> String {
    let headline = [
        "price",
        "departure",
        "departure_date",
        "duration",
        "duration_days",
    ];
    let mut out = title.trim().to_string();
    if let Some(Value::Object(map)) = fields {
        for key in headline {
            if let Some(v) = map.get(key).and_then(render_value) {
                let value = if key == "price" {
                    match map.get("currency").and_then(render_value) {
                        Some(cur) if !v.contains(&cur) => format!("{cur} {v}"),
                        _ => v,
                    }
                } else {
                    v
                };
                out.push_str(&format!("\n{}: {value}", label_of(key)));
            }
        }
    }
    if let Some(first) = body.split("\n\n").map(str::trim).find(|p| !p.is_empty()) {
        out.push('\n');
        out.push_str(first);
    }
    out
}

/// `Label: value` lines for a package's fields: known keys first, URLs left out
/// (they are for display, and their tokens would only add noise to retrieval).
fn field_lines(fields: Option<&Value>) -> Vec<String> {
    let Some(Value::Object(map)) = fields else {
        return Vec::new();
    };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by_key(|k| {
        (
            FIELD_ORDER
                .iter()
                .position(|o| o == k)
                .unwrap_or(usize::MAX),
            k.to_string(),
        )
    });
    keys.into_iter()
        .filter(|k| !k.ends_with("url") && k.as_str() != "currency" && k.as_str() != "name")
        .filter_map(|k| {
            let mut v = render_value(&map[k])?;
            if k == "price" {
                if let Some(cur) = map.get("currency").and_then(render_value) {
                    if !v.contains(&cur) {
                        v = format!("{cur} {v}");
                    }
                }
            }
            Some(format!("{}: {v}", label_of(k)))
        })
        .collect()
}

/// `departure_date` → `Departure date`.
fn label_of(key: &str) -> String {
    let spaced = key.replace(['_', '-'], " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A JSON value as text; `None` for null and empty values.
fn render_value(v: &Value) -> Option<String> {
    let s = match v {
        Value::Null => return None,
        Value::String(s) => s.trim().to_string(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => items
            .iter()
            .filter_map(render_value)
            .collect::<Vec<_>>()
            .join(", "),
        Value::Object(map) => map
            .iter()
            .filter_map(|(k, v)| render_value(v).map(|v| format!("{}: {v}", label_of(k))))
            .collect::<Vec<_>>()
            .join("; "),
    };
    (!s.is_empty()).then_some(s)
}

/// A Markdown line's heading level and text, when it is an ATX heading.
fn heading(line: &str) -> Option<(usize, &str)> {
    let trimmed = line.trim_start();
    let level = trimmed.chars().take_while(|c| *c == '#').count();
    if level == 0 || level > 6 {
        return None;
    }
    let rest = &trimmed[level..];
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return None;
    }
    Some((level, rest.trim().trim_end_matches('#').trim()))
}

/// Sections of a Markdown text: (heading path, paragraphs). Headings inside fenced
/// code blocks are content, not structure.
fn sections(body: &str) -> Vec<(Vec<String>, Vec<String>)> {
    let mut out: Vec<(Vec<String>, Vec<String>)> = vec![(Vec::new(), Vec::new())];
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut para = String::new();
    let mut in_fence = false;
    let flush = |para: &mut String, out: &mut Vec<(Vec<String>, Vec<String>)>| {
        let p = para.trim();
        if !p.is_empty() {
            if let Some(last) = out.last_mut() {
                last.1.push(p.to_string());
            }
        }
        para.clear();
    };
    for line in body.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        if !in_fence {
            if let Some((level, text)) = heading(line) {
                flush(&mut para, &mut out);
                path.retain(|(l, _)| *l < level);
                path.push((level, text.to_string()));
                out.push((path.iter().map(|(_, t)| t.clone()).collect(), Vec::new()));
                continue;
            }
            if line.trim().is_empty() {
                flush(&mut para, &mut out);
                continue;
            }
        }
        para.push_str(line);
        para.push('\n');
    }
    flush(&mut para, &mut out);
    out
}

/// Splits text longer than `max` characters at whitespace (or anywhere, for a word
/// longer than `max`), preferring sentence ends.
fn split_long(text: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest: &str = text;
    while rest.chars().count() > max {
        let cut_byte = rest.char_indices().nth(max).map_or(rest.len(), |(i, _)| i);
        let window = &rest[..cut_byte];
        let cut = window
            .rfind(". ")
            .map(|i| i + 1)
            .filter(|i| *i > cut_byte / 2)
            .or_else(|| window.rfind(char::is_whitespace).filter(|i| *i > 0))
            .unwrap_or(cut_byte);
        out.push(rest[..cut].trim().to_string());
        rest = rest[cut..].trim_start();
    }
    if !rest.trim().is_empty() {
        out.push(rest.trim().to_string());
    }
    out
}

/// Markdown (or plain text) chunks with the heading path prefixed.
fn markdown_chunks(title: &str, body: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (path, paras) in sections(body) {
        let mut prefix = vec![title.trim().to_string()];
        // An imported document's `# Title` usually repeats the document's title.
        let repeats_title = path
            .first()
            .is_some_and(|h| h.eq_ignore_ascii_case(title.trim()));
        prefix.extend(path.iter().skip(usize::from(repeats_title)).cloned());
        prefix.retain(|p| !p.is_empty());
        let prefix = prefix.join(" > ");
        let mut current = String::new();
        let mut push = |current: &mut String| {
            if !current.trim().is_empty() {
                out.push(format!("{prefix}\n{}", current.trim()));
            }
            current.clear();
        };
        for para in paras {
            for piece in split_long(&para, CHUNK_CHARS) {
                let len = current.chars().count();
                if len > 0 && len + piece.chars().count() + 2 > CHUNK_CHARS {
                    push(&mut current);
                }
                if !current.is_empty() {
                    current.push_str("\n\n");
                }
                current.push_str(&piece);
            }
        }
        push(&mut current);
    }
    if out.is_empty() {
        out.push(title.trim().to_string());
    }
    out
}

/// A citation code from a title: lower-case ASCII letters and digits joined by
/// `-`, accents folded, at most 60 characters; `doc` when nothing is left.
pub fn slug(title: &str) -> String {
    let mut out = String::new();
    for c in title.nfkd().filter(|c| !is_combining_mark(*c)) {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        if out.len() >= 60 {
            break;
        }
    }
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "doc".into()
    } else {
        out
    }
}

/// Question/answer pairs of FAQ-style Markdown: every heading below the top level
/// (`##`…) is a question, the text up to the next heading its answer. Headings
/// without an answer (grouping headings) are skipped.
pub fn faq_pairs(markdown: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut question: Option<String> = None;
    let mut answer = String::new();
    let mut in_fence = false;
    let mut finish = |q: Option<String>, a: &mut String| {
        if let Some(q) = q {
            if !q.is_empty() && !a.trim().is_empty() {
                out.push((q, a.trim().to_string()));
            }
        }
        a.clear();
    };
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        if !in_fence {
            if let Some((level, text)) = heading(line) {
                let next = (level >= 2).then(|| text.to_string());
                finish(question.take(), &mut answer);
                question = next;
                continue;
            }
        }
        if question.is_some() {
            answer.push_str(line);
            answer.push('\n');
        }
    }
    finish(question, &mut answer);
    out
}

/// The first top-level heading of a Markdown text, for an import without a title.
pub fn first_h1(markdown: &str) -> Option<String> {
    markdown
        .lines()
        .filter_map(heading)
        .find(|(level, text)| *level == 1 && !text.is_empty())
        .map(|(_, text)| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn faq_and_package_are_one_chunk() {
        assert_eq!(
            chunks("faq", "3", "Can I cancel?", " Yes, 30 days before. ", None),
            vec!["Q: Can I cancel?\nA: Yes, 30 days before."]
        );
        let fields = json!({"price": 25_000_000, "currency": "Rp", "departure_date": "2025-03-15",
                            "inclusions": ["visa", "hotel"], "image_url": "https://x/y.jpg"});
        let c = chunks(
            "package",
            "UMR_MAR_2025_HEMAT",
            "Umroh Maret Hemat",
            "Nine days.",
            Some(&fields),
        );
        assert_eq!(c.len(), 1);
        assert_eq!(
            c[0],
            "Umroh Maret Hemat (UMR_MAR_2025_HEMAT)\nPrice: Rp 25000000\nDeparture date: 2025-03-15\nInclusions: visa, hotel\nNine days."
        );
        let summary = package_summary("Umroh Maret Hemat", "Nine days.\n\nMore.", Some(&fields));
        assert_eq!(
            summary,
            "Umroh Maret Hemat\nPrice: Rp 25000000\nDeparture date: 2025-03-15\nNine days."
        );
    }

    #[test]
    fn markdown_splits_on_headings_with_the_path_prefixed() {
        let md = "Intro line.\n\n# Refunds\n\n## Before departure\nFull refund.\n\n## After\nNone.\n```\n# not a heading\n```\n";
        let c = chunks("markdown", "policy", "Policy", md, None);
        assert_eq!(c[0], "Policy\nIntro line.");
        assert_eq!(c[1], "Policy > Refunds > Before departure\nFull refund.");
        assert!(c[2].starts_with("Policy > Refunds > After\nNone."), "{c:?}");
        assert!(c[2].contains("# not a heading"));
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn long_sections_become_several_bounded_chunks() {
        let para = "Word ".repeat(150);
        let md = format!("## Long\n{para}\n\n{para}\n\n{}", "x".repeat(2000));
        let c = chunks("text", "t", "T", &md, None);
        assert!(c.len() >= 4, "{}", c.len());
        for chunk in &c {
            assert!(chunk.starts_with("T > Long\n"));
            assert!(chunk.chars().count() <= CHUNK_CHARS + 20, "{}", chunk.len());
        }
        assert_eq!(
            chunks("text", "t", "Only title", "", None),
            vec!["Only title"]
        );
        let md = "# Policy\n\n## Refunds\nFull refund.";
        assert_eq!(
            chunks("markdown", "p", "Policy", md, None),
            vec!["Policy > Refunds\nFull refund."]
        );
    }

    #[test]
    fn slugs_and_faq_markdown() {
        assert_eq!(
            slug("Kebijakan Refund & Pembatalan — 2025!"),
            "kebijakan-refund-pembatalan-2025"
        );
        assert_eq!(slug("Ümrah Café"), "umrah-cafe");
        assert_eq!(slug("!!!"), "doc");
        let md = "# FAQ\n\n## Payment\n\n### How much is the DP?\nRp 5.000.000.\n\n### Can I pay by card?\nYes.\n";
        assert_eq!(
            faq_pairs(md),
            vec![
                (
                    "How much is the DP?".to_string(),
                    "Rp 5.000.000.".to_string()
                ),
                ("Can I pay by card?".to_string(), "Yes.".to_string())
            ]
        );
        assert_eq!(first_h1(md).as_deref(), Some("FAQ"));
    }
}
