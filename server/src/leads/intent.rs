//! Intent detection: which of a team's intent rules a message triggers.
//!
//! Matching is on whole words (or whole phrases), case- and accent-insensitive:
//! both the message and the keywords are Unicode-decomposed (NFKD), stripped of
//! combining marks and lower-cased, then each rule's keywords become one regex with
//! Unicode word boundaries (`\b`). So "Cara BAYAR?" matches "cara bayar", "prïce"
//! matches "price", but "booking" does not match "book" and "priceless" does not
//! match "price" (no substring soup). Links are not words: a message's URLs
//! (`http(s)://…`, `www.…`, and bare domains with a path such as
//! `example.com/pricing`) are removed before matching ([`fold_message`]), so a
//! pasted link never fires a rule.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use parking_lot::Mutex;
use regex::Regex;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

use super::config::IntentRule;

/// Lower-cases `text` and removes accents (NFKD, combining marks dropped), and
/// collapses runs of whitespace into one space.
pub fn fold(text: &str) -> String {
    let stripped: String = text
        .nfkd()
        .filter(|c| !is_combining_mark(*c))
        .collect::<String>()
        .to_lowercase();
    stripped.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Removes the links of `text` (each replaced by a space): `http://` and
/// `https://` URLs, `www.` addresses and bare domains followed by a path
/// (`shop.example.co.id/pricing`). A bare domain without a path stays: it reads like
/// a word with a dot ("node.js").
pub fn strip_links(text: &str) -> std::borrow::Cow<'_, str> {
    // A literal pattern: `Regex::new` only fails on a malformed pattern, which the
    // unit tests would catch.
    #[allow(clippy::expect_used)]
    static LINK: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?i)(?:\b(?:https?://|www\.)|\b[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\.[a-z]{2,}/)[^\s<>]*",
        )
        .expect("link pattern")
    });
    LINK.replace_all(text, " ")
}

/// A message as keyword matching reads it: links removed ([`strip_links`]), then
/// [`fold`]ed.
pub fn fold_message(text: &str) -> String {
    fold(&strip_links(text))
}

/// One regex that finds any of `keywords` in a [`fold`]ed text, on whole words or
/// phrases (see the module docs); `None` when no keyword is usable.
pub fn keyword_regex<S: AsRef<str>>(keywords: &[S]) -> Option<Regex> {
    let alternatives: Vec<String> = keywords
        .iter()
        .map(|k| fold(k.as_ref()))
        .filter(|k| !k.is_empty())
        .map(|k| {
            // Words of a phrase may be separated by any whitespace.
            k.split(' ')
                .map(regex::escape)
                .collect::<Vec<_>>()
                .join(r"\s+")
        })
        .collect();
    if alternatives.is_empty() {
        return None;
    }
    // `\b` only works next to word characters; a keyword that starts or ends with
    // punctuation gets a "not a letter or digit" guard instead.
    let pattern = format!(
        r"(?:^|[^\p{{L}}\p{{N}}_])(?:{})(?:$|[^\p{{L}}\p{{N}}_])",
        alternatives.join("|")
    );
    Regex::new(&pattern).ok()
}

/// A compiled rule set: one regex per rule, in rule order.
#[derive(Debug)]
pub struct Matcher {
    rules: Vec<(IntentRule, Regex)>,
}

/// Compiled rule sets by their rules' JSON. Lead bookkeeping runs after every
/// message and would otherwise compile the team's regexes each time (a tenth of
/// the hub's CPU per message in `docs/performance.md`); a changed rule set has a
/// new key. Bounded: cleared when it holds [`CACHE_MAX`] sets.
static CACHE: LazyLock<Mutex<HashMap<String, Arc<Matcher>>>> = LazyLock::new(Default::default);
const CACHE_MAX: usize = 256;

impl Matcher {
    /// The compiled form of `rules`, compiled once per distinct rule set.
    pub fn cached(rules: &[IntentRule]) -> Arc<Self> {
        let Ok(key) = serde_json::to_string(rules) else {
            return Arc::new(Self::new(rules));
        };
        if let Some(m) = CACHE.lock().get(&key) {
            return m.clone();
        }
        let compiled = Arc::new(Self::new(rules));
        let mut cache = CACHE.lock();
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(key, compiled.clone());
        compiled
    }

    /// Compiles `rules`. Rules without usable keywords are skipped.
    pub fn new(rules: &[IntentRule]) -> Self {
        let compiled = rules
            .iter()
            .filter_map(|rule| keyword_regex(&rule.keywords).map(|re| (rule.clone(), re)))
            .collect();
        Self { rules: compiled }
    }

    /// The rules `text` triggers, in rule order (each rule at most once); words
    /// inside links do not count ([`fold_message`]).
    pub fn matches(&self, text: &str) -> Vec<&IntentRule> {
        let folded = fold_message(text);
        self.rules
            .iter()
            .filter(|(_, re)| re.is_match(&folded))
            .map(|(rule, _)| rule)
            .collect()
    }
}

/// An email address and an international phone number (`+` and country code,
/// normalised to E.164) found in a message, for progressive engagement.
pub fn contact_details(text: &str) -> (Option<String>, Option<String>) {
    // Literal patterns: `Regex::new` only fails on a malformed pattern, which the
    // unit test below would catch.
    #[allow(clippy::expect_used)]
    static EMAIL: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
        Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}").expect("email pattern")
    });
    #[allow(clippy::expect_used)]
    static PHONE: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
        Regex::new(r"\+[0-9][0-9 ().-]{6,20}[0-9]").expect("phone pattern")
    });
    let email = EMAIL
        .find(text)
        .map(|m| m.as_str().to_lowercase())
        .filter(|e| e.len() <= 254);
    let phone = PHONE
        .find(text)
        .and_then(|m| crate::channels::phone::normalise(m.as_str()))
        .and_then(|(_, e164)| e164);
    (email, phone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leads::config::default_rules;

    fn intents(text: &str) -> Vec<String> {
        let m = Matcher::new(&default_rules());
        let mut v: Vec<String> = m.matches(text).iter().map(|r| r.intent.clone()).collect();
        v.dedup();
        v
    }

    #[test]
    fn cached_matchers_are_shared_per_rule_set() {
        let rules = default_rules();
        let a = Matcher::cached(&rules);
        let b = Matcher::cached(&rules);
        assert!(Arc::ptr_eq(&a, &b));
        let fewer = &rules[..1];
        let c = Matcher::cached(fewer);
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(c.rules.len(), Matcher::new(fewer).rules.len());
    }

    #[test]
    fn english_and_indonesian_defaults() {
        assert_eq!(intents("How much is the March package?"), ["pricing"]);
        assert_eq!(intents("I want to book for 2 people"), ["booking"]);
        assert_eq!(intents("cara bayar?"), ["payment"]);
        assert_eq!(intents("DP berapa ya kak"), ["payment"]);
        assert_eq!(intents("Saya mau daftar"), ["payment"]);
        assert_eq!(intents("berapa harganya? harga paket"), ["pricing"]);
        assert_eq!(intents("I need help please"), ["help"]);
        assert!(intents("Assalamualaikum, selamat pagi").is_empty());
    }

    #[test]
    fn case_and_accents_do_not_matter() {
        assert_eq!(intents("CARA BAYAR"), ["payment"]);
        assert_eq!(intents("What is the prícé?"), ["pricing"]);
        assert_eq!(intents("Cara\tbayar"), ["payment"]);
        assert_eq!(fold("Ça  VA  Été"), "ca va ete");
    }

    #[test]
    fn whole_words_only() {
        // "price" inside "priceless", "book" inside "facebook", "dp" inside "adp".
        assert!(intents("a priceless view").is_empty());
        assert!(intents("found you on facebook").is_empty());
        assert!(intents("adp payroll").is_empty());
        assert!(intents("helpful staff").is_empty());
        assert_eq!(intents("price?"), ["pricing"]);
        assert_eq!(intents("(book)"), ["booking"]);
    }

    #[test]
    fn words_inside_links_do_not_count() {
        assert_eq!(fold_message("see https://example.com/pricing?x=1"), "see");
        assert!(intents("see https://example.com/pricing?x=1").is_empty());
        assert!(intents("http://shop.example.com/book-now").is_empty());
        assert!(intents("www.example.com/price").is_empty());
        assert!(intents("example.co.id/harga/paket").is_empty());
        assert!(intents("my friend sent me tours.example.com/help").is_empty());
        // The words around a link still count.
        assert_eq!(
            intents("What is the price on https://example.com/x ?"),
            ["pricing"]
        );
        assert_eq!(intents("(https://example.com/a) price?"), ["pricing"]);
        // A bare domain without a path is left alone; so are ordinary dotted words.
        assert_eq!(
            strip_links("see example.com today"),
            "see example.com today"
        );
        assert_eq!(strip_links("price: 5.000/pax"), "price: 5.000/pax");
        assert_eq!(
            fold_message("Go to HTTPS://Ex.com/Pricing now"),
            "go to now"
        );
    }

    #[test]
    fn finds_contact_details() {
        assert_eq!(
            contact_details("sure: Budi.S@Example.co.id, wa +62 812-3456-7890"),
            (
                Some("budi.s@example.co.id".into()),
                Some("+6281234567890".into())
            )
        );
        assert_eq!(contact_details("call me tomorrow at 10"), (None, None));
    }

    #[test]
    fn several_intents_in_rule_order() {
        let v = intents("how much, and cara bayar?");
        assert!(v.contains(&"pricing".to_string()) && v.contains(&"payment".to_string()));
    }
}
