//! Releasing the conversation actor's committed appends in the order they were handed
//! to the writer, whatever order their answers are handled in.
//!
//! Why: each append is a future spawned into the actor's context, and the writer
//! answers a whole batch at once. actix polls the ready futures of a context in an
//! order that `swap_remove` scrambles (actix 0.13 `ContextFut::poll`), so three
//! appends of one batch could be published as seq 1, 3, 2. Every viewer's cursor
//! then saw a gap and read the missing message from the database: a durable-bench
//! profile put a third of the agent's frames through such a read. The writer commits
//! one lane's appends in the order it receives them, so the order the actor handed
//! them over is their seq order, and releasing in that order publishes in seq order.

use std::collections::BTreeMap;

/// Tickets for appends in hand-over order, and the results that wait for an earlier
/// ticket. `T` is what is released (the committed message to publish); a ticket
/// that yields nothing (an error, a duplicate) is completed with `None`.
#[derive(Debug)]
pub struct InOrder<T> {
    /// The ticket the next hand-over gets.
    next_issue: u64,
    /// The oldest ticket not released yet.
    next_release: u64,
    /// Completed tickets waiting for an older one, by ticket.
    done: BTreeMap<u64, Option<T>>,
}

impl<T> Default for InOrder<T> {
    fn default() -> Self {
        Self {
            next_issue: 0,
            next_release: 0,
            done: BTreeMap::new(),
        }
    }
}

impl<T> InOrder<T> {
    /// A ticket for the append being handed over now.
    pub fn issue(&mut self) -> u64 {
        let ticket = self.next_issue;
        self.next_issue += 1;
        ticket
    }

    /// Records `ticket`'s outcome; returns every outcome that is now due, oldest
    /// first (none while an older ticket is still out).
    pub fn complete(&mut self, ticket: u64, item: Option<T>) -> Vec<T> {
        self.done.insert(ticket, item);
        let mut due = Vec::new();
        while let Some(item) = self.done.remove(&self.next_release) {
            self.next_release += 1;
            due.extend(item);
        }
        due
    }

    /// Tickets issued and not yet released (completed or not).
    pub fn outstanding(&self) -> u64 {
        self.next_issue - self.next_release
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_handled_out_of_order_are_released_in_ticket_order() {
        let mut order = InOrder::default();
        let (a, b, c) = (order.issue(), order.issue(), order.issue());
        // The order actix's swap_remove gives three ready futures: 1, 3, 2.
        assert_eq!(order.complete(a, Some("seq 1")), vec!["seq 1"]);
        assert!(order.complete(c, Some("seq 3")).is_empty());
        assert_eq!(order.outstanding(), 2);
        assert_eq!(order.complete(b, Some("seq 2")), vec!["seq 2", "seq 3"]);
        assert_eq!(order.outstanding(), 0);
    }

    #[test]
    fn a_ticket_without_a_result_still_lets_later_ones_through() {
        let mut order = InOrder::default();
        let (failed, next) = (order.issue(), order.issue());
        assert!(order.complete(next, Some(2)).is_empty());
        assert_eq!(order.complete(failed, None), vec![2]);
        let later = order.issue();
        assert_eq!(order.complete(later, Some(3)), vec![3]);
    }
}
