//! First-start setup, safe to run on every start and on several nodes at once:
//! the token-signing secret, the default team, and the first admin.

use std::io::Write;

use rand::distr::{Alphanumeric, SampleString};

use crate::auth::hash_password;
use crate::config::{Config, Secret};
use crate::db::Db;
use crate::error::AppError;
use crate::model::Role;
use crate::store::accounts::{self, CreateAgent};

/// Settings key of the generated token-signing secret.
pub const SECRET_SETTING: &str = "token_secret";
/// Settings key of the default team's id.
pub const DEFAULT_TEAM_SETTING: &str = "default_team_id";

/// What the rest of start-up needs from bootstrap.
#[derive(Debug)]
pub struct Bootstrapped {
    /// Key for signing tokens.
    pub secret: Secret,
    /// Id of the team new agents and widget sessions land in by default.
    pub default_team_id: String,
}

/// Runs first-start setup. Blocking (database and argon2): call on a blocking thread.
///
/// # Errors
/// [`AppError::Unavailable`] when the database is down; database errors.
pub fn run(db: &Db, config: &Config) -> Result<Bootstrapped, AppError> {
    let mut conn = db.conn()?;
    let c = &mut **conn;
    let secret = match &config.secret {
        Some(s) => s.clone(),
        None => {
            let fresh = Alphanumeric.sample_string(&mut rand::rng(), 48);
            Secret::new(accounts::get_or_init_setting(c, SECRET_SETTING, &fresh)?)
        }
    };
    let default_team_id = match accounts::get_setting(c, DEFAULT_TEAM_SETTING)? {
        Some(id) => id,
        None => {
            let team = match accounts::create_team(c, "Support", "default") {
                Ok(team) => team.id,
                Err(AppError::Conflict(_)) => accounts::team_by_slug(c, "default")?.id,
                Err(e) => return Err(e),
            };
            accounts::get_or_init_setting(c, DEFAULT_TEAM_SETTING, &team)?
        }
    };
    if accounts::count_agents(c)? == 0 {
        let (password, generated) = match &config.admin_password {
            Some(p) => (p.expose().to_string(), false),
            None => (Alphanumeric.sample_string(&mut rand::rng(), 20), true),
        };
        let created = accounts::create_agent(
            c,
            CreateAgent {
                email: config.admin_email.clone(),
                name: "Admin".into(),
                password_hash: hash_password(&password)?,
                role: Role::Admin,
                team_ids: vec![default_team_id.clone()],
            },
        );
        match created {
            Ok(admin) => {
                tracing::info!(email = %admin.email, "created the first admin");
                if generated {
                    // Shown once, on stderr and outside the log stream on purpose: a
                    // password must not end up in log storage, but the person starting
                    // the hub for the first time needs to see it.
                    let _ = writeln!(
                        std::io::stderr(),
                        "\n  Switchboard admin account created\n    email:    {}\n    password: {}\n  (shown once; set SWITCHBOARD_ADMIN_PASSWORD to choose it)\n",
                        admin.email, password
                    );
                }
            }
            // Another node created it first.
            Err(AppError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Bootstrapped {
        secret,
        default_team_id,
    })
}
