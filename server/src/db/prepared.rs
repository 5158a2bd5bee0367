//! Hand-written PostgreSQL statements that stay prepared on their connection.
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
//! The SQL keeps PostgreSQL's `$n` placeholders; a placeholder may appear more than
//! once (each occurrence is bound again with the same value, since diesel numbers
//! binds in the order they are pushed). Dollar-quoted strings are not supported.

use std::borrow::Cow;
use std::marker::PhantomData;

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};
use diesel::{QueryResult, RunQueryDsl};

/// A fixed SQL text with typed binds, run through diesel's prepared-statement
/// cache (keyed by the text and the bind types). Results load into
/// `QueryableByName` structs like a `sql_query`'s.
pub struct Prepared<'f> {
    sql: Cow<'f, str>,
    binds: Vec<Box<dyn PgBind + 'f>>,
}

/// One bound value.
trait PgBind {
    fn push<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()>;
}

struct TypedBind<ST, U> {
    value: U,
    sql_type: PhantomData<ST>,
}

impl<ST, U> PgBind for TypedBind<ST, U>
where
    Pg: HasSqlType<ST>,
    U: ToSql<ST, Pg>,
{
    fn push<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_bind_param::<ST, U>(&self.value)
    }
}

impl<'f> Prepared<'f> {
    /// The statement `sql`, whose placeholders `$1…$n` are bound, in order, by
    /// the calls to [`Prepared::bind`].
    pub fn new(sql: impl Into<Cow<'f, str>>) -> Self {
        Self {
            sql: sql.into(),
            binds: Vec::new(),
        }
    }

    /// Binds the next placeholder (`$1` first) to `value` as SQL type `ST`.
    pub fn bind<ST, U>(mut self, value: U) -> Self
    where
        Pg: HasSqlType<ST>,
        U: ToSql<ST, Pg> + 'f,
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

impl QueryFragment<Pg> for Prepared<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
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

impl QueryId for Prepared<'_> {
    type QueryId = ();
    // Not one statement per type: diesel then keys its cache by the SQL text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared<'_> {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for Prepared<'_> {}

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
