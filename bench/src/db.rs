//! The databases of a run: fresh PostgreSQL databases and SQLite files, the raw
//! batched insert rate (the ceiling of durable throughput), and row counts for
//! verifying that every acknowledged message is stored.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

/// Which database a round runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (WAL, `synchronous=NORMAL`).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A database for one process under test.
#[derive(Clone, Debug)]
pub enum Db {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database: its name and URL.
    Postgres {
        /// Database name.
        name: String,
        /// Connection URL.
        url: String,
    },
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

impl Db {
    /// A fresh database named `name`: a file in `dir`, or `CREATE DATABASE` through
    /// `pg_admin` (a URL of an existing database on the server).
    pub fn create(
        backend: Backend,
        name: &str,
        dir: &Path,
        pg_admin: &str,
    ) -> anyhow::Result<Self> {
        match backend {
            Backend::Sqlite => Ok(Db::Sqlite(dir.join(format!("{name}.db")))),
            Backend::Postgres => {
                let mut conn =
                    PgConnection::establish(pg_admin).context("connect to PostgreSQL")?;
                diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)?;
                diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut conn)?;
                let base = pg_admin.rsplit_once('/').map_or(pg_admin, |(b, _)| b);
                Ok(Db::Postgres {
                    name: name.to_string(),
                    url: format!("{base}/{name}"),
                })
            }
        }
    }

    /// `DATABASE_URL` for the hub. PostgreSQL without TLS: libpq's default
    /// (`sslmode=prefer`) would encrypt the hub's loopback connections while the Node
    /// peer's `pg` pool connects in plain TCP, and the comparison needs one transport.
    pub fn hub_url(&self) -> String {
        match self {
            Db::Sqlite(path) => format!("sqlite://{}", path.display()),
            Db::Postgres { url, .. } => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}sslmode=disable")
            }
        }
    }

    /// `DB` for the Socket.IO peer.
    pub fn peer_url(&self) -> String {
        match self {
            Db::Sqlite(path) => format!("sqlite:{}", path.display()),
            Db::Postgres { url, .. } => url.clone(),
        }
    }

    /// Drops a PostgreSQL database (SQLite files go with the run directory).
    pub fn drop_db(&self, pg_admin: &str) {
        if let Db::Postgres { name, .. } = self {
            if let Ok(mut conn) = PgConnection::establish(pg_admin) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn);
            }
        }
    }

    /// `SELECT count(*) … ` of `sql` (which must select one BIGINT named `n`).
    pub fn count(&self, sql: &str) -> anyhow::Result<i64> {
        match self {
            Db::Sqlite(path) => {
                let mut c = SqliteConnection::establish(&path.to_string_lossy())?;
                c.batch_execute("PRAGMA busy_timeout = 5000")?;
                Ok(diesel::sql_query(sql).get_result::<Count>(&mut c)?.n)
            }
            Db::Postgres { url, .. } => {
                let mut c = PgConnection::establish(url)?;
                Ok(diesel::sql_query(sql).get_result::<Count>(&mut c)?.n)
            }
        }
    }

    /// Runs `sql` (statements separated by `;`) on the database, as a setup step.
    pub fn batch(&self, sql: &str) -> anyhow::Result<()> {
        match self {
            Db::Sqlite(path) => {
                let mut c = SqliteConnection::establish(&path.to_string_lossy())?;
                c.batch_execute("PRAGMA busy_timeout = 5000")?;
                c.batch_execute(sql)?;
            }
            Db::Postgres { url, .. } => PgConnection::establish(url)?.batch_execute(sql)?,
        }
        Ok(())
    }

    /// Inserts message-shaped rows (same columns and unique indexes as the hub's
    /// `messages`) in transactions of `batch` single-row INSERTs for `duration`,
    /// with `threads` connections (the hub's writer count); returns rows/s.
    pub fn raw_insert_rate(
        &self,
        batch: usize,
        threads: usize,
        duration: Duration,
    ) -> anyhow::Result<f64> {
        let ddl = "CREATE TABLE IF NOT EXISTS raw_messages (
            id TEXT PRIMARY KEY NOT NULL, conversation_id TEXT NOT NULL, seq BIGINT NOT NULL,
            direction TEXT NOT NULL, sender_kind TEXT NOT NULL, sender_id TEXT, sender_name TEXT,
            body TEXT NOT NULL, client_msg_id TEXT, created_at BIGINT NOT NULL);
            CREATE UNIQUE INDEX IF NOT EXISTS raw_conv_seq ON raw_messages (conversation_id, seq);
            CREATE UNIQUE INDEX IF NOT EXISTS raw_sender_cmid ON raw_messages (sender_kind, sender_id, client_msg_id);";
        match self {
            Db::Sqlite(path) => {
                let mut c = SqliteConnection::establish(&path.to_string_lossy())?;
                c.batch_execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;")?;
                c.batch_execute(ddl)?;
            }
            Db::Postgres { .. } => {
                let mut c = PgConnection::establish(&self.hub_url())?;
                c.batch_execute(ddl)?;
            }
        }
        let start = Instant::now();
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let db = self.clone();
                std::thread::spawn(move || db.insert_loop(t, batch, start + duration))
            })
            .collect();
        let mut rows = 0u64;
        for h in handles {
            rows += h
                .join()
                .map_err(|_| anyhow::anyhow!("insert thread panicked"))??;
        }
        Ok(rows as f64 / start.elapsed().as_secs_f64())
    }

    fn insert_loop(&self, thread: usize, batch: usize, until: Instant) -> anyhow::Result<u64> {
        enum C {
            S(SqliteConnection),
            P(PgConnection),
        }
        let mut conn = match self {
            Db::Sqlite(path) => {
                let mut c = SqliteConnection::establish(&path.to_string_lossy())?;
                c.batch_execute("PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;")?;
                C::S(c)
            }
            Db::Postgres { .. } => C::P(PgConnection::establish(&self.hub_url())?),
        };
        let mut n = 0u64;
        let mut sql = String::with_capacity(batch * 300);
        while Instant::now() < until {
            sql.clear();
            sql.push_str("BEGIN;");
            for _ in 0..batch {
                n += 1;
                let conv = n % 1000;
                sql.push_str(&format!(
                    "INSERT INTO raw_messages (id, conversation_id, seq, direction, sender_kind, sender_id, sender_name, body, client_msg_id, created_at) \
                     VALUES ('t{thread}-{n}', 'c{thread}-{conv}', {n}, 'in', 'guest', 'g{thread}-{conv}', 'Visitor', \
                     'bench: the quick brown fox jumps over the lazy dog, again and again', 'm{n}', {n});"
                ));
            }
            sql.push_str("COMMIT;");
            match &mut conn {
                C::S(c) => c.batch_execute(&sql)?,
                C::P(c) => c.batch_execute(&sql)?,
            }
        }
        Ok(n)
    }
}
