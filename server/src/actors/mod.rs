//! The actors: one [`session::SessionActor`] per WebSocket connection, one
//! [`conversation::ConversationActor`] per active conversation, one
//! [`agent::AgentActor`] per connected agent. The messages they exchange are in
//! [`messages`]; the node-local registry that finds them is [`crate::hub::Hub`].

pub mod agent;
pub mod conversation;
pub mod messages;
pub mod session;
