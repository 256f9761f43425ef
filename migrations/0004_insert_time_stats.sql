-- 0004: count the outcomes decided at enqueue in the statistics (issue #8).
--
-- Pushes that can never be sent (a user without an active device:
-- no_device; a device already invalidated: invalid_token) are finished by
-- the enqueue trigger (push.finish_unsendable()) and were recorded only in
-- push.deliveries, so push.stats_minute, push.campaign_funnel and the app
-- stats views undercounted them. Counting them with INSERT ... ON CONFLICT
-- on push.stats_minute from the trigger would make bulk enqueues and the
-- dispatchers' stats merges wait on each other's row locks; instead the
-- trigger appends to the new push.stats_inbox, push.fold_stats_inbox()
-- (run by push.run_maintenance(), before the rollup) moves those counts
-- into push.stats_minute, and push.stats_all reads the inbox too, so the
-- views are exact before and after a fold. A no_device push to a user
-- target that named no platform has no platform: push.stats_minute and
-- push.stats_hour now allow a NULL platform. push.campaign_funnel gets a
-- no_device column. A folded count lands in the same push.stats_minute row
-- as the dispatchers' counts of that key, so "pushes with a latency" can no
-- longer be told from the row count: the views' mean latency now divides
-- by the histogram's total (push.hist_count()), which counts exactly the
-- latencies summed.

ALTER TABLE push.stats_minute ALTER COLUMN platform DROP NOT NULL;
ALTER TABLE push.stats_hour ALTER COLUMN platform DROP NOT NULL;
COMMENT ON TABLE push.stats_minute IS
  'Per-minute rollup of delivery outcomes by app, platform, campaign and '
  'outcome, merged from each dispatcher''s in-memory counters every few '
  'seconds with INSERT ... ON CONFLICT DO UPDATE. Outcomes decided at '
  'enqueue (no_device, invalid_token of an already invalidated device) '
  'wait in push.stats_inbox and are added by push.fold_stats_inbox() '
  '(every push.run_maintenance()); push.stats_all counts them meanwhile.';
COMMENT ON COLUMN push.stats_minute.platform IS
  'The platform; NULL only for no_device outcomes of a user target that '
  'named no platform.';
COMMENT ON COLUMN push.stats_hour.platform IS
  'The platform; NULL only for no_device outcomes of a user target that '
  'named no platform.';

-- Outcomes decided at enqueue are counted here, one row per finished push
-- and device, by push.finish_unsendable() in the enqueue trigger: a plain
-- append, so bulk enqueues never wait on the stats rows the dispatchers
-- merge into (nor they on them). push.fold_stats_inbox() moves the counts
-- into push.stats_minute; push.stats_all reads the rows not folded yet.
CREATE TABLE push.stats_inbox (
  minute      timestamptz NOT NULL,
  app_id      integer NOT NULL,
  platform    push.platform,
  campaign_id bigint,
  outcome     push.outcome NOT NULL,
  count       bigint NOT NULL
);
COMMENT ON TABLE push.stats_inbox IS
  'Outcomes decided at enqueue (no_device, invalid_token of an already '
  'invalidated device), appended by the enqueue trigger and moved into '
  'push.stats_minute by push.fold_stats_inbox(), which '
  'push.run_maintenance() calls (pgpushd runs it every 5 minutes). '
  'push.stats_all and the views count these rows too, so totals are exact '
  'before and after a fold. Not written by hand.';
COMMENT ON COLUMN push.stats_inbox.minute IS
  'Start of the (UTC) minute of the outcome (push.deliveries.finished_at).';
COMMENT ON COLUMN push.stats_inbox.app_id IS 'The app (push.apps.id).';
COMMENT ON COLUMN push.stats_inbox.platform IS
  'The platform; NULL for no_device of a user target without a platform.';
COMMENT ON COLUMN push.stats_inbox.campaign_id IS
  'Campaign, or NULL for pushes outside campaigns.';
COMMENT ON COLUMN push.stats_inbox.outcome IS
  'no_device or invalid_token.';
COMMENT ON COLUMN push.stats_inbox.count IS
  'Pushes with this outcome (no requests, bytes or latency: none was sent).';

CREATE OR REPLACE VIEW push.stats_all AS
SELECT minute AS at, app_id, platform, campaign_id, outcome, count,
       attempts, bytes_sent, latency_ms_sum, latency_ms_min, latency_ms_max,
       latency_hist
FROM push.stats_minute
UNION ALL
SELECT hour, app_id, platform, campaign_id, outcome, count, attempts,
       bytes_sent, latency_ms_sum, latency_ms_min, latency_ms_max,
       latency_hist
FROM push.stats_hour
UNION ALL
SELECT minute, app_id, platform, campaign_id, outcome, count, 0::bigint,
       0::bigint, 0::double precision, NULL::double precision,
       NULL::double precision, '{}'::bigint[]
FROM push.stats_inbox;
COMMENT ON VIEW push.stats_all IS
  'Every statistics row, minute (push.stats_minute), rolled-up hour '
  '(push.stats_hour) or insert-time outcome not folded yet '
  '(push.stats_inbox: count only, no latency); `at` is the start of its '
  'minute or hour. The base of the other stats views.';

CREATE OR REPLACE FUNCTION push.finish_unsendable(p_push_id bigint,
  p_app_id integer, p_platform push.platform, p_device_id bigint,
  p_campaign_id bigint, p_enqueued_at timestamptz, p_reason text)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  -- The delivery row and its count in one statement. The count is a plain
  -- append to push.stats_inbox (no row that a dispatcher's stats merge
  -- could hold locked); push.fold_stats_inbox() adds it to
  -- push.stats_minute later. Only unsendable pushes come here: a statement
  -- whose pushes are all sendable writes nothing to either table.
  WITH finished AS (
    INSERT INTO push.deliveries (push_id, app_id, platform, device_id,
      campaign_id, outcome, provider_reason, enqueued_at)
    VALUES (p_push_id, p_app_id, p_platform, p_device_id, p_campaign_id,
      CASE WHEN p_device_id IS NULL THEN 'no_device'::push.outcome
           ELSE 'invalid_token'::push.outcome END,
      p_reason, p_enqueued_at)
    RETURNING finished_at, app_id, platform, campaign_id, outcome
  )
  INSERT INTO push.stats_inbox (minute, app_id, platform, campaign_id,
    outcome, count)
  SELECT date_trunc('minute', finished_at, 'UTC'), app_id, platform,
    campaign_id, outcome, 1
  FROM finished;
  RETURN false;
END $$;
COMMENT ON FUNCTION push.finish_unsendable(bigint, integer, push.platform,
  bigint, bigint, timestamptz, text) IS
  'Enqueue helper: records a push that cannot be sent (invalidated device: '
  'invalid_token; user without devices: no_device) in push.deliveries and '
  'counts it in push.stats_inbox. Returns false, so the row is not queued.';
COMMENT ON FUNCTION push.enqueue_pushes() IS
  'Statement trigger on push.pushes: validates every new row, fans targets '
  'out to push.queue (one row per device), records unsendable pushes in '
  'push.deliveries (counted in push.stats_inbox), and sends one NOTIFY '
  'pgpush_enqueue per statement.';

CREATE FUNCTION push.hist_count(h bigint[]) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(sum(n), 0)::bigint FROM unnest(h) AS n
$$;
COMMENT ON FUNCTION push.hist_count(bigint[]) IS
  'Latencies a histogram holds (the sum of its buckets): the divisor of a '
  'mean latency, since not every counted push has a latency (drops, '
  'outcomes decided at enqueue).';

CREATE FUNCTION push.fold_stats_inbox() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_n bigint;
BEGIN
  -- One statement deletes and merges, so each row is counted once: a
  -- concurrent fold waits for this DELETE and then skips the rows it took,
  -- and rows of an enqueue not committed yet stay for the next fold. Keys
  -- are merged in order, so two folds lock stats rows in the same order.
  WITH moved AS (
    DELETE FROM push.stats_inbox
    RETURNING minute, app_id, platform, campaign_id, outcome, count
  ), merged AS (
    INSERT INTO push.stats_minute AS s (minute, app_id, platform,
      campaign_id, outcome, count)
    SELECT minute, app_id, platform, campaign_id, outcome, sum(count)
    FROM moved
    GROUP BY 1, 2, 3, 4, 5
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (minute, app_id, platform, campaign_id, outcome)
    DO UPDATE SET count = s.count + EXCLUDED.count
  )
  SELECT coalesce(sum(count), 0) INTO v_n FROM moved;
  RETURN v_n;
END $$;
COMMENT ON FUNCTION push.fold_stats_inbox() IS
  'Moves the insert-time outcomes waiting in push.stats_inbox into '
  'push.stats_minute (counts only; requests, bytes and latency untouched). '
  'Returns the outcomes moved. push.run_maintenance() calls it; call it '
  'by hand for an immediate fold. Totals seen through push.stats_all are '
  'unchanged.';

CREATE OR REPLACE FUNCTION push.run_maintenance()
RETURNS TABLE (action text, object text)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
  v_n    bigint;
  v_days integer := coalesce((SELECT value::integer FROM push.settings
            WHERE name = 'debug_events_retention_days'), 7);
BEGIN
  -- One maintainer at a time; the others skip (they run again later).
  IF NOT pg_try_advisory_xact_lock(hashtext('pgpush.run_maintenance')) THEN
    action := 'skipped'; object := 'another session is maintaining';
    RETURN NEXT;
    RETURN;
  END IF;
  RETURN QUERY SELECT * FROM push.maintain_partitions();
  DELETE FROM push.debug_events WHERE at < now() - make_interval(days => v_days);
  GET DIAGNOSTICS v_n = ROW_COUNT;
  IF v_n > 0 THEN
    action := 'deleted'; object := v_n || ' rows of push.debug_events';
    RETURN NEXT;
  END IF;
  -- Statistics last: the recent push.stats_minute rows the fold merges
  -- into stay locked against the dispatchers' stats merges only until the
  -- commit right after. The fold comes before the rollup, so insert-time
  -- counts of minutes already due for rollup reach push.stats_hour now.
  v_n := push.fold_stats_inbox();
  IF v_n > 0 THEN
    action := 'folded';
    object := v_n || ' insert-time outcomes into push.stats_minute';
    RETURN NEXT;
  END IF;
  v_n := push.rollup_stats();
  IF v_n > 0 THEN
    action := 'rolled up'; object := v_n || ' rows of push.stats_hour';
    RETURN NEXT;
  END IF;
END $$;
COMMENT ON FUNCTION push.run_maintenance() IS
  'What pgpushd runs every few minutes: push.maintain_partitions(), the '
  'debug_events_retention_days retention of push.debug_events, '
  'push.fold_stats_inbox() and then push.rollup_stats(). One session at a '
  'time (advisory lock); a second caller returns ''skipped'' at once.';

CREATE OR REPLACE VIEW push.stats_hourly AS
SELECT date_trunc('hour', at) AS hour, app_id, platform, outcome,
       sum(count) AS count, sum(attempts) AS attempts,
       sum(bytes_sent) AS bytes_sent,
       sum(latency_ms_sum) /
         nullif(push.hist_count(push.hist_merge(latency_hist)), 0)
         AS latency_ms_avg,
       push.hist_percentile(push.hist_merge(latency_hist), 0.50)
         AS latency_ms_p50,
       push.hist_percentile(push.hist_merge(latency_hist), 0.95)
         AS latency_ms_p95,
       push.hist_percentile(push.hist_merge(latency_hist), 0.99)
         AS latency_ms_p99
FROM push.stats_all
GROUP BY 1, 2, 3, 4;

CREATE OR REPLACE VIEW push.stats_daily AS
SELECT date_trunc('day', at) AS day, app_id, platform, outcome,
       sum(count) AS count, sum(attempts) AS attempts,
       sum(bytes_sent) AS bytes_sent,
       sum(latency_ms_sum) /
         nullif(push.hist_count(push.hist_merge(latency_hist)), 0)
         AS latency_ms_avg,
       push.hist_percentile(push.hist_merge(latency_hist), 0.50)
         AS latency_ms_p50,
       push.hist_percentile(push.hist_merge(latency_hist), 0.95)
         AS latency_ms_p95,
       push.hist_percentile(push.hist_merge(latency_hist), 0.99)
         AS latency_ms_p99
FROM push.stats_all
GROUP BY 1, 2, 3, 4;

CREATE OR REPLACE VIEW push.app_stats_hourly AS
SELECT s.hour, s.app_id, s.platform, s.total, s.sent, s.retried, s.failed,
       s.invalid_token, s.expired, s.dropped_banned, s.dropped_overload,
       s.uncertain, s.no_device, s.cancelled, s.attempts, s.bytes_sent,
       s.latency_ms_avg, s.latency_ms_p50, s.latency_ms_p95, s.latency_ms_p99,
       (SELECT jsonb_object_agg(r.reason, r.n ORDER BY r.reason)
        FROM (SELECT CASE WHEN d.dispatcher IS NULL
                            AND d.outcome = 'invalid_token'
                       THEN 'device invalidated before enqueue'
                       ELSE coalesce(d.provider_reason, d.outcome::text)
                     END AS reason,
                     count(*) AS n
              FROM push.deliveries d
              WHERE d.app_id = s.app_id AND d.platform = s.platform
                AND d.outcome IN ('failed', 'invalid_token')
                AND d.finished_at >= s.hour
                AND d.finished_at < s.hour + interval '1 hour'
              GROUP BY 1) r) AS failed_by_reason
FROM (
  SELECT date_trunc('hour', at) AS hour, app_id, platform,
         sum(count) AS total,
         coalesce(sum(count) FILTER (WHERE outcome = 'sent'), 0) AS sent,
         coalesce(sum(count) FILTER (WHERE outcome = 'retry'), 0) AS retried,
         coalesce(sum(count) FILTER (WHERE outcome = 'failed'), 0) AS failed,
         coalesce(sum(count) FILTER (WHERE outcome = 'invalid_token'), 0)
           AS invalid_token,
         coalesce(sum(count) FILTER (WHERE outcome = 'expired'), 0)
           AS expired,
         coalesce(sum(count) FILTER (WHERE outcome = 'dropped_banned'), 0)
           AS dropped_banned,
         coalesce(sum(count) FILTER (WHERE outcome = 'dropped_overload'), 0)
           AS dropped_overload,
         coalesce(sum(count) FILTER (WHERE outcome = 'uncertain'), 0)
           AS uncertain,
         coalesce(sum(count) FILTER (WHERE outcome = 'no_device'), 0)
           AS no_device,
         coalesce(sum(count) FILTER (WHERE outcome = 'cancelled'), 0)
           AS cancelled,
         sum(attempts) AS attempts, sum(bytes_sent) AS bytes_sent,
         sum(latency_ms_sum) /
           nullif(push.hist_count(push.hist_merge(latency_hist)), 0)
           AS latency_ms_avg,
         push.hist_percentile(push.hist_merge(latency_hist), 0.50)
           AS latency_ms_p50,
         push.hist_percentile(push.hist_merge(latency_hist), 0.95)
           AS latency_ms_p95,
         push.hist_percentile(push.hist_merge(latency_hist), 0.99)
           AS latency_ms_p99
  FROM push.stats_all
  GROUP BY 1, 2, 3
) s;
COMMENT ON VIEW push.app_stats_hourly IS
  'One row per hour, app and platform: pushes by outcome (sent, retried, '
  'failed, invalid_token = invalidated tokens, expired, dropped by ban or '
  'overload, no_device...; outcomes decided at enqueue included, platform '
  'NULL for no_device of a user target that named none), requests, '
  'bytes, latency (enqueue to provider response) '
  'mean and p50/p95/p99 from the histogram (bucket upper bounds), and the '
  'failures (failed, invalid_token) by provider reason from '
  'push.deliveries (while its partitions are kept).';

CREATE OR REPLACE VIEW push.app_stats_daily AS
SELECT s.day, s.app_id, s.platform, s.total, s.sent, s.retried, s.failed,
       s.invalid_token, s.expired, s.dropped_banned, s.dropped_overload,
       s.uncertain, s.no_device, s.cancelled, s.attempts, s.bytes_sent,
       s.latency_ms_avg, s.latency_ms_p50, s.latency_ms_p95, s.latency_ms_p99,
       (SELECT jsonb_object_agg(r.reason, r.n ORDER BY r.reason)
        FROM (SELECT CASE WHEN d.dispatcher IS NULL
                            AND d.outcome = 'invalid_token'
                       THEN 'device invalidated before enqueue'
                       ELSE coalesce(d.provider_reason, d.outcome::text)
                     END AS reason,
                     count(*) AS n
              FROM push.deliveries d
              WHERE d.app_id = s.app_id AND d.platform = s.platform
                AND d.outcome IN ('failed', 'invalid_token')
                AND d.finished_at >= s.day
                AND d.finished_at < s.day + interval '1 day'
              GROUP BY 1) r) AS failed_by_reason
FROM (
  SELECT date_trunc('day', at) AS day, app_id, platform,
         sum(count) AS total,
         coalesce(sum(count) FILTER (WHERE outcome = 'sent'), 0) AS sent,
         coalesce(sum(count) FILTER (WHERE outcome = 'retry'), 0) AS retried,
         coalesce(sum(count) FILTER (WHERE outcome = 'failed'), 0) AS failed,
         coalesce(sum(count) FILTER (WHERE outcome = 'invalid_token'), 0)
           AS invalid_token,
         coalesce(sum(count) FILTER (WHERE outcome = 'expired'), 0)
           AS expired,
         coalesce(sum(count) FILTER (WHERE outcome = 'dropped_banned'), 0)
           AS dropped_banned,
         coalesce(sum(count) FILTER (WHERE outcome = 'dropped_overload'), 0)
           AS dropped_overload,
         coalesce(sum(count) FILTER (WHERE outcome = 'uncertain'), 0)
           AS uncertain,
         coalesce(sum(count) FILTER (WHERE outcome = 'no_device'), 0)
           AS no_device,
         coalesce(sum(count) FILTER (WHERE outcome = 'cancelled'), 0)
           AS cancelled,
         sum(attempts) AS attempts, sum(bytes_sent) AS bytes_sent,
         sum(latency_ms_sum) /
           nullif(push.hist_count(push.hist_merge(latency_hist)), 0)
           AS latency_ms_avg,
         push.hist_percentile(push.hist_merge(latency_hist), 0.50)
           AS latency_ms_p50,
         push.hist_percentile(push.hist_merge(latency_hist), 0.95)
           AS latency_ms_p95,
         push.hist_percentile(push.hist_merge(latency_hist), 0.99)
           AS latency_ms_p99
  FROM push.stats_all
  GROUP BY 1, 2, 3
) s;

CREATE OR REPLACE VIEW push.campaign_funnel AS
SELECT c.id AS campaign_id, c.app_id, c.name, c.state,
       coalesce(t.targets, 0) AS targets,
       coalesce(t.queued, 0) AS queued,
       coalesce(s.sent, 0) AS sent,
       coalesce(s.failed, 0) AS failed,
       coalesce(s.invalidated, 0) AS invalidated,
       coalesce(s.expired, 0) AS expired,
       coalesce(s.dropped, 0) AS dropped,
       coalesce(s.retried, 0) AS retried,
       s.latency_ms_p50, s.latency_ms_p95,
       coalesce(s.no_device, 0) AS no_device,
       coalesce(s.uncertain, 0) AS uncertain,
       coalesce(s.cancelled, 0) AS cancelled
FROM push.campaigns c
LEFT JOIN LATERAL (
  SELECT count(*) AS targets, count(enqueued_at) AS queued
  FROM push.campaign_targets ct WHERE ct.campaign_id = c.id
) t ON true
LEFT JOIN LATERAL (
  SELECT sum(count) FILTER (WHERE outcome = 'sent') AS sent,
         sum(count) FILTER (WHERE outcome = 'failed') AS failed,
         sum(count) FILTER (WHERE outcome = 'invalid_token') AS invalidated,
         sum(count) FILTER (WHERE outcome = 'expired') AS expired,
         sum(count) FILTER (WHERE outcome IN ('dropped_banned',
                                              'dropped_overload'))
           AS dropped,
         sum(count) FILTER (WHERE outcome = 'retry') AS retried,
         sum(count) FILTER (WHERE outcome = 'no_device') AS no_device,
         sum(count) FILTER (WHERE outcome = 'uncertain') AS uncertain,
         sum(count) FILTER (WHERE outcome = 'cancelled') AS cancelled,
         push.hist_percentile(push.hist_merge(latency_hist), 0.50)
           AS latency_ms_p50,
         push.hist_percentile(push.hist_merge(latency_hist), 0.95)
           AS latency_ms_p95
  FROM push.stats_all sa WHERE sa.campaign_id = c.id
) s ON true;
COMMENT ON VIEW push.campaign_funnel IS
  'Per campaign: targets, queued (targets whose push was enqueued), then '
  'outcomes from the stats, one per device pushed - sent, failed, '
  'invalidated (dead tokens, including devices already invalidated at '
  'enqueue), expired, dropped (ban or overload), no_device (targets '
  'without an active device, counted at enqueue), retried attempts, '
  'latency p50/p95, uncertain (maybe delivered: an ambiguous answer) and '
  'cancelled (admin-sql/cancel_campaign.sql). Outcomes decided at enqueue '
  'or by a cancel count at once (from push.stats_inbox until they are '
  'folded).';

REVOKE EXECUTE ON FUNCTION push.fold_stats_inbox() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION push.fold_stats_inbox()
  TO pgpush_admin, pgpush_dispatcher;
GRANT SELECT ON push.stats_inbox TO pgpush_analyst, pgpush_dispatcher;
GRANT ALL ON push.stats_inbox TO pgpush_admin;
REVOKE EXECUTE ON FUNCTION push.hist_count(bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION push.hist_count(bigint[])
  TO pgpush_analyst, pgpush_admin, pgpush_dispatcher;

-- Token churn counts each invalidated device once, on the day its token
-- died (push.devices.invalidated_at), not invalid_token outcomes: those
-- now include pushes finished at enqueue for devices that were already
-- dead, and always included pushes caught at claim.
CREATE OR REPLACE VIEW push.token_churn_daily AS
WITH reg AS (
  SELECT date_trunc('day', created_at) AS day, app_id, platform,
         count(*) AS registrations
  FROM push.devices GROUP BY 1, 2, 3
), inv AS (
  -- When each token died, once per device (push.devices.invalidated_at):
  -- invalid_token outcomes would count again every push that found a
  -- device already dead (at enqueue or at claim).
  SELECT date_trunc('day', invalidated_at) AS day, app_id, platform,
         count(*)::numeric AS invalidations
  FROM push.devices WHERE invalidated_at IS NOT NULL GROUP BY 1, 2, 3
)
SELECT day, app_id, platform,
       coalesce(reg.registrations, 0) AS registrations,
       coalesce(inv.invalidations, 0) AS invalidations,
       coalesce(reg.registrations, 0) - coalesce(inv.invalidations, 0)
         AS net
FROM reg FULL JOIN inv USING (day, app_id, platform);
COMMENT ON VIEW push.token_churn_daily IS
  'Token churn per day, app and platform: registrations (devices created '
  'that day) vs invalidations (devices whose token was invalidated that '
  'day, once each; a token registered again is active, no longer counted), '
  'from push.devices, and the difference.';
