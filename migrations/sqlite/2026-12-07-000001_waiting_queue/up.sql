-- The routing queue (docs/routing.md): a team's waiting conversations, oldest first
-- (routing::engine::waiting_ids). The old index held every conversation of the team,
-- queued or not, so under statistics that did not know the table had grown the
-- planner could prefer conversations_assignee and walk every unassigned conversation
-- (3.7 ms per drain, seen in the newlead bench). This one holds only the conversations
-- that are queued, in the queue's own order, so it is the obvious plan and stays as
-- small as the queue (sqlite; keep in step with the other backend).
DROP INDEX conversations_queue;
CREATE INDEX conversations_waiting ON conversations (team_id, queued_at, id) WHERE queued_at IS NOT NULL;
