-- stats_views.sql: the analysts' views of migration 0003 return exactly the
-- numbers put in (counts by outcome and reason, percentiles from the
-- histogram), push.rollup_stats() moves minutes into hours without
-- changing any total, push.dispatcher_health calls a process dead after 3
-- missed heartbeats, the campaign funnel and token churn add up, and
-- pgpush_analyst can read every view.
BEGIN;
SELECT plan(40);

SET LOCAL TimeZone = 'UTC';

INSERT INTO push.apps (name) VALUES ('sv_shop'), ('sv_other');
CREATE TEMP TABLE t AS
SELECT push.app_id('sv_shop') AS a, push.app_id('sv_other') AS b,
       date_trunc('hour', now()) - interval '3 hours' AS h;

-- A histogram with n latencies in the bucket of upper bound `ms`.
CREATE FUNCTION pg_temp.hist(ms double precision, n bigint) RETURNS bigint[]
LANGUAGE sql AS $$
  SELECT array_agg(CASE WHEN b = ms THEN n ELSE 0 END ORDER BY i)
  FROM unnest(push.latency_bounds_ms() || 'Infinity'::float8)
       WITH ORDINALITY AS x(b, i)
$$;

-- Hour h: 90 sent at <= 20 ms and 10 sent at <= 500 ms (two minutes),
-- 4 invalid tokens, 3 failed, 2 dropped by a ban, 1 expired; app b: 5 sent.
INSERT INTO push.stats_minute (minute, app_id, platform, campaign_id, outcome,
  count, attempts, bytes_sent, latency_ms_sum, latency_ms_min,
  latency_ms_max, latency_hist)
SELECT h + interval '1 minute', a, 'fcm'::push.platform, NULL::bigint,
       'sent'::push.outcome, 90, 90, 9000,
       90 * 15, 11, 19, pg_temp.hist(20, 90) FROM t
UNION ALL
SELECT h + interval '2 minutes', a, 'fcm', NULL, 'sent', 10::bigint, 12, 1000,
       10 * 400, 300, 480, pg_temp.hist(500, 10) FROM t
UNION ALL
SELECT h + interval '2 minutes', a, 'fcm', NULL, 'invalid_token', 4, 4, 400,
       40, 9, 11, pg_temp.hist(10, 4) FROM t
UNION ALL
SELECT h + interval '3 minutes', a, 'fcm', NULL, 'failed', 3, 3, 300,
       30, 9, 11, pg_temp.hist(10, 3) FROM t
UNION ALL
SELECT h + interval '3 minutes', a, 'fcm', NULL, 'dropped_banned', 2, 0, 0,
       0, NULL, NULL, pg_temp.hist(1, 0) FROM t
UNION ALL
SELECT h + interval '4 minutes', a, 'fcm', NULL, 'expired', 1, 0, 0,
       0, NULL, NULL, pg_temp.hist(1, 0) FROM t
UNION ALL
SELECT h + interval '5 minutes', b, 'apns', NULL, 'sent', 5, 5, 50,
       5, 1, 1, pg_temp.hist(1, 5) FROM t;

-- The reasons of those failures, as the dispatcher records them.
INSERT INTO push.deliveries (finished_at, push_id, app_id, platform, outcome,
                             provider_reason, dispatcher)
SELECT h + interval '2 minutes', 0, a, 'fcm'::push.platform,
       'invalid_token'::push.outcome,
       CASE WHEN i <= 3 THEN 'UNREGISTERED' ELSE 'SENDER_ID_MISMATCH' END,
       'sv-dispatcher'
FROM t, generate_series(1, 4) i
UNION ALL
SELECT h + interval '3 minutes', 0, a, 'fcm', 'failed', 'INVALID_ARGUMENT',
       'sv-dispatcher'
FROM t, generate_series(1, 3) i;

SELECT is((SELECT row(total, sent, retried, failed, invalid_token, expired,
                      dropped_banned, dropped_overload, attempts, bytes_sent)
           ::text FROM push.app_stats_hourly, t
           WHERE hour = t.h AND app_id = t.a AND platform = 'fcm'),
          '(110,100,0,3,4,1,2,0,109,10700)',
          'app_stats_hourly: every outcome counted, attempts and bytes summed');
SELECT is((SELECT failed_by_reason FROM push.app_stats_hourly, t
           WHERE hour = t.h AND app_id = t.a),
          '{"INVALID_ARGUMENT": 3, "UNREGISTERED": 3, "SENDER_ID_MISMATCH": 1}'
          ::jsonb, 'app_stats_hourly: failures by provider reason');
-- 107 latencies: 7 <= 10 ms, 90 <= 20 ms, 10 <= 500 ms.
SELECT is((SELECT row(latency_ms_p50, latency_ms_p95, latency_ms_p99)::text
           FROM push.app_stats_hourly, t WHERE hour = t.h AND app_id = t.a),
          '(20,500,500)', 'app_stats_hourly: p50/p95/p99 from the histogram');
SELECT is((SELECT round(latency_ms_avg::numeric, 3) FROM push.app_stats_hourly,
           t WHERE hour = t.h AND app_id = t.a),
          round((1350 + 4000 + 40 + 30) / 107.0, 3),
          'app_stats_hourly: mean latency over the pushes that have one');
SELECT is((SELECT row(total, sent, latency_ms_p50)::text
           FROM push.app_stats_hourly, t WHERE app_id = t.b),
          '(5,5,1)', 'app_stats_hourly: the other app apart');
SELECT is((SELECT row(sent, invalid_token, failed)::text
           FROM push.app_stats_daily, t
           WHERE day = date_trunc('day', t.h) AND app_id = t.a),
          '(100,4,3)', 'app_stats_daily: the same totals per day');
SELECT is((SELECT failed_by_reason FROM push.app_stats_daily, t
           WHERE day = date_trunc('day', t.h) AND app_id = t.a),
          '{"INVALID_ARGUMENT": 3, "UNREGISTERED": 3, "SENDER_ID_MISMATCH": 1}'
          ::jsonb, 'app_stats_daily: failures by provider reason');
SELECT is((SELECT count FROM push.stats_hourly, t
           WHERE hour = t.h AND app_id = t.a AND outcome = 'sent'),
          100::numeric, 'stats_hourly still counts by outcome');

-- Rollup: minutes older than 10 minutes move into push.stats_hour, the
-- totals and percentiles stay; the new minute rows stay put.
INSERT INTO push.stats_minute (minute, app_id, platform, outcome, count,
  attempts, latency_ms_sum, latency_ms_min, latency_ms_max, latency_hist)
SELECT date_trunc('minute', now()), a, 'fcm', 'sent', 7, 7, 7, 1, 1,
       pg_temp.hist(1, 7) FROM t;
CREATE TEMP TABLE before AS
SELECT * FROM push.app_stats_hourly;
SELECT is(push.rollup_stats(10), 6::bigint,
          'rollup_stats writes one hourly row per key (6)');
SELECT is((SELECT count(*) FROM push.stats_minute), 1::bigint,
          'only the recent minute is left in stats_minute');
SELECT is((SELECT row(count, attempts, bytes_sent, latency_ms_min,
                      latency_ms_max, latency_hist)::text
           FROM push.stats_hour, t
           WHERE hour = t.h AND app_id = t.a AND outcome = 'sent'),
          (SELECT row(100, 102, 10000, 11, 480,
                      push.hist_add(pg_temp.hist(20, 90),
                                    pg_temp.hist(500, 10)))::text),
          'the hourly row sums the minutes (count, attempts, bytes, '
          'min, max, histogram)');
SELECT set_eq('SELECT * FROM push.app_stats_hourly',
              'SELECT * FROM before',
              'app_stats_hourly is unchanged by the rollup');
SELECT is(push.rollup_stats(10), 0::bigint, 'a second rollup finds nothing');
-- A late minute of an hour already rolled up merges into it.
INSERT INTO push.stats_minute (minute, app_id, platform, outcome, count,
  attempts, latency_ms_sum, latency_ms_min, latency_ms_max, latency_hist)
SELECT h + interval '59 minutes', a, 'fcm', 'sent', 1, 1, 5, 5, 5,
       pg_temp.hist(5, 1) FROM t;
SELECT is(push.rollup_stats(10), 1::bigint, 'a late minute is rolled up');
SELECT is((SELECT row(count, latency_ms_min)::text FROM push.stats_hour, t
           WHERE hour = t.h AND app_id = t.a AND outcome = 'sent'),
          '(101,5)', 'and merged into its hour');
SELECT throws_ok('SELECT push.rollup_stats(0)', 'P0001', NULL,
                 'a rollup age under 1 minute is refused');
UPDATE push.settings SET value = '100000'
WHERE name = 'stats_rollup_after_minutes';
SELECT is((SELECT count(*) FROM push.stats_all),
          (SELECT (SELECT count(*) FROM push.stats_minute) +
                  (SELECT count(*) FROM push.stats_hour)),
          'stats_all reads both tables');
SELECT is((SELECT sum(count) FROM push.stats_all), 123::numeric,
          'every count is still there (110 + 5 + 7 + 1)');

-- Campaign funnel: 5 targets, 4 queued; outcomes from the stats.
INSERT INTO push.campaigns (app_id, name, payload_template)
SELECT a, 'sv_spring', '{"title": "hi"}' FROM t;
INSERT INTO push.campaign_targets (campaign_id, user_id, enqueued_at)
SELECT c.id, 'u' || i, CASE WHEN i <= 4 THEN now() END
FROM push.campaigns c, generate_series(1, 5) i WHERE c.name = 'sv_spring';
INSERT INTO push.stats_minute (minute, app_id, platform, campaign_id, outcome,
  count, attempts, latency_hist)
SELECT date_trunc('minute', now()), t.a, 'fcm', c.id, o, n, n,
       pg_temp.hist(50, n)
FROM t, push.campaigns c,
     (VALUES ('sent'::push.outcome, 2), ('invalid_token', 1),
             ('failed', 1)) v(o, n)
WHERE c.name = 'sv_spring';
SELECT is((SELECT row(targets, queued, sent, failed, invalidated, expired,
                      dropped, latency_ms_p50)::text
           FROM push.campaign_funnel WHERE name = 'sv_spring'),
          '(5,4,2,1,1,0,0,50)', 'campaign_funnel: targets to outcomes');
INSERT INTO push.campaigns (app_id, name, payload_template)
SELECT a, 'sv_empty', '{}' FROM t;
SELECT is((SELECT row(targets, queued, sent)::text
           FROM push.campaign_funnel WHERE name = 'sv_empty'),
          '(0,0,0)', 'campaign_funnel: a campaign with nothing yet is zeros');

-- Devices by attribute and outcomes by device.
INSERT INTO push.devices (app_id, platform, token, app_version, os_version,
                          device_model, timezone, invalidated_at)
SELECT a, 'fcm', 'sv-device-token-00' || i, CASE WHEN i <= 3 THEN '2.0' ELSE '1.9' END,
       'android-14', 'Pixel ' || (i % 2), 'Europe/Paris',
       CASE WHEN i = 5 THEN now() END
FROM t, generate_series(1, 5) i;
SELECT is((SELECT string_agg(value || ':' || active_devices || '/' ||
                             invalidated_devices, ' ' ORDER BY value)
           FROM push.devices_by_attribute, t
           WHERE app_id = t.a AND attribute = 'app_version'),
          '1.9:1/1 2.0:3/0', 'devices_by_attribute: active and invalidated');
INSERT INTO push.deliveries (finished_at, push_id, app_id, platform,
                             device_id, outcome, latency_ms)
SELECT now(), 1, v.app_id, 'fcm', v.id,
       CASE WHEN v.token = 'sv-device-token-005' THEN 'invalid_token'
            ELSE 'sent' END::push.outcome, 10
FROM push.devices v WHERE v.token LIKE 'sv-device-token-00%';
-- Device 1 got a second push.
INSERT INTO push.deliveries (finished_at, push_id, app_id, platform,
                             device_id, outcome, latency_ms)
SELECT now(), 2, app_id, 'fcm', id, 'sent', 30
FROM push.devices WHERE token = 'sv-device-token-001';
SELECT is((SELECT string_agg(value || ':' || devices_reached || '/' || sent
                             || '/' || invalid_token, ' ' ORDER BY value)
           FROM push.outcomes_by_device, t
           WHERE app_id = t.a AND attribute = 'app_version'
             AND day = date_trunc('day', now())),
          '1.9:1/1/1 2.0:3/4/0',
          'outcomes_by_device: reach (distinct devices) and outcomes');
SELECT is((SELECT string_agg(value || ':' || sent, ' ' ORDER BY value)
           FROM push.outcomes_by_device, t
           WHERE app_id = t.a AND attribute = 'device_model'
             AND day = date_trunc('day', now())),
          'Pixel 0:2 Pixel 1:3', 'outcomes_by_device: by device model');
SELECT is((SELECT sent FROM push.outcomes_by_device, t
           WHERE app_id = t.a AND attribute = 'timezone'
             AND day = date_trunc('day', now())),
          5::bigint, 'outcomes_by_device: by timezone');

-- Token churn: today 5 registrations and 1 invalidation (device 5), from
-- push.devices; invalid_token outcomes in the stats do not count.
SELECT is((SELECT row(registrations, invalidations, net)::text
           FROM push.token_churn_daily, t
           WHERE app_id = t.a AND platform = 'fcm'
             AND day = date_trunc('day', now())),
          '(5,1,4)',
          'token_churn_daily: registrations vs invalidations today');
SELECT is((SELECT sum(invalidations) FROM push.token_churn_daily, t
           WHERE app_id = t.a), 1::numeric,
          'token_churn_daily: each invalidated device counted once');

-- Dispatcher health: fresh heartbeat live; 3 intervals late dead; stopped.
INSERT INTO push.dispatchers (id, host, pid, version, heartbeat_at,
                              heartbeat_interval_ms, state)
VALUES ('h:1:1', 'h', 1, 'x', now() - interval '1 second', 1000, 'running'),
       ('h:2:1', 'h', 2, 'x', now() - interval '3.5 seconds', 1000,
        'running'),
       ('h:3:1', 'h', 3, 'x', now() - interval '2.5 seconds', 1000,
        'draining'),
       ('h:4:1', 'h', 4, 'x', now() - interval '1 second', 1000, 'stopped'),
       ('h:5:1', 'h', 5, 'x', now() - interval '5 seconds', NULL, 'running'),
       ('h:6:1', 'h', 6, 'x', now() - interval '7 seconds', NULL, 'running');
SELECT is((SELECT string_agg(id || '=' || status || '/' || live, ' '
                             ORDER BY id) FROM push.dispatcher_health),
          'h:1:1=running/true h:2:1=dead/false h:3:1=draining/true '
          'h:4:1=stopped/false h:5:1=running/true h:6:1=dead/false',
          'dispatcher_health: dead after 3 missed heartbeats (2 s default)');

-- run_maintenance: creates partitions; a second session would skip.
SELECT lives_ok('SELECT * FROM push.run_maintenance()',
                'run_maintenance runs');
SELECT ok(to_regclass('push.deliveries_' ||
          to_char((now() AT TIME ZONE 'UTC')::date + 1, 'YYYYMMDD'))
          IS NOT NULL, 'run_maintenance created tomorrow''s partition');
SELECT is((SELECT count(*) FROM push.run_maintenance()
           WHERE action = 'skipped'), 0::bigint,
          'the same session may run it again (its own lock)');
INSERT INTO push.debug_events (at, push_id, step)
VALUES (now() - interval '8 days', 1, 'old'), (now(), 1, 'new');
SELECT is((SELECT object FROM push.run_maintenance()
           WHERE object LIKE '%debug_events'),
          '1 rows of push.debug_events',
          'run_maintenance deletes debug events past their retention');
SELECT is((SELECT string_agg(step, ',') FROM push.debug_events), 'new',
          'and keeps the recent ones');

-- Comments and grants.
SELECT is_empty($$
  SELECT c.relname FROM pg_class c
  WHERE c.relnamespace = 'push'::regnamespace
    AND c.relname IN ('stats_hour', 'stats_all', 'app_stats_hourly',
      'app_stats_daily', 'outcomes_by_device', 'devices_by_attribute',
      'token_churn_daily', 'dispatcher_health', 'campaign_funnel')
    AND coalesce(obj_description(c.oid, 'pg_class'), '') = ''$$,
  'every new view has a COMMENT');
SELECT is((SELECT count(*) FROM pg_class c
           WHERE c.relnamespace = 'push'::regnamespace
             AND c.relname IN ('stats_hour', 'stats_all', 'app_stats_hourly',
               'app_stats_daily', 'outcomes_by_device',
               'devices_by_attribute', 'token_churn_daily',
               'dispatcher_health', 'campaign_funnel')
             AND has_table_privilege('pgpush_analyst', c.oid, 'SELECT')),
          9::bigint, 'pgpush_analyst may read all nine');
SELECT ok(NOT has_table_privilege('pgpush_analyst', 'push.stats_hour',
                                  'INSERT'),
          'but not write push.stats_hour');
SELECT ok(has_function_privilege('pgpush_dispatcher',
          'push.run_maintenance()', 'EXECUTE'),
          'pgpush_dispatcher may run the maintenance');
SELECT ok(NOT has_function_privilege('pgpush_analyst',
          'push.run_maintenance()', 'EXECUTE')
          AND NOT has_function_privilege('pgpush_app',
          'push.rollup_stats(integer)', 'EXECUTE'),
          'analysts and apps may not');
SELECT ok(has_function_privilege('pgpush_admin', 'push.rollup_stats(integer)',
          'EXECUTE'), 'admins may roll up by hand');
SELECT is((SELECT value FROM push.settings
           WHERE name = 'debug_events_retention_days'), '7',
          'debug_events_retention_days setting (default 7)');
SELECT is((SELECT count(*) FROM push.settings
           WHERE name = 'stats_rollup_after_minutes'), 1::bigint,
          'stats_rollup_after_minutes setting exists');

SELECT * FROM finish();
ROLLBACK;
