//! The conversation actor's template sends ([`PostTemplate`]), kept apart from
//! `conversation.rs` (already long): an agent's approved Meta template, allowed
//! outside the 24-hour window, queued in the outbox as a `template` row.

use actix::prelude::*;

use super::ConversationActor;
use crate::actors::conversation::check_agent;
use crate::actors::messages::{PostTemplate, Posted};
use crate::channels::{DeliveryStatus, Provider};
use crate::error::AppError;
use crate::model::{validate_client_msg_id, SenderKind};
use crate::store::messages::{ChannelAppend, NewMessage};
use crate::store::outbox::NewOutbox;

impl Handler<PostTemplate> for ConversationActor {
    type Result = ResponseActFuture<Self, Result<Posted, AppError>>;

    /// Like `PostMedia`, but without the 24-hour window check: sending an
    /// approved template is what Meta allows outside the window.
    fn handle(&mut self, msg: PostTemplate, _: &mut Self::Context) -> Self::Result {
        self.touch();
        let prepared = (|| {
            let agent = check_agent(&msg.principal, &self.meta)?;
            if let Some(id) = &msg.client_msg_id {
                validate_client_msg_id(id)?;
            }
            if Provider::of_channel(&self.meta.channel) != Some(Provider::Meta) {
                return Err(AppError::Validation(
                    "Templates can only be sent in conversations of a Meta WhatsApp number.".into(),
                ));
            }
            Ok(NewMessage {
                conversation_id: self.id.to_string(),
                sender_kind: SenderKind::Agent,
                sender_id: Some(agent.id.clone()),
                sender_name: Some(agent.name.clone()),
                body: crate::channels::clean_body(&msg.body, "[template]"),
                client_msg_id: msg.client_msg_id.clone(),
                provider_id: None,
                reopen: false,
                channel: Some(Box::new(ChannelAppend {
                    attachment: None,
                    status: Some(DeliveryStatus::Pending.as_str().into()),
                    outbox: Some(NewOutbox {
                        provider: Provider::Meta,
                        kind: "template",
                        payload: msg.order.clone(),
                        not_before: None,
                    }),
                })),
            })
        })();
        match prepared {
            Ok(new) => self.append_and_publish(new),
            Err(e) => Box::pin(fut::ready(Err(e))),
        }
    }
}
