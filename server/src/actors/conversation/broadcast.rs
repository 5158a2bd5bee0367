//! A campaign message posted into its conversation — a broadcast copy or an
//! automation's send step: stored as a `bot` message with a seq (agents see what
//! the campaign sent, in place), deduplicated by (sender, client key) so a runner
//! that posts it again after a crash stores and sends nothing twice, and queued
//! in the outbox for its send slot. Copies go through the writer's bulk lane
//! (`writer::Lane`), so chat messages never wait behind a batch of them.

use actix::prelude::*;

use super::ConversationActor;
use crate::actors::messages::Posted;
use crate::channels::{DeliveryStatus, Provider};
use crate::error::AppError;
use crate::model::SenderKind;
use crate::store::messages::{ChannelAppend, NewMessage};
use crate::store::outbox::NewOutbox;
use crate::writer::Lane;

/// One recipient's copy of a broadcast, or one send step of an automation run.
#[derive(Message, Clone, Debug)]
#[rtype(result = "Result<Posted, AppError>")]
pub struct PostBroadcastCopy {
    /// `broadcast:{id}` or `automation:{id}`: the outbox paces broadcast copies by
    /// it, the analytics count by it.
    pub sender_id: String,
    /// The broadcast's or automation's name, shown as the sender.
    pub sender_name: String,
    /// With `sender_id`, the duplicate key: the contact for a broadcast, the
    /// `{run}:{step}` for an automation.
    pub client_msg_id: String,
    /// The text as the customer sees it (a template rendered with its variables).
    pub body: String,
    /// Outbox kind: `text`, or `template` with `payload` naming it.
    pub kind: &'static str,
    /// Outbox payload JSON (`{}` for text).
    pub payload: String,
    /// The copy's send slot (epoch ms).
    pub not_before: i64,
}

impl Handler<PostBroadcastCopy> for ConversationActor {
    type Result = ResponseActFuture<Self, Result<Posted, AppError>>;

    fn handle(&mut self, msg: PostBroadcastCopy, _: &mut Self::Context) -> Self::Result {
        self.touch();
        let Some(provider) = Provider::of_channel(&self.meta.channel) else {
            return Box::pin(fut::ready(Err(AppError::Conflict(
                "campaign messages go to WhatsApp conversations only".into(),
            ))));
        };
        let new = NewMessage {
            conversation_id: self.id.to_string(),
            sender_kind: SenderKind::Bot,
            sender_id: Some(msg.sender_id),
            sender_name: Some(msg.sender_name),
            body: msg.body,
            client_msg_id: Some(msg.client_msg_id),
            provider_id: None,
            reopen: false,
            channel: Some(Box::new(ChannelAppend {
                attachment: None,
                status: Some(DeliveryStatus::Pending.as_str().into()),
                outbox: Some(NewOutbox {
                    provider,
                    kind: msg.kind,
                    payload: msg.payload,
                    not_before: Some(msg.not_before),
                }),
            })),
        };
        self.append_and_publish_in(Lane::Bulk, new)
    }
}
