//! The pipeline's in-memory work list: conversations with new committed messages, each
//! at most once, in arrival order. Pure and synchronous (the caller wraps it in a lock).
//!
//! Why per conversation and not per message: the list is bounded by the number of
//! conversations, however many messages arrive, so nothing is ever dropped for lack of
//! room; the worker reads the messages themselves from the database, after the seq the
//! pipeline has recorded as done.

use std::collections::{HashMap, VecDeque};

/// Where a conversation stands in the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// Waiting in `order`.
    Queued,
    /// A worker has it.
    Running,
    /// A worker has it, and more messages came meanwhile: queue it again when done.
    RunningAgain,
}

/// Conversations waiting for a pipeline pass, each once; a conversation is never handed
/// to two workers at the same time.
#[derive(Debug, Default)]
pub struct WorkQueue {
    order: VecDeque<String>,
    marks: HashMap<String, Mark>,
}

impl WorkQueue {
    /// Notes new work on `conversation_id`. Returns true when a worker should wake (the
    /// conversation was not already queued or running).
    pub fn push(&mut self, conversation_id: &str) -> bool {
        match self.marks.get_mut(conversation_id) {
            Some(Mark::Queued | Mark::RunningAgain) => false,
            Some(mark @ Mark::Running) => {
                *mark = Mark::RunningAgain;
                false
            }
            None => {
                self.marks.insert(conversation_id.to_string(), Mark::Queued);
                self.order.push_back(conversation_id.to_string());
                true
            }
        }
    }

    /// The next conversation to work on, now marked running.
    pub fn take(&mut self) -> Option<String> {
        let id = self.order.pop_front()?;
        self.marks.insert(id.clone(), Mark::Running);
        Some(id)
    }

    /// Up to `n` next conversations to work on, now marked running.
    pub fn take_up_to(&mut self, n: usize) -> Vec<String> {
        std::iter::from_fn(|| self.take()).take(n).collect()
    }

    /// A worker finished `conversation_id`. Returns true when it was queued again
    /// (work arrived while it ran), so a worker should wake.
    pub fn done(&mut self, conversation_id: &str) -> bool {
        match self.marks.remove(conversation_id) {
            Some(Mark::RunningAgain) => {
                self.marks.insert(conversation_id.to_string(), Mark::Queued);
                self.order.push_back(conversation_id.to_string());
                true
            }
            _ => false,
        }
    }

    /// Conversations queued or running.
    pub fn len(&self) -> usize {
        self.marks.len()
    }

    /// Whether nothing is queued or running.
    pub fn is_empty(&self) -> bool {
        self.marks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conversation_is_queued_once_however_many_messages_arrive() {
        let mut q = WorkQueue::default();
        assert!(q.push("a"));
        assert!(!q.push("a"));
        assert!(q.push("b"));
        assert_eq!(q.len(), 2);
        assert_eq!(q.take().as_deref(), Some("a"));
        assert_eq!(q.take().as_deref(), Some("b"));
        assert_eq!(q.take(), None);
    }

    #[test]
    fn work_arriving_while_running_runs_again_after_and_never_in_parallel() {
        let mut q = WorkQueue::default();
        q.push("a");
        assert_eq!(q.take().as_deref(), Some("a"));
        // New messages while a worker has it: not handed to a second worker...
        assert!(!q.push("a"));
        assert!(!q.push("a"));
        assert_eq!(q.take(), None);
        // ...but queued again, once, when the first pass ends.
        assert!(q.done("a"));
        assert_eq!(q.take().as_deref(), Some("a"));
        assert!(!q.done("a"));
        assert!(q.is_empty());
    }

    #[test]
    fn a_group_is_taken_in_arrival_order_and_each_is_running() {
        let mut q = WorkQueue::default();
        for id in ["a", "b", "c"] {
            q.push(id);
        }
        assert_eq!(q.take_up_to(2), vec!["a", "b"]);
        assert!(!q.push("a"), "running: not handed out again");
        assert_eq!(q.take_up_to(2), vec!["c"]);
        assert!(q.take_up_to(2).is_empty());
        assert!(q.done("a"), "came back while running");
        assert!(!q.done("b"));
        assert_eq!(q.take_up_to(5), vec!["a"]);
    }
}
