//! The results of a run: every number per round under a dotted key, summarised as
//! min / median / max, written as JSON and as a Markdown table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::stats::min_med_max;

/// Numbers per round, by key (`sqlite.latency.5000.switchboard.p99_ms`, …).
#[derive(Default)]
pub struct Record {
    /// Values, one per round in which the key was measured.
    pub samples: BTreeMap<String, Vec<f64>>,
    /// Everything each round measured, as measured.
    pub details: Vec<Value>,
}

impl Record {
    /// Adds one round's value of `key` (nothing when `None`).
    pub fn push(&mut self, key: impl Into<String>, value: Option<f64>) {
        if let Some(v) = value.filter(|v| v.is_finite()) {
            self.samples.entry(key.into()).or_default().push(v);
        }
    }

    /// `(min, median, max)` of `key`.
    pub fn summary(&self, key: &str) -> Option<(f64, f64, f64)> {
        self.samples.get(key).and_then(|v| min_med_max(v))
    }

    /// The JSON document: meta, summaries and per-round details.
    pub fn json(&self, meta: Value, goals: &[Goal]) -> Value {
        let summary: serde_json::Map<String, Value> = self
            .samples
            .iter()
            .map(|(k, v)| {
                let s = min_med_max(v);
                (
                    k.clone(),
                    json!({"rounds": v, "min": s.map(|s| s.0), "median": s.map(|s| s.1), "max": s.map(|s| s.2)}),
                )
            })
            .collect();
        json!({
            "meta": meta,
            "goals": goals.iter().map(|g| g.json(self)).collect::<Vec<_>>(),
            "summary": summary,
            "details": self.details,
        })
    }

    /// The Markdown report: goals first, then every ratio, then every number.
    pub fn markdown(&self, meta: &Value, goals: &[Goal]) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "# Switchboard benchmark {}\n",
            meta["date"].as_str().unwrap_or("")
        );
        let _ = writeln!(md, "Machine: {}\n", meta["machine"].as_str().unwrap_or(""));
        let _ = writeln!(
            md,
            "Rounds: {} (interleaved: ours, peer and ceiling run one after the other in every round; \
             the order alternates). Values: min / **median** / max over rounds; ratios are taken inside \
             one round, then summarised.\n",
            meta["rounds"]
        );
        let _ = writeln!(md, "## Goals\n");
        let _ = writeln!(
            md,
            "| goal | measured (min / median / max) | target | met |"
        );
        let _ = writeln!(md, "|---|---|---|---|");
        for g in goals {
            let (cell, met) = match self.summary(&g.key) {
                Some(s) => (fmt3(s), if g.met(s.1) { "yes" } else { "**no**" }),
                None => ("not measured".to_string(), "—"),
            };
            let _ = writeln!(
                md,
                "| {} | {cell} | {} {} | {met} |",
                g.label,
                if g.at_least { "≥" } else { "≤" },
                fmt(g.target)
            );
        }
        for (title, filter) in [
            ("Ratios (ours / peer, same round)", true),
            ("All numbers", false),
        ] {
            let _ = writeln!(md, "\n## {title}\n");
            let _ = writeln!(md, "| key | min | median | max | rounds |");
            let _ = writeln!(md, "|---|---:|---:|---:|---:|");
            for (k, v) in &self.samples {
                if filter != k.contains("_over_") {
                    continue;
                }
                if let Some((a, b, c)) = min_med_max(v) {
                    let _ = writeln!(
                        md,
                        "| {k} | {} | **{}** | {} | {} |",
                        fmt(a),
                        fmt(b),
                        fmt(c),
                        v.len()
                    );
                }
            }
        }
        md
    }
}

/// One of the goals: the median of `key` compared with `target`.
pub struct Goal {
    /// What it says.
    pub label: String,
    /// The key whose median decides.
    pub key: String,
    /// The threshold.
    pub target: f64,
    /// `true`: median ≥ target; `false`: median ≤ target.
    pub at_least: bool,
}

impl Goal {
    /// Whether `value` meets the goal.
    pub fn met(&self, value: f64) -> bool {
        if self.at_least {
            value >= self.target
        } else {
            value <= self.target
        }
    }

    fn json(&self, r: &Record) -> Value {
        let s = r.summary(&self.key);
        json!({
            "goal": self.label, "key": self.key, "target": self.target,
            "at_least": self.at_least,
            "min": s.map(|s| s.0), "median": s.map(|s| s.1), "max": s.map(|s| s.2),
            "met": s.map(|s| self.met(s.1)),
        })
    }
}

fn fmt3(s: (f64, f64, f64)) -> String {
    format!("{} / **{}** / {}", fmt(s.0), fmt(s.1), fmt(s.2))
}

/// A number with a sensible number of digits.
pub fn fmt(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goals_and_markdown() {
        let mut r = Record::default();
        for v in [1.0, 3.0, 2.0] {
            r.push("sqlite.x_over_y", Some(v));
        }
        r.push("sqlite.skipped", None);
        let goals = [Goal {
            label: "x beats y".into(),
            key: "sqlite.x_over_y".into(),
            target: 1.5,
            at_least: true,
        }];
        assert_eq!(r.summary("sqlite.x_over_y"), Some((1.0, 2.0, 3.0)));
        let md = r.markdown(&json!({"date": "d", "machine": "m", "rounds": 3}), &goals);
        assert!(
            md.contains("| x beats y | 1.000 / **2.000** / 3.000 | ≥ 1.500 | yes |"),
            "{md}"
        );
        assert!(!md.contains("skipped"));
        let j = r.json(json!({}), &goals);
        assert_eq!(j["goals"][0]["met"], true);
    }
}
