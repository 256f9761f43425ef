-- 0003: statistics views for analysts, rollup and retention run by the
-- dispatcher, dispatcher liveness (issue #8).
--
-- push.stats_minute rows older than stats_rollup_after_minutes move into
-- push.stats_hour (push.rollup_stats()); push.stats_all reads both and every
-- stats view reads push.stats_all. push.run_maintenance() is what pgpushd
-- runs every few minutes, one instance at a time. push.dispatchers records
-- each process's heartbeat interval so push.dispatcher_health can call a
-- process dead after 3 missed heartbeats.

ALTER TABLE push.dispatchers ADD COLUMN heartbeat_interval_ms integer;
COMMENT ON COLUMN push.dispatchers.heartbeat_interval_ms IS
  'How often this process heartbeats (ms); dead after 3 intervals without.';

-- Minutes older than stats_rollup_after_minutes are rolled into
-- push.stats_hour by push.rollup_stats(); the views read both.
CREATE TABLE push.stats_hour (
  hour           timestamptz NOT NULL,
  app_id         integer NOT NULL,
  platform       push.platform NOT NULL,
  campaign_id    bigint,
  outcome        push.outcome NOT NULL,
  count          bigint NOT NULL DEFAULT 0,
  attempts       bigint NOT NULL DEFAULT 0,
  bytes_sent     bigint NOT NULL DEFAULT 0,
  latency_ms_sum double precision NOT NULL DEFAULT 0,
  latency_ms_min double precision,
  latency_ms_max double precision,
  latency_hist   bigint[] NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX stats_hour_key ON push.stats_hour
  (hour, app_id, platform, campaign_id, outcome) NULLS NOT DISTINCT;
COMMENT ON TABLE push.stats_hour IS
  'push.stats_minute rows older than the stats_rollup_after_minutes '
  'setting, summed per UTC hour by push.rollup_stats() (same columns). '
  'Query the views (push.stats_hourly, push.app_stats_hourly...), which '
  'read both tables.';
COMMENT ON COLUMN push.stats_hour.hour IS 'Start of the UTC hour.';
COMMENT ON COLUMN push.stats_hour.count IS 'Pushes with this outcome.';
COMMENT ON COLUMN push.stats_hour.latency_hist IS
  'Latency histogram (push.latency_bounds_ms() buckets).';

CREATE VIEW push.stats_all AS
SELECT minute AS at, app_id, platform, campaign_id, outcome, count,
       attempts, bytes_sent, latency_ms_sum, latency_ms_min, latency_ms_max,
       latency_hist
FROM push.stats_minute
UNION ALL
SELECT hour, app_id, platform, campaign_id, outcome, count, attempts,
       bytes_sent, latency_ms_sum, latency_ms_min, latency_ms_max,
       latency_hist
FROM push.stats_hour;
COMMENT ON VIEW push.stats_all IS
  'Every statistics row, minute (push.stats_minute) or rolled-up hour '
  '(push.stats_hour); `at` is the start of its minute or hour. The base '
  'of the other stats views.';

CREATE FUNCTION push.rollup_stats(p_after_minutes integer DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_after integer := coalesce(p_after_minutes, (SELECT value::integer
            FROM push.settings WHERE name = 'stats_rollup_after_minutes'),
            1440);
  v_n     bigint;
BEGIN
  IF v_after < 1 THEN
    RAISE EXCEPTION 'pgpush: stats_rollup_after_minutes must be at least 1, '
      'not %', v_after;
  END IF;
  WITH moved AS (
    DELETE FROM push.stats_minute
    WHERE minute < date_trunc('minute', now()) - make_interval(mins => v_after)
    RETURNING *
  )
  INSERT INTO push.stats_hour AS h (hour, app_id, platform, campaign_id,
    outcome, count, attempts, bytes_sent, latency_ms_sum, latency_ms_min,
    latency_ms_max, latency_hist)
  SELECT date_trunc('hour', minute AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
         app_id, platform, campaign_id, outcome, sum(count), sum(attempts),
         sum(bytes_sent), sum(latency_ms_sum), min(latency_ms_min),
         max(latency_ms_max), coalesce(push.hist_merge(latency_hist), '{}')
  FROM moved
  GROUP BY 1, 2, 3, 4, 5
  ON CONFLICT (hour, app_id, platform, campaign_id, outcome)
  DO UPDATE SET count = h.count + EXCLUDED.count,
    attempts = h.attempts + EXCLUDED.attempts,
    bytes_sent = h.bytes_sent + EXCLUDED.bytes_sent,
    latency_ms_sum = h.latency_ms_sum + EXCLUDED.latency_ms_sum,
    latency_ms_min = least(h.latency_ms_min, EXCLUDED.latency_ms_min),
    latency_ms_max = greatest(h.latency_ms_max, EXCLUDED.latency_ms_max),
    latency_hist = push.hist_add(h.latency_hist, EXCLUDED.latency_hist);
  GET DIAGNOSTICS v_n = ROW_COUNT;
  RETURN v_n;
END $$;
COMMENT ON FUNCTION push.rollup_stats(integer) IS
  'Moves push.stats_minute rows older than the given minutes (default: '
  'the stats_rollup_after_minutes setting) into push.stats_hour, summed '
  'per UTC hour. Returns the hourly rows written. Totals are unchanged.';

CREATE FUNCTION push.run_maintenance()
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
  v_n := push.rollup_stats();
  IF v_n > 0 THEN
    action := 'rolled up'; object := v_n || ' rows of push.stats_hour';
    RETURN NEXT;
  END IF;
  RETURN QUERY SELECT * FROM push.maintain_partitions();
  DELETE FROM push.debug_events WHERE at < now() - make_interval(days => v_days);
  GET DIAGNOSTICS v_n = ROW_COUNT;
  IF v_n > 0 THEN
    action := 'deleted'; object := v_n || ' rows of push.debug_events';
    RETURN NEXT;
  END IF;
END $$;
COMMENT ON FUNCTION push.run_maintenance() IS
  'What pgpushd runs every few minutes: push.rollup_stats(), '
  'push.maintain_partitions() and the debug_events_retention_days '
  'retention of push.debug_events. One session at a time (advisory lock); '
  'a second caller returns ''skipped'' at once.';

CREATE OR REPLACE VIEW push.stats_hourly AS
SELECT date_trunc('hour', at) AS hour, app_id, platform, outcome,
       sum(count) AS count, sum(attempts) AS attempts,
       sum(bytes_sent) AS bytes_sent,
       sum(latency_ms_sum) / nullif(sum(count), 0) AS latency_ms_avg,
       push.hist_percentile(push.hist_merge(latency_hist), 0.50)
         AS latency_ms_p50,
       push.hist_percentile(push.hist_merge(latency_hist), 0.95)
         AS latency_ms_p95,
       push.hist_percentile(push.hist_merge(latency_hist), 0.99)
         AS latency_ms_p99
FROM push.stats_all
GROUP BY 1, 2, 3, 4;
COMMENT ON VIEW push.stats_hourly IS
  'Outcomes per hour, app, platform: counts and latency percentiles.';

CREATE OR REPLACE VIEW push.stats_daily AS
SELECT date_trunc('day', at) AS day, app_id, platform, outcome,
       sum(count) AS count, sum(attempts) AS attempts,
       sum(bytes_sent) AS bytes_sent,
       sum(latency_ms_sum) / nullif(sum(count), 0) AS latency_ms_avg,
       push.hist_percentile(push.hist_merge(latency_hist), 0.50)
         AS latency_ms_p50,
       push.hist_percentile(push.hist_merge(latency_hist), 0.95)
         AS latency_ms_p95,
       push.hist_percentile(push.hist_merge(latency_hist), 0.99)
         AS latency_ms_p99
FROM push.stats_all
GROUP BY 1, 2, 3, 4;
COMMENT ON VIEW push.stats_daily IS
  'Outcomes per day, app, platform: counts and latency percentiles.';

CREATE VIEW push.app_stats_hourly AS
SELECT s.hour, s.app_id, s.platform, s.total, s.sent, s.retried, s.failed,
       s.invalid_token, s.expired, s.dropped_banned, s.dropped_overload,
       s.uncertain, s.no_device, s.cancelled, s.attempts, s.bytes_sent,
       s.latency_ms_avg, s.latency_ms_p50, s.latency_ms_p95, s.latency_ms_p99,
       (SELECT jsonb_object_agg(r.reason, r.n ORDER BY r.reason)
        FROM (SELECT coalesce(d.provider_reason, d.outcome::text) AS reason,
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
         sum(latency_ms_sum) / nullif(sum(count) FILTER
           (WHERE latency_ms_min IS NOT NULL), 0) AS latency_ms_avg,
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
  'overload...), requests, bytes, latency (enqueue to provider response) '
  'mean and p50/p95/p99 from the histogram (bucket upper bounds), and the '
  'failures (failed, invalid_token) by provider reason from '
  'push.deliveries (while its partitions are kept).';

CREATE VIEW push.app_stats_daily AS
SELECT s.day, s.app_id, s.platform, s.total, s.sent, s.retried, s.failed,
       s.invalid_token, s.expired, s.dropped_banned, s.dropped_overload,
       s.uncertain, s.no_device, s.cancelled, s.attempts, s.bytes_sent,
       s.latency_ms_avg, s.latency_ms_p50, s.latency_ms_p95, s.latency_ms_p99,
       (SELECT jsonb_object_agg(r.reason, r.n ORDER BY r.reason)
        FROM (SELECT coalesce(d.provider_reason, d.outcome::text) AS reason,
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
         sum(latency_ms_sum) / nullif(sum(count) FILTER
           (WHERE latency_ms_min IS NOT NULL), 0) AS latency_ms_avg,
         push.hist_percentile(push.hist_merge(latency_hist), 0.50)
           AS latency_ms_p50,
         push.hist_percentile(push.hist_merge(latency_hist), 0.95)
           AS latency_ms_p95,
         push.hist_percentile(push.hist_merge(latency_hist), 0.99)
           AS latency_ms_p99
  FROM push.stats_all
  GROUP BY 1, 2, 3
) s;
COMMENT ON VIEW push.app_stats_daily IS
  'As push.app_stats_hourly, per day (of the session''s TimeZone).';

CREATE VIEW push.outcomes_by_device AS
SELECT date_trunc('day', d.finished_at) AS day, d.app_id, d.platform,
       a.attribute, a.value,
       count(DISTINCT d.device_id) FILTER (WHERE d.outcome = 'sent')
         AS devices_reached,
       count(*) FILTER (WHERE d.outcome = 'sent') AS sent,
       count(*) FILTER (WHERE d.outcome = 'retry') AS retried,
       count(*) FILTER (WHERE d.outcome = 'failed') AS failed,
       count(*) FILTER (WHERE d.outcome = 'invalid_token') AS invalid_token,
       count(*) FILTER (WHERE d.outcome = 'expired') AS expired,
       count(*) FILTER (WHERE d.outcome IN ('dropped_banned',
                                            'dropped_overload'))
         AS dropped,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY d.latency_ms)
         AS latency_ms_p50
FROM push.deliveries d
JOIN push.devices v ON v.id = d.device_id
CROSS JOIN LATERAL (VALUES ('app_version', v.app_version),
                           ('os_version', v.os_version),
                           ('device_model', v.device_model),
                           ('timezone', v.timezone)) AS a(attribute, value)
GROUP BY 1, 2, 3, 4, 5;
COMMENT ON VIEW push.outcomes_by_device IS
  'Reach and outcomes per day by device attribute (attribute = '
  'app_version, os_version, device_model or timezone; value NULL when the '
  'device did not say), from push.deliveries joined to the device''s '
  'current attributes. devices_reached counts distinct devices with a '
  'sent push; compare with push.devices_by_attribute for the reach ratio.';

CREATE VIEW push.devices_by_attribute AS
SELECT v.app_id, v.platform, a.attribute, a.value,
       count(*) FILTER (WHERE v.invalidated_at IS NULL) AS active_devices,
       count(*) FILTER (WHERE v.invalidated_at IS NOT NULL)
         AS invalidated_devices
FROM push.devices v
CROSS JOIN LATERAL (VALUES ('app_version', v.app_version),
                           ('os_version', v.os_version),
                           ('device_model', v.device_model),
                           ('timezone', v.timezone)) AS a(attribute, value)
GROUP BY 1, 2, 3, 4;
COMMENT ON VIEW push.devices_by_attribute IS
  'Registered devices per app, platform and attribute value (app_version, '
  'os_version, device_model, timezone): active and invalidated.';

CREATE VIEW push.token_churn_daily AS
WITH reg AS (
  SELECT date_trunc('day', created_at) AS day, app_id, platform,
         count(*) AS registrations
  FROM push.devices GROUP BY 1, 2, 3
), inv AS (
  SELECT date_trunc('day', at) AS day, app_id, platform,
         sum(count) AS invalidations
  FROM push.stats_all WHERE outcome = 'invalid_token' GROUP BY 1, 2, 3
)
SELECT day, app_id, platform,
       coalesce(reg.registrations, 0) AS registrations,
       coalesce(inv.invalidations, 0) AS invalidations,
       coalesce(reg.registrations, 0) - coalesce(inv.invalidations, 0)
         AS net
FROM reg FULL JOIN inv USING (day, app_id, platform);
COMMENT ON VIEW push.token_churn_daily IS
  'Token churn per day, app and platform: registrations (new tokens in '
  'push.devices) vs invalidations (invalid_token outcomes in the stats), '
  'and the difference.';

CREATE VIEW push.dispatcher_health AS
SELECT id, host, pid, version, started_at, heartbeat_at,
       extract(epoch FROM now() - heartbeat_at) AS seconds_since_heartbeat,
       CASE
         WHEN state IN ('stopped', 'dead') THEN state
         WHEN heartbeat_at < now() - 3 * make_interval(secs =>
              coalesce(heartbeat_interval_ms, 2000) / 1000.0) THEN 'dead'
         ELSE state
       END AS status,
       state IN ('running', 'draining')
         AND heartbeat_at >= now() - 3 * make_interval(secs =>
              coalesce(heartbeat_interval_ms, 2000) / 1000.0) AS live,
       in_flight, pools, pg_connections, claims_per_second, acks_per_second,
       rss_bytes, last_error
FROM push.dispatchers;
COMMENT ON VIEW push.dispatcher_health IS
  'Live vs dead dispatchers: status is running or draining while the '
  'heartbeat is fresh, dead once no heartbeat came for 3 of the '
  'process''s heartbeat intervals (or marked dead), stopped after a clean '
  'exit; live is true for a running or draining process with a fresh '
  'heartbeat.';

CREATE VIEW push.campaign_funnel AS
SELECT c.id AS campaign_id, c.app_id, c.name, c.state,
       coalesce(t.targets, 0) AS targets,
       coalesce(t.queued, 0) AS queued,
       coalesce(s.sent, 0) AS sent,
       coalesce(s.failed, 0) AS failed,
       coalesce(s.invalidated, 0) AS invalidated,
       coalesce(s.expired, 0) AS expired,
       coalesce(s.dropped, 0) AS dropped,
       coalesce(s.retried, 0) AS retried,
       s.latency_ms_p50, s.latency_ms_p95
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
         push.hist_percentile(push.hist_merge(latency_hist), 0.50)
           AS latency_ms_p50,
         push.hist_percentile(push.hist_merge(latency_hist), 0.95)
           AS latency_ms_p95
  FROM push.stats_all sa WHERE sa.campaign_id = c.id
) s ON true;
COMMENT ON VIEW push.campaign_funnel IS
  'Per campaign: targets, queued (targets whose push was enqueued), then '
  'outcomes from the stats - sent, failed, invalidated (dead tokens), '
  'expired, dropped (ban or overload), retried attempts - and latency '
  'p50/p95.';

INSERT INTO push.settings (name, value, description) VALUES
  ('stats_rollup_after_minutes', '1440',
   'Minutes after which push.stats_minute rows are rolled into '
   'push.stats_hour by push.rollup_stats().'),
  ('debug_events_retention_days', '7',
   'Days of push.debug_events kept by push.run_maintenance().')
ON CONFLICT (name) DO NOTHING;

REVOKE EXECUTE ON FUNCTION push.rollup_stats(integer), push.run_maintenance()
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION push.rollup_stats(integer), push.run_maintenance()
  TO pgpush_admin, pgpush_dispatcher;
GRANT SELECT ON push.stats_hour, push.stats_all, push.app_stats_hourly,
  push.app_stats_daily, push.outcomes_by_device, push.devices_by_attribute,
  push.token_churn_daily, push.dispatcher_health, push.campaign_funnel
  TO pgpush_analyst, pgpush_dispatcher;
GRANT ALL ON push.stats_hour, push.stats_all, push.app_stats_hourly,
  push.app_stats_daily, push.outcomes_by_device, push.devices_by_attribute,
  push.token_churn_daily, push.dispatcher_health, push.campaign_funnel
  TO pgpush_admin;
