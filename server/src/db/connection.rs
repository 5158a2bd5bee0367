//! The connection enum over both backends. Kept apart because
//! `#[derive(diesel::MultiConnection)]` generates public items (the `MultiBackend`
//! type and its helpers) that carry no documentation of their own.
#![allow(missing_docs)]

/// A connection to either backend. Match on it only for backend-specific
/// administration (pragmas, advisory locks, migrations); queries use it directly.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    /// PostgreSQL (`DATABASE_URL=postgres://…`).
    Postgresql(diesel::PgConnection),
    /// SQLite file (the embedded default).
    Sqlite(diesel::SqliteConnection),
}
