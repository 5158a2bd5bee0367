//! Queries, one module per aggregate. Every function here is synchronous and takes a
//! `&mut DbConn`: callers run them through [`crate::db::Db::run`] (blocking pool) or
//! inside the writer's transaction, never on an actor thread.
//!
//! Row structs mirror tables; insert forms (`New…`) carry only what an insert sets.

pub mod accounts;
pub mod agent_hours;
pub mod audit;
pub mod automations;
pub mod broadcasts;
pub mod consent;
pub mod contacts;
pub mod conversations;
pub mod knowledge;
pub mod leads;
pub mod messages;
pub mod numbers;
pub mod outbox;
pub mod pipeline;
pub mod segments;
pub mod tags;
pub mod team_cache;
pub mod templates;
pub mod whatsapp;
pub mod widget_settings;

diesel::define_sql_function! {
    /// SQL `lower()` on text; both backends have it.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

diesel::define_sql_function! {
    /// SQL `lower()` on nullable text.
    #[sql_name = "lower"]
    fn lower_opt(x: diesel::sql_types::Nullable<diesel::sql_types::Text>) -> diesel::sql_types::Nullable<diesel::sql_types::Text>;
}

/// Builds a `LIKE` pattern matching `needle` anywhere, with `%`, `_` and `\` escaped
/// (use with `.escape('\\')`), lower-cased for case-insensitive matching.
pub fn contains_pattern(needle: &str) -> String {
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('%');
    for ch in needle.to_lowercase().chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(contains_pattern("50%_Off\\"), "%50\\%\\_off\\\\%");
    }
}
