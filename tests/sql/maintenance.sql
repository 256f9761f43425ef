-- maintenance.sql: push.maintain_partitions() (daily push.deliveries
-- partitions by UTC day, moving rows out of the default partition,
-- retention) and the latency histogram helpers.
BEGIN;
SELECT plan(31);

-- Partition days are UTC days, whatever the session's time zone.
SET LOCAL TimeZone = 'Pacific/Kiritimati';   -- UTC+14

INSERT INTO push.apps (name) VALUES ('mt_shop');

CREATE TEMP TABLE day AS
SELECT (now() AT TIME ZONE 'UTC')::date AS today;
CREATE FUNCTION pg_temp.part(p_offset integer) RETURNS text
LANGUAGE sql AS $$
  SELECT 'deliveries_' || to_char((SELECT today FROM day) + p_offset,
                                  'YYYYMMDD')
$$;
CREATE FUNCTION pg_temp.utc(p_offset integer, p_time text DEFAULT '00:00')
RETURNS timestamptz LANGUAGE sql AS $$
  SELECT (((SELECT today FROM day) + p_offset)::text || ' ' || p_time
          || ' UTC')::timestamptz
$$;
CREATE FUNCTION pg_temp.add_delivery(p_at timestamptz, p_tag text)
RETURNS void LANGUAGE sql AS $$
  INSERT INTO push.deliveries (finished_at, push_id, app_id, outcome,
                               provider_reason)
  VALUES (p_at, 0, push.app_id('mt_shop'), 'sent', p_tag)
$$;
CREATE FUNCTION pg_temp.where_is(p_tag text) RETURNS text
LANGUAGE sql AS $$
  SELECT string_agg(tableoid::regclass::text, ',') FROM push.deliveries
  WHERE provider_reason = p_tag
$$;

-- Start from no daily partitions (as a fresh database has), whatever the
-- migrations or other runs may have made; the transaction restores them.
DO $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT inhrelid::regclass AS part FROM pg_inherits
           WHERE inhparent = 'push.deliveries'::regclass
             AND inhrelid::regclass::text ~ '^push\.deliveries_[0-9]{8}$'
  LOOP
    EXECUTE format('DROP TABLE %s', r.part);
  END LOOP;
END $$;

-- Rows written before any daily partition exists land in the default one.
SELECT pg_temp.add_delivery(now(), 'now');
SELECT pg_temp.add_delivery(pg_temp.utc(1, '12:00'), 'tomorrow');
SELECT pg_temp.add_delivery(pg_temp.utc(-5, '12:00'), 'five days ago');
SELECT pg_temp.add_delivery(pg_temp.utc(-100, '12:00'), 'long ago');
SELECT is(pg_temp.where_is('now'), 'push.deliveries_default',
          'without a partition for today, a row lands in the default one');

-- Old daily partitions, as an earlier run would have left them: 40 and 31
-- days old (past the 30-day retention) and 30 days old (the last kept).
DO $$
DECLARE
  n integer;
BEGIN
  FOREACH n IN ARRAY ARRAY[-40, -31, -30] LOOP
    EXECUTE format('CREATE TABLE push.%I PARTITION OF push.deliveries '
                   'FOR VALUES FROM (%L) TO (%L)', pg_temp.part(n),
                   pg_temp.utc(n), pg_temp.utc(n + 1));
  END LOOP;
END $$;
SELECT pg_temp.add_delivery(pg_temp.utc(-40, '08:00'), 'day -40');
SELECT pg_temp.add_delivery(pg_temp.utc(-30, '08:00'), 'day -30');

-- Old pushes and idempotency keys: kept while queued, dropped otherwise.
INSERT INTO push.pushes (app_id, user_id, payload, created_at,
                         idempotency_key)
VALUES (push.app_id('mt_shop'), 'nobody', '{"title": "old, done"}',
        now() - interval '40 days', 'mt-old-key');
UPDATE push.idempotency_keys SET created_at = now() - interval '40 days'
 WHERE key = 'mt-old-key';
INSERT INTO push.pushes (app_id, platform, token, payload, created_at)
VALUES (push.app_id('mt_shop'), 'fcm', 'mt-fcm-token-00001',
        '{"title": "old, still queued"}', now() - interval '40 days');
INSERT INTO push.pushes (app_id, user_id, payload, idempotency_key)
VALUES (push.app_id('mt_shop'), 'nobody', '{"title": "new, done"}',
        'mt-new-key');

-- First run ---------------------------------------------------------------------
CREATE TEMP TABLE run1 AS SELECT * FROM push.maintain_partitions();

SELECT set_eq($$SELECT object FROM run1 WHERE action = 'created'$$,
  ARRAY['push.' || pg_temp.part(0), 'push.' || pg_temp.part(1),
        'push.' || pg_temp.part(2), 'push.' || pg_temp.part(3)],
  'creates today''s partition and partitions_ahead_days (3) more, named '
  'deliveries_YYYYMMDD');
SELECT ok((SELECT bool_and(EXISTS (
             SELECT 1 FROM pg_inherits i
             WHERE i.inhparent = 'push.deliveries'::regclass
               AND i.inhrelid = to_regclass('push.' || pg_temp.part(n))))
           FROM generate_series(0, 3) n),
          'each is attached as a partition of push.deliveries');
SELECT is(pg_temp.where_is('now'), 'push.' || pg_temp.part(0),
          'the row for today moved from the default partition into today''s');
SELECT is(pg_temp.where_is('tomorrow'), 'push.' || pg_temp.part(1),
          'the row for tomorrow moved into tomorrow''s');
SELECT is((SELECT count(*)::int FROM push.deliveries_default
           WHERE finished_at >= pg_temp.utc(0)), 0,
          'nothing of the new days is left in the default partition');
SELECT is(pg_temp.where_is('five days ago'), 'push.deliveries_default',
          'a row of a past day within retention stays in the default '
          'partition, kept');

-- Partition bounds are UTC days.
SELECT pg_temp.add_delivery(pg_temp.utc(0, '00:00'), 'today 00:00 UTC');
SELECT pg_temp.add_delivery(pg_temp.utc(0, '23:59:59.999'), 'today 23:59 UTC');
SELECT pg_temp.add_delivery(pg_temp.utc(1, '00:00'), 'tomorrow 00:00 UTC');
SELECT is(pg_temp.where_is('today 00:00 UTC'), 'push.' || pg_temp.part(0),
          'a day''s partition starts at 00:00 UTC');
SELECT is(pg_temp.where_is('today 23:59 UTC'), 'push.' || pg_temp.part(0),
          '... and holds the whole UTC day');
SELECT is(pg_temp.where_is('tomorrow 00:00 UTC'), 'push.' || pg_temp.part(1),
          '... the next UTC day goes to the next partition');

-- Retention.
SELECT set_eq($$SELECT object FROM run1 WHERE action = 'dropped'$$,
  ARRAY['push.' || pg_temp.part(-40), 'push.' || pg_temp.part(-31)],
  'drops the partitions older than history_retention_days (30)');
SELECT ok(to_regclass('push.' || pg_temp.part(-40)) IS NULL AND
          to_regclass('push.' || pg_temp.part(-31)) IS NULL,
          '... they are gone');
SELECT is(pg_temp.where_is('day -40'), NULL, '... with their rows');
SELECT is(pg_temp.where_is('day -30'), 'push.' || pg_temp.part(-30),
          'the partition exactly 30 days old is kept, with its rows');
SELECT is(pg_temp.where_is('long ago'), NULL,
          'expired rows of the default partition are deleted');
SELECT results_eq($$SELECT object FROM run1 WHERE action = 'deleted'
                    AND object LIKE '%deliveries_default'$$,
                  ARRAY['1 rows of push.deliveries_default'],
                  '... and reported');
SELECT set_eq($$SELECT payload ->> 'title' FROM push.pushes
                WHERE app_id = push.app_id('mt_shop')$$,
  ARRAY['old, still queued', 'new, done'],
  'expired pushes are deleted, but not one still in the queue');
SELECT set_eq($$SELECT key FROM push.idempotency_keys
                WHERE app_id = push.app_id('mt_shop')$$,
  ARRAY['mt-new-key'], 'expired idempotency keys are deleted');

-- Idempotent ---------------------------------------------------------------------------
CREATE TEMP TABLE parts1 AS
SELECT inhrelid::regclass::text AS part FROM pg_inherits
WHERE inhparent = 'push.deliveries'::regclass;
SELECT is_empty('SELECT * FROM push.maintain_partitions()',
                'a second run has nothing to do');
SELECT set_eq($$SELECT inhrelid::regclass::text FROM pg_inherits
                WHERE inhparent = 'push.deliveries'::regclass$$,
              'SELECT part FROM parts1',
              '... and leaves the same partitions');
SELECT is(pg_temp.where_is('now'), 'push.' || pg_temp.part(0),
          '... and the rows where they were');

-- Arguments and settings -------------------------------------------------------------------
SELECT results_eq($$SELECT action, object
                    FROM push.maintain_partitions(p_retention_days => 29)$$,
  $$VALUES ('dropped', 'push.' || pg_temp.part(-30))$$,
  'an explicit retention overrides the setting');
UPDATE push.settings SET value = '5' WHERE name = 'partitions_ahead_days';
SELECT set_eq($$SELECT object FROM push.maintain_partitions()
                WHERE action = 'created'$$,
  ARRAY['push.' || pg_temp.part(4), 'push.' || pg_temp.part(5)],
  'partitions_ahead_days is read from push.settings');
SELECT throws_ok('SELECT * FROM push.maintain_partitions(0)', 'P0001',
                 'pgpush: retention must be at least 1 day, not 0',
                 'a retention under one day is refused');

-- Latency histograms -----------------------------------------------------------------------
-- Bounds (ms): 1 2 5 10 20 50 100 200 500 1000 2000 5000 10000 30000 60000,
-- then one bucket for slower.
SELECT is(push.hist_percentile('{50,30,0,0,0,0,0,0,0,0,0,0,0,0,0,20}', 0.5),
          1::float8, 'p50 of 50 x <=1 ms, 30 x <=2 ms, 20 x slow is 1 ms');
SELECT is(push.hist_percentile('{50,30,0,0,0,0,0,0,0,0,0,0,0,0,0,20}', 0.8),
          2::float8, 'p80 of the same is 2 ms (the bucket reaching 80%)');
SELECT is(push.hist_percentile('{50,30,0,0,0,0,0,0,0,0,0,0,0,0,0,20}', 0.95),
          'Infinity'::float8, 'p95 of the same is past the last bound');
SELECT is(push.hist_percentile('{0,0,0,0,0,0,90,10}', 0.99), 200::float8,
          'p99 lands in the 200 ms bucket');
SELECT is(push.hist_percentile('{0,0,0,4}', 0), 10::float8,
          'p0 is the first non-empty bucket');
SELECT ok(push.hist_percentile('{}', 0.5) IS NULL AND
          push.hist_percentile('{0,0,0}', 0.5) IS NULL,
          'an empty histogram has no percentile');
SELECT is((SELECT push.hist_merge(h) FROM (VALUES ('{1,2}'::bigint[]),
             ('{0,1,5}'), (NULL)) v(h)),
          '{1,3,5}'::bigint[], 'hist_merge sums histograms bucket by bucket');

SELECT * FROM finish();
ROLLBACK;
