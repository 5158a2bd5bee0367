//! Unit tests of the audit log: redaction, action names, filters and paging on both
//! backends, and the table refusing changes.

#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;
use crate::db::Db;
use crate::testing;

#[test]
fn secrets_are_redacted_at_any_depth_and_nothing_else() {
    let state = json!({
        "email": "a@example.com",
        "Password": "hunter2hunter2",
        "password_hash": "$argon2id$...",
        "max_tokens": 400,
        "token_epoch": 3,
        "whatsapp": {"app_secret": "s3cr3t", "verify_token": "vt", "phone": "+62"},
        "keys": [{"api_key": "sk-1", "name": "first"}, {"API_KEY": "sk-2"}],
        "client_secret": null,
    });
    let r = redact(state);
    assert_eq!(r["email"], "a@example.com");
    assert_eq!(r["Password"], REDACTED);
    assert_eq!(r["password_hash"], REDACTED);
    assert_eq!(r["max_tokens"], 400, "not a secret");
    assert_eq!(r["token_epoch"], 3, "not a secret");
    assert_eq!(r["whatsapp"]["app_secret"], REDACTED);
    assert_eq!(r["whatsapp"]["verify_token"], REDACTED);
    assert_eq!(r["whatsapp"]["phone"], "+62");
    assert_eq!(r["keys"][0]["api_key"], REDACTED);
    assert_eq!(r["keys"][0]["name"], "first");
    assert_eq!(r["keys"][1]["API_KEY"], REDACTED);
    assert_eq!(
        r["client_secret"],
        Value::Null,
        "an unset secret stays null"
    );
    let text = r.to_string();
    for secret in ["hunter2", "argon2", "s3cr3t", "sk-1", "sk-2", "\"vt\""] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

#[test]
fn actions_round_trip_and_filters_are_checked() {
    for a in AuditAction::ALL {
        assert_eq!(AuditAction::parse(a.as_str()).unwrap(), *a);
    }
    assert!(AuditAction::parse("agent.deleted").is_err());
    assert_eq!(
        action_match("agent.").unwrap(),
        ActionMatch::Prefix("agent.".into())
    );
    assert_eq!(
        action_match("auth.login").unwrap(),
        ActionMatch::Exact("auth.login")
    );
    assert!(action_match("agent").is_err(), "an area needs its dot");
    assert!(action_match("nothing.").is_err());
    assert!(action_match("%.").is_err());
}

fn actor(id: &str) -> AuditActor {
    AuditActor {
        id: Some(id.into()),
        label: format!("{id}@example.com"),
        ip: Some("203.0.113.7".into()),
    }
}

fn ids(page: &AuditPage) -> Vec<String> {
    page.entries.iter().map(|e| e.id.clone()).collect()
}

/// Five entries at fixed times (two share a millisecond), then every filter.
fn filters_and_paging(db: &Db) {
    let mut c = db.conn().unwrap();
    let (alice, bob) = (actor("alice"), actor("bob"));
    let mut written = Vec::new();
    let entries = [
        (
            1_000,
            AuditEntry::new(&alice, AuditAction::Login).target("agent", "alice"),
        ),
        (
            2_000,
            AuditEntry::new(&alice, AuditAction::AgentUpdated)
                .target("agent", "bob")
                .before(json!({"name": "Bob", "password": "old-secret"}))
                .after(json!({"name": "Robert", "password": "new-secret"})),
        ),
        (
            2_000,
            AuditEntry::new(&alice, AuditAction::AgentTokensRevoked).target("agent", "bob"),
        ),
        (
            3_000,
            AuditEntry::new(&bob, AuditAction::WidgetSettingsChanged).team("t1"),
        ),
        (
            4_000,
            AuditEntry::new(
                &AuditActor {
                    id: None,
                    label: "x".repeat(1000),
                    ip: None,
                },
                AuditAction::LoginFailed,
            ),
        ),
    ];
    for (at, e) in &entries {
        written.push(record(&mut c, e, *at).unwrap());
    }
    let all = list(&mut c, &AuditFilter::default()).unwrap();
    assert_eq!(all.entries.len(), 5);
    assert_eq!(all.next_before, None);
    assert_eq!(all.entries[0].action, "auth.login_failed", "newest first");
    assert_eq!(all.entries[0].actor_id, None);
    assert_eq!(all.entries[0].actor_label.chars().count(), 254);
    assert_eq!(all.entries[4].at, "1970-01-01T00:00:01.000Z");

    let updated = all
        .entries
        .iter()
        .find(|e| e.action == "agent.updated")
        .unwrap();
    assert_eq!(updated.before.as_ref().unwrap()["name"], "Bob");
    assert_eq!(updated.after.as_ref().unwrap()["name"], "Robert");
    assert_eq!(updated.after.as_ref().unwrap()["password"], REDACTED);
    assert_eq!(updated.ip.as_deref(), Some("203.0.113.7"));
    let stored: Vec<Option<String>> = audit_log::table
        .select(audit_log::after)
        .load(&mut **c)
        .unwrap();
    assert!(
        stored.iter().flatten().all(|s| !s.contains("new-secret")),
        "the secret never reaches the table"
    );

    let by = |f: AuditFilter| list(&mut db.conn().unwrap(), &f).unwrap();
    let bobs = by(AuditFilter {
        actor_id: Some("bob".into()),
        ..Default::default()
    });
    assert_eq!(ids(&bobs), vec![written[3].clone()]);
    let agent_area = by(AuditFilter {
        action: Some("agent.".into()),
        ..Default::default()
    });
    assert_eq!(agent_area.entries.len(), 2);
    let exact = by(AuditFilter {
        action: Some("auth.login".into()),
        ..Default::default()
    });
    assert_eq!(
        ids(&exact),
        vec![written[0].clone()],
        "exact, not a prefix of login_failed"
    );
    let target = by(AuditFilter {
        target_id: Some("bob".into()),
        ..Default::default()
    });
    assert_eq!(target.entries.len(), 2);
    let team = by(AuditFilter {
        team_id: Some("t1".into()),
        ..Default::default()
    });
    assert_eq!(ids(&team), vec![written[3].clone()]);
    let window = by(AuditFilter {
        since: Some(2_000),
        until: Some(4_000),
        ..Default::default()
    });
    assert_eq!(window.entries.len(), 3, "since inclusive, until exclusive");

    // Pages of two, across the two entries sharing a millisecond: each entry once.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = by(AuditFilter {
            limit: Some(2),
            before: cursor.clone(),
            ..Default::default()
        });
        assert!(page.entries.len() <= 2);
        seen.extend(ids(&page));
        match page.next_before {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ids(&all));

    let bad = |f: AuditFilter| list(&mut db.conn().unwrap(), &f).unwrap_err();
    assert!(matches!(
        bad(AuditFilter {
            limit: Some(201),
            ..Default::default()
        }),
        AppError::Validation(_)
    ));
    assert!(matches!(
        bad(AuditFilter {
            limit: Some(0),
            ..Default::default()
        }),
        AppError::Validation(_)
    ));
    assert!(matches!(
        bad(AuditFilter {
            before: Some("nope".into()),
            ..Default::default()
        }),
        AppError::Validation(_)
    ));
    assert!(matches!(
        bad(AuditFilter {
            action: Some("nope".into()),
            ..Default::default()
        }),
        AppError::Validation(_)
    ));
}

/// The table refuses changes to entries, whatever code asks.
fn append_only(db: &Db) {
    let mut c = db.conn().unwrap();
    let id = record(&mut c, &AuditEntry::new(&actor("a"), AuditAction::Login), 1).unwrap();
    let update = diesel::update(audit_log::table.find(&id))
        .set(audit_log::action.eq("auth.logout"))
        .execute(&mut **c);
    assert!(update.is_err(), "an update is refused");
    let delete = diesel::delete(audit_log::table.find(&id)).execute(&mut **c);
    assert!(delete.is_err(), "a delete is refused");
    let page = list(&mut c, &AuditFilter::default()).unwrap();
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].action, "auth.login");
}

/// An entry shares the fate of its change: written in one transaction with a store
/// function that opens its own (`write_transaction` nests as a savepoint), it is
/// rolled back with it and committed with it.
fn shares_the_change_transaction(db: &Db) {
    use crate::db::schema::settings;
    use crate::db::write_transaction;
    let mut c = db.conn().unwrap();
    let change = |c: &mut DbConn, key: &str, fail: bool| {
        write_transaction(c, |c| {
            write_transaction(c, |c| {
                diesel::insert_into(settings::table)
                    .values((settings::key.eq(key), settings::value.eq("v")))
                    .execute(c)
                    .map_err(AppError::from)
            })?;
            let entry = AuditEntry::new(&actor("a"), AuditAction::WidgetSettingsChanged);
            record(c, &entry, 5)?;
            if fail {
                return Err(AppError::Conflict("refused after the entry".into()));
            }
            Ok(())
        })
    };
    assert!(change(&mut c, "audit-test-failed", true).is_err());
    assert!(list(&mut c, &AuditFilter::default())
        .unwrap()
        .entries
        .is_empty());
    let kept: i64 = settings::table
        .filter(settings::key.eq("audit-test-failed"))
        .count()
        .get_result(&mut **c)
        .unwrap();
    assert_eq!(kept, 0, "the change went with its entry");
    change(&mut c, "audit-test-kept", false).unwrap();
    assert_eq!(
        list(&mut c, &AuditFilter::default()).unwrap().entries.len(),
        1
    );
}

#[test]
fn filters_and_paging_sqlite() {
    let (_keep, db) = testing::sqlite();
    filters_and_paging(&db);
    let (_keep2, db2) = testing::sqlite();
    append_only(&db2);
    let (_keep3, db3) = testing::sqlite();
    shares_the_change_transaction(&db3);
}

#[test]
fn filters_and_paging_postgres() {
    let Some((_keep, db)) = testing::postgres() else {
        return;
    };
    filters_and_paging(&db);
    let Some((_keep2, db2)) = testing::postgres() else {
        return;
    };
    append_only(&db2);
    let Some((_keep3, db3)) = testing::postgres() else {
        return;
    };
    shares_the_change_transaction(&db3);
}
