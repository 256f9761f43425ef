-- 0002: no planner statistics for push.queue.lease_owner.
--
-- ANALYZE usually runs while nothing is leased, so the column's statistics
-- say "always NULL" and the planner then expects a dispatcher's lease to
-- match one row. The ack (DELETE/UPDATE ... USING its batch WHERE
-- lease_owner = me) was then planned as a scan of the queue joined row by
-- row to the whole batch: with 100,000 queued a 1,000-row ack took 1-86 s
-- instead of 40 ms. Without statistics the planner assumes a plain
-- equality estimate (0.5 % of the rows) and finds the batch's rows by
-- primary key.
ALTER TABLE push.queue ALTER COLUMN lease_owner SET STATISTICS 0;
-- ANALYZE skips the column from now on but would keep what it gathered
-- before; changing the column to its own type drops that (no rewrite:
-- text to text).
ALTER TABLE push.queue ALTER COLUMN lease_owner TYPE text;
