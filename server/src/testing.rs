//! Fixtures for the crate's unit tests: scratch databases on either backend (a
//! temporary SQLite file, or a fresh PostgreSQL database dropped afterwards) and a team
//! with a conversation in them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use diesel::{Connection, RunQueryDsl};

use crate::config::{Config, DatabaseTarget, Secret};
use crate::db::Db;
use crate::store::{accounts, conversations};

/// Keeps a test database alive while held.
pub enum Scratch {
    /// The temporary directory holding the SQLite file.
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    /// A PostgreSQL database, dropped with this value.
    Postgres {
        /// URL of the server's admin database.
        admin: String,
        /// The scratch database's name.
        name: String,
    },
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Scratch::Postgres { admin, name } = self {
            if let Ok(mut c) = diesel::PgConnection::establish(admin) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut c);
            }
        }
    }
}

fn open(database: DatabaseTarget) -> Db {
    Db::open(&Config {
        database,
        ..Config::default()
    })
    .unwrap()
}

/// A migrated SQLite database in a temporary directory.
pub fn sqlite() -> (Scratch, Db) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db").to_string_lossy().into_owned();
    let db = open(DatabaseTarget::Sqlite { path });
    (Scratch::Sqlite(dir), db)
}

/// A fresh, migrated PostgreSQL database on `SWITCHBOARD_TEST_PG_URL` (default
/// `postgres://postgres@127.0.0.1:5432/test`), or `None` with a notice when the
/// server does not answer — a panic instead when `SWITCHBOARD_TEST_REQUIRE_PG=1`.
pub fn postgres() -> Option<(Scratch, Db)> {
    let admin = std::env::var("SWITCHBOARD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut c = match diesel::PgConnection::establish(&admin) {
        Ok(c) => c,
        Err(e) if std::env::var("SWITCHBOARD_TEST_REQUIRE_PG").is_ok_and(|v| v == "1") => {
            panic!("PostgreSQL required but unreachable: {e}")
        }
        Err(e) => {
            eprintln!("skipping PostgreSQL variant: {e}");
            return None;
        }
    };
    let name = format!("sbu_{}", uuid::Uuid::now_v7().simple());
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .unwrap();
    let base = admin
        .rsplit_once('/')
        .map_or(admin.clone(), |(b, _)| b.to_string());
    let scratch = Scratch::Postgres {
        admin,
        name: name.clone(),
    };
    let db = open(DatabaseTarget::Postgres {
        url: Secret::new(format!("{base}/{name}")),
    });
    Some((scratch, db))
}

/// A new team (`slug`) and a widget conversation in it: `(team_id, conversation_id)`.
pub fn team_and_conversation(db: &Db, slug: &str) -> (String, String) {
    let mut c = db.conn().unwrap();
    let team = accounts::create_team(&mut c, slug, slug).unwrap();
    let conv = conversations::create_with_contact(
        &mut c,
        conversations::NewGuestConversation {
            team_id: team.id.clone(),
            channel: "widget".into(),
            ..Default::default()
        },
    )
    .unwrap();
    (team.id, conv.id)
}
