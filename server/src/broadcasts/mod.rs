//! Broadcasts (campaigns, issue 17 §4): one message to every contact of a segment,
//! from one WhatsApp number, exactly once per recipient.
//!
//! This module holds the policy, as pure functions over typed values:
//! - [`lifecycle`]: draft → scheduled → sending → done / paused / cancelled;
//! - [`pacing`]: how fast a number may send (Meta's throughput and messaging
//!   limits, WAHA's slow jittered pace);
//! - [`content`]: what may be sent from which number, and which recipients are
//!   skipped (opted out, unreachable, closed window, missing variable);
//! - [`schedule`]: a local send time in the marketer's time zone to UTC.

pub mod content;
pub mod lifecycle;
pub mod pacer;
pub mod pacing;
pub mod runner;
pub mod schedule;

use serde::{Deserialize, Serialize};

/// A broadcast's id (UUID v7 text).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BroadcastId(pub String);

/// The `sender_id` prefix of broadcast copies (`broadcast:{id}`): how the outbox
/// and the analytics know a copy from an agent's message.
pub const SENDER_PREFIX: &str = "broadcast:";
