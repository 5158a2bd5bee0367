//! Hand-written statements that stay prepared on their connection.
//!
//! Why: diesel never caches a `sql_query` (it cannot know the text is fixed), so
//! each run of one is parsed, analysed and planned again. A profile of the webhook
//! bench on PostgreSQL (`docs/performance.md`) put planning, parsing and analysis
//! at a fifth of the machine's CPU, most of it for the hot path's few hand-written
//! statements: the writer's batch append and the pipeline's claim. Their text is
//! fixed (array binds keep it the same for any batch size), so [`Prepared`] tells
//! diesel it is safe to cache: the statement is prepared once per connection, and
//! PostgreSQL can move to a generic plan after its first five runs.
//!
//! On SQLite the same holds for UPDATEs: diesel never caches one (a changeset may
//! skip `None` fields, so its text can vary), and the writer's per-conversation
//! seq bump was parsed and planned again in every batch ([`PreparedSqlite`]).
//!
//! The SQL keeps PostgreSQL's `$n` placeholders on both backends; a placeholder may
//! appear more than once (each occurrence is bound again with the same value, since
//! diesel numbers binds in the order they are pushed; on SQLite each becomes a `?`).
//! Dollar-quoted strings are not supported.

use std::borrow::Cow;
use std::marker::PhantomData;

use diesel::backend::Backend;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};
use diesel::sqlite::Sqlite;
use diesel::{QueryResult, RunQueryDsl};

/// A fixed SQL text with typed binds, run through diesel's prepared-statement
/// cache (keyed by the text and the bind types). Results load into
/// `QueryableByName` structs like a `sql_query`'s. Use it through [`Prepared`]
/// (PostgreSQL) or [`PreparedSqlite`].
pub struct PreparedFor<'f, DB: Backend> {
    sql: Cow<'f, str>,
    binds: Vec<Box<dyn Bind<DB> + 'f>>,
}

/// A cached hand-written PostgreSQL statement.
pub type Prepared<'f> = PreparedFor<'f, Pg>;

/// A cached hand-written SQLite statement.
pub type PreparedSqlite<'f> = PreparedFor<'f, Sqlite>;

/// One bound value.
trait Bind<DB: Backend> {
    fn push<'b>(&'b self, out: &mut AstPass<'_, 'b, DB>) -> QueryResult<()>;
}

struct TypedBind<ST, U> {
    value: U,
    sql_type: PhantomData<ST>,
}

impl<ST, U, DB> Bind<DB> for TypedBind<ST, U>
where
    DB: Backend + HasSqlType<ST>,
    U: ToSql<ST, DB>,
{
    fn push<'b>(&'b self, out: &mut AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_bind_param::<ST, U>(&self.value)
    }
}

impl<'f, DB: Backend> PreparedFor<'f, DB> {
    /// The statement `sql`, whose placeholders `$1…$n` are bound, in order, by
    /// the calls to [`PreparedFor::bind`].
    pub fn new(sql: impl Into<Cow<'f, str>>) -> Self {
        Self {
            sql: sql.into(),
            binds: Vec::new(),
        }
    }

    /// Binds the next placeholder (`$1` first) to `value` as SQL type `ST`.
    pub fn bind<ST, U>(mut self, value: U) -> Self
    where
        DB: HasSqlType<ST>,
        U: ToSql<ST, DB> + 'f,
        ST: 'f,
    {
        self.binds.push(Box::new(TypedBind {
            value,
            sql_type: PhantomData::<ST>,
        }));
        self
    }
}

/// Splits `sql` at its `$n` placeholders: the text before each, and `n`.
fn placeholders(sql: &str) -> impl Iterator<Item = (&str, Option<usize>)> {
    let mut rest = sql;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let Some(at) = rest.find('$') else {
            let text = rest;
            rest = "";
            return Some((text, None));
        };
        let digits = rest[at + 1..]
            .find(|ch: char| !ch.is_ascii_digit())
            .map_or(rest.len() - at - 1, |n| n);
        if digits == 0 {
            // Not a placeholder: the `$` stays in the text.
            let text = &rest[..=at];
            rest = &rest[at + 1..];
            return Some((text, None));
        }
        let text = &rest[..at];
        let number = rest[at + 1..at + 1 + digits].parse().ok();
        rest = &rest[at + 1 + digits..];
        Some((text, number))
    })
}

impl<DB: Backend> QueryFragment<DB> for PreparedFor<'_, DB> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        for (text, number) in placeholders(&self.sql) {
            out.push_sql(text);
            let Some(n) = number else { continue };
            let bind = n
                .checked_sub(1)
                .and_then(|i| self.binds.get(i))
                .ok_or_else(|| {
                    diesel::result::Error::QueryBuilderError(
                        format!("placeholder ${n} has no bind").into(),
                    )
                })?;
            bind.push(&mut out)?;
        }
        Ok(())
    }
}

impl<DB: Backend> QueryId for PreparedFor<'_, DB> {
    type QueryId = ();
    // Not one statement per type: diesel then keys its cache by the SQL text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB: Backend> Query for PreparedFor<'_, DB> {
    type SqlType = Untyped;
}

impl<Conn, DB: Backend> RunQueryDsl<Conn> for PreparedFor<'_, DB> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_split_the_text_and_may_repeat() {
        let parts: Vec<_> =
            placeholders("SELECT $1::text[], x FROM t WHERE a = $12 OR b = $1").collect();
        assert_eq!(
            parts,
            vec![
                ("SELECT ", Some(1)),
                ("::text[], x FROM t WHERE a = ", Some(12)),
                (" OR b = ", Some(1)),
            ]
        );
        let parts: Vec<_> = placeholders("SELECT 1").collect();
        assert_eq!(parts, vec![("SELECT 1", None)]);
        // A `$` without digits is left to PostgreSQL, which refuses it.
        let parts: Vec<_> = placeholders("a $ b").collect();
        assert_eq!(parts, vec![("a $", None), (" b", None)]);
    }
}
