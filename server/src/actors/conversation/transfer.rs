//! The conversation actor's transfer to another team ([`Transfer`]), kept apart from
//! `conversation.rs` (already long). The move and an optional assignment in the new
//! team are one transaction, and the actor takes its new routing facts from the
//! answer: one actor round trip and one summary read per transfer.

use actix::prelude::*;

use super::{check_agent, ConversationActor};
use crate::access::Permission;
use crate::actors::messages::Transfer;
use crate::clock::now_ms;
use crate::db::write_transaction;
use crate::error::AppError;
use crate::model::ConversationView;
use crate::routing::actor::RouteConversation;
use crate::routing::engine;
use crate::store::{accounts, conversations};

impl Handler<Transfer> for ConversationActor {
    type Result = ResponseActFuture<Self, Result<ConversationView, AppError>>;

    fn handle(&mut self, msg: Transfer, _: &mut Self::Context) -> Self::Result {
        self.touch();
        let actor = match check_agent(&msg.principal, &self.meta) {
            Ok(actor) => actor.clone(),
            Err(e) => return Box::pin(fut::ready(Err(e))),
        };
        let Transfer {
            team_id, agent_id, ..
        } = msg;
        let routed_there = agent_id.is_none();
        let state = self.state.clone();
        let id = self.id.to_string();
        let fut = async move {
            state
                .db
                .run(move |c| {
                    if !accounts::team_exists(c, &team_id)? {
                        return Err(AppError::Validation(format!("There is no team {team_id}.")));
                    }
                    let now = now_ms();
                    // One transaction: an assignment the new team refuses (an agent
                    // outside it, at capacity) leaves the conversation where it was.
                    write_transaction(c, |c| {
                        let mut effects = engine::transfer(c, &id, &team_id, &actor.id, now)?;
                        if let Some(target) = agent_id.as_deref() {
                            effects.extend(engine::manual_assign(
                                c,
                                &id,
                                Some(target),
                                &actor.id,
                                actor.role.can(Permission::ConversationsAssignOthers),
                                now,
                            )?);
                        }
                        Ok((conversations::summary(c, &id)?, effects))
                    })
                })
                .await
        };
        Box::pin(fut.into_actor(self).map(move |res, act, _| {
            let (view, effects) = res?;
            act.adopt_routing(&view, effects);
            if routed_there {
                act.state.hub.route(RouteConversation {
                    conversation_id: act.id.to_string(),
                    reopened: false,
                });
            }
            Ok(view)
        }))
    }
}
