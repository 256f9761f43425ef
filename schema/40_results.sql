-- pgpush schema, part 4: what happened - delivery history, statistics,
-- dispatcher heartbeats and debug traces.
--
-- push.deliveries is range-partitioned by day on finished_at, so retention
-- is DROP TABLE of old partitions, not DELETE. push.maintain_partitions()
-- creates the coming days' partitions ahead of time (the migration the
-- first ones) and drops expired ones. A DEFAULT partition catches rows for
-- days without a partition (a database whose maintenance did not run for
-- days); maintenance moves them when it creates their day.

CREATE TABLE push.deliveries (
  finished_at         timestamptz NOT NULL DEFAULT now(),
  push_id             bigint NOT NULL,
  queue_id            bigint,
  app_id              integer NOT NULL,
  platform            push.platform,
  device_id           bigint,
  campaign_id         bigint,
  outcome             push.outcome NOT NULL,
  attempt             integer NOT NULL DEFAULT 0,
  provider_status     integer,
  provider_reason     text,
  provider_message_id text,
  enqueued_at         timestamptz,
  sent_at             timestamptz,
  latency_ms          double precision,
  retry_at            timestamptz,
  dispatcher          text,
  detail              jsonb
) PARTITION BY RANGE (finished_at);
CREATE TABLE push.deliveries_default PARTITION OF push.deliveries DEFAULT;
CREATE INDEX deliveries_push ON push.deliveries (push_id);
CREATE INDEX deliveries_app_time ON push.deliveries (app_id, finished_at);
COMMENT ON TABLE push.deliveries IS
  'Delivery history: one row per attempt outcome of a push to one device '
  '(sent, retry, failed, invalid_token, expired, dropped_*, uncertain, '
  'no_device, cancelled). Partitioned by day on finished_at; partitions '
  'older than history_retention_days are dropped by '
  'push.maintain_partitions().';
COMMENT ON TABLE push.deliveries_default IS
  'Catch-all partition for days that have no partition yet; '
  'push.maintain_partitions() moves its rows into daily partitions.';
COMMENT ON COLUMN push.deliveries.finished_at IS
  'When the outcome was known (provider response, or the drop decision).';
COMMENT ON COLUMN push.deliveries.push_id IS 'The push (push.pushes.id).';
COMMENT ON COLUMN push.deliveries.queue_id IS
  'The queue row this attempt came from (push.queue.id), if any.';
COMMENT ON COLUMN push.deliveries.app_id IS 'The app (push.apps.id).';
COMMENT ON COLUMN push.deliveries.platform IS
  'Platform of the device; NULL for a user with no device.';
COMMENT ON COLUMN push.deliveries.device_id IS
  'Target device, if registered.';
COMMENT ON COLUMN push.deliveries.campaign_id IS 'Campaign, if any.';
COMMENT ON COLUMN push.deliveries.outcome IS 'What happened (push.outcome).';
COMMENT ON COLUMN push.deliveries.attempt IS
  'Which attempt this was, 1 for the first; 0 when nothing was sent.';
COMMENT ON COLUMN push.deliveries.provider_status IS
  'HTTP status the provider answered, if it answered.';
COMMENT ON COLUMN push.deliveries.provider_reason IS
  'The provider''s reason (e.g. BadDeviceToken, UNREGISTERED) or '
  'pgpush''s own explanation.';
COMMENT ON COLUMN push.deliveries.provider_message_id IS
  'The provider''s id of the message (apns-id, FCM message name, '
  'X-WNS-Msg-ID, X-MessageID), to match the provider''s logs.';
COMMENT ON COLUMN push.deliveries.enqueued_at IS 'When the push was enqueued.';
COMMENT ON COLUMN push.deliveries.sent_at IS
  'When the request was sent to the provider.';
COMMENT ON COLUMN push.deliveries.latency_ms IS
  'Milliseconds from enqueued_at to the provider''s response.';
COMMENT ON COLUMN push.deliveries.retry_at IS
  'For outcome retry: when the next attempt is due.';
COMMENT ON COLUMN push.deliveries.dispatcher IS
  'The dispatcher that recorded it (push.dispatchers.id).';
COMMENT ON COLUMN push.deliveries.detail IS
  'Extra facts, e.g. the outcome of each request of a multi-request push '
  '(WNS toast + badge + tile).';

CREATE FUNCTION push.maintain_partitions(
  p_retention_days integer DEFAULT NULL,
  p_days_ahead integer DEFAULT NULL
) RETURNS TABLE (action text, object text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_keep  integer := coalesce(p_retention_days, (SELECT value::integer
            FROM push.settings WHERE name = 'history_retention_days'), 30);
  v_ahead integer := coalesce(p_days_ahead, (SELECT value::integer
            FROM push.settings WHERE name = 'partitions_ahead_days'), 3);
  v_day   date;
  v_name  text;
  v_part  record;
  v_cut   date;
  v_n     bigint;
BEGIN
  IF v_keep < 1 THEN
    RAISE EXCEPTION 'pgpush: retention must be at least 1 day, not %',
      v_keep;
  END IF;
  -- Serialise with other maintainers (one dispatcher at a time, or admin).
  PERFORM pg_advisory_xact_lock(hashtext('pgpush.maintain_partitions'));
  v_cut := (now() AT TIME ZONE 'UTC')::date - v_keep;

  -- Create today's and the coming days' partitions (UTC days). They are
  -- made ahead of time (the migration makes the first ones), so the rows
  -- the dispatchers write always have a daily partition waiting and the
  -- default partition stays empty.
  FOR i IN 0 .. v_ahead LOOP
    v_day := (now() AT TIME ZONE 'UTC')::date + i;
    v_name := 'deliveries_' || to_char(v_day, 'YYYYMMDD');
    CONTINUE WHEN to_regclass('push.' || v_name) IS NOT NULL;
    -- A day rows are being written for (today; tomorrow, for a clock a
    -- little ahead), or one that already has rows in the default
    -- partition: no insert into push.deliveries may be running while it
    -- is attached. An insert that chose the default partition by the old
    -- bounds would fail once the default partition's constraint changed
    -- ('new row for relation "deliveries_default" violates partition
    -- constraint'), and a row of the day written meanwhile would fail the
    -- attach. So first wait for the inserts in flight and hold new ones
    -- until commit (EXCLUSIVE blocks writers, not readers), then move the
    -- day's rows and attach. Days further ahead, the usual case, need no
    -- such lock: nothing is written for them.
    IF v_day <= (now() AT TIME ZONE 'UTC')::date + 1 OR EXISTS (
         SELECT 1 FROM push.deliveries_default
         WHERE finished_at >= (v_day::text || ' 00:00 UTC')::timestamptz
           AND finished_at < ((v_day + 1)::text || ' 00:00 UTC')::timestamptz)
    THEN
      LOCK TABLE push.deliveries IN EXCLUSIVE MODE;
    END IF;
    EXECUTE format('CREATE TABLE push.%I (LIKE push.deliveries '
                   'INCLUDING DEFAULTS)', v_name);
    -- Rows that already landed in the default partition move over first.
    EXECUTE format('WITH m AS (DELETE FROM push.deliveries_default WHERE '
      'finished_at >= %L::timestamptz AND finished_at < %L::timestamptz '
      'RETURNING *) INSERT INTO push.%I SELECT * FROM m',
      v_day::text || ' 00:00 UTC', (v_day + 1)::text || ' 00:00 UTC', v_name);
    EXECUTE format('ALTER TABLE push.deliveries ATTACH PARTITION push.%I '
      'FOR VALUES FROM (%L) TO (%L)', v_name,
      v_day::text || ' 00:00 UTC', (v_day + 1)::text || ' 00:00 UTC');
    action := 'created'; object := 'push.' || v_name;
    RETURN NEXT;
  END LOOP;

  -- Drop daily partitions that ended before the retention cut.
  FOR v_part IN
    SELECT c.relname FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'push.deliveries'::regclass
      AND c.relname ~ '^deliveries_[0-9]{8}$'
      AND to_date(substr(c.relname, 12), 'YYYYMMDD') < v_cut
    ORDER BY c.relname
  LOOP
    EXECUTE format('DROP TABLE push.%I', v_part.relname);
    action := 'dropped'; object := 'push.' || v_part.relname;
    RETURN NEXT;
  END LOOP;

  DELETE FROM push.deliveries_default
  WHERE finished_at < (v_cut::text || ' 00:00 UTC')::timestamptz;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  IF v_n > 0 THEN
    action := 'deleted'; object := v_n || ' rows of push.deliveries_default';
    RETURN NEXT;
  END IF;

  -- Pushes and idempotency keys age out with the history; a push still in
  -- the queue (paused app, far send_after) is kept.
  DELETE FROM push.pushes p
  WHERE p.created_at < (v_cut::text || ' 00:00 UTC')::timestamptz
    AND NOT EXISTS (SELECT 1 FROM push.queue q WHERE q.push_id = p.id);
  GET DIAGNOSTICS v_n = ROW_COUNT;
  IF v_n > 0 THEN
    action := 'deleted'; object := v_n || ' rows of push.pushes';
    RETURN NEXT;
  END IF;
  DELETE FROM push.idempotency_keys
  WHERE created_at < (v_cut::text || ' 00:00 UTC')::timestamptz;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  IF v_n > 0 THEN
    action := 'deleted'; object := v_n || ' rows of push.idempotency_keys';
    RETURN NEXT;
  END IF;
END $$;
COMMENT ON FUNCTION push.maintain_partitions(integer, integer) IS
  'Creates daily push.deliveries partitions for today and the next '
  'partitions_ahead_days (UTC), drops partitions older than the retention '
  '(history_retention_days unless given), and deletes expired pushes and '
  'idempotency keys. Returns what it did. Safe to run any time, by one '
  'session at a time, while dispatchers write: creating a partition for a '
  'day rows are written for (today, tomorrow) or that has rows in the '
  'default partition first waits for the inserts into push.deliveries in '
  'flight and holds new ones until commit, so none fails.';

-- Latency histogram: fixed bucket upper bounds in milliseconds. Bucket i of
-- a histogram array counts latencies <= bound i (and > bound i-1); the last
-- bucket is everything slower than the last bound.
CREATE FUNCTION push.latency_bounds_ms() RETURNS double precision[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT '{1,2,5,10,20,50,100,200,500,1000,2000,5000,10000,30000,60000}'
         ::double precision[]
$$;
COMMENT ON FUNCTION push.latency_bounds_ms() IS
  'Upper bounds (ms) of the latency histogram buckets of push.stats_minute; '
  'the histogram has one more bucket for slower than the last bound.';

CREATE FUNCTION push.hist_add(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a ELSE
    ARRAY(SELECT coalesce(a[i], 0) + coalesce(b[i], 0)
          FROM generate_series(1, greatest(cardinality(a), cardinality(b)))
          AS i ORDER BY i)
  END
$$;
COMMENT ON FUNCTION push.hist_add(bigint[], bigint[]) IS
  'Element-wise sum of two latency histograms.';

CREATE AGGREGATE push.hist_merge(bigint[]) (
  SFUNC = push.hist_add, STYPE = bigint[], PARALLEL = SAFE
);
COMMENT ON AGGREGATE push.hist_merge(bigint[]) IS
  'Sums latency histograms over rows, e.g. minutes into an hour.';

CREATE FUNCTION push.hist_percentile(h bigint[], p double precision)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  WITH b AS (
    SELECT i, h[i] AS n, sum(h[i]) OVER (ORDER BY i) AS cum
    FROM generate_series(1, cardinality(h)) AS i
  )
  SELECT CASE WHEN (SELECT sum(n) FROM b) > 0 THEN
    (SELECT coalesce((push.latency_bounds_ms())[i], 'Infinity')
     FROM b WHERE cum >= p * (SELECT sum(n) FROM b) AND n > 0
     ORDER BY i LIMIT 1)
  END
$$;
COMMENT ON FUNCTION push.hist_percentile(bigint[], double precision) IS
  'Estimated p-quantile (0..1) of a latency histogram: the upper bound in '
  'ms of the bucket that holds it (Infinity past the last bound; NULL if '
  'empty).';

CREATE FUNCTION push.hist_count(h bigint[]) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(sum(n), 0)::bigint FROM unnest(h) AS n
$$;
COMMENT ON FUNCTION push.hist_count(bigint[]) IS
  'Latencies a histogram holds (the sum of its buckets): the divisor of a '
  'mean latency, since not every counted push has a latency (drops, '
  'outcomes decided at enqueue).';

CREATE TABLE push.stats_minute (
  minute         timestamptz NOT NULL,
  app_id         integer NOT NULL,
  platform       push.platform,
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
CREATE UNIQUE INDEX stats_minute_key ON push.stats_minute
  (minute, app_id, platform, campaign_id, outcome) NULLS NOT DISTINCT;
COMMENT ON TABLE push.stats_minute IS
  'Per-minute rollup of delivery outcomes by app, platform, campaign and '
  'outcome, merged from each dispatcher''s in-memory counters every few '
  'seconds with INSERT ... ON CONFLICT DO UPDATE. Outcomes decided at '
  'enqueue (no_device, invalid_token of an already invalidated device) '
  'wait in push.stats_inbox and are added by push.fold_stats_inbox() '
  '(every push.run_maintenance()); push.stats_all counts them meanwhile.';
COMMENT ON COLUMN push.stats_minute.minute IS 'Start of the minute.';
COMMENT ON COLUMN push.stats_minute.app_id IS 'The app (push.apps.id).';
COMMENT ON COLUMN push.stats_minute.platform IS
  'The platform; NULL only for no_device outcomes of a user target that '
  'named no platform.';
COMMENT ON COLUMN push.stats_minute.campaign_id IS
  'Campaign, or NULL for pushes outside campaigns.';
COMMENT ON COLUMN push.stats_minute.outcome IS 'What happened.';
COMMENT ON COLUMN push.stats_minute.count IS 'Pushes with this outcome.';
COMMENT ON COLUMN push.stats_minute.attempts IS
  'Provider requests those pushes took.';
COMMENT ON COLUMN push.stats_minute.bytes_sent IS 'Request body bytes sent.';
COMMENT ON COLUMN push.stats_minute.latency_ms_sum IS
  'Sum of enqueue-to-provider-response milliseconds (mean = sum / count).';
COMMENT ON COLUMN push.stats_minute.latency_ms_min IS 'Fastest, ms.';
COMMENT ON COLUMN push.stats_minute.latency_ms_max IS 'Slowest, ms.';
COMMENT ON COLUMN push.stats_minute.latency_hist IS
  'Latency histogram; bucket bounds in push.latency_bounds_ms(); '
  'percentiles with push.hist_percentile().';

-- Minutes older than stats_rollup_after_minutes are rolled into
-- push.stats_hour by push.rollup_stats(); the views read both.
CREATE TABLE push.stats_hour (
  hour           timestamptz NOT NULL,
  app_id         integer NOT NULL,
  platform       push.platform,
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
COMMENT ON COLUMN push.stats_hour.platform IS
  'The platform; NULL only for no_device outcomes of a user target that '
  'named no platform.';
COMMENT ON COLUMN push.stats_hour.count IS 'Pushes with this outcome.';
COMMENT ON COLUMN push.stats_hour.latency_hist IS
  'Latency histogram (push.latency_bounds_ms() buckets).';

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

CREATE VIEW push.stats_all AS
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

CREATE VIEW push.stats_hourly AS
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
COMMENT ON VIEW push.stats_hourly IS
  'Outcomes per hour, app, platform: counts and latency percentiles.';

CREATE VIEW push.stats_daily AS
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
COMMENT ON VIEW push.stats_daily IS
  'Outcomes per day, app, platform: counts and latency percentiles.';

CREATE TABLE push.dispatchers (
  id                  text PRIMARY KEY,
  host                text NOT NULL,
  pid                 integer NOT NULL,
  version             text NOT NULL,
  state               text NOT NULL DEFAULT 'running'
    CONSTRAINT dispatchers_state_known
      CHECK (state IN ('running', 'draining', 'stopped', 'dead')),
  started_at          timestamptz NOT NULL DEFAULT now(),
  heartbeat_at        timestamptz NOT NULL DEFAULT now(),
  stopped_at          timestamptz,
  cpu_user_seconds    double precision,
  cpu_system_seconds  double precision,
  rss_bytes           bigint,
  open_fds            integer,
  pg_connections      integer,
  pools               integer,
  in_flight           integer,
  queue_depth         bigint,
  claims_per_second   double precision,
  acks_per_second     double precision,
  pool_detail         jsonb,
  last_error          text,
  heartbeat_interval_ms integer
);
COMMENT ON TABLE push.dispatchers IS
  'One row per pgpushd process, updated by its heartbeat every few '
  'seconds. A running row whose heartbeat_at is old is a dead process.';
COMMENT ON COLUMN push.dispatchers.id IS
  'Dispatcher id (host:pid:start), also the lease owner of queue rows.';
COMMENT ON COLUMN push.dispatchers.state IS
  'running, draining (shutting down), stopped (clean exit) or dead '
  '(marked by another dispatcher that reclaimed its leases).';
COMMENT ON COLUMN push.dispatchers.heartbeat_at IS 'Last heartbeat.';
COMMENT ON COLUMN push.dispatchers.rss_bytes IS 'Resident memory.';
COMMENT ON COLUMN push.dispatchers.pg_connections IS
  'Postgres connections the process holds (never more than 4).';
COMMENT ON COLUMN push.dispatchers.pools IS
  'Number of per-(app, platform, credential) pools.';
COMMENT ON COLUMN push.dispatchers.in_flight IS 'Provider requests in flight.';
COMMENT ON COLUMN push.dispatchers.queue_depth IS
  'Rows in push.queue at the last heartbeat.';
COMMENT ON COLUMN push.dispatchers.pool_detail IS
  'Per-pool sizes: ring fill, window, in-flight, connections.';
COMMENT ON COLUMN push.dispatchers.last_error IS
  'The last error the process logged, for a quick look.';
COMMENT ON COLUMN push.dispatchers.heartbeat_interval_ms IS
  'How often this process heartbeats (ms); dead after 3 intervals without.';

CREATE TABLE push.debug_events (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at         timestamptz NOT NULL DEFAULT clock_timestamp(),
  push_id    bigint NOT NULL,
  queue_id   bigint,
  dispatcher text,
  step       text NOT NULL,
  detail     jsonb
);
CREATE INDEX debug_events_push ON push.debug_events (push_id, at);
COMMENT ON TABLE push.debug_events IS
  'Step-by-step trace of pushes inserted with debug = true (claimed, '
  'request built, sent, response, retry decision, ack) with millisecond '
  'timestamps. Never contains secrets.';
COMMENT ON COLUMN push.debug_events.at IS 'When the step happened.';
COMMENT ON COLUMN push.debug_events.step IS 'Step name, e.g. claimed, sent.';
COMMENT ON COLUMN push.debug_events.detail IS
  'What the step saw (headers without secrets, status, excerpt, decision).';

CREATE VIEW push.app_stats_hourly AS
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

CREATE VIEW push.app_stats_daily AS
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

INSERT INTO push.settings (name, value, description) VALUES
  ('stats_rollup_after_minutes', '1440',
   'Minutes after which push.stats_minute rows are rolled into '
   'push.stats_hour by push.rollup_stats().'),
  ('debug_events_retention_days', '7',
   'Days of push.debug_events kept by push.run_maintenance().')
ON CONFLICT (name) DO NOTHING;
