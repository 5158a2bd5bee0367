//! Property test of the routing engine over random event sequences (agents joining,
//! leaving, going away; leads arriving; conversations resolving or handed back),
//! driven exactly as the `Router` drives it, against a real SQLite database.
//!
//! Invariants checked after every event:
//! 1. no agent holds more open conversations than its capacity;
//! 2. no conversation is assigned twice (the audit never shows two assignments
//!    without a release in between, and an assigned conversation has one assignee);
//! 3. no eligible agent (online, under capacity) is idle while a lead waits.

use std::collections::HashMap;

use diesel::prelude::*;
use proptest::prelude::*;

use super::engine::{self, PresenceMap};
use super::settings::{self, RoutingUpdate};
use crate::db::schema::{agents, conversations};
use crate::db::DbConn;
use crate::model::{ConversationStatus, Role};
use crate::protocol::PresenceStatus;
use crate::store::{accounts, conversations as convs};

#[derive(Clone, Debug)]
enum Event {
    Online(usize),
    Away(usize),
    Offline(usize),
    Lead,
    Resolve(usize),
    HandBack(usize),
}

fn event(agents: usize) -> impl Strategy<Value = Event> {
    prop_oneof![
        2 => (0..agents).prop_map(Event::Online),
        1 => (0..agents).prop_map(Event::Away),
        1 => (0..agents).prop_map(Event::Offline),
        4 => Just(Event::Lead),
        2 => (0..64usize).prop_map(Event::Resolve),
        1 => (0..64usize).prop_map(Event::HandBack),
    ]
}

struct World {
    _dir: crate::testing::Scratch,
    conn: PooledConn,
    team: String,
    agents: Vec<(String, i64)>,
    presence: PresenceMap,
    now: i64,
}

type PooledConn = crate::db::Conn;

fn world(capacities: &[i64]) -> World {
    let (dir, db) = crate::testing::sqlite();
    let mut conn = db.conn().unwrap();
    let team = accounts::create_team(&mut conn, "T", "t").unwrap().id;
    settings::update(
        &mut conn,
        &team,
        &RoutingUpdate {
            default_capacity: Some(2),
            ..Default::default()
        },
    )
    .unwrap();
    let mut list = Vec::new();
    for (i, cap) in capacities.iter().enumerate() {
        let a = accounts::create_agent(
            &mut conn,
            accounts::CreateAgent {
                email: format!("a{i}@t.test"),
                name: format!("A{i}"),
                password_hash: "x".into(),
                role: Role::Agent,
                team_ids: vec![team.clone()],
            },
        )
        .unwrap();
        diesel::update(agents::table.find(&a.id))
            .set(agents::capacity.eq(i32::try_from(*cap).unwrap()))
            .execute(&mut **conn)
            .unwrap();
        list.push((a.id, *cap));
    }
    World {
        _dir: dir,
        conn,
        team,
        agents: list,
        presence: HashMap::new(),
        now: 1_000_000,
    }
}

impl World {
    fn c(&mut self) -> &mut DbConn {
        &mut self.conn
    }

    fn open_assigned(&mut self) -> Vec<(String, String)> {
        conversations::table
            .filter(conversations::status.eq("open"))
            .filter(conversations::assignee_id.is_not_null())
            .order(conversations::id)
            .select((
                conversations::id,
                conversations::assignee_id.assume_not_null(),
            ))
            .load(self.c())
            .unwrap()
    }

    fn apply(&mut self, e: &Event) {
        self.now += 1000;
        let now = self.now;
        let team = self.team.clone();
        let p = self.presence.clone();
        match e {
            Event::Online(i) => {
                self.presence
                    .insert(self.agents[*i].0.clone(), PresenceStatus::Online);
                let p = self.presence.clone();
                engine::drain(self.c(), &team, &p, now).unwrap();
            }
            Event::Away(i) => {
                self.presence
                    .insert(self.agents[*i].0.clone(), PresenceStatus::Away);
            }
            Event::Offline(i) => {
                let id = self.agents[*i].0.clone();
                self.presence.remove(&id);
                let p = self.presence.clone();
                engine::requeue_offline(self.c(), &id, &p, now).unwrap();
            }
            Event::Lead => {
                let view = convs::create_with_contact(
                    self.c(),
                    convs::NewGuestConversation {
                        team_id: team.clone(),
                        channel: "widget".into(),
                        ..Default::default()
                    },
                )
                .unwrap();
                // What a first message from the contact leaves behind.
                diesel::update(conversations::table.find(&view.id))
                    .set((
                        conversations::last_seq.eq(1),
                        conversations::last_message_sender.eq("guest"),
                    ))
                    .execute(self.c())
                    .unwrap();
                engine::route(self.c(), &view.id, &p, now).unwrap();
            }
            Event::Resolve(k) => {
                let held = self.open_assigned();
                if held.is_empty() {
                    return;
                }
                let (id, _) = held[k % held.len()].clone();
                convs::set_status(self.c(), &id, ConversationStatus::Resolved).unwrap();
                engine::closed(self.c(), &id, now).unwrap();
                engine::drain(self.c(), &team, &p, now).unwrap();
            }
            Event::HandBack(k) => {
                let held = self.open_assigned();
                if held.is_empty() {
                    return;
                }
                let (id, agent) = held[k % held.len()].clone();
                engine::manual_assign(self.c(), &id, None, &agent, false, now).unwrap();
                engine::drain(self.c(), &team, &p, now).unwrap();
            }
        }
    }

    fn check(&mut self) -> Result<(), TestCaseError> {
        let team = self.team.clone();
        let p = self.presence.clone();
        let now = self.now;
        let w = engine::workload(self.c(), &team, &p, now).unwrap();
        for a in &w.agents {
            prop_assert!(
                a.open <= a.capacity,
                "{} holds {} > {}",
                a.name,
                a.open,
                a.capacity
            );
        }
        if w.waiting > 0 {
            for a in &w.agents {
                let eligible = a.presence == PresenceStatus::Online && a.open < a.capacity;
                prop_assert!(!eligible, "{} is free while {} wait", a.name, w.waiting);
            }
        }
        let ids: Vec<String> = conversations::table
            .select(conversations::id)
            .load(self.c())
            .unwrap();
        for id in ids {
            let mut held = false;
            for ev in engine::audit(self.c(), &id).unwrap() {
                match ev.kind.as_str() {
                    "assigned" | "claimed" => {
                        prop_assert!(!held, "{id} assigned twice: {ev:?}");
                        held = true;
                    }
                    "unassigned" | "requeued" | "transferred" => held = false,
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn routing_keeps_its_invariants(
        capacities in proptest::collection::vec(1i64..4, 2..5),
        events in proptest::collection::vec(event(4), 1..60),
    ) {
        let mut w = world(&capacities);
        let n = capacities.len();
        for e in &events {
            let e = match e {
                Event::Online(i) => Event::Online(i % n),
                Event::Away(i) => Event::Away(i % n),
                Event::Offline(i) => Event::Offline(i % n),
                other => other.clone(),
            };
            w.apply(&e);
            w.check()?;
        }
    }
}

/// A place freed before the drain it triggers has run goes to the oldest waiting
/// lead, not to a lead that arrives in between.
#[test]
fn a_new_lead_never_jumps_the_queue() {
    let mut w = world(&[1]);
    let team = w.team.clone();
    let agent = w.agents[0].0.clone();
    let lead = |w: &mut World| {
        w.apply(&Event::Lead);
        conversations::table
            .order(conversations::created_at.desc())
            .select(conversations::id)
            .first::<String>(w.c())
            .unwrap()
    };
    // Nobody online: the first lead waits.
    let first = lead(&mut w);
    // The agent comes online, but before its drain runs a second lead arrives.
    w.presence.insert(agent.clone(), PresenceStatus::Online);
    w.now += 1000;
    let second = {
        let view = convs::create_with_contact(
            w.c(),
            convs::NewGuestConversation {
                team_id: team.clone(),
                channel: "widget".into(),
                ..Default::default()
            },
        )
        .unwrap();
        view.id
    };
    let (p, now) = (w.presence.clone(), w.now);
    engine::route(w.c(), &second, &p, now).unwrap();
    let assignee = |w: &mut World, id: &str| -> Option<String> {
        conversations::table
            .find(id)
            .select(conversations::assignee_id)
            .first(w.c())
            .unwrap()
    };
    assert_eq!(
        assignee(&mut w, &first),
        Some(agent),
        "the oldest lead gets the place"
    );
    assert_eq!(assignee(&mut w, &second), None, "the newcomer waits");
    let wl = engine::workload(w.c(), &team, &p, now).unwrap();
    assert_eq!(wl.queue.len(), 1);
    assert_eq!(wl.queue[0].conversation_id, second);
}
