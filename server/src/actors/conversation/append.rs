//! The conversation actor's one path for a message: hand the append to the writer,
//! and after its commit publish it and start what follows (the summary, routing, the
//! pipeline), in the order the appends were handed over ([`super::in_order`]).

use actix::prelude::*;

use super::in_order::InOrder;
use super::ConversationActor;
use crate::actors::messages::Posted;
use crate::bus::Audience;
use crate::error::AppError;
use crate::model::{ConversationStatus, MessageView, SenderKind};
use crate::protocol::ServerFrame;
use crate::store::messages::NewMessage;
use crate::writer::Lane;

impl ConversationActor {
    /// Hands `new` to the writer's interactive lane and, once committed, publishes
    /// it: the one post-commit path of every message (guest, agent, WhatsApp
    /// inbound, campaign copies through [`Self::append_and_publish_in`]).
    pub(super) fn append_and_publish(
        &mut self,
        new: NewMessage,
    ) -> ResponseActFuture<Self, Result<Posted, AppError>> {
        self.append_and_publish_in(Lane::Interactive, new)
    }

    /// [`Self::append_and_publish`] through the writer's `lane`.
    ///
    /// The append is handed to the writer here, and what follows its commit runs in
    /// that order ([`super::in_order`]), so the team sees one lane's messages in seq order.
    pub(super) fn append_and_publish_in(
        &mut self,
        lane: Lane,
        new: NewMessage,
    ) -> ResponseActFuture<Self, Result<Posted, AppError>> {
        let queued = new.channel.as_ref().is_some_and(|c| c.outbox.is_some());
        let ticket = self.order_of(lane).issue();
        let appended = self.state.writer.append_in(lane, new);
        Box::pin(appended.into_actor(self).map(move |res, act, ctx| {
            act.touch();
            let posted = res.map(|a| {
                let posted = Posted {
                    message: a.message.view(),
                    duplicate: a.duplicate,
                };
                (posted, a.reopened)
            });
            let committed = match &posted {
                Ok((p, reopened)) if !p.duplicate => Some(Committed {
                    view: p.message.clone(),
                    reopened: *reopened,
                    queued,
                }),
                _ => None,
            };
            for due in act.order_of(lane).complete(ticket, committed) {
                act.after_commit(due, ctx);
            }
            posted.map(|(p, _)| p)
        }))
    }

    /// The release order of `lane`'s appends.
    fn order_of(&mut self, lane: Lane) -> &mut InOrder<Committed> {
        match lane {
            Lane::Interactive => &mut self.order.interactive,
            Lane::Bulk => &mut self.order.bulk,
        }
    }

    /// What follows a new message's commit, in seq order: the `message` frame to
    /// the participants, the summary, routing and the pipeline.
    fn after_commit(&mut self, committed: Committed, ctx: &mut Context<Self>) {
        let Committed {
            view,
            reopened,
            queued,
        } = committed;
        if reopened {
            self.meta.status = ConversationStatus::Open;
            self.routed_at = None;
            self.changed_elsewhere();
        }
        if queued {
            self.state.outbox.nudge();
        }
        let (seq, kind) = (view.seq, view.sender.kind);
        let first = seq == 1;
        self.publish(
            &ServerFrame::Message(view),
            Some(seq),
            Audience::Participants,
            None,
        );
        // The first message makes a conversation worth listing; a reopen changes its
        // status. Either way every inbox of the team updates.
        if first || reopened {
            self.publish_summary(ctx);
        }
        if kind == SenderKind::Guest {
            self.after_inbound(reopened);
        }
        // Bookkeeping and the bot run in the inbound pipeline, after the ack and
        // durably (docs/architecture.md); the hub's own messages (a broadcast's
        // copies) give it nothing to do.
        if crate::pipeline::stages::any_applies(kind) {
            self.state.pipeline.committed(&self.id);
        }
    }
}

/// A new message's commit, waiting its turn for [`ConversationActor::after_commit`].
pub(super) struct Committed {
    view: MessageView,
    reopened: bool,
    /// It carries an outbox order (the outbox is nudged).
    queued: bool,
}

/// One release order per writer lane: a lane commits in hand-over order, but two
/// lanes may commit in either order, and a chat message must not wait for a
/// campaign copy's commit.
#[derive(Default)]
pub(super) struct LaneOrders {
    interactive: InOrder<Committed>,
    bulk: InOrder<Committed>,
}

impl LaneOrders {
    /// No append is out in either lane.
    pub(super) fn idle(&self) -> bool {
        self.interactive.outstanding() == 0 && self.bulk.outstanding() == 0
    }
}
